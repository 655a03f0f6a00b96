#!/usr/bin/env bash
# install-deps.sh [--runtime|--all] -- install what sqorm needs on Debian 12.
#
#   --runtime   compilers, Lua 5.4, the client libraries (enough to build
#               and run sqorm on embedded SQLite)
#   --all       also busted, the MariaDB and PostgreSQL servers, openssl,
#               LuaSQL and gnuplot for the test suite and the benchmarks,
#               and clang-14 with its libFuzzer/sanitizer runtime and
#               llvm-symbolizer for the fuzzers (scripts/fuzz.sh)
#
# Idempotent: packages already present are left alone and apt-get update
# runs only when something is missing. Needs root (apt-get).
set -euo pipefail

mode=${1:---runtime}
runtime=(build-essential cmake pkg-config lua5.4 liblua5.4-dev libsqlite3-dev
         libmariadb-dev libpq-dev libssl-dev ca-certificates)
extra=(lua-busted mariadb-server mariadb-client postgresql postgresql-client openssl
       lua-sql-mysql lua-sql-postgres lua-sql-sqlite3 gnuplot-nox util-linux procps
       python3 valgrind clang-14 libclang-rt-14-dev llvm-14)

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
if ((${#missing[@]} == 0)); then
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
echo "install-deps: done" >&2
