/*
 * live.h - what the live tests of the hosted-engine features share
 * (test_pooler_live.c, test_failover_live.c, test_replset_live.c): a
 * check that prints "ok"/"FAIL" lines, the server families of
 * scripts/test-servers.sh, configs from the URLs it exports (with TLS
 * verified against the test CA), a sink that keeps rows as text, and
 * scripts/test-servers.sh itself (kill, restart, replication).
 *
 * A test needing a family that was not started exits 77 (skipped), or
 * fails when SQORM_TEST_REQUIRE_SERVERS=1 (as spec/helper.lua's
 * H.need_servers does).
 */
#ifndef SQORM_TESTS_LIVE_H
#define SQORM_TESTS_LIVE_H

#include "sqorm.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int live_failures;

#if defined(__GNUC__)
#define LIVE_MAYBE_UNUSED __attribute__((unused))
#else
#define LIVE_MAYBE_UNUSED
#endif

static void live_check(int ok, const char *fmt, ...) {
  va_list ap;
  if (!ok) atomic_fetch_add(&live_failures, 1);
  printf("%s - ", ok ? "ok" : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

#define CHECK(cond, ...) live_check((cond) != 0, __VA_ARGS__)

LIVE_MAYBE_UNUSED static const char *live_env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

LIVE_MAYBE_UNUSED static void live_sleep(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* 1 when the family was started; exits 77 (or fails) otherwise. */
LIVE_MAYBE_UNUSED static int live_has(const char *family) {
  const char *list = live_env("SQORM_TEST_SERVERS");
  char want[64];
  snprintf(want, sizeof want, ",%s,", family);
  char have[512];
  snprintf(have, sizeof have, ",%s,", list ? list : "");
  return strstr(have, want) != NULL;
}

LIVE_MAYBE_UNUSED static void live_need(const char *family) {
  if (live_has(family)) return;
  if (live_env("SQORM_TEST_REQUIRE_SERVERS") && !strcmp(live_env("SQORM_TEST_REQUIRE_SERVERS"), "1")) {
    printf("FAIL - SQORM_TEST_REQUIRE_SERVERS=1 but the %s test servers are not configured\n", family);
    exit(1);
  }
  printf("skipped: the %s test servers are not configured\n", family);
  exit(77);
}

/* A config from url plus query (e.g. "prepare=false", may be NULL) plus
 * TLS verified against the test CA; finished. Exits on failure (a broken
 * environment, not a test result). */
LIVE_MAYBE_UNUSED static void live_config(sq_config *cfg, const char *url, const char *query) {
  char buf[2048];
  int pg = !strncmp(url, "postgres", 8);
  const char *ca = live_env("SQORM_TEST_CA");
  snprintf(buf, sizeof buf, "%s%s", url, strchr(url, '?') ? "&" : "?");
  if (ca)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "sslmode=%s&sslrootcert=%s&",
             pg ? "verify-full" : "verify_identity", ca);
  snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "connect_timeout=10%s%s", query ? "&" : "",
           query ? query : "");
  sq_err e;
  sq_config_init(cfg);
  if (sq_config_parse_url(cfg, buf, &e) || sq_config_finish(cfg, &e)) {
    printf("FAIL - config from %s: %s\n", url, e.msg);
    exit(1);
  }
}

/* Rows as text ("a|b|c"), at most 64 rows of 256 bytes. */
typedef struct live_rows {
  int n, ncols;
  char row[64][256];
} live_rows;

static int lr_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)cols, (void)err;
  ((live_rows *)ud)->ncols = ncols;
  return 0;
}

LIVE_MAYBE_UNUSED static void live_value_text(const sq_value *v, char *out, size_t n) {
  switch (v->type) {
  case SQ_VNULL: snprintf(out, n, "NULL"); break;
  case SQ_VINT: snprintf(out, n, "%lld", (long long)v->u.i); break;
  case SQ_VFLOAT: snprintf(out, n, "%.17g", v->u.f); break;
  case SQ_VBOOL: snprintf(out, n, "%s", v->u.b ? "true" : "false"); break;
  case SQ_VTEXT: snprintf(out, n, "%.*s", (int)v->u.s.n, v->u.s.p); break;
  default: {
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < v->u.s.n && o + 3 < n; i++) o += (size_t)snprintf(out + o, n - o, "%02x", (unsigned char)v->u.s.p[i]);
  }
  }
}

static int lr_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  live_rows *r = ud;
  if (r->n < 64) {
    char *out = r->row[r->n];
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < ncols && o < 250; i++) {
      char cell[200];
      live_value_text(&v[i], cell, sizeof cell);
      o += (size_t)snprintf(out + o, 256 - o, "%s%s", i ? "|" : "", cell);
    }
  }
  r->n++;
  return 0;
}

LIVE_MAYBE_UNUSED static sq_row_sink live_sink(live_rows *r) {
  memset(r, 0, sizeof *r);
  sq_row_sink s = {r, lr_columns, lr_row};
  return s;
}

/* The rows joined with ",", for messages and comparisons. */
LIVE_MAYBE_UNUSED static const char *live_join(const live_rows *r, char *buf, size_t n) {
  size_t o = 0;
  buf[0] = '\0';
  for (int i = 0; i < r->n && i < 64 && o < n; i++) o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? "," : "", r->row[i]);
  return buf;
}

/* Runs one statement on the pool (? binds), rows into r (may be NULL). */
LIVE_MAYBE_UNUSED static int live_exec(sq_pool *p, const char *sql, const sq_value *params, int n, live_rows *r, sq_err *e) {
  live_rows dummy;
  sq_row_sink s = live_sink(r ? r : &dummy);
  return sq_pool_exec(p, sql, strlen(sql), params, n, &s, NULL, e);
}

/* The same on a connection (a transaction's). */
LIVE_MAYBE_UNUSED static int live_conn_exec(sq_conn *c, const char *sql, const sq_value *params, int n, live_rows *r, sq_err *e) {
  live_rows dummy;
  sq_row_sink s = live_sink(r ? r : &dummy);
  return sq_conn_exec(c, sql, strlen(sql), params, n, &s, NULL, e);
}

/* The same inside a transaction. */
LIVE_MAYBE_UNUSED static int live_tx_exec(sq_tx *tx, const char *sql, const sq_value *params, int n, live_rows *r, sq_err *e) {
  sq_conn *c;
  int rc = sq_tx_conn(tx, &c, e);
  if (rc) return rc;
  rc = live_conn_exec(c, sql, params, n, r, e);
  sq_tx_conn_done(tx, rc ? e : NULL);
  return rc;
}

/* scripts/test-servers.sh with these words (kill galera1, replication
 * pause mysql, ...) against this run's servers; 0 when it succeeded. */
LIVE_MAYBE_UNUSED static int live_servers(const char *words) {
  const char *script = live_env("SQORM_TEST_SCRIPT");
  if (!script) return -1;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "env -u LD_PRELOAD bash '%s' %s >/dev/null 2>&1", script, words);
  int rc = system(cmd);
  if (rc != 0) printf("note - test-servers.sh %s exited with %d\n", words, rc);
  return rc;
}

#endif
