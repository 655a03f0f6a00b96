/*
 * render_select.c - reads with includes and expressions (sq_select), per
 * dialect: to-one includes as joins, to-many includes as batched
 * statements (with a ROW_NUMBER() window for per-parent limits),
 * required to-many includes and op.has as correlated EXISTS, function
 * calls, column references, aliases, group / having / distinct, and
 * subqueries.
 *
 * A statement is rendered level by level. A level is one SELECT: its
 * base table, the tables it joins (a belongs_to_many join model, to-one
 * includes in pre-order) and its WHERE. Each table gets an alias "t<k>"
 * from one counter per statement, in the order tables are met, so the
 * text is deterministic. A level qualifies its columns only when it
 * needs to (joins, or a correlated EXISTS inside it); a plain read
 * renders exactly what sq_render writes for the same query.
 *
 * Leaf comparisons of a column against values, and raw fragments, are
 * written by render.c (sq_render_leaf), so the two renderers can't drift
 * on those; everything part 2 added is written here. Values never enter
 * the text: every operand value is a placeholder, in text order.
 */
#include "model_int.h"
#include "internal.h"
#include "render_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200 /* and/or/not nesting, as render.c */
#define MAX_NEST 32   /* include levels, subqueries and EXISTS inside one another */

typedef struct R {
  sq_rbuf b;
  int dialect, qs, dollar;
  int fail;
  sq_err *err;
  int next_alias;
  int nest;
  /* The top level's result columns and the batches they key. */
  sq_rcol *rc;
  int nrc, caprc;
  sq_batch_ref *br;
  int nbr, capbr;
  int parent_col;
} R;

static void fail_nomem(R *r) {
  if (!r->fail) sq_err_set(r->err, SQ_ENOMEM, "out of memory");
  r->fail = 1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(R *r, const char *fmt, ...) {
  if (r->fail) return;
  r->fail = 1;
  va_list ap;
  va_start(ap, fmt);
  char msg[sizeof r->err->msg];
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sq_err_set(r->err, SQ_EUSAGE, "%s", msg);
}

static void put(R *r, const char *s, size_t n) {
  if (r->fail) return;
  sq_rbuf *b = &r->b;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      fail_nomem(r);
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

#define PUTS(r, lit) put((r), (lit), sizeof(lit) - 1)

static void puts_(R *r, const char *s) { put(r, s, strlen(s)); }

static void ph(R *r, sq_value v) {
  if (r->fail) return;
  sq_rbuf *b = &r->b;
  if (b->np == b->pcap) {
    int cap = b->pcap ? b->pcap * 2 : 16;
    sq_value *pv = realloc(b->pv, sizeof *pv * (size_t)cap);
    if (!pv) {
      fail_nomem(r);
      return;
    }
    b->pv = pv;
    b->pcap = cap;
  }
  b->pv[b->np++] = v;
  if (!r->dollar) {
    put(r, "?", 1);
    return;
  }
  char num[24];
  num[0] = '$';
  put(r, num, 1 + sq_fmt_i64(b->np, num + 1));
}

/* A name that isn't from a model (an alias), checked and quoted. */
static void quote(R *r, const char *s) {
  char q[2 * SQ_IDENT_MAX + 3];
  if (r->fail) return;
  if (!s) {
    fail(r, "a name is missing");
    return;
  }
  if (sq_quote_ident(r->dialect, s, strlen(s), q, sizeof q, r->err)) {
    r->fail = 1;
    return;
  }
  puts_(r, q);
}

static void table(R *r, const sq_model *m) { put(r, m->qtable[r->qs].p, m->qtable[r->qs].n); }

/* A function name is written bare, so it must be a plain word. */
static int fn_name_ok(const char *s) {
  if (!s || !s[0]) return 0;
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(n > 0 && c >= '0' && c <= '9')) return 0;
  }
  return n <= SQ_IDENT_MAX;
}

static int model_ok(R *r, const sq_model *m) {
  if (r->fail) return 0;
  if (!m) {
    fail(r, "no model");
    return 0;
  }
  if (!m->finished) {
    fail(r, "model '%s' is not finished", m->name);
    return 0;
  }
  if (r->dialect == SQ_DIALECT_MYSQL && m->mysql_bad) {
    char shown[80];
    sq_show(m->mysql_bad, strlen(m->mysql_bad), shown, sizeof shown);
    fail(r, "name '%s' of model '%s' can't be used on MySQL (it ends in a space or holds a character outside the BMP)",
         shown, m->name);
    return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* Levels and their tables                                              */
/* ------------------------------------------------------------------ */

typedef struct node {
  const sq_model *m;
  const sq_include *inc; /* the include this table loads; NULL for a level's base */
  int through;           /* a belongs_to_many join model */
  int parent;            /* node joined to, -1 for the base */
  int alias;
  int inner;
  char q[24];            /* "\"t12\"." */
  size_t qn;
} node;

typedef struct level {
  node *nodes;
  int n, cap;
  int base;              /* the node bare columns of the level's where refer to */
  int through;           /* the join model node, or -1 */
  int qual;
  const sq_xattr *attrs; /* for aliases in order / group / having */
  int nattrs;
  sq_include *const *top; /* includes hanging on the base */
  int ntop;
} level;

static void level_free(level *L) { free(L->nodes); }

static int add_node(R *r, level *L, const sq_model *m, const sq_include *inc, int through, int parent) {
  if (r->fail) return -1;
  if (L->n == L->cap) {
    int cap = L->cap ? L->cap * 2 : 8;
    node *v = realloc(L->nodes, sizeof *v * (size_t)cap);
    if (!v) {
      fail_nomem(r);
      return -1;
    }
    L->nodes = v;
    L->cap = cap;
  }
  node *x = &L->nodes[L->n];
  memset(x, 0, sizeof *x);
  x->m = m;
  x->inc = inc;
  x->through = through;
  x->parent = parent;
  x->alias = r->next_alias++;
  char a[16], q[24];
  snprintf(a, sizeof a, "t%d", x->alias);
  sq_quote_ident(r->dialect, a, strlen(a), q, sizeof q, r->err); /* a plain word: can't fail */
  x->qn = (size_t)snprintf(x->q, sizeof x->q, "%s.", q);
  return L->n++;
}

/* The includes hanging on node k (the level's base: L->top). */
static sq_include *const *kids_of(const level *L, int k, int *n) {
  const node *x = &L->nodes[k];
  if (x->through) {
    *n = 0;
    return NULL;
  }
  if (k == L->base) {
    *n = L->ntop;
    return L->top;
  }
  *n = x->inc ? x->inc->nkids : 0;
  return x->inc ? x->inc->kids : NULL;
}

/* A to-one include is kept only when it matches if it is required, or
 * anything under it in the same statement is (a required to-many kid
 * filters through EXISTS on its row). */
static int eff_required(const sq_include *inc, int depth) {
  if (inc->required) return 1;
  if (sq_assoc_to_many(inc->assoc) || depth > MAX_NEST) return 0;
  for (int i = 0; i < inc->nkids; i++)
    if (inc->kids[i] && inc->kids[i]->assoc && eff_required(inc->kids[i], depth + 1)) return 1;
  return 0;
}

/* Checks an include tree before anything is rendered, so a bad name deep
 * in a to-many branch is refused before the first statement runs. */
static void validate_tree(R *r, const sq_model *parent, sq_include *const *incs, int n, int depth) {
  if (r->fail) return;
  if (n < 0 || (n > 0 && !incs)) {
    fail(r, "include: bad include list");
    return;
  }
  if (n > 0 && depth > MAX_NEST) {
    fail(r, "include: nested more than %d levels deep", MAX_NEST);
    return;
  }
  for (int i = 0; i < n && !r->fail; i++) {
    const sq_include *inc = incs[i];
    if (!inc || !inc->assoc) {
      fail(r, "include: an include without an association");
      return;
    }
    const sq_assoc *a = inc->assoc;
    if (a->source != parent) {
      fail(r, "include: '%s' is not an association of model '%s'", a->as, parent->name);
      return;
    }
    if (!model_ok(r, a->target) || (a->through && !model_ok(r, a->through))) return;
    int many = sq_assoc_to_many(a);
    if (!many && (inc->limit >= 0 || inc->offset >= 0 || inc->norder > 0)) {
      fail(r, "include '%s': limit, offset and order apply to to-many includes (order the parents by '%s.<column>')",
           a->as, a->as);
      return;
    }
    if (inc->limit < -1 || inc->offset < -1) {
      fail(r, "include '%s': limit and offset must be non-negative integers", a->as);
      return;
    }
    if (inc->norder < 0 || (inc->norder > 0 && !inc->order) || inc->nattrs < 0 ||
        (inc->nattrs > 0 && !inc->attrs) || inc->nkids < 0) {
      fail(r, "include '%s': a count without its list", a->as);
      return;
    }
    if (inc->attrs && inc->nattrs == 0) {
      fail(r, "include '%s': attributes: the list is empty", a->as);
      return;
    }
    for (int k = 0; k < inc->nattrs; k++)
      if (inc->attrs[k] < 0 || inc->attrs[k] >= a->target->ncols) {
        fail(r, "include '%s': attributes: column index %d is not a column of model '%s'", a->as, inc->attrs[k],
             a->target->name);
        return;
      }
    for (int j = 0; j < i; j++)
      if (incs[j]->assoc == a) {
        fail(r, "include '%s' appears twice under model '%s'", a->as, parent->name);
        return;
      }
    validate_tree(r, a->target, inc->kids, inc->nkids, depth + 1);
  }
}

/* Adds the to-one includes under node k (recursively) as joined tables.
 * Inside an EXISTS (exists_only) only those that filter are joined. */
static void add_joins(R *r, level *L, int k, int exists_only, int depth) {
  int n;
  sq_include *const *incs = kids_of(L, k, &n);
  for (int i = 0; i < n && !r->fail; i++) {
    const sq_include *inc = incs[i];
    if (sq_assoc_to_many(inc->assoc)) continue;
    int req = eff_required(inc, depth);
    if (exists_only && !req) continue;
    int j = add_node(r, L, inc->assoc->target, inc, 0, k);
    if (j < 0) return;
    L->nodes[j].inner = req;
    add_joins(r, L, j, exists_only, depth + 1);
  }
}

/* A to-one required makes the joins above it INNER too. */
static void propagate_inner(level *L) {
  for (int i = L->n - 1; i >= 0; i--)
    if (L->nodes[i].inner && L->nodes[i].parent >= 0 && !L->nodes[L->nodes[i].parent].through &&
        L->nodes[i].parent != L->base)
      L->nodes[L->nodes[i].parent].inner = 1;
}

/* 1 when e holds op.has outside subqueries: its EXISTS correlates with
 * the level, whose columns must then be qualified. */
static int has_has(const sq_expr *e, int depth) {
  if (!e || depth > MAX_DEPTH) return 0;
  if (e->op == SQ_OP_HAS) return 1;
  if (e->op == SQ_OP_AND || e->op == SQ_OP_OR || e->op == SQ_OP_NOT)
    for (int i = 0; i < e->nkids && e->kids; i++)
      if (has_has(e->kids[i], depth + 1)) return 1;
  return 0;
}

static int any_required_many(const level *L) {
  for (int k = 0; k < L->n; k++) {
    if (L->nodes[k].through) continue;
    int n;
    sq_include *const *incs = kids_of(L, k, &n);
    for (int i = 0; i < n; i++)
      if (sq_assoc_to_many(incs[i]->assoc) && incs[i]->required) return 1;
  }
  return 0;
}

/* The node holding include inc's table in this level, or -1. */
static int find_node(const level *L, const sq_include *inc) {
  for (int k = 0; k < L->n; k++)
    if (!L->nodes[k].through && L->nodes[k].inc == inc && k != L->base) return k;
  return -1;
}

static void colref(R *r, const level *L, int k, int c) {
  const node *x = &L->nodes[k];
  if (L->qual) put(r, x->q, x->qn);
  put(r, x->m->qcol[r->qs][c].p, x->m->qcol[r->qs][c].n);
}

static int col_ok(R *r, const sq_model *m, int c, const char *where) {
  if (c >= 0 && c < m->ncols) return 1;
  fail(r, "%s: column index %d is not a column of model '%s'", where, c, m->name);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Expressions                                                          */
/* ------------------------------------------------------------------ */

/* How an alias operand is written: refused (where), by name (order), or
 * replaced by the expression it names (group, having: PostgreSQL knows
 * no output aliases there). */
enum { OM_WHERE = 0, OM_ORDER, OM_SUBST };

static void expr(R *r, const level *L, int k, const sq_expr *e, int parent, int mode, int depth);
static void subselect(R *r, const sq_select *s, int one_col);

/* A DECIMAL column on SQLite (text there): compared, ordered, grouped,
 * min'ed and max'ed under sqorm's exact collation, summed and averaged by
 * sqorm's exact functions, as render.c does. */
static int lite_dec_operand(R *r, const level *L, int k, const sq_operand *o) {
  if (r->dialect != SQ_DIALECT_SQLITE || !o || o->kind != SQ_X_COL) return 0;
  int j = o->inc ? find_node(L, o->inc) : k;
  if (j < 0) return 0;
  const sq_model *m = L->nodes[j].m;
  return o->col >= 0 && o->col < m->ncols && m->cols[o->col].type == SQ_T_DECIMAL;
}

static void dec_collate(R *r, const level *L, int k, const sq_operand *o) {
  if (!r->fail && lite_dec_operand(r, L, k, o)) PUTS(r, " COLLATE " SQ_DEC_COLLATION);
}

static void operand(R *r, const level *L, int k, const sq_operand *o, int mode, int depth) {
  if (r->fail) return;
  if (!o) {
    fail(r, "expression: a missing operand");
    return;
  }
  if (depth > MAX_DEPTH) {
    fail(r, "expression: nested more than %d levels deep", MAX_DEPTH);
    return;
  }
  switch (o->kind) {
  case SQ_X_COL: {
    int j = k;
    if (o->inc) {
      j = find_node(L, o->inc);
      if (j < 0) {
        fail(r, "column of include '%s': it is not joined in this statement (only to-one includes are; a to-many "
                "include is loaded by its own statement)",
             o->inc->assoc ? o->inc->assoc->as : "?");
        return;
      }
    }
    if (!col_ok(r, L->nodes[j].m, o->col, "column reference")) return;
    colref(r, L, j, o->col);
    return;
  }
  case SQ_X_VAL:
    ph(r, o->val);
    return;
  case SQ_X_FN: {
    if (!fn_name_ok(o->name)) {
      char shown[80];
      sq_show(o->name ? o->name : "", o->name ? strlen(o->name) : 0, shown, sizeof shown);
      fail(r, "invalid function name '%s': a function name is letters, digits and '_' (at most %d bytes)", shown,
           SQ_IDENT_MAX);
      return;
    }
    if (o->nargs < 0 || (o->nargs > 0 && !o->args)) {
      fail(r, "function %s: bad argument list", o->name);
      return;
    }
    int dec = o->nargs == 1 && !o->distinct && lite_dec_operand(r, L, k, &o->args[0]);
    if (dec && !strcmp(o->name, "sum")) PUTS(r, SQ_DEC_SUM);
    else if (dec && !strcmp(o->name, "avg")) PUTS(r, SQ_DEC_AVG);
    else puts_(r, o->name);
    int dec_cmp = dec && (!strcmp(o->name, "min") || !strcmp(o->name, "max"));
    put(r, "(", 1);
    if (o->distinct) PUTS(r, "DISTINCT ");
    for (int i = 0; i < o->nargs; i++) {
      if (i) PUTS(r, ", ");
      if (o->args[i].kind == SQ_X_STAR) {
        if (o->nargs != 1 || o->distinct) {
          fail(r, "function %s: '*' must be its only argument", o->name);
          return;
        }
        put(r, "*", 1);
      } else {
        operand(r, L, k, &o->args[i], mode, depth + 1);
        if (dec_cmp) dec_collate(r, L, k, &o->args[i]);
      }
    }
    put(r, ")", 1);
    return;
  }
  case SQ_X_STAR:
    fail(r, "'*' is only an argument of count");
    return;
  case SQ_X_ALIAS: {
    const sq_xattr *at = NULL;
    for (int i = 0; o->name && i < L->nattrs; i++)
      if (L->attrs[i].alias && !strcmp(L->attrs[i].alias, o->name)) at = &L->attrs[i];
    if (!at) {
      char shown[80];
      sq_show(o->name ? o->name : "", o->name ? strlen(o->name) : 0, shown, sizeof shown);
      fail(r, "'%s' is not an alias of the attributes", shown);
      return;
    }
    if (mode == OM_WHERE) {
      fail(r, "alias '%s' can be used in order, group and having, not in where", o->name);
      return;
    }
    if (mode == OM_ORDER) {
      quote(r, o->name);
      return;
    }
    if (at->x.kind == SQ_X_ALIAS) {
      fail(r, "alias '%s' names another alias", o->name);
      return;
    }
    operand(r, L, k, &at->x, mode, depth + 1);
    return;
  }
  default:
    fail(r, "expression: unknown operand kind %d", o->kind);
  }
}

static const char *cmp_sql(int op) {
  switch (op) {
  case SQ_OP_EQ: return " = ";
  case SQ_OP_NE: return " <> ";
  case SQ_OP_GT: return " > ";
  case SQ_OP_GTE: return " >= ";
  case SQ_OP_LT: return " < ";
  case SQ_OP_LTE: return " <= ";
  case SQ_OP_LIKE: return " LIKE ";
  case SQ_OP_NOT_LIKE: return " NOT LIKE ";
  default: return NULL;
  }
}

/* The i-th right operand: rhs[i], or vals[i] as a value. */
static const sq_operand *rhs_at(const sq_expr *e, int i, sq_operand *tmp) {
  if (e->rhs) return &e->rhs[i];
  *tmp = sq_x_val(e->vals[i]);
  return tmp;
}

/* A comparison part 2 wrote: a left operand that isn't a plain column,
 * right operands that aren't plain values, or a subquery. */
static void compare(R *r, const level *L, int k, const sq_expr *e, int mode, int depth) {
  sq_operand lc, t1, t2;
  const sq_operand *lhs = e->lhs;
  if (!lhs) {
    lc = sq_x_col(NULL, e->col);
    lhs = &lc;
  }
  if ((e->rhs && (e->nrhs < 0 || (e->vals && e->nvals))) || (!e->rhs && e->nrhs) || e->nvals < 0 ||
      (!e->rhs && e->nvals > 0 && !e->vals)) {
    fail(r, "where: bad operand list (give values or operands, not both)");
    return;
  }
  int n = e->rhs ? e->nrhs : e->nvals;
  if (e->sub && e->op != SQ_OP_IN && e->op != SQ_OP_NOT_IN) {
    fail(r, "where: a subquery goes with in_, not_in or exists");
    return;
  }
  const char *s = cmp_sql(e->op);
  if (s) {
    if (n != 1) {
      fail(r, "where: operator %d takes 1 operand, got %d", e->op, n);
      return;
    }
    const sq_operand *v = rhs_at(e, 0, &t1);
    if (v->kind == SQ_X_VAL && v->val.type == SQ_VNULL) {
      operand(r, L, k, lhs, mode, depth);
      if (e->op == SQ_OP_EQ) PUTS(r, " IS NULL");
      else if (e->op == SQ_OP_NE) PUTS(r, " IS NOT NULL");
      else fail(r, "where: a comparison with null; use is_null/not_null");
      return;
    }
    operand(r, L, k, lhs, mode, depth);
    dec_collate(r, L, k, lhs);
    puts_(r, s);
    operand(r, L, k, v, mode, depth);
    return;
  }
  switch (e->op) {
  case SQ_OP_BETWEEN:
  case SQ_OP_NOT_BETWEEN:
    if (n != 2) {
      fail(r, "where: between takes 2 operands, got %d", n);
      return;
    }
    operand(r, L, k, lhs, mode, depth);
    if (e->op == SQ_OP_BETWEEN) PUTS(r, " BETWEEN ");
    else PUTS(r, " NOT BETWEEN ");
    operand(r, L, k, rhs_at(e, 0, &t1), mode, depth);
    PUTS(r, " AND ");
    operand(r, L, k, rhs_at(e, 1, &t2), mode, depth);
    return;
  case SQ_OP_IN:
  case SQ_OP_NOT_IN:
    if (e->sub) {
      if (n) {
        fail(r, "where: in_ takes a subquery or a list, not both");
        return;
      }
      operand(r, L, k, lhs, mode, depth);
      if (e->op == SQ_OP_IN) PUTS(r, " IN (");
      else PUTS(r, " NOT IN (");
      subselect(r, e->sub, 1);
      put(r, ")", 1);
      return;
    }
    if (n == 0) {
      if (e->op == SQ_OP_IN) PUTS(r, "1=0");
      else PUTS(r, "1=1");
      return;
    }
    operand(r, L, k, lhs, mode, depth);
    if (e->op == SQ_OP_IN) PUTS(r, " IN (");
    else PUTS(r, " NOT IN (");
    for (int i = 0; i < n; i++) {
      if (i) PUTS(r, ", ");
      operand(r, L, k, rhs_at(e, i, &t1), mode, depth);
    }
    put(r, ")", 1);
    return;
  case SQ_OP_IS_NULL:
  case SQ_OP_NOT_NULL:
    operand(r, L, k, lhs, mode, depth);
    if (e->op == SQ_OP_IS_NULL) PUTS(r, " IS NULL");
    else PUTS(r, " IS NOT NULL");
    return;
  default:
    fail(r, "where: unknown operator %d", e->op);
  }
}

static void exists_body(R *r, const level *outer, int k, const sq_assoc *a, const sq_expr *where,
                        const sq_include *inc);

static void expr(R *r, const level *L, int k, const sq_expr *e, int parent, int mode, int depth) {
  if (r->fail) return;
  if (!e) {
    fail(r, "where: empty expression");
    return;
  }
  if (depth > MAX_DEPTH) {
    fail(r, "where: nested more than %d levels deep", MAX_DEPTH);
    return;
  }
  switch (e->op) {
  case SQ_OP_AND:
  case SQ_OP_OR: {
    if (e->nkids < 0 || (e->nkids > 0 && !e->kids)) {
      fail(r, "where: and/or without operands");
      return;
    }
    if (e->nkids == 0) {
      if (e->op == SQ_OP_AND) PUTS(r, "1=1");
      else PUTS(r, "1=0");
      return;
    }
    if (e->nkids == 1) {
      expr(r, L, k, e->kids[0], parent, mode, depth + 1);
      return;
    }
    int paren = parent && parent != e->op;
    if (paren) put(r, "(", 1);
    for (int i = 0; i < e->nkids; i++) {
      if (i) {
        if (e->op == SQ_OP_AND) PUTS(r, " AND ");
        else PUTS(r, " OR ");
      }
      expr(r, L, k, e->kids[i], e->op, mode, depth + 1);
    }
    if (paren) put(r, ")", 1);
    return;
  }
  case SQ_OP_NOT:
    if (e->nkids != 1 || !e->kids) {
      fail(r, "where: not takes exactly one operand");
      return;
    }
    PUTS(r, "NOT (");
    expr(r, L, k, e->kids[0], 0, mode, depth + 1);
    put(r, ")", 1);
    return;
  case SQ_OP_EXISTS:
  case SQ_OP_NOT_EXISTS:
    if (!e->sub) {
      fail(r, "where: exists needs a subquery");
      return;
    }
    if (e->op == SQ_OP_NOT_EXISTS) PUTS(r, "NOT ");
    PUTS(r, "EXISTS (");
    subselect(r, e->sub, 0);
    put(r, ")", 1);
    return;
  case SQ_OP_HAS: {
    const sq_assoc *a = e->assoc;
    if (!a) {
      fail(r, "op.has: no association");
      return;
    }
    if (a->source != L->nodes[k].m) {
      fail(r, "op.has: '%s' is not an association of model '%s'", a->as, L->nodes[k].m->name);
      return;
    }
    if (e->nkids < 0 || e->nkids > 1 || (e->nkids && !e->kids)) {
      fail(r, "op.has takes at most one where");
      return;
    }
    exists_body(r, L, k, a, e->nkids ? e->kids[0] : NULL, NULL);
    return;
  }
  default:
    break;
  }
  if (!e->lhs && !e->rhs && !e->sub && !e->assoc) {
    /* A plain leaf: render.c writes it, qualified by this table's alias. */
    const node *x = &L->nodes[k];
    if (sq_render_leaf(&r->b, x->m, r->dialect, L->qual ? x->q : NULL, x->qn, e, r->err)) r->fail = 1;
    return;
  }
  compare(r, L, k, e, mode, depth);
}

/* ------------------------------------------------------------------ */
/* WHERE / ON parts                                                     */
/* ------------------------------------------------------------------ */

enum { P_EXPR = 1, P_DELETED, P_EXISTS, P_KEYS, P_JOIN, P_CORR };

typedef struct part {
  int kind;
  int node;               /* the table the part is about */
  const sq_expr *e;       /* P_EXPR */
  const sq_include *inc;  /* P_EXISTS */
  int other, ocol, col;   /* P_JOIN: node.col = other.ocol */
  const level *ol;        /* P_CORR: node.col = ol.nodes[other].ocol */
} part;

typedef struct parts {
  part *v;
  int n, cap;
} parts;

static void add_part(R *r, parts *ps, part p) {
  if (r->fail) return;
  if (ps->n == ps->cap) {
    int cap = ps->cap ? ps->cap * 2 : 8;
    part *v = realloc(ps->v, sizeof *v * (size_t)cap);
    if (!v) {
      fail_nomem(r);
      return;
    }
    ps->v = v;
    ps->cap = cap;
  }
  ps->v[ps->n++] = p;
}

/* Batch keys, rendered in place of P_KEYS. */
typedef struct keyset {
  const sq_value *keys;
  int n;
} keyset;

/* Writes the parts joined by AND; an OR among several parts gets
 * parentheses. */
static void render_parts(R *r, const level *L, const parts *ps, const keyset *ks, int depth) {
  int parent = ps->n > 1 ? SQ_OP_AND : 0;
  for (int i = 0; i < ps->n && !r->fail; i++) {
    const part *p = &ps->v[i];
    if (i) PUTS(r, " AND ");
    switch (p->kind) {
    case P_EXPR:
      expr(r, L, p->node, p->e, parent, OM_WHERE, depth);
      break;
    case P_DELETED:
      colref(r, L, p->node, L->nodes[p->node].m->roles[SQ_ROLE_DELETED_AT]);
      PUTS(r, " IS NULL");
      break;
    case P_EXISTS:
      exists_body(r, L, p->node, p->inc->assoc, p->inc->where, p->inc);
      break;
    case P_KEYS:
      colref(r, L, p->node, p->col);
      PUTS(r, " IN (");
      for (int j = 0; j < ks->n; j++) {
        if (j) PUTS(r, ", ");
        ph(r, ks->keys[j]);
      }
      put(r, ")", 1);
      break;
    case P_JOIN:
      colref(r, L, p->node, p->col);
      PUTS(r, " = ");
      colref(r, L, p->other, p->ocol);
      break;
    case P_CORR:
      colref(r, L, p->node, p->col);
      PUTS(r, " = ");
      colref(r, p->ol, p->other, p->ocol);
      break;
    }
  }
}

static int paranoid_on(const sq_model *m, int flag) { return flag && m->roles[SQ_ROLE_DELETED_AT] >= 0; }

/* The filters of an include's own table: scope, where, soft delete. */
static void include_filters(R *r, parts *ps, int k, const sq_assoc *a, const sq_expr *where, int paranoid) {
  if (a->scope) add_part(r, ps, (part){P_EXPR, k, a->scope, NULL, 0, 0, 0, NULL});
  if (where) add_part(r, ps, (part){P_EXPR, k, where, NULL, 0, 0, 0, NULL});
  if (paranoid_on(a->target, paranoid)) add_part(r, ps, (part){P_DELETED, k, NULL, NULL, 0, 0, 0, NULL});
}

/* EXISTS for every required to-many include hanging on the level's
 * tables. */
static void required_exists(R *r, const level *L, parts *ps) {
  for (int k = 0; k < L->n; k++) {
    if (L->nodes[k].through) continue;
    int n;
    sq_include *const *incs = kids_of(L, k, &n);
    for (int i = 0; i < n; i++)
      if (sq_assoc_to_many(incs[i]->assoc) && incs[i]->required)
        add_part(r, ps, (part){P_EXISTS, k, NULL, incs[i], 0, 0, 0, NULL});
  }
}

/* " LEFT JOIN t AS tk ON ..." for every to-one include of the level. */
static void joins(R *r, const level *L, int depth) {
  for (int k = 0; k < L->n && !r->fail; k++) {
    const node *x = &L->nodes[k];
    if (k == L->base || x->through) continue;
    const sq_include *inc = x->inc;
    const sq_assoc *a = inc->assoc;
    if (x->inner) PUTS(r, " INNER JOIN ");
    else PUTS(r, " LEFT JOIN ");
    table(r, x->m);
    PUTS(r, " AS ");
    put(r, x->q, x->qn - 1);
    PUTS(r, " ON ");
    parts ps = {0};
    add_part(r, &ps, (part){P_JOIN, k, NULL, NULL, x->parent, a->source_col, a->target_col, NULL});
    include_filters(r, &ps, k, a, inc->where, inc->paranoid);
    render_parts(r, L, &ps, NULL, depth);
    free(ps.v);
  }
}

/*
 * EXISTS (SELECT 1 FROM target [JOIN through] [required to-one joins]
 * WHERE <correlation> AND scope AND where ...): op.has (inc NULL) or a
 * required to-many include (inc, with its nested required includes).
 */
static void exists_body(R *r, const level *outer, int k, const sq_assoc *a, const sq_expr *where,
                        const sq_include *inc) {
  if (r->fail) return;
  if (!outer->qual) {
    fail(r, "internal: a correlated EXISTS in an unqualified statement");
    return;
  }
  if (++r->nest > MAX_NEST) {
    fail(r, "op.has, includes and subqueries nested more than %d levels deep", MAX_NEST);
    return;
  }
  if (!model_ok(r, a->target) || (a->through && !model_ok(r, a->through))) return;
  level S;
  memset(&S, 0, sizeof S);
  S.qual = 1;
  S.through = -1;
  S.base = add_node(r, &S, a->target, inc, 0, -1);
  if (a->kind == SQ_ASSOC_BELONGS_TO_MANY) S.through = add_node(r, &S, a->through, inc, 1, S.base);
  if (inc) {
    S.top = inc->kids;
    S.ntop = inc->nkids;
    add_joins(r, &S, S.base, 1, 0);
    propagate_inner(&S);
  }
  if (r->fail) {
    level_free(&S);
    return;
  }
  PUTS(r, "EXISTS (SELECT 1 FROM ");
  table(r, a->target);
  PUTS(r, " AS ");
  put(r, S.nodes[S.base].q, S.nodes[S.base].qn - 1);
  parts ps = {0};
  if (S.through >= 0) {
    PUTS(r, " INNER JOIN ");
    table(r, a->through);
    PUTS(r, " AS ");
    put(r, S.nodes[S.through].q, S.nodes[S.through].qn - 1);
    PUTS(r, " ON ");
    parts on = {0};
    add_part(r, &on, (part){P_JOIN, S.through, NULL, NULL, S.base, a->target_col, a->through_target_col, NULL});
    render_parts(r, &S, &on, NULL, 0);
    free(on.v);
    add_part(r, &ps, (part){P_CORR, S.through, NULL, NULL, k, a->source_col, a->through_source_col, outer});
  } else {
    add_part(r, &ps, (part){P_CORR, S.base, NULL, NULL, k, a->source_col, a->target_col, outer});
  }
  joins(r, &S, 0);
  include_filters(r, &ps, S.base, a, where, inc ? inc->paranoid : 1);
  if (S.through >= 0 && paranoid_on(a->through, 1))
    add_part(r, &ps, (part){P_DELETED, S.through, NULL, NULL, 0, 0, 0, NULL});
  if (inc) required_exists(r, &S, &ps);
  PUTS(r, " WHERE ");
  render_parts(r, &S, &ps, NULL, 0);
  put(r, ")", 1);
  free(ps.v);
  level_free(&S);
  r->nest--;
}

/* ------------------------------------------------------------------ */
/* Result columns                                                       */
/* ------------------------------------------------------------------ */

typedef struct ocol {
  int node;
  int col;               /* -1: an expression */
  const sq_xattr *attr;
  int attr_idx;
  int key_only;
  int named;             /* name must be written (AS) */
  char name[SQ_IDENT_MAX + 1];
} ocol;

typedef struct ocols {
  ocol *v;
  int n, cap;
} ocols;

static int add_ocol(R *r, ocols *os, ocol c) {
  if (r->fail) return -1;
  if (os->n == os->cap) {
    int cap = os->cap ? os->cap * 2 : 16;
    ocol *v = realloc(os->v, sizeof *v * (size_t)cap);
    if (!v) {
      fail_nomem(r);
      return -1;
    }
    os->v = v;
    os->cap = cap;
  }
  os->v[os->n] = c;
  return os->n++;
}

static int find_ocol(const ocols *os, int k, int c) {
  for (int i = 0; i < os->n; i++)
    if (os->v[i].node == k && os->v[i].col == c) return i;
  return -1;
}

static int is_agg_name(const char *s) {
  return !strcmp(s, "count") || !strcmp(s, "sum") || !strcmp(s, "min") || !strcmp(s, "max") || !strcmp(s, "avg");
}

/* The result name of a joined column: "<path>.<col>", the path being the
 * include names from the level's base; "t<k>.<col>" / "t<k>.c<i>" when
 * that passes the identifier limit. */
static void joined_name(const level *L, int k, int c, char out[SQ_IDENT_MAX + 1]) {
  char buf[1024];
  size_t o = sizeof buf - 1;
  buf[o] = '\0';
  const sq_model *m = L->nodes[k].m;
  const char *cn = m->cols[c].name;
  size_t cl = strlen(cn);
  int ok = o >= cl;
  if (ok) {
    o -= cl;
    memcpy(buf + o, cn, cl);
  }
  if (L->nodes[k].through) {
    const char *tn = m->name;
    size_t tl = strlen(tn);
    if (ok && o >= tl + 1) {
      buf[--o] = '.';
      o -= tl;
      memcpy(buf + o, tn, tl);
    } else {
      ok = 0;
    }
  } else {
    for (int j = k; ok && j >= 0 && j != L->base; j = L->nodes[j].parent) {
      const char *as = L->nodes[j].inc->assoc->as;
      size_t al = strlen(as);
      if (o < al + 1) {
        ok = 0;
        break;
      }
      buf[--o] = '.';
      o -= al;
      memcpy(buf + o, as, al);
    }
  }
  if (ok && sizeof buf - 1 - o <= SQ_IDENT_MAX) {
    memcpy(out, buf + o, sizeof buf - o);
    return;
  }
  char alt[160];
  int n = snprintf(alt, sizeof alt, "t%d.%s", L->nodes[k].alias, cn);
  if (n > 0 && n <= SQ_IDENT_MAX) memcpy(out, alt, (size_t)n + 1);
  else snprintf(out, SQ_IDENT_MAX + 1, "t%d.c%d", L->nodes[k].alias, c);
}

static void set_col_name(ocol *c, const char *s) {
  size_t n = strlen(s);
  if (n > SQ_IDENT_MAX) n = SQ_IDENT_MAX;
  memcpy(c->name, s, n);
  c->name[n] = '\0';
}

/* Adds column c of node k unless it is there already; returns its index. */
static int need_col(R *r, const level *L, ocols *os, int k, int c, int key_only) {
  int i = find_ocol(os, k, c);
  if (i >= 0) return i;
  ocol x;
  memset(&x, 0, sizeof x);
  x.node = k;
  x.col = c;
  x.attr_idx = -1;
  x.key_only = key_only;
  if (k == L->base) {
    set_col_name(&x, L->nodes[k].m->cols[c].name);
  } else {
    joined_name(L, k, c, x.name);
    x.named = 1;
  }
  return add_ocol(r, os, x);
}

static void add_batch(R *r, const sq_include *inc, int key_col) {
  if (r->fail) return;
  if (r->nbr == r->capbr) {
    int cap = r->capbr ? r->capbr * 2 : 4;
    sq_batch_ref *v = realloc(r->br, sizeof *v * (size_t)cap);
    if (!v) {
      fail_nomem(r);
      return;
    }
    r->br = v;
    r->capbr = cap;
  }
  r->br[r->nbr].inc = inc;
  r->br[r->nbr].key_col = key_col;
  r->nbr++;
}

/* The keys a node's rows need: its primary key, and the source key of
 * each to-many include hanging on it (recorded as a batch to run). */
static void node_keys(R *r, const level *L, ocols *os, int k, int collect) {
  const sq_model *m = L->nodes[k].m;
  for (int i = 0; i < m->npk; i++) need_col(r, L, os, k, m->pk[i], 1);
  int n;
  sq_include *const *incs = kids_of(L, k, &n);
  for (int i = 0; i < n; i++) {
    if (!sq_assoc_to_many(incs[i]->assoc)) continue;
    int j = need_col(r, L, os, k, incs[i]->assoc->source_col, 1);
    if (collect && j >= 0) add_batch(r, incs[i], j);
  }
}

/* Every column of node k, or the include's attributes. */
static void all_cols(R *r, const level *L, ocols *os, int k, const int *attrs, int nattrs) {
  const sq_model *m = L->nodes[k].m;
  if (attrs) {
    for (int i = 0; i < nattrs; i++) need_col(r, L, os, k, attrs[i], 0);
  } else {
    for (int c = 0; c < m->ncols; c++) need_col(r, L, os, k, c, 0);
  }
}

/* ... then the keys stitching needs. */
static void node_cols(R *r, const level *L, ocols *os, int k, const int *attrs, int nattrs, int collect) {
  all_cols(r, L, os, k, attrs, nattrs);
  node_keys(r, L, os, k, collect);
}

/* The base's attributes as the select asked for them. */
static void attr_cols(R *r, const level *L, ocols *os, const sq_xattr *attrs, int nattrs) {
  for (int i = 0; i < nattrs && !r->fail; i++) {
    const sq_xattr *a = &attrs[i];
    ocol x;
    memset(&x, 0, sizeof x);
    x.attr = a;
    x.attr_idx = i;
    x.col = -1;
    x.node = L->base;
    if (a->x.kind == SQ_X_ALIAS) {
      fail(r, "attributes: an attribute can't be an alias ('%s')", a->x.name ? a->x.name : "");
      return;
    }
    if (a->x.kind == SQ_X_COL) {
      int j = a->x.inc ? find_node(L, a->x.inc) : L->base;
      if (j < 0) {
        fail(r, "attributes: include '%s' is not joined in this statement", a->x.inc->assoc ? a->x.inc->assoc->as : "?");
        return;
      }
      if (!col_ok(r, L->nodes[j].m, a->x.col, "attributes")) return;
      x.node = j;
      x.col = a->x.col;
    }
    if (a->alias) {
      set_col_name(&x, a->alias);
      x.named = x.col < 0 || x.node != L->base || strcmp(a->alias, L->nodes[x.node].m->cols[x.col].name);
    } else if (x.col >= 0 && x.node == L->base) {
      set_col_name(&x, L->nodes[x.node].m->cols[x.col].name);
    } else if (x.col >= 0) {
      joined_name(L, x.node, x.col, x.name);
      x.named = 1;
    } else if (a->x.kind == SQ_X_FN && fn_name_ok(a->x.name)) {
      set_col_name(&x, a->x.name);
      x.named = 1;
    } else {
      fail(r, "attributes: expression %d needs an alias", i + 1);
      return;
    }
    add_ocol(r, os, x);
  }
}

/* Checks an attribute alias: an identifier, without '.' when the read
 * has includes (joined columns are named "<include>.<column>"). */
static void check_aliases(R *r, const sq_xattr *attrs, int nattrs, int includes) {
  for (int i = 0; i < nattrs && !r->fail; i++) {
    const char *al = attrs[i].alias;
    if (!al) continue;
    if (sq_ident_check("alias", al, strlen(al), r->err)) {
      r->fail = 1;
      return;
    }
    if (includes && strchr(al, '.')) fail(r, "alias '%s': with includes an alias can't hold '.'", al);
  }
}

/* Writes one result column: its expression and, when named, AS name. */
static void write_ocol(R *r, const level *L, const ocol *c, int force_name) {
  if (c->attr && c->col < 0) {
    operand(r, L, L->base, &c->attr->x, OM_WHERE, 0);
  } else {
    colref(r, L, c->node, c->col);
  }
  if (!c->named && !force_name) return;
  PUTS(r, " AS ");
  if (!force_name && c->attr && !c->attr->alias && c->col < 0 && is_agg_name(c->name)) puts_(r, c->name);
  else quote(r, c->name);
}

/* Stores the result column map of the top level. */
static void keep_rcols(R *r, const level *L, const ocols *os, const sq_include *batch_inc) {
  if (r->fail) return;
  r->rc = calloc((size_t)(os->n ? os->n : 1), sizeof *r->rc);
  if (!r->rc) {
    fail_nomem(r);
    return;
  }
  r->nrc = os->n;
  for (int i = 0; i < os->n; i++) {
    const ocol *c = &os->v[i];
    const node *x = &L->nodes[c->node];
    sq_rcol *d = &r->rc[i];
    d->inc = c->node == L->base ? NULL : x->through ? batch_inc : x->inc;
    d->through = x->through;
    d->col = c->col;
    d->attr = c->attr_idx;
    d->key_only = c->key_only;
  }
}

/* ------------------------------------------------------------------ */
/* Statements                                                           */
/* ------------------------------------------------------------------ */

static void from(R *r, const level *L) {
  const node *b = &L->nodes[L->base];
  PUTS(r, " FROM ");
  table(r, b->m);
  if (L->qual) {
    PUTS(r, " AS ");
    put(r, b->q, b->qn - 1);
  }
}

static void order_list(R *r, const level *L, const sq_xorder *ord, int n) {
  for (int i = 0; i < n && !r->fail; i++) {
    if (i) PUTS(r, ", ");
    if (ord[i].x.kind == SQ_X_COL && ord[i].x.inc && find_node(L, ord[i].x.inc) < 0) {
      const sq_assoc *a = ord[i].x.inc->assoc;
      fail(r, "order: include '%s' is not joined in this statement (a to-many include orders its rows with its own "
              "order)",
           a ? a->as : "?");
      return;
    }
    operand(r, L, L->base, &ord[i].x, OM_ORDER, 0);
    dec_collate(r, L, L->base, &ord[i].x);
    if (ord[i].desc) PUTS(r, " DESC");
    else PUTS(r, " ASC");
  }
}

/* GROUP BY, HAVING, ORDER BY, LIMIT/OFFSET and the lock, as render.c. */
static void tail(R *r, const level *L, const sq_select *s) {
  if (s->ngroup > 0) {
    PUTS(r, " GROUP BY ");
    for (int i = 0; i < s->ngroup && !r->fail; i++) {
      if (i) PUTS(r, ", ");
      operand(r, L, L->base, &s->group[i], OM_SUBST, 0);
      dec_collate(r, L, L->base, &s->group[i]);
    }
  }
  if (s->having) {
    PUTS(r, " HAVING ");
    expr(r, L, L->base, s->having, 0, OM_SUBST, 0);
  }
  if (s->norder > 0) {
    PUTS(r, " ORDER BY ");
    order_list(r, L, s->order, s->norder);
  }
  if (s->limit >= 0) {
    PUTS(r, " LIMIT ");
    ph(r, sq_int(s->limit));
  } else if (s->offset >= 0) {
    if (r->dialect == SQ_DIALECT_SQLITE) PUTS(r, " LIMIT -1");
    else if (r->dialect == SQ_DIALECT_MYSQL) PUTS(r, " LIMIT 18446744073709551615");
  }
  if (s->offset >= 0) {
    PUTS(r, " OFFSET ");
    ph(r, sq_int(s->offset));
  }
  int of = L->qual && L->n > 1 && r->dialect == SQ_DIALECT_POSTGRES;
  if (s->lock == SQ_LOCK_UPDATE && r->dialect != SQ_DIALECT_SQLITE) {
    PUTS(r, " FOR UPDATE");
    if (of) {
      PUTS(r, " OF ");
      put(r, L->nodes[L->base].q, L->nodes[L->base].qn - 1);
    }
  } else if (s->lock == SQ_LOCK_SHARE) {
    if (r->dialect == SQ_DIALECT_POSTGRES) {
      PUTS(r, " FOR SHARE");
      if (of) {
        PUTS(r, " OF ");
        put(r, L->nodes[L->base].q, L->nodes[L->base].qn - 1);
      }
    } else if (r->dialect == SQ_DIALECT_MYSQL) {
      PUTS(r, " LOCK IN SHARE MODE");
    }
  }
}

/* Checks the parts of a select every level shares. */
static int select_ok(R *r, const sq_select *s, int top) {
  if (r->fail) return 0;
  if (!s) {
    fail(r, "no select");
    return 0;
  }
  if (!model_ok(r, s->model)) return 0;
  if (s->kind != SQ_Q_SELECT && s->kind != SQ_Q_COUNT) {
    fail(r, "sq_render_select: kind must be SQ_Q_SELECT or SQ_Q_COUNT, not %d", s->kind);
    return 0;
  }
  if (!top && s->kind != SQ_Q_SELECT) {
    fail(r, "a subquery selects rows (attributes), it doesn't count");
    return 0;
  }
  if (s->limit < -1 || s->offset < -1) {
    fail(r, "limit and offset must be non-negative integers");
    return 0;
  }
  if (s->lock < SQ_LOCK_NONE || s->lock > SQ_LOCK_SHARE) {
    fail(r, "unknown lock mode %d", s->lock);
    return 0;
  }
  if (s->lock && (s->kind != SQ_Q_SELECT || !top)) {
    fail(r, "lock applies to row queries (find_*), not to counts or subqueries");
    return 0;
  }
  if (s->ngroup < 0 || (s->ngroup > 0 && !s->group) || s->norder < 0 || (s->norder > 0 && !s->order) ||
      s->nattrs < 0 || (s->nattrs > 0 && !s->attrs) || s->nincludes < 0 ||
      (s->nincludes > 0 && !s->includes)) {
    fail(r, "sq_render_select: a count without its list");
    return 0;
  }
  if (s->attrs && s->nattrs == 0) {
    fail(r, "attributes: the list is empty");
    return 0;
  }
  if (s->nincludes > 0 && s->kind == SQ_Q_SELECT && (s->distinct || s->ngroup > 0)) {
    fail(r, "include can't be combined with distinct or group");
    return 0;
  }
  validate_tree(r, s->model, s->includes, s->nincludes, 0);
  check_aliases(r, s->attrs, s->nattrs, s->nincludes > 0);
  return !r->fail;
}

static int has_has_one(const level *L) {
  for (int k = 0; k < L->n; k++)
    if (k != L->base && !L->nodes[k].through && L->nodes[k].inc->assoc->kind == SQ_ASSOC_HAS_ONE) return 1;
  return 0;
}

/* The level of a select: base, joins, qualification. */
static void plan_level(R *r, level *L, const sq_select *s) {
  memset(L, 0, sizeof *L);
  L->through = -1;
  L->base = add_node(r, L, s->model, NULL, 0, -1);
  L->top = s->includes;
  L->ntop = s->nincludes;
  L->attrs = s->attrs;
  L->nattrs = s->nattrs;
  if (r->fail) return;
  add_joins(r, L, L->base, 0, 0);
  propagate_inner(L);
  L->qual = L->n > 1 || any_required_many(L) || has_has(s->where, 0) || has_has(s->having, 0);
}

/* WHERE of a select level: where, required EXISTS, soft delete. */
static void level_where(R *r, const level *L, const sq_select *s) {
  parts ps = {0};
  if (s->where) add_part(r, &ps, (part){P_EXPR, L->base, s->where, NULL, 0, 0, 0, NULL});
  required_exists(r, L, &ps);
  if (paranoid_on(s->model, s->paranoid)) add_part(r, &ps, (part){P_DELETED, L->base, NULL, NULL, 0, 0, 0, NULL});
  if (ps.n) {
    PUTS(r, " WHERE ");
    render_parts(r, L, &ps, NULL, 0);
  }
  free(ps.v);
}

/* A subquery: IN (SELECT one column ...) or EXISTS (SELECT ...). */
static void subselect(R *r, const sq_select *s, int one_col) {
  if (r->fail) return;
  if (++r->nest > MAX_NEST) {
    fail(r, "subqueries nested more than %d levels deep", MAX_NEST);
    return;
  }
  if (!select_ok(r, s, 0)) return;
  for (int i = 0; i < s->nincludes; i++)
    if (sq_assoc_to_many(s->includes[i]->assoc) && !s->includes[i]->required) {
      fail(r, "a subquery can't load the to-many include '%s' (only required, as a filter)",
           s->includes[i]->assoc->as);
      return;
    }
  if (one_col && s->nattrs != 1) {
    fail(r, "a subquery inside in_ / not_in selects exactly one attribute");
    return;
  }
  level L;
  plan_level(r, &L, s);
  ocols os = {0};
  if (s->attrs) attr_cols(r, &L, &os, s->attrs, s->nattrs);
  else all_cols(r, &L, &os, L.base, NULL, 0);
  PUTS(r, "SELECT ");
  if (s->distinct) PUTS(r, "DISTINCT ");
  for (int i = 0; i < os.n && !r->fail; i++) {
    if (i) PUTS(r, ", ");
    write_ocol(r, &L, &os.v[i], 0);
  }
  from(r, &L);
  joins(r, &L, 0);
  level_where(r, &L, s);
  tail(r, &L, s);
  free(os.v);
  level_free(&L);
  r->nest--;
}

/* The top-level rows statement. */
static void rows_stmt(R *r, const sq_select *s) {
  level L;
  plan_level(r, &L, s);
  ocols os = {0};
  if (s->attrs) attr_cols(r, &L, &os, s->attrs, s->nattrs);
  else all_cols(r, &L, &os, L.base, NULL, 0);
  if (s->nincludes > 0) {
    node_keys(r, &L, &os, L.base, 1);
    for (int k = 0; k < L.n; k++)
      if (k != L.base) node_cols(r, &L, &os, k, L.nodes[k].inc->attrs, L.nodes[k].inc->nattrs, 1);
  }
  PUTS(r, "SELECT ");
  if (s->distinct) PUTS(r, "DISTINCT ");
  for (int i = 0; i < os.n && !r->fail; i++) {
    if (i) PUTS(r, ", ");
    write_ocol(r, &L, &os.v[i], 0);
  }
  from(r, &L);
  joins(r, &L, 0);
  level_where(r, &L, s);
  tail(r, &L, s);
  keep_rcols(r, &L, &os, NULL);
  free(os.v);
  level_free(&L);
}

/* The top-level count. */
static void count_stmt(R *r, const sq_select *s) {
  level L;
  plan_level(r, &L, s);
  const sq_model *m = s->model;
  int distinct_pk = (s->distinct && !s->count_col) || has_has_one(&L);
  ocols os = {0};
  if (distinct_pk && m->npk > 1) {
    /* count(DISTINCT a, b) isn't portable: count the distinct keys. */
    if (s->ngroup > 0) {
      fail(r, "count: model '%s' has a composite primary key; distinct counts can't be grouped", m->name);
    } else {
      PUTS(r, "SELECT count(*) AS count FROM (SELECT DISTINCT ");
      for (int i = 0; i < m->npk; i++) {
        if (i) PUTS(r, ", ");
        colref(r, &L, L.base, m->pk[i]);
      }
      from(r, &L);
      joins(r, &L, 0);
      level_where(r, &L, s);
      PUTS(r, ") AS ");
      quote(r, "__sq_c");
    }
  } else {
    PUTS(r, "SELECT ");
    if (s->ngroup > 0) {
      if (s->attrs) {
        attr_cols(r, &L, &os, s->attrs, s->nattrs);
        for (int i = 0; i < os.n && !r->fail; i++) {
          write_ocol(r, &L, &os.v[i], 0);
          PUTS(r, ", ");
        }
      } else {
        for (int i = 0; i < s->ngroup && !r->fail; i++) {
          const sq_operand *g = &s->group[i];
          ocol x;
          memset(&x, 0, sizeof x);
          x.node = L.base;
          x.col = g->kind == SQ_X_COL && !g->inc ? g->col : -1;
          x.attr_idx = -1;
          add_ocol(r, &os, x);
          operand(r, &L, L.base, g, OM_SUBST, 0);
          PUTS(r, ", ");
        }
      }
    } else if (s->attrs) {
      fail(r, "count: attributes go with group (the columns of each group's row)");
    }
    ocol cnt;
    memset(&cnt, 0, sizeof cnt);
    cnt.node = L.base;
    cnt.col = -1;
    cnt.attr_idx = -1;
    add_ocol(r, &os, cnt);
    if (distinct_pk) {
      PUTS(r, "count(DISTINCT ");
      colref(r, &L, L.base, m->pk[0]);
      put(r, ")", 1);
    } else if (s->count_col) {
      PUTS(r, "count(");
      if (s->distinct) PUTS(r, "DISTINCT ");
      if (s->count_col->kind == SQ_X_STAR) {
        if (s->distinct) fail(r, "count: distinct needs a column, not '*'");
        put(r, "*", 1);
      } else {
        operand(r, &L, L.base, s->count_col, OM_WHERE, 0);
      }
      put(r, ")", 1);
    } else {
      PUTS(r, "count(*)");
    }
    PUTS(r, " AS count");
    from(r, &L);
    joins(r, &L, 0);
    level_where(r, &L, s);
    tail(r, &L, s);
  }
  keep_rcols(r, &L, &os, NULL);
  free(os.v);
  level_free(&L);
}

/* ------------------------------------------------------------------ */
/* Batches of to-many includes                                          */
/* ------------------------------------------------------------------ */

static void batch_stmt(R *r, const sq_include *inc, const keyset *ks) {
  const sq_assoc *a = inc->assoc;
  level L;
  memset(&L, 0, sizeof L);
  L.through = -1;
  L.base = add_node(r, &L, a->target, NULL, 0, -1);
  if (a->kind == SQ_ASSOC_BELONGS_TO_MANY) L.through = add_node(r, &L, a->through, inc, 1, L.base);
  L.top = inc->kids;
  L.ntop = inc->nkids;
  if (r->fail) {
    level_free(&L);
    return;
  }
  add_joins(r, &L, L.base, 0, 0);
  propagate_inner(&L);
  L.qual = L.n > 1 || any_required_many(&L) || has_has(inc->where, 0) || has_has(a->scope, 0);
  int window = inc->limit >= 0 || inc->offset >= 0;

  /* Columns: the target's, its keys, the parent key, the joined ones. */
  ocols os = {0};
  node_cols(r, &L, &os, L.base, inc->attrs, inc->nattrs, 1);
  int pk = L.through >= 0 ? need_col(r, &L, &os, L.through, a->through_source_col, 1)
                          : need_col(r, &L, &os, L.base, a->target_col, 1);
  for (int k = 0; k < L.n; k++)
    if (k != L.base && !L.nodes[k].through) node_cols(r, &L, &os, k, L.nodes[k].inc->attrs, L.nodes[k].inc->nattrs, 1);
  r->parent_col = pk;
  /* The window's derived table needs distinct column names. */
  for (int i = 0; window && i < os.n && !r->fail; i++) {
    if (!strcmp(os.v[i].name, "__sq_rn")) fail(r, "include '%s': a column is named '__sq_rn'", a->as);
    for (int j = 0; j < i && !r->fail; j++)
      if (!strcmp(os.v[i].name, os.v[j].name))
        fail(r, "include '%s': two result columns are named '%s'", a->as, os.v[i].name);
  }

  if (window) {
    PUTS(r, "SELECT ");
    for (int i = 0; i < os.n && !r->fail; i++) {
      if (i) PUTS(r, ", ");
      quote(r, os.v[i].name);
    }
    PUTS(r, " FROM (");
  }
  PUTS(r, "SELECT ");
  for (int i = 0; i < os.n && !r->fail; i++) {
    if (i) PUTS(r, ", ");
    write_ocol(r, &L, &os.v[i], window);
  }
  if (window && !r->fail) {
    PUTS(r, ", ROW_NUMBER() OVER (PARTITION BY ");
    colref(r, &L, os.v[pk].node, os.v[pk].col);
    PUTS(r, " ORDER BY ");
    order_list(r, &L, inc->order, inc->norder);
    const sq_model *tm = a->target;
    for (int i = 0; i < tm->npk; i++) {
      int dup = 0;
      for (int j = 0; j < inc->norder; j++)
        if (inc->order[j].x.kind == SQ_X_COL && !inc->order[j].x.inc && inc->order[j].x.col == tm->pk[i]) dup = 1;
      if (dup) continue;
      if (inc->norder > 0 || i > 0) PUTS(r, ", ");
      colref(r, &L, L.base, tm->pk[i]);
      PUTS(r, " ASC");
    }
    PUTS(r, ") AS ");
    quote(r, "__sq_rn");
  }
  PUTS(r, " FROM ");
  table(r, a->target);
  if (L.qual) {
    PUTS(r, " AS ");
    put(r, L.nodes[L.base].q, L.nodes[L.base].qn - 1);
  }
  if (L.through >= 0) {
    PUTS(r, " INNER JOIN ");
    table(r, a->through);
    PUTS(r, " AS ");
    put(r, L.nodes[L.through].q, L.nodes[L.through].qn - 1);
    PUTS(r, " ON ");
    parts on = {0};
    add_part(r, &on, (part){P_JOIN, L.through, NULL, NULL, L.base, a->target_col, a->through_target_col, NULL});
    render_parts(r, &L, &on, NULL, 0);
    free(on.v);
  }
  joins(r, &L, 0);
  parts ps = {0};
  if (L.through >= 0) add_part(r, &ps, (part){P_KEYS, L.through, NULL, NULL, 0, 0, a->through_source_col, NULL});
  else add_part(r, &ps, (part){P_KEYS, L.base, NULL, NULL, 0, 0, a->target_col, NULL});
  include_filters(r, &ps, L.base, a, inc->where, inc->paranoid);
  if (L.through >= 0 && paranoid_on(a->through, 1))
    add_part(r, &ps, (part){P_DELETED, L.through, NULL, NULL, 0, 0, 0, NULL});
  required_exists(r, &L, &ps);
  PUTS(r, " WHERE ");
  render_parts(r, &L, &ps, ks, 0);
  free(ps.v);
  if (window) {
    PUTS(r, ") AS ");
    quote(r, "__sq_w");
    PUTS(r, " WHERE ");
    if (inc->offset > 0 || (inc->offset == 0 && inc->limit < 0)) {
      quote(r, "__sq_rn");
      PUTS(r, " > ");
      ph(r, sq_int(inc->offset));
      if (inc->limit >= 0) PUTS(r, " AND ");
    }
    if (inc->limit >= 0) {
      int64_t off = inc->offset > 0 ? inc->offset : 0;
      if (inc->limit > INT64_MAX - off) {
        fail(r, "include '%s': limit + offset overflows", a->as);
      } else {
        quote(r, "__sq_rn");
        PUTS(r, " <= ");
        ph(r, sq_int(off + inc->limit));
      }
    }
    PUTS(r, " ORDER BY ");
    if (pk >= 0 && !r->fail) quote(r, os.v[pk].name);
    PUTS(r, ", ");
    quote(r, "__sq_rn");
  } else if (inc->norder > 0) {
    PUTS(r, " ORDER BY ");
    order_list(r, &L, inc->order, inc->norder);
  }
  keep_rcols(r, &L, &os, inc);
  free(os.v);
  level_free(&L);
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                  */
/* ------------------------------------------------------------------ */

void sq_select_init(sq_select *s, int kind, const sq_model *m) {
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->model = m;
  s->paranoid = 1;
  s->limit = s->offset = -1;
}

void sq_include_init(sq_include *inc, const sq_assoc *a) {
  memset(inc, 0, sizeof *inc);
  inc->assoc = a;
  inc->limit = inc->offset = -1;
  inc->paranoid = 1;
}

void sq_select_sql_free(sq_select_sql *s) {
  if (!s) return;
  sq_sql_free(&s->sql);
  free(s->cols);
  free(s->batches);
  memset(s, 0, sizeof *s);
  s->parent_col = -1;
}

static int start(R *r, int dialect, sq_select_sql *out, sq_err *err) {
  memset(r, 0, sizeof *r);
  memset(out, 0, sizeof *out);
  out->parent_col = -1;
  r->err = err;
  r->dialect = dialect;
  r->parent_col = -1;
  sq_err_clear(err);
  if (dialect != SQ_DIALECT_SQLITE && dialect != SQ_DIALECT_MYSQL && dialect != SQ_DIALECT_POSTGRES)
    return sq_err_set(err, SQ_EUSAGE, "sq_render_select: unknown dialect %d", dialect);
  r->qs = dialect == SQ_DIALECT_MYSQL ? SQ_QSTYLE_BACKTICK : SQ_QSTYLE_DOUBLE;
  r->dollar = dialect == SQ_DIALECT_POSTGRES;
  return SQ_OK;
}

static int finish(R *r, sq_select_sql *out) {
  if (!r->fail && r->b.np > sq_dialect_max_params(r->dialect))
    fail(r, "the statement needs %d bound values; %s allows at most %d (fewer keys per batch, or split the IN list)",
         r->b.np, sq_dialect_name(r->dialect), sq_dialect_max_params(r->dialect));
  if (!r->fail && !r->b.p) put(r, "", 0); /* put keeps room for the NUL */
  if (r->fail) {
    free(r->b.p);
    free(r->b.pv);
    free(r->rc);
    free(r->br);
    memset(out, 0, sizeof *out);
    out->parent_col = -1;
    return r->err->kind ? r->err->kind : SQ_EUSAGE;
  }
  r->b.p[r->b.n] = '\0';
  out->sql.sql = r->b.p;
  out->sql.len = r->b.n;
  out->sql.params = r->b.pv;
  out->sql.nparams = r->b.np;
  out->sql.returns_rows = 1;
  out->cols = r->rc;
  out->ncols = r->nrc;
  out->batches = r->br;
  out->nbatches = r->nbr;
  out->parent_col = r->parent_col;
  return SQ_OK;
}

int sq_render_select(const sq_select *s, int dialect, sq_select_sql *out, sq_err *err) {
  R r;
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_render_select: no output");
  int rc = start(&r, dialect, out, err);
  if (rc) return rc;
  if (!s) return sq_err_set(err, SQ_EUSAGE, "sq_render_select: no select");
  if (select_ok(&r, s, 1)) {
    if (s->kind == SQ_Q_SELECT) rows_stmt(&r, s);
    else count_stmt(&r, s);
  }
  return finish(&r, out);
}

static int batch_check(R *r, const sq_include *inc) {
  if (!inc || !inc->assoc) {
    fail(r, "include batch: no include");
    return 0;
  }
  if (!sq_assoc_to_many(inc->assoc)) {
    fail(r, "include '%s' is to-one: it is joined in its parent's statement, not batched", inc->assoc->as);
    return 0;
  }
  sq_include *one[1] = {(sq_include *)inc};
  validate_tree(r, inc->assoc->source, one, 1, 0);
  return !r->fail;
}

int sq_render_include_batch(const sq_include *inc, int dialect, const sq_value *keys, int nkeys,
                            sq_select_sql *out, sq_err *err) {
  R r;
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_render_include_batch: no output");
  int rc = start(&r, dialect, out, err);
  if (rc) return rc;
  if (nkeys < 1 || !keys) return sq_err_set(err, SQ_EUSAGE, "include batch: no parent keys (skip the statement)");
  if (batch_check(&r, inc)) {
    keyset ks = {keys, nkeys};
    batch_stmt(&r, inc, &ks);
  }
  return finish(&r, out);
}

int sq_include_batch_max(const sq_include *inc, int dialect, int *max, sq_err *err) {
  sq_select_sql s;
  sq_value one = sq_int(0);
  *max = 0;
  int rc = sq_render_include_batch(inc, dialect, &one, 1, &s, err);
  if (rc) return rc;
  int other = s.sql.nparams - 1;
  sq_select_sql_free(&s);
  *max = sq_dialect_max_params(dialect) - other;
  if (*max < 1) return sq_err_set(err, SQ_EUSAGE, "include batch: its other values leave no room for keys");
  return SQ_OK;
}

/* Finds the include named name (n bytes) among incs. */
static const sq_include *named_include(sq_include *const *incs, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (incs[i] && incs[i]->assoc && strlen(incs[i]->assoc->as) == len && !memcmp(incs[i]->assoc->as, name, len))
      return incs[i];
  return NULL;
}

int sq_select_resolve(const sq_select *s, const char *path, size_t len, const sq_include **inc, int *col,
                      sq_err *err) {
  *inc = NULL;
  *col = -1;
  if (!s || !s->model || !path) return sq_err_set(err, SQ_EUSAGE, "sq_select_resolve: bad arguments");
  const sq_model *m = s->model;
  sq_include *const *incs = s->includes;
  int n = s->nincludes;
  const sq_include *cur = NULL;
  size_t start = 0;
  char shown[80];
  for (size_t i = 0; i <= len; i++) {
    if (i < len && path[i] != '.') continue;
    const char *seg = path + start;
    size_t sl = i - start;
    if (i == len) {
      int c = sq_model_find(m, seg, sl);
      if (c < 0) {
        sq_show(path, len, shown, sizeof shown);
        return sq_err_set(err, SQ_EUSAGE, "'%s': no column '%.*s' in model '%s'", shown, (int)sl, seg, m->name);
      }
      *inc = cur;
      *col = c;
      return SQ_OK;
    }
    const sq_include *x = named_include(incs, n, seg, sl);
    if (!x) {
      sq_show(path, len, shown, sizeof shown);
      return sq_err_set(err, SQ_EUSAGE, "'%s': '%.*s' is not an include of this query", shown, (int)sl, seg);
    }
    if (sq_assoc_to_many(x->assoc)) {
      sq_show(path, len, shown, sizeof shown);
      return sq_err_set(err, SQ_EUSAGE, "'%s': '%s' is a to-many include (loaded by its own statement, not joined)",
                        shown, x->assoc->as);
    }
    cur = x;
    m = x->assoc->target;
    incs = x->kids;
    n = x->nkids;
    start = i + 1;
  }
  return sq_err_set(err, SQ_EUSAGE, "sq_select_resolve: empty path");
}
