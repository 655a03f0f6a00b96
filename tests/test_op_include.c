/*
 * test_op_include.c - SELECT operations with includes (op_include.c,
 * sq_oper_set_includes) on SQLite: the main statement and one batch per
 * to-many level run by the op on one connection, each child row tagged
 * with its parent row, set descriptions, batch log records, keys chunked
 * under the bind limit (40,000 parents: two batches into one set), a
 * recorded run replayed into the same sink calls, a count statement
 * before the rows (SQ_STMT_COUNT); and sq_keymap.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "check.h"
#include "sqorm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sq_err E;

static sq_model *model(const char *name, int n, ...) {
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.timestamps = 0;
  sq_model *m;
  if (sq_model_new(name, &o, &m, &E)) return NULL;
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    sq_coldef d;
    memset(&d, 0, sizeof d);
    d.name = va_arg(ap, const char *);
    d.type = va_arg(ap, int);
    d.allow_null = i > 0;
    d.primary_key = i == 0;
    d.default_value = sq_null();
    sq_model_add_column(m, &d, &E);
  }
  va_end(ap);
  if (sq_model_finish(m, &E)) {
    sq_model_free(m);
    return NULL;
  }
  return m;
}

/* A sink that counts rows per set and keeps, per set, the parent of each
 * row and the first column as an integer. */
typedef struct rec {
  int columns[8];
  int rows[8];
  int64_t *parent[8];
  int64_t *first[8];
  int cap[8];
  int bad;
} rec;

static int r_columns(void *ud, int set, int ncols, const sq_column *cols, sq_err *err) {
  rec *r = ud;
  (void)ncols, (void)cols, (void)err;
  if (set < 0 || set >= 8) r->bad++;
  else r->columns[set]++;
  return 0;
}

static int r_row(void *ud, int set, int64_t parent, int ncols, const sq_value *vals, sq_err *err) {
  rec *r = ud;
  (void)err;
  if (set < 0 || set >= 8 || ncols < 1) {
    r->bad++;
    return 0;
  }
  if (r->rows[set] == r->cap[set]) {
    r->cap[set] = r->cap[set] ? r->cap[set] * 2 : 64;
    r->parent[set] = realloc(r->parent[set], sizeof(int64_t) * (size_t)r->cap[set]);
    r->first[set] = realloc(r->first[set], sizeof(int64_t) * (size_t)r->cap[set]);
  }
  r->parent[set][r->rows[set]] = parent;
  r->first[set][r->rows[set]] = vals[0].type == SQ_VINT ? vals[0].u.i : -1;
  r->rows[set]++;
  return 0;
}

static void rec_free(rec *r) {
  for (int i = 0; i < 8; i++) {
    free(r->parent[i]);
    free(r->first[i]);
  }
  memset(r, 0, sizeof *r);
}

static int raw(sq_oper *op, sq_pool *p, const char *sql) {
  sq_oper_reset(op, SQ_OPER_RAW);
  if (sq_oper_add_sql(op, sql, strlen(sql), NULL, 0, 0, &E)) return E.kind;
  sq_oper_target_pool(op, p, NULL);
  int rc = sq_oper_run(op);
  if (rc) fprintf(stderr, "%s: %s\n", sql, sq_oper_err(op)->msg);
  return rc;
}

static void test_keymap(void) {
  sq_value keys[6] = {sq_int(7), sq_text("8", 1), sq_null(), sq_int(7), sq_text("x", 1), sq_int(8)};
  sq_keymap m;
  CHECK(sq_keymap_build(keys, 6, &m, &E) == SQ_OK);
  CHECK(m.ngroups == 3); /* 7, 8 ("8" and 8 are one key), "x" */
  sq_value k7 = sq_int(7), k8 = sq_text("8", 1), kx = sq_text("x", 1), kn = sq_null(), k9 = sq_int(9);
  int g7 = sq_keymap_find(&m, &k7), g8 = sq_keymap_find(&m, &k8), gx = sq_keymap_find(&m, &kx);
  CHECK(g7 >= 0 && m.group_parent[g7] == 0);
  CHECK(g8 >= 0 && m.group_parent[g8] == 1);
  CHECK(gx >= 0 && m.group_parent[gx] == 4);
  CHECK(sq_keymap_find(&m, &kn) == -1 && sq_keymap_find(&m, &k9) == -1);
  sq_keymap_free(&m);
  CHECK(sq_keymap_build(NULL, 0, &m, &E) == SQ_OK && m.ngroups == 0);
  sq_keymap_free(&m);
}

static void test_includes(sq_pool *p) {
  sq_model *users = model("user", 2, "id", SQ_T_INTEGER, "name", SQ_T_STRING);
  sq_model *posts = model("post", 2, "id", SQ_T_INTEGER, "title", SQ_T_STRING);
  sq_model *tags = model("tag", 2, "id", SQ_T_INTEGER, "name", SQ_T_STRING);
  CHECK(users && posts && tags);
  if (!users || !posts || !tags) return;
  sq_assoc_opts o;
  const sq_assoc *a_posts, *a_tags, *a_author;
  sq_assoc_opts_init(&o);
  o.as = "posts";
  o.foreign_key = "author_id";
  CHECK(sq_model_associate(users, SQ_ASSOC_HAS_MANY, posts, &o, &a_posts, &E) == SQ_OK);
  sq_assoc_opts_init(&o);
  o.as = "author";
  o.foreign_key = "author_id";
  CHECK(sq_model_associate(posts, SQ_ASSOC_BELONGS_TO, users, &o, &a_author, &E) == SQ_OK);
  sq_assoc_opts_init(&o);
  o.as = "tags";
  o.through = "post_tags";
  o.foreign_key = "post_id";
  o.other_key = "tag_id";
  CHECK(sq_model_associate(posts, SQ_ASSOC_BELONGS_TO_MANY, tags, &o, &a_tags, &E) == SQ_OK);

  sq_oper *op;
  CHECK(sq_oper_new(&op, &E) == SQ_OK);
  CHECK(raw(op, p, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)") == SQ_OK);
  CHECK(raw(op, p, "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT, author_id INTEGER)") == SQ_OK);
  CHECK(raw(op, p, "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT)") == SQ_OK);
  CHECK(raw(op, p, "CREATE TABLE post_tags (post_id INTEGER, tag_id INTEGER)") == SQ_OK);
  /* 40,000 users: more parent keys than one SQLite batch takes */
  CHECK(raw(op, p,
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40000) "
            "INSERT INTO users SELECT x, 'u' || x FROM c") == SQ_OK);
  /* posts: user 1 has 10, 11; user 3 has 12; user 40000 has 13 */
  CHECK(raw(op, p, "INSERT INTO posts VALUES (10, 'a', 1), (11, 'b', 1), (12, 'c', 3), (13, 'd', 40000)") == SQ_OK);
  CHECK(raw(op, p, "INSERT INTO tags VALUES (100, 'red'), (101, 'blue')") == SQ_OK);
  CHECK(raw(op, p, "INSERT INTO post_tags VALUES (10, 100), (10, 101), (13, 101)") == SQ_OK);

  for (int pass = 0; pass < 2; pass++) {
    sq_include inc_posts, inc_tags, inc_author;
    sq_include_init(&inc_posts, a_posts);
    sq_include_init(&inc_tags, a_tags);
    sq_include_init(&inc_author, a_author);
    sq_include *pk[2] = {&inc_tags, &inc_author};
    inc_posts.kids = pk;
    inc_posts.nkids = 2;
    sq_include *top[1] = {&inc_posts};
    sq_select s;
    sq_select_init(&s, SQ_Q_SELECT, users);
    s.includes = top;
    s.nincludes = 1;
    sq_xorder ord = {sq_x_col(NULL, 0), 0};
    s.order = &ord;
    s.norder = 1;
    sq_select_sql out;
    CHECK(sq_render_select(&s, SQ_DIALECT_SQLITE, &out, &E) == SQ_OK);
    rec r;
    memset(&r, 0, sizeof r);
    sq_oper_sink sink = {&r, r_columns, r_row, NULL};
    sq_oper_reset(op, SQ_OPER_SELECT);
    CHECK(sq_oper_add_sql(op, out.sql.sql, out.sql.len, out.sql.params, out.sql.nparams, SQ_STMT_READ, &E) == SQ_OK);
    CHECK(sq_oper_set_includes(op, &out, &E) == SQ_OK);
    sq_select_sql_free(&out);
    sq_oper_target_pool(op, p, NULL);
    sq_oper_set_sink(op, &sink);
    sq_oper_set_flags(op, pass ? SQ_OPER_RECORD : 0);
    CHECK(sq_oper_run(op) == SQ_OK);
    if (pass) {
      CHECK(r.rows[0] == 0);
      CHECK(sq_oper_replay(op, NULL, &E) == SQ_OK);
    }
    CHECK(r.bad == 0);
    CHECK(r.rows[0] == 40000);
    /* set 1: the posts, in two batches (two columns calls) */
    CHECK(sq_oper_nsets(op) == 3);
    const sq_oper_setinfo *s1 = sq_oper_set_info(op, 1), *s2 = sq_oper_set_info(op, 2);
    CHECK(s1 && s1->inc == &inc_posts && s1->parent_set == 0 && s1->parent_col >= 0);
    CHECK(s2 && s2->inc == &inc_tags && s2->parent_set == 1);
    CHECK(r.columns[1] == 2);
    CHECK(r.rows[1] == 4);
    for (int i = 0; i < r.rows[1]; i++) {
      int64_t id = r.first[1][i], par = r.parent[1][i];
      CHECK((id == 10 || id == 11) ? par == 0 : id == 12 ? par == 2 : id == 13 ? par == 39999 : 0);
    }
    /* set 2: tags of posts, tagged with the post's row in set 1 */
    CHECK(r.rows[2] == 3);
    for (int i = 0; i < r.rows[2]; i++) {
      int64_t par = r.parent[2][i];
      CHECK(par >= 0 && par < r.rows[1]);
      int64_t post = par >= 0 && par < r.rows[1] ? r.first[1][par] : -1;
      CHECK(r.first[2][i] == 101 ? (post == 10 || post == 13) : (r.first[2][i] == 100 && post == 10));
    }
    /* the main statement, two batches of posts, one of tags */
    CHECK(sq_oper_nlogs(op) == 4);
    CHECK(strstr(sq_oper_log_at(op, 3)->sql, "post_tags") != NULL);
    rec_free(&r);
  }
  /* no parent has a key: the batch is skipped, no set */
  {
    sq_include inc_posts;
    sq_include_init(&inc_posts, a_posts);
    sq_include *top[1] = {&inc_posts};
    sq_select s;
    sq_select_init(&s, SQ_Q_SELECT, users);
    s.includes = top;
    s.nincludes = 1;
    sq_value none = sq_int(-5);
    sq_expr w;
    memset(&w, 0, sizeof w);
    w.op = SQ_OP_EQ;
    w.col = 0;
    w.vals = &none;
    w.nvals = 1;
    s.where = &w;
    sq_select_sql out;
    CHECK(sq_render_select(&s, SQ_DIALECT_SQLITE, &out, &E) == SQ_OK);
    rec r;
    memset(&r, 0, sizeof r);
    sq_oper_sink sink = {&r, r_columns, r_row, NULL};
    sq_oper_reset(op, SQ_OPER_SELECT);
    CHECK(sq_oper_add_sql(op, out.sql.sql, out.sql.len, out.sql.params, out.sql.nparams, SQ_STMT_READ, &E) == SQ_OK);
    CHECK(sq_oper_set_includes(op, &out, &E) == SQ_OK);
    sq_select_sql_free(&out);
    sq_oper_target_pool(op, p, NULL);
    sq_oper_set_sink(op, &sink);
    CHECK(sq_oper_run(op) == SQ_OK);
    CHECK(r.rows[0] == 0 && r.columns[1] == 0 && sq_oper_nsets(op) == 1 && sq_oper_nlogs(op) == 1);
    rec_free(&r);
  }
  /* a count, then the rows (find_and_count_all): one op, the count kept apart */
  {
    sq_include inc_posts;
    sq_include_init(&inc_posts, a_posts);
    sq_include *top[1] = {&inc_posts};
    sq_select s;
    sq_select_init(&s, SQ_Q_SELECT, users);
    s.includes = top;
    s.nincludes = 1;
    s.limit = 3;
    sq_xorder ord = {sq_x_col(NULL, 0), 0};
    s.order = &ord;
    s.norder = 1;
    sq_select c = s;
    c.kind = SQ_Q_COUNT;
    c.limit = -1;
    c.order = NULL;
    c.norder = 0;
    sq_select_sql cs, out;
    CHECK(sq_render_select(&c, SQ_DIALECT_SQLITE, &cs, &E) == SQ_OK);
    CHECK(sq_render_select(&s, SQ_DIALECT_SQLITE, &out, &E) == SQ_OK);
    for (int pass = 0; pass < 2; pass++) {
      rec r;
      memset(&r, 0, sizeof r);
      sq_oper_sink sink = {&r, r_columns, r_row, NULL};
      sq_oper_reset(op, SQ_OPER_SELECT);
      CHECK(sq_oper_add_sql(op, cs.sql.sql, cs.sql.len, cs.sql.params, cs.sql.nparams, SQ_STMT_READ | SQ_STMT_COUNT,
                            &E) == SQ_OK);
      CHECK(sq_oper_add_sql(op, out.sql.sql, out.sql.len, out.sql.params, out.sql.nparams, SQ_STMT_READ, &E) == SQ_OK);
      CHECK(sq_oper_add_sql(op, "SELECT 1", 8, NULL, 0, 0, &E) == SQ_EUSAGE); /* a third: refused */
      CHECK(sq_oper_set_includes(op, &out, &E) == SQ_OK);
      sq_oper_target_pool(op, p, NULL);
      sq_oper_set_sink(op, &sink);
      sq_oper_set_flags(op, pass ? SQ_OPER_RECORD : 0);
      CHECK(sq_oper_run(op) == SQ_OK);
      if (pass) CHECK(sq_oper_replay(op, NULL, &E) == SQ_OK);
      CHECK(sq_oper_count(op) == 40000);
      CHECK(r.columns[0] == 1 && r.rows[0] == 3); /* the count reached no sink */
      CHECK(r.rows[1] == 3); /* posts 10, 11 of user 1 (row 0), 12 of user 3 (row 2) */
      for (int i = 0; i < r.rows[1]; i++) CHECK(r.parent[1][i] == (r.first[1][i] == 12 ? 2 : 0));
      CHECK(sq_oper_nlogs(op) == 3);
      rec_free(&r);
    }
    sq_select_sql_free(&cs);
    sq_select_sql_free(&out);
    sq_oper_reset(op, SQ_OPER_SELECT);
    CHECK(sq_oper_add_sql(op, "SELECT 1", 8, NULL, 0, 0, &E) == SQ_OK);
    CHECK(sq_oper_add_sql(op, "SELECT 1", 8, NULL, 0, SQ_STMT_COUNT, &E) == SQ_EUSAGE); /* the count comes first */
  }
  /* only a SELECT takes includes */
  {
    sq_select_sql none;
    memset(&none, 0, sizeof none);
    sq_oper_reset(op, SQ_OPER_RAW);
    CHECK(sq_oper_set_includes(op, &none, &E) == SQ_EUSAGE);
  }
  sq_oper_free(op);
  sq_model_free(users);
  sq_model_free(posts);
  sq_model_free(tags);
}

int main(void) {
  if (sq_global_init(&E)) return 1;
  test_keymap();
  if (!sq_driver_for(SQ_DIALECT_SQLITE)) {
    printf("sqlite driver not built: skipping the rest\n");
    return CHECK_DONE();
  }
  char path[128], url[160];
  snprintf(path, sizeof path, "/tmp/sqorm_test_op_include_%d.db", (int)getpid());
  unlink(path);
  snprintf(url, sizeof url, "sqlite:%s", path);
  sq_config cfg;
  sq_config_init(&cfg);
  sq_pool *p = NULL;
  if (sq_config_parse_url(&cfg, url, &E) || sq_config_finish(&cfg, &E) || sq_pool_open(&cfg, &p, &E))
    fprintf(stderr, "pool: %s\n", E.msg);
  sq_config_free(&cfg);
  CHECK(p != NULL);
  if (p) {
    test_includes(p);
    sq_pool_close(p);
  }
  unlink(path);
  return CHECK_DONE();
}
