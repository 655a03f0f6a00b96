/*
 * test_op_write.c - the write and schema kinds of operations
 * (oper_write.c): SYNC (create, alter, drop; a SQLite rebuild under a
 * referencing table keeps its rows), INSERT, UPDATE / DELETE /
 * INCREMENT with an expected row count (stale), RELOAD, UPSERT,
 * BULK_INSERT (batches in their own transaction, all or nothing, keys
 * back, a savepoint inside a transaction) and FIND_OR_CREATE (created
 * once, found after). On SQLite (a temporary file) always, on MySQL and
 * PostgreSQL when scripts/with-test-servers.sh exported their servers
 * (SQORM_TEST_REQUIRE_SERVERS=1 makes a missing one a failure).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "check.h"
#include "sqorm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

/* A sink keeping the last row's first column and counting rows. */
typedef struct keep {
  int rows;
  int ncols; /* of the last result */
  int64_t first;
  int sets[2];
} keep;

static int k_columns(void *ud, int set, int ncols, const sq_column *cols, sq_err *err) {
  (void)set, (void)cols, (void)err;
  ((keep *)ud)->ncols = ncols;
  return 0;
}

static int k_row(void *ud, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err) {
  keep *k = ud;
  (void)parent, (void)err;
  k->rows++;
  if (set >= 0 && set < 2) k->sets[set]++;
  if (ncols > 0 && vals[0].type == SQ_VINT) k->first = vals[0].u.i;
  else if (ncols > 0 && vals[0].type == SQ_VTEXT) k->first = strtoll(vals[0].u.s.p, NULL, 10);
  return 0;
}

static void sink_of(keep *k, sq_oper_sink *s) {
  memset(k, 0, sizeof *k);
  memset(s, 0, sizeof *s);
  s->ud = k;
  s->columns = k_columns;
  s->row = k_row;
}

static sq_coldef coldef(const char *name, int type) {
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = name;
  d.type = type;
  d.allow_null = 1;
  d.default_value = sq_null();
  return d;
}

/* opw_items: id (auto), name STRING(40) unique NOT NULL, coins INTEGER. */
static sq_model *items_model(int wide_name) {
  sq_err e;
  sq_model *m = NULL;
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.table_name = "opw_items";
  o.timestamps = 0;
  CHECK(sq_model_new("opw_item", &o, &m, &e) == SQ_OK);
  sq_coldef id = coldef("id", SQ_T_INTEGER);
  id.primary_key = 1;
  id.auto_increment = 1;
  id.allow_null = 0;
  sq_coldef name = coldef("name", SQ_T_STRING);
  name.length = wide_name ? 60 : 40;
  name.allow_null = 0;
  name.unique = "";
  sq_coldef coins = coldef("coins", SQ_T_INTEGER);
  CHECK(sq_model_add_column(m, &id, &e) == SQ_OK);
  CHECK(sq_model_add_column(m, &name, &e) == SQ_OK);
  CHECK(sq_model_add_column(m, &coins, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  return m;
}

static int64_t count_rows(sq_pool *p, sq_oper *op) {
  keep k;
  sq_oper_sink s;
  sink_of(&k, &s);
  sq_err e;
  sq_oper_reset(op, SQ_OPER_SELECT);
  sq_oper_target_pool(op, p, NULL);
  static const char q[] = "SELECT COUNT(*) FROM opw_items";
  CHECK(sq_oper_add_sql(op, q, sizeof q - 1, NULL, 0, SQ_STMT_READ, &e) == SQ_OK);
  sq_oper_set_sink(op, &s);
  CHECK(sq_oper_run(op) == SQ_OK);
  return k.first;
}

static int sync(sq_pool *p, sq_oper *op, sq_model *m, int how) {
  sq_err e;
  sq_oper_reset(op, SQ_OPER_SYNC);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_sync(op, &m, 1, how, &e) == SQ_OK);
  return sq_oper_run(op);
}

/* where id = *key */
static void where_id(sq_expr *w, const sq_value *key) {
  memset(w, 0, sizeof *w);
  w->op = SQ_OP_EQ;
  w->col = 0;
  w->vals = key;
  w->nvals = 1;
}

static int has_log(const sq_oper *op, const char *text) {
  for (int i = 0; i < sq_oper_nlogs(op); i++)
    if (strstr(sq_oper_log_at(op, i)->sql, text)) return 1;
  return 0;
}

static void exercise(const char *name, sq_pool *p) {
  printf("# %s\n", name);
  int dialect = sq_pool_driver(p)->dialect;
  sq_err e;
  sq_oper *op;
  CHECK(sq_oper_new(&op, &e) == SQ_OK);
  sq_model *m = items_model(0);
  keep k;
  sq_oper_sink s;

  /* SYNC: force (drop + create), logged as it runs */
  CHECK(sync(p, op, m, SQ_SYNC_FORCE) == SQ_OK);
  CHECK(has_log(op, "CREATE TABLE"));
  CHECK(count_rows(p, op) == 0);

  /* INSERT one row: the key from RETURNING or last_insert_id */
  sq_value v[3];
  int cols[3] = {1, 2};
  v[0] = sq_text("alpha", 5);
  v[1] = sq_int(10);
  sq_query q;
  sq_query_init(&q, SQ_Q_INSERT, m);
  q.cols = cols;
  q.ncols = 2;
  q.values = v;
  q.nrows = 1;
  q.returning = dialect != SQ_DIALECT_SQLITE;
  sink_of(&k, &s);
  sq_oper_reset(op, SQ_OPER_INSERT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, -1, &e) == SQ_OK);
  sq_oper_set_sink(op, &s);
  CHECK(sq_oper_nlogs(op) == 0);
  CHECK(sq_oper_prepare(op, -1, &e) == SQ_OK && sq_oper_nlogs(op) == 1);
  CHECK(sq_oper_run(op) == SQ_OK);
  int64_t id = k.rows ? k.first : sq_oper_result(op)->last_insert_id;
  CHECK(id > 0);

  /* INSERT of the same name: unique_violation naming the column */
  sq_oper_reset(op, SQ_OPER_INSERT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, -1, &e) == SQ_OK);
  CHECK(sq_oper_run(op) == SQ_EUNIQUE);
  const int *fc;
  int nf = sq_oper_fields(op, &fc);
  CHECK(nf == 0 || (nf == 1 && fc[0] == 1));

  /* UPDATE by key, expected 1 row */
  sq_value key = sq_int(id), nv = sq_int(20);
  sq_expr w;
  where_id(&w, &key);
  int ucol = 2;
  sq_query_init(&q, SQ_Q_UPDATE, m);
  q.cols = &ucol;
  q.ncols = 1;
  q.values = &nv;
  q.nrows = 1;
  q.where = &w;
  sq_oper_reset(op, SQ_OPER_UPDATE);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, dialect, &e) == SQ_OK);
  sq_oper_expect(op, 1, "save");
  CHECK(sq_oper_run(op) == SQ_OK);
  CHECK(sq_oper_result(op)->affected_rows == 1);

  /* ... and by a key no row has: stale, nothing written */
  sq_value gone = sq_int(id + 1000);
  where_id(&w, &gone);
  sq_oper_reset(op, SQ_OPER_UPDATE);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, dialect, &e) == SQ_OK);
  sq_oper_expect(op, 1, "save");
  CHECK(sq_oper_run(op) == SQ_ESTALE);
  CHECK(strstr(sq_oper_err(op)->msg, "save: no opw_item row") != NULL);

  /* ... with a version check (optimistic locking): the message names the
   * model, the key and the version expected */
  sq_oper_reset(op, SQ_OPER_UPDATE);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, dialect, &e) == SQ_OK);
  sq_oper_expect(op, 1, "save");
  CHECK(sq_oper_set_key(op, &gone, 1, &e) == SQ_OK);
  sq_oper_expect_version(op, 41);
  CHECK(sq_oper_run(op) == SQ_ESTALE);
  {
    char want[96];
    snprintf(want, sizeof want, "save: opw_item row id = %lld is not at version 41", (long long)(id + 1000));
    CHECK(strstr(sq_oper_err(op)->msg, want) != NULL);
    if (!strstr(sq_oper_err(op)->msg, want)) fprintf(stderr, "  got: %s\n", sq_oper_err(op)->msg);
  }
  /* bulk conflict options: checked when given */
  sq_oper_reset(op, SQ_OPER_BULK_INSERT);
  CHECK(sq_oper_bulk_conflict(op, SQ_BULK_IGNORE, NULL, 0, NULL, 0, 0, &e) == SQ_EUSAGE);
  CHECK(sq_oper_bulk_rows(op, m, &ucol, 1, &nv, 1, 0, 0, &e) == SQ_OK);
  CHECK(sq_oper_bulk_conflict(op, SQ_BULK_UPDATE, NULL, 0, NULL, 0, 0, &e) == SQ_EUSAGE &&
        strstr(e.msg, "no columns to update"));
  CHECK(sq_oper_bulk_conflict(op, 9, NULL, 0, NULL, 0, 0, &e) == SQ_EUSAGE);
  CHECK(sq_oper_bulk_conflict(op, SQ_BULK_IGNORE, NULL, 0, &ucol, 1, 0, &e) == SQ_EUSAGE);
  CHECK(sq_oper_bulk_conflict(op, SQ_BULK_UPDATE, NULL, 0, &ucol, 1, 0, &e) == SQ_OK);
  if (dialect != SQ_DIALECT_MYSQL) {
    /* no conflict target on PostgreSQL / SQLite: usage, nothing sent */
    sq_oper_target_pool(op, p, NULL);
    CHECK(sq_oper_run(op) == SQ_EUSAGE && strstr(sq_oper_err(op)->msg, "needs conflict") != NULL);
  } else {
    /* MySQL can't return the rows of ON DUPLICATE KEY UPDATE */
    sq_oper_target_pool(op, p, NULL);
    CHECK(sq_oper_run(op) == SQ_EUSAGE && strstr(sq_oper_err(op)->msg, "returning = false") != NULL);
  }

  /* INCREMENT coins by 5 */
  sq_value by = sq_int(5);
  where_id(&w, &key);
  sq_query_init(&q, SQ_Q_UPDATE, m);
  q.incr_cols = &ucol;
  q.incr_values = &by;
  q.nincr = 1;
  q.where = &w;
  sq_oper_reset(op, SQ_OPER_INCREMENT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, dialect, &e) == SQ_OK);
  sq_oper_expect(op, 1, "increment");
  CHECK(sq_oper_run(op) == SQ_OK);

  /* RELOAD: the row, 25 coins; a missing one is stale */
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.where = &w;
  q.paranoid = 0;
  sink_of(&k, &s);
  sq_oper_reset(op, SQ_OPER_RELOAD);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, dialect, &e) == SQ_OK);
  sq_oper_set_sink(op, &s);
  CHECK(sq_oper_run(op) == SQ_OK);
  CHECK(k.rows == 1 && k.first == id);
  where_id(&w, &gone);
  sq_oper_reset(op, SQ_OPER_RELOAD);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &q, dialect, &e) == SQ_OK);
  CHECK(sq_oper_run(op) == SQ_ESTALE);
  CHECK(strstr(sq_oper_err(op)->msg, "reload: ") == sq_oper_err(op)->msg);

  /* BULK_INSERT: 5 rows, 2 per statement: 3 statements in one
   * transaction, the keys back */
  sq_value rows[10];
  char names[5][8];
  for (int i = 0; i < 5; i++) {
    snprintf(names[i], sizeof names[i], "b%d", i);
    rows[i * 2] = sq_text(names[i], strlen(names[i]));
    rows[i * 2 + 1] = sq_int(i);
  }
  sink_of(&k, &s);
  sq_oper_reset(op, SQ_OPER_BULK_INSERT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_bulk_rows(op, m, cols, 2, rows, 5, 2, 0, &e) == SQ_OK);
  memset(names, 'x', sizeof names); /* the op has its own copy */
  sq_oper_set_sink(op, &s);
  CHECK(sq_oper_run(op) == SQ_OK);
  CHECK(sq_oper_result(op)->affected_rows == 5 || (printf("# affected %lld\n", (long long)sq_oper_result(op)->affected_rows), 0));
  CHECK(has_log(op, "BEGIN") || has_log(op, "START TRANSACTION"));
  CHECK(has_log(op, "COMMIT"));
  int nids;
  const int64_t *ids = sq_oper_ids(op, &nids);
  if (k.rows) {
    CHECK(k.rows == 5 && !ids);
  } else {
    CHECK(ids && nids == 5);
    for (int i = 0; ids && i < 5; i++) CHECK(ids[i] > id);
    for (int i = 1; ids && i < 5; i++) CHECK(ids[i] > ids[i - 1]);
  }
  CHECK(count_rows(p, op) == 6);

  /* a failing batch (a duplicate name in the second statement): nothing
   * of the operation stays */
  for (int i = 0; i < 5; i++) {
    snprintf(names[i], sizeof names[i], "c%d", i);
    rows[i * 2] = sq_text(names[i], strlen(names[i]));
  }
  rows[3 * 2] = sq_text("alpha", 5);
  sq_oper_reset(op, SQ_OPER_BULK_INSERT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_bulk_rows(op, m, cols, 2, rows, 5, 2, 0, &e) == SQ_OK);
  CHECK(sq_oper_run(op) == SQ_EUNIQUE);
  CHECK(has_log(op, "ROLLBACK"));
  CHECK(count_rows(p, op) == 6);

  /* inside a transaction: a savepoint, and the transaction's rollback
   * takes it away */
  sq_oper_reset(op, SQ_OPER_BEGIN);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_run(op) == SQ_OK);
  sq_tx *tx = sq_oper_take_tx(op);
  rows[3 * 2] = sq_text("c3", 2);
  sq_oper_reset(op, SQ_OPER_BULK_INSERT);
  sq_oper_target_tx(op, tx);
  CHECK(sq_oper_bulk_rows(op, m, cols, 2, rows, 5, 2, 0, &e) == SQ_OK);
  CHECK(sq_oper_run(op) == SQ_OK);
  CHECK(has_log(op, "SAVEPOINT sq_bulk_sp"));
  CHECK(has_log(op, "RELEASE SAVEPOINT sq_bulk_sp"));
  sq_oper_reset(op, SQ_OPER_ROLLBACK);
  sq_oper_target_tx(op, tx);
  CHECK(sq_oper_run(op) == SQ_OK);
  sq_tx_free(tx);
  CHECK(count_rows(p, op) == 6);

  /* FIND_OR_CREATE: created once, found the second time */
  for (int round = 0; round < 2; round++) {
    sq_value zname = sq_text("zed", 3), zc = sq_int(7);
    sq_expr zw;
    memset(&zw, 0, sizeof zw);
    zw.op = SQ_OP_EQ;
    zw.col = 1;
    zw.vals = &zname;
    zw.nvals = 1;
    sq_query sel;
    sq_query_init(&sel, SQ_Q_SELECT, m);
    sel.where = &zw;
    sel.limit = 1;
    sq_value iv[2] = {zname, zc};
    sq_query ins;
    sq_query_init(&ins, SQ_Q_INSERT, m);
    ins.cols = cols;
    ins.ncols = 2;
    ins.values = iv;
    ins.nrows = 1;
    ins.returning = 1;
    sink_of(&k, &s);
    sq_oper_reset(op, SQ_OPER_FIND_OR_CREATE);
    sq_oper_target_pool(op, p, NULL);
    CHECK(sq_oper_build(op, &sel, dialect, &e) == SQ_OK);
    CHECK(sq_oper_build(op, &ins, dialect, &e) == SQ_OK);
    sq_oper_set_sink(op, &s);
    CHECK(sq_oper_run(op) == SQ_OK);
    CHECK(sq_oper_created(op) == (round == 0));
    if (round == 1) CHECK(k.sets[0] == 1);
    CHECK(sq_oper_nlogs(op) == (round == 0 ? 2 : 1));
  }
  CHECK(count_rows(p, op) == 7);

  /* UPSERT of an existing name: the row updated, read back where the
   * server returns none and the key is known */
  sq_value uv[3] = {sq_int(id), sq_text("alpha", 5), sq_int(99)};
  int ucols[3] = {0, 1, 2};
  sq_query up;
  sq_query_init(&up, SQ_Q_UPSERT, m);
  up.cols = ucols;
  up.ncols = 3;
  up.values = uv;
  up.nrows = 1;
  up.returning = 1;
  sink_of(&k, &s);
  sq_oper_reset(op, SQ_OPER_UPSERT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_build(op, &up, dialect, &e) == SQ_OK);
  CHECK(sq_oper_set_key(op, &uv[0], 1, &e) == SQ_OK);
  sq_oper_set_sink(op, &s);
  CHECK(sq_oper_run(op) == SQ_OK);
  CHECK(k.rows == 1 && k.first == id);
  CHECK(count_rows(p, op) == 7);

  /* DELETE by key, expected 1; again: stale */
  where_id(&w, &key);
  sq_query_init(&q, SQ_Q_DELETE, m);
  q.where = &w;
  for (int round = 0; round < 2; round++) {
    sq_oper_reset(op, SQ_OPER_DELETE);
    sq_oper_target_pool(op, p, NULL);
    CHECK(sq_oper_build(op, &q, dialect, &e) == SQ_OK);
    sq_oper_expect(op, 1, "destroy");
    CHECK(sq_oper_run(op) == (round == 0 ? SQ_OK : SQ_ESTALE));
  }
  CHECK(count_rows(p, op) == 6);

  /* SYNC alter: a wider name column is planned from the live table and
   * keeps the rows; a second alter finds nothing to do */
  sq_model *m2 = items_model(1);
  CHECK(sync(p, op, m2, SQ_SYNC_ALTER) == SQ_OK);
  CHECK(count_rows(p, op) == 6);
  CHECK(sync(p, op, m2, SQ_SYNC_ALTER) == SQ_OK);
  CHECK(sq_oper_nlogs(op) == 0);

  /* BULK_INSERT with SQ_RETURNING_UNSET (issue 15): where the INSERT
   * returns rows (PostgreSQL, MariaDB >= 10.5) they hold only the key,
   * the one column the rows don't give; without it, every column */
  for (int unset = 0; unset < 2; unset++) {
    char un[3][8];
    sq_value ur[6];
    for (int i = 0; i < 3; i++) {
      snprintf(un[i], sizeof un[i], "u%d%d", unset, i);
      ur[i * 2] = sq_text(un[i], strlen(un[i]));
      ur[i * 2 + 1] = sq_int(i);
    }
    sink_of(&k, &s);
    sq_oper_reset(op, SQ_OPER_BULK_INSERT);
    sq_oper_target_pool(op, p, NULL);
    CHECK(sq_oper_bulk_rows(op, m2, cols, 2, ur, 3, 0, 0, &e) == SQ_OK);
    if (unset) sq_oper_bulk_returning(op, SQ_RETURNING_UNSET);
    sq_oper_set_sink(op, &s);
    CHECK(sq_oper_run(op) == SQ_OK);
    int nu;
    const int64_t *uids = sq_oper_ids(op, &nu);
    if (k.rows) {
      CHECK(k.rows == 3 && k.ncols == (unset ? 1 : 3) && k.first > 0);
      CHECK(has_log(op, unset ? "RETURNING \"id\"" : "RETURNING \"id\", \"name\"") ||
            has_log(op, unset ? "RETURNING `id`" : "RETURNING `id`, `name`"));
    } else {
      CHECK(uids && nu == 3 && uids[0] > 0);
    }
  }
  CHECK(count_rows(p, op) == 12);
  CHECK(sync(p, op, m2, SQ_SYNC_DROP) == SQ_OK);
  CHECK(has_log(op, "DROP TABLE"));

  /* building errors */
  sq_oper_reset(op, SQ_OPER_BULK_INSERT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_add_sql(op, "SELECT 1", 8, NULL, 0, 0, &e) == SQ_EUSAGE);
  CHECK(sq_oper_run(op) == SQ_EUSAGE);
  sq_oper_reset(op, SQ_OPER_UPDATE);
  CHECK(sq_oper_run(op) == SQ_EUSAGE);

  sq_model_free(m2);
  sq_model_free(m);
  sq_oper_free(op);
}

/* SQLite: a rebuild of a table other rows reference (ON DELETE
 * CASCADE) keeps them: foreign keys are off while it runs. */
static void sqlite_fk_rebuild(sq_pool *p) {
  sq_err e;
  sq_oper *op;
  CHECK(sq_oper_new(&op, &e) == SQ_OK);
  sq_model *m = items_model(0);
  CHECK(sync(p, op, m, SQ_SYNC_FORCE) == SQ_OK);
  static const char *const setup[] = {
    "INSERT INTO opw_items (id, name, coins) VALUES (1, 'g', 0)",
    "DROP TABLE IF EXISTS opw_members",
    "CREATE TABLE opw_members (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES opw_items(id) ON DELETE CASCADE)",
    "INSERT INTO opw_members (id, item_id) VALUES (1, 1), (2, 1)",
  };
  for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
    sq_oper_reset(op, SQ_OPER_RAW);
    sq_oper_target_pool(op, p, NULL);
    CHECK(sq_oper_add_sql(op, setup[i], strlen(setup[i]), NULL, 0, 0, &e) == SQ_OK);
    CHECK(sq_oper_run(op) == SQ_OK);
  }
  sq_model *m2 = items_model(1);
  CHECK(sync(p, op, m2, SQ_SYNC_ALTER) == SQ_OK);
  CHECK(has_log(op, "PRAGMA foreign_keys = OFF"));
  keep k;
  sq_oper_sink s;
  sink_of(&k, &s);
  sq_oper_reset(op, SQ_OPER_SELECT);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_add_sql(op, "SELECT COUNT(*) FROM opw_members", 32, NULL, 0, SQ_STMT_READ, &e) == SQ_OK);
  sq_oper_set_sink(op, &s);
  CHECK(sq_oper_run(op) == SQ_OK);
  CHECK(k.first == 2);
  sq_oper_reset(op, SQ_OPER_RAW);
  sq_oper_target_pool(op, p, NULL);
  CHECK(sq_oper_add_sql(op, "DROP TABLE opw_members", 22, NULL, 0, 0, &e) == SQ_OK);
  CHECK(sq_oper_run(op) == SQ_OK);
  CHECK(sync(p, op, m2, SQ_SYNC_DROP) == SQ_OK);
  sq_model_free(m2);
  sq_model_free(m);
  sq_oper_free(op);
}

static sq_pool *open_server(const char *dialect, const char *prefix) {
  static const char *const keys[][2] = {
    {"host", "HOST"}, {"port", "PORT"}, {"user", "USER"}, {"password", "PASSWORD"}, {"database", "DB"}};
  char k[64];
  snprintf(k, sizeof k, "%s_PORT", prefix);
  if (!env(k)) {
    if (env("SQORM_TEST_REQUIRE_SERVERS") && !strcmp(env("SQORM_TEST_REQUIRE_SERVERS"), "1")) {
      fprintf(stderr, "%s: no server (%s unset)\n", dialect, k);
      check_failures++;
    } else {
      printf("# %s: skipped (no server)\n", dialect);
    }
    return NULL;
  }
  sq_config cfg;
  sq_err e;
  sq_config_init(&cfg);
  int rc = sq_config_set(&cfg, "dialect", dialect, &e);
  for (size_t i = 0; !rc && i < sizeof keys / sizeof keys[0]; i++) {
    snprintf(k, sizeof k, "%s_%s", prefix, keys[i][1]);
    if (env(k)) rc = sq_config_set(&cfg, keys[i][0], env(k), &e);
  }
  if (!rc && env("SQORM_TEST_CA"))
    rc = sq_config_set(&cfg, "ssl.mode", "verify_ca", &e) || sq_config_set(&cfg, "ssl.ca", env("SQORM_TEST_CA"), &e);
  sq_pool *p = NULL;
  if (!rc) rc = sq_config_finish(&cfg, &e);
  if (!rc) rc = sq_pool_open(&cfg, &p, &e);
  sq_config_free(&cfg);
  if (rc) {
    fprintf(stderr, "%s: %s\n", dialect, e.msg);
    check_failures++;
    return NULL;
  }
  return p;
}

int main(void) {
  char path[] = "/tmp/sqorm_opw_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  char url[300];
  snprintf(url, sizeof url, "sqlite:%s", path);
  sq_config cfg;
  sq_err e;
  sq_config_init(&cfg);
  sq_pool *p = NULL;
  CHECK(sq_config_parse_url(&cfg, url, &e) == SQ_OK && sq_config_finish(&cfg, &e) == SQ_OK &&
        sq_pool_open(&cfg, &p, &e) == SQ_OK);
  sq_config_free(&cfg);
  if (p) {
    exercise("sqlite", p);
    sqlite_fk_rebuild(p);
    sq_pool_close(p);
  }
  unlink(path);
  char side[320];
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
  static const char *const servers[][2] = {{"mysql", "SQORM_TEST_MYSQL"}, {"postgres", "SQORM_TEST_PG"}};
  for (int i = 0; i < 2; i++) {
    sq_pool *sp = open_server(servers[i][0], servers[i][1]);
    if (!sp) continue;
    exercise(servers[i][0], sp);
    sq_pool_close(sp);
  }
  return CHECK_DONE();
}
