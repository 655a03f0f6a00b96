#!/usr/bin/env bash
# build.sh [BUILD_DIR] [cmake -D options...] -- configure and build sqorm.
# Default BUILD_DIR is ./build. Prints the LUA_PATH / LUA_CPATH to use.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$root/build}
shift || true
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" -- --no-print-directory
