#!/usr/bin/env bash
# docs.sh [OUT_DIR] -- builds the HTML API reference with LDoc (Debian's
# lua-ldoc, markdown through lua-markdown) from doc/ref/ into OUT_DIR
# (default build/doc). Any LDoc warning fails the build.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/doc}
case $out in /*) ;; *) out=$PWD/$out ;; esac
command -v ldoc >/dev/null || { echo "docs: ldoc is not installed (scripts/install-deps.sh --all)" >&2; exit 1; }
mkdir -p "$out"
cd "$root/doc"
# LDoc runs on its own Lua (5.1 on Debian): paths set for sqorm's Lua 5.4
# (scripts/env.sh, `luarocks path`) must not reach it.
log=$(env -u LUA_PATH -u LUA_CPATH -u LUA_INIT -u LUA_PATH_5_4 -u LUA_CPATH_5_4 \
  ldoc --fatalwarnings -c config.ld -d "$out" . 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
if grep -q 'falling back' <<<"$log"; then
  printf '%s\n' "$log" >&2
  echo "docs: no markdown formatter for LDoc (apt-get install lua-markdown)" >&2
  exit 1
fi
echo "docs: $out/index.html"
