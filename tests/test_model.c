/* test_model.c - pluralisation, model defaults and checks, identifier
 * rules and quoting, coercion per type, validation messages, the arena,
 * datetimes and UUIDs. No database. */
#include "sqorm.h"
#include "check.h"

#include <stdint.h>
#include <stdlib.h>

static void plural(const char *w, const char *want) {
  char out[128];
  sq_pluralize(w, out, sizeof out);
  CHECK_STR(out, want);
}

static void test_pluralize(void) {
  static const char *const table[][2] = {
    {"user", "users"},         {"player", "players"},       {"person", "people"},
    {"Person", "People"},      {"PERSON", "PEOPLE"},        {"child", "children"},
    {"man", "men"},            {"woman", "women"},          {"mouse", "mice"},
    {"goose", "geese"},        {"tooth", "teeth"},          {"foot", "feet"},
    {"ox", "oxen"},            {"sheep", "sheep"},          {"fish", "fish"},
    {"series", "series"},      {"species", "species"},      {"news", "news"},
    {"equipment", "equipment"}, {"information", "information"}, {"rice", "rice"},
    {"money", "money"},        {"category", "categories"},  {"City", "Cities"},
    {"day", "days"},           {"key", "keys"},             {"bus", "buses"},
    {"status", "statuses"},    {"class", "classes"},        {"box", "boxes"},
    {"quiz", "quizzes"},       {"buzz", "buzzes"},          {"church", "churches"},
    {"dish", "dishes"},        {"leaf", "leaves"},          {"knife", "knives"},
    {"wife", "wives"},         {"life", "lives"},           {"half", "halves"},
    {"wolf", "wolves"},        {"shelf", "shelves"},        {"thief", "thieves"},
    {"calf", "calves"},        {"roof", "roofs"},           {"hero", "heroes"},
    {"potato", "potatoes"},    {"tomato", "tomatoes"},      {"echo", "echoes"},
    {"photo", "photos"},       {"analysis", "analyses"},    {"users", "users"},
    {"people", "people"},      {"children", "children"},    {"super_user", "super_users"},
    {"game_person", "game_people"}, {"game_Person", "game_People"}, {"item_category", "item_categories"},
    {"x", "xes"},              {"", ""},                    {"trailing_", "trailing_"},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) plural(table[i][0], table[i][1]);
  char small[6];
  sq_pluralize("category", small, sizeof small); /* truncated, still terminated */
  CHECK_STR(small, "categ");
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

static int colnames(const sq_model *m, char *out, size_t n) {
  out[0] = '\0';
  for (int i = 0; i < sq_model_ncols(m); i++) {
    if (i) strncat(out, ",", n - strlen(out) - 1);
    strncat(out, sq_model_col(m, i)->name, n - strlen(out) - 1);
  }
  return sq_model_ncols(m);
}

static void test_defaults(void) {
  sq_err e;
  sq_model *m;
  char names[256];

  /* Implicit id, timestamps on, plural table name. */
  CHECK(sq_model_new("player", NULL, &m, &e) == SQ_OK);
  sq_coldef d = coldef("name", SQ_T_STRING);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  CHECK_STR(sq_model_table(m), "players");
  CHECK_STR(sq_model_name(m), "player");
  CHECK(colnames(m, names, sizeof names) == 4);
  CHECK_STR(names, "id,name,created_at,updated_at");
  const sq_col *id = sq_model_col(m, 0);
  CHECK(id->primary_key && id->auto_increment && !id->allow_null && id->type == SQ_T_INTEGER);
  CHECK(sq_model_col(m, 1)->length == 255);
  const int *pk;
  CHECK(sq_model_pk(m, &pk) == 1 && pk[0] == 0);
  CHECK(sq_model_role_col(m, SQ_ROLE_CREATED_AT) == 2);
  CHECK(sq_model_role_col(m, SQ_ROLE_UPDATED_AT) == 3);
  CHECK(sq_model_role_col(m, SQ_ROLE_DELETED_AT) == -1);
  const sq_col *ca = sq_model_col(m, 2);
  CHECK(ca->type == SQ_T_DATETIME && !ca->allow_null && ca->role == SQ_ROLE_CREATED_AT);
  CHECK(sq_model_find(m, "name", 4) == 1);
  CHECK(sq_model_find(m, "updated_at", 10) == 3);
  CHECK(sq_model_find(m, "nam", 3) == -1);
  CHECK(sq_model_find(m, "names", 5) == -1);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_EUSAGE); /* finished */
  sq_model_free(m);

  /* Options: table name, timestamps off, paranoid, custom names. */
  sq_model_opts o = {"people_tbl", 0, NULL, NULL, 1, "removed_at", NULL};
  CHECK(sq_model_new("person", &o, &m, &e) == SQ_OK);
  d = coldef("uid", SQ_T_UUID);
  d.primary_key = 1;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  CHECK_STR(sq_model_table(m), "people_tbl");
  colnames(m, names, sizeof names);
  CHECK_STR(names, "uid,removed_at");
  CHECK(sq_model_role_col(m, SQ_ROLE_DELETED_AT) == 1);
  CHECK(sq_model_col(m, 1)->allow_null);
  CHECK(!sq_model_col(m, 0)->allow_null); /* keys are never null */
  sq_model_free(m);

  /* Default table of a snake_case name; custom timestamp names; a user
   * column of a timestamp's name takes the role; composite key. */
  sq_model_opts o2 = {NULL, -1, "made", NULL, 0, NULL, NULL};
  CHECK(sq_model_new("game_person", &o2, &m, &e) == SQ_OK);
  d = coldef("a", SQ_T_INTEGER); d.primary_key = 1;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d = coldef("b", SQ_T_STRING); d.primary_key = 1; d.length = 10;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d = coldef("updated_at", SQ_T_DATETIME);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  CHECK_STR(sq_model_table(m), "game_people");
  colnames(m, names, sizeof names);
  CHECK_STR(names, "a,b,updated_at,made");
  CHECK(sq_model_pk(m, &pk) == 2 && pk[0] == 0 && pk[1] == 1);
  CHECK(sq_model_role_col(m, SQ_ROLE_UPDATED_AT) == 2);
  CHECK(sq_model_col(m, 2)->role == SQ_ROLE_UPDATED_AT && sq_model_col(m, 2)->allow_null); /* user's definition kept */
  CHECK(sq_model_role_col(m, SQ_ROLE_CREATED_AT) == 3);
  sq_model_free(m);

  /* auto_increment without primary_key makes the key; indexes. */
  CHECK(sq_model_new("score", NULL, &m, &e) == SQ_OK);
  d = coldef("sid", SQ_T_BIGINT); d.auto_increment = 1;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d = coldef("level", SQ_T_SMALLINT);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  const char *ic[] = {"level", "created_at"};
  CHECK(sq_model_add_index(m, NULL, ic, 2, 0, &e) == SQ_OK);
  CHECK(sq_model_add_index(m, "by_level", ic, 1, 1, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  CHECK(sq_model_pk(m, &pk) == 1 && pk[0] == 0);
  CHECK(sq_model_nindexes(m) == 2);
  const char *iname;
  int uniq, nic;
  const int *icols;
  sq_model_index(m, 0, &iname, &uniq, &icols, &nic);
  CHECK_STR(iname, "scores_level_created_at");
  CHECK(!uniq && nic == 2 && icols[0] == 1 && icols[1] == 2);
  sq_model_index(m, 1, &iname, &uniq, &icols, &nic);
  CHECK_STR(iname, "by_level");
  CHECK(uniq && nic == 1);
  sq_model_free(m);

  /* A generated index name that would be too long is shortened. */
  CHECK(sq_model_new("a_very_long_model_name_for_testing_index_names", NULL, &m, &e) == SQ_OK);
  d = coldef("some_rather_long_column_name", SQ_T_INTEGER);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  const char *lc[] = {"some_rather_long_column_name"};
  CHECK(sq_model_add_index(m, NULL, lc, 1, 0, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  sq_model_index(m, 0, &iname, NULL, NULL, NULL);
  CHECK(strlen(iname) == 63);
  sq_model_free(m);

  /* Many columns: lookup through the hash after growth. */
  CHECK(sq_model_new("wide", NULL, &m, &e) == SQ_OK);
  char cn[200][8];
  for (int i = 0; i < 200; i++) {
    snprintf(cn[i], sizeof cn[i], "c%d", i);
    d = coldef(cn[i], SQ_T_INTEGER);
    CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  }
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  int found = 0;
  for (int i = 0; i < 200; i++) found += sq_model_find(m, cn[i], strlen(cn[i])) == i + 1;
  CHECK(found == 200);
  sq_model_free(m);
}

/* Builds a one-column model and returns the finish status (or the first
 * failure). */
static int one_col(const char *model, const char *table, sq_coldef d, sq_err *e) {
  sq_model *m;
  sq_model_opts o = {table, -1, NULL, NULL, 0, NULL, NULL};
  int rc = sq_model_new(model, &o, &m, e);
  if (rc) return rc;
  rc = sq_model_add_column(m, &d, e);
  if (!rc) rc = sq_model_finish(m, e);
  sq_model_free(m);
  return rc;
}

static void test_bad_models(void) {
  sq_err e;
  sq_model *m;
  char long64[65];
  memset(long64, 'a', 64);
  long64[64] = '\0';

  CHECK(one_col("ok", NULL, coldef("fine", SQ_T_TEXT), &e) == SQ_OK);
  CHECK(one_col("", NULL, coldef("fine", SQ_T_TEXT), &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "empty") != NULL);
  CHECK(one_col("ok", NULL, coldef("", SQ_T_TEXT), &e) == SQ_EUSAGE);
  CHECK(one_col("ok", NULL, coldef(long64, SQ_T_TEXT), &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "63") != NULL);
  CHECK(one_col(long64, "t", coldef("x", SQ_T_TEXT), &e) == SQ_EUSAGE);
  CHECK(one_col("ok", long64, coldef("x", SQ_T_TEXT), &e) == SQ_EUSAGE);
  long64[63] = '\0'; /* 63 bytes is fine */
  CHECK(one_col("ok", NULL, coldef(long64, SQ_T_TEXT), &e) == SQ_OK);
  CHECK(one_col("ok", NULL, coldef("a\nb", SQ_T_TEXT), &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "control") != NULL && strstr(e.msg, "a\\x0ab") != NULL);
  CHECK(one_col("ok", NULL, coldef("a\x7f", SQ_T_TEXT), &e) == SQ_EUSAGE);
  CHECK(one_col("ok", NULL, coldef("a\xc2\x85", SQ_T_TEXT), &e) == SQ_EUSAGE); /* U+0085 */
  CHECK(one_col("ok", NULL, coldef("bad\xff", SQ_T_TEXT), &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "UTF-8") != NULL);
  CHECK(one_col("ok", NULL, coldef("\xc0\xaf", SQ_T_TEXT), &e) == SQ_EUSAGE); /* overlong */
  CHECK(one_col("ok", NULL, coldef("\xed\xa0\x80", SQ_T_TEXT), &e) == SQ_EUSAGE); /* surrogate */
  CHECK(one_col("ok", "bad\ttable", coldef("x", SQ_T_TEXT), &e) == SQ_EUSAGE);
  /* Legal but quoted: keywords, spaces, quotes, unicode. */
  CHECK(one_col("select", NULL, coldef("order", SQ_T_TEXT), &e) == SQ_OK);
  CHECK(one_col("ok", NULL, coldef("with space", SQ_T_TEXT), &e) == SQ_OK);
  CHECK(one_col("ok", NULL, coldef("a\"b`c'd", SQ_T_TEXT), &e) == SQ_OK);
  CHECK(one_col("ok", NULL, coldef("x; DROP TABLE y", SQ_T_TEXT), &e) == SQ_OK);
  CHECK(one_col("ok", NULL, coldef("pi\xc3\xb1" "ata", SQ_T_TEXT), &e) == SQ_OK);

  /* Type rules. */
  sq_coldef d = coldef("x", SQ_T_TEXT);
  d.auto_increment = 1;
  CHECK(one_col("ok", NULL, d, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "integer") != NULL);
  d = coldef("x", SQ_T_STRING); d.length = -1;
  CHECK(one_col("ok", NULL, d, &e) == SQ_EUSAGE);
  d = coldef("x", SQ_T_DECIMAL); d.precision = 5; d.scale = 6;
  CHECK(one_col("ok", NULL, d, &e) == SQ_EUSAGE);
  d = coldef("x", 99);
  CHECK(one_col("ok", NULL, d, &e) == SQ_EUSAGE);
  d = coldef("x", SQ_T_INTEGER); d.default_kind = SQ_DEFAULT_VALUE; d.default_value = sq_text("abc", 3);
  CHECK(one_col("ok", NULL, d, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "expects an integer") != NULL);
  d = coldef("x", SQ_T_INTEGER); d.default_kind = SQ_DEFAULT_NOW;
  CHECK(one_col("ok", NULL, d, &e) == SQ_EUSAGE);
  d = coldef("x", SQ_T_INTEGER); d.unique = "bad\x01";
  CHECK(one_col("ok", NULL, d, &e) == SQ_EUSAGE);
  /* A column "id" that isn't the key. */
  CHECK(one_col("ok", NULL, coldef("id", SQ_T_INTEGER), &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "primary") != NULL);
  /* A timestamp-named column of the wrong type. */
  CHECK(one_col("ok", NULL, coldef("created_at", SQ_T_INTEGER), &e) == SQ_EUSAGE);

  /* Duplicate columns, bad indexes, double auto_increment. */
  CHECK(sq_model_new("dup", NULL, &m, &e) == SQ_OK);
  d = coldef("a", SQ_T_INTEGER);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "two columns") != NULL);
  const char *bad[] = {"nope"};
  CHECK(sq_model_add_index(m, NULL, bad, 1, 0, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "nope") != NULL);
  sq_model_free(m);

  CHECK(sq_model_new("dup", NULL, &m, &e) == SQ_OK);
  const char *twice[] = {"a", "a"};
  CHECK(sq_model_add_index(m, NULL, twice, 2, 0, &e) == SQ_EUSAGE);
  CHECK(sq_model_add_index(m, "ix\n", twice, 1, 0, &e) == SQ_EUSAGE);
  CHECK(sq_model_add_index(m, "ix", twice, 0, 0, &e) == SQ_EUSAGE);
  d = coldef("a", SQ_T_INTEGER); d.auto_increment = 1;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d = coldef("b", SQ_T_INTEGER); d.auto_increment = 1;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_EUSAGE);
  sq_model_free(m);

  /* auto_increment on a non-key column when another column is the key. */
  CHECK(sq_model_new("ai", NULL, &m, &e) == SQ_OK);
  d = coldef("k", SQ_T_STRING); d.primary_key = 1;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d = coldef("n", SQ_T_INTEGER); d.auto_increment = 1;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_EUSAGE);
  sq_model_free(m);

  /* Paranoid with a NOT NULL deleted_at of the user's. */
  sq_model_opts po = {NULL, 0, NULL, NULL, 1, NULL, NULL};
  CHECK(sq_model_new("p", &po, &m, &e) == SQ_OK);
  d = coldef("deleted_at", SQ_T_DATETIME); d.allow_null = 0;
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_EUSAGE);
  sq_model_free(m);
}

static void quote(int dialect, const char *name, const char *want) {
  char out[160];
  sq_err e;
  CHECK(sq_quote_ident(dialect, name, strlen(name), out, sizeof out, &e) == SQ_OK);
  CHECK_STR(out, want);
}

static void test_quote(void) {
  quote(SQ_DIALECT_POSTGRES, "a\"b", "\"a\"\"b\"");
  quote(SQ_DIALECT_SQLITE, "a\"b", "\"a\"\"b\"");
  quote(SQ_DIALECT_MYSQL, "a`b", "`a``b`");
  quote(SQ_DIALECT_MYSQL, "a\"b", "`a\"b`");
  quote(SQ_DIALECT_POSTGRES, "a`b", "\"a`b\"");
  quote(SQ_DIALECT_POSTGRES, "x; DROP TABLE y", "\"x; DROP TABLE y\"");
  quote(SQ_DIALECT_MYSQL, "x`; DROP TABLE y; --", "`x``; DROP TABLE y; --`");
  quote(SQ_DIALECT_SQLITE, "select", "\"select\"");
  char out[160];
  sq_err e;
  CHECK(sq_quote_ident(SQ_DIALECT_SQLITE, "a\0b", 3, out, sizeof out, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "NUL") != NULL);
  CHECK(sq_quote_ident(SQ_DIALECT_SQLITE, "", 0, out, sizeof out, &e) == SQ_EUSAGE);
  CHECK(sq_quote_ident(SQ_DIALECT_SQLITE, "a\x1b[2J", 5, out, sizeof out, &e) == SQ_EUSAGE);
  CHECK(sq_quote_ident(SQ_DIALECT_MYSQL, "trailing ", 9, out, sizeof out, &e) == SQ_EUSAGE);
  CHECK(sq_quote_ident(SQ_DIALECT_POSTGRES, "trailing ", 9, out, sizeof out, &e) == SQ_OK);
  CHECK(sq_quote_ident(SQ_DIALECT_MYSQL, "\xf0\x9f\x98\x80", 4, out, sizeof out, &e) == SQ_EUSAGE);
  CHECK(sq_quote_ident(SQ_DIALECT_POSTGRES, "\xf0\x9f\x98\x80", 4, out, sizeof out, &e) == SQ_OK);
  CHECK(sq_quote_ident(SQ_DIALECT_POSTGRES, "abc", 3, out, 4, &e) == SQ_EUSAGE); /* too small */
  CHECK(sq_quote_ident(SQ_DIALECT_POSTGRES, "abc", 3, out, 6, &e) == SQ_OK);
  /* The longest legal name made only of quote chars fits 2*63+3. */
  char q63[64];
  memset(q63, '"', 63);
  q63[63] = '\0';
  char big[2 * 63 + 3];
  CHECK(sq_quote_ident(SQ_DIALECT_POSTGRES, q63, 63, big, sizeof big, &e) == SQ_OK);
  CHECK(strlen(big) == 2 * 63 + 2);
  CHECK(sq_dialect_ph_style(SQ_DIALECT_POSTGRES) == SQ_PH_DOLLAR);
  CHECK(sq_dialect_ph_style(SQ_DIALECT_MYSQL) == (SQ_PH_QMARK | SQ_PH_BACKSLASH));
  CHECK(sq_dialect_ph_style(SQ_DIALECT_SQLITE) == SQ_PH_QMARK);
  CHECK_STR(sq_ctype_name(SQ_T_STRING), "STRING");
  CHECK_STR(sq_ctype_name(SQ_T_UUID), "UUID");
  CHECK_STR(sq_ctype_name(0), "UNKNOWN");
}

/* ---- coercion ---- */

static sq_col mkcol(int type) {
  sq_col c;
  memset(&c, 0, sizeof c);
  c.name = "coins";
  c.name_len = 5;
  c.type = type;
  c.allow_null = 1;
  if (type == SQ_T_STRING) c.length = 255;
  if (type == SQ_T_DECIMAL) { c.precision = 10; c.scale = 2; }
  return c;
}

/* Formats a value as "i:5", "f:1.5", "b:1", "s:abc", "x:abc", "n". */
static const char *vstr(const sq_value *v) {
  static char out[128];
  switch (v->type) {
  case SQ_VNULL: snprintf(out, sizeof out, "n"); break;
  case SQ_VINT: snprintf(out, sizeof out, "i:%lld", (long long)v->u.i); break;
  case SQ_VFLOAT: snprintf(out, sizeof out, "f:%.17g", v->u.f); break;
  case SQ_VBOOL: snprintf(out, sizeof out, "b:%d", v->u.b); break;
  case SQ_VTEXT: snprintf(out, sizeof out, "s:%.*s", (int)v->u.s.n, v->u.s.p); break;
  default: snprintf(out, sizeof out, "x:%.*s", (int)v->u.s.n, v->u.s.p); break;
  }
  return out;
}

static void ok(int type, sq_value in, const char *want) {
  sq_col c = mkcol(type);
  char buf[40];
  sq_err e;
  sq_err_clear(&e);
  int rc = sq_coerce(&c, &in, buf, &e);
  CHECK(rc == SQ_OK);
  if (rc) fprintf(stderr, "  (%s: %s)\n", want, e.msg);
  CHECK_STR(vstr(&in), want);
}

static void bad(int type, sq_value in, const char *msg_part) {
  sq_col c = mkcol(type);
  char buf[40];
  sq_err e;
  CHECK(sq_coerce(&c, &in, buf, &e) == SQ_EUSAGE);
  if (!strstr(e.msg, msg_part)) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", e.msg, msg_part);
  CHECK(strstr(e.msg, msg_part) != NULL);
}

#define S(lit) sq_text(lit, sizeof(lit) - 1)

static void test_coerce(void) {
  /* integers */
  ok(SQ_T_INTEGER, sq_int(5), "i:5");
  ok(SQ_T_INTEGER, sq_float(3.0), "i:3");
  ok(SQ_T_INTEGER, S("1"), "i:1");
  ok(SQ_T_INTEGER, S("-42"), "i:-42");
  ok(SQ_T_BIGINT, S("9223372036854775807"), "i:9223372036854775807");
  ok(SQ_T_BIGINT, S("-9223372036854775808"), "i:-9223372036854775808");
  ok(SQ_T_INTEGER, sq_null(), "n");
  bad(SQ_T_INTEGER, S("abc"), "column 'coins' expects an integer, got string 'abc'");
  bad(SQ_T_INTEGER, S("1.5"), "got string '1.5'");
  bad(SQ_T_INTEGER, S(""), "expects an integer");
  bad(SQ_T_INTEGER, S(" 1"), "expects an integer");
  bad(SQ_T_INTEGER, S("1 OR 1=1"), "expects an integer");
  bad(SQ_T_BIGINT, S("9223372036854775808"), "expects an integer");
  bad(SQ_T_INTEGER, sq_float(1.5), "got float 1.5");
  bad(SQ_T_INTEGER, sq_bool(1), "got boolean true");
  bad(SQ_T_INTEGER, sq_int(3000000000LL), "between -2147483648 and 2147483647");
  bad(SQ_T_SMALLINT, sq_int(40000), "between -32768 and 32767");
  ok(SQ_T_SMALLINT, sq_int(-32768), "i:-32768");
  bad(SQ_T_BIGINT, sq_float(1e300), "expects an integer");
  /* floats */
  ok(SQ_T_DOUBLE, sq_float(1.5), "f:1.5");
  ok(SQ_T_DOUBLE, sq_int(7), "f:7");
  ok(SQ_T_FLOAT, S("2.5e3"), "f:2500");
  ok(SQ_T_FLOAT, S("-.5"), "f:-0.5");
  bad(SQ_T_FLOAT, S("nan"), "expects a number");
  bad(SQ_T_FLOAT, S("0x10"), "expects a number");
  bad(SQ_T_FLOAT, sq_float(1.0 / 0.0), "expects a number");
  bad(SQ_T_DOUBLE, sq_bool(0), "got boolean false");
  bad(SQ_T_DOUBLE, sq_int(INT64_MAX), "expects a number");
  /* decimals: exact text */
  ok(SQ_T_DECIMAL, sq_int(12), "s:12");
  ok(SQ_T_DECIMAL, sq_float(19.99), "s:19.99");
  ok(SQ_T_DECIMAL, sq_float(0.1), "s:0.1");
  ok(SQ_T_DECIMAL, S("-12345678.90"), "s:-12345678.90");
  ok(SQ_T_DECIMAL, S("0.5"), "s:0.5");
  bad(SQ_T_DECIMAL, S("1.234"), "does not fit DECIMAL(10,2)");
  bad(SQ_T_DECIMAL, S("123456789"), "does not fit DECIMAL(10,2)");
  bad(SQ_T_DECIMAL, sq_float(1.0 / 3.0), "does not fit");
  bad(SQ_T_DECIMAL, S("1e3"), "expects a decimal number");
  bad(SQ_T_DECIMAL, S("ten"), "expects a decimal number");
  bad(SQ_T_DECIMAL, sq_bool(1), "expects a decimal number");
  /* strings */
  ok(SQ_T_STRING, S("hello"), "s:hello");
  ok(SQ_T_STRING, sq_int(42), "s:42");
  ok(SQ_T_TEXT, sq_float(2.5), "s:2.5");
  ok(SQ_T_CHAR, S("x"), "s:x");
  bad(SQ_T_STRING, sq_bool(1), "expects a string, got boolean true");
  bad(SQ_T_TEXT, sq_blob("\x00\x01", 2), "binary string");
  /* uuid */
  ok(SQ_T_UUID, S("123e4567-e89b-42d3-a456-426614174000"), "s:123e4567-e89b-42d3-a456-426614174000");
  ok(SQ_T_UUID, S("123E4567-E89B-42D3-A456-426614174000"), "s:123e4567-e89b-42d3-a456-426614174000");
  ok(SQ_T_UUID, S("123e4567-E89b-42d3-a456-42661417400F"), "s:123e4567-e89b-42d3-a456-42661417400f");
  bad(SQ_T_UUID, S("123G4567-E89B-42D3-A456-426614174000"), "expects a UUID");
  bad(SQ_T_UUID, S("123e4567e89b42d3a456426614174000"), "expects a UUID");
  bad(SQ_T_UUID, sq_int(1), "expects a UUID");
  /* booleans */
  ok(SQ_T_BOOLEAN, sq_bool(1), "b:1");
  ok(SQ_T_BOOLEAN, sq_int(0), "b:0");
  ok(SQ_T_BOOLEAN, sq_int(1), "b:1");
  ok(SQ_T_BOOLEAN, S("true"), "b:1");
  ok(SQ_T_BOOLEAN, S("0"), "b:0");
  bad(SQ_T_BOOLEAN, sq_int(2), "expects a boolean, got integer 2");
  bad(SQ_T_BOOLEAN, S("yes"), "expects a boolean");
  /* dates and datetimes */
  ok(SQ_T_DATETIME, S("2024-02-29 13:45:07"), "s:2024-02-29 13:45:07");
  ok(SQ_T_DATETIME, S("2024-02-29T13:45:07Z"), "s:2024-02-29 13:45:07");
  ok(SQ_T_DATETIME, S("2024-02-29T13:45:07.123456Z"), "s:2024-02-29 13:45:07.123456");
  ok(SQ_T_DATETIME, S("2024-02-29 13:45:07.5"), "s:2024-02-29 13:45:07.5");
  ok(SQ_T_DATETIME, S("2024-02-29"), "s:2024-02-29 00:00:00");
  ok(SQ_T_DATETIME, sq_int(0), "s:1970-01-01 00:00:00");
  ok(SQ_T_DATETIME, sq_int(1700000000), "s:2023-11-14 22:13:20");
  ok(SQ_T_DATETIME, sq_int(-1), "s:1969-12-31 23:59:59");
  ok(SQ_T_DATETIME, sq_float(1.25), "s:1970-01-01 00:00:01.250000");
  ok(SQ_T_DATE, S("2024-02-29"), "s:2024-02-29");
  ok(SQ_T_DATE, S("2024-02-29 00:00:00"), "s:2024-02-29");
  ok(SQ_T_DATE, sq_int(1700000000), "s:2023-11-14");
  bad(SQ_T_DATE, S("2024-02-29 10:00:00"), "expects a date");
  bad(SQ_T_DATETIME, S("2023-02-29 10:00:00"), "expects a datetime");
  bad(SQ_T_DATETIME, S("2024-13-01"), "expects a datetime");
  bad(SQ_T_DATETIME, S("2024-01-01 24:00:00"), "expects a datetime");
  bad(SQ_T_DATETIME, S("2024-01-01 10:00"), "expects a datetime");
  bad(SQ_T_DATETIME, S("2024-01-01 10:00:00.1234567"), "expects a datetime");
  bad(SQ_T_DATETIME, S("yesterday"), "got string 'yesterday'");
  bad(SQ_T_DATETIME, sq_bool(1), "expects a datetime");
  bad(SQ_T_DATETIME, sq_int(INT64_MAX), "between years 1 and 9999");
  /* blobs */
  ok(SQ_T_BLOB, S("ab"), "x:ab");
  ok(SQ_T_BLOB, sq_blob("ab", 2), "x:ab");
  bad(SQ_T_BLOB, sq_int(1), "expects a binary string");

  /* Hostile text is shown escaped and shortened in messages. */
  sq_col c = mkcol(SQ_T_INTEGER);
  char buf[40];
  sq_err e;
  char big[300];
  memset(big, 'z', sizeof big);
  big[0] = '\n';
  sq_value v = sq_text(big, sizeof big);
  CHECK(sq_coerce(&c, &v, buf, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "'\\x0azzz") != NULL && strstr(e.msg, "...") != NULL && strlen(e.msg) < 200);
}

static void test_datetime_uuid(void) {
  char b[20];
  sq_format_datetime(0, b);
  CHECK_STR(b, "1970-01-01 00:00:00");
  sq_format_datetime(951782400, b); /* 2000-02-29 */
  CHECK_STR(b, "2000-02-29 00:00:00");
  sq_format_datetime(253402300799LL, b);
  CHECK_STR(b, "9999-12-31 23:59:59");
  sq_format_datetime(-62135596800LL, b);
  CHECK_STR(b, "0001-01-01 00:00:00");
  sq_format_datetime(INT64_MAX, b); /* clamped, never overflows b */
  CHECK_STR(b, "9999-12-31 23:59:59");

  char u1[37], u2[37];
  sq_err e;
  CHECK(sq_uuid_v4(u1, &e) == SQ_OK);
  CHECK(sq_uuid_v4(u2, &e) == SQ_OK);
  CHECK(strlen(u1) == 36 && strcmp(u1, u2) != 0);
  CHECK(u1[8] == '-' && u1[13] == '-' && u1[18] == '-' && u1[23] == '-');
  CHECK(u1[14] == '4');
  CHECK(strchr("89ab", u1[19]) != NULL);
  sq_col c = mkcol(SQ_T_UUID);
  sq_value v = sq_text(u1, 36);
  char buf[40];
  CHECK(sq_coerce(&c, &v, buf, &e) == SQ_OK);

  /* A default the coercion rewrote (lower case, a normalised datetime)
   * is copied into the model, not left pointing at a dead stack buffer. */
  sq_model *m = NULL;
  sq_model_opts o = {"things", -1, NULL, NULL, 0, NULL, NULL};
  CHECK(sq_model_new("thing", &o, &m, &e) == SQ_OK);
  if (!m) return;
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = "ref";
  d.type = SQ_T_UUID;
  d.allow_null = 1;
  d.default_kind = SQ_DEFAULT_VALUE;
  d.default_value = sq_text("123E4567-E89B-42D3-A456-426614174000", 36);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d.name = "at";
  d.type = SQ_T_DATETIME;
  d.default_value = sq_int(86400);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  const sq_col *ref = sq_model_col(m, sq_model_find(m, "ref", 3));
  const sq_col *at = sq_model_col(m, sq_model_find(m, "at", 2));
  CHECK(ref && ref->default_value.type == SQ_VTEXT && ref->default_value.u.s.n == 36 &&
        !memcmp(ref->default_value.u.s.p, "123e4567-e89b-42d3-a456-426614174000", 36));
  CHECK(at && at->default_value.type == SQ_VTEXT && at->default_value.u.s.n == 19 &&
        !memcmp(at->default_value.u.s.p, "1970-01-02 00:00:00", 19));
  sq_model_free(m);
}

/* ---- validation ---- */

static sq_model *players(void) {
  sq_err e;
  sq_model *m;
  sq_model_opts o = {"players", -1, NULL, NULL, 0, NULL, NULL};
  if (sq_model_new("player", &o, &m, &e)) return NULL;
  sq_coldef d = coldef("id", SQ_T_INTEGER);
  d.primary_key = 1; d.auto_increment = 1;
  sq_model_add_column(m, &d, &e);
  d = coldef("name", SQ_T_STRING);
  d.length = 8; d.unique = ""; d.has_len = 1; d.len_min = 2; d.len_max = 6;
  sq_model_add_column(m, &d, &e);
  d = coldef("coins", SQ_T_INTEGER);
  d.allow_null = 0; d.default_kind = SQ_DEFAULT_VALUE; d.default_value = sq_int(0);
  d.has_min = 1; d.min = 0; d.has_max = 1; d.max = 1000000;
  sq_model_add_column(m, &d, &e);
  d = coldef("goods", SQ_T_INTEGER);
  d.allow_null = 0;
  sq_model_add_column(m, &d, &e);
  d = coldef("rating", SQ_T_DOUBLE);
  d.has_min = 1; d.min = 0.5;
  sq_model_add_column(m, &d, &e);
  d = coldef("tag", SQ_T_STRING);
  d.length = 3;
  sq_model_add_column(m, &d, &e);
  if (sq_model_finish(m, &e)) {
    fprintf(stderr, "players: %s\n", e.msg);
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static void test_validate(void) {
  sq_model *m = players();
  CHECK(m != NULL);
  if (!m) return;
  sq_err e;
  int name = sq_model_find(m, "name", 4), coins = sq_model_find(m, "coins", 5);
  int goods = sq_model_find(m, "goods", 5), rating = sq_model_find(m, "rating", 6);
  int tag = sq_model_find(m, "tag", 3), id = 0;
  CHECK(sq_model_col(m, coins)->default_value.type == SQ_VINT);

  /* A full, valid insert (id, timestamps and coins' default not needed). */
  int c1[] = {name, goods};
  sq_value v1[] = {S("bob"), sq_int(3)};
  CHECK(sq_model_validate(m, c1, v1, 2, 0, &e) == SQ_OK);

  /* Several failures, in model order, one message. */
  int c2[] = {rating, coins, name};
  sq_value v2[] = {sq_float(0.1), sq_int(-5), sq_null()};
  CHECK(sq_model_validate(m, c2, v2, 3, 0, &e) == SQ_EVALIDATION);
  CHECK_STR(e.msg, "validation failed: coins: must be >= 0; goods: cannot be null; rating: must be >= 0.5");

  int c3[] = {name, coins, goods, tag};
  sq_value v3[] = {S("a"), sq_int(2000000), sq_null(), S("abcd")};
  CHECK(sq_model_validate(m, c3, v3, 4, 0, &e) == SQ_EVALIDATION);
  CHECK_STR(e.msg, "validation failed: name: length must be between 2 and 6; coins: must be <= 1000000; "
                   "goods: cannot be null; tag: length must be at most 3 characters");

  /* len counts UTF-8 characters: six two-byte characters fit. */
  int c4[] = {name, goods};
  sq_value v4[] = {S("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), sq_int(1)};
  CHECK(sq_model_validate(m, c4, v4, 2, 0, &e) == SQ_OK);

  /* Partial updates check only what is given. */
  int c5[] = {coins};
  sq_value v5[] = {sq_int(10)};
  CHECK(sq_model_validate(m, c5, v5, 1, 1, &e) == SQ_OK);
  v5[0] = sq_null();
  CHECK(sq_model_validate(m, c5, v5, 1, 1, &e) == SQ_EVALIDATION);
  CHECK_STR(e.msg, "validation failed: coins: cannot be null");
  /* A value of the wrong type is listed too; a null key too. */
  int c6[] = {coins, id};
  sq_value v6[] = {S("abc"), sq_null()};
  CHECK(sq_model_validate(m, c6, v6, 2, 1, &e) == SQ_EVALIDATION);
  CHECK_STR(e.msg, "validation failed: id: cannot be null; coins: expects an integer, got string 'abc'");
  /* Numeric strings pass min/max after conversion. */
  v6[0] = S("-1");
  CHECK(sq_model_validate(m, c6, v6, 1, 1, &e) == SQ_EVALIDATION);
  CHECK_STR(e.msg, "validation failed: coins: must be >= 0");
  int bogus[] = {99};
  CHECK(sq_model_validate(m, bogus, v6, 1, 1, &e) == SQ_EUSAGE);
  sq_model_free(m);
}

static void test_arena(void) {
  sq_arena *a = sq_arena_new();
  CHECK(a != NULL);
  if (!a) return;
  int aligned = 1;
  char *prev = NULL;
  for (int i = 0; i < 2000; i++) {
    size_t n = (size_t)(i % 37) + (i % 100 == 0 ? 5000 : 0);
    char *p = sq_arena_alloc(a, n);
    if (!p) { aligned = 0; break; }
    if ((uintptr_t)p % 16) aligned = 0;
    memset(p, 0xab, n); /* ASan catches overlap past the block */
    if (p == prev) aligned = 0;
    prev = p;
  }
  CHECK(aligned);
  sq_arena_reset(a);
  char *p = sq_arena_alloc(a, 100);
  CHECK(p != NULL && (uintptr_t)p % 16 == 0);
  CHECK(sq_arena_alloc(a, SIZE_MAX) == NULL);
  CHECK(sq_arena_alloc(a, 0) != NULL);
  sq_arena_free(a);
  sq_arena_free(NULL);
}

int main(void) {
  test_pluralize();
  test_defaults();
  test_bad_models();
  test_quote();
  test_coerce();
  test_datetime_uuid();
  test_validate();
  test_arena();
  return CHECK_DONE();
}
