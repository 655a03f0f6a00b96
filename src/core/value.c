/*
 * value.c - values meet columns: coercion to a column's type, the checks
 * run before any SQL is sent, UTC datetime text and v4 UUIDs.
 *
 * The rule throughout is "convert when nothing is lost, else refuse with
 * a message that names the column and shows the value", so a where table
 * decoded from a request ("1" for an integer key) works while "abc", 1.5
 * or a boolean for an integer column is a clear usage error instead of a
 * server-side cast or a silent truncation.
 */
#include "model_int.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

/* ------------------------------------------------------------------ */
/* Numbers and dates as text                                            */
/* ------------------------------------------------------------------ */

/* 0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC. */
#define EPOCH_MIN INT64_C(-62135596800)
#define EPOCH_MAX INT64_C(253402300799)

void sq_format_datetime(int64_t epoch, char *buf) {
  if (epoch < EPOCH_MIN) epoch = EPOCH_MIN;
  if (epoch > EPOCH_MAX) epoch = EPOCH_MAX;
  int64_t days = epoch / 86400, secs = epoch % 86400;
  if (secs < 0) { secs += 86400; days--; }
  int64_t y;
  int mo, d;
  sq_civil_from_days(days, &y, &mo, &d);
  /* Written by hand: the clamp above keeps y in 1..9999. */
  char *p = sq_put_digits(buf, (unsigned)y, 4);
  *p++ = '-';
  p = sq_put_digits(p, (unsigned)mo, 2);
  *p++ = '-';
  p = sq_put_digits(p, (unsigned)d, 2);
  *p++ = ' ';
  p = sq_put_digits(p, (unsigned)(secs / 3600), 2);
  *p++ = ':';
  p = sq_put_digits(p, (unsigned)(secs / 60 % 60), 2);
  *p++ = ':';
  p = sq_put_digits(p, (unsigned)(secs % 60), 2);
  *p = '\0';
}

int sq_uuid_v4(char out[37], sq_err *err) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    out[0] = '\0';
    return sq_err_set(err, SQ_EINTERNAL, "OpenSSL RAND_bytes failed: no random source for a UUID");
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
  return SQ_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int days_in_month(int64_t y, int m) {
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return dm[m - 1];
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!is_digit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/*
 * Parses YYYY-MM-DD[( |T)HH:MM:SS[.f{1,6}]][Z] and writes the normalised
 * form into buf: "YYYY-MM-DD" for a DATE (a time part must then be
 * midnight), "YYYY-MM-DD HH:MM:SS[.ffffff]" for a DATETIME. Returns the
 * length written, or -1.
 */
static int parse_dt(const char *s, size_t n, int date_only, char *buf) {
  if (n > 0 && s[n - 1] == 'Z') n--;
  if (n != 10 && (n < 19 || n > 26 || n == 20)) return -1;
  if (s[4] != '-' || s[7] != '-') return -1;
  int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return -1;
  int hh = 0, mi = 0, ss = 0, nfrac = 0;
  const char *frac = NULL;
  if (n > 10) {
    if ((s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':') return -1;
    hh = digits(s + 11, 2);
    mi = digits(s + 14, 2);
    ss = digits(s + 17, 2);
    if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59) return -1;
    if (n > 19) {
      if (s[19] != '.') return -1;
      frac = s + 20;
      nfrac = (int)n - 20;
      for (int i = 0; i < nfrac; i++)
        if (!is_digit(frac[i])) return -1;
    }
  }
  if (date_only) {
    for (int i = 0; i < nfrac; i++)
      if (frac[i] != '0') return -1;
    if (hh || mi || ss) return -1;
    memcpy(buf, s, 10);
    buf[10] = '\0';
    return 10;
  }
  /* Every field was checked to be exactly its digits, so the normalised
   * text is the input with a space between date and time (this runs for
   * every DATETIME written, so no snprintf). */
  int k;
  if (n == 10) {
    memcpy(buf, s, 10);
    memcpy(buf + 10, " 00:00:00", 9);
  } else {
    memcpy(buf, s, 19);
    buf[10] = ' ';
  }
  k = 19;
  buf[k] = '\0';
  if (nfrac) {
    buf[k++] = '.';
    memcpy(buf + k, frac, (size_t)nfrac);
    k += nfrac;
    buf[k] = '\0';
  }
  return k;
}

/* [+-]?digits as an int64 without overflow. */
static int parse_int(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (n && (s[0] == '-' || s[0] == '+')) { neg = s[0] == '-'; i = 1; }
  if (i == n) return -1;
  uint64_t v = 0, lim = neg ? UINT64_C(9223372036854775808) : UINT64_C(9223372036854775807);
  for (; i < n; i++) {
    if (!is_digit(s[i])) return -1;
    unsigned dg = (unsigned)(s[i] - '0');
    if (v > (lim - dg) / 10) return -1;
    v = v * 10 + dg;
  }
  *out = neg ? (v == UINT64_C(9223372036854775808) ? INT64_MIN : -(int64_t)v) : (int64_t)v;
  return 0;
}

/* Length of a plain decimal [+-]?(d+(.d*)?|.d+) at s, allowing an
 * exponent when exp; 0 when s isn't one. */
static int is_number(const char *s, size_t n, int exp) {
  size_t i = 0, nd = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) i++;
  while (i < n && is_digit(s[i])) { i++; nd++; }
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && is_digit(s[i])) { i++; nd++; }
  }
  if (!nd) return 0;
  if (exp && i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    size_t ne = 0;
    while (i < n && is_digit(s[i])) { i++; ne++; }
    if (!ne) return 0;
  }
  return i == n;
}

/* Reads a numeric string (checked by is_number) as a double. */
static double to_double(const char *s, size_t n) {
  char tmp[80];
  if (n >= sizeof tmp) n = sizeof tmp - 1; /* callers cap the length */
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  return strtod(tmp, NULL);
}

/* Rewrites "1.5e-7" style text as plain "0.00000015" into out; -1 when
 * it doesn't fit. */
static int plain_decimal(const char *s, char *out, size_t outn) {
  char dg[40];
  int nd = 0, point = -1, neg = 0, exp = 0;
  const char *p = s;
  if (*p == '-' || *p == '+') neg = *p++ == '-';
  for (; *p && *p != 'e' && *p != 'E'; p++) {
    if (*p == '.') { point = nd; continue; }
    if (nd >= (int)sizeof dg) return -1;
    dg[nd++] = *p;
  }
  if (*p) exp = atoi(p + 1);
  if (point < 0) point = nd;
  point += exp; /* digits before the decimal point */
  size_t o = 0;
  char tmp[128];
  if (neg) tmp[o++] = '-';
  if (point <= 0) {
    tmp[o++] = '0';
    if (nd) tmp[o++] = '.';
    for (int i = 0; i < -point && o < sizeof tmp - 2; i++) tmp[o++] = '0';
    for (int i = 0; i < nd && o < sizeof tmp - 2; i++) tmp[o++] = dg[i];
  } else {
    for (int i = 0; i < point && o < sizeof tmp - 2; i++) tmp[o++] = i < nd ? dg[i] : '0';
    if (nd > point) {
      tmp[o++] = '.';
      for (int i = point; i < nd && o < sizeof tmp - 2; i++) tmp[o++] = dg[i];
    }
  }
  if (o + 1 > outn || o >= sizeof tmp - 2) return -1;
  memcpy(out, tmp, o);
  out[o] = '\0';
  return (int)o;
}

/* Whether a plain decimal fits DECIMAL(p,s) without rounding. */
static int decimal_fits(const char *s, size_t n, int p, int sc) {
  size_t i = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) i++;
  while (i < n && s[i] == '0') i++;
  int nint = 0, nfrac = 0;
  while (i < n && is_digit(s[i])) { i++; nint++; }
  if (i < n && s[i] == '.') {
    i++;
    size_t end = n;
    while (end > i && s[end - 1] == '0') end--;
    nfrac = (int)(end - i);
  }
  return nint <= p - sc && nfrac <= sc;
}

/* ------------------------------------------------------------------ */
/* Coercion                                                             */
/* ------------------------------------------------------------------ */

static const char *expects(int type) {
  switch (type) {
  case SQ_T_INTEGER: case SQ_T_BIGINT: case SQ_T_SMALLINT: return "an integer";
  case SQ_T_FLOAT: case SQ_T_DOUBLE: return "a number";
  case SQ_T_DECIMAL: return "a decimal number";
  case SQ_T_BOOLEAN: return "a boolean";
  case SQ_T_DATE: return "a date (YYYY-MM-DD) or epoch seconds";
  case SQ_T_DATETIME: return "a datetime (YYYY-MM-DD HH:MM:SS) or epoch seconds";
  case SQ_T_BLOB: return "a binary string";
  case SQ_T_UUID: return "a UUID string";
  case SQ_T_JSON: return "JSON text, a number or a boolean";
  default: return "a string";
  }
}

/* "string 'abc'", "float 1.5", ... for messages. */
static void describe(const sq_value *v, char *out, size_t n) {
  char tmp[64];
  switch (v->type) {
  case SQ_VNULL: snprintf(out, n, "null"); break;
  case SQ_VINT: snprintf(out, n, "integer %lld", (long long)v->u.i); break;
  case SQ_VFLOAT: sq_fmt_double(v->u.f, tmp, sizeof tmp); snprintf(out, n, "float %s", tmp); break;
  case SQ_VBOOL: snprintf(out, n, "boolean %s", v->u.b ? "true" : "false"); break;
  case SQ_VTEXT: sq_show(v->u.s.p, v->u.s.n, tmp, 44); snprintf(out, n, "string '%s'", tmp); break;
  default: snprintf(out, n, "binary string (%zu bytes)", v->u.s.n); break;
  }
}

static int wrong(const sq_col *col, const sq_value *v, char *prob, size_t pn) {
  char got[96];
  describe(v, got, sizeof got);
  snprintf(prob, pn, "expects %s, got %s", expects(col->type), got);
  return 1;
}

static int uuid_ok(const char *s, size_t n) {
  if (n != 36) return 0;
  for (size_t i = 0; i < 36; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return 0;
    } else if (!is_digit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F')) {
      return 0;
    }
  }
  return 1;
}

/* Integer range of a column type. */
static void int_range(int type, int64_t *lo, int64_t *hi) {
  if (type == SQ_T_SMALLINT) { *lo = -32768; *hi = 32767; }
  else if (type == SQ_T_INTEGER) { *lo = INT32_MIN; *hi = INT32_MAX; }
  else { *lo = INT64_MIN; *hi = INT64_MAX; }
}

/* An ENUM value: exactly one of the column's values. */
static int coerce_enum(const sq_col *col, sq_value *v, char *prob, size_t pn) {
  if (v->type == SQ_VTEXT)
    for (int i = 0; i < col->nenum; i++)
      if (strlen(col->enum_values[i]) == v->u.s.n && !memcmp(col->enum_values[i], v->u.s.p, v->u.s.n)) return 0;
  char got[96];
  describe(v, got, sizeof got);
  size_t o = (size_t)snprintf(prob, pn, "expects one of ");
  for (int i = 0; i < col->nenum && o + 80 < pn; i++) {
    int k = snprintf(prob + o, pn - o, "%s'%.40s'", i ? ", " : "", col->enum_values[i]);
    if (k > 0) o += (size_t)k;
    if (i == 7 && col->nenum > 8) {
      k = snprintf(prob + o, pn - o, ", ...");
      if (k > 0) o += (size_t)k;
      break;
    }
  }
  if (o < pn) snprintf(prob + o, pn - o, "; got %s", got);
  return 1;
}

/* A JSON value: JSON text as it is (checked), numbers and booleans as
 * their JSON text. */
static int coerce_json(const sq_col *col, sq_value *v, char *buf, char *prob, size_t pn) {
  sq_json_w w;
  sq_err e;
  sq_err_clear(&e);
  switch (v->type) {
  case SQ_VTEXT:
    if (sq_json_valid(v->u.s.p, v->u.s.n)) return 0;
    snprintf(prob, pn, "expects JSON text; the string is not valid JSON");
    return 1;
  case SQ_VBOOL:
    *v = v->u.b ? sq_text("true", 4) : sq_text("false", 5);
    return 0;
  case SQ_VINT:
  case SQ_VFLOAT:
    sq_json_w_init(&w, 1);
    if (v->type == SQ_VINT) sq_json_w_int(&w, v->u.i, &e);
    else sq_json_w_double(&w, v->u.f, &e);
    if (w.rc || w.n >= 40) {
      sq_json_w_free(&w);
      return wrong(col, v, prob, pn);
    }
    memcpy(buf, w.p, w.n + 1);
    *v = sq_text(buf, w.n);
    sq_json_w_free(&w);
    return 0;
  default:
    return wrong(col, v, prob, pn);
  }
}

/*
 * The conversion itself; on failure writes the problem (without the
 * column name) into prob and returns 1. Text produced goes into buf.
 */
static int coerce(const sq_col *col, sq_value *v, char *buf, char *prob, size_t pn) {
  if (v->type == SQ_VNULL) return 0;
  switch (col->type) {
  case SQ_T_INTEGER: case SQ_T_BIGINT: case SQ_T_SMALLINT: {
    int64_t i;
    if (v->type == SQ_VINT) {
      i = v->u.i;
    } else if (v->type == SQ_VFLOAT) {
      double d = v->u.f;
      if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return wrong(col, v, prob, pn);
      i = (int64_t)d;
    } else if (v->type == SQ_VTEXT) {
      if (parse_int(v->u.s.p, v->u.s.n, &i)) return wrong(col, v, prob, pn);
    } else {
      return wrong(col, v, prob, pn);
    }
    int64_t lo, hi;
    int_range(col->type, &lo, &hi);
    if (i < lo || i > hi) {
      char got[96];
      describe(v, got, sizeof got);
      snprintf(prob, pn, "expects an integer between %lld and %lld, got %s", (long long)lo, (long long)hi, got);
      return 1;
    }
    *v = sq_int(i);
    return 0;
  }
  case SQ_T_FLOAT: case SQ_T_DOUBLE: {
    double d;
    if (v->type == SQ_VFLOAT) {
      d = v->u.f;
    } else if (v->type == SQ_VINT) {
      d = (double)v->u.i;
      if (d >= 9223372036854775808.0 || (int64_t)d != v->u.i) return wrong(col, v, prob, pn);
    } else if (v->type == SQ_VTEXT) {
      if (v->u.s.n > 64 || !is_number(v->u.s.p, v->u.s.n, 1)) return wrong(col, v, prob, pn);
      d = to_double(v->u.s.p, v->u.s.n);
    } else {
      return wrong(col, v, prob, pn);
    }
    if (!isfinite(d)) return wrong(col, v, prob, pn);
    *v = sq_float(d);
    return 0;
  }
  case SQ_T_DECIMAL: {
    const char *s;
    size_t n;
    if (v->type == SQ_VINT) {
      n = sq_fmt_i64(v->u.i, buf);
      s = buf;
    } else if (v->type == SQ_VFLOAT) {
      char tmp[40];
      if (!isfinite(v->u.f)) return wrong(col, v, prob, pn);
      sq_fmt_double(v->u.f, tmp, sizeof tmp);
      int k = plain_decimal(tmp, buf, 40);
      if (k < 0) {
        snprintf(prob, pn, "value %s does not fit DECIMAL(%d,%d)", tmp, col->precision, col->scale);
        return 1;
      }
      s = buf;
      n = (size_t)k;
    } else if (v->type == SQ_VTEXT) {
      if (!is_number(v->u.s.p, v->u.s.n, 0)) return wrong(col, v, prob, pn);
      s = v->u.s.p;
      n = v->u.s.n;
    } else {
      return wrong(col, v, prob, pn);
    }
    if (!decimal_fits(s, n, col->precision, col->scale)) {
      char shown[48];
      sq_show(s, n, shown, sizeof shown);
      snprintf(prob, pn, "value %s does not fit DECIMAL(%d,%d)", shown, col->precision, col->scale);
      return 1;
    }
    *v = sq_text(s, n);
    return 0;
  }
  case SQ_T_STRING: case SQ_T_CHAR: case SQ_T_TEXT: {
    if (v->type == SQ_VTEXT) return 0;
    int k;
    if (v->type == SQ_VINT) k = (int)sq_fmt_i64(v->u.i, buf);
    else if (v->type == SQ_VFLOAT && isfinite(v->u.f)) k = sq_fmt_double(v->u.f, buf, 40);
    else return wrong(col, v, prob, pn);
    *v = sq_text(buf, (size_t)k);
    return 0;
  }
  case SQ_T_UUID: {
    if (v->type != SQ_VTEXT || !uuid_ok(v->u.s.p, v->u.s.n)) return wrong(col, v, prob, pn);
    /* The canonical form is lower case (what PostgreSQL's uuid prints):
     * stored and compared as text elsewhere, an upper-case spelling
     * would be another key. */
    const char *s = v->u.s.p;
    size_t k = 0;
    while (k < 36 && !(s[k] >= 'A' && s[k] <= 'F')) k++;
    if (k == 36) return 0;
    for (size_t i = 0; i < 36; i++) buf[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
    buf[36] = '\0';
    *v = sq_text(buf, 36);
    return 0;
  }
  case SQ_T_BOOLEAN:
    if (v->type == SQ_VBOOL) return 0;
    if (v->type == SQ_VINT && (v->u.i == 0 || v->u.i == 1)) { *v = sq_bool((int)v->u.i); return 0; }
    if (v->type == SQ_VFLOAT && (v->u.f == 0.0 || v->u.f == 1.0)) { *v = sq_bool(v->u.f == 1.0); return 0; }
    if (v->type == SQ_VTEXT) {
      const char *s = v->u.s.p;
      size_t n = v->u.s.n;
      if ((n == 4 && !memcmp(s, "true", 4)) || (n == 1 && s[0] == '1')) { *v = sq_bool(1); return 0; }
      if ((n == 5 && !memcmp(s, "false", 5)) || (n == 1 && s[0] == '0')) { *v = sq_bool(0); return 0; }
    }
    return wrong(col, v, prob, pn);
  case SQ_T_DATE: case SQ_T_DATETIME: {
    int date_only = col->type == SQ_T_DATE;
    if (v->type == SQ_VTEXT) {
      int k = parse_dt(v->u.s.p, v->u.s.n, date_only, buf);
      if (k < 0) return wrong(col, v, prob, pn);
      *v = sq_text(buf, (size_t)k);
      return 0;
    }
    int64_t secs;
    long usec = 0;
    if (v->type == SQ_VINT) {
      secs = v->u.i;
    } else if (v->type == SQ_VFLOAT && isfinite(v->u.f) && v->u.f > -7e10 && v->u.f < 3e11) {
      double fl = floor(v->u.f);
      secs = (int64_t)fl;
      usec = lround((v->u.f - fl) * 1e6);
      if (usec >= 1000000) { secs++; usec = 0; }
      if (date_only && usec) return wrong(col, v, prob, pn);
    } else {
      return wrong(col, v, prob, pn);
    }
    if (secs < EPOCH_MIN || secs > EPOCH_MAX) {
      char got[96];
      describe(v, got, sizeof got);
      snprintf(prob, pn, "expects epoch seconds between years 1 and 9999, got %s", got);
      return 1;
    }
    sq_format_datetime(secs, buf);
    size_t k = date_only ? 10 : 19;
    buf[k] = '\0';
    if (usec && !date_only) {
      buf[k++] = '.';
      k = (size_t)(sq_put_digits(buf + k, (unsigned)usec, 6) - buf);
      buf[k] = '\0';
    }
    *v = sq_text(buf, k);
    return 0;
  }
  case SQ_T_BLOB:
    if (v->type == SQ_VBLOB) return 0;
    if (v->type == SQ_VTEXT) { v->type = SQ_VBLOB; return 0; }
    return wrong(col, v, prob, pn);
  case SQ_T_ENUM: return coerce_enum(col, v, prob, pn);
  case SQ_T_JSON: return coerce_json(col, v, buf, prob, pn);
  default:
    snprintf(prob, pn, "has an unknown type");
    return 1;
  }
}

int sq_coerce(const sq_col *col, sq_value *v, char *buf, sq_err *err) {
  char prob[256];
  if (!col || !v || !buf) return sq_err_set(err, SQ_EUSAGE, "sq_coerce: bad arguments");
  if (!coerce(col, v, buf, prob, sizeof prob)) return SQ_OK;
  char name[80];
  sq_show(col->name, col->name_len, name, sizeof name);
  return sq_err_set(err, SQ_EUSAGE, "column '%s' %s", name, prob);
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */
/* ------------------------------------------------------------------ */

/* The checks of one given value; writes the first problem into prob. */
static int check_value(const sq_col *col, const sq_value *given, char *prob, size_t pn) {
  char buf[64], a[40], b[40];
  sq_value v = *given;
  if (v.type == SQ_VNULL) {
    if (!col->allow_null) { snprintf(prob, pn, "cannot be null"); return 1; }
    return 0;
  }
  if (coerce(col, &v, buf, prob, pn)) return 1;
  if (col->has_len && (v.type == SQ_VTEXT || v.type == SQ_VBLOB)) {
    size_t n = v.type == SQ_VTEXT ? sq_utf8_len(v.u.s.p, v.u.s.n) : v.u.s.n;
    if ((int64_t)n < col->len_min || (int64_t)n > col->len_max) {
      snprintf(prob, pn, "length must be between %lld and %lld", (long long)col->len_min, (long long)col->len_max);
      return 1;
    }
  }
  if ((col->type == SQ_T_STRING || col->type == SQ_T_CHAR) && v.type == SQ_VTEXT &&
      sq_utf8_len(v.u.s.p, v.u.s.n) > (size_t)col->length) {
    snprintf(prob, pn, "length must be at most %d characters", col->length);
    return 1;
  }
  if (col->has_min || col->has_max) {
    double d;
    int num = 1;
    if (v.type == SQ_VINT) d = (double)v.u.i;
    else if (v.type == SQ_VFLOAT) d = v.u.f;
    else if (v.type == SQ_VTEXT && col->type == SQ_T_DECIMAL && v.u.s.n < 70) d = to_double(v.u.s.p, v.u.s.n);
    else num = 0;
    if (num && col->has_min && d < col->min) {
      sq_fmt_double(col->min, a, sizeof a);
      snprintf(prob, pn, "must be >= %s", a);
      return 1;
    }
    if (num && col->has_max && d > col->max) {
      sq_fmt_double(col->max, b, sizeof b);
      snprintf(prob, pn, "must be <= %s", b);
      return 1;
    }
  }
  return 0;
}

/* Appends "; col: problem" to the message, keeping it within the sq_err. */
static void add_problem(char *msg, size_t mn, size_t *o, int *count, const sq_col *col, const char *prob) {
  char name[80];
  sq_show(col->name, col->name_len, name, sizeof name);
  if (*o >= mn - 1) return;
  int k = snprintf(msg + *o, mn - *o, "%s%s: %s", *count ? "; " : "", name, prob);
  (*count)++;
  if (k < 0) return;
  *o += (size_t)k;
  if (*o >= mn - 1) {
    *o = mn - 1;
    memcpy(msg + mn - 4, "...", 4);
  }
}

/*
 * Every failing field, in model order, in one SQ_EVALIDATION message.
 * Columns the insert doesn't give are required when they are NOT NULL
 * and nothing else fills them: no default, not auto_increment, not a
 * managed timestamp, not a UUID key (the binding generates those).
 */
int sq_model_validate(const sq_model *m, const int *cols, const sq_value *vals, int n, int partial, sq_err *err) {
  if (!m || n < 0 || (n > 0 && (!cols || !vals))) return sq_err_set(err, SQ_EUSAGE, "sq_model_validate: bad arguments");
  int stack[128], *at = m->ncols <= 128 ? stack : malloc(sizeof *at * (size_t)m->ncols);
  if (!at) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  for (int i = 0; i < m->ncols; i++) at[i] = -1;
  int rc = SQ_OK;
  for (int i = 0; i < n; i++) {
    if (cols[i] < 0 || cols[i] >= m->ncols) {
      rc = sq_err_set(err, SQ_EUSAGE, "sq_model_validate: column index %d out of range", cols[i]);
      goto done;
    }
    at[cols[i]] = i;
  }
  /* The header is written with the first problem: the message is built
   * only when validation fails, never on the (usual) success path. */
  static const char head[] = "validation failed: ";
  char msg[sizeof err->msg], prob[256];
  size_t o = sizeof head - 1;
  int count = 0;
  for (int c = 0; c < m->ncols; c++) {
    const sq_col *col = &m->cols[c];
    if (at[c] >= 0) {
      if (check_value(col, &vals[at[c]], prob, sizeof prob)) add_problem(msg, sizeof msg, &o, &count, col, prob);
    } else if (!partial && !col->allow_null && col->default_kind == SQ_DEFAULT_NONE && !col->auto_increment &&
               col->role != SQ_ROLE_CREATED_AT && col->role != SQ_ROLE_UPDATED_AT &&
               !(col->primary_key && col->type == SQ_T_UUID)) {
      add_problem(msg, sizeof msg, &o, &count, col, "cannot be null");
    }
  }
  if (count) {
    memcpy(msg, head, sizeof head - 1);
    rc = sq_err_set(err, SQ_EVALIDATION, "%s", msg);
  }
done:
  if (at != stack) free(at);
  return rc;
}
