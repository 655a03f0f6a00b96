#!/usr/bin/env bash
# run-examples.sh BUILD_DIR -- runs every example against the test servers
# (SQORM_TEST_* from scripts/with-test-servers.sh) and checks that each
# prints what its comments claim. Exits non-zero on the first mismatch.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${1:-build}
source scripts/env.sh "$build"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# expect NAME PATTERN... : every extended regex must match the output.
expect() {
  local name=$1
  shift
  for pat in "$@"; do
    if ! grep -qE -- "$pat" "$out"; then
      echo "run-examples: $name: output lacks /$pat/; it was:" >&2
      cat "$out" >&2
      exit 1
    fi
  done
  echo "run-examples: $name ok"
}

# run NAME CMD...: runs the example, failing on a non-zero exit.
run() {
  local name=$1
  shift
  if ! "$@" >"$out" 2>&1; then
    echo "run-examples: $name exited non-zero; output:" >&2
    cat "$out" >&2
    exit 1
  fi
}

# The Sequelize getting-started flow on models, embedded SQLite.
run quickstart lua5.4 examples/quickstart.lua
expect quickstart '^Executing \(default\): ' "^Jane's auto-generated ID: 1$" '^All users: 3$' \
  '^Set the last name of 1 user\(s\) without one to Doe$' '^Destroyed 1 user\(s\) named Jane$' \
  '^Remaining: John Doe, Alice Smith$' 'validation error: first_name: cannot be null'
# Associations and eager loading (guilds, players, items), on every dialect.
guilds_expect=('^guilds: 3, on this page: 2$' '^Crows: Ada \(90, 2 items\), Bo \(60, 1 items\), Cy \(30, 0 items\)$'
  '^Owls: Eve \(80, 1 items\), Fay \(20, 0 items\)$' '^page: 3 statements$' "^Owls' richest owns: bow$"
  '^leaderboard: 1\. Crows 185 \(4 members\)$' '^leaderboard: 3\. Owls 100 \(2 members\)$'
  '^players with a sword: Ada, Dan$')
run guilds lua5.4 examples/guilds.lua
expect guilds "${guilds_expect[@]}"
run guilds-postgres lua5.4 examples/guilds.lua "$SQORM_TEST_PG_URL"
expect guilds-postgres "${guilds_expect[@]}"
run guilds-mysql lua5.4 examples/guilds.lua "$SQORM_TEST_MYSQL_URL"
expect guilds-mysql "${guilds_expect[@]}"
run c_query "$build/examples/c_query"
expect c_query '^row: 2 bob 500$' '^2 rows; pool size 1'
run c_query-postgres "$build/examples/c_query" "$SQORM_TEST_PG_URL"
expect c_query-postgres '^row: 3 cy 750$'
run c_query-mysql "$build/examples/c_query" "$SQORM_TEST_MYSQL_URL"
expect c_query-mysql '^row: 3 cy 750$'


# Neon-style: TLS with sslmode=require from DATABASE_URL.
run neon_connect env DATABASE_URL="$SQORM_TEST_PG_URL?sslmode=require" lua5.4 examples/neon_connect.lua
expect neon_connect '^connected over TLS \(TLSv1\.[23]\)$' '^pooler mode: off$' '^PostgreSQL [0-9]+' \
  '^3 parameterised queries ok$'
# The pooled form, through the test PgBouncer (transaction mode).
if [[ -n ${SQORM_TEST_PGBOUNCER_URL:-} ]]; then
  run neon_connect-pooled env DATABASE_URL="$SQORM_TEST_PGBOUNCER_URL?sslmode=require&pgbouncer=true" \
    lua5.4 examples/neon_connect.lua
  expect neon_connect-pooled '^connected over TLS \(TLSv1\.[23]\)$' '^pooler mode: on$' '^PostgreSQL [0-9]+' \
    '^3 parameterised queries ok$'
fi

# TiDB quickstart flow on the MariaDB server, configured from TIDB_*.
if true; then
  run tidb_quickstart env -u DATABASE_URL TIDB_HOST="$SQORM_TEST_MYSQL_HOST" TIDB_PORT="$SQORM_TEST_MYSQL_PORT" \
    TIDB_USER="$SQORM_TEST_MYSQL_USER" TIDB_PASSWORD="$SQORM_TEST_MYSQL_PASSWORD" \
    TIDB_DB_NAME="$SQORM_TEST_MYSQL_DB" TIDB_ENABLE_SSL=true TIDB_CA_PATH="$SQORM_TEST_CA" \
    lua5.4 examples/tidb_quickstart.lua
  expect tidb_quickstart '^Created 5 players\.$' '^Selected 2 players with coins > 300\.$' \
    '^Created player with id 6\.$' '^Updated player 6: coins = 700, goods = 700\.$' \
    '^Deleted 1 player\(s\) with id 6\.$' 'find_by_pk\(6\) returned nil' 'ENGINE=InnoDB' \
    "COMMENT 'The unique ID of the player\.'"
fi

for f in examples/sqlalchemy_style.lua; do
  for url in "sqlite::memory:" "$SQORM_TEST_MYSQL_URL" "$SQORM_TEST_PG_URL"; do
    run sqlalchemy_style env DATABASE_URL="$url" lua5.4 "$f"
    expect "sqlalchemy_style ($url)" 'unique_violation'
  done
done

if [[ -x $build/examples/embed_server ]]; then
  run embed_server env -u DATABASE_URL "$build/examples/embed_server" examples/embed_worker.lua
  expect embed_server '^embed_server: 4 worker threads, one lua_State each, sharing pool "main" \(sqlite\)$' \
    '^worker 1: 300 ticks, 300 reads, 300 writes, 15 trades$' '^worker 4: 300 ticks, 300 reads, 300 writes, 15 trades$' \
    '^pool "main": size [1-3], idle [0-3], in_use 0, waiting 0, created [0-9]+, destroyed [0-9]+, timeouts 0, max 3$' \
    '^coins: 2200 = 1000 at start \+ 1200 earned$' '^embed_server: ok$'
fi
