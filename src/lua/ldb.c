/*
 * ldb.c - the sqorm.Db object: connect, authenticate, server_version,
 * pool statistics, dialect and close, and the statement logging every
 * area uses. Raw SQL is in lraw.c, transactions in ltx.c, models in
 * ldefine.c.
 *
 * connect creates the handle closed, then opens (or joins, by name) the
 * pool; nothing connects until first use, except authenticate().
 */
#include "lop.h"

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
    if (!*prefix && (!strcmp(k, "logging") || !strcmp(k, "benchmark") || !strcmp(k, "url") || !strcmp(k, "_replay") ||
                     !strcmp(k, "replication") || !strcmp(k, "async") ||
                     !strcmp(k, "timeout") || !strcmp(k, "lazy"))) {
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

/* Every connect option of the table at idx into cfg (lroute.c builds
 * the config of each member of a replica set with it). */
int lsq_conn_options(lua_State *L, int idx, sq_config *cfg, sq_err *err) { return apply_table(L, idx, "", cfg, err); }

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
  lsq_db *db = lua_newuserdatauv(L, sizeof *db, LSQ_DBUV_COUNT);
  memset(db, 0, sizeof *db);
  lsq_tag_init(&db->tag, lsq_kind_db);
#ifdef LSQ_TEST_REPLAY
  db->replay = 1; /* a build for proving the replay path: every operation */
#endif
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
    /* undocumented, for tests: record and replay every operation's rows */
    t = lua_getfield(L, opts, "_replay");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) return lsq_usage(L, "connect option '_replay' must be a boolean");
    if (t == LUA_TBOOLEAN) db->replay = lua_toboolean(L, -1);
    lua_pop(L, 1);
    /* async mode (lasync.c) and the default per-call timeout */
    t = lua_getfield(L, opts, "async");
    if (t == LUA_TBOOLEAN) db->async = lua_toboolean(L, -1);
    else if (t == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "auto")) db->async = 2;
    else if (t != LUA_TNIL) return lsq_usage(L, "connect option 'async' must be true, false or \"auto\"");
    lua_pop(L, 1);
    t = lua_getfield(L, opts, "timeout");
    if (t != LUA_TNIL && (t != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0)))
      return lsq_usage(L, "connect option 'timeout' must be a number of seconds >= 0");
    db->timeout = t == LUA_TNIL ? 0 : lua_tonumber(L, -1);
    lua_pop(L, 1);
    /* lazy = "raise": the default of every association of the db (lassoc.c) */
    t = lua_getfield(L, opts, "lazy");
    if (t == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "raise")) db->lazy = 1;
    else if (t == LUA_TBOOLEAN && lua_toboolean(L, -1)) db->lazy = 0;
    else if (t != LUA_TNIL) return lsq_usage(L, "connect option 'lazy' must be \"raise\" or true");
    lua_pop(L, 1);
  }

  /* replication = { write, read = {...}, ... }: a replica set (lroute.c) */
  if (lsq_route_wanted(L, opts)) {
    if (lsq_route_connect(L, db, lua_type(L, 1) == LUA_TSTRING ? 1 : 0, opts, &err)) return lsq_raise(L, &err);
    lua_settop(L, dbidx);
    return 1;
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
  /* pool.min: its connections are opened now, on this thread (a game
   * server pays the handshakes at startup, not in a tick) */
  if (!rc && (rc = sq_pool_fill(pool, &err)) != SQ_OK) {
    sq_pool_close(pool);
    pool = NULL;
  }
  db->dialect = cfg.dialect;
  if (rc) sq_config_redact(&cfg, &err); /* never show the password, whoever wrote the message */
  sq_config_free(&cfg);
  if (rc) return lsq_raise(L, &err);
  db->pool = pool;
  lua_settop(L, dbidx);
  return 1;
}

/* ---------------------------------------------------------------- */
/* logging                                                            */
/* ---------------------------------------------------------------- */

/* Calls the db's logging function, if any (see lsqorm.h). May raise
 * (nothing is held when it is called). */
void lsq_log_statement(lua_State *L, int dbidx, const char *verb, const char *sql, size_t len, double ms,
                       double queued_ms) {
  if (!((lsq_db *)lua_touserdata(L, dbidx))->logging) return;
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "logging") == LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  if (ms >= 0) {
    /* Hundredths of a millisecond, formatted by hand: "%.2f" would
     * follow the C locale's decimal point. */
    char t[96];
    long long h = (long long)(ms * 100 + 0.5), q = (long long)(queued_ms * 100 + 0.5);
    int n = snprintf(t, sizeof t, " Elapsed time: %lld.%02lldms", h / 100, h % 100);
    if (q > 0) snprintf(t + n, sizeof t - (size_t)n, " (queued %lld.%02lldms)", q / 100, q % 100);
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

/* The continuation of authenticate (true) and server_version (the
 * version string). ctx is the holder. */
static int ping_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  if (sq_oper_kind(h->op) == SQ_OPER_PING) lua_pushboolean(L, 1);
  else lua_pushstring(L, sq_oper_text(h->op));
  lsq_op_done(L, h);
  return 1;
}

/* db:authenticate(): connects (or reuses a pooled connection) and pings;
 * raises when the server can't be reached. Returns true. */
static int db_authenticate(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  lua_settop(L, 1);
  lsq_op *h = lsq_op_get(L);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_PING);
  sq_holder hd;
  lsq_db_holder(db, &hd, NULL);
  sq_oper_target_pool(op, db->pool, &hd); /* the pool, even inside a transaction */
  return lsq_op_run(L, 1, h, ping_k, (lua_KContext)h);
}

/* db:server_version() -> string */
static int db_server_version(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  lua_settop(L, 1);
  lsq_op *h = lsq_op_get(L);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_VERSION);
  sq_holder hd;
  lsq_db_holder(db, &hd, NULL);
  sq_oper_target_pool(op, db->pool, &hd);
  return lsq_op_run(L, 1, h, ping_k, (lua_KContext)h);
}

/* db:pool_stats() -> { size, idle, in_use, waiting, created, destroyed, timeouts, waited, max, min } */
static int db_pool_stats(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  if (db->route) return lsq_route_pool_stats(L, db); /* per pool (lroute.c) */
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
  lsq_db *db = lsq_check_self(L, 1, LSQ_DB_MT, "sqorm.Db");
  if (db->pool) {
    sq_pool *p = db->pool;
    db->pool = NULL;
    sq_pool_close(p);
  }
  lsq_route_close(db); /* the replica set, if any (lroute.c) */
  lsq_stmts_free(db, 0);
  return 0;
}

/* __gc: nothing can be using the statement cache any more. */
static int db_gc(lua_State *L) {
  db_close(L);
  lsq_stmts_free(lua_touserdata(L, 1), 1);
  return 0;
}

static int db_tostring(lua_State *L) {
  lsq_db *db = lsq_check_self(L, 1, LSQ_DB_MT, "sqorm.Db");
  lua_pushfstring(L, "sqorm.Db (%s%s): %p", sq_dialect_name(db->dialect), db->pool ? "" : ", closed", (void *)db);
  return 1;
}

static int db_is_closed(lua_State *L) {
  lsq_db *db = lsq_check_self(L, 1, LSQ_DB_MT, "sqorm.Db");
  lua_pushboolean(L, db->pool == NULL);
  return 1;
}

static const luaL_Reg db_methods[] = {
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

