/*
 * sqorm.h - the public C API of sqorm.
 *
 * This is the only header a C host needs. It never includes lua.h: a C
 * program can open pools, run statements with bound values and read typed
 * rows with no Lua at all (see examples/c_query.c).
 *
 * Conventions
 *   - Fallible calls return an int status (SQ_OK == 0, or an sq_kind) and
 *     fill a caller-supplied sq_err. Nothing calls exit(), abort() or
 *     longjmp(); assert() guards only our own invariants.
 *   - Ownership is spelled out on every type and function. "Borrowed" means
 *     the pointer stays owned by the callee and is valid only for as long as
 *     the comment says.
 *   - Values travel as sq_value arrays, never formatted into SQL.
 *
 * Threads
 *   sq_global_init() must run once before threads start (it is idempotent
 *   and guarded, but the client libraries' own init is not thread-safe).
 *   An sq_pool may be shared by any number of threads. An sq_conn has one
 *   owner at a time: whoever acquired it from the pool. An sq_tx (and the
 *   sq_cursors opened on it) likewise has one user at a time; it owns its
 *   connection until it ends (see "Transactions and cursors").
 */
#ifndef SQORM_H
#define SQORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SQORM_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* Error kinds. Their names (sq_kind_name) are what Lua sees as err.kind. */
typedef enum sq_kind {
  SQ_OK = 0,
  SQ_EUSAGE,        /* "usage": the caller passed something wrong */
  SQ_ECONNECTION,   /* "connection": can't reach / lost the server, TLS refused */
  SQ_ETIMEOUT,      /* "timeout": statement or connect timeout */
  SQ_EPOOL_TIMEOUT, /* "pool_timeout": no connection free within acquire_timeout */
  SQ_ECONSTRAINT,   /* "constraint": not null, foreign key, check */
  SQ_EUNIQUE,       /* "unique_violation" */
  SQ_EVALIDATION,   /* "validation": rejected before any SQL was sent */
  SQ_ESYNTAX,       /* "syntax": SQL the server could not parse / unknown name */
  SQ_ECLOSED,       /* "closed": use of a closed db, tx, cursor */
  SQ_EAUTH,         /* "auth": bad user or password */
  SQ_EDATABASE,     /* "database": any other error the server reported */
  SQ_ENOMEM,        /* "nomem" */
  SQ_EINTERNAL,     /* "internal": a bug in sqorm or a client library */
  SQ_ESTALE,        /* "stale": an instance write or reload matched no row,
                     * or lost an optimistic-locking race */
  SQ_EDEADLOCK,     /* "deadlock": the server ended the transaction (deadlock,
                     * serialization failure, write conflict); it may be retried */
  SQ_ECANCELED,     /* "canceled": an asynchronous operation was cancelled */
  SQ_KIND_COUNT
} sq_kind;

typedef struct sq_err {
  int kind;          /* an sq_kind; SQ_OK when no error */
  char code[32];     /* driver's native code: "1062", "23505", "SQLITE_CONSTRAINT_UNIQUE" */
  char sqlstate[6];  /* five-character SQLSTATE or "" */
  char msg[1024];    /* human-readable, never empty when kind != SQ_OK */
} sq_err;

const char *sq_kind_name(int kind);
void sq_err_clear(sq_err *e);
/* Sets kind and a printf-style message (truncated to fit), clears code and
 * sqlstate; returns kind. Drivers call sq_err_native afterwards. */
int sq_err_set(sq_err *e, int kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
;
/* Sets the native code (e.g. "1062", "23505") and SQLSTATE (NULL or "" for
 * none); both are truncated to fit. */
void sq_err_native(sq_err *e, const char *code, const char *sqlstate);

/* ------------------------------------------------------------------ */
/* Values                                                               */
/* ------------------------------------------------------------------ */

typedef enum sq_vtype {
  SQ_VNULL = 0,
  SQ_VINT,    /* int64 */
  SQ_VFLOAT,  /* double */
  SQ_VBOOL,   /* 0 / 1 */
  SQ_VTEXT,   /* UTF-8 text, binary-safe (len may include NULs) */
  SQ_VBLOB    /* bytes */
} sq_vtype;

/* A value. Strings are borrowed: whoever builds an sq_value owns s.p. In a
 * row callback, s.p is valid only until the callback returns. */
typedef struct sq_value {
  int type; /* sq_vtype */
  union {
    int64_t i;
    double f;
    int b;
    struct {
      const char *p;
      size_t n;
    } s;
  } u;
} sq_value;

static inline sq_value sq_null(void) { sq_value v; v.type = SQ_VNULL; v.u.i = 0; return v; }
static inline sq_value sq_int(int64_t i) { sq_value v; v.type = SQ_VINT; v.u.i = i; return v; }
static inline sq_value sq_float(double f) { sq_value v; v.type = SQ_VFLOAT; v.u.f = f; return v; }
static inline sq_value sq_bool(int b) { sq_value v; v.type = SQ_VBOOL; v.u.b = b != 0; return v; }
static inline sq_value sq_text(const char *p, size_t n) { sq_value v; v.type = SQ_VTEXT; v.u.s.p = p; v.u.s.n = n; return v; }
static inline sq_value sq_blob(const char *p, size_t n) { sq_value v; v.type = SQ_VBLOB; v.u.s.p = p; v.u.s.n = n; return v; }

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

typedef enum sq_dialect {
  SQ_DIALECT_NONE = 0,
  SQ_DIALECT_SQLITE,
  SQ_DIALECT_MYSQL,
  SQ_DIALECT_POSTGRES
} sq_dialect;

typedef enum sq_ssl_mode {
  SQ_SSL_DEFAULT = 0, /* not given: the driver's default (prefer for pg/mysql) */
  SQ_SSL_DISABLE,
  SQ_SSL_PREFER,
  SQ_SSL_REQUIRE,
  SQ_SSL_VERIFY_CA,
  SQ_SSL_VERIFY_IDENTITY
} sq_ssl_mode;

/* An extra key=value connection parameter passed through to the client
 * library (libpq keywords such as application_name). */
typedef struct sq_param {
  char *key;
  char *value;
} sq_param;

/* Pool settings, in seconds. Negative means "not given" (use the default). */
typedef struct sq_pool_opts {
  int max;                /* default 5 */
  int min;                /* default 0 */
  double acquire_timeout; /* default 30 */
  double idle_timeout;    /* default 10 */
  double max_lifetime;    /* default 0 = unlimited */
  int pre_ping;           /* -1 not given, default 0 (off) */
} sq_pool_opts;

/* A parsed connection configuration. Every string is owned by the config
 * (malloc'd) and freed by sq_config_free. NULL means "not given". */
typedef struct sq_config {
  int dialect;           /* sq_dialect */
  char *scheme;          /* as written: "mysql", "tidb", "postgresql", ... */
  char *host;
  int port;              /* 0 = default for the dialect */
  char *user;
  char *password;
  char *database;
  char *storage;         /* sqlite: file path or ":memory:" */
  char *name;            /* shared pool name, or NULL */
  double connect_timeout;/* seconds, 0 = library default */
  struct {
    int mode;            /* sq_ssl_mode */
    char *ca, *cert, *key, *min_version;
  } ssl;
  sq_pool_opts pool;
  sq_param *params;      /* extra driver parameters */
  int nparams;
} sq_config;

void sq_config_init(sq_config *cfg);
void sq_config_free(sq_config *cfg);
/* Parses a URL into cfg (which must be sq_config_init'ed; fields already
 * set are overwritten). Returns SQ_OK or SQ_EUSAGE naming the problem. */
int sq_config_parse_url(sq_config *cfg, const char *url, sq_err *err);
/* Sets one option by name, as the Lua connect table or a URL query
 * parameter spells it ("host", "port", "ssl.mode", "sslmode", "pool.max",
 * ...). Unknown keys are an error unless the dialect passes them through. */
int sq_config_set(sq_config *cfg, const char *key, const char *value, sq_err *err);
/* Fills defaults and checks consistency (a dialect is set, ports in range). */
int sq_config_finish(sq_config *cfg, sq_err *err);
/* Deep-copies src into dst (which need not be initialised); SQ_OK or
 * SQ_ENOMEM (dst is then empty). */
int sq_config_copy(sq_config *dst, const sq_config *src);
/* 1 when two configs describe the same pool (used for named pools). */
int sq_config_equal(const sq_config *a, const sq_config *b);
const char *sq_dialect_name(int dialect);
int sq_ssl_mode_parse(const char *s); /* -1 when unknown */

/* ------------------------------------------------------------------ */
/* Statements: placeholders                                             */
/* ------------------------------------------------------------------ */

/* Placeholder styles a driver expects. */
typedef enum sq_ph_style {
  SQ_PH_QMARK = 0, /* ? */
  SQ_PH_DOLLAR,    /* $1, $2 ... */
  /* Flag or'ed into the style for sq_stmt_rewrite: backslash escapes
   * inside '...' and "..." strings (MySQL's default). */
  SQ_PH_BACKSLASH = 0x100
} sq_ph_style;

/* The result of rewriting ?-style or :name-style SQL into a driver's
 * native placeholders. sql is owned (free with sq_stmt_text_free). For
 * named binds, names[i] (owned) is the name of parameter i, in order of
 * appearance (a name used twice appears twice). */
typedef struct sq_stmt_text {
  char *sql;
  size_t len;
  int nparams;
  int named;     /* 1 when :name binds were used */
  char **names;  /* nparams entries when named, else NULL */
} sq_stmt_text;

/* Rewrites placeholders outside string literals, quoted identifiers,
 * comments and (for SQ_PH_DOLLAR) dollar-quoted strings. Mixing ? and
 * :name is SQ_EUSAGE. "::" (a PostgreSQL cast) and ":=" are left alone.
 * style is an sq_ph_style, optionally | SQ_PH_BACKSLASH. */
int sq_stmt_rewrite(const char *sql, size_t len, int style, sq_stmt_text *out, sq_err *err);
void sq_stmt_text_free(sq_stmt_text *t);

/* ------------------------------------------------------------------ */
/* Rows                                                                 */
/* ------------------------------------------------------------------ */

/* Column metadata. name is borrowed, valid for the lifetime of the result
 * (until the statement completes). type is a hint: dynamically typed
 * stores (SQLite) may deliver other types per value. */
typedef struct sq_column {
  const char *name;
  size_t name_len;
  int type;         /* the sq_vtype values of this column will have, or SQ_VNULL if it varies */
} sq_column;

/* The callback table through which a driver hands rows back, so the
 * caller (e.g. the Lua binding) builds its own objects with no
 * intermediate copy. Returning non-zero from a callback stops the
 * statement; the driver then returns the error the callback put in err,
 * or SQ_EUSAGE "row callback stopped" when it left err empty. */
typedef struct sq_row_sink {
  void *ud;
  /* Called once, before the first row (also for zero rows when the
   * statement returns a result set). */
  int (*columns)(void *ud, int ncols, const sq_column *cols, sq_err *err);
  /* Called per row. vals[i] strings are valid until the callback returns. */
  int (*row)(void *ud, int ncols, const sq_value *vals, sq_err *err);
} sq_row_sink;

/* What a statement did. */
typedef struct sq_result {
  int64_t affected_rows;   /* -1 when not applicable */
  int64_t last_insert_id;  /* 0 when none */
  int64_t rows;            /* rows delivered to the sink */
  int has_result_set;      /* the statement returned columns */
} sq_result;

/* ------------------------------------------------------------------ */
/* Driver interface                                                     */
/* ------------------------------------------------------------------ */

typedef struct sq_dconn sq_dconn;   /* a driver's connection (opaque) */
typedef struct sq_dcursor sq_dcursor; /* a driver's open streaming statement */

/* Transaction isolation levels. */
typedef enum sq_isolation {
  SQ_ISO_DEFAULT = 0,
  SQ_ISO_READ_UNCOMMITTED,
  SQ_ISO_READ_COMMITTED,
  SQ_ISO_REPEATABLE_READ,
  SQ_ISO_SERIALIZABLE
} sq_isolation;

/*
 * One const table of function pointers per dialect (driver_sqlite.c,
 * driver_mysql.c, driver_postgres.c). Drivers never see a query tree: they
 * receive SQL text with native placeholders and an array of values.
 *
 * Every function that can fail fills err, including err->code (the native
 * code as text) and err->sqlstate, and maps the failure onto an sq_kind.
 * When a failure means the connection is unusable, the driver sets
 * *dead (through conn_dead) so the pool discards it.
 */
typedef struct sq_driver {
  const char *name;   /* "sqlite", "mysql", "postgres" */
  int dialect;        /* sq_dialect */
  int ph_style;       /* sq_ph_style */

  /* Opens a connection using cfg (host, port, TLS, ...). */
  int (*open)(const sq_config *cfg, sq_dconn **out, sq_err *err);
  void (*close)(sq_dconn *c);
  /* A cheap round trip; fails with SQ_ECONNECTION when the link is dead. */
  int (*ping)(sq_dconn *c, sq_err *err);
  /* 1 once the driver has seen the connection die (lost link, server
   * killed it). The pool discards such connections. */
  int (*is_dead)(sq_dconn *c);

  /* Runs one statement with bound values; rows (if any) go to sink (may be
   * NULL to discard). params (and their strings) must stay valid until
   * exec returns; for cursor_open the driver copies what it needs, so
   * they need only last until cursor_open returns. Fully buffered or not is the driver's business; the
   * sink sees every row before exec returns. */
  int (*exec)(sq_dconn *c, const char *sql, size_t len, const sq_value *params,
              int nparams, const sq_row_sink *sink, sq_result *res, sq_err *err);

  /* Streaming: open a statement whose rows are fetched one at a time with
   * bounded memory (libpq single-row mode, unbuffered mysql, sqlite
   * stepping). While a cursor is open, no other call may be made on the
   * connection. sink->columns is called by cursor_open. cursor_fetch
   * returns SQ_OK and sets *has_row to 1 after delivering one row to
   * sink->row, or to 0 at the end; or returns an error kind. The sink
   * pointer must stay valid until cursor_close. */
  int (*cursor_open)(sq_dconn *c, const char *sql, size_t len, const sq_value *params,
                     int nparams, const sq_row_sink *sink, sq_dcursor **out, sq_err *err);
  int (*cursor_fetch)(sq_dcursor *cur, int *has_row, sq_err *err);
  /* Closes the cursor, discarding unread rows; safe at any point. */
  void (*cursor_close)(sq_dcursor *cur);

  /* Transactions. savepoint names are validated identifiers made by the
   * core ("sq_sp_1"). isolation is an sq_isolation. */
  int (*begin)(sq_dconn *c, int isolation, sq_err *err);
  int (*commit)(sq_dconn *c, sq_err *err);
  int (*rollback)(sq_dconn *c, sq_err *err);
  int (*savepoint)(sq_dconn *c, const char *name, sq_err *err);
  int (*release)(sq_dconn *c, const char *name, sq_err *err);
  int (*rollback_to)(sq_dconn *c, const char *name, sq_err *err);
  /* 1 when a transaction is open on the server side. */
  int (*in_transaction)(sq_dconn *c);
  /* Brings a connection back to a clean state for the next user. With
   * full = 0 (the common path, no extra round trip when nothing is open):
   * finish a forgotten cursor and roll back an open transaction. With
   * full = 1 (the pool passes it when the session may have changed, see
   * sq_conn_mark_dirty and needs_reset): also restore the session to the
   * state it had right after open (session variables, temporary tables,
   * locks, prepared-statement caches as needed). A failure makes the pool
   * discard the connection. */
  int (*reset)(sq_dconn *c, int full, sq_err *err);
  /* Optional (may be NULL): 1 when the driver itself saw the session
   * change (e.g. MySQL's SERVER_SESSION_STATE_CHANGED status), so the
   * pool must run a full reset before lending the connection again. */
  int (*needs_reset)(sq_dconn *c);

  /* The server's version string (borrowed, valid while c is open). */
  const char *(*server_version)(sq_dconn *c);
} sq_driver;

/* The built-in drivers (present when built with SQ_WITH_<NAME>). */
extern const sq_driver sq_driver_sqlite;
extern const sq_driver sq_driver_mysql;
extern const sq_driver sq_driver_postgres;

/* Looks up a driver by dialect; NULL when that driver was not built. */
const sq_driver *sq_driver_for(int dialect);

/* ------------------------------------------------------------------ */
/* Connections and the pool                                             */
/* ------------------------------------------------------------------ */

typedef struct sq_pool sq_pool;
typedef struct sq_conn sq_conn;

typedef struct sq_pool_stats {
  int size;      /* open connections (idle + in use + being opened) */
  int idle;
  int in_use;
  int waiting;   /* threads waiting in acquire */
  int64_t created;
  int64_t destroyed;
  int64_t timeouts;  /* acquires that failed with SQ_EPOOL_TIMEOUT (self-deadlocks included) */
  int max, min;
  int64_t waited;    /* acquires that had to queue for a connection (cumulative) */
} sq_pool_stats;

/*
 * Who asks for a connection, for sq_pool_acquire_as. A caller that blocks
 * in acquire and can give nothing back while it waits (one Lua state
 * running one coroutine at a time, one C thread) names itself with the
 * same non-NULL `owner` on every acquire. When every connection of the
 * pool is lent to that same owner, the wait could only end by timing
 * out, so acquire fails at once with SQ_EPOOL_TIMEOUT and a message that
 * lists what each connection is held for. Connections lent to other
 * owners (other states or threads sharing a named pool), being opened or
 * closed, or lent without an owner mean an ordinary wait.
 */
typedef struct sq_holder {
  const void *owner;      /* the caller's identity, or NULL (no self-deadlock check) */
  const char *owner_name; /* names the owner in that message ("this Lua state"); NULL: "this caller" */
  const char *what;       /* what the connection is held for ("a transaction opened by ..."),
                           * copied (up to 95 bytes); NULL: "a statement in progress" */
} sq_holder;

/* One-time process init of the client libraries; idempotent, thread-safe.
 * If sqorm is the first user of SQLite in the process, it turns SQLite's
 * memory statistics off (SQLITE_CONFIG_MEMSTATUS), as SQLite recommends
 * for speed; a host that initialised SQLite first keeps its settings. */
int sq_global_init(sq_err *err);

/*
 * Pools. sq_pool_open copies cfg. Nothing connects until the first acquire
 * (sq_pool_open never does network I/O). A pool is reference-counted:
 * sq_pool_open gives one reference; sq_pool_retain adds one; sq_pool_close
 * drops one and, at zero, closes idle connections and frees the pool (the
 * last holder must have released every connection first).
 *
 * Named pools: sq_pool_open_shared(cfg) with cfg->name set returns the
 * process-wide pool of that name (creating it on first use) with a new
 * reference. A later open with a config that differs raises SQ_EUSAGE.
 */
int sq_pool_open(const sq_config *cfg, sq_pool **out, sq_err *err);
int sq_pool_open_shared(const sq_config *cfg, sq_pool **out, sq_err *err);
/* As above with an explicit driver instead of sq_driver_for(dialect): for
 * hosts that bring their own driver, and tests over a fake one. */
int sq_pool_open_driver(const sq_config *cfg, const sq_driver *drv, sq_pool **out, sq_err *err);
int sq_pool_open_shared_driver(const sq_config *cfg, const sq_driver *drv, sq_pool **out, sq_err *err);
void sq_pool_retain(sq_pool *p);
void sq_pool_close(sq_pool *p);
const sq_config *sq_pool_config(const sq_pool *p);
const sq_driver *sq_pool_driver(const sq_pool *p);

/*
 * Acquire: waits first-come first-served up to timeout seconds (< 0: the
 * pool's acquire_timeout) for a free slot, then opens or pings outside the
 * pool lock. SQ_EPOOL_TIMEOUT names the pool's counts in its message.
 * The returned connection belongs to the caller until sq_pool_release.
 */
int sq_pool_acquire(sq_pool *p, double timeout, sq_conn **out, sq_err *err);
/* The same, naming the holder (h may be NULL): see sq_holder. */
int sq_pool_acquire_as(sq_pool *p, double timeout, const sq_holder *h, sq_conn **out, sq_err *err);
/* Returns a connection. An open transaction is rolled back and the
 * connection reset; a dead connection is discarded. Never fails. */
void sq_pool_release(sq_pool *p, sq_conn *c);
/*
 * Returns c without any I/O, for finalisers (a Lua __gc may run in the
 * middle of any other statement, where no SQL may run): c goes back as
 * it is, with open_cursor (a driver cursor still open on c, or NULL),
 * and the pool closes that cursor, rolls back and resets the connection
 * when it lends it next - or closes it, when it is evicted or the pool
 * closes. The only I/O it may do is closing the connection when the pool
 * is already closed.
 */
void sq_pool_release_later(sq_pool *p, sq_conn *c, sq_dcursor *open_cursor);
/* size counts connections being opened or closed too; in_use includes
 * ones being opened for a caller. */
void sq_pool_stats_get(sq_pool *p, sq_pool_stats *st);
/*
 * Acquire, sq_conn_exec, release: the one-call form for C hosts. If the
 * statement failed with SQ_ECONNECTION on a connection reused from the
 * idle list before any row reached the sink, and the SQL is a read, it
 * runs once more on a freshly opened connection. Never for a statement
 * inside a transaction (use the transaction's connection).
 */
int sq_pool_exec(sq_pool *p, const char *sql, size_t len, const sq_value *params, int nparams,
                 const sq_row_sink *sink, sq_result *res, sq_err *err);
/* Closes idle connections past idle_timeout / max_lifetime down to min. */
void sq_pool_evict(sq_pool *p);

/* A connection's driver handle and state. */
const sq_driver *sq_conn_driver(const sq_conn *c);
sq_dconn *sq_conn_handle(sq_conn *c);
int sq_conn_is_dead(sq_conn *c);

/* Marks a connection unusable (e.g. a caller abandoned a statement
 * midway): release will close it instead of pooling it. */
void sq_conn_mark_dead(sq_conn *c);

/* Marks a connection's session as possibly changed (a raw statement that
 * sets session state: SET, PRAGMA, LOCK TABLES, GET_LOCK, advisory locks,
 * temporary tables, ...): release runs the driver's full reset before the
 * connection is lent again, or discards it when that fails. */
void sq_conn_mark_dirty(sq_conn *c);

/* Runs SQL that already uses the driver's native placeholders (as made by
 * sq_stmt_rewrite or the renderer). Marks the connection dead when the
 * driver says the link is gone. */
int sq_conn_exec_native(sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                        const sq_row_sink *sink, sq_result *res, sq_err *err);

/* 1 when re-running the statement can't change data: it starts with
 * SELECT, WITH, SHOW, VALUES, EXPLAIN or TABLE and holds no writing word
 * (INSERT, UPDATE, DELETE, INTO, CALL, ...), no second statement and
 * nothing the scanner is unsure of. Only such a statement is retried on a
 * fresh connection. */
int sq_sql_is_read(const char *sql, size_t len);

/*
 * Runs SQL written with ? or :name placeholders (rewritten to the driver's
 * style) with values in order (positional) or resolved by the caller from
 * names (see sq_stmt_rewrite). Rows go to sink.
 */
int sq_conn_exec(sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                 const sq_row_sink *sink, sq_result *res, sq_err *err);

/* ------------------------------------------------------------------ */
/* Transactions and cursors                                             */
/* ------------------------------------------------------------------ */

/*
 * An sq_tx is one transaction: it owns the pooled connection it runs on
 * (from sq_tx_begin until it ends), its stack of savepoints and the
 * cursors opened on it.
 *
 * States: open; done (committed or rolled back by its owner); failed
 * (ended by an error of one of its statements: a deadlock or
 * serialization failure the server resolved by rolling it back
 * (SQ_EDEADLOCK), or a lost connection). Once it is no longer open it
 * holds no connection; every call that would use it fails: SQ_ECLOSED
 * when done, the kind of the error that ended it when failed (a rollback
 * of a failed transaction succeeds and makes it done).
 *
 * Ending the transaction (commit, rollback, failure) first closes every
 * cursor opened on it - a later sq_cursor_fetch fails with SQ_ECLOSED
 * saying why - and ends every savepoint: a savepoint still open when its
 * transaction commits is committed with it, as SQL does.
 *
 * Savepoints nest: sq_tx_savepoint pushes one (SAVEPOINT sq_sp_<id>) and
 * returns its id. Releasing or rolling back a savepoint also ends every
 * savepoint above it and closes the cursors opened inside it. A
 * savepoint that its owner drops unfinished (sq_tx_savepoint_forget, from
 * a finaliser) runs no SQL and is never rolled back on its own: on the
 * server, everything run after it - the enclosing transaction's later
 * work included - is inside it, so rolling it back later would undo that
 * work too. It stays part of its parent: the parent's commit keeps its
 * statements, the parent's rollback undoes them.
 *
 * Statements: sq_tx_conn gives the connection for one statement and pins
 * the transaction until sq_tx_conn_done; ending a pinned transaction is
 * SQ_EUSAGE (a callback tried to end the transaction in the middle of one
 * of its statements). sq_tx_conn_done with a result of kind SQ_EDEADLOCK
 * or SQ_ECONNECTION (or a connection found dead) fails the transaction:
 * it is rolled back and its connection returned at that point.
 *
 * Finalisers: sq_tx_abandon and sq_cursor_abandon do no I/O (no SQL, no
 * reads); the connection goes back to the pool with sq_pool_release_later
 * and is rolled back when the pool lends it next.
 *
 * Lifetimes: sq_tx_begin returns one reference; sq_tx_retain adds one
 * (a savepoint handle, a cursor holds one each); sq_tx_free drops one and
 * the last one abandons a transaction still open, then frees it.
 *
 * Threads: like an sq_conn, an sq_tx and its cursors have one user at a
 * time (calls on them are not synchronised); references may be dropped
 * from any thread. Nothing here calls back into the caller except row
 * sinks.
 */
typedef struct sq_tx sq_tx;
typedef struct sq_cursor sq_cursor;

enum { SQ_TX_OPEN = 1, SQ_TX_DONE, SQ_TX_FAILED };

/* Acquires a connection from p as h (may be NULL) and runs BEGIN with the
 * isolation level (an sq_isolation). On failure nothing is held. */
int sq_tx_begin(sq_pool *p, const sq_holder *h, int isolation, sq_tx **out, sq_err *err);
/* The statement sq_tx_begin sends for an isolation level on a dialect,
 * for logs ("BEGIN", "START TRANSACTION", "BEGIN ISOLATION LEVEL ..."). */
const char *sq_tx_begin_sql(int dialect, int isolation);
/* Ends the transaction (see above). A commit that fails rolls back; the
 * transaction is then failed with that error. */
int sq_tx_commit(sq_tx *tx, sq_err *err);
int sq_tx_rollback(sq_tx *tx, sq_err *err);
/* For finalisers: ends an open transaction with no I/O (rolled back by
 * the pool later). Idempotent. */
void sq_tx_abandon(sq_tx *tx);
int sq_tx_state(const sq_tx *tx); /* SQ_TX_* */
void sq_tx_retain(sq_tx *tx);
void sq_tx_free(sq_tx *tx);
/* The pool the transaction's connection came from (borrowed), or NULL
 * once it holds none. */
sq_pool *sq_tx_pool(const sq_tx *tx);

/* The transaction c belongs to (lent to by sq_tx_begin), or NULL. */
sq_tx *sq_conn_tx(const sq_conn *c);

/* The connection for one statement of the transaction (see above);
 * closes cursors abandoned since the last call first. The caller holds
 * a reference to tx until sq_tx_conn_done; an sq_tx_abandon meanwhile
 * takes effect at that sq_tx_conn_done. */
int sq_tx_conn(sq_tx *tx, sq_conn **out, sq_err *err);
/* Ends the use begun by sq_tx_conn. result: the statement's error, or
 * NULL / kind SQ_OK when it succeeded or the caller doesn't know. */
void sq_tx_conn_done(sq_tx *tx, const sq_err *result);
/* The transaction's connection without pinning it (NULL when not open):
 * for callers that only look. */
sq_conn *sq_tx_peek_conn(const sq_tx *tx);

/* Savepoints (names sq_sp_<id>). */
int sq_tx_savepoint(sq_tx *tx, unsigned *id, sq_err *err);
/* The id the next sq_tx_savepoint will use (to log its name before). */
unsigned sq_tx_next_savepoint(const sq_tx *tx);
int sq_tx_savepoint_release(sq_tx *tx, unsigned id, sq_err *err);
int sq_tx_savepoint_rollback(sq_tx *tx, unsigned id, sq_err *err); /* ROLLBACK TO, then RELEASE */
void sq_tx_savepoint_forget(sq_tx *tx, unsigned id);               /* finalisers: no SQL */
int sq_tx_savepoint_is_open(const sq_tx *tx, unsigned id);
/* Writes the savepoint's name ("sq_sp_<id>") into buf (>= 24 bytes). */
void sq_tx_savepoint_name(unsigned id, char *buf, size_t n);

/*
 * Streaming cursors with bounded memory (libpq single-row mode,
 * unbuffered MySQL reads, SQLite stepping): on a transaction's connection
 * (tx != NULL; the transaction keeps track of it and closes it when it
 * ends or when the savepoint it was opened in ends), or on a connection
 * acquired from p as h and held until the cursor closes.
 *
 * *out is set as soon as the cursor exists, before the connection is
 * acquired and before the first sink call, so a caller whose sink may
 * longjmp (a Lua error while building a row) still has it to free: a
 * cursor left in the middle of a driver call marks its connection dead
 * when it is closed. sink must stay valid until the cursor is closed.
 */
int sq_cursor_open(sq_pool *p, const sq_holder *h, sq_tx *tx, const char *sql, size_t len,
                   const sq_value *params, int nparams, const sq_row_sink *sink, sq_cursor **out,
                   sq_err *err);
/* Delivers one row to the sink (*has_row = 1) or reports the end
 * (*has_row = 0, the cursor stays open until closed). SQ_ECLOSED, with
 * the reason, once closed (by sq_cursor_close or by its transaction). */
int sq_cursor_fetch(sq_cursor *c, int *has_row, sq_err *err);
/* 1 while the cursor can still deliver rows. */
int sq_cursor_is_open(const sq_cursor *c);
/* Why the cursor was closed (borrowed, valid until it is freed), or NULL
 * while it is open or when its owner closed it. */
const char *sq_cursor_closed_reason(const sq_cursor *c);
/* Marks the connection dead (the caller abandoned a statement midway),
 * then closes. */
void sq_cursor_fail(sq_cursor *c);
/* Ends the statement (unread rows are discarded) and gives a pooled
 * connection back. Idempotent; the cursor stays allocated. */
void sq_cursor_close(sq_cursor *c);
/* For finalisers: closes with no I/O (the driver cursor goes back with
 * its connection, see sq_pool_release_later, or to the transaction,
 * which closes it before its next statement) and frees the cursor. */
void sq_cursor_abandon(sq_cursor *c);
/* Closes (with I/O) and frees. */
void sq_cursor_free(sq_cursor *c);

/*
 * Future: the asynchronous executor. A worker thread will take a job
 * (pool, SQL, owned copies of the values, a completion callback) from a
 * queue, acquire from the same pool, run sq_conn_exec with a sink that
 * builds a C-side result (owned values), and post completion to the
 * originating Lua state's queue; the coroutine then resumes and converts
 * the C result to Lua values in its own state. Nothing in sq_pool or the
 * driver interface is tied to the calling thread or to Lua, which is what
 * makes this possible without changing them.
 */

/* ------------------------------------------------------------------ */
/* Models                                                               */
/* ------------------------------------------------------------------ */

/* Column types (sqorm.types in Lua). */
typedef enum sq_ctype {
  SQ_T_INTEGER = 1,
  SQ_T_BIGINT,
  SQ_T_SMALLINT,
  SQ_T_FLOAT,
  SQ_T_DOUBLE,
  SQ_T_DECIMAL,  /* precision, scale; values travel as exact strings */
  SQ_T_STRING,   /* length (default 255) */
  SQ_T_CHAR,     /* length (default 1) */
  SQ_T_TEXT,
  SQ_T_BOOLEAN,
  SQ_T_DATE,     /* "YYYY-MM-DD" */
  SQ_T_DATETIME, /* "YYYY-MM-DD HH:MM:SS[.ffffff]" UTC */
  SQ_T_BLOB,
  SQ_T_UUID,     /* 36-char text; v4 generated for a primary key without a value */
  SQ_T_COUNT
} sq_ctype;

const char *sq_ctype_name(int type); /* "INTEGER", "STRING", ... */

/* How a column gets a value when an insert gives none. */
typedef enum sq_default_kind {
  SQ_DEFAULT_NONE = 0,
  SQ_DEFAULT_VALUE,    /* default_value */
  SQ_DEFAULT_NOW,      /* the current UTC time (sqorm.fn.now()) */
  SQ_DEFAULT_UUIDV4,   /* a random UUID */
  SQ_DEFAULT_CALLBACK  /* the binding computes it (a Lua function) */
} sq_default_kind;

/* A column definition, as given to sq_model_add_column (which copies
 * every string and value). */
typedef struct sq_coldef {
  const char *name;
  int type;            /* sq_ctype */
  int length;          /* STRING(n), CHAR(n); 0 = default */
  int precision, scale;/* DECIMAL(p,s); 0 = default (10,0) */
  int allow_null;      /* 1 unless set to 0 (primary keys are never null) */
  int primary_key;
  int auto_increment;
  const char *unique;  /* NULL: not unique; "": unique alone; "name": composite unique key shared by columns */
  const char *comment;
  int default_kind;    /* sq_default_kind */
  sq_value default_value;
  /* Checks run by sq_model_validate before any SQL (Lua adds patterns and
   * custom functions on top). Unset: has_len/has_min/has_max = 0. */
  int has_len; int64_t len_min, len_max;  /* length in UTF-8 characters (bytes for BLOB) */
  int has_min; double min;
  int has_max; double max;
} sq_coldef;

/* Model options; NULL strings mean "the default". */
typedef struct sq_model_opts {
  const char *table_name;  /* default: plural of the model name's last word */
  int timestamps;          /* -1 default (on), 0 off, 1 on */
  const char *created_at;  /* column names, default "created_at" / "updated_at" */
  const char *updated_at;
  int paranoid;            /* soft delete through deleted_at */
  const char *deleted_at;
} sq_model_opts;

typedef struct sq_model sq_model;

/* A column of a finished model (borrowed from the model, valid for its
 * lifetime). */
typedef struct sq_col {
  char *name;
  size_t name_len;
  int type, length, precision, scale;
  int allow_null, primary_key, auto_increment;
  char *unique;
  char *comment;
  int default_kind;
  sq_value default_value; /* owned by the model */
  int has_len; int64_t len_min, len_max;
  int has_min; double min;
  int has_max; double max;
  int role;               /* SQ_ROLE_* below: timestamps and deleted_at are managed */
} sq_col;

enum { SQ_ROLE_NONE = 0, SQ_ROLE_CREATED_AT, SQ_ROLE_UPDATED_AT, SQ_ROLE_DELETED_AT };

/* Builds a model: new, add columns and indexes, finish. finish adds `id`
 * INTEGER auto-increment when no column is a primary key, the timestamp
 * and deleted_at columns, and checks everything (identifiers are
 * validated here: a name that can't be quoted safely is SQ_EUSAGE). */
int sq_model_new(const char *name, const sq_model_opts *opts, sq_model **out, sq_err *err);
int sq_model_add_column(sq_model *m, const sq_coldef *def, sq_err *err);
/* An index over columns (by name); name NULL = generated
 * ("<table>_<col>_<col>"). */
int sq_model_add_index(sq_model *m, const char *name, const char *const *cols, int ncols, int unique, sq_err *err);
int sq_model_finish(sq_model *m, sq_err *err);
void sq_model_free(sq_model *m);

const char *sq_model_name(const sq_model *m);
const char *sq_model_table(const sq_model *m);
int sq_model_ncols(const sq_model *m);
const sq_col *sq_model_col(const sq_model *m, int i);
/* Column index by name, or -1. O(1) average. */
int sq_model_find(const sq_model *m, const char *name, size_t len);
/* Primary key column indexes (npk >= 1 for a finished model). */
int sq_model_pk(const sq_model *m, const int **cols);
/* Index of the column with a role (SQ_ROLE_*), or -1. */
int sq_model_role_col(const sq_model *m, int role);
int sq_model_nindexes(const sq_model *m);
/* Index i: its name, unique flag, column indexes. */
void sq_model_index(const sq_model *m, int i, const char **name, int *unique, const int **cols, int *ncols);

/* The English plural of a word (person -> people, child -> children,
 * category -> categories, bus -> buses ...), into out (size outn). */
void sq_pluralize(const char *word, char *out, size_t outn);

/*
 * Checks values against the model before any SQL runs: allow_null,
 * len, min/max, and that each value fits the column's type. vals[i] is
 * the value of column cols[i]. For a partial update (partial = 1), only
 * the given columns are checked; for an insert, missing NOT NULL columns
 * without a default fail too. Every failing field is listed in one
 * SQ_EVALIDATION message ("validation failed: coins: must be >= 0; name:
 * cannot be null").
 */
int sq_model_validate(const sq_model *m, const int *cols, const sq_value *vals, int n, int partial, sq_err *err);

/*
 * Converts v in place to the column's type when that loses nothing
 * ("1" -> 1 for an integer column, an epoch integer -> a DATETIME string,
 * true/false for BOOLEAN from 1/0), else SQ_EUSAGE naming the column.
 * Strings produced (dates) are written into buf (size >= 40), which the
 * caller keeps alive as long as v.
 */
int sq_coerce(const sq_col *col, sq_value *v, char *buf, sq_err *err);

/* Formats epoch seconds as "YYYY-MM-DD HH:MM:SS" UTC into buf (>= 20). */
void sq_format_datetime(int64_t epoch, char *buf);
/* Writes a random v4 UUID (36 chars + NUL) from OpenSSL's RAND_bytes. */
int sq_uuid_v4(char out[37], sq_err *err);

/* ------------------------------------------------------------------ */
/* The query tree and the renderer                                      */
/* ------------------------------------------------------------------ */

/*
 * Queries are trees built in an arena (sq_arena) and freed all at once.
 * Values inside are borrowed: strings must stay valid until the query is
 * rendered and executed (the Lua binding builds, renders and runs a query
 * inside one C call, with the Lua strings on its stack).
 */
typedef struct sq_arena sq_arena;
sq_arena *sq_arena_new(void);
void *sq_arena_alloc(sq_arena *a, size_t n); /* NULL when out of memory; 16-byte aligned */
void sq_arena_free(sq_arena *a);
/* Frees everything allocated so far but keeps one block, so an arena
 * reused per query stops calling malloc once warm. */
void sq_arena_reset(sq_arena *a);

typedef enum sq_op {
  SQ_OP_EQ = 1, SQ_OP_NE, SQ_OP_GT, SQ_OP_GTE, SQ_OP_LT, SQ_OP_LTE,
  SQ_OP_BETWEEN, SQ_OP_NOT_BETWEEN, /* 2 values */
  SQ_OP_IN, SQ_OP_NOT_IN,            /* n values; empty IN is false, empty NOT IN true */
  SQ_OP_LIKE, SQ_OP_NOT_LIKE,
  SQ_OP_IS_NULL, SQ_OP_NOT_NULL,     /* no value */
  SQ_OP_AND, SQ_OP_OR, SQ_OP_NOT,    /* kids */
  SQ_OP_RAW                          /* raw fragment with ? binds (sqorm.raw) */
} sq_op;

typedef struct sq_expr {
  int op;                  /* sq_op */
  int col;                 /* column index for comparisons */
  const sq_value *vals;    /* operands */
  int nvals;
  struct sq_expr **kids;   /* AND / OR / NOT (NOT has 1 kid) */
  int nkids;
  const char *raw;         /* SQ_OP_RAW: SQL fragment with ? placeholders for vals */
  size_t raw_len;
} sq_expr;

typedef enum sq_qkind {
  SQ_Q_SELECT = 1,
  SQ_Q_COUNT,     /* SELECT count(*) AS count ... */
  SQ_Q_AGGREGATE, /* SELECT <fn>(col) AS <fn> ... (agg_fn, agg_col) */
  SQ_Q_INSERT,    /* nrows rows of ncols values; returning for pg/sqlite */
  SQ_Q_UPSERT,    /* INSERT ... ON DUPLICATE KEY UPDATE / ON CONFLICT (pk or conflict cols) DO UPDATE */
  SQ_Q_UPDATE,    /* SET cols = values, plus incr (col = col + value) */
  SQ_Q_DELETE
} sq_qkind;

typedef enum sq_fn { SQ_FN_NONE = 0, SQ_FN_COUNT, SQ_FN_SUM, SQ_FN_MIN, SQ_FN_MAX, SQ_FN_AVG } sq_fn;

/* A selected attribute: a column, or fn(column) AS alias (col -1 with
 * SQ_FN_COUNT is count(*)). */
typedef struct sq_attr {
  int col;
  int fn;            /* sq_fn */
  const char *alias; /* NULL: the column name, or the fn name */
} sq_attr;

typedef struct sq_order {
  int col;
  int desc;
} sq_order;

enum { SQ_LOCK_NONE = 0, SQ_LOCK_UPDATE, SQ_LOCK_SHARE };

typedef struct sq_query {
  int kind;                /* sq_qkind */
  const sq_model *model;
  sq_expr *where;          /* NULL: no where */
  int paranoid;            /* 1: add "deleted_at IS NULL" on paranoid models (default) */
  const sq_attr *attrs;    /* NULL: every column of the model, in order */
  int nattrs;
  const sq_order *order;
  int norder;
  int64_t limit, offset;   /* -1: none */
  const int *group;        /* column indexes */
  int ngroup;
  sq_expr *having;
  int lock;                /* SQ_LOCK_* (ignored on sqlite) */
  int agg_fn, agg_col;     /* SQ_Q_AGGREGATE */
  /* INSERT / UPSERT / UPDATE values: row-major, nrows x ncols. */
  const int *cols;
  int ncols;
  const sq_value *values;
  int nrows;
  /* UPDATE increments: col = col + incr_values[i]. */
  const int *incr_cols;
  const sq_value *incr_values;
  int nincr;
  /* UPSERT: which columns to update on conflict (NULL: every inserted
   * non-key column). */
  const int *update_cols;
  int nupdate;
  int returning;           /* INSERT/UPSERT: return every column (RETURNING * where supported) */
  /* UPSERT conflict target on postgres/sqlite (NULL: the primary key),
   * e.g. the columns of a unique key. MySQL ignores it: ON DUPLICATE KEY
   * fires on any unique key. */
  const int *conflict_cols;
  int nconflict;
} sq_query;

/* Rendered SQL: text in the dialect's placeholder style plus the
 * parameters in order (values borrowed from the query). */
typedef struct sq_sql {
  char *sql;
  size_t len;
  sq_value *params;
  int nparams;
  int returns_rows;        /* the statement yields rows (SELECT or RETURNING) */
} sq_sql;

void sq_query_init(sq_query *q, int kind, const sq_model *m); /* defaults: paranoid 1, limit/offset -1 */
int sq_render(const sq_query *q, int dialect, sq_sql *out, sq_err *err);
void sq_sql_free(sq_sql *s);

/* Quotes an identifier for a dialect into out ("" / `` with doubling).
 * SQ_EUSAGE when it is empty, longer than 63 bytes, or holds a NUL or
 * bytes that are not printable UTF-8. */
int sq_quote_ident(int dialect, const char *name, size_t len, char *out, size_t outn, sq_err *err);
/* Placeholder style and backslash behaviour of a dialect. */
int sq_dialect_ph_style(int dialect);

/* ------------------------------------------------------------------ */
/* Schema (DDL)                                                         */
/* ------------------------------------------------------------------ */

/* A list of SQL statements to run in order (owned strings). */
typedef struct sq_sql_list {
  char **sql;
  int n;
} sq_sql_list;
void sq_sql_list_free(sq_sql_list *l);

/* CREATE TABLE [IF NOT EXISTS] with keys, uniques, comments (MySQL:
 * COMMENT and ENGINE=InnoDB; PostgreSQL: COMMENT ON statements), then its
 * indexes. */
int sq_render_create(const sq_model *m, int dialect, int if_not_exists, sq_sql_list *out, sq_err *err);
int sq_render_drop(const sq_model *m, int dialect, int if_exists, sq_sql_list *out, sq_err *err);
/*
 * Model:sync{ alter = true }: reads the live table on c (columns and index
 * names), then returns the statements that make it match the model: ADD
 * missing columns, ALTER changed ones, DROP columns the model no longer
 * has, CREATE missing indexes (never one that exists). Creates the table
 * when it does not exist.
 */
int sq_plan_alter(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* SQORM_H */
