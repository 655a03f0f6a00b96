/* test_stmt.c - placeholder rewriting. */
#include "sqorm.h"
#include "check.h"

static sq_stmt_text t;
static sq_err e;

static int rw(const char *sql, int style) {
  sq_err_clear(&e);
  return sq_stmt_rewrite(sql, strlen(sql), style, &t, &e);
}

int main(void) {
  CHECK(rw("SELECT ? + ?", SQ_PH_QMARK) == SQ_OK);
  CHECK_STR(t.sql, "SELECT ? + ?");
  CHECK(t.nparams == 2 && !t.named);
  sq_stmt_text_free(&t);

  CHECK(rw("SELECT ? + ?", SQ_PH_DOLLAR) == SQ_OK);
  CHECK_STR(t.sql, "SELECT $1 + $2");
  sq_stmt_text_free(&t);

  CHECK(rw("UPDATE p SET c = c + 1 WHERE id = :id AND n = :name OR id = :id", SQ_PH_DOLLAR) == SQ_OK);
  CHECK_STR(t.sql, "UPDATE p SET c = c + 1 WHERE id = $1 AND n = $2 OR id = $3");
  CHECK(t.named && t.nparams == 3);
  CHECK_STR(t.names[0], "id");
  CHECK_STR(t.names[1], "name");
  CHECK_STR(t.names[2], "id");
  sq_stmt_text_free(&t);

  CHECK(rw("SELECT :a", SQ_PH_QMARK) == SQ_OK);
  CHECK_STR(t.sql, "SELECT ?");
  sq_stmt_text_free(&t);

  /* Literals, identifiers and comments keep their ? and :x. */
  CHECK(rw("SELECT '?', \"?\", `:x`, 'it''s ?' -- ?\n, ? /* :y ? */", SQ_PH_DOLLAR) == SQ_OK);
  CHECK_STR(t.sql, "SELECT '?', \"?\", `:x`, 'it''s ?' -- ?\n, $1 /* :y ? */");
  CHECK(t.nparams == 1);
  sq_stmt_text_free(&t);

  /* PostgreSQL casts and dollar quotes. */
  CHECK(rw("SELECT :v::text, $$ ? $$, $tag$ :x $tag$", SQ_PH_DOLLAR) == SQ_OK);
  CHECK_STR(t.sql, "SELECT $1::text, $$ ? $$, $tag$ :x $tag$");
  CHECK(t.nparams == 1);
  sq_stmt_text_free(&t);

  /* MySQL backslash escapes and # comments only with the flag. */
  CHECK(rw("SELECT 'a\\'?', ? # ?", SQ_PH_QMARK | SQ_PH_BACKSLASH) == SQ_OK);
  CHECK(t.nparams == 1);
  sq_stmt_text_free(&t);
  CHECK(rw("SELECT 'C:\\', ?", SQ_PH_DOLLAR) == SQ_OK);
  CHECK_STR(t.sql, "SELECT 'C:\\', $1");
  sq_stmt_text_free(&t);

  /* Mixing styles is refused. */
  CHECK(rw("SELECT ?, :a", SQ_PH_QMARK) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "mixes") != NULL);
  CHECK(t.sql == NULL && t.names == NULL);
  CHECK(rw("SELECT :a, ?", SQ_PH_QMARK) == SQ_EUSAGE);

  /* No placeholders, empty, unterminated literal. */
  CHECK(rw("", SQ_PH_QMARK) == SQ_OK);
  CHECK_STR(t.sql, "");
  CHECK(t.nparams == 0);
  sq_stmt_text_free(&t);
  CHECK(rw("SELECT 'abc ?", SQ_PH_QMARK) == SQ_OK);
  CHECK(t.nparams == 0);
  sq_stmt_text_free(&t);
  CHECK(rw("SELECT 1 /* open ?", SQ_PH_QMARK) == SQ_OK);
  CHECK(t.nparams == 0);
  sq_stmt_text_free(&t);

  /* Many placeholders (name array growth). */
  char big[4096];
  size_t n = 0;
  n += (size_t)snprintf(big + n, sizeof big - n, "SELECT ");
  for (int i = 0; i < 100; i++) n += (size_t)snprintf(big + n, sizeof big - n, ":p%d,", i);
  big[n - 1] = '\0';
  CHECK(rw(big, SQ_PH_DOLLAR) == SQ_OK);
  CHECK(t.nparams == 100);
  CHECK_STR(t.names[99], "p99");
  CHECK(strstr(t.sql, "$100") != NULL);
  sq_stmt_text_free(&t);

  /* Binary-safe on MySQL (which gets the length): an embedded NUL inside
   * a literal is kept. libpq and SQLite would stop reading at it: refused
   * there (see test_fuzz_regress.c). */
  const char withnul[] = "SELECT 'a\0b', ?";
  sq_err_clear(&e);
  CHECK(sq_stmt_rewrite(withnul, sizeof withnul - 1, SQ_PH_QMARK | SQ_PH_BACKSLASH, &t, &e) == SQ_OK);
  CHECK(t.len == sizeof withnul - 1);
  CHECK(t.nparams == 1);
  sq_stmt_text_free(&t);
  CHECK(sq_stmt_rewrite(withnul, sizeof withnul - 1, SQ_PH_DOLLAR, &t, &e) == SQ_EUSAGE);

  CHECK(sq_sql_is_read("  SELECT 1", 10));
  CHECK(sq_sql_is_read("/* x */ select * from a", 23));
  CHECK(!sq_sql_is_read("with a as (delete from t returning *) select * from a", 53));
  CHECK(sq_sql_is_read("with a as (select 1) select * from a", 36));
  CHECK(sq_sql_is_read("-- c\nshow tables", 16));
  CHECK(!sq_sql_is_read("UPDATE t SET a = 1", 18));
  CHECK(!sq_sql_is_read("INSERT INTO t SELECT 1", 22));
  CHECK(!sq_sql_is_read("SELECTx", 7));
  CHECK(!sq_sql_is_read("", 0));
  CHECK(sq_sql_is_read("SELECT * FROM t WHERE a = $1 AND b = $2", 40));
  CHECK(sq_sql_is_read("SELECT $$x$$", 12));
  /* a read only if every dialect reads it so: MySQL sees one string here */
  { const char *q = "SELECT 'a\\' ; DELETE FROM t -- '"; CHECK(!sq_sql_is_read(q, strlen(q))); }
  CHECK(!sq_sql_is_read("SELECT 1; DELETE FROM t", 23));
  CHECK(sq_sql_is_read("SELECT 1;", 9));
  CHECK(!sq_sql_is_read("SELECT a INTO b FROM t", 22));
  CHECK(!sq_sql_is_read("EXPLAIN ANALYZE SELECT 1", 24));
  CHECK(sq_sql_is_read("(SELECT 1) UNION (SELECT 2)", 27));
  CHECK(sq_sql_is_read("SELECT 'it''s' AS x", 19));
  CHECK(sq_sql_is_read("SELECT 'a\\b'", 12));
  CHECK(!sq_sql_is_read("PRAGMA journal_mode = WAL", 25));
  return CHECK_DONE();
}
