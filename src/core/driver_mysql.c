/*
 * driver_mysql.c - the MySQL / MariaDB / TiDB driver over the MySQL client
 * API as MariaDB Connector/C (libmariadb, 3.3) provides it.
 *
 * Statements with bound values run as server-side prepared statements
 * (binary protocol) kept in a per-connection LRU cache keyed by the exact
 * SQL text; statements without values run over the text protocol (one round
 * trip, nothing to cache). Both paths type their results from the column
 * metadata, and both read rows unbuffered: each row is decoded straight out
 * of the network buffer into buffers owned by the cache entry (or by the
 * connection), so no memory is allocated per row and memory stays bounded
 * whatever the result size. Statements the server cannot prepare (error
 * 1295) fall back to the text protocol with the values escaped by
 * mysql_real_escape_string, which honours NO_BACKSLASH_ESCAPES.
 *
 * TLS with Connector/C 3.3 (see open_tls below for the details):
 *   disable          no TLS options at all (3.3 never starts TLS unasked)
 *   prefer / default TLS when the server offers it, no verification
 *   require          TLS or fail, no verification (a given CA is used)
 *   verify_ca        TLS, chain checked against ssl.ca, host name NOT checked
 *   verify_identity  TLS, chain and host name checked
 * From require up, a server without TLS is refused before the login.
 */
#include "sqorm.h"
#include "internal.h"

#include <mysql.h>
#include <mysql/plugin_auth.h>
#include <errmsg.h>

#include <pthread.h>

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE_MAX 64          /* prepared statements kept per connection */
#define COL_BUF_INITIAL 4096       /* largest initial buffer for a string column */
#define COL_BUF_KEEP (64 * 1024)   /* larger buffers are freed after each result */
#define DEFAULT_CONNECT_TIMEOUT 10

#ifndef ER_UNSUPPORTED_PS
#define ER_UNSUPPORTED_PS 1295
#endif
#ifndef ER_NEED_REPREPARE
#define ER_NEED_REPREPARE 1615
#endif
#define BINARY_CHARSET_NR 63
#define MY_TYPE_JSON 245           /* MYSQL_TYPE_JSON (MySQL servers only) */

/* How a column's values are converted. */
enum {
  K_NULL,     /* always NULL (SELECT NULL) */
  K_INT,      /* fits int64 */
  K_UINT,     /* BIGINT UNSIGNED: int64 or decimal text above INT64_MAX */
  K_DOUBLE,
  K_FLOAT,
  K_DECIMAL,  /* exact text */
  K_DATE,
  K_DATETIME, /* DATETIME and TIMESTAMP */
  K_TIME,
  K_BIT,      /* big-endian bytes -> integer */
  K_TEXT,
  K_BLOB
};

/* One result column of a prepared statement: its conversion, the bound
 * buffer and the values the library writes through the MYSQL_BIND. */
typedef struct my_col {
  int kind;
  char *buf;            /* string kinds: malloc'd, cap bytes */
  unsigned long cap;
  unsigned long len;
  my_bool is_null, error;
  union {
    long long i;
    double d;
    float f;
    MYSQL_TIME t;
  } num;
  char tbuf[48];        /* formatted dates, large unsigned integers */
} my_col;

/* Storage for one bound parameter value (MYSQL_BIND points into it). */
typedef union my_pval {
  long long i;
  double d;
  signed char b;
} my_pval;

/* A cached prepared statement. The arrays are sized for ncols columns and
 * reused by every execution, so running a cached statement allocates
 * nothing once its buffers have grown to the data. */
typedef struct my_stmt {
  struct my_stmt *prev, *next; /* LRU list, head = most recently used */
  char *sql;
  size_t len;
  uint64_t hash;
  MYSQL_STMT *st;
  unsigned nparams;
  MYSQL_BIND *pbind;
  my_pval *pval;
  unsigned ncols, colcap;
  my_col *cols;
  MYSQL_BIND *rbind;
  sq_column *scols;
  sq_value *vals;
} my_stmt;

/* Per-column state for a text-protocol result. */
typedef struct my_tcol {
  int kind;
  char tbuf[48];
} my_tcol;

struct my_cursor;

/* The transaction as sqorm sees it (my_conn.tx). */
enum {
  TX_NONE = 0,
  TX_OPEN,   /* begun by my_begin */
  TX_LOST    /* the server ended it (deadlock, ...): only ROLLBACK clears this */
};

typedef struct my_conn {
  MYSQL *m;
  int dead;
  int tx;                      /* TX_* */
  char lost_code[32];          /* the error that ended a TX_LOST transaction */
  struct my_cursor *cur;       /* open cursor: the connection is busy */
  my_stmt *head, *tail;        /* statement cache, LRU order */
  int nstmts;
  unsigned tcap;               /* text-protocol result scratch */
  my_tcol *tcols;
  sq_column *tscols;
  sq_value *tvals;
  char *db0;                   /* the database given at open (a full reset returns to it) */
  /* For my_cancel, which runs on another thread: the server's id of this
   * session and a copy of the settings to open a side connection with. */
  unsigned long thread_id;
  sq_config cfg;
  int has_cfg;
} my_conn;

/* An executing statement whose result is being read, prepared or text. */
typedef struct my_rs {
  my_conn *c;
  my_stmt *s;        /* prepared path, else NULL */
  MYSQL_RES *res;    /* text path with a result set */
  unsigned ncols;
  int has_rs;
  const sq_column *cols;
  sq_value *vals;
} my_rs;

typedef struct my_cursor {
  my_conn *c;        /* NULL once the connection was closed or reset under it */
  my_rs rs;
  const sq_row_sink *sink;
  int finished;
  sq_err failed;     /* a fetch error, looked at once the cursor is closed */
} my_cursor;

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* Maps a server or client error number onto an sq_kind. Client errors
 * about the link map to SQ_ECONNECTION here; the caller additionally
 * forces SQ_ECONNECTION whenever the link turned out to be gone. */
static int kind_for(unsigned int no) {
  switch (no) {
  case 1062: case 1586: case 1169: case 1557:
    return SQ_EUNIQUE;
  case 1048: case 1364: case 1451: case 1452: case 1216: case 1217:
  case 1263: case 3819: case 4025:
    return SQ_ECONSTRAINT;
  case 1064: case 1054: case 1146: case 1149: case 1051: case 1052:
  case 1109: case 1305: case 1630:
    return SQ_ESYNTAX;
  case 1045: case 1044: case 1698: case 1251: case 1820: case 1862:
    return SQ_EAUTH;
  /* deadlock (also Galera's certification failure), XA rolled back for a
   * deadlock, TiDB's write conflict and its retryable errors: the
   * transaction is over and may be retried */
  case 1213: case 1614: case 9007: case 8022: case 8028:
    return SQ_EDEADLOCK;
  /* lock wait timeout, NOWAIT, XA rolled back for a timeout, statement
   * time limits (MySQL max_execution_time, MariaDB max_statement_time) */
  case 1205: case 3572: case 1613: case 3024: case 1969:
    return SQ_ETIMEOUT;
  case CR_OUT_OF_MEMORY:
    return SQ_ENOMEM;
  case CR_COMMANDS_OUT_OF_SYNC:
    return SQ_EINTERNAL;
  case 2002: case 2003: case 2004: case 2005: case 2006: case 2009:
  case 2012: case 2013: case 2026: case 2027: case 2047: case 2048:
  case 2055: case 1927: case 4031: case 1053:
    return SQ_ECONNECTION;
  default:
    return SQ_EDATABASE;
  }
}

/* 1 for errors after which the session is certainly gone (or its protocol
 * state unknown), so the pool must discard the connection. */
static int link_gone(unsigned int no) {
  switch (no) {
  case CR_SERVER_GONE_ERROR: case CR_SERVER_LOST: case 2055:
  case CR_SSL_CONNECTION_ERROR: /* a TLS read/write error mid-session */
  case CR_COMMANDS_OUT_OF_SYNC: case 1927: case 4031: case 1053:
    return 1;
  default:
    return 0;
  }
}

/* Fills err from a library error (no, msg, sqlstate) on connection c and
 * marks c dead when the link is gone; returns the kind. */
static int fail_native(my_conn *c, unsigned int no, const char *msg, const char *state, sq_err *err) {
  int kind = kind_for(no);
  if (link_gone(no) || (c && c->m && !c->m->net.pvio)) {
    if (c) c->dead = 1;
    if (kind != SQ_EINTERNAL) kind = SQ_ECONNECTION;
  }
  if (no == 0) {
    kind = c && c->dead ? SQ_ECONNECTION : SQ_EINTERNAL;
    msg = msg && *msg ? msg : "mysql: unknown client library error";
  }
  char code[16];
  snprintf(code, sizeof code, "%u", no);
  sq_err_set(err, kind, "%s", msg && *msg ? msg : "mysql: error");
  sq_err_native(err, code, state);
  return kind;
}

/* Marks c dead after an error that is not reported (e.g. while draining
 * after another failure) when that error means the link is gone. */
static void note_link(my_conn *c, unsigned int no) {
  if (link_gone(no) || !c->m->net.pvio) c->dead = 1;
}

/* Error of the last call on the connection handle. */
static int fail_conn(my_conn *c, sq_err *err) {
  return fail_native(c, mysql_errno(c->m), mysql_error(c->m), mysql_sqlstate(c->m), err);
}

/* Error of the last call on a statement handle (falls back to the
 * connection's error when the statement has none recorded). */
static int fail_stmt(my_conn *c, MYSQL_STMT *st, sq_err *err) {
  if (st && mysql_stmt_errno(st))
    return fail_native(c, mysql_stmt_errno(st), mysql_stmt_error(st), mysql_stmt_sqlstate(st), err);
  return fail_conn(c, err);
}

static int fail_nomem(sq_err *err) {
  return sq_err_set(err, SQ_ENOMEM, "mysql: out of memory");
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* Parses an optionally signed decimal integer occupying all of p[0..n);
 * returns 0 on success. Text-protocol values are not NUL-terminated. */
static int parse_i64(const char *p, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (n == 0) return -1;
  if (p[0] == '-' || p[0] == '+') {
    neg = p[0] == '-';
    i = 1;
  }
  if (i == n) return -1;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    unsigned d = (unsigned char)p[i] - '0';
    if (d > 9) return -1;
    if (v > (lim - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

static int parse_u64(const char *p, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned char)p[i] - '0';
    if (d > 9) return -1;
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* The current locale's decimal point: strtod and snprintf follow
 * LC_NUMERIC, which the host program may have changed, while MySQL always
 * writes '.'. */
static char locale_point(void) {
  const struct lconv *lc = localeconv();
  return lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';
}

/* Parses a server-formatted floating point number (p[0..n)). */
static int parse_double(const char *p, size_t n, double *out) {
  char buf[128];
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, p, n);
  buf[n] = '\0';
  char pt = locale_point();
  if (pt != '.') {
    char *dot = strchr(buf, '.');
    if (dot) *dot = pt;
  }
  char *end;
  *out = strtod(buf, &end);
  return end == buf + n ? 0 : -1;
}

/* A FLOAT column read through the binary protocol arrives as a C float;
 * widening it directly would turn 1.1 into 1.100000023841858. Use the
 * shortest decimal that reads back as the same float, as the text
 * protocol and other drivers do. */
static double float_to_double(float f) {
  char buf[32];
  if (!isfinite(f)) return (double)f;
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
    if (strtof(buf, NULL) == f) break;
  }
  return strtod(buf, NULL);
}

/* Writes v with at least width digits (zero-padded). Runs for every date
 * field of every row, hence the fixed-width fast path. */
static char *put_digits(char *p, unsigned long v, int width) {
  static const unsigned long lim[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
  if (width < 7 && v < lim[width]) return sq_put_digits(p, (unsigned)v, width);
  int n = 0;
  for (unsigned long x = v; x; x /= 10) n++;
  return sq_put_digits(p, (unsigned)v, n); /* wider than width: TIME hours up to 838 */
}

/* Formats a binary-protocol temporal value the way sqorm spells it:
 * "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS[.ffffff]", "[-]HH:MM:SS[.ffffff]",
 * with the fraction only when it is non-zero, always six digits. */
static size_t format_time(char *out, int kind, const MYSQL_TIME *t) {
  char *p = out;
  if (kind == K_DATE || kind == K_DATETIME) {
    p = put_digits(p, t->year, 4);
    *p++ = '-';
    p = put_digits(p, t->month, 2);
    *p++ = '-';
    p = put_digits(p, t->day, 2);
    if (kind == K_DATE) return (size_t)(p - out);
    *p++ = ' ';
  } else if (t->neg) {
    *p++ = '-';
  }
  p = put_digits(p, t->hour, 2);
  *p++ = ':';
  p = put_digits(p, t->minute, 2);
  *p++ = ':';
  p = put_digits(p, t->second, 2);
  if (t->second_part) {
    *p++ = '.';
    p = put_digits(p, t->second_part % 1000000, 6);
  }
  return (size_t)(p - out);
}

/* Normalizes a text-protocol DATETIME/TIME: the server pads the fraction
 * to the column's scale ("...05.120" or "...05.000000"); sqorm wants
 * either no fraction or exactly six digits. */
static size_t normalize_fraction(char *out, size_t cap, const char *p, size_t n) {
  const char *dot = memchr(p, '.', n);
  if (!dot || n + 6 >= cap) {
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    return n;
  }
  size_t head = (size_t)(dot - p), frac = n - head - 1;
  int nonzero = 0;
  for (size_t i = 0; i < frac; i++)
    if (dot[1 + i] != '0') nonzero = 1;
  memcpy(out, p, head);
  if (!nonzero) return head;
  out[head] = '.';
  size_t k = frac > 6 ? 6 : frac;
  memcpy(out + head + 1, dot + 1, k);
  for (size_t i = k; i < 6; i++) out[head + 1 + i] = '0';
  return head + 7;
}

/* BIT values arrive as big-endian bytes in both protocols. */
static sq_value bit_value(const char *p, unsigned long n, char *tbuf, size_t tcap) {
  uint64_t v = 0;
  for (unsigned long i = 0; i < n && i < 8; i++) v = (v << 8) | (unsigned char)p[n > 8 ? n - 8 + i : i];
  if (v <= (uint64_t)INT64_MAX) return sq_int((int64_t)v);
  int k = snprintf(tbuf, tcap, "%llu", (unsigned long long)v);
  return sq_text(tbuf, (size_t)k);
}

/* Chooses how values of a column are converted, from its metadata. */
static int kind_of(const MYSQL_FIELD *f) {
  switch ((int)f->type) {
  case MYSQL_TYPE_NULL:
    return K_NULL;
  case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG:
  case MYSQL_TYPE_INT24: case MYSQL_TYPE_YEAR:
    return K_INT;
  case MYSQL_TYPE_LONGLONG:
    return (f->flags & UNSIGNED_FLAG) ? K_UINT : K_INT;
  case MYSQL_TYPE_FLOAT:
    return K_FLOAT;
  case MYSQL_TYPE_DOUBLE:
    return K_DOUBLE;
  case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL:
    return K_DECIMAL;
  case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE:
    return K_DATE;
  case MYSQL_TYPE_DATETIME: case MYSQL_TYPE_TIMESTAMP:
    return K_DATETIME;
  case MYSQL_TYPE_TIME:
    return K_TIME;
  case MYSQL_TYPE_BIT:
    return K_BIT;
  case MY_TYPE_JSON:
    return K_TEXT;
  default: /* strings, blobs, enum, set, geometry */
    return f->charsetnr == BINARY_CHARSET_NR ? K_BLOB : K_TEXT;
  }
}

/* The sq_vtype announced for a column (SQ_VNULL when it varies). */
static int sqtype_of(int kind, const MYSQL_FIELD *f) {
  switch (kind) {
  case K_INT: return SQ_VINT;
  case K_UINT: return SQ_VNULL;
  case K_BIT: return f->length >= 64 ? SQ_VNULL : SQ_VINT;
  case K_DOUBLE: case K_FLOAT: return SQ_VFLOAT;
  case K_BLOB: return SQ_VBLOB;
  case K_NULL: return SQ_VNULL;
  default: return SQ_VTEXT;
  }
}

/* 1 when the statement only reads (so re-running it after the server
 * changed its result metadata is harmless). The text is read with the
 * core's MySQL lexer. */
static int is_read_only(const char *sql, size_t len) {
  static const char *const words[] = {"SELECT", "WITH", "SHOW", "VALUES", "TABLE",
                                      "DESC", "DESCRIBE", "EXPLAIN", NULL};
  size_t k;
  const char *w = sq_sql_first_word(SQ_DIALECT_MYSQL, sql, len, &k);
  for (int i = 0; w && words[i]; i++)
    if (sq_word_is(w, k, words[i])) return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Statement cache                                                      */
/* ------------------------------------------------------------------ */

static void stmt_unlink(my_conn *c, my_stmt *s) {
  if (s->prev) s->prev->next = s->next; else c->head = s->next;
  if (s->next) s->next->prev = s->prev; else c->tail = s->prev;
  s->prev = s->next = NULL;
  c->nstmts--;
}

static void stmt_push_front(my_conn *c, my_stmt *s) {
  s->prev = NULL;
  s->next = c->head;
  if (c->head) c->head->prev = s; else c->tail = s;
  c->head = s;
  c->nstmts++;
}

/* Frees a statement (closing it on the server with COM_STMT_CLOSE, which
 * has no reply, so eviction costs no round trip). */
static void stmt_free(my_stmt *s) {
  if (!s) return;
  if (s->st) mysql_stmt_close(s->st);
  for (unsigned i = 0; i < s->colcap; i++) free(s->cols[i].buf);
  free(s->cols);
  free(s->rbind);
  free(s->scols);
  free(s->vals);
  free(s->pbind);
  free(s->pval);
  free(s->sql);
  free(s);
}

static void stmt_evict(my_conn *c, my_stmt *s) {
  stmt_unlink(c, s);
  stmt_free(s);
}

/* Returns the cached statement for sql, preparing (and caching) it on a
 * miss. On ER_UNSUPPORTED_PS sets *unsupported and returns NULL with err
 * untouched so the caller can fall back to the text protocol. */
static my_stmt *stmt_get(my_conn *c, const char *sql, size_t len, int *unsupported, sq_err *err) {
  *unsupported = 0;
  /* The statement run last is the likeliest one: tried before hashing. */
  if (c->head && c->head->len == len && memcmp(c->head->sql, sql, len) == 0) return c->head;
  uint64_t h = sq_hash_bytes(sql, len, 0);
  for (my_stmt *s = c->head; s; s = s->next) {
    if (s->hash == h && s->len == len && memcmp(s->sql, sql, len) == 0) {
      if (s != c->head) {
        stmt_unlink(c, s);
        stmt_push_front(c, s);
      }
      return s;
    }
  }
  my_stmt *s = calloc(1, sizeof *s);
  if (!s || !(s->sql = malloc(len + 1))) {
    free(s);
    fail_nomem(err);
    return NULL;
  }
  memcpy(s->sql, sql, len);
  s->sql[len] = '\0';
  s->len = len;
  s->hash = h;
  if (!(s->st = mysql_stmt_init(c->m))) {
    fail_conn(c, err);
    stmt_free(s);
    return NULL;
  }
  if (mysql_stmt_prepare(s->st, sql, (unsigned long)len)) {
    if (mysql_stmt_errno(s->st) == ER_UNSUPPORTED_PS)
      *unsupported = 1;
    else
      fail_stmt(c, s->st, err);
    stmt_free(s);
    return NULL;
  }
  s->nparams = (unsigned)mysql_stmt_param_count(s->st);
  if (s->nparams) {
    s->pbind = calloc(s->nparams, sizeof *s->pbind);
    s->pval = calloc(s->nparams, sizeof *s->pval);
    if (!s->pbind || !s->pval) {
      stmt_free(s);
      fail_nomem(err);
      return NULL;
    }
  }
  while (c->nstmts >= STMT_CACHE_MAX && c->tail) stmt_evict(c, c->tail);
  stmt_push_front(c, s);
  return s;
}

/* Binds the caller's values to a prepared statement. Strings are sent
 * from the caller's memory; numbers are copied into s->pval. */
static int stmt_bind_params(my_conn *c, my_stmt *s, const sq_value *params, int nparams, sq_err *err) {
  static char empty[1] = "";
  if ((unsigned)nparams != s->nparams)
    return sq_err_set(err, SQ_EUSAGE, "mysql: statement has %u placeholders but %d values were given",
                      s->nparams, nparams);
  if (!s->nparams) return SQ_OK;
  for (unsigned i = 0; i < s->nparams; i++) {
    MYSQL_BIND *b = &s->pbind[i];
    const sq_value *v = &params[i];
    memset(b, 0, sizeof *b);
    switch (v->type) {
    case SQ_VNULL:
      b->buffer_type = MYSQL_TYPE_NULL;
      break;
    case SQ_VINT:
      s->pval[i].i = v->u.i;
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = &s->pval[i].i;
      break;
    case SQ_VFLOAT:
      s->pval[i].d = v->u.f;
      b->buffer_type = MYSQL_TYPE_DOUBLE;
      b->buffer = &s->pval[i].d;
      break;
    case SQ_VBOOL:
      s->pval[i].b = v->u.b ? 1 : 0;
      b->buffer_type = MYSQL_TYPE_TINY;
      b->buffer = &s->pval[i].b;
      break;
    case SQ_VTEXT:
    case SQ_VBLOB:
      if (v->u.s.n > 0xffffffffUL)
        return sq_err_set(err, SQ_EUSAGE, "mysql: value %u is too large", i + 1);
      b->buffer_type = v->type == SQ_VTEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
      b->buffer = v->u.s.p ? (void *)v->u.s.p : (void *)empty;
      b->buffer_length = (unsigned long)v->u.s.n;
      break;
    default:
      return sq_err_set(err, SQ_EUSAGE, "mysql: value %u has an unknown type %d", i + 1, v->type);
    }
  }
  if (mysql_stmt_bind_param(s->st, s->pbind)) return fail_stmt(c, s->st, err);
  return SQ_OK;
}

/* Makes room for n result columns in a statement's arrays. colcap only
 * grows once every array has, so a failed allocation leaves them
 * consistent (realloc keeps the first colcap entries). */
static int stmt_reserve_cols(my_stmt *s, unsigned n) {
  if (n <= s->colcap) return 0;
  my_col *cols = realloc(s->cols, n * sizeof *cols);
  if (!cols) return -1;
  s->cols = cols;
  MYSQL_BIND *rb = realloc(s->rbind, n * sizeof *rb);
  if (!rb) return -1;
  s->rbind = rb;
  sq_column *sc = realloc(s->scols, n * sizeof *sc);
  if (!sc) return -1;
  s->scols = sc;
  sq_value *v = realloc(s->vals, n * sizeof *v);
  if (!v) return -1;
  s->vals = v;
  memset(cols + s->colcap, 0, (n - s->colcap) * sizeof *cols);
  s->colcap = n;
  return 0;
}

/* Sets up result buffers from the metadata of the execution that just
 * ran (the server resends it per execution, and types can change, e.g.
 * for SELECT ?), then binds them. */
static int stmt_setup_result(my_conn *c, my_stmt *s, sq_err *err) {
  unsigned n = mysql_stmt_field_count(s->st);
  MYSQL_FIELD *f = mariadb_stmt_fetch_fields(s->st);
  if (!f) return sq_err_set(err, SQ_EINTERNAL, "mysql: no result metadata");
  if (stmt_reserve_cols(s, n)) return fail_nomem(err);
  s->ncols = n;
  for (unsigned i = 0; i < n; i++) {
    my_col *col = &s->cols[i];
    MYSQL_BIND *b = &s->rbind[i];
    int kind = kind_of(&f[i]);
    col->kind = kind;
    memset(b, 0, sizeof *b);
    b->is_null = &col->is_null;
    b->error = &col->error;
    b->length = &col->len;
    switch (kind) {
    case K_INT: case K_UINT:
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = &col->num.i;
      b->is_unsigned = (f[i].flags & UNSIGNED_FLAG) ? 1 : 0;
      break;
    case K_DOUBLE:
      b->buffer_type = MYSQL_TYPE_DOUBLE;
      b->buffer = &col->num.d;
      break;
    case K_FLOAT:
      b->buffer_type = MYSQL_TYPE_FLOAT;
      b->buffer = &col->num.f;
      break;
    case K_DATE: case K_DATETIME: case K_TIME:
      b->buffer_type = kind == K_DATE ? MYSQL_TYPE_DATE : kind == K_TIME ? MYSQL_TYPE_TIME : MYSQL_TYPE_DATETIME;
      b->buffer = &col->num.t;
      b->buffer_length = sizeof col->num.t;
      break;
    case K_NULL:
      b->buffer_type = MYSQL_TYPE_STRING;
      b->buffer = col->tbuf;
      b->buffer_length = sizeof col->tbuf;
      break;
    default: { /* K_DECIMAL, K_BIT, K_TEXT, K_BLOB */
      unsigned long want = f[i].length + 1;
      if (kind == K_DECIMAL) want = 72;
      else if (kind == K_BIT) want = 16;
      if (want < 64) want = 64;
      if (want > COL_BUF_INITIAL) want = COL_BUF_INITIAL;
      if (col->cap < want) {
        char *nb = realloc(col->buf, want);
        if (!nb) return fail_nomem(err);
        col->buf = nb;
        col->cap = want;
      }
      b->buffer_type = (kind == K_BLOB || kind == K_BIT) ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
      b->buffer = col->buf;
      b->buffer_length = col->cap;
      break;
    }
    }
    s->scols[i].name = f[i].name ? f[i].name : "";
    s->scols[i].name_len = f[i].name ? f[i].name_length : 0;
    s->scols[i].type = sqtype_of(kind, &f[i]);
  }
  if (mysql_stmt_bind_result(s->st, s->rbind)) return fail_stmt(c, s->st, err);
  return SQ_OK;
}

/* Frees column buffers that grew past COL_BUF_KEEP for one huge value, so
 * a cached statement does not pin that memory. */
static void stmt_shrink(my_stmt *s) {
  for (unsigned i = 0; i < s->colcap; i++) {
    if (s->cols[i].cap > COL_BUF_KEEP) {
      free(s->cols[i].buf);
      s->cols[i].buf = NULL;
      s->cols[i].cap = 0;
    }
  }
}

/* ------------------------------------------------------------------ */
/* Text-protocol fallback for statements the server cannot prepare      */
/* ------------------------------------------------------------------ */

typedef struct my_sbuf {
  char *p;
  size_t n, cap;
} my_sbuf;

static int sbuf_reserve(my_sbuf *b, size_t more) {
  if (b->n + more + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + more + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int sbuf_add(my_sbuf *b, const char *s, size_t n) {
  if (sbuf_reserve(b, n)) return -1;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

/* Appends one value as an SQL literal. Strings are escaped by the client
 * library against the connection's character set and the session's
 * NO_BACKSLASH_ESCAPES state. */
static int append_literal(my_conn *c, my_sbuf *b, const sq_value *v, int idx, sq_err *err) {
  char num[64];
  int k;
  switch (v->type) {
  case SQ_VNULL:
    return sbuf_add(b, "NULL", 4) ? fail_nomem(err) : SQ_OK;
  case SQ_VINT:
    k = snprintf(num, sizeof num, "%lld", (long long)v->u.i);
    return sbuf_add(b, num, (size_t)k) ? fail_nomem(err) : SQ_OK;
  case SQ_VBOOL:
    return sbuf_add(b, v->u.b ? "1" : "0", 1) ? fail_nomem(err) : SQ_OK;
  case SQ_VFLOAT: {
    if (!isfinite(v->u.f))
      return sq_err_set(err, SQ_EUSAGE, "mysql: value %d is not a finite number", idx + 1);
    k = snprintf(num, sizeof num, "%.17g", v->u.f);
    char pt = locale_point();
    for (int i = 0; i < k; i++)
      if (num[i] == pt) num[i] = '.';
    /* make it a DOUBLE literal, not an exact DECIMAL one */
    if (!strchr(num, 'e') && !strchr(num, 'n') && !strchr(num, 'i')) {
      num[k++] = 'e';
      num[k++] = '0';
      num[k] = '\0';
    }
    return sbuf_add(b, num, (size_t)k) ? fail_nomem(err) : SQ_OK;
  }
  case SQ_VTEXT:
  case SQ_VBLOB: {
    size_t n = v->u.s.n;
    if (n > 0x7fffffffUL)
      return sq_err_set(err, SQ_EUSAGE, "mysql: value %d is too large", idx + 1);
    const char *pre = v->type == SQ_VBLOB ? "_binary'" : "'";
    if (sbuf_add(b, pre, strlen(pre)) || sbuf_reserve(b, 2 * n + 2)) return fail_nomem(err);
    unsigned long w = mysql_real_escape_string(c->m, b->p + b->n, v->u.s.p ? v->u.s.p : "", (unsigned long)n);
    if (w == (unsigned long)-1)
      return sq_err_set(err, SQ_EUSAGE, "mysql: value %d cannot be escaped", idx + 1);
    b->n += w;
    return sbuf_add(b, "'", 1) ? fail_nomem(err) : SQ_OK;
  }
  default:
    return sq_err_set(err, SQ_EUSAGE, "mysql: value %d has an unknown type %d", idx + 1, v->type);
  }
}

/* Builds the SQL text with each ? outside literals, quoted identifiers and
 * comments (as the core's MySQL lexer reads them, honouring the session's
 * NO_BACKSLASH_ESCAPES) replaced by its value. The result (out->p) is
 * malloc'd. */
static int interpolate(my_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                       my_sbuf *out, sq_err *err) {
  int nobs = (c->m->server_status & SERVER_STATUS_NO_BACKSLASH_ESCAPES) != 0;
  int used = 0, extra = 0, rc;
  size_t from = 0;
  sq_lexer lx;
  sq_token t;
  sq_lex_init(&lx, SQ_DIALECT_MYSQL, nobs ? SQ_LEX_NO_BACKSLASH : 0, sql, len);
  while (sq_lex_next(&lx, &t) != SQ_TK_EOF) {
    if (t.type != SQ_TK_QMARK) continue;
    if (used == nparams) { /* counted to report the mismatch */
      extra++;
      continue;
    }
    if (sbuf_add(out, sql + from, t.pos - from)) return fail_nomem(err);
    if ((rc = append_literal(c, out, &params[used], used, err))) return rc;
    used++;
    from = t.pos + t.len;
  }
  if (used != nparams || extra)
    return sq_err_set(err, SQ_EUSAGE, "mysql: statement has %d placeholders but %d values were given",
                      used + extra, nparams);
  if (sbuf_add(out, sql + from, len - from)) return fail_nomem(err);
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Reading results                                                      */
/* ------------------------------------------------------------------ */

/* Prepares the per-connection scratch for a text-protocol result. */
static int text_setup_result(my_conn *c, my_rs *rs, sq_err *err) {
  unsigned n = mysql_num_fields(rs->res);
  MYSQL_FIELD *f = mysql_fetch_fields(rs->res);
  if (n > c->tcap) {
    my_tcol *tc = realloc(c->tcols, n * sizeof *tc);
    if (tc) c->tcols = tc;
    sq_column *sc = realloc(c->tscols, n * sizeof *sc);
    if (sc) c->tscols = sc;
    sq_value *v = realloc(c->tvals, n * sizeof *v);
    if (v) c->tvals = v;
    if (!tc || !sc || !v) return fail_nomem(err);
    c->tcap = n;
  }
  for (unsigned i = 0; i < n; i++) {
    c->tcols[i].kind = kind_of(&f[i]);
    c->tscols[i].name = f[i].name ? f[i].name : "";
    c->tscols[i].name_len = f[i].name ? f[i].name_length : 0;
    c->tscols[i].type = sqtype_of(c->tcols[i].kind, &f[i]);
  }
  rs->ncols = n;
  rs->cols = c->tscols;
  rs->vals = c->tvals;
  return SQ_OK;
}

/* Runs SQL over the text protocol and, when it returns rows, starts an
 * unbuffered read (mysql_use_result). */
static int text_start(my_conn *c, const char *sql, size_t len, my_rs *rs, sq_err *err) {
  if (mysql_real_query(c->m, sql, (unsigned long)len)) return fail_conn(c, err);
  if (mysql_field_count(c->m) == 0) return SQ_OK;
  if (!(rs->res = mysql_use_result(c->m))) return fail_conn(c, err);
  rs->has_rs = 1;
  return text_setup_result(c, rs, err);
}

/* Executes sql with params and leaves rs positioned before the first row
 * (if the statement returns rows). */
static int rs_start(my_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                    my_rs *rs, sq_err *err) {
  memset(rs, 0, sizeof *rs);
  rs->c = c;
  if (nparams < 0 || (nparams > 0 && !params))
    return sq_err_set(err, SQ_EUSAGE, "mysql: bad parameter array");
  if (nparams == 0) return text_start(c, sql, len, rs, err);

  for (int attempt = 0;; attempt++) {
    int unsupported, rc;
    my_stmt *s = stmt_get(c, sql, len, &unsupported, err);
    if (!s) {
      if (!unsupported) return err->kind;
      my_sbuf b = {NULL, 0, 0};
      rc = interpolate(c, sql, len, params, nparams, &b, err);
      if (rc == SQ_OK) rc = text_start(c, b.p, b.n, rs, err);
      free(b.p);
      return rc;
    }
    if ((rc = stmt_bind_params(c, s, params, nparams, err))) return rc;
    if (mysql_stmt_execute(s->st)) {
      unsigned no = mysql_stmt_errno(s->st);
      /* The server changed the statement under us (ALTER TABLE): prepare
       * it again. A changed column count is only noticed after the
       * statement ran, so only reads are run a second time. */
      if (attempt == 0 && !c->dead && c->m->net.pvio &&
          (no == ER_NEED_REPREPARE || (no == CR_NEW_STMT_METADATA && is_read_only(sql, len)))) {
        stmt_evict(c, s);
        continue;
      }
      rc = fail_stmt(c, s->st, err);
      if (no == CR_NEW_STMT_METADATA && !c->dead) stmt_evict(c, s);
      return rc;
    }
    rs->s = s;
    if (mysql_stmt_field_count(s->st) == 0) return SQ_OK;
    rs->has_rs = 1;
    if ((rc = stmt_setup_result(c, s, err))) return rc;
    rs->ncols = s->ncols;
    rs->cols = s->scols;
    rs->vals = s->vals;
    return SQ_OK;
  }
}

/* Converts the current binary-protocol row into s->vals. A string longer
 * than its buffer is re-read with mysql_stmt_fetch_column into a grown
 * buffer, which then stays bound for the following rows. */
static int stmt_convert_row(my_conn *c, my_stmt *s, sq_err *err) {
  int rebind = 0;
  for (unsigned i = 0; i < s->ncols; i++) {
    my_col *col = &s->cols[i];
    sq_value *v = &s->vals[i];
    if (col->is_null || col->kind == K_NULL) {
      *v = sq_null();
      continue;
    }
    switch (col->kind) {
    case K_INT:
      *v = sq_int(col->num.i);
      break;
    case K_UINT: {
      unsigned long long u = (unsigned long long)col->num.i;
      if (u <= (unsigned long long)INT64_MAX) {
        *v = sq_int((int64_t)u);
      } else {
        int k = snprintf(col->tbuf, sizeof col->tbuf, "%llu", u);
        *v = sq_text(col->tbuf, (size_t)k);
      }
      break;
    }
    case K_DOUBLE:
      *v = sq_float(col->num.d);
      break;
    case K_FLOAT:
      *v = sq_float(float_to_double(col->num.f));
      break;
    case K_DATE: case K_DATETIME: case K_TIME:
      *v = sq_text(col->tbuf, format_time(col->tbuf, col->kind, &col->num.t));
      break;
    default: { /* K_DECIMAL, K_BIT, K_TEXT, K_BLOB */
      if (col->len > col->cap) {
        unsigned long want = col->len + 1;
        if (want < col->cap * 2) want = col->cap * 2;
        char *nb = realloc(col->buf, want);
        if (!nb) return fail_nomem(err);
        col->buf = nb;
        col->cap = want;
        MYSQL_BIND b;
        unsigned long len = 0;
        my_bool isnull = 0, error = 0;
        memset(&b, 0, sizeof b);
        b.buffer_type = s->rbind[i].buffer_type;
        b.buffer = col->buf;
        b.buffer_length = col->cap;
        b.length = &len;
        b.is_null = &isnull;
        b.error = &error;
        if (mysql_stmt_fetch_column(s->st, &b, i, 0)) return fail_stmt(c, s->st, err);
        col->len = len;
        s->rbind[i].buffer = col->buf;
        s->rbind[i].buffer_length = col->cap;
        rebind = 1;
      }
      if (col->kind == K_BIT)
        *v = bit_value(col->buf, col->len, col->tbuf, sizeof col->tbuf);
      else if (col->kind == K_BLOB)
        *v = sq_blob(col->buf, col->len);
      else
        *v = sq_text(col->buf, col->len);
      break;
    }
    }
  }
  if (rebind && mysql_stmt_bind_result(s->st, s->rbind)) return fail_stmt(c, s->st, err);
  return SQ_OK;
}

/* Converts the current text-protocol row into c->tvals. */
static void text_convert_row(my_conn *c, unsigned n, MYSQL_ROW row, const unsigned long *lens) {
  for (unsigned i = 0; i < n; i++) {
    my_tcol *tc = &c->tcols[i];
    sq_value *v = &c->tvals[i];
    const char *p = row[i];
    unsigned long len = lens[i];
    if (!p || tc->kind == K_NULL) {
      *v = sq_null();
      continue;
    }
    switch (tc->kind) {
    case K_INT: {
      int64_t x;
      *v = parse_i64(p, len, &x) == 0 ? sq_int(x) : sq_text(p, len);
      break;
    }
    case K_UINT: {
      uint64_t u;
      *v = parse_u64(p, len, &u) == 0 && u <= (uint64_t)INT64_MAX ? sq_int((int64_t)u) : sq_text(p, len);
      break;
    }
    case K_DOUBLE: case K_FLOAT: {
      double d;
      *v = parse_double(p, len, &d) == 0 ? sq_float(d) : sq_text(p, len);
      break;
    }
    case K_DATETIME: case K_TIME:
      *v = sq_text(tc->tbuf, normalize_fraction(tc->tbuf, sizeof tc->tbuf, p, len));
      break;
    case K_BIT:
      *v = bit_value(p, len, tc->tbuf, sizeof tc->tbuf);
      break;
    case K_BLOB:
      *v = sq_blob(p, len);
      break;
    default: /* K_DECIMAL, K_DATE, K_TEXT */
      *v = sq_text(p, len);
      break;
    }
  }
}

/* Fetches the next row into rs->vals; *has_row is 0 at the end. */
static int rs_next(my_rs *rs, int *has_row, sq_err *err) {
  my_conn *c = rs->c;
  *has_row = 0;
  if (!rs->has_rs) return SQ_OK;
  if (rs->s) {
    int rc = mysql_stmt_fetch(rs->s->st);
    if (rc == MYSQL_NO_DATA) return SQ_OK;
    if (rc == 1) return fail_stmt(c, rs->s->st, err);
    if ((rc = stmt_convert_row(c, rs->s, err))) return rc;
  } else {
    MYSQL_ROW row = mysql_fetch_row(rs->res);
    if (!row) return mysql_errno(c->m) ? fail_conn(c, err) : SQ_OK;
    unsigned long *lens = mysql_fetch_lengths(rs->res);
    if (!lens) return fail_conn(c, err);
    text_convert_row(c, rs->ncols, row, lens);
  }
  *has_row = 1;
  return SQ_OK;
}

/* Reads and discards whatever the statement still has to send (the rest
 * of the rows, further result sets of a CALL), so the connection is ready
 * for the next command; when res is given, fills it first. Errors while
 * draining are reported only when nothing else failed (err->kind == OK). */
static int rs_end(my_rs *rs, sq_result *res, sq_err *err) {
  my_conn *c = rs->c;
  int rc = SQ_OK;
  if (res) {
    res->has_result_set = rs->has_rs;
    res->affected_rows = -1;
    res->last_insert_id = 0;
    if (!rs->has_rs) {
      my_ulonglong a = rs->s ? mysql_stmt_affected_rows(rs->s->st) : mysql_affected_rows(c->m);
      res->affected_rows = a == (my_ulonglong)-1 ? -1 : (int64_t)a;
      res->last_insert_id = (int64_t)(rs->s ? mysql_stmt_insert_id(rs->s->st) : mysql_insert_id(c->m));
    }
  }
  if (c->dead) goto out;
  if (rs->s) {
    MYSQL_STMT *st = rs->s->st;
    if (rs->has_rs) mysql_stmt_free_result(st);
    while (!c->dead && mysql_stmt_more_results(st)) {
      int r = mysql_stmt_next_result(st);
      if (r > 0) {
        if (err->kind == SQ_OK) rc = fail_stmt(c, st, err);
        else note_link(c, mysql_stmt_errno(st));
        break;
      }
      if (r < 0) break;
      mysql_stmt_free_result(st);
    }
    stmt_shrink(rs->s);
  } else {
    if (rs->res) mysql_free_result(rs->res);
    rs->res = NULL;
    while (!c->dead && mysql_more_results(c->m)) {
      int r = mysql_next_result(c->m);
      if (r > 0) {
        if (err->kind == SQ_OK) rc = fail_conn(c, err);
        else note_link(c, mysql_errno(c->m));
        break;
      }
      if (r < 0) break;
      MYSQL_RES *more = mysql_use_result(c->m);
      if (more) mysql_free_result(more);
    }
  }
out:
  if (rs->res) mysql_free_result(rs->res);
  rs->res = NULL;
  rs->has_rs = 0;
  return rc;
}

/* The error to return when a sink callback returned non-zero. */
static int sink_stopped(sq_err *err) {
  if (err->kind == SQ_OK) return sq_err_set(err, SQ_EUSAGE, "row callback stopped");
  return err->kind;
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */
/* ------------------------------------------------------------------ */

/* Calls are refused while a cursor holds the connection or once it died. */
static int busy(my_conn *c, sq_err *err) {
  if (c->cur) return sq_err_set(err, SQ_EUSAGE, "mysql: connection is busy with an open cursor");
  if (c->dead) {
    sq_err_set(err, SQ_ECONNECTION, "mysql: connection is dead");
    sq_err_native(err, "2006", "HY000");
    return SQ_ECONNECTION;
  }
  return SQ_OK;
}

/* Runs a statement that returns nothing we need (transaction control). */
static int run_simple(my_conn *c, const char *sql, sq_err *err) {
  if (mysql_real_query(c->m, sql, (unsigned long)strlen(sql))) return fail_conn(c, err);
  MYSQL_RES *r = mysql_store_result(c->m);
  if (r) mysql_free_result(r);
  else if (mysql_errno(c->m)) return fail_conn(c, err);
  return SQ_OK;
}

/*
 * Transactions the server ends by itself. After a deadlock (and a lock
 * wait timeout with innodb_rollback_on_timeout, and some TiDB errors) the
 * server has rolled the whole transaction back, but an error packet
 * carries no status flags, so the client still believes it is open: the
 * next statements would run in autocommit mode and COMMIT would succeed.
 * So after such an error inside a transaction begun here, the driver asks
 * the server (one cheap round trip, only on those errors): a deadlock-kind
 * error ends the transaction in any case (ROLLBACK, so that "deadlock"
 * always means "the transaction is over, retry it"); after a timeout or an
 * unclassified error, DO 0 fetches the status flags and
 * SERVER_STATUS_IN_TRANS says whether the transaction survived. A lost
 * transaction refuses every statement, savepoint and COMMIT with
 * SQ_EDEADLOCK until ROLLBACK (or the pool's reset) clears it.
 */
static void tx_after_error(my_conn *c, const sq_err *err) {
  if (c->tx != TX_OPEN || c->dead || c->cur || !c->m->net.pvio) return;
  int kind = err->kind;
  if (kind != SQ_EDEADLOCK && kind != SQ_ETIMEOUT && kind != SQ_EDATABASE) return;
  const char *sql = kind == SQ_EDEADLOCK ? "ROLLBACK" : "DO 0";
  if (mysql_real_query(c->m, sql, (unsigned long)strlen(sql))) {
    note_link(c, mysql_errno(c->m));
    return;
  }
  if (kind == SQ_EDEADLOCK || !(c->m->server_status & SERVER_STATUS_IN_TRANS)) {
    c->tx = TX_LOST;
    snprintf(c->lost_code, sizeof c->lost_code, "%s", err->code[0] ? err->code : "1213");
  }
}

/* The error of any use of a lost transaction but ROLLBACK. */
static int tx_lost_error(my_conn *c, sq_err *err) {
  sq_err_set(err, SQ_EDEADLOCK,
             "mysql: the transaction was rolled back by the server (error %s); roll it back and retry it",
             c->lost_code);
  sq_err_native(err, c->lost_code, "40001");
  return SQ_EDEADLOCK;
}

static int parse_bool(const char *v, int *out) {
  static const char *const yes[] = {"1", "true", "on", "yes", NULL};
  static const char *const no[] = {"0", "false", "off", "no", NULL};
  for (int i = 0; yes[i]; i++)
    if (strcmp(v, yes[i]) == 0) return *out = 1, 0;
  for (int i = 0; no[i]; i++)
    if (strcmp(v, no[i]) == 0) return *out = 0, 0;
  return -1;
}

static int parse_seconds(const char *v, unsigned int *out) {
  uint64_t u;
  if (!v || parse_u64(v, strlen(v), &u) || u == 0 || u > 86400 * 365) return -1;
  *out = (unsigned int)u;
  return 0;
}

/* Applies cfg->params: the few Connector/C options that make sense as
 * connection parameters. Anything else is a usage error naming the key. */
static int open_params(MYSQL *m, const sq_config *cfg, const char **socket, sq_err *err) {
  for (int i = 0; i < cfg->nparams; i++) {
    const char *k = cfg->params[i].key ? cfg->params[i].key : "";
    const char *v = cfg->params[i].value ? cfg->params[i].value : "";
    if (strcmp(k, "read_timeout") == 0 || strcmp(k, "write_timeout") == 0) {
      unsigned int secs;
      if (parse_seconds(v, &secs))
        return sq_err_set(err, SQ_EUSAGE, "mysql: parameter '%s' must be a positive number of seconds", k);
      mysql_optionsv(m, k[0] == 'r' ? MYSQL_OPT_READ_TIMEOUT : MYSQL_OPT_WRITE_TIMEOUT, &secs);
    } else if (strcmp(k, "compress") == 0) {
      int on;
      if (parse_bool(v, &on)) return sq_err_set(err, SQ_EUSAGE, "mysql: parameter 'compress' must be a boolean");
      if (on) mysql_optionsv(m, MYSQL_OPT_COMPRESS, NULL);
    } else if (strcmp(k, "unix_socket") == 0 || strcmp(k, "socket") == 0) {
      *socket = v;
    } else if (strcmp(k, "restricted_auth") == 0) {
      /* allow-list of client auth plugins, e.g. to refuse a server's switch
       * to mysql_clear_password before TLS is known to be up */
      if (mysql_optionsv(m, MARIADB_OPT_RESTRICTED_AUTH, v)) return fail_nomem(err);
    } else {
      return sq_err_set(err, SQ_EUSAGE, "mysql: unknown connection parameter '%s'", k);
    }
  }
  return SQ_OK;
}

/*
 * TLS options for Connector/C 3.3. Facts this relies on (checked against
 * libmariadb 3.3.20):
 *   - without any TLS option the library never starts TLS; mysql_ssl_set
 *     (or MYSQL_OPT_SSL_ENFORCE) makes it start TLS when the server offers
 *     it and silently go on in clear text when it does not;
 *   - a CA (MYSQL_OPT_SSL_CA) makes OpenSSL verify the chain (SSL_VERIFY_PEER
 *     plus a check of the verify result), without any host name check;
 *   - MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the host name / IP check against
 *     the name given to mysql_real_connect (system CAs when no CA is given),
 *     and is the only option that makes the library refuse, before
 *     authenticating, a server without TLS.
 * Left alone, require and verify_ca would therefore send the login (user
 * name, database and the auth plugin's first answer, which for
 * caching_sha2_password is the password itself) in clear text to a server
 * that offers no TLS, or to an attacker who strips the offer, and only
 * notice afterwards. The TLS guard below closes that: it is the client's
 * first auth plugin (MYSQL_DEFAULT_AUTH), runs after the server's greeting
 * is read and before the client answers it, and refuses when the greeting
 * offers no TLS, so nothing but the connect itself reaches such a server.
 * When TLS is offered it starts TLS, answers with an empty token and lets
 * the server switch to the account's real plugin, which then runs over
 * TLS: one extra round trip per new connection, in these two modes only.
 * What remains: servers without plugin authentication (MySQL < 5.5) skip
 * the guard (open_check_tls still refuses them after the login), and
 * require checks no certificate at all, so an active attacker can still
 * play the server. verify_ca without a CA has no chain to check against
 * except the system store, which the library only uses together with the
 * host name check, so it becomes verify_identity.
 */

/* The client auth plugin interface of <mysql/client_plugin.h>, which
 * Debian's libmariadb-dev 3.3 cannot include (it wants ma_compress.h, not
 * shipped): the generic header of mysql.h plus the one function. */
typedef struct guard_plugin {
  struct st_mysql_client_plugin h;
  int (*authenticate_user)(MYSQL_PLUGIN_VIO *vio, MYSQL *mysql);
} guard_plugin;

#define GUARD_PLUGIN_NAME "sqorm_tls_guard"
#define GUARD_AUTH_PLUGIN_TYPE 2 /* MYSQL_CLIENT_AUTHENTICATION_PLUGIN */
#define GUARD_REFUSED_MSG "mysql: TLS is required (ssl.mode) but the server does not offer it; " \
                          "refused before sending the login"

static int guard_auth(MYSQL_PLUGIN_VIO *vio, MYSQL *m) {
  unsigned char *pkt;
  if (!(m->server_capabilities & CLIENT_SSL)) {
    m->methods->set_error(m, CR_SSL_CONNECTION_ERROR, "HY000", GUARD_REFUSED_MSG);
    return CR_ERROR;
  }
  /* The first read sends the handshake answer (TLS first, then our name
   * and an empty token); the server answers with a switch to the
   * account's plugin, which libmariadb follows. */
  if (vio->read_packet(vio, &pkt) < 0) return CR_ERROR;
  return CR_OK_HANDSHAKE_COMPLETE; /* the server accepted the empty token */
}

static guard_plugin tls_guard = {
  {GUARD_AUTH_PLUGIN_TYPE, 0x0100, GUARD_PLUGIN_NAME, "sqorm",
   "refuses to authenticate unless TLS is offered", {1, 0, 0}, "MIT", NULL, NULL, NULL, NULL},
  guard_auth,
};

static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_ok;

/* Registers the guard with the process-wide plugin list once (another
 * copy of sqorm in the process may have done it already). */
static void guard_register(void) {
  MYSQL *m = mysql_init(NULL);
  if (!m) return;
  guard_ok = mysql_client_register_plugin(m, &tls_guard.h) != NULL ||
             mysql_client_find_plugin(m, GUARD_PLUGIN_NAME, GUARD_AUTH_PLUGIN_TYPE) != NULL;
  mysql_close(m);
}

static int open_tls(MYSQL *m, const sq_config *cfg, int *mode_out, sq_err *err) {
  int mode = cfg->ssl.mode;
  const char *tlsv = NULL;
  if (mode == SQ_SSL_DEFAULT) mode = cfg->ssl.ca ? SQ_SSL_VERIFY_CA : SQ_SSL_PREFER;
  if (mode == SQ_SSL_VERIFY_CA && !cfg->ssl.ca) mode = SQ_SSL_VERIFY_IDENTITY;
  if (cfg->ssl.min_version) {
    const char *v = cfg->ssl.min_version;
    if (strcmp(v, "TLSv1.2") == 0 || strcmp(v, "tlsv1.2") == 0) tlsv = "TLSv1.2,TLSv1.3";
    else if (strcmp(v, "TLSv1.3") == 0 || strcmp(v, "tlsv1.3") == 0) tlsv = "TLSv1.3";
    else return sq_err_set(err, SQ_EUSAGE, "mysql: unknown ssl.min_version '%s' (use TLSv1.2 or TLSv1.3)", v);
  }
  if (mode < SQ_SSL_DISABLE || mode > SQ_SSL_VERIFY_IDENTITY)
    return sq_err_set(err, SQ_EUSAGE, "mysql: unknown ssl.mode %d", mode);
  *mode_out = mode;
  my_bool off = 0, on = 1;
  if (mode == SQ_SSL_DISABLE) {
    mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &off);
    mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
    return SQ_OK;
  }
  /* prefer: no verification, so a CA is not passed (it would turn chain
   * verification on); require and above use it when given, like libpq */
  const char *ca = mode >= SQ_SSL_REQUIRE ? cfg->ssl.ca : NULL;
  mysql_ssl_set(m, cfg->ssl.key, cfg->ssl.cert, ca, NULL, NULL);
  if (mode >= SQ_SSL_REQUIRE) mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
  if (mode == SQ_SSL_REQUIRE || mode == SQ_SSL_VERIFY_CA) {
    pthread_once(&guard_once, guard_register);
    if (!guard_ok) return sq_err_set(err, SQ_EINTERNAL, "mysql: cannot register the TLS guard auth plugin");
    if (mysql_optionsv(m, MYSQL_DEFAULT_AUTH, GUARD_PLUGIN_NAME)) return fail_nomem(err);
  }
  /* explicit either way: Connector/C 3.4 verifies by default */
  mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, mode == SQ_SSL_VERIFY_IDENTITY ? &on : &off);
  if (tlsv && mysql_optionsv(m, MARIADB_OPT_TLS_VERSION, tlsv)) return fail_nomem(err);
  return SQ_OK;
}

/* After connecting: TLS was required but the library went on without it
 * (the server offers no TLS). */
static int open_check_tls(MYSQL *m, int mode, sq_err *err) {
  if (mode < SQ_SSL_REQUIRE || mysql_get_ssl_cipher(m)) return SQ_OK;
  sq_err_set(err, SQ_ECONNECTION, "mysql: TLS is required (ssl.mode) but the server does not support it");
  sq_err_native(err, "2026", "HY000");
  return SQ_ECONNECTION;
}

static void conn_free(my_conn *c) {
  while (c->head) stmt_evict(c, c->head);
  if (c->has_cfg) sq_config_free(&c->cfg);
  if (c->m) mysql_close(c->m);
  free(c->db0);
  free(c->tcols);
  free(c->tscols);
  free(c->tvals);
  free(c);
}

/* Opens a connection: TCP whenever a host is given (so "localhost" is not
 * the unix socket), utf8mb4, no LOAD DATA LOCAL, no automatic reconnect
 * (it would silently lose transaction state; the pool replaces dead
 * connections), session time zone UTC. */
static int open_one(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  *out = NULL;
  if (!cfg) return sq_err_set(err, SQ_EUSAGE, "mysql: no configuration");
  my_conn *c = calloc(1, sizeof *c);
  if (!c) return fail_nomem(err);
  if (!(c->m = mysql_init(NULL))) {
    free(c);
    return fail_nomem(err);
  }
  MYSQL *m = c->m;
  const char *host = cfg->host && cfg->host[0] ? cfg->host : NULL;
  const char *socket = NULL;
  unsigned int timeout = DEFAULT_CONNECT_TIMEOUT;
  if (cfg->connect_timeout > 0)
    timeout = cfg->connect_timeout >= 86400 ? 86400 : (unsigned int)ceil(cfg->connect_timeout);
  unsigned int zero = 0, proto = MYSQL_PROTOCOL_TCP;
  my_bool off = 0;
  int mode = SQ_SSL_DISABLE, rc;

  if (mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout) ||
      mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
      mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &zero) ||
      mysql_optionsv(m, MYSQL_OPT_RECONNECT, &off) ||
      (host && mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &proto))) {
    conn_free(c);
    return fail_nomem(err);
  }
  if ((rc = open_params(m, cfg, &socket, err)) || (rc = open_tls(m, cfg, &mode, err))) {
    conn_free(c);
    return rc;
  }
  if (!mysql_real_connect(m, host, cfg->user, cfg->password, cfg->database,
                          cfg->port > 0 ? (unsigned int)cfg->port : 0, host ? NULL : socket,
                          CLIENT_FOUND_ROWS /* affected rows = matched rows, as on every dialect */)) {
    unsigned no = mysql_errno(m);
    int kind = kind_for(no) == SQ_EAUTH ? SQ_EAUTH : SQ_ECONNECTION;
    char code[16];
    snprintf(code, sizeof code, "%u", no);
    sq_err_set(err, kind, "%s", mysql_error(m));
    sq_err_native(err, code, mysql_sqlstate(m));
    conn_free(c);
    return kind;
  }
  if ((rc = open_check_tls(m, mode, err))) {
    conn_free(c);
    return rc;
  }
  if (cfg->database && cfg->database[0] && !(c->db0 = sq_strdup(cfg->database))) {
    conn_free(c);
    return fail_nomem(err);
  }
  if ((rc = run_simple(c, "SET time_zone = '+00:00'", err))) {
    if (rc != SQ_EAUTH) err->kind = rc = SQ_ECONNECTION;
    conn_free(c);
    return rc;
  }
  c->thread_id = mysql_thread_id(m);
  if (sq_config_copy(&c->cfg, cfg) != SQ_OK) {
    conn_free(c);
    return fail_nomem(err);
  }
  c->has_cfg = 1;
  *out = (sq_dconn *)c;
  return SQ_OK;
}

/*
 * Several hosts (cfg->nhosts, e.g. a Galera or TiDB cluster): the first
 * host that answers gets the connection. Hosts that failed to connect
 * lately are tried last (sq_hosts_order; the backoff is process-wide,
 * see sq_host_state), so a dead node costs one failed connect per
 * backoff step instead of one per new connection. Only kinds connection
 * and timeout move on to the next host: a refused login (auth), bad
 * options or a lack of memory would be the same everywhere and are
 * returned at once. The connection keeps the one host it reached (its
 * copy of cfg, which my_cancel uses for KILL QUERY, names that host).
 */
static int my_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  *out = NULL;
  if (!cfg) return sq_err_set(err, SQ_EUSAGE, "mysql: no configuration");
  if (cfg->nhosts < 2) return open_one(cfg, out, err);
  int order[32], n = cfg->nhosts > 32 ? 32 : cfg->nhosts;
  sq_hosts_order(cfg->hosts, n, order);
  double base = cfg->host_backoff > 0 ? cfg->host_backoff : SQ_HOST_BACKOFF_DEFAULT;
  char tried[1024];
  size_t used = 0;
  tried[0] = '\0';
  int rc = SQ_ECONNECTION;
  char code[32] = "", state[6] = "";
  for (int k = 0; k < n; k++) {
    const sq_host *h = &cfg->hosts[order[k]];
    sq_config one = *cfg; /* shallow: open_one only reads it (and deep-copies it) */
    one.host = h->host;
    one.port = h->port;
    one.hosts = NULL;
    one.nhosts = 0;
    sq_err_clear(err);
    rc = open_one(&one, out, err);
    if (rc == SQ_OK) {
      sq_hosts_ok(h->host, h->port);
      return SQ_OK;
    }
    if (rc != SQ_ECONNECTION && rc != SQ_ETIMEOUT) return rc;
    sq_config_redact(cfg, err);
    sq_hosts_failed(h->host, h->port, base, err->msg);
    if (used < sizeof tried)
      used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s:%d: %.200s", k ? "; " : "", h->host,
                               h->port, err->msg);
    snprintf(code, sizeof code, "%s", err->code);
    snprintf(state, sizeof state, "%s", err->sqlstate);
  }
  sq_err_set(err, rc, "mysql: no host answered (%d tried): %s", n, tried);
  sq_err_native(err, code, state);
  return rc;
}

static void cursor_detach(my_conn *c);

static void my_close(sq_dconn *dc) {
  my_conn *c = (my_conn *)dc;
  if (!c) return;
  if (c->cur) cursor_detach(c);
  conn_free(c);
}

static int my_ping(sq_dconn *dc, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  int rc = busy(c, err);
  if (rc) return rc;
  if (mysql_ping(c->m)) {
    c->dead = 1;
    fail_conn(c, err);
    err->kind = SQ_ECONNECTION;
    return SQ_ECONNECTION;
  }
  return SQ_OK;
}

static int my_is_dead(sq_dconn *dc) {
  my_conn *c = (my_conn *)dc;
  return c->dead || !c->m->net.pvio;
}

/* exec: rows are read unbuffered (no mysql_stmt_store_result): each row
 * is decoded from the network buffer into the statement's bound buffers
 * and handed to the sink at once, instead of first being copied into a
 * client-side row set and then decoded, which costs a copy and an arena
 * as large as the result. */
static int exec_run(my_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                    const sq_row_sink *sink, sq_result *res, sq_err *err) {
  my_rs rs;
  int rc, has_row;
  int64_t rows = 0;
  sq_err_clear(err);
  if (res) {
    res->affected_rows = -1;
    res->last_insert_id = 0;
    res->rows = 0;
    res->has_result_set = 0;
  }
  if (!sql) return sq_err_set(err, SQ_EUSAGE, "mysql: no SQL");
  if ((rc = busy(c, err))) return rc;
  if ((rc = rs_start(c, sql, len, params, nparams, &rs, err))) {
    rs_end(&rs, NULL, err);
    return rc;
  }
  if (rs.has_rs && sink && sink->columns && sink->columns(sink->ud, (int)rs.ncols, rs.cols, err)) {
    rc = sink_stopped(err);
    rs_end(&rs, NULL, err);
    return rc;
  }
  for (;;) {
    if ((rc = rs_next(&rs, &has_row, err))) {
      rs_end(&rs, NULL, err);
      return rc;
    }
    if (!has_row) break;
    if (sink && sink->row) {
      if (sink->row(sink->ud, (int)rs.ncols, rs.vals, err)) {
        rc = sink_stopped(err);
        rs_end(&rs, NULL, err);
        return rc;
      }
      rows++;
    }
  }
  rc = rs_end(&rs, res, err);
  if (res) res->rows = rows;
  return rc;
}

static int my_exec(sq_dconn *dc, const char *sql, size_t len, const sq_value *params, int nparams,
                   const sq_row_sink *sink, sq_result *res, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  if (c->tx == TX_LOST && !c->cur) {
    if (res) {
      res->affected_rows = -1;
      res->last_insert_id = 0;
      res->rows = 0;
      res->has_result_set = 0;
    }
    return tx_lost_error(c, err);
  }
  int rc = exec_run(c, sql, len, params, nparams, sink, res, err);
  if (rc) tx_after_error(c, err);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Cursors                                                              */
/* ------------------------------------------------------------------ */

/* Streaming: the statement runs with no server-side cursor
 * (CURSOR_TYPE_NO_CURSOR, the default) and without store_result, so rows
 * come one at a time off the wire; the connection is busy until
 * cursor_close has drained what is left. */
static int my_cursor_open(sq_dconn *dc, const char *sql, size_t len, const sq_value *params, int nparams,
                          const sq_row_sink *sink, sq_dcursor **out, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  int rc;
  *out = NULL;
  sq_err_clear(err);
  if (!sql) return sq_err_set(err, SQ_EUSAGE, "mysql: no SQL");
  if ((rc = busy(c, err))) return rc;
  if (c->tx == TX_LOST) return tx_lost_error(c, err);
  my_cursor *cur = calloc(1, sizeof *cur);
  if (!cur) return fail_nomem(err);
  if ((rc = rs_start(c, sql, len, params, nparams, &cur->rs, err))) {
    rs_end(&cur->rs, NULL, err);
    free(cur);
    tx_after_error(c, err);
    return rc;
  }
  if (cur->rs.has_rs && sink && sink->columns &&
      sink->columns(sink->ud, (int)cur->rs.ncols, cur->rs.cols, err)) {
    rc = sink_stopped(err);
    rs_end(&cur->rs, NULL, err);
    free(cur);
    return rc;
  }
  cur->c = c;
  cur->sink = sink;
  c->cur = cur;
  *out = (sq_dcursor *)cur;
  return SQ_OK;
}

static int my_cursor_fetch(sq_dcursor *dcur, int *has_row, sq_err *err) {
  my_cursor *cur = (my_cursor *)dcur;
  int rc;
  *has_row = 0;
  sq_err_clear(err);
  if (!cur->c) return sq_err_set(err, SQ_ECLOSED, "mysql: the cursor's connection was closed");
  if (cur->finished) return SQ_OK;
  if ((rc = rs_next(&cur->rs, has_row, err))) {
    *has_row = 0;
    cur->failed = *err; /* the transaction's fate is checked on close */
    return rc;
  }
  if (!*has_row) {
    cur->finished = 1;
    return rs_end(&cur->rs, NULL, err);
  }
  if (cur->sink && cur->sink->row &&
      cur->sink->row(cur->sink->ud, (int)cur->rs.ncols, cur->rs.vals, err)) {
    *has_row = 0;
    return sink_stopped(err);
  }
  return SQ_OK;
}

/* Ends the cursor's statement, draining unread rows (the protocol has no
 * way to cancel a result short of killing the query from elsewhere). */
static void cursor_detach(my_conn *c) {
  my_cursor *cur = c->cur;
  sq_err ignored;
  sq_err_clear(&ignored);
  if (!cur->finished) rs_end(&cur->rs, NULL, &ignored);
  cur->finished = 1;
  cur->c = NULL;
  c->cur = NULL;
  if (cur->failed.kind != SQ_OK) tx_after_error(c, &cur->failed);
}

static void my_cursor_close(sq_dcursor *dcur) {
  my_cursor *cur = (my_cursor *)dcur;
  if (!cur) return;
  if (cur->c) cursor_detach(cur->c);
  free(cur);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

/* 1 while a transaction is open on the server, and while one the server
 * ended by itself (TX_LOST) still waits for the caller's ROLLBACK. */
static int my_in_transaction(sq_dconn *dc) {
  my_conn *c = (my_conn *)dc;
  if (my_is_dead(dc)) return 0;
  return c->tx == TX_LOST || (c->m->server_status & SERVER_STATUS_IN_TRANS) != 0;
}

/* START TRANSACTION inside a transaction would silently commit it, so a
 * nested begin is refused (nesting uses savepoints). */
static int my_begin(sq_dconn *dc, int isolation, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  const char *level = NULL;
  int rc = busy(c, err);
  if (rc) return rc;
  switch (isolation) {
  case SQ_ISO_DEFAULT: break;
  case SQ_ISO_READ_UNCOMMITTED: level = "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"; break;
  case SQ_ISO_READ_COMMITTED: level = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"; break;
  case SQ_ISO_REPEATABLE_READ: level = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"; break;
  case SQ_ISO_SERIALIZABLE: level = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"; break;
  default: return sq_err_set(err, SQ_EUSAGE, "mysql: unknown isolation level %d", isolation);
  }
  if (my_in_transaction(dc)) return sq_err_set(err, SQ_EUSAGE, "mysql: a transaction is already open");
  if (level && (rc = run_simple(c, level, err))) return rc;
  if ((rc = run_simple(c, "START TRANSACTION", err))) return rc;
  c->tx = TX_OPEN;
  return SQ_OK;
}

/* COMMIT of a transaction the server already rolled back is refused: it
 * would "succeed" on nothing. A failed COMMIT leaves the state to the
 * caller's ROLLBACK. */
static int my_commit(sq_dconn *dc, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  int rc = busy(c, err);
  if (rc) return rc;
  if (c->tx == TX_LOST) return tx_lost_error(c, err);
  if ((rc = run_simple(c, "COMMIT", err))) return rc;
  c->tx = TX_NONE;
  return SQ_OK;
}

static int my_rollback(sq_dconn *dc, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  int rc = busy(c, err);
  if (rc) return rc;
  rc = run_simple(c, "ROLLBACK", err);
  c->tx = TX_NONE;
  return rc;
}

/* Savepoint names come validated from the core; checked again here
 * because they are spliced into SQL. */
static int savepoint_sql(my_conn *c, const char *verb, const char *name, sq_err *err) {
  char sql[128];
  size_t n = name ? strlen(name) : 0;
  int rc = busy(c, err);
  if (rc) return rc;
  if (c->tx == TX_LOST) return tx_lost_error(c, err);
  if (n == 0 || n > 64) return sq_err_set(err, SQ_EUSAGE, "mysql: bad savepoint name");
  for (size_t i = 0; i < n; i++) {
    char ch = name[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (i > 0 && ch >= '0' && ch <= '9')))
      return sq_err_set(err, SQ_EUSAGE, "mysql: bad savepoint name '%s'", name);
  }
  snprintf(sql, sizeof sql, "%s %s", verb, name);
  if ((rc = run_simple(c, sql, err))) tx_after_error(c, err);
  return rc;
}

static int my_savepoint(sq_dconn *dc, const char *name, sq_err *err) {
  return savepoint_sql((my_conn *)dc, "SAVEPOINT", name, err);
}

static int my_release(sq_dconn *dc, const char *name, sq_err *err) {
  return savepoint_sql((my_conn *)dc, "RELEASE SAVEPOINT", name, err);
}

static int my_rollback_to(sq_dconn *dc, const char *name, sq_err *err) {
  return savepoint_sql((my_conn *)dc, "ROLLBACK TO SAVEPOINT", name, err);
}

/* The session settings my_open makes, applied again by a full reset
 * (COM_RESET_CONNECTION puts every session variable back to its global
 * value, the character set included). Keep in step with my_open. */
static const char MY_SESSION_SETUP[] = "SET NAMES utf8mb4, time_zone = '+00:00'";

/* Cheap reset for the pool (full = 0): finish a forgotten cursor, roll
 * back, and turn autocommit back on if a user switched it off.
 * full = 1 restores the session as my_open left it: COM_RESET_CONNECTION
 * (mysql_reset_connection) rolls back, drops temporary tables, releases
 * LOCK TABLES and GET_LOCK locks, clears user variables and server-side
 * prepared statements and restores every session variable (autocommit
 * included); the library invalidates our prepared statements, so the
 * cache is emptied (closing them then only frees memory). The current
 * database (which COM_RESET_CONNECTION keeps) and the open's session
 * settings are then applied again. */
static int my_reset(sq_dconn *dc, int full, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  int rc;
  if (c->cur) cursor_detach(c);
  if ((rc = busy(c, err))) return rc;
  if (full) {
    if (mysql_reset_connection(c->m)) {
      rc = fail_conn(c, err);
      c->dead = 1; /* the session is in an unknown state */
      return rc;
    }
    while (c->head) stmt_evict(c, c->head);
    if (c->db0 && mysql_select_db(c->m, c->db0)) return fail_conn(c, err); /* USE is not reset */
    if ((rc = run_simple(c, MY_SESSION_SETUP, err))) return rc;
    /* the setup's own status says "session changed"; a ping's does not,
     * so needs_reset does not ask for this reset again */
    return mysql_ping(c->m) ? fail_conn(c, err) : SQ_OK;
  }
  if ((c->m->server_status & SERVER_STATUS_IN_TRANS) && (rc = run_simple(c, "ROLLBACK", err))) return rc;
  if (!(c->m->server_status & SERVER_STATUS_AUTOCOMMIT) && mysql_autocommit(c->m, 1)) return fail_conn(c, err);
  return SQ_OK;
}

/* The pool's reset (my_reset) rolls back whatever is open; a transaction
 * the server ended by itself is forgotten with it. */
static int my_reset_conn(sq_dconn *dc, int full, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  int rc = my_reset(dc, full, err);
  c->tx = TX_NONE;
  return rc;
}

/* The server's own word that the session changed: the last statement's
 * status says a tracked session variable changed
 * (SERVER_SESSION_STATE_CHANGED, e.g. SET inside a stored procedure), or
 * autocommit is off. Costs no round trip. */
static int my_needs_reset(sq_dconn *dc) {
  my_conn *c = (my_conn *)dc;
  if (my_is_dead(dc)) return 0;
  unsigned st = c->m->server_status;
  return (st & SERVER_SESSION_STATE_CHANGED) || !(st & SERVER_STATUS_AUTOCOMMIT);
}

/*
 * Called from another thread while a statement runs (see
 * sq_driver.cancel). The protocol has no out-of-band cancel, so a short
 * side connection with the same settings (TLS included) runs KILL QUERY
 * on this session's thread id: the statement fails with 1317 (query
 * execution was interrupted) and the session stays open. An idle session
 * ignores it: the server clears a pending KILL QUERY when the next
 * command starts. Connecting waits at most 5 s.
 */
static int my_cancel(sq_dconn *dc, sq_err *err) {
  my_conn *c = (my_conn *)dc;
  if (!c->has_cfg || !c->thread_id) return sq_err_set(err, SQ_EINTERNAL, "mysql: nothing to cancel with");
  sq_config cfg = c->cfg; /* shallow: my_open only reads it */
  if (!(cfg.connect_timeout > 0) || cfg.connect_timeout > 5) cfg.connect_timeout = 5;
  sq_dconn *side = NULL;
  int rc = open_one(&cfg, &side, err);
  if (rc) return rc;
  char sql[48];
  snprintf(sql, sizeof sql, "KILL QUERY %lu", c->thread_id);
  rc = run_simple((my_conn *)side, sql, err);
  my_close(side);
  return rc;
}

/* Nothing in flight: no cursor, no unread result, the link up. */
static int my_is_clean(sq_dconn *dc) {
  my_conn *c = (my_conn *)dc;
  return !my_is_dead(dc) && !c->cur && c->m->status == MYSQL_STATUS_READY;
}

static const char *my_server_version(sq_dconn *dc) {
  my_conn *c = (my_conn *)dc;
  const char *v = mysql_get_server_info(c->m);
  return v ? v : "";
}

const sq_driver sq_driver_mysql = {
  .name = "mysql",
  .dialect = SQ_DIALECT_MYSQL,
  .ph_style = SQ_PH_QMARK,
  .open = my_open,
  .close = my_close,
  .ping = my_ping,
  .is_dead = my_is_dead,
  .exec = my_exec,
  .cursor_open = my_cursor_open,
  .cursor_fetch = my_cursor_fetch,
  .cursor_close = my_cursor_close,
  .begin = my_begin,
  .commit = my_commit,
  .rollback = my_rollback,
  .savepoint = my_savepoint,
  .release = my_release,
  .rollback_to = my_rollback_to,
  .in_transaction = my_in_transaction,
  .reset = my_reset_conn,
  .needs_reset = my_needs_reset,
  .server_version = my_server_version,
  .cancel = my_cancel,
  .is_clean = my_is_clean,
};
