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
  /*
   * Priority of the pool's worker threads (the async executor's, see
   * sq_job_submit), as nice(1) counts it: each worker lowers its own
   * priority by this many nice levels below the thread that started it
   * (the first async submit's), capped at 19; Linux nice values are per
   * thread, so the host's threads keep theirs. With the workers and the
   * host's loop on one busy CPU, the loop then gets the CPU first and
   * the workers' decoding of replies waits. The timer and canceller
   * threads (deadlines, server-side cancel) and blocking runs (on the
   * caller's thread) keep the starting thread's priority.
   * 0..19 given: applied exactly; pool open checks that the system lets
   * a thread lower its priority and fails with SQ_EUSAGE naming the
   * option when it does not (or, for a value > 0, on systems other than
   * Linux, where nice is per process). -1 not given:
   * SQ_WORKER_NICE_DEFAULT on Linux, best effort (a system that refuses
   * leaves the workers at the starting thread's priority); 0 elsewhere.
   */
  int worker_nice;
} sq_pool_opts;

/* pool.worker_nice when not given (Linux; see sq_pool_opts). */
#define SQ_WORKER_NICE_DEFAULT 10

/* One host of a multi-host configuration (owned by its config). */
typedef struct sq_host {
  char *host;
  int port;              /* 0: the config's port (sq_config_finish fills it) */
} sq_host;

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
  /*
   * Several hosts ("h1:3306,h2:3306" in a URL's authority, host =
   * "h1,h2", hosts = "h1:3306,h2:3306"): hosts[0..nhosts) in order of
   * preference, nhosts >= 2; NULL / 0 for one host. After
   * sq_config_finish every entry has its port and host / port hold
   * hosts[0]. MySQL family: a new connection goes to the first host that
   * answers, skipping for host_backoff seconds (doubling per further
   * failure, at most 12 times that) a host that failed to connect
   * (sq_host_state). PostgreSQL: passed to libpq as host=a,b port=p,q,
   * which tries them in order (see target_session_attrs).
   */
  sq_host *hosts;
  int nhosts;
  double host_backoff;   /* seconds, > 0; 0 not given (default 5) */
  /*
   * PostgreSQL statements (an sq_prepare): SQ_PREPARE_ON, named
   * server-side prepared statements kept in a per-connection cache (the
   * default); SQ_PREPARE_OFF, pooler mode, for PgBouncer / Neon's pooler
   * / Supabase in transaction mode: unnamed statements only and no
   * reliance on session state (see sq_config_pooler_mode).
   * SQ_PREPARE_AUTO (0, not given): sq_config_finish picks OFF when a
   * host contains "-pooler." or pgbouncer is set, else ON.
   */
  int prepare;
  int pgbouncer;         /* 1: pgbouncer=true was given (a hint for prepare); never passed to libpq */
} sq_config;

enum sq_prepare { SQ_PREPARE_AUTO = 0, SQ_PREPARE_ON = 1, SQ_PREPARE_OFF = 2 };

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
/* 1 when two configs describe the same pool (used for named pools); the
 * extra parameters compare as a set, in any order. */
int sq_config_equal(const sq_config *a, const sq_config *b);
/* Secrets. sq_url_redact copies url into out (size n; cut with "..."
 * when longer) with its password and the values of secret query
 * parameters (password, sslpassword, ...) replaced by "***"; it works on
 * malformed URLs too, and URL parse errors show only this form.
 * sq_config_redact replaces, in err's message, every occurrence of cfg's
 * password and secret extra parameters with "***": a safety net for text
 * a client library wrote (the pool runs it on every failed connect). */
void sq_url_redact(const char *url, char *out, size_t n);
void sq_config_redact(const sq_config *cfg, sq_err *err);
const char *sq_dialect_name(int dialect);
int sq_ssl_mode_parse(const char *s); /* -1 when unknown */
/* 1 when cfg's PostgreSQL connections run in pooler mode: prepare OFF,
 * or prepare not given and pgbouncer = true or a host containing
 * "-pooler." (Neon's pooled endpoints). 0 for other dialects. */
int sq_config_pooler_mode(const sq_config *cfg);

/*
 * Host health, process-wide, for multi-host failover (MySQL family). A
 * host whose connect failed (kind connection or timeout) is "down": new
 * connections skip it for host_backoff seconds after the first failure,
 * twice that after the second, ... at most 12 x host_backoff; a
 * successful connect forgets it. When every host of a list is down, they
 * are all tried anyway, soonest retry first, so a connect never fails
 * without trying. sq_host_state_get fills st for host:port (all zero when
 * it is up) and returns st->down; sq_host_state_reset forgets every host
 * (tests, or a host that knows the cluster is back).
 */
typedef struct sq_host_state {
  int down;          /* skipped by new connections now */
  double retry_in;   /* seconds until it is tried again (0 when up) */
  int failures;      /* consecutive failed connects */
  char last_error[160]; /* the last failure's message (no password), or "" */
} sq_host_state;
int sq_host_state_get(const char *host, int port, sq_host_state *st);
void sq_host_state_reset(void);

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
  int nstatements; /* statements in the text (0: only blanks and comments) */
  int session;   /* sq_sql_session_effect of the text */
  int is_read;   /* sq_sql_is_read_dialect of the text */
} sq_stmt_text;

/*
 * Rewrites the placeholders of sql for a dialect, using that dialect's
 * lexer (so placeholders inside string literals, quoted identifiers,
 * comments and dollar quotes are text). Binds are `?` (positional) or
 * `:name` (named); on PostgreSQL the native `$1, $2 ...` may be used
 * instead (passed through; nparams is the highest number). Mixing two
 * styles is SQ_EUSAGE, and so are SQLite's own ?NNN, @x, $x parameters.
 * On PostgreSQL `??` stands for a literal `?` (the jsonb operators are
 * written `??`, `??|`, `??&`); a bare `?|` or `?&` is SQ_EUSAGE.
 * `::` and `:=` are operators; `:x` right after a word, and after an
 * operand inside a PostgreSQL array subscript (`a[lo:hi]`), is text.
 * Also fills nstatements, session and is_read.
 */
int sq_stmt_rewrite_dialect(int dialect, const char *sql, size_t len, sq_stmt_text *out, sq_err *err);
/* As sq_stmt_rewrite_dialect, with the dialect picked from a placeholder
 * style: SQ_PH_DOLLAR is PostgreSQL (with SQ_PH_BACKSLASH, backslashes
 * escape inside '...' too), SQ_PH_QMARK | SQ_PH_BACKSLASH is MySQL,
 * SQ_PH_QMARK is SQLite. */
int sq_stmt_rewrite(const char *sql, size_t len, int style, sq_stmt_text *out, sq_err *err);
void sq_stmt_text_free(sq_stmt_text *t);

/*
 * Statements in a text, split by the dialect's lexer at each ';' outside
 * literals, comments, parentheses and routine bodies (SQLite CREATE
 * TRIGGER ... BEGIN ... END, MySQL stored programs, PostgreSQL BEGIN
 * ATOMIC). Start with *pos = 0; each call returns 1 with [*start, *end)
 * the next non-empty statement (without its ';'), or 0 at the end.
 */
int sq_sql_next(int dialect, const char *sql, size_t len, size_t *pos, size_t *start, size_t *end);
/* The number of non-empty statements in sql. */
int sq_sql_count(int dialect, const char *sql, size_t len);
/*
 * 1 when a statement of sql may change session state that outlives it,
 * so its connection needs a full reset before another caller gets it:
 * SET (on PostgreSQL not SET LOCAL / SET TRANSACTION / SET CONSTRAINTS,
 * which end with the transaction), PRAGMA with a value, ATTACH / DETACH,
 * USE, LOCK / UNLOCK, BEGIN / START typed by the caller, PREPARE /
 * DEALLOCATE, DECLARE, DISCARD / RESET, LISTEN, LOAD, FLUSH, HANDLER, XA,
 * CALL, DO, CREATE TEMP(ORARY) / temp.x / pg_temp.x, SELECT INTO TEMP or
 * INTO @var, @var := ..., and the lock and setting functions (GET_LOCK,
 * RELEASE_LOCK, pg_advisory_lock and its family, set_config, setseed).
 * Statements sqorm renders never do, and never pass through this.
 */
int sq_sql_session_effect(int dialect, const char *sql, size_t len);
/* 1 when re-running sql can't change data (see sq_sql_is_read), read
 * with the dialect's lexer. */
int sq_sql_is_read_dialect(int dialect, const char *sql, size_t len);

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

  /* Optional (may be NULL). Asks the server to stop the statement that
   * is running on c. The one driver call that may be made from another
   * thread while exec, cursor_open or cursor_fetch runs on c; the caller
   * guarantees c is not closed before cancel returns. Best effort: when
   * no statement runs, nothing happens (the next statement is not
   * affected), so a caller that raced with a statement's start calls it
   * again. The interrupted call then fails (kind timeout or database)
   * and the connection normally stays usable. May block for a round trip
   * on its own link (PostgreSQL: PQcancel to the postmaster; MySQL: a
   * short side connection running KILL QUERY <thread id>; SQLite:
   * sqlite3_interrupt, which also ends a busy wait). */
  int (*cancel)(sq_dconn *c, sq_err *err);
  /* Optional (may be NULL). 1 when no statement, result or cursor is
   * pending on c and its protocol state is known, so it can take a new
   * statement (a transaction may be open: reset rolls it back). Checked
   * after a cancelled operation; a connection that is not clean is
   * discarded instead of being pooled again. */
  int (*is_clean)(sq_dconn *c);
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
  int waiting;   /* waiting for a connection: blocking acquires and async jobs */
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
/* Opens connections (on the calling thread, waiting as acquire does with
 * the pool's acquire_timeout) until the pool holds at least its min, so
 * the handshakes happen now rather than in the first calls. SQ_OK when
 * min is 0; otherwise the first acquire's error (what was opened stays). */
int sq_pool_fill(sq_pool *p, sq_err *err);

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

/*
 * Server capabilities beyond what every server of a dialect supports, as
 * SQ_CAP_* bits. The renderer uses them through sq_query.caps (0 means
 * the dialect's baseline), so a query rendered for one connection's
 * server may be run on any connection of the same pool.
 */
enum {
  /* INSERT ... RETURNING: PostgreSQL, SQLite >= 3.35, MariaDB >= 10.5
   * (not MySQL, not TiDB). The renderer adds RETURNING to a MySQL-dialect
   * plain INSERT (not an upsert) only with this bit. */
  SQ_CAP_INSERT_RETURNING = 1
};
/* The capabilities of a server of that dialect reporting that version
 * string (db:server_version(); MariaDB's "5.5.5-" prefix is understood). */
int sq_server_caps(int dialect, const char *server_version);
/* The same for the server behind c (no round trip). */
int sq_conn_caps(sq_conn *c);

/* Runs SQL that already uses the driver's native placeholders (as made by
 * sq_stmt_rewrite or the renderer). Marks the connection dead when the
 * driver says the link is gone. */
int sq_conn_exec_native(sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                        const sq_row_sink *sink, sq_result *res, sq_err *err);

/* 1 when re-running the statement can't change data: it starts with
 * SELECT, WITH, SHOW, VALUES, EXPLAIN or TABLE and holds no writing word
 * (INSERT, UPDATE, DELETE, INTO, CALL, ...), nothing that changes session
 * state, no second statement and no unterminated literal or comment.
 * Without a dialect it must be a read under every dialect's lexer. Only
 * such a statement is retried on a fresh connection. */
int sq_sql_is_read(const char *sql, size_t len);

/*
 * Runs one statement written with ? or :name placeholders (rewritten to
 * the driver's style) with values in order (positional) or resolved by
 * the caller from names (see sq_stmt_rewrite_dialect). Rows go to sink.
 * SQL holding more than one statement is SQ_EUSAGE (nothing runs); a
 * statement that may change session state (sq_sql_session_effect) marks
 * the connection dirty, so release resets its session.
 */
int sq_conn_exec(sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                 const sq_row_sink *sink, sq_result *res, sq_err *err);
/* As sq_conn_exec, for SQL already rewritten (t, e.g. cached by the
 * caller from sq_stmt_rewrite_dialect for this connection's dialect). */
int sq_conn_exec_stmt(sq_conn *c, const sq_stmt_text *t, const sq_value *params, int nparams,
                      const sq_row_sink *sink, sq_result *res, sq_err *err);

/* The kind (SQ_ETIMEOUT, SQ_ECANCELED, SQ_ECLOSED) with which the
 * operation running on c was stopped, or 0. Once it is set,
 * sq_conn_exec / sq_conn_exec_native refuse to start statements (they
 * fail with that kind); a run callback that loops (cursor fetches,
 * batches) should check it between steps. */
int sq_conn_stopped(sq_conn *c);

/* ------------------------------------------------------------------ */
/* Operations: jobs, the executor, completion queues                    */
/* ------------------------------------------------------------------ */

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
 * saying why - and ends every savepoint. A commit (or a savepoint's
 * release) with a savepoint still open inside it, dropped ones included,
 * is refused (SQ_EUSAGE, nothing changes): that savepoint's work is never
 * committed by guess; a rollback is always allowed.
 *
 * Savepoints nest: sq_tx_savepoint pushes one (SAVEPOINT sq_sp_<id>) and
 * returns its id. Releasing or rolling back a savepoint also ends every
 * savepoint above it and closes the cursors opened inside it. A
 * savepoint that its owner drops unfinished (sq_tx_savepoint_forget, from
 * a finaliser) runs no SQL and is never rolled back on its own: on the
 * server, everything run after it - the enclosing transaction's later
 * work included - is inside it, so rolling it back later would undo that
 * work too. It stays on the stack: the parent's commit is refused while
 * it is there (see above), the parent's rollback undoes it.
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
 * transaction is then failed with that error. A commit whose connection
 * was lost after COMMIT was sent (its reply lost, or read timed out) has
 * an unknown outcome - the server may have committed it: kind
 * SQ_ECONNECTION with sqlstate SQ_SQLSTATE_COMMIT_UNKNOWN ("08007",
 * transaction resolution unknown) and a message saying so; the driver's
 * native code is kept. Later calls on it repeat that error. */
#define SQ_SQLSTATE_COMMIT_UNKNOWN "08007"
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
 * A job is one operation: a run callback that executes all of its
 * statements (and its own control flow) on one connection. The caller
 * embeds an sq_job in its own operation struct (container_of gets it
 * back) and picks where the job runs:
 *
 *   sq_job_submit(pool, job)  async. The job waits for a connection in
 *       the pool's one FIFO queue, side by side with blocking
 *       sq_pool_acquire callers, without occupying a thread. When it is
 *       served, a worker thread of the pool opens or pings the
 *       connection, calls run, and releases the connection (or hands it
 *       over: SQ_JOB_KEEP_CONN). The pool starts its workers (pool.max of
 *       them, at pool.worker_nice: see sq_pool_opts; plus a timer and a
 *       canceller thread) on the first submit
 *       and joins them when its last reference closes.
 *   sq_pin_submit(pin, job)  async, on a pinned connection (a
 *       transaction's): the pin's jobs run one at a time in submission
 *       order and never wait in the pool's queue, so a pool full of open
 *       transactions can't deadlock.
 *   sq_job_run(pool, job), sq_job_run_conn(conn, job)  blocking: run on
 *       the calling thread, with the same deadline and cancellation (the
 *       pool's timer cancels the statement on the server when the
 *       deadline passes, and sq_job_cancel works from another thread).
 *
 * Completion. An async job that was accepted (submit returned SQ_OK)
 * completes exactly once, through its completion queue: with run's
 * result, or with kind timeout (its deadline passed: while queued it
 * completes at once; while running the statement is cancelled on the
 * server), pool_timeout (no connection within its acquire timeout),
 * canceled (sq_job_cancel), closed (the pool's last reference closed,
 * or its pinned transaction was already ended by a timeout) or
 * connection (the server went away). A job whose run returned SQ_OK
 * reports SQ_OK even if a cancel came too late to stop it: its effects
 * happened.
 *
 * Threads and ownership.
 *   - The caller owns the job's memory. From a successful submit until
 *     the job is popped from its queue (or handed to the discard
 *     callback) the executor uses it: don't touch, move or free it then,
 *     except through sq_job_cancel. After the pop everything in it
 *     belongs to the caller again and the executor never looks at it.
 *   - run is called on a worker thread (async) or the calling thread
 *     (blocking) with a connection that belongs to the job until run
 *     returns. It must not block on other jobs, and must not use the
 *     connection after returning. It may read and write its own fields
 *     of the job (ud, and whatever the enclosing struct holds).
 *   - notify and discard callbacks run on whichever thread completes the
 *     job (see the completion queues below). run, notify and discard may
 *     drop the pool's last reference; the executor then finishes on its
 *     own and the pool is freed after that thread is done with it.
 *   - Jobs hold no pool reference. When the pool's last reference closes,
 *     queued jobs complete with kind closed, running ones are cancelled
 *     on the server, and sq_pool_close returns once they have finished
 *     (so it may wait for a cancel's round trip). Pins keep their
 *     connection until they are closed.
 *   - Cancellation cancels the statement on the server and makes the
 *     connection refuse further statements (sq_conn_stopped); after a
 *     cancelled run the connection goes back to the pool only if the
 *     driver says it is clean (sq_driver.is_clean), else it is
 *     discarded. On a pinned connection, or sq_job_run_conn, a run that
 *     was cancelled or timed out while a transaction was open rolls the
 *     transaction back and sets job->tx_ended (and sq_pin_tx_ended). So
 *     does, on a pinned connection, a run that failed with kind deadlock
 *     (a deadlock or serialization failure ends the transaction): the
 *     ROLLBACK runs on the worker, never on the consumer's thread.
 */
typedef struct sq_job sq_job;
typedef struct sq_cq sq_cq;
typedef struct sq_pin sq_pin;

/* Runs the operation on conn; returns SQ_OK or an sq_kind with err
 * filled (err is &job->err). */
typedef int (*sq_job_fn)(sq_job *job, sq_conn *conn, sq_err *err);

enum {
  /* A pool job whose run succeeded keeps its connection: job->conn is
   * then the caller's (sq_pool_release it, or make it an sq_pin); on
   * failure it is released as usual. E.g. a transaction's BEGIN. */
  SQ_JOB_KEEP_CONN = 1,
  /* sq_job_run only: acquire a newly opened connection (the retry of a
   * read whose pooled connection proved dead: the others that were idle
   * as long may be dead too). */
  SQ_JOB_FRESH_CONN = 2
};

struct sq_job {
  /* Set by the caller before submit (sq_job_init fills defaults). */
  sq_job_fn run;
  void *ud;                /* free for the caller */
  sq_cq *cq;               /* async: where it completes (required) */
  void *tag;               /* free for the consumer, e.g. which coroutine */
  double deadline;         /* absolute sq_clock() time; 0: none */
  double acquire_timeout;  /* seconds to wait for a connection; < 0: the pool's */
  int flags;               /* SQ_JOB_* */
  const sq_holder *holder; /* who the connection is acquired for (self-deadlock check and
                            * the message naming holders, see sq_holder), or NULL; must
                            * stay valid until the job has its connection */

  /* Results, valid after completion (popped, discarded, or returned
   * from sq_job_run). */
  int rc;                  /* SQ_OK or err.kind */
  sq_err err;
  double queued;           /* seconds from submit until run started (queue wait,
                            * connect or ping): "Elapsed time: 12ms (queued 3ms)" */
  double elapsed;          /* seconds run took */
  double waited;           /* the part of queued spent waiting in the pool's queue for a
                            * connection or slot (0: one was free at once) */
  sq_conn *conn;           /* SQ_JOB_KEEP_CONN and rc == SQ_OK: the kept connection */
  int tx_ended;            /* a cancel or timeout ended the transaction (rolled back),
                            * or its connection was lost inside one */
  int canceled_on_server;  /* a cancel was sent to the server while run ran */

  /* Private to the executor. */
  union {
    uint64_t u[48];
    void *p;
    double d;
  } priv_;
};

/* Seconds on the monotonic clock that deadlines use. */
double sq_clock(void);

/* Zeroes job and sets run, ud, deadline 0 (none), acquire_timeout -1. */
void sq_job_init(sq_job *job, sq_job_fn run, void *ud);
/* job->deadline = sq_clock() + seconds (seconds <= 0: no deadline). */
void sq_job_set_timeout(sq_job *job, double seconds);

/* Submits job to run on a connection of p. SQ_OK: accepted, it will
 * complete exactly once through job->cq. Anything else (bad arguments,
 * SQ_ECLOSED for a closed pool, SQ_ENOMEM, no thread could be started):
 * not accepted, err says why, the job is the caller's again and will
 * never complete. Never blocks on the database; callable from any
 * thread. */
int sq_job_submit(sq_pool *p, sq_job *job, sq_err *err);

/* Cancels a job, from any thread, while it is in flight (submitted and
 * not yet popped). Queued: it completes at once with kind canceled.
 * Running: the statement is cancelled on the server (by the canceller
 * thread; this call never waits for the server) and the job completes
 * when run returns, with kind canceled unless run succeeded anyway.
 * Also stops a blocking sq_job_run / sq_job_run_conn from another
 * thread once the run has its connection (a cancel while it still waits
 * for one is not seen; its deadline is). Returns 1 when
 * the cancel took hold, 0 when the job had already finished (or was
 * never submitted). */
int sq_job_cancel(sq_job *job);

/* Blocking mode: acquire from p (waiting at most job->acquire_timeout,
 * and never past the deadline: then kind timeout), run on the calling
 * thread with the deadline watched, release. Returns job->rc; job->cq
 * is not used. */
int sq_job_run(sq_pool *p, sq_job *job);
/* Blocking mode on a connection the caller holds (a transaction's); the
 * connection stays the caller's. */
int sq_job_run_conn(sq_conn *c, sq_job *job);

/*
 * Pins: a connection held across many jobs. sq_pin_new takes over c (a
 * connection acquired from a pool, e.g. kept by a SQ_JOB_KEEP_CONN job
 * that ran BEGIN). The pin's jobs run in submission order, one at a
 * time, on a worker of c's pool. All pin functions are thread-safe; one
 * owner closes the pin.
 *
 * sq_pin_submit: as sq_job_submit. SQ_ECLOSED when the pool closed, or
 * when a cancelled or timed-out job already ended the pin's transaction
 * (sq_pin_tx_ended; jobs queued behind that one complete with kind
 * closed).
 * sq_pin_conn: the connection, for blocking use by the owner while no
 * job of the pin is in flight (sq_pin_pending == 0).
 * sq_pin_close: the owner lets go. With cancel, queued jobs complete with
 * kind canceled and the running one is cancelled; without, they run.
 * After the last job completes the connection is released to the pool
 * (which rolls back an open transaction) and the pin freed; the pin must
 * not be used after this call.
 * sq_pin_detach: frees the pin and gives its connection back to the
 * owner (*out), only while no job is in flight (else SQ_EUSAGE).
 */
int sq_pin_new(sq_conn *c, sq_pin **out, sq_err *err);
int sq_pin_submit(sq_pin *pin, sq_job *job, sq_err *err);
sq_conn *sq_pin_conn(sq_pin *pin);
int sq_pin_pending(sq_pin *pin);
int sq_pin_tx_ended(sq_pin *pin);
void sq_pin_close(sq_pin *pin, int cancel);
int sq_pin_detach(sq_pin *pin, sq_conn **out, sq_err *err);

/*
 * Completion queues: one per consumer (the Lua binding makes one per
 * lua_State). Thread-safe. A job completes into the queue its submitter
 * named, so consumers never see each other's completions, even on one
 * shared pool.
 *
 * sq_cq_fd: a file descriptor (eventfd on Linux, a pipe elsewhere) that
 * is readable exactly while completions wait to be popped; poll it with
 * the host's loop, never read it. It is closed with the queue's memory,
 * after sq_cq_close and the last in-flight job: remove it from your
 * poller before sq_cq_close.
 * sq_cq_set_notify: fn(ud) is called right after each completion is
 * posted, on the thread that completed it (a worker, the timer, or the
 * submitter for a job that completes at once), outside every sqorm lock.
 * It must be cheap and thread-safe (write to a pipe, uv_async_send, post
 * a message) and must not call sq_cq_close. sq_cq_close waits for calls
 * in progress, so ud may be freed after it returns.
 * sq_cq_set_discard: fn(job, ud) receives jobs that complete after the
 * consumer closed the queue, on whichever thread completes them, and
 * those still waiting to be popped at close, on the closing thread: free
 * the job there (any
 * connection it kept has been released already). fn and ud must stay
 * valid until every job submitted with this queue has completed. Without
 * a discard callback such jobs are dropped (the owner must free them).
 * sq_cq_pop: the next completed job or NULL; never blocks. The job then
 * belongs to the caller.
 * sq_cq_wait: blocks until a completion waits (1) or timeout seconds
 * passed (0); timeout < 0 waits forever.
 * sq_cq_inflight: jobs submitted with this queue that were not popped
 * yet (queued, running or waiting to be popped).
 * sq_cq_close: the consumer is done (e.g. its lua_State is closing).
 * Jobs still in flight keep running and are handed to the discard
 * callback as they complete; nothing is ever posted to a closed queue.
 * The queue must not be used after this call.
 */
typedef void (*sq_cq_notify_fn)(void *ud);
typedef void (*sq_cq_discard_fn)(sq_job *job, void *ud);
int sq_cq_new(sq_cq **out, sq_err *err);
void sq_cq_set_notify(sq_cq *cq, sq_cq_notify_fn fn, void *ud);
void sq_cq_set_discard(sq_cq *cq, sq_cq_discard_fn fn, void *ud);
int sq_cq_fd(sq_cq *cq);
sq_job *sq_cq_pop(sq_cq *cq);
int sq_cq_wait(sq_cq *cq, double timeout);
int sq_cq_inflight(sq_cq *cq);
void sq_cq_close(sq_cq *cq);

/* ------------------------------------------------------------------ */
/* Read replicas: the replica set                                       */
/* ------------------------------------------------------------------ */

/*
 * A replica set owns one pool for the primary (writes) and one per read
 * replica, each an ordinary sq_pool (its own max, min, timeouts, stats).
 * It picks the replica for a read: round robin over the healthy ones.
 * A replica that failed to connect (or, as its user reports, lost its
 * connections) is skipped for `backoff` seconds, twice that after the
 * next failure, ... at most 12 x backoff, then tried again; a successful
 * acquire makes it healthy. When no replica is healthy, reads go to the
 * primary with fallback, else fail with SQ_ECONNECTION naming every
 * replica, how long it stays skipped and its last error.
 *
 * Read-your-writes: the set keeps nothing per caller. A caller (the Lua
 * binding: per coroutine) remembers when it last wrote, as
 * sq_replset_now() then, and passes that as last_write to the picks:
 * within `sticky` seconds of it, reads go to the primary. 0 means never
 * wrote.
 *
 * Named sets: with write->name set, sq_replset_open returns the process-
 * wide set of that name (made on first use), so every Lua state sharing
 * the name shares the primary pool, every replica pool, the health of the
 * replicas and the round robin. A later open with different settings
 * (any config, in order, or an option) is SQ_EUSAGE. Names of sets and
 * of plain pools (sq_pool_open_shared) are separate registries.
 *
 * How the binding routes (DESIGN.md, "Read replicas"):
 *   replica (sq_replset_pick_read / _acquire_read / _exec_read):
 *     ORM reads outside a transaction: find_all, find_one, find_by_pk,
 *     count, find_and_count_all, each, aggregates; the to-many include
 *     batches of a read go to the replica its parent statement ran on
 *     (one operation, one connection); raw db:query / db:exec whose SQL
 *     is a read (sq_sql_is_read) and has no session effect.
 *   primary (sq_replset_primary):
 *     every write (create, bulk_create, save, update, destroy, upsert,
 *     increment, restore, raw statements that are not reads), reads
 *     with lock = "update" / "share", reload, find_or_create,
 *     transactions and everything inside them, sync / DDL / migrations,
 *     any call with use_primary = true, and every read of a caller whose
 *     last write is less than sticky seconds old (pass last_write).
 *   replica transactions: db:transaction(fn, { read_only = true }) ->
 *     sq_replset_begin_read.
 * After a write on the primary, the binding sets the caller's last_write
 * to sq_replset_now(). In async mode, pick with sq_replset_pick_read
 * and submit to that pool's executor; when the job ends with kind
 * connection or timeout before any row was delivered, call
 * sq_replset_mark_failed and submit again with a new pick (the failed
 * replica is skipped now); on success sq_replset_mark_ok.
 *
 * Threads: every function may be called from any thread; the set is
 * reference-counted like a pool. Pools and indexes: index -1 is the
 * primary, 0..nreads-1 the replicas, in the order given.
 */
typedef struct sq_replset sq_replset;

/* Start from sq_replset_opts_init (fallback's default is 1). */
typedef struct sq_replset_opts {
  double sticky;   /* seconds a caller reads from the primary after its write; 0 (default): off */
  int fallback;    /* 1 (default): reads go to the primary when no replica is healthy; 0: they fail */
  double backoff;  /* seconds a failed replica is skipped at first, > 0; 0: the default, 5 */
} sq_replset_opts;

/* The defaults: sticky 0, fallback 1, backoff 5. */
void sq_replset_opts_init(sq_replset_opts *o);

/*
 * Opens a set (no I/O: the pools connect on first use). write and
 * reads[0..nreads) are copied; all must have the same dialect (MySQL
 * family or PostgreSQL); nreads may be 0 (everything goes to the
 * primary) and at most 64. opts NULL means the defaults. A read config's
 * name is ignored: member pools are private to the set (their messages
 * name them "<name>" and "<name> read <i+1>").
 */
int sq_replset_open(const sq_config *write, const sq_config *reads, int nreads, const sq_replset_opts *opts,
                    sq_replset **out, sq_err *err);
/* As sq_replset_open with an explicit driver for every pool (tests). */
int sq_replset_open_driver(const sq_config *write, const sq_config *reads, int nreads,
                           const sq_replset_opts *opts, const sq_driver *drv, sq_replset **out, sq_err *err);
void sq_replset_retain(sq_replset *s);
/* Drops a reference; the last one closes every pool of the set. */
void sq_replset_close(sq_replset *s);

/* The primary's pool and the replicas' (borrowed: valid while the caller
 * holds its reference to the set). sq_replset_read_pool(s, -1) is the
 * primary; NULL for an index out of range. */
sq_pool *sq_replset_primary(sq_replset *s);
int sq_replset_nreads(const sq_replset *s);
sq_pool *sq_replset_read_pool(sq_replset *s, int i);
const sq_replset_opts *sq_replset_options(const sq_replset *s);

/* The clock of last_write (monotonic seconds). */
double sq_replset_now(void);

/*
 * Where a read goes: *index and *pool (borrowed) of the next healthy
 * replica in round robin, or -1 and the primary (sticky, no replicas, or
 * none healthy with fallback). With none healthy and no fallback:
 * SQ_ECONNECTION, "no read replica available (fallback is off):
 * replica 1 (host:port) skipped for 3.2 s more after 2 failures: <its
 * last error>; ...". No I/O.
 */
int sq_replset_pick_read(sq_replset *s, double last_write, int *index, sq_pool **pool, sq_err *err);
/* Replica i failed to connect or lost its connection: skip it for the
 * next backoff step. why (may be NULL) is kept for the messages; a
 * failure while it is already skipped doesn't lengthen the wait. */
void sq_replset_mark_failed(sq_replset *s, int i, const sq_err *why);
/* Replica i answered: healthy again. */
void sq_replset_mark_ok(sq_replset *s, int i);

/* What sq_replset_state reports for one member (index -1: the primary,
 * which is never skipped). */
typedef struct sq_replica_state {
  int down;              /* skipped by reads now */
  double retry_in;       /* seconds until it is tried again (0 when up) */
  int failures;          /* consecutive failures */
  int64_t picks;         /* reads routed to it */
  int64_t failed;        /* failures reported (cumulative) */
  char last_error[160];  /* the last failure's message, or "" */
} sq_replica_state;
int sq_replset_state(sq_replset *s, int i, sq_replica_state *st);

/*
 * The blocking forms, for callers that run a read on the calling thread.
 * sq_replset_acquire_read: pick, then sq_pool_acquire_as on that pool
 * (timeout as there); a replica whose connect fails (kind connection or
 * timeout) is marked failed and the next one tried, then the primary
 * (fallback). *index says where the connection comes from; give it back
 * with sq_pool_release.
 * sq_replset_exec_read: the same, then sq_conn_exec (? or :name binds);
 * when the statement loses its connection before a row reached the sink
 * and the SQL is a read (sq_sql_is_read), it runs again on a fresh pick.
 * sq_replset_begin_read: a read-only transaction on a replica (the
 * primary as above); on PostgreSQL it is also SET TRANSACTION READ ONLY,
 * so a write fails with SQLSTATE 25006 wherever it runs. MySQL-family
 * replicas refuse writes by themselves when read_only is on (error 1290);
 * a fallback transaction on a MySQL primary is not read-only.
 */
int sq_replset_acquire_read(sq_replset *s, double last_write, double timeout, const sq_holder *h, sq_conn **out,
                            int *index, sq_err *err);
int sq_replset_exec_read(sq_replset *s, double last_write, const char *sql, size_t len, const sq_value *params,
                         int nparams, const sq_row_sink *sink, sq_result *res, int *index, sq_err *err);
int sq_replset_begin_read(sq_replset *s, double last_write, const sq_holder *h, int isolation, sq_tx **out,
                          int *index, sq_err *err);

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
  SQ_T_JSON,     /* JSON text (jsonb / JSON / TEXT with a json_valid CHECK); values travel as JSON text */
  SQ_T_ENUM,     /* one of enum_values (native ENUM / a named type / TEXT with a CHECK) */
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
  /* SQ_T_ENUM: its values, in order (1..SQ_ENUM_MAX, each 1..63 bytes of
   * UTF-8, distinct); copied. */
  const char *const *enum_values;
  int nenum_values;
} sq_coldef;

#define SQ_ENUM_MAX 1000

/* Model options; NULL strings mean "the default". */
typedef struct sq_model_opts {
  const char *table_name;  /* default: plural of the model name's last word */
  int timestamps;          /* -1 default (on), 0 off, 1 on */
  const char *created_at;  /* column names, default "created_at" / "updated_at" */
  const char *updated_at;
  int paranoid;            /* soft delete through deleted_at */
  const char *deleted_at;
  /* Optimistic locking: the name of the version column (NULL: none).
   * finish adds it (INTEGER NOT NULL DEFAULT 0), or gives the role to
   * the user's own integer column of that name (made NOT NULL, DEFAULT
   * 0 when it has no default). The renderer bumps it (+ 1) in the
   * update part of an upsert and never lets an upsert set it. */
  const char *version;
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
  char **enum_values;     /* SQ_T_ENUM: owned by the model */
  int nenum;
} sq_col;

enum { SQ_ROLE_NONE = 0, SQ_ROLE_CREATED_AT, SQ_ROLE_UPDATED_AT, SQ_ROLE_DELETED_AT,
       SQ_ROLE_VERSION /* optimistic locking: sq_model_opts.version */ };

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
 * true/false for BOOLEAN from 1/0, a UUID to lower case), else SQ_EUSAGE
 * naming the column.
 * Strings produced (dates) are written into buf (size >= 40), which the
 * caller keeps alive as long as v.
 * SQ_T_ENUM takes text equal to one of the column's values (exactly);
 * SQ_T_JSON takes JSON text (checked with sq_json_valid), or an integer,
 * float or boolean, which becomes its JSON text in buf.
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
  SQ_OP_RAW,                         /* raw fragment with ? binds (sqorm.raw) */
  /* Rendered by sq_render_select only (see "Associations and includes"): */
  SQ_OP_EXISTS, SQ_OP_NOT_EXISTS,    /* sub: [NOT] EXISTS (subquery) */
  SQ_OP_HAS                          /* assoc: EXISTS (a related row [matching kids[0]]) */
} sq_op;

struct sq_operand;
struct sq_select;
struct sq_assoc;

/*
 * A where / having node. The fields after raw_len are part 2's
 * expressions; builders must zero them (memset the node) when they don't
 * use them. Only sq_render_select renders a node that sets lhs, rhs, sub
 * or assoc; sq_render refuses it (SQ_EUSAGE), never ignores it.
 */
typedef struct sq_expr {
  int op;                  /* sq_op */
  int col;                 /* column index for comparisons */
  const sq_value *vals;    /* operands */
  int nvals;
  struct sq_expr **kids;   /* AND / OR / NOT (NOT has 1 kid); SQ_OP_HAS: 0 or 1 kid, a where on the target */
  int nkids;
  const char *raw;         /* SQ_OP_RAW: SQL fragment with ? placeholders for vals */
  size_t raw_len;
  const struct sq_operand *lhs; /* instead of col: a column of a joined include (col("author.name")),
                                 * a function call, an attribute alias (having) */
  const struct sq_operand *rhs; /* instead of vals: nrhs operands (columns for column-to-column
                                 * comparisons, function calls, values) */
  int nrhs;
  const struct sq_select *sub;  /* SQ_OP_IN / SQ_OP_NOT_IN: a subquery instead of a list (exactly one
                                 * attribute); SQ_OP_EXISTS / SQ_OP_NOT_EXISTS: the subquery */
  const struct sq_assoc *assoc; /* SQ_OP_HAS: an association of the model the node is about */
  const struct sq_jpath *jpath; /* a comparison of the JSON value at a path of column col
                                 * (op.json): see sq_jpath */
} sq_expr;

/*
 * op.json: a comparison node (EQ ... NOT_LIKE, BETWEEN, IN, IS_NULL,
 * NOT_NULL) whose jpath is set compares the JSON value at path inside
 * the JSON column col, not the column. path is the dialect's path text
 * (sq_json_path), always a bound value. jtype says which JSON values
 * take part: SQ_JT_STRING / NUMBER / BOOL compare only values of that
 * JSON type (others, a missing path and JSON null never match, NE
 * included); SQ_JT_NULL (op SQ_OP_IS_NULL) matches a JSON null there,
 * never the string "null" nor a missing path; SQ_JT_ANY (IS_NULL /
 * NOT_NULL) asks whether there is a non-null value at the path.
 */
enum { SQ_JT_STRING = 1, SQ_JT_NUMBER, SQ_JT_BOOL, SQ_JT_NULL, SQ_JT_ANY };
typedef struct sq_jpath {
  sq_value path;
  int jtype;
} sq_jpath;

/* One segment of a JSON path: a member name (key, klen) or, key NULL, a
 * 0-based array index. */
typedef struct sq_jseg {
  const char *key;
  size_t klen;
  int64_t index;
} sq_jseg;

/* The path text of segs for a dialect into out (size outn; NUL-ended),
 * *outlen its length: PostgreSQL a text[] literal ({"a","0"}), MySQL and
 * SQLite $."a"[0]. SQ_EUSAGE for a NUL in a key, a negative index, or
 * (MySQL, SQLite, whose paths can't escape them) a key holding '"' or
 * '\'; SQ_ENOMEM when out is too small. */
int sq_json_path(int dialect, const sq_jseg *segs, int n, char *out, size_t outn, size_t *outlen, sq_err *err);

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
  int returning;           /* INSERT/UPSERT: return every column (RETURNING * where supported);
                            * SQ_RETURNING_UNSET: a plain INSERT returns only the columns it
                            * leaves to the database (keys, defaults), none when it sets all */
  int caps;                /* SQ_CAP_* of the target server (sq_conn_caps); 0: the dialect's baseline */
  /* UPSERT conflict target on postgres/sqlite (NULL: the primary key),
   * e.g. the columns of a unique key. MySQL ignores it: ON DUPLICATE KEY
   * fires on any unique key. */
  const int *conflict_cols;
  int nconflict;
  /* INSERT: SQ_CONFLICT_IGNORE skips rows that collide with a unique key
   * (PostgreSQL and SQLite: ON CONFLICT [(conflict_cols)] DO NOTHING;
   * MySQL-family: INSERT IGNORE, which also skips rows failing a foreign
   * key). 0: none. UPSERT ignores it. */
  int on_conflict;
} sq_query;

enum { SQ_CONFLICT_NONE = 0, SQ_CONFLICT_IGNORE = 1 };
#define SQ_RETURNING_UNSET 2

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
 * Model:sync{ alter = true }: reads the live table on c (columns with
 * their types, nullability, defaults and auto-increment; the primary
 * key; unique keys and indexes), then returns the statements that make
 * it match the model (the table part of sq_schema_diff, rendered by
 * sq_schema_plan with SQ_SCHEMA_ONE_ALTER): ADD missing columns, ALTER changed ones (type,
 * NULL, default, auto-increment), DROP columns the model no longer has,
 * change the primary key, add the model's unique keys (single and
 * composite, compared as sets of columns) and drop unique constraints it
 * doesn't declare (indexes made by CREATE INDEX on SQLite and PostgreSQL
 * stay; on MySQL every unique index counts as a constraint: declare it
 * as a model index to keep it), CREATE missing indexes (never one that
 * exists). SQLite rebuilds the table when its ALTER can't do it. Creates
 * the table when it does not exist; an empty list means it matches.
 *
 * A column the model no longer has is dropped only when it holds no
 * non-NULL value or flags has SQ_ALTER_DROP; else SQ_EUSAGE naming it,
 * and nothing is planned (a rename looks like a drop and an add).
 *
 * Run the list in order; on SQLite and PostgreSQL inside one transaction
 * (rolled back on failure, so a failed rebuild or a unique key over
 * duplicates leaves the table as it was). A MySQL plan is one ALTER
 * TABLE, applied whole or not at all, plus the drop of temporary fill
 * defaults. sq_plan_alter is sq_plan_alter_ex with flags 0.
 */
#define SQ_ALTER_DROP 1 /* drop columns the model no longer has even when they hold data */
int sq_plan_alter_ex(sq_conn *c, const sq_model *m, int flags, sq_sql_list *out, sq_err *err);
int sq_plan_alter(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err);

/* ------------------------------------------------------------------ */
/* Associations and includes                                            */
/* ------------------------------------------------------------------ */

/*
 * Associations are model metadata, defined after the models involved are
 * finished and before any query uses them (define every model, then every
 * association, then run queries: like columns, they are not changed while
 * other threads read the model). An association belongs to its source
 * model and is freed with it; target and through models are borrowed and
 * must outlive it (free all the models of a db together). A join model
 * that the core builds for belongs_to_many with a table name is owned by
 * the association that built it (and shared, borrowed, by the reverse
 * association through the same table).
 */

typedef enum sq_assoc_kind {
  SQ_ASSOC_BELONGS_TO = 1, /* source holds the foreign key (to-one) */
  SQ_ASSOC_HAS_ONE,        /* target holds the foreign key (to-one) */
  SQ_ASSOC_HAS_MANY,       /* target holds the foreign key (to-many) */
  SQ_ASSOC_BELONGS_TO_MANY /* a join model holds two foreign keys (to-many) */
} sq_assoc_kind;

/* Referential actions. SQ_FK_DEFAULT resolves (sq_fk_actions) to: on
 * update cascade; on delete set_null for a nullable key, cascade for a
 * NOT NULL one and for a join table's keys. */
typedef enum sq_fk_action {
  SQ_FK_DEFAULT = 0, SQ_FK_CASCADE, SQ_FK_SET_NULL, SQ_FK_RESTRICT, SQ_FK_NO_ACTION
} sq_fk_action;

/* Whether a foreign key gets a constraint in the schema. */
enum {
  SQ_CONSTRAINTS_DEFAULT = -1, /* = ON */
  SQ_CONSTRAINTS_OFF = 0,      /* constraints = false: a column and an index, no FOREIGN KEY */
  SQ_CONSTRAINTS_ON = 1,       /* FOREIGN KEY in CREATE TABLE; a dependency for table order */
  SQ_CONSTRAINTS_DEFERRED = 2  /* FOREIGN KEY, but not a dependency: added after both tables
                                * exist (ALTER TABLE on MySQL/PostgreSQL; inline on SQLite,
                                * which checks references only when rows are written). Breaks
                                * a cycle while keeping the constraint. */
};

/* Options of sq_model_associate; sq_assoc_opts_init sets every field to
 * "not given". Strings are copied. */
typedef struct sq_assoc_opts {
  const char *as;           /* name; default: target model name (to-one) or its plural (to-many) */
  const char *foreign_key;  /* default: belongs_to "<as>_<target_key>"; has_one/has_many
                             * "<source name>_<source_key>" on the target; belongs_to_many
                             * "<source name>_<source_key>" on the join model */
  const char *source_key;   /* has_one/has_many/belongs_to_many: source column referenced (default: its pk) */
  const char *target_key;   /* belongs_to/belongs_to_many: target column referenced (default: its pk) */
  const char *through;      /* belongs_to_many: the join table's name (the core builds its model) ... */
  sq_model *through_model;  /* ... or a join model of the caller (finished; key columns added if missing) */
  const char *other_key;    /* belongs_to_many: join column referencing the target (default
                             * "<target name>_<target_key>", or "<singular of as>_<target_key>" for a
                             * model associated with itself) */
  int on_delete, on_update; /* sq_fk_action */
  int constraints;          /* SQ_CONSTRAINTS_* */
  int fk_allow_null;        /* -1 default: a new belongs_to/has_* key column allows null; 0: NOT NULL */
  const sq_expr *scope;     /* a where on the target's columns, ANDed into every read of the
                             * association (deep-copied; no subqueries) */
  const char *singular;     /* singular of as (create_<singular>); default: as singularized */
  int lazy_raise;           /* lazy = "raise": a mark for the binding (the core only stores it) */
  int through_timestamps;   /* a join model built by the core gets timestamps (default off) */
  /* Names an association may not take (the binding's method names); the
   * model's columns and other associations are refused as well. */
  const char *const *reserved;
  int nreserved;
} sq_assoc_opts;

/*
 * An association, read-only (owned by its source model). The join
 * condition is source.source_col = target.target_col, or for
 * belongs_to_many source.source_col = through.through_source_col AND
 * through.through_target_col = target.target_col.
 */
typedef struct sq_assoc {
  int kind;                  /* sq_assoc_kind */
  char *as;
  char *singular;
  sq_model *source, *target; /* target borrowed */
  sq_model *through;         /* belongs_to_many: the join model; else NULL */
  int owns_through;          /* 1 when freed with this association */
  int source_col;            /* belongs_to: the foreign key; else the referenced source key */
  int target_col;            /* belongs_to/belongs_to_many: the referenced target key; has_*: the foreign key */
  int through_source_col;    /* belongs_to_many: join column referencing source (foreign_key) */
  int through_target_col;    /* belongs_to_many: join column referencing target (other_key) */
  int on_delete, on_update;  /* as given (sq_fk_action) */
  int constraints;           /* as given */
  int lazy_raise;
  sq_expr *scope;            /* NULL or a where on the target (owned) */
  sq_arena *scope_arena_;    /* internal */
} sq_assoc;

void sq_assoc_opts_init(sq_assoc_opts *o);

/*
 * Defines source.<as> -> target. Both models must be finished. Adds the
 * foreign-key column to the model that holds it when it is missing
 * (appended, typed like the key it references) and records the foreign
 * key (sq_model_fk) with an index when no key or index already starts
 * with it. SQ_EUSAGE, with no model changed, for: a name that is not a
 * valid identifier, holds '.', or clashes with a column, an association
 * or opts->reserved; a composite key where one column is needed; a key
 * column of another type than the key it references; a column that is
 * already a foreign key to something else; conflicting actions or
 * constraints for one key; set_null on a NOT NULL key; belongs_to_many
 * without through. *out (may be NULL) is borrowed from source.
 */
int sq_model_associate(sq_model *source, int kind, sq_model *target, const sq_assoc_opts *opts,
                       const sq_assoc **out, sq_err *err);
int sq_model_nassocs(const sq_model *m);
const sq_assoc *sq_model_assoc(const sq_model *m, int i);
/* The association named name, or NULL. */
const sq_assoc *sq_model_find_assoc(const sq_model *m, const char *name, size_t len);
/* 1 for has_many and belongs_to_many. */
int sq_assoc_to_many(const sq_assoc *a);
const char *sq_assoc_kind_name(int kind); /* "belongs_to", ... */

/* A foreign key recorded on the model holding it (borrowed). */
typedef struct sq_fk {
  int col;                   /* the key column */
  const sq_model *target;    /* referenced model (borrowed) */
  int target_col;
  int on_delete, on_update;  /* as given; SQ_FK_DEFAULT until resolved by sq_fk_actions */
  int constraints;           /* SQ_CONSTRAINTS_* as given */
  int join;                  /* a join model's key (on delete defaults to cascade) */
  char *name;                /* constraint name "<table>_<col>_fkey" (shortened with a hash past 63 bytes) */
} sq_fk;

int sq_model_nfks(const sq_model *m);
const sq_fk *sq_model_fk(const sq_model *m, int i);
/* The effective actions and constraint mode of fk (defaults resolved). */
void sq_fk_actions(const sq_model *m, const sq_fk *fk, int *on_delete, int *on_update, int *constraints);
const char *sq_fk_action_sql(int action); /* "CASCADE", "SET NULL", "RESTRICT", "NO ACTION" */

/*
 * Appends a column to a model, before or after finish (after: at the end,
 * so existing column indexes stay valid; not a key, not auto-increment).
 * sq_model_associate uses it for foreign keys. Every change after finish
 * bumps sq_model_generation, so a caller caching SQL per model knows to
 * drop it.
 */
int sq_model_append_column(sq_model *m, const sq_coldef *def, sq_err *err);
/* Adds an index after finish (name NULL: generated). */
int sq_model_append_index(sq_model *m, const char *name, const char *const *cols, int ncols, int unique,
                          sq_err *err);
unsigned sq_model_generation(const sq_model *m);

/* The singular of an English plural ("posts" -> "post", "people" ->
 * "person", "categories" -> "category"), on the last snake_case word. */
void sq_singularize(const char *word, char *out, size_t outn);

/* ---- expressions ---- */

typedef enum sq_xkind {
  SQ_X_COL = 1, /* column col of inc's target (inc NULL: the model the expression is about) */
  SQ_X_VAL,     /* a bound value */
  SQ_X_FN,      /* name(args...): name is checked like an identifier ([A-Za-z_][A-Za-z0-9_]*,
                 * at most 63 bytes) and written bare */
  SQ_X_STAR,    /* "*", only as count(*)'s argument */
  SQ_X_ALIAS    /* an attribute alias of the same select (order, group, having) */
} sq_xkind;

struct sq_include;

/* An operand of an expression. Strings and arrays are borrowed (like the
 * rest of the query tree). */
typedef struct sq_operand {
  int kind;                      /* sq_xkind */
  const struct sq_include *inc;  /* SQ_X_COL: a to-one include joined in the same statement, or NULL */
  int col;                       /* SQ_X_COL */
  sq_value val;                  /* SQ_X_VAL */
  const char *name;              /* SQ_X_FN: the function; SQ_X_ALIAS: the alias */
  const struct sq_operand *args; /* SQ_X_FN */
  int nargs;
  int distinct;                  /* SQ_X_FN: name(DISTINCT args) */
} sq_operand;

static inline sq_operand sq_x_col(const struct sq_include *inc, int col) {
  sq_operand o = {SQ_X_COL, inc, col, {SQ_VNULL, {0}}, NULL, NULL, 0, 0};
  return o;
}
static inline sq_operand sq_x_val(sq_value v) {
  sq_operand o = {SQ_X_VAL, NULL, -1, v, NULL, NULL, 0, 0};
  return o;
}
static inline sq_operand sq_x_fn(const char *name, const sq_operand *args, int nargs) {
  sq_operand o = {SQ_X_FN, NULL, -1, {SQ_VNULL, {0}}, name, args, nargs, 0};
  return o;
}
static inline sq_operand sq_x_star(void) {
  sq_operand o = {SQ_X_STAR, NULL, -1, {SQ_VNULL, {0}}, NULL, NULL, 0, 0};
  return o;
}
static inline sq_operand sq_x_alias(const char *alias) {
  sq_operand o = {SQ_X_ALIAS, NULL, -1, {SQ_VNULL, {0}}, alias, NULL, 0, 0};
  return o;
}

/* A selected attribute: an operand AS alias. alias NULL: a column keeps
 * its name, a function call is named after the function. Aliases are
 * checked like identifiers and quoted; with includes they may not hold
 * '.', which joined columns use ("author.name"). */
typedef struct sq_xattr {
  sq_operand x;
  const char *alias;
} sq_xattr;

typedef struct sq_xorder {
  sq_operand x;  /* a column (of a joined to-one include too: "author.name"), an alias, a call */
  int desc;
} sq_xorder;

/* ---- includes ---- */

/*
 * An include: load assoc (an association of the parent's model: the
 * select's model, or the parent include's target) with the rows. to-one
 * (belongs_to, has_one) is a LEFT JOIN (INNER with required) in the
 * parent's statement, with the include's where, scope and paranoid
 * filter in its ON clause; a required nested to-one makes the joins
 * above it INNER too. to-many (has_many, belongs_to_many) is one batched
 * statement per include (sq_render_include_batch) with `limit`, `offset`
 * and `order` per parent (ROW_NUMBER() window); with required, the
 * parent statement keeps only parents with a matching child (EXISTS).
 * Build with sq_include_init; kids are nested includes. A has_one join
 * assumes at most one row per parent (make its key unique to be sure):
 * two would repeat the parent row.
 *
 * Lifetimes: like the rest of the tree, includes, their arrays and
 * values are borrowed until rendering returns; sq_select_sql refers to
 * includes by pointer (sq_rcol.inc, sq_batch_ref.inc), so keep the tree
 * alive while reading results and rendering batches.
 */
typedef struct sq_include {
  const sq_assoc *assoc;
  sq_expr *where;             /* on the target's columns, or NULL */
  const int *attrs;           /* target columns to load (NULL: all); keys are added */
  int nattrs;
  const sq_xorder *order;     /* to-many: order within each parent (columns of the target or of
                               * its joined to-one includes) */
  int norder;
  int64_t limit, offset;      /* to-many: per parent; -1 none */
  int required;
  int paranoid;               /* 1 (default): skip the target's soft-deleted rows */
  struct sq_include **kids;
  int nkids;
} sq_include;

void sq_include_init(sq_include *inc, const sq_assoc *a);

/*
 * A read: rows (kind SQ_Q_SELECT) or a count (SQ_Q_COUNT) of model, with
 * expressions and includes. Build with sq_select_init; fields as in
 * sq_query where they share a name.
 *
 *   SELECT [DISTINCT] attrs | every column   FROM t [joins]
 *     WHERE where [AND EXISTS (required to-many)] [AND deleted_at IS NULL]
 *     GROUP BY group HAVING having ORDER BY order LIMIT OFFSET lock
 *
 * COUNT renders "[group operands or attrs, ]count(*) AS count", or
 * count(DISTINCT count_col) with distinct; with distinct and no
 * count_col, or with a has_one join (which could repeat a parent), it
 * counts distinct primary keys. A statement with joins, EXISTS or
 * op.has qualifies every column with a table alias: "t0" for its model,
 * then t1, t2... in the order tables appear; otherwise the SQL is what
 * sq_render writes for the same query.
 */
typedef struct sq_select {
  int kind;                    /* SQ_Q_SELECT or SQ_Q_COUNT */
  const sq_model *model;
  sq_expr *where;
  int paranoid;                /* 1 (default): deleted_at IS NULL on paranoid models */
  const sq_xattr *attrs;       /* NULL: every column of the model */
  int nattrs;
  int distinct;
  const sq_operand *count_col; /* SQ_Q_COUNT with distinct: what is counted */
  const sq_operand *group;     /* columns, calls, aliases (an alias groups by its expression) */
  int ngroup;
  sq_expr *having;             /* an alias operand stands for its expression */
  const sq_xorder *order;
  int norder;
  int64_t limit, offset;       /* -1: none; with includes they count parents */
  int lock;                    /* SQ_LOCK_*; PostgreSQL with joins: FOR UPDATE OF "t0" */
  sq_include **includes;
  int nincludes;
} sq_select;

void sq_select_init(sq_select *s, int kind, const sq_model *m);

/* Where each result column comes from, so rows can be split and stitched
 * without looking at names. */
typedef struct sq_rcol {
  const sq_include *inc;  /* NULL: the statement's base model (the select's, or the batched
                           * include's target) */
  int through;            /* 1: a column of inc's join model (the parent key of a
                           * belongs_to_many batch) */
  int col;                /* column index in that model; -1: an expression attribute */
  int attr;               /* index in sq_select.attrs, or -1 */
  int key_only;           /* 1: not asked for; selected because stitching needs it */
} sq_rcol;

/* A to-many include to load after this statement: its keys are the
 * distinct non-null values of result column key_col. */
typedef struct sq_batch_ref {
  const sq_include *inc;
  int key_col;
} sq_batch_ref;

/*
 * A rendered read (owned; free with sq_select_sql_free, also after an
 * error). Result columns: the base model's attributes (or every column),
 * then the keys stitching needs, then per joined to-one include (in
 * pre-order) its attributes and keys, aliased "<path>.<column>" ("author.
 * name", "author.company.id"; "t<k>.<column>" when that passes 63 bytes).
 */
typedef struct sq_select_sql {
  sq_sql sql;                 /* text and ordered parameters, as sq_render */
  sq_rcol *cols;
  int ncols;
  int parent_col;             /* a batch: the result column holding each row's parent key; else -1 */
  sq_batch_ref *batches;      /* to-many includes whose parents are in this statement */
  int nbatches;
} sq_select_sql;

/*
 * Renders a read. Checks everything the tree can get wrong: column
 * indexes, association owners, aliases and function names, an include
 * used where it isn't joined, order on a to-many column, group, distinct
 * or a non-required to-many include inside a subquery... Every value is
 * a parameter. Nothing is rendered on error (SQ_EUSAGE).
 */
int sq_render_select(const sq_select *s, int dialect, sq_select_sql *out, sq_err *err);

/*
 * The batch statement of a to-many include for parent keys keys[0..n):
 *
 *   SELECT cols FROM target t0 [JOIN through t1] [to-one joins]
 *     WHERE <fk> IN (?, ...) AND scope AND where [AND EXISTS ...] [AND deleted_at IS NULL]
 *     [ORDER BY order]
 *
 * and with limit / offset, per parent:
 *
 *   SELECT cols FROM (SELECT cols, ROW_NUMBER() OVER (PARTITION BY <fk>
 *     ORDER BY order, pk) AS "__sq_rn" FROM ... WHERE ...) AS "__sq_w"
 *     WHERE "__sq_rn" > ? AND "__sq_rn" <= ? ORDER BY <fk>, "__sq_rn"
 *
 * out->parent_col is the result column holding the parent key (for
 * belongs_to_many the join model's key, aliased "<join model>.<column>").
 * n must be at least 1 and at most sq_include_batch_max. The window needs
 * SQLite >= 3.25, MariaDB >= 10.2, MySQL >= 8.0 (PostgreSQL: any).
 * out->batches are this level's nested to-many includes, keyed by
 * columns of this statement.
 */
int sq_render_include_batch(const sq_include *inc, int dialect, const sq_value *keys, int nkeys,
                            sq_select_sql *out, sq_err *err);
/* How many keys one batch of inc can take under the dialect's limit on
 * bound values (65535 on MySQL/PostgreSQL, 32766 on SQLite), counting
 * the include's other values. */
int sq_include_batch_max(const sq_include *inc, int dialect, int *max, sq_err *err);
void sq_select_sql_free(sq_select_sql *s);

/* Resolves "col", "assoc.col", "assoc.assoc.col" against s: a column of
 * s's model, or of a to-one include in s->includes (nested through
 * kids). SQ_EUSAGE when a name is unknown or names a to-many include. */
int sq_select_resolve(const sq_select *s, const char *path, size_t len, const sq_include **inc, int *col,
                      sq_err *err);

/* ---- stitching ---- */

/*
 * Groups child rows under parent rows by key value, for a worker thread
 * as well as the Lua thread (no globals, no Lua). pkeys holds np keys of
 * nkey values each (row-major), ckeys nc keys. Integer, text, blob, float
 * and boolean values compare by value; a text that spells an integer
 * canonically ("42") equals that integer; a key holding NULL matches
 * nothing. Parents with equal keys share one group.
 *
 *   group_of_parent[p]     group of parent p, or -1 (null key)
 *   group_parent[g]        first parent of group g (its keys are the distinct keys, for batches)
 *   child[first[g] .. first[g+1])   children of group g, in row order
 *   nunmatched             children whose key matched no parent
 */
typedef struct sq_stitch {
  int ngroups;
  int *group_of_parent;
  int *group_parent;
  int *first;
  int *child;
  int nchild;
  int nunmatched;
} sq_stitch;

int sq_stitch_build(const sq_value *pkeys, int np, const sq_value *ckeys, int nc, int nkey, sq_stitch *out,
                    sq_err *err);
void sq_stitch_free(sq_stitch *s);

/* The distinct keys of n parent rows (one value each), for looking up
 * child keys one at a time as rows stream in (same comparison as
 * sq_stitch_build). group_parent[g]: the first row holding key g. keys
 * are borrowed until sq_keymap_free. */
typedef struct sq_keymap {
  int ngroups;
  int *group_parent;
  /* internal */
  int *slots_;
  uint64_t *hashes_;
  const sq_value *keys_;
  size_t mask_;
} sq_keymap;
int sq_keymap_build(const sq_value *keys, int n, sq_keymap *out, sq_err *err);
/* The group of key, or -1 (NULL, or no parent has it). */
int sq_keymap_find(const sq_keymap *m, const sq_value *key);
void sq_keymap_free(sq_keymap *m);

/* ---- schema ---- */

/*
 * Orders models for CREATE: every model after the models its foreign keys
 * (SQ_CONSTRAINTS_ON) reference, input order kept otherwise; join models
 * built by the core for these models' associations are included. A
 * cycle is SQ_EUSAGE naming it (set constraints = false, or deferred, on
 * one of its associations). *out is malloc'ed (free it); drop in reverse.
 */
int sq_schema_order(sq_model *const *models, int n, const sq_model ***out, int *nout, sq_err *err);

/* CREATE for a set of models in dependency order (each as sq_render_create,
 * with its FOREIGN KEY constraints inline), then on MySQL/PostgreSQL
 * ALTER TABLE ... ADD CONSTRAINT for deferred keys (only without
 * if_not_exists: an idempotent sync adds them with sq_plan_alter_fks). */
int sq_render_create_all(sq_model *const *models, int n, int dialect, int if_not_exists, sq_sql_list *out,
                         sq_err *err);
/* DROP for a set of models, in reverse dependency order: one DROP TABLE
 * per table on SQLite, one DROP TABLE a, b, ... on MySQL/PostgreSQL.
 * A deferred key between two of them (a cycle) is dropped first on MySQL
 * (ALTER TABLE ... DROP FOREIGN KEY: MariaDB won't drop a referenced
 * table even in the same statement); with if_exists that needs the live
 * schema, so MySQL then refuses (SQ_EUSAGE): use sq_plan_drop_all. */
int sq_render_drop_all(sq_model *const *models, int n, int dialect, int if_exists, sq_sql_list *out,
                       sq_err *err);
/* sq_render_drop_all with IF EXISTS, reading on c which of those deferred
 * keys exist (works on every dialect; for sync{ force = true }). */
int sq_plan_drop_all(sq_conn *c, sq_model *const *models, int n, sq_sql_list *out, sq_err *err);
/* ALTER TABLE t ADD CONSTRAINT name FOREIGN KEY ... for one key
 * (MySQL/PostgreSQL; SQ_EUSAGE on SQLite, which can't add one). */
int sq_render_add_fk(const sq_model *m, const sq_fk *fk, int dialect, sq_sql_list *out, sq_err *err);

/*
 * sync{ alter = true }'s foreign keys, run after the statements of
 * sq_plan_alter: reads the live keys (information_schema on MySQL,
 * pg_catalog on PostgreSQL, pragma_foreign_key_list on SQLite) and
 * returns what adds the model's missing ones (constraints on or deferred;
 * one that exists on the same column and referenced column, or under the
 * same name, is never added again): the add_foreign_key ops of
 * sq_schema_diff, rendered. MySQL/PostgreSQL: one ALTER TABLE ADD
 * CONSTRAINT per key. SQLite can't add a key to a table: the plan is a
 * rebuild of the live table with the keys added, to run with
 * sq_sqlite_run_rebuild. Empty when nothing is missing or the table
 * doesn't exist.
 */
int sq_plan_alter_fks(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err);
/*
 * Runs a SQLite table rebuild plan the way SQLite's manual requires once
 * foreign keys exist: PRAGMA foreign_keys = OFF (else DROP TABLE of the
 * old table would fire the ON DELETE actions of every table referencing
 * it: cascade deletes, set_null), BEGIN, the plan, PRAGMA
 * foreign_key_check (a violation rolls back: SQ_ECONSTRAINT), COMMIT,
 * PRAGMA foreign_keys = ON (always restored): sq_schema_begin, the plan,
 * sq_schema_commit. Refused (SQ_EUSAGE) inside a transaction, where
 * SQLite ignores the pragma. Any SQLite plan of
 * sq_plan_alter or sq_plan_alter_fks can (and, once tables reference
 * each other, should) run this way: a rebuild run inside BEGIN/COMMIT
 * with foreign keys on empties or nulls the referencing tables.
 *
 * sync in one picture (what an operation runs, c outside a transaction):
 *   force:  sq_plan_drop_all, then sq_render_create_all(..., 0, ...)
 *   else:   for m in sq_schema_order: run sq_plan_alter(c, m)
 *           for m in the same order:  run sq_plan_alter_fks(c, m)
 *   where "run" is sq_sqlite_run_rebuild on SQLite, the statements in
 *   order elsewhere.
 */
int sq_sqlite_run_rebuild(sq_conn *c, const sq_sql_list *plan, sq_err *err);

/* ------------------------------------------------------------------ */
/* Operations                                                           */
/* ------------------------------------------------------------------ */

/*
 * An sq_oper is one operation: everything one API call sends to the
 * database, run by the core on one connection with its own control flow,
 * with no caller code in its middle (DESIGN.md, "one call, one
 * operation"). The Lua binding builds one per database-touching call; a
 * C host gets the same operations. An operation runs inline (blocking,
 * sq_oper_run, on the calling thread) or - later - on a worker thread of
 * its pool, unchanged: it is an sq_job (see the executor above).
 *
 * Life cycle
 *   sq_oper_new (once) -> sq_oper_reset(op, kind) -> build: statements,
 *   target, sink, options -> [sq_oper_prepare] -> sq_oper_run -> read the
 *   results -> sq_oper_reset for the next one (the op's arena keeps one
 *   block, so a reused op stops calling malloc once warm) ... -> 
 *   sq_oper_free.
 *
 * Kinds (SQ_OPER_*) of this version; later ones (INSERT, BULK_INSERT,
 * UPDATE/DELETE with expected rows, RELOAD, FIND_OR_CREATE, UPSERT,
 * INCREMENT, DDL) add their own builders and run functions without
 * changing the rest:
 *   SQ_OPER_RAW          statements given as SQL (sq_oper_add_sql), in
 *                        order; with more than one, results add up
 *                        (affected rows summed, the last insert id kept)
 *                        and a failure names "statement i of n".
 *   SQ_OPER_SELECT       one rendered read (rows, a count, an aggregate).
 *   SQ_OPER_CURSOR_OPEN  one statement opened for streaming; its cursor
 *                        is a result (sq_oper_take_cursor).
 *   SQ_OPER_CURSOR_FETCH up to sq_oper_set_batch rows from a cursor.
 *   SQ_OPER_CURSOR_CLOSE ends a cursor's statement and gives its
 *                        connection back.
 *   SQ_OPER_BEGIN        BEGIN on a pooled connection that becomes a
 *                        transaction (sq_oper_take_tx).
 *   SQ_OPER_COMMIT, SQ_OPER_ROLLBACK, SQ_OPER_SAVEPOINT, SQ_OPER_RELEASE,
 *   SQ_OPER_ROLLBACK_TO  on a transaction (sq_oper_target_tx), with the
 *                        sq_tx_* semantics (SAVEPOINT's id:
 *                        sq_oper_savepoint_id; RELEASE / ROLLBACK_TO take
 *                        it from sq_oper_set_savepoint).
 *   SQ_OPER_PING         a round trip (connecting when needed).
 *   SQ_OPER_VERSION      the server's version string (sq_oper_text).
 *
 * Targets
 *   pool   (sq_oper_target_pool) a connection is acquired for the op (as
 *          the given holder) and released after it, on every path.
 *   tx     (sq_oper_target_tx) the transaction's connection, pinned for
 *          the op; a deadlock or a lost connection fails the transaction,
 *          and so does a timeout or cancel (the executor rolls it back).
 *   cursor (sq_oper_target_cursor) the cursor's connection.
 *   A read outside a transaction (SQ_OPER_SELECT, or SQ_OPER_RAW of one
 *   statement flagged SQ_STMT_READ) that failed with kind connection on
 *   a connection found dead, before any row reached the sink, runs once
 *   more on a newly opened connection.
 *
 * Ownership
 *   - The op owns an arena (sq_oper_arena) and a copy of everything it
 *     sends: sq_oper_add_sql copies the SQL text and the values, strings
 *     included (unless SQ_STMT_ARENA_VALUES says they already live in the
 *     op's arena), so the caller's buffers may change or go away as soon
 *     as the call returns - user code running between building and
 *     running (validators, loggers, finalisers) can't change what is
 *     sent. Log texts (sq_oper_log_as) are copied too.
 *   - Targets are borrowed: the pool must stay open and the cursor alive
 *     until the op completed; the op holds a reference to a target tx.
 *   - The sink's ud must stay valid until the op completed (and until
 *     sq_oper_replay returned).
 *   - Results (logs, text, rowset) are owned by the op and valid until
 *     its next reset or free. A cursor or transaction the op produced is
 *     the caller's once taken; one not taken is abandoned (no I/O) at
 *     reset or free.
 *
 * Results leave through the row-sink seam (sq_oper_sink), which knows
 * result sets: set 0 holds the main rows; operations that load related
 * rows (includes) deliver one more set per level, each child row tagged
 * with the index of its parent row in the set above, in C. Inline, the
 * sink is called directly by the driver's row callbacks (no copy). With
 * SQ_OPER_RECORD (what a worker thread does, and what tests ask for) the
 * op deep-copies everything into an owned sq_rowset instead, and
 * sq_oper_replay later drives the same sink with the same calls in the
 * same order.
 *
 * Logging: the op keeps one record (sq_oper_log) per logged statement -
 * its text, the time it took and how long the op waited for a
 * connection - so a caller logs after completion, never from inside
 * (the records exist after sq_oper_prepare, so "Executing" lines can be
 * written before the run).
 *
 * Threads: an op is used by one thread at a time. sq_oper_run runs it on
 * the calling thread; its sink is called on that thread, from inside
 * sq_oper_run. Deadlines (sq_oper_set_timeout) are enforced by the
 * pool's executor in blocking mode too: the statement is cancelled on
 * the server and the op fails with kind timeout. An op with a timeout,
 * or flagged SQ_OPER_WATCH, runs under the executor's watch, and
 * sq_oper_cancel may stop it from another thread while sq_oper_run
 * runs; any other op runs its job directly on the calling thread (the
 * executor's bookkeeping would be pure cost: nothing could stop it).
 */
typedef struct sq_oper sq_oper;
typedef struct sq_rowset sq_rowset;

enum {
  SQ_OPER_NONE = 0,
  SQ_OPER_RAW,
  SQ_OPER_SELECT,
  SQ_OPER_CURSOR_OPEN,
  SQ_OPER_CURSOR_FETCH,
  SQ_OPER_CURSOR_CLOSE,
  SQ_OPER_BEGIN,
  SQ_OPER_COMMIT,
  SQ_OPER_ROLLBACK,
  SQ_OPER_SAVEPOINT,
  SQ_OPER_RELEASE,
  SQ_OPER_ROLLBACK_TO,
  SQ_OPER_PING,
  SQ_OPER_VERSION,
  /* writes and schema: see "Write and schema operations" below */
  SQ_OPER_INSERT,
  SQ_OPER_UPDATE,
  SQ_OPER_DELETE,
  SQ_OPER_RELOAD,
  SQ_OPER_INCREMENT,
  SQ_OPER_UPSERT,
  SQ_OPER_BULK_INSERT,
  SQ_OPER_FIND_OR_CREATE,
  SQ_OPER_SYNC,
  SQ_OPER_KIND_COUNT
};

/* What an op reports to its caller's sink. columns: a result set begins
 * (set 0: the main rows); called once per statement that returns rows,
 * before its first row, also when it has none. row: one row of set;
 * parent is the index (0-based) of its parent row in the set above, -1
 * for set 0. Strings in cols and vals are valid only during the call.
 * Returning non-zero stops the op with the error put in err (or "row
 * callback stopped").
 *
 * protect (optional, may be NULL): the op calls every driver call that
 * may call columns or row through protect(ud, fn, arg), which must call
 * fn(arg) and return its result - or return -1 when fn did not return
 * because columns or row left it by a non-local exit (a Lua error raised
 * while building a value, caught by the binding's lua_pcall). The op then
 * treats the statement as abandoned midway: its connection is discarded
 * (inside a transaction that ends the transaction), and the op fails
 * with kind internal, "the row sink stopped the operation". So no
 * longjmp ever crosses the core. A sink that can't exit that way leaves
 * protect NULL. */
typedef struct sq_oper_sink {
  void *ud;
  int (*columns)(void *ud, int set, int ncols, const sq_column *cols, sq_err *err);
  int (*row)(void *ud, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err);
  int (*protect)(void *ud, int (*fn)(void *arg), void *arg);
} sq_oper_sink;

/* Statement flags (sq_oper_add_sql). */
enum {
  SQ_STMT_READ = 1,        /* re-running it can't change data (sq_sql_is_read): may be retried */
  SQ_STMT_SESSION = 2,     /* may change session state: the connection is reset on release */
  SQ_STMT_ARENA_VALUES = 4, /* the values' strings already live in this op's arena: not copied */
  SQ_STMT_COUNT = 8         /* SELECT: a count run first, before the one main statement (and its
                             * includes); its value is sq_oper_count, nothing of it reaches the sink */
};

/* Op flags (sq_oper_set_flags). */
enum {
  SQ_OPER_RECORD = 1,      /* results go into the op's rowset, for sq_oper_replay */
  SQ_OPER_TIMED = 2,       /* measure elapsed and queued times for the log records (an op
                            * with a timeout, or watched, is always timed) */
  SQ_OPER_WATCH = 4,       /* run under the executor's watch even without a timeout, so
                            * sq_oper_cancel can stop it from another thread */
  SQ_OPER_QUIET = 8        /* keep no log records (nothing logs this op) */
};

/* Targets (sq_oper_target). */
enum { SQ_OPER_TARGET_NONE = 0, SQ_OPER_TARGET_POOL, SQ_OPER_TARGET_TX, SQ_OPER_TARGET_CURSOR };

/* One logged statement of an op. */
typedef struct sq_oper_log {
  const char *sql;  /* the text to log (owned by the op; NUL-terminated) */
  size_t len;
  double elapsed;   /* seconds on the connection: the statement(s), and connecting or pinging
                     * when the op had to (0 unless the op was timed, see SQ_OPER_TIMED);
                     * < 0 when it did not run */
  double queued;    /* seconds the op waited in the pool's queue for a connection (0: none) */
  int rc;           /* SQ_OK, or the kind the op failed with */
} sq_oper_log;

int sq_oper_new(sq_oper **out, sq_err *err);
/* Starts a new operation of kind on op: forgets the previous build and
 * results (an untaken cursor or transaction is abandoned, no I/O), keeps
 * one arena block. */
void sq_oper_reset(sq_oper *op, int kind);
void sq_oper_free(sq_oper *op);
/* A completed op whose caller will never continue (a coroutine closed
 * while the op ran): the transaction it ran in is abandoned (rolled back
 * by the pool before the connection is lent again) and what it made (a
 * new transaction or cursor) is given back at once. No I/O. The op stays
 * valid (reset or free it as usual). */
void sq_oper_orphan(sq_oper *op);
int sq_oper_kind(const sq_oper *op);
/* The op's arena: memory freed at the next reset. Values whose strings
 * the caller puts here need no copy (SQ_STMT_ARENA_VALUES). */
sq_arena *sq_oper_arena(sq_oper *op);

/* ---- building ---- */

/* Adds a statement (RAW, SELECT, CURSOR_OPEN) written in the driver's
 * native placeholders (as sq_render and sq_stmt_rewrite make them), with
 * its values in placeholder order; flags SQ_STMT_*. Copies sql and the
 * values (see Ownership). SQ_ENOMEM, or SQ_EUSAGE for a kind that takes
 * no statements or a second statement where one is taken. */
int sq_oper_add_sql(sq_oper *op, const char *sql, size_t len, const sq_value *params, int nparams,
                    unsigned flags, sq_err *err);
/* Logs the op as one statement with this text (e.g. the SQL as the user
 * wrote it, placeholders and all, for a RAW op of several statements)
 * instead of one record per statement. Copied. */
int sq_oper_log_as(sq_oper *op, const char *text, size_t len, sq_err *err);

/* Where it runs (see Targets). holder (may be NULL) is copied, its
 * `what` text too. A tx target takes a reference to tx until reset. */
void sq_oper_target_pool(sq_oper *op, sq_pool *p, const sq_holder *h);
void sq_oper_target_tx(sq_oper *op, sq_tx *tx);
void sq_oper_target_cursor(sq_oper *op, sq_cursor *c);
int sq_oper_target(const sq_oper *op); /* SQ_OPER_TARGET_* */

/* The sink (copied; NULL: rows are discarded). */
void sq_oper_set_sink(sq_oper *op, const sq_oper_sink *sink);
/* A deadline, timeout seconds after the op starts running (<= 0: none). */
void sq_oper_set_timeout(sq_oper *op, double seconds);
double sq_oper_get_timeout(const sq_oper *op); /* 0: none */
void sq_oper_set_flags(sq_oper *op, unsigned flags); /* SQ_OPER_* */
unsigned sq_oper_flags(const sq_oper *op);
void sq_oper_set_isolation(sq_oper *op, int isolation); /* BEGIN: an sq_isolation */
void sq_oper_set_savepoint(sq_oper *op, unsigned id);   /* RELEASE, ROLLBACK_TO */
void sq_oper_set_batch(sq_oper *op, int rows);          /* CURSOR_FETCH: rows per fetch (default 32) */
/* The model the op reads or writes (borrowed, must outlive the op): a
 * unique_violation then names the columns of the violated key
 * (sq_oper_fields). */
void sq_oper_set_model(sq_oper *op, const sq_model *m);

/* Checks the build and makes the log records (dialect: for BEGIN's text;
 * < 0: the target pool's). sq_oper_run calls it when the caller did not.
 * Then sq_oper_nlogs / sq_oper_log_at give the texts to announce. */
int sq_oper_prepare(sq_oper *op, int dialect, sq_err *err);

/* ---- running ---- */

/* Runs the op on the calling thread and returns its result (SQ_OK or an
 * sq_kind; sq_oper_err says why). Every op run completes: resources
 * are given back on every path. */
int sq_oper_run(sq_oper *op);
/* From any thread while sq_oper_run runs an op with a timeout or
 * SQ_OPER_WATCH: stops it (kind canceled; the statement is cancelled on
 * the server). 1 when it took hold. */
int sq_oper_cancel(sq_oper *op);

/*
 * Async (a worker thread of the pool runs the op; the caller's thread
 * never waits). sq_oper_submit(op, cq, tag): builds like sq_oper_run,
 * then submits the op's job: on a pool target it waits in the pool's
 * queue for a connection; on a transaction (or a cursor) it runs on that
 * connection through a pin, after nothing else (one op at a time per
 * transaction: a second one submitted while one is in flight fails with
 * kind usage). Rows are recorded (SQ_OPER_RECORD is set): replay them
 * with sq_oper_replay after completion. Returns 1 when the op is in
 * flight: it completes exactly once, into cq, as its sq_job (job->tag ==
 * tag); pop it (sq_cq_pop), get the op back (sq_oper_of_job) and call
 * sq_oper_complete on the consumer's thread. Returns 0 when the op
 * completed at once (a build or target error, a transaction that is
 * over, a closed cursor): its results are set (sq_oper_rc, sq_oper_err)
 * and nothing will be posted; err is only set for a NULL op. While in flight the op, its target (tx, cursor) and
 * its sink's memory must not be touched (sq_oper_cancel is fine, from
 * any thread); a deadline (sq_oper_set_timeout) starts at submit.
 * sq_oper_complete: finishes a popped op (a new transaction or cursor
 * taken over, the transaction's pin given back, log times) and returns
 * 0: the results are final; or 1: it was submitted again (a read whose
 * pooled connection proved dead is retried once), wait for its next
 * completion. Every in-flight op must be completed before its op is
 * reset or freed: to stop early, sq_oper_cancel each, then pop and
 * complete them (sq_cq_wait).
 */
int sq_oper_submit(sq_oper *op, sq_cq *cq, void *tag, sq_err *err);
sq_oper *sq_oper_of_job(sq_job *job);
int sq_oper_complete(sq_oper *op);
/* 1 between a sq_oper_submit that returned 1 and sq_oper_complete. */
int sq_oper_inflight(const sq_oper *op);

/* ---- results (valid until the next reset) ---- */

int sq_oper_rc(const sq_oper *op);
const sq_err *sq_oper_err(const sq_oper *op);
/* What the statements did (RAW: affected rows summed over those that
 * report them, -1 when none did; the last non-zero insert id). */
const sq_result *sq_oper_result(const sq_oper *op);
/* 1 when the sink was stopped by a non-local exit (see protect). */
int sq_oper_interrupted(const sq_oper *op);
/* BEGIN: the transaction, handed to the caller (who frees it with
 * sq_tx_free after ending it); NULL when the op failed or it was taken. */
sq_tx *sq_oper_take_tx(sq_oper *op);
/* SAVEPOINT: the new savepoint's id. */
unsigned sq_oper_savepoint_id(const sq_oper *op);
/* CURSOR_OPEN: the cursor, handed to the caller (sq_cursor_free /
 * sq_cursor_abandon, or a CURSOR_CLOSE op); NULL when the op failed. */
sq_cursor *sq_oper_take_cursor(sq_oper *op);
/* CURSOR_FETCH: 1 once the cursor has no more rows; rows delivered. */
int sq_oper_eof(const sq_oper *op);
int64_t sq_oper_rows(const sq_oper *op);
/* VERSION: the server's version string. */
const char *sq_oper_text(const sq_oper *op);
/* Log records (see Logging). */
int sq_oper_nlogs(const sq_oper *op);
const sq_oper_log *sq_oper_log_at(const sq_oper *op, int i);
/* A unique_violation of an op with a model: the columns of the violated
 * key, where the server's message names them (*cols borrowed). */
int sq_oper_fields(const sq_oper *op, const int **cols);
/* SQ_OPER_RECORD: the rowset of the last run (NULL when it recorded
 * nothing: no sink, or no SQ_OPER_RECORD), and its replay into the op's
 * sink (or into sink when not NULL). Replay calls no protect: the caller
 * runs it where a non-local exit is safe. */
sq_rowset *sq_oper_rowset(sq_oper *op);
int sq_oper_replay(sq_oper *op, const sq_oper_sink *sink, sq_err *err);

/*
 * Write and schema operations. Each is still one statement list run on
 * one connection by the core, with its control flow (batches and their
 * transaction, the race re-select, the re-select of an upsert, alter
 * planning against the live table) inside the run: nothing of the
 * caller's runs in its middle. Values are converted and validated by the
 * caller before building; the op owns copies of everything it sends
 * (as sq_oper_add_sql), borrows the models (which must not change while
 * it is in flight) and runs on a pool or a transaction (sq_oper_target_*),
 * inline with sq_oper_run on the calling thread (threads: as above).
 *
 *   SQ_OPER_INSERT       one INSERT (sq_oper_add_sql, or sq_oper_build of
 *                        an SQ_Q_INSERT). Rows it returns (RETURNING, where
 *                        the dialect has it) go to the sink; the generated
 *                        key where it has none: sq_oper_result's
 *                        last_insert_id.
 *   SQ_OPER_UPDATE, SQ_OPER_DELETE, SQ_OPER_INCREMENT
 *                        one UPDATE / DELETE (a soft delete is an UPDATE)
 *                        / UPDATE ... SET c = c + ?. Affected rows in
 *                        sq_oper_result. With sq_oper_expect(op, n, what)
 *                        (an instance's write by the key it was loaded
 *                        with: n = 1) fewer rows than n fail with kind
 *                        stale ("<what>: no <Model> row has this
 *                        instance's key any more ...; nothing was
 *                        written").
 *   SQ_OPER_RELOAD       one SELECT of a row by its key into the sink; no
 *                        row fails with kind stale ("reload: ..."). A read:
 *                        retried once on a fresh connection like SELECT.
 *   SQ_OPER_UPSERT       one upsert statement in the dialect's form
 *                        (sq_render of an SQ_Q_UPSERT: ON CONFLICT ... DO
 *                        UPDATE ... RETURNING, ON DUPLICATE KEY UPDATE).
 *                        Where it returns no row (MySQL), with a model
 *                        (sq_oper_set_model) and the key values known
 *                        before (sq_oper_set_key; SQ_VNULL for unknown):
 *                        an auto-increment key unknown is taken from
 *                        LAST_INSERT_ID() when one row was inserted, and
 *                        when the whole key is known the row is read
 *                        back by it into the sink (a second statement,
 *                        logged). sq_oper_rows says whether a row came.
 *   SQ_OPER_BULK_INSERT  sq_oper_bulk_rows: rows of values for the same
 *                        columns, sent as multi-row INSERTs of at most
 *                        `per` rows (and under every dialect's bind
 *                        limit), rendered by the run for the connection
 *                        (RETURNING on PostgreSQL and MariaDB >= 10.5,
 *                        whose rows go to the sink, in row order). With
 *                        more than one statement they run in their own
 *                        transaction (BEGIN ... COMMIT on a pool target, a
 *                        savepoint sq_bulk_sp inside a transaction): all
 *                        or nothing. Where no rows come back, the keys
 *                        the server assigned are sq_oper_ids (SQLite: the
 *                        last rowid of each statement backwards; MySQL:
 *                        LAST_INSERT_ID() onwards, only where
 *                        @@auto_increment_increment = 1 and
 *                        innodb_autoinc_lock_mode <= 1, read first - else
 *                        one row per INSERT, each key exact).
 *   SQ_OPER_FIND_OR_CREATE  two statements (sq_oper_add_sql): the SELECT
 *                        (LIMIT 1) and the INSERT. The select's row goes
 *                        to the sink (result set 0); when none came, the
 *                        insert runs (its RETURNING row is result set 1)
 *                        unless sq_oper_set_no_insert was called (the
 *                        caller's values failed validation: the op then
 *                        succeeds with no row and created 0); when the
 *                        insert fails with unique_violation (another
 *                        session inserted the row meanwhile) the select
 *                        runs again (set 0), and only when it finds
 *                        nothing does the unique_violation stand (it
 *                        also stands inside an aborted PostgreSQL
 *                        transaction). sq_oper_created: 1 when inserted.
 *   SQ_OPER_SYNC         sq_oper_sync: models in order (drops in reverse
 *                        order first for SQ_SYNC_FORCE and SQ_SYNC_DROP):
 *                        CREATE TABLE IF NOT EXISTS (SQ_SYNC_CREATE;
 *                        FORCE creates without IF NOT EXISTS), DROP TABLE
 *                        IF EXISTS (SQ_SYNC_DROP), or the alter plan of
 *                        sq_plan_alter_ex read from the live table
 *                        (SQ_SYNC_ALTER, SQ_SYNC_ALTER_DROP: with
 *                        SQ_ALTER_DROP). A plan runs as one transaction
 *                        on SQLite and PostgreSQL (a savepoint inside the
 *                        caller's transaction); on SQLite outside a
 *                        transaction it runs with foreign keys off
 *                        (sq_schema_begin / sq_schema_commit: PRAGMA
 *                        foreign_keys = OFF, BEGIN, the plan, PRAGMA
 *                        foreign_key_check, COMMIT, foreign keys on), so
 *                        a table rebuild never fires the ON DELETE
 *                        actions of the tables referencing it. MySQL's
 *                        plan is one ALTER TABLE.
 *
 * Logging: INSERT, UPDATE, DELETE, RELOAD, INCREMENT and UPSERT have
 * their statement's record after sq_oper_prepare; what the run decides
 * (BULK_INSERT's batches and their BEGIN / COMMIT, FIND_OR_CREATE's
 * statements, SYNC's DDL, an upsert's read back) gets its records as it
 * runs, each with its own elapsed time: sq_oper_nlogs grows, records past
 * the prepared ones are to be written after the run.
 */

/* Renders q for dialect (< 0: the target pool's driver's) and adds it as
 * the op's statement (values copied); q->model becomes the op's model
 * (sq_oper_set_model). For the single-statement kinds above, SELECT and
 * RAW. */
int sq_oper_build(sq_oper *op, const sq_query *q, int dialect, sq_err *err);
/* UPDATE / DELETE / INCREMENT: fewer affected rows than rows is kind
 * stale, the message starting with what (copied; NULL: "update"). */
void sq_oper_expect(sq_oper *op, int64_t rows, const char *what);
/* UPSERT: the key values (in sq_model_pk order; SQ_VNULL where unknown),
 * copied. UPDATE / DELETE with sq_oper_expect_version: the instance's key
 * (named in the stale message). */
int sq_oper_set_key(sq_oper *op, const sq_value *key, int n, sq_err *err);
/* UPDATE / DELETE of an instance whose statement checks the version
 * column (optimistic locking: WHERE key AND version = v, one statement):
 * fewer rows than sq_oper_expect's is kind stale with a message naming
 * the model, the key (sq_oper_set_key) and the version v: "<what>:
 * <Model> row <key> is not at version v any more (changed or deleted by
 * someone else since it was loaded); nothing was written". */
void sq_oper_expect_version(sq_oper *op, int64_t v);
/* BULK_INSERT options (call after sq_oper_bulk_rows):
 *   SQ_BULK_PLAIN   a plain INSERT (the default);
 *   SQ_BULK_IGNORE  rows colliding with a unique key are skipped
 *                   (sq_query.on_conflict; conflict columns optional,
 *                   only PostgreSQL and SQLite name them);
 *   SQ_BULK_UPDATE  an upsert per batch: SQ_Q_UPSERT with the conflict
 *                   columns (required on PostgreSQL and SQLite; MySQL's
 *                   ON DUPLICATE KEY UPDATE fires on any unique key) and
 *                   update columns (nupdate >= 1, among the inserted).
 * count_only: no RETURNING and no keys (sq_oper_ids NULL): the result's
 * affected_rows is the servers' count, one statement per batch on every
 * dialect. Without count_only, IGNORE and UPDATE send RETURNING and their
 * sink gets only the rows the server returns (PostgreSQL, SQLite: the
 * rows inserted, and for UPDATE the rows updated; MariaDB >= 10.5 for
 * IGNORE: the rows inserted), in the server's order; where the server
 * can't return them (MySQL, TiDB, MariaDB < 10.5; every MySQL-family
 * server for UPDATE) the run fails with kind usage before sending
 * anything. Columns are checked when rendered (usage). Copied. */
enum { SQ_BULK_PLAIN = 0, SQ_BULK_IGNORE, SQ_BULK_UPDATE };
int sq_oper_bulk_conflict(sq_oper *op, int mode, const int *conflict, int nconflict, const int *update, int nupdate,
                          int count_only, sq_err *err);
/* BULK_INSERT: nrows rows of ncols values each (row-major), for the
 * columns cols (ascending) of m, at most per rows per statement (<= 0:
 * as many as the bind limit allows). Copied, unless flags has
 * SQ_STMT_ARENA_VALUES: rows and their strings then already live in the
 * op's arena (sq_oper_arena). Sets the op's model. */
int sq_oper_bulk_rows(sq_oper *op, const sq_model *m, const int *cols, int ncols, const sq_value *rows, int nrows,
                      int per, unsigned flags, sq_err *err);
/* FIND_OR_CREATE: nothing found means no insert (see above). */
void sq_oper_set_no_insert(sq_oper *op, int yes);
/* SYNC: what to do with the models (copied array of borrowed models). */
enum { SQ_SYNC_CREATE = 0, SQ_SYNC_FORCE, SQ_SYNC_ALTER, SQ_SYNC_DROP, SQ_SYNC_ALTER_DROP };
int sq_oper_sync(sq_oper *op, sq_model *const *models, int n, int how, sq_err *err);
/* FIND_OR_CREATE: 1 when the row was inserted. */
int sq_oper_created(const sq_oper *op);
/* BULK_INSERT: per row, the key the server assigned where the INSERT
 * returned no rows (0: none known, or the key was given); *n rows.
 * NULL when there are none. */
const int64_t *sq_oper_ids(const sq_oper *op, int *n);
/* BULK_INSERT, plain mode (issue 15): with SQ_RETURNING_UNSET the
 * RETURNING of PostgreSQL and MariaDB >= 10.5 lists only the columns the
 * INSERT leaves to the server (generated keys, columns no row gives), as
 * sq_query.returning does for one row; none when the rows give every
 * column. The caller already holds what it sent. 0 (the default): every
 * column. Other modes and count_only are unchanged. */
void sq_oper_bulk_returning(sq_oper *op, int how);

/*
 * Includes (SQ_OPER_SELECT): after adding the main statement rendered by
 * sq_render_select (or sq_render_include_batch) as *main, hand the op its
 * result columns and to-many includes. The op then loads every to-many
 * level itself, on the same connection, with no caller code in between:
 * while the rows of a set stream to the sink it keeps each row's key
 * for every batch keyed on that set; after the statement it renders
 * sq_render_include_batch for the distinct non-null keys (chunked under
 * sq_include_batch_max) for the dialect of the connection it runs on and
 * runs them as one more set per include, in breadth-first order, each
 * row tagged with the index of its parent row in the set above (the
 * first row with that key). An include whose parents have no key runs
 * no statement and makes no set. Batch statements get their log
 * records when they run (after sq_oper_prepare). The include tree and
 * every value it holds are borrowed until the op is reset (build them in
 * the op's arena); main's columns and batches are copied.
 */
typedef struct sq_oper_setinfo {
  const sq_include *inc;  /* the include of the set; NULL for set 0 */
  int parent_set;         /* -1 for set 0 */
  const sq_rcol *cols;    /* where each result column comes from */
  int ncols;
  int parent_col;         /* the column holding the parent key, or -1 */
} sq_oper_setinfo;
int sq_oper_set_includes(sq_oper *op, const sq_select_sql *main, sq_err *err);
/* Sets described so far (during a run: those whose columns were
 * announced) and their descriptions (valid until the next reset). */
int sq_oper_nsets(const sq_oper *op);
/* SQ_STMT_COUNT: the count's value (0 before it ran). */
int64_t sq_oper_count(const sq_oper *op);
const sq_oper_setinfo *sq_oper_set_info(const sq_oper *op, int set);

/*
 * Rowsets: an owned copy of a sink's calls (columns and rows of every
 * set, values deep-copied into 64 KiB chunks), replayed in order. Not
 * thread-safe; an op fills its own on whatever thread runs it.
 */
int sq_rowset_new(sq_rowset **out, sq_err *err);
void sq_rowset_clear(sq_rowset *rs); /* keeps one chunk */
void sq_rowset_free(sq_rowset *rs);
/* A sink (no protect) that records into rs. */
void sq_rowset_sink(sq_rowset *rs, sq_oper_sink *out);
int sq_rowset_replay(const sq_rowset *rs, const sq_oper_sink *sink, sq_err *err);
int64_t sq_rowset_rows(const sq_rowset *rs);

/* The columns of model m that a unique_violation message of the dialect
 * names (a flag per column in flags, m's column count long); returns how
 * many, 0 when the message names none that sqorm can place. */
int sq_model_unique_cols(const sq_model *m, int dialect, const char *msg, unsigned char *flags);

/* ------------------------------------------------------------------ */
/* Schema operations (migrations, sync's difference)                    */
/* ------------------------------------------------------------------ */

/*
 * A schema operation is plain data: what to change, never SQL. The core
 * renders it per dialect (identifiers checked and quoted by
 * sq_quote_ident, defaults, comments and enum values written as literals
 * the core formats itself from typed values), and on SQLite turns what
 * its ALTER TABLE can't do into a table rebuild that keeps the rows, the
 * other columns with their constraints (CHECK, COLLATE ... as written),
 * the indexes, the triggers and the foreign keys.
 *
 *   kind                 uses
 *   create_table         table, cols/ncols (keys from the columns: primary_key, unique ""
 *                        or a shared group name, references), indexes, fks, if_exists
 *                        (IF NOT EXISTS). MySQL: ENGINE=InnoDB, utf8mb4, indexes inline;
 *                        PostgreSQL: COMMENT ON, then CREATE INDEX; SQLite: CREATE INDEX.
 *   drop_table           table, if_exists
 *   rename_table         table, new_name
 *   add_column           table, col (unique "" and references are honoured; fill_now)
 *   remove_column        table, name. SQLite: ALTER TABLE DROP COLUMN when nothing else
 *                        refers to the column, else a rebuild; a key column is refused.
 *   rename_column        table, name, new_name (SQLite >= 3.25, MySQL 8 / MariaDB 10.5)
 *   change_column        table, name, col: the column's new type, nullability and
 *                        default (keys are not touched; SQLite keeps its other
 *                        constraints); change limits what changes (SQ_CHANGE_*, 0: type,
 *                        null, default, and the comment when col has one); old_type, when
 *                        known, picks PostgreSQL's USING cast (booleans go through INTEGER)
 *   add_index            table, index (name NULL: "<table>_<col>_<col>", as models
 *                        name them), if_exists (IF NOT EXISTS: not MySQL 8)
 *   remove_index         table, name, if_exists
 *   add_unique           table, index: a unique constraint (name NULL: unnamed)
 *   remove_unique        table, name; on SQLite index->cols finds it (its autoindex
 *                        name is not its name)
 *   add_primary_key      table, index (the key columns)
 *   drop_primary_key     table, name (PostgreSQL: the constraint, NULL: "<table>_pkey")
 *   add_foreign_key      table, fk
 *   remove_foreign_key   table, name (or fk->cols when name is NULL: every key over them)
 *   add_enum_values      table, name (the column), values: the values to add; col: the
 *                        column after the change (its enum_values the whole list, in
 *                        order), needed by MySQL (MODIFY COLUMN ... ENUM(...)) and SQLite
 *                        (a rebuild with the new CHECK). PostgreSQL: ALTER TYPE ... ADD
 *                        VALUE IF NOT EXISTS, placed AFTER its neighbour in col's list.
 *   note                 note: what a difference can't express; renders nothing
 *
 * ENUM columns: enum_values set (type SQ_T_STRING or 0). MySQL: ENUM('a',
 * 'b'); PostgreSQL: the named type enum_type (default "enum_<table>_<col>",
 * shortened with a hash past 63 bytes), created before its first use
 * when missing (a DO block, so a dropped and re-created table reuses
 * it as it is: add values with add_enum_values); SQLite: TEXT with
 * CHECK ("col" IN ('a', 'b')). PostgreSQL, planned with a connection
 * (sq_schema_plan, sq_schema_apply): drop_table, remove_column and a
 * change_column to another type are followed by DROP TYPE IF EXISTS for
 * each enum type only that table / column used (no other table, view or
 * composite type has a column of it).
 *
 * Lifetimes: every pointer in an op is borrowed for the call that reads
 * it; ops built by the core (sq_sop_list) own theirs.
 */
typedef enum sq_sop_kind {
  SQ_SOP_CREATE_TABLE = 1,
  SQ_SOP_DROP_TABLE,
  SQ_SOP_RENAME_TABLE,
  SQ_SOP_ADD_COLUMN,
  SQ_SOP_REMOVE_COLUMN,
  SQ_SOP_RENAME_COLUMN,
  SQ_SOP_CHANGE_COLUMN,
  SQ_SOP_ADD_INDEX,
  SQ_SOP_REMOVE_INDEX,
  SQ_SOP_ADD_UNIQUE,
  SQ_SOP_REMOVE_UNIQUE,
  SQ_SOP_ADD_PRIMARY_KEY,
  SQ_SOP_DROP_PRIMARY_KEY,
  SQ_SOP_ADD_FOREIGN_KEY,
  SQ_SOP_REMOVE_FOREIGN_KEY,
  SQ_SOP_ADD_ENUM_VALUES,
  SQ_SOP_NOTE,
  SQ_SOP_COUNT
} sq_sop_kind;

/* "create_table", "add_column", ... (NULL when unknown). */
const char *sq_sop_kind_name(int kind);

/* A foreign key. Actions SQ_FK_DEFAULT write no clause (the server's NO
 * ACTION); sync's difference always gives them resolved. */
typedef struct sq_sfk {
  const char *name;            /* NULL: "<table>_<col>_fkey" (shortened with a hash past 63 bytes) */
  const char *const *cols;     /* the key columns (a column's references: NULL, that column) */
  int ncols;
  const char *ref_table;
  const char *const *ref_cols; /* NULL: "id" */
  int nref_cols;
  int on_delete, on_update;    /* sq_fk_action */
  int deferred;                /* create_table: not in CREATE TABLE on MySQL/PostgreSQL (add it
                                * with add_foreign_key once the referenced table exists) */
} sq_sfk;

/* A column definition (sq_scol_init sets allow_null = 1, the rest 0). */
typedef struct sq_scol {
  const char *name;
  int type;                    /* sq_ctype */
  int length, precision, scale;/* STRING(n), CHAR(n), DECIMAL(p,s); 0: the defaults of sq_coldef */
  int allow_null;              /* 1: NULL allowed (key columns never are) */
  int primary_key, auto_increment;
  const char *unique;          /* NULL; "": unique alone; "name": create_table's composite key */
  const char *comment;
  int default_kind;            /* SQ_DEFAULT_VALUE: default_value is the DEFAULT; others: none */
  sq_value default_value;
  const char *const *enum_values; /* an ENUM: its values, in order */
  int nenum_values;
  const char *enum_type;       /* PostgreSQL: the type's name; NULL: "enum_<table>_<col>" */
  int fill_now;                /* add_column of a NOT NULL DATE / DATETIME: rows already there
                                * get the current UTC time (the default is dropped after) */
  const sq_sfk *references;    /* create_table, add_column: a foreign key on this column */
} sq_scol;

/* An index, a unique constraint or a primary key: columns by name. */
typedef struct sq_sindex {
  const char *name;
  const char *const *cols;
  int ncols;
  int unique;                  /* add_index / create_table indexes: CREATE UNIQUE INDEX */
} sq_sindex;

/* change_column: what changes. */
enum {
  SQ_CHANGE_TYPE = 1,
  SQ_CHANGE_NULL = 2,
  SQ_CHANGE_DEFAULT = 4,
  SQ_CHANGE_AUTOINC = 8,       /* MySQL AUTO_INCREMENT, PostgreSQL identity (with its sequence
                                * moved past the rows there) */
  SQ_CHANGE_COMMENT = 16       /* PostgreSQL: COMMENT ON (MySQL's MODIFY always writes it) */
};

typedef struct sq_sop {
  int kind;                    /* sq_sop_kind */
  const char *table;
  const char *name;            /* the column, index or constraint the op is about */
  const char *new_name;        /* rename_table, rename_column */
  const sq_scol *col;          /* add_column, change_column, add_enum_values */
  const sq_scol *cols;         /* create_table */
  int ncols;
  const sq_sindex *index;      /* add_index, add_unique, add_primary_key; remove_unique on SQLite */
  const sq_sindex *indexes;    /* create_table */
  int nindexes;
  const sq_sfk *fk;            /* add_foreign_key; remove_foreign_key without a name */
  const sq_sfk *fks;           /* create_table: table-level keys */
  int nfks;
  const char *const *values;   /* add_enum_values */
  int nvalues;
  int if_exists;               /* create_table, add_index: IF NOT EXISTS; drop_table, remove_index: IF EXISTS */
  int change;                  /* change_column: SQ_CHANGE_* (0: see above) */
  int old_type;                /* change_column: sq_ctype before the change, 0 unknown */
  const char *note;            /* note; change_column / remove_column from sq_schema_diff with
                                * SQ_DIFF_NOTES: what old_col could not say, or NULL */
  const sq_scol *old_col;      /* change_column / remove_column from sq_schema_diff with
                                * SQ_DIFF_NOTES: the live column before the op (type, enum
                                * values, nullability, default) for a down that restores it;
                                * NULL when its type is none sqorm writes. Renderers ignore it. */
} sq_sop;

void sq_sop_init(sq_sop *op, int kind, const char *table);     /* zeroes, then sets kind, table */
void sq_scol_init(sq_scol *c, const char *name, int type);     /* zeroes, allow_null = 1 */

/* A list of operations that owns everything its ops point to (built by
 * the core: sq_schema_diff, sq_sop_from_model). */
typedef struct sq_sop_list {
  sq_sop *ops;
  int n;
  sq_arena *arena_;            /* internal: the memory of ops and everything they point to */
  int cap_;
} sq_sop_list;
void sq_sop_list_free(sq_sop_list *l);

/*
 * Appends to out (zeroed or a list of the core's) the create_table op of
 * m: its columns (defaults: only constant values), primary key, uniques,
 * indexes and foreign keys with resolved actions (deferred ones marked),
 * as sq_render_create writes it (sq_render_create is rendering this op).
 */
int sq_sop_from_model(const sq_model *m, sq_sop_list *out, sq_err *err);

/* Flags of the renderers. */
#define SQ_SCHEMA_ONE_ALTER 1 /* MySQL: consecutive ops on one table become one ALTER TABLE, applied
                               * whole or not at all (create, drop and renames of tables stay apart) */

/*
 * Renders ops[0..n) for a dialect with no connection: the exact text,
 * one list for all ops in order. On SQLite an op that needs a rebuild
 * (change_column, keys, foreign keys, enum values, an add_column ALTER
 * can't take) needs the live table: SQ_EUSAGE naming sq_schema_plan.
 * Nothing is rendered on error (out is empty). Notes render nothing.
 */
int sq_schema_render(const sq_sop *ops, int n, int dialect, int flags, sq_sql_list *out, sq_err *err);

/*
 * Renders ops for the server behind c, reading the live schema where the
 * text depends on it (SQLite: rebuilds, and whether DROP COLUMN can be
 * native). Consecutive ops on one SQLite table that need a rebuild share
 * one. Nothing is run. Each SQLite table is read once, as it is before
 * the list runs: a rebuild of a table that an earlier op of the list
 * changes is SQ_EUSAGE (run them with sq_schema_apply, which plans each
 * op when its turn comes). Run a SQLite plan holding a rebuild with
 * foreign keys off (sq_sqlite_run_rebuild, or between sq_schema_begin
 * and sq_schema_commit).
 */
int sq_schema_plan(sq_conn *c, const sq_sop *ops, int n, int flags, sq_sql_list *out, sq_err *err);

/*
 * Plans and runs ops in order on c, each against the schema as the ops
 * before it left it. Outside a transaction it runs them as one
 * (sq_schema_begin / sq_schema_commit, rolled back on failure: nothing of
 * them remains on PostgreSQL and SQLite; MySQL commits each DDL
 * statement). Inside the caller's transaction (begun with
 * sq_schema_begin) it only runs them; on SQLite, inside a transaction
 * where foreign keys are on, a rebuild is refused (SQ_EUSAGE) before it
 * runs (the caller's transaction holds what ran before it: roll it
 * back). on_sql (may be NULL) sees each statement before it runs.
 */
typedef void (*sq_schema_log_fn)(void *ud, const char *sql);
int sq_schema_apply(sq_conn *c, const sq_sop *ops, int n, int flags, sq_schema_log_fn on_sql, void *ud,
                    sq_err *err);

/*
 * A transaction for schema changes on c (outside any other transaction).
 * SQLite: PRAGMA foreign_keys = OFF (else a rebuild's DROP TABLE would
 * fire the ON DELETE actions of the tables referencing it), BEGIN;
 * commit runs PRAGMA foreign_key_check first (a violation rolls back:
 * SQ_ECONSTRAINT naming the table) and turns foreign keys back on, as
 * does rollback. PostgreSQL: BEGIN / COMMIT / ROLLBACK (its DDL is
 * transactional). MySQL: nothing (each DDL statement commits by
 * itself); begin returns SQ_OK.
 *
 * A migration, on the connection that holds the migrator's lock:
 *   sq_schema_begin(c)
 *   for each op its `up` asks for: sq_schema_apply(c, &op, 1, 0, log, ud)
 *       (planned against the schema the ops before it left; an error
 *        names the op: "add_column \"players\".\"x\": ...")
 *   the bookkeeping row (sq_conn_exec)
 *   sq_schema_commit(c), or sq_schema_rollback(c) after a failure
 * PostgreSQL and SQLite keep nothing of a failed migration; on MySQL what
 * ran before the failing op stays (report it as partially applied).
 */
int sq_schema_begin(sq_conn *c, sq_err *err);
int sq_schema_commit(sq_conn *c, sq_err *err);
int sq_schema_rollback(sq_conn *c, sq_err *err);

/*
 * The difference between models and the live schema on c, as ops: what
 * sync{ alter = true } runs for them, in its order. For each model of
 * sq_schema_order(models) (join models included): create_table when the
 * table is missing; else drop_primary_key / remove_unique (undeclared
 * unique constraints), add_column, add_enum_values (an ENUM column whose
 * live values are all among the model's, which has more; all the
 * model's values, so each renderer adds what is missing), change_column
 * (with change and old_type set), remove_column, add_primary_key,
 * add_unique and add_index (names the table lacks). Then the missing foreign keys
 * (add_foreign_key; on SQLite right after the table's other ops, so one
 * rebuild does both). Rendered with SQ_SCHEMA_ONE_ALTER (sq_schema_plan,
 * sq_schema_apply), that is what sq_plan_alter_ex and sq_plan_alter_fks
 * plan for each model (MySQL may fold a table's keys into its one
 * ALTER TABLE, SQLite its keys into its one rebuild).
 *
 * A column holding data that the model lacks is SQ_EUSAGE naming it,
 * unless flags has SQ_ALTER_DROP (dropped) or SQ_DIFF_NOTES (a note).
 * With SQ_DIFF_NOTES (generate), a live foreign key over a column the
 * model still has but no model declares (a removed association) is a
 * remove_foreign_key op with its whole definition in fk (actions
 * included); change_column and remove_column carry old_col; what the
 * difference doesn't change is listed as notes too: the other live
 * foreign keys and the indexes no model declares, and
 * that comments, CHECK constraints and collations are not compared. An empty list means the schema matches.
 * *out is the caller's (sq_sop_list_free), also after an error.
 */
#define SQ_DIFF_NOTES 2
int sq_schema_diff(sq_conn *c, sq_model *const *models, int n, int flags, sq_sop_list *out, sq_err *err);

/* ------------------------------------------------------------------ */
/* Migrations (the migrator's session)                                  */
/* ------------------------------------------------------------------ */

/*
 * A migrator session is one run of the migrator (`up`, `down`, `status`,
 * ...): a dedicated connection that holds the migration lock from open to
 * close, the bookkeeping table, and the migrations run on it one by one.
 *
 *   connection  a private pool of one connection over the pool's config
 *               (not counted in the pool, not shared); an in-memory SQLite
 *               database uses a connection of the pool itself (acquired
 *               as h), since no other connection sees it.
 *   lock        PostgreSQL pg_try_advisory_lock(0x5351, hash(db.table)),
 *               retried until lock_timeout; MySQL family GET_LOCK(
 *               "sqorm_migrate:<hash(db.table)>"); SQLite BEGIN IMMEDIATE
 *               (the database's write lock) for the whole run, foreign
 *               keys off, each migration a SAVEPOINT in it, committed at
 *               close. The lock belongs to the session: a process killed
 *               mid-run loses its connection and with it the lock (SQLite:
 *               the journal is rolled back by the next opener), so there
 *               is never a lock row to clear. Waiting longer than
 *               lock_timeout seconds (< 0: 60) is SQ_ETIMEOUT.
 *   table       `table` (NULL: "sqorm_migrations"), created when missing
 *               (a create_table schema op, IF NOT EXISTS): name
 *               VARCHAR(255) primary key, batch INTEGER, applied_at
 *               DATETIME (UTC), checksum VARCHAR(64).
 *
 * One migration:
 *   sq_migrator_begin(m, name)      PostgreSQL BEGIN, SQLite SAVEPOINT,
 *                                   MySQL nothing (each DDL commits)
 *   sq_migrator_apply(m, ops, n)    schema ops, planned and run one call at
 *                                   a time against the schema as the ops
 *                                   before left it (sq_schema_apply); every
 *                                   statement goes to the log function
 *   sq_migrator_exec(m, sql, ...)   a raw statement (a migration's exec /
 *                                   query: ? placeholders, values bound)
 *   sq_migrator_record / _unrecord  the bookkeeping row (up / down)
 *   sq_migrator_commit(m)           SQLite runs PRAGMA foreign_key_check
 *                                   first (a violation rolls back)
 *   or sq_migrator_rollback(m, err) after a failure (a failed commit
 *                                   has rolled back already): rolls back
 *                                   and rewrites err's message to name the
 *                                   migration: PostgreSQL / SQLite
 *                                   'migration "N" failed and was rolled
 *                                   back (nothing of it remains): ...';
 *                                   MySQL, a server error (err->code set):
 *                                   'migration "N" failed at statement:
 *                                   <sql>: <error>; partially applied:
 *                                   ...', else 'migration "N" failed:
 *                                   <error> (the last statement it sent:
 *                                   <sql>); partially applied: ...'. Its
 *                                   kind, code and sqlstate stay.
 * sq_migrator_close gives the lock and the connection back (SQLite:
 * COMMIT of the run first); sq_migrator_abandon does no I/O (finalisers):
 * the private connection is closed, which ends the lock and rolls back.
 *
 * Why these are plain calls and not sq_oper kinds: every call of a
 * session runs on the session's own connection, which is no pool,
 * transaction or cursor target, and a run is a deploy-time tool whose
 * caller waits for it (the `sqorm` command, a test, a host's start-up).
 * When async mode needs it, the whole run becomes one job on a worker.
 *
 * Threads: a session is used by one thread at a time.
 */
typedef struct sq_migrator sq_migrator;

typedef struct sq_migration_row {
  const char *name;        /* valid during the callback */
  int64_t batch;
  const char *applied_at;  /* "YYYY-MM-DD HH:MM:SS" UTC */
  const char *checksum;
} sq_migration_row;
typedef int (*sq_migrator_row_fn)(void *ud, const sq_migration_row *row, sq_err *err);

int sq_migrator_open(sq_pool *p, const sq_holder *h, const char *table, double lock_timeout, sq_migrator **out,
                     sq_err *err);
int sq_migrator_dialect(const sq_migrator *m);
int sq_migrator_transactional(const sq_migrator *m); /* 1: PostgreSQL, SQLite */
sq_conn *sq_migrator_conn(sq_migrator *m);           /* borrowed, for the session's own use */
/* on_sql (may be NULL) sees every statement a migration sends, before it runs. */
void sq_migrator_set_log(sq_migrator *m, sq_schema_log_fn on_sql, void *ud);
/* The applied rows, ordered by name. */
int sq_migrator_rows(sq_migrator *m, sq_migrator_row_fn fn, void *ud, sq_err *err);
int sq_migrator_begin(sq_migrator *m, const char *name, sq_err *err);
int sq_migrator_apply(sq_migrator *m, const sq_sop *ops, int n, sq_err *err);
int sq_migrator_exec(sq_migrator *m, const char *sql, size_t len, const sq_value *params, int nparams,
                     const sq_row_sink *sink, sq_result *res, sq_err *err);
int sq_migrator_record(sq_migrator *m, const char *name, int64_t batch, const char *checksum, sq_err *err);
int sq_migrator_unrecord(sq_migrator *m, const char *name, sq_err *err);
int sq_migrator_commit(sq_migrator *m, sq_err *err);
int sq_migrator_rollback(sq_migrator *m, sq_err *err);
/* The last statement the current migration sent (NULL: none yet). */
const char *sq_migrator_last_sql(const sq_migrator *m);
/* sq_schema_diff(models) on the session's connection, notes included
 * (SQ_DIFF_NOTES): what `generate` writes. */
int sq_migrator_diff(sq_migrator *m, sq_model *const *models, int n, sq_sop_list *out, sq_err *err);
int sq_migrator_close(sq_migrator *m, sq_err *err);
void sq_migrator_abandon(sq_migrator *m);
/* JSON (json.c)                                                        */
/* ------------------------------------------------------------------ */

/*
 * A strict RFC 8259 parser with callbacks and a writer, used by T.JSON
 * columns (the Lua binding walks tables into the writer and builds
 * tables from the parser's events); no Lua here.
 *
 * Parser: one value with optional white space around it; no comments,
 * trailing commas, single quotes, NaN / Infinity, leading zeros or
 * control characters in strings; strings must be valid UTF-8 and \u
 * escapes well-formed (a lone surrogate is refused). Nesting deeper than
 * max_depth (0: SQ_JSON_MAX_DEPTH) is refused. Numbers are exact or
 * refused: an integer literal that fits int64 is SQ_JSON_INT; any other
 * number is SQ_JSON_DOUBLE when it has at most 17 significant digits and
 * is within the range of a double (its nearest double, as every JSON
 * reader does), and is refused otherwise (more digits than a double
 * holds, an integer beyond int64 that no double holds exactly, an
 * exponent past the range): SQ_EUSAGE "number ... can't be read without
 * losing digits". Duplicate keys are passed on as they come.
 */
#define SQ_JSON_MAX_DEPTH 100

enum sq_json_event {
  SQ_JSON_NULL = 1, SQ_JSON_FALSE, SQ_JSON_TRUE, SQ_JSON_INT, SQ_JSON_DOUBLE, SQ_JSON_STRING,
  SQ_JSON_KEY,                                   /* an object member's name (s, n), before its value */
  SQ_JSON_ARRAY_BEGIN, SQ_JSON_ARRAY_END, SQ_JSON_OBJECT_BEGIN, SQ_JSON_OBJECT_END
};

/* One event. s points into the input or into the parser's scratch
 * (unescaped) and is valid only during the callback; it may hold NULs
 * (from \u0000). depth: 1 inside the outermost array / object. */
typedef struct sq_json_ev {
  int kind;      /* sq_json_event */
  int64_t i;     /* SQ_JSON_INT */
  double f;      /* SQ_JSON_DOUBLE */
  const char *s; /* SQ_JSON_STRING, SQ_JSON_KEY */
  size_t n;
  int depth;
} sq_json_ev;

/* The callback returns 0 to go on; non-zero stops the parse, which then
 * returns err->kind (or SQ_EUSAGE "stopped" when err is still clear). */
typedef int (*sq_json_cb)(void *ud, const sq_json_ev *ev, sq_err *err);

/* Parses s[0..n). scratch: NULL (the parser allocates and frees its own)
 * or at least n bytes the caller owns (so a callback that never returns,
 * a longjmp, leaks nothing). Errors name the byte offset. */
int sq_json_parse(const char *s, size_t n, int max_depth, char *scratch, sq_json_cb cb, void *ud, sq_err *err);

/*
 * Writer: appends compact JSON (no spaces) into its own buffer, with
 * commas and colons placed for the caller. Calls must nest properly
 * (sq_json_w_key before each member value of an object); a misuse, a
 * string that is not valid UTF-8, a non-finite double or nesting past
 * max_depth is SQ_EUSAGE and sticks (later calls do nothing). Doubles are
 * written with the fewest digits that read back as the same double, and
 * always with a '.' or an exponent, so they read back as doubles.
 */
typedef struct sq_json_w {
  char *p;           /* the text (NUL-terminated once anything was written) */
  size_t n, cap;
  int depth, max_depth;
  int rc;            /* sticky error kind */
  unsigned char st[SQ_JSON_MAX_DEPTH + 2]; /* per level: 0 empty array, 1 array with items,
                                            * 2 object before a key, 3 object after a key,
                                            * 4 object with members */
  int done;          /* a top-level value was written */
} sq_json_w;

void sq_json_w_init(sq_json_w *w, int max_depth); /* 0: SQ_JSON_MAX_DEPTH */
void sq_json_w_free(sq_json_w *w);
int sq_json_w_null(sq_json_w *w, sq_err *err);
int sq_json_w_bool(sq_json_w *w, int b, sq_err *err);
int sq_json_w_int(sq_json_w *w, int64_t i, sq_err *err);
int sq_json_w_double(sq_json_w *w, double f, sq_err *err);
int sq_json_w_string(sq_json_w *w, const char *s, size_t n, sq_err *err);
int sq_json_w_key(sq_json_w *w, const char *s, size_t n, sq_err *err);
int sq_json_w_begin(sq_json_w *w, int object, sq_err *err);
int sq_json_w_end(sq_json_w *w, sq_err *err);
/* SQ_OK when exactly one complete value was written (the text is w->p,
 * w->n), else SQ_EUSAGE. */
int sq_json_w_finish(sq_json_w *w, sq_err *err);
/* 1 when s[0..n) parses as JSON (a quick check, no events kept). */
int sq_json_valid(const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* SQORM_H */
