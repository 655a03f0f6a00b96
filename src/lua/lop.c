/*
 * lop.c - lsq_op_run: the one place where a binding function's operation
 * runs, and the holders that own operations.
 *
 * The contract every database-touching binding function follows, written
 * so that the same function works when the operation runs inline
 * (blocking mode, now) and when it runs on a worker thread while the
 * calling coroutine waits (async mode, later):
 *
 *   1. Check the arguments. Raising is free here: nothing is held.
 *   2. Get a holder (lsq_op_get pushes one; its __gc frees the op, so a
 *      raise from here on leaks nothing) and build the op: sq_oper_*
 *      builders copy every value and SQL text into the op, so nothing it
 *      sends points into Lua memory; pick its sink (lsq_op_sink_*). Build
 *      errors go out through lsq_op_fail.
 *   3. return lsq_op_run(L, dbidx, hidx, k, ctx) - a tail return. From
 *      here on no C local of the function survives: whatever k needs is
 *      on the Lua stack (the holder, the db, the model, arguments) or in
 *      the holder (its C memory and user values), and ctx.
 *   4. k(L, status, ctx) builds the Lua results from the op and the
 *      holder (inline, the sink has already built them in OUV_OUT; the
 *      op's scalars - affected rows, ids, the new cursor or transaction -
 *      are read from the sq_oper), calls lsq_op_done, and returns them;
 *      or raises the op's error with lsq_op_raise (which makes the
 *      holder idle first).
 *
 * lsq_op_run itself: prepares the op (its log records), writes the
 * "Executing" lines (Lua runs before the op, never in its middle), picks
 * the target when the builder did not (the running coroutine's
 * transaction on this db, else the db's pool, acquired as this Lua state
 * for self-deadlock detection), runs the op, and continues with op_k:
 * replay of a recorded rowset into the sink, the "Executed" lines
 * (benchmark), then k. Blocking mode calls lsq_op_k directly. Async mode
 * (db->async, in a coroutine that can yield; lasync.c) submits the op to
 * the pool's workers with this state's completion queue and suspends
 * the coroutine; poll resumes it and lsq_op_k runs on the Lua thread -
 * with SQ_OPER_RECORD set, because a worker thread never touches a
 * lua_State: its rows are recorded into the op's rowset and lsq_op_k
 * replays them through the same sink. On the main thread (or across a C
 * boundary that can't yield) async = true is kind usage naming
 * sqorm.spawn, and "auto" runs inline. Building with
 * -DSQORM_TEST_REPLAY=ON (or connecting with the undocumented option
 * _replay = true) records and replays inline runs
 * too, so the whole suite can prove that path.
 *
 * The sink of an inline run builds Lua values while the driver reads
 * rows. It may raise (a memory error), and a longjmp must never cross
 * the core: the op calls its driver calls through the sink's protect
 * hook (op_protect), a lua_pcall whose frame the sink works in (the
 * holder is its argument; lsq_op_sink_enter pushes what the sink needs).
 * An error there is kept in the holder (OUV_ERR), the op discards the
 * connection and fails, and lsq_op_raise re-raises the error as it was.
 */
#include "lop.h"

#include <stdio.h>
#include <string.h>

/* registry: the cached holder (the one a blocking call reuses every
 * time), and a stack (a list) of idle shared holders for when the cached
 * one is busy. In async mode every coroutine with an op in flight holds
 * one, so there are as many busy holders as waiting coroutines; done ones
 * come back to the list and are reused - their op keeps its arena block
 * and its rowset chunk, so a warm op allocates nothing, and no holder
 * waits for the collector. */
static const char OP_KEY = 0;
static const char FREE_KEY = 0;
#define LOP_FREE_MAX 256 /* idle holders kept; more are left to the collector */

static int holder_gc(lua_State *L) {
  lsq_op *h = lua_touserdata(L, 1);
  if (h->async == LOP_ASYNC_FLIGHT) lsq_async_drain(L); /* the state is closing */
  if (h->op) sq_oper_free(h->op);
  h->op = NULL;
  return 0;
}

static lsq_op *holder_new(lua_State *L) {
  lsq_op *h = lua_newuserdatauv(L, sizeof *h, OUV_COUNT);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, LSQ_OPH_MT);
  sq_err err;
  sq_err_clear(&err);
  if (sq_oper_new(&h->op, &err)) lsq_raise(L, &err);
  return h;
}

/* Pushes the free list (made on first use). */
static void push_free(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &FREE_KEY) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 16, 0);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &FREE_KEY);
}

lsq_op *lsq_op_get(lua_State *L) {
  lsq_op *h = NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &OP_KEY) == LUA_TUSERDATA) {
    h = lua_touserdata(L, -1);
    if (!h->busy) {
      h->busy = 1;
      h->base = lua_gettop(L);
      return h;
    }
  } else {
    /* the first: it becomes the cached one */
    lua_pop(L, 1);
    h = holder_new(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &OP_KEY);
    h->busy = 1;
    h->base = lua_gettop(L);
    return h;
  }
  /* In use (an op in flight in async mode, a logging function or a
   * validator that re-entered sqorm, an error that left it behind): an
   * idle one from the list, or a new one. */
  lua_pop(L, 1);
  push_free(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  if (n > 0) {
    lua_rawgeti(L, -1, n);
    lua_pushnil(L);
    lua_rawseti(L, -3, n);
    lua_remove(L, -2);
    h = lua_touserdata(L, -1);
    h->pooled = 0;
  } else {
    lua_pop(L, 1);
    h = holder_new(L);
    h->shared = 1;
  }
  h->busy = 1;
  h->base = lua_gettop(L);
  return h;
}

/* As lsq_op_get, for an op on the db at dbidx: the cached holder is kept
 * in the db's LSQ_DBUV_OP too, so the hot paths (a find, a save, a
 * transaction's BEGIN and COMMIT) skip the registry lookup. */
lsq_op *lsq_op_get_db(lua_State *L, int dbidx) {
  dbidx = lua_absindex(L, dbidx);
  if (lua_getiuservalue(L, dbidx, LSQ_DBUV_OP) == LUA_TUSERDATA) {
    lsq_op *h = lua_touserdata(L, -1);
    if (!h->busy) {
      h->busy = 1;
      h->base = lua_gettop(L);
      return h;
    }
  }
  lua_pop(L, 1);
  lsq_op *h = lsq_op_get(L);
  if (!h->shared) {
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, dbidx, LSQ_DBUV_OP);
  }
  return h;
}

lsq_op *lsq_op_new(lua_State *L) {
  lsq_op *h = holder_new(L);
  h->busy = 1;
  h->base = lua_gettop(L);
  return h;
}

lsq_op *lsq_op_at(lua_State *L, int idx) {
  lsq_op *h = lua_touserdata(L, idx);
  h->base = lua_absindex(L, idx);
  return h;
}

sq_oper *lsq_op_begin(lsq_op *h, int kind) {
  sq_oper_reset(h->op, kind);
  h->midx = 0;
  h->raised = 0;
  h->lflags = 0;
  h->what[0] = '\0';
  h->route = LSQ_ROUTE_PRIMARY;
  h->rindex = -1;
  h->rtries = 0;
  return h->op;
}

static void done_at(lua_State *L, lsq_op *h, int hidx) {
  lua_pushnil(L);
  lua_setiuservalue(L, hidx, OUV_OUT);
  if (h->sink == LSINK_MODEL && h->isink.aux) {
    lua_pushnil(L);
    lua_setiuservalue(L, hidx, OUV_AUX);
  }
  if (h->raised) {
    lua_pushnil(L);
    lua_setiuservalue(L, hidx, OUV_ERR);
  }
  if (h->sink == LSINK_INCLUDE) {
    lua_pushnil(L);
    lua_setiuservalue(L, hidx, OUV_INC);
    h->inc = NULL;
  }
  h->sink = LSINK_NONE;
  h->busy = 0;
  if (h->shared && !h->pooled && h->async != LOP_ASYNC_FLIGHT) {
    /* back on the free list (its op is reset when it is taken again) */
    push_free(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n < LOP_FREE_MAX) {
      lua_pushvalue(L, hidx);
      lua_rawseti(L, -2, n + 1);
      h->pooled = 1;
    }
    lua_pop(L, 1);
  }
}

void lsq_op_done(lua_State *L, lsq_op *h) { done_at(L, h, h->base); }

void lsq_op_orphaned(lua_State *L, lsq_op *h, int hidx) {
  if (!h->busy || h->async == LOP_ASYNC_FLIGHT) return;
  int cached = lua_rawgetp(L, LUA_REGISTRYINDEX, &OP_KEY) == LUA_TUSERDATA && lua_touserdata(L, -1) == h;
  lua_pop(L, 1);
  if (cached || h->shared) done_at(L, h, lua_absindex(L, hidx));
}

int lsq_op_push_out(lua_State *L, lsq_op *h) { return lua_getiuservalue(L, h->base, OUV_OUT); }

int lsq_op_fail(lua_State *L, lsq_op *h, const sq_err *err) {
  sq_err e = *err;
  lsq_op_done(L, h);
  return lsq_raise(L, &e);
}

int lsq_op_raise(lua_State *L, lsq_op *h) {
  int hidx = h->base;
  if (h->raised) {
    lua_getiuservalue(L, hidx, OUV_ERR);
    lsq_op_done(L, h);
    return lua_error(L);
  }
  sq_err e = *sq_oper_err(h->op);
  if (e.kind == SQ_OK) sq_err_set(&e, SQ_EINTERNAL, "operation failed");
  /* a unique_violation of a model's op: err.fields names the key */
  const int *cols;
  int n = sq_oper_fields(h->op, &cols);
  lsq_model *mod = n > 0 && h->midx ? lsq_toudata(L, h->midx, lsq_kind_model, sizeof *mod) : NULL;
  lsq_push_error(L, &e);
  if (mod) {
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
      lua_pushliteral(L, "must be unique");
      lua_setfield(L, -2, mod->cols[cols[i]]->name);
    }
    lua_setfield(L, -2, "fields");
  }
  lsq_op_done(L, h);
  return lua_error(L);
}

/* ---------------------------------------------------------------- */
/* logging                                                            */
/* ---------------------------------------------------------------- */

void lsq_op_log(lua_State *L, int dbidx, const sq_oper *op, int i, int executed) {
  const sq_oper_log *l = sq_oper_log_at(op, i);
  if (!l) return;
  if (!executed) lsq_log_statement(L, dbidx, "Executing", l->sql, l->len, -1, 0);
  else lsq_log_statement(L, dbidx, "Executed", l->sql, l->len, l->elapsed * 1e3, l->queued * 1e3);
}

/* ---------------------------------------------------------------- */
/* running                                                            */
/* ---------------------------------------------------------------- */

/* What comes after the op completed (see the top of the file). */
int lsq_op_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  sq_oper *op = h->op;
  /* replication (lroute.c), once the op completed: a replica found
   * unreachable -> the op runs again on the next one (async mode: submit
   * it again and yield); a write -> read-your-writes */
  while (h->db->route && lsq_route_after(L, h)) {
    if (h->db->async && lua_isyieldable(L)) {
      int r = lsq_async_run(L, h); /* suspends; comes back here when done */
      if (r >= 0) return r;
      continue; /* completed at once */
    }
    sq_oper_run(op);
  }
  int rc = sq_oper_rc(op);
  if (rc == SQ_OK && h->sink != LSINK_NONE && sq_oper_rowset(op)) {
    int top = lua_gettop(L);
    sq_err e;
    sq_err_clear(&e);
    h->L = L;
    h->hidx = h->base;
    lsq_op_sink_enter(L, h, h->midx);
    sq_oper_sink s;
    lsq_op_sink_of(h, &s);
    if (sq_oper_replay(op, &s, &e)) return lsq_op_fail(L, h, &e);
    lua_settop(L, top);
  }
  lsq_db *db = h->db;
  if (db->logging && !(h->lflags & LOP_NOLOG) && sq_oper_nlogs(op) > h->nlogged) {
    /* statements the op decided on while it ran (batches, DDL, re-selects) */
    int top = lua_gettop(L);
    for (int i = h->nlogged; i < sq_oper_nlogs(op); i++) lsq_op_log(L, h->dbidx, op, i, 0);
    lua_settop(L, top);
  }
  if (rc == SQ_OK && db->benchmark && db->logging && !(h->lflags & (LOP_NOLOG | LOP_NOLOG_AFTER))) {
    int top = lua_gettop(L);
    for (int i = 0; i < sq_oper_nlogs(op); i++)
      if (sq_oper_log_at(op, i)->elapsed >= 0) lsq_op_log(L, h->dbidx, op, i, 1);
    lua_settop(L, top);
  }
  return h->k(L, status, h->kctx);
}

int lsq_op_run(lua_State *L, int dbidx, lsq_op *h, lua_KFunction k, lua_KContext ctx) {
  dbidx = lua_absindex(L, dbidx);
  lsq_db *db = lua_touserdata(L, dbidx);
  sq_oper *op = h->op;
  h->k = k;
  h->kctx = ctx;
  h->dbidx = dbidx;
  h->db = db;
  sq_err err;
  err.kind = SQ_OK;
  unsigned flags = sq_oper_flags(op);
  if (db->replay) flags |= SQ_OPER_RECORD;
  if (!db->logging) flags |= SQ_OPER_QUIET;
  else if (db->benchmark) flags |= SQ_OPER_TIMED;
  sq_oper_set_flags(op, flags);
  if (sq_oper_prepare(op, db->dialect, &err)) return lsq_op_fail(L, h, &err);
  h->nlogged = sq_oper_nlogs(op);
  if (db->logging && !(h->lflags & LOP_NOLOG)) {
    int top = lua_gettop(L);
    for (int i = 0; i < sq_oper_nlogs(op); i++) lsq_op_log(L, dbidx, op, i, 0);
    lua_settop(L, top);
  }
  if (sq_oper_target(op) == SQ_OPER_TARGET_NONE) {
    /* After the logging function ran: it may have closed the db. */
    sq_tx *tx = db->ntx ? lsq_tx_current_tx(L, dbidx) : NULL;
    if (tx) {
      sq_oper_target_tx(op, tx);
    } else if (!db->pool) {
      sq_err_set(&err, SQ_ECLOSED, "the db is closed");
      return lsq_op_fail(L, h, &err);
    } else {
      sq_holder hd;
      lsq_db_holder(db, &hd, h->what[0] ? h->what : NULL);
      /* replication (lroute.c): the primary, or a replica for a read */
      if (!db->route) sq_oper_target_pool(op, db->pool, &hd);
      else if (lsq_route_target(L, h, &hd, &err)) return lsq_op_fail(L, h, &err);
    }
  }
  h->L = L;
  h->hidx = h->base;
  if (db->timeout > 0 && sq_oper_get_timeout(op) <= 0) sq_oper_set_timeout(op, db->timeout);
  if (db->async) {
    /* Async mode: submit, suspend the coroutine; poll (or the host's
     * resume) continues with op_k once the completion was popped. */
    if (lua_isyieldable(L)) {
      int r = lsq_async_run(L, h);
      if (r >= 0) return r;
      return lsq_op_k(L, LUA_OK, (lua_KContext)h); /* completed at once */
    }
    if (db->async == 1) {
      sq_err_set(&err, SQ_EUSAGE,
                 "this db is async (async = true): call it from a coroutine started with sqorm.spawn(fn, ...) "
                 "(or sqorm.run), not from the main thread or a C boundary that can't yield; connect with "
                 "async = \"auto\" to block there instead");
      return lsq_op_fail(L, h, &err);
    }
  }
  sq_oper_run(op);
  return lsq_op_k(L, LUA_OK, (lua_KContext)h);
}

/* ---------------------------------------------------------------- */
/* the protect hook: a Lua error out of the sink lands here           */
/* ---------------------------------------------------------------- */

typedef struct pargs {
  lsq_op *h;
  int (*fn)(void *);
  void *arg;
  int rc;
} pargs;

/* [1] the pargs, [2] the holder, [3] the model or nothing: the sink
 * works in this frame. */
static int protect_tramp(lua_State *L) {
  pargs *a = lua_touserdata(L, 1);
  lsq_op *h = a->h;
  h->L = L;
  h->hidx = 2;
  lsq_op_sink_enter(L, h, h->midx ? 3 : 0);
  a->rc = a->fn(a->arg);
  return 0;
}

static int op_protect(void *ud, int (*fn)(void *), void *arg) {
  lsq_op *h = ud;
  lua_State *L = h->L;
  int hidx = h->hidx;
  pargs a = {h, fn, arg, 0};
  lua_pushcfunction(L, protect_tramp);
  lua_pushlightuserdata(L, &a);
  lua_pushvalue(L, hidx);
  if (h->midx) lua_pushvalue(L, h->midx);
  int st = lua_pcall(L, h->midx ? 3 : 2, 0, 0);
  h->L = L;
  h->hidx = hidx;
  if (st != LUA_OK) {
    lua_setiuservalue(L, hidx, OUV_ERR);
    h->raised = 1;
    return -1;
  }
  return a.rc;
}

/* Gives the holder's sink to its op (lsink.c fills the callbacks). */
void lsq_op_attach_sink(lsq_op *h) {
  sq_oper_sink s;
  lsq_op_sink_of(h, &s);
  s.protect = op_protect;
  sq_oper_set_sink(h->op, &s);
}

void lsq_op_open(lua_State *L) {
  if (luaL_newmetatable(L, LSQ_OPH_MT)) {
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "sqorm.Operation");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}
