/*
 * ltx.c - transactions: db:transaction(fn [, opts]), db:begin([opts]) and
 * the sqorm.Tx object.
 *
 * A transaction holds one pooled connection from begin to commit or
 * rollback. Every sqorm call made by the coroutine that opened it runs on
 * that connection: the db's user-value table has a `txs` table mapping
 * coroutine -> Tx with weak keys, so an abandoned coroutine does not keep
 * its Tx alive; the Tx's finaliser then rolls back and returns the
 * connection. A transaction opened inside another (same coroutine) is a
 * savepoint on the same connection.
 *
 * db:transaction runs fn through lua_pcallk, so fn may yield (the
 * asynchronous executor will rely on that) and the commit or rollback
 * still happens when it finishes.
 */
#include "lsqorm.h"

#include <stdio.h>
#include <string.h>

#define LSQ_TX_MT "sqorm.Tx"

const char lsq_kind_tx[] = LSQ_TX_MT;

typedef struct lsq_tx {
  lsq_tag tag;
  sq_pool *pool;       /* a reference of our own (retained); NULL when done */
  sq_conn *conn;       /* root: owned until done; savepoint: borrowed from the root */
  struct lsq_tx *root; /* NULL for a root transaction */
  int depth;           /* root: savepoints opened so far (names sq_sp_<n>) */
  char sp[24];         /* savepoint name, for a savepoint Tx */
  int done;
  /* root: the db whose ntx counts this transaction while it is open. The
   * Tx's user value keeps the db alive, and a finaliser that runs in the
   * same cycle as the db's still finds its memory. */
  lsq_db *db;
} lsq_tx;

/* The txs table of the db at dbidx (pushed), created on first use. */
static void push_txs(lua_State *L, int dbidx) {
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "txs") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "txs");
  }
  lua_remove(L, -2);
}

/* The open root Tx of the running coroutine on the db at dbidx, pushed,
 * or nothing pushed and NULL. */
static lsq_tx *current_tx(lua_State *L, int dbidx) {
  /* The common case, no transaction open on this db: no table lookups. */
  if (((lsq_db *)lua_touserdata(L, dbidx))->ntx == 0) return NULL;
  dbidx = lua_absindex(L, dbidx);
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "txs") != LUA_TTABLE) {
    lua_pop(L, 2);
    return NULL;
  }
  lua_pushthread(L);
  lua_rawget(L, -2);
  lsq_tx *tx = lsq_toudata(L, -1, lsq_kind_tx, sizeof *tx);
  if (!tx || tx->done) {
    lua_pop(L, 3);
    return NULL;
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return tx;
}

sq_conn *lsq_tx_current(lua_State *L, int dbidx) {
  lsq_db *db = lua_touserdata(L, dbidx);
  if (db->ntx == 0) return NULL;
  if (db->tx_main) {
    int main = lua_pushthread(L);
    lua_pop(L, 1);
    if (main) return ((lsq_tx *)db->tx_main)->conn;
  }
  lsq_tx *tx = current_tx(L, dbidx);
  if (!tx) return NULL;
  lua_pop(L, 1);
  return tx->conn;
}

static void set_current(lua_State *L, int dbidx, int txidx) {
  txidx = lua_absindex(L, txidx);
  push_txs(L, dbidx);
  lua_pushthread(L);
  if (txidx) lua_pushvalue(L, txidx);
  else lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int parse_isolation(lua_State *L, int opts, int *iso) {
  *iso = SQ_ISO_DEFAULT;
  if (lua_isnoneornil(L, opts)) return 0;
  if (lua_type(L, opts) != LUA_TTABLE) return lsq_usage(L, "transaction options must be a table, got %s", luaL_typename(L, opts));
  int t = lua_getfield(L, opts, "isolation");
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  const char *s = lua_tostring(L, -1);
  static const struct { const char *a, *b; int iso; } names[] = {
    {"read_uncommitted", "READ UNCOMMITTED", SQ_ISO_READ_UNCOMMITTED},
    {"read_committed", "READ COMMITTED", SQ_ISO_READ_COMMITTED},
    {"repeatable_read", "REPEATABLE READ", SQ_ISO_REPEATABLE_READ},
    {"serializable", "SERIALIZABLE", SQ_ISO_SERIALIZABLE},
  };
  for (size_t i = 0; t == LUA_TSTRING && i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(s, names[i].a) || !strcmp(s, names[i].b)) {
      *iso = names[i].iso;
      lua_pop(L, 1);
      return 0;
    }
  return lsq_usage(L, "unknown isolation level %s (expected read_uncommitted, read_committed, repeatable_read or serializable)",
                   luaL_tolstring(L, -1, NULL));
}

/*
 * Ends tx: commit (commit = 1) or rollback. A root gives its connection
 * back (marked dead when the rollback failed, so it is never reused in an
 * unknown state). Returns SQ_OK or the error of the commit (in which case
 * a rollback was attempted and the connection is gone too).
 */
static int tx_finish(lsq_tx *tx, int commit, sq_err *err) {
  if (tx->done) return SQ_OK;
  tx->done = 1;
  if (tx->db) {
    tx->db->ntx--;
    if (tx->db->tx_main == tx) tx->db->tx_main = NULL;
    tx->db = NULL;
  }
  const sq_driver *drv = sq_conn_driver(tx->conn);
  sq_dconn *h = sq_conn_handle(tx->conn);
  sq_err e2;
  sq_err_clear(&e2);
  int rc = SQ_OK;
  if (tx->root) {
    if (tx->root->done) return SQ_OK; /* the whole transaction is over already */
    if (sq_conn_is_dead(tx->conn)) return sq_err_set(err, SQ_ECONNECTION, "the transaction's connection was lost");
    if (commit) {
      rc = drv->release(h, tx->sp, err);
    } else {
      rc = drv->rollback_to(h, tx->sp, err);
      if (!rc) drv->release(h, tx->sp, &e2);
    }
    if (rc && (rc == SQ_ECONNECTION || sq_conn_is_dead(tx->conn))) sq_conn_mark_dead(tx->conn);
    return rc;
  }
  if (sq_conn_is_dead(tx->conn)) {
    rc = commit ? sq_err_set(err, SQ_ECONNECTION, "the transaction's connection was lost; nothing was committed") : SQ_OK;
  } else if (commit) {
    rc = drv->commit(h, err);
    if (rc && drv->rollback(h, &e2)) sq_conn_mark_dead(tx->conn);
  } else if (drv->rollback(h, &e2)) {
    sq_conn_mark_dead(tx->conn);
  }
  sq_pool *pool = tx->pool;
  sq_conn *c = tx->conn;
  tx->pool = NULL;
  tx->conn = NULL;
  sq_pool_release(pool, c);
  sq_pool_close(pool);
  return rc;
}

/* __gc / __close: an unfinished transaction rolls back. */
static int tx_gc(lua_State *L) {
  lsq_tx *tx = luaL_checkudata(L, 1, LSQ_TX_MT);
  sq_err e;
  sq_err_clear(&e);
  if (tx->conn && !tx->done) tx_finish(tx, 0, &e);
  return 0;
}

/* Unregisters the root tx (at txidx) of db (at dbidx) from the coroutine. */
static void unregister(lua_State *L, int dbidx, lsq_tx *tx) {
  if (tx->root) return;
  set_current(L, dbidx, 0);
}

/*
 * Opens a transaction (or a savepoint when one is open in this coroutine)
 * and pushes its Tx. Raises on failure with nothing held.
 */
static lsq_tx *tx_open(lua_State *L, int dbidx, int iso) {
  lsq_db *db = lsq_check_db(L, dbidx);
  sq_err err;
  sq_err_clear(&err);
  lsq_tx *root = current_tx(L, dbidx); /* pushes it when found */
  /* The object exists, done, before anything is acquired. */
  lsq_tx *tx = lua_newuserdatauv(L, sizeof *tx, 1);
  memset(tx, 0, sizeof *tx);
  lsq_tag_init(&tx->tag, lsq_kind_tx);
  tx->done = 1;
  luaL_setmetatable(L, LSQ_TX_MT);
  lua_pushvalue(L, root ? -2 : dbidx); /* a savepoint keeps its root alive; a root its db */
  lua_setiuservalue(L, -2, 1);
  if (root) {
    lua_remove(L, -2);
    if (iso != SQ_ISO_DEFAULT) return (lsq_tx *)(intptr_t)lsq_usage(L, "a nested transaction (savepoint) cannot set an isolation level");
    snprintf(tx->sp, sizeof tx->sp, "sq_sp_%d", ++root->depth);
    const sq_driver *drv = sq_conn_driver(root->conn);
    if (drv->savepoint(sq_conn_handle(root->conn), tx->sp, &err)) {
      if (err.kind == SQ_ECONNECTION) sq_conn_mark_dead(root->conn);
      lsq_raise(L, &err);
    }
    tx->root = root;
    tx->conn = root->conn;
    tx->done = 0;
    return tx;
  }
  sq_conn *c;
  if (sq_pool_acquire(db->pool, -1, &c, &err)) lsq_raise(L, &err);
  const sq_driver *drv = sq_conn_driver(c);
  if (drv->begin(sq_conn_handle(c), iso, &err)) {
    if (err.kind == SQ_ECONNECTION) sq_conn_mark_dead(c);
    sq_pool_release(db->pool, c);
    lsq_raise(L, &err);
  }
  sq_pool_retain(db->pool);
  tx->pool = db->pool;
  tx->conn = c;
  tx->done = 0;
  tx->db = db;
  db->ntx++;
  if (lua_pushthread(L)) db->tx_main = tx;
  lua_pop(L, 1);
  set_current(L, dbidx, -1);
  return tx;
}

/* db:begin([opts]) -> tx. Use with <close>: closing uncommitted rolls back. */
static int db_begin(lua_State *L) {
  int iso;
  lsq_check_db(L, 1);
  parse_isolation(L, 2, &iso);
  lua_settop(L, 1);
  tx_open(L, 1, iso);
  return 1;
}

/* Finishes the tx at index 1 on behalf of tx:commit / tx:rollback. */
static int tx_end(lua_State *L, int commit) {
  lsq_tx *tx = luaL_checkudata(L, 1, LSQ_TX_MT);
  if (tx->done) {
    sq_err e;
    sq_err_clear(&e);
    sq_err_set(&e, SQ_ECLOSED, "the transaction is already %s", "finished");
    return lsq_raise(L, &e);
  }
  sq_err err;
  sq_err_clear(&err);
  int rc = tx_finish(tx, commit, &err);
  if (!tx->root) {
    /* The db is the Tx's user value: unregister from its txs table. */
    lua_getiuservalue(L, 1, 1);
    unregister(L, lua_gettop(L), tx);
    lua_pop(L, 1);
  }
  if (rc) return lsq_raise(L, &err);
  return 0;
}

static int tx_commit(lua_State *L) { return tx_end(L, 1); }
static int tx_rollback(lua_State *L) { return tx_end(L, 0); }

static int tx_close(lua_State *L) {
  lsq_tx *tx = luaL_checkudata(L, 1, LSQ_TX_MT);
  if (!tx->done) return tx_end(L, 0);
  return 0;
}

static int tx_is_open(lua_State *L) {
  lsq_tx *tx = luaL_checkudata(L, 1, LSQ_TX_MT);
  lua_pushboolean(L, !tx->done && !(tx->root && tx->root->done));
  return 1;
}

static int tx_tostring(lua_State *L) {
  lsq_tx *tx = luaL_checkudata(L, 1, LSQ_TX_MT);
  lua_pushfstring(L, "sqorm.Tx (%s%s): %p", tx->root ? "savepoint" : "transaction", tx->done ? ", finished" : "", (void *)tx);
  return 1;
}

/*
 * db:transaction(fn [, opts]) -> what fn returns
 * Stack while fn runs: [1] db [2] fn [3] opts [4] tx, then fn's results.
 */
static int transaction_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  lsq_tx *tx = luaL_checkudata(L, 4, LSQ_TX_MT);
  sq_err err;
  sq_err_clear(&err);
  if (status == LUA_OK || status == LUA_YIELD) {
    int rc = tx_finish(tx, 1, &err);
    if (!tx->root) unregister(L, 1, tx);
    if (rc) return lsq_raise(L, &err);
    return lua_gettop(L) - 4;
  }
  /* fn raised: roll back (or to the savepoint) and re-raise its error. */
  tx_finish(tx, 0, &err);
  if (!tx->root) unregister(L, 1, tx);
  return lua_error(L);
}

static int db_transaction(lua_State *L) {
  int iso;
  lsq_check_db(L, 1);
  if (lua_type(L, 2) != LUA_TFUNCTION)
    return lsq_usage(L, "db:transaction expects a function, got %s", luaL_typename(L, 2));
  parse_isolation(L, 3, &iso);
  lua_settop(L, 3);
  tx_open(L, 1, iso); /* [4] */
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 4);
  return transaction_k(L, lua_pcallk(L, 1, LUA_MULTRET, 0, 0, transaction_k), 0);
}

static const luaL_Reg tx_methods[] = {
  {"commit", tx_commit},
  {"rollback", tx_rollback},
  {"is_open", tx_is_open},
  {NULL, NULL},
};

static const luaL_Reg tx_meta[] = {
  {"__gc", tx_gc},
  {"__close", tx_close},
  {"__tostring", tx_tostring},
  {NULL, NULL},
};

/* Registers sqorm.Tx and adds transaction/begin to the Db methods. */
void lsq_tx_open(lua_State *L) {
  if (luaL_newmetatable(L, LSQ_TX_MT)) {
    luaL_setfuncs(L, tx_meta, 0);
    luaL_newlib(L, tx_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_getmetatable(L, LSQ_DB_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, db_transaction);
  lua_setfield(L, -2, "transaction");
  lua_pushcfunction(L, db_begin);
  lua_setfield(L, -2, "begin");
  lua_pop(L, 2);
}
