/*
 * fuzz_models.h - the fixed models the renderer fuzzers query: an
 * ordinary one, one whose every name is hostile (quotes of each dialect,
 * comment openers, placeholders, a ';', unicode), one with names MySQL
 * refuses even quoted, and one with a composite key. Built once per
 * process; the fuzzers never change them.
 */
#ifndef SQORM_FUZZ_MODELS_H
#define SQORM_FUZZ_MODELS_H

#include "fuzz.h"

typedef struct fz_col {
  const char *name;
  int type, length, precision, scale, pk, ai;
  const char *unique;
} fz_col;

static sq_model *fz_model(const char *name, const char *table, int timestamps, int paranoid, const fz_col *cols,
                          int n) {
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.table_name = table;
  o.timestamps = timestamps;
  o.paranoid = paranoid;
  sq_model *m;
  sq_err e;
  if (sq_model_new(name, &o, &m, &e)) {
    fprintf(stderr, "fuzz model %s: %s\n", name, e.msg);
    abort();
  }
  for (int i = 0; i < n; i++) {
    sq_coldef d;
    memset(&d, 0, sizeof d);
    d.name = cols[i].name;
    d.type = cols[i].type;
    d.length = cols[i].length;
    d.precision = cols[i].precision;
    d.scale = cols[i].scale;
    d.primary_key = cols[i].pk;
    d.auto_increment = cols[i].ai;
    d.allow_null = !cols[i].pk;
    d.unique = cols[i].unique;
    d.default_value = sq_null();
    if (sq_model_add_column(m, &d, &e)) {
      fprintf(stderr, "fuzz model %s column %s: %s\n", name, cols[i].name, e.msg);
      abort();
    }
  }
  if (sq_model_finish(m, &e)) {
    fprintf(stderr, "fuzz model %s: %s\n", name, e.msg);
    abort();
  }
  return m;
}

#define FZ_NMODELS 4
static sq_model *fz_models[FZ_NMODELS];

static void fz_models_init(void) {
  if (fz_models[0]) return;
  static const fz_col player[] = {
    {"name", SQ_T_STRING, 32, 0, 0, 0, 0, ""}, {"coins", SQ_T_INTEGER, 0, 0, 0, 0, 0, NULL},
    {"price", SQ_T_DECIMAL, 0, 10, 2, 0, 0, NULL}, {"flag", SQ_T_BOOLEAN, 0, 0, 0, 0, 0, NULL},
    {"born", SQ_T_DATETIME, 0, 0, 0, 0, 0, NULL}, {"data", SQ_T_BLOB, 0, 0, 0, 0, 0, NULL},
    {"uid", SQ_T_UUID, 0, 0, 0, 0, 0, NULL}, {"note", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL}};
  static const fz_col hostile[] = {
    {"co\"l", SQ_T_INTEGER, 0, 0, 0, 1, 1, NULL}, {"sp ace", SQ_T_STRING, 0, 0, 0, 0, 0, "u\"q"},
    {"`tick`", SQ_T_DECIMAL, 0, 5, 0, 0, 0, NULL}, {"select", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL},
    {"$1", SQ_T_INTEGER, 0, 0, 0, 0, 0, "u\"q"}, {"?", SQ_T_INTEGER, 0, 0, 0, 0, 0, NULL},
    {":name", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL}, {"--c", SQ_T_INTEGER, 0, 0, 0, 0, 0, NULL},
    {"/*c*/", SQ_T_BLOB, 0, 0, 0, 0, 0, NULL}, {"a'b", SQ_T_BOOLEAN, 0, 0, 0, 0, 0, NULL},
    {"\\", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL}, {"\xc3\xbc" "n\xc3\xaf", SQ_T_DATE, 0, 0, 0, 0, 0, NULL},
    {"x;y", SQ_T_FLOAT, 0, 0, 0, 0, 0, ""}};
  static const fz_col mysql_bad[] = {
    {"k1", SQ_T_INTEGER, 0, 0, 0, 1, 0, NULL}, {"k2", SQ_T_STRING, 8, 0, 0, 1, 0, NULL},
    {"trailing ", SQ_T_INTEGER, 0, 0, 0, 0, 0, NULL}, {"\xf0\x9f\x98\x80", SQ_T_TEXT, 0, 0, 0, 0, 0, NULL}};
  static const fz_col composite[] = {
    {"a", SQ_T_BIGINT, 0, 0, 0, 1, 0, NULL}, {"b", SQ_T_SMALLINT, 0, 0, 0, 1, 0, NULL},
    {"v", SQ_T_DECIMAL, 0, 20, 5, 0, 0, NULL}, {"d", SQ_T_DOUBLE, 0, 0, 0, 0, 0, NULL}};
  fz_models[0] = fz_model("player", NULL, -1, 0, player, (int)(sizeof player / sizeof *player));
  fz_models[1] = fz_model("we\"ird", "t\"a`b'le; DROP TABLE x;--", -1, 1, hostile,
                          (int)(sizeof hostile / sizeof *hostile));
  fz_models[2] = fz_model("bad", "b\xf0\x9f\x98\x80", 0, 0, mysql_bad, (int)(sizeof mysql_bad / sizeof *mysql_bad));
  fz_models[3] = fz_model("pair", "pairs", 0, 1, composite, (int)(sizeof composite / sizeof *composite));
}

/* A column index of m: usually valid, sometimes not. */
static inline int fz_col_of(fz *f, const sq_model *m) {
  unsigned c = fz_u8(f);
  if (c >= 0xf8) {
    static const int bad[] = {-1, -2, 1000, 0x7fffffff, -0x7fffffff};
    return c == 0xff ? m->ncols : bad[c % 5];
  }
  return (int)(c % (unsigned)m->ncols);
}

/* SQL fragments for sqorm.raw: the usual, and the ones that have broken
 * fragment handling (placeholders touching words, quotes, comments and
 * dollar quotes around ?, a trailing line comment, SQLite's own
 * parameters). */
static const char *const fz_fragments[] = {
  "coins % 2 = ?", "? = ?", "1 = 1", "x = '?'", "a -- c", "a /* ? */ = ?", "$?", "a?", "?1", ":a = ?", "?? = ?",
  "?|", "??|", "'unterminated", "a; b", "/*! 1 */", "\"q\" = ?", "[b] = ?", "E'\\'' = ?", "$$ ? $$", "`x` = ?",
  "#c", "x--", "--", "@a = ?", "?NNN", "$x", "/* unterminated", "x::int = ?", "a[1:2] = ?", "a[:n]", "-?", "?-",
  "\xe2\x82\xac = ?", "/*!50000 ? */", "\\' = ?", "'a\\' = ?", "\"a\\\" = ?", "U&'x' = ?", "?''", "'' ?"};
#define FZ_NFRAGMENTS ((int)(sizeof fz_fragments / sizeof *fz_fragments))

/* A raw fragment: from the list or from the input (never holding the
 * canary's first byte, so a value found in the SQL is a value). */
static inline sq_expr *fz_raw(fz *f, sq_expr *e) {
  e->op = SQ_OP_RAW;
  if (fz_u8(f) < 0xa0) {
    const char *s = fz_fragments[fz_u8(f) % (unsigned)FZ_NFRAGMENTS];
    e->raw = s;
    e->raw_len = strlen(s);
  } else {
    size_t n;
    char *s = fz_bytes(f, 60, &n);
    for (size_t i = 0; i < n; i++)
      if (s[i] == '\x01') s[i] = '?';
    e->raw = s;
    e->raw_len = n;
  }
  int nv = 0;
  for (size_t i = 0; i < e->raw_len; i++) nv += e->raw[i] == '?';
  if (fz_u8(f) < 0x20) nv = fz_below(f, 4); /* sometimes the wrong count */
  sq_value *v = fz_alloc(f, sizeof *v * (size_t)(nv ? nv : 1));
  for (int i = 0; i < nv; i++) v[i] = fz_value(f);
  e->vals = v;
  e->nvals = nv;
  return e;
}

#endif
