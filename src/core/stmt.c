/*
 * stmt.c - placeholder rewriting: `?` and `:name` in user SQL become the
 * driver's native placeholders (`?` or `$n`).
 *
 * The scanner skips string literals, quoted identifiers, comments and
 * PostgreSQL dollar-quoted strings, so a `?` or `:x` inside them is text,
 * not a parameter. Values are never spliced in: only placeholders move.
 */
#include "sqorm.h"
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static int buf_put(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

static int is_ident_start(int c) { return isalpha(c) || c == '_'; }
static int is_ident_char(int c) { return isalnum(c) || c == '_'; }

void sq_stmt_text_free(sq_stmt_text *t) {
  if (!t) return;
  free(t->sql);
  if (t->names)
    for (int i = 0; i < t->nparams; i++) free(t->names[i]);
  free(t->names);
  memset(t, 0, sizeof *t);
}

/* Returns the index just past a quoted run that starts at i (s[i] is the
 * opening quote q), honouring doubled quotes and, if bs, backslashes. An
 * unterminated run ends at len (the server will report it). */
static size_t skip_quoted(const char *s, size_t len, size_t i, char q, int bs) {
  for (i++; i < len; i++) {
    if (bs && s[i] == '\\') {
      i++;
      continue;
    }
    if (s[i] == q) {
      if (i + 1 < len && s[i + 1] == q) {
        i++;
        continue;
      }
      return i + 1;
    }
  }
  return len;
}

/* A dollar quote $tag$...$tag$ starting at i; returns the index after it,
 * or i when s[i..] is not a dollar-quote opener. */
static size_t skip_dollar(const char *s, size_t len, size_t i) {
  size_t j = i + 1;
  while (j < len && is_ident_char((unsigned char)s[j]) && !isdigit((unsigned char)s[i + 1])) j++;
  if (j >= len || s[j] != '$') return i;
  size_t taglen = j - i + 1;
  for (size_t k = j + 1; k + taglen <= len; k++)
    if (s[k] == '$' && memcmp(s + k, s + i, taglen) == 0) return k + taglen;
  return len;
}

int sq_stmt_rewrite(const char *sql, size_t len, int style, sq_stmt_text *out, sq_err *err) {
  memset(out, 0, sizeof *out);
  int bs = (style & SQ_PH_BACKSLASH) != 0;
  int dollar = (style & 0xff) == SQ_PH_DOLLAR;
  buf b = {0};
  int ncap = 0, positional = 0;
  size_t i = 0, copied = 0;
  char num[24];

  while (i < len) {
    unsigned char c = (unsigned char)sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      i = skip_quoted(sql, len, i, (char)c, bs && c != '`');
    } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
      while (i < len && sql[i] != '\n') i++;
    } else if (c == '#' && bs) { /* MySQL comment */
      while (i < len && sql[i] != '\n') i++;
    } else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
      const char *e = NULL;
      for (size_t k = i + 2; k + 1 < len; k++)
        if (sql[k] == '*' && sql[k + 1] == '/') { e = sql + k + 2; break; }
      i = e ? (size_t)(e - sql) : len;
    } else if (c == '$' && dollar && i + 1 < len && (sql[i + 1] == '$' || is_ident_start((unsigned char)sql[i + 1]))) {
      size_t j = skip_dollar(sql, len, i);
      i = j == i ? i + 1 : j;
    } else if (c == '?' || (c == ':' && i + 1 < len && is_ident_start((unsigned char)sql[i + 1]) &&
                            (i == 0 || sql[i - 1] != ':'))) {
      int named = c == ':';
      if (out->nparams > 0 && named != out->named) {
        sq_err_set(err, SQ_EUSAGE, "SQL mixes ? and :name placeholders; use one style");
        goto fail;
      }
      out->named = named;
      positional += !named;
      size_t j = i + 1;
      if (named)
        while (j < len && is_ident_char((unsigned char)sql[j])) j++;
      if (buf_put(&b, sql + copied, i - copied)) goto nomem;
      int n = out->nparams + 1;
      if (dollar) {
        num[0] = '$';
        size_t k = 1 + sq_fmt_i64(n, num + 1); /* no snprintf per placeholder */
        if (buf_put(&b, num, k)) goto nomem;
      } else if (buf_put(&b, "?", 1)) {
        goto nomem;
      }
      if (named) {
        if (n > ncap) {
          int nc = ncap ? ncap * 2 : 8;
          char **nn = realloc(out->names, sizeof *nn * (size_t)nc);
          if (!nn) goto nomem;
          out->names = nn;
          ncap = nc;
        }
        out->names[n - 1] = malloc(j - i);
        if (!out->names[n - 1]) goto nomem;
        memcpy(out->names[n - 1], sql + i + 1, j - i - 1);
        out->names[n - 1][j - i - 1] = '\0';
      }
      out->nparams = n;
      i = j;
      copied = j;
    } else {
      i++;
    }
  }
  if (buf_put(&b, sql + copied, len - copied)) goto nomem;
  out->sql = b.p;
  out->len = b.n;
  return SQ_OK;
nomem:
  sq_err_set(err, SQ_ENOMEM, "out of memory");
fail:
  free(b.p);
  out->sql = NULL;
  sq_stmt_text_free(out);
  return err->kind;
}

static int ci_word(const char *s, size_t n, const char *kw) {
  size_t k = strlen(kw);
  if (n != k) return 0;
  for (size_t i = 0; i < n; i++)
    if (toupper((unsigned char)s[i]) != kw[i]) return 0;
  return 1;
}

static int is_word_char(char c) {
  return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* Skips whitespace and comments from i; returns the new index, or
 * (size_t)-1 on an unterminated block comment. */
static size_t skip_blank(const char *s, size_t len, size_t i) {
  while (i < len) {
    char c = s[i];
    if (isspace((unsigned char)c)) {
      i++;
    } else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
      while (i < len && s[i] != '\n') i++;
    } else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
      size_t k = i + 2;
      while (k + 1 < len && !(s[k] == '*' && s[k + 1] == '/')) k++;
      if (k + 1 >= len) return (size_t)-1;
      i = k + 2;
    } else {
      break;
    }
  }
  return i;
}

/*
 * 1 when re-running sql can't change data: the first keyword (after
 * blanks, comments and opening parentheses) is SELECT, WITH, SHOW, VALUES,
 * EXPLAIN or TABLE, and nowhere in the statement - outside quotes - is a
 * word that writes (INSERT UPDATE DELETE MERGE REPLACE UPSERT INTO CALL
 * ANALYZE/ANALYSE, so no data-modifying CTE, SELECT INTO or EXPLAIN
 * ANALYZE), nor a second statement after a ';'. Anything this scanner
 * isn't sure about (backslashes in quotes, dollar quotes, '#') counts as
 * a write: a missed retry costs one error, a wrong one could write twice.
 * PostgreSQL placeholders ($1, $2 ...) are fine. A SELECT calling a
 * function with side effects can't be told apart; callers only re-run a
 * statement whose first attempt failed on a connection that was already
 * dead.
 */
int sq_sql_is_read(const char *s, size_t len) {
  static const char *const reads[] = {"SELECT", "WITH", "SHOW", "VALUES", "EXPLAIN", "TABLE"};
  static const char *const writes[] = {"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT",
                                       "INTO", "CALL", "ANALYZE", "ANALYSE"};
  size_t i = 0;
  for (;;) {
    i = skip_blank(s, len, i);
    if (i == (size_t)-1) return 0;
    if (i < len && s[i] == '(') {
      i++;
      continue;
    }
    break;
  }
  size_t w = i;
  while (i < len && is_word_char(s[i])) i++;
  int read = 0;
  for (size_t k = 0; k < sizeof reads / sizeof reads[0] && !read; k++) read = ci_word(s + w, i - w, reads[k]);
  if (!read) return 0;
  while (i < len) {
    char c = s[i];
    if (c == '\'' || c == '"' || c == '`') {
      size_t k = i + 1;
      for (;;) {
        if (k >= len || s[k] == '\\') return 0;
        if (s[k] == c) {
          if (k + 1 < len && s[k + 1] == c) {
            k += 2;
            continue;
          }
          break;
        }
        k++;
      }
      i = k + 1;
    } else if ((c == '-' && i + 1 < len && s[i + 1] == '-') || (c == '/' && i + 1 < len && s[i + 1] == '*')) {
      i = skip_blank(s, len, i);
      if (i == (size_t)-1) return 0;
    } else if (c == '$' && i + 1 < len && isdigit((unsigned char)s[i + 1])) {
      i++;
      while (i < len && isdigit((unsigned char)s[i])) i++;
    } else if (c == '$' || c == '#') {
      return 0;
    } else if (c == ';') {
      i = skip_blank(s, len, i + 1);
      while (i != (size_t)-1 && i < len && s[i] == ';') i = skip_blank(s, len, i + 1);
      if (i == (size_t)-1 || i < len) return 0;
    } else if (is_word_char(c)) {
      size_t b = i;
      while (i < len && is_word_char(s[i])) i++;
      for (size_t k = 0; k < sizeof writes / sizeof writes[0]; k++)
        if (ci_word(s + b, i - b, writes[k])) return 0;
    } else {
      i++;
    }
  }
  return 1;
}
