/*
 * fuzz_schema.c - schema operations (sqorm.h "Schema operations"): lists
 * of sq_sop built from the input (every kind, hostile table, column,
 * index, constraint and enum type names, every column type, lengths,
 * defaults, comments, enum values, indexes, unique groups, foreign keys
 * with every action, IF [NOT] EXISTS, change flags), then
 *
 *   - sq_schema_render on every dialect, with and without
 *     SQ_SCHEMA_ONE_ALTER (no connection);
 *   - on SQLite (":memory:", a fresh database per input holding two
 *     tables with rows and a foreign key between them): sq_schema_plan
 *     (rebuild plans read the live table) and sq_schema_apply.
 *
 * Invariants:
 *   - no crash, no leak; a refusal is kind usage with a message and
 *     renders nothing
 *   - every statement is one statement with nothing unterminated, no
 *     placeholder and no comment; PostgreSQL's DO block is one statement
 *     whose dollar-quoted body is read the same way (its tag can't be
 *     closed by a value)
 *   - every quoted name is a valid identifier for the dialect, every bare
 *     word a keyword the renderers write
 *   - text defaults, comments (MySQL, PostgreSQL) and enum values read
 *     back exactly from their literals
 *   - rendering is deterministic
 *   - SQLite: sq_schema_apply either succeeds - every table that still
 *     has its name has its rows, the foreign keys hold, the database is
 *     intact and foreign keys are on again - or fails with a kind and a
 *     message and leaves the schema and the rows exactly as they were
 *
 * The live SQLite part runs on a quarter of the inputs (it is the slow
 * part). SQORM_FUZZ_STATS=1 prints how many renders, plans and applies
 * succeeded; FZ_VERBOSE=1 prints every refusal's message (to see what
 * keeps inputs from getting deeper).
 */
#include "fuzz.h"

#define MAXOPS 4

/* Bare words the schema renderers write besides fz_keywords. */
static const char *const schema_words[] = {
    "RENAME",   "TO",        "MODIFY",     "TYPE",     "USING",   "VALUE",   "AFTER",         "BEFORE",
    "ENUM",     "CHECK",     "CHANGE",     "BEGIN",    "END",     "EXCEPTION", "WHEN",        "THEN",
    "duplicate_object", "PRAGMA", "legacy_alter_table", "OFF", "sqlite_sequence", "seq", "name",
    "SEQUENCE", "RESTART",   "WITH",       "setval",   "pg_get_serial_sequence", "coalesce", "EXECUTE",
    "CURRENT_TIMESTAMP", "IMMEDIATE", "DEFERRABLE", "INITIALLY", "DEFERRED", "ALWAYS", "VIRTUAL", "STORED",
    "FIRST",    "USING",     "btree",      "TEMPORARY", "foreign_keys", "ON", "utc_timestamp", "now", "timezone",
    "utc",      "datetime",  "strftime",   "CASE",     "ELSE",    "INT",     "SIGNED",        "BIT", "VARBINARY",
    "NOCASE",   "COLUMNS",   "KEYS",       "AT",       "TIME",    "ZONE",    "UTC",
    "COALESCE", "CURRENT_DATE", "date_trunc", "nextval", "regclass", "DATABASE", "ANY", "CROSS", "LATERAL",
    "unnest", "least", "quote_ident", "ORDINALITY", "bigserial", "serial", NULL};

static fz_words WORDS;

static void words_init(void) {
  if (WORDS.n) return;
  for (int i = 0; schema_words[i]; i++) fz_words_add(&WORDS, schema_words[i]);
}

/* ------------------------------------------------------------------ */
/* Reading literals back                                                */
/* ------------------------------------------------------------------ */

/* Decodes one string literal token (quotes included) per dialect;
 * (size_t)-1 when it is not a quoted string. */
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
  char *s[256];
  size_t n[256];
  int count;
} lits;

static void lits_free(lits *l) {
  for (int i = 0; i < l->count; i++) free(l->s[i]);
  l->count = 0;
}

static int lits_have(const lits *l, const char *s, size_t n) {
  for (int i = 0; i < l->count; i++)
    if (l->n[i] == n && !memcmp(l->s[i], s, n)) return 1;
  return 0;
}

static void check_stmt(int dialect, const char *sql, size_t len, lits *got, int depth);

/* PostgreSQL's DO $tag$ ... $tag$: the body, read as statements. */
static void check_do_body(const char *s, size_t n, lits *got, int depth) {
  size_t t = 1;
  while (t < n && s[t] != '$') t++;
  FZ_CHECK(t < n && n >= 2 * (t + 1), "a dollar-quoted string without its tag");
  size_t tag = t + 1;
  FZ_CHECK(!memcmp(s, s + n - tag, tag), "a dollar-quoted string ends with another tag");
  const char *body = s + tag;
  size_t blen = n - 2 * tag;
  /* the body's statements, split with the lexer (it holds BEGIN ...; EXCEPTION ...; END) */
  char *copy = malloc(blen + 1);
  memcpy(copy, body, blen);
  copy[blen] = '\0';
  FZ_CHECK(strlen(copy) == blen, "a DO body holds a NUL");
  sq_lexer lx;
  sq_token tk;
  sq_lex_init(&lx, SQ_DIALECT_POSTGRES, 0, copy, blen);
  size_t start = 0;
  int more = 1;
  while (more) {
    int ty = sq_lex_next(&lx, &tk);
    FZ_CHECK(!tk.unterminated, "unterminated token in a DO body");
    if (ty == SQ_TK_SEMI || ty == SQ_TK_EOF) {
      size_t end = ty == SQ_TK_EOF ? blen : tk.pos;
      while (start < end && copy[start] == ' ') start++;
      if (end > start) {
        char save = copy[end];
        copy[end] = '\0';
        check_stmt(SQ_DIALECT_POSTGRES, copy + start, end - start, got, depth + 1);
        copy[end] = save;
      }
      start = end + 1;
      more = ty != SQ_TK_EOF;
    }
  }
  free(copy);
}

/* Checks one statement and collects its decoded literals. */
static void check_stmt(int dialect, const char *sql, size_t len, lits *got, int depth) {
  FZ_CHECK(depth < 3, "DO blocks nest");
  fz_check_sql(dialect, sql, len, 0, FZ_DDL, &WORDS, NULL);
  sq_lexer lx;
  sq_token t;
  sq_lex_init(&lx, dialect, 0, sql, len);
  while (sq_lex_next(&lx, &t) != SQ_TK_EOF) {
    if (t.type != SQ_TK_STRING) continue;
    const char *s = sql + t.pos;
    if (s[0] == '$') {
      FZ_CHECK(dialect == SQ_DIALECT_POSTGRES, "a dollar-quoted string outside PostgreSQL");
      check_do_body(s, t.len, got, depth);
      continue;
    }
    if (got->count >= 256) continue;
    char *d = malloc(t.len + 1);
    size_t n = unquote(dialect, s, t.len, d);
    if (n == (size_t)-1) {
      free(d);
      continue;
    }
    got->s[got->count] = d;
    got->n[got->count++] = n;
  }
}

/* ------------------------------------------------------------------ */
/* Building operations                                                  */
/* ------------------------------------------------------------------ */

static const char *const tables[] = {"t", "u", "missing"};

static const char *table_name(fz *f) {
  unsigned c = fz_u8(f);
  if (c < 0xc0) return tables[c % 3];
  return fz_name(f);
}

static const char *col_name(fz *f) {
  static const char *const cols[] = {"id", "a", "b", "c", "t_id", "e"};
  unsigned c = fz_u8(f);
  if (c < 0xa0) return cols[c % 6];
  return fz_name(f);
}

static const char *enum_value(fz *f) {
  static const char *const vals[] = {"common", "rare", "it's", "$sq$", "$sq1$", "'); DROP TABLE t; --", "\\",
                                     "a\\'b", "", "\xe2\x82\xac", "$$", "*/", "E'x'"};
  unsigned c = fz_u8(f);
  if (c < 0xc0) return vals[c % (sizeof vals / sizeof *vals)];
  return fz_str(f, 40, NULL);
}

static sq_value gen_default(fz *f) {
  static const char *const texts[] = {"it's", "a\\b", "\\'", "''", "x' || (SELECT 1) || '", "--", "/*",
                                      "\xe2\x82\xac", "$$", "$sq$", "?", ":a", "E'\\x41'", "\\", "", "common"};
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

static const char *const *gen_names(fz *f, int *n, const char *(*gen)(fz *)) {
  int k = 1 + fz_below(f, 3);
  if (fz_u8(f) == 0xff) k = 0;
  const char **v = fz_alloc(f, sizeof *v * 3);
  for (int i = 0; i < k; i++) v[i] = gen(f);
  *n = k;
  return v;
}

static sq_sfk *gen_fk(fz *f) {
  sq_sfk *k = fz_alloc(f, sizeof *k);
  unsigned fl = fz_u8(f);
  k->name = fl & 1 ? fz_name(f) : NULL;
  static const char *const tid[] = {"t_id"}, *const id[] = {"id"};
  k->cols = tid;
  k->ncols = 1;
  k->ref_cols = id;
  k->nref_cols = 1;
  k->ref_table = fl & 4 ? table_name(f) : "t";
  if ((fl & 0x28) == 0x28) k->cols = gen_names(f, &k->ncols, col_name);
  if ((fl & 0x48) == 0x48) k->ref_cols = gen_names(f, &k->nref_cols, col_name);
  if ((fl & 0x88) == 0x88) k->ref_cols = NULL;
  k->on_delete = fz_below(f, 6);
  k->on_update = fz_below(f, 6);
  k->deferred = (fl >> 4) & 1;
  return k;
}

static sq_sindex *gen_index(fz *f) {
  sq_sindex *x = fz_alloc(f, sizeof *x);
  x->name = fz_bool(f) ? fz_name(f) : NULL;
  x->cols = gen_names(f, &x->ncols, col_name);
  x->unique = fz_bool(f);
  return x;
}

static sq_scol *gen_col(fz *f, sq_scol *c) {
  unsigned tb = fz_u8(f); /* sometimes not a type */
  sq_scol_init(c, col_name(f), tb >= 0xfe ? (tb == 0xfe ? 0 : SQ_T_COUNT) : 1 + (int)(tb % (SQ_T_COUNT - 1)));
  unsigned k = fz_u8(f);
  c->length = k < 0x80 ? 0 : k < 0xf0 ? (int)fz_u16(f) % 300 : k < 0xf8 ? 70000 : -1;
  c->precision = fz_below(f, 70);
  c->scale = fz_below(f, 35);
  unsigned fl = fz_u16(f);
  c->allow_null = fl & 1;
  c->primary_key = (fl & 6) == 0;
  c->auto_increment = (fl & 24) == 0;
  unsigned u = (fl >> 5) % 5;
  c->unique = u == 0 ? "" : u == 1 ? fz_name(f) : u == 2 ? "grp" : NULL;
  if (fl & 0x100) c->comment = fz_bool(f) ? fz_str(f, 60, NULL) : "it's a \\ comment -- */";
  c->default_kind = fz_below(f, 5);
  if (c->default_kind == SQ_DEFAULT_VALUE) c->default_value = gen_default(f);
  if (fl & 0x200) {
    c->enum_values = gen_names(f, &c->nenum_values, enum_value);
    if (!(fl & 0x2000)) c->type = fl & 0x4000 ? 0 : SQ_T_STRING;
    if (fl & 0x400) c->enum_type = fz_name(f);
  }
  c->fill_now = (fl >> 11) & 1;
  if (fl & 0x1000) c->references = gen_fk(f);
  return c;
}

static void gen_op(fz *f, sq_sop *op) {
  unsigned k = fz_u8(f);
  int kind = k >= 0xfc ? (int)(k & 3) * 40 - 1 : 1 + (int)(k % (SQ_SOP_COUNT - 1)); /* sometimes not a kind */
  sq_sop_init(op, kind, fz_u8(f) == 0xff ? NULL : table_name(f));
  unsigned fl = fz_u8(f);
  op->if_exists = fl & 1;
  switch (kind) {
  case SQ_SOP_CREATE_TABLE: {
    int n = fz_u8(f) == 0xff ? 0 : 1 + fz_below(f, 4);
    sq_scol *cols = fz_alloc(f, sizeof *cols * 5);
    for (int i = 0; i < n; i++) gen_col(f, &cols[i]);
    op->cols = cols;
    op->ncols = n;
    int ni = fz_below(f, 3);
    sq_sindex *ix = fz_alloc(f, sizeof *ix * 2);
    for (int i = 0; i < ni; i++) ix[i] = *gen_index(f);
    op->indexes = ni ? ix : NULL;
    op->nindexes = ni;
    int nk = fz_below(f, 3);
    sq_sfk *fk = fz_alloc(f, sizeof *fk * 2);
    for (int i = 0; i < nk; i++) fk[i] = *gen_fk(f);
    op->fks = nk ? fk : NULL;
    op->nfks = nk;
    break;
  }
  case SQ_SOP_RENAME_TABLE: op->new_name = fl & 2 ? fz_name(f) : "v"; break;
  case SQ_SOP_ADD_COLUMN: op->col = fl & 0x80 ? NULL : gen_col(f, fz_alloc(f, sizeof(sq_scol))); break;
  case SQ_SOP_REMOVE_COLUMN: op->name = col_name(f); break;
  case SQ_SOP_RENAME_COLUMN:
    op->name = col_name(f);
    op->new_name = fl & 2 ? fz_name(f) : "z";
    break;
  case SQ_SOP_CHANGE_COLUMN:
    op->name = col_name(f);
    op->col = fl & 0x80 ? NULL : gen_col(f, fz_alloc(f, sizeof(sq_scol)));
    if (op->col && !(fl & 0x40)) ((sq_scol *)op->col)->name = op->name;
    op->change = fz_below(f, 32);
    op->old_type = fz_below(f, SQ_T_COUNT);
    break;
  case SQ_SOP_ADD_INDEX:
  case SQ_SOP_ADD_UNIQUE:
  case SQ_SOP_ADD_PRIMARY_KEY: op->index = fl & 0x80 ? NULL : gen_index(f); break;
  case SQ_SOP_REMOVE_INDEX: op->name = fl & 0x80 ? NULL : fl & 2 ? fz_name(f) : "t_a"; break;
  case SQ_SOP_DROP_PRIMARY_KEY: op->name = fl & 2 ? fz_name(f) : NULL; break;
  case SQ_SOP_REMOVE_UNIQUE:
    op->name = fl & 2 ? fz_name(f) : NULL;
    if (fl & 4 || !op->name) op->index = gen_index(f);
    break;
  case SQ_SOP_ADD_FOREIGN_KEY: op->fk = fl & 0x80 ? NULL : gen_fk(f); break;
  case SQ_SOP_REMOVE_FOREIGN_KEY:
    op->name = fl & 2 ? fz_name(f) : fl & 8 ? "u_t_id_fkey" : NULL;
    if (fl & 4 || !op->name) op->fk = gen_fk(f);
    break;
  case SQ_SOP_ADD_ENUM_VALUES:
    op->name = col_name(f);
    op->values = gen_names(f, &op->nvalues, enum_value);
    if (!(fl & 0x80)) {
      /* the column after the change: its old values, then the new ones */
      sq_scol *c = gen_col(f, fz_alloc(f, sizeof(sq_scol)));
      c->name = op->name;
      c->type = SQ_T_STRING;
      const char **all = fz_alloc(f, sizeof *all * 8);
      int k = 0;
      all[k++] = "common";
      all[k++] = "rare";
      for (int i = 0; i < op->nvalues; i++) all[k++] = op->values[i];
      if (fl & 0x40 && k > 3) { /* a new value between old ones */
        const char *x = all[k - 1];
        all[k - 1] = all[1];
        all[1] = x;
      }
      c->enum_values = all;
      c->nenum_values = k;
      op->col = c;
    }
    break;
  case SQ_SOP_NOTE: op->note = fl & 2 ? fz_str(f, 40, NULL) : NULL; break;
  default: break;
  }
}

/* ------------------------------------------------------------------ */
/* Static rendering                                                     */
/* ------------------------------------------------------------------ */

static void want_col_literals(int dialect, const sq_scol *c, const lits *got, int comments) {
  if (!c) return;
  if (c->default_kind == SQ_DEFAULT_VALUE && !c->auto_increment && c->default_value.type == SQ_VTEXT &&
      !lits_have(got, c->default_value.u.s.p, c->default_value.u.s.n)) {
    fz_dump("default", c->default_value.u.s.p, c->default_value.u.s.n);
    FZ_CHECK(0, "a text default does not read back from its literal on %s", sq_dialect_name(dialect));
  }
  if (comments && c->comment && dialect != SQ_DIALECT_SQLITE && !lits_have(got, c->comment, strlen(c->comment))) {
    fz_dump("comment", c->comment, strlen(c->comment));
    FZ_CHECK(0, "a comment does not read back from its literal on %s", sq_dialect_name(dialect));
  }
  for (int i = 0; i < c->nenum_values; i++)
    if (!lits_have(got, c->enum_values[i], strlen(c->enum_values[i]))) {
      fz_dump("enum value", c->enum_values[i], strlen(c->enum_values[i]));
      FZ_CHECK(0, "an enum value does not read back from its literal on %s", sq_dialect_name(dialect));
    }
}

/* Whether an op after ops[i] changes or removes the column ops[i] is
 * about (or its table): then the values it added need not be in the
 * final statements. */
static int later_touches(const sq_sop *ops, int n, int i) {
  const char *t = ops[i].table, *c = ops[i].name ? ops[i].name : (ops[i].col ? ops[i].col->name : NULL);
  for (int j = i + 1; j < n; j++) {
    const sq_sop *o = &ops[j];
    if (!o->table || !t || strcmp(o->table, t)) continue;
    if (o->kind == SQ_SOP_DROP_TABLE || o->kind == SQ_SOP_RENAME_TABLE) return 1;
    const char *oc = o->name ? o->name : (o->col ? o->col->name : NULL);
    if ((o->kind == SQ_SOP_REMOVE_COLUMN || o->kind == SQ_SOP_RENAME_COLUMN || o->kind == SQ_SOP_CHANGE_COLUMN ||
         o->kind == SQ_SOP_ADD_ENUM_VALUES) &&
        oc && c && !strcmp(oc, c))
      return 1;
  }
  return 0;
}

static void check_rendered(int dialect, const sq_sop *ops, int n, const sq_sql_list *l) {
  lits got = {0};
  FZ_CHECK(l->n >= 0 && (l->n == 0 || l->sql), "a statement list without statements");
  for (int i = 0; i < l->n; i++) {
    if (getenv("FZ_VERBOSE")) fprintf(stderr, "%s: %s\n", sq_dialect_name(dialect), l->sql[i]);
    check_stmt(dialect, l->sql[i], strlen(l->sql[i]), &got, 0);
  }
  for (int i = 0; i < n; i++) {
    const sq_sop *op = &ops[i];
    if (op->kind == SQ_SOP_CREATE_TABLE)
      for (int k = 0; k < op->ncols; k++) want_col_literals(dialect, &op->cols[k], &got, 1);
    else if (op->kind == SQ_SOP_ADD_COLUMN)
      want_col_literals(dialect, op->col, &got, 1);
    else if (op->kind == SQ_SOP_ADD_ENUM_VALUES && !later_touches(ops, n, i))
      for (int k = 0; k < op->nvalues; k++)
        if (!lits_have(&got, op->values[k], strlen(op->values[k]))) {
          fz_dump("added enum value", op->values[k], strlen(op->values[k]));
          FZ_CHECK(0, "an added enum value does not read back on %s", sq_dialect_name(dialect));
        }
  }
  lits_free(&got);
}

static void render_all(const sq_sop *ops, int n, unsigned flags) {
  for (int d = 0; d < 3; d++) {
    int dialect = fz_dialects[d];
    sq_sql_list l = {0}, again = {0};
    sq_err e;
    int rc = sq_schema_render(ops, n, dialect, flags, &l, &e);
    fz_stat(d, d == 0 ? "render sqlite" : d == 1 ? "render mysql" : "render postgres", rc);
    fz_check_err_values(rc, &e);
    if (rc && getenv("FZ_VERBOSE")) fprintf(stderr, "refused: %s\n", e.msg);
    if (rc) {
      FZ_CHECK(l.n == 0, "a refused render left %d statements", l.n);
      sq_sql_list_free(&l);
      continue;
    }
    check_rendered(dialect, ops, n, &l);
    int rc2 = sq_schema_render(ops, n, dialect, flags, &again, &e);
    FZ_CHECK(rc2 == SQ_OK && again.n == l.n, "rendering twice differs (rc %d, %d vs %d statements)", rc2, again.n,
             l.n);
    for (int i = 0; i < l.n; i++) FZ_CHECK(!strcmp(l.sql[i], again.sql[i]), "rendering twice differs at %d", i);
    sq_sql_list_free(&again);
    sq_sql_list_free(&l);
  }
}

/* ------------------------------------------------------------------ */
/* SQLite, live                                                         */
/* ------------------------------------------------------------------ */

typedef struct snap {
  char *text; /* the schema and every row, as one string */
  size_t len, cap;
  int64_t i;
  int rows;
} snap;

static void snap_add(snap *s, const char *p, size_t n) {
  if (s->len + n + 2 > s->cap) {
    s->cap = (s->len + n + 2) * 2;
    s->text = realloc(s->text, s->cap);
    if (!s->text) abort();
  }
  memcpy(s->text + s->len, p, n);
  s->len += n;
  s->text[s->len++] = '|';
  s->text[s->len] = '\0';
}

static int snap_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  snap *s = ud;
  for (int i = 0; i < ncols; i++) {
    char buf[64];
    switch (v[i].type) {
    case SQ_VNULL: snap_add(s, "NULL", 4); break;
    case SQ_VINT:
      if (s->rows == 0 && i == 0) s->i = v[i].u.i;
      snap_add(s, buf, (size_t)snprintf(buf, sizeof buf, "%lld", (long long)v[i].u.i));
      break;
    case SQ_VFLOAT: snap_add(s, buf, (size_t)snprintf(buf, sizeof buf, "%.17g", v[i].u.f)); break;
    case SQ_VBOOL: snap_add(s, v[i].u.b ? "1" : "0", 1); break;
    case SQ_VTEXT:
    case SQ_VBLOB: snap_add(s, v[i].u.s.p, v[i].u.s.n); break;
    default: snap_add(s, "?", 1); break;
    }
  }
  s->rows++;
  return 0;
}

static int q(sq_conn *c, const char *sql, snap *s) {
  sq_row_sink sink = {s, NULL, snap_row};
  sq_result res;
  sq_err e;
  return sq_conn_exec_native(c, sql, strlen(sql), NULL, 0, s ? &sink : NULL, &res, &e);
}

static int64_t q_int(sq_conn *c, const char *sql) {
  snap s = {0};
  s.i = -1;
  int rc = q(c, sql, &s);
  free(s.text);
  return rc ? -1 : s.i;
}

/* The schema and every row of t and u (when they exist). */
static void take_snap(sq_conn *c, snap *s) {
  memset(s, 0, sizeof *s);
  FZ_CHECK(q(c, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name", s) == 0,
           "reading sqlite_master failed");
  int has_t = 0, has_u = 0;
  snap x = {0};
  q(c, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 't'", &x);
  has_t = x.i > 0;
  x.i = 0;
  q(c, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'u'", &x);
  has_u = x.i > 0;
  free(x.text);
  if (has_t) FZ_CHECK(q(c, "SELECT * FROM \"t\" ORDER BY rowid", s) == 0, "reading t failed");
  if (has_u) FZ_CHECK(q(c, "SELECT * FROM \"u\" ORDER BY rowid", s) == 0, "reading u failed");
}

static const char *const base_sql[] = {
    "CREATE TABLE \"t\" (\"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, \"a\" INTEGER DEFAULT 1, \"b\" "
    "VARCHAR(20) DEFAULT 'it''s', \"c\" TEXT UNIQUE, \"e\" TEXT DEFAULT 'common' CHECK (\"e\" IN ('common', "
    "'rare')))",
    "CREATE INDEX \"t_a\" ON \"t\" (\"a\")",
    "CREATE TABLE \"u\" (\"id\" INTEGER NOT NULL PRIMARY KEY, \"t_id\" INTEGER, \"a\" TEXT, CONSTRAINT "
    "\"u_t_id_fkey\" FOREIGN KEY (\"t_id\") REFERENCES \"t\" (\"id\") ON DELETE CASCADE)",
    "INSERT INTO \"t\" (\"a\", \"b\", \"c\", \"e\") VALUES (1, 'x', 'c1', 'common'), (2, NULL, 'c2', 'rare'), "
    "(NULL, 'z', NULL, 'rare')",
    "INSERT INTO \"u\" (\"id\", \"t_id\", \"a\") VALUES (1, 1, 'p'), (2, 3, NULL)",
    NULL};

static void log_sql(void *ud, const char *sql) {
  /* every statement the apply runs passes the same checks */
  lits *got = ud;
  check_stmt(SQ_DIALECT_SQLITE, sql, strlen(sql), got, 0);
}

static sq_pool *POOL;

static void live(fz *f, const sq_sop *ops, int n, unsigned flags) {
  sq_err e;
  if (!POOL) {
    sq_config cfg;
    sq_config_init(&cfg);
    if (sq_config_parse_url(&cfg, "sqlite::memory:", &e) || sq_config_set(&cfg, "pool.max", "1", &e) ||
        sq_config_finish(&cfg, &e) || sq_pool_open(&cfg, &POOL, &e)) {
      fprintf(stderr, "fuzz_schema: no SQLite pool: %s\n", e.msg);
      abort();
    }
    sq_config_free(&cfg);
  }
  sq_conn *c = NULL;
  FZ_CHECK(sq_pool_acquire(POOL, 10, &c, &e) == SQ_OK, "acquire: %s", e.msg);
  /* a fresh schema: drop what the last input left */
  for (;;) {
    snap s = {0};
    q(c, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' LIMIT 1", &s);
    if (!s.rows) {
      free(s.text);
      break;
    }
    char sql[400];
    s.text[s.len - 1] = '\0';
    char quoted[300];
    size_t o = 0;
    for (size_t k = 0; s.text[k] && o + 3 < sizeof quoted; k++) {
      if (s.text[k] == '"') quoted[o++] = '"';
      quoted[o++] = s.text[k];
    }
    quoted[o] = '\0';
    snprintf(sql, sizeof sql, "DROP TABLE \"%s\"", quoted);
    free(s.text);
    q(c, "PRAGMA foreign_keys = OFF", NULL);
    FZ_CHECK(q(c, sql, NULL) == 0, "dropping the last input's table failed: %s", sql);
    q(c, "PRAGMA foreign_keys = ON", NULL);
  }
  q(c, "DELETE FROM sqlite_sequence", NULL);
  for (int i = 0; base_sql[i]; i++) FZ_CHECK(q(c, base_sql[i], NULL) == 0, "setup failed: %s", base_sql[i]);
  int64_t fk_on = q_int(c, "PRAGMA foreign_keys");

  /* the plan, read against the live tables */
  sq_sql_list l = {0};
  int rc = sq_schema_plan(c, ops, n, flags, &l, &e);
  fz_stat(3, "plan sqlite", rc);
  fz_check_err_values(rc, &e);
  if (rc == SQ_OK) check_rendered(SQ_DIALECT_SQLITE, ops, n, &l);
  else FZ_CHECK(l.n == 0, "a refused plan left %d statements", l.n);
  sq_sql_list_free(&l);

  if (fz_u8(f) & 1) {
    snap before, after;
    take_snap(c, &before);
    lits got = {0};
    rc = sq_schema_apply(c, ops, n, flags, log_sql, &got, &e);
    lits_free(&got);
    fz_stat(4, "apply sqlite", rc);
    if (rc && getenv("FZ_VERBOSE")) fprintf(stderr, "apply refused: %s\n", e.msg);
    if (rc) {
      FZ_CHECK(e.kind == rc && e.msg[0], "apply failed without a kind and message (rc %d)", rc);
      FZ_CHECK(rc != SQ_EINTERNAL && rc != SQ_ENOMEM, "apply: %s: %s", sq_kind_name(rc), e.msg);
      take_snap(c, &after);
      if (before.len != after.len || memcmp(before.text, after.text, before.len)) {
        fz_dump("before", before.text, before.len);
        fz_dump("after", after.text, after.len);
        FZ_CHECK(0, "a failed sq_schema_apply changed the schema or the rows (%s)", e.msg);
      }
      free(after.text);
    } else {
      int renamed_or_dropped = 0;
      for (int i = 0; i < n; i++)
        if (ops[i].kind == SQ_SOP_DROP_TABLE || ops[i].kind == SQ_SOP_RENAME_TABLE) renamed_or_dropped = 1;
      if (!renamed_or_dropped) {
        FZ_CHECK(q_int(c, "SELECT count(*) FROM \"t\"") == 3, "t lost rows");
        FZ_CHECK(q_int(c, "SELECT count(*) FROM \"u\"") == 2, "u lost rows");
      }
      FZ_CHECK(q_int(c, "SELECT count(*) FROM pragma_foreign_key_check") == 0, "a foreign key is broken after apply");
      snap ic = {0};
      FZ_CHECK(q(c, "PRAGMA integrity_check", &ic) == 0 && ic.rows == 1 && !strcmp(ic.text, "ok|"),
               "integrity_check: %s", ic.text ? ic.text : "(nothing)");
      free(ic.text);
    }
    FZ_CHECK(q_int(c, "PRAGMA foreign_keys") == fk_on, "foreign_keys was not restored");
    FZ_CHECK(q_int(c, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%sqorm_new'") == 0,
             "a rebuild's scratch table was left behind");
    free(before.text);
  }
  sq_pool_release(POOL, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int inited;
  if (!inited) {
    sq_err e;
    if (sq_global_init(&e)) abort();
    words_init();
    inited = 1;
  }
  fz f;
  fz_init(&f, data, size);
  unsigned flags = fz_u8(&f);
  int n = 1 + fz_below(&f, MAXOPS);
  sq_sop ops[MAXOPS];
  for (int i = 0; i < n; i++) gen_op(&f, &ops[i]);
  render_all(ops, n, flags & 1 ? SQ_SCHEMA_ONE_ALTER : 0);
  if ((flags & 6) == 6) live(&f, ops, n, flags & 1 ? SQ_SCHEMA_ONE_ALTER : 0); /* a quarter: it is the slow part */
  fz_done(&f);
  return 0;
}
