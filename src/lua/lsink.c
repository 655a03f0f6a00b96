/*
 * lsink.c - what comes out: values decoded by column type (one
 * conversion per value), and the row sinks that build Lua values in C,
 * straight from the driver's values - plain row tables keyed by column
 * name (db:query), instances whose array part holds the column values in
 * model order (no intermediate row table, no per-row name hashing), raw
 * rows, or bare arrays (RETURNING).
 */
#include "lassoc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  case SQ_T_JSON:
    if (v->type == SQ_VTEXT || v->type == SQ_VBLOB) {
      lsq_json_push(L, v->u.s.p, v->u.s.n, c->name);
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

/* The row sinks push the common pairs of column type and value type
 * straight - an integer column's integer, a string-like, DATETIME or
 * ENUM column's text or bytes: what lsq_push_colval pushes for them -
 * and everything else through lsq_push_colval. */
#define T_BIT(t) (1u << (t))
#define FAST_INT (T_BIT(SQ_T_INTEGER) | T_BIT(SQ_T_BIGINT) | T_BIT(SQ_T_SMALLINT))
#define FAST_TEXT                                                                                              \
  (T_BIT(SQ_T_STRING) | T_BIT(SQ_T_TEXT) | T_BIT(SQ_T_CHAR) | T_BIT(SQ_T_UUID) | T_BIT(SQ_T_BLOB) |            \
   T_BIT(SQ_T_DATETIME) | T_BIT(SQ_T_ENUM))

static inline void push_fast(lua_State *L, const sq_col *c, const sq_value *v) {
  unsigned bit = (unsigned)c->type < 32 ? T_BIT(c->type) : 0;
  switch (v->type) {
  case SQ_VINT:
    if (bit & FAST_INT) {
      lua_pushinteger(L, (lua_Integer)v->u.i);
      return;
    }
    break;
  case SQ_VTEXT: case SQ_VBLOB:
    if (bit & FAST_TEXT) {
      lua_pushlstring(L, v->u.s.p, v->u.s.n);
      return;
    }
    break;
  default: break;
  }
  lsq_push_colval(L, c, v);
}

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
    if (s->hidx) lua_setiuservalue(L, s->hidx, OUV_MAP); /* anchored by the holder */
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
        if (s->hidx && s->across) {
          lua_pushvalue(L, s->extras);
          lua_setiuservalue(L, s->hidx, OUV_AUX);
          s->aux = 1;
        }
      }
      lua_pushlstring(L, cols[i].name, cols[i].name_len);
      lua_rawseti(L, s->extras, i + 1);
    }
    }
  }
  if (s->raw && s->mode != SINK_FETCH && !s->across && lua_checkstack(L, ncols + 8)) {
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
      else push_fast(L, mc[c], &vals[i]);
      lua_rawseti(L, inst, c + 1);
    }
    if (inst != s->out) lua_pop(L, 1);
    return 0;
  }
  if (s->raw) {
    lua_createtable(L, 0, ncols);
    if (s->names) {
      /* the keys pushed once per statement */
      for (int i = 0; i < ncols; i++) {
        if (vals[i].type == SQ_VNULL) continue;
        int c = s->map[i];
        lua_pushvalue(L, s->names + i);
        if (c >= 0) push_fast(L, mc[c], &vals[i]);
        else lsq_push_value(L, &vals[i]);
        lua_rawset(L, -3);
      }
    } else {
      /* a cursor's rows (or no stack room for the keys): the keys from
       * the model's names and the extras */
      for (int i = 0; i < ncols; i++) {
        if (vals[i].type == SQ_VNULL) continue;
        int c = s->map[i];
        if (c >= 0) lua_rawgeti(L, s->colnames, c + 1);
        else lua_rawgeti(L, s->extras, i + 1);
        if (c >= 0) push_fast(L, mc[c], &vals[i]);
        else lsq_push_value(L, &vals[i]);
        lua_rawset(L, -3);
      }
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
        push_fast(L, mc[c], &vals[i]);
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
    if (s->n++ > 0) lua_pop(L, 1);
    else if (s->hidx) lua_setiuservalue(L, s->hidx, OUV_OUT);
    else lua_replace(L, s->out);
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

/* Interns the column names on the stack at names_base.. so each row reuses
 * the same Lua strings instead of hashing the names again. */
static int rows_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  lsq_rows *r = ud;
  lua_State *L = r->L;
  (void)err;
  lua_settop(L, r->names_base - 1);
  luaL_checkstack(L, ncols + 8, "too many result columns");
  for (int i = 0; i < ncols; i++) lua_pushlstring(L, cols[i].name, cols[i].name_len);
  r->ncols = ncols;
  return 0;
}

static int rows_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  lsq_rows *r = ud;
  lua_State *L = r->L;
  (void)err;
  if (r->first && r->n > 0) return 0; /* plain / scalar: the first row only */
  if (r->first == LROWS_SCALAR) {
    r->n++;
    if (ncols < 1 || r->ncols < 1 || vals[0].type == SQ_VNULL) lua_pushnil(L);
    else lsq_push_value(L, &vals[0]);
    lua_rawseti(L, r->rows, 1);
    return 0;
  }
  lua_createtable(L, 0, ncols);
  for (int i = 0; i < ncols && i < r->ncols; i++) {
    if (vals[i].type == SQ_VNULL) continue; /* NULL reads back as nil */
    lua_pushvalue(L, r->names_base + i);
    lsq_push_value(L, &vals[i]);
    lua_rawset(L, -3);
  }
  lua_rawseti(L, r->rows, ++r->n);
  return 0;
}

void lsq_rows_sink(lsq_rows *r, sq_row_sink *sink) {
  sink->ud = r;
  sink->columns = rows_columns;
  sink->row = rows_row;
}

/* ---------------------------------------------------------------- */
/* the sinks of operations (lop.h)                                    */
/* ---------------------------------------------------------------- */

/* Rows keyed by column name into a new list (OUV_OUT), as db:query
 * returns them; the names are interned once per statement, on the stack
 * of the frame the rows are built in. */
static int orows_columns(lsq_op *h, int ncols, const sq_column *cols, sq_err *err) {
  lsq_rows *r = &h->rows;
  lua_State *L = r->L;
  (void)err;
  lua_createtable(L, 8, 0);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, h->hidx, OUV_OUT);
  r->rows = lua_gettop(L);
  r->names_base = r->rows + 1;
  r->n = 0;
  return rows_columns(r, ncols, cols, err);
}

/* The value of count / sum / min / max / avg: the last column of the
 * first row, decoded for the aggregate, into OUV_OUT. */
static int oscalar_row(lsq_op *h, int ncols, const sq_value *vals) {
  lua_State *L = h->L;
  int fn = h->scalar.fn;
  const sq_col *col = h->scalar.col;
  if (h->scalar.got++ || ncols < 1) return 0;
  const sq_value *v = &vals[ncols - 1];
  if (v->type == SQ_VNULL) return 0;
  int numeric = fn == SQ_FN_COUNT || fn == SQ_FN_AVG || (fn == SQ_FN_SUM && col->type != SQ_T_DECIMAL);
  if (fn == SQ_FN_MIN || fn == SQ_FN_MAX || (fn == SQ_FN_SUM && col->type == SQ_T_DECIMAL)) {
    lsq_push_colval(L, col, v);
  } else if (numeric) {
    switch (v->type) {
    case SQ_VINT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
    case SQ_VFLOAT:
      if (fn == SQ_FN_AVG) lua_pushnumber(L, v->u.f);
      else {
        lua_Integer i;
        if (lua_numbertointeger(v->u.f, &i) && (double)i == v->u.f) lua_pushinteger(L, i);
        else lua_pushnumber(L, v->u.f);
      }
      break;
    case SQ_VBOOL: lua_pushinteger(L, v->u.b); break;
    default: {
      /* text: "123" or "12.5" (postgres numeric, mysql DECIMAL sums) */
      lua_pushlstring(L, v->u.s.p, v->u.s.n);
      if (lua_stringtonumber(L, lua_tostring(L, -1))) {
        lua_remove(L, -2);
        if (fn == SQ_FN_AVG && lua_isinteger(L, -1)) lua_pushnumber(L, (lua_Number)lua_tointeger(L, -1)), lua_remove(L, -2);
        else if (fn == SQ_FN_SUM && col->type != SQ_T_FLOAT && col->type != SQ_T_DOUBLE && !lua_isinteger(L, -1)) {
          lua_Integer i;
          if (lua_numbertointeger(lua_tonumber(L, -1), &i) && (double)i == lua_tonumber(L, -1)) {
            lua_pop(L, 1);
            lua_pushinteger(L, i);
          }
        }
      }
    }
    }
  } else {
    lsq_push_value(L, v);
  }
  lua_setiuservalue(L, h->hidx, OUV_OUT);
  return 0;
}

static int op_columns(void *ud, int set, int ncols, const sq_column *cols, sq_err *err) {
  lsq_op *h = ud;
  (void)set;
  switch (h->sink) {
  case LSINK_ROWS: return orows_columns(h, ncols, cols, err);
  case LSINK_MODEL: return isink_columns(&h->isink, ncols, cols, err);
  case LSINK_INCLUDE: return lsq_incsink_columns(h, set, ncols, cols, err);
  default: return 0;
  }
}

static int op_row(void *ud, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err) {
  lsq_op *h = ud;
  (void)set, (void)parent;
  switch (h->sink) {
  case LSINK_ROWS: return rows_row(&h->rows, ncols, vals, err);
  case LSINK_MODEL: return isink_row(&h->isink, ncols, vals, err);
  case LSINK_SCALAR: return oscalar_row(h, ncols, vals);
  case LSINK_INCLUDE: return lsq_incsink_row(h, set, parent, ncols, vals, err);
  default: return 0;
  }
}

void lsq_op_sink_of(lsq_op *h, sq_oper_sink *s) {
  s->ud = h;
  s->columns = op_columns;
  s->row = op_row;
  s->protect = NULL;
}

void lsq_op_sink_enter(lua_State *L, lsq_op *h, int midx) {
  switch (h->sink) {
  case LSINK_ROWS:
    h->rows.L = L;
    break;
  case LSINK_MODEL: {
    lsq_isink *s = &h->isink;
    s->L = L;
    s->hidx = h->hidx;
    if (!s->bare) {
      lua_getiuservalue(L, midx, MUV_IMT);
      s->imt = lua_gettop(L);
      if (s->raw) { /* the names: raw rows' keys only */
        lua_rawgeti(L, s->imt, IMT_COLNAMES);
        s->colnames = lua_gettop(L);
      }
    }
    if (s->mode == SINK_LIST) {
      if (lua_getiuservalue(L, h->hidx, OUV_OUT) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 4, 0);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, h->hidx, OUV_OUT);
      }
      s->out = lua_gettop(L);
    } else if (s->mode == SINK_FILL || s->mode == SINK_FILL_LIST) {
      /* the instance (or the list of instances) the rows go into: the
       * holder's OUV_OUT, set by the write that runs the op */
      lua_getiuservalue(L, h->hidx, OUV_OUT);
      s->out = lua_gettop(L);
    }
    /* the extras of the statement's columns: made by the columns call in
     * this frame, or (a cursor) kept by the holder */
    s->extras = 0;
    if (s->aux && lua_getiuservalue(L, h->hidx, OUV_AUX) == LUA_TTABLE) s->extras = lua_gettop(L);
    else if (s->aux) lua_pop(L, 1);
    break;
  }
  default:
    break;
  }
}

void lsq_op_sink_rows(lua_State *L, lsq_op *h) {
  (void)L;
  memset(&h->rows, 0, sizeof h->rows);

  h->sink = LSINK_ROWS;
  lsq_op_attach_sink(h);
}

lsq_isink *lsq_op_sink_model(lua_State *L, lsq_op *h, int midx, int mode) {
  lsq_isink_init(&h->isink, L, lua_touserdata(L, midx), mode);
  h->isink.hidx = h->base;
  h->midx = lua_absindex(L, midx);
  h->sink = LSINK_MODEL;
  lsq_op_attach_sink(h);
  return &h->isink;
}

void lsq_op_sink_scalar(lua_State *L, lsq_op *h, int fn, const sq_col *col) {
  (void)L;
  h->scalar.fn = fn;
  h->scalar.col = col;
  h->scalar.got = 0;
  h->sink = LSINK_SCALAR;
  lsq_op_attach_sink(h);
}

void lsq_op_sink_keep(lua_State *L, lsq_op *h) {
  (void)L;
  if (h->sink == LSINK_MODEL) {
    h->isink.n = 0;
    h->isink.hidx = h->base;
  }
  lsq_op_attach_sink(h);
}
