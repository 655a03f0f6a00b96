/*
 * lfind.c - reads of a model: find_all, find_one, find_by_pk (with the
 * SQL of a plain lookup rendered once per model), count and the
 * aggregates sum / min / max / avg. Each is one SELECT operation
 * (lop.c): the query tree is built in the op's own arena, rendered, and
 * handed to the op with its values; the op's sink builds instances (or
 * raw rows, or the aggregate's value) straight from the driver's rows.
 * A read outside a transaction is retried once on a fresh connection
 * when its pooled one proved dead.
 */
#include "lassoc.h"

#include <stdlib.h>
#include <string.h>

/* A query builder over the op's arena: what the where, options and key
 * conversions allocate belongs to the op. */
#define OP_QB(b, sc, err, h, mod, name)                  \
  sq_err err;                                            \
  sq_err_clear(&err);                                    \
  lsq_scratch sc;                                        \
  memset(&sc, 0, sizeof sc);                             \
  sc.arena = sq_oper_arena((h)->op);                     \
  lsq_qb b = {L, mod, &sc, &err, name, 0, NULL}

/* The continuation of find_all / find_one / find_by_pk: the list (a new
 * empty one when no row came), or the instance or nil. */
static int rows_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  int t = lsq_op_push_out(L, h);
  int list = h->sink == LSINK_INCLUDE ? h->inc->mode == SINK_LIST : h->isink.mode == SINK_LIST;
  if (t != LUA_TTABLE && list) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 0);
  }
  lsq_op_done(L, h);
  return 1;
}

/*
 * The end of every read built as an sq_select (find_all, find_one,
 * find_by_pk with options, the association getters): render it unless
 * building failed (rc), hand the op its statement (and its includes),
 * pick the sink, run. The model is at 1. Reads without includes or lazy
 * marks use the model sink of part 1; the others the include sink.
 */
static int run_sel_k(lua_State *L, int dbidx, lsq_op *h, lsq_model *mod, lsq_sel *x, int mode, int rc, sq_err *err,
                     lua_KFunction k) {
  sq_select_sql out;
  memset(&out, 0, sizeof out);
  int mark = x->lazy || mod->lazy_all ? 1 : mod->lazy_assocs ? 2 : 0;
  int incsink = x->s.nincludes > 0 || mark;
  sq_query q;
  if (!rc && !incsink && lsq_sel_query(x, &q)) {
    sq_sql sql;
    memset(&sql, 0, sizeof sql);
    rc = sq_render(&q, mod->dialect, &sql, err);
    if (!rc) rc = sq_oper_add_sql(h->op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_READ | SQ_STMT_ARENA_VALUES, err);
    sq_sql_free(&sql);
  } else {
    if (!rc) rc = sq_render_select(&x->s, mod->dialect, &out, err);
    if (!rc) rc = sq_oper_add_sql(h->op, out.sql.sql, out.sql.len, out.sql.params, out.sql.nparams, SQ_STMT_READ, err);
  }
  if (!rc && incsink) rc = sq_oper_set_includes(h->op, &out, err);
  sq_select_sql_free(&out);
  if (rc) return lsq_op_fail(L, h, err);
  if (!incsink) {
    lsq_isink *s = lsq_op_sink_model(L, h, 1, mode);
    s->raw = x->sink.raw;
    s->identity = x->s.attrs == NULL;
  } else {
    x->sink.mode = mode;
    x->sink.mark = mark;
    h->inc = &x->sink;
    h->midx = 1;
    h->sink = LSINK_INCLUDE;
    lsq_op_attach_sink(h);
  }
  return lsq_op_run(L, dbidx, h, k, (lua_KContext)h);
}

static int run_sel(lua_State *L, int dbidx, lsq_op *h, lsq_model *mod, lsq_sel *x, int mode, int rc, sq_err *err) {
  return run_sel_k(L, dbidx, h, mod, x, mode, rc, err, rows_k);
}

#define FIND_OPTS (QO_FIND | SO_INCLUDE | SO_DISTINCT | SO_LAZY | SO_UNSCOPED)

/* Shared by find_all / find_one: [1] model, [2] options. */
static int find_rows(lua_State *L, int mode, const char *method) {
  lsq_scope_apply(L, 2, LSQ_SC_FIND, method);
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1);
  lsq_op *h = lsq_op_get_db(L, dbidx);
  lsq_op_begin(h, SQ_OPER_SELECT);
  OP_QB(b, sc, err, h, mod, method);
  lsq_sel *x = sq_arena_alloc(sc.arena, sizeof *x);
  if (!x) {
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return lsq_op_fail(L, h, &err);
  }
  lsq_sel_init(x, sc.arena, SQ_Q_SELECT, mod);
  int rc = lsq_build_select(x, &b, 2, FIND_OPTS);
  if (!rc && mode == SINK_ONE) x->s.limit = 1;
  if (!rc) h->route = LSQ_ROUTE_READ_OR_PRIMARY(x->use_primary || x->s.lock); /* replicas (lroute.h) */
  return run_sel(L, dbidx, h, mod, x, mode, rc, &err);
}

/* Model:find_all([opts]) -> { instance, ... } */
static int model_find_all(lua_State *L) { return find_rows(L, SINK_LIST, "find_all"); }

/* Model:find_one([opts]) -> instance or nil */
static int model_find_one(lua_State *L) { return find_rows(L, SINK_ONE, "find_one"); }

/* The primary key condition for the value at kidx: a single value, or a
 * table { a = 1, b = 2 } for a composite key (also { id = 1 }). */
static int pk_cond(lsq_qb *b, int kidx, sq_expr **out) {
  lua_State *L = b->L;
  const lsq_model *mod = b->mod;
  sq_arena *a = b->scratch->arena;
  if (lua_type(L, kidx) != LUA_TTABLE || lsq_test_instance(L, kidx)) {
    if (mod->npk != 1)
      return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: %s has a composite primary key; pass a table { col = value, ... }",
                        sq_model_name(mod->m));
    if (lsq_test_instance(L, kidx))
      return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk expects a key value, got an instance");
    sq_expr *e = sq_arena_alloc(a, sizeof *e);
    sq_value *v = sq_arena_alloc(a, sizeof *v);
    if (!e || !v) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    memset(e, 0, sizeof *e);
    char buf[48];
    if (lsq_col_value(L, kidx, sq_model_col(mod->m, mod->pk[0]), v, buf, a, b->err)) return b->err->kind;
    if (v->type == SQ_VNULL) return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: the key can't be null");
    e->op = SQ_OP_EQ;
    e->col = mod->pk[0];
    e->vals = v;
    e->nvals = 1;
    *out = e;
    return SQ_OK;
  }
  /* a table: exactly the key columns */
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, kidx)) {
    lua_pop(L, 1);
    n++;
    int c = lsq_col_index(b, -1, "find_by_pk");
    if (c < 0) {
      lua_pop(L, 1);
      return b->err->kind;
    }
    if (!sq_model_col(mod->m, c)->primary_key) {
      lua_pop(L, 1);
      return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: '%s' is not part of the primary key", sq_model_col(mod->m, c)->name);
    }
  }
  if (n != mod->npk)
    return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: give every primary key column (%d)", mod->npk);
  sq_expr *and = sq_arena_alloc(a, sizeof *and);
  sq_expr **kids = sq_arena_alloc(a, sizeof *kids * (size_t)n);
  if (!and || !kids) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
  memset(and, 0, sizeof *and);
  and->op = SQ_OP_AND;
  and->kids = kids;
  for (int i = 0; i < mod->npk; i++) {
    const sq_col *col = sq_model_col(mod->m, mod->pk[i]);
    sq_expr *e = sq_arena_alloc(a, sizeof *e);
    sq_value *v = sq_arena_alloc(a, sizeof *v);
    if (!e || !v) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    memset(e, 0, sizeof *e);
    lua_getfield(L, kidx, col->name);
    char buf[48];
    int rc = lsq_col_value(L, -1, col, v, buf, a, b->err);
    lua_pop(L, 1);
    if (rc) return rc;
    e->op = SQ_OP_EQ;
    e->col = mod->pk[i];
    e->vals = v;
    e->nvals = 1;
    kids[and->nkids++] = e;
  }
  *out = n == 1 ? kids[0] : and;
  return SQ_OK;
}

/*
 * Model:find_by_pk(key [, { lock =, attributes =, raw =, paranoid = }])
 * -> instance or nil. Without options the SQL is rendered once per model
 * and reused: only the key is converted per call.
 */
static int model_find_by_pk(lua_State *L) {
  int scoped = lsq_scope_apply(L, 3, LSQ_SC_PK, "find_by_pk"); /* a scope's where is ANDed with the key */
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 3);
  if (lua_isnil(L, 2)) return lsq_usage(L, "find_by_pk needs a key value");
  int dbidx = lsq_model_db(L, 1);
  if (lua_isnil(L, 3) && mod->npk == 1 && lua_type(L, 2) != LUA_TTABLE && !mod->lazy_all && !mod->lazy_assocs) {
    sq_err err;
    sq_err_clear(&err);
    sq_value v;
    char buf[48];
    if (lsq_col_value(L, 2, sq_model_col(mod->m, mod->pk[0]), &v, buf, NULL, &err)) return lsq_raise(L, &err);
    if (v.type == SQ_VNULL) return lsq_usage(L, "find_by_pk: the key can't be null");
    if (!mod->pk_sql) {
      sq_expr e;
      memset(&e, 0, sizeof e);
      e.op = SQ_OP_EQ;
      e.col = mod->pk[0];
      e.vals = &v;
      e.nvals = 1;
      sq_query q;
      sq_query_init(&q, SQ_Q_SELECT, mod->m);
      q.where = &e;
      sq_sql sql;
      memset(&sql, 0, sizeof sql);
      int rc = sq_render(&q, mod->dialect, &sql, &err);
      if (!rc && sql.nparams == 1) {
        mod->pk_sql = malloc(sql.len + 1);
        if (mod->pk_sql) {
          memcpy(mod->pk_sql, sql.sql, sql.len + 1);
          mod->pk_sql_len = sql.len;
        }
      }
      sq_sql_free(&sql);
      if (rc) return lsq_raise(L, &err);
      if (!mod->pk_sql) return lsq_usage(L, "find_by_pk: could not cache the statement");
    }
    lsq_op *h = lsq_op_get_db(L, dbidx);
    sq_oper *op = lsq_op_begin(h, SQ_OPER_SELECT);
    /* the op copies the SQL and the key (the key may borrow Lua's string) */
    if (sq_oper_add_sql(op, mod->pk_sql, mod->pk_sql_len, &v, 1, SQ_STMT_READ, &err)) return lsq_op_fail(L, h, &err);
    h->route = LSQ_ROUTE_READ; /* replicas (lroute.h) */
    lsq_op_sink_model(L, h, 1, SINK_ONE)->identity = 1;
    return lsq_op_run(L, dbidx, h, rows_k, (lua_KContext)h);
  }
  lsq_op *h = lsq_op_get_db(L, dbidx);
  lsq_op_begin(h, SQ_OPER_SELECT);
  OP_QB(b, sc, err, h, mod, "find_by_pk");
  lsq_sel *x = sq_arena_alloc(sc.arena, sizeof *x);
  if (!x) {
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return lsq_op_fail(L, h, &err);
  }
  lsq_sel_init(x, sc.arena, SQ_Q_SELECT, mod);
  int rc = lsq_build_select(x, &b, 3, QO_ATTRIBUTES | QO_LOCK | QO_RAW | QO_PARANOID | SO_INCLUDE | SO_LAZY | SO_UNSCOPED |
                                                QO_PRIMARY | (scoped ? QO_WHERE : 0));
  sq_expr *scope_where = x->s.where;
  x->s.where = NULL;
  if (!rc) rc = pk_cond(&b, 2, &x->s.where);
  if (!rc) rc = lsq_scope_and(sc.arena, &x->s.where, scope_where, &err);
  if (!rc) h->route = LSQ_ROUTE_READ_OR_PRIMARY(x->use_primary || x->s.lock); /* replicas (lroute.h) */
  return run_sel(L, dbidx, h, mod, x, SINK_ONE, rc, &err);
}

/* The continuation of count and the aggregates: the value, or for count
 * and sum over no rows 0 (as "0" for a DECIMAL column, 0.0 for a float). */
static int scalar_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  int fn = h->scalar.fn;
  const sq_col *col = h->scalar.col;
  if (lsq_op_push_out(L, h) == LUA_TNIL && (fn == SQ_FN_COUNT || fn == SQ_FN_SUM)) {
    lua_pop(L, 1);
    if (col && col->type == SQ_T_DECIMAL) lua_pushliteral(L, "0");
    else if (col && (col->type == SQ_T_FLOAT || col->type == SQ_T_DOUBLE)) lua_pushnumber(L, 0);
    else lua_pushinteger(L, 0);
  }
  lsq_op_done(L, h);
  return 1;
}

/* count{ group = } : one row per group, plain tables. */
static int group_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  if (lsq_op_push_out(L, h) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lsq_op_done(L, h);
  return 1;
}

static const char *const fn_names[] = {"", "count", "sum", "min", "max", "avg"};

/* count and the aggregates: [1] model, [col at 2,] options. A read the
 * part 1 query can express is rendered by sq_render as before; with
 * group, distinct, col, include or part 2 conditions it is an sq_select
 * (count{ group = } returns one row per group). */
static int aggregate(lua_State *L, int fn, const char *method) {
  int oidx = fn == SQ_FN_COUNT ? 2 : 3;
  lsq_scope_apply(L, oidx, LSQ_SC_AGG, method);
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 3);
  int dbidx = lsq_model_db(L, 1);
  lsq_op *h = lsq_op_get_db(L, dbidx);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_SELECT);
  OP_QB(b, sc, err, h, mod, method);
  int rc = SQ_OK, col = -1;
  lsq_sel *x = sq_arena_alloc(sc.arena, sizeof *x);
  if (!x) rc = sq_err_set(&err, SQ_ENOMEM, "out of memory");
  unsigned allowed = QO_WHERE | QO_PARANOID | SO_INCLUDE | SO_UNSCOPED | QO_PRIMARY;
  if (fn == SQ_FN_COUNT) allowed |= QO_GROUP | SO_DISTINCT | SO_COL;
  if (!rc) {
    lsq_sel_init(x, sc.arena, fn == SQ_FN_COUNT ? SQ_Q_COUNT : SQ_Q_SELECT, mod);
    rc = lsq_build_select(x, &b, oidx, allowed);
    if (!rc) h->route = LSQ_ROUTE_READ_OR_PRIMARY(x->use_primary); /* replicas (lroute.h) */
  }
  if (!rc && fn != SQ_FN_COUNT) {
    col = lsq_col_index(&b, 2, method);
    if (col < 0) rc = err.kind;
  }
  sq_query q;
  int plain = !rc && x->s.ngroup == 0 && x->s.nincludes == 0 && !x->s.distinct && lsq_sel_query(x, &q);
  if (!rc && plain) {
    q.kind = fn == SQ_FN_COUNT ? SQ_Q_COUNT : SQ_Q_AGGREGATE;
    q.agg_fn = fn;
    q.agg_col = col;
    sq_sql sql;
    memset(&sql, 0, sizeof sql);
    rc = sq_render(&q, mod->dialect, &sql, &err);
    if (!rc) rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_READ | SQ_STMT_ARENA_VALUES, &err);
    sq_sql_free(&sql);
  } else if (!rc) {
    if (fn != SQ_FN_COUNT) {
      sq_xattr *at = sq_arena_alloc(sc.arena, sizeof *at);
      sq_operand *arg = sq_arena_alloc(sc.arena, sizeof *arg);
      if (!at || !arg) rc = sq_err_set(&err, SQ_ENOMEM, "out of memory");
      else {
        *arg = sq_x_col(NULL, col);
        at->x = sq_x_fn(fn_names[fn], arg, 1);
        at->alias = NULL;
        x->s.attrs = at;
        x->s.nattrs = 1;
      }
    }
    sq_select_sql out;
    memset(&out, 0, sizeof out);
    if (!rc) rc = sq_render_select(&x->s, mod->dialect, &out, &err);
    if (!rc) rc = sq_oper_add_sql(op, out.sql.sql, out.sql.len, out.sql.params, out.sql.nparams, SQ_STMT_READ, &err);
    sq_select_sql_free(&out);
  }
  if (rc) return lsq_op_fail(L, h, &err);
  if (x->s.ngroup > 0) {
    lsq_op_sink_rows(L, h);
    return lsq_op_run(L, dbidx, h, group_k, (lua_KContext)h);
  }
  lsq_op_sink_scalar(L, h, fn, col >= 0 ? sq_model_col(mod->m, col) : NULL);
  return lsq_op_run(L, dbidx, h, scalar_k, (lua_KContext)h);
}

/* ---------------------------------------------------------------- */
/* find_and_count_all                                                 */
/* ---------------------------------------------------------------- */

/* find_and_count_all's continuation: { count =, rows = }. */
static int fac_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  lua_Integer count = (lua_Integer)sq_oper_count(h->op);
  if (lsq_op_push_out(L, h) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lsq_op_done(L, h);
  lua_createtable(L, 0, 2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "rows");
  lua_pushinteger(L, count);
  lua_setfield(L, -2, "count");
  return 1;
}

/*
 * Model:find_and_count_all(opts) -> { count = n, rows = { ... } }: the
 * number of distinct rows of the model matching where (and required
 * includes), whatever limit and offset say, and the page. One operation:
 * the count statement, then the page and its includes, on one
 * connection. A to-many include never multiplies the parents, so the
 * count is of parents.
 */
static int model_find_and_count_all(lua_State *L) {
  lsq_scope_apply(L, 2, LSQ_SC_FIND, "find_and_count_all");
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1);
  lsq_op *h = lsq_op_get_db(L, dbidx);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_SELECT);
  OP_QB(b, sc, err, h, mod, "find_and_count_all");
  lsq_sel *x = sq_arena_alloc(sc.arena, sizeof *x);
  if (!x) {
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return lsq_op_fail(L, h, &err);
  }
  lsq_sel_init(x, sc.arena, SQ_Q_SELECT, mod);
  int rc = lsq_build_select(x, &b, 2, FIND_OPTS);
  if (!rc) h->route = LSQ_ROUTE_READ_OR_PRIMARY(x->use_primary || x->s.lock); /* replicas (lroute.h) */
  sq_select_sql out;
  memset(&out, 0, sizeof out);
  if (!rc) {
    /* the count: the same filters, no page, no order, no attributes */
    sq_select c = x->s;
    c.kind = SQ_Q_COUNT;
    c.limit = c.offset = -1;
    c.order = NULL;
    c.norder = 0;
    c.attrs = NULL;
    c.nattrs = 0;
    c.lock = SQ_LOCK_NONE;
    c.distinct = 0;
    rc = sq_render_select(&c, mod->dialect, &out, &err);
  }
  if (!rc) rc = sq_oper_add_sql(op, out.sql.sql, out.sql.len, out.sql.params, out.sql.nparams,
                                SQ_STMT_READ | SQ_STMT_COUNT, &err);
  sq_select_sql_free(&out);
  return run_sel_k(L, dbidx, h, mod, x, SINK_LIST, rc, &err, fac_k);
}

static int model_count(lua_State *L) { return aggregate(L, SQ_FN_COUNT, "count"); }
static int model_sum(lua_State *L) { return aggregate(L, SQ_FN_SUM, "sum"); }
static int model_min(lua_State *L) { return aggregate(L, SQ_FN_MIN, "min"); }
static int model_max(lua_State *L) { return aggregate(L, SQ_FN_MAX, "max"); }
static int model_avg(lua_State *L) { return aggregate(L, SQ_FN_AVG, "avg"); }

const luaL_Reg lsq_find_methods[] = {
  {"find_by_pk", model_find_by_pk},
  {"find_one", model_find_one},
  {"find_all", model_find_all},
  {"find_and_count_all", model_find_and_count_all},
  {"count", model_count},
  {"sum", model_sum},
  {"min", model_min},
  {"max", model_max},
  {"avg", model_avg},
  {NULL, NULL},
};
