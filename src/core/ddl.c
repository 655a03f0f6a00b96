/*
 * ddl.c - schema statements for a model: CREATE TABLE with its keys,
 * uniques, comments and indexes; DROP TABLE; and the plan that
 * Model:sync{ alter = true } runs, computed by reading the live table.
 *
 * This is the one place where SQL text carries values: a column's
 * constant DEFAULT and its COMMENT are rendered as literals, because DDL
 * takes no bound parameters. Everything else (identifiers) goes through
 * sq_quote_ident. Defaults that are computed (now, uuid, a Lua function)
 * get no database default: the binding fills them at insert, which keeps
 * the three dialects alike.
 *
 * Only sqorm.h is used: the model is read through its public accessors.
 */
#include "sqorm.h"
#include "ddl_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a quoted identifier: 63 bytes, every one doubled, two quotes. */
#define QMAX 160

/* ------------------------------------------------------------------ */
/* A growable string                                                    */
/* ------------------------------------------------------------------ */

/* Appends never fail loudly: an allocation failure sets oom and later
 * appends do nothing, so rendering code stays linear and the caller checks
 * once before taking the text. */
typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_fmt(sbuf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_reset(sbuf *b) {
  b->n = 0;
  if (b->p) b->p[0] = '\0';
}

static void sb_free(sbuf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
}

/* Appends an identifier quoted for the dialect; a name that can't be
 * quoted safely is the quoter's SQ_EUSAGE. */
static int sb_ident(sbuf *b, int dialect, const char *name, size_t len, sq_err *err) {
  char q[QMAX];
  int rc = sq_quote_ident(dialect, name, len, q, sizeof q, err);
  if (rc != SQ_OK) return rc;
  sb_puts(b, q);
  return SQ_OK;
}

static int sb_col(sbuf *b, int dialect, const sq_col *c, sq_err *err) {
  return sb_ident(b, dialect, c->name, c->name_len, err);
}

/*
 * A string literal for DDL. Quotes are doubled everywhere; MySQL also
 * treats backslash as an escape by default, so it is doubled there. On
 * PostgreSQL a literal holding a backslash is written E'...' with the
 * backslash doubled, which reads the same whatever
 * standard_conforming_strings is set to. A NUL byte can't appear in SQL
 * text at all: SQ_EUSAGE.
 */
static int sb_strlit(sbuf *b, int dialect, const char *s, size_t n, const char *what, sq_err *err) {
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

/* ------------------------------------------------------------------ */
/* Statement lists                                                      */
/* ------------------------------------------------------------------ */

void sq_sql_list_free(sq_sql_list *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) free(l->sql[i]);
  free(l->sql);
  l->sql = NULL;
  l->n = 0;
}

/* Moves the buffer's text into the list as a new statement and leaves
 * the buffer empty. SQ_ENOMEM when the buffer or the list ran out. */
static int list_push(sq_sql_list *l, sbuf *b, sq_err *err) {
  if (b->oom) return sq_err_set(err, SQ_ENOMEM, "out of memory rendering DDL");
  char *s = malloc(b->n + 1);
  char **v = realloc(l->sql, (size_t)(l->n + 1) * sizeof *v);
  if (!s || !v) {
    free(s);
    if (v) l->sql = v;
    return sq_err_set(err, SQ_ENOMEM, "out of memory rendering DDL");
  }
  memcpy(s, b->p ? b->p : "", b->n + 1);
  l->sql = v;
  l->sql[l->n++] = s;
  sb_reset(b);
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Columns                                                              */
/* ------------------------------------------------------------------ */

static int is_int_type(int t) { return t == SQ_T_INTEGER || t == SQ_T_BIGINT || t == SQ_T_SMALLINT; }

/* SQLite makes a column the rowid alias, and can AUTOINCREMENT it, only
 * when it alone is the primary key and is declared exactly "INTEGER". */
static int sqlite_rowid_col(const sq_model *m, const sq_col *c) {
  const int *pk;
  int npk = sq_model_pk(m, &pk);
  return c->primary_key && c->auto_increment && npk == 1 && sq_model_col(m, pk[0]) == c;
}

/* Checks what no dialect can render: auto-increment on a non-integer or
 * (SQLite) on anything but a single-column primary key. */
static int check_col(const sq_model *m, const sq_col *c, int dialect, sq_err *err) {
  if (c->type <= 0 || c->type >= SQ_T_COUNT)
    return sq_err_set(err, SQ_EUSAGE, "column %s: unknown type %d", c->name, c->type);
  if (c->auto_increment && !is_int_type(c->type))
    return sq_err_set(err, SQ_EUSAGE, "column %s: auto_increment needs an integer type, not %s", c->name,
                      sq_ctype_name(c->type));
  if (c->auto_increment && dialect == SQ_DIALECT_SQLITE && !sqlite_rowid_col(m, c))
    return sq_err_set(err, SQ_EUSAGE,
                      "column %s: sqlite supports auto_increment only on a single-column primary key",
                      c->name);
  return SQ_OK;
}

/*
 * The column's SQL type, without key or identity clauses. The alter plan
 * classifies this same text to know what the live type should be, so
 * what CREATE writes and what sync compares never drift apart.
 */
static void type_sql(sbuf *b, const sq_model *m, const sq_col *c, int dialect) {
  int my = dialect == SQ_DIALECT_MYSQL, pg = dialect == SQ_DIALECT_POSTGRES;
  int len = c->length;
  switch (c->type) {
  case SQ_T_INTEGER: sb_puts(b, my ? "INT" : "INTEGER"); break;
  case SQ_T_BIGINT:
    sb_puts(b, dialect == SQ_DIALECT_SQLITE && sqlite_rowid_col(m, c) ? "INTEGER" : "BIGINT");
    break;
  case SQ_T_SMALLINT:
    sb_puts(b, dialect == SQ_DIALECT_SQLITE && sqlite_rowid_col(m, c) ? "INTEGER" : "SMALLINT");
    break;
  case SQ_T_FLOAT: sb_puts(b, pg ? "REAL" : "FLOAT"); break;
  case SQ_T_DOUBLE: sb_puts(b, pg ? "DOUBLE PRECISION" : "DOUBLE"); break;
  case SQ_T_DECIMAL:
    /* SQLite: "DECIMAL TEXT" has TEXT affinity (the name holds "TEXT"),
     * so values stay the exact text sqorm writes instead of becoming
     * doubles; its first word still reads as DECIMAL(p,s) to classify
     * below and to the driver (see driver_sqlite.c). */
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
  default: break; /* check_col refused it */
  }
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
static int default_sql(sbuf *b, const sq_col *c, int dialect, sq_err *err) {
  if (c->default_kind != SQ_DEFAULT_VALUE || c->auto_increment) return SQ_OK;
  const sq_value *v = &c->default_value;
  char num[64];
  /* MySQL 8 takes a TEXT/BLOB default only as an expression; MariaDB
   * takes both forms. */
  int paren = dialect == SQ_DIALECT_MYSQL && (c->type == SQ_T_TEXT || c->type == SQ_T_BLOB);
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
    int rc = sb_strlit(b, dialect, v->u.s.p ? v->u.s.p : "", v->u.s.p ? v->u.s.n : 0, what, err);
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
static const char *fill_now_sql(const sq_col *c, int dialect) {
  int now = c->default_kind == SQ_DEFAULT_NOW || c->role == SQ_ROLE_CREATED_AT || c->role == SQ_ROLE_UPDATED_AT;
  if (c->allow_null || !now) return NULL;
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

enum {
  CD_KEYS = 1, /* inline PRIMARY KEY (sqlite/pg single key) and UNIQUE (unique = "") */
  CD_FILL = 2, /* a temporary DEFAULT for a NOT NULL now-column added to a live table */
  CD_NOPK = 4  /* no inline PRIMARY KEY: an alter adds the key on its own */
};

/*
 * One column definition. MySQL keeps its key list at table level (as
 * SHOW CREATE TABLE prints it) and takes COMMENT inline; PostgreSQL gets
 * its comments as separate COMMENT ON statements; SQLite drops them.
 * Without CD_KEYS the definition is what MySQL's MODIFY COLUMN needs:
 * every attribute but the keys, which already exist.
 */
static int col_def(sbuf *b, const sq_model *m, const sq_col *c, int dialect, int flags, sq_err *err) {
  int rc;
  const int *pk;
  int npk = sq_model_pk(m, &pk);
  int single_pk = c->primary_key && npk == 1;
  if ((rc = check_col(m, c, dialect, err))) return rc;
  if ((rc = sb_col(b, dialect, c, err))) return rc;
  sb_puts(b, " ");
  type_sql(b, m, c, dialect);
  if (dialect == SQ_DIALECT_POSTGRES && c->auto_increment) sb_puts(b, " GENERATED BY DEFAULT AS IDENTITY");
  if (!c->allow_null || c->primary_key) sb_puts(b, " NOT NULL");
  const char *fill = (flags & CD_FILL) ? fill_now_sql(c, dialect) : NULL;
  if (fill) {
    sb_puts(b, " DEFAULT ");
    sb_puts(b, fill);
  } else if ((rc = default_sql(b, c, dialect, err))) {
    return rc;
  }
  if (dialect == SQ_DIALECT_MYSQL && c->auto_increment) sb_puts(b, " AUTO_INCREMENT");
  if ((flags & CD_KEYS) && !(flags & CD_NOPK) && single_pk && dialect != SQ_DIALECT_MYSQL) {
    sb_puts(b, " PRIMARY KEY");
    if (dialect == SQ_DIALECT_SQLITE && c->auto_increment) sb_puts(b, " AUTOINCREMENT");
  }
  if ((flags & CD_KEYS) && c->unique && !c->unique[0] && !single_pk) sb_puts(b, " UNIQUE");
  if (dialect == SQ_DIALECT_MYSQL && c->comment) {
    sb_puts(b, " COMMENT ");
    if ((rc = sb_strlit(b, dialect, c->comment, strlen(c->comment), "comment", err))) return rc;
  }
  return SQ_OK;
}

/* 1 when column i is the first of the composite unique key it names
 * (unique = "name"), so the key is rendered once. */
static int first_of_group(const sq_model *m, int i) {
  const sq_col *c = sq_model_col(m, i);
  if (!c->unique || !c->unique[0]) return 0;
  for (int j = 0; j < i; j++) {
    const sq_col *o = sq_model_col(m, j);
    if (o->unique && !strcmp(o->unique, c->unique)) return 0;
  }
  return 1;
}

/* "(a, b)": the quoted columns of the unique group that column i starts. */
static int group_cols(sbuf *b, const sq_model *m, int i, int dialect, sq_err *err) {
  const char *name = sq_model_col(m, i)->unique;
  int n = sq_model_ncols(m), first = 1, rc;
  sb_puts(b, "(");
  for (int j = i; j < n; j++) {
    const sq_col *o = sq_model_col(m, j);
    if (!o->unique || strcmp(o->unique, name)) continue;
    if (!first) sb_puts(b, ", ");
    first = 0;
    if ((rc = sb_col(b, dialect, o, err))) return rc;
  }
  sb_puts(b, ")");
  return SQ_OK;
}

/* "(a, b)" for a model index. */
static int index_cols(sbuf *b, const sq_model *m, const int *cols, int ncols, int dialect, sq_err *err) {
  int rc;
  sb_puts(b, "(");
  for (int k = 0; k < ncols; k++) {
    const sq_col *c = sq_model_col(m, cols[k]);
    if (!c) return sq_err_set(err, SQ_EUSAGE, "index column %d out of range", cols[k]);
    if (k) sb_puts(b, ", ");
    if ((rc = sb_col(b, dialect, c, err))) return rc;
  }
  sb_puts(b, ")");
  return SQ_OK;
}

/* The model's inline FOREIGN KEY constraints (ddl_fk.c). */
static int fk_clauses(sbuf *b, const sq_model *m, int dialect, sq_err *err) {
  char *fks = NULL;
  int rc = sq_ddl_fk_inline(m, dialect, &fks, err);
  if (fks) sb_puts(b, fks);
  free(fks);
  return rc;
}

/*
 * CREATE TABLE for the model under the name `table` (the model's, or the
 * temporary name of a SQLite rebuild). MySQL's indexes go inside the
 * statement: CREATE INDEX IF NOT EXISTS is MariaDB-only, and inline
 * indexes let CREATE TABLE IF NOT EXISTS cover them on MySQL and TiDB too.
 */
static int table_sql(sbuf *b, const sq_model *m, const char *table, int dialect, int if_not_exists,
                     sq_err *err) {
  int rc, n = sq_model_ncols(m);
  const int *pk;
  int npk = sq_model_pk(m, &pk);
  sb_puts(b, if_not_exists ? "CREATE TABLE IF NOT EXISTS " : "CREATE TABLE ");
  if ((rc = sb_ident(b, dialect, table, strlen(table), err))) return rc;
  sb_puts(b, " (");
  for (int i = 0; i < n; i++) {
    if (i) sb_puts(b, ", ");
    if ((rc = col_def(b, m, sq_model_col(m, i), dialect, CD_KEYS, err))) return rc;
  }
  if (npk > 1 || (npk == 1 && dialect == SQ_DIALECT_MYSQL)) {
    sb_puts(b, ", PRIMARY KEY ");
    if ((rc = index_cols(b, m, pk, npk, dialect, err))) return rc;
  }
  for (int i = 0; i < n; i++) {
    if (!first_of_group(m, i)) continue;
    const char *name = sq_model_col(m, i)->unique;
    sb_puts(b, ", CONSTRAINT ");
    if ((rc = sb_ident(b, dialect, name, strlen(name), err))) return rc;
    sb_puts(b, " UNIQUE ");
    if ((rc = group_cols(b, m, i, dialect, err))) return rc;
  }
  if (dialect == SQ_DIALECT_MYSQL) {
    for (int k = 0; k < sq_model_nindexes(m); k++) {
      const char *iname;
      int unique, ncols;
      const int *cols;
      sq_model_index(m, k, &iname, &unique, &cols, &ncols);
      sb_puts(b, unique ? ", UNIQUE INDEX " : ", INDEX ");
      if ((rc = sb_ident(b, dialect, iname, strlen(iname), err))) return rc;
      sb_puts(b, " ");
      if ((rc = index_cols(b, m, cols, ncols, dialect, err))) return rc;
    }
    if ((rc = fk_clauses(b, m, dialect, err))) return rc;
    sb_puts(b, ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
  } else {
    if ((rc = fk_clauses(b, m, dialect, err))) return rc;
    sb_puts(b, ")");
  }
  return SQ_OK;
}

/* CREATE [UNIQUE] INDEX [IF NOT EXISTS] "name" ON "t" (cols). */
static int index_sql(sbuf *b, const sq_model *m, int k, int dialect, int if_not_exists, sq_err *err) {
  const char *iname, *table = sq_model_table(m);
  int unique, ncols, rc;
  const int *cols;
  sq_model_index(m, k, &iname, &unique, &cols, &ncols);
  sb_puts(b, unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  if (if_not_exists) sb_puts(b, "IF NOT EXISTS ");
  if ((rc = sb_ident(b, dialect, iname, strlen(iname), err))) return rc;
  sb_puts(b, " ON ");
  if ((rc = sb_ident(b, dialect, table, strlen(table), err))) return rc;
  sb_puts(b, " ");
  return index_cols(b, m, cols, ncols, dialect, err);
}

/* COMMENT ON COLUMN "t"."c" IS '...' (PostgreSQL). */
static int comment_sql(sbuf *b, const sq_model *m, const sq_col *c, sq_err *err) {
  const char *table = sq_model_table(m);
  int rc;
  sb_puts(b, "COMMENT ON COLUMN ");
  if ((rc = sb_ident(b, SQ_DIALECT_POSTGRES, table, strlen(table), err))) return rc;
  sb_puts(b, ".");
  if ((rc = sb_col(b, SQ_DIALECT_POSTGRES, c, err))) return rc;
  sb_puts(b, " IS ");
  return sb_strlit(b, SQ_DIALECT_POSTGRES, c->comment, strlen(c->comment), "comment", err);
}

static int check_args(const sq_model *m, int dialect, sq_sql_list *out, sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  if (!m || !out) return sq_err_set(err, SQ_EUSAGE, "DDL: no model or no output list");
  if (dialect != SQ_DIALECT_SQLITE && dialect != SQ_DIALECT_MYSQL && dialect != SQ_DIALECT_POSTGRES)
    return sq_err_set(err, SQ_EUSAGE, "DDL: unknown dialect %d", dialect);
  if (sq_model_ncols(m) < 1) return sq_err_set(err, SQ_EUSAGE, "DDL: model has no columns (not finished?)");
  return SQ_OK;
}

/*
 * The statements that create the model's table: CREATE TABLE, then on
 * PostgreSQL one COMMENT ON per commented column, then (SQLite and
 * PostgreSQL) one CREATE INDEX per model index. On failure out is empty.
 */
int sq_render_create(const sq_model *m, int dialect, int if_not_exists, sq_sql_list *out, sq_err *err) {
  int rc = check_args(m, dialect, out, err);
  if (rc) return rc;
  sbuf b = {0};
  rc = table_sql(&b, m, sq_model_table(m), dialect, if_not_exists, err);
  if (!rc) rc = list_push(out, &b, err);
  if (dialect == SQ_DIALECT_POSTGRES) {
    for (int i = 0; !rc && i < sq_model_ncols(m); i++) {
      const sq_col *c = sq_model_col(m, i);
      if (!c->comment) continue;
      rc = comment_sql(&b, m, c, err);
      if (!rc) rc = list_push(out, &b, err);
    }
  }
  if (dialect != SQ_DIALECT_MYSQL) {
    for (int k = 0; !rc && k < sq_model_nindexes(m); k++) {
      rc = index_sql(&b, m, k, dialect, if_not_exists, err);
      if (!rc) rc = list_push(out, &b, err);
    }
  }
  sb_free(&b);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* DROP TABLE [IF EXISTS] "t": its indexes go with it. */
int sq_render_drop(const sq_model *m, int dialect, int if_exists, sq_sql_list *out, sq_err *err) {
  int rc = check_args(m, dialect, out, err);
  if (rc) return rc;
  sbuf b = {0};
  const char *table = sq_model_table(m);
  sb_puts(&b, if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
  rc = sb_ident(&b, dialect, table, strlen(table), err);
  if (!rc) rc = list_push(out, &b, err);
  sb_free(&b);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Reading the live table                                               */
/* ------------------------------------------------------------------ */

/* Rows of a catalog query as owned strings (NULL for SQL NULL), row-major. */
typedef struct srows {
  int ncols;
  int nrows, cap;
  char **cells;
} srows;

static void srows_free(srows *r) {
  for (int i = 0; i < r->nrows * r->ncols; i++) free(r->cells[i]);
  free(r->cells);
  memset(r, 0, sizeof *r);
}

static const char *cell(const srows *r, int row, int col) {
  return col < r->ncols ? r->cells[row * r->ncols + col] : NULL;
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
 * kept as text, which is all the plan compares. */
static int srows_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  srows *r = ud;
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
  r->nrows++; /* counted now so srows_free frees a partly copied row */
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
  ((srows *)ud)->ncols = ncols;
  return 0;
}

static int catalog(sq_conn *c, const char *sql, const char *table, srows *out, sq_err *err) {
  sq_row_sink sink = {out, srows_columns, srows_row};
  sq_value p = sq_text(table, strlen(table));
  sq_result res;
  return sq_conn_exec_native(c, sql, strlen(sql), &p, 1, &sink, &res, err);
}

/* Type families: what "the same type" means when a server reports a
 * type in its own spelling (int(11), character varying, tinyint(1)). */
enum {
  F_OTHER = 0, F_INT, F_BIGINT, F_SMALLINT, F_TINYINT, F_BOOL, F_FLOAT, F_DOUBLE, F_DECIMAL,
  F_STRING, F_CHAR, F_TEXT, F_DATE, F_DATETIME, F_BLOB, F_UUID
};

typedef struct ltype {
  int fam;
  int a, b;       /* (a) or (a,b) from the type text; -1 when absent */
  char raw[96];   /* lower-cased text, compared for F_OTHER */
} ltype;

static int lc(int ch) { return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch; }

static int word_in(const char *w, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(w, *list)) return 1;
  return 0;
}

/*
 * Reads a type as any of the three servers reports it, or as type_sql
 * writes it: the first one or two words name the family, a parenthesised
 * (a) or (a,b) gives length or precision/scale. Unknown spellings are
 * F_OTHER and compare as text.
 */
static void classify(const char *s, ltype *t) {
  static const char *const ints[] = {"int", "integer", "int4", "mediumint", "int3", "serial", "middleint", NULL};
  static const char *const bigs[] = {"bigint", "int8", "bigserial", NULL};
  static const char *const smalls[] = {"smallint", "int2", "smallserial", NULL};
  static const char *const floats[] = {"float", "float4", "real", NULL};
  static const char *const doubles[] = {"double", "float8", NULL};
  static const char *const decs[] = {"decimal", "numeric", "dec", "fixed", NULL};
  static const char *const strs[] = {"varchar", "nvarchar", "varchar2", "nvarchar2", NULL};
  static const char *const chars[] = {"char", "character", "nchar", "bpchar", NULL};
  static const char *const texts[] = {"text", "tinytext", "mediumtext", "longtext", "clob", "ntext", NULL};
  static const char *const dts[] = {"datetime", "timestamp", "timestamptz", "datetime2", NULL};
  static const char *const blobs[] = {"blob", "tinyblob", "mediumblob", "longblob", "bytea", "binary", "varbinary", NULL};
  size_t n = 0;
  char w1[32] = "", w2[32] = "";
  memset(t, 0, sizeof *t);
  t->a = t->b = -1;
  if (!s) s = "";
  while (*s == ' ') s++;
  for (; s[n] && n + 1 < sizeof t->raw; n++) t->raw[n] = (char)lc((unsigned char)s[n]);
  t->raw[n] = '\0';
  const char *p = t->raw;
  char *w = w1;
  for (int k = 0; k < 2; k++, w = w2) {
    size_t wn = 0;
    while (*p == ' ') p++;
    while (*p && *p != ' ' && *p != '(' && wn + 1 < sizeof w1) w[wn++] = *p++;
    w[wn] = '\0';
    while (*p && *p != ' ' && *p != '(') p++;
  }
  const char *par = strchr(t->raw, '(');
  if (par) {
    char *end;
    long a = strtol(par + 1, &end, 10);
    if (end != par + 1) {
      t->a = (int)a;
      while (*end == ' ') end++;
      if (*end == ',') {
        const char *q = end + 1;
        long b = strtol(q, &end, 10);
        if (end != q) t->b = (int)b;
      }
    }
  }
  if (word_in(w1, ints)) t->fam = F_INT;
  else if (word_in(w1, bigs)) t->fam = F_BIGINT;
  else if (word_in(w1, smalls)) t->fam = F_SMALLINT;
  else if (!strcmp(w1, "tinyint") || !strcmp(w1, "int1")) t->fam = t->a == 1 ? F_BOOL : F_TINYINT;
  else if (!strcmp(w1, "bool") || !strcmp(w1, "boolean")) t->fam = F_BOOL;
  else if (!strcmp(w1, "bit") && t->a == 1) t->fam = F_BOOL;
  else if (word_in(w1, floats)) t->fam = F_FLOAT;
  else if (word_in(w1, doubles)) t->fam = F_DOUBLE;
  else if (word_in(w1, decs)) t->fam = F_DECIMAL;
  else if (word_in(w1, strs)) t->fam = F_STRING;
  else if (word_in(w1, chars)) t->fam = !strcmp(w2, "varying") ? F_STRING : F_CHAR;
  else if (word_in(w1, texts)) t->fam = F_TEXT;
  else if (!strcmp(w1, "date")) t->fam = F_DATE;
  else if (word_in(w1, dts)) t->fam = F_DATETIME;
  else if (word_in(w1, blobs)) t->fam = F_BLOB;
  else if (!strcmp(w1, "uuid")) t->fam = F_UUID;
  if (t->fam == F_DECIMAL && t->a >= 0 && t->b < 0) t->b = 0;
}

/* Same family; for strings the same length and for decimals the same
 * precision and scale, when both sides state them. */
static int same_type(const ltype *want, const ltype *have) {
  if (want->fam != have->fam) return 0;
  switch (want->fam) {
  case F_OTHER: return !strcmp(want->raw, have->raw);
  case F_STRING:
  case F_CHAR: return want->a < 0 || have->a < 0 || want->a == have->a;
  case F_DECIMAL: return want->a < 0 || have->a < 0 || (want->a == have->a && want->b == have->b);
  default: return 1;
  }
}

typedef struct lcol {
  const char *name;
  const char *type; /* as reported (for messages) */
  ltype t;
  int notnull;
  const char *dflt; /* the default as the catalog reports it; NULL: none */
  int pk;           /* part of the primary key */
  int autoinc;      /* AUTO_INCREMENT, identity or serial (not read on SQLite) */
  int used;         /* matched by a model column */
} lcol;

typedef struct lidx {
  const char *name;
  const char *sql;   /* sqlite: the CREATE INDEX text, NULL for automatic ones */
  int keep;          /* sqlite rebuild: every column it covers survives */
  int unique;
  char origin;       /* 'p' primary key, 'u' unique constraint, 'c' an index made by CREATE INDEX */
  int partial;       /* partial, expression or prefix: not a plain key over columns */
  const char **cols; /* its columns, in key order */
  int ncols;
} lidx;

/* What the plan knows about the live table; strings point into rows. */
typedef struct live {
  srows crows, irows;
  lcol *cols;
  int ncols;
  lidx *idx;
  int nidx;
} live;

static void live_free(live *l) {
  srows_free(&l->crows);
  srows_free(&l->irows);
  free(l->cols);
  for (int k = 0; k < l->nidx; k++) free(l->idx[k].cols);
  free(l->idx);
  memset(l, 0, sizeof *l);
}

/* Identifier equality as the server sees it: PostgreSQL's quoted names
 * are exact; SQLite and MySQL compare column and index names ignoring
 * ASCII case. */
static int name_eq(int dialect, const char *a, const char *b) {
  if (!a || !b) return 0;
  if (dialect == SQ_DIALECT_POSTGRES) return !strcmp(a, b);
  for (; *a && *b; a++, b++)
    if (lc((unsigned char)*a) != lc((unsigned char)*b)) return 0;
  return *a == *b;
}

/*
 * The catalog queries. Columns: name, type, not null, default, in the
 * primary key, auto-increment. Indexes, one row per (index, column) in
 * key order: name, CREATE text (SQLite), column (NULL for an
 * expression), unique, origin ('p', 'u', 'c'), partial.
 */
static const char SQL_SQLITE_COLS[] =
    "SELECT name, type, \"notnull\", dflt_value, pk > 0, 0 FROM pragma_table_info(?) ORDER BY cid";
static const char SQL_SQLITE_IDX[] =
    "SELECT il.name, m.sql, ii.name, il.\"unique\", il.origin, il.partial "
    "FROM pragma_index_list(?) AS il LEFT JOIN pragma_index_info(il.name) AS ii "
    "LEFT JOIN sqlite_master AS m ON m.type = 'index' AND m.name = il.name ORDER BY il.seq, ii.seqno";
static const char SQL_MYSQL_COLS[] =
    "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'NO', COLUMN_DEFAULT, COLUMN_KEY = 'PRI', "
    "EXTRA LIKE '%auto_increment%' FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";
static const char SQL_MYSQL_IDX[] =
    "SELECT INDEX_NAME, NULL, COLUMN_NAME, NON_UNIQUE = 0, "
    "CASE WHEN INDEX_NAME = 'PRIMARY' THEN 'p' WHEN NON_UNIQUE = 0 THEN 'u' ELSE 'c' END, "
    "COLUMN_NAME IS NULL OR SUB_PART IS NOT NULL FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX";
static const char SQL_PG_COLS[] =
    "SELECT c.column_name, CASE WHEN c.character_maximum_length IS NOT NULL "
    "THEN c.data_type || '(' || c.character_maximum_length || ')' "
    "WHEN c.data_type = 'numeric' AND c.numeric_precision IS NOT NULL "
    "THEN c.data_type || '(' || c.numeric_precision || ',' || coalesce(c.numeric_scale, 0) || ')' "
    "ELSE c.data_type END, CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END, c.column_default, "
    "CASE WHEN EXISTS (SELECT 1 FROM pg_index ix JOIN pg_attribute a ON a.attrelid = ix.indrelid "
    "AND a.attnum = ANY (ix.indkey) WHERE ix.indisprimary AND a.attname = c.column_name "
    "AND ix.indrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass) "
    "THEN 1 ELSE 0 END, "
    "CASE WHEN c.is_identity = 'YES' OR c.column_default LIKE 'nextval(%' THEN 1 ELSE 0 END "
    "FROM information_schema.columns AS c WHERE c.table_schema = current_schema() AND c.table_name = $1 "
    "ORDER BY c.ordinal_position";
static const char SQL_PG_IDX[] =
    "SELECT i.relname, NULL, a.attname, CASE WHEN ix.indisunique THEN 1 ELSE 0 END, "
    "CASE WHEN ix.indisprimary THEN 'p' WHEN EXISTS (SELECT 1 FROM pg_constraint AS con "
    "WHERE con.conindid = ix.indexrelid AND con.conrelid = t.oid AND con.contype = 'u') THEN 'u' ELSE 'c' END, "
    "CASE WHEN ix.indpred IS NOT NULL OR a.attname IS NULL THEN 1 ELSE 0 END "
    "FROM pg_index AS ix JOIN pg_class AS t ON t.oid = ix.indrelid "
    "JOIN pg_namespace AS ns ON ns.oid = t.relnamespace JOIN pg_class AS i ON i.oid = ix.indexrelid "
    "CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "LEFT JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum > 0 "
    "WHERE ns.nspname = current_schema() AND t.relname = $1 AND k.ord <= ix.indnkeyatts "
    "ORDER BY i.relname, k.ord";

static int flag(const char *s) { return s && s[0] && s[0] != '0'; }

/*
 * Reads the live table: its columns (name, type, not-null, default, key,
 * auto-increment) and its indexes with their columns, uniqueness and
 * origin. No columns means no table. On SQLite the index rows carry each
 * index's CREATE text, so a rebuild can re-create the user's own indexes
 * whose columns survive (see plan_sqlite).
 */
static int read_live(sq_conn *c, int dialect, const sq_model *m, live *l, sq_err *err) {
  const char *table = sq_model_table(m);
  const char *csql = dialect == SQ_DIALECT_SQLITE ? SQL_SQLITE_COLS
                     : dialect == SQ_DIALECT_MYSQL ? SQL_MYSQL_COLS : SQL_PG_COLS;
  const char *isql = dialect == SQ_DIALECT_SQLITE ? SQL_SQLITE_IDX
                     : dialect == SQ_DIALECT_MYSQL ? SQL_MYSQL_IDX : SQL_PG_IDX;
  int rc = catalog(c, csql, table, &l->crows, err);
  if (rc) return rc;
  if (l->crows.nrows == 0) return SQ_OK;
  if (l->crows.ncols < 6) return sq_err_set(err, SQ_EINTERNAL, "column catalog returned %d columns", l->crows.ncols);
  l->cols = calloc((size_t)l->crows.nrows, sizeof *l->cols);
  if (!l->cols) return sq_err_set(err, SQ_ENOMEM, "out of memory reading the catalog");
  for (int i = 0; i < l->crows.nrows; i++) {
    lcol *lc_ = &l->cols[l->ncols++];
    lc_->name = cell(&l->crows, i, 0);
    lc_->type = cell(&l->crows, i, 1) ? cell(&l->crows, i, 1) : "";
    lc_->notnull = flag(cell(&l->crows, i, 2));
    lc_->dflt = cell(&l->crows, i, 3);
    lc_->pk = flag(cell(&l->crows, i, 4));
    lc_->autoinc = flag(cell(&l->crows, i, 5));
    classify(lc_->type, &lc_->t);
    if (!lc_->name) return sq_err_set(err, SQ_EINTERNAL, "column catalog returned a NULL name");
  }
  if ((rc = catalog(c, isql, table, &l->irows, err))) return rc;
  if (l->irows.nrows == 0) return SQ_OK;
  if (l->irows.ncols < 6) return sq_err_set(err, SQ_EINTERNAL, "index catalog returned %d columns", l->irows.ncols);
  l->idx = calloc((size_t)l->irows.nrows, sizeof *l->idx);
  if (!l->idx) return sq_err_set(err, SQ_ENOMEM, "out of memory reading the catalog");
  /* One row per (index, column): fold them. On SQLite an index is kept
   * by a rebuild only when every column it covers stays in the model. */
  for (int i = 0; i < l->irows.nrows; i++) {
    const char *name = cell(&l->irows, i, 0);
    if (!name) continue;
    lidx *x = NULL;
    for (int k = 0; k < l->nidx; k++)
      if (!strcmp(l->idx[k].name, name)) x = &l->idx[k];
    if (!x) {
      x = &l->idx[l->nidx++];
      x->name = name;
      x->sql = cell(&l->irows, i, 1);
      x->keep = 1;
      x->unique = flag(cell(&l->irows, i, 3));
      const char *o = cell(&l->irows, i, 4);
      x->origin = o && (o[0] == 'p' || o[0] == 'u') ? o[0] : 'c';
      x->cols = calloc((size_t)l->irows.nrows, sizeof *x->cols);
      if (!x->cols) return sq_err_set(err, SQ_ENOMEM, "out of memory reading the catalog");
    }
    if (flag(cell(&l->irows, i, 5))) x->partial = 1;
    const char *col = cell(&l->irows, i, 2);
    if (!col) x->partial = 1;
    else x->cols[x->ncols++] = col;
    if (dialect == SQ_DIALECT_SQLITE) {
      int found = 0;
      for (int j = 0; col && j < sq_model_ncols(m); j++)
        if (name_eq(dialect, sq_model_col(m, j)->name, col)) found = 1;
      if (!found) x->keep = 0;
    }
  }
  return SQ_OK;
}

static int has_index(const live *l, int dialect, const char *name) {
  for (int k = 0; k < l->nidx; k++)
    if (name_eq(dialect, l->idx[k].name, name)) return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Defaults as the catalogs report them                                 */
/* ------------------------------------------------------------------ */

/* A default reduced to what it means: its kind and its text. */
enum { DV_NONE = 0, DV_STR, DV_BLOB, DV_WORD };

/*
 * Reads a default as a catalog reports it, or as default_sql writes it:
 * 'text' (MySQL and PostgreSQL E'' strings with backslash escapes),
 * X'hex' and PostgreSQL's decode('hex', 'hex'), or a bare word or number.
 * Outer parentheses and a PostgreSQL cast (::type) go; NULL is no
 * default. Returns the kind; the text (lower case for words) in out.
 */
static int dflt_norm(const char *s, int dialect, sbuf *out) {
  sb_reset(out);
  if (!s) return DV_NONE;
  size_t n = strlen(s);
  while (n && (*s == ' ' || *s == '\t')) s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  while (n >= 2 && s[0] == '(' && s[n - 1] == ')') s++, n -= 2;
  int kind = DV_STR, esc = dialect == SQ_DIALECT_MYSQL;
  if (n >= 7 && !strncmp(s, "decode(", 7)) {
    s += 7, n -= 7;
    kind = DV_BLOB;
  } else if (n >= 2 && (s[0] == 'X' || s[0] == 'x') && s[1] == '\'') {
    s++, n--;
    kind = DV_BLOB;
  } else if (n >= 2 && (s[0] == 'E' || s[0] == 'e') && s[1] == '\'') {
    s++, n--;
    esc = 1;
  }
  if (n && s[0] == '\'') {
    for (size_t i = 1; i < n; i++) {
      char ch = s[i];
      if (ch == '\'') {
        if (i + 1 < n && s[i + 1] == '\'') {
          sb_putn(out, "'", 1);
          i++;
          continue;
        }
        break; /* the closing quote: a cast or decode's tail follows */
      }
      if (ch == '\\' && esc && i + 1 < n) {
        ch = s[++i];
        switch (ch) {
        case 'n': ch = '\n'; break;
        case 't': ch = '\t'; break;
        case 'r': ch = '\r'; break;
        case '0': ch = '\0'; break;
        case 'Z': ch = 26; break;
        default: break;
        }
      }
      if (kind == DV_BLOB) ch = (char)lc((unsigned char)ch);
      sb_putn(out, &ch, 1);
    }
    return kind;
  }
  if (kind != DV_STR) return DV_WORD; /* decode( of something else: compare as words */
  size_t k = 0;
  while (k < n && !(s[k] == ':' && k + 1 < n && s[k + 1] == ':')) k++;
  while (k && s[k - 1] == ' ') k--;
  for (size_t i = 0; i < k; i++) {
    char ch = (char)lc((unsigned char)s[i]);
    sb_putn(out, &ch, 1);
  }
  if (out->p && !strcmp(out->p, "null")) return DV_NONE;
  return k ? DV_WORD : DV_NONE;
}

static int as_number(const char *s, double *d) {
  char *end;
  if (!s || !*s) return 0;
  *d = strtod(s, &end);
  return *end == '\0' && isfinite(*d);
}

/*
 * 1 when the live default differs from the model's. Both sides are
 * normalised (dflt_norm); numbers compare by value ('1.50' and 1.5, a
 * DECIMAL default, are the same), words ignoring case (TRUE, true), a
 * string and a bare word by text (MySQL 8 reports string defaults
 * unquoted). Auto-increment columns have no default to compare.
 */
static int dflt_differs(const sq_col *c, const lcol *lv, int dialect, sq_err *err, int *rc) {
  *rc = SQ_OK;
  if (c->auto_increment || lv->autoinc) return 0;
  sbuf want = {0}, a = {0}, b = {0};
  int differs = 0;
  if (c->default_kind == SQ_DEFAULT_VALUE) {
    *rc = default_sql(&want, c, dialect, err);
    if (!*rc && want.oom) *rc = sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
  }
  if (!*rc) {
    const char *w = want.p ? want.p : "";
    if (!strncmp(w, " DEFAULT ", 9)) w += 9;
    int ka = dflt_norm(*w ? w : NULL, dialect, &a);
    int kb = dflt_norm(lv->dflt, dialect, &b);
    const char *sa = a.p ? a.p : "", *sb_ = b.p ? b.p : "";
    double da, db;
    if (a.oom || b.oom) *rc = sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
    else if (ka == DV_NONE || kb == DV_NONE) differs = ka != kb;
    else if (as_number(sa, &da) && as_number(sb_, &db)) differs = da != db;
    else if (ka == DV_WORD && kb == DV_WORD) differs = strcmp(sa, sb_) != 0;
    else if (ka == DV_BLOB || kb == DV_BLOB) differs = ka != kb || strcmp(sa, sb_) != 0;
    else if (ka == DV_STR && kb == DV_STR) differs = a.n != b.n || memcmp(sa, sb_, a.n) != 0;
    else {
      /* a string and a word: the word as the catalog spelled it */
      const char *raw = kb == DV_WORD ? lv->dflt : w;
      const char *str = kb == DV_WORD ? sa : sb_;
      differs = strcmp(raw, str) != 0;
    }
  }
  sb_free(&want);
  sb_free(&a);
  sb_free(&b);
  return *rc ? 0 : differs;
}

/* ------------------------------------------------------------------ */
/* The alter plan                                                       */
/* ------------------------------------------------------------------ */

/* How each model column relates to the live table. */
enum { C_SAME = 0, C_ADD, C_CHANGE };

/* A unique key of the model: a column's unique = true, or the columns
 * sharing unique = "name". */
typedef struct mkey {
  int *cols;
  int n;
  const char *name; /* the group's name; NULL for a single column */
  int missing;      /* the live table has no unique index over these columns */
} mkey;

typedef struct diff {
  int *state;     /* per model column: C_* */
  int *live;      /* per model column: live column index or -1 */
  int *type_diff; /* per model column: 1 when the type (not only nullability) differs */
  int *ai_diff;   /* per model column: auto-increment differs (MySQL, PostgreSQL) */
  int nadd, nchange, ndrop;
  int pk_diff;    /* the live primary key is over other columns */
  int live_pk;    /* live index of the primary key's index, or -1 */
  mkey *keys;
  int nkeys, nmissing;
  int *drop_key;  /* per live index: a unique constraint the model doesn't declare */
  int ndrop_keys;
} diff;

static void diff_free(diff *d) {
  free(d->state);
  free(d->live);
  free(d->type_diff);
  free(d->ai_diff);
  for (int k = 0; k < d->nkeys; k++) free(d->keys[k].cols);
  free(d->keys);
  free(d->drop_key);
}

/* The model's unique keys, as CREATE renders them: a single-column
 * unique on the lone primary key is the key itself and is skipped. */
static int model_keys(const sq_model *m, diff *d, sq_err *err) {
  int n = sq_model_ncols(m);
  const int *pk;
  int npk = sq_model_pk(m, &pk);
  d->keys = calloc((size_t)n + 1, sizeof *d->keys);
  if (!d->keys) return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
  for (int i = 0; i < n; i++) {
    const sq_col *c = sq_model_col(m, i);
    if (!c->unique) continue;
    int single = !c->unique[0];
    if (single && c->primary_key && npk == 1) continue;
    if (!single && !first_of_group(m, i)) continue;
    mkey *k = &d->keys[d->nkeys++];
    k->cols = calloc((size_t)n, sizeof *k->cols);
    if (!k->cols) return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
    k->name = single ? NULL : c->unique;
    for (int j = i; j < n; j++) {
      const sq_col *o = sq_model_col(m, j);
      if (j == i || (!single && o->unique && !strcmp(o->unique, c->unique))) k->cols[k->n++] = j;
    }
  }
  return SQ_OK;
}

/* 1 when the live index is a plain unique key over exactly the key's
 * columns (in any order: uniqueness doesn't depend on it). */
static int key_matches(const sq_model *m, int dialect, const mkey *k, const lidx *x) {
  if (!x->unique || x->partial || x->origin == 'p' || x->ncols != k->n) return 0;
  for (int a = 0; a < k->n; a++) {
    int found = 0;
    for (int b = 0; b < x->ncols && !found; b++) found = name_eq(dialect, sq_model_col(m, k->cols[a])->name, x->cols[b]);
    if (!found) return 0;
  }
  return 1;
}

static int model_index_named(const sq_model *m, int dialect, const char *name) {
  for (int j = 0; j < sq_model_nindexes(m); j++) {
    const char *iname;
    int unique, ncols;
    const int *cols;
    sq_model_index(m, j, &iname, &unique, &cols, &ncols);
    if (name_eq(dialect, iname, name)) return 1;
  }
  return 0;
}

/*
 * Compares the primary key (as a set of columns), the unique keys (a
 * model key is present when any live unique index covers exactly its
 * columns; a live unique constraint no model key or index matches is to
 * be dropped; indexes made by CREATE INDEX on SQLite and PostgreSQL are
 * the user's and stay) after compute_diff matched the columns.
 */
static int compare_keys(const sq_model *m, int dialect, const live *l, diff *d, sq_err *err) {
  const int *pk;
  int npk = sq_model_pk(m, &pk), nlive_pk = 0;
  d->live_pk = -1;
  for (int k = 0; k < l->nidx; k++)
    if (l->idx[k].origin == 'p') d->live_pk = k;
  for (int j = 0; j < l->ncols; j++) nlive_pk += l->cols[j].pk;
  if (nlive_pk != npk) d->pk_diff = 1;
  for (int k = 0; k < npk && !d->pk_diff; k++) {
    int j = d->live[pk[k]];
    if (j < 0 || !l->cols[j].pk) d->pk_diff = 1;
  }
  int rc = model_keys(m, d, err);
  if (rc) return rc;
  for (int k = 0; k < d->nkeys; k++) {
    mkey *key = &d->keys[k];
    int found = 0;
    for (int x = 0; x < l->nidx && !found; x++) found = key_matches(m, dialect, key, &l->idx[x]);
    if (found) continue;
    key->missing = 1;
    d->nmissing++;
  }
  d->drop_key = calloc((size_t)l->nidx + 1, sizeof *d->drop_key);
  if (!d->drop_key) return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
  for (int x = 0; x < l->nidx; x++) {
    const lidx *ix = &l->idx[x];
    if (!ix->unique || ix->origin != 'u' || model_index_named(m, dialect, ix->name)) continue;
    int declared = 0;
    for (int k = 0; k < d->nkeys && !declared; k++) declared = key_matches(m, dialect, &d->keys[k], ix);
    if (declared) continue;
    d->drop_key[x] = 1;
    d->ndrop_keys++;
  }
  return SQ_OK;
}

/* Matches model columns to live ones by name and compares type family,
 * nullability, default and (MySQL, PostgreSQL) auto-increment. Primary
 * keys are never null, whatever the catalog says about an old SQLite
 * key, so their nullability isn't compared. */
static int compute_diff(const sq_model *m, int dialect, live *l, diff *d, sq_err *err) {
  int n = sq_model_ncols(m);
  memset(d, 0, sizeof *d);
  d->state = calloc((size_t)n, sizeof *d->state);
  d->live = calloc((size_t)n, sizeof *d->live);
  d->type_diff = calloc((size_t)n, sizeof *d->type_diff);
  d->ai_diff = calloc((size_t)n, sizeof *d->ai_diff);
  if (!d->state || !d->live || !d->type_diff || !d->ai_diff)
    return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
  sbuf b = {0};
  for (int i = 0; i < n; i++) {
    const sq_col *c = sq_model_col(m, i);
    int rc = check_col(m, c, dialect, err);
    if (rc) {
      sb_free(&b);
      return rc;
    }
    d->live[i] = -1;
    for (int j = 0; j < l->ncols; j++)
      if (!l->cols[j].used && name_eq(dialect, l->cols[j].name, c->name)) {
        d->live[i] = j;
        l->cols[j].used = 1;
        break;
      }
    if (d->live[i] < 0) {
      d->state[i] = C_ADD;
      d->nadd++;
      continue;
    }
    const lcol *lv = &l->cols[d->live[i]];
    ltype want;
    sb_reset(&b);
    type_sql(&b, m, c, dialect);
    if (b.oom) {
      sb_free(&b);
      return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
    }
    classify(b.p, &want);
    d->type_diff[i] = !same_type(&want, &lv->t);
    int null_diff = !c->primary_key && lv->notnull != !c->allow_null;
    d->ai_diff[i] = dialect != SQ_DIALECT_SQLITE && !c->auto_increment != !lv->autoinc;
    int dflt_diff = dflt_differs(c, lv, dialect, err, &rc);
    if (rc) {
      sb_free(&b);
      return rc;
    }
    if (d->type_diff[i] || null_diff || dflt_diff || d->ai_diff[i]) {
      d->state[i] = C_CHANGE;
      d->nchange++;
    }
  }
  sb_free(&b);
  for (int j = 0; j < l->ncols; j++)
    if (!l->cols[j].used) d->ndrop++;
  return compare_keys(m, dialect, l, d, err);
}

/*
 * A column the model no longer has is dropped only when it holds no
 * data, or when the caller said so (SQ_ALTER_DROP): a renamed column
 * looks exactly like one dropped and one added, and dropping it would
 * lose its values. Refused with SQ_EUSAGE naming the columns.
 */
static int check_drops(sq_conn *conn, const sq_model *m, int dialect, const live *l, int flags, sq_err *err) {
  if (flags & SQ_ALTER_DROP) return SQ_OK;
  const char *table = sq_model_table(m);
  char names[400];
  size_t o = 0;
  int held = 0, rc = SQ_OK;
  names[0] = '\0';
  sbuf b = {0};
  for (int j = 0; j < l->ncols && !rc; j++) {
    if (l->cols[j].used) continue;
    sb_reset(&b);
    sb_puts(&b, "SELECT 1 FROM ");
    rc = sb_ident(&b, dialect, table, strlen(table), err);
    sb_puts(&b, " WHERE ");
    if (!rc) rc = sb_ident(&b, dialect, l->cols[j].name, strlen(l->cols[j].name), err);
    sb_puts(&b, " IS NOT NULL LIMIT 1");
    if (!rc && b.oom) rc = sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
    if (rc) break;
    srows r = {0};
    sq_row_sink sink = {&r, srows_columns, srows_row};
    sq_result res;
    rc = sq_conn_exec_native(conn, b.p, b.n, NULL, 0, &sink, &res, err);
    int has = r.nrows > 0;
    srows_free(&r);
    if (rc || !has) continue;
    if (held++ < 8 && o + strlen(l->cols[j].name) + 8 < sizeof names) {
      int k = snprintf(names + o, sizeof names - o, "%s\"%.64s\"", o ? ", " : "", l->cols[j].name);
      if (k > 0) o += (size_t)k;
    }
  }
  sb_free(&b);
  if (rc) return rc;
  if (held == 1)
    return sq_err_set(err, SQ_EUSAGE,
                      "sync alter: table \"%.64s\": column %s is not in the model but holds data; "
                      "keep it in the model, or pass alter = { drop = true } (SQ_ALTER_DROP) to drop it",
                      table, names);
  if (held)
    return sq_err_set(err, SQ_EUSAGE,
                      "sync alter: table \"%.64s\": columns %s%s are not in the model but hold data; "
                      "keep them in the model, or pass alter = { drop = true } (SQ_ALTER_DROP) to drop them",
                      table, names, held > 8 ? " (and more)" : "");
  return SQ_OK;
}

/* ALTER TABLE "t" + the rest of the statement, started in b. */
static int alter_head(sbuf *b, const sq_model *m, int dialect, sq_err *err) {
  const char *table = sq_model_table(m);
  sb_puts(b, "ALTER TABLE ");
  int rc = sb_ident(b, dialect, table, strlen(table), err);
  sb_puts(b, " ");
  return rc;
}

/* A column SQLite's ALTER TABLE ADD COLUMN takes: no key, no unique and,
 * when NOT NULL, a non-null constant default. */
static int sqlite_addable(const sq_col *c) {
  if (c->primary_key || c->unique) return 0;
  if (!c->allow_null &&
      (c->default_kind != SQ_DEFAULT_VALUE || c->default_value.type == SQ_VNULL))
    return 0;
  return 1;
}

/* The temporary table of a SQLite rebuild: "<t>__sqorm_new", or a fixed
 * name when that would pass the identifier limit. */
static void rebuild_name(const char *table, char *out, size_t outn) {
  if (strlen(table) + 12 <= 63) snprintf(out, outn, "%s__sqorm_new", table);
  else snprintf(out, outn, "sqorm__rebuild_new");
}

/* CREATE INDEX for every index of the model whose name the live table
 * does not have yet (never one that exists). */
static int missing_indexes(sbuf *b, const sq_model *m, live *l, int dialect, sq_sql_list *out, sq_err *err) {
  int rc = SQ_OK;
  for (int k = 0; !rc && k < sq_model_nindexes(m); k++) {
    const char *iname;
    int unique, ncols;
    const int *cols;
    sq_model_index(m, k, &iname, &unique, &cols, &ncols);
    if (has_index(l, dialect, iname)) continue;
    rc = index_sql(b, m, k, dialect, 0, err);
    if (!rc) rc = list_push(out, b, err);
  }
  return rc;
}

/*
 * SQLite can add simple columns but can't change or (portably) drop one,
 * nor add a keyed or NOT NULL-without-default column, nor change a key
 * or a default. Then the table is rebuilt the way the SQLite manual's
 * "12 steps" describe: create the new shape under a temporary name, copy
 * the common columns (plus a fill for NOT NULL now-columns that are new)
 * and the AUTOINCREMENT counter, drop the old table, rename, and
 * re-create the indexes: the model's, and the user's own whose columns
 * all survive. The caller runs the plan inside a transaction, so a copy
 * that fails (a NULL into a NOT NULL column, duplicates under a new
 * unique key) leaves the old table as it was and no temporary table
 * behind; the leading DROP ... IF EXISTS clears a leftover from a run
 * that wasn't.
 */
static int plan_sqlite(const sq_model *m, live *l, const diff *d, sq_sql_list *out, sq_err *err) {
  const int D = SQ_DIALECT_SQLITE;
  int n = sq_model_ncols(m), rc = SQ_OK;
  int rebuild = d->nchange > 0 || d->ndrop > 0 || d->pk_diff || d->ndrop_keys > 0 || d->nmissing > 0;
  for (int i = 0; i < n && !rebuild; i++)
    if (d->state[i] == C_ADD && !sqlite_addable(sq_model_col(m, i))) rebuild = 1;
  sbuf b = {0};
  const char *table = sq_model_table(m);
  if (!rebuild) {
    for (int i = 0; !rc && i < n; i++) {
      if (d->state[i] != C_ADD) continue;
      rc = alter_head(&b, m, D, err);
      sb_puts(&b, "ADD COLUMN ");
      if (!rc) rc = col_def(&b, m, sq_model_col(m, i), D, 0, err);
      if (!rc) rc = list_push(out, &b, err);
    }
    if (!rc) rc = missing_indexes(&b, m, l, D, out, err);
    sb_free(&b);
    return rc;
  }

  char tmp[96];
  rebuild_name(table, tmp, sizeof tmp);
  sb_puts(&b, "DROP TABLE IF EXISTS ");
  rc = sb_ident(&b, D, tmp, strlen(tmp), err);
  if (!rc) rc = list_push(out, &b, err);
  if (!rc) rc = table_sql(&b, m, tmp, D, 0, err);
  if (!rc) rc = list_push(out, &b, err);
  if (!rc) {
    /* INSERT INTO tmp (cols) SELECT cols FROM t */
    sbuf sel = {0};
    int any = 0;
    sb_puts(&b, "INSERT INTO ");
    rc = sb_ident(&b, D, tmp, strlen(tmp), err);
    sb_puts(&b, " (");
    sb_puts(&sel, " SELECT ");
    for (int i = 0; !rc && i < n; i++) {
      const sq_col *c = sq_model_col(m, i);
      const char *fill = d->state[i] == C_ADD ? fill_now_sql(c, D) : NULL;
      if (d->state[i] == C_ADD && !fill) continue;
      if (any) {
        sb_puts(&b, ", ");
        sb_puts(&sel, ", ");
      }
      any = 1;
      rc = sb_col(&b, D, c, err);
      if (rc) break;
      if (fill) sb_puts(&sel, fill);
      else rc = sb_ident(&sel, D, l->cols[d->live[i]].name, strlen(l->cols[d->live[i]].name), err);
    }
    sb_puts(&sel, " FROM ");
    if (!rc) rc = sb_ident(&sel, D, table, strlen(table), err);
    sb_puts(&b, ")");
    if (sel.oom) b.oom = 1;
    else if (sel.p) sb_puts(&b, sel.p);
    sb_free(&sel);
    if (!rc && any) rc = list_push(out, &b, err);
    sb_reset(&b);
  }
  /* AUTOINCREMENT promises never to reuse an id: carry the old counter
   * over instead of the new table's max(id). */
  int autoinc = 0;
  for (int i = 0; i < n; i++)
    if (sqlite_rowid_col(m, sq_model_col(m, i))) autoinc = 1;
  if (!rc && autoinc) {
    sb_puts(&b, "DELETE FROM sqlite_sequence WHERE name = ");
    rc = sb_strlit(&b, D, tmp, strlen(tmp), "table name", err);
    if (!rc) rc = list_push(out, &b, err);
  }
  if (!rc && autoinc) {
    sb_puts(&b, "INSERT INTO sqlite_sequence (name, seq) SELECT ");
    rc = sb_strlit(&b, D, tmp, strlen(tmp), "table name", err);
    sb_puts(&b, ", seq FROM sqlite_sequence WHERE name = ");
    if (!rc) rc = sb_strlit(&b, D, table, strlen(table), "table name", err);
    if (!rc) rc = list_push(out, &b, err);
  }
  if (!rc) {
    sb_puts(&b, "DROP TABLE ");
    rc = sb_ident(&b, D, table, strlen(table), err);
    if (!rc) rc = list_push(out, &b, err);
  }
  if (!rc) {
    sb_puts(&b, "ALTER TABLE ");
    rc = sb_ident(&b, D, tmp, strlen(tmp), err);
    sb_puts(&b, " RENAME TO ");
    if (!rc) rc = sb_ident(&b, D, table, strlen(table), err);
    if (!rc) rc = list_push(out, &b, err);
  }
  for (int k = 0; !rc && k < sq_model_nindexes(m); k++) {
    rc = index_sql(&b, m, k, D, 0, err);
    if (!rc) rc = list_push(out, &b, err);
  }
  for (int k = 0; !rc && k < l->nidx; k++) {
    const lidx *x = &l->idx[k];
    if (!x->sql || !x->keep || model_index_named(m, D, x->name)) continue;
    sb_puts(&b, x->sql);
    rc = list_push(out, &b, err);
  }
  sb_free(&b);
  return rc;
}

/* ALTER TABLE "t" ALTER COLUMN "c" + what, as one statement. */
static int alter_col(sbuf *b, const sq_model *m, const sq_col *c, const char *what, sq_sql_list *out,
                     sq_err *err) {
  int rc = alter_head(b, m, SQ_DIALECT_POSTGRES, err);
  sb_puts(b, "ALTER COLUMN ");
  if (!rc) rc = sb_col(b, SQ_DIALECT_POSTGRES, c, err);
  sb_puts(b, what);
  if (!rc) rc = list_push(out, b, err);
  sb_reset(b);
  return rc;
}

static int is_intish(int fam) {
  return fam == F_INT || fam == F_BIGINT || fam == F_SMALLINT || fam == F_TINYINT || fam == F_DECIMAL;
}

/*
 * An identity added to a live PostgreSQL column: NOT NULL first (an
 * identity needs it), then the identity, whose sequence starts past the
 * largest id already there.
 */
static int pg_add_identity(sbuf *b, const sq_model *m, const sq_col *c, sq_sql_list *out, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  const char *table = sq_model_table(m);
  int rc = alter_col(b, m, c, " DROP DEFAULT", out, err);
  if (!rc) rc = alter_col(b, m, c, " SET NOT NULL", out, err);
  if (!rc) rc = alter_col(b, m, c, " ADD GENERATED BY DEFAULT AS IDENTITY", out, err);
  if (rc) return rc;
  char q[QMAX];
  if ((rc = sq_quote_ident(D, table, strlen(table), q, sizeof q, err))) return rc;
  sb_puts(b, "SELECT setval(pg_get_serial_sequence(");
  if (!rc) rc = sb_strlit(b, D, q, strlen(q), "table name", err);
  sb_puts(b, ", ");
  if (!rc) rc = sb_strlit(b, D, c->name, c->name_len, "column name", err);
  sb_puts(b, "), COALESCE(MAX(");
  if (!rc) rc = sb_col(b, D, c, err);
  sb_puts(b, "), 0) + 1, false) FROM ");
  sb_puts(b, q);
  if (!rc) rc = list_push(out, b, err);
  sb_reset(b);
  return rc;
}

/*
 * A changed PostgreSQL column gets the model's whole definition, as
 * MySQL's MODIFY and the SQLite rebuild give it: the default is dropped
 * before a type change (an old default that doesn't cast would stop it)
 * and set again after; the USING cast goes through INTEGER between
 * BOOLEAN and the other numbers, the only casts PostgreSQL has for
 * booleans. An identity is added or dropped when auto_increment
 * changed; identity columns have no default to touch.
 */
static int pg_change(sbuf *b, const sq_model *m, const sq_col *c, const lcol *lv, int type_diff, int ai_diff,
                     sq_sql_list *out, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  int rc = SQ_OK;
  sbuf def = {0};
  if (ai_diff && !c->auto_increment) rc = alter_col(b, m, c, " DROP IDENTITY IF EXISTS", out, err);
  if (!rc && !c->auto_increment) rc = default_sql(&def, c, D, err); /* " DEFAULT x" or nothing */
  if (!rc && def.oom) rc = sq_err_set(err, SQ_ENOMEM, "out of memory rendering DDL");
  if (!rc && type_diff && !c->auto_increment) rc = alter_col(b, m, c, " DROP DEFAULT", out, err);
  if (!rc && type_diff) {
    ltype want;
    sbuf ty = {0}, tail = {0};
    type_sql(&ty, m, c, D);
    classify(ty.p, &want);
    int via_int = (want.fam == F_BOOL && is_intish(lv->t.fam)) || (lv->t.fam == F_BOOL && is_intish(want.fam));
    sb_puts(&tail, " TYPE ");
    sb_puts(&tail, ty.p ? ty.p : "");
    sb_puts(&tail, " USING ");
    rc = sb_col(&tail, D, c, err);
    sb_puts(&tail, via_int ? "::INTEGER::" : "::");
    sb_puts(&tail, ty.p ? ty.p : "");
    if (!rc && (ty.oom || tail.oom)) rc = sq_err_set(err, SQ_ENOMEM, "out of memory rendering DDL");
    if (!rc) rc = alter_col(b, m, c, tail.p, out, err);
    sb_free(&ty);
    sb_free(&tail);
  }
  if (!rc && ai_diff && c->auto_increment) rc = pg_add_identity(b, m, c, out, err);
  if (!rc && def.n) {
    sbuf set = {0};
    sb_puts(&set, " SET");
    sb_puts(&set, def.p);
    if (set.oom) rc = sq_err_set(err, SQ_ENOMEM, "out of memory rendering DDL");
    else rc = alter_col(b, m, c, set.p, out, err);
    sb_free(&set);
  } else if (!rc && !type_diff && !c->auto_increment) {
    rc = alter_col(b, m, c, " DROP DEFAULT", out, err);
  }
  if (!rc && !c->primary_key && lv->notnull != !c->allow_null)
    rc = alter_col(b, m, c, c->allow_null ? " DROP NOT NULL" : " SET NOT NULL", out, err);
  sb_free(&def);
  return rc;
}

/* 1 when key k is rendered inline by an ADD COLUMN (a single-column
 * unique on a new column). */
static int key_inline(const diff *d, const mkey *k) { return !k->name && d->state[k->cols[0]] == C_ADD; }

/* "(a, b)" for a model key. */
static int key_cols_sql(sbuf *b, const sq_model *m, const mkey *k, int dialect, sq_err *err) {
  return index_cols(b, m, k->cols, k->n, dialect, err);
}

/* "UNIQUE (a)" or "CONSTRAINT g UNIQUE (a, b)" for ALTER TABLE ... ADD. */
static int add_key_sql(sbuf *b, const sq_model *m, const mkey *k, int dialect, sq_err *err) {
  int rc = SQ_OK;
  sb_puts(b, "ADD ");
  if (k->name) {
    sb_puts(b, "CONSTRAINT ");
    rc = sb_ident(b, dialect, k->name, strlen(k->name), err);
    sb_puts(b, " ");
  }
  sb_puts(b, "UNIQUE ");
  if (!rc) rc = key_cols_sql(b, m, k, dialect, err);
  return rc;
}

/*
 * MySQL alters in one ALTER TABLE statement, which the server applies
 * whole or not at all (DDL there commits and can't be rolled back): the
 * old primary key and undeclared unique keys go, columns are added
 * (a NOT NULL now-column with a temporary DEFAULT that fills existing
 * rows), changed (MODIFY COLUMN with the full definition, which also
 * keeps the COMMENT) and dropped, then the primary key, the missing
 * unique keys and indexes are added. A unique key over duplicates fails
 * the whole statement. The temporary defaults are dropped after.
 */
static int plan_mysql(const sq_model *m, live *l, const diff *d, sq_sql_list *out, sq_err *err) {
  const int D = SQ_DIALECT_MYSQL;
  int n = sq_model_ncols(m), rc = SQ_OK, any = 0;
  sbuf b = {0};
  rc = alter_head(&b, m, D, err);
#define NEXT() (sb_puts(&b, any++ ? ", " : ""))
  if (!rc && d->pk_diff && d->live_pk >= 0) {
    NEXT();
    sb_puts(&b, "DROP PRIMARY KEY");
  }
  for (int x = 0; !rc && x < l->nidx; x++) {
    if (!d->drop_key[x]) continue;
    NEXT();
    sb_puts(&b, "DROP INDEX ");
    rc = sb_ident(&b, D, l->idx[x].name, strlen(l->idx[x].name), err);
  }
  for (int i = 0; !rc && i < n; i++) {
    if (d->state[i] != C_ADD) continue;
    NEXT();
    sb_puts(&b, "ADD COLUMN ");
    rc = col_def(&b, m, sq_model_col(m, i), D, CD_KEYS | CD_FILL, err);
  }
  for (int i = 0; !rc && i < n; i++) {
    if (d->state[i] != C_CHANGE) continue;
    NEXT();
    sb_puts(&b, "MODIFY COLUMN ");
    rc = col_def(&b, m, sq_model_col(m, i), D, 0, err);
  }
  for (int j = 0; !rc && j < l->ncols; j++) {
    if (l->cols[j].used) continue;
    NEXT();
    sb_puts(&b, "DROP COLUMN ");
    rc = sb_ident(&b, D, l->cols[j].name, strlen(l->cols[j].name), err);
  }
  if (!rc && d->pk_diff) {
    const int *pk;
    int npk = sq_model_pk(m, &pk);
    NEXT();
    sb_puts(&b, "ADD PRIMARY KEY ");
    rc = index_cols(&b, m, pk, npk, D, err);
  }
  for (int k = 0; !rc && k < d->nkeys; k++) {
    if (!d->keys[k].missing || key_inline(d, &d->keys[k])) continue;
    NEXT();
    rc = add_key_sql(&b, m, &d->keys[k], D, err);
  }
  for (int k = 0; !rc && k < sq_model_nindexes(m); k++) {
    const char *iname;
    int unique, ncols;
    const int *cols;
    sq_model_index(m, k, &iname, &unique, &cols, &ncols);
    if (has_index(l, D, iname)) continue;
    NEXT();
    sb_puts(&b, unique ? "ADD UNIQUE INDEX " : "ADD INDEX ");
    rc = sb_ident(&b, D, iname, strlen(iname), err);
    sb_puts(&b, " ");
    if (!rc) rc = index_cols(&b, m, cols, ncols, D, err);
  }
#undef NEXT
  if (!rc && any) rc = list_push(out, &b, err);
  sb_reset(&b);
  for (int i = 0; !rc && i < n; i++) {
    const sq_col *c = sq_model_col(m, i);
    if (d->state[i] != C_ADD || !fill_now_sql(c, D)) continue;
    rc = alter_head(&b, m, D, err);
    sb_puts(&b, "ALTER COLUMN ");
    if (!rc) rc = sb_col(&b, D, c, err);
    sb_puts(&b, " DROP DEFAULT");
    if (!rc) rc = list_push(out, &b, err);
  }
  sb_free(&b);
  return rc;
}

/*
 * PostgreSQL alters statement by statement; the caller runs them in one
 * transaction, so a failure (a unique key over duplicates, NOT NULL over
 * NULLs) undoes them all. Order: the old primary key and undeclared
 * unique constraints go, ADD COLUMN (a NOT NULL now-column gets a
 * temporary DEFAULT so existing rows are filled, dropped right after),
 * the changed columns (TYPE ... USING, defaults, identity, SET/DROP NOT
 * NULL), DROP COLUMN, then the primary key, the missing unique keys and
 * the indexes whose names the table doesn't have yet.
 */
static int plan_pg(const sq_model *m, live *l, const diff *d, sq_sql_list *out, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  int n = sq_model_ncols(m), rc = SQ_OK;
  sbuf b = {0};
  for (int x = 0; !rc && x < l->nidx; x++) {
    if (!d->drop_key[x] && !(d->pk_diff && x == d->live_pk)) continue;
    rc = alter_head(&b, m, D, err);
    sb_puts(&b, "DROP CONSTRAINT ");
    if (!rc) rc = sb_ident(&b, D, l->idx[x].name, strlen(l->idx[x].name), err);
    if (!rc) rc = list_push(out, &b, err);
  }
  for (int i = 0; !rc && i < n; i++) {
    const sq_col *c = sq_model_col(m, i);
    if (d->state[i] != C_ADD) continue;
    rc = alter_head(&b, m, D, err);
    sb_puts(&b, "ADD COLUMN ");
    if (!rc) rc = col_def(&b, m, c, D, CD_KEYS | CD_FILL | CD_NOPK, err);
    if (!rc) rc = list_push(out, &b, err);
    if (!rc && fill_now_sql(c, D)) rc = alter_col(&b, m, c, " DROP DEFAULT", out, err);
    if (!rc && c->comment) {
      rc = comment_sql(&b, m, c, err);
      if (!rc) rc = list_push(out, &b, err);
    }
  }
  for (int i = 0; !rc && i < n; i++) {
    if (d->state[i] != C_CHANGE) continue;
    rc = pg_change(&b, m, sq_model_col(m, i), &l->cols[d->live[i]], d->type_diff[i], d->ai_diff[i], out, err);
  }
  for (int j = 0; !rc && j < l->ncols; j++) {
    if (l->cols[j].used) continue;
    rc = alter_head(&b, m, D, err);
    sb_puts(&b, "DROP COLUMN ");
    if (!rc) rc = sb_ident(&b, D, l->cols[j].name, strlen(l->cols[j].name), err);
    if (!rc) rc = list_push(out, &b, err);
  }
  if (!rc && d->pk_diff) {
    const int *pk;
    int npk = sq_model_pk(m, &pk);
    rc = alter_head(&b, m, D, err);
    sb_puts(&b, "ADD PRIMARY KEY ");
    if (!rc) rc = index_cols(&b, m, pk, npk, D, err);
    if (!rc) rc = list_push(out, &b, err);
  }
  for (int k = 0; !rc && k < d->nkeys; k++) {
    if (!d->keys[k].missing || key_inline(d, &d->keys[k])) continue;
    rc = alter_head(&b, m, D, err);
    if (!rc) rc = add_key_sql(&b, m, &d->keys[k], D, err);
    if (!rc) rc = list_push(out, &b, err);
  }
  if (!rc) rc = missing_indexes(&b, m, l, D, out, err);
  sb_free(&b);
  return rc;
}

/*
 * Model:sync{ alter = true }. Reads the live table through c, then plans:
 * no table → the CREATE statements; otherwise the per-dialect steps
 * above. An empty list means the table already matches. Refuses (with
 * nothing planned) to drop a column that holds data unless flags has
 * SQ_ALTER_DROP. Nothing is run here: the caller runs the list in order,
 * inside a transaction on SQLite and PostgreSQL, whose DDL is
 * transactional.
 */
int sq_plan_alter_ex(sq_conn *c, const sq_model *m, int flags, sq_sql_list *out, sq_err *err) {
  const sq_driver *drv = sq_conn_driver(c);
  if (!drv) {
    if (out) {
      out->sql = NULL;
      out->n = 0;
    }
    return sq_err_set(err, SQ_EUSAGE, "sq_plan_alter: no connection");
  }
  int dialect = drv->dialect;
  int rc = check_args(m, dialect, out, err);
  if (rc) return rc;
  live l;
  diff d;
  memset(&l, 0, sizeof l);
  memset(&d, 0, sizeof d);
  rc = read_live(c, dialect, m, &l, err);
  if (!rc && l.ncols == 0) {
    live_free(&l);
    return sq_render_create(m, dialect, 1, out, err);
  }
  if (!rc) rc = compute_diff(m, dialect, &l, &d, err);
  if (!rc && d.ndrop) rc = check_drops(c, m, dialect, &l, flags, err);
  if (!rc) {
    if (dialect == SQ_DIALECT_SQLITE) rc = plan_sqlite(m, &l, &d, out, err);
    else if (dialect == SQ_DIALECT_MYSQL) rc = plan_mysql(m, &l, &d, out, err);
    else rc = plan_pg(m, &l, &d, out, err);
  }
  diff_free(&d);
  live_free(&l);
  if (rc) sq_sql_list_free(out);
  return rc;
}

int sq_plan_alter(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err) {
  return sq_plan_alter_ex(c, m, 0, out, err);
}

/*
 * For ddl_fk.c: SQLite's rebuild of the live table whatever the diff
 * says, because SQLite adds a foreign key to a table only by rebuilding
 * it (table_sql writes the model's keys). Forcing nchange takes
 * plan_sqlite's rebuild branch; nothing else reads it.
 */
int sq_plan_sqlite_rebuild(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err) {
  int rc = check_args(m, SQ_DIALECT_SQLITE, out, err);
  if (rc) return rc;
  const sq_driver *drv = sq_conn_driver(c);
  if (!drv || drv->dialect != SQ_DIALECT_SQLITE)
    return sq_err_set(err, SQ_EUSAGE, "sq_plan_sqlite_rebuild: not a SQLite connection");
  live l;
  diff d;
  memset(&l, 0, sizeof l);
  memset(&d, 0, sizeof d);
  rc = read_live(c, SQ_DIALECT_SQLITE, m, &l, err);
  if (!rc && l.ncols > 0) {
    rc = compute_diff(m, SQ_DIALECT_SQLITE, &l, &d, err);
    d.nchange++;
    if (!rc) rc = plan_sqlite(m, &l, &d, out, err);
  }
  diff_free(&d);
  live_free(&l);
  if (rc) sq_sql_list_free(out);
  return rc;
}
