/*
 * replset.c - read replicas: a primary pool, one pool per replica, and
 * the choice of where a read goes (sqorm.h, "Read replicas").
 *
 * The set only chooses; connections, their health checks and their
 * limits stay the pools' business. What it adds is per-replica health:
 * a replica that failed is skipped (sq_backoff, the same steps as a
 * failed host of a multi-host config) while reads rotate over the rest.
 * Everything mutable sits under one small lock (the health array) plus
 * an atomic round-robin counter; no I/O ever happens under the lock.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLSET_MAX 64

typedef struct rstate {
  sq_backoff b;
  int64_t picks, failed;
  char why[160];
} rstate;

struct sq_replset {
  atomic_int refs;
  int shared;                 /* in the registry (set before publication) */
  struct sq_replset *reg_next;
  const sq_driver *drv;
  sq_config wcfg;             /* copies, for named sets and messages */
  sq_config *rcfgs;
  int n;
  sq_replset_opts o;
  sq_pool *primary;
  sq_pool **reads;
  pthread_mutex_t mu;         /* guards st[] and primary_picks */
  rstate *st;
  int64_t primary_picks;
  atomic_uint rr;
};

void sq_replset_opts_init(sq_replset_opts *o) {
  o->sticky = 0;
  o->fallback = 1;
  o->backoff = SQ_HOST_BACKOFF_DEFAULT;
}

double sq_replset_now(void) { return sq_now(); }

/* Options with the defaults filled in and checked. */
static int norm_opts(const sq_replset_opts *in, sq_replset_opts *o, sq_err *err) {
  sq_replset_opts_init(o);
  if (in) *o = *in;
  if (!(o->sticky >= 0) || o->sticky > 1e9)
    return sq_err_set(err, SQ_EUSAGE, "replication option 'sticky' must be a non-negative number of seconds");
  if (o->backoff == 0) o->backoff = SQ_HOST_BACKOFF_DEFAULT;
  if (!(o->backoff > 0) || o->backoff > 1e6)
    return sq_err_set(err, SQ_EUSAGE, "replication option 'backoff' must be a positive number of seconds");
  o->fallback = o->fallback != 0;
  return SQ_OK;
}

/* "host:port" (and "+N" more hosts) of a config, for messages. */
static void where(const sq_config *c, char *buf, size_t n) {
  const char *h = c->host ? c->host : "localhost";
  int v6 = strchr(h, ':') != NULL;
  int k = snprintf(buf, n, "%s%s%s:%d", v6 ? "[" : "", h, v6 ? "]" : "", c->port);
  if (c->nhosts > 1 && k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, " +%d more", c->nhosts - 1);
}

static void set_free(sq_replset *s) {
  if (s->primary) sq_pool_close(s->primary);
  for (int i = 0; i < s->n; i++)
    if (s->reads && s->reads[i]) sq_pool_close(s->reads[i]);
  free(s->reads);
  sq_config_free(&s->wcfg);
  for (int i = 0; s->rcfgs && i < s->n; i++) sq_config_free(&s->rcfgs[i]);
  free(s->rcfgs);
  free(s->st);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* Opens one member pool over a copy of cfg named `name` (private). */
static int open_member(const sq_config *cfg, const char *name, const sq_driver *drv, sq_pool **out, sq_err *err) {
  sq_config c = *cfg; /* shallow: the pool deep-copies it */
  c.name = (char *)name;
  return sq_pool_open_driver(&c, drv, out, err);
}

static int set_new(const sq_config *write, const sq_config *reads, int n, const sq_replset_opts *o,
                   const sq_driver *drv, sq_replset **out, sq_err *err) {
  sq_replset *s = calloc(1, sizeof *s);
  if (!s) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    free(s);
    return sq_err_set(err, SQ_EINTERNAL, "replica set: could not create its lock");
  }
  atomic_init(&s->refs, 1);
  atomic_init(&s->rr, 0);
  s->drv = drv;
  s->o = *o;
  s->n = n;
  int rc = SQ_OK;
  if (sq_config_copy(&s->wcfg, write) != SQ_OK) rc = SQ_ENOMEM;
  if (!rc && n) {
    s->rcfgs = calloc((size_t)n, sizeof *s->rcfgs);
    s->reads = calloc((size_t)n, sizeof *s->reads);
    s->st = calloc((size_t)n, sizeof *s->st);
    if (!s->rcfgs || !s->reads || !s->st) rc = SQ_ENOMEM;
    for (int i = 0; !rc && i < n; i++) {
      if (sq_config_copy(&s->rcfgs[i], &reads[i]) != SQ_OK) rc = SQ_ENOMEM;
      else {
        free(s->rcfgs[i].name);
        s->rcfgs[i].name = NULL;
      }
    }
  }
  if (rc) {
    s->n = s->rcfgs ? n : 0;
    set_free(s);
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  const char *name = write->name && write->name[0] ? write->name : NULL;
  rc = open_member(write, name, drv, &s->primary, err);
  for (int i = 0; !rc && i < n; i++) {
    char rname[160];
    snprintf(rname, sizeof rname, "%.140s read %d", name ? name : "replica set", i + 1);
    rc = open_member(&reads[i], rname, drv, &s->reads[i], err);
  }
  if (rc) {
    set_free(s);
    return rc;
  }
  *out = s;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Named sets                                                           */
/* ------------------------------------------------------------------ */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static sq_replset *reg_head;

/* Pool settings filled as the pool fills them, so {max = 5} equals {}. */
static void probe_cfg(const sq_config *in, sq_config *out) {
  *out = *in; /* shallow: only compared */
  if (out->pool.max < 0) out->pool.max = 5;
  if (out->pool.min < 0) out->pool.min = 0;
  if (!(out->pool.acquire_timeout >= 0)) out->pool.acquire_timeout = 30;
  if (!(out->pool.idle_timeout >= 0)) out->pool.idle_timeout = 10;
  if (!(out->pool.max_lifetime >= 0)) out->pool.max_lifetime = 0;
  if (out->pool.pre_ping < 0) out->pool.pre_ping = 0;
  out->pool.pre_ping = out->pool.pre_ping != 0;
}

static int same_cfg(const sq_config *a, const sq_config *b, int ignore_name) {
  sq_config pa, pb;
  probe_cfg(a, &pa);
  probe_cfg(b, &pb);
  if (ignore_name) pa.name = pb.name = NULL;
  return sq_config_equal(&pa, &pb);
}

static int same_set(const sq_replset *s, const sq_config *write, const sq_config *reads, int n,
                    const sq_replset_opts *o, const sq_driver *drv, char *what, size_t wn) {
  if (s->drv != drv) return snprintf(what, wn, "driver"), 0;
  if (!same_cfg(&s->wcfg, write, 0)) return snprintf(what, wn, "write"), 0;
  if (s->n != n) return snprintf(what, wn, "%d read replicas vs %d", s->n, n), 0;
  for (int i = 0; i < n; i++)
    if (!same_cfg(&s->rcfgs[i], &reads[i], 1)) return snprintf(what, wn, "read replica %d", i + 1), 0;
  if (s->o.sticky != o->sticky || s->o.fallback != o->fallback || s->o.backoff != o->backoff)
    return snprintf(what, wn, "sticky, fallback or backoff"), 0;
  return 1;
}

int sq_replset_open_driver(const sq_config *write, const sq_config *reads, int nreads,
                           const sq_replset_opts *opts, const sq_driver *drv, sq_replset **out, sq_err *err) {
  if (out) *out = NULL;
  if (!write || !drv || !out || nreads < 0 || (nreads > 0 && !reads))
    return sq_err_set(err, SQ_EUSAGE, "sq_replset_open: bad arguments");
  if (nreads > REPLSET_MAX)
    return sq_err_set(err, SQ_EUSAGE, "replication: %d read replicas (at most %d)", nreads, REPLSET_MAX);
  if (write->dialect != SQ_DIALECT_MYSQL && write->dialect != SQ_DIALECT_POSTGRES)
    return sq_err_set(err, SQ_EUSAGE, "replication needs a mysql or postgres database, not %s",
                      sq_dialect_name(write->dialect));
  for (int i = 0; i < nreads; i++)
    if (reads[i].dialect != write->dialect)
      return sq_err_set(err, SQ_EUSAGE, "replication: read replica %d is %s, the primary %s", i + 1,
                        sq_dialect_name(reads[i].dialect), sq_dialect_name(write->dialect));
  sq_replset_opts o;
  int rc = norm_opts(opts, &o, err);
  if (rc) return rc;
  if (!write->name || !write->name[0]) return set_new(write, reads, nreads, &o, drv, out, err);

  pthread_mutex_lock(&reg_mu);
  sq_replset *s = reg_head;
  while (s && strcmp(s->wcfg.name, write->name) != 0) s = s->reg_next;
  if (s) {
    char what[96];
    if (!same_set(s, write, reads, nreads, &o, drv, what, sizeof what)) {
      pthread_mutex_unlock(&reg_mu);
      return sq_err_set(err, SQ_EUSAGE, "replica set '%s' already exists with different settings (%s)",
                        write->name, what);
    }
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  } else {
    rc = set_new(write, reads, nreads, &o, drv, &s, err);
    if (rc == SQ_OK) {
      s->shared = 1;
      s->reg_next = reg_head;
      reg_head = s;
    }
  }
  pthread_mutex_unlock(&reg_mu);
  if (rc) return rc;
  *out = s;
  sq_err_clear(err);
  return SQ_OK;
}

int sq_replset_open(const sq_config *write, const sq_config *reads, int nreads, const sq_replset_opts *opts,
                    sq_replset **out, sq_err *err) {
  if (out) *out = NULL;
  if (!write) return sq_err_set(err, SQ_EUSAGE, "sq_replset_open: bad arguments");
  const sq_driver *drv = sq_driver_for(write->dialect);
  if (!drv)
    return sq_err_set(err, SQ_EUSAGE, "no driver for dialect '%s' in this build", sq_dialect_name(write->dialect));
  return sq_replset_open_driver(write, reads, nreads, opts, drv, out, err);
}

void sq_replset_retain(sq_replset *s) {
  if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void sq_replset_close(sq_replset *s) {
  if (!s) return;
  int last;
  if (s->shared) {
    pthread_mutex_lock(&reg_mu);
    last = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1;
    if (last) {
      sq_replset **pp = &reg_head;
      while (*pp && *pp != s) pp = &(*pp)->reg_next;
      if (*pp) *pp = s->reg_next;
    }
    pthread_mutex_unlock(&reg_mu);
  } else {
    last = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1;
  }
  if (last) set_free(s);
}

sq_pool *sq_replset_primary(sq_replset *s) { return s ? s->primary : NULL; }
int sq_replset_nreads(const sq_replset *s) { return s ? s->n : 0; }
const sq_replset_opts *sq_replset_options(const sq_replset *s) { return s ? &s->o : NULL; }

sq_pool *sq_replset_read_pool(sq_replset *s, int i) {
  if (!s || i < -1 || i >= s->n) return NULL;
  return i < 0 ? s->primary : s->reads[i];
}

/* ------------------------------------------------------------------ */
/* Picking                                                              */
/* ------------------------------------------------------------------ */

/* The pick, skipping replicas in `skip` (bit i: tried by this caller). */
static int pick(sq_replset *s, double last_write, uint64_t skip, int *index, sq_pool **pool, sq_err *err) {
  *index = -1;
  *pool = s->primary;
  double now = sq_now();
  if (s->n == 0 || (s->o.sticky > 0 && last_write > 0 && now - last_write < s->o.sticky)) {
    pthread_mutex_lock(&s->mu);
    s->primary_picks++;
    pthread_mutex_unlock(&s->mu);
    return SQ_OK;
  }
  unsigned start = atomic_fetch_add_explicit(&s->rr, 1, memory_order_relaxed);
  int chosen = -1;
  pthread_mutex_lock(&s->mu);
  for (int k = 0; k < s->n && chosen < 0; k++) {
    int i = (int)((start + (unsigned)k) % (unsigned)s->n);
    if (!(skip >> i & 1) && !sq_backoff_down(&s->st[i].b, now)) chosen = i;
  }
  if (chosen >= 0) s->st[chosen].picks++;
  else if (s->o.fallback) s->primary_picks++;
  pthread_mutex_unlock(&s->mu);
  if (chosen >= 0) {
    *index = chosen;
    *pool = s->reads[chosen];
    return SQ_OK;
  }
  if (s->o.fallback) return SQ_OK;
  /* No fallback: say what each replica is doing. */
  char list[900];
  size_t used = 0;
  list[0] = '\0';
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->n && used < sizeof list; i++) {
    char w[120];
    where(&s->rcfgs[i], w, sizeof w);
    const rstate *r = &s->st[i];
    int down = sq_backoff_down(&r->b, now);
    if (down)
      used += (size_t)snprintf(list + used, sizeof list - used, "%sreplica %d (%s) skipped for %.1f s more after %d failure%s%s%.150s",
                               i ? "; " : "", i + 1, w, r->b.until - now, r->b.failures,
                               r->b.failures == 1 ? "" : "s", r->why[0] ? ": " : "", r->why);
    else
      used += (size_t)snprintf(list + used, sizeof list - used, "%sreplica %d (%s) failed just now%s%.150s",
                               i ? "; " : "", i + 1, w, r->why[0] ? ": " : "", r->why);
  }
  pthread_mutex_unlock(&s->mu);
  *pool = NULL;
  sq_err_set(err, SQ_ECONNECTION, "no read replica available (fallback is off): %s", list);
  sq_err_native(err, "", "08001");
  return SQ_ECONNECTION;
}

int sq_replset_pick_read(sq_replset *s, double last_write, int *index, sq_pool **pool, sq_err *err) {
  if (index) *index = -1;
  if (pool) *pool = NULL;
  if (!s || !index || !pool) return sq_err_set(err, SQ_EUSAGE, "sq_replset_pick_read: bad arguments");
  return pick(s, last_write, 0, index, pool, err);
}

void sq_replset_mark_failed(sq_replset *s, int i, const sq_err *why) {
  if (!s || i < 0 || i >= s->n) return;
  double now = sq_now();
  pthread_mutex_lock(&s->mu);
  rstate *r = &s->st[i];
  if (!sq_backoff_down(&r->b, now)) sq_backoff_fail(&r->b, s->o.backoff, now);
  r->failed++;
  if (why && why->kind != SQ_OK) snprintf(r->why, sizeof r->why, "%.159s", why->msg);
  pthread_mutex_unlock(&s->mu);
}

void sq_replset_mark_ok(sq_replset *s, int i) {
  if (!s || i < 0 || i >= s->n) return;
  pthread_mutex_lock(&s->mu);
  sq_backoff_ok(&s->st[i].b);
  pthread_mutex_unlock(&s->mu);
}

int sq_replset_state(sq_replset *s, int i, sq_replica_state *st) {
  memset(st, 0, sizeof *st);
  if (!s || i < -1 || i >= s->n) return SQ_EUSAGE;
  double now = sq_now();
  pthread_mutex_lock(&s->mu);
  if (i < 0) {
    st->picks = s->primary_picks;
  } else {
    const rstate *r = &s->st[i];
    st->down = sq_backoff_down(&r->b, now);
    st->retry_in = st->down ? r->b.until - now : 0;
    st->failures = r->b.failures;
    st->picks = r->picks;
    st->failed = r->failed;
    snprintf(st->last_error, sizeof st->last_error, "%s", r->why);
  }
  pthread_mutex_unlock(&s->mu);
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Blocking forms                                                       */
/* ------------------------------------------------------------------ */

/* A failure that says the member can't be reached (rather than that the
 * caller asked for something wrong or the pool is busy). */
static int unreachable(int kind) { return kind == SQ_ECONNECTION || kind == SQ_ETIMEOUT; }

/* Runs `get` on picks until one works: replicas whose get fails with an
 * unreachable kind are marked and skipped, then the primary (fallback). */
typedef int (*get_fn)(sq_pool *p, void *ud, sq_err *err);

static int with_failover(sq_replset *s, double last_write, get_fn get, void *ud, int *index, sq_err *err) {
  uint64_t skip = 0;
  for (int attempt = 0; attempt <= s->n; attempt++) {
    sq_pool *p;
    int i;
    int rc = pick(s, last_write, skip, &i, &p, err);
    if (rc) return rc;
    *index = i;
    rc = get(p, ud, err);
    if (i < 0) return rc;
    if (rc == SQ_OK) {
      sq_replset_mark_ok(s, i);
      return SQ_OK;
    }
    if (!unreachable(rc)) return rc;
    sq_replset_mark_failed(s, i, err);
    skip |= (uint64_t)1 << i;
  }
  return err->kind ? err->kind : sq_err_set(err, SQ_ECONNECTION, "no read replica answered");
}

typedef struct acq_args {
  double timeout;
  const sq_holder *h;
  sq_conn **out;
} acq_args;

static int get_conn(sq_pool *p, void *ud, sq_err *err) {
  acq_args *a = ud;
  return sq_pool_acquire_as(p, a->timeout, a->h, a->out, err);
}

int sq_replset_acquire_read(sq_replset *s, double last_write, double timeout, const sq_holder *h, sq_conn **out,
                            int *index, sq_err *err) {
  int dummy;
  if (!index) index = &dummy;
  *index = -1;
  if (out) *out = NULL;
  if (!s || !out) return sq_err_set(err, SQ_EUSAGE, "sq_replset_acquire_read: bad arguments");
  acq_args a = {timeout, h, out};
  return with_failover(s, last_write, get_conn, &a, index, err);
}

/* Notes whether anything reached the caller's sink (then no retry). */
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

int sq_replset_exec_read(sq_replset *s, double last_write, const char *sql, size_t len, const sq_value *params,
                         int nparams, const sq_row_sink *sink, sq_result *res, int *index, sq_err *err) {
  int dummy;
  if (!index) index = &dummy;
  *index = -1;
  if (!s || !sql) return sq_err_set(err, SQ_EUSAGE, "sq_replset_exec_read: bad arguments");
  int retry_ok = sq_sql_is_read(sql, len);
  int rc = SQ_OK;
  /* Each replica may lose a connection once (its pooled connections died
   * with a restart: the next acquire opens a fresh one, and a replica
   * that can't be reached is marked there), the primary once. */
  for (int attempt = 0; attempt <= s->n + 1; attempt++) {
    sq_conn *c;
    rc = sq_replset_acquire_read(s, last_write, -1, NULL, &c, index, err);
    if (rc) return rc;
    tap t = {sink, 0};
    sq_row_sink ts = {&t, sink && sink->columns ? tap_columns : NULL, sink && sink->row ? tap_row : NULL};
    rc = sq_conn_exec(c, sql, len, params, nparams, sink ? &ts : NULL, res, err);
    if (rc == SQ_ECONNECTION) sq_conn_mark_dead(c);
    sq_pool_release(NULL, c);
    if (rc != SQ_ECONNECTION || t.delivered || !retry_ok) return rc;
    if (*index < 0 && attempt > 0) return rc;
  }
  return rc;
}

typedef struct tx_args {
  const sq_holder *h;
  int isolation;
  sq_tx **out;
} tx_args;

static int get_tx(sq_pool *p, void *ud, sq_err *err) {
  tx_args *a = ud;
  return sq_tx_begin(p, a->h, a->isolation, a->out, err);
}

int sq_replset_begin_read(sq_replset *s, double last_write, const sq_holder *h, int isolation, sq_tx **out,
                          int *index, sq_err *err) {
  int dummy;
  if (!index) index = &dummy;
  *index = -1;
  if (out) *out = NULL;
  if (!s || !out) return sq_err_set(err, SQ_EUSAGE, "sq_replset_begin_read: bad arguments");
  tx_args a = {h, isolation, out};
  int rc = with_failover(s, last_write, get_tx, &a, index, err);
  if (rc || s->wcfg.dialect != SQ_DIALECT_POSTGRES) return rc;
  /* PostgreSQL: read-only wherever it runs (the first statement of the
   * transaction, so allowed). */
  sq_conn *c;
  rc = sq_tx_conn(*out, &c, err);
  if (!rc) {
    static const char ro[] = "SET TRANSACTION READ ONLY";
    rc = sq_conn_exec(c, ro, sizeof ro - 1, NULL, 0, NULL, NULL, err);
    sq_tx_conn_done(*out, rc ? err : NULL);
  }
  if (rc) {
    sq_err e2;
    sq_err_clear(&e2);
    sq_tx_rollback(*out, &e2);
    sq_tx_free(*out);
    *out = NULL;
  }
  return rc;
}
