/*
 * schema_int.h - what schema.c (ops, rendering, planning) and
 * schema_sqlite.c (SQLite's native ALTERs and table rebuilds) share.
 */
#ifndef SQORM_SCHEMA_INT_H
#define SQORM_SCHEMA_INT_H

#include "ddl_int.h"

/* Checks an op's fields for a dialect (SQ_EUSAGE naming the op). */
int sq_schema_check_op(const sq_sop *op, int dialect, sq_err *err);
/* Prefixes err's message with the op ("add_column \"t\".\"c\": ..."). */
int sq_schema_op_err(const sq_sop *op, sq_err *err);

/* An op's column as a definition: the enum type and reference names are
 * resolved into the caller's buffers. */
void sq_schema_cdef(const char *table, const sq_scol *s, int single_pk, sq_cdef *c, char enum_name[64],
                    char ref_name[64]);
int sq_schema_cols_sql(sbuf *b, int dialect, const char *const *cols, int n, sq_err *err);
void sq_schema_fk_name(const char *table, const sq_sfk *f, const char *col, char out[64]);
int sq_schema_fk_sql(sbuf *b, int dialect, const char *table, const sq_sfk *f, const char *col, sq_err *err);
void sq_schema_index_name(const char *table, const sq_sindex *x, char out[64]);
int sq_schema_index_stmt(sbuf *b, int dialect, const char *table, const sq_sindex *x, int if_not_exists,
                         sq_err *err);
int sq_schema_clause(sbuf *b, int dialect, const sq_sop *op, sq_err *err);
int sq_schema_create_sql(sq_sql_list *out, int dialect, const sq_sop *op, sq_err *err);
int sq_schema_table_op(sq_sql_list *out, int dialect, const sq_sop *op, sq_err *err);

/* Copies into a list's arena. */
const char **sq_schema_names(sq_sop_list *l, const char *const *names, int n, sq_err *err);
int sq_schema_scol_from_col(sq_sop_list *l, const sq_model *m, const sq_col *c, sq_scol *out, sq_err *err);
int sq_schema_sfk_from_fk(sq_sop_list *l, const sq_model *m, const sq_fk *fk, sq_sfk *out, sq_err *err);

/*
 * A group of SQLite ops on one table (schema_sqlite.c). conn NULL: text
 * only, and a rebuild is refused. stale: earlier ops of the list changed
 * the table, so reading it now would plan from the wrong shape (refused
 * when the group needs the live table). *rebuilt (may be NULL) is set to
 * 1 when the plan rebuilds the table.
 */
int sq_lite_group(sq_conn *conn, int stale, const sq_sop *ops, int n, sq_sql_list *out, int *rebuilt, sq_err *err);
/* 1 when the SQLite group needs to read the live table. */
int sq_lite_group_needs_live(const sq_sop *ops, int n);

#endif
