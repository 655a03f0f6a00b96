/*
 * conn.c - one pooled connection: running a statement on it and reading
 * its state. The pool (pool.c) decides when a connection is opened,
 * handed out, reset or discarded; this file only runs statements and
 * records, in c->dead, that a connection must not be handed out again.
 */
#include "internal.h"

#include <string.h>

const sq_driver *sq_conn_driver(const sq_conn *c) { return c ? c->drv : NULL; }

sq_dconn *sq_conn_handle(sq_conn *c) { return c ? c->h : NULL; }

/*
 * A connection is dead once the core saw it fail with SQ_ECONNECTION or
 * the driver says so. The driver's flag is sticky, so caching it in
 * c->dead is safe and spares later callers the indirect call.
 */
int sq_conn_is_dead(sq_conn *c) {
  if (!c) return 1;
  if (c->dead) return 1;
  if (!c->h) return 1;
  if (c->drv->is_dead && c->drv->is_dead(c->h)) c->dead = 1;
  return c->dead;
}

void sq_conn_mark_dead(sq_conn *c) {
  if (c) c->dead = 1;
}

void sq_conn_mark_dirty(sq_conn *c) {
  if (c) c->dirty = 1;
}

int sq_conn_stopped(sq_conn *c) {
  return c ? atomic_load_explicit(&c->stop, memory_order_relaxed) : 0;
}

/*
 * Runs SQL already in the driver's placeholder style (the renderer and
 * the Lua binding produce it). A failure of kind SQ_ECONNECTION, or a
 * driver that reports the link dead afterwards, marks the connection dead
 * so sq_pool_release discards it instead of lending a broken connection
 * to the next caller. Inside a transaction that also ends the
 * transaction: the caller sees kind "connection" and nothing is re-run
 * behind its back.
 */
int sq_conn_exec_native(sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                        const sq_row_sink *sink, sq_result *res, sq_err *err) {
  sq_err_clear(err);
  if (res) {
    res->affected_rows = -1;
    res->last_insert_id = 0;
    res->rows = 0;
    res->has_result_set = 0;
  }
  if (!c || !sql || nparams < 0 || (nparams > 0 && !params))
    return sq_err_set(err, SQ_EUSAGE, "sq_conn_exec: bad arguments");
  if (sq_conn_is_dead(c))
    return sq_err_set(err, SQ_ECONNECTION, "connection is dead (lost or closed by the server)");
  int stop = atomic_load_explicit(&c->stop, memory_order_relaxed);
  if (stop)
    return sq_err_set(err, stop, "statement not started: the operation was %s",
                      stop == SQ_ETIMEOUT ? "stopped by its timeout" : stop == SQ_ECLOSED ? "stopped because the pool closed" : "cancelled");
  int rc = c->drv->exec(c->h, sql, len, params, nparams, sink, res, err);
  if (rc == SQ_ECONNECTION || (c->drv->is_dead && c->drv->is_dead(c->h))) c->dead = 1;
  return rc;
}

/*
 * Rewrites ? / :name placeholders to the driver's style, checks the value
 * count against the placeholders (a clear usage error beats a driver's
 * "bind index out of range"), then runs the statement.
 */
int sq_conn_exec(sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                 const sq_row_sink *sink, sq_result *res, sq_err *err) {
  sq_err_clear(err);
  if (!c || !sql) return sq_err_set(err, SQ_EUSAGE, "sq_conn_exec: bad arguments");
  int style = c->drv->ph_style;
  if (c->drv->dialect == SQ_DIALECT_MYSQL) style |= SQ_PH_BACKSLASH;
  sq_stmt_text t;
  int rc = sq_stmt_rewrite(sql, len, style, &t, err);
  if (rc != SQ_OK) return rc;
  if (t.nparams != nparams) {
    rc = sq_err_set(err, SQ_EUSAGE, "statement has %d placeholder%s but %d value%s given", t.nparams,
                    t.nparams == 1 ? "" : "s", nparams, nparams == 1 ? " was" : "s were");
    sq_stmt_text_free(&t);
    return rc;
  }
  rc = sq_conn_exec_native(c, t.sql, t.len, params, nparams, sink, res, err);
  sq_stmt_text_free(&t);
  return rc;
}
