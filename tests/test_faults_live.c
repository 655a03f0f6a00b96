/*
 * test_faults_live.c - faults under load (issue 16, item 3): a ledger
 * workload through tests/fault_proxy.c, a TCP proxy that delays,
 * truncates, resets and black-holes connections at random, while the
 * server is restarted, crashed and restarted, and its sessions are
 * killed from a side connection. Against MariaDB and PostgreSQL (their
 * plain-TCP instances: the proxy forwards bytes, TLS would pass too).
 *
 * Per dialect:
 *   1. Setup, directly (not through the proxy): ACCOUNTS accounts of
 *      INITIAL each; a ledger with a UNIQUE transfer id and a sentinel
 *      row of id 0.
 *   2. Commit reply loss, deterministic: the proxy forwards a COMMIT and
 *      resets the connection before its reply; sq_tx_commit must report
 *      kind connection with sqlstate 08007 ("outcome unknown"), and the
 *      transfer must be in the ledger (the server did commit).
 *      Then, with a connection held: every socket of the process is
 *      close-on-exec (the servers are restarted from here by system()).
 *      Then a statement on a black-holed connection with a 0.5 s
 *      deadline (sq_oper_set_timeout): it must fail and leave the pool
 *      clean; how long it took is printed (the executor's cancel goes to
 *      the server, which never saw the statement: the call ends only
 *      when the proxy drops the connection, after blackhole_hold).
 *   3. Load: THREADS blocking threads on one pool (pool.max 3) through
 *      the proxy, for SQORM_FAULTS_SECONDS (default 20) per dialect, each
 *      transfer
 *        BEGIN; [PG: SET LOCAL synchronous_commit = on]
 *        UPDATE acct -amount (lower id first); UPDATE acct +amount;
 *        [1 in 4: SAVEPOINT; INSERT ledger id 0 -> unique_violation;
 *         ROLLBACK TO SAVEPOINT]
 *        SAVEPOINT; INSERT ledger (id, src, dst, amount); RELEASE; COMMIT
 *      nothing retried. Meanwhile: a random workload session killed
 *      every second (KILL / pg_terminate_backend, from a side
 *      connection), a clean restart of the server at 30% of the budget,
 *      a SIGKILL + restart at 60%.
 *   4. Checks, directly against the server: the sum of balances is
 *      unchanged; every balance equals INITIAL plus its ledger credits
 *      minus its debits (no transfer applied in part or twice); every
 *      transfer whose commit returned OK is in the ledger exactly once;
 *      every transfer that raised (before or at COMMIT, other than
 *      "unknown") is absent; the "unknown" ones (08007) are counted as
 *      applied / not applied; the pool ends with nothing in use and
 *      healthy; the server has no session of the workload left once the
 *      pool is closed (no leaked connection).
 *
 * SQORM_FAULTS_SEED (default 16) seeds the proxy's fault plan and the
 * transfers; timing makes runs differ anyway. The figures are printed.
 *
 * The workload is one transfer = one xfer_plan, run by a runner; the
 * blocking runner (run_blocking) is the one above. `test_faults_live
 * async` (ctest test_faults_async_live) runs the coroutine half instead:
 * tests/faults_async.lua in one Lua state on this thread - 8 coroutines
 * (sqorm.spawn) on a db with async = true and pool.max 3, each running
 * the same transfers as Lua calls (db:begin, db:exec, a nested db:begin
 * as the savepoints, tx:commit), some with a per-call timeout, some
 * cancelled with sqorm.cancel while in flight - while the chaos above
 * runs on a thread. Its outcomes come back through FAULTS.record (the
 * same record_outcome) and get the same checks, plus: every spawned
 * coroutine finished (none left suspended), sqorm.pending() is 0, the
 * db's pool has nothing in use or waiting.
 *
 * PG's synchronous_commit is off on the test servers (speed); the
 * transfers turn it on for themselves so a crash cannot lose a commit
 * the client was told about. MariaDB runs innodb_flush_log_at_trx_commit
 * = 2: durable across a server crash (not an OS crash).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "fault_proxy.h"
#include "live.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#define THREADS 4
#define ACCOUNTS 40
#define INITIAL 1000
#define MAX_XFER 200000

enum { O_NONE = 0, O_COMMITTED, O_RAISED, O_RAISED_AT_COMMIT, O_UNKNOWN };
enum { ST_BEGIN, ST_SET, ST_DEBIT, ST_CREDIT, ST_DECOY, ST_SAVEPOINT, ST_INSERT, ST_RELEASE, ST_COMMIT, ST_N };
static const char *const stage_name[ST_N] = {"begin",     "set",    "debit",   "credit", "decoy",
                                             "savepoint", "insert", "release", "commit"};

typedef struct xfer_plan {
  int id, src, dst, amount, decoy;
} xfer_plan;

typedef struct run_t {
  const char *name, *instance;
  int pg;
  sq_pool *work, *direct;
  fp_proxy *proxy;
  unsigned long long seed;
  unsigned char outcome[MAX_XFER];
  unsigned char in_ledger[MAX_XFER];
  atomic_int next_id, stop;
  atomic_int committed, raised, unknown, at_commit;
  atomic_int by_kind[SQ_KIND_COUNT], by_stage[ST_N];
  int session_kills, restarts, crashes;
  double deadline_took;
  int async;                                /* the coroutine runner (tests/faults_async.lua) */
  int coroutines, suspended, pending, cancels;
} run_t;

static run_t *cur;

/* ------------------------------------------------------------------ */
/* One transfer                                                          */
/* ------------------------------------------------------------------ */

static int tx_stmt(sq_tx *tx, const char *sql, const sq_value *v, int n, sq_err *e) {
  return live_tx_exec(tx, sql, v, n, NULL, e);
}

/* Runs the plan in a transaction on the calling thread; returns an O_*
 * outcome, the failing stage in *stage and the error in e. */
static int run_blocking(run_t *r, const xfer_plan *x, int *stage, sq_err *e) {
  sq_tx *tx;
  sq_err_clear(e);
  *stage = ST_BEGIN;
  int rc = sq_tx_begin(r->work, NULL, SQ_ISO_DEFAULT, &tx, e);
  if (rc) return O_RAISED;
  int lo = x->src < x->dst ? x->src : x->dst, hi = x->src < x->dst ? x->dst : x->src;
  if (r->pg) {
    *stage = ST_SET;
    rc = tx_stmt(tx, "SET LOCAL synchronous_commit = on", NULL, 0, e);
  }
  for (int k = 0; k < 2 && !rc; k++) { /* lower account first: fewer deadlocks */
    int acct = k == 0 ? lo : hi;
    sq_value v[2] = {sq_int(acct == x->src ? -x->amount : x->amount), sq_int(acct)};
    *stage = acct == x->src ? ST_DEBIT : ST_CREDIT;
    rc = tx_stmt(tx, "UPDATE sq_faults_acct SET balance = balance + ? WHERE id = ?", v, 2, e);
  }
  unsigned sp;
  if (!rc && x->decoy) { /* a savepoint that fails and is rolled back */
    *stage = ST_DECOY;
    rc = sq_tx_savepoint(tx, &sp, e);
    if (!rc) {
      sq_value v[4] = {sq_int(0), sq_int(x->src), sq_int(x->dst), sq_int(x->amount)};
      rc = tx_stmt(tx, "INSERT INTO sq_faults_ledger (id, src, dst, amount) VALUES (?, ?, ?, ?)", v, 4, e);
      if (rc == SQ_EUNIQUE) rc = sq_tx_savepoint_rollback(tx, sp, e);
      else if (rc == SQ_OK) rc = sq_err_set(e, SQ_EINTERNAL, "the decoy insert succeeded");
    }
  }
  if (!rc) {
    *stage = ST_SAVEPOINT;
    rc = sq_tx_savepoint(tx, &sp, e);
  }
  if (!rc) {
    *stage = ST_INSERT;
    sq_value v[4] = {sq_int(x->id), sq_int(x->src), sq_int(x->dst), sq_int(x->amount)};
    rc = tx_stmt(tx, "INSERT INTO sq_faults_ledger (id, src, dst, amount) VALUES (?, ?, ?, ?)", v, 4, e);
  }
  if (!rc) {
    *stage = ST_RELEASE;
    rc = sq_tx_savepoint_release(tx, sp, e);
  }
  int out = O_COMMITTED;
  if (!rc) {
    *stage = ST_COMMIT;
    rc = sq_tx_commit(tx, e);
    if (rc) out = !strcmp(e->sqlstate, SQ_SQLSTATE_COMMIT_UNKNOWN) ? O_UNKNOWN : O_RAISED_AT_COMMIT;
  } else {
    sq_err e2;
    sq_tx_rollback(tx, &e2);
    out = O_RAISED;
  }
  sq_tx_free(tx);
  return out;
}

static void record_outcome(run_t *r, int id, int out, int stage, const sq_err *e) {
  r->outcome[id] = (unsigned char)out;
  if (out == O_COMMITTED) {
    atomic_fetch_add(&r->committed, 1);
    return;
  }
  if (out == O_UNKNOWN) atomic_fetch_add(&r->unknown, 1);
  else atomic_fetch_add(&r->raised, 1);
  if (out == O_RAISED_AT_COMMIT) atomic_fetch_add(&r->at_commit, 1);
  if (e->kind > 0 && e->kind < SQ_KIND_COUNT) atomic_fetch_add(&r->by_kind[e->kind], 1);
  atomic_fetch_add(&r->by_stage[stage], 1);
}

static void plan_next(run_t *r, uint64_t *rng, xfer_plan *x) {
  *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
  uint64_t v = *rng >> 17;
  x->src = 1 + (int)(v % ACCOUNTS);
  x->dst = 1 + (int)((v / ACCOUNTS + 1 + (v % ACCOUNTS)) % ACCOUNTS);
  if (x->dst == x->src) x->dst = x->src % ACCOUNTS + 1;
  x->amount = 1 + (int)((v >> 20) % 100);
  x->decoy = ((v >> 30) & 3) == 0;
  (void)r;
}

static void *worker(void *arg) {
  run_t *r = cur;
  uint64_t rng = r->seed * 1000003u + (uint64_t)(intptr_t)arg;
  while (!atomic_load(&r->stop)) {
    xfer_plan x;
    x.id = atomic_fetch_add(&r->next_id, 1);
    if (x.id >= MAX_XFER) break;
    plan_next(r, &rng, &x);
    int stage;
    sq_err e;
    int out = run_blocking(r, &x, &stage, &e);
    record_outcome(r, x.id, out, stage, &e);
    if (out != O_COMMITTED && (e.kind == SQ_ECONNECTION || e.kind == SQ_EPOOL_TIMEOUT || e.kind == SQ_ETIMEOUT))
      live_sleep(0.05);
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The server, directly                                                  */
/* ------------------------------------------------------------------ */

static int direct_exec(run_t *r, const char *sql, const sq_value *v, int n, live_rows *rows, sq_err *e) {
  int rc = live_exec(r->direct, sql, v, n, rows, e);
  if (rc == SQ_ECONNECTION) rc = live_exec(r->direct, sql, v, n, rows, e); /* after a restart */
  return rc;
}

/* The workload's sessions on the server (ids in rows), not counting the
 * side connection's. */
static int workload_sessions(run_t *r, live_rows *rows, sq_err *e) {
  if (r->pg)
    return direct_exec(r,
                       "SELECT pid FROM pg_stat_activity WHERE application_name = 'sqorm_faults' "
                       "AND pid <> pg_backend_pid()",
                       NULL, 0, rows, e);
  return direct_exec(r,
                     "SELECT id FROM information_schema.processlist WHERE user = SUBSTRING_INDEX(CURRENT_USER(), "
                     "'@', 1) AND db = DATABASE() AND id <> CONNECTION_ID()",
                     NULL, 0, rows, e);
}

static void kill_a_session(run_t *r, uint64_t *rng) {
  live_rows s;
  sq_err e;
  if (workload_sessions(r, &s, &e) || s.n == 0) return;
  *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
  int n = s.n < 64 ? s.n : 64;
  long long id = atoll(s.row[(*rng >> 33) % (uint64_t)n]);
  char sql[96];
  if (r->pg) snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", id);
  else snprintf(sql, sizeof sql, "KILL %lld", id);
  if (direct_exec(r, sql, NULL, 0, NULL, &e) == SQ_OK) r->session_kills++;
}

static int ledger_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  run_t *r = ud;
  if (ncols > 0 && v[0].type == SQ_VINT && v[0].u.i >= 0 && v[0].u.i < MAX_XFER && r->in_ledger[v[0].u.i] < 255)
    r->in_ledger[v[0].u.i]++;
  return 0;
}

static int setup(run_t *r, sq_err *e) {
  direct_exec(r, "DROP TABLE IF EXISTS sq_faults_ledger", NULL, 0, NULL, e);
  direct_exec(r, "DROP TABLE IF EXISTS sq_faults_acct", NULL, 0, NULL, e);
  int rc = direct_exec(r, "CREATE TABLE sq_faults_acct (id INT PRIMARY KEY, balance BIGINT NOT NULL)", NULL, 0,
                       NULL, e);
  if (!rc)
    rc = direct_exec(r,
                     "CREATE TABLE sq_faults_ledger (id INT NOT NULL PRIMARY KEY, src INT NOT NULL, "
                     "dst INT NOT NULL, amount INT NOT NULL)",
                     NULL, 0, NULL, e);
  for (int a = 1; a <= ACCOUNTS && !rc; a++) {
    sq_value v[2] = {sq_int(a), sq_int(INITIAL)};
    rc = direct_exec(r, "INSERT INTO sq_faults_acct (id, balance) VALUES (?, ?)", v, 2, NULL, e);
  }
  if (!rc) rc = direct_exec(r, "INSERT INTO sq_faults_ledger (id, src, dst, amount) VALUES (0, 0, 0, 0)", NULL, 0, NULL, e);
  return rc;
}

static int open_pool(const char *url, sq_pool **out, sq_err *e) {
  sq_config cfg;
  sq_config_init(&cfg);
  int rc = sq_config_parse_url(&cfg, url, e);
  if (!rc) rc = sq_config_finish(&cfg, e);
  if (!rc) rc = sq_pool_open(&cfg, out, e);
  sq_config_free(&cfg);
  return rc;
}

/* ------------------------------------------------------------------ */
/* One dialect                                                           */
/* ------------------------------------------------------------------ */

static int count_rows(run_t *r, const char *sql, long long *out) {
  live_rows rows;
  sq_err e;
  int rc = direct_exec(r, sql, NULL, 0, &rows, &e);
  if (rc || rows.n < 1) {
    printf("note - %s: %s\n", sql, rc ? e.msg : "no row");
    return -1;
  }
  *out = atoll(rows.row[0]);
  return 0;
}

/* A COMMIT forwarded to the server whose reply is lost. */
static void reply_loss_check(run_t *r) {
  fp_set_faults(r->proxy, 0);
  fp_arm_reply_loss(r->proxy, "COMMIT");
  xfer_plan x = {1, 1, 2, 5, 1};
  int stage;
  sq_err e;
  int out = run_blocking(r, &x, &stage, &e);
  CHECK(fp_reply_loss_fired(r->proxy), "%s: the proxy lost the reply to a COMMIT", r->name);
  fp_arm_reply_loss(r->proxy, "");
  r->outcome[1] = (unsigned char)out;
  CHECK(out == O_UNKNOWN && stage == ST_COMMIT && e.kind == SQ_ECONNECTION,
        "%s: that commit raised kind connection with sqlstate 08007, outcome unknown (stage %s, kind %s, "
        "sqlstate '%s'): %s",
        r->name, stage_name[stage], sq_kind_name(e.kind), e.sqlstate, e.msg);
  long long n = -1;
  count_rows(r, "SELECT COUNT(*) FROM sq_faults_ledger WHERE id = 1", &n);
  CHECK(n == 1, "%s: and the server had committed it (ledger rows for it: %lld)", r->name, n);
  sq_pool_stats st;
  sq_pool_stats_get(r->work, &st);
  CHECK(st.in_use == 0, "%s: its connection went back (in use %d)", r->name, st.in_use);
}

/* Every socket of the process (the pools' connections, the proxy's) is
 * close-on-exec: the servers are restarted from here with system(), and
 * a restarted server that inherited a client socket would hold it open
 * - the connection then never ends, neither for the server nor for the
 * proxy's close. Returns the number of sockets without it. */
static int sockets_without_cloexec(int *nsock) {
  int bad = 0;
  *nsock = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  struct dirent *de;
  while ((de = readdir(d))) {
    int fd = atoi(de->d_name);
    struct stat st;
    if (de->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) || !S_ISSOCK(st.st_mode)) continue;
    (*nsock)++;
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || !(fl & FD_CLOEXEC)) bad++;
  }
  closedir(d);
  return bad;
}

/* A statement whose connection is black-holed (its request goes
 * nowhere, the socket stays open), run as an operation with a 0.5 s
 * deadline. The executor cancels it on the server at the deadline -
 * which cannot help: the server never got it - so the call returns
 * when the proxy ends the blackhole (blackhole_hold). The time it took
 * is a figure (see the report); what is checked is that it fails and
 * leaves the pool clean. */
static double deadline_check(run_t *r) {
  sq_oper *op;
  sq_err e;
  if (sq_oper_new(&op, &e)) {
    CHECK(0, "%s: sq_oper_new: %s", r->name, e.msg);
    return -1;
  }
  sq_oper_reset(op, SQ_OPER_RAW);
  const char *sql = "SELECT 'sq_faults_blackhole'";
  int rc = sq_oper_add_sql(op, sql, strlen(sql), NULL, 0, 0, &e);
  sq_oper_target_pool(op, r->work, NULL);
  sq_oper_set_timeout(op, 0.5);
  fp_arm(r->proxy, "sq_faults_blackhole", FP_BLACKHOLE);
  double t0 = sq_clock();
  if (!rc) rc = sq_oper_run(op);
  double took = sq_clock() - t0;
  CHECK(fp_reply_loss_fired(r->proxy), "%s: the proxy black-holed a statement", r->name);
  fp_arm(r->proxy, "", FP_BLACKHOLE);
  const sq_err *oe = sq_oper_err(op);
  CHECK(rc != SQ_OK, "%s: that statement, with a 0.5 s deadline, failed: kind %s after %.1f s: %s", r->name,
        sq_kind_name(rc), took, rc ? oe->msg : "");
  sq_oper_free(op);
  sq_pool_stats st;
  sq_pool_stats_get(r->work, &st);
  CHECK(st.in_use == 0, "%s: and its connection went back (in use %d)", r->name, st.in_use);
  return took;
}

static void print_figures(run_t *r, double secs, int attempted, int lost, int phantom, int dup, int applied,
                          int not_applied, const sq_pool_stats *pst) {
  fp_stats fs;
  fp_stats_get(r->proxy, &fs);
  sq_pool_stats ps = *pst;
  int raised = atomic_load(&r->raised), at_commit = atomic_load(&r->at_commit);
  if (r->async)
    printf("figures %s, async (%.0f s, %d coroutines in one Lua state, pool.max 3, %d accounts):\n", r->name, secs,
           r->coroutines, ACCOUNTS);
  else
    printf("figures %s (%.0f s, %d threads, pool.max 3, %d accounts):\n", r->name, secs, THREADS, ACCOUNTS);
  printf("  transfers: attempted %d, committed %d, raised %d (%d before COMMIT, %d at COMMIT), unknown %d "
         "(applied %d, not applied %d), lost %d, phantom %d, duplicated %d\n",
         attempted, atomic_load(&r->committed), raised, raised - at_commit, at_commit, atomic_load(&r->unknown),
         applied, not_applied, lost, phantom, dup);
  printf("  raised or unknown, by kind:");
  for (int k = 1; k < SQ_KIND_COUNT; k++)
    if (atomic_load(&r->by_kind[k])) printf(" %s %d", sq_kind_name(k), atomic_load(&r->by_kind[k]));
  printf("\n  by stage:");
  for (int s = 0; s < ST_N; s++)
    if (atomic_load(&r->by_stage[s])) printf(" %s %d", stage_name[s], atomic_load(&r->by_stage[s]));
  printf("\n  faults injected: delay %lld, truncate %lld, reset %lld, blackhole %lld, commit reply loss %lld "
         "(proxied connections %lld, %lld refused while the server was down); session kills %d, "
         "restarts %d, crash+restarts %d\n",
         fs.injected[FP_DELAY], fs.injected[FP_TRUNCATE], fs.injected[FP_RESET], fs.injected[FP_BLACKHOLE],
         fs.injected[FP_REPLY_LOSS], fs.accepted, fs.refused, r->session_kills, r->restarts, r->crashes);
  printf("  pool: created %lld, destroyed %lld, pool timeouts %lld\n", (long long)ps.created,
         (long long)ps.destroyed, (long long)ps.timeouts);
  if (r->async)
    printf("  coroutines: spawned %d, left suspended %d; sqorm.pending() at the end %d; cancels that hit a call %d\n",
           r->coroutines, r->suspended, r->pending, r->cancels);
  else
    printf("  a statement with a 0.5 s deadline on a black-holed connection returned after %.1f s (blackhole "
           "held %.0f s)\n", r->deadline_took, 2.0);
  fflush(stdout);
}

/* Session kills every 0.5 s, a clean restart at 30% of the budget, a
 * SIGKILL + restart at 60%; then r->stop. Returns the seconds it ran. */
static double chaos(run_t *r, double budget) {
  double t0 = sq_clock(), el = 0;
  uint64_t rng = r->seed;
  int restarted = 0, crashed = 0;
  while ((el = sq_clock() - t0) < budget) {
    live_sleep(0.5);
    kill_a_session(r, &rng);
    el = sq_clock() - t0;
    if (!restarted && el >= 0.3 * budget) {
      char w[96];
      snprintf(w, sizeof w, "restart %s", r->instance);
      restarted = 1;
      int ok = live_servers(w) == 0;
      CHECK(ok, "%s: %s restarted (clean shutdown) at %.1f s, took %.1f s", r->name, r->instance, el,
            sq_clock() - t0 - el);
      r->restarts += ok;
    } else if (!crashed && el >= 0.6 * budget) {
      char w[96];
      snprintf(w, sizeof w, "kill %s", r->instance);
      crashed = 1;
      int ok = live_servers(w) == 0;
      snprintf(w, sizeof w, "restart %s", r->instance);
      ok = ok && live_servers(w) == 0;
      CHECK(ok, "%s: %s killed (SIGKILL) and restarted at %.1f s, took %.1f s", r->name, r->instance, el,
            sq_clock() - t0 - el);
      r->crashes += ok;
    }
  }
  atomic_store(&r->stop, 1);
  return sq_clock() - t0;
}

/* ------------------------------------------------------------------ */
/* The async runner: coroutines in one Lua state (tests/faults_async.lua) */
/* ------------------------------------------------------------------ */

typedef struct chaos_arg {
  run_t *r;
  double budget, secs;
} chaos_arg;

static void *chaos_thread(void *arg) {
  chaos_arg *a = arg;
  a->secs = chaos(a->r, a->budget);
  return NULL;
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, sq_clock());
  return 1;
}

static int l_stopped(lua_State *L) {
  lua_pushboolean(L, atomic_load(&cur->stop));
  return 1;
}

static int l_next_id(lua_State *L) {
  int id = atomic_fetch_add(&cur->next_id, 1);
  if (id >= MAX_XFER) {
    atomic_store(&cur->stop, 1);
    lua_pushnil(L);
  } else {
    lua_pushinteger(L, id);
  }
  return 1;
}

/* FAULTS.wait(fd, seconds): poll(2) on sqorm.pollfd(). */
static int l_wait(lua_State *L) {
  struct pollfd p = {(int)luaL_checkinteger(L, 1), POLLIN, 0};
  poll(&p, 1, (int)(luaL_checknumber(L, 2) * 1000));
  return 0;
}

/* FAULTS.record(id, outcome, stage, kind, message) */
static int l_record(lua_State *L) {
  int id = (int)luaL_checkinteger(L, 1), out = (int)luaL_checkinteger(L, 2), stage = (int)luaL_optinteger(L, 3, 0);
  const char *kind = luaL_optstring(L, 4, "");
  if (id < 2 || id >= MAX_XFER || out < O_COMMITTED || out > O_UNKNOWN || stage < 0 || stage >= ST_N ||
      cur->outcome[id] != O_NONE)
    return luaL_error(L, "FAULTS.record: bad record (%d, %d, %d)", id, out, stage);
  sq_err e;
  sq_err_clear(&e);
  for (int k = 1; k < SQ_KIND_COUNT; k++)
    if (!strcmp(sq_kind_name(k), kind)) e.kind = k;
  record_outcome(cur, id, out, stage, &e);
  return 0;
}

/* FAULTS.fail(message): something the workload must never see. */
static int l_fail(lua_State *L) {
  CHECK(0, "%s, async: %s", cur->name, luaL_checkstring(L, 1));
  return 0;
}

static int lua_int_field(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  int v = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Runs tests/faults_async.lua against the proxy while chaos() runs on a
 * thread; fills the pool figures from what the script saw (its db's
 * pool is closed when it returns). Returns the seconds of load. */
static double run_async(run_t *r, const char *url, double budget, sq_pool_stats *ps) {
  memset(ps, 0, sizeof *ps);
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, SQORM_BUILD_DIR "/share/?.lua;" SQORM_BUILD_DIR "/share/?/init.lua;");
  lua_setfield(L, -2, "path");
  lua_pushstring(L, SQORM_BUILD_DIR "/lib/?.so;");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushstring(L, url);
  lua_setfield(L, -2, "url");
  lua_pushboolean(L, r->pg);
  lua_setfield(L, -2, "pg");
  lua_pushinteger(L, ACCOUNTS);
  lua_setfield(L, -2, "accounts");
  lua_pushinteger(L, (lua_Integer)(r->seed & 0x7fffffff));
  lua_setfield(L, -2, "seed");
  static const luaL_Reg fns[] = {{"now", l_now},       {"stopped", l_stopped}, {"next_id", l_next_id},
                                 {"wait", l_wait},     {"record", l_record},   {"fail", l_fail},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lua_setglobal(L, "FAULTS");

  chaos_arg ca = {r, budget, 0};
  pthread_t t;
  pthread_create(&t, NULL, chaos_thread, &ca);
  int rc = luaL_loadfile(L, SQORM_SOURCE_DIR "/tests/faults_async.lua");
  if (rc == LUA_OK) rc = lua_pcall(L, 0, 1, 0);
  if (rc != LUA_OK) {
    CHECK(0, "%s, async: tests/faults_async.lua raised: %s", r->name, lua_tostring(L, -1));
    atomic_store(&r->stop, 1);
  }
  pthread_join(t, NULL);
  if (rc == LUA_OK && lua_istable(L, -1)) {
    r->coroutines = lua_int_field(L, -1, "coroutines");
    r->suspended = lua_int_field(L, -1, "suspended");
    r->pending = lua_int_field(L, -1, "pending");
    r->cancels = lua_int_field(L, -1, "cancels");
    ps->in_use = lua_int_field(L, -1, "in_use");
    ps->waiting = lua_int_field(L, -1, "waiting");
    ps->size = lua_int_field(L, -1, "size");
    ps->created = lua_int_field(L, -1, "created");
    ps->destroyed = lua_int_field(L, -1, "destroyed");
    ps->timeouts = lua_int_field(L, -1, "timeouts");
    int healthy = lua_int_field(L, -1, "healthy");
    CHECK(r->coroutines > 0 && r->suspended == 0,
          "%s, async: no coroutine left suspended (%d of %d spawned never finished)", r->name, r->suspended,
          r->coroutines);
    CHECK(r->pending == 0, "%s, async: sqorm.pending() is 0 at the end (%d)", r->name, r->pending);
    CHECK(ps->in_use == 0 && ps->waiting == 0,
          "%s, async: the pool has nothing in use or waiting (in use %d, waiting %d)", r->name, ps->in_use,
          ps->waiting);
    CHECK(healthy, "%s, async: the pool works after the faults", r->name);
  }
  lua_close(L);
  return ca.secs;
}

/* ------------------------------------------------------------------ */
/* One dialect                                                           */
/* ------------------------------------------------------------------ */

static void run_dialect(run_t *r, double budget) {
  char url[1024];
  const char *P = r->pg ? "SQORM_TEST_PG_" : "SQORM_TEST_MYSQL_";
  char k[64];
#define ENV(name) (snprintf(k, sizeof k, "%s%s", P, name), live_env(k) ? live_env(k) : "")
  char user[128], pw[128], db[128];
  snprintf(user, sizeof user, "%s", ENV("USER"));
  snprintf(pw, sizeof pw, "%s", ENV("PASSWORD"));
  snprintf(db, sizeof db, "%s", ENV("DB"));
  int plain = atoi(ENV("PLAIN_PORT"));
#undef ENV
  const char *scheme = r->pg ? "postgres" : "mysql";
  const char *name = r->async ? (r->pg ? "postgresql, async" : "mariadb, async") : r->name;
  sq_err e;
  snprintf(url, sizeof url, "%s://%s:%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=5&pool.max=1%s", scheme,
           user, pw, plain, db, r->pg ? "&application_name=sqorm_faults_check" : "");
  if (open_pool(url, &r->direct, &e)) {
    CHECK(0, "%s: the side pool: %s", name, e.msg);
    return;
  }
  int rc = setup(r, &e);
  CHECK(rc == SQ_OK, "%s: tables set up directly: %s", name, rc ? e.msg : "");
  if (rc) return;

  fp_config pc;
  memset(&pc, 0, sizeof pc);
  pc.host = "127.0.0.1";
  pc.port = plain;
  pc.seed = r->seed;
  pc.rate[FP_DELAY] = 0.15;
  pc.rate[FP_TRUNCATE] = 0.25;
  pc.rate[FP_RESET] = 0.25;
  pc.rate[FP_BLACKHOLE] = 0.03;
  pc.trigger_max = 200;
  pc.delay_max = 0.01;
  pc.blackhole_hold = 2;
  if (fp_start(&pc, &r->proxy)) {
    CHECK(0, "%s: the fault proxy started", name);
    return;
  }
  /* Neither dialect has a client-side read timeout the config can set
   * (libpq has none; sq_config refuses MariaDB's read_timeout), so a
   * black-holed call waits until the proxy ends the blackhole after
   * blackhole_hold seconds (as a TCP keepalive or a firewall would, much
   * later, on a real network). */
  snprintf(url, sizeof url,
           "%s://%s:%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=5&pool.max=3&pool.acquire_timeout=20%s",
           scheme, user, pw, fp_port(r->proxy), db,
           r->pg ? "&application_name=sqorm_faults" : "");
  sq_pool_stats ps;
  double secs;
  atomic_store(&r->next_id, 2);
  cur = r;
  if (r->async) {
    /* the load: coroutines of one Lua state, the chaos on a thread */
    fp_set_faults(r->proxy, 1);
    secs = run_async(r, url, budget, &ps);
  } else {
    if (open_pool(url, &r->work, &e)) {
      CHECK(0, "%s: the workload pool: %s", name, e.msg);
      fp_stop(r->proxy);
      return;
    }
    reply_loss_check(r);
    sq_conn *held = NULL;
    int nsock = 0, bad = -1;
    if (sq_pool_acquire(r->work, -1, &held, &e) == SQ_OK) { /* its socket and the proxy's two */
      bad = sockets_without_cloexec(&nsock);
      sq_pool_release(r->work, held);
    }
    CHECK(bad == 0 && nsock >= 5, "%s: all %d sockets of the process are close-on-exec (%d are not)", name, nsock,
          bad);
    r->deadline_took = deadline_check(r);

    /* the load: blocking threads, the chaos on this one */
    fp_set_faults(r->proxy, 1);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    secs = chaos(r, budget);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  }
  fp_set_faults(r->proxy, 0); /* black-holed connections end */
  int attempted = atomic_load(&r->next_id) - 2;
  if (attempted > MAX_XFER - 2) attempted = MAX_XFER - 2;
  int done = atomic_load(&r->committed) + atomic_load(&r->raised) + atomic_load(&r->unknown);
  CHECK(done == attempted, "%s: every transfer committed, raised or is unknown (%d of %d)", name, done, attempted);
  CHECK(atomic_load(&r->committed) > 0, "%s: transfers committed under faults (%d)", name,
        atomic_load(&r->committed));

  if (!r->async) {
    sq_pool_stats_get(r->work, &ps);
    CHECK(ps.in_use == 0 && ps.waiting == 0, "%s: the pool has nothing in use or waiting (in use %d, waiting %d)",
          name, ps.in_use, ps.waiting);
    int healthy = 0;
    for (int i = 0; i < 5 && !healthy; i++) {
      live_rows one;
      healthy = live_exec(r->work, "SELECT 1", NULL, 0, &one, &e) == SQ_OK;
    }
    CHECK(healthy, "%s: the pool works after the faults: %s", name, healthy ? "" : e.msg);
  }

  /* the ledger and the balances, directly */
  sq_row_sink ls = {r, NULL, ledger_row};
  rc = sq_pool_exec(r->direct, "SELECT id FROM sq_faults_ledger", 31, NULL, 0, &ls, NULL, &e);
  CHECK(rc == SQ_OK, "%s: the ledger read back: %s", name, rc ? e.msg : "");
  int lost = 0, phantom = 0, dup = 0, applied = 0, not_applied = 0, stray = 0;
  for (int i = 2; i < attempted + 2; i++) {
    int o = r->outcome[i], n = r->in_ledger[i];
    if (n > 1) dup++;
    if (o == O_COMMITTED && n == 0) lost++;
    if ((o == O_RAISED || o == O_RAISED_AT_COMMIT) && n) phantom++;
    if (o == O_UNKNOWN) n ? applied++ : not_applied++;
  }
  for (int i = attempted + 2; i < MAX_XFER; i++) stray += r->in_ledger[i] != 0;
  CHECK(lost == 0, "%s: every transfer whose commit returned OK is in the ledger (%d missing)", name, lost);
  CHECK(dup == 0, "%s: no transfer is in the ledger twice (%d)", name, dup);
  CHECK(phantom == 0 && stray == 0, "%s: no transfer that raised is in the ledger (%d; %d never attempted)", name,
        phantom, stray);
  long long sum = -1, off = -1;
  count_rows(r, "SELECT SUM(balance) FROM sq_faults_acct", &sum);
  CHECK(sum == (long long)ACCOUNTS * INITIAL, "%s: the sum of balances is unchanged (%lld, expected %d)", name, sum,
        ACCOUNTS * INITIAL);
  count_rows(r,
             "SELECT COUNT(*) FROM sq_faults_acct a WHERE a.balance <> 1000 "
             "+ COALESCE((SELECT SUM(l.amount) FROM sq_faults_ledger l WHERE l.dst = a.id), 0) "
             "- COALESCE((SELECT SUM(l.amount) FROM sq_faults_ledger l WHERE l.src = a.id), 0)",
             &off);
  CHECK(off == 0, "%s: every balance is its ledger's sum: no transfer applied in part or twice (%lld off)", name,
        off);

  /* leaks: the server's sessions of the workload */
  live_rows s;
  int nsess = -1;
  if (!r->async) {
    for (int i = 0; i < 50; i++) {
      sq_pool_stats_get(r->work, &ps);
      nsess = workload_sessions(r, &s, &e) ? -1 : s.n;
      if (nsess >= 0 && nsess <= ps.size) break;
      live_sleep(0.1);
    }
    CHECK(nsess >= 0 && nsess <= ps.size,
          "%s: the server has no session the pool does not know of (%d sessions, pool size %d)", name, nsess,
          ps.size);
  }
  print_figures(r, secs, attempted, lost, phantom, dup, applied, not_applied, &ps);
  if (r->work) sq_pool_close(r->work);
  r->work = NULL;
  for (int i = 0; i < 50; i++) {
    nsess = workload_sessions(r, &s, &e) ? -1 : s.n;
    if (nsess == 0) break;
    live_sleep(0.1);
  }
  CHECK(nsess == 0, "%s: once the pool is closed the server has no session of it left (%d)", name, nsess);
  fp_stop(r->proxy);
  direct_exec(r, "DROP TABLE IF EXISTS sq_faults_ledger", NULL, 0, NULL, &e);
  direct_exec(r, "DROP TABLE IF EXISTS sq_faults_acct", NULL, 0, NULL, &e);
  sq_pool_close(r->direct);
}

/* test_faults_live          blocking threads
 * test_faults_live async    coroutines of one Lua state (async = true) */
int main(int argc, char **argv) {
  int async = argc > 1 && !strcmp(argv[1], "async");
  const char *req = live_env("SQORM_TEST_REQUIRE_SERVERS");
  int has_my = live_has("mysql"), has_pg = live_has("postgres");
  if ((req && !strcmp(req, "1")) || (!has_my && !has_pg)) {
    live_need("mysql");
    live_need("postgres");
  }
  sq_err e;
  if (sq_global_init(&e)) return printf("FAIL - init: %s\n", e.msg), 1;
  double budget = live_env("SQORM_FAULTS_SECONDS") ? atof(live_env("SQORM_FAULTS_SECONDS")) : 20;
  if (budget < 3) budget = 3;
  unsigned long long seed = live_env("SQORM_FAULTS_SEED") ? strtoull(live_env("SQORM_FAULTS_SEED"), NULL, 10) : 16;
  printf("faults under load%s: %.0f s per dialect, seed %llu\n", async ? " (async coroutines)" : "", budget, seed);
  for (int d = 0; d < 2; d++) {
    if (!(d == 0 ? has_my : has_pg)) continue;
    run_t *r = calloc(1, sizeof *r);
    if (!r) return 1;
    r->pg = d == 1;
    r->async = async;
    r->name = r->pg ? "postgresql" : "mariadb";
    r->instance = r->pg ? "postgres-plain" : "mysql-plain";
    r->seed = seed + (unsigned long long)d + (async ? 100 : 0);
    sq_host_state_reset();
    run_dialect(r, budget);
    free(r);
  }
  int f = atomic_load(&live_failures);
  printf("%d failed\n", f);
  return f ? 1 : 0;
}
