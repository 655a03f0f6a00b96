/*
 * include_raw.c - the raw C floor of issue 11's eager-loading workload:
 * 1,000 users x 10 posts x 3 tags in SQLite, read with one prepared join
 * (users JOIN posts JOIN post_tags JOIN tags), every column of every row
 * read, repeated for a few seconds. Prints calls/s and joined rows/s.
 *
 *   cmake -S bench -B build-bench && cmake --build build-bench
 *   build-bench/include_raw [seconds]
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define USERS 1000
#define POSTS 10
#define TAGS 3
#define NTAGS 50

static void ok(sqlite3 *db, int rc) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double budget = argc > 1 ? atof(argv[1]) : 3.0;
  sqlite3 *db;
  ok(NULL, sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL));
  ok(db, sqlite3_exec(db,
                      "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
                      "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT, author_id INTEGER REFERENCES users(id));"
                      "CREATE INDEX posts_author ON posts(author_id);"
                      "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT);"
                      "CREATE TABLE post_tags (post_id INTEGER, tag_id INTEGER, PRIMARY KEY (post_id, tag_id));"
                      "BEGIN",
                      NULL, NULL, NULL));
  sqlite3_stmt *st;
  char sql[128];
  for (int i = 1; i <= NTAGS; i++) {
    snprintf(sql, sizeof sql, "INSERT INTO tags VALUES (%d, 'tag%d')", i, i);
    ok(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
  }
  for (int u = 1; u <= USERS; u++) {
    snprintf(sql, sizeof sql, "INSERT INTO users VALUES (%d, 'user%d')", u, u);
    ok(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
    for (int p = 1; p <= POSTS; p++) {
      int pid = (u - 1) * POSTS + p;
      snprintf(sql, sizeof sql, "INSERT INTO posts VALUES (%d, 'p%d', %d)", pid, p, u);
      ok(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
      for (int k = 0; k < TAGS; k++) {
        snprintf(sql, sizeof sql, "INSERT INTO post_tags VALUES (%d, %d)", pid, (pid + k * 7) % NTAGS + 1);
        ok(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
      }
    }
  }
  ok(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
  ok(db, sqlite3_prepare_v2(db,
                            "SELECT u.id, u.name, p.id, p.title, t.id, t.name FROM users u JOIN posts p ON p.author_id = "
                            "u.id JOIN post_tags pt ON pt.post_id = p.id JOIN tags t ON t.id = pt.tag_id",
                            -1, &st, NULL));
  long calls = 0, rows = 0;
  volatile long sink = 0;
  double t0 = now(), dt;
  do {
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      sink += sqlite3_column_int64(st, 0) + sqlite3_column_bytes(st, 1) + sqlite3_column_int64(st, 2) +
              sqlite3_column_bytes(st, 3) + sqlite3_column_int64(st, 4) + sqlite3_column_bytes(st, 5);
      (void)sqlite3_column_text(st, 1);
      rows++;
    }
    ok(db, rc);
    sqlite3_reset(st);
    calls++;
  } while ((dt = now() - t0) < budget);
  if (rows != calls * USERS * POSTS * TAGS) {
    fprintf(stderr, "include_raw: %ld rows in %ld calls\n", rows, calls);
    return 1;
  }
  printf("RESULT include_raw sqlite joined calls/s=%.2f rows/s=%.0f statements/call=1.0\n", calls / dt, rows / dt);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return 0;
}
