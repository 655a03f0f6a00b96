/*
 * lsqorm.h - shared by the binding's files (the .c files in src/lua). The binding is
 * the only code that includes lua.h, and it sees only the public sqorm.h.
 */
#ifndef LSQORM_H
#define LSQORM_H

#include "sqorm.h"

#include <lauxlib.h>
#include <lua.h>

#define LSQ_DB_MT "sqorm.Db"
#define LSQ_ERROR_MT "sqorm.Error"
#define LSQ_NULL_MT "sqorm.Null"

/*
 * Fast type tests for the userdata that every statement checks (db,
 * model, transaction). Each starts with an lsq_tag naming its kind and
 * pointing at itself: no other userdata carries that pair, and Lua code
 * cannot forge it (it never writes raw bytes into a userdata). Checking
 * it costs a few loads, where luaL_testudata looks the metatable up in
 * the registry by name - a few times per call on the hottest paths.
 */
typedef struct lsq_tag {
  const char *kind; /* one of lsq_kind_* */
  const void *self; /* the userdata's own address */
} lsq_tag;
extern const char lsq_kind_db[], lsq_kind_model[], lsq_kind_tx[];

static inline void lsq_tag_init(lsq_tag *t, const char *kind) {
  t->kind = kind;
  t->self = t;
}

/* The userdata at idx when it carries the tag of kind (size: its C type's). */
static inline void *lsq_toudata(lua_State *L, int idx, const char *kind, size_t size) {
  if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) < size) return NULL;
  lsq_tag *t = lua_touserdata(L, idx);
  return t->kind == kind && t->self == t ? t : NULL;
}

/* A db handle: one reference to a pool. Its user value 1 is a table with
 * the Lua things it needs: `logging` (a function or nil). */
typedef struct lsq_db {
  lsq_tag tag;
  sq_pool *pool;  /* NULL once closed */
  int dialect;
  int benchmark;  /* log elapsed time after each statement */
  int logging;    /* a logging function was given (fixed at connect) */
  /* Root transactions open on this db, in any coroutine (ltx.c). While
   * it is 0 no statement needs to look for the running coroutine's
   * transaction. */
  int ntx;
  /* The open root transaction of the main thread, if any: the main
   * thread is never collected, so statements in it can find their
   * transaction without the txs lookup. */
  void *tx_main;
  /* This Lua state (its main thread): the pool's holder identity, so an
   * acquire that only this state could satisfy fails at once. */
  const void *owner;
  struct lsq_stmts *stmts; /* db:query / db:exec rewrites (lraw.c), or NULL */
  /* Operations record their rows and replay them into their sink (what
   * async mode does), inline too: a test switch (lop.c). */
  int replay;
  /* Read replicas (lroute.c): the replica set, or NULL. With it, pool is
   * the set's primary (a reference of the db's own). */
  struct lsq_route *route;
  /* async connect option (lasync.c): 0 false, 1 true, 2 "auto" */
  int async;
  /* timeout connect option: the default per-call timeout, seconds (0: none) */
  double timeout;
  /* lazy connect option: 1 "raise" (the default of every association's lazy, lassoc.c) */
  int lazy;
} lsq_db;

/* User values of a db: 1 its table (logging function, txs, ...), 2 the
 * state's cached operation holder once an op ran on it (lop.c,
 * lsq_op_get_db: a user value is cheaper to reach than the registry). */
enum { LSQ_DBUV_OP = 2, LSQ_DBUV_COUNT = 2 };

/* Raises err as a sqorm.Error object. Never returns. */
int lsq_raise(lua_State *L, const sq_err *err);
/* Raises a usage error with a formatted message. Never returns. */
int lsq_usage(lua_State *L, const char *fmt, ...);
/* The userdata of metatable mt at idx, else a usage error naming what
 * (e.g. "sqorm.Tx") was expected as self. */
void *lsq_check_self(lua_State *L, int idx, const char *mt, const char *what);
/* Pushes err as a sqorm.Error table (does not raise). */
void lsq_push_error(lua_State *L, const sq_err *err);
void lsq_error_open(lua_State *L);

/* 1 when the value at idx is sqorm.null. */
int lsq_is_null(lua_State *L, int idx);
/* 1 when the coroutine co has finished: returned, raised, or was closed
 * (ltx.c). */
int lsq_thread_dead(lua_State *co);
void lsq_push_null(lua_State *L);

/*
 * Converts the Lua value at idx into v without allocating: strings are
 * borrowed from Lua (valid while the value stays reachable from the
 * stack). Returns SQ_OK, or SQ_EUSAGE with a message naming `what`.
 */
int lsq_to_value(lua_State *L, int idx, sq_value *v, const char *what, sq_err *err);
/* Pushes v; NULL pushes nil. */
void lsq_push_value(lua_State *L, const sq_value *v);

/* A row sink that builds an array of row tables (keyed by column name) in
 * the table at stack index `rows`. Column names are interned once per
 * statement, on the stack above the sink's own slots. */
typedef struct lsq_rows {
  lua_State *L;
  int rows;        /* absolute index of the result array */
  int names_base;  /* absolute index of the first column name */
  int ncols;
  lua_Integer n;   /* rows so far */
  int first;       /* LROWS_*: keep only the first row (plain) or its first value (scalar) */
} lsq_rows;
/* lsq_rows.first: db:query's { plain = true } and { scalar = true }. */
enum { LROWS_ALL = 0, LROWS_PLAIN = 1, LROWS_SCALAR = 2 };
void lsq_rows_sink(lsq_rows *r, sq_row_sink *sink);

/*
 * One statement run by lsq_db_run. The caller fills sql..nparams and
 * either sets want_rows (the default runner pushes an array of row
 * tables, or nothing useful when want_rows is 0) or its own `run`, which
 * is called inside lua_pcall with the connection in x->conn, must call
 * the driver itself, store rc/err/res in x, and returns how many results
 * it pushed. retry_read: the statement may be re-run once on a fresh
 * connection if the pooled one was found dead.
 */
typedef struct lsq_exec {
  const char *sql;
  size_t len;
  const sq_value *params;
  int nparams;
  int want_rows;
  int retry_read;
  int (*run)(lua_State *L, struct lsq_exec *x);
  void *ud;
  int argidx;      /* a stack value handed to run as its argument 1 (0: none) */
  sq_conn *conn;   /* set while run is called */
  sq_result res;
  sq_err err;
  int rc;
} lsq_exec;

/*
 * Runs x on the transaction connection of the running coroutine (if a
 * transaction of this db is open in it) or on a pooled connection that is
 * always given back, even when x->run raises. Returns 0 with x->run's
 * results on the stack, or 1 with the error value on the stack top (the
 * caller frees what it holds, then lua_error). Never raises itself
 * except on memory errors before acquiring.
 */
int lsq_db_run(lua_State *L, int dbidx, lsq_exec *x);
/*
 * The connection the running coroutine must use for db (see lsq_db_run):
 * its transaction's (*pooled = 0; the transaction is pinned: it can't be
 * ended until lsq_db_conn_done), or one acquired from the pool
 * (*pooled = 1). Every success must be followed by lsq_db_conn_done.
 * Fails (does not raise) when the transaction has ended (kind closed, or
 * the kind of the error that ended it) or no connection is available.
 */
int lsq_db_conn(lua_State *L, int dbidx, lsq_db *db, sq_conn **out, int *pooled, sq_err *err);
/* Ends a use begun by lsq_db_conn: a pooled connection goes back to the
 * pool, a transaction's is unpinned. result: the error of what ran on it
 * (a deadlock or a lost connection ends the transaction), or NULL. */
void lsq_db_conn_done(sq_conn *c, int pooled, const sq_err *result);
/* The holder the db's statements acquire as (what: NULL or a label). */
void lsq_db_holder(lsq_db *db, sq_holder *h, const char *what);
/* The connection of the transaction the running coroutine has open on
 * the db at dbidx, or NULL (borrowed: prefer lsq_db_conn). (ltx.c) */
sq_conn *lsq_tx_current(lua_State *L, int dbidx);
/* The core transaction the running coroutine has open on the db at
 * dbidx (open, or failed: using it raises), or NULL. (ltx.c) */
sq_tx *lsq_tx_current_tx(lua_State *L, int dbidx);

/* Calls the db's logging function, if any, with "<verb> (default): <sql>"
 * (ms >= 0 adds " Elapsed time: 0.42ms", two decimals, and a queue wait
 * of at least 0.005 ms " (queued 3.00ms)"). May raise; call it holding
 * nothing that a raise would leak. (ldb.c) */
void lsq_log_statement(lua_State *L, int dbidx, const char *verb, const char *sql, size_t len, double ms,
                       double queued_ms);

lsq_db *lsq_check_db(lua_State *L, int idx);
/* Frees the db's statement cache (lraw.c); with force 0 only when no
 * entry is in use. */
void lsq_stmts_free(lsq_db *db, int force);
void lsq_db_open(lua_State *L);
void lsq_raw_open(lua_State *L); /* after lsq_db_open */
void lsq_tx_open(lua_State *L); /* after lsq_db_open */
int lsq_connect(lua_State *L);

#endif
