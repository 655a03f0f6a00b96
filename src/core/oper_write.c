/*
 * oper_write.c - the write and schema kinds of operations (the contract
 * is in sqorm.h, "Write and schema operations"): INSERT, UPDATE, DELETE,
 * RELOAD, INCREMENT and UPSERT (one statement built by the caller, with
 * an expected row count or a read back), BULK_INSERT (batches rendered
 * for the connection, in their own transaction), FIND_OR_CREATE (select,
 * insert, the race re-select) and SYNC (create / drop / alter planned
 * from the live table).
 *
 * They are run functions like op.c's: called by the executor with a
 * connection (a pooled one or a transaction's), never giving it back
 * themselves. Everything between their statements happens here, in C;
 * statements decided while running are logged as they run (records past
 * op->nprep, each with its own elapsed time).
 */
#include "oper_int.h"
#include "model_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound values per multi-row INSERT: below every dialect's limit
 * (sqlite 32766 as the renderer counts it, mysql and postgres 65535). */
#define PARAM_BUDGET 30000

int sq_oper__is_write(int k) { return k >= SQ_OPER_INSERT && k <= SQ_OPER_SYNC; }

/* ------------------------------------------------------------------ */
/* Building                                                             */
/* ------------------------------------------------------------------ */

int sq_oper_build(sq_oper *op, const sq_query *q, int dialect, sq_err *err) {
  if (!op || !q) return sq_err_set(err, SQ_EUSAGE, "sq_oper_build: bad arguments");
  if (dialect < 0) {
    if (op->target != SQ_OPER_TARGET_POOL || !op->pool)
      return sq_err_set(err, SQ_EUSAGE, "sq_oper_build: give the dialect, or target a pool first");
    dialect = sq_pool_driver(op->pool)->dialect;
  }
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  int rc = sq_render(q, dialect, &sql, err);
  unsigned flags = op->kind == SQ_OPER_SELECT || op->kind == SQ_OPER_RELOAD ? SQ_STMT_READ : 0;
  if (!rc) rc = sq_oper_add_sql(op, sql.sql, sql.len, sql.params, sql.nparams, flags, err);
  sq_sql_free(&sql);
  if (!rc && q->model) op->model = q->model;
  return rc;
}

void sq_oper_expect(sq_oper *op, int64_t rows, const char *what) {
  op->expect = rows;
  op->expect_what = NULL;
  if (what) {
    size_t n = strlen(what);
    char *t = sq_arena_alloc(op->arena, n + 1);
    if (t) memcpy(t, what, n + 1);
    op->expect_what = t;
  }
}

/* Copies n values (their strings too) into the op's arena. */
static sq_value *copy_values(sq_arena *a, const sq_value *v, size_t n) {
  size_t need = sizeof *v * n;
  for (size_t i = 0; i < n; i++)
    if (v[i].type == SQ_VTEXT || v[i].type == SQ_VBLOB) need += v[i].u.s.n + 1;
  sq_value *out = sq_arena_alloc(a, need ? need : 1);
  if (!out) return NULL;
  if (n) memcpy(out, v, sizeof *v * n);
  char *bytes = (char *)(out + n);
  for (size_t i = 0; i < n; i++) {
    if (out[i].type != SQ_VTEXT && out[i].type != SQ_VBLOB) continue;
    if (out[i].u.s.n) memcpy(bytes, out[i].u.s.p, out[i].u.s.n);
    bytes[out[i].u.s.n] = '\0';
    out[i].u.s.p = bytes;
    bytes += out[i].u.s.n + 1;
  }
  return out;
}

int sq_oper_set_key(sq_oper *op, const sq_value *key, int n, sq_err *err) {
  if (!op || n < 0 || (n && !key)) return sq_err_set(err, SQ_EUSAGE, "sq_oper_set_key: bad arguments");
  sq_value *k = copy_values(op->arena, key, (size_t)n);
  if (!k) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  op->key = k;
  op->nkey = n;
  return SQ_OK;
}

int sq_oper_bulk_rows(sq_oper *op, const sq_model *m, const int *cols, int ncols, const sq_value *rows, int nrows,
                      int per, unsigned flags, sq_err *err) {
  if (!op || !m || ncols < 0 || nrows < 0 || (ncols && !cols) || (ncols && nrows && !rows))
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_bulk_rows: bad arguments");
  if (op->kind != SQ_OPER_BULK_INSERT) return sq_err_set(err, SQ_EUSAGE, "sq_oper_bulk_rows: not a BULK_INSERT");
  int *c = sq_arena_alloc(op->arena, sizeof *c * (size_t)(ncols + 1));
  if (!c) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  if (ncols) memcpy(c, cols, sizeof *c * (size_t)ncols);
  const sq_value *r = rows;
  if (!(flags & SQ_STMT_ARENA_VALUES) && nrows && ncols) {
    r = copy_values(op->arena, rows, (size_t)nrows * (size_t)ncols);
    if (!r) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  op->model = m;
  op->bcols = c;
  op->nbcols = ncols;
  op->brows = r;
  op->nbrows = nrows;
  op->per = per;
  op->prepared = 0;
  return SQ_OK;
}

void sq_oper_bulk_returning(sq_oper *op, int how) {
  if (op) op->bret = how == SQ_RETURNING_UNSET ? SQ_RETURNING_UNSET : 0;
}

void sq_oper_expect_version(sq_oper *op, int64_t v) {
  op->expect_version = v;
  op->has_version = 1;
}

static int *copy_ints(sq_arena *a, const int *v, int n) {
  int *c = sq_arena_alloc(a, sizeof *c * (size_t)(n + 1));
  if (c && n) memcpy(c, v, sizeof *c * (size_t)n);
  return c;
}

int sq_oper_bulk_conflict(sq_oper *op, int mode, const int *conflict, int nconflict, const int *update, int nupdate,
                          int count_only, sq_err *err) {
  if (!op || mode < SQ_BULK_PLAIN || mode > SQ_BULK_UPDATE || nconflict < 0 || nupdate < 0 ||
      (nconflict && !conflict) || (nupdate && !update))
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_bulk_conflict: bad arguments");
  if (op->kind != SQ_OPER_BULK_INSERT || !op->model)
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_bulk_conflict: not a BULK_INSERT with rows (sq_oper_bulk_rows)");
  if (mode == SQ_BULK_UPDATE && nupdate < 1)
    return sq_err_set(err, SQ_EUSAGE, "bulk upsert: no columns to update");
  if (mode != SQ_BULK_UPDATE && nupdate) return sq_err_set(err, SQ_EUSAGE, "sq_oper_bulk_conflict: update columns without SQ_BULK_UPDATE");
  if (mode == SQ_BULK_PLAIN && nconflict) return sq_err_set(err, SQ_EUSAGE, "sq_oper_bulk_conflict: conflict columns of a plain insert");
  const int *c = nconflict ? copy_ints(op->arena, conflict, nconflict) : NULL;
  const int *u = nupdate ? copy_ints(op->arena, update, nupdate) : NULL;
  if ((nconflict && !c) || (nupdate && !u)) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  op->bmode = mode;
  op->bconf = c;
  op->nbconf = nconflict;
  op->bupd = u;
  op->nbupd = nupdate;
  op->bcount = count_only != 0;
  return SQ_OK;
}

void sq_oper_set_no_insert(sq_oper *op, int yes) { op->no_insert = yes != 0; }

int sq_oper_sync(sq_oper *op, sq_model *const *models, int n, int how, sq_err *err) {
  if (!op || n < 0 || (n && !models) || how < SQ_SYNC_CREATE || how > SQ_SYNC_ALTER_DROP)
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_sync: bad arguments");
  if (op->kind != SQ_OPER_SYNC) return sq_err_set(err, SQ_EUSAGE, "sq_oper_sync: not a SYNC");
  sq_model **m = sq_arena_alloc(op->arena, sizeof *m * (size_t)(n + 1));
  if (!m) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    if (!models[i]) return sq_err_set(err, SQ_EUSAGE, "sq_oper_sync: model %d is NULL", i + 1);
    m[i] = models[i];
  }
  op->models = m;
  op->nmodels = n;
  op->how = how;
  return SQ_OK;
}

int sq_oper_created(const sq_oper *op) { return op ? op->created : 0; }

const int64_t *sq_oper_ids(const sq_oper *op, int *n) {
  *n = op && op->ids ? op->nbrows : 0;
  return op ? op->ids : NULL;
}

int sq_oper__prepare_write(sq_oper *op, int dialect, sq_err *err) {
  (void)dialect;
  int k = op->kind;
  switch (k) {
  case SQ_OPER_BULK_INSERT:
    if (!op->model) return sq_err_set(err, SQ_EUSAGE, "BULK_INSERT operation has no rows (sq_oper_bulk_rows)");
    return SQ_OK;
  case SQ_OPER_SYNC:
    return SQ_OK;
  case SQ_OPER_FIND_OR_CREATE:
    if (op->nst != 2) return sq_err_set(err, SQ_EUSAGE, "find_or_create operation needs its select and its insert");
    return SQ_OK; /* logged as its statements run */
  default:
    if (op->nst != 1) return sq_err_set(err, SQ_EUSAGE, "operation has no statement");
    if (op->flags & SQ_OPER_QUIET) return SQ_OK;
    return sq_oper__add_log(op, op->st[0].sql, op->st[0].len, 0, err);
  }
}

/* ------------------------------------------------------------------ */
/* Statements of a run                                                  */
/* ------------------------------------------------------------------ */

static int is_timed(const sq_oper *op) {
  return (op->flags & (SQ_OPER_TIMED | SQ_OPER_WATCH)) || op->timeout > 0;
}

/* A record for a statement the run decided on (-1: none kept). */
static int late_log(sq_oper *op, const char *sql, size_t len) {
  if (op->flags & SQ_OPER_QUIET) return -1;
  sq_err e;
  sq_err_clear(&e);
  if (sq_oper__add_log(op, sql, len, 1, &e)) return -1; /* out of memory: unlogged */
  return op->nlogs - 1;
}

static void late_done(sq_oper *op, int li, double t0, int rc) {
  if (li < 0) return;
  sq_oper_log *l = &op->logs[li];
  l->elapsed = t0 > 0 ? sq_clock() - t0 : 0;
  l->queued = 0;
  l->rc = rc;
}

typedef struct wx {
  sq_conn *c;
  const char *sql;
  size_t len;
  const sq_value *params;
  int nparams;
  const sq_row_sink *sink;
  sq_result *res;
  sq_err *err;
} wx;

static int x_wexec(void *p) {
  wx *a = p;
  return sq_conn_exec_native(a->c, a->sql, a->len, a->params, a->nparams, a->sink, a->res, a->err);
}

/* Runs one statement on c: its rows (when sink) go to the op's sink as
 * result set `set`; late: logged now (a statement the run decided on). */
static int wexec(sq_oper *op, sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams, int set,
                 int sink, int late, sq_result *res, sq_err *err) {
  int li = late ? late_log(op, sql, len) : -1;
  double t0 = li >= 0 && is_timed(op) ? sq_clock() : 0;
  sq_result scratch;
  op->set = set;
  wx a = {c, sql, len, params, nparams, sink ? &op->rsink : NULL, res ? res : &scratch, err};
  int rc = sink ? sq_oper__protected(op, c, x_wexec, &a, err) : x_wexec(&a);
  if (rc == SQ_OK && sq_conn_is_dead(c)) rc = sq_err_set(err, SQ_ECONNECTION, "connection lost");
  late_done(op, li, t0, rc);
  return rc;
}

/* Transaction control of the run's own statements: a transaction on a
 * pooled connection, a savepoint inside the caller's transaction. */
enum { TX_BEGIN, TX_COMMIT, TX_ROLLBACK };
static const char BULK_SP[] = "sq_bulk_sp";

static int tx_ctl(sq_oper *op, sq_conn *c, int what, sq_err *err) {
  const sq_driver *d = sq_conn_driver(c);
  sq_dconn *h = sq_conn_handle(c);
  int pooled = op->target != SQ_OPER_TARGET_TX;
  const char *text;
  if (pooled) text = what == TX_BEGIN ? sq_tx_begin_sql(d->dialect, SQ_ISO_DEFAULT) : what == TX_COMMIT ? "COMMIT" : "ROLLBACK";
  else text = what == TX_BEGIN ? "SAVEPOINT sq_bulk_sp" : what == TX_COMMIT ? "RELEASE SAVEPOINT sq_bulk_sp" : "ROLLBACK TO SAVEPOINT sq_bulk_sp";
  int li = late_log(op, text, strlen(text));
  double t0 = li >= 0 && is_timed(op) ? sq_clock() : 0;
  int rc;
  if (pooled) {
    if (what == TX_BEGIN) rc = d->begin(h, SQ_ISO_DEFAULT, err);
    else rc = what == TX_COMMIT ? d->commit(h, err) : d->rollback(h, err);
  } else {
    if (what == TX_BEGIN) rc = d->savepoint(h, BULK_SP, err);
    else if (what == TX_COMMIT) rc = d->release(h, BULK_SP, err);
    else {
      rc = d->rollback_to(h, BULK_SP, err);
      if (!rc) rc = d->release(h, BULK_SP, err);
    }
  }
  if (rc == SQ_ECONNECTION) sq_conn_mark_dead(c);
  late_done(op, li, t0, rc);
  return rc;
}

/* Ends the run's own transaction after a failure (err keeps the first
 * error). */
static void tx_abort(sq_oper *op, sq_conn *c) {
  if (sq_conn_is_dead(c)) return;
  sq_err e2;
  sq_err_clear(&e2);
  tx_ctl(op, c, TX_ROLLBACK, &e2);
}

/* The key values of the op (sq_oper_set_key), "id = 5" or
 * "(a, b) = (1, 'x')", shortened, into out. */
static void key_text(const sq_oper *op, char *out, size_t outn) {
  const int *pk;
  int npk = op->model ? sq_model_pk(op->model, &pk) : 0;
  size_t o = 0;
  out[0] = '\0';
  if (npk <= 0 || npk != op->nkey) return;
#define ADD(...) do { if (o < outn) { int k_ = snprintf(out + o, outn - o, __VA_ARGS__); if (k_ > 0) o += (size_t)k_; } } while (0)
  if (npk > 1) ADD("(");
  for (int i = 0; i < npk; i++) ADD("%s%s", i ? ", " : "", sq_model_col(op->model, pk[i])->name);
  ADD(npk > 1 ? ") = (" : " = ");
  for (int i = 0; i < npk; i++) {
    const sq_value *v = &op->key[i];
    if (i) ADD(", ");
    if (v->type == SQ_VINT) ADD("%lld", (long long)v->u.i);
    else if (v->type == SQ_VTEXT) {
      char shown[48];
      sq_show(v->u.s.p, v->u.s.n, shown, sizeof shown);
      ADD("'%s'", shown);
    } else ADD("?");
  }
  if (npk > 1) ADD(")");
#undef ADD
  if (o >= outn && outn > 4) memcpy(out + outn - 4, "...", 4);
}

static int stale(sq_oper *op, sq_err *err) {
  const char *what = op->kind == SQ_OPER_RELOAD ? "reload" : op->expect_what ? op->expect_what : "update";
  if (op->has_version && op->kind != SQ_OPER_RELOAD) {
    char key[160];
    key_text(op, key, sizeof key);
    return sq_err_set(err, SQ_ESTALE,
                      "%s: %s row %s is not at version %lld any more (changed or deleted by someone else since it "
                      "was loaded; optimistic locking); nothing was written",
                      what, op->model ? sq_model_name(op->model) : "such", key[0] ? key : "(key unknown)",
                      (long long)op->expect_version);
  }
  return sq_err_set(err, SQ_ESTALE,
                    "%s: no %s row has this instance's key any more (deleted or re-keyed since it was loaded)%s", what,
                    op->model ? sq_model_name(op->model) : "such", op->kind == SQ_OPER_RELOAD ? "" : "; nothing was written");
}

static int auto_col_of(const sq_model *m) {
  int n = sq_model_ncols(m);
  for (int i = 0; i < n; i++)
    if (sq_model_col(m, i)->auto_increment) return i;
  return -1;
}

/* UPSERT with no row back (MySQL): the row read again by its key, when
 * the key is known (an auto-increment one from LAST_INSERT_ID()). */
static int upsert_reselect(sq_oper *op, sq_conn *c, sq_err *err) {
  const sq_model *m = op->model;
  const int *pk;
  int npk = sq_model_pk(m, &pk);
  if (npk <= 0 || npk != op->nkey) return SQ_OK;
  sq_value *key = sq_arena_alloc(op->arena, sizeof *key * (size_t)npk);
  sq_expr *kids = sq_arena_alloc(op->arena, sizeof *kids * (size_t)npk);
  sq_expr **pkids = sq_arena_alloc(op->arena, sizeof *pkids * (size_t)npk);
  if (!key || !kids || !pkids) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  for (int i = 0; i < npk; i++) {
    key[i] = op->key[i];
    if (key[i].type == SQ_VNULL && sq_model_col(m, pk[i])->auto_increment && op->res.affected_rows == 1 &&
        op->res.last_insert_id)
      key[i] = sq_int(op->res.last_insert_id);
    if (key[i].type == SQ_VNULL) return SQ_OK; /* unknown: nothing to read */
    memset(&kids[i], 0, sizeof kids[i]);
    kids[i].op = SQ_OP_EQ;
    kids[i].col = pk[i];
    kids[i].vals = &key[i];
    kids[i].nvals = 1;
    pkids[i] = &kids[i];
  }
  sq_expr and;
  memset(&and, 0, sizeof and);
  and.op = SQ_OP_AND;
  and.kids = pkids;
  and.nkids = npk;
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.paranoid = 0;
  q.where = npk == 1 ? &kids[0] : &and;
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  int rc = sq_render(&q, sq_conn_driver(c)->dialect, &sql, err);
  if (!rc) rc = wexec(op, c, sql.sql, sql.len, sql.params, sql.nparams, 0, 1, 1, NULL, err);
  sq_sql_free(&sql);
  if (!rc && op->rows == 0) {
    /* the statement went through, but the row is not the one the key
     * names (ON DUPLICATE KEY UPDATE fired on another unique key, or the
     * row was deleted since): which row it was can't be told */
    char kt[160];
    sq_oper_set_key(op, key, npk, err);
    key_text(op, kt, sizeof kt);
    return sq_err_set(err, SQ_ESTALE,
                      "upsert: the statement ran, but no %s row has the key it was given (%s) when read back: the "
                      "duplicate was on another unique key, or the row was deleted since; find the row by that "
                      "unique key (MySQL can't return the row it wrote)",
                      sq_model_name(m), kt);
  }
  return rc;
}

/* ---- BULK_INSERT ---- */

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

/*
 * The keys a multi-row INSERT generated, when the server returns none
 * (MySQL, TiDB, MariaDB < 10.5: no RETURNING). LAST_INSERT_ID() gives
 * the first row's key only; the others follow it one by one only when
 * the server guarantees it: auto_increment_increment = 1 (Galera and
 * multi-primary setups use more) and innodb_autoinc_lock_mode 0 or 1,
 * under which InnoDB reserves a statement's keys in one block (lock mode
 * 2, MySQL 8's default, may interleave them with concurrent inserts).
 * TiDB never promises consecutive keys. Read per operation (one round
 * trip; the increment is a session variable a raw SET can change); when
 * there is no such guarantee, the rows go one per INSERT inside the
 * operation's transaction, each row's key read exactly.
 */
static int mysql_ids_consecutive(sq_oper *op, sq_conn *c, int *yes, sq_err *err) {
  static const char sql[] = "SELECT @@SESSION.auto_increment_increment, @@GLOBAL.innodb_autoinc_lock_mode";
  const sq_driver *d = sq_conn_driver(c);
  const char *version = d->server_version ? d->server_version(sq_conn_handle(c)) : "";
  *yes = 0;
  if (version && strstr(version, "TiDB")) return SQ_OK;
  autoinc_vars a;
  memset(&a, 0, sizeof a);
  sq_row_sink sink = {&a, autoinc_columns, autoinc_row};
  sq_result res;
  sq_err e2;
  sq_err_clear(&e2);
  int li = late_log(op, sql, sizeof sql - 1);
  double t0 = li >= 0 && is_timed(op) ? sq_clock() : 0;
  int rc = sq_conn_exec_native(c, sql, sizeof sql - 1, NULL, 0, &sink, &res, &e2);
  late_done(op, li, t0, rc);
  if (rc == SQ_ECONNECTION || rc == SQ_ENOMEM) {
    *err = e2;
    return rc;
  }
  *yes = !rc && a.got && a.v[0] == 1 && (a.v[1] == 0 || a.v[1] == 1);
  return SQ_OK;
}

/* 1 when sql's parameters are exactly vals[0..n) (so its text can be
 * reused for another batch of as many rows). */
static int params_are(const sq_sql *sql, const sq_value *vals, int n) {
  if (sql->nparams != n) return 0;
  for (int i = 0; i < n; i++) {
    const sq_value *a = &sql->params[i], *b = &vals[i];
    if (a->type != b->type) return 0;
    if (a->type == SQ_VTEXT || a->type == SQ_VBLOB) {
      if (a->u.s.n != b->u.s.n || (a->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n))) return 0;
    } else if (memcmp(&a->u, &b->u, sizeof a->u)) {
      return 0;
    }
  }
  return 1;
}

void sq_oper__free_write(sq_oper *op) {
  free(op->bcache.cols);
  free(op->bcache.okey);
  free(op->bcache.sql);
  memset(&op->bcache, 0, sizeof op->bcache);
}

/* The conflict options of a bulk insert as ints (the statement cache's
 * key besides the shape): mode, count_only, the conflict columns, the
 * update columns. *n ints into the op's arena, NULL on out of memory. */
static int *bulk_okey(sq_oper *op, int *n) {
  *n = 4 + op->nbconf + op->nbupd;
  int *k = sq_arena_alloc(op->arena, sizeof *k * (size_t)*n);
  if (!k) return NULL;
  k[0] = op->bmode;
  k[1] = op->bcount;
  k[2] = op->nbconf;
  k[3] = op->nbupd;
  if (op->nbconf) memcpy(k + 4, op->bconf, sizeof *k * (size_t)op->nbconf);
  if (op->nbupd) memcpy(k + 4 + op->nbconf, op->bupd, sizeof *k * (size_t)op->nbupd);
  return k;
}

/* The cached statement for k rows of this op's shape, or NULL. */
static const char *bcache_get(sq_oper *op, int dialect, int caps, int returning, int k, const int *okey, int nokey,
                              size_t *len, int *rr) {
  if (!op->bcache.sql || op->bcache.nokey != nokey || memcmp(op->bcache.okey, okey, sizeof(int) * (size_t)nokey) ||
      op->bcache.m != op->model || op->bcache.gen != sq_model_generation(op->model) ||
      op->bcache.dialect != dialect || op->bcache.caps != caps || op->bcache.returning != returning ||
      op->bcache.k != k || op->bcache.ncols != op->nbcols ||
      (op->nbcols && memcmp(op->bcache.cols, op->bcols, sizeof(int) * (size_t)op->nbcols)))
    return NULL;
  *len = op->bcache.len;
  *rr = op->bcache.returns_rows;
  return op->bcache.sql;
}

static void bcache_put(sq_oper *op, int dialect, int caps, int returning, int k, const int *okey, int nokey,
                       const sq_sql *sql) {
  int *cols = malloc(sizeof(int) * (size_t)(op->nbcols + 1));
  int *ok = malloc(sizeof(int) * (size_t)nokey);
  char *text = malloc(sql->len + 1);
  if (!cols || !text || !ok) {
    free(cols);
    free(ok);
    free(text);
    return;
  }
  sq_oper__free_write(op);
  memcpy(ok, okey, sizeof(int) * (size_t)nokey);
  op->bcache.okey = ok;
  op->bcache.nokey = nokey;
  if (op->nbcols) memcpy(cols, op->bcols, sizeof(int) * (size_t)op->nbcols);
  memcpy(text, sql->sql, sql->len + 1);
  op->bcache.m = op->model;
  op->bcache.gen = sq_model_generation(op->model);
  op->bcache.dialect = dialect;
  op->bcache.caps = caps;
  op->bcache.returning = returning;
  op->bcache.k = k;
  op->bcache.ncols = op->nbcols;
  op->bcache.cols = cols;
  op->bcache.sql = text;
  op->bcache.len = sql->len;
  op->bcache.returns_rows = sql->returns_rows;
}

static int run_bulk(sq_oper *op, sq_conn *c, sq_err *err) {
  const sq_model *m = op->model;
  const sq_driver *d = sq_conn_driver(c);
  int dialect = d->dialect, caps = sq_conn_caps(c), ncols = op->nbcols, n = op->nbrows;
  op->res.affected_rows = 0;
  op->res.last_insert_id = 0;
  if (n == 0) return SQ_OK;
  int auto_col = auto_col_of(m), auto_given = 0;
  for (int i = 0; i < ncols; i++) auto_given |= op->bcols[i] == auto_col;
  /* PostgreSQL and MariaDB >= 10.5 return the generated keys; SQLite and
   * the rest of the MySQL family report one, from which the others
   * follow only where that is guaranteed (mysql_ids_consecutive). */
  int returning = dialect == SQ_DIALECT_POSTGRES || (dialect == SQ_DIALECT_MYSQL && (caps & SQ_CAP_INSERT_RETURNING));
  int mode = op->bmode, plain = mode == SQ_BULK_PLAIN;
  if (op->bcount) {
    returning = 0; /* the count only: no rows, no keys */
  } else if (!plain) {
    /* only the rows the server returns say which rows were written */
    returning = dialect != SQ_DIALECT_MYSQL || (mode == SQ_BULK_IGNORE && (caps & SQ_CAP_INSERT_RETURNING));
    if (!returning)
      return sq_err_set(err, SQ_EUSAGE,
                        "bulk_create: %s on %s can't tell which rows were written (the server returns no rows for "
                        "it, and LAST_INSERT_ID() can't be trusted there); pass returning = false for the count "
                        "(nothing was sent)",
                        mode == SQ_BULK_IGNORE ? "ignore_duplicates" : "update_on_duplicate",
                        (caps & SQ_CAP_INSERT_RETURNING) ? "MariaDB" : "this MySQL-family server");
  }
  /* a plain insert's rows fill what the caller built: only the columns
   * the server fills (keys, defaults) when the caller asks so */
  if (returning && plain && op->bret == SQ_RETURNING_UNSET) returning = SQ_RETURNING_UNSET;
  if (!plain && ncols == 0) return sq_err_set(err, SQ_EUSAGE, "bulk_create: no columns to insert (nothing was sent)");
  if (mode == SQ_BULK_UPDATE && dialect != SQ_DIALECT_MYSQL && op->nbconf == 0)
    return sq_err_set(err, SQ_EUSAGE, "bulk_create: update_on_duplicate needs conflict = { columns } on %s (nothing was sent)",
                      sq_dialect_name(dialect));
  int nokey;
  int *okey = bulk_okey(op, &nokey);
  if (!okey) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  int budget = PARAM_BUDGET / (ncols ? ncols : 1);
  int per = op->per > 0 && op->per < budget ? op->per : budget;
  if (ncols == 0 && dialect != SQ_DIALECT_MYSQL) per = 1;
  int rc = SQ_OK;
  int want_ids = plain && !op->bcount && !returning && auto_col >= 0 && !auto_given;
  if (dialect == SQ_DIALECT_MYSQL && want_ids && n > 1 && per > 1) {
    int consecutive;
    if ((rc = mysql_ids_consecutive(op, c, &consecutive, err))) return rc;
    if (!consecutive) per = 1;
  }
  if (want_ids) {
    op->ids = sq_arena_alloc(op->arena, sizeof *op->ids * (size_t)n);
    if (!op->ids) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    memset(op->ids, 0, sizeof *op->ids * (size_t)n);
  }
  int multi = n > per;
  if (multi && (rc = tx_ctl(op, c, TX_BEGIN, err))) return rc;
  sq_sql sql;
  memset(&sql, 0, sizeof sql);
  int sql_rows = 0; /* rows of the statement in sql that can be reused with other values */
  int borrowed = 0; /* sql.sql is the cache's */
  for (int from = 0; !rc && from < n; from += per) {
    int k = n - from < per ? n - from : per;
    const sq_value *vals = op->brows + (size_t)from * (size_t)ncols;
    int np = k * ncols;
    const sq_value *params = vals;
    size_t clen;
    int crr;
    const char *ctext = sql_rows != k ? bcache_get(op, dialect, caps, returning, k, okey, nokey, &clen, &crr) : NULL;
    if (ctext) {
      /* the statement of an earlier run of this op (its parameters are
       * the values in order: only such statements are kept) */
      if (!borrowed) sq_sql_free(&sql);
      memset(&sql, 0, sizeof sql);
      sql.sql = (char *)ctext;
      sql.len = clen;
      sql.returns_rows = crr;
      sql_rows = k;
      borrowed = 1;
    } else if (sql_rows != k) {
      sq_query q;
      sq_query_init(&q, mode == SQ_BULK_UPDATE ? SQ_Q_UPSERT : SQ_Q_INSERT, m);
      q.cols = op->bcols;
      q.ncols = ncols;
      q.values = vals;
      q.nrows = k;
      q.returning = returning;
      q.caps = caps;
      q.on_conflict = mode == SQ_BULK_IGNORE ? SQ_CONFLICT_IGNORE : SQ_CONFLICT_NONE;
      q.conflict_cols = op->bconf;
      q.nconflict = op->nbconf;
      q.update_cols = op->bupd;
      q.nupdate = op->nbupd;
      if (borrowed) memset(&sql, 0, sizeof sql);
      borrowed = 0;
      sq_sql_free(&sql);
      memset(&sql, 0, sizeof sql);
      if ((rc = sq_render(&q, dialect, &sql, err))) break;
      /* batches of one size share one statement (and its prepared form) */
      if (params_are(&sql, vals, np)) {
        sql_rows = k;
        /* a full batch, or the whole call in one statement (the usual
         * bulk_create of a list shorter than the batch: the next call
         * reuses it) */
        if (k == per || k == n) bcache_put(op, dialect, caps, returning, k, okey, nokey, &sql);
      } else {
        sql_rows = 0;
        params = sql.params;
        np = sql.nparams;
      }
    }
    sq_result res;
    rc = wexec(op, c, sql.sql, sql.len, params, np, 0, sql.returns_rows, 1, &res, err);
    if (rc) break;
    if (res.affected_rows > 0) op->res.affected_rows += res.affected_rows;
    else if (res.affected_rows < 0 && sql.returns_rows) op->res.affected_rows += res.rows; /* RETURNING */
    if (res.last_insert_id) op->res.last_insert_id = res.last_insert_id;
    if (op->ids && !sql.returns_rows && res.last_insert_id) {
      /* MySQL reports the first key, and k > 1 only where the keys are
       * known to be consecutive (above). SQLite reports the last: one
       * writer, and each row without a key gets max(rowid) + 1 (or, with
       * AUTOINCREMENT, the largest ever + 1), in VALUES order. */
      int64_t first = dialect == SQ_DIALECT_SQLITE ? res.last_insert_id - k + 1 : res.last_insert_id;
      for (int r = 0; r < k; r++) op->ids[from + r] = first + r;
    }
  }
  if (borrowed) memset(&sql, 0, sizeof sql);
  sq_sql_free(&sql);
  if (multi) {
    if (rc) tx_abort(op, c);
    else rc = tx_ctl(op, c, TX_COMMIT, err);
  }
  return rc;
}

/* ---- FIND_OR_CREATE ---- */

static int run_foc(sq_oper *op, sq_conn *c, sq_err *err) {
  const op_stmt *sel = &op->st[0], *ins = &op->st[1];
  op->created = 0;
  int rc = wexec(op, c, sel->sql, sel->len, sel->params, sel->nparams, 0, 1, 1, NULL, err);
  if (rc || op->rows > 0 || op->no_insert) return rc;
  rc = wexec(op, c, ins->sql, ins->len, ins->params, ins->nparams, 1, 1, 1, &op->res, err);
  if (rc == SQ_EUNIQUE && !sq_conn_is_dead(c)) {
    /* created by someone else meanwhile: read it (not possible inside an
     * aborted PostgreSQL transaction; then the unique error stands) */
    sq_err e2;
    sq_err_clear(&e2);
    int64_t before = op->rows;
    if (!wexec(op, c, sel->sql, sel->len, sel->params, sel->nparams, 0, 1, 1, NULL, &e2) && op->rows > before)
      return SQ_OK;
    return rc;
  }
  if (rc == SQ_OK) op->created = 1;
  return rc;
}

/* ---- SYNC ---- */

/* Runs list's statements in order (logged) and frees it. */
static int run_list(sq_oper *op, sq_conn *c, sq_sql_list *list, sq_err *err) {
  int rc = SQ_OK;
  for (int i = 0; i < list->n && !rc; i++)
    rc = wexec(op, c, list->sql[i], strlen(list->sql[i]), NULL, 0, 0, 0, 1, NULL, err);
  sq_sql_list_free(list);
  return rc;
}

/* sq_schema_begin / commit / rollback, logged as what they run. */
static int schema_ctl(sq_oper *op, sq_conn *c, int what, sq_err *err) {
  const char *text = what == TX_BEGIN ? "PRAGMA foreign_keys = OFF; BEGIN"
                     : what == TX_COMMIT ? "PRAGMA foreign_key_check; COMMIT; PRAGMA foreign_keys = ON"
                                         : "ROLLBACK; PRAGMA foreign_keys = ON";
  int li = late_log(op, text, strlen(text));
  double t0 = li >= 0 && is_timed(op) ? sq_clock() : 0;
  int rc = what == TX_BEGIN ? sq_schema_begin(c, err) : what == TX_COMMIT ? sq_schema_commit(c, err) : sq_schema_rollback(c, err);
  late_done(op, li, t0, rc);
  return rc;
}

/* The alter plan of one model, run as one transaction on SQLite and
 * PostgreSQL (a savepoint inside the caller's), so a failure (a
 * rebuild's copy, a unique key over duplicates) leaves the table as it
 * was. On SQLite outside a transaction the plan runs with foreign keys
 * off (sq_schema_begin): a rebuild's DROP TABLE must not fire the ON
 * DELETE actions of the tables referencing the table. A MySQL plan is
 * one atomic ALTER TABLE. */
static int run_alter(sq_oper *op, sq_conn *c, const sq_model *m, int flags, sq_err *err) {
  sq_sql_list list;
  memset(&list, 0, sizeof list);
  int rc = sq_plan_alter_ex(c, m, flags, &list, err);
  if (!rc && list.n > 0 && sq_conn_driver(c)->dialect == SQ_DIALECT_POSTGRES && op->target != SQ_OPER_TARGET_TX) {
    /* ALTER TYPE ... ADD VALUE IF NOT EXISTS first, each committed on its
     * own: a new label can't be used (a default, a cast) in the
     * transaction that added it. Re-running them changes nothing. */
    int k = 0;
    for (int i = 0; i < list.n; i++) {
      if (!rc && !strncmp(list.sql[i], "ALTER TYPE ", 11)) {
        rc = wexec(op, c, list.sql[i], strlen(list.sql[i]), NULL, 0, 0, 0, 1, NULL, err);
        free(list.sql[i]);
      } else {
        list.sql[k++] = list.sql[i];
      }
    }
    list.n = k;
  }
  if (rc || list.n == 0 || sq_conn_driver(c)->dialect == SQ_DIALECT_MYSQL) {
    if (!rc) return run_list(op, c, &list, err);
    sq_sql_list_free(&list);
    return rc;
  }
  int lite = sq_conn_driver(c)->dialect == SQ_DIALECT_SQLITE && op->target != SQ_OPER_TARGET_TX;
  rc = lite ? schema_ctl(op, c, TX_BEGIN, err) : tx_ctl(op, c, TX_BEGIN, err);
  if (rc) {
    sq_sql_list_free(&list);
    return rc;
  }
  rc = run_list(op, c, &list, err);
  if (!rc) return lite ? schema_ctl(op, c, TX_COMMIT, err) : tx_ctl(op, c, TX_COMMIT, err);
  if (lite) {
    sq_err e2;
    sq_err_clear(&e2);
    schema_ctl(op, c, TX_ROLLBACK, &e2);
  } else {
    tx_abort(op, c);
  }
  return rc;
}

/* The models run in dependency order (sq_schema_order: referenced
 * tables first, the join models of their associations included), drops
 * in reverse; alter then adds the foreign keys the live tables lack. */
static int run_sync(sq_oper *op, sq_conn *c, sq_err *err) {
  int dialect = sq_conn_driver(c)->dialect, how = op->how, rc = SQ_OK;
  sq_sql_list list;
  const sq_model **ord = NULL;
  int nord = 0;
  if (op->nmodels == 0) return SQ_OK;
  rc = sq_schema_order(op->models, op->nmodels, &ord, &nord, err);
  if (rc) return rc;
  if (how == SQ_SYNC_FORCE || how == SQ_SYNC_DROP) {
    for (int i = nord - 1; i >= 0 && !rc; i--) {
      memset(&list, 0, sizeof list);
      rc = sq_render_drop(ord[i], dialect, 1, &list, err);
      rc = rc ? (sq_sql_list_free(&list), rc) : run_list(op, c, &list, err);
    }
  }
  for (int i = 0; how != SQ_SYNC_DROP && i < nord && !rc; i++) {
    const sq_model *m = ord[i];
    if (how == SQ_SYNC_ALTER || how == SQ_SYNC_ALTER_DROP) {
      rc = run_alter(op, c, m, how == SQ_SYNC_ALTER_DROP ? SQ_ALTER_DROP : 0, err);
      continue;
    }
    memset(&list, 0, sizeof list);
    rc = sq_render_create(m, dialect, how == SQ_SYNC_CREATE, &list, err);
    rc = rc ? (sq_sql_list_free(&list), rc) : run_list(op, c, &list, err);
  }
  /* alter: the foreign keys the live tables lack */
  for (int i = 0; (how == SQ_SYNC_ALTER || how == SQ_SYNC_ALTER_DROP) && i < nord && !rc; i++) {
    memset(&list, 0, sizeof list);
    rc = sq_plan_alter_fks(c, ord[i], &list, err);
    if (!rc && list.n > 0 && dialect == SQ_DIALECT_SQLITE) {
      /* the rebuild runs the plan with foreign keys off; its statements
       * are logged, the time of the whole on the first */
      int li0 = -1;
      for (int j = 0; j < list.n; j++) {
        int li = late_log(op, list.sql[j], strlen(list.sql[j]));
        if (j == 0) li0 = li;
      }
      double t0 = li0 >= 0 && is_timed(op) ? sq_clock() : 0;
      rc = sq_sqlite_run_rebuild(c, &list, err);
      late_done(op, li0, t0, rc);
      for (int j = 1; li0 >= 0 && j < list.n; j++) late_done(op, li0 + j, 0, rc);
      sq_sql_list_free(&list);
    } else if (!rc) {
      rc = run_list(op, c, &list, err);
    } else {
      sq_sql_list_free(&list);
    }
  }
  free(ord);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The run                                                              */
/* ------------------------------------------------------------------ */

int sq_oper__run_write(sq_oper *op, sq_conn *c, sq_err *err) {
  if (sq_conn_is_dead(c)) return sq_err_set(err, SQ_ECONNECTION, "connection is dead (lost or closed by the server)");
  op->rows = 0;
  switch (op->kind) {
  case SQ_OPER_BULK_INSERT: return run_bulk(op, c, err);
  case SQ_OPER_FIND_OR_CREATE: return run_foc(op, c, err);
  case SQ_OPER_SYNC: return run_sync(op, c, err);
  default: break;
  }
  const op_stmt *st = &op->st[0];
  if (st->flags & SQ_STMT_SESSION) sq_conn_mark_dirty(c);
  int rc = wexec(op, c, st->sql, st->len, st->params, st->nparams, 0, 1, 0, &op->res, err);
  if (rc) return rc;
  switch (op->kind) {
  case SQ_OPER_UPDATE:
  case SQ_OPER_DELETE:
  case SQ_OPER_INCREMENT:
    if (op->expect > 0 && op->res.affected_rows >= 0 && op->res.affected_rows < op->expect) return stale(op, err);
    break;
  case SQ_OPER_RELOAD:
    if (op->rows == 0) return stale(op, err);
    break;
  case SQ_OPER_UPSERT:
    if (op->rows == 0 && op->model && op->nkey > 0) return upsert_reselect(op, c, err);
    break;
  default:
    break;
  }
  return SQ_OK;
}
