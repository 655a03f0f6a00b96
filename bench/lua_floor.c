/*
 * lua_floor.c: the floor for Lua clients in sqorm's benchmarks.
 *
 * A minimal hand-written Lua 5.4 module over the same client libraries as
 * raw_bench.c (libsqlite3, libmariadb's binary protocol, libpq's extended
 * protocol in text format), running the same prepared statements, and
 * building the same Lua tables sqorm builds -- with nothing else: no
 * validation, no change tracking, no query building, no pool.
 *
 *   instance: lua_createtable(L, ncols, 0), the shared metatable set, then
 *             each non-NULL column value stored with lua_rawseti in slot
 *             column + 1 (src/lua/linstance.c's row sink, SINK_LIST mode);
 *   raw row:  lua_createtable(L, 0, ncols), each non-NULL value stored with
 *             lua_rawset under the column name, the names interned once per
 *             statement run and kept on the stack (as sqorm does);
 *   values:   integer columns as Lua integers, floats as floats, everything
 *             else (text, DATETIME/TIMESTAMP in the driver's text form) as
 *             strings; NULL leaves the slot empty.
 *
 * What a binding cannot avoid is here; whatever sqorm adds on top shows as
 * its distance from these numbers. bench/lua_floor_bench.lua drives it.
 *
 * Lua API (errors raise a string):
 *   F.open_sqlite(path)                                  -> conn
 *   F.open_mysql(host, port, user, password, database)   -> conn
 *   F.open_postgres(host, port, user, password, database) -> conn (no TLS)
 *   F.metatable{ name1, name2, ... } -> an instance metatable whose __index
 *                               (C) maps a column name to its slot, so
 *                               p.coins reads slot 3 as sqorm's instances do
 *   conn:exec(sql)            a statement without parameters, result dropped
 *   conn:scalar(sql)          -> first column of the first row, as integer
 *   conn:prepare(sql [, mt])  -> stmt; `?` placeholders; mt: the metatable
 *                                 of the instances the stmt builds
 *   conn:close()
 *   stmt:exec(...)            -> affected rows; args: integers or strings
 *   stmt:exec_array(t [, n])  -> affected rows; binds t[1..n] (n = #t)
 *   stmt:one(...)             -> the first row as an instance, or nil
 *   stmt:list(...)            -> list of instances
 *   stmt:list_raw(...)        -> list of raw rows (keyed by column name)
 *   stmt:each(...)            -> iterator for a generic for: one instance per
 *                                 row, streamed (SQLite step, MariaDB
 *                                 unbuffered fetch, libpq single-row mode)
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <libpq-fe.h>
#include <mysql.h>
#include <sqlite3.h>

#define CONN_MT "lua_floor.conn"
#define STMT_MT "lua_floor.stmt"

enum { K_SQLITE, K_MYSQL, K_PG };
/* How a result column is pushed. */
enum { V_INT, V_NUM, V_BOOL, V_TEXT };

typedef struct stmt stmt;

typedef struct conn {
  int kind;
  sqlite3 *lite;
  MYSQL *my;
  PGconn *pg;
  int nstmts;
  stmt *busy; /* a statement whose rows are still being read (each) */
} conn;

struct stmt {
  conn *c;
  int nparams, ncols;
  int *vkind;        /* per column: V_* */
  int names_ref;     /* registry: { column names } */
  int mt_ref;        /* registry: the instance metatable, or LUA_NOREF */
  int closed;
  /* sqlite */
  sqlite3_stmt *lst;
  /* mysql */
  MYSQL_STMT *mst;
  MYSQL_BIND *pb;
  unsigned long *plen;
  int64_t *pint;
  MYSQL_BIND *rb;
  unsigned long *rlen;
  my_bool *rnull, *rerr;
  int64_t *rint;
  double *rnum;
  char **rbuf;
  /* postgres */
  char name[24];
  const char **vals;
  char (*num)[24];
  PGresult *cur; /* the single-row-mode row being read */
};

/* ---------------------------------------------------------------- */
/* connections                                                        */
/* ---------------------------------------------------------------- */

static conn *check_conn(lua_State *L, int idx) {
  conn *c = luaL_checkudata(L, idx, CONN_MT);
  if (!c->lite && !c->my && !c->pg) luaL_error(L, "lua_floor: connection closed");
  return c;
}

static conn *new_conn(lua_State *L, int kind) {
  conn *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  c->kind = kind;
  luaL_setmetatable(L, CONN_MT);
  return c;
}

static void pg_quiet(void *unused, const char *msg) {
  (void)unused;
  (void)msg;
}

static int f_open_sqlite(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  conn *c = new_conn(L, K_SQLITE);
  /* NOMUTEX, as sqorm opens its handles: one thread uses a connection at a
   * time, so the per-call mutex of the serialized mode buys nothing. */
  if (sqlite3_open_v2(path, &c->lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    lua_pushfstring(L, "sqlite: cannot open %s: %s", path,
                    c->lite ? sqlite3_errmsg(c->lite) : "out of memory");
    sqlite3_close(c->lite);
    c->lite = NULL;
    return lua_error(L);
  }
  return 1;
}

static int f_open_mysql(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  unsigned port = (unsigned)luaL_checkinteger(L, 2);
  const char *user = luaL_checkstring(L, 3);
  const char *pw = luaL_optstring(L, 4, "");
  const char *db = luaL_checkstring(L, 5);
  conn *c = new_conn(L, K_MYSQL);
  c->my = mysql_init(NULL);
  if (!c->my) return luaL_error(L, "mysql_init failed");
  mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (!mysql_real_connect(c->my, host, user, pw, db, port, NULL, 0)) {
    lua_pushfstring(L, "mysql connect: %s", mysql_error(c->my));
    mysql_close(c->my);
    c->my = NULL;
    return lua_error(L);
  }
  return 1;
}

static int f_open_postgres(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  const char *user = luaL_checkstring(L, 3);
  const char *pw = luaL_optstring(L, 4, "");
  const char *db = luaL_checkstring(L, 5);
  char portbuf[24];
  snprintf(portbuf, sizeof portbuf, "%lld", (long long)port);
  /* sslmode=disable, as every client of the benchmark */
  const char *keys[] = {"host", "port", "user", "password", "dbname", "sslmode", NULL};
  const char *vals[] = {host, portbuf, user, pw, db, "disable", NULL};
  conn *c = new_conn(L, K_PG);
  c->pg = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(c->pg) != CONNECTION_OK) {
    lua_pushfstring(L, "postgres connect: %s", PQerrorMessage(c->pg));
    PQfinish(c->pg);
    c->pg = NULL;
    return lua_error(L);
  }
  PQsetNoticeProcessor(c->pg, pg_quiet, NULL);
  return 1;
}

static void stmt_drain(stmt *s);

/* Finishes a streamed read that its loop left early, so the connection
 * can take the next statement. */
static void conn_idle(conn *c) {
  if (c->busy) stmt_drain(c->busy);
}

static int pg_ok(PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static int c_exec(lua_State *L) {
  conn *c = check_conn(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  conn_idle(c);
  switch (c->kind) {
  case K_SQLITE: {
    char *err = NULL;
    if (sqlite3_exec(c->lite, sql, NULL, NULL, &err) != SQLITE_OK) {
      lua_pushfstring(L, "sqlite: %s", err ? err : sqlite3_errmsg(c->lite));
      sqlite3_free(err);
      return lua_error(L);
    }
    break;
  }
  case K_MYSQL: {
    if (mysql_real_query(c->my, sql, strlen(sql)))
      return luaL_error(L, "mysql: %s", mysql_error(c->my));
    MYSQL_RES *res = mysql_store_result(c->my);
    if (res) mysql_free_result(res);
    break;
  }
  default: {
    PGresult *r = PQexec(c->pg, sql);
    if (!pg_ok(r)) {
      PQclear(r);
      return luaL_error(L, "postgres: %s", PQerrorMessage(c->pg));
    }
    PQclear(r);
  }
  }
  return 0;
}

static int c_scalar(lua_State *L) {
  conn *c = check_conn(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  conn_idle(c);
  lua_Integer v = 0;
  switch (c->kind) {
  case K_SQLITE: {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->lite, sql, -1, &st, NULL) != SQLITE_OK)
      return luaL_error(L, "sqlite: %s", sqlite3_errmsg(c->lite));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      return luaL_error(L, "sqlite: %s", sqlite3_errmsg(c->lite));
    break;
  }
  case K_MYSQL: {
    if (mysql_real_query(c->my, sql, strlen(sql)))
      return luaL_error(L, "mysql: %s", mysql_error(c->my));
    MYSQL_RES *res = mysql_store_result(c->my);
    if (!res) return luaL_error(L, "mysql: no result");
    MYSQL_ROW r = mysql_fetch_row(res);
    v = r && r[0] ? strtoll(r[0], NULL, 10) : 0;
    mysql_free_result(res);
    break;
  }
  default: {
    PGresult *r = PQexec(c->pg, sql);
    if (!pg_ok(r)) {
      PQclear(r);
      return luaL_error(L, "postgres: %s", PQerrorMessage(c->pg));
    }
    v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
  }
  }
  lua_pushinteger(L, v);
  return 1;
}

static int c_close(lua_State *L) {
  conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (c->busy) stmt_drain(c->busy);
  /* Its statements see the handles gone and free only their own memory. */
  if (c->lite) sqlite3_close_v2(c->lite);
  if (c->my) mysql_close(c->my);
  if (c->pg) PQfinish(c->pg);
  c->lite = NULL;
  c->my = NULL;
  c->pg = NULL;
  return 0;
}

/* ---------------------------------------------------------------- */
/* statements                                                         */
/* ---------------------------------------------------------------- */

static stmt *check_stmt(lua_State *L, int idx) {
  stmt *s = luaL_checkudata(L, idx, STMT_MT);
  if (s->closed || (!s->c->lite && !s->c->my && !s->c->pg))
    luaL_error(L, "lua_floor: statement or connection closed");
  return s;
}

static void *xcalloc(lua_State *L, size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) luaL_error(L, "out of memory");
  return p;
}

static void stmt_free(stmt *s) {
  if (s->closed) return;
  s->closed = 1;
  conn *c = s->c;
  if (c->busy == s) stmt_drain(s);
  if (s->lst) sqlite3_finalize(s->lst);
  if (s->mst && c->my) mysql_stmt_close(s->mst);
  if (s->cur) PQclear(s->cur);
  if (s->name[0] && c->pg) {
    char sql[48];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
    PQclear(PQexec(c->pg, sql));
  }
  free(s->vkind);
  free(s->pb);
  free(s->plen);
  free(s->pint);
  free(s->rb);
  free(s->rlen);
  free(s->rnull);
  free(s->rerr);
  free(s->rint);
  free(s->rnum);
  if (s->rbuf)
    for (int i = 0; i < s->ncols; i++) free(s->rbuf[i]);
  free(s->rbuf);
  free(s->vals);
  free(s->num);
}

static int s_gc(lua_State *L) {
  stmt *s = luaL_checkudata(L, 1, STMT_MT);
  stmt_free(s);
  luaL_unref(L, LUA_REGISTRYINDEX, s->names_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->mt_ref);
  s->names_ref = s->mt_ref = LUA_NOREF;
  return 0;
}

static int mysql_vkind(enum enum_field_types t) {
  switch (t) {
  case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG:
  case MYSQL_TYPE_LONGLONG: case MYSQL_TYPE_INT24: case MYSQL_TYPE_YEAR:
    return V_INT;
  case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE:
    return V_NUM;
  default:
    return V_TEXT;
  }
}

static int pg_vkind(Oid t) {
  switch (t) {
  case 20: case 21: case 23: case 26: return V_INT;  /* int8 int2 int4 oid */
  case 700: case 701: return V_NUM;                  /* float4 float8 */
  case 16: return V_BOOL;
  default: return V_TEXT;
  }
}

/* conn:prepare(sql [, mt]) */
static int c_prepare(lua_State *L) {
  conn *c = check_conn(L, 1);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  conn_idle(c);
  stmt *s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  s->c = c;
  s->names_ref = s->mt_ref = LUA_NOREF;
  luaL_setmetatable(L, STMT_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* the statement keeps its connection */
  int top = lua_gettop(L);

  lua_createtable(L, 8, 0); /* column names */
  switch (c->kind) {
  case K_SQLITE:
    if (sqlite3_prepare_v3(c->lite, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &s->lst, NULL) != SQLITE_OK)
      return luaL_error(L, "sqlite prepare: %s", sqlite3_errmsg(c->lite));
    s->nparams = sqlite3_bind_parameter_count(s->lst);
    s->ncols = sqlite3_column_count(s->lst);
    for (int i = 0; i < s->ncols; i++) {
      lua_pushstring(L, sqlite3_column_name(s->lst, i));
      lua_rawseti(L, -2, i + 1);
    }
    break;
  case K_MYSQL: {
    s->mst = mysql_stmt_init(c->my);
    if (!s->mst) return luaL_error(L, "mysql_stmt_init: %s", mysql_error(c->my));
    if (mysql_stmt_prepare(s->mst, sql, len))
      return luaL_error(L, "mysql prepare: %s", mysql_stmt_error(s->mst));
    s->nparams = (int)mysql_stmt_param_count(s->mst);
    s->pb = xcalloc(L, (size_t)s->nparams, sizeof *s->pb);
    s->plen = xcalloc(L, (size_t)s->nparams, sizeof *s->plen);
    s->pint = xcalloc(L, (size_t)s->nparams, sizeof *s->pint);
    s->ncols = (int)mysql_stmt_field_count(s->mst);
    if (s->ncols) {
      MYSQL_RES *meta = mysql_stmt_result_metadata(s->mst);
      if (!meta) return luaL_error(L, "mysql: no result metadata");
      MYSQL_FIELD *f = mysql_fetch_fields(meta);
      int n = s->ncols;
      s->vkind = xcalloc(L, (size_t)n, sizeof *s->vkind);
      s->rb = xcalloc(L, (size_t)n, sizeof *s->rb);
      s->rlen = xcalloc(L, (size_t)n, sizeof *s->rlen);
      s->rnull = xcalloc(L, (size_t)n, sizeof *s->rnull);
      s->rerr = xcalloc(L, (size_t)n, sizeof *s->rerr);
      s->rint = xcalloc(L, (size_t)n, sizeof *s->rint);
      s->rnum = xcalloc(L, (size_t)n, sizeof *s->rnum);
      s->rbuf = xcalloc(L, (size_t)n, sizeof *s->rbuf);
      for (int i = 0; i < n; i++) {
        MYSQL_BIND *b = &s->rb[i];
        s->vkind[i] = mysql_vkind(f[i].type);
        b->length = &s->rlen[i];
        b->is_null = &s->rnull[i];
        b->error = &s->rerr[i];
        if (s->vkind[i] == V_INT) {
          b->buffer_type = MYSQL_TYPE_LONGLONG;
          b->buffer = &s->rint[i];
        } else if (s->vkind[i] == V_NUM) {
          b->buffer_type = MYSQL_TYPE_DOUBLE;
          b->buffer = &s->rnum[i];
        } else {
          /* DATETIME too, so libmariadb formats it (as raw_bench does) */
          unsigned long cap = f[i].length + 1;
          if (cap < 64) cap = 64;
          if (cap > 65536) cap = 65536;
          s->rbuf[i] = xcalloc(L, cap, 1);
          b->buffer_type = MYSQL_TYPE_STRING;
          b->buffer = s->rbuf[i];
          b->buffer_length = cap;
        }
        lua_pushlstring(L, f[i].name, f[i].name_length);
        lua_rawseti(L, -2, i + 1);
      }
      mysql_free_result(meta);
      if (mysql_stmt_bind_result(s->mst, s->rb))
        return luaL_error(L, "mysql bind_result: %s", mysql_stmt_error(s->mst));
    }
    break;
  }
  default: {
    /* `?` -> `$n`; none of the benchmark's SQL has `?` in a literal. */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int n = 0;
    for (size_t i = 0; i < len; i++) {
      if (sql[i] == '?') {
        char d[16];
        snprintf(d, sizeof d, "$%d", ++n);
        luaL_addstring(&b, d);
      } else {
        luaL_addchar(&b, sql[i]);
      }
    }
    luaL_pushresult(&b);
    snprintf(s->name, sizeof s->name, "lf%d", ++c->nstmts);
    PGresult *r = PQprepare(c->pg, s->name, lua_tostring(L, -1), n, NULL);
    lua_pop(L, 1);
    if (!pg_ok(r)) {
      PQclear(r);
      s->name[0] = '\0';
      return luaL_error(L, "postgres prepare: %s", PQerrorMessage(c->pg));
    }
    PQclear(r);
    r = PQdescribePrepared(c->pg, s->name);
    if (!pg_ok(r)) {
      PQclear(r);
      return luaL_error(L, "postgres describe: %s", PQerrorMessage(c->pg));
    }
    s->nparams = n;
    s->ncols = PQnfields(r);
    s->vkind = xcalloc(L, (size_t)s->ncols, sizeof *s->vkind);
    for (int i = 0; i < s->ncols; i++) {
      s->vkind[i] = pg_vkind(PQftype(r, i));
      lua_pushstring(L, PQfname(r, i));
      lua_rawseti(L, -2, i + 1);
    }
    PQclear(r);
    s->vals = xcalloc(L, (size_t)n, sizeof *s->vals);
    s->num = xcalloc(L, (size_t)n, sizeof *s->num);
  }
  }
  s->names_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (lua_istable(L, 3)) {
    lua_pushvalue(L, 3);
    s->mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_settop(L, top);
  return 1;
}

/* Binds the Lua values at stack slots first..first+nparams-1 (or, with
 * `tbl`, t[1..nparams]). Strings stay on the Lua stack for the whole call,
 * which outlives the statement's use of them, so no copy is made (except
 * for a streamed SQLite read, whose rows are stepped after the call). */
static void bind_args(lua_State *L, stmt *s, int first, int nargs, int tbl, int transient) {
  if (nargs != s->nparams)
    luaL_error(L, "lua_floor: %d parameters given, statement takes %d", nargs, s->nparams);
  conn *c = s->c;
  for (int i = 0; i < s->nparams; i++) {
    int idx;
    if (tbl) {
      lua_rawgeti(L, first, i + 1); /* kept on the stack: anchors the string */
      idx = lua_gettop(L);
    } else {
      idx = first + i;
    }
    int isint = lua_type(L, idx) == LUA_TNUMBER && lua_isinteger(L, idx);
    size_t len = 0;
    const char *str = NULL;
    lua_Integer iv = 0;
    if (isint) iv = lua_tointeger(L, idx);
    else if (lua_type(L, idx) == LUA_TSTRING) str = lua_tolstring(L, idx, &len);
    else luaL_error(L, "lua_floor: parameter %d: integer or string expected", i + 1);
    switch (c->kind) {
    case K_SQLITE: {
      int rc = isint ? sqlite3_bind_int64(s->lst, i + 1, iv)
                     : sqlite3_bind_text(s->lst, i + 1, str, (int)len,
                                         transient ? SQLITE_TRANSIENT : SQLITE_STATIC);
      if (rc != SQLITE_OK) luaL_error(L, "sqlite bind: %s", sqlite3_errmsg(c->lite));
      break;
    }
    case K_MYSQL: {
      MYSQL_BIND *b = &s->pb[i];
      if (isint) {
        s->pint[i] = iv;
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &s->pint[i];
        b->buffer_length = 0;
        b->length = NULL;
      } else {
        s->plen[i] = len;
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = (void *)str;
        b->buffer_length = len;
        b->length = &s->plen[i];
      }
      break;
    }
    default:
      if (isint) {
        snprintf(s->num[i], sizeof s->num[i], "%" PRId64, (int64_t)iv);
        s->vals[i] = s->num[i];
      } else {
        s->vals[i] = str; /* text format: NUL-terminated Lua string */
      }
    }
  }
  if (c->kind == K_MYSQL && s->nparams && mysql_stmt_bind_param(s->mst, s->pb))
    luaL_error(L, "mysql bind_param: %s", mysql_stmt_error(s->mst));
}

/* Runs the bound statement. SQLite: nothing (stepping runs it); MySQL:
 * execute, rows then read unbuffered; PG: the whole result into *res, or
 * in single-row mode when `stream`. */
static void run(lua_State *L, stmt *s, int stream, PGresult **res) {
  conn *c = s->c;
  switch (c->kind) {
  case K_SQLITE:
    break;
  case K_MYSQL:
    if (mysql_stmt_execute(s->mst)) luaL_error(L, "mysql execute: %s", mysql_stmt_error(s->mst));
    break;
  default:
    if (stream) {
      if (!PQsendQueryPrepared(c->pg, s->name, s->nparams, s->vals, NULL, NULL, 0))
        luaL_error(L, "postgres send: %s", PQerrorMessage(c->pg));
      if (!PQsetSingleRowMode(c->pg)) luaL_error(L, "postgres: single-row mode refused");
    } else {
      PGresult *r = PQexecPrepared(c->pg, s->name, s->nparams, s->vals, NULL, NULL, 0);
      if (!pg_ok(r)) {
        PQclear(r);
        luaL_error(L, "postgres execute: %s", PQerrorMessage(c->pg));
      }
      *res = r;
    }
  }
}

/* Pushes column i of the current row, or returns 0 for NULL. */
/* One sqlite3_column_value per column, then the sqlite3_value_*
 * accessors: each sqlite3_column_* call costs a lookup of its own (the
 * cheapest way through SQLite's API, and the one sqorm's driver uses). */
static inline int push_lite(lua_State *L, sqlite3_stmt *st, int i) {
  sqlite3_value *v = sqlite3_column_value(st, i);
  switch (sqlite3_value_type(v)) {
  case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_value_int64(v)); return 1;
  case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_value_double(v)); return 1;
  case SQLITE_NULL: return 0;
  default: {
    const char *p = (const char *)sqlite3_value_text(v);
    lua_pushlstring(L, p, (size_t)sqlite3_value_bytes(v));
    return 1;
  }
  }
}

static inline int push_my(lua_State *L, stmt *s, int i) {
  if (s->rnull[i]) return 0;
  switch (s->vkind[i]) {
  case V_INT: lua_pushinteger(L, s->rint[i]); return 1;
  case V_NUM: lua_pushnumber(L, s->rnum[i]); return 1;
  default: lua_pushlstring(L, s->rbuf[i], s->rlen[i]); return 1;
  }
}

static inline int push_pg(lua_State *L, stmt *s, const PGresult *r, int row, int i) {
  if (PQgetisnull(r, row, i)) return 0;
  const char *v = PQgetvalue(r, row, i);
  switch (s->vkind[i]) {
  case V_INT: lua_pushinteger(L, strtoll(v, NULL, 10)); return 1;
  case V_NUM: lua_pushnumber(L, strtod(v, NULL)); return 1;
  case V_BOOL: lua_pushboolean(L, v[0] == 't'); return 1;
  default: lua_pushlstring(L, v, (size_t)PQgetlength(r, row, i)); return 1;
  }
}

/* The row builders: `mt` and `names` are stack indexes (0 = none). */
typedef struct shape {
  int raw;   /* hash-keyed row instead of an instance */
  int mt;    /* stack index of the instance metatable, or 0 */
  int names; /* stack index of the first interned column name (raw) */
} shape;

#define BUILD_ROW(PUSH)                                 \
  do {                                                  \
    if (sh->raw) {                                      \
      lua_createtable(L, 0, n);                         \
      for (int i = 0; i < n; i++) {                     \
        lua_pushvalue(L, sh->names + i);                \
        if (PUSH) lua_rawset(L, -3);                    \
        else lua_pop(L, 1);                             \
      }                                                 \
    } else {                                            \
      lua_createtable(L, n, 0);                         \
      if (sh->mt) {                                     \
        lua_pushvalue(L, sh->mt);                       \
        lua_setmetatable(L, -2);                        \
      }                                                 \
      for (int i = 0; i < n; i++)                       \
        if (PUSH) lua_rawseti(L, -2, i + 1);            \
    }                                                   \
  } while (0)

static void build_lite(lua_State *L, stmt *s, const shape *sh) {
  int n = s->ncols;
  BUILD_ROW(push_lite(L, s->lst, i));
}

static void build_my(lua_State *L, stmt *s, const shape *sh) {
  int n = s->ncols;
  BUILD_ROW(push_my(L, s, i));
}

static void build_pg(lua_State *L, stmt *s, const shape *sh, const PGresult *r, int row) {
  int n = s->ncols;
  BUILD_ROW(push_pg(L, s, r, row, i));
}

static int mysql_fetch_ok(lua_State *L, stmt *s, int rc) {
  if (rc == 0) return 1;
  if (rc == MYSQL_NO_DATA) return 0;
  if (rc == MYSQL_DATA_TRUNCATED) luaL_error(L, "mysql: a column was truncated");
  luaL_error(L, "mysql fetch: %s", mysql_stmt_error(s->mst));
  return 0;
}

static void lite_done(lua_State *L, stmt *s, int rc) {
  sqlite3_reset(s->lst);
  if (rc != SQLITE_DONE) luaL_error(L, "sqlite step: %s", sqlite3_errmsg(s->c->lite));
}

/* Reads every row of the run statement. mode 0: into a list (table on the
 * stack top); mode 1: the first row only (the others are drained). */
static int read_rows(lua_State *L, stmt *s, const shape *sh, int one) {
  conn *c = s->c;
  int list = 0;
  lua_Integer k = 0;
  PGresult *res = NULL;
  run(L, s, 0, &res);
  if (!one) {
    lua_createtable(L, c->kind == K_PG ? PQntuples(res) : 0, 0);
    list = lua_gettop(L);
  } else {
    lua_pushnil(L); /* the result slot */
  }
  int slot = lua_gettop(L);
  switch (c->kind) {
  case K_SQLITE: {
    int rc;
    while ((rc = sqlite3_step(s->lst)) == SQLITE_ROW) {
      if (one && k) continue;
      build_lite(L, s, sh);
      if (one) lua_replace(L, slot), k = 1;
      else lua_rawseti(L, list, ++k);
    }
    lite_done(L, s, rc);
    break;
  }
  case K_MYSQL:
    while (mysql_fetch_ok(L, s, mysql_stmt_fetch(s->mst))) {
      if (one && k) continue;
      build_my(L, s, sh);
      if (one) lua_replace(L, slot), k = 1;
      else lua_rawseti(L, list, ++k);
    }
    break;
  default: {
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
      build_pg(L, s, sh, res, r);
      if (one) {
        lua_replace(L, slot);
        break;
      }
      lua_rawseti(L, list, r + 1);
    }
    PQclear(res);
  }
  }
  return 1;
}

static void push_mt(lua_State *L, stmt *s, shape *sh) {
  if (s->mt_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->mt_ref);
    sh->mt = lua_gettop(L);
  }
}

/* Runs a bound statement that returns no rows; pushes the affected rows. */
static int finish_exec(lua_State *L, stmt *s) {
  lua_Integer n = 0;
  PGresult *res = NULL;
  run(L, s, 0, &res);
  switch (s->c->kind) {
  case K_SQLITE: {
    int rc;
    while ((rc = sqlite3_step(s->lst)) == SQLITE_ROW) {}
    lite_done(L, s, rc);
    n = sqlite3_changes64(s->c->lite);
    break;
  }
  case K_MYSQL:
    n = (lua_Integer)mysql_stmt_affected_rows(s->mst);
    if (s->ncols) mysql_stmt_free_result(s->mst);
    break;
  default:
    n = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
  }
  lua_pushinteger(L, n);
  return 1;
}

/* stmt:exec(...) -> affected rows */
static int s_exec(lua_State *L) {
  stmt *s = check_stmt(L, 1);
  conn_idle(s->c);
  bind_args(L, s, 2, lua_gettop(L) - 1, 0, 0);
  return finish_exec(L, s);
}

/* stmt:exec_array(t [, n]) -> affected rows */
static int s_exec_array(lua_State *L) {
  stmt *s = check_stmt(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_optinteger(L, 3, (lua_Integer)luaL_len(L, 2));
  conn_idle(s->c);
  lua_settop(L, 2);
  luaL_checkstack(L, n + 8, "too many parameters");
  bind_args(L, s, 2, n, 1, 0); /* leaves t[1..n] on the stack: anchors */
  return finish_exec(L, s);
}

static int rows_common(lua_State *L, int raw, int one) {
  stmt *s = check_stmt(L, 1);
  conn_idle(s->c);
  int nargs = lua_gettop(L) - 1;
  bind_args(L, s, 2, nargs, 0, 0);
  shape sh = {raw, 0, 0};
  if (raw) {
    luaL_checkstack(L, s->ncols + 8, "too many columns");
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->names_ref);
    int t = lua_gettop(L);
    sh.names = t + 1;
    for (int i = 0; i < s->ncols; i++) lua_rawgeti(L, t, i + 1);
  } else {
    push_mt(L, s, &sh);
  }
  return read_rows(L, s, &sh, one);
}

static int s_one(lua_State *L) { return rows_common(L, 0, 1); }
static int s_list(lua_State *L) { return rows_common(L, 0, 0); }
static int s_list_raw(lua_State *L) { return rows_common(L, 1, 0); }

/* Ends a streamed read early or late: drains what is left. */
static void stmt_drain(stmt *s) {
  conn *c = s->c;
  if (c->busy != s) return;
  c->busy = NULL;
  switch (c->kind) {
  case K_SQLITE:
    sqlite3_reset(s->lst);
    break;
  case K_MYSQL:
    if (c->my) mysql_stmt_free_result(s->mst);
    break;
  default: {
    if (s->cur) PQclear(s->cur);
    s->cur = NULL;
    PGresult *r;
    if (c->pg)
      while ((r = PQgetResult(c->pg))) PQclear(r);
  }
  }
}

/* The iterator of stmt:each: upvalue 1 the stmt, upvalue 2 the metatable
 * (or nil). Returns one instance per call, nil at the end. */
static int each_next(lua_State *L) {
  stmt *s = lua_touserdata(L, lua_upvalueindex(1));
  conn *c = s->c;
  if (s->closed || c->busy != s) return 0;
  shape sh = {0, lua_isnil(L, lua_upvalueindex(2)) ? 0 : lua_upvalueindex(2), 0};
  switch (c->kind) {
  case K_SQLITE: {
    int rc = sqlite3_step(s->lst);
    if (rc == SQLITE_ROW) {
      build_lite(L, s, &sh);
      return 1;
    }
    c->busy = NULL;
    lite_done(L, s, rc);
    return 0;
  }
  case K_MYSQL:
    if (mysql_fetch_ok(L, s, mysql_stmt_fetch(s->mst))) {
      build_my(L, s, &sh);
      return 1;
    }
    c->busy = NULL;
    return 0;
  default: {
    if (s->cur) {
      PQclear(s->cur);
      s->cur = NULL;
    }
    PGresult *r = PQgetResult(c->pg);
    if (r && PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
      s->cur = r; /* cleared on the next call, or by the drain */
      build_pg(L, s, &sh, r, 0);
      return 1;
    }
    int ok = !r || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (r) PQclear(r);
    while ((r = PQgetResult(c->pg))) PQclear(r);
    c->busy = NULL;
    if (!ok) luaL_error(L, "postgres stream: %s", PQerrorMessage(c->pg));
    return 0;
  }
  }
}

/* stmt:each(...) -> iterator */
static int s_each(lua_State *L) {
  stmt *s = check_stmt(L, 1);
  conn_idle(s->c);
  bind_args(L, s, 2, lua_gettop(L) - 1, 0, 1);
  run(L, s, 1, NULL);
  s->c->busy = s;
  lua_pushvalue(L, 1);
  if (s->mt_ref != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, s->mt_ref);
  else lua_pushnil(L);
  lua_pushcclosure(L, each_next, 2);
  return 1;
}

static int s_close(lua_State *L) { return s_gc(L); }

/* ---------------------------------------------------------------- */

/* __index of F.metatable: upvalue 1 maps name -> slot. */
static int inst_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNUMBER) return 0;
  lua_rawgeti(L, 1, lua_tointeger(L, -1));
  return 1;
}

/* F.metatable{ names... } */
static int f_metatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, (int)n);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_pushinteger(L, i);
    lua_rawset(L, -3);
  }
  lua_pushcclosure(L, inst_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "lua_floor.instance");
  lua_setfield(L, -2, "__name");
  return 1;
}

static const luaL_Reg conn_methods[] = {
  {"exec", c_exec}, {"scalar", c_scalar}, {"prepare", c_prepare}, {"close", c_close},
  {NULL, NULL}};

static const luaL_Reg stmt_methods[] = {
  {"exec", s_exec}, {"exec_array", s_exec_array}, {"one", s_one}, {"list", s_list},
  {"list_raw", s_list_raw}, {"each", s_each}, {"close", s_close}, {NULL, NULL}};

static const luaL_Reg funcs[] = {
  {"open_sqlite", f_open_sqlite}, {"open_mysql", f_open_mysql},
  {"open_postgres", f_open_postgres}, {"metatable", f_metatable}, {NULL, NULL}};

int luaopen_lua_floor(lua_State *L) {
  luaL_newmetatable(L, CONN_MT);
  luaL_newlib(L, conn_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, c_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, c_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newmetatable(L, STMT_MT);
  luaL_newlib(L, stmt_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, s_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
