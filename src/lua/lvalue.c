/*
 * lvalue.c - Lua values <-> sq_value: sqorm.null, binds (strings as TEXT
 * when they are UTF-8 without NUL bytes, else BLOB) and pushing values.
 * Row sinks are in lsink.c.
 */
#include "lsqorm.h"

#include <math.h>
#include <string.h>

int lsq_is_null(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return 0;
  return luaL_testudata(L, idx, LSQ_NULL_MT) != NULL;
}

void lsq_push_null(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "sqorm.null");
}

/* 1 when s[0..n) is well-formed UTF-8 without NUL bytes: such a string
 * travels as TEXT; anything else is binary and travels as a BLOB, so
 * PostgreSQL (whose text cannot hold NUL) still gets it intact. */
static int is_text(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c >= 0x01 && c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0; /* NUL, continuation byte or invalid lead */
    if (i + len > n) return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

int lsq_to_value(lua_State *L, int idx, sq_value *v, const char *what, sq_err *err) {
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    *v = sq_bool(lua_toboolean(L, idx));
    return SQ_OK;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) *v = sq_int(lua_tointeger(L, idx));
    else *v = sq_float(lua_tonumber(L, idx));
    return SQ_OK;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    *v = is_text((const unsigned char *)s, n) ? sq_text(s, n) : sq_blob(s, n);
    return SQ_OK;
  }
  case LUA_TUSERDATA:
    if (lsq_is_null(L, idx)) {
      *v = sq_null();
      return SQ_OK;
    }
    break;
  case LUA_TNIL:
    return sq_err_set(err, SQ_EUSAGE, "%s is nil (use sqorm.null to write NULL)", what);
  default:
    break;
  }
  return sq_err_set(err, SQ_EUSAGE, "%s has type %s; expected a string, number, boolean or sqorm.null",
                    what, luaL_typename(L, idx));
}

void lsq_push_value(lua_State *L, const sq_value *v) {
  switch (v->type) {
  case SQ_VINT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
  case SQ_VFLOAT: lua_pushnumber(L, (lua_Number)v->u.f); break;
  case SQ_VBOOL: lua_pushboolean(L, v->u.b); break;
  case SQ_VTEXT:
  case SQ_VBLOB: lua_pushlstring(L, v->u.s.p, v->u.s.n); break;
  default: lua_pushnil(L); break;
  }
}
