/*
 * linstance.c - model instances, built in C.
 *
 * An instance is a Lua table whose array part holds the column values in
 * model column order (slot i = column i - 1), created with
 * lua_createtable(L, ncols, 0) and filled with lua_rawseti straight from
 * the driver's values: no intermediate row table, no per-row name
 * hashing. Its metatable is one per model: __index looks a key up in the
 * model's instance methods first (methods win, as DESIGN.md says), then
 * in the model's name -> slot map; __newindex converts the value to the
 * column's type and records the slot as changed (in the model's weak
 * state table, not in the instance: see push_states). p:get(name) /
 * p:set(name, v) reach columns a method shadows.
 *
 * Here: that state, the metamethods (__index, __newindex, __tostring,
 * __pairs) and the methods that touch no database (get, set, changed,
 * to_table). The instance writes are in lsave.c, defaults and
 * validation in lvalidate.c, the row sinks that build instances in
 * lsink.c.
 */
#include "lmodel.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* instance state                                                     */
/* ---------------------------------------------------------------- */

lsq_model *lsq_test_instance(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return NULL;
  lsq_model *mod = NULL;
  if (lua_rawgeti(L, -1, IMT_MODEL) == LUA_TUSERDATA) mod = lsq_toudata(L, -1, lsq_kind_model, sizeof *mod);
  lua_pop(L, 2);
  return mod;
}

/* The model of the instance `self` at idx 1, pushing the model userdata
 * (its index is returned through midx). Raises when self is no instance. */
lsq_model *lsq_check_instance(lua_State *L, int *midx) {
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    if (lua_rawgeti(L, -1, IMT_MODEL) == LUA_TUSERDATA) {
      lsq_model *mod = lsq_toudata(L, -1, lsq_kind_model, sizeof *mod);
      if (mod) {
        lua_remove(L, -2);
        *midx = lua_gettop(L);
        return mod;
      }
    }
    lua_pop(L, 2);
  }
  lsq_usage(L, "expected a model instance as self (use p:method(...), not p.method(...))");
  return NULL;
}

/*
 * Pending state lives outside the instances, so an instance stays a table
 * with no hash part: a hidden key set on it at its first change would
 * rehash it. The instance metatable's IMT_STATE table (weak keys) maps an
 * instance with something pending to an integer whose bit 0 means new
 * (not inserted yet) and bit s means slot s changed; a model wider than
 * STATE_BITS columns maps it to a table { [0] = true, [s] = true } instead.
 * No entry: saved, nothing changed.
 */
#define STATE_NEW 0
#define STATE_BITS 62

/* Pushes the state table of the instance at iidx; returns its index. (A
 * table dressed up with a hand-made metatable gets a throwaway one.) */
static int push_states(lua_State *L, int iidx) {
  int top = lua_gettop(L);
  if (lua_getmetatable(L, iidx) && lua_rawgeti(L, -1, IMT_STATE) == LUA_TTABLE) {
    lua_remove(L, -2);
  } else {
    lua_settop(L, top);
    lua_newtable(L);
  }
  return lua_gettop(L);
}

/* Pushes the state of the instance at iidx (nil, an integer or a table). */
int lsq_push_state(lua_State *L, int iidx) {
  iidx = lua_absindex(L, iidx);
  int st = push_states(L, iidx);
  lua_pushvalue(L, iidx);
  int t = lua_rawget(L, st);
  lua_remove(L, st);
  return t;
}

/* 1 when the state at vidx has bit b (STATE_NEW or a slot). */
int lsq_state_has(lua_State *L, int vidx, int b) {
  switch (lua_type(L, vidx)) {
  case LUA_TNUMBER: return (int)(((lua_Unsigned)lua_tointeger(L, vidx) >> b) & 1);
  case LUA_TTABLE: {
    int t = lua_rawgeti(L, vidx, b);
    lua_pop(L, 1);
    return t != LUA_TNIL;
  }
  default: return 0;
  }
}

/* Sets bit b of the state of the instance at iidx. */
void lsq_state_set(lua_State *L, const lsq_model *mod, int iidx, int b) {
  iidx = lua_absindex(L, iidx);
  int st = push_states(L, iidx);
  lua_pushvalue(L, iidx);
  int t = lua_rawget(L, st);
  if (mod->ncols <= STATE_BITS) {
    lua_Unsigned m = t == LUA_TNUMBER ? (lua_Unsigned)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    lua_pushvalue(L, iidx);
    lua_pushinteger(L, (lua_Integer)(m | ((lua_Unsigned)1 << b)));
    lua_rawset(L, st);
  } else {
    if (t != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_createtable(L, mod->ncols, 1);
      lua_pushvalue(L, iidx);
      lua_pushvalue(L, -2);
      lua_rawset(L, st);
    }
    lua_pushboolean(L, 1);
    lua_rawseti(L, -2, b);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void mark_changed(lua_State *L, const lsq_model *mod, int iidx, int slot) { lsq_state_set(L, mod, iidx, slot); }

/* Pushes the original-key table of the instance at iidx ({ [slot] =
 * value }, see IMT_ORIG), or nil. */
int lsq_push_orig(lua_State *L, int iidx) {
  iidx = lua_absindex(L, iidx);
  int t = LUA_TNIL;
  if (lua_getmetatable(L, iidx)) {
    if (lua_rawgeti(L, -1, IMT_ORIG) == LUA_TTABLE) {
      lua_pushvalue(L, iidx);
      t = lua_rawget(L, -2);
      lua_replace(L, -3);
      lua_pop(L, 1);
      return t;
    }
    lua_pop(L, 2);
  }
  lua_pushnil(L);
  return t;
}

/*
 * Before key column `slot` of the saved instance at iidx first changes:
 * keeps the value its row has now, so the UPDATE (and DELETE, reload)
 * still finds that row, and a changed key is written as a new key value
 * instead of addressing another row.
 */
static void keep_orig(lua_State *L, int iidx, int slot) {
  iidx = lua_absindex(L, iidx);
  if (lsq_push_state(L, iidx) != LUA_TNIL && lsq_state_has(L, lua_gettop(L), STATE_NEW)) {
    lua_pop(L, 1);
    return; /* not inserted yet: no row to address */
  }
  lua_pop(L, 1);
  if (lua_rawgeti(L, iidx, slot) == LUA_TNIL || !lua_getmetatable(L, iidx)) {
    lua_pop(L, 1);
    return; /* no key value to keep */
  }
  if (lua_rawgeti(L, -1, IMT_ORIG) != LUA_TTABLE) {
    lua_pop(L, 3);
    return;
  }
  int origs = lua_gettop(L);
  lua_pushvalue(L, iidx);
  if (lua_rawget(L, origs) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, iidx);
    lua_pushvalue(L, -2);
    lua_rawset(L, origs);
  }
  if (lua_rawgeti(L, -1, slot) == LUA_TNIL) {
    lua_pushvalue(L, origs - 2); /* the current value */
    lua_rawseti(L, -3, slot);
  }
  lua_settop(L, origs - 3);
}

/* Forgets the original keys of the instance at iidx (its row has the
 * instance's key now): all of them, or those of the n columns cols. */
static void drop_orig(lua_State *L, int iidx, const int *cols, int n, int all) {
  iidx = lua_absindex(L, iidx);
  if (!lua_getmetatable(L, iidx)) return;
  if (lua_rawgeti(L, -1, IMT_ORIG) != LUA_TTABLE) {
    lua_pop(L, 2);
    return;
  }
  int origs = lua_gettop(L);
  lua_pushvalue(L, iidx);
  if (lua_rawget(L, origs) == LUA_TTABLE) {
    int left = 0;
    if (!all) {
      for (int i = 0; i < n; i++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, cols[i] + 1);
      }
      lua_pushnil(L);
      left = lua_next(L, -2);
      if (left) lua_pop(L, 2);
    }
    if (!left) {
      lua_pushvalue(L, iidx);
      lua_pushnil(L);
      lua_rawset(L, origs);
    }
  }
  lua_settop(L, origs - 2);
}

void lsq_instance_saved(lua_State *L, int iidx) {
  iidx = lua_absindex(L, iidx);
  int st = push_states(L, iidx);
  lua_pushvalue(L, iidx);
  if (lua_rawget(L, st) != LUA_TNIL) {
    lua_pushvalue(L, iidx);
    lua_pushnil(L);
    lua_rawset(L, st);
    drop_orig(L, iidx, NULL, 0, 1);
  }
  lua_pop(L, 2);
}

/* After a save that wrote only the n columns cols (save{ fields = ... }):
 * those are no longer pending, the other changes still are. */
void lsq_saved_cols(lua_State *L, const lsq_model *mod, int iidx, const int *cols, int n) {
  iidx = lua_absindex(L, iidx);
  int st = push_states(L, iidx);
  lua_pushvalue(L, iidx);
  int t = lua_rawget(L, st);
  int left = 0;
  if (t == LUA_TNUMBER) {
    lua_Unsigned m = (lua_Unsigned)lua_tointeger(L, -1);
    for (int i = 0; i < n; i++) m &= ~((lua_Unsigned)1 << (cols[i] + 1));
    left = m != 0;
    lua_pushvalue(L, iidx);
    if (left) lua_pushinteger(L, (lua_Integer)m);
    else lua_pushnil(L);
    lua_rawset(L, st);
  } else if (t == LUA_TTABLE) {
    for (int i = 0; i < n; i++) {
      lua_pushnil(L);
      lua_rawseti(L, -2, cols[i] + 1);
    }
    lua_pushnil(L);
    left = lua_next(L, -2);
    if (left) lua_pop(L, 2);
    else {
      lua_pushvalue(L, iidx);
      lua_pushnil(L);
      lua_rawset(L, st);
    }
  }
  (void)mod;
  lua_settop(L, st - 1);
  if (t != LUA_TNIL) drop_orig(L, iidx, cols, n, !left);
}

/*
 * Sets slot of the instance at iidx to the value at vidx converted to the
 * column's type (nil and sqorm.null clear it). With track, a different
 * value marks the slot changed. Returns an error kind (no raise).
 */
int lsq_set_slot(lua_State *L, const lsq_model *mod, int iidx, int slot, int vidx, int track, sq_err *err) {
  const sq_col *c = sq_model_col(mod->m, slot - 1);
  vidx = lua_absindex(L, vidx);
  if (lua_isnil(L, vidx) || lsq_is_null(L, vidx)) {
    lua_pushnil(L);
  } else {
    sq_value v;
    char buf[48];
    if (lsq_col_value(L, vidx, c, &v, buf, NULL, err)) return err->kind;
    /* Keep the caller's string when the conversion kept it as is: no copy
     * of a large text. */
    if (c->type == SQ_T_JSON)
      lua_pushvalue(L, vidx); /* the caller's table itself (checked above: it has a JSON form) */
    else if ((v.type == SQ_VTEXT || v.type == SQ_VBLOB) && lua_type(L, vidx) == LUA_TSTRING &&
        v.u.s.p == lua_tostring(L, vidx) && v.u.s.n == lua_rawlen(L, vidx) && c->type != SQ_T_DECIMAL)
      lua_pushvalue(L, vidx);
    else lsq_push_colval(L, c, &v);
  }
  if (track) {
    lua_rawgeti(L, iidx, slot);
    /* a JSON table may have changed inside: assigning it again counts */
    int same = c->type != SQ_T_JSON && lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (same) {
      lua_pop(L, 1);
      return SQ_OK;
    }
    if (mod->cols[slot - 1]->primary_key) keep_orig(L, iidx, slot);
    mark_changed(L, mod, iidx, slot);
  }
  lua_rawseti(L, iidx, slot);
  return SQ_OK;
}

int lsq_version_refuse(const lsq_model *mod, int slot, sq_err *err) {
  if (slot - 1 != mod->version_col || mod->version_col < 0) return SQ_OK;
  return sq_err_set(err, SQ_EUSAGE,
                    "column '%s' of %s is its optimistic-locking version: sqorm sets it, a value can't be given",
                    mod->cols[slot - 1]->name, sq_model_name(mod->m));
}

/* The slot of the column named by the string at kidx (names table at
 * nidx), or 0. */
int lsq_slot_of(lua_State *L, int nidx, int kidx) {
  lua_pushvalue(L, kidx);
  int slot = lua_rawget(L, nidx) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return slot;
}

int lsq_no_column(lua_State *L, const lsq_model *mod, int kidx, sq_err *err) {
  if (lua_type(L, kidx) == LUA_TSTRING) {
    size_t n;
    const char *k = lua_tolstring(L, kidx, &n);
    return sq_err_set(err, SQ_EUSAGE, "%s has no column '%.*s'", sq_model_name(mod->m), (int)(n > 64 ? 64 : n), k);
  }
  return sq_err_set(err, SQ_EUSAGE, "%s: column names must be strings, got a %s key", sq_model_name(mod->m),
                    luaL_typename(L, kidx));
}


/* ---------------------------------------------------------------- */
/* metamethods                                                        */
/* ---------------------------------------------------------------- */

/* __index(t, k): upvalue 1 = instance methods, upvalue 2 = name -> slot.
 * A method wins over a column of the same name. (No lua_settop: the key
 * is pushed for each look-up, so extra arguments do no harm.) */
static int inst_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNUMBER && lua_type(L, 1) == LUA_TTABLE) {
    lua_rawgeti(L, 1, lua_tointeger(L, -1));
    return 1;
  }
  return 0;
}

/* __newindex(t, k, v): upvalue 1 = name -> slot, upvalue 2 = the model. */
static int inst_newindex(lua_State *L) {
  lsq_model *mod = lua_touserdata(L, lua_upvalueindex(2));
  if (lua_type(L, 1) != LUA_TTABLE) return lsq_usage(L, "%s: __newindex expects an instance", sq_model_name(mod->m));
  sq_err e;
  sq_err_clear(&e);
  lua_pushvalue(L, 2);
  int slot = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  if (!slot) {
    lsq_no_column(L, mod, 2, &e);
    return lsq_raise(L, &e);
  }
  if (lsq_version_refuse(mod, slot, &e)) return lsq_raise(L, &e);
  if (lsq_set_slot(L, mod, 1, slot, 3, 1, &e)) return lsq_raise_bad_value(L, mod, mod->cols[slot - 1], &e);
  return 0;
}

/* Pushes s as a quoted Lua string literal, shortened past 60 bytes. */
static void push_quoted(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '"');
  size_t lim = n > 60 ? 57 : n;
  for (size_t i = 0; i < lim; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, (char)ch);
    } else if (ch == '\n') {
      luaL_addstring(&b, "\\n");
    } else if (ch < 0x20 || ch == 0x7f) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\%u", ch);
      luaL_addstring(&b, esc);
    } else {
      luaL_addchar(&b, (char)ch);
    }
  }
  if (lim < n) luaL_addstring(&b, "...");
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
}

/* tostring(p): Player { id = 6, name = "x", coins = 700 } */
static int inst_tostring(lua_State *L) {
  lua_settop(L, 1);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lua_getmetatable(L, 1);
  lua_rawgeti(L, -1, IMT_COLNAMES);
  int names = lua_gettop(L);
  lua_pushfstring(L, "%s {", sq_model_name(mod->m));
  for (int i = 1; i <= mod->ncols; i++) {
    lua_rawgeti(L, names, i);
    lua_pushfstring(L, "%s %s = ", i > 1 ? "," : "", lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char *v = lua_tolstring(L, -1, &n);
      push_quoted(L, v, n);
    } else {
      luaL_tolstring(L, -1, NULL);
    }
    lua_remove(L, -2);
    lua_concat(L, 3);
  }
  lua_pushliteral(L, " }");
  lua_concat(L, 2);
  return 1;
}

/* The iterator behind pairs(p): column name, value (non-nil only). */
static int inst_next(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  int slot = 0;
  if (!lua_isnil(L, 2)) {
    lua_getiuservalue(L, midx, MUV_NAMES);
    slot = lsq_slot_of(L, lua_gettop(L), 2);
    if (!slot) return 0;
  }
  for (int i = slot + 1; i <= mod->ncols; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TNIL) {
      lua_getmetatable(L, 1);
      lua_rawgeti(L, -1, IMT_COLNAMES);
      lua_rawgeti(L, -1, i);
      lua_pushvalue(L, -4);
      return 2;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int inst_pairs(lua_State *L) {
  lua_pushcfunction(L, inst_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* ---------------------------------------------------------------- */
/* instance methods                                                   */
/* ---------------------------------------------------------------- */

/* The slot of the column named at kidx; raises usage naming an unknown
 * column (for get/set, which bypass the method table). */
static int column_slot(lua_State *L, int midx, const lsq_model *mod, int kidx) {
  lua_getiuservalue(L, midx, MUV_NAMES);
  int slot = lsq_slot_of(L, lua_gettop(L), kidx);
  lua_pop(L, 1);
  if (!slot) {
    sq_err e;
    sq_err_clear(&e);
    lsq_no_column(L, mod, kidx, &e);
    lsq_raise(L, &e);
  }
  return slot;
}

/* p:get(name) -> the column's value, even when a method shares its name */
static int inst_get(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lua_rawgeti(L, 1, column_slot(L, midx, mod, 2));
  return 1;
}

/*
 * Sets every name = value of the table at vidx on the instance at 1,
 * tracked; with fields (a flag per column), only those columns (the
 * other names must still be columns). Every name and value is checked
 * first, so a bad one changes nothing: an unknown name raises usage, a
 * value that does not convert raises validation (for p:update, `update`,
 * listed with the rule failures of the other values).
 */
void lsq_set_many(lua_State *L, int midx, lsq_model *mod, int vidx, const unsigned char *fields, int update) {
  sq_err e;
  sq_err_clear(&e);
  lua_getiuservalue(L, midx, MUV_NAMES);
  int nidx = lua_gettop(L);
  lua_pushnil(L);
  int bad = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, vidx)) {
    int slot = lua_type(L, -2) == LUA_TSTRING ? lsq_slot_of(L, nidx, lua_gettop(L) - 1) : 0;
    if (!slot) {
      lsq_no_column(L, mod, lua_gettop(L) - 1, &e);
      lsq_raise(L, &e);
    }
    if ((!fields || fields[slot - 1]) && lsq_version_refuse(mod, slot, &e)) lsq_raise(L, &e);
    sq_value v;
    char buf[48];
    if ((!fields || fields[slot - 1]) && lsq_col_value(L, -1, mod->cols[slot - 1], &v, buf, NULL, &e)) {
      if (lsq_bad_value(L, bad, mod->cols[slot - 1], &e)) lsq_raise(L, &e);
      sq_err_clear(&e);
    }
    lua_pop(L, 1);
  }
  if (lua_type(L, bad) == LUA_TTABLE) {
    if (!update) {
      lsq_push_invalid(L, mod, bad);
      lua_error(L);
    }
    /* the rule failures of the values that did convert, in one error */
    lsq_scratch *s = lsq_scratch_get(L);
    int *cols = lsq_alloc(s, sizeof *cols * (size_t)mod->ncols, &e);
    sq_value *vals = cols ? lsq_alloc(s, sizeof *vals * (size_t)mod->ncols, &e) : NULL;
    int n = 0;
    if (!vals) {
      lsq_scratch_done(s);
      lsq_raise(L, &e);
    }
    lua_pushnil(L);
    while (lua_next(L, vidx)) {
      int slot = lsq_slot_of(L, nidx, lua_gettop(L) - 1);
      lua_pushstring(L, mod->cols[slot - 1]->name);
      int isbad = lua_rawget(L, bad) != LUA_TNIL;
      lua_pop(L, 1);
      char buf[48];
      if ((!fields || fields[slot - 1]) && !isbad && n < mod->ncols &&
          lsq_col_value(L, -1, mod->cols[slot - 1], &vals[n], buf, s->arena, &e) == SQ_OK)
        cols[n++] = slot - 1;
      lua_pop(L, 1);
    }
    lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_PARTIAL, 1, bad);
    lsq_scratch_done(s);
    lua_error(L);
  }
  lua_pushnil(L);
  while (lua_next(L, vidx)) {
    int slot = lsq_slot_of(L, nidx, lua_gettop(L) - 1);
    if ((!fields || fields[slot - 1]) && lsq_set_slot(L, mod, 1, slot, -1, 1, &e))
      lsq_raise_bad_value(L, mod, mod->cols[slot - 1], &e);
    lua_pop(L, 1);
  }
  lua_settop(L, nidx - 1);
}

/* p:set(name, value) / p:set{ name = value, ... } -> p */
static int inst_set(lua_State *L) {
  lua_settop(L, 3);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  if (lua_type(L, 2) == LUA_TTABLE) {
    lsq_set_many(L, midx, mod, 2, NULL, 0);
  } else {
    int slot = column_slot(L, midx, mod, 2);
    sq_err e;
    sq_err_clear(&e);
    if (lsq_version_refuse(mod, slot, &e)) return lsq_raise(L, &e);
    if (lsq_set_slot(L, mod, 1, slot, 3, 1, &e)) return lsq_raise_bad_value(L, mod, mod->cols[slot - 1], &e);
  }
  lua_settop(L, 1);
  return 1;
}

/* p:changed() -> { "coins", ... } (column order) or false */
static int inst_changed(lua_State *L) {
  lua_settop(L, 1);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lsq_push_state(L, 1);
  int ch = lua_gettop(L);
  lua_getmetatable(L, 1);
  lua_rawgeti(L, -1, IMT_COLNAMES);
  int names = lua_gettop(L);
  lua_newtable(L);
  int k = 0;
  for (int i = 1; i <= mod->ncols; i++) {
    if (lsq_state_has(L, ch, i)) {
      lua_rawgeti(L, names, i);
      lua_rawseti(L, -2, ++k);
    }
  }
  if (k == 0) lua_pushboolean(L, 0);
  return 1;
}

/* p:to_table() -> { name = value, ... } (a plain table) */
static int inst_to_table(lua_State *L) {
  lua_settop(L, 1);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lua_getmetatable(L, 1);
  lua_rawgeti(L, -1, IMT_COLNAMES);
  int names = lua_gettop(L);
  lua_createtable(L, 0, mod->ncols);
  for (int i = 1; i <= mod->ncols; i++) {
    if (lua_rawgeti(L, 1, i) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_rawgeti(L, names, i);
    lua_insert(L, -2);
    lua_rawset(L, -3);
  }
  return 1;
}


static const luaL_Reg inst_methods[] = {
  {"get", inst_get},
  {"set", inst_set},
  {"changed", inst_changed},
  {"to_table", inst_to_table},
  {NULL, NULL},
};

/*
 * Creates, for the model at midx (whose user values MUV_NAMES exists),
 * the instance methods table (MUV_METHODS) and the instance metatable
 * (MUV_IMT): __index / __newindex closures over the methods and name
 * tables, the model at IMT_MODEL and slot -> name at IMT_COLNAMES.
 */
void lsq_instance_setup(lua_State *L, int midx, lsq_model *mod) {
  midx = lua_absindex(L, midx);
  lua_newtable(L);
  luaL_setfuncs(L, inst_methods, 0);
  luaL_setfuncs(L, lsq_save_methods, 0);
  int methods = lua_gettop(L);
  lua_pushvalue(L, methods);
  lua_setiuservalue(L, midx, MUV_METHODS);
  lua_getiuservalue(L, midx, MUV_NAMES);
  int names = lua_gettop(L);

  lua_createtable(L, 4, 6);
  int imt = lua_gettop(L);
  lua_pushvalue(L, midx);
  lua_rawseti(L, imt, IMT_MODEL);
  lua_createtable(L, mod->ncols, 0);
  for (int i = 0; i < mod->ncols; i++) {
    lua_pushstring(L, sq_model_col(mod->m, i)->name);
    lua_rawseti(L, -2, i + 1);
  }
  lua_rawseti(L, imt, IMT_COLNAMES);
  lua_createtable(L, 0, 4); /* IMT_STATE: weak keys, so it never keeps an instance alive */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawseti(L, imt, IMT_STATE);
  lua_createtable(L, 0, 0); /* IMT_ORIG: weak keys too */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawseti(L, imt, IMT_ORIG);
  lua_pushvalue(L, methods);
  lua_pushvalue(L, names);
  lua_pushcclosure(L, inst_index, 2);
  lua_setfield(L, imt, "__index");
  lua_pushvalue(L, names);
  lua_pushvalue(L, midx);
  lua_pushcclosure(L, inst_newindex, 2);
  lua_setfield(L, imt, "__newindex");
  lua_pushcfunction(L, inst_tostring);
  lua_setfield(L, imt, "__tostring");
  lua_pushcfunction(L, inst_pairs);
  lua_setfield(L, imt, "__pairs");
  lua_pushstring(L, sq_model_name(mod->m));
  lua_setfield(L, imt, "__name");
  lua_pushvalue(L, imt);
  lua_setiuservalue(L, midx, MUV_IMT);
  lua_settop(L, methods - 1);
}
