/*
 * ltx.c - transactions: db:transaction(fn [, opts]), db:begin([opts]) and
 * the sqorm.Tx object, over the core's sq_tx (src/core/tx.c), which owns
 * the connection, the savepoints and the cursors of a transaction.
 *
 * Routing. Every sqorm call made by the coroutine that opened a
 * transaction runs on its connection: the db's user-value table has a
 * `txs` table mapping coroutine -> root Tx with weak keys (an ephemeron:
 * the Tx keeps its coroutine in a user value, and the pair is collected
 * together when the coroutine is abandoned). A transaction opened inside
 * another one (same coroutine) is a savepoint of the same sq_tx. The root
 * stays registered until its owner ends it, so after a deadlock or a lost
 * connection ended it, the coroutine's statements raise instead of
 * running outside it.
 *
 * Ownership. Only the coroutine that opened a transaction may commit or
 * roll it back (or a savepoint of it): from any other it is kind usage
 * and nothing changes - unless that coroutine is dead, and then anyone
 * may end it.
 *
 * Finalisers only mark: a collected root is abandoned (its connection
 * goes back to the pool, which rolls it back before lending it again); a
 * collected savepoint is forgotten (it stays part of its parent, see
 * sqorm.h). No SQL runs from a finaliser.
 *
 * Logging: BEGIN, COMMIT, ROLLBACK and the savepoint statements go to
 * the db's logging function like any statement. When ending a
 * transaction, the logging function runs protected: if it raises, the
 * transaction still ends, and its error is raised afterwards.
 *
 * Operations (lop.c): BEGIN (on the pool), SAVEPOINT, COMMIT, ROLLBACK,
 * RELEASE and ROLLBACK TO (on the core transaction) are each one
 * operation, and every step that follows one is a continuation, so in
 * async mode each yields once. db:transaction runs fn through lua_pcallk,
 * so fn may yield too, and the commit or rollback still happens when it
 * finishes. The end of a transaction is one state machine (finish_start
 * and finish_k) that each of its callers enters with what comes next.
 */
#include "lop.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LSQ_TX_MT "sqorm.Tx"

const char lsq_kind_tx[] = LSQ_TX_MT;

/* user values: 1 the parent (the db for a root, the root Tx for a
 * savepoint), 2 the owning coroutine, 3 (a root) the after_commit
 * callbacks (see "after commit" below) */
enum { TUV_PARENT = 1, TUV_OWNER, TUV_AFTER, TUV_COUNT = TUV_AFTER };

typedef struct lsq_tx {
  lsq_tag tag;
  sq_tx *tx;     /* the core transaction (a reference); NULL until opened, and after __gc */
  unsigned sp;   /* 0: the root; else the savepoint's id */
  /* root, while registered in the db's txs table: the db whose ntx
   * counts it. The Tx's user value keeps the db alive, and a finaliser
   * that runs in the same cycle as the db's still finds its memory. */
  lsq_db *db;
  int ro;        /* read_only = true (a root: on a replica; PostgreSQL: READ ONLY) */
  double began;  /* a root with replication: when it began (sq_replset_now), for read-your-writes */
} lsq_tx;

/* ---------------------------------------------------------------- */
/* the coroutine -> transaction table                                 */
/* ---------------------------------------------------------------- */

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

/* The registered root Tx of the running coroutine on the db at dbidx,
 * pushed, or nothing pushed and NULL. */
static lsq_tx *current_root(lua_State *L, int dbidx) {
  lsq_db *db = lua_touserdata(L, dbidx);
  if (db->ntx == 0) return NULL; /* the common case: no lookups */
  dbidx = lua_absindex(L, dbidx);
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "txs") != LUA_TTABLE) {
    lua_pop(L, 2);
    return NULL;
  }
  lua_pushthread(L);
  lua_rawget(L, -2);
  lsq_tx *tx = lsq_toudata(L, -1, lsq_kind_tx, sizeof *tx);
  if (!tx || !tx->tx || !tx->db) {
    lua_pop(L, 3);
    return NULL;
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
  return tx;
}

sq_tx *lsq_tx_current_tx(lua_State *L, int dbidx) {
  lsq_db *db = lua_touserdata(L, dbidx);
  if (db->ntx == 0) return NULL;
  if (db->tx_main) {
    int main = lua_pushthread(L);
    lua_pop(L, 1);
    if (main) return ((lsq_tx *)db->tx_main)->tx;
  }
  lsq_tx *tx = current_root(L, dbidx);
  if (!tx) return NULL;
  lua_pop(L, 1);
  return tx->tx;
}

sq_conn *lsq_tx_current(lua_State *L, int dbidx) { return sq_tx_peek_conn(lsq_tx_current_tx(L, dbidx)); }

/* Registers the root Tx at txidx as the running coroutine's on the db at
 * dbidx. */
static void register_root(lua_State *L, int dbidx, int txidx, lsq_tx *tx) {
  lsq_db *db = lua_touserdata(L, dbidx);
  txidx = lua_absindex(L, txidx);
  push_txs(L, dbidx);
  int main = lua_pushthread(L);
  lua_pushvalue(L, txidx);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  tx->db = db;
  db->ntx++;
  if (main) db->tx_main = tx;
}

/* Unregisters the root Tx at txidx (from its owner's entry, which need
 * not be the running coroutine's). */
static void unregister_root(lua_State *L, int txidx, lsq_tx *tx) {
  if (tx->sp || !tx->db) return;
  lsq_db *db = tx->db;
  tx->db = NULL;
  db->ntx--;
  if (db->tx_main == tx) db->tx_main = NULL;
  txidx = lua_absindex(L, txidx);
  lua_getiuservalue(L, txidx, TUV_PARENT); /* the db */
  lua_getiuservalue(L, -1, 1);
  if (lua_getfield(L, -1, "txs") == LUA_TTABLE) {
    lua_getiuservalue(L, txidx, TUV_OWNER);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    int mine = lua_rawequal(L, -1, txidx);
    lua_pop(L, 1);
    if (mine) {
      lua_pushnil(L);
      lua_rawset(L, -3);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 3);
}

/* Pushes the db a Tx belongs to. */
static void push_tx_db(lua_State *L, int txidx, const lsq_tx *tx) {
  lua_getiuservalue(L, txidx, TUV_PARENT);
  if (tx->sp) {
    lua_getiuservalue(L, -1, TUV_PARENT);
    lua_remove(L, -2);
  }
}

/* ---------------------------------------------------------------- */
/* options                                                            */
/* ---------------------------------------------------------------- */

/* Reads { isolation = ..., read_only = ... } at opts strictly: an
 * unknown key is usage. */
static void parse_opts(lua_State *L, int opts, const char *method, int *iso, int *ro) {
  *iso = SQ_ISO_DEFAULT;
  *ro = 0;
  if (lua_isnoneornil(L, opts)) return;
  if (lua_type(L, opts) != LUA_TTABLE)
    lsq_usage(L, "%s: options must be a table, got %s", method, luaL_typename(L, opts));
  opts = lua_absindex(L, opts);
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING ||
        (strcmp(lua_tostring(L, -1), "isolation") != 0 && strcmp(lua_tostring(L, -1), "read_only") != 0)) {
      if (lua_type(L, -1) == LUA_TSTRING)
        lsq_usage(L, "%s: unknown option '%s' (the options are isolation and read_only)", method, lua_tostring(L, -1));
      lsq_usage(L, "%s: option names must be strings, got a %s key", method, luaL_typename(L, -1));
    }
  }
  /* read_only (read replicas, lroute.h) */
  int rt = lua_getfield(L, opts, "read_only");
  if (rt != LUA_TNIL && rt != LUA_TBOOLEAN)
    lsq_usage(L, "%s: option 'read_only' must be a boolean, got %s", method, luaL_typename(L, -1));
  *ro = lua_toboolean(L, -1);
  lua_pop(L, 1);
  int t = lua_getfield(L, opts, "isolation");
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return;
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
      return;
    }
  lsq_usage(L, "unknown isolation level %s (expected read_uncommitted, read_committed, repeatable_read or serializable)",
            luaL_tolstring(L, -1, NULL));
}

/* ---------------------------------------------------------------- */
/* logging                                                            */
/* ---------------------------------------------------------------- */

/* [1] the db, [2] verb, [3] sql, [4] ms */
static int log_p(lua_State *L) {
  size_t len;
  const char *sql = lua_tolstring(L, 3, &len);
  lsq_log_statement(L, 1, lua_tostring(L, 2), sql, len, lua_tonumber(L, 4), 0);
  return 0;
}

/* Logs like lsq_log_statement (db at dbidx) without raising: returns 0,
 * or 1 with the logging function's error on the stack top. */
static int log_quiet(lua_State *L, int dbidx, const char *verb, const char *sql, double ms) {
  if (!((lsq_db *)lua_touserdata(L, dbidx))->logging) return 0;
  dbidx = lua_absindex(L, dbidx);
  lua_pushcfunction(L, log_p);
  lua_pushvalue(L, dbidx);
  lua_pushstring(L, verb);
  lua_pushstring(L, sql);
  lua_pushnumber(L, ms);
  return lua_pcall(L, 4, 0, 0) != LUA_OK;
}

/* Logs the op's records (Executed with its time when executed), each
 * protected; stops at the first logging error, left on the stack top
 * (returns 1). */
static int log_records(lua_State *L, int dbidx, const sq_oper *op, int executed) {
  for (int i = 0; i < sq_oper_nlogs(op); i++) {
    const sq_oper_log *l = sq_oper_log_at(op, i);
    if (log_quiet(L, dbidx, executed ? "Executed" : "Executing", l->sql, executed ? l->elapsed * 1e3 : -1)) return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- */
/* ending                                                             */
/* ---------------------------------------------------------------- */

/* Describes the thread at idx for messages: "coroutine 0x..." or "the
 * main thread". */
static void describe_thread(lua_State *L, int idx, char *buf, size_t n) {
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  int main = lua_rawequal(L, -1, idx);
  lua_pop(L, 1);
  if (main) snprintf(buf, n, "the main thread");
  else snprintf(buf, n, "coroutine %p", lua_topointer(L, idx));
}

/* 1 when the coroutine co has finished (returned, raised or was closed). */
int lsq_thread_dead(lua_State *co) {
  int st = lua_status(co);
  if (st == LUA_YIELD) return 0;
  if (st != LUA_OK) return 1;
  lua_Debug ar;
  return lua_getstack(co, 0, &ar) == 0 && lua_gettop(co) == 0;
}

/* Raises usage unless the running coroutine owns the Tx at txidx (or its
 * owner has finished). */
static void check_owner(lua_State *L, int txidx, const char *verb) {
  lua_getiuservalue(L, txidx, TUV_OWNER);
  lua_State *owner = lua_tothread(L, -1);
  if (!owner || owner == L || lsq_thread_dead(owner)) {
    lua_pop(L, 1);
    return;
  }
  char who[48], me[48];
  describe_thread(L, -1, who, sizeof who);
  lua_pushthread(L);
  describe_thread(L, -1, me, sizeof me);
  lsq_usage(L, "cannot %s this transaction from %s: it belongs to %s, which opened it, and only that coroutine "
               "may end it", verb, me, who);
}

/*
 * Ending a transaction or savepoint: one operation (COMMIT, ROLLBACK,
 * RELEASE or ROLLBACK TO + RELEASE) with its statements logged, then
 * what the caller asked for next (NEXT_*). finish_start pushes, above
 * the caller's stack (its top t): [t+1] the db, [t+2] the error of an
 * "Executing" log line or nil, [t+3] the holder. finish_k drops them and
 * goes on with the caller's stack as it was.
 */
enum {
  NEXT_END = 1,    /* tx:commit() / tx:rollback() / __close: raise what failed, else no results */
  NEXT_COMMITTED,  /* db:transaction after fn returned: fn's results, or the failure */
  NEXT_RAISE       /* after a quiet rollback: raise the value at stack index `arg` */
};

#define FIN_CTX(next, commit, quiet, nolog, top, arg)                                                   \
  ((lua_KContext)(next) | (lua_KContext)(commit) << 4 | (lua_KContext)(quiet) << 5 |                   \
   (lua_KContext)(nolog) << 6 | (lua_KContext)(top) << 8 | (lua_KContext)(arg) << 32)
#define FIN_NEXT(c) ((int)((c) & 15))
#define FIN_COMMIT(c) ((int)(((c) >> 4) & 1))
#define FIN_QUIET(c) ((int)(((c) >> 5) & 1))
#define FIN_NOLOG(c) ((int)(((c) >> 6) & 1))
#define FIN_TOP(c) ((int)(((c) >> 8) & 0xffffff))
#define FIN_ARG(c) ((int)((c) >> 32))

static int finish_k(lua_State *L, int status, lua_KContext ctx);

/* The Tx at txidx ends: commit or roll back. quiet: the logging
 * function's errors are ignored; nolog: nothing is logged. */
static int finish_start(lua_State *L, int txidx, int commit, int quiet, int nolog, int next, int arg) {
  txidx = lua_absindex(L, txidx);
  lsq_tx *tx = lua_touserdata(L, txidx);
  int top = lua_gettop(L);
  push_tx_db(L, txidx, tx); /* t+1 */
  int dbidx = top + 1;
  lua_pushnil(L);           /* t+2 */
  lsq_op *h = lsq_op_get_db(L, dbidx); /* t+3 */
  int kind = tx->sp ? (commit ? SQ_OPER_RELEASE : SQ_OPER_ROLLBACK_TO) : (commit ? SQ_OPER_COMMIT : SQ_OPER_ROLLBACK);
  sq_oper *op = lsq_op_begin(h, kind);
  sq_oper_target_tx(op, tx->tx);
  sq_oper_set_savepoint(op, tx->sp);
  h->lflags = LOP_NOLOG; /* logged here, protected */
  /* read replicas (lroute.h): a COMMIT is a write when its coroutine wrote since BEGIN */
  if (tx->ro || (!tx->sp && lsq_route_last_write(L, dbidx) < tx->began)) h->route = LSQ_ROUTE_NOWRITE;
  /* Log only what will really run. */
  int runs = tx->sp ? sq_tx_savepoint_is_open(tx->tx, tx->sp) : sq_tx_state(tx->tx) == SQ_TX_OPEN;
  lsq_db *db = lua_touserdata(L, dbidx);
  if (runs && !nolog && db->logging) {
    sq_err err;
    sq_err_clear(&err);
    if (sq_oper_prepare(op, db->dialect, &err)) return lsq_op_fail(L, h, &err);
    if (log_records(L, dbidx, op, 0)) lua_replace(L, top + 2);
  }
  return lsq_op_run(L, dbidx, h, finish_k, FIN_CTX(next, commit, quiet, nolog, top, arg));
}

static int transaction_done(lua_State *L, int status, lua_KContext ctx);

/* ---------------------------------------------------------------- */
/* after commit                                                       */
/* ---------------------------------------------------------------- */

/*
 * ctx:after_commit(f) of a hook (lua/sqorm/hooks.lua) inside a
 * transaction: f is kept by the root Tx (TUV_AFTER: a list of f, then the
 * id the next savepoint would get when f was added) and runs after the
 * root's COMMIT, in the order added, in the coroutine that committed,
 * through lua_pcallk (so it may yield). A rollback of the root drops them
 * all; a rollback to a savepoint drops those added while it was open
 * (added after it began: their id is above the savepoint's). A callback
 * that raises does not stop the others; once all ran, the commit call
 * raises kind after_commit (the transaction is committed) with the first
 * error as err.cause.
 */

/* db:_after_commit(f) -> true when f is kept for the running coroutine's
 * transaction on db, false (nothing kept) when it has none open. */
static int db_after_commit(lua_State *L) {
  lsq_check_db(L, 1);
  if (lua_type(L, 2) != LUA_TFUNCTION)
    return lsq_usage(L, "after_commit expects a function, got %s", luaL_typename(L, 2));
  lua_settop(L, 2);
  lsq_tx *root = current_root(L, 1); /* 3 */
  if (!root) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (lua_getiuservalue(L, 3, TUV_AFTER) != LUA_TTABLE) { /* 4 */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 3, TUV_AFTER);
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, 4);
  lua_pushvalue(L, 2);
  lua_rawseti(L, 4, n + 1);
  lua_pushinteger(L, (lua_Integer)sq_tx_next_savepoint(root->tx));
  lua_rawseti(L, 4, n + 2);
  lua_pushboolean(L, 1);
  return 1;
}

/* db:_transaction() -> the root Tx the running coroutine has open on db,
 * or nil. */
static int db_current_tx(lua_State *L) {
  lsq_check_db(L, 1);
  lua_settop(L, 1);
  if (!current_root(L, 1)) lua_pushnil(L);
  return 1;
}

/* The Tx at txidx was rolled back: drop the callbacks that it undid. */
static void after_drop(lua_State *L, int txidx, const lsq_tx *tx) {
  txidx = lua_absindex(L, txidx);
  if (!tx->sp) {
    lua_pushnil(L);
    lua_setiuservalue(L, txidx, TUV_AFTER);
    return;
  }
  int top = lua_gettop(L);
  lua_getiuservalue(L, txidx, TUV_PARENT); /* the root */
  if (lua_type(L, -1) == LUA_TUSERDATA && lua_getiuservalue(L, -1, TUV_AFTER) == LUA_TTABLE) {
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list), k = 0;
    for (lua_Integer i = 1; i + 1 <= n; i += 2) {
      lua_rawgeti(L, list, i + 1);
      lua_Integer at = lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (at > (lua_Integer)tx->sp) continue; /* added inside the savepoint */
      lua_rawgeti(L, list, i);
      lua_rawseti(L, list, k + 1);
      lua_pushinteger(L, at);
      lua_rawseti(L, list, k + 2);
      k += 2;
    }
    for (lua_Integer i = k + 1; i <= n; i++) {
      lua_pushnil(L);
      lua_rawseti(L, list, i);
    }
  }
  lua_settop(L, top);
}

#define AC_CTX(next, top, i) \
  ((lua_KContext)(next) | (lua_KContext)(top) << 4 | (lua_KContext)(i) << 32)

/*
 * The callbacks of a committed root, then what its commit call returns
 * (next: NEXT_END or NEXT_COMMITTED). Stack: [top+1] the list, [top+2]
 * the commit's logging error or nil, [top+3] the first callback error or
 * nil. i: how many callbacks ran.
 */
/* Stands for a callback's error that was nil (nil at top+3 is "none"). */
static char ac_nil_error;

/* Keeps the error on top of the stack at top+3 when it is the first one. */
static void ac_keep_error(lua_State *L, int top) {
  if (!lua_isnil(L, top + 3)) return;
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushlightuserdata(L, &ac_nil_error);
  }
  lua_replace(L, top + 3);
}

static int after_k(lua_State *L, int status, lua_KContext ctx) {
  int next = (int)(ctx & 15), top = (int)((ctx >> 4) & 0xfffffff);
  lua_Integer i = (lua_Integer)(ctx >> 32);
  if (status != LUA_OK && status != LUA_YIELD) ac_keep_error(L, top);
  for (;;) {
    lua_settop(L, top + 3);
    i++;
    if (lua_rawgeti(L, top + 1, 2 * i - 1) != LUA_TFUNCTION) break;
    int st = lua_pcallk(L, 0, 0, 0, AC_CTX(next, top, i), after_k);
    if (st != LUA_OK) ac_keep_error(L, top);
  }
  lua_settop(L, top + 3);
  if (!lua_isnil(L, top + 2)) {
    lua_pushvalue(L, top + 2);
    return lua_error(L);
  }
  if (!lua_isnil(L, top + 3)) {
    lua_createtable(L, 0, 4); /* top+4 */
    lua_pushliteral(L, "after_commit");
    lua_setfield(L, top + 4, "kind");
    /* the raised value, described without calling into it (its
     * __tostring may raise or return no string) */
    int is_nil = lua_touserdata(L, top + 3) == &ac_nil_error;
    const char *m;
    if (is_nil) m = "nil";
    else if (lua_type(L, top + 3) == LUA_TSTRING) m = lua_tostring(L, top + 3);
    else {
      lua_pushliteral(L, "message"); /* top+5: an error object's message (raw: no __index runs) */
      if (lua_type(L, top + 3) == LUA_TTABLE && lua_rawget(L, top + 3) == LUA_TSTRING) {
      } else {
        lua_settop(L, top + 4);
        lua_pushfstring(L, "(a %s)", luaL_typename(L, top + 3));
      }
      m = lua_tostring(L, top + 5);
    }
    lua_pushfstring(L, "the transaction was committed, but an after_commit callback raised: %s", m);
    lua_setfield(L, top + 4, "message");
    lua_settop(L, top + 4);
    if (is_nil) lua_pushnil(L);
    else lua_pushvalue(L, top + 3);
    lua_setfield(L, top + 4, "cause");
    lua_pushboolean(L, 1);
    lua_setfield(L, top + 4, "committed");
    luaL_setmetatable(L, LSQ_ERROR_MT);
    return lua_error(L);
  }
  lua_settop(L, top);
  return next == NEXT_END ? 0 : top - 4;
}

/* After a root's COMMIT with callbacks: [top+1] the db, [top+2] the
 * logging error or nil, [top+3] the callbacks. */
static int after_start(lua_State *L, int next, int top, int logerr) {
  lua_settop(L, top + 3);
  lua_pushvalue(L, top + 3);
  lua_replace(L, top + 1);
  if (!logerr) {
    lua_pushnil(L);
    lua_replace(L, top + 2);
  }
  lua_pushnil(L);
  lua_replace(L, top + 3);
  return after_k(L, LUA_OK, AC_CTX(next, top, 0));
}


static int finish_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  int top = FIN_TOP(ctx), dbidx = top + 1, lerr = top + 2;
  int txidx = FIN_NEXT(ctx) == NEXT_END ? 1 : 4;
  lsq_op *h = lua_touserdata(L, top + 3);
  lsq_tx *tx = lua_touserdata(L, txidx);
  lsq_db *db = lua_touserdata(L, dbidx);
  sq_oper *op = h->op;
  int rc = sq_oper_rc(op);
  sq_err err;
  err.kind = SQ_OK;
  if (rc) err = *sq_oper_err(op);
  if (!tx->sp && sq_tx_state(tx->tx) != SQ_TX_OPEN) unregister_root(L, txidx, tx);
  int ran = sq_oper_nlogs(op) > 0 && sq_oper_log_at(op, 0)->elapsed >= 0;
  if (ran && !rc && lua_isnil(L, lerr) && !FIN_NOLOG(ctx) && db->benchmark && db->logging &&
      log_records(L, dbidx, op, 1))
    lua_replace(L, lerr);
  lsq_op_done(L, h);
  int logerr = !lua_isnil(L, lerr) && !FIN_QUIET(ctx);
  /* after_commit callbacks: dropped by a rollback, taken by a root's
   * COMMIT (into the holder's slot, idle now) */
  int after = 0;
  if (!FIN_COMMIT(ctx)) {
    after_drop(L, txidx, tx);
  } else if (!rc && !tx->sp) {
    if (lua_getiuservalue(L, txidx, TUV_AFTER) == LUA_TTABLE && lua_rawlen(L, -1) > 0) {
      lua_replace(L, top + 3);
      lua_pushnil(L);
      lua_setiuservalue(L, txidx, TUV_AFTER);
      after = 1;
    } else {
      lua_pop(L, 1);
    }
  }
  switch (FIN_NEXT(ctx)) {
  case NEXT_END:
    if (rc) return lsq_raise(L, &err);
    if (after) return after_start(L, NEXT_END, top, logerr);
    if (logerr) {
      lua_pushvalue(L, lerr);
      return lua_error(L);
    }
    lua_settop(L, top);
    return 0;
  case NEXT_COMMITTED:
    if (rc) {
      /* a refused commit (an inner savepoint still open) leaves it open:
       * roll it back, then raise why */
      int still = tx->sp ? sq_tx_savepoint_is_open(tx->tx, tx->sp) : tx->db != NULL;
      lua_settop(L, top);
      lsq_push_error(L, &err);
      if (still) return finish_start(L, 4, 0, 1, 0, NEXT_RAISE, top + 1);
      return lua_error(L);
    }
    if (after) return after_start(L, NEXT_COMMITTED, top, logerr);
    if (logerr) {
      lua_pushvalue(L, lerr);
      return lua_error(L);
    }
    lua_settop(L, top);
    return top - 4; /* fn's results */
  default: /* NEXT_RAISE */
    lua_pushvalue(L, FIN_ARG(ctx));
    return lua_error(L);
  }
}

/* Finishes the Tx at index 1 on behalf of tx:commit / tx:rollback. */
static int tx_end(lua_State *L, int commit) {
  lsq_tx *tx = lsq_check_self(L, 1, LSQ_TX_MT, "sqorm.Tx");
  lua_settop(L, 1);
  if (!tx->tx) return lsq_usage(L, "the transaction was never opened");
  check_owner(L, 1, commit ? "commit" : "roll back");
  return finish_start(L, 1, commit, 0, 0, NEXT_END, 0);
}

static int tx_commit(lua_State *L) { return tx_end(L, 1); }
static int tx_rollback(lua_State *L) { return tx_end(L, 0); }

/* __close: an unfinished transaction (or savepoint) rolls back. */
static int tx_close(lua_State *L) {
  lsq_tx *tx = lsq_check_self(L, 1, LSQ_TX_MT, "sqorm.Tx");
  lua_settop(L, 1);
  if (!tx->tx) return 0;
  int open = tx->sp ? sq_tx_savepoint_is_open(tx->tx, tx->sp) : (tx->db != NULL);
  if (!open) return 0;
  return tx_end(L, 0);
}

/* __gc: marks only. A root is abandoned (the pool rolls its connection
 * back before lending it again), a savepoint forgotten (it stays part of
 * its parent). No SQL runs here. */
static int tx_gc(lua_State *L) {
  lsq_tx *tx = luaL_checkudata(L, 1, LSQ_TX_MT);
  if (!tx->tx) return 0;
  if (tx->sp) {
    sq_tx_savepoint_forget(tx->tx, tx->sp);
  } else {
    if (tx->db) {
      tx->db->ntx--;
      if (tx->db->tx_main == tx) tx->db->tx_main = NULL;
      tx->db = NULL;
    }
    sq_tx_abandon(tx->tx);
  }
  sq_tx *t = tx->tx;
  tx->tx = NULL;
  sq_tx_free(t);
  return 0;
}

static int tx_is_open(lua_State *L) {
  lsq_tx *tx = lsq_check_self(L, 1, LSQ_TX_MT, "sqorm.Tx");
  int open = tx->tx && (tx->sp ? sq_tx_savepoint_is_open(tx->tx, tx->sp) : sq_tx_state(tx->tx) == SQ_TX_OPEN);
  lua_pushboolean(L, open);
  return 1;
}

static int tx_tostring(lua_State *L) {
  lsq_tx *tx = lsq_check_self(L, 1, LSQ_TX_MT, "sqorm.Tx");
  int open = tx->tx && (tx->sp ? sq_tx_savepoint_is_open(tx->tx, tx->sp) : sq_tx_state(tx->tx) == SQ_TX_OPEN);
  lua_pushfstring(L, "sqorm.Tx (%s%s): %p", tx->sp ? "savepoint" : "transaction", open ? "" : ", finished", (void *)tx);
  return 1;
}

/* ---------------------------------------------------------------- */
/* opening                                                            */
/* ---------------------------------------------------------------- */

/*
 * The guard of db:transaction: while fn runs, slot 3 of its frame is a
 * to-be-closed guard holding the Tx. transaction_done disarms it when fn
 * returns or raises (errors in fn stop at lua_pcallk, above the guard);
 * so an armed guard is closed only when the frame is dropped with fn
 * still running: its coroutine closed (coroutine.close) while fn was
 * suspended - by its own yield, or by an async call. Nothing would end
 * the transaction then, and it kept its connection until the coroutine
 * was collected: a root is abandoned at once instead (the pool rolls the
 * connection back before lending it again; a statement still running
 * gives it back when it ends). A savepoint is left to its root. No I/O.
 */
#define LSQ_TXGUARD_MT "sqorm.TxGuard"

typedef struct txguard {
  int armed;
} txguard;

static int guard_close(lua_State *L) {
  txguard *g = luaL_testudata(L, 1, LSQ_TXGUARD_MT);
  if (!g || !g->armed) return 0;
  g->armed = 0;
  lsq_tx *tx = lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA ? lsq_toudata(L, -1, lsq_kind_tx, sizeof *tx) : NULL;
  if (!tx || !tx->tx || tx->sp || !tx->db) return 0;
  int txidx = lua_gettop(L);
  unregister_root(L, txidx, tx);
  after_drop(L, txidx, tx);
  sq_tx_abandon(tx->tx);
  return 0;
}

/* The transaction at 4 is open: [1] db [2] fn or nil [3] opts [4] the Tx.
 * ctx as for opened_k. */
static int opened_go(lua_State *L, lua_KContext ctx) {
  if (!ctx) return 1;
  txguard *g = lua_newuserdatauv(L, sizeof *g, 1);
  g->armed = 0;
  luaL_setmetatable(L, LSQ_TXGUARD_MT);
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, -2, 1);
  lua_replace(L, 3); /* over opts (read already) */
  lua_toclose(L, 3);
  g->armed = 1;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 4);
  return transaction_done(L, lua_pcallk(L, 1, LUA_MULTRET, 0, 0, transaction_done), 0);
}

/*
 * read_only = true on PostgreSQL (read replicas, lroute.h): SET
 * TRANSACTION READ ONLY as the transaction's first statement, so a write
 * fails with SQLSTATE 25006 wherever it runs (a replica or, with
 * fallback, the primary). One more operation (not logged: a logging
 * error could not leave the transaction behind); when it fails the
 * transaction is rolled back and its error raised. Stack as for
 * opened_go, [5] the holder.
 */
static int read_only_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lsq_op *h = lua_touserdata(L, 5);
  if (lsq_op_failed(h)) {
    sq_err e = *sq_oper_err(h->op);
    lsq_op_done(L, h);
    lua_settop(L, 4);
    lsq_push_error(L, &e); /* 5 */
    return finish_start(L, 4, 0, 1, 1, NEXT_RAISE, 5);
  }
  lsq_op_done(L, h);
  lua_settop(L, 4);
  return opened_go(L, ctx);
}

static int read_only_start(lua_State *L, lua_KContext ctx) {
  static const char sql[] = "SET TRANSACTION READ ONLY";
  lsq_tx *tx = lua_touserdata(L, 4);
  lsq_op *h = lsq_op_get_db(L, 1); /* 5 */
  sq_oper *op = lsq_op_begin(h, SQ_OPER_RAW);
  sq_err err;
  sq_err_clear(&err);
  if (sq_oper_add_sql(op, sql, sizeof sql - 1, NULL, 0, 0, &err)) {
    lsq_op_done(L, h);
    lua_settop(L, 4);
    lsq_push_error(L, &err);
    return finish_start(L, 4, 0, 1, 1, NEXT_RAISE, 5);
  }
  sq_oper_target_tx(op, tx->tx);
  h->lflags = LOP_NOLOG;
  h->route = LSQ_ROUTE_NOWRITE;
  return lsq_op_run(L, 1, h, read_only_k, ctx);
}

/*
 * After BEGIN or SAVEPOINT: [1] db [2] fn or nil [3] opts [4] the Tx
 * [5] the holder. ctx: 1 for db:transaction (fn runs next), 0 for
 * db:begin (the Tx is returned).
 */
static int opened_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lsq_op *h = lua_touserdata(L, 5);
  lsq_tx *tx = lua_touserdata(L, 4);
  lsq_db *db = lua_touserdata(L, 1);
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  if (sq_oper_kind(h->op) == SQ_OPER_SAVEPOINT) {
    lua_getiuservalue(L, 4, TUV_PARENT);
    lsq_tx *root = lua_touserdata(L, -1);
    lua_pop(L, 1);
    sq_tx_retain(root->tx);
    tx->tx = root->tx;
    tx->sp = sq_oper_savepoint_id(h->op);
  } else {
    tx->tx = sq_oper_take_tx(h->op);
    register_root(L, 1, 4, tx);
    if (db->route) tx->began = sq_replset_now(); /* read replicas (lroute.h) */
  }
  int lerr = db->benchmark && db->logging && log_records(L, 1, h->op, 1);
  if (lerr) lua_replace(L, 5); /* the logging error over the holder */
  lsq_op_done(L, h);
  lua_settop(L, 5);
  /* the logging function raised: nothing may stay open behind it */
  if (lerr) return finish_start(L, 4, 0, 1, 1, NEXT_RAISE, 5);
  lua_settop(L, 4);
  if (tx->ro && !tx->sp && db->dialect == SQ_DIALECT_POSTGRES) return read_only_start(L, ctx);
  return opened_go(L, ctx);
}

/*
 * Opens a transaction (or a savepoint when one is open in this
 * coroutine) for the stack [1] db [2] fn or nil [3] opts, as an
 * operation; then opened_k(ctx).
 */
static int tx_open(lua_State *L, int iso, int ro, lua_KContext ctx) {
  lsq_db *db = lsq_check_db(L, 1);
  lua_settop(L, 3);
  lsq_tx *root = current_root(L, 1); /* pushes it when found */
  /* The object exists, closed, before anything is acquired. */
  lsq_tx *tx = lua_newuserdatauv(L, sizeof *tx, TUV_COUNT);
  memset(tx, 0, sizeof *tx);
  lsq_tag_init(&tx->tag, lsq_kind_tx);
  tx->ro = ro;
  luaL_setmetatable(L, LSQ_TX_MT);
  lua_pushvalue(L, root ? -2 : 1); /* a savepoint keeps its root alive; a root its db */
  lua_setiuservalue(L, -2, TUV_PARENT);
  lua_pushthread(L);
  lua_setiuservalue(L, -2, TUV_OWNER);
  if (root) lua_remove(L, 4); /* the Tx is at 4 */
  lsq_op *h = lsq_op_get_db(L, 1); /* 5 */
  if (root) {
    if (iso != SQ_ISO_DEFAULT) {
      sq_err err;
      sq_err_clear(&err);
      sq_err_set(&err, SQ_EUSAGE, "a nested transaction (savepoint) cannot set an isolation level");
      return lsq_op_fail(L, h, &err);
    }
    if (ro) {
      sq_err err;
      sq_err_clear(&err);
      sq_err_set(&err, SQ_EUSAGE, "a nested transaction (savepoint) cannot be read_only: it is part of the outer one");
      return lsq_op_fail(L, h, &err);
    }
    sq_oper *op = lsq_op_begin(h, SQ_OPER_SAVEPOINT);
    sq_oper_target_tx(op, root->tx);
    /* Log only what will really run. */
    if (sq_tx_state(root->tx) != SQ_TX_OPEN) h->lflags = LOP_NOLOG;
    else h->lflags = LOP_NOLOG_AFTER; /* "Executed" is logged protected (opened_k) */
    return lsq_op_run(L, 1, h, opened_k, ctx);
  }
  sq_oper *op = lsq_op_begin(h, SQ_OPER_BEGIN);
  sq_oper_set_isolation(op, iso);
  char who[48];
  lua_pushthread(L);
  describe_thread(L, -1, who, sizeof who);
  lua_pop(L, 1);
  snprintf(h->what, sizeof h->what, "a transaction opened by %s", who);
  h->lflags = LOP_NOLOG_AFTER;
  if (ro) h->route = LSQ_ROUTE_READ; /* on a replica (lroute.h) */
  (void)db;
  return lsq_op_run(L, 1, h, opened_k, ctx);
}

/* db:begin([opts]) -> tx. Use with <close>: closing uncommitted rolls back. */
static int db_begin(lua_State *L) {
  int iso, ro;
  lsq_check_db(L, 1);
  parse_opts(L, 2, "db:begin", &iso, &ro);
  lua_settop(L, 2);
  lua_pushnil(L);
  lua_insert(L, 2); /* [1] db [2] nil [3] opts */
  return tx_open(L, iso, ro, 0);
}

/* ---------------------------------------------------------------- */
/* db:transaction                                                     */
/* ---------------------------------------------------------------- */

/*
 * db:transaction(fn [, opts]) -> what fn returns
 * Stack while fn runs: [1] db [2] fn [3] opts [4] tx, then fn's results.
 */
static int transaction_done(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  txguard *g = luaL_testudata(L, 3, LSQ_TXGUARD_MT);
  if (g) g->armed = 0; /* fn is over: the commit or rollback below ends it */
  lsq_tx *tx = luaL_checkudata(L, 4, LSQ_TX_MT);
  if (status == LUA_OK || status == LUA_YIELD) {
    /* fn may have ended the transaction itself: nothing left to do then
     * (a failed one still raises the error that ended it). */
    int open = tx->sp ? sq_tx_savepoint_is_open(tx->tx, tx->sp) || sq_tx_state(tx->tx) == SQ_TX_FAILED
                      : tx->db != NULL;
    if (open) return finish_start(L, 4, 1, 0, 0, NEXT_COMMITTED, 0);
    return lua_gettop(L) - 4;
  }
  /* fn raised: roll back (or to the savepoint) and re-raise its error;
   * nothing that happens here replaces that error. */
  int open = tx->sp ? sq_tx_savepoint_is_open(tx->tx, tx->sp) : tx->db != NULL;
  if (open) return finish_start(L, 4, 0, 1, 0, NEXT_RAISE, lua_gettop(L));
  return lua_error(L);
}

static int db_transaction(lua_State *L) {
  int iso, ro;
  lsq_check_db(L, 1);
  if (lua_type(L, 2) != LUA_TFUNCTION)
    return lsq_usage(L, "db:transaction expects a function, got %s", luaL_typename(L, 2));
  parse_opts(L, 3, "db:transaction", &iso, &ro);
  lua_settop(L, 3);
  return tx_open(L, iso, ro, 1);
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
  if (luaL_newmetatable(L, LSQ_TXGUARD_MT)) {
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__close");
    lua_pushliteral(L, LSQ_TXGUARD_MT);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  luaL_getmetatable(L, LSQ_DB_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, db_transaction);
  lua_setfield(L, -2, "transaction");
  lua_pushcfunction(L, db_begin);
  lua_setfield(L, -2, "begin");
  lua_pushcfunction(L, db_after_commit); /* hooks (lua/sqorm/hooks.lua) */
  lua_setfield(L, -2, "_after_commit");
  lua_pushcfunction(L, db_current_tx);
  lua_setfield(L, -2, "_transaction");
  lua_pop(L, 2);
}
