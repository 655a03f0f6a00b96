/*
 * pool.c - the connection pool: bounded, fair, self-healing, shareable.
 *
 * One sq_pool serves every thread of a process (and every lua_State on
 * them). Its promises, and how they are kept:
 *
 *   Bounded. p->size counts every slot in use: idle connections, lent
 *   connections, connections being opened and connections being closed.
 *   A slot is reserved under the lock *before* the driver connects and is
 *   given back only *after* the driver closed the connection, so the
 *   server never sees more than max connections from this pool, even for
 *   an instant.
 *
 *   Fair. Waiters queue in arrival order, each on its own condvar. A
 *   connection released (or a slot freed) while someone waits is handed
 *   directly to the head of the queue - it never becomes idle, so a
 *   thread arriving later can't barge past the queue, and only the one
 *   thread that was served wakes up (no thundering herd). Invariant:
 *   while the queue is non-empty there are no idle connections and no
 *   free slots.
 *
 *   No I/O under the lock. Under the lock we only move pointers and
 *   counters; connect, ping, reset and close run after unlocking, by the
 *   thread that owns the connection or slot at that moment.
 *
 *   Self-healing. Dead connections (c->dead, the driver's is_dead, a
 *   failed pre_ping or reset) are closed instead of reused; connections
 *   past max_lifetime are recycled; idle ones past idle_timeout are
 *   evicted down to min. Eviction runs opportunistically on acquire and
 *   release (a single comparison against p->next_sweep), so no background
 *   thread is needed; sq_pool_evict lets a host's timer do it as well.
 *   sq_pool_exec retries a read once on a fresh connection when the
 *   reused connection it got turned out to be dead.
 *
 *   Warm reuse (LIFO). Idle connections form a stack: acquire takes the
 *   most recently released one. Under light load the same few warm
 *   connections serve everything (their TCP/TLS state, server-side
 *   caches and prepared state are hot), and the ones at the bottom of
 *   the stack stay idle long enough for idle_timeout to close them, so
 *   the pool shrinks back to what the load needs. FIFO reuse would cycle
 *   through every connection, keeping all of them "recently used" and
 *   never letting the pool shrink - while leaving each one idle for the
 *   longest possible time, which is what serverless hosts punish.
 *
 *   Knows its holders. Each lent connection records who holds it (an
 *   opaque owner, e.g. one Lua state) and what for (a label). A caller
 *   that must wait while every slot is a connection lent to itself
 *   would wait for itself - it can release nothing while it blocks - so
 *   it fails at once, naming the holders (sq_pool_acquire_as). Slots
 *   lent to other owners, or being opened or closed, are an ordinary
 *   wait. st.waited counts the acquires that queued.
 *
 *   No I/O for finalisers. sq_pool_release_later takes a connection back
 *   as it is - an open transaction, an unfinished cursor - and marks it
 *   reset_later; make_ready (the next borrower, outside the lock) closes
 *   the cursor and rolls back before lending it, and eviction or close
 *   just close it. A Lua __gc may run in the middle of any statement, so
 *   it must never wait on the network or run SQL.
 *
 * Lifetimes: a pool is reference-counted (open/retain/close). When the
 * last reference goes, idle connections are closed at once; connections
 * still lent out keep the struct alive until they come back (the header
 * asks callers not to do this, but a late finaliser must not crash).
 *
 * Additions to the public API (declared in sqorm.h):
 *
 *   int sq_pool_exec(sq_pool *p, const char *sql, size_t len,
 *                    const sq_value *params, int nparams,
 *                    const sq_row_sink *sink, sq_result *res, sq_err *err);
 *     Acquire, sq_conn_exec, release. If the statement failed with
 *     SQ_ECONNECTION on a connection reused from the idle list, before
 *     any row or column reached the sink, and the SQL is a read (see
 *     sq_sql_is_read), it is run once more on a freshly opened connection.
 *     Never use it for a statement inside a transaction: take the
 *     transaction's connection and call sq_conn_exec.
 *
 *   int sq_pool_open_driver(const sq_config *cfg, const sq_driver *drv,
 *                           sq_pool **out, sq_err *err);
 *   int sq_pool_open_shared_driver(const sq_config *cfg, const sq_driver *drv,
 *                                  sq_pool **out, sq_err *err);
 *     As sq_pool_open / sq_pool_open_shared, with an explicit driver
 *     instead of sq_driver_for(cfg->dialect): for hosts that bring their
 *     own driver, and for tests and benchmarks over a fake one.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SQ_WITH_MYSQL
#include <mysql.h>
#endif
#ifdef SQ_WITH_SQLITE
#include <sqlite3.h>
#endif

/* ------------------------------------------------------------------ */
/* Global init                                                          */
/* ------------------------------------------------------------------ */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = SQ_OK;
static const char *init_msg = "";

/*
 * mysql_library_init is not thread-safe and must run before any other
 * client call; pthread_once makes every sqorm entry point that needs it
 * safe to race. libpq needs no process-wide init.
 *
 * SQLite keeps memory statistics by default, which takes a process-wide
 * mutex around every one of its allocations (several per statement, even
 * on SQLITE_OPEN_NOMUTEX connections): about 5% of a primary-key lookup.
 * sqorm reads no statistics, so they are turned off, as SQLite's own
 * performance notes recommend (SQLITE_DEFAULT_MEMSTATUS=0). This only
 * takes effect before SQLite's first use in the process: a host that
 * already uses SQLite keeps its setting (sqlite3_config then returns
 * SQLITE_MISUSE, which is ignored).
 */
static void global_init_once(void) {
#ifdef SQ_WITH_SQLITE
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
#endif
#ifdef SQ_WITH_MYSQL
  if (mysql_library_init(0, NULL, NULL) != 0) {
    init_rc = SQ_EINTERNAL;
    init_msg = "mysql_library_init failed";
  }
#endif
}

int sq_global_init(sq_err *err) {
  pthread_once(&init_once, global_init_once);
  if (init_rc != SQ_OK) return sq_err_set(err, init_rc, "%s", init_msg);
  sq_err_clear(err);
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Types                                                                */
/* ------------------------------------------------------------------ */

/* The pool allocates every sq_conn as a pconn, so it can keep per-checkout
 * facts that struct sq_conn (internal.h) doesn't carry. */
typedef struct pconn {
  struct sq_conn c; /* first: an sq_conn * is a pconn * */
  int reused;       /* this checkout came from the idle list (not just opened) */
  int suspect;      /* a sibling was found dead while this one sat idle: ping it first */
  /* While lent (p->mu): linked on p->lent with the holder that has it,
   * so an acquire can tell that every connection is held by its own
   * caller (a self-deadlock) and say what holds them. */
  int lent;
  struct pconn *lprev, *lnext;
  const void *owner;
  char what[96];
  /* Given back by sq_pool_release_later: whoever takes it next closes
   * the orphaned driver cursor and runs the reset first. */
  int reset_later;
  sq_dcursor *orphan;
} pconn;

/* One thread blocked in acquire (on that thread's stack), or one
 * asynchronous job (embedded in it, see exec.c); linked into p's queue
 * under p->mu. The type lives in internal.h, which the executor shares. */
typedef sq_pwait waiter;

struct sq_pool {
  pthread_mutex_t mu;
  pthread_condattr_t cattr; /* CLOCK_MONOTONIC, for every waiter's condvar */
  atomic_int refs;
  int shared;               /* in the named registry (set before publication) */
  struct sq_pool *reg_next; /* registry link (reg_mu) */
  sq_config cfg;            /* owned copy, pool settings normalised */
  const sq_driver *drv;

  /* Effective settings (copied from cfg.pool, read-only after open). */
  int max, min, pre_ping;
  double acquire_timeout, idle_timeout, max_lifetime;

  /* Everything below is guarded by mu. */
  int closed;               /* last reference gone */
  int size;                 /* slots taken: idle + lent + opening + closing */
  int nidle;
  int nclosing;             /* evicted, being closed outside the lock */
  struct sq_conn *idle;     /* LIFO stack, most recently released first */
  waiter *wq_head, *wq_tail;
  int nwait;
  double next_sweep;        /* sq_now() time of the next opportunistic eviction */
  int64_t created, destroyed, timeouts, waited;
  pconn *lent;              /* connections lent out (pconn.lnext) */
  struct sq_exec *exec;     /* the executor (exec.c), created on first use */
  int exec_hold;            /* an executor thread closed the pool and still runs */
};

/* ------------------------------------------------------------------ */
/* Settings                                                             */
/* ------------------------------------------------------------------ */

/* 0: not an in-memory SQLite database; 1: private (each connection is its
 * own database); 2: shared-cache memory (shared while one connection is
 * open). */
static int sqlite_memory_kind(const sq_config *cfg) {
  if (cfg->dialect != SQ_DIALECT_SQLITE) return 0;
  int mem = !cfg->storage || !cfg->storage[0] || !strcmp(cfg->storage, ":memory:") ||
            !strncmp(cfg->storage, "file::memory:", 13);
  int shared_cache = 0;
  for (int i = 0; i < cfg->nparams; i++) {
    const char *k = cfg->params[i].key, *v = cfg->params[i].value;
    if (!k || !v) continue;
    if (!strcmp(k, "mode") && !strcmp(v, "memory")) mem = 1;
    if (!strcmp(k, "cache") && !strcmp(v, "shared")) shared_cache = 1;
  }
  if (cfg->storage && strstr(cfg->storage, "mode=memory")) mem = 1;
  if (cfg->storage && strstr(cfg->storage, "cache=shared")) shared_cache = 1;
  return mem ? (shared_cache ? 2 : 1) : 0;
}

/*
 * Fills defaults into *o and checks it. Defaults follow Sequelize (max 5,
 * min 0, acquire 30 s, idle 10 s) and SQLAlchemy (pool_recycle off,
 * pre_ping off). idle_timeout 0 disables idle eviction; max_lifetime 0
 * means unlimited; acquire_timeout 0 means "don't wait".
 *
 * SQLite in memory: every connection to ":memory:" is a separate, empty
 * database, so a pool of two would hand out two different databases and
 * a table created on one would be missing on the other. Such a pool is
 * forced to max 1, and since the database dies with its connection, that
 * connection is never evicted (idle_timeout 0) or recycled (max_lifetime
 * 0). A shared-cache memory database lives while any connection is open,
 * so min is raised to 1 to keep one open.
 *
 * Idempotent, so a config already through sq_config_finish comes out the
 * same, and two configs that differ only in spelled-out defaults compare
 * equal for named pools.
 */
static int pool_settings(const sq_config *cfg, sq_pool_opts *o, sq_err *err) {
  *o = cfg->pool;
  if (o->max < 0) o->max = 5;
  if (o->min < 0) o->min = 0;
  if (!(o->acquire_timeout >= 0)) o->acquire_timeout = 30; /* also NaN */
  if (!(o->idle_timeout >= 0)) o->idle_timeout = 10;
  if (!(o->max_lifetime >= 0)) o->max_lifetime = 0;
  if (o->pre_ping < 0) o->pre_ping = 0;
  o->pre_ping = o->pre_ping != 0;
  if (o->max == 0) return sq_err_set(err, SQ_EUSAGE, "pool.max must be at least 1");
  if (o->worker_nice < -1 || o->worker_nice > 19)
    return sq_err_set(err, SQ_EUSAGE, "option 'pool.worker_nice' must be an integer from 0 to 19, got %d",
                      o->worker_nice);
#ifndef __linux__
  if (o->worker_nice > 0)
    return sq_err_set(err, SQ_EUSAGE,
                      "option 'pool.worker_nice' needs Linux (per-thread nice values); use 0 or leave it out here");
#endif
  switch (sqlite_memory_kind(cfg)) {
  case 1:
    o->max = 1;
    if (o->min > 1) o->min = 1;
    o->idle_timeout = 0;
    o->max_lifetime = 0;
    break;
  case 2:
    if (o->min < 1) o->min = 1;
    if (o->min > o->max) o->min = o->max;
    break;
  default:
    break;
  }
  if (o->min > o->max)
    return sq_err_set(err, SQ_EUSAGE, "pool.min (%d) is larger than pool.max (%d)", o->min, o->max);
  return SQ_OK;
}

/* Time between opportunistic sweeps: a quarter of the shortest limit, so
 * a connection overstays idle_timeout by at most ~25%, but never more
 * often than every millisecond nor less often than every second. */
static double sweep_interval(const sq_pool *p) {
  double t = 1e300;
  if (p->idle_timeout > 0) t = p->idle_timeout;
  if (p->max_lifetime > 0 && p->max_lifetime < t) t = p->max_lifetime;
  if (t >= 1e300) return 1e300;
  t /= 4;
  if (t < 0.001) t = 0.001;
  if (t > 1.0) t = 1.0;
  return t;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

static void *nice_probe(void *arg) {
  int *n = arg;
  *n = sq_thread_nice(*n);
  return NULL;
}

/* A given pool.worker_nice > 0: a thread started for it lowers its own
 * priority as a worker will, so a system that refuses (a seccomp filter,
 * a security module) fails the connect rather than leaving the value
 * unapplied. */
static int worker_nice_check(const sq_pool_opts *o, sq_err *err) {
  if (o->worker_nice <= 0) return SQ_OK;
  pthread_t t;
  int r = o->worker_nice;
  if (pthread_create(&t, NULL, nice_probe, &r) != 0)
    return sq_err_set(err, SQ_EINTERNAL, "pool.worker_nice: could not start a thread to check it");
  pthread_join(t, NULL);
  if (r)
    return sq_err_set(err, SQ_EUSAGE,
                      "option 'pool.worker_nice' = %d: the system refused to lower a thread's priority "
                      "(setpriority: %s); use 0 to keep the workers at the host's priority",
                      o->worker_nice, strerror(r));
  return SQ_OK;
}

static int pool_new(const sq_config *cfg, const sq_driver *drv, sq_pool **out, sq_err *err) {
  sq_pool_opts o;
  int rc = pool_settings(cfg, &o, err);
  if (rc != SQ_OK) return rc;
  if ((rc = worker_nice_check(&o, err)) != SQ_OK) return rc;
  if ((rc = sq_global_init(err)) != SQ_OK) return rc;
  sq_pool *p = calloc(1, sizeof *p);
  if (!p) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  if (sq_config_copy(&p->cfg, cfg) != SQ_OK) {
    free(p);
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  p->cfg.pool = o;
  if (pthread_mutex_init(&p->mu, NULL) != 0) goto fail_cfg;
  if (pthread_condattr_init(&p->cattr) != 0) goto fail_mu;
  if (pthread_condattr_setclock(&p->cattr, CLOCK_MONOTONIC) != 0) goto fail_attr;
  atomic_init(&p->refs, 1);
  p->drv = drv;
  p->max = o.max;
  p->min = o.min;
  p->pre_ping = o.pre_ping;
  p->acquire_timeout = o.acquire_timeout;
  p->idle_timeout = o.idle_timeout;
  p->max_lifetime = o.max_lifetime;
  p->next_sweep = sq_now() + sweep_interval(p);
  *out = p;
  sq_err_clear(err);
  return SQ_OK;
fail_attr:
  pthread_condattr_destroy(&p->cattr);
fail_mu:
  pthread_mutex_destroy(&p->mu);
fail_cfg:
  sq_config_free(&p->cfg);
  free(p);
  return sq_err_set(err, SQ_EINTERNAL, "pool: could not create its lock");
}

static void pool_free(sq_pool *p) {
  if (p->exec) sq_exec_free(p->exec);
  pthread_condattr_destroy(&p->cattr);
  pthread_mutex_destroy(&p->mu);
  sq_config_free(&p->cfg);
  free(p);
}

int sq_pool_open_driver(const sq_config *cfg, const sq_driver *drv, sq_pool **out, sq_err *err) {
  if (out) *out = NULL;
  if (!cfg || !drv || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pool_open: bad arguments");
  return pool_new(cfg, drv, out, err);
}

int sq_pool_open(const sq_config *cfg, sq_pool **out, sq_err *err) {
  if (out) *out = NULL;
  if (!cfg || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pool_open: bad arguments");
  const sq_driver *drv = sq_driver_for(cfg->dialect);
  if (!drv)
    return sq_err_set(err, SQ_EUSAGE, "no driver for dialect '%s' in this build",
                      sq_dialect_name(cfg->dialect));
  return pool_new(cfg, drv, out, err);
}

void sq_pool_retain(sq_pool *p) {
  /* The caller holds a reference, so the count can't be zero here and a
   * plain increment can't race with the registry's removal. */
  if (p) atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

const sq_config *sq_pool_config(const sq_pool *p) { return p ? &p->cfg : NULL; }

const sq_driver *sq_pool_driver(const sq_pool *p) { return p ? p->drv : NULL; }

/* ------------------------------------------------------------------ */
/* The waiter queue and slots (all under p->mu)                         */
/* ------------------------------------------------------------------ */

static void wq_push(sq_pool *p, waiter *w) {
  w->next = NULL;
  w->queued = 1;
  w->prev = p->wq_tail;
  if (p->wq_tail) p->wq_tail->next = w;
  else p->wq_head = w;
  p->wq_tail = w;
  p->nwait++;
}

static void wq_remove(sq_pool *p, waiter *w) {
  if (w->prev) w->prev->next = w->next;
  else p->wq_head = w->next;
  if (w->next) w->next->prev = w->prev;
  else p->wq_tail = w->prev;
  w->prev = w->next = NULL;
  w->queued = 0;
  p->nwait--;
}

/* Records (under p->mu) that c is lent to h; what it is held for is
 * copied, so the caller's string may go. */
static void lend(sq_pool *p, struct sq_conn *c, const sq_holder *h) {
  pconn *pc = (pconn *)c;
  if (pc->lent) return;
  pc->owner = h ? h->owner : NULL;
  pc->what[0] = 0;
  if (h && h->what) {
    size_t n = strlen(h->what);
    if (n >= sizeof pc->what) n = sizeof pc->what - 1;
    memcpy(pc->what, h->what, n);
    pc->what[n] = 0;
  }
  pc->lprev = NULL;
  pc->lnext = p->lent;
  if (p->lent) p->lent->lprev = pc;
  p->lent = pc;
  pc->lent = 1;
}

static void unlend(sq_pool *p, struct sq_conn *c) {
  pconn *pc = (pconn *)c;
  if (!pc->lent) return;
  if (pc->lprev) pc->lprev->lnext = pc->lnext;
  else p->lent = pc->lnext;
  if (pc->lnext) pc->lnext->lprev = pc->lprev;
  pc->lprev = pc->lnext = NULL;
  pc->lent = 0;
  pc->owner = NULL;
}

/* Serves the head of the queue with c (a live connection) or with a bare
 * slot (c == NULL; the slot stays counted in p->size and now belongs to
 * the waiter, who opens a connection in it). Returns 0 when nobody waits.
 * Signalling while holding the mutex is deliberate: the waiter destroys
 * its condvar as soon as it gets the mutex back, so the signal must be
 * complete by then. */
static int serve_first(sq_pool *p, struct sq_conn *c) {
  waiter *w = p->wq_head;
  if (!w) return 0;
  wq_remove(p, w);
  w->conn = c;
  if (c) lend(p, c, w->h);
  w->granted = 1;
  if (w->served) w->served(w); /* an async job: pushed to its executor's run queue */
  else pthread_cond_signal(&w->cv);
  return 1;
}

/* n slots were given up (connections closed or opens that failed). Each
 * goes to the next waiter, who will open a connection in it; the rest
 * shrink the pool. Returns 1 when the pool is closed and now empty: the
 * caller frees it after unlocking. */
static int drop_slots(sq_pool *p, int n) {
  for (; n > 0; n--)
    if (p->closed || !serve_first(p, NULL)) p->size--;
  return p->closed && p->size == 0 && !p->exec_hold;
}

/* Closes c's driver connection (no lock held), then frees a driver
 * cursor left open on it by sq_pool_release_later: once the connection
 * is closed, closing that cursor only frees its memory. */
static void close_handle(sq_pool *p, struct sq_conn *c) {
  pconn *pc = (pconn *)c;
  if (c->h) p->drv->close(c->h);
  c->h = NULL;
  if (pc->orphan) p->drv->cursor_close(pc->orphan);
  pc->orphan = NULL;
  pc->reset_later = 0;
}

/* Unlinks idle connections past idle_timeout or max_lifetime, keeping at
 * least min connections in the pool. Victims stay counted in p->size (as
 * nclosing) until close_victims has closed them, so a new connection
 * can't be opened in their slot while the server still sees the old one.
 * The stack is ordered by last use, so the victims spared by min are the
 * most recently used ones. */
static struct sq_conn *sweep(sq_pool *p, double now) {
  p->next_sweep = now + sweep_interval(p);
  if (p->idle_timeout <= 0 && p->max_lifetime <= 0) return NULL;
  int nq = 0;
  for (struct sq_conn *c = p->idle; c; c = c->next)
    nq += (p->idle_timeout > 0 && now - c->last_used >= p->idle_timeout) ||
          (p->max_lifetime > 0 && now - c->created_at >= p->max_lifetime);
  int budget = p->size - p->nclosing - p->min;
  if (nq == 0 || budget <= 0) return NULL;
  int spare = nq > budget ? nq - budget : 0; /* qualifying ones kept for min */
  struct sq_conn *victims = NULL, **pp = &p->idle;
  while (*pp) {
    struct sq_conn *c = *pp;
    int q = (p->idle_timeout > 0 && now - c->last_used >= p->idle_timeout) ||
            (p->max_lifetime > 0 && now - c->created_at >= p->max_lifetime);
    if (q && spare > 0) {
      spare--;
      q = 0;
    }
    if (q) {
      *pp = c->next;
      c->next = victims;
      victims = c;
      p->nidle--;
      p->nclosing++;
    } else {
      pp = &c->next;
    }
  }
  return victims;
}

/* Closes connections unlinked by sweep or sq_pool_close (no lock held),
 * then gives their slots up. */
static void close_victims(sq_pool *p, struct sq_conn *victims) {
  int n = 0;
  while (victims) {
    struct sq_conn *c = victims;
    victims = c->next;
    close_handle(p, c);
    free(c);
    n++;
  }
  pthread_mutex_lock(&p->mu);
  p->destroyed += n;
  p->nclosing -= n;
  int gone = drop_slots(p, n);
  pthread_mutex_unlock(&p->mu);
  if (gone) pool_free(p);
}

/* ------------------------------------------------------------------ */
/* Acquire                                                              */
/* ------------------------------------------------------------------ */

/* Waits (p->mu held) until the head of the queue is served or the
 * deadline passes. On success *got is the connection handed over, or NULL
 * for a bare slot. */
static int wait_turn(sq_pool *p, double timeout, const sq_holder *h, struct sq_conn **got, sq_err *err) {
  if (timeout > 0) {
    waiter w;
    memset(&w, 0, sizeof w);
    w.h = h;
    if (pthread_cond_init(&w.cv, &p->cattr) != 0)
      return sq_err_set(err, SQ_EINTERNAL, "pool: could not create a condition variable");
    wq_push(p, &w);
    p->waited++;
    struct timespec dl;
    int forever = timeout >= 1e9;
    if (!forever) {
      clock_gettime(CLOCK_MONOTONIC, &dl);
      double whole = (double)(time_t)timeout;
      long ns = dl.tv_nsec + (long)((timeout - whole) * 1e9);
      dl.tv_sec += (time_t)whole + ns / 1000000000L;
      dl.tv_nsec = ns % 1000000000L;
    }
    while (!w.granted) {
      int r = forever ? pthread_cond_wait(&w.cv, &p->mu) : pthread_cond_timedwait(&w.cv, &p->mu, &dl);
      if (r == ETIMEDOUT) break;
    }
    if (!w.granted) wq_remove(p, &w);
    pthread_cond_destroy(&w.cv);
    /* Served right at the deadline still counts as served. */
    if (w.granted) {
      *got = w.conn;
      return SQ_OK;
    }
  }
  p->timeouts++;
  int in_use = p->size - p->nidle - p->nclosing;
  const char *name = p->cfg.name;
  return sq_err_set(err, SQ_EPOOL_TIMEOUT,
                    "pool%s%s%s: no connection available within %.2f s (size %d, in use %d, "
                    "waiting %d, max %d); raise pool.max or pool.acquire_timeout, or look for "
                    "connections held too long (long transactions, unclosed cursors)",
                    name ? " '" : "", name ? name : "", name ? "'" : "", timeout, p->size, in_use,
                    p->nwait + 1, p->max);
}

/* How many connections are lent to owner (p->mu held). */
static int held_by(const sq_pool *p, const void *owner) {
  int n = 0;
  for (const pconn *c = p->lent; c; c = c->lnext) n += c->owner == owner;
  return n;
}

/* The caller would wait for a connection that only it can give back
 * (p->mu held): every slot of the pool is a connection lent to it. Fails
 * at once, naming what holds them. */
static int self_deadlock(sq_pool *p, const sq_holder *h, sq_err *err) {
  p->timeouts++;
  char list[640];
  size_t n = 0;
  int listed = 0, more = 0;
  list[0] = 0;
  for (const pconn *c = p->lent; c; c = c->lnext) {
    if (c->owner != h->owner) continue;
    const char *what = c->what[0] ? c->what : "a statement in progress";
    size_t need = strlen(what) + 2;
    if (listed >= 6 || n + need + 16 >= sizeof list) {
      more++;
      continue;
    }
    n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", listed ? ", " : "", what);
    listed++;
  }
  if (more) snprintf(list + n, sizeof list - n, " and %d more", more);
  const char *name = p->cfg.name;
  return sq_err_set(err, SQ_EPOOL_TIMEOUT,
                    "pool%s%s%s: every connection of this pool (max %d) is held by %s: %s; the call "
                    "would wait for itself, so it fails now instead of after acquire_timeout",
                    name ? " '" : "", name ? name : "", name ? "'" : "", p->max,
                    h->owner_name ? h->owner_name : "this caller", list);
}

/* Turns what acquire got - an idle connection c or, when c is NULL, a
 * reserved slot - into a usable connection. Runs without the lock: this
 * is where the pool pings, closes and connects. An idle connection that
 * is dead, past max_lifetime or fails its ping (pre_ping, or a suspect:
 * a sibling was found dead while it sat idle), or any idle connection
 * when fresh is set, is closed and a new one opened in the same slot -
 * once; if that open fails, the slot is given up and the error returned. */
static int make_ready(sq_pool *p, struct sq_conn *c, int fresh, const sq_holder *hold, sq_conn **out,
                      sq_err *err) {
  const sq_driver *drv = p->drv;
  int closed_one = 0;
  if (c) {
    int stale = fresh || c->dead || !c->h || (drv->is_dead && drv->is_dead(c->h)) ||
                (p->max_lifetime > 0 && sq_now() - c->created_at >= p->max_lifetime);
    if (!stale && ((pconn *)c)->reset_later) {
      /* Given back by a finaliser: finish what it left (an open cursor,
       * an open transaction, a changed session) before lending it. */
      pconn *pc = (pconn *)c;
      if (pc->orphan) drv->cursor_close(pc->orphan);
      pc->orphan = NULL;
      pc->reset_later = 0;
      int full = c->dirty || (drv->needs_reset && drv->needs_reset(c->h));
      if (full || (drv->in_transaction && drv->in_transaction(c->h))) {
        sq_err rerr;
        sq_err_clear(&rerr);
        stale = !drv->reset || drv->reset(c->h, full, &rerr) != SQ_OK || (drv->is_dead && drv->is_dead(c->h));
        c->dirty = 0;
      }
    }
    if (!stale && (p->pre_ping || ((pconn *)c)->suspect) && drv->ping) {
      sq_err perr;
      sq_err_clear(&perr);
      stale = drv->ping(c->h, &perr) != SQ_OK;
    }
    ((pconn *)c)->suspect = 0;
    if (!stale) {
      c->next = NULL;
      ((pconn *)c)->reused = 1;
      *out = c;
      sq_err_clear(err);
      return SQ_OK;
    }
    close_handle(p, c);
    closed_one = 1;
  } else {
    c = calloc(1, sizeof(pconn));
    if (!c) {
      pthread_mutex_lock(&p->mu);
      int gone = drop_slots(p, 1);
      pthread_mutex_unlock(&p->mu);
      if (gone) pool_free(p);
      return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
  }
  sq_dconn *h = NULL;
  sq_err_clear(err);
  int rc = drv->open(&p->cfg, &h, err);
  if (rc == SQ_OK && !h) rc = sq_err_set(err, SQ_EINTERNAL, "driver %s: open returned no connection", drv->name);
  if (rc != SQ_OK && err->kind == SQ_OK) sq_err_set(err, rc, "driver %s: could not connect", drv->name);
  if (rc != SQ_OK) sq_config_redact(&p->cfg, err); /* a client library may echo what it was given */
  pthread_mutex_lock(&p->mu);
  p->destroyed += closed_one;
  int gone = 0;
  if (rc == SQ_OK) {
    p->created++;
    lend(p, c, hold); /* a no-op for a reopened connection, lent already */
  } else {
    unlend(p, c);
    gone = drop_slots(p, 1);
  }
  pthread_mutex_unlock(&p->mu);
  if (rc != SQ_OK) {
    free(c);
    if (gone) pool_free(p);
    return rc;
  }
  double now = sq_now();
  c->pool = p;
  c->drv = drv;
  c->h = h;
  c->created_at = now;
  c->last_used = now;
  c->dead = 0;
  c->next = NULL;
  ((pconn *)c)->reused = 0;
  *out = c;
  return SQ_OK;
}

/* fresh: the caller wants a newly opened connection (sq_pool_exec's retry
 * after a reused one proved dead). It prefers a free slot; failing that
 * it takes an idle connection's slot, closing that connection. */
static int acquire(sq_pool *p, double timeout, int fresh, const sq_holder *h, double *waited, sq_conn **out,
                   sq_err *err) {
  if (!(timeout >= 0)) timeout = p->acquire_timeout;
  double now = sq_now();
  struct sq_conn *c = NULL, *victims = NULL;
  int rc = SQ_OK;
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    return sq_err_set(err, SQ_ECLOSED, "pool is closed");
  }
  if (now >= p->next_sweep && (victims = sweep(p, now)) != NULL) {
    /* Close them before deciding: their slots may be the ones we need,
     * and we must not queue behind our own unfinished cleanup. */
    pthread_mutex_unlock(&p->mu);
    close_victims(p, victims);
    pthread_mutex_lock(&p->mu);
  }
  if (!p->wq_head && p->idle && !(fresh && p->size < p->max)) {
    c = p->idle;
    p->idle = c->next;
    p->nidle--;
    lend(p, c, h);
  } else if (!p->wq_head && p->size < p->max) {
    p->size++; /* reserved; connected below, outside the lock */
  } else if (h && h->owner && held_by(p, h->owner) >= p->size) {
    rc = self_deadlock(p, h, err);
  } else {
    rc = wait_turn(p, timeout, h, &c, err);
    if (waited) *waited = sq_now() - now;
  }
  pthread_mutex_unlock(&p->mu);
  if (rc != SQ_OK) return rc;
  return make_ready(p, c, fresh, h, out, err);
}

int sq_pool_acquire_job(sq_pool *p, double timeout, const sq_holder *h, int fresh, double *waited, sq_conn **out,
                        sq_err *err) {
  if (waited) *waited = 0;
  if (out) *out = NULL;
  if (!p || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pool_acquire: bad arguments");
  return acquire(p, timeout, fresh, h, waited, out, err);
}

int sq_pool_acquire(sq_pool *p, double timeout, sq_conn **out, sq_err *err) {
  if (out) *out = NULL;
  if (!p || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pool_acquire: bad arguments");
  return acquire(p, timeout, 0, NULL, NULL, out, err);
}

int sq_pool_acquire_as(sq_pool *p, double timeout, const sq_holder *h, sq_conn **out, sq_err *err) {
  if (out) *out = NULL;
  if (!p || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pool_acquire: bad arguments");
  return acquire(p, timeout, 0, h, NULL, out, err);
}

/* Opens connections until the pool holds min (acquiring min at once, so
 * each is a different one, then giving them all back). */
int sq_pool_fill(sq_pool *p, sq_err *err) {
  if (!p) return sq_err_set(err, SQ_EUSAGE, "sq_pool_fill: bad arguments");
  int n = p->min, got = 0, rc = SQ_OK;
  if (n <= 0) return SQ_OK;
  sq_conn **c = calloc((size_t)n, sizeof *c);
  if (!c) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  while (got < n && (rc = acquire(p, -1, 0, NULL, NULL, &c[got], err)) == SQ_OK) got++;
  while (got > 0) sq_pool_release(p, c[--got]);
  free(c);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Asynchronous waiters (the executor, exec.c)                          */
/* ------------------------------------------------------------------ */

/*
 * The same decision as acquire, without waiting: an async job joins the
 * one FIFO queue that blocking callers use, so neither kind can barge
 * past the other. No sweep here: closing evicted connections is I/O, and
 * this runs on the submitting (game) thread; blocking acquires and
 * releases sweep often enough.
 */
int sq_pool_wait_async(sq_pool *p, sq_pwait *w, int queue, struct sq_conn **conn) {
  int r;
  *conn = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    r = -1;
  } else if (!p->wq_head && p->idle) {
    struct sq_conn *c = p->idle;
    p->idle = c->next;
    p->nidle--;
    lend(p, c, w->h);
    *conn = c;
    r = 1;
  } else if (!p->wq_head && p->size < p->max) {
    p->size++; /* reserved; the worker opens it (sq_pool_ready) */
    r = 1;
  } else if (queue) {
    w->granted = 0;
    w->conn = NULL;
    wq_push(p, w);
    r = 2;
  } else {
    p->timeouts++;
    r = 0;
  }
  pthread_mutex_unlock(&p->mu);
  return r;
}

int sq_pool_wait_remove(sq_pool *p, sq_pwait *w, int count_timeout) {
  pthread_mutex_lock(&p->mu);
  int r = w->queued;
  if (r) {
    wq_remove(p, w);
    if (count_timeout) p->timeouts++;
  }
  pthread_mutex_unlock(&p->mu);
  return r;
}

int sq_pool_ready(sq_pool *p, struct sq_conn *granted, sq_conn **out, sq_err *err) {
  *out = NULL;
  return make_ready(p, granted, 0, NULL, out, err);
}

void sq_pool_slot_return(sq_pool *p) {
  pthread_mutex_lock(&p->mu);
  int gone = drop_slots(p, 1);
  pthread_mutex_unlock(&p->mu);
  if (gone) pool_free(p);
}

int sq_pool_timeout_error(sq_pool *p, double timeout, sq_err *err) {
  pthread_mutex_lock(&p->mu);
  int in_use = p->size - p->nidle - p->nclosing, size = p->size, nwait = p->nwait;
  pthread_mutex_unlock(&p->mu);
  const char *name = p->cfg.name;
  return sq_err_set(err, SQ_EPOOL_TIMEOUT,
                    "pool%s%s%s: no connection available within %.2f s (size %d, in use %d, "
                    "waiting %d, max %d); raise pool.max or pool.acquire_timeout, or look for "
                    "connections held too long (long transactions, unclosed cursors)",
                    name ? " '" : "", name ? name : "", name ? "'" : "", timeout, size, in_use,
                    nwait + 1, p->max);
}

struct sq_exec *sq_pool_executor(sq_pool *p, sq_err *err) {
  pthread_mutex_lock(&p->mu);
  struct sq_exec *ex = NULL;
  if (p->closed) {
    sq_err_set(err, SQ_ECLOSED, "pool is closed");
  } else {
    if (!p->exec) p->exec = sq_exec_new(p);
    ex = p->exec;
    if (!ex) sq_err_set(err, SQ_ENOMEM, "out of memory (executor)");
  }
  pthread_mutex_unlock(&p->mu);
  return ex;
}

void sq_pool_exec_exited(sq_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->exec_hold = 0;
  int gone = p->closed && p->size == 0;
  pthread_mutex_unlock(&p->mu);
  if (gone) pool_free(p);
}

/* ------------------------------------------------------------------ */
/* Release, evict, close                                                */
/* ------------------------------------------------------------------ */

/*
 * Health checks and the reset run before taking the lock (they may talk
 * to the server). A connection that is dead, fails its reset, or is past
 * max_lifetime is closed, and only then is its slot given up (to the
 * next waiter, who opens a new one). A healthy one goes straight to the
 * first waiter, or on top of the idle stack.
 */
void sq_pool_release(sq_pool *p, sq_conn *c) {
  if (!c) return;
  p = c->pool; /* the connection knows its pool; trust that over the argument */
  const sq_driver *drv = p->drv;
  int discard = c->dead || !c->h || (drv->is_dead && drv->is_dead(c->h));
  int full = !discard && (c->dirty || (drv->needs_reset && drv->needs_reset(c->h)));
  if (!discard && (full || (drv->in_transaction && drv->in_transaction(c->h)))) {
    /* Roll back what the last holder left open (a Lua error mid-
     * transaction, an abandoned coroutine), and restore the session when
     * it may have changed. If that fails we can't know the connection's
     * state, so it goes. */
    sq_err rerr;
    sq_err_clear(&rerr);
    int rc = drv->reset ? drv->reset(c->h, full, &rerr) : SQ_EINTERNAL;
    discard = rc != SQ_OK || (drv->is_dead && drv->is_dead(c->h));
    c->dirty = 0;
  }
  double now = sq_now();
  if (!discard && p->max_lifetime > 0 && now - c->created_at >= p->max_lifetime) discard = 1;
  if (!discard) {
    struct sq_conn *victims = NULL;
    c->last_used = now;
    pthread_mutex_lock(&p->mu);
    unlend(p, c);
    if (!p->closed) {
      if (!serve_first(p, c)) {
        c->next = p->idle;
        p->idle = c;
        p->nidle++;
        if (now >= p->next_sweep) victims = sweep(p, now);
      }
      pthread_mutex_unlock(&p->mu);
      if (victims) close_victims(p, victims);
      return;
    }
    pthread_mutex_unlock(&p->mu); /* closed meanwhile: fall through and close it */
  }
  close_handle(p, c);
  int died_idle = ((pconn *)c)->reused && discard && c->dead;
  pthread_mutex_lock(&p->mu);
  unlend(p, c);
  /* A connection that was alive when it went idle and is dead now says
   * the server dropped its sessions (restart, KILL, an idle limit): its
   * idle siblings are probably gone too, so each is pinged on its next
   * checkout, as with pre_ping, and replaced when dead. */
  if (died_idle)
    for (struct sq_conn *i = p->idle; i; i = i->next) ((pconn *)i)->suspect = 1;
  p->destroyed++;
  int gone = drop_slots(p, 1);
  pthread_mutex_unlock(&p->mu);
  free(c);
  if (gone) pool_free(p);
}

/*
 * The finaliser's release: no ping, no reset, no close. The connection
 * (with whatever it had open) goes to the first waiter or on top of the
 * idle stack marked reset_later; make_ready runs the cleanup for whoever
 * takes it, and eviction or pool close just close it.
 */
void sq_pool_release_later(sq_pool *p, sq_conn *c, sq_dcursor *open_cursor) {
  if (!c) return;
  p = c->pool;
  pconn *pc = (pconn *)c;
  pc->orphan = open_cursor;
  pc->reset_later = 1;
  c->last_used = sq_now();
  pthread_mutex_lock(&p->mu);
  unlend(p, c);
  if (!p->closed) {
    if (!serve_first(p, c)) {
      c->next = p->idle;
      p->idle = c;
      p->nidle++;
    }
    pthread_mutex_unlock(&p->mu);
    return;
  }
  pthread_mutex_unlock(&p->mu);
  close_handle(p, c);
  pthread_mutex_lock(&p->mu);
  p->destroyed++;
  int gone = drop_slots(p, 1);
  pthread_mutex_unlock(&p->mu);
  free(c);
  if (gone) pool_free(p);
}

void sq_pool_evict(sq_pool *p) {
  if (!p) return;
  double now = sq_now();
  pthread_mutex_lock(&p->mu);
  struct sq_conn *victims = p->closed ? NULL : sweep(p, now);
  pthread_mutex_unlock(&p->mu);
  if (victims) close_victims(p, victims);
}

void sq_pool_stats_get(sq_pool *p, sq_pool_stats *st) {
  memset(st, 0, sizeof *st);
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  st->size = p->size;
  st->idle = p->nidle;
  st->in_use = p->size - p->nidle - p->nclosing;
  st->waiting = p->nwait;
  st->created = p->created;
  st->destroyed = p->destroyed;
  st->timeouts = p->timeouts;
  st->waited = p->waited;
  st->max = p->max;
  st->min = p->min;
  pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------ */
/* Named pools                                                          */
/* ------------------------------------------------------------------ */

/* The process-wide registry. Its own mutex, never held together with a
 * pool's lock while doing I/O: sq_pool_close drops the registry lock
 * before closing connections. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static sq_pool *reg_head;

/* Names the first setting that differs, so "already exists with
 * different settings" tells the user what to fix. Passwords are named,
 * never printed. */
static void describe_difference(const sq_config *a, const sq_config *b, char *buf, size_t n) {
#define STR_DIFF(f) (!(a->f == b->f || (a->f && b->f && !strcmp(a->f, b->f))))
  if (a->dialect != b->dialect)
    snprintf(buf, n, "dialect %s vs %s", sq_dialect_name(a->dialect), sq_dialect_name(b->dialect));
  else if (STR_DIFF(host) || a->port != b->port || a->nhosts != b->nhosts) snprintf(buf, n, "host/port");
  else if (STR_DIFF(database) || STR_DIFF(storage)) snprintf(buf, n, "database");
  else if (STR_DIFF(user) || STR_DIFF(password)) snprintf(buf, n, "user/password");
  else if (a->pool.max != b->pool.max) snprintf(buf, n, "pool.max %d vs %d", a->pool.max, b->pool.max);
  else if (a->pool.min != b->pool.min) snprintf(buf, n, "pool.min %d vs %d", a->pool.min, b->pool.min);
  else if (a->pool.acquire_timeout != b->pool.acquire_timeout)
    snprintf(buf, n, "pool.acquire_timeout %g vs %g", a->pool.acquire_timeout, b->pool.acquire_timeout);
  else if (a->pool.idle_timeout != b->pool.idle_timeout)
    snprintf(buf, n, "pool.idle_timeout %g vs %g", a->pool.idle_timeout, b->pool.idle_timeout);
  else if (a->pool.max_lifetime != b->pool.max_lifetime)
    snprintf(buf, n, "pool.max_lifetime %g vs %g", a->pool.max_lifetime, b->pool.max_lifetime);
  else if (a->pool.pre_ping != b->pool.pre_ping)
    snprintf(buf, n, "pool.pre_ping %s vs %s", a->pool.pre_ping ? "on" : "off", b->pool.pre_ping ? "on" : "off");
  else if (sq_worker_nice(&a->pool) != sq_worker_nice(&b->pool))
    snprintf(buf, n, "pool.worker_nice %d vs %d", sq_worker_nice(&a->pool), sq_worker_nice(&b->pool));
  else if (a->ssl.mode != b->ssl.mode || STR_DIFF(ssl.ca) || STR_DIFF(ssl.cert) || STR_DIFF(ssl.key) ||
           STR_DIFF(ssl.min_version))
    snprintf(buf, n, "ssl");
  else snprintf(buf, n, "connection options");
#undef STR_DIFF
}

/*
 * The first open of a name creates the pool; later opens with an equal
 * configuration (after filling pool defaults, so {max = 5} equals {})
 * share it and add a reference. Creating under reg_mu is fine: it only
 * allocates, never connects.
 */
int sq_pool_open_shared_driver(const sq_config *cfg, const sq_driver *drv, sq_pool **out, sq_err *err) {
  if (out) *out = NULL;
  if (!cfg || !drv || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pool_open_shared: bad arguments");
  if (!cfg->name || !cfg->name[0]) return pool_new(cfg, drv, out, err); /* unnamed: private */
  sq_config probe = *cfg; /* shallow: only read by sq_config_equal */
  int rc = pool_settings(cfg, &probe.pool, err);
  if (rc != SQ_OK) return rc;
  pthread_mutex_lock(&reg_mu);
  sq_pool *p = reg_head;
  while (p && strcmp(p->cfg.name, cfg->name) != 0) p = p->reg_next;
  if (p) {
    if (p->drv != drv || !sq_config_equal(&p->cfg, &probe)) {
      char what[160];
      describe_difference(&p->cfg, &probe, what, sizeof what);
      pthread_mutex_unlock(&reg_mu);
      return sq_err_set(err, SQ_EUSAGE, "pool '%s' already exists with different settings (%s)",
                        cfg->name, what);
    }
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  } else {
    rc = pool_new(cfg, drv, &p, err);
    if (rc == SQ_OK) {
      p->shared = 1;
      p->reg_next = reg_head;
      reg_head = p;
    }
  }
  pthread_mutex_unlock(&reg_mu);
  if (rc != SQ_OK) return rc;
  *out = p;
  sq_err_clear(err);
  return SQ_OK;
}

int sq_pool_open_shared(const sq_config *cfg, sq_pool **out, sq_err *err) {
  if (out) *out = NULL;
  if (!cfg || !out) return sq_err_set(err, SQ_EUSAGE, "sq_pool_open_shared: bad arguments");
  const sq_driver *drv = sq_driver_for(cfg->dialect);
  if (!drv)
    return sq_err_set(err, SQ_EUSAGE, "no driver for dialect '%s' in this build",
                      sq_dialect_name(cfg->dialect));
  return sq_pool_open_shared_driver(cfg, drv, out, err);
}

/*
 * Drops a reference. A named pool's count goes to zero under reg_mu and
 * the pool is unlinked in the same critical section, so a concurrent
 * sq_pool_open_shared can never find (and revive) a dying pool. At zero,
 * idle connections are closed here; lent ones are closed as they come
 * back, and the last one frees the pool.
 */
void sq_pool_close(sq_pool *p) {
  if (!p) return;
  int last;
  if (p->shared) {
    pthread_mutex_lock(&reg_mu);
    last = atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1;
    if (last) {
      sq_pool **pp = &reg_head;
      while (*pp && *pp != p) pp = &(*pp)->reg_next;
      if (*pp) *pp = p->reg_next;
    }
    pthread_mutex_unlock(&reg_mu);
  } else {
    last = atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1;
  }
  if (!last) return;
  /* Async jobs first, while the pool still lends: queued ones complete
   * with kind closed, running ones are cancelled, and the executor's
   * threads are joined (their connections come back to the idle list). */
  pthread_mutex_lock(&p->mu);
  struct sq_exec *ex = p->exec;
  pthread_mutex_unlock(&p->mu);
  int hold = ex ? sq_exec_shutdown(ex) : 0;
  pthread_mutex_lock(&p->mu);
  p->exec_hold = hold;
  p->closed = 1;
  struct sq_conn *victims = p->idle;
  p->idle = NULL;
  p->nclosing += p->nidle;
  p->nidle = 0;
  int gone = p->size == 0 && !p->exec_hold;
  pthread_mutex_unlock(&p->mu);
  if (victims) close_victims(p, victims);
  else if (gone) pool_free(p);
}

/* ------------------------------------------------------------------ */
/* sq_pool_exec: one statement, with the retry of a read                */
/* ------------------------------------------------------------------ */

/* A pass-through sink that notes whether anything reached the caller's
 * sink: once a row (or the column list) went out, a retry would deliver
 * it twice, so there is no retry. */
typedef struct tap {
  const sq_row_sink *sink;
  int delivered;
} tap;

static int tap_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  tap *t = ud;
  t->delivered = 1;
  return t->sink->columns(t->sink->ud, ncols, cols, err);
}

static int tap_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  tap *t = ud;
  t->delivered = 1;
  return t->sink->row(t->sink->ud, ncols, vals, err);
}

int sq_pool_exec(sq_pool *p, const char *sql, size_t len, const sq_value *params, int nparams,
                 const sq_row_sink *sink, sq_result *res, sq_err *err) {
  if (!p || !sql) return sq_err_set(err, SQ_EUSAGE, "sq_pool_exec: bad arguments");
  tap t = {sink, 0};
  sq_row_sink ts = {&t, sink && sink->columns ? tap_columns : NULL, sink && sink->row ? tap_row : NULL};
  const sq_row_sink *use = sink ? &ts : NULL;
  sq_conn *c;
  int rc = acquire(p, -1, 0, NULL, NULL, &c, err);
  if (rc != SQ_OK) return rc;
  int reused = ((pconn *)c)->reused;
  rc = sq_conn_exec(c, sql, len, params, nparams, use, res, err);
  if (rc == SQ_ECONNECTION) c->dead = 1;
  sq_pool_release(p, c); /* first: with max 1 the retry needs this slot */
  if (rc != SQ_ECONNECTION || !reused || t.delivered || !sq_sql_is_read(sql, len)) return rc;

  rc = acquire(p, -1, 1, NULL, NULL, &c, err);
  if (rc != SQ_OK) return rc;
  rc = sq_conn_exec(c, sql, len, params, nparams, sink, res, err);
  if (rc == SQ_ECONNECTION) c->dead = 1;
  sq_pool_release(p, c);
  return rc;
}
