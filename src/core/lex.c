/*
 * lex.c - one SQL lexer per dialect, and what is built on it: statement
 * boundaries, the session classifier, the read check.
 *
 * Everything in sqorm that looks inside SQL text goes through sq_lex_next:
 * the placeholder rewriter (stmt.c), the renderer's raw fragments
 * (render.c), the one-statement check of raw SQL, and the drivers' small
 * scanners. So a `?` or `;` means the same to all of them.
 *
 * The lexers follow the servers' own rules where they matter here:
 *   sqlite    '...' (doubled quotes), "..." `...` [...] names, -- and
 *             non-nested block comments; ?NNN @x $x #x are SQLite's own
 *             parameters (refused by the rewriter).
 *   mysql     '...' and "..." with backslash escapes (unless
 *             NO_BACKSLASH_ESCAPES), `...` names, # comments, -- only
 *             when followed by a space or control character (so 1--?
 *             is 1 - -?), executable comments whose content is SQL.
 *   postgres  '...' standard strings, E'...' with backslash escapes,
 *             U&'...', "..." names, $tag$...$tag$ strings, nested block
 *             comments, $n parameters, `::` casts; `??` is an escaped
 *             `?` (for the jsonb ? ?| ?& operators), and a bare `?|` or
 *             `?&` is flagged so the rewriter can refuse it.
 * On every dialect `:name` is a named bind unless it follows a word with
 * no space between (`x:y`, a label) or, on postgres, sits in an array
 * subscript after an operand (`a[lo:hi]`); `::` and `:=` are operators.
 */
#include "internal.h"

#include <string.h>

static int is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_'; }
/* identifiers: ASCII letters, '_', any byte of a UTF-8 sequence */
static int id_start(unsigned char c) { return is_alpha(c) || c >= 0x80; }
static int id_char(unsigned char c) { return id_start(c) || is_digit(c) || c == '$'; }

void sq_lex_init(sq_lexer *lx, int dialect, unsigned flags, const char *sql, size_t len) {
  memset(lx, 0, sizeof *lx);
  lx->s = sql;
  lx->len = len;
  lx->dialect = dialect;
  lx->flags = flags;
  lx->prev_type = SQ_TK_EOF;
  lx->sig_type = SQ_TK_EOF;
}

/* Index just past a quoted run opened at s[i] by q: doubled quotes stay
 * inside, and with bs a backslash escapes the next byte. */
static size_t quoted(const char *s, size_t n, size_t i, char q, int bs, int *unterminated) {
  for (i++; i < n; i++) {
    if (bs && s[i] == '\\') {
      if (++i >= n) break;
      continue;
    }
    if (s[i] == q) {
      if (i + 1 < n && s[i + 1] == q) {
        i++;
        continue;
      }
      return i + 1;
    }
  }
  *unterminated = 1;
  return n;
}

/* A token that can end an operand: after one, `:x` inside a postgres
 * array subscript is the slice separator. */
static int is_operand(int type, char ch) {
  switch (type) {
  case SQ_TK_WORD: case SQ_TK_QIDENT: case SQ_TK_STRING: case SQ_TK_NUMBER:
  case SQ_TK_QMARK: case SQ_TK_NAMED: case SQ_TK_NATIVE: return 1;
  case SQ_TK_OP: return ch == ')' || ch == ']';
  default: return 0;
  }
}

static int named_ok(const sq_lexer *lx, size_t i) {
  if (lx->prev_end == i && i > 0 &&
      (lx->prev_type == SQ_TK_WORD || lx->prev_type == SQ_TK_NUMBER || lx->prev_type == SQ_TK_QIDENT))
    return 0;
  if (lx->dialect == SQ_DIALECT_POSTGRES && lx->bracket > 0 && is_operand(lx->sig_type, lx->sig_char)) return 0;
  return 1;
}

int sq_lex_next(sq_lexer *lx, sq_token *t) {
  const char *s = lx->s;
  size_t n = lx->len, i = lx->pos;
  int d = lx->dialect, type = SQ_TK_OP;
  t->pos = i;
  t->unterminated = 0;
  if (i >= n) {
    t->type = SQ_TK_EOF;
    t->len = 0;
    return SQ_TK_EOF;
  }
  unsigned char c = (unsigned char)s[i];
  unsigned char c1 = i + 1 < n ? (unsigned char)s[i + 1] : 0;
  unsigned char c2 = i + 2 < n ? (unsigned char)s[i + 2] : 0;
  if (is_space(c)) {
    while (i < n && is_space((unsigned char)s[i])) i++;
    type = SQ_TK_SPACE;
  } else if ((c == '-' && c1 == '-' && (d != SQ_DIALECT_MYSQL || i + 2 >= n || c2 <= ' ')) ||
             (c == '#' && d == SQ_DIALECT_MYSQL)) {
    while (i < n && s[i] != '\n') i++;
    type = SQ_TK_COMMENT;
  } else if (c == '/' && c1 == '*') {
    type = SQ_TK_COMMENT;
    if (d == SQ_DIALECT_MYSQL && !lx->exec_comment && (c2 == '!' || (c2 == 'M' && i + 3 < n && s[i + 3] == '!'))) {
      /* executable comment: its opener (and version) is a comment, its
       * content is SQL, and the matching close is a comment again */
      i += c2 == '!' ? 3 : 4;
      while (i < n && is_digit((unsigned char)s[i])) i++;
      lx->exec_comment = 1;
    } else {
      int depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
          depth--;
          i += 2;
        } else if (d == SQ_DIALECT_POSTGRES && s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
          depth++;
          i += 2;
        } else {
          i++;
        }
      }
      if (depth > 0) t->unterminated = 1;
    }
  } else if (c == '*' && c1 == '/' && lx->exec_comment) {
    i += 2;
    lx->exec_comment = 0;
    type = SQ_TK_COMMENT;
  } else if (c == '\'') {
    int bs = d == SQ_DIALECT_MYSQL ? !(lx->flags & SQ_LEX_NO_BACKSLASH)
                                   : d == SQ_DIALECT_POSTGRES && (lx->flags & SQ_LEX_BACKSLASH);
    i = quoted(s, n, i, '\'', bs, &t->unterminated);
    type = SQ_TK_STRING;
  } else if (c == '"') {
    int my = d == SQ_DIALECT_MYSQL;
    i = quoted(s, n, i, '"', my && !(lx->flags & SQ_LEX_NO_BACKSLASH), &t->unterminated);
    type = my ? SQ_TK_STRING : SQ_TK_QIDENT;
  } else if (c == '`') {
    i = quoted(s, n, i, '`', 0, &t->unterminated);
    type = SQ_TK_QIDENT;
  } else if (c == '[' && d == SQ_DIALECT_SQLITE) {
    const char *e = memchr(s + i + 1, ']', n - i - 1);
    if (e) i = (size_t)(e - s) + 1;
    else {
      i = n;
      t->unterminated = 1;
    }
    type = SQ_TK_QIDENT;
  } else if (c == '$' && d == SQ_DIALECT_POSTGRES && is_digit(c1)) {
    for (i++; i < n && is_digit((unsigned char)s[i]);) i++;
    type = SQ_TK_NATIVE;
  } else if (c == '$' && d == SQ_DIALECT_POSTGRES && (c1 == '$' || id_start(c1))) {
    size_t j = i + 1;
    while (j < n && id_char((unsigned char)s[j]) && s[j] != '$') j++;
    if (j < n && s[j] == '$') { /* $tag$ ... $tag$ */
      size_t taglen = j - i + 1;
      const char *tag = s + i;
      i = j + 1;
      for (;;) {
        const char *e = i < n ? memchr(s + i, '$', n - i) : NULL;
        if (!e || (size_t)(e - s) + taglen > n) {
          i = n;
          t->unterminated = 1;
          break;
        }
        i = (size_t)(e - s);
        if (!memcmp(s + i, tag, taglen)) {
          i += taglen;
          break;
        }
        i++;
      }
      type = SQ_TK_STRING;
    } else {
      i++;
    }
  } else if ((c == '$' || c == '@' || c == '#') && d == SQ_DIALECT_SQLITE && id_char(c1) && c1 != '$') {
    for (i++; i < n && id_char((unsigned char)s[i]);) i++;
    type = SQ_TK_NATIVE;
  } else if (c == '?') {
    i++;
    type = SQ_TK_QMARK;
    if (d == SQ_DIALECT_SQLITE && is_digit(c1)) {
      while (i < n && is_digit((unsigned char)s[i])) i++;
      type = SQ_TK_NATIVE;
    } else if (d == SQ_DIALECT_POSTGRES) {
      if (c1 == '?') {
        i++;
        type = SQ_TK_QESC;
      } else if ((c1 == '|' && c2 != '|') || (c1 == '&' && c2 != '&')) {
        i++;
        type = SQ_TK_QAMBIG;
      }
    }
  } else if (c == ':') {
    if (c1 == ':' || c1 == '=') {
      i += 2;
    } else if (is_alpha(c1) && named_ok(lx, i)) {
      for (i++; i < n && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]));) i++;
      type = SQ_TK_NAMED;
    } else {
      i++;
    }
  } else if (c == ';') {
    i++;
    type = SQ_TK_SEMI;
  } else if (is_digit(c) || (c == '.' && is_digit(c1))) {
    for (i++; i < n; i++) {
      unsigned char ch = (unsigned char)s[i];
      if ((ch == 'e' || ch == 'E') && i + 2 < n && (s[i + 1] == '+' || s[i + 1] == '-') &&
          is_digit((unsigned char)s[i + 2]))
        i++;
      else if (!(id_char(ch) || ch == '.') || (ch == '$' && d == SQ_DIALECT_POSTGRES))
        break;
    }
    type = SQ_TK_NUMBER;
  } else if (id_start(c) || (c == '$' && d == SQ_DIALECT_MYSQL)) {
    for (i++; i < n && id_char((unsigned char)s[i]);) i++;
    type = SQ_TK_WORD;
    if (d == SQ_DIALECT_POSTGRES && i == t->pos + 1 && i < n) {
      if ((c == 'E' || c == 'e') && s[i] == '\'') { /* E'...': backslash escapes */
        i = quoted(s, n, i, '\'', 1, &t->unterminated);
        type = SQ_TK_STRING;
      } else if ((c == 'U' || c == 'u') && s[i] == '&' && i + 1 < n && (s[i + 1] == '\'' || s[i + 1] == '"')) {
        char q = s[i + 1];
        i = quoted(s, n, i + 1, q, 0, &t->unterminated);
        type = q == '"' ? SQ_TK_QIDENT : SQ_TK_STRING;
      }
    }
  } else {
    i++;
    if (c == '[' && d != SQ_DIALECT_SQLITE) lx->bracket++;
    else if (c == ']' && lx->bracket > 0) lx->bracket--;
  }
  t->type = type;
  t->len = i - t->pos;
  lx->pos = i;
  lx->prev_type = type;
  lx->prev_end = i;
  if (type != SQ_TK_SPACE && type != SQ_TK_COMMENT) {
    lx->sig_type = type;
    lx->sig_char = t->len == 1 ? (char)c : 0;
  }
  return type;
}

/* ------------------------------------------------------------------ */
/* Statements                                                           */
/* ------------------------------------------------------------------ */

int sq_tok_is(const char *sql, const sq_token *t, const char *kw) {
  if (t->type != SQ_TK_WORD) return 0;
  size_t k = strlen(kw);
  if (t->len != k) return 0;
  for (size_t i = 0; i < k; i++) {
    unsigned char c = (unsigned char)sql[t->pos + i];
    if (c >= 'a' && c <= 'z') c = (unsigned char)(c - 32);
    if (c != (unsigned char)kw[i]) return 0;
  }
  return 1;
}

/* The word t starts with prefix (case-insensitive). */
static int tok_prefix(const char *sql, const sq_token *t, const char *prefix) {
  size_t k = strlen(prefix);
  if (t->type != SQ_TK_WORD || t->len < k) return 0;
  for (size_t i = 0; i < k; i++) {
    unsigned char c = (unsigned char)sql[t->pos + i];
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
    if (c != (unsigned char)prefix[i]) return 0;
  }
  return 1;
}

static int tok_in(const char *sql, const sq_token *t, const char *const *list) {
  for (; *list; list++)
    if (sq_tok_is(sql, t, *list)) return 1;
  return 0;
}

static int tok_contains(const char *sql, const sq_token *t, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; t->type == SQ_TK_WORD && i + k <= t->len; i++) {
    size_t j = 0;
    while (j < k && (sql[t->pos + i + j] | 0x20) == needle[j]) j++;
    if (j == k) return 1;
  }
  return 0;
}

static int tok_op(const char *sql, const sq_token *t, char ch) {
  return t->type == SQ_TK_OP && t->len == 1 && sql[t->pos] == ch;
}

static void an_reset_stmt(sq_stmt_an *a) {
  a->ntok = 0;
  a->nfirst = 0;
  a->paren = 0;
  a->routine = 0;
  a->depth = 0;
  a->after_end = 0;
  a->prev_dot = 0;
  a->prev_into = 0;
  a->lead = 1;
  a->has_word = 0;
  a->st_session = 0;
  a->st_write = 0;
  a->st_unterminated = 0;
  a->pragma_arg = 0;
  a->seen_paren = 0;
}

void sq_an_init(sq_stmt_an *a, int dialect, const char *sql) {
  memset(a, 0, sizeof *a);
  a->dialect = dialect;
  a->sql = sql;
  a->all_read = 1;
  an_reset_stmt(a);
}


/* The first significant token of the current statement that is word k
 * (0-based), or NULL. */
static const sq_token *first(const sq_stmt_an *a, int k) {
  return k < a->nfirst ? &a->first[k] : NULL;
}

static int first_is(const sq_stmt_an *a, int k, const char *kw) {
  const sq_token *t = first(a, k);
  return t && sq_tok_is(a->sql, t, kw);
}

/* Session rules that depend on how the statement starts. */
static int starts_session(const sq_stmt_an *a) {
  static const char *const always[] = {"BEGIN", "START", "LOCK", "UNLOCK", "CALL", "DO", NULL};
  static const char *const my[] = {"SET", "USE", "FLUSH", "HANDLER", "XA", "PREPARE", "DEALLOCATE", NULL};
  static const char *const pg[] = {"RESET", "DISCARD", "LISTEN", "UNLISTEN", "LOAD", "PREPARE",
                                   "DEALLOCATE", "DECLARE", NULL};
  static const char *const lite[] = {"ATTACH", "DETACH", NULL};
  static const char *const pg_local_set[] = {"LOCAL", "TRANSACTION", "CONSTRAINTS", NULL};
  /* PRAGMAs that only report (an argument names a table or index) */
  static const char *const pragma_reads[] = {
    "TABLE_INFO", "TABLE_XINFO", "TABLE_LIST", "INDEX_INFO", "INDEX_XINFO", "INDEX_LIST",
    "FOREIGN_KEY_LIST", "FOREIGN_KEY_CHECK", "INTEGRITY_CHECK", "QUICK_CHECK", NULL};
  const sq_token *w = first(a, 0);
  if (!w) return 0;
  const char *s = a->sql;
  if (tok_in(s, w, always)) return 1;
  switch (a->dialect) {
  case SQ_DIALECT_MYSQL:
    if (tok_in(s, w, my)) return 1;
    if (sq_tok_is(s, w, "DROP") && first_is(a, 1, "PREPARE")) return 1;
    break;
  case SQ_DIALECT_POSTGRES:
    if (tok_in(s, w, pg)) return 1;
    /* SET LOCAL / SET TRANSACTION / SET CONSTRAINTS end with the
     * transaction; every other SET outlives it */
    if (sq_tok_is(s, w, "SET")) return !(first(a, 1) && tok_in(s, first(a, 1), pg_local_set));
    break;
  case SQ_DIALECT_SQLITE:
    if (tok_in(s, w, lite)) return 1;
    if (sq_tok_is(s, w, "PRAGMA") && a->pragma_arg) {
      const sq_token *name = first(a, 1);
      if (name && first(a, 2) && tok_op(s, first(a, 2), '.')) name = first(a, 3);
      return !(name && tok_in(s, name, pragma_reads));
    }
    break;
  default:
    break;
  }
  if (sq_tok_is(s, w, "CREATE")) { /* CREATE TEMP ..., CREATE TABLE temp.x, pg_temp.x */
    for (int k = 1; k < a->nfirst; k++) {
      const sq_token *t = &a->first[k];
      if (tok_op(s, t, '(') || sq_tok_is(s, t, "AS")) break;
      if (sq_tok_is(s, t, "TEMP") || sq_tok_is(s, t, "TEMPORARY") || tok_prefix(s, t, "pg_temp")) return 1;
    }
  }
  return 0;
}

static int starts_read(const sq_stmt_an *a) {
  static const char *const reads[] = {"SELECT", "WITH", "SHOW", "VALUES", "EXPLAIN", "TABLE", NULL};
  return a->has_word && tok_in(a->sql, &a->word, reads);
}

/* Ends the current statement (if it held anything). */
static void an_finish(sq_stmt_an *a) {
  if (a->ntok > 0) {
    a->nstatements++;
    int session = a->st_session || starts_session(a);
    a->last_session = session;
    a->session |= session;
    if (!(starts_read(a) && !a->st_write && !session && !a->st_unterminated)) a->all_read = 0;
    a->unterminated |= a->st_unterminated;
  }
  an_reset_stmt(a);
}

/* Routine bodies whose ';' do not end the statement: SQLite triggers,
 * MySQL stored programs, PostgreSQL BEGIN ATOMIC function bodies. */
static int routine_word(const sq_stmt_an *a, const sq_token *t) {
  static const char *const my[] = {"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", NULL};
  static const char *const pg[] = {"PROCEDURE", "FUNCTION", NULL};
  switch (a->dialect) {
  case SQ_DIALECT_SQLITE: return sq_tok_is(a->sql, t, "TRIGGER");
  case SQ_DIALECT_MYSQL: return tok_in(a->sql, t, my);
  case SQ_DIALECT_POSTGRES: return tok_in(a->sql, t, pg);
  default: return 0;
  }
}

int sq_an_feed(sq_stmt_an *a, const sq_token *t) {
  const char *s = a->sql;
  if (t->type == SQ_TK_EOF) {
    int had = a->ntok > 0;
    an_finish(a);
    return had;
  }
  if (t->type == SQ_TK_SPACE) return 0;
  if (t->unterminated) a->st_unterminated = 1;
  if (t->type == SQ_TK_COMMENT) return 0;
  if (t->type == SQ_TK_SEMI && a->paren == 0 && !(a->routine && a->depth > 0)) {
    int had = a->ntok > 0;
    an_finish(a);
    return had;
  }
  a->ntok++;
  if (a->nfirst < SQ_AN_FIRST) a->first[a->nfirst++] = *t;
  if (t->type == SQ_TK_OP && t->len == 1) {
    char ch = s[t->pos];
    if (ch == '(') a->paren++, a->seen_paren = 1;
    else if (ch == ')' && a->paren > 0) a->paren--;
    if (ch == '=' || ch == '(') a->pragma_arg = 1;
  }
  if (a->lead && t->type == SQ_TK_WORD) {
    a->word = *t;
    a->has_word = 1;
  }
  if (!tok_op(s, t, '(')) a->lead = 0;

  int dot = a->prev_dot, into = a->prev_into, after_end = a->after_end;
  a->prev_dot = tok_op(s, t, '.');
  a->prev_into = 0;
  a->after_end = 0;
  if (t->type == SQ_TK_WORD) {
    static const char *const writes[] = {"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT",
                                         "INTO", "CALL", "ANALYZE", "ANALYSE", NULL};
    a->prev_into = sq_tok_is(s, t, "INTO");
    if (!dot && tok_in(s, t, writes)) a->st_write = 1;
    /* session-changing functions, anywhere in the statement */
    if (a->dialect == SQ_DIALECT_MYSQL) {
      static const char *const fns[] = {"GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", NULL};
      if (tok_in(s, t, fns)) a->st_session = 1;
    } else if (a->dialect == SQ_DIALECT_POSTGRES) {
      static const char *const fns[] = {"SET_CONFIG", "SETSEED", "DBLINK_CONNECT", "DBLINK_CONNECT_U", NULL};
      if (((tok_prefix(s, t, "pg_advisory") || tok_prefix(s, t, "pg_try_advisory")) && !tok_contains(s, t, "xact")) ||
          tok_in(s, t, fns))
        a->st_session = 1;
      if (into && (sq_tok_is(s, t, "TEMP") || sq_tok_is(s, t, "TEMPORARY"))) a->st_session = 1; /* SELECT INTO TEMP */
    }
    /* routine bodies */
    if (!a->routine && !a->seen_paren && a->ntok <= 12 && first_is(a, 0, "CREATE") && routine_word(a, t)) a->routine = 1;
    if (!a->routine && a->dialect == SQ_DIALECT_MYSQL && a->ntok == 2 && first_is(a, 0, "BEGIN") &&
        sq_tok_is(s, t, "NOT")) { /* MariaDB's BEGIN NOT ATOMIC ... END */
      a->routine = 1;
      a->depth = 1;
    }
    if (a->routine && !dot) {
      static const char *const closers[] = {"IF", "LOOP", "WHILE", "REPEAT", "FOR", NULL};
      if (sq_tok_is(s, t, "BEGIN")) {
        a->depth++;
      } else if (sq_tok_is(s, t, "CASE")) {
        if (a->depth > 0 && !after_end) a->depth++; /* END CASE closed it already */
      } else if (sq_tok_is(s, t, "END")) {
        if (a->depth > 0) a->depth--;
        a->after_end = 1;
      } else if (after_end && a->dialect == SQ_DIALECT_MYSQL && tok_in(s, t, closers)) {
        a->depth++; /* END IF / END LOOP ...: not the END of a BEGIN or CASE */
      }
    }
  } else if (a->dialect == SQ_DIALECT_MYSQL) {
    if (t->type == SQ_TK_OP && t->len == 2 && s[t->pos] == ':' && s[t->pos + 1] == '=') a->st_session = 1; /* @v := */
    if (into && tok_op(s, t, '@')) a->st_session = 1; /* SELECT ... INTO @v */
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Whole-text helpers                                                   */
/* ------------------------------------------------------------------ */

static void analyse(int dialect, const char *sql, size_t len, sq_stmt_an *a) {
  sq_lexer lx;
  sq_token t;
  sq_lex_init(&lx, dialect, 0, sql, len);
  sq_an_init(a, dialect, sql);
  do {
    sq_lex_next(&lx, &t);
    sq_an_feed(a, &t);
  } while (t.type != SQ_TK_EOF);
  if (lx.exec_comment) a->unterminated = 1, a->all_read = 0;
}

int sq_sql_next(int dialect, const char *sql, size_t len, size_t *pos, size_t *start, size_t *end) {
  if (!sql || *pos >= len) return 0;
  sq_lexer lx;
  sq_token t;
  sq_stmt_an a;
  sq_lex_init(&lx, dialect, 0, sql, len);
  /* Lexed from the start, so the statement begins in the state the whole
   * text gives it there (inside a MySQL executable comment that spans a
   * ';', say), as sq_sql_count sees it. */
  while (lx.pos < *pos) sq_lex_next(&lx, &t);
  sq_an_init(&a, dialect, sql);
  size_t from = *pos;
  for (;;) {
    sq_lex_next(&lx, &t);
    if (sq_an_feed(&a, &t)) {
      *start = from;
      *end = t.pos;
      *pos = t.type == SQ_TK_EOF ? len : t.pos + t.len;
      return 1;
    }
    if (t.type == SQ_TK_EOF) {
      *pos = len;
      return 0;
    }
    if (t.type == SQ_TK_SEMI && a.ntok == 0) from = t.pos + 1; /* an empty statement */
  }
}

int sq_sql_count(int dialect, const char *sql, size_t len) {
  sq_stmt_an a;
  if (!sql) return 0;
  analyse(dialect, sql, len, &a);
  return a.nstatements;
}

int sq_sql_session_effect(int dialect, const char *sql, size_t len) {
  sq_stmt_an a;
  if (!sql) return 0;
  analyse(dialect, sql, len, &a);
  return a.session;
}

int sq_sql_is_read_dialect(int dialect, const char *sql, size_t len) {
  sq_stmt_an a;
  if (!sql) return 0;
  analyse(dialect, sql, len, &a);
  return a.nstatements == 1 && a.all_read && !a.unterminated;
}

/*
 * Without a dialect, a statement is a read only when it is one under every
 * dialect's rules: a text that one server would read as a write (a '#'
 * comment, a backslash in a quote) counts as a write. A missed retry
 * costs one error, a wrong one could write twice.
 */
int sq_sql_is_read(const char *sql, size_t len) {
  return sq_sql_is_read_dialect(SQ_DIALECT_SQLITE, sql, len) && sq_sql_is_read_dialect(SQ_DIALECT_MYSQL, sql, len) &&
         sq_sql_is_read_dialect(SQ_DIALECT_POSTGRES, sql, len);
}

const char *sq_sql_first_word(int dialect, const char *sql, size_t len, size_t *wlen) {
  sq_lexer lx;
  sq_token t;
  sq_lex_init(&lx, dialect, 0, sql, len);
  for (;;) {
    int ty = sq_lex_next(&lx, &t);
    if (ty == SQ_TK_SPACE || ty == SQ_TK_COMMENT || (ty == SQ_TK_OP && t.len == 1 && sql[t.pos] == '(')) continue;
    if (ty != SQ_TK_WORD) {
      *wlen = 0;
      return NULL;
    }
    *wlen = t.len;
    return sql + t.pos;
  }
}

size_t sq_sql_skip_blank(int dialect, const char *sql, size_t len) {
  sq_lexer lx;
  sq_token t;
  sq_lex_init(&lx, dialect, 0, sql, len);
  for (;;) {
    int ty = sq_lex_next(&lx, &t);
    if (ty != SQ_TK_SPACE && ty != SQ_TK_COMMENT && ty != SQ_TK_SEMI) return t.pos;
  }
}

int sq_word_is(const char *w, size_t n, const char *kw) {
  sq_token t = {SQ_TK_WORD, 0, n, 0};
  return w && sq_tok_is(w, &t, kw);
}
