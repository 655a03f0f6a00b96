/*
 * exec.c - running already-native SQL on a connection, and marking a
 * connection unusable. (conn.c has sq_conn_exec, which first rewrites
 * ? / :name placeholders.)
 */
#include "internal.h"

#include <string.h>

void sq_conn_mark_dead(sq_conn *c) {
  if (c) c->dead = 1;
}

/*
 * The binding and the model layer render SQL in the driver's own
 * placeholder style, so they come here and skip the rewrite. A failure
 * of kind SQ_ECONNECTION, or a driver that reports the link gone, marks
 * the connection dead so the pool discards it on release.
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
    return sq_err_set(err, SQ_EUSAGE, "sq_conn_exec_native: bad arguments");
  if (sq_conn_is_dead(c))
    return sq_err_set(err, SQ_ECONNECTION, "connection is dead (lost or closed by the server)");
  int rc = c->drv->exec(c->h, sql, len, params, nparams, sink, res, err);
  if (rc == SQ_ECONNECTION || (c->drv->is_dead && c->drv->is_dead(c->h))) c->dead = 1;
  return rc;
}
