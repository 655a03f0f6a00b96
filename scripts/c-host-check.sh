#!/usr/bin/env bash
# c-host-check.sh [BUILD_DIR] -- installs BUILD_DIR (default ./build) into
# a scratch prefix, then builds examples/c_host/main.c outside the tree
# against that prefix twice, with pkg-config (sqorm.pc) and with CMake's
# find_package(sqorm), and runs both. Fails when either does.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
tmp=$(mktemp -d /tmp/sqorm-c-host.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(find "$tmp/prefix" -name sqorm.pc -path '*/pkgconfig/*' | head -1)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"
echo "pkg-config: $(pkg-config --cflags --libs sqorm)"
# pkg-config: the rpath points at the scratch prefix (an install into a
# system directory needs none)
cc -Wall -Wextra -Werror -o "$tmp/c_host_pc" "$root/examples/c_host/main.c" \
  $(pkg-config --cflags --libs sqorm) -Wl,-rpath,"$(pkg-config --variable=libdir sqorm)"
"$tmp/c_host_pc" | tee "$tmp/pc.out"
# find_package(sqorm): the imported target sqorm::sqorm
cmake -S "$root/examples/c_host" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm" >/dev/null
"$tmp/cm/c_host" | tee "$tmp/cm.out"
for out in "$tmp/pc.out" "$tmp/cm.out"; do
  grep -qx 'bob has 200 coins' "$out" && grep -qx '2 rows' "$out" ||
    { echo "c-host-check: unexpected output in $out" >&2; exit 1; }
done
echo "c-host-check: built and ran with pkg-config and with find_package"
