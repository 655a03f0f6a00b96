/*
 * lmigrate.c - the C half of the migrator (lua/sqorm/migrate.lua): a
 * session userdata over sq_migrator (src/sqorm.h, "Migrations"), the
 * conversion of a migration's schema operations - plain Lua tables built
 * by migrate.lua, never SQL - into sq_sop for the core, the difference
 * between models and the live schema back into such tables (generate),
 * a directory listing and file checksums.
 *
 * A session's calls are plain core calls on the session's own connection
 * (see sqorm.h for why they are no sq_oper); rows of a migration's
 * m:query are built by a sink that runs inside lua_pcall, so no Lua
 * error ever crosses the core.
 *
 * Operation tables (migrate.lua makes them; every string is borrowed
 * from the table for the call):
 *   { kind = "create_table", table, cols = { col... }, indexes = { index... },
 *     fks = { fk... }, if_exists }
 *   { kind = "drop_table" | "remove_column" | "remove_index" | "remove_unique" |
 *     "drop_primary_key" | "remove_foreign_key", table, name, if_exists, index, fk }
 *   { kind = "rename_table" | "rename_column", table, name, new_name }
 *   { kind = "add_column" | "change_column", table, name, col, old_type }
 *   (from the difference, change_column and remove_column also carry old_col: the
 *    live column before the op, and note: what old_col could not say)
 *   { kind = "add_index" | "add_unique" | "add_primary_key", table, index, if_exists }
 *   { kind = "add_foreign_key", table, fk }
 *   { kind = "add_enum_values", table, name, values = { ... }, col }
 *   { kind = "note", note }
 *   col   = { name, type = sqorm.types.X, allow_null, primary_key, auto_increment,
 *             unique = true | "key", comment, default, references = fk,
 *             enum_type (PostgreSQL's type name; T.ENUM{...} gives the values) }
 *   index = { name, cols = { ... }, unique }
 *   fk    = { name, cols = { ... }, ref_table, ref_cols = { ... }, on_delete, on_update }
 *           (on_*: "cascade", "set_null", "restrict", "no_action")
 */
#include "lmodel.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LSQ_MIG_MT "sqorm.MigratorSession"

typedef struct lsq_mig {
  sq_migrator *m;
  int dialect;
  /* the statements of the current call (the log function appends) */
  char **log;
  int nlog, caplog;
} lsq_mig;

static void log_clear(lsq_mig *s) {
  for (int i = 0; i < s->nlog; i++) free(s->log[i]);
  s->nlog = 0;
}

static void on_sql(void *ud, const char *sql) {
  lsq_mig *s = ud;
  if (s->nlog == s->caplog) {
    int cap = s->caplog ? s->caplog * 2 : 8;
    char **n = realloc(s->log, cap * sizeof *n);
    if (!n) return;
    s->log = n;
    s->caplog = cap;
  }
  char *c = strdup(sql);
  if (c) s->log[s->nlog++] = c;
}

static void push_log(lua_State *L, lsq_mig *s) {
  lua_createtable(L, s->nlog, 0);
  for (int i = 0; i < s->nlog; i++) {
    lua_pushstring(L, s->log[i]);
    lua_rawseti(L, -2, i + 1);
  }
  log_clear(s);
}

static int mig_gc(lua_State *L) {
  lsq_mig *s = lua_touserdata(L, 1);
  if (s->m) sq_migrator_abandon(s->m);
  s->m = NULL;
  log_clear(s);
  free(s->log);
  s->log = NULL;
  s->caplog = 0;
  return 0;
}

static lsq_mig *check_mig(lua_State *L) {
  lsq_mig *s = luaL_checkudata(L, 1, LSQ_MIG_MT);
  if (!s->m) lsq_usage(L, "migrator: this session is closed");
  return s;
}

/* core._migrator_open(db, table, lock_timeout) -> session */
static int mig_open(lua_State *L) {
  lsq_db *db = lsq_check_db(L, 1);
  const char *table = luaL_optstring(L, 2, "sqorm_migrations");
  double lt = luaL_optnumber(L, 3, 60);
  if (!db->pool) {
    sq_err e;
    sq_err_set(&e, SQ_ECLOSED, "the db is closed");
    return lsq_raise(L, &e);
  }
  lsq_mig *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, LSQ_MIG_MT);
  sq_err err;
  sq_err_clear(&err);
  sq_holder h;
  lsq_db_holder(db, &h, "the migrator");
  if (sq_migrator_open(db->pool, &h, table, lt, &s->m, &err)) return lsq_raise(L, &err);
  s->dialect = sq_migrator_dialect(s->m);
  sq_migrator_set_log(s->m, on_sql, s);
  return 1;
}

static int row_to_lua(void *ud, const sq_migration_row *r, sq_err *err) {
  (void)err;
  lua_State *L = ud;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, r->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, (lua_Integer)r->batch);
  lua_setfield(L, -2, "batch");
  lua_pushstring(L, r->applied_at);
  lua_setfield(L, -2, "applied_at");
  lua_pushstring(L, r->checksum);
  lua_setfield(L, -2, "checksum");
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* rows inside lua_pcall: [1] the session's migrator (light), builds the list */
typedef struct pcall_rows {
  sq_migrator *m;
  int rc;
  sq_err err;
} pcall_rows;

static int rows_p(lua_State *L) {
  pcall_rows *p = lua_touserdata(L, 1);
  lua_newtable(L);
  p->rc = sq_migrator_rows(p->m, row_to_lua, L, &p->err);
  return 1;
}

/* s:rows() -> { { name, batch, applied_at, checksum }, ... } ordered by name */
static int mig_rows(lua_State *L) {
  lsq_mig *s = check_mig(L);
  pcall_rows p;
  memset(&p, 0, sizeof p);
  p.m = s->m;
  lua_pushcfunction(L, rows_p);
  lua_pushlightuserdata(L, &p);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    sq_conn_mark_dead(sq_migrator_conn(s->m));
    return lua_error(L);
  }
  if (p.rc) return lsq_raise(L, &p.err);
  return 1;
}

/* s:begin(name) */
static int mig_begin(lua_State *L) {
  lsq_mig *s = check_mig(L);
  const char *name = luaL_checkstring(L, 2);
  sq_err err;
  sq_err_clear(&err);
  log_clear(s);
  if (sq_migrator_begin(s->m, name, &err)) return lsq_raise(L, &err);
  return 0;
}

/* s:commit() -> { statements } */
static int mig_commit(lua_State *L) {
  lsq_mig *s = check_mig(L);
  sq_err err;
  sq_err_clear(&err);
  if (sq_migrator_commit(s->m, &err)) return lsq_raise(L, &err);
  push_log(L, s);
  return 1;
}

/* s:rollback(err) -> the error to raise (its message naming the migration) */
static int mig_rollback(lua_State *L) {
  lsq_mig *s = check_mig(L);
  sq_err err;
  sq_err_clear(&err);
  err.kind = SQ_EUSAGE;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "kind");
    const char *k = lua_tostring(L, -1);
    for (int i = 1; k && i < SQ_KIND_COUNT; i++)
      if (!strcmp(sq_kind_name(i), k)) err.kind = i;
    lua_pop(L, 1);
    lua_getfield(L, 2, "message");
    snprintf(err.msg, sizeof err.msg, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    lua_getfield(L, 2, "code");
    if (lua_type(L, -1) == LUA_TSTRING) snprintf(err.code, sizeof err.code, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, 2, "sqlstate");
    if (lua_type(L, -1) == LUA_TSTRING) snprintf(err.sqlstate, sizeof err.sqlstate, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  } else {
    const char *m = luaL_tolstring(L, 2, NULL);
    snprintf(err.msg, sizeof err.msg, "%s", m);
    lua_pop(L, 1);
  }
  sq_migrator_rollback(s->m, &err);
  log_clear(s);
  lsq_push_error(L, &err);
  return 1;
}

/* ---------------------------------------------------------------- */
/* operation tables -> sq_sop                                          */
/* ---------------------------------------------------------------- */

/* Memory for one conversion, kept alive by the table at stack index KEEP
 * (mig_apply and mig_render put it there); the stack is left as it was. */
#define KEEP 3
static void *scratch(lua_State *L, size_t n) {
  void *p = lua_newuserdatauv(L, n ? n : 1, 0);
  memset(p, 0, n ? n : 1);
  lua_rawseti(L, KEEP, (lua_Integer)lua_rawlen(L, KEEP) + 1);
  return p;
}

static const char *fstr(lua_State *L, int t, const char *k, int required, const char *what) {
  lua_getfield(L, t, k);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1) || required) lsq_usage(L, "%s: %s must be a string", what, k);
  lua_pop(L, 1); /* the string stays reachable from the table */
  return s;
}

static int fbool(lua_State *L, int t, const char *k, int dflt) {
  lua_getfield(L, t, k);
  int v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The list of strings at t[k] (NULL, 0 when absent). */
static const char *const *fnames_max(lua_State *L, int t, const char *k, int *n, const char *what, int max);
static const char *const *fnames(lua_State *L, int t, const char *k, int *n, const char *what) {
  return fnames_max(L, t, k, n, what, 64);
}
static const char *const *fnames_max(lua_State *L, int t, const char *k, int *n, const char *what, int max) {
  *n = 0;
  if (lua_getfield(L, t, k) == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TTABLE) lsq_usage(L, "%s: %s must be a list of names", what, k);
  int li = lua_gettop(L);
  int len = (int)lua_rawlen(L, li);
  if (len < 1 || len > max) lsq_usage(L, "%s: %s must list 1 to %d names", what, k, max);
  const char **a = scratch(L, len * sizeof *a);
  for (int i = 0; i < len; i++) {
    if (lua_rawgeti(L, li, i + 1) != LUA_TSTRING) lsq_usage(L, "%s: %s must be a list of names", what, k);
    a[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* the list (its strings stay reachable from the op table) */
  *n = len;
  return a;
}

static int action(lua_State *L, int t, const char *k, const char *what) {
  const char *s = fstr(L, t, k, 0, what);
  if (!s) return SQ_FK_DEFAULT;
  if (!strcmp(s, "cascade")) return SQ_FK_CASCADE;
  if (!strcmp(s, "set_null") || !strcmp(s, "set null")) return SQ_FK_SET_NULL;
  if (!strcmp(s, "restrict")) return SQ_FK_RESTRICT;
  if (!strcmp(s, "no_action") || !strcmp(s, "no action")) return SQ_FK_NO_ACTION;
  return lsq_usage(L, "%s: %s must be \"cascade\", \"set_null\", \"restrict\" or \"no_action\"", what, k);
}

static void to_fk(lua_State *L, int t, sq_sfk *fk, const char *what) {
  t = lua_absindex(L, t);
  fk->name = fstr(L, t, "name", 0, what);
  fk->cols = fnames(L, t, "cols", &fk->ncols, what);
  fk->ref_table = fstr(L, t, "ref_table", 1, what);
  fk->ref_cols = fnames(L, t, "ref_cols", &fk->nref_cols, what);
  fk->on_delete = action(L, t, "on_delete", what);
  fk->on_update = action(L, t, "on_update", what);
}

static void to_index(lua_State *L, int t, sq_sindex *ix, const char *what) {
  t = lua_absindex(L, t);
  ix->name = fstr(L, t, "name", 0, what);
  ix->cols = fnames(L, t, "cols", &ix->ncols, what);
  ix->unique = fbool(L, t, "unique", 0);
}

static void to_col(lua_State *L, int t, sq_scol *c, const char *what) {
  t = lua_absindex(L, t);
  const char *name = fstr(L, t, "name", 1, what);
  lua_getfield(L, t, "type");
  int length, precision, scale, nenum;
  const char *const *enumv;
  int type = lsq_type_get(L, -1, &length, &precision, &scale, &enumv, &nenum);
  if (!type) lsq_usage(L, "%s: column '%s': expected a type from sqorm.types", what, name);
  if (type == SQ_T_ENUM && nenum < 1)
    lsq_usage(L, "%s: column '%s': sqorm.types.ENUM needs its values: T.ENUM{ \"a\", \"b\" }", what, name);
  /* schema ops spell an ENUM as STRING with its values (anchored by the
   * type value, which the op table holds) */
  sq_scol_init(c, name, type == SQ_T_ENUM ? SQ_T_STRING : type);
  if (type == SQ_T_ENUM) {
    c->enum_values = enumv;
    c->nenum_values = nenum;
  }
  c->length = length;
  c->precision = precision;
  c->scale = scale;
  lua_pop(L, 1);
  c->enum_type = fstr(L, t, "enum_type", 0, what);
  c->allow_null = fbool(L, t, "allow_null", 1);
  c->primary_key = fbool(L, t, "primary_key", 0);
  c->auto_increment = fbool(L, t, "auto_increment", 0);
  lua_getfield(L, t, "unique");
  if (lua_type(L, -1) == LUA_TSTRING) c->unique = lua_tostring(L, -1);
  else if (lua_toboolean(L, -1)) c->unique = "";
  lua_pop(L, 1);
  c->comment = fstr(L, t, "comment", 0, what);
  lua_getfield(L, t, "default");
  if (!lua_isnil(L, -1) && !lsq_is_null(L, -1)) {
    sq_err err;
    sq_err_clear(&err);
    c->default_kind = SQ_DEFAULT_VALUE;
    if (lsq_to_value(L, -1, &c->default_value, "default", &err))
      lsq_usage(L, "%s: column '%s': %s", what, name, err.msg);
  }
  lua_pop(L, 1); /* a string default stays reachable from the table */
  if (lua_getfield(L, t, "references") == LUA_TTABLE) {
    sq_sfk *fk = scratch(L, sizeof *fk);
    to_fk(L, -1, fk, what);
    c->references = fk;
  }
  lua_pop(L, 1);
}

/* The list of tables at li, each converted by one of the to_* functions
 * into an array of n elements of size bytes (scratch memory). */
typedef void (*to_fn)(lua_State *L, int t, void *out, const char *what);
static void *to_list(lua_State *L, int li, size_t size, int n, to_fn conv, const char *noun, const char *what) {
  char *out = scratch(L, (size_t)n * size);
  for (int i = 0; i < n; i++) {
    if (lua_rawgeti(L, li, i + 1) != LUA_TTABLE) lsq_usage(L, "%s: every %s must be a table", what, noun);
    conv(L, -1, out + (size_t)i * size, what);
    lua_pop(L, 1);
  }
  return out;
}
static void conv_col(lua_State *L, int t, void *out, const char *what) { to_col(L, t, out, what); }
static void conv_index(lua_State *L, int t, void *out, const char *what) { to_index(L, t, out, what); }
static void conv_fk(lua_State *L, int t, void *out, const char *what) { to_fk(L, t, out, what); }


static const char *const kinds[] = {NULL, "create_table", "drop_table", "rename_table", "add_column",
                                    "remove_column", "rename_column", "change_column", "add_index",
                                    "remove_index", "add_unique", "remove_unique", "add_primary_key",
                                    "drop_primary_key", "add_foreign_key", "remove_foreign_key",
                                    "add_enum_values", "note"};

/* The op table at t into op; scratch memory is pushed on the stack. */
static void to_sop(lua_State *L, int t, sq_sop *op) {
  t = lua_absindex(L, t);
  const char *kind = fstr(L, t, "kind", 1, "schema operation");
  int k = 0;
  for (int i = 1; i < SQ_SOP_COUNT && i < (int)(sizeof kinds / sizeof *kinds); i++)
    if (!strcmp(kinds[i], kind)) k = i;
  if (!k) lsq_usage(L, "unknown schema operation '%s'", kind);
  const char *what = kind;
  sq_sop_init(op, k, fstr(L, t, "table", k != SQ_SOP_NOTE, what));
  op->name = fstr(L, t, "name", 0, what);
  op->new_name = fstr(L, t, "new_name", 0, what);
  op->note = fstr(L, t, "note", 0, what);
  op->if_exists = fbool(L, t, "if_exists", 0);
  op->values = fnames_max(L, t, "values", &op->nvalues, what, SQ_ENUM_MAX);
  lua_getfield(L, t, "old_type");
  if (lua_isinteger(L, -1)) op->old_type = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, t, "col") == LUA_TTABLE) {
    sq_scol *c = scratch(L, sizeof *c);
    to_col(L, -1, c, what);
    op->col = c;
  }
  lua_pop(L, 1);
  if (k == SQ_SOP_ADD_ENUM_VALUES && !op->values && op->col) {
    /* every value of the column: each dialect adds what is missing */
    op->values = op->col->enum_values;
    op->nvalues = op->col->nenum_values;
  }
  if (lua_getfield(L, t, "cols") == LUA_TTABLE) {
    int li = lua_gettop(L), n = (int)lua_rawlen(L, li);
    if (n < 1 || n > 4096) lsq_usage(L, "%s: cols must list 1 to 4096 columns", what);
    op->cols = to_list(L, li, sizeof(sq_scol), n, conv_col, "column", what);
    op->ncols = n;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "index") == LUA_TTABLE) {
    sq_sindex *ix = scratch(L, sizeof *ix);
    to_index(L, -1, ix, what);
    op->index = ix;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "indexes") == LUA_TTABLE) {
    int li = lua_gettop(L), n = (int)lua_rawlen(L, li);
    op->indexes = to_list(L, li, sizeof(sq_sindex), n, conv_index, "index", what);
    op->nindexes = n;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "fk") == LUA_TTABLE) {
    sq_sfk *fk = scratch(L, sizeof *fk);
    to_fk(L, -1, fk, what);
    op->fk = fk;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "fks") == LUA_TTABLE) {
    int li = lua_gettop(L), n = (int)lua_rawlen(L, li);
    op->fks = to_list(L, li, sizeof(sq_sfk), n, conv_fk, "foreign key", what);
    op->nfks = n;
  }
  lua_pop(L, 1);
}

/* s:apply(op) -> { statements } */
static int mig_apply(lua_State *L) {
  lsq_mig *s = check_mig(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_newtable(L); /* KEEP */
  sq_sop op;
  to_sop(L, 2, &op);
  sq_err err;
  sq_err_clear(&err);
  if (sq_migrator_apply(s->m, &op, 1, &err)) return lsq_raise(L, &err);
  push_log(L, s);
  return 1;
}

/* s:render(op) -> { statements }: the text with no connection (SQLite
 * rebuilds need the live table: usage) */
static int mig_render(lua_State *L) {
  lsq_mig *s = check_mig(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_newtable(L); /* KEEP */
  sq_sop op;
  to_sop(L, 2, &op);
  sq_err err;
  sq_err_clear(&err);
  sq_sql_list l = {0};
  if (sq_schema_render(&op, 1, s->dialect, 0, &l, &err)) return lsq_raise(L, &err);
  lua_createtable(L, l.n, 0);
  for (int i = 0; i < l.n; i++) {
    lua_pushstring(L, l.sql[i]);
    lua_rawseti(L, -2, i + 1);
  }
  sq_sql_list_free(&l);
  return 1;
}

/* ---------------------------------------------------------------- */
/* raw statements of a migration                                       */
/* ---------------------------------------------------------------- */

typedef struct pcall_exec {
  sq_migrator *m;
  const char *sql;
  size_t len;
  const sq_value *params;
  int nparams;
  int want_rows;
  int rc;
  sq_result res;
  sq_err err;
} pcall_exec;

static int exec_p(lua_State *L) {
  pcall_exec *p = lua_touserdata(L, 1);
  lua_settop(L, 1);
  if (p->want_rows) lua_newtable(L);
  else lua_pushnil(L);
  lsq_rows r = {L, lua_gettop(L), lua_gettop(L) + 1, 0, 0, LROWS_ALL};
  sq_row_sink sink;
  lsq_rows_sink(&r, &sink);
  p->rc = sq_migrator_exec(p->m, p->sql, p->len, p->params, p->nparams, p->want_rows ? &sink : NULL, &p->res, &p->err);
  lua_settop(L, r.rows);
  return 1;
}

/* s:exec(sql, binds, want_rows) -> rows | affected */
static int mig_exec(lua_State *L) {
  lsq_mig *s = check_mig(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  int n = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    n = (int)lua_rawlen(L, 3);
  }
  int want = lua_toboolean(L, 4);
  lua_settop(L, 4);
  sq_value *vals = lua_newuserdatauv(L, (n ? n : 1) * sizeof *vals, 0);
  sq_err err;
  sq_err_clear(&err);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    if (lsq_to_value(L, -1, &vals[i], "bind", &err)) return lsq_raise(L, &err);
    lua_pop(L, 1); /* strings stay reachable from the binds table */
  }
  pcall_exec p;
  memset(&p, 0, sizeof p);
  p.m = s->m;
  p.sql = sql;
  p.len = len;
  p.params = vals;
  p.nparams = n;
  p.want_rows = want;
  lua_pushcfunction(L, exec_p);
  lua_pushlightuserdata(L, &p);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    sq_conn_mark_dead(sq_migrator_conn(s->m));
    return lua_error(L);
  }
  if (p.rc) return lsq_raise(L, &p.err);
  if (!want) lua_pushinteger(L, (lua_Integer)p.res.affected_rows);
  return 1;
}

/* s:record(name, batch, checksum) / s:unrecord(name) */
static int mig_record(lua_State *L) {
  lsq_mig *s = check_mig(L);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer batch = luaL_checkinteger(L, 3);
  const char *sum = luaL_checkstring(L, 4);
  sq_err err;
  sq_err_clear(&err);
  if (sq_migrator_record(s->m, name, batch, sum, &err)) return lsq_raise(L, &err);
  return 0;
}

static int mig_unrecord(lua_State *L) {
  lsq_mig *s = check_mig(L);
  const char *name = luaL_checkstring(L, 2);
  sq_err err;
  sq_err_clear(&err);
  if (sq_migrator_unrecord(s->m, name, &err)) return lsq_raise(L, &err);
  return 0;
}

/* s:close() */
static int mig_close(lua_State *L) {
  lsq_mig *s = luaL_checkudata(L, 1, LSQ_MIG_MT);
  if (!s->m) return 0;
  sq_err err;
  sq_err_clear(&err);
  int rc = sq_migrator_close(s->m, &err);
  s->m = NULL;
  log_clear(s);
  if (rc) return lsq_raise(L, &err);
  return 0;
}

static int mig_dialect(lua_State *L) {
  lsq_mig *s = check_mig(L);
  lua_pushstring(L, sq_dialect_name(s->dialect));
  lua_pushboolean(L, sq_migrator_transactional(s->m));
  return 2;
}

/* ---------------------------------------------------------------- */
/* the difference (generate)                                           */
/* ---------------------------------------------------------------- */

static const char *action_name(int a) {
  switch (a) {
  case SQ_FK_CASCADE: return "cascade";
  case SQ_FK_SET_NULL: return "set_null";
  case SQ_FK_RESTRICT: return "restrict";
  case SQ_FK_NO_ACTION: return "no_action";
  default: return NULL;
  }
}

static void push_names(lua_State *L, const char *const *a, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, a[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void setstr(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void push_fk(lua_State *L, const sq_sfk *fk) {
  lua_newtable(L);
  setstr(L, "name", fk->name);
  if (fk->cols) {
    push_names(L, fk->cols, fk->ncols);
    lua_setfield(L, -2, "cols");
  }
  setstr(L, "ref_table", fk->ref_table);
  if (fk->ref_cols) {
    push_names(L, fk->ref_cols, fk->nref_cols);
    lua_setfield(L, -2, "ref_cols");
  }
  setstr(L, "on_delete", action_name(fk->on_delete));
  setstr(L, "on_update", action_name(fk->on_update));
}

static void push_index(lua_State *L, const sq_sindex *ix) {
  lua_newtable(L);
  setstr(L, "name", ix->name);
  push_names(L, ix->cols, ix->ncols);
  lua_setfield(L, -2, "cols");
  if (ix->unique) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "unique");
  }
}

static void push_col(lua_State *L, const sq_scol *c) {
  lua_newtable(L);
  setstr(L, "name", c->name);
  if (c->enum_values && c->nenum_values > 0) {
    lsq_type_push_enum(L, c->enum_values, c->nenum_values);
    lua_setfield(L, -2, "type");
    push_names(L, c->enum_values, c->nenum_values);
    lua_setfield(L, -2, "enum_values");
  } else {
    lsq_type_push(L, c->type, c->length, c->precision, c->scale);
    lua_setfield(L, -2, "type");
  }
  setstr(L, "enum_type", c->enum_type);
  if (!c->allow_null) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "allow_null");
  }
  if (c->primary_key) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "primary_key");
  }
  if (c->auto_increment) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "auto_increment");
  }
  if (c->unique) {
    if (*c->unique) lua_pushstring(L, c->unique);
    else lua_pushboolean(L, 1);
    lua_setfield(L, -2, "unique");
  }
  setstr(L, "comment", c->comment);
  if (c->default_kind == SQ_DEFAULT_VALUE) {
    lsq_push_value(L, &c->default_value);
    lua_setfield(L, -2, "default");
  }
  if (c->references) {
    push_fk(L, c->references);
    lua_setfield(L, -2, "references");
  }
}

static void push_sop(lua_State *L, const sq_sop *op) {
  lua_newtable(L);
  setstr(L, "kind", sq_sop_kind_name(op->kind));
  setstr(L, "table", op->table);
  setstr(L, "name", op->name);
  setstr(L, "new_name", op->new_name);
  setstr(L, "note", op->note);
  if (op->if_exists) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "if_exists");
  }
  if (op->old_type) {
    lua_pushinteger(L, op->old_type);
    lua_setfield(L, -2, "old_type");
    lua_pushstring(L, sq_ctype_name(op->old_type));
    lua_setfield(L, -2, "old_type_name");
  }
  if (op->values) {
    push_names(L, op->values, op->nvalues);
    lua_setfield(L, -2, "values");
  }
  if (op->change) {
    lua_pushinteger(L, op->change);
    lua_setfield(L, -2, "change");
  }
  if (op->col) {
    push_col(L, op->col);
    lua_setfield(L, -2, "col");
  }
  if (op->old_col) {
    push_col(L, op->old_col);
    lua_setfield(L, -2, "old_col");
  }
  if (op->cols) {
    lua_createtable(L, op->ncols, 0);
    for (int i = 0; i < op->ncols; i++) {
      push_col(L, &op->cols[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "cols");
  }
  if (op->index) {
    push_index(L, op->index);
    lua_setfield(L, -2, "index");
  }
  if (op->indexes) {
    lua_createtable(L, op->nindexes, 0);
    for (int i = 0; i < op->nindexes; i++) {
      push_index(L, &op->indexes[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "indexes");
  }
  if (op->fk) {
    push_fk(L, op->fk);
    lua_setfield(L, -2, "fk");
  }
  if (op->fks) {
    lua_createtable(L, op->nfks, 0);
    for (int i = 0; i < op->nfks; i++) {
      push_fk(L, &op->fks[i]);
      lua_pushboolean(L, op->fks[i].deferred);
      lua_setfield(L, -2, "deferred");
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "fks");
  }
}

typedef struct pcall_diff {
  const sq_sop_list *l;
} pcall_diff;

static int diff_p(lua_State *L) {
  pcall_diff *p = lua_touserdata(L, 1);
  lua_createtable(L, p->l->n, 0);
  for (int i = 0; i < p->l->n; i++) {
    push_sop(L, &p->l->ops[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* s:diff({ Model, ... }) -> { op, ... } (notes included) */
static int mig_diff(lua_State *L) {
  lsq_mig *s = check_mig(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2);
  lua_settop(L, 2);
  sq_model **ms = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ms, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    ms[i] = lsq_check_model(L, -1)->m;
    lua_pop(L, 1); /* the list keeps the model alive */
  }
  sq_sop_list l;
  memset(&l, 0, sizeof l);
  sq_err err;
  sq_err_clear(&err);
  if (sq_migrator_diff(s->m, ms, n, &l, &err)) {
    sq_sop_list_free(&l);
    return lsq_raise(L, &err);
  }
  pcall_diff p = {&l};
  lua_pushcfunction(L, diff_p);
  lua_pushlightuserdata(L, &p);
  int st = lua_pcall(L, 1, 1, 0);
  sq_sop_list_free(&l);
  if (st != LUA_OK) return lua_error(L);
  return 1;
}

/* ---------------------------------------------------------------- */
/* files                                                               */
/* ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* core._migrate_listdir(dir) -> sorted list of "*.lua" names | nil, message */
static int mig_listdir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  DIR *d = opendir(dir);
  if (!d) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot read the directory %s", dir);
    return 2;
  }
  char **names = NULL;
  int n = 0, cap = 0, oom = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".lua") || e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) {
        oom = 1;
        break;
      }
      names = nn;
    }
    if (!(names[n] = strdup(e->d_name))) {
      oom = 1;
      break;
    }
    n++;
  }
  closedir(d);
  if (!oom && n > 1) qsort(names, n, sizeof *names, cmp_str);
  /* into Lua only after every C resource is accounted for */
  lua_createtable(L, oom ? 0 : n, 0);
  int t = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    if (!oom) {
      lua_pushstring(L, names[i]); /* may raise on memory: leaks at most the names */
      lua_rawseti(L, t, i + 1);
    }
    free(names[i]);
  }
  free(names);
  if (oom) return luaL_error(L, "out of memory listing %s", dir);
  return 1;
}

/* core._migrate_checksum(text) -> 16 hex digits (FNV-1a 64 of the text with
 * "\r\n" read as "\n") */
static int mig_checksum(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') continue;
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  }
  char b[17];
  snprintf(b, sizeof b, "%016llx", (unsigned long long)h);
  lua_pushstring(L, b);
  return 1;
}

/* core._migrate_mkdir(dir): creates dir (one level) when missing */
static int mig_mkdir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    sq_err e;
    sq_err_set(&e, SQ_EUSAGE, "cannot create the directory %.200s: %s", dir, strerror(errno));
    return lsq_raise(L, &e);
  }
  return 0;
}

/* core._migrate_now() -> seconds (monotonic) */
static int mig_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

static const luaL_Reg session_methods[] = {
  {"rows", mig_rows},     {"begin", mig_begin},       {"apply", mig_apply},   {"render", mig_render},
  {"exec", mig_exec},     {"record", mig_record},     {"unrecord", mig_unrecord}, {"commit", mig_commit},
  {"rollback", mig_rollback}, {"close", mig_close}, {"dialect", mig_dialect}, {"diff", mig_diff},
  {NULL, NULL},
};

static const luaL_Reg funcs[] = {
  {"_migrator_open", mig_open},
  {"_migrate_listdir", mig_listdir},
  {"_migrate_checksum", mig_checksum},
  {"_migrate_mkdir", mig_mkdir},
  {"_migrate_now", mig_now},
  {NULL, NULL},
};

/* Adds the functions to the module table at modidx. */
void lsq_migrate_open(lua_State *L, int modidx) {
  modidx = lua_absindex(L, modidx);
  if (luaL_newmetatable(L, LSQ_MIG_MT)) {
    lua_pushcfunction(L, mig_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, session_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, LSQ_MIG_MT);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, modidx);
  luaL_setfuncs(L, funcs, 0);
  lua_pop(L, 1);
}
