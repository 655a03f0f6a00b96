/* test_util.c - the core's hand-written formatting and hashing helpers
 * (util.c), checked against snprintf and for the properties the
 * statement caches rely on. */
#include "internal.h"
#include "check.h"

#include <inttypes.h>
#include <stdint.h>

static int same_as_printf(int64_t v) {
  char a[32], b[32];
  size_t n = sq_fmt_i64(v, a);
  int m = snprintf(b, sizeof b, "%" PRId64, v);
  return (int)n == m && !strcmp(a, b);
}

int main(void) {
  /* sq_fmt_i64: every width, both signs, the extremes */
  static const int64_t edges[] = {0, 1, -1, 9, 10, -10, 99, 100, 101, 999, 1000, 65535, 2147483647,
                                  -2147483648LL, 4294967296LL, 999999999999999999LL,
                                  1000000000000000000LL, INT64_MAX, INT64_MIN, INT64_MIN + 1};
  for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) CHECK(same_as_printf(edges[i]));
  int all = 1;
  for (int64_t x = -20000; x <= 20000 && all; x++) all = same_as_printf(x);
  for (int64_t x = 1; x > 0 && x < INT64_MAX / 3 && all; x = x * 3 + 1) all = same_as_printf(x) && same_as_printf(-x);
  CHECK(all);

  /* sq_put_digits: fixed width, zero-padded, returns the end */
  char d[16];
  char *e = sq_put_digits(d, 7, 2);
  *e = '\0';
  CHECK_STR(d, "07");
  CHECK(e == d + 2);
  *sq_put_digits(d, 2024, 4) = '\0';
  CHECK_STR(d, "2024");
  *sq_put_digits(d, 5, 6) = '\0';
  CHECK_STR(d, "000005");
  *sq_put_digits(d, 123456, 6) = '\0';
  CHECK_STR(d, "123456");
  *sq_put_digits(d, 838, 3) = '\0';
  CHECK_STR(d, "838");
  *sq_put_digits(d, 0, 1) = '\0';
  CHECK_STR(d, "0");

  /* sq_hash_bytes: deterministic, sensitive to every byte (also in the
   * tail past the last 8-byte word) and to the length, chainable */
  const char *sql = "SELECT \"id\", \"name\" FROM \"players\" WHERE \"id\" = $1";
  size_t n = strlen(sql);
  uint64_t h = sq_hash_bytes(sql, n, 0);
  CHECK(h == sq_hash_bytes(sql, n, 0));
  char buf[128];
  int differ = 1;
  for (size_t i = 0; i < n && differ; i++) {
    memcpy(buf, sql, n);
    buf[i] ^= 1;
    differ = sq_hash_bytes(buf, n, 0) != h;
  }
  CHECK(differ);
  CHECK(sq_hash_bytes(sql, n - 1, 0) != h);
  CHECK(sq_hash_bytes("", 0, 0) != sq_hash_bytes("\0", 1, 0));
  CHECK(sq_hash_bytes(sql, n, 1) != h);
  uint32_t oids[2] = {20, 25};
  CHECK(sq_hash_bytes(oids, sizeof oids, h) != sq_hash_bytes(oids, sizeof oids[0], h));
  return CHECK_DONE();
}
