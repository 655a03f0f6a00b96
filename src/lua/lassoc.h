/*
 * lassoc.h - associations, includes and expressions in the binding:
 * lassoc.c (definitions, the not-loaded guard, lazy marks), linclude.c
 * (options of reads with includes and expressions into an sq_select, the
 * include sink), lexpr.c (sqorm.fn.<name>, sqorm.col, operands).
 */
#ifndef LASSOC_H
#define LASSOC_H

#include "lop.h"

/* lassoc.c */
extern const luaL_Reg lsq_assoc_methods[];
void lsq_assoc_open(lua_State *L, int modidx);
int lsq_assoc_table(lua_State *L, int midx);
int lsq_assoc_info(lua_State *L, int midx, const char *as);
/* The to-one association as of the instance at oidx was loaded as nil. */
void lsq_assoc_mark_nil(lua_State *L, int oidx, const char *as);
/* The instance at oidx was loaded under lazy = "raise" (how: 1 every
 * association, 2 those defined with lazy = "raise"). */
void lsq_assoc_mark_raise(lua_State *L, int oidx, int how);

/* linclude.c: one node of an include tree as the sink sees it. */
typedef struct lsq_incnode {
  sq_include *inc;        /* NULL for the root */
  const lsq_model *mod;   /* the model its rows are of */
  int parent;             /* index of the parent node, -1 for the root */
  int to_many;
  int many_kids;          /* has to-many kids: its objects are kept per row */
  const char *as;         /* the association name (NULL for the root) */
} lsq_incnode;

typedef struct lsq_incsink {
  lsq_incnode *nodes;
  int nnodes, capnodes;
  int mode;               /* SINK_LIST or SINK_ONE */
  int raw;
  int mark;               /* lazy mark for every object, 0 none */
  lua_Integer n;          /* main rows */
  int64_t *setrows;       /* rows seen per set */
  int capsets;
  /* per statement (set by columns) */
  int set;
  int base;               /* the node of the statement's base model */
  int ncols;
  int *colnode;           /* result column -> node, -1 skipped */
  int *colcol;            /* result column -> model column, -1 extra */
  int capcols;
  int names;              /* stack index: result column names (extras, raw) */
  int state;              /* stack index: the state table */
  int *node_imt;          /* stack index per node: instance metatable (0 raw) */
  int *node_cn;           /* stack index per node: slot -> name */
  int *node_objs;         /* stack index per node: row -> object (many_kids) */
  int *node_dedup;        /* stack index per node: key -> object (to-one) */
  int *node_pk;           /* per node: the result column of its key, -1 */
  int *node_inset;        /* per node: 1 when in this statement */
  int *obj;               /* per node: stack index of this row's object (0 nil) */
  int *fresh;             /* per node: the object was made by this row */
  int *node_as;           /* stack index per node: its association name (0 for the root) */
  int *node_nhash;        /* per node: its kids (the hash part its objects get at once) */
  int parent_objs;        /* stack index: row -> object of the base's parent (child sets), 0 */
} lsq_incsink;

int lsq_incsink_columns(lsq_op *h, int set, int ncols, const sq_column *cols, sq_err *err);
int lsq_incsink_row(lsq_op *h, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err);

/* Options of reads beyond lopts.c's (bits next to QO_*). */
enum { SO_INCLUDE = 1 << 20, SO_DISTINCT = 1 << 21, SO_LAZY = 1 << 22, SO_UNSCOPED = 1 << 23, SO_COL = 1 << 24 };

/* A read being built (in the op's arena: the sink reads it in the
 * continuation). */
typedef struct lsq_sel {
  sq_select s;
  sq_arena *arena;
  lsq_incsink sink;       /* nodes: [0] the root, then the includes in pre-order */
  int lazy;               /* lazy = "raise" */
  int unscoped;           /* accepted for scopes (issue 12) */
  int use_primary;        /* use_primary = true: the read goes to the primary (lroute.c) */
} lsq_sel;

void lsq_sel_init(lsq_sel *x, sq_arena *a, int kind, const lsq_model *mod);
/* Parses the options table at idx (0: none) into x (allowed: QO_* and
 * SO_* bits). The model is at stack index 1. Sets b->ext = x. */
int lsq_build_select(lsq_sel *x, lsq_qb *b, int idx, unsigned allowed);
/* A name in order / group / having / col: a column, an attribute alias,
 * or "assoc.column" of a joined to-one include. */
int lsq_sel_name(lsq_sel *x, lsq_qb *b, const char *k, size_t n, sq_operand *out, const char *what);

/* The same read as a part 1 sq_query, when it can be one (no includes,
 * expressions or part 2 conditions): rendered by sq_render, so its SQL
 * stays what it was (SQLite's exact DECIMAL functions and collation,
 * MySQL's DECIMAL casts). 0 when it can't. */
int lsq_sel_query(const lsq_sel *x, sq_query *q);

/* lexpr.c */
int lsq_is_expr(lua_State *L, int idx);
/* The operand for the value at idx: a column name (string), sqorm.col,
 * a sqorm.fn call; with values, numbers, booleans and strings are bound
 * values (a string names a column otherwise). */
int lsq_operand(lsq_sel *x, lsq_qb *b, int idx, sq_operand *out, const char *what, int values);
/* One item of attributes. */
int lsq_attr(lsq_sel *x, lsq_qb *b, int idx, sq_xattr *out);
void lsq_expr_open(lua_State *L, int modidx);
extern const luaL_Reg lsq_expr_methods[]; /* Model:subquery */

#endif
