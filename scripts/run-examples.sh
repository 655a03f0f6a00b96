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

# expect_prints NAME FILE: the output must equal, line for line, the
# "-- Prints:" block of FILE's header comment (its "--   " lines).
expect_prints() {
  local name=$1 file=$2
  if ! diff <(sed -n '/^-- Prints:$/,/^[^-]/s/^--   //p' "$file") "$out" >&2; then
    echo "run-examples: $name: output differs from the Prints: lines of $file (diff above)" >&2
    exit 1
  fi
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
# Hooks, scopes, optimistic locking, JSON and ENUM (inventory), on every
# dialect: the output must be exactly the header's "Prints:" lines, in order.
for url in "sqlite::memory:" "$SQORM_TEST_PG_URL" "$SQORM_TEST_MYSQL_URL"; do
  run "inventory ${url%%:*}" lua5.4 examples/inventory.lua "$url"
  expect_prints "inventory ${url%%:*}" examples/inventory.lua
done
run c_query "$build/examples/c_query"
expect c_query '^row: 2 bob 500$' '^2 rows; pool size 1'
run c_query-postgres "$build/examples/c_query" "$SQORM_TEST_PG_URL"
expect c_query-postgres '^row: 3 cy 750$'
run c_query-mysql "$build/examples/c_query" "$SQORM_TEST_MYSQL_URL"
expect c_query-mysql '^row: 3 cy 750$'
# Operations from C with no Lua (examples/c_ops.c): SQLite, then each server.
run c_ops env -u DATABASE_URL "$build/examples/c_ops"
expect c_ops '^synced c_ops_players' '^created: id=1$' '^found: id=1 name=ada coins=10$' '^updated: 1 row$' \
  '^reloaded: coins=25$' '^destroyed: 1 row$' '^destroyed again: stale$' '^c_ops: ok$'
run c_ops-postgres "$build/examples/c_ops" "$SQORM_TEST_PG_URL"
expect c_ops-postgres '^found: id=[0-9]+ name=ada coins=10$' '^reloaded: coins=25$' '^destroyed again: stale$' '^c_ops: ok$'
run c_ops-mysql "$build/examples/c_ops" "$SQORM_TEST_MYSQL_URL"
expect c_ops-mysql '^found: id=[0-9]+ name=ada coins=10$' '^reloaded: coins=25$' '^destroyed again: stale$' '^c_ops: ok$'


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

# Read replicas: the PostgreSQL streaming standby of the test servers.
if [[ -n ${SQORM_TEST_PG_STANDBY_URL:-} ]]; then
  run read_replicas env DATABASE_URL="$SQORM_TEST_PG_URL" REPLICA_URL="$SQORM_TEST_PG_STANDBY_URL" \
    lua5.4 examples/read_replicas.lua
  expect read_replicas '^read on: replica$' '^use_primary read on: primary$' '^transaction on: primary$' \
    '^read-only transaction on: replica$' '^after a write, read on: primary$' '^replica picks: 2$'
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

# The migrations of examples/migrations through the `sqorm` command, on
# every dialect: applied, reported, reverted (table names of their own).
mig_db=$(mktemp /tmp/sqorm-migrations.XXXXXX.db)
for url in "sqlite://$mig_db" "$SQORM_TEST_MYSQL_URL" "$SQORM_TEST_PG_URL"; do
  name="migrations (${url%%:*})"
  run "$name" bin/sqorm migrate up --dir examples/migrations --table examples_migrations --url "$url"
  expect "$name up" '^migrated  20261201120000_create_players \(' '^migrated  20261201120200_index_players_coins \(' \
    '^applied 3 migrations$'
  run "$name" bin/sqorm migrate status --dir examples/migrations --table examples_migrations --url "$url"
  expect "$name status" '^applied  20261201120100_create_guilds  \(batch 1, '
  run "$name" bin/sqorm migrate down --to 0 --dir examples/migrations --table examples_migrations --url "$url"
  expect "$name down" '^reverted 3 migrations$'
done
rm -f "$mig_db"
# Async mode: one thread, one lua_State, 100 coroutine sessions doing
# read-modify-write transactions while the tick loop keeps running; and
# operations run asynchronously from C, waiting on the fd with poll(2).
if [[ -x $build/examples/embed_server ]]; then
  for u in "" "$SQORM_TEST_PG_URL" "$SQORM_TEST_MYSQL_URL"; do
    run "embed_server --async ${u%%:*}" env -u DATABASE_URL "$build/examples/embed_server" --async 100 $u
    expect "embed_server --async ${u%%:*}" '^sessions: 100 of 100 done, 500 transfers \([0-9]+ retried\), 0 failed, coins 20000 of 20000$' \
      '^tick loop: [0-9]+ ticks in ' '^embed_server --async: ok$'
  done
fi
for u in "" "$SQORM_TEST_PG_URL" "$SQORM_TEST_MYSQL_URL"; do
  run "c_async ${u%%:*}" "$build/examples/c_async" $u
  expect "c_async ${u%%:*}" '^lookups: 64 completed, 0 wrong, in [0-9]+ loop turns; in flight now 0$' \
    '^transaction: committed; total coins 20800$' '^timeout: stopped in time ' '^pool: size [1-4], in use 0$' '^c_async: ok$'
done
