/*
 * test_pool_live.c - the pool under real threads against real servers
 * (MySQL/MariaDB and PostgreSQL through their drivers; no Lua).
 *
 * For each configured server:
 *
 *   1. Bounded. A pool with max 4 is hammered by 8 threads x 200 rounds
 *      of sq_pool_exec (a SELECT with binds and an UPDATE of a counter
 *      row; every 25th round a transaction that is rolled back), while a
 *      monitor thread polls the server's own list of sessions for the
 *      test user through a connection it opened with the driver directly.
 *      The list never shows more than max sessions besides the monitor's,
 *      the counter ends at exactly 1600, and the stats add up (in_use 0,
 *      created <= max + destroyed).
 *   2. Self-healing. With pre_ping on, the monitor kills every session
 *      the workers have seen (KILL / pg_terminate_backend), twice, in the
 *      middle of a run. Statements fail only with kind connection, the
 *      counter matches the updates that reported success (plus at most
 *      the ones whose reply was lost), and the pool ends healthy.
 *
 * Run under ThreadSanitizer (cmake -DSQORM_TSAN=ON; the test command runs
 * `ctest -R 'test_pool|embed'` in that tree) it checks the locking of the
 * pool, the named registry and the drivers' use of their client libraries.
 *
 * Settings come from the environment (scripts/test-servers.sh writes them):
 * SQORM_TEST_MYSQL_{HOST,PORT,USER,PASSWORD,DB}, SQORM_TEST_PG_{...}.
 * Exits 77 (skipped) when neither server is configured, or 1 instead when
 * SQORM_TEST_REQUIRE_SERVERS=1 (then both must be).
 */
#include "sqorm.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4
#define THREADS 8
#define ROUNDS 200
#define HEAL_ROUNDS 100

static atomic_int failures;

static void check(int ok, const char *fmt, ...) {
  va_list ap;
  if (!ok) atomic_fetch_add(&failures, 1);
  printf("%s - ", ok ? "ok" : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

#define CHECK(cond, ...) check((cond) != 0, __VA_ARGS__)

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* Per-dialect facts                                                    */
/* ------------------------------------------------------------------ */

typedef struct target {
  const char *name;  /* "mysql" / "postgres" */
  const char *env;   /* "SQORM_TEST_MYSQL" / "SQORM_TEST_PG" */
  int dialect;
  /* SQL with ? placeholders (sq_pool_exec rewrites them; the monitor's
   * own connection is used through sq_stmt_rewrite too). */
  const char *sessions; /* count of the user's sessions, bind: user */
  const char *session_id;
  const char *kill;     /* format: a session id (%lld), which KILL can't take as a bind */
} target;

static const target targets[] = {
  {"mysql", "SQORM_TEST_MYSQL", SQ_DIALECT_MYSQL,
   "SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = ?", "CONNECTION_ID()", "KILL %lld"},
  {"postgres", "SQORM_TEST_PG", SQ_DIALECT_POSTGRES,
   "SELECT count(*) FROM pg_stat_activity WHERE usename = ?", "pg_backend_pid()",
   "SELECT pg_terminate_backend(%lld)"},
};

static int configured(const target *t) {
  char k[64];
  snprintf(k, sizeof k, "%s_PORT", t->env);
  return env(k) != NULL;
}

/* Fills cfg from the environment; TLS is required when the test CA is
 * known, so the client libraries' OpenSSL use runs under TSan too. */
static int make_config(const target *t, sq_config *cfg, sq_err *err) {
  static const char *const keys[][2] = {
    {"host", "HOST"}, {"port", "PORT"}, {"user", "USER"}, {"password", "PASSWORD"}, {"database", "DB"}};
  char k[64];
  sq_config_init(cfg);
  if (sq_config_set(cfg, "dialect", t->name, err)) return err->kind;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    snprintf(k, sizeof k, "%s_%s", t->env, keys[i][1]);
    const char *v = env(k);
    if (v && sq_config_set(cfg, keys[i][0], v, err)) return err->kind;
  }
  if (env("SQORM_TEST_CA") && (sq_config_set(cfg, "ssl.mode", "verify_ca", err) ||
                               sq_config_set(cfg, "ssl.ca", env("SQORM_TEST_CA"), err)))
    return err->kind;
  if (sq_config_set(cfg, "connect_timeout", "10", err)) return err->kind;
  return sq_config_finish(cfg, err);
}

/* ------------------------------------------------------------------ */
/* Sinks                                                                */
/* ------------------------------------------------------------------ */

/* Keeps the first column of the first row as an integer. */
typedef struct first_int {
  int rows;
  int64_t v;
} first_int;

static int fi_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)ud, (void)ncols, (void)cols, (void)err;
  return 0;
}

static int fi_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  first_int *f = ud;
  (void)err;
  if (f->rows++ == 0 && ncols > 0) {
    if (vals[0].type == SQ_VINT) f->v = vals[0].u.i;
    else if (vals[0].type == SQ_VTEXT) {
      char buf[32];
      size_t n = vals[0].u.s.n < sizeof buf - 1 ? vals[0].u.s.n : sizeof buf - 1;
      memcpy(buf, vals[0].u.s.p, n);
      buf[n] = 0;
      f->v = atoll(buf);
    } else f->v = -1;
  }
  return 0;
}

static sq_row_sink fi_sink(first_int *f) {
  memset(f, 0, sizeof *f);
  sq_row_sink s = {f, fi_columns, fi_row};
  return s;
}

/* Runs sql (with ? placeholders) on a driver connection of our own. */
static int direct_exec(const sq_driver *drv, sq_dconn *h, const char *sql, const sq_value *params, int n,
                       const sq_row_sink *sink, sq_err *err) {
  sq_stmt_text t;
  int style = drv->ph_style | (drv->dialect == SQ_DIALECT_MYSQL ? SQ_PH_BACKSLASH : 0);
  if (sq_stmt_rewrite(sql, strlen(sql), style, &t, err)) return err->kind;
  sq_result res;
  int rc = drv->exec(h, t.sql, t.len, params, n, sink, &res, err);
  sq_stmt_text_free(&t);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Shared state of one run                                              */
/* ------------------------------------------------------------------ */

#define MAX_SEEN 256

typedef struct run {
  const target *t;
  sq_pool *pool;
  char table[64];
  char sql_select[160], sql_update[160], sql_tx_update[160];
  int rounds;
  /* workers */
  atomic_int ok_updates, conn_errors, other_errors, tx_done;
  char first_error[256];
  pthread_mutex_t mu; /* guards first_error and seen */
  int64_t seen[MAX_SEEN];
  int nseen;
  /* monitor */
  atomic_int stop;
  int kill_rounds;        /* 0: only count sessions */
  atomic_int progress;    /* updates done, to time the kills */
  int polls, base, peak, killed;
  char monitor_error[256];
} run;

static void note_error(run *r, const char *what, const sq_err *err) {
  pthread_mutex_lock(&r->mu);
  if (!r->first_error[0])
    snprintf(r->first_error, sizeof r->first_error, "%s: [%s] %.200s", what, sq_kind_name(err->kind), err->msg);
  pthread_mutex_unlock(&r->mu);
}

static void note_session(run *r, int64_t id) {
  pthread_mutex_lock(&r->mu);
  int found = 0;
  for (int i = 0; i < r->nseen && !found; i++) found = r->seen[i] == id;
  if (!found && r->nseen < MAX_SEEN) r->seen[r->nseen++] = id;
  pthread_mutex_unlock(&r->mu);
}

static void count_error(run *r, const char *what, const sq_err *err) {
  if (err->kind == SQ_ECONNECTION) atomic_fetch_add(&r->conn_errors, 1);
  else {
    atomic_fetch_add(&r->other_errors, 1);
    note_error(r, what, err);
  }
}

typedef struct worker_arg {
  run *r;
  int id;
} worker_arg;

/*
 * One worker: per round a SELECT with binds (which also reports the
 * session it ran on, so the monitor can kill exactly the pool's
 * sessions) and an UPDATE of the counter; every 25th round an update
 * inside a transaction that is rolled back, through sq_pool_acquire.
 */
static void *worker(void *ud) {
  worker_arg *a = ud;
  run *r = a->r;
  sq_err err;
  for (int i = 0; i < r->rounds; i++) {
    first_int f;
    sq_row_sink sink = fi_sink(&f);
    sq_value p[3] = {sq_int(1), sq_int(a->id), sq_text("x'y", 3)};
    sq_result res;
    if (sq_pool_exec(r->pool, r->sql_select, strlen(r->sql_select), p, 3, &sink, &res, &err) == SQ_OK) {
      if (f.rows != 1) {
        sq_err_set(&err, SQ_EINTERNAL, "SELECT returned %d rows", f.rows);
        count_error(r, "select", &err);
      } else note_session(r, f.v);
    } else count_error(r, "select", &err);

    sq_value u[1] = {sq_int(1)};
    if (sq_pool_exec(r->pool, r->sql_update, strlen(r->sql_update), u, 1, NULL, &res, &err) == SQ_OK) {
      atomic_fetch_add(&r->ok_updates, 1);
    } else count_error(r, "update", &err);
    atomic_fetch_add(&r->progress, 1);

    if (i % 25 == 0) {
      sq_conn *c;
      if (sq_pool_acquire(r->pool, -1, &c, &err) != SQ_OK) {
        count_error(r, "acquire", &err);
        continue;
      }
      const sq_driver *drv = sq_conn_driver(c);
      int rc = drv->begin(sq_conn_handle(c), SQ_ISO_DEFAULT, &err);
      sq_value v[2] = {sq_int(1000000), sq_int(1)};
      if (rc == SQ_OK) rc = sq_conn_exec(c, r->sql_tx_update, strlen(r->sql_tx_update), v, 2, NULL, &res, &err);
      if (rc == SQ_OK && !(i % 50 == 0)) rc = drv->rollback(sq_conn_handle(c), &err);
      /* Every 50th round the transaction is left open: release rolls it back. */
      if (rc != SQ_OK) {
        if (err.kind == SQ_ECONNECTION) sq_conn_mark_dead(c);
        count_error(r, "transaction", &err);
      } else atomic_fetch_add(&r->tx_done, 1);
      sq_pool_release(r->pool, c);
    }
  }
  return NULL;
}

/* The monitor: its own driver connection, polling the session count
 * (and, when asked, killing the pool's sessions mid-run). */
typedef struct monitor_arg {
  run *r;
  const sq_driver *drv;
  sq_dconn *h;
} monitor_arg;

static int count_sessions(monitor_arg *m, int64_t *n, sq_err *err) {
  char user[128];
  snprintf(user, sizeof user, "%s", env(strcmp(m->r->t->name, "mysql") ? "SQORM_TEST_PG_USER" : "SQORM_TEST_MYSQL_USER"));
  first_int f;
  sq_row_sink sink = fi_sink(&f);
  sq_value p[1] = {sq_text(user, strlen(user))};
  int rc = direct_exec(m->drv, m->h, m->r->t->sessions, p, 1, &sink, err);
  *n = f.v;
  return rc;
}

static void *monitor(void *ud) {
  monitor_arg *m = ud;
  run *r = m->r;
  sq_err err;
  int kills_done = 0;
  while (!atomic_load(&r->stop)) {
    int64_t n;
    if (count_sessions(m, &n, &err) != SQ_OK) {
      snprintf(r->monitor_error, sizeof r->monitor_error, "count: %.200s", err.msg);
      break;
    }
    r->polls++;
    if (n > r->peak) r->peak = (int)n;
    int total = THREADS * r->rounds;
    if (kills_done < r->kill_rounds && atomic_load(&r->progress) >= total * (kills_done + 1) / (r->kill_rounds + 1)) {
      int64_t ids[MAX_SEEN];
      pthread_mutex_lock(&r->mu);
      int k = r->nseen;
      memcpy(ids, r->seen, sizeof ids[0] * (size_t)k);
      pthread_mutex_unlock(&r->mu);
      for (int i = 0; i < k; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, r->t->kill, (long long)ids[i]);
        /* Sessions already gone fail to be killed; that's fine. */
        if (direct_exec(m->drv, m->h, sql, NULL, 0, NULL, &err) == SQ_OK) r->killed++;
      }
      kills_done++;
    }
    sleep_ms(2);
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* One phase: start the workers and the monitor, join, check            */
/* ------------------------------------------------------------------ */

static int64_t read_counter(monitor_arg *m, sq_err *err) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT n FROM %s WHERE id = 1", m->r->table);
  first_int f;
  sq_row_sink sink = fi_sink(&f);
  if (direct_exec(m->drv, m->h, sql, NULL, 0, &sink, err) != SQ_OK) return -1;
  return f.v;
}

static void phase(const target *t, sq_config *cfg, monitor_arg *m, run *r, const char *title, int rounds,
                  int kill_rounds) {
  sq_err err;
  char sql[200];
  printf("# %s: %s\n", t->name, title);
  snprintf(sql, sizeof sql, "UPDATE %s SET n = 0 WHERE id = 1", r->table);
  CHECK(direct_exec(m->drv, m->h, sql, NULL, 0, NULL, &err) == SQ_OK, "%s: reset the counter (%s)", t->name, err.msg);

  r->rounds = rounds;
  r->kill_rounds = kill_rounds;
  atomic_store(&r->ok_updates, 0);
  atomic_store(&r->conn_errors, 0);
  atomic_store(&r->other_errors, 0);
  atomic_store(&r->tx_done, 0);
  atomic_store(&r->progress, 0);
  atomic_store(&r->stop, 0);
  r->first_error[0] = r->monitor_error[0] = 0;
  r->nseen = 0;
  r->polls = r->peak = r->killed = 0;

  /* Sessions an earlier pool closed can stay listed for a moment (the
   * server ends them after the client has gone): wait for them to go,
   * up to 2 s, so they don't loosen the bound. */
  int64_t base = -1;
  for (int i = 0; i < 200; i++) {
    if (count_sessions(m, &base, &err) != SQ_OK || base <= 1) break;
    sleep_ms(10);
  }
  CHECK(base >= 1, "%s: count sessions (%s)", t->name, err.msg);
  r->base = (int)base;
  if (base > 1) printf("# %s: %lld sessions of the test user before the run (the monitor's and others)\n", t->name, (long long)base);

  CHECK(sq_pool_open(cfg, &r->pool, &err) == SQ_OK, "%s: sq_pool_open (%s)", t->name, err.msg);
  if (!r->pool) return;

  pthread_t mt, wt[THREADS];
  worker_arg wa[THREADS];
  pthread_create(&mt, NULL, monitor, m);
  for (int i = 0; i < THREADS; i++) {
    wa[i].r = r;
    wa[i].id = i + 1;
    pthread_create(&wt[i], NULL, worker, &wa[i]);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(wt[i], NULL);
  /* A few more polls after the workers are done. */
  sleep_ms(20);
  atomic_store(&r->stop, 1);
  pthread_join(mt, NULL);

  sq_pool_stats st;
  sq_pool_stats_get(r->pool, &st);
  int total = THREADS * rounds;
  int ok_updates = atomic_load(&r->ok_updates), conn_errors = atomic_load(&r->conn_errors);
  int64_t counter = read_counter(m, &err);
  printf("# %s: %d updates ok, %d connection errors, %d transactions; %d polls, peak %d sessions "
         "(base %d); pool size %d, created %lld, destroyed %lld; %d kill statements\n",
         t->name, ok_updates, conn_errors, atomic_load(&r->tx_done), r->polls, r->peak, r->base, st.size,
         (long long)st.created, (long long)st.destroyed, r->killed);

  CHECK(!r->monitor_error[0], "%s: the monitor ran (%s)", t->name, r->monitor_error);
  CHECK(r->polls > 0, "%s: the monitor polled the session list", t->name);
  /* Only where nothing is killed: a killed session can stay listed for
   * a moment after its client saw it die and opened a replacement. */
  if (kill_rounds == 0)
    CHECK(r->peak - r->base <= MAX_CONNS, "%s: the server never listed more than max (%d) pool sessions "
          "(peak %d, base %d)", t->name, MAX_CONNS, r->peak, r->base);
  CHECK(r->peak >= 2, "%s: the session count saw the pool (peak %d)", t->name, r->peak);
  CHECK(atomic_load(&r->other_errors) == 0, "%s: no errors but kind connection (%d; first: %s)", t->name,
        atomic_load(&r->other_errors), r->first_error);
  if (kill_rounds == 0) {
    CHECK(conn_errors == 0, "%s: no connection errors (%d)", t->name, conn_errors);
    CHECK(counter == total, "%s: counter is %lld, expected %d", t->name, (long long)counter, total);
  } else {
    CHECK(r->killed > 0, "%s: sessions were killed mid-run (%d)", t->name, r->killed);
    CHECK(counter >= ok_updates && counter <= ok_updates + conn_errors,
          "%s: counter %lld matches the %d successful updates (+ up to %d whose reply was lost)", t->name,
          (long long)counter, ok_updates, conn_errors);
    CHECK(st.destroyed > 0, "%s: dead connections were discarded (destroyed %lld)", t->name, (long long)st.destroyed);
  }
  CHECK(st.in_use == 0 && st.waiting == 0, "%s: nothing in use or waiting at the end (in_use %d, waiting %d)",
        t->name, st.in_use, st.waiting);
  CHECK(st.size <= MAX_CONNS && st.size == st.created - st.destroyed,
        "%s: size %d <= max and = created - destroyed", t->name, st.size);
  CHECK(st.created <= MAX_CONNS + st.destroyed, "%s: created %lld <= max + replacements %lld", t->name,
        (long long)st.created, (long long)st.destroyed);
  CHECK(st.timeouts == 0, "%s: no acquire timed out (%lld)", t->name, (long long)st.timeouts);

  /* The pool is healthy afterwards: max connections usable at once. */
  sq_conn *held[MAX_CONNS];
  int got = 0;
  for (int i = 0; i < MAX_CONNS; i++) {
    if (sq_pool_acquire(r->pool, 5, &held[got], &err) != SQ_OK) break;
    sq_result res;
    first_int f;
    sq_row_sink sink = fi_sink(&f);
    if (sq_conn_exec(held[got], "SELECT 1", 8, NULL, 0, &sink, &res, &err) != SQ_OK) {
      sq_pool_release(r->pool, held[got]);
      break;
    }
    got++;
  }
  CHECK(got == MAX_CONNS, "%s: %d connections usable after the run (%s)", t->name, got, got == MAX_CONNS ? "" : err.msg);
  for (int i = 0; i < got; i++) sq_pool_release(r->pool, held[i]);
  sq_pool_close(r->pool);
  r->pool = NULL;
}

static void run_target(const target *t) {
  sq_err err;
  sq_config cfg;
  if (make_config(t, &cfg, &err) != SQ_OK) {
    CHECK(0, "%s: config from the environment (%s)", t->name, err.msg);
    sq_config_free(&cfg);
    return;
  }
  cfg.pool.max = MAX_CONNS;
  cfg.pool.acquire_timeout = 60;

  const sq_driver *drv = sq_driver_for(t->dialect);
  monitor_arg m = {NULL, drv, NULL};
  if (drv->open(&cfg, &m.h, &err) != SQ_OK) {
    CHECK(0, "%s: the monitor connects (%s)", t->name, err.msg);
    sq_config_free(&cfg);
    return;
  }
  run r;
  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.mu, NULL);
  r.t = t;
  m.r = &r;
  snprintf(r.table, sizeof r.table, "pool_live_%ld", (long)getpid());
  snprintf(r.sql_select, sizeof r.sql_select,
           "SELECT %s AS sid, n FROM %s WHERE id = ? AND ? > 0 AND ? = 'x''y'", t->session_id, r.table);
  snprintf(r.sql_update, sizeof r.sql_update, "UPDATE %s SET n = n + 1 WHERE id = ?", r.table);
  snprintf(r.sql_tx_update, sizeof r.sql_tx_update, "UPDATE %s SET n = n + ? WHERE id = ?", r.table);

  char sql[200];
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", r.table);
  direct_exec(drv, m.h, sql, NULL, 0, NULL, &err);
  snprintf(sql, sizeof sql, "CREATE TABLE %s (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)", r.table);
  int rc = direct_exec(drv, m.h, sql, NULL, 0, NULL, &err);
  CHECK(rc == SQ_OK, "%s: create %s (%s)", t->name, r.table, err.msg);
  snprintf(sql, sizeof sql, "INSERT INTO %s (id, n) VALUES (1, 0)", r.table);
  if (rc == SQ_OK) rc = direct_exec(drv, m.h, sql, NULL, 0, NULL, &err);
  if (rc == SQ_OK) {
    phase(t, &cfg, &m, &r, "max 4, 8 threads x 200 rounds", ROUNDS, 0);
    cfg.pool.pre_ping = 1;
    phase(t, &cfg, &m, &r, "pre_ping, every pool session killed twice mid-run", HEAL_ROUNDS, 2);
  }
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", r.table);
  direct_exec(drv, m.h, sql, NULL, 0, NULL, &err);
  drv->close(m.h);
  pthread_mutex_destroy(&r.mu);
  sq_config_free(&cfg);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int require = env("SQORM_TEST_REQUIRE_SERVERS") && !strcmp(env("SQORM_TEST_REQUIRE_SERVERS"), "1");
  int ran = 0;
  sq_err err;
  if (sq_global_init(&err) != SQ_OK) {
    printf("FAIL - sq_global_init: %s\n", err.msg);
    return 1;
  }
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    const target *t = &targets[i];
    if (!sq_driver_for(t->dialect) || !configured(t)) {
      printf("# %s: %s\n", t->name, !sq_driver_for(t->dialect) ? "driver not built" : "server not configured");
      if (require) CHECK(0, "%s: SQORM_TEST_REQUIRE_SERVERS=1 but it can't run", t->name);
      continue;
    }
    ran++;
    run_target(t);
  }
  if (!ran && !require) {
    printf("# skipped: no SQORM_TEST_MYSQL_* / SQORM_TEST_PG_* server configured\n");
    return 77;
  }
  int f = atomic_load(&failures);
  printf("%s\n", f ? "FAILED" : "all checks passed");
  return f ? 1 : 0;
}
