/*
 * ddl_int.h - what the schema files share (ddl.c: the live table and
 * sync's difference; ddl_fk.c: foreign keys and table order; schema.c:
 * schema operations, their rendering and SQLite's rebuild; schema_sql.c:
 * column definitions and literals): a growable string, the column
 * definition every renderer writes, and the live-catalog reader.
 */
#ifndef SQORM_DDL_INT_H
#define SQORM_DDL_INT_H

#include "sqorm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a quoted identifier: 63 bytes, every one doubled, two quotes. */
#define SQ_DDL_QMAX 160

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

static inline void sb_putn(sbuf *b, const char *s, size_t n) {
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
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static inline void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline void sb_fmt(sbuf *b, const char *fmt, ...) {
  char tmp[160];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static inline void sb_reset(sbuf *b) {
  b->n = 0;
  if (b->p) b->p[0] = '\0';
}

static inline void sb_free(sbuf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
}

/* Appends an identifier quoted for the dialect; a name that can't be
 * quoted safely is the quoter's SQ_EUSAGE. */
int sq_ddl_ident(sbuf *b, int dialect, const char *name, sq_err *err);
/* A string literal for DDL (see schema_sql.c); what names the value in
 * the error when it holds a NUL byte. */
int sq_ddl_strlit(sbuf *b, int dialect, const char *s, size_t n, const char *what, sq_err *err);
/* Moves b's text into l as one statement and empties b. */
int sq_ddl_push(sq_sql_list *l, sbuf *b, sq_err *err);
/* Appends every statement of src to dst, emptying src. */
int sq_ddl_append(sq_sql_list *dst, sq_sql_list *src, sq_err *err);
int sq_ddl_nomem(sq_err *err);
int sq_ddl_valid_dialect(int d);

/* ------------------------------------------------------------------ */
/* Column definitions                                                   */
/* ------------------------------------------------------------------ */

/* What a renderer needs to know about a column: a model's column (with
 * its model's facts) and a schema operation's column both become one. */
typedef struct sq_cdef {
  const char *name;
  int type, length, precision, scale;
  int allow_null, primary_key, auto_increment;
  int single_pk;           /* the table's only primary key column */
  const char *unique;      /* NULL, "" or a group name */
  const char *comment;
  int default_kind;
  sq_value default_value;
  int now_col;             /* filled with the current time (a now() default, created_at /
                            * updated_at): a NOT NULL one added to a live table needs a fill */
  const char *const *enum_values;
  int nenum;
  const char *enum_type;   /* PostgreSQL: the enum type's name (set whenever nenum > 0) */
  const sq_sfk *references;/* a column-level foreign key (SQLite's ADD COLUMN) */
  const char *ref_name;    /* its constraint name, resolved */
  char enum_buf[64];       /* sq_ddl_cdef_from_col: the enum type's name (enum_type points here) */
} sq_cdef;

/* A model's column as a definition (an ENUM becomes STRING with its
 * values and the type name "enum_<table>_<col>"). */
void sq_ddl_cdef_from_col(const sq_model *m, const sq_col *c, sq_cdef *out);
/* SQLite's " CHECK ("c" IS NULL OR json_valid("c"))" of a JSON column. */
int sq_ddl_json_check(sbuf *b, const sq_cdef *c, sq_err *err);

/* What no dialect can render: an unknown type, auto-increment on a
 * non-integer or (SQLite) off a single-column primary key, a bad ENUM. */
int sq_ddl_check_col(const sq_cdef *c, int dialect, sq_err *err);
/* SQLite's rowid alias: the only primary key column, auto-increment. */
int sq_ddl_rowid(const sq_cdef *c);
/* The SQL type, without keys or identity (SQ_EUSAGE for an ENUM value
 * that can't be a literal). */
int sq_ddl_type_sql(sbuf *b, const sq_cdef *c, int dialect, sq_err *err);
/* " DEFAULT <literal>" for a constant default (nothing otherwise). */
int sq_ddl_default_sql(sbuf *b, const sq_cdef *c, int dialect, sq_err *err);
/* The expression a NOT NULL now-column added to a live table is filled
 * with, or NULL. */
const char *sq_ddl_fill_sql(const sq_cdef *c, int dialect);
/* SQLite's " CHECK ("c" IN ('a', 'b'))" of an ENUM column (nothing else). */
int sq_ddl_enum_check(sbuf *b, const sq_cdef *c, sq_err *err);

enum {
  SQ_CD_KEYS = 1, /* inline PRIMARY KEY (sqlite/pg single key) and UNIQUE (unique = "") */
  SQ_CD_FILL = 2, /* a temporary DEFAULT for a NOT NULL now-column added to a live table */
  SQ_CD_NOPK = 4, /* no inline PRIMARY KEY: an alter adds the key on its own */
  SQ_CD_REF = 8,  /* SQLite: the column's references as an inline REFERENCES clause */
  SQ_CD_NOCHECK = 16 /* SQLite: no ENUM CHECK (the caller appends it after other clauses) */
};
/* One column definition (see schema_sql.c). */
int sq_ddl_col_def(sbuf *b, const sq_cdef *c, int dialect, int flags, sq_err *err);

/* "name" or the default "<table>_<a>_<b>[_suffix]" shortened with a hash
 * past 63 bytes (as models and associations name indexes and keys), into
 * out (64 bytes). */
void sq_ddl_join_name(char out[64], const char *table, const char *const *cols, int ncols, const char *suffix);
/* The PostgreSQL enum type of a column: enum_type or "enum_<table>_<col>". */
void sq_ddl_enum_type_name(char out[64], const char *table, const sq_scol *c);

/* ------------------------------------------------------------------ */
/* Catalogs                                                             */
/* ------------------------------------------------------------------ */

/* Rows of a catalog query as owned strings (NULL for SQL NULL), row-major. */
typedef struct sq_srows {
  int ncols;
  int nrows, cap;
  char **cells;
} sq_srows;

void sq_srows_free(sq_srows *r);
const char *sq_srows_cell(const sq_srows *r, int row, int col);
/* Runs sql on c with up to two text parameters (NULL: not passed) and
 * keeps the rows as text. */
int sq_ddl_catalog(sq_conn *c, const char *sql, const char *p1, const char *p2, sq_srows *out, sq_err *err);
/* Identifier equality as the server sees it: exact on PostgreSQL,
 * ignoring ASCII case on SQLite and MySQL. */
int sq_ddl_name_eq(int dialect, const char *a, const char *b);

/* ------------------------------------------------------------------ */
/* Between the files                                                    */
/* ------------------------------------------------------------------ */

/* The live foreign keys of a table (ddl_fk.c): rows of (column,
 * referenced table, referenced column, constraint name or NULL, ON
 * DELETE, ON UPDATE); sq_ddl_fk_action reads an action cell (SQ_FK_*). */
int sq_ddl_live_fks(sq_conn *c, int dialect, const char *table, sq_srows *out, sq_err *err);
int sq_ddl_fk_action(const char *s);
/* 1 when the table exists (ddl_fk.c). */
int sq_ddl_table_exists(sq_conn *c, int dialect, const char *table, int *exists, sq_err *err);
/* The add_foreign_key ops for m's constrained keys that the live rows
 * (sq_ddl_live_fks) lack; only_deferred: just the deferred ones (a table
 * created by the same list). */
int sq_ddl_missing_fks(const sq_model *m, int dialect, const sq_srows *live, int only_deferred, sq_sop_list *out,
                       sq_err *err);

/* Op lists (schema.c): a new op at the end of l, zeroed; memory for its
 * parts from the list's arena. */
sq_sop *sq_sop_list_add(sq_sop_list *l, int kind, const char *table, sq_err *err);
void *sq_sop_list_alloc(sq_sop_list *l, size_t n, sq_err *err);
char *sq_sop_list_strdup(sq_sop_list *l, const char *s, sq_err *err);

/* sync's difference for one model (ddl.c), appended to out. what:
 * SQ_DIFF_TABLE the table's own ops (*created, when not NULL, is set to 1
 * when it is missing and a create_table was added), SQ_DIFF_FKS its
 * missing foreign keys (with *created set: those a create_table leaves
 * out, the deferred ones; created NULL: the table's existence is read). */
enum { SQ_DIFF_TABLE = 1, SQ_DIFF_FKS = 2 };
int sq_ddl_diff_model(sq_conn *c, const sq_model *m, int flags, int what, int *created, sq_sop_list *out,
                      sq_err *err);

#endif
