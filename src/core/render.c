/*
 * render.c - the query tree to SQL text plus ordered parameters, per
 * dialect. This is the only place sqorm writes SQL for queries.
 *
 * Values never enter the text: every operand becomes a placeholder (? or
 * $n) and is appended to the parameter list in the same order. Names come
 * pre-quoted from the finished model (model.c), so rendering is a run of
 * memcpy into one growing buffer, with no allocation per token. LIMIT and
 * OFFSET are placeholders too, so queries that differ only in paging
 * share one prepared statement in the drivers' caches.
 */
#include "model_int.h"
#include "internal.h"
#include "render_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200 /* nesting of and/or/not a where may have */

typedef struct rb {
  char *p;
  size_t n, cap;
  sq_value *pv;
  int np, pcap;
  int dialect, qs, dollar, bs;
  const sq_model *m;
  int fail;     /* sticky: once set, writes are ignored */
  sq_err *err;
  const char *qual; /* sq_render_leaf: a table alias and '.' before each column, or NULL */
  size_t qual_n;
} rb;

static void fail_nomem(rb *r) {
  if (!r->fail) sq_err_set(r->err, SQ_ENOMEM, "out of memory");
  r->fail = 1;
}

/* The first error wins; later writes are no-ops. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(rb *r, const char *fmt, ...) {
  if (r->fail) return;
  r->fail = 1;
  va_list ap;
  va_start(ap, fmt);
  char msg[sizeof r->err->msg];
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sq_err_set(r->err, SQ_EUSAGE, "%s", msg);
}

static int grow(rb *r, size_t need) {
  size_t cap = r->cap ? r->cap : 256;
  while (cap < r->n + need + 1) cap *= 2;
  char *p = realloc(r->p, cap);
  if (!p) {
    fail_nomem(r);
    return -1;
  }
  r->p = p;
  r->cap = cap;
  return 0;
}

static inline void put(rb *r, const char *s, size_t n) {
  if (r->fail) return;
  if (r->n + n + 1 > r->cap && grow(r, n)) return;
  memcpy(r->p + r->n, s, n);
  r->n += n;
}

#define PUTS(r, lit) put((r), (lit), sizeof(lit) - 1)

/* A byte that continues a PostgreSQL word or number (see stmt.c): a raw
 * fragment's placeholder written next to one is set apart by a space. */
static int pg_word_byte(unsigned char c) {
  return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

/* Appends a placeholder for v and records v as the next parameter. */
static void ph(rb *r, sq_value v) {
  if (r->fail) return;
  if (r->np == r->pcap) {
    int cap = r->pcap ? r->pcap * 2 : 16;
    sq_value *pv = realloc(r->pv, sizeof *pv * (size_t)cap);
    if (!pv) {
      fail_nomem(r);
      return;
    }
    r->pv = pv;
    r->pcap = cap;
  }
  r->pv[r->np++] = v;
  if (!r->dollar) {
    put(r, "?", 1);
    return;
  }
  char num[24];
  num[0] = '$';
  put(r, num, 1 + sq_fmt_i64(r->np, num + 1));
}

static int col_ok(rb *r, int c, const char *where) {
  if (c >= 0 && c < r->m->ncols) return 1;
  fail(r, "%s: column index %d is not a column of model '%s'", where, c, r->m->name);
  return 0;
}

static void col(rb *r, int c) {
  const sq_qname *q = &r->m->qcol[r->qs][c];
  if (r->qual_n) put(r, r->qual, r->qual_n);
  put(r, q->p, q->n);
}

static void table(rb *r) { put(r, r->m->qtable[r->qs].p, r->m->qtable[r->qs].n); }

/*
 * DECIMAL on SQLite is text (see driver_sqlite.c and decimal.c): it is
 * compared, ordered and grouped under the exact collation, summed and
 * averaged by the exact functions, and written through sqorm_dnorm, which
 * stores it at the column's scale ("1.5" -> "1.50", as MySQL and
 * PostgreSQL do). The collation is named here, in the statement, not
 * declared on the column, so other tools can still use the file.
 */
static int lite_dec(const rb *r, int c) {
  return r->dialect == SQ_DIALECT_SQLITE && r->m->cols[c].type == SQ_T_DECIMAL;
}

/* The column as an operand of a comparison, ORDER BY or GROUP BY. */
static void col_cmp(rb *r, int c) {
  col(r, c);
  if (lite_dec(r, c)) PUTS(r, " COLLATE " SQ_DEC_COLLATION);
}

/* ", p, s)": closes sqorm_dnorm( for column c. */
static void dnorm_tail(rb *r, int c) {
  const sq_col *k = &r->m->cols[c];
  char num[24];
  PUTS(r, ", ");
  put(r, num, sq_fmt_i64(k->precision > 0 ? k->precision : 10, num));
  PUTS(r, ", ");
  put(r, num, sq_fmt_i64(k->scale > 0 ? k->scale : 0, num));
  put(r, ")", 1);
}

/*
 * A value compared with (or added to) DECIMAL column c. MySQL compares a
 * DECIMAL with a string, and adds a string to it, as doubles, so the
 * value is cast to the column's type there (exact: it was checked to fit
 * DECIMAL(p,s) before it got here). Elsewhere a plain placeholder.
 */
static void ph_cmp(rb *r, int c, sq_value v) {
  if (r->dialect != SQ_DIALECT_MYSQL || r->m->cols[c].type != SQ_T_DECIMAL || v.type == SQ_VNULL) {
    ph(r, v);
    return;
  }
  const sq_col *k = &r->m->cols[c];
  char num[24];
  PUTS(r, "CAST(");
  ph(r, v);
  PUTS(r, " AS DECIMAL(");
  put(r, num, sq_fmt_i64(k->precision > 0 ? k->precision : 10, num));
  put(r, ",", 1);
  put(r, num, sq_fmt_i64(k->scale > 0 ? k->scale : 0, num));
  PUTS(r, "))");
}

/* A value written to column c. */
static void ph_col(rb *r, int c, sq_value v) {
  if (!lite_dec(r, c)) {
    ph(r, v);
    return;
  }
  PUTS(r, SQ_DEC_NORM "(");
  ph(r, v);
  dnorm_tail(r, c);
}

/* Quotes a name that isn't from the model (an alias), after checking it. */
static void quote_other(rb *r, const char *s) {
  char q[2 * SQ_IDENT_MAX + 3];
  if (r->fail) return;
  if (sq_quote_ident(r->dialect, s, strlen(s), q, sizeof q, r->err)) {
    r->fail = 1;
    return;
  }
  put(r, q, strlen(q));
}

/* ------------------------------------------------------------------ */
/* where / having                                                       */
/* ------------------------------------------------------------------ */

/*
 * A raw fragment: copied as written, inside parentheses, with each ? that
 * the dialect's lexer sees outside literals, quoted names and comments
 * replaced by the dialect's placeholder (continuing the statement's
 * numbering on postgres) and bound to the next value; on postgres `??` is
 * a literal `?`. A fragment can't end inside a literal or comment (the
 * rest of the statement would silently become part of it), hold a ';',
 * or use a dialect's own numbered or named parameters.
 */
static void raw(rb *r, const sq_expr *e) {
  const char *s = e->raw;
  size_t n = e->raw_len, copied = 0;
  int used = 0, line_comment = 0;
  if (!s) {
    fail(r, "sqorm.raw: no SQL fragment");
    return;
  }
  if (r->dialect != SQ_DIALECT_MYSQL && memchr(s, '\0', n)) { /* libpq, SQLite would stop reading there */
    fail(r, "sqorm.raw: the fragment holds a NUL byte");
    return;
  }
  sq_lexer lx;
  sq_token t;
  sq_lex_init(&lx, r->dialect, 0, s, n);
  put(r, "(", 1);
  while (sq_lex_next(&lx, &t) != SQ_TK_EOF) {
    line_comment = t.type == SQ_TK_COMMENT && (s[t.pos] == '-' || s[t.pos] == '#');
    if (t.unterminated) {
      fail(r, "sqorm.raw: the fragment ends inside a string, quoted name or comment");
      return;
    }
    switch (t.type) {
    case SQ_TK_QMARK:
      put(r, s + copied, t.pos - copied);
      if (used < e->nvals) {
        if (r->dollar && r->n && pg_word_byte((unsigned char)r->p[r->n - 1])) put(r, " ", 1);
        ph(r, e->vals[used]);
        if (r->dollar && t.pos + t.len < n && pg_word_byte((unsigned char)s[t.pos + t.len])) put(r, " ", 1);
      }
      used++;
      copied = t.pos + t.len;
      break;
    case SQ_TK_QESC:
      put(r, s + copied, t.pos + 1 - copied);
      copied = t.pos + t.len;
      break;
    case SQ_TK_QAMBIG:
      fail(r, "sqorm.raw: '%.2s' in the fragment: on postgres ? is a placeholder; write the operator as '?%.2s'",
           s + t.pos, s + t.pos);
      return;
    case SQ_TK_NAMED: /* :name is a parameter to SQLite, which would number it among ours */
      if (r->dialect != SQ_DIALECT_SQLITE) break;
      /* fall through */
    case SQ_TK_NATIVE:
      fail(r, "sqorm.raw: the fragment uses the parameter '%.*s'; use ? placeholders",
           (int)(t.len > 32 ? 32 : t.len), s + t.pos);
      return;
    case SQ_TK_SEMI:
      fail(r, "sqorm.raw: a fragment can't hold ';'");
      return;
    default:
      break;
    }
  }
  if (lx.exec_comment) {
    fail(r, "sqorm.raw: the fragment ends inside an executable comment");
    return;
  }
  put(r, s + copied, n - copied);
  if (line_comment) put(r, "\n", 1); /* the ')' must not be commented out */
  put(r, ")", 1);
  if (used != e->nvals)
    fail(r, "sqorm.raw: the fragment has %d placeholder%s but %d value%s were given", used, used == 1 ? "" : "s",
         e->nvals, e->nvals == 1 ? "" : "s");
}

static const char *cmp_sql(int op) {
  switch (op) {
  case SQ_OP_EQ: return " = ";
  case SQ_OP_NE: return " <> ";
  case SQ_OP_GT: return " > ";
  case SQ_OP_GTE: return " >= ";
  case SQ_OP_LT: return " < ";
  case SQ_OP_LTE: return " <= ";
  case SQ_OP_LIKE: return " LIKE ";
  case SQ_OP_NOT_LIKE: return " NOT LIKE ";
  default: return NULL;
  }
}

static int nvals_ok(rb *r, const sq_expr *e, int want) {
  if (e->nvals == want && (want == 0 || e->vals)) return 1;
  fail(r, "where: operator %d on column '%s' takes %d value%s, got %d", e->op, r->m->cols[e->col].name, want,
       want == 1 ? "" : "s", e->nvals);
  return 0;
}

/* ------------------------------------------------------------------ */
/* op.json: a comparison of the JSON value at a path                    */
/* ------------------------------------------------------------------ */

/* The JSON type test of e's path: "<typeof(col at path)>". */
static void json_typeof(rb *r, const sq_expr *e) {
  switch (r->dialect) {
  case SQ_DIALECT_POSTGRES:
    PUTS(r, "jsonb_typeof(");
    col(r, e->col);
    PUTS(r, " #> ");
    ph(r, e->jpath->path);
    put(r, ")", 1);
    break;
  case SQ_DIALECT_MYSQL:
    PUTS(r, "JSON_TYPE(JSON_EXTRACT(");
    col(r, e->col);
    PUTS(r, ", ");
    ph(r, e->jpath->path);
    PUTS(r, "))");
    break;
  default:
    PUTS(r, "json_type(");
    col(r, e->col);
    PUTS(r, ", ");
    ph(r, e->jpath->path);
    put(r, ")", 1);
  }
}

/* The value at the path as SQL text (PostgreSQL, MySQL) or value (SQLite). */
static void json_text(rb *r, const sq_expr *e) {
  switch (r->dialect) {
  case SQ_DIALECT_POSTGRES:
    put(r, "(", 1);
    col(r, e->col);
    PUTS(r, " #>> ");
    ph(r, e->jpath->path);
    put(r, ")", 1);
    break;
  case SQ_DIALECT_MYSQL:
    PUTS(r, "JSON_UNQUOTE(JSON_EXTRACT(");
    col(r, e->col);
    PUTS(r, ", ");
    ph(r, e->jpath->path);
    PUTS(r, "))");
    break;
  default:
    PUTS(r, "json_extract(");
    col(r, e->col);
    PUTS(r, ", ");
    ph(r, e->jpath->path);
    put(r, ")", 1);
  }
}

/* The operand: the value at the path when it has the JSON type the
 * comparison is about, else NULL (so it never matches), written as a
 * CASE so no cast sees a value of another type. */
static void json_operand(rb *r, const sq_expr *e) {
  int jt = e->jpath->jtype, pg = r->dialect == SQ_DIALECT_POSTGRES, my = r->dialect == SQ_DIALECT_MYSQL;
  if (jt == SQ_JT_BOOL && !pg && !my) {
    PUTS(r, "(CASE ");
    json_typeof(r, e);
    PUTS(r, " WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)");
    return;
  }
  PUTS(r, "(CASE WHEN ");
  json_typeof(r, e);
  if (jt == SQ_JT_STRING) {
    if (pg) PUTS(r, " = 'string'");
    else if (my) PUTS(r, " = 'STRING'");
    else PUTS(r, " = 'text'");
    PUTS(r, " THEN ");
    json_text(r, e);
  } else if (jt == SQ_JT_NUMBER) {
    if (pg) PUTS(r, " = 'number' THEN CAST(");
    else if (my) PUTS(r, " IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL') THEN CAST(");
    else PUTS(r, " IN ('integer', 'real') THEN ");
    json_text(r, e);
    if (pg) PUTS(r, " AS NUMERIC)");
    else if (my) PUTS(r, " AS DECIMAL(65,30))");
  } else { /* boolean: PostgreSQL, MySQL */
    if (pg) PUTS(r, " = 'boolean' THEN CAST(");
    else PUTS(r, " = 'BOOLEAN' THEN (");
    json_text(r, e);
    if (pg) PUTS(r, " AS BOOLEAN)");
    else PUTS(r, " = 'true')");
  }
  PUTS(r, " END)");
}

static void json_leaf(rb *r, const sq_expr *e) {
  if (!col_ok(r, e->col, "where")) return;
  const sq_col *c = &r->m->cols[e->col];
  if (c->type != SQ_T_JSON) {
    fail(r, "where: op.json needs a JSON column; '%s' is %s", c->name, sq_ctype_name(c->type));
    return;
  }
  if (e->jpath->path.type != SQ_VTEXT) {
    fail(r, "where: op.json on '%s': the path is not text", c->name);
    return;
  }
  int jt = e->jpath->jtype;
  if (jt == SQ_JT_NULL || jt == SQ_JT_ANY) {
    int isnull = e->op == SQ_OP_IS_NULL;
    if (e->op != SQ_OP_IS_NULL && e->op != SQ_OP_NOT_NULL) {
      fail(r, "where: op.json on '%s': a null test takes is_null / not_null", c->name);
      return;
    }
    if (jt == SQ_JT_NULL) {
      /* a JSON null at the path (never the string "null", never a missing key) */
      if (!isnull) PUTS(r, "NOT ");
      put(r, "(", 1);
      json_typeof(r, e);
      if (r->dialect == SQ_DIALECT_MYSQL) PUTS(r, " = 'NULL')");
      else PUTS(r, " = 'null')");
      if (!isnull) {
        PUTS(r, " AND ");
        json_typeof(r, e);
        PUTS(r, " IS NOT NULL");
      }
      return;
    }
    /* no value there: missing, or JSON null */
    if (!isnull) PUTS(r, "NOT ");
    put(r, "(", 1);
    if (r->dialect == SQ_DIALECT_MYSQL) {
      json_typeof(r, e);
      PUTS(r, " IS NULL OR ");
      json_typeof(r, e);
      PUTS(r, " = 'NULL')");
    } else {
      json_text(r, e);
      PUTS(r, " IS NULL)");
    }
    return;
  }
  if (jt != SQ_JT_STRING && jt != SQ_JT_NUMBER && jt != SQ_JT_BOOL) {
    fail(r, "where: op.json on '%s': unknown JSON type %d", c->name, jt);
    return;
  }
  switch (e->op) {
  case SQ_OP_EQ: case SQ_OP_NE: case SQ_OP_GT: case SQ_OP_GTE: case SQ_OP_LT: case SQ_OP_LTE:
  case SQ_OP_LIKE: case SQ_OP_NOT_LIKE: {
    if (!nvals_ok(r, e, 1)) return;
    if ((e->op == SQ_OP_LIKE || e->op == SQ_OP_NOT_LIKE) && jt != SQ_JT_STRING) {
      fail(r, "where: op.json on '%s': like takes a string", c->name);
      return;
    }
    json_operand(r, e);
    const char *s = cmp_sql(e->op);
    put(r, s, strlen(s));
    ph(r, e->vals[0]);
    return;
  }
  case SQ_OP_BETWEEN:
  case SQ_OP_NOT_BETWEEN:
    if (!nvals_ok(r, e, 2)) return;
    json_operand(r, e);
    if (e->op == SQ_OP_BETWEEN) PUTS(r, " BETWEEN ");
    else PUTS(r, " NOT BETWEEN ");
    ph(r, e->vals[0]);
    PUTS(r, " AND ");
    ph(r, e->vals[1]);
    return;
  case SQ_OP_IN:
  case SQ_OP_NOT_IN:
    if (e->nvals <= 0 || !e->vals) {
      fail(r, "where: op.json on '%s': an empty IN list", c->name);
      return;
    }
    json_operand(r, e);
    if (e->op == SQ_OP_IN) PUTS(r, " IN (");
    else PUTS(r, " NOT IN (");
    for (int i = 0; i < e->nvals; i++) {
      if (i) PUTS(r, ", ");
      ph(r, e->vals[i]);
    }
    put(r, ")", 1);
    return;
  default:
    fail(r, "where: op.json on '%s': operator %d can't compare a JSON value", c->name, e->op);
  }
}

/*
 * Renders e. parent is the AND/OR it sits in (0 at the top or inside
 * parentheses): a nested AND/OR gets parentheses only when it differs
 * from its parent, and the same operator nested is flattened.
 */
static void expr(rb *r, const sq_expr *e, int parent, int depth) {
  if (r->fail) return;
  if (!e) {
    fail(r, "where: empty expression");
    return;
  }
  if (depth > MAX_DEPTH) {
    fail(r, "where: nested more than %d levels deep", MAX_DEPTH);
    return;
  }
  switch (e->op) {
  case SQ_OP_AND:
  case SQ_OP_OR: {
    if (e->nkids > 0 && !e->kids) {
      fail(r, "where: and/or without operands");
      return;
    }
    if (e->nkids == 0) {
      if (e->op == SQ_OP_AND) PUTS(r, "1=1");
      else PUTS(r, "1=0");
      return;
    }
    if (e->nkids == 1) {
      expr(r, e->kids[0], parent, depth + 1);
      return;
    }
    int paren = parent && parent != e->op;
    if (paren) put(r, "(", 1);
    for (int i = 0; i < e->nkids; i++) {
      if (i) {
        if (e->op == SQ_OP_AND) PUTS(r, " AND ");
        else PUTS(r, " OR ");
      }
      expr(r, e->kids[i], e->op, depth + 1);
    }
    if (paren) put(r, ")", 1);
    return;
  }
  case SQ_OP_NOT:
    if (e->nkids != 1 || !e->kids) {
      fail(r, "where: not takes exactly one operand");
      return;
    }
    PUTS(r, "NOT (");
    expr(r, e->kids[0], 0, depth + 1);
    put(r, ")", 1);
    return;
  case SQ_OP_RAW:
    raw(r, e);
    return;
  default:
    break;
  }
  if (e->lhs || e->rhs || e->sub || e->assoc || (e->op >= SQ_OP_EXISTS && e->op <= SQ_OP_HAS)) {
    /* Part 2's expressions are sq_render_select's; never ignore them. */
    fail(r, "where: this expression (a column reference, function, subquery or op.has) needs sq_render_select");
    return;
  }
  if (e->jpath) {
    json_leaf(r, e);
    return;
  }
  if (!col_ok(r, e->col, "where")) return;
  switch (e->op) {
  case SQ_OP_EQ: case SQ_OP_NE: case SQ_OP_GT: case SQ_OP_GTE: case SQ_OP_LT: case SQ_OP_LTE:
  case SQ_OP_LIKE: case SQ_OP_NOT_LIKE:
    if (!nvals_ok(r, e, 1)) return;
    if (e->op == SQ_OP_LIKE || e->op == SQ_OP_NOT_LIKE) col(r, e->col);
    else col_cmp(r, e->col);
    if (e->vals[0].type == SQ_VNULL) {
      if (e->op == SQ_OP_EQ) PUTS(r, " IS NULL");
      else if (e->op == SQ_OP_NE) PUTS(r, " IS NOT NULL");
      else fail(r, "where: column '%s' compared with null; use is_null/not_null", r->m->cols[e->col].name);
      return;
    }
    {
      const char *s = cmp_sql(e->op);
      put(r, s, strlen(s));
    }
    if (e->op == SQ_OP_LIKE || e->op == SQ_OP_NOT_LIKE) ph(r, e->vals[0]);
    else ph_cmp(r, e->col, e->vals[0]);
    return;
  case SQ_OP_BETWEEN:
  case SQ_OP_NOT_BETWEEN:
    if (!nvals_ok(r, e, 2)) return;
    col_cmp(r, e->col);
    if (e->op == SQ_OP_BETWEEN) PUTS(r, " BETWEEN ");
    else PUTS(r, " NOT BETWEEN ");
    ph_cmp(r, e->col, e->vals[0]);
    PUTS(r, " AND ");
    ph_cmp(r, e->col, e->vals[1]);
    return;
  case SQ_OP_IN:
  case SQ_OP_NOT_IN:
    if (e->nvals < 0 || (e->nvals > 0 && !e->vals)) {
      fail(r, "where: bad value list for column '%s'", r->m->cols[e->col].name);
      return;
    }
    if (e->nvals == 0) {
      /* Empty IN matches nothing, empty NOT IN everything. */
      if (e->op == SQ_OP_IN) PUTS(r, "1=0");
      else PUTS(r, "1=1");
      return;
    }
    col_cmp(r, e->col);
    if (e->op == SQ_OP_IN) PUTS(r, " IN (");
    else PUTS(r, " NOT IN (");
    for (int i = 0; i < e->nvals; i++) {
      if (i) PUTS(r, ", ");
      ph_cmp(r, e->col, e->vals[i]);
    }
    put(r, ")", 1);
    return;
  case SQ_OP_IS_NULL:
    col(r, e->col);
    PUTS(r, " IS NULL");
    return;
  case SQ_OP_NOT_NULL:
    col(r, e->col);
    PUTS(r, " IS NOT NULL");
    return;
  default:
    fail(r, "where: unknown operator %d", e->op);
  }
}

/* WHERE <where> [AND deleted_at IS NULL] */
static void where(rb *r, const sq_query *q) {
  int del = q->paranoid ? r->m->roles[SQ_ROLE_DELETED_AT] : -1;
  if (!q->where && del < 0) return;
  PUTS(r, " WHERE ");
  if (q->where) expr(r, q->where, del >= 0 ? SQ_OP_AND : 0, 0);
  if (del >= 0) {
    if (q->where) PUTS(r, " AND ");
    col(r, del);
    PUTS(r, " IS NULL");
  }
}

/* ------------------------------------------------------------------ */
/* Clauses                                                              */
/* ------------------------------------------------------------------ */

static const char *fn_name(int fn) {
  switch (fn) {
  case SQ_FN_COUNT: return "count";
  case SQ_FN_SUM: return "sum";
  case SQ_FN_MIN: return "min";
  case SQ_FN_MAX: return "max";
  case SQ_FN_AVG: return "avg";
  default: return NULL;
  }
}

/* fn(col) AS alias; col < 0 with count is count(*). On SQLite a DECIMAL
 * column is summed and averaged exactly (sqorm_dsum, sqorm_davg) and its
 * min and max are taken under the exact collation. */
static void agg(rb *r, int fn, int c, const char *alias) {
  const char *name = fn_name(fn);
  if (!name) {
    fail(r, "unknown aggregate function %d", fn);
    return;
  }
  if (c < 0 && fn == SQ_FN_COUNT) {
    put(r, name, strlen(name));
    PUTS(r, "(*");
  } else {
    if (!col_ok(r, c, name)) return;
    if (lite_dec(r, c) && fn == SQ_FN_SUM) PUTS(r, SQ_DEC_SUM);
    else if (lite_dec(r, c) && fn == SQ_FN_AVG) PUTS(r, SQ_DEC_AVG);
    else put(r, name, strlen(name));
    put(r, "(", 1);
    if (fn == SQ_FN_MIN || fn == SQ_FN_MAX) col_cmp(r, c);
    else col(r, c);
  }
  PUTS(r, ") AS ");
  if (alias) quote_other(r, alias);
  else put(r, name, strlen(name));
}

static void attrs(rb *r, const sq_query *q) {
  if (!q->attrs) {
    for (int i = 0; i < r->m->ncols; i++) {
      if (i) PUTS(r, ", ");
      col(r, i);
    }
    return;
  }
  if (q->nattrs <= 0) {
    fail(r, "attributes: the list is empty");
    return;
  }
  for (int i = 0; i < q->nattrs; i++) {
    const sq_attr *a = &q->attrs[i];
    if (i) PUTS(r, ", ");
    if (a->fn != SQ_FN_NONE) {
      agg(r, a->fn, a->col, a->alias);
      continue;
    }
    if (!col_ok(r, a->col, "attributes")) return;
    col(r, a->col);
    if (a->alias && strcmp(a->alias, r->m->cols[a->col].name)) {
      PUTS(r, " AS ");
      quote_other(r, a->alias);
    }
  }
}

/* The group columns: as a select list (plain) or as GROUP BY (cmp: under
 * the DECIMAL collation on SQLite, so "1.5" and "1.50" are one group). */
static void group_cols(rb *r, const sq_query *q, const char *sep_after, int cmp) {
  for (int i = 0; i < q->ngroup; i++) {
    if (!col_ok(r, q->group[i], "group")) return;
    if (i) PUTS(r, ", ");
    if (cmp) col_cmp(r, q->group[i]);
    else col(r, q->group[i]);
  }
  if (q->ngroup && sep_after) put(r, sep_after, strlen(sep_after));
}

/* GROUP BY, HAVING, ORDER BY, LIMIT/OFFSET and the lock, in that order. */
static void tail(rb *r, const sq_query *q) {
  if (q->ngroup > 0) {
    PUTS(r, " GROUP BY ");
    group_cols(r, q, NULL, 1);
  }
  if (q->having) {
    PUTS(r, " HAVING ");
    expr(r, q->having, 0, 0);
  }
  if (q->norder > 0) {
    PUTS(r, " ORDER BY ");
    for (int i = 0; i < q->norder; i++) {
      if (!col_ok(r, q->order[i].col, "order")) return;
      if (i) PUTS(r, ", ");
      col_cmp(r, q->order[i].col);
      if (q->order[i].desc) PUTS(r, " DESC");
      else PUTS(r, " ASC");
    }
  }
  if (q->limit >= 0) {
    PUTS(r, " LIMIT ");
    ph(r, sq_int(q->limit));
  } else if (q->offset >= 0) {
    if (r->dialect == SQ_DIALECT_SQLITE) PUTS(r, " LIMIT -1");
    else if (r->dialect == SQ_DIALECT_MYSQL) PUTS(r, " LIMIT 18446744073709551615");
  }
  if (q->offset >= 0) {
    PUTS(r, " OFFSET ");
    ph(r, sq_int(q->offset));
  }
  if (q->lock == SQ_LOCK_UPDATE && r->dialect != SQ_DIALECT_SQLITE) {
    PUTS(r, " FOR UPDATE");
  } else if (q->lock == SQ_LOCK_SHARE) {
    if (r->dialect == SQ_DIALECT_POSTGRES) PUTS(r, " FOR SHARE");
    else if (r->dialect == SQ_DIALECT_MYSQL) PUTS(r, " LOCK IN SHARE MODE");
  }
}

static int in_list(const int *cols, int n, int c);

static void returning(rb *r, const sq_query *q, sq_sql *out) {
  if (!q->returning) return;
  /* MySQL has no RETURNING; MariaDB >= 10.5 has it for INSERT (and
   * DELETE), not for INSERT ... ON DUPLICATE KEY UPDATE */
  if (r->dialect == SQ_DIALECT_MYSQL && !(q->kind == SQ_Q_INSERT && (q->caps & SQ_CAP_INSERT_RETURNING))) return;
  /* SQ_RETURNING_UNSET: what the INSERT sets is known already; only the
   * columns it leaves to the database (generated keys, defaults) */
  int unset = q->returning == SQ_RETURNING_UNSET && q->kind == SQ_Q_INSERT;
  int n = 0;
  for (int i = 0; i < r->m->ncols; i++) {
    if (unset && in_list(q->cols, q->ncols, i)) continue;
    if (n++) PUTS(r, ", ");
    else PUTS(r, " RETURNING ");
    col(r, i);
  }
  if (n) out->returns_rows = 1;
}

/* Checks a column list: indexes in range, no column twice. */
static int col_list_ok(rb *r, const int *cols, int n, const char *what) {
  unsigned char seen_stack[256], *seen = seen_stack;
  if (n > 0 && !cols) {
    fail(r, "%s: no column list", what);
    return 0;
  }
  if (r->m->ncols > (int)sizeof seen_stack && !(seen = calloc((size_t)r->m->ncols, 1))) {
    fail_nomem(r);
    return 0;
  }
  if (seen == seen_stack) memset(seen, 0, sizeof seen_stack);
  int ok = 1;
  for (int i = 0; ok && i < n; i++) {
    if (!col_ok(r, cols[i], what)) ok = 0;
    else if (seen[cols[i]]++) {
      fail(r, "%s: column '%s' appears twice", what, r->m->cols[cols[i]].name);
      ok = 0;
    }
  }
  if (seen != seen_stack) free(seen);
  return ok;
}

static int in_list(const int *cols, int n, int c) {
  for (int i = 0; i < n; i++)
    if (cols[i] == c) return 1;
  return 0;
}

/* INSERT INTO t (cols) VALUES (...), (...) */
static void insert(rb *r, const sq_query *q) {
  if (q->nrows < 1) {
    fail(r, "insert: no rows");
    return;
  }
  if (q->ncols < 0 || (q->ncols > 0 && !q->values)) {
    fail(r, "insert: no values");
    return;
  }
  if (!col_list_ok(r, q->cols, q->ncols, "insert")) return;
  if (q->on_conflict && (q->kind != SQ_Q_INSERT || q->on_conflict != SQ_CONFLICT_IGNORE)) {
    fail(r, "insert: unknown on_conflict mode %d", q->on_conflict);
    return;
  }
  if (q->on_conflict && q->ncols == 0) {
    fail(r, "insert: ignoring duplicates needs columns");
    return;
  }
  if (q->on_conflict && r->dialect == SQ_DIALECT_MYSQL) PUTS(r, "INSERT IGNORE INTO ");
  else PUTS(r, "INSERT INTO ");
  table(r);
  if (q->ncols == 0) {
    if (r->dialect == SQ_DIALECT_MYSQL) {
      PUTS(r, " () VALUES ()");
      for (int i = 1; i < q->nrows; i++) PUTS(r, ", ()");
    } else if (q->nrows == 1) {
      PUTS(r, " DEFAULT VALUES");
    } else {
      fail(r, "insert: several rows with no columns can't be inserted in one statement on %s",
           sq_dialect_name(r->dialect));
    }
    return;
  }
  PUTS(r, " (");
  for (int i = 0; i < q->ncols; i++) {
    if (i) PUTS(r, ", ");
    col(r, q->cols[i]);
  }
  PUTS(r, ") VALUES ");
  const sq_value *v = q->values;
  for (int row = 0; row < q->nrows && !r->fail; row++) {
    put(r, row ? ", (" : "(", row ? 3 : 1);
    for (int i = 0; i < q->ncols; i++) {
      if (i) PUTS(r, ", ");
      ph_col(r, q->cols[i], *v++);
    }
    put(r, ")", 1);
  }
  if (q->on_conflict && r->dialect != SQ_DIALECT_MYSQL && !r->fail) {
    PUTS(r, " ON CONFLICT");
    if (q->conflict_cols) {
      if (!col_list_ok(r, q->conflict_cols, q->nconflict, "ignore duplicates conflict columns")) return;
      if (q->nconflict < 1) {
        fail(r, "insert: an empty conflict column list");
        return;
      }
      PUTS(r, " (");
      for (int i = 0; i < q->nconflict; i++) {
        if (i) PUTS(r, ", ");
        col(r, q->conflict_cols[i]);
      }
      put(r, ")", 1);
    }
    PUTS(r, " DO NOTHING");
  }
}

/* ON DUPLICATE KEY UPDATE (mysql) / ON CONFLICT (...) DO UPDATE SET. */
static void upsert(rb *r, const sq_query *q) {
  const sq_model *m = r->m;
  const int *conf = q->conflict_cols ? q->conflict_cols : m->pk;
  int nconf = q->conflict_cols ? q->nconflict : m->npk;
  if (q->conflict_cols && !col_list_ok(r, q->conflict_cols, q->nconflict, "upsert conflict columns")) return;
  if (nconf < 1) {
    fail(r, "upsert: no conflict columns");
    return;
  }
  if (q->update_cols) {
    if (!col_list_ok(r, q->update_cols, q->nupdate, "upsert update columns")) return;
    for (int i = 0; i < q->nupdate; i++)
      if (!in_list(q->cols, q->ncols, q->update_cols[i])) {
        fail(r, "upsert: update column '%s' is not among the inserted columns", m->cols[q->update_cols[i]].name);
        return;
      } else if (m->cols[q->update_cols[i]].role == SQ_ROLE_VERSION) {
        fail(r, "upsert: column '%s' is the version column (optimistic locking): it is bumped, never set",
             m->cols[q->update_cols[i]].name);
        return;
      }
  }
  int mysql = r->dialect == SQ_DIALECT_MYSQL;
  if (mysql) {
    PUTS(r, " ON DUPLICATE KEY UPDATE ");
  } else {
    PUTS(r, " ON CONFLICT (");
    for (int i = 0; i < nconf; i++) {
      if (i) PUTS(r, ", ");
      col(r, conf[i]);
    }
    put(r, ")", 1);
  }
  int n = 0;
  int total = q->update_cols ? q->nupdate : q->ncols;
  for (int i = 0; i < total; i++) {
    int c = q->update_cols ? q->update_cols[i] : q->cols[i];
    if (!q->update_cols &&
        (m->cols[c].primary_key || in_list(conf, nconf, c) || m->cols[c].role == SQ_ROLE_CREATED_AT ||
         m->cols[c].role == SQ_ROLE_VERSION))
      continue;
    if (n++) PUTS(r, ", ");
    else if (!mysql) PUTS(r, " DO UPDATE SET ");
    col(r, c);
    if (mysql) {
      PUTS(r, " = VALUES(");
      col(r, c);
      put(r, ")", 1);
    } else {
      PUTS(r, " = EXCLUDED.");
      col(r, c);
    }
  }
  int vc = m->roles[SQ_ROLE_VERSION];
  if (n > 0 && vc >= 0) {
    /* optimistic locking: an updated row moves to the next version (the
     * existing row's value: unqualified in ON DUPLICATE KEY UPDATE, by
     * the table's name in ON CONFLICT ... DO UPDATE) */
    PUTS(r, ", ");
    col(r, vc);
    PUTS(r, " = ");
    if (!mysql) {
      table(r);
      put(r, ".", 1);
    }
    col(r, vc);
    PUTS(r, " + 1");
  }
  if (n == 0) {
    /* Nothing to update: keep the existing row. */
    if (mysql) {
      col(r, conf[0]);
      PUTS(r, " = ");
      col(r, conf[0]);
    } else {
      PUTS(r, " DO NOTHING");
    }
  }
}

/* UPDATE t SET a = ?, c = c + ? WHERE ... */
static void update(rb *r, const sq_query *q) {
  if (q->ncols < 0 || q->nincr < 0 || q->ncols + q->nincr == 0) {
    fail(r, "update: nothing to set");
    return;
  }
  if ((q->ncols > 0 && (q->nrows != 1 || !q->values)) || (q->nincr > 0 && !q->incr_values)) {
    fail(r, "update: expects one row of values");
    return;
  }
  if (!col_list_ok(r, q->cols, q->ncols, "update") || !col_list_ok(r, q->incr_cols, q->nincr, "increment"))
    return;
  for (int i = 0; i < q->nincr; i++)
    if (in_list(q->cols, q->ncols, q->incr_cols[i])) {
      fail(r, "update: column '%s' is both set and incremented", r->m->cols[q->incr_cols[i]].name);
      return;
    }
  PUTS(r, "UPDATE ");
  table(r);
  PUTS(r, " SET ");
  for (int i = 0; i < q->ncols; i++) {
    if (i) PUTS(r, ", ");
    col(r, q->cols[i]);
    PUTS(r, " = ");
    ph_col(r, q->cols[i], q->values[i]);
  }
  for (int i = 0; i < q->nincr; i++) {
    int c = q->incr_cols[i];
    if (i || q->ncols) PUTS(r, ", ");
    col(r, c);
    PUTS(r, " = ");
    if (lite_dec(r, c)) { /* c + v in SQLite would go through a double */
      PUTS(r, SQ_DEC_NORM "(" SQ_DEC_ADD "(");
      col(r, c);
      PUTS(r, ", ");
      ph(r, q->incr_values[i]);
      put(r, ")", 1);
      dnorm_tail(r, c);
      continue;
    }
    col(r, c);
    PUTS(r, " + ");
    ph_cmp(r, c, q->incr_values[i]);
  }
  where(r, q);
}

static int max_params(int dialect) { return dialect == SQ_DIALECT_SQLITE ? 32766 : 65535; }

void sq_query_init(sq_query *q, int kind, const sq_model *m) {
  memset(q, 0, sizeof *q);
  q->kind = kind;
  q->model = m;
  q->paranoid = 1;
  q->limit = q->offset = -1;
  q->agg_col = -1;
}

void sq_sql_free(sq_sql *s) {
  if (!s) return;
  free(s->sql);
  free(s->params);
  memset(s, 0, sizeof *s);
}

/*
 * Renders q for a dialect into out (owned: free with sq_sql_free, also
 * after an error, which leaves it empty). Checks what the tree can get
 * wrong (column indexes, operand counts, clauses a statement can't have)
 * and the dialect's limit on bound parameters.
 */
int sq_render(const sq_query *q, int dialect, sq_sql *out, sq_err *err) {
  memset(out, 0, sizeof *out);
  if (!q || !q->model) return sq_err_set(err, SQ_EUSAGE, "sq_render: no query or model");
  const sq_model *m = q->model;
  if (!m->finished) return sq_err_set(err, SQ_EUSAGE, "model '%s' is not finished", m->name);
  if (dialect != SQ_DIALECT_SQLITE && dialect != SQ_DIALECT_MYSQL && dialect != SQ_DIALECT_POSTGRES)
    return sq_err_set(err, SQ_EUSAGE, "sq_render: unknown dialect %d", dialect);
  if (dialect == SQ_DIALECT_MYSQL && m->mysql_bad) {
    char shown[80];
    sq_show(m->mysql_bad, strlen(m->mysql_bad), shown, sizeof shown);
    return sq_err_set(err, SQ_EUSAGE, "name '%s' of model '%s' can't be used on MySQL (it ends in a space or holds a character outside the BMP)",
                      shown, m->name);
  }
  int reads = q->kind == SQ_Q_SELECT || q->kind == SQ_Q_COUNT || q->kind == SQ_Q_AGGREGATE;
  if (q->limit < -1 || q->offset < -1)
    return sq_err_set(err, SQ_EUSAGE, "limit and offset must be non-negative integers");
  if (q->lock < SQ_LOCK_NONE || q->lock > SQ_LOCK_SHARE) return sq_err_set(err, SQ_EUSAGE, "unknown lock mode %d", q->lock);
  if (q->kind != SQ_Q_SELECT && q->lock)
    return sq_err_set(err, SQ_EUSAGE, "lock applies to row queries (find_*), not to %s",
                      reads ? "count or aggregates" : "writes");
  if (!reads && (q->norder > 0 || q->limit >= 0 || q->offset >= 0 || q->ngroup > 0 || q->having))
    return sq_err_set(err, SQ_EUSAGE, "order, limit, offset, group and having apply to queries that read");
  if ((q->ngroup > 0 && !q->group) || (q->norder > 0 && !q->order))
    return sq_err_set(err, SQ_EUSAGE, "sq_render: group or order count without a list");

  rb r;
  memset(&r, 0, sizeof r);
  r.dialect = dialect;
  r.qs = dialect == SQ_DIALECT_MYSQL ? SQ_QSTYLE_BACKTICK : SQ_QSTYLE_DOUBLE;
  r.dollar = dialect == SQ_DIALECT_POSTGRES;
  r.bs = dialect == SQ_DIALECT_MYSQL;
  r.m = m;
  r.err = err;
  if (grow(&r, 64 + (size_t)m->ncols * 24)) return err->kind;

  switch (q->kind) {
  case SQ_Q_SELECT:
    PUTS(&r, "SELECT ");
    attrs(&r, q);
    PUTS(&r, " FROM ");
    table(&r);
    where(&r, q);
    tail(&r, q);
    out->returns_rows = 1;
    break;
  case SQ_Q_COUNT:
  case SQ_Q_AGGREGATE:
    PUTS(&r, "SELECT ");
    group_cols(&r, q, ", ", 0);
    if (q->kind == SQ_Q_COUNT) PUTS(&r, "count(*) AS count");
    else agg(&r, q->agg_fn, q->agg_col, NULL);
    PUTS(&r, " FROM ");
    table(&r);
    where(&r, q);
    tail(&r, q);
    out->returns_rows = 1;
    break;
  case SQ_Q_INSERT:
  case SQ_Q_UPSERT:
    insert(&r, q);
    if (q->kind == SQ_Q_UPSERT && !r.fail) {
      if (q->ncols == 0) fail(&r, "upsert: no columns");
      else upsert(&r, q);
    }
    returning(&r, q, out);
    break;
  case SQ_Q_UPDATE:
    update(&r, q);
    returning(&r, q, out);
    break;
  case SQ_Q_DELETE:
    PUTS(&r, "DELETE FROM ");
    table(&r);
    where(&r, q);
    returning(&r, q, out);
    break;
  default:
    fail(&r, "sq_render: unknown query kind %d", q->kind);
  }
  if (!r.fail && r.np > max_params(dialect))
    fail(&r, "the statement needs %d bound values; %s allows at most %d (split the IN list or the batch)", r.np,
         sq_dialect_name(dialect), max_params(dialect));
  if (r.fail) {
    free(r.p);
    free(r.pv);
    memset(out, 0, sizeof *out);
    return err->kind;
  }
  r.p[r.n] = '\0';
  out->sql = r.p;
  out->len = r.n;
  out->params = r.pv;
  out->nparams = r.np;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Names and dialect facts                                              */
/* ------------------------------------------------------------------ */

int sq_quote_ident(int dialect, const char *name, size_t len, char *out, size_t outn, sq_err *err) {
  if (sq_ident_check("identifier", name, len, err)) return err->kind;
  char q = dialect == SQ_DIALECT_MYSQL ? '`' : '"';
  if (dialect == SQ_DIALECT_MYSQL && !sq_ident_mysql_ok(name, len)) {
    char shown[80];
    sq_show(name, len, shown, sizeof shown);
    return sq_err_set(err, SQ_EUSAGE, "identifier '%s' can't be used on MySQL (it ends in a space or holds a character outside the BMP)", shown);
  }
  size_t o = 0;
  if (!out || outn < 3) return sq_err_set(err, SQ_EUSAGE, "sq_quote_ident: output buffer too small");
  out[o++] = q;
  for (size_t i = 0; i < len; i++) {
    if (o + 3 > outn) return sq_err_set(err, SQ_EUSAGE, "sq_quote_ident: output buffer too small");
    if (name[i] == q) out[o++] = q;
    out[o++] = name[i];
  }
  if (o + 2 > outn) return sq_err_set(err, SQ_EUSAGE, "sq_quote_ident: output buffer too small");
  out[o++] = q;
  out[o] = '\0';
  return SQ_OK;
}

int sq_dialect_ph_style(int dialect) {
  switch (dialect) {
  case SQ_DIALECT_POSTGRES: return SQ_PH_DOLLAR;
  case SQ_DIALECT_MYSQL: return SQ_PH_QMARK | SQ_PH_BACKSLASH;
  default: return SQ_PH_QMARK;
  }
}

const char *sq_ctype_name(int type) {
  static const char *const names[SQ_T_COUNT] = {
    [SQ_T_INTEGER] = "INTEGER", [SQ_T_BIGINT] = "BIGINT",     [SQ_T_SMALLINT] = "SMALLINT",
    [SQ_T_FLOAT] = "FLOAT",     [SQ_T_DOUBLE] = "DOUBLE",     [SQ_T_DECIMAL] = "DECIMAL",
    [SQ_T_STRING] = "STRING",   [SQ_T_CHAR] = "CHAR",         [SQ_T_TEXT] = "TEXT",
    [SQ_T_BOOLEAN] = "BOOLEAN", [SQ_T_DATE] = "DATE",         [SQ_T_DATETIME] = "DATETIME",
    [SQ_T_BLOB] = "BLOB",       [SQ_T_UUID] = "UUID",         [SQ_T_JSON] = "JSON",
    [SQ_T_ENUM] = "ENUM",
  };
  if (type <= 0 || type >= SQ_T_COUNT) return "UNKNOWN";
  return names[type];
}

/* ------------------------------------------------------------------ */
/* For render_select.c                                                  */
/* ------------------------------------------------------------------ */

int sq_dialect_max_params(int dialect) { return max_params(dialect); }

/*
 * One leaf of a where, rendered by expr() above into another renderer's
 * buffer: the buffer's pointers move into an rb and back, so the text
 * and parameters continue where the caller left them.
 */
int sq_render_leaf(sq_rbuf *b, const sq_model *m, int dialect, const char *qual, size_t qual_n, const sq_expr *e,
                   sq_err *err) {
  rb r;
  memset(&r, 0, sizeof r);
  r.p = b->p;
  r.n = b->n;
  r.cap = b->cap;
  r.pv = b->pv;
  r.np = b->np;
  r.pcap = b->pcap;
  r.dialect = dialect;
  r.qs = dialect == SQ_DIALECT_MYSQL ? SQ_QSTYLE_BACKTICK : SQ_QSTYLE_DOUBLE;
  r.dollar = dialect == SQ_DIALECT_POSTGRES;
  r.bs = dialect == SQ_DIALECT_MYSQL;
  r.m = m;
  r.err = err;
  r.qual = qual;
  r.qual_n = qual ? qual_n : 0;
  expr(&r, e, 0, 0);
  b->p = r.p;
  b->n = r.n;
  b->cap = r.cap;
  b->pv = r.pv;
  b->np = r.np;
  b->pcap = r.pcap;
  return r.fail ? err->kind : SQ_OK;
}
