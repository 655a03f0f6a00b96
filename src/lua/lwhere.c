/*
 * lwhere.c - sqorm.op values, sqorm.raw, sqorm.fn, values converted to
 * a column's type, and the translation of a Lua where table into an
 * sq_expr tree that lives in the call's arena (the other query options
 * are in lopts.c).
 *
 * Operators are userdata with a metatable registered from C, so a table
 * decoded from untrusted input (JSON, a request) can never carry one: a
 * key like "$gt" is just an unknown column name, and a nested table is
 * only ever a list of values (IN). Every value is converted to its
 * column's type before any SQL is built. Nothing here raises except on
 * memory errors: problems come back as an error kind with err filled, so
 * the caller can free its scratch first.
 */
#include "lmodel.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 32

/* ---------------------------------------------------------------- */
/* operator values                                                    */
/* ---------------------------------------------------------------- */

static const struct {
  const char *name;
  int op;
} op_names[] = {
  {"eq", SQ_OP_EQ}, {"ne", SQ_OP_NE}, {"gt", SQ_OP_GT}, {"gte", SQ_OP_GTE}, {"lt", SQ_OP_LT},
  {"lte", SQ_OP_LTE}, {"between", SQ_OP_BETWEEN}, {"not_between", SQ_OP_NOT_BETWEEN},
  {"in_", SQ_OP_IN}, {"not_in", SQ_OP_NOT_IN}, {"like", SQ_OP_LIKE}, {"not_like", SQ_OP_NOT_LIKE},
  {"is_null", SQ_OP_IS_NULL}, {"not_null", SQ_OP_NOT_NULL}, {"and_", SQ_OP_AND}, {"or_", SQ_OP_OR},
  {"not_", SQ_OP_NOT}, {"json", LSQ_OP_JSON},
  /* part 2, for reads: op.has(association [, where]), op.exists(subquery), op.not_exists(subquery) */
  {"has", SQ_OP_HAS}, {"exists", SQ_OP_EXISTS}, {"not_exists", SQ_OP_NOT_EXISTS},
  /* aliases: op["in"], op["and"], ... read the same */
  {"in", SQ_OP_IN}, {"and", SQ_OP_AND}, {"or", SQ_OP_OR}, {"not", SQ_OP_NOT},
  {NULL, 0},
};

static const char *op_name(int op) {
  if (op == SQ_OP_RAW) return "raw";
  if (op == SQ_OP_HAS) return "has";
  for (int i = 0; op_names[i].name; i++)
    if (op_names[i].op == op) return op_names[i].name;
  return "?";
}

lsq_opv *lsq_test_op(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return NULL;
  return luaL_testudata(L, idx, LSQ_OP_MT);
}

/* A plain table: no metatable of ours (op, type, fn, instance...). */
static int is_plain_table(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TTABLE;
}

/* 1 when the value at idx can be a comparison operand. */
static int is_scalar(lua_State *L, int idx, int allow_null) {
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: case LUA_TSTRING: case LUA_TBOOLEAN: return 1;
  case LUA_TUSERDATA: return (allow_null && lsq_is_null(L, idx)) || lsq_is_expr(L, idx);
  default: return 0;
  }
}

/*
 * The constructor behind every sqorm.op function (upvalue 1: the op).
 * Arguments are checked here, so a mistake shows where it was made;
 * the values themselves are converted later, per column.
 */
static int op_new(lua_State *L) {
  int op = (int)lua_tointeger(L, lua_upvalueindex(1));
  int n = lua_gettop(L);
  const char *name = op_name(op);
  switch (op) {
  case SQ_OP_EQ: case SQ_OP_NE: case SQ_OP_GT: case SQ_OP_GTE: case SQ_OP_LT: case SQ_OP_LTE:
  case SQ_OP_LIKE: case SQ_OP_NOT_LIKE: {
    int nullok = op == SQ_OP_EQ || op == SQ_OP_NE;
    if (n != 1 || !is_scalar(L, 1, nullok))
      return lsq_usage(L, "sqorm.op.%s takes one value (a string, number or boolean%s), got %s", name,
                       nullok ? " or sqorm.null" : "", n < 1 ? "nothing" : luaL_typename(L, 1));
    if ((op == SQ_OP_LIKE || op == SQ_OP_NOT_LIKE) && lua_type(L, 1) != LUA_TSTRING)
      return lsq_usage(L, "sqorm.op.%s takes a string pattern, got %s", name, luaL_typename(L, 1));
    break;
  }
  case SQ_OP_BETWEEN: case SQ_OP_NOT_BETWEEN:
    if (n == 1 && is_plain_table(L, 1) && lua_rawlen(L, 1) == 2) {
      lua_rawgeti(L, 1, 1);
      lua_rawgeti(L, 1, 2);
      lua_remove(L, 1);
      n = 2;
    }
    if (n != 2 || !is_scalar(L, 1, 0) || !is_scalar(L, 2, 0))
      return lsq_usage(L, "sqorm.op.%s takes two values (low, high)", name);
    break;
  case SQ_OP_IN: case SQ_OP_NOT_IN:
    if (n == 1 && (is_plain_table(L, 1) || lsq_is_subquery(L, 1))) break;
    /* op.in_(1, 2, 3): pack the values into a list */
    for (int i = 1; i <= n; i++)
      if (!is_scalar(L, i, 0))
        return lsq_usage(L, "sqorm.op.%s takes a list of values, got %s", name, luaL_typename(L, i));
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, -2, i);
    }
    lua_replace(L, 1);
    lua_settop(L, 1);
    n = 1;
    break;
  case SQ_OP_IS_NULL: case SQ_OP_NOT_NULL:
    if (n != 0) return lsq_usage(L, "sqorm.op.%s takes no value", name);
    break;
  case SQ_OP_AND: case SQ_OP_OR:
    if (n < 1) return lsq_usage(L, "sqorm.op.%s takes one or more conditions", name);
    for (int i = 1; i <= n; i++)
      if (!is_plain_table(L, i) && !lsq_test_op(L, i) && !is_scalar(L, i, 1))
        return lsq_usage(L, "sqorm.op.%s: condition #%d is a %s; expected a where table or an operator value", name, i,
                         luaL_typename(L, i));
    break;
  case SQ_OP_NOT:
    if (n != 1 || !(is_plain_table(L, 1) || lsq_test_op(L, 1) || is_scalar(L, 1, 1)))
      return lsq_usage(L, "sqorm.op.not_ takes one where table or operator value");
    break;
  case SQ_OP_HAS:
    if (n < 1 || n > 2 || lua_type(L, 1) != LUA_TSTRING || (n == 2 && !lua_isnil(L, 2) && !is_plain_table(L, 2) && !lsq_test_op(L, 2)))
      return lsq_usage(L, "sqorm.op.has takes an association name and an optional where table");
    break;
  case SQ_OP_EXISTS: case SQ_OP_NOT_EXISTS:
    if (n != 1 || !lsq_is_subquery(L, 1)) return lsq_usage(L, "sqorm.op.%s takes a Model:subquery{...}", name);
    break;
  case LSQ_OP_JSON: {
    /* op.json(path, value_or_op): path "a.b" or { "a", "b", 1 } */
    if (n != 2 || (lua_type(L, 1) != LUA_TSTRING && !is_plain_table(L, 1)))
      return lsq_usage(L, "sqorm.op.json takes (path, value or operator): a path \"a.b\" or { \"a\", 1 }");
    lsq_opv *in = lsq_test_op(L, 2);
    if (in && (in->op == SQ_OP_AND || in->op == SQ_OP_OR || in->op == SQ_OP_NOT || in->op == SQ_OP_RAW ||
               in->op == LSQ_OP_JSON))
      return lsq_usage(L, "sqorm.op.json: the comparison is a value or one of eq, ne, gt, gte, lt, lte, between, "
                          "not_between, in_, not_in, like, not_like, is_null, not_null");
    if (!in && !is_scalar(L, 2, 1) && !lsq_is_json_null(L, 2))
      return lsq_usage(L, "sqorm.op.json: compare with a string, number, boolean, sqorm.json_null, sqorm.null or an "
                          "operator, got %s", luaL_typename(L, 2));
    break;
  }
  default:
    return lsq_usage(L, "unknown operator");
  }
  lsq_opv *o = lua_newuserdatauv(L, sizeof *o, n);
  o->op = op;
  o->n = n;
  luaL_setmetatable(L, LSQ_OP_MT);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, i);
  }
  return 1;
}

/* sqorm.raw(fragment [, binds]): the one explicit escape hatch. The
 * fragment is SQL with ? placeholders; binds are values, never text
 * pasted into the SQL. */
static int m_raw(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING) return lsq_usage(L, "sqorm.raw expects an SQL fragment string, got %s", luaL_typename(L, 1));
  int hasb = !lua_isnoneornil(L, 2);
  if (hasb && !is_plain_table(L, 2)) return lsq_usage(L, "sqorm.raw: binds must be a list, got %s", luaL_typename(L, 2));
  if (hasb) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, 2, i);
      if (!is_scalar(L, -1, 1)) return lsq_usage(L, "sqorm.raw: bind #%d is a %s", (int)i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  }
  lsq_opv *o = lua_newuserdatauv(L, sizeof *o, 2);
  o->op = SQ_OP_RAW;
  o->n = 2;
  luaL_setmetatable(L, LSQ_OP_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (hasb) lua_pushvalue(L, 2);
  else lua_newtable(L);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

static int op_tostring(lua_State *L) {
  lsq_opv *o = luaL_checkudata(L, 1, LSQ_OP_MT);
  if (o->op == SQ_OP_RAW) {
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "sqorm.raw(%s)", lua_tostring(L, -1));
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "sqorm.op.");
  luaL_addstring(&b, op_name(o->op));
  luaL_addchar(&b, '(');
  for (int i = 1; i <= o->n; i++) {
    if (i > 1) luaL_addstring(&b, ", ");
    lua_getiuservalue(L, 1, i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      /* quoted as %q would (lua_pushfstring has no %q: it raised a bare
       * "invalid option" error - found by fuzz/lua_api.lua) */
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      luaL_Buffer q;
      luaL_buffinit(L, &q);
      luaL_addchar(&q, '"');
      for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"' || c == '\\') {
          luaL_addchar(&q, '\\');
          luaL_addchar(&q, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
          char esc[8];
          snprintf(esc, sizeof esc, "\\%03u", (unsigned)c);
          luaL_addstring(&q, esc);
        } else {
          luaL_addchar(&q, (char)c);
        }
      }
      luaL_addchar(&q, '"');
      luaL_pushresult(&q);
      lua_remove(L, -2);
    } else {
      luaL_tolstring(L, -1, NULL);
      lua_remove(L, -2);
    }
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}

/* ---------------------------------------------------------------- */
/* sqorm.fn                                                           */
/* ---------------------------------------------------------------- */

enum { FN_NOW = LSQ_FN_NOW, FN_UUIDV4 = LSQ_FN_UUIDV4 };

typedef struct lsq_fnv {
  int kind; /* FN_NOW, FN_UUIDV4 or an sq_fn aggregate */
} lsq_fnv;

static lsq_fnv *test_fn(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return NULL;
  return luaL_testudata(L, idx, LSQ_FN_MT);
}

int lsq_fn_kind(lua_State *L, int idx) {
  lsq_fnv *f = test_fn(L, idx);
  return f ? f->kind : 0;
}

/* sqorm.fn.now() / uuidv4() (defaults) and count/sum/min/max/avg(col
 * [, alias]) (attributes). upvalue 1: the kind. */
static int fn_new(lua_State *L) {
  int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
  if (kind >= FN_NOW) {
    if (lua_gettop(L) != 0) return lsq_usage(L, "sqorm.fn.%s takes no arguments", kind == FN_NOW ? "now" : "uuidv4");
  } else {
    if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TSTRING)
      return lsq_usage(L, "sqorm.fn aggregates take a column name, got %s", luaL_typename(L, 1));
    if (lua_isnoneornil(L, 1) && kind != SQ_FN_COUNT)
      return lsq_usage(L, "sqorm.fn aggregates other than count need a column name");
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
      return lsq_usage(L, "sqorm.fn aggregates take an alias string as second argument");
    /* a name is never cut at a NUL byte: "a\0b" was taken as the alias
     * "a" (found by spec/injection_spec.lua) */
    for (int i = 1; i <= 2; i++) {
      size_t n;
      const char *s = lua_type(L, i) == LUA_TSTRING ? lua_tolstring(L, i, &n) : NULL;
      if (s && strlen(s) != n)
        return lsq_usage(L, "sqorm.fn: the %s holds a NUL byte", i == 1 ? "column name" : "alias");
    }
  }
  lua_settop(L, 2);
  lsq_fnv *f = lua_newuserdatauv(L, sizeof *f, 2);
  f->kind = kind;
  luaL_setmetatable(L, LSQ_FN_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

static int fn_tostring(lua_State *L) {
  lsq_fnv *f = luaL_checkudata(L, 1, LSQ_FN_MT);
  static const char *names[] = {"none", "count", "sum", "min", "max", "avg"};
  if (f->kind == FN_NOW) lua_pushliteral(L, "sqorm.fn.now()");
  else if (f->kind == FN_UUIDV4) lua_pushliteral(L, "sqorm.fn.uuidv4()");
  else {
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "sqorm.fn.%s(%s)", names[f->kind], lua_isstring(L, -1) ? lua_tostring(L, -1) : "*");
  }
  return 1;
}

/* ---------------------------------------------------------------- */
/* values                                                             */
/* ---------------------------------------------------------------- */

int lsq_own_value(sq_arena *a, sq_value *v, sq_err *err) {
  if (v->type != SQ_VTEXT && v->type != SQ_VBLOB) return SQ_OK;
  char *p = sq_arena_alloc(a, v->u.s.n + 1);
  if (!p) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  if (v->u.s.n) memcpy(p, v->u.s.p, v->u.s.n);
  p[v->u.s.n] = '\0';
  v->u.s.p = p;
  return SQ_OK;
}

int lsq_col_value(lua_State *L, int idx, const sq_col *c, sq_value *v, char *buf, sq_arena *a, sq_err *err) {
  if (c->type == SQ_T_JSON && !lua_isnil(L, idx) && !lsq_is_null(L, idx) && !lsq_test_op(L, idx))
    return lsq_json_value(L, idx, c, v, a, err); /* any Lua value as its JSON text (ljson.c) */
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) *v = sq_int(lua_tointeger(L, idx));
    else *v = sq_float(lua_tonumber(L, idx));
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *str = lua_tolstring(L, idx, &n);
    if (c->type == SQ_T_DATETIME && lsq_is_now_text(str, n)) {
      /* a timestamp sqorm wrote itself: already in the canonical form */
      *v = sq_text(str, n);
      return a ? lsq_own_value(a, v, err) : SQ_OK;
    }
    if (lsq_to_value(L, idx, v, "value", err)) return err->kind;
    break;
  }
  case LUA_TBOOLEAN:
    *v = sq_bool(lua_toboolean(L, idx));
    break;
  case LUA_TNIL:
    return sq_err_set(err, SQ_EUSAGE, "column '%s' got nil (use sqorm.null for NULL)", c->name);
  default:
    if (lsq_is_null(L, idx)) {
      *v = sq_null();
      return SQ_OK;
    }
    if (lsq_test_op(L, idx))
      return sq_err_set(err, SQ_EUSAGE, "column '%s' got an operator value where a plain value belongs", c->name);
    return sq_err_set(err, SQ_EUSAGE, "column '%s' got a %s; expected a string, number, boolean or sqorm.null",
                      c->name, luaL_typename(L, idx));
  }
  if (sq_coerce(c, v, buf, err)) return err->kind;
  /* With an arena, the value is the operation's own: user Lua that runs
   * before it is sent (validators, the logging function, finalisers) can
   * change or collect the Lua string without touching it. */
  return a ? lsq_own_value(a, v, err) : SQ_OK;
}

/* ---------------------------------------------------------------- */
/* where                                                              */
/* ---------------------------------------------------------------- */

static sq_expr *new_expr(lsq_qb *b, int op, int col) {
  sq_expr *e = sq_arena_alloc(b->scratch->arena, sizeof *e);
  if (!e) {
    sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    return NULL;
  }
  memset(e, 0, sizeof *e);
  e->op = op;
  e->col = col;
  return e;
}

static int nomem(lsq_qb *b) { return sq_err_set(b->err, SQ_ENOMEM, "out of memory"); }

static const char *model_name(lsq_qb *b) { return sq_model_name(b->mod->m); }

/* An error for a key of a where that is no column. */
static int unknown_column(lsq_qb *b, const char *what, const char *k, size_t n) {
  char shown[80];
  size_t i, o = 0;
  for (i = 0; i < n && o < sizeof shown - 4; i++) {
    unsigned char ch = (unsigned char)k[i];
    shown[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  if (i < n) { memcpy(shown + o, "...", 3); o += 3; }
  shown[o] = '\0';
  if (n > 0 && (k[0] == '$' || k[0] == '@'))
    return sq_err_set(b->err, SQ_EUSAGE,
                      "%s: '%s' is not a column of %s; operators are values made by sqorm.op "
                      "(e.g. coins = sqorm.op.gt(300)), never string keys",
                      what, shown, model_name(b));
  return sq_err_set(b->err, SQ_EUSAGE, "%s: %s has no column '%s'", what, model_name(b), shown);
}

int lsq_col_index(lsq_qb *b, int idx, const char *what) {
  lua_State *L = b->L;
  if (lua_type(L, idx) != LUA_TSTRING) {
    sq_err_set(b->err, SQ_EUSAGE, "%s: expected a column name, got %s", what, luaL_typename(L, idx));
    return -1;
  }
  size_t n;
  const char *k = lua_tolstring(L, idx, &n);
  int c = sq_model_find(b->mod->m, k, n);
  if (c < 0) unknown_column(b, what, k, n);
  return c;
}

/* One value for column c into *v (strings copied into the arena when
 * produced by the conversion). */
static int one_value(lsq_qb *b, int idx, int c, sq_value *v) {
  char buf[48];
  return lsq_col_value(b->L, idx, sq_model_col(b->mod->m, c), v, buf, b->scratch->arena, b->err);
}

/* IN list: the table at idx must be a sequence of plain values. */
static int in_list(lsq_qb *b, int idx, int c, sq_expr *e) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  const sq_col *col = sq_model_col(b->mod->m, c);
  /* Every key must be 1..n: a table with other keys (a decoded JSON
   * object such as {["$gt"] = 1}) is not a list. */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
      if (lua_type(L, -1) == LUA_TSTRING) {
        size_t kn;
        const char *k = lua_tolstring(L, -1, &kn);
        char shown[40];
        snprintf(shown, sizeof shown, "%.*s", (int)(kn > 32 ? 32 : kn), k);
        sq_err_set(b->err, SQ_EUSAGE,
                   "where: column '%s' got a table with key '%s'; a table value must be a list of values (IN). "
                   "Operators are values made by sqorm.op, never string keys",
                   col->name, shown);
      } else {
        sq_err_set(b->err, SQ_EUSAGE, "where: column '%s' got a table that is not a list of values", col->name);
      }
      lua_pop(L, 1);
      return b->err->kind;
    }
  }
  if (count != n) return sq_err_set(b->err, SQ_EUSAGE, "where: column '%s' got a list with holes", col->name);
  if (n > 10000000) return sq_err_set(b->err, SQ_EUSAGE, "where: column '%s': IN list too long", col->name);
  sq_value *vals = NULL;
  if (n > 0) {
    vals = sq_arena_alloc(b->scratch->arena, sizeof *vals * (size_t)n);
    if (!vals) return nomem(b);
  }
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, idx, i);
    if (t == LUA_TTABLE || t == LUA_TUSERDATA) {
      int isnull = lsq_is_null(L, -1);
      lua_pop(L, 1);
      if (isnull)
        return sq_err_set(b->err, SQ_EUSAGE, "where: column '%s': sqorm.null in an IN list never matches; use sqorm.op.is_null()",
                          col->name);
      return sq_err_set(b->err, SQ_EUSAGE, "where: column '%s': IN list item #%lld is a %s; expected plain values", col->name,
                        (long long)i, t == LUA_TTABLE ? "table" : "userdata");
    }
    int rc = one_value(b, -1, c, &vals[i - 1]);
    lua_pop(L, 1);
    if (rc) return rc;
  }
  e->vals = vals;
  e->nvals = (int)n;
  return SQ_OK;
}

static int build_col(lsq_qb *b, int c, int vidx, sq_expr **out);
static int build_cond(lsq_qb *b, int idx, sq_expr **out);

/* A logical node whose kids come from the op's operands. col >= 0: at
 * column level. */
static int logical(lsq_qb *b, int opidx, lsq_opv *o, int c, sq_expr **out) {
  lua_State *L = b->L;
  if (!lua_checkstack(L, 8)) return nomem(b);
  sq_expr *e = new_expr(b, o->op, -1);
  if (!e) return b->err->kind;
  /* op.or_{ {a = 1}, {b = 2} }: one list of where tables */
  int list = 0;
  if (c < 0 && o->op != SQ_OP_NOT && o->n == 1) {
    lua_getiuservalue(L, opidx, 1);
    if (is_plain_table(L, -1) && lua_rawlen(L, -1) > 0) {
      lua_rawgeti(L, -1, 1);
      list = is_plain_table(L, -1);
      lua_pop(L, 1);
      if (list) {
        /* a list of where tables only: no string keys, and every
         * integer key is 1..n (an item past a hole must not vanish) */
        lua_Integer count = 0, len = (lua_Integer)lua_rawlen(L, -1);
        int holes = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
          lua_pop(L, 1);
          count++;
          if (!lua_isinteger(L, -1)) list = 0;
          else if (lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) holes = 1;
        }
        if (list && (holes || count != len)) {
          lua_pop(L, 1);
          return sq_err_set(b->err, SQ_EUSAGE, "%s: sqorm.op.%s got a list of conditions with holes", b->method,
                            op_name(o->op));
        }
      }
    }
    if (!list) lua_pop(L, 1);
  }
  int n = list ? (int)lua_rawlen(L, -1) : o->n;
  e->kids = sq_arena_alloc(b->scratch->arena, sizeof *e->kids * (size_t)(n ? n : 1));
  if (!e->kids) {
    if (list) lua_pop(L, 1);
    return nomem(b);
  }
  int rc = SQ_OK;
  for (int i = 1; i <= n && !rc; i++) {
    if (list) lua_rawgeti(L, -1, i);
    else lua_getiuservalue(L, opidx, i);
    sq_expr *kid = NULL;
    rc = c >= 0 ? build_col(b, c, lua_gettop(L), &kid) : build_cond(b, lua_gettop(L), &kid);
    lua_pop(L, 1);
    if (!rc && kid) e->kids[e->nkids++] = kid;
  }
  if (list) lua_pop(L, 1);
  if (rc) return rc;
  if (o->op == SQ_OP_NOT && e->nkids != 1)
    return sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.not_ of an empty condition");
  *out = e;
  return SQ_OK;
}

/* sqorm.raw(fragment, binds) as a condition. */
static int raw_expr(lsq_qb *b, int opidx, sq_expr **out) {
  lua_State *L = b->L;
  sq_expr *e = new_expr(b, SQ_OP_RAW, -1);
  if (!e) return b->err->kind;
  lua_getiuservalue(L, opidx, 1);
  const char *frag = lua_tolstring(L, -1, &e->raw_len);
  char *own = sq_arena_alloc(b->scratch->arena, e->raw_len + 1);
  if (own) memcpy(own, frag, e->raw_len + 1);
  e->raw = own;
  lua_pop(L, 1);
  if (!own) return nomem(b);
  lua_getiuservalue(L, opidx, 2);
  int n = (int)lua_rawlen(L, -1);
  sq_value *vals = sq_arena_alloc(b->scratch->arena, sizeof *vals * (size_t)(n ? n : 1));
  if (!vals) {
    lua_pop(L, 1);
    return nomem(b);
  }
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    int rc = lsq_to_value(L, -1, &vals[i - 1], "sqorm.raw bind", b->err);
    if (!rc) rc = lsq_own_value(b->scratch->arena, &vals[i - 1], b->err);
    lua_pop(L, 1);
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
  }
  lua_pop(L, 1);
  e->vals = vals;
  e->nvals = n;
  *out = e;
  return SQ_OK;
}

/* The JSON type a value compares as (0: none). */
static int json_type_of(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: return SQ_JT_STRING;
  case LUA_TNUMBER: return SQ_JT_NUMBER;
  case LUA_TBOOLEAN: return SQ_JT_BOOL;
  default: return 0;
  }
}

/* The path of op.json (user value 1 of the op at opidx) as the
 * dialect's path text, in the arena. */
static int json_path(lsq_qb *b, int opidx, sq_jpath *jp) {
  lua_State *L = b->L;
  lua_getiuservalue(L, opidx, 1);
  int pidx = lua_gettop(L), n = 0, rc = SQ_OK;
  sq_jseg *segs;
  size_t total = 0;
  if (lua_type(L, pidx) == LUA_TSTRING) {
    size_t len;
    const char *p = lua_tolstring(L, pidx, &len);
    int cnt = len ? 1 : 0;
    for (size_t i = 0; i < len; i++) cnt += p[i] == '.';
    segs = sq_arena_alloc(b->scratch->arena, sizeof *segs * (size_t)(cnt ? cnt : 1));
    if (!segs) rc = nomem(b);
    for (size_t i = 0, start = 0; !rc && len && i <= len; i++) {
      if (i < len && p[i] != '.') continue;
      if (i == start) rc = sq_err_set(b->err, SQ_EUSAGE, "sqorm.op.json: path '%.64s' has an empty key (use a list { ... } "
                                                         "for keys holding dots)", p);
      segs[n].key = p + start;
      segs[n].klen = i - start;
      total += segs[n].klen;
      n++;
      start = i + 1;
    }
  } else {
    lua_Integer len = (lua_Integer)lua_rawlen(L, pidx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, pidx)) {
      lua_pop(L, 1);
      count++;
    }
    if (count != len || len > 256)
      return lua_pop(L, 1), sq_err_set(b->err, SQ_EUSAGE, "sqorm.op.json: a path list must be a list (1..n, at most 256)");
    segs = sq_arena_alloc(b->scratch->arena, sizeof *segs * (size_t)(len ? len : 1));
    if (!segs) rc = nomem(b);
    for (lua_Integer i = 1; !rc && i <= len; i++) {
      int t = lua_rawgeti(L, pidx, i);
      if (t == LUA_TSTRING) {
        segs[n].key = lua_tolstring(L, -1, &segs[n].klen); /* anchored by the path list */
        total += segs[n].klen;
      } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
        segs[n].key = NULL;
        segs[n].index = (int64_t)lua_tointeger(L, -1) - 1; /* Lua's 1-based position */
      } else {
        rc = sq_err_set(b->err, SQ_EUSAGE, "sqorm.op.json: path item #%d must be a key (string) or a position (integer >= 1)",
                        (int)i);
      }
      lua_pop(L, 1);
      n++;
    }
  }
  if (!rc) {
    size_t cap = total * 2 + (size_t)n * 26 + 8;
    char *text = sq_arena_alloc(b->scratch->arena, cap);
    size_t tlen = 0;
    if (!text) rc = nomem(b);
    else if (!(rc = sq_json_path(b->mod->dialect, segs, n, text, cap, &tlen, b->err))) jp->path = sq_text(text, tlen);
  }
  lua_settop(L, pidx - 1);
  return rc;
}

/* column = sqorm.op.json(path, value_or_op): a comparison node with its
 * jpath (render.c). */
static int json_expr(lsq_qb *b, int c, int opidx, sq_expr **out) {
  lua_State *L = b->L;
  const sq_col *col = sq_model_col(b->mod->m, c);
  if (col->type != SQ_T_JSON)
    return sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.json needs a JSON column; '%s' is %s", col->name,
                      sq_ctype_name(col->type));
  sq_jpath *jp = sq_arena_alloc(b->scratch->arena, sizeof *jp);
  if (!jp) return nomem(b);
  memset(jp, 0, sizeof *jp);
  int rc = json_path(b, opidx, jp);
  if (rc) return rc;
  sq_expr *e = new_expr(b, SQ_OP_EQ, c);
  if (!e) return b->err->kind;
  e->jpath = jp;
  lua_getiuservalue(L, opidx, 2);
  int vidx = lua_gettop(L);
  lsq_opv *o = lsq_test_op(L, vidx);
  int list = 0; /* the values: the op's user values, or the IN list */
  if (!o) {
    if (lsq_is_json_null(L, vidx)) e->op = SQ_OP_IS_NULL, jp->jtype = SQ_JT_NULL;
    else if (lsq_is_null(L, vidx)) e->op = SQ_OP_IS_NULL, jp->jtype = SQ_JT_ANY;
    else jp->jtype = json_type_of(L, vidx);
  } else {
    e->op = o->op;
    if (o->op == SQ_OP_IS_NULL || o->op == SQ_OP_NOT_NULL) jp->jtype = SQ_JT_ANY;
    if (o->op == SQ_OP_IN || o->op == SQ_OP_NOT_IN) list = 1;
  }
  int nv = 0;
  if (!jp->jtype) {
    /* the values of the operator: one JSON type for all */
    int cnt = list ? -1 : o->n;
    if (list) {
      lua_getiuservalue(L, vidx, 1);
      cnt = (int)lua_rawlen(L, -1);
      lua_pop(L, 1);
      if (cnt < 1) rc = sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.json on '%s': an empty in_ / not_in list", col->name);
    }
    sq_value *vals = rc ? NULL : sq_arena_alloc(b->scratch->arena, sizeof *vals * (size_t)(cnt > 0 ? cnt : 1));
    if (!rc && !vals) rc = nomem(b);
    if (list && !rc) lua_getiuservalue(L, vidx, 1);
    for (int i = 0; !rc && i < cnt; i++) {
      if (list) lua_rawgeti(L, -1, i + 1);
      else lua_getiuservalue(L, vidx, i + 1);
      if (lsq_is_null(L, -1) && o && cnt == 1 && (o->op == SQ_OP_EQ || o->op == SQ_OP_NE)) {
        /* op.eq(sqorm.null) / op.ne(sqorm.null): is there a value at all */
        e->op = o->op == SQ_OP_EQ ? SQ_OP_IS_NULL : SQ_OP_NOT_NULL;
        jp->jtype = SQ_JT_ANY;
        lua_pop(L, 1);
        break;
      }
      int t = json_type_of(L, -1);
      if (!t) rc = sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.json on '%s': value #%d is a %s; compare with strings, "
                                                 "numbers or booleans", col->name, i + 1, luaL_typename(L, -1));
      else if (jp->jtype && t != jp->jtype)
        rc = sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.json on '%s': the values mix JSON types (strings, numbers, "
                                           "booleans)", col->name);
      else {
        jp->jtype = t;
        rc = lsq_to_value(L, -1, &vals[nv], "op.json value", b->err);
        if (!rc) rc = lsq_own_value(b->scratch->arena, &vals[nv], b->err);
        nv++;
      }
      lua_pop(L, 1);
    }
    if (list && vals) lua_pop(L, 1);
    e->vals = vals;
  } else if (!o && jp->jtype != SQ_JT_NULL && jp->jtype != SQ_JT_ANY) {
    sq_value *v = sq_arena_alloc(b->scratch->arena, sizeof *v);
    if (!v) rc = nomem(b);
    else {
      rc = lsq_to_value(L, vidx, v, "op.json value", b->err);
      if (!rc) rc = lsq_own_value(b->scratch->arena, v, b->err);
      e->vals = v;
      nv = 1;
    }
  }
  e->nvals = nv;
  lua_settop(L, vidx - 1);
  if (!rc && (e->op == SQ_OP_LIKE || e->op == SQ_OP_NOT_LIKE) && jp->jtype != SQ_JT_STRING)
    rc = sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.json on '%s': like takes a string", col->name);
  if (!rc) *out = e;
  return rc;
}

/* The condition on column c given by the value at vidx. */
static int build_col(lsq_qb *b, int c, int vidx, sq_expr **out) {
  lua_State *L = b->L;
  const sq_col *col = sq_model_col(b->mod->m, c);
  if (++b->depth > MAX_DEPTH) return sq_err_set(b->err, SQ_EUSAGE, "where: nested more than %d levels deep", MAX_DEPTH);
  int rc = SQ_OK;
  lsq_opv *o = lsq_test_op(L, vidx);
  sq_expr *e = NULL;
  int xr = lsq_where_ext_col(b, c, vidx, &e); /* sqorm.col / fn operands, subqueries (reads) */
  if (xr >= 0) {
    b->depth--;
    if (!xr) *out = e;
    return xr;
  }
  if (o) {
    switch (o->op) {
    case SQ_OP_AND: case SQ_OP_OR: case SQ_OP_NOT:
      rc = logical(b, vidx, o, c, &e);
      break;
    case SQ_OP_RAW:
      rc = sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.raw is a condition of its own (a list item of the where), "
                                         "not a value for column '%s'", col->name);
      break;
    case SQ_OP_IS_NULL: case SQ_OP_NOT_NULL:
      if (!(e = new_expr(b, o->op, c))) rc = b->err->kind;
      break;
    case LSQ_OP_JSON:
      rc = json_expr(b, c, vidx, &e);
      break;
    case SQ_OP_IN: case SQ_OP_NOT_IN:
      if (!(e = new_expr(b, o->op, c))) rc = b->err->kind;
      else {
        lua_getiuservalue(L, vidx, 1);
        rc = in_list(b, -1, c, e);
        lua_pop(L, 1);
      }
      break;
    case SQ_OP_LIKE: case SQ_OP_NOT_LIKE: {
      if (!(e = new_expr(b, o->op, c))) { rc = b->err->kind; break; }
      sq_value *v = sq_arena_alloc(b->scratch->arena, sizeof *v);
      if (!v) { rc = nomem(b); break; }
      lua_getiuservalue(L, vidx, 1);
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      *v = sq_text(s, n);
      rc = lsq_own_value(b->scratch->arena, v, b->err);
      lua_pop(L, 1);
      e->vals = v;
      e->nvals = 1;
      break;
    }
    default: { /* comparisons with 1 or 2 values */
      if (!(e = new_expr(b, o->op, c))) { rc = b->err->kind; break; }
      sq_value *v = sq_arena_alloc(b->scratch->arena, sizeof *v * (size_t)o->n);
      if (!v) { rc = nomem(b); break; }
      for (int i = 0; i < o->n && !rc; i++) {
        lua_getiuservalue(L, vidx, i + 1);
        rc = one_value(b, -1, c, &v[i]);
        lua_pop(L, 1);
      }
      e->vals = v;
      e->nvals = o->n;
    }
    }
  } else if (lsq_is_null(L, vidx)) {
    if (!(e = new_expr(b, SQ_OP_IS_NULL, c))) rc = b->err->kind;
  } else if (lua_type(L, vidx) == LUA_TTABLE) {
    if (!(e = new_expr(b, SQ_OP_IN, c))) rc = b->err->kind;
    else rc = in_list(b, vidx, c, e);
  } else {
    sq_value *v = sq_arena_alloc(b->scratch->arena, sizeof *v);
    if (!v) rc = nomem(b);
    else if (!(e = new_expr(b, SQ_OP_EQ, c))) rc = b->err->kind;
    else {
      rc = one_value(b, vidx, c, v);
      e->vals = v;
      e->nvals = 1;
    }
  }
  b->depth--;
  if (!rc) *out = e;
  return rc;
}

/* A kid of a where table, sorted by (list, key): columns first in column
 * order, then list items in key order (any integer key, so no sum of
 * the two can overflow). */
typedef struct kid_entry {
  int list;
  lua_Integer key;
  sq_expr *e;
} kid_entry;

static int kid_after(const kid_entry *a, int list, lua_Integer key) {
  return a->list != list ? a->list > list : a->key > key;
}

/* A where table: column keys (ANDed, in column order so equal shapes
 * render the same SQL) and list items (logical operators and raw). An
 * empty one is refused at any depth: in Lua { token = nil } arrives as
 * {}, and a condition that vanished must not match every row. */
static int where_table(lsq_qb *b, int idx, sq_expr **out) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
  }
  *out = NULL;
  if (n == 0) {
    if (b->depth <= 1)
      return sq_err_set(b->err, SQ_EUSAGE,
                        "%s: where is empty (a nil value such as { token = nil } leaves it empty); omit where to "
                        "mean every row",
                        b->method);
    return sq_err_set(b->err, SQ_EUSAGE,
                      "%s: where has an empty condition table inside an operator (a nil value such as "
                      "{ token = nil } leaves it empty)",
                      b->method);
  }
  kid_entry *kids = sq_arena_alloc(b->scratch->arena, sizeof *kids * (size_t)n);
  if (!kids) return nomem(b);
  int k = 0, rc = SQ_OK;
  lua_pushnil(L);
  while (!rc && lua_next(L, idx)) {
    int vidx = lua_gettop(L);
    sq_expr *e = NULL;
    int list = 0;
    lua_Integer key = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t kn;
      const char *ks = lua_tolstring(L, -2, &kn);
      int c = sq_model_find(b->mod->m, ks, kn);
      if (c < 0 && b->ext && kn > 0 && ks[0] != '$' && ks[0] != '@') {
        rc = lsq_where_ext_key(b, ks, kn, vidx, &e); /* "author.name", an attribute alias (having) */
        key = (lua_Integer)1 << 40;
      } else if (c < 0) rc = unknown_column(b, "where", ks, kn);
      else {
        rc = build_col(b, c, vidx, &e);
        key = c;
      }
    } else if (lua_isinteger(L, -2)) {
      lsq_opv *o = lsq_test_op(L, vidx);
      if (!o) {
        rc = sq_err_set(b->err, SQ_EUSAGE,
                        "where: list item #%lld is a %s; list items of a where must be sqorm.op.and_/or_/not_/has or "
                        "sqorm.raw values (column conditions are name = value)",
                        (long long)lua_tointeger(L, -2), luaL_typename(L, vidx));
      } else {
        rc = build_cond(b, vidx, &e);
        list = 1;
        key = lua_tointeger(L, -2);
      }
    } else {
      rc = sq_err_set(b->err, SQ_EUSAGE, "where: keys must be column names, got a %s key", luaL_typename(L, -2));
    }
    lua_pop(L, 1);
    if (!rc && e) {
      /* insertion sort by (list, key) */
      int j = k++;
      while (j > 0 && kid_after(&kids[j - 1], list, key)) {
        kids[j] = kids[j - 1];
        j--;
      }
      kids[j].list = list;
      kids[j].key = key;
      kids[j].e = e;
    }
  }
  if (rc) {
    lua_settop(L, idx);
    return rc;
  }
  if (k == 0) return SQ_OK;
  if (k == 1) {
    *out = kids[0].e;
    return SQ_OK;
  }
  sq_expr *and = new_expr(b, SQ_OP_AND, -1);
  if (!and) return b->err->kind;
  and->kids = sq_arena_alloc(b->scratch->arena, sizeof *and->kids * (size_t)k);
  if (!and->kids) return nomem(b);
  for (int i = 0; i < k; i++) and->kids[i] = kids[i].e;
  and->nkids = k;
  *out = and;
  return SQ_OK;
}

/* A condition without a column: a where table or a logical/raw op. */
static int build_cond(lsq_qb *b, int idx, sq_expr **out) {
  lua_State *L = b->L;
  *out = NULL;
  if (++b->depth > MAX_DEPTH) return sq_err_set(b->err, SQ_EUSAGE, "where: nested more than %d levels deep", MAX_DEPTH);
  if (!lua_checkstack(L, 8)) return nomem(b);
  int rc;
  lsq_opv *o = lsq_test_op(L, idx);
  if (o) {
    if (o->op == SQ_OP_AND || o->op == SQ_OP_OR || o->op == SQ_OP_NOT) rc = logical(b, lua_absindex(L, idx), o, -1, out);
    else if (o->op == SQ_OP_RAW) rc = raw_expr(b, lua_absindex(L, idx), out);
    else if (o->op == SQ_OP_HAS || o->op == SQ_OP_EXISTS || o->op == SQ_OP_NOT_EXISTS)
      rc = lsq_where_ext_cond(b, lua_absindex(L, idx), o->op, out);
    else
      rc = sq_err_set(b->err, SQ_EUSAGE, "where: sqorm.op.%s needs a column: write { column = sqorm.op.%s(...) }",
                      op_name(o->op), op_name(o->op));
  } else if (lua_type(L, idx) == LUA_TTABLE) {
    rc = where_table(b, idx, out);
  } else {
    rc = sq_err_set(b->err, SQ_EUSAGE, "where: expected a table of conditions, got %s", luaL_typename(L, idx));
  }
  b->depth--;
  return rc;
}

int lsq_build_where(lsq_qb *b, int idx, sq_expr **out) {
  if (!lsq_scratch_arena(b->scratch, b->err)) return b->err->kind;
  return build_cond(b, lua_absindex(b->L, idx), out);
}


/* ---------------------------------------------------------------- */
/* registration                                                       */
/* ---------------------------------------------------------------- */

/* Adds op, raw and fn to the module table at modidx. */
void lsq_where_open(lua_State *L, int modidx) {
  modidx = lua_absindex(L, modidx);
  if (luaL_newmetatable(L, LSQ_OP_MT)) {
    lua_pushcfunction(L, op_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "sqorm.Op");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LSQ_FN_MT)) {
    lua_pushcfunction(L, fn_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "sqorm.Fn");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);

  lua_newtable(L);
  for (int i = 0; op_names[i].name; i++) {
    lua_pushinteger(L, op_names[i].op);
    lua_pushcclosure(L, op_new, 1);
    lua_setfield(L, -2, op_names[i].name);
  }
  lua_setfield(L, modidx, "op");

  lua_pushcfunction(L, m_raw);
  lua_setfield(L, modidx, "raw");

  static const struct {
    const char *name;
    int kind;
  } fns[] = {{"now", FN_NOW}, {"uuidv4", FN_UUIDV4}, {"count", SQ_FN_COUNT}, {"sum", SQ_FN_SUM},
             {"min", SQ_FN_MIN}, {"max", SQ_FN_MAX}, {"avg", SQ_FN_AVG}, {NULL, 0}};
  lua_newtable(L);
  for (int i = 0; fns[i].name; i++) {
    lua_pushinteger(L, fns[i].kind);
    lua_pushcclosure(L, fn_new, 1);
    lua_setfield(L, -2, fns[i].name);
  }
  lua_setfield(L, modidx, "fn");
}

