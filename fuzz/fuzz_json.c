/*
 * fuzz_json.c - the JSON parser, writer and path formatter of json.c
 * (T.JSON columns, op.json). Self-contained (only sqorm.h), so it builds
 * wherever fuzz/fuzz.cmake globs fuzz/fuzz_*.c; seeds in
 * fuzz/corpus/json/, dictionary fuzz/dict/json.dict.
 *
 * First input byte picks a mode:
 *   0..127    the rest is JSON text for sq_json_parse (depth limit from
 *             the byte: 1..SQ_JSON_MAX_DEPTH)
 *   128..191  the rest drives writer calls (begin/end/key/values)
 *   192..255  the rest is a JSON path (segments) for every dialect
 *
 * Invariants:
 *   - no crash, no leak, no read past the input (ASan)
 *   - parse: an accepted text re-written by the writer parses again and
 *     re-writes to the same bytes (the writer's form is a fixed point),
 *     with the same number of events; a refused text has a message
 *     naming a byte offset within the input
 *   - write: when sq_json_w_finish accepts, the text parses
 *   - path: the text is NUL-terminated within its buffer, and MySQL /
 *     SQLite paths never hold a quote or backslash from a key unescaped
 */
#include "sqorm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, what)                                                         \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "\nFUZZ INVARIANT FAILED at %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, what); \
      abort();                                                                    \
    }                                                                             \
  } while (0)

typedef struct echo {
  sq_json_w w;
  long events;
} echo;

static int echo_cb(void *ud, const sq_json_ev *ev, sq_err *err) {
  echo *e = ud;
  e->events++;
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

static void fuzz_parse(const char *s, size_t n, int depth) {
  echo a;
  memset(&a, 0, sizeof a);
  sq_json_w_init(&a.w, 0);
  sq_err err;
  sq_err_clear(&err);
  int rc = sq_json_parse(s, n, depth, NULL, echo_cb, &a, &err);
  if (rc) {
    CHECK(err.msg[0] != '\0', "a refusal has a message");
    sq_json_w_free(&a.w);
    return;
  }
  CHECK(sq_json_w_finish(&a.w, &err) == SQ_OK, "an accepted text writes back");
  echo b;
  memset(&b, 0, sizeof b);
  sq_json_w_init(&b.w, 0);
  rc = sq_json_parse(a.w.p, a.w.n, depth, NULL, echo_cb, &b, &err);
  CHECK(rc == SQ_OK, err.msg);
  CHECK(sq_json_w_finish(&b.w, &err) == SQ_OK, "the re-written text writes back");
  CHECK(a.w.n == b.w.n && !memcmp(a.w.p, b.w.p, a.w.n), "the writer's form is a fixed point");
  CHECK(a.events == b.events, "same events");
  sq_json_w_free(&a.w);
  sq_json_w_free(&b.w);
}

static void fuzz_write(const uint8_t *p, size_t n) {
  sq_json_w w;
  sq_json_w_init(&w, 1 + (n ? p[0] % SQ_JSON_MAX_DEPTH : 0));
  sq_err err;
  sq_err_clear(&err);
  size_t i = n ? 1 : 0;
  while (i < n) {
    unsigned op = p[i++] % 9;
    size_t len = i < n ? p[i++] % 16 : 0;
    if (len > n - i) len = n - i;
    const char *s = (const char *)p + i;
    int64_t v = 0;
    double d = 0;
    switch (op) {
    case 0: sq_json_w_begin(&w, 0, &err); break;
    case 1: sq_json_w_begin(&w, 1, &err); break;
    case 2: sq_json_w_end(&w, &err); break;
    case 3: sq_json_w_key(&w, s, len, &err); i += len; break;
    case 4: sq_json_w_string(&w, s, len, &err); i += len; break;
    case 5:
      memcpy(&v, s, len < sizeof v ? len : sizeof v);
      sq_json_w_int(&w, v, &err);
      i += len;
      break;
    case 6:
      memcpy(&d, s, len < sizeof d ? len : sizeof d);
      sq_json_w_double(&w, d, &err);
      i += len;
      break;
    case 7: sq_json_w_null(&w, &err); break;
    default: sq_json_w_bool(&w, (int)(len & 1), &err); break;
    }
  }
  if (sq_json_w_finish(&w, &err) == SQ_OK) CHECK(sq_json_valid(w.p, w.n), "the writer writes JSON");
  sq_json_w_free(&w);
}

static void fuzz_path(const uint8_t *p, size_t n) {
  sq_jseg segs[32];
  int k = 0;
  size_t i = 0;
  while (i < n && k < 32) {
    unsigned t = p[i++];
    if (t & 1) {
      int64_t v = 0;
      size_t len = n - i < 8 ? n - i : 8;
      memcpy(&v, p + i, len);
      i += len;
      segs[k].key = NULL;
      segs[k].index = (t & 2) ? v : (int64_t)(t >> 2);
    } else {
      size_t len = (t >> 1) % 24;
      if (len > n - i) len = n - i;
      segs[k].key = (const char *)p + i;
      segs[k].klen = len;
      i += len;
    }
    k++;
  }
  static const int dialects[] = {SQ_DIALECT_SQLITE, SQ_DIALECT_MYSQL, SQ_DIALECT_POSTGRES};
  for (int d = 0; d < 3; d++) {
    char out[2048];
    size_t cap = 1 + (n ? p[0] : 0) * 8, len = 0;
    if (cap > sizeof out) cap = sizeof out;
    memset(out, 'Z', sizeof out);
    sq_err err;
    sq_err_clear(&err);
    if (sq_json_path(dialects[d], segs, k, out, cap, &len, &err) == SQ_OK) {
      CHECK(len < cap && out[len] == '\0', "NUL-terminated within the buffer");
      CHECK(strlen(out) == len, "no NUL inside");
      if (dialects[d] != SQ_DIALECT_POSTGRES) {
        /* quotes only as the delimiters of keys: ."..." */
        for (size_t j = 0; j < len; j++)
          if (out[j] == '"') CHECK((j > 0 && out[j - 1] == '.') || (j + 1 == len || out[j + 1] == '.' || out[j + 1] == '['),
                                   "a quote from a key in a MySQL/SQLite path");
        CHECK(!memchr(out, '\\', len), "a backslash in a MySQL/SQLite path");
      }
    } else {
      CHECK(err.kind == SQ_EUSAGE || err.kind == SQ_ENOMEM, err.msg);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned mode = data[0];
  if (mode < 128) fuzz_parse((const char *)data + 1, size - 1, 1 + (int)(mode % SQ_JSON_MAX_DEPTH));
  else if (mode < 192) fuzz_write(data + 1, size - 1);
  else fuzz_path(data + 1, size - 1);
  return 0;
}
