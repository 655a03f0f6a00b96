/*
 * test_fuzz_regress.c - regression cases for what the fuzzers (fuzz/)
 * found. Each case names its fuzzer; the input that crashed it is in
 * fuzz/corpus/<fuzzer>/regress-<name>, which every fuzzer run replays.
 */
#include "sqorm.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static int parse(const char *url, sq_config *cfg, sq_err *err) {
  sq_config_init(cfg);
  sq_err_clear(err);
  int rc = sq_config_parse_url(cfg, url, err);
  if (!rc) rc = sq_config_finish(cfg, err);
  return rc;
}

/* Rewrites sql for a dialect; returns the text (static) or NULL. */
static const char *rewrite(int dialect, const char *sql, size_t len, int *nparams) {
  static char out[512];
  sq_stmt_text t;
  sq_err e;
  if (sq_stmt_rewrite_dialect(dialect, sql, len, &t, &e)) return NULL;
  snprintf(out, sizeof out, "%s", t.sql);
  if (nparams) *nparams = t.nparams;
  sq_stmt_text_free(&t);
  return out;
}

static sq_model *model(void) {
  sq_err e;
  sq_model *m;
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.timestamps = 0;
  if (sq_model_new("item", &o, &m, &e)) return NULL;
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = "price";
  d.type = SQ_T_DECIMAL;
  d.precision = 10;
  d.scale = 2;
  d.allow_null = 1;
  d.default_value = sq_null();
  sq_model_add_column(m, &d, &e);
  d.name = "n";
  d.type = SQ_T_INTEGER;
  sq_model_add_column(m, &d, &e);
  if (sq_model_finish(m, &e)) {
    sq_model_free(m);
    return NULL;
  }
  return m;
}

/* A where with one raw fragment and its values. */
static int render_raw(const sq_model *m, int dialect, const char *frag, size_t len, const sq_value *vals, int n,
                      char *out, size_t outn, sq_err *e) {
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, m);
  sq_expr x;
  memset(&x, 0, sizeof x);
  x.op = SQ_OP_RAW;
  x.raw = frag;
  x.raw_len = len;
  x.vals = vals;
  x.nvals = n;
  q.where = &x;
  sq_sql s;
  int rc = sq_render(&q, dialect, &s, e);
  if (!rc) {
    snprintf(out, outn, "%s", s.sql);
    sq_sql_free(&s);
  }
  return rc;
}

int main(void) {
  sq_config c;
  sq_err e;

  /* fuzz_url: a SQLite URL whose query ran into "user:password@..." put
   * pieces of the password into option names and values, which the
   * errors of sq_config_set / sq_config_finish show
   * (fuzz/corpus/url/regress-sqlite-query-at). */
  static const char *const at_in_query[] = {"sqlite://u?k:s3cret@x=1", "sqlite://u?port=a:s3cret@h",
                                            "sqlite:db?mode=ro&x:s3cret@h=1"};
  for (size_t i = 0; i < sizeof at_in_query / sizeof *at_in_query; i++) {
    CHECK(parse(at_in_query[i], &c, &e) == SQ_EUSAGE);
    CHECK(strstr(e.msg, "s3cret") == NULL);
    if (strstr(e.msg, "s3cret")) fprintf(stderr, "shows the password: %s\n", e.msg);
    sq_config_free(&c);
  }
  CHECK(parse("sqlite:data/user@host.db?mode=ro", &c, &e) == SQ_OK); /* '@' in the path is fine */
  CHECK_STR(c.storage, "data/user@host.db");
  sq_config_free(&c);

  /* fuzz_stmt: on PostgreSQL "$n" next to a word or a number merged with
   * it: "a?" became the identifier a$1, "?1" the parameter $11
   * (fuzz/corpus/stmt/regress-pg-word-placeholder). */
  int np = -1;
  CHECK_STR(rewrite(SQ_DIALECT_POSTGRES, "SELECT a?", 9, &np), "SELECT a $1");
  CHECK(np == 1);
  CHECK_STR(rewrite(SQ_DIALECT_POSTGRES, "SELECT ?1, ?", 12, &np), "SELECT $1 1, $2");
  CHECK(np == 2);
  CHECK_STR(rewrite(SQ_DIALECT_POSTGRES, "SELECT $?", 9, NULL), "SELECT $ $1");
  CHECK_STR(rewrite(SQ_DIALECT_POSTGRES, "SELECT x = ?", 12, NULL), "SELECT x = $1"); /* unchanged */
  CHECK_STR(rewrite(SQ_DIALECT_SQLITE, "SELECT a?", 9, NULL), "SELECT a?");

  /* fuzz_stmt: cutting the ';' of "1--;" on MySQL turned "- -" into a
   * comment (fuzz/corpus/stmt/regress-mysql-dash-cut). */
  CHECK_STR(rewrite(SQ_DIALECT_MYSQL, "SELECT 1--;", 11, NULL), "SELECT 1--;");
  CHECK_STR(rewrite(SQ_DIALECT_MYSQL, "SELECT 1;", 9, NULL), "SELECT 1");
  /* ... and trimming the empty statement before (or the ';' after) a
   * statement inside a MySQL executable comment dropped the comment's
   * opener (or closer) (fuzz/corpus/stmt/regress-mysql-exec-comment-trim). */
  CHECK_STR(rewrite(SQ_DIALECT_MYSQL, "/*!40000 ; SELECT ? */", 22, NULL), "/*!40000 ; SELECT ? */");
  CHECK_STR(rewrite(SQ_DIALECT_MYSQL, "/*!40000 SELECT ?; */", 21, NULL), "/*!40000 SELECT ?; */");
  CHECK_STR(rewrite(SQ_DIALECT_MYSQL, ";; SELECT ?;", 12, NULL), " SELECT ?");

  /* fuzz_stmt: sq_sql_next restarted the lexer at each statement, so a
   * MySQL executable comment spanning a ';' split differently from
   * sq_sql_count (fuzz/corpus/stmt/regress-mysql-exec-comment-next). */
  {
    const char *sql = "/*!SELECT 1;*/ /*!SELECT 2;*/";
    size_t len = strlen(sql), pos = 0, a, b;
    int n = 0;
    while (sq_sql_next(SQ_DIALECT_MYSQL, sql, len, &pos, &a, &b) && n < 10) n++;
    CHECK(sq_sql_count(SQ_DIALECT_MYSQL, sql, len) == 2);
    CHECK(n == 2);
  }

  /* fuzz_render: SQL holding a NUL byte is read by libpq and SQLite only
   * up to it: refused there, in raw SQL and in sqorm.raw fragments
   * (fuzz/corpus/render/regress-raw-nul). MySQL gets the length. */
  CHECK(rewrite(SQ_DIALECT_SQLITE, "DELETE FROM t WHERE a = 1\0 AND b = 2", 36, NULL) == NULL);
  CHECK(rewrite(SQ_DIALECT_POSTGRES, "DELETE FROM t WHERE a = 1\0 AND b = 2", 36, NULL) == NULL);
  CHECK(rewrite(SQ_DIALECT_MYSQL, "SELECT 'a\0b'", 13, NULL) != NULL);
  sq_model *m = model();
  CHECK(m != NULL);
  if (m) {
    char out[512];
    sq_value one = sq_int(1);
    CHECK(render_raw(m, SQ_DIALECT_SQLITE, "n = 1\0) OR (1 = 1", 17, NULL, 0, out, sizeof out, &e) == SQ_EUSAGE);

    /* fuzz_render: a :name in a raw fragment is a parameter to SQLite,
     * numbered among sqorm's ?s: values went to the wrong placeholders
     * (fuzz/corpus/render/regress-sqlite-raw-named). Elsewhere it is text
     * (PostgreSQL's a[:n] slices). */
    CHECK(render_raw(m, SQ_DIALECT_SQLITE, ":a = ?", 6, &one, 1, out, sizeof out, &e) == SQ_EUSAGE);
    CHECK(strstr(e.msg, ":a") != NULL);
    CHECK(render_raw(m, SQ_DIALECT_POSTGRES, "n = a[:n] + ?", 13, &one, 1, out, sizeof out, &e) == SQ_OK);

    /* fuzz_stmt, fuzz_render: the same merge in raw fragments on PostgreSQL. */
    CHECK(render_raw(m, SQ_DIALECT_POSTGRES, "n = a?", 6, &one, 1, out, sizeof out, &e) == SQ_OK);
    CHECK_STR(out, "SELECT \"id\", \"price\", \"n\" FROM \"items\" WHERE (n = a $1)");

    /* fuzz_render (differential): sq_render_select ordered and grouped a
     * DECIMAL column on SQLite as text, unlike sq_render
     * (fuzz/corpus/render/regress-sqlite-decimal-order). */
    sq_select s;
    sq_select_init(&s, SQ_Q_SELECT, m);
    sq_xorder ord = {sq_x_col(NULL, 1), 1};
    s.order = &ord;
    s.norder = 1;
    sq_select_sql o;
    CHECK(sq_render_select(&s, SQ_DIALECT_SQLITE, &o, &e) == SQ_OK);
    CHECK_STR(o.sql.sql, "SELECT \"id\", \"price\", \"n\" FROM \"items\" ORDER BY \"price\" COLLATE sqorm_decimal DESC");
    sq_select_sql_free(&o);
    sq_query q;
    sq_query_init(&q, SQ_Q_SELECT, m);
    sq_order qo = {1, 1};
    q.order = &qo;
    q.norder = 1;
    sq_sql qs;
    CHECK(sq_render(&q, SQ_DIALECT_SQLITE, &qs, &e) == SQ_OK);
    CHECK_STR(qs.sql, "SELECT \"id\", \"price\", \"n\" FROM \"items\" ORDER BY \"price\" COLLATE sqorm_decimal DESC");
    sq_sql_free(&qs);
    sq_select_init(&s, SQ_Q_COUNT, m);
    sq_operand g = sq_x_col(NULL, 1);
    s.group = &g;
    s.ngroup = 1;
    CHECK(sq_render_select(&s, SQ_DIALECT_SQLITE, &o, &e) == SQ_OK);
    CHECK_STR(o.sql.sql, "SELECT \"price\", count(*) AS count FROM \"items\" GROUP BY \"price\" COLLATE sqorm_decimal");
    sq_select_sql_free(&o);
    CHECK(sq_render_select(&s, SQ_DIALECT_POSTGRES, &o, &e) == SQ_OK);
    CHECK_STR(o.sql.sql, "SELECT \"price\", count(*) AS count FROM \"items\" GROUP BY \"price\"");
    sq_select_sql_free(&o);
    sq_model_free(m);
  }

  /* fuzz_schema, regress-fk-action: a foreign key whose on_delete /
   * on_update is no sq_fk_action passed NULL to strlen (UBSan) in
   * create_table (table-level keys) and in a SQLite column's references;
   * now SQ_EUSAGE, nothing rendered. */
  {
    static const char *const cols[] = {"t_id"};
    sq_sfk fk;
    memset(&fk, 0, sizeof fk);
    fk.cols = cols;
    fk.ncols = 1;
    fk.ref_table = "t";
    sq_scol c[2];
    sq_scol_init(&c[0], "id", SQ_T_INTEGER);
    c[0].primary_key = 1;
    sq_scol_init(&c[1], "t_id", SQ_T_INTEGER);
    sq_sop op;
    sq_sop_init(&op, SQ_SOP_CREATE_TABLE, "u");
    op.cols = c;
    op.ncols = 2;
    for (int bad = 0; bad < 4; bad++) {
      fk.on_delete = bad & 1 ? 5 : SQ_FK_CASCADE;
      fk.on_update = bad & 2 ? -1 : SQ_FK_DEFAULT;
      for (int where = 0; where < 2; where++) {
        op.fks = where ? NULL : &fk;
        op.nfks = where ? 0 : 1;
        c[1].references = where ? &fk : NULL;
        for (int d = SQ_DIALECT_SQLITE; d <= SQ_DIALECT_POSTGRES; d++) {
          sq_sql_list l = {0};
          sq_err e;
          int rc = sq_schema_render(&op, 1, d, 0, &l, &e);
          if (bad) {
            CHECK(rc == SQ_EUSAGE && l.n == 0);
            CHECK(strstr(e.msg, "sq_fk_action") != NULL);
          } else {
            CHECK(rc == SQ_OK && l.n >= 1);
          }
          sq_sql_list_free(&l);
        }
      }
    }
  }
  return CHECK_DONE();
}
