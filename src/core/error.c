/* error.c - sq_err: the error record every fallible core call fills. */
#include "sqorm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[SQ_KIND_COUNT] = {
  [SQ_OK] = "ok",
  [SQ_EUSAGE] = "usage",
  [SQ_ECONNECTION] = "connection",
  [SQ_ETIMEOUT] = "timeout",
  [SQ_EPOOL_TIMEOUT] = "pool_timeout",
  [SQ_ECONSTRAINT] = "constraint",
  [SQ_EUNIQUE] = "unique_violation",
  [SQ_EVALIDATION] = "validation",
  [SQ_ESYNTAX] = "syntax",
  [SQ_ECLOSED] = "closed",
  [SQ_EAUTH] = "auth",
  [SQ_EDATABASE] = "database",
  [SQ_ENOMEM] = "nomem",
  [SQ_EINTERNAL] = "internal",
  [SQ_ESTALE] = "stale",
  [SQ_EDEADLOCK] = "deadlock",
  [SQ_ECANCELED] = "canceled",
};

const char *sq_kind_name(int kind) {
  if (kind < 0 || kind >= SQ_KIND_COUNT) return "internal";
  return kind_names[kind];
}

void sq_err_clear(sq_err *e) {
  if (!e) return;
  e->kind = SQ_OK;
  e->code[0] = '\0';
  e->sqlstate[0] = '\0';
  e->msg[0] = '\0';
}

int sq_err_set(sq_err *e, int kind, const char *fmt, ...) {
  if (!e) return kind;
  e->kind = kind;
  e->code[0] = '\0';
  e->sqlstate[0] = '\0';
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  if (n < 0) snprintf(e->msg, sizeof e->msg, "%s error", sq_kind_name(kind));
  if (e->msg[0] == '\0') snprintf(e->msg, sizeof e->msg, "%s error", sq_kind_name(kind));
  return kind;
}

void sq_err_native(sq_err *e, const char *code, const char *sqlstate) {
  if (!e) return;
  snprintf(e->code, sizeof e->code, "%s", code ? code : "");
  snprintf(e->sqlstate, sizeof e->sqlstate, "%s", sqlstate ? sqlstate : "");
}
