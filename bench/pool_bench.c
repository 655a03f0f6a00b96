/*
 * pool_bench.c - what one acquire+release costs, measured over a no-op
 * driver so the figures are the pool's own (lock, queue, hand-off,
 * bookkeeping), not a server's.
 *
 *   uncontended:  1 thread, 1,000,000 acquire+release cycles
 *   contended:    8 threads on a pool of max 4, and of max 8
 *   pool_exec:    1 thread, sq_pool_exec of a one-placeholder statement
 *                 (adds the placeholder rewrite and the driver call)
 *
 * A benchmark, not a test: it prints figures and checks nothing but that
 * every call succeeded. The project's CMake builds it as
 * build/bench/pool_bench (run it from a Release or RelWithDebInfo tree).
 * Optional argument: cycles per run (default 1000000).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "sqorm.h"
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The no-op driver: a connection is a malloc'd byte. */
static int n_open(const sq_config *cfg, sq_dconn **out, sq_err *err) {
  (void)cfg;
  *out = malloc(1);
  return *out ? SQ_OK : sq_err_set(err, SQ_ENOMEM, "out of memory");
}
static void n_close(sq_dconn *c) { free(c); }
static int n_ping(sq_dconn *c, sq_err *err) {
  (void)c;
  (void)err;
  return SQ_OK;
}
static int n_is_dead(sq_dconn *c) {
  (void)c;
  return 0;
}
static int n_exec(sq_dconn *c, const char *sql, size_t len, const sq_value *params, int nparams,
                  const sq_row_sink *sink, sq_result *res, sq_err *err) {
  (void)c; (void)sql; (void)len; (void)params; (void)nparams; (void)sink; (void)err;
  if (res) res->affected_rows = 0;
  return SQ_OK;
}
static int n_in_tx(sq_dconn *c) {
  (void)c;
  return 0;
}
static int n_reset(sq_dconn *c, int full, sq_err *err) {
  (void)full;
  (void)c;
  (void)err;
  return SQ_OK;
}

static int n_rollback(sq_dconn *c, sq_err *err) { return n_reset(c, 0, err); }

static const sq_driver noop = {
  .name = "noop",
  .dialect = SQ_DIALECT_MYSQL,
  .ph_style = SQ_PH_QMARK,
  .open = n_open,
  .close = n_close,
  .ping = n_ping,
  .is_dead = n_is_dead,
  .exec = n_exec,
  .in_transaction = n_in_tx,
  .reset = n_reset,
  .rollback = n_rollback,
};

static sq_pool *open_pool(int max) {
  sq_config cfg;
  sq_config_init(&cfg);
  cfg.dialect = SQ_DIALECT_MYSQL;
  cfg.pool.max = max;
  cfg.pool.acquire_timeout = 60;
  sq_pool *p;
  sq_err err;
  if (sq_pool_open_driver(&cfg, &noop, &p, &err) != SQ_OK) {
    fprintf(stderr, "open: %s\n", err.msg);
    exit(1);
  }
  sq_config_free(&cfg);
  return p;
}

typedef struct job {
  sq_pool *p;
  long cycles;
  pthread_barrier_t *start;
} job;

static void *cycle(void *arg) {
  job *j = arg;
  sq_err err;
  if (j->start) pthread_barrier_wait(j->start);
  for (long i = 0; i < j->cycles; i++) {
    sq_conn *c;
    if (sq_pool_acquire(j->p, -1, &c, &err) != SQ_OK) {
      fprintf(stderr, "acquire: %s\n", err.msg);
      exit(1);
    }
    sq_pool_release(j->p, c);
  }
  return NULL;
}

static void uncontended(long cycles) {
  sq_pool *p = open_pool(5);
  job j = {p, cycles / 10, NULL};
  cycle(&j); /* warm up: the first acquire connects */
  j.cycles = cycles;
  double t0 = sq_now();
  cycle(&j);
  double dt = sq_now() - t0;
  printf("uncontended     1 thread,  max 5: %8.1f ns/op  (%ld acquire+release)\n", dt * 1e9 / (double)cycles,
         cycles);
  sq_pool_close(p);
}

static void contended(int threads, int max, long cycles) {
  sq_pool *p = open_pool(max);
  pthread_t th[64];
  job jobs[64];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
  long per = cycles / threads;
  for (int i = 0; i < threads; i++) {
    jobs[i] = (job){p, per, &start};
    pthread_create(&th[i], NULL, cycle, &jobs[i]);
  }
  pthread_barrier_wait(&start);
  double t0 = sq_now();
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  double dt = sq_now() - t0;
  long total = per * threads;
  sq_pool_stats st;
  sq_pool_stats_get(p, &st);
  printf("contended     %2d threads, max %d: %8.1f ns/op wall (%.2f M ops/s; %ld ops, %lld opened)\n", threads,
         max, dt * 1e9 / (double)total, (double)total / dt / 1e6, total, (long long)st.created);
  pthread_barrier_destroy(&start);
  sq_pool_close(p);
}

static void pool_exec(long cycles) {
  sq_pool *p = open_pool(5);
  const char *sql = "SELECT name FROM players WHERE id = ?";
  size_t len = strlen(sql);
  sq_value v = sq_int(6);
  sq_result res;
  sq_err err;
  for (int pass = 0; pass < 2; pass++) {
    long n = pass ? cycles : cycles / 10;
    double t0 = sq_now();
    for (long i = 0; i < n; i++)
      if (sq_pool_exec(p, sql, len, &v, 1, NULL, &res, &err) != SQ_OK) {
        fprintf(stderr, "exec: %s\n", err.msg);
        exit(1);
      }
    double dt = sq_now() - t0;
    if (pass)
      printf("sq_pool_exec    1 thread,  max 5: %8.1f ns/op  (acquire + rewrite + no-op exec + release)\n",
             dt * 1e9 / (double)n);
  }
  sq_pool_close(p);
}

int main(int argc, char **argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 1000000;
  if (cycles < 1000) cycles = 1000;
  uncontended(cycles);
  contended(8, 4, cycles);
  contended(8, 8, cycles);
  pool_exec(cycles);
  return 0;
}
