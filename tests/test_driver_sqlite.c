/*
 * test_driver_sqlite.c - end-to-end checks of the SQLite driver through
 * its sq_driver vtable, on ":memory:" and on files in a temporary
 * directory. No server is needed, so this test never skips.
 *
 * Build (from the repo root):
 *   gcc -std=c11 -Wall -Wextra -g -fsanitize=address,undefined -Isrc \
 *     tests/test_driver_sqlite.c src/core/driver_sqlite.c src/core/decimal.c src/core/error.c \
 *     src/core/util.c \
 *     $(pkg-config --cflags --libs sqlite3) -lm -o test_driver_sqlite
 *
 * It prints one line per check and ends with "N passed, N failed"; the
 * exit status is non-zero when a check failed.
 */
#define _GNU_SOURCE /* mkdtemp, MAP_ANONYMOUS, MAP_NORESERVE */
#include "sqorm.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern const sq_driver sq_driver_sqlite;
/* test-only hook in driver_sqlite.c: statements prepared on the handle */
int sq_sqlite_cached_count(sq_dconn *c);
int sq_sqlite_busy_ms(sq_dconn *c); /* the driver's own (cancellable) busy handler */

static const sq_driver *D = &sq_driver_sqlite;
static int npass, nfail;

#define CHECK(cond, ...)                             \
  do {                                               \
    if (cond) {                                      \
      npass++;                                       \
      printf("ok   - ");                             \
    } else {                                         \
      nfail++;                                       \
      printf("FAIL - (%s:%d) ", __FILE__, __LINE__); \
    }                                                \
    printf(__VA_ARGS__);                             \
    putchar('\n');                                   \
  } while (0)

/* ------------------------------------------------------------------ */
/* A sink that keeps owned copies of the first rows                     */
/* ------------------------------------------------------------------ */

#define MAXR 8
#define MAXC 8

typedef struct cval {
  int type;
  int64_t i;
  double f;
  int b;
  char *s;
  size_t n;
} cval;

typedef struct coll {
  int columns_calls;
  int ncols;
  char names[MAXC][64];
  int ctypes[MAXC];
  int64_t nrows;
  cval rows[MAXR][MAXC];
  int64_t sum0;    /* sum of column 0 when it is an integer */
  int64_t stop_at; /* return non-zero on this row (1-based); 0 = never */
  int stop_kind;   /* kind the callback sets when it stops; 0 = none */
} coll;

static coll C;
static sq_result R;
static sq_err E;

static void coll_reset(coll *c) {
  for (int r = 0; r < MAXR; r++)
    for (int k = 0; k < MAXC; k++)
      free(c->rows[r][k].s);
  memset(c, 0, sizeof *c);
}

static int cb_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)err;
  coll *c = ud;
  c->columns_calls++;
  c->ncols = ncols;
  for (int i = 0; i < ncols && i < MAXC; i++) {
    snprintf(c->names[i], sizeof c->names[i], "%.*s", (int)cols[i].name_len, cols[i].name);
    c->ctypes[i] = cols[i].type;
  }
  return 0;
}

static int cb_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  coll *c = ud;
  if (c->stop_at && c->nrows + 1 == c->stop_at) {
    if (c->stop_kind)
      sq_err_set(err, c->stop_kind, "test sink says stop");
    return 1;
  }
  if (ncols > 0 && vals[0].type == SQ_VINT)
    c->sum0 += vals[0].u.i;
  if (c->nrows < MAXR) {
    for (int i = 0; i < ncols && i < MAXC; i++) {
      cval *v = &c->rows[c->nrows][i];
      v->type = vals[i].type;
      if (v->type == SQ_VINT)
        v->i = vals[i].u.i;
      else if (v->type == SQ_VFLOAT)
        v->f = vals[i].u.f;
      else if (v->type == SQ_VBOOL)
        v->b = vals[i].u.b;
      else if (v->type == SQ_VTEXT || v->type == SQ_VBLOB) {
        v->n = vals[i].u.s.n;
        v->s = malloc(v->n + 1);
        if (!v->s)
          return 1;
        if (v->n)
          memcpy(v->s, vals[i].u.s.p, v->n);
        v->s[v->n] = '\0';
      }
    }
  }
  c->nrows++;
  return 0;
}

static const sq_row_sink SINK = {&C, cb_columns, cb_row};

/* Runs sql with values through exec into C / R / E. */
static int X(sq_dconn *c, const char *sql, const sq_value *p, int n) {
  coll_reset(&C);
  memset(&R, 0, sizeof R);
  sq_err_clear(&E);
  return D->exec(c, sql, strlen(sql), p, n, &SINK, &R, &E);
}

/* Runs sql that must succeed; reports a failure with the driver's message. */
static int OK(sq_dconn *c, const char *sql, const sq_value *p, int n) {
  int rc = X(c, sql, p, n);
  if (rc != SQ_OK)
    CHECK(0, "exec %.60s: %s [%s]", sql, E.msg, E.code);
  return rc == SQ_OK;
}

/* The single integer a query returns, or INT64_MIN. */
static int64_t q_int(sq_dconn *c, const char *sql) {
  if (!OK(c, sql, NULL, 0) || C.nrows < 1 || C.rows[0][0].type != SQ_VINT)
    return INT64_MIN;
  return C.rows[0][0].i;
}

/* The single text a query returns, as a static copy ("" when none). */
static const char *q_text(sq_dconn *c, const char *sql) {
  static char buf[256];
  buf[0] = '\0';
  if (OK(c, sql, NULL, 0) && C.nrows >= 1 && C.rows[0][0].type == SQ_VTEXT)
    snprintf(buf, sizeof buf, "%s", C.rows[0][0].s);
  return buf;
}

/* exec must fail with kind, code and sqlstate. */
static void expect_err(sq_dconn *c, const char *label, const char *sql, const sq_value *p, int n,
                       int kind, const char *code, const char *sqlstate) {
  int rc = X(c, sql, p, n);
  CHECK(rc == kind && E.kind == kind && strcmp(E.code, code) == 0 &&
            strcmp(E.sqlstate, sqlstate) == 0 && E.msg[0] != '\0',
        "%s -> %s %s '%s' (%s)", label, sq_kind_name(rc), E.code, E.sqlstate, E.msg);
}

static sq_config make_cfg(const char *storage) {
  sq_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dialect = SQ_DIALECT_SQLITE;
  cfg.scheme = "sqlite";
  cfg.storage = (char *)storage;
  return cfg;
}

static sq_dconn *open_cfg(const sq_config *cfg) {
  sq_dconn *c = NULL;
  sq_err err;
  sq_err_clear(&err);
  int rc = D->open(cfg, &c, &err);
  if (rc != SQ_OK)
    CHECK(0, "open %s: %s", cfg->storage, err.msg);
  return rc == SQ_OK ? c : NULL;
}

static sq_dconn *open_path(const char *storage) {
  sq_config cfg = make_cfg(storage);
  return open_cfg(&cfg);
}

static char tmpdir[256];

static void tmp_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_vtable(void) {
  CHECK(strcmp(D->name, "sqlite") == 0, "driver name is sqlite");
  CHECK(D->dialect == SQ_DIALECT_SQLITE, "dialect SQ_DIALECT_SQLITE");
  CHECK(D->ph_style == SQ_PH_QMARK, "placeholders are ?");
}

static void test_memory_open(sq_dconn *c) {
  const char *v = D->server_version(c);
  CHECK(strncmp(v, "SQLite 3.", 9) == 0 && strstr(v, sqlite3_libversion()), "server_version '%s'",
        v);
  CHECK(D->is_dead(c) == 0, "fresh connection not dead");
  sq_err err;
  sq_err_clear(&err);
  CHECK(D->ping(c, &err) == SQ_OK, "ping ok");
  CHECK(q_int(c, "PRAGMA foreign_keys") == 1, "foreign_keys=ON");
  CHECK(sq_sqlite_busy_ms(c) == 5000, "busy_timeout 5000 ms by default");
  CHECK(strcmp(q_text(c, "PRAGMA journal_mode"), "memory") == 0,
        "memory db keeps journal_mode=memory");
}

static void test_values(sq_dconn *c) {
  OK(c, "CREATE TABLE v (k INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, b BLOB, x)", NULL, 0);

  /* int64 edges, both ways */
  sq_value p[6];
  p[0] = sq_int(INT64_MIN);
  p[1] = sq_int(INT64_MAX);
  OK(c, "SELECT ?, ?", p, 2);
  CHECK(C.nrows == 1 && C.rows[0][0].type == SQ_VINT && C.rows[0][0].i == INT64_MIN &&
            C.rows[0][1].type == SQ_VINT && C.rows[0][1].i == INT64_MAX,
        "int64 min/max round trip through SELECT ?");
  p[0] = sq_int(1);
  p[1] = sq_int(INT64_MIN);
  OK(c, "INSERT INTO v (k, i) VALUES (?, ?)", p, 2);
  p[0] = sq_int(2);
  p[1] = sq_int(INT64_MAX);
  OK(c, "INSERT INTO v (k, i) VALUES (?, ?)", p, 2);
  OK(c, "SELECT i FROM v WHERE k IN (1, 2) ORDER BY k", NULL, 0);
  CHECK(C.nrows == 2 && C.rows[0][0].i == INT64_MIN && C.rows[1][0].i == INT64_MAX,
        "int64 min/max stored and read back");
  CHECK(C.ctypes[0] == SQ_VINT && strcmp(C.names[0], "i") == 0,
        "INTEGER column reports SQ_VINT, name 'i'");

  /* every value type through a typeless column */
  p[0] = sq_null();
  p[1] = sq_int(-42);
  p[2] = sq_float(0.1);
  p[3] = sq_bool(1);
  p[4] = sq_text("héllo", strlen("héllo"));
  p[5] = sq_blob("\x00\x01\xff", 3);
  OK(c, "SELECT ?, ?, ?, ?, ?, ?", p, 6);
  cval *r = C.rows[0];
  CHECK(r[0].type == SQ_VNULL, "NULL -> SQ_VNULL");
  CHECK(r[1].type == SQ_VINT && r[1].i == -42, "INT -> SQ_VINT");
  CHECK(r[2].type == SQ_VFLOAT && r[2].f == 0.1, "FLOAT -> SQ_VFLOAT exact");
  CHECK(r[3].type == SQ_VINT && r[3].i == 1, "BOOL binds as integer 1 (no declared type)");
  CHECK(r[4].type == SQ_VTEXT && r[4].n == strlen("héllo") && memcmp(r[4].s, "héllo", r[4].n) == 0,
        "TEXT -> SQ_VTEXT");
  CHECK(r[5].type == SQ_VBLOB && r[5].n == 3 && memcmp(r[5].s, "\x00\x01\xff", 3) == 0,
        "BLOB -> SQ_VBLOB with NUL");
  CHECK(C.ncols == 6 && C.ctypes[0] == SQ_VNULL, "expression columns report SQ_VNULL (varies)");

  /* empty string vs NULL vs empty blob */
  p[0] = sq_text("", 0);
  p[1] = sq_null();
  p[2] = sq_blob(NULL, 0);
  p[3] = sq_text(NULL, 0);
  OK(c, "SELECT ?, ?, ?, ?, typeof(?4)", p, 4);
  r = C.rows[0];
  CHECK(r[0].type == SQ_VTEXT && r[0].n == 0, "empty string stays SQ_VTEXT length 0");
  CHECK(r[1].type == SQ_VNULL, "NULL stays NULL");
  CHECK(r[2].type == SQ_VBLOB && r[2].n == 0, "empty blob (NULL pointer) stays SQ_VBLOB length 0");
  CHECK(r[3].type == SQ_VTEXT && r[3].n == 0 && strcmp(r[4].s, "text") == 0,
        "empty text with NULL pointer is text, not NULL");

  /* embedded NUL and 4-byte UTF-8 in TEXT */
  const char nul[] = "a\0b\0c";
  const char *emoji = "\xF0\x9F\x98\x80 \xF0\x9D\x84\x9E";
  p[0] = sq_int(3);
  p[1] = sq_text(nul, 5);
  p[2] = sq_text(emoji, strlen(emoji));
  OK(c, "INSERT INTO v (k, t, x) VALUES (?, ?, ?)", p, 3);
  OK(c, "SELECT t, x, length(x) FROM v WHERE k = 3", NULL, 0);
  r = C.rows[0];
  CHECK(r[0].type == SQ_VTEXT && r[0].n == 5 && memcmp(r[0].s, nul, 5) == 0,
        "text with embedded NULs kept (5 bytes)");
  CHECK(r[1].type == SQ_VTEXT && r[1].n == strlen(emoji) && memcmp(r[1].s, emoji, r[1].n) == 0,
        "4-byte UTF-8 round trip");
  CHECK(r[2].type == SQ_VINT && r[2].i == 3, "SQLite counts 3 characters in the UTF-8 text");

  /* floats */
  double fs[] = {0.0,
                 -0.0,
                 1.5,
                 -2.25,
                 1e308,
                 -1e308,
                 5e-324,
                 2.2250738585072014e-308,
                 3.141592653589793,
                 INFINITY,
                 -INFINITY};
  int okf = 1;
  for (size_t k = 0; k < sizeof fs / sizeof fs[0]; k++) {
    p[0] = sq_float(fs[k]);
    OK(c, "SELECT ?", p, 1);
    if (C.rows[0][0].type != SQ_VFLOAT || memcmp(&C.rows[0][0].f, &fs[k], sizeof(double)) != 0) {
      okf = 0;
      printf("     float %.17g came back as type %d %.17g\n", fs[k], C.rows[0][0].type,
             C.rows[0][0].f);
    }
  }
  CHECK(okf, "floats bit-exact (incl. -0.0, denormal, +/-inf)");
  p[0] = sq_float(NAN);
  OK(c, "SELECT ?", p, 1);
  CHECK(C.rows[0][0].type == SQ_VNULL, "NaN binds as NULL (SQLite cannot store NaN)");
  p[0] = sq_int(4);
  p[1] = sq_float(1e-5);
  OK(c, "INSERT INTO v (k, f) VALUES (?, ?)", p, 2);
  OK(c, "SELECT f FROM v WHERE k = 4", NULL, 0);
  CHECK(C.rows[0][0].type == SQ_VFLOAT && C.rows[0][0].f == 1e-5 && C.ctypes[0] == SQ_VFLOAT,
        "REAL column stores and reports a float");

  /* 1 MiB text and 1 MiB blob with NULs */
  size_t big = 1u << 20;
  char *s = malloc(big), *b = malloc(big);
  if (!s || !b) {
    CHECK(0, "malloc 1 MiB");
    free(s);
    free(b);
    return;
  }
  for (size_t k = 0; k < big; k++) {
    s[k] = (char)('a' + k % 26);
    b[k] = (char)(k % 7 == 0 ? 0 : (k * 31) & 0xff);
  }
  s[big / 2] = '\0'; /* a NUL inside the text too */
  p[0] = sq_int(5);
  p[1] = sq_text(s, big);
  p[2] = sq_blob(b, big);
  OK(c, "INSERT INTO v (k, t, b) VALUES (?, ?, ?)", p, 3);
  OK(c, "SELECT t, b, length(b) FROM v WHERE k = 5", NULL, 0);
  r = C.rows[0];
  CHECK(r[0].type == SQ_VTEXT && r[0].n == big && memcmp(r[0].s, s, big) == 0,
        "1 MiB text round trip");
  CHECK(r[1].type == SQ_VBLOB && r[1].n == big && memcmp(r[1].s, b, big) == 0,
        "1 MiB blob with NULs round trip");
  CHECK(r[2].type == SQ_VINT && r[2].i == (int64_t)big, "length(blob) is 1 MiB");
  CHECK(C.ctypes[0] == SQ_VTEXT && C.ctypes[1] == SQ_VBLOB,
        "TEXT / BLOB columns report their types");
  free(s);
  free(b);
}

static void test_typed_columns(sq_dconn *c) {
  OK(c,
     "CREATE TABLE ty (k INTEGER PRIMARY KEY, ok BOOLEAN, at DATETIME, ts TIMESTAMP, "
     "d DATE, price DECIMAL(10,2), n NUMERIC)",
     NULL, 0);
  sq_value p[7];
  p[0] = sq_int(1);
  p[1] = sq_bool(1);
  p[2] = sq_int(0);
  p[3] = sq_int(1700000000);
  p[4] = sq_int(86400 * 365);
  p[5] = sq_text("1.10", 4);
  p[6] = sq_int(12);
  OK(c, "INSERT INTO ty VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7);
  CHECK(R.affected_rows == 1 && R.last_insert_id == 1, "insert: affected 1, last_insert_id 1");
  p[0] = sq_int(2);
  p[1] = sq_bool(0);
  p[2] = sq_float(1.5);
  p[3] = sq_int(-1);
  p[4] = sq_text("2024-02-29", 10);
  p[5] = sq_float(19.99);
  p[6] = sq_text("abc", 3);
  OK(c, "INSERT INTO ty VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7);
  p[0] = sq_int(3);
  p[1] = sq_int(7);
  p[2] = sq_text("2024-01-02 03:04:05", 19);
  p[3] = sq_float(1700000000.25);
  p[4] = sq_null();
  p[5] = sq_int(-5);
  p[6] = sq_float(0.5);
  OK(c, "INSERT INTO ty VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7);
  p[0] = sq_int(4);
  p[1] = sq_null();
  p[2] = sq_int(INT64_MAX);
  p[3] = sq_int(253402300799);
  p[4] = sq_int(-62167219200);
  p[5] = sq_null();
  p[6] = sq_null();
  OK(c, "INSERT INTO ty VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7);

  OK(c, "SELECT ok, at, ts, d, price, n FROM ty ORDER BY k", NULL, 0);
  CHECK(C.nrows == 4 && C.columns_calls == 1, "4 rows, columns called once");
  CHECK(C.ctypes[0] == SQ_VBOOL && C.ctypes[1] == SQ_VTEXT && C.ctypes[3] == SQ_VTEXT &&
            C.ctypes[4] == SQ_VTEXT,
        "BOOLEAN column reports SQ_VBOOL, DATETIME/DATE/DECIMAL SQ_VTEXT");
  cval(*r)[MAXC] = C.rows;
#define TXT(v, want) ((v).type == SQ_VTEXT && strcmp((v).s, (want)) == 0)
  CHECK(r[0][0].type == SQ_VBOOL && r[0][0].b == 1 && r[1][0].type == SQ_VBOOL && r[1][0].b == 0,
        "BOOLEAN 1/0 -> SQ_VBOOL true/false");
  CHECK(r[2][0].type == SQ_VINT && r[2][0].i == 7, "BOOLEAN holding 7 stays SQ_VINT");
  CHECK(r[3][0].type == SQ_VNULL, "BOOLEAN NULL stays NULL");
  CHECK(TXT(r[0][1], "1970-01-01 00:00:00"), "DATETIME epoch 0 -> '%s'",
        r[0][1].s ? r[0][1].s : "?");
  CHECK(TXT(r[1][1], "1970-01-01 00:00:01.500000"), "DATETIME REAL 1.5 -> '%s'",
        r[1][1].s ? r[1][1].s : "?");
  CHECK(TXT(r[2][1], "2024-01-02 03:04:05"), "DATETIME text passes through");
  CHECK(r[3][1].type == SQ_VINT && r[3][1].i == INT64_MAX, "DATETIME out of range stays integer");
  CHECK(TXT(r[0][2], "2023-11-14 22:13:20"), "TIMESTAMP 1700000000 -> '%s'",
        r[0][2].s ? r[0][2].s : "?");
  CHECK(TXT(r[1][2], "1969-12-31 23:59:59"), "TIMESTAMP -1 -> '%s'", r[1][2].s ? r[1][2].s : "?");
  CHECK(TXT(r[2][2], "2023-11-14 22:13:20.250000"), "TIMESTAMP REAL fraction -> '%s'",
        r[2][2].s ? r[2][2].s : "?");
  CHECK(TXT(r[3][2], "9999-12-31 23:59:59"), "TIMESTAMP max -> '%s'", r[3][2].s ? r[3][2].s : "?");
  CHECK(TXT(r[0][3], "1971-01-01"), "DATE integer -> '%s'", r[0][3].s ? r[0][3].s : "?");
  CHECK(TXT(r[1][3], "2024-02-29"), "DATE text passes through");
  CHECK(r[2][3].type == SQ_VNULL, "DATE NULL stays NULL");
  CHECK(TXT(r[3][3], "0000-01-01"), "DATE min -> '%s'", r[3][3].s ? r[3][3].s : "?");
  CHECK(TXT(r[0][4], "1.1"), "DECIMAL '1.10' (stored REAL) -> '%s'", r[0][4].s ? r[0][4].s : "?");
  CHECK(TXT(r[1][4], "19.99"), "DECIMAL 19.99 -> '%s' (shortest exact)",
        r[1][4].s ? r[1][4].s : "?");
  CHECK(TXT(r[2][4], "-5"), "DECIMAL integer -> '-5'");
  CHECK(TXT(r[0][5], "12") && TXT(r[1][5], "abc") && TXT(r[2][5], "0.5"),
        "NUMERIC 12 / 'abc' / 0.5 -> text");
#undef TXT

  /* zero rows: columns still announced */
  OK(c, "SELECT k, ok FROM ty WHERE k < 0", NULL, 0);
  CHECK(C.columns_calls == 1 && C.ncols == 2 && C.nrows == 0 && R.has_result_set == 1 &&
            R.rows == 0 && strcmp(C.names[1], "ok") == 0,
        "zero-row SELECT: columns called, has_result_set, rows 0");
  OK(c, "SELECT k AS \"Key\", ok AS flag FROM ty LIMIT 1", NULL, 0);
  CHECK(strcmp(C.names[0], "Key") == 0 && strcmp(C.names[1], "flag") == 0,
        "column aliases as names");
  OK(c, "UPDATE ty SET n = 1 WHERE k = 1", NULL, 0);
  CHECK(C.columns_calls == 0 && R.has_result_set == 0, "UPDATE: no columns call, no result set");

  /* wide results (> the driver's inline column arrays) */
  char sql[1024];
  size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT 0");
  for (int k = 1; k < 40; k++)
    n += (size_t)snprintf(sql + n, sizeof sql - n, ", %d", k);
  OK(c, sql, NULL, 0);
  CHECK(C.ncols == 40 && C.rows[0][7].type == SQ_VINT && C.rows[0][7].i == 7, "40-column row");
}

static void test_results(sq_dconn *c) {
  OK(c, "CREATE TABLE r (id INTEGER PRIMARY KEY, v INTEGER)", NULL, 0);
  CHECK(R.affected_rows == 0 && R.last_insert_id == 0 && R.has_result_set == 0,
        "CREATE TABLE: affected 0 (not a stale count), no insert id");
  OK(c, "INSERT INTO r (v) VALUES (10), (20), (30)", NULL, 0);
  CHECK(R.affected_rows == 3 && R.last_insert_id == 3, "multi-row INSERT: affected 3, last id 3");
  OK(c, "UPDATE r SET v = v + 1 WHERE v >= 20", NULL, 0);
  CHECK(R.affected_rows == 2 && R.last_insert_id == 0, "UPDATE: affected 2, last id 0");
  CHECK(q_int(c, "SELECT last_insert_rowid()") == 3,
        "SQL last_insert_rowid() still sees the INSERT");
  OK(c, "UPDATE r SET v = 0 WHERE id < 0", NULL, 0);
  CHECK(R.affected_rows == 0, "UPDATE matching nothing: affected 0");
  OK(c, "SELECT * FROM r", NULL, 0);
  CHECK(R.affected_rows == -1 && R.rows == 3 && R.has_result_set == 1 && C.nrows == 3,
        "SELECT: affected -1, rows 3");
  sq_value p[2] = {sq_int(40)};
  OK(c, "INSERT INTO r (v) VALUES (?) RETURNING id, v", p, 1);
  CHECK(R.affected_rows == 1 && R.last_insert_id == 4 && R.rows == 1 && C.rows[0][0].i == 4 &&
            C.rows[0][1].i == 40,
        "INSERT ... RETURNING: row delivered, affected 1, last id 4");
  OK(c, "DELETE FROM r WHERE id > 2", NULL, 0);
  CHECK(R.affected_rows == 2 && R.last_insert_id == 0, "DELETE: affected 2");

  /* one statement per call: a second one is refused before anything runs */
  OK(c, "CREATE TABLE m (x)", NULL, 0);
  int rc = X(c, "INSERT INTO m VALUES (1); -- c\n INSERT INTO m VALUES (2);\n/* trailing */ SELECT 1; ; -- done",
             NULL, 0);
  CHECK(rc == SQ_EUSAGE && strstr(E.msg, "more than one statement"), "two statements -> usage (%s)", E.msg);
  sq_value one = sq_int(1);
  rc = X(c, "INSERT INTO m VALUES (?); INSERT INTO m VALUES (3)", &one, 1);
  CHECK(rc == SQ_EUSAGE && strstr(E.msg, "more than one statement"), "two statements with binds -> usage (%s)",
        E.msg);
  rc = X(c, "UPDATE m SET x = 1; DELETE FROM m", NULL, 0);
  CHECK(rc == SQ_EUSAGE, "UPDATE; DELETE -> usage");
  OK(c, "INSERT INTO m VALUES (1)", NULL, 0);
  OK(c, "INSERT INTO m VALUES (2)", NULL, 0);
  CHECK(q_int(c, "SELECT count(*) FROM m") == 2, "... and nothing of the refused texts ran");
  OK(c, "; ;SELECT count(*) FROM m -- c", NULL, 0);
  CHECK(R.rows == 1 && C.rows[0][0].i == 2, "empty statements before one statement are skipped");
  OK(c, "CREATE TRIGGER m_t AFTER INSERT ON m BEGIN SELECT 1; SELECT 2; END", NULL, 0);
  OK(c, "DROP TRIGGER m_t", NULL, 0);
  OK(c, "INSERT INTO m VALUES (8);", NULL, 0);
  CHECK(R.affected_rows == 1, "one statement with a trailing ';' is a single statement");
  OK(c, "   -- nothing here\n  ", NULL, 0);
  CHECK(R.affected_rows == -1 && R.has_result_set == 0 && C.columns_calls == 0,
        "comment-only SQL is a no-op");

  /* bind count mismatches */
  p[0] = sq_int(1);
  rc = X(c, "SELECT ?, ?", p, 1);
  CHECK(rc == SQ_EUSAGE && strstr(E.msg, "2 parameters") && strstr(E.msg, "1 value"),
        "2 placeholders, 1 value -> usage (%s)", E.msg);
  p[1] = sq_int(2);
  rc = X(c, "SELECT ?", p, 2);
  CHECK(rc == SQ_EUSAGE && strstr(E.msg, "1 parameter") && strstr(E.msg, "2 values"),
        "1 placeholder, 2 values -> usage (%s)", E.msg);
  rc = X(c, "SELECT 1", p, 1);
  CHECK(rc == SQ_EUSAGE && strstr(E.msg, "0 parameters"), "no placeholder, 1 value -> usage");
  rc = X(c, "SELECT ?", NULL, 0);
  CHECK(rc == SQ_EUSAGE, "1 placeholder, no value -> usage");
  OK(c, "SELECT ?1 + ?1", p, 1);
  CHECK(C.rows[0][0].i == 2, "?1 used twice counts as one parameter");
  OK(c, "SELECT 1", NULL, 0);
  CHECK(C.rows[0][0].i == 1, "connection fine after usage errors");

  /* a NULL sink discards rows; a NULL res is allowed */
  sq_err err;
  sq_err_clear(&err);
  rc = D->exec(c, "SELECT * FROM r", 15, NULL, 0, NULL, NULL, &err);
  CHECK(rc == SQ_OK, "exec with NULL sink and NULL res");

  /* sink stops */
  coll_reset(&C);
  C.stop_at = 2;
  sq_err_clear(&E);
  rc = D->exec(c, "SELECT * FROM r", 15, NULL, 0, &SINK, &R, &E);
  CHECK(rc == SQ_EUSAGE && strstr(E.msg, "row callback stopped"),
        "sink stop without err -> usage '%s'", E.msg);
  coll_reset(&C);
  C.stop_at = 1;
  C.stop_kind = SQ_EVALIDATION;
  sq_err_clear(&E);
  rc = D->exec(c, "SELECT * FROM r", 15, NULL, 0, &SINK, &R, &E);
  CHECK(rc == SQ_EVALIDATION && strcmp(E.msg, "test sink says stop") == 0,
        "sink stop keeps the sink's error");
  CHECK(q_int(c, "SELECT count(*) FROM r") == 2 && !D->in_transaction(c),
        "connection usable, no read transaction left after a stopped statement");
}

static void test_errors(sq_dconn *c) {
  OK(c,
     "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, "
     "age INTEGER CHECK (age >= 0))",
     NULL, 0);
  OK(c, "CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent(id))", NULL, 0);
  OK(c, "INSERT INTO parent VALUES (1, 'a', 1)", NULL, 0);
  expect_err(c, "unique", "INSERT INTO parent VALUES (2, 'a', 1)", NULL, 0, SQ_EUNIQUE,
             "SQLITE_CONSTRAINT_UNIQUE", "23505");
  CHECK(strstr(E.msg, "UNIQUE constraint failed: parent.name") != NULL,
        "message has SQLite's text");
  expect_err(c, "primary key", "INSERT INTO parent VALUES (1, 'b', 1)", NULL, 0, SQ_EUNIQUE,
             "SQLITE_CONSTRAINT_PRIMARYKEY", "23505");
  expect_err(c, "not null", "INSERT INTO parent (id, name) VALUES (3, NULL)", NULL, 0,
             SQ_ECONSTRAINT, "SQLITE_CONSTRAINT_NOTNULL", "23502");
  expect_err(c, "check", "INSERT INTO parent VALUES (4, 'd', -1)", NULL, 0, SQ_ECONSTRAINT,
             "SQLITE_CONSTRAINT_CHECK", "23514");
  expect_err(c, "foreign key (foreign_keys=ON)", "INSERT INTO child VALUES (1, 99)", NULL, 0,
             SQ_ECONSTRAINT, "SQLITE_CONSTRAINT_FOREIGNKEY", "23503");
  expect_err(c, "syntax", "SELEC 1", NULL, 0, SQ_ESYNTAX, "SQLITE_ERROR", "");
  CHECK(strstr(E.msg, "syntax error") != NULL, "syntax message '%s'", E.msg);
  expect_err(c, "no such table", "SELECT * FROM missing", NULL, 0, SQ_ESYNTAX, "SQLITE_ERROR", "");
  expect_err(c, "no such column", "SELECT nope FROM parent", NULL, 0, SQ_ESYNTAX, "SQLITE_ERROR",
             "");
  expect_err(c, "runtime error", "SELECT abs(-9223372036854775807 - 1)", NULL, 0, SQ_EDATABASE,
             "SQLITE_ERROR", "");

  /* a cached statement whose table is dropped fails at step: still syntax */
  OK(c, "CREATE TABLE gone (x)", NULL, 0);
  OK(c, "SELECT x FROM gone", NULL, 0);
  OK(c, "DROP TABLE gone", NULL, 0);
  expect_err(c, "cached statement after DROP TABLE", "SELECT x FROM gone", NULL, 0, SQ_ESYNTAX,
             "SQLITE_ERROR", "");

  /* TOOBIG: a value over SQLITE_LIMIT_LENGTH (1e9). The mapping is never
   * touched: SQLite checks the length before reading (SQLITE_STATIC). */
  size_t huge = 1000000001u;
  void *m = mmap(NULL, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    printf("skip - TOOBIG (mmap failed)\n");
  } else {
    sq_value b = sq_blob(m, huge);
    expect_err(c, "too big", "SELECT ? IS NULL", &b, 1, SQ_EUSAGE, "SQLITE_TOOBIG", "");
    CHECK(strstr(E.msg, "value 1") != NULL, "too-big message names the value");
    munmap(m, huge);
  }
  CHECK(D->is_dead(c) == 0, "ordinary errors leave the connection alive");
  CHECK(q_int(c, "SELECT count(*) FROM parent") == 1, "connection usable after errors");
}

static void test_transactions(sq_dconn *c) {
  sq_err err;
  sq_err_clear(&err);
  OK(c, "CREATE TABLE t (x INTEGER)", NULL, 0);
  CHECK(D->in_transaction(c) == 0, "not in a transaction");
  CHECK(D->begin(c, SQ_ISO_DEFAULT, &err) == SQ_OK && D->in_transaction(c) == 1,
        "begin -> in_transaction");
  OK(c, "INSERT INTO t VALUES (1)", NULL, 0);
  CHECK(D->rollback(c, &err) == SQ_OK && !D->in_transaction(c), "rollback");
  CHECK(q_int(c, "SELECT count(*) FROM t") == 0, "rolled-back row is gone");

  CHECK(D->begin(c, SQ_ISO_READ_COMMITTED, &err) == SQ_OK, "begin read committed (plain BEGIN)");
  OK(c, "INSERT INTO t VALUES (1)", NULL, 0);
  CHECK(D->savepoint(c, "sq_sp_1", &err) == SQ_OK, "savepoint sq_sp_1");
  OK(c, "INSERT INTO t VALUES (2)", NULL, 0);
  CHECK(D->savepoint(c, "sq_sp_2", &err) == SQ_OK, "nested savepoint sq_sp_2");
  OK(c, "INSERT INTO t VALUES (3)", NULL, 0);
  CHECK(D->release(c, "sq_sp_2", &err) == SQ_OK, "release sq_sp_2");
  CHECK(D->rollback_to(c, "sq_sp_1", &err) == SQ_OK, "rollback to sq_sp_1 (drops 2 and 3)");
  CHECK(D->release(c, "sq_sp_1", &err) == SQ_OK, "release sq_sp_1");
  CHECK(D->in_transaction(c) == 1, "still in the transaction");
  CHECK(D->commit(c, &err) == SQ_OK && !D->in_transaction(c), "commit");
  CHECK(strcmp(q_text(c, "SELECT group_concat(x) FROM t"), "1") == 0,
        "only the row before the savepoint survived");

  int rc = D->rollback(c, &err);
  CHECK(rc == SQ_OK, "rollback with no transaction is a no-op");
  rc = D->commit(c, &err);
  CHECK(rc == SQ_EDATABASE && strstr(err.msg, "no transaction is active"),
        "commit with no transaction -> %s '%s'", sq_kind_name(rc), err.msg);
  rc = D->rollback_to(c, "nope", &err);
  CHECK(rc != SQ_OK && strstr(err.msg, "no such savepoint"),
        "rollback_to unknown savepoint -> %s '%s'", sq_kind_name(rc), err.msg);
  rc = D->savepoint(c, "x; DROP TABLE t", &err);
  CHECK(rc == SQ_EUSAGE, "bad savepoint name refused");
  rc = D->begin(c, 99, &err);
  CHECK(rc == SQ_EUSAGE, "unknown isolation refused");

  /* reset rolls back and restores foreign_keys */
  CHECK(D->begin(c, SQ_ISO_SERIALIZABLE, &err) == SQ_OK, "begin serializable (BEGIN IMMEDIATE)");
  OK(c, "INSERT INTO t VALUES (9)", NULL, 0);
  CHECK(D->reset(c, 0, &err) == SQ_OK && !D->in_transaction(c), "reset rolls back");
  CHECK(q_int(c, "SELECT count(*) FROM t WHERE x = 9") == 0,
        "row from the reset transaction is gone");
  CHECK(!D->needs_reset(c), "a clean session needs no full reset");
  OK(c, "PRAGMA foreign_keys=OFF", NULL, 0);
  CHECK(D->needs_reset(c), "foreign_keys off: the session needs a full reset");
  CHECK(D->reset(c, 1, &err) == SQ_OK && q_int(c, "PRAGMA foreign_keys") == 1,
        "full reset turns foreign_keys back on");
  CHECK(!D->needs_reset(c), "... and the session is clean again");
  CHECK(D->reset(c, 0, &err) == SQ_OK, "reset on a clean connection");
}

/* Counts rows and checks each fetch delivers exactly one. */
static void test_cursor(sq_dconn *c, int file_db) {
  sq_err err;
  sq_err_clear(&err);
  OK(c, "CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, pad BLOB)", NULL, 0);
  OK(c,
     "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) "
     "INSERT INTO big SELECT x, 'row ' || x, randomblob(200) FROM n",
     NULL, 0);
  CHECK(R.affected_rows == 100000, "inserted 100k rows (affected %lld)",
        (long long)R.affected_rows);

  int memstat = sqlite3_memory_used() > 0;
  sqlite3_int64 base = sqlite3_memory_used();
  sqlite3_memory_highwater(1);
  coll_reset(&C);
  sq_dcursor *cur = NULL;
  sq_value lim = sq_int(0);
  int rc = D->cursor_open(c, "SELECT id, name, pad FROM big WHERE id > ? ORDER BY id", 54, &lim, 1,
                          &SINK, &cur, &err);
  CHECK(rc == SQ_OK && C.columns_calls == 1 && C.ncols == 3 && C.nrows == 0,
        "cursor_open: columns delivered, no row yet");
  int has = 0, one_each = 1;
  int64_t fetched = 0;
  while (rc == SQ_OK) {
    int64_t before = C.nrows;
    rc = D->cursor_fetch(cur, &has, &err);
    if (rc != SQ_OK || !has)
      break;
    if (C.nrows != before + 1)
      one_each = 0;
    fetched++;
  }
  CHECK(rc == SQ_OK && fetched == 100000 && C.sum0 == (int64_t)100000 * 100001 / 2,
        "streamed 100k rows, ids sum right (%lld rows)", (long long)fetched);
  CHECK(one_each, "each fetch delivered exactly one row");
  rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_OK && has == 0, "fetch after the end: has_row 0 again (no rerun)");
  if (memstat) {
    sqlite3_int64 peak = sqlite3_memory_highwater(0) - base;
    if (file_db)
      CHECK(peak < 8 * 1024 * 1024,
            "SQLite memory while streaming 25 MB of rows grew %lld bytes (< 8 MiB)",
            (long long)peak);
  } else {
    printf("skip - SQLite memory statistics are off in this build\n");
  }
  D->cursor_close(cur);

  /* closed early, then the connection reused, same SQL (cached) again */
  coll_reset(&C);
  rc = D->cursor_open(c, "SELECT id, name, pad FROM big WHERE id > ? ORDER BY id", 54, &lim, 1,
                      &SINK, &cur, &err);
  for (int k = 0; k < 10 && rc == SQ_OK; k++)
    rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_OK && C.nrows == 10, "fetched 10 rows");
  sq_value dummy = sq_int(1);
  rc = X(c, "SELECT ?", &dummy, 1);
  CHECK(rc == SQ_EUSAGE && strstr(E.msg, "cursor is open"), "exec while a cursor is open -> usage");
  sq_dcursor *cur2 = NULL;
  rc = D->cursor_open(c, "SELECT 1", 8, NULL, 0, &SINK, &cur2, &err);
  CHECK(rc == SQ_EUSAGE && cur2 == NULL, "second cursor while one is open -> usage");
  D->cursor_close(cur);
  CHECK(!D->in_transaction(c), "closed-early cursor leaves no transaction");
  CHECK(q_int(c, "SELECT count(*) FROM big") == 100000, "connection reused after an early close");
  OK(c, "DELETE FROM big WHERE id > 10", NULL, 0);
  CHECK(R.affected_rows == 99990, "can write after the early close (no read lock held)");
  coll_reset(&C);
  lim = sq_int(5);
  rc = D->cursor_open(c, "SELECT id, name, pad FROM big WHERE id > ? ORDER BY id", 54, &lim, 1,
                      &SINK, &cur, &err);
  rc = rc == SQ_OK ? D->cursor_fetch(cur, &has, &err) : rc;
  CHECK(rc == SQ_OK && has && C.rows[0][0].i == 6 && C.rows[0][1].type == SQ_VTEXT &&
            strcmp(C.rows[0][1].s, "row 6") == 0,
        "same SQL reopened from the cache starts over with new binds");
  D->cursor_close(cur);

  /* a cursor's values may be freed once cursor_open returns (the header
   * promises only the sink's lifetime): ASan would catch a stale read */
  char *name = strdup("row 8");
  sq_value nv = sq_text(name, strlen(name));
  coll_reset(&C);
  rc = D->cursor_open(c, "SELECT id FROM big WHERE name >= ? ORDER BY id", 46, &nv, 1, &SINK, &cur,
                      &err);
  memset(name, 'z', 5);
  free(name);
  while (rc == SQ_OK) {
    rc = D->cursor_fetch(cur, &has, &err);
    if (!has)
      break;
  }
  CHECK(rc == SQ_OK && C.nrows == 2 && C.rows[0][0].i == 8 && C.rows[1][0].i == 9,
        "cursor values copied at open: freed text param still matches 'row 8', 'row 9'");
  D->cursor_close(cur);

  /* zero-row cursor, errors */
  coll_reset(&C);
  rc = D->cursor_open(c, "SELECT id FROM big WHERE id < 0", 31, NULL, 0, &SINK, &cur, &err);
  CHECK(rc == SQ_OK && C.columns_calls == 1, "zero-row cursor: columns still delivered");
  rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_OK && has == 0, "zero-row cursor: has_row 0");
  D->cursor_close(cur);
  cur = NULL;
  rc = D->cursor_open(c, "SELECT * FROM nothere", 21, NULL, 0, &SINK, &cur, &err);
  CHECK(rc == SQ_ESYNTAX && cur == NULL && strcmp(err.code, "SQLITE_ERROR") == 0,
        "cursor on a missing table -> syntax");
  rc = D->cursor_open(c, "SELECT 1; SELECT 2", 18, NULL, 0, &SINK, &cur, &err);
  CHECK(rc == SQ_EUSAGE && cur == NULL, "cursor on two statements -> usage");
  rc = D->cursor_open(c, "SELECT ?", 8, NULL, 0, &SINK, &cur, &err);
  CHECK(rc == SQ_EUSAGE && cur == NULL, "cursor bind mismatch -> usage");

  /* sink stops mid-cursor */
  coll_reset(&C);
  C.stop_at = 3;
  rc = D->cursor_open(c, "SELECT id FROM big ORDER BY id", 30, NULL, 0, &SINK, &cur, &err);
  while (rc == SQ_OK) {
    rc = D->cursor_fetch(cur, &has, &err);
    if (!has)
      break;
  }
  CHECK(rc == SQ_EUSAGE && C.nrows == 2, "cursor stops when the sink says so");
  rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_EUSAGE && has == 0, "fetch after a failure keeps failing");
  D->cursor_close(cur);

  /* reset with a cursor open detaches it */
  coll_reset(&C);
  rc = D->cursor_open(c, "SELECT id FROM big ORDER BY id", 30, NULL, 0, &SINK, &cur, &err);
  D->cursor_fetch(cur, &has, &err);
  CHECK(D->reset(c, 0, &err) == SQ_OK, "reset with an open cursor");
  rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_ECLOSED && has == 0, "fetch on a cursor detached by reset -> closed");
  D->cursor_close(cur);
  CHECK(q_int(c, "SELECT count(*) FROM big") == 10,
        "connection fine after reset + late cursor_close");
  D->cursor_close(NULL);
}

static void test_cache(sq_dconn *c) {
  char sql[64];
  int okv = 1;
  for (int k = 0; k < 200; k++) {
    snprintf(sql, sizeof sql, "SELECT %d + 0", k);
    if (!OK(c, sql, NULL, 0) || C.rows[0][0].i != k)
      okv = 0;
  }
  int n = sq_sqlite_cached_count((sq_dconn *)c);
  CHECK(okv, "200 distinct statements gave the right values");
  CHECK(n <= 64 && n > 0, "prepared statements on the handle after 200 distinct: %d (<= 64)", n);
  OK(c, "SELECT 199 + 0", NULL, 0);
  OK(c, "SELECT 199 + 0", NULL, 0);
  CHECK(sq_sqlite_cached_count((sq_dconn *)c) == n,
        "repeating a cached statement prepares nothing new");
  OK(c, "SELECT 1 + 0", NULL, 0);
  CHECK(C.rows[0][0].i == 1 && sq_sqlite_cached_count((sq_dconn *)c) == n,
        "evicted statement re-prepared, count unchanged (LRU evicts another)");
  CHECK(X(c, "SELECT 1; SELECT 2", NULL, 0) == SQ_EUSAGE, "multi-statement text is refused");
  CHECK(sq_sqlite_cached_count((sq_dconn *)c) == n, "... and not cached");

  /* A cached statement remembers its result columns; a schema change
   * re-prepares it, and the columns must then be read again. */
  OK(c, "CREATE TABLE cache_shape (a INTEGER, b BOOLEAN)", NULL, 0);
  OK(c, "INSERT INTO cache_shape VALUES (1, 1)", NULL, 0);
  OK(c, "SELECT * FROM cache_shape", NULL, 0);
  OK(c, "SELECT * FROM cache_shape", NULL, 0);
  CHECK(C.ncols == 2 && C.rows[0][1].type == SQ_VBOOL, "cached statement: 2 columns, b a boolean");
  OK(c, "ALTER TABLE cache_shape ADD COLUMN c DATETIME", NULL, 0);
  OK(c, "UPDATE cache_shape SET c = 86400", NULL, 0);
  OK(c, "SELECT * FROM cache_shape", NULL, 0);
  CHECK(C.ncols == 3 && strcmp(C.names[2], "c") == 0 && C.rows[0][2].type == SQ_VTEXT &&
            C.rows[0][2].s && strcmp(C.rows[0][2].s, "1970-01-02 00:00:00") == 0,
        "after ALTER TABLE the cached statement sees column c as a DATETIME (%d columns)", C.ncols);
  OK(c, "DROP TABLE cache_shape", NULL, 0);
  OK(c, "CREATE TABLE cache_shape (x TEXT, b INTEGER, a BOOLEAN)", NULL, 0);
  OK(c, "INSERT INTO cache_shape VALUES ('t', 1, 0)", NULL, 0);
  OK(c, "SELECT * FROM cache_shape", NULL, 0);
  CHECK(C.ncols == 3 && strcmp(C.names[0], "x") == 0 && C.rows[0][1].type == SQ_VINT &&
            C.rows[0][2].type == SQ_VBOOL,
        "a table recreated with the same column count: names and types read again");
  OK(c, "DROP TABLE cache_shape", NULL, 0);
}

static void test_file(void) {
  char path[512];
  tmp_path(path, sizeof path, "main.db");
  sq_dconn *c = open_path(path);
  if (!c)
    return;
  CHECK(strcmp(q_text(c, "PRAGMA journal_mode"), "wal") == 0, "file db in WAL mode");
  CHECK(q_int(c, "PRAGMA synchronous") == 1, "synchronous=NORMAL (1)");
  CHECK(q_int(c, "PRAGMA foreign_keys") == 1, "foreign_keys=ON on the file db");
  OK(c, "CREATE TABLE w (x INTEGER)", NULL, 0);

  /* a second connection with a short timeout gets BUSY while the first
   * holds the write lock (BEGIN IMMEDIATE from SERIALIZABLE) */
  sq_config cfg = make_cfg(path);
  cfg.connect_timeout = 0.2;
  sq_dconn *c2 = open_cfg(&cfg);
  sq_err err;
  sq_err_clear(&err);
  if (c2) {
    CHECK(sq_sqlite_busy_ms(c2) == 200, "connect_timeout 0.2 -> busy_timeout 200 ms");
    CHECK(D->begin(c, SQ_ISO_SERIALIZABLE, &err) == SQ_OK, "conn 1 begins serializable");
    int rc = D->begin(c2, SQ_ISO_SERIALIZABLE, &err);
    CHECK(rc == SQ_ETIMEOUT && strcmp(err.code, "SQLITE_BUSY") == 0 && err.sqlstate[0] == '\0',
          "conn 2 BEGIN IMMEDIATE -> timeout SQLITE_BUSY '%s'", err.msg);
    CHECK(!D->in_transaction(c2), "conn 2 not in a transaction after BUSY");
    CHECK(q_int(c2, "SELECT count(*) FROM w") == 0, "conn 2 can still read (WAL)");
    CHECK(D->commit(c, &err) == SQ_OK, "conn 1 commits");
    CHECK(D->begin(c2, SQ_ISO_SERIALIZABLE, &err) == SQ_OK && D->rollback(c2, &err) == SQ_OK,
          "conn 2 begins once the lock is free");
    D->close(c2);
  }
  test_cursor(c, 1);
  D->close(c);

  /* mode=ro: reads work, writes fail */
  sq_param ro = {"mode", "ro"};
  cfg = make_cfg(path);
  cfg.params = &ro;
  cfg.nparams = 1;
  c = open_cfg(&cfg);
  if (c) {
    CHECK(q_int(c, "SELECT count(*) FROM big") == 10, "mode=ro reads");
    expect_err(c, "write on mode=ro", "INSERT INTO w VALUES (1)", NULL, 0, SQ_EDATABASE,
               "SQLITE_READONLY", "");
    D->close(c);
  }
  sq_param sh[2] = {{"cache", "shared"}, {"mode", "rw"}};
  cfg.params = sh;
  cfg.nparams = 2;
  c = open_cfg(&cfg);
  CHECK(c != NULL, "cache=shared, mode=rw accepted");
  if (c)
    D->close(c);

  /* mode=rw does not create */
  char nopath[512];
  tmp_path(nopath, sizeof nopath, "absent.db");
  cfg = make_cfg(nopath);
  sq_param rw = {"mode", "rw"};
  cfg.params = &rw;
  cfg.nparams = 1;
  c = NULL;
  int rc = D->open(&cfg, &c, &err);
  CHECK(rc == SQ_ECONNECTION && c == NULL && strcmp(err.code, "SQLITE_CANTOPEN") == 0 &&
            access(nopath, F_OK) != 0,
        "mode=rw on a missing file -> connection SQLITE_CANTOPEN, not created");

  /* unknown parameter, bad value */
  sq_param bad = {"journal", "wal"};
  cfg = make_cfg(path);
  cfg.params = &bad;
  cfg.nparams = 1;
  rc = D->open(&cfg, &c, &err);
  CHECK(rc == SQ_EUSAGE && strstr(err.msg, "'journal'"), "unknown parameter -> usage naming it: %s",
        err.msg);
  sq_param badv = {"mode", "memoryy"};
  cfg.params = &badv;
  rc = D->open(&cfg, &c, &err);
  CHECK(rc == SQ_EUSAGE && strstr(err.msg, "'memoryy'") && strstr(err.msg, "'mode'"),
        "bad mode value -> usage: %s", err.msg);
  cfg.storage = NULL;
  cfg.nparams = 0;
  rc = D->open(&cfg, &c, &err);
  CHECK(rc == SQ_EUSAGE, "no storage -> usage");
}

/* 1 when a table created on a is visible on b. */
static int shares(sq_dconn *a, sq_dconn *b, const char *table) {
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE TABLE %s (x)", table);
  if (!OK(a, sql, NULL, 0))
    return 0;
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
  return X(b, sql, NULL, 0) == SQ_OK;
}

static sq_dconn *open_params(const char *storage, const char *k1, const char *v1, const char *k2,
                             const char *v2) {
  sq_param ps[2] = {{(char *)k1, (char *)v1}, {(char *)k2, (char *)v2}};
  sq_config cfg = make_cfg(storage);
  cfg.params = ps;
  cfg.nparams = k2 ? 2 : (k1 ? 1 : 0);
  return open_cfg(&cfg);
}

/* URIs: off for plain paths, on for "file:" storage and for the forms
 * that share one memory database between connections. */
static void test_uri_and_memory(void) {
  char cwd[512];
  if (!getcwd(cwd, sizeof cwd) || chdir(tmpdir) != 0) {
    printf("skip - URI tests (chdir)\n");
    return;
  }
  sq_dconn *a = open_path("odd?mode=ro#x.db"), *b;
  CHECK(a != NULL && access("odd?mode=ro#x.db", F_OK) == 0,
        "plain path with '?' and '#' is a file name, not a URI");
  if (a)
    D->close(a);
  unlink("odd?mode=ro#x.db");
  unlink("odd?mode=ro#x.db-wal");
  unlink("odd?mode=ro#x.db-shm");

  a = open_path("file:uri.db?mode=rwc");
  CHECK(a != NULL && access("uri.db", F_OK) == 0 && access("file:uri.db?mode=rwc", F_OK) != 0,
        "storage 'file:uri.db?mode=rwc' is honoured as a URI");
  if (a) {
    CHECK(strcmp(q_text(a, "PRAGMA journal_mode"), "wal") == 0, "... and gets WAL as a file");
    D->close(a);
  }
  unlink("uri.db");
  unlink("uri.db-wal");
  unlink("uri.db-shm");

  a = open_path(":memory:");
  b = open_path(":memory:");
  if (a && b)
    CHECK(!shares(a, b, "p1"), "two ':memory:' connections are two databases");
  if (a)
    D->close(a);
  if (b)
    D->close(b);

  a = open_params(":memory:", "cache", "shared", NULL, NULL);
  b = open_params(":memory:", "cache", "shared", NULL, NULL);
  if (a && b) {
    CHECK(shares(a, b, "s1"), "':memory:' + cache=shared: connections share one database");
    CHECK(strcmp(q_text(a, "PRAGMA journal_mode"), "memory") == 0, "... kept in memory");
  }
  if (a)
    D->close(a);
  if (b)
    D->close(b);

  a = open_path("file::memory:?cache=shared");
  b = open_path("file::memory:?cache=shared");
  if (a && b)
    CHECK(shares(a, b, "s2"), "'file::memory:?cache=shared' shares one database");
  if (a)
    D->close(a);
  if (b)
    D->close(b);

  a = open_params("named mem", "mode", "memory", "cache", "shared");
  b = open_params("named mem", "mode", "memory", "cache", "shared");
  sq_dconn *other = open_params("other mem", "mode", "memory", "cache", "shared");
  if (a && b && other) {
    CHECK(shares(a, b, "s3"), "mode=memory + cache=shared under one name: shared");
    CHECK(!shares(a, other, "s4"), "... and a different name is a different database");
  }
  CHECK(access("named mem", F_OK) != 0, "mode=memory writes no file");
  if (a)
    D->close(a);
  if (b)
    D->close(b);
  if (other)
    D->close(other);

  a = open_params("priv", "mode", "memory", NULL, NULL);
  b = open_params("priv", "mode", "memory", NULL, NULL);
  if (a && b)
    CHECK(!shares(a, b, "p2"), "mode=memory without cache=shared: private");
  if (a)
    D->close(a);
  if (b)
    D->close(b);
  if (chdir(cwd) != 0)
    CHECK(0, "chdir back");
}

static void test_open_failures(void) {
  sq_dconn *c = NULL;
  sq_err err;
  sq_err_clear(&err);
  sq_config cfg = make_cfg("/nonexistent-sqorm-dir/sub/x.db");
  int rc = D->open(&cfg, &c, &err);
  CHECK(rc == SQ_ECONNECTION && c == NULL && strncmp(err.code, "SQLITE_CANTOPEN", 15) == 0 &&
            strstr(err.msg, "/nonexistent-sqorm-dir/sub/x.db") && strstr(err.msg, "unable to open"),
        "missing directory -> connection %s '%s'", err.code, err.msg);

  /* not a database */
  char path[512];
  tmp_path(path, sizeof path, "text.db");
  FILE *f = fopen(path, "w");
  if (f) {
    for (int k = 0; k < 200; k++)
      fputs("this is not a database file at all\n", f);
    fclose(f);
  }
  cfg = make_cfg(path);
  rc = D->open(&cfg, &c, &err);
  CHECK(rc == SQ_ECONNECTION && c == NULL && strcmp(err.code, "SQLITE_NOTADB") == 0 &&
            strstr(err.msg, path),
        "text file -> connection SQLITE_NOTADB '%s'", err.msg);
}

/* A database whose table pages are overwritten: the read fails with
 * SQLITE_CORRUPT and the connection reports itself dead. */
static void test_dead(void) {
  char path[512];
  tmp_path(path, sizeof path, "corrupt.db");
  sq_dconn *c = open_path(path);
  if (!c)
    return;
  OK(c, "CREATE TABLE cc (x BLOB)", NULL, 0);
  OK(c,
     "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000) "
     "INSERT INTO cc SELECT randomblob(100) FROM n",
     NULL, 0);
  D->close(c); /* last connection: WAL checkpointed into the file */
  int fd = open(path, O_RDWR);
  if (fd < 0) {
    CHECK(0, "open %s", path);
    return;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  char junk[4096];
  memset(junk, 0xA5, sizeof junk);
  for (off_t off = 4096; off < size; off += (off_t)sizeof junk)
    if (pwrite(fd, junk, sizeof junk, off) < 0)
      break;
  close(fd);
  c = open_path(path);
  if (!c)
    return;
  int rc = X(c, "SELECT count(*), sum(length(x)) FROM cc", NULL, 0);
  CHECK(rc != SQ_OK && strncmp(E.code, "SQLITE_CORRUPT", 14) == 0,
        "reading overwritten pages -> %s %s '%s'", sq_kind_name(rc), E.code, E.msg);
  CHECK(D->is_dead(c) == 1, "is_dead after corruption");
  sq_err err;
  sq_err_clear(&err);
  CHECK(D->ping(c, &err) == SQ_ECONNECTION, "ping fails on a dead connection");
  D->close(c);
}

/* Double-quoted strings are identifiers on every connection (DQS off for
 * DML and DDL): a missing column is an error, not its name as a string. */
static void test_dqs(sq_dconn *c) {
  OK(c, "CREATE TABLE dqs (id INTEGER PRIMARY KEY, name TEXT)", NULL, 0);
  OK(c, "INSERT INTO dqs VALUES (1, 'a'), (2, 'b')", NULL, 0);
  expect_err(c, "SELECT \"nope\"", "SELECT \"nope\" FROM dqs", NULL, 0, SQ_ESYNTAX, "SQLITE_ERROR", "");
  CHECK(strstr(E.msg, "nope") != NULL, "the message names the column: %s", E.msg);
  expect_err(c, "WHERE \"xp\" > 5", "SELECT id FROM dqs WHERE \"xp\" > 5", NULL, 0, SQ_ESYNTAX, "SQLITE_ERROR", "");
  expect_err(c, "DDL with a double-quoted string", "CREATE TABLE dqs2 (a TEXT, CHECK (a <> \"x\"))", NULL, 0,
             SQ_ESYNTAX, "SQLITE_ERROR", "");
  CHECK(strcmp(q_text(c, "SELECT 'x'"), "x") == 0, "single quotes are still strings");
  CHECK(strcmp(q_text(c, "SELECT \"name\" FROM dqs WHERE id = 1"), "a") == 0, "double quotes name columns");
  OK(c, "DROP TABLE dqs", NULL, 0);
}

/* The DECIMAL collation and functions every connection has, and a
 * "DECIMAL TEXT(p,s)" column: text kept as written, read as DECIMAL. */
static void test_decimal_sql(sq_dconn *c) {
  OK(c, "CREATE TABLE dec (k INTEGER PRIMARY KEY, v DECIMAL TEXT(30,2))", NULL, 0);
  static const char *const vals[] = {"10.25", "9.50", "-3.75", "100.00", "123456789012345678.91", "0.10"};
  for (int i = 0; i < 6; i++) {
    sq_value p = sq_text(vals[i], strlen(vals[i]));
    OK(c, "INSERT INTO dec (v) VALUES (?)", &p, 1);
  }
  CHECK(strcmp(q_text(c, "SELECT typeof(v) FROM dec LIMIT 1"), "text") == 0, "TEXT affinity: stored as text");
  OK(c, "SELECT v FROM dec WHERE k = 5", NULL, 0);
  CHECK(C.ctypes[0] == SQ_VTEXT && C.rows[0][0].type == SQ_VTEXT && strcmp(C.rows[0][0].s, "123456789012345678.91") == 0,
        "DECIMAL TEXT column: exact text, typed text");
  OK(c, "SELECT v FROM dec ORDER BY v COLLATE sqorm_decimal", NULL, 0);
  CHECK(C.nrows == 6 && strcmp(C.rows[0][0].s, "-3.75") == 0 && strcmp(C.rows[1][0].s, "0.10") == 0 &&
            strcmp(C.rows[2][0].s, "9.50") == 0 && strcmp(C.rows[3][0].s, "10.25") == 0 &&
            strcmp(C.rows[5][0].s, "123456789012345678.91") == 0,
        "ORDER BY under sqorm_decimal is numeric");
  CHECK(q_int(c, "SELECT count(*) FROM dec WHERE v COLLATE sqorm_decimal > '9.6'") == 3, "> '9.6' under the collation");
  CHECK(q_int(c, "SELECT count(*) FROM dec WHERE v COLLATE sqorm_decimal BETWEEN '9' AND '11'") == 2, "BETWEEN");
  CHECK(q_int(c, "SELECT count(*) FROM dec WHERE v COLLATE sqorm_decimal IN ('9.5', '100')") == 2, "IN");
  CHECK(q_int(c, "SELECT count(*) FROM dec WHERE v COLLATE sqorm_decimal = '123456789012345678.9'") == 0,
        "no double rounding in =");
  CHECK(strcmp(q_text(c, "SELECT sqorm_dsum(v) FROM dec"), "123456789012345795.01") == 0, "sqorm_dsum: %s",
        q_text(c, "SELECT sqorm_dsum(v) FROM dec"));
  CHECK(strcmp(q_text(c, "SELECT sqorm_davg(v) FROM dec WHERE k < 3"), "9.875000") == 0, "sqorm_davg: scale + 4");
  CHECK(strcmp(q_text(c, "SELECT max(v COLLATE sqorm_decimal) FROM dec WHERE k < 5"), "100.00") == 0,
        "max under the collation");
  CHECK(strcmp(q_text(c, "SELECT min(v COLLATE sqorm_decimal) FROM dec"), "-3.75") == 0, "min under the collation");
  OK(c, "SELECT sqorm_dsum(v), sqorm_davg(v) FROM dec WHERE k < 0", NULL, 0);
  CHECK(C.nrows == 1 && C.rows[0][0].type == SQ_VNULL && C.rows[0][1].type == SQ_VNULL, "no rows: NULL, as sum");
  CHECK(strcmp(q_text(c, "SELECT sqorm_dsum(x) FROM (SELECT 1 AS x UNION ALL SELECT 0.5 UNION ALL SELECT NULL "
                         "UNION ALL SELECT '0.25')"),
               "1.75") == 0,
        "integers, reals, NULL and text add up");
  CHECK(strcmp(q_text(c, "SELECT sqorm_dadd('123456789012345678.91', '0.09')"), "123456789012345679.00") == 0,
        "sqorm_dadd exact");
  OK(c, "SELECT sqorm_dadd(NULL, '1')", NULL, 0);
  CHECK(C.rows[0][0].type == SQ_VNULL, "sqorm_dadd with NULL is NULL");
  CHECK(strcmp(q_text(c, "SELECT sqorm_dnorm('1.5', 10, 2)"), "1.50") == 0, "sqorm_dnorm pads to the scale");
  CHECK(strcmp(q_text(c, "SELECT sqorm_dnorm(-0.0, 10, 2)"), "0.00") == 0, "sqorm_dnorm: no negative zero");
  CHECK(strcmp(q_text(c, "SELECT sqorm_dnorm(12, 10, 0)"), "12") == 0, "sqorm_dnorm of an integer");
  expect_err(c, "sqorm_dnorm losing a digit", "SELECT sqorm_dnorm('1.234', 10, 2)", NULL, 0, SQ_EDATABASE,
             "SQLITE_ERROR", "");
  CHECK(strstr(E.msg, "does not fit DECIMAL(10,2)") != NULL, "message: %s", E.msg);
  expect_err(c, "sqorm_dnorm overflow", "SELECT sqorm_dnorm('123456789', 10, 2)", NULL, 0, SQ_EDATABASE,
             "SQLITE_ERROR", "");
  expect_err(c, "sqorm_dsum of a non-decimal", "SELECT sqorm_dsum(x) FROM (SELECT '1' AS x UNION ALL SELECT 'abc')",
             NULL, 0, SQ_EDATABASE, "SQLITE_ERROR", "");
  CHECK(strstr(E.msg, "'abc' is not a decimal number") != NULL, "message: %s", E.msg);
  expect_err(c, "sqorm_dsum of a blob", "SELECT sqorm_dsum(x'00')", NULL, 0, SQ_EDATABASE, "SQLITE_ERROR", "");
  /* a cached statement that failed in an aggregate runs again cleanly */
  CHECK(strcmp(q_text(c, "SELECT sqorm_dsum(v) FROM dec WHERE k < 3"), "19.75") == 0, "sum after a failed sum");
  OK(c, "DROP TABLE dec", NULL, 0);
}

/*
 * Lock conflicts between two connections on a WAL file. A transaction
 * that can never succeed is SQ_EDEADLOCK and is rolled back by the driver
 * (in_transaction is 0 after it): a busy snapshot (read, another commit,
 * write), and a write after reads while the other connection holds the
 * write lock (SQLite refuses to wait then). A lock waited for in vain is
 * SQ_ETIMEOUT and leaves the transaction open.
 */
static void test_locks(void) {
  char path[512];
  tmp_path(path, sizeof path, "locks.db");
  sq_config cfg = make_cfg(path);
  cfg.connect_timeout = 0.1;
  sq_dconn *a = open_cfg(&cfg), *b = open_cfg(&cfg);
  sq_err err;
  if (!a || !b) {
    if (a) D->close(a);
    if (b) D->close(b);
    return;
  }
  OK(a, "CREATE TABLE acct (id INTEGER PRIMARY KEY, n INTEGER)", NULL, 0);
  OK(a, "INSERT INTO acct VALUES (1, 0)", NULL, 0);

  /* busy snapshot */
  sq_err_clear(&err);
  CHECK(D->begin(a, SQ_ISO_DEFAULT, &err) == SQ_OK, "a begins (deferred)");
  CHECK(q_int(a, "SELECT n FROM acct") == 0, "a reads: its snapshot");
  OK(b, "UPDATE acct SET n = 1", NULL, 0);
  int rc = X(a, "UPDATE acct SET n = 10", NULL, 0);
  CHECK(rc == SQ_EDEADLOCK && strcmp(E.code, "SQLITE_BUSY_SNAPSHOT") == 0, "stale snapshot writes -> %s %s (%s)",
        sq_kind_name(rc), E.code, E.msg);
  CHECK(strstr(E.msg, "rolled back") != NULL, "message says rolled back: %s", E.msg);
  CHECK(!D->in_transaction(a), "a's transaction is over");
  CHECK(q_int(a, "SELECT n FROM acct") == 1, "a sees b's commit");
  CHECK(D->begin(a, SQ_ISO_DEFAULT, &err) == SQ_OK && q_int(a, "SELECT n FROM acct") == 1 &&
            OK(a, "UPDATE acct SET n = 11", NULL, 0) && D->commit(a, &err) == SQ_OK,
        "the retry succeeds");

  /* write after reads while b holds the write lock: no wait, deadlock */
  CHECK(D->begin(b, SQ_ISO_DEFAULT, &err) == SQ_OK && OK(b, "UPDATE acct SET n = 12", NULL, 0),
        "b takes the write lock");
  CHECK(D->begin(a, SQ_ISO_DEFAULT, &err) == SQ_OK && q_int(a, "SELECT n FROM acct") == 11, "a reads");
  rc = X(a, "UPDATE acct SET n = 20", NULL, 0);
  CHECK(rc == SQ_EDEADLOCK && strcmp(E.code, "SQLITE_BUSY") == 0, "a writes -> %s %s (%s)", sq_kind_name(rc), E.code,
        E.msg);
  CHECK(!D->in_transaction(a), "a's transaction is over");

  /* a lock waited for in vain: timeout, in autocommit and in a
   * transaction that has not read yet */
  rc = X(a, "UPDATE acct SET n = 30", NULL, 0);
  CHECK(rc == SQ_ETIMEOUT && strcmp(E.code, "SQLITE_BUSY") == 0, "autocommit write -> %s %s", sq_kind_name(rc),
        E.code);
  CHECK(D->begin(a, SQ_ISO_DEFAULT, &err) == SQ_OK, "a begins");
  rc = X(a, "UPDATE acct SET n = 30", NULL, 0);
  CHECK(rc == SQ_ETIMEOUT && D->in_transaction(a), "first statement writes -> %s, transaction still open",
        sq_kind_name(rc));
  CHECK(D->rollback(a, &err) == SQ_OK, "a rolls back");
  CHECK(D->commit(b, &err) == SQ_OK && q_int(a, "SELECT n FROM acct") == 12, "b commits");
  D->close(a);
  D->close(b);
}

static void rm_tmp(void) {
  const char *names[] = {"main.db",    "main.db-wal",    "main.db-shm",    "text.db",
                         "corrupt.db", "corrupt.db-wal", "corrupt.db-shm", "absent.db",
                         "locks.db",   "locks.db-wal",   "locks.db-shm"};
  char path[512];
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    tmp_path(path, sizeof path, names[k]);
    unlink(path);
  }
  rmdir(tmpdir);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/sqorm-sqlite-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_vtable();
  sq_dconn *m = open_path(":memory:");
  if (m) {
    test_memory_open(m);
    test_values(m);
    test_typed_columns(m);
    test_results(m);
    test_errors(m);
    test_transactions(m);
    test_cache(m);
    test_cursor(m, 0);
    test_dqs(m);
    test_decimal_sql(m);
    D->close(m);
  }
  test_file();
  test_locks();
  test_uri_and_memory();
  test_open_failures();
  test_dead();
  rm_tmp();
  coll_reset(&C);
  printf("%d passed, %d failed\n", npass, nfail);
  return nfail ? 1 : 0;
}
