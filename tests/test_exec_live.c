/*
 * test_exec_live.c - deadlines and cancellation against real databases:
 * a statement blocked on a row (or database) lock held by another
 * session, and a long query, are stopped by their deadline on SQLite (a
 * file database: the busy wait), MySQL/MariaDB (KILL QUERY) and
 * PostgreSQL (PQcancel). For each:
 *
 *   - the job completes with kind timeout well before the server would
 *     have given up by itself (SQLite's busy timeout is set to 8 s,
 *     InnoDB waits 50 s, PostgreSQL forever);
 *   - the server really stopped: the session shows idle in
 *     information_schema.PROCESSLIST / pg_stat_activity, the lock holder
 *     proceeds and commits, and the cancelled UPDATE never applies later;
 *   - the connection was clean, so the pool reuses it (same server
 *     session id, no connection created or destroyed);
 *   - the same holds in blocking mode (sq_job_run) and for sq_job_cancel;
 *   - in a pinned transaction a timeout rolls the transaction back and
 *     reports tx_ended; so does a deadlock (servers), rolled back on the
 *     worker before the completion is posted;
 *   - the pool ends with in_use 0.
 *
 * SQLite always runs (a temporary file). The servers come from
 * SQORM_TEST_MYSQL_* / SQORM_TEST_PG_* (scripts/test-servers.sh); a
 * missing one is skipped, or fails with SQORM_TEST_REQUIRE_SERVERS=1.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "sqorm.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *fmt, ...) {
  va_list ap;
  if (!ok) failures++;
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

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* Targets                                                              */
/* ------------------------------------------------------------------ */

typedef struct target {
  const char *name;
  const char *env;        /* NULL: sqlite, always available */
  const char *session_id; /* SELECT of the session's id, or NULL */
  const char *active;     /* count of sessions with id ? running a statement */
  const char *lock_row;   /* run by the lock holder inside its transaction */
  const char *long_query;
} target;

static const target targets[] = {
  {"sqlite", NULL, NULL, NULL, "UPDATE exec_live_t SET v = 100 WHERE id = 1",
   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
   "SELECT count(*) FROM c"},
  {"mysql", "SQORM_TEST_MYSQL", "SELECT CONNECTION_ID()",
   "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND COMMAND = 'Query'",
   "UPDATE exec_live_t SET v = 100 WHERE id = 1", "SELECT SLEEP(20)"},
  {"postgres", "SQORM_TEST_PG", "SELECT pg_backend_pid()",
   "SELECT count(*) FROM pg_stat_activity WHERE pid = ? AND state <> 'idle'",
   "UPDATE exec_live_t SET v = 100 WHERE id = 1", "SELECT pg_sleep(20)"},
};

static const char BLOCKED[] = "UPDATE exec_live_t SET v = v + 1 WHERE id = 1";

static char sqlite_path[64];

static int make_config(const target *t, sq_config *cfg, sq_err *err) {
  static const char *const keys[][2] = {
    {"host", "HOST"}, {"port", "PORT"}, {"user", "USER"}, {"password", "PASSWORD"}, {"database", "DB"}};
  char k[64];
  sq_config_init(cfg);
  if (sq_config_set(cfg, "dialect", t->name, err)) return err->kind;
  if (!t->env) {
    if (sq_config_set(cfg, "storage", sqlite_path, err)) return err->kind;
    /* the busy wait lasts 8 s unless the cancel ends it */
    if (sq_config_set(cfg, "connect_timeout", "8", err)) return err->kind;
  } else {
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      snprintf(k, sizeof k, "%s_%s", t->env, keys[i][1]);
      const char *v = env(k);
      if (v && sq_config_set(cfg, keys[i][0], v, err)) return err->kind;
    }
    if (env("SQORM_TEST_CA") && (sq_config_set(cfg, "ssl.mode", "verify_ca", err) ||
                                 sq_config_set(cfg, "ssl.ca", env("SQORM_TEST_CA"), err)))
      return err->kind;
    if (sq_config_set(cfg, "connect_timeout", "10", err)) return err->kind;
  }
  if (sq_config_set(cfg, "pool.max", "1", err)) return err->kind;
  return sq_config_finish(cfg, err);
}

static int configured(const target *t) {
  char k[64];
  if (!t->env) return 1;
  snprintf(k, sizeof k, "%s_PORT", t->env);
  return env(k) != NULL;
}

/* ------------------------------------------------------------------ */
/* Jobs and helpers                                                     */
/* ------------------------------------------------------------------ */

typedef struct op {
  sq_job job;
  const char *sql;
  const sq_value *params;
  int nparams;
  int64_t first; /* first column of the first row */
  int rows;
} op;

static int op_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)ud, (void)ncols, (void)cols, (void)err;
  return 0;
}

static int op_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  op *o = ud;
  (void)err;
  if (o->rows++ == 0 && ncols > 0) {
    if (vals[0].type == SQ_VINT) o->first = vals[0].u.i;
    else if (vals[0].type == SQ_VTEXT || vals[0].type == SQ_VBLOB) {
      char buf[32];
      size_t n = vals[0].u.s.n < sizeof buf - 1 ? vals[0].u.s.n : sizeof buf - 1;
      memcpy(buf, vals[0].u.s.p, n);
      buf[n] = 0;
      o->first = atoll(buf);
    }
  }
  return 0;
}

static int op_run(sq_job *job, sq_conn *conn, sq_err *err) {
  op *o = (op *)job;
  sq_row_sink sink = {o, op_columns, op_row};
  sq_result res;
  o->rows = 0;
  o->first = -1;
  return sq_conn_exec(conn, o->sql, strlen(o->sql), o->params, o->nparams, &sink, &res, err);
}

static void op_init(op *o, sq_cq *cq, const char *sql, double timeout) {
  memset(o, 0, sizeof *o);
  sq_job_init(&o->job, op_run, NULL);
  o->job.cq = cq;
  o->sql = sql;
  if (timeout > 0) sq_job_set_timeout(&o->job, timeout);
}

/* Submits and waits for the completion (the cq is private to the call). */
static int async_run(sq_pool *p, sq_cq *cq, op *o) {
  sq_err err;
  int rc = sq_job_submit(p, &o->job, &err);
  if (rc != SQ_OK) return rc;
  double end = sq_clock() + 30;
  sq_job *j = NULL;
  while (!(j = sq_cq_pop(cq)) && sq_clock() < end) sq_cq_wait(cq, 1);
  if (j != &o->job) {
    o->job.rc = SQ_EINTERNAL;
    snprintf(o->job.err.msg, sizeof o->job.err.msg, "no completion within 30 s");
  }
  return o->job.rc;
}

/* A one-shot statement through the pool (blocking), first column. */
static int64_t pool_int(sq_pool *p, const char *sql, const sq_value *params, int n, int *rc) {
  op o;
  op_init(&o, NULL, sql, 0);
  o.params = params;
  o.nparams = n;
  *rc = sq_job_run(p, &o.job);
  if (*rc) printf("# %s: %s\n", sql, o.job.err.msg);
  return o.first;
}

/* The lock holder's own connection (outside the pool). */
typedef struct holder {
  const sq_driver *drv;
  sq_dconn *h;
} holder;

static int hold_exec(holder *hd, const char *sql, const sq_value *params, int n, int64_t *first) {
  sq_stmt_text t;
  sq_err err;
  int style = hd->drv->ph_style | (hd->drv->dialect == SQ_DIALECT_MYSQL ? SQ_PH_BACKSLASH : 0);
  if (sq_stmt_rewrite(sql, strlen(sql), style, &t, &err)) return err.kind;
  op o;
  memset(&o, 0, sizeof o);
  o.first = -1;
  sq_row_sink sink = {&o, op_columns, op_row};
  sq_result res;
  int rc = hd->drv->exec(hd->h, t.sql, t.len, params, n, &sink, &res, &err);
  sq_stmt_text_free(&t);
  if (rc) printf("# holder: %s: %s\n", sql, err.msg);
  if (first) *first = o.first;
  return rc;
}

static int hold_lock(holder *hd, const target *t) {
  sq_err err;
  int rc = hd->drv->begin(hd->h, t->env ? SQ_ISO_DEFAULT : SQ_ISO_SERIALIZABLE, &err);
  if (rc) printf("# holder begin: %s\n", err.msg);
  return rc ? rc : hold_exec(hd, t->lock_row, NULL, 0, NULL);
}

/* 0 when the server shows the session idle (or there is no server). */
static int64_t session_active(holder *hd, const target *t, int64_t sid) {
  if (!t->active) return 0;
  sq_value v = sq_int(sid);
  int64_t n = -1;
  hold_exec(hd, t->active, &v, 1, &n);
  return n;
}

/* ------------------------------------------------------------------ */
/* The scenario                                                         */
/* ------------------------------------------------------------------ */

static void run_target(const target *t) {
  sq_config cfg;
  sq_err err;
  sq_pool *p = NULL;
  int rc = make_config(t, &cfg, &err);
  CHECK(rc == SQ_OK, "%s: config (%s)", t->name, rc ? err.msg : "");
  if (rc) return;
  rc = sq_pool_open(&cfg, &p, &err);
  CHECK(rc == SQ_OK, "%s: pool opens (%s)", t->name, rc ? err.msg : "");
  if (rc) {
    sq_config_free(&cfg);
    return;
  }
  sq_cq *cq = NULL;
  sq_cq_new(&cq, &err);
  holder hd = {sq_pool_driver(p), NULL};

  int r1, r2, r3;
  pool_int(p, "DROP TABLE IF EXISTS exec_live_t", NULL, 0, &r1);
  pool_int(p, "CREATE TABLE exec_live_t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)", NULL, 0, &r2);
  pool_int(p, "INSERT INTO exec_live_t (id, v) VALUES (1, 0), (2, 0)", NULL, 0, &r3);
  CHECK(!r1 && !r2 && !r3, "%s: table set up", t->name);
  rc = hd.drv->open(&cfg, &hd.h, &err);
  CHECK(rc == SQ_OK, "%s: lock holder connects (%s)", t->name, rc ? err.msg : "");
  if (rc) goto out;

  int64_t sid = t->session_id ? pool_int(p, t->session_id, NULL, 0, &rc) : 0;
  sq_pool_stats st0;
  sq_pool_stats_get(p, &st0);

  /* 1. async: a statement blocked on the held lock, stopped by its deadline */
  CHECK(hold_lock(&hd, t) == SQ_OK, "%s: holder locks the row", t->name);
  op o;
  op_init(&o, cq, BLOCKED, 0.4);
  double t0 = sq_clock();
  rc = async_run(p, cq, &o);
  double took = sq_clock() - t0;
  CHECK(rc == SQ_ETIMEOUT, "%s: blocked UPDATE times out (kind %s: %s)", t->name, sq_kind_name(rc),
        o.job.err.msg);
  CHECK(took >= 0.35 && took < 3.0, "%s: ... after %.3f s (deadline 0.4 s)", t->name, took);
  CHECK(o.job.canceled_on_server, "%s: ... the statement was cancelled on the server", t->name);
  CHECK(session_active(&hd, t, sid) == 0, "%s: ... the server shows the session idle", t->name);
  t0 = sq_clock();
  sq_err cerr;
  rc = hd.drv->commit(hd.h, &cerr);
  CHECK(rc == SQ_OK && sq_clock() - t0 < 1.0, "%s: the lock holder proceeds and commits", t->name);
  sleep_s(0.2);
  int64_t v = pool_int(p, "SELECT v FROM exec_live_t WHERE id = 1", NULL, 0, &rc);
  CHECK(rc == SQ_OK && v == 100, "%s: the cancelled UPDATE never applied (v = %lld)", t->name, (long long)v);
  if (t->session_id) {
    int64_t sid2 = pool_int(p, t->session_id, NULL, 0, &rc);
    CHECK(sid2 == sid, "%s: the clean connection is reused (session %lld)", t->name, (long long)sid2);
  }

  /* 2. async: a long query, stopped by its deadline */
  op_init(&o, cq, t->long_query, 0.3);
  t0 = sq_clock();
  rc = async_run(p, cq, &o);
  took = sq_clock() - t0;
  CHECK(rc == SQ_ETIMEOUT, "%s: long query times out (kind %s: %s)", t->name, sq_kind_name(rc), o.job.err.msg);
  CHECK(took < 3.0, "%s: ... after %.3f s", t->name, took);
  CHECK(session_active(&hd, t, sid) == 0, "%s: ... the server shows the session idle", t->name);

  /* 3. sq_job_cancel from this thread while it runs on a worker */
  op_init(&o, cq, t->long_query, 0);
  rc = sq_job_submit(p, &o.job, &err);
  sleep_s(0.3);
  CHECK(sq_job_cancel(&o.job) == 1, "%s: cancel takes hold", t->name);
  t0 = sq_clock();
  sq_job *j = NULL;
  while (!(j = sq_cq_pop(cq)) && sq_clock() - t0 < 10) sq_cq_wait(cq, 1);
  CHECK(j == &o.job && o.job.rc == SQ_ECANCELED, "%s: cancelled query completes with canceled (%s)", t->name,
        o.job.err.msg);
  CHECK(sq_clock() - t0 < 3.0, "%s: ... promptly (%.3f s)", t->name, sq_clock() - t0);

  /* 4. blocking mode: the same deadline on the caller's thread */
  CHECK(hold_lock(&hd, t) == SQ_OK, "%s: holder locks the row again", t->name);
  op_init(&o, NULL, BLOCKED, 0.3);
  t0 = sq_clock();
  rc = sq_job_run(p, &o.job);
  took = sq_clock() - t0;
  CHECK(rc == SQ_ETIMEOUT && took < 3.0, "%s: blocking run times out after %.3f s (%s)", t->name, took,
        o.job.err.msg);
  CHECK(session_active(&hd, t, sid) == 0, "%s: ... the server shows the session idle", t->name);
  CHECK(hd.drv->rollback(hd.h, &cerr) == SQ_OK, "%s: holder rolls back", t->name);

  /* 5. a pinned transaction: a timeout rolls it back */
  op begin;
  op_init(&begin, cq, "BEGIN", 0);
  begin.job.flags = SQ_JOB_KEEP_CONN;
  rc = async_run(p, cq, &begin);
  CHECK(rc == SQ_OK && begin.job.conn, "%s: BEGIN keeps its connection", t->name);
  if (rc == SQ_OK && begin.job.conn) {
    sq_pin *pin = NULL;
    sq_pin_new(begin.job.conn, &pin, &err);
    const sq_driver *drv = sq_conn_driver(sq_pin_conn(pin));
    op w;
    op_init(&w, cq, "UPDATE exec_live_t SET v = v + 1000 WHERE id = 1", 0);
    rc = sq_pin_submit(pin, &w.job, &err);
    j = NULL;
    t0 = sq_clock();
    while (!(j = sq_cq_pop(cq)) && sq_clock() - t0 < 10) sq_cq_wait(cq, 1);
    CHECK(j == &w.job && w.job.rc == SQ_OK, "%s: a write inside the pinned transaction (%s)", t->name,
          w.job.err.msg);
    if (t->env) {
      /* servers: the holder locks row 2, and our transaction's next
       * statement waits for it */
      hd.drv->begin(hd.h, SQ_ISO_DEFAULT, &cerr);
      hold_exec(&hd, "UPDATE exec_live_t SET v = 100 WHERE id = 2", NULL, 0, NULL);
      op_init(&w, cq, "UPDATE exec_live_t SET v = 5 WHERE id = 2", 0.3);
    } else {
      /* sqlite: our transaction holds the only write lock; a long query
       * is what runs past the deadline */
      op_init(&w, cq, t->long_query, 0.3);
    }
    t0 = sq_clock();
    rc = sq_pin_submit(pin, &w.job, &err);
    j = NULL;
    while (!(j = sq_cq_pop(cq)) && sq_clock() - t0 < 10) sq_cq_wait(cq, 1);
    took = sq_clock() - t0;
    CHECK(j == &w.job && w.job.rc == SQ_ETIMEOUT && took < 3.0, "%s: pinned statement times out after %.3f s (%s)",
          t->name, took, w.job.err.msg);
    CHECK(w.job.tx_ended && sq_pin_tx_ended(pin), "%s: ... and ends the transaction", t->name);
    CHECK(!drv->in_transaction(sq_conn_handle(sq_pin_conn(pin))), "%s: ... rolled back", t->name);
    if (t->env) hd.drv->rollback(hd.h, &cerr);
    sq_pin_close(pin, 0);
    v = pool_int(p, "SELECT v FROM exec_live_t WHERE id = 1", NULL, 0, &rc);
    CHECK(rc == SQ_OK && v == 100, "%s: the rolled-back write is gone (v = %lld)", t->name, (long long)v);
  }

  /* 6. servers: a pinned transaction's statement is a deadlock victim. The
   * worker rolls the transaction back before the job completes (tx_ended),
   * so the consumer's thread never runs that ROLLBACK. The holder changes
   * two rows, ours one: InnoDB picks the lighter one (ours) as the victim;
   * PostgreSQL the session whose deadlock_timeout ran out first (ours). */
  if (t->env) {
    pool_int(p, "INSERT INTO exec_live_t (id, v) VALUES (3, 0)", NULL, 0, &rc);
    op_init(&begin, cq, "BEGIN", 0);
    begin.job.flags = SQ_JOB_KEEP_CONN;
    rc = async_run(p, cq, &begin);
    CHECK(rc == SQ_OK && begin.job.conn, "%s: BEGIN for the deadlock", t->name);
    if (rc == SQ_OK && begin.job.conn) {
      sq_pin *pin = NULL;
      sq_pin_new(begin.job.conn, &pin, &err);
      const sq_driver *drv = sq_conn_driver(sq_pin_conn(pin));
      op w;
      op_init(&w, cq, "UPDATE exec_live_t SET v = v + 1 WHERE id = 1", 0);
      sq_pin_submit(pin, &w.job, &err);
      j = NULL;
      t0 = sq_clock();
      while (!(j = sq_cq_pop(cq)) && sq_clock() - t0 < 10) sq_cq_wait(cq, 1);
      CHECK(j == &w.job && w.job.rc == SQ_OK, "%s: ours locks row 1 (%s)", t->name, w.job.err.msg);
      hd.drv->begin(hd.h, SQ_ISO_DEFAULT, &cerr);
      int h1 = hold_exec(&hd, "UPDATE exec_live_t SET v = v + 1 WHERE id = 2", NULL, 0, NULL);
      int h2 = hold_exec(&hd, "UPDATE exec_live_t SET v = v + 1 WHERE id = 3", NULL, 0, NULL);
      CHECK(!h1 && !h2, "%s: the holder locks rows 2 and 3", t->name);
      op_init(&w, cq, "UPDATE exec_live_t SET v = v + 1 WHERE id = 2", 0);
      sq_pin_submit(pin, &w.job, &err);
      sleep_s(0.3); /* ours waits for row 2 */
      int h3 = hold_exec(&hd, "UPDATE exec_live_t SET v = v + 1 WHERE id = 1", NULL, 0, NULL);
      j = NULL;
      t0 = sq_clock();
      while (!(j = sq_cq_pop(cq)) && sq_clock() - t0 < 20) sq_cq_wait(cq, 1);
      CHECK(j == &w.job && w.job.rc == SQ_EDEADLOCK, "%s: ours is the deadlock victim (kind %s: %s)", t->name,
            sq_kind_name(w.job.rc), w.job.err.msg);
      CHECK(h3 == SQ_OK, "%s: ... the holder goes on", t->name);
      CHECK(w.job.tx_ended && sq_pin_tx_ended(pin), "%s: ... the job reports the transaction ended", t->name);
      CHECK(!drv->in_transaction(sq_conn_handle(sq_pin_conn(pin))),
            "%s: ... rolled back on the worker, before the completion was popped", t->name);
      hd.drv->rollback(hd.h, &cerr);
      sq_pin_close(pin, 0);
    }
  }

  /* the same clean connection served everything */
  sq_pool_stats st;
  sq_pool_stats_get(p, &st);
  CHECK(st.created == st0.created && st.destroyed == st0.destroyed,
        "%s: no connection was replaced (created %lld, destroyed %lld)", t->name, (long long)st.created,
        (long long)st.destroyed);
  if (t->session_id) {
    int64_t sid2 = pool_int(p, t->session_id, NULL, 0, &rc);
    CHECK(sid2 == sid, "%s: ... still session %lld", t->name, (long long)sid);
  }
  pool_int(p, "DROP TABLE exec_live_t", NULL, 0, &rc);
  sq_pool_stats_get(p, &st);
  CHECK(st.in_use == 0, "%s: in_use 0 at the end", t->name);
out:
  if (hd.h) hd.drv->close(hd.h);
  sq_cq_close(cq);
  sq_pool_close(p);
  sq_config_free(&cfg);
}

int main(void) {
  sq_err err;
  if (sq_global_init(&err) != SQ_OK) {
    printf("global init: %s\n", err.msg);
    return 1;
  }
  int require = env("SQORM_TEST_REQUIRE_SERVERS") && !strcmp(env("SQORM_TEST_REQUIRE_SERVERS"), "1");
  snprintf(sqlite_path, sizeof sqlite_path, "/tmp/sqorm_exec_live_%ld.db", (long)getpid());
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    const target *t = &targets[i];
    if (!sq_driver_for(t->name[0] == 's' ? SQ_DIALECT_SQLITE : t->name[0] == 'm' ? SQ_DIALECT_MYSQL
                                                                                 : SQ_DIALECT_POSTGRES)) {
      printf("# %s: driver not built\n", t->name);
      continue;
    }
    if (!configured(t)) {
      printf("# %s: not configured, skipped\n", t->name);
      if (require) CHECK(0, "%s: SQORM_TEST_REQUIRE_SERVERS=1 but it is not configured", t->name);
      continue;
    }
    run_target(t);
  }
  char buf[96];
  unlink(sqlite_path);
  snprintf(buf, sizeof buf, "%s-wal", sqlite_path);
  unlink(buf);
  snprintf(buf, sizeof buf, "%s-shm", sqlite_path);
  unlink(buf);
  printf("%s: %d failed\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
