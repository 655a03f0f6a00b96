/*
 * errfields.c - which columns a unique_violation names.
 *
 * A unique_violation carries err.fields with the columns of the violated
 * key, where the server's message names them. Each dialect says it its
 * own way, so this reads the message against the model's keys:
 *
 *   SQLite      UNIQUE constraint failed: t.a, t.b  (or: index 'name')
 *   PostgreSQL  ... constraint "name"\nDETAIL:  Key (a, b)=(...) already exists.
 *   MySQL       Duplicate entry '...' for key 'name'  (MySQL 8: 'table.name')
 *
 * MySQL names a primary key PRIMARY and a one-column unique key after its
 * column; PostgreSQL <table>_pkey and <table>_<col>_key; composite keys
 * and indexes carry the model's own names.
 */
#include "sqorm.h"

#include <string.h>

/* Flags the columns of the key or constraint called name[0..n); returns
 * how many. */
static int key_cols(const sq_model *m, const char *name, size_t n, unsigned char *flags) {
  const char *t = sq_model_table(m);
  size_t tn = strlen(t);
  int k = 0, ncols = sq_model_ncols(m);
  if ((n == 7 && !memcmp(name, "PRIMARY", 7)) || (n == tn + 5 && !memcmp(name, t, tn) && !memcmp(name + tn, "_pkey", 5))) {
    const int *pk;
    int npk = sq_model_pk(m, &pk);
    for (int i = 0; i < npk; i++, k++) flags[pk[i]] = 1;
    return k;
  }
  for (int c = 0; c < ncols; c++) {
    const sq_col *col = sq_model_col(m, c);
    if (!col->unique) continue;
    int hit;
    if (col->unique[0]) hit = strlen(col->unique) == n && !memcmp(col->unique, name, n);
    else hit = (n == col->name_len && !memcmp(name, col->name, n)) ||
               (n == tn + 1 + col->name_len + 4 && !memcmp(name, t, tn) && name[tn] == '_' &&
                !memcmp(name + tn + 1, col->name, col->name_len) && !memcmp(name + n - 4, "_key", 4));
    if (hit) flags[c] = 1, k++;
  }
  if (k) return k;
  for (int i = 0; i < sq_model_nindexes(m); i++) {
    const char *iname;
    int unique, nic;
    const int *cols;
    sq_model_index(m, i, &iname, &unique, &cols, &nic);
    if (!unique || strlen(iname) != n || memcmp(iname, name, n)) continue;
    for (int j = 0; j < nic; j++) flags[cols[j]] = 1, k++;
    return k;
  }
  return 0;
}

/* Flags the columns listed in s[0..n) ("a, b" or "t.a, t.b", names
 * double-quoted where PostgreSQL needs it); 0 unless every one is a
 * column. */
static int list_cols(const sq_model *m, const char *s, size_t n, unsigned char *flags) {
  const char *t = sq_model_table(m), *end = s + n;
  size_t tn = strlen(t);
  int k = 0;
  while (s < end) {
    char name[128];
    size_t o = 0;
    if (*s == '"') { /* "we""ird" */
      for (s++; s < end && o < sizeof name; s++) {
        if (*s == '"' && s + 1 < end && s[1] == '"') name[o++] = '"', s++;
        else if (*s == '"') { s++; break; }
        else name[o++] = *s;
      }
    } else {
      const char *e = s;
      while (e < end && !(e[0] == ',' && e + 1 < end && e[1] == ' ')) e++;
      if ((size_t)(e - s) > tn + 1 && !memcmp(s, t, tn) && s[tn] == '.') s += tn + 1;
      for (; s < e && o < sizeof name; s++) name[o++] = *s;
      s = e;
    }
    int c = sq_model_find(m, name, o);
    if (c < 0) return 0;
    flags[c] = 1;
    k++;
    if (s < end && *s == ',') s++;
    while (s < end && *s == ' ') s++;
  }
  return k;
}

int sq_model_unique_cols(const sq_model *m, int dialect, const char *msg, unsigned char *flags) {
  const char *p, *q;
  if (!m || !msg) return 0;
  switch (dialect) {
  case SQ_DIALECT_SQLITE:
    if (!(p = strstr(msg, "constraint failed: "))) return 0;
    p += 19;
    if (!strncmp(p, "index '", 7) && (q = strchr(p + 7, '\''))) return key_cols(m, p + 7, (size_t)(q - (p + 7)), flags);
    return list_cols(m, p, strcspn(p, "\n"), flags);
  case SQ_DIALECT_POSTGRES:
    if ((p = strstr(msg, "DETAIL:  Key (")) && (q = strstr(p, ")=("))) {
      int k = list_cols(m, p + 14, (size_t)(q - (p + 14)), flags);
      if (k) return k;
      memset(flags, 0, (size_t)sq_model_ncols(m)); /* an expression index: by its name, then */
    }
    if (!(p = strstr(msg, "constraint \"")) || !(q = strchr(p + 12, '"'))) return 0;
    return key_cols(m, p + 12, (size_t)(q - (p + 12)), flags);
  default: {
    const char *k = NULL;
    for (p = msg; (p = strstr(p, "for key '")); p++) k = p + 9;
    if (!k || !(q = strrchr(k, '\'')) || q < k) return 0;
    size_t n = (size_t)(q - k), tn = strlen(sq_model_table(m));
    int hit = key_cols(m, k, n, flags);
    if (!hit && n > tn + 1 && !memcmp(k, sq_model_table(m), tn) && k[tn] == '.')
      hit = key_cols(m, k + tn + 1, n - tn - 1, flags);
    return hit;
  }
  }
}
