#!/usr/bin/env bash
#
# with-test-servers.sh -- run a command against throwaway database servers.
#
# Usage: scripts/with-test-servers.sh CMD [ARGS...]
#
# Starts the servers with scripts/test-servers.sh (in a fresh directory of
# its own), exports the variables of its env.sh (SQORM_TEST_MYSQL_URL,
# SQORM_TEST_PG_URL, ...), runs CMD, and stops the servers and removes the
# directory afterwards, whether CMD passes, fails or the wrapper is
# interrupted. Exits with CMD's status (1 if the servers did not start,
# 128+N when killed by signal N).
#
# SQORM_TEST_SERVERS picks the families (default all: the MariaDB and
# PostgreSQL pairs, PgBouncer, the replicas, the Galera cluster); see
# scripts/test-servers.sh.
#
# Example:
#   scripts/with-test-servers.sh make test
#   SQORM_TEST_SERVERS=postgres scripts/with-test-servers.sh busted spec/pg

# Functions below run from traps; shellcheck cannot see those calls.
# shellcheck disable=SC2317

set -euo pipefail

readonly PROG="with-test-servers"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SERVERS="$here/test-servers.sh"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }

if (($# == 0)); then
  sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi

# A directory of our own, so that cleanup always knows what to remove (an
# inherited SQORM_TEST_DIR from an outer run is deliberately not reused).
SQORM_TEST_DIR=$(mktemp -d /tmp/sqorm-test.XXXXXXXXXX)
export SQORM_TEST_DIR

# alive PID: the process exists and is not a zombie (an exited child stays
# a zombie until waited for, and kill -0 would still succeed on it).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# PID of the child currently running (test-servers.sh start, then CMD), and
# how many seconds it gets to exit after SIGTERM.
child=""
child_grace=10

# cleanup: on any exit, stop the servers and remove the directory.
# Further signals are ignored meanwhile, so that a second Ctrl-C cannot
# leave servers behind; stopping is bounded to about 30s.
cleanup() {
  local rc=$?
  trap '' INT TERM HUP
  trap - EXIT
  bash "$SERVERS" stop || log "warning: stopping the test servers failed"
  exit "$rc"
}

# on_signal NUMBER: pass the signal on to the child as SIGTERM, give it time
# to finish (then SIGKILL), and exit 128+NUMBER, which runs cleanup through
# the EXIT trap. An interrupted `test-servers.sh start` cleans up after
# itself within about 30s (60s allowed: ten servers on a loaded machine); CMD gets 10s.
on_signal() {
  trap '' INT TERM HUP
  log "interrupted (signal $1); cleaning up"
  if [[ -n $child ]]; then
    kill -TERM "$child" 2>/dev/null || true
    local i
    for ((i = 0; i < child_grace * 10; i++)); do
      alive "$child" || break
      sleep 0.1
    done
    kill -KILL "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  exit $((128 + $1))
}

trap cleanup EXIT
trap 'on_signal 2' INT
trap 'on_signal 15' TERM
trap 'on_signal 1' HUP

# Children run in the background so that a signal to this script is
# handled at once rather than after the child finishes. Bash starts
# background children with SIGINT/SIGQUIT ignored; env --default-signal
# (coreutils >= 8.31) restores them so that Ctrl-C still reaches CMD.
default_signals=()
if env --default-signal=INT,QUIT true 2>/dev/null; then
  default_signals=(env "--default-signal=INT,QUIT")
fi

# run_child CMD...: run CMD in the background (stdin passed on explicitly,
# background jobs would get /dev/null otherwise) and return its status.
run_child() {
  local rc=0
  "${default_signals[@]}" "$@" <&0 &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

# Start the servers. Their progress goes to stderr; stdout (the directory
# name) is not needed here.
child_grace=60
if ! run_child bash "$SERVERS" start </dev/null >/dev/null; then
  log "error: the test database servers failed to start (see messages above)"
  exit 1
fi
if [[ ! -f $SQORM_TEST_DIR/env.sh ]]; then
  log "error: $SQORM_TEST_DIR/env.sh is missing after start"
  exit 1
fi

# Export the connection settings (env.sh consists of export lines).
# shellcheck source=/dev/null
source "$SQORM_TEST_DIR/env.sh"

rc=0
child_grace=10
run_child "$@" || rc=$?
exit "$rc"
