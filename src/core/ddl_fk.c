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
#include "ddl_int.h"
#include "schema_int.h"

/* Moves b's text into the list as one statement. */
static int push(sq_sql_list *l, sbuf *b, sq_err *err) { return sq_ddl_push(l, b, err); }

static int valid_dialect(int d) { return sq_ddl_valid_dialect(d); }

static int sb_ident(sbuf *b, int dialect, const char *name, sq_err *err) { return sq_ddl_ident(b, dialect, name, err); }

/* ALTER TABLE t ADD CONSTRAINT name FOREIGN KEY ...: the add_foreign_key
 * op of the key, rendered. */
int sq_render_add_fk(const sq_model *m, const sq_fk *fk, int dialect, sq_sql_list *out, sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  if (!m || !fk || !out) return sq_err_set(err, SQ_EUSAGE, "sq_render_add_fk: bad arguments");
  if (dialect == SQ_DIALECT_SQLITE)
    return sq_err_set(err, SQ_EUSAGE, "SQLite can't add a foreign key to a table; it is rebuilt (sq_plan_alter_fks)");
  if (!valid_dialect(dialect)) return sq_err_set(err, SQ_EUSAGE, "DDL: unknown dialect %d", dialect);
  sq_sop_list l = {0};
  sq_sfk *f = sq_sop_list_alloc(&l, sizeof *f, err);
  sq_sop *op = f ? sq_sop_list_add(&l, SQ_SOP_ADD_FOREIGN_KEY, sq_model_table(m), err) : NULL;
  int rc = op ? sq_schema_sfk_from_fk(&l, m, fk, f, err) : SQ_ENOMEM;
  if (!rc) {
    op->fk = f;
    rc = sq_schema_render(op, 1, dialect, 0, out, err);
  }
  sq_sop_list_free(&l);
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

static int append(sq_sql_list *dst, sq_sql_list *src, sq_err *err) { return sq_ddl_append(dst, src, err); }

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

typedef sq_srows srows;
#define srows_free sq_srows_free
#define cell sq_srows_cell
#define name_eq sq_ddl_name_eq

static int catalog(sq_conn *c, const char *sql, const char *table, srows *out, sq_err *err) {
  return sq_ddl_catalog(c, sql, table, NULL, out, err);
}

static const char SQL_SQLITE_HAS[] = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?";
/* The live foreign keys of a table: column, referenced table, referenced
 * column, constraint name (NULL on SQLite), ON DELETE, ON UPDATE (the
 * actions as SQL words, or PostgreSQL's one-letter codes). */
static const char SQL_SQLITE_FKS[] =
    "SELECT \"from\", \"table\", \"to\", NULL, on_delete, on_update FROM pragma_foreign_key_list(?)";
static const char SQL_MYSQL_HAS[] =
    "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?";
static const char SQL_MYSQL_FKS[] =
    "SELECT k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, k.CONSTRAINT_NAME, "
    "r.DELETE_RULE, r.UPDATE_RULE "
    "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
    "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
    "AND r.TABLE_NAME = k.TABLE_NAME "
    "WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL";
static const char SQL_PG_HAS[] =
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind IN ('r', 'p')";
static const char SQL_PG_FKS[] =
    "SELECT a.attname, cf.relname, af.attname, c.conname, c.confdeltype::text, c.confupdtype::text "
    "FROM pg_constraint c "
    "JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace "
    "JOIN pg_class cf ON cf.oid = c.confrelid "
    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
    "JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] "
    "WHERE c.contype = 'f' AND n.nspname = current_schema() AND cl.relname = $1";

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

int sq_ddl_table_exists(sq_conn *c, int dialect, const char *table, int *exists, sq_err *err) {
  srows has = {0};
  int rc = catalog(c, dialect == SQ_DIALECT_SQLITE ? SQL_SQLITE_HAS : dialect == SQ_DIALECT_MYSQL ? SQL_MYSQL_HAS : SQL_PG_HAS,
                   table, &has, err);
  *exists = !rc && has.nrows == 1 && cell(&has, 0, 0) && strcmp(cell(&has, 0, 0), "0");
  srows_free(&has);
  return rc;
}

int sq_ddl_fk_action(const char *s) {
  if (!s) return SQ_FK_DEFAULT;
  if (!strcmp(s, "c") || !strcmp(s, "CASCADE")) return SQ_FK_CASCADE;
  if (!strcmp(s, "n") || !strcmp(s, "SET NULL")) return SQ_FK_SET_NULL;
  if (!strcmp(s, "r") || !strcmp(s, "RESTRICT")) return SQ_FK_RESTRICT;
  if (!strcmp(s, "a") || !strcmp(s, "NO ACTION")) return SQ_FK_NO_ACTION;
  return SQ_FK_DEFAULT; /* SET DEFAULT: not one sqorm writes */
}

int sq_ddl_live_fks(sq_conn *c, int dialect, const char *table, srows *out, sq_err *err) {
  return catalog(c, dialect == SQ_DIALECT_SQLITE ? SQL_SQLITE_FKS : dialect == SQ_DIALECT_MYSQL ? SQL_MYSQL_FKS : SQL_PG_FKS,
                 table, out, err);
}

int sq_ddl_missing_fks(const sq_model *m, int dialect, const srows *live, int only_deferred, sq_sop_list *out,
                       sq_err *err) {
  for (int i = 0; i < sq_model_nfks(m); i++) {
    const sq_fk *fk = sq_model_fk(m, i);
    int cons;
    sq_fk_actions(m, fk, NULL, NULL, &cons);
    if (cons == SQ_CONSTRAINTS_OFF || (only_deferred && cons != SQ_CONSTRAINTS_DEFERRED)) continue;
    if (live && live_has(dialect, live, m, fk)) continue;
    sq_sfk *f = sq_sop_list_alloc(out, sizeof *f, err);
    sq_sop *op = f ? sq_sop_list_add(out, SQ_SOP_ADD_FOREIGN_KEY, sq_model_table(m), err) : NULL;
    if (!op) return SQ_ENOMEM;
    op->fk = f;
    int rc = sq_schema_sfk_from_fk(out, m, fk, f, err);
    if (rc) return rc;
  }
  return SQ_OK;
}

/*
 * sync{ alter = true }'s foreign keys: the keys part of the difference
 * (constrained keys the live table lacks), rendered one ALTER TABLE per
 * key on MySQL/PostgreSQL, as one rebuild on SQLite. Empty when nothing
 * is missing or the table doesn't exist.
 */
int sq_plan_alter_fks(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err) {
  if (out) {
    out->sql = NULL;
    out->n = 0;
  }
  const sq_driver *drv = sq_conn_driver(c);
  if (!drv || !m || !out) return sq_err_set(err, SQ_EUSAGE, "sq_plan_alter_fks: bad arguments");
  sq_sop_list ops = {0};
  int rc = sq_ddl_diff_model(c, m, 0, SQ_DIFF_FKS, NULL, &ops, err);
  if (!rc) rc = sq_schema_plan(c, ops.ops, ops.n, 0, out, err);
  sq_sop_list_free(&ops);
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

