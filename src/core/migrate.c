/*
 * migrate.c - the migrator's session: one dedicated connection that holds
 * the migration lock for a whole run, the sqorm_migrations table, and each
 * migration's schema operations and bookkeeping row in one transaction
 * where the dialect's DDL is transactional. The contract is in sqorm.h
 * ("Migrations").
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sq_migrator {
  sq_pool *own;          /* the private pool of the dedicated connection, or NULL */
  sq_pool *pool;         /* where c came from */
  sq_conn *c;
  int dialect;
  int locked;            /* the lock is held */
  int in_mig;            /* between begin and commit / rollback */
  char table[128];
  char qtable[300];      /* quoted */
  char lockname[72];     /* MySQL GET_LOCK name */
  int32_t lockkey;       /* PostgreSQL advisory lock: (SQ_MIGRATE_PG_CLASS, lockkey) */
  char name[256];        /* the migration between begin and commit / rollback */
  char *last_sql;        /* the last statement sent for it (malloc) */
  sq_schema_log_fn log;
  void *log_ud;
};

#define PG_CLASS 0x5351 /* "SQ": the first key of the two-key advisory lock */

static uint32_t fnv32(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static int run(sq_migrator *m, const char *sql, const sq_value *params, int nparams, const sq_row_sink *sink,
               sq_err *err) {
  sq_result res;
  return sq_conn_exec(m->c, sql, strlen(sql), params, nparams, sink, &res, err);
}

/* The first value of the first row as an integer (-1: NULL or no row). */
typedef struct first_int {
  int64_t v;
  int got;
} first_int;

static int first_row(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  (void)err;
  first_int *f = ud;
  if (f->got++ || ncols < 1) return 0;
  switch (vals[0].type) {
  case SQ_VINT: f->v = vals[0].u.i; break;
  case SQ_VBOOL: f->v = vals[0].u.b; break;
  case SQ_VFLOAT: f->v = (int64_t)vals[0].u.f; break;
  case SQ_VTEXT: {
    char b[32];
    size_t n = vals[0].u.s.n < sizeof b - 1 ? vals[0].u.s.n : sizeof b - 1;
    memcpy(b, vals[0].u.s.p, n);
    b[n] = '\0';
    f->v = (b[0] == 't') ? 1 : (b[0] == 'f') ? 0 : strtoll(b, NULL, 10);
    break;
  }
  default: f->v = -1;
  }
  return 0;
}

static void nap(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int lock_timeout_err(sq_migrator *m, double waited, sq_err *err) {
  return sq_err_set(err, SQ_ETIMEOUT,
                    "another migration run holds the lock of \"%s\" (waited %.1f s; a run that died left no "
                    "lock: it ends with its connection)",
                    m->table, waited);
}

static int take_lock(sq_migrator *m, double timeout, sq_err *err) {
  double t0 = now_s();
  int rc = SQ_OK;
  if (m->dialect == SQ_DIALECT_POSTGRES) {
    sq_value p[2] = {sq_int(PG_CLASS), sq_int(m->lockkey)};
    for (;;) {
      first_int f = {-1, 0};
      sq_row_sink s = {&f, NULL, first_row};
      rc = run(m, "SELECT pg_try_advisory_lock(CAST(? AS integer), CAST(? AS integer))", p, 2, &s, err);
      if (rc) return rc;
      if (f.v == 1) break;
      if (now_s() - t0 >= timeout) return lock_timeout_err(m, now_s() - t0, err);
      nap(0.05);
    }
  } else if (m->dialect == SQ_DIALECT_MYSQL) {
    for (;;) {
      double left = timeout - (now_s() - t0);
      sq_value p[2] = {sq_text(m->lockname, strlen(m->lockname)), sq_int(left > 1 ? (int64_t)(left < 5 ? left : 5) : 0)};
      first_int f = {-1, 0};
      sq_row_sink s = {&f, NULL, first_row};
      rc = run(m, "SELECT GET_LOCK(?, ?)", p, 2, &s, err);
      if (rc) return rc;
      if (f.v == 1) break;
      if (now_s() - t0 >= timeout) return lock_timeout_err(m, now_s() - t0, err);
      if (left <= 1) nap(0.05);
    }
  } else {
    /* SQLite: the database's write lock, for the whole run (a
     * transaction; each migration is a savepoint in it). Foreign keys
     * off first: PRAGMA foreign_keys is ignored inside a transaction. */
    rc = run(m, "PRAGMA foreign_keys = OFF", NULL, 0, NULL, err);
    if (!rc && m->own) {
      /* a private connection: wait for the write lock up to the lock timeout at once */
      char sql[64];
      snprintf(sql, sizeof sql, "PRAGMA busy_timeout = %d", timeout > 3600 ? 3600000 : (int)(timeout * 1000) + 1);
      rc = run(m, sql, NULL, 0, NULL, err);
    }
    for (; !rc;) {
      rc = run(m, "BEGIN IMMEDIATE", NULL, 0, NULL, err);
      if (!rc) break;
      if (rc != SQ_ETIMEOUT && rc != SQ_EDEADLOCK) break;
      if (now_s() - t0 >= timeout) return lock_timeout_err(m, now_s() - t0, err);
      sq_err_clear(err);
      rc = SQ_OK;
      nap(0.05);
    }
    if (rc) return rc;
  }
  m->locked = 1;
  return SQ_OK;
}

static void give_lock(sq_migrator *m) {
  if (!m->locked || !m->c) return;
  sq_err e;
  sq_err_clear(&e);
  if (m->dialect == SQ_DIALECT_POSTGRES) {
    sq_value p[2] = {sq_int(PG_CLASS), sq_int(m->lockkey)};
    run(m, "SELECT pg_advisory_unlock(CAST(? AS integer), CAST(? AS integer))", p, 2, NULL, &e);
  } else if (m->dialect == SQ_DIALECT_MYSQL) {
    sq_value p[1] = {sq_text(m->lockname, strlen(m->lockname))};
    run(m, "SELECT RELEASE_LOCK(?)", p, 1, NULL, &e);
  }
  m->locked = 0;
}

static int ensure_table(sq_migrator *m, sq_err *err) {
  sq_scol cols[4];
  sq_scol_init(&cols[0], "name", SQ_T_STRING);
  cols[0].length = 255;
  cols[0].allow_null = 0;
  cols[0].primary_key = 1;
  sq_scol_init(&cols[1], "batch", SQ_T_INTEGER);
  cols[1].allow_null = 0;
  sq_scol_init(&cols[2], "applied_at", SQ_T_DATETIME);
  cols[2].allow_null = 0;
  sq_scol_init(&cols[3], "checksum", SQ_T_STRING);
  cols[3].length = 64;
  cols[3].allow_null = 0;
  sq_sop op;
  sq_sop_init(&op, SQ_SOP_CREATE_TABLE, m->table);
  op.cols = cols;
  op.ncols = 4;
  op.if_exists = 1;
  return sq_schema_apply(m->c, &op, 1, 0, NULL, NULL, err);
}

int sq_migrator_open(sq_pool *p, const sq_holder *h, const char *table, double lock_timeout, sq_migrator **out,
                     sq_err *err) {
  *out = NULL;
  if (!table || !*table) table = "sqorm_migrations";
  if (strlen(table) >= 64) return sq_err_set(err, SQ_EUSAGE, "migrator: the table name is longer than 63 bytes");
  if (lock_timeout < 0) lock_timeout = 60;
  sq_migrator *m = calloc(1, sizeof *m);
  if (!m) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  const sq_config *cfg = sq_pool_config(p);
  m->dialect = cfg->dialect == SQ_DIALECT_SQLITE ? SQ_DIALECT_SQLITE
               : cfg->dialect == SQ_DIALECT_POSTGRES ? SQ_DIALECT_POSTGRES : SQ_DIALECT_MYSQL;
  snprintf(m->table, sizeof m->table, "%s", table);
  int rc = sq_quote_ident(m->dialect, table, strlen(table), m->qtable, sizeof m->qtable, err);
  if (rc) goto fail;
  char key[400];
  snprintf(key, sizeof key, "%s.%s", cfg->database ? cfg->database : "", table);
  m->lockkey = (int32_t)fnv32(key);
  snprintf(m->lockname, sizeof m->lockname, "sqorm_migrate:%08x", (unsigned)fnv32(key));
  /* The dedicated connection: a private pool of one over the same
   * config (its death ends the lock), except an in-memory SQLite
   * database, which only the db's own connection sees. */
  int memory = m->dialect == SQ_DIALECT_SQLITE &&
               (!cfg->storage || !*cfg->storage || !strcmp(cfg->storage, ":memory:") ||
                strstr(cfg->storage, "mode=memory"));
  if (memory) {
    m->pool = p;
    rc = sq_pool_acquire_as(p, -1, h, &m->c, err);
  } else {
    sq_config cc;
    if (sq_config_copy(&cc, cfg)) {
      rc = sq_err_set(err, SQ_ENOMEM, "out of memory");
      goto fail;
    }
    free(cc.name);
    cc.name = NULL;
    cc.pool.max = 1;
    cc.pool.min = 0;
    rc = sq_pool_open(&cc, &m->own, err);
    sq_config_free(&cc);
    if (!rc) {
      m->pool = m->own;
      rc = sq_pool_acquire(m->own, -1, &m->c, err);
    }
  }
  if (rc) goto fail;
  rc = take_lock(m, lock_timeout, err);
  if (!rc) rc = ensure_table(m, err);
  if (rc) goto fail;
  *out = m;
  return SQ_OK;
fail:
  sq_migrator_abandon(m);
  return rc;
}

int sq_migrator_dialect(const sq_migrator *m) { return m->dialect; }
int sq_migrator_transactional(const sq_migrator *m) { return m->dialect != SQ_DIALECT_MYSQL; }
sq_conn *sq_migrator_conn(sq_migrator *m) { return m->c; }
const char *sq_migrator_last_sql(const sq_migrator *m) { return m->last_sql; }

void sq_migrator_set_log(sq_migrator *m, sq_schema_log_fn fn, void *ud) {
  m->log = fn;
  m->log_ud = ud;
}

static void note_sql(void *ud, const char *sql) {
  sq_migrator *m = ud;
  free(m->last_sql);
  m->last_sql = strdup(sql);
  if (m->log) m->log(m->log_ud, sql);
}

/* ---- the table ---- */

typedef struct rows_ctx {
  sq_migrator_row_fn fn;
  void *ud;
} rows_ctx;

static void val_text(const sq_value *v, char *b, size_t n) {
  switch (v->type) {
  case SQ_VTEXT:
  case SQ_VBLOB: {
    size_t k = v->u.s.n < n - 1 ? v->u.s.n : n - 1;
    memcpy(b, v->u.s.p, k);
    b[k] = '\0';
    break;
  }
  case SQ_VINT: snprintf(b, n, "%lld", (long long)v->u.i); break;
  case SQ_VFLOAT: snprintf(b, n, "%.17g", v->u.f); break;
  case SQ_VBOOL: snprintf(b, n, "%d", v->u.b); break;
  default: b[0] = '\0';
  }
}

static int row_cb(void *ud, int ncols, const sq_value *vals, sq_err *err) {
  rows_ctx *r = ud;
  if (ncols < 4) return sq_err_set(err, SQ_EINTERNAL, "migrator: unexpected row");
  char name[256], batch[32], at[64], sum[80];
  val_text(&vals[0], name, sizeof name);
  val_text(&vals[1], batch, sizeof batch);
  val_text(&vals[2], at, sizeof at);
  val_text(&vals[3], sum, sizeof sum);
  /* "2026-12-01T12:00:00..." and "2026-12-01 12:00:00+00" read the same */
  if (at[0] && at[10] == 'T') at[10] = ' ';
  if (strlen(at) > 19) at[19] = '\0';
  sq_migration_row row = {name, strtoll(batch, NULL, 10), at, sum};
  return r->fn(r->ud, &row, err);
}

int sq_migrator_rows(sq_migrator *m, sq_migrator_row_fn fn, void *ud, sq_err *err) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT name, batch, applied_at, checksum FROM %s ORDER BY name", m->qtable);
  rows_ctx r = {fn, ud};
  sq_row_sink s = {&r, NULL, row_cb};
  return run(m, sql, NULL, 0, &s, err);
}

/* ---- one migration ---- */

int sq_migrator_begin(sq_migrator *m, const char *name, sq_err *err) {
  if (m->in_mig) return sq_err_set(err, SQ_EUSAGE, "migrator: a migration is already in progress");
  snprintf(m->name, sizeof m->name, "%s", name ? name : "?");
  free(m->last_sql);
  m->last_sql = NULL;
  int rc = SQ_OK;
  if (m->dialect == SQ_DIALECT_POSTGRES) rc = run(m, "BEGIN", NULL, 0, NULL, err);
  else if (m->dialect == SQ_DIALECT_SQLITE) rc = run(m, "SAVEPOINT sqorm_migration", NULL, 0, NULL, err);
  if (!rc) m->in_mig = 1;
  return rc;
}

/* PostgreSQL before 12 refuses ALTER TYPE ... ADD VALUE inside a
 * transaction block, and a migration is one: say so before anything of
 * the op is sent. (12 and later take it; the new label can be used once
 * the migration has committed.) */
static int pg_enum_in_tx(sq_migrator *m, const sq_sop *ops, int n, sq_err *err) {
  if (m->dialect != SQ_DIALECT_POSTGRES) return SQ_OK;
  const sq_driver *d = sq_conn_driver(m->c);
  const char *v = d && d->server_version ? d->server_version(sq_conn_handle(m->c)) : NULL;
  int major = v ? atoi(v) : 0;
  if (major <= 0 || major >= 12) return SQ_OK;
  for (int i = 0; i < n; i++)
    if (ops[i].kind == SQ_SOP_ADD_ENUM_VALUES)
      return sq_err_set(err, SQ_EUSAGE,
                        "add_enum_values \"%.64s\".\"%.64s\": PostgreSQL %.20s can't add enum values inside a "
                        "transaction (12 and later can): add them by hand "
                        "(ALTER TYPE ... ADD VALUE) and leave this op out of the migration",
                        ops[i].table ? ops[i].table : "?", ops[i].name ? ops[i].name : "?", v);
  return SQ_OK;
}

int sq_migrator_apply(sq_migrator *m, const sq_sop *ops, int n, sq_err *err) {
  if (!m->in_mig) return sq_err_set(err, SQ_EUSAGE, "migrator: schema operations run between begin and commit");
  if (pg_enum_in_tx(m, ops, n, err)) return SQ_EUSAGE;
  return sq_schema_apply(m->c, ops, n, 0, note_sql, m, err);
}

int sq_migrator_exec(sq_migrator *m, const char *sql, size_t len, const sq_value *params, int nparams,
                     const sq_row_sink *sink, sq_result *res, sq_err *err) {
  if (!m->in_mig) return sq_err_set(err, SQ_EUSAGE, "migrator: statements run between begin and commit");
  char *copy = malloc(len + 1);
  if (!copy) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  memcpy(copy, sql, len);
  copy[len] = '\0';
  note_sql(m, copy);
  free(copy);
  return sq_conn_exec(m->c, sql, len, params, nparams, sink, res, err);
}

static void utc_now(char *b, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(b, n, "%Y-%m-%d %H:%M:%S", &tm);
}

int sq_migrator_record(sq_migrator *m, const char *name, int64_t batch, const char *checksum, sq_err *err) {
  char sql[512], at[32];
  utc_now(at, sizeof at);
  snprintf(sql, sizeof sql, "INSERT INTO %s (name, batch, applied_at, checksum) VALUES (?, ?, ?, ?)", m->qtable);
  sq_value p[4] = {sq_text(name, strlen(name)), sq_int(batch), sq_text(at, strlen(at)),
                   sq_text(checksum ? checksum : "", checksum ? strlen(checksum) : 0)};
  note_sql(m, sql);
  return run(m, sql, p, 4, NULL, err);
}

int sq_migrator_unrecord(sq_migrator *m, const char *name, sq_err *err) {
  char sql[512];
  snprintf(sql, sizeof sql, "DELETE FROM %s WHERE name = ?", m->qtable);
  sq_value p[1] = {sq_text(name, strlen(name))};
  note_sql(m, sql);
  return run(m, sql, p, 1, NULL, err);
}

int sq_migrator_commit(sq_migrator *m, sq_err *err) {
  if (!m->in_mig) return sq_err_set(err, SQ_EUSAGE, "migrator: no migration in progress");
  int rc = SQ_OK;
  if (m->dialect == SQ_DIALECT_POSTGRES) {
    rc = run(m, "COMMIT", NULL, 0, NULL, err); /* a failed COMMIT ends the transaction too */
  } else if (m->dialect == SQ_DIALECT_SQLITE) {
    first_int f = {0, 0};
    sq_row_sink s = {&f, NULL, first_row};
    rc = run(m, "PRAGMA foreign_key_check", NULL, 0, &s, err);
    if (!rc && f.got) {
      rc = sq_err_set(err, SQ_ECONSTRAINT, "after the migration %d row%s violate a foreign key (see PRAGMA foreign_key_check)",
                      f.got, f.got == 1 ? "" : "s");
    }
    if (!rc) rc = run(m, "RELEASE sqorm_migration", NULL, 0, NULL, err);
    if (rc) {
      sq_migrator_rollback(m, NULL); /* only rolls back: the caller names the error */
      return rc;
    }
  }
  m->in_mig = 0;
  return rc;
}

int sq_migrator_rollback(sq_migrator *m, sq_err *err) {
  int was = m->in_mig;
  m->in_mig = 0;
  sq_err scratch;
  sq_err_clear(&scratch);
  if (!was) {
    /* already over (a failed commit rolled back): only name the error */
  } else if (m->dialect == SQ_DIALECT_POSTGRES) {
    if (run(m, "ROLLBACK", NULL, 0, NULL, &scratch)) sq_conn_mark_dead(m->c);
  } else if (m->dialect == SQ_DIALECT_SQLITE) {
    if (run(m, "ROLLBACK TO sqorm_migration", NULL, 0, NULL, &scratch) ||
        run(m, "RELEASE sqorm_migration", NULL, 0, NULL, &scratch))
      sq_conn_mark_dead(m->c);
  }
  if (!err || err->kind == SQ_OK || !m->name[0]) return SQ_OK;
  /* name the migration, and what remains of it */
  char msg[sizeof err->msg + 1024];
  if (m->dialect == SQ_DIALECT_MYSQL && err->code[0] && m->last_sql) {
    /* the server refused a statement: the last one sent */
    snprintf(msg, sizeof msg,
             "migration \"%s\" failed at statement: %.300s: %.400s; partially applied: the statements before it "
             "stay (MySQL commits each DDL statement) and no row was recorded for it",
             m->name, m->last_sql, err->msg);
  } else if (m->dialect == SQ_DIALECT_MYSQL) {
    snprintf(msg, sizeof msg,
             "migration \"%s\" failed: %.400s%s%.300s%s; partially applied: the statements it sent stay (MySQL "
             "commits each DDL statement) and no row was recorded for it",
             m->name, err->msg, m->last_sql ? " (the last statement it sent: " : "", m->last_sql ? m->last_sql : "",
             m->last_sql ? ")" : "");
  } else {
    snprintf(msg, sizeof msg, "migration \"%s\" failed and was rolled back (nothing of it remains): %.600s%s%.300s",
             m->name, err->msg, m->last_sql ? "; statement: " : "", m->last_sql ? m->last_sql : "");
  }
  size_t n = strlen(msg);
  if (n >= sizeof err->msg) n = sizeof err->msg - 1;
  memcpy(err->msg, msg, n);
  err->msg[n] = '\0';
  m->name[0] = '\0';
  return err->kind;
}

/* ---- the end of a run ---- */

static void give_back(sq_migrator *m, int io) {
  if (m->c) {
    if (io) {
      sq_pool_release(m->pool, m->c);
    } else if (m->own) {
      sq_conn_mark_dead(m->c);
      sq_pool_release(m->pool, m->c);
    } else {
      sq_conn_mark_dirty(m->c); /* foreign keys were off: the pool's reset restores them */
      sq_pool_release_later(m->pool, m->c, NULL);
    }
    m->c = NULL;
  }
  if (m->own) sq_pool_close(m->own);
  m->own = NULL;
  free(m->last_sql);
  free(m);
}

int sq_migrator_close(sq_migrator *m, sq_err *err) {
  if (!m) return SQ_OK;
  int rc = SQ_OK;
  sq_err scratch;
  sq_err_clear(&scratch);
  if (m->in_mig) sq_migrator_rollback(m, NULL);
  if (m->dialect == SQ_DIALECT_SQLITE && m->locked) {
    rc = run(m, "COMMIT", NULL, 0, NULL, err);
    if (rc) run(m, "ROLLBACK", NULL, 0, NULL, &scratch);
    if (run(m, "PRAGMA foreign_keys = ON", NULL, 0, NULL, &scratch)) sq_conn_mark_dead(m->c);
    m->locked = 0;
  }
  give_lock(m);
  if (m->own) sq_conn_mark_dead(m->c); /* nothing of the session outlives the run */
  give_back(m, 1);
  return rc;
}

void sq_migrator_abandon(sq_migrator *m) {
  if (!m) return;
  if (m->own && m->c) sq_conn_mark_dead(m->c); /* closing it ends the lock and rolls back */
  give_back(m, m->c && !m->own ? 0 : 1);
}

int sq_migrator_diff(sq_migrator *m, sq_model *const *models, int n, sq_sop_list *out, sq_err *err) {
  return sq_schema_diff(m->c, models, n, SQ_DIFF_NOTES, out, err);
}
