/*
 * ltypes.c - sqorm.types: the type values (T.STRING(32), T.DECIMAL(10, 2),
 * T.ENUM{ ... }) and how db:define reads one into a column definition.
 */
#include "lmodel.h"

#include <string.h>

/* ---------------------------------------------------------------- */
/* sqorm.types                                                        */
/* ---------------------------------------------------------------- */

typedef struct lsq_typev {
  int type, length, precision, scale;
  int nenum;                 /* T.ENUM{...}: its values (anchored by user value 1, a list) */
  const char *enumv[];
} lsq_typev;

static const struct {
  const char *name;
  int type;
  int params; /* 0 none, 1 length, 2 precision [, scale], 3 a list of values (ENUM) */
} type_names[] = {
  {"INTEGER", SQ_T_INTEGER, 0}, {"BIGINT", SQ_T_BIGINT, 0}, {"SMALLINT", SQ_T_SMALLINT, 0},
  {"FLOAT", SQ_T_FLOAT, 0}, {"DOUBLE", SQ_T_DOUBLE, 0}, {"DECIMAL", SQ_T_DECIMAL, 2},
  {"STRING", SQ_T_STRING, 1}, {"CHAR", SQ_T_CHAR, 1}, {"TEXT", SQ_T_TEXT, 0},
  {"BOOLEAN", SQ_T_BOOLEAN, 0}, {"DATE", SQ_T_DATE, 0}, {"DATETIME", SQ_T_DATETIME, 0},
  {"BLOB", SQ_T_BLOB, 0}, {"UUID", SQ_T_UUID, 0}, {"JSON", SQ_T_JSON, 0}, {"ENUM", SQ_T_ENUM, 3},
  {NULL, 0, 0},
};

static int type_params(int type) {
  for (int i = 0; type_names[i].name; i++)
    if (type_names[i].type == type) return type_names[i].params;
  return 0;
}

static lsq_typev *push_type_n(lua_State *L, int type, int nenum) {
  size_t sz = sizeof(lsq_typev) + sizeof(const char *) * (size_t)nenum;
  lsq_typev *t = lua_newuserdatauv(L, sz, 1);
  memset(t, 0, sz);
  t->nenum = nenum;
  t->type = type;
  luaL_setmetatable(L, LSQ_TYPE_MT);
  return t;
}

static lsq_typev *push_type(lua_State *L, int type) {
  lsq_typev *t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  t->type = type;
  luaL_setmetatable(L, LSQ_TYPE_MT);
  return t;
}

/* A plain type value (no ENUM values), for the migrator's diff. */
void lsq_type_push(lua_State *L, int type, int length, int precision, int scale) {
  lsq_typev *t = push_type(L, type);
  t->length = length;
  t->precision = precision;
  t->scale = scale;
}

/* An ENUM type value with the values vals[0..n) (copied into Lua
 * strings the type value anchors), for the migrator's diff. */
void lsq_type_push_enum(lua_State *L, const char *const *vals, int n) {
  lsq_typev *t = push_type_n(L, SQ_T_ENUM, n);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, vals[i]);
    t->enumv[i] = lua_tostring(L, -1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setiuservalue(L, -2, 1);
}

/* The type value at idx (none: 0), with its ENUM values (borrowed: the
 * type value anchors them). */
int lsq_type_get(lua_State *L, int idx, int *length, int *precision, int *scale, const char *const **enumv,
                 int *nenum) {
  lsq_typev *t = lua_type(L, idx) == LUA_TUSERDATA ? luaL_testudata(L, idx, LSQ_TYPE_MT) : NULL;
  if (!t) return 0;
  *length = t->length;
  *precision = t->precision;
  *scale = t->scale;
  *enumv = t->enumv;
  *nenum = t->nenum;
  return t->type;
}

/* T.ENUM{ "common", "rare" }: the values are checked here (strings, 1..63
 * bytes, no repeats) and kept, in order, by the type value. */
static int enum_call(lua_State *L, int n) {
  if (n != 1 || lua_type(L, 2) != LUA_TTABLE)
    return lsq_usage(L, "sqorm.types.ENUM takes a list of values: T.ENUM{ \"a\", \"b\" }");
  lua_Integer len = (lua_Integer)lua_rawlen(L, 2), count = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    lua_pop(L, 1);
    count++;
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len)
      return lsq_usage(L, "sqorm.types.ENUM takes a list of values (no other keys)");
  }
  if (len < 1 || len > SQ_ENUM_MAX || count != len)
    return lsq_usage(L, "sqorm.types.ENUM takes a list of 1 to %d values", SQ_ENUM_MAX);
  lsq_typev *t = push_type_n(L, SQ_T_ENUM, (int)len);
  lua_createtable(L, (int)len, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
      return lsq_usage(L, "sqorm.types.ENUM: value #%d is a %s, not a string", (int)i, luaL_typename(L, -1));
    size_t vn;
    const char *v = lua_tolstring(L, -1, &vn);
    if (vn == 0 || vn > 63 || strlen(v) != vn)
      return lsq_usage(L, "sqorm.types.ENUM: value #%d must be 1 to 63 bytes without NUL", (int)i);
    for (lua_Integer j = 1; j < i; j++)
      if (!strcmp(t->enumv[j - 1], v)) return lsq_usage(L, "sqorm.types.ENUM: value '%s' is listed twice", v);
    t->enumv[i - 1] = v;
    lua_rawseti(L, -2, i);
  }
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* T.STRING(32), T.CHAR(36), T.DECIMAL(10, 2): a new, parametrised type. */
static int type_call(lua_State *L) {
  lsq_typev *t = luaL_checkudata(L, 1, LSQ_TYPE_MT);
  int params = type_params(t->type);
  const char *name = sq_ctype_name(t->type);
  int n = lua_gettop(L) - 1;
  if (params == 0) return lsq_usage(L, "sqorm.types.%s takes no arguments", name);
  if (params == 3) return enum_call(L, n);
  for (int i = 2; i <= lua_gettop(L); i++)
    if (!lua_isinteger(L, i) || lua_tointeger(L, i) < 0 || lua_tointeger(L, i) > 65535)
      return lsq_usage(L, "sqorm.types.%s takes integer arguments", name);
  if (n < 1 || n > params) return lsq_usage(L, "sqorm.types.%s takes %s", name, params == 1 ? "one length" : "(precision [, scale])");
  lsq_typev *r = push_type(L, t->type);
  if (params == 1) r->length = (int)lua_tointeger(L, 2);
  else {
    r->precision = (int)lua_tointeger(L, 2);
    r->scale = n > 1 ? (int)lua_tointeger(L, 3) : 0;
  }
  return 1;
}

static int type_tostring(lua_State *L) {
  lsq_typev *t = luaL_checkudata(L, 1, LSQ_TYPE_MT);
  const char *name = sq_ctype_name(t->type);
  if (t->nenum) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "ENUM(");
    for (int i = 0; i < t->nenum; i++) {
      if (i) luaL_addstring(&b, ", ");
      luaL_addchar(&b, '\'');
      luaL_addstring(&b, t->enumv[i]);
      luaL_addchar(&b, '\'');
    }
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
  } else if (t->length) lua_pushfstring(L, "%s(%d)", name, t->length);
  else if (t->precision) lua_pushfstring(L, "%s(%d,%d)", name, t->precision, t->scale);
  else lua_pushstring(L, name);
  return 1;
}

static int type_eq(lua_State *L) {
  lsq_typev *a = luaL_testudata(L, 1, LSQ_TYPE_MT), *b = luaL_testudata(L, 2, LSQ_TYPE_MT);
  int same = a && b && !memcmp(a, b, sizeof *a);
  for (int i = 0; same && i < a->nenum; i++) same = !strcmp(a->enumv[i], b->enumv[i]);
  lua_pushboolean(L, same);
  return 1;
}

void lsq_types_open(lua_State *L, int modidx) {
  if (luaL_newmetatable(L, LSQ_TYPE_MT)) {
    lua_pushcfunction(L, type_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, type_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, type_eq);
    lua_setfield(L, -2, "__eq");
    lua_pushliteral(L, "sqorm.Type");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  for (int i = 0; type_names[i].name; i++) {
    push_type(L, type_names[i].type);
    lua_setfield(L, -2, type_names[i].name);
  }
  lua_setfield(L, modidx, "types");
}

/* The type value at idx into d (raises when it is none). */
void lsq_coldef_type(lua_State *L, int idx, sq_coldef *d) {
  lsq_typev *t = lua_type(L, idx) == LUA_TUSERDATA ? luaL_testudata(L, idx, LSQ_TYPE_MT) : NULL;
  if (!t) lsq_usage(L, "column '%s': expected a type from sqorm.types, got %s", d->name, luaL_typename(L, idx));
  d->type = t->type;
  d->length = t->length;
  d->precision = t->precision;
  d->scale = t->scale;
  if (t->type == SQ_T_ENUM && !t->nenum)
    lsq_usage(L, "column '%s': sqorm.types.ENUM needs its values: T.ENUM{ \"a\", \"b\" }", d->name);
  d->enum_values = t->enumv; /* anchored by the type value, which the spec holds */
  d->nenum_values = t->nenum;
}

