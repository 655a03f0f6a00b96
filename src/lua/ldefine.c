/*
 * ldefine.c - db:define and the sqorm.Model object (sqorm.types: ltypes.c): the
 * model userdata (its C view, user values, class methods and
 * properties), the per-model statement-shape cache, db:model /
 * db:models, the per-state scratch area, and the registration of every
 * model method (each area file exports its own list).
 *
 * A Model userdata owns its sq_model (freed by __gc) and keeps the Lua
 * things it needs in its user values (lmodel.h: MUV_*): the db it belongs
 * to (so the db outlives its models), the instance metatable, the name ->
 * slot map, validators and default functions, class and instance
 * methods.
 */
#include "lassoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char lsq_kind_model[] = LSQ_MODEL_MT;

static const char SCRATCH_KEY = 0; /* registry: the cached lsq_scratch */
static const char MODELS_KEY = 0;  /* registry: weak { [lsq_model*] = Model } */

/* ---------------------------------------------------------------- */
/* scratch                                                            */
/* ---------------------------------------------------------------- */

static void scratch_clear(lsq_scratch *s) {
  sq_sql_free(&s->sql);
  sq_sql_list_free(&s->list);
}

static int scratch_gc(lua_State *L) {
  lsq_scratch *s = lua_touserdata(L, 1);
  scratch_clear(s);
  if (s->arena) sq_arena_free(s->arena);
  s->arena = NULL;
  return 0;
}

lsq_scratch *lsq_scratch_get(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SCRATCH_KEY) == LUA_TUSERDATA) {
    lsq_scratch *s = lua_touserdata(L, -1);
    if (!s->busy) {
      s->busy = 1;
      return s;
    }
  }
  lua_pop(L, 1);
  /* In use (a logger or validator re-entered sqorm, or an error left it
   * behind): a fresh one becomes the cached one. */
  lsq_scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, LSQ_SCRATCH_MT);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SCRATCH_KEY);
  s->busy = 1;
  return s;
}

sq_arena *lsq_scratch_arena(lsq_scratch *s, sq_err *err) {
  if (!s->arena && !(s->arena = sq_arena_new())) sq_err_set(err, SQ_ENOMEM, "out of memory");
  return s->arena;
}

void *lsq_alloc(lsq_scratch *s, size_t n, sq_err *err) {
  sq_arena *a = lsq_scratch_arena(s, err);
  void *p = a ? sq_arena_alloc(a, n ? n : 1) : NULL;
  if (a && !p) sq_err_set(err, SQ_ENOMEM, "out of memory");
  return p;
}

void lsq_scratch_done(lsq_scratch *s) {
  scratch_clear(s);
  if (s->arena) sq_arena_reset(s->arena);
  s->busy = 0;
}

/* ---------------------------------------------------------------- */
/* the Model object                                                   */
/* ---------------------------------------------------------------- */

lsq_model *lsq_check_model(lua_State *L, int idx) {
  lsq_model *mod = lsq_toudata(L, idx, lsq_kind_model, sizeof *mod);
  if (!mod || !mod->m) lsq_usage(L, "expected a model as self (use Model:method(...), not Model.method(...))");
  return mod;
}

int lsq_model_db(lua_State *L, int midx) {
  lua_getiuservalue(L, midx, MUV_DB);
  lsq_check_db(L, -1);
  return lua_gettop(L);
}

void lsq_push_model(lua_State *L, const lsq_model *mod) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &MODELS_KEY);
  lua_rawgetp(L, -1, mod);
  lua_remove(L, -2);
}

static int model_gc(lua_State *L) {
  lsq_model *mod = lua_touserdata(L, 1);
  if (mod->m && !mod->borrowed) sq_model_free(mod->m);
  mod->m = NULL;
  free(mod->cflags);
  mod->cflags = NULL;
  free((void *)mod->cols);
  mod->cols = NULL;
  free(mod->pk_sql);
  mod->pk_sql = NULL;
  for (int i = 0; i < LSQ_NSHAPES; i++) {
    free(mod->shapes[i].sql);
    mod->shapes[i].sql = NULL;
    mod->shapes[i].kind = 0;
  }
  return 0;
}

/* ---------------------------------------------------------------- */
/* statement shapes                                                   */
/* ---------------------------------------------------------------- */

/* The column set as a mask; 0 with *ok = 0 when it can't be one (more
 * than 64 columns, or not ascending). */
static uint64_t shape_mask(const lsq_model *mod, const int *cols, int n, int *ok) {
  uint64_t m = 0;
  *ok = mod->ncols <= 64;
  for (int i = 0; *ok && i < n; i++) {
    if (i > 0 && cols[i] <= cols[i - 1]) *ok = 0;
    else m |= (uint64_t)1 << cols[i];
  }
  return *ok ? m : 0;
}

const lsq_shape *lsq_shape_find(const lsq_model *mod, int kind, const int *cols, int n, int nrows) {
  int ok;
  uint64_t m = shape_mask(mod, cols, n, &ok);
  if (!ok) return NULL;
  for (int i = 0; i < LSQ_NSHAPES; i++) {
    const lsq_shape *sh = &mod->shapes[i];
    if (sh->kind == kind && sh->cols == m && sh->nrows == nrows) return sh;
  }
  return NULL;
}

int lsq_same_value(const sq_value *a, const sq_value *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
  case SQ_VNULL: return 1;
  case SQ_VINT: return a->u.i == b->u.i;
  case SQ_VFLOAT: return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0;
  case SQ_VBOOL: return a->u.b == b->u.b;
  case SQ_VTEXT: case SQ_VBLOB:
    return a->u.s.n == b->u.s.n && (a->u.s.p == b->u.s.p || !memcmp(a->u.s.p, b->u.s.p, a->u.s.n));
  default: return 0;
  }
}

void lsq_shape_store(lsq_model *mod, int kind, const int *cols, int n, int nrows, const sq_sql *sql,
                     const sq_value *params, int np) {
  int ok;
  uint64_t m = shape_mask(mod, cols, n, &ok);
  if (!ok || sql->nparams != np) return;
  for (int i = 0; i < np; i++)
    if (!lsq_same_value(&sql->params[i], &params[i])) return;
  char *copy = malloc(sql->len + 1);
  if (!copy) return; /* not cached: rendered again next time */
  memcpy(copy, sql->sql, sql->len + 1);
  /* The slot: a free one, else the oldest of the same kind (so bulk
   * batches of many sizes don't push out the single-row statements), else
   * the oldest. */
  lsq_shape *sh = NULL;
  for (int i = 0; i < LSQ_NSHAPES && !sh; i++)
    if (!mod->shapes[i].kind) sh = &mod->shapes[i];
  for (int pass = 0; pass < 2 && !sh; pass++)
    for (int i = 0; i < LSQ_NSHAPES; i++) {
      lsq_shape *c = &mod->shapes[i];
      if ((pass == 1 || c->kind == kind) && (!sh || c->stamp < sh->stamp)) sh = c;
    }
  sh->stamp = ++mod->shape_clock;
  free(sh->sql);
  sh->kind = kind;
  sh->nrows = nrows;
  sh->cols = m;
  sh->sql = copy;
  sh->len = sql->len;
  sh->nparams = np;
  sh->returns_rows = sql->returns_rows;
}

static int model_tostring(lua_State *L) {
  lsq_model *mod = lsq_check_self(L, 1, LSQ_MODEL_MT, "sqorm.Model");
  if (!mod->m) lua_pushliteral(L, "sqorm.Model (undefined)");
  else lua_pushfstring(L, "sqorm.Model %s (table %s)", sq_model_name(mod->m), sq_model_table(mod->m));
  return 1;
}

/* Model.key: the user's class methods, then the built-in ones (upvalue 1),
 * then the properties name, table_name, db, methods, columns. */
static int model_index(lua_State *L) {
  lsq_model *mod = lsq_toudata(L, 1, lsq_kind_model, sizeof *mod);
  if (!mod) return lsq_usage(L, "expected a sqorm.Model, got %s", luaL_typename(L, 1));
  lua_settop(L, 2);
  if (mod->has_class) {
    lua_getiuservalue(L, 1, MUV_CLASS);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 2);
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  if (lua_type(L, 2) != LUA_TSTRING || !mod->m) return 0;
  const char *k = lua_tostring(L, 2);
  if (!strcmp(k, "name")) lua_pushstring(L, sq_model_name(mod->m));
  else if (!strcmp(k, "table_name")) lua_pushstring(L, sq_model_table(mod->m));
  else if (!strcmp(k, "db")) lua_getiuservalue(L, 1, MUV_DB);
  else if (!strcmp(k, "methods")) lua_getiuservalue(L, 1, MUV_METHODS);
  else if (!strcmp(k, "columns")) {
    lua_createtable(L, mod->ncols, 0);
    for (int i = 0; i < mod->ncols; i++) {
      lua_pushstring(L, sq_model_col(mod->m, i)->name);
      lua_rawseti(L, -2, i + 1);
    }
  } else if (!strcmp(k, "primary_key")) {
    lua_createtable(L, mod->npk, 0);
    for (int i = 0; i < mod->npk; i++) {
      lua_pushstring(L, sq_model_col(mod->m, mod->pk[i])->name);
      lua_rawseti(L, -2, i + 1);
    }
  } else return 0;
  return 1;
}

/* Model.key = function: a class method of this model. */
static int model_newindex(lua_State *L) {
  lsq_model *mod = lsq_check_self(L, 1, LSQ_MODEL_MT, "sqorm.Model");
  if (lua_type(L, 2) != LUA_TSTRING || (!lua_isfunction(L, 3) && !lua_isnil(L, 3)))
    return lsq_usage(L, "only functions can be added to a model (class methods); instance methods go in Model.methods");
  mod->has_class = 1;
  lua_getiuservalue(L, 1, MUV_CLASS);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}


/* ---------------------------------------------------------------- */
/* db:define                                                          */
/* ---------------------------------------------------------------- */

static int optbool(lua_State *L, int idx, const char *col, const char *opt) {
  if (lua_type(L, idx) != LUA_TBOOLEAN) lsq_usage(L, "column '%s': %s must be a boolean, got %s", col, opt, luaL_typename(L, idx));
  return lua_toboolean(L, idx);
}

/*
 * validate = { min = 0, max = 10, len = {1, 32} | 32, not_empty = true,
 *              pattern = "^%a+$", is_even = function(v) ... end }
 * The core checks go into d; a pattern and functions into the Lua table
 * at luav (built here: { pattern = p, {name, fn}, ... }).
 */
static void parse_validate(lua_State *L, int vidx, sq_coldef *d, int *lua_checks, int *not_empty) {
  lua_newtable(L);
  int luav = lua_gettop(L);
  int nfn = 0;
  *lua_checks = 0;
  *not_empty = 0;
  if (lua_isfunction(L, vidx)) {
    lua_createtable(L, 2, 0);
    lua_pushliteral(L, "validate");
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, vidx);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, luav, ++nfn);
    *lua_checks = 1;
    return;
  }
  if (lua_type(L, vidx) != LUA_TTABLE) lsq_usage(L, "column '%s': validate must be a table", d->name);
  lua_pushnil(L);
  while (lua_next(L, vidx)) {
    if (lua_type(L, -2) != LUA_TSTRING) lsq_usage(L, "column '%s': validate keys must be names", d->name);
    const char *k = lua_tostring(L, -2);
    if (lua_isfunction(L, -1)) {
      lua_createtable(L, 2, 0);
      lua_pushvalue(L, -3);
      lua_rawseti(L, -2, 1);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, luav, ++nfn);
      *lua_checks = 1;
    } else if (!strcmp(k, "min") || !strcmp(k, "max")) {
      if (lua_type(L, -1) != LUA_TNUMBER) lsq_usage(L, "column '%s': validate.%s must be a number", d->name, k);
      if (k[1] == 'i') d->has_min = 1, d->min = lua_tonumber(L, -1);
      else d->has_max = 1, d->max = lua_tonumber(L, -1);
    } else if (!strcmp(k, "len")) {
      d->has_len = 1;
      if (lua_isinteger(L, -1)) {
        d->len_min = 0;
        d->len_max = lua_tointeger(L, -1);
      } else if (lua_type(L, -1) == LUA_TTABLE && lua_rawlen(L, -1) == 2) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        if (!lua_isinteger(L, -1) || !lua_isinteger(L, -2)) lsq_usage(L, "column '%s': validate.len must be {min, max}", d->name);
        d->len_min = lua_tointeger(L, -2);
        d->len_max = lua_tointeger(L, -1);
        lua_pop(L, 2);
      } else {
        lsq_usage(L, "column '%s': validate.len must be a maximum or {min, max}", d->name);
      }
    } else if (!strcmp(k, "not_empty")) {
      *not_empty = optbool(L, -1, d->name, "validate.not_empty");
    } else if (!strcmp(k, "pattern")) {
      if (lua_type(L, -1) != LUA_TSTRING) lsq_usage(L, "column '%s': validate.pattern must be a Lua pattern string", d->name);
      lua_pushvalue(L, -1);
      lua_setfield(L, luav, "pattern");
      *lua_checks = 1;
    } else {
      lsq_usage(L, "column '%s': unknown validate rule '%s' (min, max, len, not_empty, pattern or a function)", d->name, k);
    }
    lua_pop(L, 1);
  }
  /* not_empty: at least one character, whatever order the keys of the
   * table come in (with len, its maximum stays) */
  if (*not_empty) {
    if (!d->has_len) {
      d->has_len = 1;
      d->len_max = INT32_MAX;
    }
    if (d->len_min < 1) d->len_min = 1;
  }
}

/*
 * Adds one column to mod->m from the spec at sidx (a type value, or a
 * table: list form { "name", T.X, opt = ... } or map form { type = T.X,
 * opt = ... }); name is given for the map form. Lua validators and
 * default functions are recorded by name in the tables at vtab / dtab.
 */
static void add_column(lua_State *L, lsq_model *mod, int sidx, const char *name, int list, int vtab, int dtab,
                       int netab) {
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.allow_null = 1;
  sq_err err;
  sq_err_clear(&err);
  int top = lua_gettop(L);
  if (lua_type(L, sidx) == LUA_TUSERDATA) {
    d.name = name;
    lsq_coldef_type(L, sidx, &d);
  } else if (lua_type(L, sidx) == LUA_TTABLE) {
    if (list) {
      if (lua_rawgeti(L, sidx, 1) != LUA_TSTRING) {
        lua_pop(L, 1);
        if (lua_getfield(L, sidx, "name") != LUA_TSTRING)
          lsq_usage(L, "a column spec must start with its name: { \"name\", sqorm.types.X, ... }");
      }
      name = lua_tostring(L, -1);
      if (strlen(name) != lua_rawlen(L, -1)) lsq_usage(L, "a column name contains a NUL byte");
      d.name = name;
      if (lua_rawgeti(L, sidx, 2) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, sidx, "type");
      }
    } else {
      d.name = name;
      if (lua_getfield(L, sidx, "type") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_rawgeti(L, sidx, 1);
      }
    }
    lsq_coldef_type(L, -1, &d);
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, sidx)) {
      if (lua_isinteger(L, -2)) {
        lua_Integer k = lua_tointeger(L, -2);
        if (!((list && (k == 1 || k == 2)) || (!list && k == 1)))
          lsq_usage(L, "column '%s': unexpected list item #%d in its spec", name, (int)k);
        lua_pop(L, 1);
        continue;
      }
      if (lua_type(L, -2) != LUA_TSTRING) lsq_usage(L, "column '%s': option keys must be names", name);
      const char *k = lua_tostring(L, -2);
      int v = lua_gettop(L);
      if (!strcmp(k, "type") || (list && !strcmp(k, "name"))) {
        /* read above */
      } else if (!strcmp(k, "allow_null")) {
        d.allow_null = optbool(L, v, name, k);
      } else if (!strcmp(k, "primary_key")) {
        d.primary_key = optbool(L, v, name, k);
      } else if (!strcmp(k, "auto_increment")) {
        d.auto_increment = optbool(L, v, name, k);
      } else if (!strcmp(k, "unique")) {
        if (lua_type(L, v) == LUA_TBOOLEAN) d.unique = lua_toboolean(L, v) ? "" : NULL;
        else if (lua_type(L, v) == LUA_TSTRING) d.unique = lua_tostring(L, v);
        else lsq_usage(L, "column '%s': unique must be true or a key name", name);
      } else if (!strcmp(k, "comment")) {
        if (lua_type(L, v) != LUA_TSTRING) lsq_usage(L, "column '%s': comment must be a string", name);
        d.comment = lua_tostring(L, v);
      } else if (!strcmp(k, "default")) {
        int fk = lsq_fn_kind(L, v);
        if (lua_isfunction(L, v)) {
          d.default_kind = SQ_DEFAULT_CALLBACK;
          lua_pushvalue(L, v);
          lua_setfield(L, dtab, name);
        } else if (fk == LSQ_FN_NOW) {
          d.default_kind = SQ_DEFAULT_NOW;
        } else if (fk == LSQ_FN_UUIDV4) {
          d.default_kind = SQ_DEFAULT_UUIDV4;
        } else if (lsq_is_null(L, v)) {
          d.default_kind = SQ_DEFAULT_NONE;
        } else {
          d.default_kind = SQ_DEFAULT_VALUE;
          if (lsq_to_value(L, v, &d.default_value, "default", &err))
            lsq_usage(L, "column '%.64s': %.900s", name, err.msg);
        }
      } else if (!strcmp(k, "validate")) {
        int lc, ne;
        parse_validate(L, v, &d, &lc, &ne);
        if (lc) lua_setfield(L, vtab, name);
        else lua_pop(L, 1);
        if (ne) {
          lua_pushboolean(L, 1);
          lua_setfield(L, netab, name);
        }
      } else {
        lsq_usage(L, "column '%s': unknown option '%s'", name, k);
      }
      lua_settop(L, v - 1);
    }
  } else {
    lsq_usage(L, "column '%s': expected a type or a table, got %s", name ? name : "?", luaL_typename(L, sidx));
  }
  if (sq_model_add_column(mod->m, &d, &err)) lsq_raise(L, &err);
  lua_settop(L, top);
}

typedef struct colkey {
  const char *name;
  int pk;
} colkey;

static int colkey_cmp(const void *a, const void *b) {
  const colkey *x = a, *y = b;
  if (x->pk != y->pk) return y->pk - x->pk;
  return strcmp(x->name, y->name);
}

/* Reads a string model option (or NULL). */
static const char *opt_string(lua_State *L, int oidx, const char *k) {
  if (!oidx) return NULL;
  int t = lua_getfield(L, oidx, k);
  const char *s = NULL;
  if (t == LUA_TSTRING) s = lua_tostring(L, -1); /* anchored by the options table */
  else if (t != LUA_TNIL) lsq_usage(L, "define: option '%s' must be a string", k);
  if (s && strlen(s) != lua_rawlen(L, -1)) lsq_usage(L, "define: option '%s' contains a NUL byte", k);
  lua_pop(L, 1);
  return s;
}

static int opt_bool(lua_State *L, int oidx, const char *k, int dflt) {
  if (!oidx) return dflt;
  int t = lua_getfield(L, oidx, k);
  int v = dflt;
  if (t == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL) lsq_usage(L, "define: option '%s' must be a boolean", k);
  lua_pop(L, 1);
  return v;
}

/* indexes = { { fields = {"a", "b"}, unique = true, name = "..." }, ... } */
static void add_indexes(lua_State *L, lsq_model *mod, int iidx) {
  if (lua_type(L, iidx) != LUA_TTABLE) lsq_usage(L, "define: indexes must be a list of { fields = {...} }");
  int n = (int)lua_rawlen(L, iidx);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, iidx, i);
    int x = lua_gettop(L);
    if (lua_type(L, x) != LUA_TTABLE) lsq_usage(L, "define: index #%d must be a table", i);
    lua_pushnil(L);
    while (lua_next(L, x)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "fields") && strcmp(k, "columns") && strcmp(k, "unique") && strcmp(k, "name"))
        lsq_usage(L, "define: index #%d: unknown option '%.64s' (fields, unique, name)", i, k);
      lua_pop(L, 1);
    }
    if (lua_getfield(L, x, "fields") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_getfield(L, x, "columns");
    }
    int f = lua_gettop(L);
    int nf = lua_type(L, f) == LUA_TTABLE ? (int)lua_rawlen(L, f) : 0;
    if (nf < 1 || nf > 64) lsq_usage(L, "define: index #%d needs fields = { column, ... }", i);
    const char *cols[64];
    for (int k = 1; k <= nf; k++) {
      lua_rawgeti(L, f, k);
      if (lua_type(L, -1) != LUA_TSTRING) lsq_usage(L, "define: index #%d: fields must be column names", i);
      cols[k - 1] = lua_tostring(L, -1); /* anchored by the fields table */
      lua_pop(L, 1);
    }
    int unique = 0;
    if (lua_getfield(L, x, "unique") != LUA_TNIL) unique = optbool(L, -1, "index", "unique");
    lua_pop(L, 1);
    const char *name = NULL;
    if (lua_getfield(L, x, "name") == LUA_TSTRING) name = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1)) lsq_usage(L, "define: index #%d: name must be a string", i);
    sq_err err;
    sq_err_clear(&err);
    if (sq_model_add_index(mod->m, name, cols, nf, unique, &err)) lsq_raise(L, &err);
    lua_settop(L, x - 1);
  }
}

/* The C view of the finished model of the Model at midx, its name ->
 * slot map, validators, defaults and instance metatable (vtab, dtab,
 * netab: validators, default functions and not_empty flags by name). */
static void model_view(lua_State *L, int midx, lsq_model *mod, int vtab, int dtab, int netab) {
  sq_err err;
  sq_err_clear(&err);
  /* the C view */
  mod->ncols = sq_model_ncols(mod->m);
  mod->npk = sq_model_pk(mod->m, &mod->pk);
  mod->auto_col = mod->uuid_pk = -1;
  for (int i = 0; i < mod->ncols; i++) {
    const sq_col *c = sq_model_col(mod->m, i);
    if (c->auto_increment) mod->auto_col = i;
    if (c->primary_key && c->type == SQ_T_UUID && c->default_kind == SQ_DEFAULT_NONE) mod->uuid_pk = i;
  }
  mod->created_col = sq_model_role_col(mod->m, SQ_ROLE_CREATED_AT);
  mod->updated_col = sq_model_role_col(mod->m, SQ_ROLE_UPDATED_AT);
  mod->deleted_col = sq_model_role_col(mod->m, SQ_ROLE_DELETED_AT);
  mod->version_col = sq_model_role_col(mod->m, SQ_ROLE_VERSION);
  mod->cflags = calloc((size_t)mod->ncols, 1);
  mod->cols = calloc((size_t)mod->ncols, sizeof *mod->cols);
  for (int i = 0; mod->cols && i < mod->ncols; i++) mod->cols[i] = sq_model_col(mod->m, i);
  if (!mod->cflags || !mod->cols) {
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    lsq_raise(L, &err);
    return;
  }
  /* what sq_model_validate can still object to (see lsq_validate) */
  for (int i = 0; i < mod->ncols; i++) {
    const sq_col *c = mod->cols[i];
    if (c->has_len || c->has_min || c->has_max) mod->cflags[i] |= CF_RULES;
    if (c->type == SQ_T_STRING || c->type == SQ_T_CHAR) mod->cflags[i] |= CF_MAXLEN;
    if (!c->allow_null && c->default_kind == SQ_DEFAULT_NONE && !c->auto_increment && c->role != SQ_ROLE_CREATED_AT &&
        c->role != SQ_ROLE_UPDATED_AT && !(c->primary_key && c->type == SQ_T_UUID)) {
      mod->cflags[i] |= CF_REQUIRED;
      mod->nrequired++;
    }
  }

  /* name -> slot, validators and default functions by slot */
  lua_createtable(L, 0, mod->ncols);
  int names = lua_gettop(L);
  lua_newtable(L);
  int vslot = lua_gettop(L);
  lua_newtable(L);
  int dslot = lua_gettop(L);
  for (int i = 0; i < mod->ncols; i++) {
    const char *cn = sq_model_col(mod->m, i)->name;
    lua_pushinteger(L, i + 1);
    lua_setfield(L, names, cn);
    if (lua_getfield(L, vtab, cn) != LUA_TNIL) {
      mod->cflags[i] |= CF_LUA_VALIDATE;
      mod->has_lua_checks = 1;
      lua_rawseti(L, vslot, i + 1);
    } else {
      lua_pop(L, 1);
    }
    if (lua_getfield(L, dtab, cn) != LUA_TNIL) {
      mod->cflags[i] |= CF_DEFAULT_FN;
      lua_rawseti(L, dslot, i + 1);
    } else {
      lua_pop(L, 1);
    }
    if (lua_getfield(L, netab, cn) != LUA_TNIL) mod->cflags[i] |= CF_NOT_EMPTY;
    lua_pop(L, 1);
  }
  lua_pushvalue(L, names);
  lua_setiuservalue(L, midx, MUV_NAMES);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, vslot);
  lua_setfield(L, -2, "validators");
  lua_pushvalue(L, dslot);
  lua_setfield(L, -2, "defaults");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "string");
  if (lua_type(L, -1) == LUA_TTABLE) lua_getfield(L, -1, "find");
  else lua_pushnil(L);
  lua_setfield(L, -4, "find");
  lua_pop(L, 2);
  lua_setiuservalue(L, midx, MUV_EXTRA);
  lsq_instance_setup(L, midx, mod);
}

/* The CF_* flags sq_model_validate needs for column c (see lsq_validate). */
static unsigned char col_flags(const sq_col *c) {
  unsigned char f = 0;
  if (c->has_len || c->has_min || c->has_max) f |= CF_RULES;
  if (c->type == SQ_T_STRING || c->type == SQ_T_CHAR) f |= CF_MAXLEN;
  if (!c->allow_null && c->default_kind == SQ_DEFAULT_NONE && !c->auto_increment && c->role != SQ_ROLE_CREATED_AT &&
      c->role != SQ_ROLE_UPDATED_AT && !(c->primary_key && c->type == SQ_T_UUID))
    f |= CF_REQUIRED;
  return f;
}

void lsq_model_refresh(lua_State *L, int midx) {
  midx = lua_absindex(L, midx);
  lsq_model *mod = lsq_toudata(L, midx, lsq_kind_model, sizeof *mod);
  if (!mod || !mod->m) return;
  int n = sq_model_ncols(mod->m);
  /* columns may have moved in memory: every pointer is taken again */
  const sq_col **cols = realloc((void *)mod->cols, sizeof *cols * (size_t)(n ? n : 1));
  if (cols) mod->cols = cols;
  unsigned char *fl = realloc(mod->cflags, (size_t)(n ? n : 1));
  if (fl) mod->cflags = fl;
  if (!cols || !fl) {
    sq_err err;
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    lsq_raise(L, &err);
  }
  for (int i = 0; i < n; i++) mod->cols[i] = sq_model_col(mod->m, i);
  mod->npk = sq_model_pk(mod->m, &mod->pk);
  free(mod->pk_sql);
  mod->pk_sql = NULL;
  for (int i = 0; i < LSQ_NSHAPES; i++) {
    free(mod->shapes[i].sql);
    mod->shapes[i].sql = NULL;
    mod->shapes[i].kind = 0;
  }
  if (n == mod->ncols) return;
  lua_getiuservalue(L, midx, MUV_NAMES);
  lua_getiuservalue(L, midx, MUV_IMT);
  lua_rawgeti(L, -1, IMT_COLNAMES);
  for (int i = mod->ncols; i < n; i++) {
    const sq_col *c = mod->cols[i];
    mod->cflags[i] = col_flags(c);
    if (mod->cflags[i] & CF_REQUIRED) mod->nrequired++;
    lua_pushinteger(L, i + 1);
    lua_setfield(L, -4, c->name);
    lua_pushstring(L, c->name);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pop(L, 3);
  mod->ncols = n;
}

int lsq_model_wrap(lua_State *L, int dbidx, sq_model *m) {
  dbidx = lua_absindex(L, dbidx);
  lsq_db *db = lua_touserdata(L, dbidx);
  lsq_model *mod = lua_newuserdatauv(L, sizeof *mod, MUV_COUNT);
  memset(mod, 0, sizeof *mod);
  lsq_tag_init(&mod->tag, lsq_kind_model);
  luaL_setmetatable(L, LSQ_MODEL_MT);
  int midx = lua_gettop(L);
  mod->dialect = db->dialect;
  mod->m = m;
  mod->borrowed = 1;
  mod->lazy_opt = -1;
  lua_pushvalue(L, dbidx);
  lua_setiuservalue(L, midx, MUV_DB);
  lua_newtable(L);
  lua_setiuservalue(L, midx, MUV_CLASS);
  lua_newtable(L);
  lua_newtable(L);
  lua_newtable(L);
  model_view(L, midx, mod, midx + 1, midx + 2, midx + 3);
  lua_settop(L, midx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &MODELS_KEY);
  lua_pushvalue(L, midx);
  lua_rawsetp(L, -2, mod);
  lua_pop(L, 1);
  return midx;
}

static const char *const model_opts[] = {
  "table_name", "timestamps", "created_at", "updated_at", "paranoid", "deleted_at", "indexes", "lazy",
  "version", /* optimistic locking (lsave.c) */
  NULL,
};

/*
 * db:define(name, columns [, options]) -> Model
 * The Model userdata exists (undefined) before the sq_model is built, so
 * an error at any step leaves only garbage for __gc to free.
 */
static int db_define(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  if (lua_type(L, 2) != LUA_TSTRING || lua_rawlen(L, 2) == 0 || strlen(lua_tostring(L, 2)) != lua_rawlen(L, 2))
    return lsq_usage(L, "define expects a model name (a non-empty string without NUL bytes), got %s", luaL_typename(L, 2));
  if (lua_type(L, 3) != LUA_TTABLE) return lsq_usage(L, "define expects a table of columns, got %s", luaL_typename(L, 3));
  if (!lua_isnoneornil(L, 4) && lua_type(L, 4) != LUA_TTABLE)
    return lsq_usage(L, "define: options must be a table, got %s", luaL_typename(L, 4));
  lua_settop(L, 4);
  int oidx = lua_isnil(L, 4) ? 0 : 4;
  if (oidx) {
    lua_pushnil(L);
    while (lua_next(L, oidx)) {
      int ok = 0;
      for (int i = 0; lua_type(L, -2) == LUA_TSTRING && model_opts[i]; i++) ok |= !strcmp(model_opts[i], lua_tostring(L, -2));
      for (int i = 0; lua_type(L, -2) == LUA_TSTRING && lsq_scope_opts[i]; i++) ok |= !strcmp(lsq_scope_opts[i], lua_tostring(L, -2));
      if (!ok) return lsq_usage(L, "define: unknown option '%s'", lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
      lua_pop(L, 1);
    }
  }

  lsq_model *mod = lua_newuserdatauv(L, sizeof *mod, MUV_COUNT);
  memset(mod, 0, sizeof *mod);
  lsq_tag_init(&mod->tag, lsq_kind_model);
  luaL_setmetatable(L, LSQ_MODEL_MT);
  int midx = lua_gettop(L); /* 5 */
  mod->dialect = db->dialect;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, midx, MUV_DB);
  lua_newtable(L);
  lua_setiuservalue(L, midx, MUV_CLASS);
  lua_newtable(L); /* validators by name */
  int vtab = lua_gettop(L);
  lua_newtable(L); /* default functions by name */
  int dtab = lua_gettop(L);
  lua_newtable(L); /* names of not_empty columns */
  int netab = lua_gettop(L);

  sq_model_opts mo;
  memset(&mo, 0, sizeof mo);
  mo.table_name = opt_string(L, oidx, "table_name");
  mo.timestamps = oidx ? opt_bool(L, oidx, "timestamps", -1) : -1;
  mo.created_at = opt_string(L, oidx, "created_at");
  mo.updated_at = opt_string(L, oidx, "updated_at");
  mo.paranoid = opt_bool(L, oidx, "paranoid", 0);
  mo.deleted_at = opt_string(L, oidx, "deleted_at");
  if (oidx) {
    /* version = true (a "version" column) or a column name */
    int t = lua_getfield(L, oidx, "version");
    if (t == LUA_TBOOLEAN) mo.version = lua_toboolean(L, -1) ? "version" : NULL;
    else if (t == LUA_TSTRING && strlen(lua_tostring(L, -1)) == lua_rawlen(L, -1)) mo.version = lua_tostring(L, -1);
    else if (t != LUA_TNIL) return lsq_usage(L, "define: version must be true or a column name");
    lua_pop(L, 1); /* a string stays anchored by the options table */
  }
  sq_err err;
  sq_err_clear(&err);
  /* lazy: the default of this model's associations (-1: the db's) */
  int lazy_opt = -1;
  if (oidx) {
    lua_getfield(L, oidx, "lazy");
    if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "raise")) lazy_opt = 1;
    else if (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1)) lazy_opt = 0;
    else if (!lua_isnil(L, -1)) return lsq_usage(L, "define: lazy must be \"raise\" or true");
    lua_pop(L, 1);
  }
  mod->lazy_opt = lazy_opt;
  if (sq_model_new(lua_tostring(L, 2), &mo, &mod->m, &err)) return lsq_raise(L, &err);

  /* columns: list or map */
  lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
  if (n > 0) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n)
        return lsq_usage(L, "define: columns must be a list of specs or a map of name = spec, not both");
      lua_pop(L, 1);
    }
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, 3, i);
      if (lua_type(L, -1) != LUA_TTABLE) return lsq_usage(L, "define: column #%d must be a table { \"name\", type, ... }", (int)i);
      add_column(L, mod, lua_gettop(L), NULL, 1, vtab, dtab, netab);
      lua_pop(L, 1);
    }
  } else {
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING || strlen(lua_tostring(L, -2)) != lua_rawlen(L, -2))
        return lsq_usage(L, "define: column names must be strings without NUL bytes");
      lua_pop(L, 1);
      count++;
    }
    colkey *keys = lua_newuserdatauv(L, sizeof *keys * (size_t)(count ? count : 1), 0);
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      keys[k].name = lua_tostring(L, -2);
      keys[k].pk = 0;
      if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "primary_key");
        keys[k].pk = lua_toboolean(L, -1);
        lua_pop(L, 1);
      }
      k++;
      lua_pop(L, 1);
    }
    qsort(keys, (size_t)count, sizeof *keys, colkey_cmp);
    for (int i = 0; i < count; i++) {
      lua_getfield(L, 3, keys[i].name);
      add_column(L, mod, lua_gettop(L), keys[i].name, 0, vtab, dtab, netab);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (oidx) {
    if (lua_getfield(L, oidx, "indexes") != LUA_TNIL) add_indexes(L, mod, lua_gettop(L));
    lua_pop(L, 1);
  }
  if (sq_model_finish(mod->m, &err)) return lsq_raise(L, &err);

  model_view(L, midx, mod, vtab, dtab, netab);
  if (oidx) lsq_scope_define(L, midx, mod, oidx);

  /* registries: the weak C-pointer map, and the db's models */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &MODELS_KEY);
  lua_pushvalue(L, midx);
  lua_rawsetp(L, -2, mod);
  lua_pop(L, 1);
  lua_getiuservalue(L, 1, 1);
  int dbt = lua_gettop(L);
  if (lua_getfield(L, dbt, "models") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, dbt, "models");
  }
  if (lua_getfield(L, dbt, "model_list") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, dbt, "model_list");
  }
  int map = dbt + 1, list = dbt + 2;
  /* a model defined again under the same name replaces the old one */
  lua_Integer pos = (lua_Integer)lua_rawlen(L, list) + 1;
  if (lua_getfield(L, map, sq_model_name(mod->m)) != LUA_TNIL) {
    for (lua_Integer i = 1; i < pos; i++) {
      lua_rawgeti(L, list, i);
      int same = lua_rawequal(L, -1, -2);
      lua_pop(L, 1);
      if (same) {
        pos = i;
        break;
      }
    }
  }
  lua_pop(L, 1);
  lua_pushvalue(L, midx);
  lua_rawseti(L, list, pos);
  lua_pushvalue(L, midx);
  lua_setfield(L, map, sq_model_name(mod->m));
  lua_pushvalue(L, midx);
  return 1;
}

/* db:model(name) -> the Model defined under that name, or nil */
static int db_model(lua_State *L) {
  lsq_check_db(L, 1);
  if (lua_type(L, 2) != LUA_TSTRING)
    return lsq_usage(L, "db:model(name): name must be a string, got %s", luaL_typename(L, 2));
  lua_getiuservalue(L, 1, 1);
  if (lua_getfield(L, -1, "models") != LUA_TTABLE) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* db:models() -> { name = Model, ... } (a copy) */
static int db_models(lua_State *L) {
  lsq_check_db(L, 1);
  if (!lua_isnone(L, 2)) return lsq_usage(L, "db:models takes no arguments (db:model(name) finds one model)");
  lua_settop(L, 1);
  lua_newtable(L);
  lua_getiuservalue(L, 1, 1);
  if (lua_getfield(L, -1, "models") != LUA_TTABLE) {
    lua_settop(L, 2);
    return 1;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 2);
  }
  lua_settop(L, 2);
  return 1;
}

/* ---------------------------------------------------------------- */
/* registration                                                       */
/* ---------------------------------------------------------------- */

static const luaL_Reg db_model_methods[] = {
  {"define", db_define},
  {"model", db_model},
  {"models", db_models},
  {NULL, NULL},
};

/* Registers the model metatables, adds types / op / fn / raw to the
 * module table at modidx and define / sync / ... to sqorm.Db. */
void lsq_model_open(lua_State *L, int modidx) {
  modidx = lua_absindex(L, modidx);
  if (luaL_newmetatable(L, LSQ_SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LSQ_MODEL_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, lsq_find_methods, 0);
    luaL_setfuncs(L, lsq_write_methods, 0);
    luaL_setfuncs(L, lsq_bulk_methods, 0);
    luaL_setfuncs(L, lsq_sync_methods, 0);
    luaL_setfuncs(L, lsq_assoc_methods, 0);
    luaL_setfuncs(L, lsq_expr_methods, 0);
    luaL_setfuncs(L, lsq_scope_methods, 0);
    lua_pushcfunction(L, lsq_model_each);
    lua_setfield(L, -2, "each");
    lua_pushcclosure(L, model_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, model_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, model_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, model_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &MODELS_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &MODELS_KEY);
  } else {
    lua_pop(L, 1);
  }
  luaL_getmetatable(L, LSQ_DB_MT);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, db_model_methods, 0);
  luaL_setfuncs(L, lsq_sync_db_methods, 0);
  lua_pop(L, 2);
  lsq_types_open(L, modidx);
  lsq_where_open(L, modidx);
  lsq_cursor_open(L);
  lsq_expr_open(L, modidx);
  lsq_assoc_open(L, modidx);
  lsq_scope_open(L);
}
