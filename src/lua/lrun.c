/*
 * lrun.c - what is left of the statement runners from before
 * operations: lsq_db_run (one statement on the running coroutine's
 * transaction connection or a pooled one, always given back),
 * lsq_db_conn / lsq_db_conn_done and lsq_db_holder (also used by
 * lsq_op_run). Every database call of the binding now runs as an
 * operation (lop.c): the model's writes too (lwrite.c, lsave.c, lbulk.c,
 * lsync.c), so nothing in the binding calls lsq_db_run any more; it stays
 * until no branch uses it.
 */
#include "lmodel.h"
#include "lroute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- */
/* running statements                                                 */
/* ---------------------------------------------------------------- */

/* Runs inside lua_pcall: [1] = the lsq_exec (light userdata). Whatever
 * x->run pushes stays on the stack as the result. */
static int run_protected(lua_State *L) {
  lsq_exec *x = lua_touserdata(L, 1);
  lua_remove(L, 1); /* x->argidx's value, if any, is now at 1 */
  return x->run(L, x);
}

/* The default x->run: executes x's SQL, building row tables (want_rows)
 * into a result array it pushes, or discarding rows. */
static int run_rows(lua_State *L, lsq_exec *x) {
  if (x->want_rows) lua_createtable(L, 8, 0);
  else lua_pushnil(L); /* db:exec drops rows: no table for them */
  lsq_rows r = {L, lua_gettop(L), lua_gettop(L) + 1, 0, 0, LROWS_ALL};
  sq_row_sink sink;
  lsq_rows_sink(&r, &sink);
  x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams,
                              x->want_rows ? &sink : NULL, &x->res, &x->err);
  lua_settop(L, r.rows);
  return 1;
}

/*
 * Gets the connection for a statement of the db at dbidx: the one of the
 * transaction open in the running coroutine, else one from the pool.
 * Sets *pooled to 1 when it came from the pool (so it must be released).
 * Does not raise: returns an error kind with err filled.
 */
int lsq_db_conn(lua_State *L, int dbidx, lsq_db *db, sq_conn **out, int *pooled, sq_err *err) {
  sq_tx *tx = lsq_tx_current_tx(L, dbidx);
  int rc;
  if (tx) {
    *pooled = 0;
    rc = sq_tx_conn(tx, out, err);
  } else {
    *pooled = 1;
    sq_holder h;
    lsq_db_holder(db, &h, NULL);
    rc = sq_pool_acquire_as(db->pool, -1, &h, out, err);
  }
  /* the writes run here: read-your-writes from now (lroute.c) */
  if (!rc && db->route) lsq_route_wrote(L, dbidx);
  return rc;
}

void lsq_db_conn_done(sq_conn *c, int pooled, const sq_err *result) {
  if (!c) return;
  if (pooled) sq_pool_release(NULL, c); /* the connection knows its pool */
  else sq_tx_conn_done(sq_conn_tx(c), result);
}

void lsq_db_holder(lsq_db *db, sq_holder *h, const char *what) {
  h->owner = db->owner;
  h->owner_name = "this Lua state";
  h->what = what;
}

int lsq_db_run(lua_State *L, int dbidx, lsq_exec *x) {
  lsq_db *db = lua_touserdata(L, dbidx);
  if (!x->run) x->run = run_rows;
  dbidx = lua_absindex(L, dbidx);
  int top = lua_gettop(L);
  for (int attempt = 0;; attempt++) {
    int pooled;
    sq_err_clear(&x->err);
    x->rc = SQ_OK;
    lua_settop(L, top);
    if (lsq_db_conn(L, dbidx, db, &x->conn, &pooled, &x->err)) {
      lsq_push_error(L, &x->err);
      return 1;
    }
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, x);
    if (x->argidx) lua_pushvalue(L, x->argidx);
    if (lua_pcall(L, x->argidx ? 2 : 1, LUA_MULTRET, 0) != LUA_OK) {
      /* A Lua error (memory) midway through the rows: the statement may
       * be half read, so this connection must not be reused (inside a
       * transaction, that ends the transaction). */
      sq_conn_mark_dead(x->conn);
      lsq_db_conn_done(x->conn, pooled, NULL);
      x->conn = NULL;
      return 1;
    }
    int dead = sq_conn_is_dead(x->conn);
    lsq_db_conn_done(x->conn, pooled, x->rc ? &x->err : NULL);
    x->conn = NULL;
    if (x->rc == SQ_OK) break;
    if (attempt == 0 && pooled && x->rc == SQ_ECONNECTION && dead && x->retry_read) continue;
    lua_settop(L, top);
    lsq_push_error(L, &x->err);
    return 1;
  }
  return 0;
}

