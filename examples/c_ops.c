/*
 * c_ops.c - sqorm's operations from C, with no Lua at all: define a
 * model, sync its table, then create, find, update and destroy rows,
 * each call one operation (sq_oper) that the core runs on one connection.
 *
 *   c_ops [URL]        (default: $DATABASE_URL, else sqlite::memory:)
 *
 * Prints what each step did; a failure prints the error and exits 1.
 */
#include "sqorm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A row sink keeping the last row of players (id, name, coins). Values
 * are valid only during the call: copy what you keep. */
typedef struct player {
  int rows;
  int64_t id, coins;
  char name[32];
} player;

static int on_columns(void *ud, int set, int ncols, const sq_column *cols, sq_err *err) {
  (void)ud, (void)set, (void)ncols, (void)cols, (void)err;
  return 0;
}

static int64_t as_int(const sq_value *v) {
  if (v->type == SQ_VINT) return v->u.i;
  if (v->type == SQ_VTEXT) return strtoll(v->u.s.p, NULL, 10);
  return 0;
}

static int on_row(void *ud, int set, int64_t parent, int ncols, const sq_value *v, sq_err *err) {
  player *p = ud;
  (void)set, (void)parent, (void)err;
  p->rows++;
  if (ncols < 3) return 0;
  p->id = as_int(&v[0]);
  snprintf(p->name, sizeof p->name, "%.*s", (int)v[1].u.s.n, v[1].type == SQ_VTEXT ? v[1].u.s.p : "");
  p->coins = as_int(&v[2]);
  return 0;
}

static int fail(const char *what, const sq_err *e) {
  fprintf(stderr, "c_ops: %s: [%s] %s\n", what, sq_kind_name(e->kind), e->msg);
  return 1;
}

static sq_coldef column(const char *name, int type) {
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = name;
  d.type = type;
  d.allow_null = 1;
  d.default_value = sq_null();
  return d;
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : getenv("DATABASE_URL");
  if (!url || !*url) url = "sqlite::memory:";
  sq_err err;
  sq_err_clear(&err);
  if (sq_global_init(&err)) return fail("init", &err);

  /* the pool: one connection is plenty here (and one in-memory SQLite
   * database is one connection's) */
  sq_config cfg;
  sq_config_init(&cfg);
  sq_pool *pool = NULL;
  if (sq_config_parse_url(&cfg, url, &err) || sq_config_set(&cfg, "pool.max", "1", &err) ||
      sq_config_finish(&cfg, &err) || sq_pool_open(&cfg, &pool, &err)) {
    sq_config_free(&cfg);
    return fail("connect", &err);
  }
  sq_config_free(&cfg);
  int dialect = sq_pool_driver(pool)->dialect;

  /* the model: players (id auto-increment, name unique, coins) */
  sq_model *m = NULL;
  sq_model_opts mo;
  memset(&mo, 0, sizeof mo);
  mo.table_name = "c_ops_players";
  mo.timestamps = 0;
  sq_coldef id = column("id", SQ_T_INTEGER), name = column("name", SQ_T_STRING), coins = column("coins", SQ_T_INTEGER);
  id.primary_key = id.auto_increment = 1;
  id.allow_null = 0;
  name.length = 32;
  name.allow_null = 0;
  name.unique = "";
  if (sq_model_new("player", &mo, &m, &err) || sq_model_add_column(m, &id, &err) ||
      sq_model_add_column(m, &name, &err) || sq_model_add_column(m, &coins, &err) || sq_model_finish(m, &err))
    return fail("define", &err);

  /* one op object, reset for each operation (its arena is reused) */
  sq_oper *op = NULL;
  if (sq_oper_new(&op, &err)) return fail("sq_oper_new", &err);
  player row;
  sq_oper_sink sink = {&row, on_columns, on_row, NULL};
  int rc = 1;

  /* sync: drop and create the table (SQ_SYNC_FORCE) */
  sq_oper_reset(op, SQ_OPER_SYNC);
  sq_oper_target_pool(op, pool, NULL);
  if (sq_oper_sync(op, &m, 1, SQ_SYNC_FORCE, &err)) goto out_build;
  if (sq_oper_run(op)) goto out_run;
  printf("synced %s (%d statements)\n", sq_model_table(m), sq_oper_nlogs(op));

  /* create: INSERT, the key from RETURNING or the driver's last id */
  int cols[2] = {1, 2};
  sq_value vals[2] = {sq_text("ada", 3), sq_int(10)};
  sq_query q;
  sq_query_init(&q, SQ_Q_INSERT, m);
  q.cols = cols;
  q.ncols = 2;
  q.values = vals;
  q.nrows = 1;
  q.returning = dialect != SQ_DIALECT_SQLITE;
  memset(&row, 0, sizeof row);
  sq_oper_reset(op, SQ_OPER_INSERT);
  sq_oper_target_pool(op, pool, NULL);
  sq_oper_set_sink(op, &sink);
  if (sq_oper_build(op, &q, dialect, &err)) goto out_build;
  if (sq_oper_run(op)) goto out_run;
  int64_t key = row.rows ? row.id : sq_oper_result(op)->last_insert_id;
  printf("created: id=%" PRId64 "\n", key);

  /* find by primary key */
  sq_value kv = sq_int(key);
  sq_expr where;
  memset(&where, 0, sizeof where);
  where.op = SQ_OP_EQ;
  where.col = 0;
  where.vals = &kv;
  where.nvals = 1;
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.where = &where;
  memset(&row, 0, sizeof row);
  sq_oper_reset(op, SQ_OPER_SELECT);
  sq_oper_target_pool(op, pool, NULL);
  sq_oper_set_sink(op, &sink);
  if (sq_oper_build(op, &q, dialect, &err)) goto out_build;
  if (sq_oper_run(op)) goto out_run;
  printf("found: id=%" PRId64 " name=%s coins=%" PRId64 "\n", row.id, row.name, row.coins);

  /* update by key, expecting the row to be there (else kind stale) */
  int ccol = 2;
  sq_value newc = sq_int(25);
  sq_query_init(&q, SQ_Q_UPDATE, m);
  q.cols = &ccol;
  q.ncols = 1;
  q.values = &newc;
  q.nrows = 1;
  q.where = &where;
  sq_oper_reset(op, SQ_OPER_UPDATE);
  sq_oper_target_pool(op, pool, NULL);
  if (sq_oper_build(op, &q, dialect, &err)) goto out_build;
  sq_oper_expect(op, 1, "save");
  if (sq_oper_run(op)) goto out_run;
  printf("updated: %" PRId64 " row\n", sq_oper_result(op)->affected_rows);

  /* reload: the row as stored */
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.where = &where;
  memset(&row, 0, sizeof row);
  sq_oper_reset(op, SQ_OPER_RELOAD);
  sq_oper_target_pool(op, pool, NULL);
  sq_oper_set_sink(op, &sink);
  if (sq_oper_build(op, &q, dialect, &err)) goto out_build;
  if (sq_oper_run(op)) goto out_run;
  printf("reloaded: coins=%" PRId64 "\n", row.coins);

  /* destroy by key, then once more: the row is gone, kind stale */
  sq_query_init(&q, SQ_Q_DELETE, m);
  q.where = &where;
  for (int round = 0; round < 2; round++) {
    sq_oper_reset(op, SQ_OPER_DELETE);
    sq_oper_target_pool(op, pool, NULL);
    if (sq_oper_build(op, &q, dialect, &err)) goto out_build;
    sq_oper_expect(op, 1, "destroy");
    int r = sq_oper_run(op);
    if (round == 0 && r) goto out_run;
    if (round == 0) printf("destroyed: %" PRId64 " row\n", sq_oper_result(op)->affected_rows);
    else printf("destroyed again: %s\n", sq_kind_name(r));
  }

  /* drop the table */
  sq_oper_reset(op, SQ_OPER_SYNC);
  sq_oper_target_pool(op, pool, NULL);
  if (sq_oper_sync(op, &m, 1, SQ_SYNC_DROP, &err)) goto out_build;
  if (sq_oper_run(op)) goto out_run;
  printf("c_ops: ok\n");
  rc = 0;
  goto out;
out_build:
  rc = fail("build", &err);
  goto out;
out_run:
  rc = fail("run", sq_oper_err(op));
out:
  sq_oper_free(op);
  sq_model_free(m);
  sq_pool_close(pool);
  return rc;
}
