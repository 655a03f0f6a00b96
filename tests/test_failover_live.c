/*
 * test_failover_live.c - multi-host failover for MySQL-family URLs
 * (mysql://u:p@h1:3306,h2:3306,h3:3306/db) against real servers.
 *
 * With the test MariaDB (family mysql): a list whose first host refuses
 * connects to the next and marks the first down for host_backoff
 * seconds; when no host answers, the error lists every host tried (and
 * never the password); a refused login is returned at once, without
 * trying the other hosts.
 *
 * With the 3-node Galera cluster (family galera), over TLS verified
 * against the test CA: new connections go to node 1 while it is up; node
 * 1 is killed: the pooled connections to it are discarded, the statement
 * that found its connection dead is retried and lands on node 2, and
 * node 1 is skipped by new connections during the backoff, tried again
 * after it (and skipped for twice as long when that fails); node 1 is
 * restarted: once its backoff is over, new connections go to it again.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "live.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A loopback port nothing listens on. */
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

/* @@port of the server behind a new connection of p (held in *c). */
static long port_of_conn(sq_conn *c, sq_err *e) {
  live_rows r;
  if (live_conn_exec(c, "SELECT @@port", NULL, 0, &r, e)) return -1;
  return r.n == 1 ? atol(r.row[0]) : -1;
}

static long port_of_pool(sq_pool *p, sq_err *e) {
  live_rows r;
  if (live_exec(p, "SELECT @@port", NULL, 0, &r, e)) return -1;
  return r.n == 1 ? atol(r.row[0]) : -1;
}

/* A pool over url with one fresh connection opened and its port read. */
static long fresh_port(const char *url, const char *query, sq_err *e) {
  sq_config cfg;
  live_config(&cfg, url, query);
  sq_pool *p;
  long port = -1;
  if (sq_pool_open(&cfg, &p, e) == SQ_OK) {
    port = port_of_pool(p, e);
    sq_pool_close(p);
  }
  sq_config_free(&cfg);
  return port;
}

static void with_mysql(void) {
  const char *host = live_env("SQORM_TEST_MYSQL_HOST"), *port = live_env("SQORM_TEST_MYSQL_PORT");
  const char *user = live_env("SQORM_TEST_MYSQL_USER"), *pw = live_env("SQORM_TEST_MYSQL_PASSWORD");
  const char *db = live_env("SQORM_TEST_MYSQL_DB");
  int d1 = dead_port(), d2 = dead_port();
  char url[512];
  sq_err e;
  printf("# MariaDB behind a host that refuses\n");
  sq_host_state_reset();
  snprintf(url, sizeof url, "mysql://%s:%s@%s:%d,%s:%s/%s", user, pw, host, d1, host, port, db);
  long got = fresh_port(url, "host_backoff=30", &e);
  CHECK(got == atol(port), "the first host refuses: connected to the second (@@port %ld): %s", got,
        got < 0 ? e.msg : "");
  sq_host_state st;
  int down = sq_host_state_get(host, d1, &st);
  CHECK(down && st.failures == 1 && st.retry_in > 25 && st.retry_in <= 30,
        "the refusing host is down for the backoff (%.1f s, %d failure)", st.retry_in, st.failures);
  CHECK(strstr(st.last_error, "onnect") != NULL && !strstr(st.last_error, pw), "its last error: %s",
        st.last_error);
  CHECK(!sq_host_state_get(host, atoi(port), &st), "the second host is up");
  got = fresh_port(url, "host_backoff=30", &e);
  down = sq_host_state_get(host, d1, &st);
  CHECK(got == atol(port) && down && st.failures == 1, "the next connection skips the down host (still %d failure)",
        st.failures);

  printf("# no host answers\n");
  snprintf(url, sizeof url, "mysql://%s:%s@%s:%d,%s:%d/%s", user, "s3cret_pw", host, d1, host, d2, db);
  got = fresh_port(url, "host_backoff=30", &e);
  CHECK(got < 0 && e.kind == SQ_ECONNECTION && strstr(e.msg, "no host answered (2 tried)"),
        "kind connection: %s", e.msg);
  char h1[64], h2[64];
  snprintf(h1, sizeof h1, "%s:%d: ", host, d1);
  snprintf(h2, sizeof h2, "%s:%d: ", host, d2);
  CHECK(strstr(e.msg, h1) && strstr(e.msg, h2) && !strstr(e.msg, "s3cret_pw"), "every host is named, no password");
  /* both were tried although d1 was down: a connect never fails untried */
  CHECK(sq_host_state_get(host, d2, &st) && st.failures == 1, "the other one is down now too");

  printf("# a refused login is not a dead host\n");
  sq_host_state_reset();
  snprintf(url, sizeof url, "mysql://%s:%s@%s:%s,%s:%d/%s", user, "wrong_pw", host, port, host, d1, db);
  got = fresh_port(url, NULL, &e);
  CHECK(got < 0 && e.kind == SQ_EAUTH, "kind auth at once: %s", e.msg);
  CHECK(!sq_host_state_get(host, d1, &st) && st.failures == 0, "the next host was not tried");
  CHECK(!sq_host_state_get(host, atoi(port), &st), "and the host that refused the login is not marked down");
}

static void with_galera(void) {
  const char *url = live_env("SQORM_TEST_GALERA_URL"), *list = live_env("SQORM_TEST_GALERA_PORTS");
  long p[3] = {0, 0, 0};
  if (!url || !list || sscanf(list, "%ld,%ld,%ld", &p[0], &p[1], &p[2]) != 3) {
    CHECK(0, "SQORM_TEST_GALERA_URL / _PORTS");
    return;
  }
  printf("# Galera: node 1 dies and comes back\n");
  sq_host_state_reset();
  /* longer than Galera's stall after a node dies (~5 s of
   * evs.suspect_timeout, during which the survivors' reads wait) */
  const double backoff = 10;
  static const char q[] = "host_backoff=10&pool.max=4&pool.idle_timeout=600";
  sq_config cfg;
  live_config(&cfg, url, q);
  CHECK(cfg.nhosts == 3 && cfg.hosts[2].port == p[2], "three hosts in the URL");
  sq_pool *pool;
  sq_err e;
  if (sq_pool_open(&cfg, &pool, &e)) {
    CHECK(0, "pool: %s", e.msg);
    return;
  }
  sq_conn *held[4] = {0};
  int all1 = 1;
  for (int i = 0; i < 3; i++) {
    if (sq_pool_acquire(pool, -1, &held[i], &e)) all1 = 0;
    else all1 &= port_of_conn(held[i], &e) == p[0];
  }
  for (int i = 0; i < 3; i++) sq_pool_release(pool, held[i]);
  CHECK(all1, "with every node up, new connections go to node 1 (%ld)", p[0]);

  CHECK(live_servers("kill galera1") == 0, "killed galera1");
  double t0 = sq_replset_now();
  long got = port_of_pool(pool, &e);
  double took = sq_replset_now() - t0;
  CHECK(got == p[1], "a read finds its connection dead and is retried on node 2 (%ld, %.1f s): %s", got, took,
        got < 0 ? e.msg : "");
  sq_host_state st;
  sq_host_state_get("127.0.0.1", (int)p[0], &st);
  CHECK(st.down && st.failures == 1, "node 1 is down (%d failure, retry in %.1f s): %s", st.failures, st.retry_in,
        st.last_error);
  /* more connections now: the dead idle ones are replaced, on node 2 */
  int all2 = 1, n = 0;
  for (int i = 0; i < 4; i++) {
    if (sq_pool_acquire(pool, -1, &held[i], &e)) {
      all2 = 0;
      printf("      acquire: %s\n", e.msg);
    } else {
      long port = port_of_conn(held[i], &e);
      all2 &= port == p[1];
      n++;
    }
  }
  sq_host_state_get("127.0.0.1", (int)p[0], &st);
  int skipped = st.failures == 1;
  CHECK(all2 && n == 4, "the pool heals onto node 2: %d connections there", n);
  CHECK(skipped, "node 1 skipped during its backoff (still %d failure)", st.failures);
  /* after the backoff, tried again (still dead): twice as long */
  live_sleep(st.retry_in + 0.2);
  for (int i = 0; i < 4; i++) {
    if (held[i]) sq_conn_mark_dead(held[i]); /* so the next acquire opens a new one */
    sq_pool_release(pool, held[i]);
    held[i] = NULL;
  }
  t0 = sq_replset_now();
  got = port_of_pool(pool, &e);
  took = sq_replset_now() - t0;
  sq_host_state_get("127.0.0.1", (int)p[0], &st);
  st.retry_in += took; /* as it was right after that connect */
  CHECK(got == p[1] && st.failures == 2 && st.retry_in > backoff && st.retry_in <= 2 * backoff + 0.5,
        "tried again after the backoff, still down: skipped for %.1f s now (%d failures)", st.retry_in, st.failures);

  CHECK(live_servers("restart galera1") == 0, "restarted galera1 (Synced)");
  sq_host_state_get("127.0.0.1", (int)p[0], &st);
  if (st.down) live_sleep(st.retry_in + 0.2);
  /* the pool's connections stay on node 2; a new one goes to node 1 */
  got = fresh_port(url, q, &e);
  CHECK(got == p[0], "after the backoff, a new connection goes to node 1 again (%ld): %s", got, got < 0 ? e.msg : "");
  CHECK(!sq_host_state_get("127.0.0.1", (int)p[0], &st) && st.failures == 0, "node 1 is up again");
  got = port_of_pool(pool, &e);
  CHECK(got == p[1], "the pool's warm connection stays where it is (node 2: %ld)", got);
  sq_pool_stats ps;
  sq_pool_stats_get(pool, &ps);
  CHECK(ps.in_use == 0 && ps.size >= 1 && ps.size <= 4, "the pool is healthy (size %d, in use %d, created %lld)",
        ps.size, ps.in_use, (long long)ps.created);
  sq_pool_close(pool);
  sq_config_free(&cfg);
}

int main(void) {
  int mysql = live_has("mysql"), galera = live_has("galera");
  if (!mysql) live_need("mysql");
  sq_err e;
  if (sq_global_init(&e)) return 1;
  if (!sq_driver_for(SQ_DIALECT_MYSQL)) {
    printf("skipped: the MySQL driver is not built\n");
    return 77;
  }
  with_mysql();
  if (galera) with_galera();
  else printf("# (Galera not started: its part skipped)\n");
  int f = atomic_load(&live_failures);
  printf("%d failed\n", f);
  return f ? 1 : 0;
}
