/*
 * lmodel.c - models: sqorm.types, db:define, the sqorm.Model object and
 * its class methods (create, bulk_create, build, find_*, find_or_create,
 * upsert, count and aggregates, update, destroy, increment, sync, drop),
 * and db:sync / db:drop_all / db:model.
 *
 * A Model userdata owns its sq_model (freed by __gc) and keeps the Lua
 * things it needs in its user values (lmodel.h: MUV_*): the db it belongs
 * to (so the db outlives its models), the instance metatable, the name ->
 * slot map, validators and default functions, class and instance
 * methods.
 *
 * Every statement: arguments checked (raising is still free), query tree
 * built in the scratch arena, rendered once, logged, run through
 * lsq_db_run (transaction connection of the running coroutine, or a
 * pooled one that always comes back), scratch freed, then results or the
 * error. Sequences that must share one connection (find_or_create,
 * multi-batch bulk_create, sync) run inside one protected function on a
 * connection from lsq_db_conn, released on every path.
 */
#include "lmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  RUN_RAW = LSQ_RUN_RAW, RUN_BARE = LSQ_RUN_BARE, RUN_READ = LSQ_RUN_READ, RUN_ALLCOLS = LSQ_RUN_ALLCOLS,
  /* the model is at stack index 1 of the caller: handed to the row sink
   * as an argument instead of being looked up by its address */
  RUN_MODEL1 = 16
};

/* Bound values per multi-row INSERT: below every dialect's limit
 * (sqlite 32766 as the renderer counts it, mysql and postgres 65535). */
#define PARAM_BUDGET 30000

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
/* sqorm.types                                                        */
/* ---------------------------------------------------------------- */

typedef struct lsq_typev {
  int type, length, precision, scale;
} lsq_typev;

static const struct {
  const char *name;
  int type;
  int params; /* 0 none, 1 length, 2 precision [, scale] */
} type_names[] = {
  {"INTEGER", SQ_T_INTEGER, 0}, {"BIGINT", SQ_T_BIGINT, 0}, {"SMALLINT", SQ_T_SMALLINT, 0},
  {"FLOAT", SQ_T_FLOAT, 0}, {"DOUBLE", SQ_T_DOUBLE, 0}, {"DECIMAL", SQ_T_DECIMAL, 2},
  {"STRING", SQ_T_STRING, 1}, {"CHAR", SQ_T_CHAR, 1}, {"TEXT", SQ_T_TEXT, 0},
  {"BOOLEAN", SQ_T_BOOLEAN, 0}, {"DATE", SQ_T_DATE, 0}, {"DATETIME", SQ_T_DATETIME, 0},
  {"BLOB", SQ_T_BLOB, 0}, {"UUID", SQ_T_UUID, 0}, {NULL, 0, 0},
};

static int type_params(int type) {
  for (int i = 0; type_names[i].name; i++)
    if (type_names[i].type == type) return type_names[i].params;
  return 0;
}

static lsq_typev *push_type(lua_State *L, int type) {
  lsq_typev *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  t->type = type;
  luaL_setmetatable(L, LSQ_TYPE_MT);
  return t;
}

/* T.STRING(32), T.CHAR(36), T.DECIMAL(10, 2): a new, parametrised type. */
static int type_call(lua_State *L) {
  lsq_typev *t = luaL_checkudata(L, 1, LSQ_TYPE_MT);
  int params = type_params(t->type);
  const char *name = sq_ctype_name(t->type);
  int n = lua_gettop(L) - 1;
  if (params == 0) return lsq_usage(L, "sqorm.types.%s takes no arguments", name);
  for (int i = 2; i <= lua_gettop(L); i++)
    if (!lua_isinteger(L, i) || lua_tointeger(L, i) < 0 || lua_tointeger(L, i) > 65535)
      return lsq_usage(L, "sqorm.types.%s takes integer arguments", name);
  if (n < 1 || n > params) return lsq_usage(L, "sqorm.types.%s takes %s", name, params == 1 ? "one length" : "(precision [, scale])");
  lsq_typev *r = push_type(L, t->type);
  if (params == 1) r->length = (int)lua_tointeger(L, 2);
  else {
    r->precision = (int)lua_tointeger(L, 2);
    r->scale = n > 1 ? (int)lua_tointeger(L, 3) : 0;
  }
  return 1;
}

static int type_tostring(lua_State *L) {
  lsq_typev *t = luaL_checkudata(L, 1, LSQ_TYPE_MT);
  const char *name = sq_ctype_name(t->type);
  if (t->length) lua_pushfstring(L, "%s(%d)", name, t->length);
  else if (t->precision) lua_pushfstring(L, "%s(%d,%d)", name, t->precision, t->scale);
  else lua_pushstring(L, name);
  return 1;
}

static int type_eq(lua_State *L) {
  lsq_typev *a = luaL_testudata(L, 1, LSQ_TYPE_MT), *b = luaL_testudata(L, 2, LSQ_TYPE_MT);
  lua_pushboolean(L, a && b && !memcmp(a, b, sizeof *a));
  return 1;
}

static void types_open(lua_State *L, int modidx) {
  if (luaL_newmetatable(L, LSQ_TYPE_MT)) {
    lua_pushcfunction(L, type_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, type_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, type_eq);
    lua_setfield(L, -2, "__eq");
    lua_pushliteral(L, "sqorm.Type");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  for (int i = 0; type_names[i].name; i++) {
    push_type(L, type_names[i].type);
    lua_setfield(L, -2, type_names[i].name);
  }
  lua_setfield(L, modidx, "types");
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
  if (mod->m) sq_model_free(mod->m);
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

static int same_value(const sq_value *a, const sq_value *b) {
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
    if (!same_value(&sql->params[i], &params[i])) return;
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
  lsq_model *mod = luaL_checkudata(L, 1, LSQ_MODEL_MT);
  if (!mod->m) lua_pushliteral(L, "sqorm.Model (undefined)");
  else lua_pushfstring(L, "sqorm.Model %s (table %s)", sq_model_name(mod->m), sq_model_table(mod->m));
  return 1;
}

/* Model.key: the user's class methods, then the built-in ones (upvalue 1),
 * then the properties name, table_name, db, methods, columns. */
static int model_index(lua_State *L) {
  lsq_model *mod = lsq_toudata(L, 1, lsq_kind_model, sizeof *mod);
  if (!mod) return luaL_typeerror(L, 1, LSQ_MODEL_MT);
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
  lsq_model *mod = luaL_checkudata(L, 1, LSQ_MODEL_MT);
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
/* running statements                                                 */
/* ---------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- unique_violation: which columns ---- */

/* Flags the columns of the key or constraint called name[0..n); returns
 * how many. MySQL names a primary key PRIMARY and a one-column unique
 * key after its column; PostgreSQL <table>_pkey and <table>_<col>_key;
 * composite keys and indexes carry the model's own names. */
static int key_cols(const lsq_model *mod, const char *name, size_t n, unsigned char *flags) {
  const char *t = sq_model_table(mod->m);
  size_t tn = strlen(t);
  int k = 0;
  if ((n == 7 && !memcmp(name, "PRIMARY", 7)) || (n == tn + 5 && !memcmp(name, t, tn) && !memcmp(name + tn, "_pkey", 5))) {
    for (int i = 0; i < mod->npk; i++, k++) flags[mod->pk[i]] = 1;
    return k;
  }
  for (int c = 0; c < mod->ncols; c++) {
    const sq_col *col = mod->cols[c];
    if (!col->unique) continue;
    int hit;
    if (col->unique[0]) hit = strlen(col->unique) == n && !memcmp(col->unique, name, n);
    else hit = (n == col->name_len && !memcmp(name, col->name, n)) ||
               (n == tn + 1 + col->name_len + 4 && !memcmp(name, t, tn) && name[tn] == '_' &&
                !memcmp(name + tn + 1, col->name, col->name_len) && !memcmp(name + n - 4, "_key", 4));
    if (hit) flags[c] = 1, k++;
  }
  if (k) return k;
  for (int i = 0; i < sq_model_nindexes(mod->m); i++) {
    const char *iname;
    int unique, ncols;
    const int *cols;
    sq_model_index(mod->m, i, &iname, &unique, &cols, &ncols);
    if (!unique || strlen(iname) != n || memcmp(iname, name, n)) continue;
    for (int j = 0; j < ncols; j++) flags[cols[j]] = 1, k++;
    return k;
  }
  return 0;
}

/* Flags the columns listed in s[0..n) ("a, b" or "t.a, t.b", names
 * double-quoted where PostgreSQL needs it); 0 unless every one is a
 * column. */
static int list_cols(const lsq_model *mod, const char *s, size_t n, unsigned char *flags) {
  const char *t = sq_model_table(mod->m), *end = s + n;
  size_t tn = strlen(t);
  int k = 0;
  while (s < end) {
    char name[128];
    size_t o = 0;
    if (*s == '"') { /* "we""ird" */
      for (s++; s < end && o < sizeof name; s++) {
        if (*s == '"' && s + 1 < end && s[1] == '"') name[o++] = '"', s++;
        else if (*s == '"') { s++; break; }
        else name[o++] = *s;
      }
    } else {
      const char *e = s;
      while (e < end && !(e[0] == ',' && e + 1 < end && e[1] == ' ')) e++;
      if ((size_t)(e - s) > tn + 1 && !memcmp(s, t, tn) && s[tn] == '.') s += tn + 1;
      for (; s < e && o < sizeof name; s++) name[o++] = *s;
      s = e;
    }
    int c = sq_model_find(mod->m, name, o);
    if (c < 0) return 0;
    flags[c] = 1;
    k++;
    if (s < end && *s == ',') s++;
    while (s < end && *s == ' ') s++;
  }
  return k;
}

/* The columns a unique_violation message of the model's dialect names. */
static int unique_cols(const lsq_model *mod, const char *msg, unsigned char *flags) {
  const char *p, *q;
  switch (mod->dialect) {
  case SQ_DIALECT_SQLITE: /* UNIQUE constraint failed: t.a, t.b (or: index 'name') */
    if (!(p = strstr(msg, "constraint failed: "))) return 0;
    p += 19;
    if (!strncmp(p, "index '", 7) && (q = strchr(p + 7, '\''))) return key_cols(mod, p + 7, (size_t)(q - (p + 7)), flags);
    return list_cols(mod, p, strcspn(p, "\n"), flags);
  case SQ_DIALECT_POSTGRES: /* ... constraint "name"\nDETAIL:  Key (a, b)=(...) already exists. */
    if ((p = strstr(msg, "DETAIL:  Key (")) && (q = strstr(p, ")=("))) {
      int k = list_cols(mod, p + 14, (size_t)(q - (p + 14)), flags);
      if (k) return k;
      memset(flags, 0, (size_t)mod->ncols); /* an expression index: by its name, then */
    }
    if (!(p = strstr(msg, "constraint \"")) || !(q = strchr(p + 12, '"'))) return 0;
    return key_cols(mod, p + 12, (size_t)(q - (p + 12)), flags);
  default: { /* Duplicate entry '...' for key 'name' (MySQL 8: 'table.name') */
    const char *k = NULL;
    for (p = msg; (p = strstr(p, "for key '")); p++) k = p + 9;
    if (!k || !(q = strrchr(k, '\'')) || q < k) return 0;
    size_t n = (size_t)(q - k), tn = strlen(sq_model_table(mod->m));
    int hit = key_cols(mod, k, n, flags);
    if (!hit && n > tn + 1 && !memcmp(k, sq_model_table(mod->m), tn) && k[tn] == '.')
      hit = key_cols(mod, k + tn + 1, n - tn - 1, flags);
    return hit;
  }
  }
}

/* When the error on the stack top is a unique_violation, sets its
 * err.fields to { column = "must be unique" } for the columns of the
 * violated key, where the server's message names them. */
static void unique_fields(lua_State *L, const lsq_model *mod) {
  if (lua_type(L, -1) != LUA_TTABLE) return;
  int e = lua_gettop(L);
  lua_getfield(L, e, "kind");
  lua_getfield(L, e, "message");
  lua_getfield(L, e, "fields");
  int uniq = lua_type(L, e + 1) == LUA_TSTRING && !strcmp(lua_tostring(L, e + 1), "unique_violation") &&
             lua_type(L, e + 2) == LUA_TSTRING && lua_isnil(L, e + 3);
  if (uniq) {
    unsigned char *flags = lua_newuserdatauv(L, (size_t)mod->ncols, 0);
    memset(flags, 0, (size_t)mod->ncols);
    if (unique_cols(mod, lua_tostring(L, e + 2), flags) > 0) {
      lua_createtable(L, 0, 2);
      for (int c = 0; c < mod->ncols; c++) {
        if (!flags[c]) continue;
        lua_pushliteral(L, "must be unique");
        lua_setfield(L, -2, mod->cols[c]->name);
      }
      lua_setfield(L, e, "fields");
    }
  }
  lua_settop(L, e);
}

int lsq_model_exec(lua_State *L, int dbidx, lsq_exec *x) {
  lsq_db *db = lua_touserdata(L, dbidx);
  lsq_log_statement(L, dbidx, "Executing", x->sql, x->len, -1);
  double t0 = db->benchmark ? now_ms() : 0;
  int failed = lsq_db_run(L, dbidx, x);
  if (!failed && db->benchmark) lsq_log_statement(L, dbidx, "Executed", x->sql, x->len, now_ms() - t0);
  return failed;
}

typedef struct run_ctx {
  const lsq_model *mod;
  int mode, flags;
} run_ctx;

/* x->run for row statements: builds instances / raw rows / bare arrays
 * with the model's sink and pushes the list (SINK_LIST) or the first row
 * or nil (SINK_ONE). */
static int run_rows_cb(lua_State *L, lsq_exec *x) {
  run_ctx *r = x->ud;
  if (!r->mode) {
    x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams, NULL, &x->res, &x->err);
    return 0;
  }
  lsq_isink s;
  lsq_isink_init(&s, L, r->mod, r->mode);
  s.raw = (r->flags & RUN_RAW) != 0;
  s.bare = (r->flags & RUN_BARE) != 0;
  s.identity = (r->flags & RUN_ALLCOLS) != 0;
  if (r->mode == SINK_FILL) {
    s.out = 1; /* the instance, handed over as x->argidx */
    sq_row_sink sink;
    lsq_isink_sink(&s, &sink);
    x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams, &sink, &x->res, &x->err);
    return 0;
  }
  if (r->mode == SINK_LIST) lua_createtable(L, 4, 0);
  else lua_pushnil(L);
  s.out = lua_gettop(L);
  if (!s.bare) {
    if (r->flags & RUN_MODEL1) lua_pushvalue(L, 1);
    else lsq_push_model(L, r->mod);
    lua_getiuservalue(L, -1, MUV_IMT);
    s.imt = lua_gettop(L);
    lua_rawgeti(L, s.imt, IMT_COLNAMES);
    s.colnames = lua_gettop(L);
  }
  sq_row_sink sink;
  lsq_isink_sink(&s, &sink);
  x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams, &sink, &x->res, &x->err);
  lua_settop(L, s.out);
  return 1;
}

/* Runs sql for mod; pushes the result of mode (nothing for 0). Returns 1
 * with the error on top on failure. */
static int run_sql(lua_State *L, int dbidx, const lsq_model *mod, const char *sql, size_t len, const sq_value *params,
                   int nparams, int mode, int flags, sq_result *res) {
  run_ctx r = {mod, mode, flags};
  lsq_exec x;
  memset(&x, 0, sizeof x);
  x.sql = sql;
  x.len = len;
  x.params = params;
  x.nparams = nparams;
  x.retry_read = (flags & RUN_READ) != 0;
  x.run = run_rows_cb;
  x.ud = &r;
  if (flags & RUN_MODEL1) x.argidx = 1;
  int failed = lsq_model_exec(L, dbidx, &x);
  if (res) *res = x.res;
  if (failed) unique_fields(L, mod);
  return failed;
}

/* Runs an INSERT ... RETURNING whose row goes straight into the instance
 * at iidx (the database's values for every column). */
static int run_sql_fill(lua_State *L, int dbidx, const lsq_model *mod, int iidx, const char *sql, size_t len,
                        const sq_value *params, int nparams, sq_result *res) {
  run_ctx r = {mod, SINK_FILL, RUN_ALLCOLS};
  lsq_exec x;
  memset(&x, 0, sizeof x);
  x.sql = sql;
  x.len = len;
  x.params = params;
  x.nparams = nparams;
  x.run = run_rows_cb;
  x.ud = &r;
  x.argidx = iidx;
  int failed = lsq_model_exec(L, dbidx, &x);
  if (res) *res = x.res;
  if (failed) unique_fields(L, mod);
  return failed;
}

int lsq_model_run_sql(lua_State *L, int dbidx, const lsq_model *mod, const char *sql, size_t len, const sq_value *params,
                      int nparams, sq_result *res) {
  return run_sql(L, dbidx, mod, sql, len, params, nparams, 0, 0, res);
}

int lsq_model_run(lua_State *L, int dbidx, const lsq_model *mod, lsq_scratch *s, int mode, int flags, sq_result *res) {
  int failed = run_sql(L, dbidx, mod, s->sql.sql, s->sql.len, s->sql.params, s->sql.nparams, mode, flags, res);
  lsq_scratch_done(s);
  return failed;
}

/*
 * Explicit values for an identity / auto-increment key. MySQL and SQLite
 * move their counters past an explicit key by themselves. A PostgreSQL
 * sequence is not moved: sqorm used to setval() it past the largest
 * explicit key, but PostgreSQL has no atomic "move forward only" for a
 * sequence (setval overwrites, and reading the value first races with
 * other sessions' nextval), so under concurrency that could move the
 * sequence backwards and hand out keys already used, silently when the
 * rows holding them were deleted. Like other ORMs, sqorm leaves the
 * sequence alone: a later generated key that collides with an explicit
 * one fails loudly with unique_violation, and an application that seeds
 * explicit keys moves the sequence itself (docs/api.md shows how).
 */

/* A scalar result (count, sum, min, max, avg): the last column of the
 * first row, decoded for the aggregate. */
typedef struct scalar_ctx {
  lua_State *L;
  int out;
  int fn;
  const sq_col *col;
  int got;
} scalar_ctx;

static int scalar_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)ud, (void)ncols, (void)cols, (void)err;
  return 0;
}

static int scalar_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  scalar_ctx *c = ud;
  lua_State *L = c->L;
  (void)err;
  if (c->got++ || ncols < 1) return 0;
  const sq_value *v = &vals[ncols - 1];
  if (v->type == SQ_VNULL) return 0;
  int numeric = c->fn == SQ_FN_COUNT || c->fn == SQ_FN_AVG ||
                (c->fn == SQ_FN_SUM && c->col->type != SQ_T_DECIMAL);
  if (c->fn == SQ_FN_MIN || c->fn == SQ_FN_MAX || (c->fn == SQ_FN_SUM && c->col->type == SQ_T_DECIMAL)) {
    lsq_push_colval(L, c->col, v);
  } else if (numeric) {
    switch (v->type) {
    case SQ_VINT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
    case SQ_VFLOAT:
      if (c->fn == SQ_FN_AVG) lua_pushnumber(L, v->u.f);
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
        if (c->fn == SQ_FN_AVG && lua_isinteger(L, -1)) lua_pushnumber(L, (lua_Number)lua_tointeger(L, -1)), lua_remove(L, -2);
        else if (c->fn == SQ_FN_SUM && c->col->type != SQ_T_FLOAT && c->col->type != SQ_T_DOUBLE &&
                 !lua_isinteger(L, -1)) {
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
  lua_replace(L, c->out);
  return 0;
}

static int run_scalar_cb(lua_State *L, lsq_exec *x) {
  scalar_ctx *c = x->ud;
  c->L = L;
  c->got = 0;
  lua_pushnil(L);
  c->out = lua_gettop(L);
  sq_row_sink sink = {c, scalar_columns, scalar_row};
  x->rc = sq_conn_exec_native(x->conn, x->sql, x->len, x->params, x->nparams, &sink, &x->res, &x->err);
  lua_settop(L, c->out);
  return 1;
}

/* ---------------------------------------------------------------- */
/* one connection for several statements                              */
/* ---------------------------------------------------------------- */

typedef struct conn_ctx {
  lua_CFunction fn;
  sq_conn *conn;
  int pooled;
  int in_stmt;  /* a driver call is running: a Lua error now leaves it half done */
  void *ud;
} conn_ctx;

static int conn_protected(lua_State *L) {
  conn_ctx *c = lua_touserdata(L, 1);
  return c->fn(L);
}

/*
 * Calls c->fn under lua_pcall with [1] = c (light userdata) and the nargs
 * values on top of the stack, with c->conn set to the connection the
 * running coroutine must use for the db at dbidx (its transaction's, or a
 * pooled one). A pooled connection is released on every path; when fn
 * raised in the middle of a driver call, it is discarded. Returns 0 with
 * fn's results on the stack, or 1 with the error on top.
 */
static int with_conn(lua_State *L, int dbidx, conn_ctx *c, int nargs) {
  lsq_db *db = lua_touserdata(L, dbidx);
  sq_err err;
  sq_err_clear(&err);
  c->in_stmt = 0;
  if (lsq_db_conn(L, dbidx, db, &c->conn, &c->pooled, &err)) {
    lua_pop(L, nargs);
    lsq_push_error(L, &err);
    return 1;
  }
  lua_pushlightuserdata(L, c);
  lua_insert(L, -(nargs + 1));
  lua_pushcfunction(L, conn_protected);
  lua_insert(L, -(nargs + 2));
  int st = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
  if (st != LUA_OK && c->in_stmt) sq_conn_mark_dead(c->conn);
  lsq_db_conn_done(c->conn, c->pooled, NULL);
  c->conn = NULL;
  return st != LUA_OK;
}

/* Inside a with_conn function: logs and runs one statement on c->conn
 * (the db at dbidx of this frame). */
static int conn_exec(lua_State *L, conn_ctx *c, int dbidx, const char *sql, size_t len, const sq_value *params,
                     int nparams, const sq_row_sink *sink, sq_result *res, sq_err *err) {
  lsq_db *db = lua_touserdata(L, dbidx);
  lsq_log_statement(L, dbidx, "Executing", sql, len, -1);
  double t0 = db->benchmark ? now_ms() : 0;
  c->in_stmt = 1;
  int rc = sq_conn_exec_native(c->conn, sql, len, params, nparams, sink, res, err);
  c->in_stmt = 0;
  if (!rc && db->benchmark) {
    int top = lua_gettop(L);
    lsq_log_statement(L, dbidx, "Executed", sql, len, now_ms() - t0);
    lua_settop(L, top);
  }
  return rc;
}

/* Transaction control on c->conn: a real transaction on a pooled
 * connection, a savepoint inside the caller's transaction. */
static const char BULK_SP[] = "sq_bulk_sp";

static int tx_begin(lua_State *L, conn_ctx *c, int dbidx, sq_err *err) {
  const sq_driver *d = sq_conn_driver(c->conn);
  lsq_log_statement(L, dbidx, "Executing", c->pooled ? "BEGIN" : "SAVEPOINT sq_bulk_sp", c->pooled ? 5 : 21, -1);
  c->in_stmt = 1;
  int rc = c->pooled ? d->begin(sq_conn_handle(c->conn), SQ_ISO_DEFAULT, err) : d->savepoint(sq_conn_handle(c->conn), BULK_SP, err);
  c->in_stmt = 0;
  return rc;
}

static int tx_end(lua_State *L, conn_ctx *c, int dbidx, int commit, sq_err *err) {
  const sq_driver *d = sq_conn_driver(c->conn);
  sq_dconn *h = sq_conn_handle(c->conn);
  const char *what = c->pooled ? (commit ? "COMMIT" : "ROLLBACK") : (commit ? "RELEASE SAVEPOINT sq_bulk_sp" : "ROLLBACK TO SAVEPOINT sq_bulk_sp");
  lsq_log_statement(L, dbidx, "Executing", what, strlen(what), -1);
  c->in_stmt = 1;
  int rc;
  if (c->pooled) rc = commit ? d->commit(h, err) : d->rollback(h, err);
  else {
    rc = commit ? d->release(h, BULK_SP, err) : d->rollback_to(h, BULK_SP, err);
    if (!commit && !rc) rc = d->release(h, BULK_SP, err);
  }
  c->in_stmt = 0;
  return rc;
}

/* ---------------------------------------------------------------- */
/* db:define                                                          */
/* ---------------------------------------------------------------- */

/* The type value at idx into d (raises when it is none). */
static void coldef_type(lua_State *L, int idx, sq_coldef *d) {
  lsq_typev *t = lua_type(L, idx) == LUA_TUSERDATA ? luaL_testudata(L, idx, LSQ_TYPE_MT) : NULL;
  if (!t) lsq_usage(L, "column '%s': expected a type from sqorm.types, got %s", d->name, luaL_typename(L, idx));
  d->type = t->type;
  d->length = t->length;
  d->precision = t->precision;
  d->scale = t->scale;
}

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
    coldef_type(L, sidx, &d);
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
    coldef_type(L, -1, &d);
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

static const char *const model_opts[] = {
  "table_name", "timestamps", "created_at", "updated_at", "paranoid", "deleted_at", "indexes", NULL,
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
  sq_err err;
  sq_err_clear(&err);
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
  mod->cflags = calloc((size_t)mod->ncols, 1);
  mod->cols = calloc((size_t)mod->ncols, sizeof *mod->cols);
  for (int i = 0; mod->cols && i < mod->ncols; i++) mod->cols[i] = sq_model_col(mod->m, i);
  if (!mod->cflags || !mod->cols) {
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return lsq_raise(L, &err);
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
  luaL_checkstring(L, 2);
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
/* schema                                                             */
/* ---------------------------------------------------------------- */

enum { SYNC_CREATE = 0, SYNC_FORCE, SYNC_ALTER, SYNC_DROP, SYNC_ALTER_DROP };

typedef struct sync_ctx {
  lsq_scratch *s;
  int how;
} sync_ctx;

/* Runs the statements of list on c->conn and frees the list. */
static int run_list(lua_State *L, conn_ctx *c, int dbidx, sq_sql_list *list, sq_err *err) {
  int rc = SQ_OK;
  for (int i = 0; i < list->n && !rc; i++) {
    sq_result res;
    rc = conn_exec(L, c, dbidx, list->sql[i], strlen(list->sql[i]), NULL, 0, NULL, &res, err);
  }
  sq_sql_list_free(list);
  return rc;
}

/* One model's part of a sync, on c->conn. */
static int sync_model(lua_State *L, conn_ctx *c, int dbidx, const lsq_model *mod, int how, sq_sql_list *list, sq_err *err) {
  int rc;
  switch (how) {
  case SYNC_DROP:
    rc = sq_render_drop(mod->m, mod->dialect, 1, list, err);
    break;
  case SYNC_ALTER:
  case SYNC_ALTER_DROP:
    c->in_stmt = 1;
    rc = sq_plan_alter_ex(c->conn, mod->m, how == SYNC_ALTER_DROP ? SQ_ALTER_DROP : 0, list, err);
    c->in_stmt = 0;
    /* SQLite and PostgreSQL DDL is transactional: the plan runs as one
     * transaction (a savepoint inside the caller's), so a failure (a
     * rebuild's copy, a unique key over duplicates) leaves the table as
     * it was. A MySQL plan is one atomic ALTER TABLE. */
    if (!rc && list->n > 0 && mod->dialect != SQ_DIALECT_MYSQL) {
      rc = tx_begin(L, c, dbidx, err);
      if (!rc) rc = run_list(L, c, dbidx, list, err);
      if (!rc) return tx_end(L, c, dbidx, 1, err);
      sq_err ignored;
      sq_err_clear(&ignored);
      tx_end(L, c, dbidx, 0, &ignored);
      sq_sql_list_free(list);
      return rc;
    }
    break;
  default:
    rc = sq_render_create(mod->m, mod->dialect, how == SYNC_CREATE, list, err);
  }
  if (!rc) rc = run_list(L, c, dbidx, list, err);
  sq_sql_list_free(list);
  return rc;
}

/* with_conn function: [1] ctx, [2] db, [3] list of models. */
static int sync_fn(lua_State *L) {
  conn_ctx *c = lua_touserdata(L, 1);
  sync_ctx *sc = c->ud;
  sq_err err;
  sq_err_clear(&err);
  int n = (int)lua_rawlen(L, 3), rc = SQ_OK;
  if (sc->how == SYNC_FORCE || sc->how == SYNC_DROP) {
    for (int i = n; i >= 1 && !rc; i--) {
      lua_rawgeti(L, 3, i);
      rc = sync_model(L, c, 2, lua_touserdata(L, -1), SYNC_DROP, &sc->s->list, &err);
      lua_pop(L, 1);
    }
  }
  if (sc->how != SYNC_DROP) {
    for (int i = 1; i <= n && !rc; i++) {
      lua_rawgeti(L, 3, i);
      rc = sync_model(L, c, 2, lua_touserdata(L, -1), sc->how, &sc->s->list, &err);
      lua_pop(L, 1);
    }
  }
  if (rc) return lsq_raise(L, &err);
  return 0;
}

/* sync options: { force = bool } | { alter = bool | { drop = bool } }. */
static int sync_how(lua_State *L, int oidx, int allow_alter) {
  if (lua_isnoneornil(L, oidx)) return SYNC_CREATE;
  if (lua_type(L, oidx) != LUA_TTABLE) lsq_usage(L, "sync: options must be a table");
  int force = 0, alter = 0, drop = 0;
  lua_pushnil(L);
  while (lua_next(L, oidx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(k, "force") && !(allow_alter && !strcmp(k, "alter")))
      lsq_usage(L, "sync: unknown option '%s' (force%s)", k, allow_alter ? ", alter" : "");
    if (k[0] == 'a' && lua_type(L, -1) == LUA_TTABLE) {
      alter = 1;
      int t = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, t)) {
        const char *ak = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(ak, "drop")) lsq_usage(L, "sync: unknown alter option '%s' (drop)", ak);
        if (lua_type(L, -1) != LUA_TBOOLEAN) lsq_usage(L, "sync: alter.drop must be a boolean");
        drop = lua_toboolean(L, -1);
        lua_pop(L, 1);
      }
    } else if (lua_type(L, -1) != LUA_TBOOLEAN) {
      lsq_usage(L, k[0] == 'a' ? "sync: alter must be a boolean or { drop = boolean }" : "sync: %s must be a boolean", k);
    } else if (k[0] == 'f') {
      force = lua_toboolean(L, -1);
    } else {
      alter = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
  }
  if (force && alter) lsq_usage(L, "sync: force and alter exclude each other");
  return force ? SYNC_FORCE : !alter ? SYNC_CREATE : drop ? SYNC_ALTER_DROP : SYNC_ALTER;
}

/* Runs a sync over the list of models at lidx for the db at dbidx. */
static int do_sync(lua_State *L, int dbidx, int lidx, int how) {
  lsq_scratch *s = lsq_scratch_get(L);
  sync_ctx sc = {s, how};
  conn_ctx c;
  memset(&c, 0, sizeof c);
  c.fn = sync_fn;
  c.ud = &sc;
  lua_pushvalue(L, dbidx);
  lua_pushvalue(L, lidx);
  int failed = with_conn(L, dbidx, &c, 2);
  lsq_scratch_done(s);
  if (failed) return lua_error(L);
  return 0;
}

/* Model:sync([{ force = true } | { alter = true }]) -> Model */
static int model_sync(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int how = sync_how(L, 2, 1);
  (void)mod;
  int dbidx = lsq_model_db(L, 1);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  do_sync(L, dbidx, dbidx + 1, how == SYNC_FORCE ? SYNC_FORCE : how);
  lua_settop(L, 1);
  return 1;
}

/* Model:drop() -> true (DROP TABLE IF EXISTS) */
static int model_drop(lua_State *L) {
  lsq_check_model(L, 1);
  lsq_check_opts(L, 2, "drop", NULL);
  lua_settop(L, 1);
  int dbidx = lsq_model_db(L, 1);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  do_sync(L, dbidx, dbidx + 1, SYNC_DROP);
  lua_pushboolean(L, 1);
  return 1;
}

/* The db's models in definition order (pushes a list). */
static void push_model_list(lua_State *L, int dbidx) {
  lua_getiuservalue(L, dbidx, 1);
  if (lua_getfield(L, -1, "model_list") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_remove(L, -2);
}

/* db:sync([{ force = true } | { alter = true }]) -> db: every model of the
 * db, in definition order (force drops them all in reverse order first). */
static int db_sync(lua_State *L) {
  lsq_check_db(L, 1);
  lua_settop(L, 2);
  int how = sync_how(L, 2, 1);
  push_model_list(L, 1);
  do_sync(L, 1, 3, how);
  lua_settop(L, 1);
  return 1;
}

/* db:drop_all() -> true: drops every model's table, in reverse order. */
static int db_drop_all(lua_State *L) {
  lsq_check_db(L, 1);
  lsq_check_opts(L, 2, "drop_all", NULL);
  lua_settop(L, 1);
  push_model_list(L, 1);
  do_sync(L, 1, 2, SYNC_DROP);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- */
/* reads                                                              */
/* ---------------------------------------------------------------- */

/* Starts a method: the scratch and a query builder. */
#define QB_INIT(b, s, err, mod, name) \
  sq_err err;                         \
  sq_err_clear(&err);                 \
  lsq_scratch *s = lsq_scratch_get(L); \
  lsq_qb b = {L, mod, s, &err, name, 0}

/* The end of every SELECT of instances (find_all, find_one, find_by_pk
 * with options): render q unless building it failed (rc), free the
 * scratch before raising, run, push the result. */
static int run_select(lua_State *L, int dbidx, lsq_model *mod, lsq_scratch *s, sq_query *q, int raw, int mode,
                      int rc, sq_err *err) {
  if (!rc) rc = sq_render(q, mod->dialect, &s->sql, err);
  if (rc) {
    lsq_scratch_done(s);
    return lsq_raise(L, err);
  }
  int flags = RUN_READ | RUN_MODEL1 | (raw ? RUN_RAW : 0) | (q->attrs ? 0 : RUN_ALLCOLS);
  if (lsq_model_run(L, dbidx, mod, s, mode, flags, NULL)) return lua_error(L);
  return 1;
}

/* Shared by find_all / find_one: [1] model, [2] options. */
static int find_rows(lua_State *L, int mode, const char *method) {
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1);
  QB_INIT(b, s, err, mod, method);
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 2, QO_FIND, &q, &o);
  if (!rc && mode == SINK_ONE) q.limit = 1;
  return run_select(L, dbidx, mod, s, &q, o.raw, mode, rc, &err);
}

/* Model:find_all([opts]) -> { instance, ... } */
static int model_find_all(lua_State *L) { return find_rows(L, SINK_LIST, "find_all"); }

/* Model:find_one([opts]) -> instance or nil */
static int model_find_one(lua_State *L) { return find_rows(L, SINK_ONE, "find_one"); }

/* The primary key condition for the value at kidx: a single value, or a
 * table { a = 1, b = 2 } for a composite key (also { id = 1 }). */
static int pk_cond(lsq_qb *b, int kidx, sq_expr **out) {
  lua_State *L = b->L;
  const lsq_model *mod = b->mod;
  sq_arena *a = b->scratch->arena;
  if (lua_type(L, kidx) != LUA_TTABLE || lsq_test_instance(L, kidx)) {
    if (mod->npk != 1)
      return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: %s has a composite primary key; pass a table { col = value, ... }",
                        sq_model_name(mod->m));
    if (lsq_test_instance(L, kidx))
      return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk expects a key value, got an instance");
    sq_expr *e = sq_arena_alloc(a, sizeof *e);
    sq_value *v = sq_arena_alloc(a, sizeof *v);
    if (!e || !v) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    memset(e, 0, sizeof *e);
    char buf[48];
    if (lsq_col_value(L, kidx, sq_model_col(mod->m, mod->pk[0]), v, buf, a, b->err)) return b->err->kind;
    if (v->type == SQ_VNULL) return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: the key can't be null");
    e->op = SQ_OP_EQ;
    e->col = mod->pk[0];
    e->vals = v;
    e->nvals = 1;
    *out = e;
    return SQ_OK;
  }
  /* a table: exactly the key columns */
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, kidx)) {
    lua_pop(L, 1);
    n++;
    int c = lsq_col_index(b, -1, "find_by_pk");
    if (c < 0) {
      lua_pop(L, 1);
      return b->err->kind;
    }
    if (!sq_model_col(mod->m, c)->primary_key) {
      lua_pop(L, 1);
      return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: '%s' is not part of the primary key", sq_model_col(mod->m, c)->name);
    }
  }
  if (n != mod->npk)
    return sq_err_set(b->err, SQ_EUSAGE, "find_by_pk: give every primary key column (%d)", mod->npk);
  sq_expr *and = sq_arena_alloc(a, sizeof *and);
  sq_expr **kids = sq_arena_alloc(a, sizeof *kids * (size_t)n);
  if (!and || !kids) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
  memset(and, 0, sizeof *and);
  and->op = SQ_OP_AND;
  and->kids = kids;
  for (int i = 0; i < mod->npk; i++) {
    const sq_col *col = sq_model_col(mod->m, mod->pk[i]);
    sq_expr *e = sq_arena_alloc(a, sizeof *e);
    sq_value *v = sq_arena_alloc(a, sizeof *v);
    if (!e || !v) return sq_err_set(b->err, SQ_ENOMEM, "out of memory");
    memset(e, 0, sizeof *e);
    lua_getfield(L, kidx, col->name);
    char buf[48];
    int rc = lsq_col_value(L, -1, col, v, buf, a, b->err);
    lua_pop(L, 1);
    if (rc) return rc;
    e->op = SQ_OP_EQ;
    e->col = mod->pk[i];
    e->vals = v;
    e->nvals = 1;
    kids[and->nkids++] = e;
  }
  *out = n == 1 ? kids[0] : and;
  return SQ_OK;
}

/*
 * Model:find_by_pk(key [, { lock =, attributes =, raw =, paranoid = }])
 * -> instance or nil. Without options the SQL is rendered once per model
 * and reused: only the key is converted per call.
 */
static int model_find_by_pk(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 3);
  if (lua_isnil(L, 2)) return lsq_usage(L, "find_by_pk needs a key value");
  int dbidx = lsq_model_db(L, 1);
  if (lua_isnil(L, 3) && mod->npk == 1 && lua_type(L, 2) != LUA_TTABLE) {
    sq_err err;
    sq_err_clear(&err);
    sq_value v;
    char buf[48];
    if (lsq_col_value(L, 2, sq_model_col(mod->m, mod->pk[0]), &v, buf, NULL, &err)) return lsq_raise(L, &err);
    if (v.type == SQ_VNULL) return lsq_usage(L, "find_by_pk: the key can't be null");
    if (!mod->pk_sql) {
      lsq_scratch *s = lsq_scratch_get(L);
      sq_expr e;
      memset(&e, 0, sizeof e);
      e.op = SQ_OP_EQ;
      e.col = mod->pk[0];
      e.vals = &v;
      e.nvals = 1;
      sq_query q;
      sq_query_init(&q, SQ_Q_SELECT, mod->m);
      q.where = &e;
      int rc = sq_render(&q, mod->dialect, &s->sql, &err);
      if (!rc && s->sql.nparams == 1) {
        mod->pk_sql = malloc(s->sql.len + 1);
        if (mod->pk_sql) {
          memcpy(mod->pk_sql, s->sql.sql, s->sql.len + 1);
          mod->pk_sql_len = s->sql.len;
        }
      }
      lsq_scratch_done(s);
      lua_pop(L, 1);
      if (rc) return lsq_raise(L, &err);
      if (!mod->pk_sql) return lsq_usage(L, "find_by_pk: could not cache the statement");
    }
    if (run_sql(L, dbidx, mod, mod->pk_sql, mod->pk_sql_len, &v, 1, SINK_ONE, RUN_READ | RUN_ALLCOLS | RUN_MODEL1, NULL))
      return lua_error(L);
    return 1;
  }
  QB_INIT(b, s, err, mod, "find_by_pk");
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 3, QO_ATTRIBUTES | QO_LOCK | QO_RAW | QO_PARANOID, &q, &o);
  if (!rc) rc = pk_cond(&b, 2, &q.where);
  return run_select(L, dbidx, mod, s, &q, o.raw, SINK_ONE, rc, &err);
}

/* count and the aggregates: [1] model, [col at 2,] options. */
static int aggregate(lua_State *L, int fn, const char *method) {
  lsq_model *mod = lsq_check_model(L, 1);
  int oidx = fn == SQ_FN_COUNT ? 2 : 3;
  lua_settop(L, 3);
  int dbidx = lsq_model_db(L, 1);
  QB_INIT(b, s, err, mod, method);
  sq_query q;
  sq_query_init(&q, fn == SQ_FN_COUNT ? SQ_Q_COUNT : SQ_Q_AGGREGATE, mod->m);
  lsq_qopts o;
  int rc = SQ_OK, col = -1;
  if (fn != SQ_FN_COUNT) {
    col = lsq_col_index(&b, 2, method);
    if (col < 0) rc = err.kind;
    q.agg_fn = fn;
    q.agg_col = col;
  }
  if (!rc) rc = lsq_build_options(&b, oidx, QO_WHERE | QO_PARANOID, &q, &o);
  if (!rc) rc = sq_render(&q, mod->dialect, &s->sql, &err);
  if (rc) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  scalar_ctx sc;
  memset(&sc, 0, sizeof sc);
  sc.fn = fn;
  sc.col = col >= 0 ? sq_model_col(mod->m, col) : NULL;
  lsq_exec x;
  memset(&x, 0, sizeof x);
  x.sql = s->sql.sql;
  x.len = s->sql.len;
  x.params = s->sql.params;
  x.nparams = s->sql.nparams;
  x.retry_read = 1;
  x.run = run_scalar_cb;
  x.ud = &sc;
  int failed = lsq_model_exec(L, dbidx, &x);
  lsq_scratch_done(s);
  if (failed) return lua_error(L);
  if (lua_isnil(L, -1) && (fn == SQ_FN_COUNT || fn == SQ_FN_SUM)) {
    lua_pop(L, 1);
    if (sc.col && sc.col->type == SQ_T_DECIMAL) lua_pushliteral(L, "0");
    else if (sc.col && (sc.col->type == SQ_T_FLOAT || sc.col->type == SQ_T_DOUBLE)) lua_pushnumber(L, 0);
    else lua_pushinteger(L, 0);
  }
  return 1;
}

static int model_count(lua_State *L) { return aggregate(L, SQ_FN_COUNT, "count"); }
static int model_sum(lua_State *L) { return aggregate(L, SQ_FN_SUM, "sum"); }
static int model_min(lua_State *L) { return aggregate(L, SQ_FN_MIN, "min"); }
static int model_max(lua_State *L) { return aggregate(L, SQ_FN_MAX, "max"); }
static int model_avg(lua_State *L) { return aggregate(L, SQ_FN_AVG, "avg"); }

/* ---------------------------------------------------------------- */
/* writes                                                             */
/* ---------------------------------------------------------------- */

static const char *const fields_only[] = {"fields", NULL};

/* Model:build([values [, { fields = {...} }]]) -> an unsaved instance
 * (defaults applied). A value that does not convert to its column's type
 * raises kind validation. */
static int model_build(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TTABLE)
    return lsq_usage(L, "build expects a table of column values, got %s", luaL_typename(L, 2));
  lua_settop(L, 3);
  lsq_check_opts(L, 3, "build", fields_only);
  const unsigned char *fields = lsq_fields_opt(L, mod, 3, "build");
  lua_getiuservalue(L, 1, MUV_IMT);
  int imt = lua_gettop(L);
  lua_pushnil(L); /* conversion failures */
  int bad = imt + 1;
  sq_err err;
  sq_err_clear(&err);
  if (lsq_instance_from(L, 1, imt, lua_isnil(L, 2) ? 0 : 2, 1, fields, bad, &err)) return lsq_raise(L, &err);
  if (lsq_validate(L, 1, mod, NULL, NULL, 0, LSQ_V_PARTIAL | LSQ_V_CORE, 0, bad)) return lua_error(L);
  lsq_instance_defaults(L, 1, -1);
  return 1;
}

/* The statement text of a cached shape, copied into the call's arena:
 * the logging function runs before it is sent and may evict the cache
 * entry (by running other statements of the model). */
static const char *shape_sql(const lsq_shape *sh, sq_arena *a, sq_err *err) {
  char *copy = sq_arena_alloc(a, sh->len + 1);
  if (!copy) {
    sq_err_set(err, SQ_ENOMEM, "out of memory");
    return NULL;
  }
  memcpy(copy, sh->sql, sh->len + 1);
  return copy;
}

int lsq_instance_insert(lua_State *L, int midx, int iidx, int bad) {
  lsq_model *mod = lua_touserdata(L, midx);
  iidx = lua_absindex(L, iidx);
  if (bad) bad = lua_absindex(L, bad);
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  lsq_instance_prepare_insert(L, midx, iidx, now);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  int *cols = lsq_alloc(s, sizeof *cols * (size_t)mod->ncols, &err);
  sq_value *vals = cols ? lsq_alloc(s, sizeof *vals * (size_t)mod->ncols, &err) : NULL;
  int n = vals ? lsq_instance_values(L, mod, iidx, cols, vals, s->arena, &err) : -1;
  if (n < 0) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  if (lsq_validate(L, midx, mod, cols, vals, n, 0, iidx, bad)) {
    lsq_scratch_done(s);
    return lua_error(L);
  }
  if (mod->has_lua_checks) {
    /* Validators may normalise the instance: what is inserted is the
     * instance as they left it, checked again by the built-in rules. */
    n = lsq_instance_values(L, mod, iidx, cols, vals, s->arena, &err);
    if (n < 0) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_CORE, iidx, 0)) {
      lsq_scratch_done(s);
      return lua_error(L);
    }
  }
  const lsq_shape *sh = lsq_shape_find(mod, SHAPE_INSERT, cols, n, 1);
  if (!sh) {
    sq_query q;
    sq_query_init(&q, SQ_Q_INSERT, mod->m);
    q.cols = cols;
    q.ncols = n;
    q.values = vals;
    q.nrows = 1;
    /* SQLite generates nothing but the rowid, which last_insert_id gives:
     * no RETURNING needed there */
    q.returning = mod->dialect != SQ_DIALECT_SQLITE;
    if (sq_render(&q, mod->dialect, &s->sql, &err)) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    lsq_shape_store(mod, SHAPE_INSERT, cols, n, 1, &s->sql, vals, n);
  }
  int returning = sh ? sh->returns_rows : s->sql.returns_rows;
  sq_result res;
  const char *sql = sh ? shape_sql(sh, s->arena, &err) : s->sql.sql;
  if (!sql) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  size_t len = sh ? sh->len : s->sql.len;
  const sq_value *params = sh ? vals : s->sql.params;
  int np = sh ? n : s->sql.nparams;
  int failed = returning ? run_sql_fill(L, dbidx, mod, iidx, sql, len, params, np, &res)
                         : run_sql(L, dbidx, mod, sql, len, params, np, 0, 0, &res);
  lsq_scratch_done(s);
  if (failed) return lua_error(L);
  /* one row: LAST_INSERT_ID() / last_insert_rowid() is its key, whatever
   * the server's increment */
  if (!returning && mod->auto_col >= 0 && res.last_insert_id) {
    if (lua_rawgeti(L, iidx, mod->auto_col + 1) == LUA_TNIL) {
      lua_pushinteger(L, (lua_Integer)res.last_insert_id);
      lua_rawseti(L, iidx, mod->auto_col + 1);
    }
    lua_pop(L, 1);
  }
  lsq_instance_saved(L, iidx);
  lua_pushvalue(L, iidx);
  return 1;
}

/*
 * Model:create(values [, { fields = {...} }]) -> instance (inserted; ids
 * and defaults filled). With fields, only those of the given values are
 * written: the other columns get what an insert that leaves them out
 * gives them (the mass-assignment guard for form input).
 */
static int model_create(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "create expects a table of column values, got %s", luaL_typename(L, 2));
  lua_settop(L, 3);
  lsq_check_opts(L, 3, "create", fields_only);
  const unsigned char *fields = lsq_fields_opt(L, mod, 3, "create");
  lua_getiuservalue(L, 1, MUV_IMT);
  int imt = lua_gettop(L);
  lua_pushnil(L); /* conversion failures */
  sq_err err;
  sq_err_clear(&err);
  /* The instance is inserted at once and never seen unsaved, except by
   * Lua validators (which get it): only then is it marked new. */
  if (lsq_instance_from(L, 1, imt, 2, mod->has_lua_checks, fields, imt + 1, &err)) return lsq_raise(L, &err);
  return lsq_instance_insert(L, 1, -1, imt + 1);
}

/* The values of a where-less write: refused unless all = true. */
static int refuse_all(lsq_qb *b, const lsq_qopts *o) {
  if (o->has_where || o->all) return SQ_OK;
  return sq_err_set(b->err, SQ_EUSAGE,
                    "%s without a where is refused (it would touch every row): pass { where = ... } or { all = true }",
                    b->method);
}

/* Converts the table at vidx (name = value) into cols/vals (arena).
 * With bad (a stack index), a value that does not convert is recorded
 * there (lsq_bad_value) and left out; else it is an error. */
static int values_of(lsq_qb *b, int vidx, int *cols, sq_value *vals, int *n, int bad) {
  lua_State *L = b->L;
  *n = 0;
  lua_pushnil(L);
  while (lua_next(L, vidx)) {
    int c = lsq_col_index(b, -2, b->method);
    if (c < 0) {
      lua_pop(L, 2);
      return b->err->kind;
    }
    char buf[48];
    int rc = lsq_col_value(L, -1, sq_model_col(b->mod->m, c), &vals[*n], buf, b->scratch->arena, b->err);
    lua_pop(L, 1);
    if (rc && bad && (rc = lsq_bad_value(L, bad, b->mod->cols[c], b->err)) == SQ_OK) {
      sq_err_clear(b->err);
      continue;
    }
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
    /* keep column order, so equal shapes render equal SQL */
    int j = (*n)++;
    sq_value v = vals[j];
    while (j > 0 && cols[j - 1] > c) {
      cols[j] = cols[j - 1];
      vals[j] = vals[j - 1];
      j--;
    }
    cols[j] = c;
    vals[j] = v;
  }
  return SQ_OK;
}

/*
 * Model:update(values, { where = ... } | { all = true }) -> affected rows.
 * updated_at is set too; the values are validated first.
 */
static int model_update(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "update expects a table of column values, got %s", luaL_typename(L, 2));
  lua_settop(L, 3);
  int dbidx = lsq_model_db(L, 1);
  char now[32];
  lsq_now(now);
  QB_INIT(b, s, err, mod, "update");
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  lsq_qopts o;
  lua_pushnil(L); /* conversion failures of the values */
  int bad = lua_gettop(L);
  int rc = lsq_build_options(&b, 3, QO_WHERE | QO_ALL | QO_PARANOID, &q, &o);
  if (!rc) rc = refuse_all(&b, &o);
  int *cols = rc ? NULL : lsq_alloc(s, sizeof *cols * (size_t)(mod->ncols + 1), &err);
  sq_value *vals = cols ? lsq_alloc(s, sizeof *vals * (size_t)(mod->ncols + 1), &err) : NULL;
  int n = 0;
  if (!rc && !vals) rc = err.kind;
  if (!rc) rc = values_of(&b, 2, cols, vals, &n, bad);
  if (!rc && n == 0 && lua_isnil(L, bad)) rc = sq_err_set(&err, SQ_EUSAGE, "update: no values given");
  if (rc) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  if (lsq_validate(L, 1, mod, cols, vals, n, LSQ_V_PARTIAL, 0, bad)) {
    lsq_scratch_done(s);
    return lua_error(L);
  }
  if (mod->updated_col >= 0) {
    int given = 0;
    for (int i = 0; i < n; i++) given |= cols[i] == mod->updated_col;
    if (!given) {
      cols[n] = mod->updated_col;
      vals[n++] = sq_text(now, sq_model_col(mod->m, mod->updated_col)->type == SQ_T_DATE ? 10 : strlen(now));
    }
  }
  q.cols = cols;
  q.ncols = n;
  q.values = vals;
  q.nrows = 1;
  if (sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, 0, 0, &res)) return lua_error(L);
  lua_pushinteger(L, (lua_Integer)res.affected_rows);
  return 1;
}

/*
 * Model:destroy{ where = ... | all = true [, force = true] } -> affected
 * rows. Paranoid models set deleted_at unless force.
 * Model:restore{ where = ... } (paranoid) clears deleted_at.
 */
static int destroy_or_restore(lua_State *L, int restore) {
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1);
  char now[32];
  lsq_now(now);
  QB_INIT(b, s, err, mod, restore ? "restore" : "destroy");
  sq_query q;
  sq_query_init(&q, SQ_Q_DELETE, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 2, QO_WHERE | QO_ALL | (restore ? 0 : QO_FORCE), &q, &o);
  if (!rc) rc = refuse_all(&b, &o);
  if (!rc && restore && mod->deleted_col < 0)
    rc = sq_err_set(&err, SQ_EUSAGE, "restore: %s is not paranoid", sq_model_name(mod->m));
  int dcol = mod->deleted_col;
  sq_value dval = sq_null();
  if (!rc && (restore || (mod->deleted_col >= 0 && !o.force))) {
    q.kind = SQ_Q_UPDATE;
    if (!restore) dval = sq_text(now, sq_model_col(mod->m, dcol)->type == SQ_T_DATE ? 10 : strlen(now));
    q.cols = &dcol;
    q.ncols = 1;
    q.values = &dval;
    q.nrows = 1;
    q.paranoid = !restore;
  } else {
    q.paranoid = 0;
  }
  if (!rc) rc = sq_render(&q, mod->dialect, &s->sql, &err);
  if (rc) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, 0, 0, &res)) return lua_error(L);
  lua_pushinteger(L, (lua_Integer)res.affected_rows);
  return 1;
}

static int model_destroy(lua_State *L) { return destroy_or_restore(L, 0); }
static int model_restore(lua_State *L) { return destroy_or_restore(L, 1); }

/*
 * Model:increment(fields, { where = ... [, by = n] }) -> affected rows.
 * fields: "coins", { "coins", "goods" } (by each, default 1) or
 * { coins = 5, goods = -1 }.
 */
static int class_incr(lua_State *L, int sign, const char *method) {
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 3);
  int dbidx = lsq_model_db(L, 1);
  char now[32];
  lsq_now(now);
  QB_INIT(b, s, err, mod, method);
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 3, QO_WHERE | QO_ALL | QO_BY | QO_PARANOID, &q, &o);
  if (!rc) rc = refuse_all(&b, &o);
  int *cols = rc ? NULL : lsq_alloc(s, sizeof *cols * (size_t)mod->ncols, &err);
  sq_value *vals = cols ? lsq_alloc(s, sizeof *vals * (size_t)mod->ncols, &err) : NULL;
  if (!rc && !vals) rc = err.kind;
  int n = 0;
  /* normalise to { name = amount } at tidx */
  lua_newtable(L);
  int tidx = lua_gettop(L);
  if (!rc) {
    if (lua_type(L, 2) == LUA_TSTRING) {
      lua_pushvalue(L, 2);
      if (o.by_idx) lua_pushvalue(L, o.by_idx);
      else lua_pushinteger(L, 1);
      lua_rawset(L, tidx);
    } else if (lua_type(L, 2) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, 2)) {
        if (lua_isinteger(L, -2)) {
          lua_pushvalue(L, -1);
          if (o.by_idx) lua_pushvalue(L, o.by_idx);
          else lua_pushinteger(L, 1);
          lua_rawset(L, tidx);
        } else {
          lua_pushvalue(L, -2);
          lua_pushvalue(L, -2);
          lua_rawset(L, tidx);
        }
        lua_pop(L, 1);
      }
    } else {
      rc = sq_err_set(&err, SQ_EUSAGE, "%s expects a column name, a list of names or { column = amount }", method);
    }
  }
  if (!rc) {
    /* negate for decrement, keeping the numbers alive in the table */
    lua_pushnil(L);
    while (!rc && lua_next(L, tidx)) {
      if (lua_type(L, -1) != LUA_TNUMBER) {
        rc = sq_err_set(&err, SQ_EUSAGE, "%s: amounts must be numbers", method);
        lua_pop(L, 2);
        break;
      }
      if (sign < 0) {
        lua_pushvalue(L, -2);
        if (lua_isinteger(L, -2)) lua_pushinteger(L, -lua_tointeger(L, -2));
        else lua_pushnumber(L, -lua_tonumber(L, -2));
        lua_rawset(L, tidx);
      }
      lua_pop(L, 1);
    }
  }
  if (!rc) rc = values_of(&b, tidx, cols, vals, &n, 0);
  for (int i = 0; !rc && i < n; i++) {
    int t = sq_model_col(mod->m, cols[i])->type;
    if (t != SQ_T_INTEGER && t != SQ_T_BIGINT && t != SQ_T_SMALLINT && t != SQ_T_FLOAT && t != SQ_T_DOUBLE && t != SQ_T_DECIMAL)
      rc = sq_err_set(&err, SQ_EUSAGE, "%s: column '%s' is not numeric", method, sq_model_col(mod->m, cols[i])->name);
  }
  if (!rc && n == 0) rc = sq_err_set(&err, SQ_EUSAGE, "%s: no columns given", method);
  int ucol = mod->updated_col;
  sq_value uval;
  if (!rc) {
    q.incr_cols = cols;
    q.incr_values = vals;
    q.nincr = n;
    if (ucol >= 0) {
      uval = sq_text(now, sq_model_col(mod->m, ucol)->type == SQ_T_DATE ? 10 : strlen(now));
      q.cols = &ucol;
      q.ncols = 1;
      q.values = &uval;
      q.nrows = 1;
    }
    rc = sq_render(&q, mod->dialect, &s->sql, &err);
  }
  if (rc) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, 0, 0, &res)) return lua_error(L);
  lua_pushinteger(L, (lua_Integer)res.affected_rows);
  return 1;
}

static int model_increment(lua_State *L) { return class_incr(L, 1, "increment"); }
static int model_decrement(lua_State *L) { return class_incr(L, -1, "decrement"); }

/* ---------------------------------------------------------------- */
/* bulk_create                                                        */
/* ---------------------------------------------------------------- */

typedef struct bulk_ctx {
  lsq_model *mod;
  lsq_scratch *s;     /* its sql holds the batch's statement */
  int n;              /* records */
  int *cols;          /* inserted columns */
  int ncols;
  const sq_value *rows; /* n x ncols values, row-major (scratch arena) */
  int per;            /* rows per statement */
  int auto_given;     /* the auto-increment key is among the columns */
} bulk_ctx;

/*
 * The keys a multi-row INSERT generated, when the server returns none
 * (MySQL, TiDB, MariaDB < 10.5: no RETURNING). LAST_INSERT_ID() gives
 * the first row's key only; the others follow it one by one only when
 * the server guarantees it: auto_increment_increment = 1 (Galera and
 * multi-primary setups use more) and innodb_autoinc_lock_mode 0 or 1,
 * under which InnoDB reserves a statement's keys in one block (lock mode
 * 2, MySQL 8's default, may interleave them with concurrent inserts).
 * TiDB never promises consecutive keys. Read per bulk_create (one round
 * trip; the increment is a session variable a raw SET can change); when
 * there is no such guarantee, bulk_create inserts row by row inside the
 * batch's transaction, each row's key read exactly.
 */
typedef struct autoinc_vars {
  int64_t v[2];
  int got;
} autoinc_vars;

static int autoinc_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)ud, (void)ncols, (void)cols, (void)err;
  return 0;
}

static int autoinc_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  autoinc_vars *a = ud;
  (void)err;
  if (a->got || ncols < 2) return 0;
  for (int i = 0; i < 2; i++) {
    if (vals[i].type == SQ_VINT) a->v[i] = vals[i].u.i;
    else if (vals[i].type == SQ_VTEXT && vals[i].u.s.n > 0 && vals[i].u.s.n < 20) {
      char buf[24];
      memcpy(buf, vals[i].u.s.p, vals[i].u.s.n);
      buf[vals[i].u.s.n] = '\0';
      a->v[i] = strtoll(buf, NULL, 10);
    } else return 0;
  }
  a->got = 1;
  return 0;
}

/* Sets *yes to 1 when one multi-row INSERT on c->conn gets consecutive
 * keys starting at LAST_INSERT_ID(); a server that can't say means no. */
static int mysql_ids_consecutive(lua_State *L, conn_ctx *c, int dbidx, int *yes, sq_err *err) {
  static const char sql[] = "SELECT @@SESSION.auto_increment_increment, @@GLOBAL.innodb_autoinc_lock_mode";
  const sq_driver *d = sq_conn_driver(c->conn);
  const char *version = d->server_version ? d->server_version(sq_conn_handle(c->conn)) : "";
  *yes = 0;
  if (strstr(version, "TiDB")) return SQ_OK;
  autoinc_vars a;
  memset(&a, 0, sizeof a);
  sq_row_sink sink = {&a, autoinc_columns, autoinc_row};
  sq_result res;
  sq_err e2;
  sq_err_clear(&e2);
  int rc = conn_exec(L, c, dbidx, sql, sizeof sql - 1, NULL, 0, &sink, &res, &e2);
  if (rc == SQ_ECONNECTION || rc == SQ_ENOMEM) {
    *err = e2;
    return rc;
  }
  *yes = !rc && a.got && a.v[0] == 1 && (a.v[1] == 0 || a.v[1] == 1);
  return SQ_OK;
}

/* with_conn function: [1] ctx, [2] db, [3] model, [4] list of instances.
 * All batches, in one transaction (or savepoint) when there are several. */
static int bulk_fn(lua_State *L) {
  conn_ctx *c = lua_touserdata(L, 1);
  bulk_ctx *bc = c->ud;
  lsq_model *mod = bc->mod;
  sq_err err;
  sq_err_clear(&err);
  int rc = SQ_OK, per = bc->per;
  /* PostgreSQL and MariaDB >= 10.5 return the generated keys; SQLite and
   * the rest of the MySQL family report one, from which the others follow
   * only where that is guaranteed (mysql_ids_consecutive). */
  int caps = sq_conn_caps(c->conn);
  int returning = mod->dialect == SQ_DIALECT_POSTGRES ||
                  (mod->dialect == SQ_DIALECT_MYSQL && (caps & SQ_CAP_INSERT_RETURNING));
  if (mod->dialect == SQ_DIALECT_MYSQL && !returning && mod->auto_col >= 0 && !bc->auto_given &&
      bc->n > 1 && per > 1) {
    int consecutive;
    if ((rc = mysql_ids_consecutive(L, c, 2, &consecutive, &err))) return lsq_raise(L, &err);
    if (!consecutive) per = 1;
  }
  int multi = bc->n > per;
  if (multi) rc = tx_begin(L, c, 2, &err);
  int top = lua_gettop(L);
  for (int from = 0; !rc && from < bc->n; from += per) {
    int k = bc->n - from < per ? bc->n - from : per;
    sq_query q;
    sq_query_init(&q, SQ_Q_INSERT, mod->m);
    q.cols = bc->cols;
    q.ncols = bc->ncols;
    q.values = bc->rows + (size_t)from * (size_t)bc->ncols;
    q.nrows = k;
    q.returning = returning;
    q.caps = caps;
    /* batches of one size share one statement (and its prepared form) */
    int np = k * bc->ncols;
    const lsq_shape *sh = lsq_shape_find(mod, SHAPE_BULK_INSERT, bc->cols, bc->ncols, k);
    sq_sql *sql = &bc->s->sql;
    sq_sql_free(sql);
    if (!sh) {
      if ((rc = sq_render(&q, mod->dialect, sql, &err))) break;
      lsq_shape_store(mod, SHAPE_BULK_INSERT, bc->cols, bc->ncols, k, sql, q.values, np);
    }
    /* the batch's own copy of a cached statement (see shape_sql) */
    const char *shsql = sh ? shape_sql(sh, bc->s->arena, &err) : NULL;
    if (sh && !shsql) {
      rc = err.kind;
      break;
    }
    int returns_rows = sh ? sh->returns_rows : sql->returns_rows;
    /* RETURNING rows go straight into their instances (list at 4) */
    lsq_isink s;
    lsq_isink_init(&s, L, mod, SINK_FILL_LIST);
    s.bare = 1;
    s.identity = 1;
    s.out = 4;
    s.fill_base = from;
    sq_row_sink sink;
    lsq_isink_sink(&s, &sink);
    sq_result res;
    rc = sh ? conn_exec(L, c, 2, shsql, sh->len, q.values, np, returns_rows ? &sink : NULL, &res, &err)
            : conn_exec(L, c, 2, sql->sql, sql->len, sql->params, sql->nparams, returns_rows ? &sink : NULL, &res, &err);
    if (rc) break;
    if (!returns_rows && mod->auto_col >= 0 && !bc->auto_given && res.last_insert_id) {
      /* MySQL reports the first key, and k > 1 only where the keys are
       * known to be consecutive (above). SQLite reports the last: one
       * writer, and each row without a key gets max(rowid) + 1 (or, with
       * AUTOINCREMENT, the largest ever + 1), in VALUES order. */
      int64_t first = mod->dialect == SQ_DIALECT_SQLITE ? res.last_insert_id - k + 1 : res.last_insert_id;
      for (int r = 0; r < k; r++) {
        lua_rawgeti(L, 4, from + r + 1);
        lua_pushinteger(L, (lua_Integer)(first + r));
        lua_rawseti(L, -2, mod->auto_col + 1);
        lua_pop(L, 1);
      }
    }
    lua_settop(L, top);
  }
  if (multi) {
    if (rc) {
      sq_err e2;
      sq_err_clear(&e2);
      if (!sq_conn_is_dead(c->conn)) tx_end(L, c, 2, 0, &e2);
    } else {
      rc = tx_end(L, c, 2, 1, &err);
    }
  }
  if (rc) return lsq_raise(L, &err);
  return 0;
}

/* Raises err after freeing the scratch, prefixed with the record. */
static int bulk_fail(lua_State *L, lsq_scratch *s, int rec, const sq_err *err) {
  lsq_scratch_done(s);
  sq_err e2;
  sq_err_clear(&e2);
  if (rec > 0) sq_err_set(&e2, err->kind, "bulk_create: record #%d: %.900s", rec, err->msg);
  else sq_err_set(&e2, err->kind, "bulk_create: %.900s", err->msg);
  return lsq_raise(L, &e2);
}

/*
 * Model:bulk_create({ values, ... } [, { batch_size = n }]) -> { instance, ... }
 * One pass over the records builds each instance and, at the same time,
 * its row of converted values (defaults and timestamps applied); every
 * record is then validated before any SQL. The rows go out as one
 * multi-row INSERT per batch (bounded by PARAM_BUDGET bound values),
 * straight from those values, in one transaction (a savepoint inside the
 * caller's) when there is more than one batch: all or nothing. Generated
 * keys are the server's (RETURNING, or LAST_INSERT_ID() where keys are
 * known to be consecutive, else one row per INSERT: bulk_fn).
 */
static int model_bulk_create(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "bulk_create expects a list of records, got %s", luaL_typename(L, 2));
  lua_settop(L, 3);
  static const char *const bulk_opts[] = {"batch_size", NULL};
  lsq_check_opts(L, 3, "bulk_create", bulk_opts);
  int batch = 0;
  if (lua_type(L, 3) == LUA_TTABLE && lua_getfield(L, 3, "batch_size") != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) return lsq_usage(L, "bulk_create: batch_size must be a positive integer");
    batch = lua_tointeger(L, -1) > 1000000 ? 1000000 : (int)lua_tointeger(L, -1);
  }
  lua_settop(L, 3);
  /* a list: a record past a hole must not be left out silently */
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    lua_pop(L, 1);
    count++;
  }
  if (count != (lua_Integer)lua_rawlen(L, 2) || count > INT32_MAX)
    return lsq_usage(L, "bulk_create expects a list of records (keys 1..n, no holes)");
  int dbidx = lsq_model_db(L, 1);          /* 4 */
  lua_getiuservalue(L, 1, MUV_IMT);        /* 5 */
  int nrec = (int)lua_rawlen(L, 2);
  lua_createtable(L, nrec, 0);             /* 6: the instances */
  int lidx = 6;
  if (nrec == 0) return 1;
  lua_getiuservalue(L, 1, MUV_NAMES);      /* 7 */
  char now[32];
  lsq_now(now);
  lua_pushstring(L, now);                  /* 8 */
  lua_getiuservalue(L, 1, MUV_EXTRA);      /* 9 */
  lua_getfield(L, 9, "defaults");          /* 10 */
  int ncols = mod->ncols;
  size_t nowlen = strlen(now);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);     /* 11 */
  sq_value *rows = lsq_alloc(s, sizeof *rows * (size_t)nrec * (size_t)ncols, &err);
  unsigned char *present = rows ? lsq_alloc(s, (size_t)ncols, &err) : NULL;
  if (!present) return bulk_fail(L, s, 0, &err);
  memset(rows, 0, sizeof *rows * (size_t)nrec * (size_t)ncols); /* SQ_VNULL */
  memset(present, 0, (size_t)ncols);
  lua_pushnil(L);                          /* 12: record -> its conversion failures */
  int bads = 12;
  int top = lua_gettop(L);

  /* pass 1: instances and their rows */
  for (int i = 1; i <= nrec; i++) {
    sq_value *row = rows + (size_t)(i - 1) * (size_t)ncols;
    if (lua_rawgeti(L, 2, i) != LUA_TTABLE || lsq_test_instance(L, -1)) {
      sq_err_set(&err, SQ_EUSAGE, "must be a table of column values");
      return bulk_fail(L, s, i, &err);
    }
    int ridx = top + 1;
    lua_createtable(L, ncols, 0);
    lua_pushvalue(L, 5);
    lua_setmetatable(L, -2);
    int iidx = top + 2;
    lua_pushnil(L);
    int bad = top + 3;
    lua_pushnil(L);
    while (lua_next(L, ridx)) {
      int slot = 0;
      if (lua_type(L, -2) == LUA_TSTRING) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, 7) == LUA_TNUMBER) slot = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
      }
      if (!slot) {
        if (lua_type(L, -2) == LUA_TSTRING)
          sq_err_set(&err, SQ_EUSAGE, "%s has no column '%.64s'", sq_model_name(mod->m), lua_tostring(L, -2));
        else
          sq_err_set(&err, SQ_EUSAGE, "column names must be strings, got a %s key", luaL_typename(L, -2));
        return bulk_fail(L, s, i, &err);
      }
      int c = slot - 1;
      present[c] = 1;
      if (!lsq_is_null(L, -1)) {
        char buf[48];
        sq_value *v = &row[c];
        if (lsq_col_value(L, -1, mod->cols[c], v, buf, NULL, &err)) {
          /* form input of the wrong type: listed with the rule failures */
          if (lsq_bad_value(L, bad, mod->cols[c], &err)) return bulk_fail(L, s, i, &err);
          sq_err_clear(&err);
          *v = sq_null();
          lua_pop(L, 1);
          continue;
        }
        if ((v->type == SQ_VTEXT || v->type == SQ_VBLOB) && lua_type(L, -1) == LUA_TSTRING && v->u.s.p == lua_tostring(L, -1) &&
            mod->cols[c]->type != SQ_T_DECIMAL)
          lua_pushvalue(L, -1);
        else lsq_push_colval(L, mod->cols[c], v);
        lua_rawseti(L, iidx, slot);
        /* the operation's own copy of what it sends */
        if (lsq_own_value(s->arena, v, &err)) return bulk_fail(L, s, i, &err);
      }
      lua_pop(L, 1);
    }
    /* defaults, UUID keys and timestamps for what the record leaves NULL */
    for (int c = 0; c < ncols; c++) {
      const sq_col *col = mod->cols[c];
      sq_value *v = &row[c];
      if (v->type != SQ_VNULL) continue;
      int ts = c == mod->created_col || c == mod->updated_col;
      if (col->default_kind == SQ_DEFAULT_NONE && c != mod->uuid_pk && !ts) continue;
      if (col->default_kind == SQ_DEFAULT_VALUE) {
        *v = col->default_value;
        lsq_push_colval(L, col, v);
      } else if (col->default_kind == SQ_DEFAULT_NOW || (ts && col->default_kind == SQ_DEFAULT_NONE)) {
        *v = sq_text(now, col->type == SQ_T_DATE ? 10 : nowlen);
        if (col->type == SQ_T_DATE) lua_pushlstring(L, now, 10);
        else lua_pushvalue(L, 8);
      } else if (col->default_kind == SQ_DEFAULT_CALLBACK) {
        lua_rawgeti(L, 10, c + 1);
        lua_call(L, 0, 1);
        if (lua_isnil(L, -1) || lsq_is_null(L, -1)) {
          lua_pop(L, 1);
          present[c] = 1;
          continue;
        }
        char buf[48];
        if (lsq_col_value(L, -1, col, v, buf, s->arena, &err)) return bulk_fail(L, s, i, &err);
        lua_pop(L, 1);
        lsq_push_colval(L, col, v);
      } else { /* UUIDV4, or a UUID key without a default */
        char *u = sq_arena_alloc(s->arena, 40);
        if (!u) {
          sq_err_set(&err, SQ_ENOMEM, "out of memory");
          return bulk_fail(L, s, i, &err);
        }
        if (sq_uuid_v4(u, &err)) return bulk_fail(L, s, i, &err);
        *v = sq_text(u, 36);
        lua_pushlstring(L, u, 36);
      }
      present[c] = 1;
      lua_rawseti(L, iidx, c + 1);
    }
    if (lua_type(L, bad) == LUA_TTABLE) {
      if (lua_type(L, bads) != LUA_TTABLE) {
        lua_newtable(L);
        lua_replace(L, bads);
      }
      lua_pushvalue(L, bad);
      lua_rawseti(L, bads, i);
    }
    lua_settop(L, iidx);
    lua_rawseti(L, lidx, i);
    lua_settop(L, top);
  }

  /* the inserted columns: those any record gives or defaults fill */
  int *cols = lsq_alloc(s, sizeof *cols * (size_t)ncols, &err);
  if (!cols) return bulk_fail(L, s, 0, &err);
  int nins = 0;
  for (int c = 0; c < ncols; c++)
    if (present[c]) cols[nins++] = c;
  if (mod->auto_col >= 0 && present[mod->auto_col]) {
    for (int i = 0; i < nrec; i++)
      if (rows[(size_t)i * (size_t)ncols + (size_t)mod->auto_col].type == SQ_VNULL) {
        lsq_scratch_done(s);
        return lsq_usage(L, "bulk_create: give the auto-increment key '%s' in every record or in none",
                         mod->cols[mod->auto_col]->name);
      }
  }
  /* compact the rows to the inserted columns (in place: nins <= ncols) */
  sq_value *out = rows;
  for (int i = 0; i < nrec; i++) {
    const sq_value *row = rows + (size_t)i * (size_t)ncols;
    for (int k = 0; k < nins; k++) *out++ = row[cols[k]];
  }
  /* pass 2: validate every record before any SQL */
  for (int i = 0; i < nrec; i++) {
    lua_rawgeti(L, lidx, i + 1);
    int inst = lua_gettop(L);
    if (lua_type(L, bads) == LUA_TTABLE) lua_rawgeti(L, bads, i + 1);
    else lua_pushnil(L);
    sq_value *row = rows + (size_t)i * (size_t)nins;
    int failed = lsq_validate(L, 1, mod, cols, row, nins, 0, inst, inst + 1);
    if (!failed && mod->has_lua_checks) {
      /* Validators may normalise the instance: what is inserted is the
       * instance as they left it, checked again by the built-in rules. */
      int k = 0;
      for (int c = 0; c < ncols && !failed; c++) {
        int t = lua_rawgeti(L, inst, c + 1);
        if (k < nins && cols[k] == c) {
          char buf[48];
          if (t == LUA_TNIL) row[k] = sq_null();
          else if (lsq_col_value(L, -1, mod->cols[c], &row[k], buf, s->arena, &err)) failed = 2;
          k++;
        } else if (t != LUA_TNIL) {
          sq_err_set(&err, SQ_EUSAGE, "a validator set column '%s', which the records of this bulk_create leave out",
                     mod->cols[c]->name);
          failed = 2;
        }
        lua_pop(L, 1);
      }
      if (failed) return bulk_fail(L, s, i + 1, &err);
      failed = lsq_validate(L, 1, mod, cols, row, nins, LSQ_V_CORE, inst, 0);
    }
    if (failed) {
      lsq_scratch_done(s);
      lua_pushinteger(L, i + 1);
      lua_setfield(L, -2, "index");
      lua_getfield(L, -1, "message");
      lua_pushfstring(L, "bulk_create: record #%d: %s", i + 1, lua_tostring(L, -1));
      lua_setfield(L, -3, "message");
      lua_pop(L, 1);
      return lua_error(L);
    }
    lua_settop(L, inst - 1);
  }

  bulk_ctx bc;
  memset(&bc, 0, sizeof bc);
  bc.mod = mod;
  bc.s = s;
  bc.n = nrec;
  bc.cols = cols;
  bc.ncols = nins;
  bc.rows = rows;
  bc.auto_given = mod->auto_col >= 0 && present[mod->auto_col];
  bc.per = PARAM_BUDGET / (nins ? nins : 1);
  if (batch && batch < bc.per) bc.per = batch;
  if (nins == 0 && mod->dialect != SQ_DIALECT_MYSQL) bc.per = 1;
  conn_ctx c;
  memset(&c, 0, sizeof c);
  c.fn = bulk_fn;
  c.ud = &bc;
  lua_pushvalue(L, dbidx);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, lidx);
  int failed = with_conn(L, dbidx, &c, 3);
  lsq_scratch_done(s);
  if (failed) {
    unique_fields(L, mod);
    return lua_error(L);
  }
  lua_pushvalue(L, lidx);
  return 1;
}

/* ---------------------------------------------------------------- */
/* find_or_create                                                     */
/* ---------------------------------------------------------------- */

typedef struct foc_ctx {
  const lsq_model *mod;
  sq_sql *sel;
  sq_sql *ins;
} foc_ctx;

/* Runs the SELECT of find_or_create on c->conn: pushes the instance or nil. */
static int foc_select(lua_State *L, conn_ctx *c, foc_ctx *fc, int imt, sq_err *err) {
  lsq_isink s;
  lsq_isink_init(&s, L, fc->mod, SINK_ONE);
  s.identity = 1;
  lua_pushnil(L);
  s.out = lua_gettop(L);
  s.imt = imt;
  sq_row_sink sink;
  lsq_isink_sink(&s, &sink);
  sq_result res;
  int rc = conn_exec(L, c, 2, fc->sel->sql, fc->sel->len, fc->sel->params, fc->sel->nparams, &sink, &res, err);
  lua_settop(L, s.out);
  return rc;
}

/* with_conn function: [1] ctx, [2] db, [3] model, [4] the new instance,
 * [5] a validation error or nil, [6] imt. Returns instance, created. */
static int foc_fn(lua_State *L) {
  conn_ctx *c = lua_touserdata(L, 1);
  foc_ctx *fc = c->ud;
  const lsq_model *mod = fc->mod;
  sq_err err;
  sq_err_clear(&err);
  if (foc_select(L, c, fc, 6, &err)) return lsq_raise(L, &err);
  if (!lua_isnil(L, -1)) {
    lua_pushboolean(L, 0);
    return 2;
  }
  lua_pop(L, 1);
  if (!lua_isnil(L, 5)) {
    lua_pushvalue(L, 5);
    return lua_error(L);
  }
  lsq_isink s;
  lsq_isink_init(&s, L, mod, SINK_ONE);
  s.bare = 1;
  s.identity = 1;
  lua_pushnil(L);
  s.out = lua_gettop(L);
  sq_row_sink sink;
  lsq_isink_sink(&s, &sink);
  sq_result res;
  int rc = conn_exec(L, c, 2, fc->ins->sql, fc->ins->len, fc->ins->params, fc->ins->nparams,
                     fc->ins->returns_rows ? &sink : NULL, &res, &err);
  if (rc == SQ_EUNIQUE) {
    /* created by someone else meanwhile: read it (not possible inside an
     * aborted postgres transaction; then the unique error stands) */
    sq_err e2;
    sq_err_clear(&e2);
    lua_settop(L, 6);
    if (!foc_select(L, c, fc, 6, &e2) && !lua_isnil(L, -1)) {
      lua_pushboolean(L, 0);
      return 2;
    }
    return lsq_raise(L, &err);
  }
  if (rc) return lsq_raise(L, &err);
  if (fc->ins->returns_rows) {
    if (!lua_isnil(L, s.out)) lsq_instance_fill(L, mod, 4, s.out);
  } else if (mod->auto_col >= 0 && res.last_insert_id) {
    if (lua_rawgeti(L, 4, mod->auto_col + 1) == LUA_TNIL) {
      lua_pushinteger(L, (lua_Integer)res.last_insert_id);
      lua_rawseti(L, 4, mod->auto_col + 1);
    }
    lua_pop(L, 1);
  }
  lsq_instance_saved(L, 4);
  lua_pushvalue(L, 4);
  lua_pushboolean(L, 1);
  return 2;
}

/* What the where of a find_or_create fixes by equality (the values a new
 * row gets) and what else it constrains. */
typedef struct foc_walk {
  const sq_value **fixed; /* per column: the value where fixes, or NULL */
  unsigned char *constrained; /* per column: an operator constrains it */
  int raw;                /* a sqorm.raw condition: what it needs is unknown */
  int conflict;           /* a column fixed to two values, or -1 */
} foc_walk;

static const sq_value foc_null = {SQ_VNULL, {0}};

static void foc_mark(const sq_expr *e, foc_walk *w) {
  if (e->op == SQ_OP_RAW) w->raw = 1;
  if (e->col >= 0) w->constrained[e->col] = 1;
  for (int i = 0; i < e->nkids; i++) foc_mark(e->kids[i], w);
}

/* Equality (a plain value, op.eq, sqorm.null) at the top level of the
 * where or inside and_ (at any depth of ANDs) fixes a column; anything
 * else only constrains the columns it names. */
static void foc_scan(const sq_expr *e, foc_walk *w) {
  if (e->op == SQ_OP_AND) {
    for (int i = 0; i < e->nkids; i++) foc_scan(e->kids[i], w);
    return;
  }
  const sq_value *v = NULL;
  if (e->col >= 0 && e->op == SQ_OP_EQ && e->nvals == 1) v = &e->vals[0];
  else if (e->col >= 0 && e->op == SQ_OP_IS_NULL) v = &foc_null;
  if (!v) {
    foc_mark(e, w);
    return;
  }
  if (w->fixed[e->col] && !same_value(w->fixed[e->col], v)) w->conflict = e->col;
  w->fixed[e->col] = v;
}

/*
 * The values of find_or_create's new row into a table pushed on the
 * stack: what the where at q fixes by equality, plus the defaults table
 * at didx (0: none). A column an operator constrains that neither gives
 * is an error (usage), and so is a defaults value that contradicts the
 * where: the new row must be one the where finds.
 */
static int foc_values(lua_State *L, const lsq_model *mod, const sq_expr *where, int didx, sq_arena *a, sq_err *err) {
  foc_walk w;
  w.fixed = sq_arena_alloc(a, sizeof *w.fixed * (size_t)mod->ncols);
  w.constrained = sq_arena_alloc(a, (size_t)mod->ncols);
  if (!w.fixed || !w.constrained) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  memset(w.fixed, 0, sizeof *w.fixed * (size_t)mod->ncols);
  memset(w.constrained, 0, (size_t)mod->ncols);
  w.raw = 0;
  w.conflict = -1;
  foc_scan(where, &w);
  if (w.raw)
    return sq_err_set(err, SQ_EUSAGE, "find_or_create: a sqorm.raw condition can't tell what to insert; "
                                      "use column conditions in where");
  if (w.conflict >= 0)
    return sq_err_set(err, SQ_EUSAGE, "find_or_create: where fixes '%s' to two different values", mod->cols[w.conflict]->name);
  lua_createtable(L, 0, mod->ncols);
  int vt = lua_gettop(L);
  for (int c = 0; c < mod->ncols; c++) {
    if (!w.fixed[c]) continue;
    if (w.fixed[c]->type == SQ_VNULL) lsq_push_null(L);
    else lsq_push_colval(L, mod->cols[c], w.fixed[c]);
    lua_setfield(L, vt, mod->cols[c]->name);
  }
  if (didx) {
    lua_pushnil(L);
    while (lua_next(L, didx)) {
      int c = lua_type(L, -2) == LUA_TSTRING ? sq_model_find(mod->m, lua_tostring(L, -2), lua_rawlen(L, -2)) : -1;
      if (c >= 0 && w.fixed[c]) {
        /* given twice: only when it says the same */
        sq_value v;
        char buf[48];
        sq_err e2;
        sq_err_clear(&e2);
        if (lsq_col_value(L, -1, mod->cols[c], &v, buf, NULL, &e2) == SQ_OK && !same_value(&v, w.fixed[c])) {
          lua_settop(L, vt - 1);
          return sq_err_set(err, SQ_EUSAGE, "find_or_create: defaults give '%s' a value other than where's",
                            mod->cols[c]->name);
        }
      }
      if (c >= 0) w.constrained[c] = 0;
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, vt); /* names are checked when the instance is built */
    }
  }
  for (int c = 0; c < mod->ncols; c++)
    if (w.constrained[c] && !w.fixed[c]) {
      lua_settop(L, vt - 1);
      return sq_err_set(err, SQ_EUSAGE,
                        "find_or_create: where constrains '%s' with an operator but fixes no value for it; give it "
                        "in defaults (nothing was sent)",
                        mod->cols[c]->name);
    }
  return SQ_OK;
}

/*
 * Model:find_or_create{ where = {...} [, defaults = {...}] } -> instance, created
 * The SELECT and, when nothing matched, the INSERT (of what the where
 * fixes by equality, plus defaults) run on one connection, so a pool of
 * one can't deadlock and a transaction sees both.
 */
static int model_find_or_create(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "find_or_create expects { where = ..., defaults = ... }");
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1);     /* 3 */
  lua_getiuservalue(L, 1, MUV_IMT);   /* 4 */
  char now[32];
  lsq_now(now);
  QB_INIT(b, s, err, mod, "find_or_create"); /* 5 */
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 2, QO_WHERE | QO_DEFAULTS | QO_PARANOID, &q, &o);
  if (!rc && !o.has_where) rc = sq_err_set(&err, SQ_EUSAGE, "find_or_create needs a where");
  q.limit = 1;
  if (!rc) rc = sq_render(&q, mod->dialect, &s->sql, &err);
  if (!rc) rc = foc_values(L, mod, q.where, o.defaults_idx, s->arena, &err);
  int vt = lua_gettop(L);
  lua_pushnil(L); /* conversion failures of the values */
  int bad = vt + 1;
  if (!rc) rc = lsq_instance_from(L, 1, 4, vt, 1, NULL, bad, &err);
  if (rc) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  int iidx = lua_gettop(L);
  lsq_instance_prepare_insert(L, 1, iidx, now);
  int *cols = lsq_alloc(s, sizeof *cols * (size_t)mod->ncols, &err);
  sq_value *vals = cols ? lsq_alloc(s, sizeof *vals * (size_t)mod->ncols, &err) : NULL;
  int n = vals ? lsq_instance_values(L, mod, iidx, cols, vals, s->arena, &err) : -1;
  sq_sql ins;
  memset(&ins, 0, sizeof ins);
  if (n < 0) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  /* a validation failure matters only when nothing is found */
  int invalid = lsq_validate(L, 1, mod, cols, vals, n, 0, iidx, bad);
  if (!invalid && mod->has_lua_checks) {
    /* what validators left in the instance, checked by the built-in rules */
    n = lsq_instance_values(L, mod, iidx, cols, vals, s->arena, &err);
    if (n < 0) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    invalid = lsq_validate(L, 1, mod, cols, vals, n, LSQ_V_CORE, iidx, 0);
  }
  if (!invalid) lua_pushnil(L);
  int verr = lua_gettop(L);
  sq_query qi;
  sq_query_init(&qi, SQ_Q_INSERT, mod->m);
  qi.cols = cols;
  qi.ncols = n;
  qi.values = vals;
  qi.nrows = 1;
  qi.returning = 1;
  if (sq_render(&qi, mod->dialect, &ins, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  foc_ctx fc = {mod, &s->sql, &ins};
  conn_ctx c;
  memset(&c, 0, sizeof c);
  c.fn = foc_fn;
  c.ud = &fc;
  lua_pushvalue(L, dbidx);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, iidx);
  lua_pushvalue(L, verr);
  lua_pushvalue(L, 4);
  int top = lua_gettop(L) - 5;
  int failed = with_conn(L, dbidx, &c, 5);
  sq_sql_free(&ins);
  lsq_scratch_done(s);
  if (failed) {
    unique_fields(L, mod);
    return lua_error(L);
  }
  return lua_gettop(L) - top;
}

/* ---------------------------------------------------------------- */
/* upsert                                                             */
/* ---------------------------------------------------------------- */

/*
 * Model:upsert(values [, { conflict = {cols}, fields = {cols} }]) ->
 * instance, or true when MySQL can't say which row it was.
 * INSERT ... ON CONFLICT (conflict or the primary key) DO UPDATE /
 * ON DUPLICATE KEY UPDATE of `fields` (default: every given non-key
 * column except created_at).
 */
static int model_upsert(lua_State *L) {
  lsq_model *mod = lsq_check_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "upsert expects a table of column values, got %s", luaL_typename(L, 2));
  lua_settop(L, 3);
  int dbidx = lsq_model_db(L, 1);      /* 4 */
  lua_getiuservalue(L, 1, MUV_IMT);    /* 5 */
  char now[32];
  lsq_now(now);
  QB_INIT(b, s, err, mod, "upsert");   /* scratch: 6 */
  sq_query q;
  sq_query_init(&q, SQ_Q_UPSERT, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 3, QO_CONFLICT | QO_FIELDS, &q, &o);
  int *conf = NULL, nconf = 0, *upd = NULL, nupd = 0;
  if (!rc && o.conflict_idx) rc = lsq_build_cols(&b, o.conflict_idx, "conflict", &conf, &nconf);
  if (!rc && o.fields_idx) rc = lsq_build_cols(&b, o.fields_idx, "fields", &upd, &nupd);
  lua_settop(L, 6);
  lua_pushnil(L); /* 7: conversion failures of the values */
  if (!rc) rc = lsq_instance_from(L, 1, 5, 2, 1, NULL, 7, &err); /* 8 */
  if (rc) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  lsq_instance_prepare_insert(L, 1, 8, now);
  int *cols = lsq_alloc(s, sizeof *cols * (size_t)mod->ncols, &err);
  sq_value *vals = cols ? lsq_alloc(s, sizeof *vals * (size_t)mod->ncols, &err) : NULL;
  int n = vals ? lsq_instance_values(L, mod, 8, cols, vals, s->arena, &err) : -1;
  if (n < 0) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  if (lsq_validate(L, 1, mod, cols, vals, n, 0, 8, 7)) {
    lsq_scratch_done(s);
    return lua_error(L);
  }
  if (mod->has_lua_checks) {
    /* what validators left in the instance, checked by the built-in rules */
    n = lsq_instance_values(L, mod, 8, cols, vals, s->arena, &err);
    if (n < 0) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    if (lsq_validate(L, 1, mod, cols, vals, n, LSQ_V_CORE, 8, 0)) {
      lsq_scratch_done(s);
      return lua_error(L);
    }
  }
  q.cols = cols;
  q.ncols = n;
  q.values = vals;
  q.nrows = 1;
  q.returning = 1;
  q.conflict_cols = conf;
  q.nconflict = nconf;
  q.update_cols = upd;
  q.nupdate = nupd;
  if (sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  int returning = s->sql.returns_rows;
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, returning ? SINK_ONE : 0, RUN_BARE | RUN_ALLCOLS, &res)) return lua_error(L);
  if (returning) {
    if (!lua_isnil(L, -1)) lsq_instance_fill(L, mod, 8, lua_gettop(L));
    lsq_instance_saved(L, 8);
    lua_settop(L, 8);
    return 1;
  }
  /* MySQL: read the row back by its key when the key is known */
  if (mod->auto_col >= 0 && res.affected_rows == 1 && res.last_insert_id) {
    if (lua_rawgeti(L, 8, mod->auto_col + 1) == LUA_TNIL) {
      lua_pushinteger(L, (lua_Integer)res.last_insert_id);
      lua_rawseti(L, 8, mod->auto_col + 1);
    }
    lua_pop(L, 1);
  }
  int known = 1;
  for (int i = 0; i < mod->npk; i++) {
    known &= lua_rawgeti(L, 8, mod->pk[i] + 1) != LUA_TNIL;
    lua_pop(L, 1);
  }
  if (!known) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lsq_instance_saved(L, 8);
  lua_settop(L, 8);
  lua_getfield(L, 8, "reload");
  lua_pushvalue(L, 8);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) lua_pushboolean(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- */
/* registration                                                       */
/* ---------------------------------------------------------------- */

static const luaL_Reg model_methods[] = {
  {"build", model_build},
  {"create", model_create},
  {"bulk_create", model_bulk_create},
  {"find_by_pk", model_find_by_pk},
  {"find_one", model_find_one},
  {"find_all", model_find_all},
  {"find_or_create", model_find_or_create},
  {"upsert", model_upsert},
  {"count", model_count},
  {"sum", model_sum},
  {"min", model_min},
  {"max", model_max},
  {"avg", model_avg},
  {"update", model_update},
  {"destroy", model_destroy},
  {"restore", model_restore},
  {"increment", model_increment},
  {"decrement", model_decrement},
  {"each", lsq_model_each},
  {"sync", model_sync},
  {"drop", model_drop},
  {NULL, NULL},
};

static const luaL_Reg db_model_methods[] = {
  {"define", db_define},
  {"model", db_model},
  {"models", db_models},
  {"sync", db_sync},
  {"drop_all", db_drop_all},
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
    luaL_newlib(L, model_methods);
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
  lua_pop(L, 2);
  types_open(L, modidx);
  lsq_where_open(L, modidx);
  lsq_cursor_open(L);
}
