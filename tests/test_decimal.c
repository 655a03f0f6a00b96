/* test_decimal.c - the exact decimal text arithmetic behind DECIMAL on
 * SQLite (decimal.c): parsing, the collation's order, fixed-scale
 * writing, sums and means, checked on hand-picked cases and against
 * int64 arithmetic on random values. */
#include "internal.h"
#include "check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int coll(const char *a, const char *b) { return sq_dec_collate(a, strlen(a), b, strlen(b)); }

static int sign(int x) { return x < 0 ? -1 : x > 0; }

/* The collation is antisymmetric on the pair. */
static int order(const char *a, const char *b) {
  int x = coll(a, b), y = coll(b, a);
  if (sign(x) != -sign(y)) {
    fprintf(stderr, "not antisymmetric: %s vs %s (%d, %d)\n", a, b, x, y);
    return 99;
  }
  return sign(x);
}

static char *sum_of(const char *const *vals, int n, int mean_extra) {
  sq_dacc a;
  sq_dacc_init(&a);
  char buf[SQ_DEC_BUF];
  for (int i = 0; i < n; i++) {
    sq_decv v;
    if (sq_dec_view(vals[i], strlen(vals[i]), &v, buf, sizeof buf) || sq_dacc_add(&a, &v)) {
      sq_dacc_free(&a);
      return NULL;
    }
  }
  size_t len;
  char *out = mean_extra >= 0 ? sq_dacc_mean(&a, mean_extra, &len) : sq_dacc_text(&a, &len);
  if (out) CHECK(strlen(out) == len);
  sq_dacc_free(&a);
  return out;
}

static void check_sum(const char *want, const char *const *vals, int n) {
  char *got = sum_of(vals, n, -1);
  CHECK_STR(got, want);
  free(got);
}

static void check_mean(const char *want, int extra, const char *const *vals, int n) {
  char *got = sum_of(vals, n, extra);
  CHECK_STR(got, want);
  free(got);
}

static void check_fixed(const char *in, int p, int s, const char *want) {
  char buf[SQ_DEC_BUF], out[128];
  sq_decv v;
  int ok = sq_dec_view(in, strlen(in), &v, buf, sizeof buf) == 0;
  CHECK(ok);
  int k = ok ? sq_dec_fixed(&v, p, s, out, sizeof out) : -1;
  if (!want) {
    CHECK(k < 0);
    if (k >= 0) fprintf(stderr, "  sq_dec_fixed(%s, %d, %d) gave %s, expected a refusal\n", in, p, s, out);
    return;
  }
  CHECK(k >= 0);
  if (k >= 0) {
    CHECK_STR(out, want);
    CHECK((size_t)k == strlen(want));
  }
}

static void test_parse(void) {
  char buf[SQ_DEC_BUF];
  sq_decv v;
  static const char *const good[] = {"0", "-0", "+5", ".5", "5.", "007.50", " 1.5 ", "1e3", "1.5E-3", "-2.50e+1",
                                     "0.000", NULL};
  for (int i = 0; good[i]; i++) {
    int rc = sq_dec_view(good[i], strlen(good[i]), &v, buf, sizeof buf);
    CHECK(rc == 0);
    if (rc) fprintf(stderr, "  '%s' should be a decimal\n", good[i]);
  }
  static const char *const bad[] = {"", " ", "-", ".", "1.2.3", "abc", "1e", "1e+", "e5", "1 2", "0x10", "1,5",
                                    "inf", "NaN", "1e999999", "--1", NULL};
  for (int i = 0; bad[i]; i++) {
    int rc = sq_dec_view(bad[i], strlen(bad[i]), &v, buf, sizeof buf);
    CHECK(rc != 0);
    if (!rc) fprintf(stderr, "  '%s' should not be a decimal\n", bad[i]);
  }
  /* the view's parts */
  CHECK(sq_dec_view("-007.50", 7, &v, buf, sizeof buf) == 0);
  CHECK(v.neg == 1 && v.in == 1 && v.ip[0] == '7' && v.fn == 2 && !memcmp(v.fp, "50", 2));
  CHECK(sq_dec_view("-0.00", 5, &v, buf, sizeof buf) == 0);
  CHECK(v.neg == 0 && v.in == 0 && v.fn == 2 && sq_dec_is_zero(&v));
  CHECK(sq_dec_view("1.25e1", 6, &v, buf, sizeof buf) == 0);
  CHECK(v.in == 2 && !memcmp(v.ip, "12", 2) && v.fn == 1 && v.fp[0] == '5');
  CHECK(sq_dec_view("-1.5e-3", 7, &v, buf, sizeof buf) == 0);
  CHECK(v.neg && v.in == 0 && v.fn == 4 && !memcmp(v.fp, "0015", 4));
  CHECK(sq_dec_view("12e2", 4, &v, buf, sizeof buf) == 0);
  CHECK(v.in == 4 && !memcmp(v.ip, "1200", 4) && v.fn == 0);
  /* an exponent form larger than the buffer is refused, not truncated */
  CHECK(sq_dec_view("1e100", 5, &v, buf, 50) != 0);
  CHECK(sq_dec_view("1e100", 5, &v, buf, sizeof buf) == 0 && v.in == 101);
}

static void test_collate(void) {
  /* numeric, not text order */
  CHECK(order("9.5", "10.25") == -1);
  CHECK(order("-10", "-9.5") == -1);
  CHECK(order("-0.01", "0") == -1);
  CHECK(order("1.5", "1.50") == 0);
  CHECK(order("-0", "0.000") == 0);
  CHECK(order("0.1", ".1") == 0);
  CHECK(order("100", "1e2") == 0);
  CHECK(order("123456789012345678.91", "123456789012345678.9") == 1);
  CHECK(order("123456789012345678.91", "123456789012345678.92") == -1);
  CHECK(order("99999999999999999999999999999.99", "100000000000000000000000000000") == -1);
  CHECK(order("0.0000000000000000000000000001", "0") == 1);
  CHECK(order("-0.0000000000000000000000000001", "0") == -1);
  CHECK(order("-5", "-50") == 1);
  /* non-decimals after every decimal, bytewise among themselves */
  CHECK(order("999999", "abc") == -1);
  CHECK(order("abc", "abd") == -1);
  CHECK(order("ab", "abc") == -1);
  CHECK(order("", "0") == 1);
  CHECK(order("x", "x") == 0);
  /* transitivity on a mixed list, every triple */
  static const char *const l[] = {"-10", "-9.5", "-1e0", "-0.5", "0", "-0.0", ".5", "0.50", "1", "9.5", "10.25",
                                  "1e2", "abc", "", "1x", " 7 "};
  int n = (int)(sizeof l / sizeof l[0]);
  int bad = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      for (int k = 0; k < n; k++) {
        int ij = order(l[i], l[j]), jk = order(l[j], l[k]), ik = order(l[i], l[k]);
        if (ij <= 0 && jk <= 0 && ik > 0) bad++;
        if (ij == 0 && jk == 0 && ik != 0) bad++;
      }
  CHECK(bad == 0);
}

static void test_fixed(void) {
  check_fixed("1.5", 10, 2, "1.50");
  check_fixed("1.500", 10, 2, "1.50");
  check_fixed("+001.5", 10, 2, "1.50");
  check_fixed(".5", 10, 2, "0.50");
  check_fixed("-0.00", 10, 2, "0.00");
  check_fixed("-0.5", 10, 2, "-0.50");
  check_fixed("12", 10, 0, "12");
  check_fixed("12.0", 10, 0, "12");
  check_fixed("1e3", 10, 2, "1000.00");
  check_fixed("123456789012345678.91", 30, 2, "123456789012345678.91");
  check_fixed("99999999.99", 10, 2, "99999999.99");
  check_fixed("1.234", 10, 2, NULL);        /* would round */
  check_fixed("123456789", 10, 2, NULL);    /* 9 integer digits > 8 */
  check_fixed("100000000", 10, 2, NULL);
  check_fixed("0.5", 2, 2, "0.50");
  check_fixed("1", 2, 2, NULL);
}

static void test_sum_mean(void) {
  static const char *const tenth[] = {"0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10", "0.10"};
  check_sum("1.00", tenth, 10);
  check_mean("0.100000", SQ_DEC_AVG_EXTRA, tenth, 10);
  static const char *const big[] = {"123456789012345678.91", "0.09", "-0.5"};
  check_sum("123456789012345678.50", big, 3);
  static const char *const mixed[] = {"9.5", "10.25"};
  check_sum("19.75", mixed, 2);
  check_mean("9.875000", SQ_DEC_AVG_EXTRA, mixed, 2);
  static const char *const cancel[] = {"5.5", "-5.50"};
  check_sum("0.00", cancel, 2);
  static const char *const neg[] = {"-1.25", "0.5", "-3"};
  check_sum("-3.75", neg, 3);
  check_mean("-1.250000", SQ_DEC_AVG_EXTRA, neg, 3);
  static const char *const flip[] = {"1", "-3", "5.001"};
  check_sum("3.001", flip, 3);
  static const char *const carry[] = {"99999999999999999999999999999.99", "0.01"};
  check_sum("100000000000000000000000000000.00", carry, 2);
  static const char *const third[] = {"1", "0", "0"};
  check_mean("0.3333", SQ_DEC_AVG_EXTRA, third, 3);
  static const char *const twothirds[] = {"1", "1", "0"};
  check_mean("0.6667", SQ_DEC_AVG_EXTRA, twothirds, 3);
  static const char *const neg_half[] = {"-0.00005", "-0.00005"};
  check_mean("-0.00005", 0, neg_half, 2);
  static const char *const half_away[] = {"0.0001", "0"};
  check_mean("0.0001", 0, half_away, 2); /* 0.00005 rounds away from zero */
  static const char *const nines[] = {"9.99", "9.99"};
  check_mean("10.00", 0, (const char *const[]){"9.99", "10.00"}, 2); /* 9.995 rounds up to 10.00 */
  check_mean("9.990000", SQ_DEC_AVG_EXTRA, nines, 2);
  static const char *const expo[] = {"1e2", "2.5E-1"};
  check_sum("100.25", expo, 2);
  sq_dacc a;
  sq_dacc_init(&a);
  size_t len;
  CHECK(sq_dacc_mean(&a, 4, &len) == NULL); /* nothing to average */
  char *z = sq_dacc_text(&a, &len);
  CHECK_STR(z, "0");
  free(z);
  sq_dacc_free(&a);
}

/* Random values k / 10^s with |k| < 10^15: sums, order and means against
 * int64 arithmetic at the common scale. */
static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void fmt_scaled(int64_t k, int s, char *out) {
  char digits[32];
  uint64_t u = k < 0 ? (uint64_t)0 - (uint64_t)k : (uint64_t)k;
  int n = snprintf(digits, sizeof digits, "%0*" PRIu64, s + 1, u);
  sprintf(out, "%s%.*s%s%s", k < 0 ? "-" : "", n - s, digits, s ? "." : "", digits + n - s);
}

static void test_random(void) {
  int bad = 0;
  for (int round = 0; round < 2000; round++) {
    int s1 = (int)(next() % 4), s2 = (int)(next() % 4);
    int64_t k1 = (int64_t)(next() % 1000000000000000ull) - 500000000000000, k2 = (int64_t)(next() % 2000) - 1000;
    if (round % 7 == 0) k2 = k1; /* equal magnitudes at different scales */
    char a[48], b[48];
    fmt_scaled(k1, s1, a);
    fmt_scaled(k2, s2, b);
    /* at scale 3: k * 10^(3 - s) */
    int64_t x = k1, y = k2;
    for (int i = s1; i < 3; i++) x *= 10;
    for (int i = s2; i < 3; i++) y *= 10;
    int want = x < y ? -1 : x > y;
    if (order(a, b) != want) {
      bad++;
      fprintf(stderr, "  order %s %s: %d, want %d\n", a, b, order(a, b), want);
    }
    const char *pair[] = {a, b};
    char *got = sum_of(pair, 2, -1);
    char exp[48];
    int ms = s1 > s2 ? s1 : s2;
    int64_t sum = x + y;
    for (int i = ms; i < 3; i++) sum /= 10; /* exact: both had at most ms decimals */
    fmt_scaled(sum, ms, exp);
    if (!got || strcmp(got, exp)) {
      bad++;
      fprintf(stderr, "  sum %s + %s = %s, want %s\n", a, b, got ? got : "(null)", exp);
    }
    free(got);
  }
  CHECK(bad == 0);
}

int main(void) {
  test_parse();
  test_collate();
  test_fixed();
  test_sum_mean();
  test_random();
  return CHECK_DONE();
}
