/*
 * lrun.c - the statement runners of the write paths, from before
 * operations: lsq_db_run (one statement on the running coroutine's
 * transaction connection or a pooled one, always given back),
 * lsq_run_sql / lsq_model_run (a model statement, logged, rows through
 * the model's sink) and lsq_with_conn (several statements on one
 * connection: bulk_create, find_or_create, sync).
 *
 * Reads, raw SQL, cursors and transactions run as operations (lop.c).
 * The writes still come here until they become operations too (the
 * write kinds of sq_oper); then this file goes away.
 */
#include "lmodel.h"

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
  if (tx) {
    *pooled = 0;
    return sq_tx_conn(tx, out, err);
  }
  *pooled = 1;
  sq_holder h;
  lsq_db_holder(db, &h, NULL);
  return sq_pool_acquire_as(db->pool, -1, &h, out, err);
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

/* ---------------------------------------------------------------- */
/* running statements                                                 */
/* ---------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}


void lsq_push_fields(lua_State *L, const lsq_model *mod, const unsigned char *flags) {
  lua_createtable(L, 0, 2);
  for (int c = 0; c < mod->ncols; c++) {
    if (!flags[c]) continue;
    lua_pushliteral(L, "must be unique");
    lua_setfield(L, -2, mod->cols[c]->name);
  }
}

/* When the error on the stack top is a unique_violation, sets its
 * err.fields to { column = "must be unique" } for the columns of the
 * violated key, where the server's message names them. */
void lsq_unique_fields(lua_State *L, const lsq_model *mod) {
  if (lua_type(L, -1) != LUA_TTABLE) return;
  int e = lua_gettop(L);
  lua_getfield(L, e, "kind");
  lua_getfield(L, e, "message");
  lua_getfield(L, e, "fields");
  int uniq = lua_type(L, e + 1) == LUA_TSTRING && !strcmp(lua_tostring(L, e + 1), "unique_violation") &&
             lua_type(L, e + 2) == LUA_TSTRING && lua_isnil(L, e + 3);
  if (uniq) {
    unsigned char *flags = lua_newuserdatauv(L, (size_t)mod->ncols, 0);
    memset(flags, 0, (size_t)mod->ncols);
    if (sq_model_unique_cols(mod->m, mod->dialect, lua_tostring(L, e + 2), flags) > 0) {
      lsq_push_fields(L, mod, flags);
      lua_setfield(L, e, "fields");
    }
  }
  lua_settop(L, e);
}


int lsq_model_exec(lua_State *L, int dbidx, lsq_exec *x) {
  lsq_db *db = lua_touserdata(L, dbidx);
  lsq_log_statement(L, dbidx, "Executing", x->sql, x->len, -1, 0);
  double t0 = db->benchmark ? now_ms() : 0;
  int failed = lsq_db_run(L, dbidx, x);
  if (!failed && db->benchmark) lsq_log_statement(L, dbidx, "Executed", x->sql, x->len, now_ms() - t0, 0);
  return failed;
}

typedef struct run_ctx {
  const lsq_model *mod;
  int mode, flags;
} run_ctx;

/* x->run for row statements: builds instances / raw rows / bare arrays
 * with the model's sink and pushes the list (SINK_LIST) or the first row
 * or nil (SINK_ONE). */
static int run_rows_cb(lua_State *L, lsq_exec *x) {
  run_ctx *r = x->ud;
  if (!r->mode) {
    x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams, NULL, &x->res, &x->err);
    return 0;
  }
  lsq_isink s;
  lsq_isink_init(&s, L, r->mod, r->mode);
  s.raw = (r->flags & LSQ_RUN_RAW) != 0;
  s.bare = (r->flags & LSQ_RUN_BARE) != 0;
  s.identity = (r->flags & LSQ_RUN_ALLCOLS) != 0;
  if (r->mode == SINK_FILL) {
    s.out = 1; /* the instance, handed over as x->argidx */
    sq_row_sink sink;
    lsq_isink_sink(&s, &sink);
    x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams, &sink, &x->res, &x->err);
    return 0;
  }
  if (r->mode == SINK_LIST) lua_createtable(L, 4, 0);
  else lua_pushnil(L);
  s.out = lua_gettop(L);
  if (!s.bare) {
    if (r->flags & LSQ_RUN_MODEL1) lua_pushvalue(L, 1);
    else lsq_push_model(L, r->mod);
    lua_getiuservalue(L, -1, MUV_IMT);
    s.imt = lua_gettop(L);
    lua_rawgeti(L, s.imt, IMT_COLNAMES);
    s.colnames = lua_gettop(L);
  }
  sq_row_sink sink;
  lsq_isink_sink(&s, &sink);
  x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams, &sink, &x->res, &x->err);
  lua_settop(L, s.out);
  return 1;
}

/* Runs sql for mod; pushes the result of mode (nothing for 0). Returns 1
 * with the error on top on failure. */
int lsq_run_sql(lua_State *L, int dbidx, const lsq_model *mod, const char *sql, size_t len, const sq_value *params,
                   int nparams, int mode, int flags, sq_result *res) {
  run_ctx r = {mod, mode, flags};
  lsq_exec x;
  memset(&x, 0, sizeof x);
  x.sql = sql;
  x.len = len;
  x.params = params;
  x.nparams = nparams;
  x.retry_read = (flags & LSQ_RUN_READ) != 0;
  x.run = run_rows_cb;
  x.ud = &r;
  if (flags & LSQ_RUN_MODEL1) x.argidx = 1;
  int failed = lsq_model_exec(L, dbidx, &x);
  if (res) *res = x.res;
  if (failed) lsq_unique_fields(L, mod);
  return failed;
}

/* Runs an INSERT ... RETURNING whose row goes straight into the instance
 * at iidx (the database's values for every column). */
int lsq_run_sql_fill(lua_State *L, int dbidx, const lsq_model *mod, int iidx, const char *sql, size_t len,
                        const sq_value *params, int nparams, sq_result *res) {
  run_ctx r = {mod, SINK_FILL, LSQ_RUN_ALLCOLS};
  lsq_exec x;
  memset(&x, 0, sizeof x);
  x.sql = sql;
  x.len = len;
  x.params = params;
  x.nparams = nparams;
  x.run = run_rows_cb;
  x.ud = &r;
  x.argidx = iidx;
  int failed = lsq_model_exec(L, dbidx, &x);
  if (res) *res = x.res;
  if (failed) lsq_unique_fields(L, mod);
  return failed;
}

int lsq_model_run_sql(lua_State *L, int dbidx, const lsq_model *mod, const char *sql, size_t len, const sq_value *params,
                      int nparams, sq_result *res) {
  return lsq_run_sql(L, dbidx, mod, sql, len, params, nparams, 0, 0, res);
}

int lsq_model_run(lua_State *L, int dbidx, const lsq_model *mod, lsq_scratch *s, int mode, int flags, sq_result *res) {
  int failed = lsq_run_sql(L, dbidx, mod, s->sql.sql, s->sql.len, s->sql.params, s->sql.nparams, mode, flags, res);
  lsq_scratch_done(s);
  return failed;
}


/* ---------------------------------------------------------------- */
/* one connection for several statements                              */
/* ---------------------------------------------------------------- */


static int conn_protected(lua_State *L) {
  lsq_conn_ctx *c = lua_touserdata(L, 1);
  return c->fn(L);
}

/*
 * Calls c->fn under lua_pcall with [1] = c (light userdata) and the nargs
 * values on top of the stack, with c->conn set to the connection the
 * running coroutine must use for the db at dbidx (its transaction's, or a
 * pooled one). A pooled connection is released on every path; when fn
 * raised in the middle of a driver call, it is discarded. Returns 0 with
 * fn's results on the stack, or 1 with the error on top.
 */
int lsq_with_conn(lua_State *L, int dbidx, lsq_conn_ctx *c, int nargs) {
  lsq_db *db = lua_touserdata(L, dbidx);
  sq_err err;
  sq_err_clear(&err);
  c->in_stmt = 0;
  if (lsq_db_conn(L, dbidx, db, &c->conn, &c->pooled, &err)) {
    lua_pop(L, nargs);
    lsq_push_error(L, &err);
    return 1;
  }
  lua_pushlightuserdata(L, c);
  lua_insert(L, -(nargs + 1));
  lua_pushcfunction(L, conn_protected);
  lua_insert(L, -(nargs + 2));
  int st = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
  if (st != LUA_OK && c->in_stmt) sq_conn_mark_dead(c->conn);
  lsq_db_conn_done(c->conn, c->pooled, NULL);
  c->conn = NULL;
  return st != LUA_OK;
}

/* Inside a with_conn function: logs and runs one statement on c->conn
 * (the db at dbidx of this frame). */
int lsq_conn_exec(lua_State *L, lsq_conn_ctx *c, int dbidx, const char *sql, size_t len, const sq_value *params,
                     int nparams, const sq_row_sink *sink, sq_result *res, sq_err *err) {
  lsq_db *db = lua_touserdata(L, dbidx);
  lsq_log_statement(L, dbidx, "Executing", sql, len, -1, 0);
  double t0 = db->benchmark ? now_ms() : 0;
  c->in_stmt = 1;
  int rc = sq_conn_exec_native(c->conn, sql, len, params, nparams, sink, res, err);
  c->in_stmt = 0;
  if (!rc && db->benchmark) {
    int top = lua_gettop(L);
    lsq_log_statement(L, dbidx, "Executed", sql, len, now_ms() - t0, 0);
    lua_settop(L, top);
  }
  return rc;
}

/* Transaction control on c->conn: a real transaction on a pooled
 * connection, a savepoint inside the caller's transaction. */
static const char BULK_SP[] = "sq_bulk_sp";

int lsq_conn_begin(lua_State *L, lsq_conn_ctx *c, int dbidx, sq_err *err) {
  const sq_driver *d = sq_conn_driver(c->conn);
  lsq_log_statement(L, dbidx, "Executing", c->pooled ? "BEGIN" : "SAVEPOINT sq_bulk_sp", c->pooled ? 5 : 21, -1, 0);
  c->in_stmt = 1;
  int rc = c->pooled ? d->begin(sq_conn_handle(c->conn), SQ_ISO_DEFAULT, err) : d->savepoint(sq_conn_handle(c->conn), BULK_SP, err);
  c->in_stmt = 0;
  return rc;
}

int lsq_conn_end(lua_State *L, lsq_conn_ctx *c, int dbidx, int commit, sq_err *err) {
  const sq_driver *d = sq_conn_driver(c->conn);
  sq_dconn *h = sq_conn_handle(c->conn);
  const char *what = c->pooled ? (commit ? "COMMIT" : "ROLLBACK") : (commit ? "RELEASE SAVEPOINT sq_bulk_sp" : "ROLLBACK TO SAVEPOINT sq_bulk_sp");
  lsq_log_statement(L, dbidx, "Executing", what, strlen(what), -1, 0);
  c->in_stmt = 1;
  int rc;
  if (c->pooled) rc = commit ? d->commit(h, err) : d->rollback(h, err);
  else {
    rc = commit ? d->release(h, BULK_SP, err) : d->rollback_to(h, BULK_SP, err);
    if (!commit && !rc) rc = d->release(h, BULK_SP, err);
  }
  c->in_stmt = 0;
  return rc;
}
