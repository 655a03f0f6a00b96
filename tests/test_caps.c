/* test_caps.c - server capabilities (sq_server_caps) and what the
 * renderer does with them (sq_query.caps): INSERT ... RETURNING on
 * MariaDB >= 10.5 only, never on MySQL or TiDB, never for an upsert. */
#include "sqorm.h"
#include "check.h"

enum { SQLITE = SQ_DIALECT_SQLITE, MYSQL = SQ_DIALECT_MYSQL, PG = SQ_DIALECT_POSTGRES };
enum { R = SQ_CAP_INSERT_RETURNING };

static void test_server_caps(void) {
  CHECK(sq_server_caps(MYSQL, "10.11.19-MariaDB-0+deb12u1") == R);
  CHECK(sq_server_caps(MYSQL, "10.5.0-MariaDB") == R);
  CHECK(sq_server_caps(MYSQL, "5.5.5-10.6.12-MariaDB-log") == R);
  CHECK(sq_server_caps(MYSQL, "11.4.2-MariaDB") == R);
  CHECK(sq_server_caps(MYSQL, "10.4.32-MariaDB") == 0);
  CHECK(sq_server_caps(MYSQL, "5.5.5-10.3.39-MariaDB") == 0);
  CHECK(sq_server_caps(MYSQL, "8.0.36") == 0);
  CHECK(sq_server_caps(MYSQL, "8.0.11-TiDB-v7.5.0") == 0);
  CHECK(sq_server_caps(MYSQL, "") == 0);
  CHECK(sq_server_caps(MYSQL, NULL) == 0);
  CHECK(sq_server_caps(MYSQL, "MariaDB") == 0);
  CHECK(sq_server_caps(PG, "15.8") == R);
  CHECK(sq_server_caps(SQLITE, "3.40.1") == R);
  CHECK(sq_server_caps(SQLITE, "3.34.1") == 0);
  CHECK(sq_conn_caps(NULL) == 0);
}

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
  if (sq_model_finish(m, &e)) {
    sq_model_free(m);
    return NULL;
  }
  return m; /* id, name, created_at, updated_at */
}

static void expect(const sq_query *q, const char *sql, int returns_rows) {
  sq_sql s;
  sq_err e;
  int rc = sq_render(q, MYSQL, &s, &e);
  CHECK(rc == SQ_OK);
  if (rc) return;
  CHECK_STR(s.sql, sql);
  CHECK(s.returns_rows == returns_rows);
  sq_sql_free(&s);
}

static void test_render_caps(const sq_model *m) {
  int cols[] = {1};
  sq_value v[] = {sq_text("ann", 3), sq_text("bob", 3)};
  sq_query q;
  sq_query_init(&q, SQ_Q_INSERT, m);
  CHECK(q.caps == 0);
  q.cols = cols;
  q.ncols = 1;
  q.values = v;
  q.nrows = 2;
  q.returning = 1;
  /* the dialect's baseline: MySQL has no RETURNING */
  expect(&q, "INSERT INTO `players` (`name`) VALUES (?), (?)", 0);
  q.caps = R;
  expect(&q, "INSERT INTO `players` (`name`) VALUES (?), (?) "
             "RETURNING `id`, `name`, `created_at`, `updated_at`", 1);
  /* only when asked for */
  q.returning = 0;
  expect(&q, "INSERT INTO `players` (`name`) VALUES (?), (?)", 0);
  /* MariaDB has no RETURNING for INSERT ... ON DUPLICATE KEY UPDATE */
  sq_query_init(&q, SQ_Q_UPSERT, m);
  q.cols = cols;
  q.ncols = 1;
  q.values = v;
  q.nrows = 1;
  q.conflict_cols = cols;
  q.nconflict = 1;
  q.returning = 1;
  q.caps = R;
  sq_sql s;
  sq_err e;
  CHECK(sq_render(&q, MYSQL, &s, &e) == SQ_OK);
  CHECK(s.sql && !strstr(s.sql, "RETURNING") && !s.returns_rows);
  sq_sql_free(&s);
}

int main(void) {
  test_server_caps();
  sq_model *m = players();
  CHECK(m != NULL);
  if (m) test_render_caps(m);
  sq_model_free(m);
  return CHECK_DONE();
}
