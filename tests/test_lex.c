/* test_lex.c - the SQL lexer per dialect, through what is built on it:
 * placeholder rewriting, statement counting and splitting, the session
 * classifier and the read check. One table of cases per dialect. */
#include "sqorm.h"
#include "internal.h"
#include "check.h"

#include <stdio.h>

enum { L = SQ_DIALECT_SQLITE, M = SQ_DIALECT_MYSQL, P = SQ_DIALECT_POSTGRES };

/* A rewrite case: rc; when SQ_OK also the rewritten SQL (NULL: unchanged),
 * the parameter count, named or not, and the statement count. */
typedef struct rw_case {
  int dialect;
  const char *sql;
  int rc;
  const char *out;
  int nparams, named, nstatements;
  const char *names; /* comma-separated, for named binds */
} rw_case;

static const rw_case rewrites[] = {
  /* ---- postgres ---- */
  {P, "SELECT $1, ?", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {P, "SELECT ?, $1", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {P, "SELECT :a, $1", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {P, "SELECT $1, $2, $1", SQ_OK, NULL, 2, 0, 1, NULL},
  {P, "SELECT $0", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {P, "SELECT $99999999999999999999", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {P, "SELECT E'\\'?', ?", SQ_OK, "SELECT E'\\'?', $1", 1, 0, 1, NULL},
  {P, "SELECT e'\\\\', ?", SQ_OK, "SELECT e'\\\\', $1", 1, 0, 1, NULL},
  {P, "SELECT 'C:\\', ?", SQ_OK, "SELECT 'C:\\', $1", 1, 0, 1, NULL},
  {P, "SELECT xe'?', ?", SQ_OK, "SELECT xe'?', $1", 1, 0, 1, NULL},
  {P, "SELECT U&'d\\0061t?', U&\"?\", ?", SQ_OK, "SELECT U&'d\\0061t?', U&\"?\", $1", 1, 0, 1, NULL},
  {P, "SELECT j ?? 'k', j ??| array['a'], j ??& array['b'] FROM t WHERE id = ?", SQ_OK,
   "SELECT j ? 'k', j ?| array['a'], j ?& array['b'] FROM t WHERE id = $1", 1, 0, 1, NULL},
  {P, "SELECT doc @?? '$.a' FROM t", SQ_OK, "SELECT doc @? '$.a' FROM t", 0, 0, 1, NULL},
  {P, "SELECT j ?| array['a']", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {P, "SELECT j ?& array['a']", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {P, "SELECT ?||'x', ?&&array[1]", SQ_OK, "SELECT $1||'x', $2&&array[1]", 2, 0, 1, NULL},
  {P, "SELECT a[lo:hi], a[lo : hi], a[1:2], a[:n] FROM t WHERE x = :x", SQ_OK,
   "SELECT a[lo:hi], a[lo : hi], a[1:2], a[$1] FROM t WHERE x = $2", 2, 1, 1, "n,x"},
  {P, "SELECT ARRAY[:a, :b]", SQ_OK, "SELECT ARRAY[$1, $2]", 2, 1, 1, "a,b"},
  {P, "SELECT /* /* ? */ ? */ ?", SQ_OK, "SELECT /* /* ? */ ? */ $1", 1, 0, 1, NULL},
  {P, "SELECT /* /* ? */ ?", SQ_OK, NULL, 0, 0, 1, NULL},
  {P, "SELECT $$ ? $$, $tag$ :x $ $tag$, $fn$ it's ? $fn$, ?", SQ_OK,
   "SELECT $$ ? $$, $tag$ :x $ $tag$, $fn$ it's ? $fn$, $1", 1, 0, 1, NULL},
  {P, "SELECT a$b, ?", SQ_OK, "SELECT a$b, $1", 1, 0, 1, NULL},
  {P, "SELECT :v::int, x::text", SQ_OK, "SELECT $1::int, x::text", 1, 1, 1, "v"},
  {P, "SELECT f(a := 1, b => ?)", SQ_OK, "SELECT f(a := 1, b => $1)", 1, 0, 1, NULL},
  {P, "SELECT 'it''s ?', \"a\"\"?\", ?", SQ_OK, "SELECT 'it''s ?', \"a\"\"?\", $1", 1, 0, 1, NULL},
  {P, "SELECT 1 -- ?\n, ?", SQ_OK, "SELECT 1 -- ?\n, $1", 1, 0, 1, NULL},
  {P, "SELECT 1--?", SQ_OK, NULL, 0, 0, 1, NULL},
  {P, "SELECT 1; SELECT ?", SQ_OK, "SELECT 1; SELECT $1", 1, 0, 2, NULL},
  {P, "SELECT ';'; -- ;\n;", SQ_OK, "SELECT ';'", 0, 0, 1, NULL},
  {P, "; ;SELECT ? ; -- x", SQ_OK, "SELECT $1 ", 1, 0, 1, NULL},
  {P, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
   SQ_OK, NULL, 0, 0, 1, NULL},
  {P, "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2 $$ LANGUAGE sql; SELECT 1", SQ_OK, NULL, 0, 0, 2,
   NULL},
  {P, "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", SQ_OK, NULL, 0,
   0, 1, NULL},
  {P, "SELECT `?`, ?", SQ_OK, "SELECT `?`, $1", 1, 0, 1, NULL},

  /* ---- mysql ---- */
  {M, "SELECT 1--?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT 1-- ?\n, ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT 1 --", SQ_OK, NULL, 0, 0, 1, NULL},
  {M, "SELECT 1 #?\n, ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT 'a\\'?', \"b\\\"?\", ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT `a?b`, `a``?`, ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT 'it''s ?', \"a\"\"?\"", SQ_OK, NULL, 0, 0, 1, NULL},
  {M, "SELECT /* ? */ ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT /*!50000 ? */ 1, /*+ ? */ 2", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT /* /* ? */ ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT @v := ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT $a, [b], ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {M, "SELECT :a, :b", SQ_OK, "SELECT ?, ?", 2, 1, 1, "a,b"},
  {M, "SELECT ?, :a", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {M, "SELECT ?? FROM t", SQ_OK, NULL, 2, 0, 1, NULL},
  {M, "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; SELECT CASE WHEN 1 THEN 2 END; "
      "CASE 1 WHEN 1 THEN SELECT 3; END CASE; WHILE 0 DO SELECT 4; END WHILE; END",
   SQ_OK, NULL, 0, 0, 1, NULL},
  {M, "CREATE PROCEDURE p() lbl:BEGIN SELECT 1; END lbl; SELECT 2", SQ_OK, NULL, 0, 0, 2, NULL},
  {M, "CREATE DEFINER=`u`@`%` TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END", SQ_OK, NULL, 0, 0,
   1, NULL},
  {M, "CREATE TABLE events (event INT); SELECT 1", SQ_OK, NULL, 0, 0, 2, NULL},
  {M, "BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", SQ_OK, NULL, 0, 0, 1, NULL},
  {M, "BEGIN; SELECT 1", SQ_OK, NULL, 0, 0, 2, NULL},
  {M, "/*!40101 SET NAMES utf8 */ ; ; /* x */", SQ_OK, "/*!40101 SET NAMES utf8 */ ", 0, 0, 1, NULL},
  {M, "UPDATE players SET a = 1; DELETE FROM players", SQ_OK, NULL, 0, 0, 2, NULL},

  /* ---- sqlite ---- */
  {L, "SELECT [a?b], ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {L, "SELECT [a:b], :c", SQ_OK, "SELECT [a:b], ?", 1, 1, 1, "c"},
  {L, "SELECT ?1", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {L, "SELECT @x", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {L, "SELECT $x", SQ_EUSAGE, NULL, 0, 0, 0, NULL},
  {L, "SELECT 'a\\', ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {L, "SELECT \"a?\", `b?`, 'it''s ?', ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {L, "SELECT 1 -- ?\n, ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {L, "SELECT 1--?", SQ_OK, NULL, 0, 0, 1, NULL},
  {L, "SELECT 1 # ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {L, "SELECT /* /* ? */ ?", SQ_OK, NULL, 1, 0, 1, NULL},
  {L, "SELECT x:y", SQ_OK, NULL, 0, 0, 1, NULL},
  {L, "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET c = CASE WHEN new.x THEN 1 END; SELECT 1; END; "
      "SELECT 2",
   SQ_OK, NULL, 0, 0, 2, NULL},
  {L, "CREATE TEMP TRIGGER t AFTER INSERT ON a WHEN new.end > 0 BEGIN SELECT 1; END", SQ_OK, NULL, 0, 0, 1, NULL},
  {L, "  -- only a comment\n ; ; ", SQ_OK, NULL, 0, 0, 0, NULL},
  {L, "SELECT 1;;; SELECT 2;", SQ_OK, NULL, 0, 0, 2, NULL},
  {L, "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END; ", SQ_OK,
   "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END", 0, 0, 1, NULL},
};

static void check_rewrites(void) {
  for (size_t i = 0; i < sizeof rewrites / sizeof rewrites[0]; i++) {
    const rw_case *c = &rewrites[i];
    sq_stmt_text t;
    sq_err e;
    sq_err_clear(&e);
    int rc = sq_stmt_rewrite_dialect(c->dialect, c->sql, strlen(c->sql), &t, &e);
    int ok = rc == c->rc;
    if (ok && rc == SQ_OK) {
      const char *want = c->out ? c->out : c->sql;
      ok = t.len == strlen(want) && !strcmp(t.sql, want) && t.nparams == c->nparams && t.named == c->named &&
           t.nstatements == c->nstatements;
      if (ok && c->names) {
        char buf[256] = "";
        for (int k = 0; k < t.nparams; k++)
          snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", k ? "," : "", t.names[k]);
        ok = !strcmp(buf, c->names);
      }
      ok = ok && t.nstatements == sq_sql_count(c->dialect, c->sql, strlen(c->sql));
    }
    check_count++;
    if (!ok) {
      check_failures++;
      fprintf(stderr, "rewrite case %zu [%s] %s\n  rc %d (want %d) %s\n  got  %s | %d params, named %d, %d stmts\n",
              i, sq_dialect_name(c->dialect), c->sql, rc, c->rc, rc ? e.msg : "", rc ? "-" : t.sql,
              rc ? 0 : t.nparams, rc ? 0 : t.named, rc ? 0 : t.nstatements);
    }
    if (rc == SQ_OK) sq_stmt_text_free(&t);
    else CHECK(t.sql == NULL && t.names == NULL && e.kind == rc && e.msg[0]);
  }
}

/* Session classifier: 1 when the statement may change session state. */
typedef struct sess_case {
  int dialect;
  const char *sql;
  int session;
} sess_case;

static const sess_case sessions[] = {
  {L, "PRAGMA foreign_keys = OFF", 1},
  {L, "pragma main.foreign_keys(0)", 1},
  {L, "PRAGMA foreign_keys", 0},
  {L, "PRAGMA table_info(t)", 0},
  {L, "PRAGMA main.index_list('t')", 0},
  {L, "ATTACH 'x.db' AS y", 1},
  {L, "DETACH y", 1},
  {L, "CREATE TEMP TABLE t (a)", 1},
  {L, "CREATE TEMPORARY VIEW v AS SELECT 1", 1},
  {L, "CREATE TABLE temp.t (a)", 1},
  {L, "CREATE TABLE t (temp INT)", 0},
  {L, "CREATE TABLE t AS SELECT temp FROM x", 0},
  {L, "BEGIN", 1},
  {L, "SELECT * FROM t", 0},
  {L, "INSERT INTO t VALUES ('PRAGMA x = 1')", 0},
  {L, "SELECT 1; PRAGMA synchronous = OFF", 1},

  {M, "SET autocommit = 0", 1},
  {M, "set names latin1", 1},
  {M, "SET @x = 1", 1},
  {M, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 1},
  {M, "SELECT GET_LOCK('a', 1)", 1},
  {M, "SELECT x, release_lock('a') FROM t", 1},
  {M, "DO RELEASE_ALL_LOCKS()", 1},
  {M, "LOCK TABLES t WRITE", 1},
  {M, "UNLOCK TABLES", 1},
  {M, "USE other", 1},
  {M, "CREATE TEMPORARY TABLE t (a INT)", 1},
  {M, "SELECT @a := 1", 1},
  {M, "SELECT 1 INTO @a", 1},
  {M, "START TRANSACTION", 1},
  {M, "PREPARE s FROM 'SELECT 1'", 1},
  {M, "DROP PREPARE s", 1},
  {M, "CALL p()", 1},
  {M, "FLUSH TABLES WITH READ LOCK", 1},
  {M, "/*!40101 SET NAMES utf8 */", 1},
  {M, "SELECT 'GET_LOCK(' AS s, `set`", 0},
  {M, "SELECT a FROM t WHERE b = ?", 0},
  {M, "UPDATE t SET a = 1", 0},
  {M, "INSERT INTO t SET a = 1", 0},
  {M, "SELECT @a", 0},
  {M, "SELECT a INTO OUTFILE '/tmp/x' FROM t", 0},

  {P, "SET TimeZone = 'UTC'", 1},
  {P, "set search_path = foo", 1},
  {P, "SET SESSION statement_timeout = 5", 1},
  {P, "SET LOCAL TimeZone = 'UTC'", 0},
  {P, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 0},
  {P, "SET CONSTRAINTS ALL DEFERRED", 0},
  {P, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", 1},
  {P, "SET ROLE other", 1},
  {P, "SET SESSION AUTHORIZATION other", 1},
  {P, "RESET ALL", 1},
  {P, "DISCARD ALL", 1},
  {P, "SELECT pg_advisory_lock(1)", 1},
  {P, "SELECT pg_catalog.pg_try_advisory_lock_shared(1, 2)", 1},
  {P, "SELECT pg_advisory_unlock_all()", 1},
  {P, "SELECT pg_advisory_xact_lock(1)", 0},
  {P, "SELECT set_config('a.b', 'c', false)", 1},
  {P, "SELECT setseed(0.5)", 1},
  {P, "LISTEN ch", 1},
  {P, "CREATE TEMP TABLE x (a int)", 1},
  {P, "CREATE GLOBAL TEMPORARY TABLE x (a int)", 1},
  {P, "CREATE TABLE pg_temp.x (a int)", 1},
  {P, "SELECT * INTO TEMP t2 FROM t", 1},
  {P, "SELECT * INTO t2 FROM t", 0},
  {P, "DECLARE c CURSOR WITH HOLD FOR SELECT 1", 1},
  {P, "PREPARE p AS SELECT 1", 1},
  {P, "DEALLOCATE ALL", 1},
  {P, "DO $$BEGIN PERFORM set_config('a.b', 'c', false); END$$", 1},
  {P, "LOAD 'auto_explain'", 1},
  {P, "SELECT 'SET x', $$pg_advisory_lock$$", 0},
  {P, "UPDATE t SET a = 1 WHERE b = $1", 0},
  {P, "SELECT 1; SET x.y = 1", 1},
  {P, "SELECT a, b FROM t", 0},
};

static void check_sessions(void) {
  for (size_t i = 0; i < sizeof sessions / sizeof sessions[0]; i++) {
    const sess_case *c = &sessions[i];
    int got = sq_sql_session_effect(c->dialect, c->sql, strlen(c->sql));
    sq_stmt_text t;
    sq_err e;
    int rc = sq_stmt_rewrite_dialect(c->dialect, c->sql, strlen(c->sql), &t, &e);
    int via_rewrite = rc == SQ_OK ? t.session : -1;
    if (rc == SQ_OK) sq_stmt_text_free(&t);
    check_count++;
    if (got != c->session || via_rewrite != c->session) {
      check_failures++;
      fprintf(stderr, "session case %zu [%s] %s: got %d (rewrite %d), want %d\n", i, sq_dialect_name(c->dialect),
              c->sql, got, via_rewrite, c->session);
    }
  }
}

typedef struct read_case {
  int dialect;
  const char *sql;
  int read;
} read_case;

static const read_case reads[] = {
  {L, "SELECT 1", 1},
  {L, "(SELECT 1) UNION (SELECT 2)", 1},
  {L, "SELECT 1; SELECT 2", 0},
  {L, "SELECT 'x", 0},
  {L, "SELECT 1 /* open", 0},
  {L, "PRAGMA table_info(t)", 0},
  {M, "SELECT 'a\\' ; DELETE FROM t -- '", 1},
  {M, "SELECT GET_LOCK('x', 1)", 0},
  {M, "SELECT 1 # ; DELETE", 1},
  {M, "SHOW TABLES", 1},
  {M, "SELECT /*! 1", 0},
  {P, "SELECT 'a\\' ; DELETE FROM t -- '", 0},
  {P, "SELECT $$;$$, $1", 1},
  {P, "SELECT t.delete FROM t", 1},
  {P, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", 0},
  {P, "SELECT pg_advisory_lock(1)", 0},
};

static void check_reads(void) {
  for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
    const read_case *c = &reads[i];
    int got = sq_sql_is_read_dialect(c->dialect, c->sql, strlen(c->sql));
    check_count++;
    if (got != c->read) {
      check_failures++;
      fprintf(stderr, "read case %zu [%s] %s: got %d, want %d\n", i, sq_dialect_name(c->dialect), c->sql, got, c->read);
    }
  }
}

/* Splitting: each statement's text, in order, without its ';'. */
static void check_split(int dialect, const char *sql, const char *const *want) {
  size_t pos = 0, a, b;
  int n = 0;
  while (sq_sql_next(dialect, sql, strlen(sql), &pos, &a, &b)) {
    check_count++;
    if (!want[n] || b - a != strlen(want[n]) || memcmp(sql + a, want[n], b - a)) {
      check_failures++;
      fprintf(stderr, "split [%s] %s: statement %d is \"%.*s\", want \"%s\"\n", sq_dialect_name(dialect), sql, n + 1,
              (int)(b - a), sql + a, want[n] ? want[n] : "(none)");
      return;
    }
    n++;
  }
  CHECK(want[n] == NULL);
}

static void check_splits(void) {
  const char *const a[] = {"SELECT 1", " SELECT ';' -- c\n", " SELECT 3", NULL};
  check_split(L, "SELECT 1; ; SELECT ';' -- c\n; SELECT 3", a);
  const char *const b[] = {"CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END", " SELECT 2", NULL};
  check_split(L, "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END; SELECT 2;", b);
  const char *const c[] = {"SELECT $$;$$", "SELECT $1", NULL};
  check_split(P, "SELECT $$;$$;SELECT $1", c);
  const char *const d[] = {NULL};
  check_split(M, " ;; -- nothing\n", d);
  const char *const e[] = {"SELECT 1-- ;\n", NULL};
  check_split(M, "SELECT 1-- ;\n", e);
  const char *const f[] = {"SELECT 1--;\n", " SELECT 2", NULL};
  check_split(P, "SELECT 1--;\n; SELECT 2", f);
}

/* The style-based rewrite keeps its meaning: DOLLAR is postgres (with
 * BACKSLASH, backslashes escape in '...'), QMARK|BACKSLASH mysql, QMARK
 * sqlite. */
static void check_styles(void) {
  sq_stmt_text t;
  sq_err e;
  CHECK(sq_stmt_rewrite("SELECT 'a\\', ?", 14, SQ_PH_DOLLAR, &t, &e) == SQ_OK && t.nparams == 1);
  sq_stmt_text_free(&t);
  CHECK(sq_stmt_rewrite("SELECT 'a\\', ?'", 15, SQ_PH_DOLLAR | SQ_PH_BACKSLASH, &t, &e) == SQ_OK && t.nparams == 0);
  sq_stmt_text_free(&t);
  CHECK(sq_stmt_rewrite("SELECT 1 # ?", 12, SQ_PH_QMARK | SQ_PH_BACKSLASH, &t, &e) == SQ_OK && t.nparams == 0);
  sq_stmt_text_free(&t);
  CHECK(sq_stmt_rewrite("SELECT [?]", 10, SQ_PH_QMARK, &t, &e) == SQ_OK && t.nparams == 0);
  sq_stmt_text_free(&t);
  CHECK(sq_stmt_rewrite_dialect(SQ_DIALECT_NONE, "SELECT 1", 8, &t, &e) == SQ_EUSAGE && t.sql == NULL);
}

/* The drivers' helpers. */
static void check_helpers(void) {
  size_t k;
  const char *w = sq_sql_first_word(M, " /* c */ -- d\n ((select 1))", 26, &k);
  CHECK(w && k == 6 && sq_word_is(w, k, "SELECT"));
  w = sq_sql_first_word(M, "/*!40101 SET x = 1 */", 21, &k);
  CHECK(w && sq_word_is(w, k, "SET"));
  CHECK(sq_sql_first_word(P, "'x'", 3, &k) == NULL && k == 0);
  CHECK(sq_sql_skip_blank(L, " ; -- c\n /* d */ ;SELECT", 24) == 18);
  CHECK(sq_sql_skip_blank(L, " ; /* open", 10) == 10);
}

/* sqorm.raw fragments in a rendered where: the renderer reads them with the
 * same lexer. */
typedef struct raw_case {
  int dialect;
  const char *frag;
  int nvals;
  int rc;
  const char *out; /* expected in the SQL, "(...)" included */
} raw_case;

static const raw_case raws[] = {
  {P, "data ?? 'k' AND coins > ?", 1, SQ_OK, "(data ? 'k' AND coins > $2)"},
  {P, "E'\\'' = ? -- ?", 1, SQ_OK, "(E'\\'' = $2 -- ?\n)"},
  {P, "coins = $1", 1, SQ_EUSAGE, NULL},
  {P, "data ?| array['a']", 0, SQ_EUSAGE, NULL},
  {M, "coins = 1--?", 1, SQ_OK, "(coins = 1--?)"},
  {M, "coins = 1 # ?", 0, SQ_OK, "(coins = 1 # ?\n)"},
  {M, "coins = /*! ? ", 1, SQ_EUSAGE, NULL},
  {L, "[a?b] = ?", 1, SQ_OK, "([a?b] = ?)"},
  {L, "coins = ? /* open", 1, SQ_EUSAGE, NULL},
  {L, "name = 'x", 0, SQ_EUSAGE, NULL},
  {L, "1 = 1; DROP TABLE players", 0, SQ_EUSAGE, NULL},
  {L, "coins = ?", 2, SQ_EUSAGE, NULL},
};

static void check_raw_fragments(void) {
  sq_err e;
  sq_model *m;
  CHECK(sq_model_new("player", NULL, &m, &e) == SQ_OK);
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = "coins";
  d.type = SQ_T_INTEGER;
  d.allow_null = 1;
  d.default_value = sq_null();
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  sq_value vals[2] = {sq_int(1), sq_int(2)}, five = sq_int(5);
  int coins = sq_model_find(m, "coins", 5);
  for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
    const raw_case *c = &raws[i];
    sq_expr cmp = {SQ_OP_EQ, coins, &five, 1, NULL, 0, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL};
    sq_expr raw = {SQ_OP_RAW, 0, vals, c->nvals, NULL, 0, c->frag, strlen(c->frag), NULL, NULL, 0, NULL, NULL, NULL};
    sq_expr *kids[2] = {&cmp, &raw};
    sq_expr both = {SQ_OP_AND, 0, NULL, 0, kids, 2, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL};
    sq_query q;
    sq_sql out;
    sq_query_init(&q, SQ_Q_SELECT, m);
    q.where = &both;
    sq_err_clear(&e);
    int rc = sq_render(&q, c->dialect, &out, &e);
    int ok = rc == c->rc;
    if (ok && rc == SQ_OK) ok = strstr(out.sql, c->out) != NULL && out.nparams == 1 + c->nvals;
    check_count++;
    if (!ok) {
      check_failures++;
      fprintf(stderr, "raw case %zu [%s] %s: rc %d (want %d) %s\n", i, sq_dialect_name(c->dialect), c->frag, rc,
              c->rc, rc ? e.msg : out.sql);
    }
    if (rc == SQ_OK) sq_sql_free(&out);
  }
  sq_model_free(m);
}

int main(void) {
  check_raw_fragments();
  check_rewrites();
  check_sessions();
  check_reads();
  check_splits();
  check_styles();
  check_helpers();
  return CHECK_DONE();
}
