#!/usr/bin/env bash
#
# compare.sh -- the sqorm client of the benchmark on two git revisions,
# side by side, against one server start.
#
# Usage: bench/compare.sh [REV_A [REV_B]]
#        (default: ea051ee, the last main before the binding was split
#        into operations, against HEAD)
#
# Builds the Lua module of each revision (git archive into a temp dir,
# cmake RelWithDebInfo as scripts/build.sh, target sqorm_lua only) into
# $COMPARE_DIR/build-A and build-B, then runs bench/sqorm_bench.lua of
# the work tree (one script, so only the library differs) for every
# database and workload, ALTERNATING A, B, A, B ... ROUNDS times, each
# run its own process pinned to CPU $BENCH_CPU with the servers (as
# bench/run.sh does). A slow minute on a shared machine thus hits both
# sides alike, and neither side always runs first on a warm server.
# Prints a table: median ops/s of A and of B, B/A, the spread (the
# lowest and highest run as a fraction of the median) of each side, and
# the client process's median CPU time per operation (benchlib's CPU
# lines: the measured part only) of each side with A/B - on a busy
# machine the wall clock mostly measures the others, the client's own
# CPU per operation much less so.
#
# Environment:
#   SCALE       multiplies every count (default 0.1)
#   ROUNDS      A/B pairs per (db, workload) (default 3; the median of them)
#   DBS         databases (default "sqlite mysql postgres")
#   WORKLOADS   workloads (default all seven of bench/run.sh)
#   BENCH_CPU   the CPU everything is pinned to (default 0; "" : unpinned)
#   COMPARE_DIR where the sources, builds and raw RESULT lines go
#               (default a temp dir, kept; its path is printed)
# Starts throwaway MariaDB and PostgreSQL servers through
# scripts/with-test-servers.sh unless SQORM_TEST_MYSQL_PORT is set (or
# DBS is just sqlite).

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1
log() { printf 'compare: %s\n' "$*" >&2; }

REV_A=${1:-ea051ee}
REV_B=${2:-HEAD}
export SCALE=${SCALE:-0.1}
ROUNDS=${ROUNDS:-3}
DBS=${DBS:-sqlite mysql postgres}
WORKLOADS=${WORKLOADS:-insert_single bulk_insert pk_lookup scan update txn_transfer stream}
BENCH_CPU=${BENCH_CPU-0}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { log "ROUNDS must be a positive integer"; exit 2; }

# Build both sides first (outside the server wrapper: no server runs
# while the compiler does).
if [[ -z ${SQORM_COMPARE_WRAPPED:-} ]]; then
  COMPARE_DIR=${COMPARE_DIR:-$(mktemp -d /tmp/sqorm-compare.XXXXXX)}
  export COMPARE_DIR
  for side in A B; do
    rev=REV_$side
    sha=$(git rev-parse --verify "${!rev}^{commit}") || { log "unknown revision ${!rev}"; exit 2; }
    src="$COMPARE_DIR/src-$side" bld="$COMPARE_DIR/build-$side"
    if [[ $(cat "$bld/.rev" 2>/dev/null) != "$sha" ]]; then
      rm -rf "$src" "$bld"
      mkdir -p "$src"
      git archive "$sha" | tar -x -C "$src" || { log "git archive $sha failed"; exit 1; }
      log "building $side = ${!rev} ($sha) in $bld"
      if ! { cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
             cmake --build "$bld" -j"$(nproc)" --target sqorm_lua -- --no-print-directory >/dev/null; }; then
        log "building $side failed"
        exit 1
      fi
      echo "$sha" >"$bld/.rev"
    fi
    echo "$sha" >"$COMPARE_DIR/sha-$side"
  done
  export SQORM_COMPARE_WRAPPED=1
  if [[ -z ${SQORM_TEST_MYSQL_PORT:-} && " $DBS " != " sqlite " ]]; then
    log "starting throwaway servers (scripts/with-test-servers.sh)"
    export SQORM_TEST_SERVERS=${SQORM_TEST_SERVERS:-mysql,postgres}
    exec bash scripts/with-test-servers.sh bash "$here/compare.sh" "$REV_A" "$REV_B"
  fi
fi

# TLS-less twins, as bench/run.sh.
[[ -n ${SQORM_TEST_MYSQL_PLAIN_PORT:-} ]] && export SQORM_TEST_MYSQL_PORT=$SQORM_TEST_MYSQL_PLAIN_PORT
[[ -n ${SQORM_TEST_PG_PLAIN_PORT:-} ]] && export SQORM_TEST_PG_PORT=$SQORM_TEST_PG_PLAIN_PORT
export PGSSLMODE=disable
unset LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4

# Pin the servers and the clients to one CPU, as bench/run.sh does.
pin=()
declare -A old_mask=()
restore_servers() {
  local p
  for p in "${!old_mask[@]}"; do taskset -ap "${old_mask[$p]}" "$p" >/dev/null 2>&1 || true; done
}
if [[ -n $BENCH_CPU ]] && command -v taskset >/dev/null; then
  pin=(taskset -c "$BENCH_CPU")
  if [[ -n ${SQORM_TEST_DIR:-} && -d ${SQORM_TEST_DIR:-} ]]; then
    for p in $({ find "$SQORM_TEST_DIR" -name '*.pid' -type f -exec head -qn1 {} + 2>/dev/null
                 pgrep -f "$SQORM_TEST_DIR/"; } | grep -E '^[0-9]+$' | sort -u); do
      mask=$(taskset -p "$p" 2>/dev/null | awk '{print $NF}') || continue
      [[ -n $mask ]] && taskset -apc "$BENCH_CPU" "$p" >/dev/null 2>&1 && old_mask[$p]=$mask
      for c in $(pgrep -P "$p"); do
        mask=$(taskset -p "$c" 2>/dev/null | awk '{print $NF}') || continue
        [[ -n $mask ]] && taskset -apc "$BENCH_CPU" "$c" >/dev/null 2>&1 && old_mask[$c]=$mask
      done
    done
    trap restore_servers EXIT
    log "pinned ${#old_mask[@]} server processes and the clients to CPU $BENCH_CPU"
  fi
fi

raw="$COMPARE_DIR/results.txt"
: >"$raw"
failures=0
tmp=$(mktemp)
start=$SECONDS
log "A = $REV_A ($(cut -c1-10 "$COMPARE_DIR/sha-A")), B = $REV_B ($(cut -c1-10 "$COMPARE_DIR/sha-B")),"\
" SCALE=$SCALE ROUNDS=$ROUNDS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for db in $DBS; do
  for w in $WORKLOADS; do
    for ((r = 1; r <= ROUNDS; r++)); do
      for side in A B; do
        if SQORM_BUILD="$COMPARE_DIR/build-$side" "${pin[@]}" lua5.4 "$here/sqorm_bench.lua" "$db" "$w" \
             >"$tmp" 2>>"$COMPARE_DIR/errors.log" && grep -q '^RESULT ' "$tmp"; then
          grep -E '^(RESULT|CPU) ' "$tmp" | sed "s/\$/ $side/" >>"$raw"
        else
          log "FAILED: $side $db $w (see $COMPARE_DIR/errors.log)"
          failures=$((failures + 1))
        fi
      done
    done
  done
done
rm -f "$tmp"

echo "# bench/compare.sh $(date -u '+%Y-%m-%d %H:%M:%S') UTC: A = $REV_A ($(cut -c1-10 "$COMPARE_DIR/sha-A")),"\
" B = $REV_B ($(cut -c1-10 "$COMPARE_DIR/sha-B"))"
echo "# SCALE=$SCALE ROUNDS=$ROUNDS (A,B alternating) cpu=${BENCH_CPU:-unpinned} nproc=$(nproc)"\
" took $((SECONDS - start))s, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
# RESULT <workload> <db> <client> <ops> <seconds> <ops_per_sec> <peak_rss_kib> <side>
# CPU <workload> <db> <client> <ops> <cpu_seconds> <side>
lua5.4 - "$raw" <<'EOF'
local rows, order = {}, {}
local function row(w, db, c)
  local key = db .. " " .. w .. " " .. c
  if not rows[key] then
    rows[key] = { A = {}, B = {}, cA = {}, cB = {}, db = db, w = w, c = c }
    order[#order + 1] = key
  end
  return rows[key]
end
for line in io.lines(arg[1]) do
  local w, db, c, ops_s, side = line:match("^RESULT (%S+) (%S+) (%S+) %S+ %S+ (%S+) %S+ (%S+)$")
  if w then table.insert(row(w, db, c)[side], tonumber(ops_s)) end
  local cw, cdb, cc, ops, cpu, cside = line:match("^CPU (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$")
  if cw and tonumber(ops) > 0 then
    table.insert(row(cw, cdb, cc)["c" .. cside], tonumber(cpu) / tonumber(ops) * 1e6)
  end
end
local function median(t)
  if #t == 0 then return nil end
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2, s[1], s[n]
end
local function spread(m, lo, hi)
  if not m then return "-" end
  return ("%.2f-%.2f"):format(lo / m, hi / m)
end
local function num(v, f) return v and (f or "%.0f"):format(v) or "-" end
-- ops/s: wall clock (B/A > 1: B faster); cpu us/op: the client process's
-- CPU time per operation in the measured part (cpu A/B > 1: B cheaper)
print(("%-9s %-14s %-10s %10s %10s %6s %11s %11s %9s %9s %7s"):format("db", "workload", "client", "A ops/s",
  "B ops/s", "B/A", "A spread", "B spread", "A cpu us", "B cpu us", "cpu A/B"))
for _, key in ipairs(order) do
  local r = rows[key]
  local ma, la, ha = median(r.A)
  local mb, lb, hb = median(r.B)
  local ca, cb = median(r.cA), median(r.cB)
  print(("%-9s %-14s %-10s %10s %10s %6s %11s %11s %9s %9s %7s"):format(r.db, r.w, r.c, num(ma), num(mb),
    (ma and mb) and ("%.2f"):format(mb / ma) or "-", spread(ma, la, ha), spread(mb, lb, hb),
    num(ca, "%.1f"), num(cb, "%.1f"), (ca and cb and cb > 0) and ("%.2f"):format(ca / cb) or "-"))
end
EOF
echo "# raw RESULT lines: $raw"
((failures)) && { log "$failures run(s) failed"; exit 1; }
exit 0
