#!/usr/bin/env bash
#
# test-servers.sh -- throwaway MariaDB and PostgreSQL servers for sqorm's tests.
#
# Usage:
#   scripts/test-servers.sh start                     start servers, print dir
#   scripts/test-servers.sh stop                      stop servers, remove dir
#   scripts/test-servers.sh restart mysql|postgres    bounce the TLS server
#   scripts/test-servers.sh status                    show what is up
#
# All state (certificates, data directories, sockets, logs, env.sh) lives in
# one directory, $SQORM_TEST_DIR. `start` creates it with mktemp under /tmp
# when SQORM_TEST_DIR is unset; every other subcommand requires it. Several
# runs can coexist: each has its own directory and its own free ports.
#
# `start` brings up, in parallel:
#   mysql           MariaDB with TLS (certificate signed by a throwaway CA)
#   mysql-plain     MariaDB without TLS
#   postgres        PostgreSQL 15 with TLS
#   postgres-plain  PostgreSQL 15 without TLS
# then writes $SQORM_TEST_DIR/env.sh (export lines for the tests) and prints
# the directory path as the last line on stdout. Everything else goes to
# stderr.
#
# Environment:
#   SQORM_TEST_DIR            state directory (see above)
#   SQORM_TEST_SERVERS        families to start, default "mysql,postgres"
#   SQORM_TEST_START_TIMEOUT  seconds to wait for each server (default 60)
#   SQORM_TEST_STOP_TIMEOUT   seconds before SIGKILL on stop (default 10)
#   SQORM_TEST_KEEP=1         `stop` leaves the directory (logs) in place
#   SQORM_PG_BIN              PostgreSQL bin dir (/usr/lib/postgresql/15/bin)
#
# Works as root (servers run as the `mysql` and `postgres` OS users) and as
# an ordinary user (servers run as that user). Needs mariadb-server,
# postgresql-15 and openssl; no systemd or service commands are used.

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

# Instance names double as subdirectory names of $SQORM_TEST_DIR.
readonly ALL_INSTANCES=(mysql mysql-plain postgres postgres-plain)

PG_BIN="${SQORM_PG_BIN:-/usr/lib/postgresql/15/bin}"
START_TIMEOUT="${SQORM_TEST_START_TIMEOUT:-60}"
STOP_TIMEOUT="${SQORM_TEST_STOP_TIMEOUT:-10}"

# Our admin connections must not be steered by the caller's client settings
# (PGSSLMODE, PGHOST, MYSQL_PWD, MYSQL_UNIX_PORT, ...). This only affects
# this script's own process, not the tests.
while read -r var; do
  unset "$var"
done < <(compgen -e | grep -E '^(PG|MYSQL_)' || true)

# Locale-independent tool output and no warnings about missing locales.
export LC_ALL=C

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//' >&2
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
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# pid_mentions PID STRING: the process's command line contains STRING. Used
# to make sure a PID read from a file still belongs to one of our servers.
pid_mentions() {
  local cmdline
  cmdline=$( { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
  [[ $cmdline == *"$2"* ]]
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
# pg_ctl, initdb, runuser or mariadb-install-db whose command line mentions
# DIR, or whose working directory is inside it (PostgreSQL's children keep
# the data directory as cwd but not in their command line).
procs_in() {
  local p exe cwd dir=${1%/}
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
    exe=${exe% (deleted)}
    case ${exe##*/} in
      mariadbd | mysqld | postgres | pg_ctl | initdb | runuser) ;;
      *) pid_mentions "$p" mariadb-install-db || continue ;;
    esac
    pid_alive "$p" || continue
    cwd=$(readlink "/proc/$p/cwd" 2>/dev/null || true)
    if [[ $cwd == "$dir"/* ]] || pid_mentions "$p" "$dir/"; then
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

# require_dir: SQORM_TEST_DIR must be set (all subcommands but start).
require_dir() {
  [[ -n ${SQORM_TEST_DIR:-} ]] ||
    die "SQORM_TEST_DIR is not set (source the env.sh printed by 'start')"
  [[ $SQORM_TEST_DIR == /* ]] || die "SQORM_TEST_DIR must be an absolute path"
}

# family_of INSTANCE: mysql or postgres.
family_of() {
  case $1 in
    mysql*) echo mysql ;;
    postgres*) echo postgres ;;
  esac
}

# uses_tls INSTANCE: 1 for the TLS variants, 0 for the -plain ones.
uses_tls() {
  [[ $1 == *-plain ]] && echo 0 || echo 1
}

# find_tools: locate the server binaries, with a helpful message if missing.
find_tools() {
  local want_mysql=$1 want_pg=$2
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
  if ((want_pg)); then
    [[ -x $PG_BIN/postgres && -x $PG_BIN/initdb ]] ||
      die "PostgreSQL 15 not found in $PG_BIN (apt-get install -y postgresql-15)"
    if is_root; then
      id postgres >/dev/null 2>&1 || die "OS user 'postgres' missing (apt-get install -y postgresql-15)"
    fi
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

# mysql_launch INSTANCE: start mariadbd and wait until it answers.
# Returns 0 when up, 3 when the port was already taken, 1 otherwise.
# (Called in an `if`/`||` context, so errexit is off: check explicitly.)
mysql_launch() {
  local inst=$1 dir="$SQORM_TEST_DIR/$1" offset pid deadline
  offset=$(file_size "$dir/server.log")
  rm -f "$dir/mysqld.pid"
  # setsid: own session, so a Ctrl-C in the terminal does not reach it and
  # it survives this script. All output goes to files: an inherited stdout
  # would keep a caller's $(...) waiting forever.
  (
    cd "$dir" || exit 1
    exec setsid "$MARIADBD" --defaults-file="$dir/my.cnf" \
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

  # System tables; root@localhost gets an empty password ("normal"), which
  # is fine for a loopback-only throwaway server. No test db, no anonymous
  # users.
  local install_args=(--defaults-file="$dir/my.cnf"
    --auth-root-authentication-method=normal --skip-test-db
    --skip-name-resolve)
  if is_root; then install_args+=(--user=mysql); fi
  if ! mariadb-install-db "${install_args[@]}" >"$dir/install.log" 2>&1; then
    log "$inst: mariadb-install-db failed"
    show_logs "$inst" "$dir/install.log" "$dir/server.log"
    return 1
  fi

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

  # The test database and user. The user may connect with or without TLS;
  # ALL ON *.* includes PROCESS and CONNECTION ADMIN (processlist, KILL).
  local host sql="CREATE DATABASE IF NOT EXISTS $DB_NAME
    CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  for host in % 127.0.0.1 localhost; do
    sql+="CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASSWORD';"
    sql+="GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'$host' WITH GRANT OPTION;"
  done
  if ! mysql_root_sql "$inst" "$sql" >>"$dir/install.log" 2>&1; then
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
  local dir="$SQORM_TEST_DIR/$1" f pid pids=()
  for f in "$dir/mysqld.pid" "$dir/launcher.pid"; do
    pid=$(cat "$f" 2>/dev/null || true)
    if pid_alive "$pid" && pid_mentions "$pid" "$dir/"; then
      [[ " ${pids[*]} " == *" $pid "* ]] || pids+=("$pid")
    fi
  done
  terminate "${pids[@]}"
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

# ---------------------------------------------------------------------------
# Per-instance dispatch
# ---------------------------------------------------------------------------

instance_setup() {
  case $(family_of "$1") in
    mysql) mysql_setup "$1" "$2" ;;
    postgres) pg_setup "$1" "$2" ;;
  esac
}

instance_stop() {
  case $(family_of "$1") in
    mysql) mysql_stop "$1" ;;
    postgres) pg_stop "$1" ;;
  esac
}

instance_up() {
  case $(family_of "$1") in
    mysql) mysql_ping "$1" ;;
    postgres) pg_ready "$1" ;;
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

# write_env: $SQORM_TEST_DIR/env.sh for the tests (only families started).
write_env() {
  local d=$SQORM_TEST_DIR want_mysql=$1 want_pg=$2 families=()
  ((want_mysql)) && families+=(mysql)
  ((want_pg)) && families+=(postgres)
  # Single-quoted values; a ' inside would become '\''.
  kv() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }
  {
    echo "# Generated by scripts/test-servers.sh start; source it."
    kv SQORM_TEST_DIR "$d"
    kv SQORM_TEST_SERVERS "$(IFS=,; echo "${families[*]}")"
    kv SQORM_TEST_CA "$d/ca.pem"
    kv SQORM_TEST_WRONG_CA "$d/wrong-ca.pem"
    kv SQORM_TEST_CLIENT_CERT "$d/client.pem"
    kv SQORM_TEST_CLIENT_KEY "$d/client.key"
    if ((want_mysql)); then
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
    if ((want_pg)); then
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
  } >"$d/env.sh.tmp"
  chmod 644 "$d/env.sh.tmp"
  mv "$d/env.sh.tmp" "$d/env.sh"
}

# Set by cmd_start; used by its EXIT trap.
START_OK=0
CREATED_DIR=0
START_JOBS=()

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
  local t0=$SECONDS want_mysql=0 want_pg=0 fam
  local families
  IFS=', ' read -r -a families <<<"${SQORM_TEST_SERVERS:-mysql,postgres}"
  for fam in "${families[@]}"; do
    case $fam in
      mysql | mariadb) want_mysql=1 ;;
      postgres | postgresql | pg) want_pg=1 ;;
      "") ;;
      *) die "SQORM_TEST_SERVERS: unknown family '$fam' (use mysql,postgres)" ;;
    esac
  done
  find_tools "$want_mysql" "$want_pg"

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
    local u
    for u in $( ((want_mysql)) && echo mysql) $( ((want_pg)) && echo postgres); do
      runuser -u "$u" -- test -x "$SQORM_TEST_DIR" ||
        die "OS user $u cannot reach $SQORM_TEST_DIR (check parent directory permissions)"
    done
  fi
  log "starting test servers in $SQORM_TEST_DIR"

  make_tls

  # Which instances, and a distinct free port for each.
  local instances=() ports=() inst i
  ((want_mysql)) && instances+=(mysql mysql-plain)
  ((want_pg)) && instances+=(postgres postgres-plain)
  if ((${#instances[@]})); then
    mapfile -t ports < <(pick_ports "${#instances[@]}")
    ((${#ports[@]} == ${#instances[@]})) || die "could not pick free ports"
  fi

  # Bring the instances up in parallel; each writes its own logs. With job
  # control on (set -m) each job gets its own process group, so that an
  # interrupted start can end a job together with its initdb/pg_ctl/etc.
  set -m
  for i in "${!instances[@]}"; do
    instance_setup "${instances[$i]}" "${ports[$i]}" </dev/null &
    START_JOBS+=($!)
  done
  set +m
  local failed=()
  for i in "${!START_JOBS[@]}"; do
    wait "${START_JOBS[$i]}" || failed+=("${instances[$i]}")
  done
  START_JOBS=()
  ((${#failed[@]} == 0)) || die "could not start: ${failed[*]}"

  write_env "$want_mysql" "$want_pg"
  START_OK=1
  log "all up in $((SECONDS - t0))s; to use them: source $SQORM_TEST_DIR/env.sh"
  echo "$SQORM_TEST_DIR"
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

cmd_restart() {
  local fam=${1:-} inst rc
  require_dir
  case $fam in
    mysql | mariadb) inst=mysql ;;
    postgres | postgresql | pg) inst=postgres ;;
    *) die "usage: $0 restart mysql|postgres" ;;
  esac
  [[ -d $SQORM_TEST_DIR/$inst ]] || die "no $inst server in $SQORM_TEST_DIR"
  find_tools "$([[ $inst == mysql ]] && echo 1 || echo 0)" \
    "$([[ $inst == postgres ]] && echo 1 || echo 0)"
  cd "$SQORM_TEST_DIR"
  log "restarting $inst on port $(<"$SQORM_TEST_DIR/$inst/port")"
  instance_stop "$inst"
  # Same configuration, data and port; no retry on another port here.
  rc=0
  case $inst in
    mysql) mysql_launch "$inst" || rc=$? ;;
    postgres) pg_launch "$inst" || rc=$? ;;
  esac
  if ((rc != 0)); then
    ((rc == 3)) && log "$inst: port $(<"$SQORM_TEST_DIR/$inst/port") was taken meanwhile"
    show_logs "$inst" "$SQORM_TEST_DIR/$inst/server.log"
    die "restart of $inst failed"
  fi
  # Same end-to-end TLS login check as after the first start.
  case $inst in
    mysql) mysql_check "$inst" || die "restart of $inst: server up but check failed" ;;
    postgres) pg_check "$inst" || die "restart of $inst: server up but check failed" ;;
  esac
  log "$inst is back up"
}

cmd_status() {
  require_dir
  [[ -f $SQORM_TEST_DIR/$MARKER ]] || die "no test servers in $SQORM_TEST_DIR"
  local inst port state all_up=1 any=0
  for inst in $(present_instances); do
    any=1
    port=$(cat "$SQORM_TEST_DIR/$inst/port" 2>/dev/null || echo '?')
    if instance_up "$inst"; then
      state=up
    else
      state=down
      all_up=0
    fi
    printf '%-15s %-4s %s:%s %s\n' "$inst" "$state" "$HOST" "$port" \
      "$([[ $(uses_tls "$inst") == 1 ]] && echo tls || echo no-tls)"
  done
  ((any)) || echo "no servers"
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
    status) cmd_status "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
