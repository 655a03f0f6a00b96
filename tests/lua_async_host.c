/*
 * lua_async_host.c - async mode seen from a C host (ctest: lua_async_host
 * and, per test server, lua_async_host_mysql / _postgres):
 *
 *   close   a lua_State closed with 50 ops in flight (slow statements and
 *           ops queued behind pool.max = 4): lua_close cancels them,
 *           waits for them and runs no Lua for them; every connection is
 *           back in the shared pool afterwards (checked from a second
 *           state); clean under ASan/UBSan (no leak, no use after free).
 *   threads two lua_States on two threads share a named pool, each with
 *           200 coroutines whose results carry the state's id: no state
 *           ever resumes a coroutine of the other (checked per result),
 *           each resumes all of its own exactly once. Meant for TSan too.
 *
 *   lua_async_host [URL]    (default: a SQLite file in /tmp)
 */
#define _POSIX_C_SOURCE 200809L

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SQORM_BUILD_DIR
#define SQORM_BUILD_DIR "build"
#endif

static const char *url;
static char pool_name[64];

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, SQORM_BUILD_DIR "/share/?.lua;" SQORM_BUILD_DIR "/share/?/init.lua;");
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, SQORM_BUILD_DIR "/lib/?.so;");
  lua_getfield(L, -2, "cpath");
  lua_concat(L, 2);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_pushstring(L, url);
  lua_setglobal(L, "URL");
  lua_pushstring(L, pool_name);
  lua_setglobal(L, "POOL");
  return L;
}

/* Runs chunk in L; on error prints it and exits. */
static void run(lua_State *L, const char *what, const char *chunk) {
  if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "lua_async_host: %s: FAILED: %s\n", what, lua_tostring(L, -1));
    exit(1);
  }
}

static long long global_int(lua_State *L, const char *name) {
  lua_getglobal(L, name);
  long long v = (long long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static const char *CONNECT =
    "sqorm = require 'sqorm'\n"
    "db = sqorm.connect(URL, { name = POOL, async = true, pool = { max = 4, acquire_timeout = 60 } })\n"
    "dialect = db:dialect()\n"
    "function slow_sql()\n"
    "  if dialect == 'postgres' then return 'SELECT pg_sleep(5) AS s' end\n"
    "  if dialect == 'mysql' then return 'SELECT SLEEP(5) AS s' end\n"
    "  return 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS s FROM c'\n"
    "end\n";

static int test_close(void) {
  lua_State *keeper = new_state(); /* keeps the named pool open, checks it afterwards */
  run(keeper, "keeper", CONNECT);
  lua_State *L = new_state();
  run(L, "close: connect", CONNECT);
  run(L, "close: spawn",
      "ran_after = 0\n"
      "for i = 1, 50 do\n"
      "  sqorm.spawn(function()\n"
      "    if i % 2 == 0 then db:query(slow_sql()) else db:transaction(function() db:query(slow_sql()) end) end\n"
      "    ran_after = ran_after + 1\n"
      "  end)\n"
      "end\n"
      "assert(sqorm.pending() == 50, 'pending ' .. sqorm.pending())\n");
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL); /* let some run on the server */
  double t0 = 0;
  {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = ts.tv_sec + ts.tv_nsec / 1e9;
  }
  lua_close(L); /* 50 ops in flight: cancelled, waited for, no Lua */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double took = ts.tv_sec + ts.tv_nsec / 1e9 - t0;
  run(keeper, "close: check",
      "local s = db:pool_stats()\n"
      "assert(s.in_use == 0, 'in_use ' .. s.in_use .. ' after lua_close')\n"
      "in_use, size = s.in_use, s.size\n"
      "local ok = sqorm.run(function() return db:query('SELECT 1 AS one')[1].one end)\n"
      "assert(tonumber(ok) == 1)\n");
  printf("close: lua_close with 50 ops in flight took %.3f s; in_use afterwards %lld (pool size %lld)\n", took,
         global_int(keeper, "in_use"), global_int(keeper, "size"));
  lua_close(keeper);
  return took < 10 ? 0 : 1;
}

typedef struct tstate {
  pthread_t th;
  int id;
  long long mine, foreign, resumed;
  char err[256];
} tstate;

static void *thread_main(void *ud) {
  tstate *t = ud;
  lua_State *L = new_state();
  lua_pushinteger(L, t->id);
  lua_setglobal(L, "ID");
  if (luaL_loadstring(L, CONNECT) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK ||
      luaL_loadstring(L,
                      "mine, foreign, resumed = 0, 0, 0\n"
                      "for i = 1, 200 do\n"
                      "  sqorm.spawn(function()\n"
                      "    local ok, v\n"
                      "    for _ = 1, 3 do\n" /* a connection lost while connecting (TLS under load): again */
                      "      ok, v = pcall(db.query, db, 'SELECT ? AS who, ? AS i', { ID, i })\n"
                      "      if ok or v.kind ~= 'connection' then break end\n"
                      "    end\n"
                      "    if not ok then error(v) end\n"
                      "    v = v[1]\n"
                      "    resumed = resumed + 1\n"
                      "    if tonumber(v.who) == ID and tonumber(v.i) == i then mine = mine + 1 else foreign = foreign + 1 end\n"
                      "  end)\n"
                      "end\n"
                      "while sqorm.pending() > 0 do sqorm.poll() end\n"
                      "db:close()\n") != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK) {
    snprintf(t->err, sizeof t->err, "%s", lua_tostring(L, -1));
  } else {
    t->mine = global_int(L, "mine");
    t->foreign = global_int(L, "foreign");
    t->resumed = global_int(L, "resumed");
  }
  lua_close(L);
  return NULL;
}

static int test_threads(void) {
  lua_State *keeper = new_state();
  run(keeper, "keeper", CONNECT);
  tstate ts[2];
  memset(ts, 0, sizeof ts);
  for (int i = 0; i < 2; i++) {
    ts[i].id = i + 1;
    pthread_create(&ts[i].th, NULL, thread_main, &ts[i]);
  }
  int bad = 0;
  for (int i = 0; i < 2; i++) {
    pthread_join(ts[i].th, NULL);
    printf("threads: state %d: %lld of its own resumed once each, %lld foreign, %lld resumes%s%s\n", ts[i].id,
           ts[i].mine, ts[i].foreign, ts[i].resumed, ts[i].err[0] ? ": FAILED: " : "", ts[i].err);
    if (ts[i].err[0] || ts[i].mine != 200 || ts[i].foreign != 0 || ts[i].resumed != 200) bad = 1;
  }
  run(keeper, "threads: check", "assert(db:pool_stats().in_use == 0)\n");
  lua_close(keeper);
  return bad;
}

int main(int argc, char **argv) {
  char file[96], def[128];
  snprintf(file, sizeof file, "/tmp/sqorm-async-host-%ld.db", (long)getpid());
  snprintf(def, sizeof def, "sqlite://%s", file);
  url = argc > 1 && argv[1][0] ? argv[1] : def;
  snprintf(pool_name, sizeof pool_name, "async-host-%ld", (long)getpid());
  int rc = test_close();
  snprintf(pool_name, sizeof pool_name, "async-host2-%ld", (long)getpid());
  rc |= test_threads();
  if (url == def) {
    remove(file);
    char side[128];
    snprintf(side, sizeof side, "%s-wal", file);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", file);
    remove(side);
  }
  printf("lua_async_host: %s\n", rc ? "FAILED" : "ok");
  return rc;
}
