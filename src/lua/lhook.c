/*
 * lhook.c - the C primitives of hooks. The hook sequence itself is driven
 * by lua/sqorm/hooks.lua (Lua calling Lua, so a hook's own query yields
 * in async mode like any call), around the model methods, which stay C:
 * a model with no hooks never runs any of it. What the Lua side needs
 * from C is here: validating an instance without writing it, its new /
 * saved state, setting values the way p:update does, a model's paranoid
 * column, and the method tables it wraps. No SQL is built here or there.
 * (after_commit lives with the transactions: ltx.c.)
 */
#include "lmodel.h"

#include <string.h>

/* core._validate(inst [, { fields = ... }]) -> true, or raises the
 * validation error p:save() would raise for it now: every value of an
 * unsaved instance, the changed ones (in fields) of a saved one. Built-in
 * rules and the Lua validators, nothing sent. */
static int h_validate(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx); /* 3 */
  static const char *const opts[] = {"fields", NULL};
  lsq_check_opts(L, 2, "save", opts);
  const unsigned char *fields = lsq_fields_opt(L, mod, 2, "save"); /* 4 when given */
  lsq_push_state(L, 1);
  int st = lua_gettop(L);
  int is_new = lsq_state_has(L, st, STATE_NEW);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_err err;
  sq_err_clear(&err);
  sq_arena *a = lsq_scratch_arena(s, &err);
  int *cols = a ? lsq_alloc(s, sizeof *cols * (size_t)mod->ncols, &err) : NULL;
  sq_value *vals = cols ? lsq_alloc(s, sizeof *vals * (size_t)mod->ncols, &err) : NULL;
  if (!vals) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  int n = 0;
  for (int i = 0; i < mod->ncols; i++) {
    if (fields && !fields[i]) continue;
    if (!is_new && !lsq_state_has(L, st, i + 1)) continue;
    if (lua_rawgeti(L, 1, i + 1) == LUA_TNIL) {
      lua_pop(L, 1);
      if (is_new) continue;
      vals[n] = sq_null();
      cols[n++] = i;
      continue;
    }
    char buf[48];
    int rc = lsq_col_value(L, -1, mod->cols[i], &vals[n], buf, a, &err);
    lua_pop(L, 1);
    if (rc) {
      lsq_scratch_done(s);
      return lsq_raise_bad_value(L, mod, mod->cols[i], &err);
    }
    cols[n++] = i;
  }
  int failed = lsq_validate(L, midx, mod, cols, vals, n, is_new ? 0 : LSQ_V_PARTIAL, 1, 0);
  lsq_scratch_done(s);
  if (failed) return lua_error(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* core._is_new(inst) -> true while the instance was never inserted */
static int h_is_new(lua_State *L) {
  lua_settop(L, 1);
  int midx;
  lsq_check_instance(L, &midx);
  lsq_push_state(L, 1);
  lua_pushboolean(L, lsq_state_has(L, lua_gettop(L), STATE_NEW));
  return 1;
}

/* core._assign(inst, values [, { fields = ... }]) -> inst: sets the
 * values as p:update(values, opts) does before it saves. */
static int h_assign(lua_State *L) {
  lua_settop(L, 3);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx); /* 4 */
  if (lua_type(L, 2) != LUA_TTABLE)
    return lsq_usage(L, "update expects a table of column values, got %s", luaL_typename(L, 2));
  static const char *const opts[] = {"fields", NULL};
  lsq_check_opts(L, 3, "update", opts);
  const unsigned char *fields = lsq_fields_opt(L, mod, 3, "update");
  lsq_set_many(L, midx, mod, 2, fields, 1);
  lua_settop(L, 1);
  return 1;
}

/* core._model_info(Model) -> { deleted_at = name or nil } */
static int h_model_info(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  lua_createtable(L, 0, 2);
  if (mod->deleted_col >= 0) {
    lua_pushstring(L, mod->cols[mod->deleted_col]->name);
    lua_setfield(L, -2, "deleted_at");
  }
  return 1;
}

static const luaL_Reg hook_funcs[] = {
  {"_validate", h_validate},
  {"_is_new", h_is_new},
  {"_assign", h_assign},
  {"_model_info", h_model_info},
  {"_base_model", lsq_scope_base},
  {NULL, NULL},
};

/* Adds the primitives to the module at modidx, with the tables the Lua
 * side wraps: _db_methods (sqorm.Db's methods) and _model_methods (the
 * built-in class methods of every Model). */
void lsq_hook_open(lua_State *L, int modidx) {
  modidx = lua_absindex(L, modidx);
  lua_pushvalue(L, modidx);
  luaL_setfuncs(L, hook_funcs, 0);
  lua_pop(L, 1);
  luaL_getmetatable(L, LSQ_DB_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, modidx, "_db_methods");
  lua_pop(L, 1);
  luaL_getmetatable(L, LSQ_MODEL_MT);
  lua_getfield(L, -1, "__index");
  if (lua_getupvalue(L, -1, 1)) lua_setfield(L, modidx, "_model_methods");
  lua_pop(L, 2);
}
