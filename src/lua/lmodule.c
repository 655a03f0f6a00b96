/*
 * lmodule.c - luaopen_sqorm_core: the C half of `require "sqorm"`.
 * lua/sqorm/init.lua wraps it with thin Lua sugar.
 *
 * Per-state data lives in the registry ("sqorm.null", the metatables);
 * no C global holds a Lua value, so any number of states on any number
 * of threads can load the module.
 */
#include "lop.h"

#include <stdio.h>
#include <string.h>

static int null_tostring(lua_State *L) {
  lua_pushliteral(L, "sqorm.null");
  return 1;
}

/* sqorm.is_error(v) -> true when v is a sqorm error object. */
static int m_is_error(lua_State *L) {
  int ok = 0;
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, LSQ_ERROR_MT);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  lua_pushboolean(L, ok);
  return 1;
}

/* sqorm.error(kind, message) -> a new error object (for Lua sugar that
 * must raise errors of the same shape). */
static int m_error(lua_State *L) {
  sq_err e;
  sq_err_clear(&e);
  /* bad arguments are usage errors like any other (found by fuzz/lua_api.lua) */
  if (lua_type(L, 1) != LUA_TSTRING || lua_type(L, 2) != LUA_TSTRING)
    return lsq_usage(L, "sqorm.error(kind, message): both must be strings, got %s and %s", luaL_typename(L, 1),
                     luaL_typename(L, 2));
  const char *kind = lua_tostring(L, 1);
  e.kind = SQ_EINTERNAL;
  for (int k = 1; k < SQ_KIND_COUNT; k++)
    if (!strcmp(sq_kind_name(k), kind)) e.kind = k;
  snprintf(e.msg, sizeof e.msg, "%s", lua_tostring(L, 2));
  lsq_push_error(L, &e);
  return 1;
}

void lsq_migrate_open(lua_State *L, int modidx); /* lmigrate.c */
void lsq_hook_open(lua_State *L, int modidx);    /* lhook.c */

static const luaL_Reg funcs[] = {
  {"connect", lsq_connect},
  {"is_error", m_is_error},
  {"error", m_error},
  {NULL, NULL},
};

int luaopen_sqorm_core(lua_State *L) {
  lsq_error_open(L);
  lsq_db_open(L);
  lsq_raw_open(L);
  lsq_op_open(L);
  lsq_tx_open(L);
  /* sqorm.null: one userdata per state, stored in the registry. */
  if (luaL_newmetatable(L, LSQ_NULL_MT)) {
    lua_pushcfunction(L, null_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "sqorm.null");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, "sqorm.null") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 1, 0);
    luaL_setmetatable(L, LSQ_NULL_MT);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "sqorm.null");
  }
  luaL_newlib(L, funcs);
  lsq_async_open(L, -1); /* sqorm.spawn, poll, pollfd, run, pending, cancel, on_error, scheduler */
  lua_insert(L, -2);
  lua_setfield(L, -2, "null");
  lua_pushliteral(L, SQORM_VERSION);
  lua_setfield(L, -2, "VERSION");
  luaL_getmetatable(L, LSQ_ERROR_MT);
  lua_setfield(L, -2, "Error");
  /* models: sqorm.types, op, fn, raw; db:define and friends */
  lsq_model_open(L, -1);
  /* the migrator's C half: core.migrator_open, ... */
  lsq_migrate_open(L, -1);
  lsq_json_open(L, -1); /* sqorm.json_null, json_array, ... (ljson.c) */
  lsq_hook_open(L, -1); /* the C half of hooks (lhook.c; lua/sqorm/hooks.lua) */
  return 1;
}
