/*
 * internal.h - shared between the core's own files; never installed and
 * never included by the Lua binding (which sees only sqorm.h).
 */
#ifndef SQORM_INTERNAL_H
#define SQORM_INTERNAL_H

#include "sqorm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* A pooled connection. Owned by the pool; lent to one caller at a time
 * between sq_pool_acquire and sq_pool_release. */
struct sq_conn {
  sq_pool *pool;          /* the pool it belongs to (borrowed) */
  const sq_driver *drv;
  sq_dconn *h;            /* the driver's connection; NULL while opening */
  double created_at;      /* monotonic seconds (sq_now) */
  double last_used;       /* monotonic seconds of the last release */
  int dead;               /* set by the core on SQ_ECONNECTION failures */
  int dirty;              /* the session may have changed: full reset on release */
  struct sq_tx *tx;       /* the transaction holding it (tx.c), or NULL */
  struct sq_conn *next;   /* idle list link (pool lock) */
  /* Set by the executor (exec.c) from another thread when the operation
   * using this connection was cancelled or timed out: an sq_kind, and
   * sq_conn_exec_native refuses to start further statements with it. The
   * executor clears it before the connection is used again. */
  atomic_int stop;
};

/* Monotonic clock in seconds. */
double sq_now(void);

/* ------------------------------------------------------------------ */
/* Backoff and host health (hosts.c)                                    */
/* ------------------------------------------------------------------ */

#define SQ_HOST_BACKOFF_DEFAULT 5.0 /* seconds a failed host or replica is skipped at first */
#define SQ_BACKOFF_MAX_FACTOR 12    /* ... doubling per further failure, at most 12 times that */

/* A thing that failed and is skipped for a while: down while sq_now() <
 * until. Zero-initialised means up. Not synchronised: the owner locks. */
typedef struct sq_backoff {
  int failures;   /* consecutive */
  double until;   /* sq_now() time it is tried again */
} sq_backoff;

/* The wait after the n-th consecutive failure (n >= 1): base, 2 base,
 * 4 base, ... at most SQ_BACKOFF_MAX_FACTOR x base. */
double sq_backoff_delay(double base, int failures);
void sq_backoff_fail(sq_backoff *b, double base, double now);
static inline void sq_backoff_ok(sq_backoff *b) { b->failures = 0; b->until = 0; }
static inline int sq_backoff_down(const sq_backoff *b, double now) { return b->failures > 0 && now < b->until; }

/*
 * The order in which to try hosts[0..n) for a new connection: the hosts
 * that are up in list order, then the down ones, soonest retry first.
 * Fills order[0..n) with indexes and returns how many are up.
 */
int sq_hosts_order(const sq_host *hosts, int n, int *order);
/* A connect to host:port failed (kind connection or timeout): it is down
 * for the next backoff step (base seconds, doubling). why: the error's
 * message (already free of passwords), kept for sq_host_state. */
void sq_hosts_failed(const char *host, int port, double base, const char *why);
/* A connect to host:port succeeded: it is up again. */
void sq_hosts_ok(const char *host, int port);

/* strdup that returns NULL on NULL. */
char *sq_strdup(const char *s);

/* Writes v in decimal into buf (at least 21 bytes) with a terminating NUL
 * and returns the length. snprintf("%lld") costs several hundred
 * instructions per call, a real share of a statement's client time when
 * every int parameter and datetime goes through it. */
size_t sq_fmt_i64(int64_t v, char *buf);

/* Writes the n low decimal digits of v (zero-padded) at out; returns
 * out + n. For fixed-width date and time fields. */
char *sq_put_digits(char *out, unsigned v, int n);

/* A fast non-cryptographic hash of n bytes, seeded with seed (chain calls
 * to hash several pieces). The drivers' statement caches hash the SQL text
 * on every call, so this reads 8 bytes at a time instead of one. Values
 * are only ever compared within one process. */
uint64_t sq_hash_bytes(const void *p, size_t n, uint64_t seed);

/* The shortest "%.*g" (15 to 17 digits) that reads back as d, always
 * with '.' as the decimal point whatever the locale. buf >= 32. Used for
 * exact text of floats (DECIMAL stored as REAL, messages). */
int sq_fmt_double(double d, char *buf, size_t n);

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * civil_from_days): exact for any day count, thread-safe, and free of
 * time_t's range, unlike gmtime. */
void sq_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* ------------------------------------------------------------------ */
/* Exact decimal text (decimal.c), for DECIMAL on SQLite                */
/* ------------------------------------------------------------------ */

/* What the SQLite driver registers on every connection and the renderer
 * writes for DECIMAL columns there: a collation comparing decimal texts
 * numerically, exact sum and mean aggregates, an exact addition (for
 * increments) and the writer's normaliser sqorm_dnorm(x, p, s), which
 * returns x at exactly s decimals or fails when that would lose digits or
 * x has more than p - s integer digits. */
#define SQ_DEC_COLLATION "sqorm_decimal"
#define SQ_DEC_SUM "sqorm_dsum"
#define SQ_DEC_AVG "sqorm_davg"
#define SQ_DEC_ADD "sqorm_dadd"
#define SQ_DEC_NORM "sqorm_dnorm"
/* The mean (sqorm_davg) has this many more decimals than the most precise
 * value averaged, rounded half away from zero (MySQL's rule). */
#define SQ_DEC_AVG_EXTRA 4

#define SQ_DEC_BUF 512        /* bytes for an exponent form written out */
#define SQ_DEC_MAX_SCALE 4096 /* decimals the accumulator accepts */

/* A decimal number seen through its text: value = -1^neg x ip.fp, where
 * ip (in digits) has no leading zeros and fp (fn digits) is the fraction
 * as written (trailing zeros kept: its length is the value's scale). neg
 * is never set for zero. The pointers are into the text or into the
 * buffer given to sq_dec_view. */
typedef struct sq_decv {
  int neg;
  const char *ip, *fp;
  size_t in, fn;
} sq_decv;

/* Reads s[0..n) ("-12.50", " .5 ", "1.5e3"); -1 when it is not a decimal
 * number or an exponent form does not fit buf (cap bytes). */
int sq_dec_view(const char *s, size_t n, sq_decv *v, char *buf, size_t cap);
int sq_dec_is_zero(const sq_decv *v);
/* -1, 0 or 1 as a is less than, equal to or greater than b (numerically:
 * "1.5" equals "1.50"). */
int sq_dec_cmp(const sq_decv *a, const sq_decv *b);
/* The collation's order on any two texts: decimals numerically, then
 * everything else bytewise. */
int sq_dec_collate(const char *a, size_t an, const char *b, size_t bn);
/* v written with exactly scale decimals into out (cap bytes, NUL added):
 * "-0.5" at scale 2 is "-0.50", "0.00" is never signed. Returns the
 * length, or -1 when digits would be lost (a non-zero decimal past scale)
 * or v has more than precision - scale integer digits. */
int sq_dec_fixed(const sq_decv *v, int precision, int scale, char *out, size_t cap);

/* An exact running sum of decimals (and their count, for the mean).
 * Zero-initialised (sq_dacc_init) means 0 at scale 0; the scale becomes
 * the largest scale added. */
typedef struct sq_dacc {
  unsigned char *m;     /* magnitude digits, least significant first */
  size_t n, cap;        /* digits in use (no high zeros), allocated */
  int scale;            /* digits of m after the point */
  int neg;
  int64_t count;        /* values added */
  unsigned char *t;     /* scratch: the addend */
  size_t tcap;
} sq_dacc;
void sq_dacc_init(sq_dacc *a);
void sq_dacc_free(sq_dacc *a);
/* 0, or -1 when out of memory or v has more than SQ_DEC_MAX_SCALE
 * decimals. */
int sq_dacc_add(sq_dacc *a, const sq_decv *v);
/* The sum as text at its scale (malloc'd, *len set); NULL when out of
 * memory. */
char *sq_dacc_text(const sq_dacc *a, size_t *len);
/* The mean at scale + extra decimals, rounded half away from zero
 * (malloc'd); NULL when nothing was added or out of memory. */
char *sq_dacc_mean(const sq_dacc *a, int extra, size_t *len);

/* ------------------------------------------------------------------ */
/* The SQL lexer (lex.c): one per dialect, shared by the rewriter, the
 * renderer's raw fragments, the statement checks and the drivers.      */
/* ------------------------------------------------------------------ */

enum {
  SQ_TK_EOF = 0,
  SQ_TK_SPACE,
  SQ_TK_COMMENT,  /* --, #, block comments, MySQL executable-comment markers */
  SQ_TK_WORD,     /* keyword or unquoted identifier */
  SQ_TK_QIDENT,   /* "x", `x`, [x] (sqlite), U&"x" */
  SQ_TK_STRING,   /* '...', E'...', $tag$...$tag$, MySQL "..." */
  SQ_TK_NUMBER,
  SQ_TK_QMARK,    /* ? */
  SQ_TK_NAMED,    /* :name */
  SQ_TK_NATIVE,   /* postgres $n; sqlite ?NNN @x $x #x */
  SQ_TK_QESC,     /* postgres ??: a literal ? (jsonb ? ?| ?& operators) */
  SQ_TK_QAMBIG,   /* postgres ?| or ?& without the escape */
  SQ_TK_SEMI,
  SQ_TK_OP        /* anything else: operators, punctuation, ::, := */
};

#define SQ_LEX_NO_BACKSLASH 1u /* mysql: NO_BACKSLASH_ESCAPES is on */
#define SQ_LEX_BACKSLASH 2u    /* postgres: backslashes escape in '...' too */

typedef struct sq_token {
  int type;           /* SQ_TK_* */
  size_t pos, len;    /* the token's bytes in the SQL */
  int unterminated;   /* a string, name or comment runs to the end */
} sq_token;

typedef struct sq_lexer {
  const char *s;
  size_t len, pos;
  int dialect;
  unsigned flags;     /* SQ_LEX_* */
  int bracket;        /* [ ] depth (postgres, mysql) */
  int exec_comment;   /* inside a MySQL executable comment */
  int prev_type;      /* the last token */
  size_t prev_end;
  int sig_type;       /* the last token that is not space or comment */
  char sig_char;      /* its byte when it is one byte long */
} sq_lexer;

void sq_lex_init(sq_lexer *lx, int dialect, unsigned flags, const char *sql, size_t len);
/* Reads the next token into t and returns its type (SQ_TK_EOF at the end). */
int sq_lex_next(sq_lexer *lx, sq_token *t);
/* 1 when t is the word kw (upper case), ignoring case. */
int sq_tok_is(const char *sql, const sq_token *t, const char *kw);
/* 1 when w[0..n) is the word kw (upper case), ignoring case. */
int sq_word_is(const char *w, size_t n, const char *kw);

/* Statement analysis, fed token by token (every token, SQ_TK_EOF last). */
#define SQ_AN_FIRST 8
typedef struct sq_stmt_an {
  int dialect;
  const char *sql;
  /* the current statement */
  int ntok;                    /* significant tokens so far */
  sq_token first[SQ_AN_FIRST]; /* its first significant tokens */
  int nfirst;
  sq_token word;               /* first word after opening parentheses */
  int has_word, lead;
  int paren, seen_paren;
  int routine, depth, after_end; /* trigger / stored program bodies */
  int prev_dot, prev_into;
  int pragma_arg;
  int st_session, st_write, st_unterminated;
  /* the whole text so far */
  int nstatements;             /* non-empty statements */
  int session;                 /* some statement may change session state */
  int last_session;            /* the last finished statement may */
  int all_read;                /* every statement is a read */
  int unterminated;
} sq_stmt_an;

void sq_an_init(sq_stmt_an *a, int dialect, const char *sql);
/* Returns 1 when t ends a non-empty statement (a ';' outside parentheses
 * and routine bodies, or the end). */
int sq_an_feed(sq_stmt_an *a, const sq_token *t);

/* The first keyword of sql after blanks, comments and '(' (NULL if it
 * does not start with a word). */
const char *sq_sql_first_word(int dialect, const char *sql, size_t len, size_t *wlen);
/* Offset of the first token that is not a blank, comment or ';'. */
size_t sq_sql_skip_blank(int dialect, const char *sql, size_t len);
/* Pool <-> executor (pool.c, exec.c)                                   */
/* ------------------------------------------------------------------ */

/*
 * One place in the pool's FIFO queue of waiters. A blocking acquire keeps
 * one on its stack and sleeps on cv; an asynchronous job (exec.c) embeds
 * one and is told through served - called under the pool lock, so it must
 * only move pointers - when it reaches the head of the queue and a
 * connection (conn) or a bare slot (conn == NULL) is handed to it.
 */
typedef struct sq_pwait {
  pthread_cond_t cv;                   /* blocking waiters only */
  struct sq_pwait *prev, *next;
  int granted;                         /* set under the pool lock when served */
  int queued;                          /* linked into the queue (pool lock) */
  struct sq_conn *conn;                /* handed over, or NULL: a slot to open */
  void (*served)(struct sq_pwait *w);  /* async waiters; NULL: signal cv */
  const sq_holder *h;                  /* who waits (may be NULL): a connection handed over is lent to it */
} sq_pwait;

struct sq_exec;

/*
 * The executor's private part of an sq_job (it lives in job->priv_).
 * Every field is guarded by the executor's lock, except w (the pool's
 * lock) and next while the job sits in a completion queue (the queue's
 * lock).
 */
typedef struct sq_jobx {
  /* Set (release) when the job is submitted or starts a blocking run;
   * sq_job_cancel reads it without a lock from any thread. */
  _Atomic(struct sq_exec *) ex;
  sq_pwait w;               /* the job's place in the pool's queue */
  sq_pin *pin;              /* pinned target, or NULL */
  struct sq_conn *conn;     /* while running: what a cancel targets */
  sq_job *next;             /* run queue, pin queue or completion queue */
  sq_job *cnext;            /* the canceller's list */
  sq_job *lprev, *lnext;    /* every job in flight */
  sq_job *tnext;            /* scratch list, completing outside the lock */
  double submitted;         /* sq_now() at submit */
  double served;            /* sq_now() when the pool served it from its queue; 0: not queued */
  double acq_expiry;        /* pool_timeout time while waiting; 0 none */
  double acq_timeout;       /* seconds, for the pool_timeout message */
  double wake;              /* heap key */
  double cancel_at;         /* next server cancel attempt */
  int heap_idx;             /* -1 when not in the deadline heap */
  int state;                /* J_* in exec.c */
  int stop;                 /* 0, or the kind it was stopped with */
  int why;                  /* finer reason for kind closed */
  int submitting;           /* sq_job_submit still owns its bookkeeping */
  int post_deferred;        /* finished meanwhile: the submitter posts it */
  int in_clist, in_cancel, cancel_tries, cancel_sent;
}
#if defined(__GNUC__)
/* it lives in storage declared as another type (sq_job.priv_) */
__attribute__((may_alias))
#endif
sq_jobx;
#define SQ_JOBX(job) ((sq_jobx *)(void *)(job)->priv_.u)

/*
 * Asynchronous acquire. Under the pool lock: when nobody queues and an
 * idle connection or a free slot exists, takes it and returns 1 (*conn is
 * the idle connection, or NULL for a reserved slot the caller opens with
 * sq_pool_ready); otherwise, when queue is set, links w (w->served set)
 * at the tail and returns 0; with queue 0 returns 0 without queueing.
 * Returns -1 when the pool is closed. No I/O.
 */
int sq_pool_wait_async(sq_pool *p, sq_pwait *w, int queue, struct sq_conn **conn);
/* Unlinks w if it is still queued (1), else 0 (served or unlinked
 * before). count_timeout adds one to the pool's timeout count. */
int sq_pool_wait_remove(sq_pool *p, sq_pwait *w, int count_timeout);
/* Turns what a waiter was granted (a connection, or NULL for a slot) into
 * a usable connection: pings or opens it outside the lock. On failure the
 * slot is given up (to the next waiter) and the error returned. */
int sq_pool_ready(sq_pool *p, struct sq_conn *granted, sq_conn **out, sq_err *err);
/* sq_pool_acquire_as for the executor's blocking runs: fresh asks for a
 * newly opened connection (SQ_JOB_FRESH_CONN); *waited (may be NULL) is
 * set to the seconds spent in the pool's queue (0: served at once). */
int sq_pool_acquire_job(sq_pool *p, double timeout, const sq_holder *h, int fresh, double *waited, sq_conn **out,
                        sq_err *err);
/* Gives back a granted slot that was never opened. */
void sq_pool_slot_return(sq_pool *p);
/* Fills err with the pool_timeout message (the pool's counts). */
int sq_pool_timeout_error(sq_pool *p, double timeout, sq_err *err);
/* The pool's executor, created on first use (no threads yet); NULL with
 * err set when the pool is closed or out of memory. */
struct sq_exec *sq_pool_executor(sq_pool *p, sq_err *err);
/* Called by an executor thread that had to outlive the pool's last close
 * (it closed the pool from inside a callback): the pool may be freed now. */
void sq_pool_exec_exited(sq_pool *p);

/*
 * tx.c, for operations (op.c). The *_pinned calls are sq_tx_commit,
 * sq_tx_rollback and the savepoint ends made by an operation that holds
 * one sq_tx_conn pin itself (it runs them on the transaction's
 * connection): that pin is not a statement in progress, and a
 * connection given back waits for its sq_tx_conn_done.
 */
int sq_tx_commit_pinned(sq_tx *tx, sq_err *err);
int sq_tx_rollback_pinned(sq_tx *tx, sq_err *err);
int sq_tx_savepoint_end_pinned(sq_tx *tx, unsigned id, int rollback, sq_err *err);
/* A transaction owning c, on which BEGIN already ran (no I/O); NULL when
 * out of memory (c is still the caller's then). */
sq_tx *sq_tx_adopt(sq_pool *p, sq_conn *c);
/* sq_tx_conn uses not yet done (an async operation holds one while in
 * flight). */
int sq_tx_pins(const sq_tx *tx);
/* The executor stopped a statement of tx and rolled the transaction back
 * (job->tx_ended): tx fails with why, without another rollback. */
void sq_tx_stopped(sq_tx *tx, const sq_err *why);
/* A cursor for an operation: allocated closed; the driver gets
 * sq_cursor_fwd_sink, which passes rows on to the sink set with
 * sq_cursor_set_target (NULL: dropped). sq_cursor_attach gives it its
 * statement: on a transaction (linked, tx retained) or on a pooled
 * connection it then holds (p retained). sq_cursor_close_stmt closes the
 * driver statement only (I/O), leaving the connection to sq_cursor_close. */
sq_cursor *sq_cursor_prepare(void);
const sq_row_sink *sq_cursor_fwd_sink(sq_cursor *c);
void sq_cursor_set_target(sq_cursor *c, const sq_row_sink *sink);
void sq_cursor_attach(sq_cursor *c, sq_pool *p, sq_conn *conn, sq_tx *tx, sq_dcursor *dc);
sq_conn *sq_cursor_conn(const sq_cursor *c);
sq_tx *sq_cursor_tx(const sq_cursor *c);
/* Up to max rows of the cursor to its sink in one call (sq_cursor_fetch
 * per row, with the checks done once): *got rows came; *eof is set when
 * the driver has no more. Errors as sq_cursor_fetch's. */
int sq_cursor_fetch_n(sq_cursor *c, int max, int *got, int *eof, sq_err *err);
void sq_cursor_close_stmt(sq_cursor *c);

/* exec.c, called by pool.c. sq_exec_new allocates (no threads);
 * sq_exec_shutdown runs at the pool's last close, before connections are
 * closed: it completes every queued job, cancels running ones, and joins
 * the executor's threads; it returns 1 when it was called from one of
 * them, which then exits later and calls sq_pool_exec_exited.
 * sq_exec_free runs from pool_free. */
struct sq_exec *sq_exec_new(sq_pool *p);
/* pool.worker_nice (sq_pool_opts): sq_worker_nice is the value the
 * workers use (the given one, or the default when -1: 10 on Linux, 0
 * elsewhere; config.c). sq_thread_nice lowers the calling thread's
 * priority by n nice levels, capped at 19, and returns 0 or an errno
 * (ENOSYS for n > 0 off Linux; exec.c). sq_worker_nice_check (pool.c)
 * runs at pool open: a given value the system would refuse is
 * SQ_EUSAGE naming the option. */
int sq_worker_nice(const sq_pool_opts *o);
int sq_thread_nice(int n);
int sq_exec_shutdown(struct sq_exec *ex);
void sq_exec_free(struct sq_exec *ex);

/* cq.c, called by exec.c: a job submitted into cq holds a reference
 * until it is posted; post hands it to the consumer, or, once the
 * consumer closed the queue, to the discard callback (after releasing a
 * connection the job kept). */
void sq_cq_attach(sq_cq *cq);
void sq_cq_post(sq_cq *cq, sq_job *job);

/* ------------------------------------------------------------------ */
/* Include plans of SELECT operations (op_include.c)                    */
/* ------------------------------------------------------------------ */

typedef struct sq_incplan sq_incplan;
/* Runs one batch statement s into set (op.c: logs it, runs it on the
 * op's connection with the op's sink). */
typedef int (*sq_incplan_exec)(void *ud, int set, const sq_select_sql *s, sq_err *err);
/* A plan for main's batches (main's columns copied into a, the op's arena). */
int sq_incplan_new(sq_arena *a, const sq_select_sql *main, sq_incplan **out, sq_err *err);
/* Forgets a run (keys, batch sets): before a run or a retry. */
void sq_incplan_restart(sq_incplan *p);
void sq_incplan_free(sq_incplan *p);
/* A row of set: keeps its keys; for a batch set, *parent = its parent row. */
int sq_incplan_row(sq_incplan *p, int set, const sq_value *vals, int ncols, int64_t *parent, sq_err *err);
/* After the main statement: every batch, level by level. */
int sq_incplan_run(sq_incplan *p, int dialect, sq_incplan_exec exec, void *ud, sq_err *err);
int sq_incplan_nsets(const sq_incplan *p);
const sq_oper_setinfo *sq_incplan_set(const sq_incplan *p, int set);
#endif
