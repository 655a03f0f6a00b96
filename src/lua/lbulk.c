/*
 * lbulk.c - the writes of several statements on one connection:
 * bulk_create (one multi-row INSERT per batch, all batches in one
 * transaction or savepoint) and find_or_create (SELECT, then INSERT, and
 * on a unique violation the re-select), both through lsq_with_conn.
 */
#include "lmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound values per multi-row INSERT: below every dialect's limit
 * (sqlite 32766 as the renderer counts it, mysql and postgres 65535). */
#define PARAM_BUDGET 30000

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
static int mysql_ids_consecutive(lua_State *L, lsq_conn_ctx *c, int dbidx, int *yes, sq_err *err) {
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
  int rc = lsq_conn_exec(L, c, dbidx, sql, sizeof sql - 1, NULL, 0, &sink, &res, &e2);
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
  lsq_conn_ctx *c = lua_touserdata(L, 1);
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
  if (multi) rc = lsq_conn_begin(L, c, 2, &err);
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
    const char *shsql = sh ? lsq_shape_sql(sh, bc->s->arena, &err) : NULL;
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
    rc = sh ? lsq_conn_exec(L, c, 2, shsql, sh->len, q.values, np, returns_rows ? &sink : NULL, &res, &err)
            : lsq_conn_exec(L, c, 2, sql->sql, sql->len, sql->params, sql->nparams, returns_rows ? &sink : NULL, &res, &err);
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
      if (!sq_conn_is_dead(c->conn)) lsq_conn_end(L, c, 2, 0, &e2);
    } else {
      rc = lsq_conn_end(L, c, 2, 1, &err);
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
  lsq_conn_ctx c;
  memset(&c, 0, sizeof c);
  c.fn = bulk_fn;
  c.ud = &bc;
  lua_pushvalue(L, dbidx);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, lidx);
  int failed = lsq_with_conn(L, dbidx, &c, 3);
  lsq_scratch_done(s);
  if (failed) {
    lsq_unique_fields(L, mod);
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
static int foc_select(lua_State *L, lsq_conn_ctx *c, foc_ctx *fc, int imt, sq_err *err) {
  lsq_isink s;
  lsq_isink_init(&s, L, fc->mod, SINK_ONE);
  s.identity = 1;
  lua_pushnil(L);
  s.out = lua_gettop(L);
  s.imt = imt;
  sq_row_sink sink;
  lsq_isink_sink(&s, &sink);
  sq_result res;
  int rc = lsq_conn_exec(L, c, 2, fc->sel->sql, fc->sel->len, fc->sel->params, fc->sel->nparams, &sink, &res, err);
  lua_settop(L, s.out);
  return rc;
}

/* with_conn function: [1] ctx, [2] db, [3] model, [4] the new instance,
 * [5] a validation error or nil, [6] imt. Returns instance, created. */
static int foc_fn(lua_State *L) {
  lsq_conn_ctx *c = lua_touserdata(L, 1);
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
  int rc = lsq_conn_exec(L, c, 2, fc->ins->sql, fc->ins->len, fc->ins->params, fc->ins->nparams,
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
  lsq_conn_ctx c;
  memset(&c, 0, sizeof c);
  c.fn = foc_fn;
  c.ud = &fc;
  lua_pushvalue(L, dbidx);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, iidx);
  lua_pushvalue(L, verr);
  lua_pushvalue(L, 4);
  int top = lua_gettop(L) - 5;
  int failed = lsq_with_conn(L, dbidx, &c, 5);
  sq_sql_free(&ins);
  lsq_scratch_done(s);
  if (failed) {
    lsq_unique_fields(L, mod);
    return lua_error(L);
  }
  return lua_gettop(L) - top;
}

const luaL_Reg lsq_bulk_methods[] = {
  {"bulk_create", model_bulk_create},
  {"find_or_create", model_find_or_create},
  {NULL, NULL},
};
