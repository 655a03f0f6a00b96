/*
 * internal.h - shared between the core's own files; never installed and
 * never included by the Lua binding (which sees only sqorm.h).
 */
#ifndef SQORM_INTERNAL_H
#define SQORM_INTERNAL_H

#include "sqorm.h"

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
  struct sq_conn *next;   /* idle list link (pool lock) */
};

/* Monotonic clock in seconds. */
double sq_now(void);

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
#endif
