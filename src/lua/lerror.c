/*
 * lerror.c - error objects. Every failure reaches Lua as a table with
 * kind, code, sqlstate and message, whose metatable gives tostring(err).
 * Raising (not returning nil, err) means a failed statement can never be
 * ignored on the way to a commit; pcall gives the nil, err form.
 */
#include "lsqorm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void lsq_push_error(lua_State *L, const sq_err *err) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, sq_kind_name(err->kind));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, err->msg[0] ? err->msg : sq_kind_name(err->kind));
  lua_setfield(L, -2, "message");
  if (err->code[0]) {
    lua_pushstring(L, err->code);
    lua_setfield(L, -2, "code");
  }
  if (err->sqlstate[0]) {
    lua_pushstring(L, err->sqlstate);
    lua_setfield(L, -2, "sqlstate");
  }
  luaL_setmetatable(L, LSQ_ERROR_MT);
}

int lsq_raise(lua_State *L, const sq_err *err) {
  lsq_push_error(L, err);
  return lua_error(L);
}

int lsq_usage(lua_State *L, const char *fmt, ...) {
  sq_err e;
  sq_err_clear(&e);
  e.kind = SQ_EUSAGE;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.msg, sizeof e.msg, fmt, ap);
  va_end(ap);
  return lsq_raise(L, &e);
}

/* The userdata of metatable mt at idx (a method's self), or a usage
 * error naming what was expected: calling a method on the wrong value
 * (Tx.commit(42), cursor.close(db)) is a sqorm error like any other
 * misuse, not a bare Lua argument error (found by fuzz/lua_api.lua). */
void *lsq_check_self(lua_State *L, int idx, const char *mt, const char *what) {
  void *p = luaL_testudata(L, idx, mt);
  if (!p)
    lsq_usage(L, "expected a %s as self, got %s (use x:method(...), not x.method(...))", what, luaL_typename(L, idx));
  return p;
}

/* tostring(err): "sqorm.Error [kind] message (code C, sqlstate S)". */
static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "sqlstate");
  const char *kind = lua_tostring(L, -4), *msg = lua_tostring(L, -3);
  const char *code = lua_tostring(L, -2), *state = lua_tostring(L, -1);
  if (code && state)
    lua_pushfstring(L, "sqorm.Error [%s] %s (code %s, sqlstate %s)", kind ? kind : "?", msg ? msg : "", code, state);
  else if (code)
    lua_pushfstring(L, "sqorm.Error [%s] %s (code %s)", kind ? kind : "?", msg ? msg : "", code);
  else if (state)
    lua_pushfstring(L, "sqorm.Error [%s] %s (sqlstate %s)", kind ? kind : "?", msg ? msg : "", state);
  else
    lua_pushfstring(L, "sqorm.Error [%s] %s", kind ? kind : "?", msg ? msg : "");
  return 1;
}

void lsq_error_open(lua_State *L) {
  if (luaL_newmetatable(L, LSQ_ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
