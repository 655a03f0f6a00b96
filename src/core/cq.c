/*
 * cq.c - completion queues: where async jobs land when they complete.
 *
 * One queue per consumer (the binding makes one per lua_State; a C host
 * one per event loop). Workers post, the consumer pops; the queue is the
 * only thing they share, so a pool shared by many consumers never hands
 * one consumer another's completion.
 *
 *   Lifetime. The queue is reference-counted: the consumer holds one
 *   reference until sq_cq_close, and every job in flight holds one from
 *   submit until it is posted, so a worker never posts into freed
 *   memory, however the consumer and the workers interleave.
 *
 *   Close. After sq_cq_close nothing is posted: what waited to be
 *   popped, and every job that completes later, goes to the discard
 *   callback (after a connection the job kept is released), so the
 *   consumer's memory is freed and no connection leaks. sq_cq_close
 *   waits for notify calls in progress, so the consumer may free their
 *   argument right after it.
 *
 *   Readiness. The fd is readable exactly while completions wait: it is
 *   signalled when the queue goes from empty to non-empty and drained
 *   when it goes back to empty, both under the queue's lock, so the
 *   level always matches the count (an eventfd on Linux, a non-blocking
 *   pipe elsewhere).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/eventfd.h>
#define SQ_CQ_EVENTFD 1
#endif

struct sq_cq {
  pthread_mutex_t mu;
  pthread_condattr_t cattr;
  pthread_cond_t cv;       /* a completion arrived; a notify call ended */
  int refs;                /* the consumer's (until close) + one per job in flight */
  int inflight;            /* attached and not yet popped or discarded */
  sq_job *head, *tail;     /* completed, waiting to be popped */
  int n;
  int closed;
  int notifying;           /* notify calls in progress */
  int rfd, wfd;            /* the same eventfd, or a pipe's two ends */
  sq_cq_notify_fn notify;
  void *notify_ud;
  sq_cq_discard_fn discard;
  void *discard_ud;
};

static void fd_signal(sq_cq *cq) {
#ifdef SQ_CQ_EVENTFD
  uint64_t one = 1;
  while (write(cq->wfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
#else
  char b = 1;
  while (write(cq->wfd, &b, 1) < 0 && errno == EINTR) {
  }
#endif
}

static void fd_drain(sq_cq *cq) {
#ifdef SQ_CQ_EVENTFD
  uint64_t v;
  while (read(cq->rfd, &v, sizeof v) < 0 && errno == EINTR) {
  }
#else
  char buf[64];
  for (;;) {
    ssize_t n = read(cq->rfd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    break;
  }
#endif
}

static int open_fds(sq_cq *cq) {
#ifdef SQ_CQ_EVENTFD
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return -1;
  cq->rfd = cq->wfd = fd;
#else
  int fds[2];
  if (pipe(fds) != 0) return -1;
  for (int i = 0; i < 2; i++) {
    fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    fcntl(fds[i], F_SETFD, fcntl(fds[i], F_GETFD) | FD_CLOEXEC);
  }
  cq->rfd = fds[0];
  cq->wfd = fds[1];
#endif
  return 0;
}

int sq_cq_new(sq_cq **out, sq_err *err) {
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_cq_new: bad arguments");
  *out = NULL;
  sq_cq *cq = calloc(1, sizeof *cq);
  if (!cq) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  cq->rfd = cq->wfd = -1;
  if (pthread_mutex_init(&cq->mu, NULL) != 0) goto fail;
  if (pthread_condattr_init(&cq->cattr) != 0) goto fail_mu;
  if (pthread_condattr_setclock(&cq->cattr, CLOCK_MONOTONIC) != 0 ||
      pthread_cond_init(&cq->cv, &cq->cattr) != 0)
    goto fail_attr;
  if (open_fds(cq) != 0) {
    pthread_cond_destroy(&cq->cv);
    pthread_condattr_destroy(&cq->cattr);
    pthread_mutex_destroy(&cq->mu);
    free(cq);
    return sq_err_set(err, SQ_EINTERNAL, "completion queue: could not create its file descriptor (%s)",
                      strerror(errno));
  }
  cq->refs = 1;
  *out = cq;
  sq_err_clear(err);
  return SQ_OK;
fail_attr:
  pthread_condattr_destroy(&cq->cattr);
fail_mu:
  pthread_mutex_destroy(&cq->mu);
fail:
  free(cq);
  return sq_err_set(err, SQ_EINTERNAL, "completion queue: could not create its lock");
}

static void cq_free(sq_cq *cq) {
  if (cq->rfd >= 0) close(cq->rfd);
  if (cq->wfd >= 0 && cq->wfd != cq->rfd) close(cq->wfd);
  pthread_cond_destroy(&cq->cv);
  pthread_condattr_destroy(&cq->cattr);
  pthread_mutex_destroy(&cq->mu);
  free(cq);
}

/* Drops a reference (cq->mu not held). */
static void cq_unref(sq_cq *cq) {
  pthread_mutex_lock(&cq->mu);
  int last = --cq->refs == 0;
  pthread_mutex_unlock(&cq->mu);
  if (last) cq_free(cq);
}

void sq_cq_attach(sq_cq *cq) {
  pthread_mutex_lock(&cq->mu);
  cq->refs++;
  cq->inflight++;
  pthread_mutex_unlock(&cq->mu);
}

/* A job handed to the discard callback: its connection goes back first. */
static void discard_job(sq_job *job, sq_cq_discard_fn fn, void *ud) {
  if (job->conn) {
    sq_conn *c = job->conn;
    job->conn = NULL;
    sq_pool_release(c->pool, c);
  }
  if (fn) fn(job, ud);
}

void sq_cq_post(sq_cq *cq, sq_job *job) {
  sq_cq_notify_fn notify = NULL;
  sq_cq_discard_fn discard = NULL;
  void *ud = NULL;
  pthread_mutex_lock(&cq->mu);
  int closed = cq->closed;
  if (!closed) {
    SQ_JOBX(job)->next = NULL;
    if (cq->tail) SQ_JOBX(cq->tail)->next = job;
    else cq->head = job;
    cq->tail = job;
    if (++cq->n == 1) fd_signal(cq);
    pthread_cond_broadcast(&cq->cv);
    notify = cq->notify;
    ud = cq->notify_ud;
    if (notify) cq->notifying++;
  } else {
    cq->inflight--;
    discard = cq->discard;
    ud = cq->discard_ud;
  }
  pthread_mutex_unlock(&cq->mu);
  /* From here the consumer may pop and free job: don't touch it. */
  if (closed) {
    discard_job(job, discard, ud);
  } else if (notify) {
    notify(ud);
    pthread_mutex_lock(&cq->mu);
    if (--cq->notifying == 0) pthread_cond_broadcast(&cq->cv);
    pthread_mutex_unlock(&cq->mu);
  }
  cq_unref(cq);
}

void sq_cq_set_notify(sq_cq *cq, sq_cq_notify_fn fn, void *ud) {
  if (!cq) return;
  pthread_mutex_lock(&cq->mu);
  cq->notify = fn;
  cq->notify_ud = ud;
  pthread_mutex_unlock(&cq->mu);
}

void sq_cq_set_discard(sq_cq *cq, sq_cq_discard_fn fn, void *ud) {
  if (!cq) return;
  pthread_mutex_lock(&cq->mu);
  cq->discard = fn;
  cq->discard_ud = ud;
  pthread_mutex_unlock(&cq->mu);
}

int sq_cq_fd(sq_cq *cq) { return cq ? cq->rfd : -1; }

sq_job *sq_cq_pop(sq_cq *cq) {
  if (!cq) return NULL;
  pthread_mutex_lock(&cq->mu);
  sq_job *job = cq->head;
  if (job) {
    cq->head = SQ_JOBX(job)->next;
    if (!cq->head) cq->tail = NULL;
    SQ_JOBX(job)->next = NULL;
    cq->inflight--;
    if (--cq->n == 0) fd_drain(cq);
  }
  pthread_mutex_unlock(&cq->mu);
  return job;
}

int sq_cq_wait(sq_cq *cq, double timeout) {
  if (!cq) return 0;
  struct timespec ts;
  int forever = !(timeout >= 0) || timeout >= 1e9;
  if (!forever) {
    double t = sq_now() + timeout;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&cq->mu);
  while (cq->n == 0 && !cq->closed) {
    if (forever) {
      pthread_cond_wait(&cq->cv, &cq->mu);
    } else if (pthread_cond_timedwait(&cq->cv, &cq->mu, &ts) == ETIMEDOUT) {
      break;
    }
  }
  int r = cq->n > 0;
  pthread_mutex_unlock(&cq->mu);
  return r;
}

int sq_cq_inflight(sq_cq *cq) {
  if (!cq) return 0;
  pthread_mutex_lock(&cq->mu);
  int n = cq->inflight;
  pthread_mutex_unlock(&cq->mu);
  return n;
}

void sq_cq_close(sq_cq *cq) {
  if (!cq) return;
  pthread_mutex_lock(&cq->mu);
  if (cq->closed) { /* a second close must not drop the consumer's reference twice */
    pthread_mutex_unlock(&cq->mu);
    return;
  }
  cq->closed = 1;
  sq_job *list = cq->head;
  cq->head = cq->tail = NULL;
  cq->inflight -= cq->n;
  if (cq->n) fd_drain(cq);
  cq->n = 0;
  pthread_cond_broadcast(&cq->cv);
  while (cq->notifying > 0) pthread_cond_wait(&cq->cv, &cq->mu);
  sq_cq_discard_fn discard = cq->discard;
  void *ud = cq->discard_ud;
  pthread_mutex_unlock(&cq->mu);
  while (list) {
    sq_job *job = list;
    list = SQ_JOBX(job)->next;
    SQ_JOBX(job)->next = NULL;
    discard_job(job, discard, ud);
  }
  cq_unref(cq);
}
