/*
 * fuzz.h - what the libFuzzer targets in fuzz/ share: a reader that turns
 * the fuzzer's bytes into choices, the check macro, canary values, and the
 * checks every rendered statement must pass (read back with the dialect's
 * own lexer, so "what the SQL means" is judged by the same rules sqorm
 * uses everywhere else).
 *
 * A target is one file fuzz/fuzz_<name>.c defining LLVMFuzzerTestOneInput
 * (CMake builds every fuzz/fuzz_*.c; scripts/fuzz.sh runs every one), plus
 * a seed directory fuzz/corpus/<name>/.
 *
 * Header-only on purpose: each target is one translation unit linked with
 * the instrumented core (sqorm_core_fuzz).
 */
#ifndef SQORM_FUZZ_H
#define SQORM_FUZZ_H

#include "sqorm.h"
#include "internal.h"
#include "model_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Failing                                                              */
/* ------------------------------------------------------------------ */

/* An invariant broke: say which and abort, which libFuzzer reports as a
 * crash and saves the input that caused it. */
#define FZ_CHECK(cond, ...)                                                  \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "\nFUZZ INVARIANT FAILED at %s:%d: %s\n  ", __FILE__,  \
              __LINE__, #cond);                                              \
      fprintf(stderr, __VA_ARGS__);                                          \
      fprintf(stderr, "\n");                                                 \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* Prints a byte string readably (for failure messages). */
static inline void fz_dump(const char *label, const char *s, size_t n) {
  fprintf(stderr, "%s (%zu bytes): \"", label, n);
  for (size_t i = 0; i < n && i < 4000; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') fputc(c, stderr);
    else fprintf(stderr, "\\x%02x", c);
  }
  fprintf(stderr, "\"\n");
}

/* ------------------------------------------------------------------ */
/* Counting outcomes (SQORM_FUZZ_STATS=1 prints them at exit)           */
/* ------------------------------------------------------------------ */

/* How often each call succeeded: a fuzzer whose inputs are all refused
 * tests only the refusals. */
static long fz_stats[16][2];
static const char *fz_stat_names[16];

static void fz_stats_print(void) {
  for (int i = 0; i < 16; i++)
    if (fz_stat_names[i])
      fprintf(stderr, "stat %-24s ok %ld, refused %ld\n", fz_stat_names[i], fz_stats[i][0], fz_stats[i][1]);
}

static inline void fz_stat(int slot, const char *name, int rc) {
  static int registered = -1;
  if (registered < 0) {
    registered = getenv("SQORM_FUZZ_STATS") != NULL;
    if (registered) atexit(fz_stats_print);
  }
  fz_stat_names[slot] = name;
  fz_stats[slot][rc != 0]++;
}

/* ------------------------------------------------------------------ */
/* Reading choices from the input                                       */
/* ------------------------------------------------------------------ */

typedef struct fz {
  const uint8_t *p;
  size_t n, i;
  sq_arena *a; /* per-input allocations */
} fz;

static inline void fz_init(fz *f, const uint8_t *p, size_t n) {
  f->p = p;
  f->n = n;
  f->i = 0;
  f->a = sq_arena_new();
  if (!f->a) abort();
}

static inline void fz_done(fz *f) { sq_arena_free(f->a); }

static inline int fz_more(const fz *f) { return f->i < f->n; }

/* One byte (0 once the input is used up, so every tree ends). */
static inline unsigned fz_u8(fz *f) { return f->i < f->n ? f->p[f->i++] : 0; }

static inline unsigned fz_u16(fz *f) {
  unsigned a = fz_u8(f);
  return a | (fz_u8(f) << 8);
}

static inline uint64_t fz_u64(fz *f) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++) v |= (uint64_t)fz_u8(f) << (8 * k);
  return v;
}

/* An integer in [0, n) (n >= 1). */
static inline int fz_below(fz *f, int n) { return n <= 1 ? 0 : (int)(fz_u8(f) % (unsigned)n); }

static inline int fz_bool(fz *f) { return fz_u8(f) & 1; }

static inline void *fz_alloc(fz *f, size_t n) {
  void *p = sq_arena_alloc(f->a, n ? n : 1);
  if (!p) abort();
  memset(p, 0, n ? n : 1);
  return p;
}

/* A NUL-terminated copy of the next len-prefixed run of bytes (at most
 * max); *len gets its length. Bytes may be anything but NUL. */
static inline char *fz_str(fz *f, size_t max, size_t *len) {
  size_t want = fz_u8(f);
  if (want > max) want = want % (max + 1);
  if (want > f->n - f->i) want = f->n - f->i;
  char *s = fz_alloc(f, want + 1);
  size_t o = 0;
  for (size_t k = 0; k < want; k++) {
    char c = (char)f->p[f->i + k];
    if (c) s[o++] = c;
  }
  f->i += want;
  s[o] = '\0';
  if (len) *len = o;
  return s;
}

/* Like fz_str, but binary (NULs kept). */
static inline char *fz_bytes(fz *f, size_t max, size_t *len) {
  size_t want = fz_u8(f);
  if (want > max) want = want % (max + 1);
  if (want > f->n - f->i) want = f->n - f->i;
  char *s = fz_alloc(f, want + 1);
  memcpy(s, f->p + f->i, want);
  f->i += want;
  *len = want;
  return s;
}

static inline char *fz_strdup(fz *f, const char *s) {
  size_t n = strlen(s);
  char *d = fz_alloc(f, n + 1);
  memcpy(d, s, n);
  return d;
}

/* ------------------------------------------------------------------ */
/* Names                                                                */
/* ------------------------------------------------------------------ */

/* Names that have broken SQL builders before: quotes of every dialect,
 * comment openers, statement separators, placeholders, unicode, a
 * trailing space and a character outside the BMP (both refused by MySQL),
 * and names that are not identifiers at all (empty, too long, control
 * characters, invalid UTF-8). */
static const char *const fz_hostile_names[] = {
  "id", "name", "coins", "a\"b", "a`b", "a'b", "x\"\"y", "``", "\"", "a b", "select", "SELECT",
  "drop table t; --", "x;y", "--c", "/*c*/", "*/", "?", "??", ":name", "$1", "$tag$", "@v", "#h",
  "\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb8" "de", "trailing ", "\xf0\x9f\x98\x80", "a.b", "t0", "__sq_rn", "count",
  "[br]", "a\\b", "\\", "E'x'", "U&\"x\"", "0abc", "a$b",
  /* refused by sq_ident_check: */
  "", "tab\there", "nl\n", "\x7f", "\xc3\x28", "\xed\xa0\x80", "\xe2\x82",
  "0123456789012345678901234567890123456789012345678901234567890123",
};
#define FZ_NHOSTILE ((int)(sizeof fz_hostile_names / sizeof *fz_hostile_names))

/* A name: from the list, or raw bytes from the input. */
static inline char *fz_name(fz *f) {
  unsigned c = fz_u8(f);
  if (c < 0xc0) return fz_strdup(f, fz_hostile_names[c % (unsigned)FZ_NHOSTILE]);
  char *s = fz_str(f, 80, NULL);
  for (char *p = s; *p; p++)
    if (*p == '\x01') *p = '?'; /* never the canary: a name is not a value */
  return s;
}

/* 1 when name would be accepted as an identifier (for the dialect). */
static inline int fz_ident_ok(int dialect, const char *name) {
  sq_err e;
  size_t n = name ? strlen(name) : 0;
  if (sq_ident_check("name", name, n, &e)) return 0;
  if (dialect == SQ_DIALECT_MYSQL && !sq_ident_mysql_ok(name, n)) return 0;
  return 1;
}

/* ------------------------------------------------------------------ */
/* Values                                                               */
/* ------------------------------------------------------------------ */

/* Every text and blob value the targets bind starts with these bytes. No
 * name or SQL fragment the targets write can hold them (identifiers
 * refuse control characters; fragments are filtered), so finding them in
 * rendered SQL means a value was spliced into the text. */
#define FZ_CANARY "\x01\x02VAL"
#define FZ_CANARY_LEN 5

static inline sq_value fz_value(fz *f) {
  switch (fz_u8(f) % 8) {
  case 0: return sq_null();
  case 1: return sq_int((int64_t)fz_u64(f));
  case 2: return sq_int(fz_u8(f));
  case 3: {
    uint64_t bits = fz_u64(f);
    double d;
    memcpy(&d, &bits, sizeof d);
    return sq_float(d);
  }
  case 4: return sq_bool(fz_bool(f));
  case 5:
  case 6: {
    size_t n;
    char *tail = fz_bytes(f, 40, &n);
    char *s = fz_alloc(f, FZ_CANARY_LEN + n + 1);
    memcpy(s, FZ_CANARY, FZ_CANARY_LEN);
    memcpy(s + FZ_CANARY_LEN, tail, n);
    return sq_text(s, FZ_CANARY_LEN + n);
  }
  default: {
    size_t n;
    char *tail = fz_bytes(f, 40, &n);
    char *s = fz_alloc(f, FZ_CANARY_LEN + n + 1);
    memcpy(s, FZ_CANARY, FZ_CANARY_LEN);
    memcpy(s + FZ_CANARY_LEN, tail, n);
    return sq_blob(s, FZ_CANARY_LEN + n);
  }
  }
}

static inline int fz_dialect(fz *f) { return 1 + fz_below(f, 3); }

static const int fz_dialects[3] = {SQ_DIALECT_SQLITE, SQ_DIALECT_MYSQL, SQ_DIALECT_POSTGRES};

/* ------------------------------------------------------------------ */
/* Reading rendered SQL back                                            */
/* ------------------------------------------------------------------ */

static inline int fz_ieq(const char *s, size_t n, const char *kw) {
  size_t k = strlen(kw);
  if (k != n) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char a = (unsigned char)s[i], b = (unsigned char)kw[i];
    if (a >= 'a' && a <= 'z') a = (unsigned char)(a - 32);
    if (b >= 'a' && b <= 'z') b = (unsigned char)(b - 32);
    if (a != b) return 0;
  }
  return 1;
}

/* The bare words sqorm's renderers write (keywords, types, its own SQLite
 * functions); any other bare word in rendered SQL is a name that escaped
 * quoting. */
static const char *const fz_keywords[] = {
  "SELECT", "DISTINCT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "BETWEEN", "LIKE", "AS",
  "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC", "LIMIT", "OFFSET", "FOR", "UPDATE", "SHARE", "LOCK", "MODE",
  "OF", "INSERT", "INTO", "VALUES", "DEFAULT", "ON", "CONFLICT", "DO", "NOTHING", "SET", "EXCLUDED", "DUPLICATE",
  "KEY", "RETURNING", "DELETE", "COUNT", "SUM", "MIN", "MAX", "AVG", "CAST", "DECIMAL", "COLLATE", "EXISTS",
  "JOIN", "LEFT", "INNER", "ROW_NUMBER", "OVER", "PARTITION", "sqorm_decimal", "sqorm_dsum", "sqorm_davg",
  "sqorm_dadd", "sqorm_dnorm",
  /* DDL */
  "CREATE", "TABLE", "IF", "PRIMARY", "UNIQUE", "CONSTRAINT", "INDEX", "FOREIGN", "REFERENCES", "CASCADE",
  "RESTRICT", "NO", "ACTION", "COMMENT", "ENGINE", "InnoDB", "CHARSET", "utf8mb4", "GENERATED", "IDENTITY",
  "AUTO_INCREMENT", "AUTOINCREMENT", "DROP", "ALTER", "ADD", "COLUMN", "TRUE", "FALSE", "X", "decode", "INT",
  "INTEGER", "BIGINT", "SMALLINT", "REAL", "FLOAT", "DOUBLE", "PRECISION", "TEXT", "VARCHAR", "CHAR", "BOOLEAN",
  "TINYINT", "DATE", "DATETIME", "TIMESTAMP", "BLOB", "LONGBLOB", "BYTEA", "UUID",
  /* T.JSON and T.ENUM (issue 12) */
  "JSON", "JSONB", "json_valid", "ENUM", "TYPE", "VALUE", "CHECK", NULL};

static inline int fz_is_keyword(const char *s, size_t n) {
  for (int i = 0; fz_keywords[i]; i++)
    if (fz_ieq(s, n, fz_keywords[i])) return 1;
  return 0;
}

/* Extra words a caller allows (function names it used). */
typedef struct fz_words {
  const char *w[160];
  int n;
} fz_words;

static inline void fz_words_add(fz_words *ws, const char *w) {
  if (ws && w && ws->n < 160) ws->w[ws->n++] = w;
}

static inline int fz_words_has(const fz_words *ws, const char *s, size_t n) {
  for (int i = 0; ws && i < ws->n; i++)
    if (strlen(ws->w[i]) == n && !memcmp(ws->w[i], s, n)) return 1;
  return 0;
}

/* What a statement must look like when read back with its dialect's lexer. */
enum {
  FZ_RAW = 1,   /* it holds caller-written fragments (sqorm.raw): words and comments may be anything */
  FZ_DDL = 2,   /* DDL: string literals (defaults, comments) are expected, placeholders are not */
};

typedef struct fz_sqlinfo {
  int nph;       /* placeholders the driver will bind */
  int nstrings;  /* string literals */
} fz_sqlinfo;

/*
 * Checks rendered SQL: one statement, nothing unterminated, every
 * placeholder one the renderer bound (and on PostgreSQL numbered $1..$n
 * in order), no parameter syntax the driver would bind behind sqorm's back
 * (SQLite's :name, @x, $x, ?NNN), every quoted name a valid identifier in
 * the dialect's quotes, every bare word a keyword sqorm writes (or one of
 * `extra`), and no canary value in the text.
 */
static inline void fz_check_sql(int dialect, const char *sql, size_t len, int nparams, unsigned flags,
                                const fz_words *extra, fz_sqlinfo *info) {
  FZ_CHECK(sql != NULL, "rendered SQL is NULL");
  FZ_CHECK(sql[len] == '\0', "rendered SQL is not NUL-terminated");
  /* MySQL takes a NUL inside a raw fragment's literal (it gets the
   * length); libpq and SQLite would stop reading there */
  if (!(dialect == SQ_DIALECT_MYSQL && (flags & FZ_RAW)))
    FZ_CHECK(strlen(sql) == len, "rendered SQL holds a NUL byte or a wrong length (%zu vs %zu)", strlen(sql), len);
  for (size_t i = 0; !(flags & FZ_DDL) && i + FZ_CANARY_LEN <= len; i++)
    if (!memcmp(sql + i, FZ_CANARY, FZ_CANARY_LEN)) {
      fz_dump("sql", sql, len);
      FZ_CHECK(0, "a bound value's bytes appear in the SQL text at offset %zu", i);
    }
  sq_lexer lx;
  sq_token t;
  sq_lex_init(&lx, dialect, 0, sql, len);
  int nph = 0, nstr = 0;
  char qc = dialect == SQ_DIALECT_MYSQL ? '`' : '"';
  while (sq_lex_next(&lx, &t) != SQ_TK_EOF) {
    const char *s = sql + t.pos;
    if (t.unterminated) {
      fz_dump("sql", sql, len);
      FZ_CHECK(0, "token at offset %zu runs to the end of the statement (unterminated)", t.pos);
    }
    switch (t.type) {
    case SQ_TK_SEMI:
      fz_dump("sql", sql, len);
      FZ_CHECK(0, "';' at offset %zu: a rendered statement is one statement", t.pos);
      break;
    case SQ_TK_COMMENT:
      if (!(flags & FZ_RAW)) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "a comment at offset %zu in SQL without raw fragments", t.pos);
      }
      break;
    case SQ_TK_QMARK:
      if (dialect != SQ_DIALECT_POSTGRES) nph++; /* on PostgreSQL a ? is the literal jsonb operator */
      break;
    case SQ_TK_NATIVE: {
      if (dialect != SQ_DIALECT_POSTGRES) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "parameter '%.*s' at offset %zu is one the driver would bind, not sqorm's", (int)t.len, s, t.pos);
      }
      long v = 0;
      for (size_t k = 1; k < t.len && v < 1000000; k++) v = v * 10 + (s[k] - '0');
      nph++;
      if (v != nph) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "placeholder '%.*s' at offset %zu should be $%d", (int)t.len, s, t.pos, nph);
      }
      break;
    }
    case SQ_TK_NAMED:
      if (dialect == SQ_DIALECT_SQLITE) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "'%.*s' at offset %zu is a parameter SQLite binds (sqorm numbers its own)", (int)t.len, s,
                 t.pos);
      }
      if (!(flags & FZ_RAW)) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "'%.*s' at offset %zu: a named parameter in rendered SQL", (int)t.len, s, t.pos);
      }
      break;
    case SQ_TK_QESC:
    case SQ_TK_QAMBIG:
      if (!(flags & FZ_RAW)) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "'%.*s' at offset %zu in SQL without raw fragments", (int)t.len, s, t.pos);
      }
      break;
    case SQ_TK_STRING:
      nstr++;
      if (!(flags & (FZ_RAW | FZ_DDL))) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "a string literal at offset %zu: values must be bound", t.pos);
      }
      break;
    case SQ_TK_QIDENT: {
      if (s[0] != qc) {
        if (flags & FZ_RAW) break;
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "quoted name at offset %zu uses the wrong quote for %s", t.pos, sq_dialect_name(dialect));
      }
      /* Unquote (a doubled quote is one) and check it is a name. */
      char name[256];
      size_t o = 0;
      int ok = t.len >= 2 && s[t.len - 1] == qc;
      for (size_t k = 1; ok && k + 1 < t.len; k++) {
        if (s[k] == qc) {
          if (k + 2 < t.len && s[k + 1] == qc) k++;
          else ok = 0;
        }
        if (o + 1 < sizeof name) name[o++] = s[k];
      }
      name[o] = '\0';
      if (!ok || !fz_ident_ok(dialect, name)) {
        if (flags & FZ_RAW) break;
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "quoted name '%.*s' at offset %zu is not a valid identifier", (int)t.len, s, t.pos);
      }
      break;
    }
    case SQ_TK_WORD:
      if (!(flags & FZ_RAW) && !fz_is_keyword(s, t.len) && !fz_words_has(extra, s, t.len)) {
        fz_dump("sql", sql, len);
        FZ_CHECK(0, "bare word '%.*s' at offset %zu: a name that escaped quoting?", (int)t.len, s, t.pos);
      }
      break;
    default:
      break;
    }
  }
  if (lx.exec_comment) {
    fz_dump("sql", sql, len);
    FZ_CHECK(0, "SQL ends inside a MySQL executable comment");
  }
  if (!(flags & FZ_DDL) && nph != nparams) {
    fz_dump("sql", sql, len);
    FZ_CHECK(0, "%d placeholders in the SQL but %d bound values", nph, nparams);
  }
  if ((flags & FZ_DDL) && nph) {
    fz_dump("sql", sql, len);
    FZ_CHECK(0, "DDL holds %d placeholders", nph);
  }
  FZ_CHECK(sq_sql_count(dialect, sql, len) == 1, "the statement splitter sees %d statements",
           sq_sql_count(dialect, sql, len));
  if (info) {
    info->nph = nph;
    info->nstrings = nstr;
  }
}

/* An error return must be a kind with a message. */
static inline void fz_check_err(int rc, const sq_err *e, int allowed_enomem) {
  if (rc == SQ_OK) return;
  FZ_CHECK(rc == SQ_EUSAGE || (allowed_enomem && rc == SQ_ENOMEM), "unexpected error kind %d (%s): %s", rc,
           sq_kind_name(rc), e->msg);
  FZ_CHECK(e->kind == rc, "err.kind %d differs from the returned %d", e->kind, rc);
  FZ_CHECK(e->msg[0] != '\0', "an error without a message");
  FZ_CHECK(memchr(e->msg, '\0', sizeof e->msg) != NULL, "an error message without its NUL");
}

/* ... and must not show a bound value (the renderers' errors). */
static inline void fz_check_err_values(int rc, const sq_err *e) {
  fz_check_err(rc, e, 0);
  if (rc == SQ_OK) return;
  for (size_t i = 0; i + FZ_CANARY_LEN <= strlen(e->msg); i++)
    FZ_CHECK(memcmp(e->msg + i, FZ_CANARY, FZ_CANARY_LEN), "an error message shows a bound value: %s", e->msg);
}

#endif
