/*
 * test_assoc_ddl.c - foreign keys in the schema, and associations on
 * real servers.
 *
 * Without a database: the FOREIGN KEY clauses and indexes of CREATE
 * TABLE per dialect, actions and constraint modes, the dependency order
 * (a cycle refused, broken by constraints = false or deferred), DROP in
 * reverse, ALTER TABLE ADD CONSTRAINT.
 *
 * Live (SQLite always, ":memory:"; MariaDB and PostgreSQL when
 * SQORM_TEST_MYSQL_* / SQORM_TEST_PG_* are set, else skipped, or failed
 * under SQORM_TEST_REQUIRE_SERVERS=1): the tables are created with
 * sq_render_create_all, rows inserted with raw SQL, and the statements
 * sq_render_select / sq_render_include_batch write are run; the rows
 * they return are compared as text, and are the same on every dialect
 * (per-parent top-N by window, EXISTS, subqueries, group/having,
 * to-one joins). Then the keys' actions (set null, cascade on delete
 * and update), a dangling key (SQ_ECONSTRAINT), sync's missing-key plan
 * (SQLite by a rebuild that keeps the rows of referencing tables), and a
 * cycle of deferred keys.
 */
#include "sqorm.h"
#include "check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SQLITE = SQ_DIALECT_SQLITE, MYSQL = SQ_DIALECT_MYSQL, PG = SQ_DIALECT_POSTGRES };

static sq_err E;

static sq_coldef coldef(const char *name, int type) {
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = name;
  d.type = type;
  d.allow_null = 1;
  d.default_value = sq_null();
  return d;
}

/* A model without timestamps: name, table, then (name, type) pairs. */
static sq_model *model(const char *name, const char *table, int n, ...) {
  sq_model_opts o;
  memset(&o, 0, sizeof o);
  o.timestamps = 0;
  o.table_name = table;
  sq_model *m;
  if (sq_model_new(name, &o, &m, &E)) {
    fprintf(stderr, "model %s: %s\n", name, E.msg);
    check_failures++;
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
    check_failures++;
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static const sq_assoc *associate(sq_model *src, int kind, sq_model *dst, sq_assoc_opts *o) {
  const sq_assoc *a = NULL;
  if (sq_model_associate(src, kind, dst, o, &a, &E)) {
    fprintf(stderr, "associate %s -> %s: %s\n", sq_model_name(src), sq_model_name(dst), E.msg);
    check_failures++;
  }
  return a;
}

static void expect_list(int line, int rc, const sq_sql_list *l, const char *const *expect) {
  int n = 0;
  while (expect[n]) n++;
  if (rc != SQ_OK) {
    fprintf(stderr, "line %d: rc %d: %s\n", line, rc, E.msg);
    check_failures++;
    check_count++;
    return;
  }
  CHECK(l->n == n);
  if (l->n != n) fprintf(stderr, "line %d: %d statements, expected %d\n", line, l->n, n);
  for (int i = 0; i < l->n && i < n; i++) {
    if (strcmp(l->sql[i], expect[i])) fprintf(stderr, "line %d, statement %d\n", line, i);
    CHECK_STR(l->sql[i], expect[i]);
  }
  for (int i = n; i < l->n; i++) fprintf(stderr, "line %d: extra: %s\n", line, l->sql[i]);
}
#define EXPECT_LIST(rc, l, expect) expect_list(__LINE__, rc, l, expect)

/* ------------------------------------------------------------------ */
/* DDL text                                                             */
/* ------------------------------------------------------------------ */

static void test_create_text(void) {
  sq_model *users = model("user", "users", 1, "name", SQ_T_STRING);
  sq_model *posts = model("post", "posts", 1, "title", SQ_T_STRING);
  sq_model *tags = model("tag", "tags", 1, "name", SQ_T_STRING);
  sq_model *teams = model("team", "teams", 1, "name", SQ_T_STRING);
  if (!users || !posts || !tags || !teams) return;
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = "author";
  associate(posts, SQ_ASSOC_BELONGS_TO, users, &o);
  sq_assoc_opts_init(&o);
  o.as = "editor";
  o.fk_allow_null = 0; /* NOT NULL: cascade by default */
  o.on_update = SQ_FK_RESTRICT;
  associate(posts, SQ_ASSOC_BELONGS_TO, users, &o);
  sq_assoc_opts_init(&o);
  o.as = "reviewer";
  o.on_delete = SQ_FK_NO_ACTION;
  associate(posts, SQ_ASSOC_BELONGS_TO, users, &o);
  sq_assoc_opts_init(&o);
  o.as = "source";
  o.constraints = SQ_CONSTRAINTS_OFF; /* a column and an index, no constraint */
  associate(posts, SQ_ASSOC_BELONGS_TO, posts, &o);
  sq_assoc_opts_init(&o);
  o.through = "post_tags";
  associate(posts, SQ_ASSOC_BELONGS_TO_MANY, tags, &o);
  sq_assoc_opts_init(&o);
  associate(users, SQ_ASSOC_BELONGS_TO, teams, &o);
  sq_assoc_opts_init(&o);
  o.as = "owner";
  o.constraints = SQ_CONSTRAINTS_DEFERRED; /* teams <-> users: this edge waits */
  associate(teams, SQ_ASSOC_BELONGS_TO, users, &o);

  sq_sql_list l = {0};
  static const char *const lite[] = {
      "CREATE TABLE \"posts\" (\"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, \"title\" VARCHAR(255), "
      "\"author_id\" INTEGER, \"editor_id\" INTEGER NOT NULL, \"reviewer_id\" INTEGER, \"source_id\" INTEGER, "
      "CONSTRAINT \"posts_author_id_fkey\" FOREIGN KEY (\"author_id\") REFERENCES \"users\" (\"id\") ON DELETE SET NULL "
      "ON UPDATE CASCADE, CONSTRAINT \"posts_editor_id_fkey\" FOREIGN KEY (\"editor_id\") REFERENCES \"users\" (\"id\") "
      "ON DELETE CASCADE ON UPDATE RESTRICT, CONSTRAINT \"posts_reviewer_id_fkey\" FOREIGN KEY (\"reviewer_id\") "
      "REFERENCES \"users\" (\"id\") ON DELETE NO ACTION ON UPDATE CASCADE)",
      "CREATE INDEX \"posts_author_id\" ON \"posts\" (\"author_id\")",
      "CREATE INDEX \"posts_editor_id\" ON \"posts\" (\"editor_id\")",
      "CREATE INDEX \"posts_reviewer_id\" ON \"posts\" (\"reviewer_id\")",
      "CREATE INDEX \"posts_source_id\" ON \"posts\" (\"source_id\")",
      NULL};
  EXPECT_LIST(sq_render_create(posts, SQLITE, 0, &l, &E), &l, lite);
  sq_sql_list_free(&l);
  static const char *const my[] = {
      "CREATE TABLE IF NOT EXISTS `posts` (`id` INT NOT NULL AUTO_INCREMENT, `title` VARCHAR(255), `author_id` INT, "
      "`editor_id` INT NOT NULL, `reviewer_id` INT, `source_id` INT, PRIMARY KEY (`id`), INDEX `posts_author_id` "
      "(`author_id`), INDEX `posts_editor_id` (`editor_id`), INDEX `posts_reviewer_id` (`reviewer_id`), INDEX "
      "`posts_source_id` (`source_id`), CONSTRAINT `posts_author_id_fkey` FOREIGN KEY (`author_id`) REFERENCES `users` "
      "(`id`) ON DELETE SET NULL ON UPDATE CASCADE, CONSTRAINT `posts_editor_id_fkey` FOREIGN KEY (`editor_id`) "
      "REFERENCES `users` (`id`) ON DELETE CASCADE ON UPDATE RESTRICT, CONSTRAINT `posts_reviewer_id_fkey` FOREIGN KEY "
      "(`reviewer_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION ON UPDATE CASCADE) ENGINE=InnoDB DEFAULT "
      "CHARSET=utf8mb4",
      NULL};
  EXPECT_LIST(sq_render_create(posts, MYSQL, 1, &l, &E), &l, my);
  sq_sql_list_free(&l);
  /* The join table: its keys cascade; the first is covered by the key. */
  static const char *const pg[] = {
      "CREATE TABLE \"post_tags\" (\"post_id\" INTEGER NOT NULL, \"tag_id\" INTEGER NOT NULL, PRIMARY KEY (\"post_id\", "
      "\"tag_id\"), CONSTRAINT \"post_tags_post_id_fkey\" FOREIGN KEY (\"post_id\") REFERENCES \"posts\" (\"id\") ON "
      "DELETE CASCADE ON UPDATE CASCADE, CONSTRAINT \"post_tags_tag_id_fkey\" FOREIGN KEY (\"tag_id\") REFERENCES "
      "\"tags\" (\"id\") ON DELETE CASCADE ON UPDATE CASCADE)",
      "CREATE INDEX \"post_tags_tag_id\" ON \"post_tags\" (\"tag_id\")", NULL};
  EXPECT_LIST(sq_render_create(sq_model_assoc(posts, 4)->through, PG, 0, &l, &E), &l, pg);
  sq_sql_list_free(&l);

  /* The set: dependency order, join model included, deferred key last
   * (inline on SQLite). */
  sq_model *ms[] = {posts, tags, users, teams};
  static const char *const all_pg[] = {
      "CREATE TABLE \"tags\" (\"id\" INTEGER GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, \"name\" VARCHAR(255))",
      "CREATE TABLE \"teams\" (\"id\" INTEGER GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, \"name\" "
      "VARCHAR(255), \"owner_id\" INTEGER)",
      "CREATE INDEX \"teams_owner_id\" ON \"teams\" (\"owner_id\")",
      "CREATE TABLE \"users\" (\"id\" INTEGER GENERATED BY DEFAULT AS IDENTITY NOT NULL PRIMARY KEY, \"name\" "
      "VARCHAR(255), \"team_id\" INTEGER, CONSTRAINT \"users_team_id_fkey\" FOREIGN KEY (\"team_id\") REFERENCES "
      "\"teams\" (\"id\") ON DELETE SET NULL ON UPDATE CASCADE)",
      "CREATE INDEX \"users_team_id\" ON \"users\" (\"team_id\")",
      NULL};
  CHECK(sq_render_create_all(ms, 4, PG, 0, &l, &E) == SQ_OK);
  CHECK(l.n == 13);
  for (int i = 0; i < 5 && i < l.n; i++) CHECK_STR(l.sql[i], all_pg[i]);
  if (l.n == 13) {
    CHECK(!strncmp(l.sql[5], "CREATE TABLE \"posts\"", 20));
    CHECK(!strncmp(l.sql[10], "CREATE TABLE \"post_tags\"", 24));
    CHECK_STR(l.sql[12], "ALTER TABLE \"teams\" ADD CONSTRAINT \"teams_owner_id_fkey\" FOREIGN KEY (\"owner_id\") "
                         "REFERENCES \"users\" (\"id\") ON DELETE SET NULL ON UPDATE CASCADE");
  }
  sq_sql_list_free(&l);
  CHECK(sq_render_create_all(ms, 4, PG, 1, &l, &E) == SQ_OK && l.n == 12); /* idempotent: no ALTER */
  sq_sql_list_free(&l);
  CHECK(sq_render_create_all(ms, 4, SQLITE, 0, &l, &E) == SQ_OK && l.n == 12);
  if (l.n == 12) CHECK(strstr(l.sql[1], "CONSTRAINT \"teams_owner_id_fkey\" FOREIGN KEY (\"owner_id\") REFERENCES \"users\""));
  sq_sql_list_free(&l);
  static const char *const drop_lite[] = {"DROP TABLE \"post_tags\"", "DROP TABLE \"posts\"", "DROP TABLE \"users\"",
                                          "DROP TABLE \"teams\"", "DROP TABLE \"tags\"", NULL};
  EXPECT_LIST(sq_render_drop_all(ms, 4, SQLITE, 0, &l, &E), &l, drop_lite);
  sq_sql_list_free(&l);
  static const char *const drop_my[] = {"ALTER TABLE `teams` DROP FOREIGN KEY `teams_owner_id_fkey`",
                                        "DROP TABLE `post_tags`, `posts`, `users`, `teams`, `tags`", NULL};
  EXPECT_LIST(sq_render_drop_all(ms, 4, MYSQL, 0, &l, &E), &l, drop_my);
  sq_sql_list_free(&l);
  /* IF EXISTS and a cycle: MySQL needs to know whether the key exists */
  CHECK(sq_render_drop_all(ms, 4, MYSQL, 1, &l, &E) == SQ_EUSAGE && strstr(E.msg, "sq_plan_drop_all") && l.n == 0);
  static const char *const drop_pg[] = {"DROP TABLE IF EXISTS \"post_tags\", \"posts\", \"users\", \"teams\", \"tags\"",
                                        NULL};
  EXPECT_LIST(sq_render_drop_all(ms, 4, PG, 1, &l, &E), &l, drop_pg);
  sq_sql_list_free(&l);
  sq_model *no_cycle[] = {posts, users};
  static const char *const drop_my2[] = {"DROP TABLE IF EXISTS `post_tags`, `posts`, `users`", NULL};
  EXPECT_LIST(sq_render_drop_all(no_cycle, 2, MYSQL, 1, &l, &E), &l, drop_my2);
  sq_sql_list_free(&l);
  const sq_model **order;
  int n;
  CHECK(sq_schema_order(ms, 4, &order, &n, &E) == SQ_OK && n == 5);
  if (n == 5) CHECK(order[0] == tags && order[1] == teams && order[2] == users && order[3] == posts);
  free(order);
  sq_model *twice[] = {users, users};
  CHECK(sq_schema_order(twice, 2, &order, &n, &E) == SQ_OK && n == 1);
  free(order);
  CHECK(sq_schema_order(NULL, 1, &order, &n, &E) == SQ_EUSAGE);

  /* ALTER ADD CONSTRAINT; SQLite can't. */
  const sq_fk *fk = sq_model_fk(users, 0);
  static const char *const add_my[] = {"ALTER TABLE `users` ADD CONSTRAINT `users_team_id_fkey` FOREIGN KEY (`team_id`) "
                                       "REFERENCES `teams` (`id`) ON DELETE SET NULL ON UPDATE CASCADE",
                                       NULL};
  EXPECT_LIST(sq_render_add_fk(users, fk, MYSQL, &l, &E), &l, add_my);
  sq_sql_list_free(&l);
  CHECK(sq_render_add_fk(users, fk, SQLITE, &l, &E) == SQ_EUSAGE && l.n == 0);

  /* A cycle of constrained keys is refused and named. */
  sq_model *a = model("alpha", "alphas", 0), *b = model("beta", "betas", 0), *c = model("gamma", "gammas", 0);
  associate(a, SQ_ASSOC_BELONGS_TO, b, NULL);
  associate(b, SQ_ASSOC_BELONGS_TO, c, NULL);
  associate(c, SQ_ASSOC_BELONGS_TO, a, NULL);
  sq_model *cy[] = {users, a, b, c};
  CHECK(sq_schema_order(cy, 4, &order, &n, &E) == SQ_EUSAGE && order == NULL);
  CHECK(strstr(E.msg, "alphas.beta_id -> betas, betas.gamma_id -> gammas, gammas.alpha_id -> alphas") != NULL);
  CHECK(strstr(E.msg, "constraints = false") != NULL);
  CHECK(sq_render_create_all(cy, 4, MYSQL, 0, &l, &E) == SQ_EUSAGE && l.n == 0);
  CHECK(sq_render_drop_all(cy, 4, PG, 0, &l, &E) == SQ_EUSAGE && l.n == 0);
  /* a self reference is no cycle */
  sq_model *self = model("node", "nodes", 0);
  sq_assoc_opts_init(&o);
  o.as = "parent";
  associate(self, SQ_ASSOC_BELONGS_TO, self, &o);
  sq_model *one[] = {self};
  CHECK(sq_schema_order(one, 1, &order, &n, &E) == SQ_OK && n == 1);
  free(order);
  static const char *const self_my[] = {
      "CREATE TABLE `nodes` (`id` INT NOT NULL AUTO_INCREMENT, `parent_id` INT, PRIMARY KEY (`id`), INDEX "
      "`nodes_parent_id` (`parent_id`), CONSTRAINT `nodes_parent_id_fkey` FOREIGN KEY (`parent_id`) REFERENCES `nodes` "
      "(`id`) ON DELETE SET NULL ON UPDATE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
      NULL};
  EXPECT_LIST(sq_render_create(self, MYSQL, 0, &l, &E), &l, self_my);
  sq_sql_list_free(&l);
  /* constraint names past 63 bytes are shortened with a hash */
  sq_model *lng = model("l", "a_table_with_a_name_long_enough_to_push_the_constraint_name", 0);
  sq_assoc_opts_init(&o);
  o.as = "owner_of_this_row";
  associate(lng, SQ_ASSOC_BELONGS_TO, users, &o);
  CHECK(strlen(sq_model_fk(lng, 0)->name) == 63);
  CHECK(!strncmp(sq_model_fk(lng, 0)->name, "a_table_with_a_name_long_enough_to_push_the_constraint_", 55));
  CHECK(sq_render_create(lng, PG, 0, &l, &E) == SQ_OK);
  sq_sql_list_free(&l);

  sq_model_free(lng);
  sq_model_free(self);
  sq_model_free(a);
  sq_model_free(b);
  sq_model_free(c);
  sq_model_free(posts);
  sq_model_free(teams);
  sq_model_free(users);
  sq_model_free(tags);
}

/* ------------------------------------------------------------------ */
/* Live                                                                 */
/* ------------------------------------------------------------------ */

/* Rows as text: "a|b;c|d" (NULL as "-"). */
typedef struct rows {
  char s[8192];
  size_t n;
  int count;
} rows;

static int rows_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  rows *r = ud;
  char cell[128];
  if (r->count++ && r->n + 1 < sizeof r->s) r->s[r->n++] = ';';
  for (int i = 0; i < ncols; i++) {
    switch (v[i].type) {
    case SQ_VNULL: snprintf(cell, sizeof cell, "-"); break;
    case SQ_VINT: snprintf(cell, sizeof cell, "%lld", (long long)v[i].u.i); break;
    case SQ_VBOOL: snprintf(cell, sizeof cell, "%d", v[i].u.b); break;
    case SQ_VFLOAT: snprintf(cell, sizeof cell, "%g", v[i].u.f); break;
    default: snprintf(cell, sizeof cell, "%.*s", (int)(v[i].u.s.n > 100 ? 100 : v[i].u.s.n), v[i].u.s.p); break;
    }
    int w = snprintf(r->s + r->n, sizeof r->s - r->n, "%s%s", i ? "|" : "", cell);
    if (w > 0 && (size_t)w < sizeof r->s - r->n) r->n += (size_t)w;
  }
  return 0;
}

static int run_native(sq_conn *c, const char *sql, const sq_value *p, int np, rows *r) {
  sq_row_sink sink = {r, NULL, rows_row};
  sq_result res;
  if (r) memset(r, 0, sizeof *r);
  int rc = sq_conn_exec_native(c, sql, strlen(sql), p, np, r ? &sink : NULL, &res, &E);
  if (rc && rc != SQ_ECONSTRAINT) fprintf(stderr, "failed: %s\n  %s\n", E.msg, sql);
  return rc;
}

/* Raw SQL with ? placeholders, rewritten per driver. */
static int run(sq_conn *c, const char *sql) {
  sq_result res;
  int rc = sq_conn_exec(c, sql, strlen(sql), NULL, 0, NULL, &res, &E);
  if (rc && rc != SQ_ECONSTRAINT) fprintf(stderr, "failed: %s\n  %s\n", E.msg, sql);
  return rc;
}

static int run_list(sq_conn *c, const sq_sql_list *l) {
  for (int i = 0; i < l->n; i++) {
    if (getenv("VERBOSE")) printf("  %s\n", l->sql[i]);
    int rc = run_native(c, l->sql[i], NULL, 0, NULL);
    if (rc) return rc;
  }
  return SQ_OK;
}

/* Runs a rendered read and compares its rows. */
static void select_rows_at(int line, sq_conn *c, int d, const sq_select *s, const char *want) {
  sq_select_sql q;
  int rc = sq_render_select(s, d, &q, &E);
  CHECK(rc == SQ_OK);
  if (rc) {
    fprintf(stderr, "line %d: render: %s\n", line, E.msg);
    return;
  }
  if (getenv("VERBOSE")) printf("  %s\n", q.sql.sql);
  rows r;
  rc = run_native(c, q.sql.sql, q.sql.params, q.sql.nparams, &r);
  CHECK(rc == SQ_OK);
  if (!rc && strcmp(r.s, want)) fprintf(stderr, "line %d (%s): %s\n", line, sq_dialect_name(d), q.sql.sql);
  if (!rc) CHECK_STR(r.s, want);
  sq_select_sql_free(&q);
}
#define SELECT_ROWS(c, d, s, want) select_rows_at(__LINE__, c, d, s, want)

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorts the rows of r (for statements without an order). */
static void sort_rows(rows *r) {
  char *v[256], copy[sizeof r->s];
  int n = 0;
  memcpy(copy, r->s, r->n + 1);
  for (char *p = strtok(copy, ";"); p && n < 256; p = strtok(NULL, ";")) v[n++] = p;
  qsort(v, (size_t)n, sizeof v[0], cmp_str);
  size_t o = 0;
  for (int i = 0; i < n; i++) o += (size_t)snprintf(r->s + o, sizeof r->s - o, "%s%s", i ? ";" : "", v[i]);
}

static void batch_rows_at(int line, sq_conn *c, int d, const sq_include *inc, const sq_value *keys, int n,
                          const char *want, int sorted) {
  sq_select_sql q;
  int rc = sq_render_include_batch(inc, d, keys, n, &q, &E);
  CHECK(rc == SQ_OK);
  if (rc) {
    fprintf(stderr, "line %d: render: %s\n", line, E.msg);
    return;
  }
  if (getenv("VERBOSE")) printf("  %s\n", q.sql.sql);
  rows r;
  rc = run_native(c, q.sql.sql, q.sql.params, q.sql.nparams, &r);
  CHECK(rc == SQ_OK);
  if (!rc && sorted) sort_rows(&r);
  if (!rc && strcmp(r.s, want)) fprintf(stderr, "line %d (%s): %s\n", line, sq_dialect_name(d), q.sql.sql);
  if (!rc) CHECK_STR(r.s, want);
  sq_select_sql_free(&q);
}
#define BATCH_ROWS(c, d, inc, keys, n, want) batch_rows_at(__LINE__, c, d, inc, keys, n, want, 0)
#define BATCH_ROWS_SORTED(c, d, inc, keys, n, want) batch_rows_at(__LINE__, c, d, inc, keys, n, want, 1)

static int count_of(sq_conn *c, const char *sql) {
  rows r;
  if (run_native(c, sql, NULL, 0, &r)) return -1;
  return atoi(r.s);
}

/* The game schema: guilds, players (a guild, tags), items (an owner). */
typedef struct game {
  sq_model *guild, *player, *item, *tag;
  const sq_assoc *members, *guild_of, *items, *owner, *tags;
} game;

static int game_models(game *g) {
  memset(g, 0, sizeof *g);
  g->guild = model("guild", "sqa_guilds", 1, "name", SQ_T_STRING);
  g->player = model("player", "sqa_players", 2, "name", SQ_T_STRING, "coins", SQ_T_INTEGER);
  g->item = model("item", "sqa_items", 2, "kind", SQ_T_STRING, "power", SQ_T_INTEGER);
  g->tag = model("tag", "sqa_tags", 1, "name", SQ_T_STRING);
  if (!g->guild || !g->player || !g->item || !g->tag) return 0;
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  o.as = "guild";
  g->guild_of = associate(g->player, SQ_ASSOC_BELONGS_TO, g->guild, &o);
  sq_assoc_opts_init(&o);
  o.as = "members";
  o.foreign_key = "guild_id";
  g->members = associate(g->guild, SQ_ASSOC_HAS_MANY, g->player, &o);
  sq_assoc_opts_init(&o);
  o.as = "owner";
  o.fk_allow_null = 0; /* NOT NULL: on delete cascade */
  g->owner = associate(g->item, SQ_ASSOC_BELONGS_TO, g->player, &o);
  sq_assoc_opts_init(&o);
  o.as = "items";
  o.foreign_key = "owner_id";
  g->items = associate(g->player, SQ_ASSOC_HAS_MANY, g->item, &o);
  sq_assoc_opts_init(&o);
  o.through = "sqa_player_tags";
  g->tags = associate(g->player, SQ_ASSOC_BELONGS_TO_MANY, g->tag, &o);
  return g->guild_of && g->members && g->owner && g->items && g->tags;
}

static void game_free(game *g) {
  sq_model_free(g->item);
  sq_model_free(g->player);
  sq_model_free(g->guild);
  sq_model_free(g->tag);
}

enum { G_ID, G_NAME };
enum { PL_ID, PL_NAME, PL_COINS, PL_GUILD_ID };
enum { IT_ID, IT_KIND, IT_POWER, IT_OWNER_ID };

static sq_expr *leaf(int op, int col, sq_value *v, int n) {
  sq_expr *e = calloc(1, sizeof *e);
  e->op = op;
  e->col = col;
  e->vals = v;
  e->nvals = n;
  return e;
}

static void game_queries(sq_conn *c, int d, game *g) {
  sq_select s;
  /* Guilds with their top two members by coins (a window per guild). */
  sq_include *mem = calloc(1, sizeof *mem);
  sq_include_init(mem, g->members);
  int mattrs[] = {PL_NAME, PL_COINS};
  mem->attrs = mattrs;
  mem->nattrs = 2;
  sq_xorder mo[] = {{sq_x_col(NULL, PL_COINS), 1}};
  mem->order = mo;
  mem->norder = 1;
  mem->limit = 2;
  sq_select_init(&s, SQ_Q_SELECT, g->guild);
  sq_include *gi[] = {mem};
  s.includes = gi;
  s.nincludes = 1;
  sq_xorder go[] = {{sq_x_col(NULL, G_ID), 0}};
  s.order = go;
  s.norder = 1;
  SELECT_ROWS(c, d, &s, "1|red;2|blue;3|empty");
  sq_value gk[] = {sq_int(1), sq_int(2), sq_int(3)};
  /* name, coins, id (key), guild_id (parent key) */
  BATCH_ROWS(c, d, mem, gk, 3, "eve|90|5|1;ann|50|1|1;cat|70|3|2");
  mem->offset = 1;
  BATCH_ROWS(c, d, mem, gk, 3, "ann|50|1|1;bob|30|2|1");
  mem->limit = -1;
  mem->offset = -1;
  BATCH_ROWS(c, d, mem, gk, 3, "eve|90|5|1;cat|70|3|2;ann|50|1|1;bob|30|2|1");

  /* Players with items: top 3 by power after the first, ties by id. */
  sq_include *it = calloc(1, sizeof *it);
  sq_include_init(it, g->items);
  int iattrs[] = {IT_KIND};
  it->attrs = iattrs;
  it->nattrs = 1;
  sq_xorder io[] = {{sq_x_col(NULL, IT_POWER), 1}};
  it->order = io;
  it->norder = 1;
  it->limit = 3;
  it->offset = 1;
  sq_value pk[] = {sq_int(1), sq_int(2), sq_int(3), sq_int(5)};
  BATCH_ROWS(c, d, it, pk, 4, "sword|1|1;bow|3|1;shield|2|1;staff|7|3");
  /* Their tags, through the join table, first by name per player. */
  sq_include *tg = calloc(1, sizeof *tg);
  sq_include_init(tg, g->tags);
  sq_xorder to[] = {{sq_x_col(NULL, 1), 0}};
  tg->order = to;
  tg->norder = 1;
  BATCH_ROWS_SORTED(c, d, tg, pk, 4, "1|pvp|1;1|pvp|3;2|pve|2;3|vip|1;3|vip|5");
  tg->limit = 1;
  BATCH_ROWS(c, d, tg, pk, 4, "1|pvp|1;2|pve|2;1|pvp|3;3|vip|5");

  /* Items with their owner and the owner's guild (to-one chain), ordered
   * by a joined column; then with the guild required. */
  sq_select_init(&s, SQ_Q_SELECT, g->item);
  sq_include *ow = calloc(1, sizeof *ow), *gu = calloc(1, sizeof *gu);
  sq_include_init(ow, g->owner);
  sq_include_init(gu, g->guild_of);
  int oattrs[] = {PL_NAME}, gattrs[] = {G_NAME};
  ow->attrs = oattrs;
  ow->nattrs = 1;
  gu->attrs = gattrs;
  gu->nattrs = 1;
  sq_include *ok[] = {gu};
  ow->kids = ok;
  ow->nkids = 1;
  sq_include *ii[] = {ow};
  s.includes = ii;
  s.nincludes = 1;
  sq_xattr ia[] = {{sq_x_col(NULL, IT_KIND), NULL}};
  s.attrs = ia;
  s.nattrs = 1;
  sq_xorder oo[] = {{sq_x_col(ow, PL_NAME), 1}, {sq_x_col(NULL, IT_ID), 0}};
  s.order = oo;
  s.norder = 2;
  s.limit = 4;
  /* kind, id, owner.name, owner.id, guild.name, guild.id */
  SELECT_ROWS(c, d, &s, "dagger|8|eve|5|red|1;rock|9|dan|4|-|-;wand|6|cat|3|blue|2;staff|7|cat|3|blue|2");
  gu->required = 1;
  SELECT_ROWS(c, d, &s, "dagger|8|eve|5|red|1;wand|6|cat|3|blue|2;staff|7|cat|3|blue|2;sword|5|bob|2|red|1");
  gu->required = 0;

  /* op.has and required to-many: parents only, and limit counts them. */
  sq_select_init(&s, SQ_Q_SELECT, g->player);
  sq_xattr pa[] = {{sq_x_col(NULL, PL_NAME), NULL}};
  s.attrs = pa;
  s.nattrs = 1;
  sq_value sword = sq_text("sword", 5);
  sq_expr *kind = leaf(SQ_OP_EQ, IT_KIND, &sword, 1);
  sq_expr hs;
  memset(&hs, 0, sizeof hs);
  hs.op = SQ_OP_HAS;
  hs.assoc = g->items;
  sq_expr *hk[] = {kind};
  hs.kids = hk;
  hs.nkids = 1;
  s.where = &hs;
  sq_xorder po[] = {{sq_x_col(NULL, PL_ID), 0}};
  s.order = po;
  s.norder = 1;
  SELECT_ROWS(c, d, &s, "ann;bob");
  sq_expr nh;
  memset(&nh, 0, sizeof nh);
  nh.op = SQ_OP_NOT;
  sq_expr *nk[] = {&hs};
  nh.kids = nk;
  nh.nkids = 1;
  s.where = &nh;
  SELECT_ROWS(c, d, &s, "cat;dan;eve");
  sq_include *req = calloc(1, sizeof *req);
  sq_include_init(req, g->items);
  sq_value eight = sq_int(8);
  req->where = leaf(SQ_OP_GT, IT_POWER, &eight, 1);
  req->required = 1;
  sq_include *ri[] = {req};
  s.includes = ri;
  s.nincludes = 1;
  s.where = NULL;
  s.limit = 1;
  SELECT_ROWS(c, d, &s, "ann|1"); /* name, id: the key comes along */
  s.limit = -1;
  SELECT_ROWS(c, d, &s, "ann|1;cat|3");
  sq_value keys2[] = {sq_int(1), sq_int(3)};
  BATCH_ROWS_SORTED(c, d, req, keys2, 2, "1|sword|10|1;4|axe|12|1;6|wand|9|3;7|staff|9|3");
  /* find_and_count_all's count: distinct parents */
  sq_select_init(&s, SQ_Q_COUNT, g->player);
  s.includes = ri;
  s.nincludes = 1;
  SELECT_ROWS(c, d, &s, "2");
  sq_include *gr = calloc(1, sizeof *gr);
  sq_include_init(gr, g->guild_of);
  sq_value red = sq_text("red", 3);
  gr->where = leaf(SQ_OP_EQ, G_NAME, &red, 1);
  gr->required = 1;
  sq_include *gri[] = {gr};
  s.includes = gri;
  SELECT_ROWS(c, d, &s, "3");

  /* Subqueries. */
  sq_select sub;
  sq_select_init(&sub, SQ_Q_SELECT, g->item);
  sq_xattr sa[] = {{sq_x_col(NULL, IT_OWNER_ID), NULL}};
  sub.attrs = sa;
  sub.nattrs = 1;
  sub.where = kind;
  sq_expr in;
  memset(&in, 0, sizeof in);
  in.op = SQ_OP_IN;
  in.col = PL_ID;
  in.sub = &sub;
  sq_select_init(&s, SQ_Q_SELECT, g->player);
  s.attrs = pa;
  s.nattrs = 1;
  s.order = po;
  s.norder = 1;
  s.where = &in;
  SELECT_ROWS(c, d, &s, "ann;bob");
  in.op = SQ_OP_NOT_IN;
  SELECT_ROWS(c, d, &s, "cat;dan;eve");
  sq_expr ex;
  memset(&ex, 0, sizeof ex);
  ex.op = SQ_OP_EXISTS;
  ex.sub = &sub;
  s.where = &ex;
  SELECT_ROWS(c, d, &s, "ann;bob;cat;dan;eve");

  /* The leaderboard: count, max, alias in having and order. */
  sq_select_init(&s, SQ_Q_SELECT, g->player);
  sq_operand cnt_arg = sq_x_col(NULL, PL_ID), max_arg = sq_x_col(NULL, PL_COINS);
  sq_xattr la[] = {{sq_x_col(NULL, PL_GUILD_ID), NULL},
                   {sq_x_fn("count", &cnt_arg, 1), "members"},
                   {sq_x_fn("max", &max_arg, 1), "best"}};
  s.attrs = la;
  s.nattrs = 3;
  sq_operand grp = sq_x_col(NULL, PL_GUILD_ID);
  s.group = &grp;
  s.ngroup = 1;
  sq_operand al = sq_x_alias("members"), zero = sq_x_val(sq_int(0));
  sq_expr hv;
  memset(&hv, 0, sizeof hv);
  hv.op = SQ_OP_GT;
  hv.lhs = &al;
  hv.rhs = &zero;
  hv.nrhs = 1;
  s.having = &hv;
  s.where = leaf(SQ_OP_NOT_NULL, PL_GUILD_ID, NULL, 0);
  sq_xorder lo[] = {{sq_x_alias("members"), 1}};
  s.order = lo;
  s.norder = 1;
  SELECT_ROWS(c, d, &s, "1|3|90;2|1|70");
  free(s.where);
  /* count per group, count distinct, distinct rows */
  sq_select_init(&s, SQ_Q_COUNT, g->player);
  s.group = &grp;
  s.ngroup = 1;
  s.where = leaf(SQ_OP_NOT_NULL, PL_GUILD_ID, NULL, 0);
  sq_xorder go2[] = {{sq_x_col(NULL, PL_GUILD_ID), 0}};
  s.order = go2;
  s.norder = 1;
  SELECT_ROWS(c, d, &s, "1|3;2|1");
  free(s.where);
  sq_select_init(&s, SQ_Q_COUNT, g->player);
  s.distinct = 1;
  s.count_col = &grp;
  SELECT_ROWS(c, d, &s, "2");
  sq_select_init(&s, SQ_Q_SELECT, g->item);
  s.distinct = 1;
  sq_xattr da[] = {{sq_x_col(NULL, IT_KIND), NULL}};
  s.attrs = da;
  s.nattrs = 1;
  sq_xorder dor[] = {{sq_x_col(NULL, IT_KIND), 0}};
  s.order = dor;
  s.norder = 1;
  s.limit = 3;
  SELECT_ROWS(c, d, &s, "axe;bow;dagger");
  /* column against column: power > id */
  sq_select_init(&s, SQ_Q_SELECT, g->item);
  sq_xattr ida[] = {{sq_x_col(NULL, IT_ID), NULL}};
  s.attrs = ida;
  s.nattrs = 1;
  sq_operand idop = sq_x_col(NULL, IT_ID);
  sq_expr cc;
  memset(&cc, 0, sizeof cc);
  cc.op = SQ_OP_GT;
  cc.col = IT_POWER;
  cc.rhs = &idop;
  cc.nrhs = 1;
  s.where = &cc;
  sq_xorder ido[] = {{sq_x_col(NULL, IT_ID), 0}};
  s.order = ido;
  s.norder = 1;
  SELECT_ROWS(c, d, &s, "1;2;3;4;6;7");

  free(kind);
  free(req->where);
  free(gr->where);
  free(mem);
  free(it);
  free(tg);
  free(ow);
  free(gu);
  free(req);
  free(gr);
}

static void game_actions(sq_conn *c, int d) {
  /* A dangling key is the server's constraint error. */
  CHECK(run(c, "INSERT INTO sqa_items (id, kind, power, owner_id) VALUES (50, 'ghost', 1, 999)") == SQ_ECONSTRAINT);
  CHECK(run(c, "INSERT INTO sqa_player_tags (player_id, tag_id) VALUES (1, 99)") == SQ_ECONSTRAINT);
  CHECK(run(c, "UPDATE sqa_players SET guild_id = 42 WHERE id = 2") == SQ_ECONSTRAINT);
  /* set_null: a nullable key loses its guild. */
  CHECK(run(c, "DELETE FROM sqa_guilds WHERE id = 2") == SQ_OK);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_players WHERE id = 3 AND guild_id IS NULL") == 1);
  /* cascade: a NOT NULL key's rows go with their parent, join rows too. */
  CHECK(count_of(c, "SELECT count(*) FROM sqa_items WHERE owner_id = 1") == 4);
  CHECK(run(c, "DELETE FROM sqa_players WHERE id = 1") == SQ_OK);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_items WHERE owner_id = 1") == 0);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_player_tags WHERE player_id = 1") == 0);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_items") == 5);
  /* on update cascade */
  CHECK(run(c, "UPDATE sqa_guilds SET id = 10 WHERE id = 1") == SQ_OK);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_players WHERE guild_id = 10") == 2);
  CHECK(run(c, "DELETE FROM sqa_tags WHERE id = 3") == SQ_OK);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_player_tags") == 2);
  (void)d;
}

/* sync{ alter = true }'s keys: a table created before its association
 * gets the key added once; SQLite by a rebuild that keeps the rows of
 * the tables referencing it. */
static void alter_fks(sq_conn *c, int d) {
  sq_model *other = model("other", "sqa_r_others", 1, "name", SQ_T_STRING);
  sq_model *p1 = model("parent", "sqa_r_parents", 2, "name", SQ_T_STRING, "other_id", SQ_T_INTEGER);
  sq_model *p2 = model("parent", "sqa_r_parents", 1, "name", SQ_T_STRING);
  sq_model *child = model("child", "sqa_r_children", 0);
  if (!other || !p1 || !p2 || !child) goto out;
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  associate(p2, SQ_ASSOC_BELONGS_TO, other, &o); /* other_id: same column as p1's */
  sq_assoc_opts_init(&o);
  o.fk_allow_null = 0;
  associate(child, SQ_ASSOC_BELONGS_TO, p2, &o); /* cascade on delete */
  sq_sql_list l = {0};
  sq_model *drop[] = {child, p2, other};
  CHECK(sq_plan_drop_all(c, drop, 3, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  /* parents as they were before the association: no key */
  CHECK(sq_render_create(other, d, 0, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  CHECK(sq_render_create(p1, d, 0, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  CHECK(sq_render_create(child, d, 0, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  CHECK(run(c, "INSERT INTO sqa_r_others (id, name) VALUES (1, 'o')") == SQ_OK);
  CHECK(run(c, "INSERT INTO sqa_r_parents (id, name, other_id) VALUES (1, 'a', 1), (2, 'b', NULL)") == SQ_OK);
  CHECK(run(c, "INSERT INTO sqa_r_children (id, parent_id) VALUES (1, 1), (2, 1), (3, 2)") == SQ_OK);
  CHECK(run(c, "INSERT INTO sqa_r_parents (id, name, other_id) VALUES (3, 'dangling', 77)") == SQ_OK); /* no key yet */
  CHECK(run(c, "DELETE FROM sqa_r_parents WHERE id = 3") == SQ_OK);

  /* the model's own plan first (the key's index), then the keys */
  CHECK(sq_plan_alter(c, p2, &l, &E) == SQ_OK);
  CHECK(l.n == 1 && strstr(l.sql[0], "INDEX") && strstr(l.sql[0], "sqa_r_parents_other_id"));
  CHECK(run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  CHECK(sq_plan_alter_fks(c, p2, &l, &E) == SQ_OK);
  if (d == SQLITE) {
    CHECK(l.n >= 4); /* a rebuild */
    CHECK(l.n >= 2 && strstr(l.sql[1], "CONSTRAINT \"sqa_r_parents_other_id_fkey\" FOREIGN KEY") != NULL);
    /* refused inside a transaction, where SQLite ignores the pragma */
    CHECK(run(c, "BEGIN") == SQ_OK);
    CHECK(sq_sqlite_run_rebuild(c, &l, &E) == SQ_EUSAGE && strstr(E.msg, "outside a transaction"));
    CHECK(run(c, "ROLLBACK") == SQ_OK);
    CHECK(count_of(c, "PRAGMA foreign_keys") == 1);
    CHECK(sq_sqlite_run_rebuild(c, &l, &E) == SQ_OK);
    CHECK(count_of(c, "PRAGMA foreign_keys") == 1);
  } else {
    static const char *const want_my[] = {
        "ALTER TABLE `sqa_r_parents` ADD CONSTRAINT `sqa_r_parents_other_id_fkey` FOREIGN KEY (`other_id`) "
        "REFERENCES `sqa_r_others` (`id`) ON DELETE SET NULL ON UPDATE CASCADE",
        NULL};
    static const char *const want_pg[] = {
        "ALTER TABLE \"sqa_r_parents\" ADD CONSTRAINT \"sqa_r_parents_other_id_fkey\" FOREIGN KEY (\"other_id\") "
        "REFERENCES \"sqa_r_others\" (\"id\") ON DELETE SET NULL ON UPDATE CASCADE",
        NULL};
    EXPECT_LIST(SQ_OK, &l, d == MYSQL ? want_my : want_pg);
    CHECK(run_list(c, &l) == SQ_OK);
  }
  sq_sql_list_free(&l);
  /* rows of the referencing table survived the rebuild */
  CHECK(count_of(c, "SELECT count(*) FROM sqa_r_children") == 3);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_r_parents") == 2);
  /* nothing more to add; the key works */
  CHECK(sq_plan_alter_fks(c, p2, &l, &E) == SQ_OK && l.n == 0);
  sq_sql_list_free(&l);
  CHECK(run(c, "INSERT INTO sqa_r_parents (id, name, other_id) VALUES (3, 'dangling', 77)") == SQ_ECONSTRAINT);
  CHECK(run(c, "DELETE FROM sqa_r_others WHERE id = 1") == SQ_OK);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_r_parents WHERE other_id IS NULL") == 2);
  /* the child's key still cascades */
  CHECK(run(c, "DELETE FROM sqa_r_parents WHERE id = 1") == SQ_OK);
  CHECK(count_of(c, "SELECT count(*) FROM sqa_r_children") == 1);
  /* no table: nothing planned */
  sq_model *ghost = model("ghost", "sqa_r_ghosts", 0);
  if (ghost) {
    sq_assoc_opts_init(&o);
    associate(ghost, SQ_ASSOC_BELONGS_TO, other, &o);
    CHECK(sq_plan_alter_fks(c, ghost, &l, &E) == SQ_OK && l.n == 0);
    sq_sql_list_free(&l);
    sq_model_free(ghost);
  }
  /* a rebuild that fails its foreign_key_check rolls back (SQLite) */
  if (d == SQLITE) {
    sq_sql_list bad = {0};
    char *stmts[] = {"INSERT INTO sqa_r_children (id, parent_id) VALUES (9, 999)"};
    bad.sql = stmts;
    bad.n = 1;
    CHECK(sq_sqlite_run_rebuild(c, &bad, &E) == SQ_ECONSTRAINT && strstr(E.msg, "violate a foreign key"));
    CHECK(count_of(c, "SELECT count(*) FROM sqa_r_children WHERE id = 9") == 0);
    CHECK(count_of(c, "PRAGMA foreign_keys") == 1);
  }
  CHECK(sq_render_drop_all(drop, 3, d, 1, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
out:
  sq_model_free(child);
  sq_model_free(p2);
  sq_model_free(p1);
  sq_model_free(other);
}

/* Two tables referencing each other: one key deferred. */
static void deferred_cycle(sq_conn *c, int d) {
  sq_model *team = model("team", "sqa_teams", 1, "name", SQ_T_STRING);
  sq_model *user = model("user", "sqa_users", 1, "name", SQ_T_STRING);
  if (!team || !user) goto out;
  sq_assoc_opts o;
  sq_assoc_opts_init(&o);
  associate(user, SQ_ASSOC_BELONGS_TO, team, &o);
  sq_assoc_opts_init(&o);
  o.as = "owner";
  o.constraints = SQ_CONSTRAINTS_DEFERRED;
  associate(team, SQ_ASSOC_BELONGS_TO, user, &o);
  sq_model *ms[] = {team, user};
  sq_sql_list l = {0};
  CHECK(sq_plan_drop_all(c, ms, 2, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  CHECK(l.n == (d == SQLITE ? 2 : 1)); /* no table, no key to drop first */
  sq_sql_list_free(&l);
  CHECK(sq_render_create_all(ms, 2, d, 0, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  CHECK(run(c, "INSERT INTO sqa_teams (id, name) VALUES (1, 't')") == SQ_OK);
  CHECK(run(c, "INSERT INTO sqa_users (id, name, team_id) VALUES (1, 'u', 1)") == SQ_OK);
  CHECK(run(c, "UPDATE sqa_teams SET owner_id = 1 WHERE id = 1") == SQ_OK);
  CHECK(run(c, "UPDATE sqa_teams SET owner_id = 5 WHERE id = 1") == SQ_ECONSTRAINT); /* the deferred key exists */
  CHECK(sq_plan_alter_fks(c, team, &l, &E) == SQ_OK && l.n == 0);
  sq_sql_list_free(&l);
  /* with the tables there, the live plan cuts the cycle first on MySQL */
  CHECK(sq_plan_drop_all(c, ms, 2, &l, &E) == SQ_OK);
  CHECK(l.n == (d == SQLITE ? 2 : d == MYSQL ? 2 : 1));
  if (d == MYSQL && l.n == 2) CHECK_STR(l.sql[0], "ALTER TABLE `sqa_teams` DROP FOREIGN KEY `sqa_teams_owner_id_fkey`");
  CHECK(run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  /* and the text-only form without IF EXISTS too */
  CHECK(sq_render_create_all(ms, 2, d, 0, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  CHECK(run(c, "INSERT INTO sqa_users (id, name) VALUES (1, 'u')") == SQ_OK);
  CHECK(run(c, "INSERT INTO sqa_teams (id, name, owner_id) VALUES (1, 't', 1)") == SQ_OK);
  CHECK(sq_render_drop_all(ms, 2, d, 0, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);

  /* sync without force, as sqorm.h pictures it: the tables in order,
   * then the keys; a second pass has nothing to do. */
  const sq_model **order;
  int n;
  CHECK(sq_schema_order(ms, 2, &order, &n, &E) == SQ_OK && n == 2);
  for (int pass = 0; pass < 2 && n == 2; pass++) {
    int stmts = 0;
    for (int step = 0; step < 2; step++)
      for (int i = 0; i < n; i++) {
        int rc = step == 0 ? sq_plan_alter(c, order[i], &l, &E) : sq_plan_alter_fks(c, order[i], &l, &E);
        CHECK(rc == SQ_OK);
        stmts += l.n;
        if (d == SQLITE) CHECK(sq_sqlite_run_rebuild(c, &l, &E) == SQ_OK);
        else CHECK(run_list(c, &l) == SQ_OK);
        if (pass == 0 && step == 1) CHECK(l.n == (d != SQLITE && order[i] == team ? 1 : 0)); /* the deferred key */
        sq_sql_list_free(&l);
      }
    CHECK(pass == 0 ? stmts > 0 : stmts == 0);
  }
  free(order);
  CHECK(run(c, "INSERT INTO sqa_teams (id, name, owner_id) VALUES (1, 't', 7)") == SQ_ECONSTRAINT);
  CHECK(sq_plan_drop_all(c, ms, 2, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
out:
  sq_model_free(team);
  sq_model_free(user);
}

static void live(sq_conn *c, int d) {
  printf("live %s\n", sq_dialect_name(d));
  game g;
  if (!game_models(&g)) {
    game_free(&g);
    return;
  }
  sq_model *ms[] = {g.guild, g.player, g.item, g.tag};
  sq_sql_list l = {0};
  CHECK(sq_plan_drop_all(c, ms, 4, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  CHECK(sq_render_create_all(ms, 4, d, 0, &l, &E) == SQ_OK);
  CHECK(run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  /* the live schema has every key: nothing to add */
  for (int i = 0; i < 4; i++) {
    CHECK(sq_plan_alter_fks(c, ms[i], &l, &E) == SQ_OK && l.n == 0);
    sq_sql_list_free(&l);
  }
  CHECK(sq_plan_alter_fks(c, g.tags->through, &l, &E) == SQ_OK && l.n == 0);
  sq_sql_list_free(&l);
  static const char *const data[] = {
      "INSERT INTO sqa_guilds (id, name) VALUES (1, 'red'), (2, 'blue'), (3, 'empty')",
      "INSERT INTO sqa_players (id, name, coins, guild_id) VALUES (1, 'ann', 50, 1), (2, 'bob', 30, 1), "
      "(3, 'cat', 70, 2), (4, 'dan', 10, NULL), (5, 'eve', 90, 1)",
      "INSERT INTO sqa_items (id, kind, power, owner_id) VALUES (1, 'sword', 10, 1), (2, 'shield', 5, 1), "
      "(3, 'bow', 7, 1), (4, 'axe', 12, 1), (5, 'sword', 3, 2), (6, 'wand', 9, 3), (7, 'staff', 9, 3), "
      "(8, 'dagger', 1, 5), (9, 'rock', 0, 4)",
      "INSERT INTO sqa_tags (id, name) VALUES (1, 'pvp'), (2, 'pve'), (3, 'vip')",
      "INSERT INTO sqa_player_tags (player_id, tag_id) VALUES (1, 1), (1, 3), (2, 2), (3, 1), (5, 3)",
      NULL};
  for (int i = 0; data[i]; i++) CHECK(run(c, data[i]) == SQ_OK);
  game_queries(c, d, &g);
  game_actions(c, d);
  CHECK(sq_render_drop_all(ms, 4, d, 0, &l, &E) == SQ_OK && run_list(c, &l) == SQ_OK);
  sq_sql_list_free(&l);
  game_free(&g);
  alter_fks(c, d);
  deferred_cycle(c, d);
}

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && *v ? v : NULL;
}

static sq_pool *open_pool(int dialect, const char *P) {
  char k[64];
  sq_config cfg;
  sq_config_init(&cfg);
  sq_pool *pool = NULL;
  int rc;
  if (dialect == SQLITE) {
    rc = sq_config_parse_url(&cfg, "sqlite::memory:", &E);
  } else {
    static const char *const keys[][2] = {
        {"HOST", "host"}, {"PORT", "port"}, {"USER", "user"}, {"PASSWORD", "password"}, {"DB", "database"}};
    snprintf(k, sizeof k, "SQORM_TEST_%s_HOST", P);
    if (!env(k)) {
      sq_config_free(&cfg);
      return NULL;
    }
    rc = sq_config_set(&cfg, "dialect", dialect == MYSQL ? "mysql" : "postgres", &E);
    for (int i = 0; !rc && i < 5; i++) {
      snprintf(k, sizeof k, "SQORM_TEST_%s_%s", P, keys[i][0]);
      if (env(k)) rc = sq_config_set(&cfg, keys[i][1], env(k), &E);
    }
  }
  if (!rc) rc = sq_config_set(&cfg, "pool.max", "1", &E);
  if (!rc) rc = sq_config_finish(&cfg, &E);
  if (!rc) rc = sq_pool_open(&cfg, &pool, &E);
  sq_config_free(&cfg);
  if (rc) {
    fprintf(stderr, "pool for %s: %s\n", sq_dialect_name(dialect), E.msg);
    check_failures++;
    return NULL;
  }
  return pool;
}

static void test_live(int dialect, const char *P) {
  sq_pool *pool = open_pool(dialect, P);
  if (!pool) {
    const char *req = getenv("SQORM_TEST_REQUIRE_SERVERS");
    printf("live %s: skipped (SQORM_TEST_%s_* not set)\n", sq_dialect_name(dialect), P);
    if (req && !strcmp(req, "1")) {
      fprintf(stderr, "SQORM_TEST_REQUIRE_SERVERS=1 but SQORM_TEST_%s_* are not set\n", P);
      check_failures++;
    }
    return;
  }
  sq_conn *c = NULL;
  if (sq_pool_acquire(pool, 10, &c, &E) != SQ_OK) {
    fprintf(stderr, "acquire %s: %s\n", sq_dialect_name(dialect), E.msg);
    check_failures++;
  } else {
    live(c, dialect);
    sq_pool_release(pool, c);
  }
  sq_pool_close(pool);
}

int main(void) {
  if (sq_global_init(&E) != SQ_OK) {
    fprintf(stderr, "global init: %s\n", E.msg);
    return 1;
  }
  test_create_text();
  test_live(SQLITE, "SQLITE");
  test_live(MYSQL, "MYSQL");
  test_live(PG, "PG");
  return CHECK_DONE();
}
