/*
 * lraw.c - raw SQL with binds: db:query(sql [, binds [, opts]]) and
 * db:exec(sql [, binds [, opts]]). ? or :name placeholders are rewritten
 * into the driver's by the dialect's lexer (the rewrites of each db are
 * cached by SQL text), binds converted, and the statement (or, with
 * multi = true, every statement in order) runs on one connection.
 */
#include "lop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCAL_PARAMS 16

/* Keeps the bind value on the stack top alive for the statement: it
 * stays on the stack (anchor 0) or goes into the anchor table. */
static void keep_bind(lua_State *L, int anchor, int i) {
  if (anchor) lua_rawseti(L, anchor, i + 1);
}

/* Converts the binds at bidx for the placeholders of t into params. Does
 * not raise. The strings in params are anchored: every value fetched is
 * left on the stack (or, past 256 of them, in a table left on the
 * stack), so a binds table whose __index makes fresh strings, or any Lua
 * that runs before the statement is sent (a finaliser), can't free them.
 * The caller keeps what this leaves on the stack until the statement is
 * done. */
static int convert_binds(lua_State *L, int bidx, const sq_stmt_text *t, sq_value *params, sq_err *err) {
  char what[96];
  if (bidx == 0) {
    if (t->nparams) return sq_err_set(err, SQ_EUSAGE, "SQL has %d placeholder(s) but no binds were given", t->nparams);
    return SQ_OK;
  }
  int anchor = 0;
  if (t->nparams > 256 || !lua_checkstack(L, t->nparams + 8)) {
    lua_createtable(L, t->nparams, 0);
    anchor = lua_gettop(L);
  }
  /* `what` names the bind in a message, so it is only formatted for one */
  if (t->named) {
    for (int i = 0; i < t->nparams; i++) {
      lua_getfield(L, bidx, t->names[i]);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return sq_err_set(err, SQ_EUSAGE, "missing bind ':%.64s' (use sqorm.null to write NULL)", t->names[i]);
      }
      int rc = lsq_to_value(L, -1, &params[i], "bind", err);
      if (rc) {
        snprintf(what, sizeof what, "bind ':%.64s'", t->names[i]);
        rc = lsq_to_value(L, -1, &params[i], what, err);
      }
      if (rc) {
        lua_pop(L, 1);
        return rc;
      }
      keep_bind(L, anchor, i);
    }
    lua_pushnil(L);
    while (lua_next(L, bidx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        return sq_err_set(err, SQ_EUSAGE, "SQL uses :name placeholders but a positional bind was given");
      }
      const char *k = lua_tostring(L, -1);
      int found = 0;
      for (int i = 0; i < t->nparams && !found; i++) found = !strcmp(k, t->names[i]);
      if (!found) {
        sq_err_set(err, SQ_EUSAGE, "bind ':%.64s' is not used by the SQL", k);
        lua_pop(L, 1);
        return err->kind;
      }
    }
    return SQ_OK;
  }
  for (int i = 0; i < t->nparams; i++) {
    lua_rawgeti(L, bidx, i + 1);
    int rc = lsq_to_value(L, -1, &params[i], "bind", err);
    if (rc) {
      snprintf(what, sizeof what, "bind #%d", i + 1);
      rc = lsq_to_value(L, -1, &params[i], what, err);
    }
    if (rc) {
      lua_pop(L, 1);
      return rc;
    }
    keep_bind(L, anchor, i);
  }
  /* Anything beyond the placeholders is a mistake worth reporting. */
  lua_pushnil(L);
  while (lua_next(L, bidx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1)) {
      if (lua_type(L, -1) == LUA_TSTRING)
        sq_err_set(err, SQ_EUSAGE, "named bind '%.64s' given but the SQL uses ? placeholders", lua_tostring(L, -1));
      else sq_err_set(err, SQ_EUSAGE, "binds must be a list (for ?) or a table of names (for :name)");
      lua_pop(L, 1);
      return err->kind;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k < 1 || k > t->nparams) {
      lua_Integer n = (lua_Integer)lua_rawlen(L, bidx);
      if (n < k) n = k;
      sq_err_set(err, SQ_EUSAGE, "SQL has %d placeholder(s) but %lld binds were given", t->nparams, (long long)n);
      lua_pop(L, 1);
      return err->kind;
    }
  }
  return SQ_OK;
}

/* ---------------------------------------------------------------- */
/* rewritten statements                                               */
/* ---------------------------------------------------------------- */

/* db:query and db:exec rewrite ? and :name placeholders into the
 * driver's; programs run the same few statements over and over, so each
 * db keeps its last few rewrites, keyed by the SQL text. An entry in use
 * is never evicted or freed (a binds table's __index may run another
 * statement, or close the db, in the middle). */
#define STMT_CACHE 8

typedef struct lsq_stmt {
  char *key;      /* the SQL as given (owned); NULL: a free slot */
  size_t keylen;
  sq_stmt_text t;
  int is_read;    /* the rewrite's is_read */
  int busy;       /* statements using it now */
  unsigned stamp; /* last use */
} lsq_stmt;

struct lsq_stmts {
  lsq_stmt e[STMT_CACHE];
  unsigned clock;
};

/* Frees the cache; with force 0 only when no entry is in use. */
void lsq_stmts_free(lsq_db *db, int force) {
  struct lsq_stmts *c = db->stmts;
  if (!c) return;
  for (int i = 0; i < STMT_CACHE && !force; i++)
    if (c->e[i].busy) return;
  for (int i = 0; i < STMT_CACHE; i++) {
    free(c->e[i].key);
    sq_stmt_text_free(&c->e[i].t);
  }
  free(c);
  db->stmts = NULL;
}

/* The rewrite of sql: a cache entry (marked busy), or one made into *tmp
 * when it can't be cached. NULL with err filled when the SQL is bad.
 * Give it back with stmt_put. */
static lsq_stmt *stmt_get(lsq_db *db, const char *sql, size_t len, lsq_stmt *tmp, sq_err *err) {
  struct lsq_stmts *c = db->stmts;
  for (int i = 0; c && i < STMT_CACHE; i++) {
    lsq_stmt *e = &c->e[i];
    if (e->key && e->keylen == len && !memcmp(e->key, sql, len)) {
      e->busy++;
      e->stamp = ++c->clock;
      return e;
    }
  }
  memset(tmp, 0, sizeof *tmp);
  if (sq_stmt_rewrite_dialect(db->dialect, sql, len, &tmp->t, err)) return NULL;
  tmp->is_read = tmp->t.is_read;
  if (!c && !(c = db->stmts = calloc(1, sizeof *c))) return tmp;
  lsq_stmt *v = NULL; /* a free slot, else the least recently used idle one */
  for (int i = 0; i < STMT_CACHE; i++) {
    lsq_stmt *e = &c->e[i];
    if (!e->key) {
      v = e;
      break;
    }
    if (!e->busy && (!v || e->stamp < v->stamp)) v = e;
  }
  char *key = v ? malloc(len ? len : 1) : NULL;
  if (!key) return tmp;
  memcpy(key, sql, len);
  free(v->key);
  sq_stmt_text_free(&v->t);
  *v = *tmp;
  v->key = key;
  v->keylen = len;
  v->busy = 1;
  v->stamp = ++c->clock;
  return v;
}

static void stmt_put(lsq_stmt *s, lsq_stmt *tmp) {
  if (s == tmp) sq_stmt_text_free(&tmp->t);
  else s->busy--;
}

/* ---------------------------------------------------------------- */
/* options of db:query / db:exec                                      */
/* ---------------------------------------------------------------- */

/* The options table of db:query and db:exec. Strict: an unknown key is a
 * usage error. A new option is one more entry in raw_opt_list. */
typedef struct raw_opts {
  int multi;      /* run every statement of the SQL, in order */
  double timeout; /* seconds; 0: the db's default (connect option timeout) */
  int use_primary; /* a read goes to the primary, not a replica (lroute.h) */
  int plain;      /* db:query: the first row, or nil */
  int scalar;     /* db:query: the first value of the first row, or nil */
  int model;      /* db:query: instances of this model (the opts table holds it), 0: none */
} raw_opts;

static int opt_bool(lua_State *L, const char *method, const char *name) {
  if (lua_type(L, -1) != LUA_TBOOLEAN)
    lsq_usage(L, "db:%s: option '%s' must be a boolean, got %s", method, name, luaL_typename(L, -1));
  return lua_toboolean(L, -1);
}

static void opt_multi(lua_State *L, const char *method, raw_opts *o) { o->multi = opt_bool(L, method, "multi"); }
static void opt_plain(lua_State *L, const char *method, raw_opts *o) { o->plain = opt_bool(L, method, "plain"); }
static void opt_scalar(lua_State *L, const char *method, raw_opts *o) { o->scalar = opt_bool(L, method, "scalar"); }

static void opt_model(lua_State *L, const char *method, raw_opts *o) {
  lsq_model *mod = lsq_toudata(L, -1, lsq_kind_model, sizeof *mod);
  if (!mod || !mod->m)
    lsq_usage(L, "db:%s: option 'model' must be a model (db:define), got %s", method, luaL_typename(L, -1));
  o->model = 1;
}

static void opt_use_primary(lua_State *L, const char *method, raw_opts *o) {
  if (lua_type(L, -1) != LUA_TBOOLEAN)
    lsq_usage(L, "db:%s: option 'use_primary' must be a boolean, got %s", method, luaL_typename(L, -1));
  o->use_primary = lua_toboolean(L, -1);
}

static void opt_timeout(lua_State *L, const char *method, raw_opts *o) {
  if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
    lsq_usage(L, "db:%s: option 'timeout' must be a number of seconds >= 0, got %s", method, luaL_typename(L, -1));
  o->timeout = lua_tonumber(L, -1);
}

static const struct raw_opt {
  const char *name;
  void (*set)(lua_State *L, const char *method, raw_opts *o); /* the value is on the stack top */
  int query_only;  /* shapes db:query's rows: unknown to db:exec */
} raw_opt_list[] = {
  {"multi", opt_multi, 0},
  {"use_primary", opt_use_primary, 0},
  {"timeout", opt_timeout, 0},
  {"plain", opt_plain, 1},
  {"scalar", opt_scalar, 1},
  {"model", opt_model, 1},
  {NULL, NULL, 0},
};

/* Reads the options table at idx (nil: defaults). Raises on a bad one;
 * call it holding nothing. */
static void read_raw_opts(lua_State *L, int idx, const char *method, raw_opts *o) {
  memset(o, 0, sizeof *o);
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    lsq_usage(L, "db:%s: options must be a table, got %s", method, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const struct raw_opt *opt = NULL;
    int query = !strcmp(method, "query");
    if (lua_type(L, -2) == LUA_TSTRING)
      for (opt = raw_opt_list; opt->name && strcmp(opt->name, lua_tostring(L, -2)); opt++) {}
    if (opt && opt->name && opt->query_only && !query)
      lsq_usage(L, "db:%s: unknown option '%s' (plain, scalar and model shape the rows of db:query)", method, opt->name);
    if (!opt || !opt->name) {
      char known[128] = "";
      for (const struct raw_opt *k = raw_opt_list; k->name; k++)
        if (query || !k->query_only)
          snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", known[0] ? ", " : "", k->name);
      if (lua_type(L, -2) == LUA_TSTRING)
        lsq_usage(L, "db:%s: unknown option '%.64s' (known: %s)", method, lua_tostring(L, -2), known);
      lsq_usage(L, "db:%s: option keys must be strings (known: %s)", method, known);
    }
    opt->set(L, method, o);
    lua_pop(L, 1);
  }
  int shapes = (o->plain != 0) + (o->scalar != 0) + (o->model != 0);
  if (shapes > 1) lsq_usage(L, "db:%s: options plain, scalar and model exclude each other; give one", method);
  if (o->model && o->multi)
    lsq_usage(L, "db:%s: option model can't be combined with multi = true (run the statement alone)", method);
}

/* ---------------------------------------------------------------- */
/* db:query / db:exec                                                 */
/* ---------------------------------------------------------------- */

/* One statement of a multi = true call. */
typedef struct multi_stmt {
  sq_stmt_text t;
  int first; /* index of its first value in the call's values */
} multi_stmt;

typedef struct multi_run {
  multi_stmt *st;
  int n;
} multi_run;

static void multi_free(multi_run *m) {
  for (int i = 0; i < m->n; i++) sq_stmt_text_free(&m->st[i].t);
  free(m->st);
  m->st = NULL;
  m->n = 0;
}

/* Splits sql with the dialect's lexer and rewrites each statement. Does
 * not raise. */
static int multi_split(int dialect, const char *sql, size_t len, multi_run *m, sq_err *err) {
  size_t pos = 0, a, b;
  int cap = 0, named = -1, total = 0;
  memset(m, 0, sizeof *m);
  while (sq_sql_next(dialect, sql, len, &pos, &a, &b)) {
    if (m->n == cap) {
      int nc = cap ? cap * 2 : 8;
      multi_stmt *ns = realloc(m->st, sizeof *ns * (size_t)nc);
      if (!ns) {
        multi_free(m);
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
      }
      m->st = ns;
      cap = nc;
    }
    multi_stmt *st = &m->st[m->n];
    if (sq_stmt_rewrite_dialect(dialect, sql + a, b - a, &st->t, err)) {
      multi_free(m);
      return err->kind;
    }
    m->n++;
    st->first = total;
    total += st->t.nparams;
    if (st->t.nparams > 0) {
      if (named >= 0 && named != st->t.named) {
        multi_free(m);
        return sq_err_set(err, SQ_EUSAGE, "SQL mixes ? and :name placeholders across its statements; use one style");
      }
      named = st->t.named;
    }
  }
  return SQ_OK;
}

/* The continuation of db:query (a rows sink) and db:exec: the rows, or
 * { affected_rows, last_insert_id }. ctx is the holder. */
static int raw_k(lua_State *L, int status, lua_KContext ctx) {
  lsq_op *h = (lsq_op *)ctx;
  (void)status;
  if (lsq_op_failed(h)) return lsq_op_raise(L, h);
  if (h->sink == LSINK_ROWS && h->rows.first) {
    /* plain / scalar: the first row or value, nil when none */
    if (lsq_op_push_out(L, h) == LUA_TTABLE) {
      lua_rawgeti(L, -1, 1);
      lua_remove(L, -2);
    } else {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  } else if (h->sink == LSINK_ROWS || h->sink == LSINK_MODEL) {
    if (lsq_op_push_out(L, h) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_createtable(L, 0, 0);
    }
  } else {
    const sq_result *res = sq_oper_result(h->op);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)res->affected_rows);
    lua_setfield(L, -2, "affected_rows");
    lua_pushinteger(L, (lua_Integer)res->last_insert_id);
    lua_setfield(L, -2, "last_insert_id");
  }
  lsq_op_done(L, h);
  return 1;
}

/* Copies the statement(s) and values into the op (which owns them from
 * here on). Does not raise. */
static int build_raw(sq_oper *op, const lsq_stmt *st, const multi_run *mr, const sq_value *params, sq_err *err) {
  if (st) {
    unsigned flags = (st->is_read ? SQ_STMT_READ : 0) | (st->t.session ? SQ_STMT_SESSION : 0);
    return sq_oper_add_sql(op, st->t.sql, st->t.len, params, st->t.nparams, flags, err);
  }
  for (int i = 0; i < mr->n; i++) {
    const multi_stmt *m = &mr->st[i];
    int rc = sq_oper_add_sql(op, m->t.sql, m->t.len, m->t.nparams ? params + m->first : NULL, m->t.nparams,
                             m->t.session ? SQ_STMT_SESSION : 0, err);
    if (rc) return rc;
  }
  return SQ_OK;
}

/* The shared body of db:query and db:exec: (sql [, binds [, opts]]). */
static int db_statement(lua_State *L, int want_rows, const char *method) {
  lsq_db *db = lsq_check_db(L, 1);
  if (lua_type(L, 2) != LUA_TSTRING)
    return lsq_usage(L, "db:%s expects SQL as a string, got %s", method, luaL_typename(L, 2));
  int bidx = 0;
  if (!lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TTABLE)
      return lsq_usage(L, "db:%s: binds must be a table, got %s", method, luaL_typename(L, 3));
    bidx = 3;
  }
  lua_settop(L, 4);
  raw_opts o;
  read_raw_opts(L, 4, method, &o);
  if (o.model) {
    /* [5]: the model of { model = M }, kept in this frame for the sink */
    lua_getfield(L, 4, "model");
    lsq_model *mod = lsq_toudata(L, 5, lsq_kind_model, sizeof *mod);
    if (!mod || !mod->m) return lsq_usage(L, "db:%s: option 'model' must be a model", method);
    lua_getiuservalue(L, 5, MUV_DB);
    int same = lua_rawequal(L, -1, 1);
    lua_pop(L, 1);
    if (!same) return lsq_usage(L, "db:%s: option 'model': model '%s' belongs to another db", method, sq_model_name(mod->m));
  } else {
    lua_pushnil(L);
  }
  size_t len;
  const char *sql = lua_tolstring(L, 2, &len);

  sq_err err;
  sq_err_clear(&err);
  lsq_stmt tmp, *st = stmt_get(db, sql, len, &tmp, &err);
  if (!st) return lsq_raise(L, &err);
  const sq_stmt_text *t = &st->t;
  multi_run mr = {NULL, 0};
  sq_stmt_text all; /* the placeholders of every statement, for convert_binds */
  char **names = NULL;
  memset(&all, 0, sizeof all);
  if (t->nstatements > 1) {
    if (!o.multi) {
      stmt_put(st, &tmp);
      sq_err_set(&err, SQ_EUSAGE,
                 "db:%s: the SQL holds %d statements; db:query and db:exec run one (pass { multi = true } to run "
                 "them in order)",
                 method, t->nstatements);
      return lsq_raise(L, &err);
    }
    int rc = multi_split(db->dialect, sql, len, &mr, &err);
    stmt_put(st, &tmp);
    st = NULL;
    if (rc) return lsq_raise(L, &err);
    for (int i = 0; i < mr.n; i++) {
      all.nparams += mr.st[i].t.nparams;
      all.named |= mr.st[i].t.named;
    }
    if (all.named && all.nparams > 0) {
      names = malloc(sizeof *names * (size_t)all.nparams);
      if (!names) {
        multi_free(&mr);
        sq_err_set(&err, SQ_ENOMEM, "out of memory");
        return lsq_raise(L, &err);
      }
      for (int i = 0, k = 0; i < mr.n; i++)
        for (int j = 0; j < mr.st[i].t.nparams; j++) names[k++] = mr.st[i].t.names[j];
      all.names = names;
    }
    t = &all;
  }
  sq_value local[LOCAL_PARAMS], *params = local;
  if (t->nparams > LOCAL_PARAMS) {
    params = malloc(sizeof *params * (size_t)t->nparams);
    if (!params) sq_err_set(&err, SQ_ENOMEM, "out of memory");
  }
  int rc = params ? convert_binds(L, bidx, t, params, &err) : err.kind;
  /* The holder is pushed above the binds kept on the stack; nothing of
   * this frame is needed once the op has its own copies. */
  lsq_op *h = lsq_op_get(L);
  sq_oper *op = lsq_op_begin(h, SQ_OPER_RAW);
  if (!rc) rc = build_raw(op, st, &mr, params, &err);
  /* replicas (lroute.h): one read statement with no session effect */
  if (st && st->is_read && !st->t.session && !o.use_primary) h->route = LSQ_ROUTE_READ;
  else if (st && st->is_read) h->route = LSQ_ROUTE_NOWRITE;
  if (!rc && db->logging) rc = sq_oper_log_as(op, sql, len, &err);
  if (st) stmt_put(st, &tmp);
  multi_free(&mr);
  free(names);
  if (params != local) free(params);
  if (rc) return lsq_op_fail(L, h, &err);
  if (o.timeout > 0) sq_oper_set_timeout(op, o.timeout);
  if (o.model) lsq_op_sink_model(L, h, 5, SINK_LIST);
  else if (want_rows) {
    lsq_op_sink_rows(L, h);
    h->rows.first = o.scalar ? LROWS_SCALAR : o.plain ? LROWS_PLAIN : LROWS_ALL;
  }
  return lsq_op_run(L, 1, h, raw_k, (lua_KContext)h);
}

/* db:query(sql [, binds [, opts]]) -> { row, ... }; with { plain = true }
 * the first row or nil, { scalar = true } the first value of the first
 * row or nil, { model = M } instances of M (result columns that are no
 * column of M are kept under their names, as find_all's extras). */
static int db_query(lua_State *L) { return db_statement(L, 1, "query"); }

/* db:exec(sql [, binds [, opts]]) -> { affected_rows = n, last_insert_id = id } */
static int db_exec(lua_State *L) { return db_statement(L, 0, "exec"); }

/* Adds query and exec to the sqorm.Db methods (after lsq_db_open). */
void lsq_raw_open(lua_State *L) {
  luaL_getmetatable(L, LSQ_DB_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, db_query);
  lua_setfield(L, -2, "query");
  lua_pushcfunction(L, db_exec);
  lua_setfield(L, -2, "exec");
  lua_pop(L, 2);
}
