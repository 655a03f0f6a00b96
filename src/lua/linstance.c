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
 * Also here: the row sink that builds instances or raw rows, the value
 * decoding by column type, defaults and timestamps, and validation (the
 * core's checks plus Lua patterns and functions, one error listing
 * every failing field).
 */
#include "lmodel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The last formatted second, per thread (a state may run on any thread,
 * one at a time): timestamps change once a second, so formatting them
 * once a second is enough. */
static _Thread_local struct {
  int64_t secs;
  char text[32];
} now_cache = {-1, ""};

void lsq_now(char buf[32]) {
  int64_t secs = (int64_t)time(NULL);
  if (secs != now_cache.secs) {
    sq_format_datetime(secs, now_cache.text);
    now_cache.secs = secs;
  }
  memcpy(buf, now_cache.text, sizeof now_cache.text);
}

int lsq_is_now_text(const char *s, size_t n) {
  return n == 19 && now_cache.secs >= 0 && memcmp(s, now_cache.text, 19) == 0;
}

/* ---------------------------------------------------------------- */
/* decoding                                                           */
/* ---------------------------------------------------------------- */

/* Parses an integer from text that need not be NUL-terminated. 0 when
 * it is no integer or does not fit 64 bits: the caller then delivers the
 * exact text (as raw queries deliver a BIGINT UNSIGNED above 2^63),
 * never a value clamped to the nearest limit. */
static int text_int(const char *p, size_t n, lua_Integer *out) {
  char buf[32];
  if (n == 0 || n >= sizeof buf) return 0;
  memcpy(buf, p, n);
  buf[n] = '\0';
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  if (*end || end == buf || errno == ERANGE) return 0;
  *out = (lua_Integer)v;
  return 1;
}

static int text_num(const char *p, size_t n, double *out) {
  char buf[64];
  if (n == 0 || n >= sizeof buf) return 0;
  memcpy(buf, p, n);
  buf[n] = '\0';
  char *end;
  *out = strtod(buf, &end);
  return *end == '\0';
}

void lsq_push_colval(lua_State *L, const sq_col *c, const sq_value *v) {
  switch (c->type) {
  case SQ_T_STRING: case SQ_T_TEXT: case SQ_T_CHAR: case SQ_T_UUID: case SQ_T_BLOB:
    if (v->type == SQ_VTEXT || v->type == SQ_VBLOB) {
      lua_pushlstring(L, v->u.s.p, v->u.s.n);
      return;
    }
    break;
  case SQ_T_INTEGER: case SQ_T_BIGINT: case SQ_T_SMALLINT:
    switch (v->type) {
    case SQ_VINT: lua_pushinteger(L, (lua_Integer)v->u.i); return;
    case SQ_VBOOL: lua_pushinteger(L, v->u.b); return;
    case SQ_VFLOAT: {
      lua_Integer i;
      if (lua_numbertointeger(v->u.f, &i) && (double)i == v->u.f) lua_pushinteger(L, i);
      else lua_pushnumber(L, v->u.f);
      return;
    }
    case SQ_VTEXT: {
      lua_Integer i;
      if (text_int(v->u.s.p, v->u.s.n, &i)) {
        lua_pushinteger(L, i);
        return;
      }
      break;
    }
    }
    break;
  case SQ_T_FLOAT: case SQ_T_DOUBLE:
    if (v->type == SQ_VFLOAT) { lua_pushnumber(L, v->u.f); return; }
    if (v->type == SQ_VINT) { lua_pushnumber(L, (lua_Number)v->u.i); return; }
    if (v->type == SQ_VTEXT) {
      double d;
      if (text_num(v->u.s.p, v->u.s.n, &d)) { lua_pushnumber(L, d); return; }
    }
    break;
  case SQ_T_DECIMAL:
    if (v->type == SQ_VINT) { lua_pushfstring(L, "%I", (lua_Integer)v->u.i); return; }
    if (v->type == SQ_VFLOAT) {
      char buf[40];
      snprintf(buf, sizeof buf, "%.17g", v->u.f);
      lua_pushstring(L, buf);
      return;
    }
    break;
  case SQ_T_BOOLEAN:
    if (v->type == SQ_VBOOL) { lua_pushboolean(L, v->u.b); return; }
    if (v->type == SQ_VINT) { lua_pushboolean(L, v->u.i != 0); return; }
    if (v->type == SQ_VFLOAT) { lua_pushboolean(L, v->u.f != 0); return; }
    if (v->type == SQ_VTEXT) {
      const char *s = v->u.s.p;
      size_t n = v->u.s.n;
      int t = (n == 1 && (s[0] == '1' || s[0] == 't' || s[0] == 'y')) || (n == 4 && !memcmp(s, "true", 4));
      lua_pushboolean(L, t);
      return;
    }
    break;
  case SQ_T_DATE: case SQ_T_DATETIME:
    if (v->type == SQ_VINT) {
      char buf[32];
      sq_format_datetime(v->u.i, buf);
      lua_pushlstring(L, buf, c->type == SQ_T_DATE ? 10 : strlen(buf));
      return;
    }
    if (v->type == SQ_VTEXT && c->type == SQ_T_DATE && v->u.s.n > 10 && v->u.s.p[10] == ' ') {
      lua_pushlstring(L, v->u.s.p, 10); /* sqlite: a DATE stored as a datetime */
      return;
    }
    break;
  }
  lsq_push_value(L, v);
}

/* ---------------------------------------------------------------- */
/* the row sink                                                       */
/* ---------------------------------------------------------------- */

void lsq_isink_init(lsq_isink *s, lua_State *L, const lsq_model *mod, int mode) {
  memset(s, 0, offsetof(lsq_isink, small));
  s->L = L;
  s->mod = mod;
  s->mode = mode;
  s->map = s->small;
  s->mapcap = (int)(sizeof s->small / sizeof s->small[0]);
}

/* Maps result columns to model columns once per statement; names that
 * are no column (aggregate aliases) are kept in an extras table pushed
 * on the stack (the caller's frame keeps it until the rows are done). */
static int isink_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  lsq_isink *s = ud;
  lua_State *L = s->L;
  if (ncols > s->mapcap) {
    if (s->mode == SINK_FETCH) return sq_err_set(err, SQ_EINTERNAL, "cursor: more result columns than expected");
    s->map = lua_newuserdatauv(L, sizeof(int) * (size_t)ncols, 0); /* anchored on the stack */
    s->mapcap = ncols;
  }
  s->ncols = ncols;
  s->extras = 0;
  s->names = 0;
  if (s->identity && ncols == s->mod->ncols) {
    /* SELECT of every column / RETURNING: rendered in model order */
    for (int i = 0; i < ncols; i++) s->map[i] = i;
  } else {
    for (int i = 0; i < ncols; i++) {
    int c = sq_model_find(s->mod->m, cols[i].name, cols[i].name_len);
    s->map[i] = c;
    if (c < 0 && !s->bare) {
      if (!s->extras) {
        lua_createtable(L, ncols, 0);
        s->extras = lua_gettop(L);
      }
      lua_pushlstring(L, cols[i].name, cols[i].name_len);
      lua_rawseti(L, s->extras, i + 1);
    }
    }
  }
  if (s->raw && s->mode != SINK_FETCH && lua_checkstack(L, ncols + 8)) {
    /* raw rows: the keys on the stack, pushed once per statement */
    s->names = lua_gettop(L) + 1;
    for (int i = 0; i < ncols; i++) {
      if (s->map[i] >= 0) lua_rawgeti(L, s->colnames, s->map[i] + 1);
      else lua_rawgeti(L, s->extras, i + 1);
    }
  }
  return 0;
}

static int isink_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  lsq_isink *s = ud;
  lua_State *L = s->L;
  const sq_col **mc = s->mod->cols;
  (void)err;
  if (ncols > s->ncols) ncols = s->ncols;
  if (s->mode == SINK_FILL || s->mode == SINK_FILL_LIST) {
    /* straight into the instance: every returned column, NULL too */
    int inst = s->out;
    if (s->mode == SINK_FILL_LIST) {
      if (lua_rawgeti(L, s->out, s->fill_base + ++s->n) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
      }
      inst = lua_gettop(L);
    } else if (s->n++ > 0) {
      return 0;
    }
    for (int i = 0; i < ncols; i++) {
      int c = s->map[i];
      if (c < 0) continue;
      if (vals[i].type == SQ_VNULL) lua_pushnil(L);
      else lsq_push_colval(L, mc[c], &vals[i]);
      lua_rawseti(L, inst, c + 1);
    }
    if (inst != s->out) lua_pop(L, 1);
    return 0;
  }
  if (s->raw) {
    lua_createtable(L, 0, ncols);
    for (int i = 0; i < ncols; i++) {
      if (vals[i].type == SQ_VNULL) continue;
      int c = s->map[i];
      if (s->names) lua_pushvalue(L, s->names + i);
      else if (c >= 0) lua_rawgeti(L, s->colnames, c + 1);
      else lua_rawgeti(L, s->extras, i + 1);
      if (c >= 0) lsq_push_colval(L, mc[c], &vals[i]);
      else lsq_push_value(L, &vals[i]);
      lua_rawset(L, -3);
    }
  } else {
    lua_createtable(L, s->mod->ncols, 0);
    if (!s->bare) {
      lua_pushvalue(L, s->imt);
      lua_setmetatable(L, -2);
    }
    for (int i = 0; i < ncols; i++) {
      if (vals[i].type == SQ_VNULL) continue;
      int c = s->map[i];
      if (c >= 0) {
        lsq_push_colval(L, mc[c], &vals[i]);
        lua_rawseti(L, -2, c + 1);
      } else if (s->extras) {
        lua_rawgeti(L, s->extras, i + 1);
        lsq_push_value(L, &vals[i]);
        lua_rawset(L, -3);
      }
    }
  }
  switch (s->mode) {
  case SINK_LIST:
    lua_rawseti(L, s->out, ++s->n);
    break;
  case SINK_ONE:
    if (s->n++ == 0) lua_replace(L, s->out);
    else lua_pop(L, 1);
    break;
  default: /* SINK_FETCH: the caller takes it */
    s->n++;
    break;
  }
  return 0;
}

void lsq_isink_sink(lsq_isink *s, sq_row_sink *sink) {
  sink->ud = s;
  sink->columns = isink_columns;
  sink->row = isink_row;
}

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
static lsq_model *check_instance(lua_State *L, int *midx) {
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
static int push_state(lua_State *L, int iidx) {
  iidx = lua_absindex(L, iidx);
  int st = push_states(L, iidx);
  lua_pushvalue(L, iidx);
  int t = lua_rawget(L, st);
  lua_remove(L, st);
  return t;
}

/* 1 when the state at vidx has bit b (STATE_NEW or a slot). */
static int state_has(lua_State *L, int vidx, int b) {
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
static void state_set(lua_State *L, const lsq_model *mod, int iidx, int b) {
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

static void mark_changed(lua_State *L, const lsq_model *mod, int iidx, int slot) { state_set(L, mod, iidx, slot); }

/* Pushes the original-key table of the instance at iidx ({ [slot] =
 * value }, see IMT_ORIG), or nil. */
static int push_orig(lua_State *L, int iidx) {
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
  if (push_state(L, iidx) != LUA_TNIL && state_has(L, lua_gettop(L), STATE_NEW)) {
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
static void saved_cols(lua_State *L, const lsq_model *mod, int iidx, const int *cols, int n) {
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
static int set_slot(lua_State *L, const lsq_model *mod, int iidx, int slot, int vidx, int track, sq_err *err) {
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
    if ((v.type == SQ_VTEXT || v.type == SQ_VBLOB) && lua_type(L, vidx) == LUA_TSTRING &&
        v.u.s.p == lua_tostring(L, vidx) && v.u.s.n == lua_rawlen(L, vidx) && c->type != SQ_T_DECIMAL)
      lua_pushvalue(L, vidx);
    else lsq_push_colval(L, c, &v);
  }
  if (track) {
    lua_rawgeti(L, iidx, slot);
    int same = lua_rawequal(L, -1, -2);
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

/* The slot of the column named by the string at kidx (names table at
 * nidx), or 0. */
static int slot_of(lua_State *L, int nidx, int kidx) {
  lua_pushvalue(L, kidx);
  int slot = lua_rawget(L, nidx) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return slot;
}

static int no_column(lua_State *L, const lsq_model *mod, int kidx, sq_err *err) {
  if (lua_type(L, kidx) == LUA_TSTRING) {
    size_t n;
    const char *k = lua_tolstring(L, kidx, &n);
    return sq_err_set(err, SQ_EUSAGE, "%s has no column '%.*s'", sq_model_name(mod->m), (int)(n > 64 ? 64 : n), k);
  }
  return sq_err_set(err, SQ_EUSAGE, "%s: column names must be strings, got a %s key", sq_model_name(mod->m),
                    luaL_typename(L, kidx));
}

/* Applies defaults (values, now, uuid, functions) to nil slots. May
 * raise (a default function may). */
static void apply_defaults(lua_State *L, int midx, const lsq_model *mod, int iidx, const char *now) {
  for (int i = 0; i < mod->ncols; i++) {
    const sq_col *c = sq_model_col(mod->m, i);
    if (c->default_kind == SQ_DEFAULT_NONE && i != mod->uuid_pk) continue;
    if (lua_rawgeti(L, iidx, i + 1) != LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    switch (c->default_kind) {
    case SQ_DEFAULT_VALUE:
      lsq_push_colval(L, c, &c->default_value);
      break;
    case SQ_DEFAULT_NOW:
      lua_pushlstring(L, now, c->type == SQ_T_DATE ? 10 : strlen(now));
      break;
    case SQ_DEFAULT_CALLBACK: {
      lua_getiuservalue(L, midx, MUV_EXTRA);
      lua_getfield(L, -1, "defaults");
      lua_rawgeti(L, -1, i + 1);
      lua_replace(L, -3);
      lua_pop(L, 1);
      lua_call(L, 0, 1);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        continue;
      }
      sq_err e;
      sq_err_clear(&e);
      int rc = set_slot(L, mod, iidx, i + 1, -1, 0, &e);
      lua_pop(L, 1);
      if (rc) lsq_usage(L, "default function: %.900s", e.msg);
      continue;
    }
    default: { /* SQ_DEFAULT_UUIDV4, or a UUID key without a default */
      char u[37];
      sq_err e;
      sq_err_clear(&e);
      if (sq_uuid_v4(u, &e)) lsq_raise(L, &e);
      lua_pushlstring(L, u, 36);
      break;
    }
    }
    lua_rawseti(L, iidx, i + 1);
  }
}

void lsq_instance_defaults(lua_State *L, int midx, int iidx) {
  char now[32];
  lsq_now(now);
  apply_defaults(L, midx, lua_touserdata(L, midx), lua_absindex(L, iidx), now);
}

void lsq_instance_prepare_insert(lua_State *L, int midx, int iidx, const char *now) {
  const lsq_model *mod = lua_touserdata(L, midx);
  apply_defaults(L, midx, mod, iidx, now);
  int ts[2] = {mod->created_col, mod->updated_col};
  int nowidx = 0; /* the DATETIME string of now, pushed once for both */
  for (int k = 0; k < 2; k++) {
    if (ts[k] < 0) continue;
    int t = lua_rawgeti(L, iidx, ts[k] + 1);
    lua_pop(L, 1);
    if (t != LUA_TNIL) continue;
    if (sq_model_col(mod->m, ts[k])->type == SQ_T_DATE) {
      lua_pushlstring(L, now, 10);
    } else {
      if (!nowidx) {
        lua_pushstring(L, now);
        nowidx = lua_gettop(L);
      }
      lua_pushvalue(L, nowidx);
    }
    lua_rawseti(L, iidx, ts[k] + 1);
  }
  if (nowidx) lua_remove(L, nowidx);
}

int lsq_instance_from(lua_State *L, int midx, int imtidx, int vidx, int isnew, const unsigned char *fields, int bad,
                      sq_err *err) {
  const lsq_model *mod = lua_touserdata(L, midx);
  if (bad) bad = lua_absindex(L, bad);
  lua_createtable(L, mod->ncols, 0);
  lua_pushvalue(L, imtidx);
  lua_setmetatable(L, -2);
  int iidx = lua_gettop(L);
  if (isnew) state_set(L, mod, iidx, STATE_NEW);
  if (vidx) {
    lua_getiuservalue(L, midx, MUV_NAMES);
    int nidx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, vidx)) {
      int slot = lua_type(L, -2) == LUA_TSTRING ? slot_of(L, nidx, lua_gettop(L) - 1) : 0;
      int rc;
      if (!slot) rc = no_column(L, mod, lua_gettop(L) - 1, err);
      else if (fields && !fields[slot - 1]) rc = SQ_OK; /* not to be written: as if not given */
      else if ((rc = set_slot(L, mod, iidx, slot, -1, 0, err)) && bad &&
               (rc = lsq_bad_value(L, bad, mod->cols[slot - 1], err)) == SQ_OK)
        sq_err_clear(err);
      if (rc) {
        lua_settop(L, iidx - 1);
        return rc;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return SQ_OK;
}

int lsq_instance_values(lua_State *L, const lsq_model *mod, int iidx, int *cols, sq_value *vals, sq_arena *a,
                        sq_err *err) {
  int n = 0;
  for (int i = 0; i < mod->ncols; i++) {
    if (lua_rawgeti(L, iidx, i + 1) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    char buf[48];
    int rc = lsq_col_value(L, -1, sq_model_col(mod->m, i), &vals[n], buf, a, err);
    lua_pop(L, 1); /* the instance keeps the string alive */
    if (rc) return -1;
    cols[n++] = i;
  }
  return n;
}

void lsq_instance_fill(lua_State *L, const lsq_model *mod, int iidx, int aidx) {
  for (int i = 1; i <= mod->ncols; i++) {
    lua_rawgeti(L, aidx, i);
    lua_rawseti(L, iidx, i);
  }
}

/* ---------------------------------------------------------------- */
/* validation                                                         */
/* ---------------------------------------------------------------- */

/* The message of a failed Lua validator: an error string without its
 * "file:line: " prefix, a sqorm error's message, or a default. */
static void validator_message(lua_State *L, const char *name) {
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    const char *p = s;
    /* strip "chunk:123: " */
    const char *colon = strchr(p, ':');
    if (colon) {
      const char *q = colon + 1;
      while (*q >= '0' && *q <= '9') q++;
      if (q > colon + 1 && q[0] == ':' && q[1] == ' ') p = q + 2;
    }
    if (p != s) {
      lua_pushstring(L, p);
      lua_remove(L, -2);
    }
    return;
  }
  if (lua_type(L, -1) == LUA_TTABLE && lua_getfield(L, -1, "message") == LUA_TSTRING) {
    lua_remove(L, -2);
    return;
  }
  lua_settop(L, lua_gettop(L) - (lua_type(L, -1) == LUA_TTABLE ? 2 : 1));
  lua_pushfstring(L, "failed validation '%s'", name);
}

/*
 * Runs the Lua validators of column c on the value at vidx. On failure
 * pushes the message and returns 1.
 */
static int lua_checks(lua_State *L, int midx, int c, int vidx, int inst) {
  lua_getiuservalue(L, midx, MUV_EXTRA);
  lua_getfield(L, -1, "validators");
  lua_rawgeti(L, -1, c + 1);
  int vt = lua_gettop(L);
  if (lua_type(L, vt) != LUA_TTABLE) {
    lua_pop(L, 3);
    return 0;
  }
  /* pattern: a Lua pattern the string form must match */
  if (lua_getfield(L, vt, "pattern") == LUA_TSTRING) {
    lua_getfield(L, vt - 2, "find");
    lua_pushvalue(L, vidx);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_tolstring(L, -1, NULL), lua_remove(L, -2);
    lua_pushvalue(L, -3);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushfstring(L, "must match the pattern '%s'", lua_tostring(L, -1));
      lua_replace(L, vt - 2);
      lua_settop(L, vt - 2);
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  /* functions: { name, fn } pairs in the list part */
  int n = (int)lua_rawlen(L, vt);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, vt, i);
    lua_rawgeti(L, -1, 1); /* name */
    lua_rawgeti(L, -2, 2); /* fn */
    lua_pushvalue(L, vidx);
    if (inst) lua_pushvalue(L, inst);
    else lua_pushnil(L);
    int failed = 0;
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
      validator_message(L, lua_tostring(L, -2));
      failed = 1;
    } else if (!lua_toboolean(L, -2) && (lua_type(L, -2) == LUA_TBOOLEAN || !lua_isnil(L, -1))) {
      /* false, or nil + message */
      if (lua_type(L, -1) == LUA_TSTRING) {
        lua_remove(L, -2);
      } else {
        lua_pop(L, 2);
        lua_pushfstring(L, "failed validation '%s'", lua_tostring(L, -1));
      }
      failed = 1;
    } else {
      lua_pop(L, 2);
    }
    if (failed) {
      lua_replace(L, vt - 2);
      lua_settop(L, vt - 2);
      return 1;
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 3);
  return 0;
}

/* The problem text of a one-field core message "validation failed:
 * name: problem". */
static const char *strip_problem(const char *msg, const char *name) {
  const char *p = msg;
  static const char head[] = "validation failed: ";
  if (!strncmp(p, head, sizeof head - 1)) p += sizeof head - 1;
  size_t n = strlen(name);
  if (!strncmp(p, name, n) && p[n] == ':' && p[n + 1] == ' ') p += n + 2;
  return p;
}

/*
 * The common case of lsq_validate, cheaply: every value given here came
 * through lsq_col_value, so it already has its column's type, and the
 * core can only object to a NULL in a NOT NULL column, to a rule beyond
 * the type (CF_RULES), to a text longer than STRING(n) allows (never when
 * it has at most n bytes), or, for an insert, to a required column left
 * out.
 * Only those columns go to sq_model_validate (so, e.g., timestamps are
 * not parsed again). Returns 0 when all is well, -1 when lsq_validate
 * must look closer (a failure, or a case this does not handle).
 */
static int validate_quick(const lsq_model *mod, const int *cols, const sq_value *vals, int n, int partial) {
  enum { QUICK_MAX = 64 };
  int qc[QUICK_MAX];
  sq_value qv[QUICK_MAX];
  int k = 0, nreq = 0;
  for (int i = 0; i < n; i++) {
    int c = cols[i];
    unsigned char f = mod->cflags[c];
    if (f & CF_REQUIRED) nreq++;
    const sq_col *col = mod->cols[c];
    int check = vals[i].type == SQ_VNULL ? !col->allow_null
                                         : (f & CF_RULES) || ((f & CF_MAXLEN) && (vals[i].type != SQ_VTEXT ||
                                                                                   vals[i].u.s.n > (size_t)col->length));
    if (check) {
      if (k == QUICK_MAX) return -1;
      qc[k] = c;
      qv[k++] = vals[i];
    }
  }
  if (!partial && nreq < mod->nrequired) return -1;
  if (k == 0) return 0;
  sq_err e;
  sq_err_clear(&e);
  return sq_model_validate(mod->m, qc, qv, k, 1, &e) == SQ_OK ? 0 : -1;
}

/* The problem of a conversion message ("column 'coins' expects an
 * integer ..., got ...") without its "column 'coins' " head. */
static const char *conv_problem(const char *msg, const sq_col *c) {
  static const char head[] = "column '";
  if (!strncmp(msg, head, sizeof head - 1)) {
    const char *p = msg + sizeof head - 1;
    if (!strncmp(p, c->name, c->name_len) && p[c->name_len] == '\'' && p[c->name_len + 1] == ' ')
      return p + c->name_len + 2;
  }
  return msg;
}

int lsq_bad_value(lua_State *L, int bad, const sq_col *c, const sq_err *err) {
  if (err->kind != SQ_EUSAGE) return err->kind; /* out of memory: not the value's fault */
  if (lua_type(L, bad) != LUA_TTABLE) {
    lua_newtable(L);
    lua_replace(L, bad);
  }
  lua_pushstring(L, conv_problem(err->msg, c));
  lua_setfield(L, bad, c->name);
  return SQ_OK;
}

/* Replaces the fields table at fields (name -> problem) with the
 * validation error listing them, in column order. */
static void push_invalid(lua_State *L, const lsq_model *mod, int fields) {
  lua_pushliteral(L, "validation failed: ");
  int k = 0;
  for (int c = 0; c < mod->ncols; c++) {
    const sq_col *col = mod->cols[c];
    if (lua_getfield(L, fields, col->name) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushfstring(L, "%s%s: %s", k++ ? "; " : "", col->name, lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_concat(L, 2);
  }
  int msgidx = lua_gettop(L);
  sq_err v;
  sq_err_clear(&v);
  sq_err_set(&v, SQ_EVALIDATION, "validation failed");
  lsq_push_error(L, &v);
  lua_pushvalue(L, msgidx);
  lua_setfield(L, -2, "message");
  lua_pushvalue(L, fields);
  lua_setfield(L, -2, "fields");
  lua_replace(L, fields);
  lua_settop(L, fields);
}

int lsq_validate(lua_State *L, int midx, const lsq_model *mod, const int *cols, const sq_value *vals, int n,
                 int flags, int inst, int bad) {
  int partial = (flags & LSQ_V_PARTIAL) != 0, lua = mod->has_lua_checks && !(flags & LSQ_V_CORE);
  if (bad) bad = lua_absindex(L, bad);
  int has_bad = bad && lua_type(L, bad) == LUA_TTABLE;
  if (!has_bad && !lua && validate_quick(mod, cols, vals, n, partial) == 0) return 0;
  sq_err e;
  sq_err_clear(&e);
  int rc = sq_model_validate(mod->m, cols, vals, n, partial, &e);
  if (rc == SQ_OK && !lua && !has_bad) return 0;
  if (rc && rc != SQ_EVALIDATION) {
    lsq_push_error(L, &e);
    return 1;
  }
  /* Field by field: which failed and why. Values that could not even be
   * converted (bad) are listed with the rest. */
  int nfail = 0;
  unsigned char given_small[256], *given;
  if (mod->ncols > (int)sizeof given_small) given = lua_newuserdatauv(L, (size_t)mod->ncols, 0);
  else given = given_small;
  memset(given, 0, (size_t)mod->ncols);
  if (has_bad) {
    lua_pushvalue(L, bad);
    lua_pushnil(L);
    while (lua_next(L, bad)) {
      lua_pop(L, 1);
      size_t kn;
      const char *k = lua_tolstring(L, -1, &kn);
      int c = sq_model_find(mod->m, k, kn);
      if (c >= 0) given[c] = 1;
      nfail++;
    }
  } else {
    lua_createtable(L, 0, 4);
  }
  int fields = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    int c = cols[i];
    const sq_col *col = mod->cols[c];
    given[c] = 1;
    sq_err e1;
    sq_err_clear(&e1);
    if (rc && sq_model_validate(mod->m, &c, &vals[i], 1, 1, &e1) == SQ_EVALIDATION) {
      if ((mod->cflags[c] & CF_NOT_EMPTY) && (vals[i].type == SQ_VTEXT || vals[i].type == SQ_VBLOB) &&
          vals[i].u.s.n == 0)
        lua_pushliteral(L, "must not be empty");
      else lua_pushstring(L, strip_problem(e1.msg, col->name));
      lua_setfield(L, fields, col->name);
      nfail++;
      continue;
    }
    if (lua && (mod->cflags[c] & CF_LUA_VALIDATE) && vals[i].type != SQ_VNULL) {
      lsq_push_colval(L, col, &vals[i]);
      int vidx = lua_gettop(L);
      if (lua_checks(L, midx, c, vidx, inst)) {
        lua_setfield(L, fields, col->name);
        nfail++;
      }
      lua_settop(L, vidx - 1);
    }
  }
  if (rc && !partial) {
    for (int c = 0; c < mod->ncols; c++) {
      if (given[c] || !(mod->cflags[c] & CF_REQUIRED)) continue;
      lua_pushliteral(L, "cannot be null");
      lua_setfield(L, fields, mod->cols[c]->name);
      nfail++;
    }
  }
  if (nfail == 0) {
    lua_settop(L, fields - 1 - (given != given_small));
    return 0;
  }
  push_invalid(L, mod, fields);
  if (given != given_small) lua_remove(L, -2);
  return 1;
}

/* ---------------------------------------------------------------- */
/* metamethods                                                        */
/* ---------------------------------------------------------------- */

/* Raises the failed conversion err of a value for column c as a
 * validation error naming the field (form input of the wrong type). */
static int raise_bad_value(lua_State *L, const lsq_model *mod, const sq_col *c, const sq_err *err) {
  if (err->kind != SQ_EUSAGE) return lsq_raise(L, err);
  lua_pushnil(L);
  int bad = lua_gettop(L);
  lsq_bad_value(L, bad, c, err);
  push_invalid(L, mod, bad);
  return lua_error(L);
}

/* __index(t, k): upvalue 1 = instance methods, upvalue 2 = name -> slot. */
static int inst_index(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  if (lua_rawget(L, lua_upvalueindex(2)) == LUA_TNUMBER) {
    lua_rawgeti(L, 1, lua_tointeger(L, -1));
    return 1;
  }
  return 0;
}

/* __newindex(t, k, v): upvalue 1 = name -> slot, upvalue 2 = the model. */
static int inst_newindex(lua_State *L) {
  lsq_model *mod = lua_touserdata(L, lua_upvalueindex(2));
  sq_err e;
  sq_err_clear(&e);
  lua_pushvalue(L, 2);
  int slot = lua_rawget(L, lua_upvalueindex(1)) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  if (!slot) {
    no_column(L, mod, 2, &e);
    return lsq_raise(L, &e);
  }
  if (set_slot(L, mod, 1, slot, 3, 1, &e)) return raise_bad_value(L, mod, mod->cols[slot - 1], &e);
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
  lsq_model *mod = check_instance(L, &midx);
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
  lsq_model *mod = check_instance(L, &midx);
  int slot = 0;
  if (!lua_isnil(L, 2)) {
    lua_getiuservalue(L, midx, MUV_NAMES);
    slot = slot_of(L, lua_gettop(L), 2);
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
  int slot = slot_of(L, lua_gettop(L), kidx);
  lua_pop(L, 1);
  if (!slot) {
    sq_err e;
    sq_err_clear(&e);
    no_column(L, mod, kidx, &e);
    lsq_raise(L, &e);
  }
  return slot;
}

/* p:get(name) -> the column's value, even when a method shares its name */
static int inst_get(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
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
static void set_many(lua_State *L, int midx, lsq_model *mod, int vidx, const unsigned char *fields, int update) {
  sq_err e;
  sq_err_clear(&e);
  lua_getiuservalue(L, midx, MUV_NAMES);
  int nidx = lua_gettop(L);
  lua_pushnil(L);
  int bad = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, vidx)) {
    int slot = lua_type(L, -2) == LUA_TSTRING ? slot_of(L, nidx, lua_gettop(L) - 1) : 0;
    if (!slot) {
      no_column(L, mod, lua_gettop(L) - 1, &e);
      lsq_raise(L, &e);
    }
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
      push_invalid(L, mod, bad);
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
      int slot = slot_of(L, nidx, lua_gettop(L) - 1);
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
    int slot = slot_of(L, nidx, lua_gettop(L) - 1);
    if ((!fields || fields[slot - 1]) && set_slot(L, mod, 1, slot, -1, 1, &e))
      raise_bad_value(L, mod, mod->cols[slot - 1], &e);
    lua_pop(L, 1);
  }
  lua_settop(L, nidx - 1);
}

/* p:set(name, value) / p:set{ name = value, ... } -> p */
static int inst_set(lua_State *L) {
  lua_settop(L, 3);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
  if (lua_type(L, 2) == LUA_TTABLE) {
    set_many(L, midx, mod, 2, NULL, 0);
  } else {
    int slot = column_slot(L, midx, mod, 2);
    sq_err e;
    sq_err_clear(&e);
    if (set_slot(L, mod, 1, slot, 3, 1, &e)) return raise_bad_value(L, mod, mod->cols[slot - 1], &e);
  }
  lua_settop(L, 1);
  return 1;
}

/* p:changed() -> { "coins", ... } (column order) or false */
static int inst_changed(lua_State *L) {
  lua_settop(L, 1);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
  push_state(L, 1);
  int ch = lua_gettop(L);
  lua_getmetatable(L, 1);
  lua_rawgeti(L, -1, IMT_COLNAMES);
  int names = lua_gettop(L);
  lua_newtable(L);
  int k = 0;
  for (int i = 1; i <= mod->ncols; i++) {
    if (state_has(L, ch, i)) {
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
  lsq_model *mod = check_instance(L, &midx);
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

/* The primary key condition of the instance at iidx: the key its row
 * was loaded with (IMT_ORIG) where a key column changed since, else the
 * values of its slots. The values are copied into a. */
static int pk_where(lua_State *L, const lsq_model *mod, int iidx, sq_arena *a, sq_expr **out, sq_err *err) {
  sq_expr *kids = sq_arena_alloc(a, sizeof *kids * (size_t)mod->npk);
  sq_value *vals = sq_arena_alloc(a, sizeof *vals * (size_t)mod->npk);
  sq_expr **pkids = sq_arena_alloc(a, sizeof *pkids * (size_t)mod->npk);
  sq_expr *and = sq_arena_alloc(a, sizeof *and);
  if (!kids || !vals || !pkids || !and) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  iidx = lua_absindex(L, iidx);
  int orig = push_orig(L, iidx) == LUA_TTABLE ? lua_gettop(L) : 0;
  for (int i = 0; i < mod->npk; i++) {
    int c = mod->pk[i];
    const sq_col *col = sq_model_col(mod->m, c);
    int t = LUA_TNIL;
    if (orig && (t = lua_rawgeti(L, orig, c + 1)) == LUA_TNIL) lua_pop(L, 1);
    if (t == LUA_TNIL && lua_rawgeti(L, iidx, c + 1) == LUA_TNIL) {
      lua_pop(L, 2);
      return sq_err_set(err, SQ_EUSAGE, "this %s instance has no primary key value ('%s'): load it with its key",
                        sq_model_name(mod->m), col->name);
    }
    char buf[48];
    int rc = lsq_col_value(L, -1, col, &vals[i], buf, a, err);
    lua_pop(L, 1);
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
    memset(&kids[i], 0, sizeof kids[i]);
    kids[i].op = SQ_OP_EQ;
    kids[i].col = c;
    kids[i].vals = &vals[i];
    kids[i].nvals = 1;
    pkids[i] = &kids[i];
  }
  lua_pop(L, 1); /* the original keys or nil */
  if (mod->npk == 1) {
    *out = &kids[0];
    return SQ_OK;
  }
  memset(and, 0, sizeof *and);
  and->op = SQ_OP_AND;
  and->kids = pkids;
  and->nkids = mod->npk;
  *out = and;
  return SQ_OK;
}


/* An instance write that matched no row: its row was deleted, or its
 * key changed, by someone else since it was loaded. */
static int raise_stale(lua_State *L, const lsq_model *mod, const char *method) {
  sq_err err;
  sq_err_clear(&err);
  sq_err_set(&err, SQ_ESTALE, "%s: no %s row has this instance's key any more (deleted or re-keyed since it was loaded)%s",
             method, sq_model_name(mod->m), strcmp(method, "reload") ? "; nothing was written" : "");
  return lsq_raise(L, &err);
}

/*
 * The columns p:save() writes for the saved instance at 1: changed ones
 * (only those flagged in fields, when given), plus updated_at (now) when
 * stamp. Values are converted and copied into a. Returns how many, or -1
 * with err filled.
 */
static int save_values(lua_State *L, const lsq_model *mod, const unsigned char *fields, int stamp, const char *now,
                       sq_arena *a, int *cols, sq_value *vals, sq_err *err) {
  push_state(L, 1);
  int ch = lua_gettop(L), n = 0;
  for (int i = 0; i < mod->ncols; i++) {
    if (i == mod->updated_col && stamp) {
      const sq_col *c = mod->cols[i];
      vals[n] = sq_text(now, c->type == SQ_T_DATE ? 10 : strlen(now)); /* the caller's buffer */
      cols[n++] = i;
      continue;
    }
    if (!state_has(L, ch, i + 1) || (fields && !fields[i])) continue;
    lua_rawgeti(L, 1, i + 1);
    int rc = SQ_OK;
    if (lua_isnil(L, -1)) vals[n] = sq_null();
    else {
      char buf[48];
      rc = lsq_col_value(L, -1, mod->cols[i], &vals[n], buf, a, err);
    }
    lua_pop(L, 1);
    if (rc) {
      lua_settop(L, ch - 1);
      return -1;
    }
    cols[n++] = i;
  }
  lua_settop(L, ch - 1);
  return n;
}

/*
 * p:save([{ fields = {...} }]) -> p. INSERT for a built instance; else an
 * UPDATE of the changed columns only (those in fields, when given), plus
 * updated_at, addressed by the key the row was loaded with; nothing when
 * nothing changed. An UPDATE that matches no row raises kind stale.
 * fields: a flag per column, or NULL.
 */
static int save_instance(lua_State *L, int midx, lsq_model *mod, const unsigned char *fields, const char *method) {
  push_state(L, 1);
  int ch = lua_gettop(L);
  /* the usual narrow model: the state as a mask, tested here in C */
  int wide = lua_type(L, ch) == LUA_TTABLE;
  lua_Unsigned mask = lua_type(L, ch) == LUA_TNUMBER ? (lua_Unsigned)lua_tointeger(L, ch) : 0;
#define CHANGED(b) (wide ? state_has(L, ch, (b)) : (int)((mask >> (b)) & 1))
  if (CHANGED(STATE_NEW)) {
    if (fields) {
      /* given values of other columns are not written: those columns get
       * what an insert that leaves them out gives them (defaults,
       * generated keys, timestamps) */
      for (int i = 0; i < mod->ncols; i++)
        if (!fields[i]) {
          lua_pushnil(L);
          lua_rawseti(L, 1, i + 1);
        }
    }
    lua_settop(L, midx);
    return lsq_instance_insert(L, midx, 1, 0);
  }
  int any = 0;
  for (int i = 1; i <= mod->ncols && !any; i++) any = CHANGED(i) && (!fields || fields[i - 1]);
  if (!any) {
    lua_settop(L, 1);
    return 1;
  }
  /* updated_at goes with every UPDATE (unless set by hand and written) */
  int stamp = mod->updated_col >= 0 && !(CHANGED(mod->updated_col + 1) && (!fields || fields[mod->updated_col]));
#undef CHANGED
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  lua_settop(L, dbidx);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  int *cols = a ? sq_arena_alloc(a, sizeof *cols * (size_t)mod->ncols) : NULL;
  /* room for the key values after the set ones: the parameters of a
   * cached UPDATE */
  sq_value *vals = a ? sq_arena_alloc(a, sizeof *vals * (size_t)(mod->ncols + mod->npk)) : NULL;
  if (!cols || !vals) {
    if (!err.kind) sq_err_set(&err, SQ_ENOMEM, "out of memory");
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  int n = save_values(L, mod, fields, stamp, now, a, cols, vals, &err);
  if (n < 0) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_PARTIAL, 1, 0)) {
    lsq_scratch_done(s);
    return lua_error(L);
  }
  if (mod->has_lua_checks) {
    /* Validators may normalise the instance (p.email = v:lower()): what
     * is written is the instance as they left it, checked again by the
     * built-in rules. */
    n = save_values(L, mod, fields, stamp, now, a, cols, vals, &err);
    if (n < 0) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_PARTIAL | LSQ_V_CORE, 1, 0)) {
      lsq_scratch_done(s);
      return lua_error(L);
    }
  }
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  q.paranoid = 0;
  q.cols = cols;
  q.ncols = n;
  q.values = vals;
  q.nrows = 1;
  if (pk_where(L, mod, 1, a, &q.where, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  /* the parameters: the set values, then the key (as pk_where has it) */
  const sq_expr *w = q.where;
  for (int i = 0; i < mod->npk; i++) vals[n + i] = mod->npk == 1 ? w->vals[0] : w->kids[i]->vals[0];
  const lsq_shape *sh = lsq_shape_find(mod, SHAPE_UPDATE_PK, cols, n, 1);
  const char *sql;
  size_t len;
  if (sh) {
    /* the operation's own copy: the logging function may evict the
     * cached shape (by running other statements) before it is sent */
    char *copy = sq_arena_alloc(a, sh->len + 1);
    if (!copy) {
      lsq_scratch_done(s);
      sq_err_set(&err, SQ_ENOMEM, "out of memory");
      return lsq_raise(L, &err);
    }
    memcpy(copy, sh->sql, sh->len + 1);
    sql = copy;
    len = sh->len;
  } else {
    if (sq_render(&q, mod->dialect, &s->sql, &err)) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    lsq_shape_store(mod, SHAPE_UPDATE_PK, cols, n, 1, &s->sql, vals, n + mod->npk);
    sql = s->sql.sql;
    len = s->sql.len;
  }
  sq_result res;
  int failed = sh ? lsq_model_run_sql(L, dbidx, mod, sql, len, vals, n + mod->npk, &res)
                  : lsq_model_run_sql(L, dbidx, mod, sql, len, s->sql.params, s->sql.nparams, &res);
  lsq_scratch_done(s);
  if (failed) return lua_error(L);
  if (res.affected_rows == 0) return raise_stale(L, mod, method);
  if (stamp) {
    const sq_col *c = mod->cols[mod->updated_col];
    lua_pushlstring(L, now, c->type == SQ_T_DATE ? 10 : strlen(now));
    lua_rawseti(L, 1, mod->updated_col + 1);
  }
  if (fields) saved_cols(L, mod, 1, cols, n);
  else lsq_instance_saved(L, 1);
  lua_settop(L, 1);
  return 1;
}

static const char *const save_opts[] = {"fields", NULL};

static int inst_save(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
  lsq_check_opts(L, 2, "save", save_opts);
  /* the mask stays on the stack above the model */
  const unsigned char *fields = lsq_fields_opt(L, mod, 2, "save");
  return save_instance(L, midx, mod, fields, "save");
}

/* p:update({ name = value, ... } [, { fields = {...} }]) -> p: sets them
 * (only those in fields, when given) and saves every pending change (in
 * fields). */
static int inst_update(lua_State *L) {
  lua_settop(L, 3);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "update expects a table of column values, got %s", luaL_typename(L, 2));
  lsq_check_opts(L, 3, "update", save_opts);
  const unsigned char *fields = lsq_fields_opt(L, mod, 3, "update");
  set_many(L, midx, mod, 2, fields, 1);
  return save_instance(L, midx, mod, fields, "update");
}

static const char *const destroy_opts[] = {"force", NULL};

/* p:destroy([{ force = true }]) -> true once its row is deleted (soft on
 * paranoid models: sets deleted_at); stale when no row has its key. */
static int inst_destroy(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
  lsq_check_opts(L, 2, "destroy", destroy_opts);
  int force = 0;
  if (lua_type(L, 2) == LUA_TTABLE) {
    int t = lua_getfield(L, 2, "force");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) return lsq_usage(L, "destroy: force must be a boolean");
    force = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  int soft = mod->deleted_col >= 0 && !force;
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  sq_query q;
  sq_query_init(&q, soft ? SQ_Q_UPDATE : SQ_Q_DELETE, mod->m);
  q.paranoid = 0;
  int dcol = mod->deleted_col;
  sq_value dval;
  if (soft) {
    const sq_col *c = sq_model_col(mod->m, dcol);
    dval = sq_text(now, c->type == SQ_T_DATE ? 10 : strlen(now));
    q.cols = &dcol;
    q.ncols = 1;
    q.values = &dval;
    q.nrows = 1;
  }
  if (!a || pk_where(L, mod, 1, a, &q.where, &err) || sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, 0, 0, &res)) return lua_error(L);
  if (res.affected_rows == 0) return raise_stale(L, mod, "destroy");
  if (soft) {
    lua_pushlstring(L, dval.u.s.p, dval.u.s.n);
    lua_rawseti(L, 1, dcol + 1);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* p:reload() -> p with every column read again, found by the key its
 * row was loaded with; stale when the row is gone. Pending changes are
 * dropped. */
static int inst_reload(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
  lsq_check_opts(L, 2, "reload", NULL);
  int dbidx = lsq_model_db(L, midx);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  q.paranoid = 0;
  if (!a || pk_where(L, mod, 1, a, &q.where, &err) || sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, SINK_ONE, LSQ_RUN_BARE | LSQ_RUN_READ | LSQ_RUN_ALLCOLS, &res)) return lua_error(L);
  if (lua_isnil(L, -1)) return raise_stale(L, mod, "reload");
  lsq_instance_fill(L, mod, 1, lua_gettop(L));
  lsq_instance_saved(L, 1);
  lua_settop(L, 1);
  return 1;
}

/*
 * p:increment("coins" [, by | { by = n }]) / p:increment{ coins = 5 } -> p
 * UPDATE ... SET coins = coins + 5 by primary key; the instance's value
 * moves by the same amount (reload for the stored value when others
 * write too).
 */
static int incr(lua_State *L, int sign) {
  lua_settop(L, 3);
  int midx;
  lsq_model *mod = check_instance(L, &midx);
  lua_getiuservalue(L, midx, MUV_NAMES);
  int nidx = lua_gettop(L);
  /* normalise to a table { name = amount } at index fidx */
  lua_newtable(L);
  int fidx = lua_gettop(L);
  /* the amount for named columns: a number, { by = n } or 1 */
  static const char *const incr_opts[] = {"by", NULL};
  const char *method = sign > 0 ? "increment" : "decrement";
  if (lua_type(L, 3) == LUA_TTABLE) {
    lsq_check_opts(L, 3, method, incr_opts);
    lua_getfield(L, 3, "by");
  } else if (lua_isnil(L, 3)) {
    lua_pushnil(L);
  } else if (lua_type(L, 3) == LUA_TNUMBER) {
    lua_pushvalue(L, 3);
  } else {
    return lsq_usage(L, "%s: the amount must be a number or { by = n }", method);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushinteger(L, 1);
  }
  lua_replace(L, 3);
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, fidx);
  } else if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TSTRING) { /* { "coins", "goods" } */
        lua_pushvalue(L, -1);
        lua_pushvalue(L, 3);
        lua_rawset(L, fidx);
      } else {
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, fidx);
      }
      lua_pop(L, 1);
    }
  } else {
    return lsq_usage(L, "increment expects a column name or a table { column = amount }");
  }
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  int *icols = a ? sq_arena_alloc(a, sizeof(int) * (size_t)mod->ncols) : NULL;
  sq_value *ivals = a ? sq_arena_alloc(a, sizeof(sq_value) * (size_t)mod->ncols) : NULL;
  int ni = 0;
  if (!icols || !ivals) {
    lsq_scratch_done(s);
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return lsq_raise(L, &err);
  }
  lua_pushnil(L);
  while (lua_next(L, fidx)) {
    int slot = lua_type(L, -2) == LUA_TSTRING ? slot_of(L, nidx, lua_gettop(L) - 1) : 0;
    if (!slot || ni >= mod->ncols) {
      no_column(L, mod, lua_gettop(L) - 1, &err);
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    const sq_col *c = sq_model_col(mod->m, slot - 1);
    if (lua_type(L, -1) != LUA_TNUMBER || (c->type != SQ_T_INTEGER && c->type != SQ_T_BIGINT &&
                                            c->type != SQ_T_SMALLINT && c->type != SQ_T_FLOAT &&
                                            c->type != SQ_T_DOUBLE && c->type != SQ_T_DECIMAL)) {
      sq_err_set(&err, SQ_EUSAGE, "increment: column '%s' needs a numeric column and a number", c->name);
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    if (sign < 0) {
      if (lua_isinteger(L, -1)) lua_pushinteger(L, -lua_tointeger(L, -1));
      else lua_pushnumber(L, -lua_tonumber(L, -1));
      lua_replace(L, -2);
    }
    char buf[48];
    if (lsq_col_value(L, -1, c, &ivals[ni], buf, a, &err)) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    /* the negated number must stay reachable: keep it in the table */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, fidx);
    icols[ni++] = slot - 1;
    lua_pop(L, 1);
  }
  if (ni == 0) {
    lsq_scratch_done(s);
    return lsq_usage(L, "increment: no columns given");
  }
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  q.paranoid = 0;
  q.incr_cols = icols;
  q.incr_values = ivals;
  q.nincr = ni;
  int ucol = mod->updated_col;
  sq_value uval;
  if (ucol >= 0) {
    const sq_col *c = sq_model_col(mod->m, ucol);
    uval = sq_text(now, c->type == SQ_T_DATE ? 10 : strlen(now));
    q.cols = &ucol;
    q.ncols = 1;
    q.values = &uval;
    q.nrows = 1;
  }
  if (pk_where(L, mod, 1, a, &q.where, &err) || sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, 0, 0, &res)) return lua_error(L);
  if (res.affected_rows == 0) return raise_stale(L, mod, sign > 0 ? "increment" : "decrement");
  /* move the instance's values along */
  lua_pushnil(L);
  while (lua_next(L, fidx)) {
    int slot = slot_of(L, nidx, lua_gettop(L) - 1);
    const sq_col *c = sq_model_col(mod->m, slot - 1);
    lua_rawgeti(L, 1, slot);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_arith(L, LUA_OPADD);
      if (c->type != SQ_T_FLOAT && c->type != SQ_T_DOUBLE) {
        int isint;
        lua_Integer iv = lua_tointegerx(L, -1, &isint);
        if (isint) {
          lua_pop(L, 1);
          lua_pushinteger(L, iv);
        }
      }
      lua_rawseti(L, 1, slot);
    } else {
      lua_pop(L, 2);
    }
  }
  if (ucol >= 0) {
    lua_pushlstring(L, uval.u.s.p, uval.u.s.n);
    lua_rawseti(L, 1, ucol + 1);
  }
  lua_settop(L, 1);
  return 1;
}

static int inst_increment(lua_State *L) { return incr(L, 1); }
static int inst_decrement(lua_State *L) { return incr(L, -1); }

static const luaL_Reg inst_methods[] = {
  {"get", inst_get},
  {"set", inst_set},
  {"save", inst_save},
  {"update", inst_update},
  {"destroy", inst_destroy},
  {"reload", inst_reload},
  {"changed", inst_changed},
  {"to_table", inst_to_table},
  {"increment", inst_increment},
  {"decrement", inst_decrement},
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
  luaL_newlib(L, inst_methods);
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
