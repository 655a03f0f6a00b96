/*
 * lassoc.c - associations in the binding: Model:belongs_to / has_one /
 * has_many / belongs_to_many (sq_model_associate does the checking and
 * adds the foreign-key columns; the models that changed are refreshed
 * here), the association info tables the rest of the binding reads, the
 * instance __index that refuses to read an association that was not
 * loaded, and the marks of the N+1 guard (lazy = "raise").
 *
 * Per model, MUV_EXTRA.assocs maps a name to its info table:
 *   { kind = "has_many", as =, singular =, to_many =, source = Model,
 *     target = Model, through = Model | nil, foreign_key =, source_key =,
 *     target_key =, other_key =, scope = where | nil, lazy = "raise" | nil }
 * Accessors (get_<as>, ...) are thin Lua over the model methods
 * (lua/sqorm/assoc.lua), installed into the instance methods here.
 */
#include "lassoc.h"

#include <string.h>

static const char NILS_KEY = 0;  /* registry: weak { [instance] = { [as] = true } } (to-one loaded as nil) */
static const char MARKS_KEY = 0; /* registry: weak { [instance] = true } (loaded under lazy = "raise") */

/* Pushes the weak-keyed registry table at key. */
static void push_weak(lua_State *L, const char *key) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void lsq_assoc_mark_nil(lua_State *L, int oidx, const char *as) {
  oidx = lua_absindex(L, oidx);
  push_weak(L, &NILS_KEY);
  lua_pushvalue(L, oidx);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, oidx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, as);
  lua_pop(L, 2);
}

void lsq_assoc_mark_raise(lua_State *L, int oidx, int how) {
  oidx = lua_absindex(L, oidx);
  push_weak(L, &MARKS_KEY);
  lua_pushvalue(L, oidx);
  lua_pushinteger(L, how);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* sqorm.core._lazy_mark(instance) -> nil | 1 (every association) | 2
 * (the associations defined with lazy = "raise"), for the accessors. */
static int lazy_mark(lua_State *L) {
  push_weak(L, &MARKS_KEY);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  return 1;
}

/* sqorm.core._model_of(x) -> the Model of instance x, or nil (the
 * accessors check their self with it). */
static int model_of(lua_State *L) {
  if (lsq_test_instance(L, 1) && lua_getmetatable(L, 1)) {
    lua_rawgeti(L, -1, IMT_MODEL);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* Pushes the assocs table of the model at midx (creating it); returns its index. */
int lsq_assoc_table(lua_State *L, int midx) {
  midx = lua_absindex(L, midx);
  lua_getiuservalue(L, midx, MUV_EXTRA);
  if (lua_getfield(L, -1, "assocs") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "assocs");
  }
  lua_remove(L, -2);
  return lua_gettop(L);
}

/* Pushes the info of association as of the model at midx, or nil. */
int lsq_assoc_info(lua_State *L, int midx, const char *as) {
  lua_getiuservalue(L, midx, MUV_EXTRA);
  if (lua_getfield(L, -1, "assocs") != LUA_TTABLE) {
    lua_pop(L, 2);
    lua_pushnil(L);
    return LUA_TNIL;
  }
  int t = lua_getfield(L, -1, as);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return t;
}

/* __index(t, k) of the instances of a model with associations: upvalue 1
 * the methods, 2 name -> slot, 3 the assocs table, 4 the model. A loaded
 * association is a field of the instance itself (never reaches here);
 * one that was not loaded raises, and property access never runs SQL. */
static int assoc_index(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNUMBER) {
    lua_rawgeti(L, 1, lua_tointeger(L, -1));
    return 1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  if (lua_type(L, 2) != LUA_TSTRING || lua_rawget(L, lua_upvalueindex(3)) != LUA_TTABLE) return 0;
  push_weak(L, &NILS_KEY);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) == LUA_TTABLE) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 0; /* a to-one loaded as nil */
  }
  lsq_model *mod = lua_touserdata(L, lua_upvalueindex(4));
  const char *k = lua_tostring(L, 2);
  return lsq_usage(L,
                   "association '%s' of %s is not loaded (property access never runs SQL): load it with "
                   "include = { \"%s\" }, or call :get_%s()",
                   k, sq_model_name(mod->m), k, k);
}

/* Gives the instances of the model at midx the association-aware __index. */
static void install_index(lua_State *L, int midx, int assocs) {
  lua_getiuservalue(L, midx, MUV_IMT);
  int imt = lua_gettop(L);
  lua_getiuservalue(L, midx, MUV_METHODS);
  lua_getiuservalue(L, midx, MUV_NAMES);
  lua_pushvalue(L, assocs);
  lua_pushvalue(L, midx);
  lua_pushcclosure(L, assoc_index, 4);
  lua_setfield(L, imt, "__index");
  lua_settop(L, imt - 1);
}

/* ---------------------------------------------------------------- */
/* definitions                                                        */
/* ---------------------------------------------------------------- */

static const char *const assoc_opts[] = {
  "as", "foreign_key", "source_key", "target_key", "through", "other_key", "on_delete", "on_update",
  "constraints", "scope", "singular", "lazy", "allow_null", NULL,
};

static const char *opt_str(lua_State *L, int oidx, const char *k, const char *kname) {
  lua_getfield(L, oidx, k);
  const char *s = NULL;
  size_t len = 0;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tolstring(L, -1, &len);
  else if (!lua_isnil(L, -1)) lsq_usage(L, "%s: %s must be a string, got %s", kname, k, luaL_typename(L, -1));
  if (s && strlen(s) != len) lsq_usage(L, "%s: %s holds a NUL byte", kname, k); /* C would cut it there */
  lua_pop(L, 1); /* the options table keeps the string alive */
  return s;
}

static int opt_action(lua_State *L, int oidx, const char *k, const char *kname) {
  const char *s = opt_str(L, oidx, k, kname);
  if (!s) return SQ_FK_DEFAULT;
  if (!strcmp(s, "cascade")) return SQ_FK_CASCADE;
  if (!strcmp(s, "set_null")) return SQ_FK_SET_NULL;
  if (!strcmp(s, "restrict")) return SQ_FK_RESTRICT;
  if (!strcmp(s, "no_action")) return SQ_FK_NO_ACTION;
  lsq_usage(L, "%s: %s must be \"cascade\", \"set_null\", \"restrict\" or \"no_action\", got \"%s\"", kname, k, s);
  return 0;
}

/* The reserved names: every instance method of the source model. */
static const char **reserved_names(lua_State *L, int midx, int *n) {
  lua_getiuservalue(L, midx, MUV_METHODS);
  int t = lua_gettop(L), count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    count++;
  }
  const char **names = lua_newuserdatauv(L, sizeof *names * (size_t)(count + 1), 0);
  lua_insert(L, t); /* anchored below the methods table */
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, t + 1)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) names[k++] = lua_tostring(L, -1);
  }
  /* the strings are keys of the methods table, which stays on the stack */
  *n = k;
  return names;
}

/* Pushes the Lua Model of a join model the core built (wrapped once per db). */
static void push_join_model(lua_State *L, int dbidx, sq_model *jm, int owner) {
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "join_models") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "join_models");
  }
  lua_remove(L, -2);
  int jt = lua_gettop(L);
  if (lua_rawgetp(L, jt, jm) == LUA_TUSERDATA) {
    lua_remove(L, jt);
    return;
  }
  lua_pop(L, 1);
  int w = lsq_model_wrap(L, dbidx, jm);
  lua_getiuservalue(L, w, MUV_EXTRA);
  lua_pushvalue(L, owner); /* the model that frees it stays alive while the wrapper does */
  lua_setfield(L, -2, "owner");
  lua_pop(L, 1);
  lua_pushvalue(L, w);
  lua_rawsetp(L, jt, jm);
  lua_remove(L, jt);
}

/* Model:<kind>(Target [, options]) -> Model. [1] source, [2] target, [3] options. */
static int associate(lua_State *L, int kind) {
  const char *kname = sq_assoc_kind_name(kind);
  lsq_model *src = lsq_check_model(L, 1);
  lsq_model *tgt = lsq_toudata(L, 2, lsq_kind_model, sizeof *tgt);
  if (!tgt || !tgt->m) return lsq_usage(L, "%s expects a target Model, got %s", kname, luaL_typename(L, 2));
  lsq_check_opts(L, 3, kname, assoc_opts);
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) {
    lua_newtable(L);
    lua_replace(L, 3);
  }
  int dbidx = lsq_model_db(L, 1); /* 4 */
  lsq_model_db(L, 2);             /* 5 */
  if (!lua_rawequal(L, 4, 5))
    return lsq_usage(L, "%s: %s and %s belong to different dbs", kname, sq_model_name(src->m), sq_model_name(tgt->m));
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = opt_str(L, 3, "as", kname);
  o.foreign_key = opt_str(L, 3, "foreign_key", kname);
  o.source_key = opt_str(L, 3, "source_key", kname);
  o.target_key = opt_str(L, 3, "target_key", kname);
  o.other_key = opt_str(L, 3, "other_key", kname);
  o.singular = opt_str(L, 3, "singular", kname);
  o.on_delete = opt_action(L, 3, "on_delete", kname);
  o.on_update = opt_action(L, 3, "on_update", kname);
  int through_model = 0;
  lua_getfield(L, 3, "through"); /* 6 */
  if (lua_type(L, 6) == LUA_TSTRING) {
    o.through = lua_tostring(L, 6);
  } else if (!lua_isnil(L, 6)) {
    lsq_model *tm = lsq_toudata(L, 6, lsq_kind_model, sizeof *tm);
    if (!tm || !tm->m) return lsq_usage(L, "%s: through must be a table name or a Model, got %s", kname, luaL_typename(L, 6));
    lsq_model_db(L, 6);
    int same = lua_rawequal(L, -1, 4);
    lua_pop(L, 1);
    if (!same) return lsq_usage(L, "%s: the through model %s belongs to another db", kname, sq_model_name(tm->m));
    o.through_model = tm->m;
    through_model = 6;
  }
  if (kind != SQ_ASSOC_BELONGS_TO_MANY && !lua_isnil(L, 6))
    return lsq_usage(L, "%s: through is an option of belongs_to_many", kname);
  lua_getfield(L, 3, "constraints");
  if (lua_type(L, -1) == LUA_TBOOLEAN) o.constraints = lua_toboolean(L, -1) ? SQ_CONSTRAINTS_ON : SQ_CONSTRAINTS_OFF;
  else if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "deferred")) o.constraints = SQ_CONSTRAINTS_DEFERRED;
  else if (!lua_isnil(L, -1)) return lsq_usage(L, "%s: constraints must be a boolean or \"deferred\"", kname);
  lua_pop(L, 1);
  lua_getfield(L, 3, "allow_null");
  if (lua_type(L, -1) == LUA_TBOOLEAN) o.fk_allow_null = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1)) return lsq_usage(L, "%s: allow_null must be a boolean", kname);
  lua_pop(L, 1);
  /* lazy: the association's own, else its model's (define), else its db's (connect) */
  lua_getfield(L, 3, "lazy");
  if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "raise")) o.lazy_raise = 1;
  else if (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) o.lazy_raise = 0;
  else if (!lua_isnil(L, -1)) return lsq_usage(L, "%s: lazy must be \"raise\" or true", kname);
  else if (src->lazy_opt >= 0) o.lazy_raise = src->lazy_opt;
  else o.lazy_raise = ((lsq_db *)lua_touserdata(L, 4))->lazy;
  lua_pop(L, 1);
  /* scope: a where on the target, built in a scratch arena (the core copies it) */
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  int sidx = lua_gettop(L);
  lua_getfield(L, 3, "scope");
  int scope = lua_gettop(L);
  if (!lua_isnil(L, scope)) {
    lsq_qb b = {L, tgt, s, &err, kname, 0, NULL};
    if (lsq_build_where(&b, scope, (sq_expr **)&o.scope)) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
  }
  int nres = 0;
  const char **res = reserved_names(L, 1, &nres);
  o.reserved = res;
  o.nreserved = nres;
  const sq_assoc *a = NULL;
  int rc = sq_model_associate(src->m, kind, tgt->m, &o, &a, &err);
  lsq_scratch_done(s);
  if (rc) return lsq_raise(L, &err);
  lua_settop(L, sidx);
  (void)s;

  /* the models that got a column */
  lsq_model_refresh(L, 1);
  lsq_model_refresh(L, 2);
  if (through_model) lsq_model_refresh(L, through_model);

  /* the info table */
  lua_createtable(L, 0, 16);
  int info = lua_gettop(L);
  lua_pushstring(L, kname);
  lua_setfield(L, info, "kind");
  lua_pushstring(L, a->as);
  lua_setfield(L, info, "as");
  lua_pushstring(L, a->singular);
  lua_setfield(L, info, "singular");
  lua_pushboolean(L, sq_assoc_to_many(a));
  lua_setfield(L, info, "to_many");
  lua_pushvalue(L, 1);
  lua_setfield(L, info, "source");
  lua_pushvalue(L, 2);
  lua_setfield(L, info, "target");
  lua_pushlightuserdata(L, (void *)a);
  lua_setfield(L, info, "handle");
  const sq_model *sm = a->source, *tmod = a->target;
  if (kind == SQ_ASSOC_BELONGS_TO) {
    lua_pushstring(L, sq_model_col(sm, a->source_col)->name);
    lua_setfield(L, info, "foreign_key");
    lua_pushstring(L, sq_model_col(tmod, a->target_col)->name);
    lua_setfield(L, info, "target_key");
  } else if (kind == SQ_ASSOC_BELONGS_TO_MANY) {
    lua_pushstring(L, sq_model_col(sm, a->source_col)->name);
    lua_setfield(L, info, "source_key");
    lua_pushstring(L, sq_model_col(tmod, a->target_col)->name);
    lua_setfield(L, info, "target_key");
    lua_pushstring(L, sq_model_col(a->through, a->through_source_col)->name);
    lua_setfield(L, info, "foreign_key");
    lua_pushstring(L, sq_model_col(a->through, a->through_target_col)->name);
    lua_setfield(L, info, "other_key");
    if (through_model) lua_pushvalue(L, through_model);
    else push_join_model(L, dbidx, a->through, 1);
    lua_setfield(L, info, "through");
  } else {
    lua_pushstring(L, sq_model_col(sm, a->source_col)->name);
    lua_setfield(L, info, "source_key");
    lua_pushstring(L, sq_model_col(tmod, a->target_col)->name);
    lua_setfield(L, info, "foreign_key");
  }
  lua_getfield(L, 3, "scope");
  lua_setfield(L, info, "scope");
  if (a->lazy_raise) {
    src->lazy_assocs = 1;
    lua_pushliteral(L, "raise");
    lua_setfield(L, info, "lazy");
  }
  int assocs = lsq_assoc_table(L, 1);
  lua_pushvalue(L, info);
  lua_setfield(L, assocs, a->as);
  install_index(L, 1, assocs);

  /* accessors: require("sqorm.assoc").install(methods, info) */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "sqorm.assoc");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "install");
  lua_getiuservalue(L, 1, MUV_METHODS);
  lua_pushvalue(L, info);
  lua_call(L, 2, 0);
  lua_settop(L, 1);
  return 1;
}

static int model_belongs_to(lua_State *L) { return associate(L, SQ_ASSOC_BELONGS_TO); }
static int model_has_one(lua_State *L) { return associate(L, SQ_ASSOC_HAS_ONE); }
static int model_has_many(lua_State *L) { return associate(L, SQ_ASSOC_HAS_MANY); }
static int model_belongs_to_many(lua_State *L) { return associate(L, SQ_ASSOC_BELONGS_TO_MANY); }

/* Model:associations() -> { [as] = info } (a copy of the map; infos shared) */
static int model_associations(lua_State *L) {
  lsq_check_model(L, 1);
  lua_settop(L, 1);
  int t = lsq_assoc_table(L, 1);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, t + 1);
  }
  return 1;
}

const luaL_Reg lsq_assoc_methods[] = {
  {"belongs_to", model_belongs_to},
  {"has_one", model_has_one},
  {"has_many", model_has_many},
  {"belongs_to_many", model_belongs_to_many},
  {"associations", model_associations},
  {NULL, NULL},
};

void lsq_assoc_open(lua_State *L, int modidx) {
  lua_pushcfunction(L, lazy_mark);
  lua_setfield(L, modidx, "_lazy_mark");
  lua_pushcfunction(L, model_of);
  lua_setfield(L, modidx, "_model_of");
}
