/*
 * ldb.c - the sqorm.Db object: connect, raw SQL with binds, authenticate,
 * pool statistics and close.
 *
 * Every statement follows one shape: check arguments and convert binds
 * (raising is still free here: nothing is held), then acquire a pooled
 * connection, run the statement under lua_pcall so that even a memory
 * error while building rows cannot skip the release, release, and only
 * then raise.
 */
#include "lsqorm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCAL_PARAMS 16

const char lsq_kind_db[] = LSQ_DB_MT;

lsq_db *lsq_check_db(lua_State *L, int idx) {
  lsq_db *db = lsq_toudata(L, idx, lsq_kind_db, sizeof *db);
  if (!db) lsq_usage(L, "expected a sqorm.Db as self (use db:method(...), not db.method(...))");
  if (!db->pool) {
    sq_err e;
    sq_err_clear(&e);
    sq_err_set(&e, SQ_ECLOSED, "the db is closed");
    lsq_raise(L, &e);
  }
  return db;
}

/* ---------------------------------------------------------------- */
/* connect                                                            */
/* ---------------------------------------------------------------- */

/* Converts the option value at idx to text for sq_config_set. */
static const char *opt_text(lua_State *L, int idx, char *tmp, size_t tmpn) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: return lua_tostring(L, idx);
  case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? "true" : "false";
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) snprintf(tmp, tmpn, "%lld", (long long)lua_tointeger(L, idx));
    else snprintf(tmp, tmpn, "%.17g", (double)lua_tonumber(L, idx));
    return tmp;
  default: return NULL;
  }
}

/* Applies params = { key = value, ... }: client-library parameters,
 * each a string, number or boolean. A table value is refused, so a
 * self-referencing or deeply nested table can't recurse. Does not raise. */
static int apply_params(lua_State *L, int idx, sq_config *cfg, sq_err *err) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    char tmp[64];
    int rc;
    if (lua_type(L, -2) != LUA_TSTRING) {
      rc = sq_err_set(err, SQ_EUSAGE, "connect option 'params': keys must be strings");
    } else {
      const char *k = lua_tostring(L, -2);
      const char *v = opt_text(L, -1, tmp, sizeof tmp);
      if (!v)
        rc = sq_err_set(err, SQ_EUSAGE, "connect option 'params.%.64s' must be a string, number or boolean, got %s%s", k,
                        luaL_typename(L, -1), lua_type(L, -1) == LUA_TTABLE ? " (params do not nest)" : "");
      else if (strlen(k) != lua_rawlen(L, -2) || (lua_type(L, -1) == LUA_TSTRING && strlen(v) != lua_rawlen(L, -1)))
        rc = sq_err_set(err, SQ_EUSAGE, "connect option 'params.%.64s' contains a NUL byte", k);
      else rc = sq_config_set(cfg, k, v, err);
    }
    lua_pop(L, 1);
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
  }
  return SQ_OK;
}

/* Applies host = { "h1:3306", "h2:3306" } (or hosts = ...): the list,
 * joined with commas, as sq_config_set's "hosts". Does not raise. */
static int apply_hosts(lua_State *L, int idx, sq_config *cfg, sq_err *err) {
  char buf[4096];
  size_t used = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n < 1) return sq_err_set(err, SQ_EUSAGE, "connect option 'hosts' must be a non-empty list of \"host[:port]\" strings");
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *h = lua_rawgeti(L, idx, i) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    int bad = !h || !len || strlen(h) != len || strchr(h, ',') || used + len + 2 > sizeof buf;
    if (!bad) {
      if (used) buf[used++] = ',';
      memcpy(buf + used, h, len);
      used += len;
    }
    lua_pop(L, 1);
    if (bad)
      return sq_err_set(err, SQ_EUSAGE, "connect option 'hosts': entry %d must be a \"host[:port]\" string", (int)i);
  }
  buf[used] = '\0';
  return sq_config_set(cfg, "hosts", buf, err);
}

/* Applies every key of the table at idx, prefixed ("ssl." / "pool."), to
 * cfg. Does not raise: returns an error kind with err filled. */
static int apply_table(lua_State *L, int idx, const char *prefix, sq_config *cfg, sq_err *err) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      return sq_err_set(err, SQ_EUSAGE, "connect options: keys must be strings");
    }
    const char *k = lua_tostring(L, -2);
    char key[128], tmp[64];
    if (strlen(k) > 64) {
      lua_pop(L, 2);
      return sq_err_set(err, SQ_EUSAGE, "connect options: unknown option '%.64s...'", k);
    }
    snprintf(key, sizeof key, "%s%s", prefix, k);
    int rc = SQ_OK;
    if (!*prefix && (!strcmp(k, "logging") || !strcmp(k, "benchmark") || !strcmp(k, "url"))) {
      /* handled by the caller */
    } else if (!*prefix && !strcmp(k, "ssl") && lua_type(L, -1) == LUA_TTABLE) {
      rc = apply_table(L, -1, "ssl.", cfg, err);
    } else if (!*prefix && !strcmp(k, "pool")) {
      if (lua_type(L, -1) != LUA_TTABLE) rc = sq_err_set(err, SQ_EUSAGE, "connect option 'pool' must be a table");
      else rc = apply_table(L, -1, "pool.", cfg, err);
    } else if (!*prefix && !strcmp(k, "params")) {
      if (lua_type(L, -1) != LUA_TTABLE) rc = sq_err_set(err, SQ_EUSAGE, "connect option 'params' must be a table");
      else rc = apply_params(L, -1, cfg, err);
    } else if (!*prefix && (!strcmp(k, "host") || !strcmp(k, "hosts")) && lua_type(L, -1) == LUA_TTABLE) {
      rc = apply_hosts(L, -1, cfg, err);
    } else {
      const char *v = opt_text(L, -1, tmp, sizeof tmp);
      if (v && lua_type(L, -1) == LUA_TSTRING && strlen(v) != lua_rawlen(L, -1))
        rc = sq_err_set(err, SQ_EUSAGE, "connect option '%s' contains a NUL byte", key);
      else if (!v) rc = sq_err_set(err, SQ_EUSAGE, "connect option '%s' must be a string, number or boolean, got %s",
                              key, luaL_typename(L, -1));
      else if (!*prefix && !strcmp(k, "ssl") && lua_type(L, -1) == LUA_TBOOLEAN)
        rc = sq_config_set(cfg, "ssl.mode", lua_toboolean(L, -1) ? "require" : "disable", err);
      else rc = sq_config_set(cfg, key, v, err);
    }
    lua_pop(L, 1);
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
  }
  return SQ_OK;
}

/* The C function stored at t[k] (raw: no metamethod runs), or NULL. */
static lua_CFunction raw_cfunction(lua_State *L, int t, const char *k) {
  lua_pushstring(L, k);
  lua_rawget(L, t);
  lua_CFunction f = lua_tocfunction(L, -1);
  lua_pop(L, 1);
  return f;
}

/* Fills cfg from connect(url), connect(url, opts) or connect(table). */
static int build_config(lua_State *L, sq_config *cfg, int *opts_idx, sq_err *err) {
  int t1 = lua_type(L, 1);
  *opts_idx = 0;
  if (t1 == LUA_TSTRING) {
    size_t n;
    const char *url = lua_tolstring(L, 1, &n);
    if (strlen(url) != n) return sq_err_set(err, SQ_EUSAGE, "sqorm.connect: the URL contains a NUL byte");
    if (sq_config_parse_url(cfg, url, err)) return err->kind;
    if (!lua_isnoneornil(L, 2)) {
      if (lua_type(L, 2) != LUA_TTABLE)
        return sq_err_set(err, SQ_EUSAGE, "sqorm.connect: options must be a table, got %s", luaL_typename(L, 2));
      *opts_idx = 2;
    }
  } else if (t1 == LUA_TTABLE) {
    *opts_idx = 1;
    if (lua_getfield(L, 1, "url") == LUA_TSTRING) {
      if (sq_config_parse_url(cfg, lua_tostring(L, -1), err)) {
        lua_pop(L, 1);
        return err->kind;
      }
    }
    lua_pop(L, 1);
  } else {
    return sq_err_set(err, SQ_EUSAGE, "sqorm.connect expects a URL string or an options table, got %s",
                      luaL_typename(L, 1));
  }
  if (*opts_idx && apply_table(L, *opts_idx, "", cfg, err)) return err->kind;
  return sq_config_finish(cfg, err);
}

/*
 * sqorm.connect(url [, opts]) / sqorm.connect{...} -> db
 * Nothing connects here (the pool opens lazily); a named pool is shared
 * with every other state of the process that uses the same name.
 */
int lsq_connect(lua_State *L) {
  sq_err err;
  sq_err_clear(&err);
  /* sqorm:connect(...) passes the module itself first */
  if (lua_type(L, 1) == LUA_TTABLE && raw_cfunction(L, 1, "connect") == lsq_connect)
    return lsq_usage(L, "use sqorm.connect(...), not sqorm:connect(...)");
  lua_settop(L, 2); /* [1] = url or table, [2] = options or nil */
  /* The handle exists, closed, before anything is acquired. */
  lsq_db *db = lua_newuserdatauv(L, sizeof *db, 1);
  memset(db, 0, sizeof *db);
  lsq_tag_init(&db->tag, lsq_kind_db);
  luaL_setmetatable(L, LSQ_DB_MT);
  int dbidx = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  db->owner = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  lua_setiuservalue(L, dbidx, 1);

  /* Lua-only options, checked before any C allocation. */
  int opts = lua_type(L, 1) == LUA_TTABLE ? 1 : (lua_type(L, 2) == LUA_TTABLE ? 2 : 0);
  if (opts) {
    int t = lua_getfield(L, opts, "logging");
    if (t != LUA_TNIL && t != LUA_TFUNCTION && !(t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) &&
        !(t == LUA_TTABLE && luaL_getmetafield(L, -1, "__call") != LUA_TNIL && (lua_pop(L, 1), 1)))
      return lsq_usage(L, "connect option 'logging' must be a function or false, got %s", luaL_typename(L, -1));
    if (t == LUA_TFUNCTION || t == LUA_TTABLE) {
      db->logging = 1;
      lua_getiuservalue(L, dbidx, 1);
      lua_pushvalue(L, -2);
      lua_setfield(L, -2, "logging");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    t = lua_getfield(L, opts, "benchmark");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) return lsq_usage(L, "connect option 'benchmark' must be a boolean");
    db->benchmark = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }

  sq_config cfg;
  sq_config_init(&cfg);
  int opts_idx;
  int rc = build_config(L, &cfg, &opts_idx, &err);
  if (!rc && !sq_driver_for(cfg.dialect))
    rc = sq_err_set(&err, SQ_EUSAGE, "the %s driver was not built into this sqorm", sq_dialect_name(cfg.dialect));
  if (!rc) rc = sq_global_init(&err);
  sq_pool *pool = NULL;
  if (!rc) rc = cfg.name ? sq_pool_open_shared(&cfg, &pool, &err) : sq_pool_open(&cfg, &pool, &err);
  db->dialect = cfg.dialect;
  if (rc) sq_config_redact(&cfg, &err); /* never show the password, whoever wrote the message */
  sq_config_free(&cfg);
  if (rc) return lsq_raise(L, &err);
  db->pool = pool;
  lua_settop(L, dbidx);
  return 1;
}

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
  lsq_rows r = {L, lua_gettop(L), lua_gettop(L) + 1, 0, 0};
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

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Calls the db's logging function, if any, with msg. May raise (nothing
 * is held when it is called). */
void lsq_log_statement(lua_State *L, int dbidx, const char *verb, const char *sql, size_t len, double ms) {
  if (!((lsq_db *)lua_touserdata(L, dbidx))->logging) return;
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "logging") == LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  if (ms >= 0) {
    /* Hundredths of a millisecond, formatted by hand: "%.2f" would
     * follow the C locale's decimal point. */
    char t[48];
    long long h = (long long)(ms * 100 + 0.5);
    snprintf(t, sizeof t, " Elapsed time: %lld.%02lldms", h / 100, h % 100);
    lua_pushfstring(L, "%s (default): ", verb);
    lua_pushlstring(L, sql, len);
    lua_pushstring(L, t);
    lua_concat(L, 3);
  } else {
    lua_pushfstring(L, "%s (default): ", verb);
    lua_pushlstring(L, sql, len);
    lua_concat(L, 2);
  }
  lua_call(L, 1, 0);
  lua_pop(L, 1);
}

/* Keeps the bind value on the stack top alive for the statement: it
 * stays on the stack (anchor 0) or goes into the anchor table. */
static void keep_bind(lua_State *L, int anchor, int i) {
  if (anchor) lua_rawseti(L, anchor, i + 1);
}

/* Converts the binds at bidx for the placeholders of t into params. Does
 * not raise. The strings in params are anchored: every value fetched is
 * left on the stack (or, past 256 of them, in a table left on the
 * stack), so a binds table whose __index makes fresh strings, or any Lua
 * that runs before the statement is sent (a finaliser), can't free them.
 * The caller keeps what this leaves on the stack until the statement is
 * done. */
static int convert_binds(lua_State *L, int bidx, const sq_stmt_text *t, sq_value *params, sq_err *err) {
  char what[96];
  if (bidx == 0) {
    if (t->nparams) return sq_err_set(err, SQ_EUSAGE, "SQL has %d placeholder(s) but no binds were given", t->nparams);
    return SQ_OK;
  }
  int anchor = 0;
  if (t->nparams > 256 || !lua_checkstack(L, t->nparams + 8)) {
    lua_createtable(L, t->nparams, 0);
    anchor = lua_gettop(L);
  }
  /* `what` names the bind in a message, so it is only formatted for one */
  if (t->named) {
    for (int i = 0; i < t->nparams; i++) {
      lua_getfield(L, bidx, t->names[i]);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return sq_err_set(err, SQ_EUSAGE, "missing bind ':%.64s' (use sqorm.null to write NULL)", t->names[i]);
      }
      int rc = lsq_to_value(L, -1, &params[i], "bind", err);
      if (rc) {
        snprintf(what, sizeof what, "bind ':%.64s'", t->names[i]);
        rc = lsq_to_value(L, -1, &params[i], what, err);
      }
      if (rc) {
        lua_pop(L, 1);
        return rc;
      }
      keep_bind(L, anchor, i);
    }
    lua_pushnil(L);
    while (lua_next(L, bidx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        return sq_err_set(err, SQ_EUSAGE, "SQL uses :name placeholders but a positional bind was given");
      }
      const char *k = lua_tostring(L, -1);
      int found = 0;
      for (int i = 0; i < t->nparams && !found; i++) found = !strcmp(k, t->names[i]);
      if (!found) {
        sq_err_set(err, SQ_EUSAGE, "bind ':%.64s' is not used by the SQL", k);
        lua_pop(L, 1);
        return err->kind;
      }
    }
    return SQ_OK;
  }
  for (int i = 0; i < t->nparams; i++) {
    lua_rawgeti(L, bidx, i + 1);
    int rc = lsq_to_value(L, -1, &params[i], "bind", err);
    if (rc) {
      snprintf(what, sizeof what, "bind #%d", i + 1);
      rc = lsq_to_value(L, -1, &params[i], what, err);
    }
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
    keep_bind(L, anchor, i);
  }
  /* Anything beyond the placeholders is a mistake worth reporting. */
  lua_pushnil(L);
  while (lua_next(L, bidx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1)) {
      if (lua_type(L, -1) == LUA_TSTRING)
        sq_err_set(err, SQ_EUSAGE, "named bind '%.64s' given but the SQL uses ? placeholders", lua_tostring(L, -1));
      else sq_err_set(err, SQ_EUSAGE, "binds must be a list (for ?) or a table of names (for :name)");
      lua_pop(L, 1);
      return err->kind;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k < 1 || k > t->nparams) {
      lua_Integer n = (lua_Integer)lua_rawlen(L, bidx);
      if (n < k) n = k;
      sq_err_set(err, SQ_EUSAGE, "SQL has %d placeholder(s) but %lld binds were given", t->nparams, (long long)n);
      lua_pop(L, 1);
      return err->kind;
    }
  }
  return SQ_OK;
}

/* ---------------------------------------------------------------- */
/* rewritten statements                                               */
/* ---------------------------------------------------------------- */

/* db:query and db:exec rewrite ? and :name placeholders into the
 * driver's; programs run the same few statements over and over, so each
 * db keeps its last few rewrites, keyed by the SQL text. An entry in use
 * is never evicted or freed (a binds table's __index may run another
 * statement, or close the db, in the middle). */
#define STMT_CACHE 8

typedef struct lsq_stmt {
  char *key;      /* the SQL as given (owned); NULL: a free slot */
  size_t keylen;
  sq_stmt_text t;
  int is_read;    /* the rewrite's is_read */
  int busy;       /* statements using it now */
  unsigned stamp; /* last use */
} lsq_stmt;

struct lsq_stmts {
  lsq_stmt e[STMT_CACHE];
  unsigned clock;
};

/* Frees the cache; with force 0 only when no entry is in use. */
static void stmts_free(lsq_db *db, int force) {
  struct lsq_stmts *c = db->stmts;
  if (!c) return;
  for (int i = 0; i < STMT_CACHE && !force; i++)
    if (c->e[i].busy) return;
  for (int i = 0; i < STMT_CACHE; i++) {
    free(c->e[i].key);
    sq_stmt_text_free(&c->e[i].t);
  }
  free(c);
  db->stmts = NULL;
}

/* The rewrite of sql: a cache entry (marked busy), or one made into *tmp
 * when it can't be cached. NULL with err filled when the SQL is bad.
 * Give it back with stmt_put. */
static lsq_stmt *stmt_get(lsq_db *db, const char *sql, size_t len, lsq_stmt *tmp, sq_err *err) {
  struct lsq_stmts *c = db->stmts;
  for (int i = 0; c && i < STMT_CACHE; i++) {
    lsq_stmt *e = &c->e[i];
    if (e->key && e->keylen == len && !memcmp(e->key, sql, len)) {
      e->busy++;
      e->stamp = ++c->clock;
      return e;
    }
  }
  memset(tmp, 0, sizeof *tmp);
  if (sq_stmt_rewrite_dialect(db->dialect, sql, len, &tmp->t, err)) return NULL;
  tmp->is_read = tmp->t.is_read;
  if (!c && !(c = db->stmts = calloc(1, sizeof *c))) return tmp;
  lsq_stmt *v = NULL; /* a free slot, else the least recently used idle one */
  for (int i = 0; i < STMT_CACHE; i++) {
    lsq_stmt *e = &c->e[i];
    if (!e->key) {
      v = e;
      break;
    }
    if (!e->busy && (!v || e->stamp < v->stamp)) v = e;
  }
  char *key = v ? malloc(len ? len : 1) : NULL;
  if (!key) return tmp;
  memcpy(key, sql, len);
  free(v->key);
  sq_stmt_text_free(&v->t);
  *v = *tmp;
  v->key = key;
  v->keylen = len;
  v->busy = 1;
  v->stamp = ++c->clock;
  return v;
}

static void stmt_put(lsq_stmt *s, lsq_stmt *tmp) {
  if (s == tmp) sq_stmt_text_free(&tmp->t);
  else s->busy--;
}

/* ---------------------------------------------------------------- */
/* options of db:query / db:exec                                      */
/* ---------------------------------------------------------------- */

/* The options table of db:query and db:exec. Strict: an unknown key is a
 * usage error. A new option is one more entry in raw_opt_list. */
typedef struct raw_opts {
  int multi; /* run every statement of the SQL, in order */
} raw_opts;

static void opt_multi(lua_State *L, const char *method, raw_opts *o) {
  if (lua_type(L, -1) != LUA_TBOOLEAN)
    lsq_usage(L, "db:%s: option 'multi' must be a boolean, got %s", method, luaL_typename(L, -1));
  o->multi = lua_toboolean(L, -1);
}

static const struct raw_opt {
  const char *name;
  void (*set)(lua_State *L, const char *method, raw_opts *o); /* the value is on the stack top */
} raw_opt_list[] = {
  {"multi", opt_multi},
  {NULL, NULL},
};

/* Reads the options table at idx (nil: defaults). Raises on a bad one;
 * call it holding nothing. */
static void read_raw_opts(lua_State *L, int idx, const char *method, raw_opts *o) {
  memset(o, 0, sizeof *o);
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    lsq_usage(L, "db:%s: options must be a table, got %s", method, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const struct raw_opt *opt = NULL;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (opt = raw_opt_list; opt->name && strcmp(opt->name, lua_tostring(L, -2)); opt++) {}
    if (!opt || !opt->name) {
      char known[128] = "";
      for (const struct raw_opt *k = raw_opt_list; k->name; k++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k == raw_opt_list ? "" : ", ", k->name);
      if (lua_type(L, -2) == LUA_TSTRING)
        lsq_usage(L, "db:%s: unknown option '%.64s' (known: %s)", method, lua_tostring(L, -2), known);
      lsq_usage(L, "db:%s: option keys must be strings (known: %s)", method, known);
    }
    opt->set(L, method, o);
    lua_pop(L, 1);
  }
}

/* ---------------------------------------------------------------- */
/* db:query / db:exec                                                 */
/* ---------------------------------------------------------------- */

/* x->run of a single raw statement: x->ud is its sq_stmt_text. */
static int run_raw(lua_State *L, lsq_exec *x) {
  if (x->want_rows) lua_createtable(L, 8, 0);
  else lua_pushnil(L);
  lsq_rows r = {L, lua_gettop(L), lua_gettop(L) + 1, 0, 0};
  sq_row_sink sink;
  lsq_rows_sink(&r, &sink);
  x->rc = sq_conn_exec_stmt(x->conn, x->ud, x->params, x->nparams, x->want_rows ? &sink : NULL, &x->res, &x->err);
  lua_settop(L, r.rows);
  return 1;
}

/* One statement of a multi = true call. */
typedef struct multi_stmt {
  sq_stmt_text t;
  int first; /* index of its first value in the call's values */
} multi_stmt;

typedef struct multi_run {
  multi_stmt *st;
  int n;
} multi_run;

static void multi_free(multi_run *m) {
  for (int i = 0; i < m->n; i++) sq_stmt_text_free(&m->st[i].t);
  free(m->st);
  m->st = NULL;
  m->n = 0;
}

/* Splits sql with the dialect's lexer and rewrites each statement. Does
 * not raise. */
static int multi_split(int dialect, const char *sql, size_t len, multi_run *m, sq_err *err) {
  size_t pos = 0, a, b;
  int cap = 0, named = -1, total = 0;
  memset(m, 0, sizeof *m);
  while (sq_sql_next(dialect, sql, len, &pos, &a, &b)) {
    if (m->n == cap) {
      int nc = cap ? cap * 2 : 8;
      multi_stmt *ns = realloc(m->st, sizeof *ns * (size_t)nc);
      if (!ns) {
        multi_free(m);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
      }
      m->st = ns;
      cap = nc;
    }
    multi_stmt *st = &m->st[m->n];
    if (sq_stmt_rewrite_dialect(dialect, sql + a, b - a, &st->t, err)) {
      multi_free(m);
      return err->kind;
    }
    m->n++;
    st->first = total;
    total += st->t.nparams;
    if (st->t.nparams > 0) {
      if (named >= 0 && named != st->t.named) {
        multi_free(m);
        return sq_err_set(err, SQ_EUSAGE, "SQL mixes ? and :name placeholders across its statements; use one style");
      }
      named = st->t.named;
    }
  }
  return SQ_OK;
}

/* x->run of a multi = true call (x->ud is the multi_run): every statement
 * in order on one connection, each with its own slice of the values. The
 * result slot ends up holding the rows of the last statement that
 * returned a result set (db:query); res sums affected_rows over the
 * statements that report it and keeps the last non-zero insert id. The
 * first failure stops the run. */
static int run_multi(lua_State *L, lsq_exec *x) {
  multi_run *m = x->ud;
  int result;
  if (x->want_rows) lua_createtable(L, 0, 0);
  else lua_pushnil(L);
  result = lua_gettop(L);
  int64_t affected = 0, last_id = 0;
  int wrote = 0;
  for (int i = 0; i < m->n; i++) {
    multi_stmt *st = &m->st[i];
    sq_result one;
    lua_settop(L, result);
    if (x->want_rows) lua_createtable(L, 8, 0);
    else lua_pushnil(L);
    lsq_rows r = {L, lua_gettop(L), lua_gettop(L) + 1, 0, 0};
    sq_row_sink sink;
    lsq_rows_sink(&r, &sink);
    x->rc = sq_conn_exec_stmt(x->conn, &st->t, st->t.nparams ? x->params + st->first : NULL, st->t.nparams,
                              x->want_rows ? &sink : NULL, &one, &x->err);
    lua_settop(L, r.rows);
    if (x->rc != SQ_OK) {
      char pre[48];
      int k = snprintf(pre, sizeof pre, "statement %d of %d: ", i + 1, m->n);
      size_t n = strlen(x->err.msg);
      if (k > 0 && n + (size_t)k >= sizeof x->err.msg) n = sizeof x->err.msg - (size_t)k - 1;
      if (k > 0) {
        memmove(x->err.msg + k, x->err.msg, n);
        memcpy(x->err.msg, pre, (size_t)k);
        x->err.msg[n + (size_t)k] = '\0';
      }
      break;
    }
    if (one.affected_rows >= 0) {
      wrote = 1;
      affected += one.affected_rows;
    }
    if (one.last_insert_id != 0) last_id = one.last_insert_id;
    if (x->want_rows && one.has_result_set) lua_replace(L, result);
  }
  lua_settop(L, result);
  x->res.affected_rows = wrote ? affected : -1;
  x->res.last_insert_id = last_id;
  x->res.rows = 0;
  x->res.has_result_set = 0;
  return 1;
}

/* The shared body of db:query and db:exec: (sql [, binds [, opts]]). */
static int db_statement(lua_State *L, int want_rows, const char *method) {
  lsq_db *db = lsq_check_db(L, 1);
  if (lua_type(L, 2) != LUA_TSTRING)
    return lsq_usage(L, "db:%s expects SQL as a string, got %s", method, luaL_typename(L, 2));
  int bidx = 0;
  if (!lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TTABLE)
      return lsq_usage(L, "db:%s: binds must be a table, got %s", method, luaL_typename(L, 3));
    bidx = 3;
  }
  lua_settop(L, 4);
  raw_opts o;
  read_raw_opts(L, 4, method, &o);
  size_t len;
  const char *sql = lua_tolstring(L, 2, &len);
  lsq_log_statement(L, 1, "Executing", sql, len, -1);

  sq_err err;
  sq_err_clear(&err);
  lsq_stmt tmp, *st = stmt_get(db, sql, len, &tmp, &err);
  if (!st) return lsq_raise(L, &err);
  const sq_stmt_text *t = &st->t;
  multi_run mr = {NULL, 0};
  sq_stmt_text all; /* the placeholders of every statement, for convert_binds */
  char **names = NULL;
  memset(&all, 0, sizeof all);
  if (t->nstatements > 1) {
    if (!o.multi) {
      stmt_put(st, &tmp);
      sq_err_set(&err, SQ_EUSAGE,
                 "db:%s: the SQL holds %d statements; db:query and db:exec run one (pass { multi = true } to run "
                 "them in order)",
                 method, t->nstatements);
      return lsq_raise(L, &err);
    }
    int rc = multi_split(db->dialect, sql, len, &mr, &err);
    stmt_put(st, &tmp);
    st = NULL;
    if (rc) return lsq_raise(L, &err);
    for (int i = 0; i < mr.n; i++) {
      all.nparams += mr.st[i].t.nparams;
      all.named |= mr.st[i].t.named;
    }
    if (all.named && all.nparams > 0) {
      names = malloc(sizeof *names * (size_t)all.nparams);
      if (!names) {
        multi_free(&mr);
        sq_err_set(&err, SQ_ENOMEM, "out of memory");
        return lsq_raise(L, &err);
      }
      for (int i = 0, k = 0; i < mr.n; i++)
        for (int j = 0; j < mr.st[i].t.nparams; j++) names[k++] = mr.st[i].t.names[j];
      all.names = names;
    }
    t = &all;
  }
  sq_value local[LOCAL_PARAMS], *params = local;
  if (t->nparams > LOCAL_PARAMS) {
    params = malloc(sizeof *params * (size_t)t->nparams);
    if (!params) sq_err_set(&err, SQ_ENOMEM, "out of memory");
  }
  if (params && convert_binds(L, bidx, t, params, &err)) {
    if (params != local) free(params);
    params = NULL;
  }
  if (!params) {
    if (st) stmt_put(st, &tmp);
    multi_free(&mr);
    free(names);
    return lsq_raise(L, &err);
  }
  /* From here on, errors must give st back and free params before raising. */
  sq_result res;
  memset(&res, 0, sizeof res);
  double t0 = db->benchmark ? now_ms() : 0;
  lsq_exec x;
  memset(&x, 0, sizeof x);
  x.sql = t->sql;
  x.len = t->len;
  x.params = params;
  x.nparams = t->nparams;
  x.want_rows = want_rows;
  if (st) {
    x.run = run_raw;
    x.ud = &st->t;
    x.retry_read = st->is_read;
  } else {
    x.run = run_multi;
    x.ud = &mr;
  }
  int failed = lsq_db_run(L, 1, &x);
  res = x.res;
  if (st) stmt_put(st, &tmp);
  multi_free(&mr);
  free(names);
  if (params != local) free(params);
  if (failed) return lua_error(L);
  if (db->benchmark) {
    int rows = lua_gettop(L);
    lsq_log_statement(L, 1, "Executed", sql, len, now_ms() - t0);
    lua_settop(L, rows);
  }
  if (want_rows) return 1;
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)res.affected_rows);
  lua_setfield(L, -2, "affected_rows");
  lua_pushinteger(L, (lua_Integer)res.last_insert_id);
  lua_setfield(L, -2, "last_insert_id");
  return 1;
}

/* db:query(sql [, binds [, opts]]) -> { row, ... } */
static int db_query(lua_State *L) { return db_statement(L, 1, "query"); }

/* db:exec(sql [, binds [, opts]]) -> { affected_rows = n, last_insert_id = id } */
static int db_exec(lua_State *L) { return db_statement(L, 0, "exec"); }

/* db:authenticate(): connects (or reuses a pooled connection) and pings;
 * raises when the server can't be reached. Returns true. */
static int db_authenticate(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  sq_err err;
  sq_err_clear(&err);
  sq_conn *c;
  sq_holder h;
  lsq_db_holder(db, &h, NULL);
  if (sq_pool_acquire_as(db->pool, -1, &h, &c, &err)) return lsq_raise(L, &err);
  int rc = sq_conn_driver(c)->ping(sq_conn_handle(c), &err);
  if (rc) sq_conn_mark_dead(c);
  sq_pool_release(db->pool, c);
  if (rc) return lsq_raise(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* db:server_version() -> string */
static int db_server_version(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  sq_err err;
  sq_err_clear(&err);
  sq_conn *c;
  sq_holder h;
  lsq_db_holder(db, &h, NULL);
  if (sq_pool_acquire_as(db->pool, -1, &h, &c, &err)) return lsq_raise(L, &err);
  const char *v = sq_conn_driver(c)->server_version(sq_conn_handle(c));
  lua_pushstring(L, v ? v : "");
  sq_pool_release(db->pool, c);
  return 1;
}

/* db:pool_stats() -> { size, idle, in_use, waiting, created, destroyed, timeouts, waited, max, min } */
static int db_pool_stats(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  sq_pool_stats st;
  sq_pool_stats_get(db->pool, &st);
  lua_createtable(L, 0, 10);
#define F(name)                                 \
  lua_pushinteger(L, (lua_Integer)st.name);     \
  lua_setfield(L, -2, #name)
  F(size); F(idle); F(in_use); F(waiting); F(created); F(destroyed); F(timeouts); F(waited); F(max); F(min);
#undef F
  return 1;
}

/* db:dialect() -> "sqlite" | "mysql" | "postgres" */
static int db_dialect(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  lua_pushstring(L, sq_dialect_name(db->dialect));
  return 1;
}

/* close(), __gc and __close: one idempotent finaliser. Connections still
 * lent out keep the pool alive through their own references. */
static int db_close(lua_State *L) {
  lsq_db *db = luaL_checkudata(L, 1, LSQ_DB_MT);
  if (db->pool) {
    sq_pool *p = db->pool;
    db->pool = NULL;
    sq_pool_close(p);
  }
  stmts_free(db, 0);
  return 0;
}

/* __gc: nothing can be using the statement cache any more. */
static int db_gc(lua_State *L) {
  db_close(L);
  stmts_free(lua_touserdata(L, 1), 1);
  return 0;
}

static int db_tostring(lua_State *L) {
  lsq_db *db = luaL_checkudata(L, 1, LSQ_DB_MT);
  lua_pushfstring(L, "sqorm.Db (%s%s): %p", sq_dialect_name(db->dialect), db->pool ? "" : ", closed", (void *)db);
  return 1;
}

static int db_is_closed(lua_State *L) {
  lsq_db *db = luaL_checkudata(L, 1, LSQ_DB_MT);
  lua_pushboolean(L, db->pool == NULL);
  return 1;
}

static const luaL_Reg db_methods[] = {
  {"query", db_query},
  {"exec", db_exec},
  {"authenticate", db_authenticate},
  {"server_version", db_server_version},
  {"pool_stats", db_pool_stats},
  {"dialect", db_dialect},
  {"close", db_close},
  {"is_closed", db_is_closed},
  {NULL, NULL},
};

static const luaL_Reg db_meta[] = {
  {"__gc", db_gc},
  {"__close", db_close},
  {"__tostring", db_tostring},
  {NULL, NULL},
};

void lsq_db_open(lua_State *L) {
  if (luaL_newmetatable(L, LSQ_DB_MT)) {
    luaL_setfuncs(L, db_meta, 0);
    luaL_newlib(L, db_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}
