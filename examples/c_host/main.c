/*
 * c_host/main.c - a C program using an installed sqorm (no Lua): open a
 * SQLite pool, create a table with a schema operation, insert with bound
 * values, select through a row sink.
 *
 * Built outside the source tree against an installed prefix, either way:
 *
 *   cc -o c_host main.c $(pkg-config --cflags --libs sqorm)
 *   cmake -S . -B build -DCMAKE_PREFIX_PATH=<prefix> && cmake --build build
 *
 * (scripts/c-host-check.sh does both; see README.md, "Install".)
 *
 *   c_host [URL]        default sqlite::memory:
 */
#include <sqorm.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int on_row(void *ud, int ncols, const sq_value *v, sq_err *err) {
  (void)err;
  int *rows = ud;
  ++*rows;
  if (ncols == 2 && v[0].type == SQ_VTEXT && v[1].type == SQ_VINT)
    printf("%.*s has %" PRId64 " coins\n", (int)v[0].u.s.n, v[0].u.s.p, v[1].u.i);
  return 0;
}

static int fail(const char *what, const sq_err *e) {
  fprintf(stderr, "c_host: %s: [%s] %s\n", what, sq_kind_name(e->kind), e->msg);
  return 1;
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "sqlite::memory:";
  sq_err err;
  sq_err_clear(&err);
  if (sq_global_init(&err)) return fail("init", &err);
  printf("sqorm %s\n", SQORM_VERSION);

  sq_config cfg;
  sq_config_init(&cfg);
  sq_pool *pool = NULL;
  int rc = sq_config_parse_url(&cfg, url, &err);
  if (!rc) rc = sq_config_finish(&cfg, &err);
  if (!rc) rc = sq_pool_open(&cfg, &pool, &err);
  sq_config_free(&cfg);
  if (rc) return fail("open", &err);

  /* CREATE TABLE players, rendered for the pool's dialect by the core */
  sq_scol cols[3];
  sq_scol_init(&cols[0], "id", SQ_T_INTEGER);
  cols[0].primary_key = 1;
  cols[0].auto_increment = 1;
  sq_scol_init(&cols[1], "name", SQ_T_STRING);
  cols[1].length = 32;
  cols[1].allow_null = 0;
  sq_scol_init(&cols[2], "coins", SQ_T_INTEGER);
  cols[2].default_kind = SQ_DEFAULT_VALUE;
  cols[2].default_value = sq_int(0);
  sq_sop ops[2];
  sq_sop_init(&ops[0], SQ_SOP_DROP_TABLE, "c_host_players");
  ops[0].if_exists = 1;
  sq_sop_init(&ops[1], SQ_SOP_CREATE_TABLE, "c_host_players");
  ops[1].cols = cols;
  ops[1].ncols = 3;
  sq_conn *c = NULL;
  rc = sq_pool_acquire(pool, -1, &c, &err);
  if (!rc) {
    rc = sq_schema_apply(c, ops, 2, 0, NULL, NULL, &err);
    sq_pool_release(pool, c);
  }
  if (rc) return fail("create table", &err);

  /* values travel as binds, never in the SQL text */
  static const char ins[] = "INSERT INTO c_host_players (name, coins) VALUES (?, ?)";
  const char *names[] = {"ann", "bob"};
  for (int i = 0; i < 2; i++) {
    sq_value v[2] = {sq_text(names[i], strlen(names[i])), sq_int(100 * (i + 1))};
    sq_result res;
    if ((rc = sq_pool_exec(pool, ins, sizeof ins - 1, v, 2, NULL, &res, &err))) return fail("insert", &err);
  }
  int rows = 0;
  sq_row_sink sink = {&rows, NULL, on_row};
  static const char sel[] = "SELECT name, coins FROM c_host_players WHERE coins > ? ORDER BY id";
  sq_value min = sq_int(50);
  sq_result res;
  if ((rc = sq_pool_exec(pool, sel, sizeof sel - 1, &min, 1, &sink, &res, &err))) return fail("select", &err);
  printf("%d rows\n", rows);
  sq_pool_close(pool);
  return rows == 2 ? 0 : 1;
}
