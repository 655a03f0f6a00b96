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
 * (libpq single-row mode, unbuffered mysql, sqlite stepping), a few dozen
 * per protected call, and are built into instances by the model's row
 * sink.
 *
 * __gc only marks (sq_cursor_abandon): a coroutine abandoned mid-loop
 * gives its pooled connection back to the pool, which closes the
 * statement before lending it again; inside a transaction the
 * transaction closes it before its next statement. No I/O runs in the
 * collector.
 *
 * The cursor owns its arena and rendered SQL (the bound values borrow
 * strings from the options table, which its user value keeps alive)
 * until it closes.
 */
#include "lmodel.h"

#include <stdio.h>
#include <string.h>

typedef struct lsq_cursor {
  sq_cursor *cur;         /* the core cursor (owns the connection's use); NULL once freed */
  sq_arena *arena;
  sq_sql sql;
  lsq_isink sink;
  sq_row_sink rs;
  const lsq_model *mod;
  int done;
  /* Rows are fetched FETCH_BATCH at a time into the buffer (the
   * iterator's upvalue 2), so the protected call and its setup are paid
   * once per batch, not per row; the loop then takes them in order. */
  int bufn, bufi;         /* rows in the buffer, rows handed out */
  int eof;                /* the driver has no more rows */
  int fetch_rc;           /* a driver error after the buffered rows (err) */
  sq_err err;
} lsq_cursor;

/* Small enough that memory stays bounded and a `break` wastes little. */
#define FETCH_BATCH 32

/* user values: 1 model, 2 options, 3 extras (names of non-column
 * results), 4 the column map when it does not fit the sink */
enum { CUV_MODEL = 1, CUV_OPTS, CUV_EXTRAS, CUV_MAP, CUV_COUNT = CUV_MAP };

/* Frees the SQL and the arena (memory only). */
static void cursor_free_mem(lsq_cursor *c) {
  sq_sql_free(&c->sql);
  if (c->arena) {
    sq_arena_free(c->arena);
    c->arena = NULL;
  }
  c->done = 1;
}

/* Closes the statement and gives a pooled connection back (I/O: unread
 * rows are discarded); frees the SQL and arena. Idempotent: __close,
 * break, errors and the end of the loop all come here. */
static void cursor_close(lsq_cursor *c) {
  if (c->cur) {
    sq_cursor *cur = c->cur;
    c->cur = NULL;
    sq_cursor_free(cur);
  }
  cursor_free_mem(c);
}

/* __gc: marks only; see the top of the file. */
static int cursor_gc(lua_State *L) {
  lsq_cursor *c = luaL_checkudata(L, 1, LSQ_CURSOR_MT);
  if (c->cur) {
    sq_cursor *cur = c->cur;
    c->cur = NULL;
    sq_cursor_abandon(cur);
  }
  cursor_free_mem(c);
  return 0;
}

/* cursor:close() and __close: ends the loop early (also what `break` does). */
static int cursor_m_close(lua_State *L) {
  lsq_cursor *c = luaL_checkudata(L, 1, LSQ_CURSOR_MT);
  cursor_close(c);
  return 0;
}

/* What each() opens its cursor with (open_p's light userdata [2]). */
typedef struct open_ctx {
  sq_pool *pool;
  sq_tx *tx;
  sq_holder h;
} open_ctx;

/* Protected: opens the cursor ([1] = the cursor, [2] = open_ctx). A Lua
 * error out of the sink leaves c->cur set, for the caller to fail. */
static int open_p(lua_State *L) {
  lsq_cursor *c = lua_touserdata(L, 1);
  open_ctx *o = lua_touserdata(L, 2);
  c->sink.L = L;
  int rc = sq_cursor_open(o->pool, &o->h, o->tx, c->sql.sql, c->sql.len, c->sql.params, c->sql.nparams, &c->rs,
                          &c->cur, &c->err);
  if (rc) {
    lua_pushinteger(L, rc);
    return 1;
  }
  if (c->sink.extras) {
    lua_pushvalue(L, c->sink.extras);
    lua_setiuservalue(L, 1, CUV_EXTRAS);
  }
  lua_pushinteger(L, 0);
  return 1;
}

/* Protected: fetches up to FETCH_BATCH rows into the buffer ([1] = the
 * cursor, [2] = the buffer). At the end of the rows sets eof; on a driver
 * error sets fetch_rc (c->err), after the rows read before it. */
static int fetch_p(lua_State *L) {
  lsq_cursor *c = lua_touserdata(L, 1);
  lsq_isink *s = &c->sink;
  s->L = L;
  lua_getiuservalue(L, 1, CUV_MODEL);
  lua_getiuservalue(L, -1, MUV_IMT);
  s->imt = lua_gettop(L);
  lua_rawgeti(L, s->imt, IMT_COLNAMES);
  s->colnames = lua_gettop(L);
  if (lua_getiuservalue(L, 1, CUV_EXTRAS) == LUA_TTABLE) s->extras = lua_gettop(L);
  else s->extras = 0;
  int top = lua_gettop(L);
  int n = 0;
  while (n < FETCH_BATCH) {
    int has = 0;
    int rc = sq_cursor_fetch(c->cur, &has, &c->err);
    if (rc) {
      c->fetch_rc = rc;
      break;
    }
    if (!has) {
      c->eof = 1;
      break;
    }
    if (lua_gettop(L) > top) {
      lua_rawseti(L, 2, ++n); /* the row the sink pushed */
      c->bufn = n;            /* counted at once: a raise below keeps it consistent */
    }
    lua_settop(L, top);
  }
  return 0;
}

/* The iterator: upvalue 1 = the cursor, upvalue 2 = the row buffer. */
static int cursor_iter(lua_State *L) {
  lsq_cursor *c = lua_touserdata(L, lua_upvalueindex(1));
  if (c->done) return 0;
  const char *why = sq_cursor_closed_reason(c->cur);
  if (why) {
    /* Its transaction (or savepoint) ended: the rows still buffered
     * belong to a transaction that is over, so none is handed out. */
    sq_err err;
    sq_err_clear(&err);
    sq_err_set(&err, SQ_ECLOSED, "each(): the cursor was closed: %s", why);
    cursor_close(c);
    return lsq_raise(L, &err);
  }
  if (c->bufi < c->bufn) {
    lua_rawgeti(L, lua_upvalueindex(2), ++c->bufi);
    return 1;
  }
  if (c->fetch_rc) {
    sq_err err = c->err;
    cursor_close(c);
    return lsq_raise(L, &err);
  }
  if (c->eof || !c->cur) {
    cursor_close(c);
    return 0;
  }
  lua_settop(L, 0);
  c->bufn = c->bufi = 0;
  lua_pushcfunction(L, fetch_p);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    /* a Lua error while building a row: the statement is half read */
    sq_cursor_fail(c->cur);
    cursor_close(c);
    return lua_error(L);
  }
  if (c->bufn == 0 && !c->fetch_rc) c->eof = 1; /* nothing came: the end */
  return cursor_iter(L);
}

/*
 * Model:each([opts]) -> iterator, nil, nil, cursor
 * opts: the options of find_all (where, attributes, order, limit, offset,
 * lock, raw, paranoid, ...).
 */
int lsq_model_each(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1); /* 3 */
  lsq_db *db = lua_touserdata(L, dbidx);

  lsq_cursor *c = lua_newuserdatauv(L, sizeof *c, CUV_COUNT); /* 4 */
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, LSQ_CURSOR_MT);
  int cidx = lua_gettop(L);
  c->mod = mod;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, cidx, CUV_MODEL);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, cidx, CUV_OPTS);

  sq_err err;
  sq_err_clear(&err);
  c->arena = sq_arena_new();
  if (!c->arena) {
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return lsq_raise(L, &err);
  }
  lsq_scratch tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.arena = c->arena;
  lsq_qb b = {L, mod, &tmp, &err, "each", 0};
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 2, QO_FIND, &q, &o);
  if (!rc) rc = sq_render(&q, mod->dialect, &c->sql, &err);
  if (rc) {
    cursor_close(c);
    return lsq_raise(L, &err);
  }
  lua_settop(L, cidx);
  lsq_isink_init(&c->sink, L, mod, SINK_FETCH);
  c->sink.raw = o.raw;
  c->sink.identity = q.attrs == NULL;
  int ncols = q.attrs ? q.nattrs : mod->ncols;
  if (ncols > c->sink.mapcap) {
    c->sink.map = lua_newuserdatauv(L, sizeof(int) * (size_t)ncols, 0);
    c->sink.mapcap = ncols;
    lua_setiuservalue(L, cidx, CUV_MAP);
  }
  lsq_isink_sink(&c->sink, &c->rs);

  lsq_log_statement(L, dbidx, "Executing", c->sql.sql, c->sql.len, -1);
  open_ctx oc;
  oc.pool = db->pool;
  oc.tx = lsq_tx_current_tx(L, dbidx);
  char what[96];
  if (!oc.tx) {
    int main = lua_pushthread(L);
    if (main) snprintf(what, sizeof what, "an each() cursor of model '%.32s' opened by the main thread", sq_model_name(mod->m));
    else snprintf(what, sizeof what, "an each() cursor of model '%.32s' opened by coroutine %p", sq_model_name(mod->m),
                  lua_topointer(L, -1));
    lua_pop(L, 1);
  }
  lsq_db_holder(db, &oc.h, oc.tx ? NULL : what);
  lua_pushcfunction(L, open_p);
  lua_pushvalue(L, cidx);
  lua_pushlightuserdata(L, &oc);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    sq_cursor_fail(c->cur);
    cursor_close(c);
    return lua_error(L);
  }
  if (lua_tointeger(L, -1)) {
    err = c->err;
    cursor_close(c);
    return lsq_raise(L, &err);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, cidx);
  lua_createtable(L, FETCH_BATCH, 0);
  lua_pushcclosure(L, cursor_iter, 2);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, cidx);
  return 4;
}

static int cursor_tostring(lua_State *L) {
  lsq_cursor *c = luaL_checkudata(L, 1, LSQ_CURSOR_MT);
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
