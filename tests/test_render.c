/* test_render.c - renderer specs: the exact SQL and parameter list of
 * each kind of query on each dialect, without a database. */
#include "sqorm.h"
#include "check.h"

#include <stdarg.h>
#include <stdlib.h>

enum { SQLITE = SQ_DIALECT_SQLITE, MYSQL = SQ_DIALECT_MYSQL, PG = SQ_DIALECT_POSTGRES };

static sq_arena *A;

/* ---- building blocks ---- */

static sq_coldef coldef(const char *name, int type) {
  sq_coldef d;
  memset(&d, 0, sizeof d);
  d.name = name;
  d.type = type;
  d.allow_null = 1;
  d.default_value = sq_null();
  return d;
}

/* players: id, name, coins, goods, created_at, updated_at */
static sq_model *players(void) {
  sq_err e;
  sq_model *m;
  if (sq_model_new("player", NULL, &m, &e)) return NULL;
  sq_coldef d = coldef("name", SQ_T_STRING);
  d.length = 32;
  d.unique = "";
  sq_model_add_column(m, &d, &e);
  d = coldef("coins", SQ_T_INTEGER);
  sq_model_add_column(m, &d, &e);
  d = coldef("goods", SQ_T_INTEGER);
  sq_model_add_column(m, &d, &e);
  if (sq_model_finish(m, &e)) {
    fprintf(stderr, "players: %s\n", e.msg);
    sq_model_free(m);
    return NULL;
  }
  return m;
}

/* posts (paranoid): id, title, created_at, updated_at, deleted_at */
static sq_model *posts(void) {
  sq_err e;
  sq_model *m;
  sq_model_opts o = {NULL, -1, NULL, NULL, 1, NULL, NULL};
  if (sq_model_new("post", &o, &m, &e)) return NULL;
  sq_coldef d = coldef("title", SQ_T_TEXT);
  sq_model_add_column(m, &d, &e);
  if (sq_model_finish(m, &e)) {
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static sq_value *vals(int n, va_list ap) {
  sq_value *v = sq_arena_alloc(A, sizeof *v * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) v[i] = va_arg(ap, sq_value);
  return v;
}

static sq_expr *node(int op) {
  sq_expr *e = sq_arena_alloc(A, sizeof *e);
  memset(e, 0, sizeof *e);
  e->op = op;
  return e;
}

/* A comparison on column c with n values. */
static sq_expr *cmp(int op, int c, int n, ...) {
  sq_expr *e = node(op);
  va_list ap;
  va_start(ap, n);
  e->col = c;
  e->vals = vals(n, ap);
  e->nvals = n;
  va_end(ap);
  return e;
}

/* and/or/not over n kids. */
static sq_expr *logic(int op, int n, ...) {
  sq_expr *e = node(op);
  va_list ap;
  va_start(ap, n);
  e->kids = sq_arena_alloc(A, sizeof *e->kids * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) e->kids[i] = va_arg(ap, sq_expr *);
  e->nkids = n;
  va_end(ap);
  return e;
}

static sq_expr *raw(const char *frag, int n, ...) {
  sq_expr *e = node(SQ_OP_RAW);
  va_list ap;
  va_start(ap, n);
  e->raw = frag;
  e->raw_len = strlen(frag);
  e->vals = vals(n, ap);
  e->nvals = n;
  va_end(ap);
  return e;
}

#define I(x) sq_int(x)
#define T(lit) sq_text(lit, sizeof(lit) - 1)

/* "i:1,s:bob,n,f:1.5,b:1" */
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

static int expect_at(int line, const sq_query *q, int dialect, const char *sql, const char *params) {
  sq_sql s;
  sq_err e;
  sq_err_clear(&e);
  int rc = sq_render(q, dialect, &s, &e);
  CHECK(rc == SQ_OK);
  if (rc) {
    fprintf(stderr, "  line %d (%s): %s\n", line, sq_dialect_name(dialect), e.msg);
    return 0;
  }
  if (strcmp(s.sql, sql) || strcmp(pstr(&s), params)) fprintf(stderr, "  at line %d (%s)\n", line, sq_dialect_name(dialect));
  CHECK_STR(s.sql, sql);
  CHECK(strlen(s.sql) == s.len);
  CHECK_STR(pstr(&s), params);
  int rr = s.returns_rows;
  sq_sql_free(&s);
  return rr;
}
#define EXPECT(q, d, sql, params) expect_at(__LINE__, q, d, sql, params)

static void refuse_at(int line, const sq_query *q, int dialect, const char *msg_part) {
  sq_sql s;
  sq_err e;
  int rc = sq_render(q, dialect, &s, &e);
  CHECK(rc == SQ_EUSAGE);
  CHECK(s.sql == NULL && s.params == NULL);
  if (rc != SQ_EUSAGE || !strstr(e.msg, msg_part))
    fprintf(stderr, "  line %d (%s): rc %d, message \"%s\" lacks \"%s\"\n", line, sq_dialect_name(dialect), rc,
            rc ? e.msg : "", msg_part);
  CHECK(rc == SQ_OK || strstr(e.msg, msg_part) != NULL);
  sq_sql_free(&s);
}
#define REFUSE(q, d, part) refuse_at(__LINE__, q, d, part)

enum { ID, NAME, COINS, GOODS, CREATED, UPDATED };

/* ---- SELECT ---- */

static void test_select(const sq_model *m) {
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, m);

  /* Everything in one where: nested and/or/not, IN, empty IN, BETWEEN,
   * = null, raw with binds; order, limit, offset. */
  q.where = logic(SQ_OP_AND, 7,
                  logic(SQ_OP_OR, 2, cmp(SQ_OP_GT, COINS, 1, I(300)), cmp(SQ_OP_IS_NULL, NAME, 0)),
                  logic(SQ_OP_NOT, 1, cmp(SQ_OP_IN, GOODS, 3, I(1), I(2), I(3))),
                  cmp(SQ_OP_IN, ID, 0),
                  cmp(SQ_OP_NOT_IN, ID, 0),
                  cmp(SQ_OP_BETWEEN, COINS, 2, I(1), I(5)),
                  cmp(SQ_OP_EQ, NAME, 1, sq_null()),
                  raw("coins > ? OR goods < ?", 2, I(10), I(20)));
  sq_order ord[] = {{COINS, 1}, {ID, 0}};
  q.order = ord;
  q.norder = 2;
  q.limit = 10;
  q.offset = 20;
  const char *params = "i:300,i:1,i:2,i:3,i:1,i:5,i:10,i:20,i:10,i:20";
  CHECK(EXPECT(&q, SQLITE,
               "SELECT \"id\", \"name\", \"coins\", \"goods\", \"created_at\", \"updated_at\" FROM \"players\" "
               "WHERE (\"coins\" > ? OR \"name\" IS NULL) AND NOT (\"goods\" IN (?, ?, ?)) AND 1=0 AND 1=1 "
               "AND \"coins\" BETWEEN ? AND ? AND \"name\" IS NULL AND (coins > ? OR goods < ?) "
               "ORDER BY \"coins\" DESC, \"id\" ASC LIMIT ? OFFSET ?",
               params) == 1);
  EXPECT(&q, MYSQL,
         "SELECT `id`, `name`, `coins`, `goods`, `created_at`, `updated_at` FROM `players` "
         "WHERE (`coins` > ? OR `name` IS NULL) AND NOT (`goods` IN (?, ?, ?)) AND 1=0 AND 1=1 "
         "AND `coins` BETWEEN ? AND ? AND `name` IS NULL AND (coins > ? OR goods < ?) "
         "ORDER BY `coins` DESC, `id` ASC LIMIT ? OFFSET ?",
         params);
  EXPECT(&q, PG,
         "SELECT \"id\", \"name\", \"coins\", \"goods\", \"created_at\", \"updated_at\" FROM \"players\" "
         "WHERE (\"coins\" > $1 OR \"name\" IS NULL) AND NOT (\"goods\" IN ($2, $3, $4)) AND 1=0 AND 1=1 "
         "AND \"coins\" BETWEEN $5 AND $6 AND \"name\" IS NULL AND (coins > $7 OR goods < $8) "
         "ORDER BY \"coins\" DESC, \"id\" ASC LIMIT $9 OFFSET $10",
         params);

  /* OR at the top, AND inside it; NE null, NOT BETWEEN, LIKE, the other
   * comparisons; attributes with an alias. */
  sq_query_init(&q, SQ_Q_SELECT, m);
  sq_attr at[] = {{ID, 0, NULL}, {NAME, 0, "player name"}, {COINS, 0, "coins"}};
  q.attrs = at;
  q.nattrs = 3;
  q.where = logic(SQ_OP_OR, 3,
                  logic(SQ_OP_AND, 2, cmp(SQ_OP_NE, NAME, 1, sq_null()), cmp(SQ_OP_LIKE, NAME, 1, T("a%"))),
                  logic(SQ_OP_OR, 2, cmp(SQ_OP_NOT_BETWEEN, COINS, 2, I(0), I(9)), cmp(SQ_OP_NOT_LIKE, NAME, 1, T("%z"))),
                  logic(SQ_OP_AND, 4, cmp(SQ_OP_NE, GOODS, 1, I(1)), cmp(SQ_OP_GTE, GOODS, 1, I(2)),
                        cmp(SQ_OP_LT, GOODS, 1, I(3)), cmp(SQ_OP_LTE, GOODS, 1, I(4))));
  q.limit = 1;
  const char *p2 = "s:a%,i:0,i:9,s:%z,i:1,i:2,i:3,i:4,i:1";
  EXPECT(&q, SQLITE,
         "SELECT \"id\", \"name\" AS \"player name\", \"coins\" FROM \"players\" WHERE (\"name\" IS NOT NULL AND \"name\" LIKE ?) "
         "OR \"coins\" NOT BETWEEN ? AND ? OR \"name\" NOT LIKE ? OR (\"goods\" <> ? AND \"goods\" >= ? AND \"goods\" < ? "
         "AND \"goods\" <= ?) LIMIT ?",
         p2);
  EXPECT(&q, PG,
         "SELECT \"id\", \"name\" AS \"player name\", \"coins\" FROM \"players\" WHERE (\"name\" IS NOT NULL AND \"name\" LIKE $1) "
         "OR \"coins\" NOT BETWEEN $2 AND $3 OR \"name\" NOT LIKE $4 OR (\"goods\" <> $5 AND \"goods\" >= $6 AND \"goods\" < $7 "
         "AND \"goods\" <= $8) LIMIT $9",
         p2);
  EXPECT(&q, MYSQL,
         "SELECT `id`, `name` AS `player name`, `coins` FROM `players` WHERE (`name` IS NOT NULL AND `name` LIKE ?) "
         "OR `coins` NOT BETWEEN ? AND ? OR `name` NOT LIKE ? OR (`goods` <> ? AND `goods` >= ? AND `goods` < ? "
         "AND `goods` <= ?) LIMIT ?",
         p2);

  /* One-kid and/or collapse; empty and/or; not(or). */
  sq_query_init(&q, SQ_Q_SELECT, m);
  sq_attr one[] = {{ID, 0, NULL}};
  q.attrs = one;
  q.nattrs = 1;
  q.where = logic(SQ_OP_AND, 3, logic(SQ_OP_OR, 1, cmp(SQ_OP_EQ, ID, 1, I(1))), logic(SQ_OP_AND, 0),
                  logic(SQ_OP_NOT, 1, logic(SQ_OP_OR, 2, logic(SQ_OP_OR, 0), cmp(SQ_OP_NOT_NULL, COINS, 0))));
  EXPECT(&q, SQLITE, "SELECT \"id\" FROM \"players\" WHERE \"id\" = ? AND 1=1 AND NOT (1=0 OR \"coins\" IS NOT NULL)", "i:1");

  /* Raw fragments: ? inside literals, quoted names and comments is text;
   * postgres numbering continues from the surrounding where. */
  q.where = logic(SQ_OP_AND, 2, cmp(SQ_OP_GT, COINS, 1, I(1)),
                  raw("name <> '?' AND \"goods?\" = ? -- ?\n OR coins = ? /* ? */", 2, I(2), I(3)));
  EXPECT(&q, PG, "SELECT \"id\" FROM \"players\" WHERE \"coins\" > $1 AND (name <> '?' AND \"goods?\" = $2 -- ?\n OR coins = $3 /* ? */)",
         "i:1,i:2,i:3");
  EXPECT(&q, MYSQL, "SELECT `id` FROM `players` WHERE `coins` > ? AND (name <> '?' AND \"goods?\" = ? -- ?\n OR coins = ? /* ? */)",
         "i:1,i:2,i:3");
  /* MySQL strings take backslash escapes: \' does not end the literal. */
  q.where = raw("name = 'it\\'s ?' AND coins = ?", 1, I(5));
  EXPECT(&q, MYSQL, "SELECT `id` FROM `players` WHERE (name = 'it\\'s ?' AND coins = ?)", "i:5");

  /* Offset without limit, limit 0. */
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.attrs = one;
  q.nattrs = 1;
  q.offset = 5;
  EXPECT(&q, SQLITE, "SELECT \"id\" FROM \"players\" LIMIT -1 OFFSET ?", "i:5");
  EXPECT(&q, MYSQL, "SELECT `id` FROM `players` LIMIT 18446744073709551615 OFFSET ?", "i:5");
  EXPECT(&q, PG, "SELECT \"id\" FROM \"players\" OFFSET $1", "i:5");
  q.offset = -1;
  q.limit = 0;
  EXPECT(&q, PG, "SELECT \"id\" FROM \"players\" LIMIT $1", "i:0");

  /* Locks. */
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.attrs = one;
  q.nattrs = 1;
  q.where = cmp(SQ_OP_EQ, ID, 1, I(7));
  q.limit = 1;
  q.lock = SQ_LOCK_UPDATE;
  EXPECT(&q, SQLITE, "SELECT \"id\" FROM \"players\" WHERE \"id\" = ? LIMIT ?", "i:7,i:1");
  EXPECT(&q, MYSQL, "SELECT `id` FROM `players` WHERE `id` = ? LIMIT ? FOR UPDATE", "i:7,i:1");
  EXPECT(&q, PG, "SELECT \"id\" FROM \"players\" WHERE \"id\" = $1 LIMIT $2 FOR UPDATE", "i:7,i:1");
  q.lock = SQ_LOCK_SHARE;
  EXPECT(&q, SQLITE, "SELECT \"id\" FROM \"players\" WHERE \"id\" = ? LIMIT ?", "i:7,i:1");
  EXPECT(&q, MYSQL, "SELECT `id` FROM `players` WHERE `id` = ? LIMIT ? LOCK IN SHARE MODE", "i:7,i:1");
  EXPECT(&q, PG, "SELECT \"id\" FROM \"players\" WHERE \"id\" = $1 LIMIT $2 FOR SHARE", "i:7,i:1");

  /* Group and having with aggregate attributes. */
  sq_query_init(&q, SQ_Q_SELECT, m);
  sq_attr ga[] = {{GOODS, 0, NULL}, {-1, SQ_FN_COUNT, "n"}, {COINS, SQ_FN_SUM, NULL}, {COINS, SQ_FN_AVG, "avg coins"}};
  q.attrs = ga;
  q.nattrs = 4;
  int grp[] = {GOODS};
  q.group = grp;
  q.ngroup = 1;
  q.having = raw("count(*) > ?", 1, I(2));
  sq_order go[] = {{GOODS, 0}};
  q.order = go;
  q.norder = 1;
  EXPECT(&q, SQLITE,
         "SELECT \"goods\", count(*) AS \"n\", sum(\"coins\") AS sum, avg(\"coins\") AS \"avg coins\" FROM \"players\" "
         "GROUP BY \"goods\" HAVING (count(*) > ?) ORDER BY \"goods\" ASC",
         "i:2");
  EXPECT(&q, MYSQL,
         "SELECT `goods`, count(*) AS `n`, sum(`coins`) AS sum, avg(`coins`) AS `avg coins` FROM `players` "
         "GROUP BY `goods` HAVING (count(*) > ?) ORDER BY `goods` ASC",
         "i:2");
  q.where = cmp(SQ_OP_GT, COINS, 1, I(0));
  EXPECT(&q, PG,
         "SELECT \"goods\", count(*) AS \"n\", sum(\"coins\") AS sum, avg(\"coins\") AS \"avg coins\" FROM \"players\" "
         "WHERE \"coins\" > $1 GROUP BY \"goods\" HAVING (count(*) > $2) ORDER BY \"goods\" ASC",
         "i:0,i:2");
}

/* ---- COUNT and aggregates ---- */

static void test_count(const sq_model *m) {
  sq_query q;
  sq_query_init(&q, SQ_Q_COUNT, m);
  CHECK(EXPECT(&q, SQLITE, "SELECT count(*) AS count FROM \"players\"", "") == 1);
  q.where = cmp(SQ_OP_BETWEEN, GOODS, 2, I(1), I(5));
  EXPECT(&q, SQLITE, "SELECT count(*) AS count FROM \"players\" WHERE \"goods\" BETWEEN ? AND ?", "i:1,i:5");
  EXPECT(&q, MYSQL, "SELECT count(*) AS count FROM `players` WHERE `goods` BETWEEN ? AND ?", "i:1,i:5");
  EXPECT(&q, PG, "SELECT count(*) AS count FROM \"players\" WHERE \"goods\" BETWEEN $1 AND $2", "i:1,i:5");
  int grp[] = {GOODS};
  q.group = grp;
  q.ngroup = 1;
  EXPECT(&q, PG, "SELECT \"goods\", count(*) AS count FROM \"players\" WHERE \"goods\" BETWEEN $1 AND $2 GROUP BY \"goods\"",
         "i:1,i:5");

  static const struct { int fn; const char *sqlite, *mysql, *pg; } aggs[] = {
    {SQ_FN_SUM, "SELECT sum(\"coins\") AS sum FROM \"players\" WHERE \"coins\" > ?",
     "SELECT sum(`coins`) AS sum FROM `players` WHERE `coins` > ?",
     "SELECT sum(\"coins\") AS sum FROM \"players\" WHERE \"coins\" > $1"},
    {SQ_FN_MIN, "SELECT min(\"coins\") AS min FROM \"players\" WHERE \"coins\" > ?",
     "SELECT min(`coins`) AS min FROM `players` WHERE `coins` > ?",
     "SELECT min(\"coins\") AS min FROM \"players\" WHERE \"coins\" > $1"},
    {SQ_FN_MAX, "SELECT max(\"coins\") AS max FROM \"players\" WHERE \"coins\" > ?",
     "SELECT max(`coins`) AS max FROM `players` WHERE `coins` > ?",
     "SELECT max(\"coins\") AS max FROM \"players\" WHERE \"coins\" > $1"},
    {SQ_FN_AVG, "SELECT avg(\"coins\") AS avg FROM \"players\" WHERE \"coins\" > ?",
     "SELECT avg(`coins`) AS avg FROM `players` WHERE `coins` > ?",
     "SELECT avg(\"coins\") AS avg FROM \"players\" WHERE \"coins\" > $1"},
    {SQ_FN_COUNT, "SELECT count(\"coins\") AS count FROM \"players\" WHERE \"coins\" > ?",
     "SELECT count(`coins`) AS count FROM `players` WHERE `coins` > ?",
     "SELECT count(\"coins\") AS count FROM \"players\" WHERE \"coins\" > $1"},
  };
  for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++) {
    sq_query_init(&q, SQ_Q_AGGREGATE, m);
    q.agg_fn = aggs[i].fn;
    q.agg_col = COINS;
    q.where = cmp(SQ_OP_GT, COINS, 1, I(300));
    EXPECT(&q, SQLITE, aggs[i].sqlite, "i:300");
    EXPECT(&q, MYSQL, aggs[i].mysql, "i:300");
    EXPECT(&q, PG, aggs[i].pg, "i:300");
  }
  sq_query_init(&q, SQ_Q_AGGREGATE, m);
  q.agg_fn = SQ_FN_SUM; /* agg_col left at -1 */
  REFUSE(&q, SQLITE, "sum");
  q.agg_fn = SQ_FN_NONE;
  q.agg_col = COINS;
  REFUSE(&q, SQLITE, "aggregate");
  sq_query_init(&q, SQ_Q_COUNT, m);
  q.lock = SQ_LOCK_UPDATE;
  REFUSE(&q, PG, "lock");
}

/* ---- writes ---- */

static void test_insert(const sq_model *m) {
  sq_query q;
  sq_query_init(&q, SQ_Q_INSERT, m);
  int cols[] = {NAME, COINS, GOODS};
  sq_value v[] = {T("ann"), I(1), I(2), T("bob"), I(3), sq_null()};
  q.cols = cols;
  q.ncols = 3;
  q.values = v;
  q.nrows = 2;
  const char *p = "s:ann,i:1,i:2,s:bob,i:3,n";
  CHECK(EXPECT(&q, SQLITE, "INSERT INTO \"players\" (\"name\", \"coins\", \"goods\") VALUES (?, ?, ?), (?, ?, ?)", p) == 0);
  EXPECT(&q, MYSQL, "INSERT INTO `players` (`name`, `coins`, `goods`) VALUES (?, ?, ?), (?, ?, ?)", p);
  EXPECT(&q, PG, "INSERT INTO \"players\" (\"name\", \"coins\", \"goods\") VALUES ($1, $2, $3), ($4, $5, $6)", p);
  q.returning = 1;
  CHECK(EXPECT(&q, SQLITE,
               "INSERT INTO \"players\" (\"name\", \"coins\", \"goods\") VALUES (?, ?, ?), (?, ?, ?) "
               "RETURNING \"id\", \"name\", \"coins\", \"goods\", \"created_at\", \"updated_at\"",
               p) == 1);
  CHECK(EXPECT(&q, PG,
               "INSERT INTO \"players\" (\"name\", \"coins\", \"goods\") VALUES ($1, $2, $3), ($4, $5, $6) "
               "RETURNING \"id\", \"name\", \"coins\", \"goods\", \"created_at\", \"updated_at\"",
               p) == 1);
  /* MySQL has no RETURNING: the binding reads last_insert_id. */
  CHECK(EXPECT(&q, MYSQL, "INSERT INTO `players` (`name`, `coins`, `goods`) VALUES (?, ?, ?), (?, ?, ?)", p) == 0);

  /* SQ_RETURNING_UNSET (issue 15): only what the INSERT leaves to the
   * database comes back; nothing at all when it sets every column. */
  q.returning = SQ_RETURNING_UNSET;
  CHECK(EXPECT(&q, PG,
               "INSERT INTO \"players\" (\"name\", \"coins\", \"goods\") VALUES ($1, $2, $3), ($4, $5, $6) "
               "RETURNING \"id\", \"created_at\", \"updated_at\"",
               p) == 1);
  q.caps = SQ_CAP_INSERT_RETURNING; /* MariaDB >= 10.5 */
  CHECK(EXPECT(&q, MYSQL,
               "INSERT INTO `players` (`name`, `coins`, `goods`) VALUES (?, ?, ?), (?, ?, ?) "
               "RETURNING `id`, `created_at`, `updated_at`",
               p) == 1);
  q.caps = 0;
  int every[] = {ID, NAME, COINS, GOODS, CREATED, UPDATED};
  sq_value all[] = {I(7), T("cy"), I(1), I(2), T("2024-01-01 00:00:00"), T("2024-01-01 00:00:00")};
  q.cols = every;
  q.ncols = 6;
  q.values = all;
  q.nrows = 1;
  CHECK(EXPECT(&q, PG,
               "INSERT INTO \"players\" (\"id\", \"name\", \"coins\", \"goods\", \"created_at\", \"updated_at\") "
               "VALUES ($1, $2, $3, $4, $5, $6)",
               "i:7,s:cy,i:1,i:2,s:2024-01-01 00:00:00,s:2024-01-01 00:00:00") == 0);
  /* an upsert may keep the stored row's other columns: all of them */
  q.kind = SQ_Q_UPSERT;
  q.cols = cols;
  q.ncols = 3;
  q.values = v;
  sq_sql us;
  sq_err ue;
  CHECK(sq_render(&q, PG, &us, &ue) == SQ_OK);
  CHECK(us.sql && strstr(us.sql, "RETURNING \"id\", \"name\", \"coins\", \"goods\", \"created_at\", \"updated_at\"") != NULL);
  sq_sql_free(&us);

  /* No columns: defaults only. */
  sq_query_init(&q, SQ_Q_INSERT, m);
  q.nrows = 1;
  EXPECT(&q, SQLITE, "INSERT INTO \"players\" DEFAULT VALUES", "");
  EXPECT(&q, PG, "INSERT INTO \"players\" DEFAULT VALUES", "");
  EXPECT(&q, MYSQL, "INSERT INTO `players` () VALUES ()", "");
  q.nrows = 2;
  EXPECT(&q, MYSQL, "INSERT INTO `players` () VALUES (), ()", "");
  REFUSE(&q, PG, "several rows");

  /* Bad inserts. */
  sq_query_init(&q, SQ_Q_INSERT, m);
  int dup[] = {NAME, NAME};
  q.cols = dup;
  q.ncols = 2;
  q.values = v;
  q.nrows = 1;
  REFUSE(&q, SQLITE, "appears twice");
  int out[] = {NAME, 42};
  q.cols = out;
  REFUSE(&q, SQLITE, "column index 42");
  q.cols = cols;
  q.nrows = 0;
  REFUSE(&q, SQLITE, "no rows");
}

static void test_upsert(const sq_model *m) {
  sq_query q;
  sq_query_init(&q, SQ_Q_UPSERT, m);
  int cols[] = {ID, NAME, COINS, CREATED, UPDATED};
  sq_value v[] = {I(6), T("cat"), I(600), T("2024-01-01 00:00:00"), T("2024-01-02 00:00:00")};
  q.cols = cols;
  q.ncols = 5;
  q.values = v;
  q.nrows = 1;
  const char *p = "i:6,s:cat,i:600,s:2024-01-01 00:00:00,s:2024-01-02 00:00:00";
  EXPECT(&q, MYSQL,
         "INSERT INTO `players` (`id`, `name`, `coins`, `created_at`, `updated_at`) VALUES (?, ?, ?, ?, ?) "
         "ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `coins` = VALUES(`coins`), `updated_at` = VALUES(`updated_at`)",
         p);
  EXPECT(&q, PG,
         "INSERT INTO \"players\" (\"id\", \"name\", \"coins\", \"created_at\", \"updated_at\") VALUES ($1, $2, $3, $4, $5) "
         "ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\", \"coins\" = EXCLUDED.\"coins\", "
         "\"updated_at\" = EXCLUDED.\"updated_at\"",
         p);
  q.returning = 1;
  CHECK(EXPECT(&q, SQLITE,
               "INSERT INTO \"players\" (\"id\", \"name\", \"coins\", \"created_at\", \"updated_at\") VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\", \"coins\" = EXCLUDED.\"coins\", "
               "\"updated_at\" = EXCLUDED.\"updated_at\" "
               "RETURNING \"id\", \"name\", \"coins\", \"goods\", \"created_at\", \"updated_at\"",
               p) == 1);

  /* A unique key as the conflict target, explicit update columns. */
  sq_query_init(&q, SQ_Q_UPSERT, m);
  int c2[] = {NAME, COINS, GOODS};
  sq_value v2[] = {T("cat"), I(1), I(2), T("dog"), I(3), I(4)};
  int conf[] = {NAME}, upd[] = {COINS};
  q.cols = c2;
  q.ncols = 3;
  q.values = v2;
  q.nrows = 2;
  q.conflict_cols = conf;
  q.nconflict = 1;
  EXPECT(&q, PG,
         "INSERT INTO \"players\" (\"name\", \"coins\", \"goods\") VALUES ($1, $2, $3), ($4, $5, $6) "
         "ON CONFLICT (\"name\") DO UPDATE SET \"coins\" = EXCLUDED.\"coins\", \"goods\" = EXCLUDED.\"goods\"",
         "s:cat,i:1,i:2,s:dog,i:3,i:4");
  q.update_cols = upd;
  q.nupdate = 1;
  EXPECT(&q, SQLITE,
         "INSERT INTO \"players\" (\"name\", \"coins\", \"goods\") VALUES (?, ?, ?), (?, ?, ?) "
         "ON CONFLICT (\"name\") DO UPDATE SET \"coins\" = EXCLUDED.\"coins\"",
         "s:cat,i:1,i:2,s:dog,i:3,i:4");
  EXPECT(&q, MYSQL,
         "INSERT INTO `players` (`name`, `coins`, `goods`) VALUES (?, ?, ?), (?, ?, ?) "
         "ON DUPLICATE KEY UPDATE `coins` = VALUES(`coins`)",
         "s:cat,i:1,i:2,s:dog,i:3,i:4");
  int notins[] = {ID};
  q.update_cols = notins;
  REFUSE(&q, PG, "not among the inserted columns");

  /* Only key columns: keep the row. */
  sq_query_init(&q, SQ_Q_UPSERT, m);
  int keyonly[] = {ID};
  sq_value kv[] = {I(9)};
  q.cols = keyonly;
  q.ncols = 1;
  q.values = kv;
  q.nrows = 1;
  EXPECT(&q, PG, "INSERT INTO \"players\" (\"id\") VALUES ($1) ON CONFLICT (\"id\") DO NOTHING", "i:9");
  EXPECT(&q, MYSQL, "INSERT INTO `players` (`id`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = `id`", "i:9");
}

static void test_update_delete(const sq_model *m, const sq_model *pm) {
  sq_query q;
  sq_query_init(&q, SQ_Q_UPDATE, m);
  int cols[] = {NAME, UPDATED};
  sq_value v[] = {T("bob"), T("2024-01-01 00:00:00")};
  int inc[] = {COINS, GOODS};
  sq_value iv[] = {I(5), I(-1)};
  q.cols = cols;
  q.ncols = 2;
  q.values = v;
  q.nrows = 1;
  q.incr_cols = inc;
  q.incr_values = iv;
  q.nincr = 2;
  q.where = cmp(SQ_OP_EQ, ID, 1, I(6));
  const char *p = "s:bob,s:2024-01-01 00:00:00,i:5,i:-1,i:6";
  CHECK(EXPECT(&q, SQLITE,
               "UPDATE \"players\" SET \"name\" = ?, \"updated_at\" = ?, \"coins\" = \"coins\" + ?, \"goods\" = \"goods\" + ? "
               "WHERE \"id\" = ?",
               p) == 0);
  EXPECT(&q, MYSQL, "UPDATE `players` SET `name` = ?, `updated_at` = ?, `coins` = `coins` + ?, `goods` = `goods` + ? WHERE `id` = ?", p);
  EXPECT(&q, PG,
         "UPDATE \"players\" SET \"name\" = $1, \"updated_at\" = $2, \"coins\" = \"coins\" + $3, \"goods\" = \"goods\" + $4 "
         "WHERE \"id\" = $5",
         p);
  /* Increments only, no where. */
  q.ncols = 0;
  q.where = NULL;
  EXPECT(&q, PG, "UPDATE \"players\" SET \"coins\" = \"coins\" + $1, \"goods\" = \"goods\" + $2", "i:5,i:-1");
  q.ncols = 1;
  q.cols = inc;
  REFUSE(&q, PG, "both set and incremented");
  q.ncols = 0;
  q.nincr = 0;
  REFUSE(&q, PG, "nothing to set");

  /* Paranoid: the filter is ANDed on, and an OR where is parenthesised. */
  sq_query_init(&q, SQ_Q_UPDATE, pm);
  int tcol[] = {1};
  sq_value tv[] = {T("new")};
  q.cols = tcol;
  q.ncols = 1;
  q.values = tv;
  q.nrows = 1;
  q.where = logic(SQ_OP_OR, 2, cmp(SQ_OP_EQ, 0, 1, I(1)), cmp(SQ_OP_EQ, 0, 1, I(2)));
  EXPECT(&q, PG, "UPDATE \"posts\" SET \"title\" = $1 WHERE (\"id\" = $2 OR \"id\" = $3) AND \"deleted_at\" IS NULL",
         "s:new,i:1,i:2");
  EXPECT(&q, MYSQL, "UPDATE `posts` SET `title` = ? WHERE (`id` = ? OR `id` = ?) AND `deleted_at` IS NULL", "s:new,i:1,i:2");
  q.paranoid = 0;
  EXPECT(&q, SQLITE, "UPDATE \"posts\" SET \"title\" = ? WHERE \"id\" = ? OR \"id\" = ?", "s:new,i:1,i:2");

  /* DELETE. */
  sq_query_init(&q, SQ_Q_DELETE, m);
  q.where = cmp(SQ_OP_IN, ID, 3, I(1), I(2), I(3));
  CHECK(EXPECT(&q, SQLITE, "DELETE FROM \"players\" WHERE \"id\" IN (?, ?, ?)", "i:1,i:2,i:3") == 0);
  EXPECT(&q, MYSQL, "DELETE FROM `players` WHERE `id` IN (?, ?, ?)", "i:1,i:2,i:3");
  EXPECT(&q, PG, "DELETE FROM \"players\" WHERE \"id\" IN ($1, $2, $3)", "i:1,i:2,i:3");
  q.where = NULL;
  EXPECT(&q, PG, "DELETE FROM \"players\"", "");
  q.limit = 1;
  REFUSE(&q, MYSQL, "apply to queries that read");
  q.limit = -1;
  q.lock = SQ_LOCK_UPDATE;
  REFUSE(&q, MYSQL, "lock");
  /* A paranoid model's hard delete: filtered unless paranoid = 0. */
  sq_query_init(&q, SQ_Q_DELETE, pm);
  q.where = cmp(SQ_OP_EQ, 0, 1, I(4));
  EXPECT(&q, SQLITE, "DELETE FROM \"posts\" WHERE \"id\" = ? AND \"deleted_at\" IS NULL", "i:4");
  q.paranoid = 0;
  EXPECT(&q, SQLITE, "DELETE FROM \"posts\" WHERE \"id\" = ?", "i:4");

  /* Paranoid SELECT and COUNT. */
  sq_query_init(&q, SQ_Q_SELECT, pm);
  EXPECT(&q, PG, "SELECT \"id\", \"title\", \"created_at\", \"updated_at\", \"deleted_at\" FROM \"posts\" WHERE \"deleted_at\" IS NULL", "");
  q.where = logic(SQ_OP_AND, 2, cmp(SQ_OP_GT, 0, 1, I(1)), cmp(SQ_OP_LIKE, 1, 1, T("a%")));
  EXPECT(&q, MYSQL,
         "SELECT `id`, `title`, `created_at`, `updated_at`, `deleted_at` FROM `posts` WHERE `id` > ? AND `title` LIKE ? "
         "AND `deleted_at` IS NULL",
         "i:1,s:a%");
  q.paranoid = 0;
  EXPECT(&q, MYSQL, "SELECT `id`, `title`, `created_at`, `updated_at`, `deleted_at` FROM `posts` WHERE `id` > ? AND `title` LIKE ?",
         "i:1,s:a%");
  sq_query_init(&q, SQ_Q_COUNT, pm);
  EXPECT(&q, PG, "SELECT count(*) AS count FROM \"posts\" WHERE \"deleted_at\" IS NULL", "");
}

/* ---- hostile names and bad trees ---- */

static void test_hostile(void) {
  sq_err e;
  sq_model *m;
  sq_model_opts o = {"a\"b`c", 0, NULL, NULL, 0, NULL, NULL};
  CHECK(sq_model_new("x; DROP TABLE y", &o, &m, &e) == SQ_OK);
  sq_coldef d = coldef("a`b", SQ_T_INTEGER);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d = coldef("order", SQ_T_TEXT);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  d = coldef("x\"; DROP TABLE y; --", SQ_T_TEXT);
  CHECK(sq_model_add_column(m, &d, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.where = cmp(SQ_OP_EQ, 3, 1, T("'; DROP TABLE y; --"));
  EXPECT(&q, PG, "SELECT \"id\", \"a`b\", \"order\", \"x\"\"; DROP TABLE y; --\" FROM \"a\"\"b`c\" WHERE \"x\"\"; DROP TABLE y; --\" = $1",
         "s:'; DROP TABLE y; --");
  EXPECT(&q, MYSQL, "SELECT `id`, `a``b`, `order`, `x\"; DROP TABLE y; --` FROM `a\"b``c` WHERE `x\"; DROP TABLE y; --` = ?",
         "s:'; DROP TABLE y; --");
  /* Aliases are checked and quoted too. */
  sq_attr al[] = {{1, 0, "x\" FROM t; --"}};
  q.attrs = al;
  q.nattrs = 1;
  q.where = NULL;
  EXPECT(&q, SQLITE, "SELECT \"a`b\" AS \"x\"\" FROM t; --\" FROM \"a\"\"b`c\"", "");
  sq_attr bad[] = {{1, 0, "x\n"}};
  q.attrs = bad;
  REFUSE(&q, SQLITE, "control character");
  sq_model_free(m);

  /* A name MySQL can't take is refused there and fine elsewhere. */
  o.table_name = "trailing ";
  CHECK(sq_model_new("t", &o, &m, &e) == SQ_OK);
  CHECK(sq_model_finish(m, &e) == SQ_OK);
  sq_query_init(&q, SQ_Q_COUNT, m);
  EXPECT(&q, PG, "SELECT count(*) AS count FROM \"trailing \"", "");
  REFUSE(&q, MYSQL, "MySQL");
  sq_model_free(m);

  /* An unfinished model. */
  CHECK(sq_model_new("t", NULL, &m, &e) == SQ_OK);
  sq_query_init(&q, SQ_Q_SELECT, m);
  REFUSE(&q, SQLITE, "not finished");
  sq_model_free(m);
}

static void test_bad_trees(const sq_model *m) {
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.where = raw("coins > ? AND goods > ?", 1, I(1));
  REFUSE(&q, PG, "2 placeholders but 1 value");
  q.where = raw("coins > 1", 1, I(1));
  REFUSE(&q, SQLITE, "0 placeholders but 1 value");
  q.where = cmp(SQ_OP_GT, 99, 1, I(1));
  REFUSE(&q, SQLITE, "column index 99");
  q.where = cmp(SQ_OP_GT, -1, 1, I(1));
  REFUSE(&q, SQLITE, "column index -1");
  q.where = cmp(SQ_OP_GT, COINS, 1, sq_null());
  REFUSE(&q, SQLITE, "null");
  q.where = cmp(SQ_OP_BETWEEN, COINS, 1, I(1));
  REFUSE(&q, SQLITE, "takes 2 values");
  q.where = cmp(99, COINS, 1, I(1));
  REFUSE(&q, SQLITE, "unknown operator");
  q.where = logic(SQ_OP_NOT, 2, cmp(SQ_OP_IS_NULL, ID, 0), cmp(SQ_OP_IS_NULL, ID, 0));
  REFUSE(&q, SQLITE, "exactly one");
  /* Deep nesting is refused, not a stack overflow. */
  sq_expr *e = cmp(SQ_OP_IS_NULL, ID, 0);
  for (int i = 0; i < 5000; i++) e = logic(SQ_OP_NOT, 1, e);
  q.where = e;
  REFUSE(&q, SQLITE, "nested");
  q.where = NULL;
  q.limit = -5;
  REFUSE(&q, SQLITE, "non-negative");
  q.limit = -1;
  q.lock = 7;
  REFUSE(&q, SQLITE, "lock");
  q.lock = 0;
  sq_attr none[1];
  q.attrs = none;
  q.nattrs = 0;
  REFUSE(&q, SQLITE, "empty");

  /* Huge IN lists: within each dialect's limit, rendered; beyond, refused. */
  int n = 40000;
  sq_value *many = malloc(sizeof *many * 70000);
  for (int i = 0; i < 70000; i++) many[i] = sq_int(i);
  sq_expr in = {SQ_OP_IN, ID, many, n, NULL, 0, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL};
  sq_query_init(&q, SQ_Q_SELECT, m);
  q.where = &in;
  REFUSE(&q, SQLITE, "at most 32766");
  sq_sql s;
  sq_err err;
  CHECK(sq_render(&q, PG, &s, &err) == SQ_OK);
  CHECK(s.nparams == n && strstr(s.sql, "$40000)") != NULL);
  sq_sql_free(&s);
  CHECK(sq_render(&q, MYSQL, &s, &err) == SQ_OK);
  CHECK(s.nparams == n);
  sq_sql_free(&s);
  in.nvals = 70000;
  REFUSE(&q, PG, "at most 65535");
  free(many);

  /* Bad arguments. */
  CHECK(sq_render(NULL, SQLITE, &s, &err) == SQ_EUSAGE);
  sq_query_init(&q, SQ_Q_SELECT, m);
  CHECK(sq_render(&q, 42, &s, &err) == SQ_EUSAGE);
  q.kind = 99;
  REFUSE(&q, SQLITE, "unknown query kind");
  sq_sql_free(NULL);
}

/* ---- DECIMAL: exact forms on SQLite and MySQL ---- */

/* items: id, price DECIMAL(30,2), tag (no timestamps) */
static sq_model *items(void) {
  sq_err e;
  sq_model *m;
  sq_model_opts o = {NULL, 0, NULL, NULL, 0, NULL, NULL};
  if (sq_model_new("item", &o, &m, &e)) return NULL;
  sq_coldef d = coldef("price", SQ_T_DECIMAL);
  d.precision = 30;
  d.scale = 2;
  sq_model_add_column(m, &d, &e);
  d = coldef("tag", SQ_T_STRING);
  sq_model_add_column(m, &d, &e);
  if (sq_model_finish(m, &e)) {
    fprintf(stderr, "items: %s\n", e.msg);
    sq_model_free(m);
    return NULL;
  }
  return m;
}

enum { IID, PRICE, TAG };

/*
 * SQLite: comparisons, ORDER BY and GROUP BY of a DECIMAL column under
 * the exact collation, LIKE and IS NULL left alone; sum/avg through the
 * exact functions, min/max under the collation; values written through
 * sqorm_dnorm at the column's precision and scale, increments through
 * sqorm_dadd. MySQL: values compared with or added to a DECIMAL are cast
 * to it (MySQL would compare a string with it as doubles). PostgreSQL:
 * unchanged. Other columns: unchanged everywhere.
 */
static void test_decimal(void) {
  sq_model *m = items();
  CHECK(m != NULL);
  if (!m) return;
  sq_query q;
  sq_query_init(&q, SQ_Q_SELECT, m);
  sq_attr one[] = {{IID, 0, NULL}};
  q.attrs = one;
  q.nattrs = 1;
  q.where = logic(SQ_OP_AND, 9, cmp(SQ_OP_EQ, PRICE, 1, T("1.5")), cmp(SQ_OP_NE, PRICE, 1, T("2")),
                  cmp(SQ_OP_GT, PRICE, 1, T("3")), cmp(SQ_OP_LTE, PRICE, 1, T("4")),
                  cmp(SQ_OP_BETWEEN, PRICE, 2, T("5"), T("6")), cmp(SQ_OP_NOT_IN, PRICE, 2, T("7"), T("8")),
                  cmp(SQ_OP_LIKE, PRICE, 1, T("9%")), cmp(SQ_OP_IS_NULL, PRICE, 0), cmp(SQ_OP_EQ, TAG, 1, T("x")));
  sq_order ord[] = {{PRICE, 1}, {TAG, 0}};
  q.order = ord;
  q.norder = 2;
  const char *p = "s:1.5,s:2,s:3,s:4,s:5,s:6,s:7,s:8,s:9%,s:x";
  EXPECT(&q, SQLITE,
         "SELECT \"id\" FROM \"items\" WHERE \"price\" COLLATE sqorm_decimal = ? AND \"price\" COLLATE sqorm_decimal <> ? "
         "AND \"price\" COLLATE sqorm_decimal > ? AND \"price\" COLLATE sqorm_decimal <= ? "
         "AND \"price\" COLLATE sqorm_decimal BETWEEN ? AND ? AND \"price\" COLLATE sqorm_decimal NOT IN (?, ?) "
         "AND \"price\" LIKE ? AND \"price\" IS NULL AND \"tag\" = ? "
         "ORDER BY \"price\" COLLATE sqorm_decimal DESC, \"tag\" ASC",
         p);
  EXPECT(&q, MYSQL,
         "SELECT `id` FROM `items` WHERE `price` = CAST(? AS DECIMAL(30,2)) AND `price` <> CAST(? AS DECIMAL(30,2)) "
         "AND `price` > CAST(? AS DECIMAL(30,2)) AND `price` <= CAST(? AS DECIMAL(30,2)) "
         "AND `price` BETWEEN CAST(? AS DECIMAL(30,2)) AND CAST(? AS DECIMAL(30,2)) "
         "AND `price` NOT IN (CAST(? AS DECIMAL(30,2)), CAST(? AS DECIMAL(30,2))) "
         "AND `price` LIKE ? AND `price` IS NULL AND `tag` = ? ORDER BY `price` DESC, `tag` ASC",
         p);
  EXPECT(&q, PG,
         "SELECT \"id\" FROM \"items\" WHERE \"price\" = $1 AND \"price\" <> $2 AND \"price\" > $3 AND \"price\" <= $4 "
         "AND \"price\" BETWEEN $5 AND $6 AND \"price\" NOT IN ($7, $8) AND \"price\" LIKE $9 AND \"price\" IS NULL "
         "AND \"tag\" = $10 ORDER BY \"price\" DESC, \"tag\" ASC",
         p);

  /* group by / having / aggregate attributes: the select list keeps the
   * plain column (its name is the result key) */
  sq_query_init(&q, SQ_Q_SELECT, m);
  sq_attr ga[] = {{PRICE, 0, NULL}, {PRICE, SQ_FN_SUM, NULL}, {PRICE, SQ_FN_AVG, "mean"}, {PRICE, SQ_FN_MIN, NULL},
                  {PRICE, SQ_FN_MAX, NULL}, {PRICE, SQ_FN_COUNT, NULL}};
  q.attrs = ga;
  q.nattrs = 6;
  int grp[] = {PRICE};
  q.group = grp;
  q.ngroup = 1;
  q.having = cmp(SQ_OP_GTE, PRICE, 1, T("1"));
  EXPECT(&q, SQLITE,
         "SELECT \"price\", sqorm_dsum(\"price\") AS sum, sqorm_davg(\"price\") AS \"mean\", "
         "min(\"price\" COLLATE sqorm_decimal) AS min, max(\"price\" COLLATE sqorm_decimal) AS max, "
         "count(\"price\") AS count FROM \"items\" GROUP BY \"price\" COLLATE sqorm_decimal "
         "HAVING \"price\" COLLATE sqorm_decimal >= ?",
         "s:1");
  EXPECT(&q, PG,
         "SELECT \"price\", sum(\"price\") AS sum, avg(\"price\") AS \"mean\", min(\"price\") AS min, "
         "max(\"price\") AS max, count(\"price\") AS count FROM \"items\" GROUP BY \"price\" HAVING \"price\" >= $1",
         "s:1");
  sq_query_init(&q, SQ_Q_COUNT, m);
  q.group = grp;
  q.ngroup = 1;
  EXPECT(&q, SQLITE, "SELECT \"price\", count(*) AS count FROM \"items\" GROUP BY \"price\" COLLATE sqorm_decimal", "");
  static const struct { int fn; const char *sqlite; } aggs[] = {
    {SQ_FN_SUM, "SELECT sqorm_dsum(\"price\") AS sum FROM \"items\""},
    {SQ_FN_AVG, "SELECT sqorm_davg(\"price\") AS avg FROM \"items\""},
    {SQ_FN_MIN, "SELECT min(\"price\" COLLATE sqorm_decimal) AS min FROM \"items\""},
    {SQ_FN_MAX, "SELECT max(\"price\" COLLATE sqorm_decimal) AS max FROM \"items\""},
  };
  for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++) {
    sq_query_init(&q, SQ_Q_AGGREGATE, m);
    q.agg_fn = aggs[i].fn;
    q.agg_col = PRICE;
    EXPECT(&q, SQLITE, aggs[i].sqlite, "");
  }
  sq_query_init(&q, SQ_Q_AGGREGATE, m);
  q.agg_fn = SQ_FN_SUM;
  q.agg_col = PRICE;
  EXPECT(&q, MYSQL, "SELECT sum(`price`) AS sum FROM `items`", "");

  /* writes */
  sq_query_init(&q, SQ_Q_INSERT, m);
  int cols[] = {PRICE, TAG};
  sq_value v[] = {T("1.5"), T("a"), sq_null(), T("b")};
  q.cols = cols;
  q.ncols = 2;
  q.values = v;
  q.nrows = 2;
  EXPECT(&q, SQLITE,
         "INSERT INTO \"items\" (\"price\", \"tag\") VALUES (sqorm_dnorm(?, 30, 2), ?), (sqorm_dnorm(?, 30, 2), ?)",
         "s:1.5,s:a,n,s:b");
  EXPECT(&q, MYSQL, "INSERT INTO `items` (`price`, `tag`) VALUES (?, ?), (?, ?)", "s:1.5,s:a,n,s:b");
  q.kind = SQ_Q_UPSERT;
  q.nrows = 1;
  EXPECT(&q, SQLITE,
         "INSERT INTO \"items\" (\"price\", \"tag\") VALUES (sqorm_dnorm(?, 30, 2), ?) "
         "ON CONFLICT (\"id\") DO UPDATE SET \"price\" = EXCLUDED.\"price\", \"tag\" = EXCLUDED.\"tag\"",
         "s:1.5,s:a");

  sq_query_init(&q, SQ_Q_UPDATE, m);
  int ucol[] = {TAG, PRICE};
  sq_value uv[] = {T("t"), T("2.5")};
  int inc[] = {PRICE};
  sq_value iv[] = {T("-0.10")};
  q.cols = ucol;
  q.ncols = 2;
  q.values = uv;
  q.nrows = 1;
  q.where = cmp(SQ_OP_EQ, IID, 1, I(3));
  EXPECT(&q, SQLITE, "UPDATE \"items\" SET \"tag\" = ?, \"price\" = sqorm_dnorm(?, 30, 2) WHERE \"id\" = ?",
         "s:t,s:2.5,i:3");
  EXPECT(&q, PG, "UPDATE \"items\" SET \"tag\" = $1, \"price\" = $2 WHERE \"id\" = $3", "s:t,s:2.5,i:3");
  q.ncols = 1;
  q.incr_cols = inc;
  q.incr_values = iv;
  q.nincr = 1;
  EXPECT(&q, SQLITE,
         "UPDATE \"items\" SET \"tag\" = ?, \"price\" = sqorm_dnorm(sqorm_dadd(\"price\", ?), 30, 2) WHERE \"id\" = ?",
         "s:t,s:-0.10,i:3");
  EXPECT(&q, MYSQL, "UPDATE `items` SET `tag` = ?, `price` = `price` + CAST(? AS DECIMAL(30,2)) WHERE `id` = ?",
         "s:t,s:-0.10,i:3");
  EXPECT(&q, PG, "UPDATE \"items\" SET \"tag\" = $1, \"price\" = \"price\" + $2 WHERE \"id\" = $3", "s:t,s:-0.10,i:3");
  sq_model_free(m);
}

/* ---- optimistic locking and bulk conflict forms (issue 12) ---- */

/* items (version = "rev"): id, name (unique), qty, rev */
static sq_model *vitems(void) {
  sq_err e;
  sq_model *m;
  sq_model_opts o = {NULL, 0, NULL, NULL, 0, NULL, "rev"};
  if (sq_model_new("item", &o, &m, &e)) return NULL;
  sq_coldef d = coldef("name", SQ_T_STRING);
  d.unique = "";
  sq_model_add_column(m, &d, &e);
  d = coldef("qty", SQ_T_INTEGER);
  sq_model_add_column(m, &d, &e);
  if (sq_model_finish(m, &e)) {
    fprintf(stderr, "items: %s\n", e.msg);
    sq_model_free(m);
    return NULL;
  }
  return m;
}

static void test_conflict_forms(const sq_model *pm) {
  enum { IID, INAME, IQTY, IREV };
  sq_model *m = vitems();
  CHECK(m != NULL);
  if (!m) return;
  /* the version column: added last, INTEGER NOT NULL DEFAULT 0, with its role */
  CHECK(sq_model_role_col(m, SQ_ROLE_VERSION) == IREV);
  const sq_col *vc = sq_model_col(m, IREV);
  CHECK_STR(vc->name, "rev");
  CHECK(vc->type == SQ_T_INTEGER && !vc->allow_null && vc->default_kind == SQ_DEFAULT_VALUE &&
        vc->default_value.type == SQ_VINT && vc->default_value.u.i == 0);
  CHECK(sq_model_role_col(pm, SQ_ROLE_VERSION) == -1);

  sq_query q;
  int cols[] = {INAME, IQTY, IREV};
  sq_value v[] = {T("a"), I(1), I(0), T("b"), I(2), I(0)};
  const char *p = "s:a,i:1,i:0,s:b,i:2,i:0";

  /* ignore duplicates */
  sq_query_init(&q, SQ_Q_INSERT, m);
  q.cols = cols;
  q.ncols = 3;
  q.values = v;
  q.nrows = 2;
  q.on_conflict = SQ_CONFLICT_IGNORE;
  EXPECT(&q, MYSQL, "INSERT IGNORE INTO `items` (`name`, `qty`, `rev`) VALUES (?, ?, ?), (?, ?, ?)", p);
  EXPECT(&q, SQLITE, "INSERT INTO \"items\" (\"name\", \"qty\", \"rev\") VALUES (?, ?, ?), (?, ?, ?) ON CONFLICT DO NOTHING", p);
  int conf[] = {INAME};
  q.conflict_cols = conf;
  q.nconflict = 1;
  q.returning = 1;
  CHECK(EXPECT(&q, PG,
               "INSERT INTO \"items\" (\"name\", \"qty\", \"rev\") VALUES ($1, $2, $3), ($4, $5, $6) "
               "ON CONFLICT (\"name\") DO NOTHING RETURNING \"id\", \"name\", \"qty\", \"rev\"",
               p) == 1);
  /* MariaDB returns the inserted rows of an INSERT IGNORE */
  q.caps = SQ_CAP_INSERT_RETURNING;
  CHECK(EXPECT(&q, MYSQL,
               "INSERT IGNORE INTO `items` (`name`, `qty`, `rev`) VALUES (?, ?, ?), (?, ?, ?) "
               "RETURNING `id`, `name`, `qty`, `rev`",
               p) == 1);
  q.caps = 0;
  q.returning = 0;
  int bad_conf[] = {INAME, INAME};
  q.conflict_cols = bad_conf;
  q.nconflict = 2;
  REFUSE(&q, PG, "appears twice");
  q.conflict_cols = NULL;
  q.nconflict = 0;
  q.on_conflict = 7;
  REFUSE(&q, SQLITE, "unknown on_conflict mode");

  /* update on duplicate: only the listed columns, and the version bumped */
  sq_query_init(&q, SQ_Q_UPSERT, m);
  q.cols = cols;
  q.ncols = 3;
  q.values = v;
  q.nrows = 2;
  q.conflict_cols = conf;
  q.nconflict = 1;
  int upd[] = {IQTY};
  q.update_cols = upd;
  q.nupdate = 1;
  EXPECT(&q, MYSQL,
         "INSERT INTO `items` (`name`, `qty`, `rev`) VALUES (?, ?, ?), (?, ?, ?) "
         "ON DUPLICATE KEY UPDATE `qty` = VALUES(`qty`), `rev` = `rev` + 1",
         p);
  EXPECT(&q, PG,
         "INSERT INTO \"items\" (\"name\", \"qty\", \"rev\") VALUES ($1, $2, $3), ($4, $5, $6) "
         "ON CONFLICT (\"name\") DO UPDATE SET \"qty\" = EXCLUDED.\"qty\", \"rev\" = \"items\".\"rev\" + 1",
         p);
  EXPECT(&q, SQLITE,
         "INSERT INTO \"items\" (\"name\", \"qty\", \"rev\") VALUES (?, ?, ?), (?, ?, ?) "
         "ON CONFLICT (\"name\") DO UPDATE SET \"qty\" = EXCLUDED.\"qty\", \"rev\" = \"items\".\"rev\" + 1",
         p);
  /* the default update list leaves the version out (and bumps it) */
  q.update_cols = NULL;
  q.nupdate = 0;
  EXPECT(&q, SQLITE,
         "INSERT INTO \"items\" (\"name\", \"qty\", \"rev\") VALUES (?, ?, ?), (?, ?, ?) "
         "ON CONFLICT (\"name\") DO UPDATE SET \"qty\" = EXCLUDED.\"qty\", \"rev\" = \"items\".\"rev\" + 1",
         p);
  /* the version is never set by an upsert */
  int updv[] = {IQTY, IREV};
  q.update_cols = updv;
  q.nupdate = 2;
  REFUSE(&q, PG, "version column");
  REFUSE(&q, MYSQL, "version column");

  /* a model option naming a column that can't hold a version */
  sq_err e;
  sq_model *bad;
  sq_model_opts o = {NULL, 0, NULL, NULL, 0, NULL, "name"};
  CHECK(sq_model_new("thing", &o, &bad, &e) == SQ_OK);
  sq_coldef d = coldef("name", SQ_T_STRING);
  sq_model_add_column(bad, &d, &e);
  CHECK(sq_model_finish(bad, &e) == SQ_EUSAGE && strstr(e.msg, "must be a plain") != NULL);
  sq_model_free(bad);
  sq_model_opts o2 = {NULL, 1, NULL, NULL, 0, NULL, "updated_at"};
  CHECK(sq_model_new("thing", &o2, &bad, &e) == SQ_OK);
  CHECK(sq_model_finish(bad, &e) == SQ_EUSAGE && strstr(e.msg, "can't share a timestamp") != NULL);
  sq_model_free(bad);
  sq_model_free(m);
}

int main(void) {
  A = sq_arena_new();
  sq_model *m = players(), *pm = posts();
  CHECK(m && pm && A);
  if (!m || !pm || !A) return 1;
  test_select(m);
  test_count(m);
  test_insert(m);
  test_upsert(m);
  test_update_delete(m, pm);
  test_hostile();
  test_bad_trees(m);
  test_decimal();
  test_conflict_forms(pm);
  sq_model_free(m);
  sq_model_free(pm);
  sq_arena_free(A);
  return CHECK_DONE();
}
