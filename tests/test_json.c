/* test_json.c - the JSON parser and writer of json.c: events in order,
 * strictness (invalid inputs refused with an offset), escapes and
 * surrogates, numbers exact or refused at the int64 / double edges, the
 * depth limit on both sides, writer misuse, and parse -> write round
 * trips that give the text back byte for byte. */
#include "sqorm.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Re-writes every event into a writer: parse + write = canonical text. */
typedef struct echo {
  sq_json_w w;
  int events;
  int stop_at; /* stop (return 1) at this event, 0: never */
} echo;

static int echo_cb(void *ud, const sq_json_ev *ev, sq_err *err) {
  echo *e = ud;
  if (++e->events == e->stop_at) return 1;
  switch (ev->kind) {
  case SQ_JSON_NULL: return sq_json_w_null(&e->w, err);
  case SQ_JSON_TRUE: return sq_json_w_bool(&e->w, 1, err);
  case SQ_JSON_FALSE: return sq_json_w_bool(&e->w, 0, err);
  case SQ_JSON_INT: return sq_json_w_int(&e->w, ev->i, err);
  case SQ_JSON_DOUBLE: return sq_json_w_double(&e->w, ev->f, err);
  case SQ_JSON_STRING: return sq_json_w_string(&e->w, ev->s, ev->n, err);
  case SQ_JSON_KEY: return sq_json_w_key(&e->w, ev->s, ev->n, err);
  case SQ_JSON_ARRAY_BEGIN: return sq_json_w_begin(&e->w, 0, err);
  case SQ_JSON_OBJECT_BEGIN: return sq_json_w_begin(&e->w, 1, err);
  default: return sq_json_w_end(&e->w, err);
  }
}

/* Parses s and writes it back; returns the text (static) or NULL with
 * the error message in msg. */
static char out_buf[4096], msg[1100];
static const char *roundtrip_n(const char *s, size_t n) {
  echo e;
  memset(&e, 0, sizeof e);
  sq_json_w_init(&e.w, 0);
  sq_err err;
  sq_err_clear(&err);
  int rc = sq_json_parse(s, n, 0, NULL, echo_cb, &e, &err);
  if (!rc) rc = sq_json_w_finish(&e.w, &err);
  const char *r = NULL;
  if (!rc) {
    snprintf(out_buf, sizeof out_buf, "%s", e.w.p);
    r = out_buf;
  } else {
    snprintf(msg, sizeof msg, "%s", err.msg);
  }
  sq_json_w_free(&e.w);
  return r;
}
static const char *roundtrip(const char *s) { return roundtrip_n(s, strlen(s)); }

static int refused(const char *s, const char *part) {
  if (roundtrip(s)) {
    fprintf(stderr, "accepted: %s\n", s);
    return 0;
  }
  if (part && !strstr(msg, part)) {
    fprintf(stderr, "message for %s: %s (wanted %s)\n", s, msg, part);
    return 0;
  }
  return 1;
}

/* The single event of a scalar document. */
static sq_json_ev last;
static int last_cb(void *ud, const sq_json_ev *ev, sq_err *err) {
  (void)ud, (void)err;
  last = *ev;
  return 0;
}
static int scalar(const char *s, sq_json_ev *ev) {
  sq_err err;
  sq_err_clear(&err);
  memset(&last, 0, sizeof last);
  int rc = sq_json_parse(s, strlen(s), 0, NULL, last_cb, NULL, &err);
  *ev = last;
  return rc;
}

static void test_valid_roundtrips(void) {
  CHECK_STR(roundtrip("null"), "null");
  CHECK_STR(roundtrip(" true "), "true");
  CHECK_STR(roundtrip("\t\r\n[ 1 , 2,3 ]\n"), "[1,2,3]");
  CHECK_STR(roundtrip("{\"a\": {\"b\": [true, false, null, {}, []]}, \"c\": \"x\"}"),
            "{\"a\":{\"b\":[true,false,null,{},[]]},\"c\":\"x\"}");
  CHECK_STR(roundtrip("\"caf\xc3\xa9 \xf0\x9f\x8e\xae\""), "\"caf\xc3\xa9 \xf0\x9f\x8e\xae\"");
  /* escapes: decoded, then written back in the writer's form */
  CHECK_STR(roundtrip("\"a\\\"b\\\\c\\/d\\n\\t\\u0001\\u00e9\""), "\"a\\\"b\\\\c/d\\n\\t\\u0001\xc3\xa9\"");
  CHECK_STR(roundtrip("\"\\ud83c\\udfae\""), "\"\xf0\x9f\x8e\xae\"");
  /* duplicate keys are passed on as they come */
  CHECK_STR(roundtrip("{\"a\":1,\"a\":2}"), "{\"a\":1,\"a\":2}");
  /* a NUL from \u0000 survives */
  const char *r = roundtrip("\"a\\u0000b\"");
  CHECK(r && !strcmp(r, "\"a\\u0000b\""));
}

static void test_invalid(void) {
  CHECK(refused("", "value expected"));
  CHECK(refused("   ", "value expected"));
  CHECK(refused("[1,]", NULL));
  CHECK(refused("{\"a\":1,}", NULL));
  CHECK(refused("[1 2]", "',' or ']'"));
  CHECK(refused("{'a':1}", "member name"));
  CHECK(refused("{a:1}", "member name"));
  CHECK(refused("{\"a\" 1}", "':'"));
  CHECK(refused("// c\n1", NULL));
  CHECK(refused("NaN", NULL));
  CHECK(refused("Infinity", NULL));
  CHECK(refused("-", "bad number"));
  CHECK(refused("01", "leading zero"));
  CHECK(refused("1.", "after '.'"));
  CHECK(refused(".5", NULL));
  CHECK(refused("1e", "exponent"));
  CHECK(refused("+1", NULL));
  CHECK(refused("tru", NULL));
  CHECK(refused("nul", NULL));
  CHECK(refused("[1] [2]", "text after"));
  CHECK(refused("\"abc", "unterminated string"));
  CHECK(refused("\"a\nb\"", "control character"));
  CHECK(refused("\"\\x\"", "unknown escape"));
  CHECK(refused("\"\\u12\"", "\\u escape"));
  CHECK(refused("\"\\ud800\"", "surrogate"));
  CHECK(refused("\"\\udc00\"", "surrogate"));
  CHECK(refused("\"\\ud800\\u0041\"", "surrogate"));
  CHECK(refused("\"\xff\"", "UTF-8"));
  CHECK(refused("\"\xc0\xaf\"", "UTF-8"));        /* overlong */
  CHECK(refused("\"\xed\xa0\x80\"", "UTF-8"));    /* an encoded surrogate */
  CHECK(refused("[", "value expected"));
  CHECK(refused("{", "member name"));
  CHECK(refused("[1", "unterminated array"));
  CHECK(!roundtrip_n("1\0", 2));                  /* a NUL after the value */
  CHECK(strstr(msg, "byte 1") != NULL);
}

static void test_numbers(void) {
  sq_json_ev ev;
  CHECK(scalar("0", &ev) == SQ_OK && ev.kind == SQ_JSON_INT && ev.i == 0);
  CHECK(scalar("-0", &ev) == SQ_OK && ev.kind == SQ_JSON_INT && ev.i == 0);
  CHECK(scalar("9223372036854775807", &ev) == SQ_OK && ev.kind == SQ_JSON_INT && ev.i == INT64_MAX);
  CHECK(scalar("-9223372036854775808", &ev) == SQ_OK && ev.kind == SQ_JSON_INT && ev.i == INT64_MIN);
  /* 2^63 is not an int64, but a double holds it exactly */
  CHECK(scalar("9223372036854775808", &ev) == SQ_OK && ev.kind == SQ_JSON_DOUBLE && ev.f == 9223372036854775808.0);
  CHECK(scalar("18446744073709551616", &ev) == SQ_OK && ev.kind == SQ_JSON_DOUBLE);
  /* beyond int64 and not exact as a double: refused */
  CHECK(scalar("9223372036854775809", &ev) == SQ_EUSAGE);
  CHECK(refused("-9223372036854775809", "losing digits"));
  CHECK(refused("123456789012345678901234567890", "losing digits"));
  CHECK(scalar("1.5", &ev) == SQ_OK && ev.kind == SQ_JSON_DOUBLE && ev.f == 1.5);
  CHECK(scalar("1.0", &ev) == SQ_OK && ev.kind == SQ_JSON_DOUBLE && ev.f == 1.0);
  CHECK(scalar("1e2", &ev) == SQ_OK && ev.kind == SQ_JSON_DOUBLE && ev.f == 100.0);
  CHECK(scalar("-2.5E-3", &ev) == SQ_OK && ev.kind == SQ_JSON_DOUBLE && ev.f == -0.0025);
  CHECK(scalar("0.1", &ev) == SQ_OK && ev.f == 0.1);
  /* 17 significant digits are what a double holds; trailing zeros don't count */
  CHECK(scalar("0.30000000000000004", &ev) == SQ_OK && ev.f == 0.1 + 0.2);
  CHECK(scalar("1.50000000000000000000000", &ev) == SQ_OK && ev.f == 1.5);
  CHECK(refused("0.123456789012345678", "losing digits"));
  CHECK(refused("1e400", "losing digits"));
  CHECK(refused("1e-400", "losing digits")); /* underflows to 0 */
  /* a subnormal the writer wrote reads back as itself (found by fuzz_json) */
  CHECK_STR(roundtrip("1.9761089018743322e-312"), "1.97610890187433e-312");
  CHECK_STR(roundtrip("[5e-324]"), "[4.94065645841247e-324]");
  CHECK(refused("-1e400", "losing digits"));
  /* writer: shortest form that reads back, always a double */
  CHECK_STR(roundtrip("[0.1, 1.0, -0.0, 1e300, 2.5e-10, 100.0, 0.30000000000000004]"),
            "[0.1,1.0,-0.0,1e+300,2.5e-10,100.0,0.30000000000000004]");
  CHECK_STR(roundtrip("[9223372036854775807, -9223372036854775808]"), "[9223372036854775807,-9223372036854775808]");
  sq_json_w w;
  sq_err err;
  sq_err_clear(&err);
  sq_json_w_init(&w, 0);
  CHECK(sq_json_w_double(&w, NAN, &err) == SQ_EUSAGE);
  CHECK(strstr(err.msg, "not finite") != NULL);
  sq_json_w_free(&w);
  sq_json_w_init(&w, 0);
  CHECK(sq_json_w_double(&w, INFINITY, &err) == SQ_EUSAGE);
  sq_json_w_free(&w);
}

static void test_depth(void) {
  char deep[512];
  int d;
  /* exactly the limit parses; one more is refused */
  for (d = 0; d < SQ_JSON_MAX_DEPTH; d++) deep[d] = '[';
  for (int k = 0; k < SQ_JSON_MAX_DEPTH; k++) deep[d + k] = ']';
  deep[2 * SQ_JSON_MAX_DEPTH] = '\0';
  CHECK(roundtrip(deep) != NULL);
  for (d = 0; d <= SQ_JSON_MAX_DEPTH; d++) deep[d] = '[';
  for (int k = 0; k <= SQ_JSON_MAX_DEPTH; k++) deep[d + k] = ']';
  deep[2 * (SQ_JSON_MAX_DEPTH + 1)] = '\0';
  CHECK(refused(deep, "deeper than the limit"));
  /* a caller's smaller limit */
  sq_err err;
  sq_err_clear(&err);
  CHECK(sq_json_parse("[[1]]", 5, 1, NULL, NULL, NULL, &err) == SQ_EUSAGE);
  sq_err_clear(&err);
  CHECK(sq_json_parse("[[1]]", 5, 2, NULL, NULL, NULL, &err) == SQ_OK);
  /* unterminated deep input is refused without running off the end */
  for (d = 0; d < 60; d++) deep[d] = '{';
  deep[d] = '\0';
  CHECK(!sq_json_valid(deep, strlen(deep)));
  /* writer depth */
  sq_json_w w;
  sq_json_w_init(&w, 3);
  sq_err_clear(&err);
  int rc = 0;
  for (int k = 0; k < 4 && !rc; k++) rc = sq_json_w_begin(&w, 0, &err);
  CHECK(rc == SQ_EUSAGE && strstr(err.msg, "deeper") != NULL);
  sq_json_w_free(&w);
}

static void test_writer_misuse(void) {
  sq_json_w w;
  sq_err err;
  sq_err_clear(&err);
  sq_json_w_init(&w, 0);
  sq_json_w_begin(&w, 1, &err);
  CHECK(sq_json_w_int(&w, 1, &err) == SQ_EUSAGE); /* a value without a key */
  sq_json_w_free(&w);

  sq_json_w_init(&w, 0);
  sq_err_clear(&err);
  CHECK(sq_json_w_key(&w, "a", 1, &err) == SQ_EUSAGE); /* a key at top level */
  sq_json_w_free(&w);

  sq_json_w_init(&w, 0);
  sq_err_clear(&err);
  sq_json_w_begin(&w, 1, &err);
  sq_json_w_key(&w, "a", 1, &err);
  CHECK(sq_json_w_end(&w, &err) == SQ_EUSAGE); /* a key without its value */
  sq_json_w_free(&w);

  sq_json_w_init(&w, 0);
  sq_err_clear(&err);
  sq_json_w_int(&w, 1, &err);
  CHECK(sq_json_w_int(&w, 2, &err) == SQ_EUSAGE); /* two top-level values */
  sq_json_w_free(&w);

  sq_json_w_init(&w, 0);
  sq_err_clear(&err);
  sq_json_w_begin(&w, 0, &err);
  CHECK(sq_json_w_finish(&w, &err) == SQ_EUSAGE); /* not complete */
  sq_json_w_free(&w);

  sq_json_w_init(&w, 0);
  sq_err_clear(&err);
  CHECK(sq_json_w_string(&w, "\xff", 1, &err) == SQ_EUSAGE);
  CHECK(strstr(err.msg, "UTF-8") != NULL);
  sq_json_w_free(&w);

  /* keys are escaped like strings */
  sq_json_w_init(&w, 0);
  sq_err_clear(&err);
  sq_json_w_begin(&w, 1, &err);
  sq_json_w_key(&w, "q\"k\n", 4, &err);
  sq_json_w_null(&w, &err);
  sq_json_w_key(&w, "b", 1, &err);
  sq_json_w_bool(&w, 1, &err);
  sq_json_w_end(&w, &err);
  CHECK(sq_json_w_finish(&w, &err) == SQ_OK);
  CHECK_STR(w.p, "{\"q\\\"k\\n\":null,\"b\":true}");
  sq_json_w_free(&w);
}

static void test_callback_stop(void) {
  echo e;
  memset(&e, 0, sizeof e);
  e.stop_at = 3;
  sq_json_w_init(&e.w, 0);
  sq_err err;
  sq_err_clear(&err);
  CHECK(sq_json_parse("[1,2,3]", 7, 0, NULL, echo_cb, &e, &err) == SQ_EUSAGE);
  CHECK(strstr(err.msg, "stopped") != NULL);
  CHECK(e.events == 3);
  sq_json_w_free(&e.w);
  /* a caller's scratch buffer */
  char scratch[32];
  memset(&e, 0, sizeof e);
  sq_json_w_init(&e.w, 0);
  sq_err_clear(&err);
  CHECK(sq_json_parse("[\"a\\nb\",\"c\"]", 12, 0, scratch, echo_cb, &e, &err) == SQ_OK);
  CHECK_STR(e.w.p, "[\"a\\nb\",\"c\"]");
  sq_json_w_free(&e.w);
}

/* Every prefix of a valid document is refused (never read past its end). */
static void test_prefixes(void) {
  const char *doc = "{\"k\":[1,-2.5e3,\"s\\u00e9\",true,false,null,{\"x\":{}}]}";
  size_t n = strlen(doc);
  int bad = 0;
  for (size_t k = 0; k < n; k++) {
    char *copy = malloc(k ? k : 1);
    memcpy(copy, doc, k);
    if (sq_json_valid(copy, k)) bad++;
    free(copy);
  }
  CHECK(bad == 0);
  CHECK(sq_json_valid(doc, n));
}

/* op.json paths: the dialect's text, bound as a value. */
static void test_paths(void) {
  char out[256];
  size_t n = 0;
  sq_err err;
  sq_jseg segs[3] = {{"ui", 2, 0}, {NULL, 0, 3}, {"a'b", 3, 0}};
  sq_err_clear(&err);
  CHECK(sq_json_path(SQ_DIALECT_POSTGRES, segs, 3, out, sizeof out, &n, &err) == SQ_OK);
  CHECK_STR(out, "{\"ui\",\"3\",\"a'b\"}");
  CHECK(n == strlen(out));
  CHECK(sq_json_path(SQ_DIALECT_MYSQL, segs, 3, out, sizeof out, &n, &err) == SQ_OK);
  CHECK_STR(out, "$.\"ui\"[3].\"a'b\"");
  CHECK(sq_json_path(SQ_DIALECT_SQLITE, segs, 0, out, sizeof out, &n, &err) == SQ_OK);
  CHECK_STR(out, "$");
  CHECK(sq_json_path(SQ_DIALECT_POSTGRES, segs, 0, out, sizeof out, &n, &err) == SQ_OK);
  CHECK_STR(out, "{}");
  /* quotes and backslashes: escaped in a text[] literal, refused elsewhere */
  sq_jseg q = {"q\"k\\", 4, 0};
  CHECK(sq_json_path(SQ_DIALECT_POSTGRES, &q, 1, out, sizeof out, &n, &err) == SQ_OK);
  CHECK_STR(out, "{\"q\\\"k\\\\\"}");
  CHECK(sq_json_path(SQ_DIALECT_MYSQL, &q, 1, out, sizeof out, &n, &err) == SQ_EUSAGE);
  CHECK(sq_json_path(SQ_DIALECT_SQLITE, &q, 1, out, sizeof out, &n, &err) == SQ_EUSAGE);
  sq_jseg nul = {"a\0b", 3, 0}, neg = {NULL, 0, -1};
  CHECK(sq_json_path(SQ_DIALECT_POSTGRES, &nul, 1, out, sizeof out, &n, &err) == SQ_EUSAGE);
  CHECK(sq_json_path(SQ_DIALECT_MYSQL, &neg, 1, out, sizeof out, &n, &err) == SQ_EUSAGE);
  /* too small a buffer: refused, never overrun */
  CHECK(sq_json_path(SQ_DIALECT_MYSQL, segs, 3, out, 6, &n, &err) == SQ_ENOMEM);
}

int main(void) {
  test_paths();
  test_valid_roundtrips();
  test_invalid();
  test_numbers();
  test_depth();
  test_writer_misuse();
  test_callback_stop();
  test_prefixes();
  return CHECK_DONE();
}
