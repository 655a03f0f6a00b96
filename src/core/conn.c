/*
 * conn.c - one pooled connection: running a statement on it and reading
 * its state. The pool (pool.c) decides when a connection is opened,
 * handed out, reset or discarded; this file only runs statements and
 * records, in c->dead, that a connection must not be handed out again.
 */
#include "internal.h"

#include <stdlib.h>
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

/* The dialect whose lexer reads a driver's SQL: its own, or for a
 * driver of no known dialect (a test's fake), the one its placeholder
 * style implies. */
static int lex_dialect(const sq_driver *d) {
  if (d->dialect == SQ_DIALECT_SQLITE || d->dialect == SQ_DIALECT_MYSQL || d->dialect == SQ_DIALECT_POSTGRES)
    return d->dialect;
  return (d->ph_style & 0xff) == SQ_PH_DOLLAR ? SQ_DIALECT_POSTGRES : SQ_DIALECT_SQLITE;
}

/*
 * Runs a rewritten raw statement: one statement only, the value count
 * checked against the placeholders (a clear usage error beats a driver's
 * "bind index out of range"), and the connection marked dirty first when
 * the statement may change its session (even if it then fails: a failed
 * statement may have done part of its work). Rendered statements go
 * straight to sq_conn_exec_native and pay nothing for this.
 */
int sq_conn_exec_stmt(sq_conn *c, const sq_stmt_text *t, const sq_value *params, int nparams,
                      const sq_row_sink *sink, sq_result *res, sq_err *err) {
  sq_err_clear(err);
  if (!c || !t || !t->sql) return sq_err_set(err, SQ_EUSAGE, "sq_conn_exec: bad arguments");
  if (t->nstatements > 1)
    return sq_err_set(err, SQ_EUSAGE,
                      "the SQL holds %d statements; one call runs one statement (split them, or pass multi = true)",
                      t->nstatements);
  if (t->nparams != nparams)
    return sq_err_set(err, SQ_EUSAGE, "statement has %d placeholder%s but %d value%s given", t->nparams,
                      t->nparams == 1 ? "" : "s", nparams, nparams == 1 ? " was" : "s were");
  if (t->session) sq_conn_mark_dirty(c);
  return sq_conn_exec_native(c, t->sql, t->len, params, nparams, sink, res, err);
}

int sq_conn_exec(sq_conn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                 const sq_row_sink *sink, sq_result *res, sq_err *err) {
  sq_err_clear(err);
  if (!c || !sql) return sq_err_set(err, SQ_EUSAGE, "sq_conn_exec: bad arguments");
  sq_stmt_text t;
  int rc = sq_stmt_rewrite_dialect(lex_dialect(c->drv), sql, len, &t, err);
  if (rc != SQ_OK) return rc;
  rc = sq_conn_exec_stmt(c, &t, params, nparams, sink, res, err);
  sq_stmt_text_free(&t);
  return rc;
}

/* Reads "major.minor" at the start of v into *major, *minor; 0 when it
 * does not start with digits. */
static int version_of(const char *v, long *major, long *minor) {
  char *end;
  *major = strtol(v, &end, 10);
  if (end == v || *end != '.') return 0;
  *minor = strtol(end + 1, &end, 10);
  return 1;
}

int sq_server_caps(int dialect, const char *v) {
  long major, minor;
  if (dialect == SQ_DIALECT_POSTGRES) return SQ_CAP_INSERT_RETURNING;
  if (!v) return 0;
  if (dialect == SQ_DIALECT_SQLITE)
    return version_of(v, &major, &minor) && (major > 3 || (major == 3 && minor >= 35)) ? SQ_CAP_INSERT_RETURNING : 0;
  if (dialect != SQ_DIALECT_MYSQL || !strstr(v, "MariaDB")) return 0; /* MySQL, TiDB: no RETURNING */
  /* MariaDB before 11 announced itself as "5.5.5-10.x.y-MariaDB" */
  if (!strncmp(v, "5.5.5-", 6)) v += 6;
  if (!version_of(v, &major, &minor)) return 0;
  return major > 10 || (major == 10 && minor >= 5) ? SQ_CAP_INSERT_RETURNING : 0;
}

int sq_conn_caps(sq_conn *c) {
  if (!c || !c->h || !c->drv->server_version) return 0;
  return sq_server_caps(c->drv->dialect, c->drv->server_version(c->h));
}
