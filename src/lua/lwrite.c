/*
 * lwrite.c - writes of a model: build, create (and the insert of one
 * instance, shared with save), class-level update / destroy / restore /
 * increment / decrement, and upsert.
 *
 * Every write is one operation (lwop.h): arguments checked (raising is
 * still free), values converted into the op's arena and validated (Lua
 * validators run here, before the op is built), the query rendered (or
 * taken from the model's shape cache) and given to the op, run through
 * lsq_op_run; a continuation turns ids, returned rows and affected rows
 * into Lua values, or raises the op's error.
 */
#include "lwop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct ins_ctx {
  lsq_op *h;
  const lsq_model *mod;
  int iidx, returning;
} ins_ctx;

/* The continuation of an instance's INSERT: the generated key (where no
 * row came back), the instance saved; the instance. */
static int insert_k(lua_State *L, int status, lua_KContext ctx) {
  ins_ctx *w = (ins_ctx *)ctx;
  lsq_op *h = w->h;
  const lsq_model *mod = w->mod;
  int iidx = w->iidx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  /* one row: LAST_INSERT_ID() / last_insert_rowid() is its key, whatever
   * the server's increment */
  const sq_result *res = sq_oper_result(h->op);
  if (!w->returning && mod->auto_col >= 0 && res->last_insert_id) {
    if (lua_rawgeti(L, iidx, mod->auto_col + 1) == LUA_TNIL) {
      lua_pushinteger(L, (lua_Integer)res->last_insert_id);
      lua_rawseti(L, iidx, mod->auto_col + 1);
    }
    lua_pop(L, 1);
  }
  lsq_op_done(L, h);
  lsq_instance_saved(L, iidx);
  lua_pushvalue(L, iidx);
  return 1;
}

int lsq_instance_insert(lua_State *L, int midx, int iidx, int bad) {
  lsq_model *mod = lua_touserdata(L, midx);
  midx = lua_absindex(L, midx);
  iidx = lua_absindex(L, iidx);
  if (bad) bad = lua_absindex(L, bad);
  int dbidx = lsq_model_db(L, midx);
  char now[32];
  lsq_now(now);
  lsq_instance_prepare_insert(L, midx, iidx, now);
  lsq_op *h = lsq_op_get(L);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_INSERT);
  sq_arena *a = sq_oper_arena(op);
  sq_err err;
  sq_err_clear(&err);
  ins_ctx *w = lsq_op_ctx(h, sizeof *w);
  int *cols = sq_arena_alloc(a, sizeof *cols * (size_t)mod->ncols);
  sq_value *vals = sq_arena_alloc(a, sizeof *vals * (size_t)mod->ncols);
  if (!w || !cols || !vals) return lsq_op_nomem(L, h);
  /* the values are the op's own (copied into its arena) */
  int n = lsq_instance_values(L, mod, iidx, cols, vals, a, &err);
  if (n < 0) return lsq_op_fail(L, h, &err);
  if (lsq_validate(L, midx, mod, cols, vals, n, 0, iidx, bad)) return lsq_op_throw(L, h);
  if (mod->has_lua_checks) {
    /* Validators may normalise the instance: what is inserted is the
     * instance as they left it, checked again by the built-in rules. */
    n = lsq_instance_values(L, mod, iidx, cols, vals, a, &err);
    if (n < 0) return lsq_op_fail(L, h, &err);
    if (lsq_validate(L, midx, mod, cols, vals, n, LSQ_V_CORE, iidx, 0)) return lsq_op_throw(L, h);
  }
  const lsq_shape *sh = lsq_shape_find(mod, SHAPE_INSERT, cols, n, 1);
  int rc, returning;
  if (sh) {
    returning = sh->returns_rows;
    rc = sq_oper_add_sql(op, sh->sql, sh->len, vals, n, SQ_STMT_ARENA_VALUES, &err);
  } else {
    sq_query q;
    sq_query_init(&q, SQ_Q_INSERT, mod->m);
    q.cols = cols;
    q.ncols = n;
    q.values = vals;
    q.nrows = 1;
    /* SQLite generates nothing but the rowid, which last_insert_id gives:
     * no RETURNING needed there. Elsewhere only what the INSERT leaves to
     * the database comes back (keys, defaults): the instance holds the
     * rest already. */
    q.returning = mod->dialect != SQ_DIALECT_SQLITE ? SQ_RETURNING_UNSET : 0;
    sq_sql sql;
    memset(&sql, 0, sizeof sql);
    rc = sq_render(&q, mod->dialect, &sql, &err);
    returning = sql.returns_rows;
    if (!rc) {
      lsq_shape_store(mod, SHAPE_INSERT, cols, n, 1, &sql, vals, n);
      rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_ARENA_VALUES, &err);
    }
    sq_sql_free(&sql);
  }
  if (rc) return lsq_op_fail(L, h, &err);
  sq_oper_set_model(op, mod->m);
  if (returning) {
    /* the row (the database's values for the columns the INSERT left
     * out) goes straight into the instance */
    lsq_isink *s = lsq_op_sink_model(L, h, midx, SINK_FILL);
    s->bare = 1;
    s->identity = 1;
    lua_pushvalue(L, iidx);
    lua_setiuservalue(L, h->base, OUV_OUT);
  }
  h->midx = midx;
  w->h = h;
  w->mod = mod;
  w->iidx = iidx;
  w->returning = returning;
  return lsq_op_run(L, dbidx, h, insert_k, (lua_KContext)w);
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
    if (c < 0 || (c >= 0 && lsq_version_refuse(b->mod, c + 1, b->err))) {
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

/* The continuation of the class-level writes: the affected rows. */
static int affected_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  lua_pushinteger(L, (lua_Integer)sq_oper_result(h->op)->affected_rows);
  lsq_op_done(L, h);
  return 1;
}

/* Renders q (unless building it failed: rc) into the op of h and runs
 * it; the model is at 1. */
static int run_write(lua_State *L, int dbidx, lsq_op *h, const lsq_model *mod, sq_query *q, int rc, sq_err *err) {
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  if (!rc) rc = sq_render(q, mod->dialect, &sql, err);
  /* every value of the tree is in the op's arena already */
  if (!rc) rc = sq_oper_add_sql(h->op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_ARENA_VALUES, err);
  sq_sql_free(&sql);
  if (rc) return lsq_op_fail(L, h, err);
  sq_oper_set_model(h->op, mod->m);
  h->midx = 1;
  return lsq_op_run(L, dbidx, h, affected_k, (lua_KContext)h);
}

/*
 * Model:update(values, { where = ... } | { all = true }) -> affected rows.
 * updated_at is set too; the values are validated first.
 */
static int model_update(lua_State *L) {
  lsq_scope_apply(L, 3, LSQ_SC_WRITE, "update");
  lsq_model *mod = lsq_check_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "update expects a table of column values, got %s", luaL_typename(L, 2));
  lua_settop(L, 3);
  int dbidx = lsq_model_db(L, 1);
  char now[32];
  lsq_now(now);
  lua_pushnil(L); /* conversion failures of the values */
  int bad = lua_gettop(L);
  lsq_op *h = lsq_op_get(L);
  lsq_op_begin(h, SQ_OPER_UPDATE);
  WOP_QB(b, s, err, h, mod, "update");
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 3, QO_WHERE | QO_ALL | QO_PARANOID, &q, &o);
  if (!rc) rc = refuse_all(&b, &o);
  int *cols = rc ? NULL : sq_arena_alloc(s.arena, sizeof *cols * (size_t)(mod->ncols + 1));
  sq_value *vals = cols ? sq_arena_alloc(s.arena, sizeof *vals * (size_t)(mod->ncols + 1)) : NULL;
  char *nowa = lsq_op_now(h, now);
  int n = 0;
  if (!rc && (!vals || !nowa)) return lsq_op_nomem(L, h);
  if (!rc) rc = values_of(&b, 2, cols, vals, &n, bad);
  if (!rc && n == 0 && lua_isnil(L, bad)) rc = sq_err_set(&err, SQ_EUSAGE, "update: no values given");
  if (rc) return lsq_op_fail(L, h, &err);
  if (lsq_validate(L, 1, mod, cols, vals, n, LSQ_V_PARTIAL, 0, bad)) return lsq_op_throw(L, h);
  if (mod->updated_col >= 0) {
    int given = 0;
    for (int i = 0; i < n; i++) given |= cols[i] == mod->updated_col;
    if (!given) {
      cols[n] = mod->updated_col;
      vals[n++] = sq_text(nowa, sq_model_col(mod->m, mod->updated_col)->type == SQ_T_DATE ? 10 : strlen(nowa));
    }
  }
  q.cols = cols;
  q.ncols = n;
  q.values = vals;
  q.nrows = 1;
  /* optimistic locking: every row written moves to its next version (no
   * check: a class-level write loads no instance) */
  int vcol = mod->version_col;
  sq_value one = sq_int(1);
  if (vcol >= 0) {
    q.incr_cols = &vcol;
    q.incr_values = &one;
    q.nincr = 1;
  }
  return run_write(L, dbidx, h, mod, &q, SQ_OK, &err);
}

/*
 * Model:destroy{ where = ... | all = true [, force = true] } -> affected
 * rows. Paranoid models set deleted_at unless force.
 * Model:restore{ where = ... } (paranoid) clears deleted_at.
 */
static int destroy_or_restore(lua_State *L, int restore) {
  lsq_scope_apply(L, 2, LSQ_SC_WRITE, restore ? "restore" : "destroy");
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1);
  char now[32];
  lsq_now(now);
  lsq_op *h = lsq_op_get(L);
  lsq_op_begin(h, SQ_OPER_DELETE);
  WOP_QB(b, s, err, h, mod, restore ? "restore" : "destroy");
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
    char *nowa = lsq_op_now(h, now);
    if (!nowa) return lsq_op_nomem(L, h);
    if (!restore) dval = sq_text(nowa, sq_model_col(mod->m, dcol)->type == SQ_T_DATE ? 10 : strlen(nowa));
    q.cols = &dcol;
    q.ncols = 1;
    q.values = &dval;
    q.nrows = 1;
    q.paranoid = !restore;
  } else {
    q.paranoid = 0;
  }
  int vcol = mod->version_col;
  sq_value one = sq_int(1);
  if (q.kind == SQ_Q_UPDATE && vcol >= 0) { /* a soft delete or a restore: the next version */
    q.incr_cols = &vcol;
    q.incr_values = &one;
    q.nincr = 1;
  }
  return run_write(L, dbidx, h, mod, &q, rc, &err);
}

static int model_destroy(lua_State *L) { return destroy_or_restore(L, 0); }
static int model_restore(lua_State *L) { return destroy_or_restore(L, 1); }

/*
 * Model:increment(fields, { where = ... [, by = n] }) -> affected rows.
 * fields: "coins", { "coins", "goods" } (by each, default 1) or
 * { coins = 5, goods = -1 }.
 */
static int class_incr(lua_State *L, int sign, const char *method) {
  lsq_scope_apply(L, 3, LSQ_SC_WRITE, method);
  lsq_model *mod = lsq_check_model(L, 1);
  lua_settop(L, 3);
  int dbidx = lsq_model_db(L, 1);
  char now[32];
  lsq_now(now);
  lsq_op *h = lsq_op_get(L);
  lsq_op_begin(h, SQ_OPER_INCREMENT);
  WOP_QB(b, s, err, h, mod, method);
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 3, QO_WHERE | QO_ALL | QO_BY | QO_PARANOID, &q, &o);
  if (!rc) rc = refuse_all(&b, &o);
  int *cols = rc ? NULL : sq_arena_alloc(s.arena, sizeof *cols * (size_t)mod->ncols);
  sq_value *vals = cols ? sq_arena_alloc(s.arena, sizeof *vals * (size_t)mod->ncols) : NULL;
  char *nowa = lsq_op_now(h, now);
  if (!rc && (!vals || !nowa)) return lsq_op_nomem(L, h);
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
  if (!rc && mod->version_col >= 0 && n < mod->ncols) { /* the next version too */
    cols[n] = mod->version_col;
    vals[n++] = sq_int(1);
  }
  if (!rc) {
    q.incr_cols = cols;
    q.incr_values = vals;
    q.nincr = n;
    if (ucol >= 0) {
      uval = sq_text(nowa, sq_model_col(mod->m, ucol)->type == SQ_T_DATE ? 10 : strlen(nowa));
      q.cols = &ucol;
      q.ncols = 1;
      q.values = &uval;
      q.nrows = 1;
    }
  }
  return run_write(L, dbidx, h, mod, &q, rc, &err);
}

static int model_increment(lua_State *L) { return class_incr(L, 1, "increment"); }
static int model_decrement(lua_State *L) { return class_incr(L, -1, "decrement"); }

/* ---------------------------------------------------------------- */
/* upsert                                                             */
/* ---------------------------------------------------------------- */

/* The continuation of upsert: the row the server returned (or read
 * back by the key) into the instance at 8; true when MySQL can't say
 * which row it was. */
static int upsert_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  const lsq_model *mod = lua_touserdata(L, 1);
  const sq_result *res = sq_oper_result(h->op);
  if (lsq_op_push_out(L, h) == LUA_TTABLE) {
    lsq_instance_fill(L, mod, 8, lua_gettop(L));
    lsq_op_done(L, h);
    lsq_instance_saved(L, 8);
    lua_settop(L, 8);
    return 1;
  }
  /* MySQL: the key, when the server reported it, even with no row */
  if (mod->auto_col >= 0 && res->affected_rows == 1 && res->last_insert_id) {
    if (lua_rawgeti(L, 8, mod->auto_col + 1) == LUA_TNIL) {
      lua_pushinteger(L, (lua_Integer)res->last_insert_id);
      lua_rawseti(L, 8, mod->auto_col + 1);
    }
    lua_pop(L, 1);
  }
  lsq_op_done(L, h);
  lua_pushboolean(L, 1);
  return 1;
}

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
  lsq_op *h = lsq_op_get(L);           /* 6 */
  sq_oper *op = lsq_op_begin(h, SQ_OPER_UPSERT);
  sq_arena *a = sq_oper_arena(op);
  WOP_QB(b, s, err, h, mod, "upsert");
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
  if (rc) return lsq_op_fail(L, h, &err);
  lsq_instance_prepare_insert(L, 1, 8, now);
  int *cols = sq_arena_alloc(a, sizeof *cols * (size_t)mod->ncols);
  sq_value *vals = sq_arena_alloc(a, sizeof *vals * (size_t)mod->ncols);
  sq_value *key = sq_arena_alloc(a, sizeof *key * (size_t)(mod->npk + 1));
  if (!cols || !vals || !key) return lsq_op_nomem(L, h);
  int n = lsq_instance_values(L, mod, 8, cols, vals, a, &err);
  if (n < 0) return lsq_op_fail(L, h, &err);
  if (lsq_validate(L, 1, mod, cols, vals, n, 0, 8, 7)) return lsq_op_throw(L, h);
  if (mod->has_lua_checks) {
    /* what validators left in the instance, checked by the built-in rules */
    n = lsq_instance_values(L, mod, 8, cols, vals, a, &err);
    if (n < 0) return lsq_op_fail(L, h, &err);
    if (lsq_validate(L, 1, mod, cols, vals, n, LSQ_V_CORE, 8, 0)) return lsq_op_throw(L, h);
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
  /* the key as the instance has it: where no row comes back (MySQL), the
   * op reads the row again by it */
  for (int i = 0; i < mod->npk; i++) {
    key[i] = sq_null();
    for (int k = 0; k < n; k++)
      if (cols[k] == mod->pk[i]) key[i] = vals[k];
  }
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  rc = sq_render(&q, mod->dialect, &sql, &err);
  if (!rc) rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, SQ_STMT_ARENA_VALUES, &err);
  sq_sql_free(&sql);
  if (!rc) rc = sq_oper_set_key(op, key, mod->npk, &err);
  if (rc) return lsq_op_fail(L, h, &err);
  sq_oper_set_model(op, mod->m);
  lsq_isink *si = lsq_op_sink_model(L, h, 1, SINK_ONE);
  si->bare = 1;
  si->identity = 1;
  return lsq_op_run(L, dbidx, h, upsert_k, (lua_KContext)h);
}

const luaL_Reg lsq_write_methods[] = {
  {"build", model_build},
  {"create", model_create},
  {"upsert", model_upsert},
  {"update", model_update},
  {"destroy", model_destroy},
  {"restore", model_restore},
  {"increment", model_increment},
  {"decrement", model_decrement},
  {NULL, NULL},
};
