/*
 * decimal.c - exact arithmetic on decimal text, for DECIMAL on SQLite.
 *
 * SQLite has no decimal type: a value it converts to a number becomes an
 * IEEE double, so 123456789012345678.91 reads back as 123456789012345680
 * and ten 0.10 sum to 0.99999999999999989. sqorm therefore stores DECIMAL
 * values as text there and compares, sums and averages that text with the
 * functions below, which the SQLite driver registers on every connection
 * (the collation and SQL functions named in internal.h).
 *
 * A decimal text is [spaces][+|-]digits[.digits][e[+|-]digits][spaces]
 * with at least one digit ("5", "-0.50", ".5", "5.", "1.5e3"), the forms
 * SQLite itself reads as numbers. Nothing is rounded anywhere except in
 * the mean, which is rounded half away from zero to a stated scale.
 *
 * Values are looked at through a view (sq_decv) that points into the
 * text, so comparing two plain decimals allocates nothing; only an
 * exponent form is rewritten, into a caller's buffer of SQ_DEC_BUF bytes
 * (which bounds the exponent: a number that does not fit is "not a
 * decimal" here). Sums and means use an accumulator (sq_dacc) whose
 * digits grow as needed.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_dig(char c) { return c >= '0' && c <= '9'; }

int sq_dec_view(const char *s, size_t n, sq_decv *v, char *buf, size_t cap) {
  size_t i = 0;
  memset(v, 0, sizeof *v);
  if (!s) return -1;
  while (n > 0 && is_space(s[n - 1])) n--;
  while (i < n && is_space(s[i])) i++;
  if (i < n && (s[i] == '+' || s[i] == '-')) v->neg = s[i++] == '-';
  size_t i0 = i;
  while (i < n && is_dig(s[i])) i++;
  size_t i1 = i, f0 = i, f1 = i;
  if (i < n && s[i] == '.') {
    f0 = ++i;
    while (i < n && is_dig(s[i])) i++;
    f1 = i;
  }
  if (i1 == i0 && f1 == f0) return -1;
  long exp = 0;
  int has_exp = 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    int eneg = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    if (i == n || !is_dig(s[i])) return -1;
    for (; i < n && is_dig(s[i]); i++) {
      exp = exp * 10 + (s[i] - '0');
      if (exp > SQ_DEC_BUF) return -1; /* could never fit the buffer */
    }
    if (eneg) exp = -exp;
    has_exp = 1;
  }
  if (i != n) return -1;
  if (!has_exp || exp == 0) {
    while (i0 < i1 && s[i0] == '0') i0++;
    v->ip = s + i0;
    v->in = i1 - i0;
    v->fp = s + f0;
    v->fn = f1 - f0;
  } else {
    /* all digits D, with the point P digits from D's start */
    size_t nint = i1 - i0, nd = nint + (f1 - f0);
    long p = (long)nint + exp;
    size_t out = 0, zeros_before = p < 0 ? (size_t)-p : 0;
    size_t zeros_after = p > (long)nd ? (size_t)p - nd : 0;
    if (nd + zeros_before + zeros_after > cap || !buf) return -1;
    for (size_t k = 0; k < zeros_before; k++) buf[out++] = '0';
    for (size_t k = 0; k < nd; k++) buf[out++] = k < nint ? s[i0 + k] : s[f0 + k - nint];
    for (size_t k = 0; k < zeros_after; k++) buf[out++] = '0';
    size_t ilen = p > 0 ? (size_t)p : 0; /* digits of buf before the point */
    size_t z = 0;
    while (z < ilen && buf[z] == '0') z++;
    v->ip = buf + z;
    v->in = ilen - z;
    v->fp = buf + ilen;
    v->fn = out - ilen;
  }
  if (sq_dec_is_zero(v)) v->neg = 0;
  return 0;
}

int sq_dec_is_zero(const sq_decv *v) {
  if (v->in) return 0;
  for (size_t k = 0; k < v->fn; k++)
    if (v->fp[k] != '0') return 0;
  return 1;
}

/* |a| against |b|. The integer parts have no leading zeros, so the longer
 * one is larger; equal lengths compare digit by digit, then the
 * fractions, a missing digit reading as 0. */
static int cmp_mag(const sq_decv *a, const sq_decv *b) {
  if (a->in != b->in) return a->in < b->in ? -1 : 1;
  int c = memcmp(a->ip, b->ip, a->in);
  if (c) return c < 0 ? -1 : 1;
  size_t m = a->fn > b->fn ? a->fn : b->fn;
  for (size_t k = 0; k < m; k++) {
    char x = k < a->fn ? a->fp[k] : '0', y = k < b->fn ? b->fp[k] : '0';
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

int sq_dec_cmp(const sq_decv *a, const sq_decv *b) {
  int sa = sq_dec_is_zero(a) ? 0 : a->neg ? -1 : 1;
  int sb = sq_dec_is_zero(b) ? 0 : b->neg ? -1 : 1;
  if (sa != sb) return sa < sb ? -1 : 1;
  if (sa == 0) return 0;
  int m = cmp_mag(a, b);
  return sa > 0 ? m : -m;
}

/*
 * A total order on any two texts, as a collation needs: decimal texts in
 * numeric order ("9.5" < "10.25", "1.5" = "1.50"), before every text that
 * is not a decimal, which sort among themselves byte by byte (shorter
 * first on a tie). Needs no allocation.
 */
int sq_dec_collate(const char *a, size_t an, const char *b, size_t bn) {
  char ba[SQ_DEC_BUF], bb[SQ_DEC_BUF];
  sq_decv va, vb;
  int na = sq_dec_view(a, an, &va, ba, sizeof ba) == 0;
  int nb = sq_dec_view(b, bn, &vb, bb, sizeof bb) == 0;
  if (na && nb) return sq_dec_cmp(&va, &vb);
  if (na != nb) return na ? -1 : 1;
  size_t m = an < bn ? an : bn;
  int c = m ? memcmp(a, b, m) : 0;
  if (c) return c < 0 ? -1 : 1;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

int sq_dec_fixed(const sq_decv *v, int precision, int scale, char *out, size_t cap) {
  if (scale < 0 || precision < 1 || scale > precision) return -1;
  size_t s = (size_t)scale;
  for (size_t k = s; k < v->fn; k++)
    if (v->fp[k] != '0') return -1; /* would need rounding */
  if (v->in > (size_t)(precision - scale)) return -1;
  size_t need = 1 + (v->in ? v->in : 1) + 1 + s + 1;
  if (need > cap) return -1;
  size_t o = 0;
  if (v->neg && !sq_dec_is_zero(v)) out[o++] = '-';
  if (v->in) {
    memcpy(out + o, v->ip, v->in);
    o += v->in;
  } else {
    out[o++] = '0';
  }
  if (s) {
    out[o++] = '.';
    for (size_t k = 0; k < s; k++) out[o++] = k < v->fn ? v->fp[k] : '0';
  }
  out[o] = '\0';
  return (int)o;
}

/* ------------------------------------------------------------------ */
/* The accumulator                                                      */
/* ------------------------------------------------------------------ */

void sq_dacc_init(sq_dacc *a) { memset(a, 0, sizeof *a); }

void sq_dacc_free(sq_dacc *a) {
  free(a->m);
  free(a->t);
  memset(a, 0, sizeof *a);
}

/* Makes room for want digits in *p (capacity *cap). */
static int reserve(unsigned char **p, size_t *cap, size_t want) {
  if (want <= *cap) return 0;
  size_t c = *cap ? *cap : 32;
  while (c < want) c *= 2;
  unsigned char *q = realloc(*p, c);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static int cmp_le(const unsigned char *x, size_t xn, const unsigned char *y, size_t yn) {
  if (xn != yn) return xn < yn ? -1 : 1;
  for (size_t k = xn; k-- > 0;)
    if (x[k] != y[k]) return x[k] < y[k] ? -1 : 1;
  return 0;
}

static size_t trim(const unsigned char *x, size_t n) {
  while (n > 0 && x[n - 1] == 0) n--;
  return n;
}

int sq_dacc_add(sq_dacc *a, const sq_decv *v) {
  if (v->fn > (size_t)SQ_DEC_MAX_SCALE) return -1;
  size_t scale = (size_t)a->scale;
  if (v->fn > scale) { /* more decimals: shift what we have up */
    size_t k = v->fn - scale;
    if (a->n) {
      if (reserve(&a->m, &a->cap, a->n + k + 1)) return -1;
      memmove(a->m + k, a->m, a->n);
      memset(a->m, 0, k);
      a->n += k;
    }
    scale = v->fn;
    a->scale = (int)scale;
  }
  /* the addend, little-endian at the same scale */
  size_t tn = scale + v->in;
  if (reserve(&a->t, &a->tcap, tn + 1)) return -1;
  memset(a->t, 0, tn);
  for (size_t k = 0; k < v->fn; k++) a->t[scale - 1 - k] = (unsigned char)(v->fp[k] - '0');
  for (size_t k = 0; k < v->in; k++) a->t[scale + k] = (unsigned char)(v->ip[v->in - 1 - k] - '0');
  tn = trim(a->t, tn);
  a->count++;
  if (tn == 0) return 0;
  size_t mx = (a->n > tn ? a->n : tn) + 1;
  if (reserve(&a->m, &a->cap, mx)) return -1;
  if (a->n == 0 || a->neg == v->neg) {
    unsigned carry = 0;
    for (size_t k = 0; k < mx; k++) {
      unsigned d = (k < a->n ? a->m[k] : 0u) + (k < tn ? a->t[k] : 0u) + carry;
      a->m[k] = (unsigned char)(d % 10);
      carry = d / 10;
    }
    if (a->n == 0) a->neg = v->neg;
    a->n = trim(a->m, mx);
    return 0;
  }
  /* opposite signs: the larger magnitude minus the smaller */
  int c = cmp_le(a->m, a->n, a->t, tn);
  const unsigned char *big = c >= 0 ? a->m : a->t, *small = c >= 0 ? a->t : a->m;
  size_t bn = c >= 0 ? a->n : tn, sn = c >= 0 ? tn : a->n;
  int borrow = 0;
  for (size_t k = 0; k < bn; k++) {
    int d = (int)big[k] - (k < sn ? (int)small[k] : 0) - borrow;
    borrow = d < 0;
    a->m[k] = (unsigned char)(borrow ? d + 10 : d);
  }
  a->n = trim(a->m, bn);
  if (c < 0) a->neg = v->neg;
  if (a->n == 0) a->neg = 0;
  return 0;
}

/* Writes sign, magnitude m (n digits, little-endian) and scale as text. */
static char *format_le(int neg, const unsigned char *m, size_t n, size_t scale, size_t *len) {
  size_t nint = n > scale ? n - scale : 0;
  char *out = malloc(1 + (nint ? nint : 1) + 1 + scale + 1);
  if (!out) return NULL;
  size_t o = 0;
  if (neg && n) out[o++] = '-';
  if (nint) {
    for (size_t k = n; k-- > scale;) out[o++] = (char)('0' + m[k]);
  } else {
    out[o++] = '0';
  }
  if (scale) {
    out[o++] = '.';
    for (size_t k = scale; k-- > 0;) out[o++] = (char)('0' + (k < n ? m[k] : 0));
  }
  out[o] = '\0';
  *len = o;
  return out;
}

char *sq_dacc_text(const sq_dacc *a, size_t *len) {
  return format_le(a->neg, a->m, a->n, (size_t)a->scale, len);
}

char *sq_dacc_mean(const sq_dacc *a, int extra, size_t *len) {
  if (a->count <= 0 || extra < 0 || extra > SQ_DEC_MAX_SCALE) return NULL;
  uint64_t cnt = (uint64_t)a->count;
  if (cnt > (UINT64_MAX - 9) / 10) return NULL;
  size_t qn = a->n + (size_t)extra; /* the dividend's digits: m then extra zeros */
  unsigned char *q = malloc(qn + 2);
  if (!q) return NULL;
  uint64_t rem = 0;
  for (size_t k = qn; k-- > 0;) { /* long division, most significant first */
    unsigned d = k >= (size_t)extra ? a->m[k - (size_t)extra] : 0u;
    rem = rem * 10 + d;
    q[k] = (unsigned char)(rem / cnt);
    rem %= cnt;
  }
  if (rem >= cnt - rem) { /* half or more: away from zero */
    size_t k = 0;
    q[qn] = 0;
    while (++q[k] == 10) q[k++] = 0;
    qn++;
  }
  size_t n = trim(q, qn);
  char *out = format_le(a->neg, q, n, (size_t)a->scale + (size_t)extra, len);
  free(q);
  return out;
}
