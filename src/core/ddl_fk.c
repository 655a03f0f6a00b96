/*
 * ddl_fk.c - foreign keys in the schema: the FOREIGN KEY clauses of
 * CREATE TABLE, the order tables are created and dropped in, ALTER TABLE
 * ADD CONSTRAINT, and the part of sync{ alter = true } that adds the
 * keys a live table lacks.
 *
 * Keys go inline in CREATE TABLE on every dialect: SQLite can't add one
 * later, and on MySQL/PostgreSQL creating tables in dependency order
 * makes inline keys work. A key marked deferred (SQ_CONSTRAINTS_DEFERRED)
 * is not a dependency: MySQL/PostgreSQL add it by ALTER once every table
 * exists, SQLite keeps it inline (it checks a reference only when rows
 * are written, so the referenced table may come later).
 *
 * Only sqorm.h (plus ddl_int.h) is used: models are read through their
 * public accessors.
 */
#include "sqorm.h"
#include "ddl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QMAX 160

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

static int sb_ident(sbuf *b, int dialect, const char *name, sq_err *err) {
  char q[QMAX];
  int rc = sq_quote_ident(dialect, name, strlen(name), q, sizeof q, err);
  if (rc) return rc;
  sb_puts(b, q);
  return SQ_OK;
}

static int nomem(sq_err *err) { return sq_err_set(err, SQ_ENOMEM, "out of memory rendering DDL"); }

/* Moves b's text into the list as one statement. */
static int push(sq_sql_list *l, sbuf *b, sq_err *err) {
  if (b->oom) return nomem(err);
  char **v = realloc(l->sql, (size_t)(l->n + 1) * sizeof *v);
  if (!v) return nomem(err);
  l->sql = v;
  if (!b->p) sb_putn(b, "", 0);
  if (b->oom) return nomem(err);
  l->sql[l->n++] = b->p;
  b->p = NULL;
  b->n = b->cap = 0;
  return SQ_OK;
}

static int valid_dialect(int d) { return d == SQ_DIALECT_SQLITE || d == SQ_DIALECT_MYSQL || d == SQ_DIALECT_POSTGRES; }

/* CONSTRAINT "name" FOREIGN KEY ("col") REFERENCES "t" ("col") ON DELETE x ON UPDATE y */
static int fk_clause(sbuf *b, const sq_model *m, const sq_fk *fk, int dialect, sq_err *err) {
  int del, upd, rc;
  sq_fk_actions(m, fk, &del, &upd, NULL);
  const sq_col *c = sq_model_col(m, fk->col), *t = sq_model_col(fk->target, fk->target_col);
  if (!c || !t) return sq_err_set(err, SQ_EUSAGE, "foreign key %s: column out of range", fk->name);
  sb_puts(b, "CONSTRAINT ");
  if ((rc = sb_ident(b, dialect, fk->name, err))) return rc;
  sb_puts(b, " FOREIGN KEY (");
  if ((rc = sb_ident(b, dialect, c->name, err))) return rc;
  sb_puts(b, ") REFERENCES ");
  if ((rc = sb_ident(b, dialect, sq_model_table(fk->target), err))) return rc;
  sb_puts(b, " (");
  if ((rc = sb_ident(b, dialect, t->name, err))) return rc;
  sb_puts(b, ") ON DELETE ");
  sb_puts(b, sq_fk_action_sql(del));
  sb_puts(b, " ON UPDATE ");
  sb_puts(b, sq_fk_action_sql(upd));
  return SQ_OK;
}

/* Whether fk is written inside CREATE TABLE on dialect. */
static int fk_inline(const sq_model *m, const sq_fk *fk, int dialect) {
  int cons;
  sq_fk_actions(m, fk, NULL, NULL, &cons);
  if (cons == SQ_CONSTRAINTS_OFF) return 0;
  return cons == SQ_CONSTRAINTS_ON || dialect == SQ_DIALECT_SQLITE;
}

int sq_ddl_fk_inline(const sq_model *m, int dialect, char **out, sq_err *err) {
  *out = NULL;
  sbuf b = {0};
  for (int i = 0; i < sq_model_nfks(m); i++) {
    const sq_fk *fk = sq_model_fk(m, i);
    if (!fk_inline(m, fk, dialect)) continue;
    sb_puts(&b, ", ");
    int rc = fk_clause(&b, m, fk, dialect, err);
    if (rc) {
      free(b.p);
      return rc;
    }
  }
  if (b.oom) {
    free(b.p);
    return nomem(err);
  }
  *out = b.p;
  return SQ_OK;
}

int sq_render_add_fk(const sq_model *m, const sq_fk *fk, int dialect, sq_sql_list *out, sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  if (!m || !fk || !out) return sq_err_set(err, SQ_EUSAGE, "sq_render_add_fk: bad arguments");
  if (dialect == SQ_DIALECT_SQLITE)
    return sq_err_set(err, SQ_EUSAGE, "SQLite can't add a foreign key to a table; it is rebuilt (sq_plan_alter_fks)");
  if (!valid_dialect(dialect)) return sq_err_set(err, SQ_EUSAGE, "DDL: unknown dialect %d", dialect);
  sbuf b = {0};
  sb_puts(&b, "ALTER TABLE ");
  int rc = sb_ident(&b, dialect, sq_model_table(m), err);
  sb_puts(&b, " ADD ");
  if (!rc) rc = fk_clause(&b, m, fk, dialect, err);
  if (!rc) rc = push(out, &b, err);
  free(b.p);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Dependency order                                                     */
/* ------------------------------------------------------------------ */

/* 1 when some association owns m as the join model it built. */
static int core_join_model(const sq_assoc *a) {
  if (a->kind != SQ_ASSOC_BELONGS_TO_MANY || !a->through) return 0;
  if (a->owns_through) return 1;
  const sq_model *t = a->target;
  for (int i = 0; i < sq_model_nassocs(t); i++) {
    const sq_assoc *x = sq_model_assoc(t, i);
    if (x->owns_through && x->through == a->through) return 1;
  }
  return 0;
}

static int index_of(const sq_model **v, int n, const sq_model *m) {
  for (int i = 0; i < n; i++)
    if (v[i] == m) return i;
  return -1;
}

/* 1 when model i must come after model j: a constrained key of i
 * references j. */
static int depends(const sq_model *a, const sq_model *b) {
  if (a == b) return 0;
  for (int k = 0; k < sq_model_nfks(a); k++) {
    const sq_fk *fk = sq_model_fk(a, k);
    int cons;
    sq_fk_actions(a, fk, NULL, NULL, &cons);
    if (cons == SQ_CONSTRAINTS_ON && fk->target == b) return 1;
  }
  return 0;
}

/* Names the cycle among the models not placed yet, for the message. */
static void cycle_message(const sq_model **v, int n, const char *placed, sq_err *err) {
  int start = -1;
  for (int i = 0; i < n && start < 0; i++)
    if (!placed[i]) start = i;
  /* Walk unplaced dependencies until a model repeats: that is a cycle. */
  int *seen = calloc((size_t)n, sizeof *seen), *path = calloc((size_t)n + 1, sizeof *path);
  if (!seen || !path) {
    free(seen);
    free(path);
    sq_err_set(err, SQ_EUSAGE, "the models' foreign keys form a cycle");
    return;
  }
  int len = 0, cur = start;
  while (cur >= 0 && !seen[cur]) {
    seen[cur] = len + 1;
    path[len++] = cur;
    int next = -1;
    for (int j = 0; j < n && next < 0; j++)
      if (!placed[j] && depends(v[cur], v[j])) next = j;
    cur = next;
  }
  char msg[700];
  size_t o = 0;
  msg[0] = '\0';
  if (cur >= 0) {
    for (int i = seen[cur] - 1; i < len; i++) {
      const sq_model *a = v[path[i]], *b = v[path[i + 1 < len ? i + 1 : seen[cur] - 1]];
      const char *col = "?";
      for (int k = 0; k < sq_model_nfks(a); k++)
        if (sq_model_fk(a, k)->target == b) col = sq_model_col(a, sq_model_fk(a, k)->col)->name;
      int w = snprintf(msg + o, sizeof msg - o, "%s%s.%s -> %s", i > seen[cur] - 1 ? ", " : "", sq_model_table(a),
                       col, sq_model_table(b));
      if (w < 0 || (size_t)w >= sizeof msg - o) break;
      o += (size_t)w;
    }
  }
  free(seen);
  free(path);
  sq_err_set(err, SQ_EUSAGE,
             "the tables' foreign keys form a cycle (%s): set constraints = false (no key) or deferred (added after "
             "the tables) on one of these associations",
             msg);
}

int sq_schema_order(sq_model *const *models, int n, const sq_model ***out, int *nout, sq_err *err) {
  *out = NULL;
  *nout = 0;
  if (n < 0 || (n > 0 && !models)) return sq_err_set(err, SQ_EUSAGE, "sq_schema_order: bad model list");
  /* The set: the models given, then join models built for them. */
  int cap = n + 4, cnt = 0;
  const sq_model **v = malloc(sizeof *v * (size_t)cap);
  if (!v) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    if (!models[i]) {
      free(v);
      return sq_err_set(err, SQ_EUSAGE, "sq_schema_order: a NULL model");
    }
    if (index_of(v, cnt, models[i]) < 0) v[cnt++] = models[i];
  }
  for (int i = 0; i < cnt; i++)
    for (int k = 0; k < sq_model_nassocs(v[i]); k++) {
      const sq_assoc *a = sq_model_assoc(v[i], k);
      if (!core_join_model(a) || index_of(v, cnt, a->through) >= 0) continue;
      if (cnt == cap) {
        cap *= 2;
        const sq_model **nv = realloc(v, sizeof *v * (size_t)cap);
        if (!nv) {
          free(v);
          return sq_err_set(err, SQ_ENOMEM, "out of memory");
        }
        v = nv;
      }
      v[cnt++] = a->through;
    }
  /* Stable topological order: repeatedly the first model whose
   * dependencies are all placed. */
  const sq_model **res = malloc(sizeof *res * (size_t)(cnt ? cnt : 1));
  char *placed = calloc((size_t)(cnt ? cnt : 1), 1);
  if (!res || !placed) {
    free(v);
    free(res);
    free(placed);
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  int done = 0;
  while (done < cnt) {
    int progress = 0;
    for (int i = 0; i < cnt; i++) {
      if (placed[i]) continue;
      int ready = 1;
      for (int j = 0; j < cnt && ready; j++)
        if (!placed[j] && j != i && depends(v[i], v[j])) ready = 0;
      if (!ready) continue;
      placed[i] = 1;
      res[done++] = v[i];
      progress = 1;
      break;
    }
    if (!progress) {
      cycle_message(v, cnt, placed, err);
      free(v);
      free(res);
      free(placed);
      return SQ_EUSAGE;
    }
  }
  free(v);
  free(placed);
  *out = res;
  *nout = cnt;
  return SQ_OK;
}

/* Appends every statement of src to dst (moving the strings). */
static int append(sq_sql_list *dst, sq_sql_list *src, sq_err *err) {
  if (src->n == 0) return SQ_OK;
  char **v = realloc(dst->sql, (size_t)(dst->n + src->n) * sizeof *v);
  if (!v) return nomem(err);
  dst->sql = v;
  for (int i = 0; i < src->n; i++) dst->sql[dst->n++] = src->sql[i];
  free(src->sql);
  src->sql = NULL;
  src->n = 0;
  return SQ_OK;
}

int sq_render_create_all(sq_model *const *models, int n, int dialect, int if_not_exists, sq_sql_list *out,
                         sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_render_create_all: no output list");
  if (!valid_dialect(dialect)) return sq_err_set(err, SQ_EUSAGE, "DDL: unknown dialect %d", dialect);
  const sq_model **order;
  int cnt, rc = sq_schema_order(models, n, &order, &cnt, err);
  if (rc) return rc;
  for (int i = 0; !rc && i < cnt; i++) {
    sq_sql_list one = {0};
    rc = sq_render_create(order[i], dialect, if_not_exists, &one, err);
    if (!rc) rc = append(out, &one, err);
    sq_sql_list_free(&one);
  }
  for (int i = 0; !rc && !if_not_exists && dialect != SQ_DIALECT_SQLITE && i < cnt; i++) {
    for (int k = 0; !rc && k < sq_model_nfks(order[i]); k++) {
      const sq_fk *fk = sq_model_fk(order[i], k);
      int cons;
      sq_fk_actions(order[i], fk, NULL, NULL, &cons);
      if (cons != SQ_CONSTRAINTS_DEFERRED) continue;
      sq_sql_list one = {0};
      rc = sq_render_add_fk(order[i], fk, dialect, &one, err);
      if (!rc) rc = append(out, &one, err);
      sq_sql_list_free(&one);
    }
  }
  free(order);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* ALTER TABLE t DROP FOREIGN KEY name (MySQL). */
static int drop_fk_sql(const sq_model *m, const sq_fk *fk, sq_sql_list *out, sq_err *err) {
  sbuf b = {0};
  sb_puts(&b, "ALTER TABLE ");
  int rc = sb_ident(&b, SQ_DIALECT_MYSQL, sq_model_table(m), err);
  sb_puts(&b, " DROP FOREIGN KEY ");
  if (!rc) rc = sb_ident(&b, SQ_DIALECT_MYSQL, fk->name, err);
  if (!rc) rc = push(out, &b, err);
  free(b.p);
  return rc;
}

/* A deferred key between two models of the set: the one kind of key
 * that can close a cycle among them. */
static int deferred_inside(const sq_model **v, int n, const sq_model *m, const sq_fk *fk) {
  int cons;
  sq_fk_actions(m, fk, NULL, NULL, &cons);
  return cons == SQ_CONSTRAINTS_DEFERRED && fk->target != m && index_of(v, n, fk->target) >= 0;
}

/* The DROP TABLE statements of an ordered set (live: which deferred keys
 * to drop first on MySQL, NULL to drop them all). */
static int drop_tables(const sq_model **order, int cnt, int dialect, int if_exists, const char *live_fks, sq_sql_list *out,
                       sq_err *err) {
  int rc = SQ_OK;
  /* MariaDB refuses to drop a table another one references, even in the
   * same DROP: a cycle (only deferred keys make one) is cut first. */
  for (int i = 0, f = 0; !rc && dialect == SQ_DIALECT_MYSQL && i < cnt; i++)
    for (int k = 0; !rc && k < sq_model_nfks(order[i]); k++) {
      const sq_fk *fk = sq_model_fk(order[i], k);
      if (!deferred_inside(order, cnt, order[i], fk)) continue;
      if (!live_fks || live_fks[f]) rc = drop_fk_sql(order[i], fk, out, err);
      f++;
    }
  sbuf b = {0};
  for (int i = cnt - 1; !rc && i >= 0; i--) {
    if (dialect == SQ_DIALECT_SQLITE || i == cnt - 1) sb_puts(&b, if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
    else sb_puts(&b, ", ");
    rc = sb_ident(&b, dialect, sq_model_table(order[i]), err);
    if (!rc && (dialect == SQ_DIALECT_SQLITE || i == 0)) rc = push(out, &b, err);
  }
  free(b.p);
  return rc;
}

int sq_render_drop_all(sq_model *const *models, int n, int dialect, int if_exists, sq_sql_list *out, sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  if (!out) return sq_err_set(err, SQ_EUSAGE, "sq_render_drop_all: no output list");
  if (!valid_dialect(dialect)) return sq_err_set(err, SQ_EUSAGE, "DDL: unknown dialect %d", dialect);
  const sq_model **order;
  int cnt, rc = sq_schema_order(models, n, &order, &cnt, err);
  if (rc) return rc;
  for (int i = 0; if_exists && dialect == SQ_DIALECT_MYSQL && i < cnt && !rc; i++)
    for (int k = 0; k < sq_model_nfks(order[i]); k++)
      if (deferred_inside(order, cnt, order[i], sq_model_fk(order[i], k))) {
        rc = sq_err_set(err, SQ_EUSAGE,
                        "DROP IF EXISTS of tables that reference each other (deferred key %s) needs the live schema on "
                        "MySQL: use sq_plan_drop_all",
                        sq_model_fk(order[i], k)->name);
        break;
      }
  if (!rc) rc = drop_tables(order, cnt, dialect, if_exists, NULL, out, err);
  free(order);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The live keys                                                        */
/* ------------------------------------------------------------------ */

/* Catalog rows as text, row-major, NULL cells kept as NULL. */
typedef struct srows {
  int ncols, nrows, cap;
  char **cells;
} srows;

static void srows_free(srows *r) {
  for (int i = 0; i < r->nrows * r->ncols; i++) free(r->cells[i]);
  free(r->cells);
  memset(r, 0, sizeof *r);
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static int srows_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  srows *r = ud;
  if (r->nrows == 0) r->ncols = ncols;
  if (ncols != r->ncols) return sq_err_set(err, SQ_EINTERNAL, "catalog row width changed");
  if (r->nrows == r->cap) {
    int cap = r->cap ? r->cap * 2 : 8;
    char **v = realloc(r->cells, (size_t)cap * (size_t)(ncols ? ncols : 1) * sizeof *v);
    if (!v) return sq_err_set(err, SQ_ENOMEM, "out of memory reading the catalog");
    r->cells = v;
    r->cap = cap;
  }
  char **row = r->cells + (size_t)r->nrows * (size_t)ncols;
  for (int i = 0; i < ncols; i++) row[i] = NULL;
  r->nrows++;
  for (int i = 0; i < ncols; i++) {
    const sq_value *v = &vals[i];
    char num[32];
    switch (v->type) {
    case SQ_VNULL: continue;
    case SQ_VINT:
      snprintf(num, sizeof num, "%lld", (long long)v->u.i);
      row[i] = dupn(num, strlen(num));
      break;
    case SQ_VBOOL: row[i] = dupn(v->u.b ? "1" : "0", 1); break;
    case SQ_VFLOAT:
      snprintf(num, sizeof num, "%.17g", v->u.f);
      row[i] = dupn(num, strlen(num));
      break;
    default: row[i] = dupn(v->u.s.p ? v->u.s.p : "", v->u.s.p ? v->u.s.n : 0); break;
    }
    if (!row[i]) return sq_err_set(err, SQ_ENOMEM, "out of memory reading the catalog");
  }
  return 0;
}

static int catalog(sq_conn *c, const char *sql, const char *table, srows *out, sq_err *err) {
  sq_row_sink sink = {out, NULL, srows_row};
  sq_value p = sq_text(table, strlen(table));
  sq_result res;
  return sq_conn_exec_native(c, sql, strlen(sql), &p, 1, &sink, &res, err);
}

static const char *cell(const srows *r, int row, int col) {
  return col < r->ncols ? r->cells[row * r->ncols + col] : NULL;
}

static const char SQL_SQLITE_HAS[] = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?";
static const char SQL_SQLITE_FKS[] = "SELECT \"from\", \"table\", \"to\", NULL FROM pragma_foreign_key_list(?)";
static const char SQL_MYSQL_HAS[] =
    "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?";
static const char SQL_MYSQL_FKS[] =
    "SELECT COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME, CONSTRAINT_NAME "
    "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? "
    "AND REFERENCED_TABLE_NAME IS NOT NULL";
static const char SQL_PG_HAS[] =
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind IN ('r', 'p')";
static const char SQL_PG_FKS[] =
    "SELECT a.attname, cf.relname, af.attname, c.conname FROM pg_constraint c "
    "JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace "
    "JOIN pg_class cf ON cf.oid = c.confrelid "
    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
    "JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] "
    "WHERE c.contype = 'f' AND n.nspname = current_schema() AND cl.relname = $1";

static int lc(int ch) { return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch; }

/* Names as the server compares them: exact on PostgreSQL, ignoring
 * ASCII case on SQLite and MySQL. */
static int name_eq(int dialect, const char *a, const char *b) {
  if (!a || !b) return 0;
  if (dialect == SQ_DIALECT_POSTGRES) return !strcmp(a, b);
  for (; *a && *b; a++, b++)
    if (lc((unsigned char)*a) != lc((unsigned char)*b)) return 0;
  return *a == *b;
}

/* 1 when the live table already has fk: the same column referencing the
 * same table and column, or a constraint of the same name. */
static int live_has(int dialect, const srows *r, const sq_model *m, const sq_fk *fk) {
  const char *col = sq_model_col(m, fk->col)->name;
  const char *tt = sq_model_table(fk->target), *tc = sq_model_col(fk->target, fk->target_col)->name;
  for (int i = 0; i < r->nrows; i++) {
    if (name_eq(dialect, cell(r, i, 0), col) && name_eq(dialect, cell(r, i, 1), tt) &&
        name_eq(dialect, cell(r, i, 2), tc))
      return 1;
    if (cell(r, i, 3) && name_eq(dialect, cell(r, i, 3), fk->name)) return 1;
  }
  return 0;
}

int sq_plan_alter_fks(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  const sq_driver *drv = sq_conn_driver(c);
  if (!drv || !m || !out) return sq_err_set(err, SQ_EUSAGE, "sq_plan_alter_fks: bad arguments");
  int dialect = drv->dialect;
  const char *table = sq_model_table(m);
  srows has = {0}, fks = {0};
  int rc = catalog(c, dialect == SQ_DIALECT_SQLITE ? SQL_SQLITE_HAS : dialect == SQ_DIALECT_MYSQL ? SQL_MYSQL_HAS : SQL_PG_HAS,
                   table, &has, err);
  int exists = !rc && has.nrows == 1 && cell(&has, 0, 0) && strcmp(cell(&has, 0, 0), "0");
  if (!rc && exists)
    rc = catalog(c, dialect == SQ_DIALECT_SQLITE ? SQL_SQLITE_FKS : dialect == SQ_DIALECT_MYSQL ? SQL_MYSQL_FKS : SQL_PG_FKS,
                 table, &fks, err);
  int missing = 0;
  for (int i = 0; !rc && exists && i < sq_model_nfks(m); i++) {
    const sq_fk *fk = sq_model_fk(m, i);
    int cons;
    sq_fk_actions(m, fk, NULL, NULL, &cons);
    if (cons == SQ_CONSTRAINTS_OFF || live_has(dialect, &fks, m, fk)) continue;
    missing++;
    if (dialect == SQ_DIALECT_SQLITE) continue;
    sq_sql_list one = {0};
    rc = sq_render_add_fk(m, fk, dialect, &one, err);
    if (!rc) rc = append(out, &one, err);
    sq_sql_list_free(&one);
  }
  srows_free(&has);
  srows_free(&fks);
  if (!rc && missing && dialect == SQ_DIALECT_SQLITE) rc = sq_plan_sqlite_rebuild(c, m, out, err);
  if (rc) sq_sql_list_free(out);
  return rc;
}

int sq_plan_drop_all(sq_conn *c, sq_model *const *models, int n, sq_sql_list *out, sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  const sq_driver *drv = sq_conn_driver(c);
  if (!drv || !out) return sq_err_set(err, SQ_EUSAGE, "sq_plan_drop_all: bad arguments");
  int dialect = drv->dialect;
  const sq_model **order;
  int cnt, rc = sq_schema_order(models, n, &order, &cnt, err);
  if (rc) return rc;
  /* Which deferred keys inside the set exist (MySQL drops them first). */
  int nd = 0;
  for (int i = 0; i < cnt; i++)
    for (int k = 0; k < sq_model_nfks(order[i]); k++) nd += deferred_inside(order, cnt, order[i], sq_model_fk(order[i], k));
  char *live = calloc((size_t)nd + 1, 1);
  if (!live) rc = sq_err_set(err, SQ_ENOMEM, "out of memory");
  for (int i = 0, f = 0; !rc && dialect == SQ_DIALECT_MYSQL && i < cnt; i++) {
    int any = 0;
    for (int k = 0; k < sq_model_nfks(order[i]); k++) any |= deferred_inside(order, cnt, order[i], sq_model_fk(order[i], k));
    if (!any) continue;
    srows fks = {0};
    rc = catalog(c, SQL_MYSQL_FKS, sq_model_table(order[i]), &fks, err);
    for (int k = 0; !rc && k < sq_model_nfks(order[i]); k++) {
      const sq_fk *fk = sq_model_fk(order[i], k);
      if (!deferred_inside(order, cnt, order[i], fk)) continue;
      for (int r = 0; r < fks.nrows; r++)
        if (name_eq(dialect, cell(&fks, r, 3), fk->name)) live[f] = 1;
      f++;
    }
    srows_free(&fks);
  }
  if (!rc) rc = drop_tables(order, cnt, dialect, 1, live, out, err);
  free(live);
  free(order);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Running a SQLite rebuild                                             */
/* ------------------------------------------------------------------ */

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
    if (ncols >= 3 && (v[0].type == SQ_VTEXT) && v[2].type == SQ_VTEXT)
      snprintf(k->detail, sizeof k->detail, "table %.*s references %.*s", (int)(v[0].u.s.n > 60 ? 60 : v[0].u.s.n),
               v[0].u.s.p, (int)(v[2].u.s.n > 60 ? 60 : v[2].u.s.n), v[2].u.s.p);
  }
  return 0;
}

static int run(sq_conn *c, const char *sql, counter *k, sq_err *err) {
  sq_row_sink sink = {k, NULL, count_row};
  sq_result res;
  if (k) memset(k, 0, sizeof *k);
  return sq_conn_exec_native(c, sql, strlen(sql), NULL, 0, k ? &sink : NULL, &res, err);
}

int sq_sqlite_run_rebuild(sq_conn *c, const sq_sql_list *plan, sq_err *err) {
  const sq_driver *drv = sq_conn_driver(c);
  if (!drv || !plan) return sq_err_set(err, SQ_EUSAGE, "sq_sqlite_run_rebuild: bad arguments");
  if (drv->dialect != SQ_DIALECT_SQLITE) return sq_err_set(err, SQ_EUSAGE, "sq_sqlite_run_rebuild: not a SQLite connection");
  if (plan->n == 0) return SQ_OK;
  counter k;
  int rc = run(c, "PRAGMA foreign_keys = OFF", NULL, err);
  if (!rc) rc = run(c, "PRAGMA foreign_keys", &k, err);
  if (!rc && k.first != 0) {
    run(c, "PRAGMA foreign_keys = ON", NULL, err);
    return sq_err_set(err, SQ_EUSAGE,
                      "a SQLite table rebuild must run outside a transaction (SQLite ignores PRAGMA foreign_keys inside "
                      "one, and dropping the old table would fire the ON DELETE actions of tables referencing it)");
  }
  if (!rc) rc = run(c, "BEGIN", NULL, err);
  if (rc) {
    sq_err keep = *err;
    run(c, "PRAGMA foreign_keys = ON", NULL, err);
    *err = keep;
    return rc;
  }
  for (int i = 0; !rc && i < plan->n; i++) rc = run(c, plan->sql[i], NULL, err);
  if (!rc) {
    rc = run(c, "PRAGMA foreign_key_check", &k, err);
    if (!rc && k.rows > 0)
      rc = sq_err_set(err, SQ_ECONSTRAINT, "after the rebuild %d row%s violate a foreign key (%s); rolled back", k.rows,
                      k.rows == 1 ? "" : "s", k.detail[0] ? k.detail : "see PRAGMA foreign_key_check");
  }
  sq_err keep = *err;
  sq_err scratch;
  if (!rc) {
    rc = run(c, "COMMIT", NULL, err);
    if (rc) {
      keep = *err;
      run(c, "ROLLBACK", NULL, &scratch);
    }
  } else {
    run(c, "ROLLBACK", NULL, &scratch);
  }
  int rc2 = run(c, "PRAGMA foreign_keys = ON", NULL, &scratch);
  if (rc) {
    *err = keep;
    return rc;
  }
  if (rc2) {
    *err = scratch;
    sq_conn_mark_dirty(c); /* the pool's reset turns foreign keys back on */
    return rc2;
  }
  return SQ_OK;
}
