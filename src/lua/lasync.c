/*
 * lasync.c - async mode: a db connected with async = true (or "auto")
 * runs each operation on a worker thread of its pool while the calling
 * coroutine is suspended; the Lua thread never waits for the database
 * (DESIGN.md Part 2, "Async: the game tick never waits").
 *
 * One state per lua_State (a userdata in the registry): its completion
 * queue (sq_cq, the core's; workers post, only this state pops), the
 * holders in flight (a C list, for cancel and drain), the count of ops
 * whose coroutine has not been resumed (sqorm.pending), and a table of
 * user values: waits (lightuserdata holder -> coroutine, coroutine ->
 * the holder: the coroutine, the holder and - through the holder's
 * anchor - the call's frame are kept alive while its op is in flight,
 * even when the coroutine is closed or dropped; sqorm.cancel finds the
 * op), on_error, the scheduler's suspend and resume, and what sqorm.run
 * collects.
 *
 * The flow of one op: lsq_op_run (lop.c) -> lsq_async_run: sq_oper_submit
 * (rows are recorded), the holder goes in flight, the coroutine suspends
 * (lua_yieldk, or the host's suspend through lua_callk) with async_k as
 * its continuation. sqorm.poll pops completions (never blocks):
 * sq_oper_complete, the holder is done, and the coroutine is resumed
 * (lua_resume, or the host's resume(co)). async_k then continues with
 * lsq_op_k: the rows are replayed into the sink on the Lua thread and the
 * binding function's own continuation builds the results - or raises the
 * op's error at the call site. A coroutine resumed early (by someone
 * else) suspends again: the op completes exactly once, and its
 * coroutine goes on exactly once.
 *
 * Closing. A lua_State closed with ops in flight: a sentinel userdata,
 * replaced at every submit so that it is the newest object with a
 * finaliser, is finalised first of everything those ops may use; its
 * __gc cancels every op in flight (queued ones complete at once, running
 * ones are cancelled on the server), waits for their completions and
 * completes them with no Lua (connections return to their pools, a
 * transaction's pin is given back), then closes the queue.
 */
#include "lop.h"

#include <stdio.h>
#include <string.h>

#define LSQ_ASYNC_MT "sqorm.AsyncState"
#define LSQ_SENTINEL_MT "sqorm.AsyncSentinel"

static const char ASYNC_KEY = 0;    /* registry: the state */
static const char SENTINEL_KEY = 0; /* registry: the current sentinel */

/* user values of the state */
enum { AUV_WAITS = 1, AUV_ON_ERROR, AUV_SUSPEND, AUV_RESUME, AUV_RUN, AUV_COUNT = AUV_RUN };

typedef struct lsq_async {
  sq_cq *cq;
  lsq_op *head;   /* holders in flight (LOP_ASYNC_FLIGHT) */
  int npending;   /* ops submitted whose coroutine was not resumed yet */
  int closed;     /* drained and closed (the state is closing) */
  int draining;
  int running;    /* inside sqorm.run */
  int has_sched;  /* a scheduler was set */
} lsq_async;

typedef struct sentinel {
  int retired; /* replaced by a newer one: its finaliser does nothing */
} sentinel;

/* ---------------------------------------------------------------- */
/* the state                                                          */
/* ---------------------------------------------------------------- */

/* The state, or NULL when there is none and create is 0 (nothing
 * pushed). Raises on a failure to create one. */
static lsq_async *state_get(lua_State *L, int create) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ASYNC_KEY);
  lsq_async *as = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (as || !create) return as;
  as = lua_newuserdatauv(L, sizeof *as, AUV_COUNT);
  memset(as, 0, sizeof *as);
  luaL_setmetatable(L, LSQ_ASYNC_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, AUV_WAITS);
  sq_err err;
  sq_err_clear(&err);
  if (sq_cq_new(&as->cq, &err)) {
    lua_pop(L, 1);
    lsq_raise(L, &err);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ASYNC_KEY);
  return as;
}

/* Pushes the state's user value i. */
static int push_uv(lua_State *L, int i) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ASYNC_KEY);
  int t = lua_getiuservalue(L, -1, i);
  lua_remove(L, -2);
  return t;
}

static void set_uv(lua_State *L, int i) { /* pops the value */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ASYNC_KEY);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, i);
  lua_pop(L, 1);
}

static void link_op(lsq_async *as, lsq_op *h) {
  h->aprev = NULL;
  h->anext = as->head;
  if (as->head) as->head->aprev = h;
  as->head = h;
}

static void unlink_op(lsq_async *as, lsq_op *h) {
  if (h->aprev) h->aprev->anext = h->anext;
  else as->head = h->anext;
  if (h->anext) h->anext->aprev = h->aprev;
  h->aprev = h->anext = NULL;
}

/* A fresh sentinel, the newest object with a finaliser (see the top). */
static void renew_sentinel(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SENTINEL_KEY) == LUA_TUSERDATA) ((sentinel *)lua_touserdata(L, -1))->retired = 1;
  lua_pop(L, 1);
  sentinel *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->retired = 0;
  luaL_setmetatable(L, LSQ_SENTINEL_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SENTINEL_KEY);
}

/* ---------------------------------------------------------------- */
/* submitting and suspending                                          */
/* ---------------------------------------------------------------- */

static int async_k(lua_State *L, int status, lua_KContext ctx);

/* Suspends the running coroutine until h's completion was popped. */
static int suspend(lua_State *L, lsq_op *h) {
  h->atop = lua_gettop(L);
  lsq_async *as = state_get(L, 0);
  if (as && as->has_sched && push_uv(L, AUV_SUSPEND) == LUA_TFUNCTION) {
    lua_callk(L, 0, 0, (lua_KContext)h, async_k);
    return async_k(L, LUA_OK, (lua_KContext)h);
  }
  if (as && as->has_sched) lua_pop(L, 1);
  return lua_yieldk(L, 0, (lua_KContext)h, async_k);
}

static int async_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lsq_op *h = (lsq_op *)ctx;
  lua_settop(L, h->atop);
  if (h->async == LOP_ASYNC_FLIGHT) return suspend(L, h); /* resumed before it completed */
  h->async = LOP_ASYNC_NONE;
  return lsq_op_k(L, LUA_OK, ctx);
}

/* While an op is in flight, everything its call uses must stay alive -
 * also when its coroutine is closed (coroutine.close drops the
 * coroutine's stack, and with it the call's frame) or dropped: the
 * holder (its op is the in-flight job), and what the frame holds (the
 * db, the model, a cursor - an upvalue of the running iterator - a Tx).
 * waits[co] keeps the holder, and the holder's OUV_ANCHOR table keeps
 * the frame's values and the running function, until the completion is
 * popped (release_anchor). Without it the collector finalised the
 * holder of a closed coroutine's call, and its __gc drained the whole
 * state: every other coroutine's op was cancelled and completed without
 * its coroutine, which then waited forever, holding what it held (its
 * transaction's connection). */
static void anchor_frame(lua_State *L, lsq_op *h) {
  int top = lua_gettop(L);
  luaL_checkstack(L, 3, "sqorm: async");
  if (lua_getiuservalue(L, h->base, OUV_ANCHOR) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, top + 1, 0);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, h->base, OUV_ANCHOR);
  }
  for (int i = 1; i <= top; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  int n = top;
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "f", &ar)) lua_rawseti(L, -2, ++n);
  for (int i = n + 1; i <= h->nanchor; i++) {
    lua_pushnil(L);
    lua_rawseti(L, -2, i);
  }
  h->nanchor = n;
  lua_pop(L, 1);
}

/* Empties the anchor of the holder h at hidx (no allocation). */
static void release_anchor(lua_State *L, lsq_op *h, int hidx) {
  if (h->nanchor == 0) return;
  if (lua_getiuservalue(L, hidx, OUV_ANCHOR) == LUA_TTABLE) {
    for (int i = 1; i <= h->nanchor; i++) {
      lua_pushnil(L);
      lua_rawseti(L, -2, i);
    }
  }
  lua_pop(L, 1);
  h->nanchor = 0;
}

/* waits[h] = co, waits[co] = the holder (nil, nil: forgets them). */
static void set_waits(lua_State *L, lsq_op *h, int holder) {
  push_uv(L, AUV_WAITS);
  lua_pushlightuserdata(L, h);
  if (holder) lua_pushthread(L);
  else lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pushthread(L);
  if (holder) lua_pushvalue(L, holder);
  else lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

int lsq_async_run(lua_State *L, lsq_op *h) {
  lsq_async *as = state_get(L, 1);
  if (as->closed) {
    /* the state is closing (a finaliser's call): blocking */
    sq_oper_run(h->op);
    return -1;
  }
  renew_sentinel(L);
  /* what may raise (memory) before the op is in flight */
  int own = lua_touserdata(L, h->base) == h; /* (the lop.c contract: always) */
  if (own) {
    anchor_frame(L, h);
    set_waits(L, h, h->base);
  } else {
    lua_pushlightuserdata(L, h);
    set_waits(L, h, lua_gettop(L));
    lua_pop(L, 1);
  }
  sq_err err;
  sq_err_clear(&err);
  if (sq_oper_submit(h->op, as->cq, h, &err) != 1) {
    set_waits(L, h, 0);
    if (own) release_anchor(L, h, h->base);
    return -1;
  }
  h->async = LOP_ASYNC_FLIGHT;
  link_op(as, h);
  as->npending++;
  return suspend(L, h);
}

/* ---------------------------------------------------------------- */
/* completing and resuming                                            */
/* ---------------------------------------------------------------- */

/* An error escaped a coroutine (the error value at the top, the
 * coroutine at coidx): to on_error(err, co), or to stderr. Pops the
 * error. */
static void report_error(lua_State *L, int coidx) {
  coidx = lua_absindex(L, coidx);
  int eidx = lua_gettop(L);
  if (push_uv(L, AUV_ON_ERROR) != LUA_TNIL) {
    lua_pushvalue(L, eidx);
    lua_pushvalue(L, coidx);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
      lua_settop(L, eidx - 1);
      return;
    }
    const char *m = lua_tostring(L, -1);
    fprintf(stderr, "sqorm: the on_error handler failed: %s\n", m ? m : "(an error object)");
  }
  lua_settop(L, eidx);
  const char *msg = NULL;
  if (luaL_callmeta(L, eidx, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
  else if (lua_type(L, eidx) == LUA_TSTRING || lua_type(L, eidx) == LUA_TNUMBER) msg = lua_tostring(L, eidx);
  lua_State *co = lua_tothread(L, coidx);
  luaL_traceback(L, co ? co : L, msg ? msg : "(an error object)", 0);
  fprintf(stderr, "sqorm: error in a coroutine: %s\n", lua_tostring(L, -1));
  fflush(stderr);
  lua_settop(L, eidx - 1);
}

/* Resumes co (at coidx) with nargs values on its stack, with the default
 * scheduler, and deals with how it stops: a yield (another op, or the
 * script's own), its end (sqorm.run keeps the results of its
 * coroutine), or an error (to report_error, or kept by sqorm.run). */
static void resume_co(lua_State *L, int coidx, int nargs) {
  coidx = lua_absindex(L, coidx);
  lua_State *co = lua_tothread(L, coidx);
  int nres = 0;
  int st = lua_resume(co, L, nargs, &nres);
  if (st == LUA_YIELD) {
    lua_pop(co, nres);
    return;
  }
  /* sqorm.run's coroutine: keep how it ended */
  int is_run = 0;
  if (push_uv(L, AUV_RUN) == LUA_TTABLE) {
    lua_getfield(L, -1, "co");
    is_run = lua_rawequal(L, -1, coidx);
    lua_pop(L, 1);
  }
  if (is_run) {
    int tidx = lua_gettop(L);
    lua_pushboolean(L, st == LUA_OK);
    lua_setfield(L, tidx, "ok");
    int n = st == LUA_OK ? nres : 1;
    lua_pushinteger(L, n);
    lua_setfield(L, tidx, "n");
    lua_xmove(co, L, n);
    for (int i = n; i >= 1; i--) lua_rawseti(L, tidx, i);
    lua_pushboolean(L, 1);
    lua_setfield(L, tidx, "done");
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  if (st == LUA_OK) {
    lua_pop(co, nres);
    return;
  }
  lua_xmove(co, L, 1);
  report_error(L, coidx);
}

/* Pushes the coroutine of h and its holder (nil, nil when none: the
 * holder stays reachable on the stack until the caller drops it), and
 * forgets them in waits. */
static void take_waiter(lua_State *L, lsq_op *h) {
  push_uv(L, AUV_WAITS);
  lua_pushlightuserdata(L, h);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1)) {
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    lua_pushvalue(L, -2);
    lua_pushnil(L);
    lua_rawset(L, -5);
  } else {
    lua_pushnil(L);
  }
  lua_pushlightuserdata(L, h);
  lua_pushnil(L);
  lua_rawset(L, -5);
  lua_remove(L, -3);
}

/* Pops and completes what waits (at most what was in flight when it
 * started), resuming each completion's coroutine: at most max of them
 * (max <= 0: no limit), and none after the first once `seconds` have
 * passed since the call began (seconds <= 0: no limit). Completions left
 * behind stay in the queue, in order, for the next call (its fd stays
 * readable). Never blocks. */
static int poll_state(lua_State *L, lsq_async *as, int max, double seconds) {
  if (!as || as->closed) return 0;
  int budget = sq_cq_inflight(as->cq), n = 0;
  double until = seconds > 0 ? sq_clock() + seconds : 0;
  sq_job *job;
  while (budget-- > 0 && (max <= 0 || n < max) && (n == 0 || until <= 0 || sq_clock() < until) &&
         (job = sq_cq_pop(as->cq))) {
    sq_oper *op = sq_oper_of_job(job);
    if (sq_oper_complete(op)) continue; /* submitted again (a read's retry) */
    lsq_op *h = job->tag;
    unlink_op(as, h);
    h->async = LOP_ASYNC_DONE;
    as->npending--;
    int top = lua_gettop(L);
    take_waiter(L, h); /* [top+1] co, [top+2] the holder */
    int own = lua_touserdata(L, top + 2) == h && lua_type(L, top + 2) == LUA_TUSERDATA;
    if (own) release_anchor(L, h, top + 2);
    lua_State *co = lua_tothread(L, top + 1);
    if (co && lsq_thread_dead(co)) {
      /* closed while its call ran (coroutine.close): nothing will
       * continue the call, so what it holds - its transaction, a new
       * transaction or cursor - goes back now, not when (if ever) the
       * coroutine is collected; the holder is idle again */
      sq_oper_orphan(op);
      if (own) lsq_op_orphaned(L, h, top + 2);
      co = NULL;
    }
    if (co) {
      if (as->has_sched && push_uv(L, AUV_RESUME) == LUA_TFUNCTION) {
        lua_pushvalue(L, top + 1);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) report_error(L, top + 1);
      } else if (lua_status(co) == LUA_YIELD && co != L) {
        lua_settop(L, top + 1);
        resume_co(L, top + 1, 0);
      }
      n++;
    }
    lua_settop(L, top);
  }
  return n;
}

void lsq_async_drain(lua_State *L) {
  lsq_async *as = state_get(L, 0);
  if (!as || as->closed || as->draining || !as->cq) return;
  as->draining = 1;
  while (as->head) {
    for (lsq_op *h = as->head; h; h = h->anext) sq_oper_cancel(h->op);
    sq_cq_wait(as->cq, 0.5);
    sq_job *job;
    while ((job = sq_cq_pop(as->cq))) {
      sq_oper *op = sq_oper_of_job(job);
      if (sq_oper_complete(op)) continue; /* cancelled on the next round */
      lsq_op *h = job->tag;
      unlink_op(as, h);
      h->async = LOP_ASYNC_NONE; /* no Lua runs for it: what it holds goes back */
      sq_oper_orphan(op);
      as->npending--;
    }
  }
  as->draining = 0;
}

/* The state is going away (lua_close): nothing in flight, then the
 * queue is closed. */
static void close_state(lua_State *L, lsq_async *as) {
  if (as->closed) return;
  lsq_async_drain(L);
  as->closed = 1;
  if (as->cq) sq_cq_close(as->cq);
  as->cq = NULL;
}

static int sentinel_gc(lua_State *L) {
  sentinel *s = lua_touserdata(L, 1);
  if (s->retired) return 0;
  lsq_async *as = state_get(L, 0);
  if (as) close_state(L, as);
  return 0;
}

static int state_gc(lua_State *L) {
  lsq_async *as = lua_touserdata(L, 1);
  /* the registry still holds it while finalisers run at lua_close */
  close_state(L, as);
  return 0;
}

/* ---------------------------------------------------------------- */
/* sqorm.*                                                            */
/* ---------------------------------------------------------------- */

static void check_callable(lua_State *L, int idx, const char *fname) {
  int t = lua_type(L, idx);
  if (t == LUA_TFUNCTION) return;
  if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lsq_usage(L, "%s expects a function, got %s", fname, luaL_typename(L, idx));
}

/* sqorm.spawn(fn, ...) -> co: runs fn(...) as a coroutine now. */
static int m_spawn(lua_State *L) {
  check_callable(L, 1, "sqorm.spawn");
  state_get(L, 1);
  int n = lua_gettop(L);
  lua_State *co = lua_newthread(L);
  int coidx = lua_gettop(L);
  for (int i = 1; i <= n; i++) lua_pushvalue(L, i);
  lua_xmove(L, co, n);
  resume_co(L, coidx, n - 1);
  lua_settop(L, coidx);
  return 1;
}

/* sqorm.poll([max [, seconds]]) -> n: resumes the coroutines whose op
 * completed, at most max of them and (after the first) only while less
 * than `seconds` have passed; the rest wait for the next call. */
static int m_poll(lua_State *L) {
  lua_Integer max = 0;
  double seconds = 0;
  if (!lua_isnoneornil(L, 1)) {
    int isint = 0;
    max = lua_tointegerx(L, 1, &isint);
    if (!isint || max < 1)
      return lsq_usage(L, "sqorm.poll: max must be a positive integer or nil, got %s", luaL_tolstring(L, 1, NULL));
    if (max > 1000000000) max = 1000000000;
  }
  if (!lua_isnoneornil(L, 2)) {
    int isnum = 0;
    seconds = lua_tonumberx(L, 2, &isnum);
    if (!isnum || !(seconds > 0))
      return lsq_usage(L, "sqorm.poll: seconds must be a positive number or nil, got %s", luaL_tolstring(L, 2, NULL));
  }
  lua_pushinteger(L, poll_state(L, state_get(L, 0), (int)max, seconds));
  return 1;
}

/* sqorm.pollfd() -> fd: readable while poll has work. */
static int m_pollfd(lua_State *L) {
  lsq_async *as = state_get(L, 1);
  if (as->closed) return lsq_usage(L, "sqorm.pollfd: the state is closing");
  lua_pushinteger(L, sq_cq_fd(as->cq));
  return 1;
}

/* sqorm.pending() -> n */
static int m_pending(lua_State *L) {
  lsq_async *as = state_get(L, 0);
  lua_pushinteger(L, as ? as->npending : 0);
  return 1;
}

/* sqorm.cancel(co) -> true when co was waiting for an op (it resumes
 * with an error of kind canceled), false otherwise. */
static int m_cancel(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTHREAD)
    return lsq_usage(L, "sqorm.cancel expects a coroutine, got %s", luaL_typename(L, 1));
  lsq_async *as = state_get(L, 0);
  int ok = 0;
  if (as && !as->closed) {
    push_uv(L, AUV_WAITS);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    lsq_op *h = lua_touserdata(L, -1);
    if (h && h->async == LOP_ASYNC_FLIGHT) ok = sq_oper_cancel(h->op);
  }
  lua_pushboolean(L, ok);
  return 1;
}

/* sqorm.on_error(fn | nil) */
static int m_on_error(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) check_callable(L, 1, "sqorm.on_error");
  state_get(L, 1);
  lua_settop(L, 1);
  set_uv(L, AUV_ON_ERROR);
  return 0;
}

/* sqorm.scheduler{ suspend = f, resume = g } | sqorm.scheduler(nil) */
static int m_scheduler(lua_State *L) {
  lsq_async *as = state_get(L, 1);
  if (lua_isnoneornil(L, 1)) {
    lua_pushnil(L);
    set_uv(L, AUV_SUSPEND);
    lua_pushnil(L);
    set_uv(L, AUV_RESUME);
    as->has_sched = 0;
    return 0;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "suspend");
  lua_getfield(L, 1, "resume");
  if (lua_type(L, -2) != LUA_TFUNCTION || lua_type(L, -1) != LUA_TFUNCTION)
    return lsq_usage(L, "sqorm.scheduler expects { suspend = function, resume = function } or nil");
  set_uv(L, AUV_RESUME);
  set_uv(L, AUV_SUSPEND);
  as->has_sched = 1;
  return 0;
}

/* sqorm.run(fn, ...) -> fn's results: spawns fn, then polls (waiting on
 * the queue) until nothing is pending; raises fn's error. */
static int m_run(lua_State *L) {
  check_callable(L, 1, "sqorm.run");
  lsq_async *as = state_get(L, 1);
  if (as->running) return lsq_usage(L, "sqorm.run: already running (call sqorm.spawn inside it)");
  int n = lua_gettop(L);
  lua_State *co = lua_newthread(L);
  int coidx = lua_gettop(L);
  lua_createtable(L, 4, 4);
  lua_pushvalue(L, coidx);
  lua_setfield(L, -2, "co");
  int ridx = lua_gettop(L);
  lua_pushvalue(L, ridx);
  set_uv(L, AUV_RUN);
  for (int i = 1; i <= n; i++) lua_pushvalue(L, i);
  lua_xmove(L, co, n);
  as->running = 1;
  resume_co(L, coidx, n - 1);
  while (as->npending > 0 && !as->closed) {
    if (sq_cq_inflight(as->cq) > 0) sq_cq_wait(as->cq, 1.0);
    poll_state(L, as, 0, 0);
  }
  as->running = 0;
  lua_pushnil(L);
  set_uv(L, AUV_RUN);
  lua_settop(L, ridx);
  if (lua_getfield(L, ridx, "done") == LUA_TNIL)
    return lsq_usage(L, "sqorm.run: the function yielded outside sqorm and nothing resumed it");
  lua_getfield(L, ridx, "n");
  int nr = (int)lua_tointeger(L, -1);
  lua_getfield(L, ridx, "ok");
  int ok = lua_toboolean(L, -1);
  lua_settop(L, ridx);
  luaL_checkstack(L, nr, "sqorm.run");
  for (int i = 1; i <= nr; i++) lua_rawgeti(L, ridx, i);
  if (!ok) return lua_error(L);
  return nr;
}

static const luaL_Reg funcs[] = {
  {"spawn", m_spawn},   {"poll", m_poll},         {"pollfd", m_pollfd},       {"pending", m_pending},
  {"cancel", m_cancel}, {"on_error", m_on_error}, {"scheduler", m_scheduler}, {"run", m_run},
  {NULL, NULL},
};

void lsq_async_open(lua_State *L, int modidx) {
  modidx = lua_absindex(L, modidx);
  if (luaL_newmetatable(L, LSQ_ASYNC_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "sqorm.AsyncState");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LSQ_SENTINEL_MT)) {
    lua_pushcfunction(L, sentinel_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, modidx);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}
