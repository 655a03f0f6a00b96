/*
 * schema_sqlite.c - schema operations on SQLite: what its ALTER TABLE
 * does natively (add a simple column, drop a column nothing refers to,
 * renames, indexes), and a table rebuild for the rest.
 *
 * The rebuild follows the "12 steps" of SQLite's manual, starting from
 * the table's own CREATE TABLE text (sqlite_master), split by the SQLite
 * lexer into column definitions and table constraints. Ops edit that
 * list: a changed column gets its new type, nullability and default and
 * keeps its other clauses (PRIMARY KEY, UNIQUE, CHECK, COLLATE,
 * REFERENCES, GENERATED) as written; a removed column takes the table
 * constraints over it along; keys and foreign keys are added or taken
 * out. Then: create the new shape under a temporary name, copy the
 * surviving columns (a fill for NOT NULL now-columns that are new), carry
 * AUTOINCREMENT's counter, drop the old table, rename, and re-create the
 * indexes (the user's own whose columns survive, as written, then the new
 * ones) and the table's triggers. Views and triggers of other tables
 * that name the table are kept by renaming with legacy_alter_table on
 * (they refer to it by name, and it is back under that name).
 *
 * The caller runs the plan with foreign keys off and inside a
 * transaction (sq_sqlite_run_rebuild, sq_schema_begin): a copy that fails
 * (NULL into NOT NULL, duplicates under a new key) leaves the old table
 * as it was and no temporary table behind; the leading DROP ... IF
 * EXISTS clears a leftover from a run that wasn't.
 */
#include "internal.h"
#include "schema_int.h"

#define D SQ_DIALECT_SQLITE

/* ------------------------------------------------------------------ */
/* Tokens                                                               */
/* ------------------------------------------------------------------ */

typedef struct toks {
  const char *s;
  sq_token *t; /* significant tokens (no spaces, no comments) */
  int n;
} toks;

static void toks_free(toks *k) {
  free(k->t);
  k->t = NULL;
  k->n = 0;
}

static int toks_read(toks *k, const char *s, size_t len, sq_err *err) {
  sq_lexer lx;
  sq_token t;
  int cap = 32;
  k->s = s;
  k->n = 0;
  k->t = malloc(sizeof *k->t * (size_t)cap);
  if (!k->t) return sq_ddl_nomem(err);
  sq_lex_init(&lx, D, 0, s, len);
  while (sq_lex_next(&lx, &t) != SQ_TK_EOF) {
    if (t.type == SQ_TK_SPACE || t.type == SQ_TK_COMMENT) continue;
    if (k->n == cap) {
      cap *= 2;
      sq_token *v = realloc(k->t, sizeof *v * (size_t)cap);
      if (!v) {
        toks_free(k);
        return sq_ddl_nomem(err);
      }
      k->t = v;
    }
    k->t[k->n++] = t;
  }
  return SQ_OK;
}

static int is_op(const toks *k, int i, char ch) {
  return i >= 0 && i < k->n && k->t[i].type == SQ_TK_OP && k->t[i].len == 1 && k->s[k->t[i].pos] == ch;
}

static int is_kw(const toks *k, int i, const char *kw) { return i >= 0 && i < k->n && sq_tok_is(k->s, &k->t[i], kw); }

/* Index just past the ')' matching the '(' at i. */
static int skip_parens(const toks *k, int i) {
  int depth = 0;
  for (; i < k->n; i++) {
    if (is_op(k, i, '(')) depth++;
    else if (is_op(k, i, ')') && --depth == 0) return i + 1;
  }
  return k->n;
}

static size_t tok_end(const toks *k, int i) { return k->t[i].pos + k->t[i].len; }

/* A name token without its quotes (malloc'ed). */
static char *unquote(const char *s, const sq_token *t) {
  const char *p = s + t->pos;
  size_t n = t->len;
  char q = 0;
  if (t->type == SQ_TK_QIDENT || t->type == SQ_TK_STRING) {
    if (n >= 2) {
      q = p[0] == '[' ? ']' : p[0];
      p++;
      n -= 2;
    }
  }
  char *d = malloc(n + 1), *o = d;
  if (!d) return NULL;
  for (size_t i = 0; i < n; i++) {
    *o++ = p[i];
    if (q && q != ']' && p[i] == q && i + 1 < n && p[i + 1] == q) i++;
  }
  *o = '\0';
  return d;
}

static int lc(int ch) { return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch; }

static int eq_nocase(const char *a, const char *b) {
  if (!a || !b) return 0;
  for (; *a && *b; a++, b++)
    if (lc((unsigned char)*a) != lc((unsigned char)*b)) return 0;
  return *a == *b;
}

/* 1 when token i is a name equal to name (ignoring case). */
static int tok_names(const toks *k, int i, const char *name) {
  const sq_token *t = &k->t[i];
  if (t->type != SQ_TK_WORD && t->type != SQ_TK_QIDENT) return 0;
  char *u = unquote(k->s, t);
  int r = u && eq_nocase(u, name);
  free(u);
  return r;
}

/* 1 when text uses name as a name (not as a function: no '(' after it),
 * from token `from` on. */
static int mentions(const char *text, const char *name, int from) {
  toks k = {0};
  sq_err e;
  if (toks_read(&k, text, strlen(text), &e)) return 1; /* out of memory: assume it does */
  int r = 0;
  for (int i = from; i < k.n && !r; i++) r = tok_names(&k, i, name) && !is_op(&k, i + 1, '(');
  toks_free(&k);
  return r;
}

/* ------------------------------------------------------------------ */
/* The table's definition                                               */
/* ------------------------------------------------------------------ */

enum { P_COL = 0, P_PK, P_UNIQUE, P_FK, P_CHECK, P_OTHER };

typedef struct piece {
  char *text;       /* the definition, as written or rendered (owned) */
  int kind;         /* P_* */
  char *name;       /* a column's name, or a constraint's CONSTRAINT name */
  char **cols;      /* P_PK, P_UNIQUE, P_FK: its columns */
  int ncols;
  char *source;     /* P_COL: the live column copied into it, or NULL */
  const char *fill; /* P_COL: an expression filling it instead */
} piece;

typedef struct tdef {
  piece *p;
  int n, cap;
  char *suffix;     /* after the closing parenthesis (WITHOUT ROWID, STRICT) */
} tdef;

static void piece_free(piece *p) {
  free(p->text);
  free(p->name);
  for (int i = 0; i < p->ncols; i++) free(p->cols[i]);
  free(p->cols);
  free(p->source);
  memset(p, 0, sizeof *p);
}

static void tdef_free(tdef *t) {
  for (int i = 0; i < t->n; i++) piece_free(&t->p[i]);
  free(t->p);
  free(t->suffix);
  memset(t, 0, sizeof *t);
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* Room for one more piece at index at (pieces after it move up). */
static piece *tdef_insert(tdef *t, int at, sq_err *err) {
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 16;
    piece *v = realloc(t->p, sizeof *v * (size_t)cap);
    if (!v) {
      sq_ddl_nomem(err);
      return NULL;
    }
    t->p = v;
    t->cap = cap;
  }
  memmove(&t->p[at + 1], &t->p[at], sizeof *t->p * (size_t)(t->n - at));
  t->n++;
  memset(&t->p[at], 0, sizeof t->p[at]);
  return &t->p[at];
}

static void tdef_remove(tdef *t, int at) {
  piece_free(&t->p[at]);
  memmove(&t->p[at], &t->p[at + 1], sizeof *t->p * (size_t)(t->n - at - 1));
  t->n--;
}

/* The names in the parenthesised list starting at token i. */
static int list_cols(const toks *k, int i, piece *p, sq_err *err) {
  if (!is_op(k, i, '(')) return SQ_OK;
  int end = skip_parens(k, i), start = i + 1;
  p->cols = calloc((size_t)(end - i + 1), sizeof *p->cols);
  if (!p->cols) return sq_ddl_nomem(err);
  for (int j = start; j < end - 1; j++) {
    if (j == start || is_op(k, j - 1, ',')) {
      if (!(p->cols[p->ncols] = unquote(k->s, &k->t[j]))) return sq_ddl_nomem(err);
      p->ncols++;
    }
    if (is_op(k, j, '(')) j = skip_parens(k, j) - 1;
  }
  return SQ_OK;
}

/* Classifies one piece of the definition: a column or a constraint. */
static int piece_parse(piece *p, sq_err *err) {
  toks k = {0};
  int rc = toks_read(&k, p->text, strlen(p->text), err);
  if (rc) return rc;
  if (k.n == 0) {
    toks_free(&k);
    return sq_err_set(err, SQ_EINTERNAL, "an empty part in a CREATE TABLE");
  }
  int i = 0;
  if (is_kw(&k, 0, "CONSTRAINT") && k.n > 1) {
    if (!(p->name = unquote(k.s, &k.t[1]))) rc = sq_ddl_nomem(err);
    i = 2;
  }
  if (is_kw(&k, i, "PRIMARY")) p->kind = P_PK;
  else if (is_kw(&k, i, "UNIQUE")) p->kind = P_UNIQUE;
  else if (is_kw(&k, i, "FOREIGN")) p->kind = P_FK;
  else if (is_kw(&k, i, "CHECK")) p->kind = P_CHECK;
  else if (i > 0) p->kind = P_OTHER;
  else {
    p->kind = P_COL;
    int generated = 0;
    for (int j = 1; j < k.n && !generated;) {
      if (is_op(&k, j, '(')) {
        j = skip_parens(&k, j); /* AS inside CAST(... AS ...) is not the column's */
        continue;
      }
      generated = is_kw(&k, j, "GENERATED") || is_kw(&k, j, "AS");
      j++;
    }
    if (!(p->name = unquote(k.s, &k.t[0]))) rc = sq_ddl_nomem(err);
    /* a generated column computes itself: nothing is copied into it */
    if (!rc && !generated && !(p->source = sq_strdup(p->name))) rc = sq_ddl_nomem(err);
  }
  if (!rc && (p->kind == P_PK || p->kind == P_UNIQUE || p->kind == P_FK)) {
    int j = i;
    while (j < k.n && !is_op(&k, j, '(')) j++;
    rc = list_cols(&k, j, p, err);
  }
  toks_free(&k);
  return rc;
}

/* Splits CREATE TABLE text into its pieces: each from its first token
 * to its last, so comments around it (a trailing "-- ..." above all)
 * never swallow what follows it. */
static int tdef_parse(const char *sql, tdef *t, sq_err *err) {
  toks k = {0};
  int rc = toks_read(&k, sql, strlen(sql), err);
  if (rc) return rc;
  if (is_kw(&k, 1, "VIRTUAL")) {
    toks_free(&k);
    return sq_err_set(err, SQ_EUSAGE, "a virtual table can't be altered or rebuilt");
  }
  int i = 0;
  while (i < k.n && !is_op(&k, i, '(')) i++;
  if (i >= k.n) {
    toks_free(&k);
    return sq_err_set(err, SQ_EUSAGE, "the table is not a plain CREATE TABLE: not rebuilt");
  }
  int end = skip_parens(&k, i); /* just past the closing ')' */
  int first = i + 1;
  for (int j = i + 1; !rc && j < end; j++) {
    if (is_op(&k, j, '(')) {
      j = skip_parens(&k, j) - 1;
      continue;
    }
    if (j != end - 1 && !is_op(&k, j, ',')) continue;
    if (j == first) {
      rc = sq_err_set(err, SQ_EUSAGE, "an empty part in the table's CREATE TABLE");
      break;
    }
    size_t start = k.t[first].pos, stop = tok_end(&k, j - 1);
    piece *p = tdef_insert(t, t->n, err);
    if (!p) rc = SQ_ENOMEM;
    else if (!(p->text = dupn(sql + start, stop - start))) rc = sq_ddl_nomem(err);
    else rc = piece_parse(p, err);
    first = j + 1;
  }
  if (!rc) {
    size_t s = end - 1 < k.n ? tok_end(&k, end - 1) : strlen(sql);
    if (!(t->suffix = sq_strdup(sql + s))) rc = sq_ddl_nomem(err);
  }
  toks_free(&k);
  return rc;
}

static int find_col(const tdef *t, const char *name) {
  for (int i = 0; i < t->n; i++)
    if (t->p[i].kind == P_COL && eq_nocase(t->p[i].name, name)) return i;
  return -1;
}

static int last_col(const tdef *t) {
  int at = -1;
  for (int i = 0; i < t->n; i++)
    if (t->p[i].kind == P_COL) at = i;
  return at;
}

/* ------------------------------------------------------------------ */
/* A column's clauses                                                   */
/* ------------------------------------------------------------------ */

enum { CL_PK = 1, CL_NOTNULL, CL_NULL, CL_UNIQUE, CL_CHECK, CL_DEFAULT, CL_COLLATE, CL_REFS, CL_GEN, CL_OTHER };

typedef struct clause {
  int kind;
  size_t start, end; /* bytes of the piece's text */
  char *cname;       /* CONSTRAINT name, or NULL */
} clause;

typedef struct colparse {
  size_t head_end;   /* end of the name and type */
  clause cl[24];
  int ncl;
} colparse;

static void colparse_free(colparse *c) {
  for (int i = 0; i < c->ncl; i++) free(c->cl[i].cname);
  c->ncl = 0;
}

static int clause_start(const toks *k, int i) {
  static const char *const kws[] = {"CONSTRAINT", "PRIMARY", "NOT",        "NULL",      "UNIQUE", "CHECK",
                                    "DEFAULT",    "COLLATE", "REFERENCES", "GENERATED", "AS",     NULL};
  for (int j = 0; kws[j]; j++)
    if (is_kw(k, i, kws[j])) return 1;
  return 0;
}

/* Splits a column definition into its name and type, then its clauses. */
static int col_parse(const char *text, colparse *cp, sq_err *err) {
  toks k = {0};
  memset(cp, 0, sizeof *cp);
  int rc = toks_read(&k, text, strlen(text), err);
  if (rc) return rc;
  int i = 1;
  while (i < k.n && !clause_start(&k, i)) i = is_op(&k, i, '(') ? skip_parens(&k, i) : i + 1;
  cp->head_end = i > 0 && k.n > 0 ? tok_end(&k, i - 1) : 0;
  while (!rc && i < k.n) {
    if (cp->ncl == (int)(sizeof cp->cl / sizeof cp->cl[0])) {
      rc = sq_err_set(err, SQ_EUSAGE, "a column with too many constraint clauses");
      break;
    }
    clause *c = &cp->cl[cp->ncl++];
    memset(c, 0, sizeof *c);
    c->start = k.t[i].pos;
    if (is_kw(&k, i, "CONSTRAINT") && i + 1 < k.n) {
      if (!(c->cname = unquote(k.s, &k.t[i + 1]))) rc = sq_ddl_nomem(err);
      i += 2;
    }
    int kw = i;
    i++;
    if (is_kw(&k, kw, "PRIMARY")) c->kind = CL_PK;
    else if (is_kw(&k, kw, "NOT")) c->kind = CL_NOTNULL, i += is_kw(&k, i, "NULL");
    else if (is_kw(&k, kw, "NULL")) c->kind = CL_NULL;
    else if (is_kw(&k, kw, "UNIQUE")) c->kind = CL_UNIQUE;
    else if (is_kw(&k, kw, "CHECK")) c->kind = CL_CHECK;
    else if (is_kw(&k, kw, "DEFAULT")) c->kind = CL_DEFAULT;
    else if (is_kw(&k, kw, "COLLATE")) c->kind = CL_COLLATE;
    else if (is_kw(&k, kw, "REFERENCES")) c->kind = CL_REFS;
    else if (is_kw(&k, kw, "GENERATED") || is_kw(&k, kw, "AS")) c->kind = CL_GEN;
    else c->kind = CL_OTHER;
    switch (c->kind) {
    case CL_CHECK:
      if (is_op(&k, i, '(')) i = skip_parens(&k, i);
      break;
    case CL_DEFAULT:
      if (is_op(&k, i, '(')) i = skip_parens(&k, i);
      else if (is_op(&k, i, '+') || is_op(&k, i, '-')) i += 2;
      else i++;
      break;
    case CL_COLLATE: i++; break;
    case CL_GEN:
      while (i < k.n && (is_kw(&k, i, "ALWAYS") || is_kw(&k, i, "AS"))) i++;
      if (is_op(&k, i, '(')) i = skip_parens(&k, i);
      if (is_kw(&k, i, "STORED") || is_kw(&k, i, "VIRTUAL")) i++;
      break;
    default:
      /* up to the next clause; inside REFERENCES, SET NULL / SET DEFAULT
       * and NOT DEFERRABLE are its own words */
      while (i < k.n) {
        if (is_op(&k, i, '(')) {
          i = skip_parens(&k, i);
          continue;
        }
        if (clause_start(&k, i)) {
          int own = c->kind == CL_REFS && (((is_kw(&k, i, "NULL") || is_kw(&k, i, "DEFAULT")) && is_kw(&k, i - 1, "SET")) ||
                                           (is_kw(&k, i, "NOT") && is_kw(&k, i + 1, "DEFERRABLE")));
          if (!own) break;
        }
        i++;
      }
    }
    if (i > k.n) i = k.n;
    c->end = i > 0 ? tok_end(&k, i - 1) : c->start;
  }
  toks_free(&k);
  if (rc) colparse_free(cp);
  return rc;
}

/* 1 when a CHECK clause is the ENUM check of column name: ("name" IN ('a', ...)). */
static int enum_check(const char *text, const clause *c, const char *name) {
  if (c->kind != CL_CHECK) return 0;
  char *s = dupn(text + c->start, c->end - c->start);
  if (!s) return 0;
  toks k = {0};
  sq_err e;
  int r = 0;
  if (!toks_read(&k, s, strlen(s), &e)) {
    int i = 0;
    if (is_kw(&k, 0, "CONSTRAINT")) i = 2;
    r = is_kw(&k, i, "CHECK") && is_op(&k, i + 1, '(') && i + 2 < k.n && tok_names(&k, i + 2, name) &&
        is_kw(&k, i + 3, "IN") && is_op(&k, i + 4, '(');
    for (int j = i + 5; r && j < k.n - 2; j++) r = (j - i - 5) % 2 == 0 ? k.t[j].type == SQ_TK_STRING : is_op(&k, j, ',');
    r = r && is_op(&k, k.n - 1, ')') && is_op(&k, k.n - 2, ')');
    toks_free(&k);
  }
  free(s);
  return r;
}

/* The piece's text with its name and type, then the clauses keep() lets
 * through, then extra. */
static int col_rewrite(piece *p, const colparse *cp, int (*keep)(const char *, const clause *, const void *),
                       const void *ud, const char *head, const char *extra, sq_err *err) {
  sbuf b = {0};
  if (head) sb_puts(&b, head);
  else sb_putn(&b, p->text, cp->head_end);
  for (int i = 0; i < cp->ncl; i++) {
    if (!keep(p->text, &cp->cl[i], ud)) continue;
    sb_puts(&b, " ");
    sb_putn(&b, p->text + cp->cl[i].start, cp->cl[i].end - cp->cl[i].start);
  }
  if (extra) sb_puts(&b, extra);
  if (b.oom) {
    sb_free(&b);
    return sq_ddl_nomem(err);
  }
  free(p->text);
  p->text = b.p;
  return SQ_OK;
}

static int has_clause(const colparse *cp, int kind) {
  for (int i = 0; i < cp->ncl; i++)
    if (cp->cl[i].kind == kind) return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The live table                                                       */
/* ------------------------------------------------------------------ */

typedef struct lindex {
  char *name, *sql;  /* sql NULL: an automatic index (a key of the table) */
  char **cols;
  int ncols;
  int expr;          /* over an expression or partial */
  int drop;          /* not re-created */
} lindex;

typedef struct live {
  tdef t;
  lindex *ix;
  int nix;
  sq_srows trig;     /* name, sql of the table's triggers */
  int others;        /* views, or triggers of other tables, exist */
  int version;       /* sqlite_version as 3040001 */
} live;

static void live_free(live *l) {
  tdef_free(&l->t);
  for (int i = 0; i < l->nix; i++) {
    free(l->ix[i].name);
    free(l->ix[i].sql);
    for (int j = 0; j < l->ix[i].ncols; j++) free(l->ix[i].cols[j]);
    free(l->ix[i].cols);
  }
  free(l->ix);
  sq_srows_free(&l->trig);
  memset(l, 0, sizeof *l);
}

static const char SQL_TABLE[] = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE";
static const char SQL_IDX[] =
    "SELECT il.name, m.sql, ii.name, il.partial FROM pragma_index_list(?) AS il "
    "LEFT JOIN pragma_index_info(il.name) AS ii "
    "LEFT JOIN sqlite_master AS m ON m.type = 'index' AND m.name = il.name ORDER BY il.seq, ii.seqno";
static const char SQL_TRIG[] =
    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE ORDER BY rowid";
static const char SQL_OTHERS[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'view' OR (type = 'trigger' AND tbl_name <> ? COLLATE NOCASE)";
static const char SQL_USERS[] = "SELECT sql FROM sqlite_master WHERE type IN ('view', 'trigger') AND sql IS NOT NULL";

static int parse_version(const char *v) {
  int a = 0, b = 0, c = 0;
  while (v && *v && (*v < '0' || *v > '9')) v++; /* "SQLite 3.40.1" */
  if (!v || sscanf(v, "%d.%d.%d", &a, &b, &c) < 2) return 0;
  return a * 1000000 + b * 1000 + c;
}

static int read_live(sq_conn *conn, const char *table, live *l, sq_err *err) {
  sq_srows r = {0};
  int rc = sq_ddl_catalog(conn, SQL_TABLE, table, NULL, &r, err);
  if (!rc && (r.nrows < 1 || !sq_srows_cell(&r, 0, 0)))
    rc = sq_err_set(err, SQ_EUSAGE, "no table \"%.64s\" (SQLite)", table);
  if (!rc) rc = tdef_parse(sq_srows_cell(&r, 0, 0), &l->t, err);
  sq_srows_free(&r);
  if (!rc) rc = sq_ddl_catalog(conn, SQL_IDX, table, NULL, &r, err);
  if (!rc && r.nrows > 0) {
    l->ix = calloc((size_t)r.nrows, sizeof *l->ix);
    if (!l->ix) rc = sq_ddl_nomem(err);
  }
  for (int i = 0; !rc && i < r.nrows; i++) {
    const char *name = sq_srows_cell(&r, i, 0), *col = sq_srows_cell(&r, i, 2);
    if (!name) continue;
    lindex *x = NULL;
    for (int j = 0; j < l->nix && !x; j++)
      if (!strcmp(l->ix[j].name, name)) x = &l->ix[j];
    if (!x) {
      x = &l->ix[l->nix++];
      x->name = sq_strdup(name);
      x->sql = sq_strdup(sq_srows_cell(&r, i, 1));
      x->cols = calloc((size_t)r.nrows, sizeof *x->cols);
      if (!x->name || !x->cols || (sq_srows_cell(&r, i, 1) && !x->sql)) {
        rc = sq_ddl_nomem(err);
        break;
      }
    }
    const char *partial = sq_srows_cell(&r, i, 3);
    if (partial && strcmp(partial, "0")) x->expr = 1;
    if (!col) x->expr = 1;
    else if (!(x->cols[x->ncols++] = sq_strdup(col))) rc = sq_ddl_nomem(err);
  }
  sq_srows_free(&r);
  if (!rc) rc = sq_ddl_catalog(conn, SQL_TRIG, table, NULL, &l->trig, err);
  if (!rc) rc = sq_ddl_catalog(conn, SQL_OTHERS, table, NULL, &r, err);
  if (!rc) l->others = sq_srows_cell(&r, 0, 0) && strcmp(sq_srows_cell(&r, 0, 0), "0");
  sq_srows_free(&r);
  if (!rc) {
    const sq_driver *drv = sq_conn_driver(conn);
    l->version = parse_version(drv && drv->server_version ? drv->server_version(sq_conn_handle(conn)) : NULL);
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* What SQLite's ALTER TABLE can do                                     */
/* ------------------------------------------------------------------ */

/* A column ALTER TABLE ADD COLUMN takes: no key, no unique, and when NOT
 * NULL a non-null constant default; with a foreign key, a NULL default. */
static int addable(const sq_scol *s) {
  if (s->primary_key || (s->unique && !s->unique[0])) return 0;
  int has_default = s->default_kind == SQ_DEFAULT_VALUE && s->default_value.type != SQ_VNULL;
  if (!s->allow_null && !has_default) return 0;
  if (s->references && has_default) return 0;
  return 1;
}

/* Ops that always rebuild. */
static int rebuilds(const sq_sop *op) {
  switch (op->kind) {
  case SQ_SOP_ADD_COLUMN: return !addable(op->col);
  case SQ_SOP_CHANGE_COLUMN:
  case SQ_SOP_ADD_ENUM_VALUES:
  case SQ_SOP_ADD_UNIQUE:
  case SQ_SOP_REMOVE_UNIQUE:
  case SQ_SOP_ADD_PRIMARY_KEY:
  case SQ_SOP_DROP_PRIMARY_KEY:
  case SQ_SOP_ADD_FOREIGN_KEY:
  case SQ_SOP_REMOVE_FOREIGN_KEY: return 1;
  default: return 0;
  }
}

int sq_lite_group_needs_live(const sq_sop *ops, int n) {
  for (int i = 0; i < n; i++)
    if (rebuilds(&ops[i]) || ops[i].kind == SQ_SOP_REMOVE_COLUMN) return 1;
  return 0;
}

/*
 * ALTER TABLE DROP COLUMN (SQLite >= 3.35) refuses a column that is a
 * key, unique, indexed, in a foreign key, or named by another part of
 * the schema (a CHECK, a generated column, a trigger, a view). It is
 * used only when none of that can be the case; otherwise the table is
 * rebuilt.
 */
static int native_drop_ok(sq_conn *conn, const live *l, const char *col, sq_err *err, int *ok) {
  *ok = 0;
  if (l->version < 3035000) return SQ_OK;
  int at = find_col(&l->t, col);
  if (at < 0) return sq_err_set(err, SQ_EUSAGE, "no column \"%.64s\"", col);
  colparse cp;
  int rc = col_parse(l->t.p[at].text, &cp, err);
  if (rc) return rc;
  int plain = !has_clause(&cp, CL_PK) && !has_clause(&cp, CL_UNIQUE) && !has_clause(&cp, CL_REFS) && !has_clause(&cp, CL_GEN);
  colparse_free(&cp);
  if (!plain) return SQ_OK;
  for (int i = 0; i < l->t.n; i++)
    if (i != at && mentions(l->t.p[i].text, col, l->t.p[i].kind == P_COL ? 1 : 0)) return SQ_OK;
  for (int i = 0; i < l->nix; i++) {
    for (int j = 0; j < l->ix[i].ncols; j++)
      if (eq_nocase(l->ix[i].cols[j], col)) return SQ_OK;
    if (l->ix[i].expr && (!l->ix[i].sql || mentions(l->ix[i].sql, col, 0))) return SQ_OK;
  }
  sq_srows r = {0};
  if ((rc = sq_ddl_catalog(conn, SQL_USERS, NULL, NULL, &r, err))) return rc;
  int used = 0;
  for (int i = 0; i < r.nrows && !used; i++) used = mentions(sq_srows_cell(&r, i, 0), col, 0);
  sq_srows_free(&r);
  *ok = !used;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Ops on the definition                                                */
/* ------------------------------------------------------------------ */

typedef struct rebuild {
  live *l;
  const char *table;
  char **removed;    /* columns removed */
  int nremoved;
  const sq_sop **new_ix; /* add_index ops, created after */
  int nnew_ix;
} rebuild;

static int keep_all_but(const char *text, const clause *c, const void *ud) {
  (void)text;
  const int *kinds = ud;
  for (int i = 0; kinds[i]; i++)
    if (c->kind == kinds[i]) return 0;
  return 1;
}

typedef struct keep_named {
  int kind;
  const char *name;
} keep_named;

/* Keeps every clause but one of kind (named name, when name is set). */
static int keep_not_named(const char *text, const clause *c, const void *ud) {
  (void)text;
  const keep_named *k = ud;
  if (c->kind != k->kind) return 1;
  if (k->name && !(c->cname && eq_nocase(c->cname, k->name))) return 1;
  return 0;
}

/* A clause appended to a column ("NOT NULL", "UNIQUE", "PRIMARY KEY"). */
static int col_append(piece *p, const char *clause, sq_err *err) {
  size_t n = strlen(p->text), k = strlen(clause);
  char *t = malloc(n + k + 2);
  if (!t) return sq_ddl_nomem(err);
  memcpy(t, p->text, n);
  t[n] = ' ';
  memcpy(t + n + 1, clause, k + 1);
  free(p->text);
  p->text = t;
  return SQ_OK;
}

/* Strips clauses of a kind from column i; *found counts them. */
static int col_strip(piece *p, int kind, const char *name, int *found, sq_err *err) {
  colparse cp;
  int rc = col_parse(p->text, &cp, err);
  if (rc) return rc;
  int n = 0;
  for (int i = 0; i < cp.ncl; i++)
    if (cp.cl[i].kind == kind && (!name || (cp.cl[i].cname && eq_nocase(cp.cl[i].cname, name)))) n++;
  if (n) {
    keep_named k = {kind, name};
    rc = col_rewrite(p, &cp, keep_not_named, &k, NULL, NULL, err);
  }
  colparse_free(&cp);
  *found += n;
  return rc;
}

static int same_set(char **a, int na, const char *const *b, int nb) {
  if (na != nb) return 0;
  for (int i = 0; i < na; i++) {
    int f = 0;
    for (int j = 0; j < nb && !f; j++) f = eq_nocase(a[i], b[j]);
    if (!f) return 0;
  }
  return 1;
}

static int first_constraint(const tdef *t) {
  int at = last_col(t);
  return at + 1;
}

/* A new column definition for an op's column (rendered). */
static int render_col(const char *table, const sq_scol *s, int single_pk, int flags, char **out, sq_err *err) {
  char ename[64], rname[64];
  sq_cdef c;
  sq_schema_cdef(table, s, single_pk, &c, ename, rname);
  sbuf b = {0};
  int rc = sq_ddl_col_def(&b, &c, D, flags, err);
  if (!rc && b.oom) rc = sq_ddl_nomem(err);
  if (rc) {
    sb_free(&b);
    return rc;
  }
  *out = b.p;
  return SQ_OK;
}

static int op_add_column(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  const sq_scol *s = op->col;
  if (find_col(t, s->name) >= 0) return sq_err_set(err, SQ_EUSAGE, "column \"%.64s\" exists", s->name);
  piece *p = tdef_insert(t, last_col(t) + 1, err);
  if (!p) return SQ_ENOMEM;
  p->kind = P_COL;
  if (!(p->name = sq_strdup(s->name))) return sq_ddl_nomem(err);
  int rc = render_col(op->table, s, 1, SQ_CD_KEYS | SQ_CD_REF, &p->text, err);
  if (rc) return rc;
  char ename[64], rname[64];
  sq_cdef c;
  sq_schema_cdef(op->table, s, 1, &c, ename, rname);
  p->fill = sq_ddl_fill_sql(&c, D);
  return SQ_OK;
}

static int op_remove_column(rebuild *r, const char *col, sq_err *err) {
  tdef *t = &r->l->t;
  int at = find_col(t, col);
  if (at < 0) return sq_err_set(err, SQ_EUSAGE, "no column \"%.64s\"", col);
  colparse cp;
  int rc = col_parse(t->p[at].text, &cp, err);
  if (rc) return rc;
  int pk = has_clause(&cp, CL_PK);
  colparse_free(&cp);
  for (int i = 0; i < t->n && !pk; i++)
    if (t->p[i].kind == P_PK)
      for (int j = 0; j < t->p[i].ncols; j++) pk |= eq_nocase(t->p[i].cols[j], col);
  if (pk)
    return sq_err_set(err, SQ_EUSAGE, "column \"%.64s\" is part of the primary key: change the key first", col);
  char *name = sq_strdup(t->p[at].name);
  char **v = realloc(r->removed, sizeof *v * (size_t)(r->nremoved + 1));
  if (!name || !v) {
    free(name);
    if (v) r->removed = v;
    return sq_ddl_nomem(err);
  }
  r->removed = v;
  r->removed[r->nremoved++] = name;
  tdef_remove(t, at);
  /* constraints over it go with it, as PostgreSQL's DROP COLUMN does */
  for (int i = t->n - 1; i >= 0; i--) {
    piece *p = &t->p[i];
    int over = 0;
    if (p->kind == P_UNIQUE || p->kind == P_FK)
      for (int j = 0; j < p->ncols; j++) over |= eq_nocase(p->cols[j], col);
    if (p->kind == P_CHECK) over = mentions(p->text, col, 0);
    if (over) tdef_remove(t, i);
  }
  return SQ_OK;
}

static int kinds_change[] = {CL_NOTNULL, CL_NULL, CL_DEFAULT, 0};

typedef struct change_keep {
  const char *name;
} change_keep;

/* A changed column keeps every clause but nullability, default and its
 * old ENUM check. */
static int keep_changed(const char *text, const clause *c, const void *ud) {
  const change_keep *k = ud;
  if (!keep_all_but(text, c, kinds_change)) return 0;
  return !enum_check(text, c, k->name);
}

static int op_change_column(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  const char *name = op->name ? op->name : op->col->name;
  int at = find_col(t, name);
  if (at < 0) return sq_err_set(err, SQ_EUSAGE, "no column \"%.64s\"", name);
  piece *p = &t->p[at];
  colparse cp;
  int rc = col_parse(p->text, &cp, err);
  if (rc) return rc;
  int inline_pk = has_clause(&cp, CL_PK);
  int in_pk = inline_pk;
  for (int i = 0; i < t->n; i++)
    if (t->p[i].kind == P_PK)
      for (int j = 0; j < t->p[i].ncols; j++) in_pk |= eq_nocase(t->p[i].cols[j], name);
  sq_scol s = *op->col;
  s.name = p->name; /* as the table spells it */
  s.primary_key = in_pk;
  s.unique = NULL;
  s.references = NULL;
  char ename[64], rname[64];
  sq_cdef c;
  sq_schema_cdef(op->table, &s, inline_pk, &c, ename, rname);
  sbuf head = {0}, check = {0};
  rc = sq_ddl_col_def(&head, &c, D, SQ_CD_NOCHECK, err);
  if (!rc) rc = sq_ddl_enum_check(&check, &c, err);
  if (!rc && (head.oom || check.oom)) rc = sq_ddl_nomem(err);
  change_keep k = {p->name};
  if (!rc) rc = col_rewrite(p, &cp, keep_changed, &k, head.p, check.p, err);
  colparse_free(&cp);
  sb_free(&head);
  sb_free(&check);
  return rc;
}

static int op_add_unique(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  const sq_sindex *x = op->index;
  if (!x->name && x->ncols == 1) {
    int at = find_col(t, x->cols[0]);
    if (at < 0) return sq_err_set(err, SQ_EUSAGE, "no column \"%.64s\"", x->cols[0]);
    return col_append(&t->p[at], "UNIQUE", err);
  }
  sbuf b = {0};
  int rc = SQ_OK;
  if (x->name) {
    sb_puts(&b, "CONSTRAINT ");
    rc = sq_ddl_ident(&b, D, x->name, err);
    sb_puts(&b, " ");
  }
  sb_puts(&b, "UNIQUE ");
  if (!rc) rc = sq_schema_cols_sql(&b, D, x->cols, x->ncols, err);
  if (!rc && b.oom) rc = sq_ddl_nomem(err);
  piece *p = rc ? NULL : tdef_insert(t, t->n, err);
  if (!rc && !p) rc = SQ_ENOMEM;
  if (!rc) {
    p->text = b.p;
    b.p = NULL;
    rc = piece_parse(p, err);
  }
  sb_free(&b);
  return rc;
}

static int op_remove_unique(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  const sq_sindex *x = op->index;
  int found = 0, rc = SQ_OK;
  for (int i = t->n - 1; i >= 0; i--) {
    piece *p = &t->p[i];
    if (p->kind != P_UNIQUE) continue;
    if ((x && same_set(p->cols, p->ncols, x->cols, x->ncols)) || (op->name && p->name && eq_nocase(p->name, op->name))) {
      tdef_remove(t, i);
      found++;
    }
  }
  if (!found && x && x->ncols == 1) {
    int at = find_col(t, x->cols[0]);
    if (at >= 0) rc = col_strip(&t->p[at], CL_UNIQUE, NULL, &found, err);
  }
  for (int i = 0; !rc && !found && op->name && i < t->n; i++)
    if (t->p[i].kind == P_COL) rc = col_strip(&t->p[i], CL_UNIQUE, op->name, &found, err);
  if (!rc && !found)
    rc = sq_err_set(err, SQ_EUSAGE, "no such unique constraint on \"%.64s\"", op->table);
  return rc;
}

static int op_drop_pk(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  int found = 0, rc = SQ_OK;
  for (int i = t->n - 1; i >= 0; i--)
    if (t->p[i].kind == P_PK) {
      tdef_remove(t, i);
      found++;
    }
  for (int i = 0; !rc && !found && i < t->n; i++)
    if (t->p[i].kind == P_COL) rc = col_strip(&t->p[i], CL_PK, NULL, &found, err);
  if (!rc && !found) rc = sq_err_set(err, SQ_EUSAGE, "\"%.64s\" has no primary key", op->table);
  return rc;
}

static int op_add_pk(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  const sq_sindex *x = op->index;
  int rc = SQ_OK;
  for (int k = 0; !rc && k < x->ncols; k++) {
    int at = find_col(t, x->cols[k]);
    if (at < 0) return sq_err_set(err, SQ_EUSAGE, "no column \"%.64s\"", x->cols[k]);
    colparse cp;
    rc = col_parse(t->p[at].text, &cp, err);
    int nn = !rc && has_clause(&cp, CL_NOTNULL);
    colparse_free(&cp);
    if (!rc && !nn) rc = col_append(&t->p[at], "NOT NULL", err);
    if (!rc && x->ncols == 1) rc = col_append(&t->p[at], "PRIMARY KEY", err);
  }
  if (rc || x->ncols == 1) return rc;
  sbuf b = {0};
  sb_puts(&b, "PRIMARY KEY ");
  rc = sq_schema_cols_sql(&b, D, x->cols, x->ncols, err);
  if (!rc && b.oom) rc = sq_ddl_nomem(err);
  piece *p = rc ? NULL : tdef_insert(t, first_constraint(t), err);
  if (!rc && !p) rc = SQ_ENOMEM;
  if (!rc) {
    p->text = b.p;
    b.p = NULL;
    rc = piece_parse(p, err);
  }
  sb_free(&b);
  return rc;
}

static int op_add_fk(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  sbuf b = {0};
  int rc = sq_schema_fk_sql(&b, D, op->table, op->fk, NULL, err);
  if (!rc && b.oom) rc = sq_ddl_nomem(err);
  piece *p = rc ? NULL : tdef_insert(t, t->n, err);
  if (!rc && !p) rc = SQ_ENOMEM;
  if (!rc) {
    p->text = b.p;
    b.p = NULL;
    rc = piece_parse(p, err);
  }
  sb_free(&b);
  return rc;
}

static int op_remove_fk(rebuild *r, const sq_sop *op, sq_err *err) {
  tdef *t = &r->l->t;
  int found = 0, rc = SQ_OK;
  for (int i = t->n - 1; i >= 0; i--) {
    piece *p = &t->p[i];
    if (p->kind != P_FK) continue;
    int hit = op->name ? p->name && eq_nocase(p->name, op->name)
                       : same_set(p->cols, p->ncols, op->fk->cols, op->fk->ncols);
    if (hit) {
      tdef_remove(t, i);
      found++;
    }
  }
  if (op->name) {
    for (int i = 0; !rc && i < t->n; i++)
      if (t->p[i].kind == P_COL) rc = col_strip(&t->p[i], CL_REFS, op->name, &found, err);
  } else if (op->fk->ncols == 1) {
    int at = find_col(t, op->fk->cols[0]);
    if (at >= 0) rc = col_strip(&t->p[at], CL_REFS, NULL, &found, err);
  }
  if (!rc && !found) rc = sq_err_set(err, SQ_EUSAGE, "no such foreign key on \"%.64s\"", op->table);
  return rc;
}

static int op_remove_index(rebuild *r, const sq_sop *op, sq_err *err) {
  for (int i = 0; i < r->nnew_ix; i++) {
    char name[64];
    if (!r->new_ix[i]) continue;
    sq_schema_index_name(r->table, r->new_ix[i]->index, name);
    if (eq_nocase(name, op->name)) {
      r->new_ix[i] = NULL;
      return SQ_OK;
    }
  }
  for (int i = 0; i < r->l->nix; i++)
    if (eq_nocase(r->l->ix[i].name, op->name)) {
      if (!r->l->ix[i].sql)
        return sq_err_set(err, SQ_EUSAGE, "index \"%.64s\" belongs to a key of the table (remove_unique)", op->name);
      r->l->ix[i].drop = 1;
      return SQ_OK;
    }
  if (op->if_exists) return SQ_OK;
  return sq_err_set(err, SQ_EUSAGE, "no index \"%.64s\"", op->name);
}

static int apply_op(rebuild *r, const sq_sop *op, sq_err *err) {
  switch (op->kind) {
  case SQ_SOP_ADD_COLUMN: return op_add_column(r, op, err);
  case SQ_SOP_REMOVE_COLUMN: return op_remove_column(r, op->name, err);
  case SQ_SOP_CHANGE_COLUMN:
  case SQ_SOP_ADD_ENUM_VALUES: return op_change_column(r, op, err);
  case SQ_SOP_ADD_UNIQUE: return op_add_unique(r, op, err);
  case SQ_SOP_REMOVE_UNIQUE: return op_remove_unique(r, op, err);
  case SQ_SOP_ADD_PRIMARY_KEY: return op_add_pk(r, op, err);
  case SQ_SOP_DROP_PRIMARY_KEY: return op_drop_pk(r, op, err);
  case SQ_SOP_ADD_FOREIGN_KEY: return op_add_fk(r, op, err);
  case SQ_SOP_REMOVE_FOREIGN_KEY: return op_remove_fk(r, op, err);
  case SQ_SOP_ADD_INDEX: {
    const sq_sop **v = realloc(r->new_ix, sizeof *v * (size_t)(r->nnew_ix + 1));
    if (!v) return sq_ddl_nomem(err);
    r->new_ix = v;
    r->new_ix[r->nnew_ix++] = op;
    return SQ_OK;
  }
  case SQ_SOP_REMOVE_INDEX: return op_remove_index(r, op, err);
  case SQ_SOP_NOTE: return SQ_OK;
  default: return sq_err_set(err, SQ_EINTERNAL, "a %s op in a SQLite rebuild", sq_sop_kind_name(op->kind));
  }
}

/* ------------------------------------------------------------------ */
/* The rebuild's statements                                             */
/* ------------------------------------------------------------------ */

/* The temporary table: "<t>__sqorm_new", or a fixed name when that would
 * pass the identifier limit. */
static void rebuild_name(const char *table, char *out, size_t outn) {
  if (strlen(table) + 12 <= 63) snprintf(out, outn, "%s__sqorm_new", table);
  else snprintf(out, outn, "sqorm__rebuild_new");
}

static int removed(const rebuild *r, const char *col) {
  for (int i = 0; i < r->nremoved; i++)
    if (eq_nocase(r->removed[i], col)) return 1;
  return 0;
}

static int emit(rebuild *r, sq_sql_list *out, sq_err *err) {
  const char *table = r->table;
  const tdef *t = &r->l->t;
  char tmp[96];
  rebuild_name(table, tmp, sizeof tmp);
  sbuf b = {0};
  int rc = SQ_OK, autoinc = 0;
  sb_puts(&b, "DROP TABLE IF EXISTS ");
  rc = sq_ddl_ident(&b, D, tmp, err);
  if (!rc) rc = sq_ddl_push(out, &b, err);
  /* CREATE TABLE tmp (...) */
  sb_puts(&b, "CREATE TABLE ");
  if (!rc) rc = sq_ddl_ident(&b, D, tmp, err);
  sb_puts(&b, " (");
  for (int i = 0; i < t->n; i++) {
    if (i) sb_puts(&b, ", ");
    sb_puts(&b, t->p[i].text);
    if (t->p[i].kind == P_COL && !autoinc) autoinc = mentions(t->p[i].text, "AUTOINCREMENT", 1);
  }
  sb_puts(&b, ")");
  sb_puts(&b, t->suffix ? t->suffix : "");
  if (!rc) rc = sq_ddl_push(out, &b, err);
  /* INSERT INTO tmp (cols) SELECT sources FROM t */
  if (!rc) {
    sbuf sel = {0};
    int any = 0;
    sb_puts(&b, "INSERT INTO ");
    rc = sq_ddl_ident(&b, D, tmp, err);
    sb_puts(&b, " (");
    sb_puts(&sel, " SELECT ");
    for (int i = 0; !rc && i < t->n; i++) {
      const piece *p = &t->p[i];
      if (p->kind != P_COL || (!p->source && !p->fill)) continue;
      if (any) {
        sb_puts(&b, ", ");
        sb_puts(&sel, ", ");
      }
      any = 1;
      rc = sq_ddl_ident(&b, D, p->name, err);
      if (rc) break;
      if (p->source) rc = sq_ddl_ident(&sel, D, p->source, err);
      else sb_puts(&sel, p->fill);
    }
    sb_puts(&sel, " FROM ");
    if (!rc) rc = sq_ddl_ident(&sel, D, table, err);
    sb_puts(&b, ")");
    if (sel.oom) b.oom = 1;
    else if (sel.p) sb_puts(&b, sel.p);
    sb_free(&sel);
    if (!rc && any) rc = sq_ddl_push(out, &b, err);
    sb_reset(&b);
  }
  /* AUTOINCREMENT promises never to reuse an id: carry the old counter
   * over instead of the new table's max(id). */
  if (!rc && autoinc) {
    sb_puts(&b, "DELETE FROM sqlite_sequence WHERE name = ");
    rc = sq_ddl_strlit(&b, D, tmp, strlen(tmp), "table name", err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
    sb_puts(&b, "INSERT INTO sqlite_sequence (name, seq) SELECT ");
    if (!rc) rc = sq_ddl_strlit(&b, D, tmp, strlen(tmp), "table name", err);
    sb_puts(&b, ", seq FROM sqlite_sequence WHERE name = ");
    if (!rc) rc = sq_ddl_strlit(&b, D, table, strlen(table), "table name", err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
  }
  if (!rc) {
    sb_puts(&b, "DROP TABLE ");
    rc = sq_ddl_ident(&b, D, table, err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
  }
  /* Views and other tables' triggers name the table: renamed the legacy
   * way, SQLite neither checks nor rewrites them (they find the table
   * again under its name). */
  if (!rc && r->l->others) {
    sb_puts(&b, "PRAGMA legacy_alter_table = ON");
    rc = sq_ddl_push(out, &b, err);
  }
  if (!rc) {
    sb_puts(&b, "ALTER TABLE ");
    rc = sq_ddl_ident(&b, D, tmp, err);
    sb_puts(&b, " RENAME TO ");
    if (!rc) rc = sq_ddl_ident(&b, D, table, err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
  }
  if (!rc && r->l->others) {
    sb_puts(&b, "PRAGMA legacy_alter_table = OFF");
    rc = sq_ddl_push(out, &b, err);
  }
  /* the indexes whose columns survive, as written, then the new ones */
  for (int i = 0; !rc && i < r->l->nix; i++) {
    const lindex *x = &r->l->ix[i];
    if (!x->sql || x->drop) continue;
    int gone = 0;
    for (int j = 0; j < x->ncols && !gone; j++) gone = removed(r, x->cols[j]);
    for (int j = 0; x->expr && j < r->nremoved && !gone; j++) gone = mentions(x->sql, r->removed[j], 0);
    if (gone) continue;
    sb_puts(&b, x->sql);
    rc = sq_ddl_push(out, &b, err);
  }
  for (int i = 0; !rc && i < r->nnew_ix; i++) {
    if (!r->new_ix[i]) continue;
    rc = sq_schema_index_stmt(&b, D, table, r->new_ix[i]->index, r->new_ix[i]->if_exists, err);
    if (!rc) rc = sq_ddl_push(out, &b, err);
  }
  /* the table's triggers went with it */
  for (int i = 0; !rc && i < r->l->trig.nrows; i++) {
    const char *name = sq_srows_cell(&r->l->trig, i, 0), *sql = sq_srows_cell(&r->l->trig, i, 1);
    if (!sql) continue;
    for (int j = 0; j < r->nremoved && !rc; j++)
      if (mentions(sql, r->removed[j], 0))
        rc = sq_err_set(err, SQ_EUSAGE, "trigger \"%.64s\" uses column \"%.64s\": drop or change the trigger first",
                        name ? name : "?", r->removed[j]);
    if (rc) break;
    sb_puts(&b, sql);
    rc = sq_ddl_push(out, &b, err);
  }
  sb_free(&b);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Groups                                                               */
/* ------------------------------------------------------------------ */

static int native(const sq_sop *op, sq_sql_list *out, sq_err *err) {
  sbuf b = {0};
  int rc = SQ_OK;
  switch (op->kind) {
  case SQ_SOP_NOTE: return SQ_OK;
  case SQ_SOP_ADD_COLUMN: {
    char ename[64], rname[64];
    sq_cdef c;
    sq_schema_cdef(op->table, op->col, 1, &c, ename, rname);
    sb_puts(&b, "ALTER TABLE ");
    rc = sq_ddl_ident(&b, D, op->table, err);
    sb_puts(&b, " ADD COLUMN ");
    if (!rc) rc = sq_ddl_col_def(&b, &c, D, SQ_CD_REF, err);
    break;
  }
  case SQ_SOP_REMOVE_COLUMN:
    sb_puts(&b, "ALTER TABLE ");
    rc = sq_ddl_ident(&b, D, op->table, err);
    sb_puts(&b, " DROP COLUMN ");
    if (!rc) rc = sq_ddl_ident(&b, D, op->name, err);
    break;
  default: return sq_schema_table_op(out, D, op, err);
  }
  if (!rc) rc = sq_ddl_push(out, &b, err);
  sb_free(&b);
  return rc;
}

static int group_native(const sq_sop *ops, int n, sq_sql_list *out, sq_err *err) {
  for (int i = 0; i < n; i++) {
    int rc = native(&ops[i], out, err);
    if (rc) return sq_schema_op_err(&ops[i], err);
  }
  return SQ_OK;
}

int sq_lite_group(sq_conn *conn, int stale, const sq_sop *ops, int n, sq_sql_list *out, int *rebuilt, sq_err *err) {
  if (rebuilt) *rebuilt = 0;
  if (!sq_lite_group_needs_live(ops, n)) return group_native(ops, n, out, err);
  int need = 0;
  for (int i = 0; i < n && !need; i++) need = rebuilds(&ops[i]);
  if (!conn) {
    if (!need) return group_native(ops, n, out, err);
    for (int i = 0; i < n; i++)
      if (rebuilds(&ops[i])) {
        sq_err_set(err, SQ_EUSAGE, "SQLite rebuilds the table for this: it needs the live table (sq_schema_plan)");
        return sq_schema_op_err(&ops[i], err);
      }
  }
  if (stale) {
    sq_err_set(err, SQ_EUSAGE,
               "an earlier op of the list changes this table, and SQLite's plan for this one reads the table: "
               "run the list with sq_schema_apply (each op planned in turn)");
    return sq_schema_op_err(&ops[0], err);
  }
  live l;
  memset(&l, 0, sizeof l);
  int rc = read_live(conn, ops[0].table, &l, err);
  for (int i = 0; !rc && !need && i < n; i++) {
    if (ops[i].kind != SQ_SOP_REMOVE_COLUMN) continue;
    int ok;
    rc = native_drop_ok(conn, &l, ops[i].name, err, &ok);
    if (rc) sq_schema_op_err(&ops[i], err);
    need = !ok;
  }
  if (!rc && !need) {
    live_free(&l);
    return group_native(ops, n, out, err);
  }
  rebuild r;
  memset(&r, 0, sizeof r);
  r.l = &l;
  r.table = ops[0].table;
  for (int i = 0; !rc && i < n; i++) {
    rc = apply_op(&r, &ops[i], err);
    if (rc) sq_schema_op_err(&ops[i], err);
  }
  if (!rc) {
    rc = emit(&r, out, err);
    if (rc) sq_schema_op_err(&ops[0], err);
    else if (rebuilt) *rebuilt = 1;
  }
  for (int i = 0; i < r.nremoved; i++) free(r.removed[i]);
  free(r.removed);
  free(r.new_ix);
  live_free(&l);
  return rc;
}
