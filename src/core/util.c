/* util.c - small helpers shared by the core: a monotonic clock, strdup,
 * integer and float formatting, civil dates and the statement caches'
 * hash. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "internal.h"

#include <stdio.h>
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

/* "00" .. "99": two digits per table lookup halves the divisions. */
static const char DIGITS2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t sq_fmt_i64(int64_t v, char *buf) {
  /* negate in unsigned arithmetic so INT64_MIN does not overflow */
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  size_t n = 0;
  if (v < 0) buf[n++] = '-';
  for (uint64_t x = u; x >= 10; x /= 10) n++;
  n++;
  buf[n] = '\0';
  char *p = buf + n; /* written backwards, two digits at a time */
  while (u >= 100) {
    unsigned r = (unsigned)(u % 100);
    u /= 100;
    *--p = DIGITS2[2 * r + 1];
    *--p = DIGITS2[2 * r];
  }
  if (u >= 10) {
    *--p = DIGITS2[2 * u + 1];
    *--p = DIGITS2[2 * u];
  } else {
    *--p = (char)('0' + u);
  }
  return n;
}

char *sq_put_digits(char *out, unsigned v, int n) {
  int i = n;
  for (; i >= 2; i -= 2) {
    unsigned r = v % 100;
    v /= 100;
    out[i - 1] = DIGITS2[2 * r + 1];
    out[i - 2] = DIGITS2[2 * r];
  }
  if (i) out[0] = (char)('0' + v % 10);
  return out + n;
}

uint64_t sq_hash_bytes(const void *p, size_t n, uint64_t seed) {
  const unsigned char *s = p;
  uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (n + 1));
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8); /* one unaligned load */
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 29;
  return h;
}

int sq_fmt_double(double d, char *buf, size_t n) {
  int k = 0;
  for (int prec = 15; prec <= 17; prec++) {
    k = snprintf(buf, n, "%.*g", prec, d);
    if (strtod(buf, NULL) == d) break;
  }
  for (char *p = buf; *p; p++)
    if (*p == ',') *p = '.';
  return k;
}

void sq_civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}
