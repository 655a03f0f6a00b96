/*
 * c_async.c - operations run asynchronously from C, with no Lua: the
 * host's thread submits them to the pool's worker threads and waits on
 * the completion queue's file descriptor with poll(2), as an event loop
 * would (libuv, epoll, a game's tick). It never blocks on the database.
 *
 *   c_async [URL]     (default: a SQLite file in /tmp)
 *
 * 1. 64 lookups submitted at once (pool.max = 4: they queue in the pool
 *    without occupying a thread), each completing exactly once into the
 *    queue; the loop pops them, completes them (sq_oper_complete) and
 *    replays their recorded rows into a sink on this thread.
 * 2. A transaction: BEGIN (an op on the pool that hands back an sq_tx),
 *    two statements on its connection, COMMIT - each submitted, waited for
 *    on the fd, completed.
 * 3. A query with a timeout that can't be met: kind timeout.
 */
#include "sqorm.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 64

static int dialect;

static int fail(const char *what, const sq_err *e) {
  fprintf(stderr, "c_async: %s: [%s] %s\n", what, sq_kind_name(e->kind), e->msg);
  return 1;
}

/* The sink: sums column 0 of set 0's rows into *(int64_t *)ud. */
static int on_columns(void *ud, int set, int ncols, const sq_column *cols, sq_err *err) {
  (void)ud, (void)set, (void)ncols, (void)cols, (void)err;
  return 0;
}
static int on_row(void *ud, int set, int64_t parent, int ncols, const sq_value *v, sq_err *err) {
  (void)set, (void)parent, (void)err;
  if (ncols > 0 && v[0].type == SQ_VINT) *(int64_t *)ud += v[0].u.i;
  else if (ncols > 0 && v[0].type == SQ_VTEXT) *(int64_t *)ud += strtoll(v[0].u.s.p, NULL, 10);
  return 0;
}

/* SQL with ? placeholders, in the driver's own. */
static int add_sql(sq_oper *op, const char *sql, const sq_value *vals, int n, sq_err *err) {
  sq_stmt_text t;
  if (sq_stmt_rewrite_dialect(dialect, sql, strlen(sql), &t, err)) return err->kind;
  int rc = sq_oper_add_sql(op, t.sql, t.len, vals, n, 0, err);
  sq_stmt_text_free(&t);
  return rc;
}

/* Waits on the fd (poll(2), never a blocking call into sqorm) until op's
 * completion was popped and completed. Other completions popped meanwhile
 * are completed too and counted in *others. */
static void wait_for(sq_cq *cq, sq_oper *want, int *others) {
  for (;;) {
    struct pollfd p = {sq_cq_fd(cq), POLLIN, 0};
    poll(&p, 1, 100);
    sq_job *job;
    while ((job = sq_cq_pop(cq))) {
      sq_oper *op = sq_oper_of_job(job);
      if (sq_oper_complete(op)) continue; /* submitted again: a retry */
      if (op == want) return;
      if (others) ++*others;
    }
  }
}

/* Submits op and waits for it; 0 when it completed at once. */
static int run_async(sq_cq *cq, sq_oper *op) {
  sq_err e;
  if (sq_oper_submit(op, cq, NULL, &e) != 1) return sq_oper_rc(op);
  wait_for(cq, op, NULL);
  return sq_oper_rc(op);
}

int main(int argc, char **argv) {
  char file[96], def[128];
  snprintf(file, sizeof file, "/tmp/sqorm-c-async-%ld.db", (long)getpid());
  snprintf(def, sizeof def, "sqlite://%s", file);
  const char *url = argc > 1 && argv[1][0] ? argv[1] : def;
  sq_err err;
  sq_err_clear(&err);
  if (sq_global_init(&err)) return fail("init", &err);
  sq_config cfg;
  sq_config_init(&cfg);
  if (sq_config_parse_url(&cfg, url, &err) || sq_config_set(&cfg, "pool.max", "4", &err) ||
      sq_config_finish(&cfg, &err)) {
    sq_config_free(&cfg);
    return fail("config", &err);
  }
  dialect = cfg.dialect;
  sq_pool *pool;
  int rc = sq_pool_open(&cfg, &pool, &err);
  sq_config_free(&cfg);
  if (rc) return fail("pool", &err);
  sq_cq *cq;
  if (sq_cq_new(&cq, &err)) return fail("completion queue", &err);

  sq_oper *ops[N];
  for (int i = 0; i < N; i++)
    if (sq_oper_new(&ops[i], &err)) return fail("op", &err);
  sq_oper *op = ops[0];
  const char *setup[] = {"DROP TABLE IF EXISTS c_async_acct",
                         "CREATE TABLE c_async_acct (id INTEGER PRIMARY KEY, coins INTEGER NOT NULL)"};
  for (int i = 0; i < 2; i++) {
    sq_oper_reset(op, SQ_OPER_RAW);
    sq_oper_target_pool(op, pool, NULL);
    if (add_sql(op, setup[i], NULL, 0, &err)) return fail("build", &err);
    if (run_async(cq, op)) return fail("setup", sq_oper_err(op));
  }
  for (int i = 1; i <= N; i++) {
    sq_value v[2] = {sq_int(i), sq_int(i * 10)};
    sq_oper_reset(op, SQ_OPER_RAW);
    sq_oper_target_pool(op, pool, NULL);
    if (add_sql(op, "INSERT INTO c_async_acct (id, coins) VALUES (?, ?)", v, 2, &err)) return fail("build", &err);
    if (run_async(cq, op)) return fail("insert", sq_oper_err(op));
  }

  /* 1. 64 lookups in flight at once on pool.max = 4 */
  int64_t sums[N];
  long long loops = 0;
  for (int i = 0; i < N; i++) {
    sums[i] = 0;
    sq_value v = sq_int(i + 1);
    sq_oper_reset(ops[i], SQ_OPER_SELECT);
    sq_oper_target_pool(ops[i], pool, NULL);
    if (add_sql(ops[i], "SELECT coins FROM c_async_acct WHERE id = ?", &v, 1, &err)) return fail("build", &err);
    sq_oper_sink s = {&sums[i], on_columns, on_row, NULL};
    sq_oper_set_sink(ops[i], &s);
    if (sq_oper_submit(ops[i], cq, &sums[i], &err) != 1) return fail("submit", sq_oper_err(ops[i]));
  }
  int done = 0, wrong = 0;
  while (done < N) {
    struct pollfd p = {sq_cq_fd(cq), POLLIN, 0};
    poll(&p, 1, 1); /* a 1 ms tick: the host's own work would go here */
    loops++;
    sq_job *job;
    while ((job = sq_cq_pop(cq))) {
      sq_oper *o = sq_oper_of_job(job);
      if (sq_oper_complete(o)) continue;
      if (sq_oper_rc(o)) return fail("lookup", sq_oper_err(o));
      if (sq_oper_replay(o, NULL, &err)) return fail("replay", &err);
      int i = (int)((int64_t *)job->tag - sums);
      if (sums[i] != (int64_t)(i + 1) * 10) wrong++;
      done++;
    }
  }
  printf("lookups: %d completed, %d wrong, in %lld loop turns; in flight now %d\n", done, wrong, loops,
         sq_cq_inflight(cq));

  /* 2. a transaction, one op at a time on its connection */
  sq_oper_reset(op, SQ_OPER_BEGIN);
  sq_oper_target_pool(op, pool, NULL);
  if (run_async(cq, op)) return fail("begin", sq_oper_err(op));
  sq_tx *tx = sq_oper_take_tx(op);
  const char *moves[] = {"UPDATE c_async_acct SET coins = coins - 5 WHERE id = 1",
                         "UPDATE c_async_acct SET coins = coins + 5 WHERE id = 2"};
  for (int i = 0; i < 2; i++) {
    sq_oper_reset(op, SQ_OPER_RAW);
    sq_oper_target_tx(op, tx);
    if (add_sql(op, moves[i], NULL, 0, &err)) return fail("build", &err);
    if (run_async(cq, op)) return fail("update", sq_oper_err(op));
  }
  sq_oper_reset(op, SQ_OPER_COMMIT);
  sq_oper_target_tx(op, tx);
  if (run_async(cq, op)) return fail("commit", sq_oper_err(op));
  sq_oper_reset(op, SQ_OPER_NONE);
  sq_tx_free(tx);
  int64_t total = 0;
  sq_oper_reset(op, SQ_OPER_SELECT);
  sq_oper_target_pool(op, pool, NULL);
  if (add_sql(op, "SELECT SUM(coins) AS n FROM c_async_acct", NULL, 0, &err)) return fail("build", &err);
  sq_oper_sink s = {&total, on_columns, on_row, NULL};
  sq_oper_set_sink(op, &s);
  if (run_async(cq, op) || sq_oper_replay(op, NULL, &err)) return fail("sum", sq_oper_err(op));
  printf("transaction: committed; total coins %" PRId64 "\n", total);

  /* 3. a deadline that can't be met */
  sq_oper_reset(op, SQ_OPER_SELECT);
  sq_oper_target_pool(op, pool, NULL);
  const char *slow = dialect == SQ_DIALECT_POSTGRES ? "SELECT pg_sleep(3)"
                     : dialect == SQ_DIALECT_MYSQL  ? "SELECT SLEEP(3)"
                                                    : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                                      "SELECT max(x) FROM c";
  if (add_sql(op, slow, NULL, 0, &err)) return fail("build", &err);
  sq_oper_set_timeout(op, 0.2);
  double t0 = sq_clock();
  rc = run_async(cq, op);
  double took = sq_clock() - t0;
  /* MariaDB's SLEEP() may end early without an error when KILL QUERY
   * lands on it: stopped in time either way */
  int stopped = rc == SQ_ETIMEOUT || (rc == SQ_OK && dialect == SQ_DIALECT_MYSQL && took < 2.5);
  printf("timeout: %s (kind %s)\n", stopped ? "stopped in time" : "NOT stopped", sq_kind_name(rc));

  sq_oper_reset(op, SQ_OPER_RAW);
  sq_oper_target_pool(op, pool, NULL);
  if (add_sql(op, "DROP TABLE c_async_acct", NULL, 0, &err)) return fail("build", &err);
  run_async(cq, op);
  for (int i = 0; i < N; i++) sq_oper_free(ops[i]);
  sq_pool_stats st;
  sq_pool_stats_get(pool, &st);
  printf("pool: size %d, in use %d\n", st.size, st.in_use);
  sq_cq_close(cq);
  sq_pool_close(pool);
  if (url == def) {
    remove(file);
    char side[128];
    snprintf(side, sizeof side, "%s-wal", file);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", file);
    remove(side);
  }
  int ok = done == N && !wrong && total == (int64_t)N * (N + 1) / 2 * 10 && stopped && st.in_use == 0;
  printf("c_async: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
