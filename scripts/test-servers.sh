#!/usr/bin/env bash
#
# test-servers.sh -- throwaway database servers for sqorm's tests.
#
# Usage:
#   scripts/test-servers.sh start                  start servers, print dir
#   scripts/test-servers.sh stop                   stop servers, remove dir
#   scripts/test-servers.sh status                 show what is up (+ memory)
#   scripts/test-servers.sh restart INSTANCE       stop (cleanly) and start again
#   scripts/test-servers.sh kill INSTANCE          SIGKILL the server (a crash)
#   scripts/test-servers.sh replication pause|resume|sync|status mysql|postgres
#
# All state (certificates, data directories, sockets, logs, env.sh) lives in
# one directory, $SQORM_TEST_DIR. `start` creates it with mktemp under /tmp
# when SQORM_TEST_DIR is unset; every other subcommand requires it. Several
# runs can coexist: each has its own directory and its own free ports.
#
# Instances (all on 127.0.0.1, TLS ones with a certificate from a throwaway
# CA, SAN IP:127.0.0.1), grouped in families that SQORM_TEST_SERVERS selects:
#   mysql             mysql (MariaDB, TLS), mysql-plain (no TLS)
#   postgres          postgres (PostgreSQL 15, TLS), postgres-plain (no TLS)
#   pgbouncer         PgBouncer (Debian's 1.18) in front of `postgres`:
#                     pool_mode = transaction, TLS on both sides, SCRAM auth
#                     from an auth_file. 1.18 has no max_prepared_statements
#                     (that came in 1.21), so a named prepared statement does
#                     not survive its transaction. server_reset_query_always
#                     (DISCARD ALL after every transaction) makes that, and
#                     the loss of untracked session SETs (extra_float_digits,
#                     bytea_output, search_path, ...), happen every time
#                     rather than only when a transaction lands on another
#                     server connection; PgBouncer itself carries TimeZone,
#                     DateStyle, client_encoding, application_name and
#                     standard_conforming_strings over.
#                     No ignore_startup_parameters: a client sending e.g.
#                     extra_float_digits in the startup packet is refused.
#   mysql-replica     MariaDB replica of `mysql` (binlog + GTID, replication
#                     over TLS). read_only = ON, and the test user lacks READ
#                     ONLY ADMIN there, so a write through it fails with error
#                     1290; the admin user below can still write.
#   postgres-standby  streaming standby of `postgres` (pg_basebackup -R with a
#                     replication slot), hot_standby: writes fail with SQLSTATE
#                     25006. The test user is a superuser (pg_wal_replay_*).
#   galera            galera1, galera2, galera3: a MariaDB Galera cluster
#                     (galera-4) with TLS for clients, rsync state transfer,
#                     wsrep_sync_wait = 1 (reads see every write committed
#                     anywhere before them). Galera's default timeouts: after
#                     a node is killed the others stall commits for ~5s
#                     (evs.suspect_timeout) before going on without it.
#   replicas          = mysql-replica,postgres-standby;  all = every family.
# A family needing another (pgbouncer, postgres-standby: postgres;
# mysql-replica: mysql) brings it along.
#
# `start` brings the instances up in parallel, then writes
# $SQORM_TEST_DIR/env.sh (export lines for the tests) and prints the
# directory path as the last line on stdout. Everything else goes to stderr.
#
# restart/kill take an instance name (mysql, mysql-plain, postgres,
# postgres-plain, pgbouncer, mysql-replica, postgres-standby, galera1..3).
# `kill` is SIGKILL of the server process (PostgreSQL: of the postmaster);
# `restart` stops a running server cleanly (or cleans up after a killed one)
# and starts it again on the same port with the same data: a Galera node
# recovers its position and rejoins (IST, SST when needed) and `restart`
# returns once it is Synced; a replica resumes replicating by itself.
# `replication pause mysql` stops the replica's SQL thread (changes still
# arrive, none is applied); `replication pause postgres` pauses WAL replay
# on the standby; `resume` undoes it; `sync` waits until the replica has
# applied everything the primary had committed; `status` prints
# "running" or "paused" (exit 0) or the problem (exit 1).
#
# env.sh exports (only for the families started):
#   SQORM_TEST_DIR, SQORM_TEST_SERVERS (families started, comma-separated),
#   SQORM_TEST_SCRIPT (this script, for restart/kill/replication from tests),
#   SQORM_TEST_CA, SQORM_TEST_WRONG_CA, SQORM_TEST_CLIENT_CERT/_KEY
#   mysql:     SQORM_TEST_MYSQL_{HOST,PORT,USER,PASSWORD,DB,PLAIN_PORT,URL}
#   postgres:  SQORM_TEST_PG_{HOST,PORT,USER,PASSWORD,DB,PLAIN_PORT,URL}
#   pgbouncer: SQORM_TEST_PGBOUNCER_PORT, SQORM_TEST_PGBOUNCER_URL (same user,
#              password and database as PostgreSQL; the user is also
#              admin_users, so `SHOW POOLS` works in the `pgbouncer` db)
#   mysql-replica:    SQORM_TEST_MYSQL_REPLICA_PORT, SQORM_TEST_MYSQL_REPLICA_URL,
#              SQORM_TEST_MYSQL_ADMIN_USER, SQORM_TEST_MYSQL_ADMIN_PASSWORD
#              (all privileges on primary and replica, incl. READ ONLY ADMIN)
#   postgres-standby: SQORM_TEST_PG_STANDBY_PORT, SQORM_TEST_PG_STANDBY_URL
#   galera:    SQORM_TEST_GALERA_PORTS ("p1,p2,p3"), SQORM_TEST_GALERA_USER,
#              SQORM_TEST_GALERA_PASSWORD, SQORM_TEST_GALERA_DB,
#              SQORM_TEST_GALERA_URL (mysql://u:p@127.0.0.1:p1,127.0.0.1:p2,
#              127.0.0.1:p3/db, the multi-host form)
#
# Environment:
#   SQORM_TEST_DIR            state directory (see above)
#   SQORM_TEST_SERVERS        families to start, default "all"; e.g.
#                             "mysql,postgres" for the quick pair only
#   SQORM_TEST_START_TIMEOUT  seconds to wait for each server (default 60)
#   SQORM_TEST_GALERA_TIMEOUT seconds for a Galera node to be Synced (3 x that)
#   SQORM_TEST_STOP_TIMEOUT   seconds before SIGKILL on stop (default 10)
#   SQORM_TEST_KEEP=1         `stop` leaves the directory (logs) in place
#   SQORM_PG_BIN              PostgreSQL bin dir (/usr/lib/postgresql/15/bin)
#   SQORM_GALERA_PROVIDER     wsrep provider (/usr/lib/galera/libgalera_smm.so)
#
# Works as root (MariaDB and Galera run as the `mysql` OS user, PostgreSQL
# and PgBouncer as `postgres`) and as an ordinary user (servers run as that
# user). Needs mariadb-server, postgresql-15, pgbouncer, galera-4, rsync,
# iproute2 (ss) and openssl (scripts/install-deps.sh --all); no systemd or
# service commands are used.

set -euo pipefail

# ---------------------------------------------------------------------------
# Constants and settings
# ---------------------------------------------------------------------------

readonly PROG="test-servers"
readonly HOST="127.0.0.1"
readonly DB_USER="sqorm"
readonly DB_PASSWORD="sqorm_pw"
readonly DB_NAME="sqorm_test"

# File that marks a directory as ours; `stop` refuses to rm -rf without it.
readonly MARKER=".sqorm-test-servers"

# Replication accounts (MariaDB binlog replication, PostgreSQL streaming)
# and the MariaDB admin account of the replica pair.
readonly REPL_USER="sqorm_repl"
readonly REPL_PASSWORD="sqorm_repl_pw"
readonly ADMIN_USER="sqorm_admin"
readonly ADMIN_PASSWORD="sqorm_admin_pw"
readonly PG_SLOT="sqorm_standby"

# Instance names double as subdirectory names of $SQORM_TEST_DIR.
readonly ALL_INSTANCES=(mysql mysql-plain postgres postgres-plain pgbouncer
  mysql-replica postgres-standby galera1 galera2 galera3)
readonly GALERA_NODES=(galera1 galera2 galera3)
# Families in SQORM_TEST_SERVERS, in start order.
readonly ALL_FAMILIES=(mysql postgres pgbouncer mysql-replica postgres-standby galera)
readonly DEFAULT_SERVERS="all"

PG_BIN="${SQORM_PG_BIN:-/usr/lib/postgresql/15/bin}"
GALERA_PROVIDER="${SQORM_GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}"
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
START_TIMEOUT="${SQORM_TEST_START_TIMEOUT:-60}"
GALERA_TIMEOUT="${SQORM_TEST_GALERA_TIMEOUT:-$((3 * START_TIMEOUT))}"
STOP_TIMEOUT="${SQORM_TEST_STOP_TIMEOUT:-10}"

# Our admin connections must not be steered by the caller's client settings
# (PGSSLMODE, PGHOST, MYSQL_PWD, MYSQL_UNIX_PORT, ...). This only affects
# this script's own process, not the tests.
while read -r var; do
  unset "$var"
done < <(compgen -e | grep -E '^(PG|MYSQL_)' || true)

# Nor by sanitizer runtimes preloaded into the caller (the ASan test run
# calls `restart`, `replication ...` from specs): psql deadlocks with
# libasan preloaded, and restarted servers must not carry it.
unset LD_PRELOAD

# Locale-independent tool output and no warnings about missing locales.
export LC_ALL=C

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# as_user USER CMD...: run CMD as the service account USER when we are root;
# as an ordinary user, servers simply run as ourselves.
as_user() {
  local user=$1
  shift
  if is_root; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

# own USER PATH...: give PATHs to the service account (root only).
own() {
  local user=$1
  shift
  if is_root; then
    chown -R "$user:" "$@"
  fi
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# pid_mentions PID STRING: the process's command line contains STRING. Used
# to make sure a PID read from a file still belongs to one of our servers.
# (Builtins only, here and in pid_alive and procs_in: forks are slow on a
# loaded machine, and these run for every process on it.)
pid_mentions() {
  local args=()
  { mapfile -d '' -t args <"/proc/$1/cmdline"; } 2>/dev/null || return 1
  [[ " ${args[*]} " == *"$2"* ]]
}

# wait_gone SECONDS PID...: wait until none of the PIDs is alive.
wait_gone() {
  local deadline=$((SECONDS + $1)) pid alive
  shift
  while :; do
    alive=0
    for pid in "$@"; do
      if pid_alive "$pid"; then alive=1; fi
    done
    ((alive)) || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# terminate PID...: SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
terminate() {
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  wait_gone "$STOP_TIMEOUT" "$@" && return 0
  log "pid(s) $* ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
  kill -KILL "$@" 2>/dev/null || true
  wait_gone 5 "$@"
}

# group_alive PGID: some live (non-zombie) process is in process group PGID.
group_alive() {
  local f line rest state pgrp
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    rest=${line##*) }
    read -r state _ pgrp _ <<<"$rest"
    if [[ $pgrp == "$1" && $state != Z ]]; then return 0; fi
  done
  return 1
}

# kill_groups PGID...: SIGKILL whole process groups (a setup job and what it
# runs in the foreground: initdb, mariadb-install-db, pg_ctl, psql ...) and
# wait for them to empty. SIGKILL because bash defers SIGTERM while it waits
# for a foreground command; the half-initialised data goes away anyway, and
# servers already launched (own sessions) are stopped separately.
kill_groups() {
  local g any deadline=$((SECONDS + 5))
  for g in "$@"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  while ((SECONDS < deadline)); do
    any=0
    for g in "$@"; do
      if group_alive "$g"; then any=1; fi
    done
    ((any)) || return 0
    sleep 0.1
  done
}

# procs_in DIR: server-side processes belonging to DIR: mariadbd, postgres,
# pg_ctl, initdb, pg_basebackup, pgbouncer, rsync (Galera state transfer),
# runuser (by process name), mariadb-install-db or a wsrep_sst_* script (by
# command line) whose command line mentions DIR, or whose working directory is DIR or
# inside it (up to 3 levels down; PostgreSQL's children keep the data
# directory as cwd but not in their command line).
procs_in() {
  local f p comm rel dir=${1%/} mine
  for f in /proc/[0-9]*/comm; do
    { read -r comm <"$f"; } 2>/dev/null || continue
    p=${f#/proc/}
    p=${p%/comm}
    case $comm in
      mariadbd | mysqld | postgres | pg_ctl | initdb | runuser) ;;
      pgbouncer | pg_basebackup | rsync | stunnel | stunnel4 | socat) ;;
      mariadb-install | wsrep_sst_*) ;;
      # The SST scripts and mariadb-install-db, run by a shell.
      sh | bash | dash)
        pid_mentions "$p" wsrep_sst_ || pid_mentions "$p" mariadb-install-db || continue
        ;;
      *) continue ;;
    esac
    pid_alive "$p" || continue
    mine=0
    for rel in "" /.. /../.. /../../..; do
      if [[ /proc/$p/cwd$rel -ef $dir ]]; then mine=1; break; fi
    done
    if ((mine)) || pid_mentions "$p" "$dir/"; then
      echo "$p"
    fi
  done
}

# stray_pids: what is left of this run after the servers were stopped, e.g.
# after an interrupted start; `stop` sweeps these up.
stray_pids() {
  procs_in "$SQORM_TEST_DIR"
}

# log_since FILE OFFSET: the part of FILE written after byte OFFSET.
log_since() {
  tail -c "+$(($2 + 1))" "$1" 2>/dev/null || true
}

file_size() {
  stat -c %s "$1" 2>/dev/null || echo 0
}

# show_logs INSTANCE FILE...: print the tail of each log to stderr.
show_logs() {
  local inst=$1 f
  shift
  for f in "$@"; do
    [[ -s $f ]] || continue
    log "---- $inst: last lines of $f ----"
    tail -n 25 "$f" | sed 's/^/    /' >&2
  done
}

# pick_ports N: print N distinct currently-free TCP ports on 127.0.0.1.
# A port can still be taken by someone else before our server binds it;
# the start functions detect "Address already in use" and retry.
pick_ports() {
  local n=$1
  if command -v python3 >/dev/null 2>&1; then
    # Let the kernel choose: bind port 0, holding all sockets until every
    # port is known so that the N ports are distinct.
    python3 - "$n" <<'EOF' && return 0
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
EOF
  fi
  # Fallback without python3: random ports below the ephemeral range
  # (32768+), keeping those where a connect attempt is refused.
  local -A seen=()
  local port count=0
  while ((count < n)); do
    port=$((20000 + RANDOM % 12000))
    [[ -z ${seen[$port]:-} ]] || continue
    if ! (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
      seen[$port]=1
      echo "$port"
      count=$((count + 1))
    fi
  done
}

# pick_fixed_ports N: print N distinct TCP ports on 127.0.0.1 that are free
# now, chosen at random below the kernel's ephemeral range (so that no
# outgoing connection can take one meanwhile). For servers that cannot
# easily move to another port once picked (Galera nodes name each other,
# dependants are configured with their primary's port).
pick_fixed_ports() {
  local n=$1 lo=32768
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
  ((lo > 12000)) || lo=32768
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" "$lo" <<'EOF' && return 0
import random, socket, sys
n, hi = int(sys.argv[1]), int(sys.argv[2])
socks, ports = [], []
for port in random.sample(range(10000, hi), min(hi - 10000, 2000)):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    socks.append(s)
    ports.append(port)
    if len(ports) == n:
        break
for s in socks:
    s.close()
if len(ports) < n:
    sys.exit(1)
print("\n".join(map(str, ports)))
EOF
  fi
  local -A seen=()
  local port count=0
  while ((count < n)); do
    port=$((10000 + RANDOM % (lo - 10000)))
    [[ -z ${seen[$port]:-} ]] || continue
    if ! (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
      seen[$port]=1
      echo "$port"
      count=$((count + 1))
    fi
  done
}

# require_dir: SQORM_TEST_DIR must be set (all subcommands but start).
require_dir() {
  [[ -n ${SQORM_TEST_DIR:-} ]] ||
    die "SQORM_TEST_DIR is not set (source the env.sh printed by 'start')"
  [[ $SQORM_TEST_DIR == /* ]] || die "SQORM_TEST_DIR must be an absolute path"
}

# family_of INSTANCE: the server software: mysql (MariaDB, also the replica
# and the Galera nodes), postgres (also the standby) or pgbouncer.
family_of() {
  case $1 in
    mysql* | galera*) echo mysql ;;
    postgres*) echo postgres ;;
    pgbouncer) echo pgbouncer ;;
  esac
}

# uses_tls INSTANCE: 1 for the TLS variants, 0 for the -plain ones.
uses_tls() {
  [[ $1 == *-plain ]] && echo 0 || echo 1
}

# is_galera INSTANCE
is_galera() { [[ $1 == galera[123] ]]; }

# state_mark UNIT ok|failed / state_wait UNIT WHO: start jobs tell each
# other that a unit is up (or gave up), so that a dependant (a replica, the
# pooler) can wait for its primary while everything else starts in parallel.
state_mark() {
  mkdir -p "$SQORM_TEST_DIR/.state"
  : >"$SQORM_TEST_DIR/.state/$1.$2"
}

state_wait() {
  local unit=$1 who=$2 deadline=$((SECONDS + 3 * START_TIMEOUT))
  while :; do
    [[ -e $SQORM_TEST_DIR/.state/$unit.ok ]] && return 0
    if [[ -e $SQORM_TEST_DIR/.state/$unit.failed ]]; then
      log "$who: $unit did not start, giving up"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$who: gave up waiting for $unit"
      return 1
    fi
    sleep 0.2
  done
}

# find_tools FAMILY...: locate the binaries the given families need, with a
# helpful message if one is missing.
find_tools() {
  local fam want_mysql=0 want_pg=0 want_bouncer=0 want_galera=0
  for fam in "$@"; do
    case $fam in
      mysql | mysql-replica) want_mysql=1 ;;
      galera) want_mysql=1 want_galera=1 ;;
      postgres | postgres-standby) want_pg=1 ;;
      pgbouncer) want_pg=1 want_bouncer=1 ;;
    esac
  done
  command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
  if ((want_mysql)); then
    MARIADBD=$(command -v mariadbd || true)
    [[ -n $MARIADBD ]] || MARIADBD=/usr/sbin/mariadbd
    [[ -x $MARIADBD ]] ||
      die "mariadbd not found (apt-get install -y mariadb-server)"
    local t
    for t in mariadb mariadb-admin mariadb-install-db; do
      command -v "$t" >/dev/null || die "$t not found (apt-get install -y mariadb-server)"
    done
    if is_root; then
      id mysql >/dev/null 2>&1 || die "OS user 'mysql' missing (apt-get install -y mariadb-server)"
    fi
  fi
  if ((want_galera)); then
    [[ -f $GALERA_PROVIDER ]] ||
      die "Galera provider $GALERA_PROVIDER not found (apt-get install -y galera-4)"
    command -v wsrep_sst_rsync >/dev/null ||
      die "wsrep_sst_rsync not found (apt-get install -y mariadb-server)"
    command -v rsync >/dev/null || die "rsync not found (apt-get install -y rsync)"
    command -v ss >/dev/null || command -v lsof >/dev/null ||
      die "neither ss nor lsof found (apt-get install -y iproute2)"
  fi
  if ((want_pg)); then
    [[ -x $PG_BIN/postgres && -x $PG_BIN/initdb ]] ||
      die "PostgreSQL 15 not found in $PG_BIN (apt-get install -y postgresql-15)"
    if is_root; then
      id postgres >/dev/null 2>&1 || die "OS user 'postgres' missing (apt-get install -y postgresql-15)"
    fi
  fi
  if ((want_bouncer)); then
    PGBOUNCER=$(command -v pgbouncer || true)
    [[ -n $PGBOUNCER ]] || PGBOUNCER=/usr/sbin/pgbouncer
    [[ -x $PGBOUNCER ]] || die "pgbouncer not found (apt-get install -y pgbouncer)"
  fi
}

# ---------------------------------------------------------------------------
# TLS material
# ---------------------------------------------------------------------------

# make_tls: throwaway CA, server certificate (CN and SAN = IP 127.0.0.1 only,
# so that connecting to "localhost" fails host-name verification), an
# unrelated "wrong" CA and a client certificate (CN=sqorm) signed by the CA.
make_tls() {
  local d=$SQORM_TEST_DIR work="$SQORM_TEST_DIR/tls-work"
  mkdir -p "$work"

  # Our own minimal OpenSSL config, so that the system openssl.cnf cannot
  # add or conflict with extensions.
  cat >"$work/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF

  local ssl=(openssl)
  local common=(-sha256 -days 2)
  local req=(req -config "$work/openssl.cnf")

  # Private keys are created 0600 (umask in the subshells below).
  (
    umask 077
    # The two self-signed CAs (generated in parallel).
    "${ssl[@]}" "${req[@]}" -x509 "${common[@]}" -newkey rsa:2048 -nodes \
      -subj "/CN=sqorm test CA" -extensions v3_ca \
      -keyout "$d/ca.key" -out "$d/ca.pem" 2>"$work/ca.log" &
    "${ssl[@]}" "${req[@]}" -x509 "${common[@]}" -newkey rsa:2048 -nodes \
      -subj "/CN=sqorm wrong CA" -extensions v3_ca \
      -keyout "$d/wrong-ca.key" -out "$d/wrong-ca.pem" 2>"$work/wrong-ca.log" &
    # Keys and requests for the server and the client.
    "${ssl[@]}" "${req[@]}" -new -newkey rsa:2048 -nodes \
      -subj "/CN=127.0.0.1" \
      -keyout "$d/server.key" -out "$work/server.csr" 2>"$work/server.log" &
    "${ssl[@]}" "${req[@]}" -new -newkey rsa:2048 -nodes \
      -subj "/CN=$DB_USER" \
      -keyout "$d/client.key" -out "$work/client.csr" 2>"$work/client.log" &
    local pid rc=0
    for pid in $(jobs -p); do
      wait "$pid" || rc=1
    done
    exit "$rc"
  ) || { cat "$work"/*.log >&2; die "openssl failed to create keys"; }

  # Sign the server and client certificates with the test CA. Random serials
  # avoid a ca.srl file.
  local kind
  for kind in server client; do
    "${ssl[@]}" x509 -req "${common[@]}" -in "$work/$kind.csr" \
      -CA "$d/ca.pem" -CAkey "$d/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" \
      -extfile "$work/openssl.cnf" -extensions "v3_$kind" \
      -out "$d/$kind.pem" 2>>"$work/$kind.log" ||
      { cat "$work/$kind.log" >&2; die "openssl failed to sign the $kind certificate"; }
  done

  chmod 644 "$d"/*.pem
  rm -rf "$work"
}

# install_tls INSTANCE USER: private copies of the server certificate, key
# and CA for one server, owned by its service account (PostgreSQL refuses a
# key that is not 0600 and owned by the server user).
install_tls() {
  local inst_dir="$SQORM_TEST_DIR/$1" user=$2
  cp "$SQORM_TEST_DIR/ca.pem" "$SQORM_TEST_DIR/server.pem" "$inst_dir/"
  cp "$SQORM_TEST_DIR/server.key" "$inst_dir/server.key"
  chmod 644 "$inst_dir/ca.pem" "$inst_dir/server.pem"
  chmod 600 "$inst_dir/server.key"
  own "$user" "$inst_dir/ca.pem" "$inst_dir/server.pem" "$inst_dir/server.key"
}

# ---------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------
# Layout of $SQORM_TEST_DIR/<mysql|mysql-plain>/ (owned by OS user mysql):
#   my.cnf  data/  tmp/  mysqld.sock  mysqld.pid  launcher.pid  port
#   server.log (error log)  mariadbd.out (stdout/stderr)  server.{pem,key} ca.pem

mysql_write_cnf() {
  local inst=$1 port=$2 tls=$3 dir="$SQORM_TEST_DIR/$1"
  {
    echo "# Generated by scripts/test-servers.sh for instance '$inst'."
    echo "[mysqld]"
    if is_root; then echo "user = mysql"; fi
    echo "datadir = $dir/data"
    echo "tmpdir = $dir/tmp"
    echo "socket = $dir/mysqld.sock"
    echo "pid-file = $dir/mysqld.pid"
    echo "log-error = $dir/server.log"
    # TCP on loopback only, no DNS.
    echo "port = $port"
    echo "bind-address = $HOST"
    echo "skip-name-resolve"
    # Small and fast: the data is thrown away.
    echo "innodb_buffer_pool_size = 64M"
    echo "innodb_log_file_size = 32M"
    echo "innodb_flush_log_at_trx_commit = 2"
    echo "innodb_doublewrite = 0"
    echo "max_connections = 200"
    # The server gives up a login (greeting, TLS handshake, auth) after
    # connect_timeout (default 10 s) per read and closes with the client's
    # bytes unread: the client then fails with "TLS/SSL error: Connection
    # reset by peer" and the server logs "closed normally without
    # authentication". Seen 2 in ~8 ASan runs at load ~20 (async_spec,
    # 1000 coroutines); give a starved handshake time to finish.
    echo "connect_timeout = 60"
    echo "max_allowed_packet = 64M"
    echo "character-set-server = utf8mb4"
    echo "collation-server = utf8mb4_unicode_ci"
    if ((tls)); then
      echo "ssl-ca = $dir/ca.pem"
      echo "ssl-cert = $dir/server.pem"
      echo "ssl-key = $dir/server.key"
      echo "tls_version = TLSv1.2,TLSv1.3"
    else
      echo "skip-ssl"
    fi
    case $inst in
      mysql)
        # The primary of mysql-replica writes a binary log (GTIDs).
        if ((WANT_MYSQL_REPLICA)); then
          echo "server_id = 1"
          echo "log_bin = $dir/data/binlog"
          echo "log_bin_trust_function_creators = 1"
        fi
        ;;
      mysql-replica)
        echo "server_id = 2"
        echo "relay_log = $dir/data/relay"
        echo "read_only = ON"
        # Notice a primary that went away within seconds.
        echo "slave_net_timeout = 10"
        ;;
    esac
  } >"$dir/my.cnf"
  chmod 644 "$dir/my.cnf"
}

# mysql_ping INSTANCE: the server answers on its own socket. mariadb-admin
# ping succeeds even on "access denied", so no credentials are needed.
mysql_ping() {
  mariadb-admin --no-defaults --protocol=socket \
    --socket="$SQORM_TEST_DIR/$1/mysqld.sock" --user=root \
    --connect-timeout=2 ping >/dev/null 2>&1
}

# mysql_root_sql INSTANCE SQL: run SQL as root over the unix socket.
mysql_root_sql() {
  mariadb --no-defaults --protocol=socket \
    --socket="$SQORM_TEST_DIR/$1/mysqld.sock" --user=root \
    --batch --skip-column-names -e "$2"
}

# mysql_launch INSTANCE [MARIADBD-ARGS...]: start mariadbd and wait until it
# answers.
# Returns 0 when up, 3 when the port was already taken, 1 otherwise.
# (Called in an `if`/`||` context, so errexit is off: check explicitly.)
mysql_launch() {
  local inst=$1 dir="$SQORM_TEST_DIR/$1" offset pid deadline
  shift
  offset=$(file_size "$dir/server.log")
  rm -f "$dir/mysqld.pid"
  # setsid: own session, so a Ctrl-C in the terminal does not reach it and
  # it survives this script. All output goes to files: an inherited stdout
  # would keep a caller's $(...) waiting forever.
  (
    cd "$dir" || exit 1
    exec setsid "$MARIADBD" --defaults-file="$dir/my.cnf" "$@" \
      </dev/null >>"$dir/mariadbd.out" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$dir/launcher.pid"

  deadline=$((SECONDS + START_TIMEOUT))
  until mysql_ping "$inst"; do
    if ! pid_alive "$pid"; then
      if log_since "$dir/server.log" "$offset" | grep -q 'Address already in use'; then
        return 3
      fi
      log "$inst: mariadbd exited during start-up"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$inst: mariadbd did not accept connections within ${START_TIMEOUT}s"
      terminate "$pid"
      return 1
    fi
    sleep 0.2
  done
  return 0
}

# mysql_check INSTANCE: end-to-end check over TCP as the test user; for the
# TLS instance also verify the certificate chain and that TLS is in use.
mysql_check() {
  local inst=$1 dir="$SQORM_TEST_DIR/$1" port out
  port=$(<"$dir/port")
  if [[ $(uses_tls "$inst") == 1 ]]; then
    out=$(mariadb --no-defaults --protocol=tcp --host="$HOST" --port="$port" \
      --user="$DB_USER" --password="$DB_PASSWORD" --connect-timeout=5 \
      --ssl --ssl-ca="$SQORM_TEST_DIR/ca.pem" --ssl-verify-server-cert \
      --batch --skip-column-names \
      -e "SHOW SESSION STATUS LIKE 'Ssl_version'" "$DB_NAME" 2>&1) ||
      { log "$inst: TLS login as $DB_USER failed: $out"; return 1; }
    [[ $out == *TLSv1.[23]* ]] ||
      { log "$inst: connection is not using TLS ($out)"; return 1; }
  else
    out=$(mariadb --no-defaults --protocol=tcp --host="$HOST" --port="$port" \
      --user="$DB_USER" --password="$DB_PASSWORD" --connect-timeout=5 \
      --skip-ssl --batch --skip-column-names -e "SELECT @@have_ssl" \
      "$DB_NAME" 2>&1) ||
      { log "$inst: login as $DB_USER failed: $out"; return 1; }
    [[ $out == DISABLED ]] ||
      { log "$inst: expected have_ssl=DISABLED, got '$out'"; return 1; }
  fi
}

# mysql_test_user_sql [USER PASSWORD]: SQL creating the test database and
# the test user (or USER). The user may connect with or without TLS; ALL ON
# *.* includes PROCESS and CONNECTION ADMIN (processlist, KILL).
mysql_test_user_sql() {
  local user=${1:-$DB_USER} password=${2:-$DB_PASSWORD} host
  local sql="CREATE DATABASE IF NOT EXISTS $DB_NAME
    CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  for host in % 127.0.0.1 localhost; do
    sql+="CREATE USER IF NOT EXISTS '$user'@'$host' IDENTIFIED BY '$password';"
    sql+="GRANT ALL PRIVILEGES ON *.* TO '$user'@'$host' WITH GRANT OPTION;"
  done
  printf '%s\n' "$sql"
}

# mysql_install INSTANCE: system tables for a new data directory. root gets
# an empty password ("normal"), fine for a loopback-only throwaway server.
# No test db, no anonymous users.
mysql_install() {
  local inst=$1 dir="$SQORM_TEST_DIR/$1"
  local install_args=(--defaults-file="$dir/my.cnf"
    --auth-root-authentication-method=normal --skip-test-db
    --skip-name-resolve)
  if is_root; then install_args+=(--user=mysql); fi
  if ! mariadb-install-db "${install_args[@]}" >"$dir/install.log" 2>&1; then
    log "$inst: mariadb-install-db failed"
    show_logs "$inst" "$dir/install.log" "$dir/server.log"
    return 1
  fi
}

# mysql_setup INSTANCE PORT: create, initialise and start one MariaDB.
mysql_setup() {
  local inst=$1 port=$2 tls dir="$SQORM_TEST_DIR/$1" rc
  tls=$(uses_tls "$inst")
  mkdir -p "$dir/data" "$dir/tmp"
  : >"$dir/server.log"
  if ((tls)); then install_tls "$inst" mysql; fi
  own mysql "$dir"
  chmod 755 "$dir"
  echo "$port" >"$dir/port"
  mysql_write_cnf "$inst" "$port" "$tls"

  mysql_install "$inst" || return 1

  # Start, choosing another port if ours was taken in the meantime.
  for _ in 1 2 3 4 5; do
    rc=0
    mysql_launch "$inst" || rc=$?
    ((rc == 3)) || break
    port=$(pick_ports 1)
    log "$inst: port taken, retrying on $port"
    echo "$port" >"$dir/port"
    mysql_write_cnf "$inst" "$port" "$tls"
  done
  if ((rc != 0)); then
    show_logs "$inst" "$dir/server.log" "$dir/mariadbd.out"
    return 1
  fi

  if ! mysql_root_sql "$inst" "$(mysql_test_user_sql)" >>"$dir/install.log" 2>&1; then
    log "$inst: could not create user/database"
    show_logs "$inst" "$dir/install.log"
    return 1
  fi
  if ! mysql_check "$inst"; then
    show_logs "$inst" "$dir/server.log"
    return 1
  fi
  log "$inst: MariaDB up on $HOST:$port ($( ((tls)) && echo TLS || echo no TLS))"
}

# mysql_stop INSTANCE: SIGTERM (clean shutdown), SIGKILL after STOP_TIMEOUT.
mysql_stop() {
  # shellcheck disable=SC2046
  terminate $(mysql_pids "$1")
}

# mysql_pids INSTANCE: the server's PIDs (pid file and launcher) that are
# still alive and still ours.
mysql_pids() {
  local dir="$SQORM_TEST_DIR/$1" f pid pids=()
  for f in "$dir/mysqld.pid" "$dir/launcher.pid"; do
    pid=$(cat "$f" 2>/dev/null || true)
    if pid_alive "$pid" && pid_mentions "$pid" "$dir/"; then
      [[ " ${pids[*]} " == *" $pid "* ]] || pids+=("$pid")
    fi
  done
  echo "${pids[*]}"
}

# ---------------------------------------------------------------------------
# MariaDB replica (mysql-replica) of the `mysql` instance
# ---------------------------------------------------------------------------
# Binlog replication with GTIDs over TLS (certificate verified against the
# test CA). The primary gets log_bin and server_id when this family is on.
# The replica starts from a copy of the primary's state made by hand: the
# primary's test database and accounts are created on the replica, and
# replication begins at the primary's GTID position of that moment.

# mysql_vertical INSTANCE SQL: run SQL as root, output as "Name: value".
mysql_vertical() {
  mariadb --no-defaults --protocol=socket \
    --socket="$SQORM_TEST_DIR/$1/mysqld.sock" --user=root \
    --connect-timeout=5 --vertical -e "$2"
}

# mysql_replica_field NAME: one field of SHOW SLAVE STATUS on the replica.
mysql_replica_field() {
  mysql_vertical mysql-replica "SHOW SLAVE STATUS" 2>/dev/null |
    sed -n "s/^ *$1: //p" | head -n 1
}

# mysql_replica_problem: empty when both replication threads run, else
# what is wrong (a stopped SQL thread is "paused").
mysql_replica_problem() {
  local io sql err
  io=$(mysql_replica_field Slave_IO_Running)
  sql=$(mysql_replica_field Slave_SQL_Running)
  if [[ -z $io ]]; then
    echo "replication is not configured or the replica is down"
    return 0
  fi
  if [[ $sql != Yes ]]; then
    err=$(mysql_replica_field Last_SQL_Error)
    if [[ -n $err ]]; then echo "SQL thread stopped: $err"; else echo paused; fi
    return 0
  fi
  if [[ $io != Yes ]]; then
    err=$(mysql_replica_field Last_IO_Error)
    echo "IO thread $io${err:+: $err}"
  fi
}

# mysql_replica_sync TIMEOUT: wait until the replica has applied all the
# primary has written to its binary log.
mysql_replica_sync() {
  local timeout=$1 pos out
  pos=$(mysql_root_sql mysql "SELECT @@gtid_binlog_pos") || return 1
  out=$(mysql_root_sql mysql-replica "SELECT MASTER_GTID_WAIT('$pos', $timeout)") || return 1
  if [[ $out != 0 ]]; then
    log "mysql-replica: not caught up with the primary (at '$pos') within ${timeout}s: $(mysql_replica_problem)"
    return 1
  fi
}

mysql_replica_setup() {
  local inst=mysql-replica port=$1 dir="$SQORM_TEST_DIR/mysql-replica" rc pos pport sql
  mkdir -p "$dir/data" "$dir/tmp"
  : >"$dir/server.log"
  install_tls "$inst" mysql
  own mysql "$dir"
  chmod 755 "$dir"
  echo "$port" >"$dir/port"
  mysql_write_cnf "$inst" "$port" 1
  mysql_install "$inst" || return 1
  rc=0
  mysql_launch "$inst" || rc=$?
  if ((rc != 0)); then
    ((rc == 3)) && log "$inst: port $port was taken meanwhile"
    show_logs "$inst" "$dir/server.log" "$dir/mariadbd.out"
    return 1
  fi

  state_wait mysql "$inst" || return 1
  pport=$(<"$SQORM_TEST_DIR/mysql/port")
  # On the primary: the replication account, the admin account, and the
  # position the replica starts from.
  sql="CREATE USER IF NOT EXISTS '$REPL_USER'@'$HOST' IDENTIFIED BY '$REPL_PASSWORD' REQUIRE SSL;
    GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'$HOST';
    $(mysql_test_user_sql "$ADMIN_USER" "$ADMIN_PASSWORD")"
  if ! mysql_root_sql mysql "$sql" >>"$dir/install.log" 2>&1 ||
    ! pos=$(mysql_root_sql mysql "SELECT @@gtid_binlog_pos" 2>>"$dir/install.log"); then
    log "$inst: could not prepare the primary for replication"
    show_logs "$inst" "$dir/install.log"
    return 1
  fi
  # On the replica: what the primary has at that position, then replicate.
  sql="$(mysql_test_user_sql) $(mysql_test_user_sql "$ADMIN_USER" "$ADMIN_PASSWORD")
    SET GLOBAL gtid_slave_pos = '$pos';
    CHANGE MASTER TO MASTER_HOST = '$HOST', MASTER_PORT = $pport,
      MASTER_USER = '$REPL_USER', MASTER_PASSWORD = '$REPL_PASSWORD',
      MASTER_SSL = 1, MASTER_SSL_CA = '$dir/ca.pem',
      MASTER_SSL_VERIFY_SERVER_CERT = 1,
      MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;
    START SLAVE;"
  if ! mysql_root_sql "$inst" "$sql" >>"$dir/install.log" 2>&1; then
    log "$inst: could not set up replication"
    show_logs "$inst" "$dir/install.log"
    return 1
  fi
  if ! mysql_replica_sync "$START_TIMEOUT"; then
    show_logs "$inst" "$dir/server.log"
    return 1
  fi
  # The test user may read but not write here (error 1290, like 25006 on
  # the PostgreSQL standby); the admin user keeps READ ONLY ADMIN.
  sql=""
  local host
  for host in % 127.0.0.1 localhost; do
    sql+="REVOKE READ_ONLY ADMIN ON *.* FROM '$DB_USER'@'$host';"
  done
  if ! mysql_root_sql "$inst" "$sql" >>"$dir/install.log" 2>&1; then
    log "$inst: could not make the test user read-only"
    show_logs "$inst" "$dir/install.log"
    return 1
  fi
  if ! mysql_check "$inst"; then
    show_logs "$inst" "$dir/server.log"
    return 1
  fi
  log "$inst: MariaDB replica of mysql ($HOST:$pport) up on $HOST:$port (TLS)"
}

# ---------------------------------------------------------------------------
# MariaDB Galera cluster (galera1, galera2, galera3)
# ---------------------------------------------------------------------------
# Layout of $SQORM_TEST_DIR/galeraN/: as for mysql, plus `ports` (client,
# group communication, IST and SST ports) and recover.log. The cluster is
# seeded without a full state transfer: galera1 bootstraps alone, gets the
# test database and user, stops cleanly; its data directory is copied to
# galera2 and galera3; then all three start (galera1 bootstrapping the
# primary component) from the same state, so the joiners only need an IST
# of the membership changes since (through wsrep_sst_rsync's IST path,
# which costs most of the cluster's start-up time: ~15s).

# galera_write_cnf NODE NAME ADDRESS: my.cnf of one node; its ports come
# from $dir/ports.
galera_write_cnf() {
  local node=$1 name=$2 address=$3 dir="$SQORM_TEST_DIR/$1" client gcomm ist sst
  read -r client gcomm ist sst <"$dir/ports"
  mysql_write_cnf "$node" "$client" 1
  cat >>"$dir/my.cnf" <<CNF
# Galera
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = $GALERA_PROVIDER
wsrep_cluster_name = $name
wsrep_cluster_address = $address
wsrep_node_name = $node
wsrep_node_address = $HOST:$gcomm
wsrep_node_incoming_address = $HOST:$client
wsrep_provider_options = "gmcast.listen_addr=tcp://$HOST:$gcomm;ist.recv_addr=$HOST:$ist;gcache.size=64M"
wsrep_sst_method = rsync
wsrep_sst_receive_address = $HOST:$sst
# Reads wait until every write committed anywhere before them is applied
# here (a strongly consistent cluster, as TiDB is).
wsrep_sync_wait = 1

[sst]
# State transfers stay on loopback in plain rsync (no stunnel).
ssl-mode = DISABLED
CNF
}

# galera_state NODE: wsrep_local_state_comment (Synced, Joining, ...).
galera_state() {
  mysql_root_sql "$1" "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | cut -f2
}

# galera_wait_synced NODE: wait until the node is Synced with the cluster.
galera_wait_synced() {
  local node=$1 dir="$SQORM_TEST_DIR/$1" deadline=$((SECONDS + START_TIMEOUT)) state=""
  while :; do
    state=$(galera_state "$node")
    [[ $state == Synced ]] && return 0
    if [[ -z $(mysql_pids "$node") ]]; then
      log "$node: mariadbd exited before it was synced"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$node: not synced with the cluster within ${START_TIMEOUT}s (state '$state')"
      return 1
    fi
    sleep 0.2
  done
}

# galera_seqno NODE: the seqno saved in grastate.dat (-1 after a crash).
galera_seqno() {
  sed -n 's/^seqno: *//p' "$SQORM_TEST_DIR/$1/data/grastate.dat" 2>/dev/null
}

# galera_launch NODE [MARIADBD-ARGS...]: start a node and wait until it is
# Synced. After a crash (seqno -1 in grastate.dat) the node's position is
# first recovered from InnoDB (mariadbd --wsrep-recover, as the systemd unit
# does through galera_recovery), so that it can rejoin by IST.
galera_launch() {
  local node=$1 dir="$SQORM_TEST_DIR/$1" rc pos extra=()
  shift
  # A joiner may need a state transfer before it answers: the waits below
  # (and in mysql_launch) get GALERA_TIMEOUT.
  local START_TIMEOUT=$GALERA_TIMEOUT
  if [[ $(galera_seqno "$node") == -1 ]]; then
    if (cd "$dir" && "$MARIADBD" --defaults-file="$dir/my.cnf" --wsrep-recover \
      --log-error="$dir/recover.log" </dev/null >/dev/null 2>&1); then
      pos=$(sed -n 's/.*WSREP: Recovered position: *//p' "$dir/recover.log" | tail -n 1)
    fi
    if [[ $pos == *:* && $pos != *:-1 ]]; then
      log "$node: recovered position $pos"
      extra+=(--wsrep-start-position="$pos")
    else
      log "$node: could not recover its position; it will need a full SST"
    fi
  fi
  rc=0
  mysql_launch "$node" "${extra[@]}" "$@" || rc=$?
  if ((rc != 0)); then
    ((rc == 3)) && log "$node: a port of $(tr ' ' , <"$dir/ports") was taken meanwhile"
    show_logs "$node" "$dir/server.log" "$dir/mariadbd.out"
    return 1
  fi
  if ! galera_wait_synced "$node"; then
    show_logs "$node" "$dir/server.log"
    return 1
  fi
}

# galera_setup PORTS: PORTS is 12 comma-separated ports, 4 per node.
galera_setup() {
  local ports=() node i name address="" dir seed="$SQORM_TEST_DIR/galera1"
  IFS=, read -r -a ports <<<"$1"
  name="sqorm_test_${BASHPID}_$RANDOM"
  for i in 0 1 2; do
    address+="${address:+,}$HOST:${ports[4 * i + 1]}"
  done
  address="gcomm://$address"
  for i in 0 1 2; do
    node=${GALERA_NODES[$i]}
    dir="$SQORM_TEST_DIR/$node"
    mkdir -p "$dir/data" "$dir/tmp"
    : >"$dir/server.log"
    install_tls "$node" mysql
    echo "${ports[*]:4*i:4}" >"$dir/ports"
    echo "${ports[4 * i]}" >"$dir/port"
    own mysql "$dir"
    chmod 755 "$dir"
    galera_write_cnf "$node" "$name" "$address"
  done

  # Seed: galera1 alone, with the test database and user.
  mysql_install galera1 || return 1
  galera_launch galera1 --wsrep-new-cluster || return 1
  if ! mysql_root_sql galera1 "$(mysql_test_user_sql)" >>"$seed/install.log" 2>&1; then
    log "galera1: could not create user/database"
    show_logs galera1 "$seed/install.log"
    return 1
  fi
  # shellcheck disable=SC2046
  terminate $(mysql_pids galera1) || true
  if [[ -z $(galera_seqno galera1) || $(galera_seqno galera1) == -1 ]]; then
    log "galera1: no clean shutdown after seeding"
    show_logs galera1 "$seed/server.log"
    return 1
  fi
  for node in galera2 galera3; do
    dir="$SQORM_TEST_DIR/$node"
    (cd "$seed/data" && tar --exclude=./galera.cache --exclude=./gvwstate.dat -cf - .) |
      (cd "$dir/data" && tar -xpf -) ||
      { log "$node: could not copy the seed data"; return 1; }
    sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 0/' "$dir/data/grastate.dat"
  done

  # The cluster: galera1 bootstraps the primary component, the others join
  # it from the same state (IST only).
  local pids=() failed=0 pid
  galera_launch galera1 --wsrep-new-cluster &
  pids+=($!)
  for node in galera2 galera3; do
    galera_launch "$node" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  ((failed == 0)) || return 1
  local size
  size=$(mysql_root_sql galera1 "SHOW STATUS LIKE 'wsrep_cluster_size'" 2>/dev/null | cut -f2)
  if [[ $size != 3 ]]; then
    log "galera: cluster size is '$size', expected 3"
    return 1
  fi
  for node in "${GALERA_NODES[@]}"; do
    if ! mysql_check "$node"; then
      show_logs "$node" "$SQORM_TEST_DIR/$node/server.log"
      return 1
    fi
  done
  log "galera: 3-node MariaDB Galera cluster up on $HOST:${ports[0]},${ports[4]},${ports[8]} (TLS)"
}


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
# Layout of $SQORM_TEST_DIR/<postgres|postgres-plain>/ (owned by postgres):
#   data/ (with sqorm_test.conf included from postgresql.conf)
#   .s.PGSQL.<port> (socket)  port  server.log  pg_ctl.log  initdb.log
#   server.{pem,key} ca.pem

pg_write_conf() {
  local inst=$1 port=$2 tls=$3 dir="$SQORM_TEST_DIR/$1"
  {
    echo "# Generated by scripts/test-servers.sh for instance '$inst'."
    echo "listen_addresses = '$HOST'"
    echo "port = $port"
    echo "unix_socket_directories = '$dir'"
    echo "max_connections = 200"
    echo "shared_buffers = 32MB"
    # Throwaway data: no durability.
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
    echo "password_encryption = 'scram-sha-256'"
    if ((tls)); then
      echo "ssl = on"
      echo "ssl_cert_file = '$dir/server.pem'"
      echo "ssl_key_file = '$dir/server.key'"
      echo "ssl_ca_file = '$dir/ca.pem'"
      echo "ssl_min_protocol_version = 'TLSv1.2'"
    else
      echo "ssl = off"
    fi
    if [[ $inst == postgres-standby ]]; then
      echo "hot_standby = on"
      # Queries on the standby hold back the primary's vacuum rather than
      # being cancelled by it.
      echo "hot_standby_feedback = on"
      echo "wal_retrieve_retry_interval = '1s'"
    fi
  } >"$dir/data/sqorm_test.conf"
  own postgres "$dir/data/sqorm_test.conf"
}

pg_ctl_as_postgres() {
  as_user postgres "$PG_BIN/pg_ctl" "$@"
}

# pg_ready INSTANCE: the server accepts connections on its socket.
pg_ready() {
  local dir="$SQORM_TEST_DIR/$1" port
  port=$(cat "$dir/port" 2>/dev/null) || return 1
  "$PG_BIN/pg_isready" -q -h "$dir" -p "$port" -U postgres -d postgres \
    -t 2 >/dev/null 2>&1
}

# pg_launch INSTANCE: start the server and wait until it answers.
# Returns 0 when up, 3 when the port was already taken, 1 otherwise.
pg_launch() {
  local inst=$1 dir="$SQORM_TEST_DIR/$1" offset deadline
  offset=$(file_size "$dir/server.log")
  # pg_ctl -w waits for the postmaster (and notices if it dies); pg_ctl
  # detaches the postmaster into its own session and redirects its output.
  if ! pg_ctl_as_postgres -D "$dir/data" -l "$dir/server.log" \
    -w -t "$START_TIMEOUT" start </dev/null >>"$dir/pg_ctl.log" 2>&1; then
    if log_since "$dir/server.log" "$offset" | grep -q 'Address already in use'; then
      return 3
    fi
    log "$inst: postgres did not start"
    pg_stop "$inst"
    return 1
  fi
  deadline=$((SECONDS + START_TIMEOUT))
  until pg_ready "$inst"; do
    if ((SECONDS >= deadline)); then
      log "$inst: postgres did not accept connections within ${START_TIMEOUT}s"
      pg_stop "$inst"
      return 1
    fi
    sleep 0.2
  done
  return 0
}

# pg_check INSTANCE: end-to-end check over TCP with password auth; for the
# TLS instance with sslmode=verify-full against the test CA.
pg_check() {
  local inst=$1 dir="$SQORM_TEST_DIR/$1" port conn out want
  port=$(<"$dir/port")
  conn="host=$HOST port=$port user=$DB_USER password=$DB_PASSWORD dbname=$DB_NAME connect_timeout=5"
  if [[ $(uses_tls "$inst") == 1 ]]; then
    conn+=" sslmode=verify-full sslrootcert=$SQORM_TEST_DIR/ca.pem"
    want=t
  else
    conn+=" sslmode=disable"
    want=f
  fi
  out=$("$PG_BIN/psql" -X -A -t -d "$conn" \
    -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1) ||
    { log "$inst: login as $DB_USER failed: $out"; return 1; }
  [[ $out == "$want" ]] ||
    { log "$inst: expected ssl=$want, got '$out'"; return 1; }
}

# pg_setup INSTANCE PORT: create, initialise and start one PostgreSQL.
pg_setup() {
  local inst=$1 port=$2 tls dir="$SQORM_TEST_DIR/$1" rc locale
  tls=$(uses_tls "$inst")
  # The data directory and its parent belong to postgres.
  mkdir -p "$dir"
  : >"$dir/server.log"
  if ((tls)); then install_tls "$inst" postgres; fi
  printf '%s\n' "$DB_PASSWORD" >"$dir/pwfile"
  own postgres "$dir"
  chmod 755 "$dir"
  chmod 600 "$dir/pwfile"
  echo "$port" >"$dir/port"

  # C.UTF-8 when the system has it (Debian 12 does), else plain C.
  locale=C
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
  if ! as_user postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres \
    -E UTF8 --locale="$locale" --no-sync --no-instructions \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$dir/pwfile" \
    >"$dir/initdb.log" 2>&1; then
    log "$inst: initdb failed"
    show_logs "$inst" "$dir/initdb.log"
    return 1
  fi
  rm -f "$dir/pwfile"

  # Password (SCRAM) over TCP, with or without TLS; trust on the socket,
  # which only this run's directory exposes.
  cat >"$dir/data/pg_hba.conf" <<'EOF'
# Generated by scripts/test-servers.sh
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
host    replication sqorm_repl 127.0.0.1/32 scram-sha-256
EOF
  echo "include_if_exists = 'sqorm_test.conf'" >>"$dir/data/postgresql.conf"
  own postgres "$dir/data/pg_hba.conf"
  pg_write_conf "$inst" "$port" "$tls"

  for _ in 1 2 3 4 5; do
    rc=0
    pg_launch "$inst" || rc=$?
    ((rc == 3)) || break
    port=$(pick_ports 1)
    log "$inst: port taken, retrying on $port"
    echo "$port" >"$dir/port"
    pg_write_conf "$inst" "$port" "$tls"
  done
  if ((rc != 0)); then
    show_logs "$inst" "$dir/server.log" "$dir/pg_ctl.log"
    return 1
  fi

  if ! "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" \
    -U postgres -d postgres \
    -c "CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD'" \
    -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" \
    >>"$dir/initdb.log" 2>&1; then
    log "$inst: could not create role/database"
    show_logs "$inst" "$dir/initdb.log"
    return 1
  fi
  if ! pg_check "$inst"; then
    show_logs "$inst" "$dir/server.log"
    return 1
  fi
  log "$inst: PostgreSQL up on $HOST:$port ($( ((tls)) && echo TLS || echo no TLS))"
}

# pg_stop INSTANCE: fast shutdown, then immediate, then SIGKILL. Also copes
# with a postmaster that was killed outright: its orphaned children are
# ended and the stale postmaster.pid is removed so that a restart works.
pg_stop() {
  local inst=$1 dir="$SQORM_TEST_DIR/$1" pid left
  pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
  if pid_alive "$pid" && pid_mentions "$pid" "$dir/"; then
    # pg_ctl -w -t bounds its own wait; timeout(1) guards against anything
    # else hanging. Run from / so the postgres user can read the cwd.
    local pg_ctl=("$PG_BIN/pg_ctl")
    if is_root; then pg_ctl=(runuser -u postgres -- "$PG_BIN/pg_ctl"); fi
    if ! (cd / && timeout $((STOP_TIMEOUT + 2)) "${pg_ctl[@]}" -D "$dir/data" \
      stop -m fast -w -t "$STOP_TIMEOUT" >/dev/null 2>&1); then
      log "$inst: fast shutdown failed; trying immediate"
      if ! (cd / && timeout 7 "${pg_ctl[@]}" -D "$dir/data" \
        stop -m immediate -w -t 5 >/dev/null 2>&1); then
        log "$inst: killing postmaster $pid"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone 5 "$pid" || true
      fi
    fi
  fi
  # Whatever still runs in the data directory (children of a postmaster
  # that died) goes too.
  left=$(procs_in "$dir/data")
  if [[ -n $left ]]; then
    log "$inst: ending leftover postgres processes: ${left//$'\n'/ }"
    # shellcheck disable=SC2086
    terminate $left || true
  fi
  # Lock files naming a dead postmaster. PostgreSQL removes stale ones
  # itself, except when that PID is an unreaped zombie (seen in containers
  # whose PID 1 does not reap orphans promptly).
  local lock
  for lock in "$dir/data/postmaster.pid" "$dir"/.s.PGSQL.*.lock; do
    [[ -f $lock ]] || continue
    pid=$(head -n 1 "$lock" 2>/dev/null || true)
    if [[ -n $pid ]] && ! pid_alive "$pid"; then
      rm -f "$lock"
      [[ $lock == *.lock ]] && rm -f "${lock%.lock}"
    fi
  done
  return 0
}

# pg_sql INSTANCE SQL: run SQL as the postgres superuser over the instance's
# socket; unaligned, tuples only.
pg_sql() {
  local dir="$SQORM_TEST_DIR/$1" port
  port=$(<"$dir/port")
  "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$dir" -p "$port" \
    -U postgres -d postgres -c "$2"
}

# ---------------------------------------------------------------------------
# PostgreSQL streaming standby (postgres-standby) of `postgres`
# ---------------------------------------------------------------------------
# pg_basebackup -R over TLS (verify-full) as a replication role, with a
# physical replication slot; the standby streams from the primary with the
# connection string pg_basebackup wrote into postgresql.auto.conf.

# pg_standby_sync TIMEOUT: wait until the standby has replayed all WAL
# the primary had written.
pg_standby_sync() {
  local timeout=$1 lsn out deadline
  deadline=$((SECONDS + timeout))
  lsn=$(pg_sql postgres "SELECT pg_current_wal_lsn()") || return 1
  while :; do
    out=$(pg_sql postgres-standby \
      "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || true)
    [[ $out == t ]] && return 0
    if ((SECONDS >= deadline)); then
      log "postgres-standby: not caught up with the primary (at $lsn) within ${timeout}s: $(pg_standby_problem)"
      return 1
    fi
    sleep 0.1
  done
}

# pg_standby_problem: empty when the standby streams and replays, else what
# is wrong ("paused" when replay is paused).
pg_standby_problem() {
  local out
  out=$(pg_sql postgres-standby "SELECT pg_get_wal_replay_pause_state()" 2>&1) ||
    { echo "standby down: $out"; return 0; }
  if [[ $out != not\ paused ]]; then echo paused; return 0; fi
  out=$(pg_sql postgres-standby "SELECT status FROM pg_stat_wal_receiver" 2>&1)
  [[ $out == streaming ]] || echo "WAL receiver: ${out:-not running}"
}

pg_standby_setup() {
  local inst=postgres-standby port=$1 dir="$SQORM_TEST_DIR/postgres-standby" pport rc
  mkdir -p "$dir"
  : >"$dir/server.log"
  install_tls "$inst" postgres
  own postgres "$dir"
  chmod 755 "$dir"
  echo "$port" >"$dir/port"

  state_wait postgres "$inst" || return 1
  pport=$(<"$SQORM_TEST_DIR/postgres/port")
  if ! pg_sql postgres "CREATE ROLE $REPL_USER LOGIN REPLICATION PASSWORD '$REPL_PASSWORD'" \
    >>"$dir/basebackup.log" 2>&1; then
    log "$inst: could not create the replication role on the primary"
    show_logs "$inst" "$dir/basebackup.log"
    return 1
  fi
  # The standby verifies the primary's certificate with its own CA copy.
  if ! (cd / && as_user postgres "$PG_BIN/pg_basebackup" -D "$dir/data" \
    -R -X stream -C -S "$PG_SLOT" --checkpoint=fast --no-sync \
    -d "host=$HOST port=$pport user=$REPL_USER password=$REPL_PASSWORD sslmode=verify-full sslrootcert=$dir/ca.pem application_name=$inst" \
    </dev/null >>"$dir/basebackup.log" 2>&1); then
    log "$inst: pg_basebackup failed"
    show_logs "$inst" "$dir/basebackup.log"
    return 1
  fi
  # The copied settings name the primary's port, socket and certificates.
  pg_write_conf "$inst" "$port" 1
  rc=0
  pg_launch "$inst" || rc=$?
  if ((rc != 0)); then
    ((rc == 3)) && log "$inst: port $port was taken meanwhile"
    show_logs "$inst" "$dir/server.log" "$dir/pg_ctl.log"
    return 1
  fi
  if ! pg_standby_sync "$START_TIMEOUT" || ! pg_check "$inst"; then
    show_logs "$inst" "$dir/server.log"
    return 1
  fi
  log "$inst: PostgreSQL standby of postgres ($HOST:$pport) up on $HOST:$port (TLS)"
}

# ---------------------------------------------------------------------------
# PgBouncer (pgbouncer) in front of `postgres`
# ---------------------------------------------------------------------------
# Layout of $SQORM_TEST_DIR/pgbouncer/ (owned by postgres): pgbouncer.ini
# userlist.txt pgbouncer.pid launcher.pid port server.log (its log file)
# pgbouncer.out (stdout/stderr) server.{pem,key} ca.pem .s.PGSQL.<port>

pgb_write_conf() {
  local port=$1 pport=$2 dir="$SQORM_TEST_DIR/pgbouncer"
  cat >"$dir/pgbouncer.ini" <<INI
; Generated by scripts/test-servers.sh for instance 'pgbouncer'.
[databases]
$DB_NAME = host=$HOST port=$pport dbname=$DB_NAME
* = host=$HOST port=$pport

[pgbouncer]
listen_addr = $HOST
listen_port = $port
unix_socket_dir = $dir
pidfile = $dir/pgbouncer.pid
logfile = $dir/server.log
log_connections = 0
log_disconnections = 0

auth_type = scram-sha-256
auth_file = $dir/userlist.txt
admin_users = $DB_USER
stats_users = $DB_USER

; What hosted poolers run: a server connection serves one transaction of a
; client, then any other client. PgBouncer 1.18 has no
; max_prepared_statements (1.21+): named prepared statements are not
; carried across server connections.
pool_mode = transaction
; Under load a client's next transaction lands on another server connection
; and finds none of its session state. Make that happen every time instead:
; DISCARD ALL after each transaction (prepared statements, SETs other than
; the parameters PgBouncer tracks itself: TimeZone, DateStyle,
; client_encoding, standard_conforming_strings, application_name), and
; idle server connections handed out in turn.
server_reset_query = DISCARD ALL
server_reset_query_always = 1
server_round_robin = 1
default_pool_size = 20
reserve_pool_size = 0
max_client_conn = 500

client_tls_sslmode = prefer
client_tls_cert_file = $dir/server.pem
client_tls_key_file = $dir/server.key
client_tls_ca_file = $dir/ca.pem
client_tls_protocols = tlsv1.2,tlsv1.3
server_tls_sslmode = verify-full
server_tls_ca_file = $dir/ca.pem
server_tls_protocols = tlsv1.2,tlsv1.3
INI
  chmod 644 "$dir/pgbouncer.ini"
  own postgres "$dir/pgbouncer.ini"
}

# pgb_ready: PgBouncer answers on its TCP port (an authentication error
# counts as an answer).
pgb_ready() {
  local port
  port=$(cat "$SQORM_TEST_DIR/pgbouncer/port" 2>/dev/null) || return 1
  "$PG_BIN/pg_isready" -q -h "$HOST" -p "$port" -U "$DB_USER" -d "$DB_NAME" \
    -t 2 >/dev/null 2>&1
}

# pgb_pids: PgBouncer's PIDs (pid file, launcher), alive and ours.
pgb_pids() {
  local dir="$SQORM_TEST_DIR/pgbouncer" f pid pids=()
  for f in "$dir/pgbouncer.pid" "$dir/launcher.pid"; do
    pid=$(cat "$f" 2>/dev/null || true)
    if pid_alive "$pid" && pid_mentions "$pid" "$dir/"; then
      [[ " ${pids[*]} " == *" $pid "* ]] || pids+=("$pid")
    fi
  done
  echo "${pids[*]}"
}

# pgb_launch: start PgBouncer (foreground, own session, as postgres) and
# wait until it answers. Returns 0 when up, 3 when the port was taken.
pgb_launch() {
  local dir="$SQORM_TEST_DIR/pgbouncer" offset pid deadline runas=()
  offset=$(file_size "$dir/server.log")
  rm -f "$dir/pgbouncer.pid"
  if is_root; then runas=(runuser -u postgres --); fi
  (
    cd "$dir" || exit 1
    exec setsid "${runas[@]}" "$PGBOUNCER" "$dir/pgbouncer.ini" \
      </dev/null >>"$dir/pgbouncer.out" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$dir/launcher.pid"
  deadline=$((SECONDS + START_TIMEOUT))
  until pgb_ready; do
    if ! pid_alive "$pid"; then
      if { log_since "$dir/server.log" "$offset"; cat "$dir/pgbouncer.out"; } 2>/dev/null |
        grep -q 'Address already in use'; then
        return 3
      fi
      log "pgbouncer: exited during start-up"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "pgbouncer: did not accept connections within ${START_TIMEOUT}s"
      # shellcheck disable=SC2046
      terminate $(pgb_pids)
      return 1
    fi
    sleep 0.2
  done
}

# pgb_check: log in through PgBouncer as the test user with verify-full
# (so the client side is TLS) and see the server side is TLS too.
pgb_check() {
  local port out
  port=$(<"$SQORM_TEST_DIR/pgbouncer/port")
  out=$("$PG_BIN/psql" -X -A -t -d "host=$HOST port=$port user=$DB_USER password=$DB_PASSWORD dbname=$DB_NAME connect_timeout=5 sslmode=verify-full sslrootcert=$SQORM_TEST_DIR/ca.pem" \
    -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1) ||
    { log "pgbouncer: login as $DB_USER failed: $out"; return 1; }
  [[ $out == t ]] ||
    { log "pgbouncer: expected a TLS server connection, got '$out'"; return 1; }
}

pgb_setup() {
  local port=$1 dir="$SQORM_TEST_DIR/pgbouncer" pport rc
  mkdir -p "$dir"
  : >"$dir/server.log"
  install_tls pgbouncer postgres
  printf '"%s" "%s"\n' "$DB_USER" "$DB_PASSWORD" >"$dir/userlist.txt"
  chmod 600 "$dir/userlist.txt"
  own postgres "$dir"
  chmod 755 "$dir"
  echo "$port" >"$dir/port"

  state_wait postgres pgbouncer || return 1
  pport=$(<"$SQORM_TEST_DIR/postgres/port")
  pgb_write_conf "$port" "$pport"
  rc=0
  pgb_launch || rc=$?
  if ((rc != 0)); then
    ((rc == 3)) && log "pgbouncer: port $port was taken meanwhile"
    show_logs pgbouncer "$dir/server.log" "$dir/pgbouncer.out"
    return 1
  fi
  if ! pgb_check; then
    show_logs pgbouncer "$dir/server.log"
    return 1
  fi
  log "pgbouncer: PgBouncer $("$PGBOUNCER" --version 2>/dev/null | sed -n '1s/^PgBouncer //p') (transaction pooling) in front of postgres ($HOST:$pport) up on $HOST:$port (TLS)"
}

# pgb_stop: SIGTERM, SIGKILL after STOP_TIMEOUT.
pgb_stop() {
  # shellcheck disable=SC2046
  terminate $(pgb_pids)
}

# ---------------------------------------------------------------------------
# Per-instance dispatch
# ---------------------------------------------------------------------------

# unit_setup UNIT PORTS: what one start job does. A unit is an instance,
# except `galera` (the three nodes; PORTS is then a comma-separated list).
unit_setup() {
  case $1 in
    mysql | mysql-plain) mysql_setup "$1" "$2" ;;
    postgres | postgres-plain) pg_setup "$1" "$2" ;;
    pgbouncer) pgb_setup "$2" ;;
    mysql-replica) mysql_replica_setup "$2" ;;
    postgres-standby) pg_standby_setup "$2" ;;
    galera) galera_setup "$2" ;;
    *) log "unknown unit $1"; return 1 ;;
  esac
}

# unit_job UNIT PORTS: unit_setup, then tell dependants how it went.
unit_job() {
  local t=$SECONDS
  if unit_setup "$1" "$2"; then
    state_mark "$1" ok
    log "$1: ready after $((SECONDS - t))s"
  else
    state_mark "$1" failed
    return 1
  fi
}

instance_stop() {
  case $(family_of "$1") in
    mysql) mysql_stop "$1" ;;
    postgres) pg_stop "$1" ;;
    pgbouncer) pgb_stop ;;
  esac
}

instance_up() {
  case $(family_of "$1") in
    mysql) mysql_ping "$1" ;;
    postgres) pg_ready "$1" ;;
    pgbouncer) pgb_ready ;;
  esac
}

# instance_pids INSTANCE: the main server process(es) of a running instance.
instance_pids() {
  local dir="$SQORM_TEST_DIR/$1" pid
  case $(family_of "$1") in
    mysql) mysql_pids "$1" ;;
    pgbouncer) pgb_pids ;;
    postgres)
      pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
      if pid_alive "$pid" && pid_mentions "$pid" "$dir/"; then echo "$pid"; fi
      ;;
  esac
}

# instance_launch INSTANCE: start an instance that was set up before, on
# its port, with its data; wait until it is usable and check it.
instance_launch() {
  local inst=$1 rc=0 dir="$SQORM_TEST_DIR/$1"
  if is_galera "$inst"; then
    galera_launch "$inst" || return 1
  else
    case $(family_of "$inst") in
      mysql) mysql_launch "$inst" || rc=$? ;;
      postgres) pg_launch "$inst" || rc=$? ;;
      pgbouncer) pgb_launch || rc=$? ;;
    esac
    if ((rc != 0)); then
      ((rc == 3)) && log "$inst: port $(<"$dir/port") was taken meanwhile"
      show_logs "$inst" "$dir/server.log" "$dir/pgbouncer.out" "$dir/mariadbd.out"
      return 1
    fi
  fi
  case $(family_of "$inst") in
    mysql) mysql_check "$inst" ;;
    postgres) pg_check "$inst" ;;
    pgbouncer) pgb_check ;;
  esac
}

# present_instances: the instances that `start` created in this directory.
present_instances() {
  local inst
  for inst in "${ALL_INSTANCES[@]}"; do
    if [[ -d $SQORM_TEST_DIR/$inst ]]; then echo "$inst"; fi
  done
}

# stop_all: stop every instance in parallel, then sweep up anything left
# over from an interrupted start. Bounded by roughly STOP_TIMEOUT + 10s.
stop_all() {
  local inst pid pids=()
  for inst in $(present_instances); do
    instance_stop "$inst" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || true
  done
  # Twice, in case a server was still being forked during the first pass.
  local strays pass
  for pass in 1 2; do
    strays=$(stray_pids)
    if [[ -n $strays ]]; then
      log "stopping leftover processes: ${strays//$'\n'/ }"
      # shellcheck disable=SC2086
      terminate $strays || true
    fi
    ((pass == 2)) || sleep 0.3
  done
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------

# parse_families: FAMILIES = the families SQORM_TEST_SERVERS asks for, with
# what they need, in start order.
parse_families() {
  local -A want=()
  local fam f list
  IFS=', ' read -r -a list <<<"${SQORM_TEST_SERVERS:-$DEFAULT_SERVERS}"
  for fam in "${list[@]}"; do
    case $fam in
      mysql | mariadb) want[mysql]=1 ;;
      postgres | postgresql | pg) want[postgres]=1 ;;
      pgbouncer) want[pgbouncer]=1 want[postgres]=1 ;;
      mysql-replica) want[mysql-replica]=1 want[mysql]=1 ;;
      postgres-standby | pg-standby) want[postgres-standby]=1 want[postgres]=1 ;;
      replicas)
        want[mysql-replica]=1 want[mysql]=1
        want[postgres-standby]=1 want[postgres]=1
        ;;
      galera) want[galera]=1 ;;
      all) for f in "${ALL_FAMILIES[@]}"; do want[$f]=1; done ;;
      "") ;;
      *) die "SQORM_TEST_SERVERS: unknown family '$fam' (use all, or some of: ${ALL_FAMILIES[*]}, replicas)" ;;
    esac
  done
  FAMILIES=()
  for f in "${ALL_FAMILIES[@]}"; do
    if [[ -n ${want[$f]:-} ]]; then FAMILIES+=("$f"); fi
  done
}

# has_family FAMILY: FAMILIES (set by cmd_start) contains FAMILY.
has_family() {
  [[ " ${FAMILIES[*]} " == *" $1 "* ]]
}

# write_env: $SQORM_TEST_DIR/env.sh for the tests (only families started).
write_env() {
  local d=$SQORM_TEST_DIR
  # Single-quoted values; a ' inside would become '\''.
  kv() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }
  {
    echo "# Generated by scripts/test-servers.sh start; source it."
    kv SQORM_TEST_DIR "$d"
    kv SQORM_TEST_SERVERS "$(IFS=,; echo "${FAMILIES[*]}")"
    kv SQORM_TEST_SCRIPT "$SELF"
    kv SQORM_TEST_CA "$d/ca.pem"
    kv SQORM_TEST_WRONG_CA "$d/wrong-ca.pem"
    kv SQORM_TEST_CLIENT_CERT "$d/client.pem"
    kv SQORM_TEST_CLIENT_KEY "$d/client.key"
    if has_family mysql; then
      local mp mpp
      mp=$(<"$d/mysql/port")
      mpp=$(<"$d/mysql-plain/port")
      kv SQORM_TEST_MYSQL_HOST "$HOST"
      kv SQORM_TEST_MYSQL_PORT "$mp"
      kv SQORM_TEST_MYSQL_USER "$DB_USER"
      kv SQORM_TEST_MYSQL_PASSWORD "$DB_PASSWORD"
      kv SQORM_TEST_MYSQL_DB "$DB_NAME"
      kv SQORM_TEST_MYSQL_PLAIN_PORT "$mpp"
      kv SQORM_TEST_MYSQL_URL "mysql://$DB_USER:$DB_PASSWORD@$HOST:$mp/$DB_NAME"
    fi
    if has_family mysql-replica; then
      local mrp
      mrp=$(<"$d/mysql-replica/port")
      kv SQORM_TEST_MYSQL_REPLICA_PORT "$mrp"
      kv SQORM_TEST_MYSQL_REPLICA_URL "mysql://$DB_USER:$DB_PASSWORD@$HOST:$mrp/$DB_NAME"
      kv SQORM_TEST_MYSQL_ADMIN_USER "$ADMIN_USER"
      kv SQORM_TEST_MYSQL_ADMIN_PASSWORD "$ADMIN_PASSWORD"
    fi
    if has_family postgres; then
      local pp ppp
      pp=$(<"$d/postgres/port")
      ppp=$(<"$d/postgres-plain/port")
      kv SQORM_TEST_PG_HOST "$HOST"
      kv SQORM_TEST_PG_PORT "$pp"
      kv SQORM_TEST_PG_USER "$DB_USER"
      kv SQORM_TEST_PG_PASSWORD "$DB_PASSWORD"
      kv SQORM_TEST_PG_DB "$DB_NAME"
      kv SQORM_TEST_PG_PLAIN_PORT "$ppp"
      kv SQORM_TEST_PG_URL "postgres://$DB_USER:$DB_PASSWORD@$HOST:$pp/$DB_NAME"
    fi
    if has_family pgbouncer; then
      local bp
      bp=$(<"$d/pgbouncer/port")
      kv SQORM_TEST_PGBOUNCER_PORT "$bp"
      kv SQORM_TEST_PGBOUNCER_URL "postgres://$DB_USER:$DB_PASSWORD@$HOST:$bp/$DB_NAME"
    fi
    if has_family postgres-standby; then
      local sp
      sp=$(<"$d/postgres-standby/port")
      kv SQORM_TEST_PG_STANDBY_PORT "$sp"
      kv SQORM_TEST_PG_STANDBY_URL "postgres://$DB_USER:$DB_PASSWORD@$HOST:$sp/$DB_NAME"
    fi
    if has_family galera; then
      local node gp=() hosts=()
      for node in "${GALERA_NODES[@]}"; do
        gp+=("$(<"$d/$node/port")")
        hosts+=("$HOST:${gp[-1]}")
      done
      kv SQORM_TEST_GALERA_PORTS "$(IFS=,; echo "${gp[*]}")"
      kv SQORM_TEST_GALERA_USER "$DB_USER"
      kv SQORM_TEST_GALERA_PASSWORD "$DB_PASSWORD"
      kv SQORM_TEST_GALERA_DB "$DB_NAME"
      kv SQORM_TEST_GALERA_URL "mysql://$DB_USER:$DB_PASSWORD@$(IFS=,; echo "${hosts[*]}")/$DB_NAME"
    fi
  } >"$d/env.sh.tmp"
  chmod 644 "$d/env.sh.tmp"
  mv "$d/env.sh.tmp" "$d/env.sh"
}

# Set by cmd_start; used by its EXIT trap and the start jobs.
START_OK=0
CREATED_DIR=0
START_JOBS=()
FAMILIES=()
WANT_MYSQL_REPLICA=0

# on_start_exit: if start did not finish (error or signal), undo what it
# did: end the setup jobs with everything they were running, stop any
# server that came up, and remove the directory if start created it.
on_start_exit() {
  local rc=$?
  ((START_OK)) && return 0
  # Cleanup must not itself be cut short by a second signal (a Ctrl-C
  # reaches us and the wrapper's SIGTERM follows); it is time-bounded.
  trap '' INT TERM HUP
  log "start failed or interrupted; stopping whatever was started"
  if ((${#START_JOBS[@]})); then
    kill_groups "${START_JOBS[@]}"
    wait "${START_JOBS[@]}" 2>/dev/null || true
  fi
  stop_all || true
  if ((CREATED_DIR)) && [[ -f $SQORM_TEST_DIR/$MARKER ]]; then
    cd /
    rm -rf "$SQORM_TEST_DIR" 2>/dev/null || rm -rf "$SQORM_TEST_DIR"
  fi
  exit $((rc == 0 ? 1 : rc))
}

cmd_start() {
  local t0=$SECONDS fam
  parse_families
  ((${#FAMILIES[@]})) || die "SQORM_TEST_SERVERS names no family"
  has_family mysql-replica && WANT_MYSQL_REPLICA=1
  find_tools "${FAMILIES[@]}"

  # The state directory: fresh from mktemp, or an empty/new one given by
  # the caller. Never reuse one that already holds a run.
  if [[ -z ${SQORM_TEST_DIR:-} ]]; then
    SQORM_TEST_DIR=$(mktemp -d /tmp/sqorm-test.XXXXXXXXXX)
    CREATED_DIR=1
  else
    require_dir
    if [[ -e $SQORM_TEST_DIR/$MARKER ]]; then
      die "$SQORM_TEST_DIR already holds test servers; run 'stop' first"
    fi
    if [[ -d $SQORM_TEST_DIR ]] && [[ -n $(ls -A "$SQORM_TEST_DIR") ]]; then
      die "$SQORM_TEST_DIR is not empty; refusing to use it"
    fi
    mkdir -p "$SQORM_TEST_DIR"
  fi
  export SQORM_TEST_DIR
  echo "$$ $(date '+%F %T')" >"$SQORM_TEST_DIR/$MARKER"
  trap on_start_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP

  # The service accounts must be able to traverse the directory.
  chmod 755 "$SQORM_TEST_DIR"
  cd "$SQORM_TEST_DIR"
  if is_root; then
    local u users=()
    if has_family mysql || has_family galera; then users+=(mysql); fi
    if has_family postgres; then users+=(postgres); fi
    for u in "${users[@]}"; do
      runuser -u "$u" -- test -x "$SQORM_TEST_DIR" ||
        die "OS user $u cannot reach $SQORM_TEST_DIR (check parent directory permissions)"
    done
  fi
  log "starting test servers (${FAMILIES[*]}) in $SQORM_TEST_DIR"

  make_tls

  # The units to start and their ports. The four original servers take
  # kernel-chosen ports and move if one is taken; the others get ports
  # below the ephemeral range that they keep (see pick_fixed_ports).
  local units=() ports=() moving=() fixed=() inst i
  has_family mysql && moving+=(mysql mysql-plain)
  has_family postgres && moving+=(postgres postgres-plain)
  has_family pgbouncer && fixed+=(pgbouncer)
  has_family mysql-replica && fixed+=(mysql-replica)
  has_family postgres-standby && fixed+=(postgres-standby)
  local nfixed=${#fixed[@]}
  has_family galera && nfixed=$((nfixed + 12))
  if ((${#moving[@]})); then
    mapfile -t ports < <(pick_ports "${#moving[@]}")
    ((${#ports[@]} == ${#moving[@]})) || die "could not pick free ports"
  fi
  units=("${moving[@]}")
  if ((nfixed)); then
    local fports=()
    mapfile -t fports < <(pick_fixed_ports "$nfixed")
    ((${#fports[@]} == nfixed)) || die "could not pick free ports"
    for i in "${!fixed[@]}"; do
      units+=("${fixed[$i]}")
      ports+=("${fports[$i]}")
    done
    if has_family galera; then
      units+=(galera)
      ports+=("$(IFS=,; echo "${fports[*]:${#fixed[@]}:12}")")
    fi
  fi

  # Bring the units up in parallel; each writes its own logs, and those
  # that need another one wait for it (state_wait). With job control on
  # (set -m) each job gets its own process group, so that an interrupted
  # start can end a job together with its initdb/pg_ctl/etc.
  set -m
  for i in "${!units[@]}"; do
    unit_job "${units[$i]}" "${ports[$i]}" </dev/null &
    START_JOBS+=($!)
  done
  set +m
  # Fail as soon as any unit fails (the EXIT trap ends the others).
  local pending=("${!START_JOBS[@]}") left pid
  while ((${#pending[@]})); do
    left=()
    for i in "${pending[@]}"; do
      pid=${START_JOBS[$i]}
      if pid_alive "$pid"; then
        left+=("$i")
      elif ! wait "$pid"; then
        die "could not start: ${units[$i]}"
      fi
    done
    pending=("${left[@]}")
    ((${#pending[@]} == 0)) || sleep 0.2
  done
  START_JOBS=()

  write_env
  START_OK=1
  log "all up in $((SECONDS - t0))s; to use them: source $SQORM_TEST_DIR/env.sh"
  echo "$SQORM_TEST_DIR"
}

# subcommand_pids: other runs of this script (restart, kill, replication)
# working on this SQORM_TEST_DIR.
subcommand_pids() {
  local f p comm arg sub env=() args=()
  for f in /proc/[0-9]*/comm; do
    { read -r comm <"$f"; } 2>/dev/null || continue
    [[ $comm == bash || $comm == test-servers.sh ]] || continue
    p=${f#/proc/}
    p=${p%/comm}
    ((p != $$ && p != BASHPID)) || continue
    { mapfile -d '' -t args <"/proc/$p/cmdline"; } 2>/dev/null || continue
    sub=""
    for arg in "${args[@]}"; do
      if [[ -n $sub ]]; then sub=$arg; break; fi
      [[ $arg == */test-servers.sh || $arg == test-servers.sh ]] && sub=next
    done
    [[ $sub == restart || $sub == kill || $sub == replication ]] || continue
    { mapfile -d '' -t env <"/proc/$p/environ"; } 2>/dev/null || continue
    for arg in "${env[@]}"; do
      if [[ $arg == "SQORM_TEST_DIR=$SQORM_TEST_DIR" ]]; then
        pid_alive "$p" && echo "$p"
        break
      fi
    done
  done
}

cmd_stop() {
  require_dir
  if [[ ! -d $SQORM_TEST_DIR ]]; then
    log "$SQORM_TEST_DIR does not exist; nothing to stop"
    return 0
  fi
  if [[ ! -f $SQORM_TEST_DIR/$MARKER ]]; then
    # Not ours (or start never got going): remove only if empty.
    rmdir "$SQORM_TEST_DIR" 2>/dev/null ||
      die "$SQORM_TEST_DIR was not created by this script; not removing it"
    return 0
  fi
  # A restart still running (say a test started one in the background and
  # was interrupted) must not bring a server back behind our back.
  local others
  others=$(subcommand_pids)
  if [[ -n $others ]]; then
    log "ending test-servers.sh subcommands still running here: ${others//$'\n'/ }"
    # shellcheck disable=SC2086
    terminate $others || true
  fi
  stop_all
  cd /
  if [[ ${SQORM_TEST_KEEP:-0} == 1 ]]; then
    log "servers stopped; keeping $SQORM_TEST_DIR (SQORM_TEST_KEEP=1)"
  else
    # A second try in case a dying process was still writing a file.
    rm -rf "$SQORM_TEST_DIR" 2>/dev/null || { sleep 0.5; rm -rf "$SQORM_TEST_DIR"; }
    log "servers stopped; removed $SQORM_TEST_DIR"
  fi
}

# instance_arg NAME: the instance a restart/kill argument names (the
# family names mysql/mariadb and postgres/postgresql/pg mean the TLS
# server, as before).
instance_arg() {
  case ${1:-} in
    mariadb) echo mysql ;;
    postgresql | pg) echo postgres ;;
    pg-standby) echo postgres-standby ;;
    *)
      local inst
      for inst in "${ALL_INSTANCES[@]}"; do
        if [[ $1 == "$inst" ]]; then echo "$inst"; return 0; fi
      done
      return 1
      ;;
  esac
}

# tools_for INSTANCE: the family find_tools needs for one instance.
tools_for() {
  if is_galera "$1"; then echo galera; else family_of "$1"; fi
}

cmd_restart() {
  local inst
  require_dir
  inst=$(instance_arg "${1:-}") ||
    die "usage: $0 restart $(IFS='|'; echo "${ALL_INSTANCES[*]}")"
  [[ -d $SQORM_TEST_DIR/$inst ]] || die "no $inst server in $SQORM_TEST_DIR"
  find_tools "$(tools_for "$inst")"
  cd "$SQORM_TEST_DIR"
  local t=$SECONDS
  log "restarting $inst on port $(<"$SQORM_TEST_DIR/$inst/port")"
  instance_stop "$inst"
  # What a killed server leaves running (e.g. a Galera node's state
  # transfer script) would get in the way of the new one.
  local left
  left=$(procs_in "$SQORM_TEST_DIR/$inst")
  if [[ -n $left ]]; then
    log "$inst: ending leftover processes: ${left//$'\n'/ }"
    # shellcheck disable=SC2086
    terminate $left || true
  fi
  # Same configuration, data and port; no retry on another port here.
  instance_launch "$inst" || die "restart of $inst failed"
  log "$inst is back up after $((SECONDS - t))s"
}

cmd_kill() {
  local inst pids
  require_dir
  inst=$(instance_arg "${1:-}") ||
    die "usage: $0 kill $(IFS='|'; echo "${ALL_INSTANCES[*]}")"
  [[ -d $SQORM_TEST_DIR/$inst ]] || die "no $inst server in $SQORM_TEST_DIR"
  pids=$(instance_pids "$inst")
  if [[ -z $pids ]]; then
    log "$inst is not running"
    return 0
  fi
  log "killing $inst (pid ${pids// /, }) with SIGKILL"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  # shellcheck disable=SC2086
  wait_gone 10 $pids || die "$inst did not die"
}

cmd_replication() {
  local action=${1:-} fam=${2:-} problem
  require_dir
  case $fam in
    mysql | mariadb) fam=mysql ;;
    postgres | postgresql | pg) fam=postgres ;;
    *) die "usage: $0 replication pause|resume|sync|status mysql|postgres" ;;
  esac
  local replica=mysql-replica
  [[ $fam == postgres ]] && replica=postgres-standby
  [[ -d $SQORM_TEST_DIR/$replica ]] || die "no $replica in $SQORM_TEST_DIR"
  find_tools "$fam"
  cd "$SQORM_TEST_DIR"
  case $fam:$action in
    mysql:pause)
      mysql_root_sql mysql-replica "STOP SLAVE SQL_THREAD" || die "could not pause $replica"
      ;;
    mysql:resume)
      mysql_root_sql mysql-replica "START SLAVE SQL_THREAD" || die "could not resume $replica"
      ;;
    mysql:sync) mysql_replica_sync "$START_TIMEOUT" || die "$replica did not catch up" ;;
    mysql:status)
      problem=$(mysql_replica_problem)
      echo "${problem:-running}"
      [[ -z $problem || $problem == paused ]]
      ;;
    postgres:pause)
      pg_sql postgres-standby "SELECT pg_wal_replay_pause()" >/dev/null ||
        die "could not pause $replica"
      ;;
    postgres:resume)
      pg_sql postgres-standby "SELECT pg_wal_replay_resume()" >/dev/null ||
        die "could not resume $replica"
      ;;
    postgres:sync) pg_standby_sync "$START_TIMEOUT" || die "$replica did not catch up" ;;
    postgres:status)
      problem=$(pg_standby_problem)
      echo "${problem:-running}"
      [[ -z $problem || $problem == paused ]]
      ;;
    *) die "usage: $0 replication pause|resume|sync|status mysql|postgres" ;;
  esac
}

# rss_kib PID...: total resident memory of the processes, in KiB.
rss_kib() {
  local pid kb total=0
  for pid in "$@"; do
    kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

cmd_status() {
  require_dir
  [[ -f $SQORM_TEST_DIR/$MARKER ]] || die "no test servers in $SQORM_TEST_DIR"
  local inst port state all_up=1 any=0 extra
  for inst in $(present_instances); do
    any=1
    port=$(cat "$SQORM_TEST_DIR/$inst/port" 2>/dev/null || echo '?')
    extra=""
    if instance_up "$inst"; then
      state=up
      if is_galera "$inst"; then extra=" $(galera_state "$inst")"; fi
    else
      state=down
      all_up=0
    fi
    printf '%-17s %-4s %s:%s %s%s\n' "$inst" "$state" "$HOST" "$port" \
      "$([[ $(uses_tls "$inst") == 1 ]] && echo tls || echo no-tls)" "$extra"
  done
  if ((any)); then
    local pids
    pids=$(stray_pids)
    # shellcheck disable=SC2086
    printf 'memory: %d MiB resident in %d processes\n' \
      $(($(rss_kib $pids) / 1024)) "$(wc -w <<<"$pids")"
  else
    echo "no servers"
  fi
  ((all_up))
}

main() {
  (($#)) || usage
  local sub=$1
  shift
  case $sub in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    kill) cmd_kill "$@" ;;
    replication) cmd_replication "$@" ;;
    status) cmd_status "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
