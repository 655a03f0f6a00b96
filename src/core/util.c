/* util.c - small helpers shared by the core: a monotonic clock and strdup. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Seconds on CLOCK_MONOTONIC. Pool ages, idle times and acquire deadlines
 * are all measured with it, so a wall-clock step (NTP, a VM resumed after
 * a pause, an admin changing the date) can neither expire every
 * connection at once nor make an acquire wait forever. The pool's condvars
 * use the same clock for their timed waits.
 */
double sq_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* strdup is POSIX, not C11; this one also maps NULL ("not given") to NULL,
 * which is what the config copy wants. */
char *sq_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
