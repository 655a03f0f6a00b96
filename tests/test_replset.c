/*
 * test_replset.c - the replica set's choices over a fake driver whose
 * "servers" are named by the config's host: each can be taken down (its
 * connects fail, its open connections die on their next use) and brought
 * back, and every SELECT answers with the name of the server it ran on.
 *
 * What it checks: round robin over healthy replicas; a replica that fails
 * to connect is skipped for the backoff (doubling) and tried again after
 * it; fallback to the primary, or kind connection naming every replica
 * (no password); sticky reads after a write; statements that lose their
 * connection retried elsewhere; read transactions; named sets shared and
 * checked; per-pool stats; threads (run it under TSan too).
 * `test_replset NAME...` runs only the named tests.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "sqorm.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      atomic_fetch_add(&failures, 1);                                          \
    }                                                                          \
  } while (0)

#define CHECK_EQ(a, b)                                                                                  \
  do {                                                                                                  \
    long long a_ = (long long)(a), b_ = (long long)(b);                                                 \
    if (a_ != b_) {                                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, #b, a_, \
              b_);                                                                                      \
      atomic_fetch_add(&failures, 1);                                                                   \
    }                                                                                                   \
  } while (0)

static void sleep_s(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ------------------------------------------------------------------ */
/* The fake servers and driver                                          */
/* ------------------------------------------------------------------ */

#define NSERVERS 5
static const char *const server_names[NSERVERS] = {"primary", "r1", "r2", "r3", "r4"};
static atomic_int srv_down[NSERVERS];  /* connects fail */
static atomic_int srv_gen[NSERVERS];   /* bumped when the server restarts: open connections die */
static atomic_int srv_opens[NSERVERS]; /* connect attempts */

static int server_of(const char *host) {
  for (int i = 0; i < NSERVERS; i++)
    if (host && !strcmp(host, server_names[i])) return i;
  return -1;
}

typedef struct fconn {
  int srv, gen, dead, in_tx;
} fconn;

static int f_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  int s = server_of(cfg->host);
  if (s < 0) return sq_err_set(err, SQ_EUSAGE, "fake: unknown host %s", cfg->host ? cfg->host : "(none)");
  atomic_fetch_add(&srv_opens[s], 1);
  if (atomic_load(&srv_down[s])) {
    /* a client library that echoes its password: the pool scrubs it */
    sq_err_set(err, SQ_ECONNECTION, "fake: can't connect to %s (password %s)", cfg->host,
               cfg->password ? cfg->password : "");
    sq_err_native(err, "2003", "HY000");
    return SQ_ECONNECTION;
  }
  fconn *c = calloc(1, sizeof *c);
  if (!c) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  c->srv = s;
  c->gen = atomic_load(&srv_gen[s]);
  *out = (sq_dconn *)c;
  return SQ_OK;
}

static void f_close(sq_dconn *h) { free(h); }

static int gone(fconn *c) { return c->dead || c->gen != atomic_load(&srv_gen[c->srv]); }

static int lost(fconn *c, sq_err *err) {
  c->dead = 1;
  sq_err_set(err, SQ_ECONNECTION, "fake: server has gone away");
  sq_err_native(err, "2006", "08S01");
  return SQ_ECONNECTION;
}

static int f_ping(sq_dconn *h, sq_err *err) { return gone((fconn *)h) ? lost((fconn *)h, err) : SQ_OK; }
static int f_is_dead(sq_dconn *h) { return ((fconn *)h)->dead; }

/* Every statement answers one row: the server's name. A write on a
 * replica fails as a read-only server would. */
static int f_exec(sq_dconn *h, const char *sql, size_t len, const sq_value *params, int nparams,
                  const sq_row_sink *sink, sq_result *res, sq_err *err) {
  (void)len, (void)params, (void)nparams;
  fconn *c = (fconn *)h;
  if (gone(c)) return lost(c, err);
  if (!strncmp(sql, "INSERT", 6) && c->srv != 0) {
    sq_err_set(err, SQ_EDATABASE, "fake: read-only server");
    sq_err_native(err, "1290", "HY000");
    return SQ_EDATABASE;
  }
  if (res) {
    res->affected_rows = 0;
    res->rows = 1;
    res->has_result_set = 1;
  }
  if (sink) {
    sq_column col = {"server", 6, SQ_VTEXT};
    const char *n = server_names[c->srv];
    sq_value v = sq_text(n, strlen(n));
    if (sink->columns && sink->columns(sink->ud, 1, &col, err)) return SQ_EUSAGE;
    if (sink->row && sink->row(sink->ud, 1, &v, err)) return SQ_EUSAGE;
  }
  return SQ_OK;
}

static int f_in_tx(sq_dconn *h) { return ((fconn *)h)->in_tx; }
static int f_reset(sq_dconn *h, int full, sq_err *err) {
  (void)full;
  fconn *c = (fconn *)h;
  if (gone(c)) return lost(c, err);
  c->in_tx = 0;
  return SQ_OK;
}
static int f_begin(sq_dconn *h, int iso, sq_err *err) {
  (void)iso;
  fconn *c = (fconn *)h;
  if (gone(c)) return lost(c, err);
  c->in_tx = 1;
  return SQ_OK;
}
static int f_end(sq_dconn *h, sq_err *err) { return f_reset(h, 0, err); }
static int f_sp(sq_dconn *h, const char *name, sq_err *err) {
  (void)name;
  return gone((fconn *)h) ? lost((fconn *)h, err) : SQ_OK;
}
static int f_cursor_open(sq_dconn *h, const char *sql, size_t len, const sq_value *params, int nparams,
                         const sq_row_sink *sink, sq_dcursor **out, sq_err *err) {
  (void)h, (void)sql, (void)len, (void)params, (void)nparams, (void)sink, (void)out;
  return sq_err_set(err, SQ_EUSAGE, "fake: no cursors");
}
static int f_cursor_fetch(sq_dcursor *cur, int *has_row, sq_err *err) {
  (void)cur, (void)err;
  *has_row = 0;
  return SQ_OK;
}
static void f_cursor_close(sq_dcursor *cur) { (void)cur; }

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
  .commit = f_end,
  .rollback = f_end,
  .savepoint = f_sp,
  .release = f_sp,
  .rollback_to = f_sp,
  .in_transaction = f_in_tx,
  .reset = f_reset,
};

/* pool.c's sq_pool_open calls sq_driver_for; the test always passes the
 * fake driver, so a weak stand-in is enough when driver.c is absent. */
__attribute__((weak)) const sq_driver *sq_driver_for(int dialect) {
  (void)dialect;
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static void reset_servers(void) {
  for (int i = 0; i < NSERVERS; i++) {
    atomic_store(&srv_down[i], 0);
    atomic_fetch_add(&srv_gen[i], 1);
    atomic_store(&srv_opens[i], 0);
  }
}

static void server_cfg(sq_config *c, const char *host, int max) {
  sq_err e;
  sq_config_init(c);
  sq_config_set(c, "dialect", "mysql", &e);
  sq_config_set(c, "host", host, &e);
  sq_config_set(c, "user", "u", &e);
  sq_config_set(c, "password", "s3cret", &e);
  char m[16];
  snprintf(m, sizeof m, "%d", max);
  sq_config_set(c, "pool.max", m, &e);
  sq_config_set(c, "pool.acquire_timeout", "2", &e);
  sq_config_finish(c, &e);
}

/* A set: the primary and nreads replicas r1..rN. */
static sq_replset *open_set(int nreads, double sticky, int fallback, double backoff, const char *name) {
  sq_config w, r[4];
  server_cfg(&w, "primary", 4);
  if (name) {
    sq_err e;
    sq_config_set(&w, "name", name, &e);
  }
  for (int i = 0; i < nreads; i++) server_cfg(&r[i], server_names[1 + i], 4);
  sq_replset_opts o;
  sq_replset_opts_init(&o);
  o.sticky = sticky;
  o.fallback = fallback;
  o.backoff = backoff;
  sq_replset *s = NULL;
  sq_err e;
  int rc = sq_replset_open_driver(&w, r, nreads, &o, &fake, &s, &e);
  if (rc) fprintf(stderr, "open_set: %s\n", e.msg);
  CHECK(rc == SQ_OK && s);
  sq_config_free(&w);
  for (int i = 0; i < nreads; i++) sq_config_free(&r[i]);
  return s;
}

typedef struct name_sink {
  char name[32];
  int rows;
} name_sink;

static int ns_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  name_sink *n = ud;
  if (ncols > 0 && v[0].type == SQ_VTEXT) snprintf(n->name, sizeof n->name, "%.*s", (int)v[0].u.s.n, v[0].u.s.p);
  n->rows++;
  return 0;
}

/* Runs a read through the set: the server it ran on, or NULL with e set. */
static const char *read_on(sq_replset *s, double last_write, int *index, sq_err *e) {
  static _Thread_local name_sink n;
  memset(&n, 0, sizeof n);
  sq_row_sink sink = {&n, NULL, ns_row};
  int rc = sq_replset_exec_read(s, last_write, "SELECT server", 13, NULL, 0, &sink, NULL, index, e);
  return rc ? NULL : n.name;
}

static int server_index(const char *name) { return name ? server_of(name) : -1; }

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_round_robin(void) {
  reset_servers();
  sq_replset *s = open_set(3, 0, 1, 0.2, NULL);
  if (!s) return;
  CHECK_EQ(sq_replset_nreads(s), 3);
  CHECK(sq_replset_read_pool(s, -1) == sq_replset_primary(s));
  CHECK(sq_replset_read_pool(s, 3) == NULL);
  int seen[NSERVERS] = {0};
  for (int k = 0; k < 30; k++) {
    sq_err e;
    int idx;
    const char *on = read_on(s, 0, &idx, &e);
    CHECK(on != NULL);
    int srv = server_index(on);
    CHECK(srv >= 1 && srv <= 3 && idx == srv - 1);
    if (srv >= 0) seen[srv]++;
  }
  CHECK_EQ(seen[0], 0);
  CHECK_EQ(seen[1], 10);
  CHECK_EQ(seen[2], 10);
  CHECK_EQ(seen[3], 10);
  /* a pick is pure: no I/O, just the pool */
  sq_pool *p;
  int idx;
  sq_err e;
  CHECK(sq_replset_pick_read(s, 0, &idx, &p, &e) == SQ_OK && idx >= 0 && p == sq_replset_read_pool(s, idx));
  sq_replica_state st;
  CHECK(sq_replset_state(s, 0, &st) == SQ_OK && st.picks >= 10 && !st.down);
  CHECK(sq_replset_state(s, -1, &st) == SQ_OK && st.picks == 0);
  CHECK(sq_replset_state(s, 7, &st) == SQ_EUSAGE);
  /* each pool has its own stats: one connection reused per replica */
  for (int i = 0; i < 3; i++) {
    sq_pool_stats ps;
    sq_pool_stats_get(sq_replset_read_pool(s, i), &ps);
    CHECK_EQ(ps.created, 1);
    CHECK_EQ(ps.in_use, 0);
  }
  sq_pool_stats ps;
  sq_pool_stats_get(sq_replset_primary(s), &ps);
  CHECK_EQ(ps.created, 0);
  sq_replset_close(s);
}

static void test_backoff(void) {
  reset_servers();
  sq_replset *s = open_set(3, 0, 1, 0.2, NULL);
  if (!s) return;
  atomic_store(&srv_down[2], 1); /* r2 */
  int seen[NSERVERS] = {0};
  for (int k = 0; k < 30; k++) {
    sq_err e;
    const char *on = read_on(s, 0, NULL, &e);
    CHECK(on != NULL); /* never an error: the next replica answers */
    if (on) seen[server_index(on)]++;
  }
  CHECK_EQ(seen[2], 0);
  CHECK_EQ(seen[1] + seen[3], 30);
  CHECK_EQ(atomic_load(&srv_opens[2]), 1); /* tried once, then skipped */
  sq_replica_state st;
  sq_replset_state(s, 1, &st);
  CHECK(st.down && st.failures == 1 && st.retry_in > 0 && st.retry_in <= 0.2);
  CHECK(strstr(st.last_error, "can't connect to r2") != NULL);
  CHECK(strstr(st.last_error, "s3cret") == NULL); /* the pool scrubbed the password */
  /* after the backoff it is tried again; failing again doubles the wait */
  sleep_s(0.25);
  for (int k = 0; k < 6; k++) {
    sq_err e;
    CHECK(read_on(s, 0, NULL, &e) != NULL);
  }
  CHECK_EQ(atomic_load(&srv_opens[2]), 2);
  sq_replset_state(s, 1, &st);
  CHECK(st.down && st.failures == 2 && st.retry_in > 0.2 && st.retry_in <= 0.4);
  /* back up: used again once the wait is over, and healthy */
  atomic_store(&srv_down[2], 0);
  sleep_s(0.45);
  memset(seen, 0, sizeof seen);
  for (int k = 0; k < 30; k++) {
    sq_err e;
    const char *on = read_on(s, 0, NULL, &e);
    if (on) seen[server_index(on)]++;
  }
  CHECK_EQ(seen[2], 10);
  sq_replset_state(s, 1, &st);
  CHECK(!st.down && st.failures == 0 && st.failed == 2);
  /* the caps: 12 x backoff at most */
  sq_replset_mark_failed(s, 0, NULL);
  for (int k = 0; k < 10; k++) { /* marks while skipped don't lengthen the wait */
    sq_replset_mark_failed(s, 0, NULL);
  }
  sq_replset_state(s, 0, &st);
  CHECK(st.failures == 1 && st.retry_in <= 0.2);
  sq_replset_mark_ok(s, 0);
  sq_replset_state(s, 0, &st);
  CHECK(!st.down && st.failures == 0);
  sq_replset_close(s);
}

static void test_fallback(void) {
  reset_servers();
  for (int i = 1; i <= 2; i++) atomic_store(&srv_down[i], 1);
  /* fallback on: reads go to the primary */
  sq_replset *s = open_set(2, 0, 1, 5, NULL);
  if (!s) return;
  sq_err e;
  int idx = 7;
  const char *on = read_on(s, 0, &idx, &e);
  CHECK(on && !strcmp(on, "primary") && idx == -1);
  CHECK_EQ(atomic_load(&srv_opens[1]), 1);
  CHECK_EQ(atomic_load(&srv_opens[2]), 1);
  on = read_on(s, 0, &idx, &e); /* both skipped now: straight to the primary */
  CHECK(on && !strcmp(on, "primary") && idx == -1);
  CHECK_EQ(atomic_load(&srv_opens[1]) + atomic_load(&srv_opens[2]), 2);
  sq_replica_state st;
  sq_replset_state(s, -1, &st);
  CHECK_EQ(st.picks, 2);
  sq_replset_close(s);

  /* fallback off: kind connection, naming every replica, no password */
  reset_servers();
  for (int i = 1; i <= 2; i++) atomic_store(&srv_down[i], 1);
  s = open_set(2, 0, 0, 5, NULL);
  if (!s) return;
  on = read_on(s, 0, &idx, &e);
  CHECK(on == NULL && e.kind == SQ_ECONNECTION);
  CHECK(strstr(e.msg, "no read replica available (fallback is off)") != NULL);
  CHECK(strstr(e.msg, "replica 1 (r1:3306)") != NULL && strstr(e.msg, "replica 2 (r2:3306)") != NULL);
  CHECK(strstr(e.msg, "can't connect to r2") != NULL);
  CHECK(strstr(e.msg, "s3cret") == NULL);
  if (strstr(e.msg, "s3cret") || !strstr(e.msg, "replica 2")) fprintf(stderr, "message: %s\n", e.msg);
  CHECK_EQ(atomic_load(&srv_opens[0]), 0); /* the primary was never asked */
  sq_pool *p;
  CHECK(sq_replset_pick_read(s, 0, &idx, &p, &e) == SQ_ECONNECTION && !p);
  CHECK(strstr(e.msg, "skipped for") != NULL);
  sq_conn *c = NULL;
  CHECK(sq_replset_acquire_read(s, 0, -1, NULL, &c, &idx, &e) == SQ_ECONNECTION && !c);
  sq_replset_close(s);

  /* no replicas: everything goes to the primary */
  reset_servers();
  s = open_set(0, 0, 0, 5, NULL);
  if (!s) return;
  on = read_on(s, 0, &idx, &e);
  CHECK(on && !strcmp(on, "primary") && idx == -1);
  sq_replset_close(s);
}

static void test_sticky(void) {
  reset_servers();
  sq_replset *s = open_set(2, 0.3, 1, 5, NULL);
  if (!s) return;
  sq_err e;
  double now = sq_replset_now();
  const char *on = read_on(s, now, NULL, &e); /* just wrote: the primary */
  CHECK(on && !strcmp(on, "primary"));
  on = read_on(s, 0, NULL, &e); /* never wrote */
  CHECK(on && strcmp(on, "primary") != 0);
  on = read_on(s, now - 1, NULL, &e); /* wrote long ago */
  CHECK(on && strcmp(on, "primary") != 0);
  sleep_s(0.35);
  on = read_on(s, now, NULL, &e); /* the window has passed */
  CHECK(on && strcmp(on, "primary") != 0);
  CHECK(sq_replset_options(s)->sticky == 0.3);
  sq_replset_close(s);
  /* sticky 0: off */
  s = open_set(2, 0, 1, 5, NULL);
  if (!s) return;
  on = read_on(s, sq_replset_now(), NULL, &e);
  CHECK(on && strcmp(on, "primary") != 0);
  sq_replset_close(s);
}

static void test_lost_connections(void) {
  reset_servers();
  sq_replset *s = open_set(2, 0, 1, 5, NULL);
  if (!s) return;
  sq_err e;
  for (int k = 0; k < 4; k++) CHECK(read_on(s, 0, NULL, &e) != NULL); /* one pooled connection each */
  /* both replicas restart: their pooled connections are dead, the
   * servers are up. The read is retried on a fresh connection. */
  atomic_fetch_add(&srv_gen[1], 1);
  atomic_fetch_add(&srv_gen[2], 1);
  for (int k = 0; k < 4; k++) {
    const char *on = read_on(s, 0, NULL, &e);
    CHECK(on && strcmp(on, "primary") != 0);
  }
  sq_replica_state st;
  sq_replset_state(s, 0, &st);
  CHECK(!st.down); /* a lost connection with the server up marks nothing */
  /* r1 dies for good: its connection is lost, the reconnect fails, it is
   * skipped, and the read still succeeds elsewhere. */
  atomic_store(&srv_down[1], 1);
  atomic_fetch_add(&srv_gen[1], 1);
  for (int k = 0; k < 6; k++) {
    const char *on = read_on(s, 0, NULL, &e);
    CHECK(on && !strcmp(on, "r2"));
  }
  sq_replset_state(s, 0, &st);
  CHECK(st.down && st.failures == 1);
  /* a write is not retried (and goes to the replica only if asked to) */
  sq_conn *c;
  int idx;
  CHECK(sq_replset_acquire_read(s, 0, -1, NULL, &c, &idx, &e) == SQ_OK && idx == 1);
  if (c) {
    CHECK(sq_conn_exec(c, "INSERT x", 8, NULL, 0, NULL, NULL, &e) == SQ_EDATABASE);
    sq_pool_release(NULL, c);
  }
  sq_replset_close(s);
}

static void test_read_tx(void) {
  reset_servers();
  atomic_store(&srv_down[1], 1);
  sq_replset *s = open_set(2, 0, 1, 5, NULL);
  if (!s) return;
  sq_tx *tx = NULL;
  int idx = -5;
  sq_err e;
  CHECK(sq_replset_begin_read(s, 0, NULL, SQ_ISO_DEFAULT, &tx, &idx, &e) == SQ_OK);
  CHECK(tx && idx == 1); /* r1 is down: r2 */
  if (tx) {
    CHECK(sq_tx_pool(tx) == sq_replset_read_pool(s, 1));
    sq_conn *c;
    CHECK(sq_tx_conn(tx, &c, &e) == SQ_OK);
    name_sink n = {{0}, 0};
    sq_row_sink sink = {&n, NULL, ns_row};
    CHECK(sq_conn_exec(c, "SELECT 1", 8, NULL, 0, &sink, NULL, &e) == SQ_OK && !strcmp(n.name, "r2"));
    sq_tx_conn_done(tx, NULL);
    CHECK(sq_tx_commit(tx, &e) == SQ_OK);
    sq_tx_free(tx);
  }
  /* sticky: the primary */
  sq_replset_close(s);
  s = open_set(2, 10, 1, 5, NULL);
  if (!s) return;
  CHECK(sq_replset_begin_read(s, sq_replset_now(), NULL, SQ_ISO_DEFAULT, &tx, &idx, &e) == SQ_OK && idx == -1);
  if (tx) {
    CHECK(sq_tx_rollback(tx, &e) == SQ_OK);
    sq_tx_free(tx);
  }
  sq_replset_close(s);
}

static void test_named(void) {
  reset_servers();
  sq_replset *a = open_set(2, 0, 1, 5, "shared_set");
  sq_replset *b = open_set(2, 0, 1, 5, "shared_set");
  CHECK(a && a == b);
  /* health is shared too */
  if (a) sq_replset_mark_failed(a, 0, NULL);
  sq_replica_state st;
  if (b) sq_replset_state(b, 0, &st);
  CHECK(st.down);
  /* different settings: refused, naming what differs */
  sq_config w, r[3];
  sq_err e;
  server_cfg(&w, "primary", 4);
  sq_config_set(&w, "name", "shared_set", &e);
  for (int i = 0; i < 3; i++) server_cfg(&r[i], server_names[1 + i], 4);
  sq_replset *c = NULL;
  CHECK(sq_replset_open_driver(&w, r, 3, NULL, &fake, &c, &e) == SQ_EUSAGE && !c);
  CHECK(strstr(e.msg, "replica set 'shared_set' already exists with different settings (2 read replicas vs 3)"));
  if (!strstr(e.msg, "2 read replicas vs 3")) fprintf(stderr, "message: %s\n", e.msg);
  sq_replset_opts o;
  sq_replset_opts_init(&o);
  o.backoff = 5;
  o.sticky = 2;
  CHECK(sq_replset_open_driver(&w, r, 2, &o, &fake, &c, &e) == SQ_EUSAGE && strstr(e.msg, "sticky"));
  sq_config_free(&r[1]);
  server_cfg(&r[1], "r3", 4);
  o.sticky = 0;
  CHECK(sq_replset_open_driver(&w, r, 2, &o, &fake, &c, &e) == SQ_EUSAGE && strstr(e.msg, "read replica 2"));
  /* a read config's own name is ignored */
  sq_config_free(&r[1]);
  server_cfg(&r[1], "r2", 4);
  sq_config_set(&r[0], "name", "whatever", &e);
  CHECK(sq_replset_open_driver(&w, r, 2, &o, &fake, &c, &e) == SQ_OK && c == a);
  if (c) sq_replset_close(c);
  /* bad input */
  CHECK(sq_replset_open_driver(&w, r, -1, NULL, &fake, &c, &e) == SQ_EUSAGE);
  sq_config_free(&w);
  server_cfg(&w, "primary", 4);
  sq_config_set(&r[1], "dialect", "postgres", &e);
  CHECK(sq_replset_open_driver(&w, r, 2, NULL, &fake, &c, &e) == SQ_EUSAGE && strstr(e.msg, "read replica 2 is postgres"));
  sq_config_free(&w);
  sq_config_init(&w);
  sq_config_set(&w, "dialect", "sqlite", &e);
  sq_config_finish(&w, &e);
  CHECK(sq_replset_open_driver(&w, NULL, 0, NULL, &fake, &c, &e) == SQ_EUSAGE && strstr(e.msg, "mysql or postgres"));
  o.backoff = -1;
  sq_config_free(&w);
  server_cfg(&w, "primary", 4);
  CHECK(sq_replset_open_driver(&w, NULL, 0, &o, &fake, &c, &e) == SQ_EUSAGE);
  sq_config_free(&w);
  for (int i = 0; i < 3; i++) sq_config_free(&r[i]);
  if (b) sq_replset_close(b);
  /* still open through a: a new open with other settings still conflicts */
  if (a) sq_replset_close(a);
  /* gone: the name is free again for any settings */
  a = open_set(1, 0, 1, 5, "shared_set");
  CHECK(a != NULL);
  if (a) sq_replset_close(a);
}

typedef struct hammer_arg {
  sq_replset *s;
  int errors, reads;
} hammer_arg;

static void *hammer(void *p) {
  hammer_arg *a = p;
  for (int k = 0; k < 400; k++) {
    sq_err e;
    sq_conn *c;
    int idx;
    if (sq_replset_acquire_read(a->s, (k % 7 == 0) ? sq_replset_now() : 0, -1, NULL, &c, &idx, &e)) {
      a->errors++;
      continue;
    }
    name_sink n = {{0}, 0};
    sq_row_sink sink = {&n, NULL, ns_row};
    if (sq_conn_exec(c, "SELECT 1", 8, NULL, 0, &sink, NULL, &e) == SQ_OK) a->reads++;
    sq_pool_release(NULL, c);
  }
  return NULL;
}

static void test_threads(void) {
  reset_servers();
  sq_replset *s = open_set(3, 0.001, 1, 0.01, NULL);
  if (!s) return;
  pthread_t t[8];
  hammer_arg args[8];
  for (int i = 0; i < 8; i++) {
    args[i] = (hammer_arg){s, 0, 0};
    pthread_create(&t[i], NULL, hammer, &args[i]);
  }
  for (int k = 0; k < 20; k++) { /* replicas flap under load */
    atomic_store(&srv_down[1 + k % 3], 1);
    atomic_fetch_add(&srv_gen[1 + k % 3], 1);
    sleep_s(0.005);
    atomic_store(&srv_down[1 + k % 3], 0);
  }
  int reads = 0, errors = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    reads += args[i].reads;
    errors += args[i].errors;
  }
  CHECK_EQ(errors, 0); /* fallback: an acquire never fails */
  CHECK(reads > 8 * 400 * 9 / 10); /* a statement may lose its connection to a flap */
  for (int i = -1; i < 3; i++) {
    sq_pool_stats ps;
    sq_pool_stats_get(sq_replset_read_pool(s, i), &ps);
    CHECK_EQ(ps.in_use, 0);
    CHECK(ps.size <= 4);
  }
  sq_replset_close(s);
}

static const struct {
  const char *name;
  void (*fn)(void);
} tests[] = {
  {"round_robin", test_round_robin}, {"backoff", test_backoff}, {"fallback", test_fallback},
  {"sticky", test_sticky},           {"lost", test_lost_connections}, {"read_tx", test_read_tx},
  {"named", test_named},             {"threads", test_threads},
};

int main(int argc, char **argv) {
  sq_err e;
  if (sq_global_init(&e) != SQ_OK) {
    fprintf(stderr, "init: %s\n", e.msg);
    return 1;
  }
  for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
    int run = argc < 2;
    for (int a = 1; a < argc; a++) run |= !strcmp(argv[a], tests[i].name);
    if (!run) continue;
    int before = atomic_load(&failures);
    tests[i].fn();
    printf("%s %s\n", atomic_load(&failures) == before ? "ok" : "FAIL", tests[i].name);
  }
  int f = atomic_load(&failures);
  printf("%d failure%s\n", f, f == 1 ? "" : "s");
  return f ? 1 : 0;
}
