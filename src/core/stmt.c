/*
 * stmt.c - placeholder rewriting: `?` and `:name` in user SQL become the
 * driver's native placeholders (`?` or `$n`).
 *
 * The text is read with the dialect's lexer (lex.c), so a `?` or `:x`
 * inside a literal, a quoted name, a comment or a dollar quote is text,
 * not a parameter. Values are never spliced in: only placeholders move.
 * The same pass counts the statements and classifies them (session
 * effect, read), so callers that cache the rewrite pay for that once.
 */
#include "sqorm.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 65535 /* the most any driver's protocol takes */

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

void sq_stmt_text_free(sq_stmt_text *t) {
  if (!t) return;
  free(t->sql);
  if (t->names)
    for (int i = 0; i < t->nparams; i++) free(t->names[i]);
  free(t->names);
  memset(t, 0, sizeof *t);
}

enum { ST_NONE = 0, ST_QMARK, ST_NAMED, ST_NATIVE };

/* A byte that continues a PostgreSQL word or number: "$1" written next to
 * one would merge with it ("a$1" is one identifier, "$12" another
 * parameter), so a space keeps them apart. */
static int pg_word_byte(unsigned char c) {
  return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

static const char *style_name(int st) {
  switch (st) {
  case ST_QMARK: return "?";
  case ST_NAMED: return ":name";
  default: return "$n";
  }
}

static int rewrite(int dialect, unsigned flags, const char *sql, size_t len, sq_stmt_text *out, sq_err *err) {
  memset(out, 0, sizeof *out);
  if (!sql) return sq_err_set(err, SQ_EUSAGE, "SQL is NULL");
  /* libpq and SQLite read SQL text only up to its first NUL: what follows
   * would be silently dropped ("DELETE ... WHERE a = 1\0 AND b = 2").
   * MySQL takes the length (a NUL inside a literal is data). */
  const char *nul = dialect == SQ_DIALECT_MYSQL ? NULL : memchr(sql, '\0', len);
  if (nul)
    return sq_err_set(err, SQ_EUSAGE, "SQL holds a NUL byte at offset %zu; pass binary data as a bound value",
                      (size_t)(nul - sql));
  int dollar = dialect == SQ_DIALECT_POSTGRES;
  buf b = {0};
  int ncap = 0, style = ST_NONE, native_max = 0;
  size_t copied = 0;
  char num[24];
  sq_lexer lx;
  sq_token t;
  sq_stmt_an an;
  sq_lex_init(&lx, dialect, flags, sql, len);
  sq_an_init(&an, dialect, sql);

  /* A text of one statement is handed on without the empty statements
   * before it and the ';' (and what follows) after it: MySQL refuses
   * "SELECT 1; ;" without multi-statements, and no server needs them. */
  size_t lead = 0, cut = (size_t)-1;
  do {
    sq_lex_next(&lx, &t);
    int ends = sq_an_feed(&an, &t);
    /* (Neither inside a MySQL executable comment, whose opener or closer
     * would go with the cut, nor after a '-' on MySQL: "1--;" is 1 - -
     * and an error, but "1--" at the end of the text 1 and a comment.) */
    if (t.type == SQ_TK_SEMI && !ends && an.ntok == 0 && an.nstatements == 0 && !lx.exec_comment)
      lead = t.pos + 1; /* an empty statement */
    if (ends && an.nstatements == 1 && t.type == SQ_TK_SEMI && !lx.exec_comment &&
        !(dialect == SQ_DIALECT_MYSQL && t.pos > 0 && sql[t.pos - 1] == '-'))
      cut = b.n + (t.pos - copied);
    int st = t.type == SQ_TK_QMARK ? ST_QMARK : t.type == SQ_TK_NAMED ? ST_NAMED : t.type == SQ_TK_NATIVE ? ST_NATIVE : 0;
    if (t.type == SQ_TK_QAMBIG) {
      sq_err_set(err, SQ_EUSAGE,
                 "SQL has '%.2s' at offset %zu: on PostgreSQL ? is a placeholder; write the jsonb operator as '?%.2s' "
                 "(or put a space after the ? placeholder)",
                 sql + t.pos, t.pos, sql + t.pos);
      goto fail;
    }
    if (t.type == SQ_TK_QESC) { /* ?? -> ? */
      if (buf_put(&b, sql + copied, t.pos + 1 - copied)) goto nomem;
      copied = t.pos + t.len;
      continue;
    }
    if (!st) continue;
    if (st == ST_NATIVE && dialect != SQ_DIALECT_POSTGRES) {
      sq_err_set(err, SQ_EUSAGE, "SQL uses the parameter '%.*s', which sqorm does not bind; use ? or :name",
                 (int)(t.len > 32 ? 32 : t.len), sql + t.pos);
      goto fail;
    }
    if (style && st != style) {
      sq_err_set(err, SQ_EUSAGE, "SQL mixes %s and %s placeholders; use one style%s", style_name(style), style_name(st),
                 dialect == SQ_DIALECT_POSTGRES && (style == ST_NATIVE || st == ST_NATIVE)
                     ? " (write ?? for the jsonb ? operator)"
                     : "");
      goto fail;
    }
    style = st;
    if (st == ST_NATIVE) {
      long v = 0;
      for (size_t k = 1; k < t.len && v <= MAX_PARAMS; k++) v = v * 10 + (sql[t.pos + k] - '0');
      if (v < 1 || v > MAX_PARAMS) {
        sq_err_set(err, SQ_EUSAGE, "SQL has the placeholder '%.*s': numbers run from $1 to $%d",
                   (int)(t.len > 24 ? 24 : t.len), sql + t.pos, MAX_PARAMS);
        goto fail;
      }
      if (v > native_max) native_max = (int)v;
      continue;
    }
    if (out->nparams >= MAX_PARAMS) {
      sq_err_set(err, SQ_EUSAGE, "SQL has more than %d placeholders", MAX_PARAMS);
      goto fail;
    }
    int named = st == ST_NAMED;
    out->named = named;
    if (buf_put(&b, sql + copied, t.pos - copied)) goto nomem;
    int n = out->nparams + 1;
    if (dollar) {
      num[0] = '$';
      size_t k = 1 + sq_fmt_i64(n, num + 1); /* no snprintf per placeholder */
      if (b.n && pg_word_byte((unsigned char)b.p[b.n - 1]) && buf_put(&b, " ", 1)) goto nomem;
      if (buf_put(&b, num, k)) goto nomem;
      if (t.pos + t.len < len && pg_word_byte((unsigned char)sql[t.pos + t.len]) && buf_put(&b, " ", 1)) goto nomem;
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
      out->names[n - 1] = malloc(t.len);
      if (!out->names[n - 1]) goto nomem;
      memcpy(out->names[n - 1], sql + t.pos + 1, t.len - 1);
      out->names[n - 1][t.len - 1] = '\0';
    }
    out->nparams = n;
    copied = t.pos + t.len;
  } while (t.type != SQ_TK_EOF);
  if (buf_put(&b, sql + copied, len - copied)) goto nomem;
  if (an.nstatements == 1 && (lead > 0 || cut != (size_t)-1)) {
    size_t end = cut != (size_t)-1 ? cut : b.n;
    memmove(b.p, b.p + lead, end - lead);
    b.n = end - lead;
    b.p[b.n] = '\0';
  }
  if (style == ST_NATIVE) out->nparams = native_max;
  out->sql = b.p;
  out->len = b.n;
  out->nstatements = an.nstatements;
  out->session = an.session;
  out->is_read = an.nstatements == 1 && an.all_read && !an.unterminated && !lx.exec_comment;
  return SQ_OK;
nomem:
  sq_err_set(err, SQ_ENOMEM, "out of memory");
fail:
  free(b.p);
  out->sql = NULL;
  sq_stmt_text_free(out);
  return err->kind;
}

int sq_stmt_rewrite_dialect(int dialect, const char *sql, size_t len, sq_stmt_text *out, sq_err *err) {
  if (dialect != SQ_DIALECT_SQLITE && dialect != SQ_DIALECT_MYSQL && dialect != SQ_DIALECT_POSTGRES) {
    memset(out, 0, sizeof *out);
    return sq_err_set(err, SQ_EUSAGE, "sq_stmt_rewrite_dialect: unknown dialect %d", dialect);
  }
  return rewrite(dialect, 0, sql, len, out, err);
}

int sq_stmt_rewrite(const char *sql, size_t len, int style, sq_stmt_text *out, sq_err *err) {
  int bs = (style & SQ_PH_BACKSLASH) != 0;
  if ((style & 0xff) == SQ_PH_DOLLAR) return rewrite(SQ_DIALECT_POSTGRES, bs ? SQ_LEX_BACKSLASH : 0, sql, len, out, err);
  return rewrite(bs ? SQ_DIALECT_MYSQL : SQ_DIALECT_SQLITE, 0, sql, len, out, err);
}
