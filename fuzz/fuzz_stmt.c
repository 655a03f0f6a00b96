/*
 * fuzz_stmt.c - placeholder rewriting and the lexer, per dialect:
 * sq_stmt_rewrite_dialect / sq_stmt_rewrite, sq_sql_count, sq_sql_next,
 * sq_sql_session_effect, sq_sql_is_read_dialect, sq_sql_is_read.
 *
 * Input: one byte picks the dialect (and, for sq_stmt_rewrite, the
 * backslash flag); the rest is the SQL, bytes as they come (NULs too).
 *
 * Invariants:
 *   - no crash, no leak, no read past the text; errors are kind usage;
 *     text holding a NUL byte is refused on SQLite and PostgreSQL (their
 *     client libraries would cut it there)
 *   - rewriting changes nothing but placeholders: the output is the input
 *     with each `?` / `:name` replaced by the driver's placeholder (on
 *     PostgreSQL `$n`, set apart by a space from a word or number it
 *     touches), `??` by `?` on PostgreSQL, and (for a single statement)
 *     the empty statements before it and the ';' after it dropped (not
 *     inside a MySQL executable comment, nor after a '-' on MySQL, where
 *     "--" at the end would turn a comment)
 *   - read back with the same lexer, the output has its placeholders
 *     exactly where they were put and nowhere else, numbered $1..$n in
 *     order on PostgreSQL, and every literal, quoted name and comment
 *     where the input had it (a placeholder never merges with what is
 *     around it into another token)
 *   - nparams equals the placeholders produced; named binds name them
 *   - the rewrite's statement count, session flag and read flag equal
 *     sq_sql_count, sq_sql_session_effect and sq_sql_is_read_dialect;
 *     sq_sql_next walks the same number of statements, in order, inside
 *     the text; a read is one statement with no session effect
 */
#include "fuzz.h"

static int pg_word_byte(unsigned char c) {
  return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

typedef struct tok {
  int type;
  size_t pos, len; /* input */
  size_t out;      /* where it starts in the expected output */
  size_t outlen;
  int unterminated;
  int ph;          /* a placeholder: its number (1-based), else 0 */
} tok;

static int opaque(int type) {
  return type == SQ_TK_STRING || type == SQ_TK_QIDENT || type == SQ_TK_COMMENT || type == SQ_TK_NATIVE ||
         type == SQ_TK_NAMED || type == SQ_TK_QMARK;
}

/* Checks a successful rewrite of sql against the input, token by token. */
static void check_rewrite(int dialect, unsigned flags, const char *sql, size_t len, const sq_stmt_text *t) {
  size_t cap = len + 1;
  tok *v = malloc(sizeof *v * cap);
  char *exp = malloc(len * 8 + 16);
  size_t n = 0, o = 0;
  int nph = 0, named = 0, native_style = 0;
  sq_lexer lx;
  sq_token k;
  sq_stmt_an an;
  sq_lex_init(&lx, dialect, flags, sql, len);
  sq_an_init(&an, dialect, sql);
  size_t lead = 0, cut = (size_t)-1;
  int pg = dialect == SQ_DIALECT_POSTGRES;
  do {
    sq_lex_next(&lx, &k);
    int ends = sq_an_feed(&an, &k);
    if (k.type == SQ_TK_SEMI && !ends && an.ntok == 0 && an.nstatements == 0 && !lx.exec_comment)
      lead = k.pos + 1;
    if (ends && an.nstatements == 1 && k.type == SQ_TK_SEMI && !lx.exec_comment &&
        !(dialect == SQ_DIALECT_MYSQL && k.pos > 0 && sql[k.pos - 1] == '-'))
      cut = o;
    if (k.type == SQ_TK_EOF) break;
    FZ_CHECK(n < cap, "more tokens than bytes");
    tok *x = &v[n++];
    x->type = k.type;
    x->pos = k.pos;
    x->len = k.len;
    x->out = o;
    x->unterminated = k.unterminated;
    x->ph = 0;
    FZ_CHECK(k.len > 0 && k.pos + k.len <= len, "token [%zu, +%zu) outside the text of %zu bytes", k.pos, k.len,
             len);
    if (k.type == SQ_TK_QMARK || k.type == SQ_TK_NAMED) {
      x->ph = ++nph;
      named |= k.type == SQ_TK_NAMED;
      if (pg) {
        /* kept apart from a word or number next to it */
        if (o && pg_word_byte((unsigned char)exp[o - 1])) exp[o++] = ' ';
        x->out = o;
        o += (size_t)sprintf(exp + o, "$%d", nph);
        x->outlen = o - x->out;
        if (k.pos + k.len < len && pg_word_byte((unsigned char)sql[k.pos + k.len])) exp[o++] = ' ';
        continue;
      } else {
        exp[o++] = '?';
      }
    } else if (k.type == SQ_TK_QESC) {
      exp[o++] = '?';
    } else {
      if (k.type == SQ_TK_NATIVE) native_style = 1;
      memcpy(exp + o, sql + k.pos, k.len);
      o += k.len;
    }
    x->outlen = o - x->out;
  } while (1);
  size_t from = 0, to = o;
  if (t->nstatements == 1) {
    from = lead;
    if (cut != (size_t)-1) to = cut;
  }
  if (native_style) FZ_CHECK(nph == 0, "mixed styles were accepted");
  if (!native_style) FZ_CHECK(t->nparams == nph, "nparams %d, placeholders %d", t->nparams, nph);
  FZ_CHECK(t->named == named || nph == 0, "named flag %d for %s binds", t->named, named ? "named" : "positional");
  if (t->len != to - from || memcmp(t->sql, exp + from, to - from)) {
    fz_dump("input", sql, len);
    fz_dump("output", t->sql, t->len);
    fz_dump("expected", exp + from, to - from);
    FZ_CHECK(0, "the rewrite changed text outside placeholders");
  }
  FZ_CHECK(t->sql[t->len] == '\0', "rewritten SQL is not NUL-terminated");
  for (int i = 0; named && i < t->nparams; i++) {
    int seen = 0;
    for (size_t j = 0; j < n; j++)
      if (v[j].ph == i + 1) {
        FZ_CHECK(strlen(t->names[i]) == v[j].len - 1 && !memcmp(t->names[i], sql + v[j].pos + 1, v[j].len - 1),
                 "name %d is '%s', the SQL says '%.*s'", i, t->names[i], (int)v[j].len, sql + v[j].pos);
        seen = 1;
      }
    FZ_CHECK(seen, "name %d has no placeholder", i);
  }

  /* Read the output back: the same literals, names and comments at the
   * same places, and the placeholders where they were put. */
  sq_lex_init(&lx, dialect, flags, t->sql, t->len);
  size_t j = 0;
  int seen_ph = 0, matched = 0;
  while (sq_lex_next(&lx, &k) != SQ_TK_EOF) {
    size_t at = k.pos + from;
    int type = k.type;
    if (pg && (type == SQ_TK_QMARK || type == SQ_TK_QESC || type == SQ_TK_QAMBIG)) continue; /* literal ? */
    if (!opaque(type)) continue;
    matched++;
    /* the input token that produced this output position */
    while (j < n && v[j].out + v[j].outlen <= at) j++;
    int ok = j < n && v[j].out == at && v[j].outlen == k.len && k.unterminated == v[j].unterminated;
    int is_ph = (pg && type == SQ_TK_NATIVE && !native_style) || (!pg && type == SQ_TK_QMARK);
    if (ok) {
      if (is_ph) ok = v[j].ph > 0;
      else ok = v[j].ph == 0 && v[j].type == type;
    }
    if (is_ph) seen_ph++;
    if (!ok) {
      fz_dump("input", sql, len);
      fz_dump("output", t->sql, t->len);
      FZ_CHECK(0, "read back, the output has a %s token at output offset %zu (+%zu) that the input did not have "
                  "there",
               is_ph ? "placeholder" : "literal/name/comment", k.pos, k.len);
    }
  }
  /* and none went missing */
  int want = 0, want_ph = 0;
  for (size_t i = 0; i < n; i++)
    if (v[i].out >= from && v[i].out < to) {
      want_ph += v[i].ph > 0;
      want += opaque(v[i].type) && !(pg && v[i].type == SQ_TK_QESC);
    }
  if (seen_ph != want_ph || matched != want) {
    fz_dump("input", sql, len);
    fz_dump("output", t->sql, t->len);
    FZ_CHECK(0, "read back, the output has %d placeholders and %d literals/names/comments; %d and %d were written",
             seen_ph, matched - seen_ph, want_ph, want - want_ph);
  }
  free(v);
  free(exp);
}

static void check_analysis(int dialect, const char *sql, size_t len, const sq_stmt_text *t) {
  int count = sq_sql_count(dialect, sql, len);
  int session = sq_sql_session_effect(dialect, sql, len);
  int is_read = sq_sql_is_read_dialect(dialect, sql, len);
  FZ_CHECK(count >= 0 && (size_t)count <= len, "sq_sql_count %d for %zu bytes", count, len);
  if (t) {
    FZ_CHECK(t->nstatements == count, "rewrite counts %d statements, sq_sql_count %d", t->nstatements, count);
    FZ_CHECK(t->session == session, "rewrite session %d, sq_sql_session_effect %d", t->session, session);
    FZ_CHECK(t->is_read == is_read, "rewrite is_read %d, sq_sql_is_read_dialect %d", t->is_read, is_read);
  }
  if (is_read) FZ_CHECK(count == 1 && !session, "a read with %d statements, session %d", count, session);
  if (sq_sql_is_read(sql, len)) FZ_CHECK(is_read, "read without a dialect but not with %s", sq_dialect_name(dialect));
  size_t pos = 0, start, end, last = 0;
  int walked = 0;
  while (sq_sql_next(dialect, sql, len, &pos, &start, &end)) {
    FZ_CHECK(start <= end && end <= len && start >= last && pos <= len && pos >= end,
             "sq_sql_next gave [%zu, %zu) pos %zu after %zu (len %zu)", start, end, pos, last, len);
    last = end;
    FZ_CHECK(++walked <= count + 1, "sq_sql_next walks more statements than sq_sql_count (%d)", count);
  }
  FZ_CHECK(walked == count, "sq_sql_next walked %d statements, sq_sql_count says %d", walked, count);
  size_t wl;
  const char *w = sq_sql_first_word(dialect, sql, len, &wl);
  if (w) FZ_CHECK(w >= sql && w + wl <= sql + len, "first word outside the text");
  FZ_CHECK(sq_sql_skip_blank(dialect, sql, len) <= len, "skip_blank past the end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned sel = data[0];
  int dialect = fz_dialects[sel % 3];
  /* the SQL in its own allocation, so ASan sees any read past its end */
  size_t len = size - 1;
  char *sql = malloc(len ? len : 1);
  memcpy(sql, data + 1, len);

  sq_stmt_text t;
  sq_err e;
  int rc = sq_stmt_rewrite_dialect(dialect, sql, len, &t, &e);
  fz_check_err(rc, &e, 1);
  if (memchr(sql, '\0', len) && dialect != SQ_DIALECT_MYSQL)
    FZ_CHECK(rc == SQ_EUSAGE, "SQL holding a NUL byte was accepted for %s", sq_dialect_name(dialect));
  if (rc == SQ_OK) check_rewrite(dialect, 0, sql, len, &t);
  check_analysis(dialect, sql, len, rc == SQ_OK ? &t : NULL);
  sq_stmt_text_free(&t);

  /* The style form, with the backslash variants. */
  static const int styles[4] = {SQ_PH_QMARK, SQ_PH_QMARK | SQ_PH_BACKSLASH, SQ_PH_DOLLAR,
                                SQ_PH_DOLLAR | SQ_PH_BACKSLASH};
  int style = styles[(sel >> 2) % 4];
  rc = sq_stmt_rewrite(sql, len, style, &t, &e);
  fz_check_err(rc, &e, 1);
  if (rc == SQ_OK) {
    int d = (style & 0xff) == SQ_PH_DOLLAR ? SQ_DIALECT_POSTGRES
            : (style & SQ_PH_BACKSLASH)    ? SQ_DIALECT_MYSQL
                                           : SQ_DIALECT_SQLITE;
    unsigned fl = d == SQ_DIALECT_POSTGRES && (style & SQ_PH_BACKSLASH) ? SQ_LEX_BACKSLASH : 0;
    check_rewrite(d, fl, sql, len, &t);
  }
  sq_stmt_text_free(&t);
  free(sql);
  return 0;
}
