/*
 * model.c - model metadata: columns, keys, indexes, roles, and the
 * identifier rules every name must pass.
 *
 * A model is built in three steps (new, add columns and indexes, finish)
 * and is immutable once finished, so any number of queries and threads
 * can read it. finish() does the work that lets rendering stay cheap: it
 * resolves names to column indexes, builds the name hash behind
 * sq_model_find, and stores every name already quoted for each quoting
 * style, so the renderer copies bytes instead of escaping per query.
 */
#include "model_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Identifiers                                                          */
/* ------------------------------------------------------------------ */

void sq_show(const char *s, size_t len, char *out, size_t outn) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (!outn) return;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (o + 8 >= outn) {
      if (o + 4 <= outn) { memcpy(out + o, "...", 3); o += 3; }
      break;
    }
    if (c < 0x20 || c == 0x7f || c == '\\') {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = '\0';
}

/*
 * Decodes one UTF-8 sequence at s[i..n); returns its length and the code
 * point in *cp, or 0 when the bytes are not well-formed UTF-8 (overlong
 * forms, surrogates and values above U+10FFFF are refused, as the servers
 * would refuse them).
 */
static size_t utf8_next(const unsigned char *s, size_t i, size_t n, uint32_t *cp) {
  unsigned c = s[i];
  if (c < 0x80) { *cp = c; return 1; }
  size_t len;
  uint32_t v, min;
  if (c >= 0xc2 && c <= 0xdf) { len = 2; v = c & 0x1f; min = 0x80; }
  else if (c >= 0xe0 && c <= 0xef) { len = 3; v = c & 0x0f; min = 0x800; }
  else if (c >= 0xf0 && c <= 0xf4) { len = 4; v = c & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[i + k] & 0xc0) != 0x80) return 0;
    v = (v << 6) | (s[i + k] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

int sq_ident_check(const char *what, const char *name, size_t len, sq_err *err) {
  char shown[80];
  if (!name || len == 0) return sq_err_set(err, SQ_EUSAGE, "invalid %s: empty", what);
  sq_show(name, len, shown, sizeof shown);
  if (len > SQ_IDENT_MAX)
    return sq_err_set(err, SQ_EUSAGE, "invalid %s '%s': longer than %d bytes", what, shown, SQ_IDENT_MAX);
  const unsigned char *s = (const unsigned char *)name;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t k = utf8_next(s, i, len, &cp);
    if (!k) return sq_err_set(err, SQ_EUSAGE, "invalid %s '%s': not valid UTF-8", what, shown);
    if (cp == 0) return sq_err_set(err, SQ_EUSAGE, "invalid %s '%s': contains a NUL byte", what, shown);
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
      return sq_err_set(err, SQ_EUSAGE, "invalid %s '%s': contains a control character", what, shown);
    i += k;
  }
  return SQ_OK;
}

/* MySQL refuses names that end in a space and characters outside the
 * Basic Multilingual Plane, even inside backticks. */
int sq_ident_mysql_ok(const char *name, size_t len) {
  if (len && name[len - 1] == ' ') return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)name[i] >= 0xf0) return 0;
  return 1;
}

size_t sq_utf8_len(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
  return c;
}

/* ------------------------------------------------------------------ */
/* Building                                                             */
/* ------------------------------------------------------------------ */

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static char *dup0(const char *s) { return s ? dupn(s, strlen(s)) : NULL; }

static int nomem(sq_err *err) { return sq_err_set(err, SQ_ENOMEM, "out of memory"); }

static uint32_t hash_name(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Rebuilds the open-addressing table for the current columns, at most
 * half full so probes stay short. */
static int rehash(sq_model *m) {
  size_t ns = 16;
  while (ns < (size_t)m->ncols * 2 + 2) ns *= 2;
  int *slots = calloc(ns, sizeof *slots);
  if (!slots) return -1;
  for (int i = 0; i < m->ncols; i++) {
    size_t h = hash_name(m->cols[i].name, m->cols[i].name_len) & (ns - 1);
    while (slots[h]) h = (h + 1) & (ns - 1);
    slots[h] = i + 1;
  }
  free(m->slots);
  m->slots = slots;
  m->nslots = ns;
  return 0;
}

int sq_model_find(const sq_model *m, const char *name, size_t len) {
  if (!m || !name || !m->slots) return -1;
  size_t mask = m->nslots - 1, h = hash_name(name, len) & mask;
  for (int s; (s = m->slots[h]) != 0; h = (h + 1) & mask) {
    const sq_col *c = &m->cols[s - 1];
    if (c->name_len == len && !memcmp(c->name, name, len)) return s - 1;
  }
  return -1;
}

static void col_free(sq_col *c) {
  for (int i = 0; c->enum_values && i < c->nenum; i++) free(c->enum_values[i]);
  free(c->enum_values);
  free(c->name);
  free(c->unique);
  free(c->comment);
  if (c->default_value.type == SQ_VTEXT || c->default_value.type == SQ_VBLOB)
    free((char *)c->default_value.u.s.p);
}

void sq_model_free(sq_model *m) {
  if (!m) return;
  sq_model_free_assocs(m);
  for (int i = 0; i < m->ncols; i++) col_free(&m->cols[i]);
  for (int i = 0; i < m->nidx; i++) {
    free(m->idx[i].name);
    for (int k = 0; k < m->idx[i].ncols; k++) free(m->idx[i].colnames[k]);
    free(m->idx[i].colnames);
    free(m->idx[i].cols);
  }
  free(m->idx);
  free(m->cols);
  free(m->pk);
  free(m->slots);
  free(m->name);
  free(m->table);
  free(m->ts_created);
  free(m->ts_updated);
  free(m->ts_deleted);
  free(m->version);
  free(m->qbuf);
  free(m->qcol[0]);
  free(m->qcol[1]);
  free(m);
}

/* Copies an optional name option, checking it as an identifier. */
static int opt_name(const char *what, const char *given, const char *def, char **out, sq_err *err) {
  const char *s = given ? given : def;
  if (sq_ident_check(what, s, strlen(s), err)) return err->kind;
  if (!(*out = dup0(s))) return nomem(err);
  return SQ_OK;
}

int sq_model_new(const char *name, const sq_model_opts *opts, sq_model **out, sq_err *err) {
  *out = NULL;
  if (!name) return sq_err_set(err, SQ_EUSAGE, "a model needs a name");
  if (sq_ident_check("model name", name, strlen(name), err)) return err->kind;
  sq_model *m = calloc(1, sizeof *m);
  if (!m) return nomem(err);
  for (int i = 0; i < 5; i++) m->roles[i] = -1;
  m->timestamps = !opts || opts->timestamps != 0;
  m->paranoid = opts && opts->paranoid > 0;
  if (!(m->name = dup0(name))) goto oom;
  char plural[160];
  const char *table = opts ? opts->table_name : NULL;
  if (!table) {
    sq_pluralize(name, plural, sizeof plural);
    table = plural;
  }
  if (opt_name("table name", table, NULL, &m->table, err) ||
      opt_name("created_at column name", opts ? opts->created_at : NULL, "created_at", &m->ts_created, err) ||
      opt_name("updated_at column name", opts ? opts->updated_at : NULL, "updated_at", &m->ts_updated, err) ||
      opt_name("deleted_at column name", opts ? opts->deleted_at : NULL, "deleted_at", &m->ts_deleted, err) ||
      (opts && opts->version && opt_name("version column name", opts->version, NULL, &m->version, err))) {
    sq_model_free(m);
    return err->kind;
  }
  m->table_len = strlen(m->table);
  if (rehash(m)) goto oom;
  *out = m;
  return SQ_OK;
oom:
  sq_model_free(m);
  return nomem(err);
}

static int is_int_type(int t) { return t == SQ_T_INTEGER || t == SQ_T_BIGINT || t == SQ_T_SMALLINT; }

/* Makes room for one more column. */
static int grow_cols(sq_model *m) {
  if (m->ncols < m->capcols) return 0;
  int cap = m->capcols ? m->capcols * 2 : 8;
  sq_col *c = realloc(m->cols, sizeof *c * (size_t)cap);
  if (!c) return -1;
  m->cols = c;
  m->capcols = cap;
  return 0;
}

/*
 * Copies a column definition after checking it. The default value is
 * coerced to the column's type here, once, so inserts can use it as is;
 * its strings are copied into the model.
 */
int sq_model_add_column(sq_model *m, const sq_coldef *def, sq_err *err) {
  if (!m || !def) return sq_err_set(err, SQ_EUSAGE, "sq_model_add_column: bad arguments");
  if (m->finished) return sq_err_set(err, SQ_EUSAGE, "model '%s' is finished; columns can't be added", m->name);
  if (!def->name) return sq_err_set(err, SQ_EUSAGE, "a column of model '%s' has no name", m->name);
  size_t nlen = strlen(def->name);
  if (sq_ident_check("column name", def->name, nlen, err)) return err->kind;
  if (sq_model_find(m, def->name, nlen) >= 0)
    return sq_err_set(err, SQ_EUSAGE, "model '%s' has two columns named '%s'", m->name, def->name);
  if (def->type < SQ_T_INTEGER || def->type >= SQ_T_COUNT)
    return sq_err_set(err, SQ_EUSAGE, "column '%s' has an unknown type (%d)", def->name, def->type);

  sq_col c;
  memset(&c, 0, sizeof c);
  c.type = def->type;
  c.length = def->length;
  c.precision = def->precision;
  c.scale = def->scale;
  if (c.type == SQ_T_STRING || c.type == SQ_T_CHAR) {
    int maxlen = c.type == SQ_T_CHAR ? 255 : 65535;
    if (c.length == 0) c.length = c.type == SQ_T_CHAR ? 1 : 255;
    if (c.length < 1 || c.length > maxlen)
      return sq_err_set(err, SQ_EUSAGE, "column '%s': %s length must be between 1 and %d", def->name,
                        sq_ctype_name(c.type), maxlen);
  } else {
    c.length = 0;
  }
  if (c.type == SQ_T_DECIMAL) {
    if (c.precision == 0) c.precision = 10;
    if (c.precision < 1 || c.precision > 65 || c.scale < 0 || c.scale > 30 || c.scale > c.precision)
      return sq_err_set(err, SQ_EUSAGE, "column '%s': DECIMAL(%d,%d) is out of range (precision 1..65, scale 0..30 and <= precision)",
                        def->name, c.precision, c.scale);
  } else {
    c.precision = c.scale = 0;
  }
  c.primary_key = def->primary_key != 0;
  c.auto_increment = def->auto_increment != 0;
  c.allow_null = def->allow_null != 0 && !c.primary_key;
  if (c.auto_increment && !is_int_type(c.type))
    return sq_err_set(err, SQ_EUSAGE, "column '%s': auto_increment needs an integer type, not %s", def->name,
                      sq_ctype_name(c.type));
  if (def->unique && def->unique[0] && sq_ident_check("unique key name", def->unique, strlen(def->unique), err))
    return err->kind;
  if (def->has_len && (def->len_min < 0 || def->len_max < def->len_min))
    return sq_err_set(err, SQ_EUSAGE, "column '%s': bad len rule (%lld..%lld)", def->name,
                      (long long)def->len_min, (long long)def->len_max);
  if (def->has_min && def->has_max && def->max < def->min)
    return sq_err_set(err, SQ_EUSAGE, "column '%s': validate max is below min", def->name);
  c.has_len = def->has_len != 0; c.len_min = def->len_min; c.len_max = def->len_max;
  c.has_min = def->has_min != 0; c.min = def->min;
  c.has_max = def->has_max != 0; c.max = def->max;
  if (c.type == SQ_T_ENUM) {
    if (def->nenum_values < 1 || def->nenum_values > SQ_ENUM_MAX || !def->enum_values)
      return sq_err_set(err, SQ_EUSAGE, "column '%s': an ENUM needs 1 to %d values", def->name, SQ_ENUM_MAX);
    for (int i = 0; i < def->nenum_values; i++) {
      const char *v = def->enum_values[i];
      size_t vn = v ? strlen(v) : 0;
      char shown[80];
      if (!v || vn == 0) return sq_err_set(err, SQ_EUSAGE, "column '%s': ENUM value %d is empty", def->name, i + 1);
      sq_show(v, vn, shown, sizeof shown);
      /* PostgreSQL's labels hold at most 63 bytes; the same everywhere */
      if (vn > SQ_IDENT_MAX)
        return sq_err_set(err, SQ_EUSAGE, "column '%s': ENUM value '%s' is longer than %d bytes", def->name, shown,
                          SQ_IDENT_MAX);
      if (sq_ident_check("ENUM value", v, vn, err)) return err->kind;
      for (int j = 0; j < i; j++)
        if (!strcmp(def->enum_values[j], v))
          return sq_err_set(err, SQ_EUSAGE, "column '%s': ENUM value '%s' is listed twice", def->name, shown);
    }
    if (c.primary_key || c.auto_increment)
      return sq_err_set(err, SQ_EUSAGE, "column '%s': an ENUM can't be a key or auto-increment", def->name);
    c.enum_values = (char **)def->enum_values; /* borrowed for sq_coerce of the default below */
    c.nenum = def->nenum_values;
  }
  if (c.type == SQ_T_JSON && (c.primary_key || def->unique || def->default_kind == SQ_DEFAULT_VALUE))
    return sq_err_set(err, SQ_EUSAGE,
                      "column '%s': a JSON column can't be a key or unique, and takes a function as its default", def->name);
  c.default_kind = def->default_kind;
  c.default_value = sq_null();
  char buf[64]; /* a coerced default's text (a date, a lower-case UUID) lives here until it is copied */
  switch (def->default_kind) {
  case SQ_DEFAULT_NONE:
  case SQ_DEFAULT_CALLBACK:
    break;
  case SQ_DEFAULT_NOW:
    if (c.type != SQ_T_DATE && c.type != SQ_T_DATETIME)
      return sq_err_set(err, SQ_EUSAGE, "column '%s': a now() default needs a DATE or DATETIME column", def->name);
    break;
  case SQ_DEFAULT_UUIDV4:
    if (c.type != SQ_T_UUID && c.type != SQ_T_STRING && c.type != SQ_T_CHAR && c.type != SQ_T_TEXT)
      return sq_err_set(err, SQ_EUSAGE, "column '%s': a uuid default needs a UUID or string column", def->name);
    break;
  case SQ_DEFAULT_VALUE: {
    sq_value v = def->default_value;
    c.name = (char *)def->name; /* for sq_coerce's messages only */
    c.name_len = nlen;
    if (sq_coerce(&c, &v, buf, err)) return err->kind;
    c.default_value = v;
    break;
  }
  default:
    return sq_err_set(err, SQ_EUSAGE, "column '%s': unknown default kind %d", def->name, def->default_kind);
  }

  /* Everything checked: now copy. */
  c.name = dupn(def->name, nlen);
  c.name_len = nlen;
  c.unique = def->unique ? dup0(def->unique) : NULL;
  c.comment = def->comment ? dup0(def->comment) : NULL;
  int bad = !c.name || (def->unique && !c.unique) || (def->comment && !c.comment);
  if (c.type == SQ_T_ENUM) {
    c.enum_values = calloc((size_t)c.nenum, sizeof *c.enum_values);
    for (int i = 0; c.enum_values && i < c.nenum; i++)
      if (!(c.enum_values[i] = dup0(def->enum_values[i]))) bad = 1;
    if (!c.enum_values) {
      c.nenum = 0;
      bad = 1;
    }
  }
  if (!bad && (c.default_value.type == SQ_VTEXT || c.default_value.type == SQ_VBLOB)) {
    char *p = dupn(c.default_value.u.s.p, c.default_value.u.s.n);
    c.default_value.u.s.p = p;
    if (!p) { c.default_value = sq_null(); bad = 1; }
  }
  if (bad || grow_cols(m)) {
    col_free(&c);
    return nomem(err);
  }
  m->cols[m->ncols++] = c;
  if ((size_t)m->ncols * 2 + 2 > m->nslots) {
    if (rehash(m)) {
      col_free(&m->cols[--m->ncols]);
      return nomem(err);
    }
  } else {
    size_t mask = m->nslots - 1, h = hash_name(c.name, nlen) & mask;
    while (m->slots[h]) h = (h + 1) & mask;
    m->slots[h] = m->ncols;
  }
  return SQ_OK;
}

int sq_model_add_index(sq_model *m, const char *name, const char *const *cols, int ncols, int unique, sq_err *err) {
  if (!m || (ncols > 0 && !cols)) return sq_err_set(err, SQ_EUSAGE, "sq_model_add_index: bad arguments");
  if (m->finished) return sq_err_set(err, SQ_EUSAGE, "model '%s' is finished; indexes can't be added", m->name);
  if (ncols < 1) return sq_err_set(err, SQ_EUSAGE, "an index of model '%s' has no columns", m->name);
  if (name && sq_ident_check("index name", name, strlen(name), err)) return err->kind;
  for (int i = 0; i < ncols; i++) {
    if (!cols[i]) return sq_err_set(err, SQ_EUSAGE, "an index of model '%s' has a NULL column", m->name);
    if (sq_ident_check("index column name", cols[i], strlen(cols[i]), err)) return err->kind;
    for (int k = 0; k < i; k++)
      if (!strcmp(cols[i], cols[k]))
        return sq_err_set(err, SQ_EUSAGE, "an index of model '%s' names column '%s' twice", m->name, cols[i]);
  }
  if (m->nidx == m->capidx) {
    int cap = m->capidx ? m->capidx * 2 : 4;
    sq_midx *p = realloc(m->idx, sizeof *p * (size_t)cap);
    if (!p) return nomem(err);
    m->idx = p;
    m->capidx = cap;
  }
  sq_midx x;
  memset(&x, 0, sizeof x);
  x.unique = unique != 0;
  x.name = name ? dup0(name) : NULL;
  x.colnames = calloc((size_t)ncols, sizeof *x.colnames);
  int bad = (name && !x.name) || !x.colnames;
  for (int i = 0; !bad && i < ncols; i++) {
    if (!(x.colnames[i] = dup0(cols[i]))) bad = 1;
    x.ncols = i + 1;
  }
  if (bad) {
    free(x.name);
    if (x.colnames)
      for (int i = 0; i < x.ncols; i++) free(x.colnames[i]);
    free(x.colnames);
    return nomem(err);
  }
  m->idx[m->nidx++] = x;
  return SQ_OK;
}

/* Inserts column c at position at (0 = first). */
static int insert_col(sq_model *m, int at, const sq_col *c) {
  if (grow_cols(m)) return -1;
  memmove(m->cols + at + 1, m->cols + at, sizeof *m->cols * (size_t)(m->ncols - at));
  m->cols[at] = *c;
  m->ncols++;
  return 0;
}

/* Adds a managed DATETIME column (timestamps, deleted_at) or gives the
 * role to the user's own column of that name. */
static int role_col(sq_model *m, const char *name, int role, int allow_null, sq_err *err) {
  int i = sq_model_find(m, name, strlen(name));
  if (i >= 0) {
    sq_col *c = &m->cols[i];
    if (c->type != SQ_T_DATETIME && c->type != SQ_T_DATE)
      return sq_err_set(err, SQ_EUSAGE, "column '%s' of model '%s' is managed (timestamps/paranoid) and must be DATETIME or DATE",
                        name, m->name);
    if (role == SQ_ROLE_DELETED_AT && !c->allow_null)
      return sq_err_set(err, SQ_EUSAGE, "column '%s' of paranoid model '%s' must allow null", name, m->name);
    c->role = role;
    m->roles[role] = i;
    return SQ_OK;
  }
  sq_col c;
  memset(&c, 0, sizeof c);
  c.name = dup0(name);
  if (!c.name) return nomem(err);
  c.name_len = strlen(name);
  c.type = SQ_T_DATETIME;
  c.allow_null = allow_null;
  c.default_value = sq_null();
  c.role = role;
  if (insert_col(m, m->ncols, &c)) {
    free(c.name);
    return nomem(err);
  }
  m->roles[role] = m->ncols - 1;
  if (rehash(m)) return nomem(err);
  return SQ_OK;
}

/* The optimistic-locking version column: added (INTEGER NOT NULL
 * DEFAULT 0), or the user's own integer column of that name made NOT
 * NULL (DEFAULT 0 when it has none). */
static int version_col(sq_model *m, sq_err *err) {
  const char *name = m->version;
  int i = sq_model_find(m, name, strlen(name));
  if (i >= 0) {
    sq_col *c = &m->cols[i];
    if (!is_int_type(c->type) || c->primary_key || c->auto_increment || c->role)
      return sq_err_set(err, SQ_EUSAGE,
                        "column '%s' of model '%s' is the version column (optimistic locking) and must be a plain "
                        "INTEGER, BIGINT or SMALLINT column",
                        name, m->name);
    c->allow_null = 0;
    if (c->default_kind == SQ_DEFAULT_NONE) {
      c->default_kind = SQ_DEFAULT_VALUE;
      c->default_value = sq_int(0);
    }
    c->role = SQ_ROLE_VERSION;
    m->roles[SQ_ROLE_VERSION] = i;
    return SQ_OK;
  }
  sq_col c;
  memset(&c, 0, sizeof c);
  c.name = dup0(name);
  if (!c.name) return nomem(err);
  c.name_len = strlen(name);
  c.type = SQ_T_INTEGER;
  c.allow_null = 0;
  c.default_kind = SQ_DEFAULT_VALUE;
  c.default_value = sq_int(0);
  c.role = SQ_ROLE_VERSION;
  if (insert_col(m, m->ncols, &c)) {
    free(c.name);
    return nomem(err);
  }
  m->roles[SQ_ROLE_VERSION] = m->ncols - 1;
  if (rehash(m)) return nomem(err);
  return SQ_OK;
}

/* Generated index name "<table>_<col>_<col>"; when that is longer than an
 * identifier may be, a shortened prefix plus a hash of the full name. */
static char *index_name(const sq_model *m, const sq_midx *x) {
  size_t n = m->table_len;
  for (int i = 0; i < x->ncols; i++) n += 1 + strlen(x->colnames[i]);
  char *s = malloc(n + 1);
  if (!s) return NULL;
  size_t o = m->table_len;
  memcpy(s, m->table, o);
  for (int i = 0; i < x->ncols; i++) {
    size_t k = strlen(x->colnames[i]);
    s[o++] = '_';
    memcpy(s + o, x->colnames[i], k);
    o += k;
  }
  s[o] = '\0';
  if (n > SQ_IDENT_MAX) {
    uint32_t h = hash_name(s, n);
    size_t cut = SQ_IDENT_MAX - 9;
    /* Don't cut through a UTF-8 sequence. */
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) cut--;
    snprintf(s + cut, 10, "_%08x", (unsigned)h);
  }
  return s;
}

/* Stores every name quoted in both styles in one buffer. */
static int build_quoted(sq_model *m) {
  size_t total = 2 * (2 * m->table_len + 3);
  for (int i = 0; i < m->ncols; i++) total += 2 * (2 * m->cols[i].name_len + 3);
  free(m->qbuf);
  free(m->qcol[0]);
  free(m->qcol[1]);
  m->qbuf = malloc(total);
  m->qcol[0] = malloc(sizeof(sq_qname) * (size_t)(m->ncols ? m->ncols : 1));
  m->qcol[1] = malloc(sizeof(sq_qname) * (size_t)(m->ncols ? m->ncols : 1));
  if (!m->qbuf || !m->qcol[0] || !m->qcol[1]) return -1;
  char *o = m->qbuf;
  for (int st = 0; st < 2; st++) {
    char q = st == SQ_QSTYLE_BACKTICK ? '`' : '"';
    for (int i = -1; i < m->ncols; i++) {
      const char *s = i < 0 ? m->table : m->cols[i].name;
      size_t n = i < 0 ? m->table_len : m->cols[i].name_len;
      char *start = o;
      *o++ = q;
      for (size_t k = 0; k < n; k++) {
        if (s[k] == q) *o++ = q;
        *o++ = s[k];
      }
      *o++ = q;
      sq_qname qn = { start, (size_t)(o - start) };
      *o++ = '\0';
      if (i < 0) m->qtable[st] = qn;
      else m->qcol[st][i] = qn;
    }
  }
  return 0;
}

/*
 * Completes the model: the implicit `id` key, timestamps and deleted_at,
 * key and auto_increment checks, index resolution, the name hash and the
 * quoted names. On error the model stays unfinished (free it).
 */
int sq_model_finish(sq_model *m, sq_err *err) {
  if (!m) return sq_err_set(err, SQ_EUSAGE, "sq_model_finish: no model");
  if (m->finished) return sq_err_set(err, SQ_EUSAGE, "model '%s' is already finished", m->name);
  int npk = 0, nai = 0, ai = -1;
  for (int i = 0; i < m->ncols; i++) {
    npk += m->cols[i].primary_key;
    if (m->cols[i].auto_increment) { nai++; ai = i; }
  }
  if (nai > 1) return sq_err_set(err, SQ_EUSAGE, "model '%s' has more than one auto_increment column", m->name);
  if (npk == 0 && nai == 1) {
    /* The auto_increment column is the key the user meant. */
    m->cols[ai].primary_key = 1;
    m->cols[ai].allow_null = 0;
    npk = 1;
  } else if (npk == 0) {
    if (sq_model_find(m, "id", 2) >= 0)
      return sq_err_set(err, SQ_EUSAGE, "model '%s' has a column 'id' but no primary key; mark it primary_key", m->name);
    sq_col c;
    memset(&c, 0, sizeof c);
    if (!(c.name = dup0("id"))) return nomem(err);
    c.name_len = 2;
    c.type = SQ_T_INTEGER;
    c.primary_key = 1;
    c.auto_increment = 1;
    c.default_value = sq_null();
    if (insert_col(m, 0, &c)) {
      free(c.name);
      return nomem(err);
    }
    npk = 1;
    for (int r = 0; r < 5; r++) if (m->roles[r] >= 0) m->roles[r]++;
    if (rehash(m)) return nomem(err);
  }
  if (nai == 1 && (npk > 1 || !m->cols[ai].primary_key))
    return sq_err_set(err, SQ_EUSAGE, "column '%s' of model '%s': auto_increment needs a single-column primary key",
                      m->cols[ai].name, m->name);
  if (m->timestamps) {
    if (!strcmp(m->ts_created, m->ts_updated))
      return sq_err_set(err, SQ_EUSAGE, "model '%s': created_at and updated_at can't share a column", m->name);
    if (role_col(m, m->ts_created, SQ_ROLE_CREATED_AT, 0, err)) return err->kind;
    if (role_col(m, m->ts_updated, SQ_ROLE_UPDATED_AT, 0, err)) return err->kind;
  }
  if (m->paranoid) {
    int clash = m->timestamps && (!strcmp(m->ts_deleted, m->ts_created) || !strcmp(m->ts_deleted, m->ts_updated));
    if (clash) return sq_err_set(err, SQ_EUSAGE, "model '%s': deleted_at can't share a timestamp column", m->name);
    if (role_col(m, m->ts_deleted, SQ_ROLE_DELETED_AT, 1, err)) return err->kind;
  }
  if (m->version) {
    int clash = (m->timestamps && (!strcmp(m->version, m->ts_created) || !strcmp(m->version, m->ts_updated))) ||
                (m->paranoid && !strcmp(m->version, m->ts_deleted));
    if (clash) return sq_err_set(err, SQ_EUSAGE, "model '%s': the version column can't share a timestamp column", m->name);
    if (version_col(m, err)) return err->kind;
  }

  free(m->pk);
  m->pk = malloc(sizeof *m->pk * (size_t)npk);
  if (!m->pk) return nomem(err);
  m->npk = 0;
  for (int i = 0; i < m->ncols; i++)
    if (m->cols[i].primary_key) {
      m->cols[i].allow_null = 0;
      m->pk[m->npk++] = i;
    }

  for (int i = 0; i < m->nidx; i++) {
    sq_midx *x = &m->idx[i];
    if (!x->cols && !(x->cols = malloc(sizeof *x->cols * (size_t)x->ncols))) return nomem(err);
    for (int k = 0; k < x->ncols; k++) {
      int c = sq_model_find(m, x->colnames[k], strlen(x->colnames[k]));
      if (c < 0)
        return sq_err_set(err, SQ_EUSAGE, "an index of model '%s' names unknown column '%s'", m->name, x->colnames[k]);
      x->cols[k] = c;
    }
    if (!x->name && !(x->name = index_name(m, x))) return nomem(err);
    for (int k = 0; k < i; k++)
      if (!strcmp(m->idx[k].name, x->name))
        return sq_err_set(err, SQ_EUSAGE, "model '%s' has two indexes named '%s'", m->name, x->name);
  }

  m->mysql_bad = NULL;
  if (!sq_ident_mysql_ok(m->table, m->table_len)) m->mysql_bad = m->table;
  for (int i = 0; i < m->ncols && !m->mysql_bad; i++)
    if (!sq_ident_mysql_ok(m->cols[i].name, m->cols[i].name_len)) m->mysql_bad = m->cols[i].name;
  if (build_quoted(m)) return nomem(err);
  m->finished = 1;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */
/* ------------------------------------------------------------------ */

const char *sq_model_name(const sq_model *m) { return m ? m->name : NULL; }
const char *sq_model_table(const sq_model *m) { return m ? m->table : NULL; }
int sq_model_ncols(const sq_model *m) { return m ? m->ncols : 0; }

const sq_col *sq_model_col(const sq_model *m, int i) {
  if (!m || i < 0 || i >= m->ncols) return NULL;
  return &m->cols[i];
}

int sq_model_pk(const sq_model *m, const int **cols) {
  if (cols) *cols = m ? m->pk : NULL;
  return m ? m->npk : 0;
}

int sq_model_role_col(const sq_model *m, int role) {
  if (!m || role < 1 || role > SQ_ROLE_VERSION) return -1;
  return m->roles[role];
}

int sq_model_nindexes(const sq_model *m) { return m ? m->nidx : 0; }

void sq_model_index(const sq_model *m, int i, const char **name, int *unique, const int **cols, int *ncols) {
  const sq_midx *x = m && i >= 0 && i < m->nidx ? &m->idx[i] : NULL;
  if (name) *name = x ? x->name : NULL;
  if (unique) *unique = x ? x->unique : 0;
  if (cols) *cols = x ? x->cols : NULL;
  if (ncols) *ncols = x ? x->ncols : 0;
}

/* ------------------------------------------------------------------ */
/* Changes after finish (associations add foreign keys)                 */
/* ------------------------------------------------------------------ */

unsigned sq_model_generation(const sq_model *m) { return m ? m->generation : 0; }

/*
 * Appends a column to a finished model. It goes last, so every column
 * index a caller holds stays valid; keys can't be added this way (the
 * primary key is fixed at finish). The quoted names are rebuilt; when
 * that runs out of memory the model is left unfinished, so the renderer
 * refuses it instead of reading a half-built table.
 */
int sq_model_append_column(sq_model *m, const sq_coldef *def, sq_err *err) {
  if (!m || !def) return sq_err_set(err, SQ_EUSAGE, "sq_model_append_column: bad arguments");
  if (!m->finished) return sq_model_add_column(m, def, err);
  if (def->primary_key || def->auto_increment)
    return sq_err_set(err, SQ_EUSAGE, "model '%s' is finished; a key column can't be added to it", m->name);
  m->finished = 0;
  int rc = sq_model_add_column(m, def, err);
  m->finished = 1;
  if (rc) return rc;
  const sq_col *c = &m->cols[m->ncols - 1];
  if (!m->mysql_bad && !sq_ident_mysql_ok(c->name, c->name_len)) m->mysql_bad = c->name;
  m->generation++;
  if (build_quoted(m)) {
    m->finished = 0;
    return nomem(err);
  }
  return SQ_OK;
}

/* Adds an index to a finished model: resolved and named at once, as
 * finish does for the others. */
int sq_model_append_index(sq_model *m, const char *name, const char *const *cols, int ncols, int unique,
                          sq_err *err) {
  if (!m) return sq_err_set(err, SQ_EUSAGE, "sq_model_append_index: bad arguments");
  if (!m->finished) return sq_model_add_index(m, name, cols, ncols, unique, err);
  m->finished = 0;
  int rc = sq_model_add_index(m, name, cols, ncols, unique, err);
  m->finished = 1;
  if (rc) return rc;
  sq_midx *x = &m->idx[m->nidx - 1];
  if (!(x->cols = malloc(sizeof *x->cols * (size_t)x->ncols))) {
    rc = nomem(err);
    goto undo;
  }
  for (int k = 0; k < x->ncols; k++) {
    int c = sq_model_find(m, x->colnames[k], strlen(x->colnames[k]));
    if (c < 0) {
      rc = sq_err_set(err, SQ_EUSAGE, "an index of model '%s' names unknown column '%s'", m->name, x->colnames[k]);
      goto undo;
    }
    x->cols[k] = c;
  }
  if (!x->name && !(x->name = index_name(m, x))) {
    rc = nomem(err);
    goto undo;
  }
  for (int k = 0; k < m->nidx - 1; k++)
    if (!strcmp(m->idx[k].name, x->name)) {
      rc = sq_err_set(err, SQ_EUSAGE, "model '%s' has two indexes named '%s'", m->name, x->name);
      goto undo;
    }
  m->generation++;
  return SQ_OK;
undo:
  free(x->name);
  for (int k = 0; k < x->ncols; k++) free(x->colnames[k]);
  free(x->colnames);
  free(x->cols);
  m->nidx--;
  return rc;
}
