/* check.h - a tiny assertion kit for the C unit tests: each CHECK prints
 * what failed and counts it; main returns the failure count. */
#ifndef SQORM_CHECK_H
#define SQORM_CHECK_H
#include <stdio.h>
#include <string.h>

static int check_failures = 0, check_count = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    check_count++;                                                               \
    if (!(cond)) {                                                               \
      check_failures++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                            \
  } while (0)

#define CHECK_STR(a, b)                                                          \
  do {                                                                           \
    const char *a_ = (a), *b_ = (b);                                             \
    check_count++;                                                               \
    if (!a_ || !b_ || strcmp(a_, b_)) {                                          \
      check_failures++;                                                          \
      fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n", \
              __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");   \
    }                                                                            \
  } while (0)

#define CHECK_DONE()                                                             \
  (printf("%d checks, %d failed\n", check_count, check_failures), check_failures ? 1 : 0)

#endif
