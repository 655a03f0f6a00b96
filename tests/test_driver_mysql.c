/*
 * test_driver_mysql.c - end-to-end test of sq_driver_mysql against a real
 * MariaDB/MySQL server.
 *
 * Settings come from the environment (scripts/test-servers.sh writes them
 * to env.sh): SQORM_TEST_MYSQL_HOST, _PORT, _USER, _PASSWORD, _DB, and for
 * the TLS checks SQORM_TEST_CA, SQORM_TEST_WRONG_CA and
 * SQORM_TEST_MYSQL_PLAIN_PORT (a server without TLS). Exits 77 (skipped)
 * when the connection settings are missing, 1 when a check fails.
 *
 * Build (from the repository root):
 *   gcc -std=c11 -Wall -Wextra -g -fsanitize=address,undefined -Isrc \
 *     tests/test_driver_mysql.c src/core/driver_mysql.c src/core/error.c src/core/util.c \
 *     $(pkg-config --cflags --libs libmariadb) -lm -o test_driver_mysql
 */
#include "sqorm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const sq_driver sq_driver_mysql;
static const sq_driver *D = &sq_driver_mysql;

static int failures, checks;

static void check(int ok, const char *fmt, ...) {
  va_list ap;
  checks++;
  if (!ok) failures++;
  printf("%s - ", ok ? "ok" : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

#define CHECK(cond, ...) check((cond) != 0, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* A sink that copies rows (values are borrowed only during callbacks)  */
/* ------------------------------------------------------------------ */

typedef struct cell {
  int type;
  int64_t i;
  double f;
  char *s;
  size_t n;
} cell;

typedef struct coll {
  int ncols;
  int coltypes[64];
  char colnames[64][64];
  int columns_calls;
  int nrows, cap;
  cell *cells;
  int keep;          /* 0: only count rows and sum column 0 */
  int stop_after;    /* stop (return 1) after this many rows; -1 never */
  int64_t count, sum;
} coll;

static void coll_init(coll *c, int keep) {
  memset(c, 0, sizeof *c);
  c->keep = keep;
  c->stop_after = -1;
}

static void coll_free(coll *c) {
  for (int i = 0; i < c->nrows * c->ncols; i++) free(c->cells[i].s);
  free(c->cells);
  c->cells = NULL;
  c->nrows = c->cap = 0;
}

static int on_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  coll *c = ud;
  (void)err;
  c->columns_calls++;
  c->ncols = ncols;
  for (int i = 0; i < ncols && i < 64; i++) {
    c->coltypes[i] = cols[i].type;
    size_t n = cols[i].name_len < 63 ? cols[i].name_len : 63;
    memcpy(c->colnames[i], cols[i].name, n);
    c->colnames[i][n] = '\0';
  }
  return 0;
}

static int on_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  coll *c = ud;
  (void)err;
  if (c->stop_after >= 0 && c->count >= c->stop_after) return 1;
  c->count++;
  if (ncols > 0 && vals[0].type == SQ_VINT) c->sum += vals[0].u.i;
  if (!c->keep) return 0;
  if (c->nrows == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 8;
    c->cells = realloc(c->cells, (size_t)c->cap * ncols * sizeof *c->cells);
  }
  for (int i = 0; i < ncols; i++) {
    cell *x = &c->cells[c->nrows * ncols + i];
    memset(x, 0, sizeof *x);
    x->type = vals[i].type;
    if (vals[i].type == SQ_VINT) x->i = vals[i].u.i;
    else if (vals[i].type == SQ_VFLOAT) x->f = vals[i].u.f;
    else if (vals[i].type == SQ_VBOOL) x->i = vals[i].u.b;
    else if (vals[i].type == SQ_VTEXT || vals[i].type == SQ_VBLOB) {
      x->n = vals[i].u.s.n;
      x->s = malloc(x->n + 1);
      memcpy(x->s, vals[i].u.s.p, x->n);
      x->s[x->n] = '\0';
    }
  }
  c->nrows++;
  return 0;
}

static const sq_row_sink SINK_TEMPLATE = {NULL, on_columns, on_row};

static sq_row_sink sink_for(coll *c) {
  sq_row_sink s = SINK_TEMPLATE;
  s.ud = c;
  return s;
}

static cell *at(coll *c, int row, int col) { return &c->cells[row * c->ncols + col]; }

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

typedef struct topts {
  const char *host;
  int port;
  const char *password;
  int mode;
  const char *ca, *min_version;
  sq_param *params;
  int nparams;
} topts;

static int open_with(const topts *o, sq_dconn **out, sq_err *err) {
  sq_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dialect = SQ_DIALECT_MYSQL;
  cfg.scheme = (char *)"mysql";
  cfg.host = (char *)(o->host ? o->host : env("SQORM_TEST_MYSQL_HOST"));
  cfg.port = o->port ? o->port : atoi(env("SQORM_TEST_MYSQL_PORT") ? env("SQORM_TEST_MYSQL_PORT") : "0");
  cfg.user = (char *)env("SQORM_TEST_MYSQL_USER");
  cfg.password = (char *)(o->password ? o->password : env("SQORM_TEST_MYSQL_PASSWORD"));
  cfg.database = (char *)env("SQORM_TEST_MYSQL_DB");
  cfg.connect_timeout = 5;
  cfg.ssl.mode = o->mode;
  cfg.ssl.ca = (char *)o->ca;
  cfg.ssl.min_version = (char *)o->min_version;
  cfg.params = o->params;
  cfg.nparams = o->nparams;
  sq_err_clear(err);
  return D->open(&cfg, out, err);
}

static sq_dconn *open_default(void) {
  topts o;
  sq_err err;
  sq_dconn *c = NULL;
  memset(&o, 0, sizeof o);
  if (open_with(&o, &c, &err)) {
    printf("# cannot connect: %s\n", err.msg);
    return NULL;
  }
  return c;
}

static int run(sq_dconn *c, const char *sql, const sq_value *p, int np, coll *out, sq_result *res, sq_err *err) {
  sq_row_sink s;
  sq_result r;
  sq_err_clear(err);
  if (out) s = sink_for(out);
  return D->exec(c, sql, strlen(sql), p, np, out ? &s : NULL, res ? res : &r, err);
}

/* Runs SQL that must succeed; returns 0 on success. */
static int must(sq_dconn *c, const char *sql) {
  sq_err err;
  int rc = run(c, sql, NULL, 0, NULL, NULL, &err);
  if (rc) printf("# %s -> %s (%s)\n", sql, err.msg, err.code);
  return rc;
}

/* First column of the first row as text (ints formatted), into buf. */
static const char *scalar(sq_dconn *c, const char *sql, const sq_value *p, int np, char *buf, size_t cap) {
  coll k;
  sq_err err;
  coll_init(&k, 1);
  buf[0] = '\0';
  if (run(c, sql, p, np, &k, NULL, &err)) {
    /* Truncating a long message is fine here: it is only compared. */
    int n = snprintf(buf, cap, "<error %s: %.200s>", err.code, err.msg);
    (void)n;
  } else if (k.nrows == 0 || k.ncols == 0) {
    snprintf(buf, cap, "<no rows>");
  } else {
    cell *x = at(&k, 0, k.ncols - 1);
    if (x->type == SQ_VINT) snprintf(buf, cap, "%lld", (long long)x->i);
    else if (x->type == SQ_VFLOAT) snprintf(buf, cap, "%.17g", x->f);
    else if (x->type == SQ_VNULL) snprintf(buf, cap, "<null>");
    else snprintf(buf, cap, "%.*s", (int)x->n, x->s);
  }
  coll_free(&k);
  return buf;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  fclose(f);
  return kb;
}

static int text_is(const cell *x, const char *s) {
  return x->type == SQ_VTEXT && x->n == strlen(s) && memcmp(x->s, s, x->n) == 0;
}

static int cells_equal(const cell *a, const cell *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
  case SQ_VNULL: return 1;
  case SQ_VINT: case SQ_VBOOL: return a->i == b->i;
  case SQ_VFLOAT: return a->f == b->f;
  default: return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
  }
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_basics(sq_dconn *c) {
  char buf[256];
  const char *v = D->server_version(c);
  CHECK(v && *v, "server_version is '%s'", v ? v : "(null)");
  CHECK(strcmp(D->name, "mysql") == 0 && D->dialect == SQ_DIALECT_MYSQL && D->ph_style == SQ_PH_QMARK,
        "driver identity");
  CHECK(strcmp(scalar(c, "SELECT @@session.time_zone", NULL, 0, buf, sizeof buf), "+00:00") == 0,
        "session time zone is UTC (%s)", buf);
  CHECK(strcmp(scalar(c, "SELECT @@character_set_client", NULL, 0, buf, sizeof buf), "utf8mb4") == 0,
        "client charset utf8mb4 (%s)", buf);
  CHECK(!D->in_transaction(c), "not in a transaction after connect");
  sq_err err;
  CHECK(D->ping(c, &err) == SQ_OK, "ping");
  CHECK(!D->is_dead(c), "not dead");
}

#define NCOLS_TYPES 22
static const char *TYPES_COLS =
    "id, i64, u64, i32, ti, f, d, dc, s, t, b, vb, dt, dtm, ts, tm, y, bit8, bit64, j, e, bo";

static void check_types_rows(coll *k, const char *how, const char *big, size_t bign) {
  static const char blob[] = {'\0', '\'', '\\', 'x', '"', '\0', (char)0xff};
  CHECK(k->columns_calls == 1 && k->ncols == NCOLS_TYPES, "%s: columns callback once, %d columns", how, k->ncols);
  CHECK(k->nrows == 3, "%s: 3 rows (%d)", how, k->nrows);
  if (k->nrows != 3 || k->ncols != NCOLS_TYPES) return;
  /* declared column types */
  CHECK(k->coltypes[1] == SQ_VINT && k->coltypes[2] == SQ_VNULL && k->coltypes[5] == SQ_VFLOAT &&
        k->coltypes[6] == SQ_VFLOAT && k->coltypes[7] == SQ_VTEXT && k->coltypes[8] == SQ_VTEXT &&
        k->coltypes[10] == SQ_VBLOB && k->coltypes[11] == SQ_VBLOB && k->coltypes[13] == SQ_VTEXT &&
        k->coltypes[17] == SQ_VINT && k->coltypes[18] == SQ_VNULL && k->coltypes[19] == SQ_VTEXT,
        "%s: column types from metadata", how);
  CHECK(strcmp(k->colnames[1], "i64") == 0 && strcmp(k->colnames[21], "bo") == 0, "%s: column names", how);
  /* row 1 */
  CHECK(at(k, 0, 1)->type == SQ_VINT && at(k, 0, 1)->i == INT64_MIN, "%s: BIGINT min", how);
  CHECK(text_is(at(k, 0, 2), "18446744073709551615"), "%s: BIGINT UNSIGNED max as text", how);
  CHECK(at(k, 0, 3)->type == SQ_VINT && at(k, 0, 3)->i == 2147483647, "%s: INT max", how);
  CHECK(at(k, 0, 4)->type == SQ_VINT && at(k, 0, 4)->i == -128, "%s: TINYINT min", how);
  CHECK(at(k, 0, 5)->type == SQ_VFLOAT && at(k, 0, 5)->f == 1.1, "%s: FLOAT 1.1 (%.17g)", how, at(k, 0, 5)->f);
  CHECK(at(k, 0, 6)->type == SQ_VFLOAT && at(k, 0, 6)->f == 3.141592653589793, "%s: DOUBLE pi", how);
  CHECK(text_is(at(k, 0, 7), "12345678901234567890.0123456789"), "%s: DECIMAL exact (%s)", how, at(k, 0, 7)->s);
  CHECK(text_is(at(k, 0, 8), "h\xc3\xa9llo \xf0\x9f\x98\x80"), "%s: 4-byte UTF-8 text", how);
  CHECK(at(k, 0, 9)->type == SQ_VTEXT && at(k, 0, 9)->n == bign && memcmp(at(k, 0, 9)->s, big, bign) == 0,
        "%s: 1 MiB LONGTEXT (%zu bytes)", how, at(k, 0, 9)->n);
  CHECK(at(k, 0, 10)->type == SQ_VBLOB && at(k, 0, 10)->n == sizeof blob && memcmp(at(k, 0, 10)->s, blob, sizeof blob) == 0,
        "%s: BLOB with NUL, quote, backslash, 0xff", how);
  CHECK(at(k, 0, 11)->type == SQ_VBLOB && at(k, 0, 11)->n == 4 && memcmp(at(k, 0, 11)->s, "\0\1'\\", 4) == 0,
        "%s: VARBINARY", how);
  CHECK(text_is(at(k, 0, 12), "2024-02-29"), "%s: DATE", how);
  CHECK(text_is(at(k, 0, 13), "2024-01-02 03:04:05.123456"), "%s: DATETIME(6) with fraction (%s)", how, at(k, 0, 13)->s);
  CHECK(text_is(at(k, 0, 14), "2024-01-02 03:04:05"), "%s: TIMESTAMP(6) zero fraction dropped (%s)", how, at(k, 0, 14)->s);
  CHECK(text_is(at(k, 0, 15), "-838:59:59"), "%s: TIME min (%s)", how, at(k, 0, 15)->s);
  CHECK(at(k, 0, 16)->type == SQ_VINT && at(k, 0, 16)->i == 2024, "%s: YEAR as int", how);
  CHECK(at(k, 0, 17)->type == SQ_VINT && at(k, 0, 17)->i == 5, "%s: BIT(8) as int", how);
  CHECK(text_is(at(k, 0, 18), "18446744073709551615"), "%s: BIT(64) all ones as text", how);
  CHECK(text_is(at(k, 0, 19), "{\"a\": [1, 2]}"), "%s: JSON as text (%s)", how, at(k, 0, 19)->s);
  CHECK(text_is(at(k, 0, 20), "b"), "%s: ENUM as text", how);
  CHECK(at(k, 0, 21)->type == SQ_VINT && at(k, 0, 21)->i == 1, "%s: BOOLEAN (TINYINT(1)) as int", how);
  /* row 2 */
  CHECK(at(k, 1, 1)->type == SQ_VINT && at(k, 1, 1)->i == INT64_MAX, "%s: BIGINT max", how);
  CHECK(at(k, 1, 2)->type == SQ_VINT && at(k, 1, 2)->i == 0, "%s: BIGINT UNSIGNED 0 as int", how);
  CHECK(text_is(at(k, 1, 8), ""), "%s: empty string is text, not NULL", how);
  CHECK(at(k, 1, 9)->type == SQ_VTEXT && at(k, 1, 9)->n == 3 && memcmp(at(k, 1, 9)->s, "a\0b", 3) == 0,
        "%s: text with embedded NUL", how);
  CHECK(at(k, 1, 10)->type == SQ_VBLOB && at(k, 1, 10)->n == 0, "%s: empty blob", how);
  int nulls = 1;
  for (int i = 3; i < NCOLS_TYPES; i++)
    if (i != 8 && i != 9 && i != 10 && at(k, 1, i)->type != SQ_VNULL) nulls = 0;
  CHECK(nulls, "%s: NULLs as SQ_VNULL", how);
  /* row 3 (inserted over the text protocol) */
  CHECK(at(k, 2, 5)->type == SQ_VFLOAT && at(k, 2, 5)->f == 0.1, "%s: FLOAT 0.1 (%.17g)", how, at(k, 2, 5)->f);
  CHECK(at(k, 2, 6)->type == SQ_VFLOAT && at(k, 2, 6)->f == -1.5e300, "%s: DOUBLE -1.5e300", how);
  CHECK(text_is(at(k, 2, 13), "2024-01-02 03:04:05"), "%s: DATETIME(6) without fraction (%s)", how, at(k, 2, 13)->s);
  CHECK(text_is(at(k, 2, 14), "1999-12-31 23:59:59.500000"), "%s: TIMESTAMP fraction (%s)", how, at(k, 2, 14)->s);
  CHECK(text_is(at(k, 2, 15), "12:34:56.500000"), "%s: TIME with fraction (%s)", how, at(k, 2, 15)->s);
  CHECK(text_is(at(k, 2, 7), "-0.0000000001"), "%s: small DECIMAL (%s)", how, at(k, 2, 7)->s);
  CHECK(at(k, 2, 1)->type == SQ_VINT && at(k, 2, 1)->i == -1, "%s: -1", how);
  CHECK(text_is(at(k, 2, 2), "9223372036854775808"), "%s: INT64_MAX+1 unsigned as text", how);
}

static void test_types(sq_dconn *c) {
  sq_err err;
  sq_result res;
  static const char blob[] = {'\0', '\'', '\\', 'x', '"', '\0', (char)0xff};
  size_t bign = 1 << 20;
  char *big = malloc(bign);
  for (size_t i = 0; i < bign; i++) big[i] = (char)('a' + i % 26);
  big[1000] = '\'';
  big[2000] = '\\';

  must(c, "DROP TABLE IF EXISTS sq_types");
  int rc = must(c, "CREATE TABLE sq_types (id INT PRIMARY KEY AUTO_INCREMENT, i64 BIGINT, u64 BIGINT UNSIGNED,"
                   " i32 INT, ti TINYINT, f FLOAT, d DOUBLE, dc DECIMAL(30,10), s VARCHAR(255), t LONGTEXT,"
                   " b LONGBLOB, vb VARBINARY(16), dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6),"
                   " y YEAR, bit8 BIT(8), bit64 BIT(64), j JSON, e ENUM('a','b'), bo BOOLEAN)"
                   " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
  CHECK(rc == SQ_OK, "create types table");

  sq_value p[20];
  p[0] = sq_int(INT64_MIN);
  p[1] = sq_text("18446744073709551615", 20);
  p[2] = sq_int(2147483647);
  p[3] = sq_int(-128);
  p[4] = sq_float(1.1);
  p[5] = sq_float(3.141592653589793);
  p[6] = sq_text("12345678901234567890.0123456789", 31);
  p[7] = sq_text("h\xc3\xa9llo \xf0\x9f\x98\x80", 11);
  p[8] = sq_text(big, bign);
  p[9] = sq_blob(blob, sizeof blob);
  p[10] = sq_blob("\0\1'\\", 4);
  p[11] = sq_text("2024-02-29", 10);
  p[12] = sq_text("2024-01-02 03:04:05.123456", 26);
  p[13] = sq_text("2024-01-02 03:04:05", 19);
  p[14] = sq_text("-838:59:59", 10);
  p[15] = sq_int(2024);
  p[16] = sq_int(5);
  p[17] = sq_text("{\"a\": [1, 2]}", 13);
  p[18] = sq_text("b", 1);
  p[19] = sq_bool(1);
  rc = run(c, "INSERT INTO sq_types (i64, u64, i32, ti, f, d, dc, s, t, b, vb, dt, dtm, ts, tm, y, bit8, bit64, j, e, bo)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, x'FFFFFFFFFFFFFFFF', ?, ?, ?)",
           p, 20, NULL, &res, &err);
  CHECK(rc == SQ_OK, "insert row 1 with every value type (%s)", err.msg);
  CHECK(res.affected_rows == 1 && res.last_insert_id == 1 && !res.has_result_set,
        "insert result: affected %lld, id %lld", (long long)res.affected_rows, (long long)res.last_insert_id);

  sq_value q[5] = {sq_int(INT64_MAX), sq_int(0), sq_text("", 0), sq_text("a\0b", 3), sq_blob(NULL, 0)};
  rc = run(c, "INSERT INTO sq_types (i64, u64, s, t, b) VALUES (?, ?, ?, ?, ?)", q, 5, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.last_insert_id == 2, "insert row 2: edges, empty string, NUL byte (%s)", err.msg);

  rc = run(c, "INSERT INTO sq_types (i64, u64, f, d, dc, dtm, ts, tm) VALUES (-1, 9223372036854775808, 0.1,"
              " -1.5e300, -0.0000000001, '2024-01-02 03:04:05', '1999-12-31 23:59:59.5', '12:34:56.5')",
           NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 1 && res.last_insert_id == 3, "insert row 3 over the text protocol (%s)", err.msg);

  char sql[512];
  coll text_k, ps_k;
  snprintf(sql, sizeof sql, "SELECT %s FROM sq_types ORDER BY id", TYPES_COLS);
  coll_init(&text_k, 1);
  rc = run(c, sql, NULL, 0, &text_k, &res, &err);
  CHECK(rc == SQ_OK && res.has_result_set && res.rows == 3 && res.affected_rows == -1,
        "select over the text protocol (%s)", err.msg);
  check_types_rows(&text_k, "text", big, bign);

  snprintf(sql, sizeof sql, "SELECT %s FROM sq_types WHERE id > ? ORDER BY id", TYPES_COLS);
  sq_value zero = sq_int(0);
  for (int round = 0; round < 2; round++) { /* twice: second run uses the cached statement */
    coll_init(&ps_k, 1);
    rc = run(c, sql, &zero, 1, &ps_k, &res, &err);
    CHECK(rc == SQ_OK && res.has_result_set && res.rows == 3, "select as prepared statement, run %d (%s)", round + 1, err.msg);
    check_types_rows(&ps_k, round ? "prepared (cached)" : "prepared", big, bign);
    int same = ps_k.nrows == text_k.nrows && ps_k.ncols == text_k.ncols;
    for (int i = 0; same && i < ps_k.nrows * ps_k.ncols; i++) {
      if (!cells_equal(&ps_k.cells[i], &text_k.cells[i])) {
        printf("# differs at row %d col %d\n", i / ps_k.ncols, i % ps_k.ncols);
        same = 0;
      }
    }
    CHECK(same, "text and binary protocol give identical values");
    coll_free(&ps_k);
  }
  coll_free(&text_k);

  /* values round-tripped through SELECT ? */
  struct { sq_value v; int type; } rt[] = {
    {sq_int(INT64_MIN), SQ_VINT}, {sq_int(INT64_MAX), SQ_VINT}, {sq_float(1e308), SQ_VFLOAT},
    {sq_float(5e-324), SQ_VFLOAT}, {sq_float(-0.1), SQ_VFLOAT}, {sq_text("x\0y", 3), SQ_VTEXT},
    {sq_blob("\0\xff", 2), SQ_VBLOB}, {sq_bool(1), SQ_VINT}, {sq_null(), SQ_VNULL},
  };
  for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
    coll k;
    coll_init(&k, 1);
    rc = run(c, "SELECT ?", &rt[i].v, 1, &k, NULL, &err);
    int ok = rc == SQ_OK && k.nrows == 1 && at(&k, 0, 0)->type == rt[i].type;
    if (ok && rt[i].type == SQ_VINT) ok = at(&k, 0, 0)->i == (rt[i].v.type == SQ_VBOOL ? 1 : rt[i].v.u.i);
    if (ok && rt[i].type == SQ_VFLOAT) ok = at(&k, 0, 0)->f == rt[i].v.u.f;
    if (ok && (rt[i].type == SQ_VTEXT || rt[i].type == SQ_VBLOB))
      ok = at(&k, 0, 0)->n == rt[i].v.u.s.n && memcmp(at(&k, 0, 0)->s, rt[i].v.u.s.p, rt[i].v.u.s.n) == 0;
    CHECK(ok, "SELECT ? round trip of value %zu (type %d -> %d)", i, rt[i].v.type, k.nrows ? at(&k, 0, 0)->type : -1);
    coll_free(&k);
  }
  {
    coll k;
    coll_init(&k, 1);
    rc = run(c, "SELECT 1e308, -2.5e-300, CAST(1.25 AS DECIMAL(10,3)), NULL, CAST('x' AS BINARY)", NULL, 0, &k, NULL, &err);
    CHECK(rc == SQ_OK && k.nrows == 1 && at(&k, 0, 0)->f == 1e308 && at(&k, 0, 1)->f == -2.5e-300 &&
          text_is(at(&k, 0, 2), "1.250") && at(&k, 0, 3)->type == SQ_VNULL && k.coltypes[3] == SQ_VNULL &&
          at(&k, 0, 4)->type == SQ_VBLOB,
          "text protocol expressions: doubles, decimal, NULL column, binary cast");
    coll_free(&k);
  }
  /* strings outgrowing their buffers on several rows of one result */
  for (int ps = 0; ps < 2; ps++) {
    coll k;
    sq_value zero1 = sq_int(0);
    coll_init(&k, 1);
    rc = run(c, ps ? "SELECT n, REPEAT(CHAR(96 + n USING utf8mb4), 5000 * n) FROM (SELECT 1 n UNION ALL SELECT 3 UNION ALL"
                     " SELECT 2 UNION ALL SELECT 30 UNION ALL SELECT 4) t WHERE n > ?"
                   : "SELECT n, REPEAT(CHAR(96 + n USING utf8mb4), 5000 * n) FROM (SELECT 1 n UNION ALL SELECT 3 UNION ALL"
                     " SELECT 2 UNION ALL SELECT 30 UNION ALL SELECT 4) t",
             ps ? &zero1 : NULL, ps, &k, NULL, &err);
    int ok = rc == SQ_OK && k.nrows == 5;
    for (int r = 0; ok && r < 5; r++) {
      cell *x = at(&k, r, 1);
      int64_t m = at(&k, r, 0)->i;
      ok = x->type == SQ_VTEXT && x->n == (size_t)(5000 * m);
      for (size_t j = 0; ok && j < x->n; j++) ok = x->s[j] == (char)(96 + m);
    }
    CHECK(ok, "%s: long strings of varying sizes on consecutive rows", ps ? "prepared" : "text");
    coll_free(&k);
  }
  /* affected rows are matched rows (CLIENT_FOUND_ROWS), as on every dialect */
  sq_value upd[2] = {sq_int(7), sq_int(1)};
  rc = run(c, "UPDATE sq_types SET i32 = ? WHERE id >= ?", upd, 2, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 3, "update affected 3 rows (%lld)", (long long)res.affected_rows);
  rc = run(c, "UPDATE sq_types SET i32 = ? WHERE id >= ?", upd, 2, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 3, "update to the same value: 3 matched rows (%lld)", (long long)res.affected_rows);
  free(big);
}

static void test_errors(sq_dconn *c) {
  sq_err err;
  sq_value v[2];
  must(c, "DROP TABLE IF EXISTS sq_err_t");
  must(c, "CREATE TABLE sq_err_t (id INT PRIMARY KEY, a INT NOT NULL) ENGINE=InnoDB");
  v[0] = sq_int(1);
  v[1] = sq_int(1);
  run(c, "INSERT INTO sq_err_t VALUES (?, ?)", v, 2, NULL, NULL, &err);
  int rc = run(c, "INSERT INTO sq_err_t VALUES (?, ?)", v, 2, NULL, NULL, &err);
  CHECK(rc == SQ_EUNIQUE && strcmp(err.code, "1062") == 0 && strcmp(err.sqlstate, "23000") == 0,
        "duplicate key: %s %s %s '%s'", sq_kind_name(rc), err.code, err.sqlstate, err.msg);
  rc = run(c, "INSERT INTO sq_err_t VALUES (2, 2), (1, 1)", NULL, 0, NULL, NULL, &err);
  CHECK(rc == SQ_EUNIQUE && strcmp(err.code, "1062") == 0, "duplicate key over the text protocol");
  v[0] = sq_int(3);
  v[1] = sq_null();
  rc = run(c, "INSERT INTO sq_err_t VALUES (?, ?)", v, 2, NULL, NULL, &err);
  CHECK(rc == SQ_ECONSTRAINT && strcmp(err.code, "1048") == 0 && strcmp(err.sqlstate, "23000") == 0,
        "not null: %s %s %s", sq_kind_name(rc), err.code, err.sqlstate);
  rc = run(c, "SELEC 1", NULL, 0, NULL, NULL, &err);
  CHECK(rc == SQ_ESYNTAX && strcmp(err.code, "1064") == 0 && strcmp(err.sqlstate, "42000") == 0 &&
        strstr(err.msg, "SQL syntax"), "syntax error: %s %s %s", sq_kind_name(rc), err.code, err.sqlstate);
  rc = run(c, "SELEC ?", v, 1, NULL, NULL, &err);
  CHECK(rc == SQ_ESYNTAX && strcmp(err.code, "1064") == 0, "syntax error while preparing");
  rc = run(c, "SELECT * FROM sq_no_such_table", NULL, 0, NULL, NULL, &err);
  CHECK(rc == SQ_ESYNTAX && strcmp(err.code, "1146") == 0 && strcmp(err.sqlstate, "42S02") == 0,
        "unknown table: %s %s %s", sq_kind_name(rc), err.code, err.sqlstate);
  rc = run(c, "SELECT no_such_col FROM sq_err_t WHERE id = ?", v, 1, NULL, NULL, &err);
  CHECK(rc == SQ_ESYNTAX && strcmp(err.code, "1054") == 0, "unknown column: %s %s", sq_kind_name(rc), err.code);
  rc = run(c, "SELECT ?, ?", v, 1, NULL, NULL, &err);
  CHECK(rc == SQ_EUSAGE, "placeholder count mismatch is a usage error: %s", err.msg);
  rc = run(c, "SELECT 1 / 0 FROM sq_err_t WHERE id = ?", v, 1, NULL, NULL, &err);
  CHECK(rc == SQ_OK, "statement still works after errors");
  CHECK(!D->is_dead(c), "errors do not kill the connection");
  must(c, "DROP TABLE sq_err_t");
}

static void test_transactions(sq_dconn *c) {
  sq_err err;
  char buf[128];
  must(c, "DROP TABLE IF EXISTS sq_tx");
  must(c, "CREATE TABLE sq_tx (a INT) ENGINE=InnoDB");
  CHECK(D->begin(c, SQ_ISO_DEFAULT, &err) == SQ_OK && D->in_transaction(c), "begin -> in transaction");
  CHECK(D->begin(c, SQ_ISO_DEFAULT, &err) == SQ_EUSAGE, "nested begin refused: %s", err.msg);
  must(c, "INSERT INTO sq_tx VALUES (1)");
  CHECK(D->savepoint(c, "sq_sp_1", &err) == SQ_OK, "savepoint");
  must(c, "INSERT INTO sq_tx VALUES (2)");
  CHECK(D->rollback_to(c, "sq_sp_1", &err) == SQ_OK, "rollback to savepoint");
  CHECK(D->release(c, "sq_sp_1", &err) == SQ_OK, "release savepoint");
  CHECK(D->release(c, "sq_sp_1", &err) != SQ_OK && strcmp(err.code, "1305") == 0,
        "release of an unknown savepoint fails (%s %s)", err.code, err.msg);
  CHECK(D->savepoint(c, "bad name; DROP", &err) == SQ_EUSAGE, "bad savepoint name refused");
  CHECK(D->commit(c, &err) == SQ_OK && !D->in_transaction(c), "commit -> not in transaction");
  CHECK(strcmp(scalar(c, "SELECT GROUP_CONCAT(a) FROM sq_tx", NULL, 0, buf, sizeof buf), "1") == 0,
        "savepoint rollback kept only row 1 (%s)", buf);

  CHECK(D->begin(c, SQ_ISO_SERIALIZABLE, &err) == SQ_OK, "begin serializable");
  scalar(c, "SELECT COUNT(*) FROM sq_tx", NULL, 0, buf, sizeof buf);
  must(c, "DO SLEEP(0.15)"); /* INNODB_TRX is a cache refreshed at most every 0.1 s */
  scalar(c, "SELECT trx_isolation_level FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()",
         NULL, 0, buf, sizeof buf);
  CHECK(strcmp(buf, "SERIALIZABLE") == 0, "transaction isolation is SERIALIZABLE (%s)", buf);
  CHECK(D->rollback(c, &err) == SQ_OK && !D->in_transaction(c), "rollback");
  CHECK(D->begin(c, SQ_ISO_READ_COMMITTED, &err) == SQ_OK, "begin read committed");
  scalar(c, "SELECT COUNT(*) FROM sq_tx", NULL, 0, buf, sizeof buf);
  must(c, "DO SLEEP(0.15)"); /* INNODB_TRX is a cache refreshed at most every 0.1 s */
  scalar(c, "SELECT trx_isolation_level FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()",
         NULL, 0, buf, sizeof buf);
  CHECK(strcmp(buf, "READ COMMITTED") == 0, "transaction isolation is READ COMMITTED (%s)", buf);
  CHECK(D->rollback(c, &err) == SQ_OK, "rollback");
  scalar(c, "SELECT @@tx_isolation", NULL, 0, buf, sizeof buf);
  CHECK(strcmp(buf, "REPEATABLE-READ") == 0, "session isolation untouched (%s)", buf);

  CHECK(D->begin(c, SQ_ISO_DEFAULT, &err) == SQ_OK, "begin before reset");
  must(c, "INSERT INTO sq_tx VALUES (3)");
  CHECK(D->reset(c, 0, &err) == SQ_OK && !D->in_transaction(c), "reset rolls back");
  CHECK(strcmp(scalar(c, "SELECT COUNT(*) FROM sq_tx", NULL, 0, buf, sizeof buf), "1") == 0, "row of reset transaction gone");
  must(c, "SET autocommit = 0");
  CHECK(D->reset(c, 0, &err) == SQ_OK, "reset with autocommit off");
  CHECK(strcmp(scalar(c, "SELECT @@autocommit", NULL, 0, buf, sizeof buf), "1") == 0, "reset restores autocommit");
  must(c, "DROP TABLE sq_tx");
}

/* Streams 100k rows through a cursor and checks memory stays bounded. */
static void stream(sq_dconn *c, const char *how, const char *sql, const sq_value *p, int np) {
  sq_err err;
  coll k;
  sq_dcursor *cur = NULL;
  coll_init(&k, 0);
  sq_err_clear(&err);
  sq_row_sink s = sink_for(&k);
  long before = rss_kb(), peak = before;
  int rc = D->cursor_open(c, sql, strlen(sql), p, np, &s, &cur, &err);
  CHECK(rc == SQ_OK && k.columns_calls == 1 && k.ncols == 2, "%s: cursor open (%s)", how, err.msg);
  if (rc) return;
  sq_err e2;
  CHECK(run(c, "SELECT 1", NULL, 0, NULL, NULL, &e2) == SQ_EUSAGE, "%s: connection busy while the cursor is open", how);
  int has = 1;
  while (has) {
    rc = D->cursor_fetch(cur, &has, &err);
    if (rc) break;
    if ((k.count & 8191) == 0) {
      long now = rss_kb();
      if (now > peak) peak = now;
    }
  }
  D->cursor_close(cur);
  CHECK(rc == SQ_OK && k.count == 100000 && k.sum == 5000050000LL, "%s: 100000 rows streamed (%lld, sum %lld)",
        how, (long long)k.count, (long long)k.sum);
  CHECK(peak - before < 8 * 1024, "%s: memory bounded while streaming ~22 MB (RSS grew %ld KiB)", how, peak - before);
  CHECK(run(c, "SELECT 1", NULL, 0, NULL, NULL, &err) == SQ_OK, "%s: connection usable after the cursor", how);
}

/* 1..100000 without relying on recursion limits or the sequence engine */
#define SEQ_100K                                                                   \
  "WITH RECURSIVE d(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM d WHERE x < 9),"   \
  " seq(n) AS (SELECT a.x + 10 * b.x + 100 * c.x + 1000 * e.x + 10000 * f.x + 1"   \
  " FROM d a, d b, d c, d e, d f)"

static void test_cursors(sq_dconn *c) {
  sq_err err;
  char buf[64];
  sq_value n = sq_int(100000);
  stream(c, "text cursor", SEQ_100K " SELECT n, REPEAT('x', 200) FROM seq", NULL, 0);
  stream(c, "prepared cursor", SEQ_100K " SELECT n, REPEAT('x', 200) FROM seq WHERE n <= ?", &n, 1);

  /* closed early, both protocols */
  for (int ps = 0; ps < 2; ps++) {
    coll k;
    sq_dcursor *cur = NULL;
    coll_init(&k, 0);
    sq_row_sink s = sink_for(&k);
    const char *sql = ps ? SEQ_100K " SELECT n FROM seq WHERE n <= ? ORDER BY n" : SEQ_100K " SELECT n FROM seq ORDER BY n";
    int rc = D->cursor_open(c, sql, strlen(sql), ps ? &n : NULL, ps, &s, &cur, &err);
    int has = 0;
    for (int i = 0; rc == SQ_OK && i < 10; i++) rc = D->cursor_fetch(cur, &has, &err);
    CHECK(rc == SQ_OK && k.count == 10 && k.sum == 55, "%s cursor: 10 rows fetched", ps ? "prepared" : "text");
    D->cursor_close(cur);
    CHECK(strcmp(scalar(c, "SELECT 40 + ?", &n, 1, buf, sizeof buf), "100040") == 0 &&
          strcmp(scalar(c, "SELECT 42", NULL, 0, buf, sizeof buf), "42") == 0,
          "%s cursor closed early: connection usable", ps ? "prepared" : "text");
  }
  /* a cursor over a statement without a result set */
  {
    sq_dcursor *cur = NULL;
    coll k;
    coll_init(&k, 0);
    sq_row_sink s = sink_for(&k);
    int rc = D->cursor_open(c, "DO 1", 4, NULL, 0, &s, &cur, &err);
    int has = 1;
    if (rc == SQ_OK) rc = D->cursor_fetch(cur, &has, &err);
    CHECK(rc == SQ_OK && has == 0 && k.columns_calls == 0, "cursor over a statement with no rows");
    D->cursor_close(cur);
  }
  /* sink stops exec */
  for (int ps = 0; ps < 2; ps++) {
    coll k;
    coll_init(&k, 0);
    k.stop_after = 1;
    int rc = run(c, ps ? "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 5000)"
                         " SELECT n FROM seq WHERE n > ?"
                       : "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 5000)"
                         " SELECT n FROM seq",
                 ps ? &(sq_value){SQ_VINT, {.i = 0}} : NULL, ps, &k, NULL, &err);
    CHECK(rc == SQ_EUSAGE && strcmp(err.msg, "row callback stopped") == 0 && k.count == 1,
          "%s: a row callback stopping the statement -> %s '%s'", ps ? "prepared" : "text", sq_kind_name(rc), err.msg);
    CHECK(strcmp(scalar(c, "SELECT 42", NULL, 0, buf, sizeof buf), "42") == 0, "connection usable after a stopped exec");
  }
}

/* A procedure returning two result sets: the first goes to the sink, the
 * rest is drained so the connection stays usable. */
static void test_call(sq_dconn *c) {
  sq_err err;
  char buf[64];
  must(c, "DROP PROCEDURE IF EXISTS sq_two");
  must(c, "CREATE PROCEDURE sq_two(IN x INT) BEGIN SELECT x AS a; SELECT x + 1 AS b, 'y' AS c; END");
  for (int ps = 0; ps < 2; ps++) {
    coll k;
    sq_value v = sq_int(41);
    coll_init(&k, 1);
    int rc = run(c, ps ? "CALL sq_two(?)" : "CALL sq_two(41)", ps ? &v : NULL, ps, &k, NULL, &err);
    CHECK(rc == SQ_OK && k.nrows == 1 && k.ncols == 1 && at(&k, 0, 0)->i == 41,
          "%s CALL: first result set delivered (%s)", ps ? "prepared" : "text", rc ? err.msg : "ok");
    coll_free(&k);
    CHECK(strcmp(scalar(c, "SELECT 42", NULL, 0, buf, sizeof buf), "42") == 0 &&
          strcmp(scalar(c, "SELECT ? + 1", &v, 1, buf, sizeof buf), "42") == 0,
          "%s CALL: remaining results drained", ps ? "prepared" : "text");
  }
  must(c, "DROP PROCEDURE sq_two");
}

static void test_stmt_cache(sq_dconn *c) {
  char buf[128], sql[64];
  sq_err err;
  long base = atol(scalar(c, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                             " WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'", NULL, 0, buf, sizeof buf));
  int bad = 0;
  for (int i = 0; i < 200; i++) {
    sq_value v = sq_int(i);
    snprintf(sql, sizeof sql, "SELECT ? + %d", i);
    scalar(c, sql, &v, 1, buf, sizeof buf);
    if (atol(buf) != 2L * i) bad++;
  }
  CHECK(bad == 0, "200 distinct prepared statements ran");
  long after = atol(scalar(c, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                              " WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'", NULL, 0, buf, sizeof buf));
  CHECK(after - base <= 64 && after - base >= 32, "server-side prepared statements bounded: %ld (was %ld)", after, base);
  long p0 = atol(scalar(c, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS"
                           " WHERE VARIABLE_NAME = 'COM_STMT_PREPARE'", NULL, 0, buf, sizeof buf));
  for (int i = 0; i < 20; i++) {
    sq_value v = sq_int(i);
    scalar(c, "SELECT ? * 2", &v, 1, buf, sizeof buf);
  }
  long p1 = atol(scalar(c, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS"
                           " WHERE VARIABLE_NAME = 'COM_STMT_PREPARE'", NULL, 0, buf, sizeof buf));
  CHECK(p1 - p0 == 1, "a repeated statement is prepared once (%ld prepares)", p1 - p0);

  /* the server changes a cached statement's result under it */
  must(c, "DROP TABLE IF EXISTS sq_alter");
  must(c, "CREATE TABLE sq_alter (a INT)");
  must(c, "INSERT INTO sq_alter VALUES (1)");
  sq_value one = sq_int(1);
  coll k;
  coll_init(&k, 1);
  run(c, "SELECT * FROM sq_alter WHERE a = ?", &one, 1, &k, NULL, &err);
  coll_free(&k);
  must(c, "ALTER TABLE sq_alter ADD COLUMN b INT DEFAULT 7");
  coll_init(&k, 1);
  int rc = run(c, "SELECT * FROM sq_alter WHERE a = ?", &one, 1, &k, NULL, &err);
  CHECK(rc == SQ_OK && k.ncols == 2 && k.nrows == 1 && at(&k, 0, 1)->i == 7,
        "cached SELECT * after ALTER TABLE sees the new column (%s)", rc ? err.msg : "ok");
  coll_free(&k);
  must(c, "DROP TABLE sq_alter");
}

/* Statements the server cannot prepare go over the text protocol with
 * escaped values. */
static void test_fallback(sq_dconn *c) {
  sq_err err;
  static const char blob[] = {'\0', '\'', '\\', '"', 'x', (char)0xff};
  const char *txt = "it's a \\ \"q\" ? -- not a comment \xf0\x9f\x98\x80";
  sq_value p[5] = {sq_text(txt, strlen(txt)), sq_blob(blob, sizeof blob), sq_int(-5), sq_null(), sq_float(2.5)};
  must(c, "PREPARE sq_fb FROM 'SELECT ?, ?, ?, ?, ?'");
  for (int nobs = 0; nobs < 2; nobs++) {
    if (nobs) must(c, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
    coll k;
    coll_init(&k, 1);
    int rc = run(c, "EXECUTE sq_fb USING ?, ?, /* ? */ ?, ?, ?", p, 5, &k, NULL, &err);
    CHECK(rc == SQ_OK && k.nrows == 1, "unpreparable statement (1295) falls back to text%s (%s)",
          nobs ? " with NO_BACKSLASH_ESCAPES" : "", rc ? err.msg : "ok");
    if (rc == SQ_OK && k.nrows == 1) {
      CHECK(text_is(at(&k, 0, 0), txt), "fallback: text value intact (%s)", at(&k, 0, 0)->s);
      CHECK(at(&k, 0, 1)->type == SQ_VBLOB && at(&k, 0, 1)->n == sizeof blob &&
            memcmp(at(&k, 0, 1)->s, blob, sizeof blob) == 0, "fallback: blob intact");
      CHECK(at(&k, 0, 2)->type == SQ_VINT && at(&k, 0, 2)->i == -5, "fallback: int");
      CHECK(at(&k, 0, 3)->type == SQ_VNULL, "fallback: NULL");
      CHECK(at(&k, 0, 4)->type == SQ_VFLOAT && at(&k, 0, 4)->f == 2.5, "fallback: float");
    }
    coll_free(&k);
  }
  must(c, "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')");
  int rc = run(c, "EXECUTE sq_fb USING ?, ?", p, 3, NULL, NULL, &err);
  CHECK(rc == SQ_EUSAGE, "fallback: placeholder count checked (%s)", err.msg);
  must(c, "DEALLOCATE PREPARE sq_fb");
}

static void test_dead(void) {
  sq_dconn *a = open_default(), *b = open_default();
  char buf[64];
  sq_err err;
  if (!a || !b) {
    CHECK(0, "two connections for the kill test");
    if (a) D->close(a);
    if (b) D->close(b);
    return;
  }
  sq_value id = sq_int(atoll(scalar(a, "SELECT CONNECTION_ID()", NULL, 0, buf, sizeof buf)));
  sq_value one = sq_int(1);
  scalar(a, "SELECT ? + 1", &one, 1, buf, sizeof buf); /* leaves a cached statement behind */
  int rc = run(b, "KILL ?", &id, 1, NULL, NULL, &err);
  CHECK(rc == SQ_OK, "kill the first session (%s)", err.msg);
  rc = run(a, "SELECT ? + 1", &one, 1, NULL, NULL, &err);
  CHECK(rc == SQ_ECONNECTION, "statement on the killed session: %s %s '%s'", sq_kind_name(rc), err.code, err.msg);
  CHECK(D->is_dead(a), "killed session is dead");
  CHECK(D->ping(a, &err) == SQ_ECONNECTION, "ping on the killed session fails");
  CHECK(D->ping(b, &err) == SQ_OK && !D->is_dead(b), "other session alive");
  D->close(a);

  /* text-protocol path and KILL without the statement cache */
  a = open_default();
  if (!a) return;
  id = sq_int(atoll(scalar(a, "SELECT CONNECTION_ID()", NULL, 0, buf, sizeof buf)));
  run(b, "KILL ?", &id, 1, NULL, NULL, &err);
  rc = run(a, "SELECT 1", NULL, 0, NULL, NULL, &err);
  CHECK(rc == SQ_ECONNECTION && D->is_dead(a), "text statement on a killed session: %s %s", sq_kind_name(rc), err.code);
  D->close(a);
  D->close(b);
}

static void test_connect_errors(void) {
  topts o;
  sq_err err;
  sq_dconn *c = NULL;
  memset(&o, 0, sizeof o);
  o.password = "wrong password";
  int rc = open_with(&o, &c, &err);
  CHECK(rc == SQ_EAUTH && strcmp(err.code, "1045") == 0 && strcmp(err.sqlstate, "28000") == 0 && !c,
        "bad password: %s %s %s '%s'", sq_kind_name(rc), err.code, err.sqlstate, err.msg);
  memset(&o, 0, sizeof o);
  o.host = "127.0.0.1";
  o.port = 1;
  rc = open_with(&o, &c, &err);
  CHECK(rc == SQ_ECONNECTION && !c, "connection refused: %s %s '%s'", sq_kind_name(rc), err.code, err.msg);
  sq_param bad = {(char *)"no_such_option", (char *)"1"};
  memset(&o, 0, sizeof o);
  o.params = &bad;
  o.nparams = 1;
  rc = open_with(&o, &c, &err);
  CHECK(rc == SQ_EUSAGE && strstr(err.msg, "no_such_option"), "unknown parameter: %s", err.msg);
  sq_param good[2] = {{(char *)"read_timeout", (char *)"30"}, {(char *)"write_timeout", (char *)"30"}};
  o.params = good;
  o.nparams = 2;
  rc = open_with(&o, &c, &err);
  CHECK(rc == SQ_OK, "read_timeout / write_timeout parameters (%s)", rc ? err.msg : "ok");
  if (c) D->close(c);
  c = NULL;
  sq_param ra = {(char *)"restricted_auth", (char *)"client_ed25519"};
  o.params = &ra;
  o.nparams = 1;
  rc = open_with(&o, &c, &err);
  CHECK(rc != SQ_OK && !c, "restricted_auth refuses the account's plugin: %s %s '%s'", sq_kind_name(rc), err.code, err.msg);
  ra.value = (char *)"mysql_native_password,client_ed25519";
  rc = open_with(&o, &c, &err);
  CHECK(rc == SQ_OK, "restricted_auth allowing the account's plugin (%s)", rc ? err.msg : "ok");
  if (c) D->close(c);
  c = NULL;
  /* "localhost" goes over TCP (the server's socket is not where the
   * library would look) */
  memset(&o, 0, sizeof o);
  o.host = "localhost";
  o.mode = SQ_SSL_DISABLE;
  rc = open_with(&o, &c, &err);
  CHECK(rc == SQ_OK, "host localhost connects over TCP (%s)", rc ? err.msg : "ok");
  if (c) D->close(c);
}

/* Connects with the given TLS settings; returns the kind and, on success,
 * the session's Ssl_version ("" without TLS) in ver. */
static int tls_try(const char *host, int port, int mode, const char *ca, const char *minv, char *ver, size_t cap, sq_err *err) {
  topts o;
  sq_dconn *c = NULL;
  memset(&o, 0, sizeof o);
  o.host = host;
  o.port = port;
  o.mode = mode;
  o.ca = ca;
  o.min_version = minv;
  ver[0] = '\0';
  int rc = open_with(&o, &c, err);
  if (rc) return rc;
  scalar(c, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION'",
         NULL, 0, ver, cap);
  D->close(c);
  return SQ_OK;
}

static void test_tls(void) {
  const char *ca = env("SQORM_TEST_CA"), *wrong = env("SQORM_TEST_WRONG_CA");
  const char *plain = env("SQORM_TEST_MYSQL_PLAIN_PORT");
  char ver[64];
  sq_err err;
  int rc;
  if (!ca || !wrong) {
    printf("# SQORM_TEST_CA / SQORM_TEST_WRONG_CA not set: TLS checks skipped\n");
    return;
  }
  rc = tls_try("127.0.0.1", 0, SQ_SSL_REQUIRE, NULL, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && ver[0], "require without CA accepts the test server's certificate (%s) %s", ver, rc ? err.msg : "");
  rc = tls_try("127.0.0.1", 0, SQ_SSL_DEFAULT, NULL, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && ver[0], "default mode uses TLS when offered (%s)", ver);
  rc = tls_try("127.0.0.1", 0, SQ_SSL_DISABLE, NULL, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && ver[0] == '\0', "disable: no TLS (Ssl_version '%s')", ver);
  rc = tls_try("127.0.0.1", 0, SQ_SSL_VERIFY_IDENTITY, ca, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && ver[0], "verify_identity with the right CA to 127.0.0.1 (%s)", rc ? err.msg : ver);
  rc = tls_try("127.0.0.1", 0, SQ_SSL_VERIFY_IDENTITY, wrong, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_ECONNECTION, "verify_identity with the wrong CA fails: %s %s '%s'", sq_kind_name(rc), err.code, err.msg);
  rc = tls_try("localhost", 0, SQ_SSL_VERIFY_IDENTITY, ca, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_ECONNECTION, "verify_identity to 'localhost' (name mismatch) fails: %s '%s'", sq_kind_name(rc), err.msg);
  rc = tls_try("localhost", 0, SQ_SSL_VERIFY_CA, ca, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && ver[0], "verify_ca checks the chain only: 'localhost' accepted (%s)", rc ? err.msg : ver);
  rc = tls_try("127.0.0.1", 0, SQ_SSL_VERIFY_CA, wrong, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_ECONNECTION, "verify_ca with the wrong CA fails: %s '%s'", sq_kind_name(rc), err.msg);
  rc = tls_try("127.0.0.1", 0, SQ_SSL_DEFAULT, wrong, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_ECONNECTION, "default mode with a CA verifies it (wrong CA fails)");
  rc = tls_try("127.0.0.1", 0, SQ_SSL_REQUIRE, NULL, "TLSv1.3", ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && strcmp(ver, "TLSv1.3") == 0, "min_version TLSv1.3 -> %s", rc ? err.msg : ver);
  rc = tls_try("127.0.0.1", 0, SQ_SSL_REQUIRE, NULL, "TLSv1.2", ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && ver[0], "min_version TLSv1.2 -> %s", rc ? err.msg : ver);
  rc = tls_try("127.0.0.1", 0, SQ_SSL_REQUIRE, NULL, "TLSv9", ver, sizeof ver, &err);
  CHECK(rc == SQ_EUSAGE, "unknown min_version is a usage error: %s", err.msg);
  if (!plain) {
    printf("# SQORM_TEST_MYSQL_PLAIN_PORT not set: plain-server checks skipped\n");
    return;
  }
  int pport = atoi(plain);
  rc = tls_try("127.0.0.1", pport, SQ_SSL_REQUIRE, NULL, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_ECONNECTION, "require against a server without TLS fails: %s %s '%s'", sq_kind_name(rc), err.code, err.msg);
  rc = tls_try("127.0.0.1", pport, SQ_SSL_VERIFY_CA, ca, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_ECONNECTION, "verify_ca against a server without TLS fails: %s", err.msg);
  rc = tls_try("127.0.0.1", pport, SQ_SSL_VERIFY_IDENTITY, ca, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_ECONNECTION, "verify_identity against a server without TLS fails: %s", err.msg);
  rc = tls_try("127.0.0.1", pport, SQ_SSL_PREFER, NULL, NULL, ver, sizeof ver, &err);
  CHECK(rc == SQ_OK && ver[0] == '\0', "prefer against a server without TLS connects in clear text");
}

int main(void) {
  if (!env("SQORM_TEST_MYSQL_HOST") || !env("SQORM_TEST_MYSQL_USER") || !env("SQORM_TEST_MYSQL_DB")) {
    printf("# SQORM_TEST_MYSQL_HOST / _USER / _DB not set: skipped\n");
    return 77;
  }
  sq_dconn *c = open_default();
  CHECK(c != NULL, "connect");
  if (!c) return 1;
  test_basics(c);
  test_types(c);
  test_errors(c);
  test_transactions(c);
  test_cursors(c);
  test_call(c);
  test_stmt_cache(c);
  test_fallback(c);
  must(c, "DROP TABLE IF EXISTS sq_types");
  D->close(c);
  test_dead();
  test_connect_errors();
  test_tls();
  printf("# %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
