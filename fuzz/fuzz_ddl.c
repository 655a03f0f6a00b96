/*
 * fuzz_ddl.c - schema statements for models built from the input:
 * sq_model_new / add_column / add_index / finish and sq_model_associate
 * with hostile names, types, lengths, defaults, comments, unique groups,
 * indexes and foreign keys; then on every dialect sq_render_create,
 * sq_render_drop, sq_render_add_fk, sq_render_create_all,
 * sq_render_drop_all and sq_schema_order.
 *
 * DDL takes no bound parameters: a column's constant default and its
 * comment are the only values written into SQL, as string literals.
 *
 * Invariants:
 *   - no crash, no leak; refusals are kind usage with a message
 *   - each statement is one statement, nothing unterminated, no
 *     placeholder, no comment: a comment or default can't end its literal
 *   - every quoted name is a valid identifier, every bare word a keyword
 *     sqorm writes; a name MySQL can't take is refused there, not written
 *   - every text default and comment comes back exactly when its literal
 *     is read with the dialect's rules
 *   - sq_schema_order returns each model once (plus join models), each
 *     after the models its constrained keys reference
 */
#include "fuzz.h"

#define MAXM 3

/* Decodes one string literal token (quotes included) per dialect. */
static size_t unquote(int dialect, const char *s, size_t n, char *out) {
  size_t i = 0, o = 0;
  int bs = dialect == SQ_DIALECT_MYSQL;
  if (s[0] == 'E' || s[0] == 'e') {
    bs = 1;
    i = 1;
  }
  if (i >= n || s[i] != '\'') return (size_t)-1;
  for (i++; i + 1 < n; i++) {
    if (bs && s[i] == '\\' && i + 2 < n) {
      out[o++] = s[++i];
    } else if (s[i] == '\'' && i + 2 < n && s[i + 1] == '\'') {
      out[o++] = '\'';
      i++;
    } else {
      out[o++] = s[i];
    }
  }
  return o;
}

typedef struct lits {
  char *s[64];
  size_t n[64];
  int count;
} lits;

/* Checks one statement and collects its decoded literals. */
static void check_stmt(int dialect, const char *sql, lits *got) {
  fz_check_sql(dialect, sql, strlen(sql), 0, FZ_DDL, NULL, NULL);
  sq_lexer lx;
  sq_token t;
  size_t len = strlen(sql);
  sq_lex_init(&lx, dialect, 0, sql, len);
  while (sq_lex_next(&lx, &t) != SQ_TK_EOF) {
    if (t.type != SQ_TK_STRING || got->count >= 64) continue;
    char *d = malloc(t.len + 1);
    size_t n = unquote(dialect, sql + t.pos, t.len, d);
    if (n == (size_t)-1) {
      free(d);
      continue;
    }
    got->s[got->count] = d;
    got->n[got->count++] = n;
  }
}

static void lits_free(lits *l) {
  for (int i = 0; i < l->count; i++) free(l->s[i]);
  l->count = 0;
}

static int lits_have(const lits *l, const char *s, size_t n) {
  for (int i = 0; i < l->count; i++)
    if (l->n[i] == n && !memcmp(l->s[i], s, n)) return 1;
  return 0;
}

/* The literals CREATE must hold for m, checked against what came back. */
static void check_literals(int dialect, const sq_model *m, const lits *got) {
  for (int i = 0; i < sq_model_ncols(m); i++) {
    const sq_col *c = sq_model_col(m, i);
    if (c->default_kind == SQ_DEFAULT_VALUE && !c->auto_increment && c->default_value.type == SQ_VTEXT &&
        !lits_have(got, c->default_value.u.s.p, c->default_value.u.s.n)) {
      fz_dump("default", c->default_value.u.s.p, c->default_value.u.s.n);
      FZ_CHECK(0, "a text default does not read back from its literal on %s", sq_dialect_name(dialect));
    }
    if (c->comment && dialect != SQ_DIALECT_SQLITE && !lits_have(got, c->comment, strlen(c->comment))) {
      fz_dump("comment", c->comment, strlen(c->comment));
      FZ_CHECK(0, "a comment does not read back from its literal on %s", sq_dialect_name(dialect));
    }
  }
}

static int mysql_names_ok(const sq_model *m) {
  if (!sq_ident_mysql_ok(m->table, strlen(m->table))) return 0;
  for (int i = 0; i < m->ncols; i++) {
    if (!sq_ident_mysql_ok(m->cols[i].name, strlen(m->cols[i].name))) return 0;
    if (m->cols[i].unique && m->cols[i].unique[0] && !sq_ident_mysql_ok(m->cols[i].unique, strlen(m->cols[i].unique)))
      return 0;
  }
  for (int i = 0; i < m->nidx; i++)
    if (!sq_ident_mysql_ok(m->idx[i].name, strlen(m->idx[i].name))) return 0;
  for (int i = 0; i < m->nfks; i++) {
    const sq_model *t = m->fks[i].target;
    int cons;
    sq_fk_actions(m, &m->fks[i], NULL, NULL, &cons);
    if (cons != SQ_CONSTRAINTS_ON) continue; /* not written in CREATE TABLE on MySQL */
    if (!sq_ident_mysql_ok(m->fks[i].name, strlen(m->fks[i].name)) || !sq_ident_mysql_ok(t->table, strlen(t->table)))
      return 0;
  }
  return 1;
}

/* A default value of some type, sometimes text with a NUL or quotes. */
static sq_value gen_default(fz *f) {
  static const char *const texts[] = {"it's", "a\\b", "\\'", "''", "x' || (SELECT 1) || '", "--", "/*",
                                      "\xe2\x82\xac", "$$", "?", ":a", "E'\\x41'", "\\", ""};
  unsigned c = fz_u8(f) % 5;
  if (c == 0) {
    const char *t = texts[fz_below(f, (int)(sizeof texts / sizeof *texts))];
    return sq_text(t, strlen(t));
  }
  if (c == 1) {
    size_t n;
    char *s = fz_bytes(f, 30, &n);
    return sq_text(s, n);
  }
  return fz_value(f);
}

static sq_model *gen_model(fz *f, lits *unused) {
  (void)unused;
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  unsigned flags = fz_u8(f);
  const char *name = fz_name(f);
  if (flags & 1) o.table_name = fz_name(f);
  o.timestamps = (int)(fz_u8(f) % 3) - 1;
  if (flags & 2) o.created_at = fz_name(f);
  if (flags & 4) o.updated_at = fz_name(f);
  if (flags & 8) o.deleted_at = fz_name(f);
  o.paranoid = (flags >> 4) & 1;
  sq_model *m;
  sq_err e;
  int rc = sq_model_new(name, &o, &m, &e);
  fz_check_err(rc, &e, 0);
  if (rc) return NULL;
  int ncols = fz_below(f, 7);
  const char *names[8];
  int nn = 0;
  for (int i = 0; i < ncols; i++) {
    sq_coldef d;
    memset(&d, 0, sizeof d);
    d.name = fz_name(f);
    d.type = fz_below(f, SQ_T_COUNT + 1);
    unsigned k = fz_u8(f);
    d.length = k < 0x80 ? 0 : k < 0xf0 ? (int)fz_u16(f) % 300 : k < 0xf8 ? 70000 : -1;
    d.precision = fz_below(f, 70);
    d.scale = fz_below(f, 35);
    d.allow_null = fz_bool(f);
    unsigned kf = fz_u8(f);
    d.primary_key = (kf & 3) == 0;
    d.auto_increment = (kf & 12) == 0;
    unsigned u = fz_u8(f) % 5;
    d.unique = u == 0 ? "" : u == 1 ? fz_name(f) : u == 2 ? "grp" : NULL;
    if (fz_u8(f) >= 0x80) d.comment = fz_str(f, 60, NULL);
    d.default_kind = fz_below(f, 6);
    d.default_value = d.default_kind == SQ_DEFAULT_VALUE ? gen_default(f) : sq_null();
    d.has_len = fz_u8(f) >= 0xf0;
    d.len_min = fz_below(f, 5);
    d.len_max = fz_below(f, 9);
    rc = sq_model_add_column(m, &d, &e);
    fz_check_err(rc, &e, 0);
    if (!rc && nn < 8) names[nn++] = d.name;
  }
  int nidx = fz_below(f, 3);
  for (int i = 0; i < nidx; i++) {
    const char *cols[3];
    int nc = 1 + fz_below(f, 3);
    for (int k = 0; k < nc; k++) cols[k] = nn && fz_u8(f) < 0xe0 ? names[fz_below(f, nn)] : fz_name(f);
    rc = sq_model_add_index(m, fz_bool(f) ? NULL : fz_name(f), cols, nc, fz_bool(f), &e);
    fz_check_err(rc, &e, 0);
  }
  rc = sq_model_finish(m, &e);
  fz_check_err(rc, &e, 0);
  if (rc) {
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static void gen_assoc(fz *f, sq_model **ms, int n) {
  sq_model *src = ms[fz_below(f, n)], *dst = ms[fz_below(f, n)];
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  unsigned flags = fz_u16(f);
  int kind = 1 + fz_below(f, 4);
  if (flags & 1) o.as = fz_name(f);
  if (flags & 2) o.foreign_key = fz_name(f);
  if (flags & 4) o.source_key = src->cols[fz_below(f, src->ncols)].name;
  if (flags & 8) o.target_key = dst->cols[fz_below(f, dst->ncols)].name;
  if (kind == SQ_ASSOC_BELONGS_TO_MANY || (flags & 16)) o.through = fz_u8(f) < 0x80 ? "joins" : fz_name(f);
  if (flags & 32) o.other_key = fz_name(f);
  o.on_delete = fz_below(f, 6);
  o.on_update = fz_below(f, 6);
  o.constraints = fz_below(f, 5) - 1;
  o.fk_allow_null = fz_below(f, 3) - 1;
  o.through_timestamps = (flags >> 6) & 1;
  sq_err e;
  int rc = sq_model_associate(src, kind, dst, &o, NULL, &e);
  fz_stat(6, "associate", rc);
  fz_check_err(rc, &e, 0);
}

static void check_list(int dialect, const sq_sql_list *l, lits *got) {
  FZ_CHECK(l->n >= 0 && (l->n == 0 || l->sql), "a statement list without statements");
  for (int i = 0; i < l->n; i++) check_stmt(dialect, l->sql[i], got);
}

static int in_list(const sq_model *const *v, int n, const sq_model *m) {
  for (int i = 0; i < n; i++)
    if (v[i] == m) return i;
  return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz f;
  fz_init(&f, data, size);
  sq_model *ms[MAXM];
  int n = 0;
  int want = 1 + fz_below(&f, MAXM);
  for (int i = 0; i < want; i++) {
    sq_model *m = gen_model(&f, NULL);
    if (m) ms[n++] = m;
  }
  if (n) {
    int na = fz_below(&f, 4);
    for (int i = 0; i < na; i++) gen_assoc(&f, ms, n);
  }
  int opts = fz_u8(&f);
  for (int d = 0; d < 3; d++) {
    int dialect = fz_dialects[d];
    for (int i = 0; i < n; i++) {
      const sq_model *m = ms[i];
      sq_sql_list l;
      sq_err e;
      lits got = {0};
      int rc = sq_render_create(m, dialect, opts & 1, &l, &e);
      fz_stat(d, d == 0 ? "create sqlite" : d == 1 ? "create mysql" : "create postgres", rc);
      fz_check_err(rc, &e, 0);
      if (rc == SQ_OK) {
        if (dialect == SQ_DIALECT_MYSQL && !mysql_names_ok(m)) {
          fz_dump("sql", l.sql[0], strlen(l.sql[0]));
          FZ_CHECK(0, "a name MySQL refuses was written");
        }
        check_list(dialect, &l, &got);
        check_literals(dialect, m, &got);
      } else {
        FZ_CHECK(l.n == 0 && l.sql == NULL, "a failed render left statements behind");
      }
      lits_free(&got);
      sq_sql_list_free(&l);
      rc = sq_render_drop(m, dialect, opts & 2, &l, &e);
      fz_check_err(rc, &e, 0);
      if (rc == SQ_OK) check_list(dialect, &l, &got);
      lits_free(&got);
      sq_sql_list_free(&l);
      for (int k = 0; k < sq_model_nfks(m); k++) {
        rc = sq_render_add_fk(m, sq_model_fk(m, k), dialect, &l, &e);
        fz_check_err(rc, &e, 0);
        if (rc == SQ_OK) check_list(dialect, &l, &got);
        lits_free(&got);
        sq_sql_list_free(&l);
      }
    }
    if (n) {
      sq_sql_list l;
      sq_err e;
      lits got = {0};
      int rc = sq_render_create_all(ms, n, dialect, opts & 4, &l, &e);
      fz_stat(3 + d, d == 0 ? "create_all sqlite" : d == 1 ? "create_all mysql" : "create_all postgres", rc);
      fz_check_err(rc, &e, 0);
      if (rc == SQ_OK) check_list(dialect, &l, &got);
      lits_free(&got);
      sq_sql_list_free(&l);
      rc = sq_render_drop_all(ms, n, dialect, opts & 8, &l, &e);
      fz_check_err(rc, &e, 0);
      if (rc == SQ_OK) check_list(dialect, &l, &got);
      lits_free(&got);
      sq_sql_list_free(&l);
    }
  }
  if (n) {
    const sq_model **order;
    int norder;
    sq_err e;
    int rc = sq_schema_order(ms, n, &order, &norder, &e);
    fz_check_err(rc, &e, 0);
    if (rc == SQ_OK) {
      for (int i = 0; i < n; i++) FZ_CHECK(in_list(order, norder, ms[i]) >= 0, "model %d missing from the order", i);
      for (int i = 0; i < norder; i++) {
        FZ_CHECK(in_list(order, i, order[i]) < 0, "a model twice in the order");
        for (int k = 0; k < sq_model_nfks(order[i]); k++) {
          const sq_fk *fk = sq_model_fk(order[i], k);
          int cons;
          sq_fk_actions(order[i], fk, NULL, NULL, &cons);
          int at = in_list(order, norder, fk->target);
          if (cons == SQ_CONSTRAINTS_ON && fk->target != order[i] && at >= 0)
            FZ_CHECK(at < i, "model %d comes before the model %d it references", i, at);
        }
      }
      free(order);
    }
  }
  for (int i = 0; i < n; i++) sq_model_free(ms[i]);
  fz_done(&f);
  return 0;
}
