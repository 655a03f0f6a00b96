/*
 * ddl.c - schema statements for a model: CREATE TABLE and DROP TABLE
 * (rendered as schema operations, schema.c), and sync{ alter = true }'s
 * difference between a model and its live table, computed by reading
 * the table's catalog and given as schema operations that the same
 * renderer turns into SQL.
 *
 * The model is read through its public accessors.
 */
#include "ddl_int.h"
#include "schema_int.h"

#include <math.h>

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
 * The statements that create the model's table: the create_table op of
 * the model (sq_sop_from_model), rendered. CREATE TABLE, then on
 * PostgreSQL one COMMENT ON per commented column, then (SQLite and
 * PostgreSQL) one CREATE INDEX per model index. On failure out is empty.
 */
int sq_render_create(const sq_model *m, int dialect, int if_not_exists, sq_sql_list *out, sq_err *err) {
  int rc = check_args(m, dialect, out, err);
  if (rc) return rc;
  sq_sop_list ops = {0};
  rc = sq_sop_from_model(m, &ops, err);
  if (!rc) {
    ops.ops[0].if_exists = if_not_exists;
    rc = sq_schema_create_sql(out, dialect, &ops.ops[0], err);
  }
  sq_sop_list_free(&ops);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* DROP TABLE [IF EXISTS] "t": its indexes go with it. */
int sq_render_drop(const sq_model *m, int dialect, int if_exists, sq_sql_list *out, sq_err *err) {
  int rc = check_args(m, dialect, out, err);
  if (rc) return rc;
  sbuf b = {0};
  sb_puts(&b, if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
  rc = sq_ddl_ident(&b, dialect, sq_model_table(m), err);
  if (!rc) rc = sq_ddl_push(out, &b, err);
  sb_free(&b);
  if (rc) sq_sql_list_free(out);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Reading the live table                                               */
/* ------------------------------------------------------------------ */

typedef sq_srows srows;
#define srows_free sq_srows_free
#define cell sq_srows_cell
#define name_eq sq_ddl_name_eq

static int catalog(sq_conn *c, const char *sql, const char *table, srows *out, sq_err *err) {
  return sq_ddl_catalog(c, sql, table, NULL, out, err);
}

/* Type families: what "the same type" means when a server reports a
 * type in its own spelling (int(11), character varying, tinyint(1)). */
enum {
  F_OTHER = 0, F_INT, F_BIGINT, F_SMALLINT, F_TINYINT, F_BOOL, F_FLOAT, F_DOUBLE, F_DECIMAL,
  F_STRING, F_CHAR, F_TEXT, F_DATE, F_DATETIME, F_BLOB, F_UUID, F_JSON
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
  else if (!strcmp(w1, "json") || !strcmp(w1, "jsonb")) t->fam = F_JSON;
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
  srows erows;       /* enum labels: PostgreSQL (column, label) in order; SQLite: the table's CREATE text */
  lcol *cols;
  int ncols;
  lidx *idx;
  int nidx;
} live;

static void live_free(live *l) {
  srows_free(&l->crows);
  srows_free(&l->irows);
  srows_free(&l->erows);
  free(l->cols);
  for (int k = 0; k < l->nidx; k++) free(l->idx[k].cols);
  free(l->idx);
  memset(l, 0, sizeof *l);
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
    "WHEN c.data_type = 'USER-DEFINED' THEN c.udt_name ELSE c.data_type END, CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END, c.column_default, "
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

/* Enum labels of the table's columns (PostgreSQL), the table's CREATE
 * text (SQLite: its ENUM CHECKs); MySQL's COLUMN_TYPE spells them out. */
static const char SQL_PG_ENUMS[] =
    "SELECT a.attname, e.enumlabel FROM pg_attribute AS a JOIN pg_class AS t ON t.oid = a.attrelid "
    "JOIN pg_namespace AS ns ON ns.oid = t.relnamespace JOIN pg_enum AS e ON e.enumtypid = a.atttypid "
    "WHERE ns.nspname = current_schema() AND t.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum, e.enumsortorder";
static const char SQL_SQLITE_TABLE[] = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?";

static int flag(const char *s) { return s && s[0] && s[0] != '0'; }

static int model_has_enum(const sq_model *m) {
  for (int i = 0; i < sq_model_ncols(m); i++)
    if (sq_model_col(m, i)->type == SQ_T_ENUM) return 1;
  return 0;
}

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
  if (dialect != SQ_DIALECT_MYSQL && model_has_enum(m) &&
      (rc = catalog(c, dialect == SQ_DIALECT_POSTGRES ? SQL_PG_ENUMS : SQL_SQLITE_TABLE, table, &l->erows, err)))
    return rc;
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
static int dflt_differs(const sq_cdef *c, const lcol *lv, int dialect, sq_err *err, int *rc) {
  *rc = SQ_OK;
  if (c->auto_increment || lv->autoinc) return 0;
  sbuf want = {0}, a = {0}, b = {0};
  int differs = 0;
  if (c->default_kind == SQ_DEFAULT_VALUE) {
    *rc = sq_ddl_default_sql(&want, c, dialect, err);
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
  int *null_diff; /* per model column: nullability differs */
  int *enum_add;  /* per model column: an ENUM whose live values are a subset of the model's */
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
  free(d->null_diff);
  free(d->enum_add);
  for (int k = 0; k < d->nkeys; k++) free(d->keys[k].cols);
  free(d->keys);
  free(d->drop_key);
}

/* 1 when column i is the first of the composite unique key it names
 * (unique = "name"), so the key is counted once. */
static int first_of_group(const sq_model *m, int i) {
  const sq_col *c = sq_model_col(m, i);
  if (!c->unique || !c->unique[0]) return 0;
  for (int j = 0; j < i; j++) {
    const sq_col *o = sq_model_col(m, j);
    if (o->unique && !strcmp(o->unique, c->unique)) return 0;
  }
  return 1;
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

/* Appends the labels of MySQL's "enum('a','b''c')" to out (a list of
 * owned strings); 0 when the type is no ENUM. */
static int mysql_enum_labels(const char *type, srows *out, sq_err *err) {
  if (!type || strncmp(type, "enum(", 5)) return 0;
  const char *p = type + 5;
  out->ncols = 1;
  sbuf lab = {0};
  while (*p == '\'') {
    sb_reset(&lab);
    p++;
    for (; *p; p++) {
      if (*p == '\'' && p[1] == '\'') {
        sb_putn(&lab, "'", 1);
        p++;
      } else if (*p == '\'') {
        break;
      } else if (*p == '\\' && p[1]) {
        sb_putn(&lab, p + 1, 1);
        p++;
      } else {
        sb_putn(&lab, p, 1);
      }
    }
    if (*p != '\'') break;
    p++;
    char **cells = realloc(out->cells, sizeof *cells * (size_t)(out->nrows + 1));
    char *v = malloc(lab.n + 1);
    if (!cells || !v || lab.oom) {
      if (cells) out->cells = cells;
      free(v);
      sb_free(&lab);
      return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter"), -1;
    }
    memcpy(v, lab.p ? lab.p : "", lab.n + 1);
    out->cells = cells;
    out->cells[out->nrows++] = v;
    out->cap = out->nrows;
    if (*p == ',') p++;
  }
  sb_free(&lab);
  return 1;
}

/*
 * An ENUM column against the live one: the same values (nothing), the
 * live values all among the model's (*add: an add_enum_values op), or
 * anything else (*type_diff: change_column; PostgreSQL can't drop a
 * label, so there a removed value is left alone). SQLite keeps no list:
 * its CHECK is compared as sqorm writes it.
 */
static int enum_diff(const sq_model *m, int dialect, const live *l, const lcol *lv, const sq_cdef *cd, int *type_diff,
                     int *add, sq_err *err) {
  (void)m;
  *add = 0;
  if (dialect == SQ_DIALECT_SQLITE) {
    *type_diff = 0;
    sbuf chk = {0};
    int rc = sq_ddl_enum_check(&chk, cd, err);
    const char *sql = sq_srows_cell(&l->erows, 0, 0);
    if (!rc && chk.oom) rc = sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
    if (!rc && (!sql || !chk.p || !strstr(sql, chk.p + 1))) *add = 1; /* " CHECK (...)" without its space */
    sb_free(&chk);
    return rc;
  }
  srows labels = {0}, *lab = &labels;
  int is_enum;
  if (dialect == SQ_DIALECT_MYSQL) {
    is_enum = mysql_enum_labels(lv->type, &labels, err);
    if (is_enum < 0) {
      srows_free(&labels);
      return err->kind;
    }
  } else {
    /* the live type must be the model's named type */
    is_enum = !strcmp(lv->type, cd->enum_type);
    lab = (srows *)&l->erows;
  }
  int nlive = 0, missing = 0;
  for (int r = 0; is_enum && r < lab->nrows; r++) {
    const char *v;
    if (lab == &labels) v = sq_srows_cell(lab, r, 0);
    else {
      if (!name_eq(dialect, sq_srows_cell(lab, r, 0), cd->name)) continue;
      v = sq_srows_cell(lab, r, 1);
    }
    nlive++;
    int found = 0;
    for (int k = 0; k < cd->nenum && !found; k++) found = v && !strcmp(cd->enum_values[k], v);
    if (!found) missing++;
  }
  srows_free(&labels);
  if (!is_enum || nlive == 0) {
    *type_diff = 1;
    return SQ_OK;
  }
  *type_diff = 0;
  if (missing) {
    /* a value the model dropped: MySQL rewrites the column, PostgreSQL keeps it */
    *type_diff = dialect == SQ_DIALECT_MYSQL;
    return SQ_OK;
  }
  *add = nlive < cd->nenum;
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
  d->null_diff = calloc((size_t)n, sizeof *d->null_diff);
  d->enum_add = calloc((size_t)n, sizeof *d->enum_add);
  if (!d->state || !d->live || !d->type_diff || !d->ai_diff || !d->null_diff || !d->enum_add)
    return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
  sbuf b = {0};
  for (int i = 0; i < n; i++) {
    const sq_col *c = sq_model_col(m, i);
    sq_cdef cd;
    sq_ddl_cdef_from_col(m, c, &cd);
    int rc = sq_ddl_check_col(&cd, dialect, err);
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
    rc = sq_ddl_type_sql(&b, &cd, dialect, err);
    if (rc) {
      sb_free(&b);
      return rc;
    }
    if (b.oom) {
      sb_free(&b);
      return sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
    }
    classify(b.p, &want);
    d->type_diff[i] = !same_type(&want, &lv->t);
    /* MariaDB's JSON is LONGTEXT with a json_valid CHECK */
    if (want.fam == F_JSON && lv->t.fam == F_TEXT && dialect == SQ_DIALECT_MYSQL) d->type_diff[i] = 0;
    if (c->type == SQ_T_ENUM) {
      rc = enum_diff(m, dialect, l, lv, &cd, &d->type_diff[i], &d->enum_add[i], err);
      if (rc) {
        sb_free(&b);
        return rc;
      }
    }
    int null_diff = d->null_diff[i] = !c->primary_key && lv->notnull != !c->allow_null;
    d->ai_diff[i] = dialect != SQ_DIALECT_SQLITE && !c->auto_increment != !lv->autoinc;
    int dflt_diff = dflt_differs(&cd, lv, dialect, err, &rc);
    if (rc) {
      sb_free(&b);
      return rc;
    }
    if (d->type_diff[i] || null_diff || dflt_diff || d->ai_diff[i]) {
      d->state[i] = C_CHANGE;
      d->nchange++;
    } else if (d->enum_add[i]) {
      d->nchange++; /* only values to add: an add_enum_values op */
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
static int check_drops(sq_conn *conn, const sq_model *m, int dialect, const live *l, int flags, int *held_col,
                       sq_err *err) {
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
    rc = sq_ddl_ident(&b, dialect, table, err);
    sb_puts(&b, " WHERE ");
    if (!rc) rc = sq_ddl_ident(&b, dialect, l->cols[j].name, err);
    sb_puts(&b, " IS NOT NULL LIMIT 1");
    if (!rc && b.oom) rc = sq_err_set(err, SQ_ENOMEM, "out of memory planning alter");
    if (rc) break;
    srows r = {0};
    rc = sq_ddl_catalog(conn, b.p, NULL, NULL, &r, err);
    int has = r.nrows > 0;
    srows_free(&r);
    if (rc || !has) continue;
    held_col[j] = 1;
    if (held++ < 8 && o + strlen(l->cols[j].name) + 8 < sizeof names) {
      int k = snprintf(names + o, sizeof names - o, "%s\"%.64s\"", o ? ", " : "", l->cols[j].name);
      if (k > 0) o += (size_t)k;
    }
  }
  sb_free(&b);
  if (rc || (flags & SQ_DIFF_NOTES)) return rc;
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

/* ------------------------------------------------------------------ */
/* The difference as schema operations                                  */
/* ------------------------------------------------------------------ */

/* 1 when key k is rendered inline by an ADD COLUMN (a single-column
 * unique on a new column). */
static int key_inline(const diff *d, const mkey *k) { return !k->name && d->state[k->cols[0]] == C_ADD; }

/* A live type family as the type it most likely was (for PostgreSQL's
 * USING cast). */
static int old_type_of(int fam) {
  switch (fam) {
  case F_INT: return SQ_T_INTEGER;
  case F_BIGINT: return SQ_T_BIGINT;
  case F_SMALLINT:
  case F_TINYINT: return SQ_T_SMALLINT;
  case F_BOOL: return SQ_T_BOOLEAN;
  case F_FLOAT: return SQ_T_FLOAT;
  case F_DOUBLE: return SQ_T_DOUBLE;
  case F_DECIMAL: return SQ_T_DECIMAL;
  case F_STRING: return SQ_T_STRING;
  case F_CHAR: return SQ_T_CHAR;
  case F_TEXT: return SQ_T_TEXT;
  case F_DATE: return SQ_T_DATE;
  case F_DATETIME: return SQ_T_DATETIME;
  case F_BLOB: return SQ_T_BLOB;
  case F_UUID: return SQ_T_UUID;
  case F_JSON: return SQ_T_JSON;
  default: return 0;
  }
}

/* SQLite: the labels of the CHECK ("col" IN ('a', 'b')) sqorm writes
 * for an ENUM column, from the table's CREATE text; 0 when none. */
static int sqlite_enum_labels(const char *sql, const char *col, srows *out, sq_err *err) {
  if (!sql || !col) return 0;
  sbuf head = {0};
  sb_puts(&head, "CHECK (");
  int rc = sq_ddl_ident(&head, SQ_DIALECT_SQLITE, col, err);
  sb_puts(&head, " IN (");
  if (rc || head.oom) {
    sb_free(&head);
    return rc ? -1 : (sq_err_set(err, SQ_ENOMEM, "out of memory"), -1);
  }
  const char *p = strstr(sql, head.p);
  size_t hn = head.n;
  sb_free(&head);
  if (!p) return 0;
  /* the same quoting as MySQL's list, with ", " between the labels */
  sbuf list = {0};
  sb_puts(&list, "enum(");
  p += hn;
  while (*p == '\'') {
    const char *q = p + 1;
    for (; *q; q++) {
      if (*q == '\'' && q[1] == '\'') q++;
      else if (*q == '\'') break;
    }
    if (*q != '\'') break;
    sb_putn(&list, p, (size_t)(q - p + 1));
    p = q + 1;
    if (p[0] == ',' && p[1] == ' ') {
      sb_putn(&list, ",", 1);
      p += 2;
    }
  }
  sb_puts(&list, ")");
  rc = list.oom ? (sq_err_set(err, SQ_ENOMEM, "out of memory"), -1) : mysql_enum_labels(list.p, out, err);
  sb_free(&list);
  return rc;
}

static const char SQL_PG_TYPE_LABELS[] =
    "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
    "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = current_schema() AND t.typname = $1 "
    "ORDER BY e.enumsortorder";

/*
 * The live column j as a column definition (generate's down restores it
 * with it): its type (ENUM values included), nullability and default.
 * Sets op->old_col, and op->note to what it could not say (a default
 * that is an expression); leaves old_col NULL for a type sqorm doesn't
 * write. *sqlite_sql: the table's CREATE text, read on first need.
 */
static int old_column(sq_conn *c, sq_sop_list *out, int dialect, const char *table, const lcol *lv, sq_sop *op,
                      srows *sqlite_sql, sq_err *err) {
  srows labels = {0};
  int rc = SQ_OK, is_enum = 0;
  if (dialect == SQ_DIALECT_MYSQL) {
    is_enum = mysql_enum_labels(lv->type, &labels, err);
  } else if (dialect == SQ_DIALECT_POSTGRES && lv->t.fam == F_OTHER) {
    rc = sq_ddl_catalog(c, SQL_PG_TYPE_LABELS, lv->type, NULL, &labels, err);
    is_enum = !rc && labels.nrows > 0;
  } else if (dialect == SQ_DIALECT_SQLITE && lv->t.fam == F_TEXT) {
    if (!sqlite_sql->ncols) rc = sq_ddl_catalog(c, SQL_SQLITE_TABLE, table, NULL, sqlite_sql, err);
    if (!rc) is_enum = sqlite_enum_labels(sq_srows_cell(sqlite_sql, 0, 0), lv->name, &labels, err);
  }
  if (is_enum < 0) rc = err->kind ? err->kind : SQ_ENOMEM;
  int type = is_enum > 0 ? SQ_T_STRING : old_type_of(lv->t.fam);
  sq_scol *s = NULL;
  if (!rc && type) {
    s = sq_sop_list_alloc(out, sizeof *s, err);
    if (!s) rc = SQ_ENOMEM;
  }
  if (!rc && s) {
    sq_scol_init(s, op->name, type);
    if (!(s->name = sq_sop_list_strdup(out, lv->name, err))) rc = SQ_ENOMEM;
    if (is_enum > 0) {
      const char **v = sq_sop_list_alloc(out, sizeof *v * (size_t)labels.nrows, err);
      for (int i = 0; v && i < labels.nrows; i++)
        if (!(v[i] = sq_sop_list_strdup(out, sq_srows_cell(&labels, i, 0) ? sq_srows_cell(&labels, i, 0) : "", err)))
          v = NULL;
      if (!v) rc = SQ_ENOMEM;
      s->enum_values = v;
      s->nenum_values = labels.nrows;
      char dflt_name[64];
      sq_ddl_enum_type_name(dflt_name, table, s); /* the name sqorm gives it: left unsaid */
      if (!rc && dialect == SQ_DIALECT_POSTGRES && strcmp(dflt_name, lv->type) &&
          !(s->enum_type = sq_sop_list_strdup(out, lv->type, err)))
        rc = SQ_ENOMEM;
    } else if (type == SQ_T_STRING || type == SQ_T_CHAR) {
      s->length = lv->t.a > 0 ? lv->t.a : 0;
    } else if (type == SQ_T_DECIMAL) {
      s->precision = lv->t.a > 0 ? lv->t.a : 0;
      s->scale = lv->t.b > 0 ? lv->t.b : 0;
    }
    s->allow_null = !lv->notnull && !lv->pk;
    /* the default, when it is a constant */
    sbuf b = {0};
    int k = lv->autoinc ? DV_NONE : dflt_norm(lv->dflt, dialect, &b);
    double num;
    const char *txt = b.p ? b.p : "";
    int textual = type == SQ_T_STRING || type == SQ_T_CHAR || type == SQ_T_TEXT || type == SQ_T_DATE ||
                  type == SQ_T_DATETIME || type == SQ_T_UUID || type == SQ_T_JSON;
    if (b.oom) rc = sq_err_set(err, SQ_ENOMEM, "out of memory");
    else if (k == DV_STR || (k == DV_WORD && textual && !as_number(txt, &num))) {
      /* a string; MySQL 8 reports one unquoted (a word): as written */
      const char *src = k == DV_STR ? txt : lv->dflt;
      size_t len = k == DV_STR ? b.n : strlen(lv->dflt);
      char *p = sq_sop_list_alloc(out, len + 1, err);
      if (!p) rc = SQ_ENOMEM;
      else {
        memcpy(p, src, len);
        s->default_kind = SQ_DEFAULT_VALUE;
        s->default_value = sq_text(p, len);
      }
    } else if (k == DV_WORD && type == SQ_T_BOOLEAN && (!strcmp(txt, "true") || !strcmp(txt, "false") ||
                                                        !strcmp(txt, "1") || !strcmp(txt, "0"))) {
      s->default_kind = SQ_DEFAULT_VALUE;
      s->default_value = sq_bool(txt[0] == 't' || txt[0] == '1');
    } else if (k == DV_WORD && as_number(txt, &num)) {
      s->default_kind = SQ_DEFAULT_VALUE;
      s->default_value = (type == SQ_T_INTEGER || type == SQ_T_BIGINT || type == SQ_T_SMALLINT) && num == (double)(int64_t)num
                             ? sq_int((int64_t)num)
                             : sq_float(num);
    } else if (k != DV_NONE) {
      char msg[200];
      snprintf(msg, sizeof msg, "its default %.120s is not restored", lv->dflt ? lv->dflt : "?");
      if (!(op->note = sq_sop_list_strdup(out, msg, err))) rc = SQ_ENOMEM;
    }
    sb_free(&b);
    if (!rc) op->old_col = s;
  }
  srows_free(&labels);
  return rc;
}

/* An index, key or primary key over model columns, in the list. */
static sq_sindex *model_sindex(sq_sop_list *out, const sq_model *m, const char *name, const int *cols, int n,
                               int unique, sq_err *err) {
  sq_sindex *x = sq_sop_list_alloc(out, sizeof *x, err);
  const char **names = x ? sq_sop_list_alloc(out, sizeof *names * (size_t)(n ? n : 1), err) : NULL;
  if (!names) return NULL;
  for (int i = 0; i < n; i++)
    if (!(names[i] = sq_sop_list_strdup(out, sq_model_col(m, cols[i])->name, err))) return NULL;
  if (name && !(x->name = sq_sop_list_strdup(out, name, err))) return NULL;
  x->cols = names;
  x->ncols = n;
  x->unique = unique;
  return x;
}

/* The same over a live index's columns. */
static sq_sindex *live_sindex(sq_sop_list *out, const lidx *ix, sq_err *err) {
  sq_sindex *x = sq_sop_list_alloc(out, sizeof *x, err);
  if (!x) return NULL;
  if (!(x->cols = sq_schema_names(out, ix->cols, ix->ncols, err))) return NULL;
  x->ncols = ix->ncols;
  x->unique = ix->unique;
  if (!(x->name = sq_sop_list_strdup(out, ix->name, err))) return NULL;
  return x;
}

static int note(sq_sop_list *out, const char *table, sq_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int note(sq_sop_list *out, const char *table, sq_err *err, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sq_sop *op = sq_sop_list_add(out, SQ_SOP_NOTE, table, err);
  if (!op || !(op->note = sq_sop_list_strdup(out, msg, err))) return SQ_ENOMEM;
  return SQ_OK;
}

#define ADD(kind) (op = sq_sop_list_add(out, (kind), t, err)) == NULL ? SQ_ENOMEM : SQ_OK

/*
 * The ops that make the live table match the model, in the order each
 * dialect's plan had: keys dropped first (MySQL: the primary key, then
 * undeclared uniques; elsewhere in the live index order), then ADD,
 * changed, DROP columns, the primary key, the missing unique keys and
 * the indexes whose names the table doesn't have yet.
 */
static int emit_ops(sq_conn *c, sq_sop_list *out, const sq_model *m, int dialect, const live *l, const diff *d,
                    const int *held, int flags, srows *sqlite_sql, sq_err *err) {
  const char *t = sq_model_table(m);
  int n = sq_model_ncols(m), rc = SQ_OK, live_pk = 0;
  sq_sop *op;
  for (int j = 0; j < l->ncols; j++) live_pk |= l->cols[j].pk;
  if (d->pk_diff && ((dialect == SQ_DIALECT_MYSQL && d->live_pk >= 0) || (dialect == SQ_DIALECT_SQLITE && live_pk)))
    rc = ADD(SQ_SOP_DROP_PRIMARY_KEY);
  for (int x = 0; !rc && x < l->nidx; x++) {
    int pk = dialect == SQ_DIALECT_POSTGRES && d->pk_diff && x == d->live_pk;
    if (!d->drop_key[x] && !pk) continue;
    if ((rc = ADD(pk ? SQ_SOP_DROP_PRIMARY_KEY : SQ_SOP_REMOVE_UNIQUE))) break;
    if (!(op->name = sq_sop_list_strdup(out, l->idx[x].name, err))) rc = SQ_ENOMEM;
    else if (!pk && !(op->index = live_sindex(out, &l->idx[x], err))) rc = SQ_ENOMEM;
  }
  for (int i = 0; !rc && i < n; i++) {
    if (d->state[i] != C_ADD) continue;
    sq_scol *s = sq_sop_list_alloc(out, sizeof *s, err);
    if (!s || (rc = ADD(SQ_SOP_ADD_COLUMN))) return SQ_ENOMEM;
    rc = sq_schema_scol_from_col(out, m, sq_model_col(m, i), s, err);
    op->col = s;
  }
  for (int i = 0; !rc && i < n; i++) {
    /* a changed column is rewritten whole (with its values) on MySQL and
     * SQLite; PostgreSQL adds its labels first, then changes the rest */
    if (!d->enum_add[i] || d->type_diff[i] || (d->state[i] == C_CHANGE && dialect != SQ_DIALECT_POSTGRES)) continue;
    sq_scol *s = sq_sop_list_alloc(out, sizeof *s, err);
    if (!s || (rc = ADD(SQ_SOP_ADD_ENUM_VALUES))) return SQ_ENOMEM;
    if ((rc = sq_schema_scol_from_col(out, m, sq_model_col(m, i), s, err))) break;
    s->fill_now = 0;
    op->col = s;
    op->name = s->name;
    /* every value: the renderers add only what is missing (IF NOT EXISTS,
     * the whole list for MySQL and SQLite) */
    op->values = s->enum_values;
    op->nvalues = s->nenum_values;
  }
  for (int i = 0; !rc && i < n; i++) {
    if (d->state[i] != C_CHANGE) continue;
    sq_scol *s = sq_sop_list_alloc(out, sizeof *s, err);
    if (!s || (rc = ADD(SQ_SOP_CHANGE_COLUMN))) return SQ_ENOMEM;
    if ((rc = sq_schema_scol_from_col(out, m, sq_model_col(m, i), s, err))) break;
    s->fill_now = 0;
    op->col = s;
    op->name = s->name;
    op->change = SQ_CHANGE_DEFAULT | (d->type_diff[i] ? SQ_CHANGE_TYPE : 0) | (d->null_diff[i] ? SQ_CHANGE_NULL : 0) |
                 (d->ai_diff[i] ? SQ_CHANGE_AUTOINC : 0);
    op->old_type = old_type_of(l->cols[d->live[i]].t.fam);
    if (flags & SQ_DIFF_NOTES) rc = old_column(c, out, dialect, t, &l->cols[d->live[i]], op, sqlite_sql, err);
  }
  for (int j = 0; !rc && j < l->ncols; j++) {
    if (l->cols[j].used) continue;
    if (held[j] && !(flags & SQ_ALTER_DROP)) {
      rc = note(out, t, err, "column \"%.64s\".\"%.64s\" is not in the model but holds data: not dropped", t,
                l->cols[j].name);
      continue;
    }
    if ((rc = ADD(SQ_SOP_REMOVE_COLUMN))) break;
    if (!(op->name = sq_sop_list_strdup(out, l->cols[j].name, err))) rc = SQ_ENOMEM;
    else if (flags & SQ_DIFF_NOTES) rc = old_column(c, out, dialect, t, &l->cols[j], op, sqlite_sql, err);
  }
  if (!rc && d->pk_diff) {
    const int *pk;
    int npk = sq_model_pk(m, &pk);
    if (!(rc = ADD(SQ_SOP_ADD_PRIMARY_KEY)) && !(op->index = model_sindex(out, m, NULL, pk, npk, 0, err)))
      rc = SQ_ENOMEM;
  }
  for (int k = 0; !rc && k < d->nkeys; k++) {
    const mkey *key = &d->keys[k];
    if (!key->missing || key_inline(d, key)) continue;
    if (!(rc = ADD(SQ_SOP_ADD_UNIQUE)) && !(op->index = model_sindex(out, m, key->name, key->cols, key->n, 1, err)))
      rc = SQ_ENOMEM;
  }
  for (int k = 0; !rc && k < sq_model_nindexes(m); k++) {
    const char *iname;
    int unique, ncols;
    const int *cols;
    sq_model_index(m, k, &iname, &unique, &cols, &ncols);
    if (has_index(l, dialect, iname)) continue;
    if (!(rc = ADD(SQ_SOP_ADD_INDEX)) && !(op->index = model_sindex(out, m, iname, cols, ncols, unique, err)))
      rc = SQ_ENOMEM;
  }
  if (!rc && (flags & SQ_DIFF_NOTES))
    for (int x = 0; !rc && x < l->nidx; x++) {
      const lidx *ix = &l->idx[x];
      if (ix->origin != 'c' || model_index_named(m, dialect, ix->name)) continue;
      rc = note(out, t, err, "index \"%.64s\" on \"%.64s\" is not in the model%s (kept)", ix->name, t,
                ix->partial ? "; partial or over an expression" : "");
    }
  return rc;
}

/* remove_foreign_key for row i of the live keys (sq_ddl_live_fks), with
 * its whole definition in op->fk (what generate's down re-adds). */
static int undeclared_fk(sq_sop_list *out, const char *t, const srows *fks, int i, sq_err *err) {
  sq_sop *op;
  sq_sfk *f = sq_sop_list_alloc(out, sizeof *f, err);
  if (!f || ADD(SQ_SOP_REMOVE_FOREIGN_KEY)) return SQ_ENOMEM;
  const char *col = cell(fks, i, 0), *ref = cell(fks, i, 1), *refcol = cell(fks, i, 2), *name = cell(fks, i, 3);
  if (name && !(op->name = sq_sop_list_strdup(out, name, err))) return SQ_ENOMEM;
  if (name && !(f->name = op->name)) return SQ_ENOMEM;
  if (!(f->cols = sq_schema_names(out, &col, 1, err))) return SQ_ENOMEM;
  f->ncols = 1;
  if (!(f->ref_table = sq_sop_list_strdup(out, ref ? ref : "", err))) return SQ_ENOMEM;
  if (refcol) {
    if (!(f->ref_cols = sq_schema_names(out, &refcol, 1, err))) return SQ_ENOMEM;
    f->nref_cols = 1;
  }
  f->on_delete = sq_ddl_fk_action(cell(fks, i, 4));
  f->on_update = sq_ddl_fk_action(cell(fks, i, 5));
  op->fk = f;
  return SQ_OK;
}

int sq_ddl_diff_model(sq_conn *c, const sq_model *m, int flags, int what, int *created, sq_sop_list *out,
                      sq_err *err) {
  const sq_driver *drv = sq_conn_driver(c);
  if (!drv || !m || !out) return sq_err_set(err, SQ_EUSAGE, "schema diff: no connection, model or list");
  int dialect = drv->dialect, rc = SQ_OK, made = created && *created;
  if (sq_model_ncols(m) < 1) return sq_err_set(err, SQ_EUSAGE, "DDL: model has no columns (not finished?)");
  if (what & SQ_DIFF_TABLE) {
    live l;
    diff d;
    int *held = NULL;
    memset(&l, 0, sizeof l);
    memset(&d, 0, sizeof d);
    rc = read_live(c, dialect, m, &l, err);
    if (!rc && l.ncols == 0) {
      made = 1;
      rc = sq_sop_from_model(m, out, err);
      if (!rc) out->ops[out->n - 1].if_exists = 1;
    } else if (!rc) {
      rc = compute_diff(m, dialect, &l, &d, err);
      if (!rc && !(held = calloc((size_t)l.ncols + 1, sizeof *held))) rc = sq_ddl_nomem(err);
      if (!rc && d.ndrop) rc = check_drops(c, m, dialect, &l, flags, held, err);
      srows sqlite_sql = {0}; /* the table's CREATE text, when old_column needs it */
      if (!rc) rc = emit_ops(c, out, m, dialect, &l, &d, held, flags, &sqlite_sql, err);
      srows_free(&sqlite_sql);
    }
    free(held);
    diff_free(&d);
    live_free(&l);
    if (created) *created = made;
  }
  if (!rc && (what & SQ_DIFF_FKS)) {
    const char *table = sq_model_table(m);
    int exists = !made;
    if (exists && !(what & SQ_DIFF_TABLE)) rc = sq_ddl_table_exists(c, dialect, table, &exists, err);
    if (!rc && made && dialect != SQ_DIALECT_SQLITE) {
      rc = sq_ddl_missing_fks(m, dialect, NULL, 1, out, err);
    } else if (!rc && exists) {
      srows fks = {0};
      rc = sq_ddl_live_fks(c, dialect, table, &fks, err);
      if (!rc) rc = sq_ddl_missing_fks(m, dialect, &fks, 0, out, err);
      for (int i = 0; !rc && (flags & SQ_DIFF_NOTES) && i < fks.nrows; i++) {
        int declared = 0;
        for (int k = 0; k < sq_model_nfks(m) && !declared; k++) {
          const sq_fk *fk = sq_model_fk(m, k);
          const sq_col *fc = sq_model_col(m, fk->col), *tc = sq_model_col(fk->target, fk->target_col);
          declared = (name_eq(dialect, cell(&fks, i, 0), fc->name) &&
                      name_eq(dialect, cell(&fks, i, 1), sq_model_table(fk->target)) &&
                      name_eq(dialect, cell(&fks, i, 2), tc->name)) ||
                     (cell(&fks, i, 3) && name_eq(dialect, cell(&fks, i, 3), fk->name));
        }
        const char *col = cell(&fks, i, 0);
        if (!declared && col && sq_model_find(m, col, strlen(col)) >= 0) {
          /* a key over a column the model still has (an association
           * removed): generate removes it, and its down puts it back */
          rc = undeclared_fk(out, table, &fks, i, err);
        } else if (!declared)
          rc = note(out, table, err, "foreign key %s%s%s(\"%.64s\".\"%.64s\" -> \"%.64s\") is not in the model (kept)",
                    cell(&fks, i, 3) ? "\"" : "", cell(&fks, i, 3) ? cell(&fks, i, 3) : "",
                    cell(&fks, i, 3) ? "\" " : "", table, cell(&fks, i, 0) ? cell(&fks, i, 0) : "?",
                    cell(&fks, i, 1) ? cell(&fks, i, 1) : "?");
      }
      srows_free(&fks);
    }
  }
  return rc;
}

/*
 * Model:sync{ alter = true }: the table part of the difference, rendered
 * for c's server with MySQL's one ALTER TABLE. An empty list means the
 * table already matches. Refuses (with nothing planned) to drop a column
 * that holds data unless flags has SQ_ALTER_DROP. Nothing is run here:
 * the caller runs the list in order, inside a transaction on SQLite and
 * PostgreSQL, whose DDL is transactional.
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
  int rc = check_args(m, drv->dialect, out, err);
  if (rc) return rc;
  sq_sop_list ops = {0};
  rc = sq_ddl_diff_model(c, m, flags & SQ_ALTER_DROP, SQ_DIFF_TABLE, NULL, &ops, err);
  if (!rc) rc = sq_schema_plan(c, ops.ops, ops.n, SQ_SCHEMA_ONE_ALTER, out, err);
  sq_sop_list_free(&ops);
  if (rc) sq_sql_list_free(out);
  return rc;
}

int sq_plan_alter(sq_conn *c, const sq_model *m, sq_sql_list *out, sq_err *err) {
  return sq_plan_alter_ex(c, m, 0, out, err);
}

int sq_schema_diff(sq_conn *c, sq_model *const *models, int n, int flags, sq_sop_list *out, sq_err *err) {
  const sq_driver *drv = c ? sq_conn_driver(c) : NULL;
  if (!drv || !out) return sq_err_set(err, SQ_EUSAGE, "sq_schema_diff: no connection or no list");
  const sq_model **order;
  int cnt, rc = sq_schema_order(models, n, &order, &cnt, err);
  if (rc) return rc;
  int *made = calloc((size_t)cnt + 1, sizeof *made);
  if (!made) rc = sq_ddl_nomem(err);
  int lite = drv->dialect == SQ_DIALECT_SQLITE;
  for (int i = 0; !rc && i < cnt; i++)
    rc = sq_ddl_diff_model(c, order[i], flags, lite ? SQ_DIFF_TABLE | SQ_DIFF_FKS : SQ_DIFF_TABLE, &made[i], out, err);
  for (int i = 0; !rc && !lite && i < cnt; i++) rc = sq_ddl_diff_model(c, order[i], flags, SQ_DIFF_FKS, &made[i], out, err);
  if (!rc && (flags & SQ_DIFF_NOTES))
    rc = note(out, NULL, err,
              "not compared: column comments, CHECK constraints, collations, and tables no model names");
  free(made);
  free(order);
  return rc;
}
