/*
 * embed_server.c - embedding sqorm in a multi-threaded C host, in the
 * shape of a game server: N worker threads, each running Lua game logic
 * (examples/embed_worker.lua) in a lua_State of its own, all sharing one
 * bounded pool of database connections.
 *
 *   embed_server [SCRIPT [THREADS [URL]]]
 *
 *   SCRIPT   default: examples/embed_worker.lua of the source tree
 *   THREADS  default 4
 *   URL      default: $DATABASE_URL, else a SQLite file in /tmp
 *
 * Prints one line per worker and the pool's statistics; exits non-zero on
 * any error. The sqorm module is loaded the way any host loads a Lua C
 * module - luaL_openlibs, then `require "sqorm"` - from this build tree,
 * whose paths are compiled in (examples/examples.cmake).
 *
 * The rules this example follows, which are the rules for any host:
 *
 *   One lua_State per thread. A lua_State is not thread-safe; give every
 *   thread its own and never touch it from another. (Several states per
 *   thread are fine; one state shared by threads is not.)
 *
 *   The pool is shared by name. Each state calls
 *   sqorm.connect{ name = "main", ... } with the same settings and gets
 *   its own handle on one process-wide C pool, which is thread-safe,
 *   bounded by pool.max and first-come first-served. The pool lives while
 *   any handle is open; here the main state opens it first and closes it
 *   last, so it outlives the workers.
 *
 *   No Lua value crosses threads. Values move between states only as C
 *   values (numbers, copied strings) - here through struct worker. A
 *   connection belongs to one state at a time, and to one coroutine in it
 *   while a transaction is open.
 *
 *   Init before threads. `require "sqorm"` runs sqorm's one-time global
 *   init (thread-safe, idempotent); the main state loads the module
 *   before the workers start, as mysql_library_init wants.
 *
 * Async mode (one thread, many coroutines):
 *
 *   embed_server --async [SESSIONS [URL]]
 *
 * One thread, one lua_State, SESSIONS (default 100) coroutine "sessions"
 * (examples/embed_async.lua) doing read-modify-write transactions on a
 * db connected with async = true: each query runs on a worker thread of
 * the pool while its coroutine is suspended, so the host's tick loop
 * below never waits for the database. The loop waits on sqorm.pollfd()
 * with poll(2) for at most 1 ms (the tick), then calls sqorm.poll(),
 * which resumes the coroutines whose query completed. It prints the
 * ticks and the longest gap between two ticks, and checks that every
 * transfer happened and no coin was lost.
 */
#define _POSIX_C_SOURCE 200809L

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SQORM_BUILD_DIR
#define SQORM_BUILD_DIR "build"
#endif
#ifndef SQORM_SOURCE_DIR
#define SQORM_SOURCE_DIR "."
#endif

#define TICKS 300

/* What a worker thread reports: C values only. */
typedef struct worker {
  pthread_t thread;
  int id;
  const char *script, *url, *run_id;
  long long ticks, reads, writes, trades;
  int ok;
  char error[512];
} worker;

/* Message handler for lua_pcall: the error as text, with a traceback. */
static int msgh(lua_State *L) {
  const char *msg = luaL_tolstring(L, 1, NULL); /* sqorm errors have __tostring */
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Copies the error on the stack top into buf. */
static void take_error(lua_State *L, char *buf, size_t n) {
  const char *msg = lua_tostring(L, -1);
  snprintf(buf, n, "%s", msg ? msg : "(error object is not a string)");
}

/* Prepends a directory pattern to package.path or package.cpath. */
static void prepend_path(lua_State *L, const char *field, const char *patterns) {
  lua_getglobal(L, "package");
  lua_pushstring(L, patterns);
  lua_getfield(L, -2, field);
  lua_concat(L, 2);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

/*
 * A new state with the standard libraries, sqorm's build-tree paths and
 * the worker script loaded: its module table is left at index 2 (the
 * message handler at 1). Returns NULL with err filled on failure.
 */
static lua_State *new_state(const char *script, char *err, size_t errn) {
  lua_State *L = luaL_newstate();
  if (!L) {
    snprintf(err, errn, "cannot create a lua_State (out of memory)");
    return NULL;
  }
  luaL_openlibs(L);
  prepend_path(L, "path", SQORM_BUILD_DIR "/share/?.lua;" SQORM_BUILD_DIR "/share/?/init.lua;");
  prepend_path(L, "cpath", SQORM_BUILD_DIR "/lib/?.so;");
  lua_pushcfunction(L, msgh);
  if (luaL_loadfile(L, script) != LUA_OK || lua_pcall(L, 0, 1, 1) != LUA_OK) {
    take_error(L, err, errn);
    lua_close(L);
    return NULL;
  }
  if (!lua_istable(L, 2)) {
    snprintf(err, errn, "%s must return a table of functions", script);
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Pushes M[name] (M at index 2), checking it is a function. */
static int push_fn(lua_State *L, const char *name, char *err, size_t errn) {
  if (lua_getfield(L, 2, name) != LUA_TFUNCTION) {
    snprintf(err, errn, "the worker script has no function '%s'", name);
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

static long long int_field(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  long long v = (long long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A worker thread: its own state, from creation to lua_close. */
static void *worker_main(void *ud) {
  worker *w = ud;
  lua_State *L = new_state(w->script, w->error, sizeof w->error);
  if (!L) return NULL;
  if (push_fn(L, "worker", w->error, sizeof w->error)) {
    lua_pushinteger(L, w->id);
    lua_pushstring(L, w->url);
    lua_pushstring(L, w->run_id);
    lua_pushinteger(L, TICKS);
    if (lua_pcall(L, 4, 1, 1) != LUA_OK) {
      take_error(L, w->error, sizeof w->error);
    } else if (!lua_istable(L, -1)) {
      snprintf(w->error, sizeof w->error, "worker() must return a table of counts");
    } else {
      w->ticks = int_field(L, -1, "ticks");
      w->reads = int_field(L, -1, "reads");
      w->writes = int_field(L, -1, "writes");
      w->trades = int_field(L, -1, "trades");
      w->ok = 1;
    }
  }
  lua_close(L); /* closes this state's db handle; the pool stays with the others */
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls M[name](args on the stack) with nargs, one result left on the
 * stack; 0 with err filled on failure. */
static int call_fn(lua_State *L, const char *name, int nargs, char *err, size_t errn) {
  if (!push_fn(L, name, err, errn)) {
    lua_pop(L, nargs);
    return 0;
  }
  lua_insert(L, -nargs - 1);
  if (lua_pcall(L, nargs, 1, 1) != LUA_OK) {
    take_error(L, err, errn);
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* embed_server --async: one thread, one state, many sessions (see the top). */
static int async_main(int sessions, const char *url, const char *run_id) {
  char err[512];
  lua_State *L = new_state(SQORM_SOURCE_DIR "/examples/embed_async.lua", err, sizeof err);
  if (!L) {
    fprintf(stderr, "embed_server --async: FAILED: %s\n", err);
    return 1;
  }
  lua_pushstring(L, url);
  lua_pushstring(L, run_id);
  lua_pushinteger(L, sessions);
  double t0 = now_s();
  if (!call_fn(L, "setup", 3, err, sizeof err)) goto fail;
  printf("embed_server --async: one thread, one lua_State, %d coroutine sessions (%s)\n", sessions, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (!call_fn(L, "pollfd", 0, err, sizeof err)) goto fail;
  int fd = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  long long ticks = 0;
  double start = now_s(), prev = start, max_gap = 0, max_wait = 0;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    double w0 = now_s();
    poll(&p, 1, 1); /* the tick: 1 ms, or earlier when completions wait */
    double t = now_s();
    if (t - w0 > max_wait) max_wait = t - w0;
    if (t - prev > max_gap) max_gap = t - prev;
    prev = t;
    ticks++;
    if (!call_fn(L, "tick", 0, err, sizeof err)) goto fail;
    long long pending = (long long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (pending == 0) break;
  }
  double took = now_s() - start;
  if (!call_fn(L, "finish", 0, err, sizeof err)) goto fail;
  long long done = int_field(L, -1, "sessions"), transfers = int_field(L, -1, "transfers"),
            retries = int_field(L, -1, "retries"), failed = int_field(L, -1, "failed"),
            coins = int_field(L, -1, "coins"), expected = int_field(L, -1, "expected");
  lua_close(L);
  printf("sessions: %lld of %d done, %lld transfers (%lld retried), %lld failed, coins %lld of %lld\n", done,
         sessions, transfers, retries, failed, coins, expected);
  printf("tick loop: %lld ticks in %.2f s while the sessions ran; longest gap between ticks %.2f ms (poll(2) waited at most %.2f ms)\n",
         ticks, took, max_gap * 1e3, max_wait * 1e3);
  (void)t0;
  if (done != sessions || failed || coins != expected || transfers != (long long)sessions * 5) {
    printf("embed_server --async: FAILED\n");
    return 1;
  }
  printf("embed_server --async: ok\n");
  return 0;
fail:
  fprintf(stderr, "embed_server --async: FAILED: %s\n", err);
  lua_close(L);
  return 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--async")) {
    int sessions = argc > 2 ? atoi(argv[2]) : 100;
    if (sessions < 1 || sessions > 100000) {
      fprintf(stderr, "usage: %s --async [SESSIONS [URL]]\n", argv[0]);
      return 2;
    }
    char run_id[32], file[96], def[128];
    snprintf(run_id, sizeof run_id, "%ld", (long)getpid());
    snprintf(file, sizeof file, "/tmp/sqorm-embed-async-%s.db", run_id);
    snprintf(def, sizeof def, "sqlite:%s", file);
    const char *url = argc > 3 && argv[3][0] ? argv[3] : getenv("DATABASE_URL");
    int own = !url || !*url;
    if (own) url = def;
    int rc = async_main(sessions, url, run_id);
    if (own) {
      remove(file);
      char side[128];
      snprintf(side, sizeof side, "%s-wal", file);
      remove(side);
      snprintf(side, sizeof side, "%s-shm", file);
      remove(side);
    }
    return rc;
  }
  const char *script = argc > 1 ? argv[1] : SQORM_SOURCE_DIR "/examples/embed_worker.lua";
  int nthreads = argc > 2 ? atoi(argv[2]) : 4;
  if (nthreads < 1 || nthreads > 256) {
    fprintf(stderr, "usage: %s [SCRIPT [THREADS (1-256) [URL]]]\n", argv[0]);
    return 2;
  }
  char run_id[32], sqlite_file[96], default_url[128];
  snprintf(run_id, sizeof run_id, "%ld", (long)getpid());
  snprintf(sqlite_file, sizeof sqlite_file, "/tmp/sqorm-embed-%s.db", run_id);
  snprintf(default_url, sizeof default_url, "sqlite:%s", sqlite_file);
  const char *url = argc > 3 ? argv[3] : getenv("DATABASE_URL");
  int own_file = !url || !*url;
  if (own_file) url = default_url;

  /* The main state: loads sqorm (its global init runs here, before any
   * thread) and opens the shared pool for the whole run. */
  char err[512];
  int failed = 0;
  lua_State *L = new_state(script, err, sizeof err);
  if (!L) {
    fprintf(stderr, "embed_server: FAILED: %s\n", err);
    return 1;
  }
  if (!push_fn(L, "setup", err, sizeof err)) {
    fprintf(stderr, "embed_server: FAILED: %s\n", err);
    lua_close(L);
    return 1;
  }
  lua_pushstring(L, url);
  lua_pushstring(L, run_id);
  if (lua_pcall(L, 2, 1, 1) != LUA_OK) {
    take_error(L, err, sizeof err);
    fprintf(stderr, "embed_server: FAILED: setup: %s\n", err);
    lua_close(L);
    return 1;
  }
  printf("embed_server: %d worker threads, one lua_State each, sharing pool \"main\" (%s)\n", nthreads,
         lua_tostring(L, -1));
  lua_pop(L, 1);
  fflush(stdout);

  worker *ws = calloc((size_t)nthreads, sizeof *ws);
  if (!ws) {
    fprintf(stderr, "embed_server: FAILED: out of memory\n");
    lua_close(L);
    return 1;
  }
  int started = 0;
  for (int i = 0; i < nthreads; i++) {
    ws[i].id = i + 1;
    ws[i].script = script;
    ws[i].url = url;
    ws[i].run_id = run_id;
    if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
      snprintf(ws[i].error, sizeof ws[i].error, "pthread_create failed");
      break;
    }
    started++;
  }
  long long writes = 0;
  for (int i = 0; i < started; i++) pthread_join(ws[i].thread, NULL);
  for (int i = 0; i < nthreads; i++) {
    if (ws[i].ok) {
      printf("worker %d: %lld ticks, %lld reads, %lld writes, %lld trades\n", ws[i].id, ws[i].ticks,
             ws[i].reads, ws[i].writes, ws[i].trades);
      writes += ws[i].writes;
    } else {
      printf("worker %d: FAILED: %s\n", ws[i].id, ws[i].error[0] ? ws[i].error : "not started");
      failed = 1;
    }
  }

  /* Back in the main state: totals and the pool's statistics. */
  err[0] = 0;
  int fin = push_fn(L, "finish", err, sizeof err);
  if (fin && lua_pcall(L, 0, 1, 1) != LUA_OK) {
    take_error(L, err, sizeof err);
    fin = 0;
  } else if (fin && !lua_istable(L, -1)) {
    snprintf(err, sizeof err, "finish() must return a table");
    fin = 0;
  }
  if (!fin) {
    printf("embed_server: FAILED: finish: %s\n", err);
    failed = 1;
  } else {
    lua_getfield(L, -1, "pool");
    int st = lua_gettop(L);
    long long size = int_field(L, st, "size"), in_use = int_field(L, st, "in_use"), max = int_field(L, st, "max");
    printf("pool \"main\": size %lld, idle %lld, in_use %lld, waiting %lld, created %lld, destroyed %lld, "
           "timeouts %lld, max %lld\n",
           size, int_field(L, st, "idle"), in_use, int_field(L, st, "waiting"), int_field(L, st, "created"),
           int_field(L, st, "destroyed"), int_field(L, st, "timeouts"), max);
    lua_pop(L, 1);
    long long total = int_field(L, -1, "total"), initial = int_field(L, -1, "initial");
    int coins_ok = total == initial + writes;
    printf("coins: %lld = %lld at start + %lld earned%s\n", total, initial, writes,
           coins_ok ? "" : " - MISMATCH");
    if (!coins_ok) failed = 1;
    if (in_use != 0 || size > max || size < 1) {
      printf("embed_server: FAILED: pool not healthy at the end\n");
      failed = 1;
    }
  }
  lua_close(L); /* the last handle: the pool closes its connections */
  free(ws);
  if (own_file) {
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
      char f[128];
      snprintf(f, sizeof f, "%s%s", sqlite_file, suffix[i]);
      unlink(f);
    }
  }
  printf("embed_server: %s\n", failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
}
