/*
 * ljson.c - Lua values <-> JSON text for T.JSON columns, in C, over the
 * core's parser and writer (src/core/json.c):
 *
 *   Lua -> JSON   a table whose keys are 1..n (no holes) is an array, one
 *                 whose keys are all strings an object (members written in
 *                 byte order of their names, so equal tables give equal
 *                 text); an empty table is an object unless it is marked
 *                 with sqorm.json_array(t). Strings must be UTF-8,
 *                 integers stay integers, floats are written so they read
 *                 back as the same float. sqorm.json_null is JSON null.
 *                 A cycle, keys mixing both kinds, a hole, a key that is
 *                 neither, a function / userdata / other metatable, a
 *                 non-finite number, or nesting past 100 levels is kind
 *                 usage naming the path ($.stats.items[3]).
 *   JSON -> Lua   objects are tables, arrays are tables marked with the
 *                 sqorm.json_array metatable (so an empty array stays an
 *                 array when written back), JSON null is sqorm.json_null
 *                 (an object member that is null stays present), numbers
 *                 as the parser gives them (exact, or refused).
 */
#include "lmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JNULL_MT "sqorm.JsonNull"
static char JARR_KEY, JOBJ_KEY, JTMP_KEY; /* registry keys (by address) */

static void push_json_null(lua_State *L) { lua_getfield(L, LUA_REGISTRYINDEX, "sqorm.json_null"); }

static int is_json_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TUSERDATA && luaL_testudata(L, idx, JNULL_MT) != NULL;
}

int lsq_is_json_null(lua_State *L, int idx) { return is_json_null(L, idx); }

/* ---------------------------------------------------------------- */
/* Lua -> JSON                                                        */
/* ---------------------------------------------------------------- */

typedef struct jenc {
  lua_State *L;
  sq_json_w *w;
  sq_err *err;
  int seen;        /* absolute index: tables on the current path */
  int depth;
  char path[200];
  size_t plen;
} jenc;

static int enc_fail(jenc *e, const char *fmt, const char *a) {
  char what[300];
  snprintf(what, sizeof what, fmt, a ? a : "");
  return sq_err_set(e->err, SQ_EUSAGE, "JSON value at %s%s: %s", e->path,
                    e->plen >= sizeof e->path - 1 ? "..." : "", what);
}

/* Appends to the path (truncated when long); returns the old length. */
static size_t path_push_key(jenc *e, const char *k, size_t n) {
  size_t old = e->plen;
  int ident = n > 0 && n < 40;
  for (size_t i = 0; i < n && ident; i++) {
    char c = k[i];
    ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
  }
  char part[64];
  if (ident) snprintf(part, sizeof part, ".%.*s", (int)n, k);
  else snprintf(part, sizeof part, "[\"%.*s%s\"]", (int)(n > 24 ? 24 : n), k, n > 24 ? "..." : "");
  for (char *p = part; *p; p++)
    if ((unsigned char)*p < 0x20) *p = '?';
  size_t pn = strlen(part);
  if (e->plen + pn < sizeof e->path - 1) {
    memcpy(e->path + e->plen, part, pn + 1);
    e->plen += pn;
  } else {
    e->plen = sizeof e->path - 1;
  }
  return old;
}

static size_t path_push_index(jenc *e, lua_Integer i) {
  size_t old = e->plen;
  char part[32];
  snprintf(part, sizeof part, "[%lld]", (long long)i);
  size_t pn = strlen(part);
  if (e->plen + pn < sizeof e->path - 1) {
    memcpy(e->path + e->plen, part, pn + 1);
    e->plen += pn;
  } else {
    e->plen = sizeof e->path - 1;
  }
  return old;
}

static void path_pop(jenc *e, size_t old) {
  if (old < sizeof e->path) {
    e->plen = old;
    e->path[old] = '\0';
  }
}

/* A writer failure (bad UTF-8, ...) gets the path in front. */
static int wrote(jenc *e, int rc) {
  if (!rc) return SQ_OK;
  if (rc == SQ_ENOMEM) return rc;
  char msg[sizeof e->err->msg];
  snprintf(msg, sizeof msg, "%s", e->err->msg);
  const char *m = strncmp(msg, "JSON: ", 6) ? msg : msg + 6;
  char shortm[200];
  snprintf(shortm, sizeof shortm, "%.199s", m);
  return enc_fail(e, "%s", shortm);
}

typedef struct jkey {
  const char *s;
  size_t n;
} jkey;

static int jkey_cmp(const void *a, const void *b) {
  const jkey *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int enc_value(jenc *e, int idx);

static int enc_table(jenc *e, int idx) {
  lua_State *L = e->L;
  int want = 0; /* 1 array, 2 object (a marker), 0 decide */
  if (lua_getmetatable(L, idx)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &JARR_KEY);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &JOBJ_KEY);
    want = lua_rawequal(L, -3, -2) ? 1 : lua_rawequal(L, -3, -1) ? 2 : -1;
    lua_pop(L, 3);
    if (want < 0)
      return enc_fail(e, "a table with a metatable has no JSON form (plain tables, sqorm.json_array, sqorm.json_object)", NULL);
  }
  if (e->depth >= SQ_JSON_MAX_DEPTH) return enc_fail(e, "nested deeper than %s levels", "100");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->seen) != LUA_TNIL) {
    lua_pop(L, 1);
    return enc_fail(e, "a cycle: the table contains itself%s", NULL);
  }
  lua_pop(L, 1);
  /* count the keys and their kinds */
  lua_Integer count = 0, nint = 0, nstr = 0, maxi = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    int kt = lua_type(L, -1);
    if (kt == LUA_TSTRING) nstr++;
    else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      nint++;
      if (lua_tointeger(L, -1) > maxi) maxi = lua_tointeger(L, -1);
    } else {
      const char *tn = luaL_typename(L, -1);
      lua_pop(L, 1);
      return enc_fail(e, "a key of type %s (JSON keys are strings; arrays are lists 1..n)", tn);
    }
  }
  int array = want == 1 || (want == 0 && count > 0 && nstr == 0);
  if (array && nstr) return enc_fail(e, "sqorm.json_array holds named keys%s", NULL);
  if (!array && nint) {
    if (want == 2) return enc_fail(e, "sqorm.json_object holds list items%s", NULL);
    return enc_fail(e, "the table mixes list items and named keys%s", NULL);
  }
  if (array && maxi != count) return enc_fail(e, "an array with holes (keys are not exactly 1..n)%s", NULL);
  if (!lua_checkstack(L, 6)) return sq_err_set(e->err, SQ_ENOMEM, "out of memory");
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->seen);
  e->depth++;
  int rc = wrote(e, sq_json_w_begin(e->w, !array, e->err));
  if (array) {
    for (lua_Integer i = 1; !rc && i <= count; i++) {
      size_t old = path_push_index(e, i);
      lua_rawgeti(L, idx, i);
      rc = enc_value(e, lua_gettop(L));
      lua_pop(L, 1);
      path_pop(e, old);
    }
  } else if (!rc && count > 0) {
    /* the names, sorted, in a userdata (collected whatever happens) */
    jkey *keys = lua_newuserdatauv(L, sizeof *keys * (size_t)count, 0);
    int kidx = lua_gettop(L);
    lua_Integer k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) && k < count) {
      lua_pop(L, 1);
      keys[k].s = lua_tolstring(L, -1, &keys[k].n); /* anchored: a key of the table */
      k++;
    }
    lua_settop(L, kidx);
    qsort(keys, (size_t)k, sizeof *keys, jkey_cmp);
    for (lua_Integer i = 0; !rc && i < k; i++) {
      size_t old = path_push_key(e, keys[i].s, keys[i].n);
      rc = wrote(e, sq_json_w_key(e->w, keys[i].s, keys[i].n, e->err));
      if (!rc) {
        lua_pushlstring(L, keys[i].s, keys[i].n);
        lua_rawget(L, idx);
        rc = enc_value(e, lua_gettop(L));
        lua_pop(L, 1);
      }
      path_pop(e, old);
    }
    lua_pop(L, 1);
  }
  if (!rc) rc = wrote(e, sq_json_w_end(e->w, e->err));
  e->depth--;
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, e->seen);
  return rc;
}

static int enc_value(jenc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN: return wrote(e, sq_json_w_bool(e->w, lua_toboolean(L, idx), e->err));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return wrote(e, sq_json_w_int(e->w, (int64_t)lua_tointeger(L, idx), e->err));
    return wrote(e, sq_json_w_double(e->w, (double)lua_tonumber(L, idx), e->err));
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return wrote(e, sq_json_w_string(e->w, s, n, e->err));
  }
  case LUA_TTABLE: return enc_table(e, idx);
  case LUA_TUSERDATA:
    if (is_json_null(L, idx)) return wrote(e, sq_json_w_null(e->w, e->err));
    if (lsq_is_null(L, idx)) return enc_fail(e, "sqorm.null is SQL NULL; inside JSON write sqorm.json_null%s", NULL);
    /* fall through */
  default: return enc_fail(e, "a %s has no JSON form", luaL_typename(L, idx));
  }
}

int lsq_json_encode(lua_State *L, int idx, sq_json_w *w, sq_err *err) {
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 8)) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  lua_newtable(L);
  jenc e;
  memset(&e, 0, sizeof e);
  e.L = L;
  e.w = w;
  e.err = err;
  e.seen = lua_gettop(L);
  strcpy(e.path, "$");
  e.plen = 1;
  int rc = enc_value(&e, idx);
  if (!rc) rc = sq_json_w_finish(w, err);
  lua_pop(L, 1);
  return rc;
}

/* The JSON text of the value at idx as an sq_value: copied into a, or
 * (a NULL) into a string the registry keeps until the next such call. */
int lsq_json_value(lua_State *L, int idx, const sq_col *c, sq_value *v, sq_arena *a, sq_err *err) {
  sq_json_w w;
  sq_json_w_init(&w, 0);
  int rc = lsq_json_encode(L, idx, &w, err);
  if (rc) {
    sq_json_w_free(&w);
    if (rc == SQ_EUSAGE && c) {
      char msg[sizeof err->msg];
      snprintf(msg, sizeof msg, "%s", err->msg);
      sq_err_set(err, SQ_EUSAGE, "column '%s': %s", c->name, msg);
    }
    return rc;
  }
  if (a) {
    char *p = sq_arena_alloc(a, w.n + 1);
    if (!p) {
      sq_json_w_free(&w);
      return sq_err_set(err, SQ_ENOMEM, "out of memory");
    }
    memcpy(p, w.p, w.n + 1);
    *v = sq_text(p, w.n);
  } else {
    lua_pushlstring(L, w.p, w.n);
    *v = sq_text(lua_tostring(L, -1), w.n);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &JTMP_KEY);
  }
  sq_json_w_free(&w);
  return SQ_OK;
}

/* ---------------------------------------------------------------- */
/* JSON -> Lua                                                        */
/* ---------------------------------------------------------------- */

typedef struct jdec {
  lua_State *L;
  int depth;
  int arrmt;  /* absolute index of the array metatable */
  int jnull;  /* absolute index of sqorm.json_null */
  char obj[SQ_JSON_MAX_DEPTH + 2];
  lua_Integer n[SQ_JSON_MAX_DEPTH + 2];
} jdec;

/* The value on top goes into its parent (or stays: the result). */
static void attach(jdec *d) {
  lua_State *L = d->L;
  if (d->depth == 0) return;
  if (d->obj[d->depth]) lua_rawset(L, -3); /* key at -2 */
  else lua_rawseti(L, -2, ++d->n[d->depth]);
}

static int dec_cb(void *ud, const sq_json_ev *ev, sq_err *err) {
  jdec *d = ud;
  lua_State *L = d->L;
  (void)err;
  luaL_checkstack(L, 4, "JSON nesting");
  switch (ev->kind) {
  case SQ_JSON_NULL: lua_pushvalue(L, d->jnull); break;
  case SQ_JSON_TRUE: lua_pushboolean(L, 1); break;
  case SQ_JSON_FALSE: lua_pushboolean(L, 0); break;
  case SQ_JSON_INT: lua_pushinteger(L, (lua_Integer)ev->i); break;
  case SQ_JSON_DOUBLE: lua_pushnumber(L, (lua_Number)ev->f); break;
  case SQ_JSON_STRING: lua_pushlstring(L, ev->s, ev->n); break;
  case SQ_JSON_KEY: lua_pushlstring(L, ev->s, ev->n); return 0;
  case SQ_JSON_ARRAY_BEGIN:
  case SQ_JSON_OBJECT_BEGIN:
    lua_createtable(L, 0, 0);
    if (ev->kind == SQ_JSON_ARRAY_BEGIN) {
      lua_pushvalue(L, d->arrmt);
      lua_setmetatable(L, -2);
    }
    d->depth++;
    d->obj[d->depth] = ev->kind == SQ_JSON_OBJECT_BEGIN;
    d->n[d->depth] = 0;
    return 0;
  default: /* the end of an array / object: the table is on top */
    d->depth--;
    break;
  }
  attach(d);
  return 0;
}

void lsq_json_push(lua_State *L, const char *s, size_t n, const char *colname) {
  luaL_checkstack(L, 8, "JSON");
  char *scratch = lua_newuserdatauv(L, n ? n : 1, 0);
  int base = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &JARR_KEY);
  push_json_null(L);
  jdec *d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  d->L = L;
  d->arrmt = base + 1;
  d->jnull = base + 2;
  sq_err err;
  sq_err_clear(&err);
  if (sq_json_parse(s, n, 0, scratch, dec_cb, d, &err)) {
    if (colname) {
      char msg[sizeof err.msg];
      snprintf(msg, sizeof msg, "%s", err.msg);
      sq_err_set(&err, err.kind, "column '%s': %s", colname, msg);
    }
    lsq_raise(L, &err);
  }
  /* stack: scratch, arrmt, jnull, d, value */
  lua_replace(L, base);
  lua_settop(L, base);
}

/* ---------------------------------------------------------------- */
/* sqorm.json_null, json_array, json_object, json_encode, json_decode */
/* ---------------------------------------------------------------- */

static int mark(lua_State *L, const void *key, const char *fn) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else if (lua_type(L, 1) != LUA_TTABLE) {
    return lsq_usage(L, "sqorm.%s expects a table (or nothing), got %s", fn, luaL_typename(L, 1));
  }
  lua_settop(L, 1);
  if (lua_getmetatable(L, 1)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &JARR_KEY);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &JOBJ_KEY);
    int ours = lua_rawequal(L, -3, -2) || lua_rawequal(L, -3, -1);
    lua_pop(L, 3);
    if (!ours) return lsq_usage(L, "sqorm.%s: the table already has a metatable", fn);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  lua_setmetatable(L, 1);
  return 1;
}

static int l_json_array(lua_State *L) { return mark(L, &JARR_KEY, "json_array"); }
static int l_json_object(lua_State *L) { return mark(L, &JOBJ_KEY, "json_object"); }

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  sq_json_w w;
  sq_json_w_init(&w, 0);
  sq_err err;
  sq_err_clear(&err);
  if (lsq_json_encode(L, 1, &w, &err)) {
    sq_json_w_free(&w);
    return lsq_raise(L, &err);
  }
  lua_pushlstring(L, w.p, w.n);
  sq_json_w_free(&w);
  return 1;
}

static int l_json_decode(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING) return lsq_usage(L, "sqorm.json_decode expects a string, got %s", luaL_typename(L, 1));
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  lsq_json_push(L, s, n, NULL);
  return 1;
}

static int jnull_tostring(lua_State *L) {
  lua_pushliteral(L, "sqorm.json_null");
  return 1;
}

void lsq_json_open(lua_State *L, int modidx) {
  modidx = lua_absindex(L, modidx);
  if (luaL_newmetatable(L, JNULL_MT)) {
    lua_pushcfunction(L, jnull_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "sqorm.json_null");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "sqorm.json_null");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 1, 0);
    luaL_setmetatable(L, JNULL_MT);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "sqorm.json_null");
  }
  lua_setfield(L, modidx, "json_null");
  /* the markers: metatables that say what an (empty) table is */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &JARR_KEY);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "sqorm.json_array");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &JARR_KEY);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "sqorm.json_object");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &JOBJ_KEY);
  } else {
    lua_pop(L, 1);
  }
  static const luaL_Reg fns[] = {
    {"json_array", l_json_array}, {"json_object", l_json_object},
    {"json_encode", l_json_encode}, {"json_decode", l_json_decode}, {NULL, NULL},
  };
  lua_pushvalue(L, modidx);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
