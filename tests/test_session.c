/*
 * test_session.c - session state and the pool, over a counting fake
 * driver (one per dialect, so each dialect's lexer classifies):
 *   - a raw statement that changes session state (sq_conn_exec) marks its
 *     connection dirty, and release runs one full reset;
 *   - a plain raw statement, and any statement sqorm renders
 *     (sq_conn_exec_native), cause no reset at all;
 *   - a driver's needs_reset also asks for a full reset;
 *   - a full reset that fails discards the connection;
 *   - a text with two statements never reaches the driver.
 */
#include "sqorm.h"
#include "internal.h"
#include "check.h"

#include <stdlib.h>

typedef struct fconn {
  int id;
  int session_changed; /* what needs_reset reports */
} fconn;

static int n_open, n_exec, n_light, n_full, fail_full, next_id;

static int f_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  (void)cfg;
  (void)err;
  fconn *c = calloc(1, sizeof *c);
  if (!c) return SQ_ENOMEM;
  c->id = ++next_id;
  n_open++;
  *out = (sq_dconn *)c;
  return SQ_OK;
}
static void f_close(sq_dconn *h) { free(h); }
static int f_ping(sq_dconn *h, sq_err *err) {
  (void)h;
  (void)err;
  return SQ_OK;
}
static int f_is_dead(sq_dconn *h) {
  (void)h;
  return 0;
}
static int f_exec(sq_dconn *h, const char *sql, size_t len, const sq_value *params, int nparams,
                  const sq_row_sink *sink, sq_result *res, sq_err *err) {
  (void)h, (void)sql, (void)len, (void)params, (void)nparams, (void)sink, (void)err;
  n_exec++;
  if (res) res->affected_rows = 0;
  return SQ_OK;
}
static int f_in_tx(sq_dconn *h) {
  (void)h;
  return 0;
}
static int f_reset(sq_dconn *h, int full, sq_err *err) {
  fconn *c = (fconn *)h;
  if (!full) {
    n_light++;
    return SQ_OK;
  }
  n_full++;
  if (fail_full) return sq_err_set(err, SQ_ECONNECTION, "reset failed");
  c->session_changed = 0;
  return SQ_OK;
}
static int f_needs_reset(sq_dconn *h) { return ((fconn *)h)->session_changed; }

#define FAKE(d, ph)                                                                                   \
  {                                                                                                   \
    .name = "fake", .dialect = d, .ph_style = ph, .open = f_open, .close = f_close, .ping = f_ping,   \
    .is_dead = f_is_dead, .exec = f_exec, .in_transaction = f_in_tx, .reset = f_reset,                \
    .needs_reset = f_needs_reset                                                                      \
  }

static const sq_driver fakes[3] = {
  FAKE(SQ_DIALECT_SQLITE, SQ_PH_QMARK),
  FAKE(SQ_DIALECT_MYSQL, SQ_PH_QMARK),
  FAKE(SQ_DIALECT_POSTGRES, SQ_PH_DOLLAR),
};

/* A statement that changes the session, per dialect. */
static const char *const session_sql[3] = {
  "PRAGMA foreign_keys = OFF",
  "SET autocommit = 0",
  "SET search_path = other",
};

static sq_pool *open_pool(const sq_driver *drv) {
  sq_config cfg;
  sq_config_init(&cfg);
  cfg.dialect = drv->dialect;
  if (drv->dialect == SQ_DIALECT_SQLITE) cfg.storage = sq_strdup(":memory:");
  else cfg.host = sq_strdup("127.0.0.1");
  cfg.pool.max = 1;
  sq_pool *p = NULL;
  sq_err err;
  int rc = sq_pool_open_driver(&cfg, drv, &p, &err);
  if (rc) fprintf(stderr, "open: %s\n", err.msg);
  CHECK(rc == SQ_OK);
  sq_config_free(&cfg);
  return p;
}

static sq_conn *acquire(sq_pool *p) {
  sq_conn *c = NULL;
  sq_err err;
  CHECK(sq_pool_acquire(p, 1.0, &c, &err) == SQ_OK);
  return c;
}

/* players(id, name, coins) */
static sq_model *players(void) {
  sq_err e;
  sq_model *m;
  if (sq_model_new("player", NULL, &m, &e)) return NULL;
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = "name";
  d.type = SQ_T_STRING;
  d.allow_null = 1;
  d.default_value = sq_null();
  sq_model_add_column(m, &d, &e);
  d.name = "coins";
  d.type = SQ_T_INTEGER;
  sq_model_add_column(m, &d, &e);
  if (sq_model_finish(m, &e)) {
    sq_model_free(m);
    return NULL;
  }
  return m;
}

/* Renders and runs a SELECT and an UPDATE of the model, as the binding
 * does (sq_render + sq_conn_exec_native). */
static void run_rendered(sq_conn *c, const sq_model *m, int dialect) {
  sq_err e;
  sq_result res;
  sq_query q;
  sq_sql s;
  sq_value v = sq_int(5);
  int col = sq_model_find(m, "coins", 5);
  sq_expr where = {SQ_OP_GT, col, &v, 1, NULL, 0, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL};

  sq_query_init(&q, SQ_Q_SELECT, m);
  q.where = &where;
  CHECK(sq_render(&q, dialect, &s, &e) == SQ_OK);
  CHECK(sq_conn_exec_native(c, s.sql, s.len, s.params, s.nparams, NULL, &res, &e) == SQ_OK);
  sq_sql_free(&s);

  sq_query_init(&q, SQ_Q_UPDATE, m);
  q.where = &where;
  q.cols = &col;
  q.ncols = 1;
  q.values = &v;
  q.nrows = 1;
  CHECK(sq_render(&q, dialect, &s, &e) == SQ_OK);
  CHECK(sq_conn_exec_native(c, s.sql, s.len, s.params, s.nparams, NULL, &res, &e) == SQ_OK);
  sq_sql_free(&s);
}

static void test_dialect(int k, const sq_model *m) {
  const sq_driver *drv = &fakes[k];
  sq_pool *p = open_pool(drv);
  sq_err e;
  sq_result res;
  n_open = n_exec = n_light = n_full = fail_full = 0;

  /* a session statement: one full reset at release */
  sq_conn *c = acquire(p);
  CHECK(sq_conn_exec(c, session_sql[k], strlen(session_sql[k]), NULL, 0, NULL, &res, &e) == SQ_OK);
  sq_pool_release(p, c);
  CHECK(n_full == 1);
  if (n_full != 1) fprintf(stderr, "  [%s] %s: %d full resets\n", drv->name, session_sql[k], n_full);

  /* plain raw statements and rendered ones: no reset of any kind */
  c = acquire(p);
  CHECK(sq_conn_exec(c, "SELECT 1", 8, NULL, 0, NULL, &res, &e) == SQ_OK);
  run_rendered(c, m, drv->dialect);
  sq_pool_release(p, c);
  CHECK(n_full == 1 && n_light == 0);

  /* the same connection was kept throughout */
  CHECK(n_open == 1);

  /* a rewritten statement run by sq_conn_exec_stmt (the binding's path) */
  sq_stmt_text t;
  CHECK(sq_stmt_rewrite_dialect(drv->dialect, session_sql[k], strlen(session_sql[k]), &t, &e) == SQ_OK);
  CHECK(t.session == 1);
  c = acquire(p);
  CHECK(sq_conn_exec_stmt(c, &t, NULL, 0, NULL, &res, &e) == SQ_OK);
  sq_pool_release(p, c);
  CHECK(n_full == 2);
  sq_stmt_text_free(&t);

  /* a statement that fails still marks the connection: it may have done
   * part of its work (here it fails before the driver: a bind mismatch
   * does not count, nothing ran) */
  c = acquire(p);
  sq_value one = sq_int(1);
  CHECK(sq_conn_exec(c, session_sql[k], strlen(session_sql[k]), &one, 1, NULL, &res, &e) == SQ_EUSAGE);
  sq_pool_release(p, c);
  CHECK(n_full == 2);

  /* the driver itself saw the session change */
  c = acquire(p);
  ((fconn *)sq_conn_handle(c))->session_changed = 1;
  sq_pool_release(p, c);
  CHECK(n_full == 3);

  /* two statements: refused before the driver, no reset */
  int e0 = n_exec;
  c = acquire(p);
  const char *two = "UPDATE players SET coins = 1; DELETE FROM players";
  CHECK(sq_conn_exec(c, two, strlen(two), NULL, 0, NULL, &res, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "2 statements") != NULL);
  sq_pool_release(p, c);
  CHECK(n_exec == e0 && n_full == 3);

  /* a full reset that fails: the connection is discarded */
  sq_pool_stats st0, st1;
  sq_pool_stats_get(p, &st0);
  fail_full = 1;
  c = acquire(p);
  CHECK(sq_conn_exec(c, session_sql[k], strlen(session_sql[k]), NULL, 0, NULL, &res, &e) == SQ_OK);
  sq_pool_release(p, c);
  sq_pool_stats_get(p, &st1);
  CHECK(st1.destroyed == st0.destroyed + 1 && st1.idle == 0);
  fail_full = 0;
  c = acquire(p);
  CHECK(n_open == 2);
  sq_pool_release(p, c);
  sq_pool_close(p);
}

int main(void) {
  sq_model *m = players();
  CHECK(m != NULL);
  if (!m) return CHECK_DONE();
  for (int k = 0; k < 3; k++) test_dialect(k, m);
  sq_model_free(m);
  return CHECK_DONE();
}
