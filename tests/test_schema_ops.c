/*
 * test_schema_ops.c - schema operations (sqorm.h "Schema operations").
 *
 * Without a database: the exact SQL of every op per dialect, MySQL's one
 * ALTER TABLE, hostile names and values, refused ops. Live, on SQLite
 * (":memory:") always and on MariaDB and PostgreSQL when SQORM_TEST_* are
 * set (a failure under SQORM_TEST_REQUIRE_SERVERS=1 when they aren't):
 * every op applied and the live schema checked; SQLite's change_column
 * keeping rows, indexes, triggers, views, CHECKs and foreign keys in both
 * directions; a failing op inside a transaction leaving nothing on
 * PostgreSQL and SQLite; sync's difference as ops, applied until empty.
 */
#include "sqorm.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sq_err E;

enum { LITE = SQ_DIALECT_SQLITE, MY = SQ_DIALECT_MYSQL, PG = SQ_DIALECT_POSTGRES };

/* Compares a rendered list with expect (NULL-terminated). */
static void expect_list(int line, int rc, const sq_sql_list *l, const char *const *expect) {
  int n = 0;
  while (expect[n]) n++;
  check_count++;
  if (rc != SQ_OK) {
    fprintf(stderr, "line %d: rc %d: %s\n", line, rc, E.msg);
    check_failures++;
    return;
  }
  if (l->n != n) {
    fprintf(stderr, "line %d: %d statements, expected %d\n", line, l->n, n);
    check_failures++;
  }
  for (int i = 0; i < l->n && i < n; i++)
    if (strcmp(l->sql[i], expect[i])) {
      fprintf(stderr, "line %d: statement %d:\n  got  %s\n  want %s\n", line, i, l->sql[i], expect[i]);
      check_failures++;
    }
  for (int i = n; i < l->n; i++) fprintf(stderr, "line %d: extra: %s\n", line, l->sql[i]);
}

/* Renders ops for a dialect and compares. */
static void expect_ops(int line, const sq_sop *ops, int n, int dialect, int flags, const char *const *expect) {
  sq_sql_list l = {0};
  int rc = sq_schema_render(ops, n, dialect, flags, &l, &E);
  expect_list(line, rc, &l, expect);
  sq_sql_list_free(&l);
}
#define EXPECT(ops, n, d, flags, ...)                                                                               \
  do {                                                                                                              \
    static const char *const want_[] = {__VA_ARGS__, NULL};                                                         \
    expect_ops(__LINE__, ops, n, d, flags, want_);                                                                  \
  } while (0)

/* Renders and expects a refusal whose message holds needle. */
static void refused(int line, const sq_sop *ops, int n, int dialect, const char *needle) {
  sq_sql_list l = {0};
  int rc = sq_schema_render(ops, n, dialect, 0, &l, &E);
  check_count++;
  if (rc != SQ_EUSAGE || l.n != 0 || !strstr(E.msg, needle)) {
    fprintf(stderr, "line %d: expected SQ_EUSAGE with \"%s\", got rc %d (%d statements): %s\n", line, needle, rc, l.n,
            E.msg);
    check_failures++;
  }
  sq_sql_list_free(&l);
}
#define REFUSED(ops, n, d, needle) refused(__LINE__, ops, n, d, needle)

/* ------------------------------------------------------------------ */
/* The guilds table of DESIGN.md's migration example, plus more         */
/* ------------------------------------------------------------------ */

static const char *const RARITY[] = {"common", "rare", "it's"};

static sq_scol G_COLS[6];
static const char *const IX_NAME_COLS[] = {"name", "level"};
static sq_sindex G_IX[1];
static const char *const FK_COLS[] = {"leader_id"};
static const char *const FK_REF[] = {"id"};
static sq_sfk G_FK[1];

static void guilds_op(sq_sop *op) {
  sq_scol_init(&G_COLS[0], "id", SQ_T_INTEGER);
  G_COLS[0].primary_key = 1;
  G_COLS[0].auto_increment = 1;
  G_COLS[0].allow_null = 0;
  sq_scol_init(&G_COLS[1], "name", SQ_T_STRING);
  G_COLS[1].length = 32;
  G_COLS[1].allow_null = 0;
  G_COLS[1].unique = "";
  sq_scol_init(&G_COLS[2], "level", SQ_T_SMALLINT);
  G_COLS[2].default_kind = SQ_DEFAULT_VALUE;
  G_COLS[2].default_value = sq_int(1);
  G_COLS[2].comment = "the guild's level";
  sq_scol_init(&G_COLS[3], "rarity", SQ_T_STRING);
  G_COLS[3].enum_values = RARITY;
  G_COLS[3].nenum_values = 3;
  G_COLS[3].default_kind = SQ_DEFAULT_VALUE;
  G_COLS[3].default_value = sq_text("common", 6);
  sq_scol_init(&G_COLS[4], "leader_id", SQ_T_INTEGER);
  sq_scol_init(&G_COLS[5], "motto", SQ_T_TEXT);
  G_IX[0].name = NULL;
  G_IX[0].cols = IX_NAME_COLS;
  G_IX[0].ncols = 2;
  G_IX[0].unique = 0;
  memset(G_FK, 0, sizeof G_FK);
  G_FK[0].cols = FK_COLS;
  G_FK[0].ncols = 1;
  G_FK[0].ref_table = "players";
  G_FK[0].ref_cols = FK_REF;
  G_FK[0].nref_cols = 1;
  G_FK[0].on_delete = SQ_FK_SET_NULL;
  G_FK[0].deferred = 1;
  sq_sop_init(op, SQ_SOP_CREATE_TABLE, "guilds");
  op->cols = G_COLS;
  op->ncols = 6;
  op->indexes = G_IX;
  op->nindexes = 1;
  op->fks = G_FK;
  op->nfks = 1;
}

static void test_create_drop_rename(void) {
  sq_sop op;
  guilds_op(&op);
  EXPECT(&op, 1, LITE, 0,
         "CREATE TABLE \"guilds\" (\"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, \"name\" VARCHAR(32) NOT NULL "
         "UNIQUE, \"level\" SMALLINT DEFAULT 1, \"rarity\" TEXT DEFAULT 'common' CHECK (\"rarity\" IN ('common', "
         "'rare', 'it''s')), \"leader_id\" INTEGER, \"motto\" TEXT, CONSTRAINT \"guilds_leader_id_fkey\" FOREIGN KEY "
         "(\"leader_id\") REFERENCES \"players\" (\"id\") ON DELETE SET NULL)",
         "CREATE INDEX \"guilds_name_level\" ON \"guilds\" (\"name\", \"level\")");
  EXPECT(&op, 1, MY, 0,
         "CREATE TABLE `guilds` (`id` INT NOT NULL AUTO_INCREMENT, `name` VARCHAR(32) NOT NULL UNIQUE, `level` "
         "SMALLINT DEFAULT 1 COMMENT 'the guild''s level', `rarity` ENUM('common', 'rare', 'it''s') DEFAULT 'common', "
         "`leader_id` INT, `motto` TEXT, PRIMARY KEY (`id`), INDEX `guilds_name_level` (`name`, `level`)) "
         "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
  op.if_exists = 1;
  EXPECT(&op, 1, PG, 0,
         "DO $sq$ BEGIN CREATE TYPE \"enum_guilds_rarity\" AS ENUM ('common', 'rare', 'it''s'); EXCEPTION WHEN "
         "duplicate_object THEN NULL; END $sq$",
         "CREATE TABLE IF NOT EXISTS \"guilds\" (\"id\" INTEGER GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, "
         "\"name\" VARCHAR(32) NOT NULL UNIQUE, \"level\" SMALLINT DEFAULT 1, \"rarity\" \"enum_guilds_rarity\" DEFAULT "
         "'common', \"leader_id\" INTEGER, \"motto\" TEXT)",
         "COMMENT ON COLUMN \"guilds\".\"level\" IS 'the guild''s level'",
         "CREATE INDEX IF NOT EXISTS \"guilds_name_level\" ON \"guilds\" (\"name\", \"level\")");
  /* a key that isn't deferred goes inline everywhere; a column's references too */
  G_FK[0].deferred = 0;
  G_FK[0].on_update = SQ_FK_CASCADE;
  op.if_exists = 0;
  op.nindexes = 0;
  op.ncols = 2;
  G_COLS[1].unique = NULL;
  sq_sfk ref = {0};
  ref.ref_table = "teams";
  G_COLS[1].references = &ref;
  EXPECT(&op, 1, PG, 0,
         "CREATE TABLE \"guilds\" (\"id\" INTEGER GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, \"name\" "
         "VARCHAR(32) NOT NULL, CONSTRAINT \"guilds_leader_id_fkey\" FOREIGN KEY (\"leader_id\") REFERENCES "
         "\"players\" (\"id\") ON DELETE SET NULL ON UPDATE CASCADE, CONSTRAINT \"guilds_name_fkey\" FOREIGN KEY "
         "(\"name\") REFERENCES \"teams\" (\"id\"))");
  /* composite keys and unique groups */
  sq_scol cols[3];
  sq_scol_init(&cols[0], "a", SQ_T_BIGINT);
  cols[0].primary_key = 1;
  sq_scol_init(&cols[1], "b", SQ_T_UUID);
  cols[1].primary_key = 1;
  cols[1].unique = "ab";
  sq_scol_init(&cols[2], "c", SQ_T_DECIMAL);
  cols[2].precision = 12;
  cols[2].scale = 2;
  cols[2].unique = "ab";
  cols[2].default_kind = SQ_DEFAULT_VALUE;
  cols[2].default_value = sq_text("1.50", 4);
  sq_sop_init(&op, SQ_SOP_CREATE_TABLE, "pairs");
  op.cols = cols;
  op.ncols = 3;
  EXPECT(&op, 1, LITE, 0,
         "CREATE TABLE \"pairs\" (\"a\" BIGINT NOT NULL, \"b\" CHAR(36) NOT NULL, \"c\" DECIMAL TEXT(12,2) DEFAULT "
         "'1.50', PRIMARY KEY (\"a\", \"b\"), CONSTRAINT \"ab\" UNIQUE (\"b\", \"c\"))");
  EXPECT(&op, 1, PG, 0,
         "CREATE TABLE \"pairs\" (\"a\" BIGINT NOT NULL, \"b\" UUID NOT NULL, \"c\" DECIMAL(12,2) DEFAULT '1.50', "
         "PRIMARY KEY (\"a\", \"b\"), CONSTRAINT \"ab\" UNIQUE (\"b\", \"c\"))");

  sq_sop ops[3];
  sq_sop_init(&ops[0], SQ_SOP_DROP_TABLE, "guilds");
  sq_sop_init(&ops[1], SQ_SOP_DROP_TABLE, "old");
  ops[1].if_exists = 1;
  sq_sop_init(&ops[2], SQ_SOP_RENAME_TABLE, "a");
  ops[2].new_name = "b";
  for (int d = LITE; d <= PG; d++) {
    if (d == MY)
      EXPECT(ops, 3, d, SQ_SCHEMA_ONE_ALTER, "DROP TABLE `guilds`", "DROP TABLE IF EXISTS `old`",
             "ALTER TABLE `a` RENAME TO `b`");
    else
      EXPECT(ops, 3, d, 0, "DROP TABLE \"guilds\"", "DROP TABLE IF EXISTS \"old\"", "ALTER TABLE \"a\" RENAME TO \"b\"");
  }
}

static void test_columns(void) {
  sq_scol c;
  sq_scol_init(&c, "guild_id", SQ_T_INTEGER);
  sq_sfk ref = {0};
  ref.ref_table = "guilds";
  ref.on_delete = SQ_FK_SET_NULL;
  c.references = &ref;
  sq_sop op;
  sq_sop_init(&op, SQ_SOP_ADD_COLUMN, "players");
  op.col = &c;
  EXPECT(&op, 1, LITE, 0,
         "ALTER TABLE \"players\" ADD COLUMN \"guild_id\" INTEGER CONSTRAINT \"players_guild_id_fkey\" REFERENCES "
         "\"guilds\" (\"id\") ON DELETE SET NULL");
  EXPECT(&op, 1, MY, 0,
         "ALTER TABLE `players` ADD COLUMN `guild_id` INT, ADD CONSTRAINT `players_guild_id_fkey` FOREIGN KEY "
         "(`guild_id`) REFERENCES `guilds` (`id`) ON DELETE SET NULL");
  EXPECT(&op, 1, PG, 0, "ALTER TABLE \"players\" ADD COLUMN \"guild_id\" INTEGER",
         "ALTER TABLE \"players\" ADD CONSTRAINT \"players_guild_id_fkey\" FOREIGN KEY (\"guild_id\") REFERENCES "
         "\"guilds\" (\"id\") ON DELETE SET NULL");

  /* a NOT NULL now-column over live rows: a fill default, dropped after */
  sq_scol_init(&c, "joined", SQ_T_DATETIME);
  c.allow_null = 0;
  c.fill_now = 1;
  c.comment = "when";
  EXPECT(&op, 1, MY, 0, "ALTER TABLE `players` ADD COLUMN `joined` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'when'",
         "ALTER TABLE `players` ALTER COLUMN `joined` DROP DEFAULT");
  EXPECT(&op, 1, PG, 0,
         "ALTER TABLE \"players\" ADD COLUMN \"joined\" TIMESTAMP NOT NULL DEFAULT date_trunc('second', "
         "CURRENT_TIMESTAMP AT TIME ZONE 'UTC')",
         "ALTER TABLE \"players\" ALTER COLUMN \"joined\" DROP DEFAULT",
         "COMMENT ON COLUMN \"players\".\"joined\" IS 'when'");
  REFUSED(&op, 1, LITE, "sq_schema_plan"); /* SQLite's ADD COLUMN can't fill: a rebuild */

  /* remove, rename */
  sq_sop ops[2];
  sq_sop_init(&ops[0], SQ_SOP_REMOVE_COLUMN, "players");
  ops[0].name = "goods";
  sq_sop_init(&ops[1], SQ_SOP_RENAME_COLUMN, "players");
  ops[1].name = "coins";
  ops[1].new_name = "gold";
  EXPECT(ops, 2, LITE, 0, "ALTER TABLE \"players\" DROP COLUMN \"goods\"",
         "ALTER TABLE \"players\" RENAME COLUMN \"coins\" TO \"gold\"");
  EXPECT(ops, 2, MY, 0, "ALTER TABLE `players` DROP COLUMN `goods`", "ALTER TABLE `players` RENAME COLUMN `coins` TO `gold`");
  EXPECT(ops, 2, PG, 0, "ALTER TABLE \"players\" DROP COLUMN \"goods\"",
         "ALTER TABLE \"players\" RENAME COLUMN \"coins\" TO \"gold\"");

  /* change: the whole definition; PostgreSQL per what changes */
  sq_scol_init(&c, "coins", SQ_T_BIGINT);
  c.allow_null = 0;
  c.default_kind = SQ_DEFAULT_VALUE;
  c.default_value = sq_int(0);
  sq_sop_init(&op, SQ_SOP_CHANGE_COLUMN, "players");
  op.name = "coins";
  op.col = &c;
  EXPECT(&op, 1, MY, 0, "ALTER TABLE `players` MODIFY COLUMN `coins` BIGINT NOT NULL DEFAULT 0");
  EXPECT(&op, 1, PG, 0, "ALTER TABLE \"players\" ALTER COLUMN \"coins\" DROP DEFAULT",
         "ALTER TABLE \"players\" ALTER COLUMN \"coins\" TYPE BIGINT USING \"coins\"::BIGINT",
         "ALTER TABLE \"players\" ALTER COLUMN \"coins\" SET DEFAULT 0",
         "ALTER TABLE \"players\" ALTER COLUMN \"coins\" SET NOT NULL");
  REFUSED(&op, 1, LITE, "sq_schema_plan");
  op.change = SQ_CHANGE_NULL;
  c.allow_null = 1;
  EXPECT(&op, 1, PG, 0, "ALTER TABLE \"players\" ALTER COLUMN \"coins\" DROP NOT NULL");
  /* a boolean from an integer goes through INTEGER; an identity comes with its sequence */
  sq_scol_init(&c, "vip", SQ_T_BOOLEAN);
  op.name = "vip";
  op.change = SQ_CHANGE_TYPE;
  op.old_type = SQ_T_SMALLINT;
  EXPECT(&op, 1, PG, 0, "ALTER TABLE \"players\" ALTER COLUMN \"vip\" TYPE BOOLEAN USING \"vip\"::INTEGER::BOOLEAN");
  sq_scol_init(&c, "id", SQ_T_INTEGER);
  c.primary_key = 1;
  c.auto_increment = 1;
  op.name = "id";
  op.change = SQ_CHANGE_AUTOINC;
  EXPECT(&op, 1, PG, 0, "ALTER TABLE \"players\" ALTER COLUMN \"id\" DROP DEFAULT",
         "ALTER TABLE \"players\" ALTER COLUMN \"id\" SET NOT NULL",
         "ALTER TABLE \"players\" ALTER COLUMN \"id\" ADD GENERATED BY DEFAULT AS IDENTITY",
         "SELECT setval(pg_get_serial_sequence('\"players\"', 'id'), COALESCE(MAX(\"id\"), 0) + 1, false) FROM "
         "\"players\"");
  EXPECT(&op, 1, MY, 0, "ALTER TABLE `players` MODIFY COLUMN `id` INT NOT NULL AUTO_INCREMENT");
}

static void test_keys(void) {
  static const char *const cols[] = {"name", "level"};
  sq_sindex ix = {NULL, cols, 2, 1};
  sq_sop ops[6];
  sq_sop_init(&ops[0], SQ_SOP_ADD_INDEX, "guilds");
  ops[0].index = &ix;
  sq_sop_init(&ops[1], SQ_SOP_REMOVE_INDEX, "guilds");
  ops[1].name = "guilds_old";
  ops[1].if_exists = 1;
  sq_sindex uq = {"guilds_name_key", cols, 1, 0};
  sq_sop_init(&ops[2], SQ_SOP_ADD_UNIQUE, "guilds");
  ops[2].index = &uq;
  sq_sop_init(&ops[3], SQ_SOP_REMOVE_UNIQUE, "guilds");
  ops[3].name = "guilds_name_key";
  sq_sop_init(&ops[4], SQ_SOP_DROP_PRIMARY_KEY, "guilds");
  sq_sop_init(&ops[5], SQ_SOP_ADD_PRIMARY_KEY, "guilds");
  ops[5].index = &ix;
  EXPECT(ops, 6, PG, 0, "CREATE UNIQUE INDEX \"guilds_name_level\" ON \"guilds\" (\"name\", \"level\")",
         "DROP INDEX IF EXISTS \"guilds_old\"",
         "ALTER TABLE \"guilds\" ADD CONSTRAINT \"guilds_name_key\" UNIQUE (\"name\")",
         "ALTER TABLE \"guilds\" DROP CONSTRAINT \"guilds_name_key\"", "ALTER TABLE \"guilds\" DROP CONSTRAINT \"guilds_pkey\"",
         "ALTER TABLE \"guilds\" ADD PRIMARY KEY (\"name\", \"level\")");
  EXPECT(ops, 6, MY, 0, "CREATE UNIQUE INDEX `guilds_name_level` ON `guilds` (`name`, `level`)",
         "DROP INDEX IF EXISTS `guilds_old` ON `guilds`", "ALTER TABLE `guilds` ADD CONSTRAINT `guilds_name_key` UNIQUE (`name`)",
         "ALTER TABLE `guilds` DROP INDEX `guilds_name_key`", "ALTER TABLE `guilds` DROP PRIMARY KEY",
         "ALTER TABLE `guilds` ADD PRIMARY KEY (`name`, `level`)");
  /* MySQL: one ALTER TABLE for the lot, applied whole or not at all */
  EXPECT(ops, 6, MY, SQ_SCHEMA_ONE_ALTER,
         "ALTER TABLE `guilds` ADD UNIQUE INDEX `guilds_name_level` (`name`, `level`), DROP INDEX IF EXISTS "
         "`guilds_old`, ADD CONSTRAINT `guilds_name_key` UNIQUE (`name`), DROP INDEX `guilds_name_key`, DROP PRIMARY "
         "KEY, ADD PRIMARY KEY (`name`, `level`)");
  EXPECT(ops, 2, LITE, 0, "CREATE UNIQUE INDEX \"guilds_name_level\" ON \"guilds\" (\"name\", \"level\")",
         "DROP INDEX IF EXISTS \"guilds_old\"");
  for (int i = 2; i < 6; i++) REFUSED(&ops[i], 1, LITE, "live table");

  /* foreign keys */
  static const char *const fc[] = {"guild_id", "realm"}, *const rc[] = {"id", "realm"};
  sq_sfk fk = {NULL, fc, 2, "guilds", rc, 2, SQ_FK_CASCADE, SQ_FK_RESTRICT, 0};
  sq_sop_init(&ops[0], SQ_SOP_ADD_FOREIGN_KEY, "players");
  ops[0].fk = &fk;
  sq_sop_init(&ops[1], SQ_SOP_REMOVE_FOREIGN_KEY, "players");
  ops[1].fk = &fk; /* by its columns: the default name */
  EXPECT(ops, 2, PG, 0,
         "ALTER TABLE \"players\" ADD CONSTRAINT \"players_guild_id_realm_fkey\" FOREIGN KEY (\"guild_id\", \"realm\") "
         "REFERENCES \"guilds\" (\"id\", \"realm\") ON DELETE CASCADE ON UPDATE RESTRICT",
         "ALTER TABLE \"players\" DROP CONSTRAINT \"players_guild_id_realm_fkey\"");
  EXPECT(ops, 2, MY, 0,
         "ALTER TABLE `players` ADD CONSTRAINT `players_guild_id_realm_fkey` FOREIGN KEY (`guild_id`, `realm`) "
         "REFERENCES `guilds` (`id`, `realm`) ON DELETE CASCADE ON UPDATE RESTRICT",
         "ALTER TABLE `players` DROP FOREIGN KEY `players_guild_id_realm_fkey`");
  REFUSED(ops, 2, LITE, "sq_schema_plan");
}

static void test_enum_values(void) {
  static const char *const all[] = {"legendary", "common", "epic", "rare"}, *const add[] = {"legendary", "epic"};
  sq_scol c;
  sq_scol_init(&c, "rarity", SQ_T_STRING);
  c.enum_values = all;
  c.nenum_values = 4;
  c.allow_null = 0;
  c.default_kind = SQ_DEFAULT_VALUE;
  c.default_value = sq_text("common", 6);
  sq_sop op;
  sq_sop_init(&op, SQ_SOP_ADD_ENUM_VALUES, "items");
  op.name = "rarity";
  op.values = add;
  op.nvalues = 2;
  op.col = &c;
  /* after its neighbour in the list; the new first value last, BEFORE the second */
  EXPECT(&op, 1, PG, 0, "ALTER TYPE \"enum_items_rarity\" ADD VALUE IF NOT EXISTS 'epic' AFTER 'common'",
         "ALTER TYPE \"enum_items_rarity\" ADD VALUE IF NOT EXISTS 'legendary' BEFORE 'common'");
  EXPECT(&op, 1, MY, 0,
         "ALTER TABLE `items` MODIFY COLUMN `rarity` ENUM('legendary', 'common', 'epic', 'rare') NOT NULL DEFAULT "
         "'common'");
  REFUSED(&op, 1, LITE, "sq_schema_plan");
  c.enum_type = "rarity_t";
  op.col = NULL; /* PostgreSQL alone can do without the column */
  EXPECT(&op, 1, PG, 0, "ALTER TYPE \"enum_items_rarity\" ADD VALUE IF NOT EXISTS 'legendary'",
         "ALTER TYPE \"enum_items_rarity\" ADD VALUE IF NOT EXISTS 'epic' AFTER 'legendary'");
  REFUSED(&op, 1, MY, "whole definition");
  op.col = &c;
  EXPECT(&op, 1, PG, 0, "ALTER TYPE \"rarity_t\" ADD VALUE IF NOT EXISTS 'epic' AFTER 'common'",
         "ALTER TYPE \"rarity_t\" ADD VALUE IF NOT EXISTS 'legendary' BEFORE 'common'");
  static const char *const odd[] = {"x"};
  op.values = odd;
  op.nvalues = 1;
  REFUSED(&op, 1, PG, "missing from col's enum_values");
  /* an ENUM's values are checked */
  static const char *const twice[] = {"a", "a"};
  c.enum_values = twice;
  c.nenum_values = 2;
  sq_sop_init(&op, SQ_SOP_ADD_COLUMN, "items");
  op.col = &c;
  REFUSED(&op, 1, MY, "listed twice");
  c.enum_values = all;
  c.nenum_values = 4;
  c.type = SQ_T_INTEGER;
  REFUSED(&op, 1, MY, "ENUM column has type STRING");
}

/* Names carrying quotes and SQL stay inside their quotes; values are
 * literals; what can't be written is refused with nothing rendered. */
static void test_hostile(void) {
  static const char *const vals[] = {"a'); DROP TABLE x; --", "b\\"};
  sq_scol c;
  sq_scol_init(&c, "n\"a`me", SQ_T_STRING);
  c.enum_values = vals;
  c.nenum_values = 2;
  c.comment = "it's \\ fine";
  c.default_kind = SQ_DEFAULT_VALUE;
  c.default_value = sq_text("b\\", 2);
  sq_sop op;
  sq_sop_init(&op, SQ_SOP_ADD_COLUMN, "t\"; DROP TABLE y; --");
  op.col = &c;
  EXPECT(&op, 1, LITE, 0,
         "ALTER TABLE \"t\"\"; DROP TABLE y; --\" ADD COLUMN \"n\"\"a`me\" TEXT DEFAULT 'b\\' CHECK (\"n\"\"a`me\" IN "
         "('a''); DROP TABLE x; --', 'b\\'))");
  EXPECT(&op, 1, MY, 0,
         "ALTER TABLE `t\"; DROP TABLE y; --` ADD COLUMN `n\"a``me` ENUM('a''); DROP TABLE x; --', 'b\\\\') DEFAULT "
         "'b\\\\' COMMENT 'it''s \\\\ fine'");
  EXPECT(&op, 1, PG, 0,
         "DO $sq$ BEGIN CREATE TYPE \"enum_t\"\"; DROP TABLE y; --_n\"\"a`me\" AS ENUM ('a''); DROP TABLE x; --', "
         "E'b\\\\'); EXCEPTION WHEN duplicate_object THEN NULL; END $sq$",
         "ALTER TABLE \"t\"\"; DROP TABLE y; --\" ADD COLUMN \"n\"\"a`me\" \"enum_t\"\"; DROP TABLE y; --_n\"\"a`me\" "
         "DEFAULT E'b\\\\'",
         "COMMENT ON COLUMN \"t\"\"; DROP TABLE y; --\".\"n\"\"a`me\" IS E'it''s \\\\ fine'");
  /* a value holding the dollar-quote tag gets another tag */
  static const char *const dollar[] = {"$sq$"};
  c.enum_values = dollar;
  c.nenum_values = 1;
  c.comment = NULL;
  c.default_kind = 0;
  sq_sop_init(&op, SQ_SOP_ADD_COLUMN, "t");
  op.col = &c;
  EXPECT(&op, 1, PG, 0,
         "DO $sq1$ BEGIN CREATE TYPE \"enum_t_n\"\"a`me\" AS ENUM ('$sq$'); EXCEPTION WHEN duplicate_object THEN NULL; "
         "END $sq1$",
         "ALTER TABLE \"t\" ADD COLUMN \"n\"\"a`me\" \"enum_t_n\"\"a`me\"");
  /* NUL bytes, names past 63 bytes, empty names */
  static const char *const nul[] = {"a\0b"};
  c.enum_values = nul;
  c.default_kind = SQ_DEFAULT_VALUE;
  c.default_value = sq_text("a\0b", 3);
  REFUSED(&op, 1, MY, "NUL");
  c.enum_values = NULL;
  c.nenum_values = 0;
  REFUSED(&op, 1, LITE, "NUL");
  char longname[80];
  memset(longname, 'x', 70);
  longname[70] = '\0';
  sq_sop_init(&op, SQ_SOP_REMOVE_COLUMN, "t");
  op.name = longname;
  REFUSED(&op, 1, PG, "");
  op.name = "";
  REFUSED(&op, 1, PG, "");
  /* generated names past 63 bytes are shortened with a hash, as models do */
  static const char *const lc[] = {"a_rather_long_column_name_number_one", "a_rather_long_column_name_number_two"};
  sq_sindex ix = {NULL, lc, 2, 0};
  sq_sop_init(&op, SQ_SOP_ADD_INDEX, "players");
  op.index = &ix;
  sq_sql_list l = {0};
  CHECK(sq_schema_render(&op, 1, PG, 0, &l, &E) == SQ_OK && l.n == 1);
  if (l.n == 1) {
    const char *q = strchr(l.sql[0], '"'), *e = q ? strchr(q + 1, '"') : NULL;
    CHECK(q && e && e - q - 1 == 63);
    CHECK(!strncmp(l.sql[0], "CREATE INDEX \"players_a_rather_long_column_name_number_one_a_rather_", 68));
  }
  sq_sql_list_free(&l);
}

static void test_refused(void) {
  sq_sop op;
  sq_sop_init(&op, SQ_SOP_ADD_COLUMN, "t");
  REFUSED(&op, 1, PG, "no column definition");
  sq_sop_init(&op, SQ_SOP_ADD_COLUMN, NULL);
  REFUSED(&op, 1, PG, "no table");
  sq_sop_init(&op, 99, "t");
  REFUSED(&op, 1, PG, "unknown kind");
  sq_sop_init(&op, SQ_SOP_RENAME_COLUMN, "t");
  op.name = "a";
  REFUSED(&op, 1, MY, "new_name");
  sq_sop_init(&op, SQ_SOP_CREATE_TABLE, "t");
  REFUSED(&op, 1, LITE, "no columns");
  sq_sfk fk = {0};
  sq_sop_init(&op, SQ_SOP_ADD_FOREIGN_KEY, "t");
  op.fk = &fk;
  REFUSED(&op, 1, PG, "ref_table");
  sq_scol c;
  sq_scol_init(&c, "id", SQ_T_TEXT);
  c.auto_increment = 1;
  sq_sop_init(&op, SQ_SOP_ADD_COLUMN, "t");
  op.col = &c;
  REFUSED(&op, 1, PG, "auto_increment needs an integer");
  sq_sql_list l = {0};
  CHECK(sq_schema_render(&op, 1, 42, 0, &l, &E) == SQ_EUSAGE && l.n == 0);
  /* a note renders nothing */
  sq_sop_init(&op, SQ_SOP_NOTE, NULL);
  op.note = "x";
  CHECK(sq_schema_render(&op, 1, PG, 0, &l, &E) == SQ_OK && l.n == 0);
  CHECK_STR(sq_sop_kind_name(SQ_SOP_ADD_ENUM_VALUES), "add_enum_values");
  CHECK(sq_sop_kind_name(0) == NULL && sq_sop_kind_name(SQ_SOP_COUNT) == NULL);
}

/* ------------------------------------------------------------------ */
/* Live                                                                 */
/* ------------------------------------------------------------------ */

typedef struct one {
  int rows;
  int64_t i;
  char s[256];
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

/* Runs SQL with ? binds; returns rc (quietly when quiet). */
static int runq(sq_conn *c, const char *sql, const sq_value *p, int np, one *o, int quiet) {
  sq_row_sink sink = {o, NULL, one_row};
  sq_result res;
  if (o) memset(o, 0, sizeof *o);
  int rc = sq_conn_exec(c, sql, strlen(sql), p, np, o ? &sink : NULL, &res, &E);
  if (rc && !quiet) fprintf(stderr, "run failed: %s\n  %s\n", E.msg, sql);
  return rc;
}
static int run(sq_conn *c, const char *sql) { return runq(c, sql, NULL, 0, NULL, 0); }
static int64_t count(sq_conn *c, const char *sql) {
  one o;
  return runq(c, sql, NULL, 0, &o, 0) ? -1 : o.i;
}

static void log_sql(void *ud, const char *sql) {
  (void)ud;
  if (getenv("VERBOSE")) printf("  %s\n", sql);
}

static int apply(sq_conn *c, const sq_sop *ops, int n) {
  int rc = sq_schema_apply(c, ops, n, 0, log_sql, NULL, &E);
  if (rc && getenv("VERBOSE")) printf("  -> %s\n", E.msg);
  return rc;
}
#define APPLY_OK(c, ops, n)                                                                                           \
  do {                                                                                                              \
    int rc_ = apply(c, ops, n);                                                                                     \
    CHECK(rc_ == SQ_OK);                                                                                            \
    if (rc_) fprintf(stderr, "line %d: apply: %s\n", __LINE__, E.msg);                                              \
  } while (0)

/* Live catalog probes, one per dialect. */
static int64_t col_exists(sq_conn *c, int d, const char *t, const char *col) {
  const char *sql = d == LITE ? "SELECT count(*) FROM pragma_table_info(?) WHERE name = ?"
                    : d == MY ? "SELECT count(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                                "AND TABLE_NAME = ? AND COLUMN_NAME = ?"
                              : "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                                "current_schema() AND table_name = ? AND column_name = ?";
  sq_value p[2] = {sq_text(t, strlen(t)), sq_text(col, strlen(col))};
  one o;
  return runq(c, sql, p, 2, &o, 0) ? -1 : o.i;
}

static int64_t col_notnull(sq_conn *c, int d, const char *t, const char *col) {
  const char *sql = d == LITE ? "SELECT \"notnull\" FROM pragma_table_info(?) WHERE name = ?"
                    : d == MY ? "SELECT IS_NULLABLE = 'NO' FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                                "DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?"
                              : "SELECT CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END FROM information_schema.columns "
                                "WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?";
  sq_value p[2] = {sq_text(t, strlen(t)), sq_text(col, strlen(col))};
  one o;
  return runq(c, sql, p, 2, &o, 0) || !o.rows ? -1 : o.i;
}

static void col_type(sq_conn *c, int d, const char *t, const char *col, char *out, size_t n) {
  const char *sql = d == LITE ? "SELECT type FROM pragma_table_info(?) WHERE name = ?"
                    : d == MY ? "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                                "AND TABLE_NAME = ? AND COLUMN_NAME = ?"
                              : "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                                "current_schema() AND table_name = ? AND column_name = ?";
  sq_value p[2] = {sq_text(t, strlen(t)), sq_text(col, strlen(col))};
  one o;
  out[0] = '\0';
  if (!runq(c, sql, p, 2, &o, 0) && o.rows) snprintf(out, n, "%.100s", o.s);
}

static int64_t index_exists(sq_conn *c, int d, const char *t, const char *name) {
  const char *sql = d == LITE ? "SELECT count(*) FROM pragma_index_list(?) WHERE name = ?"
                    : d == MY ? "SELECT count(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE "
                                "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?"
                              : "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ? "
                                "AND indexname = ?";
  sq_value p[2] = {sq_text(t, strlen(t)), sq_text(name, strlen(name))};
  one o;
  return runq(c, sql, p, 2, &o, 0) ? -1 : o.i;
}

/* Foreign keys of t referencing rt. */
static int64_t fk_count(sq_conn *c, int d, const char *t, const char *rt) {
  const char *sql = d == LITE ? "SELECT count(*) FROM pragma_foreign_key_list(?) WHERE \"table\" = ?"
                    : d == MY ? "SELECT count(DISTINCT CONSTRAINT_NAME) FROM information_schema.KEY_COLUMN_USAGE "
                                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME = ?"
                              : "SELECT count(*) FROM pg_constraint c JOIN pg_class a ON a.oid = c.conrelid JOIN "
                                "pg_class b ON b.oid = c.confrelid WHERE c.contype = 'f' AND a.relname = ? AND "
                                "b.relname = ?";
  sq_value p[2] = {sq_text(t, strlen(t)), sq_text(rt, strlen(rt))};
  one o;
  return runq(c, sql, p, 2, &o, 0) ? -1 : o.i;
}

static int64_t table_exists(sq_conn *c, int d, const char *t) {
  const char *sql = d == LITE ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
                    : d == MY ? "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
                                "TABLE_NAME = ?"
                              : "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() "
                                "AND table_name = ?";
  sq_value p = sq_text(t, strlen(t));
  one o;
  return runq(c, sql, &p, 1, &o, 0) ? -1 : o.i;
}

static void drop(sq_conn *c, const char *t) {
  char sql[160];
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", t);
  run(c, sql);
}

/*
 * Every op on a live server, each checked in the catalog: create
 * (sqo_parents, sqo_items with an ENUM and a key to parents), columns
 * added, changed, renamed and removed, indexes, uniques, the primary
 * key, foreign keys and enum values, table rename and drop.
 */
static void live_ops(sq_conn *c, int d) {
  printf("live ops %s\n", sq_dialect_name(d));
  drop(c, "sqo_items");
  drop(c, "sqo_items2");
  drop(c, "sqo_parents");
  if (d == PG) run(c, "DROP TYPE IF EXISTS \"enum_sqo_items_rarity\"");
  char ty[128];

  /* create_table: parents, then items referencing them, with an ENUM */
  sq_scol pc[2];
  sq_scol_init(&pc[0], "id", SQ_T_INTEGER);
  pc[0].primary_key = 1;
  pc[0].auto_increment = 1;
  pc[0].allow_null = 0;
  sq_scol_init(&pc[1], "name", SQ_T_STRING);
  pc[1].length = 20;
  sq_scol ic[4];
  static const char *const rar[] = {"common", "rare"};
  sq_scol_init(&ic[0], "id", SQ_T_INTEGER);
  ic[0].primary_key = 1;
  ic[0].allow_null = 0;
  sq_scol_init(&ic[1], "parent_id", SQ_T_INTEGER);
  sq_sfk ref = {0};
  ref.ref_table = "sqo_parents";
  ref.on_delete = SQ_FK_CASCADE;
  ic[1].references = &ref;
  sq_scol_init(&ic[2], "rarity", SQ_T_STRING);
  ic[2].enum_values = rar;
  ic[2].nenum_values = 2;
  ic[2].allow_null = 0;
  ic[2].default_kind = SQ_DEFAULT_VALUE;
  ic[2].default_value = sq_text("common", 6);
  sq_scol_init(&ic[3], "qty", SQ_T_INTEGER);
  sq_sop ops[4];
  sq_sop_init(&ops[0], SQ_SOP_CREATE_TABLE, "sqo_parents");
  ops[0].cols = pc;
  ops[0].ncols = 2;
  sq_sop_init(&ops[1], SQ_SOP_CREATE_TABLE, "sqo_items");
  ops[1].cols = ic;
  ops[1].ncols = 4;
  APPLY_OK(c, ops, 2);
  CHECK(table_exists(c, d, "sqo_items") == 1 && col_exists(c, d, "sqo_items", "rarity") == 1);
  CHECK(fk_count(c, d, "sqo_items", "sqo_parents") == 1);
  CHECK(run(c, "INSERT INTO sqo_parents (id, name) VALUES (1, 'p1'), (2, 'p2')") == 0);
  CHECK(run(c, "INSERT INTO sqo_items (id, parent_id, qty) VALUES (1, 1, 5), (2, 2, 7)") == 0);
  CHECK(count(c, "SELECT count(*) FROM sqo_items WHERE rarity = 'common'") == 2);
  CHECK(runq(c, "INSERT INTO sqo_items (id, parent_id, rarity) VALUES (3, 1, 'epic')", NULL, 0, NULL, 1) != 0);
  CHECK(runq(c, "INSERT INTO sqo_items (id, parent_id) VALUES (3, 99)", NULL, 0, NULL, 1) == SQ_ECONSTRAINT);
  /* creating an existing ENUM type again is fine (PostgreSQL: the DO block) */
  if (d == PG) {
    ops[1].if_exists = 1;
    APPLY_OK(c, &ops[1], 1);
    ops[1].if_exists = 0;
  }

  /* add_enum_values: 'epic' goes in, twice is harmless */
  static const char *const rar2[] = {"common", "rare", "epic"}, *const epic[] = {"epic"};
  sq_scol ec = ic[2];
  ec.enum_values = rar2;
  ec.nenum_values = 3;
  sq_sop_init(&ops[0], SQ_SOP_ADD_ENUM_VALUES, "sqo_items");
  ops[0].name = "rarity";
  ops[0].values = epic;
  ops[0].nvalues = 1;
  ops[0].col = &ec;
  APPLY_OK(c, ops, 1);
  APPLY_OK(c, ops, 1);
  CHECK(run(c, "INSERT INTO sqo_items (id, parent_id, rarity) VALUES (3, 1, 'epic')") == 0);
  CHECK(runq(c, "INSERT INTO sqo_items (id, parent_id, rarity) VALUES (4, 1, 'mythic')", NULL, 0, NULL, 1) != 0);

  /* add_column (with a default over existing rows), change_column, rename, remove */
  sq_scol nc;
  sq_scol_init(&nc, "weight", SQ_T_INTEGER);
  nc.allow_null = 0;
  nc.default_kind = SQ_DEFAULT_VALUE;
  nc.default_value = sq_int(3);
  sq_sop_init(&ops[0], SQ_SOP_ADD_COLUMN, "sqo_items");
  ops[0].col = &nc;
  APPLY_OK(c, ops, 1);
  CHECK(count(c, "SELECT count(*) FROM sqo_items WHERE weight = 3") == 3);
  CHECK(col_notnull(c, d, "sqo_items", "weight") == 1);
  sq_scol cc;
  sq_scol_init(&cc, "qty", SQ_T_BIGINT);
  cc.allow_null = 0;
  cc.default_kind = SQ_DEFAULT_VALUE;
  cc.default_value = sq_int(1);
  sq_sop_init(&ops[0], SQ_SOP_CHANGE_COLUMN, "sqo_items");
  ops[0].name = "qty";
  ops[0].col = &cc;
  CHECK(apply(c, ops, 1) != SQ_OK); /* item 3 has no qty: NOT NULL refused, nothing changed */
  CHECK(col_notnull(c, d, "sqo_items", "qty") == 0);
  CHECK(run(c, "UPDATE sqo_items SET qty = 0 WHERE qty IS NULL") == 0);
  APPLY_OK(c, ops, 1);
  CHECK(col_notnull(c, d, "sqo_items", "qty") == 1);
  col_type(c, d, "sqo_items", "qty", ty, sizeof ty);
  CHECK(!strncmp(ty, d == PG ? "bigint" : d == MY ? "bigint" : "BIGINT", 6));
  CHECK(run(c, "INSERT INTO sqo_items (id, parent_id) VALUES (4, 1)") == 0);
  CHECK(count(c, "SELECT qty FROM sqo_items WHERE id = 4") == 1);
  CHECK(count(c, "SELECT qty FROM sqo_items WHERE id = 2") == 7);
  sq_sop_init(&ops[0], SQ_SOP_RENAME_COLUMN, "sqo_items");
  ops[0].name = "weight";
  ops[0].new_name = "mass";
  sq_sop_init(&ops[1], SQ_SOP_REMOVE_COLUMN, "sqo_parents");
  ops[1].name = "name";
  APPLY_OK(c, ops, 2);
  CHECK(col_exists(c, d, "sqo_items", "mass") == 1 && col_exists(c, d, "sqo_items", "weight") == 0);
  CHECK(col_exists(c, d, "sqo_parents", "name") == 0);
  CHECK(count(c, "SELECT count(*) FROM sqo_items WHERE mass = 3") == 4);

  /* indexes and uniques */
  static const char *const qm[] = {"qty", "mass"}, *const q1[] = {"qty"};
  sq_sindex ix = {NULL, qm, 2, 0}, uq = {"sqo_items_qty_key", q1, 1, 0};
  sq_sop_init(&ops[0], SQ_SOP_ADD_INDEX, "sqo_items");
  ops[0].index = &ix;
  sq_sop_init(&ops[1], SQ_SOP_ADD_UNIQUE, "sqo_items");
  ops[1].index = &uq;
  APPLY_OK(c, ops, 2); /* qty: 5, 7, 0, 1 */
  CHECK(index_exists(c, d, "sqo_items", "sqo_items_qty_mass") == 1);
  CHECK(runq(c, "INSERT INTO sqo_items (id, parent_id, qty) VALUES (5, 1, 5)", NULL, 0, NULL, 1) == SQ_EUNIQUE);
  sq_sop_init(&ops[0], SQ_SOP_REMOVE_INDEX, "sqo_items");
  ops[0].name = "sqo_items_qty_mass";
  sq_sop_init(&ops[1], SQ_SOP_REMOVE_UNIQUE, "sqo_items");
  ops[1].name = "sqo_items_qty_key";
  ops[1].index = &uq;
  APPLY_OK(c, ops, 2);
  CHECK(index_exists(c, d, "sqo_items", "sqo_items_qty_mass") == 0);
  CHECK(run(c, "INSERT INTO sqo_items (id, parent_id, qty) VALUES (5, 1, 5)") == 0);

  /* the primary key: (id) -> (id, parent_id) -> (id) */
  static const char *const k2[] = {"id", "parent_id"}, *const k1[] = {"id"};
  sq_sindex pk2 = {NULL, k2, 2, 0}, pk1 = {NULL, k1, 1, 0};
  sq_sop_init(&ops[0], SQ_SOP_DROP_PRIMARY_KEY, "sqo_items");
  sq_sop_init(&ops[1], SQ_SOP_ADD_PRIMARY_KEY, "sqo_items");
  ops[1].index = &pk2;
  APPLY_OK(c, ops, 2);
  CHECK(run(c, "INSERT INTO sqo_items (id, parent_id, qty) VALUES (5, 2, 5)") == 0); /* id 5 twice, other parent */
  CHECK(run(c, "DELETE FROM sqo_items WHERE id = 5 AND parent_id = 2") == 0);
  ops[1].index = &pk1;
  APPLY_OK(c, ops, 2);
  CHECK(runq(c, "INSERT INTO sqo_items (id, parent_id, qty) VALUES (5, 2, 5)", NULL, 0, NULL, 1) == SQ_EUNIQUE);
  /* a key column became NOT NULL with the key: nullable again */
  CHECK(col_notnull(c, d, "sqo_items", "parent_id") == 1);
  sq_scol pcol;
  sq_scol_init(&pcol, "parent_id", SQ_T_INTEGER);
  sq_sop_init(&ops[0], SQ_SOP_CHANGE_COLUMN, "sqo_items");
  ops[0].name = "parent_id";
  ops[0].col = &pcol;
  APPLY_OK(c, ops, 1);
  CHECK(col_notnull(c, d, "sqo_items", "parent_id") == 0);

  /* foreign keys: removed (by its default name), added back with other actions */
  sq_sop_init(&ops[0], SQ_SOP_REMOVE_FOREIGN_KEY, "sqo_items");
  ops[0].name = "sqo_items_parent_id_fkey";
  APPLY_OK(c, ops, 1);
  CHECK(fk_count(c, d, "sqo_items", "sqo_parents") == 0);
  CHECK(run(c, "INSERT INTO sqo_items (id, parent_id) VALUES (9, 99)") == 0);
  CHECK(run(c, "DELETE FROM sqo_items WHERE id = 9") == 0);
  static const char *const pcols[] = {"parent_id"};
  sq_sfk fk = {"sqo_items_parent", pcols, 1, "sqo_parents", NULL, 0, SQ_FK_SET_NULL, SQ_FK_CASCADE, 0};
  sq_sop_init(&ops[0], SQ_SOP_ADD_FOREIGN_KEY, "sqo_items");
  ops[0].fk = &fk;
  APPLY_OK(c, ops, 1);
  CHECK(fk_count(c, d, "sqo_items", "sqo_parents") == 1);
  CHECK(run(c, "DELETE FROM sqo_parents WHERE id = 2") == 0);
  CHECK(count(c, "SELECT count(*) FROM sqo_items WHERE parent_id IS NULL") == 1); /* set null, not cascade */
  CHECK(count(c, "SELECT count(*) FROM sqo_items") == 5);

  /* rename and drop the table */
  sq_sop_init(&ops[0], SQ_SOP_RENAME_TABLE, "sqo_items");
  ops[0].new_name = "sqo_items2";
  APPLY_OK(c, ops, 1);
  CHECK(table_exists(c, d, "sqo_items") == 0 && table_exists(c, d, "sqo_items2") == 1);
  CHECK(count(c, "SELECT count(*) FROM sqo_items2") == 5);
  sq_sop_init(&ops[0], SQ_SOP_DROP_TABLE, "sqo_items2");
  sq_sop_init(&ops[1], SQ_SOP_DROP_TABLE, "sqo_parents");
  sq_sop_init(&ops[2], SQ_SOP_DROP_TABLE, "sqo_parents");
  ops[2].if_exists = 1;
  APPLY_OK(c, ops, 3);
  CHECK(table_exists(c, d, "sqo_items2") == 0 && table_exists(c, d, "sqo_parents") == 0);
  if (d == PG) run(c, "DROP TYPE IF EXISTS \"enum_sqo_items_rarity\"");
}

/*
 * A failing op inside a transaction: on PostgreSQL and SQLite nothing of
 * the list remains (a new table, a column, a rebuild); MySQL commits each
 * statement, and its message names the failing op.
 */
static void live_atomic(sq_conn *c, int d) {
  drop(c, "sqo_atom");
  drop(c, "sqo_base");
  CHECK(run(c, "CREATE TABLE sqo_base (id INTEGER PRIMARY KEY, tag VARCHAR(10))") == 0);
  CHECK(run(c, "INSERT INTO sqo_base (id, tag) VALUES (1, 'x'), (2, 'x')") == 0);
  sq_scol cols[1], add;
  sq_scol_init(&cols[0], "id", SQ_T_INTEGER);
  cols[0].primary_key = 1;
  sq_scol_init(&add, "note", SQ_T_TEXT);
  static const char *const tag[] = {"tag"};
  sq_sindex uq = {NULL, tag, 1, 0};
  sq_scol ch;
  sq_scol_init(&ch, "tag", SQ_T_STRING);
  ch.length = 40;
  sq_sop ops[4];
  sq_sop_init(&ops[0], SQ_SOP_CREATE_TABLE, "sqo_atom");
  ops[0].cols = cols;
  ops[0].ncols = 1;
  sq_sop_init(&ops[1], SQ_SOP_ADD_COLUMN, "sqo_base");
  ops[1].col = &add;
  sq_sop_init(&ops[2], SQ_SOP_CHANGE_COLUMN, "sqo_base");
  ops[2].name = "tag";
  ops[2].col = &ch;
  sq_sop_init(&ops[3], SQ_SOP_ADD_UNIQUE, "sqo_base"); /* over duplicates: fails */
  ops[3].index = &uq;
  int rc = apply(c, ops, 4);
  CHECK(rc == SQ_EUNIQUE);
  if (d == MY) {
    CHECK(strstr(E.msg, "add_unique \"sqo_base\"") != NULL); /* names the op */
  } else {
    CHECK(table_exists(c, d, "sqo_atom") == 0);
    CHECK(col_exists(c, d, "sqo_base", "note") == 0);
    char ty[64];
    col_type(c, d, "sqo_base", "tag", ty, sizeof ty);
    CHECK(strstr(ty, "40") == NULL);
    if (d == LITE) CHECK(count(c, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%sqorm_new'") == 0);
    CHECK(count(c, "SELECT count(*) FROM sqo_base") == 2);
  }
  /* inside the caller's transaction: the caller's rollback undoes it */
  if (d != MY) {
    CHECK(sq_schema_begin(c, &E) == SQ_OK);
    CHECK(sq_schema_begin(c, &E) == SQ_EUSAGE && strstr(E.msg, "outside a transaction"));
    APPLY_OK(c, ops, 3);
    CHECK(table_exists(c, d, "sqo_atom") == 1 && col_exists(c, d, "sqo_base", "note") == 1);
    CHECK(sq_schema_rollback(c, &E) == SQ_OK);
    CHECK(table_exists(c, d, "sqo_atom") == 0 && col_exists(c, d, "sqo_base", "note") == 0);
    /* and its commit keeps it */
    CHECK(sq_schema_begin(c, &E) == SQ_OK);
    APPLY_OK(c, ops, 2);
    CHECK(sq_schema_commit(c, &E) == SQ_OK);
    CHECK(table_exists(c, d, "sqo_atom") == 1 && col_exists(c, d, "sqo_base", "note") == 1);
  }
  if (d == LITE) {
    /* a rebuild inside a transaction that keeps foreign keys on is refused */
    CHECK(run(c, "BEGIN") == 0);
    CHECK(apply(c, &ops[2], 1) == SQ_EUSAGE && strstr(E.msg, "sq_schema_begin"));
    CHECK(run(c, "ROLLBACK") == 0);
    CHECK(count(c, "PRAGMA foreign_keys") == 1);
  }
  drop(c, "sqo_atom");
  drop(c, "sqo_base");
}

/*
 * SQLite's change_column is a rebuild that keeps the rows, the other
 * columns' clauses as written (CHECK, COLLATE, a generated column), the
 * indexes (user's and unique), the triggers, the views, the table's own
 * foreign keys and those of tables referencing it (whose ON DELETE
 * CASCADE must not fire), and AUTOINCREMENT's counter.
 */
static void sqlite_rebuild(sq_conn *c) {
  static const char *const setup[] = {
      "CREATE TABLE lr_teams (id INTEGER PRIMARY KEY, name TEXT)",
      "CREATE TABLE lr_players (id INTEGER PRIMARY KEY AUTOINCREMENT, "
      "name TEXT COLLATE NOCASE NOT NULL CHECK (length(name) > 0), "
      "coins INTEGER DEFAULT 0, "
      "team_id INTEGER REFERENCES lr_teams (id) ON DELETE SET NULL, "
      "twice INTEGER GENERATED ALWAYS AS (coins * 2) VIRTUAL, "
      "code TEXT UNIQUE)",
      "CREATE TABLE lr_items (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL "
      "REFERENCES lr_players (id) ON DELETE CASCADE)",
      "CREATE INDEX lr_players_coins ON lr_players (coins DESC)",
      "CREATE TABLE lr_log (msg TEXT)",
      "CREATE TRIGGER lr_players_ins AFTER INSERT ON lr_players BEGIN INSERT INTO lr_log VALUES ('new ' || "
      "new.name); END",
      "CREATE TRIGGER lr_items_ins AFTER INSERT ON lr_items BEGIN UPDATE lr_players SET coins = coins + 1 WHERE id = "
      "new.owner_id; END",
      "CREATE VIEW lr_rich AS SELECT name FROM lr_players WHERE coins > 5",
      "INSERT INTO lr_teams VALUES (1, 'red')",
      "INSERT INTO lr_players (name, coins, team_id, code) VALUES ('Ann', 10, 1, 'a'), ('bob', 3, 1, 'b')",
      "DELETE FROM lr_players WHERE name = 'bob'",
      "INSERT INTO lr_players (name, coins, team_id, code) VALUES ('cat', 7, NULL, 'c')",
      "INSERT INTO lr_items VALUES (1, 1), (2, 1), (3, 3)",
      NULL};
  printf("sqlite rebuild\n");
  for (int i = 0; setup[i]; i++) CHECK(run(c, setup[i]) == 0);
  int64_t coins_before = count(c, "SELECT coins FROM lr_players WHERE id = 1"); /* 10 + 2 items */
  sq_scol cc;
  sq_scol_init(&cc, "coins", SQ_T_BIGINT);
  cc.allow_null = 0;
  cc.default_kind = SQ_DEFAULT_VALUE;
  cc.default_value = sq_int(5);
  sq_sop op;
  sq_sop_init(&op, SQ_SOP_CHANGE_COLUMN, "lr_players");
  op.name = "coins";
  op.col = &cc;
  sq_sql_list l = {0};
  CHECK(sq_schema_plan(c, &op, 1, 0, &l, &E) == SQ_OK);
  static const char *const want[] = {
      "DROP TABLE IF EXISTS \"lr_players__sqorm_new\"",
      "CREATE TABLE \"lr_players__sqorm_new\" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT COLLATE NOCASE NOT NULL "
      "CHECK (length(name) > 0), \"coins\" BIGINT NOT NULL DEFAULT 5, team_id INTEGER REFERENCES lr_teams (id) ON "
      "DELETE SET NULL, twice INTEGER GENERATED ALWAYS AS (coins * 2) VIRTUAL, code TEXT UNIQUE)",
      "INSERT INTO \"lr_players__sqorm_new\" (\"id\", \"name\", \"coins\", \"team_id\", \"code\") SELECT \"id\", "
      "\"name\", \"coins\", \"team_id\", \"code\" FROM \"lr_players\"",
      "DELETE FROM sqlite_sequence WHERE name = 'lr_players__sqorm_new'",
      "INSERT INTO sqlite_sequence (name, seq) SELECT 'lr_players__sqorm_new', seq FROM sqlite_sequence WHERE name = "
      "'lr_players'",
      "DROP TABLE \"lr_players\"",
      "PRAGMA legacy_alter_table = ON",
      "ALTER TABLE \"lr_players__sqorm_new\" RENAME TO \"lr_players\"",
      "PRAGMA legacy_alter_table = OFF",
      "CREATE INDEX lr_players_coins ON lr_players (coins DESC)",
      "CREATE TRIGGER lr_players_ins AFTER INSERT ON lr_players BEGIN INSERT INTO lr_log VALUES ('new ' || new.name); "
      "END",
      NULL};
  expect_list(__LINE__, SQ_OK, &l, want);
  sq_sql_list_free(&l);
  APPLY_OK(c, &op, 1);
  /* rows, ids, the cascade that did not fire */
  CHECK(count(c, "SELECT count(*) FROM lr_players") == 2);
  CHECK(count(c, "SELECT count(*) FROM lr_items") == 3);
  CHECK(count(c, "SELECT coins FROM lr_players WHERE id = 1") == coins_before);
  CHECK(count(c, "SELECT twice FROM lr_players WHERE id = 3") == 2 * count(c, "SELECT coins FROM lr_players WHERE id = 3"));
  CHECK(col_notnull(c, LITE, "lr_players", "coins") == 1);
  /* AUTOINCREMENT: id 2 (deleted) is not reused, the counter went on */
  CHECK(run(c, "INSERT INTO lr_players (name, code) VALUES ('dan', 'd')") == 0);
  CHECK(count(c, "SELECT max(id) FROM lr_players") == 4);
  CHECK(count(c, "SELECT coins FROM lr_players WHERE id = 4") == 5);
  /* the trigger on it, the trigger on items, the view */
  CHECK(count(c, "SELECT count(*) FROM lr_log WHERE msg = 'new dan'") == 1);
  CHECK(run(c, "INSERT INTO lr_items VALUES (4, 4)") == 0);
  CHECK(count(c, "SELECT coins FROM lr_players WHERE id = 4") == 6);
  CHECK(count(c, "SELECT count(*) FROM lr_rich") == 3);
  /* indexes, unique, CHECK, COLLATE, keys both ways */
  CHECK(index_exists(c, LITE, "lr_players", "lr_players_coins") == 1);
  CHECK(runq(c, "INSERT INTO lr_players (name, code) VALUES ('eve', 'a')", NULL, 0, NULL, 1) == SQ_EUNIQUE);
  CHECK(runq(c, "INSERT INTO lr_players (name, code) VALUES ('', 'e')", NULL, 0, NULL, 1) == SQ_ECONSTRAINT);
  CHECK(count(c, "SELECT count(*) FROM lr_players WHERE name = 'ANN'") == 1);
  CHECK(runq(c, "INSERT INTO lr_players (name, team_id, code) VALUES ('x', 9, 'x')", NULL, 0, NULL, 1) == SQ_ECONSTRAINT);
  CHECK(runq(c, "INSERT INTO lr_items VALUES (9, 99)", NULL, 0, NULL, 1) == SQ_ECONSTRAINT);
  CHECK(run(c, "DELETE FROM lr_players WHERE id = 1") == 0);
  CHECK(count(c, "SELECT count(*) FROM lr_items WHERE owner_id = 1") == 0); /* cascade works */
  CHECK(run(c, "DELETE FROM lr_teams WHERE id = 1") == 0);
  CHECK(count(c, "PRAGMA foreign_keys") == 1);
  CHECK(count(c, "PRAGMA legacy_alter_table") == 0);

  /* remove_column: a plain one natively, a referenced one by rebuild */
  sq_sop ops[2];
  sq_sop_init(&ops[0], SQ_SOP_REMOVE_COLUMN, "lr_items");
  ops[0].name = "owner_id";
  CHECK(sq_schema_plan(c, ops, 1, 0, &l, &E) == SQ_EUSAGE && strstr(E.msg, "lr_items_ins")); /* its trigger uses it */
  sq_sql_list_free(&l);
  CHECK(run(c, "ALTER TABLE lr_items ADD COLUMN extra TEXT") == 0);
  ops[0].name = "extra";
  CHECK(sq_schema_plan(c, ops, 1, 0, &l, &E) == SQ_OK && l.n == 1);
  for (int i = 0; l.n != 1 && i < l.n; i++) fprintf(stderr, "  %s\n", l.sql[i]);
  if (l.n == 1) CHECK_STR(l.sql[0], "ALTER TABLE \"lr_items\" DROP COLUMN \"extra\"");
  sq_sql_list_free(&l);
  ops[0].table = "lr_players";
  ops[0].name = "coins"; /* the generated column and the index use it */
  CHECK(sq_schema_plan(c, ops, 1, 0, &l, &E) == SQ_OK && l.n > 1);
  sq_sql_list_free(&l);
  /* a trigger using a removed column stops the rebuild, with nothing run */
  ops[0].name = "name";
  CHECK(apply(c, ops, 1) == SQ_EUSAGE && strstr(E.msg, "lr_players_ins"));
  CHECK(col_exists(c, LITE, "lr_players", "name") == 1);
  /* a key column can't be removed */
  ops[0].name = "id";
  CHECK(apply(c, ops, 1) == SQ_EUSAGE && strstr(E.msg, "primary key"));
  /* unique and foreign keys added and removed on SQLite */
  static const char *const nm[] = {"name"}, *const tm[] = {"team_id"};
  sq_sindex uq = {NULL, nm, 1, 0};
  sq_sop_init(&ops[0], SQ_SOP_ADD_UNIQUE, "lr_players");
  ops[0].index = &uq;
  sq_sop_init(&ops[1], SQ_SOP_REMOVE_FOREIGN_KEY, "lr_players");
  sq_sfk byc = {NULL, tm, 1, "lr_teams", NULL, 0, 0, 0, 0};
  ops[1].fk = &byc;
  APPLY_OK(c, ops, 2);
  CHECK(fk_count(c, LITE, "lr_players", "lr_teams") == 0);
  CHECK(runq(c, "INSERT INTO lr_players (name, code) VALUES ('cat', 'z')", NULL, 0, NULL, 1) == SQ_EUNIQUE);
  CHECK(sq_schema_plan(c, ops, 2, 0, &l, &E) == SQ_EUSAGE); /* the key is gone already */
  sq_sql_list_free(&l);
  /* an earlier op changing the table stops a plan that would read it */
  sq_scol nc;
  sq_scol_init(&nc, "code2", SQ_T_STRING);
  nc.length = 8;
  sq_sop_init(&ops[0], SQ_SOP_RENAME_COLUMN, "lr_players");
  ops[0].name = "code";
  ops[0].new_name = "code2";
  sq_sop_init(&ops[1], SQ_SOP_CHANGE_COLUMN, "lr_players");
  ops[1].name = "code2";
  ops[1].col = &nc;
  CHECK(sq_schema_plan(c, ops, 2, 0, &l, &E) == SQ_EUSAGE && strstr(E.msg, "sq_schema_apply") && l.n == 0);
  APPLY_OK(c, ops, 2); /* applied, each op is planned in turn */
  CHECK(col_exists(c, LITE, "lr_players", "code2") == 1);
  /* comments around the parts of a hand-written table, CAST ... AS in a
   * CHECK (not a generated column), a virtual table refused */
  CHECK(run(c, "CREATE TABLE lr_c (\n  a INTEGER, -- first\n  b TEXT /* block */ NOT NULL DEFAULT 'x' "
               "CHECK (CAST(b AS TEXT) <> 'no') -- last\n) -- end") == 0);
  CHECK(run(c, "INSERT INTO lr_c VALUES (1, 'y')") == 0);
  sq_scol bc;
  sq_scol_init(&bc, "b", SQ_T_STRING);
  bc.length = 10;
  sq_sop_init(&ops[0], SQ_SOP_CHANGE_COLUMN, "lr_c");
  ops[0].name = "b";
  ops[0].col = &bc;
  APPLY_OK(c, ops, 1);
  CHECK(count(c, "SELECT count(*) FROM lr_c WHERE a = 1 AND b = 'y'") == 1);
  CHECK(col_notnull(c, LITE, "lr_c", "b") == 0);
  CHECK(runq(c, "INSERT INTO lr_c VALUES (2, 'no')", NULL, 0, NULL, 1) == SQ_ECONSTRAINT);
  /* names and literals holding commas, parentheses and quotes split right */
  CHECK(run(c, "CREATE TABLE \"lr,w(\" (\"a,(b\" INTEGER PRIMARY KEY, [c,d] TEXT DEFAULT 'x,(y'')', "
               "`e)f` TEXT, CONSTRAINT \"k,1\" UNIQUE ([c,d], `e)f`), CHECK (\"a,(b\" > 0)) WITHOUT ROWID") == 0);
  CHECK(run(c, "INSERT INTO \"lr,w(\" (\"a,(b\", `e)f`) VALUES (1, 'z')") == 0);
  sq_scol ef;
  sq_scol_init(&ef, "e)f", SQ_T_STRING);
  ef.length = 5;
  ef.allow_null = 0;
  ef.default_kind = SQ_DEFAULT_VALUE;
  ef.default_value = sq_text("d", 1);
  sq_sop_init(&ops[0], SQ_SOP_CHANGE_COLUMN, "lr,w(");
  ops[0].name = "e)f";
  ops[0].col = &ef;
  CHECK(sq_schema_plan(c, ops, 1, 0, &l, &E) == SQ_OK && l.n >= 2);
  if (l.n >= 2)
    CHECK_STR(l.sql[1], "CREATE TABLE \"lr,w(__sqorm_new\" (\"a,(b\" INTEGER PRIMARY KEY, [c,d] TEXT DEFAULT "
                        "'x,(y'')', \"e)f\" VARCHAR(5) NOT NULL DEFAULT 'd', CONSTRAINT \"k,1\" UNIQUE ([c,d], "
                        "`e)f`), CHECK (\"a,(b\" > 0)) WITHOUT ROWID");
  sq_sql_list_free(&l);
  APPLY_OK(c, ops, 1);
  CHECK(count(c, "SELECT count(*) FROM \"lr,w(\" WHERE [c,d] = 'x,(y'')' AND `e)f` = 'z'") == 1);
  CHECK(runq(c, "INSERT INTO \"lr,w(\" (\"a,(b\", `e)f`) VALUES (2, 'z')", NULL, 0, NULL, 1) == SQ_EUNIQUE);
  CHECK(runq(c, "INSERT INTO \"lr,w(\" (\"a,(b\") VALUES (-1)", NULL, 0, NULL, 1) == SQ_ECONSTRAINT);
  CHECK(run(c, "DROP TABLE \"lr,w(\"") == 0);
  CHECK(run(c, "CREATE VIRTUAL TABLE lr_v USING rtree(id, x0, x1)") == 0);
  sq_sop_init(&ops[0], SQ_SOP_CHANGE_COLUMN, "lr_v");
  bc.name = "x0";
  ops[0].name = "x0";
  ops[0].col = &bc;
  CHECK(apply(c, ops, 1) == SQ_EUSAGE && strstr(E.msg, "virtual"));
  static const char *const drops[] = {"DROP TABLE lr_v", "DROP TABLE lr_c", "DROP VIEW lr_rich", "DROP TABLE lr_items", "DROP TABLE lr_players",
                                      "DROP TABLE lr_teams", "DROP TABLE lr_log", NULL};
  for (int i = 0; drops[i]; i++) CHECK(run(c, drops[i]) == 0);
}

/* ------------------------------------------------------------------ */
/* sync's difference as ops                                             */
/* ------------------------------------------------------------------ */

static sq_model *model(const char *name, const char *table, int version) {
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.table_name = table;
  o.timestamps = 0;
  sq_model *m = NULL;
  if (sq_model_new(name, &o, &m, &E)) return NULL;
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = "id";
  d.type = SQ_T_INTEGER;
  d.primary_key = 1;
  d.auto_increment = 1;
  sq_model_add_column(m, &d, &E);
  memset(&d, 0, sizeof d);
  d.name = "name";
  d.type = SQ_T_STRING;
  d.length = version > 1 ? 64 : 32;
  d.allow_null = 1;
  d.unique = "";
  sq_model_add_column(m, &d, &E);
  if (version > 1) {
    memset(&d, 0, sizeof d);
    d.name = "coins";
    d.type = SQ_T_INTEGER;
    d.allow_null = 0;
    d.default_kind = SQ_DEFAULT_VALUE;
    d.default_value = sq_int(0);
    sq_model_add_column(m, &d, &E);
    const char *ic[] = {"coins"};
    sq_model_add_index(m, NULL, ic, 1, 0, &E);
  }
  if (sq_model_finish(m, &E)) {
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static void live_diff(sq_conn *c, int d) {
  printf("live diff %s\n", sq_dialect_name(d));
  drop(c, "sqo_members");
  drop(c, "sqo_clubs");
  sq_model *club = model("club", "sqo_clubs", 2), *m1 = model("member", "sqo_members", 1),
           *m2 = model("member", "sqo_members", 2);
  if (!club || !m1 || !m2) goto out;
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  CHECK(sq_model_associate(m2, SQ_ASSOC_BELONGS_TO, club, &o, NULL, &E) == SQ_OK);
  /* no tables: two creates (the club first, it is referenced) */
  sq_model *ms1[] = {m1};
  sq_sop_list ops = {0};
  CHECK(sq_schema_diff(c, ms1, 1, 0, &ops, &E) == SQ_OK && ops.n == 1);
  if (ops.n == 1) CHECK(ops.ops[0].kind == SQ_SOP_CREATE_TABLE && ops.ops[0].if_exists == 1);
  CHECK(sq_schema_apply(c, ops.ops, ops.n, SQ_SCHEMA_ONE_ALTER, log_sql, NULL, &E) == SQ_OK);
  sq_sop_list_free(&ops);
  CHECK(run(c, "INSERT INTO sqo_members (name) VALUES ('ann')") == 0);
  CHECK(run(c, "ALTER TABLE sqo_members ADD COLUMN legacy TEXT") == 0);
  CHECK(run(c, "UPDATE sqo_members SET legacy = 'kept'") == 0);
  CHECK(run(c, "CREATE INDEX sqo_members_by_hand ON sqo_members (legacy)") == 0);

  sq_model *ms2[] = {m2, club};
  CHECK(sq_schema_diff(c, ms2, 2, 0, &ops, &E) == SQ_EUSAGE && strstr(E.msg, "legacy"));
  sq_sop_list_free(&ops);
  CHECK(sq_schema_diff(c, ms2, 2, SQ_DIFF_NOTES, &ops, &E) == SQ_OK);
  int kinds[SQ_SOP_COUNT] = {0};
  for (int i = 0; i < ops.n; i++) kinds[ops.ops[i].kind]++;
  CHECK(ops.n > 0 && ops.ops[0].kind == SQ_SOP_CREATE_TABLE && !strcmp(ops.ops[0].table, "sqo_clubs"));
  CHECK(kinds[SQ_SOP_CREATE_TABLE] == 1 && kinds[SQ_SOP_ADD_COLUMN] == 2); /* coins, club_id */
  CHECK(kinds[SQ_SOP_CHANGE_COLUMN] == 1 && kinds[SQ_SOP_REMOVE_COLUMN] == 0);
  CHECK(kinds[SQ_SOP_ADD_INDEX] == 2 && kinds[SQ_SOP_ADD_FOREIGN_KEY] == 1);
  CHECK(kinds[SQ_SOP_NOTE] == 3); /* legacy holds data, the hand-made index, what is never compared */
  for (int i = 0; i < ops.n; i++) {
    const sq_sop *op = &ops.ops[i];
    if (op->kind == SQ_SOP_CHANGE_COLUMN) {
      CHECK_STR(op->name, "name");
      CHECK(op->col && op->col->length == 64 && (op->change & SQ_CHANGE_TYPE) && !(op->change & SQ_CHANGE_NULL));
    }
    if (op->kind == SQ_SOP_ADD_FOREIGN_KEY) {
      CHECK_STR(op->fk->ref_table, "sqo_clubs");
      CHECK(op->fk->on_delete == SQ_FK_SET_NULL && op->fk->on_update == SQ_FK_CASCADE);
    }
    if (op->kind == SQ_SOP_NOTE && getenv("VERBOSE")) printf("  note: %s\n", op->note);
  }
  /* rendering the list is sync's plans, applying it makes the next difference empty */
  CHECK(sq_schema_apply(c, ops.ops, ops.n, SQ_SCHEMA_ONE_ALTER, log_sql, NULL, &E) == SQ_OK);
  if (E.kind) fprintf(stderr, "apply diff: %s\n", E.msg);
  sq_sop_list_free(&ops);
  CHECK(sq_schema_diff(c, ms2, 2, SQ_DIFF_NOTES, &ops, &E) == SQ_OK);
  for (int i = 0; i < ops.n; i++) {
    CHECK(ops.ops[i].kind == SQ_SOP_NOTE);
    if (ops.ops[i].kind != SQ_SOP_NOTE) fprintf(stderr, "left: %s %s\n", sq_sop_kind_name(ops.ops[i].kind), ops.ops[i].table);
  }
  sq_sop_list_free(&ops);
  sq_sql_list l = {0};
  CHECK(sq_plan_alter_ex(c, m2, 0, &l, &E) == SQ_EUSAGE); /* legacy: sync still refuses */
  CHECK(sq_plan_alter_ex(c, m2, SQ_ALTER_DROP, &l, &E) == SQ_OK && l.n >= 1);
  sq_sql_list_free(&l);
  CHECK(sq_plan_alter_fks(c, m2, &l, &E) == SQ_OK && l.n == 0);
  sq_sql_list_free(&l);
  CHECK(count(c, "SELECT coins FROM sqo_members WHERE name = 'ann'") == 0);
  CHECK(fk_count(c, d, "sqo_members", "sqo_clubs") == 1);
  /* sq_sop_from_model is sq_render_create */
  CHECK(sq_sop_from_model(club, &ops, &E) == SQ_OK && ops.n == 1);
  sq_sql_list want = {0};
  CHECK(sq_schema_render(ops.ops, 1, d, 0, &l, &E) == SQ_OK);
  CHECK(sq_render_create(club, d, 0, &want, &E) == SQ_OK);
  CHECK(l.n == want.n);
  for (int i = 0; i < l.n && i < want.n; i++) CHECK_STR(l.sql[i], want.sql[i]);
  sq_sql_list_free(&l);
  sq_sql_list_free(&want);
  sq_sop_list_free(&ops);
out:
  drop(c, "sqo_members");
  drop(c, "sqo_clubs");
  sq_model_free(m2);
  sq_model_free(m1);
  sq_model_free(club);
}

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

static sq_pool *open_pool(int dialect, const char *P) {
  char k[64];
  sq_config cfg;
  sq_config_init(&cfg);
  sq_pool *pool = NULL;
  int rc;
  if (dialect == LITE) {
    rc = sq_config_parse_url(&cfg, "sqlite::memory:", &E);
  } else {
    static const char *const keys[][2] = {
        {"HOST", "host"}, {"PORT", "port"}, {"USER", "user"}, {"PASSWORD", "password"}, {"DB", "database"}};
    snprintf(k, sizeof k, "SQORM_TEST_%s_HOST", P);
    if (!env(k)) {
      sq_config_free(&cfg);
      return NULL;
    }
    rc = sq_config_set(&cfg, "dialect", dialect == MY ? "mysql" : "postgres", &E);
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
    live_ops(c, dialect);
    live_atomic(c, dialect);
    live_diff(c, dialect);
    if (dialect == LITE) sqlite_rebuild(c);
    sq_pool_release(pool, c);
  }
  sq_pool_close(pool);
}

int main(void) {
  if (sq_global_init(&E) != SQ_OK) {
    fprintf(stderr, "global init: %s\n", E.msg);
    return 1;
  }
  test_create_drop_rename();
  test_columns();
  test_keys();
  test_enum_values();
  test_hostile();
  test_refused();
  test_live(LITE, "SQLITE");
  test_live(MY, "MYSQL");
  test_live(PG, "PG");
  return CHECK_DONE();
}
