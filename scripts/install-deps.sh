#!/usr/bin/env bash
# install-deps.sh [--runtime|--all] -- install what sqorm needs on Debian 12.
#
#   --runtime   compilers, Lua 5.4, the client libraries (enough to build
#               and run sqorm on embedded SQLite)
#   --all       also busted, the MariaDB and PostgreSQL servers, PgBouncer,
#               the Galera wsrep provider (galera-4) with what its rsync
#               state transfer needs (rsync, ss from iproute2), openssl,
#               LuaSQL, gnuplot, lua-socket and SQLAlchemy (python3-sqlalchemy
#               with PyMySQL and psycopg2: a peer of the benchmarks),
#               luarocks (the rock check), LDoc with markdown (the API
#               reference) and luacheck, and clang-14 with its
#               libFuzzer/sanitizer runtime and llvm-symbolizer for the
#               fuzzers (scripts/fuzz.sh)
#
# luarocks, lua-ldoc and lua-check bring Lua 5.1 along, whose install
# takes over the `lua` and `luac` commands (Debian's alternatives); they
# are set back to 5.4 here. sqorm's scripts always call lua5.4.
#
# Idempotent: packages already present are left alone and apt-get update
# runs only when something is missing. Needs root (apt-get).
set -euo pipefail

mode=${1:---runtime}
runtime=(build-essential cmake pkg-config lua5.4 liblua5.4-dev libsqlite3-dev
         libmariadb-dev libpq-dev libssl-dev ca-certificates)
extra=(lua-busted mariadb-server mariadb-client postgresql postgresql-client openssl
       lua-sql-mysql lua-sql-postgres lua-sql-sqlite3 gnuplot-nox util-linux procps
       python3 valgrind pgbouncer galera-4 rsync iproute2 luarocks lua-ldoc lua-markdown lua-check
       lua-socket python3-sqlalchemy python3-sqlalchemy-ext python3-pymysql python3-psycopg2
       clang-14 libclang-rt-14-dev llvm-14)

case "$mode" in
  --runtime) pkgs=("${runtime[@]}") ;;
  --all) pkgs=("${runtime[@]}" "${extra[@]}") ;;
  *) echo "usage: $0 [--runtime|--all]" >&2; exit 2 ;;
esac

if ! command -v apt-get >/dev/null; then
  echo "install-deps: apt-get not found: this script is for Debian 12 (bookworm)" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# lua / luac stay Lua 5.4 whatever else brought another Lua.
keep_lua54() {
  [[ $(id -u) == 0 ]] && command -v update-alternatives >/dev/null || return 0
  local alt target
  for alt in lua-interpreter:/usr/bin/lua5.4 lua-compiler:/usr/bin/luac5.4; do
    target=${alt#*:}
    alt=${alt%%:*}
    [[ -x $target ]] || continue
    [[ $(readlink -f "/etc/alternatives/$alt" 2>/dev/null) == "$target" ]] && continue
    update-alternatives --set "$alt" "$target" >/dev/null 2>&1 || true
  done
}

if ((${#missing[@]} == 0)); then
  keep_lua54
  echo "install-deps: all ${#pkgs[@]} packages already installed" >&2
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postinst scripts would start the servers through invoke-rc.d; we
# never want system instances (the tests start throwaway ones), so policy-rc.d
# refuses service starts during this install only.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  made_policy=1
fi
trap '[[ $made_policy == 1 ]] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
keep_lua54
echo "install-deps: done" >&2
