/*
 * lscope.c - scopes (issue 12): `default_scope` and `scopes` of
 * db:define, Model:scope(...) / Model:unscoped() and the scoped model
 * they return, and the merge each scope-aware method runs before it
 * parses its options (lsq_scope_apply).
 *
 * A scope is an options table (or, for a named scope, a function
 * returning one). Merging works on Lua values before the options are
 * parsed: nothing here builds SQL, values stay values (bound later by the
 * parsers). Order: the default scope, the named scopes left to right,
 * the call's options. `where` values are AND-ed (an sqorm.op.and_ of
 * both, never one replacing the other), `include` lists are merged by
 * association name (two items of one association merge the same way),
 * any other key: the later value wins.
 *
 * The options a method parses after a merge are always a new table (a
 * before_find hook may change it without touching a scope).
 *
 * Storage: MUV_EXTRA.default_scope (a copy of the checked table) and
 * MUV_EXTRA.scopes (name -> table copy or function). lsq_model.scoped is
 * 1 when there is a default scope, so the methods of a model without one
 * pay one load and a test.
 *
 * A scoped model (metatable sqorm.Scoped) is a userdata whose user values
 * are the model and its merged scope table (nil: no scope at all, as
 * unscoped() makes). Its methods are the model's: the scope-aware ones
 * (reads, counts, class writes, scope, unscoped) take it as self and
 * lsq_scope_apply puts the model in its place; other built-in methods get
 * a wrapper that does the swap; the user's own class methods get the
 * scoped model as self, so `self:find_all()` inside one stays scoped.
 */
#include "lassoc.h"

#include <stdio.h>
#include <string.h>

typedef struct lsq_scoped {
  lsq_tag tag;
  int has_default; /* the default scope is part of the merged table */
} lsq_scoped;

enum { SUV_MODEL = 1, SUV_SCOPE, SUV_NAMES, SUV_COUNT = SUV_NAMES };

static const char kind_scoped[] = "sqorm.Scoped";
#define LSQ_SCOPED_MT "sqorm.Scoped"

/* The options a scope may hold, and which methods take them (see the
 * LSQ_SC_* masks in lmodel.h). */
static const struct {
  const char *name;
  unsigned bit;
} scope_keys[] = {
  {"where", LSQ_SK_WHERE}, {"include", LSQ_SK_INCLUDE}, {"attributes", LSQ_SK_ATTRIBUTES},
  {"order", LSQ_SK_ORDER}, {"limit", LSQ_SK_LIMIT}, {"offset", LSQ_SK_OFFSET}, {"group", LSQ_SK_GROUP},
  {"having", LSQ_SK_HAVING}, {"lock", LSQ_SK_LOCK}, {"raw", LSQ_SK_RAW}, {"paranoid", LSQ_SK_PARANOID},
  {"distinct", LSQ_SK_DISTINCT}, {"lazy", LSQ_SK_LAZY}, {"use_primary", LSQ_SK_PRIMARY}, {NULL, 0},
};

/* The bit of the option key at idx (0: not a scope option). */
static unsigned key_bit(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  const char *k = lua_tostring(L, idx);
  for (int i = 0; scope_keys[i].name; i++)
    if (!strcmp(k, scope_keys[i].name)) return scope_keys[i].bit;
  return 0;
}

/* Checks the scope at idx (what: names it in messages) and pushes a
 * shallow copy. Raises usage. */
static void check_scope(lua_State *L, int idx, const char *model, const char *what) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE || lsq_test_instance(L, idx))
    lsq_usage(L, "%s: %s must be a table of query options, got %s", model, what, luaL_typename(L, idx));
  lua_newtable(L);
  int t = lua_gettop(L);
  for (lua_pushnil(L); lua_next(L, idx);) {
    if (!key_bit(L, -2))
      lsq_usage(L, "%s: %s: unknown option '%.64s' (a scope holds where, include, attributes, order, limit, offset, "
                   "group, having, lock, raw, paranoid, distinct, lazy, use_primary)",
                model, what, lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2));
    const char *k = lua_tostring(L, -2);
    int vt = lua_type(L, -1);
    if (!strcmp(k, "where") && vt != LUA_TTABLE && !lsq_test_op(L, -1))
      lsq_usage(L, "%s: %s: where must be a table of conditions or an operator value, got %s", model, what,
                luaL_typename(L, -1));
    if (!strcmp(k, "include") && vt != LUA_TTABLE && vt != LUA_TSTRING && vt != LUA_TUSERDATA)
      lsq_usage(L, "%s: %s: include must be an association name, a Model or a list, got %s", model, what,
                luaL_typename(L, -1));
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, t);
    lua_pop(L, 1);
  }
}

/* ---------------------------------------------------------------- */
/* merging (Lua values)                                               */
/* ---------------------------------------------------------------- */

/* Pushes sqorm.op.and_(a, b) (a and b: stack indices). */
static void push_and(lua_State *L, int a, int b) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  lsq_opv *o = lua_newuserdatauv(L, sizeof *o, 2);
  o->op = SQ_OP_AND;
  o->n = 2;
  luaL_setmetatable(L, LSQ_OP_MT);
  lua_pushvalue(L, a);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, b);
  lua_setiuservalue(L, -2, 2);
}

/* The length of the table at idx when it is a list, else -1. */
static int list_len(lua_State *L, int idx) {
  int n = (int)lua_rawlen(L, idx), count = 0;
  for (lua_pushnil(L); lua_next(L, idx);) {
    lua_pop(L, 1);
    count++;
  }
  return count == n ? n : -1;
}

/* 1 when the include value at idx is one item, not a list of items (the
 * rule of linclude.c's parse_includes). */
static int single_item(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || lsq_test_instance(L, idx)) return 1;
  lua_rawgeti(L, idx, 1);
  int first_str = lua_type(L, -1) == LUA_TSTRING;
  lua_pop(L, 1);
  lua_getfield(L, idx, "as");
  lua_getfield(L, idx, "model");
  int named = !lua_isnil(L, -1) || !lua_isnil(L, -2);
  lua_pop(L, 2);
  int len = list_len(L, idx);
  return named || (first_str && (len < 0 || len != (int)lua_rawlen(L, idx)));
}

/* Pushes the association name of the model at midx (0: unknown) that
 * the Model value at idx is the target of, when exactly one; else nil. */
static void assoc_of_target(lua_State *L, int midx, int idx) {
  if (!midx || !lsq_toudata(L, idx, lsq_kind_model, sizeof(lsq_model))) {
    lua_pushnil(L);
    return;
  }
  int t = lsq_assoc_table(L, midx), found = 0;
  lua_pushnil(L); /* the name */
  for (lua_pushnil(L); lua_next(L, t);) {
    int eq = 0;
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_getfield(L, -1, "target");
      eq = lua_rawequal(L, -1, idx);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (eq && found++ == 0 && lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_replace(L, t + 1);
    }
  }
  if (found != 1) {
    lua_pushnil(L);
    lua_replace(L, t + 1);
  }
  lua_remove(L, t);
}

/* Pushes the association name of the include item at idx (nil when it
 * names none this code can tell: then it is never merged). */
static void item_name(lua_State *L, int midx, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || lsq_test_instance(L, idx)) {
    assoc_of_target(L, midx, idx);
    return;
  }
  if (lua_rawgeti(L, idx, 1) == LUA_TSTRING) return;
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "as") == LUA_TSTRING) return;
  lua_pop(L, 1);
  lua_rawgeti(L, idx, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_getfield(L, idx, "model");
  }
  int v = lua_gettop(L);
  assoc_of_target(L, midx, v);
  lua_remove(L, v);
}

static void merge_includes(lua_State *L, int midx, int a, int b, int depth);

/* Copies the options of include item idx into table t (its name at [1]
 * already): where AND-ed, include merged (tidx: the target model or 0),
 * others replaced. */
static void merge_item_into(lua_State *L, int t, int idx, int tidx, int depth) {
  if (lua_type(L, idx) != LUA_TTABLE || lsq_test_instance(L, idx)) return;
  for (lua_pushnil(L); lua_next(L, idx);) {
    int kt = lua_type(L, -2);
    if ((kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) == 1) ||
        (kt == LUA_TSTRING && (!strcmp(lua_tostring(L, -2), "as") || !strcmp(lua_tostring(L, -2), "model")))) {
      lua_pop(L, 1);
      continue;
    }
    int v = lua_gettop(L);
    const char *k = kt == LUA_TSTRING ? lua_tostring(L, -2) : "";
    int where = !strcmp(k, "where"), inc = !strcmp(k, "include");
    lua_pushvalue(L, -2);
    if ((where || inc) && lua_rawget(L, t) != LUA_TNIL) {
      int old = lua_gettop(L);
      if (where) push_and(L, old, v);
      else merge_includes(L, tidx, old, v, depth + 1);
      lua_replace(L, old);
    } else {
      lua_pop(L, 1);
      lua_pushvalue(L, v);
    }
    lua_pushvalue(L, v - 1);
    lua_insert(L, -2);
    lua_rawset(L, t);
    lua_pop(L, 1);
  }
}

/* Appends the items of include value idx to list l (name -> position in
 * map nm), merging an item into an earlier one of the same name. */
static void add_items(lua_State *L, int midx, int l, int nm, int idx, int depth) {
  int single = single_item(L, idx);
  int n = single ? 1 : (int)lua_rawlen(L, idx);
  for (int i = 1; i <= n; i++) {
    if (single) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, i);
    int item = lua_gettop(L);
    item_name(L, midx, item);
    int name = item + 1;
    lua_Integer at = 0;
    if (!lua_isnil(L, name)) {
      lua_pushvalue(L, name);
      lua_rawget(L, nm);
      at = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    if (at) {
      /* the same association again: one merged item { name, ... } */
      lua_newtable(L);
      int t = lua_gettop(L);
      lua_pushvalue(L, name);
      lua_rawseti(L, t, 1);
      int tidx = 0;
      if (midx && lsq_assoc_info(L, midx, lua_tostring(L, name)) == LUA_TTABLE) {
        lua_getfield(L, -1, "target");
        lua_remove(L, -2);
        if (lsq_toudata(L, -1, lsq_kind_model, sizeof(lsq_model))) tidx = lua_gettop(L);
      }
      if (!tidx) lua_pushnil(L);
      lua_rawgeti(L, l, at);
      merge_item_into(L, t, lua_gettop(L), tidx, depth);
      lua_pop(L, 1);
      merge_item_into(L, t, item, tidx, depth);
      lua_pushvalue(L, t);
      lua_rawseti(L, l, at);
    } else {
      lua_Integer pos = (lua_Integer)lua_rawlen(L, l) + 1;
      lua_pushvalue(L, item);
      lua_rawseti(L, l, pos);
      if (!lua_isnil(L, name)) {
        lua_pushvalue(L, name);
        lua_pushinteger(L, pos);
        lua_rawset(L, nm);
      }
    }
    lua_settop(L, item - 1);
  }
}

/* Pushes a new include list: the items of a, then b's (merged by name;
 * midx: the model they belong to, 0 when unknown). */
static void merge_includes(lua_State *L, int midx, int a, int b, int depth) {
  if (depth > 16) lsq_usage(L, "include: includes nested more than 16 levels deep");
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (!lua_checkstack(L, 24)) luaL_error(L, "out of memory");
  lua_newtable(L);
  int l = lua_gettop(L);
  lua_newtable(L);
  int nm = l + 1;
  add_items(L, midx, l, nm, a, depth);
  add_items(L, midx, l, nm, b, depth);
  lua_settop(L, l);
}

/* Pushes a new options table: the keys of table a (0: none) in mask,
 * then every key of table b (0: none): where AND-ed, include merged by
 * association name (midx: the model), any other key replaced. */
static void merge(lua_State *L, int midx, int a, int b, unsigned mask) {
  lua_createtable(L, 0, 4);
  int t = lua_gettop(L);
  if (a)
    for (lua_pushnil(L); lua_next(L, a);) {
      if (key_bit(L, -2) & mask) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, t);
      } else {
        lua_pop(L, 1);
      }
    }
  if (b)
    for (lua_pushnil(L); lua_next(L, b);) {
      int v = lua_gettop(L);
      unsigned bit = key_bit(L, -2);
      lua_pushvalue(L, -2);
      if ((bit == LSQ_SK_WHERE || bit == LSQ_SK_INCLUDE) && lua_rawget(L, t) != LUA_TNIL) {
        if (bit == LSQ_SK_WHERE) push_and(L, -1, v);
        else merge_includes(L, midx, -1, v, 1);
        lua_remove(L, -2);
      } else {
        lua_pop(L, 1);
        lua_pushvalue(L, v);
      }
      lua_pushvalue(L, v - 1);
      lua_insert(L, -2);
      lua_rawset(L, t);
      lua_pop(L, 1);
    }
}

/* ---------------------------------------------------------------- */
/* the methods' side                                                  */
/* ---------------------------------------------------------------- */

int lsq_scope_apply(lua_State *L, int oidx, unsigned mask, const char *method) {
  lsq_model *mod = lsq_toudata(L, 1, lsq_kind_model, sizeof *mod);
  if (mod) {
    if (!mod->scoped) return 0;
  } else if (!lsq_toudata(L, 1, kind_scoped, sizeof(lsq_scoped))) {
    return 0; /* lsq_check_model raises */
  }
  if (lua_gettop(L) < oidx) lua_settop(L, oidx);
  if (mod) {
    lua_getiuservalue(L, 1, MUV_EXTRA);
    lua_getfield(L, -1, "default_scope");
    lua_remove(L, -2);
  } else {
    lua_getiuservalue(L, 1, SUV_SCOPE);
    lua_getiuservalue(L, 1, SUV_MODEL);
    lua_replace(L, 1);
  }
  int s = lua_gettop(L);
  int t = lua_type(L, oidx);
  int skip = lua_isnil(L, s) || (t != LUA_TNIL && t != LUA_TTABLE);
  if (!skip && t == LUA_TTABLE) {
    /* unscoped = true: this read leaves every scope out */
    skip = lua_getfield(L, oidx, "unscoped") == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!skip && mask == LSQ_SC_PK) {
      int has = lua_getfield(L, oidx, "where") != LUA_TNIL;
      lua_pop(L, 1);
      if (has) return lsq_usage(L, "%s: unknown option 'where'", method);
    }
  }
  if (!skip && mask == LSQ_SC_WRITE) {
    /* a write without where stays refused unless all = true: a scope's
     * where never stands in for the caller's */
    int ok = 0;
    if (t == LUA_TTABLE) {
      ok = lua_getfield(L, oidx, "where") != LUA_TNIL;
      ok |= lua_getfield(L, oidx, "all") == LUA_TBOOLEAN && lua_toboolean(L, -1);
      lua_pop(L, 2);
    }
    skip = !ok;
  }
  if (!skip) {
    /* nothing of the scope applies: the options stay the caller's */
    int any = 0;
    for (lua_pushnil(L); !any && lua_next(L, s);) {
      any = (key_bit(L, -2) & mask) != 0;
      lua_pop(L, 1);
    }
    if (any) lua_pop(L, 1); /* the key lua_next left */
    skip = !any;
  }
  if (skip) {
    lua_settop(L, s - 1);
    return 0;
  }
  merge(L, 1, s, t == LUA_TTABLE ? oidx : 0, mask);
  lua_replace(L, oidx);
  lua_settop(L, s - 1);
  return 1;
}

/* An AND of *where and e (either may be NULL) into *where. */
static int and_into(sq_arena *a, sq_expr **where, sq_expr *e, sq_err *err) {
  if (!e) return SQ_OK;
  if (!*where) {
    *where = e;
    return SQ_OK;
  }
  sq_expr *n = sq_arena_alloc(a, sizeof *n);
  sq_expr **kids = sq_arena_alloc(a, sizeof *kids * 2);
  if (!n || !kids) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  memset(n, 0, sizeof *n);
  n->op = SQ_OP_AND;
  n->col = -1;
  kids[0] = *where;
  kids[1] = e;
  n->kids = kids;
  n->nkids = 2;
  *where = n;
  return SQ_OK;
}

int lsq_scope_and(sq_arena *a, sq_expr **where, sq_expr *e, sq_err *err) { return and_into(a, where, e, err); }

int lsq_scope_include_where(lsq_qb *b, int tidx, sq_expr **where) {
  lua_State *L = b->L;
  const lsq_model *tm = b->mod;
  if (!tm->scoped) return SQ_OK;
  int top = lua_gettop(L);
  lua_getiuservalue(L, tidx, MUV_EXTRA);
  int rc = SQ_OK;
  if (lua_getfield(L, -1, "default_scope") == LUA_TTABLE && lua_getfield(L, -1, "where") != LUA_TNIL) {
    sq_expr *e = NULL, *w = *where;
    rc = lsq_build_where(b, -1, &e);
    if (!rc) {
      /* the scope's condition first, then the include's own */
      *where = e;
      rc = and_into(b->scratch->arena, where, w, b->err);
    }
  }
  lua_settop(L, top);
  return rc;
}

/* ---------------------------------------------------------------- */
/* definition                                                         */
/* ---------------------------------------------------------------- */

void lsq_scope_define(lua_State *L, int midx, lsq_model *mod, int oidx) {
  midx = lua_absindex(L, midx);
  const char *mname = sq_model_name(mod->m);
  int top = lua_gettop(L);
  lua_getiuservalue(L, midx, MUV_EXTRA);
  int extra = lua_gettop(L);
  if (lua_getfield(L, oidx, "default_scope") != LUA_TNIL) {
    check_scope(L, -1, mname, "default_scope");
    lua_setfield(L, extra, "default_scope");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, oidx, "scopes") != LUA_TNIL) {
    int sc = lua_gettop(L);
    if (lua_type(L, sc) != LUA_TTABLE)
      lsq_usage(L, "%s: scopes must be a table { name = options or function }, got %s", mname, luaL_typename(L, sc));
    lua_newtable(L);
    int copy = lua_gettop(L);
    for (lua_pushnil(L); lua_next(L, sc);) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_rawlen(L, -2) == 0)
        lsq_usage(L, "%s: scope names must be non-empty strings, got %s", mname, luaL_typename(L, -2));
      const char *name = lua_tostring(L, -2);
      if (!strcmp(name, "default"))
        lsq_usage(L, "%s: 'default' names the default scope; define it with default_scope", mname);
      if (lua_type(L, -1) == LUA_TFUNCTION) {
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
      } else {
        char what[96];
        snprintf(what, sizeof what, "scope '%.64s'", name);
        check_scope(L, -1, mname, what);
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
      }
      lua_rawset(L, copy);
      lua_pop(L, 1);
    }
    lua_setfield(L, extra, "scopes");
  }
  lua_settop(L, top);
  lua_getiuservalue(L, midx, MUV_EXTRA);
  mod->scoped = lua_getfield(L, -1, "default_scope") == LUA_TTABLE;
  lua_settop(L, top);
}

/* ---------------------------------------------------------------- */
/* Model:scope / Model:unscoped and the scoped model                  */
/* ---------------------------------------------------------------- */

/* The model of self (a Model or a scoped model), pushed; *s the scoped
 * one or NULL. Raises usage for anything else. */
static lsq_model *self_model(lua_State *L, lsq_scoped **s) {
  *s = lsq_toudata(L, 1, kind_scoped, sizeof **s);
  if (*s) lua_getiuservalue(L, 1, SUV_MODEL);
  else lua_pushvalue(L, 1);
  lsq_model *mod = lsq_toudata(L, -1, lsq_kind_model, sizeof *mod);
  if (!mod || !mod->m) lsq_usage(L, "expected a sqorm.Model, got %s", luaL_typename(L, 1));
  return mod;
}

/* Pushes a scoped model of the model at midx with scope table sidx (0:
 * none) and names table nidx. */
static void push_scoped(lua_State *L, int midx, int sidx, int nidx, int has_default) {
  lsq_scoped *s = lua_newuserdatauv(L, sizeof *s, SUV_COUNT);
  lsq_tag_init(&s->tag, kind_scoped);
  s->has_default = has_default;
  luaL_setmetatable(L, LSQ_SCOPED_MT);
  lua_pushvalue(L, midx);
  lua_setiuservalue(L, -2, SUV_MODEL);
  if (sidx) lua_pushvalue(L, sidx);
  else lua_pushnil(L);
  lua_setiuservalue(L, -2, SUV_SCOPE);
  lua_pushvalue(L, nidx);
  lua_setiuservalue(L, -2, SUV_NAMES);
}

/*
 * Model:scope(name | { name, arg, ... }, ...) -> a scoped model: the
 * model's default scope (or the scopes of a scoped self), then each named
 * scope left to right. "default" names the default scope (added once).
 */
static int model_scope(lua_State *L) {
  lsq_scoped *self;
  int n = lua_gettop(L) - 1; /* the scope arguments: 2..n+1 */
  lsq_model *mod = self_model(L, &self);
  int midx = lua_gettop(L);
  const char *mname = sq_model_name(mod->m);
  lua_getiuservalue(L, midx, MUV_EXTRA);
  int extra = lua_gettop(L);
  lua_getfield(L, extra, "scopes");
  int named = lua_gettop(L);
  /* acc: the scope so far */
  int has_default;
  if (self) {
    lua_getiuservalue(L, 1, SUV_SCOPE);
    has_default = self->has_default;
  } else {
    lua_getfield(L, extra, "default_scope");
    has_default = 1;
  }
  int acc = lua_gettop(L);
  lua_newtable(L); /* the names, for tostring */
  int names = lua_gettop(L);
  if (self) {
    lua_getiuservalue(L, 1, SUV_NAMES);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) lua_rawseti(L, names, i);
    lua_pop(L, 2);
  } else if (mod->scoped) {
    lua_pushliteral(L, "default");
    lua_rawseti(L, names, 1);
  }
  for (int i = 2; i <= n + 1; i++) {
    int base = lua_gettop(L);
    int nargs = 0;
    if (lua_type(L, i) == LUA_TTABLE) {
      if (lua_rawgeti(L, i, 1) != LUA_TSTRING)
        return lsq_usage(L, "%s:scope: argument #%d must be a scope name or { name, args... }, got a table without a name",
                         mname, i - 1);
      nargs = (int)lua_rawlen(L, i) - 1;
    } else if (lua_type(L, i) == LUA_TSTRING) {
      lua_pushvalue(L, i);
    } else {
      return lsq_usage(L, "%s:scope: argument #%d must be a scope name or { name, args... }, got %s", mname, i - 1,
                       luaL_typename(L, i));
    }
    const char *name = lua_tostring(L, base + 1);
    if (!strcmp(name, "default")) {
      if (nargs > 0) return lsq_usage(L, "%s:scope: the default scope takes no arguments", mname);
      if (!has_default) {
        has_default = 1;
        if (lua_getfield(L, extra, "default_scope") != LUA_TNIL) {
          merge(L, midx, lua_isnil(L, acc) ? 0 : acc, lua_gettop(L), LSQ_SC_FIND);
          lua_replace(L, acc);
          lua_pushliteral(L, "default");
          lua_rawseti(L, names, (lua_Integer)lua_rawlen(L, names) + 1);
        }
      }
      lua_settop(L, base);
      continue;
    }
    if (lua_type(L, named) != LUA_TTABLE || (lua_pushvalue(L, base + 1), lua_rawget(L, named)) == LUA_TNIL)
      return lsq_usage(L, "%s has no scope '%.64s'", mname, name);
    int sv = lua_gettop(L);
    if (lua_type(L, sv) == LUA_TFUNCTION) {
      if (!lua_checkstack(L, nargs + 4)) return luaL_error(L, "out of memory");
      lua_pushvalue(L, sv);
      for (int a = 1; a <= nargs; a++) lua_rawgeti(L, i, a + 1);
      lua_call(L, nargs, 1); /* an error raised by the scope propagates */
      if (lua_type(L, -1) != LUA_TTABLE)
        return lsq_usage(L, "%s: scope '%.64s' must return a table of query options, got %s", mname, name,
                         luaL_typename(L, -1));
      char what[96];
      snprintf(what, sizeof what, "scope '%.64s'", name);
      check_scope(L, -1, mname, what);
      lua_replace(L, sv);
      lua_settop(L, sv);
    } else if (nargs > 0) {
      return lsq_usage(L, "%s: scope '%.64s' is a table and takes no arguments", mname, name);
    }
    merge(L, midx, lua_isnil(L, acc) ? 0 : acc, sv, LSQ_SC_FIND);
    lua_replace(L, acc);
    lua_pushvalue(L, base + 1);
    lua_rawseti(L, names, (lua_Integer)lua_rawlen(L, names) + 1);
    lua_settop(L, base);
  }
  push_scoped(L, midx, lua_isnil(L, acc) ? 0 : acc, names, has_default);
  return 1;
}

/* Model:unscoped() -> the model with no scope at all. */
static int model_unscoped(lua_State *L) {
  lsq_scoped *self;
  self_model(L, &self);
  int midx = lua_gettop(L);
  lua_newtable(L);
  push_scoped(L, midx, 0, midx + 1, 0);
  return 1;
}

static int scoped_tostring(lua_State *L) {
  lsq_scoped *self;
  lsq_model *mod = self_model(L, &self);
  lua_getiuservalue(L, 1, SUV_NAMES);
  int nt = lua_gettop(L);
  lua_pushfstring(L, "sqorm.Model %s (table %s) ", sq_model_name(mod->m), sq_model_table(mod->m));
  int parts = 1;
  if (lua_rawlen(L, nt) == 0) {
    lua_pushliteral(L, "unscoped");
    parts++;
  } else {
    lua_pushliteral(L, "scoped: ");
    parts++;
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, nt); i++) {
      if (!lua_checkstack(L, 4)) break;
      if (i > 1) {
        lua_pushliteral(L, ", ");
        parts++;
      }
      lua_rawgeti(L, nt, i);
      parts++;
      if (parts > 32) {
        lua_concat(L, parts);
        parts = 1;
      }
    }
  }
  lua_concat(L, parts);
  return 1;
}

static int pass_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L);
}

/* A built-in method that knows nothing of scopes, called on a scoped
 * model: called with the model as self (upvalue 1: the method). */
static int pass_self(lua_State *L) {
  if (lsq_toudata(L, 1, kind_scoped, sizeof(lsq_scoped))) {
    lua_getiuservalue(L, 1, SUV_MODEL);
    lua_replace(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, pass_k);
  return lua_gettop(L);
}

/* Scoped.key: the model's value (upvalue 1: the scope-aware methods;
 * upvalue 2: the wrappers of the others, by method). */
static int scoped_index(lua_State *L) {
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, SUV_MODEL);
  lua_pushvalue(L, 2);
  lua_gettable(L, 3);
  if (!lua_iscfunction(L, 4)) return 1;
  lua_pushvalue(L, 4);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
    lua_pop(L, 1);
    return 1;
  }
  lua_pushvalue(L, 4);
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  lua_pushvalue(L, 4);
  lua_pushcclosure(L, pass_self, 1);
  lua_pushvalue(L, 4);
  lua_pushvalue(L, -2);
  lua_rawset(L, lua_upvalueindex(2));
  return 1;
}

int lsq_scope_base(lua_State *L) {
  lua_settop(L, 1);
  if (luaL_testudata(L, 1, LSQ_SCOPED_MT)) lua_getiuservalue(L, 1, SUV_MODEL);
  return 1;
}

static int scoped_newindex(lua_State *L) {
  return lsq_usage(L, "a scoped model takes no new fields; add class methods to the model itself");
}

const char *const lsq_scope_opts[] = {"default_scope", "scopes", NULL};

const luaL_Reg lsq_scope_methods[] = {
  {"scope", model_scope},
  {"unscoped", model_unscoped},
  {NULL, NULL},
};

void lsq_scope_open(lua_State *L) {
  static const char *const aware[] = {
    "find_all", "find_one", "find_by_pk", "find_and_count_all", "count", "sum", "min", "max", "avg", "each",
    "update", "destroy", "restore", "increment", "decrement", "find_or_create", "scope", "unscoped", NULL,
  };
  luaL_getmetatable(L, LSQ_MODEL_MT);
  lua_getfield(L, -1, "__index");
  lua_getupvalue(L, -1, 1); /* the built-in methods */
  int methods = lua_gettop(L);
  lua_newtable(L);
  int set = lua_gettop(L);
  for (int i = 0; aware[i]; i++) {
    if (lua_getfield(L, methods, aware[i]) != LUA_TNIL) {
      lua_pushboolean(L, 1);
      lua_rawset(L, set);
    } else {
      lua_pop(L, 1);
    }
  }
  if (luaL_newmetatable(L, LSQ_SCOPED_MT)) {
    lua_pushvalue(L, set);
    lua_newtable(L);
    lua_pushcclosure(L, scoped_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, scoped_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, scoped_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 5);
}
