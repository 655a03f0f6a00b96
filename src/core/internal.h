/*
 * internal.h - shared between the core's own files; never installed and
 * never included by the Lua binding (which sees only sqorm.h).
 */
#ifndef SQORM_INTERNAL_H
#define SQORM_INTERNAL_H

#include "sqorm.h"

#include <stdint.h>

/* A pooled connection. Owned by the pool; lent to one caller at a time
 * between sq_pool_acquire and sq_pool_release. */
struct sq_conn {
  sq_pool *pool;          /* the pool it belongs to (borrowed) */
  const sq_driver *drv;
  sq_dconn *h;            /* the driver's connection; NULL while opening */
  double created_at;      /* monotonic seconds (sq_now) */
  double last_used;       /* monotonic seconds of the last release */
  int dead;               /* set by the core on SQ_ECONNECTION failures */
  struct sq_conn *next;   /* idle list link (pool lock) */
};

/* Monotonic clock in seconds. */
double sq_now(void);

/* strdup that returns NULL on NULL. */
char *sq_strdup(const char *s);

#endif
