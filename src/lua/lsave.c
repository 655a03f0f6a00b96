/*
 * lsave.c - the writes of one instance: p:save() and p:update() (INSERT
 * of a built instance, else an UPDATE of the changed columns addressed by
 * the key the row was loaded with, through the model's shape cache),
 * p:destroy(), p:reload(), p:increment() / p:decrement(). A write or
 * reload that matches no row raises kind stale.
 */
#include "lmodel.h"

#include <stdio.h>
#include <string.h>

/* The primary key condition of the instance at iidx: the key its row
 * was loaded with (IMT_ORIG) where a key column changed since, else the
 * values of its slots. The values are copied into a. */
static int pk_where(lua_State *L, const lsq_model *mod, int iidx, sq_arena *a, sq_expr **out, sq_err *err) {
  sq_expr *kids = sq_arena_alloc(a, sizeof *kids * (size_t)mod->npk);
  sq_value *vals = sq_arena_alloc(a, sizeof *vals * (size_t)mod->npk);
  sq_expr **pkids = sq_arena_alloc(a, sizeof *pkids * (size_t)mod->npk);
  sq_expr *and = sq_arena_alloc(a, sizeof *and);
  if (!kids || !vals || !pkids || !and) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  iidx = lua_absindex(L, iidx);
  int orig = lsq_push_orig(L, iidx) == LUA_TTABLE ? lua_gettop(L) : 0;
  for (int i = 0; i < mod->npk; i++) {
    int c = mod->pk[i];
    const sq_col *col = sq_model_col(mod->m, c);
    int t = LUA_TNIL;
    if (orig && (t = lua_rawgeti(L, orig, c + 1)) == LUA_TNIL) lua_pop(L, 1);
    if (t == LUA_TNIL && lua_rawgeti(L, iidx, c + 1) == LUA_TNIL) {
      lua_pop(L, 2);
      return sq_err_set(err, SQ_EUSAGE, "this %s instance has no primary key value ('%s'): load it with its key",
                        sq_model_name(mod->m), col->name);
    }
    char buf[48];
    int rc = lsq_col_value(L, -1, col, &vals[i], buf, a, err);
    lua_pop(L, 1);
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
    memset(&kids[i], 0, sizeof kids[i]);
    kids[i].op = SQ_OP_EQ;
    kids[i].col = c;
    kids[i].vals = &vals[i];
    kids[i].nvals = 1;
    pkids[i] = &kids[i];
  }
  lua_pop(L, 1); /* the original keys or nil */
  if (mod->npk == 1) {
    *out = &kids[0];
    return SQ_OK;
  }
  memset(and, 0, sizeof *and);
  and->op = SQ_OP_AND;
  and->kids = pkids;
  and->nkids = mod->npk;
  *out = and;
  return SQ_OK;
}


/* An instance write that matched no row: its row was deleted, or its
 * key changed, by someone else since it was loaded. */
static int raise_stale(lua_State *L, const lsq_model *mod, const char *method) {
  sq_err err;
  sq_err_clear(&err);
  sq_err_set(&err, SQ_ESTALE, "%s: no %s row has this instance's key any more (deleted or re-keyed since it was loaded)%s",
             method, sq_model_name(mod->m), strcmp(method, "reload") ? "; nothing was written" : "");
  return lsq_raise(L, &err);
}

/*
 * The columns p:save() writes for the saved instance at 1: changed ones
 * (only those flagged in fields, when given), plus updated_at (now) when
 * stamp. Values are converted and copied into a. Returns how many, or -1
 * with err filled.
 */
static int save_values(lua_State *L, const lsq_model *mod, const unsigned char *fields, int stamp, const char *now,
                       sq_arena *a, int *cols, sq_value *vals, sq_err *err) {
  lsq_push_state(L, 1);
  int ch = lua_gettop(L), n = 0;
  for (int i = 0; i < mod->ncols; i++) {
    if (i == mod->updated_col && stamp) {
      const sq_col *c = mod->cols[i];
      vals[n] = sq_text(now, c->type == SQ_T_DATE ? 10 : strlen(now)); /* the caller's buffer */
      cols[n++] = i;
      continue;
    }
    if (!lsq_state_has(L, ch, i + 1) || (fields && !fields[i])) continue;
    lua_rawgeti(L, 1, i + 1);
    int rc = SQ_OK;
    if (lua_isnil(L, -1)) vals[n] = sq_null();
    else {
      char buf[48];
      rc = lsq_col_value(L, -1, mod->cols[i], &vals[n], buf, a, err);
    }
    lua_pop(L, 1);
    if (rc) {
      lua_settop(L, ch - 1);
      return -1;
    }
    cols[n++] = i;
  }
  lua_settop(L, ch - 1);
  return n;
}

/*
 * p:save([{ fields = {...} }]) -> p. INSERT for a built instance; else an
 * UPDATE of the changed columns only (those in fields, when given), plus
 * updated_at, addressed by the key the row was loaded with; nothing when
 * nothing changed. An UPDATE that matches no row raises kind stale.
 * fields: a flag per column, or NULL.
 */
static int save_instance(lua_State *L, int midx, lsq_model *mod, const unsigned char *fields, const char *method) {
  lsq_push_state(L, 1);
  int ch = lua_gettop(L);
  /* the usual narrow model: the state as a mask, tested here in C */
  int wide = lua_type(L, ch) == LUA_TTABLE;
  lua_Unsigned mask = lua_type(L, ch) == LUA_TNUMBER ? (lua_Unsigned)lua_tointeger(L, ch) : 0;
#define CHANGED(b) (wide ? lsq_state_has(L, ch, (b)) : (int)((mask >> (b)) & 1))
  if (CHANGED(STATE_NEW)) {
    if (fields) {
      /* given values of other columns are not written: those columns get
       * what an insert that leaves them out gives them (defaults,
       * generated keys, timestamps) */
      for (int i = 0; i < mod->ncols; i++)
        if (!fields[i]) {
          lua_pushnil(L);
          lua_rawseti(L, 1, i + 1);
        }
    }
    lua_settop(L, midx);
    return lsq_instance_insert(L, midx, 1, 0);
  }
  int any = 0;
  for (int i = 1; i <= mod->ncols && !any; i++) any = CHANGED(i) && (!fields || fields[i - 1]);
  if (!any) {
    lua_settop(L, 1);
    return 1;
  }
  /* updated_at goes with every UPDATE (unless set by hand and written) */
  int stamp = mod->updated_col >= 0 && !(CHANGED(mod->updated_col + 1) && (!fields || fields[mod->updated_col]));
#undef CHANGED
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  lua_settop(L, dbidx);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  int *cols = a ? sq_arena_alloc(a, sizeof *cols * (size_t)mod->ncols) : NULL;
  /* room for the key values after the set ones: the parameters of a
   * cached UPDATE */
  sq_value *vals = a ? sq_arena_alloc(a, sizeof *vals * (size_t)(mod->ncols + mod->npk)) : NULL;
  if (!cols || !vals) {
    if (!err.kind) sq_err_set(&err, SQ_ENOMEM, "out of memory");
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  int n = save_values(L, mod, fields, stamp, now, a, cols, vals, &err);
  if (n < 0) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_PARTIAL, 1, 0)) {
    lsq_scratch_done(s);
    return lua_error(L);
  }
  if (mod->has_lua_checks) {
    /* Validators may normalise the instance (p.email = v:lower()): what
     * is written is the instance as they left it, checked again by the
     * built-in rules. */
    n = save_values(L, mod, fields, stamp, now, a, cols, vals, &err);
    if (n < 0) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_PARTIAL | LSQ_V_CORE, 1, 0)) {
      lsq_scratch_done(s);
      return lua_error(L);
    }
  }
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  q.paranoid = 0;
  q.cols = cols;
  q.ncols = n;
  q.values = vals;
  q.nrows = 1;
  if (pk_where(L, mod, 1, a, &q.where, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  /* the parameters: the set values, then the key (as pk_where has it) */
  const sq_expr *w = q.where;
  for (int i = 0; i < mod->npk; i++) vals[n + i] = mod->npk == 1 ? w->vals[0] : w->kids[i]->vals[0];
  const lsq_shape *sh = lsq_shape_find(mod, SHAPE_UPDATE_PK, cols, n, 1);
  const char *sql;
  size_t len;
  if (sh) {
    /* the operation's own copy: the logging function may evict the
     * cached shape (by running other statements) before it is sent */
    char *copy = sq_arena_alloc(a, sh->len + 1);
    if (!copy) {
      lsq_scratch_done(s);
      sq_err_set(&err, SQ_ENOMEM, "out of memory");
      return lsq_raise(L, &err);
    }
    memcpy(copy, sh->sql, sh->len + 1);
    sql = copy;
    len = sh->len;
  } else {
    if (sq_render(&q, mod->dialect, &s->sql, &err)) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    lsq_shape_store(mod, SHAPE_UPDATE_PK, cols, n, 1, &s->sql, vals, n + mod->npk);
    sql = s->sql.sql;
    len = s->sql.len;
  }
  sq_result res;
  int failed = sh ? lsq_model_run_sql(L, dbidx, mod, sql, len, vals, n + mod->npk, &res)
                  : lsq_model_run_sql(L, dbidx, mod, sql, len, s->sql.params, s->sql.nparams, &res);
  lsq_scratch_done(s);
  if (failed) return lua_error(L);
  if (res.affected_rows == 0) return raise_stale(L, mod, method);
  if (stamp) {
    const sq_col *c = mod->cols[mod->updated_col];
    lua_pushlstring(L, now, c->type == SQ_T_DATE ? 10 : strlen(now));
    lua_rawseti(L, 1, mod->updated_col + 1);
  }
  if (fields) lsq_saved_cols(L, mod, 1, cols, n);
  else lsq_instance_saved(L, 1);
  lua_settop(L, 1);
  return 1;
}

static const char *const save_opts[] = {"fields", NULL};

static int inst_save(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lsq_check_opts(L, 2, "save", save_opts);
  /* the mask stays on the stack above the model */
  const unsigned char *fields = lsq_fields_opt(L, mod, 2, "save");
  return save_instance(L, midx, mod, fields, "save");
}

/* p:update({ name = value, ... } [, { fields = {...} }]) -> p: sets them
 * (only those in fields, when given) and saves every pending change (in
 * fields). */
static int inst_update(lua_State *L) {
  lua_settop(L, 3);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "update expects a table of column values, got %s", luaL_typename(L, 2));
  lsq_check_opts(L, 3, "update", save_opts);
  const unsigned char *fields = lsq_fields_opt(L, mod, 3, "update");
  lsq_set_many(L, midx, mod, 2, fields, 1);
  return save_instance(L, midx, mod, fields, "update");
}

static const char *const destroy_opts[] = {"force", NULL};

/* p:destroy([{ force = true }]) -> true once its row is deleted (soft on
 * paranoid models: sets deleted_at); stale when no row has its key. */
static int inst_destroy(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lsq_check_opts(L, 2, "destroy", destroy_opts);
  int force = 0;
  if (lua_type(L, 2) == LUA_TTABLE) {
    int t = lua_getfield(L, 2, "force");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) return lsq_usage(L, "destroy: force must be a boolean");
    force = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  int soft = mod->deleted_col >= 0 && !force;
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  sq_query q;
  sq_query_init(&q, soft ? SQ_Q_UPDATE : SQ_Q_DELETE, mod->m);
  q.paranoid = 0;
  int dcol = mod->deleted_col;
  sq_value dval;
  if (soft) {
    const sq_col *c = sq_model_col(mod->m, dcol);
    dval = sq_text(now, c->type == SQ_T_DATE ? 10 : strlen(now));
    q.cols = &dcol;
    q.ncols = 1;
    q.values = &dval;
    q.nrows = 1;
  }
  if (!a || pk_where(L, mod, 1, a, &q.where, &err) || sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, 0, 0, &res)) return lua_error(L);
  if (res.affected_rows == 0) return raise_stale(L, mod, "destroy");
  if (soft) {
    lua_pushlstring(L, dval.u.s.p, dval.u.s.n);
    lua_rawseti(L, 1, dcol + 1);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* p:reload() -> p with every column read again, found by the key its
 * row was loaded with; stale when the row is gone. Pending changes are
 * dropped. */
static int inst_reload(lua_State *L) {
  lua_settop(L, 2);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lsq_check_opts(L, 2, "reload", NULL);
  int dbidx = lsq_model_db(L, midx);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  q.paranoid = 0;
  if (!a || pk_where(L, mod, 1, a, &q.where, &err) || sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, SINK_ONE, LSQ_RUN_BARE | LSQ_RUN_READ | LSQ_RUN_ALLCOLS, &res)) return lua_error(L);
  if (lua_isnil(L, -1)) return raise_stale(L, mod, "reload");
  lsq_instance_fill(L, mod, 1, lua_gettop(L));
  lsq_instance_saved(L, 1);
  lua_settop(L, 1);
  return 1;
}

/*
 * p:increment("coins" [, by | { by = n }]) / p:increment{ coins = 5 } -> p
 * UPDATE ... SET coins = coins + 5 by primary key; the instance's value
 * moves by the same amount (reload for the stored value when others
 * write too).
 */
static int incr(lua_State *L, int sign) {
  lua_settop(L, 3);
  int midx;
  lsq_model *mod = lsq_check_instance(L, &midx);
  lua_getiuservalue(L, midx, MUV_NAMES);
  int nidx = lua_gettop(L);
  /* normalise to a table { name = amount } at index fidx */
  lua_newtable(L);
  int fidx = lua_gettop(L);
  /* the amount for named columns: a number, { by = n } or 1 */
  static const char *const incr_opts[] = {"by", NULL};
  const char *method = sign > 0 ? "increment" : "decrement";
  if (lua_type(L, 3) == LUA_TTABLE) {
    lsq_check_opts(L, 3, method, incr_opts);
    lua_getfield(L, 3, "by");
  } else if (lua_isnil(L, 3)) {
    lua_pushnil(L);
  } else if (lua_type(L, 3) == LUA_TNUMBER) {
    lua_pushvalue(L, 3);
  } else {
    return lsq_usage(L, "%s: the amount must be a number or { by = n }", method);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushinteger(L, 1);
  }
  lua_replace(L, 3);
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, fidx);
  } else if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TSTRING) { /* { "coins", "goods" } */
        lua_pushvalue(L, -1);
        lua_pushvalue(L, 3);
        lua_rawset(L, fidx);
      } else {
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, fidx);
      }
      lua_pop(L, 1);
    }
  } else {
    return lsq_usage(L, "increment expects a column name or a table { column = amount }");
  }
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  sq_err err;
  sq_err_clear(&err);
  lsq_scratch *s = lsq_scratch_get(L);
  sq_arena *a = lsq_scratch_arena(s, &err);
  int *icols = a ? sq_arena_alloc(a, sizeof(int) * (size_t)mod->ncols) : NULL;
  sq_value *ivals = a ? sq_arena_alloc(a, sizeof(sq_value) * (size_t)mod->ncols) : NULL;
  int ni = 0;
  if (!icols || !ivals) {
    lsq_scratch_done(s);
    sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return lsq_raise(L, &err);
  }
  lua_pushnil(L);
  while (lua_next(L, fidx)) {
    int slot = lua_type(L, -2) == LUA_TSTRING ? lsq_slot_of(L, nidx, lua_gettop(L) - 1) : 0;
    if (!slot || ni >= mod->ncols) {
      lsq_no_column(L, mod, lua_gettop(L) - 1, &err);
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    const sq_col *c = sq_model_col(mod->m, slot - 1);
    if (lua_type(L, -1) != LUA_TNUMBER || (c->type != SQ_T_INTEGER && c->type != SQ_T_BIGINT &&
                                            c->type != SQ_T_SMALLINT && c->type != SQ_T_FLOAT &&
                                            c->type != SQ_T_DOUBLE && c->type != SQ_T_DECIMAL)) {
      sq_err_set(&err, SQ_EUSAGE, "increment: column '%s' needs a numeric column and a number", c->name);
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    if (sign < 0) {
      if (lua_isinteger(L, -1)) lua_pushinteger(L, -lua_tointeger(L, -1));
      else lua_pushnumber(L, -lua_tonumber(L, -1));
      lua_replace(L, -2);
    }
    char buf[48];
    if (lsq_col_value(L, -1, c, &ivals[ni], buf, a, &err)) {
      lsq_scratch_done(s);
      return lsq_raise(L, &err);
    }
    /* the negated number must stay reachable: keep it in the table */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, fidx);
    icols[ni++] = slot - 1;
    lua_pop(L, 1);
  }
  if (ni == 0) {
    lsq_scratch_done(s);
    return lsq_usage(L, "increment: no columns given");
  }
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  q.paranoid = 0;
  q.incr_cols = icols;
  q.incr_values = ivals;
  q.nincr = ni;
  int ucol = mod->updated_col;
  sq_value uval;
  if (ucol >= 0) {
    const sq_col *c = sq_model_col(mod->m, ucol);
    uval = sq_text(now, c->type == SQ_T_DATE ? 10 : strlen(now));
    q.cols = &ucol;
    q.ncols = 1;
    q.values = &uval;
    q.nrows = 1;
  }
  if (pk_where(L, mod, 1, a, &q.where, &err) || sq_render(&q, mod->dialect, &s->sql, &err)) {
    lsq_scratch_done(s);
    return lsq_raise(L, &err);
  }
  sq_result res;
  if (lsq_model_run(L, dbidx, mod, s, 0, 0, &res)) return lua_error(L);
  if (res.affected_rows == 0) return raise_stale(L, mod, sign > 0 ? "increment" : "decrement");
  /* move the instance's values along */
  lua_pushnil(L);
  while (lua_next(L, fidx)) {
    int slot = lsq_slot_of(L, nidx, lua_gettop(L) - 1);
    const sq_col *c = sq_model_col(mod->m, slot - 1);
    lua_rawgeti(L, 1, slot);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_arith(L, LUA_OPADD);
      if (c->type != SQ_T_FLOAT && c->type != SQ_T_DOUBLE) {
        int isint;
        lua_Integer iv = lua_tointegerx(L, -1, &isint);
        if (isint) {
          lua_pop(L, 1);
          lua_pushinteger(L, iv);
        }
      }
      lua_rawseti(L, 1, slot);
    } else {
      lua_pop(L, 2);
    }
  }
  if (ucol >= 0) {
    lua_pushlstring(L, uval.u.s.p, uval.u.s.n);
    lua_rawseti(L, 1, ucol + 1);
  }
  lua_settop(L, 1);
  return 1;
}

static int inst_increment(lua_State *L) { return incr(L, 1); }
static int inst_decrement(lua_State *L) { return incr(L, -1); }


const luaL_Reg lsq_save_methods[] = {
  {"save", inst_save},
  {"update", inst_update},
  {"destroy", inst_destroy},
  {"reload", inst_reload},
  {"increment", inst_increment},
  {"decrement", inst_decrement},
  {NULL, NULL},
};
