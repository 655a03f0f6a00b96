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
  int dirty;              /* the session may have changed: full reset on release */
  struct sq_tx *tx;       /* the transaction holding it (tx.c), or NULL */
  struct sq_conn *next;   /* idle list link (pool lock) */
};

/* Monotonic clock in seconds. */
double sq_now(void);

/* strdup that returns NULL on NULL. */
char *sq_strdup(const char *s);

/* Writes v in decimal into buf (at least 21 bytes) with a terminating NUL
 * and returns the length. snprintf("%lld") costs several hundred
 * instructions per call, a real share of a statement's client time when
 * every int parameter and datetime goes through it. */
size_t sq_fmt_i64(int64_t v, char *buf);

/* Writes the n low decimal digits of v (zero-padded) at out; returns
 * out + n. For fixed-width date and time fields. */
char *sq_put_digits(char *out, unsigned v, int n);

/* A fast non-cryptographic hash of n bytes, seeded with seed (chain calls
 * to hash several pieces). The drivers' statement caches hash the SQL text
 * on every call, so this reads 8 bytes at a time instead of one. Values
 * are only ever compared within one process. */
uint64_t sq_hash_bytes(const void *p, size_t n, uint64_t seed);

/* The shortest "%.*g" (15 to 17 digits) that reads back as d, always
 * with '.' as the decimal point whatever the locale. buf >= 32. Used for
 * exact text of floats (DECIMAL stored as REAL, messages). */
int sq_fmt_double(double d, char *buf, size_t n);

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * civil_from_days): exact for any day count, thread-safe, and free of
 * time_t's range, unlike gmtime. */
void sq_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
#endif
