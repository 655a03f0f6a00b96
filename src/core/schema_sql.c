/*
 * schema_sql.c - the pieces every schema renderer writes: quoted
 * identifiers, literals, and one column's definition per dialect; plus
 * the catalog reader the live-schema code shares.
 *
 * This is the one place where SQL text carries values: a column's
 * constant DEFAULT, its COMMENT and an ENUM's values are rendered as
 * literals, because DDL takes no bound parameters. They are formatted
 * here from typed values (numbers in C, strings quoted with their quotes
 * doubled, NUL refused), never copied from user SQL. Defaults that are
 * computed (now, uuid, a Lua function) get no database default: the
 * binding fills them at insert, which keeps the three dialects alike.
 */
#include "ddl_int.h"

#include <math.h>

int sq_ddl_nomem(sq_err *err) { return sq_err_set(err, SQ_ENOMEM, "out of memory rendering DDL"); }

int sq_ddl_valid_dialect(int d) {
  return d == SQ_DIALECT_SQLITE || d == SQ_DIALECT_MYSQL || d == SQ_DIALECT_POSTGRES;
}

int sq_ddl_ident(sbuf *b, int dialect, const char *name, sq_err *err) {
  char q[SQ_DDL_QMAX];
  if (!name) return sq_err_set(err, SQ_EUSAGE, "DDL: a name is missing");
  int rc = sq_quote_ident(dialect, name, strlen(name), q, sizeof q, err);
  if (rc != SQ_OK) return rc;
  sb_puts(b, q);
  return SQ_OK;
}

/*
 * A string literal for DDL. Quotes are doubled everywhere; MySQL also
 * treats backslash as an escape by default, so it is doubled there. On
 * PostgreSQL a literal holding a backslash is written E'...' with the
 * backslash doubled, which reads the same whatever
 * standard_conforming_strings is set to. A NUL byte can't appear in SQL
 * text at all: SQ_EUSAGE.
 */
int sq_ddl_strlit(sbuf *b, int dialect, const char *s, size_t n, const char *what, sq_err *err) {
  if (!s) s = "", n = 0;
  if (memchr(s, '\0', n)) return sq_err_set(err, SQ_EUSAGE, "%s holds a NUL byte", what);
  int bs = memchr(s, '\\', n) != NULL;
  int dbl_bs = bs && dialect != SQ_DIALECT_SQLITE;
  if (bs && dialect == SQ_DIALECT_POSTGRES) sb_putn(b, "E", 1);
  sb_putn(b, "'", 1);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\'' || (dbl_bs && s[i] == '\\')) {
      sb_putn(b, s + start, i + 1 - start); /* up to and including it, */
      start = i;                            /* then once more */
    }
  }
  sb_putn(b, s + start, n - start);
  sb_putn(b, "'", 1);
  return SQ_OK;
}

int sq_ddl_push(sq_sql_list *l, sbuf *b, sq_err *err) {
  if (b->oom) return sq_ddl_nomem(err);
  char *s = malloc(b->n + 1);
  char **v = realloc(l->sql, (size_t)(l->n + 1) * sizeof *v);
  if (!s || !v) {
    free(s);
    if (v) l->sql = v;
    return sq_ddl_nomem(err);
  }
  memcpy(s, b->p ? b->p : "", b->n + 1);
  l->sql = v;
  l->sql[l->n++] = s;
  sb_reset(b);
  return SQ_OK;
}

int sq_ddl_append(sq_sql_list *dst, sq_sql_list *src, sq_err *err) {
  if (src->n == 0) return SQ_OK;
  char **v = realloc(dst->sql, (size_t)(dst->n + src->n) * sizeof *v);
  if (!v) return sq_ddl_nomem(err);
  dst->sql = v;
  for (int i = 0; i < src->n; i++) dst->sql[dst->n++] = src->sql[i];
  free(src->sql);
  src->sql = NULL;
  src->n = 0;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Names                                                                */
/* ------------------------------------------------------------------ */

static uint32_t fnv(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

void sq_ddl_join_name(char out[64], const char *table, const char *const *cols, int ncols, const char *suffix) {
  char full[1024];
  size_t n = 0;
#define ADD(s)                                                                                                        \
  do {                                                                                                                \
    const char *s_ = (s) ? (s) : "";                                                                                  \
    size_t k_ = strlen(s_);                                                                                           \
    if (n + k_ >= sizeof full) k_ = sizeof full - 1 - n;                                                              \
    memcpy(full + n, s_, k_);                                                                                         \
    n += k_;                                                                                                          \
  } while (0)
  ADD(table);
  for (int i = 0; i < ncols; i++) {
    ADD("_");
    ADD(cols[i]);
  }
  if (suffix) {
    ADD("_");
    ADD(suffix);
  }
#undef ADD
  full[n] = '\0';
  if (n <= 63) {
    memcpy(out, full, n + 1);
    return;
  }
  uint32_t h = fnv(full, n);
  size_t cut = 63 - 9;
  /* Don't cut through a UTF-8 sequence. */
  while (cut > 0 && ((unsigned char)full[cut] & 0xc0) == 0x80) cut--;
  memcpy(out, full, cut);
  snprintf(out + cut, 64 - cut, "_%08x", (unsigned)h);
}

void sq_ddl_enum_type_name(char out[64], const char *table, const sq_scol *c) {
  if (c->enum_type) {
    snprintf(out, 64, "%s", c->enum_type);
    return;
  }
  char prefix[600];
  snprintf(prefix, sizeof prefix, "enum_%s", table ? table : "");
  const char *col = c->name;
  sq_ddl_join_name(out, prefix, &col, 1, NULL);
}

/* ------------------------------------------------------------------ */
/* Columns                                                              */
/* ------------------------------------------------------------------ */

static int is_int_type(int t) { return t == SQ_T_INTEGER || t == SQ_T_BIGINT || t == SQ_T_SMALLINT; }

void sq_ddl_cdef_from_col(const sq_model *m, const sq_col *c, sq_cdef *out) {
  const int *pk;
  int npk = sq_model_pk(m, &pk);
  memset(out, 0, sizeof *out);
  out->name = c->name;
  out->type = c->type;
  out->length = c->length;
  out->precision = c->precision;
  out->scale = c->scale;
  out->allow_null = c->allow_null;
  out->primary_key = c->primary_key;
  out->auto_increment = c->auto_increment;
  out->single_pk = c->primary_key && npk == 1 && sq_model_col(m, pk[0]) == c;
  out->unique = c->unique;
  out->comment = c->comment;
  out->default_kind = c->default_kind;
  out->default_value = c->default_value;
  out->now_col = c->default_kind == SQ_DEFAULT_NOW || c->role == SQ_ROLE_CREATED_AT || c->role == SQ_ROLE_UPDATED_AT;
  if (c->type == SQ_T_ENUM) {
    sq_scol s;
    sq_scol_init(&s, c->name, SQ_T_STRING);
    out->type = SQ_T_STRING;
    out->enum_values = (const char *const *)c->enum_values;
    out->nenum = c->nenum;
    sq_ddl_enum_type_name(out->enum_buf, sq_model_table(m), &s);
    out->enum_type = out->enum_buf;
  }
}

int sq_ddl_rowid(const sq_cdef *c) { return c->primary_key && c->auto_increment && c->single_pk; }

static int is_enum(const sq_cdef *c) { return c->nenum > 0 || c->enum_values != NULL; }

int sq_ddl_check_col(const sq_cdef *c, int dialect, sq_err *err) {
  const char *name = c->name ? c->name : "?";
  if (!c->name) return sq_err_set(err, SQ_EUSAGE, "a column has no name");
  if (is_enum(c)) {
    if (c->type != 0 && c->type != SQ_T_STRING)
      return sq_err_set(err, SQ_EUSAGE, "column %s: an ENUM column has type STRING (values are strings), not %s",
                        name, sq_ctype_name(c->type));
    if (c->nenum < 1 || !c->enum_values)
      return sq_err_set(err, SQ_EUSAGE, "column %s: an ENUM needs at least one value", name);
    for (int i = 0; i < c->nenum; i++) {
      if (!c->enum_values[i]) return sq_err_set(err, SQ_EUSAGE, "column %s: ENUM value %d is missing", name, i + 1);
      for (int j = 0; j < i; j++)
        if (!strcmp(c->enum_values[i], c->enum_values[j]))
          return sq_err_set(err, SQ_EUSAGE, "column %s: ENUM value '%.60s' is listed twice", name, c->enum_values[i]);
    }
    if (c->auto_increment || c->primary_key)
      return sq_err_set(err, SQ_EUSAGE, "column %s: an ENUM can't be a key or auto-increment", name);
    if (dialect == SQ_DIALECT_POSTGRES && !c->enum_type)
      return sq_err_set(err, SQ_EINTERNAL, "column %s: no enum type name", name);
    return SQ_OK;
  }
  if (c->type <= 0 || c->type >= SQ_T_COUNT)
    return sq_err_set(err, SQ_EUSAGE, "column %s: unknown type %d", name, c->type);
  if (c->auto_increment && !is_int_type(c->type))
    return sq_err_set(err, SQ_EUSAGE, "column %s: auto_increment needs an integer type, not %s", name,
                      sq_ctype_name(c->type));
  if (c->auto_increment && dialect == SQ_DIALECT_SQLITE && !sq_ddl_rowid(c))
    return sq_err_set(err, SQ_EUSAGE,
                      "column %s: sqlite supports auto_increment only on a single-column primary key", name);
  return SQ_OK;
}

/* "'a', 'b'" */
static int enum_list(sbuf *b, const sq_cdef *c, int dialect, sq_err *err) {
  char what[128];
  snprintf(what, sizeof what, "an ENUM value of column %.64s", c->name);
  for (int i = 0; i < c->nenum; i++) {
    if (i) sb_puts(b, ", ");
    int rc = sq_ddl_strlit(b, dialect, c->enum_values[i], strlen(c->enum_values[i]), what, err);
    if (rc) return rc;
  }
  return SQ_OK;
}

/*
 * The column's SQL type, without key or identity clauses. The alter plan
 * classifies this same text to know what the live type should be, so
 * what CREATE writes and what sync compares never drift apart.
 */
int sq_ddl_type_sql(sbuf *b, const sq_cdef *c, int dialect, sq_err *err) {
  int my = dialect == SQ_DIALECT_MYSQL, pg = dialect == SQ_DIALECT_POSTGRES;
  int len = c->length;
  if (is_enum(c)) {
    if (my) {
      sb_puts(b, "ENUM(");
      int rc = enum_list(b, c, dialect, err);
      sb_puts(b, ")");
      return rc;
    }
    if (pg) return sq_ddl_ident(b, dialect, c->enum_type, err);
    sb_puts(b, "TEXT");
    return SQ_OK;
  }
  switch (c->type) {
  case SQ_T_INTEGER: sb_puts(b, my ? "INT" : "INTEGER"); break;
  case SQ_T_BIGINT: sb_puts(b, dialect == SQ_DIALECT_SQLITE && sq_ddl_rowid(c) ? "INTEGER" : "BIGINT"); break;
  case SQ_T_SMALLINT: sb_puts(b, dialect == SQ_DIALECT_SQLITE && sq_ddl_rowid(c) ? "INTEGER" : "SMALLINT"); break;
  case SQ_T_FLOAT: sb_puts(b, pg ? "REAL" : "FLOAT"); break;
  case SQ_T_DOUBLE: sb_puts(b, pg ? "DOUBLE PRECISION" : "DOUBLE"); break;
  case SQ_T_DECIMAL:
    /* SQLite: "DECIMAL TEXT" has TEXT affinity (the name holds "TEXT"),
     * so values stay the exact text sqorm writes instead of becoming
     * doubles; its first word still reads as DECIMAL(p,s) to classify
     * and to the driver (see driver_sqlite.c). */
    sb_fmt(b, dialect == SQ_DIALECT_SQLITE ? "DECIMAL TEXT(%d,%d)" : "DECIMAL(%d,%d)",
           c->precision > 0 ? c->precision : 10, c->scale > 0 ? c->scale : 0);
    break;
  case SQ_T_STRING: sb_fmt(b, "VARCHAR(%d)", len > 0 ? len : 255); break;
  case SQ_T_CHAR: sb_fmt(b, "CHAR(%d)", len > 0 ? len : 1); break;
  case SQ_T_TEXT: sb_puts(b, "TEXT"); break;
  case SQ_T_BOOLEAN: sb_puts(b, my ? "TINYINT(1)" : "BOOLEAN"); break;
  case SQ_T_DATE: sb_puts(b, "DATE"); break;
  case SQ_T_DATETIME: sb_puts(b, pg ? "TIMESTAMP" : "DATETIME"); break;
  case SQ_T_BLOB: sb_puts(b, my ? "LONGBLOB" : pg ? "BYTEA" : "BLOB"); break;
  case SQ_T_UUID: sb_puts(b, pg ? "UUID" : "CHAR(36)"); break;
  case SQ_T_JSON: sb_puts(b, my ? "JSON" : pg ? "JSONB" : "TEXT"); break;
  case SQ_T_ENUM: return sq_err_set(err, SQ_EUSAGE, "column %s: an ENUM needs its values", c->name);
  default: return sq_err_set(err, SQ_EUSAGE, "column %s: unknown type %d", c->name, c->type);
  }
  return SQ_OK;
}

static void sb_hex(sbuf *b, const char *s, size_t n) {
  static const char hx[] = "0123456789abcdef";
  char two[2];
  for (size_t i = 0; i < n; i++) {
    two[0] = hx[(unsigned char)s[i] >> 4];
    two[1] = hx[(unsigned char)s[i] & 15];
    sb_putn(b, two, 2);
  }
}

/*
 * " DEFAULT <literal>" for a constant default (nothing for computed ones,
 * for NULL, which is the implicit default, and for auto-increment
 * columns). Numbers are formatted in C (a decimal comma from a locale is
 * turned back into a point), booleans per dialect.
 */
int sq_ddl_default_sql(sbuf *b, const sq_cdef *c, int dialect, sq_err *err) {
  if (c->default_kind != SQ_DEFAULT_VALUE || c->auto_increment) return SQ_OK;
  const sq_value *v = &c->default_value;
  char num[64];
  /* MySQL 8 takes a TEXT/BLOB default only as an expression; MariaDB
   * takes both forms. */
  int paren = dialect == SQ_DIALECT_MYSQL && (c->type == SQ_T_TEXT || c->type == SQ_T_BLOB) && !is_enum(c);
  switch (v->type) {
  case SQ_VNULL: return SQ_OK;
  case SQ_VINT:
    if (c->type == SQ_T_BOOLEAN && (v->u.i == 0 || v->u.i == 1)) {
      sb_puts(b, " DEFAULT ");
      sb_puts(b, dialect == SQ_DIALECT_POSTGRES ? (v->u.i ? "TRUE" : "FALSE") : (v->u.i ? "1" : "0"));
      return SQ_OK;
    }
    sb_fmt(b, " DEFAULT %lld", (long long)v->u.i);
    return SQ_OK;
  case SQ_VFLOAT: {
    if (!isfinite(v->u.f))
      return sq_err_set(err, SQ_EUSAGE, "column %s: default %g can't be written in SQL", c->name, v->u.f);
    snprintf(num, sizeof num, "%.15g", v->u.f);
    if (strtod(num, NULL) != v->u.f) snprintf(num, sizeof num, "%.17g", v->u.f);
    for (char *p = num; *p; p++)
      if (*p == ',') *p = '.';
    sb_puts(b, " DEFAULT ");
    sb_puts(b, num);
    return SQ_OK;
  }
  case SQ_VBOOL:
    sb_puts(b, " DEFAULT ");
    if (dialect == SQ_DIALECT_POSTGRES) sb_puts(b, v->u.b ? "TRUE" : "FALSE");
    else sb_puts(b, v->u.b ? "1" : "0");
    return SQ_OK;
  case SQ_VTEXT: {
    char what[128];
    snprintf(what, sizeof what, "default of column %s", c->name);
    sb_puts(b, paren ? " DEFAULT (" : " DEFAULT ");
    int rc = sq_ddl_strlit(b, dialect, v->u.s.p ? v->u.s.p : "", v->u.s.p ? v->u.s.n : 0, what, err);
    if (paren) sb_puts(b, ")");
    return rc;
  }
  case SQ_VBLOB:
    if (paren) {
      sb_puts(b, " DEFAULT (X'");
      sb_hex(b, v->u.s.p, v->u.s.n);
      sb_puts(b, "')");
    } else if (dialect == SQ_DIALECT_POSTGRES) {
      sb_puts(b, " DEFAULT decode('");
      sb_hex(b, v->u.s.p, v->u.s.n);
      sb_puts(b, "', 'hex')");
    } else {
      sb_puts(b, " DEFAULT X'");
      sb_hex(b, v->u.s.p, v->u.s.n);
      sb_puts(b, "'");
    }
    return SQ_OK;
  default: return sq_err_set(err, SQ_EUSAGE, "column %s: default of unknown value type", c->name);
  }
}

/* The expression a NOT NULL now-column (a now() default, or created_at /
 * updated_at, which the binding fills) gets for rows that exist when
 * sync adds it; the drivers run sessions in UTC. NULL when the column
 * isn't such a column. */
const char *sq_ddl_fill_sql(const sq_cdef *c, int dialect) {
  if (c->allow_null || !c->now_col) return NULL;
  if (c->type == SQ_T_DATETIME) {
    switch (dialect) {
    case SQ_DIALECT_SQLITE: return "strftime('%Y-%m-%d %H:%M:%S', 'now')";
    case SQ_DIALECT_MYSQL: return "CURRENT_TIMESTAMP";
    case SQ_DIALECT_POSTGRES: return "date_trunc('second', CURRENT_TIMESTAMP AT TIME ZONE 'UTC')";
    }
  } else if (c->type == SQ_T_DATE) {
    switch (dialect) {
    case SQ_DIALECT_SQLITE: return "date('now')";
    case SQ_DIALECT_MYSQL: return "(CURRENT_DATE)";
    case SQ_DIALECT_POSTGRES: return "CAST(CURRENT_TIMESTAMP AT TIME ZONE 'UTC' AS DATE)";
    }
  }
  return NULL;
}

int sq_ddl_enum_check(sbuf *b, const sq_cdef *c, sq_err *err) {
  if (!is_enum(c)) return SQ_OK;
  sb_puts(b, " CHECK (");
  int rc = sq_ddl_ident(b, SQ_DIALECT_SQLITE, c->name, err);
  sb_puts(b, " IN (");
  if (!rc) rc = enum_list(b, c, SQ_DIALECT_SQLITE, err);
  sb_puts(b, "))");
  return rc;
}

int sq_ddl_json_check(sbuf *b, const sq_cdef *c, sq_err *err) {
  if (c->type != SQ_T_JSON || is_enum(c)) return SQ_OK;
  /* json_valid(NULL) is 0 before SQLite 3.45 */
  sb_puts(b, " CHECK (");
  int rc = sq_ddl_ident(b, SQ_DIALECT_SQLITE, c->name, err);
  sb_puts(b, " IS NULL OR json_valid(");
  if (!rc) rc = sq_ddl_ident(b, SQ_DIALECT_SQLITE, c->name, err);
  sb_puts(b, "))");
  return rc;
}

/* " ON DELETE x ON UPDATE y" for the actions given (SQ_FK_DEFAULT: none);
 * an action that is no sq_fk_action is SQ_EUSAGE (found by fuzz_schema). */
static int fk_actions(sbuf *b, int del, int upd, sq_err *err) {
  if ((del != SQ_FK_DEFAULT && !sq_fk_action_sql(del)) || (upd != SQ_FK_DEFAULT && !sq_fk_action_sql(upd)))
    return sq_err_set(err, SQ_EUSAGE, "foreign key: on_delete %d / on_update %d: not an sq_fk_action", del, upd);
  if (del != SQ_FK_DEFAULT) {
    sb_puts(b, " ON DELETE ");
    sb_puts(b, sq_fk_action_sql(del));
  }
  if (upd != SQ_FK_DEFAULT) {
    sb_puts(b, " ON UPDATE ");
    sb_puts(b, sq_fk_action_sql(upd));
  }
  return SQ_OK;
}

/*
 * One column definition. MySQL keeps its key list at table level (as
 * SHOW CREATE TABLE prints it) and takes COMMENT inline; PostgreSQL gets
 * its comments as separate COMMENT ON statements; SQLite drops them.
 * Without SQ_CD_KEYS the definition is what MySQL's MODIFY COLUMN needs:
 * every attribute but the keys, which already exist. SQLite's ENUM CHECK
 * is part of the definition (it is the column's type), keys or not.
 */
int sq_ddl_col_def(sbuf *b, const sq_cdef *c, int dialect, int flags, sq_err *err) {
  int rc;
  if ((rc = sq_ddl_check_col(c, dialect, err))) return rc;
  if ((rc = sq_ddl_ident(b, dialect, c->name, err))) return rc;
  sb_puts(b, " ");
  if ((rc = sq_ddl_type_sql(b, c, dialect, err))) return rc;
  if (dialect == SQ_DIALECT_POSTGRES && c->auto_increment) sb_puts(b, " GENERATED BY DEFAULT AS IDENTITY");
  if (!c->allow_null || c->primary_key) sb_puts(b, " NOT NULL");
  const char *fill = (flags & SQ_CD_FILL) ? sq_ddl_fill_sql(c, dialect) : NULL;
  if (fill) {
    sb_puts(b, " DEFAULT ");
    sb_puts(b, fill);
  } else if ((rc = sq_ddl_default_sql(b, c, dialect, err))) {
    return rc;
  }
  if (dialect == SQ_DIALECT_MYSQL && c->auto_increment) sb_puts(b, " AUTO_INCREMENT");
  if ((flags & SQ_CD_KEYS) && !(flags & SQ_CD_NOPK) && c->single_pk && dialect != SQ_DIALECT_MYSQL) {
    sb_puts(b, " PRIMARY KEY");
    if (dialect == SQ_DIALECT_SQLITE && c->auto_increment) sb_puts(b, " AUTOINCREMENT");
  }
  if ((flags & SQ_CD_KEYS) && c->unique && !c->unique[0] && !c->single_pk) sb_puts(b, " UNIQUE");
  if (dialect == SQ_DIALECT_SQLITE && !(flags & SQ_CD_NOCHECK) && (rc = sq_ddl_enum_check(b, c, err))) return rc;
  if (dialect == SQ_DIALECT_SQLITE && !(flags & SQ_CD_NOCHECK) && (rc = sq_ddl_json_check(b, c, err))) return rc;
  if ((flags & SQ_CD_REF) && c->references && dialect == SQ_DIALECT_SQLITE) {
    const sq_sfk *f = c->references;
    sb_puts(b, " CONSTRAINT ");
    if ((rc = sq_ddl_ident(b, dialect, c->ref_name, err))) return rc;
    sb_puts(b, " REFERENCES ");
    if ((rc = sq_ddl_ident(b, dialect, f->ref_table, err))) return rc;
    sb_puts(b, " (");
    if ((rc = sq_ddl_ident(b, dialect, f->ref_cols && f->nref_cols > 0 ? f->ref_cols[0] : "id", err))) return rc;
    sb_puts(b, ")");
    if ((rc = fk_actions(b, f->on_delete, f->on_update, err))) return rc;
  }
  if (dialect == SQ_DIALECT_MYSQL && c->comment) {
    sb_puts(b, " COMMENT ");
    if ((rc = sq_ddl_strlit(b, dialect, c->comment, strlen(c->comment), "comment", err))) return rc;
  }
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Catalogs                                                             */
/* ------------------------------------------------------------------ */

void sq_srows_free(sq_srows *r) {
  for (int i = 0; i < r->nrows * r->ncols; i++) free(r->cells[i]);
  free(r->cells);
  memset(r, 0, sizeof *r);
}

const char *sq_srows_cell(const sq_srows *r, int row, int col) {
  return row < r->nrows && col < r->ncols ? r->cells[row * r->ncols + col] : NULL;
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* Catalog values arrive typed differently per driver (MySQL may deliver
 * information_schema text as blobs, lengths as integers): everything is
 * kept as text, which is all the plans compare. */
static int srows_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  sq_srows *r = ud;
  if (r->nrows == 0) r->ncols = ncols;
  if (ncols != r->ncols) return sq_err_set(err, SQ_EINTERNAL, "catalog row width changed");
  if (r->nrows == r->cap) {
    int cap = r->cap ? r->cap * 2 : 16;
    char **v = realloc(r->cells, (size_t)cap * (size_t)(r->ncols ? r->ncols : 1) * sizeof *v);
    if (!v) return sq_err_set(err, SQ_ENOMEM, "out of memory reading the catalog");
    r->cells = v;
    r->cap = cap;
  }
  char **row = r->cells + (size_t)r->nrows * (size_t)r->ncols;
  for (int i = 0; i < ncols; i++) row[i] = NULL;
  r->nrows++; /* counted now so sq_srows_free frees a partly copied row */
  for (int i = 0; i < ncols; i++) {
    const sq_value *v = &vals[i];
    char num[64];
    switch (v->type) {
    case SQ_VNULL: continue;
    case SQ_VINT: snprintf(num, sizeof num, "%lld", (long long)v->u.i); row[i] = dupn(num, strlen(num)); break;
    case SQ_VFLOAT: snprintf(num, sizeof num, "%.17g", v->u.f); row[i] = dupn(num, strlen(num)); break;
    case SQ_VBOOL: row[i] = dupn(v->u.b ? "1" : "0", 1); break;
    default: row[i] = dupn(v->u.s.p ? v->u.s.p : "", v->u.s.p ? v->u.s.n : 0); break;
    }
    if (!row[i]) return sq_err_set(err, SQ_ENOMEM, "out of memory reading the catalog");
  }
  return 0;
}

static int srows_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)cols;
  (void)err;
  ((sq_srows *)ud)->ncols = ncols;
  return 0;
}

int sq_ddl_catalog(sq_conn *c, const char *sql, const char *p1, const char *p2, sq_srows *out, sq_err *err) {
  sq_row_sink sink = {out, srows_columns, srows_row};
  sq_value p[2];
  int np = 0;
  if (p1) p[np++] = sq_text(p1, strlen(p1));
  if (p2) p[np++] = sq_text(p2, strlen(p2));
  sq_result res;
  return sq_conn_exec_native(c, sql, strlen(sql), p, np, &sink, &res, err);
}

static int lc(int ch) { return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch; }

int sq_ddl_name_eq(int dialect, const char *a, const char *b) {
  if (!a || !b) return 0;
  if (dialect == SQ_DIALECT_POSTGRES) return !strcmp(a, b);
  for (; *a && *b; a++, b++)
    if (lc((unsigned char)*a) != lc((unsigned char)*b)) return 0;
  return *a == *b;
}

void sq_sql_list_free(sq_sql_list *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) free(l->sql[i]);
  free(l->sql);
  l->sql = NULL;
  l->n = 0;
}
