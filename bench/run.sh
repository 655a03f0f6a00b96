#!/usr/bin/env bash
#
# run.sh -- run the sqorm benchmarks end to end.
#
# Usage: bench/run.sh            full run (SCALE=1, about 15 minutes)
#        SCALE=0.01 bench/run.sh smoke run (seconds)
#
# Starts throwaway MariaDB and PostgreSQL servers through
# scripts/with-test-servers.sh unless SQORM_TEST_MYSQL_PORT is already set,
# builds raw_bench, runs every client (raw_c, luasql, and sqorm when
# bench/sqorm_bench.lua exists) for every database and workload, each as its
# own process pinned to CPU 0 with the servers, and writes
# bench/results/latest.{txt,md,png,log} (smoke.* when SCALE != 1). Exits non-zero if any client failed.
#
# Environment:
#   SCALE       multiplies every count (default 1.0)
#   DBS         databases to run (default "sqlite mysql postgres")
#   CLIENTS     clients to run (default "raw_c luasql sqorm")
#   WORKLOADS   workloads to run (default: all seven)
#   BENCH_CPU   the CPU everything is pinned to (default 0)

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1

log() { printf 'bench: %s\n' "$*" >&2; }

# From a fresh clone this one command is enough: install what is missing
# (a no-op when everything is there) and build sqorm into build/ unless
# SQORM_BUILD points at a build tree already (the test command's smoke run
# passes its own). Done once, before the server wrapper re-runs us.
if [[ -z ${SQORM_BENCH_WRAPPED:-} ]]; then
  bash scripts/install-deps.sh --all || exit 1
  if [[ -z ${SQORM_BUILD:-} ]]; then
    bash scripts/build.sh "$root/build" || { log "building sqorm failed"; exit 1; }
    export SQORM_BUILD="$root/build"
  fi
fi

# Without servers, re-run this script inside the test-server wrapper, which
# exports the SQORM_TEST_* variables and stops the servers afterwards. The
# guard variable stops a loop if the wrapper exported nothing.
if [[ -z ${SQORM_TEST_MYSQL_PORT:-} && -z ${SQORM_BENCH_WRAPPED:-} ]]; then
  if [[ ! -f scripts/with-test-servers.sh ]]; then
    log "no servers: export SQORM_TEST_MYSQL_* and SQORM_TEST_PG_*," \
      "or add scripts/with-test-servers.sh"
    exit 1
  fi
  log "starting throwaway servers (scripts/with-test-servers.sh)"
  export SQORM_BENCH_WRAPPED=1
  # Only the MariaDB and PostgreSQL pairs: no pooler, replicas or cluster.
  export SQORM_TEST_SERVERS=${SQORM_TEST_SERVERS:-mysql,postgres}
  exec bash scripts/with-test-servers.sh bash "$here/run.sh" "$@"
fi

export SCALE=${SCALE:-1}
DBS=${DBS:-sqlite mysql postgres}
CLIENTS=${CLIENTS:-raw_c luasql sqorm}
WORKLOADS=${WORKLOADS:-insert_single bulk_insert pk_lookup scan update \
txn_transfer stream}
BENCH_CPU=${BENCH_CPU:-0}

# The test-server script also runs TLS-less twins of its servers; the
# benchmark talks to those so that no client pays for TLS.
if [[ -n ${SQORM_TEST_MYSQL_PLAIN_PORT:-} ]]; then
  export SQORM_TEST_MYSQL_PORT=$SQORM_TEST_MYSQL_PLAIN_PORT
fi
if [[ -n ${SQORM_TEST_PG_PLAIN_PORT:-} ]]; then
  export SQORM_TEST_PG_PORT=$SQORM_TEST_PG_PLAIN_PORT
fi
export PGSSLMODE=disable

# sqorm_bench.lua finds lua/sqorm/*.lua from the work tree; the C module's
# location is the sqorm side's business (LUA_CPATH or the script itself).
if [[ -z ${LUA_PATH:-} && -z ${LUA_PATH_5_4:-} ]]; then
  export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
fi

# A full run (SCALE=1) writes results/latest.* (committed, linked from the
# README); a scaled run (e.g. the test command's smoke run) writes
# results/smoke.*, so it never overwrites the published figures.
results="$here/results"
mkdir -p "$results"
stem=latest
[[ ${SCALE:-1} == 1 || ${SCALE:-1} == 1.0 ]] || stem=smoke
out="$results/$stem.txt"
errlog="$results/$stem.log"

# ---------------------------------------------------------------------------
# Build raw_bench (Release, -O2) in bench/build.

build="$here/build"
if ! { cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
       cmake --build "$build" >/dev/null; }; then
  log "building raw_bench failed"
  exit 1
fi

# ---------------------------------------------------------------------------
# Pin the servers and the clients to one CPU. On a small machine, a client
# and a server on different cores mostly measure how fast an idle core wakes
# up; on one core every round trip is a plain context switch, which makes
# the runs repeatable and the clients comparable.

pin=()
if command -v taskset >/dev/null; then
  pin=(taskset -c "$BENCH_CPU")
else
  log "taskset not found: running unpinned"
fi

declare -A old_mask=()
server_pids() {
  [[ -n ${SQORM_TEST_DIR:-} && -d ${SQORM_TEST_DIR:-} ]] || return 0
  local p
  {
    # mysqld.pid, launcher.pid, data/postmaster.pid (first line is the pid)
    find "$SQORM_TEST_DIR" -name '*.pid' -type f -exec head -qn1 {} + 2>/dev/null
    pgrep -f "$SQORM_TEST_DIR/" || true
  } | grep -E '^[0-9]+$' | sort -u | while read -r p; do
    echo "$p"
    pgrep -P "$p" || true   # postgres auxiliary processes, forked children
  done | sort -u
}

restore_servers() {
  local p
  for p in "${!old_mask[@]}"; do
    taskset -ap "${old_mask[$p]}" "$p" >/dev/null 2>&1 || true
  done
}

if ((${#pin[@]})); then
  npinned=0
  for p in $(server_pids); do
    mask=$(taskset -p "$p" 2>/dev/null | awk '{print $NF}') || continue
    [[ -n $mask ]] || continue
    # -a: every thread (MariaDB); new connections inherit the mask.
    if taskset -apc "$BENCH_CPU" "$p" >/dev/null 2>&1; then
      old_mask[$p]=$mask
      npinned=$((npinned + 1))
    fi
  done
  if ((npinned)); then
    log "pinned $npinned server processes to CPU $BENCH_CPU"
    trap restore_servers EXIT
  else
    log "no server processes found under SQORM_TEST_DIR: servers run unpinned"
  fi
fi

# ---------------------------------------------------------------------------
# Run every client x database x workload as its own process, so each peak RSS
# belongs to one workload and one crash loses one figure.

command -v lua5.4 >/dev/null || { log "lua5.4 not found"; exit 1; }
if ! lua5.4 -e 'require "socket"' 2>/dev/null; then
  log "lua-socket missing (apt-get install lua-socket): Lua timings use /proc/uptime"
fi

client_cmd() {
  case $1 in
    raw_c) echo "$build/raw_bench" ;;
    luasql) echo "lua5.4 $here/luasql_bench.lua" ;;
    sqorm) echo "lua5.4 $here/sqorm_bench.lua" ;;
  esac
}

clients=()
for c in $CLIENTS; do
  if [[ $c == sqorm && ! -f $here/sqorm_bench.lua ]]; then
    log "bench/sqorm_bench.lua not found: skipping the sqorm client"
    continue
  fi
  [[ -n $(client_cmd "$c") ]] || { log "unknown client $c"; exit 1; }
  clients+=("$c")
done

{
  echo "# sqorm benchmark $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
  echo "# SCALE=$SCALE cpu=$BENCH_CPU nproc=$(nproc) $(uname -sr)"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "# RESULT <workload> <db> <client> <ops> <seconds> <ops_per_sec> <peak_rss_kib>"
} >"$out"
: >"$errlog"

failures=0
tmp=$(mktemp)
tmperr=$(mktemp)
for db in $DBS; do
  for w in $WORKLOADS; do
    for c in "${clients[@]}"; do
      rc=0
      # shellcheck disable=SC2046  # the command is words by design
      "${pin[@]}" $(client_cmd "$c") "$db" "$w" >"$tmp" 2>"$tmperr" || rc=$?
      cat "$tmperr" >>"$errlog"
      if ((rc == 0)) && grep -q '^RESULT ' "$tmp"; then
        grep '^RESULT ' "$tmp" | tee -a "$out"
        continue
      fi
      if ((rc == 0)); then
        log "FAILED: $c $db $w printed no RESULT line"
      else
        log "FAILED: $c $db $w (exit $rc); full output in $errlog"
        grep -v '^#' "$tmperr" | head -n 3 | sed 's/^/    /' >&2
      fi
      echo "# FAILED $w $db $c" >>"$out"
      failures=$((failures + 1))
    done
  done
done
rm -f "$tmp" "$tmperr"

# ---------------------------------------------------------------------------
# Table, markdown and chart.

if ! lua5.4 "$here/report.lua" "$out" "$results/$stem"; then
  log "report failed"
  failures=$((failures + 1))
fi

if ((failures)); then
  log "$failures client run(s) failed"
  exit 1
fi
