/*
 * inflect.c - sq_pluralize: the default table name of a model.
 *
 * English rules with the common irregulars, applied to the last
 * snake_case word ("super_user" -> "super_users", "game_person" ->
 * "game_people"). The case of the word's first letter is kept, and an
 * all-capitals word stays in capitals.
 */
#include "sqorm.h"

#include <ctype.h>
#include <string.h>

/* Words whose plural is the word itself. */
static const char *const uncountable[] = {
  "sheep", "fish", "series", "species", "news", "equipment", "information",
  "rice", "money", "deer", "moose", "aircraft", "data", "metadata", NULL
};

/* singular, plural */
static const char *const irregular[][2] = {
  {"person", "people"}, {"child", "children"}, {"man", "men"},
  {"woman", "women"},   {"mouse", "mice"},     {"goose", "geese"},
  {"tooth", "teeth"},   {"foot", "feet"},      {"ox", "oxen"},
  {"quiz", "quizzes"},  {"leaf", "leaves"},    {"knife", "knives"},
  {"wife", "wives"},    {"life", "lives"},     {"half", "halves"},
  {"wolf", "wolves"},   {"shelf", "shelves"},  {"thief", "thieves"},
  {"calf", "calves"},   {"loaf", "loaves"},    {"self", "selves"},
  {"elf", "elves"},     {"hero", "heroes"},    {"potato", "potatoes"},
  {"tomato", "tomatoes"}, {"echo", "echoes"},  {"veto", "vetoes"},
  {"torpedo", "torpedoes"}, {NULL, NULL}
};

/* Appends s to out at *n (truncating, always leaving room for the NUL). */
static void put(char *out, size_t outn, size_t *n, const char *s, size_t len) {
  for (size_t i = 0; i < len && *n + 1 < outn; i++) out[(*n)++] = s[i];
}

static int is_vowel(int c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

/*
 * Pluralizes the lower-cased word w (length n) into res; returns the
 * length of the result. keep is set to the number of leading bytes of the
 * original word that are kept verbatim (so the caller can preserve their
 * case); the rest of res replaces the original's tail.
 */
static size_t plural_lower(const char *w, size_t n, char *res, size_t resn, size_t *keep) {
  size_t r = 0;
  *keep = n;
  for (int i = 0; uncountable[i]; i++)
    if (strlen(uncountable[i]) == n && !memcmp(uncountable[i], w, n)) return 0;
  for (int i = 0; irregular[i][0]; i++) {
    const char *s = irregular[i][0], *p = irregular[i][1];
    /* An irregular plural given as the model name is already plural. */
    if (strlen(p) == n && !memcmp(p, w, n)) return 0;
    if (strlen(s) == n && !memcmp(s, w, n)) {
      /* Keep the common prefix so "Person" -> "People" keeps its capital. */
      size_t k = 0;
      while (s[k] && p[k] == s[k]) k++;
      *keep = k;
      put(res, resn, &r, p + k, strlen(p) - k);
      return r;
    }
  }
  char last = w[n - 1], prev = n > 1 ? w[n - 2] : '\0';
  if (last == 'y' && n > 1 && !is_vowel(prev)) {
    *keep = n - 1;
    put(res, resn, &r, "ies", 3);
  } else if (last == 's') {
    /* class, status, bus, gas -> +es; analysis -> analyses; any other
     * trailing s (users, items, goods) is taken as already plural. */
    if (prev == 's' || prev == 'u' || prev == 'a') {
      put(res, resn, &r, "es", 2);
    } else if (prev == 'i' && n > 2) {
      *keep = n - 2;
      put(res, resn, &r, "es", 2);
    }
  } else if (last == 'x' || last == 'z' || (last == 'h' && (prev == 'c' || prev == 's'))) {
    put(res, resn, &r, "es", 2);
  } else {
    put(res, resn, &r, "s", 1);
  }
  return r;
}

void sq_pluralize(const char *word, char *out, size_t outn) {
  if (!out || outn == 0) return;
  out[0] = '\0';
  if (!word) return;
  size_t len = strlen(word), n = 0;
  /* The last snake_case word: after the last '_' that has a letter after it. */
  size_t start = len;
  while (start > 0 && word[start - 1] != '_') start--;
  size_t wn = len - start;
  const char *w = word + start;
  if (wn == 0 || wn > 64) { /* "", "x_", or too long to inflect: unchanged */
    put(out, outn, &n, word, len);
    out[n] = '\0';
    return;
  }
  char lower[65], res[16];
  int upper = wn > 1;
  for (size_t i = 0; i < wn; i++) {
    unsigned char c = (unsigned char)w[i];
    lower[i] = (char)tolower(c);
    if (isalpha(c) && !isupper(c)) upper = 0;
  }
  size_t keep;
  size_t rn = plural_lower(lower, wn, res, sizeof res, &keep);
  if (upper)
    for (size_t i = 0; i < rn; i++) res[i] = (char)toupper((unsigned char)res[i]);
  put(out, outn, &n, word, start + keep);
  /* Replacing from the first letter (keep == 0) must keep its case. */
  if (keep == 0 && rn > 0 && isupper((unsigned char)w[0])) res[0] = (char)toupper((unsigned char)res[0]);
  put(out, outn, &n, res, rn);
  out[n] = '\0';
}

/* 1 when w (length n) ends with suffix. */
static int ends(const char *w, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n > k && !memcmp(w + n - k, suffix, k);
}

/*
 * The singular of the lower-cased word w into res (the inverse of
 * plural_lower for the words it makes); *keep is how many leading bytes
 * of the original stay. An association's name gives its singular this
 * way ("posts" -> create_post).
 */
static size_t singular_lower(const char *w, size_t n, char *res, size_t resn, size_t *keep) {
  size_t r = 0;
  *keep = n;
  for (int i = 0; uncountable[i]; i++)
    if (strlen(uncountable[i]) == n && !memcmp(uncountable[i], w, n)) return 0;
  for (int i = 0; irregular[i][0]; i++) {
    const char *s = irregular[i][0], *p = irregular[i][1];
    if (strlen(p) == n && !memcmp(p, w, n)) {
      size_t k = 0;
      while (s[k] && p[k] == s[k]) k++;
      *keep = k;
      put(res, resn, &r, s + k, strlen(s) - k);
      return r;
    }
  }
  if (ends(w, n, "ies") && n > 4) {
    *keep = n - 3;
    put(res, resn, &r, "y", 1);
  } else if (ends(w, n, "sses") || ends(w, n, "uses") || ends(w, n, "xes") || ends(w, n, "zes") ||
             ends(w, n, "ches") || ends(w, n, "shes")) {
    *keep = n - 2;
  } else if (ends(w, n, "s") && !ends(w, n, "ss") && !ends(w, n, "us") && !ends(w, n, "is")) {
    *keep = n - 1;
  }
  return r;
}

void sq_singularize(const char *word, char *out, size_t outn) {
  if (!out || outn == 0) return;
  out[0] = '\0';
  if (!word) return;
  size_t len = strlen(word), n = 0;
  size_t start = len;
  while (start > 0 && word[start - 1] != '_') start--;
  size_t wn = len - start;
  const char *w = word + start;
  if (wn == 0 || wn > 64) {
    put(out, outn, &n, word, len);
    out[n] = '\0';
    return;
  }
  char lower[65], res[16];
  int upper = wn > 1;
  for (size_t i = 0; i < wn; i++) {
    unsigned char c = (unsigned char)w[i];
    lower[i] = (char)tolower(c);
    if (isalpha(c) && !isupper(c)) upper = 0;
  }
  size_t keep;
  size_t rn = singular_lower(lower, wn, res, sizeof res, &keep);
  if (upper)
    for (size_t i = 0; i < rn; i++) res[i] = (char)toupper((unsigned char)res[i]);
  put(out, outn, &n, word, start + keep);
  if (keep == 0 && rn > 0 && isupper((unsigned char)w[0])) res[0] = (char)toupper((unsigned char)res[0]);
  put(out, outn, &n, res, rn);
  out[n] = '\0';
}
