/*
 * test_pool.c - unit test of the pool's logic over a fake in-memory driver.
 *
 * The fake driver is instrumented: it counts opens, closes, pings, execs
 * and resets; it can fail opens on demand, sleep to simulate a slow
 * connect, "kill" every open connection server-side (the driver only
 * notices on the next ping or exec, as with a real server restart), and
 * it keeps a gauge of concurrently open connections - what the server's
 * own connection list would show - with its high-water mark. It also
 * detects two threads using one connection at once.
 *
 * Build (see the report / CMake):
 *   gcc -std=c11 -Wall -Wextra -g -fsanitize=address,undefined -pthread \
 *     -Isrc -Isrc/core tests/test_pool.c src/core/pool.c src/core/conn.c \
 *     src/core/util.c src/core/error.c src/core/config.c src/core/stmt.c
 * and the same with -fsanitize=thread. `test_pool NAME...` runs only the
 * named tests.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "sqorm.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Added by pool.c; until sqorm.h carries them. */
int sq_pool_exec(sq_pool *p, const char *sql, size_t len, const sq_value *params, int nparams,
                 const sq_row_sink *sink, sq_result *res, sq_err *err);
int sq_pool_open_driver(const sq_config *cfg, const sq_driver *drv, sq_pool **out, sq_err *err);
int sq_pool_open_shared_driver(const sq_config *cfg, const sq_driver *drv, sq_pool **out,
                               sq_err *err);

/* pool.c calls sq_driver_for from sq_pool_open; src/core/driver.c defines
 * it. This weak stand-in lets the test link without driver.c (or with it:
 * the real one wins). The test always passes the fake driver explicitly. */
__attribute__((weak)) const sq_driver *sq_driver_for(int dialect) {
  (void)dialect;
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Harness                                                              */
/* ------------------------------------------------------------------ */

static atomic_int failures;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      atomic_fetch_add(&failures, 1);                                      \
    }                                                                      \
  } while (0)

#define CHECK_EQ(a, b)                                                     \
  do {                                                                     \
    long long a_ = (long long)(a), b_ = (long long)(b);                    \
    if (a_ != b_) {                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, #b, \
              a_, b_);                                                     \
      atomic_fetch_add(&failures, 1);                                      \
    }                                                                      \
  } while (0)

static void sleep_s(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ------------------------------------------------------------------ */
/* The fake driver                                                      */
/* ------------------------------------------------------------------ */

typedef struct fcursor fcursor;

typedef struct fconn {
  int id;
  int gen;   /* f_kill_gen when opened; differs once the "server" killed it */
  int dead;  /* the driver noticed */
  int in_tx;
  int nsp;   /* savepoints open */
  fcursor *cur; /* the open cursor, if any (one per connection, as real drivers) */
  atomic_int busy;
} fconn;

/* A cursor yields `left` rows (the connection id), like a long SELECT. */
struct fcursor {
  fconn *c; /* NULL once detached (connection reset or closed) */
  const sq_row_sink *sink;
  int left;
};

static atomic_int f_opens, f_open_attempts, f_closes, f_pings, f_execs, f_resets;
static atomic_int f_gauge, f_gauge_max, f_busy_violations, f_next_id, f_kill_gen;
static atomic_int f_fail_opens; /* the next N opens fail */
static atomic_int f_down;       /* every open fails */
static atomic_int f_open_delay_us;
static atomic_int f_reset_fail;
static atomic_int f_exec_fail_all;
static atomic_int f_cursor_opens, f_cursor_closes, f_commits, f_rollbacks, f_sp_ops;

static void fake_reset_counters(void) {
  atomic_store(&f_opens, 0);
  atomic_store(&f_open_attempts, 0);
  atomic_store(&f_closes, 0);
  atomic_store(&f_pings, 0);
  atomic_store(&f_execs, 0);
  atomic_store(&f_resets, 0);
  atomic_store(&f_gauge_max, atomic_load(&f_gauge));
  atomic_store(&f_busy_violations, 0);
  atomic_store(&f_fail_opens, 0);
  atomic_store(&f_down, 0);
  atomic_store(&f_open_delay_us, 0);
  atomic_store(&f_reset_fail, 0);
  atomic_store(&f_exec_fail_all, 0);
  atomic_store(&f_cursor_opens, 0);
  atomic_store(&f_cursor_closes, 0);
  atomic_store(&f_commits, 0);
  atomic_store(&f_rollbacks, 0);
  atomic_store(&f_sp_ops, 0);
}

/* The server drops every connection open now (restart, idle kill). */
static void fake_kill_all(void) { atomic_fetch_add(&f_kill_gen, 1); }

static int killed(fconn *c) { return c->gen != atomic_load(&f_kill_gen); }

static void gauge_up(void) {
  int v = atomic_fetch_add(&f_gauge, 1) + 1;
  int m = atomic_load(&f_gauge_max);
  while (v > m && !atomic_compare_exchange_weak(&f_gauge_max, &m, v)) {
  }
}

static int f_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  (void)cfg;
  atomic_fetch_add(&f_open_attempts, 1);
  gauge_up(); /* the server sees the connection from the first packet */
  int d = atomic_load(&f_open_delay_us);
  if (d) sleep_s(d * 1e-6);
  int n = atomic_load(&f_fail_opens);
  int fail = atomic_load(&f_down) != 0;
  while (!fail && n > 0)
    if (atomic_compare_exchange_weak(&f_fail_opens, &n, n - 1)) fail = 1;
  if (fail) {
    atomic_fetch_sub(&f_gauge, 1);
    sq_err_set(err, SQ_ECONNECTION, "fake: connection refused");
    sq_err_native(err, "2003", "08001");
    return SQ_ECONNECTION;
  }
  fconn *c = calloc(1, sizeof *c);
  if (!c) {
    atomic_fetch_sub(&f_gauge, 1);
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  c->id = atomic_fetch_add(&f_next_id, 1) + 1;
  c->gen = atomic_load(&f_kill_gen);
  atomic_fetch_add(&f_opens, 1);
  *out = (sq_dconn *)c;
  return SQ_OK;
}

static void f_close(sq_dconn *h) {
  fconn *c = (fconn *)h;
  if (c->cur) c->cur->c = NULL; /* the cursor keeps its memory until cursor_close */
  atomic_fetch_add(&f_closes, 1);
  atomic_fetch_sub(&f_gauge, 1);
  free(h);
}

static int gone_away(fconn *c, sq_err *err) {
  c->dead = 1;
  sq_err_set(err, SQ_ECONNECTION, "fake: server has gone away");
  sq_err_native(err, "2006", "08S01");
  return SQ_ECONNECTION;
}

static int f_ping(sq_dconn *h, sq_err *err) {
  fconn *c = (fconn *)h;
  atomic_fetch_add(&f_pings, 1);
  if (c->dead || killed(c)) return gone_away(c, err);
  return SQ_OK;
}

static int f_is_dead(sq_dconn *h) { return ((fconn *)h)->dead; }

static int starts(const char *sql, const char *kw) { return strncmp(sql, kw, strlen(kw)) == 0; }

/* SELECT-like statements return one row, one column: the connection id.
 * "die_mid" in a statement delivers the row, then loses the link. */
static int f_exec(sq_dconn *h, const char *sql, size_t len, const sq_value *params, int nparams,
                  const sq_row_sink *sink, sq_result *res, sq_err *err) {
  (void)len;
  (void)params;
  (void)nparams;
  fconn *c = (fconn *)h;
  if (atomic_exchange(&c->busy, 1)) atomic_fetch_add(&f_busy_violations, 1);
  atomic_fetch_add(&f_execs, 1);
  int rc = SQ_OK;
  if (c->cur) {
    rc = sq_err_set(err, SQ_EUSAGE, "fake: a cursor is open on this connection");
    goto out;
  }
  if (c->dead || killed(c) || atomic_load(&f_exec_fail_all)) {
    rc = gone_away(c, err);
    goto out;
  }
  if (strstr(sql, "deadlock")) { /* the server picks this transaction as the victim */
    c->in_tx = 0;
    rc = sq_err_set(err, SQ_EDEADLOCK, "fake: deadlock found when trying to get lock");
    sq_err_native(err, "1213", "40001");
    goto out;
  }
  if (strstr(sql, "BEGIN")) c->in_tx = 1;
  if (strstr(sql, "COMMIT") || strstr(sql, "ROLLBACK")) c->in_tx = 0;
  if (res) {
    res->affected_rows = 0;
    res->rows = 0;
  }
  if (starts(sql, "SELECT") || starts(sql, "WITH") || starts(sql, "(") || starts(sql, "/*") ||
      starts(sql, "select") || starts(sql, "EXPLAIN")) {
    if (res) res->has_result_set = 1;
    if (sink) {
      sq_column col = {"id", 2, SQ_VINT};
      sq_value v = sq_int(c->id);
      if (sink->columns && sink->columns(sink->ud, 1, &col, err)) {
        rc = SQ_EUSAGE;
        goto out;
      }
      if (sink->row && sink->row(sink->ud, 1, &v, err)) {
        rc = SQ_EUSAGE;
        goto out;
      }
    }
    if (res) res->rows = 1;
  }
  if (strstr(sql, "die_mid")) rc = gone_away(c, err);
out:
  atomic_store(&c->busy, 0);
  return rc;
}

static int f_in_tx(sq_dconn *h) { return ((fconn *)h)->in_tx; }

static int f_reset(sq_dconn *h, int full, sq_err *err) {
  (void)full;
  fconn *c = (fconn *)h;
  atomic_fetch_add(&f_resets, 1);
  if (c->cur) { /* a forgotten cursor: finished and detached, as real drivers do */
    c->cur->c = NULL;
    c->cur = NULL;
  }
  if (atomic_load(&f_reset_fail) || killed(c)) return gone_away(c, err);
  c->in_tx = 0;
  c->nsp = 0;
  return SQ_OK;
}

static int f_rollback(sq_dconn *h, sq_err *err) {
  atomic_fetch_add(&f_rollbacks, 1);
  return f_reset(h, 0, err);
}

/* Transaction control refuses to run under an open cursor, like MySQL
 * and PostgreSQL do. */
static int f_control(fconn *c, sq_err *err) {
  if (c->cur) return sq_err_set(err, SQ_EUSAGE, "fake: a cursor is open on this connection");
  if (c->dead || killed(c)) return gone_away(c, err);
  return SQ_OK;
}

static int f_begin(sq_dconn *h, int iso, sq_err *err) {
  (void)iso;
  fconn *c = (fconn *)h;
  int rc = f_control(c, err);
  if (rc) return rc;
  c->in_tx = 1;
  return SQ_OK;
}

static int f_commit(sq_dconn *h, sq_err *err) {
  fconn *c = (fconn *)h;
  int rc = f_control(c, err);
  if (rc) return rc;
  atomic_fetch_add(&f_commits, 1);
  c->in_tx = 0;
  c->nsp = 0;
  return SQ_OK;
}

static int f_savepoint(sq_dconn *h, const char *name, sq_err *err) {
  (void)name;
  fconn *c = (fconn *)h;
  int rc = f_control(c, err);
  if (rc) return rc;
  atomic_fetch_add(&f_sp_ops, 1);
  c->nsp++;
  return SQ_OK;
}

static int f_release(sq_dconn *h, const char *name, sq_err *err) {
  (void)name;
  fconn *c = (fconn *)h;
  int rc = f_control(c, err);
  if (rc) return rc;
  atomic_fetch_add(&f_sp_ops, 1);
  if (c->nsp > 0) c->nsp--;
  return SQ_OK;
}

static int f_rollback_to(sq_dconn *h, const char *name, sq_err *err) {
  (void)name;
  fconn *c = (fconn *)h;
  int rc = f_control(c, err);
  if (rc) return rc;
  atomic_fetch_add(&f_sp_ops, 1);
  return SQ_OK;
}

static int f_cursor_open(sq_dconn *h, const char *sql, size_t len, const sq_value *params, int nparams,
                         const sq_row_sink *sink, sq_dcursor **out, sq_err *err) {
  (void)sql;
  (void)len;
  (void)params;
  (void)nparams;
  fconn *c = (fconn *)h;
  int rc = f_control(c, err);
  if (rc) return rc;
  fcursor *cur = calloc(1, sizeof *cur);
  if (!cur) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  cur->c = c;
  cur->sink = sink;
  cur->left = 100;
  c->cur = cur;
  atomic_fetch_add(&f_cursor_opens, 1);
  if (sink && sink->columns) {
    sq_column col = {"id", 2, SQ_VINT};
    sink->columns(sink->ud, 1, &col, err);
  }
  *out = (sq_dcursor *)cur;
  return SQ_OK;
}

static int f_cursor_fetch(sq_dcursor *dc, int *has_row, sq_err *err) {
  fcursor *cur = (fcursor *)dc;
  *has_row = 0;
  if (!cur->c) return sq_err_set(err, SQ_ECLOSED, "fake: the cursor's connection was reset or closed");
  if (cur->left == 0) return SQ_OK;
  cur->left--;
  sq_value v = sq_int(cur->c->id);
  if (cur->sink && cur->sink->row) cur->sink->row(cur->sink->ud, 1, &v, err);
  *has_row = 1;
  return SQ_OK;
}

static void f_cursor_close(sq_dcursor *dc) {
  fcursor *cur = (fcursor *)dc;
  if (!cur) return;
  atomic_fetch_add(&f_cursor_closes, 1);
  if (cur->c) cur->c->cur = NULL;
  free(cur);
}

static const sq_driver fake = {
  .name = "fake",
  .dialect = SQ_DIALECT_MYSQL,
  .ph_style = SQ_PH_QMARK,
  .open = f_open,
  .close = f_close,
  .ping = f_ping,
  .is_dead = f_is_dead,
  .exec = f_exec,
  .cursor_open = f_cursor_open,
  .cursor_fetch = f_cursor_fetch,
  .cursor_close = f_cursor_close,
  .begin = f_begin,
  .commit = f_commit,
  .rollback = f_rollback,
  .savepoint = f_savepoint,
  .release = f_release,
  .rollback_to = f_rollback_to,
  .in_transaction = f_in_tx,
  .reset = f_reset,
};

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static void base_cfg(sq_config *cfg) {
  sq_config_init(cfg);
  cfg->dialect = SQ_DIALECT_MYSQL;
  cfg->host = sq_strdup("127.0.0.1");
}

static sq_pool *open_pool(int max, int min, double acquire, double idle, double life, int ping) {
  sq_config cfg;
  base_cfg(&cfg);
  cfg.pool.max = max;
  cfg.pool.min = min;
  cfg.pool.acquire_timeout = acquire;
  cfg.pool.idle_timeout = idle;
  cfg.pool.max_lifetime = life;
  cfg.pool.pre_ping = ping;
  sq_pool *p = NULL;
  sq_err err;
  int rc = sq_pool_open_driver(&cfg, &fake, &p, &err);
  if (rc != SQ_OK) fprintf(stderr, "open: %s\n", err.msg);
  CHECK_EQ(rc, SQ_OK);
  sq_config_free(&cfg);
  return p;
}

static int conn_id(sq_conn *c) { return ((fconn *)sq_conn_handle(c))->id; }

static sq_conn *must_acquire(sq_pool *p) {
  sq_conn *c = NULL;
  sq_err err;
  int rc = sq_pool_acquire(p, 2.0, &c, &err);
  if (rc != SQ_OK) fprintf(stderr, "acquire: %s\n", err.msg);
  CHECK_EQ(rc, SQ_OK);
  return c;
}

static int run(sq_conn *c, const char *sql) {
  sq_err err;
  sq_result res;
  return sq_conn_exec(c, sql, strlen(sql), NULL, 0, NULL, &res, &err);
}

static sq_pool_stats stats(sq_pool *p) {
  sq_pool_stats st;
  sq_pool_stats_get(p, &st);
  return st;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_defaults(void) {
  sq_config cfg;
  base_cfg(&cfg);
  sq_pool *p;
  sq_err err;
  CHECK_EQ(sq_pool_open_driver(&cfg, &fake, &p, &err), SQ_OK);
  const sq_config *pc = sq_pool_config(p);
  CHECK_EQ(pc->pool.max, 5);
  CHECK_EQ(pc->pool.min, 0);
  CHECK(pc->pool.acquire_timeout == 30);
  CHECK(pc->pool.idle_timeout == 10);
  CHECK(pc->pool.max_lifetime == 0);
  CHECK_EQ(pc->pool.pre_ping, 0);
  CHECK(sq_pool_driver(p) == &fake);
  CHECK(pc != &cfg && pc->host != cfg.host && !strcmp(pc->host, "127.0.0.1")); /* a copy */
  sq_pool_stats st = stats(p);
  CHECK_EQ(st.max, 5);
  CHECK_EQ(st.size, 0); /* nothing connects on open */
  CHECK_EQ(atomic_load(&f_open_attempts), 0);
  sq_pool_close(p);

  cfg.pool.min = 6;
  CHECK_EQ(sq_pool_open_driver(&cfg, &fake, &p, &err), SQ_EUSAGE);
  CHECK(strstr(err.msg, "pool.min") != NULL);
  cfg.pool.min = -1;
  cfg.pool.max = 0;
  CHECK_EQ(sq_pool_open_driver(&cfg, &fake, &p, &err), SQ_EUSAGE);
  sq_config_free(&cfg);

  /* Each connection to :memory: would be its own database. */
  sq_config_init(&cfg);
  cfg.dialect = SQ_DIALECT_SQLITE;
  cfg.storage = sq_strdup(":memory:");
  cfg.pool.max = 10;
  CHECK_EQ(sq_pool_open_driver(&cfg, &fake, &p, &err), SQ_OK);
  CHECK_EQ(stats(p).max, 1);
  CHECK(sq_pool_config(p)->pool.idle_timeout == 0);
  sq_pool_close(p);
  free(cfg.storage);
  cfg.storage = sq_strdup("game.db");
  CHECK_EQ(sq_pool_open_driver(&cfg, &fake, &p, &err), SQ_OK);
  CHECK_EQ(stats(p).max, 10);
  sq_pool_close(p);
  sq_config_free(&cfg);

  /* sq_pool_open without a built driver for the dialect. */
  base_cfg(&cfg);
  if (!sq_driver_for(cfg.dialect)) {
    CHECK_EQ(sq_pool_open(&cfg, &p, &err), SQ_EUSAGE);
    CHECK(strstr(err.msg, "no driver") != NULL);
  }
  sq_config_free(&cfg);
  CHECK_EQ(sq_global_init(&err), SQ_OK);
  CHECK_EQ(sq_global_init(&err), SQ_OK);
}

static void test_exhaustion(void) {
  sq_pool *p = open_pool(5, 0, 0.5, 10, 0, 0);
  sq_conn *held[5];
  for (int i = 0; i < 5; i++) held[i] = must_acquire(p);
  sq_conn *c = (sq_conn *)1;
  sq_err err;
  double t0 = sq_now();
  int rc = sq_pool_acquire(p, -1, &c, &err); /* the pool's acquire_timeout: 0.5 s */
  double dt = sq_now() - t0;
  CHECK_EQ(rc, SQ_EPOOL_TIMEOUT);
  CHECK(c == NULL);
  CHECK(dt >= 0.45 && dt <= 0.55);
  if (!(dt >= 0.45 && dt <= 0.55)) fprintf(stderr, "  timed out after %.3f s\n", dt);
  CHECK(strstr(err.msg, "within 0.50 s") != NULL);
  CHECK(strstr(err.msg, "size 5, in use 5, waiting 1, max 5") != NULL);
  CHECK(!strcmp(sq_kind_name(err.kind), "pool_timeout"));
  CHECK_EQ(stats(p).timeouts, 1);

  /* An explicit timeout overrides the pool's; 0 means don't wait. */
  t0 = sq_now();
  CHECK_EQ(sq_pool_acquire(p, 0.1, &c, &err), SQ_EPOOL_TIMEOUT);
  dt = sq_now() - t0;
  CHECK(dt >= 0.05 && dt <= 0.15);
  t0 = sq_now();
  CHECK_EQ(sq_pool_acquire(p, 0, &c, &err), SQ_EPOOL_TIMEOUT);
  CHECK(sq_now() - t0 < 0.05);
  CHECK_EQ(stats(p).timeouts, 3);
  sq_pool_stats st = stats(p);
  CHECK_EQ(st.size, 5);
  CHECK_EQ(st.in_use, 5);
  CHECK_EQ(st.waiting, 0);
  for (int i = 0; i < 5; i++) sq_pool_release(p, held[i]);
  st = stats(p);
  CHECK_EQ(st.idle, 5);
  CHECK_EQ(st.in_use, 0);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* --- waiters are served in arrival order -------------------------- */

typedef struct fifo_ctx {
  sq_pool *p;
  int idx;
  int *order;
  atomic_int *served;
} fifo_ctx;

static void *fifo_waiter(void *arg) {
  fifo_ctx *x = arg;
  sq_conn *c;
  sq_err err;
  if (sq_pool_acquire(x->p, 5.0, &c, &err) != SQ_OK) {
    fprintf(stderr, "fifo waiter %d: %s\n", x->idx, err.msg);
    atomic_fetch_add(&failures, 1);
    return NULL;
  }
  x->order[atomic_fetch_add(x->served, 1)] = x->idx;
  sleep_s(0.01); /* hold it a little: the next in line must wait for us */
  sq_pool_release(x->p, c);
  return NULL;
}

static void wait_waiting(sq_pool *p, int n) {
  for (int i = 0; i < 2000 && stats(p).waiting < n; i++) sleep_s(0.001);
  CHECK_EQ(stats(p).waiting, n);
}

static void test_fifo(void) {
  enum { N = 6 };
  sq_pool *p = open_pool(1, 0, 5, 10, 0, 0);
  sq_conn *c = must_acquire(p);
  int order[N];
  atomic_int served = 0;
  pthread_t th[N];
  fifo_ctx ctx[N];
  for (int i = 0; i < N; i++) {
    ctx[i] = (fifo_ctx){p, i, order, &served};
    pthread_create(&th[i], NULL, fifo_waiter, &ctx[i]);
    wait_waiting(p, i + 1); /* queued before the next one starts */
    sleep_s(0.005);
  }
  sq_pool_release(p, c);
  /* A latecomer must queue behind them, not barge in on a hand-off. */
  sq_conn *late = NULL;
  sq_err err;
  CHECK_EQ(sq_pool_acquire(p, 5.0, &late, &err), SQ_OK);
  CHECK_EQ(atomic_load(&served), N);
  if (late) sq_pool_release(p, late);
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < N; i++) CHECK_EQ(order[i], i);
  CHECK_EQ(atomic_load(&f_opens), 1); /* one connection passed hand to hand */
  sq_pool_close(p);
}

/* --- max is never exceeded under 8 threads ------------------------ */

typedef struct hammer_ctx {
  sq_pool *p;
  unsigned seed;
  int errors;
  atomic_int *done;
} hammer_ctx;

static unsigned lcg(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

static int count_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  (void)ncols;
  (void)vals;
  (void)err;
  (*(int *)ud)++;
  return 0;
}

static void *hammer(void *arg) {
  hammer_ctx *x = arg;
  for (int i = 0; i < 200; i++) {
    unsigned r = lcg(&x->seed);
    sq_err err;
    sq_result res;
    int rows = 0;
    sq_row_sink sink = {&rows, NULL, count_row};
    if (r % 2) {
      sq_conn *c;
      if (sq_pool_acquire(x->p, 5.0, &c, &err) != SQ_OK) {
        x->errors++;
        continue;
      }
      const char *sql = r % 23 == 0 ? "SELECT die_mid" : r % 7 == 0 ? "BEGIN" : "SELECT ?";
      sq_value v = sq_int(i);
      int np = strchr(sql, '?') ? 1 : 0;
      int rc = sq_conn_exec(c, sql, strlen(sql), &v, np, &sink, &res, &err);
      if (rc != SQ_OK && rc != SQ_ECONNECTION) x->errors++;
      if (r % 5 == 0) sleep_s(0.0002); /* a slow query: the others must queue */
      sq_pool_release(x->p, c);
    } else {
      const char *sql = "SELECT 1";
      int rc = sq_pool_exec(x->p, sql, strlen(sql), NULL, 0, &sink, &res, &err);
      if (rc != SQ_OK && rc != SQ_ECONNECTION) x->errors++;
    }
    if (r % 97 == 0) fake_kill_all();
    if (r % 31 == 0) sq_pool_evict(x->p);
  }
  atomic_fetch_add(x->done, 1);
  return NULL;
}

static void test_threads(void) {
  enum { T = 8 };
  for (int round = 0; round < 2; round++) {
    fake_reset_counters();
    atomic_store(&f_open_delay_us, 200); /* slow connects widen every race window */
    /* Round 1 adds pre_ping, short lifetimes and idle eviction. */
    sq_pool *p = round == 0 ? open_pool(4, 0, 10, 10, 0, 0) : open_pool(4, 1, 10, 0.005, 0.02, 1);
    pthread_t th[T];
    hammer_ctx ctx[T];
    atomic_int done = 0;
    /* The test must exercise waiting, whatever the machine's load: every
     * connection is held while the threads start, so their first
     * acquires queue, and only then handed back. The pool counts the
     * acquires that had to wait (st.waited), so nothing here depends on
     * sampling the queue at the right moment. */
    sq_conn *held[4];
    for (int i = 0; i < 4; i++) held[i] = must_acquire(p);
    for (int i = 0; i < T; i++) {
      ctx[i] = (hammer_ctx){p, 12345u + (unsigned)i * 7919u + (unsigned)round, 0, &done};
      pthread_create(&th[i], NULL, hammer, &ctx[i]);
    }
    for (int i = 0; i < 10000 && stats(p).waiting == 0; i++) sleep_s(0.001);
    int peak_waiting = stats(p).waiting;
    for (int i = 0; i < 4; i++) sq_pool_release(p, held[i]);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    CHECK(stats(p).waited > 0);
    for (int i = 0; i < T; i++) CHECK_EQ(ctx[i].errors, 0);
    sq_pool_stats st = stats(p);
    if (getenv("VERBOSE"))
      printf("  round %d: created %lld destroyed %lld pings %d execs %d resets %d max open %d, "
             "peak waiting %d\n", round, (long long)st.created, (long long)st.destroyed,
             atomic_load(&f_pings), atomic_load(&f_execs), atomic_load(&f_resets),
             atomic_load(&f_gauge_max), peak_waiting);
    CHECK(atomic_load(&f_gauge_max) <= 4);
    if (atomic_load(&f_gauge_max) > 4) fprintf(stderr, "  %d connections open at once\n", atomic_load(&f_gauge_max));
    CHECK_EQ(atomic_load(&f_busy_violations), 0);
    CHECK(st.size <= 4);
    CHECK_EQ(st.in_use, 0);
    CHECK_EQ(st.waiting, 0);
    CHECK_EQ(st.timeouts, 0);
    CHECK_EQ(st.created, atomic_load(&f_opens));
    CHECK_EQ(st.created - st.destroyed, st.size);
    CHECK_EQ(atomic_load(&f_gauge), st.size);
    sq_pool_close(p);
    CHECK_EQ(atomic_load(&f_gauge), 0);
  }
  fake_reset_counters();
}

/* --- idle eviction, lifetime, health ------------------------------ */

static void test_idle_eviction(void) {
  sq_pool *p = open_pool(5, 2, 5, 0.1, 0, 0);
  sq_conn *c[5];
  for (int i = 0; i < 5; i++) c[i] = must_acquire(p);
  int id3 = conn_id(c[3]), id4 = conn_id(c[4]);
  for (int i = 0; i < 5; i++) sq_pool_release(p, c[i]);
  CHECK_EQ(stats(p).idle, 5);
  sq_pool_evict(p); /* nothing is idle long enough yet */
  CHECK_EQ(stats(p).idle, 5);
  sleep_s(0.15);
  sq_pool_evict(p);
  sq_pool_stats st = stats(p);
  CHECK_EQ(st.size, 2); /* down to min, not below */
  CHECK_EQ(st.idle, 2);
  CHECK_EQ(st.destroyed, 3);
  CHECK_EQ(atomic_load(&f_closes), 3);
  CHECK_EQ(atomic_load(&f_gauge), 2);
  /* The two kept are the most recently used (LIFO). */
  sq_conn *a = must_acquire(p), *b = must_acquire(p);
  CHECK_EQ(conn_id(a), id4);
  CHECK_EQ(conn_id(b), id3);
  sq_pool_release(p, b);
  sq_pool_release(p, a);
  sq_pool_close(p);

  /* Opportunistic: no sq_pool_evict call, a later release sweeps. */
  p = open_pool(3, 0, 5, 0.05, 0, 0);
  for (int i = 0; i < 3; i++) c[i] = must_acquire(p);
  for (int i = 0; i < 3; i++) sq_pool_release(p, c[i]);
  sleep_s(0.1);
  a = must_acquire(p); /* sweeps the three, then opens a new one */
  sq_pool_release(p, a);
  st = stats(p);
  CHECK_EQ(st.size, 1);
  CHECK_EQ(st.destroyed, 3);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

static void test_max_lifetime(void) {
  fake_reset_counters();
  sq_pool *p = open_pool(2, 0, 5, 0, 0.1, 0);
  sq_conn *c = must_acquire(p);
  int id = conn_id(c);
  sq_pool_release(p, c);
  c = must_acquire(p);
  CHECK_EQ(conn_id(c), id); /* young: reused */
  sq_pool_release(p, c);
  sleep_s(0.12);
  c = must_acquire(p); /* too old: closed, a new one opened in its slot */
  CHECK(conn_id(c) != id);
  CHECK_EQ(atomic_load(&f_closes), 1);
  CHECK_EQ(stats(p).size, 1);
  sleep_s(0.12);
  sq_pool_release(p, c); /* aged while lent: closed on the way back */
  sq_pool_stats st = stats(p);
  CHECK_EQ(st.size, 0);
  CHECK_EQ(st.destroyed, 2);
  CHECK_EQ(atomic_load(&f_gauge), 0);
  sq_pool_close(p);
}

static void test_pre_ping(void) {
  fake_reset_counters();
  sq_pool *p = open_pool(3, 0, 5, 10, 0, 1);
  sq_conn *c[3];
  for (int i = 0; i < 3; i++) c[i] = must_acquire(p);
  CHECK_EQ(atomic_load(&f_pings), 0); /* new connections aren't pinged */
  for (int i = 0; i < 3; i++) sq_pool_release(p, c[i]);
  sq_conn *a = must_acquire(p);
  CHECK_EQ(atomic_load(&f_pings), 1);
  CHECK_EQ(run(a, "SELECT 1"), SQ_OK);
  sq_pool_release(p, a);

  fake_kill_all(); /* the server restarted: every pooled connection is dead */
  a = must_acquire(p);
  CHECK_EQ(run(a, "SELECT 1"), SQ_OK); /* pre_ping replaced it */
  CHECK_EQ(atomic_load(&f_opens), 4);
  CHECK_EQ(stats(p).destroyed, 1);
  sq_pool_release(p, a);

  /* Dead idle connection and the server still down: the error surfaces,
   * and the slot is given back. */
  fake_kill_all();
  atomic_store(&f_down, 1);
  sq_err err;
  sq_conn *x = NULL;
  CHECK_EQ(sq_pool_acquire(p, 1, &x, &err), SQ_ECONNECTION);
  CHECK(strstr(err.msg, "refused") != NULL);
  sq_pool_stats st = stats(p);
  CHECK_EQ(st.size, 2);
  CHECK_EQ(st.in_use, 0);
  atomic_store(&f_down, 0);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);

  /* Without pre_ping the dead connection is handed out; the failure marks
   * it dead and release discards it. */
  fake_reset_counters();
  p = open_pool(3, 0, 5, 10, 0, 0);
  a = must_acquire(p);
  sq_pool_release(p, a);
  fake_kill_all();
  a = must_acquire(p);
  CHECK_EQ(run(a, "SELECT 1"), SQ_ECONNECTION);
  CHECK(sq_conn_is_dead(a));
  CHECK_EQ(run(a, "SELECT 1"), SQ_ECONNECTION); /* refused without reaching the driver */
  CHECK_EQ(atomic_load(&f_execs), 1);
  sq_pool_release(p, a);
  st = stats(p);
  CHECK_EQ(st.size, 0);
  CHECK_EQ(st.destroyed, 1);
  sq_pool_close(p);
}

static void test_release_paths(void) {
  fake_reset_counters();
  sq_pool *p = open_pool(2, 0, 5, 10, 0, 0);
  /* Dead at release: destroyed. */
  sq_conn *c = must_acquire(p);
  ((fconn *)sq_conn_handle(c))->dead = 1;
  sq_pool_release(p, c);
  CHECK_EQ(atomic_load(&f_closes), 1);
  CHECK_EQ(stats(p).size, 0);
  CHECK_EQ(stats(p).destroyed, 1);

  /* Open transaction at release: reset, kept. */
  c = must_acquire(p);
  int id = conn_id(c);
  CHECK_EQ(run(c, "BEGIN"), SQ_OK);
  sq_pool_release(p, c);
  CHECK_EQ(atomic_load(&f_resets), 1);
  CHECK_EQ(stats(p).idle, 1);
  c = must_acquire(p);
  CHECK_EQ(conn_id(c), id);
  CHECK_EQ(((fconn *)sq_conn_handle(c))->in_tx, 0);
  /* No transaction: no reset round trip. */
  sq_pool_release(p, c);
  CHECK_EQ(atomic_load(&f_resets), 1);

  /* Reset fails: discarded. */
  c = must_acquire(p);
  CHECK_EQ(run(c, "BEGIN"), SQ_OK);
  atomic_store(&f_reset_fail, 1);
  sq_pool_release(p, c);
  atomic_store(&f_reset_fail, 0);
  CHECK_EQ(stats(p).size, 0);
  CHECK_EQ(atomic_load(&f_gauge), 0);

  /* Placeholder count is checked before the driver sees anything. */
  c = must_acquire(p);
  sq_err err;
  sq_result res;
  int e0 = atomic_load(&f_execs);
  CHECK_EQ(sq_conn_exec(c, "SELECT ?, ?", 11, NULL, 0, NULL, &res, &err), SQ_EUSAGE);
  CHECK(strstr(err.msg, "2 placeholders") != NULL);
  CHECK_EQ(atomic_load(&f_execs), e0);
  CHECK(sq_conn_driver(c) == &fake);
  sq_pool_release(p, c);

  /* The last reference goes while a connection is lent: it is closed on
   * its way back and the pool freed then (ASan checks both). */
  c = must_acquire(p);
  sq_conn *d = must_acquire(p);
  sq_pool_release(p, d);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 1); /* the idle one closed at once */
  sq_pool_release(p, c);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* A failed open gives its slot to the next waiter instead of leaving it
 * stuck; and a slow connect doesn't block others (no I/O under the lock). */
typedef struct open_ctx {
  sq_pool *p;
  int rc;
  double took;
} open_ctx;

static void *slow_acquire(void *arg) {
  open_ctx *x = arg;
  sq_conn *c = NULL;
  sq_err err;
  double t0 = sq_now();
  x->rc = sq_pool_acquire(x->p, 5, &c, &err);
  x->took = sq_now() - t0;
  if (c) sq_pool_release(x->p, c);
  return NULL;
}

static void test_open_failures(void) {
  fake_reset_counters();
  sq_pool *p = open_pool(1, 0, 5, 10, 0, 0);
  atomic_store(&f_open_delay_us, 100000);
  atomic_store(&f_fail_opens, 1);
  open_ctx a = {p, -1, 0}, b = {p, -1, 0};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, slow_acquire, &a);
  for (int i = 0; i < 1000 && atomic_load(&f_open_attempts) < 1; i++) sleep_s(0.001);
  pthread_create(&tb, NULL, slow_acquire, &b);
  wait_waiting(p, 1);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK_EQ(a.rc, SQ_ECONNECTION);
  CHECK_EQ(b.rc, SQ_OK);
  CHECK(b.took < 1.0);
  sq_pool_close(p);

  /* While one thread is connecting (slowly), another gets the idle
   * connection and the stats at once. */
  p = open_pool(2, 0, 5, 10, 0, 0);
  atomic_store(&f_open_delay_us, 0);
  sq_conn *c = must_acquire(p);
  sq_pool_release(p, c);
  atomic_store(&f_open_delay_us, 200000);
  sq_conn *held = must_acquire(p); /* the idle one */
  open_ctx s = {p, -1, 0};
  pthread_t ts;
  int attempts = atomic_load(&f_open_attempts);
  pthread_create(&ts, NULL, slow_acquire, &s); /* opens the second, slowly */
  for (int i = 0; i < 1000 && atomic_load(&f_open_attempts) == attempts; i++) sleep_s(0.001);
  double t0 = sq_now();
  sq_pool_stats st = stats(p);
  sq_pool_release(p, held);
  c = must_acquire(p);
  sq_pool_release(p, c);
  CHECK(sq_now() - t0 < 0.05);
  CHECK_EQ(st.size, 2);
  pthread_join(ts, NULL);
  CHECK_EQ(s.rc, SQ_OK);
  atomic_store(&f_open_delay_us, 0);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* sq_pool_fill opens min distinct connections and lends none; min 0 opens
 * nothing; a failed open is returned, what was opened stays idle. */
static void test_fill(void) {
  sq_err err;
  sq_pool *p = open_pool(5, 3, 5, 10, 0, 0);
  CHECK_EQ(sq_pool_fill(p, &err), SQ_OK);
  sq_pool_stats st = stats(p);
  CHECK_EQ(st.size, 3);
  CHECK_EQ(st.idle, 3);
  CHECK_EQ(st.in_use, 0);
  CHECK_EQ(st.created, 3);
  CHECK_EQ(atomic_load(&f_gauge), 3);
  CHECK_EQ(sq_pool_fill(p, &err), SQ_OK); /* already full: nothing more */
  CHECK_EQ(stats(p).created, 3);
  sq_pool_close(p);
  p = open_pool(5, 0, 5, 10, 0, 0);
  CHECK_EQ(sq_pool_fill(p, &err), SQ_OK);
  CHECK_EQ(stats(p).created, 0);
  sq_pool_close(p);
  p = open_pool(5, 3, 5, 10, 0, 0);
  atomic_store(&f_fail_opens, 1);
  CHECK_EQ(sq_pool_fill(p, &err), SQ_ECONNECTION);
  st = stats(p);
  CHECK_EQ(st.in_use, 0);
  CHECK_EQ(st.size, st.idle);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* --- sq_pool_exec's retry ----------------------------------------- */

/* Primes one idle connection, kills it server-side, runs sql through
 * sq_pool_exec; returns how many times the driver ran it. */
static int execs_after_kill(sq_pool *p, const char *sql, int *rc, int *rows) {
  sq_err err;
  sq_result res;
  sq_conn *c = must_acquire(p);
  sq_pool_release(p, c);
  fake_kill_all();
  int e0 = atomic_load(&f_execs);
  *rows = 0;
  sq_row_sink sink = {rows, NULL, count_row};
  *rc = sq_pool_exec(p, sql, strlen(sql), NULL, 0, &sink, &res, &err);
  return atomic_load(&f_execs) - e0;
}

static void test_exec_retry(void) {
  fake_reset_counters();
  sq_pool *p = open_pool(1, 0, 5, 10, 0, 0); /* max 1: the retry needs the dead one's slot */
  int rc, rows;
  CHECK_EQ(execs_after_kill(p, "SELECT 1", &rc, &rows), 2);
  CHECK_EQ(rc, SQ_OK);
  CHECK_EQ(rows, 1);
  CHECK_EQ(stats(p).destroyed, 1);

  static const char *const reads[] = {
    "select 1", "  /* hi */ -- x\n SELECT 1", "(SELECT 1) UNION (SELECT 2)",
    "WITH t AS (SELECT 1) SELECT * FROM t", "SELECT 'delete' FROM t;", "EXPLAIN SELECT 1",
  };
  for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
    int n = execs_after_kill(p, reads[i], &rc, &rows);
    CHECK_EQ(n, 2);
    if (n != 2) fprintf(stderr, "  not retried: %s\n", reads[i]);
  }
  static const char *const writes[] = {
    "UPDATE t SET a = 1", "INSERT INTO t VALUES (1)", "DELETE FROM t",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "EXPLAIN ANALYZE DELETE FROM t",
    "SELECT * INTO t2 FROM t", "SELECT * FROM t FOR UPDATE", "SELECT 'it''s \\' ; DELETE -- '",
    "BEGIN",
  };
  for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
    int n = execs_after_kill(p, writes[i], &rc, &rows);
    CHECK_EQ(n, 1);
    CHECK_EQ(rc, SQ_ECONNECTION);
    if (n != 1) fprintf(stderr, "  retried: %s\n", writes[i]);
  }
  /* Rows already reached the sink: a retry would deliver them twice. */
  sq_err err;
  sq_result res;
  rows = 0;
  sq_row_sink sink = {&rows, NULL, count_row};
  int e0 = atomic_load(&f_execs);
  /* Two statements never reach the driver (one statement per call). */
  CHECK_EQ(sq_pool_exec(p, "SELECT 1; DELETE FROM t", 23, NULL, 0, NULL, &res, &err), SQ_EUSAGE);
  CHECK_EQ(atomic_load(&f_execs) - e0, 0);
  rc = sq_pool_exec(p, "SELECT die_mid", 14, NULL, 0, &sink, &res, &err);
  CHECK_EQ(rc, SQ_ECONNECTION);
  CHECK_EQ(atomic_load(&f_execs) - e0, 1);
  CHECK_EQ(rows, 1);
  /* A freshly opened connection that fails is not retried. */
  CHECK_EQ(stats(p).size, 0);
  atomic_store(&f_exec_fail_all, 1);
  e0 = atomic_load(&f_execs);
  rc = sq_pool_exec(p, "SELECT 1", 8, NULL, 0, NULL, &res, &err);
  CHECK_EQ(rc, SQ_ECONNECTION);
  CHECK(strstr(err.msg, "gone away") != NULL);
  CHECK_EQ(atomic_load(&f_execs) - e0, 1);
  atomic_store(&f_exec_fail_all, 0);
  /* Retry's own connect fails: that error surfaces, nothing leaks. */
  sq_conn *c = must_acquire(p);
  sq_pool_release(p, c);
  fake_kill_all();
  atomic_store(&f_down, 1);
  rc = sq_pool_exec(p, "SELECT 1", 8, NULL, 0, NULL, &res, &err);
  CHECK_EQ(rc, SQ_ECONNECTION);
  CHECK(strstr(err.msg, "refused") != NULL);
  atomic_store(&f_down, 0);
  CHECK_EQ(stats(p).size, 0);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* --- named pools --------------------------------------------------- */

static void named_cfg(sq_config *cfg, const char *name, int max) {
  base_cfg(cfg);
  cfg->name = sq_strdup(name);
  cfg->pool.max = max;
}

typedef struct shared_ctx {
  int errors;
} shared_ctx;

static void *shared_churn(void *arg) {
  shared_ctx *x = arg;
  sq_config cfg;
  named_cfg(&cfg, "churn", 3);
  for (int i = 0; i < 300; i++) {
    sq_pool *p;
    sq_err err;
    if (sq_pool_open_shared_driver(&cfg, &fake, &p, &err) != SQ_OK) {
      x->errors++;
      continue;
    }
    if (i % 3 == 0) {
      sq_conn *c;
      if (sq_pool_acquire(p, 5, &c, &err) == SQ_OK) sq_pool_release(p, c);
      else x->errors++;
    }
    sq_pool_close(p);
  }
  sq_config_free(&cfg);
  return NULL;
}

static void test_shared(void) {
  sq_config a, b, other;
  named_cfg(&a, "main", 5);
  named_cfg(&b, "main", -1); /* the default spelled out differently: same settings */
  named_cfg(&other, "main", 10);
  sq_pool *p1, *p2, *p3;
  sq_err err;
  CHECK_EQ(sq_pool_open_shared_driver(&a, &fake, &p1, &err), SQ_OK);
  CHECK_EQ(sq_pool_open_shared_driver(&b, &fake, &p2, &err), SQ_OK);
  CHECK(p1 == p2);
  CHECK_EQ(sq_pool_open_shared_driver(&other, &fake, &p3, &err), SQ_EUSAGE);
  CHECK(strstr(err.msg, "pool 'main' already exists with different settings") != NULL);
  CHECK(strstr(err.msg, "pool.max 5 vs 10") != NULL);
  CHECK(p3 == NULL);

  /* One pool: a connection taken through one handle is counted in both. */
  sq_conn *c = must_acquire(p1);
  CHECK_EQ(stats(p2).in_use, 1);
  sq_pool_release(p2, c);
  sq_pool_close(p1);
  CHECK_EQ(stats(p2).idle, 1); /* still alive: p2's reference */
  sq_pool_retain(p2);
  sq_pool_close(p2);
  CHECK_EQ(sq_pool_open_shared_driver(&a, &fake, &p3, &err), SQ_OK);
  CHECK(p3 == p2);
  sq_pool_close(p3);
  sq_pool_close(p2); /* the last reference: the name is free again */
  CHECK_EQ(atomic_load(&f_gauge), 0);
  CHECK_EQ(sq_pool_open_shared_driver(&other, &fake, &p3, &err), SQ_OK);
  CHECK_EQ(stats(p3).max, 10);
  CHECK_EQ(stats(p3).created, 0);
  sq_pool_close(p3);

  /* No name: a private pool each time. */
  sq_config anon;
  base_cfg(&anon);
  CHECK_EQ(sq_pool_open_shared_driver(&anon, &fake, &p1, &err), SQ_OK);
  CHECK_EQ(sq_pool_open_shared_driver(&anon, &fake, &p2, &err), SQ_OK);
  CHECK(p1 != p2);
  sq_pool_close(p1);
  sq_pool_close(p2);
  sq_config_free(&anon);
  sq_config_free(&a);
  sq_config_free(&b);
  sq_config_free(&other);

  /* Threads opening and closing one name concurrently. */
  enum { T = 8 };
  pthread_t th[T];
  shared_ctx ctx[T];
  for (int i = 0; i < T; i++) {
    ctx[i].errors = 0;
    pthread_create(&th[i], NULL, shared_churn, &ctx[i]);
  }
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < T; i++) CHECK_EQ(ctx[i].errors, 0);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* --- 10,000 cycles with errors leak nothing ------------------------ */

static void test_no_leaks(void) {
  fake_reset_counters();
  sq_pool *p = open_pool(3, 1, 5, 0.001, 0.003, 0);
  unsigned seed = 42;
  int held_max = 0;
  sq_conn *held[3] = {0};
  for (int i = 0; i < 10000; i++) {
    unsigned r = lcg(&seed);
    sq_err err;
    sq_result res;
    if (r % 10 == 0) atomic_store(&f_fail_opens, 1);
    if (r % 13 == 0) fake_kill_all();
    if (r % 17 == 0) atomic_store(&f_reset_fail, 1);
    if (r % 4 == 0) {
      const char *sql = r % 8 == 0 ? "SELECT 1" : "UPDATE t SET a = ?";
      sq_value v = sq_int(r);
      sq_pool_exec(p, sql, strlen(sql), &v, strchr(sql, '?') ? 1 : 0, NULL, &res, &err);
    } else {
      sq_conn *c = NULL;
      /* Sometimes hold every connection so the next acquire times out. */
      int n = 0;
      if (r % 101 == 0)
        for (; n < 3; n++)
          if (sq_pool_acquire(p, 0.5, &held[n], &err) != SQ_OK) break;
      if (n > held_max) held_max = n;
      int rc = sq_pool_acquire(p, n == 3 ? 0 : 0.5, &c, &err);
      if (n == 3) CHECK_EQ(rc, SQ_EPOOL_TIMEOUT);
      for (int k = 0; k < n; k++) sq_pool_release(p, held[k]);
      if (rc == SQ_OK) {
        run(c, r % 3 == 0 ? "BEGIN" : r % 5 == 0 ? "SELECT die_mid" : "SELECT 1");
        sq_pool_release(p, c);
      }
    }
    atomic_store(&f_fail_opens, 0);
    atomic_store(&f_reset_fail, 0);
  }
  sq_pool_stats st = stats(p);
  if (getenv("VERBOSE"))
    printf("  created %lld destroyed %lld timeouts %lld execs %d resets %d\n", (long long)st.created,
           (long long)st.destroyed, (long long)st.timeouts, atomic_load(&f_execs), atomic_load(&f_resets));
  CHECK_EQ(st.in_use, 0);
  CHECK(st.timeouts > 0);
  CHECK(st.destroyed > 100);
  CHECK(atomic_load(&f_gauge_max) <= 3);
  CHECK_EQ(held_max, 3);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* --- a caller that holds every connection fails at once ----------- */

typedef struct owner_ctx {
  sq_pool *p;
  const sq_holder *h;
  double timeout;
  int rc;
  double took;
  sq_conn *got;
} owner_ctx;

static void *acquire_as_thread(void *arg) {
  owner_ctx *x = arg;
  sq_err err;
  double t0 = sq_now();
  x->rc = sq_pool_acquire_as(x->p, x->timeout, x->h, &x->got, &err);
  x->took = sq_now() - t0;
  return NULL;
}

static void test_self_deadlock(void) {
  int a_id, b_id; /* any distinct addresses name two owners (two Lua states) */
  sq_holder a_tx = {&a_id, "state A", "a transaction opened by coroutine 0x1"};
  sq_holder a_cur = {&a_id, "state A", "an each() cursor of model 'player'"};
  sq_holder a_stmt = {&a_id, "state A", NULL};
  sq_holder b = {&b_id, "state B", NULL};
  sq_pool *p = open_pool(2, 0, 30, 10, 0, 0);
  sq_err err;
  sq_conn *c1, *c2, *c3 = NULL;
  CHECK_EQ(sq_pool_acquire_as(p, -1, &a_tx, &c1, &err), SQ_OK);

  /* A holds one of two: another acquire of A opens the second. */
  CHECK_EQ(sq_pool_acquire_as(p, -1, &a_cur, &c2, &err), SQ_OK);

  /* A holds both: A would wait for itself (30 s): it fails at once. */
  double t0 = sq_now();
  CHECK_EQ(sq_pool_acquire_as(p, -1, &a_stmt, &c3, &err), SQ_EPOOL_TIMEOUT);
  CHECK(sq_now() - t0 < 0.5);
  CHECK(c3 == NULL);
  CHECK(strstr(err.msg, "every connection of this pool (max 2) is held by state A") != NULL);
  CHECK(strstr(err.msg, "a transaction opened by coroutine 0x1") != NULL);
  CHECK(strstr(err.msg, "an each() cursor of model 'player'") != NULL);
  CHECK(strstr(err.msg, "wait for itself") != NULL);
  if (!strstr(err.msg, "held by state A")) fprintf(stderr, "  message: %s\n", err.msg);
  CHECK_EQ(stats(p).timeouts, 1);
  CHECK_EQ(stats(p).waited, 0);

  /* B (another state, sharing the pool) just waits: A may release. */
  owner_ctx x = {p, &b, 5.0, -1, 0, NULL};
  pthread_t th;
  pthread_create(&th, NULL, acquire_as_thread, &x);
  wait_waiting(p, 1);
  /* A, while B waits in front: still only A can free a slot: at once. */
  t0 = sq_now();
  CHECK_EQ(sq_pool_acquire_as(p, -1, &a_stmt, &c3, &err), SQ_EPOOL_TIMEOUT);
  CHECK(sq_now() - t0 < 0.5);
  sleep_s(0.05);
  sq_pool_release(p, c2); /* handed to B */
  pthread_join(th, NULL);
  CHECK_EQ(x.rc, SQ_OK);
  CHECK(x.took >= 0.04);
  CHECK_EQ(stats(p).waited, 1);

  /* A and B hold one each: A waits like anyone (B may release), and
   * times out with the ordinary message. */
  t0 = sq_now();
  CHECK_EQ(sq_pool_acquire_as(p, 0.2, &a_stmt, &c3, &err), SQ_EPOOL_TIMEOUT);
  double dt = sq_now() - t0;
  CHECK(dt >= 0.15);
  CHECK(strstr(err.msg, "no connection available within") != NULL);

  /* Without an owner there is no self-deadlock check: the plain wait. */
  sq_pool_release(p, x.got);
  CHECK_EQ(sq_pool_acquire(p, 0.1, &c2, &err), SQ_OK);
  t0 = sq_now();
  CHECK_EQ(sq_pool_acquire(p, 0.1, &c3, &err), SQ_EPOOL_TIMEOUT);
  CHECK(sq_now() - t0 >= 0.08);
  sq_pool_release(p, c1);
  sq_pool_release(p, c2);

  /* Named pools: two handles, two owners. A holds the only connection
   * through one handle; B's acquire through the other waits, A's fails. */
  sq_config cfg;
  base_cfg(&cfg);
  cfg.name = sq_strdup("self_deadlock");
  cfg.pool.max = 1;
  sq_pool *pa, *pb;
  CHECK_EQ(sq_pool_open_shared_driver(&cfg, &fake, &pa, &err), SQ_OK);
  CHECK_EQ(sq_pool_open_shared_driver(&cfg, &fake, &pb, &err), SQ_OK);
  CHECK(pa == pb);
  sq_config_free(&cfg);
  CHECK_EQ(sq_pool_acquire_as(pa, -1, &a_tx, &c1, &err), SQ_OK);
  CHECK_EQ(sq_pool_acquire_as(pb, -1, &a_stmt, &c3, &err), SQ_EPOOL_TIMEOUT);
  CHECK(strstr(err.msg, "pool 'self_deadlock': every connection") != NULL);
  t0 = sq_now();
  CHECK_EQ(sq_pool_acquire_as(pb, 0.1, &b, &c3, &err), SQ_EPOOL_TIMEOUT);
  CHECK(sq_now() - t0 >= 0.08);
  sq_pool_release(pa, c1);
  sq_pool_close(pa);
  sq_pool_close(pb);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* --- release_later: no I/O now, cleanup when lent next -------------- */

static int no_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  (void)ud;
  (void)ncols;
  (void)vals;
  (void)err;
  return 0;
}

static void test_release_later(void) {
  sq_pool *p = open_pool(1, 0, 5, 10, 0, 0);
  sq_err err;
  sq_conn *c = must_acquire(p);
  int id = conn_id(c);
  CHECK_EQ(run(c, "BEGIN"), SQ_OK);
  sq_row_sink sink = {NULL, NULL, no_row};
  sq_dcursor *dc = NULL;
  CHECK_EQ(fake.cursor_open(sq_conn_handle(c), "SELECT", 6, NULL, 0, &sink, &dc, &err), SQ_OK);
  int execs = atomic_load(&f_execs), resets = atomic_load(&f_resets), closes = atomic_load(&f_cursor_closes);
  sq_pool_release_later(p, c, dc); /* as a finaliser would: nothing may run now */
  CHECK_EQ(atomic_load(&f_execs), execs);
  CHECK_EQ(atomic_load(&f_resets), resets);
  CHECK_EQ(atomic_load(&f_cursor_closes), closes);
  CHECK_EQ(stats(p).idle, 1);
  CHECK_EQ(stats(p).in_use, 0);
  /* The next borrower gets it clean: cursor closed, rolled back. */
  c = must_acquire(p);
  CHECK_EQ(conn_id(c), id);
  CHECK_EQ(atomic_load(&f_cursor_closes), closes + 1);
  CHECK_EQ(atomic_load(&f_resets), resets + 1);
  CHECK_EQ(((fconn *)sq_conn_handle(c))->in_tx, 0);
  CHECK(((fconn *)sq_conn_handle(c))->cur == NULL);
  /* A reset that fails: the connection is replaced. */
  CHECK_EQ(run(c, "BEGIN"), SQ_OK);
  sq_pool_release_later(p, c, NULL);
  atomic_store(&f_reset_fail, 1);
  c = must_acquire(p);
  atomic_store(&f_reset_fail, 0);
  CHECK(conn_id(c) != id);
  sq_pool_release(p, c);
  /* Closing the pool with one waiting for its cleanup: closed, cursor freed. */
  c = must_acquire(p);
  CHECK_EQ(fake.cursor_open(sq_conn_handle(c), "SELECT", 6, NULL, 0, &sink, &dc, &err), SQ_OK);
  sq_pool_release_later(p, c, dc);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* --- transactions: one owner for connection, savepoints, cursors ---- */

static sq_holder tx_holder = {NULL, NULL, "a transaction"};

static int count_rows(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  (void)ncols;
  (void)vals;
  (void)err;
  (*(int *)ud)++;
  return 0;
}

static int tx_run(sq_tx *tx, const char *sql, sq_err *err) {
  sq_conn *c;
  int rc = sq_tx_conn(tx, &c, err);
  if (rc) return rc;
  sq_result res;
  rc = sq_conn_exec(c, sql, strlen(sql), NULL, 0, NULL, &res, err);
  sq_tx_conn_done(tx, rc ? err : NULL);
  return rc;
}

static void test_tx(void) {
  sq_pool *p = open_pool(2, 0, 5, 10, 0, 0);
  sq_err err;
  sq_tx *tx;

  /* Begin, a statement, commit: the connection goes back. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  CHECK_EQ(stats(p).in_use, 1);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_OPEN);
  CHECK(sq_conn_tx(sq_tx_peek_conn(tx)) == tx);
  CHECK_EQ(tx_run(tx, "UPDATE t SET a = 1", &err), SQ_OK);
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_OK);
  CHECK_EQ(atomic_load(&f_commits), 1);
  CHECK_EQ(stats(p).in_use, 0);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_DONE);
  CHECK(sq_tx_peek_conn(tx) == NULL);
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_ECLOSED);
  CHECK_EQ(sq_tx_rollback(tx, &err), SQ_ECLOSED);
  CHECK_EQ(tx_run(tx, "SELECT 1", &err), SQ_ECLOSED);
  sq_tx_free(tx);

  /* A cursor on the transaction is closed when it commits, with why. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  int rows = 0;
  sq_row_sink sink = {&rows, NULL, count_rows};
  sq_cursor *cur;
  CHECK_EQ(sq_cursor_open(NULL, NULL, tx, "SELECT", 6, NULL, 0, &sink, &cur, &err), SQ_OK);
  int has;
  CHECK_EQ(sq_cursor_fetch(cur, &has, &err), SQ_OK);
  CHECK_EQ(has, 1);
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_OK);
  CHECK_EQ(atomic_load(&f_cursor_closes), 1);
  CHECK(!sq_cursor_is_open(cur));
  CHECK_EQ(sq_cursor_fetch(cur, &has, &err), SQ_ECLOSED);
  CHECK(strstr(err.msg, "committed") != NULL);
  CHECK(sq_cursor_closed_reason(cur) != NULL);
  sq_tx_free(tx); /* the cursor still holds the transaction */
  sq_cursor_close(cur);
  sq_cursor_free(cur);
  CHECK_EQ(atomic_load(&f_cursor_closes), 1);

  /* Savepoints: ending one ends those above it and the cursors inside. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  unsigned s1, s2, s3;
  CHECK_EQ(sq_tx_savepoint(tx, &s1, &err), SQ_OK);
  CHECK_EQ(sq_tx_savepoint(tx, &s2, &err), SQ_OK);
  CHECK(s1 != s2);
  CHECK_EQ(sq_tx_next_savepoint(tx), s2 + 1);
  CHECK_EQ(sq_cursor_open(NULL, NULL, tx, "SELECT", 6, NULL, 0, &sink, &cur, &err), SQ_OK);
  CHECK_EQ(sq_tx_savepoint_rollback(tx, s1, &err), SQ_OK);
  CHECK(!sq_tx_savepoint_is_open(tx, s1));
  CHECK(!sq_tx_savepoint_is_open(tx, s2));
  CHECK_EQ(sq_cursor_fetch(cur, &has, &err), SQ_ECLOSED);
  CHECK(strstr(err.msg, "savepoint") != NULL);
  sq_cursor_free(cur);
  CHECK_EQ(sq_tx_savepoint_release(tx, s2, &err), SQ_ECLOSED);
  CHECK_EQ(sq_tx_savepoint_release(tx, 999, &err), SQ_ECLOSED);
  /* A forgotten savepoint runs no SQL and stays open: its parent can't
   * commit (nobody can say whether its work should be kept). */
  CHECK_EQ(sq_tx_savepoint(tx, &s3, &err), SQ_OK);
  int sp_ops = atomic_load(&f_sp_ops);
  sq_tx_savepoint_forget(tx, s3);
  CHECK_EQ(atomic_load(&f_sp_ops), sp_ops);
  CHECK(!sq_tx_savepoint_is_open(tx, s3));
  CHECK_EQ(tx_run(tx, "UPDATE t SET a = 2", &err), SQ_OK);
  CHECK_EQ(atomic_load(&f_sp_ops), sp_ops);
  /* Pinned: a statement is running; the transaction can't end under it. */
  sq_conn *c;
  CHECK_EQ(sq_tx_conn(tx, &c, &err), SQ_OK);
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_EUSAGE);
  CHECK_EQ(sq_tx_rollback(tx, &err), SQ_EUSAGE);
  sq_tx_conn_done(tx, NULL);
  /* The dropped savepoint is still open inside: a commit is refused
   * (its work is never committed by guess); a rollback is allowed. */
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_EUSAGE);
  CHECK(strstr(err.msg, "dropped without commit or rollback") != NULL);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_OPEN);
  CHECK_EQ(sq_tx_rollback(tx, &err), SQ_OK);
  CHECK(!sq_tx_savepoint_is_open(tx, s3));
  CHECK_EQ(sq_tx_savepoint_release(tx, s3, &err), SQ_ECLOSED);
  CHECK(strstr(err.msg, "belongs to") != NULL);
  sq_tx_free(tx);

  /* A deadlock ends the transaction where it happens. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  CHECK_EQ(tx_run(tx, "UPDATE deadlock", &err), SQ_EDEADLOCK);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_FAILED);
  CHECK_EQ(stats(p).in_use, 0);
  CHECK_EQ(tx_run(tx, "UPDATE t SET a = 3", &err), SQ_EDEADLOCK);
  CHECK(strstr(err.msg, "rolled back by the server") != NULL);
  CHECK(!strcmp(err.code, "1213"));
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_EDEADLOCK);
  CHECK_EQ(sq_tx_rollback(tx, &err), SQ_OK);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_DONE);
  sq_tx_free(tx);

  /* A lost connection ends it too. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  fake_kill_all();
  CHECK_EQ(tx_run(tx, "UPDATE t SET a = 4", &err), SQ_ECONNECTION);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_FAILED);
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_ECONNECTION);
  sq_tx_free(tx); /* never rolled back by its owner: freed anyway */
  CHECK_EQ(stats(p).in_use, 0);

  /* A connection lost during COMMIT: the outcome is unknown (the server
   * may have committed), never "nothing was committed" - sqlstate 08007,
   * the driver's code kept; later calls repeat it. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  CHECK_EQ(tx_run(tx, "UPDATE t SET a = 5", &err), SQ_OK);
  fake_kill_all();
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_ECONNECTION);
  CHECK(!strcmp(err.sqlstate, SQ_SQLSTATE_COMMIT_UNKNOWN));
  CHECK(!strcmp(err.code, "2006"));
  CHECK(strstr(err.msg, "whether the transaction was committed is unknown") != NULL);
  CHECK(strstr(err.msg, "server has gone away") != NULL);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_FAILED);
  CHECK_EQ(stats(p).in_use, 0);
  CHECK_EQ(sq_tx_commit(tx, &err), SQ_ECONNECTION);
  CHECK(!strcmp(err.sqlstate, SQ_SQLSTATE_COMMIT_UNKNOWN));
  CHECK(strstr(err.msg, "is unknown") != NULL);
  CHECK(strstr(err.msg, "nothing was committed") == NULL);
  CHECK_EQ(sq_tx_rollback(tx, &err), SQ_OK);
  sq_tx_free(tx);

  /* Abandoned (a finaliser): no I/O; the pool rolls it back when lent. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  int id = conn_id(sq_tx_peek_conn(tx));
  CHECK_EQ(sq_cursor_open(NULL, NULL, tx, "SELECT", 6, NULL, 0, &sink, &cur, &err), SQ_OK);
  int execs = atomic_load(&f_execs), resets = atomic_load(&f_resets);
  int closes = atomic_load(&f_cursor_closes), rollbacks = atomic_load(&f_rollbacks);
  sq_cursor_abandon(cur); /* the cursor's finaliser */
  sq_tx_free(tx);         /* the transaction's: the last reference */
  CHECK_EQ(atomic_load(&f_execs), execs);
  CHECK_EQ(atomic_load(&f_resets), resets);
  CHECK_EQ(atomic_load(&f_cursor_closes), closes);
  CHECK_EQ(atomic_load(&f_rollbacks), rollbacks);
  CHECK_EQ(stats(p).in_use, 0);
  c = must_acquire(p);
  CHECK_EQ(conn_id(c), id);
  CHECK_EQ(atomic_load(&f_cursor_closes), closes + 1);
  CHECK_EQ(((fconn *)sq_conn_handle(c))->in_tx, 0);
  sq_pool_release(p, c);

  /* Abandoned while a statement runs on it: it ends when that one is done. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  CHECK_EQ(sq_tx_conn(tx, &c, &err), SQ_OK);
  sq_tx_abandon(tx);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_OPEN);
  CHECK_EQ(stats(p).in_use, 1);
  sq_tx_conn_done(tx, NULL);
  CHECK_EQ(sq_tx_state(tx), SQ_TX_DONE);
  CHECK_EQ(stats(p).in_use, 0);
  sq_tx_free(tx);

  /* A cursor abandoned inside an open transaction is closed by the
   * transaction's next statement, not by the finaliser. */
  CHECK_EQ(sq_tx_begin(p, &tx_holder, SQ_ISO_DEFAULT, &tx, &err), SQ_OK);
  CHECK_EQ(sq_cursor_open(NULL, NULL, tx, "SELECT", 6, NULL, 0, &sink, &cur, &err), SQ_OK);
  closes = atomic_load(&f_cursor_closes);
  sq_cursor_abandon(cur);
  CHECK_EQ(atomic_load(&f_cursor_closes), closes);
  CHECK_EQ(tx_run(tx, "UPDATE t SET a = 5", &err), SQ_OK); /* would fail under an open cursor */
  CHECK_EQ(atomic_load(&f_cursor_closes), closes + 1);
  CHECK_EQ(sq_tx_rollback(tx, &err), SQ_OK);
  sq_tx_free(tx);

  /* Pooled cursors: hold a connection; abandoned, give it back later. */
  CHECK_EQ(sq_cursor_open(p, NULL, NULL, "SELECT", 6, NULL, 0, &sink, &cur, &err), SQ_OK);
  CHECK_EQ(stats(p).in_use, 1);
  CHECK_EQ(sq_cursor_fetch(cur, &has, &err), SQ_OK);
  closes = atomic_load(&f_cursor_closes);
  sq_cursor_abandon(cur);
  CHECK_EQ(atomic_load(&f_cursor_closes), closes);
  CHECK_EQ(stats(p).in_use, 0);
  c = must_acquire(p);
  CHECK_EQ(atomic_load(&f_cursor_closes), closes + 1);
  sq_pool_release(p, c);
  CHECK_EQ(sq_cursor_open(p, NULL, NULL, "SELECT", 6, NULL, 0, &sink, &cur, &err), SQ_OK);
  sq_cursor_free(cur);
  CHECK_EQ(stats(p).in_use, 0);

  CHECK(!strcmp(sq_tx_begin_sql(SQ_DIALECT_MYSQL, SQ_ISO_DEFAULT), "START TRANSACTION"));
  CHECK(!strcmp(sq_tx_begin_sql(SQ_DIALECT_POSTGRES, SQ_ISO_SERIALIZABLE), "BEGIN ISOLATION LEVEL SERIALIZABLE"));
  CHECK(!strcmp(sq_tx_begin_sql(SQ_DIALECT_SQLITE, SQ_ISO_DEFAULT), "BEGIN"));
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
}

/* ------------------------------------------------------------------ */

static const struct {
  const char *name;
  void (*fn)(void);
} tests[] = {
  {"defaults", test_defaults},
  {"exhaustion", test_exhaustion},
  {"fifo", test_fifo},
  {"threads", test_threads},
  {"idle_eviction", test_idle_eviction},
  {"max_lifetime", test_max_lifetime},
  {"pre_ping", test_pre_ping},
  {"release_paths", test_release_paths},
  {"open_failures", test_open_failures},
  {"fill", test_fill},
  {"exec_retry", test_exec_retry},
  {"shared", test_shared},
  {"no_leaks", test_no_leaks},
  {"self_deadlock", test_self_deadlock},
  {"release_later", test_release_later},
  {"tx", test_tx},
};

int main(int argc, char **argv) {
  int ran = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int want = argc < 2;
    for (int a = 1; a < argc; a++) want |= !strcmp(argv[a], tests[i].name);
    if (!want) continue;
    fake_reset_counters();
    int before = atomic_load(&failures);
    double t0 = sq_now();
    tests[i].fn();
    printf("%-14s %s (%.2f s)\n", tests[i].name, atomic_load(&failures) == before ? "ok" : "FAILED",
           sq_now() - t0);
    ran++;
  }
  if (!ran) {
    fprintf(stderr, "no test named so\n");
    return 2;
  }
  int f = atomic_load(&failures);
  printf("%s: %d check%s failed\n", f ? "FAIL" : "PASS", f, f == 1 ? "" : "s");
  return f ? 1 : 0;
}
