/*
 * test_migrate.c - the migrator's session (sq_migrator_*, src/core/migrate.c)
 * from C: the bookkeeping table, one migration in its transaction, a
 * failing one named (rolled back, or partially applied on MySQL), two
 * threads running at once applying a migration once under the lock, and
 * a run that can't get the lock in time. On a SQLite file always; on
 * MySQL and PostgreSQL when SQORM_TEST_MYSQL_URL / SQORM_TEST_PG_URL are
 * set (scripts/with-test-servers.sh).
 */
#include "sqorm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void nap(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int failures;
#define CHECK(cond, ...)                                          \
  do {                                                            \
    int ok_ = (cond) != 0;                                        \
    if (!ok_) failures++;                                         \
    printf("%s - ", ok_ ? "ok" : "FAIL");                         \
    printf(__VA_ARGS__);                                          \
    printf("\n");                                                 \
    fflush(stdout);                                               \
  } while (0)

typedef struct ctx {
  sq_pool *pool;
  const char *table, *ttable;
  int applied;   /* migrations this thread applied */
  int rc;
  sq_err err;
  double hold;   /* seconds to keep the session open */
  volatile int holding; /* set once the run holds the lock and has read its rows */
  volatile int release; /* ends the hold early */
} ctx;

static int count_row(void *ud, const sq_migration_row *r, sq_err *err) {
  (void)err;
  int *n = ud;
  if (!strcmp(r->name, "003_add")) n[1]++;
  n[0]++;
  return 0;
}

static int rows(sq_migrator *m, int *total, int *has003, sq_err *err) {
  int n[2] = {0, 0};
  int rc = sq_migrator_rows(m, count_row, n, err);
  *total = n[0];
  if (has003) *has003 = n[1];
  return rc;
}

/* A run: the lock, the rows, 003 when it is not there yet. */
static void *runner(void *arg) {
  ctx *c = arg;
  sq_migrator *m;
  sq_err_clear(&c->err);
  c->rc = sq_migrator_open(c->pool, NULL, c->table, 20, &m, &c->err);
  if (c->rc) return NULL;
  int total, has;
  c->rc = rows(m, &total, &has, &c->err);
  if (!c->rc && !has) {
    sq_scol col;
    sq_scol_init(&col, "level", SQ_T_INTEGER);
    sq_sop op;
    sq_sop_init(&op, SQ_SOP_ADD_COLUMN, c->ttable);
    op.col = &col;
    c->rc = sq_migrator_begin(m, "003_add", &c->err);
    if (!c->rc) c->rc = sq_migrator_apply(m, &op, 1, &c->err);
    nap(0.2); /* let the other run queue up on the lock */
    if (!c->rc) c->rc = sq_migrator_record(m, "003_add", 2, "cafe", &c->err);
    if (!c->rc) c->rc = sq_migrator_commit(m, &c->err);
    else sq_migrator_rollback(m, &c->err);
    if (!c->rc) c->applied++;
  }
  __atomic_store_n(&c->holding, 1, __ATOMIC_SEQ_CST);
  for (double t = 0; t < c->hold && !__atomic_load_n(&c->release, __ATOMIC_SEQ_CST); t += 0.05) nap(0.05);
  sq_err e;
  sq_err_clear(&e);
  if (sq_migrator_close(m, &e) && !c->rc) {
    c->rc = e.kind;
    c->err = e;
  }
  return NULL;
}

static void drop(sq_pool *p, const char *t, int dialect) {
  char sql[256];
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s%s", t, dialect == SQ_DIALECT_POSTGRES ? " CASCADE" : "");
  sq_result res;
  sq_err e;
  sq_pool_exec(p, sql, strlen(sql), NULL, 0, NULL, &res, &e);
}

static void run_case(const char *label, const char *url) {
  printf("# %s\n", label);
  sq_config cfg;
  sq_config_init(&cfg);
  sq_err err;
  sq_err_clear(&err);
  sq_pool *p = NULL;
  int rc = sq_config_parse_url(&cfg, url, &err);
  if (!rc) rc = sq_config_finish(&cfg, &err);
  if (!rc) rc = sq_pool_open(&cfg, &p, &err);
  CHECK(rc == SQ_OK, "%s: pool opens (%s)", label, err.msg);
  sq_config_free(&cfg);
  if (rc) return;
  char table[64], ttable[64], xtable[64];
  int salt = (int)(getpid() % 100000);
  snprintf(table, sizeof table, "ct_migs_%d", salt);
  snprintf(ttable, sizeof ttable, "ct_players_%d", salt);
  snprintf(xtable, sizeof xtable, "ct_extra_%d", salt);
  int dialect = sq_pool_config(p)->dialect;

  sq_migrator *m = NULL;
  rc = sq_migrator_open(p, NULL, table, 10, &m, &err);
  CHECK(rc == SQ_OK, "%s: a session opens and makes its table (%s)", label, err.msg);
  if (rc) goto out;
  int total = -1;
  CHECK(rows(m, &total, NULL, &err) == SQ_OK && total == 0, "%s: no rows yet", label);

  /* 001: a table and its row, one transaction */
  sq_scol cols[2];
  sq_scol_init(&cols[0], "id", SQ_T_INTEGER);
  cols[0].primary_key = 1;
  cols[0].auto_increment = 1;
  sq_scol_init(&cols[1], "name", SQ_T_STRING);
  cols[1].length = 32;
  sq_sop op;
  sq_sop_init(&op, SQ_SOP_CREATE_TABLE, ttable);
  op.cols = cols;
  op.ncols = 2;
  rc = sq_migrator_begin(m, "001_create", &err);
  if (!rc) rc = sq_migrator_apply(m, &op, 1, &err);
  if (!rc) rc = sq_migrator_record(m, "001_create", 1, "0123456789abcdef", &err);
  if (!rc) rc = sq_migrator_commit(m, &err);
  CHECK(rc == SQ_OK, "%s: 001 applies with its row (%s)", label, err.msg);
  CHECK(rows(m, &total, NULL, &err) == SQ_OK && total == 1, "%s: one row", label);

  /* 002 fails in its second op */
  sq_sop ops[2];
  sq_sop_init(&ops[0], SQ_SOP_CREATE_TABLE, xtable);
  ops[0].cols = cols;
  ops[0].ncols = 1;
  sq_scol c2;
  sq_scol_init(&c2, "x", SQ_T_INTEGER);
  sq_sop_init(&ops[1], SQ_SOP_ADD_COLUMN, "ct_no_such_table");
  ops[1].col = &c2;
  rc = sq_migrator_begin(m, "002_bad", &err);
  if (!rc) rc = sq_migrator_apply(m, &ops[0], 1, &err);
  if (!rc) rc = sq_migrator_apply(m, &ops[1], 1, &err);
  CHECK(rc != SQ_OK, "%s: 002 fails", label);
  int kind = err.kind;
  sq_migrator_rollback(m, &err);
  CHECK(err.kind == kind && strstr(err.msg, "migration \"002_bad\" failed"), "%s: the error names it: %s", label,
        err.msg);
  if (dialect == SQ_DIALECT_MYSQL)
    CHECK(strstr(err.msg, "partially applied") && strstr(err.msg, "ALTER TABLE `ct_no_such_table`"),
          "%s: MySQL says partially applied and names the statement", label);
  else
    CHECK(strstr(err.msg, "nothing of it remains") != NULL, "%s: rolled back", label);
  sq_err_clear(&err);
  CHECK(rows(m, &total, NULL, &err) == SQ_OK && total == 1, "%s: still one row", label);
  CHECK(sq_migrator_close(m, &err) == SQ_OK, "%s: closes (%s)", label, err.msg);
  m = NULL;

  /* two runs at once: 003 applied once */
  ctx a = {p, table, ttable, 0, 0, {0}, 0, 0, 0}, b = a;
  pthread_t ta, tb;
  pthread_create(&ta, NULL, runner, &a);
  pthread_create(&tb, NULL, runner, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK(a.rc == SQ_OK && b.rc == SQ_OK, "%s: both runs succeed (%s / %s)", label, a.err.msg, b.err.msg);
  CHECK(a.applied + b.applied == 1, "%s: 003 applied once (%d + %d)", label, a.applied, b.applied);

  /* a run holding the lock: another gives up after its timeout */
  /* held until the other open has given up (or 20 s): a fixed hold was
   * shorter than a TLS connect under ASan on a loaded machine */
  ctx h = {p, table, ttable, 0, 0, {0}, 20, 0, 0};
  pthread_t th;
  pthread_create(&th, NULL, runner, &h);
  /* wait until it holds the lock (a fixed nap was too short under ASan
   * on a loaded machine), up to 20 s */
  for (int i = 0; i < 200 && !__atomic_load_n(&h.holding, __ATOMIC_SEQ_CST); i++) nap(0.1);
  sq_err_clear(&err);
  rc = sq_migrator_open(p, NULL, table, 0.3, &m, &err);
  CHECK(rc == SQ_ETIMEOUT && strstr(err.msg, "another migration run holds the lock"),
        "%s: the lock is held: %s", label, err.msg);
  __atomic_store_n(&h.release, 1, __ATOMIC_SEQ_CST);
  if (!rc) sq_migrator_close(m, &err);
  m = NULL;
  pthread_join(th, NULL);
  CHECK(h.rc == SQ_OK, "%s: the holder finished (%s)", label, h.err.msg);
out:
  if (m) sq_migrator_abandon(m);
  drop(p, xtable, dialect);
  drop(p, ttable, dialect);
  drop(p, table, dialect);
  sq_pool_close(p);
}

int main(void) {
  sq_err err;
  if (sq_global_init(&err)) return 1;
  char path[] = "/tmp/sqorm-test-migrate-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  char url[128];
  snprintf(url, sizeof url, "sqlite://%s", path);
  run_case("sqlite", url);
  unlink(path);
  const char *u = getenv("SQORM_TEST_MYSQL_URL");
  if (u && *u) run_case("mysql", u);
  u = getenv("SQORM_TEST_PG_URL");
  if (u && *u) run_case("postgres", u);
  printf("%s\n", failures ? "FAILED" : "all ok");
  return failures ? 1 : 0;
}
