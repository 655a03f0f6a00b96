#!/usr/bin/env bash
# callgrind.sh <client> <db> <workload> -- the client's instructions per op
# inside the timed part of one workload, by valgrind's callgrind (stable on
# a shared machine where the wall clock is not).
#
#   client: sqorm | lua_floor | raw_c      db: sqlite | mysql | postgres
#   SQORM_BENCH_BULK=noret: sqorm's bulk_insert with returning = false
#
# Lua clients: benchlib's clock is wrapped so that every clock read first
# calls os.difftime, and callgrind dumps before each difftime: dump 2k is
# the timed part of the k-th RESULT line. raw_c:
# dumps before clock_gettime, and the timed part is the dump that runs
# the workload's statements without preparing any (see below).
# Prints "CALLGRIND <workload> <db> <client> <ops> <instructions> <per op>".
# SCALE defaults to 0.05; the servers are the SQORM_TEST_* ones (run under
# scripts/with-test-servers.sh for mysql/postgres); SQORM_BUILD and
# build-bench/ as for run.sh. CG_OUT keeps the callgrind files (a dir).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
client=$1 db=$2 wl=$3
export SCALE=${SCALE:-0.05}
out=${CG_OUT:-$(mktemp -d)}
mkdir -p "$out"
cd "$root"
case $client in
  raw_c)
    bin=${BENCH_BUILD:-$root/build-bench}/raw_bench
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" --dump-before='clock_gettime*' \
      "$bin" "$db" "$wl" >"$out/stdout" 2>"$out/stderr" ;;
  sqorm|lua_floor)
    script=$root/bench/${client}_bench.lua
    # sqorm's bulk_insert: one variant per process (instances unless
    # SQORM_BENCH_BULK=noret, returning = false)
    export SQORM_BENCH_BULK=${SQORM_BENCH_BULK:-instances}
    [ "$client" = lua_floor ] && export LUA_FLOOR_BUILD=${LUA_FLOOR_BUILD:-$root/build-bench}
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" --dump-before='difftime*' \
      lua5.4 -e 'package.path = "'"$root"'/bench/?.lua;" .. package.path
        local B = require "benchlib"; local clock = B.clock
        B.clock = function() os.difftime(0, 0); return clock() end' \
      "$script" "$db" "$wl" >"$out/stdout" 2>"$out/stderr" ;;
  *) echo "callgrind.sh: unknown client $client" >&2; exit 2 ;;
esac
if [ "$client" = raw_c ]; then
  # Other code (libraries' connect, SQLite's VFS) reads the clock too: the
  # timed part is the dump that runs the workload but neither prepares a
  # statement nor runs a plain query (setup and checks, outside the clock).
  f=
  for g in "$out"/cg.*.*; do
    grep -q "wl_$wl" "$g" || continue
    grep -Eq 'sqlite3_prepare|sqlite3_exec|mysql_stmt_prepare|mysql_real_query|PQprepare|PQexec[^P]|PQexec$' "$g" && continue
    f=$g
  done
  [ -n "$f" ] || { echo "callgrind.sh: no timed dump (see $out)" >&2; exit 1; }
fi
# Lua clients: the k-th RESULT line's timed part ends at the 2k-th clock
# read (scan's sqorm_raw comes first).
k=0
grep '^RESULT' "$out/stdout" | while read -r _ w d c ops _; do
  k=$((k + 1))
  [ "$client" = raw_c ] || f=$(ls "$out"/cg.*."$((2 * k))" 2>/dev/null | head -1)
  [ -n "$f" ] || { echo "callgrind.sh: no timed dump for $c (see $out)" >&2; exit 1; }
  ins=$(awk '/^summary:/ {print $2}' "$f")
  echo "CALLGRIND $w $d $c $ops $ins $(awk -v i="$ins" -v o="$ops" 'BEGIN { printf "%.0f", i / o }')"
done
[ -n "${CG_OUT:-}" ] || rm -rf "$out"
