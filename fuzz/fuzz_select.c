/*
 * fuzz_select.c - the read renderer of part 2 (sq_render_select,
 * sq_render_include_batch, sq_include_batch_max, sq_select_resolve)
 * driven by random select trees over a fixed set of associated models,
 * on every dialect: expressions (column references into joined includes,
 * values, function calls with fuzzed names, count(*), aliases), where
 * trees with every operator, subqueries in IN and EXISTS, op.has,
 * attributes with aliases, distinct, counts, group / having, order,
 * limit / offset, locks, and include trees (to-one joins, to-many
 * batches, required, per-parent limit / order, nested includes, scopes).
 * The associations' names are hostile too (quotes, spaces, backticks).
 *
 * Invariants (for each dialect): as fuzz_render.c - no crash or leak,
 * kind usage on refusal with no value in the message, one statement,
 * every value bound (placeholder count = nparams, $1..$n in order, no
 * value bytes in the text), names quoted, bare words only keywords and
 * the function names the tree used - plus the result column map points
 * at real columns and the batches at real result columns.
 */
#include "fuzz_models.h"

/* ------------------------------------------------------------------ */
/* The models                                                           */
/* ------------------------------------------------------------------ */

enum { M_USER, M_POST, M_PROFILE, M_TAG, M_COUNT };
static sq_model *am[M_COUNT];
static const sq_model *all_models[M_COUNT + 2];
static int nall;

static const sq_assoc *assoc(sq_model *src, int kind, sq_model *dst, const char *as, const char *fk,
                             const char *through, const sq_expr *scope) {
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = as;
  o.foreign_key = fk;
  o.through = through;
  o.scope = scope;
  const sq_assoc *a;
  sq_err e;
  if (sq_model_associate(src, kind, dst, &o, &a, &e)) {
    fprintf(stderr, "fuzz association %s: %s\n", as, e.msg);
    abort();
  }
  return a;
}

static void models_init(void) {
  if (am[0]) return;
  fz_models_init();
  static const fz_col user[] = {{"name", SQ_T_STRING, 40, 0, 0, 0, 0, ""},
                                {"score", SQ_T_DECIMAL, 0, 8, 2, 0, 0, NULL},
                                {"age", SQ_T_INTEGER, 0, 0, 0, 0, 0, NULL}};
  static const fz_col post[] = {{"title", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL},
                                {"n", SQ_T_INTEGER, 0, 0, 0, 0, 0, NULL},
                                {"\"q", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL}};
  static const fz_col profile[] = {{"bio", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL}};
  static const fz_col tag[] = {{"label", SQ_T_STRING, 20, 0, 0, 0, 0, ""}};
  am[M_USER] = fz_model("user", NULL, -1, 1, user, 3);
  am[M_POST] = fz_model("post", NULL, -1, 0, post, 3);
  am[M_PROFILE] = fz_model("pro file", "pro`files", 0, 0, profile, 1);
  am[M_TAG] = fz_model("tag", NULL, 0, 1, tag, 1);
  /* a scope with a bound text value: it must stay a parameter */
  static sq_value sv[1];
  sv[0] = sq_text(FZ_CANARY "scope", FZ_CANARY_LEN + 5);
  static sq_expr scope;
  memset(&scope, 0, sizeof scope);
  scope.op = SQ_OP_NE;
  scope.col = 1; /* posts.title */
  scope.vals = sv;
  scope.nvals = 1;
  assoc(am[M_POST], SQ_ASSOC_BELONGS_TO, am[M_USER], "au\"thor", NULL, NULL, NULL);
  assoc(am[M_USER], SQ_ASSOC_HAS_MANY, am[M_POST], "posts", "au\"thor_id", NULL, &scope);
  assoc(am[M_USER], SQ_ASSOC_HAS_ONE, am[M_PROFILE], "pro file", NULL, NULL, NULL);
  assoc(am[M_PROFILE], SQ_ASSOC_BELONGS_TO, am[M_USER], "owner", "user_id", NULL, NULL);
  assoc(am[M_POST], SQ_ASSOC_BELONGS_TO_MANY, am[M_TAG], "ta`gs", NULL, "post_tags", NULL);
  assoc(am[M_TAG], SQ_ASSOC_BELONGS_TO_MANY, am[M_POST], "posts", NULL, "post_tags", NULL);
  assoc(am[M_USER], SQ_ASSOC_HAS_MANY, am[M_USER], "kids", "parent_id", NULL, NULL);
  assoc(am[M_USER], SQ_ASSOC_BELONGS_TO, am[M_USER], "parent", "parent_id", NULL, NULL);
  for (int i = 0; i < M_COUNT; i++) all_models[nall++] = am[i];
  all_models[nall++] = sq_model_assoc(am[M_POST], 1)->through; /* post_tags */
  all_models[nall++] = fz_models[1];                           /* the hostile one, no associations */
}

/* ------------------------------------------------------------------ */
/* Trees                                                                */
/* ------------------------------------------------------------------ */

#define MAX_NODES 80
#define MAX_INCS 24

typedef struct gen {
  fz *f;
  int nodes;
  int raw;
  fz_words fns;                 /* function names used */
  const sq_include *incs[MAX_INCS]; /* every include built so far, any tree */
  int nincs;
} gen;

static sq_select *gen_select(gen *g, const sq_model *m, int depth, int sub);
static sq_expr *gen_xexpr(gen *g, const sq_model *m, const sq_xattr *attrs, int nattrs, int depth);

static const sq_model *any_model(gen *g) { return all_models[fz_below(g->f, nall)]; }

/* An include in this tree whose target is m's context, or any. */
static const sq_include *some_inc(gen *g) {
  if (!g->nincs) return NULL;
  return g->incs[fz_below(g->f, g->nincs)];
}

static const char *fn_name(gen *g) {
  static const char *const names[] = {"lower", "coalesce", "count", "sum", "max", "abs", "length", "DROP",
                                      "x y", "a;b", "f(", "", "now", "_1", "1x", "select"};
  fz *f = g->f;
  const char *s = fz_u8(f) < 0xe0 ? names[fz_below(f, (int)(sizeof names / sizeof *names))] : fz_name(f);
  fz_words_add(&g->fns, s);
  return s;
}

static void gen_operand(gen *g, sq_operand *o, const sq_model *m, const sq_xattr *attrs, int nattrs, int depth) {
  fz *f = g->f;
  unsigned k = fz_u8(f) % 10;
  if (depth > 3 && k >= 6) k = 0;
  switch (k) {
  case 0: case 1: case 2: {
    const sq_include *inc = fz_u8(f) < 0x40 ? some_inc(g) : NULL;
    const sq_model *t = inc && inc->assoc ? inc->assoc->target : m;
    *o = sq_x_col(inc, fz_col_of(f, t));
    return;
  }
  case 3: case 4:
    *o = sq_x_val(fz_value(f));
    return;
  case 5:
    if (nattrs && fz_bool(f)) *o = sq_x_alias(attrs[fz_below(f, nattrs)].alias);
    else *o = sq_x_alias(fz_name(f));
    return;
  case 6:
    *o = sq_x_star();
    return;
  default: {
    int n = fz_below(f, 4);
    sq_operand *args = fz_alloc(f, sizeof *args * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) gen_operand(g, &args[i], m, attrs, nattrs, depth + 1);
    *o = sq_x_fn(fn_name(g), args, n);
    o->distinct = fz_u8(f) >= 0xe0;
    return;
  }
  }
}

static sq_expr *gen_xexpr(gen *g, const sq_model *m, const sq_xattr *attrs, int nattrs, int depth) {
  fz *f = g->f;
  sq_expr *e = fz_alloc(f, sizeof *e);
  if (++g->nodes > MAX_NODES || depth > 5) {
    e->op = SQ_OP_NOT_NULL;
    e->col = fz_col_of(f, m);
    return e;
  }
  unsigned pick = fz_u8(f) % 28;
  switch (pick) {
  case 0: case 1: case 2:
    e->op = pick == 2 ? SQ_OP_OR : SQ_OP_AND;
    e->nkids = fz_below(f, 4);
    if (e->nkids) {
      e->kids = fz_alloc(f, sizeof *e->kids * (size_t)e->nkids);
      for (int i = 0; i < e->nkids; i++) e->kids[i] = gen_xexpr(g, m, attrs, nattrs, depth + 1);
    }
    return e;
  case 3:
    e->op = SQ_OP_NOT;
    e->nkids = 1;
    e->kids = fz_alloc(f, sizeof *e->kids);
    e->kids[0] = gen_xexpr(g, m, attrs, nattrs, depth + 1);
    return e;
  case 4:
    g->raw = 1;
    return fz_raw(f, e);
  case 5: case 6: /* [not] exists (subquery) */
    e->op = pick == 5 ? SQ_OP_EXISTS : SQ_OP_NOT_EXISTS;
    if (fz_u8(f) < 0xf0) e->sub = gen_select(g, any_model(g), depth + 1, 1);
    return e;
  case 7: case 8: { /* op.has */
    e->op = SQ_OP_HAS;
    int na = sq_model_nassocs(m);
    if (na && fz_u8(f) < 0xe0) {
      e->assoc = sq_model_assoc(m, fz_below(f, na));
    } else {
      const sq_model *o = any_model(g);
      int no = sq_model_nassocs(o);
      e->assoc = no ? sq_model_assoc(o, fz_below(f, no)) : NULL;
    }
    if (e->assoc && fz_bool(f)) {
      e->nkids = 1;
      e->kids = fz_alloc(f, sizeof *e->kids);
      e->kids[0] = gen_xexpr(g, e->assoc->target, NULL, 0, depth + 1);
    }
    return e;
  }
  case 9: case 10: { /* in_ (subquery) */
    e->op = pick == 9 ? SQ_OP_IN : SQ_OP_NOT_IN;
    e->col = fz_col_of(f, m);
    e->sub = gen_select(g, any_model(g), depth + 1, 1);
    return e;
  }
  default:
    break;
  }
  static const int ops[] = {SQ_OP_EQ, SQ_OP_NE, SQ_OP_GT, SQ_OP_GTE, SQ_OP_LT, SQ_OP_LTE, SQ_OP_BETWEEN,
                            SQ_OP_NOT_BETWEEN, SQ_OP_IN, SQ_OP_NOT_IN, SQ_OP_LIKE, SQ_OP_NOT_LIKE, SQ_OP_IS_NULL,
                            SQ_OP_NOT_NULL, 77};
  e->op = ops[fz_u8(f) % (sizeof ops / sizeof *ops)];
  e->col = fz_col_of(f, m);
  int want = e->op == SQ_OP_BETWEEN || e->op == SQ_OP_NOT_BETWEEN ? 2
             : e->op == SQ_OP_IN || e->op == SQ_OP_NOT_IN          ? fz_below(f, 5)
             : e->op == SQ_OP_IS_NULL || e->op == SQ_OP_NOT_NULL   ? 0
                                                                    : 1;
  if (fz_u8(f) >= 0xf4) want = fz_below(f, 4);
  unsigned style = fz_u8(f) % 4; /* 0,1: values; 2: operands on the right; 3: an operand on the left too */
  if (style >= 2) {
    sq_operand *r = fz_alloc(f, sizeof *r * (size_t)(want ? want : 1));
    for (int i = 0; i < want; i++) gen_operand(g, &r[i], m, attrs, nattrs, 1);
    e->rhs = r;
    e->nrhs = want;
    if (style == 3) {
      sq_operand *l = fz_alloc(f, sizeof *l);
      gen_operand(g, l, m, attrs, nattrs, 1);
      e->lhs = l;
    }
  } else if (want) {
    sq_value *v = fz_alloc(f, sizeof *v * (size_t)want);
    for (int i = 0; i < want; i++) v[i] = fz_value(f);
    e->vals = v;
    e->nvals = want;
  }
  return e;
}

static int64_t gen_limit(fz *f) {
  unsigned c = fz_u8(f);
  if (c < 0xa0) return -1;
  if (c < 0xf0) return fz_u8(f);
  if (c < 0xf8) return (int64_t)(fz_u64(f) >> 1);
  return -2;
}

static sq_include *gen_include(gen *g, const sq_model *parent, int depth) {
  fz *f = g->f;
  const sq_assoc *a = NULL;
  int na = sq_model_nassocs(parent);
  if (na && fz_u8(f) < 0xf0) {
    a = sq_model_assoc(parent, fz_below(f, na));
  } else {
    const sq_model *o = all_models[fz_below(f, M_COUNT)];
    int no = sq_model_nassocs(o);
    a = no ? sq_model_assoc(o, fz_below(f, no)) : NULL;
  }
  sq_include *inc = fz_alloc(f, sizeof *inc);
  sq_include_init(inc, a);
  if (!a) return inc;
  if (g->nincs < MAX_INCS) g->incs[g->nincs++] = inc;
  const sq_model *t = a->target;
  unsigned flags = fz_u16(f);
  if (flags & 1) inc->where = gen_xexpr(g, t, NULL, 0, 2);
  if (flags & 2) {
    inc->nattrs = fz_below(f, 4);
    int *c = fz_alloc(f, sizeof *c * (size_t)(inc->nattrs ? inc->nattrs : 1));
    for (int i = 0; i < inc->nattrs; i++) c[i] = fz_col_of(f, t);
    inc->attrs = c;
  }
  if (flags & 4) {
    inc->norder = fz_below(f, 3);
    sq_xorder *o = fz_alloc(f, sizeof *o * (size_t)(inc->norder ? inc->norder : 1));
    for (int i = 0; i < inc->norder; i++) {
      gen_operand(g, &o[i].x, t, NULL, 0, 2);
      o[i].desc = fz_bool(f);
    }
    inc->order = o;
  }
  if (flags & 8) inc->limit = gen_limit(f);
  if (flags & 16) inc->offset = gen_limit(f);
  inc->required = (flags >> 5) & 1;
  inc->paranoid = !((flags >> 6) & 1);
  if ((flags & 128) && depth < 3) {
    inc->nkids = fz_below(f, 3);
    inc->kids = fz_alloc(f, sizeof *inc->kids * (size_t)(inc->nkids ? inc->nkids : 1));
    for (int i = 0; i < inc->nkids; i++) inc->kids[i] = gen_include(g, t, depth + 1);
  }
  return inc;
}

static sq_select *gen_select(gen *g, const sq_model *m, int depth, int sub) {
  fz *f = g->f;
  sq_select *s = fz_alloc(f, sizeof *s);
  sq_select_init(s, fz_u8(f) < 0xd0 ? SQ_Q_SELECT : fz_u8(f) < 0xf0 ? SQ_Q_COUNT : 9, m);
  unsigned flags = fz_u16(f);
  if (depth > 3) flags &= 0x0f;
  if ((flags & 1) && depth < 3) {
    s->nincludes = 1 + fz_below(f, 3);
    s->includes = fz_alloc(f, sizeof *s->includes * (size_t)s->nincludes);
    for (int i = 0; i < s->nincludes; i++) s->includes[i] = gen_include(g, m, 0);
  }
  if (flags & 2) {
    s->nattrs = fz_u8(f) < 0x08 ? 0 : 1 + fz_below(f, 4);
    sq_xattr *a = fz_alloc(f, sizeof *a * (size_t)(s->nattrs ? s->nattrs : 1));
    for (int i = 0; i < s->nattrs; i++) {
      gen_operand(g, &a[i].x, m, NULL, 0, 1);
      a[i].alias = fz_u8(f) < 0x60 ? NULL : fz_name(g->f);
    }
    s->attrs = a;
  }
  if (flags & 4) s->where = gen_xexpr(g, m, s->attrs, s->nattrs, depth + 1);
  if (flags & 8) s->limit = gen_limit(f);
  s->paranoid = !((flags >> 4) & 1);
  s->distinct = (flags >> 5) & 1;
  if (flags & 64) {
    sq_operand *c = fz_alloc(f, sizeof *c);
    gen_operand(g, c, m, s->attrs, s->nattrs, 1);
    s->count_col = c;
  }
  if (flags & 128) {
    s->ngroup = 1 + fz_below(f, 3);
    sq_operand *o = fz_alloc(f, sizeof *o * (size_t)s->ngroup);
    for (int i = 0; i < s->ngroup; i++) gen_operand(g, &o[i], m, s->attrs, s->nattrs, 1);
    s->group = o;
  }
  if (flags & 256) s->having = gen_xexpr(g, m, s->attrs, s->nattrs, depth + 1);
  if (flags & 512) {
    s->norder = 1 + fz_below(f, 3);
    sq_xorder *o = fz_alloc(f, sizeof *o * (size_t)s->norder);
    for (int i = 0; i < s->norder; i++) {
      gen_operand(g, &o[i].x, m, s->attrs, s->nattrs, 1);
      o[i].desc = fz_bool(f);
    }
    s->order = o;
  }
  if (flags & 1024) s->offset = gen_limit(f);
  if (flags & 2048) s->lock = fz_below(f, 4);
  (void)sub;
  return s;
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */
/* ------------------------------------------------------------------ */

static const sq_model *inc_model(const sq_include *inc, int through) {
  if (!inc) return NULL;
  return through ? inc->assoc->through : inc->assoc->target;
}

static void check_out(int dialect, const sq_select_sql *o, const sq_model *base, gen *g, int batch) {
  fz_check_sql(dialect, o->sql.sql, o->sql.len, o->sql.nparams, g->raw ? FZ_RAW : 0, &g->fns, NULL);
  FZ_CHECK(o->sql.returns_rows, "a read that returns no rows");
  FZ_CHECK(o->ncols >= 0 && (o->ncols == 0 || o->cols), "result columns without a map");
  for (int i = 0; i < o->ncols; i++) {
    const sq_rcol *c = &o->cols[i];
    const sq_model *m = c->inc ? inc_model(c->inc, c->through) : base;
    FZ_CHECK(m != NULL, "result column %d has no model", i);
    FZ_CHECK(c->col >= -1 && c->col < m->ncols, "result column %d maps to column %d of a %d-column model", i, c->col,
             m->ncols);
  }
  for (int i = 0; i < o->nbatches; i++)
    FZ_CHECK(o->batches[i].key_col >= 0 && o->batches[i].key_col < o->ncols && o->batches[i].inc,
             "batch %d keyed by result column %d of %d", i, o->batches[i].key_col, o->ncols);
  if (batch) FZ_CHECK(o->parent_col >= 0 && o->parent_col < o->ncols, "a batch without its parent key column");
  else FZ_CHECK(o->parent_col == -1, "parent_col %d outside a batch", o->parent_col);
}

static void run_batches(fz *f, gen *g, int dialect, const sq_select_sql *o, int depth) {
  for (int i = 0; i < o->nbatches && depth < 3; i++) {
    const sq_include *inc = o->batches[i].inc;
    int nk = 1 + fz_below(f, 3);
    sq_value *keys = fz_alloc(f, sizeof *keys * (size_t)nk);
    for (int k = 0; k < nk; k++) keys[k] = fz_value(f);
    sq_select_sql b;
    sq_err e;
    int rc = sq_render_include_batch(inc, dialect, keys, nk, &b, &e);
    fz_stat(4, "include batch", rc);
    fz_check_err_values(rc, &e);
    if (rc == SQ_OK) {
      check_out(dialect, &b, inc->assoc->target, g, 1);
      run_batches(f, g, dialect, &b, depth + 1);
    }
    sq_select_sql_free(&b);
    int max;
    rc = sq_include_batch_max(inc, dialect, &max, &e);
    fz_check_err_values(rc, &e);
    if (rc == SQ_OK) FZ_CHECK(max >= 1 && max <= 65535, "batch max %d", max);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  models_init();
  fz f;
  fz_init(&f, data, size);
  gen g;
  memset(&g, 0, sizeof g);
  g.f = &f;
  const sq_model *m = all_models[fz_below(&f, nall)];
  sq_select *s = gen_select(&g, m, 0, 0);
  for (int d = 0; d < 3; d++) {
    int dialect = fz_dialects[d];
    sq_select_sql out;
    sq_err err;
    int rc = sq_render_select(s, dialect, &out, &err);
    fz_stat(d, d == 0 ? "select sqlite" : d == 1 ? "select mysql" : "select postgres", rc);
    fz_check_err_values(rc, &err);
    if (rc == SQ_OK) {
      check_out(dialect, &out, m, &g, 0);
      FZ_CHECK(!(dialect == SQ_DIALECT_MYSQL && m->mysql_bad), "a name MySQL refuses was rendered");
      sq_select_sql again;
      sq_err e2;
      FZ_CHECK(sq_render_select(s, dialect, &again, &e2) == SQ_OK && again.sql.len == out.sql.len &&
                   !memcmp(again.sql.sql, out.sql.sql, out.sql.len),
               "rendering twice gives different SQL");
      sq_select_sql_free(&again);
      run_batches(&f, &g, dialect, &out, 0);
    } else {
      FZ_CHECK(out.sql.sql == NULL && out.cols == NULL && out.batches == NULL, "a failed render left output behind");
    }
    sq_select_sql_free(&out);
  }
  /* a path through the includes */
  {
    size_t n;
    char *path = fz_str(&f, 80, &n);
    if (fz_bool(&f) && s->nincludes > 0 && s->includes[0]->assoc) {
      const sq_include *i0 = s->includes[0];
      const sq_model *t = i0->assoc->target;
      int c = fz_col_of(&f, t);
      if (c >= 0 && c < t->ncols) {
        size_t k = strlen(i0->assoc->as) + 1 + strlen(t->cols[c].name);
        path = fz_alloc(&f, k + 1);
        snprintf(path, k + 1, "%s.%s", i0->assoc->as, t->cols[c].name);
        n = k;
      }
    }
    const sq_include *inc;
    int col;
    sq_err e;
    int rc = sq_select_resolve(s, path, n, &inc, &col, &e);
    fz_stat(5, "resolve", rc);
    fz_check_err(rc, &e, 0);
    if (rc == SQ_OK) {
      const sq_model *t = inc ? inc->assoc->target : m;
      FZ_CHECK(col >= 0 && col < t->ncols, "resolve gave column %d of %d", col, t->ncols);
    }
  }
  fz_done(&f);
  return 0;
}
