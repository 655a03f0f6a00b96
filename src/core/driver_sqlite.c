/*
 * driver_sqlite.c - the SQLite driver (libsqlite3) behind sq_driver.
 *
 * A connection is one sqlite3 handle opened with SQLITE_OPEN_NOMUTEX: an
 * sq_conn has one owner at a time, so SQLite's per-connection mutex would
 * only cost time. Storage is cfg->storage, a file path or ":memory:".
 *
 * Memory databases: every sqlite3_open_v2(":memory:") creates a new, empty,
 * private database. Two pooled connections to ":memory:" would therefore
 * see two different databases; the core caps the pool at one connection
 * for memory storage. This driver does nothing about it on purpose. A
 * memory database that several connections share is asked for with
 * cache=shared (":memory:", a mode=memory name, or a "file:" URI such as
 * "file::memory:?cache=shared"); see open_name.
 *
 * URIs are off (a '?' in a path is part of the file name), except for
 * storage that starts with "file:" and for the shared-memory forms above.
 *
 * Statements arrive with ? placeholders. exec binds values with
 * SQLITE_STATIC: they are the caller's and valid until exec returns, so no
 * copy is made, not even of a 1 GiB blob; bindings are cleared
 * (sqlite3_clear_bindings) before exec returns, so a cached statement
 * never keeps a pointer into caller memory. A cursor binds with
 * SQLITE_TRANSIENT (one copy per cursor, not per row): SQLite reads bound
 * values again on every step, and sqorm.h promises only that the sink,
 * not the values, outlives cursor_open.
 *
 * Prepared statements are kept in a per-connection LRU cache of CACHE_MAX
 * entries keyed by the exact SQL text. A string holding several
 * statements ("CREATE ...; INSERT ...") runs them in turn when no values
 * are bound, and is never cached.
 *
 * Errors: err->code is the symbolic name of SQLite's extended result code
 * ("SQLITE_CONSTRAINT_UNIQUE"). SQLite has no SQLSTATE; err->sqlstate is
 * filled only where the extended code identifies the condition exactly
 * (the integrity-constraint codes, see sqlstate_for), and is "" otherwise.
 * A locked database is SQ_ETIMEOUT after the busy timeout was waited out,
 * and SQ_EDEADLOCK when waiting could never help (see lock_kind).
 *
 * Every connection runs with double-quoted string literals off (DQS, for
 * DML and DDL): "x" is always an identifier, so a misspelt or missing
 * column is an error instead of the string 'x'.
 *
 * DECIMAL: SQLite would turn decimal text into an IEEE double, so sqorm
 * declares DECIMAL columns with TEXT affinity ("DECIMAL TEXT(p,s)", see
 * ddl.c) and registers on every connection the exact collation and
 * functions of decimal.c (names in internal.h), which the renderer writes
 * for DECIMAL columns. The collation is named in each rendered statement
 * (x COLLATE sqorm_decimal), never declared on the column: a declared
 * custom collation would make every other tool (the sqlite3 shell, a
 * backup script) fail on an ORDER BY, an index on the column or even an
 * INSERT into an indexed table ("no such collation sequence"), while the
 * plain text values stay readable by anything.
 */
#include "sqorm.h"
#include "internal.h"

#include <sqlite3.h>

#include <limits.h>
#include <pthread.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if SQLITE_VERSION_NUMBER < 3037000
#error "driver_sqlite.c needs SQLite 3.37 or newer (sqlite3_changes64)"
#endif

#define CACHE_MAX 64          /* prepared statements kept per connection */
#define STACK_COLS 16         /* result columns handled without malloc */
#define DEFAULT_BUSY_MS 5000  /* busy timeout when connect_timeout is 0 */

/* Classes of declared column types whose values get converted. */
enum { CLS_NONE = 0, CLS_BOOL, CLS_DATETIME, CLS_DATE, CLS_DECIMAL };

/* Where an error happened: it decides SQLITE_ERROR's kind. */
enum { PH_PREPARE, PH_STEP };

/* Cursor states. */
enum { CUR_PENDING, CUR_STEP, CUR_DONE, CUR_FAILED, CUR_DETACHED };

typedef struct lite_cursor lite_cursor;

/* A result column as the sink sees it plus its conversion class. */
typedef struct colmeta {
  sq_column col;
  unsigned char cls;
} colmeta;

/* One cached prepared statement; sql[] holds the len bytes of its key.
 * meta remembers the result columns (names, declared-type classes) read
 * on an earlier run, so a cached statement does not look up and classify
 * every column's name and declared type again on each execution; it is
 * valid while the statement has not been re-prepared (schema change),
 * which SQLITE_STMTSTATUS_REPREPARE counts. */
typedef struct cache_ent {
  struct cache_ent *prev, *next; /* LRU list, most recently used first */
  sqlite3_stmt *stmt;
  uint64_t hash;
  size_t len;
  int busy;                      /* in use by exec or a cursor */
  colmeta *meta;                 /* meta_n entries, or NULL */
  int meta_n;
  int meta_reprep;               /* the statement's REPREPARE count for meta */
  char sql[];
} cache_ent;

typedef struct lite_conn {
  sqlite3 *db;
  cache_ent *head, *tail;
  int ncached;
  int dead;                /* saw IOERR / CORRUPT / NOTADB */
  lite_cursor *cursor;     /* the open cursor, if any */
  int in_tx;               /* a transaction was open when the last step or prepare began */
  int had_read;            /* ... and it held a read snapshot, but no write lock */
  char version[64];
  int busy_ms;             /* how long a locked database is waited for (full reset restores it) */
  atomic_int interrupted;  /* lite_cancel: stop waiting for locks too */
} lite_conn;

/* A statement in use: ent is its cache entry, or NULL when it is owned by
 * the call (finalized on release). */
typedef struct run {
  sqlite3_stmt *stmt;
  cache_ent *ent;
} run;

/* Per-column conversion state; buf holds a converted value's text for the
 * duration of one row callback. */
typedef struct colslot {
  unsigned char cls;
  char buf[48];
} colslot;

/* The column and value arrays handed to a sink. Small results use the
 * inline arrays; wider ones are malloc'd. */
typedef struct rowbuf {
  int ncols;
  sq_column *cols;
  sq_value *vals;
  colslot *slots;
  void *heap;
  sq_column scols[STACK_COLS];
  sq_value svals[STACK_COLS];
  colslot sslots[STACK_COLS];
} rowbuf;

struct lite_cursor {
  lite_conn *lc;             /* NULL once detached by close/reset */
  run r;
  const sq_row_sink *sink;
  int state;
  rowbuf rb;
};

int sq_sqlite_cached_count(sq_dconn *c);
int sq_sqlite_busy_ms(sq_dconn *c);

/* ------------------------------------------------------------------ */
/* Error mapping                                                        */
/* ------------------------------------------------------------------ */

#define N(x) { x, #x }
static const struct { int code; const char *name; } code_names[] = {
  N(SQLITE_OK), N(SQLITE_ERROR), N(SQLITE_INTERNAL), N(SQLITE_PERM),
  N(SQLITE_ABORT), N(SQLITE_BUSY), N(SQLITE_LOCKED), N(SQLITE_NOMEM),
  N(SQLITE_READONLY), N(SQLITE_INTERRUPT), N(SQLITE_IOERR), N(SQLITE_CORRUPT),
  N(SQLITE_NOTFOUND), N(SQLITE_FULL), N(SQLITE_CANTOPEN), N(SQLITE_PROTOCOL),
  N(SQLITE_EMPTY), N(SQLITE_SCHEMA), N(SQLITE_TOOBIG), N(SQLITE_CONSTRAINT),
  N(SQLITE_MISMATCH), N(SQLITE_MISUSE), N(SQLITE_NOLFS), N(SQLITE_AUTH),
  N(SQLITE_FORMAT), N(SQLITE_RANGE), N(SQLITE_NOTADB), N(SQLITE_NOTICE),
  N(SQLITE_WARNING), N(SQLITE_ROW), N(SQLITE_DONE),
  N(SQLITE_ERROR_MISSING_COLLSEQ), N(SQLITE_ERROR_RETRY),
  N(SQLITE_ERROR_SNAPSHOT), N(SQLITE_IOERR_READ), N(SQLITE_IOERR_SHORT_READ),
  N(SQLITE_IOERR_WRITE), N(SQLITE_IOERR_FSYNC), N(SQLITE_IOERR_DIR_FSYNC),
  N(SQLITE_IOERR_TRUNCATE), N(SQLITE_IOERR_FSTAT), N(SQLITE_IOERR_UNLOCK),
  N(SQLITE_IOERR_RDLOCK), N(SQLITE_IOERR_DELETE), N(SQLITE_IOERR_BLOCKED),
  N(SQLITE_IOERR_NOMEM), N(SQLITE_IOERR_ACCESS),
  N(SQLITE_IOERR_CHECKRESERVEDLOCK), N(SQLITE_IOERR_LOCK),
  N(SQLITE_IOERR_CLOSE), N(SQLITE_IOERR_DIR_CLOSE), N(SQLITE_IOERR_SHMOPEN),
  N(SQLITE_IOERR_SHMSIZE), N(SQLITE_IOERR_SHMLOCK), N(SQLITE_IOERR_SHMMAP),
  N(SQLITE_IOERR_SEEK), N(SQLITE_IOERR_DELETE_NOENT), N(SQLITE_IOERR_MMAP),
  N(SQLITE_IOERR_GETTEMPPATH), N(SQLITE_IOERR_CONVPATH),
  N(SQLITE_IOERR_VNODE), N(SQLITE_IOERR_AUTH), N(SQLITE_IOERR_BEGIN_ATOMIC),
  N(SQLITE_IOERR_COMMIT_ATOMIC), N(SQLITE_IOERR_ROLLBACK_ATOMIC),
  N(SQLITE_IOERR_DATA), N(SQLITE_IOERR_CORRUPTFS),
  N(SQLITE_LOCKED_SHAREDCACHE), N(SQLITE_LOCKED_VTAB),
  N(SQLITE_BUSY_RECOVERY), N(SQLITE_BUSY_SNAPSHOT), N(SQLITE_BUSY_TIMEOUT),
  N(SQLITE_CANTOPEN_NOTEMPDIR), N(SQLITE_CANTOPEN_ISDIR),
  N(SQLITE_CANTOPEN_FULLPATH), N(SQLITE_CANTOPEN_CONVPATH),
  N(SQLITE_CANTOPEN_DIRTYWAL), N(SQLITE_CANTOPEN_SYMLINK),
  N(SQLITE_CORRUPT_VTAB), N(SQLITE_CORRUPT_SEQUENCE), N(SQLITE_CORRUPT_INDEX),
  N(SQLITE_READONLY_RECOVERY), N(SQLITE_READONLY_CANTLOCK),
  N(SQLITE_READONLY_ROLLBACK), N(SQLITE_READONLY_DBMOVED),
  N(SQLITE_READONLY_CANTINIT), N(SQLITE_READONLY_DIRECTORY),
  N(SQLITE_ABORT_ROLLBACK), N(SQLITE_CONSTRAINT_CHECK),
  N(SQLITE_CONSTRAINT_COMMITHOOK), N(SQLITE_CONSTRAINT_FOREIGNKEY),
  N(SQLITE_CONSTRAINT_FUNCTION), N(SQLITE_CONSTRAINT_NOTNULL),
  N(SQLITE_CONSTRAINT_PRIMARYKEY), N(SQLITE_CONSTRAINT_TRIGGER),
  N(SQLITE_CONSTRAINT_UNIQUE), N(SQLITE_CONSTRAINT_VTAB),
  N(SQLITE_CONSTRAINT_ROWID), N(SQLITE_CONSTRAINT_PINNED),
  N(SQLITE_CONSTRAINT_DATATYPE), N(SQLITE_NOTICE_RECOVER_WAL),
  N(SQLITE_NOTICE_RECOVER_ROLLBACK), N(SQLITE_WARNING_AUTOINDEX),
  N(SQLITE_AUTH_USER),
};
#undef N

/*
 * The symbolic name of a result code. sqlite3_errstr gives prose, but
 * err->code must be stable and greppable; an extended code this table
 * does not know (a newer library) falls back to its primary code's name.
 */
static const char *code_name(int code, char *buf, size_t cap) {
  size_t n = sizeof code_names / sizeof code_names[0];
  for (size_t i = 0; i < n; i++)
    if (code_names[i].code == code) return code_names[i].name;
  for (size_t i = 0; i < n; i++)
    if (code_names[i].code == (code & 0xff)) return code_names[i].name;
  snprintf(buf, cap, "SQLITE_%d", code);
  return buf;
}

/*
 * SQLSTATEs for the codes that identify the condition without doubt (the
 * PostgreSQL values, which the other drivers report too). A plain
 * SQLITE_ERROR covers syntax errors, unknown tables and much else, so it
 * gets none rather than a guess.
 */
static const char *sqlstate_for(int ext) {
  switch (ext) {
  case SQLITE_CONSTRAINT_UNIQUE:
  case SQLITE_CONSTRAINT_PRIMARYKEY: return "23505";
  case SQLITE_CONSTRAINT_NOTNULL: return "23502";
  case SQLITE_CONSTRAINT_FOREIGNKEY: return "23503";
  case SQLITE_CONSTRAINT_CHECK: return "23514";
  default: return "";
  }
}

/*
 * Maps a result code to an sq_kind. A plain SQLITE_ERROR from prepare is
 * the SQL's fault (syntax, unknown table or column); from step it is
 * usually a run-time failure, except when a cached statement is
 * re-prepared after a schema change and the table or column is gone, which
 * must read the same as at prepare time.
 */
static int kind_for(int ext, int phase, const char *msg) {
  switch (ext & 0xff) {
  case SQLITE_CONSTRAINT:
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
      return SQ_EUNIQUE;
    return SQ_ECONSTRAINT;
  case SQLITE_ERROR:
    if (phase == PH_PREPARE) return SQ_ESYNTAX;
    if (msg && (strncmp(msg, "no such table", 13) == 0 ||
                strncmp(msg, "no such column", 14) == 0 ||
                strstr(msg, "syntax error") != NULL))
      return SQ_ESYNTAX;
    return SQ_EDATABASE;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return SQ_ETIMEOUT; /* refined by lock_kind */
  case SQLITE_IOERR:
    if (ext == SQLITE_IOERR_NOMEM) return SQ_ENOMEM;
    return SQ_ECONNECTION;
  case SQLITE_CANTOPEN:
  case SQLITE_NOTADB: return SQ_ECONNECTION;
  case SQLITE_TOOBIG:
  case SQLITE_RANGE: return SQ_EUSAGE;
  case SQLITE_NOMEM: return SQ_ENOMEM;
  case SQLITE_MISUSE: return SQ_EINTERNAL;
  default: return SQ_EDATABASE;
  }
}

/*
 * The kind of a SQLITE_BUSY / SQLITE_LOCKED failure (-1 for other codes),
 * and what to add to its message. SQ_EDEADLOCK ("the transaction is over
 * and may be retried") when waiting could never have helped:
 *   - SQLITE_BUSY_SNAPSHOT: a transaction that has read (a WAL snapshot)
 *     tried to write after another connection committed; its snapshot
 *     can't become current again.
 *   - SQLITE_BUSY for a transaction that held a read snapshot and no write
 *     lock: SQLite does not call the busy handler then (it would wait for
 *     a writer that may be waiting for it: the classic deferred
 *     transaction deadlock), so the busy timeout never applied.
 *   - any BUSY / LOCKED after which SQLite rolled the transaction back
 *     itself.
 * Everything else stays SQ_ETIMEOUT: SQLITE_BUSY once the busy timeout
 * (busy handler) has waited for the lock in vain, in autocommit or at the
 * first statement of a transaction, and shared-cache table locks.
 */
static int lock_kind(lite_conn *lc, int ext, const char **why) {
  int prim = ext & 0xff;
  *why = "";
  if (prim != SQLITE_BUSY && prim != SQLITE_LOCKED) return -1;
  if (ext == SQLITE_BUSY_SNAPSHOT) {
    *why = " (another connection wrote since this transaction first read)";
    return SQ_EDEADLOCK;
  }
  if (lc->in_tx && lc->db && sqlite3_get_autocommit(lc->db)) {
    *why = " (SQLite rolled the transaction back)";
    return SQ_EDEADLOCK;
  }
  if (prim == SQLITE_BUSY && ext != SQLITE_BUSY_RECOVERY && lc->had_read) {
    *why = " (another connection holds the write lock this transaction needs after its reads)";
    return SQ_EDEADLOCK;
  }
  return SQ_ETIMEOUT;
}

/*
 * Fills err from the connection's last error, given the code rc that a
 * call returned. The connection's extended code is used when it agrees
 * with rc (it carries the detail, e.g. which constraint); sqlite3_errmsg
 * is read here, before any reset, so the message belongs to this failure.
 * I/O errors and corruption mark the connection dead so the pool drops it.
 * A deadlock ends the transaction here (ROLLBACK), as the servers do, so
 * "deadlock" always means the transaction is over.
 */
static int lite_fail(lite_conn *lc, int rc, int phase, sq_err *err) {
  int ext = lc->db ? sqlite3_extended_errcode(lc->db) : rc;
  const char *msg;
  if ((ext & 0xff) != (rc & 0xff)) ext = rc;
  if (lc->db && (sqlite3_errcode(lc->db) & 0xff) == (rc & 0xff))
    msg = sqlite3_errmsg(lc->db);
  else
    msg = sqlite3_errstr(rc);
  int prim = ext & 0xff;
  if ((prim == SQLITE_IOERR && ext != SQLITE_IOERR_NOMEM) || prim == SQLITE_CORRUPT ||
      prim == SQLITE_NOTADB)
    lc->dead = 1;
  char buf[32];
  const char *why;
  int kind = lock_kind(lc, ext, &why);
  if (kind < 0) kind = kind_for(ext, phase, msg);
  sq_err_set(err, kind, "sqlite: %s%s", msg ? msg : "unknown error", why);
  sq_err_native(err, code_name(ext, buf, sizeof buf), sqlstate_for(ext));
  if (kind == SQ_EDEADLOCK && lc->db && !sqlite3_get_autocommit(lc->db)) {
    int rrc = sqlite3_exec(lc->db, "ROLLBACK", NULL, NULL, NULL);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, "%s",
             rrc == SQLITE_OK ? "; the transaction was rolled back and may be retried"
                              : "; rolling the transaction back failed too");
  } else if (kind == SQ_EDEADLOCK) {
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, "; the transaction is over and may be retried");
  }
  return err->kind;
}

/* Notes what lock_kind needs to know about the step or prepare about to
 * run. */
static void note_state(lite_conn *lc) {
  lc->in_tx = !sqlite3_get_autocommit(lc->db);
  lc->had_read = lc->in_tx && sqlite3_txn_state(lc->db, NULL) == SQLITE_TXN_READ;
}

static int lite_step(lite_conn *lc, sqlite3_stmt *st) {
  note_state(lc);
  return sqlite3_step(st);
}

/* Our own allocation failure (not SQLite's). */
static int fail_nomem(sq_err *err) {
  sq_err_set(err, SQ_ENOMEM, "sqlite: out of memory");
  sq_err_native(err, "SQLITE_NOMEM", "");
  return SQ_ENOMEM;
}

/* A non-zero return from a sink callback: keep the callback's error if it
 * set one, as the driver contract says. */
static int sink_stopped(sq_err *err) {
  if (err->kind == SQ_OK) sq_err_set(err, SQ_EUSAGE, "sqlite: row callback stopped");
  return err->kind;
}

/* ------------------------------------------------------------------ */
/* Statement cache                                                      */
/* ------------------------------------------------------------------ */

static void lru_unlink(lite_conn *lc, cache_ent *e) {
  if (e->prev) e->prev->next = e->next; else lc->head = e->next;
  if (e->next) e->next->prev = e->prev; else lc->tail = e->prev;
  e->prev = e->next = NULL;
}

static void lru_push_front(lite_conn *lc, cache_ent *e) {
  e->prev = NULL;
  e->next = lc->head;
  if (lc->head) lc->head->prev = e;
  lc->head = e;
  if (!lc->tail) lc->tail = e;
}

/* Finds an idle cached statement for this exact text and marks it most
 * recently used. A busy entry is skipped: its caller gets a fresh one. */
static cache_ent *cache_find(lite_conn *lc, const char *sql, size_t len, uint64_t h) {
  for (cache_ent *e = lc->head; e; e = e->next) {
    if (e->hash == h && e->len == len && !e->busy && memcmp(e->sql, sql, len) == 0) {
      if (e != lc->head) {
        lru_unlink(lc, e);
        lru_push_front(lc, e);
      }
      return e;
    }
  }
  return NULL;
}

/* Evicts the least recently used idle entry, finalizing its statement. */
static int cache_evict_one(lite_conn *lc) {
  for (cache_ent *e = lc->tail; e; e = e->prev) {
    if (e->busy) continue;
    lru_unlink(lc, e);
    sqlite3_finalize(e->stmt);
    free(e->meta);
    free(e);
    lc->ncached--;
    return 1;
  }
  return 0;
}

/* Adds a statement under its text, evicting to stay within CACHE_MAX.
 * Returns NULL (the statement stays uncached) when memory or room is
 * lacking: caching is an optimisation, never a reason to fail. */
static cache_ent *cache_insert(lite_conn *lc, const char *sql, size_t len, uint64_t h,
                               sqlite3_stmt *st) {
  while (lc->ncached >= CACHE_MAX)
    if (!cache_evict_one(lc)) return NULL;
  cache_ent *e = malloc(sizeof *e + len);
  if (!e) return NULL;
  memcpy(e->sql, sql, len);
  e->len = len;
  e->hash = h;
  e->stmt = st;
  e->busy = 0;
  e->meta = NULL;
  e->meta_n = 0;
  e->meta_reprep = 0;
  lru_push_front(lc, e);
  lc->ncached++;
  return e;
}

static void cache_clear(lite_conn *lc) {
  cache_ent *e = lc->head;
  while (e) {
    cache_ent *next = e->next;
    sqlite3_finalize(e->stmt);
    free(e->meta);
    free(e);
    e = next;
  }
  lc->head = lc->tail = NULL;
  lc->ncached = 0;
}

/* Skips what separates statements and carries no meaning (whitespace,
 * comments, semicolons, as the core's SQLite lexer reads them). Used to
 * tell whether a prepare left another statement in the tail. */
static const char *skip_blank(const char *p, const char *end) {
  return p + sq_sql_skip_blank(SQ_DIALECT_SQLITE, p, (size_t)(end - p));
}

/*
 * Gets a prepared statement for the first statement of [sql, sql+len).
 * When cacheable and the text holds exactly one statement, it comes from
 * (or goes into) the cache. *next is set to where the following statement
 * starts (== sql+len when there is none). r->stmt may be NULL when the
 * text holds no statement at all (only comments).
 */
static int stmt_acquire(lite_conn *lc, const char *sql, size_t len, int cacheable, run *r,
                        const char **next, sq_err *err) {
  const char *end = sql + len;
  uint64_t h = 0;
  r->stmt = NULL;
  r->ent = NULL;
  if (cacheable) {
    /* The statement run last is the likeliest one: tried before hashing. */
    cache_ent *e = lc->head;
    if (!(e && e->len == len && !e->busy && memcmp(e->sql, sql, len) == 0)) {
      h = sq_hash_bytes(sql, len, 0); /* only used to skip most memcmp calls */
      e = cache_find(lc, sql, len, h);
    }
    if (e) {
      e->busy = 1;
      r->stmt = e->stmt;
      r->ent = e;
      *next = end;
      return SQ_OK;
    }
  }
  if (len > (size_t)INT_MAX) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: SQL text too long (%zu bytes)", len);
    sq_err_native(err, "SQLITE_TOOBIG", "");
    return SQ_EUSAGE;
  }
  if (memchr(sql, '\0', len)) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: SQL text contains a NUL byte");
    return SQ_EUSAGE;
  }
  const char *tail = NULL;
  sqlite3_stmt *st = NULL;
  note_state(lc); /* preparing may meet a lock too (reading the schema) */
  int rc = sqlite3_prepare_v3(lc->db, sql, (int)len, cacheable ? SQLITE_PREPARE_PERSISTENT : 0,
                              &st, &tail);
  if (rc != SQLITE_OK) return lite_fail(lc, rc, PH_PREPARE, err);
  if (!tail || tail < sql || tail > end) tail = end;
  *next = skip_blank(tail, end);
  r->stmt = st;
  if (st && cacheable && *next == end) {
    r->ent = cache_insert(lc, sql, len, h, st);
    if (r->ent) r->ent->busy = 1;
  }
  return SQ_OK;
}

/* Hands a statement back: reset, bindings dropped (they point into the
 * caller's memory), and either returned to the cache or finalized. */
static void stmt_release(run *r) {
  if (!r->stmt) return;
  sqlite3_reset(r->stmt);
  sqlite3_clear_bindings(r->stmt);
  if (r->ent) r->ent->busy = 0;
  else sqlite3_finalize(r->stmt);
  r->stmt = NULL;
  r->ent = NULL;
}

/* ------------------------------------------------------------------ */
/* Binding                                                              */
/* ------------------------------------------------------------------ */

/*
 * Binds params to st after checking that the statement has exactly
 * nparams parameters: a mismatch means the core and the SQL disagree, and
 * SQLite would otherwise silently bind NULL to the missing ones. dtor is
 * SQLITE_STATIC (exec) or SQLITE_TRANSIENT (cursors), see the top.
 */
static int bind_all(lite_conn *lc, sqlite3_stmt *st, const sq_value *params, int nparams,
                    sqlite3_destructor_type dtor, sq_err *err) {
  int want = sqlite3_bind_parameter_count(st);
  if (want != nparams) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: statement has %d parameter%s but %d value%s given",
               want, want == 1 ? "" : "s", nparams, nparams == 1 ? " was" : "s were");
    return SQ_EUSAGE;
  }
  for (int i = 0; i < nparams; i++) {
    const sq_value *v = &params[i];
    int rc;
    switch (v->type) {
    case SQ_VNULL: rc = sqlite3_bind_null(st, i + 1); break;
    case SQ_VINT: rc = sqlite3_bind_int64(st, i + 1, v->u.i); break;
    case SQ_VFLOAT: rc = sqlite3_bind_double(st, i + 1, v->u.f); break;
    case SQ_VBOOL: rc = sqlite3_bind_int64(st, i + 1, v->u.b ? 1 : 0); break;
    case SQ_VTEXT:
      /* a NULL pointer would bind SQL NULL: an empty string is not NULL */
      rc = sqlite3_bind_text64(st, i + 1, v->u.s.p ? v->u.s.p : "", v->u.s.n, dtor,
                               SQLITE_UTF8);
      break;
    case SQ_VBLOB:
      rc = sqlite3_bind_blob64(st, i + 1, v->u.s.p ? v->u.s.p : "", v->u.s.n, dtor);
      break;
    default:
      sq_err_set(err, SQ_EUSAGE, "sqlite: value %d has unknown type %d", i + 1, v->type);
      return SQ_EUSAGE;
    }
    if (rc != SQLITE_OK) {
      lite_fail(lc, rc, PH_STEP, err);
      /* name the value: "string or blob too big" alone does not say which */
      size_t n = strlen(err->msg);
      snprintf(err->msg + n, sizeof err->msg - n, " (value %d)", i + 1);
      return err->kind;
    }
  }
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Result values                                                        */
/* ------------------------------------------------------------------ */

/* Case-insensitive prefix test on ASCII type names. */
static int ci_prefix(const char *s, const char *pre) {
  for (; *pre; s++, pre++) {
    char a = *s, b = *pre;
    if (a >= 'a' && a <= 'z') a = (char)(a - 32);
    if (a != b) return 0;
  }
  return 1;
}

static int ci_contains(const char *s, const char *needle) {
  for (; *s; s++)
    if (ci_prefix(s, needle)) return 1;
  return 0;
}

/*
 * Reads a declared type. The class says which values get converted
 * (BOOLEAN 0/1, DATETIME/TIMESTAMP/DATE epoch numbers, DECIMAL/NUMERIC as
 * exact text, as the other dialects deliver them). The vtype is only the
 * expected type for sq_column.type, by SQLite's affinity rules; SQLite's
 * dynamic typing means a value may still differ (columns without a
 * declared type, expressions, report SQ_VNULL: "varies").
 */
static void classify(const char *decl, unsigned char *cls, int *vtype) {
  *cls = CLS_NONE;
  *vtype = SQ_VNULL;
  if (!decl) return;
  while (*decl == ' ') decl++;
  if (ci_prefix(decl, "BOOL")) {
    *cls = CLS_BOOL;
    *vtype = SQ_VBOOL;
  } else if (ci_prefix(decl, "DATETIME") || ci_prefix(decl, "TIMESTAMP")) {
    *cls = CLS_DATETIME;
    *vtype = SQ_VTEXT;
  } else if (ci_prefix(decl, "DATE") &&
             !((decl[4] >= 'A' && decl[4] <= 'Z') || (decl[4] >= 'a' && decl[4] <= 'z') ||
               (decl[4] >= '0' && decl[4] <= '9') || decl[4] == '_')) {
    *cls = CLS_DATE;
    *vtype = SQ_VTEXT;
  } else if (ci_prefix(decl, "DECIMAL") || ci_prefix(decl, "NUMERIC")) {
    *cls = CLS_DECIMAL;
    *vtype = SQ_VTEXT;
  } else if (ci_contains(decl, "INT")) {
    *vtype = SQ_VINT;
  } else if (ci_contains(decl, "CHAR") || ci_contains(decl, "CLOB") || ci_contains(decl, "TEXT")) {
    *vtype = SQ_VTEXT;
  } else if (ci_contains(decl, "BLOB")) {
    *vtype = SQ_VBLOB;
  } else if (ci_contains(decl, "REAL") || ci_contains(decl, "FLOA") || ci_contains(decl, "DOUB")) {
    *vtype = SQ_VFLOAT;
  }
}

/* 0000-01-01 00:00:00 and 9999-12-31 23:59:59 UTC: the range that fits
 * the YYYY-MM-DD form. Numbers outside it are delivered unchanged. */
#define EPOCH_MIN INT64_C(-62167219200)
#define EPOCH_MAX INT64_C(253402300799)

/*
 * Formats epoch seconds (plus microseconds) as UTC text, with
 * sq_civil_from_days (gmtime is not thread-safe and its range depends on
 * time_t). Returns the length, or 0 when out of range.
 */
static int fmt_epoch(int64_t secs, int us, int with_time, char *buf, size_t cap) {
  if (secs < EPOCH_MIN || secs > EPOCH_MAX) return 0;
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  int m, d;
  sq_civil_from_days(days, &y, &m, &d);
  int hh = (int)(rem / 3600), mi = (int)(rem / 60 % 60), ss = (int)(rem % 60);
  int n;
  if (!with_time) return snprintf(buf, cap, "%04d-%02d-%02d", (int)y, m, d);
  n = snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d", (int)y, m, d, hh, mi, ss);
  if (us > 0 && n > 0 && (size_t)n < cap)
    n += snprintf(buf + n, cap - (size_t)n, ".%06u", (unsigned)us % 1000000u);
  return n;
}

/* A REAL epoch value: whole seconds and microseconds (rounded). */
static int fmt_epoch_real(double f, char *buf, size_t cap) {
  if (!isfinite(f) || f < (double)EPOCH_MIN || f >= (double)EPOCH_MAX + 1.0) return 0;
  double fl = floor(f);
  int64_t s = (int64_t)fl;
  long long us = llround((f - fl) * 1e6);
  if (us >= 1000000) {
    s++;
    us -= 1000000;
  }
  return fmt_epoch(s, (int)us, 1, buf, cap);
}

/* Prepares the column and value arrays for the statement's current
 * shape (read after the first step: a re-prepare may change it). ent is
 * the statement's cache entry or NULL; its remembered columns are used
 * when still valid, and refreshed otherwise. */
static int rowbuf_setup(rowbuf *rb, sqlite3_stmt *st, cache_ent *ent, sq_err *err) {
  int n = sqlite3_column_count(st);
  rb->ncols = n;
  rb->heap = NULL;
  if (n <= STACK_COLS) {
    rb->cols = rb->scols;
    rb->vals = rb->svals;
    rb->slots = rb->sslots;
  } else {
    size_t a = sizeof(sq_column) * (size_t)n, b = sizeof(sq_value) * (size_t)n;
    char *mem = malloc(a + b + sizeof(colslot) * (size_t)n);
    if (!mem) return fail_nomem(err);
    rb->heap = mem;
    rb->cols = (sq_column *)(void *)mem;
    rb->vals = (sq_value *)(void *)(mem + a);
    rb->slots = (colslot *)(void *)(mem + a + b);
  }
  int reprep = ent ? sqlite3_stmt_status(st, SQLITE_STMTSTATUS_REPREPARE, 0) : 0;
  if (ent && ent->meta && ent->meta_n == n && ent->meta_reprep == reprep) {
    for (int i = 0; i < n; i++) {
      rb->cols[i] = ent->meta[i].col;
      rb->slots[i].cls = ent->meta[i].cls;
    }
    return SQ_OK;
  }
  for (int i = 0; i < n; i++) {
    const char *name = sqlite3_column_name(st, i);
    if (!name) return fail_nomem(err);
    rb->cols[i].name = name;
    rb->cols[i].name_len = strlen(name);
    classify(sqlite3_column_decltype(st, i), &rb->slots[i].cls, &rb->cols[i].type);
  }
  if (ent) { /* remember them; without memory the next run looks them up again */
    colmeta *m = ent->meta_n == n ? ent->meta : realloc(ent->meta, sizeof *m * (size_t)(n ? n : 1));
    if (m) {
      for (int i = 0; i < n; i++) {
        m[i].col = rb->cols[i];
        m[i].cls = rb->slots[i].cls;
      }
      ent->meta = m;
      ent->meta_n = n;
      ent->meta_reprep = reprep;
    }
  }
  return SQ_OK;
}

static void rowbuf_free(rowbuf *rb) {
  free(rb->heap);
  rb->heap = NULL;
  rb->ncols = 0;
}

/*
 * Converts the current row. Values are typed by what SQLite stored
 * (sqlite3_value_type), then adjusted by the declared type's class.
 * Text and blob pointers are SQLite's own, valid until the next step.
 * Each column is taken once with sqlite3_column_value and read with the
 * sqlite3_value_* functions: every sqlite3_column_* call looks the
 * column up again and enters and leaves the connection's API state
 * (about 55 instructions each, two or three per column); the value is
 * "unprotected", which only matters to a connection shared by threads
 * at once - ours is opened SQLITE_OPEN_NOMUTEX and used by one thread
 * at a time.
 */
static int rowbuf_fill(lite_conn *lc, rowbuf *rb, sqlite3_stmt *st, sq_err *err) {
  for (int i = 0; i < rb->ncols; i++) {
    colslot *sl = &rb->slots[i];
    sq_value *v = &rb->vals[i];
    int n;
    sqlite3_value *cv = sqlite3_column_value(st, i);
    switch (sqlite3_value_type(cv)) {
    case SQLITE_INTEGER: {
      int64_t x = sqlite3_value_int64(cv);
      *v = sq_int(x);
      if (sl->cls == CLS_BOOL && (x == 0 || x == 1)) {
        *v = sq_bool((int)x);
      } else if (sl->cls == CLS_DATETIME || sl->cls == CLS_DATE) {
        n = fmt_epoch(x, 0, sl->cls == CLS_DATETIME, sl->buf, sizeof sl->buf);
        if (n > 0) *v = sq_text(sl->buf, (size_t)n);
      } else if (sl->cls == CLS_DECIMAL) {
        n = snprintf(sl->buf, sizeof sl->buf, "%lld", (long long)x);
        *v = sq_text(sl->buf, (size_t)n);
      }
      break;
    }
    case SQLITE_FLOAT: {
      double f = sqlite3_value_double(cv);
      *v = sq_float(f);
      if (sl->cls == CLS_DATETIME) {
        n = fmt_epoch_real(f, sl->buf, sizeof sl->buf);
        if (n > 0) *v = sq_text(sl->buf, (size_t)n);
      } else if (sl->cls == CLS_DECIMAL && isfinite(f)) {
        n = sq_fmt_double(f, sl->buf, sizeof sl->buf); /* DECIMAL stored as REAL: "1.1", not "1.1000000000000001" */
        *v = sq_text(sl->buf, (size_t)n);
      }
      break;
    }
    case SQLITE_TEXT: {
      const unsigned char *p = sqlite3_value_text(cv);
      if (!p) return lite_fail(lc, SQLITE_NOMEM, PH_STEP, err);
      *v = sq_text((const char *)p, (size_t)sqlite3_value_bytes(cv));
      break;
    }
    case SQLITE_BLOB: {
      const void *p = sqlite3_value_blob(cv);
      int len = sqlite3_value_bytes(cv);
      if (!p && len > 0) return lite_fail(lc, SQLITE_NOMEM, PH_STEP, err);
      *v = sq_blob(p ? (const char *)p : "", (size_t)len);
      break;
    }
    default: *v = sq_null(); break;
    }
  }
  return SQ_OK;
}

/* Calls sink->columns; the sink or its callback may be absent. */
static int deliver_columns(rowbuf *rb, const sq_row_sink *sink, sq_err *err) {
  if (!sink || !sink->columns) return SQ_OK;
  if (sink->columns(sink->ud, rb->ncols, rb->cols, err) != 0) return sink_stopped(err);
  return SQ_OK;
}

/* Converts the current row and hands it to sink->row. */
static int deliver_row(lite_conn *lc, rowbuf *rb, sqlite3_stmt *st, const sq_row_sink *sink,
                       sq_err *err) {
  if (!sink || !sink->row) return SQ_OK;
  int rc = rowbuf_fill(lc, rb, st, err);
  if (rc != SQ_OK) return rc;
  if (sink->row(sink->ud, rb->ncols, rb->vals, err) != 0) return sink_stopped(err);
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Running statements                                                   */
/* ------------------------------------------------------------------ */

/*
 * Steps one bound statement to completion, rows to sink, and fills res
 * (ent: its cache entry or NULL, see rowbuf_setup).
 * affected_rows: -1 for read-only statements; otherwise the rows the
 * statement itself changed, judged by sqlite3_total_changes64 moving,
 * because sqlite3_changes64 still holds the count of an earlier INSERT
 * after a CREATE TABLE. last_insert_id: the rowid is zeroed before the
 * statement so that a non-zero value afterwards was set by this one (an
 * INSERT in a trigger reverts on exit); when it stays zero the previous
 * value is restored, so SQL's last_insert_rowid() behaves as before.
 */
static int run_stmt(lite_conn *lc, sqlite3_stmt *st, cache_ent *ent, const sq_row_sink *sink,
                    sq_result *res, sq_err *err) {
  sqlite3 *db = lc->db;
  int ro = sqlite3_stmt_readonly(st);
  sqlite3_int64 total0 = 0, prev_id = 0;
  int status = SQ_OK;
  rowbuf rb;
  rb.heap = NULL;
  rb.ncols = 0;
  if (!ro) {
    total0 = sqlite3_total_changes64(db);
    prev_id = sqlite3_last_insert_rowid(db);
    sqlite3_set_last_insert_rowid(db, 0);
  }
  int rc = lite_step(lc, st);
  if ((rc == SQLITE_ROW || rc == SQLITE_DONE) && sqlite3_column_count(st) > 0) {
    res->has_result_set = 1;
    status = rowbuf_setup(&rb, st, ent, err);
    if (status == SQ_OK) status = deliver_columns(&rb, sink, err);
  }
  while (status == SQ_OK && rc == SQLITE_ROW) {
    status = deliver_row(lc, &rb, st, sink, err);
    if (status != SQ_OK) break;
    res->rows++;
    rc = lite_step(lc, st);
  }
  if (status == SQ_OK && rc != SQLITE_DONE) status = lite_fail(lc, rc, PH_STEP, err);
  rowbuf_free(&rb);
  if (!ro) {
    sqlite3_int64 id = sqlite3_last_insert_rowid(db);
    if (status == SQ_OK) {
      int changed = sqlite3_total_changes64(db) != total0;
      res->affected_rows = changed ? sqlite3_changes64(db) : 0;
      res->last_insert_id = changed ? id : 0;
    }
    if (id == 0) sqlite3_set_last_insert_rowid(db, prev_id);
  }
  return status;
}

static void result_init(sq_result *res) {
  res->affected_rows = -1;
  res->last_insert_id = 0;
  res->rows = 0;
  res->has_result_set = 0;
}

static int cursor_busy(lite_conn *lc, sq_err *err) {
  if (!lc->cursor) return 0;
  sq_err_set(err, SQ_EUSAGE, "sqlite: a cursor is open on this connection");
  return 1;
}

/*
 * exec: one statement, bound, possibly cached. Empty statements (a
 * leading ';', only comments) are skipped; a text holding a second
 * statement is refused before anything runs (sqorm runs one statement per
 * call; a caller runs several one by one).
 */
static int lite_exec(sq_dconn *c, const char *sql, size_t len, const sq_value *params,
                     int nparams, const sq_row_sink *sink, sq_result *res, sq_err *err) {
  lite_conn *lc = (lite_conn *)c;
  sq_result local_res;
  sq_err local_err;
  if (!res) res = &local_res;
  if (!err) err = &local_err;
  sq_err_clear(err);
  result_init(res);
  if (!sql || (nparams > 0 && !params) || nparams < 0) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: exec without SQL or values");
    return SQ_EUSAGE;
  }
  if (cursor_busy(lc, err)) return SQ_EUSAGE;
  atomic_store_explicit(&lc->interrupted, 0, memory_order_relaxed); /* a cancel is for the running statement */
  const char *p = sql, *end = sql + len;
  int first = 1, wrote = 0;
  int64_t affected = 0, last_id = 0;
  for (;;) {
    run r;
    const char *next;
    int rc = stmt_acquire(lc, p, (size_t)(end - p), first, &r, &next, err);
    if (rc != SQ_OK) return rc;
    int last = next >= end;
    if (!last && r.stmt) {
      stmt_release(&r);
      sq_err_set(err, SQ_EUSAGE, "sqlite: the SQL holds more than one statement; one call runs one");
      return SQ_EUSAGE;
    }
    if (!r.stmt) {
      /* only comments / whitespace: nothing to run */
      if (last) {
        if (nparams != 0) {
          sq_err_set(err, SQ_EUSAGE, "sqlite: statement has 0 parameters but %d value%s given",
                     nparams, nparams == 1 ? " was" : "s were");
          return SQ_EUSAGE;
        }
        break;
      }
      if (next == p) {
        sq_err_set(err, SQ_EINTERNAL, "sqlite: could not advance past \"%.40s\"", p);
        return SQ_EINTERNAL;
      }
      p = next;
      first = 0;
      continue;
    }
    rc = bind_all(lc, r.stmt, params, last ? nparams : 0, SQLITE_STATIC, err);
    if (rc == SQ_OK) {
      sq_result one;
      result_init(&one);
      rc = run_stmt(lc, r.stmt, r.ent, last ? sink : NULL, &one, err);
      if (one.affected_rows >= 0) {
        wrote = 1;
        affected += one.affected_rows;
      }
      if (one.last_insert_id != 0) last_id = one.last_insert_id;
      if (last) {
        res->rows = one.rows;
        res->has_result_set = one.has_result_set;
      }
    }
    stmt_release(&r);
    if (rc != SQ_OK) return rc;
    if (last) break;
    p = next;
    first = 0;
  }
  res->affected_rows = wrote ? affected : -1;
  res->last_insert_id = last_id;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Streaming cursors                                                    */
/* ------------------------------------------------------------------ */

/*
 * Opens a cursor: prepares (cached), binds and takes the first step, so
 * that sink->columns sees the statement's final shape and errors such as
 * a missing table surface here rather than on the first fetch. The first
 * row, if any, stays in the statement until cursor_fetch delivers it.
 * Memory stays bounded: SQLite produces one row per step.
 */
static int lite_cursor_open(sq_dconn *c, const char *sql, size_t len, const sq_value *params,
                            int nparams, const sq_row_sink *sink, sq_dcursor **out,
                            sq_err *err) {
  lite_conn *lc = (lite_conn *)c;
  sq_err local_err;
  if (!err) err = &local_err;
  sq_err_clear(err);
  *out = NULL;
  if (!sql || (nparams > 0 && !params) || nparams < 0) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: cursor without SQL or values");
    return SQ_EUSAGE;
  }
  if (cursor_busy(lc, err)) return SQ_EUSAGE;
  atomic_store_explicit(&lc->interrupted, 0, memory_order_relaxed);
  lite_cursor *cur = calloc(1, sizeof *cur);
  if (!cur) return fail_nomem(err);
  const char *next;
  int rc = stmt_acquire(lc, sql, len, 1, &cur->r, &next, err);
  if (rc != SQ_OK) {
    free(cur);
    return rc;
  }
  if (!cur->r.stmt || next < sql + len) {
    stmt_release(&cur->r);
    free(cur);
    sq_err_set(err, SQ_EUSAGE, "sqlite: a cursor needs exactly one statement");
    return SQ_EUSAGE;
  }
  rc = bind_all(lc, cur->r.stmt, params, nparams, SQLITE_TRANSIENT, err);
  if (rc == SQ_OK) {
    int src = lite_step(lc, cur->r.stmt);
    if (src == SQLITE_ROW || src == SQLITE_DONE) {
      cur->state = src == SQLITE_ROW ? CUR_PENDING : CUR_DONE;
      if (sqlite3_column_count(cur->r.stmt) > 0) {
        rc = rowbuf_setup(&cur->rb, cur->r.stmt, cur->r.ent, err);
        if (rc == SQ_OK) rc = deliver_columns(&cur->rb, sink, err);
      }
    } else {
      rc = lite_fail(lc, src, PH_STEP, err);
    }
  }
  if (rc != SQ_OK) {
    rowbuf_free(&cur->rb);
    stmt_release(&cur->r);
    free(cur);
    return rc;
  }
  if (cur->state == CUR_DONE) sqlite3_reset(cur->r.stmt); /* drop the read lock now */
  cur->lc = lc;
  cur->sink = sink;
  lc->cursor = cur;
  *out = (sq_dcursor *)cur;
  return SQ_OK;
}

/*
 * Delivers the next row. After the end or a failure the statement is
 * reset at once (releasing SQLite's read transaction) but never stepped
 * again: stepping a finished statement would silently rerun it.
 */
static int lite_cursor_fetch(sq_dcursor *dc, int *has_row, sq_err *err) {
  lite_cursor *cur = (lite_cursor *)dc;
  sq_err local_err;
  if (!err) err = &local_err, err->kind = SQ_OK;
  if (err->kind != SQ_OK) sq_err_clear(err); /* once per row: only what an error would read */
  *has_row = 0;
  switch (cur->state) {
  case CUR_DETACHED:
    sq_err_set(err, SQ_ECLOSED, "sqlite: the cursor's connection was reset or closed");
    return SQ_ECLOSED;
  case CUR_FAILED:
    sq_err_set(err, SQ_EUSAGE, "sqlite: fetch after the cursor failed");
    return SQ_EUSAGE;
  case CUR_DONE: return SQ_OK;
  default: break;
  }
  sqlite3_stmt *st = cur->r.stmt;
  if (cur->state == CUR_STEP) {
    int rc = lite_step(cur->lc, st);
    if (rc == SQLITE_DONE) {
      cur->state = CUR_DONE;
      sqlite3_reset(st);
      return SQ_OK;
    }
    if (rc != SQLITE_ROW) {
      lite_fail(cur->lc, rc, PH_STEP, err);
      cur->state = CUR_FAILED;
      sqlite3_reset(st);
      return err->kind;
    }
  }
  cur->state = CUR_STEP;
  int rc = deliver_row(cur->lc, &cur->rb, st, cur->sink, err);
  if (rc != SQ_OK) {
    cur->state = CUR_FAILED;
    sqlite3_reset(st);
    return rc;
  }
  *has_row = 1;
  return SQ_OK;
}

/* Returns the cursor's statement to its connection (cache) and cuts the
 * link, so a later cursor_close only frees the cursor itself. */
static void cursor_detach(lite_cursor *cur) {
  if (!cur->lc) return;
  stmt_release(&cur->r);
  cur->lc->cursor = NULL;
  cur->lc = NULL;
  cur->state = CUR_DETACHED;
}

/* Safe at any point, also after the connection was reset or closed. */
static void lite_cursor_close(sq_dcursor *dc) {
  lite_cursor *cur = (lite_cursor *)dc;
  if (!cur) return;
  cursor_detach(cur);
  rowbuf_free(&cur->rb);
  free(cur);
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

/* What cfg->params ask of sqlite3_open_v2. */
typedef struct open_opts {
  int mode;   /* SQLITE_OPEN_READONLY / READWRITE [| CREATE] */
  int cache;  /* SQLITE_OPEN_SHAREDCACHE / PRIVATECACHE / 0 */
  int memory; /* mode=memory */
} open_opts;

/*
 * Reads cfg->params. SQLite has no connection keywords of its own, so
 * only the two of its URI syntax that the core knows are accepted: mode
 * (ro|rw|rwc|memory) and cache (shared|private).
 */
static int read_params(const sq_config *cfg, open_opts *o, sq_err *err) {
  o->mode = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  o->cache = 0;
  o->memory = 0;
  for (int i = 0; i < cfg->nparams; i++) {
    const char *k = cfg->params[i].key, *v = cfg->params[i].value ? cfg->params[i].value : "";
    if (!k) continue;
    if (strcmp(k, "mode") == 0) {
      o->memory = 0;
      if (strcmp(v, "ro") == 0) o->mode = SQLITE_OPEN_READONLY;
      else if (strcmp(v, "rw") == 0) o->mode = SQLITE_OPEN_READWRITE;
      else if (strcmp(v, "rwc") == 0) o->mode = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      else if (strcmp(v, "memory") == 0) {
        o->mode = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        o->memory = 1;
      } else goto bad_value;
    } else if (strcmp(k, "cache") == 0) {
      if (strcmp(v, "shared") == 0) o->cache = SQLITE_OPEN_SHAREDCACHE;
      else if (strcmp(v, "private") == 0) o->cache = SQLITE_OPEN_PRIVATECACHE;
      else goto bad_value;
    } else {
      sq_err_set(err, SQ_EUSAGE, "sqlite: unknown parameter '%s' (known: mode, cache)", k);
      return SQ_EUSAGE;
    }
    continue;
  bad_value:
    sq_err_set(err, SQ_EUSAGE, "sqlite: bad value '%s' for parameter '%s'", v, k);
    return SQ_EUSAGE;
  }
  return SQ_OK;
}

/*
 * Decides the name handed to sqlite3_open_v2 and whether it is a URI.
 * URIs are off for plain paths, so '?' or '#' in a file name mean
 * nothing. Three cases need one, because SQLite shares a memory database
 * between connections only when it is opened through a "file:" URI (the
 * pool relies on that to give several connections one memory database):
 *   - storage that already starts with "file:" (the user wrote a URI;
 *     Debian's library, built with SQLITE_USE_URI, would read it as one
 *     anyway, so honouring it keeps every build alike);
 *   - ":memory:" with cache=shared  -> "file::memory:?cache=shared";
 *   - mode=memory with a name       -> "file:NAME?mode=memory[&cache=shared]".
 * *name is malloc'd when it is not storage itself (*owned set).
 */
static int open_name(const char *storage, const open_opts *o, const char **name, char **owned,
                     int *uri) {
  *name = storage;
  *owned = NULL;
  *uri = 0;
  if (strncmp(storage, "file:", 5) == 0) {
    *uri = 1;
    return SQ_OK;
  }
  int is_mem_name = strcmp(storage, ":memory:") == 0;
  if (!o->memory && !(is_mem_name && o->cache == SQLITE_OPEN_SHAREDCACHE)) return SQ_OK;
  size_t n = strlen(storage);
  char *buf = malloc(3 * n + 48);
  if (!buf) return SQ_ENOMEM;
  size_t k = 0;
  if (is_mem_name) {
    k = (size_t)sprintf(buf, "file::memory:");
  } else {
    /* a leading '/' would start an authority after "file:": "file://" + "/x" */
    k = (size_t)sprintf(buf, storage[0] == '/' ? "file://" : "file:");
    for (size_t i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)storage[i];
      if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          strchr("-._~/:", ch))
        buf[k++] = (char)ch;
      else
        k += (size_t)sprintf(buf + k, "%%%02X", ch);
    }
  }
  buf[k] = '\0';
  char sep = '?';
  if (o->memory && !is_mem_name) {
    strcat(buf, "?mode=memory");
    sep = '&';
  }
  if (o->cache == SQLITE_OPEN_SHAREDCACHE) {
    size_t m = strlen(buf);
    buf[m] = sep;
    strcpy(buf + m + 1, "cache=shared");
  }
  *name = *owned = buf;
  *uri = 1;
  return SQ_OK;
}

/*
 * The busy handler: SQLite's own busy timeout (the same back-off, up to
 * busy_ms in total), except that it gives up as soon as lite_cancel
 * interrupted the connection. sqlite3_interrupt alone stops a running
 * statement but not a wait for another connection's lock, which is the
 * wait a timeout most needs to end. Sleeps in slices of at most 5 ms so
 * a cancel is noticed quickly.
 */
static int lite_busy(void *ud, int count) {
  static const int delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
  const int n = (int)(sizeof delays / sizeof delays[0]);
  lite_conn *lc = ud;
  if (atomic_load_explicit(&lc->interrupted, memory_order_relaxed)) return 0;
  int delay, prior;
  if (count < n) {
    delay = delays[count];
    prior = 0;
    for (int i = 0; i < count; i++) prior += delays[i];
  } else {
    delay = delays[n - 1];
    prior = 228 + delay * (count - (n - 1)); /* 228: the sum of delays[] before the last */
  }
  if (prior + delay > lc->busy_ms) {
    delay = lc->busy_ms - prior;
    if (delay <= 0) return 0;
  }
  while (delay > 0) {
    int ms = delay > 5 ? 5 : delay;
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
    delay -= ms;
    if (atomic_load_explicit(&lc->interrupted, memory_order_relaxed)) return 0;
  }
  return 1;
}

static void conn_free(lite_conn *lc) {
  if (lc->cursor) cursor_detach(lc->cursor);
  cache_clear(lc);
  if (lc->db) {
    /* anything still prepared would keep the handle alive as a zombie */
    sqlite3_stmt *st;
    while ((st = sqlite3_next_stmt(lc->db, NULL)) != NULL) sqlite3_finalize(st);
    sqlite3_close_v2(lc->db);
  }
  free(lc);
}

/* ------------------------------------------------------------------ */
/* Exact DECIMAL: the collation and functions (decimal.c)               */
/* ------------------------------------------------------------------ */

/* A SQL argument read as a decimal; num and buf back the view. */
typedef struct dec_arg {
  sq_decv v;
  char num[40];
  char buf[SQ_DEC_BUF];
} dec_arg;

/*
 * Reads x: 1 with a->v set, 0 for NULL, -1 (error set on ctx) for what is
 * not a decimal. An INTEGER is its digits; a REAL its shortest round-trip
 * text (the rule sqorm's coercion uses for floats), so a column SQLite
 * had already made REAL (a table from before DECIMAL was stored as text)
 * still adds up to what it reads as.
 */
static int dec_arg_read(sqlite3_context *ctx, sqlite3_value *x, dec_arg *a, const char *fname) {
  const char *s = NULL;
  size_t n = 0;
  char *msg;
  switch (sqlite3_value_type(x)) {
  case SQLITE_NULL: return 0;
  case SQLITE_INTEGER:
    n = sq_fmt_i64(sqlite3_value_int64(x), a->num);
    s = a->num;
    break;
  case SQLITE_FLOAT: {
    double d = sqlite3_value_double(x);
    if (!isfinite(d)) {
      msg = sqlite3_mprintf("%s: %f is not a decimal number", fname, d);
      goto fail;
    }
    n = (size_t)sq_fmt_double(d, a->num, sizeof a->num);
    s = a->num;
    break;
  }
  case SQLITE_TEXT:
    s = (const char *)sqlite3_value_text(x);
    if (!s) {
      sqlite3_result_error_nomem(ctx);
      return -1;
    }
    n = (size_t)sqlite3_value_bytes(x);
    break;
  default:
    msg = sqlite3_mprintf("%s: a blob is not a decimal number", fname);
    goto fail;
  }
  if (sq_dec_view(s, n, &a->v, a->buf, sizeof a->buf) == 0) return 1;
  msg = sqlite3_mprintf("%s: '%.40s%s' is not a decimal number", fname, s, n > 40 ? "..." : "");
fail:
  if (msg) {
    sqlite3_result_error(ctx, msg, -1);
    sqlite3_free(msg);
  } else {
    sqlite3_result_error_nomem(ctx);
  }
  return -1;
}

/* Hands malloc'd text (or its absence: out of memory) to SQLite. */
static void result_owned(sqlite3_context *ctx, char *text, size_t len) {
  if (!text) sqlite3_result_error_nomem(ctx);
  else sqlite3_result_text64(ctx, text, len, free, SQLITE_UTF8);
}

static int dec_collate(void *ud, int an, const void *a, int bn, const void *b) {
  (void)ud;
  return sq_dec_collate(a, (size_t)an, b, (size_t)bn);
}

/* sqorm_dsum / sqorm_davg: NULLs are skipped and no value at all gives
 * NULL, as SQL's sum and avg do. */
typedef struct dec_agg {
  sq_dacc acc;
  int failed;
} dec_agg;

static void dec_agg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  dec_agg *g = sqlite3_aggregate_context(ctx, (int)sizeof *g);
  if (!g) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (g->failed) return;
  const char *fname = sqlite3_user_data(ctx);
  dec_arg a;
  int r = dec_arg_read(ctx, argv[0], &a, fname);
  if (r < 0) g->failed = 1;
  if (r <= 0) return;
  if (sq_dacc_add(&g->acc, &a.v)) {
    g->failed = 1;
    char *msg = sqlite3_mprintf("%s: out of memory or a value with more than %d decimals", fname,
                                SQ_DEC_MAX_SCALE);
    if (msg) sqlite3_result_error(ctx, msg, -1);
    else sqlite3_result_error_nomem(ctx);
    sqlite3_free(msg);
  }
}

/* The sum, at the largest scale summed: ten 0.10 give 1.00. */
static void dec_sum_final(sqlite3_context *ctx) {
  dec_agg *g = sqlite3_aggregate_context(ctx, 0);
  if (!g) {
    sqlite3_result_null(ctx);
    return;
  }
  if (!g->failed) {
    size_t len = 0;
    char *text = g->acc.count ? sq_dacc_text(&g->acc, &len) : NULL;
    if (g->acc.count == 0) sqlite3_result_null(ctx);
    else result_owned(ctx, text, len);
  }
  sq_dacc_free(&g->acc);
}

/* The mean, at SQ_DEC_AVG_EXTRA more decimals than the largest scale
 * averaged, rounded half away from zero: avg(1.00, 2.00) is 1.500000. */
static void dec_avg_final(sqlite3_context *ctx) {
  dec_agg *g = sqlite3_aggregate_context(ctx, 0);
  if (!g) {
    sqlite3_result_null(ctx);
    return;
  }
  if (!g->failed) {
    size_t len = 0;
    char *text = g->acc.count ? sq_dacc_mean(&g->acc, SQ_DEC_AVG_EXTRA, &len) : NULL;
    if (g->acc.count == 0) sqlite3_result_null(ctx);
    else result_owned(ctx, text, len);
  }
  sq_dacc_free(&g->acc);
}

/* sqorm_dadd(a, b): the exact sum at the larger scale; NULL when either
 * is NULL, as a + b is. */
static void dec_add(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  dec_arg *a = malloc(2 * sizeof *a);
  if (!a) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  int ra = dec_arg_read(ctx, argv[0], &a[0], SQ_DEC_ADD);
  int rb = ra < 0 ? -1 : dec_arg_read(ctx, argv[1], &a[1], SQ_DEC_ADD);
  if (ra == 0 || rb == 0) {
    if (ra >= 0 && rb >= 0) sqlite3_result_null(ctx);
  } else if (ra > 0 && rb > 0) {
    sq_dacc acc;
    sq_dacc_init(&acc);
    size_t len = 0;
    char *text = NULL;
    if (sq_dacc_add(&acc, &a[0].v) == 0 && sq_dacc_add(&acc, &a[1].v) == 0) text = sq_dacc_text(&acc, &len);
    result_owned(ctx, text, len);
    sq_dacc_free(&acc);
  }
  free(a);
}

/*
 * sqorm_dnorm(x, p, s): x written with exactly s decimals ("1.5" ->
 * "1.50" for DECIMAL(10,2)), the form MySQL and PostgreSQL store, so
 * equal values are equal text (a UNIQUE index on the column works) and
 * read back alike on every dialect. NULL stays NULL; a value that would
 * lose a digit or has more than p - s integer digits is an error, as on
 * the servers.
 */
static void dec_norm(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int p = sqlite3_value_int(argv[1]), sc = sqlite3_value_int(argv[2]);
  if (p < 1 || p > 1000 || sc < 0 || sc > p) {
    sqlite3_result_error(ctx, SQ_DEC_NORM ": precision must be 1..1000 and scale 0..precision", -1);
    return;
  }
  dec_arg a;
  int r = dec_arg_read(ctx, argv[0], &a, SQ_DEC_NORM);
  if (r == 0) sqlite3_result_null(ctx);
  if (r <= 0) return;
  char out[1008];
  int k = sq_dec_fixed(&a.v, p, sc, out, sizeof out);
  if (k < 0) {
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    char *msg = sqlite3_mprintf("value %.60s does not fit DECIMAL(%d,%d)", s ? s : "?", p, sc);
    if (msg) sqlite3_result_error(ctx, msg, -1);
    else sqlite3_result_error_nomem(ctx);
    sqlite3_free(msg);
    return;
  }
  sqlite3_result_text(ctx, out, k, SQLITE_TRANSIENT);
}

/*
 * What every connection gets before its first statement: double-quoted
 * string literals off (DQS) for DML and DDL, and the DECIMAL collation
 * and functions. Returns an SQLite result code.
 */
static int setup_conn(sqlite3 *db) {
  int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
  if (rc == SQLITE_OK) rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_collation_v2(db, SQ_DEC_COLLATION, SQLITE_UTF8, NULL, dec_collate, NULL);
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, SQ_DEC_SUM, 1, flags, (void *)SQ_DEC_SUM, NULL, dec_agg_step,
                                    dec_sum_final, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, SQ_DEC_AVG, 1, flags, (void *)SQ_DEC_AVG, NULL, dec_agg_step,
                                    dec_avg_final, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, SQ_DEC_ADD, 2, flags, NULL, dec_add, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, SQ_DEC_NORM, 3, flags, NULL, dec_norm, NULL, NULL, NULL);
  return rc;
}

/*
 * Opens the database. Files get WAL (readers never block the writer) and
 * synchronous=NORMAL (durable across application crashes, the usual
 * pairing with WAL); every connection gets a busy timeout, so concurrent
 * writers wait instead of failing at once, and foreign keys, which SQLite
 * leaves off by default. Any failure here closes what was opened.
 */
static int lite_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  sq_err local_err;
  if (!err) err = &local_err;
  sq_err_clear(err);
  *out = NULL;
  if (!cfg || !cfg->storage) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: no storage given (a file path or \":memory:\")");
    return SQ_EUSAGE;
  }
  open_opts o;
  int rc = read_params(cfg, &o, err);
  if (rc != SQ_OK) return rc;
  const char *path = cfg->storage, *name;
  char *owned;
  int uri;
  if (open_name(path, &o, &name, &owned, &uri) != SQ_OK) return fail_nomem(err);
  lite_conn *lc = calloc(1, sizeof *lc);
  if (!lc) {
    free(owned);
    return fail_nomem(err);
  }
  int flags = o.mode | o.cache | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
              (uri ? SQLITE_OPEN_URI : 0);
  rc = sqlite3_open_v2(name, &lc->db, flags, NULL);
  free(owned);
  if (rc != SQLITE_OK) {
    int ext = lc->db ? sqlite3_extended_errcode(lc->db) : rc;
    char buf[32];
    sq_err_set(err, SQ_ECONNECTION, "sqlite: cannot open database '%s': %s", path,
               lc->db ? sqlite3_errmsg(lc->db) : sqlite3_errstr(rc));
    sq_err_native(err, code_name(ext, buf, sizeof buf), "");
    conn_free(lc);
    return SQ_ECONNECTION;
  }
  sqlite3_extended_result_codes(lc->db, 1);
  int ms = DEFAULT_BUSY_MS;
  if (cfg->connect_timeout > 0) {
    double t = cfg->connect_timeout * 1000.0;
    ms = t >= (double)INT_MAX ? INT_MAX : (t < 1.0 ? 1 : (int)t);
  }
  rc = setup_conn(lc->db);
  if (rc != SQLITE_OK) {
    lite_fail(lc, rc, PH_STEP, err);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, " (setting up '%s')", path);
    conn_free(lc);
    return err->kind;
  }
  /* lite_busy waits like sqlite3_busy_timeout(ms) but can be cancelled
   * (PRAGMA busy_timeout therefore reads 0; sq_sqlite_busy_ms tells) */
  lc->busy_ms = ms;
  sqlite3_busy_handler(lc->db, lite_busy, lc);
  /* "" for memory and temporary databases, whatever name opened them */
  const char *file = sqlite3_db_filename(lc->db, "main");
  const char *setup[3];
  int nsetup = 0;
  if (file && file[0] && !sqlite3_db_readonly(lc->db, "main")) {
    setup[nsetup++] = "PRAGMA journal_mode=WAL";
    setup[nsetup++] = "PRAGMA synchronous=NORMAL";
  }
  setup[nsetup++] = "PRAGMA foreign_keys=ON";
  for (int i = 0; i < nsetup; i++) {
    rc = sqlite3_exec(lc->db, setup[i], NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      lite_fail(lc, rc, PH_STEP, err);
      /* name the file: "file is not a database" alone does not say which */
      size_t n = strlen(err->msg);
      snprintf(err->msg + n, sizeof err->msg - n, " (opening '%s')", path);
      conn_free(lc);
      return err->kind;
    }
  }
  snprintf(lc->version, sizeof lc->version, "SQLite %s", sqlite3_libversion());
  *out = (sq_dconn *)lc;
  return SQ_OK;
}

static void lite_close(sq_dconn *c) {
  if (c) conn_free((lite_conn *)c);
}

/* An embedded database has no link to lose: ping only reports what an
 * earlier I/O error or corruption showed, and costs no I/O. */
static int lite_ping(sq_dconn *c, sq_err *err) {
  lite_conn *lc = (lite_conn *)c;
  if (!lc->dead) return SQ_OK;
  sq_err_set(err, SQ_ECONNECTION, "sqlite: connection unusable after an I/O error or corruption");
  sq_err_native(err, "SQLITE_IOERR", "");
  return SQ_ECONNECTION;
}

static int lite_is_dead(sq_dconn *c) {
  return ((lite_conn *)c)->dead;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

static int run_sql(lite_conn *lc, const char *sql, sq_err *err) {
  return lite_exec((sq_dconn *)lc, sql, strlen(sql), NULL, 0, NULL, NULL, err);
}

/*
 * SQLite is always serializable. SERIALIZABLE asks for BEGIN IMMEDIATE,
 * which takes the write lock up front: a deferred transaction that reads
 * and then writes can fail with SQLITE_BUSY_SNAPSHOT that no busy timeout
 * cures. The other levels get a plain (deferred) BEGIN.
 */
static int lite_begin(sq_dconn *c, int isolation, sq_err *err) {
  if (isolation < SQ_ISO_DEFAULT || isolation > SQ_ISO_SERIALIZABLE) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: unknown isolation level %d", isolation);
    return SQ_EUSAGE;
  }
  return run_sql((lite_conn *)c, isolation == SQ_ISO_SERIALIZABLE ? "BEGIN IMMEDIATE" : "BEGIN",
                 err);
}

/* COMMIT goes to SQLite even outside a transaction: if SQLite rolled the
 * transaction back on its own (disk full, I/O error), the caller must
 * hear "no transaction is active", not a silent success. */
static int lite_commit(sq_dconn *c, sq_err *err) {
  return run_sql((lite_conn *)c, "COMMIT", err);
}

/* ROLLBACK with no transaction open is a no-op, as with the servers. */
static int lite_rollback(sq_dconn *c, sq_err *err) {
  lite_conn *lc = (lite_conn *)c;
  if (sqlite3_get_autocommit(lc->db)) return SQ_OK;
  return run_sql(lc, "ROLLBACK", err);
}

/* Builds "<verb> <name>" after checking the name is a plain identifier
 * (the core validates it; this keeps the driver safe on its own). */
static int sp_sql(lite_conn *lc, const char *verb, const char *name, sq_err *err) {
  size_t n = name ? strlen(name) : 0;
  int ok = n > 0 && n <= 64 && !(name[0] >= '0' && name[0] <= '9');
  for (size_t i = 0; ok && i < n; i++) {
    char ch = name[i];
    ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_';
  }
  if (!ok) {
    sq_err_set(err, SQ_EUSAGE, "sqlite: bad savepoint name '%.64s'", name ? name : "");
    return SQ_EUSAGE;
  }
  char sql[128];
  snprintf(sql, sizeof sql, "%s %s", verb, name);
  return run_sql(lc, sql, err);
}

static int lite_savepoint(sq_dconn *c, const char *name, sq_err *err) {
  return sp_sql((lite_conn *)c, "SAVEPOINT", name, err);
}

static int lite_release(sq_dconn *c, const char *name, sq_err *err) {
  return sp_sql((lite_conn *)c, "RELEASE SAVEPOINT", name, err);
}

static int lite_rollback_to(sq_dconn *c, const char *name, sq_err *err) {
  return sp_sql((lite_conn *)c, "ROLLBACK TO SAVEPOINT", name, err);
}

static int lite_in_transaction(sq_dconn *c) {
  return !sqlite3_get_autocommit(((lite_conn *)c)->db);
}

/*
 * The per-connection settings a caller can change with a PRAGMA, which a
 * full reset puts back to what a fresh connection has. Those values are
 * read once per process from a new memory database (so they follow this
 * SQLite build's compile-time defaults) into one script. query_only comes
 * first: the rest must be allowed to write.
 */
static const char *const session_pragmas[] = {
  "query_only", "analysis_limit", "automatic_index", "cache_size", "cell_size_check",
  "checkpoint_fullfsync", "count_changes", "defer_foreign_keys", "empty_result_callbacks",
  "full_column_names", "fullfsync", "ignore_check_constraints", "journal_size_limit",
  "legacy_alter_table", "locking_mode", "max_page_count", "read_uncommitted",
  "recursive_triggers", "reverse_unordered_selects", "secure_delete", "short_column_names",
  "synchronous", "temp_store", "threads", "trusted_schema", "wal_autocheckpoint",
  "writable_schema", NULL};

static pthread_once_t pristine_once = PTHREAD_ONCE_INIT;
static char *pristine_sql; /* "PRAGMA x=v;..." or NULL when it could not be built */

static void pristine_build(void) {
  sqlite3 *db = NULL;
  size_t cap = 4096, n = 0;
  char *out = malloc(cap);
  if (!out || sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    free(out);
    sqlite3_close(db);
    return;
  }
  /* write-only: it can't be read back, its default is off */
  n += (size_t)snprintf(out + n, cap - n, "PRAGMA case_sensitive_like=0;");
  for (int i = 0; session_pragmas[i]; i++) {
    char q[64];
    sqlite3_stmt *st = NULL;
    snprintf(q, sizeof q, "PRAGMA %s", session_pragmas[i]);
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char *v = sqlite3_column_text(st, 0);
      if (v && strlen((const char *)v) < 32 && n + 128 < cap)
        n += (size_t)snprintf(out + n, cap - n, "PRAGMA %s=%s;", session_pragmas[i], (const char *)v);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  pristine_sql = out;
}

/* Runs one statement that returns nothing we need, with sqlite3_exec (the
 * core's one-statement rule is for callers' SQL, not for this). */
static int reset_sql(lite_conn *lc, const char *sql, sq_err *err) {
  int rc = sqlite3_exec(lc->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? SQ_OK : lite_fail(lc, rc, PH_STEP, err);
}

/* Appends name as a quoted identifier ("" doubled) to buf (cap bytes). */
static int put_quoted(char *buf, size_t cap, const char *prefix, const char *name) {
  size_t n = strlen(prefix);
  if (n + 3 > cap) return -1;
  memcpy(buf, prefix, n);
  buf[n++] = '"';
  for (; *name; name++) {
    if (n + 4 > cap) return -1;
    if (*name == '"') buf[n++] = '"';
    buf[n++] = *name;
  }
  buf[n++] = '"';
  buf[n] = '\0';
  return 0;
}

/* Drops every temporary table, view and trigger, one at a time (the
 * schema can't change under a running query). */
static int drop_temp_objects(lite_conn *lc, sq_err *err) {
  for (int guard = 0; guard < 100000; guard++) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(lc->db,
                                "SELECT type, name FROM temp.sqlite_schema WHERE type IN ('table', 'view', 'trigger') "
                                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type = 'table' LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) return lite_fail(lc, rc, PH_PREPARE, err);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
      sqlite3_finalize(st);
      return SQ_OK;
    }
    if (rc != SQLITE_ROW) {
      sqlite3_finalize(st);
      return lite_fail(lc, rc, PH_STEP, err);
    }
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    char sql[1024];
    const char *verb = !type ? "DROP TABLE temp." : !strcmp(type, "view") ? "DROP VIEW temp."
                       : !strcmp(type, "trigger")                       ? "DROP TRIGGER temp."
                                                                        : "DROP TABLE temp.";
    int bad = !name || put_quoted(sql, sizeof sql, verb, name);
    sqlite3_finalize(st);
    if (bad) return sq_err_set(err, SQ_EINTERNAL, "sqlite: can't drop a temporary object with a long name");
    if ((rc = reset_sql(lc, sql, err)) != SQ_OK) return rc;
  }
  return sq_err_set(err, SQ_EINTERNAL, "sqlite: too many temporary objects to drop");
}

/* Detaches every attached database. */
static int detach_all(lite_conn *lc, sq_err *err) {
  const char *name;
  while ((name = sqlite3_db_name(lc->db, 2)) != NULL) {
    char sql[1024];
    if (put_quoted(sql, sizeof sql, "DETACH ", name))
      return sq_err_set(err, SQ_EINTERNAL, "sqlite: can't detach a database with a long name");
    int rc = reset_sql(lc, sql, err);
    if (rc != SQ_OK) return rc;
  }
  return SQ_OK;
}

/*
 * Makes the connection clean for its next owner without reopening: an
 * open cursor is detached, any statement left mid-step is reset (it would
 * hold a read transaction) and an open transaction is rolled back.
 * full = 1 also restores the session lite_open made: every per-connection
 * PRAGMA back to a fresh connection's value and then the open's own
 * (foreign_keys, busy timeout, WAL and synchronous=NORMAL on writable
 * files), temporary tables, views and triggers dropped, attached
 * databases detached. Data in the main database (also :memory:) stays.
 */
static int lite_reset(sq_dconn *c, int full, sq_err *err) {
  lite_conn *lc = (lite_conn *)c;
  sq_err local_err;
  if (!err) err = &local_err;
  sq_err_clear(err);
  if (lc->cursor) cursor_detach(lc->cursor);
  for (sqlite3_stmt *st = sqlite3_next_stmt(lc->db, NULL); st; st = sqlite3_next_stmt(lc->db, st))
    if (sqlite3_stmt_busy(st)) sqlite3_reset(st);
  int rc = lite_rollback(c, err);
  if (rc != SQ_OK || !full) return rc;
  pthread_once(&pristine_once, pristine_build);
  if (!pristine_sql) return sq_err_set(err, SQ_ENOMEM, "sqlite: out of memory resetting the session");
  if ((rc = reset_sql(lc, pristine_sql, err)) != SQ_OK) return rc;
  if ((rc = drop_temp_objects(lc, err)) != SQ_OK) return rc;
  if ((rc = detach_all(lc, err)) != SQ_OK) return rc;
  sqlite3_busy_handler(lc->db, lite_busy, lc); /* the cancellable wait of lite_open */
  const char *file = sqlite3_db_filename(lc->db, "main");
  if (file && file[0] && !sqlite3_db_readonly(lc->db, "main") &&
      (rc = reset_sql(lc, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", err)) != SQ_OK)
    return rc;
  /* an exclusive lock from locking_mode=EXCLUSIVE goes at the next read */
  if ((rc = reset_sql(lc, "PRAGMA foreign_keys=ON; SELECT count(*) FROM main.sqlite_schema", err)) != SQ_OK)
    return rc;
  return SQ_OK;
}

/* What the connection itself shows, with no SQL: foreign keys off or an
 * attached database means the session changed. */
static int lite_needs_reset(sq_dconn *c) {
  lite_conn *lc = (lite_conn *)c;
  int fk = 1;
  if (lc->dead) return 0;
  sqlite3_db_config(lc->db, SQLITE_DBCONFIG_ENABLE_FKEY, -1, &fk);
  return !fk || sqlite3_db_name(lc->db, 2) != NULL;
}

/* Called from another thread while a statement runs (see
 * sq_driver.cancel): ends a busy wait (lite_busy) and interrupts the
 * statement (SQLITE_INTERRUPT). Both are cleared when the next statement
 * starts, so a late cancel never hits it. */
static int lite_cancel(sq_dconn *c, sq_err *err) {
  lite_conn *lc = (lite_conn *)c;
  atomic_store_explicit(&lc->interrupted, 1, memory_order_relaxed);
  sqlite3_interrupt(lc->db);
  sq_err_clear(err);
  return SQ_OK;
}

/* Nothing in flight: no cursor and no statement left mid-step. */
static int lite_is_clean(sq_dconn *c) {
  lite_conn *lc = (lite_conn *)c;
  if (lc->dead || lc->cursor) return 0;
  for (sqlite3_stmt *st = sqlite3_next_stmt(lc->db, NULL); st; st = sqlite3_next_stmt(lc->db, st))
    if (sqlite3_stmt_busy(st)) return 0;
  return 1;
}

static const char *lite_server_version(sq_dconn *c) {
  return ((lite_conn *)c)->version;
}

/*
 * Test hook (declared by tests/test_driver_sqlite.c only): the number of
 * statements prepared on the connection, cached or in use, which must
 * stay within CACHE_MAX plus the ones a caller is running.
 */
int sq_sqlite_cached_count(sq_dconn *c) {
  lite_conn *lc = (lite_conn *)c;
  int n = 0;
  for (sqlite3_stmt *st = sqlite3_next_stmt(lc->db, NULL); st; st = sqlite3_next_stmt(lc->db, st))
    n++;
  return n;
}

/* Test hook: how long the connection waits for a locked database. */
int sq_sqlite_busy_ms(sq_dconn *c) { return ((lite_conn *)c)->busy_ms; }

const sq_driver sq_driver_sqlite = {
  .name = "sqlite",
  .dialect = SQ_DIALECT_SQLITE,
  .ph_style = SQ_PH_QMARK,
  .open = lite_open,
  .close = lite_close,
  .ping = lite_ping,
  .is_dead = lite_is_dead,
  .exec = lite_exec,
  .cursor_open = lite_cursor_open,
  .cursor_fetch = lite_cursor_fetch,
  .cursor_close = lite_cursor_close,
  .begin = lite_begin,
  .commit = lite_commit,
  .rollback = lite_rollback,
  .savepoint = lite_savepoint,
  .release = lite_release,
  .rollback_to = lite_rollback_to,
  .in_transaction = lite_in_transaction,
  .reset = lite_reset,
  .needs_reset = lite_needs_reset,
  .server_version = lite_server_version,
  .cancel = lite_cancel,
  .is_clean = lite_is_clean,
};
