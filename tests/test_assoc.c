/*
 * test_assoc.c - associations without a database: the metadata they add
 * to models (foreign-key columns, keys, indexes, join models, defaults,
 * refusals that leave models untouched), the exact SQL and parameters of
 * every include, batch, window, EXISTS, expression and subquery form on
 * each dialect, hostile names, and the stitch helper.
 *
 * Most statements are written once in SQLite's spelling; the MySQL and
 * PostgreSQL texts are derived from it (" -> `, ? -> $n), which holds
 * because these fixtures use no quotes or ? inside names or literals.
 * Dialect-specific text is spelled out where it differs.
 */
#include "sqorm.h"
#include "check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

enum { SQLITE = SQ_DIALECT_SQLITE, MYSQL = SQ_DIALECT_MYSQL, PG = SQ_DIALECT_POSTGRES };

static sq_err E;
static sq_arena *A;

/* ------------------------------------------------------------------ */
/* Fixtures                                                             */
/* ------------------------------------------------------------------ */

static sq_coldef coldef(const char *name, int type) {
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = name;
  d.type = type;
  d.allow_null = 1;
  d.default_value = sq_null();
  return d;
}

/* A model without timestamps: name, paranoid, then (name, type) pairs. */
static sq_model *model(const char *name, int paranoid, int n, ...) {
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.timestamps = 0;
  o.paranoid = paranoid;
  sq_model *m;
  if (sq_model_new(name, &o, &m, &E)) {
    fprintf(stderr, "model %s: %s\n", name, E.msg);
    return NULL;
  }
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    const char *c = va_arg(ap, const char *);
    int t = va_arg(ap, int);
    sq_coldef d = coldef(c, t);
    if (sq_model_add_column(m, &d, &E)) fprintf(stderr, "column %s: %s\n", c, E.msg);
  }
  va_end(ap);
  if (sq_model_finish(m, &E)) {
    fprintf(stderr, "finish %s: %s\n", name, E.msg);
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static sq_model *users, *companies, *profiles, *posts, *tags, *comments;
static const sq_assoc *A_AUTHOR, *A_POSTS, *A_PROFILE, *A_COMPANY, *A_TAGS, *A_COMMENTS, *A_PUB, *A_POSTS_OF_TAG;

/* Column indexes once the associations exist. */
enum { U_ID, U_NAME, U_COMPANY_ID };
enum { C_ID, C_NAME };
enum { PR_ID, PR_BIO, PR_DELETED, PR_USER_ID };
enum { P_ID, P_TITLE, P_PUBLISHED, P_DELETED, P_AUTHOR_ID };
enum { T_ID, T_NAME };
enum { CM_ID, CM_BODY, CM_POST_ID };

static const sq_assoc *assoc(sq_model *src, int kind, sq_model *dst, const char *as, const char *fk,
                             const char *through) {
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = as;
  o.foreign_key = fk;
  o.through = through;
  const sq_assoc *a = NULL;
  if (sq_model_associate(src, kind, dst, &o, &a, &E)) {
    fprintf(stderr, "associate %s: %s\n", as ? as : "?", E.msg);
    check_failures++;
  }
  return a;
}

static int fixtures(void) {
  users = model("user", 0, 1, "name", SQ_T_STRING);
  companies = model("company", 0, 1, "name", SQ_T_STRING);
  profiles = model("profile", 1, 1, "bio", SQ_T_TEXT);
  posts = model("post", 1, 2, "title", SQ_T_STRING, "published", SQ_T_BOOLEAN);
  tags = model("tag", 0, 1, "name", SQ_T_STRING);
  comments = model("comment", 0, 1, "body", SQ_T_TEXT);
  if (!users || !companies || !profiles || !posts || !tags || !comments) return 0;
  A_AUTHOR = assoc(posts, SQ_ASSOC_BELONGS_TO, users, "author", NULL, NULL);
  A_POSTS = assoc(users, SQ_ASSOC_HAS_MANY, posts, "posts", "author_id", NULL);
  A_PROFILE = assoc(users, SQ_ASSOC_HAS_ONE, profiles, NULL, NULL, NULL);
  A_COMPANY = assoc(users, SQ_ASSOC_BELONGS_TO, companies, NULL, NULL, NULL);
  A_TAGS = assoc(posts, SQ_ASSOC_BELONGS_TO_MANY, tags, NULL, NULL, "post_tags");
  A_COMMENTS = assoc(posts, SQ_ASSOC_HAS_MANY, comments, NULL, NULL, NULL);
  A_POSTS_OF_TAG = assoc(tags, SQ_ASSOC_BELONGS_TO_MANY, posts, NULL, NULL, "post_tags");
  /* a scoped association: published posts only */
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = "published_posts";
  o.foreign_key = "author_id";
  sq_value *t = sq_arena_alloc(A, sizeof *t);
  *t = sq_bool(1);
  sq_expr *sc = sq_arena_alloc(A, sizeof *sc);
  memset(sc, 0, sizeof *sc);
  sc->op = SQ_OP_EQ;
  sc->col = P_PUBLISHED;
  sc->vals = t;
  sc->nvals = 1;
  o.scope = sc;
  if (sq_model_associate(users, SQ_ASSOC_HAS_MANY, posts, &o, &A_PUB, &E)) {
    fprintf(stderr, "scoped: %s\n", E.msg);
    return 0;
  }
  /* The scope was copied: scribbling over the caller's tree changes nothing. */
  sc->col = P_TITLE;
  *t = sq_int(99);
  return A_AUTHOR && A_POSTS && A_PROFILE && A_COMPANY && A_TAGS && A_COMMENTS && A_POSTS_OF_TAG;
}

/* ------------------------------------------------------------------ */
/* Expectations                                                         */
/* ------------------------------------------------------------------ */

static const char *pstr(const sq_sql *s) {
  static char out[4096];
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < s->nparams && o < sizeof out - 64; i++) {
    const sq_value *v = &s->params[i];
    const char *sep = i ? "," : "";
    switch (v->type) {
    case SQ_VNULL: o += (size_t)snprintf(out + o, sizeof out - o, "%sn", sep); break;
    case SQ_VINT: o += (size_t)snprintf(out + o, sizeof out - o, "%si:%lld", sep, (long long)v->u.i); break;
    case SQ_VFLOAT: o += (size_t)snprintf(out + o, sizeof out - o, "%sf:%g", sep, v->u.f); break;
    case SQ_VBOOL: o += (size_t)snprintf(out + o, sizeof out - o, "%sb:%d", sep, v->u.b); break;
    default: o += (size_t)snprintf(out + o, sizeof out - o, "%ss:%.*s", sep, (int)v->u.s.n, v->u.s.p); break;
    }
  }
  return out;
}

/* SQLite text to MySQL's (backticks) or PostgreSQL's ($n). */
static char *derive(const char *sql, int dialect) {
  static char buf[3][16384];
  char *out = buf[dialect - 1];
  size_t o = 0;
  int n = 0;
  for (const char *p = sql; *p && o + 8 < sizeof buf[0]; p++) {
    if (dialect == MYSQL && *p == '"') out[o++] = '`';
    else if (dialect == PG && *p == '?') o += (size_t)snprintf(out + o, sizeof buf[0] - o, "$%d", ++n);
    else out[o++] = *p;
  }
  out[o] = '\0';
  return out;
}

static int check_out(int line, int dialect, int rc, sq_select_sql *s, const char *sql, const char *params) {
  CHECK(rc == SQ_OK);
  if (rc) {
    fprintf(stderr, "  line %d (%s): %s\n", line, sq_dialect_name(dialect), E.msg);
    return 0;
  }
  if (strcmp(s->sql.sql, sql) || strcmp(pstr(&s->sql), params))
    fprintf(stderr, "  at line %d (%s)\n", line, sq_dialect_name(dialect));
  CHECK_STR(s->sql.sql, sql);
  CHECK(strlen(s->sql.sql) == s->sql.len);
  CHECK_STR(pstr(&s->sql), params);
  return 1;
}

/* The select rendered on one dialect; out kept for column checks. */
static int sel1_at(int line, const sq_select *q, int d, const char *sql, const char *params, sq_select_sql *keep) {
  sq_select_sql s;
  int rc = sq_render_select(q, d, &s, &E);
  int ok = check_out(line, d, rc, &s, sql, params);
  if (keep && ok) *keep = s;
  else sq_select_sql_free(&s);
  return ok;
}

/* The select on all three dialects from SQLite's text. */
static void sel3_at(int line, const sq_select *q, const char *sql, const char *params) {
  sel1_at(line, q, SQLITE, sql, params, NULL);
  sel1_at(line, q, MYSQL, derive(sql, MYSQL), params, NULL);
  sel1_at(line, q, PG, derive(sql, PG), params, NULL);
}
#define SEL3(q, sql, params) sel3_at(__LINE__, q, sql, params)
#define SEL1(q, d, sql, params) sel1_at(__LINE__, q, d, sql, params, NULL)

static void batch3_at(int line, const sq_include *inc, const sq_value *keys, int n, const char *sql, const char *params) {
  for (int d = SQLITE; d <= PG; d++) {
    sq_select_sql s;
    int rc = sq_render_include_batch(inc, d, keys, n, &s, &E);
    check_out(line, d, rc, &s, d == SQLITE ? sql : derive(sql, d), params);
    sq_select_sql_free(&s);
  }
}
#define BATCH3(inc, keys, n, sql, params) batch3_at(__LINE__, inc, keys, n, sql, params)

static void refuse_at(int line, const sq_select *q, int d, const char *part) {
  sq_select_sql s;
  int rc = sq_render_select(q, d, &s, &E);
  CHECK(rc == SQ_EUSAGE);
  CHECK(s.sql.sql == NULL && s.sql.params == NULL && s.cols == NULL && s.batches == NULL);
  if (rc != SQ_EUSAGE || !strstr(E.msg, part))
    fprintf(stderr, "  line %d (%s): rc %d, message \"%s\" lacks \"%s\"\n", line, sq_dialect_name(d), rc,
            rc ? E.msg : (s.sql.sql ? s.sql.sql : ""), part);
  CHECK(rc == SQ_OK || strstr(E.msg, part) != NULL);
  sq_select_sql_free(&s);
}
#define REFUSE(q, part)                                                                                               \
  do {                                                                                                                \
    refuse_at(__LINE__, q, SQLITE, part);                                                                             \
    refuse_at(__LINE__, q, MYSQL, part);                                                                              \
    refuse_at(__LINE__, q, PG, part);                                                                                 \
  } while (0)

static void refuse_batch_at(int line, const sq_include *inc, const sq_value *keys, int n, const char *part) {
  sq_select_sql s;
  int rc = sq_render_include_batch(inc, SQLITE, keys, n, &s, &E);
  CHECK(rc == SQ_EUSAGE);
  CHECK(s.sql.sql == NULL);
  if (rc != SQ_EUSAGE || !strstr(E.msg, part))
    fprintf(stderr, "  line %d: rc %d, message \"%s\" lacks \"%s\"\n", line, rc, rc ? E.msg : "", part);
  sq_select_sql_free(&s);
}
#define REFUSE_BATCH(inc, keys, n, part) refuse_batch_at(__LINE__, inc, keys, n, part)

/* ---- tree builders (arena) ---- */

#define I(x) sq_int(x)
#define TX(lit) sq_text(lit, sizeof(lit) - 1)

static sq_expr *node(int op) {
  sq_expr *e = sq_arena_alloc(A, sizeof *e);
  memset(e, 0, sizeof *e);
  e->op = op;
  return e;
}

static sq_expr *cmp(int op, int c, int n, ...) {
  sq_expr *e = node(op);
  sq_value *v = sq_arena_alloc(A, sizeof *v * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) v[i] = va_arg(ap, sq_value);
  va_end(ap);
  e->col = c;
  e->vals = v;
  e->nvals = n;
  return e;
}

static sq_expr *logic(int op, int n, ...) {
  sq_expr *e = node(op);
  e->kids = sq_arena_alloc(A, sizeof *e->kids * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) e->kids[i] = va_arg(ap, sq_expr *);
  va_end(ap);
  e->nkids = n;
  return e;
}

static sq_operand *ops(int n, ...) {
  sq_operand *v = sq_arena_alloc(A, sizeof *v * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) v[i] = va_arg(ap, sq_operand);
  va_end(ap);
  return v;
}

static sq_operand *op1(sq_operand o) { return ops(1, o); }

/* lhs op rhs... (operands) */
static sq_expr *xcmp(int op, const sq_operand *lhs, int n, const sq_operand *rhs) {
  sq_expr *e = node(op);
  e->lhs = lhs;
  e->rhs = rhs;
  e->nrhs = n;
  return e;
}

static sq_expr *has(const sq_assoc *a, sq_expr *where) {
  sq_expr *e = node(SQ_OP_HAS);
  e->assoc = a;
  if (where) {
    e->kids = sq_arena_alloc(A, sizeof *e->kids);
    e->kids[0] = where;
    e->nkids = 1;
  }
  return e;
}

static sq_operand fn(const char *name, int n, ...) {
  sq_operand *v = sq_arena_alloc(A, sizeof *v * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) v[i] = va_arg(ap, sq_operand);
  va_end(ap);
  return sq_x_fn(name, v, n);
}

static sq_include *inc(const sq_assoc *a) {
  sq_include *x = sq_arena_alloc(A, sizeof *x);
  sq_include_init(x, a);
  return x;
}

static sq_include **incs(int n, ...) {
  sq_include **v = sq_arena_alloc(A, sizeof *v * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) v[i] = va_arg(ap, sq_include *);
  va_end(ap);
  return v;
}

/* ------------------------------------------------------------------ */
/* Metadata                                                             */
/* ------------------------------------------------------------------ */

static int fk_of(const sq_model *m, const char *col) {
  int c = sq_model_find(m, col, strlen(col));
  for (int i = 0; i < sq_model_nfks(m); i++)
    if (sq_model_fk(m, i)->col == c) return i;
  return -1;
}

static int index_named(const sq_model *m, const char *name) {
  for (int i = 0; i < sq_model_nindexes(m); i++) {
    const char *n;
    sq_model_index(m, i, &n, NULL, NULL, NULL);
    if (!strcmp(n, name)) return i;
  }
  return -1;
}

static void test_metadata(void) {
  /* Columns appended at the end, typed like the key they reference. */
  CHECK(sq_model_ncols(users) == 3 && sq_model_find(users, "company_id", 10) == U_COMPANY_ID);
  CHECK(sq_model_ncols(posts) == 5 && sq_model_find(posts, "author_id", 9) == P_AUTHOR_ID);
  CHECK(sq_model_find(posts, "deleted_at", 10) == P_DELETED); /* roles keep their index */
  CHECK(sq_model_role_col(posts, SQ_ROLE_DELETED_AT) == P_DELETED);
  CHECK(sq_model_ncols(profiles) == 4 && sq_model_find(profiles, "user_id", 7) == PR_USER_ID);
  CHECK(sq_model_ncols(comments) == 3 && sq_model_find(comments, "post_id", 7) == CM_POST_ID);
  const sq_col *fkc = sq_model_col(posts, P_AUTHOR_ID);
  CHECK(fkc->type == SQ_T_INTEGER && fkc->allow_null && !fkc->primary_key && !fkc->auto_increment);

  /* The association's columns: source.source_col = target.target_col. */
  CHECK(A_AUTHOR->kind == SQ_ASSOC_BELONGS_TO && A_AUTHOR->source == posts && A_AUTHOR->target == users);
  CHECK(A_AUTHOR->source_col == P_AUTHOR_ID && A_AUTHOR->target_col == U_ID);
  CHECK_STR(A_AUTHOR->as, "author");
  CHECK_STR(A_AUTHOR->singular, "author");
  CHECK(A_POSTS->source_col == U_ID && A_POSTS->target_col == P_AUTHOR_ID);
  CHECK_STR(A_POSTS->singular, "post");
  CHECK_STR(A_PROFILE->as, "profile"); /* to-one default: the target's name */
  CHECK(A_PROFILE->source_col == U_ID && A_PROFILE->target_col == PR_USER_ID);
  CHECK_STR(A_COMPANY->as, "company");
  CHECK(A_COMPANY->source_col == U_COMPANY_ID && A_COMPANY->target_col == C_ID);
  CHECK_STR(A_TAGS->as, "tags"); /* to-many default: the target's plural */
  CHECK_STR(A_TAGS->singular, "tag");
  CHECK_STR(A_COMMENTS->as, "comments");
  CHECK(sq_assoc_to_many(A_TAGS) && sq_assoc_to_many(A_POSTS) && !sq_assoc_to_many(A_AUTHOR));
  CHECK(sq_model_find_assoc(users, "posts", 5) == A_POSTS && sq_model_find_assoc(users, "post", 4) == NULL);
  CHECK(sq_model_nassocs(users) == 4 && sq_model_assoc(users, 0) == A_POSTS && sq_model_assoc(users, 9) == NULL);
  CHECK_STR(sq_assoc_kind_name(SQ_ASSOC_BELONGS_TO_MANY), "belongs_to_many");

  /* The join model: two key columns, the primary key, no timestamps. */
  const sq_model *jm = A_TAGS->through;
  CHECK(jm && A_TAGS->owns_through);
  CHECK_STR(sq_model_table(jm), "post_tags");
  CHECK(sq_model_ncols(jm) == 2);
  const int *pk;
  CHECK(sq_model_pk(jm, &pk) == 2 && pk[0] == 0 && pk[1] == 1);
  CHECK_STR(sq_model_col(jm, 0)->name, "post_id");
  CHECK_STR(sq_model_col(jm, 1)->name, "tag_id");
  CHECK(A_TAGS->through_source_col == 0 && A_TAGS->through_target_col == 1);
  CHECK(A_TAGS->source_col == P_ID && A_TAGS->target_col == T_ID);
  /* The reverse side shares it, with the keys the other way round. */
  CHECK(A_POSTS_OF_TAG->through == jm && !A_POSTS_OF_TAG->owns_through);
  CHECK(A_POSTS_OF_TAG->through_source_col == 1 && A_POSTS_OF_TAG->through_target_col == 0);
  CHECK(sq_model_nfks(jm) == 2);

  /* Foreign keys: one record per column, merged across both sides. */
  CHECK(sq_model_nfks(posts) == 1 && sq_model_nfks(users) == 1 && sq_model_nfks(profiles) == 1);
  const sq_fk *fk = sq_model_fk(posts, fk_of(posts, "author_id"));
  CHECK(fk && fk->target == users && fk->target_col == U_ID);
  CHECK_STR(fk->name, "posts_author_id_fkey");
  int del, upd, cons;
  sq_fk_actions(posts, fk, &del, &upd, &cons);
  CHECK(del == SQ_FK_SET_NULL && upd == SQ_FK_CASCADE && cons == SQ_CONSTRAINTS_ON); /* nullable */
  sq_fk_actions(jm, sq_model_fk(jm, 0), &del, &upd, &cons);
  CHECK(del == SQ_FK_CASCADE && upd == SQ_FK_CASCADE && sq_model_fk(jm, 0)->join); /* join tables cascade */
  CHECK_STR(sq_fk_action_sql(SQ_FK_SET_NULL), "SET NULL");
  CHECK_STR(sq_fk_action_sql(SQ_FK_NO_ACTION), "NO ACTION");

  /* An index on each key column nothing covers yet: not on post_id,
   * which leads the join model's primary key. */
  CHECK(index_named(posts, "posts_author_id") >= 0);
  CHECK(index_named(users, "users_company_id") >= 0);
  CHECK(index_named(jm, "post_tags_tag_id") >= 0 && index_named(jm, "post_tags_post_id") < 0);
  CHECK(sq_model_nindexes(jm) == 1);
  CHECK(sq_model_nindexes(posts) == 1); /* has_many posts through the same key: no second index */

  /* The scope was deep-copied: published = true. */
  CHECK(A_PUB->scope && A_PUB->scope->col == P_PUBLISHED && A_PUB->scope->vals[0].type == SQ_VBOOL);
}

/* Definitions that are refused leave every model as it was. */
typedef struct snap {
  int ncols, nassocs, nfks, nidx;
  unsigned gen;
} snap;

static snap take(const sq_model *m) {
  snap s = {sq_model_ncols(m), sq_model_nassocs(m), sq_model_nfks(m), sq_model_nindexes(m), sq_model_generation(m)};
  return s;
}

static int same(snap a, snap b) {
  return a.ncols == b.ncols && a.nassocs == b.nassocs && a.nfks == b.nfks && a.nidx == b.nidx && a.gen == b.gen;
}

static void refused_assoc(int line, sq_model *src, int kind, sq_model *dst, sq_assoc_opts *o, const char *part) {
  snap s1 = take(src), d1 = take(dst), p1 = take(posts);
  const sq_assoc *a = (const sq_assoc *)1;
  int rc = sq_model_associate(src, kind, dst, o, &a, &E);
  CHECK(rc == SQ_EUSAGE && a == NULL);
  if (rc != SQ_EUSAGE || !strstr(E.msg, part))
    fprintf(stderr, "  line %d: rc %d \"%s\" lacks \"%s\"\n", line, rc, rc ? E.msg : "", part);
  CHECK(rc == SQ_OK || strstr(E.msg, part) != NULL);
  CHECK(same(s1, take(src)) && same(d1, take(dst)) && same(p1, take(posts)));
}
#define REFUSED(src, kind, dst, o, part) refused_assoc(__LINE__, src, kind, dst, o, part)

static void test_refused_assocs(void) {
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = "name"; /* a column of users */
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "clashes with a column");
  o.as = "posts"; /* an association already */
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "already has an association");
  const char *reserved[] = {"save", "reload", "update"};
  o.as = "reload";
  o.reserved = reserved;
  o.nreserved = 3;
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "reserved");
  o.reserved = NULL;
  o.nreserved = 0;
  o.as = "a.b";
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "'.'");
  o.as = "x\ny";
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "control character");
  o.as = "0123456789012345678901234567890123456789012345678901234567890123";
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "longer than 63");
  o.as = "";
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "empty");
  o.as = "writings";
  o.foreign_key = "author_id;drop";
  o.source_key = "nope";
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "'nope' is not a column");
  o.source_key = NULL;
  o.foreign_key = "title"; /* a STRING column can't reference an INTEGER key */
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "make them the same type");
  o.foreign_key = "author_id"; /* already a key to users; fine, but not with other actions */
  o.on_delete = SQ_FK_RESTRICT;
  const sq_assoc *ok = NULL;
  CHECK(sq_model_associate(users, SQ_ASSOC_HAS_MANY, posts, &o, &ok, &E) == SQ_OK); /* default + explicit merge */
  if (ok) {
    const sq_fk *fk = sq_model_fk(posts, fk_of(posts, "author_id"));
    CHECK(fk->on_delete == SQ_FK_RESTRICT);
  }
  o.as = "writings2";
  o.on_delete = SQ_FK_CASCADE; /* now two explicit actions disagree */
  REFUSED(users, SQ_ASSOC_HAS_MANY, posts, &o, "different on_delete");
  o.on_delete = SQ_FK_DEFAULT;
  o.constraints = SQ_CONSTRAINTS_OFF;
  o.foreign_key = NULL;
  o.as = "writings3";
  /* companies.id as the key of posts.author_id: already a key to users */
  o.foreign_key = "author_id";
  REFUSED(companies, SQ_ASSOC_HAS_MANY, posts, &o, "already a foreign key to users.id");
  sq_assoc_opts_init(&o);
  o.as = "picked";
  o.fk_allow_null = 0;
  o.on_delete = SQ_FK_SET_NULL;
  REFUSED(posts, SQ_ASSOC_BELONGS_TO, users, &o, "NOT NULL");
  sq_assoc_opts_init(&o);
  o.as = "labels";
  REFUSED(posts, SQ_ASSOC_BELONGS_TO_MANY, tags, &o, "needs through");
  o.through = "labels";
  o.foreign_key = "x_id";
  o.other_key = "x_id";
  REFUSED(posts, SQ_ASSOC_BELONGS_TO_MANY, tags, &o, "both 'x_id'");
  sq_assoc_opts_init(&o);
  o.as = "labels";
  o.through = "post_tags"; /* exists with post_id / tag_id */
  o.other_key = "label_id";
  REFUSED(posts, SQ_ASSOC_BELONGS_TO_MANY, tags, &o, "other key columns");
  sq_assoc_opts_init(&o);
  o.as = "owner";
  o.target_key = "name"; /* not unique: no constraint can reference it */
  REFUSED(posts, SQ_ASSOC_BELONGS_TO, users, &o, "neither its primary key nor unique");
  o.through = "t";
  REFUSED(posts, SQ_ASSOC_BELONGS_TO, users, &o, "belong to belongs_to_many");
  sq_assoc_opts_init(&o);
  o.on_delete = 42;
  REFUSED(posts, SQ_ASSOC_BELONGS_TO, users, &o, "on_delete");
  sq_assoc_opts_init(&o);
  o.constraints = 7;
  REFUSED(posts, SQ_ASSOC_BELONGS_TO, users, &o, "constraints");
  REFUSED(posts, 9, users, NULL, "unknown association kind");
  CHECK(sq_model_associate(NULL, SQ_ASSOC_HAS_ONE, users, NULL, NULL, &E) == SQ_EUSAGE);

  /* Unfinished models, composite keys. */
  sq_model *raw;
  CHECK(sq_model_new("draft", NULL, &raw, &E) == SQ_OK);
  CHECK(sq_model_associate(raw, SQ_ASSOC_HAS_ONE, users, NULL, NULL, &E) == SQ_EUSAGE && strstr(E.msg, "finished"));
  sq_model_free(raw);
  sq_model_opts mo;
  memset(&mo, 0, sizeof mo);
  mo.timestamps = 0;
  sq_model *cm;
  CHECK(sq_model_new("pair", &mo, &cm, &E) == SQ_OK);
  sq_coldef d = coldef("a", SQ_T_INTEGER);
  d.primary_key = 1;
  sq_model_add_column(cm, &d, &E);
  d = coldef("b", SQ_T_INTEGER);
  d.primary_key = 1;
  sq_model_add_column(cm, &d, &E);
  CHECK(sq_model_finish(cm, &E) == SQ_OK);
  sq_assoc_opts_init(&o);
  o.as = "pair";
  REFUSED(posts, SQ_ASSOC_BELONGS_TO, cm, &o, "composite primary key");
  o.target_key = "a"; /* not unique alone, but a key may skip the constraint */
  REFUSED(posts, SQ_ASSOC_BELONGS_TO, cm, &o, "neither its primary key nor unique");
  o.constraints = SQ_CONSTRAINTS_OFF;
  const sq_assoc *pa = NULL;
  CHECK(sq_model_associate(posts, SQ_ASSOC_BELONGS_TO, cm, &o, &pa, &E) == SQ_OK);
  if (pa) {
    CHECK_STR(sq_model_col(posts, pa->source_col)->name, "pair_a");
    sq_fk_actions(posts, sq_model_fk(posts, fk_of(posts, "pair_a")), NULL, NULL, &o.constraints);
    CHECK(o.constraints == SQ_CONSTRAINTS_OFF);
    CHECK(index_named(posts, "posts_pair_a") >= 0); /* no constraint, still an index */
  }
  /* posts now holds a key to cm: free cm last (models are freed together). */

  /* A key column the user declared is used as is when it matches. */
  sq_model *inv = model("invoice", 0, 1, "user_id", SQ_T_INTEGER);
  sq_assoc_opts_init(&o);
  const sq_assoc *ia = NULL;
  CHECK(sq_model_associate(inv, SQ_ASSOC_BELONGS_TO, users, &o, &ia, &E) == SQ_OK);
  CHECK(ia && sq_model_ncols(inv) == 2 && ia->source_col == 1);
  CHECK(index_named(inv, "invoices_user_id") >= 0);
  /* ... and a self-association: has_many children, belongs_to_many friends. */
  sq_assoc_opts_init(&o);
  o.as = "children";
  o.foreign_key = "parent_id";
  CHECK(sq_model_associate(inv, SQ_ASSOC_HAS_MANY, inv, &o, &ia, &E) == SQ_OK);
  CHECK(sq_model_find(inv, "parent_id", 9) == 2 && sq_model_fk(inv, fk_of(inv, "parent_id"))->target == inv);
  sq_assoc_opts_init(&o);
  o.as = "friends";
  o.through = "invoice_links";
  CHECK(sq_model_associate(inv, SQ_ASSOC_BELONGS_TO_MANY, inv, &o, &ia, &E) == SQ_OK);
  if (ia) {
    CHECK_STR(sq_model_col(ia->through, 0)->name, "invoice_id");
    CHECK_STR(sq_model_col(ia->through, 1)->name, "friend_id");
  }
  /* A key column that is unique already needs no index of its own. */
  sq_model *pass = model("passport", 0, 0);
  sq_coldef hd = coldef("holder_id", SQ_T_INTEGER);
  hd.unique = "";
  sq_model_append_column(pass, &hd, &E);
  sq_assoc_opts_init(&o);
  o.as = "passport";
  o.foreign_key = "holder_id";
  CHECK(sq_model_associate(users, SQ_ASSOC_HAS_ONE, pass, &o, &ia, &E) == SQ_OK);
  CHECK(sq_model_nindexes(pass) == 0 && sq_model_nfks(pass) == 1);
  /* With timestamps on the join model, when asked. */
  sq_assoc_opts_init(&o);
  o.as = "stamped";
  o.through = "stamped_links";
  o.through_timestamps = 1;
  CHECK(sq_model_associate(inv, SQ_ASSOC_BELONGS_TO_MANY, tags, &o, &ia, &E) == SQ_OK);
  if (ia) CHECK(sq_model_ncols(ia->through) == 4 && sq_model_role_col(ia->through, SQ_ROLE_CREATED_AT) == 2);
  sq_model_free(inv);
  sq_model_free(pass);
  /* posts keeps a key to cm until both go; the fixtures free posts first. */
  sq_model_free(cm); /* posts.pair_a's fk now dangles but is never read again in this test */

  /* Appending after finish: not a key; indexes stay valid. */
  sq_model *m = model("thing", 0, 1, "x", SQ_T_INTEGER);
  unsigned g = sq_model_generation(m);
  d = coldef("k", SQ_T_INTEGER);
  d.primary_key = 1;
  CHECK(sq_model_append_column(m, &d, &E) == SQ_EUSAGE);
  d = coldef("y", SQ_T_TEXT);
  CHECK(sq_model_append_column(m, &d, &E) == SQ_OK);
  CHECK(sq_model_find(m, "x", 1) == 1 && sq_model_find(m, "y", 1) == 2 && sq_model_generation(m) == g + 1);
  CHECK(sq_model_append_column(m, &d, &E) == SQ_EUSAGE); /* twice */
  const char *ic[] = {"y"};
  CHECK(sq_model_append_index(m, NULL, ic, 1, 0, &E) == SQ_OK && index_named(m, "things_y") >= 0);
  CHECK(sq_model_append_index(m, NULL, ic, 1, 0, &E) == SQ_EUSAGE); /* same generated name */
  const char *bad[] = {"nope"};
  CHECK(sq_model_append_index(m, "ix", bad, 1, 0, &E) == SQ_EUSAGE && sq_model_nindexes(m) == 1);
  sq_select q;
  sq_select_init(&q, SQ_Q_SELECT, m);
  SEL3(&q, "SELECT \"id\", \"x\", \"y\" FROM \"things\"", "");
  sq_model_free(m);

  /* Singulars. */
  static const char *const words[][2] = {{"posts", "post"},     {"people", "person"}, {"categories", "category"},
                                         {"boxes", "box"},      {"buses", "bus"},     {"classes", "class"},
                                         {"children", "child"}, {"data", "data"},     {"status", "status"},
                                         {"game_users", "game_user"}, {"Wolves", "Wolf"}, {"news", "news"}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    char out[64];
    sq_singularize(words[i][0], out, sizeof out);
    CHECK_STR(out, words[i][1]);
  }
}

/* ------------------------------------------------------------------ */
/* Plain reads: the same text as sq_render                              */
/* ------------------------------------------------------------------ */

static void same_as_render(const sq_query *q, const sq_select *s) {
  for (int d = SQLITE; d <= PG; d++) {
    sq_sql a;
    sq_select_sql b;
    int ra = sq_render(q, d, &a, &E), rb = sq_render_select(s, d, &b, &E);
    CHECK(ra == SQ_OK && rb == SQ_OK);
    if (!ra && !rb) {
      CHECK_STR(b.sql.sql, a.sql);
      CHECK_STR(pstr(&b.sql), pstr(&a));
    }
    sq_sql_free(&a);
    sq_select_sql_free(&b);
  }
}

static void test_plain(void) {
  sq_query q;
  sq_select s;
  sq_query_init(&q, SQ_Q_SELECT, posts);
  sq_select_init(&s, SQ_Q_SELECT, posts);
  q.where = s.where = logic(SQ_OP_OR, 2, cmp(SQ_OP_GT, P_ID, 1, I(3)),
                            logic(SQ_OP_AND, 2, cmp(SQ_OP_LIKE, P_TITLE, 1, TX("a%")), cmp(SQ_OP_IN, P_ID, 2, I(1), I(2))));
  sq_order o1[] = {{P_TITLE, 1}};
  sq_xorder o2[] = {{sq_x_col(NULL, P_TITLE), 1}};
  q.order = o1;
  q.norder = 1;
  s.order = o2;
  s.norder = 1;
  q.limit = s.limit = 5;
  q.offset = s.offset = 10;
  q.lock = s.lock = SQ_LOCK_UPDATE;
  same_as_render(&q, &s);
  q.paranoid = s.paranoid = 0;
  q.lock = s.lock = SQ_LOCK_SHARE;
  q.limit = s.limit = -1;
  same_as_render(&q, &s);
  /* attributes with an alias, an aggregate; group, having */
  sq_query_init(&q, SQ_Q_SELECT, posts);
  sq_select_init(&s, SQ_Q_SELECT, posts);
  sq_attr qa[] = {{P_AUTHOR_ID, 0, NULL}, {P_TITLE, 0, "heading"}, {-1, SQ_FN_COUNT, "n"}, {P_ID, SQ_FN_MAX, NULL}};
  sq_xattr sa[] = {{sq_x_col(NULL, P_AUTHOR_ID), NULL},
                   {sq_x_col(NULL, P_TITLE), "heading"},
                   {fn("count", 1, sq_x_star()), "n"},
                   {fn("max", 1, sq_x_col(NULL, P_ID)), NULL}};
  q.attrs = qa;
  q.nattrs = 4;
  s.attrs = sa;
  s.nattrs = 4;
  int g[] = {P_AUTHOR_ID};
  q.group = g;
  q.ngroup = 1;
  s.group = op1(sq_x_col(NULL, P_AUTHOR_ID));
  s.ngroup = 1;
  q.having = s.having = cmp(SQ_OP_RAW, 0, 1, I(2));
  q.having->raw = "count(*) > ?";
  q.having->raw_len = strlen(q.having->raw);
  same_as_render(&q, &s);
  /* counts */
  sq_query_init(&q, SQ_Q_COUNT, posts);
  sq_select_init(&s, SQ_Q_COUNT, posts);
  q.where = s.where = cmp(SQ_OP_BETWEEN, P_ID, 2, I(1), I(5));
  same_as_render(&q, &s);
  q.group = g;
  q.ngroup = 1;
  s.group = op1(sq_x_col(NULL, P_AUTHOR_ID));
  s.ngroup = 1;
  same_as_render(&q, &s);
  /* offset alone */
  sq_query_init(&q, SQ_Q_SELECT, tags);
  sq_select_init(&s, SQ_Q_SELECT, tags);
  q.offset = s.offset = 3;
  same_as_render(&q, &s);
}

/* ------------------------------------------------------------------ */
/* to-one includes                                                      */
/* ------------------------------------------------------------------ */

static void test_to_one(void) {
  sq_select s;
  sq_select_init(&s, SQ_Q_SELECT, posts);
  sq_include *au = inc(A_AUTHOR);
  s.includes = incs(1, au);
  s.nincludes = 1;
  s.where = cmp(SQ_OP_GT, P_ID, 1, I(10));
  s.limit = 2;
  sq_select_sql out;
  CHECK(sel1_at(__LINE__, &s, SQLITE,
                "SELECT \"t0\".\"id\", \"t0\".\"title\", \"t0\".\"published\", \"t0\".\"deleted_at\", \"t0\".\"author_id\", "
                "\"t1\".\"id\" AS \"author.id\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"company_id\" AS \"author.company_id\" "
                "FROM \"posts\" AS \"t0\" LEFT JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" "
                "WHERE \"t0\".\"id\" > ? AND \"t0\".\"deleted_at\" IS NULL LIMIT ?",
                "i:10,i:2", &out));
  if (out.ncols == 8) {
    CHECK(out.cols[0].inc == NULL && out.cols[0].col == P_ID && out.cols[0].attr == -1 && !out.cols[0].key_only);
    CHECK(out.cols[5].inc == au && out.cols[5].col == U_ID && !out.cols[5].through);
    CHECK(out.cols[7].inc == au && out.cols[7].col == U_COMPANY_ID);
    CHECK(out.nbatches == 0 && out.parent_col == -1);
  }
  CHECK(out.ncols == 8);
  sq_select_sql_free(&out);
  SEL1(&s, PG,
       "SELECT \"t0\".\"id\", \"t0\".\"title\", \"t0\".\"published\", \"t0\".\"deleted_at\", \"t0\".\"author_id\", "
       "\"t1\".\"id\" AS \"author.id\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"company_id\" AS \"author.company_id\" "
       "FROM \"posts\" AS \"t0\" LEFT JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" "
       "WHERE \"t0\".\"id\" > $1 AND \"t0\".\"deleted_at\" IS NULL LIMIT $2",
       "i:10,i:2");

  /* Include attributes without the key: the key comes anyway. Where and
   * required on the include: INNER JOIN, the filter in ON. Nested: the
   * author's company, a required has_one profile (a soft-deleted
   * target), an order by a joined column; root attributes without the
   * key (it is added: stitching needs it). */
  sq_select_init(&s, SQ_Q_SELECT, posts);
  au = inc(A_AUTHOR);
  int aattrs[] = {U_NAME};
  au->attrs = aattrs;
  au->nattrs = 1;
  au->where = logic(SQ_OP_OR, 2, cmp(SQ_OP_EQ, U_NAME, 1, TX("ann")), cmp(SQ_OP_EQ, U_NAME, 1, TX("bob")));
  sq_include *co = inc(A_COMPANY), *pr = inc(A_PROFILE);
  int cattrs[] = {C_NAME};
  co->attrs = cattrs;
  co->nattrs = 1;
  pr->required = 1;
  pr->where = cmp(SQ_OP_NOT_NULL, PR_BIO, 0);
  au->kids = incs(2, co, pr);
  au->nkids = 2;
  s.includes = incs(1, au);
  s.nincludes = 1;
  sq_xattr at[] = {{sq_x_col(NULL, P_TITLE), NULL}};
  s.attrs = at;
  s.nattrs = 1;
  sq_xorder ord[] = {{sq_x_col(co, C_NAME), 1}, {sq_x_col(au, U_NAME), 0}, {sq_x_col(NULL, P_ID), 0}};
  s.order = ord;
  s.norder = 3;
  SEL3(&s,
       "SELECT \"t0\".\"title\", \"t0\".\"id\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"id\" AS \"author.id\", "
       "\"t2\".\"name\" AS \"author.company.name\", \"t2\".\"id\" AS \"author.company.id\", "
       "\"t3\".\"id\" AS \"author.profile.id\", \"t3\".\"bio\" AS \"author.profile.bio\", "
       "\"t3\".\"deleted_at\" AS \"author.profile.deleted_at\", \"t3\".\"user_id\" AS \"author.profile.user_id\" "
       "FROM \"posts\" AS \"t0\" "
       "INNER JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" AND (\"t1\".\"name\" = ? OR \"t1\".\"name\" = ?) "
       "LEFT JOIN \"companies\" AS \"t2\" ON \"t2\".\"id\" = \"t1\".\"company_id\" "
       "INNER JOIN \"profiles\" AS \"t3\" ON \"t3\".\"user_id\" = \"t1\".\"id\" AND \"t3\".\"bio\" IS NOT NULL "
       "AND \"t3\".\"deleted_at\" IS NULL "
       "WHERE \"t0\".\"deleted_at\" IS NULL ORDER BY \"t2\".\"name\" DESC, \"t1\".\"name\" ASC, \"t0\".\"id\" ASC",
       "s:ann,s:bob");
  CHECK(sq_render_select(&s, SQLITE, &out, &E) == SQ_OK); /* text checked above; now the map */
  if (out.ncols == 10) {
    CHECK(out.cols[0].attr == 0 && !out.cols[0].key_only);
    CHECK(out.cols[1].col == P_ID && out.cols[1].key_only && out.cols[1].attr == -1);
    CHECK(out.cols[3].inc == au && out.cols[3].key_only);
    CHECK(out.cols[4].inc == co && !out.cols[4].key_only && out.cols[5].key_only);
    CHECK(out.cols[9].inc == pr && out.cols[9].col == PR_USER_ID);
  }
  CHECK(out.ncols == 10);
  sq_select_sql_free(&out);

  /* A column of a joined include in where, in attributes, in group-less
   * expressions; lock on PostgreSQL locks the base table only. */
  sq_select_init(&s, SQ_Q_SELECT, posts);
  au = inc(A_AUTHOR);
  au->attrs = aattrs;
  au->nattrs = 1;
  s.includes = incs(1, au);
  s.nincludes = 1;
  s.paranoid = 0;
  sq_xattr at2[] = {{sq_x_col(NULL, P_ID), NULL}, {fn("lower", 1, sq_x_col(au, U_NAME)), "who"}};
  s.attrs = at2;
  s.nattrs = 2;
  s.where = xcmp(SQ_OP_EQ, op1(sq_x_col(au, U_NAME)), 1, op1(sq_x_val(TX("ann"))));
  s.lock = SQ_LOCK_UPDATE;
  SEL1(&s, PG,
       "SELECT \"t0\".\"id\", lower(\"t1\".\"name\") AS \"who\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"id\" AS \"author.id\" "
       "FROM \"posts\" AS \"t0\" LEFT JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" "
       "WHERE \"t1\".\"name\" = $1 FOR UPDATE OF \"t0\"",
       "s:ann");
  SEL1(&s, MYSQL,
       "SELECT `t0`.`id`, lower(`t1`.`name`) AS `who`, `t1`.`name` AS `author.name`, `t1`.`id` AS `author.id` "
       "FROM `posts` AS `t0` LEFT JOIN `users` AS `t1` ON `t1`.`id` = `t0`.`author_id` "
       "WHERE `t1`.`name` = ? FOR UPDATE",
       "s:ann");
  s.lock = SQ_LOCK_SHARE;
  SEL1(&s, SQLITE,
       "SELECT \"t0\".\"id\", lower(\"t1\".\"name\") AS \"who\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"id\" AS \"author.id\" "
       "FROM \"posts\" AS \"t0\" LEFT JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" "
       "WHERE \"t1\".\"name\" = ?",
       "s:ann");

  /* Long paths fall back to "t<k>.<col>". */
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = "a_rather_long_association_name_for_the_writer_of_this";
  o.foreign_key = "writer_id";
  const sq_assoc *lw = NULL;
  CHECK(sq_model_associate(comments, SQ_ASSOC_BELONGS_TO, users, &o, &lw, &E) == SQ_OK);
  sq_select_init(&s, SQ_Q_SELECT, comments);
  sq_include *w = inc(lw), *wc = inc(A_COMPANY);
  w->attrs = aattrs;
  w->nattrs = 1;
  wc->attrs = cattrs;
  wc->nattrs = 1;
  w->kids = incs(1, wc);
  w->nkids = 1;
  s.includes = incs(1, w);
  s.nincludes = 1;
  s.attrs = at2; /* id only */
  s.nattrs = 1;
  SEL3(&s,
       "SELECT \"t0\".\"id\", \"t1\".\"name\" AS \"a_rather_long_association_name_for_the_writer_of_this.name\", "
       "\"t1\".\"id\" AS \"a_rather_long_association_name_for_the_writer_of_this.id\", "
       "\"t2\".\"name\" AS \"t2.name\", \"t2\".\"id\" AS \"t2.id\" FROM \"comments\" AS \"t0\" "
       "LEFT JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"writer_id\" "
       "LEFT JOIN \"companies\" AS \"t2\" ON \"t2\".\"id\" = \"t1\".\"company_id\"",
       "");
}

/* ------------------------------------------------------------------ */
/* to-many: batches, windows, EXISTS                                    */
/* ------------------------------------------------------------------ */

static void test_to_many(void) {
  sq_select s;
  sq_select_sql out;
  /* The parent statement: to-many includes add no join, only their
   * key to the columns and a batch to run. */
  sq_select_init(&s, SQ_Q_SELECT, users);
  sq_include *po = inc(A_POSTS), *pr = inc(A_PROFILE), *tg = inc(A_TAGS), *au = inc(A_AUTHOR), *cm = inc(A_COMMENTS);
  po->kids = incs(3, tg, au, cm);
  po->nkids = 3;
  s.includes = incs(2, pr, po);
  s.nincludes = 2;
  sq_xattr at[] = {{sq_x_col(NULL, U_NAME), NULL}};
  s.attrs = at;
  s.nattrs = 1;
  s.limit = 20;
  s.order = (sq_xorder[]){{sq_x_col(NULL, U_ID), 0}};
  s.norder = 1;
  CHECK(sel1_at(__LINE__, &s, SQLITE,
                "SELECT \"t0\".\"name\", \"t0\".\"id\", \"t1\".\"id\" AS \"profile.id\", \"t1\".\"bio\" AS \"profile.bio\", "
                "\"t1\".\"deleted_at\" AS \"profile.deleted_at\", \"t1\".\"user_id\" AS \"profile.user_id\" "
                "FROM \"users\" AS \"t0\" LEFT JOIN \"profiles\" AS \"t1\" ON \"t1\".\"user_id\" = \"t0\".\"id\" "
                "AND \"t1\".\"deleted_at\" IS NULL ORDER BY \"t0\".\"id\" ASC LIMIT ?",
                "i:20", &out));
  CHECK(out.nbatches == 1);
  if (out.nbatches == 1) CHECK(out.batches[0].inc == po && out.batches[0].key_col == 1);
  sq_select_sql_free(&out);
  /* With only to-many includes the parent stays unqualified. */
  s.includes = incs(1, po);
  s.nincludes = 1;
  CHECK(sel1_at(__LINE__, &s, MYSQL, "SELECT `name`, `id` FROM `users` ORDER BY `id` ASC LIMIT ?", "i:20", &out));
  CHECK(out.nbatches == 1 && out.ncols == 2 && out.cols[1].key_only);
  sq_select_sql_free(&out);

  /* The batch of posts: their tags and comments are batches of their
   * own; the author is joined. */
  sq_value keys[] = {I(1), I(2), I(3)};
  BATCH3(po, keys, 3,
         "SELECT \"t0\".\"id\", \"t0\".\"title\", \"t0\".\"published\", \"t0\".\"deleted_at\", \"t0\".\"author_id\", "
         "\"t1\".\"id\" AS \"author.id\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"company_id\" AS \"author.company_id\" "
         "FROM \"posts\" AS \"t0\" LEFT JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" "
         "WHERE \"t0\".\"author_id\" IN (?, ?, ?) AND \"t0\".\"deleted_at\" IS NULL",
         "i:1,i:2,i:3");
  CHECK(sq_render_include_batch(po, SQLITE, keys, 3, &out, &E) == SQ_OK);
  CHECK(out.parent_col == 4 && out.nbatches == 2);
  if (out.nbatches == 2) {
    CHECK(out.batches[0].inc == tg && out.batches[0].key_col == 0);
    CHECK(out.batches[1].inc == cm && out.batches[1].key_col == 0);
  }
  sq_select_sql_free(&out);
  /* Without nested to-one: unqualified; attributes without any key. */
  po->kids = NULL;
  po->nkids = 0;
  int pattrs[] = {P_TITLE};
  po->attrs = pattrs;
  po->nattrs = 1;
  po->order = (sq_xorder[]){{sq_x_col(NULL, P_TITLE), 1}};
  po->norder = 1;
  po->where = cmp(SQ_OP_EQ, P_PUBLISHED, 1, sq_bool(1));
  BATCH3(po, keys, 2,
         "SELECT \"title\", \"id\", \"author_id\" FROM \"posts\" WHERE \"author_id\" IN (?, ?) AND \"published\" = ? "
         "AND \"deleted_at\" IS NULL ORDER BY \"title\" DESC",
         "i:1,i:2,b:1");
  CHECK(sq_render_include_batch(po, PG, keys, 1, &out, &E) == SQ_OK);
  CHECK(out.parent_col == 2 && out.ncols == 3 && out.cols[1].key_only && out.cols[2].key_only && !out.cols[0].key_only);
  sq_select_sql_free(&out);

  /* Per parent: limit, offset, order by the window. */
  po->limit = 3;
  BATCH3(po, keys, 2,
         "SELECT \"title\", \"id\", \"author_id\" FROM (SELECT \"title\" AS \"title\", \"id\" AS \"id\", "
         "\"author_id\" AS \"author_id\", ROW_NUMBER() OVER (PARTITION BY \"author_id\" ORDER BY \"title\" DESC, "
         "\"id\" ASC) AS \"__sq_rn\" FROM \"posts\" WHERE \"author_id\" IN (?, ?) AND \"published\" = ? AND "
         "\"deleted_at\" IS NULL) AS \"__sq_w\" WHERE \"__sq_rn\" <= ? ORDER BY \"author_id\", \"__sq_rn\"",
         "i:1,i:2,b:1,i:3");
  po->offset = 2;
  po->where = NULL;
  po->order = NULL;
  po->norder = 0;
  BATCH3(po, keys, 1,
         "SELECT \"title\", \"id\", \"author_id\" FROM (SELECT \"title\" AS \"title\", \"id\" AS \"id\", "
         "\"author_id\" AS \"author_id\", ROW_NUMBER() OVER (PARTITION BY \"author_id\" ORDER BY \"id\" ASC) AS "
         "\"__sq_rn\" FROM \"posts\" WHERE \"author_id\" IN (?) AND \"deleted_at\" IS NULL) AS \"__sq_w\" "
         "WHERE \"__sq_rn\" > ? AND \"__sq_rn\" <= ? ORDER BY \"author_id\", \"__sq_rn\"",
         "i:1,i:2,i:5");
  po->limit = -1;
  BATCH3(po, keys, 1,
         "SELECT \"title\", \"id\", \"author_id\" FROM (SELECT \"title\" AS \"title\", \"id\" AS \"id\", "
         "\"author_id\" AS \"author_id\", ROW_NUMBER() OVER (PARTITION BY \"author_id\" ORDER BY \"id\" ASC) AS "
         "\"__sq_rn\" FROM \"posts\" WHERE \"author_id\" IN (?) AND \"deleted_at\" IS NULL) AS \"__sq_w\" "
         "WHERE \"__sq_rn\" > ? ORDER BY \"author_id\", \"__sq_rn\"",
         "i:1,i:2");
  po->offset = -1;
  po->paranoid = 0;
  BATCH3(po, keys, 1, "SELECT \"title\", \"id\", \"author_id\" FROM \"posts\" WHERE \"author_id\" IN (?)", "i:1");

  /* belongs_to_many: through the join model, the parent key from it. */
  tg = inc(A_TAGS);
  BATCH3(tg, keys, 2,
         "SELECT \"t0\".\"id\", \"t0\".\"name\", \"t1\".\"post_id\" AS \"post_tags.post_id\" FROM \"tags\" AS \"t0\" "
         "INNER JOIN \"post_tags\" AS \"t1\" ON \"t1\".\"tag_id\" = \"t0\".\"id\" WHERE \"t1\".\"post_id\" IN (?, ?)",
         "i:1,i:2");
  CHECK(sq_render_include_batch(tg, MYSQL, keys, 2, &out, &E) == SQ_OK);
  CHECK(out.parent_col == 2 && out.ncols == 3);
  if (out.ncols == 3) CHECK(out.cols[2].through && out.cols[2].inc == tg && out.cols[2].col == 0 && out.cols[2].key_only);
  sq_select_sql_free(&out);
  tg->limit = 2;
  tg->order = (sq_xorder[]){{sq_x_col(NULL, T_NAME), 0}};
  tg->norder = 1;
  BATCH3(tg, keys, 2,
         "SELECT \"id\", \"name\", \"post_tags.post_id\" FROM (SELECT \"t0\".\"id\" AS \"id\", \"t0\".\"name\" AS \"name\", "
         "\"t1\".\"post_id\" AS \"post_tags.post_id\", ROW_NUMBER() OVER (PARTITION BY \"t1\".\"post_id\" ORDER BY "
         "\"t0\".\"name\" ASC, \"t0\".\"id\" ASC) AS \"__sq_rn\" FROM \"tags\" AS \"t0\" INNER JOIN \"post_tags\" AS \"t1\" "
         "ON \"t1\".\"tag_id\" = \"t0\".\"id\" WHERE \"t1\".\"post_id\" IN (?, ?)) AS \"__sq_w\" WHERE \"__sq_rn\" <= ? "
         "ORDER BY \"post_tags.post_id\", \"__sq_rn\"",
         "i:1,i:2,i:2");

  /* A scoped association: its scope in every read of it. */
  sq_include *pub = inc(A_PUB);
  pub->where = cmp(SQ_OP_LIKE, P_TITLE, 1, TX("x%"));
  BATCH3(pub, keys, 1,
         "SELECT \"id\", \"title\", \"published\", \"deleted_at\", \"author_id\" FROM \"posts\" WHERE \"author_id\" IN (?) "
         "AND \"published\" = ? AND \"title\" LIKE ? AND \"deleted_at\" IS NULL",
         "i:1,b:1,s:x%");

  /* required to-many: EXISTS in the parent, and parents still counted by
   * limit; nested required includes inside it. */
  sq_select_init(&s, SQ_Q_SELECT, users);
  po = inc(A_POSTS);
  po->required = 1;
  po->where = cmp(SQ_OP_EQ, P_PUBLISHED, 1, sq_bool(1));
  tg = inc(A_TAGS);
  tg->required = 1;
  tg->where = cmp(SQ_OP_EQ, T_NAME, 1, TX("lua"));
  au = inc(A_AUTHOR); /* not required: no join inside EXISTS */
  sq_include *cm2 = inc(A_COMMENTS); /* not required: nothing */
  po->kids = incs(3, tg, au, cm2);
  po->nkids = 3;
  s.includes = incs(1, po);
  s.nincludes = 1;
  s.attrs = at;
  s.nattrs = 1;
  s.limit = 10;
  SEL3(&s,
       "SELECT \"t0\".\"name\", \"t0\".\"id\" FROM \"users\" AS \"t0\" WHERE EXISTS (SELECT 1 FROM \"posts\" AS \"t1\" "
       "WHERE \"t1\".\"author_id\" = \"t0\".\"id\" AND \"t1\".\"published\" = ? AND \"t1\".\"deleted_at\" IS NULL AND "
       "EXISTS (SELECT 1 FROM \"tags\" AS \"t2\" INNER JOIN \"post_tags\" AS \"t3\" ON \"t3\".\"tag_id\" = \"t2\".\"id\" "
       "WHERE \"t3\".\"post_id\" = \"t1\".\"id\" AND \"t2\".\"name\" = ?)) LIMIT ?",
       "b:1,s:lua,i:10");
  /* The batch of the required posts loads only matching ones, with the
   * required tags as EXISTS there too. */
  BATCH3(po, keys, 1,
         "SELECT \"t0\".\"id\", \"t0\".\"title\", \"t0\".\"published\", \"t0\".\"deleted_at\", \"t0\".\"author_id\", "
         "\"t1\".\"id\" AS \"author.id\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"company_id\" AS \"author.company_id\" "
         "FROM \"posts\" AS \"t0\" LEFT JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" WHERE "
         "\"t0\".\"author_id\" IN (?) AND \"t0\".\"published\" = ? AND \"t0\".\"deleted_at\" IS NULL AND EXISTS (SELECT 1 "
         "FROM \"tags\" AS \"t2\" INNER JOIN \"post_tags\" AS \"t3\" ON \"t3\".\"tag_id\" = \"t2\".\"id\" WHERE "
         "\"t3\".\"post_id\" = \"t0\".\"id\" AND \"t2\".\"name\" = ?)",
         "i:1,b:1,s:lua");
  /* A required to-one under the required to-many joins inside EXISTS. */
  au->required = 1;
  au->where = cmp(SQ_OP_NE, U_NAME, 1, TX("spam"));
  tg->required = 0;
  SEL3(&s,
       "SELECT \"t0\".\"name\", \"t0\".\"id\" FROM \"users\" AS \"t0\" WHERE EXISTS (SELECT 1 FROM \"posts\" AS \"t1\" "
       "INNER JOIN \"users\" AS \"t2\" ON \"t2\".\"id\" = \"t1\".\"author_id\" AND \"t2\".\"name\" <> ? "
       "WHERE \"t1\".\"author_id\" = \"t0\".\"id\" AND \"t1\".\"published\" = ? AND \"t1\".\"deleted_at\" IS NULL) LIMIT ?",
       "s:spam,b:1,i:10");

  /* A to-many under a to-one: its key comes from the joined table. */
  sq_select_init(&s, SQ_Q_SELECT, posts);
  au = inc(A_AUTHOR);
  po = inc(A_POSTS);
  po->required = 1;
  au->kids = incs(1, po);
  au->nkids = 1;
  int aattrs[] = {U_NAME};
  au->attrs = aattrs;
  au->nattrs = 1;
  s.includes = incs(1, au);
  s.nincludes = 1;
  sq_xattr pt[] = {{sq_x_col(NULL, P_TITLE), NULL}};
  s.attrs = pt;
  s.nattrs = 1;
  s.paranoid = 0;
  CHECK(sel1_at(__LINE__, &s, SQLITE,
                "SELECT \"t0\".\"title\", \"t0\".\"id\", \"t1\".\"name\" AS \"author.name\", \"t1\".\"id\" AS \"author.id\" "
                "FROM \"posts\" AS \"t0\" INNER JOIN \"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"author_id\" "
                "WHERE EXISTS (SELECT 1 FROM \"posts\" AS \"t2\" WHERE \"t2\".\"author_id\" = \"t1\".\"id\" AND "
                "\"t2\".\"deleted_at\" IS NULL)",
                "", &out));
  CHECK(out.nbatches == 1 && out.batches[0].inc == po && out.batches[0].key_col == 3);
  sq_select_sql_free(&out);
}

/* ------------------------------------------------------------------ */
/* op.has, counts                                                       */
/* ------------------------------------------------------------------ */

static void test_has_and_count(void) {
  sq_select s;
  sq_select_init(&s, SQ_Q_SELECT, users);
  sq_xattr at[] = {{sq_x_col(NULL, U_ID), NULL}};
  s.attrs = at;
  s.nattrs = 1;
  s.where = logic(SQ_OP_AND, 3, has(A_POSTS, cmp(SQ_OP_EQ, P_PUBLISHED, 1, sq_bool(1))),
                  logic(SQ_OP_NOT, 1, has(A_PROFILE, NULL)),
                  logic(SQ_OP_OR, 2, has(A_COMPANY, cmp(SQ_OP_EQ, C_NAME, 1, TX("acme"))), cmp(SQ_OP_EQ, U_ID, 1, I(7))));
  SEL3(&s,
       "SELECT \"t0\".\"id\" FROM \"users\" AS \"t0\" WHERE EXISTS (SELECT 1 FROM \"posts\" AS \"t1\" WHERE "
       "\"t1\".\"author_id\" = \"t0\".\"id\" AND \"t1\".\"published\" = ? AND \"t1\".\"deleted_at\" IS NULL) AND NOT "
       "(EXISTS (SELECT 1 FROM \"profiles\" AS \"t2\" WHERE \"t2\".\"user_id\" = \"t0\".\"id\" AND "
       "\"t2\".\"deleted_at\" IS NULL)) AND (EXISTS (SELECT 1 FROM \"companies\" AS \"t3\" WHERE \"t3\".\"id\" = "
       "\"t0\".\"company_id\" AND \"t3\".\"name\" = ?) OR \"t0\".\"id\" = ?)",
       "b:1,s:acme,i:7");
  /* belongs_to_many and a scoped association; has inside has */
  sq_select_init(&s, SQ_Q_SELECT, users);
  s.attrs = at;
  s.nattrs = 1;
  s.where = has(A_PUB, has(A_TAGS, cmp(SQ_OP_IN, T_NAME, 2, TX("c"), TX("lua"))));
  SEL3(&s,
       "SELECT \"t0\".\"id\" FROM \"users\" AS \"t0\" WHERE EXISTS (SELECT 1 FROM \"posts\" AS \"t1\" WHERE "
       "\"t1\".\"author_id\" = \"t0\".\"id\" AND \"t1\".\"published\" = ? AND EXISTS (SELECT 1 FROM \"tags\" AS \"t2\" "
       "INNER JOIN \"post_tags\" AS \"t3\" ON \"t3\".\"tag_id\" = \"t2\".\"id\" WHERE \"t3\".\"post_id\" = \"t1\".\"id\" "
       "AND \"t2\".\"name\" IN (?, ?)) AND \"t1\".\"deleted_at\" IS NULL)",
       "b:1,s:c,s:lua");
  /* has inside an include's where (the include's own model) */
  sq_select_init(&s, SQ_Q_SELECT, users);
  s.attrs = at;
  s.nattrs = 1;
  sq_include *po = inc(A_POSTS);
  po->where = has(A_COMMENTS, NULL);
  po->paranoid = 0;
  sq_value keys[] = {I(5)};
  BATCH3(po, keys, 1,
         "SELECT \"t0\".\"id\", \"t0\".\"title\", \"t0\".\"published\", \"t0\".\"deleted_at\", \"t0\".\"author_id\" FROM "
         "\"posts\" AS \"t0\" WHERE \"t0\".\"author_id\" IN (?) AND EXISTS (SELECT 1 FROM \"comments\" AS \"t1\" WHERE "
         "\"t1\".\"post_id\" = \"t0\".\"id\")",
         "i:5");
  /* op.has with an association of another model is refused */
  s.where = has(A_COMMENTS, NULL);
  REFUSE(&s, "not an association of model 'user'");
  s.where = has(NULL, NULL);
  REFUSE(&s, "no association");

  /* count: plain, with a belongs_to join (no DISTINCT needed), with a
   * has_one join (DISTINCT), with a required to-many (EXISTS). */
  sq_select_init(&s, SQ_Q_COUNT, users);
  sq_include *co = inc(A_COMPANY);
  co->where = cmp(SQ_OP_EQ, C_NAME, 1, TX("acme"));
  co->required = 1;
  s.includes = incs(1, co);
  s.nincludes = 1;
  sq_select_sql out;
  CHECK(sel1_at(__LINE__, &s, SQLITE,
                "SELECT count(*) AS count FROM \"users\" AS \"t0\" INNER JOIN \"companies\" AS \"t1\" ON \"t1\".\"id\" = "
                "\"t0\".\"company_id\" AND \"t1\".\"name\" = ?",
                "s:acme", &out));
  CHECK(out.ncols == 1 && out.cols[0].col == -1 && out.nbatches == 0);
  sq_select_sql_free(&out);
  po = inc(A_POSTS);
  po->required = 1;
  s.includes = incs(3, co, inc(A_PROFILE), po);
  s.nincludes = 3;
  s.where = cmp(SQ_OP_GT, U_ID, 1, I(0));
  SEL3(&s,
       "SELECT count(DISTINCT \"t0\".\"id\") AS count FROM \"users\" AS \"t0\" INNER JOIN \"companies\" AS \"t1\" ON "
       "\"t1\".\"id\" = \"t0\".\"company_id\" AND \"t1\".\"name\" = ? LEFT JOIN \"profiles\" AS \"t2\" ON "
       "\"t2\".\"user_id\" = \"t0\".\"id\" AND \"t2\".\"deleted_at\" IS NULL WHERE \"t0\".\"id\" > ? AND EXISTS (SELECT 1 "
       "FROM \"posts\" AS \"t3\" WHERE \"t3\".\"author_id\" = \"t0\".\"id\" AND \"t3\".\"deleted_at\" IS NULL)",
       "s:acme,i:0");
  /* count{ group = "author_id" }: one row per group; count distinct. */
  sq_select_init(&s, SQ_Q_COUNT, posts);
  s.group = op1(sq_x_col(NULL, P_AUTHOR_ID));
  s.ngroup = 1;
  s.order = (sq_xorder[]){{sq_x_col(NULL, P_AUTHOR_ID), 0}};
  s.norder = 1;
  CHECK(sel1_at(__LINE__, &s, SQLITE,
                "SELECT \"author_id\", count(*) AS count FROM \"posts\" WHERE \"deleted_at\" IS NULL GROUP BY "
                "\"author_id\" ORDER BY \"author_id\" ASC",
                "", &out));
  CHECK(out.ncols == 2 && out.cols[0].col == P_AUTHOR_ID && out.cols[1].col == -1);
  sq_select_sql_free(&out);
  s.group = op1(fn("upper", 1, sq_x_col(NULL, P_TITLE)));
  s.order = NULL;
  s.norder = 0;
  s.paranoid = 0;
  SEL3(&s, "SELECT upper(\"title\"), count(*) AS count FROM \"posts\" GROUP BY upper(\"title\")", "");
  sq_select_init(&s, SQ_Q_COUNT, posts);
  s.paranoid = 0;
  s.distinct = 1;
  sq_operand cc = sq_x_col(NULL, P_AUTHOR_ID);
  s.count_col = &cc;
  SEL3(&s, "SELECT count(DISTINCT \"author_id\") AS count FROM \"posts\"", "");
  s.distinct = 0;
  SEL3(&s, "SELECT count(\"author_id\") AS count FROM \"posts\"", "");
  s.distinct = 1;
  s.count_col = NULL; /* distinct rows: distinct primary keys */
  SEL3(&s, "SELECT count(DISTINCT \"id\") AS count FROM \"posts\"", "");
  /* a composite key counts distinct keys through a subquery */
  const sq_model *jm = A_TAGS->through;
  sq_select_init(&s, SQ_Q_COUNT, jm);
  s.distinct = 1;
  s.where = cmp(SQ_OP_EQ, 1, 1, I(4));
  SEL3(&s,
       "SELECT count(*) AS count FROM (SELECT DISTINCT \"post_id\", \"tag_id\" FROM \"post_tags\" WHERE "
       "\"tag_id\" = ?) AS \"__sq_c\"",
       "i:4");
  s.group = op1(sq_x_col(NULL, 0));
  s.ngroup = 1;
  REFUSE(&s, "can't be grouped");
  sq_select_init(&s, SQ_Q_COUNT, posts);
  sq_xattr ca[] = {{sq_x_col(NULL, P_AUTHOR_ID), "who"}};
  s.attrs = ca;
  s.nattrs = 1;
  REFUSE(&s, "attributes go with group");
  s.group = op1(sq_x_alias("who"));
  s.ngroup = 1;
  s.paranoid = 0;
  SEL3(&s, "SELECT \"author_id\" AS \"who\", count(*) AS count FROM \"posts\" GROUP BY \"author_id\"", "");
  s.lock = SQ_LOCK_UPDATE;
  REFUSE(&s, "lock applies to row queries");
}

/* ------------------------------------------------------------------ */
/* Expressions and subqueries                                           */
/* ------------------------------------------------------------------ */

static void test_expressions(void) {
  sq_select s;
  /* The leaderboard: attributes as expressions with aliases, group, having
   * and order on the aliases. */
  sq_select_init(&s, SQ_Q_SELECT, posts);
  sq_xattr at[] = {{sq_x_col(NULL, P_AUTHOR_ID), NULL},
                   {fn("count", 1, sq_x_col(NULL, P_ID)), "members"},
                   {fn("max", 1, sq_x_col(NULL, P_TITLE)), "best"},
                   {fn("coalesce", 2, fn("max", 1, sq_x_col(NULL, P_ID)), sq_x_val(I(0))), "top"}};
  s.attrs = at;
  s.nattrs = 4;
  s.group = op1(sq_x_col(NULL, P_AUTHOR_ID));
  s.ngroup = 1;
  s.having = logic(SQ_OP_AND, 2, xcmp(SQ_OP_GT, op1(sq_x_alias("members")), 1, op1(sq_x_val(I(3)))),
                   cmp(SQ_OP_NOT_NULL, P_AUTHOR_ID, 0));
  s.order = (sq_xorder[]){{sq_x_alias("members"), 1}, {sq_x_col(NULL, P_AUTHOR_ID), 0}};
  s.norder = 2;
  s.paranoid = 0;
  SEL3(&s,
       "SELECT \"author_id\", count(\"id\") AS \"members\", max(\"title\") AS \"best\", coalesce(max(\"id\"), ?) AS \"top\" "
       "FROM \"posts\" GROUP BY \"author_id\" HAVING count(\"id\") > ? AND \"author_id\" IS NOT NULL "
       "ORDER BY \"members\" DESC, \"author_id\" ASC",
       "i:0,i:3");
  /* an unaliased call is named after the function */
  sq_xattr at2[] = {{fn("count", 1, sq_x_star()), NULL}, {fn("upper", 1, sq_x_col(NULL, P_TITLE)), NULL}};
  s.attrs = at2;
  s.nattrs = 2;
  s.having = NULL;
  s.order = NULL;
  s.norder = 0;
  SEL3(&s, "SELECT count(*) AS count, upper(\"title\") AS \"upper\" FROM \"posts\" GROUP BY \"author_id\"", "");

  /* Column-to-column, function on the left, IN over operands, BETWEEN
   * columns, count(DISTINCT x) as a function, SELECT DISTINCT. */
  sq_select_init(&s, SQ_Q_SELECT, posts);
  sq_xattr at3[] = {{sq_x_col(NULL, P_AUTHOR_ID), NULL}};
  s.attrs = at3;
  s.nattrs = 1;
  s.distinct = 1;
  sq_operand cd = fn("count", 1, sq_x_col(NULL, P_TITLE));
  cd.distinct = 1;
  s.where = logic(SQ_OP_AND, 5, xcmp(SQ_OP_GT, NULL, 1, op1(sq_x_col(NULL, P_AUTHOR_ID))),
                  xcmp(SQ_OP_EQ, op1(fn("lower", 1, sq_x_col(NULL, P_TITLE))), 1, op1(sq_x_val(TX("x")))),
                  xcmp(SQ_OP_IN, op1(sq_x_col(NULL, P_ID)), 3,
                       ops(3, sq_x_val(I(1)), sq_x_col(NULL, P_AUTHOR_ID), fn("abs", 1, sq_x_val(I(-2))))),
                  xcmp(SQ_OP_NOT_BETWEEN, op1(sq_x_col(NULL, P_ID)), 2,
                       ops(2, sq_x_col(NULL, P_AUTHOR_ID), sq_x_val(I(9)))),
                  xcmp(SQ_OP_EQ, op1(sq_x_col(NULL, P_TITLE)), 1, op1(sq_x_val(sq_null()))));
  s.where->kids[0]->col = P_ID; /* lhs NULL: the node's column */
  SEL3(&s,
       "SELECT DISTINCT \"author_id\" FROM \"posts\" WHERE \"id\" > \"author_id\" AND lower(\"title\") = ? AND \"id\" IN "
       "(?, \"author_id\", abs(?)) AND \"id\" NOT BETWEEN \"author_id\" AND ? AND \"title\" IS NULL AND "
       "\"deleted_at\" IS NULL",
       "s:x,i:1,i:-2,i:9");
  sq_xattr at4[] = {{cd, "n"}};
  s.attrs = at4;
  s.distinct = 0;
  s.where = NULL;
  s.paranoid = 0;
  SEL3(&s, "SELECT count(DISTINCT \"title\") AS \"n\" FROM \"posts\"", "");

  /* Subqueries: IN, NOT IN, EXISTS, NOT EXISTS; their values in text
   * order with the outer ones; a subquery with a to-one join. */
  sq_select sub, sub2, ex;
  sq_select_init(&sub, SQ_Q_SELECT, posts);
  sq_xattr sa[] = {{sq_x_col(NULL, P_AUTHOR_ID), NULL}};
  sub.attrs = sa;
  sub.nattrs = 1;
  sub.where = cmp(SQ_OP_LIKE, P_TITLE, 1, TX("%lua%"));
  sub.limit = 100;
  sq_select_init(&sub2, SQ_Q_SELECT, comments);
  sq_xattr sb[] = {{sq_x_col(NULL, CM_POST_ID), NULL}};
  sub2.attrs = sb;
  sub2.nattrs = 1;
  sub2.distinct = 1;
  sq_select_init(&ex, SQ_Q_SELECT, tags);
  ex.where = cmp(SQ_OP_EQ, T_NAME, 1, TX("c"));
  sq_select_init(&s, SQ_Q_SELECT, users);
  sq_xattr ua[] = {{sq_x_col(NULL, U_NAME), NULL}};
  s.attrs = ua;
  s.nattrs = 1;
  sq_expr *in = node(SQ_OP_IN), *nin = node(SQ_OP_NOT_IN), *exi = node(SQ_OP_EXISTS), *nex = node(SQ_OP_NOT_EXISTS);
  in->col = U_ID;
  in->sub = &sub;
  nin->lhs = op1(sq_x_col(NULL, U_ID));
  nin->sub = &sub2;
  exi->sub = &ex;
  nex->sub = &ex;
  s.where = logic(SQ_OP_AND, 5, cmp(SQ_OP_GT, U_ID, 1, I(1)), in, nin, logic(SQ_OP_OR, 2, exi, nex),
                  cmp(SQ_OP_LT, U_ID, 1, I(1000)));
  s.limit = 5;
  SEL3(&s,
       "SELECT \"name\" FROM \"users\" WHERE \"id\" > ? AND \"id\" IN (SELECT \"author_id\" FROM \"posts\" WHERE "
       "\"title\" LIKE ? AND \"deleted_at\" IS NULL LIMIT ?) AND \"id\" NOT IN (SELECT DISTINCT \"post_id\" FROM "
       "\"comments\") AND (EXISTS (SELECT \"id\", \"name\" FROM \"tags\" WHERE \"name\" = ?) OR NOT EXISTS (SELECT "
       "\"id\", \"name\" FROM \"tags\" WHERE \"name\" = ?)) AND \"id\" < ? LIMIT ?",
       "i:1,s:%lua%,i:100,s:c,s:c,i:1000,i:5");
  /* a subquery joining a to-one include, and a subquery in a subquery */
  sq_include *au = inc(A_AUTHOR);
  au->required = 1;
  au->where = cmp(SQ_OP_EQ, U_NAME, 1, TX("ann"));
  sub.includes = incs(1, au);
  sub.nincludes = 1;
  sub.limit = -1;
  sq_expr *in2 = node(SQ_OP_IN);
  in2->col = P_ID;
  in2->sub = &sub2;
  sub.where = in2;
  sq_select_init(&s, SQ_Q_SELECT, users);
  s.attrs = ua;
  s.nattrs = 1;
  s.where = in;
  SEL3(&s,
       "SELECT \"name\" FROM \"users\" WHERE \"id\" IN (SELECT \"t1\".\"author_id\" FROM \"posts\" AS \"t1\" INNER JOIN "
       "\"users\" AS \"t2\" ON \"t2\".\"id\" = \"t1\".\"author_id\" AND \"t2\".\"name\" = ? WHERE \"t1\".\"id\" IN "
       "(SELECT DISTINCT \"post_id\" FROM \"comments\") AND \"t1\".\"deleted_at\" IS NULL)",
       "s:ann");

  /* Refusals, each with nothing rendered. */
  static const char *const bad_fn[] = {"a;drop", "count(", "", "sum x", "a\"b", "1abc", "f-g",
                                       "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd"};
  for (size_t i = 0; i < sizeof bad_fn / sizeof bad_fn[0]; i++) {
    sq_select_init(&s, SQ_Q_SELECT, users);
    sq_xattr b[] = {{fn(bad_fn[i], 1, sq_x_col(NULL, U_ID)), "x"}};
    s.attrs = b;
    s.nattrs = 1;
    REFUSE(&s, "invalid function name");
    sq_select_init(&s, SQ_Q_SELECT, users);
    s.where = xcmp(SQ_OP_EQ, op1(fn(bad_fn[i], 0)), 1, op1(sq_x_val(I(1))));
    REFUSE(&s, "invalid function name");
  }
  sq_select_init(&s, SQ_Q_SELECT, users);
  sq_xattr nf[] = {{sq_x_fn(NULL, NULL, 0), "x"}};
  s.attrs = nf;
  s.nattrs = 1;
  REFUSE(&s, "invalid function name");
  /* aliases: checked, quoted; '.' only without includes */
  sq_xattr ha[] = {{sq_x_col(NULL, U_ID), "x\" FROM t; --"}};
  s.attrs = ha;
  SEL1(&s, SQLITE, "SELECT \"id\" AS \"x\"\" FROM t; --\" FROM \"users\"", "");
  SEL1(&s, MYSQL, "SELECT `id` AS `x\" FROM t; --` FROM `users`", "");
  sq_xattr ha2[] = {{sq_x_col(NULL, U_ID), "a\tb"}};
  s.attrs = ha2;
  REFUSE(&s, "control character");
  sq_xattr ha3[] = {{sq_x_col(NULL, U_ID), "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd"}};
  s.attrs = ha3;
  REFUSE(&s, "longer than 63");
  sq_xattr ha4[] = {{sq_x_col(NULL, U_ID), "a.b"}};
  s.attrs = ha4;
  SEL1(&s, PG, "SELECT \"id\" AS \"a.b\" FROM \"users\"", "");
  s.includes = incs(1, inc(A_PROFILE));
  s.nincludes = 1;
  REFUSE(&s, "can't hold '.'");
  sq_xattr ha5[] = {{sq_x_val(I(1)), NULL}};
  s.attrs = ha5;
  s.includes = NULL;
  s.nincludes = 0;
  REFUSE(&s, "needs an alias");
  /* an alias operand: unknown, in where, naming an alias */
  s.attrs = ha4;
  s.order = (sq_xorder[]){{sq_x_alias("nope"), 0}};
  s.norder = 1;
  REFUSE(&s, "not an alias");
  s.order = NULL;
  s.norder = 0;
  s.where = xcmp(SQ_OP_EQ, op1(sq_x_alias("a.b")), 1, op1(sq_x_val(I(1))));
  REFUSE(&s, "not in where");
  sq_xattr loop[] = {{sq_x_alias("me"), "me"}};
  s.attrs = loop;
  s.where = NULL;
  s.having = xcmp(SQ_OP_EQ, op1(sq_x_alias("me")), 1, op1(sq_x_val(I(1))));
  REFUSE(&s, "an attribute can't be an alias");
  s.attrs = ha4;
  s.having = NULL;
  /* '*' outside count; bad operand lists */
  s.where = xcmp(SQ_OP_EQ, op1(sq_x_star()), 1, op1(sq_x_val(I(1))));
  REFUSE(&s, "'*'");
  s.where = xcmp(SQ_OP_EQ, op1(fn("f", 2, sq_x_star(), sq_x_val(I(1)))), 1, op1(sq_x_val(I(1))));
  REFUSE(&s, "only argument");
  s.where = xcmp(SQ_OP_BETWEEN, op1(sq_x_col(NULL, U_ID)), 1, op1(sq_x_val(I(1))));
  REFUSE(&s, "between takes 2");
  s.where = xcmp(SQ_OP_GT, op1(sq_x_col(NULL, U_ID)), 1, op1(sq_x_val(sq_null())));
  REFUSE(&s, "null");
  s.where = xcmp(SQ_OP_GT, op1(sq_x_col(NULL, 42)), 1, op1(sq_x_val(I(1))));
  REFUSE(&s, "column index 42");
  s.where = xcmp(SQ_OP_GT, op1(sq_x_col(NULL, U_ID)), 1, op1(sq_x_val(I(1))));
  s.where->vals = (sq_value[]){I(1)};
  s.where->nvals = 1;
  REFUSE(&s, "not both");
  /* subqueries: one column for IN, rows not counts, no lock, no loaded
   * to-many, a bounded depth */
  sq_select_init(&sub, SQ_Q_SELECT, posts);
  in = node(SQ_OP_IN);
  in->col = U_ID;
  in->sub = &sub;
  s.where = in;
  REFUSE(&s, "exactly one attribute");
  sub.attrs = sa;
  sub.nattrs = 1;
  sub.kind = SQ_Q_COUNT;
  REFUSE(&s, "doesn't count");
  sub.kind = SQ_Q_SELECT;
  sub.lock = SQ_LOCK_UPDATE;
  REFUSE(&s, "lock");
  sub.lock = 0;
  sub.includes = incs(1, inc(A_TAGS));
  sub.nincludes = 1;
  REFUSE(&s, "can't load the to-many include 'tags'");
  sub.includes = NULL;
  sub.nincludes = 0;
  in->vals = (sq_value[]){I(1)};
  in->nvals = 1;
  REFUSE(&s, "not both");
  in->vals = NULL;
  in->nvals = 0;
  sq_expr *gt = cmp(SQ_OP_GT, U_ID, 0);
  gt->sub = &sub;
  s.where = gt;
  REFUSE(&s, "a subquery goes with");
  s.where = node(SQ_OP_EXISTS);
  REFUSE(&s, "exists needs a subquery");
  sq_select chain[40];
  for (int i = 0; i < 40; i++) {
    sq_select_init(&chain[i], SQ_Q_SELECT, users);
    chain[i].attrs = ua;
    chain[i].nattrs = 1;
    if (i + 1 < 40) {
      sq_expr *e = node(SQ_OP_EXISTS);
      e->sub = &chain[i + 1];
      chain[i].where = e;
    }
  }
  s.where = chain[0].where;
  REFUSE(&s, "nested more than");
  /* the old renderer refuses part 2's expressions instead of ignoring them */
  sq_query q;
  sq_query_init(&q, SQ_Q_DELETE, users);
  q.where = in;
  sq_sql o;
  CHECK(sq_render(&q, SQLITE, &o, &E) == SQ_EUSAGE && strstr(E.msg, "sq_render_select") && o.sql == NULL);
  q.where = has(A_POSTS, NULL);
  CHECK(sq_render(&q, PG, &o, &E) == SQ_EUSAGE);
  q.where = xcmp(SQ_OP_GT, NULL, 1, op1(sq_x_col(NULL, U_NAME)));
  CHECK(sq_render(&q, MYSQL, &o, &E) == SQ_EUSAGE);
  q.where = logic(SQ_OP_NOT, 1, node(SQ_OP_EXISTS));
  CHECK(sq_render(&q, MYSQL, &o, &E) == SQ_EUSAGE);
}

/* ------------------------------------------------------------------ */
/* Bad include trees                                                    */
/* ------------------------------------------------------------------ */

static void test_bad_includes(void) {
  sq_select s;
  sq_select_init(&s, SQ_Q_SELECT, users);
  s.includes = incs(1, inc(A_TAGS)); /* tags belongs to posts */
  s.nincludes = 1;
  REFUSE(&s, "'tags' is not an association of model 'user'");
  sq_include *po = inc(A_POSTS);
  s.includes = incs(2, po, po);
  s.nincludes = 2;
  REFUSE(&s, "appears twice");
  sq_include *pr = inc(A_PROFILE);
  pr->limit = 1;
  s.includes = incs(1, pr);
  s.nincludes = 1;
  REFUSE(&s, "apply to to-many includes");
  pr->limit = -1;
  pr->norder = 1;
  pr->order = (sq_xorder[]){{sq_x_col(NULL, PR_BIO), 0}};
  REFUSE(&s, "apply to to-many includes");
  pr->norder = 0;
  int bad[] = {9};
  pr->attrs = bad;
  pr->nattrs = 1;
  REFUSE(&s, "column index 9");
  pr->attrs = NULL;
  pr->nattrs = 0;
  po = inc(A_POSTS);
  po->limit = -3;
  s.includes = incs(1, po);
  REFUSE(&s, "non-negative");
  /* a bad name deep under a to-many include is refused by the parent */
  po = inc(A_POSTS);
  po->kids = incs(1, inc(A_PROFILE));
  po->nkids = 1;
  s.includes = incs(1, po);
  REFUSE(&s, "'profile' is not an association of model 'post'");
  /* an include tree that loops */
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = "boss";
  o.foreign_key = "boss_id";
  const sq_assoc *boss = NULL;
  CHECK(sq_model_associate(users, SQ_ASSOC_BELONGS_TO, users, &o, &boss, &E) == SQ_OK);
  sq_include *b = inc(boss);
  b->kids = incs(1, b);
  b->nkids = 1;
  s.includes = incs(1, b);
  REFUSE(&s, "nested more than");
  /* a self join: each level its own alias */
  sq_include *b1 = inc(boss), *b2 = inc(boss);
  int name[] = {U_NAME};
  b1->attrs = b2->attrs = name;
  b1->nattrs = b2->nattrs = 1;
  b1->kids = incs(1, b2);
  b1->nkids = 1;
  s.includes = incs(1, b1);
  sq_xattr ua[] = {{sq_x_col(NULL, U_NAME), NULL}};
  s.attrs = ua;
  s.nattrs = 1;
  SEL3(&s,
       "SELECT \"t0\".\"name\", \"t0\".\"id\", \"t1\".\"name\" AS \"boss.name\", \"t1\".\"id\" AS \"boss.id\", "
       "\"t2\".\"name\" AS \"boss.boss.name\", \"t2\".\"id\" AS \"boss.boss.id\" FROM \"users\" AS \"t0\" LEFT JOIN "
       "\"users\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"boss_id\" LEFT JOIN \"users\" AS \"t2\" ON \"t2\".\"id\" = "
       "\"t1\".\"boss_id\"",
       "");
  /* group / distinct with includes */
  s.distinct = 1;
  REFUSE(&s, "distinct or group");
  s.distinct = 0;
  /* a column of a to-many include in where or order */
  po = inc(A_POSTS);
  s.includes = incs(1, po);
  s.where = xcmp(SQ_OP_EQ, op1(sq_x_col(po, P_TITLE)), 1, op1(sq_x_val(I(1))));
  REFUSE(&s, "not joined in this statement");
  s.where = NULL;
  s.order = (sq_xorder[]){{sq_x_col(po, P_TITLE), 0}};
  s.norder = 1;
  REFUSE(&s, "not joined in this statement");
  s.order = NULL;
  s.norder = 0;
  /* batches: only to-many, some keys, under the bind limit */
  sq_value keys[] = {I(1)};
  REFUSE_BATCH(inc(A_PROFILE), keys, 1, "is to-one");
  REFUSE_BATCH(po, keys, 0, "no parent keys");
  REFUSE_BATCH(NULL, keys, 1, "no include");
  int max = 0;
  CHECK(sq_include_batch_max(po, SQLITE, &max, &E) == SQ_OK && max == 32766);
  po->where = cmp(SQ_OP_IN, P_ID, 3, I(1), I(2), I(3));
  po->limit = 2;
  CHECK(sq_include_batch_max(po, PG, &max, &E) == SQ_OK && max == 65535 - 4);
  sq_value *many = calloc(70000, sizeof *many);
  for (int i = 0; i < 70000; i++) many[i] = I(i);
  sq_select_sql out;
  CHECK(sq_render_include_batch(po, PG, many, 65531, &out, &E) == SQ_OK && out.sql.nparams == 65535);
  sq_select_sql_free(&out);
  CHECK(sq_render_include_batch(po, PG, many, 65532, &out, &E) == SQ_EUSAGE && strstr(E.msg, "at most 65535"));
  CHECK(out.sql.sql == NULL);
  free(many);
  CHECK(sq_render_select(&s, 77, &out, &E) == SQ_EUSAGE);
  CHECK(sq_render_select(NULL, SQLITE, &out, &E) == SQ_EUSAGE);
  sq_select_init(&s, 99, users);
  REFUSE(&s, "kind must be");
  sq_select_sql_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Resolving "assoc.col"                                                */
/* ------------------------------------------------------------------ */

static void test_resolve(void) {
  sq_select s;
  sq_select_init(&s, SQ_Q_SELECT, posts);
  sq_include *au = inc(A_AUTHOR), *co = inc(A_COMPANY), *tg = inc(A_TAGS);
  au->kids = incs(1, co);
  au->nkids = 1;
  s.includes = incs(2, au, tg);
  s.nincludes = 2;
  const sq_include *i;
  int c;
  CHECK(sq_select_resolve(&s, "title", 5, &i, &c, &E) == SQ_OK && i == NULL && c == P_TITLE);
  CHECK(sq_select_resolve(&s, "author.name", 11, &i, &c, &E) == SQ_OK && i == au && c == U_NAME);
  CHECK(sq_select_resolve(&s, "author.company.name", 19, &i, &c, &E) == SQ_OK && i == co && c == C_NAME);
  CHECK(sq_select_resolve(&s, "tags.name", 9, &i, &c, &E) == SQ_EUSAGE && strstr(E.msg, "to-many"));
  CHECK(sq_select_resolve(&s, "author.nope", 11, &i, &c, &E) == SQ_EUSAGE && strstr(E.msg, "no column 'nope'"));
  CHECK(sq_select_resolve(&s, "editor.name", 11, &i, &c, &E) == SQ_EUSAGE && strstr(E.msg, "not an include"));
  CHECK(sq_select_resolve(&s, "", 0, &i, &c, &E) == SQ_EUSAGE);
  CHECK(sq_select_resolve(&s, "author.", 7, &i, &c, &E) == SQ_EUSAGE);
  CHECK(sq_select_resolve(&s, "author\0.name", 12, &i, &c, &E) == SQ_EUSAGE && strstr(E.msg, "\\x00"));
  CHECK(sq_select_resolve(&s, "title\0x", 7, &i, &c, &E) == SQ_EUSAGE);
}

/* ------------------------------------------------------------------ */
/* Stitching                                                            */
/* ------------------------------------------------------------------ */

static const char *groups(const sq_stitch *s) {
  static char out[512];
  size_t o = 0;
  out[0] = '\0';
  for (int g = 0; g < s->ngroups; g++) {
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%d:", g ? " " : "", s->group_parent[g]);
    for (int k = s->first[g]; k < s->first[g + 1]; k++)
      o += (size_t)snprintf(out + o, sizeof out - o, "%s%d", k > s->first[g] ? "," : "", s->child[k]);
  }
  return out;
}

static void test_stitch(void) {
  sq_stitch s;
  /* parents 10, 20, NULL, 10 (again), "30" (text); children by key */
  sq_value pk[] = {I(10), I(20), sq_null(), I(10), TX("30")};
  sq_value ck[] = {I(20), TX("10"), sq_int(30), sq_float(10.0), TX("010"), sq_null(), I(99), I(20), sq_bool(1)};
  CHECK(sq_stitch_build(pk, 5, ck, 9, 1, &s, &E) == SQ_OK);
  CHECK(s.ngroups == 3);
  CHECK(s.group_of_parent[0] == 0 && s.group_of_parent[1] == 1 && s.group_of_parent[2] == -1 &&
        s.group_of_parent[3] == 0 && s.group_of_parent[4] == 2);
  CHECK_STR(groups(&s), "0:1,3 1:0,7 4:2");
  CHECK(s.nunmatched == 4 && s.nchild == 5); /* "010", NULL, 99, true */
  sq_stitch_free(&s);
  sq_stitch_free(&s);
  /* text, blob and composite keys; order within a group is row order */
  sq_value pk2[] = {TX("a"), I(1), TX("a"), I(2), TX("b"), I(1)};
  sq_value ck2[] = {TX("b"), I(1), sq_blob("a", 1), I(2), TX("a"), I(1), TX("a"), I(2), TX("a"), I(3), TX("a"), I(1)};
  CHECK(sq_stitch_build(pk2, 3, ck2, 6, 2, &s, &E) == SQ_OK);
  CHECK_STR(groups(&s), "0:2,5 1:1,3 2:0");
  CHECK(s.nunmatched == 1);
  sq_stitch_free(&s);
  /* big: 100k children over 1000 parents */
  int np = 1000, nc = 100000;
  sq_value *p = malloc(sizeof *p * (size_t)np), *c = malloc(sizeof *c * (size_t)nc);
  for (int i = 0; i < np; i++) p[i] = I(i * 7);
  for (int i = 0; i < nc; i++) c[i] = I((i % np) * 7);
  CHECK(sq_stitch_build(p, np, c, nc, 1, &s, &E) == SQ_OK);
  CHECK(s.ngroups == np && s.nchild == nc && s.nunmatched == 0);
  int ok = 1;
  for (int g = 0; g < s.ngroups && ok; g++) {
    if (s.first[g + 1] - s.first[g] != nc / np) ok = 0;
    for (int k = s.first[g]; k < s.first[g + 1] && ok; k++)
      if (c[s.child[k]].u.i != p[s.group_parent[g]].u.i || (k > s.first[g] && s.child[k] <= s.child[k - 1])) ok = 0;
  }
  CHECK(ok);
  sq_stitch_free(&s);
  free(p);
  free(c);
  /* edges */
  CHECK(sq_stitch_build(NULL, 0, NULL, 0, 1, &s, &E) == SQ_OK && s.ngroups == 0 && s.nchild == 0);
  sq_stitch_free(&s);
  CHECK(sq_stitch_build(pk, 1, NULL, 0, 1, &s, &E) == SQ_OK && s.ngroups == 1);
  sq_stitch_free(&s);
  CHECK(sq_stitch_build(pk, 1, ck, 1, 0, &s, &E) == SQ_EUSAGE);
  CHECK(sq_stitch_build(NULL, 2, ck, 1, 1, &s, &E) == SQ_EUSAGE);
  CHECK(sq_stitch_build(pk, -1, ck, 1, 1, &s, &E) == SQ_EUSAGE);
  /* extremes of integer text */
  sq_value pk3[] = {I(INT64_MIN), I(INT64_MAX), I(0)};
  sq_value ck3[] = {TX("-9223372036854775808"), TX("9223372036854775807"), TX("9223372036854775808"), TX("-0"),
                    TX("0"), sq_float(-0.0)};
  CHECK(sq_stitch_build(pk3, 3, ck3, 6, 1, &s, &E) == SQ_OK);
  CHECK_STR(groups(&s), "0:0 1:1 2:4,5");
  sq_stitch_free(&s);
}

int main(void) {
  A = sq_arena_new();
  if (!A || !fixtures()) {
    fprintf(stderr, "fixtures failed: %s\n", E.msg);
    return 1;
  }
  test_metadata();
  test_plain();
  test_to_one();
  test_to_many();
  test_has_and_count();
  test_expressions();
  test_bad_includes();
  test_resolve();
  test_refused_assocs();
  test_stitch();
  /* Models are freed together; sources first, as a db closes them. */
  sq_model_free(comments);
  sq_model_free(posts);
  sq_model_free(tags);
  sq_model_free(profiles);
  sq_model_free(users);
  sq_model_free(companies);
  sq_arena_free(A);
  return CHECK_DONE();
}
