#!/usr/bin/env bash
#
# run.sh -- run the sqorm benchmarks end to end.
#
# Usage: bench/run.sh                      full run (SCALE=1, medians of 3)
#        SCALE=0.01 bench/run.sh           smoke run (REPEAT=1)
#        ROWS=10000,100000,1000000 bench/run.sh
#                                          size sweep of bulk_insert, scan
#                                          and stream (time and peak RSS)
#
# Starts throwaway MariaDB and PostgreSQL servers through
# scripts/with-test-servers.sh unless SQORM_TEST_MYSQL_PORT is already set,
# builds raw_bench and lua_floor.so, installs the peers (Sequelize with npm
# ci from bench/peers/sequelize/package-lock.json; SQLAlchemy is a Debian
# package), runs every client for every database and workload, each as its
# own process pinned to CPU 0 with the servers, and writes
# bench/results/latest.{txt,md,png,log} (smoke.* when SCALE != 1,
# sweep.* for ROWS=...). Exits non-zero if a sqorm-side client failed; a
# peer that can't be installed or run is reported, not fatal
# (PEERS_STRICT=1 makes it fatal).
#
# Environment:
#   SCALE       multiplies every count (default 1.0)
#   REPEAT      runs of each (client, db, workload); the report takes the
#               median (default 3 when SCALE=1, else 1)
#   DBS         databases to run (default "sqlite mysql postgres")
#   CLIENTS     clients to run (default "sqorm lua_floor raw_c luasql")
#   PEERS       peers to add (default "sequelize sqlalchemy"; empty: none;
#               sqlalchemy means sqlalchemy_orm and sqlalchemy_core)
#   WORKLOADS   workloads to run (default: all seven and include; the sweep: bulk_insert
#               scan stream)
#   ROWS        comma-separated sizes: run the size sweep instead
#   BENCH_CPU   the CPU everything is pinned to (default 0)
#   BENCH_TIMEOUT  seconds one client process may take (default 3600)
#   PEER_PROCESS   each | all: a peer process per workload (as every other
#               client), or one per database running all seven workloads
#               (default each when SCALE=1, else all: Python's and Node's
#               start-up would dominate a smoke run)
#   PEER_INSTALL   full | lite: Sequelize with or without the sqlite3 npm
#               package (default full when SCALE=1 or already installed so,
#               else lite; see below)

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

ROWS=${ROWS:-}
ROWS=${ROWS//,/ }
if [[ -n $ROWS ]]; then
  for r in $ROWS; do
    [[ $r =~ ^[1-9][0-9]*$ ]] || { log "ROWS: '$r' is not a row count"; exit 2; }
  done
  export SCALE=1   # the sweep sets its sizes exactly (BENCH_ROWS)
  WORKLOADS=${WORKLOADS:-bulk_insert scan stream}
fi
export SCALE=${SCALE:-1}
full=0
[[ $SCALE == 1 || $SCALE == 1.0 ]] && full=1
if [[ -n $ROWS ]]; then
  REPEAT=${REPEAT:-1}
elif ((full)); then
  REPEAT=${REPEAT:-3}
else
  REPEAT=${REPEAT:-1}
fi
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { log "REPEAT must be a positive integer"; exit 2; }
DBS=${DBS:-sqlite mysql postgres}
CLIENTS=${CLIENTS-sqorm lua_floor raw_c luasql}
PEERS=${PEERS-sequelize sqlalchemy}
WORKLOADS=${WORKLOADS:-insert_single bulk_insert pk_lookup scan update \
txn_transfer stream include}
# include (issue 11's eager-loading tree, 1,000 users x 10 posts x 3 tags)
# runs for a time budget: 3 s x SCALE per process, at least 0.2 s.
INCLUDE_SECONDS=${INCLUDE_SECONDS:-$(awk -v s="$SCALE" 'BEGIN { t = 3 * s; if (t < 0.2) t = 0.2; print t }')}
BENCH_CPU=${BENCH_CPU:-0}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
PEERS_STRICT=${PEERS_STRICT:-0}
PEER_PROCESS=${PEER_PROCESS:-}
if [[ -z $PEER_PROCESS ]]; then
  PEER_PROCESS=all
  ((full)) && PEER_PROCESS=each
fi
[[ $PEER_PROCESS == each || $PEER_PROCESS == all ]] ||
  { log "PEER_PROCESS must be each or all"; exit 2; }
PY=${BENCH_PYTHON:-/usr/bin/python3}   # Debian's, which sees Debian's packages

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
# results/smoke.*, so it never overwrites the published figures; the sweep
# writes results/sweep.*.
results="$here/results"
mkdir -p "$results"
stem=latest
((full)) || stem=smoke
[[ -n $ROWS ]] && stem=sweep
out="$results/$stem.txt"
errlog="$results/$stem.log"

# ---------------------------------------------------------------------------
# Build raw_bench and lua_floor.so (Release, -O2) in bench/build.

build="$here/build"
if ! { cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
       cmake --build "$build" >/dev/null; }; then
  log "building raw_bench / lua_floor failed"
  exit 1
fi
export LUA_FLOOR_BUILD="$build"

: >"$errlog"
notes=()   # "# UNAVAILABLE ..." lines for the results file

# ---------------------------------------------------------------------------
# Peers. Sequelize: npm ci from the lock file into bench/peers/sequelize
# (skipped when node_modules already matches the lock). A full run installs
# everything, the sqlite3 package included (built from source where npm
# can't fetch its prebuilt binary: a few minutes, once); a scaled run that
# finds nothing installed leaves the optional sqlite3 package out
# (--omit=optional, seconds), so the smoke run stays fast and Sequelize on
# SQLite is then reported as not installed. SQLAlchemy: Debian's packages
# (scripts/install-deps.sh --all). Neither failure is fatal.

declare -A peer_off=()   # client -> reason it can't run at all

peer_clients=()
for p in $PEERS; do
  case $p in
    sequelize) peer_clients+=(sequelize) ;;
    sqlalchemy) peer_clients+=(sqlalchemy_orm sqlalchemy_core) ;;
    sqlalchemy_orm | sqlalchemy_core) peer_clients+=("$p") ;;
    *) log "unknown peer $p (known: sequelize sqlalchemy sqlalchemy_orm sqlalchemy_core)"; exit 2 ;;
  esac
done

setup_sequelize() {
  local dir="$here/peers/sequelize" want have mode
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    peer_off[sequelize]="node and npm not found"
    return
  fi
  want=$(sha256sum "$dir/package-lock.json" | cut -c1-16)
  have=$(cat "$dir/node_modules/.sqorm-installed" 2>/dev/null)
  mode=${PEER_INSTALL:-}
  if [[ -z $mode ]]; then
    mode=lite
    ((full)) && mode=full
  fi
  [[ $mode == full || $mode == lite ]] || { log "PEER_INSTALL must be full or lite"; exit 2; }
  if [[ $have == "$want full" ]] || [[ $mode == lite && $have == "$want lite" ]]; then
    return
  fi
  local args=(ci --no-audit --no-fund)
  [[ $mode == lite ]] && args+=(--omit=optional)
  log "installing Sequelize: npm ${args[*]} in bench/peers/sequelize ($mode)"
  if (cd "$dir" && timeout 1200 npm "${args[@]}") >>"$errlog" 2>&1; then
    echo "$want $mode" >"$dir/node_modules/.sqorm-installed"
  else
    peer_off[sequelize]="npm ci failed (see $errlog)"
  fi
}

for c in "${peer_clients[@]}"; do
  [[ $c == sequelize ]] && setup_sequelize
done
for c in "${!peer_off[@]}"; do
  log "peer $c unavailable: ${peer_off[$c]}"
done

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
    lua_floor) echo "lua5.4 $here/lua_floor_bench.lua" ;;
    luasql) echo "lua5.4 $here/luasql_bench.lua" ;;
    sqorm) echo "lua5.4 $here/sqorm_bench.lua" ;;
    sequelize) echo "node --expose-gc $here/peers/sequelize/bench.js" ;;
    sqlalchemy_orm) echo "$PY $here/peers/sqlalchemy/bench.py orm" ;;
    sqlalchemy_core) echo "$PY $here/peers/sqlalchemy/bench.py core" ;;
  esac
}

is_peer() { [[ $1 == sequelize || $1 == sqlalchemy_* ]]; }

clients=()
for c in $CLIENTS "${peer_clients[@]}"; do
  if [[ $c == sqorm && ! -f $here/sqorm_bench.lua ]]; then
    log "bench/sqorm_bench.lua not found: skipping the sqorm client"
    continue
  fi
  [[ -n $(client_cmd "$c") ]] || { log "unknown client $c"; exit 1; }
  [[ " ${clients[*]} " == *" $c "* ]] || clients+=("$c")
done

{
  echo "# sqorm benchmark $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
  echo "# SCALE=$SCALE REPEAT=$REPEAT cpu=$BENCH_CPU nproc=$(nproc) $(uname -sr)"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  [[ -n $ROWS ]] && echo "# sweep: ROWS=${ROWS// /,}"
  v=$(node --version 2>/dev/null) && echo "# peers: node $v, sequelize $(node -p \
    "require('$here/peers/sequelize/node_modules/sequelize/package.json').version" 2>/dev/null || echo -)"
  v=$("$PY" -c 'import sqlalchemy; print(sqlalchemy.__version__)' 2>/dev/null) &&
    echo "# peers: $("$PY" --version 2>&1), sqlalchemy $v"
  echo "# RESULT <workload> <db> <client> <ops> <seconds> <ops_per_sec> <peak_rss_kib>${ROWS:+ <rows>}"
} >"$out"

failures=0
peer_failures=0
declare -A skip=()   # "client db" -> reason (a peer that can't run there)
tmp=$(mktemp)
tmperr=$(mktemp)

# run_one CLIENT DB WORKLOAD [ROWS]: one process; RESULT lines to $out.
run_one() {
  local c=$1 db=$2 w=$3 rows=${4:-} rc=0 why
  if [[ -n ${peer_off[$c]:-} || -n ${skip[$c $db]:-} ]]; then
    return
  fi
  local argv
  if [[ $w == include ]]; then
    # Its own programs: sqorm's include through bench/include_bench.lua,
    # the raw C join and the Lua-table floor through include_raw. No other
    # client has this workload.
    case $c in
      sqorm) argv=(env WAYS=include lua5.4 "$here/include_bench.lua" "$db" "$INCLUDE_SECONDS") ;;
      raw_c) argv=("$build/include_raw" "$db" "$INCLUDE_SECONDS" raw) ;;
      lua_floor) argv=("$build/include_raw" "$db" "$INCLUDE_SECONDS" floor) ;;
      *) return ;;
    esac
  else
    # shellcheck disable=SC2207  # the command is words by design
    argv=($(client_cmd "$c") "$db" "$w")
  fi
  BENCH_ROWS=$rows timeout "$BENCH_TIMEOUT" "${pin[@]}" "${argv[@]}" \
    >"$tmp" 2>"$tmperr" || rc=$?
  cat "$tmperr" >>"$errlog"
  # Only lines in the RESULT format (include_bench and include_raw also
  # print their own calls/s lines, which start with RESULT too).
  local std='$1 == "RESULT" && $5 ~ /^[0-9]+$/ && $6 ~ /^[0-9.]+$/'
  if ((rc == 0)) && awk "$std { found = 1 } END { exit !found }" "$tmp"; then
    awk "$std" "$tmp" | sed "s/\$/${rows:+ $rows}/" | tee -a "$out"
    return
  fi
  if ((rc == 3)) && is_peer "$c"; then
    # The peer says it can't run here (a package is missing): once per db.
    why=$(grep -m1 'unavailable:' "$tmperr" | sed 's/.*unavailable: //')
    skip[$c $db]=${why:-not installed}
    log "peer $c can't run on $db: ${skip[$c $db]}"
    notes+=("# UNAVAILABLE $c $db: ${skip[$c $db]}")
    return
  fi
  if ((rc == 0)); then
    log "FAILED: $c $db $w printed no RESULT line"
  elif ((rc == 124)); then
    log "FAILED: $c $db $w timed out after ${BENCH_TIMEOUT}s"
  else
    log "FAILED: $c $db $w (exit $rc); full output in $errlog"
    grep -v '^#' "$tmperr" | tail -n 3 | sed 's/^/    /' >&2
  fi
  echo "# FAILED $w $db $c${rows:+ rows=$rows}" >>"$out"
  if is_peer "$c"; then
    peer_failures=$((peer_failures + 1))
  else
    failures=$((failures + 1))
  fi
}

# Peers in one process per database (PEER_PROCESS=all) only when every
# workload is selected, since a client runs one workload or all of them.
peers_all=0
if [[ $PEER_PROCESS == all && $(echo ${WORKLOADS/include/}) == \
      "insert_single bulk_insert pk_lookup scan update txn_transfer stream" ]]; then
  peers_all=1
fi

sizes=("")
[[ -n $ROWS ]] && read -r -a sizes <<<"$ROWS"
for rows in "${sizes[@]}"; do
  for db in $DBS; do
    if ((peers_all)); then
      for ((rep = 1; rep <= REPEAT; rep++)); do
        for c in "${clients[@]}"; do
          is_peer "$c" && run_one "$c" "$db" all "$rows"
        done
      done
    fi
    for w in $WORKLOADS; do
      # Repeats next to each other, clients interleaved within a repeat, so
      # a slow minute on the shared machine hits every client alike.
      for ((rep = 1; rep <= REPEAT; rep++)); do
        for c in "${clients[@]}"; do
          ((peers_all)) && is_peer "$c" && continue
          run_one "$c" "$db" "$w" "$rows"
        done
      done
    done
  done
done
rm -f "$tmp" "$tmperr"
for c in "${!peer_off[@]}"; do
  notes+=("# UNAVAILABLE $c all: ${peer_off[$c]}")
done
((${#notes[@]})) && printf '%s\n' "${notes[@]}" >>"$out"

# ---------------------------------------------------------------------------
# Table, markdown and chart (the report takes the median of the repeats).

if [[ -n $ROWS ]]; then
  report=(lua5.4 "$here/report.lua" --sweep "$out" "$results/$stem")
else
  report=(lua5.4 "$here/report.lua" "$out" "$results/$stem")
fi
if ! "${report[@]}"; then
  log "report failed"
  failures=$((failures + 1))
fi

if ((peer_failures)); then
  log "$peer_failures peer run(s) failed (not fatal unless PEERS_STRICT=1)"
  ((PEERS_STRICT)) && failures=$((failures + peer_failures))
fi
if ((PEERS_STRICT && (${#peer_off[@]} || ${#skip[@]}))); then
  log "PEERS_STRICT=1: a peer was unavailable"
  failures=$((failures + 1))
fi
if ((failures)); then
  log "$failures client run(s) failed"
  exit 1
fi
