/*
 * op.c - operations: one API call, one operation, run by the core (the
 * contract is in sqorm.h, "Operations").
 *
 * An sq_oper is an sq_job with everything it needs: the statements it
 * sends (copied into its arena), where it runs (a pool, a transaction, a
 * cursor), where its rows go (the caller's sink, or an owned rowset),
 * and its results. Every kind is a run function called by the executor
 * with a connection (sq_job_run for a pool target, sq_job_run_conn for a
 * transaction's or a cursor's connection), so deadlines and server-side
 * cancellation work the same for all of them, inline now and on worker
 * threads later. What must happen around the run - pinning a
 * transaction, turning a kept connection into a transaction or a cursor,
 * a read's one retry on a fresh connection - happens in sq_oper_run,
 * before and after the job; the run functions never give a connection
 * back themselves (the executor still looks at it after run returns).
 *
 * Rows: the driver calls the op's own sq_row_sink (rsink), which passes
 * each call on to the caller's sq_oper_sink with the current result set
 * and parent row, or to the rowset recorder (SQ_OPER_RECORD). Driver
 * calls that may reach the caller's sink go through its protect hook, so
 * a Lua error raised while building a row lands in the binding's
 * lua_pcall, never inside the core: the op then discards the connection
 * (the statement was left midway) and fails.
 */
#include "internal.h"
#include "oper_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int w_columns(void *ud, int ncols, const sq_column *cols, sq_err *err);
static int w_row(void *ud, int ncols, const sq_value *vals, sq_err *err);
static void count_row(sq_oper *op, int ncols, const sq_value *vals);

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */
/* ------------------------------------------------------------------ */

int sq_oper_new(sq_oper **out, sq_err *err) {
  sq_oper *op = calloc(1, sizeof *op);
  if (op) op->arena = sq_arena_new();
  if (!op || !op->arena) {
    free(op);
    *out = NULL;
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  sq_job_init(&op->job, NULL, op);
  op->rsink.ud = op;
  op->rsink.columns = w_columns;
  op->rsink.row = w_row;
  *out = op;
  return SQ_OK;
}

/* Gives back what the op holds that is not memory. No I/O. */
static void let_go(sq_oper *op) {
  if (op->tx) sq_tx_free(op->tx);
  if (op->new_tx) {
    sq_tx_abandon(op->new_tx);
    sq_tx_free(op->new_tx);
  }
  if (op->new_cursor) sq_cursor_abandon(op->new_cursor);
  if (op->pcur) sq_cursor_abandon(op->pcur);
  op->tx = op->new_tx = NULL;
  op->new_cursor = op->pcur = NULL;
  sq_incplan_free(op->inc);
  op->inc = NULL;
}

void sq_oper_reset(sq_oper *op, int kind) {
  if (!op) return;
  let_go(op);
  if (op->rowset) sq_rowset_clear(op->rowset);
  sq_arena_reset(op->arena);
  memset(&op->kind, 0, sizeof *op - offsetof(sq_oper, kind));
  op->kind = kind;
  op->res.affected_rows = -1;
  sq_err_clear(&op->job.err);
  op->job.rc = SQ_OK;
}

void sq_oper_orphan(sq_oper *op) {
  if (!op) return;
  if (op->tx) sq_tx_abandon(op->tx);
  let_go(op);
}

void sq_oper_free(sq_oper *op) {
  if (!op) return;
  let_go(op);
  sq_oper__free_write(op);
  sq_rowset_free(op->rowset);
  sq_arena_free(op->arena);
  free(op);
}

int sq_oper_kind(const sq_oper *op) { return op ? op->kind : SQ_OPER_NONE; }

sq_arena *sq_oper_arena(sq_oper *op) { return op ? op->arena : NULL; }

/* ------------------------------------------------------------------ */
/* Building                                                             */
/* ------------------------------------------------------------------ */

/* A bigger array for n items in a: cap 0 means the one inline item (at
 * old when n is 1). */
static void *grow(sq_arena *a, void *old, int n, int *cap, size_t size) {
  int nc = *cap > 1 ? *cap * 2 : 4;
  void *p = sq_arena_alloc(a, size * (size_t)nc);
  if (!p) return NULL;
  if (n) memcpy(p, old, size * (size_t)n);
  *cap = nc;
  return p;
}

static char *copy_text(sq_arena *a, const char *s, size_t n) {
  char *t = sq_arena_alloc(a, n + 1);
  if (!t) return NULL;
  if (n) memcpy(t, s, n);
  t[n] = '\0';
  return t;
}

/* A SELECT takes a second statement after a count (SQ_STMT_COUNT). */
static int count_then_main(const sq_oper *op, unsigned flags) {
  return op->kind == SQ_OPER_SELECT && op->nst == 1 && (op->st[0].flags & SQ_STMT_COUNT) && !(flags & SQ_STMT_COUNT);
}

int sq_oper_add_sql(sq_oper *op, const char *sql, size_t len, const sq_value *params, int nparams,
                    unsigned flags, sq_err *err) {
  if (!op || !sql || nparams < 0 || (nparams > 0 && !params))
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_add_sql: bad arguments");
  int wk = sq_oper__is_write(op->kind);
  if ((op->kind != SQ_OPER_RAW && op->kind != SQ_OPER_SELECT && op->kind != SQ_OPER_CURSOR_OPEN && !wk) ||
      op->kind == SQ_OPER_BULK_INSERT || op->kind == SQ_OPER_SYNC)
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_add_sql: this kind of operation takes no statements");
  if (op->kind == SQ_OPER_FIND_OR_CREATE && op->nst > 1)
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_add_sql: find_or_create takes two statements (the select, the insert)");
  if (op->kind != SQ_OPER_RAW && op->kind != SQ_OPER_FIND_OR_CREATE && op->nst > 0 &&
      !count_then_main(op, flags))
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_add_sql: this kind of operation takes one statement");
  if ((flags & SQ_STMT_COUNT) && (op->kind != SQ_OPER_SELECT || op->nst > 0))
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_add_sql: a count statement comes first, in a SELECT");
  if (op->nst == 0 && op->capst == 0) {
    op->st = &op->st1;
    op->capst = 1;
  } else if (op->nst == op->capst) {
    op_stmt *n = grow(op->arena, op->st, op->nst, &op->capst, sizeof *n);
    if (!n) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    op->st = n;
  }
  op_stmt *st = &op->st[op->nst];
  /* one block: the values, then the SQL text, then the strings */
  int copy = !(flags & SQ_STMT_ARENA_VALUES);
  size_t need = sizeof(sq_value) * (size_t)nparams + len + 1;
  for (int i = 0; copy && i < nparams; i++)
    if (params[i].type == SQ_VTEXT || params[i].type == SQ_VBLOB) need += params[i].u.s.n + 1;
  sq_value *vals = sq_arena_alloc(op->arena, need);
  if (!vals) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  char *text = (char *)(vals + nparams), *bytes = text + len + 1;
  if (len) memcpy(text, sql, len);
  text[len] = '\0';
  if (nparams) memcpy(vals, params, sizeof *vals * (size_t)nparams);
  for (int i = 0; copy && i < nparams; i++) {
    if (vals[i].type != SQ_VTEXT && vals[i].type != SQ_VBLOB) continue;
    size_t n = vals[i].u.s.n;
    if (n) memcpy(bytes, vals[i].u.s.p, n);
    bytes[n] = '\0';
    vals[i].u.s.p = bytes;
    bytes += n + 1;
  }
  st->sql = text;
  st->len = len;
  st->params = nparams ? vals : NULL;
  st->nparams = nparams;
  st->flags = flags;
  op->nst++;
  op->prepared = 0;
  return SQ_OK;
}

int sq_oper_log_as(sq_oper *op, const char *text, size_t len, sq_err *err) {
  char *t = copy_text(op->arena, text, len);
  if (!t) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  op->log_text = t;
  op->log_len = len;
  op->has_log_text = 1;
  op->prepared = 0;
  return SQ_OK;
}

void sq_oper_target_pool(sq_oper *op, sq_pool *p, const sq_holder *h) {
  if (op->tx) sq_tx_free(op->tx);
  op->tx = NULL;
  op->cursor = NULL;
  op->target = SQ_OPER_TARGET_POOL;
  op->pool = p;
  op->has_holder = h != NULL;
  if (h) {
    op->holder = *h;
    if (h->what) {
      /* (a bounded copy: snprintf's cost showed on every BEGIN) */
      size_t n = strlen(h->what);
      if (n > sizeof op->what - 1) n = sizeof op->what - 1;
      memcpy(op->what, h->what, n);
      op->what[n] = '\0';
      op->holder.what = op->what;
    }
  }
}

void sq_oper_target_tx(sq_oper *op, sq_tx *tx) {
  if (tx) sq_tx_retain(tx);
  if (op->tx) sq_tx_free(op->tx);
  op->tx = tx;
  op->cursor = NULL;
  op->pool = NULL;
  op->has_holder = 0;
  op->target = SQ_OPER_TARGET_TX;
}

void sq_oper_target_cursor(sq_oper *op, sq_cursor *c) {
  if (op->tx) sq_tx_free(op->tx);
  op->tx = NULL;
  op->pool = NULL;
  op->has_holder = 0;
  op->cursor = c;
  op->target = SQ_OPER_TARGET_CURSOR;
}

int sq_oper_target(const sq_oper *op) { return op ? op->target : SQ_OPER_TARGET_NONE; }

void sq_oper_set_sink(sq_oper *op, const sq_oper_sink *sink) {
  op->has_sink = sink != NULL;
  if (sink) op->sink = *sink;
  else memset(&op->sink, 0, sizeof op->sink);
}

void sq_oper_set_timeout(sq_oper *op, double seconds) { op->timeout = seconds > 0 ? seconds : 0; }
double sq_oper_get_timeout(const sq_oper *op) { return op->timeout; }
void sq_oper_set_flags(sq_oper *op, unsigned flags) { op->flags = flags; }
unsigned sq_oper_flags(const sq_oper *op) { return op->flags; }
void sq_oper_set_isolation(sq_oper *op, int isolation) { op->isolation = isolation; op->prepared = 0; }
void sq_oper_set_savepoint(sq_oper *op, unsigned id) { op->sp = id; op->prepared = 0; }
void sq_oper_set_batch(sq_oper *op, int rows) { op->batch = rows; }
void sq_oper_set_model(sq_oper *op, const sq_model *m) { op->model = m; }

int sq_oper__add_log(sq_oper *op, const char *text, size_t len, int copy, sq_err *err) {
  if (op->nlogs == 0 && op->caplogs == 0) {
    op->logs = &op->log1;
    op->caplogs = 1;
  } else if (op->nlogs == op->caplogs) {
    sq_oper_log *n = grow(op->arena, op->logs, op->nlogs, &op->caplogs, sizeof *n);
    if (!n) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    op->logs = n;
  }
  if (copy && !(text = copy_text(op->arena, text, len))) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  sq_oper_log *l = &op->logs[op->nlogs++];
  l->sql = text;
  l->len = len;
  l->elapsed = -1;
  l->queued = 0;
  l->rc = SQ_OK;
  return SQ_OK;
}

static int add_logf(sq_oper *op, sq_err *err, const char *fmt, unsigned id) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, fmt, id);
  return sq_oper__add_log(op, buf, (size_t)n, 1, err);
}

int sq_oper_prepare(sq_oper *op, int dialect, sq_err *err) {
  if (!op) return sq_err_set(err, SQ_EUSAGE, "sq_oper_prepare: bad arguments");
  if (op->prepared) return SQ_OK;
  op->nlogs = 0;
  int k = op->kind, t = op->target, rc = SQ_OK;
  if (op->flags & SQ_OPER_QUIET) {
    /* no records: only the checks that need none */
    if ((k == SQ_OPER_RAW || k == SQ_OPER_SELECT || k == SQ_OPER_CURSOR_OPEN) && op->nst == 0)
      return sq_err_set(err, SQ_EUSAGE, "operation has no statement");
    if (k <= SQ_OPER_NONE || k >= SQ_OPER_KIND_COUNT) return sq_err_set(err, SQ_EUSAGE, "unknown kind of operation (%d)", k);
    if (sq_oper__is_write(k) && sq_oper__prepare_write(op, dialect, err)) return err->kind;
    op->nprep = 0;
    op->prepared = 1;
    return SQ_OK;
  }
  switch (k) {
  case SQ_OPER_RAW:
  case SQ_OPER_SELECT:
  case SQ_OPER_CURSOR_OPEN:
    if (op->nst == 0) return sq_err_set(err, SQ_EUSAGE, "operation has no statement");
    if (op->has_log_text) rc = sq_oper__add_log(op, op->log_text, op->log_len, 0, err);
    else
      for (int i = 0; i < op->nst && !rc; i++) rc = sq_oper__add_log(op, op->st[i].sql, op->st[i].len, 0, err);
    break;
  case SQ_OPER_CURSOR_FETCH:
  case SQ_OPER_CURSOR_CLOSE:
  case SQ_OPER_PING:
  case SQ_OPER_VERSION:
    break;
  case SQ_OPER_BEGIN:
    if (dialect < 0 && (t != SQ_OPER_TARGET_POOL || !op->pool))
      return sq_err_set(err, SQ_EUSAGE, "BEGIN needs a pool (a savepoint is SQ_OPER_SAVEPOINT on the transaction)");
    if (dialect < 0) dialect = sq_pool_driver(op->pool)->dialect;
    rc = sq_oper__add_log(op, sq_tx_begin_sql(dialect, op->isolation), strlen(sq_tx_begin_sql(dialect, op->isolation)), 0, err);
    break;
  case SQ_OPER_COMMIT:
  case SQ_OPER_ROLLBACK:
  case SQ_OPER_SAVEPOINT:
  case SQ_OPER_RELEASE:
  case SQ_OPER_ROLLBACK_TO:
    if (t != SQ_OPER_TARGET_TX || !op->tx) return sq_err_set(err, SQ_EUSAGE, "operation needs a transaction");
    if (k == SQ_OPER_COMMIT) rc = sq_oper__add_log(op, "COMMIT", 6, 0, err);
    else if (k == SQ_OPER_ROLLBACK) rc = sq_oper__add_log(op, "ROLLBACK", 8, 0, err);
    else if (k == SQ_OPER_SAVEPOINT) rc = add_logf(op, err, "SAVEPOINT sq_sp_%u", sq_tx_next_savepoint(op->tx));
    else if (k == SQ_OPER_RELEASE) rc = add_logf(op, err, "RELEASE SAVEPOINT sq_sp_%u", op->sp);
    else {
      rc = add_logf(op, err, "ROLLBACK TO SAVEPOINT sq_sp_%u", op->sp);
      if (!rc) rc = add_logf(op, err, "RELEASE SAVEPOINT sq_sp_%u", op->sp);
    }
    break;
  default:
    if (sq_oper__is_write(k)) {
      rc = sq_oper__prepare_write(op, dialect, err);
      break;
    }
    return sq_err_set(err, SQ_EUSAGE, "unknown kind of operation (%d)", k);
  }
  if (rc) return rc;
  op->nprep = op->nlogs;
  op->prepared = 1;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                 */
/* ------------------------------------------------------------------ */

static int w_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  sq_oper *op = ud;
  if (op->counting) return 0;
  op->delivered = 1;
  return op->out.columns ? op->out.columns(op->out.ud, op->set, ncols, cols, err) : 0;
}

static int w_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  sq_oper *op = ud;
  if (op->counting) {
    count_row(op, ncols, vals);
    return 0;
  }
  op->delivered = 1;
  op->rows++;
  if (op->inc && sq_incplan_row(op->inc, op->set, vals, ncols, &op->parent, err)) return err->kind;
  return op->out.row ? op->out.row(op->out.ud, op->set, op->parent, ncols, vals, err) : 0;
}

/* Calls fn(arg), a driver call that may reach the sink, through the
 * sink's protect hook. A non-local exit out of the sink abandons the
 * statement midway: c can't be trusted any more. */
int sq_oper__protected(sq_oper *op, sq_conn *c, int (*fn)(void *), void *arg, sq_err *err) {
  if (!op->has_out || !op->out.protect) return fn(arg);
  int rc = op->out.protect(op->out.ud, fn, arg);
  if (rc >= 0) return rc;
  op->interrupted = 1;
  if (c) sq_conn_mark_dead(c);
  return sq_err_set(err, SQ_EINTERNAL, "the row sink stopped the operation");
}

/* ------------------------------------------------------------------ */
/* Run functions (called by the executor with a connection)             */
/* ------------------------------------------------------------------ */

typedef struct xargs {
  sq_oper *op;
  sq_conn *c;
  const op_stmt *st;
  sq_result *res;
  sq_err *err;
  int n;
} xargs;

static int x_exec(void *p) {
  xargs *a = p;
  return sq_conn_exec_native(a->c, a->st->sql, a->st->len, a->st->params, a->st->nparams,
                             a->op->has_out ? &a->op->rsink : NULL, a->res, a->err);
}

static int exec_stmt(sq_oper *op, sq_conn *c, const op_stmt *st, sq_result *res, sq_err *err) {
  if (st->flags & SQ_STMT_SESSION) sq_conn_mark_dirty(c);
  xargs a = {op, c, st, res, err, 0};
  return sq_oper__protected(op, c, x_exec, &a, err);
}

/* ---- includes (op_include.c keeps the plan) ---- */

typedef struct inc_ctx {
  sq_oper *op;
  sq_conn *c;
} inc_ctx;

/* One batch statement of an include: logged when it runs (its text
 * depends on the rows above it), run into its set. */
static int inc_exec(void *ud, int set, const sq_select_sql *s, sq_err *err) {
  inc_ctx *x = ud;
  sq_oper *op = x->op;
  if (!(op->flags & SQ_OPER_QUIET)) {
    int rc = sq_oper__add_log(op, s->sql.sql, s->sql.len, 1, err);
    if (rc) return rc;
  }
  op_stmt st = {s->sql.sql, s->sql.len, s->sql.params, s->sql.nparams, SQ_STMT_READ};
  sq_result one;
  op->set = set;
  op->parent = -1;
  int rc = exec_stmt(op, x->c, &st, &one, err);
  op->parent = -1;
  return rc;
}

/* A SELECT with includes: the main statement, then every batch. */
static int run_includes(sq_oper *op, sq_conn *c, sq_err *err) {
  sq_incplan_restart(op->inc);
  op->set = 0;
  op->parent = -1;
  int rc = exec_stmt(op, c, &op->st[0], &op->res, err);
  if (rc) return rc;
  inc_ctx x = {op, c};
  rc = sq_incplan_run(op->inc, sq_conn_driver(c)->dialect, inc_exec, &x, err);
  op->set = 0;
  return rc;
}

/* ---- a count, then the rows (find_and_count_all) ---- */

static void count_row(sq_oper *op, int ncols, const sq_value *vals) {
  if (ncols < 1) return;
  const sq_value *v = &vals[ncols - 1];
  if (v->type == SQ_VINT) op->count = v->u.i;
  else if (v->type == SQ_VFLOAT) op->count = (int64_t)v->u.f;
  else if (v->type == SQ_VTEXT) op->count = strtoll(v->u.s.p, NULL, 10);
}

static int run_count_then(sq_oper *op, sq_conn *c, sq_err *err) {
  sq_result one;
  op->count = 0;
  op->counting = 1;
  op->set = 0;
  int rc = exec_stmt(op, c, &op->st[0], &one, err);
  op->counting = 0;
  if (rc) return rc;
  if (op->inc) {
    sq_incplan_restart(op->inc);
    op->parent = -1;
    rc = exec_stmt(op, c, &op->st[1], &op->res, err);
    if (rc) return rc;
    inc_ctx x = {op, c};
    rc = sq_incplan_run(op->inc, sq_conn_driver(c)->dialect, inc_exec, &x, err);
    op->set = 0;
    return rc;
  }
  return exec_stmt(op, c, &op->st[1], &op->res, err);
}

int64_t sq_oper_count(const sq_oper *op) { return op ? op->count : 0; }

int sq_oper_set_includes(sq_oper *op, const sq_select_sql *main, sq_err *err) {
  if (!op || !main || op->kind != SQ_OPER_SELECT)
    return sq_err_set(err, SQ_EUSAGE, "sq_oper_set_includes: a SELECT operation and its rendered statement");
  sq_incplan_free(op->inc);
  op->inc = NULL;
  return sq_incplan_new(op->arena, main, &op->inc, err);
}

int sq_oper_nsets(const sq_oper *op) { return op && op->inc ? sq_incplan_nsets(op->inc) : 1; }

const sq_oper_setinfo *sq_oper_set_info(const sq_oper *op, int set) {
  return op && op->inc ? sq_incplan_set(op->inc, set) : NULL;
}

/* RAW and SELECT: the statements in order. One statement reports its own
 * result; several add up (see SQ_OPER_RAW), and the first failure stops
 * the run, named by its position. */
static int run_stmts(sq_oper *op, sq_conn *c, sq_err *err) {
  if (op->kind == SQ_OPER_SELECT && op->nst == 2 && (op->st[0].flags & SQ_STMT_COUNT)) return run_count_then(op, c, err);
  if (op->nst == 1 && op->inc) return run_includes(op, c, err);
  if (op->nst == 1) {
    op->set = 0;
    return exec_stmt(op, c, &op->st[0], &op->res, err);
  }
  int64_t affected = 0, last_id = 0;
  int wrote = 0, rc = SQ_OK;
  for (int i = 0; i < op->nst; i++) {
    sq_result one;
    op->set = i;
    rc = exec_stmt(op, c, &op->st[i], &one, err);
    if (rc != SQ_OK) {
      char pre[48];
      int k = snprintf(pre, sizeof pre, "statement %d of %d: ", i + 1, op->nst);
      size_t n = strlen(err->msg);
      if (k > 0 && n + (size_t)k >= sizeof err->msg) n = sizeof err->msg - (size_t)k - 1;
      if (k > 0) {
        memmove(err->msg + k, err->msg, n);
        memcpy(err->msg, pre, (size_t)k);
        err->msg[n + (size_t)k] = '\0';
      }
      break;
    }
    if (one.affected_rows >= 0) {
      wrote = 1;
      affected += one.affected_rows;
    }
    if (one.last_insert_id != 0) last_id = one.last_insert_id;
  }
  op->res.affected_rows = wrote ? affected : -1;
  op->res.last_insert_id = last_id;
  op->res.rows = 0;
  op->res.has_result_set = 0;
  return rc;
}

static int x_cursor_open(void *p) {
  xargs *a = p;
  const sq_driver *d = sq_conn_driver(a->c);
  return d->cursor_open(sq_conn_handle(a->c), a->st->sql, a->st->len, a->st->params, a->st->nparams,
                        sq_cursor_fwd_sink(a->op->pcur), &a->op->dc, a->err);
}

static int run_cursor_open(sq_oper *op, sq_conn *c, sq_err *err) {
  if (sq_conn_is_dead(c)) return sq_err_set(err, SQ_ECONNECTION, "connection is dead (lost or closed by the server)");
  const op_stmt *st = &op->st[0];
  if (st->flags & SQ_STMT_SESSION) sq_conn_mark_dirty(c);
  op->set = 0;
  op->dc = NULL;
  xargs a = {op, c, st, NULL, err, 0};
  int rc = sq_oper__protected(op, c, x_cursor_open, &a, err);
  if (rc == SQ_OK && sq_conn_is_dead(c)) rc = sq_err_set(err, SQ_ECONNECTION, "connection lost");
  if (rc != SQ_OK) {
    const sq_driver *d = sq_conn_driver(c);
    if (op->dc) d->cursor_close(op->dc); /* left midway by the sink */
    op->dc = NULL;
    if (rc == SQ_ECONNECTION || (d->is_dead && d->is_dead(sq_conn_handle(c)))) sq_conn_mark_dead(c);
  }
  return rc;
}

static int x_fetch(void *p) {
  xargs *a = p;
  sq_oper *op = a->op;
  int batch = op->batch > 0 ? op->batch : DEFAULT_BATCH;
  int got = 0, eof = 0;
  int rc = sq_cursor_fetch_n(op->cursor, batch - a->n, &got, &eof, a->err);
  a->n += got;
  if (rc) return rc;
  if (eof) op->eof = 1;
  return SQ_OK;
}

static int run_fetch(sq_oper *op, sq_conn *c, sq_err *err) {
  op->set = 0;
  xargs a = {op, c, NULL, NULL, err, 0};
  return sq_oper__protected(op, c, x_fetch, &a, err);
}

static int op_run(sq_job *job, sq_conn *c, sq_err *err) {
  sq_oper *op = job->ud;
  const sq_driver *d = sq_conn_driver(c);
  int rc;
  op->ran = 1;
  op->dialect = d->dialect;
  switch (op->kind) {
  case SQ_OPER_RAW:
  case SQ_OPER_SELECT: rc = run_stmts(op, c, err); break;
  case SQ_OPER_CURSOR_OPEN: rc = run_cursor_open(op, c, err); break;
  case SQ_OPER_CURSOR_FETCH: rc = run_fetch(op, c, err); break;
  case SQ_OPER_CURSOR_CLOSE:
    sq_cursor_close_stmt(op->cursor);
    rc = SQ_OK;
    break;
  case SQ_OPER_BEGIN:
    rc = d->begin(sq_conn_handle(c), op->isolation, err);
    if (rc == SQ_OK && sq_conn_is_dead(c)) rc = sq_err_set(err, SQ_ECONNECTION, "connection lost");
    if (rc == SQ_ECONNECTION) sq_conn_mark_dead(c);
    break;
  case SQ_OPER_COMMIT: rc = sq_tx_commit_pinned(op->tx, err); break;
  case SQ_OPER_ROLLBACK: rc = sq_tx_rollback_pinned(op->tx, err); break;
  case SQ_OPER_SAVEPOINT: rc = sq_tx_savepoint(op->tx, &op->new_sp, err); break;
  case SQ_OPER_RELEASE: rc = sq_tx_savepoint_end_pinned(op->tx, op->sp, 0, err); break;
  case SQ_OPER_ROLLBACK_TO: rc = sq_tx_savepoint_end_pinned(op->tx, op->sp, 1, err); break;
  case SQ_OPER_PING:
    rc = d->ping(sq_conn_handle(c), err);
    if (rc) sq_conn_mark_dead(c);
    break;
  case SQ_OPER_VERSION: {
    const char *v = d->server_version ? d->server_version(sq_conn_handle(c)) : NULL;
    op->text = copy_text(op->arena, v ? v : "", v ? strlen(v) : 0);
    rc = op->text ? SQ_OK : sq_err_set(err, SQ_ENOMEM, "out of memory");
    break;
  }
  default:
    if (sq_oper__is_write(op->kind)) rc = sq_oper__run_write(op, c, err);
    else rc = sq_err_set(err, SQ_EINTERNAL, "operation of unknown kind %d", op->kind);
    break;
  }
  /* (only a lost connection can make a read worth retrying) */
  if (rc == SQ_ECONNECTION) op->conn_dead = sq_conn_is_dead(c);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Running                                                              */
/* ------------------------------------------------------------------ */

static void job_setup(sq_oper *op, double deadline, int flags) {
  sq_job *j = &op->job;
  j->run = op_run;
  j->ud = op;
  j->deadline = deadline;
  j->acquire_timeout = -1;
  j->flags = flags;
  j->holder = op->has_holder ? &op->holder : NULL;
  op->conn_dead = 0;
}

static void account(sq_oper *op) {
  op->queued += op->job.queued;
  op->waited += op->job.waited;
  op->elapsed += op->job.elapsed;
}

/*
 * An op with no deadline, not asked to be cancellable (SQ_OPER_WATCH),
 * runs its job directly: nothing would ever stop it, so the executor's
 * bookkeeping (its lock, its list of live jobs, the clock) would be pure
 * cost on the hottest paths (a primary-key lookup is a few microseconds).
 * What the executor does after a run that was not stopped is done here
 * the same way: the connection is released, or kept (SQ_JOB_KEEP_CONN)
 * when the run succeeded and it is alive.
 */
static int direct(sq_oper *op, sq_conn *held, int flags) {
  sq_job *j = &op->job;
  int timed = (op->flags & SQ_OPER_TIMED) != 0;
  double t0 = timed ? sq_clock() : 0, waited = 0;
  sq_conn *c = held;
  if (j->err.kind) sq_err_clear(&j->err); /* a retry's second run */
  j->conn = NULL;
  j->tx_ended = 0;
  j->canceled_on_server = 0;
  op->conn_dead = 0;
  int rc = SQ_OK;
  if (!c)
    rc = sq_pool_acquire_job(op->pool, -1, op->has_holder ? &op->holder : NULL, (flags & SQ_JOB_FRESH_CONN) != 0,
                             timed ? &waited : NULL, &c, &j->err);
  double t1 = timed ? sq_clock() : 0;
  if (rc == SQ_OK) {
    rc = op_run(j, c, &j->err);
    if (rc != SQ_OK && j->err.kind == SQ_OK) sq_err_set(&j->err, rc, "operation failed (%s)", sq_kind_name(rc));
    if (!held) {
      if ((flags & SQ_JOB_KEEP_CONN) && rc == SQ_OK && !sq_conn_is_dead(c)) j->conn = c;
      else sq_pool_release(op->pool, c);
    }
  }
  if (timed) {
    op->queued += t1 - t0;
    op->waited += waited;
    op->elapsed += sq_clock() - t1;
  }
  return j->rc = rc;
}

static int watched(const sq_oper *op, double deadline) { return deadline > 0 || (op->flags & SQ_OPER_WATCH); }

/* One job on a connection of the target pool. */
static int on_pool(sq_oper *op, double deadline, int flags) {
  if (!watched(op, deadline)) return direct(op, NULL, flags);
  job_setup(op, deadline, flags);
  int rc = sq_job_run(op->pool, &op->job);
  account(op);
  return rc;
}

/* One job on a connection the op (or its cursor) holds. */
static int on_conn(sq_oper *op, sq_conn *c, double deadline) {
  if (!watched(op, deadline)) return direct(op, c, 0);
  job_setup(op, deadline, 0);
  int rc = sq_job_run_conn(c, &op->job);
  account(op);
  return rc;
}

/* One job on tx's connection, pinned meanwhile. The executor rolled the
 * transaction back when it stopped the run inside it (tx_ended): the
 * transaction fails with that error. A CURSOR_OPEN's cursor joins the
 * transaction while the pin is still held. */
static int on_tx(sq_oper *op, sq_tx *tx, double deadline) {
  sq_conn *c;
  int rc = sq_tx_conn(tx, &c, &op->job.err);
  if (rc) {
    op->job.rc = rc;
    return rc;
  }
  rc = on_conn(op, c, deadline);
  if (rc == SQ_OK && op->kind == SQ_OPER_CURSOR_OPEN) {
    sq_cursor_attach(op->pcur, NULL, NULL, tx, op->dc);
    op->new_cursor = op->pcur;
    op->pcur = NULL;
    op->dc = NULL;
  }
  if (op->kind == SQ_OPER_CURSOR_FETCH && op->interrupted) sq_cursor_fail(op->cursor);
  if (op->job.tx_ended) sq_tx_stopped(tx, &op->job.err);
  sq_tx_conn_done(tx, rc ? &op->job.err : NULL);
  return rc;
}

static int is_read(const sq_oper *op) {
  return op->kind == SQ_OPER_SELECT || op->kind == SQ_OPER_RELOAD || (op->kind == SQ_OPER_RAW && op->nst == 1 && (op->st[0].flags & SQ_STMT_READ));
}

/* The target the kind runs on is set. */
static int check_target(sq_oper *op, sq_err *err) {
  int t = op->target;
  switch (op->kind) {
  case SQ_OPER_RAW:
  case SQ_OPER_SELECT:
  case SQ_OPER_CURSOR_OPEN:
    if ((t == SQ_OPER_TARGET_POOL && op->pool) || (t == SQ_OPER_TARGET_TX && op->tx)) return SQ_OK;
    return sq_err_set(err, SQ_EUSAGE, "operation needs a pool or a transaction to run on");
  case SQ_OPER_CURSOR_FETCH:
  case SQ_OPER_CURSOR_CLOSE:
    if (t == SQ_OPER_TARGET_CURSOR && op->cursor) return SQ_OK;
    return sq_err_set(err, SQ_EUSAGE, "operation needs a cursor");
  case SQ_OPER_PING:
  case SQ_OPER_VERSION:
  case SQ_OPER_BEGIN:
    if (t == SQ_OPER_TARGET_POOL && op->pool) return SQ_OK;
    return sq_err_set(err, SQ_EUSAGE, "operation needs a pool to run on%s",
                      op->kind == SQ_OPER_BEGIN ? " (a savepoint is SQ_OPER_SAVEPOINT on the transaction)" : "");
  default:
    if (sq_oper__is_write(op->kind) && t == SQ_OPER_TARGET_POOL && op->pool) return SQ_OK;
    if (t == SQ_OPER_TARGET_TX && op->tx) return SQ_OK;
    return sq_err_set(err, SQ_EUSAGE, sq_oper__is_write(op->kind) ? "operation needs a pool or a transaction to run on"
                                                                   : "operation needs a transaction");
  }
}

static int run_kind(sq_oper *op, double dl) {
  sq_err *err = &op->job.err;
  int rc = check_target(op, err);
  if (rc) return rc;
  switch (op->kind) {
  case SQ_OPER_RAW:
  case SQ_OPER_SELECT:
  case SQ_OPER_RELOAD:
    if (op->target == SQ_OPER_TARGET_TX) return on_tx(op, op->tx, dl);
    rc = on_pool(op, dl, 0);
    /* A read on a pooled connection that proved dead, before anything
     * reached the caller: once more, on a connection opened for it. */
    if (rc == SQ_ECONNECTION && op->conn_dead && !op->delivered && is_read(op)) {
      op->res.affected_rows = -1;
      rc = on_pool(op, dl, SQ_JOB_FRESH_CONN);
    }
    return rc;
  case SQ_OPER_CURSOR_OPEN:
    if (!(op->pcur = sq_cursor_prepare())) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    sq_cursor_set_target(op->pcur, &op->rsink);
    if (op->target == SQ_OPER_TARGET_TX) {
      rc = on_tx(op, op->tx, dl);
    } else {
      rc = on_pool(op, dl, SQ_JOB_KEEP_CONN);
      if (rc == SQ_OK && !op->job.conn) rc = sq_err_set(err, SQ_ECONNECTION, "connection lost");
      if (rc == SQ_OK) {
        sq_cursor_attach(op->pcur, op->pool, op->job.conn, NULL, op->dc);
        op->job.conn = NULL;
        op->new_cursor = op->pcur;
        op->pcur = NULL;
        op->dc = NULL;
      }
    }
    if (op->new_cursor) sq_cursor_set_target(op->new_cursor, NULL);
    if (op->pcur) {
      sq_cursor_free(op->pcur); /* never attached: no statement, no connection */
      op->pcur = NULL;
    }
    return rc;
  case SQ_OPER_CURSOR_FETCH: {
    sq_cursor *cur = op->cursor;
    if (!sq_cursor_is_open(cur)) {
      int has;
      op->eof = 1;
      return sq_cursor_fetch(cur, &has, err); /* says why it is closed */
    }
    sq_cursor_set_target(cur, &op->rsink);
    sq_tx *tx = sq_cursor_tx(cur);
    if (tx) {
      rc = on_tx(op, tx, dl);
    } else {
      rc = on_conn(op, sq_cursor_conn(cur), dl);
      if (op->interrupted) sq_cursor_fail(cur);
    }
    sq_cursor_set_target(cur, NULL);
    return rc;
  }
  case SQ_OPER_CURSOR_CLOSE: {
    sq_cursor *cur = op->cursor;
    rc = SQ_OK;
    if (sq_cursor_is_open(cur)) {
      sq_tx *tx = sq_cursor_tx(cur);
      rc = tx ? on_tx(op, tx, dl) : on_conn(op, sq_cursor_conn(cur), dl);
    }
    sq_cursor_close(cur); /* gives a pooled connection back */
    return rc;
  }
  case SQ_OPER_BEGIN:
    rc = on_pool(op, dl, SQ_JOB_KEEP_CONN);
    if (rc == SQ_OK && !op->job.conn) rc = sq_err_set(err, SQ_ECONNECTION, "connection lost");
    if (rc == SQ_OK) {
      sq_conn *c = op->job.conn;
      op->job.conn = NULL;
      if (!(op->new_tx = sq_tx_adopt(op->pool, c))) {
        sq_pool_release(op->pool, c); /* rolled back there */
        return sq_err_set(err, SQ_ENOMEM, "out of memory");
      }
    }
    return rc;
  case SQ_OPER_COMMIT:
  case SQ_OPER_ROLLBACK:
  case SQ_OPER_SAVEPOINT:
  case SQ_OPER_RELEASE:
  case SQ_OPER_ROLLBACK_TO:
    if (sq_tx_state(op->tx) != SQ_TX_OPEN) {
      /* Nothing to run: the sq_tx_* call says what became of it (a
       * rollback of a failed transaction is what its owner owes). */
      switch (op->kind) {
      case SQ_OPER_COMMIT: return sq_tx_commit(op->tx, err);
      case SQ_OPER_ROLLBACK: return sq_tx_rollback(op->tx, err);
      case SQ_OPER_SAVEPOINT: return sq_tx_savepoint(op->tx, &op->new_sp, err);
      case SQ_OPER_RELEASE: return sq_tx_savepoint_release(op->tx, op->sp, err);
      default: return sq_tx_savepoint_rollback(op->tx, op->sp, err);
      }
    }
    return on_tx(op, op->tx, dl);
  case SQ_OPER_PING:
  case SQ_OPER_VERSION:
    return on_pool(op, dl, 0);
  default:
    if (sq_oper__is_write(op->kind)) return op->target == SQ_OPER_TARGET_TX ? on_tx(op, op->tx, dl) : on_pool(op, dl, 0);
    return sq_err_set(err, SQ_EUSAGE, "unknown kind of operation (%d)", op->kind);
  }
}

/* Before a run: prepared, and where rows go set up. */
static int start(sq_oper *op, sq_err *err) {
  int rc = op->prepared ? SQ_OK : sq_oper_prepare(op, -1, err);
  if (rc == SQ_OK) {
    op->has_out = op->has_sink;
    if (op->has_sink) op->out = op->sink;
    else memset(&op->out, 0, sizeof op->out); /* a cursor's statement may still call it */
    if (op->has_sink && (op->flags & SQ_OPER_RECORD)) {
      if (!op->rowset) rc = sq_rowset_new(&op->rowset, err);
      else sq_rowset_clear(op->rowset);
      if (rc == SQ_OK) sq_rowset_sink(op->rowset, &op->out);
    }
  }
  op->parent = -1;
  return rc;
}

static int finish(sq_oper *op, int rc);

int sq_oper_run(sq_oper *op) {
  if (!op) return SQ_EUSAGE;
  sq_err *err = &op->job.err;
  sq_err_clear(err);
  int rc = start(op, err);
  if (rc == SQ_OK) rc = run_kind(op, op->timeout > 0 ? sq_clock() + op->timeout : 0);
  return finish(op, rc);
}

/* After a run (inline, or an async one completed): the result, the log
 * records' times, err.fields. */
static int finish(sq_oper *op, int rc) {
  sq_err *err = &op->job.err;
  if (rc != SQ_OK && err->kind == SQ_OK) sq_err_set(err, rc, "operation failed (%s)", sq_kind_name(rc));
  op->rc = op->job.rc = rc;
  for (int i = 0; i < op->nprep; i++) {
    sq_oper_log *l = &op->logs[i];
    l->elapsed = op->ran ? op->queued - op->waited + op->elapsed : -1;
    l->queued = op->waited;
    l->rc = rc;
  }
  if (rc == SQ_EUNIQUE && op->model) {
    int n = sq_model_ncols(op->model);
    unsigned char *flags = sq_arena_alloc(op->arena, (size_t)n + 1);
    int *cols = sq_arena_alloc(op->arena, sizeof *cols * (size_t)(n + 1));
    if (flags && cols) {
      memset(flags, 0, (size_t)n + 1);
      if (sq_model_unique_cols(op->model, op->dialect, err->msg, flags) > 0)
        for (int c = 0; c < n; c++)
          if (flags[c]) cols[op->nfcols++] = c;
      op->fcols = cols;
    }
  }
  return rc;
}

int sq_oper_cancel(sq_oper *op) { return op ? sq_job_cancel(&op->job) : 0; }

/* ------------------------------------------------------------------ */
/* Async: submit to the pool's workers, complete on the consumer        */
/* ------------------------------------------------------------------ */

/*
 * sq_oper_submit runs the same run functions as sq_oper_run, as jobs of
 * the executor: a pool target waits in the pool's queue (sq_job_submit);
 * a transaction's or a cursor's connection gets a pin for the op
 * (sq_pin_submit), so it never waits for a pooled connection - a pool
 * full of open transactions can't deadlock. What sq_oper_run does around
 * the job on the calling thread (pinning the transaction, turning a kept
 * connection into a transaction or a cursor, a read's one retry) is done
 * by sq_oper_complete on the consumer's thread, after the pop. Rows are
 * always recorded (a worker never calls the caller's sink).
 */

/* Completes op at once, with no job (the error is in op->job.err). */
static int done_now(sq_oper *op, int rc) {
  op->inflight = 0;
  finish(op, rc);
  op->job.rc = rc;
  return 0;
}

/* Submits op's job on conn (held by op->atx or a cursor) through a pin. */
/* (err is never the job's own: a submit clears its err after the job
 * may already have completed on a worker) */
static int submit_on_conn(sq_oper *op, sq_conn *c, sq_err *err) {
  sq_err se;
  int rc = sq_pin_new(c, &op->apin, err);
  if (rc == SQ_OK && (rc = sq_pin_submit(op->apin, &op->job, &se)) != SQ_OK) *err = se;
  if (rc != SQ_OK && op->apin) {
    sq_conn *back;
    sq_err e;
    sq_pin_detach(op->apin, &back, &e);
    op->apin = NULL;
  }
  return rc;
}

static int submit_tx(sq_oper *op, sq_tx *tx, sq_err *err) {
  sq_conn *c;
  if (sq_tx_pins(tx) > 0)
    return sq_err_set(err, SQ_EUSAGE, "the transaction is busy: another operation on it is still running "
                                      "(one operation at a time per transaction)");
  int rc = sq_tx_conn(tx, &c, err);
  if (rc) return rc;
  sq_tx_retain(tx);
  op->atx = tx;
  rc = submit_on_conn(op, c, err);
  if (rc) {
    op->atx = NULL;
    sq_tx_conn_done(tx, NULL);
    sq_tx_free(tx);
  }
  return rc;
}

static int submit_pool(sq_oper *op, int flags, sq_err *err) {
  op->job.flags = flags;
  sq_pool_retain(op->pool);
  op->apool = op->pool;
  sq_err se;
  int rc = sq_job_submit(op->pool, &op->job, &se);
  if (rc) {
    *err = se;
    op->apool = NULL;
    sq_pool_close(op->pool);
  }
  return rc;
}

int sq_oper_submit(sq_oper *op, sq_cq *cq, void *tag, sq_err *err) {
  sq_err e;
  if (!err) err = &e;
  sq_err_clear(err);
  if (!op) {
    sq_err_set(err, SQ_EUSAGE, "sq_oper_submit: bad arguments");
    return 0;
  }
  if (op->inflight) {
    sq_err_set(err, SQ_EUSAGE, "sq_oper_submit: the operation is already in flight");
    return 0;
  }
  sq_err *jerr = &op->job.err;
  sq_err_clear(jerr);
  if (!cq) return done_now(op, sq_err_set(jerr, SQ_EUSAGE, "sq_oper_submit: bad arguments"));
  op->flags |= SQ_OPER_RECORD;
  op->retried = 0;
  int rc = start(op, jerr);
  if (rc == SQ_OK) rc = check_target(op, jerr);
  if (rc) return done_now(op, rc);
  op->deadline = op->timeout > 0 ? sq_clock() + op->timeout : 0;
  job_setup(op, op->deadline, 0);
  op->job.cq = cq;
  op->job.tag = tag;
  op->inflight = 1;
  switch (op->kind) {
  case SQ_OPER_CURSOR_OPEN:
    if (!(op->pcur = sq_cursor_prepare())) return done_now(op, sq_err_set(jerr, SQ_ENOMEM, "out of memory"));
    sq_cursor_set_target(op->pcur, &op->rsink);
    rc = op->target == SQ_OPER_TARGET_TX ? submit_tx(op, op->tx, jerr) : submit_pool(op, SQ_JOB_KEEP_CONN, jerr);
    if (rc) {
      sq_cursor_free(op->pcur);
      op->pcur = NULL;
    }
    break;
  case SQ_OPER_CURSOR_FETCH:
  case SQ_OPER_CURSOR_CLOSE: {
    sq_cursor *cur = op->cursor;
    if (!sq_cursor_is_open(cur)) {
      if (op->kind == SQ_OPER_CURSOR_CLOSE) {
        sq_cursor_close(cur);
        return done_now(op, SQ_OK);
      }
      int has;
      op->eof = 1;
      return done_now(op, sq_cursor_fetch(cur, &has, jerr)); /* says why it is closed */
    }
    if (op->kind == SQ_OPER_CURSOR_FETCH) sq_cursor_set_target(cur, &op->rsink);
    sq_tx *tx = sq_cursor_tx(cur);
    rc = tx ? submit_tx(op, tx, jerr) : submit_on_conn(op, sq_cursor_conn(cur), jerr);
    if (rc) sq_cursor_set_target(cur, NULL);
    break;
  }
  case SQ_OPER_BEGIN: rc = submit_pool(op, SQ_JOB_KEEP_CONN, jerr); break;
  case SQ_OPER_COMMIT:
  case SQ_OPER_ROLLBACK:
  case SQ_OPER_SAVEPOINT:
  case SQ_OPER_RELEASE:
  case SQ_OPER_ROLLBACK_TO:
    if (sq_tx_state(op->tx) != SQ_TX_OPEN) {
      op->inflight = 0;
      return done_now(op, run_kind(op, 0)); /* nothing to run: the sq_tx_* call says why */
    }
    rc = submit_tx(op, op->tx, jerr);
    break;
  default:
    rc = op->target == SQ_OPER_TARGET_TX ? submit_tx(op, op->tx, jerr) : submit_pool(op, 0, jerr);
    break;
  }
  if (rc) return done_now(op, rc);
  return 1;
}

sq_oper *sq_oper_of_job(sq_job *job) { return job ? job->ud : NULL; }

int sq_oper_inflight(const sq_oper *op) { return op ? op->inflight : 0; }

int sq_oper_complete(sq_oper *op) {
  if (!op || !op->inflight) return 0;
  sq_err *err = &op->job.err;
  int rc = op->job.rc;
  if (rc != SQ_OK && err->kind == SQ_OK) sq_err_set(err, rc, "operation failed (%s)", sq_kind_name(rc));
  account(op);
  if (op->apin) {
    sq_conn *c;
    sq_err e;
    sq_pin_detach(op->apin, &c, &e);
    op->apin = NULL;
  }
  sq_tx *tx = op->atx;
  if (tx) {
    /* as on_tx, after the job */
    op->atx = NULL;
    if (rc == SQ_OK && op->kind == SQ_OPER_CURSOR_OPEN && op->pcur) {
      sq_cursor_attach(op->pcur, NULL, NULL, tx, op->dc);
      op->new_cursor = op->pcur;
      op->pcur = NULL;
      op->dc = NULL;
    }
    if (op->kind == SQ_OPER_CURSOR_FETCH && op->interrupted) sq_cursor_fail(op->cursor);
    if (op->job.tx_ended) sq_tx_stopped(tx, err);
    sq_tx_conn_done(tx, rc ? err : NULL);
    sq_tx_free(tx);
  } else if (op->kind == SQ_OPER_CURSOR_FETCH && op->interrupted) {
    sq_cursor_fail(op->cursor);
  }
  if (op->kind == SQ_OPER_CURSOR_FETCH || op->kind == SQ_OPER_CURSOR_CLOSE) sq_cursor_set_target(op->cursor, NULL);
  if (op->kind == SQ_OPER_CURSOR_CLOSE) sq_cursor_close(op->cursor);
  sq_pool *p = op->apool;
  if (p) {
    op->apool = NULL;
    if (op->kind == SQ_OPER_CURSOR_OPEN) {
      if (rc == SQ_OK && !op->job.conn) rc = sq_err_set(err, SQ_ECONNECTION, "connection lost");
      if (rc == SQ_OK) {
        sq_cursor_attach(op->pcur, op->pool, op->job.conn, NULL, op->dc);
        op->job.conn = NULL;
        op->new_cursor = op->pcur;
        op->pcur = NULL;
        op->dc = NULL;
      }
      if (op->new_cursor) sq_cursor_set_target(op->new_cursor, NULL);
      if (op->pcur) {
        sq_cursor_free(op->pcur);
        op->pcur = NULL;
        op->dc = NULL;
      }
    } else if (op->kind == SQ_OPER_BEGIN) {
      if (rc == SQ_OK && !op->job.conn) rc = sq_err_set(err, SQ_ECONNECTION, "connection lost");
      if (rc == SQ_OK) {
        sq_conn *c = op->job.conn;
        op->job.conn = NULL;
        if (!(op->new_tx = sq_tx_adopt(op->pool, c))) {
          sq_pool_release(op->pool, c);
          rc = sq_err_set(err, SQ_ENOMEM, "out of memory");
        }
      }
    } else if (rc == SQ_ECONNECTION && op->conn_dead && !op->delivered && is_read(op) && !op->retried) {
      /* a read on a pooled connection that proved dead: once more */
      sq_err se;
      op->retried = 1;
      op->res.affected_rows = -1;
      sq_err_clear(err);
      job_setup(op, op->deadline, 0);
      if (submit_pool(op, SQ_JOB_FRESH_CONN, &se) == SQ_OK) {
        sq_pool_close(p);
        return 1;
      }
      *err = se;
      rc = se.kind;
    }
    sq_pool_close(p); /* last: it may be the pool's last reference */
  } else if (op->kind == SQ_OPER_CURSOR_OPEN && op->pcur) {
    sq_cursor_free(op->pcur); /* never attached */
    op->pcur = NULL;
  }
  op->inflight = 0;
  finish(op, rc);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Results                                                              */
/* ------------------------------------------------------------------ */

int sq_oper_rc(const sq_oper *op) { return op ? op->rc : SQ_EUSAGE; }
const sq_err *sq_oper_err(const sq_oper *op) { return &op->job.err; }
const sq_result *sq_oper_result(const sq_oper *op) { return &op->res; }
int sq_oper_interrupted(const sq_oper *op) { return op->interrupted; }

sq_tx *sq_oper_take_tx(sq_oper *op) {
  sq_tx *tx = op->new_tx;
  op->new_tx = NULL;
  return tx;
}

unsigned sq_oper_savepoint_id(const sq_oper *op) { return op->new_sp; }

sq_cursor *sq_oper_take_cursor(sq_oper *op) {
  sq_cursor *c = op->new_cursor;
  op->new_cursor = NULL;
  return c;
}

int sq_oper_eof(const sq_oper *op) { return op->eof; }
int64_t sq_oper_rows(const sq_oper *op) { return op->rows; }
const char *sq_oper_text(const sq_oper *op) { return op->text ? op->text : ""; }
int sq_oper_nlogs(const sq_oper *op) { return op->nlogs; }
const sq_oper_log *sq_oper_log_at(const sq_oper *op, int i) { return i >= 0 && i < op->nlogs ? &op->logs[i] : NULL; }

int sq_oper_fields(const sq_oper *op, const int **cols) {
  *cols = op->fcols;
  return op->nfcols;
}

sq_rowset *sq_oper_rowset(sq_oper *op) { return op->has_out && (op->flags & SQ_OPER_RECORD) ? op->rowset : NULL; }

int sq_oper_replay(sq_oper *op, const sq_oper_sink *sink, sq_err *err) {
  if (!sq_oper_rowset(op)) return SQ_OK;
  return sq_rowset_replay(op->rowset, sink ? sink : &op->sink, err);
}
