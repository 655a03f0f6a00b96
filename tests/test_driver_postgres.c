/*
 * test_driver_postgres.c - end-to-end test of the PostgreSQL driver.
 *
 * A plain program (no framework): every check prints "ok" or "FAIL", and
 * the exit code is non-zero when any check failed. It needs a running
 * PostgreSQL with TLS (scripts/test-servers.sh start; source env.sh) and
 * exits 77 (skipped) when SQORM_TEST_PG_* are not set.
 *
 * Build:
 *   gcc -std=c11 -Wall -Wextra -g -fsanitize=address,undefined -Isrc \
 *     tests/test_driver_postgres.c src/core/driver_postgres.c src/core/error.c src/core/util.c \
 *     $(pkg-config --cflags --libs libpq) -lm
 */
#define _POSIX_C_SOURCE 200809L
#include "sqorm.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const sq_driver sq_driver_postgres;
static const sq_driver *D = &sq_driver_postgres;

/* Under AddressSanitizer, freed memory sits in a 256 MB quarantine, which
 * would hide whether the cursor test's memory is bounded; a small one
 * keeps RSS meaningful. (An ASAN_OPTIONS setting still wins.) */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=8"; }

static int npass, nfail;

/* Records and prints one check. */
static void check(int ok, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s (line %d): ", ok ? "ok  " : "FAIL", line);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  if (ok) npass++;
  else nfail++;
  fflush(stdout);
}
#define CHECK(cond, ...) check((cond) ? 1 : 0, __LINE__, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* A sink that copies every row                                         */
/* ------------------------------------------------------------------ */

typedef struct cell {
  int type;
  int64_t i;
  double f;
  int b;
  char *s;
  size_t n;
} cell;

typedef struct coll {
  int columns_called;
  int ncols;
  char names[32][64];
  int coltypes[32];
  cell *cells;
  size_t nrows, cap;
  long stop_at;       /* row index at which row() returns 1, or -1 */
  int set_err;        /* on stop, fill err too */
  int keep;           /* 0: count rows only (streaming) */
  int64_t sum;        /* sum of column 0 when it is an int */
  long max_rss_kb;
  long rows_seen;
} coll;

static void coll_init(coll *c) {
  memset(c, 0, sizeof *c);
  c->stop_at = -1;
  c->keep = 1;
}

static void coll_free(coll *c) {
  for (size_t r = 0; r < c->nrows; r++)
    for (int i = 0; i < c->ncols; i++) free(c->cells[r * (size_t)c->ncols + (size_t)i].s);
  free(c->cells);
  coll_init(c);
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long kb = 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
  fclose(f);
  return kb;
}

static int on_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)err;
  coll *c = ud;
  c->columns_called++;
  c->ncols = ncols;
  for (int i = 0; i < ncols && i < 32; i++) {
    snprintf(c->names[i], sizeof c->names[i], "%.*s", (int)cols[i].name_len, cols[i].name);
    c->coltypes[i] = cols[i].type;
  }
  return 0;
}

static int on_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  coll *c = ud;
  if (c->stop_at >= 0 && c->rows_seen == c->stop_at) {
    if (c->set_err) sq_err_set(err, SQ_EVALIDATION, "stopped by the test");
    return 1;
  }
  c->rows_seen++;
  if (ncols > 0 && vals[0].type == SQ_VINT) c->sum += vals[0].u.i;
  if (c->rows_seen % 5000 == 0) {
    long kb = rss_kb();
    if (kb > c->max_rss_kb) c->max_rss_kb = kb;
  }
  if (!c->keep) return 0;
  if (c->nrows == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 8;
    cell *p = realloc(c->cells, nc * (size_t)ncols * sizeof *p);
    if (!p) return 1;
    c->cells = p;
    c->cap = nc;
  }
  for (int i = 0; i < ncols; i++) {
    cell *x = &c->cells[c->nrows * (size_t)ncols + (size_t)i];
    memset(x, 0, sizeof *x);
    x->type = vals[i].type;
    switch (vals[i].type) {
    case SQ_VINT: x->i = vals[i].u.i; break;
    case SQ_VFLOAT: x->f = vals[i].u.f; break;
    case SQ_VBOOL: x->b = vals[i].u.b; break;
    case SQ_VTEXT:
    case SQ_VBLOB:
      x->n = vals[i].u.s.n;
      x->s = malloc(x->n + 1);
      if (x->n) memcpy(x->s, vals[i].u.s.p, x->n);
      x->s[x->n] = '\0';
      break;
    default: break;
    }
  }
  c->nrows++;
  return 0;
}

static cell *at(coll *c, size_t row, int col) {
  if (row >= c->nrows || col >= c->ncols) {
    static cell none = {-1, 0, 0, 0, NULL, 0};
    return &none;
  }
  return &c->cells[row * (size_t)c->ncols + (size_t)col];
}

static int is_text(cell *x, const char *s) {
  return x->type == SQ_VTEXT && x->n == strlen(s) && !memcmp(x->s, s, x->n);
}

/* ------------------------------------------------------------------ */
/* Connection helpers                                                   */
/* ------------------------------------------------------------------ */

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

/* A config pointing at the test server; strings are borrowed from the
 * environment (the driver copies nothing it keeps). */
static void base_cfg(sq_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->dialect = SQ_DIALECT_POSTGRES;
  cfg->host = (char *)env("SQORM_TEST_PG_HOST");
  cfg->port = atoi(env("SQORM_TEST_PG_PORT"));
  cfg->user = (char *)env("SQORM_TEST_PG_USER");
  cfg->password = (char *)env("SQORM_TEST_PG_PASSWORD");
  cfg->database = (char *)env("SQORM_TEST_PG_DB");
  cfg->connect_timeout = 5;
}

static sq_dconn *connect_cfg(const sq_config *cfg, sq_err *err) {
  sq_dconn *c = NULL;
  if (D->open(cfg, &c, err) != SQ_OK) return NULL;
  return c;
}

static sq_dconn *connect_default(void) {
  sq_config cfg;
  base_cfg(&cfg);
  sq_err err;
  sq_dconn *c = connect_cfg(&cfg, &err);
  if (!c) printf("connect failed: %s\n", err.msg);
  return c;
}

/* Runs sql, collecting rows into out (which is reset first). */
static int run(sq_dconn *c, const char *sql, const sq_value *p, int n, coll *out, sq_result *res,
               sq_err *err) {
  sq_row_sink sink = {out, on_columns, on_row};
  if (out) {
    long stop = out->stop_at;
    int se = out->set_err;
    coll_free(out);
    out->stop_at = stop;
    out->set_err = se;
  }
  return D->exec(c, sql, strlen(sql), p, n, out ? &sink : NULL, res, err);
}

/* Runs sql with no rows wanted and reports failures as a check. */
static void must(sq_dconn *c, const char *sql, int line) {
  sq_err err;
  sq_result res;
  int rc = D->exec(c, sql, strlen(sql), NULL, 0, NULL, &res, &err);
  check(rc == SQ_OK, line, "exec %.60s%s", sql, rc ? err.msg : "");
}
#define MUST(c, sql) must(c, sql, __LINE__)

/* Returns the single int of a one-row, one-column query, or INT64_MIN. */
static int64_t scalar_int(sq_dconn *c, const char *sql, const sq_value *p, int n) {
  coll out;
  coll_init(&out);
  sq_err err;
  sq_result res;
  int64_t v = INT64_MIN;
  if (run(c, sql, p, n, &out, &res, &err) == SQ_OK && out.nrows == 1 && at(&out, 0, 0)->type == SQ_VINT)
    v = at(&out, 0, 0)->i;
  else if (err.kind) printf("   (%s: %s)\n", sql, err.msg);
  coll_free(&out);
  return v;
}

/* Copies the single text value of a query into buf ("" on failure). */
static const char *scalar_text(sq_dconn *c, const char *sql, char *buf, size_t cap) {
  coll out;
  coll_init(&out);
  sq_err err;
  sq_result res;
  buf[0] = '\0';
  if (run(c, sql, NULL, 0, &out, &res, &err) == SQ_OK && out.nrows == 1) {
    cell *x = at(&out, 0, 0);
    if (x->type == SQ_VTEXT) snprintf(buf, cap, "%s", x->s);
    else if (x->type == SQ_VBOOL) snprintf(buf, cap, "%s", x->b ? "true" : "false");
  } else if (err.kind) {
    snprintf(buf, cap, "ERR %.200s", err.msg);
  }
  coll_free(&out);
  return buf;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_result_types(sq_dconn *c) {
  coll out;
  coll_init(&out);
  sq_err err;
  sq_result res;
  int rc = run(c,
               "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 4::oid AS d, 1.5::float4 AS e,"
               " 2.25::float8 AS f, true AS g, 'abc'::text AS h, 'x'::varchar AS i, 'y'::char(3) AS j,"
               " 12345678901234567890.123456789::numeric AS k, '\\x00ff41'::bytea AS l,"
               " '2024-02-29'::date AS m, '2024-01-02 03:04:05.12'::timestamp AS n,"
               " '2024-01-02 03:04:05'::timestamp AS o, '2024-01-02 03:04:05.5+02'::timestamptz AS p,"
               " '12:34:56'::time AS q, '{\"a\": 1}'::jsonb AS r,"
               " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS s, NULL::int AS t, ''::text AS u,"
               " '2024-01-02 03:04:05'::timestamptz AS v, false AS w, 'infinity'::timestamp AS x,"
               " '-9223372036854775808'::int8 AS y, 'NaN'::float8 AS z, '-Infinity'::float4 AS z2,"
               " '0044-03-15 12:00:00.000001 BC'::timestamp AS z3",
               NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK, "typed select: %s", rc ? err.msg : "");
  CHECK(out.columns_called == 1 && out.ncols == 28 && out.nrows == 1, "one row of 28 columns");
  CHECK(res.has_result_set == 1 && res.rows == 1 && res.affected_rows == -1,
        "sq_result of a SELECT (rows=%lld affected=%lld)", (long long)res.rows, (long long)res.affected_rows);
  CHECK(!strcmp(out.names[0], "a") && !strcmp(out.names[27], "z3"), "column names");
  CHECK(out.coltypes[0] == SQ_VINT && out.coltypes[4] == SQ_VFLOAT && out.coltypes[6] == SQ_VBOOL &&
            out.coltypes[7] == SQ_VTEXT && out.coltypes[10] == SQ_VTEXT && out.coltypes[11] == SQ_VBLOB,
        "column types from OIDs");
  CHECK(at(&out, 0, 0)->type == SQ_VINT && at(&out, 0, 0)->i == 1, "int2 -> int");
  CHECK(at(&out, 0, 1)->type == SQ_VINT && at(&out, 0, 1)->i == 2, "int4 -> int");
  CHECK(at(&out, 0, 2)->type == SQ_VINT && at(&out, 0, 2)->i == 3, "int8 -> int");
  CHECK(at(&out, 0, 3)->type == SQ_VINT && at(&out, 0, 3)->i == 4, "oid -> int");
  CHECK(at(&out, 0, 4)->type == SQ_VFLOAT && at(&out, 0, 4)->f == 1.5, "float4 -> float");
  CHECK(at(&out, 0, 5)->type == SQ_VFLOAT && at(&out, 0, 5)->f == 2.25, "float8 -> float");
  CHECK(at(&out, 0, 6)->type == SQ_VBOOL && at(&out, 0, 6)->b == 1, "bool true");
  CHECK(at(&out, 0, 22)->type == SQ_VBOOL && at(&out, 0, 22)->b == 0, "bool false");
  CHECK(is_text(at(&out, 0, 7), "abc"), "text");
  CHECK(is_text(at(&out, 0, 8), "x"), "varchar");
  CHECK(is_text(at(&out, 0, 9), "y  "), "char(3) keeps padding");
  CHECK(is_text(at(&out, 0, 10), "12345678901234567890.123456789"), "numeric exact as text");
  CHECK(at(&out, 0, 11)->type == SQ_VBLOB && at(&out, 0, 11)->n == 3 &&
            !memcmp(at(&out, 0, 11)->s, "\x00\xff\x41", 3),
        "bytea -> blob");
  CHECK(is_text(at(&out, 0, 12), "2024-02-29"), "date");
  CHECK(is_text(at(&out, 0, 13), "2024-01-02 03:04:05.120000"), "timestamp fraction padded: %s",
        at(&out, 0, 13)->s);
  CHECK(is_text(at(&out, 0, 14), "2024-01-02 03:04:05"), "timestamp without fraction: %s", at(&out, 0, 14)->s);
  CHECK(is_text(at(&out, 0, 15), "2024-01-02 01:04:05.500000"), "timestamptz in UTC: %s", at(&out, 0, 15)->s);
  CHECK(is_text(at(&out, 0, 16), "12:34:56"), "time");
  CHECK(is_text(at(&out, 0, 17), "{\"a\": 1}"), "jsonb as text");
  CHECK(is_text(at(&out, 0, 18), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "uuid as text");
  CHECK(at(&out, 0, 19)->type == SQ_VNULL, "NULL");
  CHECK(is_text(at(&out, 0, 20), ""), "empty string is not NULL");
  CHECK(is_text(at(&out, 0, 21), "2024-01-02 03:04:05"), "timestamptz without fraction: %s", at(&out, 0, 21)->s);
  CHECK(is_text(at(&out, 0, 23), "infinity"), "infinity timestamp");
  CHECK(at(&out, 0, 24)->type == SQ_VINT && at(&out, 0, 24)->i == INT64_MIN, "int8 min");
  CHECK(at(&out, 0, 25)->type == SQ_VFLOAT && isnan(at(&out, 0, 25)->f), "NaN");
  CHECK(at(&out, 0, 26)->type == SQ_VFLOAT && isinf(at(&out, 0, 26)->f) && at(&out, 0, 26)->f < 0, "-Infinity");
  CHECK(is_text(at(&out, 0, 27), "0044-03-15 12:00:00.000001 BC"), "BC timestamp: %s", at(&out, 0, 27)->s);
  coll_free(&out);

  char buf[128];
  CHECK(!strcmp(scalar_text(c, "SHOW TimeZone", buf, sizeof buf), "UTC"), "session TimeZone UTC (%s)", buf);
  CHECK(!strncmp(scalar_text(c, "SHOW DateStyle", buf, sizeof buf), "ISO", 3), "DateStyle ISO (%s)", buf);
  CHECK(!strcmp(scalar_text(c, "SHOW client_encoding", buf, sizeof buf), "UTF8"), "client_encoding UTF8");
  CHECK(!strcmp(scalar_text(c, "SHOW application_name", buf, sizeof buf), "sqorm"), "default application_name");
  MUST(c, "LISTEN sq_test_channel");
  for (int i = 0; i < 3; i++) MUST(c, "NOTIFY sq_test_channel, 'x'");
  MUST(c, "UNLISTEN *");
}

static void test_params(sq_dconn *c) {
  coll out;
  coll_init(&out);
  sq_err err;
  sq_result res;
  const char utf8[] = "h\xc3\xa9llo \xf0\x9f\x98\x80"; /* é and a 4-byte emoji */
  const char blob[] = "a\0b\0\xff";
  sq_value p[12] = {
    sq_int(INT64_MAX), sq_int(INT64_MIN), sq_float(0.1), sq_float(-0.0), sq_bool(1), sq_bool(0),
    sq_text(utf8, sizeof utf8 - 1), sq_text("", 0), sq_null(), sq_blob(blob, sizeof blob - 1),
    sq_blob("", 0), sq_float(5e-324),
  };
  int rc = run(c, "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12", p, 12, &out, &res, &err);
  CHECK(rc == SQ_OK && out.nrows == 1, "params round trip: %s", rc ? err.msg : "");
  CHECK(at(&out, 0, 0)->type == SQ_VINT && at(&out, 0, 0)->i == INT64_MAX, "int64 max");
  CHECK(at(&out, 0, 1)->type == SQ_VINT && at(&out, 0, 1)->i == INT64_MIN, "int64 min");
  CHECK(at(&out, 0, 2)->type == SQ_VFLOAT && at(&out, 0, 2)->f == 0.1, "0.1 exact");
  CHECK(at(&out, 0, 3)->type == SQ_VFLOAT && at(&out, 0, 3)->f == 0 && signbit(at(&out, 0, 3)->f), "-0.0");
  CHECK(at(&out, 0, 4)->type == SQ_VBOOL && at(&out, 0, 4)->b == 1, "bool true param");
  CHECK(at(&out, 0, 5)->type == SQ_VBOOL && at(&out, 0, 5)->b == 0, "bool false param");
  CHECK(is_text(at(&out, 0, 6), utf8), "4-byte UTF-8 text");
  CHECK(is_text(at(&out, 0, 7), ""), "empty text param");
  CHECK(at(&out, 0, 8)->type == SQ_VNULL, "NULL param");
  CHECK(at(&out, 0, 9)->type == SQ_VBLOB && at(&out, 0, 9)->n == 5 && !memcmp(at(&out, 0, 9)->s, blob, 5),
        "blob with NULs");
  CHECK(at(&out, 0, 10)->type == SQ_VBLOB && at(&out, 0, 10)->n == 0, "empty blob is not NULL");
  CHECK(at(&out, 0, 11)->type == SQ_VFLOAT && at(&out, 0, 11)->f == 5e-324, "subnormal float");

  double fl[] = {1e308, -1e-308, 1.0 / 3, 123456789.123456789, NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof fl / sizeof *fl; i++) {
    sq_value v = sq_float(fl[i]);
    rc = run(c, "SELECT $1", &v, 1, &out, &res, &err);
    cell *x = at(&out, 0, 0);
    int same = x->type == SQ_VFLOAT && (isnan(fl[i]) ? isnan(x->f) : x->f == fl[i]);
    CHECK(rc == SQ_OK && same, "float %.17g round trip", fl[i]);
  }

  /* every byte value, and 1 MiB strings both ways */
  char all[256];
  for (int i = 0; i < 256; i++) all[i] = (char)i;
  sq_value v = sq_blob(all, 256);
  rc = run(c, "SELECT $1::bytea", &v, 1, &out, &res, &err);
  CHECK(rc == SQ_OK && at(&out, 0, 0)->n == 256 && !memcmp(at(&out, 0, 0)->s, all, 256), "all 256 bytes");
  size_t big = 1 << 20;
  char *s = malloc(big);
  for (size_t i = 0; i < big; i++) s[i] = (char)('a' + i % 26);
  v = sq_text(s, big);
  rc = run(c, "SELECT $1::text, length($1::text)", &v, 1, &out, &res, &err);
  CHECK(rc == SQ_OK && at(&out, 0, 0)->n == big && !memcmp(at(&out, 0, 0)->s, s, big) &&
            at(&out, 0, 1)->i == (int64_t)big,
        "1 MiB text round trip");
  for (size_t i = 0; i < big; i++) s[i] = (char)(i * 7);
  v = sq_blob(s, big);
  rc = run(c, "SELECT $1", &v, 1, &out, &res, &err);
  CHECK(rc == SQ_OK && at(&out, 0, 0)->type == SQ_VBLOB && at(&out, 0, 0)->n == big &&
            !memcmp(at(&out, 0, 0)->s, s, big),
        "1 MiB blob round trip");
  free(s);

  /* text with NUL is refused before anything is sent */
  v = sq_text("a\0b", 3);
  rc = run(c, "SELECT $1", &v, 1, &out, &res, &err);
  CHECK(rc == SQ_EUSAGE && strstr(err.msg, "cannot contain NUL bytes"), "NUL in text -> usage: %s", err.msg);

  /* a text param compared with an integer column is typed by the server */
  MUST(c, "CREATE TEMP TABLE pnum(id int PRIMARY KEY, n numeric, d date, t timestamp)");
  sq_value ins[4] = {sq_text("7", 1), sq_float(0.5), sq_text("2024-03-01", 10), sq_text("2024-03-01 10:00:00.25", 22)};
  rc = run(c, "INSERT INTO pnum VALUES ($1, $2, $3, $4)", ins, 4, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 1, "text into int/date/timestamp columns: %s", rc ? err.msg : "");
  sq_value key = sq_text("7", 1);
  CHECK(scalar_int(c, "SELECT count(*) FROM pnum WHERE id = $1", &key, 1) == 1, "text param = int column");
  key = sq_int(7);
  CHECK(scalar_int(c, "SELECT id FROM pnum WHERE id = $1", &key, 1) == 7, "int8 param = int4 column");
  rc = run(c, "SELECT n, d, t FROM pnum", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK && is_text(at(&out, 0, 0), "0.5") && is_text(at(&out, 0, 1), "2024-03-01") &&
            is_text(at(&out, 0, 2), "2024-03-01 10:00:00.250000"),
        "stored values read back");

  /* a parameter count that does not match the SQL */
  sq_value one = sq_int(1);
  rc = run(c, "SELECT $1::int8, $2::int8", &one, 1, &out, &res, &err);
  CHECK(rc == SQ_EUSAGE && !strcmp(err.sqlstate, "08P01") && !D->is_dead(c), "too few params -> usage: %s",
        err.msg);
  CHECK(scalar_int(c, "SELECT 5", NULL, 0) == 5, "usable after a parameter count mismatch");

  /* too many parameters */
  rc = D->exec(c, "SELECT 1", 8, NULL, 70000, NULL, &res, &err);
  CHECK(rc == SQ_EUSAGE, "70000 params -> usage (%s)", err.msg);
  coll_free(&out);
}

static void test_affected_and_errors(sq_dconn *c) {
  sq_err err;
  sq_result res;
  coll out;
  coll_init(&out);
  MUST(c, "CREATE TEMP TABLE users(id serial PRIMARY KEY, email text UNIQUE NOT NULL, age int CHECK (age >= 0))");
  int rc = run(c, "INSERT INTO users(email, age) VALUES ('a', 1), ('b', 2), ('c', 3)", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 3 && res.has_result_set == 0 && res.last_insert_id == 0,
        "insert affected 3 (%lld)", (long long)res.affected_rows);
  rc = run(c, "UPDATE users SET age = age + 1 WHERE age >= 2", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 2, "update affected 2");
  sq_value e[2] = {sq_text("d", 1), sq_text("e", 1)};
  rc = run(c, "INSERT INTO users(email) VALUES ($1), ($2) RETURNING id, email", e, 2, &out, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 2 && res.rows == 2 && res.has_result_set &&
            at(&out, 0, 0)->type == SQ_VINT && is_text(at(&out, 1, 1), "e"),
        "INSERT RETURNING: affected 2, rows 2");
  rc = run(c, "SELECT * FROM users WHERE false", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK && out.columns_called == 1 && out.ncols == 3 && res.rows == 0 && res.has_result_set &&
            res.affected_rows == -1,
        "zero-row SELECT still reports its columns");
  rc = run(c, "DELETE FROM users WHERE email = 'zzz'", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_OK && res.affected_rows == 0, "delete affected 0");

  rc = run(c, "INSERT INTO users(email) VALUES ('a')", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EUNIQUE && !strcmp(err.code, "23505") && !strcmp(err.sqlstate, "23505") &&
            strstr(err.msg, "duplicate key"),
        "unique violation: %s", err.msg);
  rc = run(c, "INSERT INTO users(email) VALUES (NULL)", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_ECONSTRAINT && !strcmp(err.sqlstate, "23502"), "not null -> constraint (%s)", err.sqlstate);
  rc = run(c, "INSERT INTO users(email, age) VALUES ('x', -1)", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_ECONSTRAINT && !strcmp(err.sqlstate, "23514"), "check -> constraint (%s)", err.sqlstate);
  rc = run(c, "SELEC 1", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_ESYNTAX && !strcmp(err.code, "42601") && strstr(err.msg, "syntax error"), "syntax: %s", err.msg);
  rc = run(c, "SELECT * FROM no_such_table", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_ESYNTAX && !strcmp(err.sqlstate, "42P01"), "unknown table -> syntax (%s)", err.sqlstate);
  rc = run(c, "SELECT nope FROM users", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_ESYNTAX && !strcmp(err.sqlstate, "42703"), "unknown column -> syntax (%s)", err.sqlstate);
  rc = run(c, "SELECT 1/0", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EDATABASE && !strcmp(err.sqlstate, "22012"), "division by zero -> database (%s)", err.msg);
  MUST(c, "SET statement_timeout = 100");
  rc = run(c, "SELECT pg_sleep(2)", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_ETIMEOUT && !strcmp(err.sqlstate, "57014"), "statement timeout -> timeout (%s)", err.msg);
  MUST(c, "RESET statement_timeout");
  CHECK(D->is_dead(c) == 0, "errors do not kill the connection");

  /* sink stops */
  out.stop_at = 2;
  rc = run(c, "SELECT generate_series(1, 10)", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_EUSAGE && !strcmp(err.msg, "row callback stopped") && out.rows_seen == 2,
        "sink stop without err -> usage 'row callback stopped'");
  out.stop_at = 1;
  out.set_err = 1;
  rc = run(c, "SELECT generate_series(1, 10)", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_EVALIDATION && !strcmp(err.msg, "stopped by the test"), "sink stop keeps the sink's error");
  out.stop_at = -1;
  out.set_err = 0;

  /* one statement per call: a script fails to prepare, nothing of it runs */
  rc = run(c, "CREATE TEMP TABLE ms(x int); INSERT INTO ms VALUES (1), (2); SELECT count(*) FROM ms", NULL, 0,
           &out, &res, &err);
  CHECK(rc != SQ_OK, "multi-statement script refused");
  rc = run(c, "SELECT count(*) FROM ms", NULL, 0, &out, &res, &err);
  CHECK(rc != SQ_OK, "... and its first statement did not run");
  rc = run(c, "SELECT ';' AS semi, $$;$$ AS d -- ; comment\n;", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK && is_text(at(&out, 0, 0), ";") && is_text(at(&out, 0, 1), ";"), "quoted ';' is one statement");

  /* COPY is refused and leaves the connection usable */
  rc = run(c, "COPY users TO STDOUT", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EUSAGE, "COPY TO STDOUT -> usage");
  rc = run(c, "COPY users(email) FROM STDIN", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EUSAGE, "COPY FROM STDIN -> usage");
  CHECK(scalar_int(c, "SELECT count(*) FROM users", NULL, 0) == 5, "connection usable after COPY");

  /* SQL with a NUL byte */
  rc = D->exec(c, "SELECT 1\0", 9, NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EUSAGE, "NUL in SQL -> usage");
  coll_free(&out);
}

static void test_transactions(sq_dconn *c) {
  sq_err err;
  sq_result res;
  char buf[128];
  MUST(c, "CREATE TEMP TABLE tx(v text)");
  CHECK(D->in_transaction(c) == 0, "not in a transaction");
  CHECK(D->begin(c, SQ_ISO_DEFAULT, &err) == SQ_OK && D->in_transaction(c) == 1, "begin");
  MUST(c, "INSERT INTO tx VALUES ('rolled back')");
  CHECK(D->rollback(c, &err) == SQ_OK && D->in_transaction(c) == 0, "rollback");
  CHECK(scalar_int(c, "SELECT count(*) FROM tx", NULL, 0) == 0, "rolled back row is gone");

  CHECK(D->begin(c, SQ_ISO_SERIALIZABLE, &err) == SQ_OK, "begin serializable");
  CHECK(!strcmp(scalar_text(c, "SHOW transaction_isolation", buf, sizeof buf), "serializable"), "isolation %s", buf);
  CHECK(D->commit(c, &err) == SQ_OK, "commit");
  CHECK(D->begin(c, SQ_ISO_REPEATABLE_READ, &err) == SQ_OK &&
            !strcmp(scalar_text(c, "SHOW transaction_isolation", buf, sizeof buf), "repeatable read"),
        "repeatable read");
  D->commit(c, &err);
  CHECK(D->begin(c, SQ_ISO_READ_COMMITTED, &err) == SQ_OK &&
            !strcmp(scalar_text(c, "SHOW transaction_isolation", buf, sizeof buf), "read committed"),
        "read committed");
  D->commit(c, &err);

  CHECK(D->begin(c, SQ_ISO_DEFAULT, &err) == SQ_OK, "begin for savepoints");
  MUST(c, "INSERT INTO tx VALUES ('a')");
  CHECK(D->savepoint(c, "sq_sp_1", &err) == SQ_OK, "savepoint");
  MUST(c, "INSERT INTO tx VALUES ('b')");
  CHECK(D->rollback_to(c, "sq_sp_1", &err) == SQ_OK, "rollback to savepoint");
  CHECK(D->release(c, "sq_sp_1", &err) == SQ_OK, "release savepoint");
  CHECK(D->savepoint(c, "x; DROP TABLE tx", &err) == SQ_EUSAGE, "bad savepoint name refused");
  CHECK(D->commit(c, &err) == SQ_OK, "commit after savepoints");
  CHECK(scalar_int(c, "SELECT count(*) FROM tx", NULL, 0) == 1, "only the row before the savepoint stays");

  /* a failed statement aborts the transaction; COMMIT must not look like success */
  CHECK(D->begin(c, SQ_ISO_DEFAULT, &err) == SQ_OK, "begin");
  int rc = run(c, "SELECT 1/0", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EDATABASE && D->in_transaction(c) == 1, "failed statement: still in (failed) transaction");
  rc = run(c, "SELECT 1", NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EDATABASE && !strcmp(err.sqlstate, "25P02"), "statements refused in failed tx (%s)", err.sqlstate);
  rc = D->commit(c, &err);
  CHECK(rc == SQ_EDATABASE && !strcmp(err.code, "25P02") && D->in_transaction(c) == 0,
        "COMMIT of failed tx is an error: %s", err.msg);

  /* savepoint recovers from an error inside a transaction */
  D->begin(c, SQ_ISO_DEFAULT, &err);
  D->savepoint(c, "sq_sp_2", &err);
  run(c, "SELECT 1/0", NULL, 0, NULL, &res, &err);
  CHECK(D->rollback_to(c, "sq_sp_2", &err) == SQ_OK, "rollback_to after error");
  MUST(c, "INSERT INTO tx VALUES ('after recovery')");
  CHECK(D->commit(c, &err) == SQ_OK, "commit after recovery");
  CHECK(scalar_int(c, "SELECT count(*) FROM tx", NULL, 0) == 2, "recovered insert committed");

  /* reset rolls back */
  D->begin(c, SQ_ISO_DEFAULT, &err);
  MUST(c, "INSERT INTO tx VALUES ('reset me')");
  CHECK(D->reset(c, 0, &err) == SQ_OK && D->in_transaction(c) == 0, "reset rolls back an open tx");
  D->begin(c, SQ_ISO_DEFAULT, &err);
  run(c, "SELECT 1/0", NULL, 0, NULL, &res, &err);
  CHECK(D->reset(c, 0, &err) == SQ_OK && D->in_transaction(c) == 0, "reset clears a failed tx");
  CHECK(D->reset(c, 0, &err) == SQ_OK, "reset when idle");
  CHECK(scalar_int(c, "SELECT count(*) FROM tx", NULL, 0) == 2, "reset rows were rolled back");
}

static void test_cursors(sq_dconn *c) {
  sq_err err;
  sq_result res;
  coll out;
  coll_init(&out);
  sq_row_sink sink = {&out, on_columns, on_row};
  sq_dcursor *cur = NULL;
  int has = 0, rc;

  /* 100k rows of 1 KiB: bounded memory */
  coll_free(&out);
  out.keep = 0;
  long before = rss_kb();
  out.max_rss_kb = before;
  const char *big = "SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 100000) g";
  rc = D->cursor_open(c, big, strlen(big), NULL, 0, &sink, &cur, &err);
  CHECK(rc == SQ_OK && out.columns_called == 1 && out.ncols == 2, "cursor open: %s", rc ? err.msg : "");
  CHECK(D->in_transaction(c) == 0, "streaming outside a transaction is not in a transaction");
  long n = 0;
  while ((rc = D->cursor_fetch(cur, &has, &err)) == SQ_OK && has) n++;
  CHECK(rc == SQ_OK && n == 100000 && out.sum == 5000050000LL, "100k rows streamed (n=%ld)", n);
  CHECK(D->cursor_fetch(cur, &has, &err) == SQ_OK && has == 0, "fetch after the end");
  D->cursor_close(cur);
  long grew = out.max_rss_kb - before;
  /* 100 MB went by; a bounded cursor grows by far less (ASan's quarantine
   * accounts for most of what it does grow). */
  CHECK(grew < 60 * 1024, "bounded memory while streaming 100 MB (RSS grew %ld KiB)", grew);
  coll_free(&out);

  /* closed early, outside a tx: the statement is cancelled */
  const char *endless = "SELECT generate_series(1, 2000000000) AS g";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rc = D->cursor_open(c, endless, strlen(endless), NULL, 0, &sink, &cur, &err);
  for (int i = 0; i < 10 && rc == SQ_OK; i++) rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_OK && out.rows_seen == 10 && out.nrows == 10 && at(&out, 9, 0)->i == 10, "10 rows read");
  rc = D->exec(c, "SELECT 1", 8, NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_EUSAGE, "exec while a cursor is open -> usage");
  D->cursor_close(cur);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  CHECK(secs < 10, "early close of a 2-billion-row cursor is quick (%.2fs)", secs);
  CHECK(scalar_int(c, "SELECT 42", NULL, 0) == 42 && D->in_transaction(c) == 0, "connection usable after");

  /* closed early inside a transaction: drained, the transaction survives */
  MUST(c, "CREATE TEMP TABLE ct(x int)");
  D->begin(c, SQ_ISO_DEFAULT, &err);
  MUST(c, "INSERT INTO ct VALUES (1)");
  coll_free(&out);
  const char *mid = "SELECT generate_series(1, 300000)";
  rc = D->cursor_open(c, mid, strlen(mid), NULL, 0, &sink, &cur, &err);
  CHECK(rc == SQ_OK && D->in_transaction(c) == 1, "cursor in a transaction: in_transaction");
  for (int i = 0; i < 5; i++) D->cursor_fetch(cur, &has, &err);
  D->cursor_close(cur);
  MUST(c, "INSERT INTO ct VALUES (2)");
  CHECK(D->commit(c, &err) == SQ_OK && scalar_int(c, "SELECT count(*) FROM ct", NULL, 0) == 2,
        "transaction intact after an early close");

  /* a writing cursor closed early is never cancelled */
  coll_free(&out);
  const char *ins = "INSERT INTO ct SELECT generate_series(1, 5000) RETURNING x";
  rc = D->cursor_open(c, ins, strlen(ins), NULL, 0, &sink, &cur, &err);
  D->cursor_fetch(cur, &has, &err);
  D->cursor_close(cur);
  CHECK(rc == SQ_OK && scalar_int(c, "SELECT count(*) FROM ct", NULL, 0) == 5002, "INSERT RETURNING cursor completed");

  /* with params, zero rows */
  coll_free(&out);
  sq_value p = sq_int(5);
  const char *zero = "SELECT x, 'a' AS y FROM ct WHERE x > $1 * 100000";
  rc = D->cursor_open(c, zero, strlen(zero), &p, 1, &sink, &cur, &err);
  CHECK(rc == SQ_OK && out.columns_called == 1 && out.ncols == 2, "zero-row cursor reports columns");
  rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_OK && has == 0, "zero-row cursor ends at once");
  D->cursor_close(cur);

  /* error mid-stream */
  coll_free(&out);
  const char *bad = "SELECT 10 / (5 - g) FROM generate_series(1, 10) g";
  rc = D->cursor_open(c, bad, strlen(bad), NULL, 0, &sink, &cur, &err);
  int got = 0;
  while (rc == SQ_OK && (rc = D->cursor_fetch(cur, &has, &err)) == SQ_OK && has) got++;
  CHECK(rc == SQ_EDATABASE && !strcmp(err.sqlstate, "22012") && got == 4, "error mid-stream after %d rows: %s",
        got, err.msg);
  D->cursor_close(cur);
  CHECK(scalar_int(c, "SELECT 7", NULL, 0) == 7, "usable after a failed cursor");

  /* open error */
  rc = D->cursor_open(c, "SELEC", 5, NULL, 0, &sink, &cur, &err);
  CHECK(rc == SQ_ESYNTAX && cur == NULL, "cursor open syntax error");

  /* a non-query through a cursor */
  coll_free(&out);
  rc = D->cursor_open(c, "DELETE FROM ct WHERE x > 2", 26, NULL, 0, &sink, &cur, &err);
  CHECK(rc == SQ_OK && out.columns_called == 0, "DELETE cursor: no columns");
  rc = D->cursor_fetch(cur, &has, &err);
  CHECK(rc == SQ_OK && has == 0, "DELETE cursor: no rows");
  D->cursor_close(cur);

  /* sink stop inside fetch */
  coll_free(&out);
  out.stop_at = 3;
  rc = D->cursor_open(c, endless, strlen(endless), NULL, 0, &sink, &cur, &err);
  while (rc == SQ_OK && (rc = D->cursor_fetch(cur, &has, &err)) == SQ_OK && has) {}
  CHECK(rc == SQ_EUSAGE && out.rows_seen == 3, "sink stop in a cursor");
  D->cursor_close(cur);
  out.stop_at = -1;
  CHECK(scalar_int(c, "SELECT 8", NULL, 0) == 8, "usable after a stopped cursor");

  /* reset with a cursor left open */
  rc = D->cursor_open(c, endless, strlen(endless), NULL, 0, &sink, &cur, &err);
  D->cursor_fetch(cur, &has, &err);
  CHECK(D->reset(c, 0, &err) == SQ_OK, "reset closes a forgotten cursor's statement");
  CHECK(D->cursor_fetch(cur, &has, &err) == SQ_ECLOSED, "fetch after reset -> closed");
  D->cursor_close(cur);
  CHECK(scalar_int(c, "SELECT 9", NULL, 0) == 9, "usable after reset");
  coll_free(&out);
}

static void test_statement_cache(sq_dconn *c) {
  sq_err err;
  sq_result res;
  char sql[128];
  int ok = 1;
  for (int i = 0; i < 200; i++) {
    sq_value v = sq_int(i);
    snprintf(sql, sizeof sql, "SELECT $1::int8 + %d", i);
    ok &= scalar_int(c, sql, &v, 1) == 2 * i;
  }
  CHECK(ok, "200 distinct statements");
  int64_t n = scalar_int(c, "SELECT count(*) FROM pg_prepared_statements", NULL, 0);
  CHECK(n > 0 && n <= 64 + 8, "server-side prepared statements bounded (%lld)", (long long)n);
  for (int i = 0; i < 20; i++) scalar_int(c, "SELECT count(*) FROM pg_prepared_statements", NULL, 0);
  CHECK(scalar_int(c, "SELECT count(*) FROM pg_prepared_statements", NULL, 0) == n, "repeats are not re-prepared");

  /* same SQL with a NULL (unknown) and then an int parameter */
  MUST(c, "CREATE TEMP TABLE nc(v int8)");
  sq_value v = sq_null();
  int rc = run(c, "INSERT INTO nc VALUES ($1)", &v, 1, NULL, &res, &err);
  v = sq_int(5);
  rc |= run(c, "INSERT INTO nc VALUES ($1)", &v, 1, NULL, &res, &err);
  v = sq_text("6", 1);
  rc |= run(c, "INSERT INTO nc VALUES ($1)", &v, 1, NULL, &res, &err);
  CHECK(rc == SQ_OK && scalar_int(c, "SELECT sum(v)::int8 FROM nc", NULL, 0) == 11, "NULL, int, text for one SQL%s%s",
        rc ? ": " : "", rc ? err.msg : "");

  /* the server dropping our statements */
  MUST(c, "DEALLOCATE ALL");
  CHECK(scalar_int(c, "SELECT sum(v)::int8 FROM nc", NULL, 0) == 11, "cached statement after DEALLOCATE ALL");
  v = sq_int(1);
  CHECK(scalar_int(c, "SELECT 122 + $1", &v, 1) == 123, "cached before DISCARD ALL");
  MUST(c, "DISCARD ALL");
  char buf[64];
  CHECK(scalar_int(c, "SELECT 122 + $1", &v, 1) == 123, "cached statement after DISCARD ALL");
  CHECK(!strcmp(scalar_text(c, "SHOW TimeZone", buf, sizeof buf), "UTC"), "UTC again after DISCARD ALL");
  MUST(c, "CREATE TEMP TABLE nc(v int8)"); /* DISCARD ALL dropped temp tables */
  MUST(c, "PREPARE sq_999(int) AS SELECT 1");
  MUST(c, "DEALLOCATE sq_999");
  /* a table change that alters a cached statement's row type */
  MUST(c, "INSERT INTO nc VALUES (1)");
  coll out;
  coll_init(&out);
  rc = run(c, "SELECT * FROM nc", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK && out.ncols == 1, "SELECT * before ALTER");
  MUST(c, "ALTER TABLE nc ADD COLUMN w text DEFAULT 'w'");
  rc = run(c, "SELECT * FROM nc", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK && out.ncols == 2 && is_text(at(&out, 0, 1), "w"), "SELECT * after ALTER re-prepares: %s",
        rc ? err.msg : "");
  /* the driver remembers a cached statement's columns: a rename must
   * still show (the server refuses the stale statement, which is then
   * prepared again) */
  rc = run(c, "SELECT * FROM nc", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK && out.ncols == 2 && !strcmp(out.names[1], "w"), "SELECT * again: columns v, w");
  MUST(c, "ALTER TABLE nc RENAME COLUMN w TO w2");
  rc = run(c, "SELECT * FROM nc", NULL, 0, &out, &res, &err);
  CHECK(rc == SQ_OK && out.ncols == 2 && !strcmp(out.names[1], "w2") && is_text(at(&out, 0, 1), "w"),
        "SELECT * after RENAME COLUMN names w2: %s", rc ? err.msg : out.names[1]);
  coll_free(&out);
}

static void test_ping_version(sq_dconn *c) {
  sq_err err;
  CHECK(D->ping(c, &err) == SQ_OK, "ping");
  const char *v = D->server_version(c);
  CHECK(v && v[0] >= '1' && v[0] <= '9', "server_version %s", v ? v : "(null)");
  CHECK(!strcmp(D->name, "postgres") && D->dialect == SQ_DIALECT_POSTGRES && D->ph_style == SQ_PH_DOLLAR,
        "driver identity");
}

static void test_dead(void) {
  sq_dconn *a = connect_default(), *b = connect_default();
  if (!a || !b) {
    CHECK(0, "connections for the kill test");
    if (a) D->close(a);
    if (b) D->close(b);
    return;
  }
  sq_err err;
  sq_result res;
  sq_value pid = sq_int(scalar_int(a, "SELECT pg_backend_pid()", NULL, 0));
  CHECK(scalar_int(b, "SELECT pg_terminate_backend($1::int, 5000)::int", &pid, 1) == 1, "terminate backend");
  CHECK(D->is_dead(a) == 0, "not known dead before use");
  int rc = D->exec(a, "SELECT 1", 8, NULL, 0, NULL, &res, &err);
  CHECK(rc == SQ_ECONNECTION && err.code[0], "exec on a killed session -> connection (%s: %s)", err.code, err.msg);
  CHECK(D->is_dead(a) == 1, "is_dead after the server killed the session");
  CHECK(D->ping(a, &err) == SQ_ECONNECTION, "ping on a dead connection");
  CHECK(D->begin(a, SQ_ISO_DEFAULT, &err) == SQ_ECONNECTION && D->in_transaction(a) == 0, "begin on dead");
  CHECK(D->reset(a, 0, &err) == SQ_ECONNECTION, "reset on dead");
  D->close(a);

  /* in a transaction */
  a = connect_default();
  pid = sq_int(scalar_int(a, "SELECT pg_backend_pid()", NULL, 0));
  D->begin(a, SQ_ISO_DEFAULT, &err);
  scalar_int(b, "SELECT pg_terminate_backend($1::int, 5000)::int", &pid, 1);
  sq_value v = sq_int(1);
  rc = D->exec(a, "SELECT $1", 9, &v, 1, NULL, &res, &err);
  CHECK(rc == SQ_ECONNECTION && D->is_dead(a), "killed inside a tx -> connection, dead");
  D->close(a);
  D->close(b);
}

static void test_connect_options(void) {
  sq_config cfg;
  sq_err err;
  sq_dconn *c;
  char buf[256];
  const char *ca = env("SQORM_TEST_CA"), *wrong = env("SQORM_TEST_WRONG_CA");
  const char *plain = env("SQORM_TEST_PG_PLAIN_PORT");

  base_cfg(&cfg);
  cfg.ssl.mode = SQ_SSL_REQUIRE;
  c = connect_cfg(&cfg, &err);
  CHECK(c != NULL, "sslmode require: %s", c ? "" : err.msg);
  if (c) {
    CHECK(!strcmp(scalar_text(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", buf, sizeof buf), "true"),
          "require: TLS in use");
    D->close(c);
  }

  base_cfg(&cfg);
  cfg.ssl.mode = SQ_SSL_DISABLE;
  c = connect_cfg(&cfg, &err);
  CHECK(c && !strcmp(scalar_text(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", buf, sizeof buf),
                     "false"),
        "sslmode disable: no TLS");
  if (c) D->close(c);

  if (ca) {
    base_cfg(&cfg);
    cfg.ssl.mode = SQ_SSL_VERIFY_IDENTITY;
    cfg.ssl.ca = (char *)ca;
    c = connect_cfg(&cfg, &err);
    CHECK(c != NULL, "verify_identity with the CA to 127.0.0.1: %s", c ? "" : err.msg);
    if (c) D->close(c);

    base_cfg(&cfg);
    cfg.ssl.ca = (char *)ca; /* DEFAULT + ca -> verify-ca */
    c = connect_cfg(&cfg, &err);
    CHECK(c != NULL, "default mode with a CA verifies and connects");
    if (c) D->close(c);

    base_cfg(&cfg);
    cfg.ssl.mode = SQ_SSL_VERIFY_IDENTITY;
    cfg.ssl.ca = (char *)ca;
    cfg.host = "localhost";
    c = connect_cfg(&cfg, &err);
    CHECK(!c && err.kind == SQ_ECONNECTION && strstr(err.msg, "does not match"), "name mismatch refused: %s", err.msg);
    if (c) D->close(c);

    base_cfg(&cfg);
    cfg.ssl.mode = SQ_SSL_VERIFY_CA;
    cfg.ssl.ca = (char *)ca;
    cfg.host = "localhost";
    c = connect_cfg(&cfg, &err);
    CHECK(c != NULL, "verify_ca ignores the host name: %s", c ? "" : err.msg);
    if (c) D->close(c);
  }
  const char *ccert = env("SQORM_TEST_CLIENT_CERT"), *ckey = env("SQORM_TEST_CLIENT_KEY");
  if (ca && ccert && ckey) {
    base_cfg(&cfg);
    cfg.ssl.mode = SQ_SSL_VERIFY_IDENTITY;
    cfg.ssl.ca = (char *)ca;
    cfg.ssl.cert = (char *)ccert;
    cfg.ssl.key = (char *)ckey;
    c = connect_cfg(&cfg, &err);
    CHECK(c && strstr(scalar_text(c, "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()", buf,
                                  sizeof buf),
                      "CN=sqorm"),
          "client certificate presented (%s)", c ? buf : err.msg);
    if (c) D->close(c);
  }
  if (wrong) {
    base_cfg(&cfg);
    cfg.ssl.mode = SQ_SSL_VERIFY_IDENTITY;
    cfg.ssl.ca = (char *)wrong;
    c = connect_cfg(&cfg, &err);
    CHECK(!c && err.kind == SQ_ECONNECTION && strstr(err.msg, "certificate verify failed") &&
              !strcmp(err.code, "08001"),
          "wrong CA refused: %s", err.msg);
    if (c) D->close(c);

    base_cfg(&cfg);
    cfg.ssl.mode = SQ_SSL_REQUIRE;
    cfg.ssl.ca = (char *)wrong; /* a given CA is verified, also with require */
    c = connect_cfg(&cfg, &err);
    CHECK(!c && err.kind == SQ_ECONNECTION, "require + wrong CA refused");
    if (c) D->close(c);
  }
  if (plain) {
    base_cfg(&cfg);
    cfg.port = atoi(plain);
    cfg.ssl.mode = SQ_SSL_REQUIRE;
    c = connect_cfg(&cfg, &err);
    CHECK(!c && err.kind == SQ_ECONNECTION && strstr(err.msg, "SSL"), "require against a plain server: %s", err.msg);
    if (c) D->close(c);
    base_cfg(&cfg);
    cfg.port = atoi(plain);
    c = connect_cfg(&cfg, &err);
    CHECK(c != NULL, "prefer against a plain server connects: %s", c ? "" : err.msg);
    if (c) D->close(c);
  }

  base_cfg(&cfg);
  cfg.ssl.mode = SQ_SSL_REQUIRE;
  cfg.ssl.min_version = "TLSv1.3";
  c = connect_cfg(&cfg, &err);
  CHECK(c && !strcmp(scalar_text(c, "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", buf, sizeof buf),
                     "TLSv1.3"),
        "min_version TLSv1.3 -> %s", c ? buf : err.msg);
  if (c) D->close(c);
  cfg.ssl.min_version = "TLSv1.9";
  c = connect_cfg(&cfg, &err);
  CHECK(!c && err.kind == SQ_EUSAGE && strstr(err.msg, "TLSv1.9"), "unknown min_version -> usage");

  base_cfg(&cfg);
  cfg.password = "wrong password";
  c = connect_cfg(&cfg, &err);
  CHECK(!c && err.kind == SQ_EAUTH && !strcmp(err.code, "28P01") && strstr(err.msg, "password authentication failed"),
        "bad password -> auth: %s", err.msg);
  if (c) D->close(c);

  base_cfg(&cfg);
  cfg.port = 1;
  c = connect_cfg(&cfg, &err);
  CHECK(!c && err.kind == SQ_ECONNECTION && err.msg[0], "refused -> connection: %s", err.msg);
  if (c) D->close(c);

  sq_param params[3] = {{"application_name", "sqorm-test"}, {"options", "-c work_mem=5MB"},
                        {"target_session_attrs", "any"}};
  base_cfg(&cfg);
  cfg.params = params;
  cfg.nparams = 3;
  c = connect_cfg(&cfg, &err);
  CHECK(c != NULL, "pass-through params: %s", c ? "" : err.msg);
  if (c) {
    CHECK(!strcmp(scalar_text(c, "SHOW application_name", buf, sizeof buf), "sqorm-test"), "application_name");
    CHECK(!strcmp(scalar_text(c, "SHOW work_mem", buf, sizeof buf), "5MB"), "user options kept");
    CHECK(!strcmp(scalar_text(c, "SHOW TimeZone", buf, sizeof buf), "UTC"), "UTC with user options");
    D->close(c);
  }
  sq_param badp[1] = {{"no_such_keyword", "1"}};
  cfg.params = badp;
  cfg.nparams = 1;
  c = connect_cfg(&cfg, &err);
  CHECK(!c && err.kind == SQ_EUSAGE && strstr(err.msg, "no_such_keyword"), "unknown param -> usage: %s", err.msg);
}

int main(void) {
  if (!env("SQORM_TEST_PG_HOST") || !env("SQORM_TEST_PG_PORT") || !env("SQORM_TEST_PG_USER") ||
      !env("SQORM_TEST_PG_DB")) {
    printf("skipped: SQORM_TEST_PG_HOST/_PORT/_USER/_DB not set\n");
    return 77;
  }
  sq_dconn *c = connect_default();
  CHECK(c != NULL, "connect");
  if (!c) return 1;
  test_ping_version(c);
  test_result_types(c);
  test_params(c);
  test_affected_and_errors(c);
  test_transactions(c);
  test_cursors(c);
  test_statement_cache(c);
  D->close(c);
  test_connect_options();
  test_dead();
  printf("%d passed, %d failed\n", npass, nfail);
  return nfail ? 1 : 0;
}
