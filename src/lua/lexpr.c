/*
 * lexpr.c - expressions: sqorm.fn.<name>(...) for any function name
 * (checked like an identifier here, and again by the core when it
 * renders), sqorm.col(name) for a column (of a joined to-one include
 * too: "author.name"), and their translation into sq_operand trees in
 * the op's arena. The five aggregates count / sum / min / max / avg keep
 * their part 1 form fn.count(column [, alias]) (lwhere.c); every other
 * name makes a generic call whose arguments are column names, sqorm.col
 * values, other calls, or bound values (numbers, booleans, sqorm.value).
 */
#include "lassoc.h"

#include <string.h>

#define LSQ_EXPR_MT "sqorm.Expr"

enum { X_FN = 1, X_COL = 2 };

typedef struct lsq_xv {
  int kind;     /* X_FN, X_COL */
  int distinct; /* X_FN: name(DISTINCT ...) */
} lsq_xv;

static lsq_xv *test_x(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return NULL;
  return luaL_testudata(L, idx, LSQ_EXPR_MT);
}

int lsq_is_expr(lua_State *L, int idx) {
  return test_x(L, idx) != NULL || (lsq_fn_kind(L, idx) > 0 && lsq_fn_kind(L, idx) < LSQ_FN_NOW);
}

static int ident_ok(const char *s, size_t n) {
  if (n == 0 || n > 63) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

/* sqorm.fn.<name>(args...): upvalue 1 the name. */
static int xfn_call(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    int t = lua_type(L, i);
    if (!(t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN || lsq_is_expr(L, i)))
      return lsq_usage(L, "sqorm.fn.%s: argument #%d must be a column name, sqorm.col, a sqorm.fn call, a number "
                          "or a boolean, got %s",
                       lua_tostring(L, lua_upvalueindex(1)), i, luaL_typename(L, i));
  }
  lsq_xv *x = lua_newuserdatauv(L, sizeof *x, 2);
  x->kind = X_FN;
  x->distinct = 0;
  luaL_setmetatable(L, LSQ_EXPR_MT);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setiuservalue(L, -2, 1);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* sqorm.fn.<name>: a constructor for any name spelled like an identifier. */
static int fn_index(lua_State *L) {
  size_t n;
  const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : NULL;
  if (!name || !ident_ok(name, n))
    return lsq_usage(L, "sqorm.fn: a function name must look like an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 "
                        "bytes)");
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, xfn_call, 1);
  return 1;
}

/* sqorm.col(name) */
static int col_new(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING || lua_rawlen(L, 1) == 0)
    return lsq_usage(L, "sqorm.col expects a column name (\"coins\" or \"author.name\"), got %s", luaL_typename(L, 1));
  lsq_xv *x = lua_newuserdatauv(L, sizeof *x, 2);
  x->kind = X_COL;
  x->distinct = 0;
  luaL_setmetatable(L, LSQ_EXPR_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* sqorm.distinct(fn_call) -> the same call with DISTINCT: fn.count(sqorm.distinct(...)) is written
 * sqorm.distinct(fn.count("x")) */
static int distinct_new(lua_State *L) {
  lsq_xv *x = test_x(L, 1);
  if (!x || x->kind != X_FN) return lsq_usage(L, "sqorm.distinct expects a sqorm.fn call");
  lsq_xv *y = lua_newuserdatauv(L, sizeof *y, 2);
  *y = *x;
  y->distinct = 1;
  luaL_setmetatable(L, LSQ_EXPR_MT);
  lua_getiuservalue(L, 1, 1);
  lua_setiuservalue(L, -2, 1);
  lua_getiuservalue(L, 1, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

static int x_tostring(lua_State *L) {
  lsq_xv *x = luaL_checkudata(L, 1, LSQ_EXPR_MT);
  lua_getiuservalue(L, 1, 1);
  if (x->kind == X_COL) lua_pushfstring(L, "sqorm.col(%s)", lua_tostring(L, -1));
  else lua_pushfstring(L, "sqorm.fn.%s(...)", lua_tostring(L, -1));
  return 1;
}

void lsq_expr_open_subq(lua_State *L);

void lsq_expr_open(lua_State *L, int modidx) {
  modidx = lua_absindex(L, modidx);
  if (luaL_newmetatable(L, LSQ_EXPR_MT)) {
    lua_pushcfunction(L, x_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, LSQ_EXPR_MT);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, modidx, "fn") == LUA_TTABLE) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, fn_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, col_new);
  lua_setfield(L, modidx, "col");
  lua_pushcfunction(L, distinct_new);
  lua_setfield(L, modidx, "distinct");
  lsq_expr_open_subq(L);
}

/* ---------------------------------------------------------------- */
/* operands                                                           */
/* ---------------------------------------------------------------- */

static const char *const agg_names[] = {"", "count", "sum", "min", "max", "avg"};

static int operand(lsq_sel *x, lsq_qb *b, int idx, sq_operand *out, const char *what, int values, int depth);

static int fn_args(lsq_sel *x, lsq_qb *b, int tidx, sq_operand *out, const char *what, int depth) {
  lua_State *L = b->L;
  int n = (int)lua_rawlen(L, tidx);
  sq_operand *args = n ? sq_arena_alloc(x->arena, sizeof *args * (size_t)n) : NULL;
  if (n && !args) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, tidx, i);
    int rc = operand(x, b, lua_gettop(L), &args[i - 1], what, 1, depth + 1);
    lua_pop(L, 1);
    if (rc) return rc;
  }
  out->args = args;
  out->nargs = n;
  return SQ_OK;
}

static int operand(lsq_sel *x, lsq_qb *b, int idx, sq_operand *out, const char *what, int values, int depth) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  if (depth > 16) return sq_err_set(b->err, SQ_EUSAGE, "%s: expression nested more than 16 levels deep", b->method);
  if (!lua_checkstack(L, 8)) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING && !(values == 2)) {
    size_t n;
    const char *k = lua_tolstring(L, idx, &n);
    return lsq_sel_name(x, b, k, n, out, what);
  }
  lsq_xv *xv = test_x(L, idx);
  if (xv && xv->kind == X_COL) {
    lua_getiuservalue(L, idx, 1);
    size_t n;
    const char *k = lua_tolstring(L, -1, &n);
    int rc = lsq_sel_name(x, b, k, n, out, what);
    lua_pop(L, 1);
    return rc;
  }
  if (xv) {
    lua_getiuservalue(L, idx, 1);
    size_t n;
    const char *name = lua_tolstring(L, -1, &n);
    char *p = sq_arena_alloc(x->arena, n + 1);
    if (!p) {
      lua_pop(L, 1);
      return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    }
    memcpy(p, name, n + 1);
    lua_pop(L, 1);
    *out = sq_x_fn(p, NULL, 0);
    out->distinct = xv->distinct;
    lua_getiuservalue(L, idx, 2);
    int rc = fn_args(x, b, lua_gettop(L), out, what, depth);
    lua_pop(L, 1);
    return rc;
  }
  int fk = lsq_fn_kind(L, idx);
  if (fk > 0 && fk < LSQ_FN_NOW) {
    sq_operand *arg = sq_arena_alloc(x->arena, sizeof *arg);
    if (!arg) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    lua_getiuservalue(L, idx, 1);
    int rc = SQ_OK;
    if (lua_isnil(L, -1)) *arg = sq_x_star();
    else rc = operand(x, b, lua_gettop(L), arg, what, 0, depth + 1);
    lua_pop(L, 1);
    if (rc) return rc;
    *out = sq_x_fn(agg_names[fk], arg, 1);
    return SQ_OK;
  }
  if (values && (t == LUA_TNUMBER || t == LUA_TBOOLEAN || t == LUA_TSTRING)) {
    sq_value v;
    if (lsq_to_value(L, idx, &v, what, b->err)) return b->err->kind;
    if (lsq_own_value(x->arena, &v, b->err)) return b->err->kind;
    *out = sq_x_val(v);
    return SQ_OK;
  }
  return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a column name, sqorm.col or a sqorm.fn call, got %s", b->method,
                    what, luaL_typename(L, idx));
}

int lsq_operand(lsq_sel *x, lsq_qb *b, int idx, sq_operand *out, const char *what, int values) {
  return operand(x, b, idx, out, what, values ? 2 : 0, 0);
}

static int alias_check(lsq_qb *b, const char *a, size_t n) {
  if (ident_ok(a, n)) return SQ_OK;
  return sq_err_set(b->err, SQ_EUSAGE,
                    "%s: attribute alias '%.40s' must look like an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)",
                    b->method, a);
}

int lsq_attr(lsq_sel *x, lsq_qb *b, int idx, sq_xattr *out) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  out->alias = NULL;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *k = lua_tolstring(L, idx, &n);
    int c = sq_model_find(b->mod->m, k, n);
    if (c < 0) {
      lsq_col_index(b, idx, "attributes"); /* the usual message */
      return b->err->kind;
    }
    out->x = sq_x_col(NULL, c);
    return SQ_OK;
  }
  int fk = lsq_fn_kind(L, idx);
  if (fk > 0 && fk < LSQ_FN_NOW) {
    int rc = operand(x, b, idx, &out->x, "attributes", 0, 0);
    if (rc) return rc;
    lua_getiuservalue(L, idx, 2);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char *a = lua_tolstring(L, -1, &n);
      char *p = (rc = alias_check(b, a, n)) ? NULL : sq_arena_alloc(x->arena, n + 1);
      if (!p && !rc) rc = sq_err_set(b->err, SQ_ENOMEM, "out of memory");
      if (p) memcpy(p, a, n + 1);
      out->alias = p;
    }
    lua_pop(L, 1);
    return rc;
  }
  if (test_x(L, idx)) return operand(x, b, idx, &out->x, "attributes", 0, 0);
  if (lua_type(L, idx) == LUA_TTABLE && lua_rawlen(L, idx) == 2) {
    lua_rawgeti(L, idx, 1);
    lua_rawgeti(L, idx, 2);
    int rc = SQ_OK;
    if (lua_type(L, -1) != LUA_TSTRING) {
      rc = sq_err_set(b->err, SQ_EUSAGE, "%s: attributes item { expression, alias } needs an alias string", b->method);
    } else {
      rc = operand(x, b, lua_gettop(L) - 1, &out->x, "attributes", 0, 0);
      size_t n;
      const char *a = lua_tolstring(L, -1, &n);
      if (!rc) rc = alias_check(b, a, n);
      char *p = rc ? NULL : sq_arena_alloc(x->arena, n + 1);
      if (!rc && !p) rc = sq_err_set(b->err, SQ_ENOMEM, "out of memory");
      if (p) memcpy(p, a, n + 1);
      out->alias = p;
    }
    lua_pop(L, 2);
    return rc;
  }
  return sq_err_set(b->err, SQ_EUSAGE,
                    "%s: attributes items are column names, sqorm.fn calls or { expression, \"alias\" }, got %s",
                    b->method, luaL_typename(L, idx));
}

/* ---------------------------------------------------------------- */
/* subqueries: Model:subquery{ attributes = { one }, where = ... }    */
/* ---------------------------------------------------------------- */

#define LSQ_SUBQ_MT "sqorm.Subquery"

int lsq_is_subquery(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TUSERDATA && luaL_testudata(L, idx, LSQ_SUBQ_MT) != NULL;
}

/* Model:subquery(options) -> a subquery for op.in_ / op.not_in / op.exists */
static int model_subquery(lua_State *L) {
  lsq_check_model(L, 1);
  if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TTABLE)
    return lsq_usage(L, "subquery: options must be a table, got %s", luaL_typename(L, 2));
  lua_settop(L, 2);
  lua_newuserdatauv(L, 1, 2);
  luaL_setmetatable(L, LSQ_SUBQ_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

const luaL_Reg lsq_expr_methods[] = {
  {"subquery", model_subquery},
  {NULL, NULL},
};

/* The sq_select of the subquery value at idx, in b's arena. */
static int build_subquery(lsq_qb *b, int idx, const sq_select **out) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  lua_getiuservalue(L, idx, 1);
  int m = lua_gettop(L);
  lsq_model *mod = lua_touserdata(L, m);
  lsq_model_db(L, m);
  lsq_push_model(L, b->mod);
  lsq_model_db(L, -1);
  int same = lua_rawequal(L, -1, -3);
  lua_settop(L, m);
  if (!same) {
    lua_pop(L, 1);
    return sq_err_set(b->err, SQ_EUSAGE, "%s: a subquery of %s, a model of another db", b->method, sq_model_name(mod->m));
  }
  lua_getiuservalue(L, idx, 2);
  sq_arena *a = b->scratch->arena;
  lsq_sel *x = sq_arena_alloc(a, sizeof *x);
  if (!x) {
    lua_settop(L, m - 1);
    return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
  }
  lsq_sel_init(x, a, SQ_Q_SELECT, mod);
  lsq_qb sb = {L, mod, b->scratch, b->err, "subquery", b->depth, NULL};
  int rc = lsq_build_select(x, &sb, m + 1, QO_WHERE | QO_ATTRIBUTES | QO_ORDER | QO_LIMIT | QO_OFFSET | QO_GROUP |
                                               QO_HAVING | QO_PARANOID | SO_DISTINCT);
  lua_settop(L, m - 1);
  if (rc) return rc;
  *out = &x->s;
  return SQ_OK;
}

/* ---------------------------------------------------------------- */
/* part 2 conditions (lwhere.c calls these for reads)                 */
/* ---------------------------------------------------------------- */

static sq_expr *node(lsq_qb *b, int op) {
  sq_expr *e = sq_arena_alloc(b->scratch->arena, sizeof *e);
  if (!e) {
    sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    return NULL;
  }
  memset(e, 0, sizeof *e);
  e->op = op;
  e->col = -1;
  return e;
}

/* One value at idx for a column of type c (NULL: no column type), or an
 * expression operand. */
static int one(lsq_qb *b, int idx, const sq_col *c, sq_value *v) {
  char buf[48];
  if (c) return lsq_col_value(b->L, idx, c, v, buf, b->scratch->arena, b->err);
  if (lsq_to_value(b->L, idx, v, "where", b->err)) return b->err->kind;
  return lsq_own_value(b->scratch->arena, v, b->err);
}

/* The comparison of lhs (column c of model m when known) with the value
 * at vidx: a scalar, a list, sqorm.null, an operator, an expression. */
static int compare(lsq_qb *b, const sq_operand *lhs, int c, const sq_col *col, int vidx, sq_expr **out) {
  lua_State *L = b->L;
  lsq_sel *x = b->ext;
  lsq_opv *o = lsq_test_op(L, vidx);
  int op = o ? o->op : lsq_is_null(L, vidx) ? SQ_OP_IS_NULL : lua_type(L, vidx) == LUA_TTABLE ? SQ_OP_IN : SQ_OP_EQ;
  sq_expr *e = node(b, op);
  if (!e) return b->err->kind;
  if (lhs) {
    sq_operand *l = sq_arena_alloc(b->scratch->arena, sizeof *l);
    if (!l) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    *l = *lhs;
    e->lhs = l;
  } else {
    e->col = c;
  }
  switch (op) {
  case SQ_OP_AND: case SQ_OP_OR: case SQ_OP_NOT: case SQ_OP_RAW: case SQ_OP_HAS: case SQ_OP_EXISTS: case SQ_OP_NOT_EXISTS:
    return sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.%s can't compare an expression or a joined column",
                      op == SQ_OP_HAS ? "has" : "and_/or_/not_/raw/exists");
  case SQ_OP_IS_NULL: case SQ_OP_NOT_NULL: break;
  case SQ_OP_IN: case SQ_OP_NOT_IN: {
    if (o) lua_getiuservalue(L, vidx, 1);
    else lua_pushvalue(L, vidx);
    int li = lua_gettop(L), rc = SQ_OK;
    if (lsq_is_subquery(L, li)) {
      rc = build_subquery(b, li, &e->sub);
    } else {
      int n = (int)lua_rawlen(L, li);
      sq_value *v = n ? sq_arena_alloc(b->scratch->arena, sizeof *v * (size_t)n) : NULL;
      if (n && !v) rc = sq_err_set(b->err, SQ_ENOMEM, "out of memory");
      for (int i = 1; !rc && i <= n; i++) {
        lua_rawgeti(L, li, i);
        rc = one(b, -1, col, &v[i - 1]);
        lua_pop(L, 1);
      }
      e->vals = v;
      e->nvals = n;
    }
    lua_settop(L, li - 1);
    if (rc) return rc;
    break;
  }
  default: {
    int n = o ? o->n : 1, anyx = 0;
    for (int i = 1; i <= n; i++) {
      if (o) lua_getiuservalue(L, vidx, i);
      else lua_pushvalue(L, vidx);
      anyx |= lsq_is_expr(L, -1);
      lua_pop(L, 1);
    }
    if (anyx) {
      sq_operand *r = sq_arena_alloc(b->scratch->arena, sizeof *r * (size_t)n);
      if (!r) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
      for (int i = 1; i <= n; i++) {
        if (o) lua_getiuservalue(L, vidx, i);
        else lua_pushvalue(L, vidx);
        int rc;
        if (lsq_is_expr(L, -1)) rc = lsq_operand(x, b, lua_gettop(L), &r[i - 1], "where", 0);
        else {
          sq_value v;
          rc = one(b, -1, col, &v);
          r[i - 1] = sq_x_val(v);
        }
        lua_pop(L, 1);
        if (rc) return rc;
      }
      e->rhs = r;
      e->nrhs = n;
    } else {
      sq_value *v = sq_arena_alloc(b->scratch->arena, sizeof *v * (size_t)n);
      if (!v) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
      for (int i = 1; i <= n; i++) {
        if (o) lua_getiuservalue(L, vidx, i);
        else lua_pushvalue(L, vidx);
        int rc = one(b, -1, col, &v[i - 1]);
        lua_pop(L, 1);
        if (rc) return rc;
      }
      e->vals = v;
      e->nvals = n;
    }
  }
  }
  *out = e;
  return SQ_OK;
}

/* 1 when the value at vidx for column c needs a part 2 node (an
 * expression operand or a subquery). */
static int needs_ext(lua_State *L, int vidx) {
  if (lsq_is_expr(L, vidx)) return 1;
  lsq_opv *o = lsq_test_op(L, vidx);
  if (!o || o->op == SQ_OP_AND || o->op == SQ_OP_OR || o->op == SQ_OP_NOT) return 0;
  for (int i = 1; i <= o->n; i++) {
    lua_getiuservalue(L, vidx, i);
    int x = lsq_is_expr(L, -1) || lsq_is_subquery(L, -1);
    lua_pop(L, 1);
    if (x) return 1;
  }
  return 0;
}

int lsq_where_ext_col(lsq_qb *b, int c, int vidx, sq_expr **out) {
  if (!needs_ext(b->L, vidx)) return -1;
  if (!b->ext)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: sqorm.col, sqorm.fn and subqueries are for reads (find_all, count, ...)",
                      b->method);
  return compare(b, NULL, c, sq_model_col(b->mod->m, c), vidx, out);
}

int lsq_where_ext_key(lsq_qb *b, const char *k, size_t n, int vidx, sq_expr **out) {
  lsq_sel *x = b->ext;
  if (!x) return -1;
  sq_operand lhs;
  if (lsq_sel_name(x, b, k, n, &lhs, "where")) return b->err->kind;
  const sq_col *col = NULL;
  if (lhs.kind == SQ_X_COL && lhs.inc) col = sq_model_col(lhs.inc->assoc->target, lhs.col);
  return compare(b, &lhs, -1, col, vidx, out);
}

/* op.has(name [, where]) and op.exists / op.not_exists(subquery) */
int lsq_where_ext_cond(lsq_qb *b, int idx, int op, sq_expr **out) {
  lua_State *L = b->L;
  if (!b->ext)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: sqorm.op.%s is for reads (find_all, count, ...)", b->method,
                      op == SQ_OP_HAS ? "has" : "exists");
  sq_expr *e = node(b, op);
  if (!e) return b->err->kind;
  int top = lua_gettop(L), rc = SQ_OK;
  if (op != SQ_OP_HAS) {
    lua_getiuservalue(L, idx, 1);
    rc = build_subquery(b, -1, &e->sub);
    lua_settop(L, top);
    if (!rc) *out = e;
    return rc;
  }
  lua_getiuservalue(L, idx, 1);
  size_t n;
  const char *name = lua_tolstring(L, -1, &n);
  e->assoc = sq_model_find_assoc(b->mod->m, name, n);
  if (!e->assoc) {
    rc = sq_err_set(b->err, SQ_EUSAGE, "%s: %s has no association '%.64s' (op.has)", b->method,
                    sq_model_name(b->mod->m), name);
    lua_settop(L, top);
    return rc;
  }
  lua_getiuservalue(L, idx, 2);
  if (!lua_isnil(L, -1)) {
    int w = lua_gettop(L);
    lsq_push_model(L, b->mod);
    lsq_assoc_info(L, lua_gettop(L), e->assoc->as);
    lua_getfield(L, -1, "target");
    lsq_model *tm = lua_touserdata(L, -1);
    lsq_sel *tx = sq_arena_alloc(b->scratch->arena, sizeof *tx);
    if (!tx || !tm) {
      lua_settop(L, top);
      return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    }
    lsq_sel_init(tx, b->scratch->arena, SQ_Q_SELECT, tm);
    lsq_qb tb = {L, tm, b->scratch, b->err, b->method, b->depth, tx};
    e->kids = sq_arena_alloc(b->scratch->arena, sizeof *e->kids);
    if (!e->kids) rc = sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    else rc = lsq_build_where(&tb, w, &e->kids[0]);
    e->nkids = rc ? 0 : 1;
  }
  lua_settop(L, top);
  if (!rc) *out = e;
  return rc;
}

void lsq_expr_open_subq(lua_State *L) {
  if (luaL_newmetatable(L, LSQ_SUBQ_MT)) {
    lua_pushliteral(L, LSQ_SUBQ_MT);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}
