/*
 * test_exec.c - the executor (exec.c, cq.c) over a fake driver: jobs,
 * workers, pins, completion queues, deadlines, cancellation, shutdown.
 *
 * The fake driver is instrumented like test_pool.c's: it keeps a gauge of
 * open connections (what the server would list) with its high-water mark,
 * detects two threads using one connection at once, and counts cancels.
 * Statements:
 *   "SLEEP <ms>"  waits, ending early (kind database, "interrupted") when
 *                 the driver's cancel hits it, as KILL QUERY does
 *   "BLOCK"       waits until cancelled (10 s at most)
 *   "DIRTY"       as BLOCK, but a cancel leaves the connection unclean
 *   "BEGIN" / "COMMIT" / "ROLLBACK", anything else: succeeds at once
 * A cancel that arrives while no statement runs is ignored (a server
 * ignores a cancel for an idle session).
 *
 * Every test checks that each job completed exactly once, and ends with
 * the pool's in_use at 0. Run under ASan/LSan (no leaks, the discard path)
 * and TSan (build-tsan). `test_exec NAME...` runs only the named tests.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "sqorm.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/resource.h>
#endif

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

typedef struct fconn {
  int id;
  int in_tx;
  atomic_int busy;       /* a statement runs */
  atomic_int canceled;   /* the cancel hit the running statement */
  atomic_int unclean;    /* DIRTY was cancelled: a result is "pending" */
  int dead;              /* DIE: the server went away */
} fconn;

static atomic_int f_opens, f_closes, f_gauge, f_gauge_max, f_busy_violations, f_next_id;
static atomic_int f_cancels, f_cancels_hit, f_rollbacks, f_execs;

static void fake_reset_counters(void) {
  atomic_store(&f_opens, 0);
  atomic_store(&f_closes, 0);
  atomic_store(&f_gauge_max, atomic_load(&f_gauge));
  atomic_store(&f_busy_violations, 0);
  atomic_store(&f_cancels, 0);
  atomic_store(&f_cancels_hit, 0);
  atomic_store(&f_rollbacks, 0);
  atomic_store(&f_execs, 0);
}

static int f_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  (void)cfg;
  fconn *c = calloc(1, sizeof *c);
  if (!c) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  int v = atomic_fetch_add(&f_gauge, 1) + 1, m = atomic_load(&f_gauge_max);
  while (v > m && !atomic_compare_exchange_weak(&f_gauge_max, &m, v)) {
  }
  c->id = atomic_fetch_add(&f_next_id, 1) + 1;
  atomic_fetch_add(&f_opens, 1);
  *out = (sq_dconn *)c;
  return SQ_OK;
}

static void f_close(sq_dconn *h) {
  atomic_fetch_add(&f_closes, 1);
  atomic_fetch_sub(&f_gauge, 1);
  free(h);
}

static int f_ping(sq_dconn *h, sq_err *err) {
  (void)h;
  (void)err;
  return SQ_OK;
}

static int f_is_dead(sq_dconn *h) { return ((fconn *)h)->dead; }

/* Waits up to ms, or until cancelled. */
static int wait_or_cancel(fconn *c, double ms, int dirty, sq_err *err) {
  double end = sq_now() + ms / 1000.0;
  while (sq_now() < end) {
    if (atomic_load(&c->canceled)) {
      if (dirty) atomic_store(&c->unclean, 1);
      atomic_fetch_add(&f_cancels_hit, 1);
      sq_err_set(err, SQ_EDATABASE, "fake: query execution was interrupted");
      sq_err_native(err, "1317", "70100");
      return SQ_EDATABASE;
    }
    sleep_s(0.0005);
  }
  return SQ_OK;
}

static int f_exec(sq_dconn *h, const char *sql, size_t len, const sq_value *params, int nparams,
                  const sq_row_sink *sink, sq_result *res, sq_err *err) {
  (void)len;
  (void)params;
  (void)nparams;
  (void)sink;
  fconn *c = (fconn *)h;
  if (atomic_exchange(&c->busy, 1)) atomic_fetch_add(&f_busy_violations, 1);
  atomic_store(&c->canceled, 0);
  atomic_fetch_add(&f_execs, 1);
  int rc = SQ_OK;
  if (res) res->affected_rows = 0;
  if (!strncmp(sql, "SLEEP ", 6)) rc = wait_or_cancel(c, atof(sql + 6), 0, err);
  else if (!strcmp(sql, "BLOCK")) rc = wait_or_cancel(c, 10000, 0, err);
  else if (!strcmp(sql, "DIRTY")) rc = wait_or_cancel(c, 10000, 1, err);
  else if (!strcmp(sql, "DIE")) {
    c->dead = 1;
    rc = sq_err_set(err, SQ_ECONNECTION, "fake: server has gone away");
  } else if (!strcmp(sql, "BEGIN")) c->in_tx = 1;
  else if (!strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK")) c->in_tx = 0;
  atomic_store(&c->busy, 0);
  return rc;
}

static int f_in_tx(sq_dconn *h) { return ((fconn *)h)->in_tx; }

static int f_reset(sq_dconn *h, int full, sq_err *err) {
  (void)full;
  (void)err;
  fconn *c = (fconn *)h;
  c->in_tx = 0;
  atomic_store(&c->unclean, 0);
  return SQ_OK;
}

static int f_rollback(sq_dconn *h, sq_err *err) {
  (void)err;
  atomic_fetch_add(&f_rollbacks, 1);
  ((fconn *)h)->in_tx = 0;
  return SQ_OK;
}

/* Another thread; hits only a running statement, as a server does. */
static int f_cancel(sq_dconn *h, sq_err *err) {
  (void)err;
  fconn *c = (fconn *)h;
  atomic_fetch_add(&f_cancels, 1);
  if (atomic_load(&c->busy)) atomic_store(&c->canceled, 1);
  return SQ_OK;
}

static int f_is_clean(sq_dconn *h) { return !atomic_load(&((fconn *)h)->unclean); }

static const sq_driver fake = {
  .name = "fake",
  .dialect = SQ_DIALECT_MYSQL,
  .ph_style = SQ_PH_QMARK,
  .open = f_open,
  .close = f_close,
  .ping = f_ping,
  .is_dead = f_is_dead,
  .exec = f_exec,
  .rollback = f_rollback,
  .in_transaction = f_in_tx,
  .reset = f_reset,
  .cancel = f_cancel,
  .is_clean = f_is_clean,
};

/* ------------------------------------------------------------------ */
/* Operations                                                           */
/* ------------------------------------------------------------------ */

typedef struct op {
  sq_job job;           /* first: container of the job */
  const char *sql;
  int id;
  int owner;            /* which consumer submitted it */
  atomic_int ran_seq;   /* order in which run started (pinned jobs) */
  int conn_id;
  int in_use_seen;      /* pool in_use while it ran */
  atomic_int done;      /* completions seen: must end at exactly 1 */
  int heap;             /* malloc'd: freed by discard */
} op;

static sq_pool *g_pool;      /* for run callbacks that sample stats */
static atomic_int g_seq;
static atomic_int g_in_use_max;

static int op_run(sq_job *job, sq_conn *conn, sq_err *err) {
  op *o = (op *)job;
  atomic_store(&o->ran_seq, atomic_fetch_add(&g_seq, 1));
  o->conn_id = ((fconn *)sq_conn_handle(conn))->id;
  if (g_pool) {
    sq_pool_stats st;
    sq_pool_stats_get(g_pool, &st);
    o->in_use_seen = st.in_use;
    int m = atomic_load(&g_in_use_max);
    while (st.in_use > m && !atomic_compare_exchange_weak(&g_in_use_max, &m, st.in_use)) {
    }
  }
  if (!o->sql) return SQ_OK;
  sq_result res;
  return sq_conn_exec(conn, o->sql, strlen(o->sql), NULL, 0, NULL, &res, err);
}

static void op_init(op *o, sq_cq *cq, const char *sql, int id) {
  memset(o, 0, sizeof *o);
  sq_job_init(&o->job, op_run, NULL);
  o->job.cq = cq;
  o->job.tag = o;
  o->sql = sql;
  o->id = id;
}

static sq_pool *open_pool(int max, double acquire) {
  sq_config cfg;
  sq_config_init(&cfg);
  cfg.dialect = SQ_DIALECT_MYSQL;
  cfg.host = sq_strdup("127.0.0.1");
  cfg.pool.max = max;
  cfg.pool.acquire_timeout = acquire;
  sq_pool *p = NULL;
  sq_err err;
  int rc = sq_pool_open_driver(&cfg, &fake, &p, &err);
  if (rc != SQ_OK) fprintf(stderr, "open: %s\n", err.msg);
  CHECK_EQ(rc, SQ_OK);
  sq_config_free(&cfg);
  return p;
}

static sq_cq *new_cq(void) {
  sq_cq *cq = NULL;
  sq_err err;
  CHECK_EQ(sq_cq_new(&cq, &err), SQ_OK);
  return cq;
}

static void submit(sq_pool *p, op *o) {
  sq_err err;
  int rc = sq_job_submit(p, &o->job, &err);
  if (rc != SQ_OK) fprintf(stderr, "submit: %s\n", err.msg);
  CHECK_EQ(rc, SQ_OK);
}

/* Pops n completions (waiting at most timeout seconds in all); each op's
 * done count goes up by one. Returns how many arrived. */
static int drain(sq_cq *cq, int n, double timeout) {
  double end = sq_now() + timeout;
  int got = 0;
  while (got < n) {
    sq_job *j = sq_cq_pop(cq);
    if (!j) {
      double left = end - sq_now();
      if (left <= 0) break;
      sq_cq_wait(cq, left);
      continue;
    }
    atomic_fetch_add(&((op *)j)->done, 1);
    got++;
  }
  return got;
}

/* The fd is readable exactly when completions wait. */
static int fd_ready(sq_cq *cq) {
  struct pollfd pfd = {sq_cq_fd(cq), POLLIN, 0};
  return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static sq_pool_stats stats(sq_pool *p) {
  sq_pool_stats st;
  sq_pool_stats_get(p, &st);
  return st;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

/* 1000 jobs on max = 4: each completes once, never more than 4
 * connections in use or open, fd and inflight counts consistent. */
static void test_many(void) {
  enum { N = 1000 };
  sq_pool *p = open_pool(4, 30);
  g_pool = p;
  atomic_store(&g_in_use_max, 0);
  sq_cq *cq = new_cq();
  CHECK(!fd_ready(cq));
  op *ops = calloc(N, sizeof *ops);
  for (int i = 0; i < N; i++) {
    op_init(&ops[i], cq, i % 10 == 0 ? "SLEEP 1" : "SELECT 1", i);
    submit(p, &ops[i]);
  }
  CHECK(sq_cq_inflight(cq) > 0);
  CHECK_EQ(drain(cq, N, 30), N);
  CHECK(!fd_ready(cq));
  CHECK_EQ(sq_cq_inflight(cq), 0);
  CHECK(sq_cq_pop(cq) == NULL);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(atomic_load(&ops[i].done), 1);
    CHECK_EQ(ops[i].job.rc, SQ_OK);
    CHECK(ops[i].job.queued >= 0 && ops[i].job.elapsed >= 0);
  }
  CHECK(atomic_load(&g_in_use_max) <= 4);
  CHECK(atomic_load(&f_gauge_max) <= 4);
  CHECK_EQ(atomic_load(&f_busy_violations), 0);
  sq_pool_stats st = stats(p);
  CHECK_EQ(st.in_use, 0);
  CHECK_EQ(st.waiting, 0);
  g_pool = NULL;
  sq_cq_close(cq);
  sq_pool_close(p);
  CHECK_EQ(atomic_load(&f_gauge), 0);
  free(ops);
}

/* The fd goes readable with the first completion and back with the last
 * pop; notify runs once per completion. */
static atomic_int notified;
static void on_notify(void *ud) {
  CHECK(ud == (void *)&notified);
  atomic_fetch_add(&notified, 1);
}

static void test_fd_notify(void) {
  sq_pool *p = open_pool(2, 30);
  sq_cq *cq = new_cq();
  atomic_store(&notified, 0);
  sq_cq_set_notify(cq, on_notify, &notified);
  op a, b;
  op_init(&a, cq, "SELECT 1", 1);
  op_init(&b, cq, "SELECT 1", 2);
  submit(p, &a);
  submit(p, &b);
  CHECK(sq_cq_wait(cq, 5));
  double end = sq_now() + 5;
  while (atomic_load(&notified) < 2 && sq_now() < end) sleep_s(0.001);
  CHECK_EQ(atomic_load(&notified), 2);
  CHECK(fd_ready(cq));
  sq_job *j1 = sq_cq_pop(cq);
  CHECK(j1 != NULL);
  CHECK(fd_ready(cq)); /* one still waits */
  sq_job *j2 = sq_cq_pop(cq);
  CHECK(j2 != NULL);
  CHECK(!fd_ready(cq));
  CHECK(sq_cq_pop(cq) == NULL);
  CHECK(!sq_cq_wait(cq, 0.01));
  CHECK(j1 != j2 && (j1 == &a.job || j1 == &b.job) && (j2 == &a.job || j2 == &b.job));
  CHECK(j1->tag == (void *)j1);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* Pinned jobs run in submission order on the pin's connection; a pool
 * whose every connection is pinned still runs the pins' jobs, and the
 * pool jobs waiting meanwhile all complete once the pins let go. */
static void test_pins(void) {
  enum { MAX = 4, PER_PIN = 50, POOL_JOBS = 200 };
  sq_pool *p = open_pool(MAX, 30);
  g_pool = p;
  atomic_store(&g_in_use_max, 0);
  sq_cq *cq = new_cq();
  sq_pin *pins[MAX];
  sq_err err;
  for (int i = 0; i < MAX; i++) {
    sq_conn *c = NULL;
    CHECK_EQ(sq_pool_acquire(p, 1, &c, &err), SQ_OK);
    CHECK_EQ(sq_pin_new(c, &pins[i], &err), SQ_OK);
    CHECK(sq_pin_conn(pins[i]) == c);
  }
  /* pool jobs first: they queue in the pool (every connection is pinned) */
  op *pj = calloc(POOL_JOBS, sizeof *pj);
  for (int i = 0; i < POOL_JOBS; i++) {
    op_init(&pj[i], cq, "SELECT 1", 10000 + i);
    submit(p, &pj[i]);
  }
  op *po = calloc(MAX * PER_PIN, sizeof *po);
  for (int k = 0; k < PER_PIN; k++)
    for (int i = 0; i < MAX; i++) {
      op *o = &po[i * PER_PIN + k];
      op_init(o, cq, k % 7 == 0 ? "SLEEP 1" : "SELECT 1", k);
      o->owner = i;
      CHECK_EQ(sq_pin_submit(pins[i], &o->job, &err), SQ_OK);
    }
  /* every pinned job completes although the pool is exhausted */
  CHECK_EQ(drain(cq, MAX * PER_PIN, 30), MAX * PER_PIN);
  for (int i = 0; i < POOL_JOBS; i++) CHECK_EQ(atomic_load(&pj[i].done), 0);
  for (int i = 0; i < MAX; i++) {
    CHECK_EQ(sq_pin_pending(pins[i]), 0);
    int cid = ((fconn *)sq_conn_handle(sq_pin_conn(pins[i])))->id;
    for (int k = 0; k < PER_PIN; k++) {
      op *o = &po[i * PER_PIN + k];
      CHECK_EQ(atomic_load(&o->done), 1);
      CHECK_EQ(o->job.rc, SQ_OK);
      CHECK_EQ(o->conn_id, cid);
      if (k > 0) CHECK(o->ran_seq > po[i * PER_PIN + k - 1].ran_seq); /* in order */
    }
  }
  CHECK_EQ(stats(p).waiting, POOL_JOBS);
  /* detach one pin (the caller gets the connection back), close the rest */
  sq_conn *back = NULL;
  CHECK_EQ(sq_pin_detach(pins[0], &back, &err), SQ_OK);
  CHECK(back != NULL);
  sq_pool_release(p, back);
  for (int i = 1; i < MAX; i++) sq_pin_close(pins[i], 0);
  CHECK_EQ(drain(cq, POOL_JOBS, 30), POOL_JOBS);
  for (int i = 0; i < POOL_JOBS; i++) {
    CHECK_EQ(atomic_load(&pj[i].done), 1);
    CHECK_EQ(pj[i].job.rc, SQ_OK);
  }
  CHECK(atomic_load(&g_in_use_max) <= MAX);
  CHECK(atomic_load(&f_gauge_max) <= MAX);
  CHECK_EQ(stats(p).in_use, 0);
  g_pool = NULL;
  sq_cq_close(cq);
  sq_pool_close(p);
  free(pj);
  free(po);
}

/* A job that waits for a connection past its deadline completes at once
 * with kind timeout (not after the acquire timeout); past its acquire
 * timeout with pool_timeout; acquire_timeout 0 fails at once. */
static void test_queued_timeout(void) {
  sq_pool *p = open_pool(1, 30);
  sq_cq *cq = new_cq();
  sq_err err;
  sq_conn *held = NULL;
  CHECK_EQ(sq_pool_acquire(p, 1, &held, &err), SQ_OK);

  op a, b, c;
  op_init(&a, cq, "SELECT 1", 1);
  sq_job_set_timeout(&a.job, 0.2);
  op_init(&b, cq, "SELECT 1", 2);
  b.job.acquire_timeout = 0.3;
  op_init(&c, cq, "SELECT 1", 3);
  c.job.acquire_timeout = 0;
  double t0 = sq_now();
  submit(p, &a);
  submit(p, &b);
  submit(p, &c);
  CHECK_EQ(drain(cq, 1, 1), 1); /* c: at once */
  CHECK_EQ(atomic_load(&c.done), 1);
  CHECK_EQ(c.job.rc, SQ_EPOOL_TIMEOUT);
  CHECK(sq_now() - t0 < 0.15);
  CHECK_EQ(drain(cq, 1, 2), 1);
  CHECK_EQ(atomic_load(&a.done), 1);
  CHECK_EQ(a.job.rc, SQ_ETIMEOUT);
  double ta = sq_now() - t0;
  CHECK(ta >= 0.19 && ta < 1.0);
  CHECK(strstr(a.job.err.msg, "timed out") != NULL);
  CHECK_EQ(drain(cq, 1, 2), 1);
  CHECK_EQ(atomic_load(&b.done), 1);
  CHECK_EQ(b.job.rc, SQ_EPOOL_TIMEOUT);
  CHECK(strstr(b.job.err.msg, "no connection available") != NULL);
  CHECK(sq_now() - t0 >= 0.29);
  CHECK_EQ(stats(p).waiting, 0);
  CHECK(stats(p).timeouts >= 2);

  /* a deadline already past: completes at once, never runs */
  op d;
  op_init(&d, cq, "SELECT 1", 4);
  d.job.deadline = sq_clock() - 1;
  submit(p, &d);
  CHECK_EQ(drain(cq, 1, 1), 1);
  CHECK_EQ(d.job.rc, SQ_ETIMEOUT);
  CHECK_EQ(d.ran_seq, 0);
  CHECK(d.conn_id == 0);

  sq_pool_release(p, held);
  CHECK_EQ(stats(p).in_use, 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* Blocking acquirers and async jobs share one FIFO queue. */
typedef struct blocker {
  sq_pool *p;
  atomic_int got_seq;
} blocker;

static void *blocking_acquire(void *arg) {
  blocker *b = arg;
  sq_conn *c = NULL;
  sq_err err;
  if (sq_pool_acquire(b->p, 5, &c, &err) == SQ_OK) {
    atomic_store(&b->got_seq, atomic_fetch_add(&g_seq, 1)); /* g_seq starts at 1 */
    sleep_s(0.01);
    sq_pool_release(b->p, c);
  }
  return NULL;
}

static void test_fifo_shared(void) {
  sq_pool *p = open_pool(1, 30);
  sq_cq *cq = new_cq();
  sq_err err;
  sq_conn *held = NULL;
  CHECK_EQ(sq_pool_acquire(p, 1, &held, &err), SQ_OK);
  atomic_store(&g_seq, 1);
  op a, c;
  op_init(&a, cq, "SELECT 1", 1);
  op_init(&c, cq, "SELECT 1", 3);
  submit(p, &a);
  blocker b = {p, 0};
  pthread_t th;
  pthread_create(&th, NULL, blocking_acquire, &b);
  double end = sq_now() + 5;
  while (stats(p).waiting < 2 && sq_now() < end) sleep_s(0.001);
  submit(p, &c);
  CHECK_EQ(stats(p).waiting, 3);
  sq_pool_release(p, held);
  CHECK_EQ(drain(cq, 2, 5), 2);
  pthread_join(th, NULL);
  CHECK(a.ran_seq > 0 && atomic_load(&b.got_seq) > 0 && c.ran_seq > 0);
  CHECK(a.ran_seq < atomic_load(&b.got_seq));
  CHECK(atomic_load(&b.got_seq) < c.ran_seq);
  CHECK_EQ(stats(p).in_use, 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* Cancel: a queued job completes at once with kind canceled; a running
 * one is cancelled on the server, its connection reused when clean and
 * discarded when not. */
static void test_cancel(void) {
  sq_pool *p = open_pool(1, 30);
  sq_cq *cq = new_cq();
  op run, queued;
  op_init(&run, cq, "BLOCK", 1);
  op_init(&queued, cq, "SELECT 1", 2);
  submit(p, &run);
  submit(p, &queued);
  double end = sq_now() + 5;
  while (!atomic_load(&run.ran_seq) && sq_now() < end) sleep_s(0.001);
  sleep_s(0.02);
  double t0 = sq_now();
  CHECK_EQ(sq_job_cancel(&queued.job), 1);
  CHECK_EQ(drain(cq, 1, 1), 1);
  CHECK_EQ(atomic_load(&queued.done), 1);
  CHECK_EQ(queued.job.rc, SQ_ECANCELED);
  CHECK(sq_now() - t0 < 0.2);
  CHECK_EQ(stats(p).waiting, 0);

  int closes = atomic_load(&f_closes);
  t0 = sq_now();
  CHECK_EQ(sq_job_cancel(&run.job), 1);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK(sq_now() - t0 < 1.0);
  CHECK_EQ(run.job.rc, SQ_ECANCELED);
  CHECK(run.job.canceled_on_server);
  CHECK_EQ(strcmp(run.job.err.code, "1317"), 0); /* the server's code stays */
  CHECK(atomic_load(&f_cancels_hit) >= 1);
  CHECK_EQ(sq_job_cancel(&run.job), 0); /* finished: nothing to cancel */
  CHECK_EQ(atomic_load(&f_closes), closes); /* clean: kept */
  CHECK_EQ(stats(p).idle, 1);

  /* the same connection serves the next job */
  op next;
  op_init(&next, cq, "SELECT 1", 3);
  submit(p, &next);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(next.job.rc, SQ_OK);
  CHECK_EQ(next.conn_id, run.conn_id);

  /* not clean after the cancel: discarded */
  op dirty;
  op_init(&dirty, cq, "DIRTY", 4);
  submit(p, &dirty);
  while (!atomic_load(&dirty.ran_seq) && sq_now() < end + 5) sleep_s(0.001);
  sleep_s(0.02);
  sq_job_cancel(&dirty.job);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(dirty.job.rc, SQ_ECANCELED);
  CHECK_EQ(atomic_load(&f_closes), closes + 1);
  CHECK_EQ(stats(p).size, 0);
  CHECK_EQ(stats(p).in_use, 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* A running job whose deadline passes is cancelled on the server and
 * completes with kind timeout; one that finishes in time is untouched. */
static void test_running_timeout(void) {
  sq_pool *p = open_pool(2, 30);
  sq_cq *cq = new_cq();
  op slow, fast;
  op_init(&slow, cq, "BLOCK", 1);
  sq_job_set_timeout(&slow.job, 0.15);
  op_init(&fast, cq, "SLEEP 5", 2);
  sq_job_set_timeout(&fast.job, 2);
  double t0 = sq_now();
  submit(p, &slow);
  submit(p, &fast);
  CHECK_EQ(drain(cq, 2, 5), 2);
  double t = sq_now() - t0;
  CHECK_EQ(slow.job.rc, SQ_ETIMEOUT);
  CHECK(slow.job.canceled_on_server);
  CHECK(strstr(slow.job.err.msg, "timed out") && strstr(slow.job.err.msg, "cancelled on the server"));
  CHECK_EQ(fast.job.rc, SQ_OK);
  CHECK(!fast.job.canceled_on_server);
  CHECK(t < 1.0);
  CHECK(slow.job.elapsed >= 0.1);
  CHECK_EQ(stats(p).in_use, 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* A run that keeps running statements after a cancel is refused the
 * next statement (sq_conn_stopped), so a multi-statement op stops too. */
static int multi_run(sq_job *job, sq_conn *conn, sq_err *err) {
  op *o = (op *)job;
  atomic_store(&o->ran_seq, 1);
  sq_result res;
  int rc = sq_conn_exec(conn, "BLOCK", 5, NULL, 0, NULL, &res, err);
  (void)rc;
  o->in_use_seen = sq_conn_stopped(conn); /* remember what stopped it */
  return sq_conn_exec(conn, "SELECT 1", 8, NULL, 0, NULL, &res, err);
}

static void test_stop_next_statement(void) {
  sq_pool *p = open_pool(1, 30);
  sq_cq *cq = new_cq();
  op o;
  op_init(&o, cq, NULL, 1);
  o.job.run = multi_run;
  sq_job_set_timeout(&o.job, 0.1);
  submit(p, &o);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(o.job.rc, SQ_ETIMEOUT);
  CHECK_EQ(o.in_use_seen, SQ_ETIMEOUT);
  CHECK(strstr(o.job.err.msg, "not started") != NULL);
  CHECK_EQ(stats(p).in_use, 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* On a pin inside a transaction, a timeout ends the transaction: rolled
 * back, job->tx_ended and sq_pin_tx_ended set, the jobs queued behind it
 * complete with kind closed, and the pin refuses more. */
static void test_pin_timeout_ends_tx(void) {
  sq_pool *p = open_pool(2, 30);
  sq_cq *cq = new_cq();
  sq_err err;
  /* BEGIN through a pool job that keeps its connection */
  op begin;
  op_init(&begin, cq, "BEGIN", 1);
  begin.job.flags = SQ_JOB_KEEP_CONN;
  submit(p, &begin);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(begin.job.rc, SQ_OK);
  CHECK(begin.job.conn != NULL);
  CHECK_EQ(stats(p).in_use, 1);
  sq_pin *pin = NULL;
  CHECK_EQ(sq_pin_new(begin.job.conn, &pin, &err), SQ_OK);
  CHECK(f_in_tx(sq_conn_handle(sq_pin_conn(pin))));

  op ok1, slow, after1, after2;
  op_init(&ok1, cq, "SELECT 1", 2);
  op_init(&slow, cq, "BLOCK", 3);
  sq_job_set_timeout(&slow.job, 0.1);
  op_init(&after1, cq, "SELECT 1", 4);
  op_init(&after2, cq, "SELECT 1", 5);
  CHECK_EQ(sq_pin_submit(pin, &ok1.job, &err), SQ_OK);
  CHECK_EQ(sq_pin_submit(pin, &slow.job, &err), SQ_OK);
  CHECK_EQ(sq_pin_submit(pin, &after1.job, &err), SQ_OK);
  CHECK_EQ(sq_pin_submit(pin, &after2.job, &err), SQ_OK);
  CHECK_EQ(drain(cq, 4, 5), 4);
  CHECK_EQ(ok1.job.rc, SQ_OK);
  CHECK_EQ(slow.job.rc, SQ_ETIMEOUT);
  CHECK(slow.job.tx_ended);
  CHECK(atomic_load(&f_rollbacks) >= 1);
  CHECK_EQ(after1.job.rc, SQ_ECLOSED);
  CHECK_EQ(after2.job.rc, SQ_ECLOSED);
  CHECK(strstr(after1.job.err.msg, "transaction is over") != NULL);
  CHECK(sq_pin_tx_ended(pin));
  CHECK(!f_in_tx(sq_conn_handle(sq_pin_conn(pin))));
  op more;
  op_init(&more, cq, "SELECT 1", 6);
  CHECK_EQ(sq_pin_submit(pin, &more.job, &err), SQ_ECLOSED);
  sq_pin_close(pin, 0);
  CHECK_EQ(stats(p).in_use, 0);

  /* a pin job cancelled while queued; then close with cancel */
  sq_conn *c = NULL;
  CHECK_EQ(sq_pool_acquire(p, 1, &c, &err), SQ_OK);
  CHECK_EQ(sq_pin_new(c, &pin, &err), SQ_OK);
  op r1, q1, q2;
  op_init(&r1, cq, "BLOCK", 7);
  op_init(&q1, cq, "SELECT 1", 8);
  op_init(&q2, cq, "SELECT 1", 9);
  CHECK_EQ(sq_pin_submit(pin, &r1.job, &err), SQ_OK);
  CHECK_EQ(sq_pin_submit(pin, &q1.job, &err), SQ_OK);
  CHECK_EQ(sq_pin_submit(pin, &q2.job, &err), SQ_OK);
  CHECK_EQ(sq_job_cancel(&q1.job), 1);
  CHECK_EQ(drain(cq, 1, 2), 1);
  CHECK_EQ(q1.job.rc, SQ_ECANCELED);
  double end = sq_now() + 5;
  while (!atomic_load(&r1.ran_seq) && sq_now() < end) sleep_s(0.001);
  sq_conn *back = NULL;
  CHECK_EQ(sq_pin_detach(pin, &back, &err), SQ_EUSAGE); /* jobs in flight */
  sq_pin_close(pin, 1);
  CHECK_EQ(drain(cq, 2, 5), 2);
  CHECK_EQ(q2.job.rc, SQ_ECANCELED);
  CHECK_EQ(r1.job.rc, SQ_ECANCELED);
  CHECK(!r1.job.tx_ended); /* no transaction was open */
  end = sq_now() + 5;
  while (stats(p).in_use && sq_now() < end) sleep_s(0.001);
  CHECK_EQ(stats(p).in_use, 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* The pool's last close with jobs queued and one running: the queued
 * ones complete with kind closed, the running one is cancelled; each
 * exactly once; every thread joined; nothing leaks (ASan). */
static void test_pool_close(void) {
  enum { N = 20 };
  sq_pool *p = open_pool(1, 30);
  sq_cq *cq = new_cq();
  op ops[N];
  for (int i = 0; i < N; i++) {
    op_init(&ops[i], cq, i == 0 ? "BLOCK" : "SELECT 1", i);
    if (i % 3 == 1) sq_job_set_timeout(&ops[i].job, 60);
    submit(p, &ops[i]);
  }
  double end = sq_now() + 5;
  while (!atomic_load(&ops[0].ran_seq) && sq_now() < end) sleep_s(0.001);
  sleep_s(0.02);
  double t0 = sq_now();
  sq_pool_close(p); /* last reference */
  CHECK(sq_now() - t0 < 2.0);
  CHECK_EQ(drain(cq, N, 1), N);
  CHECK_EQ(ops[0].job.rc, SQ_ECLOSED);
  CHECK(ops[0].job.canceled_on_server);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(atomic_load(&ops[i].done), 1);
    if (i) CHECK_EQ(ops[i].job.rc, SQ_ECLOSED);
  }
  CHECK_EQ(sq_cq_inflight(cq), 0);
  CHECK_EQ(atomic_load(&f_gauge), 0);
  sq_cq_close(cq);
}

/* The pool's last close while a pin holds a connection with a job running
 * and more queued: the queued ones complete with kind closed, the running
 * one is cancelled, the pin refuses new jobs, and closing the pin later
 * releases the connection and frees the pool (ASan: no leak). */
static void test_pool_close_pinned(void) {
  sq_pool *p = open_pool(2, 30);
  sq_cq *cq = new_cq();
  sq_err err;
  sq_conn *c = NULL;
  CHECK_EQ(sq_pool_acquire(p, 1, &c, &err), SQ_OK);
  sq_pin *pin = NULL;
  CHECK_EQ(sq_pin_new(c, &pin, &err), SQ_OK);
  op ops[4];
  for (int i = 0; i < 4; i++) {
    op_init(&ops[i], cq, i == 0 ? "BLOCK" : "SELECT 1", i);
    CHECK_EQ(sq_pin_submit(pin, &ops[i].job, &err), SQ_OK);
  }
  double end = sq_now() + 5;
  while (!atomic_load(&ops[0].ran_seq) && sq_now() < end) sleep_s(0.001);
  sq_pool_close(p);
  CHECK_EQ(drain(cq, 4, 2), 4);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(atomic_load(&ops[i].done), 1);
    CHECK_EQ(ops[i].job.rc, SQ_ECLOSED);
  }
  op late;
  op_init(&late, cq, "SELECT 1", 9);
  CHECK_EQ(sq_pin_submit(pin, &late.job, &err), SQ_ECLOSED);
  CHECK_EQ(atomic_load(&f_gauge), 1); /* the pin's connection is still out */
  sq_pin_close(pin, 0);                /* returns it: the pool goes */
  CHECK_EQ(atomic_load(&f_gauge), 0);
  sq_cq_close(cq);
}

/* Many jobs with deadlines (some expire queued, some while running)
 * while another thread cancels at random, jobs finished included: every
 * job completes exactly once, with a kind that fits. */
typedef struct racer {
  op *ops;
  int n;
  atomic_int stop;
  int hits;
} racer;

static void *random_canceller(void *arg) {
  racer *r = arg;
  unsigned seed = 12345;
  while (!atomic_load(&r->stop)) {
    seed = seed * 1103515245u + 12345u;
    r->hits += sq_job_cancel(&r->ops[(seed >> 8) % (unsigned)r->n].job);
    sleep_s(0.0003);
  }
  return NULL;
}

static void test_races(void) {
  enum { N = 600 };
  sq_pool *p = open_pool(3, 30);
  sq_cq *cq = new_cq();
  op *ops = calloc(N, sizeof *ops);
  for (int i = 0; i < N; i++) {
    op_init(&ops[i], cq, i % 3 == 0 ? "SLEEP 3" : i % 3 == 1 ? "SELECT 1" : "SLEEP 1", i);
    if (i % 2) sq_job_set_timeout(&ops[i].job, 0.001 * (i % 50));
  }
  racer r = {ops, N, 0, 0};
  pthread_t th;
  pthread_create(&th, NULL, random_canceller, &r);
  for (int i = 0; i < N; i++) submit(p, &ops[i]);
  CHECK_EQ(drain(cq, N, 60), N);
  atomic_store(&r.stop, 1);
  pthread_join(th, NULL);
  int ok = 0, to = 0, ca = 0;
  for (int i = 0; i < N; i++) {
    CHECK_EQ(atomic_load(&ops[i].done), 1);
    int rc = ops[i].job.rc;
    CHECK(rc == SQ_OK || rc == SQ_ETIMEOUT || rc == SQ_ECANCELED);
    if (rc == SQ_ETIMEOUT) CHECK(i % 2 == 1);
    ok += rc == SQ_OK, to += rc == SQ_ETIMEOUT, ca += rc == SQ_ECANCELED;
  }
  CHECK(ok > 0 && to > 0);
  printf("  races: %d ok, %d timeout, %d canceled, %d cancels took hold\n", ok, to, ca, r.hits);
  CHECK_EQ(sq_cq_inflight(cq), 0);
  CHECK_EQ(stats(p).in_use, 0);
  CHECK_EQ(stats(p).waiting, 0);
  CHECK(atomic_load(&f_gauge_max) <= 3);
  CHECK_EQ(atomic_load(&f_busy_violations), 0);
  sq_cq_close(cq);
  sq_pool_close(p);
  free(ops);
}

/* The consumer closes its queue while jobs are in flight (its lua_State
 * is closing): what waited and what completes later goes to discard on
 * the completing thread, kept connections released first; nothing
 * leaks (the jobs are malloc'd; LSan checks). */
static atomic_int discarded;
static void on_discard(sq_job *job, void *ud) {
  CHECK(ud == (void *)&discarded);
  op *o = (op *)job;
  CHECK(job->conn == NULL);
  atomic_fetch_add(&discarded, 1);
  if (o->heap) free(o);
}

static void test_cq_close_in_flight(void) {
  enum { N = 100 };
  sq_pool *p = open_pool(3, 30);
  sq_cq *cq = new_cq();
  atomic_store(&discarded, 0);
  sq_cq_set_discard(cq, on_discard, &discarded);
  for (int i = 0; i < N; i++) {
    op *o = malloc(sizeof *o);
    op_init(o, cq, i % 2 ? "SLEEP 2" : "SELECT 1", i);
    o->heap = 1;
    if (i % 10 == 0) o->job.flags = SQ_JOB_KEEP_CONN; /* kept connections are released */
    submit(p, o);
  }
  sleep_s(0.01); /* some complete and wait to be popped, others still run */
  sq_cq_close(cq);
  double end = sq_now() + 10;
  while (atomic_load(&discarded) < N && sq_now() < end) sleep_s(0.001);
  CHECK_EQ(atomic_load(&discarded), N);
  end = sq_now() + 5;
  while (stats(p).in_use && sq_now() < end) sleep_s(0.001);
  CHECK_EQ(stats(p).in_use, 0);
  sq_pool_close(p);
}

/* Two consumers on two threads share one pool; each sees only its own
 * completions. */
typedef struct consumer {
  sq_pool *p;
  int id;
  int bad;
  int got;
} consumer;

static void *consumer_main(void *arg) {
  enum { N = 400 };
  consumer *me = arg;
  sq_cq *cq = new_cq();
  op *ops = calloc(N, sizeof *ops);
  for (int i = 0; i < N; i++) {
    op_init(&ops[i], cq, i % 25 == 0 ? "SLEEP 1" : "SELECT 1", i);
    ops[i].owner = me->id;
    submit(me->p, &ops[i]);
  }
  double end = sq_now() + 30;
  while (me->got < N && sq_now() < end) {
    sq_job *j = sq_cq_pop(cq);
    if (!j) {
      sq_cq_wait(cq, 0.1);
      continue;
    }
    op *o = (op *)j;
    if (o->owner != me->id || o < ops || o >= ops + N) me->bad++;
    else atomic_fetch_add(&o->done, 1);
    me->got++;
  }
  for (int i = 0; i < N; i++)
    if (atomic_load(&ops[i].done) != 1) me->bad++;
  sq_cq_close(cq);
  free(ops);
  return NULL;
}

static void test_two_consumers(void) {
  sq_pool *p = open_pool(3, 30);
  consumer a = {p, 1, 0, 0}, b = {p, 2, 0, 0};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, consumer_main, &a);
  pthread_create(&tb, NULL, consumer_main, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK_EQ(a.got, 400);
  CHECK_EQ(b.got, 400);
  CHECK_EQ(a.bad, 0);
  CHECK_EQ(b.bad, 0);
  CHECK_EQ(stats(p).in_use, 0);
  sq_pool_close(p);
}

/* Blocking mode: the same deadline and cancel, on the caller's thread. */
typedef struct canceller_arg {
  sq_job *job;
  double after;
  int r;
} canceller_arg;

static void *cancel_later(void *arg) {
  canceller_arg *a = arg;
  sleep_s(a->after);
  a->r = sq_job_cancel(a->job);
  return NULL;
}

static void test_inline(void) {
  sq_pool *p = open_pool(1, 30);
  op o;
  op_init(&o, NULL, "BLOCK", 1);
  sq_job_set_timeout(&o.job, 0.1);
  double t0 = sq_now();
  CHECK_EQ(sq_job_run(p, &o.job), SQ_ETIMEOUT);
  CHECK(sq_now() - t0 < 1.0);
  CHECK(o.job.canceled_on_server);
  CHECK_EQ(stats(p).in_use, 0);

  /* cancelled from another thread */
  op_init(&o, NULL, "BLOCK", 2);
  canceller_arg ca = {&o.job, 0.05, 0};
  pthread_t th;
  pthread_create(&th, NULL, cancel_later, &ca);
  CHECK_EQ(sq_job_run(p, &o.job), SQ_ECANCELED);
  pthread_join(th, NULL);
  CHECK_EQ(ca.r, 1);

  /* ok, and on a caller's connection inside a transaction */
  op_init(&o, NULL, "SELECT 1", 3);
  CHECK_EQ(sq_job_run(p, &o.job), SQ_OK);
  sq_conn *c = NULL;
  sq_err err;
  CHECK_EQ(sq_pool_acquire(p, 1, &c, &err), SQ_OK);
  op_init(&o, NULL, "BEGIN", 4);
  CHECK_EQ(sq_job_run_conn(c, &o.job), SQ_OK);
  op_init(&o, NULL, "BLOCK", 5);
  sq_job_set_timeout(&o.job, 0.05);
  CHECK_EQ(sq_job_run_conn(c, &o.job), SQ_ETIMEOUT);
  CHECK(o.job.tx_ended);
  CHECK(!f_in_tx(sq_conn_handle(c)));

  /* a blocking caller waits for the connection only until its deadline */
  op_init(&o, NULL, "SELECT 1", 6);
  sq_job_set_timeout(&o.job, 0.1);
  t0 = sq_now();
  CHECK_EQ(sq_job_run(p, &o.job), SQ_ETIMEOUT);
  CHECK(sq_now() - t0 < 1.0);
  sq_pool_release(p, c);
  CHECK_EQ(stats(p).in_use, 0);
  sq_pool_close(p);
}

/* The last pool reference is dropped inside a notify callback on a
 * worker: the worker is not joined by itself, the pool is freed after it
 * exits, nothing leaks or crashes. */
static sq_pool *self_close_pool;
static void close_in_notify(void *ud) {
  (void)ud;
  sq_pool *p = self_close_pool;
  self_close_pool = NULL;
  if (p) sq_pool_close(p);
}

/* ... and inside run itself, while the job holds a connection. */
static int close_in_run(sq_job *job, sq_conn *conn, sq_err *err) {
  (void)job;
  (void)conn;
  (void)err;
  sq_pool *p = self_close_pool;
  self_close_pool = NULL;
  sq_pool_close(p);
  return SQ_OK;
}

static void test_close_from_callback(void) {
  sq_pool *p = open_pool(2, 30);
  sq_cq *cq = new_cq();
  self_close_pool = p;
  sq_cq_set_notify(cq, close_in_notify, NULL);
  op o;
  op_init(&o, cq, "SELECT 1", 1);
  submit(p, &o);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(o.job.rc, SQ_OK);
  sq_cq_close(cq); /* waits for the notify call */
  double end = sq_now() + 5;
  while (atomic_load(&f_gauge) && sq_now() < end) sleep_s(0.001);
  CHECK_EQ(atomic_load(&f_gauge), 0);

  p = open_pool(2, 30);
  cq = new_cq();
  self_close_pool = p;
  op_init(&o, cq, NULL, 2);
  o.job.run = close_in_run;
  submit(p, &o);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(o.job.rc, SQ_OK);
  end = sq_now() + 5;
  while (atomic_load(&f_gauge) && sq_now() < end) sleep_s(0.001);
  CHECK_EQ(atomic_load(&f_gauge), 0);
  sq_cq_close(cq);
  sleep_s(0.05); /* the detached workers finish freeing their pools */
}

/* The server dies mid-job: kind connection, the connection is discarded,
 * and inside a pinned transaction the transaction is reported over. */
static void test_server_dies(void) {
  sq_pool *p = open_pool(2, 30);
  sq_cq *cq = new_cq();
  sq_err err;
  op o;
  op_init(&o, cq, "DIE", 1);
  submit(p, &o);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(o.job.rc, SQ_ECONNECTION);
  CHECK_EQ(stats(p).size, 0);
  CHECK_EQ(atomic_load(&f_gauge), 0);

  op begin;
  op_init(&begin, cq, "BEGIN", 2);
  begin.job.flags = SQ_JOB_KEEP_CONN;
  submit(p, &begin);
  CHECK_EQ(drain(cq, 1, 5), 1);
  sq_pin *pin = NULL;
  CHECK_EQ(sq_pin_new(begin.job.conn, &pin, &err), SQ_OK);
  op_init(&o, cq, "DIE", 3);
  CHECK_EQ(sq_pin_submit(pin, &o.job, &err), SQ_OK);
  CHECK_EQ(drain(cq, 1, 5), 1);
  CHECK_EQ(o.job.rc, SQ_ECONNECTION);
  CHECK(o.job.tx_ended);
  CHECK(sq_pin_tx_ended(pin));
  sq_pin_close(pin, 0);
  CHECK_EQ(stats(p).in_use, 0);
  CHECK_EQ(atomic_load(&f_gauge), 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* Bad arguments are refused synchronously and the job never completes. */
static void test_usage(void) {
  sq_pool *p = open_pool(1, 30);
  sq_cq *cq = new_cq();
  sq_err err;
  op o;
  op_init(&o, NULL, "SELECT 1", 1);
  CHECK_EQ(sq_job_submit(p, &o.job, &err), SQ_EUSAGE); /* no cq */
  o.job.cq = cq;
  CHECK_EQ(sq_job_submit(NULL, &o.job, &err), SQ_EUSAGE);
  CHECK_EQ(sq_job_cancel(&o.job), 0);
  CHECK_EQ(sq_cq_inflight(cq), 0);
  sq_cq_close(cq);
  sq_pool_close(p);
}

/* pool.worker_nice. Linux: each thread's name and nice value from
 * /proc/self/task; counts this process's sqorm-worker threads at nice
 * `want` (and any at another value) and checks that the timer and
 * canceller run at `base`. */
#ifdef __linux__
typedef struct nice_seen {
  int workers, workers_at_want, services, services_at_base;
} nice_seen;

static nice_seen nice_scan(int want, int base) {
  nice_seen s = {0, 0, 0, 0};
  DIR *d = opendir("/proc/self/task");
  CHECK(d != NULL);
  if (!d) return s;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue; /* the thread exited meanwhile */
    if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)atoi(e->d_name));
    if (nice == -1 && errno) continue;
    if (!strcmp(comm, "sqorm-worker")) {
      s.workers++;
      s.workers_at_want += nice == want;
    } else if (!strcmp(comm, "sqorm-timer") || !strcmp(comm, "sqorm-cancel")) {
      s.services++;
      s.services_at_base += nice == base;
    }
  }
  closedir(d);
  return s;
}

/* Opens a pool (max 3, worker_nice given or -1), runs one job so its
 * threads start, and checks every worker reaches base + expect (capped
 * at 19; a worker applies it as it starts, so this waits up to 5 s) while
 * the timer and canceller stay at base. */
static void nice_case(int given, int expect) {
  int base = getpriority(PRIO_PROCESS, 0);
  int want = base + expect > 19 ? 19 : base + expect;
  if (expect > 0 && want == base) fprintf(stderr, "nice: this process already runs at nice %d\n", base);
  sq_config cfg;
  sq_config_init(&cfg);
  cfg.dialect = SQ_DIALECT_MYSQL;
  cfg.host = sq_strdup("127.0.0.1");
  cfg.pool.max = 3;
  cfg.pool.worker_nice = given;
  sq_pool *p = NULL;
  sq_err err;
  CHECK_EQ(sq_pool_open_driver(&cfg, &fake, &p, &err), SQ_OK);
  sq_config_free(&cfg);
  if (!p) return;
  sq_cq *cq = new_cq();
  op o;
  op_init(&o, cq, "SELECT 1", 1);
  submit(p, &o);
  CHECK_EQ(drain(cq, 1, 10), 1);
  nice_seen s;
  double end = sq_now() + 5;
  do {
    s = nice_scan(want, base);
    if (s.workers == 3 && s.workers_at_want == 3) break;
    sleep_s(0.01);
  } while (sq_now() < end);
  CHECK_EQ(s.workers, 3);
  CHECK_EQ(s.workers_at_want, 3);
  CHECK_EQ(s.services, 2);
  CHECK_EQ(s.services_at_base, 2);
  CHECK_EQ(getpriority(PRIO_PROCESS, 0), base); /* the caller's own thread */
  sq_cq_close(cq);
  sq_pool_close(p);
  CHECK_EQ(nice_scan(want, base).workers, 0); /* joined */
}
#endif

static int open_named(const char *name, int worker_nice, sq_pool **out, sq_err *err) {
  sq_config cfg;
  sq_config_init(&cfg);
  cfg.dialect = SQ_DIALECT_MYSQL;
  cfg.host = sq_strdup("127.0.0.1");
  cfg.name = sq_strdup(name);
  cfg.pool.worker_nice = worker_nice;
  int rc = sq_pool_open_shared_driver(&cfg, &fake, out, err);
  sq_config_free(&cfg);
  return rc;
}

static void test_worker_nice(void) {
#ifdef __linux__
  nice_case(7, 7);                       /* given */
  nice_case(0, 0);                       /* given 0: the host's priority */
  nice_case(-1, SQ_WORKER_NICE_DEFAULT); /* not given: the default */
  nice_case(19, 19);                     /* capped at 19 */
#endif
  /* Out of range: refused at open, naming the option; the URL / Lua
   * spelling is refused by sq_config_set. */
  sq_err err;
  int bad[] = {20, -2, 100};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    sq_config cfg;
    sq_config_init(&cfg);
    cfg.dialect = SQ_DIALECT_MYSQL;
    cfg.host = sq_strdup("127.0.0.1");
    cfg.pool.worker_nice = bad[i];
    sq_pool *p = NULL;
    CHECK_EQ(sq_pool_open_driver(&cfg, &fake, &p, &err), SQ_EUSAGE);
    CHECK(p == NULL);
    CHECK(strstr(err.msg, "pool.worker_nice") != NULL);
    sq_config_free(&cfg);
  }
  const char *bad_text[] = {"20", "-1", "ten", "1.5", ""};
  for (size_t i = 0; i < sizeof bad_text / sizeof *bad_text; i++) {
    sq_config cfg;
    sq_config_init(&cfg);
    CHECK_EQ(sq_config_set(&cfg, "pool.worker_nice", bad_text[i], &err), SQ_EUSAGE);
    CHECK(strstr(err.msg, "pool.worker_nice") != NULL);
    CHECK_EQ(cfg.pool.worker_nice, -1);
    CHECK_EQ(sq_config_set(&cfg, "pool.worker_nice", "5", &err), SQ_OK);
    CHECK_EQ(cfg.pool.worker_nice, 5);
    sq_config_free(&cfg);
  }
  /* A named pool: a second open with another value is refused, naming
   * it; leaving it out equals giving the default. */
  sq_pool *a = NULL, *b = NULL;
  CHECK_EQ(open_named("nice_pool", 5, &a, &err), SQ_OK);
  CHECK_EQ(open_named("nice_pool", 6, &b, &err), SQ_EUSAGE);
  CHECK(strstr(err.msg, "pool.worker_nice 5 vs 6") != NULL);
  CHECK(b == NULL);
  CHECK_EQ(open_named("nice_pool", 5, &b, &err), SQ_OK);
  CHECK(a == b);
  if (b) sq_pool_close(b);
  if (a) sq_pool_close(a);
  int dflt = sq_worker_nice(&(sq_pool_opts){.worker_nice = -1});
  CHECK_EQ(open_named("nice_pool2", -1, &a, &err), SQ_OK);
  CHECK_EQ(open_named("nice_pool2", dflt, &b, &err), SQ_OK);
  CHECK(a == b);
  if (b) sq_pool_close(b);
  if (a) sq_pool_close(a);
}

static const struct {
  const char *name;
  void (*fn)(void);
} tests[] = {
  {"many", test_many},
  {"fd_notify", test_fd_notify},
  {"pins", test_pins},
  {"queued_timeout", test_queued_timeout},
  {"fifo_shared", test_fifo_shared},
  {"cancel", test_cancel},
  {"running_timeout", test_running_timeout},
  {"stop_next", test_stop_next_statement},
  {"pin_tx", test_pin_timeout_ends_tx},
  {"pool_close", test_pool_close},
  {"pool_close_pin", test_pool_close_pinned},
  {"races", test_races},
  {"cq_close", test_cq_close_in_flight},
  {"two_consumers", test_two_consumers},
  {"inline", test_inline},
  {"close_in_cb", test_close_from_callback},
  {"server_dies", test_server_dies},
  {"usage", test_usage},
  {"worker_nice", test_worker_nice},
};

int main(int argc, char **argv) {
  int ran = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int want = argc < 2;
    for (int a = 1; a < argc; a++) want |= !strcmp(argv[a], tests[i].name);
    if (!want) continue;
    fake_reset_counters();
    atomic_store(&g_seq, 1);
    int before = atomic_load(&failures);
    double t0 = sq_now();
    tests[i].fn();
    printf("%-16s %s (%.2f s)\n", tests[i].name, atomic_load(&failures) == before ? "ok" : "FAILED",
           sq_now() - t0);
    fflush(stdout);
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
