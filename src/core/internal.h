/*
 * internal.h - shared between the core's own files; never installed and
 * never included by the Lua binding (which sees only sqorm.h).
 */
#ifndef SQORM_INTERNAL_H
#define SQORM_INTERNAL_H

#include "sqorm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* A pooled connection. Owned by the pool; lent to one caller at a time
 * between sq_pool_acquire and sq_pool_release. */
struct sq_conn {
  sq_pool *pool;          /* the pool it belongs to (borrowed) */
  const sq_driver *drv;
  sq_dconn *h;            /* the driver's connection; NULL while opening */
  double created_at;      /* monotonic seconds (sq_now) */
  double last_used;       /* monotonic seconds of the last release */
  int dead;               /* set by the core on SQ_ECONNECTION failures */
  int dirty;              /* the session may have changed: full reset on release */
  struct sq_conn *next;   /* idle list link (pool lock) */
  /* Set by the executor (exec.c) from another thread when the operation
   * using this connection was cancelled or timed out: an sq_kind, and
   * sq_conn_exec_native refuses to start further statements with it. The
   * executor clears it before the connection is used again. */
  atomic_int stop;
};

/* Monotonic clock in seconds. */
double sq_now(void);

/* strdup that returns NULL on NULL. */
char *sq_strdup(const char *s);

/* Writes v in decimal into buf (at least 21 bytes) with a terminating NUL
 * and returns the length. snprintf("%lld") costs several hundred
 * instructions per call, a real share of a statement's client time when
 * every int parameter and datetime goes through it. */
size_t sq_fmt_i64(int64_t v, char *buf);

/* Writes the n low decimal digits of v (zero-padded) at out; returns
 * out + n. For fixed-width date and time fields. */
char *sq_put_digits(char *out, unsigned v, int n);

/* A fast non-cryptographic hash of n bytes, seeded with seed (chain calls
 * to hash several pieces). The drivers' statement caches hash the SQL text
 * on every call, so this reads 8 bytes at a time instead of one. Values
 * are only ever compared within one process. */
uint64_t sq_hash_bytes(const void *p, size_t n, uint64_t seed);

/* The shortest "%.*g" (15 to 17 digits) that reads back as d, always
 * with '.' as the decimal point whatever the locale. buf >= 32. Used for
 * exact text of floats (DECIMAL stored as REAL, messages). */
int sq_fmt_double(double d, char *buf, size_t n);

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * civil_from_days): exact for any day count, thread-safe, and free of
 * time_t's range, unlike gmtime. */
void sq_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* ------------------------------------------------------------------ */
/* Pool <-> executor (pool.c, exec.c)                                   */
/* ------------------------------------------------------------------ */

/*
 * One place in the pool's FIFO queue of waiters. A blocking acquire keeps
 * one on its stack and sleeps on cv; an asynchronous job (exec.c) embeds
 * one and is told through served - called under the pool lock, so it must
 * only move pointers - when it reaches the head of the queue and a
 * connection (conn) or a bare slot (conn == NULL) is handed to it.
 */
typedef struct sq_pwait {
  pthread_cond_t cv;                   /* blocking waiters only */
  struct sq_pwait *prev, *next;
  int granted;                         /* set under the pool lock when served */
  int queued;                          /* linked into the queue (pool lock) */
  struct sq_conn *conn;                /* handed over, or NULL: a slot to open */
  void (*served)(struct sq_pwait *w);  /* async waiters; NULL: signal cv */
} sq_pwait;

struct sq_exec;

/*
 * The executor's private part of an sq_job (it lives in job->priv_).
 * Every field is guarded by the executor's lock, except w (the pool's
 * lock) and next while the job sits in a completion queue (the queue's
 * lock).
 */
typedef struct sq_jobx {
  /* Set (release) when the job is submitted or starts a blocking run;
   * sq_job_cancel reads it without a lock from any thread. */
  _Atomic(struct sq_exec *) ex;
  sq_pwait w;               /* the job's place in the pool's queue */
  sq_pin *pin;              /* pinned target, or NULL */
  struct sq_conn *conn;     /* while running: what a cancel targets */
  sq_job *next;             /* run queue, pin queue or completion queue */
  sq_job *cnext;            /* the canceller's list */
  sq_job *lprev, *lnext;    /* every job in flight */
  sq_job *tnext;            /* scratch list, completing outside the lock */
  double submitted;         /* sq_now() at submit */
  double acq_expiry;        /* pool_timeout time while waiting; 0 none */
  double acq_timeout;       /* seconds, for the pool_timeout message */
  double wake;              /* heap key */
  double cancel_at;         /* next server cancel attempt */
  int heap_idx;             /* -1 when not in the deadline heap */
  int state;                /* J_* in exec.c */
  int stop;                 /* 0, or the kind it was stopped with */
  int why;                  /* finer reason for kind closed */
  int submitting;           /* sq_job_submit still owns its bookkeeping */
  int post_deferred;        /* finished meanwhile: the submitter posts it */
  int in_clist, in_cancel, cancel_tries, cancel_sent;
}
#if defined(__GNUC__)
/* it lives in storage declared as another type (sq_job.priv_) */
__attribute__((may_alias))
#endif
sq_jobx;
#define SQ_JOBX(job) ((sq_jobx *)(void *)(job)->priv_.u)

/*
 * Asynchronous acquire. Under the pool lock: when nobody queues and an
 * idle connection or a free slot exists, takes it and returns 1 (*conn is
 * the idle connection, or NULL for a reserved slot the caller opens with
 * sq_pool_ready); otherwise, when queue is set, links w (w->served set)
 * at the tail and returns 0; with queue 0 returns 0 without queueing.
 * Returns -1 when the pool is closed. No I/O.
 */
int sq_pool_wait_async(sq_pool *p, sq_pwait *w, int queue, struct sq_conn **conn);
/* Unlinks w if it is still queued (1), else 0 (served or unlinked
 * before). count_timeout adds one to the pool's timeout count. */
int sq_pool_wait_remove(sq_pool *p, sq_pwait *w, int count_timeout);
/* Turns what a waiter was granted (a connection, or NULL for a slot) into
 * a usable connection: pings or opens it outside the lock. On failure the
 * slot is given up (to the next waiter) and the error returned. */
int sq_pool_ready(sq_pool *p, struct sq_conn *granted, sq_conn **out, sq_err *err);
/* Gives back a granted slot that was never opened. */
void sq_pool_slot_return(sq_pool *p);
/* Fills err with the pool_timeout message (the pool's counts). */
int sq_pool_timeout_error(sq_pool *p, double timeout, sq_err *err);
/* The pool's executor, created on first use (no threads yet); NULL with
 * err set when the pool is closed or out of memory. */
struct sq_exec *sq_pool_executor(sq_pool *p, sq_err *err);
/* Called by an executor thread that had to outlive the pool's last close
 * (it closed the pool from inside a callback): the pool may be freed now. */
void sq_pool_exec_exited(sq_pool *p);

/* exec.c, called by pool.c. sq_exec_new allocates (no threads);
 * sq_exec_shutdown runs at the pool's last close, before connections are
 * closed: it completes every queued job, cancels running ones, and joins
 * the executor's threads; it returns 1 when it was called from one of
 * them, which then exits later and calls sq_pool_exec_exited.
 * sq_exec_free runs from pool_free. */
struct sq_exec *sq_exec_new(sq_pool *p);
int sq_exec_shutdown(struct sq_exec *ex);
void sq_exec_free(struct sq_exec *ex);

/* cq.c, called by exec.c: a job submitted into cq holds a reference
 * until it is posted; post hands it to the consumer, or, once the
 * consumer closed the queue, to the discard callback (after releasing a
 * connection the job kept). */
void sq_cq_attach(sq_cq *cq);
void sq_cq_post(sq_cq *cq, sq_job *job);
#endif
