/*
 * lsave.c - the writes of one instance: p:save() and p:update() (INSERT
 * of a built instance, else an UPDATE of the changed columns addressed by
 * the key the row was loaded with, through the model's shape cache),
 * p:destroy(), p:reload(), p:increment() / p:decrement(). A write or
 * reload that matches no row raises kind stale.
 */
#include "lwop.h"

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

/* Optimistic locking: the version the instance at iidx was loaded with
 * into *v (usage when it has none: loaded without that column). */
static int version_of(lua_State *L, const lsq_model *mod, int iidx, const char *method, int64_t *v, sq_err *err) {
  int isint = 0;
  lua_rawgeti(L, iidx, mod->version_col + 1);
  lua_Integer x = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  if (!isint)
    return sq_err_set(err, SQ_EUSAGE,
                      "%s: this %s instance has no version ('%s', optimistic locking): load it with that column",
                      method, sq_model_name(mod->m), mod->cols[mod->version_col]->name);
  *v = (int64_t)x;
  return SQ_OK;
}

/* *where AND version = *old (the value lives in a); the key values of
 * the instance (in pk order, as pk_where has them) go to the op for the
 * stale message, with the version expected. */
static int version_where(sq_oper *op, const lsq_model *mod, sq_arena *a, sq_expr **where, const int64_t *old,
                         sq_err *err) {
  const sq_expr *pkw = *where;
  sq_value *key = sq_arena_alloc(a, sizeof *key * (size_t)mod->npk);
  sq_value *vv = sq_arena_alloc(a, sizeof *vv);
  sq_expr *ve = sq_arena_alloc(a, sizeof *ve);
  sq_expr *and = sq_arena_alloc(a, sizeof *and);
  sq_expr **kids = sq_arena_alloc(a, sizeof *kids * (size_t)(mod->npk + 1));
  if (!key || !vv || !ve || !and || !kids) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  for (int i = 0; i < mod->npk; i++) {
    kids[i] = mod->npk == 1 ? (sq_expr *)pkw : pkw->kids[i];
    key[i] = kids[i]->vals[0];
  }
  *vv = sq_int(*old);
  memset(ve, 0, sizeof *ve);
  ve->op = SQ_OP_EQ;
  ve->col = mod->version_col;
  ve->vals = vv;
  ve->nvals = 1;
  kids[mod->npk] = ve;
  memset(and, 0, sizeof *and);
  and->op = SQ_OP_AND;
  and->kids = kids;
  and->nkids = mod->npk + 1;
  *where = and;
  if (sq_oper_set_key(op, key, mod->npk, err)) return err->kind;
  sq_oper_expect_version(op, *old);
  return SQ_OK;
}

/*
 * The columns p:save() writes for the saved instance at 1: changed ones
 * (only those flagged in fields, when given), plus updated_at (now) when
 * stamp. Values are converted and copied into a. Returns how many, or -1
 * with err filled.
 */
static int save_values(lua_State *L, const lsq_model *mod, const unsigned char *fields, int stamp, const char *now,
                       const int64_t *vnew, sq_arena *a, int *cols, sq_value *vals, sq_err *err) {
  lsq_push_state(L, 1);
  int ch = lua_gettop(L), n = 0;
  for (int i = 0; i < mod->ncols; i++) {
    if (i == mod->version_col && vnew) { /* optimistic locking: the next version */
      vals[n] = sq_int(*vnew);
      cols[n++] = i;
      continue;
    }
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

typedef struct save_ctx {
  lsq_op *h;
  const lsq_model *mod;
  int stamp, fields;
  int versioned;
  int64_t vnew;
  const char *now;
  const int *cols;
  int n;
} save_ctx;

/* The continuation of an instance's UPDATE: updated_at as written, the
 * written columns saved; p. */
static int save_k(lua_State *L, int status, lua_KContext ctx) {
  save_ctx *w = (save_ctx *)ctx;
  lsq_op *h = w->h;
  const lsq_model *mod = w->mod;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  if (w->stamp) {
    const sq_col *c = mod->cols[mod->updated_col];
    lua_pushlstring(L, w->now, c->type == SQ_T_DATE ? 10 : strlen(w->now));
    lua_rawseti(L, 1, mod->updated_col + 1);
  }
  if (w->versioned) {
    lua_pushinteger(L, (lua_Integer)w->vnew);
    lua_rawseti(L, 1, mod->version_col + 1);
  }
  if (w->fields) lsq_saved_cols(L, mod, 1, w->cols, w->n);
  else lsq_instance_saved(L, 1);
  lsq_op_done(L, h);
  lua_settop(L, 1);
  return 1;
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
  /* the operation's values live in its arena from here on */
  lsq_op *h = lsq_op_get_db(L, dbidx);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_UPDATE);
  sq_arena *a = sq_oper_arena(op);
  sq_err err;
  sq_err_clear(&err);
  save_ctx *w = lsq_op_ctx(h, sizeof *w);
  char *nowa = lsq_op_now(h, now);
  int *cols = sq_arena_alloc(a, sizeof *cols * (size_t)mod->ncols);
  /* room for the key values (and the version) after the set ones: the
   * parameters of a cached UPDATE */
  sq_value *vals = sq_arena_alloc(a, sizeof *vals * (size_t)(mod->ncols + mod->npk + 1));
  int64_t *vold = sq_arena_alloc(a, sizeof *vold * 2), *vnew = vold ? vold + 1 : NULL;
  if (!w || !nowa || !cols || !vals || !vold) return lsq_op_nomem(L, h);
  int versioned = mod->version_col >= 0;
  if (versioned) {
    if (version_of(L, mod, 1, method, vold, &err)) return lsq_op_fail(L, h, &err);
    *vnew = *vold + 1;
  } else {
    vnew = NULL;
  }
  int n = save_values(L, mod, fields, stamp, nowa, vnew, a, cols, vals, &err);
  if (n < 0) return lsq_op_fail(L, h, &err);
  if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_PARTIAL, 1, 0)) return lsq_op_throw(L, h);
  if (mod->has_lua_checks) {
    /* Validators may normalise the instance (p.email = v:lower()): what
     * is written is the instance as they left it, checked again by the
     * built-in rules. */
    n = save_values(L, mod, fields, stamp, nowa, vnew, a, cols, vals, &err);
    if (n < 0) return lsq_op_fail(L, h, &err);
    if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_PARTIAL | LSQ_V_CORE, 1, 0)) return lsq_op_throw(L, h);
  }
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  q.paranoid = 0;
  q.cols = cols;
  q.ncols = n;
  q.values = vals;
  q.nrows = 1;
  if (pk_where(L, mod, 1, a, &q.where, &err)) return lsq_op_fail(L, h, &err);
  /* the parameters: the set values, then the key (as pk_where has it) */
  const sq_expr *wh = q.where;
  for (int i = 0; i < mod->npk; i++) vals[n + i] = mod->npk == 1 ? wh->vals[0] : wh->kids[i]->vals[0];
  int np = n + mod->npk;
  if (versioned) {
    /* WHERE key AND version = the loaded one, in the same statement */
    if (version_where(op, mod, a, &q.where, vold, &err)) return lsq_op_fail(L, h, &err);
    vals[np++] = sq_int(*vold);
  }
  const lsq_shape *sh = lsq_shape_find(mod, SHAPE_UPDATE_PK, cols, n, 1);
  int rc;
  if (sh) {
    /* the op copies the cached text: nothing can evict it from under it */
    rc = sq_oper_add_sql(op, sh->sql, sh->len, vals, np, SQ_STMT_ARENA_VALUES, &err);
  } else {
    sq_sql sql;
    memset(&sql, 0, sizeof sql);
    rc = sq_render(&q, mod->dialect, &sql, &err);
    if (!rc) {
      lsq_shape_store(mod, SHAPE_UPDATE_PK, cols, n, 1, &sql, vals, np);
      rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_ARENA_VALUES, &err);
    }
    sq_sql_free(&sql);
  }
  if (rc) return lsq_op_fail(L, h, &err);
  sq_oper_set_model(op, mod->m);
  sq_oper_expect(op, 1, method);
  h->midx = midx;
  w->h = h;
  w->mod = mod;
  w->stamp = stamp;
  w->now = nowa;
  w->fields = fields != NULL;
  w->cols = cols;
  w->n = n;
  w->versioned = versioned;
  w->vnew = versioned ? *vnew : 0;
  return lsq_op_run(L, dbidx, h, save_k, (lua_KContext)w);
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

typedef struct dest_ctx {
  lsq_op *h;
  int soft, dcol;
  sq_value dval;
  int vcol;      /* soft with a version: the version column, else -1 */
  int64_t vnew;
} dest_ctx;

/* The continuation of p:destroy(): deleted_at as written (soft); true. */
static int destroy_k(lua_State *L, int status, lua_KContext ctx) {
  dest_ctx *w = (dest_ctx *)ctx;
  lsq_op *h = w->h;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  if (w->soft) {
    lua_pushlstring(L, w->dval.u.s.p, w->dval.u.s.n);
    lua_rawseti(L, 1, w->dcol + 1);
  }
  if (w->vcol >= 0) {
    lua_pushinteger(L, (lua_Integer)w->vnew);
    lua_rawseti(L, 1, w->vcol + 1);
  }
  lsq_op_done(L, h);
  lua_pushboolean(L, 1);
  return 1;
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
  lsq_op *h = lsq_op_get_db(L, dbidx);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_DELETE);
  sq_arena *a = sq_oper_arena(op);
  sq_err err;
  sq_err_clear(&err);
  dest_ctx *w = lsq_op_ctx(h, sizeof *w);
  sq_value *dval = sq_arena_alloc(a, sizeof *dval * 2);
  int *dcol = sq_arena_alloc(a, sizeof *dcol * 2);
  int64_t *vold = sq_arena_alloc(a, sizeof *vold);
  char *nowa = lsq_op_now(h, now);
  if (!w || !dval || !dcol || !nowa || !vold) return lsq_op_nomem(L, h);
  int versioned = mod->version_col >= 0;
  if (versioned && version_of(L, mod, 1, "destroy", vold, &err)) return lsq_op_fail(L, h, &err);
  sq_query q;
  sq_query_init(&q, soft ? SQ_Q_UPDATE : SQ_Q_DELETE, mod->m);
  q.paranoid = 0;
  *dcol = mod->deleted_col;
  if (soft) {
    const sq_col *c = sq_model_col(mod->m, *dcol);
    *dval = sq_text(nowa, c->type == SQ_T_DATE ? 10 : strlen(nowa));
    q.cols = dcol;
    q.ncols = 1;
    q.values = dval;
    q.nrows = 1;
    if (versioned) { /* a soft delete moves the row to the next version */
      dcol[1] = mod->version_col;
      dval[1] = sq_int(*vold + 1);
      q.ncols = 2;
    }
  }
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  int rc = pk_where(L, mod, 1, a, &q.where, &err);
  if (!rc && versioned) rc = version_where(op, mod, a, &q.where, vold, &err);
  if (!rc) rc = sq_render(&q, mod->dialect, &sql, &err);
  if (!rc) rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_ARENA_VALUES, &err);
  sq_sql_free(&sql);
  if (rc) return lsq_op_fail(L, h, &err);
  sq_oper_set_model(op, mod->m);
  sq_oper_expect(op, 1, "destroy");
  h->midx = midx;
  w->h = h;
  w->soft = soft;
  w->dcol = *dcol;
  w->dval = *dval;
  w->vcol = soft && versioned ? mod->version_col : -1;
  w->vnew = versioned ? *vold + 1 : 0;
  return lsq_op_run(L, dbidx, h, destroy_k, (lua_KContext)w);
}

/* The continuation of p:reload(): the row's values into p, saved; p. */
static int reload_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  const lsq_model *mod = h->isink.mod;
  if (lsq_op_push_out(L, h) == LUA_TTABLE) lsq_instance_fill(L, mod, 1, lua_gettop(L));
  lsq_instance_saved(L, 1);
  lsq_op_done(L, h);
  lua_settop(L, 1);
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
  lsq_op *h = lsq_op_get_db(L, dbidx);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_RELOAD);
  sq_err err;
  sq_err_clear(&err);
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  q.paranoid = 0;
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  int rc = pk_where(L, mod, 1, sq_oper_arena(op), &q.where, &err);
  if (!rc) rc = sq_render(&q, mod->dialect, &sql, &err);
  if (!rc)
    rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_READ | SQ_STMT_ARENA_VALUES, &err);
  sq_sql_free(&sql);
  if (rc) return lsq_op_fail(L, h, &err);
  sq_oper_set_model(op, mod->m);
  lsq_isink *s = lsq_op_sink_model(L, h, midx, SINK_ONE);
  s->bare = 1;
  s->identity = 1;
  return lsq_op_run(L, dbidx, h, reload_k, (lua_KContext)h);
}

typedef struct incr_ctx {
  lsq_op *h;
  const lsq_model *mod;
  int nidx, fidx, ucol;
  sq_value uval;
} incr_ctx;

/* An instance's increment moves a versioned row to the next version too
 * (no check: increments don't lose each other's writes); the instance's
 * version follows when it has one. */
static void version_bump_local(lua_State *L, const lsq_model *mod) {
  if (mod->version_col < 0) return;
  int isint = 0;
  lua_rawgeti(L, 1, mod->version_col + 1);
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  if (!isint) return;
  lua_pushinteger(L, v + 1);
  lua_rawseti(L, 1, mod->version_col + 1);
}

/* The continuation of p:increment(): the instance's values move by the
 * same amounts (the table at fidx), updated_at as written; p. */
static int incr_k(lua_State *L, int status, lua_KContext ctx) {
  incr_ctx *w = (incr_ctx *)ctx;
  lsq_op *h = w->h;
  const lsq_model *mod = w->mod;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  int nidx = w->nidx, fidx = w->fidx;
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
  if (w->ucol >= 0) {
    lua_pushlstring(L, w->uval.u.s.p, w->uval.u.s.n);
    lua_rawseti(L, 1, w->ucol + 1);
  }
  version_bump_local(L, mod);
  lsq_op_done(L, h);
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
  lsq_op *h = lsq_op_get_db(L, dbidx);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_INCREMENT);
  sq_arena *a = sq_oper_arena(op);
  sq_err err;
  sq_err_clear(&err);
  incr_ctx *w = lsq_op_ctx(h, sizeof *w);
  int *icols = sq_arena_alloc(a, sizeof(int) * (size_t)(mod->ncols + 1));
  sq_value *ivals = sq_arena_alloc(a, sizeof(sq_value) * (size_t)(mod->ncols + 1));
  char *nowa = lsq_op_now(h, now);
  int ni = 0;
  if (!w || !icols || !ivals || !nowa) return lsq_op_nomem(L, h);
  lua_pushnil(L);
  while (lua_next(L, fidx)) {
    int slot = lua_type(L, -2) == LUA_TSTRING ? lsq_slot_of(L, nidx, lua_gettop(L) - 1) : 0;
    if (!slot || ni >= mod->ncols) {
      lsq_no_column(L, mod, lua_gettop(L) - 1, &err);
      return lsq_op_fail(L, h, &err);
    }
    if (lsq_version_refuse(mod, slot, &err)) return lsq_op_fail(L, h, &err);
    const sq_col *c = sq_model_col(mod->m, slot - 1);
    if (lua_type(L, -1) != LUA_TNUMBER || (c->type != SQ_T_INTEGER && c->type != SQ_T_BIGINT &&
                                            c->type != SQ_T_SMALLINT && c->type != SQ_T_FLOAT &&
                                            c->type != SQ_T_DOUBLE && c->type != SQ_T_DECIMAL)) {
      sq_err_set(&err, SQ_EUSAGE, "increment: column '%s' needs a numeric column and a number", c->name);
      return lsq_op_fail(L, h, &err);
    }
    if (sign < 0) {
      if (lua_isinteger(L, -1)) lua_pushinteger(L, -lua_tointeger(L, -1));
      else lua_pushnumber(L, -lua_tonumber(L, -1));
      lua_replace(L, -2);
    }
    char buf[48];
    if (lsq_col_value(L, -1, c, &ivals[ni], buf, a, &err)) return lsq_op_fail(L, h, &err);
    /* the negated number must stay reachable: keep it in the table */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, fidx);
    icols[ni++] = slot - 1;
    lua_pop(L, 1);
  }
  if (ni == 0) {
    sq_err_set(&err, SQ_EUSAGE, "increment: no columns given");
    return lsq_op_fail(L, h, &err);
  }
  if (mod->version_col >= 0) { /* version = version + 1 */
    icols[ni] = mod->version_col;
    ivals[ni++] = sq_int(1);
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
    uval = sq_text(nowa, c->type == SQ_T_DATE ? 10 : strlen(nowa));
    icols[mod->ncols] = ucol;
    q.cols = &icols[mod->ncols];
    q.ncols = 1;
    q.values = &uval;
    q.nrows = 1;
  }
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  int rc = pk_where(L, mod, 1, a, &q.where, &err);
  if (!rc) rc = sq_render(&q, mod->dialect, &sql, &err);
  if (!rc) rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_ARENA_VALUES, &err);
  sq_sql_free(&sql);
  if (rc) return lsq_op_fail(L, h, &err);
  sq_oper_set_model(op, mod->m);
  sq_oper_expect(op, 1, sign > 0 ? "increment" : "decrement");
  h->midx = midx;
  w->h = h;
  w->mod = mod;
  w->nidx = nidx;
  w->fidx = fidx;
  w->ucol = ucol;
  w->uval = ucol >= 0 ? uval : sq_null();
  return lsq_op_run(L, dbidx, h, incr_k, (lua_KContext)w);
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
