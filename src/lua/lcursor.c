/*
 * lcursor.c - Model:each(opts): streaming rows with bounded memory.
 *
 *   for p in Player:each{ where = ... } do ... end
 *
 * each() returns an iterator, nil, nil and the sqorm.Cursor itself as the
 * generic for's closing value, so a `break` (or an error) out of the loop
 * closes the driver cursor and gives the connection back at once. The
 * statement is a core sq_cursor (src/core/tx.c) holding one connection
 * for the whole loop: a pooled one (released at the end, on break, on
 * error), or the running coroutine's transaction's - then the
 * transaction owns the cursor and closes it when it ends (or when the
 * savepoint it was opened in ends), and the next iteration raises kind
 * closed saying so. Rows come through the driver's cursor interface
 * (libpq single-row mode, unbuffered mysql, sqlite stepping).
 *
 * Operations (lop.c): opening is a CURSOR_OPEN operation, each batch of
 * FETCH_BATCH rows a CURSOR_FETCH (one yield per batch in async mode),
 * the end a CURSOR_CLOSE. The cursor keeps its own operation holder (its
 * user value), so the sink state made when the columns came - the
 * column map, the names of non-column results - serves every batch; the
 * rows of a batch go into the iterator's buffer table, and the loop then
 * takes them in order.
 *
 * __gc only marks (sq_cursor_abandon): a coroutine abandoned mid-loop
 * gives its pooled connection back to the pool, which closes the
 * statement before lending it again; inside a transaction the
 * transaction closes it before its next statement. No I/O runs in the
 * collector.
 */
#include "lop.h"

#include <stdio.h>
#include <string.h>

typedef struct lsq_cursor {
  sq_cursor *cur;         /* the core cursor (owns the connection's use); NULL once freed */
  int done;
  int bufn, bufi;         /* rows in the buffer, rows handed out */
  int batch;              /* rows per fetch (the batch option) */
  int eof;                /* the driver has no more rows */
  int fetch_failed;       /* the last fetch failed after the buffered rows: its holder keeps the error */
} lsq_cursor;

/* Small enough that memory stays bounded and a `break` wastes little. */
#define FETCH_BATCH 32
/* each{ include = }: parents per page (one find each) unless batch says */
#define EACH_INCLUDE_BATCH 100
#define EACH_MAX_BATCH 10000

/* user values: 1 model, 2 the operation holder */
enum { CUV_MODEL = 1, CUV_OP, CUV_COUNT = CUV_OP };

/* __gc: marks only; see the top of the file. */
static int cursor_gc(lua_State *L) {
  lsq_cursor *c = luaL_checkudata(L, 1, LSQ_CURSOR_MT);
  if (lua_getiuservalue(L, 1, CUV_OP) == LUA_TUSERDATA &&
      ((lsq_op *)lua_touserdata(L, -1))->async == LOP_ASYNC_FLIGHT)
    lsq_async_drain(L); /* the state is closing with a fetch in flight */
  lua_pop(L, 1);
  if (c->cur) {
    sq_cursor *cur = c->cur;
    c->cur = NULL;
    sq_cursor_abandon(cur);
  }
  c->done = 1;
  return 0;
}

/* After the CURSOR_CLOSE operation: the cursor is freed (no I/O left).
 * ctx 0: no results; else the error at stack index ctx is raised. */
static int closed_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  /* [-4] the cursor, [-3] model, [-2] db, [-1] the holder (pushed by close_cursor) */
  lsq_op *h = lua_type(L, -1) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
  lsq_cursor *c = lua_touserdata(L, -4);
  if (c->cur) {
    sq_cursor *cur = c->cur;
    c->cur = NULL;
    sq_cursor_free(cur);
  }
  c->done = 1;
  if (h) h->busy = 0;
  if (ctx) {
    lua_pushvalue(L, (int)ctx);
    return lua_error(L);
  }
  return 0;
}

/* Closes the cursor at cidx: the statement ends (unread rows are
 * discarded) and a pooled connection goes back, as a CURSOR_CLOSE
 * operation; then closed_k(ctx). Errors of the close itself are not
 * raised (it runs from __close and at the end of loops). */
static int close_cursor(lua_State *L, int cidx, lua_KContext ctx) {
  cidx = lua_absindex(L, cidx);
  lsq_cursor *c = lua_touserdata(L, cidx);
  lua_pushvalue(L, cidx);                 /* -4: the cursor */
  lua_getiuservalue(L, cidx, CUV_MODEL);  /* -3: the model */
  lua_getiuservalue(L, -1, MUV_DB);       /* -2: its db */
  lua_getiuservalue(L, cidx, CUV_OP);     /* -1: the holder */
  if (!c->cur || lua_type(L, -1) != LUA_TUSERDATA) return closed_k(L, LUA_OK, ctx);
  lsq_op *h = lsq_op_at(L, -1);
  if (h->async == LOP_ASYNC_FLIGHT && h->L == L) {
    /* async: this coroutine is being closed (coroutine.close runs the
     * loop's __close) while its own fetch is in flight. The fetch
     * completes into sqorm.poll, which gives it up; then the cursor,
     * collected (or closed again), gives its connection back. */
    c->done = 1;
    if (ctx) {
      lua_pushvalue(L, (int)ctx);
      return lua_error(L);
    }
    return 0;
  }
  if (h->async == LOP_ASYNC_FLIGHT) /* async: another coroutine's fetch of it is in flight */
    return lsq_usage(L, "cursor:close(): a fetch of this cursor is in flight in another coroutine; close it "
                        "there, or once that call returned");
  sq_oper *op = lsq_op_begin(h, SQ_OPER_CURSOR_CLOSE);
  sq_oper_target_cursor(op, c->cur);
  h->lflags = LOP_NOLOG;
  return lsq_op_run(L, -2, h, closed_k, ctx);
}

/* cursor:close() and __close: ends the loop early (also what `break` does). */
static int cursor_m_close(lua_State *L) {
  lsq_check_self(L, 1, LSQ_CURSOR_MT, "sqorm.Cursor");
  lua_settop(L, 1);
  return close_cursor(L, 1, 0);
}

static int cursor_iter(lua_State *L);

/* After a CURSOR_FETCH: the batch is in the buffer (upvalue 2); stack:
 * [1] model [2] db [3] holder. */
static int fetched_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  lsq_cursor *c = lua_touserdata(L, lua_upvalueindex(1));
  (void)status;
  lua_pushnil(L);
  lua_setiuservalue(L, 3, OUV_OUT); /* the buffer stays the iterator's */
  c->bufn = (int)sq_oper_rows(h->op);
  c->eof = sq_oper_eof(h->op);
  if (lsq_op_failed(h)) {
    if (c->bufn > 0 && !sq_oper_interrupted(h->op)) {
      /* the rows read before the error first; the error after them */
      c->fetch_failed = 1;
    } else {
      /* raise the error after the close (which reuses the holder) */
      lua_settop(L, 0);
      if (h->raised) {
        lua_getiuservalue(L, h->base, OUV_ERR);
        h->raised = 0;
        lua_pushnil(L);
        lua_setiuservalue(L, h->base, OUV_ERR);
      } else {
        lsq_push_error(L, sq_oper_err(h->op));
      }
      lua_pushvalue(L, lua_upvalueindex(1));
      return close_cursor(L, 2, 1);
    }
  }
  if (c->bufn == 0 && !lsq_op_failed(h)) c->eof = 1; /* nothing came: the end */
  lua_settop(L, 0);
  return cursor_iter(L);
}

/* The iterator: upvalue 1 = the cursor, upvalue 2 = the row buffer. */
static int cursor_iter(lua_State *L) {
  lsq_cursor *c = lua_touserdata(L, lua_upvalueindex(1));
  if (c->done) return 0;
  const char *why = c->cur ? sq_cursor_closed_reason(c->cur) : NULL;
  if (why) {
    /* Its transaction (or savepoint) ended: the rows still buffered
     * belong to a transaction that is over, so none is handed out. */
    sq_err err;
    sq_err_clear(&err);
    sq_err_set(&err, SQ_ECLOSED, "each(): the cursor was closed: %s", why);
    lua_settop(L, 0);
    lsq_push_error(L, &err);
    lua_pushvalue(L, lua_upvalueindex(1));
    return close_cursor(L, 2, 1);
  }
  if (c->bufi < c->bufn) {
    lua_rawgeti(L, lua_upvalueindex(2), ++c->bufi);
    return 1;
  }
  if (c->fetch_failed) {
    lua_settop(L, 0);
    lua_getiuservalue(L, lua_upvalueindex(1), CUV_OP);
    lsq_op *h = lsq_op_at(L, 1);
    lsq_push_error(L, sq_oper_err(h->op));
    lua_pushvalue(L, lua_upvalueindex(1));
    return close_cursor(L, 3, 2);
  }
  if (c->eof || !c->cur) {
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    return close_cursor(L, 1, 0);
  }
  lua_settop(L, 0);
  lua_getiuservalue(L, lua_upvalueindex(1), CUV_MODEL); /* 1 */
  lua_getiuservalue(L, 1, MUV_DB);                      /* 2 */
  lua_getiuservalue(L, lua_upvalueindex(1), CUV_OP);    /* 3 */
  lsq_op *h = lsq_op_at(L, 3);
  if (h->async == LOP_ASYNC_FLIGHT) /* async: another coroutine's fetch of it is in flight */
    return lsq_usage(L, "each(): a fetch of this cursor is in flight in another coroutine; one coroutine at a "
                        "time may iterate it");
  sq_oper *op = lsq_op_begin(h, SQ_OPER_CURSOR_FETCH);
  sq_oper_target_cursor(op, c->cur);
  sq_oper_set_batch(op, c->batch);
  h->midx = 1;
  h->isink.hidx = 3;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setiuservalue(L, 3, OUV_OUT);
  lsq_op_sink_keep(L, h);
  c->bufn = c->bufi = 0;
  return lsq_op_run(L, 2, h, fetched_k, (lua_KContext)h);
}

/* After the CURSOR_OPEN: [1] model [2] options [3] db [4] cursor [5] holder. */
static int opened_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  lsq_cursor *c = lua_touserdata(L, 4);
  (void)status;
  if (lsq_op_failed(h)) {
    c->done = 1;
    return lsq_op_raise(L, h);
  }
  c->cur = sq_oper_take_cursor(h->op);
  lua_settop(L, 4);
  lua_pushvalue(L, 4);
  lua_createtable(L, c->batch < 256 ? c->batch : 256, 0);
  lua_pushcclosure(L, cursor_iter, 2);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 4);
  return 4;
}

/*
 * Model:each([opts]) -> iterator, nil, nil, cursor
 * opts: the options of find_all (where, attributes, order, limit, offset,
 * lock, raw, paranoid, ...).
 */
int lsq_model_each(lua_State *L) {
  lsq_scope_apply(L, 2, LSQ_SC_EACH, "each");
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int batch = 0;
  if (lua_type(L, 2) == LUA_TTABLE) {
    if (lua_getfield(L, 2, "batch") != LUA_TNIL) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > EACH_MAX_BATCH)
        return lsq_usage(L, "each: batch must be an integer from 1 to %d", EACH_MAX_BATCH);
      batch = (int)lua_tointeger(L, -1);
      /* the options without it (the finds don't take it) */
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, 2)) {
        if (lua_type(L, -2) == LUA_TSTRING && !strcmp(lua_tostring(L, -2), "batch")) {
          lua_pop(L, 1);
          continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
      }
      lua_replace(L, 2);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "include") != LUA_TNIL) {
      /* keyset pages, each a find with its includes (lua/sqorm/assoc.lua) */
      lua_settop(L, 2);
      lua_getglobal(L, "require");
      lua_pushliteral(L, "sqorm.assoc");
      lua_call(L, 1, 1);
      lua_getfield(L, -1, "each");
      lua_pushvalue(L, 1);
      lua_pushvalue(L, 2);
      lua_pushinteger(L, batch ? batch : EACH_INCLUDE_BATCH);
      lua_call(L, 3, 4);
      return 4;
    }
    lua_pop(L, 1);
  }
  int dbidx = lsq_model_db(L, 1); /* 3 */

  /* The object exists, closed, before anything is acquired. */
  lsq_cursor *c = lua_newuserdatauv(L, sizeof *c, CUV_COUNT); /* 4 */
  memset(c, 0, sizeof *c);
  c->done = 1;
  luaL_setmetatable(L, LSQ_CURSOR_MT);
  int cidx = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, cidx, CUV_MODEL);
  lsq_op *h = lsq_op_new(L); /* 5 */
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, cidx, CUV_OP);

  sq_err err;
  sq_err_clear(&err);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_CURSOR_OPEN);
  lsq_scratch sc;
  memset(&sc, 0, sizeof sc);
  sc.arena = sq_oper_arena(op);
  lsq_qb b = {L, mod, &sc, &err, "each", 0, NULL};
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  lsq_qopts o;
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  int rc = SQ_OK;
  c->batch = batch ? batch : FETCH_BATCH;
  if (!rc) rc = lsq_build_options(&b, 2, QO_FIND, &q, &o);
  h->route = LSQ_ROUTE_READ_OR_PRIMARY(o.use_primary || q.lock); /* replicas (lroute.h) */
  if (!rc) rc = sq_render(&q, mod->dialect, &sql, &err);
  if (!rc) rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_ARENA_VALUES, &err);
  sq_sql_free(&sql);
  if (rc) return lsq_op_fail(L, h, &err);
  lua_settop(L, 5);
  c->done = 0;
  lsq_isink *s = lsq_op_sink_model(L, h, 1, SINK_LIST);
  s->raw = o.raw;
  s->identity = q.attrs == NULL;
  s->across = 1; /* its rows come in the frames of later fetches */
  /* what its pooled connection is held for (self-deadlock messages) */
  int main = lua_pushthread(L);
  if (main) snprintf(h->what, sizeof h->what, "an each() cursor of model '%.32s' opened by the main thread", sq_model_name(mod->m));
  else snprintf(h->what, sizeof h->what, "an each() cursor of model '%.32s' opened by coroutine %p", sq_model_name(mod->m),
                lua_topointer(L, -1));
  lua_pop(L, 1);
  return lsq_op_run(L, dbidx, h, opened_k, (lua_KContext)h);
}

static int cursor_tostring(lua_State *L) {
  lsq_cursor *c = lsq_check_self(L, 1, LSQ_CURSOR_MT, "sqorm.Cursor");
  lua_pushfstring(L, "sqorm.Cursor (%s): %p", c->done ? "closed" : "open", (void *)c);
  return 1;
}

void lsq_cursor_open(lua_State *L) {
  if (luaL_newmetatable(L, LSQ_CURSOR_MT)) {
    lua_pushcfunction(L, cursor_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, cursor_m_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, cursor_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, cursor_m_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}
