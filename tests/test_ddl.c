/*
 * test_ddl.c - schema statements: the exact CREATE / DROP text per
 * dialect for the TiDB quickstart's players and for a model with a
 * composite key and a composite unique, hostile names, refused models,
 * and sq_plan_alter against live tables: always on SQLite (":memory:"),
 * on MariaDB and PostgreSQL when SQORM_TEST_MYSQL_* / SQORM_TEST_PG_* are
 * set (those parts are skipped otherwise, or fail under
 * SQORM_TEST_REQUIRE_SERVERS=1).
 *
 * The live flow: create v1 through the plan, insert a row, plan v2 (a
 * column added, one dropped, a type and a nullability changed, timestamps
 * and a new index), run it, check the row survived, plan again (empty),
 * and check the index exists exactly once.
 */
#include "sqorm.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sq_err E;

/* ------------------------------------------------------------------ */
/* Model helpers                                                        */
/* ------------------------------------------------------------------ */

static sq_coldef col(const char *name, int type) {
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = name;
  d.type = type;
  d.allow_null = 1;
  return d;
}

static void add(sq_model *m, sq_coldef d) {
  if (sq_model_add_column(m, &d, &E) != SQ_OK) {
    fprintf(stderr, "add_column %s: %s\n", d.name, E.msg);
    check_failures++;
  }
}

static sq_model *finish(sq_model *m) {
  if (sq_model_finish(m, &E) != SQ_OK) {
    fprintf(stderr, "finish: %s\n", E.msg);
    check_failures++;
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static sq_model *new_model(const char *name, const char *table, int timestamps) {
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.table_name = table;
  o.timestamps = timestamps;
  sq_model *m = NULL;
  if (sq_model_new(name, &o, &m, &E) != SQ_OK) {
    fprintf(stderr, "model_new: %s\n", E.msg);
    check_failures++;
    return NULL;
  }
  return m;
}

/* The TiDB quickstart's players, plus an index on coins. */
static sq_model *players_model(void) {
  sq_model *m = new_model("player", "players", 1);
  if (!m) return NULL;
  sq_coldef d = col("id", SQ_T_INTEGER);
  d.primary_key = 1;
  d.auto_increment = 1;
  d.allow_null = 0;
  d.comment = "The unique ID of the player.";
  add(m, d);
  d = col("name", SQ_T_STRING);
  d.length = 32;
  d.unique = "";
  add(m, d);
  d = col("coins", SQ_T_INTEGER);
  d.allow_null = 0;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_int(0);
  add(m, d);
  d = col("goods", SQ_T_INTEGER);
  d.allow_null = 0;
  add(m, d);
  const char *ic[] = {"coins"};
  sq_model_add_index(m, NULL, ic, 1, 0, &E);
  return finish(m);
}

/* A composite primary key, a composite unique shared by two columns,
 * and one column of every other kind of default. */
static sq_model *member_model(void) {
  sq_model *m = new_model("membership", "memberships", 0);
  if (!m) return NULL;
  sq_coldef d = col("user_id", SQ_T_BIGINT);
  d.primary_key = 1;
  d.allow_null = 0;
  add(m, d);
  d = col("group_id", SQ_T_BIGINT);
  d.primary_key = 1;
  d.allow_null = 0;
  add(m, d);
  d = col("slot_a", SQ_T_SMALLINT);
  d.unique = "slot";
  add(m, d);
  d = col("slot_b", SQ_T_SMALLINT);
  d.unique = "slot";
  add(m, d);
  d = col("role", SQ_T_CHAR);
  d.length = 16;
  d.allow_null = 0;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_text("it's \\ ok", 9);
  d.comment = "who's who";
  add(m, d);
  d = col("active", SQ_T_BOOLEAN);
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_bool(1);
  add(m, d);
  d = col("score", SQ_T_DOUBLE);
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_float(0.1);
  add(m, d);
  d = col("price", SQ_T_DECIMAL);
  d.precision = 12;
  d.scale = 2;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_text("1.50", 4);
  add(m, d);
  d = col("ratio", SQ_T_FLOAT);
  add(m, d);
  d = col("token", SQ_T_UUID);
  d.default_kind = SQ_DEFAULT_UUIDV4;
  add(m, d);
  d = col("data", SQ_T_BLOB);
  add(m, d);
  d = col("bio", SQ_T_TEXT);
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_text("n/a", 3);
  add(m, d);
  d = col("born", SQ_T_DATE);
  add(m, d);
  d = col("seen", SQ_T_DATETIME);
  d.default_kind = SQ_DEFAULT_NOW;
  add(m, d);
  const char *ic[] = {"role", "active"};
  sq_model_add_index(m, "memberships_role_active", ic, 2, 1, &E);
  return finish(m);
}

/* Renders and compares statement by statement; NULL ends expect. */
static void expect_list(const char *what, int rc, const sq_sql_list *l, const char *const *expect) {
  int n = 0;
  while (expect[n]) n++;
  if (rc != SQ_OK) {
    fprintf(stderr, "%s: rc %d: %s\n", what, rc, E.msg);
    check_failures++;
    check_count++;
    return;
  }
  CHECK(l->n == n);
  if (l->n != n) fprintf(stderr, "%s: %d statements, expected %d\n", what, l->n, n);
  for (int i = 0; i < l->n && i < n; i++) CHECK_STR(l->sql[i], expect[i]);
  for (int i = n; i < l->n; i++) fprintf(stderr, "%s: extra: %s\n", what, l->sql[i]);
}

static void check_create(const sq_model *m, int dialect, int ine, const char *const *expect) {
  sq_sql_list l = {0};
  int rc = sq_render_create(m, dialect, ine, &l, &E);
  expect_list(sq_dialect_name(dialect), rc, &l, expect);
  sq_sql_list_free(&l);
}

/* ------------------------------------------------------------------ */
/* Rendering                                                            */
/* ------------------------------------------------------------------ */

static void test_players(void) {
  sq_model *m = players_model();
  if (!m) return;
  static const char *const lite[] = {
      "CREATE TABLE IF NOT EXISTS \"players\" (\"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "
      "\"name\" VARCHAR(32) UNIQUE, \"coins\" INTEGER NOT NULL DEFAULT 0, \"goods\" INTEGER NOT NULL, "
      "\"created_at\" DATETIME NOT NULL, \"updated_at\" DATETIME NOT NULL)",
      "CREATE INDEX IF NOT EXISTS \"players_coins\" ON \"players\" (\"coins\")", NULL};
  check_create(m, SQ_DIALECT_SQLITE, 1, lite);
  static const char *const my[] = {
      "CREATE TABLE IF NOT EXISTS `players` (`id` INT NOT NULL AUTO_INCREMENT COMMENT 'The unique ID of the "
      "player.', `name` VARCHAR(32) UNIQUE, `coins` INT NOT NULL DEFAULT 0, `goods` INT NOT NULL, "
      "`created_at` DATETIME NOT NULL, `updated_at` DATETIME NOT NULL, PRIMARY KEY (`id`), "
      "INDEX `players_coins` (`coins`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
      NULL};
  check_create(m, SQ_DIALECT_MYSQL, 1, my);
  static const char *const pg[] = {
      "CREATE TABLE \"players\" (\"id\" INTEGER GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, "
      "\"name\" VARCHAR(32) UNIQUE, \"coins\" INTEGER NOT NULL DEFAULT 0, \"goods\" INTEGER NOT NULL, "
      "\"created_at\" TIMESTAMP NOT NULL, \"updated_at\" TIMESTAMP NOT NULL)",
      "COMMENT ON COLUMN \"players\".\"id\" IS 'The unique ID of the player.'",
      "CREATE INDEX \"players_coins\" ON \"players\" (\"coins\")", NULL};
  check_create(m, SQ_DIALECT_POSTGRES, 0, pg);

  sq_sql_list l = {0};
  static const char *const d1[] = {"DROP TABLE IF EXISTS \"players\"", NULL};
  expect_list("drop sqlite", sq_render_drop(m, SQ_DIALECT_SQLITE, 1, &l, &E), &l, d1);
  sq_sql_list_free(&l);
  static const char *const d2[] = {"DROP TABLE `players`", NULL};
  expect_list("drop mysql", sq_render_drop(m, SQ_DIALECT_MYSQL, 0, &l, &E), &l, d2);
  sq_sql_list_free(&l);
  CHECK(l.sql == NULL && l.n == 0);
  sq_sql_list_free(&l); /* twice is fine */
  sq_sql_list_free(NULL);
  sq_model_free(m);
}

static void test_members(void) {
  sq_model *m = member_model();
  if (!m) return;
  static const char *const lite[] = {
      "CREATE TABLE \"memberships\" (\"user_id\" BIGINT NOT NULL, \"group_id\" BIGINT NOT NULL, "
      "\"slot_a\" SMALLINT, \"slot_b\" SMALLINT, \"role\" CHAR(16) NOT NULL DEFAULT 'it''s \\ ok', "
      "\"active\" BOOLEAN DEFAULT 1, \"score\" DOUBLE DEFAULT 0.1, \"price\" DECIMAL TEXT(12,2) DEFAULT '1.50', "
      "\"ratio\" FLOAT, \"token\" CHAR(36), \"data\" BLOB, \"bio\" TEXT DEFAULT 'n/a', \"born\" DATE, \"seen\" DATETIME, "
      "PRIMARY KEY (\"user_id\", \"group_id\"), CONSTRAINT \"slot\" UNIQUE (\"slot_a\", \"slot_b\"))",
      "CREATE UNIQUE INDEX \"memberships_role_active\" ON \"memberships\" (\"role\", \"active\")", NULL};
  check_create(m, SQ_DIALECT_SQLITE, 0, lite);
  static const char *const my[] = {
      "CREATE TABLE `memberships` (`user_id` BIGINT NOT NULL, `group_id` BIGINT NOT NULL, "
      "`slot_a` SMALLINT, `slot_b` SMALLINT, `role` CHAR(16) NOT NULL DEFAULT 'it''s \\\\ ok' "
      "COMMENT 'who''s who', `active` TINYINT(1) DEFAULT 1, `score` DOUBLE DEFAULT 0.1, "
      "`price` DECIMAL(12,2) DEFAULT '1.50', `ratio` FLOAT, `token` CHAR(36), `data` LONGBLOB, `bio` TEXT DEFAULT ('n/a'), "
      "`born` DATE, `seen` DATETIME, PRIMARY KEY (`user_id`, `group_id`), "
      "CONSTRAINT `slot` UNIQUE (`slot_a`, `slot_b`), UNIQUE INDEX `memberships_role_active` "
      "(`role`, `active`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
      NULL};
  check_create(m, SQ_DIALECT_MYSQL, 0, my);
  static const char *const pg[] = {
      "CREATE TABLE IF NOT EXISTS \"memberships\" (\"user_id\" BIGINT NOT NULL, \"group_id\" BIGINT NOT NULL, "
      "\"slot_a\" SMALLINT, \"slot_b\" SMALLINT, \"role\" CHAR(16) NOT NULL DEFAULT E'it''s \\\\ ok', "
      "\"active\" BOOLEAN DEFAULT TRUE, \"score\" DOUBLE PRECISION DEFAULT 0.1, "
      "\"price\" DECIMAL(12,2) DEFAULT '1.50', \"ratio\" REAL, \"token\" UUID, \"data\" BYTEA, \"bio\" TEXT DEFAULT 'n/a', "
      "\"born\" DATE, \"seen\" TIMESTAMP, PRIMARY KEY (\"user_id\", \"group_id\"), "
      "CONSTRAINT \"slot\" UNIQUE (\"slot_a\", \"slot_b\"))",
      "COMMENT ON COLUMN \"memberships\".\"role\" IS 'who''s who'",
      "CREATE UNIQUE INDEX IF NOT EXISTS \"memberships_role_active\" ON \"memberships\" (\"role\", \"active\")",
      NULL};
  check_create(m, SQ_DIALECT_POSTGRES, 1, pg);
  sq_model_free(m);
}

/* Names carrying quotes, backticks and SQL stay inside their quotes. */
static sq_model *hostile_model(void) {
  sq_model *m = new_model("evil", "ev\"il`; DROP TABLE x; --", 0);
  if (!m) return NULL;
  sq_coldef d = col("i\"d", SQ_T_INTEGER);
  d.primary_key = 1;
  d.allow_null = 0;
  add(m, d);
  d = col("a`b", SQ_T_TEXT);
  d.comment = "x'); DROP TABLE y; --";
  add(m, d);
  const char *ic[] = {"a`b"};
  sq_model_add_index(m, "ix\"`", ic, 1, 0, &E);
  return finish(m);
}

static void test_hostile(void) {
  sq_model *m = hostile_model();
  if (!m) return;
  static const char *const lite[] = {
      "CREATE TABLE \"ev\"\"il`; DROP TABLE x; --\" (\"i\"\"d\" INTEGER NOT NULL PRIMARY KEY, \"a`b\" TEXT)",
      "CREATE INDEX \"ix\"\"`\" ON \"ev\"\"il`; DROP TABLE x; --\" (\"a`b\")", NULL};
  check_create(m, SQ_DIALECT_SQLITE, 0, lite);
  static const char *const my[] = {
      "CREATE TABLE `ev\"il``; DROP TABLE x; --` (`i\"d` INT NOT NULL, `a``b` TEXT COMMENT "
      "'x''); DROP TABLE y; --', PRIMARY KEY (`i\"d`), INDEX `ix\"``` (`a``b`)) "
      "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
      NULL};
  check_create(m, SQ_DIALECT_MYSQL, 0, my);
  static const char *const pg[] = {
      "CREATE TABLE \"ev\"\"il`; DROP TABLE x; --\" (\"i\"\"d\" INTEGER NOT NULL PRIMARY KEY, \"a`b\" TEXT)",
      "COMMENT ON COLUMN \"ev\"\"il`; DROP TABLE x; --\".\"a`b\" IS 'x''); DROP TABLE y; --'",
      "CREATE INDEX \"ix\"\"`\" ON \"ev\"\"il`; DROP TABLE x; --\" (\"a`b\")", NULL};
  check_create(m, SQ_DIALECT_POSTGRES, 0, pg);
  sq_model_free(m);
}

/* Models no dialect (or SQLite alone) can create are refused with
 * SQ_EUSAGE, and the output list is left empty. */
static void test_refused(void) {
  sq_sql_list l = {0};
  /* A BIGINT auto-increment key is SQLite's rowid alias: INTEGER. */
  sq_model *m = new_model("big", "bigs", 0);
  if (!m) return;
  sq_coldef d = col("id", SQ_T_BIGINT);
  d.primary_key = 1;
  d.auto_increment = 1;
  add(m, d);
  m = finish(m);
  if (m) {
    static const char *const lite[] = {"CREATE TABLE \"bigs\" (\"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT)",
                                       NULL};
    check_create(m, SQ_DIALECT_SQLITE, 0, lite);
    static const char *const my[] = {
        "CREATE TABLE `bigs` (`id` BIGINT NOT NULL AUTO_INCREMENT, PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT "
        "CHARSET=utf8mb4",
        NULL};
    check_create(m, SQ_DIALECT_MYSQL, 0, my);
    CHECK(sq_render_create(m, 99, 0, &l, &E) == SQ_EUSAGE);
    CHECK(l.n == 0 && l.sql == NULL);
    sq_model_free(m);
  }

  /* An infinite default can't be written in SQL: the model refuses it
   * already (DDL would too). */
  m = new_model("inf", "infs", 0);
  if (!m) return;
  d = col("x", SQ_T_DOUBLE);
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_float(1.0 / 0.0);
  CHECK(sq_model_add_column(m, &d, &E) != SQ_OK);
  sq_model_free(m);

  m = new_model("nul", "nuls", 0);
  if (!m) return;
  d = col("x", SQ_T_STRING);
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_text("a\0b", 3);
  add(m, d);
  m = finish(m);
  if (m) {
    CHECK(sq_render_create(m, SQ_DIALECT_SQLITE, 0, &l, &E) == SQ_EUSAGE);
    CHECK(strstr(E.msg, "NUL") != NULL);
    sq_model_free(m);
  }
  CHECK(sq_render_create(NULL, SQ_DIALECT_SQLITE, 0, &l, &E) == SQ_EUSAGE);
  CHECK(sq_render_drop(NULL, SQ_DIALECT_SQLITE, 0, &l, &E) == SQ_EUSAGE);
}

/* ------------------------------------------------------------------ */
/* Live alter plans                                                     */
/* ------------------------------------------------------------------ */

/* A sink keeping the first cell of the first row as text or integer. */
typedef struct one {
  int rows;
  int64_t i;
  char s[128];
  int is_null;
} one;

static int one_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  one *o = ud;
  if (o->rows++ || ncols < 1) return 0;
  o->is_null = v[0].type == SQ_VNULL;
  if (v[0].type == SQ_VINT) o->i = v[0].u.i;
  if (v[0].type == SQ_VBOOL) o->i = v[0].u.b;
  if (v[0].type == SQ_VTEXT || v[0].type == SQ_VBLOB) {
    size_t n = v[0].u.s.n < sizeof o->s - 1 ? v[0].u.s.n : sizeof o->s - 1;
    memcpy(o->s, v[0].u.s.p, n);
    o->s[n] = '\0';
    o->i = strtoll(o->s, NULL, 10);
  }
  return 0;
}

/* Runs SQL with ? placeholders (rewritten per driver); returns rc. */
static int run(sq_conn *c, const char *sql, const sq_value *p, int np, one *o) {
  sq_row_sink sink = {o, NULL, one_row};
  sq_result res;
  if (o) memset(o, 0, sizeof *o);
  int rc = sq_conn_exec(c, sql, strlen(sql), p, np, o ? &sink : NULL, &res, &E);
  if (rc) fprintf(stderr, "run failed: %s\n  %s\n", E.msg, sql);
  return rc;
}

/* Plans (with flags) and runs the statements, on SQLite and PostgreSQL
 * inside a transaction as the binding does (rolled back on failure);
 * returns how many ran, or -1 with E filled. */
static int plan_run_ex(sq_conn *c, const sq_model *m, int flags, int verbose) {
  sq_sql_list l = {0};
  int rc = sq_plan_alter_ex(c, m, flags, &l, &E);
  if (rc) {
    if (verbose >= 0) fprintf(stderr, "plan failed: %s\n", E.msg);
    return -1;
  }
  int n = l.n;
  int tx = n > 0 && sq_conn_driver(c)->dialect != SQ_DIALECT_MYSQL;
  sq_result res;
  if (tx && sq_conn_exec_native(c, "BEGIN", 5, NULL, 0, NULL, &res, &E)) return -1;
  for (int i = 0; i < l.n; i++) {
    if (verbose > 0 || getenv("VERBOSE")) printf("  %s\n", l.sql[i]);
    rc = sq_conn_exec_native(c, l.sql[i], strlen(l.sql[i]), NULL, 0, NULL, &res, &E);
    if (rc) {
      if (verbose >= 0) fprintf(stderr, "plan statement failed: %s\n  %s\n", E.msg, l.sql[i]);
      n = -1;
      break;
    }
  }
  if (tx) {
    sq_err e2;
    const char *end = n < 0 ? "ROLLBACK" : "COMMIT";
    if (sq_conn_exec_native(c, end, strlen(end), NULL, 0, NULL, &res, n < 0 ? &e2 : &E)) n = -1;
  }
  sq_sql_list_free(&l);
  return n;
}

static int plan_run(sq_conn *c, const sq_model *m, int verbose) { return plan_run_ex(c, m, 0, verbose); }

/* v1 of a live table: "legacy" will go, "level" turns NOT NULL, "name"
 * grows, "coins" becomes BIGINT. */
static sq_model *live_v1(const char *table) {
  sq_model *m = new_model("thing", table, 0);
  if (!m) return NULL;
  sq_coldef d = col("id", SQ_T_INTEGER);
  d.primary_key = 1;
  d.auto_increment = 1;
  d.allow_null = 0;
  add(m, d);
  d = col("name", SQ_T_STRING);
  d.length = 16;
  d.unique = "";
  add(m, d);
  d = col("coins", SQ_T_INTEGER);
  d.allow_null = 0;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_int(0);
  add(m, d);
  d = col("level", SQ_T_SMALLINT);
  add(m, d);
  d = col("legacy", SQ_T_TEXT);
  add(m, d);
  add(m, col("vip", SQ_T_SMALLINT)); /* becomes BOOLEAN */
  const char *ic[] = {"name", "coins"};
  sq_model_add_index(m, NULL, ic, 2, 0, &E);
  return finish(m);
}

static sq_model *live_v2(const char *table, int extra) {
  sq_model *m = new_model("thing", table, 1); /* timestamps: two NOT NULL now-columns */
  if (!m) return NULL;
  sq_coldef d = col("id", SQ_T_INTEGER);
  d.primary_key = 1;
  d.auto_increment = 1;
  d.allow_null = 0;
  d.comment = "The id.";
  add(m, d);
  d = col("name", SQ_T_STRING);
  d.length = 64;
  d.unique = "";
  add(m, d);
  d = col("coins", SQ_T_BIGINT);
  d.allow_null = 0;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_int(0);
  add(m, d);
  d = col("level", SQ_T_SMALLINT);
  d.allow_null = 0;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_int(1);
  d.unique = "thing_rank_level";
  add(m, d);
  d = col("rank", SQ_T_INTEGER);
  d.unique = "thing_rank_level"; /* a composite unique with level */
  add(m, d);
  d = col("flag", SQ_T_BOOLEAN);
  d.allow_null = 0;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_bool(0);
  add(m, d);
  add(m, col("vip", SQ_T_BOOLEAN));
  if (extra) add(m, col("bio", SQ_T_TEXT));
  const char *ic[] = {"name", "coins"};
  sq_model_add_index(m, NULL, ic, 2, 0, &E);
  const char *ic2[] = {"coins"};
  sq_model_add_index(m, NULL, ic2, 1, 0, &E);
  const char *ic3[] = {"rank", "flag"};
  sq_model_add_index(m, "thing_rank_flag", ic3, 2, 1, &E);
  return finish(m);
}

static int index_count(sq_conn *c, int dialect, const char *name) {
  const char *sql = dialect == SQ_DIALECT_SQLITE
                        ? "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
                    : dialect == SQ_DIALECT_MYSQL
                        ? "SELECT count(DISTINCT INDEX_NAME, TABLE_NAME) FROM information_schema.STATISTICS "
                          "WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = ?"
                        : "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?";
  sq_value p = sq_text(name, strlen(name));
  one o;
  if (run(c, sql, &p, 1, &o)) return -1;
  return (int)o.i;
}

/*
 * The whole alter flow on one connection. On SQLite the plan is run
 * inside a transaction, as the binding should; a user index on "level"
 * must survive the rebuild.
 */
static void live_flow(sq_conn *c, int dialect) {
  const char *T = "sqorm_ddl_things", *TS = "'2024-01-02 03:04:05'";
  char sql[256];
  int lite = dialect == SQ_DIALECT_SQLITE;
  printf("live %s\n", sq_dialect_name(dialect));
  sq_model *v1 = live_v1(T), *v2 = live_v2(T, 0), *v3 = live_v2(T, 1);
  if (!v1 || !v2 || !v3) goto out;
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);

  /* no table: the plan is the CREATE statements */
  sq_sql_list l = {0}, want = {0};
  CHECK(sq_plan_alter(c, v1, &l, &E) == SQ_OK);
  CHECK(sq_render_create(v1, dialect, 1, &want, &E) == SQ_OK);
  CHECK(l.n == want.n && l.n >= 1);
  for (int i = 0; i < l.n && i < want.n; i++) CHECK_STR(l.sql[i], want.sql[i]);
  sq_sql_list_free(&l);
  sq_sql_list_free(&want);
  CHECK(plan_run(c, v1, 0) >= 1);
  CHECK(plan_run(c, v1, 0) == 0); /* v1 matches itself */

  snprintf(sql, sizeof sql, "INSERT INTO %s (name, coins, level, legacy, vip) VALUES (?, ?, ?, ?, ?)", T);
  sq_value row[5] = {sq_text("alice", 5), sq_int(300), sq_int(7), sq_text("old", 3), sq_int(1)};
  CHECK(run(c, sql, row, 5, NULL) == 0);
  /* a row made and deleted: its id (2) must not come back after v2 */
  snprintf(sql, sizeof sql, "INSERT INTO %s (name) VALUES ('gone')", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  snprintf(sql, sizeof sql, "DELETE FROM %s WHERE name = 'gone'", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  if (lite) {
    snprintf(sql, sizeof sql, "CREATE INDEX user_level ON %s (level)", T);
    CHECK(run(c, sql, NULL, 0, NULL) == 0);
  }

  /* v2: the plan does what the dialect needs, runs, and leaves nothing
   * to do */
  static const char *const needles[][4] = {
      [SQ_DIALECT_SQLITE] = {"CREATE TABLE \"sqorm_ddl_things__sqorm_new\"", "DROP TABLE \"sqorm_ddl_things\"",
                             "DELETE FROM sqlite_sequence WHERE name = 'sqorm_ddl_things__sqorm_new'", NULL},
      /* MySQL: one ALTER TABLE, applied whole or not at all */
      [SQ_DIALECT_MYSQL] = {"ALTER TABLE `sqorm_ddl_things` ",
                            ", MODIFY COLUMN `coins` BIGINT NOT NULL DEFAULT 0,",
                            ", ADD CONSTRAINT `thing_rank_level` UNIQUE (`level`, `rank`)", NULL},
      [SQ_DIALECT_POSTGRES] = {"ALTER TABLE \"sqorm_ddl_things\" ALTER COLUMN \"vip\" TYPE BOOLEAN USING "
                               "\"vip\"::INTEGER::BOOLEAN",
                               "ALTER TABLE \"sqorm_ddl_things\" ALTER COLUMN \"level\" SET DEFAULT 1",
                               "ALTER TABLE \"sqorm_ddl_things\" ALTER COLUMN \"level\" SET NOT NULL", NULL},
  };
  /* "legacy" holds data: not dropped without SQ_ALTER_DROP */
  CHECK(sq_plan_alter(c, v2, &l, &E) == SQ_EUSAGE && l.n == 0);
  CHECK(strstr(E.msg, "\"legacy\"") != NULL && strstr(E.msg, "drop = true") != NULL);
  CHECK(sq_plan_alter_ex(c, v2, SQ_ALTER_DROP, &l, &E) == SQ_OK);
  for (int k = 0; needles[dialect][k]; k++) {
    int found = 0;
    for (int i = 0; i < l.n; i++)
      if (strstr(l.sql[i], needles[dialect][k])) found = 1;
    CHECK(found);
    if (!found) fprintf(stderr, "plan lacks: %s\n", needles[dialect][k]);
  }
  if (dialect == SQ_DIALECT_MYSQL) CHECK(l.n >= 1 && strstr(l.sql[0], "DROP COLUMN `legacy`") != NULL);
  sq_sql_list_free(&l);
  int n = plan_run_ex(c, v2, SQ_ALTER_DROP, 1);
  CHECK(n > 0);
  CHECK(plan_run(c, v2, 1) == 0);

  one o;
  snprintf(sql, sizeof sql, "SELECT name FROM %s WHERE coins = ?", T);
  sq_value p = sq_int(300);
  CHECK(run(c, sql, &p, 1, &o) == 0 && o.rows == 1);
  CHECK_STR(o.s, "alice");
  snprintf(sql, sizeof sql, "SELECT level FROM %s", T);
  CHECK(run(c, sql, NULL, 0, &o) == 0 && o.rows == 1 && o.i == 7);
  snprintf(sql, sizeof sql, "SELECT vip FROM %s", T);
  CHECK(run(c, sql, NULL, 0, &o) == 0 && o.rows == 1 && o.i == 1);
  snprintf(sql, sizeof sql, "SELECT created_at FROM %s", T);
  CHECK(run(c, sql, NULL, 0, &o) == 0 && o.rows == 1 && !o.is_null);
  if (o.rows) printf("  created_at filled with %s\n", o.s);
  snprintf(sql, sizeof sql, "SELECT legacy FROM %s", T);
  printf("  (an error about \"legacy\" is expected next)\n");
  CHECK(run(c, sql, NULL, 0, &o) != 0); /* dropped */
  /* the grown name takes 64 characters; coins takes a BIGINT */
  snprintf(sql, sizeof sql, "INSERT INTO %s (name, coins, created_at, updated_at) VALUES (?, ?, %s, %s)", T, TS,
           TS);
  char longname[65];
  memset(longname, 'x', 64);
  longname[64] = '\0';
  sq_value r2[2] = {sq_text(longname, 64), sq_int(INT64_C(5000000000))};
  CHECK(run(c, sql, r2, 2, NULL) == 0);
  snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE coins = ?", T);
  p = sq_int(INT64_C(5000000000));
  CHECK(run(c, sql, &p, 1, &o) == 0 && o.rows == 1 && o.i == 3);
  /* a NULL level is now refused */
  snprintf(sql, sizeof sql, "INSERT INTO %s (name, level, created_at, updated_at) VALUES ('nolevel', NULL, %s, %s)",
           T, TS, TS);
  printf("  (a NOT NULL error is expected next)\n");
  CHECK(run(c, sql, NULL, 0, NULL) != 0);

  char ix[96];
  snprintf(ix, sizeof ix, "%s_coins", T);
  CHECK(index_count(c, dialect, ix) == 1);
  snprintf(ix, sizeof ix, "%s_name_coins", T);
  CHECK(index_count(c, dialect, ix) == 1);
  CHECK(index_count(c, dialect, "thing_rank_flag") == 1);
  if (lite) CHECK(index_count(c, dialect, "user_level") == 1);

  /* v3 only adds a nullable column: one ADD COLUMN, no index again */
  CHECK(sq_plan_alter(c, v3, &l, &E) == SQ_OK);
  CHECK(l.n == 1);
  if (l.n >= 1) CHECK(strstr(l.sql[0], "ADD COLUMN") != NULL && strstr(l.sql[0], "bio") != NULL);
  sq_sql_list_free(&l);
  CHECK(plan_run(c, v3, 1) == 1);
  CHECK(plan_run(c, v3, 0) == 0);
  CHECK(plan_run(c, v3, 0) == 0);
  snprintf(ix, sizeof ix, "%s_coins", T);
  CHECK(index_count(c, dialect, ix) == 1);

  /* back to v2: "bio" is dropped again, nothing else */
  CHECK(sq_plan_alter(c, v2, &l, &E) == SQ_OK);
  if (!lite) {
    CHECK(l.n == 1);
    if (l.n >= 1) CHECK(strstr(l.sql[0], "DROP COLUMN") != NULL);
  }
  sq_sql_list_free(&l);
  CHECK(plan_run(c, v2, 0) >= 1); /* "bio" is empty: dropped without the flag */
  CHECK(plan_run(c, v2, 0) == 0);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", T);
  CHECK(run(c, sql, NULL, 0, &o) == 0 && o.i == 2);

  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
out:
  sq_model_free(v1);
  sq_model_free(v2);
  sq_model_free(v3);
}

static int64_t count_where(sq_conn *c, const char *T, const char *where);

/* Defaults of every literal kind read back as what the model says, so a
 * table made from this model plans nothing. */
static sq_model *defaults_model(void) {
  sq_model *m = new_model("dflt", "sqorm_ddl_defaults", 0);
  if (!m) return NULL;
  sq_coldef d = col("id", SQ_T_INTEGER);
  d.primary_key = 1;
  d.allow_null = 0;
  add(m, d);
  static const struct { const char *name; int type; sq_value v; } defs[] = {
      {"neg", SQ_T_INTEGER, {.type = SQ_VINT, .u.i = -5}},
      {"big", SQ_T_BIGINT, {.type = SQ_VINT, .u.i = INT64_C(9007199254740993)}},
      {"tiny", SQ_T_DOUBLE, {.type = SQ_VFLOAT, .u.f = 1e-7}},
      {"off", SQ_T_BOOLEAN, {.type = SQ_VBOOL, .u.b = 0}},
      {"day", SQ_T_DATE, {.type = SQ_VTEXT, .u.s = {"2024-02-29", 10}}},
      {"at", SQ_T_DATETIME, {.type = SQ_VTEXT, .u.s = {"2024-02-29 12:34:56", 19}}},
      {"lines", SQ_T_STRING, {.type = SQ_VTEXT, .u.s = {"a\nb\t'c'", 7}}},
      {"empty", SQ_T_STRING, {.type = SQ_VTEXT, .u.s = {"", 0}}},
      {"word", SQ_T_STRING, {.type = SQ_VTEXT, .u.s = {"NULL", 4}}},
      {"bytes", SQ_T_BLOB, {.type = SQ_VBLOB, .u.s = {"\x00\xff\x41", 3}}},
      {"uid", SQ_T_UUID, {.type = SQ_VTEXT, .u.s = {"0f8e3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6", 36}}},
  };
  for (size_t i = 0; i < sizeof defs / sizeof *defs; i++) {
    d = col(defs[i].name, defs[i].type);
    d.default_kind = SQ_DEFAULT_VALUE;
    d.default_value = defs[i].v;
    add(m, d);
  }
  return finish(m);
}

/* auto_increment turned on and off on a live key (MySQL's AUTO_INCREMENT,
 * PostgreSQL's identity, whose sequence starts past the rows there). */
static void live_autoinc(sq_conn *c) {
  const char *T = "sqorm_ddl_auto";
  char sql[160];
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  sq_model *m[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    m[k] = new_model("auto", T, 0);
    if (!m[k]) goto out;
    sq_coldef d = col("id", SQ_T_INTEGER);
    d.primary_key = 1;
    d.allow_null = 0;
    d.auto_increment = k;
    add(m[k], d);
    add(m[k], col("v", SQ_T_INTEGER));
    if (!(m[k] = finish(m[k]))) goto out;
  }
  CHECK(plan_run(c, m[0], 0) >= 1);
  snprintf(sql, sizeof sql, "INSERT INTO %s (id, v) VALUES (1, 1), (5, 5)", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(plan_run(c, m[1], 0) >= 1);
  CHECK(plan_run(c, m[1], 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (v) VALUES (6)", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(count_where(c, T, "id = 6 AND v = 6") == 1);
  CHECK(plan_run(c, m[0], 0) >= 1);
  CHECK(plan_run(c, m[0], 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (v) VALUES (7)", T);
  CHECK(sq_conn_exec(c, sql, strlen(sql), NULL, 0, NULL, NULL, &E) != SQ_OK); /* no id now */
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
out:
  sq_model_free(m[0]);
  sq_model_free(m[1]);
}

/* The keys model of live_keys: code STRING(16) primary key, n INTEGER,
 * tag STRING(16), and by flag: note TEXT, a unique tag, a composite
 * unique (n, tag), a primary key over (code, n), a NOT NULL column
 * without default; dflt >= 0 is n's default. */
enum { K_NOTE = 1, K_UNIQUE_TAG = 2, K_GROUP = 4, K_PK2 = 8, K_REQ = 16 };

static sq_model *keys_model(const char *table, int flags, int dflt) {
  sq_model *m = new_model("k", table, 0);
  if (!m) return NULL;
  sq_coldef d = col("code", SQ_T_STRING);
  d.length = 16;
  d.primary_key = 1;
  d.allow_null = 0;
  add(m, d);
  d = col("n", SQ_T_INTEGER);
  if (flags & K_PK2) d.primary_key = 1, d.allow_null = 0;
  if (dflt >= 0) d.default_kind = SQ_DEFAULT_VALUE, d.default_value = sq_int(dflt);
  if (flags & K_GROUP) d.unique = "k_n_tag";
  add(m, d);
  d = col("tag", SQ_T_STRING);
  d.length = 16;
  if (flags & K_UNIQUE_TAG) d.unique = "";
  if (flags & K_GROUP) d.unique = "k_n_tag";
  add(m, d);
  if (flags & K_NOTE) add(m, col("note", SQ_T_TEXT));
  if (flags & K_REQ) {
    d = col("req", SQ_T_INTEGER);
    d.allow_null = 0;
    add(m, d);
  }
  return finish(m);
}

/* Plans keys_model(flags, dflt) and runs it: the number of statements,
 * or -1 with E filled (quietly). */
static int keys_run(sq_conn *c, const char *T, int flags, int dflt, int alter_flags) {
  sq_model *m = keys_model(T, flags, dflt);
  if (!m) return -1;
  int n = plan_run_ex(c, m, alter_flags, getenv("VERBOSE") ? 1 : -1);
  sq_model_free(m);
  return n;
}

static int64_t count_where(sq_conn *c, const char *T, const char *where) {
  char sql[256];
  one o;
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s", T, where);
  if (run(c, sql, NULL, 0, &o)) return -1;
  return o.i;
}

/* No "<t>__sqorm_new" left behind by a SQLite rebuild (0 elsewhere). */
static int leftovers(sq_conn *c, int dialect) {
  if (dialect != SQ_DIALECT_SQLITE) return 0;
  one o;
  if (run(c, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%\\_\\_sqorm\\_new' ESCAPE '\\'", NULL, 0, &o))
    return -1;
  return (int)o.i;
}

/*
 * What sync{ alter = true } sees besides columns: unique keys added
 * (refused loudly over duplicates, leaving the table as it was), removed
 * and composite; a changed default; a changed primary key (and back,
 * refused over duplicates); a column holding data kept unless
 * SQ_ALTER_DROP, dropped when empty; a failed SQLite rebuild leaves no
 * temporary table. Each change is planned once: the next plan is empty.
 */
static void live_keys(sq_conn *c, int dialect) {
  const char *T = "sqorm_ddl_keys";
  char sql[256];
  int pg = dialect == SQ_DIALECT_POSTGRES, my = dialect == SQ_DIALECT_MYSQL;
  printf("live keys %s\n", sq_dialect_name(dialect));
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(keys_run(c, T, K_NOTE, 0, 0) >= 1);
  CHECK(keys_run(c, T, K_NOTE, 0, 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (code, n, tag, note) VALUES ('a', 1, 'x', 'hello'), ('b', 2, 'x', NULL)", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);

  /* a unique tag over duplicates: the server refuses, nothing changes */
  CHECK(keys_run(c, T, K_NOTE | K_UNIQUE_TAG, 0, 0) == -1);
  CHECK(E.kind == SQ_EUNIQUE);
  if (E.kind != SQ_EUNIQUE) fprintf(stderr, "  kind %d: %s\n", E.kind, E.msg);
  CHECK(leftovers(c, dialect) == 0);
  CHECK(count_where(c, T, "1 = 1") == 2);
  CHECK(keys_run(c, T, K_NOTE, 0, 0) == 0);

  /* without duplicates it is added once; duplicates are refused after */
  snprintf(sql, sizeof sql, "UPDATE %s SET tag = 'y' WHERE code = 'b'", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(keys_run(c, T, K_NOTE | K_UNIQUE_TAG, 0, 0) >= 1);
  CHECK(keys_run(c, T, K_NOTE | K_UNIQUE_TAG, 0, 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (code, n, tag) VALUES ('c', 3, 'x')", T);
  CHECK(sq_conn_exec(c, sql, strlen(sql), NULL, 0, NULL, NULL, &E) == SQ_EUNIQUE);

  /* removed from the model: the constraint goes, duplicates are fine */
  CHECK(keys_run(c, T, K_NOTE, 0, 0) >= 1);
  CHECK(keys_run(c, T, K_NOTE, 0, 0) == 0);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(count_where(c, T, "tag = 'x'") == 2);
  snprintf(sql, sizeof sql, "DELETE FROM %s WHERE code = 'c'", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);

  /* a composite unique (n, tag) */
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 0, 0) >= 1);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 0, 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (code, n, tag) VALUES ('d', 1, 'x')", T);
  CHECK(sq_conn_exec(c, sql, strlen(sql), NULL, 0, NULL, NULL, &E) == SQ_EUNIQUE);
  snprintf(sql, sizeof sql, "INSERT INTO %s (code, n, tag) VALUES ('d', 5, 'x')", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  snprintf(sql, sizeof sql, "DELETE FROM %s WHERE code = 'd'", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);

  /* a changed default */
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 7, 0) >= 1);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 7, 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (code, tag) VALUES ('e', 'e')", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(count_where(c, T, "code = 'e' AND n = 7") == 1);
  snprintf(sql, sizeof sql, "DELETE FROM %s WHERE code = 'e'", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, -1, 0) >= 1); /* and none at all */
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, -1, 0) == 0);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 7, 0) >= 1);

  /* a primary key over (code, n), and back: refused over duplicates */
  CHECK(keys_run(c, T, K_NOTE | K_GROUP | K_PK2, 7, 0) >= 1);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP | K_PK2, 7, 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (code, n, tag) VALUES ('a', 9, 'z')", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 7, 0) == -1);
  CHECK(E.kind == SQ_EUNIQUE);
  if (E.kind != SQ_EUNIQUE) fprintf(stderr, "  kind %d: %s\n", E.kind, E.msg);
  CHECK(leftovers(c, dialect) == 0);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP | K_PK2, 7, 0) == 0);
  snprintf(sql, sizeof sql, "DELETE FROM %s WHERE code = 'a' AND n = 9", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 7, 0) >= 1);
  CHECK(keys_run(c, T, K_NOTE | K_GROUP, 7, 0) == 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s (code, n, tag) VALUES ('a', 9, 'z')", T);
  CHECK(sq_conn_exec(c, sql, strlen(sql), NULL, 0, NULL, NULL, &E) == SQ_EUNIQUE);

  /* a new NOT NULL column without default over existing rows: SQLite's
   * rebuild and PostgreSQL refuse it and leave everything as it was
   * (MySQL fills the implicit default) */
  if (!my) {
    CHECK(keys_run(c, T, K_NOTE | K_GROUP | K_REQ, 7, 0) == -1);
    CHECK(E.kind == SQ_ECONSTRAINT);
    if (E.kind != SQ_ECONSTRAINT) fprintf(stderr, "  kind %d: %s\n", E.kind, E.msg);
    CHECK(leftovers(c, dialect) == 0);
    CHECK(keys_run(c, T, K_NOTE | K_GROUP, 7, 0) == 0);
    CHECK(count_where(c, T, "note = 'hello'") == 1);
  }

  /* "note" holds data: refused, and nothing planned */
  sq_model *m = keys_model(T, K_GROUP, 7);
  sq_sql_list l = {0};
  if (m) {
    CHECK(sq_plan_alter(c, m, &l, &E) == SQ_EUSAGE && l.n == 0);
    CHECK(strstr(E.msg, "\"note\"") && strstr(E.msg, "drop = true"));
    sq_sql_list_free(&l);
  }
  sq_model_free(m);
  /* empty (only NULLs): dropped without the flag */
  snprintf(sql, sizeof sql, "UPDATE %s SET note = NULL", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(keys_run(c, T, K_GROUP, 7, 0) >= 1);
  CHECK(keys_run(c, T, K_GROUP, 7, 0) == 0);
  /* back, with data, and dropped with SQ_ALTER_DROP */
  CHECK(keys_run(c, T, K_GROUP | K_NOTE, 7, 0) >= 1);
  snprintf(sql, sizeof sql, "UPDATE %s SET note = 'kept?'", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
  CHECK(keys_run(c, T, K_GROUP, 7, 0) == -1 && E.kind == SQ_EUSAGE);
  CHECK(keys_run(c, T, K_GROUP, 7, SQ_ALTER_DROP) >= 1);
  CHECK(keys_run(c, T, K_GROUP, 7, 0) == 0);
  CHECK(count_where(c, T, "1 = 1") == 2);
  (void)pg;

  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", T);
  CHECK(run(c, sql, NULL, 0, NULL) == 0);
}

/* A table made by sq_render_create reads back as matching its model:
 * every type, key, unique and index survives the round trip, so the
 * plan is empty. The hostile model's SQL-laden names run harmlessly. */
static void roundtrip(sq_conn *c, int dialect, sq_model *m) {
  if (!m) return;
  sq_sql_list l = {0}, drop = {0};
  CHECK(sq_render_drop(m, dialect, 1, &drop, &E) == SQ_OK);
  for (int i = 0; i < drop.n; i++)
    CHECK(sq_conn_exec_native(c, drop.sql[i], strlen(drop.sql[i]), NULL, 0, NULL, NULL, &E) == SQ_OK);
  if (sq_render_create(m, dialect, 1, &l, &E) != SQ_OK) {
    fprintf(stderr, "%s: %s\n", sq_model_table(m), E.msg);
    check_failures++;
  }
  for (int i = 0; i < l.n; i++) {
    int rc = sq_conn_exec_native(c, l.sql[i], strlen(l.sql[i]), NULL, 0, NULL, NULL, &E);
    CHECK(rc == SQ_OK);
    if (rc) fprintf(stderr, "%s\n  %s\n", E.msg, l.sql[i]);
  }
  sq_sql_list_free(&l);
  if (sq_plan_alter(c, m, &l, &E) != SQ_OK) {
    fprintf(stderr, "%s: %s\n", sq_model_table(m), E.msg);
    check_failures++;
  }
  CHECK(l.n == 0);
  for (int i = 0; i < l.n; i++) fprintf(stderr, "%s: unexpected: %s\n", sq_model_table(m), l.sql[i]);
  sq_sql_list_free(&l);
  if (!strcmp(sq_model_table(m), "memberships")) {
    /* the literal defaults read back exactly: quotes and backslashes */
    one o;
    CHECK(run(c, "INSERT INTO memberships (user_id, group_id) VALUES (1, 2)", NULL, 0, NULL) == 0);
    CHECK(run(c, "SELECT role FROM memberships", NULL, 0, &o) == 0 && o.rows == 1);
    CHECK_STR(o.s, dialect == SQ_DIALECT_POSTGRES ? "it's \\ ok       " : "it's \\ ok"); /* CHAR pads on pg */
    CHECK(run(c, "SELECT bio FROM memberships", NULL, 0, &o) == 0);
    CHECK_STR(o.s, "n/a");
    CHECK(run(c, "SELECT price FROM memberships", NULL, 0, &o) == 0);
    CHECK_STR(o.s, "1.50"); /* SQLite too: DECIMAL is stored as text there */
    CHECK(run(c, "SELECT active FROM memberships", NULL, 0, &o) == 0 && o.i == 1);
  }
  for (int i = 0; i < drop.n; i++)
    CHECK(sq_conn_exec_native(c, drop.sql[i], strlen(drop.sql[i]), NULL, 0, NULL, NULL, &E) == SQ_OK);
  sq_sql_list_free(&drop);
  sq_model_free(m);
}

/* The exact plan for a changed table, per dialect, checked on SQLite
 * where it needs no server: a rebuild. */
static void test_sqlite_rebuild_text(sq_conn *c) {
  sq_model *v1 = new_model("t", "t", 0), *v2 = new_model("t", "t", 0);
  if (!v1 || !v2) {
    sq_model_free(v1);
    sq_model_free(v2);
    return;
  }
  sq_coldef d = col("id", SQ_T_INTEGER);
  d.primary_key = 1;
  d.allow_null = 0;
  add(v1, d);
  add(v2, d);
  add(v1, col("a", SQ_T_INTEGER));
  add(v1, col("gone", SQ_T_INTEGER));
  add(v2, col("a", SQ_T_TEXT));
  d = col("b", SQ_T_STRING);
  d.unique = "";
  add(v2, d);
  if (!finish(v1) || !finish(v2)) return;
  CHECK(plan_run(c, v1, 0) == 1);
  sq_sql_list l = {0};
  CHECK(sq_plan_alter(c, v2, &l, &E) == SQ_OK);
  static const char *const want[] = {
      "DROP TABLE IF EXISTS \"t__sqorm_new\"",
      "CREATE TABLE \"t__sqorm_new\" (\"id\" INTEGER NOT NULL PRIMARY KEY, \"a\" TEXT, \"b\" VARCHAR(255) UNIQUE)",
      "INSERT INTO \"t__sqorm_new\" (\"id\", \"a\") SELECT \"id\", \"a\" FROM \"t\"",
      "DROP TABLE \"t\"",
      "ALTER TABLE \"t__sqorm_new\" RENAME TO \"t\"",
      NULL};
  expect_list("sqlite rebuild", SQ_OK, &l, want);
  sq_sql_list_free(&l);
  CHECK(run(c, "DROP TABLE t", NULL, 0, NULL) == 0);
  sq_model_free(v1);
  sq_model_free(v2);
}

/* A table written by hand in other spellings (lower case, INT, no NOT
 * NULL on the key) already matches a model of the same shape. */
static void test_sqlite_foreign(sq_conn *c) {
  CHECK(run(c, "CREATE TABLE hand (id integer primary key autoincrement, name varchar( 16 ), "
               "n int not null default 0, ok boolean, at datetime, price numeric(8, 2), big int8)",
            NULL, 0, NULL) == 0);
  sq_model *m = new_model("hand", "hand", 0);
  if (!m) return;
  sq_coldef d = col("id", SQ_T_INTEGER);
  d.primary_key = 1;
  d.auto_increment = 1;
  add(m, d);
  d = col("name", SQ_T_STRING);
  d.length = 16;
  add(m, d);
  d = col("n", SQ_T_INTEGER);
  d.allow_null = 0;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_int(0);
  add(m, d);
  add(m, col("ok", SQ_T_BOOLEAN));
  add(m, col("at", SQ_T_DATETIME));
  d = col("price", SQ_T_DECIMAL);
  d.precision = 8;
  d.scale = 2;
  add(m, d);
  add(m, col("big", SQ_T_BIGINT));
  if (!(m = finish(m))) return;
  sq_sql_list l = {0};
  CHECK(sq_plan_alter(c, m, &l, &E) == SQ_OK);
  CHECK(l.n == 0);
  for (int i = 0; i < l.n; i++) fprintf(stderr, "hand: unexpected: %s\n", l.sql[i]);
  sq_sql_list_free(&l);
  sq_model_free(m);
  CHECK(run(c, "DROP TABLE hand", NULL, 0, NULL) == 0);
}

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

/* Opens a pool for a dialect from SQORM_TEST_<P>_*; NULL when unset. */
static sq_pool *open_pool(int dialect, const char *P) {
  char k[64];
  sq_config cfg;
  sq_config_init(&cfg);
  sq_pool *pool = NULL;
  int rc;
  if (dialect == SQ_DIALECT_SQLITE) {
    rc = sq_config_parse_url(&cfg, "sqlite::memory:", &E);
  } else {
    static const char *const keys[][2] = {
        {"HOST", "host"}, {"PORT", "port"}, {"USER", "user"}, {"PASSWORD", "password"}, {"DB", "database"}};
    snprintf(k, sizeof k, "SQORM_TEST_%s_HOST", P);
    if (!env(k)) {
      sq_config_free(&cfg);
      return NULL;
    }
    rc = sq_config_set(&cfg, "dialect", dialect == SQ_DIALECT_MYSQL ? "mysql" : "postgres", &E);
    for (int i = 0; !rc && i < 5; i++) {
      snprintf(k, sizeof k, "SQORM_TEST_%s_%s", P, keys[i][0]);
      if (env(k)) rc = sq_config_set(&cfg, keys[i][1], env(k), &E);
    }
  }
  if (!rc) rc = sq_config_set(&cfg, "pool.max", "1", &E);
  if (!rc) rc = sq_config_finish(&cfg, &E);
  if (!rc) rc = sq_pool_open(&cfg, &pool, &E);
  sq_config_free(&cfg);
  if (rc) {
    fprintf(stderr, "pool for %s: %s\n", sq_dialect_name(dialect), E.msg);
    check_failures++;
    return NULL;
  }
  return pool;
}

static void test_live(int dialect, const char *P) {
  sq_pool *pool = open_pool(dialect, P);
  if (!pool) {
    const char *req = getenv("SQORM_TEST_REQUIRE_SERVERS");
    printf("live %s: skipped (SQORM_TEST_%s_* not set)\n", sq_dialect_name(dialect), P);
    if (req && !strcmp(req, "1")) {
      fprintf(stderr, "SQORM_TEST_REQUIRE_SERVERS=1 but SQORM_TEST_%s_* are not set\n", P);
      check_failures++;
    }
    return;
  }
  sq_conn *c = NULL;
  if (sq_pool_acquire(pool, 10, &c, &E) != SQ_OK) {
    fprintf(stderr, "acquire %s: %s\n", sq_dialect_name(dialect), E.msg);
    check_failures++;
  } else {
    roundtrip(c, dialect, players_model());
    roundtrip(c, dialect, member_model());
    roundtrip(c, dialect, hostile_model());
    live_flow(c, dialect);
    live_keys(c, dialect);
    roundtrip(c, dialect, defaults_model());
    if (dialect != SQ_DIALECT_SQLITE) live_autoinc(c);
    if (dialect == SQ_DIALECT_SQLITE) {
      test_sqlite_rebuild_text(c);
      test_sqlite_foreign(c);
    }
    sq_pool_release(pool, c);
  }
  sq_pool_close(pool);
}

int main(void) {
  if (sq_global_init(&E) != SQ_OK) {
    fprintf(stderr, "global init: %s\n", E.msg);
    return 1;
  }
  test_players();
  test_members();
  test_hostile();
  test_refused();
  test_live(SQ_DIALECT_SQLITE, "SQLITE");
  test_live(SQ_DIALECT_MYSQL, "MYSQL");
  test_live(SQ_DIALECT_POSTGRES, "PG");
  return CHECK_DONE();
}
