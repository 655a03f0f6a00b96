#!/usr/bin/env bash
# rock-check.sh -- `luarocks make` of this checkout (the files git tracks,
# plus new ones not ignored) in a scratch copy, into a scratch tree, for
# Lua 5.4; then `require "sqorm"` from that tree with lua5.4.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v luarocks >/dev/null || { echo "rock-check: luarocks is not installed (scripts/install-deps.sh --all)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/sqorm-rock.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
(cd "$root" && git ls-files -z -co --exclude-standard | xargs -0 tar -cf - 2>/dev/null) | (cd "$tmp/src" && tar -xf -)
rockspec=$(cd "$tmp/src" && ls sqorm-*.rockspec)
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
(cd "$tmp/src" && luarocks --lua-version=5.4 make --tree "$tmp/tree" "$rockspec") >"$tmp/make.log" 2>&1 ||
  { tail -n 40 "$tmp/make.log" >&2; echo "rock-check: luarocks make failed" >&2; exit 1; }
LUA_PATH="$tmp/tree/share/lua/5.4/?.lua;$tmp/tree/share/lua/5.4/?/init.lua" \
LUA_CPATH="$tmp/tree/lib/lua/5.4/?.so" \
  lua5.4 -e '
    local s = require "sqorm"
    assert(package.searchpath("sqorm.core", package.cpath):find("/tree/", 1, true))
    local db = s.connect("sqlite::memory:")
    assert(db:query("SELECT 1 AS x")[1].x == 1)
    print("rock-check: sqorm " .. s.VERSION .. " from the rock works")'
