/*
 * include_raw.c - the raw C floor of issue 11's eager-loading workload:
 * 1,000 users x 10 posts x 3 tags, read with one prepared join (users
 * JOIN posts JOIN post_tags JOIN tags), every column of every row read,
 * repeated for a few seconds, on SQLite (in memory), MariaDB / MySQL
 * (prepared statement, binary protocol, rows read off the socket) and
 * PostgreSQL (PQprepare / PQexecPrepared, text results). Prints calls/s
 * and joined rows/s, by the wall clock and by the process's CPU time (the
 * machine is shared: the CPU figure is the steadier one; on a server it
 * leaves out the server's work). The server dialects use the SQORM_TEST_*
 * variables (as raw_bench.c does, no TLS) and tables of their own (ir_*),
 * made and dropped here with the same data as include_bench.lua.
 *
 * Mode "floor": the same join, and from its rows the Lua tables
 * User:find_all{ include = { { "posts", include = { "tags" } } } } gives
 * (array-part instances with a metatable, as sqorm builds them: users
 * with a `posts` list, posts with a `tags` list, a tag per row), in an
 * embedded Lua state, parents found by id through Lua tables - the floor
 * of any Lua binding for this workload (lua_floor.c's idea).
 *
 *   cmake -S bench -B build-bench && cmake --build build-bench
 *   build-bench/include_raw [sqlite|mysql|postgres] [seconds] [raw|floor]
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <libpq-fe.h>
#include <lua.h>
#include <mysql.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USERS 1000
#define POSTS 10
#define TAGS 3
#define NTAGS 50

static const char *JOIN =
  "SELECT u.id, u.name, p.id, p.title, t.id, t.name FROM ir_users u JOIN ir_posts p ON p.author_id = u.id "
  "JOIN ir_post_tags pt ON pt.post_id = p.id JOIN ir_tags t ON t.id = pt.tag_id";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "include_raw: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *env_or(const char *name, const char *dflt) {
  const char *v = getenv(name);
  return v && *v ? v : dflt;
}

/* ---- the data: multi-row INSERTs through exec ---- */

typedef void (*exec_fn)(const char *sql);

typedef struct {
  char *buf;
  size_t len, cap;
  int rows;
  const char *head;
  exec_fn exec;
} batch;

static void b_flush(batch *b) {
  if (!b->rows) return;
  b->exec(b->buf);
  b->rows = 0;
  b->len = 0;
}

static void b_row(batch *b, const char *fmt, ...) {
  char row[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(row, sizeof row, fmt, ap);
  va_end(ap);
  size_t need = strlen(b->head) + strlen(row) + 4;
  if (b->len + need >= b->cap) {
    b->cap = (b->cap + need) * 2;
    b->buf = realloc(b->buf, b->cap);
    if (!b->buf) die("out of memory");
  }
  if (!b->rows) b->len = (size_t)snprintf(b->buf, b->cap, "%s", b->head);
  b->len += (size_t)snprintf(b->buf + b->len, b->cap - b->len, "%s%s", b->rows ? "," : "", row);
  if (++b->rows == 500) b_flush(b);
}

static void fill(exec_fn exec, const char *ddl_int) {
  char sql[512];
  exec("DROP TABLE IF EXISTS ir_post_tags");
  exec("DROP TABLE IF EXISTS ir_posts");
  exec("DROP TABLE IF EXISTS ir_tags");
  exec("DROP TABLE IF EXISTS ir_users");
  snprintf(sql, sizeof sql, "CREATE TABLE ir_users (id %s PRIMARY KEY, name VARCHAR(40))", ddl_int);
  exec(sql);
  snprintf(sql, sizeof sql,
           "CREATE TABLE ir_posts (id %s PRIMARY KEY, title VARCHAR(40), author_id %s REFERENCES ir_users(id))",
           ddl_int, ddl_int);
  exec(sql);
  exec("CREATE INDEX ir_posts_author ON ir_posts(author_id)");
  snprintf(sql, sizeof sql, "CREATE TABLE ir_tags (id %s PRIMARY KEY, name VARCHAR(40))", ddl_int);
  exec(sql);
  snprintf(sql, sizeof sql, "CREATE TABLE ir_post_tags (post_id %s, tag_id %s, PRIMARY KEY (post_id, tag_id))",
           ddl_int, ddl_int);
  exec(sql);
  batch b = {0};
  b.exec = exec;
  b.head = "INSERT INTO ir_tags VALUES ";
  for (int i = 1; i <= NTAGS; i++) b_row(&b, "(%d, 'tag%d')", i, i);
  b_flush(&b);
  b.head = "INSERT INTO ir_users VALUES ";
  for (int u = 1; u <= USERS; u++) b_row(&b, "(%d, 'user%d')", u, u);
  b_flush(&b);
  b.head = "INSERT INTO ir_posts VALUES ";
  for (int u = 1; u <= USERS; u++)
    for (int p = 1; p <= POSTS; p++) b_row(&b, "(%d, 'p%d', %d)", (u - 1) * POSTS + p, p, u);
  b_flush(&b);
  b.head = "INSERT INTO ir_post_tags VALUES ";
  for (int pid = 1; pid <= USERS * POSTS; pid++)
    for (int k = 0; k < TAGS; k++) b_row(&b, "(%d, %d)", pid, (pid + k * 7) % NTAGS + 1);
  b_flush(&b);
  free(b.buf);
}

static void unfill(exec_fn exec) {
  exec("DROP TABLE ir_post_tags");
  exec("DROP TABLE ir_posts");
  exec("DROP TABLE ir_tags");
  exec("DROP TABLE ir_users");
}

static volatile long sink;

/* ---- the floor: the rows into the Lua tables sqorm gives ---- */

static lua_State *FL;
static int fl_floor; /* 1: rows go to fl_row */
enum { FL_OUT = 1, FL_USERS, FL_POSTS, FL_UMT, FL_PMT, FL_TMT, FL_POSTS_KEY, FL_TAGS_KEY, FL_TOP = FL_TAGS_KEY };

static void fl_open(void) {
  FL = luaL_newstate();
  lua_settop(FL, 0);
  for (int i = 0; i < 3; i++) lua_newtable(FL); /* placeholders: out, users by id, posts by id */
  for (int i = 0; i < 3; i++) lua_newtable(FL); /* the instance metatables */
  lua_pushliteral(FL, "posts");
  lua_pushliteral(FL, "tags");
}

static void fl_begin(void) {
  lua_settop(FL, FL_TOP);
  lua_createtable(FL, USERS, 0);
  lua_replace(FL, FL_OUT);
  lua_createtable(FL, USERS, 0);
  lua_replace(FL, FL_USERS);
  lua_createtable(FL, USERS * POSTS, 0);
  lua_replace(FL, FL_POSTS);
}

/* One joined row: uid, uname, pid, title, tid, tname. */
static void fl_row(long long uid, const char *un, size_t unl, long long pid, const char *pt, size_t ptl, long long tid,
                   const char *tn, size_t tnl) {
  lua_State *L = FL;
  if (lua_rawgeti(L, FL_USERS, uid) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 2, 1);
    lua_pushvalue(L, FL_UMT);
    lua_setmetatable(L, -2);
    lua_pushinteger(L, uid);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, un, unl);
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, FL_POSTS_KEY);
    lua_createtable(L, 4, 0);
    lua_rawset(L, -3);
    lua_pushvalue(L, -1);
    lua_rawseti(L, FL_USERS, uid);
    lua_pushvalue(L, -1);
    lua_rawseti(L, FL_OUT, (lua_Integer)lua_rawlen(L, FL_OUT) + 1);
  }
  if (lua_rawgeti(L, FL_POSTS, pid) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 3, 1);
    lua_pushvalue(L, FL_PMT);
    lua_setmetatable(L, -2);
    lua_pushinteger(L, pid);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, pt, ptl);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, uid);
    lua_rawseti(L, -2, 3);
    lua_pushvalue(L, FL_TAGS_KEY);
    lua_createtable(L, 4, 0);
    lua_rawset(L, -3);
    lua_pushvalue(L, -1);
    lua_rawseti(L, FL_POSTS, pid);
    lua_pushvalue(L, FL_POSTS_KEY); /* append to the user's posts */
    lua_rawget(L, -3);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, FL_TAGS_KEY); /* [user, post, tags] */
  lua_rawget(L, -2);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, FL_TMT);
  lua_setmetatable(L, -2);
  lua_pushinteger(L, tid);
  lua_rawseti(L, -2, 1);
  lua_pushlstring(L, tn, tnl);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_settop(L, FL_TOP);
}

static void fl_end(void) {
  if (lua_rawlen(FL, FL_OUT) != USERS) die("floor: %d users", (int)lua_rawlen(FL, FL_OUT));
}

/* ---- SQLite ---- */

static sqlite3 *lite;

static void lite_exec(const char *sql) {
  if (sqlite3_exec(lite, sql, NULL, NULL, NULL) != SQLITE_OK) die("sqlite: %s in %.120s", sqlite3_errmsg(lite), sql);
}

static sqlite3_stmt *lite_st;
static long lite_run(void) {
  long rows = 0;
  int rc;
  while ((rc = sqlite3_step(lite_st)) == SQLITE_ROW) {
    if (fl_floor) {
      const char *a = (const char *)sqlite3_column_text(lite_st, 1), *b = (const char *)sqlite3_column_text(lite_st, 3),
                 *c = (const char *)sqlite3_column_text(lite_st, 5);
      fl_row(sqlite3_column_int64(lite_st, 0), a, (size_t)sqlite3_column_bytes(lite_st, 1),
             sqlite3_column_int64(lite_st, 2), b, (size_t)sqlite3_column_bytes(lite_st, 3),
             sqlite3_column_int64(lite_st, 4), c, (size_t)sqlite3_column_bytes(lite_st, 5));
    } else {
      sink += sqlite3_column_int64(lite_st, 0) + sqlite3_column_bytes(lite_st, 1) + sqlite3_column_int64(lite_st, 2) +
              sqlite3_column_bytes(lite_st, 3) + sqlite3_column_int64(lite_st, 4) + sqlite3_column_bytes(lite_st, 5);
      (void)sqlite3_column_text(lite_st, 1);
    }
    rows++;
  }
  if (rc != SQLITE_DONE) die("sqlite: %s", sqlite3_errmsg(lite));
  sqlite3_reset(lite_st);
  return rows;
}

/* ---- MariaDB / MySQL ---- */

static MYSQL *my;
static MYSQL_STMT *my_st;
static MYSQL_BIND my_rb[6];
static long long my_ints[3];
static char my_txt[3][64];
static unsigned long my_len[6];
static my_bool my_null[6], my_err[6];

static void my_exec(const char *sql) {
  if (mysql_real_query(my, sql, strlen(sql))) die("mysql: %s in %.120s", mysql_error(my), sql);
  MYSQL_RES *r = mysql_store_result(my);
  if (r) mysql_free_result(r);
}

static void my_prepare(void) {
  my_st = mysql_stmt_init(my);
  if (!my_st || mysql_stmt_prepare(my_st, JOIN, strlen(JOIN))) die("mysql prepare: %s", mysql_error(my));
  memset(my_rb, 0, sizeof my_rb);
  for (int i = 0; i < 6; i++) {
    MYSQL_BIND *b = &my_rb[i];
    if (i % 2 == 0) {
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = &my_ints[i / 2];
    } else {
      b->buffer_type = MYSQL_TYPE_STRING;
      b->buffer = my_txt[i / 2];
      b->buffer_length = sizeof my_txt[i / 2];
    }
    b->length = &my_len[i];
    b->is_null = &my_null[i];
    b->error = &my_err[i];
  }
  if (mysql_stmt_bind_result(my_st, my_rb)) die("mysql bind_result: %s", mysql_stmt_error(my_st));
}

static long my_run(void) {
  if (mysql_stmt_execute(my_st)) die("mysql execute: %s", mysql_stmt_error(my_st));
  long rows = 0;
  int rc;
  while ((rc = mysql_stmt_fetch(my_st)) == 0) {
    if (fl_floor)
      fl_row(my_ints[0], my_txt[0], my_len[1], my_ints[1], my_txt[1], my_len[3], my_ints[2], my_txt[2], my_len[5]);
    else
      sink += my_ints[0] + (long)my_len[1] + my_ints[1] + (long)my_len[3] + my_ints[2] + (long)my_len[5];
    rows++;
  }
  if (rc != MYSQL_NO_DATA) die("mysql fetch: %s", mysql_stmt_error(my_st));
  return rows;
}

/* ---- PostgreSQL ---- */

static PGconn *pg;

static void pg_quiet(void *unused, const char *msg) {
  (void)unused;
  (void)msg;
}

static void pg_exec(const char *sql) {
  PGresult *r = PQexec(pg, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    die("postgres: %s in %.120s", PQerrorMessage(pg), sql);
  PQclear(r);
}

static long pg_run(void) {
  PGresult *r = PQexecPrepared(pg, "j", 0, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) die("postgres: %s", PQerrorMessage(pg));
  long n = PQntuples(r);
  for (int i = 0; i < (int)n; i++) {
    if (fl_floor)
      fl_row(strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1),
             strtoll(PQgetvalue(r, i, 2), NULL, 10), PQgetvalue(r, i, 3), (size_t)PQgetlength(r, i, 3),
             strtoll(PQgetvalue(r, i, 4), NULL, 10), PQgetvalue(r, i, 5), (size_t)PQgetlength(r, i, 5));
    else
      sink += strtoll(PQgetvalue(r, i, 0), NULL, 10) + PQgetlength(r, i, 1) + strtoll(PQgetvalue(r, i, 2), NULL, 10) +
              PQgetlength(r, i, 3) + strtoll(PQgetvalue(r, i, 4), NULL, 10) + PQgetlength(r, i, 5);
  }
  PQclear(r);
  return n;
}

static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long one_call(long (*run)(void)) {
  if (fl_floor) fl_begin();
  long n = run();
  if (fl_floor) fl_end();
  return n;
}

int main(int argc, char **argv) {
  const char *dialect = argc > 1 ? argv[1] : "sqlite";
  double budget = argc > 2 ? atof(argv[2]) : 3.0;
  const char *mode = argc > 3 ? argv[3] : "raw";
  if (!strcmp(mode, "floor")) {
    fl_floor = 1;
    fl_open();
  } else if (strcmp(mode, "raw")) {
    die("unknown mode '%s' (raw or floor)", mode);
  }
  long (*run)(void) = NULL;
  exec_fn exec = NULL;
  if (!strcmp(dialect, "sqlite")) {
    if (sqlite3_open_v2(":memory:", &lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL))
      die("sqlite open");
    exec = lite_exec;
    lite_exec("BEGIN");
    fill(exec, "INTEGER");
    lite_exec("COMMIT");
    if (sqlite3_prepare_v2(lite, JOIN, -1, &lite_st, NULL) != SQLITE_OK) die("sqlite: %s", sqlite3_errmsg(lite));
    run = lite_run;
  } else if (!strcmp(dialect, "mysql")) {
    my = mysql_init(NULL);
    mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    unsigned port = (unsigned)atoi(env_or("SQORM_TEST_MYSQL_PORT", "3306"));
    if (!mysql_real_connect(my, env_or("SQORM_TEST_MYSQL_HOST", "127.0.0.1"), env_or("SQORM_TEST_MYSQL_USER", "sqorm"),
                            env_or("SQORM_TEST_MYSQL_PASSWORD", "sqorm_pw"), env_or("SQORM_TEST_MYSQL_DB", "sqorm_test"),
                            port, NULL, 0))
      die("mysql connect: %s", mysql_error(my));
    exec = my_exec;
    fill(exec, "INT");
    my_prepare();
    run = my_run;
  } else if (!strcmp(dialect, "postgres")) {
    const char *keys[] = {"host", "port", "user", "password", "dbname", "sslmode", NULL};
    const char *vals[] = {env_or("SQORM_TEST_PG_HOST", "127.0.0.1"),  env_or("SQORM_TEST_PG_PORT", "5432"),
                          env_or("SQORM_TEST_PG_USER", "sqorm"),       env_or("SQORM_TEST_PG_PASSWORD", "sqorm_pw"),
                          env_or("SQORM_TEST_PG_DB", "sqorm_test"),    "disable",
                          NULL};
    pg = PQconnectdbParams(keys, vals, 0);
    if (PQstatus(pg) != CONNECTION_OK) die("postgres connect: %s", PQerrorMessage(pg));
    PQsetNoticeProcessor(pg, pg_quiet, NULL);
    exec = pg_exec;
    fill(exec, "INTEGER");
    pg_exec("ANALYZE");
    PGresult *r = PQprepare(pg, "j", JOIN, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) die("postgres prepare: %s", PQerrorMessage(pg));
    PQclear(r);
    run = pg_run;
  } else {
    die("unknown dialect '%s' (sqlite, mysql or postgres)", dialect);
  }
  long calls = 0, rows = 0;
  one_call(run); /* warm */
  double t0 = now(), c0 = cpu(), dt;
  do {
    rows += one_call(run);
    calls++;
  } while ((dt = now() - t0) < budget);
  double dc = cpu() - c0;
  if (rows != calls * USERS * POSTS * TAGS) die("%ld rows in %ld calls", rows, calls);
  /* rows/s: the objects a call delivers (41,000: users + posts + tags) for the floor, joined rows (30,000) raw */
  long per = fl_floor ? USERS + USERS * POSTS + USERS * POSTS * TAGS : USERS * POSTS * TAGS;
  printf("RESULT include_raw %s %s calls/s=%.2f rows/s=%.0f cpu_calls/s=%.2f statements/call=1.0\n", dialect,
         fl_floor ? "floor" : "joined", calls / dt, calls * per / dt, calls / dc);
  /* bench/run.sh's format: one op is one object of the tree (41,000 per call), whatever the mode */
  long objects = USERS + USERS * POSTS + USERS * POSTS * TAGS;
  printf("RESULT include %s %s %ld %.6f %.1f %ld\n", dialect, fl_floor ? "lua_floor" : "raw_c", calls * objects, dt,
         calls * objects / dt, peak_rss_kib());
  if (FL) lua_close(FL);
  if (lite_st) sqlite3_finalize(lite_st);
  if (my_st) mysql_stmt_close(my_st);
  if (strcmp(dialect, "sqlite")) unfill(exec);
  if (lite) sqlite3_close(lite);
  if (my) mysql_close(my);
  if (pg) PQfinish(pg);
  return 0;
}
