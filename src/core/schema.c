/*
 * schema.c - schema operations: plain data describing a change (create,
 * drop, rename a table; add, remove, rename, change a column; indexes,
 * unique keys, the primary key, foreign keys, enum values), rendered per
 * dialect here and nowhere else.
 *
 *   sq_schema_render   text only, for any dialect
 *   sq_schema_plan     text for the server behind a connection: SQLite's
 *                      rebuilds need the live table
 *   sq_schema_apply    plan and run, op by op
 *
 * Ops are rendered in groups: a run of consecutive ops on one table that
 * ALTER TABLE can take together. A MySQL group becomes one ALTER TABLE
 * with SQ_SCHEMA_ONE_ALTER; a SQLite group with anything SQLite's ALTER
 * can't do becomes one table rebuild (schema_sqlite.c).
 */
#include "internal.h"
#include "ddl_int.h"
#include "schema_int.h"

/* ------------------------------------------------------------------ */
/* Ops and lists                                                        */
/* ------------------------------------------------------------------ */

static const char *const KIND_NAMES[SQ_SOP_COUNT] = {
    [SQ_SOP_CREATE_TABLE] = "create_table",
    [SQ_SOP_DROP_TABLE] = "drop_table",
    [SQ_SOP_RENAME_TABLE] = "rename_table",
    [SQ_SOP_ADD_COLUMN] = "add_column",
    [SQ_SOP_REMOVE_COLUMN] = "remove_column",
    [SQ_SOP_RENAME_COLUMN] = "rename_column",
    [SQ_SOP_CHANGE_COLUMN] = "change_column",
    [SQ_SOP_ADD_INDEX] = "add_index",
    [SQ_SOP_REMOVE_INDEX] = "remove_index",
    [SQ_SOP_ADD_UNIQUE] = "add_unique",
    [SQ_SOP_REMOVE_UNIQUE] = "remove_unique",
    [SQ_SOP_ADD_PRIMARY_KEY] = "add_primary_key",
    [SQ_SOP_DROP_PRIMARY_KEY] = "drop_primary_key",
    [SQ_SOP_ADD_FOREIGN_KEY] = "add_foreign_key",
    [SQ_SOP_REMOVE_FOREIGN_KEY] = "remove_foreign_key",
    [SQ_SOP_ADD_ENUM_VALUES] = "add_enum_values",
    [SQ_SOP_NOTE] = "note",
};

const char *sq_sop_kind_name(int kind) { return kind > 0 && kind < SQ_SOP_COUNT ? KIND_NAMES[kind] : NULL; }

void sq_sop_init(sq_sop *op, int kind, const char *table) {
  memset(op, 0, sizeof *op);
  op->kind = kind;
  op->table = table;
}

void sq_scol_init(sq_scol *c, const char *name, int type) {
  memset(c, 0, sizeof *c);
  c->name = name;
  c->type = type;
  c->allow_null = 1;
}

void sq_sop_list_free(sq_sop_list *l) {
  if (!l) return;
  if (l->arena_) sq_arena_free(l->arena_);
  free(l->ops);
  memset(l, 0, sizeof *l);
}

void *sq_sop_list_alloc(sq_sop_list *l, size_t n, sq_err *err) {
  if (!l->arena_ && !(l->arena_ = sq_arena_new())) {
    sq_ddl_nomem(err);
    return NULL;
  }
  void *p = sq_arena_alloc(l->arena_, n ? n : 1);
  if (!p) {
    sq_ddl_nomem(err);
    return NULL;
  }
  memset(p, 0, n ? n : 1);
  return p;
}

char *sq_sop_list_strdup(sq_sop_list *l, const char *s, sq_err *err) {
  if (!s) return NULL;
  size_t n = strlen(s);
  char *d = sq_sop_list_alloc(l, n + 1, err);
  if (d) memcpy(d, s, n + 1);
  return d;
}

sq_sop *sq_sop_list_add(sq_sop_list *l, int kind, const char *table, sq_err *err) {
  if (l->n == l->cap_) {
    int cap = l->cap_ ? l->cap_ * 2 : 8;
    sq_sop *v = realloc(l->ops, sizeof *v * (size_t)cap);
    if (!v) {
      sq_ddl_nomem(err);
      return NULL;
    }
    l->ops = v;
    l->cap_ = cap;
  }
  char *t = NULL;
  if (table && !(t = sq_sop_list_strdup(l, table, err))) return NULL;
  sq_sop *op = &l->ops[l->n++];
  sq_sop_init(op, kind, t);
  return op;
}

/* A copy of a value into the list (strings and blobs too). */
static int copy_value(sq_sop_list *l, const sq_value *v, sq_value *out, sq_err *err) {
  *out = *v;
  if ((v->type == SQ_VTEXT || v->type == SQ_VBLOB) && v->u.s.p) {
    char *p = sq_sop_list_alloc(l, v->u.s.n + 1, err);
    if (!p) return SQ_ENOMEM;
    memcpy(p, v->u.s.p, v->u.s.n);
    out->u.s.p = p;
  }
  return SQ_OK;
}

const char **sq_schema_names(sq_sop_list *l, const char *const *names, int n, sq_err *err) {
  const char **v = sq_sop_list_alloc(l, sizeof *v * (size_t)(n > 0 ? n : 1), err);
  if (!v) return NULL;
  for (int i = 0; i < n; i++)
    if (names[i] && !(v[i] = sq_sop_list_strdup(l, names[i], err))) return NULL;
  return v;
}

int sq_schema_scol_from_col(sq_sop_list *l, const sq_model *m, const sq_col *c, sq_scol *out, sq_err *err) {
  (void)m;
  sq_scol_init(out, NULL, c->type == SQ_T_ENUM ? SQ_T_STRING : c->type);
  if (!(out->name = sq_sop_list_strdup(l, c->name, err))) return SQ_ENOMEM;
  if (c->type == SQ_T_ENUM) {
    /* schema ops spell an ENUM as STRING with its values */
    if (!(out->enum_values = sq_schema_names(l, (const char *const *)c->enum_values, c->nenum, err))) return SQ_ENOMEM;
    out->nenum_values = c->nenum;
  }
  out->length = c->length;
  out->precision = c->precision;
  out->scale = c->scale;
  out->allow_null = c->allow_null;
  out->primary_key = c->primary_key;
  out->auto_increment = c->auto_increment;
  if (c->unique && !(out->unique = sq_sop_list_strdup(l, c->unique, err))) return SQ_ENOMEM;
  if (c->comment && !(out->comment = sq_sop_list_strdup(l, c->comment, err))) return SQ_ENOMEM;
  if (c->default_kind == SQ_DEFAULT_VALUE) {
    out->default_kind = SQ_DEFAULT_VALUE;
    if (copy_value(l, &c->default_value, &out->default_value, err)) return SQ_ENOMEM;
  }
  out->fill_now = c->default_kind == SQ_DEFAULT_NOW || c->role == SQ_ROLE_CREATED_AT || c->role == SQ_ROLE_UPDATED_AT;
  return SQ_OK;
}

int sq_schema_sfk_from_fk(sq_sop_list *l, const sq_model *m, const sq_fk *fk, sq_sfk *out, sq_err *err) {
  int del, upd, cons;
  sq_fk_actions(m, fk, &del, &upd, &cons);
  const sq_col *c = sq_model_col(m, fk->col), *t = sq_model_col(fk->target, fk->target_col);
  if (!c || !t) return sq_err_set(err, SQ_EUSAGE, "foreign key %s: column out of range", fk->name);
  memset(out, 0, sizeof *out);
  const char *cn = c->name, *tn = t->name;
  if (!(out->name = sq_sop_list_strdup(l, fk->name, err))) return SQ_ENOMEM;
  if (!(out->cols = sq_schema_names(l, &cn, 1, err))) return SQ_ENOMEM;
  out->ncols = 1;
  if (!(out->ref_table = sq_sop_list_strdup(l, sq_model_table(fk->target), err))) return SQ_ENOMEM;
  if (!(out->ref_cols = sq_schema_names(l, &tn, 1, err))) return SQ_ENOMEM;
  out->nref_cols = 1;
  out->on_delete = del;
  out->on_update = upd;
  out->deferred = cons == SQ_CONSTRAINTS_DEFERRED;
  return SQ_OK;
}

int sq_sop_from_model(const sq_model *m, sq_sop_list *out, sq_err *err) {
  if (!m || !out) return sq_err_set(err, SQ_EUSAGE, "sq_sop_from_model: no model or no list");
  int n = sq_model_ncols(m);
  if (n < 1) return sq_err_set(err, SQ_EUSAGE, "DDL: model has no columns (not finished?)");
  sq_sop *op = sq_sop_list_add(out, SQ_SOP_CREATE_TABLE, sq_model_table(m), err);
  if (!op) return SQ_ENOMEM;
  sq_scol *cols = sq_sop_list_alloc(out, sizeof *cols * (size_t)n, err);
  if (!cols) return SQ_ENOMEM;
  for (int i = 0; i < n; i++) {
    int rc = sq_schema_scol_from_col(out, m, sq_model_col(m, i), &cols[i], err);
    if (rc) return rc;
    cols[i].fill_now = 0; /* only an add to a live table fills */
  }
  op->cols = cols;
  op->ncols = n;
  int nx = sq_model_nindexes(m);
  sq_sindex *ix = sq_sop_list_alloc(out, sizeof *ix * (size_t)(nx ? nx : 1), err);
  if (!ix) return SQ_ENOMEM;
  for (int k = 0; k < nx; k++) {
    const char *name;
    int unique, nc;
    const int *ci;
    sq_model_index(m, k, &name, &unique, &ci, &nc);
    const char **names = sq_sop_list_alloc(out, sizeof *names * (size_t)(nc ? nc : 1), err);
    if (!names) return SQ_ENOMEM;
    for (int j = 0; j < nc; j++) {
      const sq_col *c = sq_model_col(m, ci[j]);
      if (!c) return sq_err_set(err, SQ_EUSAGE, "index column %d out of range", ci[j]);
      names[j] = cols[ci[j]].name;
    }
    if (!(ix[k].name = sq_sop_list_strdup(out, name, err))) return SQ_ENOMEM;
    ix[k].cols = names;
    ix[k].ncols = nc;
    ix[k].unique = unique;
  }
  op->indexes = ix;
  op->nindexes = nx;
  int nf = sq_model_nfks(m), k = 0;
  sq_sfk *fks = sq_sop_list_alloc(out, sizeof *fks * (size_t)(nf ? nf : 1), err);
  if (!fks) return SQ_ENOMEM;
  for (int i = 0; i < nf; i++) {
    const sq_fk *fk = sq_model_fk(m, i);
    int cons;
    sq_fk_actions(m, fk, NULL, NULL, &cons);
    if (cons == SQ_CONSTRAINTS_OFF) continue;
    int rc = sq_schema_sfk_from_fk(out, m, fk, &fks[k++], err);
    if (rc) return rc;
  }
  op->fks = fks;
  op->nfks = k;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Checking an op                                                       */
/* ------------------------------------------------------------------ */

/* Prefixes err's message with the op it is about. */
int sq_schema_op_err(const sq_sop *op, sq_err *err) {
  char msg[sizeof err->msg], head[200];
  const char *k = sq_sop_kind_name(op->kind);
  memcpy(msg, err->msg, sizeof msg);
  msg[sizeof msg - 1] = '\0';
  if (op->table && op->name)
    snprintf(head, sizeof head, "%s \"%.64s\".\"%.64s\": ", k ? k : "schema op", op->table, op->name);
  else if (op->table)
    snprintf(head, sizeof head, "%s \"%.64s\": ", k ? k : "schema op", op->table);
  else
    snprintf(head, sizeof head, "%s: ", k ? k : "schema op");
  size_t h = strlen(head);
  memcpy(err->msg, head, h);
  size_t room = sizeof err->msg - 1 - h, n = strlen(msg);
  if (n > room) n = room;
  memcpy(err->msg + h, msg, n);
  err->msg[h + n] = '\0';
  return err->kind;
}

static int bad(const sq_sop *op, sq_err *err, const char *what) {
  sq_err_set(err, SQ_EUSAGE, "%s", what);
  return sq_schema_op_err(op, err);
}

static int check_names(const char *const *v, int n) {
  if (n < 1 || !v) return 0;
  for (int i = 0; i < n; i++)
    if (!v[i]) return 0;
  return 1;
}

static int check_fk(const sq_sfk *f, int column_ref) {
  if (!f || !f->ref_table) return 0;
  if (!column_ref && !check_names(f->cols, f->ncols)) return 0;
  int n = column_ref ? 1 : f->ncols;
  if (f->ref_cols && (!check_names(f->ref_cols, f->nref_cols) || f->nref_cols != n)) return 0;
  if (!f->ref_cols && n != 1) return 0;
  return 1;
}

int sq_schema_check_op(const sq_sop *op, int dialect, sq_err *err) {
  if (!op) return sq_err_set(err, SQ_EUSAGE, "schema op: NULL");
  if (op->kind <= 0 || op->kind >= SQ_SOP_COUNT) return sq_err_set(err, SQ_EUSAGE, "schema op: unknown kind %d", op->kind);
  if (op->kind == SQ_SOP_NOTE) return SQ_OK;
  if (!op->table || !op->table[0]) return bad(op, err, "no table");
  switch (op->kind) {
  case SQ_SOP_CREATE_TABLE:
    if (!op->cols || op->ncols < 1) return bad(op, err, "no columns");
    for (int i = 0; i < op->ncols; i++)
      if (!op->cols[i].name) return bad(op, err, "a column has no name");
      else if (op->cols[i].references && !check_fk(op->cols[i].references, 1))
        return bad(op, err, "a column's references needs ref_table (and one ref column)");
    for (int i = 0; i < op->nindexes; i++)
      if (!op->indexes || !check_names(op->indexes[i].cols, op->indexes[i].ncols))
        return bad(op, err, "an index has no columns");
    for (int i = 0; i < op->nfks; i++)
      if (!op->fks || !check_fk(&op->fks[i], 0))
        return bad(op, err, "a foreign key needs columns, ref_table and as many ref_cols");
    return SQ_OK;
  case SQ_SOP_DROP_TABLE: return SQ_OK;
  case SQ_SOP_RENAME_TABLE: return op->new_name ? SQ_OK : bad(op, err, "no new_name");
  case SQ_SOP_ADD_COLUMN:
    if (!op->col || !op->col->name) return bad(op, err, "no column definition (col)");
    if (op->col->references && !check_fk(op->col->references, 1))
      return bad(op, err, "references needs ref_table (and one ref column)");
    return SQ_OK;
  case SQ_SOP_REMOVE_COLUMN: return op->name ? SQ_OK : bad(op, err, "no column name");
  case SQ_SOP_RENAME_COLUMN: return op->name && op->new_name ? SQ_OK : bad(op, err, "needs name and new_name");
  case SQ_SOP_CHANGE_COLUMN:
    if (!op->col) return bad(op, err, "no column definition (col)");
    if (!op->name && !op->col->name) return bad(op, err, "no column name");
    if (op->name && op->col->name && strcmp(op->name, op->col->name))
      return bad(op, err, "col names another column (rename it with rename_column)");
    return SQ_OK;
  case SQ_SOP_ADD_INDEX:
  case SQ_SOP_ADD_UNIQUE:
  case SQ_SOP_ADD_PRIMARY_KEY:
    return op->index && check_names(op->index->cols, op->index->ncols) ? SQ_OK : bad(op, err, "no columns (index)");
  case SQ_SOP_REMOVE_INDEX: return op->name ? SQ_OK : bad(op, err, "no index name");
  case SQ_SOP_REMOVE_UNIQUE:
    if (op->name || (op->index && check_names(op->index->cols, op->index->ncols))) return SQ_OK;
    return bad(op, err, "needs the constraint's name (or its columns)");
  case SQ_SOP_DROP_PRIMARY_KEY: return SQ_OK;
  case SQ_SOP_ADD_FOREIGN_KEY:
    return check_fk(op->fk, 0) ? SQ_OK : bad(op, err, "the key (fk) needs columns, ref_table and as many ref_cols");
  case SQ_SOP_REMOVE_FOREIGN_KEY:
    if (op->name || (op->fk && check_names(op->fk->cols, op->fk->ncols))) return SQ_OK;
    return bad(op, err, "needs the key's name (or fk->cols)");
  case SQ_SOP_ADD_ENUM_VALUES:
    if (!op->name && !(op->col && op->col->name)) return bad(op, err, "no column name");
    if (!check_names(op->values, op->nvalues)) return bad(op, err, "no values to add");
    if (dialect != SQ_DIALECT_POSTGRES && (!op->col || !op->col->enum_values))
      return bad(op, err, "MySQL and SQLite need the column's whole definition (col, with every enum value)");
    if (op->col && op->col->enum_values)
      for (int i = 0; i < op->nvalues; i++) {
        int found = 0;
        for (int j = 0; j < op->col->nenum_values && !found; j++)
          found = op->col->enum_values[j] && !strcmp(op->col->enum_values[j], op->values[i]);
        if (!found) return bad(op, err, "a value to add is missing from col's enum_values");
      }
    return SQ_OK;
  }
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Column definitions of ops                                            */
/* ------------------------------------------------------------------ */

void sq_schema_cdef(const char *table, const sq_scol *s, int single_pk, sq_cdef *c, char enum_name[64],
                    char ref_name[64]) {
  memset(c, 0, sizeof *c);
  c->name = s->name;
  c->type = s->type;
  c->length = s->length;
  c->precision = s->precision;
  c->scale = s->scale;
  c->allow_null = s->allow_null;
  c->primary_key = s->primary_key;
  c->auto_increment = s->auto_increment;
  c->single_pk = s->primary_key && single_pk;
  c->unique = s->unique;
  c->comment = s->comment;
  c->default_kind = s->default_kind == SQ_DEFAULT_VALUE ? SQ_DEFAULT_VALUE : SQ_DEFAULT_NONE;
  c->default_value = s->default_value;
  c->now_col = s->fill_now;
  if (s->enum_values || s->nenum_values) {
    c->enum_values = s->enum_values;
    c->nenum = s->nenum_values;
    sq_ddl_enum_type_name(enum_name, table, s);
    c->enum_type = enum_name;
  }
  if (s->references) {
    c->references = s->references;
    if (s->references->name) snprintf(ref_name, 64, "%s", s->references->name);
    else {
      const char *col = s->name;
      sq_ddl_join_name(ref_name, table, &col, 1, "fkey");
    }
    c->ref_name = ref_name;
  }
}

/* "(a, b)" */
int sq_schema_cols_sql(sbuf *b, int dialect, const char *const *cols, int n, sq_err *err) {
  sb_puts(b, "(");
  for (int i = 0; i < n; i++) {
    if (i) sb_puts(b, ", ");
    int rc = sq_ddl_ident(b, dialect, cols[i], err);
    if (rc) return rc;
  }
  sb_puts(b, ")");
  return SQ_OK;
}

static const char *const ID_COL[] = {"id"};

/* The key's name: given, or "<table>_<col>_fkey". */
void sq_schema_fk_name(const char *table, const sq_sfk *f, const char *col, char out[64]) {
  if (f->name) {
    snprintf(out, 64, "%s", f->name);
    return;
  }
  const char *const *cols = f->cols;
  int n = f->ncols;
  if (!cols || n < 1) cols = &col, n = 1;
  sq_ddl_join_name(out, table, cols, n, "fkey");
}

/* "CONSTRAINT n FOREIGN KEY (a) REFERENCES t (b) [ON DELETE x] [ON UPDATE y]"; col: a
 * column's own references (f->cols ignored). */
int sq_schema_fk_sql(sbuf *b, int dialect, const char *table, const sq_sfk *f, const char *col, sq_err *err) {
  char name[64];
  sq_schema_fk_name(table, f, col, name);
  const char *const *cols = col ? &col : f->cols;
  int n = col ? 1 : f->ncols;
  sb_puts(b, "CONSTRAINT ");
  int rc = sq_ddl_ident(b, dialect, name, err);
  sb_puts(b, " FOREIGN KEY ");
  if (!rc) rc = sq_schema_cols_sql(b, dialect, cols, n, err);
  sb_puts(b, " REFERENCES ");
  if (!rc) rc = sq_ddl_ident(b, dialect, f->ref_table, err);
  sb_puts(b, " ");
  if (!rc) rc = sq_schema_cols_sql(b, dialect, f->ref_cols ? f->ref_cols : ID_COL, f->ref_cols ? f->nref_cols : 1, err);
  /* an action that is no sq_fk_action: SQ_EUSAGE (found by fuzz_schema) */
  if (!rc && ((f->on_delete != SQ_FK_DEFAULT && !sq_fk_action_sql(f->on_delete)) ||
              (f->on_update != SQ_FK_DEFAULT && !sq_fk_action_sql(f->on_update))))
    return sq_err_set(err, SQ_EUSAGE, "foreign key %s: on_delete %d / on_update %d: not an sq_fk_action", name,
                      f->on_delete, f->on_update);
  if (rc) return rc;
  if (f->on_delete != SQ_FK_DEFAULT) {
    sb_puts(b, " ON DELETE ");
    sb_puts(b, sq_fk_action_sql(f->on_delete));
  }
  if (f->on_update != SQ_FK_DEFAULT) {
    sb_puts(b, " ON UPDATE ");
    sb_puts(b, sq_fk_action_sql(f->on_update));
  }
  return rc;
}

/* An index's name: given, or "<table>_<col>_<col>". */
void sq_schema_index_name(const char *table, const sq_sindex *x, char out[64]) {
  if (x->name) snprintf(out, 64, "%s", x->name);
  else sq_ddl_join_name(out, table, x->cols, x->ncols, NULL);
}

/* ------------------------------------------------------------------ */
/* Rendering                                                            */
/* ------------------------------------------------------------------ */

/* ALTER TABLE "t" + rest, started in b. */
static int alter_head(sbuf *b, int dialect, const char *table, sq_err *err) {
  sb_puts(b, "ALTER TABLE ");
  int rc = sq_ddl_ident(b, dialect, table, err);
  sb_puts(b, " ");
  return rc;
}

/* CREATE [UNIQUE] INDEX [IF NOT EXISTS] "n" ON "t" (cols). */
static int index_stmt(sbuf *b, int dialect, const char *table, const sq_sindex *x, int if_not_exists, sq_err *err) {
  char name[64];
  sq_schema_index_name(table, x, name);
  sb_puts(b, x->unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  if (if_not_exists) sb_puts(b, "IF NOT EXISTS ");
  int rc = sq_ddl_ident(b, dialect, name, err);
  sb_puts(b, " ON ");
  if (!rc) rc = sq_ddl_ident(b, dialect, table, err);
  sb_puts(b, " ");
  if (!rc) rc = sq_schema_cols_sql(b, dialect, x->cols, x->ncols, err);
  return rc;
}

int sq_schema_index_stmt(sbuf *b, int dialect, const char *table, const sq_sindex *x, int if_not_exists, sq_err *err) {
  return index_stmt(b, dialect, table, x, if_not_exists, err);
}

/*
 * PostgreSQL: creates an enum type when it doesn't exist yet, in a DO
 * block that swallows duplicate_object (PostgreSQL has no CREATE TYPE IF
 * NOT EXISTS), so a table dropped and created again reuses its type. The
 * dollar-quote tag is one the body doesn't contain.
 */
static int pg_enum_type(sq_sql_list *out, const sq_cdef *c, sq_err *err) {
  if (!c->nenum) return SQ_OK;
  sbuf body = {0}, b = {0};
  sb_puts(&body, "BEGIN CREATE TYPE ");
  int rc = sq_ddl_ident(&body, SQ_DIALECT_POSTGRES, c->enum_type, err);
  sb_puts(&body, " AS ENUM (");
  for (int i = 0; !rc && i < c->nenum; i++) {
    if (i) sb_puts(&body, ", ");
    rc = sq_ddl_strlit(&body, SQ_DIALECT_POSTGRES, c->enum_values[i], strlen(c->enum_values[i]), "an ENUM value", err);
  }
  sb_puts(&body, "); EXCEPTION WHEN duplicate_object THEN NULL; END");
  if (!rc && body.oom) rc = sq_ddl_nomem(err);
  if (!rc) {
    char tag[32] = "$sq$";
    for (int k = 1; strstr(body.p, tag) && k < 1000000; k++) snprintf(tag, sizeof tag, "$sq%d$", k);
    sb_puts(&b, "DO ");
    sb_puts(&b, tag);
    sb_puts(&b, " ");
    sb_puts(&b, body.p);
    sb_puts(&b, " ");
    sb_puts(&b, tag);
    rc = sq_ddl_push(out, &b, err);
  }
  sb_free(&body);
  sb_free(&b);
  return rc;
}

/* The column that is the table's only primary key column, or -1. */
static int single_pk_of(const sq_sop *op) {
  int npk = 0, at = -1;
  for (int i = 0; i < op->ncols; i++)
    if (op->cols[i].primary_key) npk++, at = i;
  return npk == 1 ? at : -1;
}

/* 1 when column i is the first of the composite unique key it names. */
static int first_of_group(const sq_sop *op, int i) {
  const char *u = op->cols[i].unique;
  if (!u || !u[0]) return 0;
  for (int j = 0; j < i; j++)
    if (op->cols[j].unique && !strcmp(op->cols[j].unique, u)) return 0;
  return 1;
}

/*
 * CREATE TABLE with its keys, uniques, foreign keys (inline: every one on
 * SQLite, the non-deferred ones elsewhere) and, on MySQL, indexes (CREATE
 * INDEX IF NOT EXISTS is MariaDB-only, and inline indexes let CREATE
 * TABLE IF NOT EXISTS cover them on MySQL and TiDB too); then
 * PostgreSQL's COMMENT ON and the other dialects' CREATE INDEX.
 * `as` renders the table under another name (SQLite's rebuild).
 */
static int create_table(sq_sql_list *out, int dialect, const sq_sop *op, sq_err *err) {
  int rc = SQ_OK, spk = single_pk_of(op), npk = 0;
  const char *table = op->table;
  sq_cdef *defs = calloc((size_t)op->ncols, sizeof *defs);
  char(*enames)[64] = calloc((size_t)op->ncols, 64);
  char(*rnames)[64] = calloc((size_t)op->ncols, 64);
  sbuf b = {0};
  if (!defs || !enames || !rnames) {
    rc = sq_ddl_nomem(err);
    goto out;
  }
  for (int i = 0; i < op->ncols; i++) {
    sq_schema_cdef(table, &op->cols[i], i == spk, &defs[i], enames[i], rnames[i]);
    npk += op->cols[i].primary_key;
  }
  if (dialect == SQ_DIALECT_POSTGRES)
    for (int i = 0; !rc && i < op->ncols; i++) rc = pg_enum_type(out, &defs[i], err);
  sb_puts(&b, op->if_exists ? "CREATE TABLE IF NOT EXISTS " : "CREATE TABLE ");
  if (!rc) rc = sq_ddl_ident(&b, dialect, table, err);
  sb_puts(&b, " (");
  for (int i = 0; !rc && i < op->ncols; i++) {
    if (i) sb_puts(&b, ", ");
    rc = sq_ddl_col_def(&b, &defs[i], dialect, SQ_CD_KEYS, err);
  }
  if (!rc && (npk > 1 || (npk == 1 && dialect == SQ_DIALECT_MYSQL))) {
    sb_puts(&b, ", PRIMARY KEY (");
    for (int i = 0, k = 0; !rc && i < op->ncols; i++) {
      if (!op->cols[i].primary_key) continue;
      if (k++) sb_puts(&b, ", ");
      rc = sq_ddl_ident(&b, dialect, op->cols[i].name, err);
    }
    sb_puts(&b, ")");
  }
  for (int i = 0; !rc && i < op->ncols; i++) {
    if (!first_of_group(op, i)) continue;
    const char *g = op->cols[i].unique;
    sb_puts(&b, ", CONSTRAINT ");
    rc = sq_ddl_ident(&b, dialect, g, err);
    sb_puts(&b, " UNIQUE (");
    for (int j = i, k = 0; !rc && j < op->ncols; j++) {
      if (!op->cols[j].unique || strcmp(op->cols[j].unique, g)) continue;
      if (k++) sb_puts(&b, ", ");
      rc = sq_ddl_ident(&b, dialect, op->cols[j].name, err);
    }
    sb_puts(&b, ")");
  }
  if (dialect == SQ_DIALECT_MYSQL)
    for (int k = 0; !rc && k < op->nindexes; k++) {
      char name[64];
      sq_schema_index_name(table, &op->indexes[k], name);
      sb_puts(&b, op->indexes[k].unique ? ", UNIQUE INDEX " : ", INDEX ");
      rc = sq_ddl_ident(&b, dialect, name, err);
      sb_puts(&b, " ");
      if (!rc) rc = sq_schema_cols_sql(&b, dialect, op->indexes[k].cols, op->indexes[k].ncols, err);
    }
  for (int k = 0; !rc && k < op->nfks; k++) {
    if (op->fks[k].deferred && dialect != SQ_DIALECT_SQLITE) continue;
    sb_puts(&b, ", ");
    rc = sq_schema_fk_sql(&b, dialect, table, &op->fks[k], NULL, err);
  }
  for (int i = 0; !rc && i < op->ncols; i++) {
    if (!op->cols[i].references || (op->cols[i].references->deferred && dialect != SQ_DIALECT_SQLITE)) continue;
    sb_puts(&b, ", ");
    rc = sq_schema_fk_sql(&b, dialect, table, op->cols[i].references, op->cols[i].name, err);
  }
  sb_puts(&b, dialect == SQ_DIALECT_MYSQL ? ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" : ")");
  if (!rc) rc = sq_ddl_push(out, &b, err);
  if (dialect == SQ_DIALECT_POSTGRES)
    for (int i = 0; !rc && i < op->ncols; i++) {
      if (!op->cols[i].comment) continue;
      sb_puts(&b, "COMMENT ON COLUMN ");
      rc = sq_ddl_ident(&b, dialect, table, err);
      sb_puts(&b, ".");
      if (!rc) rc = sq_ddl_ident(&b, dialect, op->cols[i].name, err);
      sb_puts(&b, " IS ");
      if (!rc) rc = sq_ddl_strlit(&b, dialect, op->cols[i].comment, strlen(op->cols[i].comment), "comment", err);
      if (!rc) rc = sq_ddl_push(out, &b, err);
    }
  if (dialect != SQ_DIALECT_MYSQL)
    for (int k = 0; !rc && k < op->nindexes; k++) {
      rc = index_stmt(&b, dialect, table, &op->indexes[k], op->if_exists, err);
      if (!rc) rc = sq_ddl_push(out, &b, err);
    }
out:
  sb_free(&b);
  free(defs);
  free(enames);
  free(rnames);
  return rc;
}

int sq_schema_create_sql(sq_sql_list *out, int dialect, const sq_sop *op, sq_err *err) {
  return create_table(out, dialect, op, err);
}

/* ALTER TABLE "t" ALTER COLUMN "c" + what, as one statement (PostgreSQL). */
static int pg_alter_col(sq_sql_list *out, const char *table, const char *col, const char *what, sq_err *err) {
  sbuf b = {0};
  int rc = alter_head(&b, SQ_DIALECT_POSTGRES, table, err);
  sb_puts(&b, "ALTER COLUMN ");
  if (!rc) rc = sq_ddl_ident(&b, SQ_DIALECT_POSTGRES, col, err);
  sb_puts(&b, what);
  if (!rc) rc = sq_ddl_push(out, &b, err);
  sb_free(&b);
  return rc;
}

static int pg_comment(sq_sql_list *out, const char *table, const char *col, const char *comment, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  sbuf b = {0};
  sb_puts(&b, "COMMENT ON COLUMN ");
  int rc = sq_ddl_ident(&b, D, table, err);
  sb_puts(&b, ".");
  if (!rc) rc = sq_ddl_ident(&b, D, col, err);
  sb_puts(&b, " IS ");
  if (comment) {
    if (!rc) rc = sq_ddl_strlit(&b, D, comment, strlen(comment), "comment", err);
  } else {
    sb_puts(&b, "NULL");
  }
  if (!rc) rc = sq_ddl_push(out, &b, err);
  sb_free(&b);
  return rc;
}

/*
 * An identity added to a live PostgreSQL column: NOT NULL first (an
 * identity needs it), then the identity, whose sequence starts past the
 * largest id already there.
 */
static int pg_add_identity(sq_sql_list *out, const char *table, const char *col, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  int rc = pg_alter_col(out, table, col, " DROP DEFAULT", err);
  if (!rc) rc = pg_alter_col(out, table, col, " SET NOT NULL", err);
  if (!rc) rc = pg_alter_col(out, table, col, " ADD GENERATED BY DEFAULT AS IDENTITY", err);
  if (rc) return rc;
  char q[SQ_DDL_QMAX];
  if ((rc = sq_quote_ident(D, table, strlen(table), q, sizeof q, err))) return rc;
  sbuf b = {0};
  sb_puts(&b, "SELECT setval(pg_get_serial_sequence(");
  rc = sq_ddl_strlit(&b, D, q, strlen(q), "table name", err);
  sb_puts(&b, ", ");
  if (!rc) rc = sq_ddl_strlit(&b, D, col, strlen(col), "column name", err);
  sb_puts(&b, "), COALESCE(MAX(");
  if (!rc) rc = sq_ddl_ident(&b, D, col, err);
  sb_puts(&b, "), 0) + 1, false) FROM ");
  sb_puts(&b, q);
  if (!rc) rc = sq_ddl_push(out, &b, err);
  sb_free(&b);
  return rc;
}

static int is_intish(int t) {
  return t == SQ_T_INTEGER || t == SQ_T_BIGINT || t == SQ_T_SMALLINT || t == SQ_T_DECIMAL;
}

/*
 * A changed PostgreSQL column gets what change says: the default is
 * dropped before a type change (an old default that doesn't cast would
 * stop it) and set again after; the USING cast goes through INTEGER
 * between BOOLEAN and the other numbers, the only casts PostgreSQL has
 * for booleans. An identity is added or dropped when auto_increment
 * changed; identity columns have no default to touch.
 */
static int pg_change(sq_sql_list *out, const char *table, const sq_cdef *c, int change, int old_type, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  int type_diff = change & SQ_CHANGE_TYPE, ai_diff = change & SQ_CHANGE_AUTOINC, dflt = change & SQ_CHANGE_DEFAULT;
  int rc = sq_ddl_check_col(c, D, err);
  sbuf def = {0};
  if (!rc && type_diff) rc = pg_enum_type(out, c, err);
  if (!rc && ai_diff && !c->auto_increment) rc = pg_alter_col(out, table, c->name, " DROP IDENTITY IF EXISTS", err);
  if (!rc && !c->auto_increment) rc = sq_ddl_default_sql(&def, c, D, err); /* " DEFAULT x" or nothing */
  if (!rc && def.oom) rc = sq_ddl_nomem(err);
  if (!rc && type_diff && dflt && !c->auto_increment) rc = pg_alter_col(out, table, c->name, " DROP DEFAULT", err);
  if (!rc && type_diff) {
    sbuf ty = {0}, tail = {0};
    rc = sq_ddl_type_sql(&ty, c, D, err);
    int want_bool = c->type == SQ_T_BOOLEAN && !c->nenum;
    int via_int = (want_bool && is_intish(old_type)) || (old_type == SQ_T_BOOLEAN && is_intish(c->type) && !c->nenum);
    sb_puts(&tail, " TYPE ");
    sb_puts(&tail, ty.p ? ty.p : "");
    sb_puts(&tail, " USING ");
    if (!rc) rc = sq_ddl_ident(&tail, D, c->name, err);
    sb_puts(&tail, via_int ? "::INTEGER::" : "::");
    sb_puts(&tail, ty.p ? ty.p : "");
    if (!rc && (ty.oom || tail.oom)) rc = sq_ddl_nomem(err);
    if (!rc) rc = pg_alter_col(out, table, c->name, tail.p, err);
    sb_free(&ty);
    sb_free(&tail);
  }
  if (!rc && ai_diff && c->auto_increment) rc = pg_add_identity(out, table, c->name, err);
  if (!rc && dflt && def.n) {
    sbuf set = {0};
    sb_puts(&set, " SET");
    sb_puts(&set, def.p);
    if (set.oom) rc = sq_ddl_nomem(err);
    else rc = pg_alter_col(out, table, c->name, set.p, err);
    sb_free(&set);
  } else if (!rc && dflt && !type_diff && !c->auto_increment) {
    rc = pg_alter_col(out, table, c->name, " DROP DEFAULT", err);
  }
  if (!rc && !c->primary_key && (change & SQ_CHANGE_NULL))
    rc = pg_alter_col(out, table, c->name, c->allow_null ? " DROP NOT NULL" : " SET NOT NULL", err);
  if (!rc && (change & SQ_CHANGE_COMMENT)) rc = pg_comment(out, table, c->name, c->comment, err);
  sb_free(&def);
  return rc;
}

/* The change mask an op means (0: type, null, default, and the comment when given). */
static int change_mask(const sq_sop *op) {
  if (op->change) return op->change;
  int m = SQ_CHANGE_TYPE | SQ_CHANGE_NULL | SQ_CHANGE_DEFAULT;
  if (op->col && op->col->comment) m |= SQ_CHANGE_COMMENT;
  return m;
}

/*
 * PostgreSQL: ADD VALUE IF NOT EXISTS for each new value, placed after
 * its neighbour in the column's list (the first value of the list goes
 * BEFORE the second, once every other value is there), so the type's
 * order follows the list. Without col, values are appended in order.
 */
static int pg_enum_values(sq_sql_list *out, const sq_sop *op, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  char tname[64];
  sq_scol tmp;
  const sq_scol *col = op->col;
  if (!col) {
    sq_scol_init(&tmp, op->name, SQ_T_STRING);
    col = &tmp;
  }
  if (!col->name) tmp.name = op->name;
  sq_scol named = *col;
  if (!named.name) named.name = op->name;
  sq_ddl_enum_type_name(tname, op->table, &named);
  int rc = SQ_OK;
  const char *const *all = col->enum_values;
  int nall = col->enum_values ? col->nenum_values : 0;
  /* two passes: values with a predecessor first, then a new first value */
  for (int pass = 0; pass < 2 && !rc; pass++)
    for (int i = 0; i < op->nvalues && !rc; i++) {
      const char *v = op->values[i];
      int pos = -1;
      for (int j = 0; j < nall && pos < 0; j++)
        if (!strcmp(all[j], v)) pos = j;
      int first = pos == 0 && nall > 1;
      if ((pass == 1) != first) continue;
      sbuf b = {0};
      sb_puts(&b, "ALTER TYPE ");
      rc = sq_ddl_ident(&b, D, tname, err);
      sb_puts(&b, " ADD VALUE IF NOT EXISTS ");
      if (!rc) rc = sq_ddl_strlit(&b, D, v, strlen(v), "an ENUM value", err);
      const char *near = NULL;
      if (pos > 0) near = all[pos - 1];
      else if (first) near = all[1];
      else if (pos < 0 && i > 0) near = op->values[i - 1];
      if (near) {
        sb_puts(&b, first ? " BEFORE " : " AFTER ");
        if (!rc) rc = sq_ddl_strlit(&b, D, near, strlen(near), "an ENUM value", err);
      }
      if (!rc) rc = sq_ddl_push(out, &b, err);
      sb_free(&b);
    }
  return rc;
}

/*
 * One op on PostgreSQL: its statements in order.
 */
static int render_pg(sq_sql_list *out, const sq_sop *op, sq_err *err) {
  const int D = SQ_DIALECT_POSTGRES;
  const char *t = op->table;
  sbuf b = {0};
  int rc = SQ_OK;
  char ename[64], rname[64];
  sq_cdef c;
  switch (op->kind) {
  case SQ_SOP_ADD_COLUMN:
    sq_schema_cdef(t, op->col, 1, &c, ename, rname);
    rc = pg_enum_type(out, &c, err);
    if (!rc) rc = alter_head(&b, D, t, err);
    sb_puts(&b, "ADD COLUMN ");
    if (!rc) rc = sq_ddl_col_def(&b, &c, D, SQ_CD_KEYS | SQ_CD_FILL | SQ_CD_NOPK, err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
    if (!rc && sq_ddl_fill_sql(&c, D)) rc = pg_alter_col(out, t, c.name, " DROP DEFAULT", err);
    if (!rc && c.comment) rc = pg_comment(out, t, c.name, c.comment, err);
    if (!rc && op->col->references && !op->col->references->deferred) {
      rc = alter_head(&b, D, t, err);
      sb_puts(&b, "ADD ");
      if (!rc) rc = sq_schema_fk_sql(&b, D, t, op->col->references, op->col->name, err);
      if (!rc) rc = sq_ddl_push(out, &b, err);
    }
    break;
  case SQ_SOP_CHANGE_COLUMN: {
    sq_scol s = *op->col;
    if (!s.name) s.name = op->name;
    sq_schema_cdef(t, &s, s.primary_key, &c, ename, rname);
    rc = pg_change(out, t, &c, change_mask(op), op->old_type, err);
    break;
  }
  case SQ_SOP_ADD_ENUM_VALUES: rc = pg_enum_values(out, op, err); break;
  case SQ_SOP_REMOVE_COLUMN:
  case SQ_SOP_RENAME_COLUMN:
  case SQ_SOP_ADD_UNIQUE:
  case SQ_SOP_REMOVE_UNIQUE:
  case SQ_SOP_ADD_PRIMARY_KEY:
  case SQ_SOP_DROP_PRIMARY_KEY:
  case SQ_SOP_ADD_FOREIGN_KEY:
  case SQ_SOP_REMOVE_FOREIGN_KEY:
    rc = alter_head(&b, D, t, err);
    if (!rc) rc = sq_schema_clause(&b, D, op, err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
    break;
  default: rc = sq_err_set(err, SQ_EINTERNAL, "render_pg: op %d", op->kind);
  }
  sb_free(&b);
  return rc;
}

/*
 * The ALTER TABLE clause of an op ("ADD COLUMN ...", "DROP COLUMN x",
 * ...), for MySQL and PostgreSQL (PostgreSQL's add, change and enum ops
 * have their own statements: render_pg).
 */
int sq_schema_clause(sbuf *b, int dialect, const sq_sop *op, sq_err *err) {
  const char *t = op->table;
  int my = dialect == SQ_DIALECT_MYSQL, rc = SQ_OK;
  char name[64], ename[64], rname[64];
  sq_cdef c;
  switch (op->kind) {
  case SQ_SOP_ADD_COLUMN:
    sq_schema_cdef(t, op->col, 1, &c, ename, rname);
    sb_puts(b, "ADD COLUMN ");
    rc = sq_ddl_col_def(b, &c, dialect, SQ_CD_KEYS | SQ_CD_FILL, err);
    if (!rc && op->col->references && !op->col->references->deferred) {
      sb_puts(b, ", ADD ");
      rc = sq_schema_fk_sql(b, dialect, t, op->col->references, op->col->name, err);
    }
    return rc;
  case SQ_SOP_CHANGE_COLUMN:
  case SQ_SOP_ADD_ENUM_VALUES: {
    sq_scol s = *op->col;
    if (!s.name) s.name = op->name;
    sq_schema_cdef(t, &s, s.primary_key, &c, ename, rname);
    sb_puts(b, "MODIFY COLUMN ");
    return sq_ddl_col_def(b, &c, dialect, 0, err);
  }
  case SQ_SOP_REMOVE_COLUMN:
    sb_puts(b, "DROP COLUMN ");
    return sq_ddl_ident(b, dialect, op->name, err);
  case SQ_SOP_RENAME_COLUMN:
    sb_puts(b, "RENAME COLUMN ");
    rc = sq_ddl_ident(b, dialect, op->name, err);
    sb_puts(b, " TO ");
    if (!rc) rc = sq_ddl_ident(b, dialect, op->new_name, err);
    return rc;
  case SQ_SOP_ADD_INDEX:
    sq_schema_index_name(t, op->index, name);
    sb_puts(b, op->index->unique ? "ADD UNIQUE INDEX " : "ADD INDEX ");
    if (op->if_exists) sb_puts(b, "IF NOT EXISTS ");
    rc = sq_ddl_ident(b, dialect, name, err);
    sb_puts(b, " ");
    if (!rc) rc = sq_schema_cols_sql(b, dialect, op->index->cols, op->index->ncols, err);
    return rc;
  case SQ_SOP_REMOVE_INDEX:
    sb_puts(b, op->if_exists ? "DROP INDEX IF EXISTS " : "DROP INDEX ");
    return sq_ddl_ident(b, dialect, op->name, err);
  case SQ_SOP_ADD_UNIQUE:
    sb_puts(b, "ADD ");
    if (op->index->name) {
      sb_puts(b, "CONSTRAINT ");
      rc = sq_ddl_ident(b, dialect, op->index->name, err);
      sb_puts(b, " ");
    }
    sb_puts(b, "UNIQUE ");
    if (!rc) rc = sq_schema_cols_sql(b, dialect, op->index->cols, op->index->ncols, err);
    return rc;
  case SQ_SOP_REMOVE_UNIQUE:
    if (!op->name) return sq_err_set(err, SQ_EUSAGE, "needs the constraint's name");
    sb_puts(b, my ? "DROP INDEX " : "DROP CONSTRAINT ");
    return sq_ddl_ident(b, dialect, op->name, err);
  case SQ_SOP_ADD_PRIMARY_KEY:
    sb_puts(b, "ADD PRIMARY KEY ");
    return sq_schema_cols_sql(b, dialect, op->index->cols, op->index->ncols, err);
  case SQ_SOP_DROP_PRIMARY_KEY:
    if (my) {
      sb_puts(b, "DROP PRIMARY KEY");
      return SQ_OK;
    }
    sb_puts(b, "DROP CONSTRAINT ");
    if (op->name) return sq_ddl_ident(b, dialect, op->name, err);
    snprintf(name, sizeof name, "%.58s_pkey", t);
    return sq_ddl_ident(b, dialect, name, err);
  case SQ_SOP_ADD_FOREIGN_KEY:
    sb_puts(b, "ADD ");
    return sq_schema_fk_sql(b, dialect, t, op->fk, NULL, err);
  case SQ_SOP_REMOVE_FOREIGN_KEY:
    if (op->name) snprintf(name, sizeof name, "%s", op->name);
    else sq_schema_fk_name(t, op->fk, NULL, name);
    sb_puts(b, my ? "DROP FOREIGN KEY " : "DROP CONSTRAINT ");
    return sq_ddl_ident(b, dialect, name, err);
  default: return sq_err_set(err, SQ_EINTERNAL, "sq_schema_clause: op %d", op->kind);
  }
}

/* Statements MySQL runs after an ADD COLUMN with a fill default: the
 * temporary default goes. */
static int mysql_after(sq_sql_list *out, const sq_sop *op, sq_err *err) {
  if (op->kind != SQ_SOP_ADD_COLUMN) return SQ_OK;
  char ename[64], rname[64];
  sq_cdef c;
  sq_schema_cdef(op->table, op->col, 1, &c, ename, rname);
  if (!sq_ddl_fill_sql(&c, SQ_DIALECT_MYSQL)) return SQ_OK;
  sbuf b = {0};
  int rc = alter_head(&b, SQ_DIALECT_MYSQL, op->table, err);
  sb_puts(&b, "ALTER COLUMN ");
  if (!rc) rc = sq_ddl_ident(&b, SQ_DIALECT_MYSQL, c.name, err);
  sb_puts(&b, " DROP DEFAULT");
  if (!rc) rc = sq_ddl_push(out, &b, err);
  sb_free(&b);
  return rc;
}

/* Ops that stand alone: they never share a group. */
static int standalone(int kind) {
  return kind == SQ_SOP_CREATE_TABLE || kind == SQ_SOP_DROP_TABLE || kind == SQ_SOP_RENAME_TABLE ||
         kind == SQ_SOP_RENAME_COLUMN;
}

/* The table-level ops every dialect renders alike. */
int sq_schema_table_op(sq_sql_list *out, int dialect, const sq_sop *op, sq_err *err) {
  sbuf b = {0};
  int rc = SQ_OK;
  switch (op->kind) {
  case SQ_SOP_CREATE_TABLE: return create_table(out, dialect, op, err);
  case SQ_SOP_DROP_TABLE:
    sb_puts(&b, op->if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
    rc = sq_ddl_ident(&b, dialect, op->table, err);
    break;
  case SQ_SOP_RENAME_TABLE:
    rc = alter_head(&b, dialect, op->table, err);
    sb_puts(&b, "RENAME TO ");
    if (!rc) rc = sq_ddl_ident(&b, dialect, op->new_name, err);
    break;
  case SQ_SOP_RENAME_COLUMN:
    rc = alter_head(&b, dialect, op->table, err);
    if (!rc) rc = sq_schema_clause(&b, dialect, op, err);
    break;
  case SQ_SOP_ADD_INDEX:
    rc = index_stmt(&b, dialect, op->table, op->index, op->if_exists, err);
    break;
  case SQ_SOP_REMOVE_INDEX:
    sb_puts(&b, op->if_exists ? "DROP INDEX IF EXISTS " : "DROP INDEX ");
    rc = sq_ddl_ident(&b, dialect, op->name, err);
    if (dialect == SQ_DIALECT_MYSQL) {
      sb_puts(&b, " ON ");
      if (!rc) rc = sq_ddl_ident(&b, dialect, op->table, err);
    }
    break;
  default: rc = sq_err_set(err, SQ_EINTERNAL, "render_table_op: op %d", op->kind);
  }
  if (!rc) rc = sq_ddl_push(out, &b, err);
  sb_free(&b);
  return rc;
}

/*
 * A group of MySQL ops: with SQ_SCHEMA_ONE_ALTER one ALTER TABLE holding
 * every op's clauses (the server applies it whole or not at all), else
 * one statement per op; then what must follow (fill defaults dropped).
 */
static int render_mysql_group(sq_sql_list *out, const sq_sop *ops, int n, int flags, sq_err *err) {
  const int D = SQ_DIALECT_MYSQL;
  int rc = SQ_OK, any = 0;
  sbuf b = {0};
  int one = (flags & SQ_SCHEMA_ONE_ALTER) != 0;
  for (int i = 0; !rc && i < n; i++) {
    const sq_sop *op = &ops[i];
    if (op->kind == SQ_SOP_NOTE) continue;
    if (!one && (op->kind == SQ_SOP_ADD_INDEX || op->kind == SQ_SOP_REMOVE_INDEX)) {
      rc = sq_schema_table_op(out, D, op, err);
      continue;
    }
    if (!any || !one) rc = alter_head(&b, D, op->table, err);
    else sb_puts(&b, ", ");
    any = 1;
    if (!rc) rc = sq_schema_clause(&b, D, op, err);
    if (!rc && !one) {
      rc = sq_ddl_push(out, &b, err);
      if (!rc) rc = mysql_after(out, op, err);
    }
    if (rc) sq_schema_op_err(op, err);
  }
  if (!rc && one && any) rc = sq_ddl_push(out, &b, err);
  for (int i = 0; !rc && one && i < n; i++) {
    rc = mysql_after(out, &ops[i], err);
    if (rc) sq_schema_op_err(&ops[i], err);
  }
  sb_free(&b);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Groups, plans and runs                                               */
/* ------------------------------------------------------------------ */

/* The end of the group that starts at i: consecutive ops on one table
 * that can share an ALTER TABLE or a rebuild. */
static int group_end(const sq_sop *ops, int n, int i, int dialect) {
  if (ops[i].kind == SQ_SOP_NOTE || standalone(ops[i].kind)) return i + 1;
  /* notes in between render nothing and don't split a group */
  int j = i + 1;
  while (j < n && (ops[j].kind == SQ_SOP_NOTE ||
                   (!standalone(ops[j].kind) && sq_ddl_name_eq(dialect, ops[j].table, ops[i].table))))
    j++;
  while (j > i + 1 && ops[j - 1].kind == SQ_SOP_NOTE) j--;
  return j;
}

/*
 * PostgreSQL: the enum types that only the op's table (drop_table) or
 * column (remove_column; change_column to another type) uses - no other
 * table, view or composite type has a column of them (the table's own
 * indexes go with it) - dropped right after the op, so a down that
 * removes the last column of a type leaves no type behind. Read from the
 * live schema when the op is planned (with a connection).
 */
#define PG_OWN_ENUMS(COL, COL2)                                                                              \
  "SELECT DISTINCT ty.typname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "                   \
  "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type ty ON ty.oid = a.atttypid "                   \
  "WHERE ty.typtype = 'e' AND n.nspname = current_schema() AND c.relname = $1 AND a.attnum > 0 "             \
  "AND NOT a.attisdropped" COL " AND NOT EXISTS (SELECT 1 FROM pg_attribute a2 "                             \
  "JOIN pg_class c2 ON c2.oid = a2.attrelid WHERE a2.atttypid = ty.oid AND NOT a2.attisdropped "            \
  "AND c2.relkind NOT IN ('i', 'I') AND NOT (a2.attrelid = a.attrelid" COL2 "))"
static const char SQL_PG_OWN_ENUMS_TABLE[] = PG_OWN_ENUMS("", "");
static const char SQL_PG_OWN_ENUMS_COL[] = PG_OWN_ENUMS(" AND a.attname = $2", " AND a2.attname = $2");

static int pg_drop_orphans(sq_conn *conn, const sq_sop *op, sq_sql_list *out, sq_err *err) {
  const char *col = NULL, *keep = NULL;
  char keep_buf[64];
  switch (op->kind) {
  case SQ_SOP_DROP_TABLE: break;
  case SQ_SOP_REMOVE_COLUMN: col = op->name; break;
  case SQ_SOP_CHANGE_COLUMN:
    col = op->name ? op->name : op->col ? op->col->name : NULL;
    if (!col || !op->col || !(op->change == 0 || (op->change & SQ_CHANGE_TYPE))) return SQ_OK;
    if (op->col->enum_values) {
      sq_scol named = *op->col;
      named.name = col;
      sq_ddl_enum_type_name(keep_buf, op->table, &named);
      keep = keep_buf;
    }
    break;
  default: return SQ_OK;
  }
  if (!conn || !op->table || (op->kind != SQ_SOP_DROP_TABLE && !col)) return SQ_OK;
  sq_srows r = {0};
  int rc = sq_ddl_catalog(conn, col ? SQL_PG_OWN_ENUMS_COL : SQL_PG_OWN_ENUMS_TABLE, op->table, col, &r, err);
  for (int i = 0; !rc && i < r.nrows; i++) {
    const char *ty = sq_srows_cell(&r, i, 0);
    if (!ty || (keep && !strcmp(ty, keep))) continue;
    sbuf b = {0};
    sb_puts(&b, "DROP TYPE IF EXISTS ");
    rc = sq_ddl_ident(&b, SQ_DIALECT_POSTGRES, ty, err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
    sb_free(&b);
  }
  sq_srows_free(&r);
  return rc;
}

static int render_group(sq_conn *conn, int stale, int dialect, int flags, const sq_sop *ops, int n, sq_sql_list *out,
                        int *rebuilt, sq_err *err) {
  int rc = SQ_OK;
  if (rebuilt) *rebuilt = 0;
  if (ops[0].kind == SQ_SOP_NOTE) return SQ_OK;
  if (standalone(ops[0].kind)) {
    rc = sq_schema_table_op(out, dialect, &ops[0], err);
    if (!rc && conn && dialect == SQ_DIALECT_POSTGRES) rc = pg_drop_orphans(conn, &ops[0], out, err);
    return rc ? sq_schema_op_err(&ops[0], err) : SQ_OK;
  }
  switch (dialect) {
  case SQ_DIALECT_SQLITE: return sq_lite_group(conn, stale, ops, n, out, rebuilt, err);
  case SQ_DIALECT_MYSQL: return render_mysql_group(out, ops, n, flags, err);
  default:
    for (int i = 0; !rc && i < n; i++) {
      if (ops[i].kind == SQ_SOP_NOTE) continue;
      if (ops[i].kind == SQ_SOP_ADD_INDEX || ops[i].kind == SQ_SOP_REMOVE_INDEX)
        rc = sq_schema_table_op(out, dialect, &ops[i], err);
      else rc = render_pg(out, &ops[i], err);
      if (!rc && conn) rc = pg_drop_orphans(conn, &ops[i], out, err);
      if (rc) sq_schema_op_err(&ops[i], err);
    }
    return rc;
  }
}

static int check_all(const sq_sop *ops, int n, int dialect, sq_err *err) {
  if (n < 0 || (n > 0 && !ops)) return sq_err_set(err, SQ_EUSAGE, "schema ops: bad list");
  if (!sq_ddl_valid_dialect(dialect)) return sq_err_set(err, SQ_EUSAGE, "DDL: unknown dialect %d", dialect);
  for (int i = 0; i < n; i++) {
    int rc = sq_schema_check_op(&ops[i], dialect, err);
    if (rc) return rc;
  }
  return SQ_OK;
}

int sq_schema_render(const sq_sop *ops, int n, int dialect, int flags, sq_sql_list *out, sq_err *err) {
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_schema_render: no output list");
  out->sql = NULL;
  out->n = 0;
  int rc = check_all(ops, n, dialect, err);
  for (int i = 0; !rc && i < n;) {
    int j = group_end(ops, n, i, dialect);
    rc = render_group(NULL, 0, dialect, flags, ops + i, j - i, out, NULL, err);
    i = j;
  }
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* Tables an earlier group of the list changed (SQLite plans). */
typedef struct touched {
  const char **names;
  int n, cap;
} touched;

static int touched_has(const touched *t, const char *name) {
  for (int i = 0; i < t->n; i++)
    if (sq_ddl_name_eq(SQ_DIALECT_SQLITE, t->names[i], name)) return 1;
  return 0;
}

static int touched_add(touched *t, const char *name, sq_err *err) {
  if (!name || touched_has(t, name)) return SQ_OK;
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 8;
    const char **v = realloc(t->names, sizeof *v * (size_t)cap);
    if (!v) return sq_ddl_nomem(err);
    t->names = v;
    t->cap = cap;
  }
  t->names[t->n++] = name;
  return SQ_OK;
}

static int conn_dialect(sq_conn *c, sq_err *err) {
  const sq_driver *drv = c ? sq_conn_driver(c) : NULL;
  if (!drv) {
    sq_err_set(err, SQ_EUSAGE, "schema: no connection");
    return 0;
  }
  return drv->dialect;
}

int sq_schema_plan(sq_conn *c, const sq_sop *ops, int n, int flags, sq_sql_list *out, sq_err *err) {
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_schema_plan: no output list");
  out->sql = NULL;
  out->n = 0;
  int dialect = conn_dialect(c, err);
  if (!dialect) return SQ_EUSAGE;
  int rc = check_all(ops, n, dialect, err);
  touched t = {0};
  for (int i = 0; !rc && i < n;) {
    int j = group_end(ops, n, i, dialect);
    int stale = dialect == SQ_DIALECT_SQLITE && ops[i].table && touched_has(&t, ops[i].table);
    rc = render_group(c, stale, dialect, flags, ops + i, j - i, out, NULL, err);
    for (int k = i; !rc && k < j; k++) {
      if (ops[k].kind == SQ_SOP_NOTE) continue;
      rc = touched_add(&t, ops[k].table, err);
      if (!rc && ops[k].kind == SQ_SOP_RENAME_TABLE) rc = touched_add(&t, ops[k].new_name, err);
    }
    i = j;
  }
  free(t.names);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Running schema changes                                               */
/* ------------------------------------------------------------------ */

/* The first row of a pragma: its first integer and, for
 * foreign_key_check, which table references which. */
typedef struct counter {
  int rows;
  int64_t first;
  char detail[160];
} counter;

static int count_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  counter *k = ud;
  if (k->rows++ == 0) {
    if (ncols >= 1 && v[0].type == SQ_VINT) k->first = v[0].u.i;
    if (ncols >= 3 && v[0].type == SQ_VTEXT && v[2].type == SQ_VTEXT)
      snprintf(k->detail, sizeof k->detail, "table %.*s references %.*s", (int)(v[0].u.s.n > 60 ? 60 : v[0].u.s.n),
               v[0].u.s.p, (int)(v[2].u.s.n > 60 ? 60 : v[2].u.s.n), v[2].u.s.p);
  }
  return 0;
}

static int run_sql(sq_conn *c, const char *sql, counter *k, sq_err *err) {
  sq_row_sink sink = {k, NULL, count_row};
  sq_result res;
  if (k) memset(k, 0, sizeof *k);
  return sq_conn_exec_native(c, sql, strlen(sql), NULL, 0, k ? &sink : NULL, &res, err);
}

static int in_tx(sq_conn *c) {
  const sq_driver *drv = sq_conn_driver(c);
  return drv && drv->in_transaction && drv->in_transaction(sq_conn_handle(c));
}

int sq_schema_begin(sq_conn *c, sq_err *err) {
  int dialect = conn_dialect(c, err);
  if (!dialect) return SQ_EUSAGE;
  if (dialect == SQ_DIALECT_MYSQL) return SQ_OK;
  if (in_tx(c))
    return sq_err_set(err, SQ_EUSAGE,
                      "schema changes begin outside a transaction (SQLite ignores PRAGMA foreign_keys inside one, and "
                      "a table rebuild's DROP TABLE would fire the ON DELETE actions of tables referencing it)");
  if (dialect == SQ_DIALECT_POSTGRES) return run_sql(c, "BEGIN", NULL, err);
  counter k;
  int rc = run_sql(c, "PRAGMA foreign_keys = OFF", NULL, err);
  if (!rc) rc = run_sql(c, "PRAGMA foreign_keys", &k, err);
  if (!rc && k.first != 0) {
    sq_err scratch;
    run_sql(c, "PRAGMA foreign_keys = ON", NULL, &scratch);
    return sq_err_set(err, SQ_EUSAGE,
                      "schema changes must begin outside a transaction (SQLite ignores PRAGMA foreign_keys inside "
                      "one, and dropping a rebuilt table would fire the ON DELETE actions of tables referencing it)");
  }
  if (!rc) rc = run_sql(c, "BEGIN", NULL, err);
  if (rc) {
    sq_err scratch;
    if (run_sql(c, "PRAGMA foreign_keys = ON", NULL, &scratch)) sq_conn_mark_dirty(c);
  }
  return rc;
}

/* SQLite: foreign keys back on; a failure leaves the session to the
 * pool's reset. */
static void lite_fk_on(sq_conn *c) {
  sq_err scratch;
  if (run_sql(c, "PRAGMA foreign_keys = ON", NULL, &scratch)) sq_conn_mark_dirty(c);
}

int sq_schema_rollback(sq_conn *c, sq_err *err) {
  int dialect = conn_dialect(c, err);
  if (!dialect) return SQ_EUSAGE;
  if (dialect == SQ_DIALECT_MYSQL) return SQ_OK;
  int rc = in_tx(c) ? run_sql(c, "ROLLBACK", NULL, err) : SQ_OK;
  if (dialect == SQ_DIALECT_SQLITE) lite_fk_on(c);
  return rc;
}

int sq_schema_commit(sq_conn *c, sq_err *err) {
  int dialect = conn_dialect(c, err);
  if (!dialect) return SQ_EUSAGE;
  if (dialect == SQ_DIALECT_MYSQL) return SQ_OK;
  if (dialect == SQ_DIALECT_POSTGRES) return run_sql(c, "COMMIT", NULL, err);
  counter k;
  sq_err scratch;
  int rc = run_sql(c, "PRAGMA foreign_key_check", &k, err);
  if (!rc && k.rows > 0)
    rc = sq_err_set(err, SQ_ECONSTRAINT, "after the schema change %d row%s violate a foreign key (%s); rolled back",
                    k.rows, k.rows == 1 ? "" : "s", k.detail[0] ? k.detail : "see PRAGMA foreign_key_check");
  if (!rc) rc = run_sql(c, "COMMIT", NULL, err);
  if (rc && in_tx(c)) run_sql(c, "ROLLBACK", NULL, &scratch);
  lite_fk_on(c);
  return rc;
}

int sq_sqlite_run_rebuild(sq_conn *c, const sq_sql_list *plan, sq_err *err) {
  const sq_driver *drv = c ? sq_conn_driver(c) : NULL;
  if (!drv || !plan) return sq_err_set(err, SQ_EUSAGE, "sq_sqlite_run_rebuild: bad arguments");
  if (drv->dialect != SQ_DIALECT_SQLITE) return sq_err_set(err, SQ_EUSAGE, "sq_sqlite_run_rebuild: not a SQLite connection");
  if (plan->n == 0) return SQ_OK;
  int rc = sq_schema_begin(c, err);
  if (rc) return rc;
  for (int i = 0; !rc && i < plan->n; i++) rc = run_sql(c, plan->sql[i], NULL, err);
  if (rc) {
    sq_err scratch;
    sq_schema_rollback(c, &scratch);
    return rc;
  }
  return sq_schema_commit(c, err);
}

int sq_schema_apply(sq_conn *c, const sq_sop *ops, int n, int flags, sq_schema_log_fn on_sql, void *ud, sq_err *err) {
  int dialect = conn_dialect(c, err);
  if (!dialect) return SQ_EUSAGE;
  int rc = check_all(ops, n, dialect, err);
  if (rc || n == 0) return rc;
  int own = dialect != SQ_DIALECT_MYSQL && !in_tx(c);
  int fk_on = 0;
  if (own) rc = sq_schema_begin(c, err);
  else if (dialect == SQ_DIALECT_SQLITE) {
    counter k;
    rc = run_sql(c, "PRAGMA foreign_keys", &k, err);
    fk_on = k.first != 0;
  }
  /* op by op, except where ops share a statement (MySQL's one ALTER
   * TABLE) or a rebuild (SQLite) */
  int grouped = dialect == SQ_DIALECT_SQLITE || (dialect == SQ_DIALECT_MYSQL && (flags & SQ_SCHEMA_ONE_ALTER));
  for (int i = 0; !rc && i < n;) {
    int j = grouped ? group_end(ops, n, i, dialect) : i + 1, rebuilt = 0;
    sq_sql_list l = {0};
    rc = render_group(c, 0, dialect, flags, ops + i, j - i, &l, &rebuilt, err);
    if (!rc && rebuilt && fk_on) {
      sq_err_set(err, SQ_EUSAGE,
                 "SQLite rebuilds the table for this, which needs foreign keys off: run the ops between "
                 "sq_schema_begin and sq_schema_commit (or outside a transaction)");
      rc = sq_schema_op_err(&ops[i], err);
    }
    for (int k = 0; !rc && k < l.n; k++) {
      if (on_sql) on_sql(ud, l.sql[k]);
      rc = run_sql(c, l.sql[k], NULL, err);
      if (rc) sq_schema_op_err(&ops[i], err); /* the group's first op */
    }
    sq_sql_list_free(&l);
    i = j;
  }
  if (own) {
    if (rc) {
      sq_err scratch;
      sq_schema_rollback(c, &scratch);
    } else {
      rc = sq_schema_commit(c, err);
    }
  }
  return rc;
}
