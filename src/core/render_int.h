/*
 * render_int.h - what render_select.c borrows from render.c: the leaf
 * comparisons of a where (a column against values, raw fragments), so
 * the two renderers write them the same way (dialect rules such as
 * exact DECIMAL comparisons on SQLite live in one place).
 */
#ifndef SQORM_RENDER_INT_H
#define SQORM_RENDER_INT_H

#include "sqorm.h"

/* A growing statement: text and parameters, owned by the renderer that
 * started it (realloc'ed by whoever appends). */
typedef struct sq_rbuf {
  char *p;
  size_t n, cap;
  sq_value *pv;
  int np, pcap;
} sq_rbuf;

/*
 * Appends one where node of model m that render.c renders (a comparison
 * of column e->col, or SQ_OP_RAW) to b, numbering placeholders after the
 * ones already in b. Columns are prefixed with qual (a quoted table alias
 * and a dot, or NULL). SQ_EUSAGE / SQ_ENOMEM with err set; b keeps what
 * was appended before (the caller discards it all on error).
 */
int sq_render_leaf(sq_rbuf *b, const sq_model *m, int dialect, const char *qual, size_t qual_n, const sq_expr *e,
                   sq_err *err);

/* The most bound values a statement may carry on a dialect. */
int sq_dialect_max_params(int dialect);

#endif
