/*
 * test_replset_live.c - the replica set (sq_replset_*) against the real
 * MariaDB replica and PostgreSQL streaming standby of
 * scripts/test-servers.sh (families mysql-replica, postgres-standby).
 *
 * Per pair, with replication paused so the two servers differ:
 *   - reads go to the replica: a row present only there is read (MariaDB:
 *     written on the replica by the admin user; PostgreSQL: the standby
 *     lacks a row written on the primary after the pause);
 *   - writes go to the primary, and a caller whose last write is within
 *     `sticky` seconds reads from the primary (read-your-writes);
 *   - a read-only transaction runs on the replica, where a write fails
 *     (MariaDB: error 1290, read_only; PostgreSQL: SQLSTATE 25006);
 *   - a replica that can't be reached (a port nothing listens on): reads
 *     fall back to the primary, or with fallback off fail with kind
 *     connection naming it; on PostgreSQL a read-only transaction that
 *     fell back to the primary is still read-only (25006).
 * Each pool reports its own stats.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "live.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define TABLE "sq_replset_t"

static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &al)) return 1;
  close(fd);
  return ntohs(a.sin_port);
}

/* The rows of "SELECT v FROM t ORDER BY id" read through the set. */
static int read_set(sq_replset *s, double last_write, int *index, char *out, size_t n, sq_err *e) {
  live_rows r;
  sq_row_sink sink = live_sink(&r);
  static const char sql[] = "SELECT v FROM " TABLE " ORDER BY id";
  int rc = sq_replset_exec_read(s, last_write, sql, sizeof sql - 1, NULL, 0, &sink, NULL, index, e);
  if (rc) snprintf(out, n, "(%.500s)", e->msg);
  else live_join(&r, out, n);
  return rc;
}

static sq_replset *open_set(const sq_config *w, const sq_config *r, double sticky, int fallback, sq_err *e) {
  sq_replset_opts o;
  sq_replset_opts_init(&o);
  o.sticky = sticky;
  o.fallback = fallback;
  sq_replset *s = NULL;
  if (sq_replset_open(w, r, 1, &o, &s, e)) printf("FAIL - replica set: %s\n", e->msg);
  return s;
}

typedef struct pair {
  const char *name;       /* "mysql" / "postgres" */
  const char *family;     /* test-servers family */
  const char *primary_url, *replica_url;
  const char *replica_admin_url; /* MariaDB: a user who may write on the replica; else NULL */
  const char *write_error;       /* what a write on the replica raises (code or SQLSTATE) */
} pair;

static void run_pair(const pair *pr) {
  sq_err e;
  char buf[1024];
  printf("# %s: primary and replica\n", pr->name);
  sq_config w, r;
  live_config(&w, pr->primary_url, "pool.max=2");
  live_config(&r, pr->replica_url, "pool.max=2");
  sq_replset *s = open_set(&w, &r, 2, 1, &e);
  if (!s) return;
  sq_pool *primary = sq_replset_primary(s);
  live_exec(primary, "DROP TABLE IF EXISTS " TABLE, NULL, 0, NULL, &e);
  int rc = live_exec(primary, "CREATE TABLE " TABLE " (id int PRIMARY KEY, v varchar(32))", NULL, 0, NULL, &e);
  if (!rc) rc = live_exec(primary, "INSERT INTO " TABLE " VALUES (1, 'both')", NULL, 0, NULL, &e);
  char words[64];
  snprintf(words, sizeof words, "replication sync %s", pr->name);
  if (!rc) rc = live_servers(words) ? SQ_EINTERNAL : SQ_OK;
  snprintf(words, sizeof words, "replication pause %s", pr->name);
  if (!rc) rc = live_servers(words) ? SQ_EINTERNAL : SQ_OK;
  CHECK(rc == SQ_OK, "table on the primary, replicated, replication paused: %s", rc ? e.msg : "");
  /* now the two differ */
  sq_value two = sq_int(2);
  rc = live_exec(primary, "INSERT INTO " TABLE " VALUES (?, 'primary only')", &two, 1, NULL, &e);
  double wrote = sq_replset_now();
  CHECK(rc == SQ_OK, "a write on the primary: %s", rc ? e.msg : "");
  sq_pool *admin = NULL;
  if (pr->replica_admin_url) {
    sq_config a;
    live_config(&a, pr->replica_admin_url, NULL);
    if (sq_pool_open(&a, &admin, &e) == SQ_OK) {
      rc = live_exec(admin, "INSERT INTO " TABLE " VALUES (3, 'replica only')", NULL, 0, NULL, &e);
      CHECK(rc == SQ_OK, "a row only the replica has (written there by the admin user): %s", rc ? e.msg : "");
    }
    sq_config_free(&a);
  }
  const char *on_replica = pr->replica_admin_url ? "both,replica only" : "both";
  int index = -9;
  read_set(s, 0, &index, buf, sizeof buf, &e);
  CHECK(index == 0 && !strcmp(buf, on_replica), "a read goes to the replica: [%s]", buf);
  read_set(s, wrote, &index, buf, sizeof buf, &e);
  CHECK(index == -1 && !strcmp(buf, "both,primary only"), "read-your-writes: within sticky, the primary: [%s]", buf);
  read_set(s, wrote - 10, &index, buf, sizeof buf, &e);
  CHECK(index == 0 && !strcmp(buf, on_replica), "a write older than sticky: the replica again: [%s]", buf);

  /* a write on a connection to the replica fails */
  sq_conn *rc_conn = NULL;
  rc = sq_replset_acquire_read(s, 0, -1, NULL, &rc_conn, &index, &e);
  if (rc_conn) {
    rc = live_conn_exec(rc_conn, "INSERT INTO " TABLE " VALUES (8, 'nope')", NULL, 0, NULL, &e);
    CHECK(index == 0 && rc != SQ_OK && (!strcmp(e.code, pr->write_error) || !strcmp(e.sqlstate, pr->write_error)),
          "a write on the replica fails: %s %s (%s)", e.code, e.sqlstate, e.msg);
    sq_pool_release(NULL, rc_conn);
  }
  /* a read-only transaction: on the replica, where writes fail */
  sq_tx *tx = NULL;
  rc = sq_replset_begin_read(s, 0, NULL, SQ_ISO_DEFAULT, &tx, &index, &e);
  CHECK(rc == SQ_OK && index == 0, "a read-only transaction begins on the replica: %s", rc ? e.msg : "");
  if (tx) {
    live_rows lr;
    rc = live_tx_exec(tx, "SELECT count(*) FROM " TABLE, NULL, 0, &lr, &e);
    CHECK(rc == SQ_OK && !strcmp(lr.row[0], pr->replica_admin_url ? "2" : "1"), "it reads the replica (%s rows)",
          rc ? e.msg : lr.row[0]);
    rc = live_tx_exec(tx, "INSERT INTO " TABLE " VALUES (9, 'nope')", NULL, 0, NULL, &e);
    CHECK(rc != SQ_OK && (!strcmp(e.code, pr->write_error) || !strcmp(e.sqlstate, pr->write_error)),
          "a write in it fails: %s %s (%s)", e.code, e.sqlstate, e.msg);
    sq_err e2;
    sq_tx_rollback(tx, &e2);
    sq_tx_free(tx);
  }
  sq_replica_state st;
  sq_replset_state(s, 0, &st);
  sq_pool_stats ps, pp;
  sq_pool_stats_get(sq_replset_read_pool(s, 0), &ps);
  sq_pool_stats_get(primary, &pp);
  CHECK(st.picks >= 4 && ps.created >= 1 && ps.in_use == 0 && pp.in_use == 0,
        "per-pool stats: replica %lld picks, %lld created; primary %lld created", (long long)st.picks,
        (long long)ps.created, (long long)pp.created);
  sq_replset_close(s);

  /* an unreachable replica */
  printf("# %s: the replica can't be reached\n", pr->name);
  sq_config dead;
  char dead_url[512];
  snprintf(dead_url, sizeof dead_url, "%s", pr->replica_url);
  char *colon = strrchr(dead_url, ':'), *slash = colon ? strchr(colon, '/') : NULL;
  if (colon && slash) {
    char tail[256];
    snprintf(tail, sizeof tail, "%s", slash);
    snprintf(colon, sizeof dead_url - (size_t)(colon - dead_url), ":%d%s", dead_port(), tail);
  }
  live_config(&dead, dead_url, "connect_timeout=2");
  s = open_set(&w, &dead, 0, 1, &e);
  if (s) {
    rc = read_set(s, 0, &index, buf, sizeof buf, &e);
    CHECK(rc == SQ_OK && index == -1 && !strcmp(buf, "both,primary only"), "fallback on: the primary answers [%s]",
          buf);
    sq_replset_state(s, 0, &st);
    CHECK(st.down && st.failures == 1, "the replica is skipped for %.1f s", st.retry_in);
    rc = sq_replset_begin_read(s, 0, NULL, SQ_ISO_DEFAULT, &tx, &index, &e);
    CHECK(rc == SQ_OK && index == -1, "a read-only transaction falls back too: %s", rc ? e.msg : "");
    if (tx) {
      rc = live_tx_exec(tx, "INSERT INTO " TABLE " VALUES (9, 'nope')", NULL, 0, NULL, &e);
      if (!strcmp(pr->name, "postgres"))
        CHECK(rc != SQ_OK && !strcmp(e.sqlstate, "25006"), "on PostgreSQL it stays read-only: %s (%s)", e.sqlstate,
              e.msg);
      sq_err e2;
      sq_tx_rollback(tx, &e2);
      sq_tx_free(tx);
    }
    sq_replset_close(s);
  }
  s = open_set(&w, &dead, 0, 0, &e);
  if (s) {
    rc = read_set(s, 0, &index, buf, sizeof buf, &e);
    char port[16];
    snprintf(port, sizeof port, ":%d)", dead.port);
    CHECK(rc == SQ_ECONNECTION && strstr(e.msg, "replica 1 (127.0.0.1") && strstr(e.msg, port) &&
              !strstr(e.msg, live_env(!strcmp(pr->name, "mysql") ? "SQORM_TEST_MYSQL_PASSWORD" : "SQORM_TEST_PG_PASSWORD")),
          "fallback off: kind connection naming the replica: %s", e.msg);
    sq_replset_close(s);
  }
  sq_config_free(&dead);

  /* clean up: the replica-only row first, so replication can resume */
  if (admin) {
    live_exec(admin, "DELETE FROM " TABLE " WHERE id = 3", NULL, 0, NULL, &e);
    sq_pool_close(admin);
  }
  snprintf(words, sizeof words, "replication resume %s", pr->name);
  live_servers(words);
  sq_pool *p;
  if (sq_pool_open(&w, &p, &e) == SQ_OK) {
    live_exec(p, "DROP TABLE IF EXISTS " TABLE, NULL, 0, NULL, &e);
    sq_pool_close(p);
  }
  snprintf(words, sizeof words, "replication sync %s", pr->name);
  CHECK(live_servers(words) == 0, "replication resumed and in sync");
  sq_config_free(&w);
  sq_config_free(&r);
}

int main(void) {
  int my = live_has("mysql-replica"), pg = live_has("postgres-standby");
  if (!my && !pg) live_need("mysql-replica");
  sq_err e;
  if (sq_global_init(&e)) return 1;
  char admin[512];
  if (my) {
    snprintf(admin, sizeof admin, "mysql://%s:%s@%s:%s/%s", live_env("SQORM_TEST_MYSQL_ADMIN_USER"),
             live_env("SQORM_TEST_MYSQL_ADMIN_PASSWORD"), live_env("SQORM_TEST_MYSQL_HOST"),
             live_env("SQORM_TEST_MYSQL_REPLICA_PORT"), live_env("SQORM_TEST_MYSQL_DB"));
    pair m = {"mysql", "mysql-replica", live_env("SQORM_TEST_MYSQL_URL"), live_env("SQORM_TEST_MYSQL_REPLICA_URL"),
              admin, "1290"};
    run_pair(&m);
  } else {
    printf("# (MariaDB replica not started: skipped)\n");
  }
  if (pg) {
    pair p = {"postgres", "postgres-standby", live_env("SQORM_TEST_PG_URL"), live_env("SQORM_TEST_PG_STANDBY_URL"),
              NULL, "25006"};
    run_pair(&p);
  } else {
    printf("# (PostgreSQL standby not started: skipped)\n");
  }
  int f = atomic_load(&live_failures);
  printf("%d failed\n", f);
  return f ? 1 : 0;
}
