/*
 * lmodel.h - shared by the model binding's files: ldefine.c (types,
 * db:define, the Model object), lfind.c (reads), lwrite.c / lbulk.c
 * (writes), lsync.c (schema), lwhere.c / lopts.c (sqorm.op values, where
 * and query options -> sq_query), linstance.c / lsave.c (instances),
 * lvalidate.c (defaults and validation), lsink.c (row sinks) and
 * lcursor.c (Model:each).
 *
 * Reads (lfind.c, lcursor.c) and writes (lwrite.c, lsave.c, lbulk.c,
 * lsync.c; lwop.h) are operations: see lop.h / lop.c for their pipeline
 * (arguments, the op built in its own arena - values converted and
 * validated there before it is built -, lsq_op_run, a continuation that
 * builds the results). The scratch below is left for work that sends
 * nothing (validation of values that did not convert).
 */
#ifndef LMODEL_H
#define LMODEL_H

#include "lsqorm.h"

#include <stddef.h>
#include <stdint.h>

#define LSQ_MODEL_MT "sqorm.Model"
#define LSQ_OP_MT "sqorm.Op"
#define LSQ_TYPE_MT "sqorm.Type"
#define LSQ_FN_MT "sqorm.Fn"
#define LSQ_CURSOR_MT "sqorm.Cursor"
#define LSQ_SCRATCH_MT "sqorm.Scratch"

/* The user values of a Model userdata. */
enum {
  MUV_DB = 1,   /* the sqorm.Db: a model keeps its db alive */
  MUV_IMT,      /* the instance metatable */
  MUV_NAMES,    /* column name -> slot (1-based column index) */
  MUV_EXTRA,    /* validators, default functions, string.find */
  MUV_CLASS,    /* user class methods (Player.top = function ...) */
  MUV_METHODS,  /* instance methods (built-ins plus the user's own) */
  MUV_COUNT = MUV_METHODS
};

/* Keys of the instance metatable (integer keys, so no name can clash).
 * IMT_STATE: weak-keyed instance -> pending state (see linstance.c).
 * IMT_ORIG: weak-keyed instance -> { [slot] = the key value the row was
 * loaded with }, for a saved instance whose key columns were changed:
 * its UPDATE, DELETE and reload address the row by those values. */
enum { IMT_MODEL = 1, IMT_COLNAMES = 2, IMT_STATE = 3, IMT_ORIG = 4 };

/* Per-column flags of lsq_model.cflags. CF_RULES: the core checks more
 * than the type (a length, min or max): a value already converted to the
 * column's type can still fail it. CF_MAXLEN: STRING(n) / CHAR(n), whose
 * text the core checks against n characters (no more bytes than that
 * always passes). CF_REQUIRED: NOT NULL and nothing fills it when an
 * insert leaves it out (the core's "cannot be null"). */
enum { CF_LUA_VALIDATE = 1, CF_DEFAULT_FN = 2, CF_PATTERN = 4, CF_RULES = 8, CF_REQUIRED = 16, CF_MAXLEN = 32,
       CF_NOT_EMPTY = 64 /* validate.not_empty: an empty value "must not be empty" */ };

/* A statement whose SQL depends only on which columns it writes: the
 * INSERT of one instance, the multi-row INSERT of a bulk_create batch,
 * or the UPDATE by primary key of p:save(). Rendered once per shape; its
 * parameters are the written values in column order, row after row
 * (then, for an UPDATE, the key values). */
enum { SHAPE_INSERT = 1, SHAPE_BULK_INSERT, SHAPE_UPDATE_PK };
typedef struct lsq_shape {
  int kind;        /* SHAPE_*, 0 = an empty slot */
  int nrows;       /* rows of an INSERT (1 otherwise) */
  uint64_t cols;   /* bit i: column i is written */
  char *sql;       /* owned */
  size_t len;
  int nparams;
  int returns_rows;
  unsigned stamp;  /* when it was stored (lsq_model.shape_clock) */
} lsq_shape;
#define LSQ_NSHAPES 8

/* The C side of a Model userdata (sqorm.Model). */
typedef struct lsq_model {
  lsq_tag tag;
  sq_model *m;            /* owned; NULL until defined, freed by __gc */
  int dialect;
  int ncols;
  int npk;
  const int *pk;          /* borrowed from m */
  int auto_col;           /* the auto-increment column, or -1 */
  int created_col, updated_col, deleted_col; /* -1 when absent */
  int version_col;        /* optimistic locking (define's version), or -1 */
  int uuid_pk;            /* a UUID primary key column, or -1 */
  unsigned char *cflags;  /* CF_* per column (owned) */
  const sq_col **cols;    /* column i (borrowed from m; the array is owned) */
  int has_lua_checks;     /* any column with Lua validators */
  int nrequired;          /* columns with CF_REQUIRED */
  int has_class;          /* user class methods were ever added (model_index) */
  /* find_by_pk(v) without options: the SQL rendered once. */
  char *pk_sql;
  size_t pk_sql_len;
  lsq_shape shapes[LSQ_NSHAPES];
  unsigned shape_clock;   /* stores so far */
  int lazy_assocs;        /* an association has lazy = "raise": finds mark what they load */
  int lazy_all;           /* finds mark every instance they load (unused: see lazy_opt) */
  int lazy_opt;           /* define(..., { lazy = }): -1 unset (the db's), 0 true, 1 "raise": the default of
                           * its associations' lazy */
  int borrowed;           /* m is not ours (a join model the core built): __gc leaves it */
  int scoped;             /* a default scope (lscope.c): the scope-aware methods merge it */
} lsq_model;

/* A scratch area for one call: the arena of the query tree, the rendered
 * SQL and DDL lists. Cached per state and reused (arena reset) when the
 * previous user finished with it. */
typedef struct lsq_scratch {
  sq_arena *arena;
  sq_sql sql;
  sq_sql_list list;
  int busy;
} lsq_scratch;

lsq_scratch *lsq_scratch_get(lua_State *L); /* pushes it */
/* Arena of the scratch (created lazily); NULL + err on out of memory. */
sq_arena *lsq_scratch_arena(lsq_scratch *s, sq_err *err);
/* Frees what the scratch holds (keeps one arena block) and marks it free. */
void lsq_scratch_done(lsq_scratch *s);
void *lsq_alloc(lsq_scratch *s, size_t n, sq_err *err);

/* Starts a method: the scratch and a query builder. */
#define QB_INIT(b, s, err, mod, name) \
  sq_err err;                         \
  sq_err_clear(&err);                 \
  lsq_scratch *s = lsq_scratch_get(L); \
  lsq_qb b = {L, mod, s, &err, name, 0, NULL}

/* ---------------------------------------------------------------- */
/* ldefine.c                                                          */
/* ---------------------------------------------------------------- */

/* 1 when two values are the same (type and value; strings by bytes). */
int lsq_same_value(const sq_value *a, const sq_value *b);
/* The model methods of each area file, registered by lsq_model_open. */
extern const luaL_Reg lsq_find_methods[], lsq_write_methods[], lsq_bulk_methods[], lsq_sync_methods[],
    lsq_sync_db_methods[], lsq_save_methods[];

/* The model at idx (raises usage when it is not one). */
lsq_model *lsq_check_model(lua_State *L, int idx);
/* Pushes the db of the model at midx and checks it is open; returns its
 * absolute stack index. */
int lsq_model_db(lua_State *L, int midx);
/* The cached statement for kind writing cols[0..n) (ascending) in nrows
 * rows, or NULL. */
const lsq_shape *lsq_shape_find(const lsq_model *mod, int kind, const int *cols, int n, int nrows);
/* Caches sql for the shape, when its parameters are exactly
 * params[0..np) (so the cache never relies on the renderer's order). */
void lsq_shape_store(lsq_model *mod, int kind, const int *cols, int n, int nrows, const sq_sql *sql,
                     const sq_value *params, int np);
/* Pushes the model userdata for mod (used inside lsq_db_run callbacks,
 * which can't see the caller's stack). */
void lsq_push_model(lua_State *L, const lsq_model *mod);
void lsq_model_open(lua_State *L, int modidx);
/* After the core appended columns to the model at midx (a foreign key of
 * an association): the C view, name map and instance column names follow,
 * cached statements are dropped. */
void lsq_model_refresh(lua_State *L, int midx);
/* Pushes a Model for m, which the db at dbidx's models own (a join model
 * built by the core); returns its index. */
int lsq_model_wrap(lua_State *L, int dbidx, sq_model *m);

/* ---------------------------------------------------------------- */
/* lwhere.c, lopts.c                                                  */
/* ---------------------------------------------------------------- */

/* An operator value (sqorm.op.*, sqorm.raw). Operands are its user
 * values 1..n. */
typedef struct lsq_opv {
  int op;   /* sq_op */
  int n;    /* operand count */
} lsq_opv;

/* A query being built from Lua tables. */
typedef struct lsq_qb {
  lua_State *L;
  const lsq_model *mod;
  lsq_scratch *scratch;
  sq_err *err;
  const char *method; /* "find_all", for messages */
  int depth;
  void *ext;          /* a read with includes / expressions (linclude.c), or NULL */
} lsq_qb;

/* Option bits for lsq_build_options. */
enum {
  QO_WHERE = 1 << 0, QO_ATTRIBUTES = 1 << 1, QO_ORDER = 1 << 2, QO_LIMIT = 1 << 3,
  QO_OFFSET = 1 << 4, QO_GROUP = 1 << 5, QO_HAVING = 1 << 6, QO_LOCK = 1 << 7,
  QO_RAW = 1 << 8, QO_PARANOID = 1 << 9, QO_ALL = 1 << 10, QO_FORCE = 1 << 11,
  QO_BY = 1 << 12, QO_DEFAULTS = 1 << 13, QO_BATCH = 1 << 14, QO_CONFLICT = 1 << 15,
  QO_FIELDS = 1 << 16,
  QO_PRIMARY = 1 << 25 /* use_primary (read replicas, lroute.c) */
};
#define QO_FIND (QO_WHERE | QO_ATTRIBUTES | QO_ORDER | QO_LIMIT | QO_OFFSET | QO_GROUP | QO_HAVING | QO_LOCK | QO_RAW | QO_PARANOID | QO_PRIMARY)

/* What lsq_build_options found besides the sq_query fields. */
typedef struct lsq_qopts {
  int raw;
  int all;        /* all = true */
  int force;
  int has_where;  /* a non-empty where was given */
  int by_idx;     /* stack index of `by`, 0 when absent */
  int defaults_idx, fields_idx, conflict_idx;
  int batch;      /* batch_size, 0 = default */
  int use_primary; /* use_primary = true: the read goes to the primary */
} lsq_qopts;

lsq_opv *lsq_test_op(lua_State *L, int idx);
/* Parses the options table at idx (0: none) into q; keys not in `allowed`
 * are an error. Does not raise (except on memory errors). */
int lsq_build_options(lsq_qb *b, int idx, unsigned allowed, sq_query *q, lsq_qopts *o);
/* Builds a where from the table/op value at idx (never NULL on success:
 * an empty where table is refused, also nested inside an operator). */
int lsq_build_where(lsq_qb *b, int idx, sq_expr **out);
/* Converts the Lua value at idx to column c's type. With an arena a, a
 * string value is copied into it: the operation owns what it will send,
 * so user Lua running before it is sent (validators, the logging
 * function, metamethods, finalisers) can't free it. With a NULL, the
 * string is borrowed from Lua or points into buf (>= 48 bytes), for a
 * caller that uses it at once. nil is an error. */
int lsq_col_value(lua_State *L, int idx, const sq_col *c, sq_value *v, char *buf, sq_arena *a, sq_err *err);
/* Copies the string of a TEXT / BLOB value into a (other values are left
 * alone). */
int lsq_own_value(sq_arena *a, sq_value *v, sq_err *err);
/* The column slot for the name at idx, or an error naming method. */
int lsq_col_index(lsq_qb *b, int idx, const char *what);
/* A list of column names (or one name) into an arena array. */
int lsq_build_cols(lsq_qb *b, int idx, const char *what, int **out, int *nout);
/* Part 2 conditions of reads (lexpr.c), used by the where builder when
 * b->ext is set: -1 when the value needs none (the part 1 node is built). */
int lsq_where_ext_col(lsq_qb *b, int c, int vidx, sq_expr **out);
int lsq_where_ext_key(lsq_qb *b, const char *k, size_t n, int vidx, sq_expr **out);
int lsq_where_ext_cond(lsq_qb *b, int idx, int op, sq_expr **out);
int lsq_is_expr(lua_State *L, int idx);
int lsq_is_subquery(lua_State *L, int idx);
/* The kind of the sqorm.fn value at idx (0 when it is none). */
int lsq_fn_kind(lua_State *L, int idx);
enum { LSQ_FN_NOW = 100, LSQ_FN_UUIDV4 };
/* sqorm.op.json(path, value_or_op): an operator of the binding only (the
 * node it builds is a comparison with a jpath, see sq_jpath). */
enum { LSQ_OP_JSON = 200 };
void lsq_where_open(lua_State *L, int modidx);

/* ---------------------------------------------------------------- */
/* linstance.c, lsave.c, lvalidate.c, lsink.c                         */
/* ---------------------------------------------------------------- */

/* Instance state (linstance.c): pending changes live outside the
 * instances, in the instance metatable's IMT_STATE table: bit 0 (new)
 * and bit s (slot s changed), or a table for models wider than
 * STATE_BITS columns. */
#define STATE_NEW 0
#define STATE_BITS 62
lsq_model *lsq_check_instance(lua_State *L, int *midx);
int lsq_push_state(lua_State *L, int iidx);
int lsq_state_has(lua_State *L, int vidx, int b);
void lsq_state_set(lua_State *L, const lsq_model *mod, int iidx, int b);
int lsq_push_orig(lua_State *L, int iidx);
void lsq_saved_cols(lua_State *L, const lsq_model *mod, int iidx, const int *cols, int n);
int lsq_set_slot(lua_State *L, const lsq_model *mod, int iidx, int slot, int vidx, int track, sq_err *err);
int lsq_slot_of(lua_State *L, int nidx, int kidx);
int lsq_no_column(lua_State *L, const lsq_model *mod, int kidx, sq_err *err);
/* Usage (err filled) when slot is the model's version column (optimistic
 * locking): the user never gives it a value. */
int lsq_version_refuse(const lsq_model *mod, int slot, sq_err *err);
void lsq_set_many(lua_State *L, int midx, lsq_model *mod, int vidx, const unsigned char *fields, int update);
/* Validation errors (lvalidate.c). */
void lsq_push_invalid(lua_State *L, const lsq_model *mod, int fields);
int lsq_raise_bad_value(lua_State *L, const lsq_model *mod, const sq_col *c, const sq_err *err);

/* How a row sink delivers what it builds. */
enum {
  SINK_LIST = 1, /* append to the table at out */
  SINK_ONE,      /* keep the first row in the slot at out */
  SINK_FETCH,    /* (cursors) push the row */
  SINK_FILL,     /* write the first row into the instance at out (RETURNING) */
  SINK_FILL_LIST /* write row k into instance out[fill_base + k] (RETURNING) */
};

/* A row sink building instances (or plain tables) in C, one value per
 * column decoded once by the model's column type. */
typedef struct lsq_isink {
  lua_State *L;
  const lsq_model *mod;
  int mode;        /* SINK_* */
  int raw;         /* plain tables keyed by column name */
  int bare;        /* arrays in slot order without a metatable (RETURNING) */
  int imt;         /* absolute index: instance metatable */
  int colnames;    /* absolute index: slot -> name (raw mode) */
  int extras;      /* absolute index: result column -> name, or 0 */
  int out;         /* absolute index: result list or slot */
  lua_Integer n;   /* rows delivered */
  int ncols;       /* result columns */
  int identity;    /* the result columns are the model's, in order */
  int names;       /* absolute index of the first of ncols column names
                    * pushed by the sink (raw mode, not SINK_FETCH), or 0 */
  lua_Integer fill_base; /* SINK_FILL_LIST */
  int hidx;        /* run by an operation: its holder's index in the current frame (lop.h);
                    * 0: on the caller's stack (the write paths' runners) */
  int across;      /* columns and rows may come in different frames (a cursor's fetches):
                    * no column names kept on the stack, extras kept by the holder */
  int aux;         /* the holder keeps the extras (OUV_AUX) */
  int *map;        /* result column -> model column, -1 = not a column */
  int mapcap;
  int small[64];
} lsq_isink;

void lsq_isink_init(lsq_isink *s, lua_State *L, const lsq_model *mod, int mode);
void lsq_isink_sink(lsq_isink *s, sq_row_sink *sink);
/* Pushes v decoded for column c (integers as integers, BOOLEAN as
 * boolean, DECIMAL as a string, ...). */
void lsq_push_colval(lua_State *L, const sq_col *c, const sq_value *v);

/* Creates the instance metatable and methods of the model at midx. */
void lsq_instance_setup(lua_State *L, int midx, lsq_model *mod);
/* Pushes a new instance of the model at midx (with imt at imtidx) whose
 * column values are set from the table at vidx (strict names, coerced);
 * is_new marks it unsaved. fields (NULL: all): a flag per column, the
 * given values of other columns are left out. A value that does not
 * convert is left out too and recorded at bad (see lsq_bad_value). Does
 * not raise on bad input: returns an error kind with err filled (an
 * unknown name, usage) and pushes nothing. */
int lsq_instance_from(lua_State *L, int midx, int imtidx, int vidx, int is_new, const unsigned char *fields, int bad,
                      sq_err *err);
/* The `fields` option (a list of column names, or one name) of the
 * options table at oidx as a flag per column, in a userdata pushed on the
 * stack (keep it there while the flags are used); NULL, with nothing
 * pushed, when not given. Raises usage when it names no column. */
const unsigned char *lsq_fields_opt(lua_State *L, const lsq_model *mod, int oidx, const char *method);
/* Checks the options table at idx (nil or none: no options) against the
 * NULL-terminated list of allowed keys; raises usage naming an unknown
 * key and the method. */
void lsq_check_opts(lua_State *L, int idx, const char *method, const char *const *allowed);
/* The model of the instance at idx, or NULL. */
lsq_model *lsq_test_instance(lua_State *L, int idx);
/* Fills defaults, timestamps and UUID keys of the instance at iidx before
 * an insert. May raise (a default function may). */
/* Applies column defaults (values, now, UUIDs, functions) to nil slots
 * of the instance at iidx. May raise (default functions may). */
void lsq_instance_defaults(lua_State *L, int midx, int iidx);
void lsq_instance_prepare_insert(lua_State *L, int midx, int iidx, const char *now);
/* Collects the non-nil slots of the instance at iidx into cols/vals
 * (coerced, strings borrowed from the instance). Returns the count, or
 * -1 with err filled. */
int lsq_instance_values(lua_State *L, const lsq_model *mod, int iidx, int *cols, sq_value *vals, sq_arena *a, sq_err *err);
/*
 * Runs the C checks and the Lua validators; on failure pushes a
 * validation error object (err.fields: name -> problem) and returns 1.
 * flags: LSQ_V_*. inst: the instance at that index (0: none), handed to
 * Lua validators. bad: the index of a table { name = problem } of values
 * that could not be converted to their column's type (see lsq_bad_value),
 * listed with the rule failures, or 0 / nil for none. vals must be owned
 * by the caller (not borrowed Lua strings): validators run Lua.
 */
enum { LSQ_V_PARTIAL = 1, /* an update: only the given columns matter */
       LSQ_V_CORE = 2     /* the C checks only, no Lua validators */ };
int lsq_validate(lua_State *L, int midx, const lsq_model *mod, const int *cols, const sq_value *vals, int n,
                 int flags, int inst, int bad);
/* Records that the value for column c failed to convert (err, of kind
 * usage, from lsq_col_value) in the table at stack index bad, which holds
 * nil until the first failure. Returns err's kind when it is not a
 * conversion failure (out of memory), else SQ_OK. */
int lsq_bad_value(lua_State *L, int bad, const sq_col *c, const sq_err *err);
/* Marks the instance at iidx as saved: not new, nothing changed. */
void lsq_instance_saved(lua_State *L, int iidx);
/* Copies the values of the bare array at aidx into the instance at iidx. */
void lsq_instance_fill(lua_State *L, const lsq_model *mod, int iidx, int aidx);
/* The current UTC time as "YYYY-MM-DD HH:MM:SS" (formatted once a second). */
void lsq_now(char buf[32]);
/* 1 when s[0..n) is the DATETIME text lsq_now last produced: canonical, so
 * it needs no parsing to be bound to a DATETIME column. */
int lsq_is_now_text(const char *s, size_t n);
/* Inserts the instance at iidx (defaults, timestamps, validation,
 * RETURNING or last_insert_id) as an INSERT operation; returns
 * lsq_op_run's results (the instance): call it as a tail return. Raises
 * on failure. bad: the
 * index of the conversion failures of its values (lsq_bad_value), listed
 * with the rule failures, or 0. */
int lsq_instance_insert(lua_State *L, int midx, int iidx, int bad);

/* ---------------------------------------------------------------- */
/* ljson.c: T.JSON values                                             */
/* ---------------------------------------------------------------- */

/* Writes the Lua value at idx into w (see ljson.c for the mapping); a
 * value with no JSON form is SQ_EUSAGE naming its path. Does not raise
 * (except on memory errors). */
int lsq_json_encode(lua_State *L, int idx, sq_json_w *w, sq_err *err);
/* The JSON text of the value at idx for column c (NULL: none named) as a
 * TEXT value: copied into a, or with a NULL kept alive by the registry
 * until the next call. Does not raise. */
int lsq_json_value(lua_State *L, int idx, const sq_col *c, sq_value *v, sq_arena *a, sq_err *err);
/* Pushes the Lua value of the JSON text s[0..n); raises usage (naming
 * colname when given) when it is not JSON sqorm can read exactly. */
void lsq_json_push(lua_State *L, const char *s, size_t n, const char *colname);
/* 1 when the value at idx is sqorm.json_null. */
int lsq_is_json_null(lua_State *L, int idx);
/* sqorm.json_null, json_array, json_object, json_encode, json_decode. */
void lsq_json_open(lua_State *L, int modidx);

/* ---------------------------------------------------------------- */
/* lcursor.c                                                          */
/* ---------------------------------------------------------------- */

int lsq_model_each(lua_State *L);
void lsq_cursor_open(lua_State *L);

/* ---------------------------------------------------------------- */
/* lscope.c: scopes                                                   */
/* ---------------------------------------------------------------- */

/* The options a scope may hold. */
enum {
  LSQ_SK_WHERE = 1 << 0, LSQ_SK_INCLUDE = 1 << 1, LSQ_SK_ATTRIBUTES = 1 << 2, LSQ_SK_ORDER = 1 << 3,
  LSQ_SK_LIMIT = 1 << 4, LSQ_SK_OFFSET = 1 << 5, LSQ_SK_GROUP = 1 << 6, LSQ_SK_HAVING = 1 << 7,
  LSQ_SK_LOCK = 1 << 8, LSQ_SK_RAW = 1 << 9, LSQ_SK_PARANOID = 1 << 10, LSQ_SK_DISTINCT = 1 << 11,
  LSQ_SK_LAZY = 1 << 12, LSQ_SK_PRIMARY = 1 << 13
};
/* Which of a scope's options each kind of method takes. */
#define LSQ_SC_FIND 0x3fffu /* find_all, find_one, find_and_count_all: all */
#define LSQ_SC_EACH (LSQ_SC_FIND & ~(unsigned)(LSQ_SK_DISTINCT | LSQ_SK_LAZY))
#define LSQ_SC_PK                                                                                             \
  ((unsigned)(LSQ_SK_WHERE | LSQ_SK_INCLUDE | LSQ_SK_ATTRIBUTES | LSQ_SK_LOCK | LSQ_SK_RAW | LSQ_SK_PARANOID | \
              LSQ_SK_LAZY | LSQ_SK_PRIMARY))
#define LSQ_SC_AGG ((unsigned)(LSQ_SK_WHERE | LSQ_SK_INCLUDE | LSQ_SK_PARANOID | LSQ_SK_PRIMARY))
#define LSQ_SC_WRITE ((unsigned)LSQ_SK_WHERE)

/*
 * The first thing a scope-aware method does (before lsq_check_model):
 * when self (at 1) is a scoped model, the model takes its place; when
 * the model has a default scope or self was scoped, the options at oidx
 * become a new table: the scope's options in mask, then the caller's
 * (where AND-ed, include merged by association name, others replaced).
 * Returns 1 when the options were replaced, 0 when they are the
 * caller's. A write (LSQ_SC_WRITE) whose call gives neither where nor
 * all = true is left alone (so it is refused as before); find_by_pk
 * (LSQ_SC_PK) refuses a where of the caller. unscoped = true in the
 * options skips every scope. Raises usage.
 */
int lsq_scope_apply(lua_State *L, int oidx, unsigned mask, const char *method);
/* core._base_model(v) -> the model behind a scoped model; any other value
 * as it is (the hooks layer keys its tables by the model). */
int lsq_scope_base(lua_State *L);
/* ANDs the default scope's where of the target model at tidx (b->mod)
 * before *where (an include of it). Does not raise. */
int lsq_scope_include_where(lsq_qb *b, int tidx, sq_expr **where);
/* *where = *where AND e (either may be NULL). */
int lsq_scope_and(sq_arena *a, sq_expr **where, sq_expr *e, sq_err *err);
/* db:define's default_scope / scopes of the options at oidx, checked
 * and kept for the model at midx (raises usage). */
void lsq_scope_define(lua_State *L, int midx, lsq_model *mod, int oidx);
extern const luaL_Reg lsq_scope_methods[]; /* Model:scope, Model:unscoped */
extern const char *const lsq_scope_opts[]; /* the define options: default_scope, scopes */
/* The sqorm.Scoped metatable (after the Model methods exist). */
void lsq_scope_open(lua_State *L);

/* Pushes a sqorm.types value of type with these parameters (ldefine.c;
 * no ENUM values). */
void lsq_type_push(lua_State *L, int type, int length, int precision, int scale);
void lsq_type_push_enum(lua_State *L, const char *const *vals, int n);
int lsq_type_get(lua_State *L, int idx, int *length, int *precision, int *scale, const char *const **enumv,
                 int *nenum);

/* sqorm.types (ltypes.c): registers the table in the module at modidx;
 * the type value at idx into d (raises when it is none). */
void lsq_types_open(lua_State *L, int modidx);
void lsq_coldef_type(lua_State *L, int idx, sq_coldef *d);

#endif
