/*
 * c_query.c - sqorm from C, with no Lua at all: a pool, statements with
 * bound values, typed rows through a callback table.
 *
 *   c_query [URL]      (default sqlite::memory:)
 *
 * Prints each row as "id=.. name=.. coins=..", then the pool statistics.
 */
#include "sqorm.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The row sink: the engine hands values over without copying; strings are
 * valid only during the callback. */
static int on_columns(void *ud, int ncols, const sq_column *cols, sq_err *err) {
  (void)ud;
  (void)err;
  printf("columns:");
  for (int i = 0; i < ncols; i++) printf(" %.*s", (int)cols[i].name_len, cols[i].name);
  printf("\n");
  return 0;
}

static int on_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  int *count = ud;
  ++*count;
  printf("row:");
  for (int i = 0; i < ncols; i++) {
    switch (v[i].type) {
    case SQ_VINT: printf(" %" PRId64, v[i].u.i); break;
    case SQ_VFLOAT: printf(" %g", v[i].u.f); break;
    case SQ_VBOOL: printf(" %s", v[i].u.b ? "true" : "false"); break;
    case SQ_VTEXT:
    case SQ_VBLOB: printf(" %.*s", (int)v[i].u.s.n, v[i].u.s.p); break;
    default: printf(" NULL"); break;
    }
  }
  printf("\n");
  return 0;
}

static int fail(const char *what, const sq_err *e) {
  fprintf(stderr, "c_query: %s: [%s] %s (code %s)\n", what, sq_kind_name(e->kind), e->msg, e->code);
  return 1;
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "sqlite::memory:";
  sq_err err;
  sq_err_clear(&err);
  if (sq_global_init(&err)) return fail("init", &err);

  sq_config cfg;
  sq_config_init(&cfg);
  if (sq_config_parse_url(&cfg, url, &err) || sq_config_finish(&cfg, &err)) {
    sq_config_free(&cfg);
    return fail("config", &err);
  }
  sq_pool *pool;
  int dialect = cfg.dialect;
  int rc = sq_pool_open(&cfg, &pool, &err);
  sq_config_free(&cfg); /* the pool keeps its own copy */
  if (rc) return fail("pool", &err);

  /* One connection for the whole script: a temporary table lives on it. */
  sq_conn *c;
  if (sq_pool_acquire(pool, -1, &c, &err)) {
    sq_pool_close(pool);
    return fail("acquire", &err);
  }
  const char *ddl = dialect == SQ_DIALECT_MYSQL
                        ? "CREATE TEMPORARY TABLE c_players (id INT PRIMARY KEY, name VARCHAR(32), coins INT)"
                        : "CREATE TEMPORARY TABLE c_players (id INTEGER PRIMARY KEY, name VARCHAR(32), coins INTEGER)";
  sq_result res;
  rc = sq_conn_exec(c, ddl, strlen(ddl), NULL, 0, NULL, &res, &err);
  const char *names[] = {"ann", "bob", "cy"};
  for (int i = 0; !rc && i < 3; i++) {
    sq_value vals[3] = {sq_int(i + 1), sq_text(names[i], strlen(names[i])), sq_int((i + 1) * 250)};
    const char *ins = "INSERT INTO c_players (id, name, coins) VALUES (?, ?, ?)";
    rc = sq_conn_exec(c, ins, strlen(ins), vals, 3, NULL, &res, &err);
  }
  int count = 0;
  if (!rc) {
    sq_row_sink sink = {&count, on_columns, on_row};
    sq_value min = sq_int(300);
    const char *q = "SELECT id, name, coins FROM c_players WHERE coins > :min ORDER BY id";
    rc = sq_conn_exec(c, q, strlen(q), &min, 1, &sink, &res, &err);
  }
  sq_pool_release(pool, c);
  if (rc) {
    sq_pool_close(pool);
    return fail("statement", &err);
  }
  sq_pool_stats st;
  sq_pool_stats_get(pool, &st);
  printf("%d rows; pool size %d idle %d in use %d created %" PRId64 "\n", count, st.size, st.idle, st.in_use,
         st.created);
  sq_pool_close(pool);
  return count == 2 ? 0 : 1;
}
