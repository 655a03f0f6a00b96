/*
 * driver_postgres.c - the PostgreSQL driver, over libpq.
 *
 * Statements go through the extended protocol with a bounded per-connection
 * LRU of named prepared statements ("sq_<n>"), keyed on the SQL text plus
 * the parameter type OIDs (the OIDs are part of a prepared statement's
 * signature). Values are sent with explicit types (int8, float8, bool,
 * bytea) in binary format, so no number is formatted as text on the client
 * nor parsed on the server, except text, which goes as "unknown" so the
 * server infers its type from context. Results arrive in text format and
 * are decoded once, by column OID, into sq_values; bytea is decoded from
 * its hex form into a per-connection scratch buffer, so no per-row
 * allocation happens here. A cached statement also remembers its result
 * columns, so a repeated run does not read names and types again.
 *
 * Streaming cursors use libpq's single-row mode. Closing a cursor early
 * drains the rest, and cancels the statement first when that is safe (a
 * read-only statement outside a transaction block), so the connection is
 * usable again and memory stays bounded.
 *
 * The session is set to TimeZone UTC, DateStyle ISO, client_encoding UTF8.
 *
 * Pooler mode (sq_config_pooler_mode: prepare = false, pgbouncer=true, a
 * "-pooler." host) is for PgBouncer-style poolers in transaction mode,
 * which hand each transaction to whichever server connection is free and
 * reset it afterwards: a named prepared statement made in one transaction
 * is gone (SQLSTATE 26000) in the next, and so is every session SET. So:
 *   - statements run as unnamed statements (PQexecParams: Parse, Bind,
 *     Execute, Sync in one round trip); no statement or column cache;
 *   - the connect sends no session SETs, and nothing depends on them:
 *     a statement whose results sqorm decodes (SELECT, WITH, VALUES,
 *     TABLE, INSERT, UPDATE, DELETE, MERGE, FETCH) is preceded, in the
 *     same round trip (libpq pipeline mode, one Sync), by a statement
 *     that sets TimeZone UTC, DateStyle ISO, extra_float_digits 3 and
 *     bytea_output hex with set_config(..., is_local => true). The two
 *     share one transaction - the caller's, or the implicit one the
 *     extended protocol opens until Sync - so the settings hold for the
 *     statement whatever the session, the pooler, the role or the
 *     database defaults say (a user's SET included), and end with that
 *     transaction, leaving the pooler's server connection as it was.
 *     Results stay in text format, so every type (enums, arrays,
 *     extension types) reads as in the default mode. The cost is one
 *     tiny extra statement per statement on the server, no extra round
 *     trip. Other statements (DDL, VACUUM, CREATE INDEX CONCURRENTLY,
 *     which refuse to run inside a pipeline) go alone.
 * Why not binary results: libpq asks for one format for every column of
 * a result, and the binary forms of types sqorm does not know (user
 * enums, composites, extension types) would arrive as bytes.
 */
#include "sqorm.h"
#include "internal.h"

#include <libpq-fe.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Type OIDs from pg_type.h (stable across server versions). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_TIMESTAMP 1114
#define OID_TIMESTAMPTZ 1184

#define PG_CACHE_CAP 64      /* prepared statements kept per connection */
#define PG_NBUCKETS 128      /* hash buckets for the statement cache */
#define PG_DEALLOC_BATCH 8   /* evicted statements freed per round trip */
#define PG_DRAIN_BEFORE_CANCEL 256 /* rows read before cancelling a cursor */
#define PG_SCRATCH_KEEP (4u << 20) /* scratch kept between statements */
#define PG_TSLEN 64          /* per-column buffer for normalised timestamps */
#define PG_MAX_PARAMS 65535  /* the protocol's limit */

/* How a column's text is decoded. */
enum { K_TEXT, K_INT, K_FLOAT, K_BOOL, K_BLOB, K_TS, K_TSTZ };

static const char SESSION_SETUP[] =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'";

/* Pooler mode: the same settings, local to the statement's transaction. */
static const char POOLER_PREAMBLE[] =
    "SELECT pg_catalog.set_config('TimeZone', 'UTC', true), "
    "pg_catalog.set_config('DateStyle', 'ISO, MDY', true), "
    "pg_catalog.set_config('extra_float_digits', '3', true), "
    "pg_catalog.set_config('bytea_output', 'hex', true)";

typedef struct pg_stmt {
  struct pg_stmt *hnext;       /* hash chain */
  struct pg_stmt *prev, *next; /* LRU list, most recent first */
  uint64_t hash;
  uint32_t id;
  char name[16];               /* server-side name, "sq_<id>" */
  int nparams;
  size_t sqllen;
  Oid *oids;                   /* nparams entries, in the same block */
  char *sql;                   /* NUL-terminated copy, in the same block */
  /* The result columns of the last run (names copied), so later runs
   * skip reading every name and type from the PGresult. A prepared
   * statement's row type cannot change under it: the server refuses to
   * run it ("cached plan must not change result type", repair_stale). */
  int ncols;                   /* -1 until a run returned rows */
  int has_blob;
  sq_column *cols;             /* ncols entries; kinds and names in the same block */
  unsigned char *kinds;
} pg_stmt;

struct pg_cursor;

typedef struct pg_conn {
  PGconn *pg;
  int dead;
  int pooler;                  /* pooler mode (see the top of this file) */
  int pipeline;                /* libpq is in pipeline mode (a pooler statement's results are pending) */

  /* statement cache */
  pg_stmt *buckets[PG_NBUCKETS];
  pg_stmt *lru_head, *lru_tail;
  int nstmts;
  uint32_t next_id;
  uint32_t *pending;           /* evicted ids not yet deallocated */
  int npending, pending_cap;

  /* encoded parameters of the statement being run */
  Oid *p_oids;
  const char **p_vals;
  int *p_lens, *p_fmts;
  int p_cap;
  char *p_buf;
  size_t p_bufcap;

  /* decoded row of the result being delivered */
  sq_column *cols;
  sq_value *vals;
  unsigned char *kinds;
  char *tsbuf;                 /* col_cap * PG_TSLEN */
  int col_cap, ncols;
  int has_blob;                /* some column is bytea */
  char *scratch;               /* bytea bytes of the current row */
  size_t scratch_cap;

  struct pg_cursor *cursor;    /* the open cursor, if any */

  /* A transaction begun by pg_begin (tx_open) that a deadlock or a
   * serialization failure ended (tx_lost, with the SQLSTATE in
   * lost_state): the server keeps it aborted, and ROLLBACK TO SAVEPOINT
   * could even revive it, but "deadlock" promises the caller that the
   * transaction is over. So every statement, savepoint and COMMIT is
   * refused with SQ_EDEADLOCK until ROLLBACK (or the pool's reset). */
  int tx_open, tx_lost;
  char lost_state[6];
  /* pg_cancel runs on another thread while a statement runs: the cancel
   * object is made once at open (PQgetCancel must not race with the
   * connection's own use) and guarded by its own small lock. */
  pthread_mutex_t cancel_mu;
  PGcancel *cancel;
} pg_conn;

typedef struct pg_cursor {
  pg_conn *c;                  /* NULL once the connection was closed */
  const sq_row_sink *sink;
  PGresult *meta;              /* first result: owns the column names */
  int meta_row;                /* meta holds a row not yet delivered */
  int done;                    /* PQgetResult has returned NULL */
  int cancellable;             /* safe to cancel on an early close */
  int in_tx;                   /* opened inside a transaction block */
} pg_cursor;

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* libpq prints notices (WARNING, NOTICE) to stderr by default; a library
 * must not write to the host's stderr, so they are dropped. */
static void quiet_notice(void *arg, const char *msg) {
  (void)arg;
  (void)msg;
}

/* Copies s into dst without trailing whitespace/newlines (libpq messages
 * end with "\n"). */
static void trim_copy(char *dst, size_t cap, const char *s) {
  size_t n = s ? strlen(s) : 0;
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  if (n >= cap) n = cap - 1;
  if (n) memcpy(dst, s, n);
  dst[n] = '\0';
}

/* Grows *p (elements of size sz) to hold at least need elements. */
static int grow(void **p, size_t *cap, size_t need, size_t sz) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap : 16;
  while (nc < need) {
    if (nc > ((size_t)-1) / 2 / sz) return -1;
    nc *= 2;
  }
  void *np = realloc(*p, nc * sz);
  if (!np) return -1;
  *p = np;
  *cap = nc;
  return 0;
}

static int nomem(sq_err *err) {
  return sq_err_set(err, SQ_ENOMEM, "postgres: out of memory");
}

/* ASCII case-insensitive comparison of n bytes (no locale, no POSIX
 * strings.h under strict C11). */
static int ci_eq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 0;
  return 1;
}

/* ci_eq over two whole NUL-terminated strings. */
static int ci_streq(const char *a, const char *b) {
  size_t n = strlen(a);
  return n == strlen(b) && ci_eq(a, b, n);
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* Maps a SQLSTATE onto an sq_kind; *dead is set for states that mean the
 * session is gone (connection exceptions, operator intervention). */
static int kind_of_state(const char *st, int *dead) {
  *dead = 0;
  if (!strcmp(st, "23505")) return SQ_EUNIQUE;
  if (!strncmp(st, "23", 2)) return SQ_ECONSTRAINT;
  if (!strcmp(st, "42501")) return SQ_EDATABASE; /* permission denied */
  if (!strncmp(st, "42", 2) || !strcmp(st, "3F000")) return SQ_ESYNTAX;
  if (!strncmp(st, "28", 2)) return SQ_EAUTH;
  /* "bind message supplies 1 parameters, but prepared statement requires
   * 2" is a protocol_violation on a healthy link: the caller's mistake */
  if (!strcmp(st, "08P01")) return SQ_EUSAGE;
  if (!strncmp(st, "08", 2) || !strncmp(st, "57P0", 4)) {
    *dead = 1;
    return SQ_ECONNECTION;
  }
  /* deadlock_detected, serialization_failure: the transaction is over
   * (see pg_conn.tx_lost) and may be retried */
  if (!strcmp(st, "40P01") || !strcmp(st, "40001")) return SQ_EDEADLOCK;
  /* query_canceled (statement_timeout), lock_not_available (lock_timeout, NOWAIT) */
  if (!strcmp(st, "57014") || !strcmp(st, "55P03")) return SQ_ETIMEOUT;
  return SQ_EDATABASE;
}

/* Marks the connection dead and fills err from libpq's connection-level
 * message (lost link, server gone). */
static int lost(pg_conn *c, const char *msg, sq_err *err) {
  char buf[900];
  c->dead = 1;
  trim_copy(buf, sizeof buf, msg && *msg ? msg : PQerrorMessage(c->pg));
  sq_err_set(err, SQ_ECONNECTION, "%s", buf[0] ? buf : "postgres: connection lost");
  sq_err_native(err, "08006", "08006");
  return SQ_ECONNECTION;
}

/* Fills err from a failed result (r may be NULL when libpq could not even
 * produce one). The message is the server's primary text, with DETAIL and
 * HINT lines when present; code and sqlstate are both the SQLSTATE, as
 * PostgreSQL's native error code is its SQLSTATE. */
static int fail(pg_conn *c, const PGresult *r, sq_err *err) {
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  int bad = PQstatus(c->pg) == CONNECTION_BAD;
  if (!st || !*st) {
    if (bad || !r) return lost(c, r ? PQresultErrorMessage(r) : NULL, err);
    char buf[900];
    trim_copy(buf, sizeof buf, PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
                                                          : PQerrorMessage(c->pg));
    sq_err_set(err, SQ_EINTERNAL, "%s", buf[0] ? buf : "postgres: unknown libpq error");
    sq_err_native(err, "libpq", NULL);
    return SQ_EINTERNAL;
  }
  int dead;
  int kind = kind_of_state(st, &dead);
  const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (bad || (sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC")))) dead = 1;
  if (dead) {
    kind = SQ_ECONNECTION;
    c->dead = 1;
  }
  if (kind == SQ_EDEADLOCK && c->tx_open && !c->tx_lost) {
    c->tx_lost = 1;
    snprintf(c->lost_state, sizeof c->lost_state, "%s", st);
  }
  const char *prim = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
  char pbuf[700];
  trim_copy(pbuf, sizeof pbuf, prim ? prim : PQresultErrorMessage(r));
  sq_err_set(err, kind, "%s%s%s%s%s", pbuf[0] ? pbuf : "postgres error",
             detail ? "\nDETAIL:  " : "", detail ? detail : "",
             hint ? "\nHINT:  " : "", hint ? hint : "");
  sq_err_native(err, st, st);
  return kind;
}

static void pipeline_end(pg_conn *c);

/* Checks a connection before a call: dead or busy connections refuse. */
static int usable(pg_conn *c, sq_err *err) {
  if (c->pipeline && !c->cursor) pipeline_end(c); /* a safety net: every path ends it already */
  if (c->dead || PQstatus(c->pg) == CONNECTION_BAD) {
    c->dead = 1;
    sq_err_set(err, SQ_ECONNECTION, "postgres: connection is dead");
    sq_err_native(err, "08003", "08003");
    return SQ_ECONNECTION;
  }
  if (c->cursor) return sq_err_set(err, SQ_EUSAGE, "postgres: a cursor is open on this connection");
  return SQ_OK;
}

/* The error of any use of a lost transaction but ROLLBACK. */
static int tx_lost_error(pg_conn *c, sq_err *err) {
  sq_err_set(err, SQ_EDEADLOCK,
             "postgres: the transaction was rolled back by the server (%s); roll it back and retry it",
             !strcmp(c->lost_state, "40P01") ? "deadlock detected" : "serialization failure");
  sq_err_native(err, c->lost_state, c->lost_state);
  return SQ_EDEADLOCK;
}

/* The result of a sink callback that returned non-zero. */
static int stopped(sq_err *err) {
  if (err->kind == SQ_OK) return sq_err_set(err, SQ_EUSAGE, "row callback stopped");
  return err->kind;
}

/* ------------------------------------------------------------------ */
/* COPY guard                                                           */
/* ------------------------------------------------------------------ */

/* A COPY statement leaves libpq in copy mode, which nothing in sqorm
 * speaks; end it so the connection stays usable, then drain. */
static void end_copy(pg_conn *c, int status) {
  if (status == PGRES_COPY_IN) {
    PQputCopyEnd(c->pg, "COPY is not supported by sqorm");
  } else if (status == PGRES_COPY_OUT) {
    char *buf;
    while (PQgetCopyData(c->pg, &buf, 0) > 0) PQfreemem(buf);
  }
  PGresult *r;
  while ((r = PQgetResult(c->pg)) != NULL) PQclear(r);
  if (PQstatus(c->pg) == CONNECTION_BAD) c->dead = 1;
}

/* Runs SQL with the simple protocol (transaction control, session setup,
 * multi-statement scripts) and discards its result. */
static int simple(pg_conn *c, const char *sql, sq_err *err) {
  int rc = usable(c, err);
  if (rc) return rc;
  PGresult *r = PQexec(c->pg, sql);
  int st = r ? (int)PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
    PQclear(r);
    return SQ_OK;
  }
  if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    PQclear(r);
    end_copy(c, st);
    return sq_err_set(err, SQ_EUSAGE, "postgres: COPY is not supported");
  }
  rc = fail(c, r, err);
  PQclear(r);
  return rc;
}

/* ------------------------------------------------------------------ */
/* SQL scanning                                                         */
/* ------------------------------------------------------------------ */

/* 1 when the statement starts with a read-only keyword, so cancelling it
 * on an early cursor close cannot undo a write the caller expected. WITH
 * may hold a data-modifying CTE, EXPLAIN may be EXPLAIN ANALYZE: neither
 * counts. The text is read with the core's PostgreSQL lexer. */
static int read_only_statement(const char *s, size_t n) {
  static const char *const words[] = {"SELECT", "VALUES", "TABLE", "SHOW"};
  size_t k;
  const char *w = sq_sql_first_word(SQ_DIALECT_POSTGRES, s, n, &k);
  for (size_t i = 0; w && i < sizeof words / sizeof *words; i++)
    if (sq_word_is(w, k, words[i])) return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                           */
/* ------------------------------------------------------------------ */

/* Writes x as 8 big-endian bytes (the binary form of int8 and float8). */
static void put_be64(char *b, uint64_t x) {
  for (int i = 7; i >= 0; i--) {
    b[i] = (char)(x & 0xff);
    x >>= 8;
  }
}

/* Encodes params into the connection's arrays: type OIDs (the statement
 * signature), values, lengths and formats. Numbers and booleans go in
 * binary (int8send / float8send / boolsend form): exact, locale-proof and
 * free of any formatting. Text is copied to add the NUL libpq's text
 * format needs; blobs are sent binary, in place. */
static int encode_params(pg_conn *c, const sq_value *params, int n, sq_err *err) {
  if (n < 0 || n > PG_MAX_PARAMS)
    return sq_err_set(err, SQ_EUSAGE, "postgres: %d parameters (at most %d)", n, PG_MAX_PARAMS);
  if (n > 0 && !params) return sq_err_set(err, SQ_EUSAGE, "postgres: params is NULL");
  if (n > c->p_cap) {
    size_t cap = (size_t)c->p_cap;
    size_t need = (size_t)n;
    size_t c1 = cap, c2 = cap, c3 = cap, c4 = cap;
    if (grow((void **)&c->p_oids, &c1, need, sizeof(Oid)) ||
        grow((void **)&c->p_vals, &c2, need, sizeof(char *)) ||
        grow((void **)&c->p_lens, &c3, need, sizeof(int)) ||
        grow((void **)&c->p_fmts, &c4, need, sizeof(int)))
      return nomem(err);
    size_t m = c1;
    if (c2 < m) m = c2;
    if (c3 < m) m = c3;
    if (c4 < m) m = c4;
    c->p_cap = (int)m;
  }
  size_t need = 0;
  for (int i = 0; i < n; i++) {
    const sq_value *v = &params[i];
    switch (v->type) {
    case SQ_VINT: case SQ_VFLOAT: need += 8; break;
    case SQ_VBOOL: need += 1; break;
    case SQ_VTEXT:
      if (v->u.s.n && !v->u.s.p) return sq_err_set(err, SQ_EUSAGE, "postgres: parameter %d: NULL text", i + 1);
      if (v->u.s.n && memchr(v->u.s.p, '\0', v->u.s.n))
        return sq_err_set(err, SQ_EUSAGE,
                          "PostgreSQL text cannot contain NUL bytes (use a BLOB column) (parameter %d)",
                          i + 1);
      if (v->u.s.n > (size_t)0x3fffffff)
        return sq_err_set(err, SQ_EUSAGE, "postgres: parameter %d is over 1 GiB", i + 1);
      need += v->u.s.n + 1;
      break;
    case SQ_VBLOB:
      if (v->u.s.n && !v->u.s.p) return sq_err_set(err, SQ_EUSAGE, "postgres: parameter %d: NULL blob", i + 1);
      if (v->u.s.n > (size_t)0x3fffffff)
        return sq_err_set(err, SQ_EUSAGE, "postgres: parameter %d is over 1 GiB", i + 1);
      break;
    case SQ_VNULL: break;
    default: return sq_err_set(err, SQ_EUSAGE, "postgres: parameter %d has unknown type %d", i + 1, v->type);
    }
  }
  if (grow((void **)&c->p_buf, &c->p_bufcap, need ? need : 1, 1)) return nomem(err);
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    const sq_value *v = &params[i];
    char *b = c->p_buf + off;
    switch (v->type) {
    case SQ_VINT:
    case SQ_VFLOAT: {
      uint64_t bits;
      if (v->type == SQ_VINT) {
        c->p_oids[i] = OID_INT8;
        bits = (uint64_t)v->u.i;
      } else {
        c->p_oids[i] = OID_FLOAT8;
        memcpy(&bits, &v->u.f, 8); /* IEEE 754 double, as float8send writes it */
      }
      put_be64(b, bits);
      c->p_vals[i] = b;
      c->p_lens[i] = 8;
      c->p_fmts[i] = 1;
      off += 8;
      break;
    }
    case SQ_VBOOL:
      c->p_oids[i] = OID_BOOL;
      b[0] = v->u.b ? 1 : 0;
      c->p_vals[i] = b;
      c->p_lens[i] = 1;
      c->p_fmts[i] = 1;
      off += 1;
      break;
    case SQ_VTEXT:
      c->p_oids[i] = 0;
      if (v->u.s.n) memcpy(b, v->u.s.p, v->u.s.n);
      b[v->u.s.n] = '\0';
      off += v->u.s.n + 1;
      c->p_vals[i] = b;
      c->p_lens[i] = 0;
      c->p_fmts[i] = 0;
      break;
    case SQ_VBLOB:
      c->p_oids[i] = OID_BYTEA;
      c->p_vals[i] = v->u.s.n ? v->u.s.p : ""; /* NULL would mean SQL NULL */
      c->p_lens[i] = (int)v->u.s.n;
      c->p_fmts[i] = 1;
      break;
    default:
      c->p_oids[i] = 0;
      c->p_vals[i] = NULL;
      c->p_lens[i] = 0;
      c->p_fmts[i] = 0;
      break;
    }
  }
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Statement cache                                                      */
/* ------------------------------------------------------------------ */

static void lru_unlink(pg_conn *c, pg_stmt *s) {
  if (s->prev) s->prev->next = s->next; else c->lru_head = s->next;
  if (s->next) s->next->prev = s->prev; else c->lru_tail = s->prev;
  s->prev = s->next = NULL;
}

static void lru_push(pg_conn *c, pg_stmt *s) {
  s->prev = NULL;
  s->next = c->lru_head;
  if (c->lru_head) c->lru_head->prev = s;
  c->lru_head = s;
  if (!c->lru_tail) c->lru_tail = s;
}

/* Removes s from the cache and frees it; its server-side statement is
 * queued for DEALLOCATE when server_side is set. */
static void cache_remove(pg_conn *c, pg_stmt *s, int server_side) {
  pg_stmt **pp = &c->buckets[s->hash % PG_NBUCKETS];
  while (*pp && *pp != s) pp = &(*pp)->hnext;
  if (*pp) *pp = s->hnext;
  lru_unlink(c, s);
  c->nstmts--;
  if (server_side) {
    size_t cap = (size_t)c->pending_cap;
    if (!grow((void **)&c->pending, &cap, (size_t)c->npending + 1, sizeof(uint32_t))) {
      c->pending_cap = (int)cap;
      c->pending[c->npending++] = s->id;
    } /* else: the statement lingers on the server until disconnect */
  }
  free(s->cols);
  free(s);
}

/* Forgets every cached statement without telling the server (after
 * DISCARD ALL / DEALLOCATE ALL, which already dropped them). */
static void cache_forget_all(pg_conn *c) {
  while (c->lru_head) cache_remove(c, c->lru_head, 0);
  c->npending = 0;
}

/* Sends DEALLOCATE for evicted statements in one round trip. Outside a
 * transaction block once a few are queued; inside one only when many are
 * (a failure there would abort the caller's transaction, and every queued
 * name is known to exist, so it should not fail). */
static void flush_pending(pg_conn *c) {
  if (c->npending == 0 || c->dead) return;
  PGTransactionStatusType ts = PQtransactionStatus(c->pg);
  if (!((ts == PQTRANS_IDLE && c->npending >= PG_DEALLOC_BATCH) ||
        (ts == PQTRANS_INTRANS && c->npending >= PG_CACHE_CAP)))
    return;
  char *sql = malloc((size_t)c->npending * 32 + 1);
  if (!sql) return;
  size_t off = 0;
  for (int i = 0; i < c->npending; i++)
    off += (size_t)sprintf(sql + off, "DEALLOCATE sq_%u;", (unsigned)c->pending[i]);
  PGresult *r = PQexec(c->pg, sql);
  free(sql);
  if (r && PQresultStatus(r) == PGRES_COMMAND_OK) c->npending = 0;
  else if (PQstatus(c->pg) == CONNECTION_BAD) c->dead = 1;
  else c->npending = 0; /* don't retry forever on an unexpected error */
  PQclear(r);
}

/* Finds the prepared statement for (sql, current param OIDs), preparing
 * it on a miss and evicting the least recently used one past the cap. */
static pg_stmt *cache_get(pg_conn *c, const char *sql, size_t len, int n, sq_err *err) {
  /* The statement run last is the likeliest one: tried before hashing. */
  pg_stmt *last = c->lru_head;
  if (last && last->sqllen == len && last->nparams == n && !memcmp(last->sql, sql, len) &&
      (n == 0 || !memcmp(last->oids, c->p_oids, (size_t)n * sizeof(Oid))))
    return last;
  uint64_t h = sq_hash_bytes(sql, len, 0);
  h = sq_hash_bytes(c->p_oids, (size_t)n * sizeof(Oid), h);
  for (pg_stmt *s = c->buckets[h % PG_NBUCKETS]; s; s = s->hnext) {
    if (s->hash == h && s->sqllen == len && s->nparams == n && !memcmp(s->sql, sql, len) &&
        (n == 0 || !memcmp(s->oids, c->p_oids, (size_t)n * sizeof(Oid)))) {
      if (c->lru_head != s) {
        lru_unlink(c, s);
        lru_push(c, s);
      }
      return s;
    }
  }
  flush_pending(c);
  pg_stmt *s = malloc(sizeof *s + (size_t)n * sizeof(Oid) + len + 1);
  if (!s) {
    nomem(err);
    return NULL;
  }
  s->oids = (Oid *)(s + 1);
  s->sql = (char *)(s->oids + n);
  if (n) memcpy(s->oids, c->p_oids, (size_t)n * sizeof(Oid));
  memcpy(s->sql, sql, len);
  s->sql[len] = '\0';
  s->sqllen = len;
  s->nparams = n;
  s->hash = h;
  s->ncols = -1;
  s->has_blob = 0;
  s->cols = NULL;
  s->kinds = NULL;
  s->id = ++c->next_id;
  memcpy(s->name, "sq_", 3);
  sq_fmt_i64(s->id, s->name + 3);
  PGresult *r = PQprepare(c->pg, s->name, s->sql, n, c->p_oids);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    fail(c, r, err);
    PQclear(r);
    free(s);
    return NULL;
  }
  PQclear(r);
  s->hnext = c->buckets[h % PG_NBUCKETS];
  c->buckets[h % PG_NBUCKETS] = s;
  lru_push(c, s);
  c->nstmts++;
  if (c->nstmts > PG_CACHE_CAP) cache_remove(c, c->lru_tail, 1);
  return s;
}

/* After a failed execute: repairs the cache when the failure came from it
 * (the server lost our statement, or a table change invalidated its row
 * type). Returns 1 when the statement may be retried (outside a
 * transaction block nothing was changed by the failed attempt). */
static int repair_stale(pg_conn *c, pg_stmt *s, const PGresult *r) {
  const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (!st || c->dead) return 0;
  if (!strcmp(st, "26000")) { /* invalid_sql_statement_name */
    cache_forget_all(c);
  } else if (!strcmp(st, "0A000")) {
    const char *fn = PQresultErrorField(r, PG_DIAG_SOURCE_FUNCTION);
    if (!fn || strcmp(fn, "RevalidateCachedQuery")) return 0; /* "cached plan must not change result type" */
    cache_remove(c, s, 1);
  } else {
    return 0;
  }
  return PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}

/* Keeps the cache and session settings in line with commands that reset
 * server-side session state. Returns 1 when the cache was emptied (every
 * pg_stmt pointer is then stale). */
static int after_command(pg_conn *c, const PGresult *r) {
  const char *tag = PQcmdStatus((PGresult *)r);
  int forgot = 0;
  if (!tag || (tag[0] != 'D' && tag[0] != 'R')) return 0; /* the usual case, in one test */
  if (!strcmp(tag, "DISCARD ALL") || !strcmp(tag, "DEALLOCATE ALL")) {
    cache_forget_all(c);
    forgot = 1;
  }
  if ((!strcmp(tag, "DISCARD ALL") || !strcmp(tag, "RESET")) && !c->pooler) {
    PGresult *s = PQexec(c->pg, SESSION_SETUP);
    if (PQstatus(c->pg) == CONNECTION_BAD) c->dead = 1;
    PQclear(s);
  }
  return forgot;
}

/* ------------------------------------------------------------------ */
/* Result decoding                                                      */
/* ------------------------------------------------------------------ */

static int kind_of_oid(Oid t, int *vtype) {
  switch (t) {
  case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID: *vtype = SQ_VINT; return K_INT;
  case OID_FLOAT4: case OID_FLOAT8: *vtype = SQ_VFLOAT; return K_FLOAT;
  case OID_BOOL: *vtype = SQ_VBOOL; return K_BOOL;
  case OID_BYTEA: *vtype = SQ_VBLOB; return K_BLOB;
  case OID_TIMESTAMP: *vtype = SQ_VTEXT; return K_TS;
  case OID_TIMESTAMPTZ: *vtype = SQ_VTEXT; return K_TSTZ;
  default: *vtype = SQ_VTEXT; return K_TEXT;
  }
}

/* Copies the columns just read from a result into the statement, names
 * included, in one block. Without memory it simply keeps nothing. */
static void remember_columns(pg_conn *c, pg_stmt *s) {
  int n = c->ncols;
  size_t names = 0;
  for (int i = 0; i < n; i++) names += c->cols[i].name_len + 1;
  char *block = malloc(sizeof(sq_column) * (size_t)n + (size_t)n + names);
  if (!block) return;
  free(s->cols);
  s->cols = (sq_column *)(void *)block;
  s->kinds = (unsigned char *)(block + sizeof(sq_column) * (size_t)n);
  char *np = (char *)s->kinds + n;
  for (int i = 0; i < n; i++) {
    s->cols[i] = c->cols[i];
    memcpy(np, c->cols[i].name, c->cols[i].name_len + 1);
    s->cols[i].name = np;
    np += c->cols[i].name_len + 1;
    s->kinds[i] = c->kinds[i];
  }
  s->ncols = n;
  s->has_blob = c->has_blob;
}

/* Reads the column metadata of r into the connection's row arrays and
 * hands it to the sink. s, when given, is the cached statement r came
 * from: its remembered columns are used, or filled on its first run. The
 * names then live in s, which stays cached while the result is
 * delivered; cursors pass NULL (their names live in their first result). */
static int setup_columns(pg_conn *c, const PGresult *r, pg_stmt *s, const sq_row_sink *sink,
                         sq_err *err) {
  int n = PQnfields(r);
  if (n > c->col_cap) {
    size_t cap = (size_t)n;
    sq_column *cols = realloc(c->cols, cap * sizeof *cols);
    if (cols) c->cols = cols;
    sq_value *vals = cols ? realloc(c->vals, cap * sizeof *vals) : NULL;
    if (vals) c->vals = vals;
    unsigned char *kinds = vals ? realloc(c->kinds, cap) : NULL;
    if (kinds) c->kinds = kinds;
    char *ts = kinds ? realloc(c->tsbuf, cap * PG_TSLEN) : NULL;
    if (!ts) return nomem(err);
    c->tsbuf = ts;
    c->col_cap = n;
  }
  c->ncols = n;
  if (s && s->ncols == n) {
    memcpy(c->cols, s->cols, sizeof *c->cols * (size_t)n);
    memcpy(c->kinds, s->kinds, (size_t)n);
    c->has_blob = s->has_blob;
  } else {
    c->has_blob = 0;
    for (int i = 0; i < n; i++) {
      int vt;
      c->kinds[i] = (unsigned char)kind_of_oid(PQftype(r, i), &vt);
      c->has_blob |= c->kinds[i] == K_BLOB;
      c->cols[i].name = PQfname(r, i);
      c->cols[i].name_len = strlen(c->cols[i].name);
      c->cols[i].type = vt;
    }
    if (s) remember_columns(c, s);
  }
  if (sink && sink->columns && sink->columns(sink->ud, n, c->cols, err)) return stopped(err);
  return SQ_OK;
}

/* Parses a decimal int64 (the server's own output: no spaces, no locale). */
static int parse_i64(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n) return -1;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (n - i <= 18) { /* cannot overflow: no division per digit */
    for (; i < n; i++) {
      unsigned d = (unsigned)(s[i] - '0');
      if (d > 9) return -1;
      v = v * 10 + d;
    }
  } else {
    for (; i < n; i++) {
      unsigned d = (unsigned)(s[i] - '0');
      if (d > 9 || v > (lim - d) / 10) return -1;
      v = v * 10 + d;
    }
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

/* Parses float4/float8 output, including NaN and the infinities, also
 * when the C locale's decimal point is not '.'. */
static double parse_double(const char *s, size_t n) {
  if (n == 3 && !memcmp(s, "NaN", 3)) return NAN;
  if (n == 8 && !memcmp(s, "Infinity", 8)) return INFINITY;
  if (n == 9 && !memcmp(s, "-Infinity", 9)) return -INFINITY;
  char *end;
  double d = strtod(s, &end);
  if (*end == '.' && n < 64) {
    char dp[8], buf[64];
    snprintf(dp, sizeof dp, "%.1f", 0.5);
    memcpy(buf, s, n + 1);
    buf[end - s] = dp[1];
    d = strtod(buf, NULL);
  }
  return d;
}

static const unsigned char HEXV[256] = {
  ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
  ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
  ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Decodes bytea text output (hex "\x..." or the old escape form) into out,
 * which holds at least n bytes; returns the decoded length. */
static size_t decode_bytea(const char *s, size_t n, unsigned char *out) {
  size_t o = 0;
  if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
    for (size_t i = 2; i + 1 < n; i += 2) {
      unsigned hi = HEXV[(unsigned char)s[i]], lo = HEXV[(unsigned char)s[i + 1]];
      out[o++] = (unsigned char)(((hi - 1) << 4) | (lo - 1));
    }
    return o;
  }
  for (size_t i = 0; i < n;) {
    if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
      out[o++] = '\\';
      i += 2;
    } else if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out[o++] = (unsigned char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
      i += 4;
    } else {
      out[o++] = (unsigned char)s[i++];
    }
  }
  return o;
}

/* Rewrites PostgreSQL's ISO timestamp output into sqorm's form: the
 * fraction, which the server trims, padded to 6 digits, and for
 * timestamptz the "+00" of the UTC session dropped. Other shapes
 * (infinity, other offsets, BC) keep what they cannot lose. Returns the
 * output length, or 0 to use the input as is. */
static size_t normalise_ts(const char *s, size_t n, int tz, char *out) {
  /* The common case, whole seconds without a zone ("...HH:MM:SS" at the
   * end): already in sqorm's form, so no copy. */
  if (!tz && n >= 3 && s[n - 3] == ':') return 0;
  if (n + 8 > PG_TSLEN) return 0;
  const char *sp = memchr(s, ' ', n);
  if (!sp) return 0;
  size_t p = (size_t)(sp - s) + 1;
  if (n - p < 8 || s[p + 2] != ':' || s[p + 5] != ':') return 0;
  p += 8; /* HH:MM:SS */
  size_t o = p;
  memcpy(out, s, p);
  if (p < n && s[p] == '.') {
    size_t k = p + 1, digits = 0;
    out[o++] = '.';
    while (k < n && isdigit((unsigned char)s[k]) && digits < 6) out[o++] = s[k++], digits++;
    while (k < n && isdigit((unsigned char)s[k])) k++;
    while (digits++ < 6) out[o++] = '0';
    p = k;
  }
  if (tz && n - p >= 3 && !memcmp(s + p, "+00", 3) && (n - p == 3 || s[p + 3] == ' ')) p += 3;
  memcpy(out + o, s + p, n - p);
  o += n - p;
  out[o] = '\0';
  return o;
}

/* Decodes row `row` of r into the connection's value array and passes it
 * to the sink. Bytea values of the row share one scratch buffer. */
static int deliver_row(pg_conn *c, const PGresult *r, int row, const sq_row_sink *sink, sq_err *err) {
  if (!sink || !sink->row) return SQ_OK;
  int n = c->ncols;
  if (c->has_blob) {
    size_t blob = 0;
    for (int i = 0; i < n; i++)
      if (c->kinds[i] == K_BLOB) blob += (size_t)PQgetlength(r, row, i); /* 0 for NULL */
    if (blob > c->scratch_cap) {
      char *p = realloc(c->scratch, blob);
      if (!p) return nomem(err);
      c->scratch = p;
      c->scratch_cap = blob;
    }
  }
  size_t boff = 0;
  for (int i = 0; i < n; i++) {
    sq_value *v = &c->vals[i];
    /* A NULL has length 0, so only empty values need the NULL test. */
    size_t len = (size_t)PQgetlength(r, row, i);
    if (len == 0 && PQgetisnull(r, row, i)) {
      *v = sq_null();
      continue;
    }
    const char *s = PQgetvalue(r, row, i);
    switch (c->kinds[i]) {
    case K_INT: {
      int64_t x;
      if (parse_i64(s, len, &x) == 0) *v = sq_int(x);
      else *v = sq_text(s, len);
      break;
    }
    case K_FLOAT: *v = sq_float(parse_double(s, len)); break;
    case K_BOOL: *v = sq_bool(s[0] == 't'); break;
    case K_BLOB: {
      unsigned char *out = (unsigned char *)c->scratch + boff;
      size_t m = decode_bytea(s, len, out);
      *v = sq_blob((const char *)out, m);
      boff += m;
      break;
    }
    case K_TS:
    case K_TSTZ: {
      char *out = c->tsbuf + (size_t)i * PG_TSLEN;
      size_t m = normalise_ts(s, len, c->kinds[i] == K_TSTZ, out);
      *v = m ? sq_text(out, m) : sq_text(s, len);
      break;
    }
    default: *v = sq_text(s, len); break;
    }
  }
  if (sink->row(sink->ud, n, c->vals, err)) return stopped(err);
  return SQ_OK;
}

/* Gives back scratch memory a very large row or parameter left behind,
 * and drops NOTIFY messages (sqorm has no LISTEN API; left queued in libpq
 * they would grow without bound on a connection that LISTENs). */
static void trim_scratch(pg_conn *c) {
  PGnotify *nt;
  while ((nt = PQnotifies(c->pg)) != NULL) PQfreemem(nt);
  if (c->scratch_cap > PG_SCRATCH_KEEP) {
    free(c->scratch);
    c->scratch = NULL;
    c->scratch_cap = 0;
  }
  if (c->p_bufcap > PG_SCRATCH_KEEP) {
    free(c->p_buf);
    c->p_buf = NULL;
    c->p_bufcap = 0;
  }
}

/* ------------------------------------------------------------------ */
/* Connect                                                              */
/* ------------------------------------------------------------------ */

typedef struct kvlist {
  const char *k[48];
  const char *v[48];
  int n;
} kvlist;

/* Sets a libpq keyword, replacing an earlier value of the same keyword. */
static void kv_set(kvlist *kv, const char *k, const char *v) {
  for (int i = 0; i < kv->n; i++)
    if (!strcmp(kv->k[i], k)) {
      kv->v[i] = v;
      return;
    }
  kv->k[kv->n] = k;
  kv->v[kv->n] = v;
  kv->n++;
}

static int file_exists(const char *p) {
  struct stat st;
  return p && stat(p, &st) == 0;
}

/* libpq 15 has no sslrootcert=system: when verification is asked for and
 * no CA is given anywhere, fall back to the system bundle (as PostgreSQL
 * 16's sslrootcert=system does) instead of failing on a missing
 * ~/.postgresql/root.crt. */
static const char *system_ca(void) {
  if (getenv("PGSSLROOTCERT")) return NULL;
  const char *home = getenv("HOME");
  if (home) {
    char p[1024];
    snprintf(p, sizeof p, "%s/.postgresql/root.crt", home);
    if (file_exists(p)) return NULL;
  }
  static const char *const bundles[] = {"/etc/ssl/certs/ca-certificates.crt",
                                        "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"};
  for (size_t i = 0; i < sizeof bundles / sizeof *bundles; i++)
    if (file_exists(bundles[i])) return bundles[i];
  return NULL;
}

/* Classifies a failed connect from libpq's message (no SQLSTATE is
 * available for it): authentication, timeout, or can't connect / TLS. */
static int connect_error(const char *msg, sq_err *err) {
  char buf[1000];
  trim_copy(buf, sizeof buf, msg);
  if (!buf[0]) snprintf(buf, sizeof buf, "postgres: could not connect");
  int kind = SQ_ECONNECTION;
  const char *code = "08001";
  if (strstr(buf, "password authentication failed") || strstr(buf, "no password supplied") ||
      strstr(buf, "SASL authentication failed")) {
    kind = SQ_EAUTH;
    code = "28P01";
  } else if (strstr(buf, "no pg_hba.conf entry") || strstr(buf, "authentication failed")) {
    kind = SQ_EAUTH;
    code = "28000";
  } else if (strstr(buf, "timeout expired")) {
    kind = SQ_ETIMEOUT;
  } else if (strstr(buf, "database \"") && strstr(buf, "does not exist")) {
    kind = SQ_EDATABASE;
    code = "3D000";
  }
  sq_err_set(err, kind, "%s", buf);
  sq_err_native(err, code, code);
  return kind;
}

static pthread_once_t sni_once = PTHREAD_ONCE_INIT;
static int sni_known;

static void sni_probe(void) {
  PQconninfoOption *defs = PQconndefaults();
  for (PQconninfoOption *o = defs; o && o->keyword; o++)
    if (!strcmp(o->keyword, "sslsni")) sni_known = 1;
  PQconninfoFree(defs);
}

/* 1 when this libpq knows the sslsni keyword (14 and later). */
static int libpq_has_sslsni(void) {
  pthread_once(&sni_once, sni_probe);
  return sni_known;
}

/* Validates cfg->params against libpq's keywords. */
static int check_params(const sq_config *cfg, sq_err *err) {
  if (cfg->nparams <= 0) return SQ_OK;
  if (cfg->nparams > 24) return sq_err_set(err, SQ_EUSAGE, "postgres: too many connection parameters");
  PQconninfoOption *defs = PQconndefaults();
  if (!defs) return nomem(err);
  int rc = SQ_OK;
  for (int i = 0; i < cfg->nparams && !rc; i++) {
    const char *k = cfg->params[i].key;
    int found = 0;
    for (PQconninfoOption *o = defs; o->keyword && !found; o++) found = k && !strcmp(o->keyword, k);
    if (!found) {
      rc = sq_err_set(err, SQ_EUSAGE, "postgres: unknown connection parameter \"%s\"", k ? k : "(null)");
    } else if (!strcmp(k, "client_encoding") && cfg->params[i].value &&
               !ci_streq(cfg->params[i].value, "UTF8") && !ci_streq(cfg->params[i].value, "UTF-8")) {
      rc = sq_err_set(err, SQ_EUSAGE, "postgres: client_encoding must be UTF8");
    }
  }
  PQconninfoFree(defs);
  return rc;
}

static void conn_free(pg_conn *c) {
  if (!c) return;
  pthread_mutex_lock(&c->cancel_mu);
  if (c->cancel) PQfreeCancel(c->cancel);
  c->cancel = NULL;
  pthread_mutex_unlock(&c->cancel_mu);
  pthread_mutex_destroy(&c->cancel_mu);
  while (c->lru_head) cache_remove(c, c->lru_head, 0);
  if (c->pg) PQfinish(c->pg);
  free(c->pending);
  free(c->p_oids);
  free(c->p_vals);
  free(c->p_lens);
  free(c->p_fmts);
  free(c->p_buf);
  free(c->cols);
  free(c->vals);
  free(c->kinds);
  free(c->tsbuf);
  free(c->scratch);
  free(c);
}

/* Opens a connection: builds libpq keywords from cfg (TLS mode, files,
 * minimum protocol, timeout, pass-through params), connects, and sets the
 * session to UTC / ISO dates / UTF-8. */
static int pg_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  sq_err_clear(err);
  *out = NULL;
  if (!cfg) return sq_err_set(err, SQ_EUSAGE, "postgres: no configuration");
  int rc = check_params(cfg, err);
  if (rc) return rc;

  const char *minv = NULL;
  if (cfg->ssl.min_version) {
    if (ci_streq(cfg->ssl.min_version, "TLSv1.2")) minv = "TLSv1.2";
    else if (ci_streq(cfg->ssl.min_version, "TLSv1.3")) minv = "TLSv1.3";
    else
      return sq_err_set(err, SQ_EUSAGE, "postgres: unknown ssl.min_version \"%s\" (TLSv1.2 or TLSv1.3)",
                        cfg->ssl.min_version);
  }
  const char *mode;
  switch (cfg->ssl.mode) {
  case SQ_SSL_DISABLE: mode = "disable"; break;
  case SQ_SSL_PREFER: mode = "prefer"; break;
  case SQ_SSL_REQUIRE: mode = "require"; break;
  case SQ_SSL_VERIFY_CA: mode = "verify-ca"; break;
  case SQ_SSL_VERIFY_IDENTITY: mode = "verify-full"; break;
  case SQ_SSL_DEFAULT: mode = cfg->ssl.ca ? "verify-ca" : "prefer"; break;
  default: return sq_err_set(err, SQ_EUSAGE, "postgres: unknown ssl.mode %d", cfg->ssl.mode);
  }

  char port[16], timeout[16];
  snprintf(port, sizeof port, "%d", cfg->port > 0 ? cfg->port : 5432);
  double t = cfg->connect_timeout > 0 ? ceil(cfg->connect_timeout) : 10;
  if (t > 86400) t = 86400;
  snprintf(timeout, sizeof timeout, "%d", (int)t);

  /* Several hosts: libpq's own lists, host=a,b,c port=p,q,r, tried in
   * order (target_session_attrs, a libpq parameter, picks the role). */
  char hostlist[32 * 260], portlist[32 * 8];
  const char *hostv = cfg->host, *portv = port;
  if (cfg->nhosts > 1) {
    size_t ho = 0, po = 0;
    for (int i = 0; i < cfg->nhosts && i < 32; i++) {
      const sq_host *h = &cfg->hosts[i];
      if (!h->host || strchr(h->host, ',') || strlen(h->host) > 255)
        return sq_err_set(err, SQ_EUSAGE, "postgres: host %d of the list is empty, too long or holds a comma", i + 1);
      ho += (size_t)snprintf(hostlist + ho, sizeof hostlist - ho, "%s%s", i ? "," : "", h->host);
      po += (size_t)snprintf(portlist + po, sizeof portlist - po, "%s%d", i ? "," : "",
                             h->port > 0 ? h->port : (cfg->port > 0 ? cfg->port : 5432));
    }
    hostv = hostlist;
    portv = portlist;
  }

  kvlist kv;
  kv.n = 0;
  if (hostv) kv_set(&kv, "host", hostv);
  kv_set(&kv, "port", portv);
  /* TLS server name indication: libpq >= 14 sends it by default, but
   * PGSSLSNI=0 in the environment would turn it off, and Neon's proxy
   * routes by it. A params.sslsni given by the caller still wins. */
  if (libpq_has_sslsni()) kv_set(&kv, "sslsni", "1");
  if (cfg->user) kv_set(&kv, "user", cfg->user);
  if (cfg->password) kv_set(&kv, "password", cfg->password);
  if (cfg->database) kv_set(&kv, "dbname", cfg->database);
  kv_set(&kv, "connect_timeout", timeout);
  kv_set(&kv, "sslmode", mode);
  if (cfg->ssl.ca) kv_set(&kv, "sslrootcert", cfg->ssl.ca);
  if (cfg->ssl.cert) kv_set(&kv, "sslcert", cfg->ssl.cert);
  if (cfg->ssl.key) kv_set(&kv, "sslkey", cfg->ssl.key);
  if (minv) kv_set(&kv, "ssl_min_protocol_version", minv);
  kv_set(&kv, "client_encoding", "UTF8");
  kv_set(&kv, "fallback_application_name", "sqorm");
  for (int i = 0; i < cfg->nparams; i++)
    kv_set(&kv, cfg->params[i].key, cfg->params[i].value ? cfg->params[i].value : "");
  if (!cfg->ssl.ca) {
    const char *m = NULL;
    for (int i = 0; i < kv.n; i++)
      if (!strcmp(kv.k[i], "sslmode")) m = kv.v[i];
    int has_root = 0;
    for (int i = 0; i < kv.n; i++) has_root |= !strcmp(kv.k[i], "sslrootcert");
    if (m && !strncmp(m, "verify-", 7) && !has_root) {
      const char *sys = system_ca();
      if (sys) kv_set(&kv, "sslrootcert", sys);
    }
  }
  kv.k[kv.n] = NULL;
  kv.v[kv.n] = NULL;

  pg_conn *c = calloc(1, sizeof *c);
  if (!c) return nomem(err);
  if (pthread_mutex_init(&c->cancel_mu, NULL) != 0) {
    free(c);
    return sq_err_set(err, SQ_EINTERNAL, "postgres: could not create a lock");
  }
  c->pg = PQconnectdbParams(kv.k, kv.v, 0);
  if (!c->pg) {
    conn_free(c);
    return nomem(err);
  }
  if (PQstatus(c->pg) != CONNECTION_OK) {
    rc = connect_error(PQerrorMessage(c->pg), err);
    conn_free(c);
    return rc;
  }
  PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
  c->pooler = sq_config_pooler_mode(cfg);
  rc = c->pooler ? SQ_OK : simple(c, SESSION_SETUP, err);
  if (rc) {
    conn_free(c);
    return rc;
  }
  c->cancel = PQgetCancel(c->pg); /* NULL only when out of memory: cancel then reports it */
  *out = (sq_dconn *)c;
  return SQ_OK;
}

static void pg_cursor_detach(pg_conn *c);
static void pg_cursor_close(sq_dcursor *dcur);

static void pg_close(sq_dconn *dc) {
  pg_conn *c = (pg_conn *)dc;
  if (!c) return;
  pg_cursor_detach(c);
  conn_free(c);
}

/* An empty query is the cheapest round trip libpq has. */
static int pg_ping(sq_dconn *dc, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  sq_err_clear(err);
  int rc = usable(c, err);
  if (rc) return rc;
  PGresult *r = PQexec(c->pg, "");
  if (r && PQresultStatus(r) == PGRES_EMPTY_QUERY && PQstatus(c->pg) == CONNECTION_OK) {
    PQclear(r);
    return SQ_OK;
  }
  rc = fail(c, r, err);
  PQclear(r);
  if (rc != SQ_ECONNECTION) { /* a ping that fails means the link is unusable */
    c->dead = 1;
    rc = sq_err_set(err, SQ_ECONNECTION, "postgres: ping failed: %s", PQerrorMessage(c->pg));
    sq_err_native(err, "08006", "08006");
  }
  return rc;
}

static int pg_is_dead(sq_dconn *dc) {
  pg_conn *c = (pg_conn *)dc;
  if (!c->dead && PQstatus(c->pg) == CONNECTION_BAD) c->dead = 1;
  return c->dead;
}

/* ------------------------------------------------------------------ */
/* Exec                                                                 */
/* ------------------------------------------------------------------ */

/* Checks the SQL text: libpq takes NUL-terminated strings. */
static int check_sql(const char *sql, size_t len, sq_err *err) {
  if (!sql) return sq_err_set(err, SQ_EUSAGE, "postgres: SQL is NULL");
  if (memchr(sql, '\0', len)) return sq_err_set(err, SQ_EUSAGE, "postgres: SQL contains a NUL byte");
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Pooler mode                                                          */
/* ------------------------------------------------------------------ */

/* 1 when sqorm decodes what the statement returns (or writes values
 * whose text form depends on the session), so it gets the preamble.
 * Anything else goes alone: VACUUM, CREATE INDEX CONCURRENTLY and their
 * kind refuse to run inside a pipeline. */
static int wants_preamble(const char *sql, size_t len) {
  static const char *const words[] = {"SELECT", "WITH",   "VALUES", "TABLE", "INSERT",
                                      "UPDATE", "DELETE", "MERGE",  "FETCH"};
  size_t k;
  const char *w = sq_sql_first_word(SQ_DIALECT_POSTGRES, sql, len, &k);
  for (size_t i = 0; w && i < sizeof words / sizeof *words; i++)
    if (sq_word_is(w, k, words[i])) return 1;
  return 0;
}

/* Leaves pipeline mode: reads what is still pending (the rest of the
 * statement's results, the Sync) and exits. A connection that can't get
 * out is unusable. */
static void pipeline_end(pg_conn *c) {
#ifdef LIBPQ_HAS_PIPELINING
  for (int guard = 0; c->pipeline && guard < 1000000; guard++) {
    if (PQexitPipelineMode(c->pg)) {
      c->pipeline = 0;
      return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) break;
    PGresult *r = PQgetResult(c->pg);
    if (r) {
      int st = PQresultStatus(r);
      PQclear(r);
      if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) break;
    }
  }
  c->pipeline = 0;
  c->dead = 1;
#else
  c->pipeline = 0;
#endif
}

/*
 * Sends one statement in pooler mode (the parameters are encoded) and
 * returns its first result: the whole result, or with single_row the
 * first row (PGRES_SINGLE_TUPLE) of a single-row-mode read, whose further
 * results the caller reads (and then drains, which ends the pipeline).
 * NULL with err set when nothing could be sent. A failure of the
 * preamble (e.g. 25P02 in an aborted transaction) is returned as the
 * statement's result: the statement itself did not run.
 */
static PGresult *pooler_start(pg_conn *c, const char *sql, size_t len, int n, int single_row, sq_err *err) {
  int pre = wants_preamble(sql, len);
#ifndef LIBPQ_HAS_PIPELINING
  pre = 0;
#endif
  if (!pre) {
    if (!single_row) return PQexecParams(c->pg, sql, n, c->p_oids, c->p_vals, c->p_lens, c->p_fmts, 0);
    if (!PQsendQueryParams(c->pg, sql, n, c->p_oids, c->p_vals, c->p_lens, c->p_fmts, 0)) {
      fail(c, NULL, err);
      return NULL;
    }
    PQsetSingleRowMode(c->pg);
    return PQgetResult(c->pg);
  }
#ifdef LIBPQ_HAS_PIPELINING
  if (!PQenterPipelineMode(c->pg)) {
    fail(c, NULL, err);
    return NULL;
  }
  c->pipeline = 1;
  if (!PQsendQueryParams(c->pg, POOLER_PREAMBLE, 0, NULL, NULL, NULL, NULL, 0) ||
      !PQsendQueryParams(c->pg, sql, n, c->p_oids, c->p_vals, c->p_lens, c->p_fmts, 0) ||
      !PQpipelineSync(c->pg)) {
    fail(c, NULL, err);
    pipeline_end(c);
    return NULL;
  }
  PGresult *r0 = PQgetResult(c->pg), *x;
  if (!r0) { /* no answer at all: the link is gone */
    fail(c, NULL, err);
    pipeline_end(c);
    return NULL;
  }
  int ok0 = PQresultStatus(r0) == PGRES_TUPLES_OK;
  while ((x = PQgetResult(c->pg)) != NULL) PQclear(x); /* the end of the preamble's results */
  if (!ok0) { /* the statement was skipped (PGRES_PIPELINE_ABORTED): report why */
    pipeline_end(c);
    return r0;
  }
  PQclear(r0);
  if (single_row && !PQsetSingleRowMode(c->pg)) {
    pipeline_end(c);
    c->dead = 1; /* an unknown state: don't reuse it */
    sq_err_set(err, SQ_EINTERNAL, "postgres: could not enter single-row mode in a pipeline");
    return NULL;
  }
  PGresult *r = PQgetResult(c->pg);
  if (!single_row) pipeline_end(c);
  return r;
#else
  return NULL;
#endif
}

/* Executes through the statement cache, retrying once when the cached
 * statement turned out stale. Returns a result (maybe a failed one) or
 * NULL with err set; *sp is the statement behind a successful result, else
 * NULL (a failure may have dropped it from the cache). */
static PGresult *exec_cached(pg_conn *c, const char *sql, size_t len, int n, pg_stmt **sp,
                             sq_err *err) {
  *sp = NULL;
  for (int attempt = 0;; attempt++) {
    pg_stmt *s = cache_get(c, sql, len, n, err);
    if (!s) return NULL;
    PGresult *r = PQexecPrepared(c->pg, s->name, n, c->p_vals, c->p_lens, c->p_fmts, 0);
    int st = r ? (int)PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (attempt == 0 && st == PGRES_FATAL_ERROR && r && repair_stale(c, s, r)) {
      PQclear(r);
      continue;
    }
    if (st == PGRES_TUPLES_OK) *sp = s;
    return r;
  }
}

/* Turns a finished result into sink calls and sq_result fields. */
static int consume_result(pg_conn *c, PGresult *r, pg_stmt *s, const sq_row_sink *sink,
                          sq_result *res, sq_err *err) {
  int st = r ? (int)PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    end_copy(c, st);
    return sq_err_set(err, SQ_EUSAGE, "postgres: COPY is not supported");
  }
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
    return fail(c, r, err);
  const char *tag = PQcmdStatus(r);
  const char *n = PQcmdTuples(r);
  if (n && *n && !(st == PGRES_TUPLES_OK && tag && (!strncmp(tag, "SELECT", 6) || !strncmp(tag, "FETCH", 5)))) {
    int64_t a;
    if (parse_i64(n, strlen(n), &a) == 0) res->affected_rows = a;
  }
  if (after_command(c, r)) s = NULL;
  if (st != PGRES_TUPLES_OK) return SQ_OK;
  res->has_result_set = 1;
  int rc = setup_columns(c, r, s, sink, err);
  if (rc) return rc;
  int rows = PQntuples(r);
  for (int i = 0; i < rows; i++) {
    rc = deliver_row(c, r, i, sink, err);
    if (rc) return rc;
    res->rows++;
  }
  return SQ_OK;
}

/* Runs one statement with bound values, through the prepared-statement
 * cache. The extended protocol never runs a second statement: a text
 * holding several fails to prepare (the core refuses it before that). */
static int pg_exec(sq_dconn *dc, const char *sql, size_t len, const sq_value *params, int nparams,
                   const sq_row_sink *sink, sq_result *res, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  sq_result dummy;
  if (!res) res = &dummy;
  res->affected_rows = -1;
  res->last_insert_id = 0;
  res->rows = 0;
  res->has_result_set = 0;
  sq_err_clear(err);
  int rc = usable(c, err);
  if (!rc && c->tx_lost) rc = tx_lost_error(c, err);
  if (!rc) rc = check_sql(sql, len, err);
  if (!rc) rc = encode_params(c, params, nparams, err);
  if (rc) return rc;
  PGresult *r;
  pg_stmt *s = NULL;
  if (c->pooler) r = pooler_start(c, sql, len, nparams, 0, err); /* unnamed: one statement too */
  else r = exec_cached(c, sql, len, nparams, &s, err); /* a prepared statement is one statement */
  if (!r && err->kind != SQ_OK) rc = err->kind;
  else rc = consume_result(c, r, s, sink, res, err);
  PQclear(r);
  trim_scratch(c);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Cursors                                                              */
/* ------------------------------------------------------------------ */

/* Reads and drops results until the statement is complete. After a few
 * hundred rows, a cancellable statement is cancelled so the server stops
 * producing rows nobody will read. */
static void drain(pg_conn *c, int cancellable) {
  PGresult *r;
  int n = 0;
  while ((r = PQgetResult(c->pg)) != NULL) {
    int st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      end_copy(c, st);
      break;
    }
    if (++n == PG_DRAIN_BEFORE_CANCEL && cancellable) {
      PGcancel *cn = PQgetCancel(c->pg);
      if (cn) {
        char ebuf[256];
        PQcancel(cn, ebuf, sizeof ebuf);
        PQfreeCancel(cn);
      }
    }
  }
  if (c->pipeline) pipeline_end(c);
  if (PQstatus(c->pg) == CONNECTION_BAD) c->dead = 1;
}

/* Sends the statement in single-row mode and reads its first result. */
static PGresult *cursor_start(pg_conn *c, const char *sql, size_t len, int n, sq_err *err) {
  if (c->pooler) {
    PGresult *r = pooler_start(c, sql, len, n, 1, err);
    if (r && PQresultStatus(r) == PGRES_FATAL_ERROR) drain(c, 0);
    return r;
  }
  for (int attempt = 0;; attempt++) {
    pg_stmt *s = cache_get(c, sql, len, n, err);
    if (!s) return NULL;
    if (!PQsendQueryPrepared(c->pg, s->name, n, c->p_vals, c->p_lens, c->p_fmts, 0)) {
      fail(c, NULL, err);
      return NULL;
    }
    PQsetSingleRowMode(c->pg);
    PGresult *r = PQgetResult(c->pg);
    if (r && PQresultStatus(r) == PGRES_FATAL_ERROR) {
      drain(c, 0);
      if (attempt == 0 && repair_stale(c, s, r)) {
        PQclear(r);
        continue;
      }
    }
    return r;
  }
}

static int pg_cursor_open(sq_dconn *dc, const char *sql, size_t len, const sq_value *params,
                          int nparams, const sq_row_sink *sink, sq_dcursor **out, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  *out = NULL;
  sq_err_clear(err);
  int rc = usable(c, err);
  if (!rc && c->tx_lost) rc = tx_lost_error(c, err);
  if (!rc) rc = check_sql(sql, len, err);
  if (!rc) rc = encode_params(c, params, nparams, err);
  if (rc) return rc;
  pg_cursor *cur = calloc(1, sizeof *cur);
  if (!cur) return nomem(err);
  cur->c = c;
  cur->sink = sink;
  cur->in_tx = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
  cur->cancellable = !cur->in_tx && read_only_statement(sql, len);
  PGresult *r = cursor_start(c, sql, len, nparams, err);
  if (!r) {
    if (err->kind == SQ_OK) fail(c, NULL, err);
    free(cur);
    return err->kind;
  }
  int st = PQresultStatus(r);
  if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    PQclear(r);
    end_copy(c, st);
    free(cur);
    return sq_err_set(err, SQ_EUSAGE, "postgres: COPY is not supported");
  }
  if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK &&
      st != PGRES_EMPTY_QUERY) {
    rc = fail(c, r, err);
    PQclear(r);
    drain(c, 0);
    free(cur);
    return rc;
  }
  cur->meta = r;
  c->cursor = cur;
  if (st == PGRES_SINGLE_TUPLE) {
    cur->meta_row = 1;
  } else {
    drain(c, 0); /* the statement is complete */
    cur->done = 1;
  }
  if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
    rc = setup_columns(c, r, NULL, sink, err);
    if (rc) { /* the caller gets a cursor only on success */
      pg_cursor_close((sq_dcursor *)cur);
      return rc;
    }
  }
  *out = (sq_dcursor *)cur;
  return SQ_OK;
}

static int pg_cursor_fetch(sq_dcursor *dcur, int *has_row, sq_err *err) {
  pg_cursor *cur = (pg_cursor *)dcur;
  *has_row = 0;
  sq_err_clear(err);
  if (!cur->c) return sq_err_set(err, SQ_ECLOSED, "postgres: the connection of this cursor is closed");
  pg_conn *c = cur->c;
  if (cur->meta_row) {
    cur->meta_row = 0;
    int rc = deliver_row(c, cur->meta, 0, cur->sink, err);
    if (rc) return rc;
    *has_row = 1;
    return SQ_OK;
  }
  if (cur->done) return SQ_OK;
  PGresult *r = PQgetResult(c->pg);
  int st = r ? (int)PQresultStatus(r) : -1;
  if (st == PGRES_SINGLE_TUPLE) {
    int rc = deliver_row(c, r, 0, cur->sink, err);
    PQclear(r);
    if (rc) return rc;
    *has_row = 1;
    return SQ_OK;
  }
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == -1) {
    PQclear(r);
    if (st != -1) drain(c, 0);
    else if (c->pipeline) pipeline_end(c);
    cur->done = 1;
    if (PQstatus(c->pg) == CONNECTION_BAD) return lost(c, NULL, err);
    return SQ_OK;
  }
  int rc = fail(c, r, err);
  PQclear(r);
  drain(c, 0);
  cur->done = 1;
  return rc;
}

/* Closes a cursor at any point: unread rows are drained (cancelling the
 * statement first when safe), so the connection can run the next one. */
static void pg_cursor_close(sq_dcursor *dcur) {
  pg_cursor *cur = (pg_cursor *)dcur;
  if (!cur) return;
  pg_conn *c = cur->c;
  if (c) {
    if (!cur->done && !c->dead) drain(c, cur->cancellable);
    c->cursor = NULL;
    trim_scratch(c);
  }
  PQclear(cur->meta);
  free(cur);
}

/* Called when the connection closes under an open cursor: the cursor
 * keeps its own memory until cursor_close, but forgets the connection. */
static void pg_cursor_detach(pg_conn *c) {
  if (c->cursor) {
    c->cursor->c = NULL;
    c->cursor = NULL;
  }
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

static int pg_begin(sq_dconn *dc, int isolation, sq_err *err) {
  static const char *const sql[] = {
    [SQ_ISO_DEFAULT] = "BEGIN",
    [SQ_ISO_READ_UNCOMMITTED] = "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
    [SQ_ISO_READ_COMMITTED] = "BEGIN ISOLATION LEVEL READ COMMITTED",
    [SQ_ISO_REPEATABLE_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ",
    [SQ_ISO_SERIALIZABLE] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
  };
  pg_conn *c = (pg_conn *)dc;
  sq_err_clear(err);
  if (isolation < 0 || isolation > SQ_ISO_SERIALIZABLE)
    return sq_err_set(err, SQ_EUSAGE, "postgres: unknown isolation level %d", isolation);
  if (c->tx_lost) return sq_err_set(err, SQ_EUSAGE, "postgres: a transaction is still open (roll it back first)");
  int rc = simple(c, sql[isolation], err);
  if (!rc) c->tx_open = 1;
  return rc;
}

/* COMMIT of a transaction that had failed "succeeds" with the tag ROLLBACK;
 * that must not look like a commit to the caller. */
static int pg_commit(sq_dconn *dc, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  sq_err_clear(err);
  int rc = usable(c, err);
  if (rc) return rc;
  if (c->tx_lost) return tx_lost_error(c, err);
  PGresult *r = PQexec(c->pg, "COMMIT");
  if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
    int rolled_back = !strcmp(PQcmdStatus(r), "ROLLBACK");
    PQclear(r);
    c->tx_open = 0;
    if (rolled_back) {
      sq_err_set(err, SQ_EDATABASE, "current transaction was aborted: COMMIT rolled it back");
      sq_err_native(err, "25P02", "25P02");
      return SQ_EDATABASE;
    }
    return SQ_OK;
  }
  rc = fail(c, r, err);
  PQclear(r);
  return rc;
}

static int pg_rollback(sq_dconn *dc, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  sq_err_clear(err);
  int rc = simple(c, "ROLLBACK", err);
  c->tx_open = c->tx_lost = 0;
  return rc;
}

/* Savepoint names come validated from the core; checked again here
 * because they are spliced into SQL. */
static int sp_command(pg_conn *c, const char *verb, const char *name, sq_err *err) {
  sq_err_clear(err);
  size_t n = name ? strlen(name) : 0;
  int ok = n > 0 && n < 64 && (isalpha((unsigned char)name[0]) || name[0] == '_');
  for (size_t i = 0; ok && i < n; i++) ok = isalnum((unsigned char)name[i]) || name[i] == '_';
  if (!ok) return sq_err_set(err, SQ_EUSAGE, "postgres: invalid savepoint name");
  if (c->tx_lost) return tx_lost_error(c, err);
  char sql[128];
  snprintf(sql, sizeof sql, "%s %s", verb, name);
  return simple(c, sql, err);
}

static int pg_savepoint(sq_dconn *dc, const char *name, sq_err *err) {
  return sp_command((pg_conn *)dc, "SAVEPOINT", name, err);
}

static int pg_release(sq_dconn *dc, const char *name, sq_err *err) {
  return sp_command((pg_conn *)dc, "RELEASE SAVEPOINT", name, err);
}

static int pg_rollback_to(sq_dconn *dc, const char *name, sq_err *err) {
  return sp_command((pg_conn *)dc, "ROLLBACK TO SAVEPOINT", name, err);
}

static int pg_in_transaction(sq_dconn *dc) {
  pg_conn *c = (pg_conn *)dc;
  if (c->dead) return 0;
  if (c->tx_lost) return 1;
  switch (PQtransactionStatus(c->pg)) {
  case PQTRANS_INTRANS:
  case PQTRANS_INERROR: return 1;
  case PQTRANS_ACTIVE: return c->cursor ? c->cursor->in_tx : 0;
  default: return 0;
  }
}

/* Makes the connection clean for its next user: closes a forgotten
 * cursor's statement, rolls back an open or failed transaction, and frees
 * evicted statements. No reconnect, at most one round trip usually.
 * full = 1 also restores the session as open left it: DISCARD ALL (every
 * SET and SET ROLE / SESSION AUTHORIZATION undone, temporary tables,
 * advisory locks, LISTENs, holdable cursors and prepared statements
 * dropped: so the statement cache is forgotten), then the open's session
 * settings again. Two more round trips: DISCARD ALL can't share a
 * transaction block with them. */
static int pg_reset(sq_dconn *dc, int full, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  sq_err_clear(err);
  if (c->cursor) {
    pg_cursor *cur = c->cursor;
    if (!cur->done && !c->dead) drain(c, cur->cancellable);
    cur->done = 1;
    cur->meta_row = 0;
    pg_cursor_detach(c);
  }
  int rc = usable(c, err);
  if (rc) return rc;
  PGTransactionStatusType ts = PQtransactionStatus(c->pg);
  if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
    rc = simple(c, "ROLLBACK", err);
    if (rc) return rc;
  } else if (ts != PQTRANS_IDLE) {
    c->dead = 1;
    sq_err_set(err, SQ_ECONNECTION, "postgres: connection in an unknown state");
    sq_err_native(err, "08006", "08006");
    return SQ_ECONNECTION;
  }
  if (full) {
    rc = simple(c, "DISCARD ALL", err);
    cache_forget_all(c); /* gone on the server, or the connection goes */
    if (!rc && !c->pooler) rc = simple(c, SESSION_SETUP, err);
    if (rc) return rc;
  }
  flush_pending(c);
  trim_scratch(c);
  return SQ_OK;
}

/* The pool's reset (pg_reset) rolls back whatever is open, a transaction
 * ended by a deadlock included, which is then forgotten. */
static int pg_reset_conn(sq_dconn *dc, int full, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  int rc = pg_reset(dc, full, err);
  c->tx_open = c->tx_lost = 0;
  return rc;
}

/* The settings the open made, as the server reports them (ParameterStatus,
 * no round trip): a difference means the session was changed (e.g. by a
 * function calling set_config), so the pool runs a full reset. */
static int pg_needs_reset(sq_dconn *dc) {
  pg_conn *c = (pg_conn *)dc;
  if (c->dead || c->pooler) return 0; /* pooler mode: no session settings of ours to keep */
  const char *tz = PQparameterStatus(c->pg, "TimeZone");
  const char *ds = PQparameterStatus(c->pg, "DateStyle");
  return (tz && strcmp(tz, "UTC") != 0) || (ds && strcmp(ds, "ISO, MDY") != 0);
}

/* Called from another thread while a statement runs (see sq_driver.cancel):
 * PQcancel asks the postmaster to interrupt this backend's statement,
 * which then fails with 57014 (query_canceled). An idle backend ignores
 * the request, so it never hits a later statement. */
static int pg_cancel(sq_dconn *dc, sq_err *err) {
  pg_conn *c = (pg_conn *)dc;
  char buf[256] = "";
  int ok = 0;
  pthread_mutex_lock(&c->cancel_mu);
  if (c->cancel) ok = PQcancel(c->cancel, buf, sizeof buf);
  else snprintf(buf, sizeof buf, "no cancel handle (out of memory at connect)");
  pthread_mutex_unlock(&c->cancel_mu);
  if (ok) {
    sq_err_clear(err);
    return SQ_OK;
  }
  char msg[256];
  trim_copy(msg, sizeof msg, buf);
  sq_err_set(err, SQ_ECONNECTION, "postgres: cancel request failed: %s", msg[0] ? msg : "unknown error");
  return SQ_ECONNECTION;
}

/* Nothing in flight: no cursor, no command running, a known state. */
static int pg_is_clean(sq_dconn *dc) {
  pg_conn *c = (pg_conn *)dc;
  if (c->dead || c->cursor || PQstatus(c->pg) != CONNECTION_OK) return 0;
  PGTransactionStatusType ts = PQtransactionStatus(c->pg);
  return ts == PQTRANS_IDLE || ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

static const char *pg_server_version(sq_dconn *dc) {
  pg_conn *c = (pg_conn *)dc;
  const char *v = PQparameterStatus(c->pg, "server_version");
  return v ? v : "";
}

const sq_driver sq_driver_postgres = {
  .name = "postgres",
  .dialect = SQ_DIALECT_POSTGRES,
  .ph_style = SQ_PH_DOLLAR,
  .open = pg_open,
  .close = pg_close,
  .ping = pg_ping,
  .is_dead = pg_is_dead,
  .exec = pg_exec,
  .cursor_open = pg_cursor_open,
  .cursor_fetch = pg_cursor_fetch,
  .cursor_close = pg_cursor_close,
  .begin = pg_begin,
  .commit = pg_commit,
  .rollback = pg_rollback,
  .savepoint = pg_savepoint,
  .release = pg_release,
  .rollback_to = pg_rollback_to,
  .in_transaction = pg_in_transaction,
  .reset = pg_reset_conn,
  .needs_reset = pg_needs_reset,
  .server_version = pg_server_version,
  .cancel = pg_cancel,
  .is_clean = pg_is_clean,
};
