/*
 * fuzz_render.c - the query renderer (sq_render) driven by random query
 * trees over the fixed models of fuzz_models.h, on every dialect: every
 * query kind, where trees with every operator (nested and / or / not, IN
 * lists, between, like, null tests, raw fragments), attributes with
 * aggregates and aliases, order, limit / offset, group, having, locks,
 * inserts, upserts, updates with increments, deletes, returning.
 *
 * Invariants (for each dialect):
 *   - no crash, no leak; a refusal is kind usage with a message that
 *     shows no value
 *   - every value is a bound parameter: the placeholders in the SQL, read
 *     back with the dialect's lexer, number exactly nparams ($1..$n in
 *     order on PostgreSQL) and no value's bytes appear in the text
 *   - one statement, nothing unterminated, no comment or literal except
 *     inside raw fragments
 *   - identifiers are quoted: every quoted name is a valid identifier and
 *     every bare word is one of sqorm's keywords; a hostile alias and a
 *     model MySQL can't name are refused, never rendered
 *   - rendering is deterministic, and a plain read renders the same SQL
 *     and parameters through sq_render_select (the documented contract:
 *     "otherwise the SQL is what sq_render writes for the same query")
 */
#include "fuzz_models.h"

#define MAX_NODES 64

typedef struct gen {
  fz *f;
  const sq_model *m;
  int nodes;
  int raw;     /* a raw fragment was used */
  int part2;   /* a node sets part 2's fields where sq_render must refuse it */
  int part2_any;
} gen;

static sq_expr *gen_expr(gen *g, int depth) {
  fz *f = g->f;
  sq_expr *e = fz_alloc(f, sizeof *e);
  if (++g->nodes > MAX_NODES || depth > 6) {
    e->op = SQ_OP_IS_NULL;
    e->col = fz_col_of(f, g->m);
    return e;
  }
  unsigned pick = fz_u8(f) % 24;
  switch (pick) {
  case 0: case 1: case 2: { /* and / or */
    e->op = pick == 2 ? SQ_OP_OR : SQ_OP_AND;
    e->nkids = fz_below(f, 5);
    if (e->nkids) {
      e->kids = fz_alloc(f, sizeof *e->kids * (size_t)e->nkids);
      for (int i = 0; i < e->nkids; i++) e->kids[i] = gen_expr(g, depth + 1);
    }
    return e;
  }
  case 3: /* not */
    e->op = SQ_OP_NOT;
    e->nkids = fz_u8(f) < 0xf0 ? 1 : fz_below(f, 3);
    if (e->nkids) {
      e->kids = fz_alloc(f, sizeof *e->kids * (size_t)e->nkids);
      for (int i = 0; i < e->nkids; i++) e->kids[i] = gen_expr(g, depth + 1);
    }
    return e;
  case 4:
    g->raw = 1;
    return fz_raw(f, e);
  case 5: { /* part 2 fields, which sq_render must refuse */
    static sq_operand o;
    o = sq_x_val(sq_int(1));
    e->op = SQ_OP_EQ;
    e->col = 0;
    if (fz_bool(f)) {
      e->lhs = &o;
    } else {
      e->op = SQ_OP_EXISTS + fz_below(f, 3);
    }
    g->part2 = 1;
    return e;
  }
  default:
    break;
  }
  /* a leaf */
  static const int ops[] = {SQ_OP_EQ, SQ_OP_NE, SQ_OP_GT, SQ_OP_GTE, SQ_OP_LT, SQ_OP_LTE, SQ_OP_BETWEEN,
                            SQ_OP_NOT_BETWEEN, SQ_OP_IN, SQ_OP_NOT_IN, SQ_OP_LIKE, SQ_OP_NOT_LIKE, SQ_OP_IS_NULL,
                            SQ_OP_NOT_NULL, 0, 99};
  e->op = ops[fz_u8(f) % (sizeof ops / sizeof *ops)];
  e->col = fz_col_of(f, g->m);
  int want = e->op == SQ_OP_BETWEEN || e->op == SQ_OP_NOT_BETWEEN       ? 2
             : e->op == SQ_OP_IN || e->op == SQ_OP_NOT_IN                ? fz_below(f, 6)
             : e->op == SQ_OP_IS_NULL || e->op == SQ_OP_NOT_NULL         ? 0
                                                                          : 1;
  if (fz_u8(f) >= 0xf4) want = fz_below(f, 4); /* sometimes the wrong count */
  e->nvals = want;
  if (want) {
    sq_value *v = fz_alloc(f, sizeof *v * (size_t)want);
    for (int i = 0; i < want; i++) v[i] = fz_value(f);
    e->vals = v;
  } else if (fz_u8(f) >= 0xfe) {
    e->nvals = 1; /* a count without values */
  }
  return e;
}

static int *gen_cols(fz *f, const sq_model *m, int n) {
  int *c = fz_alloc(f, sizeof *c * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) c[i] = fz_col_of(f, m);
  return c;
}

static int64_t gen_limit(fz *f) {
  unsigned c = fz_u8(f);
  if (c < 0xa0) return -1;
  if (c < 0xf0) return fz_u8(f);
  if (c < 0xf8) return (int64_t)(fz_u64(f) >> 1);
  return -2 - fz_below(f, 3);
}

static void gen_query(fz *f, sq_query *q, gen *g) {
  static const int kinds[] = {SQ_Q_SELECT, SQ_Q_SELECT, SQ_Q_COUNT, SQ_Q_AGGREGATE, SQ_Q_INSERT, SQ_Q_UPSERT,
                              SQ_Q_UPDATE, SQ_Q_DELETE, 0};
  const sq_model *m = fz_models[fz_below(f, FZ_NMODELS)];
  sq_query_init(q, kinds[fz_below(f, (int)(sizeof kinds / sizeof *kinds))], m);
  g->f = f;
  g->m = m;
  unsigned flags = fz_u16(f);
  if (flags & 1) q->where = gen_expr(g, 0);
  int where_part2 = g->part2;
  g->part2 = 0;
  q->paranoid = !(flags & 2);
  if (flags & 4) {
    q->nattrs = fz_below(f, 6);
    sq_attr *a = fz_alloc(f, sizeof *a * (size_t)(q->nattrs ? q->nattrs : 1));
    for (int i = 0; i < q->nattrs; i++) {
      a[i].col = fz_col_of(f, m);
      unsigned k = fz_u8(f);
      a[i].fn = k < 0xa0 ? SQ_FN_NONE : (int)(k % 7);
      if (a[i].fn == SQ_FN_COUNT && fz_bool(f)) a[i].col = -1;
      unsigned al = fz_u8(f);
      a[i].alias = al < 0x80 ? NULL : al < 0xa0 && a[i].col >= 0 && a[i].col < m->ncols ? m->cols[a[i].col].name
                                                                                          : fz_name(f);
    }
    q->attrs = a;
  }
  if (flags & 8) {
    q->norder = fz_below(f, 4);
    sq_order *o = fz_alloc(f, sizeof *o * (size_t)(q->norder ? q->norder : 1));
    for (int i = 0; i < q->norder; i++) {
      o[i].col = fz_col_of(f, m);
      o[i].desc = fz_bool(f);
    }
    q->order = o;
  }
  if (flags & 16) q->limit = gen_limit(f);
  if (flags & 32) q->offset = gen_limit(f);
  if (flags & 64) {
    q->ngroup = fz_below(f, 4);
    q->group = gen_cols(f, m, q->ngroup);
  }
  if (flags & 128) q->having = gen_expr(g, 0);
  /* part 2's fields where sq_render reads them (an insert has no where) */
  int reads = q->kind == SQ_Q_SELECT || q->kind == SQ_Q_COUNT || q->kind == SQ_Q_AGGREGATE;
  int has_where = reads || q->kind == SQ_Q_UPDATE || q->kind == SQ_Q_DELETE;
  g->part2_any = g->part2 || where_part2;
  g->part2 = (where_part2 && has_where) || (g->part2 && reads);
  if (flags & 256) q->lock = fz_below(f, 4);
  q->agg_fn = fz_below(f, 7);
  q->agg_col = fz_u8(f) < 0x20 ? -1 : fz_col_of(f, m);
  if (flags & 512) { /* values */
    q->ncols = fz_below(f, 5);
    q->cols = gen_cols(f, m, q->ncols);
    q->nrows = fz_u8(f) < 0x10 ? 0 : 1 + fz_below(f, 3);
    int nv = q->ncols * q->nrows;
    sq_value *v = fz_alloc(f, sizeof *v * (size_t)(nv ? nv : 1));
    for (int i = 0; i < nv; i++) v[i] = fz_value(f);
    q->values = v;
  }
  if (flags & 1024) {
    q->nincr = fz_below(f, 3);
    q->incr_cols = gen_cols(f, m, q->nincr);
    sq_value *v = fz_alloc(f, sizeof *v * (size_t)(q->nincr ? q->nincr : 1));
    for (int i = 0; i < q->nincr; i++) v[i] = fz_value(f);
    q->incr_values = v;
  }
  if (flags & 2048) {
    q->nupdate = fz_below(f, 3);
    q->update_cols = gen_cols(f, m, q->nupdate);
  }
  if (flags & 4096) {
    q->nconflict = fz_below(f, 3);
    q->conflict_cols = gen_cols(f, m, q->nconflict);
  }
  q->returning = (flags >> 13) & 1;
  q->caps = (flags >> 14) & 1;
}

/* A hostile alias that sq_render would have to write. */
static int bad_alias(const sq_query *q, int dialect) {
  if (q->kind != SQ_Q_SELECT || !q->attrs) return 0;
  for (int i = 0; i < q->nattrs; i++) {
    const sq_attr *a = &q->attrs[i];
    if (!a->alias) continue;
    int plain = a->fn == SQ_FN_NONE;
    if (plain && a->col >= 0 && a->col < q->model->ncols && !strcmp(a->alias, q->model->cols[a->col].name)) continue;
    if (!fz_ident_ok(dialect, a->alias)) return 1;
  }
  return 0;
}

static int same_value(const sq_value *a, const sq_value *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
  case SQ_VNULL: return 1;
  case SQ_VINT: return a->u.i == b->u.i;
  case SQ_VFLOAT: return !memcmp(&a->u.f, &b->u.f, sizeof a->u.f);
  case SQ_VBOOL: return a->u.b == b->u.b;
  default: return a->u.s.n == b->u.s.n && a->u.s.p == b->u.s.p;
  }
}

/* The same read through sq_render_select, when it is one it can express
 * the same way (columns only, no aggregates). */
static void differential(fz *f, const sq_query *q, int dialect, int rc, const sq_sql *out, const sq_err *err) {
  if (q->kind != SQ_Q_SELECT && q->kind != SQ_Q_COUNT) return;
  if (q->kind == SQ_Q_COUNT && q->attrs) return; /* sq_render ignores attrs of a count */
  if (q->attrs)
    for (int i = 0; i < q->nattrs; i++)
      if (q->attrs[i].fn != SQ_FN_NONE) return;
  sq_select s;
  sq_select_init(&s, q->kind, q->model);
  s.where = q->where;
  s.paranoid = q->paranoid;
  if (q->attrs) {
    sq_xattr *xa = fz_alloc(f, sizeof *xa * (size_t)(q->nattrs > 0 ? q->nattrs : 1));
    for (int i = 0; i < q->nattrs; i++) {
      xa[i].x = sq_x_col(NULL, q->attrs[i].col);
      xa[i].alias = q->attrs[i].alias;
    }
    s.attrs = xa;
    s.nattrs = q->nattrs;
  }
  if (q->norder > 0) {
    sq_xorder *xo = fz_alloc(f, sizeof *xo * (size_t)q->norder);
    for (int i = 0; i < q->norder; i++) {
      xo[i].x = sq_x_col(NULL, q->order[i].col);
      xo[i].desc = q->order[i].desc;
    }
    s.order = xo;
    s.norder = q->norder;
  }
  if (q->ngroup > 0) {
    sq_operand *go = fz_alloc(f, sizeof *go * (size_t)q->ngroup);
    for (int i = 0; i < q->ngroup; i++) go[i] = sq_x_col(NULL, q->group[i]);
    s.group = go;
    s.ngroup = q->ngroup;
  }
  s.having = q->having;
  s.limit = q->limit;
  s.offset = q->offset;
  s.lock = q->lock;
  sq_select_sql o2;
  sq_err e2;
  int rc2 = sq_render_select(&s, dialect, &o2, &e2);
  fz_stat(3, "differential", rc2);
  fz_check_err_values(rc2, &e2);
  if (rc == SQ_OK && rc2 == SQ_OK) {
    if (strcmp(out->sql, o2.sql.sql) || out->nparams != o2.sql.nparams) {
      fz_dump("sq_render", out->sql, out->len);
      fz_dump("sq_render_select", o2.sql.sql, o2.sql.len);
      FZ_CHECK(0, "the two renderers write a plain read differently on %s", sq_dialect_name(dialect));
    }
    for (int i = 0; i < out->nparams; i++)
      FZ_CHECK(same_value(&out->params[i], &o2.sql.params[i]), "parameter %d differs between the renderers", i);
  } else if (rc != rc2) {
    fprintf(stderr, "sq_render: %s\nsq_render_select: %s\n", rc ? err->msg : "ok", rc2 ? e2.msg : "ok");
    if (rc == SQ_OK) fz_dump("sq_render", out->sql, out->len);
    if (rc2 == SQ_OK) fz_dump("sq_render_select", o2.sql.sql, o2.sql.len);
    FZ_CHECK(0, "one renderer accepts a plain read the other refuses, on %s", sq_dialect_name(dialect));
  }
  sq_select_sql_free(&o2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_models_init();
  fz f;
  fz_init(&f, data, size);
  sq_query q;
  gen g;
  memset(&g, 0, sizeof g);
  gen_query(&f, &q, &g);
  for (int d = 0; d < 3; d++) {
    int dialect = fz_dialects[d];
    sq_sql out;
    sq_err err;
    int rc = sq_render(&q, dialect, &out, &err);
    fz_stat(d, d == 0 ? "render sqlite" : d == 1 ? "render mysql" : "render postgres", rc);
    fz_check_err_values(rc, &err);
    if (rc == SQ_OK) {
      fz_check_sql(dialect, out.sql, out.len, out.nparams, g.raw ? FZ_RAW : 0, NULL, NULL);
      FZ_CHECK(!g.part2, "sq_render rendered part 2's expression fields instead of refusing them");
      FZ_CHECK(!bad_alias(&q, dialect), "a hostile alias was rendered: %s", out.sql);
      FZ_CHECK(!(dialect == SQ_DIALECT_MYSQL && q.model->mysql_bad), "a name MySQL refuses was rendered: %s",
               out.sql);
      int reads = q.kind == SQ_Q_SELECT || q.kind == SQ_Q_COUNT || q.kind == SQ_Q_AGGREGATE;
      if (reads) FZ_CHECK(out.returns_rows, "a read that returns no rows");
      /* deterministic */
      sq_sql again;
      sq_err e2;
      FZ_CHECK(sq_render(&q, dialect, &again, &e2) == SQ_OK && again.len == out.len &&
                   !memcmp(again.sql, out.sql, out.len) && again.nparams == out.nparams,
               "rendering twice gives different SQL");
      sq_sql_free(&again);
    } else {
      FZ_CHECK(out.sql == NULL && out.params == NULL && out.nparams == 0, "a failed render left output behind");
    }
    if (!g.part2_any) differential(&f, &q, dialect, rc, &out, &err);
    sq_sql_free(&out);
  }
  fz_done(&f);
  return 0;
}
