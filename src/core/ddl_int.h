/*
 * ddl_int.h - what ddl.c and ddl_fk.c share: foreign keys inside CREATE
 * TABLE (so SQLite's table rebuild keeps them too), and the rebuild
 * itself for ddl_fk.c's alter plan (SQLite adds a key only by rebuilding).
 */
#ifndef SQORM_DDL_INT_H
#define SQORM_DDL_INT_H

#include "sqorm.h"

/* ", CONSTRAINT name FOREIGN KEY (col) REFERENCES t (col) ON DELETE ...
 * ON UPDATE ..." for each key of m that is created with its table: every
 * constrained key on SQLite, the non-deferred ones on MySQL/PostgreSQL.
 * *out is malloc'ed, or NULL when there is none. */
int sq_ddl_fk_inline(const sq_model *m, int dialect, char **out, sq_err *err);

/* sq_plan_alter's SQLite rebuild of m's live table, whatever the diff
 * (ddl.c). Empty when the table doesn't exist. */
int sq_plan_sqlite_rebuild(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err);

#endif
