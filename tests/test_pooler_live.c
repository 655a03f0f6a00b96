/*
 * test_pooler_live.c - PostgreSQL pooler mode (prepare = false) against
 * the real PgBouncer of scripts/test-servers.sh (Debian's 1.18,
 * pool_mode = transaction, DISCARD ALL after every transaction, no
 * max_prepared_statements) and against PostgreSQL directly.
 *
 * Through PgBouncer with ?prepare=false:
 *   - 100 parameterised queries, half alone (each its own transaction,
 *     so on whatever server connection PgBouncer picks), half in
 *     transactions of five, all return their rows; no server-side
 *     prepared statement exists (pg_prepared_statements, read inside a
 *     transaction so on the same backend as the queries before it);
 *   - timestamps, floats and bytea read back exactly after the session
 *     (the transaction) was switched to TimeZone Asia/Tokyo, DateStyle
 *     SQL/DMY, extra_float_digits -15 and bytea_output escape;
 *   - cursors (single-row mode in a pipeline), read to the end and closed
 *     early; a statement in an aborted transaction fails with 25P02.
 * Through PgBouncer without it: the same queries fail with SQLSTATE
 * 26000 (the named prepared statement made in one transaction is gone
 * in the next).
 * Directly, with a session whose defaults are hostile (options=-c
 * TimeZone=... -c DateStyle=German -c extra_float_digits=-15): pooler
 * mode sends no session setup (SHOW extra_float_digits stays -15) and
 * still decodes exactly; it leaves no prepared statement where the
 * default mode leaves several; CREATE INDEX CONCURRENTLY and VACUUM (which
 * refuse to run in a pipeline) work.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "live.h"

#define TABLE "sq_pooler_t"

static const char *const EXPECT_TS = "2024-01-02 03:04:05.500000";
static const char *const EXPECT_TZ = "2024-01-02 03:04:05.250000"; /* stored from +00 */

static sq_pool *open_pool(const char *url, const char *query, int max) {
  sq_config cfg;
  char q[256];
  snprintf(q, sizeof q, "pool.max=%d%s%s", max, query ? "&" : "", query ? query : "");
  live_config(&cfg, url, q);
  sq_pool *p = NULL;
  sq_err e;
  if (sq_pool_open(&cfg, &p, &e)) printf("FAIL - pool: %s\n", e.msg), exit(1);
  sq_config_free(&cfg);
  return p;
}

static void setup(sq_pool *p) {
  sq_err e;
  live_exec(p, "DROP TABLE IF EXISTS " TABLE, NULL, 0, NULL, &e);
  int rc = live_exec(p,
                     "CREATE TABLE " TABLE " (id int PRIMARY KEY, v text, f float8, ts timestamp, tz timestamptz, "
                     "b bytea)",
                     NULL, 0, NULL, &e);
  CHECK(rc == SQ_OK, "create table through the pooler: %s", rc ? e.msg : "");
  for (int i = 1; i <= 20; i++) {
    char v[16];
    snprintf(v, sizeof v, "v%d", i);
    sq_value p6[6] = {sq_int(i), sq_text(v, strlen(v)), sq_float(i + 0.1), sq_text("2024-01-02 03:04:05.5", 21),
                      sq_text("2024-01-02 03:04:05.25+00", 25), sq_blob("\x00\xff\x27", 3)};
    rc = live_exec(p, "INSERT INTO " TABLE " VALUES (?, ?, ?, ?, ?, ?)", p6, 6, NULL, &e);
    if (rc) break;
  }
  CHECK(rc == SQ_OK, "20 parameterised inserts: %s", rc ? e.msg : "");
}

/* One parameterised lookup, checked; returns the error kind. */
static int lookup(sq_pool *p, sq_tx *tx, int id, sq_err *e) {
  char v[16], want[64];
  snprintf(v, sizeof v, "v%d", id);
  sq_value params[2] = {sq_int(id), sq_text(v, strlen(v))};
  live_rows r;
  static const char sql[] = "SELECT id, v, f FROM " TABLE " WHERE id = ? AND v = ?";
  int rc = tx ? live_tx_exec(tx, sql, params, 2, &r, e) : live_exec(p, sql, params, 2, &r, e);
  if (rc) return rc;
  snprintf(want, sizeof want, "%d|v%d|%.17g", id, id, id + 0.1);
  if (r.n != 1 || strcmp(r.row[0], want)) {
    sq_err_set(e, SQ_EINTERNAL, "id %d: got %d rows, '%s' (want '%s')", id, r.n, r.n ? r.row[0] : "", want);
    return SQ_EINTERNAL;
  }
  return SQ_OK;
}

/* 100 queries: 50 alone, 50 in ten transactions of five (the last
 * statement of each transaction counts pg_prepared_statements on its
 * backend). Returns the first error, *prepared the largest count seen. */
static int hundred(sq_pool *p, int *prepared, sq_err *e) {
  *prepared = 0;
  for (int k = 0; k < 20; k++) {
    if (k % 2 == 0) {
      for (int j = 0; j < 5; j++) {
        int rc = lookup(p, NULL, 1 + (k * 5 + j) % 20, e);
        if (rc) return rc;
      }
      continue;
    }
    sq_tx *tx;
    int rc = sq_tx_begin(p, NULL, SQ_ISO_DEFAULT, &tx, e);
    if (rc) return rc;
    for (int j = 0; j < 5 && !rc; j++) rc = lookup(p, tx, 1 + (k * 5 + j) % 20, e);
    live_rows r;
    if (!rc) rc = live_tx_exec(tx, "SELECT count(*) FROM pg_prepared_statements", NULL, 0, &r, e);
    if (!rc && atoi(r.row[0]) > *prepared) *prepared = atoi(r.row[0]);
    sq_err e2;
    if (rc) sq_tx_rollback(tx, &e2);
    else rc = sq_tx_commit(tx, e);
    sq_tx_free(tx);
    if (rc) return rc;
  }
  return SQ_OK;
}

/* Inside one transaction: the session made as hostile as it gets, then
 * the values read back. */
static void hostile_session(sq_pool *p, const char *what) {
  sq_err e;
  sq_tx *tx;
  int rc = sq_tx_begin(p, NULL, SQ_ISO_DEFAULT, &tx, &e);
  static const char *const sets[] = {"SET TimeZone = 'Asia/Tokyo'", "SET DateStyle = 'SQL, DMY'",
                                     "SET extra_float_digits = -15", "SET bytea_output = 'escape'"};
  for (size_t i = 0; i < 4 && !rc; i++) rc = live_tx_exec(tx, sets[i], NULL, 0, NULL, &e);
  live_rows r;
  sq_value id = sq_int(3);
  if (!rc)
    rc = live_tx_exec(tx,
                      "SELECT ts, tz, f, f * 3, b, 0.1::float8 + 0.2::float8, 1e-300::float8 * 1.5, "
                      "'2024-02-29'::date FROM " TABLE " WHERE id = ?",
                      &id, 1, &r, &e);
  char want[256];
  snprintf(want, sizeof want, "%s|%s|%.17g|%.17g|00ff27|%.17g|%.17g|2024-02-29", EXPECT_TS, EXPECT_TZ, 3.1, 3.1 * 3,
           0.1 + 0.2, 1e-300 * 1.5);
  CHECK(rc == SQ_OK && r.n == 1 && !strcmp(r.row[0], want), "%s: exact values under a hostile session: %s",
        what, rc ? e.msg : r.row[0]);
  if (rc == SQ_OK && strcmp(r.row[0], want)) printf("      want %s\n", want);
  /* the cursor path decodes the same way */
  sq_cursor *cur = NULL;
  live_rows cr;
  sq_row_sink cs = live_sink(&cr);
  static const char csql[] = "SELECT ts, tz, f FROM " TABLE " WHERE id <= $1 ORDER BY id";
  sq_value lim = sq_int(3);
  if (!rc) rc = sq_cursor_open(NULL, NULL, tx, csql, sizeof csql - 1, &lim, 1, &cs, &cur, &e);
  int has = 1;
  while (!rc && has) rc = sq_cursor_fetch(cur, &has, &e);
  if (cur) sq_cursor_free(cur);
  snprintf(want, sizeof want, "%s|%s|%.17g", EXPECT_TS, EXPECT_TZ, 3.1);
  CHECK(rc == SQ_OK && cr.n == 3 && !strcmp(cr.row[2], want), "%s: a cursor in that session: %s", what,
        rc ? e.msg : cr.row[2]);
  sq_err e2;
  if (tx) {
    sq_tx_rollback(tx, &e2);
    sq_tx_free(tx);
  }
}

static void cursors(sq_pool *p) {
  sq_err e;
  sq_cursor *cur = NULL;
  live_rows r;
  sq_row_sink s = live_sink(&r);
  static const char sql[] = "SELECT g, g::float8 / 3 FROM generate_series(1, $1) g";
  sq_value n = sq_int(500);
  int rc = sq_cursor_open(p, NULL, NULL, sql, sizeof sql - 1, &n, 1, &s, &cur, &e);
  int has = 1, rows = 0;
  while (!rc && has) {
    rc = sq_cursor_fetch(cur, &has, &e);
    rows += has;
  }
  char want[64];
  snprintf(want, sizeof want, "%d|%.17g", 3, 3.0 / 3);
  CHECK(rc == SQ_OK && rows == 500 && !strcmp(r.row[2], want), "cursor: 500 rows in single-row mode (%s)",
        rc ? e.msg : r.row[2]);
  if (cur) sq_cursor_free(cur);
  /* closed after 10 rows of 100000: the connection stays usable */
  cur = NULL;
  n = sq_int(100000);
  rc = sq_cursor_open(p, NULL, NULL, sql, sizeof sql - 1, &n, 1, &s, &cur, &e);
  for (int i = 0; i < 10 && !rc; i++) rc = sq_cursor_fetch(cur, &has, &e);
  if (cur) sq_cursor_free(cur);
  CHECK(rc == SQ_OK, "cursor closed early: %s", rc ? e.msg : "");
  rc = lookup(p, NULL, 7, &e);
  CHECK(rc == SQ_OK, "the pool works after an early close: %s", rc ? e.msg : "");
  sq_pool_stats st;
  sq_pool_stats_get(p, &st);
  CHECK(st.in_use == 0, "every connection back (in use %d)", st.in_use);
}

static void aborted_tx(sq_pool *p) {
  sq_err e;
  sq_tx *tx;
  int rc = sq_tx_begin(p, NULL, SQ_ISO_DEFAULT, &tx, &e);
  if (rc) {
    CHECK(0, "begin: %s", e.msg);
    return;
  }
  sq_value z = sq_int(0);
  rc = live_tx_exec(tx, "SELECT 1 / ?", &z, 1, NULL, &e);
  CHECK(rc != SQ_OK && !strcmp(e.sqlstate, "22012"), "division by zero: %s", e.sqlstate);
  rc = live_tx_exec(tx, "SELECT 1", NULL, 0, NULL, &e);
  CHECK(rc != SQ_OK && !strcmp(e.sqlstate, "25P02"), "then the transaction is aborted: %s (%s)", e.sqlstate,
        rc ? e.msg : "");
  sq_err e2;
  sq_tx_rollback(tx, &e2);
  sq_tx_free(tx);
  CHECK(lookup(p, NULL, 2, &e) == SQ_OK, "the pool works afterwards: %s", e.msg);
}

static void via_pgbouncer(void) {
  const char *url = live_env("SQORM_TEST_PGBOUNCER_URL");
  sq_err e;

  /* pooler mode, chosen by prepare=false; pgbouncer=true picks it too */
  for (int variant = 0; variant < 2; variant++) {
    const char *q = variant ? "pgbouncer=true" : "prepare=false";
    printf("# PgBouncer with %s\n", q);
    sq_pool *p = open_pool(url, q, 3);
    setup(p);
    int prepared = -1;
    int rc = hundred(p, &prepared, &e);
    CHECK(rc == SQ_OK, "%s: 100 parameterised queries across 60 transactions: %s", q, rc ? e.msg : "all rows right");
    CHECK(rc == SQ_OK && prepared == 0, "%s: no server-side prepared statement (max %d seen)", q, prepared);
    hostile_session(p, q);
    cursors(p);
    aborted_tx(p);
    /* a session SET outside a transaction: decoding doesn't care */
    rc = live_exec(p, "SET TimeZone = 'America/Los_Angeles'", NULL, 0, NULL, &e);
    live_rows r;
    sq_value id = sq_int(1);
    if (!rc) rc = live_exec(p, "SELECT tz FROM " TABLE " WHERE id = ?", &id, 1, &r, &e);
    CHECK(rc == SQ_OK && !strcmp(r.row[0], EXPECT_TZ), "%s: after a session SET TimeZone: %s", q, rc ? e.msg : r.row[0]);
    sq_pool_close(p);
  }

  /* the default mode: named prepared statements do not survive PgBouncer */
  printf("# PgBouncer without pooler mode\n");
  sq_pool *p = open_pool(url, NULL, 3);
  int prepared;
  int rc = hundred(p, &prepared, &e);
  CHECK(rc == SQ_EDATABASE && !strcmp(e.sqlstate, "26000") && strstr(e.msg, "does not exist"),
        "without prepare=false the run fails: [%s] %s (SQLSTATE %s)", sq_kind_name(rc), e.msg, e.sqlstate);
  sq_pool_close(p);

  p = open_pool(url, "prepare=false", 1);
  live_exec(p, "DROP TABLE IF EXISTS " TABLE, NULL, 0, NULL, &e);
  sq_pool_close(p);
}

static void direct(void) {
  const char *url = live_env("SQORM_TEST_PG_URL");
  sq_err e;
  printf("# PostgreSQL directly\n");
  /* session defaults as hostile as a role or database could set them */
  static const char hostile[] =
      "options=-c%20TimeZone%3DAsia/Tokyo%20-c%20DateStyle%3DGerman%20-c%20extra_float_digits%3D-15";
  char q[256];
  snprintf(q, sizeof q, "prepare=false&%s", hostile);
  sq_pool *p = open_pool(url, q, 1);
  setup(p);
  live_rows r;
  int rc = live_exec(p, "SHOW extra_float_digits", NULL, 0, &r, &e);
  CHECK(rc == SQ_OK && !strcmp(r.row[0], "-15"), "pooler mode sends no session setup (extra_float_digits %s)",
        rc ? e.msg : r.row[0]);
  sq_value id = sq_int(3);
  rc = live_exec(p, "SELECT ts, tz, f FROM " TABLE " WHERE id = ?", &id, 1, &r, &e);
  char want[128];
  snprintf(want, sizeof want, "%s|%s|%.17g", EXPECT_TS, EXPECT_TZ, 3.1);
  CHECK(rc == SQ_OK && !strcmp(r.row[0], want), "and decodes exactly all the same: %s", rc ? e.msg : r.row[0]);
  hostile_session(p, "direct");
  int prepared;
  rc = hundred(p, &prepared, &e);
  CHECK(rc == SQ_OK, "100 queries: %s", rc ? e.msg : "ok");
  rc = live_exec(p, "SELECT count(*) FROM pg_prepared_statements", NULL, 0, &r, &e);
  CHECK(rc == SQ_OK && !strcmp(r.row[0], "0"), "no prepared statement on the backend (%s)", rc ? e.msg : r.row[0]);
  rc = live_exec(p, "CREATE INDEX CONCURRENTLY IF NOT EXISTS " TABLE "_v ON " TABLE " (v)", NULL, 0, NULL, &e);
  CHECK(rc == SQ_OK, "CREATE INDEX CONCURRENTLY (no pipeline for it): %s", rc ? e.msg : "");
  rc = live_exec(p, "VACUUM " TABLE, NULL, 0, NULL, &e);
  CHECK(rc == SQ_OK, "VACUUM: %s", rc ? e.msg : "");
  sq_pool_close(p);

  /* the contrast: the default mode keeps named statements */
  p = open_pool(url, NULL, 1);
  rc = hundred(p, &prepared, &e);
  rc = rc ? rc : live_exec(p, "SELECT count(*) FROM pg_prepared_statements", NULL, 0, &r, &e);
  CHECK(rc == SQ_OK && atoi(r.row[0]) > 0, "the default mode keeps prepared statements (%s)", rc ? e.msg : r.row[0]);
  live_exec(p, "DROP TABLE IF EXISTS " TABLE, NULL, 0, NULL, &e);
  sq_pool_close(p);
}

int main(void) {
  live_need("pgbouncer");
  sq_err e;
  if (sq_global_init(&e)) return 1;
  if (!sq_driver_for(SQ_DIALECT_POSTGRES)) {
    printf("skipped: the PostgreSQL driver is not built\n");
    return 77;
  }
  via_pgbouncer();
  direct();
  int f = atomic_load(&live_failures);
  printf("%d failed\n", f);
  return f ? 1 : 0;
}
