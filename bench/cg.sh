#!/usr/bin/env bash
# cg.sh -- instructions per op of the Lua clients' timed parts (callgrind).
#
# Usage: bench/cg.sh <client-script> <db> <workload> [ops...]
#   e.g. SCALE=0.02 bench/cg.sh bench/sqorm_bench.lua sqlite scan
# Runs the client under callgrind with a dump at every B.clock() call
# (bench/cg_wrap.lua) and prints, for each dump, its instructions and,
# given the RESULT lines' op counts, instructions per op of the parts
# that a RESULT line timed (the parts between two clock calls).
# Out files go to $CG_DIR (default a temp dir, printed).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script=$1 db=$2 wl=$3
dir=${CG_DIR:-$(mktemp -d /tmp/sqorm-cg.XXXXXX)}
mkdir -p "$dir"
rm -f "$dir"/callgrind.out.*
valgrind --tool=callgrind --dump-before=difftime --callgrind-out-file="$dir/callgrind.out.%p" \
  lua5.4 "$here/cg_wrap.lua" "$script" "$db" "$wl" >"$dir/stdout" 2>"$dir/stderr" || {
  tail -20 "$dir/stderr" >&2; exit 1; }
grep '^RESULT' "$dir/stdout"
for f in $(ls "$dir"/callgrind.out.* | sort -t. -k3 -n); do
  printf '%s %s\n' "${f##*/}" "$(grep -m1 '^summary:\|^totals:' "$f" | awk '{print $2}')"
done
echo "# out files in $dir"
