/*
 * raw_bench.c: the floor for sqorm's benchmarks.
 *
 * The same workloads as bench/luasql_bench.lua and bench/sqorm_bench.lua,
 * written straight against the three client libraries, the way a careful C
 * programmer would: statements prepared once and reused, values bound (never
 * formatted into SQL), rows decoded into a plain struct. Whatever an ORM adds
 * on top shows up as the distance from these numbers.
 *
 *   raw_bench <sqlite|mysql|postgres> <workload|all>
 *
 * Each workload prints one line on stdout:
 *   RESULT <workload> <db> raw_c <ops> <seconds> <ops_per_sec> <peak_rss_kib>
 * Progress and errors go to stderr. Any failure exits with status 1.
 *
 * Environment: SCALE (float, default 1.0) multiplies every count;
 * BENCH_ROWS (run.sh's size sweep) sets the rows of bulk_insert, the table
 * size of the reads and the rows streamed exactly, SCALE aside;
 * SQORM_TEST_{MYSQL,PG}_{HOST,PORT,USER,PASSWORD,DB} locate the servers.
 * SQLite uses a file in a fresh temporary directory (WAL, synchronous=NORMAL),
 * removed on exit.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <mysql.h>
#include <sqlite3.h>

/* ------------------------------------------------------------------------ */
/* Shared pieces                                                            */
/* ------------------------------------------------------------------------ */

/* One row of `players`, decoded. Every SELECT in this file reads exactly
 * these six columns in this order, so one decoder per driver suffices. */
typedef struct row {
  int64_t id;
  char name[33];
  int64_t coins;
  int64_t goods;
  char created_at[32];
  char updated_at[32];
} row;

/* A bound parameter: text when `s` is set, otherwise the integer `i`. */
typedef struct arg {
  const char *s;
  int64_t i;
} arg;

typedef void (*row_fn)(const row *r, void *ctx);

/* The little a workload needs from a database. SQL is written with `?`
 * placeholders; the PostgreSQL driver rewrites them to $n at prepare time. */
typedef struct driver {
  const char *name;
  void (*open)(void);
  void (*close)(void);
  void (*exec)(const char *sql);               /* no params, result discarded */
  int64_t (*scalar)(const char *sql);          /* first column of first row */
  void *(*prepare)(const char *sql, int nparams);
  /* Runs a prepared statement. For a SELECT, calls `cb` once per row and
   * returns the row count; otherwise returns the affected row count.
   * `stream` asks for row-at-a-time delivery with bounded client memory. */
  int64_t (*run)(void *stmt, const arg *args, row_fn cb, void *ctx,
                 int stream);
  void (*finalize)(void *stmt);
  const char *create_sql;
  const char *begin_sql;
  const char *lock_clause;                     /* appended to locking reads */
  void (*seed_sql)(char *buf, size_t len, int64_t n);
  const char *after_seed;                      /* or NULL */
} driver;

#define INS_COLS "name, coins, goods, created_at, updated_at"
#define SEL_COLS "id, name, coins, goods, created_at, updated_at"
#define SEED_TS "2024-01-01 00:00:00"

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("raw_bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory");
  return p;
}

static const char *env_or(const char *name, const char *dflt) {
  const char *v = getenv(name);
  return v && *v ? v : dflt;
}

/* Copies a possibly unterminated value into a fixed buffer, truncating. */
static void copy_text(char *dst, size_t cap, const char *src, size_t len) {
  if (!src) len = 0;
  if (len >= cap) len = cap - 1;
  if (len) memcpy(dst, src, len);
  dst[len] = '\0';
}

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The UTC wall-clock time as "YYYY-MM-DD HH:MM:SS", computed per row as an
 * ORM filling created_at/updated_at would. */
static void timestamp_now(char out[32]) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

/* splitmix64: a fixed seed keeps runs comparable; quality is ample here. */
static uint64_t rng_state = 0x5eed5eed5eed5eedULL;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static int64_t rng_id(int64_t n) {
  return 1 + (int64_t)(rng_next() % (uint64_t)n);
}

/* Peak RSS in KiB. VmHWM is per address space and can be reset (below), so
 * with `all` each workload still reports its own peak; ru_maxrss is the
 * fallback where /proc is missing. */
static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f) {
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    fclose(f);
    if (kib >= 0) return kib;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Writing "5" to clear_refs resets VmHWM to the current RSS (Linux >= 4.0);
 * best effort, as some sandboxes refuse it. */
static void reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return;
  fputs("5", f);
  fclose(f);
}

static double scale = 1.0;
static int64_t bench_rows; /* BENCH_ROWS, or 0 */

/* A count at SCALE, never below one so SCALE=0.01 still does everything. */
static int64_t scaled(int64_t n) {
  int64_t v = (int64_t)((double)n * scale + 0.5);
  return v < 1 ? 1 : v;
}

/* The sizes the sweep varies: bulk rows, table size, streamed rows. */
static int64_t sized(int64_t n) { return bench_rows > 0 ? bench_rows : scaled(n); }

/* ------------------------------------------------------------------------ */
/* SQLite                                                                   */
/* ------------------------------------------------------------------------ */

static sqlite3 *lite;
static char lite_dir[4096];
static char lite_path[4200];

static void lite_exec(const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(lite, sql, NULL, NULL, &err) != SQLITE_OK)
    die("sqlite: %s\n  in: %.200s", err ? err : "?", sql);
}

/* Removes the database and its WAL/shm companions; runs at exit, so a
 * failed run leaves nothing behind either. */
static void lite_cleanup(void) {
  if (lite) sqlite3_close(lite);
  lite = NULL;
  if (!lite_dir[0]) return;
  const char *sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[4300];
  for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
    snprintf(p, sizeof p, "%s%s", lite_path, sfx[i]);
    unlink(p);
  }
  rmdir(lite_dir);
  lite_dir[0] = '\0';
}

static void lite_open(void) {
  snprintf(lite_dir, sizeof lite_dir, "%s/raw_bench.XXXXXX",
           env_or("TMPDIR", "/tmp"));
  if (!mkdtemp(lite_dir)) die("mkdtemp %s failed", lite_dir);
  snprintf(lite_path, sizeof lite_path, "%s/bench.db", lite_dir);
  atexit(lite_cleanup);
  /* NOMUTEX, as sqorm opens its handles: a single-threaded program needs
   * no per-call mutex (the default serialized mode takes one per API call). */
  if (sqlite3_open_v2(lite_path, &lite,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                      SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    die("sqlite: cannot open %s", lite_path);
  /* WAL + NORMAL is the usual setting for an application database: no
   * fsync per commit, still crash-safe for the database itself. */
  lite_exec("PRAGMA journal_mode=WAL");
  lite_exec("PRAGMA synchronous=NORMAL");
}

static void lite_close(void) { lite_cleanup(); }

static int64_t lite_scalar(const char *sql) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(lite, sql, -1, &st, NULL) != SQLITE_OK)
    die("sqlite: %s", sqlite3_errmsg(lite));
  if (sqlite3_step(st) != SQLITE_ROW) die("sqlite: %s", sqlite3_errmsg(lite));
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void *lite_prepare(const char *sql, int nparams) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v3(lite, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                         NULL) != SQLITE_OK)
    die("sqlite prepare: %s\n  in: %.200s", sqlite3_errmsg(lite), sql);
  if (sqlite3_bind_parameter_count(st) != nparams)
    die("sqlite: expected %d params in %.200s", nparams, sql);
  return st;
}

static void lite_text(char *dst, size_t cap, sqlite3_stmt *st, int col) {
  const char *s = (const char *)sqlite3_column_text(st, col);
  copy_text(dst, cap, s, (size_t)sqlite3_column_bytes(st, col));
}

static int64_t lite_run(void *p, const arg *args, row_fn cb, void *ctx,
                        int stream) {
  sqlite3_stmt *st = p;
  (void)stream; /* stepping is row-at-a-time already */
  int n = sqlite3_bind_parameter_count(st);
  for (int i = 0; i < n; i++) {
    /* SQLITE_STATIC: the caller's buffers outlive the step loop below. */
    int rc = args[i].s
      ? sqlite3_bind_text(st, i + 1, args[i].s, -1, SQLITE_STATIC)
      : sqlite3_bind_int64(st, i + 1, args[i].i);
    if (rc != SQLITE_OK) die("sqlite bind: %s", sqlite3_errmsg(lite));
  }
  int64_t rows = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    row r;
    r.id = sqlite3_column_int64(st, 0);
    lite_text(r.name, sizeof r.name, st, 1);
    r.coins = sqlite3_column_int64(st, 2);
    r.goods = sqlite3_column_int64(st, 3);
    lite_text(r.created_at, sizeof r.created_at, st, 4);
    lite_text(r.updated_at, sizeof r.updated_at, st, 5);
    cb(&r, ctx);
    rows++;
  }
  if (rc != SQLITE_DONE) die("sqlite step: %s", sqlite3_errmsg(lite));
  sqlite3_reset(st);
  return sqlite3_column_count(st) ? rows : sqlite3_changes64(lite);
}

static void lite_finalize(void *st) { sqlite3_finalize(st); }

static void lite_seed_sql(char *buf, size_t len, int64_t n) {
  snprintf(buf, len,
           "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
           "WHERE i < %" PRId64 ") INSERT INTO players (" INS_COLS ") "
           "SELECT 'player_' || i, i %% 1000, i %% 100, '" SEED_TS "', '"
           SEED_TS "' FROM s", n);
}

static const driver sqlite_driver = {
  .name = "sqlite",
  .open = lite_open,
  .close = lite_close,
  .exec = lite_exec,
  .scalar = lite_scalar,
  .prepare = lite_prepare,
  .run = lite_run,
  .finalize = lite_finalize,
  .create_sql =
    "CREATE TABLE players (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "name VARCHAR(32) UNIQUE, coins INTEGER, goods INTEGER, "
    "created_at DATETIME, updated_at DATETIME)",
  /* IMMEDIATE takes the write lock up front, the SQLite stand-in for
   * SELECT ... FOR UPDATE. */
  .begin_sql = "BEGIN IMMEDIATE",
  .lock_clause = "",
  .seed_sql = lite_seed_sql,
  .after_seed = NULL,
};

/* ------------------------------------------------------------------------ */
/* MySQL / MariaDB (libmariadb, binary protocol)                            */
/* ------------------------------------------------------------------------ */

static MYSQL *my;

typedef struct my_stmt {
  MYSQL_STMT *st;
  int nparams;
  MYSQL_BIND *pb;
  unsigned long *plen;
  int ncols;
  MYSQL_BIND rb[6];
  unsigned long rlen[6];
  my_bool rnull[6];
  my_bool rerr[6];
  row r;                    /* fetch target: mysql_stmt_fetch writes here */
} my_stmt;

static void my_open(void) {
  my = mysql_init(NULL);
  if (!my) die("mysql_init failed");
  mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  unsigned port = (unsigned)atoi(env_or("SQORM_TEST_MYSQL_PORT", "3306"));
  if (!mysql_real_connect(my, env_or("SQORM_TEST_MYSQL_HOST", "127.0.0.1"),
                          env_or("SQORM_TEST_MYSQL_USER", "sqorm"),
                          env_or("SQORM_TEST_MYSQL_PASSWORD", "sqorm_pw"),
                          env_or("SQORM_TEST_MYSQL_DB", "sqorm_test"), port,
                          NULL, 0))
    die("mysql connect: %s", mysql_error(my));
}

static void my_close(void) {
  mysql_close(my);
  my = NULL;
}

static void my_exec(const char *sql) {
  if (mysql_real_query(my, sql, strlen(sql)))
    die("mysql: %s\n  in: %.200s", mysql_error(my), sql);
  MYSQL_RES *res = mysql_store_result(my);
  if (res) mysql_free_result(res);
}

static int64_t my_scalar(const char *sql) {
  if (mysql_real_query(my, sql, strlen(sql))) die("mysql: %s", mysql_error(my));
  MYSQL_RES *res = mysql_store_result(my);
  if (!res) die("mysql: no result for %s", sql);
  MYSQL_ROW r = mysql_fetch_row(res);
  int64_t v = r && r[0] ? strtoll(r[0], NULL, 10) : 0;
  mysql_free_result(res);
  return v;
}

static void my_bind_col(my_stmt *s, int i, enum enum_field_types t, void *buf,
                        unsigned long cap) {
  MYSQL_BIND *b = &s->rb[i];
  b->buffer_type = t;
  b->buffer = buf;
  b->buffer_length = cap;
  b->length = &s->rlen[i];
  b->is_null = &s->rnull[i];
  b->error = &s->rerr[i];
}

static void *my_prepare(const char *sql, int nparams) {
  my_stmt *s = xmalloc(sizeof *s);
  memset(s, 0, sizeof *s);
  s->st = mysql_stmt_init(my);
  if (!s->st) die("mysql_stmt_init: %s", mysql_error(my));
  if (mysql_stmt_prepare(s->st, sql, strlen(sql)))
    die("mysql prepare: %s\n  in: %.200s", mysql_stmt_error(s->st), sql);
  if ((int)mysql_stmt_param_count(s->st) != nparams)
    die("mysql: expected %d params in %.200s", nparams, sql);
  s->nparams = nparams;
  s->pb = xmalloc(sizeof *s->pb * (size_t)nparams);
  memset(s->pb, 0, sizeof *s->pb * (size_t)nparams);
  s->plen = xmalloc(sizeof *s->plen * (size_t)nparams);
  s->ncols = (int)mysql_stmt_field_count(s->st);
  if (s->ncols) {
    if (s->ncols != 6) die("mysql: unexpected column count in %.200s", sql);
    /* Integers land in the struct directly; DATETIME is bound as a string
     * so libmariadb formats it, matching the string form sqorm returns. */
    my_bind_col(s, 0, MYSQL_TYPE_LONGLONG, &s->r.id, 0);
    my_bind_col(s, 1, MYSQL_TYPE_STRING, s->r.name, sizeof s->r.name);
    my_bind_col(s, 2, MYSQL_TYPE_LONGLONG, &s->r.coins, 0);
    my_bind_col(s, 3, MYSQL_TYPE_LONGLONG, &s->r.goods, 0);
    my_bind_col(s, 4, MYSQL_TYPE_STRING, s->r.created_at,
                sizeof s->r.created_at);
    my_bind_col(s, 5, MYSQL_TYPE_STRING, s->r.updated_at,
                sizeof s->r.updated_at);
    if (mysql_stmt_bind_result(s->st, s->rb))
      die("mysql bind_result: %s", mysql_stmt_error(s->st));
  }
  return s;
}

/* Terminates a fetched string column (or empties it when NULL). */
static void my_fix_text(my_stmt *s, int i, char *buf, size_t cap) {
  size_t n = s->rnull[i] ? 0 : s->rlen[i];
  buf[n < cap ? n : cap - 1] = '\0';
}

static int64_t my_run(void *p, const arg *args, row_fn cb, void *ctx,
                      int stream) {
  my_stmt *s = p;
  (void)stream;
  for (int i = 0; i < s->nparams; i++) {
    MYSQL_BIND *b = &s->pb[i];
    if (args[i].s) {
      s->plen[i] = strlen(args[i].s);
      b->buffer_type = MYSQL_TYPE_STRING;
      b->buffer = (void *)args[i].s;
      b->buffer_length = s->plen[i];
      b->length = &s->plen[i];
    } else {
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = (void *)&args[i].i;
      b->buffer_length = 0;
      b->length = NULL;
    }
  }
  /* Rebinding per call is needed because the argument buffers move; it is
   * a loop over the binds with no I/O. */
  if (s->nparams && mysql_stmt_bind_param(s->st, s->pb))
    die("mysql bind_param: %s", mysql_stmt_error(s->st));
  if (mysql_stmt_execute(s->st))
    die("mysql execute: %s", mysql_stmt_error(s->st));
  if (!s->ncols) return (int64_t)mysql_stmt_affected_rows(s->st);
  /* No mysql_stmt_store_result: rows are read off the socket as they are
   * fetched (unbuffered). Every caller drains the result, so this is both
   * the fastest path and the bounded-memory one needed by `stream`. */
  int64_t rows = 0;
  int rc;
  while ((rc = mysql_stmt_fetch(s->st)) == 0) {
    if (s->rnull[0]) s->r.id = 0;
    if (s->rnull[2]) s->r.coins = 0;
    if (s->rnull[3]) s->r.goods = 0;
    my_fix_text(s, 1, s->r.name, sizeof s->r.name);
    my_fix_text(s, 4, s->r.created_at, sizeof s->r.created_at);
    my_fix_text(s, 5, s->r.updated_at, sizeof s->r.updated_at);
    cb(&s->r, ctx);
    rows++;
  }
  if (rc == MYSQL_DATA_TRUNCATED) die("mysql: a column was truncated");
  if (rc != MYSQL_NO_DATA) die("mysql fetch: %s", mysql_stmt_error(s->st));
  return rows;
}

static void my_finalize(void *p) {
  my_stmt *s = p;
  mysql_stmt_close(s->st);
  free(s->pb);
  free(s->plen);
  free(s);
}

/* A cross join of digit tables instead of a recursive CTE: it works the
 * same on MySQL 8 (whose CTE recursion depth defaults to 1000), MariaDB
 * and TiDB. */
static void my_seed_sql(char *buf, size_t len, int64_t n) {
  static const char digits[] =
    "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
    "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL "
    "SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)";
  int levels = 0;
  for (int64_t p = 1; p < n; p *= 10) levels++;
  if (levels == 0) levels = 1;
  size_t o = (size_t)snprintf(buf, len,
    "INSERT INTO players (" INS_COLS ") SELECT CONCAT('player_', i), "
    "i %% 1000, i %% 100, '" SEED_TS "', '" SEED_TS "' FROM (SELECT 1");
  int64_t mul = 1;
  for (int l = 0; l < levels; l++, mul *= 10)
    o += (size_t)snprintf(buf + o, len - o, " + %" PRId64 " * d%d.d", mul, l);
  o += (size_t)snprintf(buf + o, len - o, " AS i FROM ");
  for (int l = 0; l < levels; l++)
    o += (size_t)snprintf(buf + o, len - o, "%s%s d%d",
                          l ? " CROSS JOIN " : "", digits, l);
  snprintf(buf + o, len - o, ") s WHERE i <= %" PRId64, n);
}

static const driver mysql_driver = {
  .name = "mysql",
  .open = my_open,
  .close = my_close,
  .exec = my_exec,
  .scalar = my_scalar,
  .prepare = my_prepare,
  .run = my_run,
  .finalize = my_finalize,
  .create_sql =
    "CREATE TABLE players (id INT AUTO_INCREMENT PRIMARY KEY, "
    "name VARCHAR(32) UNIQUE, coins INT, goods INT, "
    "created_at DATETIME, updated_at DATETIME) ENGINE=InnoDB",
  .begin_sql = "BEGIN",
  .lock_clause = " FOR UPDATE",
  .seed_sql = my_seed_sql,
  .after_seed = NULL,
};

/* ------------------------------------------------------------------------ */
/* PostgreSQL (libpq, extended protocol, text format)                       */
/* ------------------------------------------------------------------------ */

static PGconn *pg;
static int pg_nstmts;

typedef struct pg_stmt {
  char name[16];
  int nparams;
  int ncols;
  const char **vals;
  char (*num)[24];          /* text form of integer params */
} pg_stmt;

/* DROP TABLE IF EXISTS raises a NOTICE that would clutter stderr. */
static void pg_quiet(void *unused, const char *msg) {
  (void)unused;
  (void)msg;
}

static void pg_open(void) {
  /* sslmode=disable: every client in the comparison talks plain TCP over
   * loopback, so the numbers measure the client, not TLS. */
  const char *keys[] = {"host", "port", "user", "password", "dbname",
                        "sslmode", NULL};
  const char *vals[] = {env_or("SQORM_TEST_PG_HOST", "127.0.0.1"),
                        env_or("SQORM_TEST_PG_PORT", "5432"),
                        env_or("SQORM_TEST_PG_USER", "sqorm"),
                        env_or("SQORM_TEST_PG_PASSWORD", "sqorm_pw"),
                        env_or("SQORM_TEST_PG_DB", "sqorm_test"),
                        "disable", NULL};
  pg = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(pg) != CONNECTION_OK) die("postgres connect: %s",
                                         PQerrorMessage(pg));
  PQsetNoticeProcessor(pg, pg_quiet, NULL);
}

static void pg_close(void) {
  PQfinish(pg);
  pg = NULL;
}

static PGresult *pg_check(PGresult *res, const char *what) {
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    die("postgres %s: %s", what, PQerrorMessage(pg));
  return res;
}

static void pg_exec(const char *sql) {
  PQclear(pg_check(PQexec(pg, sql), sql));
}

static int64_t pg_scalar(const char *sql) {
  PGresult *res = pg_check(PQexec(pg, sql), sql);
  int64_t v = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
  PQclear(res);
  return v;
}

static void *pg_prepare(const char *sql, int nparams) {
  pg_stmt *s = xmalloc(sizeof *s);
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "s%d", ++pg_nstmts);
  /* `?` -> `$n`. None of this file's SQL has `?` inside a literal. */
  char *text = xmalloc(strlen(sql) * 6 + 1);
  int n = 0;
  char *o = text;
  for (const char *c = sql; *c; c++)
    if (*c == '?') o += sprintf(o, "$%d", ++n);
    else *o++ = *c;
  *o = '\0';
  if (n != nparams) die("postgres: expected %d params in %.200s", nparams, sql);
  PQclear(pg_check(PQprepare(pg, s->name, text, nparams, NULL), "prepare"));
  free(text);
  PGresult *d = pg_check(PQdescribePrepared(pg, s->name), "describe");
  s->ncols = PQnfields(d);
  PQclear(d);
  s->nparams = nparams;
  s->vals = xmalloc(sizeof *s->vals * (size_t)nparams);
  s->num = xmalloc(sizeof *s->num * (size_t)nparams);
  return s;
}

static int64_t pg_int(const PGresult *res, int r, int c) {
  return PQgetisnull(res, r, c) ? 0 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static void pg_text(char *dst, size_t cap, const PGresult *res, int r, int c) {
  copy_text(dst, cap, PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
}

static void pg_decode(const PGresult *res, int i, row *r) {
  r->id = pg_int(res, i, 0);
  pg_text(r->name, sizeof r->name, res, i, 1);
  r->coins = pg_int(res, i, 2);
  r->goods = pg_int(res, i, 3);
  pg_text(r->created_at, sizeof r->created_at, res, i, 4);
  pg_text(r->updated_at, sizeof r->updated_at, res, i, 5);
}

static int64_t pg_run(void *p, const arg *args, row_fn cb, void *ctx,
                      int stream) {
  pg_stmt *s = p;
  for (int i = 0; i < s->nparams; i++) {
    if (args[i].s) {
      s->vals[i] = args[i].s;
    } else {
      snprintf(s->num[i], sizeof s->num[i], "%" PRId64, args[i].i);
      s->vals[i] = s->num[i];
    }
  }
  if (stream) {
    /* Single-row mode: one PGresult per row, so client memory stays flat
     * however large the result. Slower per row than a whole result, which
     * is why only `stream` uses it. */
    if (!PQsendQueryPrepared(pg, s->name, s->nparams, s->vals, NULL, NULL, 0))
      die("postgres send: %s", PQerrorMessage(pg));
    if (!PQsetSingleRowMode(pg)) die("postgres: single-row mode refused");
    int64_t rows = 0;
    PGresult *res;
    row r;
    while ((res = PQgetResult(pg))) {
      ExecStatusType st = PQresultStatus(res);
      if (st == PGRES_SINGLE_TUPLE) {
        pg_decode(res, 0, &r);
        cb(&r, ctx);
        rows++;
      } else if (st != PGRES_TUPLES_OK) {
        die("postgres stream: %s", PQerrorMessage(pg));
      }
      PQclear(res);
    }
    return rows;
  }
  PGresult *res = pg_check(PQexecPrepared(pg, s->name, s->nparams, s->vals,
                                          NULL, NULL, 0), "execute");
  int64_t out;
  if (s->ncols) {
    int n = PQntuples(res);
    row r;
    for (int i = 0; i < n; i++) {
      pg_decode(res, i, &r);
      cb(&r, ctx);
    }
    out = n;
  } else {
    out = strtoll(PQcmdTuples(res), NULL, 10);
  }
  PQclear(res);
  return out;
}

static void pg_finalize(void *p) {
  pg_stmt *s = p;
  char sql[48];
  snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
  pg_exec(sql);
  free(s->vals);
  free(s->num);
  free(s);
}

static void pg_seed_sql(char *buf, size_t len, int64_t n) {
  snprintf(buf, len,
           "INSERT INTO players (" INS_COLS ") SELECT 'player_' || i, "
           "i %% 1000, i %% 100, TIMESTAMP '" SEED_TS "', TIMESTAMP '"
           SEED_TS "' FROM generate_series(1, %" PRId64 ") AS s(i)", n);
}

static const driver postgres_driver = {
  .name = "postgres",
  .open = pg_open,
  .close = pg_close,
  .exec = pg_exec,
  .scalar = pg_scalar,
  .prepare = pg_prepare,
  .run = pg_run,
  .finalize = pg_finalize,
  .create_sql =
    "CREATE TABLE players (id SERIAL PRIMARY KEY, "
    "name VARCHAR(32) UNIQUE, coins INTEGER, goods INTEGER, "
    "created_at TIMESTAMP, updated_at TIMESTAMP)",
  .begin_sql = "BEGIN",
  .lock_clause = " FOR UPDATE",
  .seed_sql = pg_seed_sql,
  /* Sets hint bits and statistics now, so the first timed read does not
   * pay for the bulk load's cleanup. */
  .after_seed = "VACUUM ANALYZE players",
};

/* ------------------------------------------------------------------------ */
/* Workloads                                                                */
/* ------------------------------------------------------------------------ */

static const driver *D;
static double t_start, t_stop;
static volatile int64_t sink;   /* keeps decoded values observably used */

#define SEED_ROWS 100000        /* table size for reads/updates at SCALE=1 */
#define SCAN_THRESHOLD 499      /* coins = id % 1000, so half the rows pass */

static void clock_start(void) { t_start = now_sec(); }
static void clock_stop(void) { t_stop = now_sec(); }

/* Drop + create + seed (server-side, so the client's RSS is untouched).
 * Recreating rather than truncating restarts ids at 1 on every dialect. */
static void reset_table(int64_t seed_rows) {
  D->exec("DROP TABLE IF EXISTS players");
  D->exec(D->create_sql);
  if (seed_rows <= 0) return;
  char sql[8192];
  D->seed_sql(sql, sizeof sql, seed_rows);
  D->exec(sql);
  if (D->after_seed) D->exec(D->after_seed);
  int64_t got = D->scalar("SELECT COUNT(*) FROM players");
  if (got != seed_rows) die("seeded %" PRId64 " rows, wanted %" PRId64, got,
                            seed_rows);
}

static void expect_count(int64_t want) {
  int64_t got = D->scalar("SELECT COUNT(*) FROM players");
  if (got != want) die("table has %" PRId64 " rows, expected %" PRId64, got,
                       want);
}

static void ignore_row(const row *r, void *ctx) {
  (void)ctx;
  sink += r->coins;
}

static void copy_row(const row *r, void *ctx) { *(row *)ctx = *r; }

/* A growable array of rows: what a find_all hands back. */
typedef struct rows {
  row *v;
  size_t n, cap;
} rowvec;

static void push_row(const row *r, void *ctx) {
  rowvec *a = ctx;
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 1024;
    a->v = realloc(a->v, a->cap * sizeof *a->v);
    if (!a->v) die("out of memory");
  }
  a->v[a->n++] = *r;
}

static int64_t wl_insert_single(void) {
  reset_table(0);
  void *ins = D->prepare("INSERT INTO players (" INS_COLS
                         ") VALUES (?, ?, ?, ?, ?)", 5);
  int64_t n = scaled(5000);
  char name[32], ts[32];
  arg a[5];
  clock_start();
  for (int64_t i = 0; i < n; i++) {
    snprintf(name, sizeof name, "single_%" PRId64, i);
    timestamp_now(ts);
    a[0] = (arg){name, 0};
    a[1] = (arg){NULL, i % 1000};
    a[2] = (arg){NULL, i % 100};
    a[3] = (arg){ts, 0};
    a[4] = (arg){ts, 0};
    if (D->run(ins, a, NULL, NULL, 0) != 1) die("insert did not insert");
  }
  clock_stop();
  D->finalize(ins);
  expect_count(n);
  return n;
}

/* "INSERT ... VALUES (?, ?, ?, ?, ?), ..." for `rows` rows. */
static char *multi_insert_sql(int64_t rows) {
  static const char head[] = "INSERT INTO players (" INS_COLS ") VALUES ";
  static const char tuple[] = "(?, ?, ?, ?, ?)";
  size_t len = sizeof head + (size_t)rows * (sizeof tuple + 2);
  char *sql = xmalloc(len);
  char *o = sql + sprintf(sql, "%s", head);
  for (int64_t i = 0; i < rows; i++)
    o += sprintf(o, "%s%s", i ? ", " : "", tuple);
  return sql;
}

static int64_t wl_bulk_insert(void) {
  reset_table(0);
  int64_t n = sized(100000);
  int64_t batch = n < 1000 ? n : 1000;
  int64_t rest = n % batch;
  char *sql = multi_insert_sql(batch);
  void *full = D->prepare(sql, (int)(5 * batch));
  free(sql);
  void *tail = NULL;
  if (rest) {
    sql = multi_insert_sql(rest);
    tail = D->prepare(sql, (int)(5 * rest));
    free(sql);
  }
  arg *a = xmalloc(sizeof *a * (size_t)(5 * batch));
  char (*names)[32] = xmalloc(sizeof *names * (size_t)batch);
  char ts[32];
  clock_start();
  for (int64_t done = 0; done < n;) {
    int64_t k = n - done < batch ? n - done : batch;
    timestamp_now(ts);
    for (int64_t j = 0; j < k; j++) {
      int64_t i = done + j;
      snprintf(names[j], sizeof names[j], "bulk_%" PRId64, i);
      a[5 * j + 0] = (arg){names[j], 0};
      a[5 * j + 1] = (arg){NULL, i % 1000};
      a[5 * j + 2] = (arg){NULL, i % 100};
      a[5 * j + 3] = (arg){ts, 0};
      a[5 * j + 4] = (arg){ts, 0};
    }
    if (D->run(k == batch ? full : tail, a, NULL, NULL, 0) != k)
      die("bulk insert: short insert");
    done += k;
  }
  clock_stop();
  D->finalize(full);
  if (tail) D->finalize(tail);
  free(a);
  free(names);
  expect_count(n);
  return n;
}

static int64_t wl_pk_lookup(void) {
  int64_t seed = sized(SEED_ROWS);
  reset_table(seed);
  void *sel = D->prepare("SELECT " SEL_COLS " FROM players WHERE id = ?", 1);
  int64_t n = scaled(20000);
  row r;
  clock_start();
  for (int64_t i = 0; i < n; i++) {
    arg a = {NULL, rng_id(seed)};
    if (D->run(sel, &a, copy_row, &r, 0) != 1) die("pk lookup missed");
    sink += r.coins;
  }
  clock_stop();
  D->finalize(sel);
  return n;
}

static int64_t wl_scan(void) {
  int64_t seed = sized(SEED_ROWS);
  reset_table(seed);
  int64_t want = 0;
  for (int64_t i = 1; i <= seed; i++) want += i % 1000 > SCAN_THRESHOLD;
  void *sel = D->prepare("SELECT " SEL_COLS
                         " FROM players WHERE coins > ?", 1);
  rowvec all = {0};
  int64_t total = 0;
  clock_start();
  for (int rep = 0; rep < 5; rep++) {
    all.n = 0;
    arg a = {NULL, SCAN_THRESHOLD};
    int64_t got = D->run(sel, &a, push_row, &all, 0);
    if (got != want) die("scan returned %" PRId64 " rows, expected %" PRId64,
                         got, want);
    total += got;
  }
  clock_stop();
  sink += all.n ? all.v[all.n - 1].coins : 0;
  free(all.v);
  D->finalize(sel);
  return total;
}

static int64_t wl_update(void) {
  int64_t seed = sized(SEED_ROWS);
  reset_table(seed);
  void *sel = D->prepare("SELECT " SEL_COLS " FROM players WHERE id = ?", 1);
  void *upd = D->prepare("UPDATE players SET coins = ?, updated_at = ? "
                         "WHERE id = ?", 3);
  int64_t n = scaled(5000);
  row r;
  char ts[32];
  clock_start();
  for (int64_t i = 0; i < n; i++) {
    arg k = {NULL, rng_id(seed)};
    if (D->run(sel, &k, copy_row, &r, 0) != 1) die("update: row missing");
    r.coins += 1;
    timestamp_now(ts);
    arg a[3] = {{NULL, r.coins}, {ts, 0}, {NULL, r.id}};
    if (D->run(upd, a, NULL, NULL, 0) != 1) die("update: no row updated");
  }
  clock_stop();
  D->finalize(sel);
  D->finalize(upd);
  return n;
}

static int64_t wl_txn_transfer(void) {
  int64_t seed = sized(SEED_ROWS);
  if (seed < 2) seed = 2;
  reset_table(seed);
  int64_t before = D->scalar("SELECT SUM(coins) FROM players");
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT " SEL_COLS
           " FROM players WHERE id IN (?, ?)%s", D->lock_clause);
  void *sel = D->prepare(sql, 2);
  void *upd = D->prepare("UPDATE players SET coins = ?, updated_at = ? "
                         "WHERE id = ?", 3);
  int64_t n = scaled(2000);
  rowvec pair = {0};
  char ts[32];
  clock_start();
  for (int64_t i = 0; i < n; i++) {
    int64_t from = rng_id(seed), to;
    do to = rng_id(seed); while (to == from);
    int64_t amount = 1 + (int64_t)(rng_next() % 10);
    D->exec(D->begin_sql);
    pair.n = 0;
    arg k[2] = {{NULL, from}, {NULL, to}};
    if (D->run(sel, k, push_row, &pair, 0) != 2) die("transfer: rows missing");
    row *a = &pair.v[0], *b = &pair.v[1];
    if (a->id != from) { row *t = a; a = b; b = t; }
    a->coins -= amount;
    b->coins += amount;
    timestamp_now(ts);
    arg ua[3] = {{NULL, a->coins}, {ts, 0}, {NULL, a->id}};
    arg ub[3] = {{NULL, b->coins}, {ts, 0}, {NULL, b->id}};
    if (D->run(upd, ua, NULL, NULL, 0) != 1 ||
        D->run(upd, ub, NULL, NULL, 0) != 1)
      die("transfer: update missed");
    D->exec("COMMIT");
  }
  clock_stop();
  free(pair.v);
  D->finalize(sel);
  D->finalize(upd);
  /* Transfers conserve coins: a cheap check that every commit happened
   * as a whole. */
  if (D->scalar("SELECT SUM(coins) FROM players") != before)
    die("transfer: total coins changed");
  return n;
}

static int64_t wl_stream(void) {
  int64_t n = sized(1000000);
  reset_table(n);
  void *sel = D->prepare("SELECT " SEL_COLS " FROM players", 0);
  clock_start();
  int64_t got = D->run(sel, NULL, ignore_row, NULL, 1);
  clock_stop();
  if (got != n) die("stream read %" PRId64 " rows, expected %" PRId64, got, n);
  D->finalize(sel);
  return got;
}

typedef struct workload {
  const char *name;
  int64_t (*fn)(void);
} workload;

static const workload workloads[] = {
  {"insert_single", wl_insert_single},
  {"bulk_insert", wl_bulk_insert},
  {"pk_lookup", wl_pk_lookup},
  {"scan", wl_scan},
  {"update", wl_update},
  {"txn_transfer", wl_txn_transfer},
  {"stream", wl_stream},
};
#define NWORKLOADS (sizeof workloads / sizeof *workloads)

static void usage(void) {
  fprintf(stderr, "usage: raw_bench <sqlite|mysql|postgres> <workload|all>\n"
                  "workloads:");
  for (size_t i = 0; i < NWORKLOADS; i++)
    fprintf(stderr, " %s", workloads[i].name);
  fputc('\n', stderr);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc != 3) usage();
  if (!strcmp(argv[1], "sqlite")) D = &sqlite_driver;
  else if (!strcmp(argv[1], "mysql")) D = &mysql_driver;
  else if (!strcmp(argv[1], "postgres")) D = &postgres_driver;
  else usage();
  int all = !strcmp(argv[2], "all"), found = 0;
  for (size_t i = 0; i < NWORKLOADS; i++)
    found |= !strcmp(argv[2], workloads[i].name);
  if (!all && !found) usage();

  char *end;
  scale = strtod(env_or("SCALE", "1"), &end);
  if (*end || !(scale > 0)) die("SCALE must be a positive number");
  bench_rows = strtoll(env_or("BENCH_ROWS", "0"), &end, 10);
  if (*end || bench_rows < 0) die("BENCH_ROWS must be a row count");

  D->open();
  for (size_t i = 0; i < NWORKLOADS; i++) {
    const workload *w = &workloads[i];
    if (!all && strcmp(argv[2], w->name)) continue;
    fprintf(stderr, "# raw_c %s %s (SCALE=%g)\n", D->name, w->name, scale);
    reset_peak_rss();
    int64_t ops = w->fn();
    double secs = t_stop - t_start;
    printf("RESULT %s %s raw_c %" PRId64 " %.6f %.1f %ld\n", w->name, D->name,
           ops, secs, secs > 0 ? (double)ops / secs : 0.0, peak_rss_kib());
    fflush(stdout);
  }
  D->exec("DROP TABLE IF EXISTS players");
  D->close();
  return 0;
}
