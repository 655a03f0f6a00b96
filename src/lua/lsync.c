/*
 * lsync.c - schema: Model:sync / Model:drop, db:sync / db:drop_all. Each
 * is one SYNC operation (sqorm.h, "Write and schema operations"): the
 * core runs its DDL on one connection (the running coroutine's
 * transaction's, or a pooled one), plans alter = true against the live
 * tables there, runs each plan as one transaction on SQLite and
 * PostgreSQL (a savepoint inside the caller's), and on SQLite outside a
 * transaction with foreign keys off, so a table rebuild never fires the
 * ON DELETE actions of the tables referencing it.
 */
#include "lwop.h"

#include <string.h>

/* ---------------------------------------------------------------- */
/* schema                                                             */
/* ---------------------------------------------------------------- */

enum { SYNC_CREATE = SQ_SYNC_CREATE, SYNC_FORCE = SQ_SYNC_FORCE, SYNC_ALTER = SQ_SYNC_ALTER, SYNC_DROP = SQ_SYNC_DROP,
       SYNC_ALTER_DROP = SQ_SYNC_ALTER_DROP };

/* The continuation of a sync / drop: the value at ctx's stack index, or
 * true (0). */
typedef struct sync_ctx {
  lsq_op *h;
  int ret;
} sync_ctx;

static int sync_k(lua_State *L, int status, lua_KContext ctx) {
  sync_ctx *w = (sync_ctx *)ctx;
  lsq_op *h = w->h;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  lsq_op_done(L, h);
  if (w->ret) lua_pushvalue(L, w->ret);
  else lua_pushboolean(L, 1);
  return 1;
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

/* Runs a sync over the list of models at lidx for the db at dbidx as
 * one SYNC operation; returns the value at ret (0: true). */
static int do_sync(lua_State *L, int dbidx, int lidx, int how, int ret) {
  dbidx = lua_absindex(L, dbidx);
  lidx = lua_absindex(L, lidx);
  int n = (int)lua_rawlen(L, lidx);
  lsq_op *h = lsq_op_get(L);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_SYNC);
  sq_err err;
  sq_err_clear(&err);
  sync_ctx *w = lsq_op_ctx(h, sizeof *w);
  sq_model **models = sq_arena_alloc(sq_oper_arena(op), sizeof *models * (size_t)(n + 1));
  if (!w || !models) return lsq_op_nomem(L, h);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, lidx, i + 1);
    models[i] = lsq_check_model(L, -1)->m; /* the list keeps them alive */
    lua_pop(L, 1);
  }
  if (sq_oper_sync(op, models, n, how, &err)) return lsq_op_fail(L, h, &err);
  w->h = h;
  w->ret = ret;
  return lsq_op_run(L, dbidx, h, sync_k, (lua_KContext)w);
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
  return do_sync(L, dbidx, dbidx + 1, how, 1);
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
  return do_sync(L, dbidx, dbidx + 1, SYNC_DROP, 0);
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
  return do_sync(L, 1, 3, how, 1);
}

/* db:drop_all() -> true: drops every model's table, in reverse order. */
static int db_drop_all(lua_State *L) {
  lsq_check_db(L, 1);
  lsq_check_opts(L, 2, "drop_all", NULL);
  lua_settop(L, 1);
  push_model_list(L, 1);
  return do_sync(L, 1, 2, SYNC_DROP, 0);
}

const luaL_Reg lsq_sync_methods[] = {
  {"sync", model_sync},
  {"drop", model_drop},
  {NULL, NULL},
};

const luaL_Reg lsq_sync_db_methods[] = {
  {"sync", db_sync},
  {"drop_all", db_drop_all},
  {NULL, NULL},
};
