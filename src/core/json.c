/*
 * json.c - a strict JSON parser with callbacks and a JSON writer, for
 * T.JSON columns (contract in sqorm.h, "JSON"). No Lua here: the binding
 * (src/lua/ljson.c) turns the events into tables and walks tables into
 * the writer.
 *
 * Numbers never lose digits silently: integers that fit int64 stay
 * integers, other numbers become doubles only when a double holds what
 * was written (at most 17 significant digits, in range), anything else
 * is refused with the offset and the number.
 */
#include "sqorm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Parser                                                               */
/* ------------------------------------------------------------------ */

typedef struct jp {
  const char *s;
  size_t n, i;
  int max_depth;
  char *scratch;
  sq_json_cb cb;
  void *ud;
  sq_err *err;
} jp;

static int perr(jp *p, const char *what) {
  return sq_err_set(p->err, SQ_EUSAGE, "invalid JSON at byte %zu: %s", p->i, what);
}

static void ws(jp *p) {
  while (p->i < p->n) {
    char c = p->s[p->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->i++;
  }
}

static int emit(jp *p, sq_json_ev *ev) {
  int rc = p->cb ? p->cb(p->ud, ev, p->err) : 0;
  if (rc) {
    if (p->err->kind == SQ_OK) sq_err_set(p->err, SQ_EUSAGE, "JSON parse stopped by its callback");
    return p->err->kind;
  }
  return SQ_OK;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xc0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Length of the well-formed UTF-8 sequence at s[i..n), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t n) {
  unsigned c = s[i];
  size_t len;
  unsigned v, min;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) { len = 2; v = c & 0x1f; min = 0x80; }
  else if (c >= 0xe0 && c <= 0xef) { len = 3; v = c & 0x0f; min = 0x800; }
  else if (c >= 0xf0 && c <= 0xf4) { len = 4; v = c & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[i + k] & 0xc0) != 0x80) return 0;
    v = (v << 6) | (s[i + k] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  return len;
}

/* A string at p->i (the opening quote); the text goes to ev. Strings
 * without escapes point into the input; others are unescaped into the
 * scratch at *so (which moves past them: keys and values of one member
 * don't overlap, and a string is used only during its callback). */
static int string(jp *p, sq_json_ev *ev) {
  const unsigned char *s = (const unsigned char *)p->s;
  size_t start = ++p->i, o = 0;
  int escaped = 0;
  char *out = p->scratch;
  while (1) {
    if (p->i >= p->n) return perr(p, "unterminated string");
    unsigned char c = s[p->i];
    if (c == '"') break;
    if (c < 0x20) return perr(p, "control character in a string (escape it)");
    if (c == '\\') {
      if (!escaped) {
        memcpy(out, p->s + start, p->i - start);
        o = p->i - start;
        escaped = 1;
      }
      if (p->i + 1 >= p->n) return perr(p, "unterminated escape");
      char e = p->s[p->i + 1];
      p->i += 2;
      switch (e) {
      case '"': out[o++] = '"'; break;
      case '\\': out[o++] = '\\'; break;
      case '/': out[o++] = '/'; break;
      case 'b': out[o++] = '\b'; break;
      case 'f': out[o++] = '\f'; break;
      case 'n': out[o++] = '\n'; break;
      case 'r': out[o++] = '\r'; break;
      case 't': out[o++] = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (p->i + 4 > p->n || !hex4(p->s + p->i, &cp)) return perr(p, "bad \\u escape");
        p->i += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff) return perr(p, "lone low surrogate in a \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (p->i + 6 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' || !hex4(p->s + p->i + 2, &lo) ||
              lo < 0xdc00 || lo > 0xdfff)
            return perr(p, "high surrogate without its low surrogate in a \\u escape");
          p->i += 6;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        o += put_utf8(out + o, cp);
        break;
      }
      default: p->i -= 1; return perr(p, "unknown escape");
      }
      continue;
    }
    size_t k = utf8_seq(s, p->i, p->n);
    if (!k) return perr(p, "string is not valid UTF-8");
    if (escaped) memcpy(out + o, p->s + p->i, k), o += k;
    p->i += k;
  }
  if (escaped) {
    ev->s = out;
    ev->n = o;
  } else {
    ev->s = p->s + start;
    ev->n = p->i - start;
  }
  p->i++; /* the closing quote */
  return SQ_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int number(jp *p, sq_json_ev *ev) {
  size_t start = p->i;
  int frac = 0;
  if (p->i < p->n && p->s[p->i] == '-') p->i++;
  if (p->i >= p->n || !is_digit(p->s[p->i])) return perr(p, "bad number");
  if (p->s[p->i] == '0') {
    p->i++;
    if (p->i < p->n && is_digit(p->s[p->i])) return perr(p, "leading zero in a number");
  } else {
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  if (p->i < p->n && p->s[p->i] == '.') {
    p->i++;
    frac = 1;
    if (p->i >= p->n || !is_digit(p->s[p->i])) return perr(p, "digit expected after '.'");
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    p->i++;
    frac = 1;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    if (p->i >= p->n || !is_digit(p->s[p->i])) return perr(p, "digit expected in an exponent");
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  size_t len = p->i - start;
  char buf[64], *num = buf;
  if (len >= sizeof buf && !(num = malloc(len + 1))) return sq_err_set(p->err, SQ_ENOMEM, "out of memory");
  memcpy(num, p->s + start, len);
  num[len] = '\0';
  int rc = SQ_OK;
  if (!frac) {
    char *end;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    if (errno != ERANGE && *end == '\0') {
      ev->kind = SQ_JSON_INT;
      ev->i = v;
      goto out;
    }
  }
  /* significant digits: from the first non-zero digit of the mantissa to
   * its last non-zero digit */
  {
    int sig = 0, pending = 0, seen = 0;
    for (size_t k = 0; k < len && num[k] != 'e' && num[k] != 'E'; k++) {
      char c = num[k];
      if (!is_digit(c)) continue;
      if (c == '0') {
        if (seen) pending++;
        continue;
      }
      seen = 1;
      sig += pending + 1;
      pending = 0;
    }
    errno = 0;
    double d = strtod(num, NULL);
    int exact_int = 1;
    if (!frac) {
      /* beyond int64: only when the double is exactly that integer */
      char back[400];
      snprintf(back, sizeof back, "%.0f", d);
      exact_int = !strcmp(back, num);
    }
    /* ERANGE with a non-zero result is a subnormal: still the nearest
     * double (what the writer's shortest form reads back as) */
    int range = errno == ERANGE && (d == 0.0 || !isfinite(d));
    if (range || !isfinite(d) || (frac && sig > 17) || !exact_int) {
      char shown[48];
      snprintf(shown, sizeof shown, "%.40s%s", num, len > 40 ? "..." : "");
      rc = sq_err_set(p->err, SQ_EUSAGE,
                      "JSON number %s at byte %zu can't be read without losing digits (not an int64, and no "
                      "double holds it exactly)",
                      shown, start);
      goto out;
    }
    ev->kind = SQ_JSON_DOUBLE;
    ev->f = d;
  }
out:
  if (num != buf) free(num);
  return rc;
}

static int lit(jp *p, const char *w, size_t n) {
  if (p->n - p->i < n || memcmp(p->s + p->i, w, n)) return perr(p, "unexpected character");
  p->i += n;
  return SQ_OK;
}

static int value(jp *p, int depth) {
  sq_json_ev ev;
  memset(&ev, 0, sizeof ev);
  ev.depth = depth;
  ws(p);
  if (p->i >= p->n) return perr(p, "value expected");
  int rc;
  char c = p->s[p->i];
  switch (c) {
  case 'n':
    if ((rc = lit(p, "null", 4))) return rc;
    ev.kind = SQ_JSON_NULL;
    return emit(p, &ev);
  case 't':
    if ((rc = lit(p, "true", 4))) return rc;
    ev.kind = SQ_JSON_TRUE;
    return emit(p, &ev);
  case 'f':
    if ((rc = lit(p, "false", 5))) return rc;
    ev.kind = SQ_JSON_FALSE;
    return emit(p, &ev);
  case '"':
    if ((rc = string(p, &ev))) return rc;
    ev.kind = SQ_JSON_STRING;
    return emit(p, &ev);
  case '[':
  case '{': {
    int obj = c == '{';
    if (depth + 1 > p->max_depth) return perr(p, "nested deeper than the limit");
    p->i++;
    ev.kind = obj ? SQ_JSON_OBJECT_BEGIN : SQ_JSON_ARRAY_BEGIN;
    ev.depth = depth + 1;
    if ((rc = emit(p, &ev))) return rc;
    ws(p);
    if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
      p->i++;
    } else {
      for (;;) {
        if (obj) {
          ws(p);
          if (p->i >= p->n || p->s[p->i] != '"') return perr(p, "member name (a string) expected");
          sq_json_ev k;
          memset(&k, 0, sizeof k);
          k.kind = SQ_JSON_KEY;
          k.depth = depth + 1;
          if ((rc = string(p, &k)) || (rc = emit(p, &k))) return rc;
          ws(p);
          if (p->i >= p->n || p->s[p->i] != ':') return perr(p, "':' expected");
          p->i++;
        }
        if ((rc = value(p, depth + 1))) return rc;
        ws(p);
        if (p->i >= p->n) return perr(p, obj ? "unterminated object" : "unterminated array");
        if (p->s[p->i] == ',') {
          p->i++;
          continue;
        }
        if (p->s[p->i] == (obj ? '}' : ']')) {
          p->i++;
          break;
        }
        return perr(p, obj ? "',' or '}' expected" : "',' or ']' expected");
      }
    }
    memset(&ev, 0, sizeof ev);
    ev.kind = obj ? SQ_JSON_OBJECT_END : SQ_JSON_ARRAY_END;
    ev.depth = depth + 1;
    return emit(p, &ev);
  }
  default:
    if (c == '-' || is_digit(c)) {
      if ((rc = number(p, &ev))) return rc;
      return emit(p, &ev);
    }
    return perr(p, "unexpected character");
  }
}

int sq_json_parse(const char *s, size_t n, int max_depth, char *scratch, sq_json_cb cb, void *ud, sq_err *err) {
  jp p;
  memset(&p, 0, sizeof p);
  if (!s) s = "", n = 0;
  p.s = s;
  p.n = n;
  p.max_depth = max_depth > 0 ? max_depth : SQ_JSON_MAX_DEPTH;
  p.cb = cb;
  p.ud = ud;
  p.err = err;
  char *own = NULL;
  if (!scratch) {
    if (!(own = malloc(n ? n : 1))) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    scratch = own;
  }
  p.scratch = scratch;
  int rc = value(&p, 0);
  if (!rc) {
    ws(&p);
    if (p.i != p.n) rc = perr(&p, "text after the value");
  }
  free(own);
  return rc;
}

int sq_json_valid(const char *s, size_t n) {
  sq_err e;
  sq_err_clear(&e);
  return sq_json_parse(s, n, 0, NULL, NULL, NULL, &e) == SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Writer                                                               */
/* ------------------------------------------------------------------ */

enum { W_ARR0 = 0, W_ARR, W_OBJ_KEY, W_OBJ_VAL, W_OBJ };

void sq_json_w_init(sq_json_w *w, int max_depth) {
  memset(w, 0, sizeof *w);
  w->max_depth = max_depth > 0 && max_depth <= SQ_JSON_MAX_DEPTH ? max_depth : SQ_JSON_MAX_DEPTH;
}

void sq_json_w_free(sq_json_w *w) {
  free(w->p);
  w->p = NULL;
  w->n = w->cap = 0;
}

static int wfail(sq_json_w *w, sq_err *err, int kind, const char *msg) {
  if (!w->rc) {
    w->rc = kind;
    sq_err_set(err, kind, "JSON: %s", msg);
  }
  return w->rc;
}

static void wput(sq_json_w *w, const char *s, size_t n, sq_err *err) {
  if (w->rc) return;
  if (w->n + n + 1 > w->cap) {
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->n + n + 1) cap *= 2;
    char *p = realloc(w->p, cap);
    if (!p) {
      wfail(w, err, SQ_ENOMEM, "out of memory");
      return;
    }
    w->p = p;
    w->cap = cap;
  }
  memcpy(w->p + w->n, s, n);
  w->n += n;
  w->p[w->n] = '\0';
}

/* Before a value: its separator, and the state moves on. */
static int before_value(sq_json_w *w, sq_err *err) {
  if (w->rc) return w->rc;
  if (w->depth == 0) {
    if (w->done) return wfail(w, err, SQ_EUSAGE, "a second top-level value");
    return SQ_OK;
  }
  unsigned char *st = &w->st[w->depth];
  switch (*st) {
  case W_ARR0: *st = W_ARR; return SQ_OK;
  case W_ARR: wput(w, ",", 1, err); return w->rc;
  case W_OBJ_VAL: *st = W_OBJ; return SQ_OK;
  default: return wfail(w, err, SQ_EUSAGE, "an object member needs its key first");
  }
}

static int after_value(sq_json_w *w) {
  if (w->depth == 0 && !w->rc) w->done = 1;
  return w->rc;
}

int sq_json_w_null(sq_json_w *w, sq_err *err) {
  if (before_value(w, err)) return w->rc;
  wput(w, "null", 4, err);
  return after_value(w);
}

int sq_json_w_bool(sq_json_w *w, int b, sq_err *err) {
  if (before_value(w, err)) return w->rc;
  wput(w, b ? "true" : "false", b ? 4 : 5, err);
  return after_value(w);
}

int sq_json_w_int(sq_json_w *w, int64_t i, sq_err *err) {
  if (before_value(w, err)) return w->rc;
  char buf[32];
  int k = snprintf(buf, sizeof buf, "%lld", (long long)i);
  wput(w, buf, (size_t)k, err);
  return after_value(w);
}

int sq_json_w_double(sq_json_w *w, double f, sq_err *err) {
  if (!isfinite(f)) return wfail(w, err, SQ_EUSAGE, "a number that is not finite (NaN or infinity) has no JSON form");
  if (before_value(w, err)) return w->rc;
  char buf[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, f);
    if (strtod(buf, NULL) == f) break;
  }
  for (char *q = buf; *q; q++)
    if (*q == ',') *q = '.'; /* a locale's decimal comma */
  if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
  wput(w, buf, strlen(buf), err);
  return after_value(w);
}

static void wstr(sq_json_w *w, const char *s, size_t n, sq_err *err) {
  static const char hx[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  wput(w, "\"", 1, err);
  size_t start = 0;
  for (size_t i = 0; i < n && !w->rc;) {
    unsigned char c = u[i];
    if (c >= 0x80) {
      size_t k = utf8_seq(u, i, n);
      if (!k) {
        wfail(w, err, SQ_EUSAGE, "a string is not valid UTF-8 (binary data has no JSON form)");
        return;
      }
      i += k;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    wput(w, s + start, i - start, err);
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t en = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    default:
      esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hx[c >> 4], esc[5] = hx[c & 15];
      en = 6;
    }
    wput(w, esc, en, err);
    start = ++i;
  }
  wput(w, s + start, n - start, err);
  wput(w, "\"", 1, err);
}

int sq_json_w_string(sq_json_w *w, const char *s, size_t n, sq_err *err) {
  if (before_value(w, err)) return w->rc;
  wstr(w, s ? s : "", s ? n : 0, err);
  return after_value(w);
}

int sq_json_w_key(sq_json_w *w, const char *s, size_t n, sq_err *err) {
  if (w->rc) return w->rc;
  if (w->depth == 0 || (w->st[w->depth] != W_OBJ_KEY && w->st[w->depth] != W_OBJ))
    return wfail(w, err, SQ_EUSAGE, "a key outside an object (or two keys in a row)");
  if (w->st[w->depth] == W_OBJ) wput(w, ",", 1, err);
  wstr(w, s ? s : "", s ? n : 0, err);
  wput(w, ":", 1, err);
  w->st[w->depth] = W_OBJ_VAL;
  return w->rc;
}

int sq_json_w_begin(sq_json_w *w, int object, sq_err *err) {
  if (before_value(w, err)) return w->rc;
  if (w->depth + 1 > w->max_depth) return wfail(w, err, SQ_EUSAGE, "nested deeper than the limit");
  wput(w, object ? "{" : "[", 1, err);
  w->st[++w->depth] = object ? W_OBJ_KEY : W_ARR0;
  return w->rc;
}

int sq_json_w_end(sq_json_w *w, sq_err *err) {
  if (w->rc) return w->rc;
  if (w->depth == 0) return wfail(w, err, SQ_EUSAGE, "end without a begin");
  unsigned char st = w->st[w->depth];
  if (st == W_OBJ_VAL) return wfail(w, err, SQ_EUSAGE, "an object ends after a key without its value");
  wput(w, st >= W_OBJ_KEY ? "}" : "]", 1, err);
  w->depth--;
  return after_value(w);
}

int sq_json_w_finish(sq_json_w *w, sq_err *err) {
  if (w->rc) return w->rc;
  if (w->depth != 0 || !w->done) return wfail(w, err, SQ_EUSAGE, "the value is not complete");
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Paths (op.json)                                                      */
/* ------------------------------------------------------------------ */

int sq_json_path(int dialect, const sq_jseg *segs, int n, char *out, size_t outn, size_t *outlen, sq_err *err) {
  size_t o = 0;
#define PUT(c)                                                                                                         \
  do {                                                                                                                 \
    if (o + 2 > outn) return sq_err_set(err, SQ_ENOMEM, "JSON path too long");                                       \
    out[o++] = (c);                                                                                                    \
  } while (0)
  int pg = dialect == SQ_DIALECT_POSTGRES;
  if (pg) PUT('{');
  else PUT('$');
  for (int i = 0; i < n; i++) {
    const sq_jseg *g = &segs[i];
    if (g->key) {
      if (memchr(g->key, '\0', g->klen)) return sq_err_set(err, SQ_EUSAGE, "op.json: path key #%d holds a NUL byte", i + 1);
      if (!pg && (memchr(g->key, '"', g->klen) || memchr(g->key, '\\', g->klen)))
        return sq_err_set(err, SQ_EUSAGE, "op.json: path key #%d holds '\"' or '\\', which %s paths can't address", i + 1,
                          dialect == SQ_DIALECT_MYSQL ? "MySQL" : "SQLite");
      if (pg && i) PUT(',');
      if (!pg) PUT('.');
      PUT('"');
      for (size_t k = 0; k < g->klen; k++) {
        if (pg && (g->key[k] == '"' || g->key[k] == '\\')) PUT('\\');
        PUT(g->key[k]);
      }
      PUT('"');
    } else {
      if (g->index < 0) return sq_err_set(err, SQ_EUSAGE, "op.json: path index #%d is negative", i + 1);
      char num[24];
      int k = snprintf(num, sizeof num, "%lld", (long long)g->index);
      if (pg) {
        if (i) PUT(',');
        PUT('"');
      } else {
        PUT('[');
      }
      for (int j = 0; j < k; j++) PUT(num[j]);
      PUT(pg ? '"' : ']');
    }
  }
  if (pg) PUT('}');
#undef PUT
  out[o] = '\0';
  *outlen = o;
  return SQ_OK;
}
