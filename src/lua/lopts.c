/*
 * lopts.c - the options tables of the model methods, strict (an unknown
 * key is kind usage): where (lwhere.c), attributes, order, limit,
 * offset, group, having, lock, raw, paranoid, ... into an sq_query whose
 * tree lives in the call's arena; plus the fields option and the plain
 * strict check of an options table.
 */
#include "lmodel.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int nomem(lsq_qb *b) { return sq_err_set(b->err, SQ_ENOMEM, "out of memory"); }

/* ---------------------------------------------------------------- */
/* query options                                                      */
/* ---------------------------------------------------------------- */

static const struct {
  const char *name;
  unsigned bit;
} opt_names[] = {
  {"where", QO_WHERE}, {"attributes", QO_ATTRIBUTES}, {"order", QO_ORDER}, {"limit", QO_LIMIT},
  {"offset", QO_OFFSET}, {"group", QO_GROUP}, {"having", QO_HAVING}, {"lock", QO_LOCK},
  {"raw", QO_RAW}, {"paranoid", QO_PARANOID}, {"all", QO_ALL}, {"force", QO_FORCE},
  {"by", QO_BY}, {"defaults", QO_DEFAULTS}, {"batch_size", QO_BATCH}, {"conflict", QO_CONFLICT},
  {"fields", QO_FIELDS}, {"use_primary", QO_PRIMARY},
  {NULL, 0},
};

/* A non-negative integer option (floats with an integral value pass:
 * JSON decoders make floats). */
static int nonneg(lsq_qb *b, int idx, const char *name, int64_t *out) {
  lua_State *L = b->L;
  int ok = 0;
  lua_Integer i = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    int isnum;
    i = lua_tointegerx(L, idx, &isnum);
    ok = isnum && i >= 0;
  }
  if (!ok) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a non-negative integer, got %s", b->method, name,
                        lua_tostring(L, idx));
    return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a non-negative integer, got %s", b->method, name,
                      luaL_typename(L, idx));
  }
  *out = i;
  return SQ_OK;
}

static int boolopt(lsq_qb *b, int idx, const char *name, int *out) {
  if (lua_type(b->L, idx) != LUA_TBOOLEAN)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a boolean, got %s", b->method, name, luaL_typename(b->L, idx));
  *out = lua_toboolean(b->L, idx);
  return SQ_OK;
}

/* 1 when s is "asc"/"desc" in any case; *desc set. */
static int direction(const char *s, int *desc) {
  if (!strcasecmp(s, "asc")) { *desc = 0; return 1; }
  if (!strcasecmp(s, "desc")) { *desc = 1; return 1; }
  return 0;
}

/* The length of the table at idx when it is a list (keys 1..n and
 * nothing else, so a decoded JSON object is never taken for one), else
 * -1. */
static int list_len(lua_State *L, int idx) {
  int n = (int)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
  }
  return count == n ? n : -1;
}

/* order = "coins" | { "coins", {"id", "desc"} } | { {"coins", "desc"} }
 * | { "coins", "desc" } (one pair) */
static int parse_order(lsq_qb *b, int idx, sq_query *q) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  sq_order *ord;
  if (lua_type(L, idx) == LUA_TSTRING) {
    if (!(ord = sq_arena_alloc(b->scratch->arena, sizeof *ord))) return nomem(b);
    if ((ord->col = lsq_col_index(b, idx, "order")) < 0) return b->err->kind;
    ord->desc = 0;
    q->order = ord;
    q->norder = 1;
    return SQ_OK;
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: order must be a list such as { {\"coins\", \"desc\"} }, got %s", b->method,
                      luaL_typename(L, idx));
  int n = list_len(L, idx);
  if (n <= 0)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: order must be a non-empty list such as { {\"coins\", \"desc\"} }", b->method);
  /* { "coins", "desc" }: a single pair, when the second is no column */
  if (n == 2) {
    lua_rawgeti(L, idx, 1);
    lua_rawgeti(L, idx, 2);
    int desc;
    int pair = lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING &&
               direction(lua_tostring(L, -1), &desc) &&
               sq_model_find(b->mod->m, lua_tostring(L, -1), lua_rawlen(L, -1)) < 0;
    if (pair) {
      if (!(ord = sq_arena_alloc(b->scratch->arena, sizeof *ord))) return nomem(b);
      ord->col = lsq_col_index(b, -2, "order");
      lua_pop(L, 2);
      if (ord->col < 0) return b->err->kind;
      ord->desc = desc;
      q->order = ord;
      q->norder = 1;
      return SQ_OK;
    }
    lua_pop(L, 2);
  }
  if (!(ord = sq_arena_alloc(b->scratch->arena, sizeof *ord * (size_t)n))) return nomem(b);
  for (int i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, idx, i);
    ord[i - 1].desc = 0;
    if (t == LUA_TSTRING) {
      ord[i - 1].col = lsq_col_index(b, -1, "order");
    } else if (t == LUA_TTABLE) {
      int m = (int)lua_rawlen(L, -1);
      if (m < 1 || m > 2) {
        lua_pop(L, 1);
        return sq_err_set(b->err, SQ_EUSAGE, "%s: order item #%d must be {column} or {column, \"asc\"|\"desc\"}", b->method, i);
      }
      lua_rawgeti(L, -1, 1);
      ord[i - 1].col = lsq_col_index(b, -1, "order");
      lua_pop(L, 1);
      if (ord[i - 1].col >= 0 && m == 2) {
        lua_rawgeti(L, -1, 2);
        if (lua_type(L, -1) != LUA_TSTRING || !direction(lua_tostring(L, -1), &ord[i - 1].desc)) {
          lua_pop(L, 2);
          return sq_err_set(b->err, SQ_EUSAGE, "%s: order direction must be \"asc\" or \"desc\"", b->method);
        }
        lua_pop(L, 1);
      }
    } else {
      lua_pop(L, 1);
      return sq_err_set(b->err, SQ_EUSAGE, "%s: order item #%d must be a column name or {column, direction}, got %s",
                        b->method, i, lua_typename(L, t));
    }
    lua_pop(L, 1);
    if (ord[i - 1].col < 0) return b->err->kind;
  }
  q->order = ord;
  q->norder = n;
  return SQ_OK;
}

/* A list of column names (or one name) into an int array. */
static int col_list(lsq_qb *b, int idx, const char *what, int **out, int *nout) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    int *cols = sq_arena_alloc(b->scratch->arena, sizeof *cols);
    if (!cols) return nomem(b);
    if ((cols[0] = lsq_col_index(b, idx, what)) < 0) return b->err->kind;
    *out = cols;
    *nout = 1;
    return SQ_OK;
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a list of column names, got %s", b->method, what, luaL_typename(L, idx));
  int n = list_len(L, idx);
  if (n <= 0)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: %s must be a non-empty list of column names", b->method, what);
  int *cols = sq_arena_alloc(b->scratch->arena, sizeof *cols * (size_t)n);
  if (!cols) return nomem(b);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    cols[i - 1] = lsq_col_index(b, -1, what);
    lua_pop(L, 1);
    if (cols[i - 1] < 0) return b->err->kind;
    for (int j = 0; j < i - 1; j++)
      if (cols[j] == cols[i - 1])
        return sq_err_set(b->err, SQ_EUSAGE, "%s: %s names column '%s' twice", b->method, what,
                          sq_model_col(b->mod->m, cols[j])->name);
  }
  *out = cols;
  *nout = n;
  return SQ_OK;
}

/* attributes = { "id", "coins", sqorm.fn.count("id", "n") } */
static int parse_attributes(lsq_qb *b, int idx, sq_query *q) {
  lua_State *L = b->L;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: attributes must be a list of column names, got %s", b->method,
                      luaL_typename(L, idx));
  int n = list_len(L, idx);
  if (n <= 0)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: attributes must be a non-empty list of column names", b->method);
  sq_attr *at = sq_arena_alloc(b->scratch->arena, sizeof *at * (size_t)n);
  if (!at) return nomem(b);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int fk = lsq_fn_kind(L, -1);
    at[i - 1].alias = NULL;
    at[i - 1].fn = SQ_FN_NONE;
    if (fk && fk < LSQ_FN_NOW) {
      at[i - 1].fn = fk;
      lua_getiuservalue(L, -1, 1);
      at[i - 1].col = lua_isnil(L, -1) ? -1 : lsq_col_index(b, -1, "attributes");
      int bad = !lua_isnil(L, -1) && at[i - 1].col < 0;
      lua_pop(L, 1);
      if (bad) {
        lua_pop(L, 1);
        return b->err->kind;
      }
      lua_getiuservalue(L, -1, 2);
      if (lua_type(L, -1) == LUA_TSTRING) {
        size_t an;
        const char *a = lua_tolstring(L, -1, &an);
        char *p = sq_arena_alloc(b->scratch->arena, an + 1);
        if (!p) {
          lua_pop(L, 2);
          return nomem(b);
        }
        memcpy(p, a, an + 1);
        at[i - 1].alias = p;
      }
      lua_pop(L, 1);
    } else {
      at[i - 1].col = lsq_col_index(b, -1, "attributes");
    }
    lua_pop(L, 1);
    if (at[i - 1].col < 0 && at[i - 1].fn == SQ_FN_NONE) return b->err->kind;
  }
  q->attrs = at;
  q->nattrs = n;
  return SQ_OK;
}

int lsq_build_options(lsq_qb *b, int idx, unsigned allowed, sq_query *q, lsq_qopts *o) {
  lua_State *L = b->L;
  int top = lua_gettop(L);
  memset(o, 0, sizeof *o);
  if (!lsq_scratch_arena(b->scratch, b->err)) return b->err->kind;
  if (idx == 0 || lua_isnoneornil(L, idx)) return SQ_OK;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return sq_err_set(b->err, SQ_EUSAGE, "%s: options must be a table, got %s", b->method, luaL_typename(L, idx));
  int rc = SQ_OK;
  lua_pushnil(L);
  while (!rc && lua_next(L, idx)) {
    int v = lua_gettop(L);
    unsigned bit = 0;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (int i = 0; k && opt_names[i].name; i++)
      if (k[0] == opt_names[i].name[0] && !strcmp(k, opt_names[i].name)) {
        bit = opt_names[i].bit;
        break;
      }
    if (!bit && k && (allowed & QO_ALL) && !strcmp(k, "individual_hooks")) {
      /* hooks (lua/sqorm/hooks.lua) take it on the class writes of a
       * model with hooks; on one without, there is nothing to run */
      if (lua_type(L, v) != LUA_TBOOLEAN)
        rc = sq_err_set(b->err, SQ_EUSAGE, "%s: individual_hooks must be a boolean", b->method);
      lua_pop(L, 1);
      if (rc) break;
      continue;
    }
    if (!(bit & allowed)) {
      if (k)
        rc = sq_err_set(b->err, SQ_EUSAGE, "%s: unknown option '%.64s'", b->method, k);
      else
        rc = sq_err_set(b->err, SQ_EUSAGE, "%s: option keys must be names, got a %s key", b->method, luaL_typename(L, -2));
      lua_pop(L, 1);
      break;
    }
    switch (bit) {
    case QO_WHERE:
      rc = lsq_build_where(b, v, &q->where);
      o->has_where = q->where != NULL;
      break;
    case QO_ATTRIBUTES: rc = parse_attributes(b, v, q); break;
    case QO_ORDER: rc = parse_order(b, v, q); break;
    case QO_LIMIT: rc = nonneg(b, v, "limit", &q->limit); break;
    case QO_OFFSET: rc = nonneg(b, v, "offset", &q->offset); break;
    case QO_GROUP: {
      int *g = NULL, ng = 0;
      rc = col_list(b, v, "group", &g, &ng);
      q->group = g;
      q->ngroup = ng;
      break;
    }
    case QO_HAVING:
      if (lua_type(L, v) == LUA_TTABLE && !lsq_test_op(L, v) && list_len(L, v) == 0)
        rc = sq_err_set(b->err, SQ_EUSAGE, "%s: having is empty; omit having when it has no condition", b->method);
      else rc = lsq_build_where(b, v, &q->having);
      break;
    case QO_LOCK:
      if (lua_type(L, v) == LUA_TBOOLEAN) q->lock = lua_toboolean(L, v) ? SQ_LOCK_UPDATE : SQ_LOCK_NONE;
      else if (lua_type(L, v) == LUA_TSTRING && !strcmp(lua_tostring(L, v), "update")) q->lock = SQ_LOCK_UPDATE;
      else if (lua_type(L, v) == LUA_TSTRING && !strcmp(lua_tostring(L, v), "share")) q->lock = SQ_LOCK_SHARE;
      else rc = sq_err_set(b->err, SQ_EUSAGE, "%s: lock must be \"update\" or \"share\"", b->method);
      break;
    case QO_RAW: rc = boolopt(b, v, "raw", &o->raw); break;
    case QO_PARANOID: rc = boolopt(b, v, "paranoid", &q->paranoid); break;
    case QO_ALL: rc = boolopt(b, v, "all", &o->all); break;
    case QO_FORCE: rc = boolopt(b, v, "force", &o->force); break;
    case QO_BY:
      if (lua_type(L, v) != LUA_TNUMBER) rc = sq_err_set(b->err, SQ_EUSAGE, "%s: by must be a number", b->method);
      o->by_idx = v;
      break;
    case QO_DEFAULTS:
      if (lua_type(L, v) != LUA_TTABLE) rc = sq_err_set(b->err, SQ_EUSAGE, "%s: defaults must be a table", b->method);
      o->defaults_idx = v;
      break;
    case QO_FIELDS: o->fields_idx = v; break;
    case QO_PRIMARY: rc = boolopt(b, v, "use_primary", &o->use_primary); break;
    case QO_CONFLICT: o->conflict_idx = v; break;
    case QO_BATCH: {
      int64_t n = 0;
      rc = nonneg(b, v, "batch_size", &n);
      if (!rc && (n < 1 || n > 1000000)) rc = sq_err_set(b->err, SQ_EUSAGE, "%s: batch_size must be 1..1000000", b->method);
      o->batch = (int)n;
      break;
    }
    default: break;
    }
    /* values referenced by index (by, defaults, ...) stay alive in the
     * options table; only the key stays on the stack for lua_next */
    lua_settop(L, v - 1);
  }
  if (rc) lua_settop(L, top);
  /* o->*_idx point at stack slots that were popped: re-fetch them */
  if (!rc && o->by_idx) {
    lua_getfield(L, idx, "by");
    o->by_idx = lua_gettop(L);
  }
  if (!rc && o->defaults_idx) {
    lua_getfield(L, idx, "defaults");
    o->defaults_idx = lua_gettop(L);
  }
  if (!rc && o->fields_idx) {
    lua_getfield(L, idx, "fields");
    o->fields_idx = lua_gettop(L);
  }
  if (!rc && o->conflict_idx) {
    lua_getfield(L, idx, "conflict");
    o->conflict_idx = lua_gettop(L);
  }
  return rc;
}

int lsq_build_cols(lsq_qb *b, int idx, const char *what, int **out, int *nout) {
  return col_list(b, idx, what, out, nout);
}

void lsq_check_opts(lua_State *L, int idx, const char *method, const char *const *allowed) {
  if (lua_isnoneornil(L, idx)) return;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) lsq_usage(L, "%s: options must be a table, got %s", method, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      lsq_usage(L, "%s: option keys must be names, got a %s key", method, luaL_typename(L, -1));
    const char *k = lua_tostring(L, -1);
    int ok = 0;
    for (int i = 0; allowed && allowed[i] && !ok; i++) ok = !strcmp(k, allowed[i]);
    if (!ok) lsq_usage(L, "%s: unknown option '%.64s'", method, k);
  }
}

/* Parses a `fields` option (a list of column names, or one name) at idx
 * into mask (a flag per column). */
static int fields_mask(lua_State *L, const lsq_model *mod, int idx, const char *method, unsigned char *mask, sq_err *err) {
  idx = lua_absindex(L, idx);
  memset(mask, 0, (size_t)mod->ncols);
  int one = lua_type(L, idx) == LUA_TSTRING; /* fields = "name" */
  if (!one && (lua_type(L, idx) != LUA_TTABLE || list_len(L, idx) <= 0))
    return sq_err_set(err, SQ_EUSAGE, "%s: fields must be a non-empty list of column names", method);
  int n = one ? 1 : (int)lua_rawlen(L, idx);
  for (int i = 1; i <= n; i++) {
    if (one) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, i);
    int c = -1;
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(L, -1, &kn);
      if ((c = sq_model_find(mod->m, k, kn)) < 0)
        sq_err_set(err, SQ_EUSAGE, "%s: fields: %s has no column '%.64s'", method, sq_model_name(mod->m), k);
    } else {
      sq_err_set(err, SQ_EUSAGE, "%s: fields must be column names, got a %s", method, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    if (c < 0) return err->kind;
    mask[c] = 1;
  }
  return SQ_OK;
}

const unsigned char *lsq_fields_opt(lua_State *L, const lsq_model *mod, int oidx, const char *method) {
  if (lua_type(L, oidx) != LUA_TTABLE) return NULL;
  oidx = lua_absindex(L, oidx);
  if (lua_getfield(L, oidx, "fields") == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  unsigned char *mask = lua_newuserdatauv(L, (size_t)mod->ncols, 0);
  sq_err err;
  sq_err_clear(&err);
  if (fields_mask(L, mod, -2, method, mask, &err)) lsq_raise(L, &err);
  lua_remove(L, -2);
  return mask;
}

