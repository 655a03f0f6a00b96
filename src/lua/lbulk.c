/*
 * lbulk.c - the writes of several statements, each one operation whose
 * statements the core runs on one connection: bulk_create (BULK_INSERT:
 * one multi-row INSERT per batch, all batches in one transaction or
 * savepoint, the keys the server assigned) and find_or_create
 * (FIND_OR_CREATE: SELECT, then INSERT, and on a unique violation the
 * re-select).
 */
#include "lwop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* bulk_create                                                        */
/* ---------------------------------------------------------------- */

/* The conflict options of a bulk_create (ignore_duplicates,
 * update_on_duplicate + conflict, returning = false). The column lists
 * are plain arrays the binding fills (update has room for every column:
 * more may join it before the op gets it). */
typedef struct bulk_opts {
  int mode;            /* SQ_BULK_* */
  int count_only;      /* returning = false */
  int *conflict, nconflict;
  int *update, nupdate;
} bulk_opts;

/* The columns named by the list at idx (one name allowed) into out
 * (room for mod->ncols; NULL: only checked); their count, or -1 with
 * err. */
static int opt_cols(lua_State *L, const lsq_model *mod, int idx, const char *what, int *out, sq_err *err) {
  idx = lua_absindex(L, idx);
  int one = lua_type(L, idx) == LUA_TSTRING;
  int n = one ? 1 : lua_type(L, idx) == LUA_TTABLE ? (int)lua_rawlen(L, idx) : -1;
  if (n <= 0) {
    sq_err_set(err, SQ_EUSAGE, "bulk_create: %s must be a non-empty list of column names", what);
    return -1;
  }
  if (n > mod->ncols) {
    sq_err_set(err, SQ_EUSAGE, "bulk_create: %s lists more columns than %s has", what, sq_model_name(mod->m));
    return -1;
  }
  for (int i = 1; i <= n; i++) {
    if (one) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, i);
    int c = -1;
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(L, -1, &kn);
      if ((c = sq_model_find(mod->m, k, kn)) < 0)
        sq_err_set(err, SQ_EUSAGE, "bulk_create: %s: %s has no column '%.64s'", what, sq_model_name(mod->m), k);
    } else {
      sq_err_set(err, SQ_EUSAGE, "bulk_create: %s must be column names, got a %s", what, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    if (c < 0) return -1;
    if (out) {
      for (int j = 0; j < i - 1; j++)
        if (out[j] == c) {
          sq_err_set(err, SQ_EUSAGE, "bulk_create: %s names column '%s' twice", what, mod->cols[c]->name);
          return -1;
        }
      out[i - 1] = c;
    }
  }
  return n;
}

/* 1 when cols[0..n) are, as a set, the primary key or the columns of a
 * unique key of the model. */
static int is_unique_key(const lsq_model *mod, const int *cols, int n) {
  int same = n == mod->npk;
  for (int i = 0; same && i < n; i++) {
    int in = 0;
    for (int k = 0; k < mod->npk; k++) in |= mod->pk[k] == cols[i];
    same = in;
  }
  if (same) return 1;
  /* unique = "" alone, unique = "name" shared by columns */
  const sq_col *c0 = mod->cols[cols[0]];
  if (c0->unique) {
    int cnt = 0, all = 1;
    for (int c = 0; c < mod->ncols; c++)
      if (mod->cols[c]->unique && (c == cols[0] || (c0->unique[0] && !strcmp(mod->cols[c]->unique, c0->unique)))) cnt++;
    for (int i = 0; i < n; i++) {
      const char *u = mod->cols[cols[i]]->unique;
      all &= u && (cols[i] == cols[0] || (c0->unique[0] && !strcmp(u, c0->unique)));
    }
    if (all && cnt == n) return 1;
  }
  for (int x = 0; x < sq_model_nindexes(mod->m); x++) {
    const char *name;
    int uniq, nic;
    const int *ic;
    sq_model_index(mod->m, x, &name, &uniq, &ic, &nic);
    if (!uniq || nic != n) continue;
    int all = 1;
    for (int i = 0; all && i < n; i++) {
      int in = 0;
      for (int k = 0; k < nic; k++) in |= ic[k] == cols[i];
      all = in;
    }
    if (all) return 1;
  }
  return 0;
}

/* Checks the options at 3 (before anything is built: usage raises with
 * nothing sent); fills o when out arrays are given. */
static void bulk_parse(lua_State *L, const lsq_model *mod, bulk_opts *o, int fill) {
  sq_err err;
  sq_err_clear(&err);
  if (!fill) memset(o, 0, sizeof *o);
  if (lua_type(L, 3) != LUA_TTABLE) return;
  int t = lua_getfield(L, 3, "ignore_duplicates");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) lsq_usage(L, "bulk_create: ignore_duplicates must be a boolean");
  int ignore = lua_toboolean(L, -1);
  t = lua_getfield(L, 3, "returning");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) lsq_usage(L, "bulk_create: returning must be a boolean");
  o->count_only = t == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  int ut = lua_getfield(L, 3, "update_on_duplicate");
  int ct = lua_getfield(L, 3, "conflict");
  int uidx = lua_gettop(L) - 1, cidx = lua_gettop(L);
  if (ignore && ut != LUA_TNIL) lsq_usage(L, "bulk_create: give ignore_duplicates or update_on_duplicate, not both");
  if (ct != LUA_TNIL && !ignore && ut == LUA_TNIL)
    lsq_usage(L, "bulk_create: conflict goes with update_on_duplicate or ignore_duplicates");
  o->mode = ignore ? SQ_BULK_IGNORE : ut != LUA_TNIL ? SQ_BULK_UPDATE : SQ_BULK_PLAIN;
  if (ut != LUA_TNIL) {
    int n = opt_cols(L, mod, uidx, "update_on_duplicate", fill ? o->update : NULL, &err);
    if (n < 0) lsq_raise(L, &err);
    o->nupdate = n;
  }
  if (ct != LUA_TNIL) {
    int n = opt_cols(L, mod, cidx, "conflict", fill ? o->conflict : NULL, &err);
    if (n < 0) lsq_raise(L, &err);
    o->nconflict = n;
  }
  if (fill) {
    for (int i = 0; i < o->nupdate; i++)
      if (lsq_version_refuse(mod, o->update[i] + 1, &err)) lsq_raise(L, &err);
    if (o->nconflict && !is_unique_key(mod, o->conflict, o->nconflict))
      lsq_usage(L, "bulk_create: conflict must name the primary key or the columns of a unique key of %s",
                sq_model_name(mod->m));
  }
  if (o->mode == SQ_BULK_UPDATE && !o->nconflict && mod->dialect != SQ_DIALECT_MYSQL)
    lsq_usage(L, "bulk_create: update_on_duplicate needs conflict = { columns } (a unique key) on %s",
              sq_dialect_name(mod->dialect));
  if (o->mode == SQ_BULK_UPDATE && !o->count_only && mod->dialect == SQ_DIALECT_MYSQL)
    lsq_usage(L, "bulk_create: update_on_duplicate on MySQL-family servers can't tell which rows were written (no "
                 "RETURNING there): pass returning = false for the count");
  lua_pop(L, 4);
}

/* The continuation of bulk_create: the keys the server assigned (where
 * no rows came back) into the instances; the list of instances (at 6).
 * With conflict options: the instances of the rows the server returned,
 * or (returning = false) the count. */
static int bulk_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  if (lua_type(L, 3) == LUA_TTABLE) {
    bulk_opts o;
    bulk_parse(L, lua_touserdata(L, 1), &o, 0); /* checked before: raises nothing */
    if (o.count_only) {
      lua_pushinteger(L, (lua_Integer)sq_oper_result(h->op)->affected_rows);
      lsq_op_done(L, h);
      return 1;
    }
    if (o.mode != SQ_BULK_PLAIN) {
      if (lsq_op_push_out(L, h) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 0);
      }
      lsq_op_done(L, h);
      return 1;
    }
  }
  const lsq_model *mod = lua_touserdata(L, 1);
  int n;
  const int64_t *ids = sq_oper_ids(h->op, &n);
  for (int r = 0; ids && r < n; r++) {
    if (!ids[r]) continue;
    lua_rawgeti(L, 6, r + 1);
    lua_pushinteger(L, (lua_Integer)ids[r]);
    lua_rawseti(L, -2, mod->auto_col + 1);
    lua_pop(L, 1);
  }
  lsq_op_done(L, h);
  lua_pushvalue(L, 6);
  return 1;
}

/* The common conversions of a record's value at the top, exactly as
 * lsq_col_value makes them (a Lua integer for an integer column in its
 * range, a UTF-8 string for a text column): 1 when done, 0 for every
 * other case (lsq_col_value then converts it or says what is wrong). */
static int fast_value(lua_State *L, int vt, const sq_col *col, sq_value *v) {
  if (vt == LUA_TNUMBER) {
    int64_t lo, hi;
    if (col->type == SQ_T_INTEGER) lo = INT32_MIN, hi = INT32_MAX;
    else if (col->type == SQ_T_BIGINT) lo = INT64_MIN, hi = INT64_MAX;
    else if (col->type == SQ_T_SMALLINT) lo = -32768, hi = 32767;
    else return 0;
    int isint;
    lua_Integer i = lua_tointegerx(L, -1, &isint);
    if (!isint || !lua_isinteger(L, -1) || i < lo || i > hi) return 0;
    *v = sq_int(i);
    return 1;
  }
  if (vt == LUA_TSTRING && (col->type == SQ_T_STRING || col->type == SQ_T_TEXT || col->type == SQ_T_CHAR)) {
    sq_err e;
    sq_err_clear(&e);
    return lsq_to_value(L, -1, v, "value", &e) == SQ_OK && v->type == SQ_VTEXT;
  }
  return 0;
}

/* Raises err after making the holder idle, prefixed with the record. */
static int bulk_fail(lua_State *L, lsq_op *h, int rec, const sq_err *err) {
  lsq_op_done(L, h);
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
  static const char *const bulk_optnames[] = {"batch_size", "ignore_duplicates", "update_on_duplicate", "conflict",
                                              "returning", "individual_hooks", NULL};
  lsq_check_opts(L, 3, "bulk_create", bulk_optnames);
  /* individual_hooks: hooks (lua/sqorm/hooks.lua) take it on a model
   * with hooks; on one without, there is nothing to run */
  if (lua_type(L, 3) == LUA_TTABLE) {
    int t = lua_getfield(L, 3, "individual_hooks");
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) return lsq_usage(L, "bulk_create: individual_hooks must be a boolean");
  }
  bulk_opts bo;
  bulk_parse(L, mod, &bo, 0); /* usage before anything is built */
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
  lua_createtable(L, bo.count_only ? 0 : nrec, 0); /* 6: the instances */
  int lidx = 6;
  if (nrec == 0) {
    if (bo.count_only) lua_pushinteger(L, 0);
    return 1;
  }
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
  /* what the operation sends is built in its arena */
  lsq_op *h = lsq_op_get(L);               /* 11 */
  sq_oper *op = lsq_op_begin(h, SQ_OPER_BULK_INSERT);
  lsq_scratch sc;
  memset(&sc, 0, sizeof sc);
  sc.arena = sq_oper_arena(op);
  lsq_scratch *s = &sc;
  sq_value *rows = lsq_alloc(s, sizeof *rows * (size_t)nrec * (size_t)ncols, &err);
  unsigned char *present = rows ? lsq_alloc(s, (size_t)ncols, &err) : NULL;
  char *nowa = present ? lsq_op_now(h, now) : NULL;
  if (!nowa) {
    if (!err.kind) sq_err_set(&err, SQ_ENOMEM, "out of memory");
    return bulk_fail(L, h, 0, &err);
  }
  memset(rows, 0, sizeof *rows * (size_t)nrec * (size_t)ncols); /* SQ_VNULL */
  memset(present, 0, (size_t)ncols);
  lua_pushnil(L);                          /* 12: record -> its conversion failures */
  int bads = 12;
  int top = lua_gettop(L);

  /* pass 1: instances and their rows. With returning = false and no Lua
   * validator (they get the instance) no instance is built: the values go
   * straight from the records into the rows the op binds. */
  int build = !bo.count_only || mod->has_lua_checks;
  /* name -> slot for the keys the records repeat (the same interned
   * strings): a hit is checked by length and content, so a string that
   * was collected and whose memory was reused can't give a wrong slot */
  struct {
    const char *p;
    size_t n;
    int slot;
  } kc[16];
  memset(kc, 0, sizeof kc);
  for (int i = 1; i <= nrec; i++) {
    sq_value *row = rows + (size_t)(i - 1) * (size_t)ncols;
    if (lua_rawgeti(L, 2, i) != LUA_TTABLE || lsq_test_instance(L, -1)) {
      sq_err_set(&err, SQ_EUSAGE, "must be a table of column values");
      return bulk_fail(L, h, i, &err);
    }
    int ridx = top + 1;
    if (build) {
      lua_createtable(L, ncols, 0);
      lua_pushvalue(L, 5);
      lua_setmetatable(L, -2);
    } else {
      lua_pushnil(L);
    }
    int iidx = top + 2;
    lua_pushnil(L);
    int bad = top + 3;
    lua_pushnil(L);
    while (lua_next(L, ridx)) {
      int slot = 0;
      if (lua_type(L, -2) == LUA_TSTRING) {
        size_t kn;
        const char *k = lua_tolstring(L, -2, &kn);
        unsigned hk = (unsigned)(((uintptr_t)k >> 4) & 15);
        if (kc[hk].p == k && kc[hk].n == kn && !memcmp(mod->cols[kc[hk].slot - 1]->name, k, kn)) {
          slot = kc[hk].slot;
        } else {
          lua_pushvalue(L, -2);
          if (lua_rawget(L, 7) == LUA_TNUMBER) slot = (int)lua_tointeger(L, -1);
          lua_pop(L, 1);
          /* cached only when the name is the column's whole name */
          if (slot > 0 && slot <= ncols && strlen(mod->cols[slot - 1]->name) == kn) {
            kc[hk].p = k;
            kc[hk].n = kn;
            kc[hk].slot = slot;
          }
        }
      }
      if (!slot) {
        if (lua_type(L, -2) == LUA_TSTRING)
          sq_err_set(&err, SQ_EUSAGE, "%s has no column '%.64s'", sq_model_name(mod->m), lua_tostring(L, -2));
        else
          sq_err_set(&err, SQ_EUSAGE, "column names must be strings, got a %s key", luaL_typename(L, -2));
        return bulk_fail(L, h, i, &err);
      }
      if (lsq_version_refuse(mod, slot, &err)) return bulk_fail(L, h, i, &err);
      int c = slot - 1;
      present[c] = 1;
      int vt = lua_type(L, -1);
      if (vt == LUA_TUSERDATA && lsq_is_null(L, -1)) {
        lua_pop(L, 1);
        continue;
      }
      char buf[48];
      sq_value *v = &row[c];
      const sq_col *col = mod->cols[c];
      if (!fast_value(L, vt, col, v) && lsq_col_value(L, -1, col, v, buf, NULL, &err)) {
        /* form input of the wrong type: listed with the rule failures */
        if (lsq_bad_value(L, bad, col, &err)) return bulk_fail(L, h, i, &err);
        sq_err_clear(&err);
        *v = sq_null();
        lua_pop(L, 1);
        continue;
      }
      if (!build) {
        lua_pop(L, 1);
      } else if ((vt == LUA_TSTRING && (v->type == SQ_VTEXT || v->type == SQ_VBLOB) && v->u.s.p == lua_tostring(L, -1) &&
                  col->type != SQ_T_DECIMAL) ||
                 (vt == LUA_TNUMBER && v->type == SQ_VINT && lua_isinteger(L, -1) && v->u.i == lua_tointeger(L, -1) &&
                  (col->type == SQ_T_INTEGER || col->type == SQ_T_BIGINT || col->type == SQ_T_SMALLINT))) {
        /* the record's own value is the instance's: stored as it is (the
         * key is left on top for lua_next) */
        lua_rawseti(L, iidx, slot);
      } else {
        lsq_push_colval(L, col, v);
        lua_rawseti(L, iidx, slot);
        lua_pop(L, 1);
      }
      /* the operation's own copy of what it sends */
      if (lsq_own_value(s->arena, v, &err)) return bulk_fail(L, h, i, &err);
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
        if (build) lsq_push_colval(L, col, v);
      } else if (col->default_kind == SQ_DEFAULT_NOW || (ts && col->default_kind == SQ_DEFAULT_NONE)) {
        *v = sq_text(nowa, col->type == SQ_T_DATE ? 10 : nowlen);
        if (build && col->type == SQ_T_DATE) lua_pushlstring(L, now, 10);
        else if (build) lua_pushvalue(L, 8);
      } else if (col->default_kind == SQ_DEFAULT_CALLBACK) {
        lua_rawgeti(L, 10, c + 1);
        lua_call(L, 0, 1);
        if (lua_isnil(L, -1) || lsq_is_null(L, -1)) {
          lua_pop(L, 1);
          present[c] = 1;
          continue;
        }
        char buf[48];
        if (lsq_col_value(L, -1, col, v, buf, s->arena, &err)) return bulk_fail(L, h, i, &err);
        lua_pop(L, 1);
        if (build) lsq_push_colval(L, col, v);
      } else { /* UUIDV4, or a UUID key without a default */
        char *u = sq_arena_alloc(s->arena, 40);
        if (!u) {
          sq_err_set(&err, SQ_ENOMEM, "out of memory");
          return bulk_fail(L, h, i, &err);
        }
        if (sq_uuid_v4(u, &err)) return bulk_fail(L, h, i, &err);
        *v = sq_text(u, 36);
        if (build) lua_pushlstring(L, u, 36);
      }
      present[c] = 1;
      if (build) lua_rawseti(L, iidx, c + 1);
    }
    if (lua_type(L, bad) == LUA_TTABLE) {
      if (lua_type(L, bads) != LUA_TTABLE) {
        lua_newtable(L);
        lua_replace(L, bads);
      }
      lua_pushvalue(L, bad);
      lua_rawseti(L, bads, i);
    }
    if (build) {
      lua_settop(L, iidx);
      lua_rawseti(L, lidx, i);
    }
    lua_settop(L, top);
  }

  /* the inserted columns: those any record gives or defaults fill */
  int *cols = lsq_alloc(s, sizeof *cols * (size_t)ncols, &err);
  if (!cols) return bulk_fail(L, h, 0, &err);
  int nins = 0;
  for (int c = 0; c < ncols; c++)
    if (present[c]) cols[nins++] = c;
  if (mod->auto_col >= 0 && present[mod->auto_col]) {
    for (int i = 0; i < nrec; i++)
      if (rows[(size_t)i * (size_t)ncols + (size_t)mod->auto_col].type == SQ_VNULL) {
        lsq_op_done(L, h);
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
    if (build) lua_rawgeti(L, lidx, i + 1);
    else lua_pushnil(L);
    int inst = lua_gettop(L);
    if (lua_type(L, bads) == LUA_TTABLE) lua_rawgeti(L, bads, i + 1);
    else lua_pushnil(L);
    sq_value *row = rows + (size_t)i * (size_t)nins;
    int failed = lsq_validate(L, 1, mod, cols, row, nins, 0, build ? inst : 0, inst + 1);
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
      if (failed) return bulk_fail(L, h, i + 1, &err);
      failed = lsq_validate(L, 1, mod, cols, row, nins, LSQ_V_CORE, inst, 0);
    }
    if (failed) {
      lsq_op_done(L, h);
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

  if (sq_oper_bulk_rows(op, mod->m, cols, nins, rows, nrec, batch, SQ_STMT_ARENA_VALUES, &err))
    return lsq_op_fail(L, h, &err);
  /* the instances hold what is sent: RETURNING only what the server fills */
  if (bo.mode == SQ_BULK_PLAIN) sq_oper_bulk_returning(op, SQ_RETURNING_UNSET);
  if (bo.mode != SQ_BULK_PLAIN || bo.count_only) {
    /* the column lists: plain arrays with room for every column (more
     * update columns may join before the op takes them) */
    bo.conflict = lsq_alloc(s, sizeof *bo.conflict * (size_t)ncols, &err);
    bo.update = bo.conflict ? lsq_alloc(s, sizeof *bo.update * (size_t)ncols, &err) : NULL;
    if (!bo.update) return bulk_fail(L, h, 0, &err);
    bulk_parse(L, mod, &bo, 1);
    for (int i = 0; i < bo.nupdate; i++) {
      int in = 0;
      for (int k = 0; k < nins; k++) in |= cols[k] == bo.update[i];
      if (!in) {
        sq_err_set(&err, SQ_EUSAGE, "update_on_duplicate: column '%s' is not given by any record (nothing was sent)",
                   mod->cols[bo.update[i]]->name);
        return bulk_fail(L, h, 0, &err);
      }
    }
    if (sq_oper_bulk_conflict(op, bo.mode, bo.conflict, bo.nconflict, bo.update, bo.nupdate, bo.count_only, &err))
      return bulk_fail(L, h, 0, &err);
  }
  if (bo.count_only) {
    /* no rows come back: no sink */
  } else if (bo.mode != SQ_BULK_PLAIN) {
    /* the rows the server returned, as new instances, in its order */
    lsq_isink *si = lsq_op_sink_model(L, h, 1, SINK_LIST);
    si->identity = 1;
  } else {
    /* RETURNING rows go straight into their instances, in row order */
    lsq_isink *si = lsq_op_sink_model(L, h, 1, SINK_FILL_LIST);
    si->bare = 1;
    si->identity = 1;
    si->fill_base = 0;
    lua_pushvalue(L, lidx);
    lua_setiuservalue(L, h->base, OUV_OUT);
  }
  return lsq_op_run(L, dbidx, h, bulk_k, (lua_KContext)h);
}

/* ---------------------------------------------------------------- */
/* find_or_create                                                     */
/* ---------------------------------------------------------------- */

typedef struct foc_ctx {
  lsq_op *h;
  int iidx, verr;
} foc_ctx;

/* The continuation of find_or_create: the row found (false), or the new
 * instance at iidx with what the server returned or generated (true); the
 * validation error at verr when nothing was found and the values failed
 * it. */
static int foc_k(lua_State *L, int status, lua_KContext ctx) {
  foc_ctx *w = (foc_ctx *)ctx;
  lsq_op *h = w->h;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  const lsq_model *mod = lua_touserdata(L, 1);
  int iidx = w->iidx;
  int got = lsq_op_push_out(L, h) == LUA_TTABLE;
  if (!sq_oper_created(h->op)) {
    if (got) {
      lsq_op_done(L, h);
      lua_pushboolean(L, 0);
      return 2;
    }
    lua_pushvalue(L, w->verr); /* nothing found, and the values are invalid */
    return lsq_op_throw(L, h);
  }
  if (got) {
    lsq_instance_fill(L, mod, iidx, lua_gettop(L));
  } else {
    const sq_result *res = sq_oper_result(h->op);
    if (mod->auto_col >= 0 && res->last_insert_id) {
      if (lua_rawgeti(L, iidx, mod->auto_col + 1) == LUA_TNIL) {
        lua_pushinteger(L, (lua_Integer)res->last_insert_id);
        lua_rawseti(L, iidx, mod->auto_col + 1);
      }
      lua_pop(L, 1);
    }
  }
  lsq_op_done(L, h);
  lsq_instance_saved(L, iidx);
  lua_pushvalue(L, iidx);
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
  if (w->fixed[e->col] && !lsq_same_value(w->fixed[e->col], v)) w->conflict = e->col;
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
        if (lsq_col_value(L, -1, mod->cols[c], &v, buf, NULL, &e2) == SQ_OK && !lsq_same_value(&v, w.fixed[c])) {
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
  lsq_scope_apply(L, 2, LSQ_SC_WRITE, "find_or_create"); /* a scope's where is ANDed in (lscope.c) */
  lsq_model *mod = lsq_check_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) return lsq_usage(L, "find_or_create expects { where = ..., defaults = ... }");
  lua_settop(L, 2);
  int dbidx = lsq_model_db(L, 1);     /* 3 */
  lua_getiuservalue(L, 1, MUV_IMT);   /* 4 */
  char now[32];
  lsq_now(now);
  lsq_op *h = lsq_op_get(L);          /* 5 */
  sq_oper *op = lsq_op_begin(h, SQ_OPER_FIND_OR_CREATE);
  sq_arena *a = sq_oper_arena(op);
  WOP_QB(b, s, err, h, mod, "find_or_create");
  foc_ctx *w = lsq_op_ctx(h, sizeof *w);
  if (!w) return lsq_op_nomem(L, h);
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, mod->m);
  lsq_qopts o;
  int rc = lsq_build_options(&b, 2, QO_WHERE | QO_DEFAULTS | QO_PARANOID, &q, &o);
  if (!rc && !o.has_where) rc = sq_err_set(&err, SQ_EUSAGE, "find_or_create needs a where");
  q.limit = 1;
  sq_sql sel;
  memset(&sel, 0, sizeof sel);
  if (!rc) rc = sq_render(&q, mod->dialect, &sel, &err);
  if (!rc)
    rc = sq_oper_add_sql(op, sel.sql, sel.len, sel.params, sel.nparams, SQ_STMT_READ | SQ_STMT_ARENA_VALUES, &err);
  sq_sql_free(&sel);
  if (!rc) rc = foc_values(L, mod, q.where, o.defaults_idx, a, &err);
  int vt = lua_gettop(L);
  lua_pushnil(L); /* conversion failures of the values */
  int bad = vt + 1;
  if (!rc) rc = lsq_instance_from(L, 1, 4, vt, 1, NULL, bad, &err);
  if (rc) return lsq_op_fail(L, h, &err);
  int iidx = lua_gettop(L);
  lsq_instance_prepare_insert(L, 1, iidx, now);
  int *cols = sq_arena_alloc(a, sizeof *cols * (size_t)mod->ncols);
  sq_value *vals = cols ? sq_arena_alloc(a, sizeof *vals * (size_t)mod->ncols) : NULL;
  if (!vals) return lsq_op_nomem(L, h);
  int n = lsq_instance_values(L, mod, iidx, cols, vals, a, &err);
  if (n < 0) return lsq_op_fail(L, h, &err);
  /* a validation failure matters only when nothing is found */
  int invalid = lsq_validate(L, 1, mod, cols, vals, n, 0, iidx, bad);
  if (!invalid && mod->has_lua_checks) {
    /* what validators left in the instance, checked by the built-in rules */
    n = lsq_instance_values(L, mod, iidx, cols, vals, a, &err);
    if (n < 0) return lsq_op_fail(L, h, &err);
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
  sq_sql ins;
  memset(&ins, 0, sizeof ins);
  rc = sq_render(&qi, mod->dialect, &ins, &err);
  if (!rc) rc = sq_oper_add_sql(op, ins.sql, ins.len, ins.params, ins.nparams, SQ_STMT_ARENA_VALUES, &err);
  sq_sql_free(&ins);
  if (rc) return lsq_op_fail(L, h, &err);
  sq_oper_set_model(op, mod->m);
  sq_oper_set_no_insert(op, invalid);
  /* the row found, or the one the insert returned, as an instance */
  lsq_op_sink_model(L, h, 1, SINK_ONE)->identity = 1;
  w->h = h;
  w->iidx = iidx;
  w->verr = verr;
  return lsq_op_run(L, dbidx, h, foc_k, (lua_KContext)w);
}

const luaL_Reg lsq_bulk_methods[] = {
  {"bulk_create", model_bulk_create},
  {"find_or_create", model_find_or_create},
  {NULL, NULL},
};
