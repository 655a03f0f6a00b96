/*
 * lroute.c - read replicas in the binding (the contract is in lroute.h):
 * the `replication` connect option, the choice of the pool an operation
 * runs on, a replica found unreachable (skipped, the read runs on the
 * next one), per-coroutine read-your-writes, and pool_stats per pool.
 *
 * The choice itself is the core's (sq_replset_pick_read: round robin over
 * the healthy replicas, backoff, fallback, sticky by the caller's last
 * write); this file only says which ops are reads and remembers, per Lua
 * thread, when it last wrote: the main thread's in the lsq_route, every
 * other coroutine's in the `lastw` table of the db's user value (weak
 * keys, so an abandoned coroutine's entry goes with it).
 */
#include "lop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* connect                                                            */
/* ---------------------------------------------------------------- */

int lsq_route_wanted(lua_State *L, int opts) {
  if (!opts || lua_type(L, opts) != LUA_TTABLE) return 0;
  int t = lua_getfield(L, opts, "replication");
  lua_pop(L, 1);
  return t != LUA_TNIL;
}

/* Prefixes err's message with "connect option 'replication.<what>': ". */
static int member_err(sq_err *err, const char *what) {
  char msg[sizeof err->msg];
  snprintf(msg, sizeof msg, "connect option 'replication.%.32s': %.900s", what, err->msg);
  memcpy(err->msg, msg, sizeof msg);
  return err->kind;
}

/* The config of one member (the value at midx: a URL string, or an
 * options table whose url defaults to the top-level one): the URL, then
 * the top-level options, then the member's own. */
static int member_config(lua_State *L, int urlidx, int opts, int midx, const char *what, sq_config *cfg, sq_err *err) {
  int mt = lua_type(L, midx);
  const char *url = NULL;
  if (mt == LUA_TSTRING) {
    url = lua_tostring(L, midx);
  } else if (mt == LUA_TTABLE) {
    if (lua_getfield(L, midx, "url") == LUA_TSTRING) url = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1)) {
      lua_pop(L, 1);
      sq_err_set(err, SQ_EUSAGE, "url must be a string");
      return member_err(err, what);
    }
    lua_pop(L, 1); /* the string stays reachable from the table */
    if (!url && urlidx) url = lua_tostring(L, urlidx);
  } else {
    sq_err_set(err, SQ_EUSAGE, "must be a URL string or an options table, got %s", luaL_typename(L, midx));
    return member_err(err, what);
  }
  int rc = SQ_OK;
  if (url && sq_config_parse_url(cfg, url, err)) rc = err->kind;
  if (!rc && opts) rc = lsq_conn_options(L, opts, cfg, err);
  if (!rc && mt == LUA_TTABLE) rc = lsq_conn_options(L, midx, cfg, err);
  if (!rc) rc = sq_config_finish(cfg, err);
  if (rc) {
    sq_config_redact(cfg, err);
    return member_err(err, what);
  }
  return SQ_OK;
}

/* The keys of the replication table, strictly. */
static int check_keys(lua_State *L, int r, sq_err *err) {
  static const char *const known[] = {"write", "read", "sticky", "fallback", "backoff", NULL};
  lua_pushnil(L);
  while (lua_next(L, r)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; known[i] && !ok; i++) ok = !strcmp(known[i], lua_tostring(L, -1));
    if (!ok) {
      if (lua_type(L, -1) == LUA_TSTRING)
        sq_err_set(err, SQ_EUSAGE,
                   "connect option 'replication': unknown key '%.64s' (known: write, read, sticky, fallback, backoff)",
                   lua_tostring(L, -1));
      else sq_err_set(err, SQ_EUSAGE, "connect option 'replication': keys must be names, got a %s key", luaL_typename(L, -1));
      lua_pop(L, 1);
      return err->kind;
    }
  }
  return SQ_OK;
}

/* A non-negative number field of the replication table (nil: keep *out). */
static int num_field(lua_State *L, int r, const char *k, int positive, double *out, sq_err *err) {
  int t = lua_getfield(L, r, k);
  int rc = SQ_OK;
  if (t == LUA_TNUMBER) {
    double v = lua_tonumber(L, -1);
    if (!(v >= 0) || v > 1e9 || (positive && v == 0))
      rc = sq_err_set(err, SQ_EUSAGE, "connect option 'replication.%s' must be a number of seconds %s", k,
                      positive ? "> 0" : ">= 0");
    else *out = v;
  } else if (t != LUA_TNIL) {
    rc = sq_err_set(err, SQ_EUSAGE, "connect option 'replication.%s' must be a number of seconds, got %s", k,
                    luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return rc;
}

int lsq_route_connect(lua_State *L, lsq_db *db, int urlidx, int opts, sq_err *err) {
  int top = lua_gettop(L);
  if (!urlidx) { /* connect{ url = ..., replication = ... } */
    if (lua_getfield(L, opts, "url") == LUA_TSTRING) urlidx = lua_gettop(L);
    else lua_pop(L, 1);
  }
  lua_getfield(L, opts, "replication");
  int r = lua_gettop(L);
  if (lua_type(L, r) != LUA_TTABLE) {
    sq_err_set(err, SQ_EUSAGE, "connect option 'replication' must be a table { write = ..., read = { ... } }, got %s",
               luaL_typename(L, r));
    lua_settop(L, top);
    return err->kind;
  }
  sq_replset_opts ro;
  sq_replset_opts_init(&ro);
  int rc = check_keys(L, r, err);
  if (!rc) rc = num_field(L, r, "sticky", 0, &ro.sticky, err);
  if (!rc) rc = num_field(L, r, "backoff", 1, &ro.backoff, err);
  if (!rc) {
    int t = lua_getfield(L, r, "fallback");
    if (t == LUA_TBOOLEAN) ro.fallback = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
      rc = sq_err_set(err, SQ_EUSAGE, "connect option 'replication.fallback' must be a boolean, got %s",
                      luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  /* the read list: a list of members (or one URL string) */
  int nreads = 0, rd = 0;
  if (!rc) {
    int t = lua_getfield(L, r, "read");
    rd = lua_gettop(L);
    if (t == LUA_TSTRING) nreads = 1;
    else if (t == LUA_TTABLE) {
      lua_Integer n = (lua_Integer)lua_rawlen(L, rd);
      lua_Integer keys = 0;
      lua_pushnil(L);
      while (lua_next(L, rd)) {
        lua_pop(L, 1);
        keys++;
      }
      if (keys != n || n > 64)
        rc = sq_err_set(err, SQ_EUSAGE, "connect option 'replication.read' must be a list of at most 64 replicas");
      nreads = (int)n;
    } else if (t != LUA_TNIL) {
      rc = sq_err_set(err, SQ_EUSAGE, "connect option 'replication.read' must be a list of URLs or option tables, got %s",
                      luaL_typename(L, rd));
    }
  }
  sq_config wcfg, *rcfg = NULL;
  sq_config_init(&wcfg);
  if (!rc) {
    rcfg = calloc((size_t)(nreads ? nreads : 1), sizeof *rcfg);
    if (!rcfg) rc = sq_err_set(err, SQ_ENOMEM, "out of memory");
    for (int i = 0; rcfg && i < nreads; i++) sq_config_init(&rcfg[i]);
  }
  if (!rc) {
    int t = lua_getfield(L, r, "write");
    if (t == LUA_TNIL && urlidx) {
      lua_pop(L, 1);
      lua_pushvalue(L, urlidx);
    } else if (t == LUA_TNIL) {
      rc = sq_err_set(err, SQ_EUSAGE, "connect option 'replication' needs write (the primary's URL or options)");
    }
    if (!rc) rc = member_config(L, urlidx, opts, lua_gettop(L), "write", &wcfg, err);
    lua_pop(L, 1);
  }
  for (int i = 0; !rc && i < nreads; i++) {
    char what[32];
    snprintf(what, sizeof what, "read[%d]", i + 1);
    if (lua_type(L, rd) == LUA_TSTRING) lua_pushvalue(L, rd);
    else lua_rawgeti(L, rd, i + 1);
    rc = member_config(L, urlidx, opts, lua_gettop(L), what, &rcfg[i], err);
    lua_pop(L, 1);
  }
  if (!rc && !sq_driver_for(wcfg.dialect))
    rc = sq_err_set(err, SQ_EUSAGE, "the %s driver was not built into this sqorm", sq_dialect_name(wcfg.dialect));
  if (!rc && wcfg.dialect == SQ_DIALECT_SQLITE)
    rc = sq_err_set(err, SQ_EUSAGE, "connect option 'replication': SQLite has no replicas (MySQL family or PostgreSQL)");
  if (!rc) rc = sq_global_init(err);
  sq_replset *rs = NULL;
  lsq_route *route = NULL;
  if (!rc) {
    route = calloc(1, sizeof *route);
    if (!route) rc = sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  if (!rc) rc = sq_replset_open(&wcfg, rcfg, nreads, &ro, &rs, err);
  /* pool.min: opened now in the primary's pool (its failure fails the
   * connect) and in each replica's (an unreachable replica is left for
   * the reads to skip, as they would) */
  if (!rc && (rc = sq_pool_fill(sq_replset_primary(rs), err)) != SQ_OK) {
    sq_replset_close(rs);
    rs = NULL;
  }
  for (int i = 0; !rc && i < sq_replset_nreads(rs); i++) {
    sq_err ignored;
    sq_err_clear(&ignored);
    (void)sq_pool_fill(sq_replset_read_pool(rs, i), &ignored);
  }
  if (rc) {
    /* never show a password, whoever wrote the message */
    sq_config_redact(&wcfg, err);
    for (int i = 0; i < nreads; i++) sq_config_redact(&rcfg[i], err);
  }
  db->dialect = wcfg.dialect;
  sq_config_free(&wcfg);
  for (int i = 0; rcfg && i < nreads; i++) sq_config_free(&rcfg[i]);
  free(rcfg);
  lua_settop(L, top);
  if (rc) {
    free(route);
    return rc;
  }
  route->rs = rs;
  route->sticky = sq_replset_options(rs)->sticky;
  db->route = route;
  db->pool = sq_replset_primary(rs);
  sq_pool_retain(db->pool); /* the db's own reference, closed by db:close() */
  return SQ_OK;
}

void lsq_route_close(lsq_db *db) {
  lsq_route *r = db->route;
  if (!r) return;
  db->route = NULL;
  sq_replset_close(r->rs);
  free(r);
}

/* ---------------------------------------------------------------- */
/* pool_stats                                                         */
/* ---------------------------------------------------------------- */

static void push_stats(lua_State *L, sq_pool *p) {
  sq_pool_stats st;
  sq_pool_stats_get(p, &st);
  lua_createtable(L, 0, 16);
#define F(name)                             \
  lua_pushinteger(L, (lua_Integer)st.name); \
  lua_setfield(L, -2, #name)
  F(size); F(idle); F(in_use); F(waiting); F(created); F(destroyed); F(timeouts); F(waited); F(max); F(min);
#undef F
}

static void push_state(lua_State *L, sq_replset *rs, int i) {
  sq_replica_state st;
  if (sq_replset_state(rs, i, &st)) return;
  lua_pushboolean(L, st.down);
  lua_setfield(L, -2, "down");
  lua_pushnumber(L, st.retry_in);
  lua_setfield(L, -2, "retry_in");
  lua_pushinteger(L, st.failures);
  lua_setfield(L, -2, "failures");
  lua_pushinteger(L, (lua_Integer)st.picks);
  lua_setfield(L, -2, "picks");
  lua_pushinteger(L, (lua_Integer)st.failed);
  lua_setfield(L, -2, "failed");
  if (st.last_error[0]) {
    lua_pushstring(L, st.last_error);
    lua_setfield(L, -2, "last_error");
  }
}

/* The primary's numbers at the top level (as without replication), and
 * primary = {...}, replicas = { {...}, ... } with each replica's health. */
int lsq_route_pool_stats(lua_State *L, lsq_db *db) {
  sq_replset *rs = db->route->rs;
  push_stats(L, sq_replset_primary(rs));
  push_stats(L, sq_replset_primary(rs));
  push_state(L, rs, -1);
  lua_setfield(L, -2, "primary");
  int n = sq_replset_nreads(rs);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    push_stats(L, sq_replset_read_pool(rs, i));
    push_state(L, rs, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "replicas");
  return 1;
}

/* ---------------------------------------------------------------- */
/* read-your-writes                                                   */
/* ---------------------------------------------------------------- */

/* The running coroutine's last write on the db at dbidx (0: none). */
static double last_write(lua_State *L, int dbidx, lsq_route *r) {
  dbidx = lua_absindex(L, dbidx);
  if (lua_pushthread(L)) {
    lua_pop(L, 1);
    return r->main_last;
  }
  double t = 0;
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "lastw") == LUA_TTABLE) {
    lua_pushvalue(L, -3);
    lua_rawget(L, -2);
    t = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 3);
  return t;
}

double lsq_route_last_write(lua_State *L, int dbidx) {
  lsq_db *db = lua_touserdata(L, dbidx);
  lsq_route *r = db ? db->route : NULL;
  if (!r || r->sticky <= 0) return 0;
  return last_write(L, dbidx, r);
}

void lsq_route_wrote(lua_State *L, int dbidx) {
  lsq_db *db = lua_touserdata(L, dbidx);
  lsq_route *r = db ? db->route : NULL;
  if (!r || r->sticky <= 0) return;
  double now = sq_replset_now();
  if (lua_pushthread(L)) {
    lua_pop(L, 1);
    r->main_last = now;
    return;
  }
  dbidx = lua_absindex(L, dbidx);
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "lastw") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "lastw");
  }
  lua_pushvalue(L, -3); /* the thread */
  lua_pushnumber(L, now);
  lua_rawset(L, -3);
  lua_pop(L, 3);
}

/* ---------------------------------------------------------------- */
/* the route of an op                                                 */
/* ---------------------------------------------------------------- */

int lsq_route_target(lua_State *L, lsq_op *h, const sq_holder *hd, sq_err *err) {
  lsq_db *db = h->db;
  lsq_route *r = db->route;
  h->rindex = -1;
  if (!r || h->route != LSQ_ROUTE_READ) {
    sq_oper_target_pool(h->op, db->pool, hd);
    return SQ_OK;
  }
  double lw = r->sticky > 0 ? last_write(L, h->dbidx, r) : 0;
  int i = -1;
  sq_pool *p = NULL;
  if (sq_replset_pick_read(r->rs, lw, &i, &p, err)) return err->kind;
  h->rindex = i;
  sq_oper_target_pool(h->op, p, hd);
  return SQ_OK;
}

/* Kinds that change nothing by themselves. */
static int writes(int kind) {
  switch (kind) {
  case SQ_OPER_SELECT:
  case SQ_OPER_CURSOR_OPEN:
  case SQ_OPER_CURSOR_FETCH:
  case SQ_OPER_CURSOR_CLOSE:
  case SQ_OPER_BEGIN:
  case SQ_OPER_ROLLBACK:
  case SQ_OPER_SAVEPOINT:
  case SQ_OPER_RELEASE:
  case SQ_OPER_ROLLBACK_TO:
  case SQ_OPER_PING:
  case SQ_OPER_VERSION:
    return 0;
  default:
    return 1;
  }
}

int lsq_route_after(lua_State *L, lsq_op *h) {
  lsq_db *db = h->db;
  lsq_route *r = db->route;
  if (!r) return 0;
  sq_oper *op = h->op;
  int rc = sq_oper_rc(op);
  if (h->rindex < 0) {
    if (rc == SQ_OK && h->route == LSQ_ROUTE_PRIMARY && writes(sq_oper_kind(op))) lsq_route_wrote(L, h->dbidx);
    return 0;
  }
  if (rc == SQ_OK) {
    sq_replset_mark_ok(r->rs, h->rindex);
    return 0;
  }
  if (rc != SQ_ECONNECTION && rc != SQ_ETIMEOUT) return 0;
  /* unreachable, or its connection lost: skipped for a while */
  sq_replset_mark_failed(r->rs, h->rindex, sq_oper_err(op));
  /* the read again elsewhere, when nothing of it reached the caller */
  if (h->raised || sq_oper_interrupted(op) || sq_oper_rows(op) > 0) return 0;
  if (h->sink != LSINK_NONE) {
    int t = lua_getiuservalue(L, h->base, OUV_OUT);
    lua_pop(L, 1);
    if (t != LUA_TNIL) return 0;
  }
  if (h->rtries++ >= sq_replset_nreads(r->rs)) return 0;
  sq_err e;
  sq_err_clear(&e);
  double lw = r->sticky > 0 ? last_write(L, h->dbidx, r) : 0;
  int i = -1;
  sq_pool *p = NULL;
  if (sq_replset_pick_read(r->rs, lw, &i, &p, &e)) return 0; /* none left, no fallback: its own error stands */
  sq_holder hd;
  lsq_db_holder(db, &hd, h->what[0] ? h->what : NULL);
  h->rindex = i;
  sq_oper_target_pool(op, p, &hd);
  return 1;
}
