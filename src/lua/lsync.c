/*
 * lsync.c - schema: Model:sync / Model:drop, db:sync / db:drop_all.
 *
 * The statements of a sync run on one connection (lsq_with_conn): the
 * running coroutine's transaction's, or a pooled one. On SQLite and
 * PostgreSQL an alter plan runs as one transaction (a savepoint inside
 * the caller's), so a failed rebuild leaves the table as it was.
 *
 * Known hazard (for whoever turns this into a DDL operation): once
 * SQLite tables reference each other, a rebuild plan must run through
 * sq_sqlite_run_rebuild (foreign keys off, outside a transaction), else
 * DROP TABLE of a referenced table fires the ON DELETE actions of the
 * tables referencing it. This file still runs plans statement by
 * statement, as before operations.
 */
#include "lmodel.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* schema                                                             */
/* ---------------------------------------------------------------- */

enum { SYNC_CREATE = 0, SYNC_FORCE, SYNC_ALTER, SYNC_DROP, SYNC_ALTER_DROP };

typedef struct sync_ctx {
  lsq_scratch *s;
  int how;
} sync_ctx;

/* Runs the statements of list on c->conn and frees the list. */
static int run_list(lua_State *L, lsq_conn_ctx *c, int dbidx, sq_sql_list *list, sq_err *err) {
  int rc = SQ_OK;
  for (int i = 0; i < list->n && !rc; i++) {
    sq_result res;
    rc = lsq_conn_exec(L, c, dbidx, list->sql[i], strlen(list->sql[i]), NULL, 0, NULL, &res, err);
  }
  sq_sql_list_free(list);
  return rc;
}

/* One model's part of a sync, on c->conn. */
static int sync_model(lua_State *L, lsq_conn_ctx *c, int dbidx, const lsq_model *mod, int how, sq_sql_list *list, sq_err *err) {
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
    if (!rc && list->n > 0 && mod->dialect == SQ_DIALECT_POSTGRES && c->pooled) {
      /* ALTER TYPE ... ADD VALUE IF NOT EXISTS first, each committed on
       * its own: a new label can't be used (a default, a cast) in the
       * transaction that added it. Re-running them changes nothing. */
      int k = 0;
      for (int i = 0; i < list->n; i++) {
        if (!rc && !strncmp(list->sql[i], "ALTER TYPE ", 11)) {
          sq_result res;
          rc = lsq_conn_exec(L, c, dbidx, list->sql[i], strlen(list->sql[i]), NULL, 0, NULL, &res, err);
          free(list->sql[i]);
        } else {
          list->sql[k++] = list->sql[i];
        }
      }
      list->n = k;
      if (rc) {
        sq_sql_list_free(list);
        return rc;
      }
    }
    if (!rc && list->n > 0 && mod->dialect != SQ_DIALECT_MYSQL) {
      rc = lsq_conn_begin(L, c, dbidx, err);
      if (!rc) rc = run_list(L, c, dbidx, list, err);
      if (!rc) return lsq_conn_end(L, c, dbidx, 1, err);
      sq_err ignored;
      sq_err_clear(&ignored);
      lsq_conn_end(L, c, dbidx, 0, &ignored);
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
  lsq_conn_ctx *c = lua_touserdata(L, 1);
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
  lsq_conn_ctx c;
  memset(&c, 0, sizeof c);
  c.fn = sync_fn;
  c.ud = &sc;
  lua_pushvalue(L, dbidx);
  lua_pushvalue(L, lidx);
  int failed = lsq_with_conn(L, dbidx, &c, 2);
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
