/*
 * linclude.c - reads with includes and expressions: the options of
 * find_all / find_one / find_by_pk / find_and_count_all / count into an
 * sq_select whose tree (includes, expressions, values) lives in the op's
 * arena, and the include sink.
 *
 * The include sink builds one object per row and node: the statement's
 * base model (set 0: the found rows; a batch set: the children of one
 * to-many include) and each to-one include joined into it. A joined
 * to-one row seen again in the same result (same key) is the same Lua
 * object. A to-many child row is appended to the list of its parent
 * object, found by the parent row index the core tagged it with; every
 * object starts with an empty list per to-many include, so "none" is {}.
 * What must outlive one statement (objects per row, to-one objects per
 * key) lives in a state table held by the op's holder (OUV_INC): each
 * batch statement runs in a protected call of its own.
 */
#include "lassoc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int nomem(sq_err *err) { return sq_err_set(err, SQ_ENOMEM, "out of memory"); }

static void *grow(sq_arena *a, void *old, int n, int *cap, size_t size) {
  if (n < *cap) return old;
  int nc = *cap ? *cap * 2 : 8;
  while (nc <= n) nc *= 2;
  void *p = sq_arena_alloc(a, (size_t)nc * size);
  if (!p) return NULL;
  if (old && n) memcpy(p, old, (size_t)n * size);
  *cap = nc;
  return p;
}

static char *arena_str(sq_arena *a, const char *s, size_t n) {
  char *p = sq_arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* The length of the table at idx when it is a list, else -1. */
static int list_len(lua_State *L, int idx) {
  int n = (int)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
  }
  return count == n ? n : -1;
}

static int direction(const char *s, int *desc) {
  if (!strcasecmp(s, "asc")) { *desc = 0; return 1; }
  if (!strcasecmp(s, "desc")) { *desc = 1; return 1; }
  return 0;
}

/* ---------------------------------------------------------------- */
/* includes                                                           */
/* ---------------------------------------------------------------- */

static int add_node(lsq_sel *x, sq_include *inc, const lsq_model *mod, int parent, sq_err *err) {
  lsq_incsink *k = &x->sink;
  lsq_incnode *n = grow(x->arena, k->nodes, k->nnodes, &k->capnodes, sizeof *n);
  if (!n) return -nomem(err);
  k->nodes = n;
  lsq_incnode *d = &n[k->nnodes];
  memset(d, 0, sizeof *d);
  d->inc = inc;
  d->mod = mod;
  d->parent = parent;
  if (inc) {
    d->to_many = sq_assoc_to_many(inc->assoc);
    d->as = inc->assoc->as;
    if (d->to_many) n[parent].many_kids = 1;
  }
  return k->nnodes++;
}

static const char *const include_opts[] = {
  "as", "model", "where", "attributes", "order", "limit", "offset", "required", "include", "unscoped", "paranoid", NULL,
};

/* The association an include item names, for the Model at midx; pushes
 * its info table. */
static int find_assoc(lsq_qb *b, int midx, int item, const char **as) {
  lua_State *L = b->L;
  lsq_model *pm = lua_touserdata(L, midx);
  if (lua_type(L, item) == LUA_TSTRING) {
    *as = lua_tostring(L, item);
    if (lsq_assoc_info(L, midx, *as) != LUA_TTABLE) {
      lua_pop(L, 1);
      return sq_err_set(b->err, SQ_EUSAGE, "%s: %s has no association '%.64s'", b->method, sq_model_name(pm->m), *as);
    }
    return SQ_OK;
  }
  lsq_model *tm = lsq_toudata(L, item, lsq_kind_model, sizeof *tm);
  if (!tm || !tm->m)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: include items are association names, Models or tables, got %s", b->method,
                      luaL_typename(L, item));
  lsq_model_db(L, midx);
  lsq_model_db(L, item);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!same)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: include of %s, a model of another db", b->method, sq_model_name(tm->m));
  int t = lsq_assoc_table(L, midx), found = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_getfield(L, -1, "target");
    int eq = lua_rawequal(L, -1, item);
    lua_pop(L, 1);
    if (eq) {
      if (found++) {
        lua_pop(L, 3);
        lua_settop(L, t - 1);
        return sq_err_set(b->err, SQ_EUSAGE, "%s: %s has several associations to %s; include it by name", b->method,
                          sq_model_name(pm->m), sq_model_name(tm->m));
      }
      lua_pushvalue(L, -1);
      lua_replace(L, t); /* keep it where the table was */
    }
    lua_pop(L, 1);
  }
  if (!found) {
    lua_settop(L, t - 1);
    return sq_err_set(b->err, SQ_EUSAGE, "%s: %s has no association to %s", b->method, sq_model_name(pm->m),
                      sq_model_name(tm->m));
  }
  lua_settop(L, t);
  lua_getfield(L, t, "as");
  *as = lua_tostring(L, -1);
  lua_pop(L, 1);
  return SQ_OK;
}

static int parse_includes(lsq_sel *x, lsq_qb *b, int midx, int idx, int parent, sq_include ***out, int *nout);

/* One include item at item for the model at midx. */
static int parse_include(lsq_sel *x, lsq_qb *b, int midx, int item, int parent, sq_include **out) {
  lua_State *L = b->L;
  int top = lua_gettop(L);
  int opts = 0, rc = SQ_OK;
  const char *as = NULL;
  if (lua_type(L, item) == LUA_TTABLE && !lsq_test_instance(L, item)) {
    opts = item;
    for (lua_pushnil(L); lua_next(L, opts);) {
      int ok = lua_type(L, -2) == LUA_TSTRING;
      for (int i = 0; ok && include_opts[i]; i++)
        if (!strcmp(include_opts[i], lua_tostring(L, -2))) ok = 2;
      if (lua_type(L, -2) == LUA_TNUMBER && lua_tointeger(L, -2) == 1) ok = 2;
      if (ok != 2) {
        int rc = sq_err_set(b->err, SQ_EUSAGE, "%s: unknown include option '%.64s'", b->method,
                            lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
        lua_settop(L, top);
        return rc;
      }
      lua_pop(L, 1);
    }
    if (lua_rawgeti(L, opts, 1) == LUA_TNIL) {
      lua_pop(L, 1);
      if (lua_getfield(L, opts, "as") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, opts, "model");
      }
    }
    item = lua_gettop(L);
  }
  if ((rc = find_assoc(b, midx, item, &as))) goto out;
  int info = lua_gettop(L);
  lsq_model *pm = lua_touserdata(L, midx);
  const sq_assoc *a = sq_model_find_assoc(pm->m, as, strlen(as));
  lua_getfield(L, info, "target");
  int tidx = lua_gettop(L);
  lsq_model *tm = lua_touserdata(L, tidx);
  if (!a || !tm) {
    rc = sq_err_set(b->err, SQ_EUSAGE, "%s: %s has no association '%.64s'", b->method, sq_model_name(pm->m), as);
    goto out;
  }
  sq_include *inc = sq_arena_alloc(x->arena, sizeof *inc);
  if (!inc) {
    rc = nomem(b->err);
    goto out;
  }
  sq_include_init(inc, a);
  int node = add_node(x, inc, tm, parent, b->err);
  if (node < 0) {
    rc = -node;
    goto out;
  }
  if (opts) {
    lsq_qb tb = {L, tm, b->scratch, b->err, b->method, 0, NULL};
    if (lua_getfield(L, opts, "where") != LUA_TNIL) rc = lsq_build_where(&tb, -1, &inc->where);
    lua_pop(L, 1);
    if (!rc && lua_getfield(L, opts, "attributes") != LUA_TNIL) {
      int *cols = NULL, n = 0;
      rc = lsq_build_cols(&tb, -1, "include attributes", &cols, &n);
      inc->attrs = cols;
      inc->nattrs = n;
    }
    lua_pop(L, 1);
    if (!rc && lua_getfield(L, opts, "order") != LUA_TNIL) {
      int oi = lua_gettop(L);
      int n = lua_type(L, oi) == LUA_TSTRING ? 1 : lua_type(L, oi) == LUA_TTABLE ? list_len(L, oi) : -1;
      /* { "id", "desc" }: one pair */
      int pair = 0, desc = 0;
      if (n == 2) {
        lua_rawgeti(L, oi, 2);
        pair = lua_type(L, -1) == LUA_TSTRING && direction(lua_tostring(L, -1), &desc) &&
               sq_model_find(tm->m, lua_tostring(L, -1), lua_rawlen(L, -1)) < 0;
        lua_pop(L, 1);
        if (pair) n = 1;
      }
      sq_xorder *ord = n > 0 ? sq_arena_alloc(x->arena, sizeof *ord * (size_t)n) : NULL;
      if (n <= 0) rc = sq_err_set(b->err, SQ_EUSAGE, "%s: include order must be a non-empty list", b->method);
      else if (!ord) rc = nomem(b->err);
      for (int i = 1; !rc && i <= n; i++) {
        int c = -1, d = 0;
        if (lua_type(L, oi) == LUA_TSTRING) {
          lua_pushvalue(L, oi);
        } else if (pair) {
          lua_rawgeti(L, oi, 1);
          d = desc;
        } else {
          lua_rawgeti(L, oi, i);
          if (lua_type(L, -1) == LUA_TTABLE) {
            int t = lua_gettop(L);
            lua_rawgeti(L, t, 2);
            if (!lua_isnil(L, -1) && (lua_type(L, -1) != LUA_TSTRING || !direction(lua_tostring(L, -1), &d)))
              rc = sq_err_set(b->err, SQ_EUSAGE, "%s: order direction must be \"asc\" or \"desc\"", b->method);
            lua_pop(L, 1);
            lua_rawgeti(L, t, 1);
            lua_remove(L, t);
          }
        }
        if (!rc && (c = lsq_col_index(&tb, -1, "include order")) < 0) rc = b->err->kind;
        lua_pop(L, 1);
        if (!rc) {
          ord[i - 1].x = sq_x_col(NULL, c);
          ord[i - 1].desc = d;
        }
      }
      inc->order = ord;
      inc->norder = rc ? 0 : n;
    }
    lua_settop(L, tidx);
    static const char *const nums[] = {"limit", "offset"};
    for (int i = 0; i < 2 && !rc; i++) {
      if (lua_getfield(L, opts, nums[i]) != LUA_TNIL) {
        int isnum = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isnum);
        if (!isnum || v < 0) rc = sq_err_set(b->err, SQ_EUSAGE, "%s: include %s must be a non-negative integer", b->method, nums[i]);
        else if (i == 0) inc->limit = v;
        else inc->offset = v;
      }
      lua_pop(L, 1);
    }
    static const char *const flags[] = {"required", "paranoid", "unscoped"};
    for (int i = 0; i < 3 && !rc; i++) {
      int t = lua_getfield(L, opts, flags[i]);
      if (t != LUA_TNIL && t != LUA_TBOOLEAN) rc = sq_err_set(b->err, SQ_EUSAGE, "%s: include %s must be a boolean", b->method, flags[i]);
      else if (t == LUA_TBOOLEAN && i == 0) inc->required = lua_toboolean(L, -1);
      else if (t == LUA_TBOOLEAN && i == 1) inc->paranoid = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
    if (!rc && lua_getfield(L, opts, "include") != LUA_TNIL)
      rc = parse_includes(x, b, tidx, lua_gettop(L), node, &inc->kids, &inc->nkids);
    lua_settop(L, tidx);
  }
  if (!rc && tm->scoped) {
    /* the target's default scope: its where ANDed in, unless unscoped = true (lscope.c) */
    int unscoped = opts && lua_getfield(L, opts, "unscoped") == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_settop(L, tidx);
    lsq_qb sb = {L, tm, b->scratch, b->err, b->method, 0, NULL};
    if (!unscoped) rc = lsq_scope_include_where(&sb, tidx, &inc->where);
  }
  *out = inc;
out:
  lua_settop(L, top);
  return rc;
}

static int parse_includes(lsq_sel *x, lsq_qb *b, int midx, int idx, int parent, sq_include ***out, int *nout) {
  lua_State *L = b->L;
  if (++b->depth > 16) return sq_err_set(b->err, SQ_EUSAGE, "%s: includes nested more than 16 levels deep", b->method);
  if (!lua_checkstack(L, 16)) return nomem(b->err);
  int n = 1, single = 1;
  if (lua_type(L, idx) == LUA_TTABLE && !lsq_test_instance(L, idx)) {
    /* a list of items, or one item table { "name", where = ... } */
    lua_rawgeti(L, idx, 1);
    int first_str = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    lua_getfield(L, idx, "as");
    lua_getfield(L, idx, "model");
    int named = !lua_isnil(L, -1) || !lua_isnil(L, -2);
    lua_pop(L, 2);
    int len = list_len(L, idx);
    if (named || (first_str && len != (int)lua_rawlen(L, idx)) || (first_str && len < 0)) {
      single = 1;
    } else {
      if (len <= 0) return sq_err_set(b->err, SQ_EUSAGE, "%s: include must be a non-empty list", b->method);
      n = len;
      single = 0;
    }
  }
  sq_include **incs = sq_arena_alloc(x->arena, sizeof *incs * (size_t)n);
  if (!incs) return nomem(b->err);
  for (int i = 0; i < n; i++) {
    if (!single) lua_rawgeti(L, idx, i + 1);
    else lua_pushvalue(L, idx);
    int rc = parse_include(x, b, midx, lua_gettop(L), parent, &incs[i]);
    lua_pop(L, 1);
    if (rc) return rc;
    for (int j = 0; j < i; j++)
      if (incs[j]->assoc == incs[i]->assoc)
        return sq_err_set(b->err, SQ_EUSAGE, "%s: '%s' is included twice", b->method, incs[i]->assoc->as);
  }
  b->depth--;
  *out = incs;
  *nout = n;
  return SQ_OK;
}

/* ---------------------------------------------------------------- */
/* the other options                                                  */
/* ---------------------------------------------------------------- */

/* The alias of attribute i, or NULL. */
static const char *attr_alias(const sq_select *s, int i) {
  const sq_xattr *a = &s->attrs[i];
  if (a->alias) return a->alias;
  if (a->x.kind == SQ_X_FN) return a->x.name;
  return NULL;
}

int lsq_sel_name(lsq_sel *x, lsq_qb *b, const char *k, size_t n, sq_operand *out, const char *what) {
  sq_select *s = &x->s;
  int c = sq_model_find(b->mod->m, k, n);
  if (c >= 0) {
    *out = sq_x_col(NULL, c);
    return SQ_OK;
  }
  for (int i = 0; i < s->nattrs; i++) {
    const char *al = attr_alias(s, i);
    if (al && strlen(al) == n && !memcmp(al, k, n)) {
      char *p = arena_str(x->arena, k, n);
      if (!p) return nomem(b->err);
      *out = sq_x_alias(p);
      return SQ_OK;
    }
  }
  if (memchr(k, '.', n)) {
    const sq_include *inc;
    int col;
    if (sq_select_resolve(s, k, n, &inc, &col, b->err)) return b->err->kind;
    *out = sq_x_col(inc, col);
    return SQ_OK;
  }
  char shown[72];
  snprintf(shown, sizeof shown, "%.*s", (int)(n > 64 ? 64 : n), k);
  return sq_err_set(b->err, SQ_EUSAGE, "%s: %s has no column '%s' (nor an attribute alias of that name)", what,
                    sq_model_name(b->mod->m), shown);
}

/* attributes = { "id", sqorm.fn.count("id", "n"), { expr, "alias" } } |
 * { exclude = { ... } } | { include = { extra, ... } } */
static int parse_attributes(lsq_sel *x, lsq_qb *b, int idx) {
  lua_State *L = b->L;
  sq_select *s = &x->s;
  if (lua_type(L, idx) != LUA_TTABLE)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: attributes must be a list, got %s", b->method, luaL_typename(L, idx));
  int ex = lua_getfield(L, idx, "exclude") != LUA_TNIL;
  int in = lua_getfield(L, idx, "include") != LUA_TNIL;
  int exidx = lua_gettop(L) - 1, inidx = lua_gettop(L);
  int ncols = b->mod->ncols;
  if (ex || in) {
    for (lua_pushnil(L); lua_next(L, idx);) {
      int ok = lua_type(L, -2) == LUA_TSTRING &&
               (!strcmp(lua_tostring(L, -2), "exclude") || !strcmp(lua_tostring(L, -2), "include"));
      lua_pop(L, 1);
      if (!ok) {
        lua_pop(L, 1);
        return sq_err_set(b->err, SQ_EUSAGE, "%s: attributes with exclude / include take no other keys", b->method);
      }
    }
    unsigned char *drop = sq_arena_alloc(x->arena, (size_t)ncols + 1);
    if (!drop) return nomem(b->err);
    memset(drop, 0, (size_t)ncols + 1);
    if (ex) {
      int *cols = NULL, n = 0;
      if (lsq_build_cols(b, exidx, "attributes.exclude", &cols, &n)) return b->err->kind;
      for (int i = 0; i < n; i++) drop[cols[i]] = 1;
    }
    int nin = in ? (lua_type(L, inidx) == LUA_TTABLE ? list_len(L, inidx) : -1) : 0;
    if (nin < 0) return sq_err_set(b->err, SQ_EUSAGE, "%s: attributes.include must be a list", b->method);
    sq_xattr *at = sq_arena_alloc(x->arena, sizeof *at * (size_t)(ncols + nin + 1));
    if (!at) return nomem(b->err);
    int k = 0;
    for (int c = 0; c < ncols; c++)
      if (!drop[c]) {
        at[k].x = sq_x_col(NULL, c);
        at[k++].alias = NULL;
      }
    s->attrs = at;
    s->nattrs = k;
    for (int i = 1; i <= nin; i++) {
      lua_rawgeti(L, inidx, i);
      int rc = lsq_attr(x, b, lua_gettop(L), &at[k]);
      lua_pop(L, 1);
      if (rc) return rc;
      s->nattrs = ++k;
    }
    if (k == 0) return sq_err_set(b->err, SQ_EUSAGE, "%s: attributes exclude every column", b->method);
    lua_pop(L, 2);
    return SQ_OK;
  }
  lua_pop(L, 2);
  int n = list_len(L, idx);
  if (n <= 0) return sq_err_set(b->err, SQ_EUSAGE, "%s: attributes must be a non-empty list of column names", b->method);
  sq_xattr *at = sq_arena_alloc(x->arena, sizeof *at * (size_t)n);
  if (!at) return nomem(b->err);
  s->attrs = at;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int rc = lsq_attr(x, b, lua_gettop(L), &at[i - 1]);
    lua_pop(L, 1);
    if (rc) return rc;
    s->nattrs = i;
  }
  return SQ_OK;
}

/* order = "coins" | { "coins", {"id", "desc"}, {"author.name", "desc"}, { fn..., "desc" } } | { "coins", "desc" } */
static int parse_order(lsq_sel *x, lsq_qb *b, int idx) {
  lua_State *L = b->L;
  sq_select *s = &x->s;
  int n;
  int pair = 0, pdesc = 0;
  if (lua_type(L, idx) == LUA_TSTRING || lsq_is_expr(L, idx)) {
    n = 1;
  } else if (lua_type(L, idx) == LUA_TTABLE) {
    n = list_len(L, idx);
    if (n == 2) {
      lua_rawgeti(L, idx, 2);
      pair = lua_type(L, -1) == LUA_TSTRING && direction(lua_tostring(L, -1), &pdesc) &&
             sq_model_find(b->mod->m, lua_tostring(L, -1), lua_rawlen(L, -1)) < 0;
      lua_pop(L, 1);
      if (pair) n = 1;
    }
  } else {
    return sq_err_set(b->err, SQ_EUSAGE, "%s: order must be a list such as { {\"coins\", \"desc\"} }, got %s",
                      b->method, luaL_typename(L, idx));
  }
  if (n <= 0)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: order must be a non-empty list such as { {\"coins\", \"desc\"} }", b->method);
  sq_xorder *ord = sq_arena_alloc(x->arena, sizeof *ord * (size_t)n);
  if (!ord) return nomem(b->err);
  for (int i = 1; i <= n; i++) {
    int d = 0, rc = SQ_OK;
    if (lua_type(L, idx) == LUA_TSTRING || lsq_is_expr(L, idx)) {
      lua_pushvalue(L, idx);
    } else if (pair) {
      lua_rawgeti(L, idx, 1);
      d = pdesc;
    } else {
      int t = lua_rawgeti(L, idx, i);
      if (t == LUA_TTABLE) {
        int ti = lua_gettop(L);
        int m = (int)lua_rawlen(L, ti);
        if (m < 1 || m > 2) {
          lua_pop(L, 1);
          return sq_err_set(b->err, SQ_EUSAGE, "%s: order item #%d must be {column} or {column, \"asc\"|\"desc\"}", b->method, i);
        }
        if (m == 2) {
          lua_rawgeti(L, ti, 2);
          if (lua_type(L, -1) != LUA_TSTRING || !direction(lua_tostring(L, -1), &d)) {
            lua_pop(L, 2);
            return sq_err_set(b->err, SQ_EUSAGE, "%s: order direction must be \"asc\" or \"desc\"", b->method);
          }
          lua_pop(L, 1);
        }
        lua_rawgeti(L, ti, 1);
        lua_remove(L, ti);
      } else if (t != LUA_TSTRING && !lsq_is_expr(L, -1)) {
        lua_pop(L, 1);
        return sq_err_set(b->err, SQ_EUSAGE, "%s: order item #%d must be a column name or {column, direction}, got %s",
                          b->method, i, lua_typename(L, t));
      }
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(L, -1, &kn);
      rc = lsq_sel_name(x, b, k, kn, &ord[i - 1].x, "order");
    } else {
      rc = lsq_operand(x, b, lua_gettop(L), &ord[i - 1].x, "order", 0);
    }
    lua_pop(L, 1);
    if (rc) return rc;
    ord[i - 1].desc = d;
  }
  s->order = ord;
  s->norder = n;
  return SQ_OK;
}

/* group = "guild_id" | { "guild_id", fn.date("created_at") } */
static int parse_group(lsq_sel *x, lsq_qb *b, int idx) {
  lua_State *L = b->L;
  int one = lua_type(L, idx) == LUA_TSTRING || lsq_is_expr(L, idx);
  int n = one ? 1 : lua_type(L, idx) == LUA_TTABLE ? list_len(L, idx) : -1;
  if (n <= 0) return sq_err_set(b->err, SQ_EUSAGE, "%s: group must be a non-empty list of columns or expressions", b->method);
  sq_operand *g = sq_arena_alloc(x->arena, sizeof *g * (size_t)n);
  if (!g) return nomem(b->err);
  for (int i = 1; i <= n; i++) {
    if (one) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, i);
    int rc;
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(L, -1, &kn);
      rc = lsq_sel_name(x, b, k, kn, &g[i - 1], "group");
    } else {
      rc = lsq_operand(x, b, lua_gettop(L), &g[i - 1], "group", 0);
    }
    lua_pop(L, 1);
    if (rc) return rc;
  }
  x->s.group = g;
  x->s.ngroup = n;
  return SQ_OK;
}

static const struct {
  const char *name;
  unsigned bit;
} sel_names[] = {
  {"where", QO_WHERE}, {"attributes", QO_ATTRIBUTES}, {"order", QO_ORDER}, {"limit", QO_LIMIT},
  {"offset", QO_OFFSET}, {"group", QO_GROUP}, {"having", QO_HAVING}, {"lock", QO_LOCK},
  {"raw", QO_RAW}, {"paranoid", QO_PARANOID}, {"include", SO_INCLUDE}, {"distinct", SO_DISTINCT},
  {"lazy", SO_LAZY}, {"unscoped", SO_UNSCOPED}, {"col", SO_COL}, {"use_primary", QO_PRIMARY},
  {NULL, 0},
};

static int nonneg(lsq_qb *b, int idx, const char *name, int64_t *out) {
  lua_State *L = b->L;
  int isnum = 0;
  lua_Integer i = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isnum) : 0;
  if (!isnum || i < 0)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a non-negative integer, got %s", b->method, name,
                      lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
  *out = i;
  return SQ_OK;
}

static int boolopt(lsq_qb *b, int idx, const char *name, int *out) {
  if (lua_type(b->L, idx) != LUA_TBOOLEAN)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a boolean, got %s", b->method, name, luaL_typename(b->L, idx));
  *out = lua_toboolean(b->L, idx);
  return SQ_OK;
}

void lsq_sel_init(lsq_sel *x, sq_arena *a, int kind, const lsq_model *mod) {
  memset(x, 0, sizeof *x);
  x->arena = a;
  sq_select_init(&x->s, kind, mod->m);
  x->sink.mode = SINK_LIST;
}

int lsq_build_select(lsq_sel *x, lsq_qb *b, int idx, unsigned allowed) {
  lua_State *L = b->L;
  int top = lua_gettop(L);
  b->ext = x;
  sq_err *err = b->err;
  if (add_node(x, NULL, b->mod, -1, err) < 0) return err->kind;
  if (idx == 0 || lua_isnoneornil(L, idx)) return SQ_OK;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return sq_err_set(err, SQ_EUSAGE, "%s: options must be a table, got %s", b->method, luaL_typename(L, idx));
  unsigned seen = 0;
  for (lua_pushnil(L); lua_next(L, idx);) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    unsigned bit = 0;
    for (int i = 0; k && sel_names[i].name; i++)
      if (k[0] == sel_names[i].name[0] && !strcmp(k, sel_names[i].name)) {
        bit = sel_names[i].bit;
        break; /* (the names are unique) */
      }
    if (!(bit & allowed)) {
      lua_settop(L, top);
      if (k) return sq_err_set(err, SQ_EUSAGE, "%s: unknown option '%.64s'", b->method, k);
      return sq_err_set(err, SQ_EUSAGE, "%s: option keys must be names, got a %s key", b->method, luaL_typename(L, -2));
    }
    seen |= bit;
    lua_pop(L, 1);
  }
  sq_select *s = &x->s;
  int rc = SQ_OK;
#define OPT(bit, name) ((seen & (bit)) && (lua_settop(L, top), lua_getfield(L, idx, name), 1))
  if (!rc && OPT(SO_INCLUDE, "include")) {
    lua_pushvalue(L, 1); /* the model */
    int midx = lua_gettop(L);
    rc = parse_includes(x, b, midx, top + 1, 0, &s->includes, &s->nincludes);
    b->depth = 0;
  }
  if (!rc && OPT(QO_WHERE, "where")) rc = lsq_build_where(b, top + 1, &s->where);
  if (!rc && OPT(QO_ATTRIBUTES, "attributes")) rc = parse_attributes(x, b, top + 1);
  if (!rc && OPT(QO_GROUP, "group")) rc = parse_group(x, b, top + 1);
  if (!rc && OPT(QO_HAVING, "having")) {
    if (lua_type(L, top + 1) == LUA_TTABLE && !lsq_test_op(L, top + 1) && list_len(L, top + 1) == 0)
      rc = sq_err_set(err, SQ_EUSAGE, "%s: having is empty; omit having when it has no condition", b->method);
    else rc = lsq_build_where(b, top + 1, &s->having);
  }
  if (!rc && OPT(QO_ORDER, "order")) rc = parse_order(x, b, top + 1);
  if (!rc && OPT(QO_LIMIT, "limit")) rc = nonneg(b, top + 1, "limit", &s->limit);
  if (!rc && OPT(QO_OFFSET, "offset")) rc = nonneg(b, top + 1, "offset", &s->offset);
  if (!rc && OPT(QO_LOCK, "lock")) {
    if (lua_type(L, top + 1) == LUA_TBOOLEAN) s->lock = lua_toboolean(L, top + 1) ? SQ_LOCK_UPDATE : SQ_LOCK_NONE;
    else if (lua_type(L, top + 1) == LUA_TSTRING && !strcmp(lua_tostring(L, top + 1), "update")) s->lock = SQ_LOCK_UPDATE;
    else if (lua_type(L, top + 1) == LUA_TSTRING && !strcmp(lua_tostring(L, top + 1), "share")) s->lock = SQ_LOCK_SHARE;
    else rc = sq_err_set(err, SQ_EUSAGE, "%s: lock must be \"update\" or \"share\"", b->method);
  }
  if (!rc && OPT(QO_RAW, "raw")) rc = boolopt(b, top + 1, "raw", &x->sink.raw);
  if (!rc && OPT(QO_PARANOID, "paranoid")) rc = boolopt(b, top + 1, "paranoid", &s->paranoid);
  if (!rc && OPT(SO_DISTINCT, "distinct")) rc = boolopt(b, top + 1, "distinct", &s->distinct);
  if (!rc && OPT(QO_PRIMARY, "use_primary")) rc = boolopt(b, top + 1, "use_primary", &x->use_primary);
  if (!rc && OPT(SO_UNSCOPED, "unscoped")) rc = boolopt(b, top + 1, "unscoped", &x->unscoped);
  if (!rc && OPT(SO_LAZY, "lazy")) {
    if (lua_type(L, top + 1) == LUA_TSTRING && !strcmp(lua_tostring(L, top + 1), "raise")) x->lazy = 1;
    else if (lua_type(L, top + 1) == LUA_TBOOLEAN && lua_toboolean(L, top + 1)) x->lazy = 0;
    else rc = sq_err_set(err, SQ_EUSAGE, "%s: lazy must be \"raise\" or true", b->method);
  }
  if (!rc && OPT(SO_COL, "col")) {
    sq_operand *o = sq_arena_alloc(x->arena, sizeof *o);
    if (!o) rc = nomem(err);
    else if (lua_type(L, top + 1) == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(L, top + 1, &kn);
      rc = lsq_sel_name(x, b, k, kn, o, "col");
    } else {
      rc = lsq_operand(x, b, top + 1, o, "col", 0);
    }
    s->count_col = o;
  }
#undef OPT
  lua_settop(L, top);
  return rc;
}

/* ---------------------------------------------------------------- */
/* the part 1 form                                                    */
/* ---------------------------------------------------------------- */

static int agg_fn(const char *name) {
  static const char *const names[] = {"", "count", "sum", "min", "max", "avg"};
  for (int i = 1; i < 6; i++)
    if (!strcmp(names[i], name)) return i;
  return 0;
}

static int plain_expr(const sq_expr *e) {
  if (!e) return 1;
  if (e->lhs || e->rhs || e->sub || e->assoc || e->op == SQ_OP_EXISTS || e->op == SQ_OP_NOT_EXISTS || e->op == SQ_OP_HAS)
    return 0;
  for (int i = 0; i < e->nkids; i++)
    if (!plain_expr(e->kids[i])) return 0;
  return 1;
}

int lsq_sel_query(const lsq_sel *x, sq_query *q) {
  const sq_select *s = &x->s;
  if (s->nincludes || s->distinct || s->count_col || !plain_expr(s->where) || !plain_expr(s->having)) return 0;
  sq_query_init(q, s->kind, s->model);
  q->where = s->where;
  q->having = s->having;
  q->paranoid = s->paranoid;
  q->limit = s->limit;
  q->offset = s->offset;
  q->lock = s->lock;
  if (s->attrs) {
    sq_attr *at = sq_arena_alloc(x->arena, sizeof *at * (size_t)s->nattrs);
    if (!at) return 0;
    for (int i = 0; i < s->nattrs; i++) {
      const sq_operand *o = &s->attrs[i].x;
      at[i].alias = s->attrs[i].alias;
      at[i].fn = SQ_FN_NONE;
      if (o->kind == SQ_X_COL && !o->inc) {
        at[i].col = o->col;
      } else if (o->kind == SQ_X_FN && !o->distinct && o->nargs == 1 && agg_fn(o->name) &&
                 ((o->args[0].kind == SQ_X_COL && !o->args[0].inc) ||
                  (o->args[0].kind == SQ_X_STAR && agg_fn(o->name) == SQ_FN_COUNT))) {
        at[i].fn = agg_fn(o->name);
        at[i].col = o->args[0].kind == SQ_X_STAR ? -1 : o->args[0].col;
      } else {
        return 0;
      }
    }
    q->attrs = at;
    q->nattrs = s->nattrs;
  }
  if (s->ngroup) {
    int *g = sq_arena_alloc(x->arena, sizeof *g * (size_t)s->ngroup);
    if (!g) return 0;
    for (int i = 0; i < s->ngroup; i++) {
      if (s->group[i].kind != SQ_X_COL || s->group[i].inc) return 0;
      g[i] = s->group[i].col;
    }
    q->group = g;
    q->ngroup = s->ngroup;
  }
  if (s->norder) {
    sq_order *o = sq_arena_alloc(x->arena, sizeof *o * (size_t)s->norder);
    if (!o) return 0;
    for (int i = 0; i < s->norder; i++) {
      if (s->order[i].x.kind != SQ_X_COL || s->order[i].x.inc) return 0;
      o[i].col = s->order[i].x.col;
      o[i].desc = s->order[i].desc;
    }
    q->order = o;
    q->norder = s->norder;
  }
  return 1;
}

/* ---------------------------------------------------------------- */
/* the sink                                                           */
/* ---------------------------------------------------------------- */

static int node_of(const lsq_incsink *k, const sq_include *inc) {
  if (!inc) return 0;
  for (int i = 1; i < k->nnodes; i++)
    if (k->nodes[i].inc == inc) return i;
  return -1;
}

/* Pushes the state table (made on first use); returns its index. */
static int push_state(lua_State *L, lsq_op *h) {
  if (lua_getiuservalue(L, h->hidx, OUV_INC) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 2, 2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, h->hidx, OUV_INC);
  }
  return lua_gettop(L);
}

/* Pushes state[field][i], made when missing. */
static int push_sub(lua_State *L, int state, int field, int i) {
  if (lua_rawgeti(L, state, field) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, state, field);
  }
  if (lua_rawgeti(L, -1, i + 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, i + 1);
  }
  lua_remove(L, -2);
  return lua_gettop(L);
}

enum { ST_OBJS = 1, ST_DEDUP = 2 };

/* The array part a loaded to-many list starts with. */
#define LIST_START 4

int lsq_incsink_columns(lsq_op *h, int set, int ncols, const sq_column *cols, sq_err *err) {
  lua_State *L = h->L;
  lsq_incsink *k = h->inc;
  sq_arena *a = sq_oper_arena(h->op);
  const sq_oper_setinfo *si = sq_oper_set_info(h->op, set);
  if (!si) return sq_err_set(err, SQ_EINTERNAL, "include sink: no description of result set %d", set);
  if (!lua_checkstack(L, ncols + 8 * k->nnodes + 16)) return nomem(err);
  if (set >= k->capsets) {
    int cap = k->capsets;
    int64_t *r = grow(a, k->setrows, k->capsets, &cap, sizeof *r);
    if (!r) return nomem(err);
    memset(r + k->capsets, 0, sizeof *r * (size_t)(cap - k->capsets));
    k->setrows = r;
    k->capsets = cap;
  }
  if (ncols > k->capcols) {
    k->colnode = sq_arena_alloc(a, sizeof(int) * (size_t)ncols);
    k->colcol = sq_arena_alloc(a, sizeof(int) * (size_t)ncols);
    if (!k->colnode || !k->colcol) return nomem(err);
    k->capcols = ncols;
  }
  if (!k->node_imt) {
    size_t nn = (size_t)k->nnodes;
    int *p = sq_arena_alloc(a, sizeof(int) * nn * 10);
    if (!p) return nomem(err);
    k->node_as = p + 8 * nn;
    k->node_nhash = p + 9 * nn;
    k->node_imt = p;
    k->node_cn = p + nn;
    k->node_objs = p + 2 * nn;
    k->node_dedup = p + 3 * nn;
    k->node_pk = p + 4 * nn;
    k->node_inset = p + 5 * nn;
    k->obj = p + 6 * nn;
    k->fresh = p + 7 * nn;
  }
  k->set = set;
  k->ncols = ncols;
  int base = set == 0 ? 0 : node_of(k, si->inc);
  k->base = base;
  if (base < 0) return sq_err_set(err, SQ_EINTERNAL, "include sink: unknown include in result set %d", set);
  k->state = push_state(L, h);
  for (int i = 0; i < k->nnodes; i++) {
    k->node_inset[i] = 0;
    k->node_pk[i] = -1;
  }
  k->node_inset[base] = 1;
  /* result column names (for expression attributes and raw rows) */
  lua_createtable(L, ncols, 0);
  k->names = lua_gettop(L);
  for (int i = 0; i < ncols && i < si->ncols; i++) {
    const sq_rcol *rc = &si->cols[i];
    int node = rc->through ? -1 : rc->inc ? node_of(k, rc->inc) : base;
    k->colnode[i] = node;
    k->colcol[i] = rc->through ? -1 : rc->col;
    if (node >= 0) {
      k->node_inset[node] = 1;
      const sq_model *m = k->nodes[node].mod->m;
      int pkc = -1;
      const int *pk;
      if (sq_model_pk(m, &pk) == 1) pkc = pk[0];
      if (rc->col >= 0 && rc->col == pkc) k->node_pk[node] = i;
    }
    if (rc->col < 0) {
      /* the driver's name is the alias */
      lua_pushlstring(L, cols[i].name, cols[i].name_len);
      lua_rawseti(L, k->names, i + 1);
    }
  }
  for (int i = si->ncols; i < ncols; i++) k->colnode[i] = -1;
  /* the association names as Lua strings, pushed once per statement */
  for (int i = 0; i < k->nnodes; i++) {
    k->node_nhash[i] = 0;
    k->node_as[i] = 0;
    if (k->nodes[i].as) {
      lua_pushstring(L, k->nodes[i].as);
      k->node_as[i] = lua_gettop(L);
    }
  }
  for (int i = 1; i < k->nnodes; i++)
    if (k->nodes[i].parent >= 0) k->node_nhash[k->nodes[i].parent]++;
  k->parent_objs = 0;
  if (set > 0 && k->nodes[base].parent >= 0) k->parent_objs = push_sub(L, k->state, ST_OBJS, k->nodes[base].parent);
  for (int i = 0; i < k->nnodes; i++) {
    k->node_imt[i] = k->node_cn[i] = k->node_objs[i] = k->node_dedup[i] = 0;
    if (!k->node_inset[i]) continue;
    lsq_push_model(L, k->nodes[i].mod);
    int m = lua_gettop(L);
    lua_getiuservalue(L, m, MUV_IMT);
    k->node_imt[i] = lua_gettop(L);
    lua_rawgeti(L, k->node_imt[i], IMT_COLNAMES);
    k->node_cn[i] = lua_gettop(L);
    if (k->nodes[i].many_kids) k->node_objs[i] = push_sub(L, k->state, ST_OBJS, i);
    if (i != base && !k->nodes[i].to_many) k->node_dedup[i] = push_sub(L, k->state, ST_DEDUP, i);
  }
  return SQ_OK;
}

/* Pushes the object of node for this row. */
static void build_obj(lsq_incsink *k, lua_State *L, int node, int ncols, const sq_value *vals) {
  const lsq_model *mod = k->nodes[node].mod;
  /* sized at once: the columns, and a field per include below it */
  if (k->raw) lua_createtable(L, 0, mod->ncols + k->node_nhash[node]);
  else {
    lua_createtable(L, mod->ncols, k->node_nhash[node]);
    lua_pushvalue(L, k->node_imt[node]);
    lua_setmetatable(L, -2);
  }
  for (int i = 0; i < ncols; i++) {
    if (k->colnode[i] != node || vals[i].type == SQ_VNULL) continue;
    int c = k->colcol[i];
    if (c >= 0 && c < mod->ncols) {
      if (k->raw) {
        lua_rawgeti(L, k->node_cn[node], c + 1);
        lsq_push_colval(L, mod->cols[c], &vals[i]);
        lua_rawset(L, -3);
      } else {
        lsq_push_colval(L, mod->cols[c], &vals[i]);
        lua_rawseti(L, -2, c + 1);
      }
    } else {
      lua_rawgeti(L, k->names, i + 1);
      lsq_push_value(L, &vals[i]);
      lua_rawset(L, -3);
    }
  }
  /* every to-many include of this node starts as an empty list */
  for (int j = 1; j < k->nnodes; j++)
    if (k->nodes[j].parent == node && k->nodes[j].to_many) {
      lua_pushvalue(L, k->node_as[j]);
      lua_createtable(L, LIST_START, 0); /* most lists are short: no resize for the first few */
      lua_rawset(L, -3);
    }
  if (k->mark && !k->raw) lsq_assoc_mark_raise(L, -1, k->mark);
}

int lsq_incsink_row(lsq_op *h, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err) {
  lua_State *L = h->L;
  lsq_incsink *k = h->inc;
  (void)err;
  if (ncols > k->ncols) ncols = k->ncols;
  int top = lua_gettop(L);
  int64_t row = k->setrows[set]++;
  int base = k->base;
  for (int i = 0; i < k->nnodes; i++) {
    k->obj[i] = 0;
    k->fresh[i] = 0;
  }
  for (int i = 0; i < k->nnodes; i++) {
    if (!k->node_inset[i]) continue;
    if (i != base && k->node_dedup[i] && k->node_pk[i] >= 0 && vals[k->node_pk[i]].type != SQ_VNULL) {
      lsq_push_colval(L, k->nodes[i].mod->cols[k->colcol[k->node_pk[i]]], &vals[k->node_pk[i]]);
      if (lua_rawget(L, k->node_dedup[i]) != LUA_TNIL) {
        k->obj[i] = lua_gettop(L);
        continue;
      }
      lua_pop(L, 1);
    }
    int any = 0;
    for (int c = 0; c < ncols; c++)
      if (k->colnode[c] == i && vals[c].type != SQ_VNULL) any = 1;
    if (!any && i != base) continue;
    build_obj(k, L, i, ncols, vals);
    k->obj[i] = lua_gettop(L);
    k->fresh[i] = 1;
    if (i != base && k->node_dedup[i] && k->node_pk[i] >= 0) {
      lsq_push_colval(L, k->nodes[i].mod->cols[k->colcol[k->node_pk[i]]], &vals[k->node_pk[i]]);
      lua_pushvalue(L, k->obj[i]);
      lua_rawset(L, k->node_dedup[i]);
    }
  }
  /* link the joined to-one objects to their parents */
  for (int i = 0; i < k->nnodes; i++) {
    if (!k->node_inset[i] || i == base) continue;
    int p = k->nodes[i].parent;
    if (p < 0 || !k->obj[p] || !k->fresh[p]) continue;
    if (k->obj[i]) {
      lua_pushvalue(L, k->node_as[i]);
      lua_pushvalue(L, k->obj[i]);
      lua_rawset(L, k->obj[p]);
    } else if (!k->raw) {
      lsq_assoc_mark_nil(L, k->obj[p], k->nodes[i].as);
    }
  }
  /* objects whose to-many children come in later sets */
  for (int i = 0; i < k->nnodes; i++)
    if (k->node_inset[i] && k->node_objs[i]) {
      if (k->obj[i]) lua_pushvalue(L, k->obj[i]);
      else lua_pushboolean(L, 0);
      lua_rawseti(L, k->node_objs[i], (lua_Integer)row + 1);
    }
  if (set == 0) {
    lua_pushvalue(L, k->obj[0]);
    if (k->mode == SINK_ONE) {
      if (k->n++ == 0) lua_setiuservalue(L, h->hidx, OUV_OUT);
      else lua_pop(L, 1);
    } else {
      if (lua_getiuservalue(L, h->hidx, OUV_OUT) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 8, 0);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, h->hidx, OUV_OUT);
      }
      lua_insert(L, -2);
      lua_rawseti(L, -2, ++k->n);
    }
  } else if (parent >= 0) {
    /* append to the parent object's list */
    if (k->parent_objs && lua_rawgeti(L, k->parent_objs, (lua_Integer)parent + 1) == LUA_TTABLE) {
      lua_pushvalue(L, k->node_as[base]);
      if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_pushvalue(L, k->obj[base]);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      }
    }
  }
  lua_settop(L, top);
  return 0;
}
