/*
 * exec.c - the executor: operations (jobs) run by the core, on worker
 * threads (async) or on the caller's thread (blocking), with deadlines
 * and cancellation that stop the server.
 *
 * One executor per pool, created on first use; its threads start on the
 * first async submit (workers, a timer, a canceller) or the first
 * blocking run with a deadline (timer and canceller only), and are
 * joined when the pool's last reference closes. Its promises, and how
 * they are kept:
 *
 *   Exactly once. A job's life is a state machine under ex->mu
 *   (J_NEW -> WAIT_POOL | WAIT_PIN -> READY -> RUNNING -> FINISHING ->
 *   DONE). Whoever moves a job to DONE (retire) owns its completion and
 *   posts it, once, outside every lock; everyone else who wants to stop
 *   a job only writes x->stop (first writer wins) and leaves completion
 *   to the owner of the job's current state. Jobs waiting in the pool's
 *   queue have one extra owner: whoever unlinks the waiter there
 *   (sq_pool_wait_remove returns 1 to exactly one caller; a waiter that
 *   was served instead is on the run queue, and the worker completes
 *   it). While sq_job_submit is still between its two locked sections a
 *   job may already run and finish on a worker; its post is then
 *   deferred to the submitter (x->submitting), so the submitter never
 *   touches a job the consumer may have freed.
 *
 *   No thread per waiting job. A pool job waits for a connection as an
 *   sq_pwait in the pool's own FIFO queue, next to blocking callers of
 *   sq_pool_acquire, so both are served in arrival order. When the pool
 *   hands it a connection or a slot (under the pool lock) the job moves
 *   to the run queue. Each job on the run queue or running holds a
 *   distinct connection or slot of the pool (a pin's jobs run one at a
 *   time on the pin's connection), so pool.max workers always suffice:
 *   a ready job never waits for a worker for long, and a worker never
 *   waits for a connection. Opening or pinging happens on the worker.
 *
 *   Pins never deadlock. A pin's jobs queue on the pin, not in the pool,
 *   so transactions that hold every connection of the pool still get
 *   their statements run.
 *
 *   Deadlines. A min-heap of wake times (deadline, or the acquire
 *   timeout while waiting for a connection) drives the timer thread. A
 *   queued job that expires completes at once (timeout or pool_timeout);
 *   a running one gets x->stop and a server cancel. A ready job (it holds
 *   a connection and a worker takes it soon) is checked by the worker.
 *
 *   Cancellation stops the server. A running job's connection gets
 *   conn->stop (sq_conn_exec refuses further statements) and goes on the
 *   canceller thread's list; the canceller calls the driver's cancel
 *   (PQcancel, KILL QUERY on a side connection, sqlite3_interrupt)
 *   outside the lock, and calls it again with backoff while the job
 *   still runs, because a cancel that lands between two statements is
 *   ignored by the server. The canceller never races with the
 *   connection's release: the worker marks the job FINISHING, drops it
 *   from the list and waits until no cancel call is in progress before
 *   touching the connection - a cancel still on its way could otherwise
 *   hit the next statement run on that connection, by another job (the
 *   drivers' cancels return only once the server has the request). A
 *   cancelled connection returns to the pool only when the driver says
 *   it is clean (else it is discarded), and gets a full reset (marked
 *   dirty). On a pinned connection a run that was stopped inside a
 *   transaction rolls it back and reports tx_ended.
 *
 *   Blocking mode. sq_job_run / sq_job_run_conn run on the caller's
 *   thread but register the job like a running one, so the same timer
 *   and canceller enforce its deadline and sq_job_cancel.
 *
 *   Shutdown. At the pool's last close (before its connections are
 *   closed): nothing new is accepted, every queued job completes with
 *   kind closed, running ones are cancelled, workers finish what holds a
 *   connection and are joined, then the timer and canceller. If the last
 *   close happens on one of the executor's own threads (a callback
 *   dropped the last reference), that thread is detached instead of
 *   joined and the pool is freed only after it exits.
 *
 * Lock order: pool->mu before ex->mu (the pool serves a waiter under its
 * lock and the callback takes ex->mu); ex->mu before a cq's lock. No
 * code holds ex->mu while taking the pool's lock, doing I/O, or calling
 * a user callback.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/resource.h>
/* Names the executor's threads (top -H, perf, gdb tell them apart from
 * the host's). */
#define NAME_THREAD(n) ((void)prctl(PR_SET_NAME, (unsigned long)(n), 0UL, 0UL, 0UL))
#else
#define NAME_THREAD(n) ((void)0)
#endif

_Static_assert(sizeof(sq_jobx) <= sizeof(((sq_job *)0)->priv_), "sq_job.priv_ is too small");

#define X(job) SQ_JOBX(job)
#define EX_OF(x) atomic_load_explicit(&(x)->ex, memory_order_acquire)

enum { J_NEW = 0, J_WAIT_POOL, J_WAIT_PIN, J_READY, J_RUNNING, J_INLINE, J_FINISHING, J_DONE };

/* Why a job completed with kind closed. */
enum { WHY_NONE = 0, WHY_POOL_CLOSED, WHY_TX_ENDED, WHY_PIN_CLOSED };

/* How a run's connection is owned: the pool's (released after the run),
 * a pin's, or the caller's (sq_job_run_conn). */
enum { OWN_POOL, OWN_PIN, OWN_CALLER };

struct sq_pin {
  struct sq_exec *ex;
  struct sq_conn *conn;
  sq_job *head, *tail;  /* queued jobs (J_WAIT_PIN) */
  sq_job *cur;          /* the job ready or running, or NULL */
  int nflight;          /* submitted and not yet completed */
  int closing;          /* the owner closed it */
  int tx_ended;         /* a stopped run ended its transaction */
};

struct sq_exec {
  pthread_mutex_t mu;
  pthread_condattr_t cattr;
  pthread_cond_t work_cv;   /* workers: run queue or drained */
  pthread_cond_t timer_cv;  /* timer: earlier wake time or svc_stop */
  pthread_cond_t cancel_cv; /* canceller: list grew or svc_stop */
  pthread_cond_t done_cv;   /* a cancel call finished (in_cancel cleared) */
  sq_pool *pool;
  const sq_driver *drv;
  int max;                  /* workers to start: pool.max */
  int nice;                 /* nice levels each worker lowers itself by */
  int nice_given;           /* pool.worker_nice was given: a refusal is an error */
  int nice_err;             /* a worker's setpriority failed (errno), given only */

  int stopping;             /* the pool's last close began */
  int drained;              /* queues emptied: idle workers exit */
  int svc_stop;             /* timer and canceller exit */

  pthread_t *workers;
  int nworkers;
  pthread_t timer, canceller;
  int svc;                  /* bit 1: timer started, bit 2: canceller */
  pthread_t closer;         /* our thread that ran the pool's last close */
  int has_closer;

  sq_job *rq_head, *rq_tail; /* ready: each holds a connection or slot */
  sq_job *clist;             /* running jobs to cancel on the server */
  sq_job *live;              /* every job in flight */
  int nlive;
  sq_job **heap;             /* wake times; capacity >= nlive */
  int nheap, heap_cap;
};

/* The executor whose thread this is (to detect a close from inside). */
static _Thread_local struct sq_exec *tl_exec;

double sq_clock(void) { return sq_now(); }

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

struct sq_exec *sq_exec_new(sq_pool *p) {
  struct sq_exec *ex = calloc(1, sizeof *ex);
  if (!ex) return NULL;
  if (pthread_mutex_init(&ex->mu, NULL) != 0) goto fail;
  if (pthread_condattr_init(&ex->cattr) != 0) goto fail_mu;
  if (pthread_condattr_setclock(&ex->cattr, CLOCK_MONOTONIC) != 0) goto fail_attr;
  if (pthread_cond_init(&ex->work_cv, &ex->cattr) != 0) goto fail_attr;
  if (pthread_cond_init(&ex->timer_cv, &ex->cattr) != 0) goto fail_c1;
  if (pthread_cond_init(&ex->cancel_cv, &ex->cattr) != 0) goto fail_c2;
  if (pthread_cond_init(&ex->done_cv, &ex->cattr) != 0) goto fail_c3;
  ex->pool = p;
  ex->drv = sq_pool_driver(p);
  ex->max = sq_pool_config(p)->pool.max;
  if (ex->max < 1) ex->max = 1;
  ex->nice = sq_worker_nice(&sq_pool_config(p)->pool);
  ex->nice_given = sq_pool_config(p)->pool.worker_nice >= 0;
  return ex;
fail_c3:
  pthread_cond_destroy(&ex->cancel_cv);
fail_c2:
  pthread_cond_destroy(&ex->timer_cv);
fail_c1:
  pthread_cond_destroy(&ex->work_cv);
fail_attr:
  pthread_condattr_destroy(&ex->cattr);
fail_mu:
  pthread_mutex_destroy(&ex->mu);
fail:
  free(ex);
  return NULL;
}

void sq_exec_free(struct sq_exec *ex) {
  if (!ex) return;
  pthread_cond_destroy(&ex->done_cv);
  pthread_cond_destroy(&ex->cancel_cv);
  pthread_cond_destroy(&ex->timer_cv);
  pthread_cond_destroy(&ex->work_cv);
  pthread_condattr_destroy(&ex->cattr);
  pthread_mutex_destroy(&ex->mu);
  free(ex->workers);
  free(ex->heap);
  free(ex);
}

static void *worker_main(void *arg);
static void *timer_main(void *arg);
static void *canceller_main(void *arg);

/* Every executor thread leaves through here (ex->mu held). The one that
 * ran the pool's last close from a callback was detached, not joined;
 * the pool (and ex) waited for it, and may be freed as it goes. */
static void thread_exit(struct sq_exec *ex) {
  int closer = ex->has_closer && pthread_equal(ex->closer, pthread_self());
  sq_pool *p = ex->pool;
  pthread_mutex_unlock(&ex->mu);
  tl_exec = NULL;
  if (closer) sq_pool_exec_exited(p);
}

/* Starts the timer and canceller (ex->mu held). */
static int start_service(struct sq_exec *ex, sq_err *err) {
  if (!(ex->svc & 1)) {
    if (pthread_create(&ex->timer, NULL, timer_main, ex) != 0)
      return sq_err_set(err, SQ_EINTERNAL, "executor: could not start the timer thread");
    ex->svc |= 1;
  }
  if (!(ex->svc & 2)) {
    if (pthread_create(&ex->canceller, NULL, canceller_main, ex) != 0)
      return sq_err_set(err, SQ_EINTERNAL, "executor: could not start the canceller thread");
    ex->svc |= 2;
  }
  return SQ_OK;
}

/* Starts the service threads and pool.max workers (ex->mu held). Workers
 * that could not be started are tried again on the next submit; one is
 * enough to make progress. */
static int start_threads(struct sq_exec *ex, sq_err *err) {
  if (ex->nice_err) /* pool open checked it; the system changed its mind since */
    return sq_err_set(err, SQ_EUSAGE,
                      "option 'pool.worker_nice' = %d: the system refused to lower a worker thread's "
                      "priority (setpriority: %s)", ex->nice, strerror(ex->nice_err));
  int rc = start_service(ex, err);
  if (rc != SQ_OK) return rc;
  if (ex->nworkers == ex->max) return SQ_OK;
  if (!ex->workers && !(ex->workers = calloc((size_t)ex->max, sizeof *ex->workers)))
    return sq_err_set(err, SQ_ENOMEM, "out of memory (executor)");
  while (ex->nworkers < ex->max &&
         pthread_create(&ex->workers[ex->nworkers], NULL, worker_main, ex) == 0)
    ex->nworkers++;
  if (ex->nworkers == 0) return sq_err_set(err, SQ_EINTERNAL, "executor: could not start a worker thread");
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Lists and the deadline heap (ex->mu held)                            */
/* ------------------------------------------------------------------ */

static int live_add(struct sq_exec *ex, sq_job *job, sq_err *err) {
  if (ex->nlive + 1 > ex->heap_cap) {
    int cap = ex->heap_cap ? ex->heap_cap * 2 : 64;
    sq_job **h = realloc(ex->heap, (size_t)cap * sizeof *h);
    if (!h) return sq_err_set(err, SQ_ENOMEM, "out of memory (executor)");
    ex->heap = h;
    ex->heap_cap = cap;
  }
  sq_jobx *x = X(job);
  x->lprev = NULL;
  x->lnext = ex->live;
  if (ex->live) X(ex->live)->lprev = job;
  ex->live = job;
  ex->nlive++;
  return SQ_OK;
}

static void live_remove(struct sq_exec *ex, sq_job *job) {
  sq_jobx *x = X(job);
  if (x->lprev) X(x->lprev)->lnext = x->lnext;
  else ex->live = x->lnext;
  if (x->lnext) X(x->lnext)->lprev = x->lprev;
  x->lprev = x->lnext = NULL;
  ex->nlive--;
}

static void heap_set(struct sq_exec *ex, int i, sq_job *job) {
  ex->heap[i] = job;
  X(job)->heap_idx = i;
}

static void heap_up(struct sq_exec *ex, int i) {
  sq_job *job = ex->heap[i];
  double w = X(job)->wake;
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (X(ex->heap[parent])->wake <= w) break;
    heap_set(ex, i, ex->heap[parent]);
    i = parent;
  }
  heap_set(ex, i, job);
}

static void heap_down(struct sq_exec *ex, int i) {
  sq_job *job = ex->heap[i];
  double w = X(job)->wake;
  for (;;) {
    int l = 2 * i + 1, m = i;
    double mw = w;
    if (l < ex->nheap && X(ex->heap[l])->wake < mw) m = l, mw = X(ex->heap[l])->wake;
    if (l + 1 < ex->nheap && X(ex->heap[l + 1])->wake < mw) m = l + 1;
    if (m == i) break;
    heap_set(ex, i, ex->heap[m]);
    i = m;
  }
  heap_set(ex, i, job);
}

/* Capacity is guaranteed: heap_cap >= nlive >= nheap + 1 here. */
static void heap_push(struct sq_exec *ex, sq_job *job, double wake) {
  X(job)->wake = wake;
  int i = ex->nheap++;
  heap_set(ex, i, job);
  heap_up(ex, i);
  if (ex->heap[0] == job) pthread_cond_signal(&ex->timer_cv);
}

static void heap_remove(struct sq_exec *ex, sq_job *job) {
  int i = X(job)->heap_idx;
  if (i < 0) return;
  X(job)->heap_idx = -1;
  sq_job *last = ex->heap[--ex->nheap];
  if (i == ex->nheap) return;
  heap_set(ex, i, last);
  heap_up(ex, i);
  heap_down(ex, X(last)->heap_idx);
}

static void rq_push(struct sq_exec *ex, sq_job *job) {
  X(job)->next = NULL;
  if (ex->rq_tail) X(ex->rq_tail)->next = job;
  else ex->rq_head = job;
  ex->rq_tail = job;
  pthread_cond_signal(&ex->work_cv);
}

static sq_job *rq_pop(struct sq_exec *ex) {
  sq_job *job = ex->rq_head;
  if (job) {
    ex->rq_head = X(job)->next;
    if (!ex->rq_head) ex->rq_tail = NULL;
    X(job)->next = NULL;
  }
  return job;
}

static void clist_remove(struct sq_exec *ex, sq_job *job) {
  sq_jobx *x = X(job);
  if (!x->in_clist) return;
  for (sq_job **pp = &ex->clist; *pp; pp = &X(*pp)->cnext)
    if (*pp == job) {
      *pp = x->cnext;
      break;
    }
  x->cnext = NULL;
  x->in_clist = 0;
}

/* Removes a queued job from its pin's queue. */
static void pin_unlink(sq_pin *pin, sq_job *job) {
  sq_job *prev = NULL;
  for (sq_job *j = pin->head; j; prev = j, j = X(j)->next) {
    if (j != job) continue;
    if (prev) X(prev)->next = X(j)->next;
    else pin->head = X(j)->next;
    if (pin->tail == j) pin->tail = prev;
    X(j)->next = NULL;
    return;
  }
}

/* Pushes a scratch-list entry (completions made outside the lock). */
static void tpush(sq_job **list, sq_job *job) {
  X(job)->tnext = *list;
  *list = job;
}

/*
 * The one transition to DONE. The caller owns the job's completion from
 * here: it fills the results (if not done yet) and posts it, unless this
 * returns 0 - then the job finished while sq_job_submit was still busy
 * with it, and the submitter posts it.
 */
static int retire(struct sq_exec *ex, sq_job *job) {
  sq_jobx *x = X(job);
  heap_remove(ex, job);
  clist_remove(ex, job);
  live_remove(ex, job);
  x->state = J_DONE;
  if (x->pin) x->pin->nflight--;
  if (x->submitting) {
    x->post_deferred = 1;
    return 0;
  }
  return 1;
}

/* Asks for job (running) to be stopped on the server (ex->mu held). */
static void request_cancel(struct sq_exec *ex, sq_job *job) {
  sq_jobx *x = X(job);
  if (x->conn) atomic_store_explicit(&x->conn->stop, x->stop, memory_order_relaxed);
  if (!ex->drv->cancel || x->in_clist || !(ex->svc & 2)) return;
  x->in_clist = 1;
  x->cnext = ex->clist;
  ex->clist = job;
  x->cancel_at = 0;
  pthread_cond_signal(&ex->cancel_cv);
}

/* ------------------------------------------------------------------ */
/* Results and posting (no lock held)                                   */
/* ------------------------------------------------------------------ */

static void post(sq_job *job) { sq_cq_post(job->cq, job); }

/* Fills the result of a job that was stopped before it ran. */
static void set_unrun(struct sq_exec *ex, sq_job *job, int kind, int why) {
  sq_jobx *x = X(job);
  job->queued = sq_now() - x->submitted;
  job->elapsed = 0;
  switch (kind) {
  case SQ_ECANCELED:
    sq_err_set(&job->err, kind, "operation cancelled before it ran");
    break;
  case SQ_ETIMEOUT:
    sq_err_set(&job->err, kind, "operation timed out after %.3f s before it ran (waiting for %s)",
               job->queued, x->pin ? "its connection" : "a connection");
    break;
  case SQ_EPOOL_TIMEOUT:
    sq_pool_timeout_error(ex->pool, x->acq_timeout, &job->err);
    break;
  default:
    kind = SQ_ECLOSED;
    if (why == WHY_TX_ENDED)
      sq_err_set(&job->err, kind, "transaction is over: an earlier operation on it was cancelled or "
                                  "timed out, and it was rolled back");
    else if (why == WHY_PIN_CLOSED)
      sq_err_set(&job->err, kind, "connection was given up before the operation ran");
    else
      sq_err_set(&job->err, kind, "pool closed before the operation ran");
    break;
  }
  job->rc = kind;
}

/* Completes a list of jobs already retired (stopped before they ran). */
static void post_unrun(struct sq_exec *ex, sq_job *list) {
  while (list) {
    sq_job *job = list;
    list = X(job)->tnext;
    set_unrun(ex, job, X(job)->stop, X(job)->why);
    post(job);
  }
}

/* Frees a pin whose owner closed it and whose last job completed. */
static void pin_free(sq_pin *pin) {
  struct sq_conn *c = pin->conn;
  free(pin);
  if (c) sq_pool_release(c->pool, c);
}

/* A job waiting in the pool's queue that its stopper (x->stop set by the
 * caller) must unlink there: completes it when the unlink succeeded;
 * otherwise the pool served it meanwhile and the worker completes it. */
static void stop_waiter(struct sq_exec *ex, sq_job *job) {
  sq_jobx *x = X(job);
  pthread_mutex_lock(&ex->mu);
  int pool_timeout = x->stop == SQ_EPOOL_TIMEOUT;
  pthread_mutex_unlock(&ex->mu);
  if (!sq_pool_wait_remove(ex->pool, &x->w, pool_timeout)) return;
  pthread_mutex_lock(&ex->mu);
  int kind = x->stop, why = x->why, mine = retire(ex, job);
  pthread_mutex_unlock(&ex->mu);
  set_unrun(ex, job, kind, why);
  if (mine) post(job);
}

/* Rewrites err after a run that failed because it was stopped: the kind
 * becomes the stop's, the server's message and codes stay. */
static void stopped_error(sq_job *job, int kind, int sent) {
  sq_err *e = &job->err;
  char code[sizeof e->code], state[sizeof e->sqlstate], msg[700];
  memcpy(code, e->code, sizeof code);
  memcpy(state, e->sqlstate, sizeof state);
  size_t n = strnlen(e->msg, sizeof msg - 1);
  memcpy(msg, e->msg, n);
  msg[n] = '\0';
  const char *what = kind == SQ_ETIMEOUT    ? "operation timed out"
                     : kind == SQ_ECLOSED ? "pool closed while the operation ran"
                                          : "operation cancelled";
  if (kind == SQ_ETIMEOUT)
    sq_err_set(e, kind, "%s after %.3f s%s: %s", what, job->queued + job->elapsed,
               sent ? " (statement cancelled on the server)" : "", msg[0] ? msg : "stopped");
  else
    sq_err_set(e, kind, "%s%s: %s", what, sent ? " (statement cancelled on the server)" : "",
               msg[0] ? msg : "stopped");
  sq_err_native(e, code, state);
  job->rc = kind;
}

/* ------------------------------------------------------------------ */
/* Running a job                                                        */
/* ------------------------------------------------------------------ */

/*
 * After run returned: waits out a cancel in progress, then decides the
 * result and what becomes of the connection. For OWN_POOL it returns the
 * connection for the caller to release once the job is retired (or NULL
 * when the job keeps it, SQ_JOB_KEEP_CONN); a pin's or a caller's
 * connection stays, its transaction rolled back when a stopped run left
 * one open.
 */
static sq_conn *after_run(struct sq_exec *ex, sq_job *job, sq_conn *c, int rc, int own, int in_tx) {
  sq_jobx *x = X(job);
  const sq_driver *drv = c->drv;
  pthread_mutex_lock(&ex->mu);
  x->state = J_FINISHING;
  clist_remove(ex, job);
  while (x->in_cancel) pthread_cond_wait(&ex->done_cv, &ex->mu);
  int kind = x->stop, sent = x->cancel_sent;
  x->conn = NULL;
  pthread_mutex_unlock(&ex->mu);
  atomic_store_explicit(&c->stop, 0, memory_order_relaxed);

  if (rc != SQ_OK && job->err.kind == SQ_OK)
    sq_err_set(&job->err, rc, "operation failed (%s)", sq_kind_name(rc));
  job->rc = rc;
  job->canceled_on_server = sent;
  if (kind && rc != SQ_OK) stopped_error(job, kind, sent);

  int dead = sq_conn_is_dead(c);
  /* A job that keeps its connection after a successful run owns what is
   * pending on it (a cursor it opened): the keeper decides. */
  int kept = own == OWN_POOL && (job->flags & SQ_JOB_KEEP_CONN) && rc == SQ_OK;
  if (sent && !dead && !kept && drv->is_clean && !drv->is_clean(c->h)) {
    sq_conn_mark_dead(c);
    dead = 1;
  }
  if (own == OWN_POOL) {
    if (sent && !dead) sq_conn_mark_dirty(c); /* full reset before it is lent again */
    if ((job->flags & SQ_JOB_KEEP_CONN) && rc == SQ_OK && !dead) {
      job->conn = c;
      return NULL;
    }
    return c;
  }
  /* A stopped run inside a transaction - or, on a pin, a deadlock or
   * serialization failure, which ends the transaction anyway (sq_tx's
   * note_result): rolled back here, on the worker, so that the consumer
   * (a game's tick thread) never waits for the ROLLBACK's round trip. */
  int ends = kind || (own == OWN_PIN && rc == SQ_EDEADLOCK);
  if (ends && rc != SQ_OK && !dead && (in_tx || (drv->in_transaction && drv->in_transaction(c->h)))) {
    sq_err rerr;
    sq_err_clear(&rerr);
    if (!drv->rollback || drv->rollback(c->h, &rerr) != SQ_OK || sq_conn_is_dead(c)) sq_conn_mark_dead(c);
    job->tx_ended = 1;
  } else if (dead && in_tx) {
    job->tx_ended = 1;
  }
  return NULL;
}

/* A worker runs one job from the run queue. */
static void run_job(struct sq_exec *ex, sq_job *job) {
  sq_jobx *x = X(job);
  sq_pin *pin = x->pin;
  sq_pool *p = ex->pool;
  sq_conn *c = NULL, *give_back = NULL;
  int rc = SQ_OK, ran = 0, kind, why;

  pthread_mutex_lock(&ex->mu);
  if (x->stop == SQ_EPOOL_TIMEOUT) x->stop = 0; /* served right at its acquire deadline: it counts */
  if (!x->stop && job->deadline > 0 && sq_now() >= job->deadline) x->stop = SQ_ETIMEOUT;
  if (!x->stop && ex->stopping) x->stop = SQ_ECLOSED, x->why = WHY_POOL_CLOSED;
  kind = x->stop;
  why = x->why;
  x->state = kind ? J_FINISHING : J_RUNNING;
  pthread_mutex_unlock(&ex->mu);

  if (!kind) {
    if (pin) {
      c = pin->conn;
    } else {
      rc = sq_pool_ready(p, x->w.conn, &c, &job->err); /* the slot is given up on failure */
      x->w.conn = NULL;
    }
    pthread_mutex_lock(&ex->mu);
    if (rc == SQ_OK) {
      kind = x->stop;
      why = x->why;
      if (!kind) x->conn = c;
    }
    x->state = kind || rc ? J_FINISHING : J_RUNNING;
    pthread_mutex_unlock(&ex->mu);
    if (rc != SQ_OK) {
      job->rc = rc;
      job->queued = sq_now() - x->submitted;
    }
  }
  if (kind) {
    /* Stopped before running: give back what the pool granted. */
    if (!pin) {
      if (c) sq_pool_release(p, c);
      else if (x->w.conn) sq_pool_release(p, x->w.conn);
      else sq_pool_slot_return(p);
      x->w.conn = NULL;
    }
    set_unrun(ex, job, kind, why);
  } else if (rc == SQ_OK) {
    int in_tx = pin && c->drv->in_transaction && c->drv->in_transaction(c->h);
    double t0 = sq_now();
    job->queued = t0 - x->submitted;
    job->waited = x->served > 0 ? x->served - x->submitted : 0;
    rc = job->run(job, c, &job->err);
    job->elapsed = sq_now() - t0;
    give_back = after_run(ex, job, c, rc, pin ? OWN_PIN : OWN_POOL, in_tx);
    ran = 1;
  }

  /* Retire it; a pin moves on to its next job (or ends). */
  sq_job *unrun = NULL;
  int free_pin = 0;
  pthread_mutex_lock(&ex->mu);
  int mine = retire(ex, job);
  if (pin) {
    pin->cur = NULL;
    if (ran && job->tx_ended) pin->tx_ended = 1;
    if (pin->tx_ended || ex->stopping) {
      while (pin->head) {
        sq_job *j = pin->head;
        pin_unlink(pin, j);
        if (!X(j)->stop) {
          X(j)->stop = SQ_ECLOSED;
          X(j)->why = pin->tx_ended ? WHY_TX_ENDED : WHY_POOL_CLOSED;
        }
        retire(ex, j);
        tpush(&unrun, j);
      }
    } else if (pin->head) {
      sq_job *j = pin->head;
      pin_unlink(pin, j);
      X(j)->state = J_READY;
      pin->cur = j;
      rq_push(ex, j);
    }
    free_pin = pin->closing && pin->nflight == 0;
  }
  pthread_mutex_unlock(&ex->mu);
  if (give_back) sq_pool_release(p, give_back);
  if (free_pin) pin_free(pin);
  if (mine) post(job);
  post_unrun(ex, unrun);
}

#ifdef __linux__
int sq_thread_nice(int n) {
  if (n <= 0) return 0;
  errno = 0;
  int cur = getpriority(PRIO_PROCESS, 0); /* 0: the calling thread (Linux) */
  if (cur == -1 && errno) return errno;
  int want = cur + n > 19 ? 19 : cur + n;
  if (want <= cur) return 0;
  return setpriority(PRIO_PROCESS, 0, want) == 0 ? 0 : errno;
}
#else
int sq_thread_nice(int n) { return n > 0 ? ENOSYS : 0; }
#endif

static void *worker_main(void *arg) {
  NAME_THREAD("sqorm-worker");
  struct sq_exec *ex = arg;
  tl_exec = ex;
  /* pool.worker_nice: below the thread that started it (the timer and
   * canceller keep that priority, so deadlines and cancels stay on time) */
  int nice_err = sq_thread_nice(ex->nice);
  pthread_mutex_lock(&ex->mu);
  if (nice_err && ex->nice_given && !ex->nice_err) ex->nice_err = nice_err;
  for (;;) {
    while (!ex->rq_head && !ex->drained) pthread_cond_wait(&ex->work_cv, &ex->mu);
    sq_job *job = rq_pop(ex);
    if (!job) break;
    pthread_mutex_unlock(&ex->mu);
    run_job(ex, job);
    pthread_mutex_lock(&ex->mu);
  }
  thread_exit(ex);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The timer: deadlines and acquire timeouts                            */
/* ------------------------------------------------------------------ */

static struct timespec abs_time(double t) {
  struct timespec ts;
  if (t > 1e12) t = 1e12;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  if (ts.tv_nsec < 0) ts.tv_nsec = 0;
  return ts;
}

/* What an expired wake time means for a job that waits for a connection. */
static int wait_expiry(sq_job *job, double now) {
  sq_jobx *x = X(job);
  if (job->deadline > 0 && job->deadline <= now) return SQ_ETIMEOUT;
  if (x->acq_expiry > 0 && x->acq_expiry <= now) return SQ_EPOOL_TIMEOUT;
  return 0;
}

static void *timer_main(void *arg) {
  NAME_THREAD("sqorm-timer");
  struct sq_exec *ex = arg;
  tl_exec = ex;
  pthread_mutex_lock(&ex->mu);
  while (!ex->svc_stop) {
    double now = sq_now();
    sq_job *waiters = NULL, *unrun = NULL;
    while (ex->nheap > 0 && X(ex->heap[0])->wake <= now) {
      sq_job *job = ex->heap[0];
      sq_jobx *x = X(job);
      heap_remove(ex, job);
      switch (x->state) {
      case J_NEW: /* sq_job_submit is between its locks: it sees stop and acts */
        if (!x->stop) x->stop = wait_expiry(job, now);
        break;
      case J_WAIT_POOL:
        if (!x->stop && (x->stop = wait_expiry(job, now)) != 0) tpush(&waiters, job);
        break;
      case J_WAIT_PIN:
        if (!x->stop) x->stop = SQ_ETIMEOUT;
        pin_unlink(x->pin, job);
        retire(ex, job);
        tpush(&unrun, job);
        break;
      case J_READY:
        if (job->deadline > 0 && job->deadline <= now) {
          if (!x->stop) x->stop = SQ_ETIMEOUT; /* the worker completes it */
        } else if (job->deadline > 0) {
          heap_push(ex, job, job->deadline); /* was waiting on the acquire timeout */
        }
        break;
      case J_RUNNING:
      case J_INLINE:
        if (!x->stop) {
          x->stop = SQ_ETIMEOUT;
          request_cancel(ex, job);
        }
        break;
      default:
        break;
      }
    }
    if (waiters || unrun) {
      pthread_mutex_unlock(&ex->mu);
      while (waiters) {
        sq_job *job = waiters;
        waiters = X(job)->tnext;
        stop_waiter(ex, job);
      }
      post_unrun(ex, unrun);
      pthread_mutex_lock(&ex->mu);
      continue;
    }
    if (ex->nheap > 0) {
      struct timespec ts = abs_time(X(ex->heap[0])->wake);
      pthread_cond_timedwait(&ex->timer_cv, &ex->mu, &ts);
    } else {
      pthread_cond_wait(&ex->timer_cv, &ex->mu);
    }
  }
  thread_exit(ex);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The canceller: server-side cancels, repeated while the job runs      */
/* ------------------------------------------------------------------ */

/* Seconds before the next attempt: a cancel can land between two
 * statements (or before the first reached the server) and be ignored. */
static double cancel_backoff(int tries) {
  double d = 0.1;
  for (int i = 1; i < tries && d < 1.0; i++) d *= 2;
  return d > 1.0 ? 1.0 : d;
}

static void *canceller_main(void *arg) {
  NAME_THREAD("sqorm-cancel");
  struct sq_exec *ex = arg;
  tl_exec = ex;
  pthread_mutex_lock(&ex->mu);
  while (!ex->svc_stop) {
    double now = sq_now(), next = 0;
    sq_job *pick = NULL;
    for (sq_job *j = ex->clist; j; j = X(j)->cnext) {
      sq_jobx *x = X(j);
      if (!x->conn || (x->state != J_RUNNING && x->state != J_INLINE)) {
        /* not connected yet (the worker opens it): look again soon */
        if (x->cancel_at <= now) x->cancel_at = now + 0.05;
      } else if (x->cancel_at <= now) {
        pick = j;
        break;
      }
      if (!next || x->cancel_at < next) next = x->cancel_at;
    }
    if (pick) {
      sq_jobx *x = X(pick);
      sq_dconn *h = x->conn->h;
      x->in_cancel = 1;
      pthread_mutex_unlock(&ex->mu);
      sq_err cerr;
      sq_err_clear(&cerr);
      (void)ex->drv->cancel(h, &cerr);
      pthread_mutex_lock(&ex->mu);
      x->in_cancel = 0;
      x->cancel_sent = 1;
      x->cancel_tries++;
      x->cancel_at = sq_now() + cancel_backoff(x->cancel_tries);
      pthread_cond_broadcast(&ex->done_cv);
      continue;
    }
    if (next > 0) {
      struct timespec ts = abs_time(next);
      pthread_cond_timedwait(&ex->cancel_cv, &ex->mu, &ts);
    } else {
      pthread_cond_wait(&ex->cancel_cv, &ex->mu);
    }
  }
  thread_exit(ex);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Shutdown (the pool's last close)                                     */
/* ------------------------------------------------------------------ */

int sq_exec_shutdown(struct sq_exec *ex) {
  sq_job *waiters = NULL, *unrun = NULL;
  pthread_mutex_lock(&ex->mu);
  if (ex->stopping) {
    pthread_mutex_unlock(&ex->mu);
    return 0;
  }
  ex->stopping = 1;
  for (sq_job *job = ex->live, *nx; job; job = nx) {
    sq_jobx *x = X(job);
    nx = x->lnext;
    switch (x->state) {
    case J_NEW:
      if (!x->stop) x->stop = SQ_ECLOSED, x->why = WHY_POOL_CLOSED;
      break;
    case J_WAIT_POOL:
      if (!x->stop) {
        x->stop = SQ_ECLOSED, x->why = WHY_POOL_CLOSED;
        tpush(&waiters, job);
      }
      break;
    case J_WAIT_PIN:
      x->stop = SQ_ECLOSED, x->why = WHY_POOL_CLOSED;
      pin_unlink(x->pin, job);
      retire(ex, job);
      tpush(&unrun, job);
      break;
    case J_READY:
      if (!x->stop || x->stop == SQ_EPOOL_TIMEOUT) x->stop = SQ_ECLOSED, x->why = WHY_POOL_CLOSED;
      break;
    case J_RUNNING:
    case J_INLINE:
      if (!x->stop) {
        x->stop = SQ_ECLOSED, x->why = WHY_POOL_CLOSED;
        request_cancel(ex, job);
      }
      break;
    default:
      break;
    }
  }
  pthread_mutex_unlock(&ex->mu);
  while (waiters) {
    sq_job *job = waiters;
    waiters = X(job)->tnext;
    stop_waiter(ex, job);
  }
  post_unrun(ex, unrun);

  /* Workers finish what is ready or running (each holds a connection),
   * then exit; the canceller keeps stopping running statements meanwhile. */
  pthread_t self = pthread_self();
  int on_own_thread = tl_exec == ex;
  pthread_mutex_lock(&ex->mu);
  if (on_own_thread) ex->closer = self, ex->has_closer = 1;
  ex->drained = 1;
  pthread_cond_broadcast(&ex->work_cv);
  int nworkers = ex->nworkers, svc = ex->svc;
  pthread_mutex_unlock(&ex->mu);
  for (int i = 0; i < nworkers; i++) {
    if (on_own_thread && pthread_equal(ex->workers[i], self)) pthread_detach(self);
    else pthread_join(ex->workers[i], NULL);
  }
  pthread_mutex_lock(&ex->mu);
  ex->svc_stop = 1;
  pthread_cond_broadcast(&ex->timer_cv);
  pthread_cond_broadcast(&ex->cancel_cv);
  pthread_mutex_unlock(&ex->mu);
  if (svc & 1) {
    if (on_own_thread && pthread_equal(ex->timer, self)) pthread_detach(self);
    else pthread_join(ex->timer, NULL);
  }
  if (svc & 2) {
    if (on_own_thread && pthread_equal(ex->canceller, self)) pthread_detach(self);
    else pthread_join(ex->canceller, NULL);
  }
  /* One of our threads is closing the pool from a callback: it returns
   * into its loop, which ends, and the pool must outlive that. */
  return on_own_thread;
}


/* ------------------------------------------------------------------ */
/* Public API: jobs                                                     */
/* ------------------------------------------------------------------ */

void sq_job_init(sq_job *job, sq_job_fn run, void *ud) {
  if (!job) return;
  memset(job, 0, sizeof *job);
  job->run = run;
  job->ud = ud;
  job->deadline = 0;
  job->acquire_timeout = -1;
  X(job)->heap_idx = -1;
  atomic_init(&X(job)->ex, NULL);
}

void sq_job_set_timeout(sq_job *job, double seconds) {
  if (job) job->deadline = seconds > 0 ? sq_now() + seconds : 0;
}

/* Resets a job's results and private state for a new run. ex is stored
 * last (release), so a thread that sees it in sq_job_cancel sees the
 * rest; the field itself is never overwritten by a plain write. */
static void job_prepare(struct sq_exec *ex, sq_job *job, sq_pin *pin, int state) {
  sq_jobx *x = X(job);
  job->rc = SQ_OK;
  sq_err_clear(&job->err);
  job->queued = job->elapsed = job->waited = 0;
  job->conn = NULL;
  job->tx_ended = 0;
  job->canceled_on_server = 0;
  memset(&x->w, 0, sizeof *x - offsetof(sq_jobx, w));
  x->pin = pin;
  x->heap_idx = -1;
  x->state = state;
  x->submitted = sq_now();
  atomic_store_explicit(&x->ex, ex, memory_order_release);
}

static void on_served(sq_pwait *w); /* pool.c calls it under the pool lock */

int sq_job_submit(sq_pool *p, sq_job *job, sq_err *err) {
  if (!p || !job || !job->run || !job->cq)
    return sq_err_set(err, SQ_EUSAGE, "sq_job_submit: bad arguments (pool, job, run and cq are required)");
  struct sq_exec *ex = sq_pool_executor(p, err);
  if (!ex) return err->kind;
  double acq = job->acquire_timeout >= 0 ? job->acquire_timeout : sq_pool_config(p)->pool.acquire_timeout;
  if (!(acq >= 0)) acq = 0;
  job_prepare(ex, job, NULL, J_NEW);
  sq_jobx *x = X(job);
  x->w.served = on_served;
  x->w.h = job->holder;
  x->acq_timeout = acq;
  x->acq_expiry = acq > 0 && acq < 1e9 ? x->submitted + acq : 0;

  pthread_mutex_lock(&ex->mu);
  int rc = ex->stopping ? sq_err_set(err, SQ_ECLOSED, "pool is closed") : start_threads(ex, err);
  if (rc == SQ_OK) rc = live_add(ex, job, err);
  if (rc != SQ_OK) {
    pthread_mutex_unlock(&ex->mu);
    return rc;
  }
  sq_cq_attach(job->cq);
  x->submitting = 1;
  if (job->deadline > 0 && job->deadline <= x->submitted) x->stop = SQ_ETIMEOUT; /* already late */
  double wake = x->acq_expiry;
  if (job->deadline > 0 && (!wake || job->deadline < wake)) wake = job->deadline;
  if (wake > 0 && !x->stop) heap_push(ex, job, wake);
  int late = x->stop;
  pthread_mutex_unlock(&ex->mu);

  struct sq_conn *conn = NULL;
  int r = late ? 0 : sq_pool_wait_async(p, &x->w, acq > 0, &conn);
  /* r: 1 got a connection or slot, 2 queued, 0 none and no wait (or
   * already late), -1 the pool is closed. */

  pthread_mutex_lock(&ex->mu);
  x->submitting = 0;
  int deliver = x->post_deferred; /* it already ran and finished on a worker */
  int unrun = 0, stop_queued = 0, granted = 0;
  if (r == 1 && ex->drained) {
    /* the pool's last close raced with this submit: its workers are gone */
    x->stop = SQ_ECLOSED, x->why = WHY_POOL_CLOSED;
    r = 0;
    granted = 1;
  }
  if (r == 1) {
    x->w.conn = conn;
    x->state = J_READY;
    rq_push(ex, job); /* a stop set meanwhile is seen by the worker, which gives the grant back */
  } else if (r == 2) {
    if (x->state == J_NEW) x->state = J_WAIT_POOL; /* else served already (J_READY or later) */
    stop_queued = x->state == J_WAIT_POOL && x->stop;
  } else {
    if (!x->stop) x->stop = r < 0 ? SQ_ECLOSED : SQ_EPOOL_TIMEOUT, x->why = WHY_POOL_CLOSED;
    retire(ex, job);
    deliver = unrun = 1;
  }
  int kind = x->stop, why = x->why;
  pthread_mutex_unlock(&ex->mu);

  if (granted) {
    if (conn) sq_pool_release(p, conn);
    else sq_pool_slot_return(p);
  }
  if (stop_queued) stop_waiter(ex, job); /* stopped (timer, cancel, close) before it was queued */
  if (deliver) {
    if (unrun) set_unrun(ex, job, kind, why);
    post(job);
  }
  sq_err_clear(err);
  return SQ_OK;
}

/* The pool served a waiting job (pool lock held). */
static void on_served(sq_pwait *w) {
  sq_job *job = (sq_job *)(void *)((char *)w - offsetof(sq_jobx, w) - offsetof(sq_job, priv_));
  struct sq_exec *ex = EX_OF(X(job));
  pthread_mutex_lock(&ex->mu);
  X(job)->state = J_READY;
  X(job)->served = sq_now();
  rq_push(ex, job);
  pthread_mutex_unlock(&ex->mu);
}

int sq_job_cancel(sq_job *job) {
  if (!job) return 0;
  sq_jobx *x = X(job);
  struct sq_exec *ex = EX_OF(x);
  if (!ex) return 0;
  int r = 1, waiter = 0, done = 0, free_pin = 0;
  sq_pin *pin = x->pin;
  pthread_mutex_lock(&ex->mu);
  switch (x->state) {
  case J_NEW:
    if (!x->stop) x->stop = SQ_ECANCELED;
    break;
  case J_WAIT_POOL:
    if (!x->stop) waiter = 1;
    if (!x->stop || x->stop == SQ_EPOOL_TIMEOUT) x->stop = SQ_ECANCELED;
    break;
  case J_WAIT_PIN:
    x->stop = SQ_ECANCELED;
    pin_unlink(pin, job);
    done = retire(ex, job);
    free_pin = pin->closing && pin->nflight == 0;
    break;
  case J_READY:
    if (!x->stop || x->stop == SQ_EPOOL_TIMEOUT) x->stop = SQ_ECANCELED;
    break;
  case J_RUNNING:
  case J_INLINE:
    if (!x->stop) {
      sq_err e;
      x->stop = SQ_ECANCELED;
      (void)start_service(ex, &e); /* a blocking run may not have started it */
      request_cancel(ex, job);
    }
    break;
  default:
    r = 0;
    break;
  }
  pthread_mutex_unlock(&ex->mu);
  if (waiter) stop_waiter(ex, job);
  if (done) {
    set_unrun(ex, job, SQ_ECANCELED, WHY_NONE);
    post(job);
  }
  if (free_pin) pin_free(pin);
  return r;
}

/* ------------------------------------------------------------------ */
/* Blocking mode                                                        */
/* ------------------------------------------------------------------ */

static int run_inline(struct sq_exec *ex, sq_conn *c, sq_job *job, int own) {
  sq_jobx *x = X(job);
  double submitted = x->submitted, waited = job->waited;
  job_prepare(ex, job, NULL, J_INLINE);
  x->submitted = submitted;
  job->waited = waited;
  pthread_mutex_lock(&ex->mu);
  int rc = ex->stopping ? sq_err_set(&job->err, SQ_ECLOSED, "pool is closed") : SQ_OK;
  if (rc == SQ_OK && job->deadline > 0) rc = start_service(ex, &job->err);
  if (rc == SQ_OK) rc = live_add(ex, job, &job->err);
  if (rc != SQ_OK) {
    pthread_mutex_unlock(&ex->mu);
    job->rc = rc;
    if (own == OWN_POOL) sq_pool_release(c->pool, c);
    return rc;
  }
  x->conn = c;
  double now = sq_now();
  if (job->deadline > 0) {
    if (job->deadline <= now) x->stop = SQ_ETIMEOUT;
    else heap_push(ex, job, job->deadline);
  }
  int kind = x->stop;
  pthread_mutex_unlock(&ex->mu);

  if (kind) {
    pthread_mutex_lock(&ex->mu);
    x->conn = NULL;
    retire(ex, job);
    pthread_mutex_unlock(&ex->mu);
    if (own == OWN_POOL) sq_pool_release(c->pool, c);
    set_unrun(ex, job, kind, WHY_NONE);
    return job->rc;
  }
  int in_tx = own != OWN_POOL && c->drv->in_transaction && c->drv->in_transaction(c->h);
  job->queued = now - x->submitted;
  rc = job->run(job, c, &job->err);
  job->elapsed = sq_now() - now;
  sq_conn *give_back = after_run(ex, job, c, rc, own, in_tx);
  pthread_mutex_lock(&ex->mu);
  retire(ex, job);
  pthread_mutex_unlock(&ex->mu);
  if (give_back) sq_pool_release(give_back->pool, give_back); /* last: it may free the pool */
  return job->rc;
}

int sq_job_run(sq_pool *p, sq_job *job) {
  if (!job) return SQ_EUSAGE;
  double t0 = sq_now();
  job_prepare(NULL, job, NULL, J_NEW);
  X(job)->submitted = t0;
  if (!p || !job->run) return job->rc = sq_err_set(&job->err, SQ_EUSAGE, "sq_job_run: bad arguments");
  struct sq_exec *ex = sq_pool_executor(p, &job->err);
  if (!ex) return job->rc = job->err.kind;
  double t = job->acquire_timeout >= 0 ? job->acquire_timeout : sq_pool_config(p)->pool.acquire_timeout;
  int by_deadline = 0;
  if (job->deadline > 0) {
    double left = job->deadline - t0;
    if (left <= 0) {
      atomic_store_explicit(&X(job)->ex, ex, memory_order_release);
      set_unrun(ex, job, SQ_ETIMEOUT, WHY_NONE);
      return job->rc;
    }
    if (left < t) t = left, by_deadline = 1;
  }
  sq_conn *c = NULL;
  double waited = 0;
  int rc = sq_pool_acquire_job(p, t, job->holder, (job->flags & SQ_JOB_FRESH_CONN) != 0, &waited, &c, &job->err);
  job->waited = waited;
  if (rc != SQ_OK) {
    job->queued = sq_now() - t0;
    if (rc == SQ_EPOOL_TIMEOUT && by_deadline)
      rc = sq_err_set(&job->err, SQ_ETIMEOUT, "operation timed out after %.3f s before it ran (waiting for a connection)",
                      job->queued);
    return job->rc = rc;
  }
  return run_inline(ex, c, job, OWN_POOL);
}

int sq_job_run_conn(sq_conn *c, sq_job *job) {
  if (!job) return SQ_EUSAGE;
  job_prepare(NULL, job, NULL, J_NEW);
  if (!c || !c->pool || !job->run) return job->rc = sq_err_set(&job->err, SQ_EUSAGE, "sq_job_run_conn: bad arguments");
  struct sq_exec *ex = sq_pool_executor(c->pool, &job->err);
  if (!ex) return job->rc = job->err.kind;
  return run_inline(ex, c, job, OWN_CALLER);
}

/* ------------------------------------------------------------------ */
/* Pins                                                                 */
/* ------------------------------------------------------------------ */

int sq_pin_new(sq_conn *c, sq_pin **out, sq_err *err) {
  if (out) *out = NULL;
  if (!c || !c->pool || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pin_new: bad arguments");
  struct sq_exec *ex = sq_pool_executor(c->pool, err);
  if (!ex) return err->kind;
  sq_pin *pin = calloc(1, sizeof *pin);
  if (!pin) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  pin->ex = ex;
  pin->conn = c;
  *out = pin;
  sq_err_clear(err);
  return SQ_OK;
}

int sq_pin_submit(sq_pin *pin, sq_job *job, sq_err *err) {
  if (!pin || !job || !job->run || !job->cq)
    return sq_err_set(err, SQ_EUSAGE, "sq_pin_submit: bad arguments (pin, job, run and cq are required)");
  struct sq_exec *ex = pin->ex;
  job_prepare(ex, job, pin, J_NEW);
  sq_jobx *x = X(job);
  pthread_mutex_lock(&ex->mu);
  int rc = SQ_OK;
  if (ex->stopping) rc = sq_err_set(err, SQ_ECLOSED, "pool is closed");
  else if (pin->closing) rc = sq_err_set(err, SQ_EUSAGE, "sq_pin_submit: the pin is closed");
  else if (pin->tx_ended)
    rc = sq_err_set(err, SQ_ECLOSED, "transaction is over: an earlier operation on it was cancelled "
                                     "or timed out, and it was rolled back");
  if (rc == SQ_OK) rc = start_threads(ex, err);
  if (rc == SQ_OK) rc = live_add(ex, job, err);
  if (rc != SQ_OK) {
    pthread_mutex_unlock(&ex->mu);
    return rc;
  }
  sq_cq_attach(job->cq);
  pin->nflight++;
  int late = job->deadline > 0 && job->deadline <= x->submitted;
  if (late) {
    x->stop = SQ_ETIMEOUT;
    retire(ex, job);
  } else if (!pin->cur) {
    x->state = J_READY;
    pin->cur = job;
    rq_push(ex, job);
    if (job->deadline > 0) heap_push(ex, job, job->deadline);
  } else {
    x->state = J_WAIT_PIN;
    x->next = NULL;
    if (pin->tail) X(pin->tail)->next = job;
    else pin->head = job;
    pin->tail = job;
    if (job->deadline > 0) heap_push(ex, job, job->deadline);
  }
  pthread_mutex_unlock(&ex->mu);
  if (late) {
    set_unrun(ex, job, SQ_ETIMEOUT, WHY_NONE);
    post(job);
  }
  sq_err_clear(err);
  return SQ_OK;
}

sq_conn *sq_pin_conn(sq_pin *pin) { return pin ? pin->conn : NULL; }

int sq_pin_pending(sq_pin *pin) {
  if (!pin) return 0;
  pthread_mutex_lock(&pin->ex->mu);
  int n = pin->nflight;
  pthread_mutex_unlock(&pin->ex->mu);
  return n;
}

int sq_pin_tx_ended(sq_pin *pin) {
  if (!pin) return 0;
  pthread_mutex_lock(&pin->ex->mu);
  int n = pin->tx_ended;
  pthread_mutex_unlock(&pin->ex->mu);
  return n;
}

void sq_pin_close(sq_pin *pin, int cancel) {
  if (!pin) return;
  struct sq_exec *ex = pin->ex;
  sq_job *unrun = NULL;
  pthread_mutex_lock(&ex->mu);
  pin->closing = 1;
  if (cancel) {
    while (pin->head) {
      sq_job *j = pin->head;
      pin_unlink(pin, j);
      X(j)->stop = SQ_ECANCELED;
      retire(ex, j);
      tpush(&unrun, j);
    }
    sq_job *cur = pin->cur;
    if (cur && !X(cur)->stop) {
      X(cur)->stop = SQ_ECANCELED;
      if (X(cur)->state == J_RUNNING) request_cancel(ex, cur);
    }
  }
  int free_now = pin->nflight == 0;
  pthread_mutex_unlock(&ex->mu);
  post_unrun(ex, unrun);
  if (free_now) pin_free(pin); /* may free the pool (and ex) when it was closed */
}

int sq_pin_detach(sq_pin *pin, sq_conn **out, sq_err *err) {
  if (out) *out = NULL;
  if (!pin || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pin_detach: bad arguments");
  pthread_mutex_lock(&pin->ex->mu);
  int busy = pin->nflight > 0 || pin->closing;
  pthread_mutex_unlock(&pin->ex->mu);
  if (busy) return sq_err_set(err, SQ_EUSAGE, "sq_pin_detach: jobs are still in flight on this pin");
  *out = pin->conn;
  free(pin);
  sq_err_clear(err);
  return SQ_OK;
}
