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

run quickstart lua5.4 examples/quickstart.lua
expect quickstart '^Executing \(default\): ' "${QUICKSTART_PATTERNS[@]:-.}"

# Neon-style: TLS with sslmode=require from DATABASE_URL.
run neon_connect env DATABASE_URL="$SQORM_TEST_PG_URL?sslmode=require" lua5.4 examples/neon_connect.lua
expect neon_connect '^connected over TLS \(TLSv1\.[23]\)$' '^PostgreSQL [0-9]+'

# TiDB quickstart flow on the MariaDB server, configured from TIDB_*.
if [[ -f examples/tidb_quickstart.lua ]]; then
  run tidb_quickstart env -u DATABASE_URL TIDB_HOST="$SQORM_TEST_MYSQL_HOST" TIDB_PORT="$SQORM_TEST_MYSQL_PORT" \
    TIDB_USER="$SQORM_TEST_MYSQL_USER" TIDB_PASSWORD="$SQORM_TEST_MYSQL_PASSWORD" \
    TIDB_DB_NAME="$SQORM_TEST_MYSQL_DB" TIDB_ENABLE_SSL=true TIDB_CA_PATH="$SQORM_TEST_CA" \
    lua5.4 examples/tidb_quickstart.lua
  expect tidb_quickstart "${TIDB_PATTERNS[@]:-.}"
fi

for f in examples/sqlalchemy_style.lua; do
  [[ -f $f ]] || continue
  for url in "sqlite::memory:" "$SQORM_TEST_MYSQL_URL" "$SQORM_TEST_PG_URL"; do
    run sqlalchemy_style env DATABASE_URL="$url" lua5.4 "$f"
    expect "sqlalchemy_style ($url)" 'unique_violation'
  done
done

if [[ -x $build/examples/embed_server ]]; then
  run embed_server "$build/examples/embed_server" examples/embed_worker.lua
  expect embed_server "${EMBED_PATTERNS[@]:-.}"
fi
