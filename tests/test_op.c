/*
 * test_op.c - operations (op.c) and rowsets (rowset.c) on SQLite (a
 * temporary file) and over a small fake driver (the retry of a read):
 * every kind of phase 1, values owned by the op, the log records, the
 * set-aware sink and its protect hook (a longjmp out of the sink, as a
 * Lua error does), a record + replay that gives the very same sink calls,
 * deadlines in blocking mode, and transactions ended by a stopped
 * statement.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "check.h"
#include "internal.h"
#include "sqorm.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* A sink that writes every call down as text                           */
/* ------------------------------------------------------------------ */

typedef struct trace {
  char buf[16384];
  size_t n;
  int rows;
  int stop_at;      /* stop (return 1) at this row, 0: never */
  jmp_buf *jump;    /* longjmp out at row `jump_at` */
  int jump_at;
  int protects;     /* protect calls */
} trace;

static void tput(trace *t, const char *s, size_t n) {
  if (t->n + n < sizeof t->buf) {
    memcpy(t->buf + t->n, s, n);
    t->n += n;
    t->buf[t->n] = '\0';
  }
}

static int t_columns(void *ud, int set, int ncols, const sq_column *cols, sq_err *err) {
  trace *t = ud;
  (void)err;
  char b[64];
  tput(t, b, (size_t)snprintf(b, sizeof b, "C%d:", set));
  for (int i = 0; i < ncols; i++) {
    tput(t, cols[i].name, cols[i].name_len);
    tput(t, ",", 1);
  }
  tput(t, "\n", 1);
  return 0;
}

static int t_row(void *ud, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err) {
  trace *t = ud;
  char b[64];
  t->rows++;
  if (t->jump && t->rows == t->jump_at) longjmp(*t->jump, 1);
  if (t->stop_at && t->rows == t->stop_at) return sq_err_set(err, SQ_EUSAGE, "stopped by the test");
  tput(t, b, (size_t)snprintf(b, sizeof b, "R%d/%lld:", set, (long long)parent));
  for (int i = 0; i < ncols; i++) {
    switch (vals[i].type) {
    case SQ_VNULL: tput(t, "null", 4); break;
    case SQ_VINT: tput(t, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)vals[i].u.i)); break;
    case SQ_VFLOAT: tput(t, b, (size_t)snprintf(b, sizeof b, "%g", vals[i].u.f)); break;
    case SQ_VBOOL: tput(t, vals[i].u.b ? "true" : "false", vals[i].u.b ? 4 : 5); break;
    default: tput(t, "'", 1), tput(t, vals[i].u.s.p, vals[i].u.s.n), tput(t, "'", 1); break;
    }
    tput(t, ",", 1);
  }
  tput(t, "\n", 1);
  return 0;
}

/* protect the way the Lua binding does it: the non-local exit lands here */
static int t_protect(void *ud, int (*fn)(void *), void *arg) {
  trace *t = ud;
  jmp_buf jb, *saved = t->jump;
  t->protects++;
  if (t->jump_at) {
    t->jump = &jb;
    if (setjmp(jb)) {
      t->jump = saved;
      return -1;
    }
  }
  int rc = fn(arg);
  t->jump = saved;
  return rc;
}

static void trace_sink(trace *t, sq_oper_sink *s) {
  memset(t, 0, sizeof *t);
  s->ud = t;
  s->columns = t_columns;
  s->row = t_row;
  s->protect = t_protect;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static char dbpath[256];

/* Every op of a pass runs with these flags too: 0 (the direct path), or
 * watched and timed (the executor's blocking path). */
static unsigned g_flags;

static int run_op(sq_oper *op) {
  sq_oper_set_flags(op, sq_oper_flags(op) | g_flags);
  return sq_oper_run(op);
}

static sq_pool *open_pool(int max) {
  sq_config cfg;
  sq_err err;
  sq_config_init(&cfg);
  char url[300];
  snprintf(url, sizeof url, "sqlite:%s", dbpath);
  sq_pool *p = NULL;
  if (sq_config_parse_url(&cfg, url, &err) || sq_config_set(&cfg, "pool.max", max == 1 ? "1" : "3", &err) ||
      sq_config_finish(&cfg, &err) || sq_pool_open(&cfg, &p, &err))
    fprintf(stderr, "open_pool: %s\n", err.msg);
  sq_config_free(&cfg);
  return p;
}

static int in_use(sq_pool *p) {
  sq_pool_stats st;
  sq_pool_stats_get(p, &st);
  return st.in_use;
}

/* Runs sql (RAW, no binds) on p; returns rc. */
static int raw(sq_oper *op, sq_pool *p, const char *sql) {
  sq_err err;
  sq_oper_reset(op, SQ_OPER_RAW);
  if (sq_oper_add_sql(op, sql, strlen(sql), NULL, 0, 0, &err)) return err.kind;
  sq_oper_target_pool(op, p, NULL);
  int rc = run_op(op);
  if (rc) fprintf(stderr, "raw(%s): %s\n", sql, sq_oper_err(op)->msg);
  return rc;
}

/* SELECT sql on target (pool or tx) into a trace. */
static int select_into(sq_oper *op, sq_pool *p, sq_tx *tx, const char *sql, const sq_value *params, int n, trace *t,
                       unsigned flags) {
  sq_err err;
  sq_oper_sink s;
  trace_sink(t, &s);
  sq_oper_reset(op, SQ_OPER_SELECT);
  if (sq_oper_add_sql(op, sql, strlen(sql), params, n, SQ_STMT_READ, &err)) return err.kind;
  if (tx) sq_oper_target_tx(op, tx);
  else sq_oper_target_pool(op, p, NULL);
  sq_oper_set_sink(op, &s);
  sq_oper_set_flags(op, flags);
  int rc = run_op(op);
  if (rc == SQ_OK && (flags & SQ_OPER_RECORD)) {
    CHECK(t->n == 0); /* nothing reached the sink yet */
    rc = sq_oper_replay(op, NULL, &err);
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_raw_and_select(sq_pool *p) {
  sq_oper *op;
  sq_err err;
  CHECK(sq_oper_new(&op, &err) == SQ_OK);
  CHECK(raw(op, p, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, b BLOB)") == SQ_OK);

  /* values are the op's own: the caller's buffer changes right after */
  char name[16];
  strcpy(name, "alice");
  sq_value v[3] = {sq_text(name, 5), sq_float(1.5), sq_blob("a\0b", 3)};
  sq_oper_reset(op, SQ_OPER_RAW);
  const char *ins = "INSERT INTO t (name, score, b) VALUES (?, ?, ?)";
  CHECK(sq_oper_add_sql(op, ins, strlen(ins), v, 3, 0, &err) == SQ_OK);
  strcpy(name, "XXXXX");
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  CHECK(sq_oper_result(op)->affected_rows == 1);
  CHECK(sq_oper_result(op)->last_insert_id == 1);
  CHECK(sq_oper_nlogs(op) == 1);
  CHECK_STR(sq_oper_log_at(op, 0)->sql, ins);
  CHECK(sq_oper_log_at(op, 0)->elapsed >= 0);
  CHECK(g_flags == 0 || sq_oper_log_at(op, 0)->elapsed > 0);

  /* several statements: results add up, one record with the given text */
  sq_oper_reset(op, SQ_OPER_RAW);
  const char *a = "INSERT INTO t (name) VALUES ('bob')", *b = "INSERT INTO t (name) VALUES ('carol')";
  CHECK(sq_oper_add_sql(op, a, strlen(a), NULL, 0, 0, &err) == SQ_OK);
  CHECK(sq_oper_add_sql(op, b, strlen(b), NULL, 0, 0, &err) == SQ_OK);
  CHECK(sq_oper_log_as(op, "both; of them", 13, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  CHECK(sq_oper_result(op)->affected_rows == 2);
  CHECK(sq_oper_result(op)->last_insert_id == 3);
  CHECK(sq_oper_nlogs(op) == 1);
  CHECK_STR(sq_oper_log_at(op, 0)->sql, "both; of them");

  /* a failure names its statement */
  sq_oper_reset(op, SQ_OPER_RAW);
  CHECK(sq_oper_add_sql(op, a, strlen(a), NULL, 0, 0, &err) == SQ_OK);
  CHECK(sq_oper_add_sql(op, "SELECT nope FROM t", 18, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) != SQ_OK);
  CHECK(strncmp(sq_oper_err(op)->msg, "statement 2 of 2: ", 18) == 0);
  CHECK(sq_oper_log_at(op, 0)->rc != SQ_OK);

  /* rows, inline and recorded + replayed: the same calls */
  trace t1, t2;
  sq_value id = sq_int(0);
  const char *sel = "SELECT id, name, score, b FROM t WHERE id > ? ORDER BY id";
  CHECK(select_into(op, p, NULL, sel, &id, 1, &t1, 0) == SQ_OK);
  CHECK(sq_oper_rows(op) == 4);
  CHECK(t1.protects == 1);
  CHECK(select_into(op, p, NULL, sel, &id, 1, &t2, SQ_OPER_RECORD) == SQ_OK);
  CHECK(sq_rowset_rows(sq_oper_rowset(op)) == 4);
  CHECK(t2.protects == 0);
  CHECK_STR(t2.buf, t1.buf);
  CHECK(strstr(t1.buf, "C0:id,name,score,b,\nR0/-1:1,'alice',1.5,'a") != NULL);
  /* zero rows still announce the columns */
  id = sq_int(100);
  CHECK(select_into(op, p, NULL, sel, &id, 1, &t1, 0) == SQ_OK);
  CHECK(select_into(op, p, NULL, sel, &id, 1, &t2, SQ_OPER_RECORD) == SQ_OK);
  CHECK_STR(t1.buf, "C0:id,name,score,b,\n");
  CHECK_STR(t2.buf, t1.buf);

  /* a big rowset spans chunks */
  CHECK(raw(op, p, "CREATE TABLE big (i INTEGER, s TEXT)") == SQ_OK);
  CHECK(raw(op, p, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000) "
                   "INSERT INTO big SELECT i, printf('%0100d', i) FROM c") == SQ_OK);
  trace *b1 = malloc(sizeof *b1), *b2 = malloc(sizeof *b2);
  CHECK(select_into(op, p, NULL, "SELECT i, s FROM big WHERE i <= 100 ORDER BY i", NULL, 0, b1, 0) == SQ_OK);
  CHECK(select_into(op, p, NULL, "SELECT i, s FROM big WHERE i <= 100 ORDER BY i", NULL, 0, b2, SQ_OPER_RECORD) == SQ_OK);
  CHECK_STR(b2->buf, b1->buf);
  CHECK(select_into(op, p, NULL, "SELECT i, s FROM big ORDER BY i", NULL, 0, b2, SQ_OPER_RECORD) == SQ_OK);
  CHECK(b2->rows == 3000);
  free(b1);
  free(b2);

  /* a sink that stops the statement */
  sq_oper_sink s;
  trace_sink(&t1, &s);
  t1.stop_at = 2;
  sq_oper_reset(op, SQ_OPER_SELECT);
  CHECK(sq_oper_add_sql(op, "SELECT id FROM t", 16, NULL, 0, SQ_STMT_READ, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  sq_oper_set_sink(op, &s);
  CHECK(run_op(op) == SQ_EUSAGE);
  CHECK_STR(sq_oper_err(op)->msg, "stopped by the test");

  /* a non-local exit out of the sink: the op fails, the connection goes */
  sq_pool_stats st0, st1;
  sq_pool_stats_get(p, &st0);
  trace_sink(&t1, &s);
  t1.jump_at = 2;
  sq_oper_reset(op, SQ_OPER_SELECT);
  CHECK(sq_oper_add_sql(op, "SELECT id FROM t", 16, NULL, 0, SQ_STMT_READ, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  sq_oper_set_sink(op, &s);
  CHECK(run_op(op) == SQ_EINTERNAL);
  CHECK(sq_oper_interrupted(op) == 1);
  sq_pool_stats_get(p, &st1);
  CHECK(st1.destroyed == st0.destroyed + 1);
  CHECK(in_use(p) == 0);

  /* unique_violation: the columns of the key, with a model */
  sq_model *m;
  sq_coldef d;
  CHECK(sq_model_new("thing", NULL, &m, &err) == SQ_OK);
  memset(&d, 0, sizeof d);
  d.name = "id", d.type = SQ_T_INTEGER, d.primary_key = 1;
  CHECK(sq_model_add_column(m, &d, &err) == SQ_OK);
  memset(&d, 0, sizeof d);
  d.name = "code", d.type = SQ_T_STRING, d.unique = "", d.allow_null = 1;
  CHECK(sq_model_add_column(m, &d, &err) == SQ_OK);
  sq_model_opts mo;
  (void)mo;
  CHECK(sq_model_finish(m, &err) == SQ_OK);
  CHECK(raw(op, p, "CREATE TABLE things (id INTEGER PRIMARY KEY, code TEXT UNIQUE, created_at TEXT, updated_at TEXT)") ==
        SQ_OK);
  CHECK(raw(op, p, "INSERT INTO things (id, code) VALUES (1, 'x')") == SQ_OK);
  sq_oper_reset(op, SQ_OPER_RAW);
  const char *dup = "INSERT INTO things (id, code) VALUES (2, 'x')";
  CHECK(sq_oper_add_sql(op, dup, strlen(dup), NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  sq_oper_set_model(op, m);
  CHECK(run_op(op) == SQ_EUNIQUE);
  const int *fc;
  CHECK(sq_oper_fields(op, &fc) == 1 && fc[0] == 1);
  sq_model_free(m);

  /* ping, version */
  sq_oper_reset(op, SQ_OPER_PING);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  sq_oper_reset(op, SQ_OPER_VERSION);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  CHECK(strncmp(sq_oper_text(op), "SQLite 3", 8) == 0);

  /* a build mistake is usage, nothing runs */
  sq_oper_reset(op, SQ_OPER_SELECT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_EUSAGE);
  sq_oper_reset(op, SQ_OPER_COMMIT);
  CHECK(run_op(op) == SQ_EUSAGE);
  CHECK(in_use(p) == 0);
  sq_oper_free(op);
}

static void test_tx(sq_pool *p) {
  sq_oper *op, *op2;
  sq_err err;
  CHECK(sq_oper_new(&op, &err) == SQ_OK);
  CHECK(sq_oper_new(&op2, &err) == SQ_OK);
  CHECK(raw(op, p, "CREATE TABLE acc (id INTEGER PRIMARY KEY, n INTEGER)") == SQ_OK);
  CHECK(raw(op, p, "INSERT INTO acc VALUES (1, 10), (2, 20)") == SQ_OK);

  sq_holder h = {&h, "this test", "a transaction of the test"};
  sq_oper_reset(op, SQ_OPER_BEGIN);
  sq_oper_target_pool(op, p, &h);
  CHECK(sq_oper_prepare(op, SQ_DIALECT_SQLITE, &err) == SQ_OK);
  CHECK(sq_oper_nlogs(op) == 1);
  CHECK_STR(sq_oper_log_at(op, 0)->sql, "BEGIN");
  CHECK(run_op(op) == SQ_OK);
  sq_tx *tx = sq_oper_take_tx(op);
  CHECK(tx && sq_tx_state(tx) == SQ_TX_OPEN);
  CHECK(in_use(p) == 1);

  /* statements on the transaction */
  sq_oper_reset(op, SQ_OPER_RAW);
  CHECK(sq_oper_add_sql(op, "UPDATE acc SET n = n + 1", 24, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_tx(op, tx);
  CHECK(run_op(op) == SQ_OK);
  CHECK(sq_oper_result(op)->affected_rows == 2);

  /* a savepoint, rolled back */
  sq_oper_reset(op, SQ_OPER_SAVEPOINT);
  sq_oper_target_tx(op, tx);
  CHECK(sq_oper_prepare(op, -1, &err) == SQ_OK);
  CHECK_STR(sq_oper_log_at(op, 0)->sql, "SAVEPOINT sq_sp_1");
  CHECK(run_op(op) == SQ_OK);
  unsigned sp = sq_oper_savepoint_id(op);
  CHECK(sp == 1 && sq_tx_savepoint_is_open(tx, sp));
  CHECK(raw(op, p, "SELECT 1") == SQ_OK || 1); /* another connection: fine */
  sq_oper_reset(op, SQ_OPER_RAW);
  CHECK(sq_oper_add_sql(op, "UPDATE acc SET n = 0", 20, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_tx(op, tx);
  CHECK(run_op(op) == SQ_OK);
  sq_oper_reset(op, SQ_OPER_ROLLBACK_TO);
  sq_oper_target_tx(op, tx);
  sq_oper_set_savepoint(op, sp);
  CHECK(sq_oper_prepare(op, -1, &err) == SQ_OK);
  CHECK(sq_oper_nlogs(op) == 2);
  CHECK_STR(sq_oper_log_at(op, 0)->sql, "ROLLBACK TO SAVEPOINT sq_sp_1");
  CHECK_STR(sq_oper_log_at(op, 1)->sql, "RELEASE SAVEPOINT sq_sp_1");
  CHECK(run_op(op) == SQ_OK);
  CHECK(!sq_tx_savepoint_is_open(tx, sp));
  /* releasing it again: closed, nothing ran */
  sq_oper_reset(op, SQ_OPER_RELEASE);
  sq_oper_target_tx(op, tx);
  sq_oper_set_savepoint(op, sp);
  CHECK(run_op(op) == SQ_ECLOSED);

  /* a cursor inside the transaction, fetched in batches, then commit
   * (which closes it) */
  trace t;
  sq_oper_sink s;
  trace_sink(&t, &s);
  sq_oper_reset(op, SQ_OPER_CURSOR_OPEN);
  CHECK(sq_oper_add_sql(op, "SELECT id, n FROM acc ORDER BY id", 33, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_tx(op, tx);
  sq_oper_set_sink(op, &s);
  CHECK(run_op(op) == SQ_OK);
  sq_cursor *cur = sq_oper_take_cursor(op);
  CHECK(cur != NULL);
  sq_oper_reset(op2, SQ_OPER_CURSOR_FETCH);
  sq_oper_target_cursor(op2, cur);
  sq_oper_set_sink(op2, &s);
  sq_oper_set_batch(op2, 1);
  CHECK(run_op(op2) == SQ_OK);
  CHECK(sq_oper_rows(op2) == 1 && !sq_oper_eof(op2));
  CHECK_STR(t.buf, "C0:id,n,\nR0/-1:1,11,\n");

  sq_oper_reset(op, SQ_OPER_COMMIT);
  sq_oper_target_tx(op, tx);
  CHECK(run_op(op) == SQ_OK);
  CHECK(sq_tx_state(tx) == SQ_TX_DONE);
  CHECK(in_use(p) == 0);
  sq_oper_reset(op2, SQ_OPER_CURSOR_FETCH);
  sq_oper_target_cursor(op2, cur);
  sq_oper_set_sink(op2, &s);
  CHECK(run_op(op2) == SQ_ECLOSED);
  CHECK(strstr(sq_oper_err(op2)->msg, "committed") != NULL);
  sq_cursor_free(cur);
  /* ending it again */
  sq_oper_reset(op, SQ_OPER_ROLLBACK);
  sq_oper_target_tx(op, tx);
  CHECK(run_op(op) == SQ_ECLOSED);
  CHECK(sq_oper_log_at(op, 0)->elapsed < 0);
  sq_oper_reset(op, SQ_OPER_NONE); /* drops the op's reference */
  sq_tx_free(tx);

  trace t2;
  CHECK(select_into(op, p, NULL, "SELECT n FROM acc ORDER BY id", NULL, 0, &t2, 0) == SQ_OK);
  CHECK_STR(t2.buf, "C0:n,\nR0/-1:11,\nR0/-1:21,\n");

  /* a sink that exits midway inside a transaction fails the transaction */
  sq_oper_reset(op, SQ_OPER_BEGIN);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  tx = sq_oper_take_tx(op);
  trace_sink(&t, &s);
  t.jump_at = 1;
  sq_oper_reset(op, SQ_OPER_SELECT);
  CHECK(sq_oper_add_sql(op, "SELECT id FROM acc", 18, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_tx(op, tx);
  sq_oper_set_sink(op, &s);
  CHECK(run_op(op) == SQ_EINTERNAL);
  CHECK(sq_tx_state(tx) == SQ_TX_FAILED);
  CHECK(in_use(p) == 0);
  sq_oper_reset(op, SQ_OPER_ROLLBACK);
  sq_oper_target_tx(op, tx);
  CHECK(run_op(op) == SQ_OK); /* the owner acknowledges it */
  CHECK(sq_tx_state(tx) == SQ_TX_DONE);
  sq_oper_reset(op, SQ_OPER_NONE);
  sq_tx_free(tx);

  /* an untaken transaction is abandoned by the next reset */
  sq_oper_reset(op, SQ_OPER_BEGIN);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  CHECK(in_use(p) == 1);
  sq_oper_reset(op, SQ_OPER_NONE);
  CHECK(in_use(p) == 0);
  sq_oper_free(op);
  sq_oper_free(op2);
}

static void test_cursor(sq_pool *p) {
  sq_oper *op, *op2;
  sq_err err;
  CHECK(sq_oper_new(&op, &err) == SQ_OK);
  CHECK(sq_oper_new(&op2, &err) == SQ_OK);
  for (int record = 0; record <= 1; record++) {
    trace t;
    sq_oper_sink s;
    trace_sink(&t, &s);
    sq_oper_reset(op, SQ_OPER_CURSOR_OPEN);
    const char *sql = "SELECT i FROM big WHERE i <= 70 ORDER BY i";
    CHECK(sq_oper_add_sql(op, sql, strlen(sql), NULL, 0, 0, &err) == SQ_OK);
    sq_holder h = {NULL, NULL, "an each() cursor"};
    sq_oper_target_pool(op, p, &h);
    sq_oper_set_sink(op, &s);
    sq_oper_set_flags(op, record ? SQ_OPER_RECORD : 0);
    CHECK(run_op(op) == SQ_OK);
    if (record) CHECK(sq_oper_replay(op, NULL, &err) == SQ_OK);
    sq_cursor *cur = sq_oper_take_cursor(op);
    CHECK(cur && in_use(p) == 1);
    int batches = 0, rows = 0;
    for (;;) {
      sq_oper_reset(op2, SQ_OPER_CURSOR_FETCH);
      sq_oper_target_cursor(op2, cur);
      sq_oper_set_sink(op2, &s);
      sq_oper_set_flags(op2, record ? SQ_OPER_RECORD : 0);
      CHECK(run_op(op2) == SQ_OK);
      if (record) CHECK(sq_oper_replay(op2, NULL, &err) == SQ_OK);
      batches++;
      rows += (int)sq_oper_rows(op2);
      if (sq_oper_eof(op2)) break;
    }
    CHECK(rows == 70 && t.rows == 70 && batches == 3);
    CHECK(strncmp(t.buf, "C0:i,\nR0/-1:1,\nR0/-1:2,\n", 24) == 0);
    sq_oper_reset(op2, SQ_OPER_CURSOR_CLOSE);
    sq_oper_target_cursor(op2, cur);
    CHECK(run_op(op2) == SQ_OK);
    CHECK(in_use(p) == 0);
    sq_cursor_free(cur);
  }
  /* closed early, with rows left */
  sq_oper_reset(op, SQ_OPER_CURSOR_OPEN);
  CHECK(sq_oper_add_sql(op, "SELECT i FROM big", 17, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  sq_cursor *cur = sq_oper_take_cursor(op);
  sq_oper_reset(op2, SQ_OPER_CURSOR_FETCH);
  sq_oper_target_cursor(op2, cur);
  CHECK(run_op(op2) == SQ_OK && sq_oper_rows(op2) == 32);
  sq_oper_reset(op2, SQ_OPER_CURSOR_CLOSE);
  sq_oper_target_cursor(op2, cur);
  CHECK(run_op(op2) == SQ_OK);
  CHECK(in_use(p) == 0);
  sq_cursor_free(cur);
  /* a sink that exits midway through a fetch: the cursor fails */
  trace t;
  sq_oper_sink s;
  trace_sink(&t, &s);
  sq_oper_reset(op, SQ_OPER_CURSOR_OPEN);
  CHECK(sq_oper_add_sql(op, "SELECT i FROM big", 17, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  sq_oper_set_sink(op, &s);
  CHECK(run_op(op) == SQ_OK);
  cur = sq_oper_take_cursor(op);
  t.jump_at = 5;
  sq_oper_reset(op2, SQ_OPER_CURSOR_FETCH);
  sq_oper_target_cursor(op2, cur);
  sq_oper_set_sink(op2, &s);
  CHECK(run_op(op2) == SQ_EINTERNAL);
  CHECK(!sq_cursor_is_open(cur));
  CHECK(in_use(p) == 0);
  sq_cursor_free(cur);
  /* an untaken cursor is abandoned by reset: its connection comes back */
  sq_oper_reset(op, SQ_OPER_CURSOR_OPEN);
  CHECK(sq_oper_add_sql(op, "SELECT i FROM big", 17, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  sq_oper_reset(op, SQ_OPER_NONE);
  CHECK(in_use(p) == 0);
  sq_oper_free(op);
  sq_oper_free(op2);
}

/* A deadline in blocking mode: the statement is interrupted on the
 * server (sqlite3_interrupt) and the pool works on. Inside a
 * transaction, the transaction is over. */
static void test_timeout(sq_pool *p) {
  sq_oper *op;
  sq_err err;
  CHECK(sq_oper_new(&op, &err) == SQ_OK);
  const char *slow = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c";
  sq_oper_reset(op, SQ_OPER_SELECT);
  CHECK(sq_oper_add_sql(op, slow, strlen(slow), NULL, 0, SQ_STMT_READ, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  sq_oper_set_timeout(op, 0.2);
  double t0 = sq_clock();
  CHECK(run_op(op) == SQ_ETIMEOUT);
  CHECK(sq_clock() - t0 < 5);
  CHECK(in_use(p) == 0);
  CHECK(raw(op, p, "SELECT 1") == SQ_OK);

  sq_oper_reset(op, SQ_OPER_BEGIN);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_OK);
  sq_tx *tx = sq_oper_take_tx(op);
  sq_oper_reset(op, SQ_OPER_SELECT);
  CHECK(sq_oper_add_sql(op, slow, strlen(slow), NULL, 0, SQ_STMT_READ, &err) == SQ_OK);
  sq_oper_target_tx(op, tx);
  sq_oper_set_timeout(op, 0.2);
  CHECK(run_op(op) == SQ_ETIMEOUT);
  CHECK(sq_tx_state(tx) == SQ_TX_FAILED);
  CHECK(in_use(p) == 0);
  sq_oper_reset(op, SQ_OPER_COMMIT);
  sq_oper_target_tx(op, tx);
  CHECK(run_op(op) == SQ_ETIMEOUT);
  sq_oper_reset(op, SQ_OPER_NONE);
  sq_tx_free(tx);
  CHECK(raw(op, p, "SELECT 1") == SQ_OK);
  sq_oper_free(op);
}

/* The log records of an op that waited for the pool's only connection:
 * queued is the wait, elapsed the rest. */
typedef struct holder_arg {
  sq_pool *p;
  sq_conn *c;
} holder_arg;

static void *release_later(void *arg) {
  holder_arg *a = arg;
  struct timespec ts = {0, 150 * 1000 * 1000};
  nanosleep(&ts, NULL);
  sq_pool_release(a->p, a->c);
  return NULL;
}

static void test_queued(void) {
  char path[300];
  snprintf(path, sizeof path, "%s.q", dbpath);
  sq_config cfg;
  sq_err err;
  char url[320];
  snprintf(url, sizeof url, "sqlite:%s", path);
  sq_config_init(&cfg);
  CHECK(sq_config_parse_url(&cfg, url, &err) == SQ_OK);
  CHECK(sq_config_set(&cfg, "pool.max", "1", &err) == SQ_OK);
  CHECK(sq_config_finish(&cfg, &err) == SQ_OK);
  sq_pool *p;
  CHECK(sq_pool_open(&cfg, &p, &err) == SQ_OK);
  sq_config_free(&cfg);
  sq_oper *op;
  CHECK(sq_oper_new(&op, &err) == SQ_OK);
  for (int watched = 0; watched <= 1; watched++) {
    holder_arg a = {p, NULL};
    CHECK(sq_pool_acquire(p, -1, &a.c, &err) == SQ_OK);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_later, &a) == 0);
    sq_oper_reset(op, SQ_OPER_SELECT);
    CHECK(sq_oper_add_sql(op, "SELECT 1", 8, NULL, 0, SQ_STMT_READ, &err) == SQ_OK);
    sq_oper_target_pool(op, p, NULL);
    sq_oper_set_flags(op, SQ_OPER_TIMED | (watched ? SQ_OPER_WATCH : 0));
    CHECK(sq_oper_run(op) == SQ_OK);
    pthread_join(t, NULL);
    const sq_oper_log *l = sq_oper_log_at(op, 0);
    CHECK(l && l->queued > 0.05 && l->queued < 5);
    CHECK(l && l->elapsed >= 0 && l->elapsed < l->queued);
    /* no wait: no queue time */
    sq_oper_reset(op, SQ_OPER_SELECT);
    CHECK(sq_oper_add_sql(op, "SELECT 1", 8, NULL, 0, SQ_STMT_READ, &err) == SQ_OK);
    sq_oper_target_pool(op, p, NULL);
    sq_oper_set_flags(op, SQ_OPER_TIMED | (watched ? SQ_OPER_WATCH : 0));
    CHECK(sq_oper_run(op) == SQ_OK);
    CHECK(sq_oper_log_at(op, 0)->queued == 0);
  }
  sq_oper_free(op);
  sq_pool_close(p);
  unlink(path);
}

/* ------------------------------------------------------------------ */
/* The retry of a read, over a fake driver                              */
/* ------------------------------------------------------------------ */

typedef struct fconn {
  int id;
  int dead;
} fconn;

static int fake_opens, fake_die_on = 1, fake_rows_first;

static int f_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  (void)cfg, (void)err;
  fconn *c = calloc(1, sizeof *c);
  c->id = ++fake_opens;
  *out = (sq_dconn *)c;
  return SQ_OK;
}
static void f_close(sq_dconn *c) { free(c); }
static int f_ping(sq_dconn *c, sq_err *err) {
  (void)c, (void)err;
  return SQ_OK;
}
static int f_is_dead(sq_dconn *c) { return ((fconn *)c)->dead; }
static int f_exec(sq_dconn *h, const char *sql, size_t len, const sq_value *params, int nparams,
                  const sq_row_sink *sink, sq_result *res, sq_err *err) {
  fconn *c = (fconn *)h;
  (void)sql, (void)len, (void)params, (void)nparams;
  res->affected_rows = -1;
  sq_column col = {"conn", 4, SQ_VINT};
  if (c->id == fake_die_on) {
    if (fake_rows_first && sink) sink->columns(sink->ud, 1, &col, err);
    c->dead = 1;
    return sq_err_set(err, SQ_ECONNECTION, "server closed the connection");
  }
  if (sink) {
    sq_value v = sq_int(c->id);
    if (sink->columns(sink->ud, 1, &col, err) || sink->row(sink->ud, 1, &v, err)) return err->kind;
  }
  return SQ_OK;
}
static int f_noop(sq_dconn *c, sq_err *err) {
  (void)c, (void)err;
  return SQ_OK;
}
static int f_reset(sq_dconn *c, int full, sq_err *err) {
  (void)c, (void)full, (void)err;
  return SQ_OK;
}
static int f_in_tx(sq_dconn *c) {
  (void)c;
  return 0;
}

static const sq_driver fake = {
  .name = "fake", .dialect = SQ_DIALECT_SQLITE, .ph_style = SQ_PH_QMARK,
  .open = f_open, .close = f_close, .ping = f_ping, .is_dead = f_is_dead, .exec = f_exec,
  .commit = f_noop, .rollback = f_noop, .in_transaction = f_in_tx, .reset = f_reset,
};

static void test_retry(void) {
  fake_opens = 0, fake_die_on = 1, fake_rows_first = 0;
  sq_config cfg;
  sq_err err;
  sq_config_init(&cfg);
  CHECK(sq_config_parse_url(&cfg, "sqlite::memory:", &err) == SQ_OK);
  CHECK(sq_config_finish(&cfg, &err) == SQ_OK);
  sq_pool *p;
  CHECK(sq_pool_open_driver(&cfg, &fake, &p, &err) == SQ_OK);
  sq_config_free(&cfg);
  sq_oper *op;
  CHECK(sq_oper_new(&op, &err) == SQ_OK);
  trace t;
  /* a read: once more on a fresh connection */
  CHECK(select_into(op, p, NULL, "SELECT conn", NULL, 0, &t, 0) == SQ_OK);
  CHECK_STR(t.buf, "C0:conn,\nR0/-1:2,\n");
  CHECK(fake_opens == 2);
  /* not a read: no retry */
  fake_die_on = 2;
  sq_oper_reset(op, SQ_OPER_RAW);
  CHECK(sq_oper_add_sql(op, "UPDATE x", 8, NULL, 0, 0, &err) == SQ_OK);
  sq_oper_target_pool(op, p, NULL);
  CHECK(run_op(op) == SQ_ECONNECTION);
  CHECK(fake_opens == 2);
  /* something reached the sink: no retry */
  fake_die_on = 3;
  fake_rows_first = 1;
  CHECK(select_into(op, p, NULL, "SELECT conn", NULL, 0, &t, 0) == SQ_ECONNECTION);
  CHECK(fake_opens == 3);
  CHECK(in_use(p) == 0);
  sq_oper_free(op);
  sq_pool_close(p);
}

int main(void) {
  sq_err err;
  if (sq_global_init(&err)) return 1;
  test_retry();
  g_flags = SQ_OPER_WATCH | SQ_OPER_TIMED;
  test_retry();
  g_flags = 0;
  if (!sq_driver_for(SQ_DIALECT_SQLITE)) {
    printf("sqlite driver not built: skipping the rest\n");
    return CHECK_DONE();
  }
  snprintf(dbpath, sizeof dbpath, "/tmp/sqorm_test_op_%d.db", (int)getpid());
  unlink(dbpath);
  sq_pool *p = open_pool(3);
  CHECK(p != NULL);
  sq_oper *op_drop;
  CHECK(sq_oper_new(&op_drop, &err) == SQ_OK);
  if (p) {
    for (int pass = 0; pass < 2; pass++) {
      g_flags = pass ? SQ_OPER_WATCH | SQ_OPER_TIMED : 0;
      test_raw_and_select(p);
      test_tx(p);
      test_cursor(p);
      CHECK(raw(op_drop, p, "DROP TABLE t") == SQ_OK && raw(op_drop, p, "DROP TABLE big") == SQ_OK &&
            raw(op_drop, p, "DROP TABLE things") == SQ_OK && raw(op_drop, p, "DROP TABLE acc") == SQ_OK);
    }
    test_timeout(p);
    test_queued();
    sq_oper_free(op_drop);
    CHECK(in_use(p) == 0);
    sq_pool_close(p);
  }
  unlink(dbpath);
  char side[300];
  snprintf(side, sizeof side, "%s-journal", dbpath);
  unlink(side);
  return CHECK_DONE();
}
