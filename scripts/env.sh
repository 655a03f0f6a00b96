# env.sh -- `source scripts/env.sh [BUILD_DIR]` makes `require "sqorm"`
# load the module from the build tree (default ./build).
_sqorm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_sqorm_build=${1:-$_sqorm_root/build}
# Absolute, so `require "sqorm"` still works after a later cd.
case $_sqorm_build in
  /*) ;;
  *) _sqorm_build=$PWD/$_sqorm_build ;;
esac
_sqorm_build=$(cd "$_sqorm_build" 2>/dev/null && pwd || printf '%s' "$_sqorm_build")
export LUA_PATH="$_sqorm_build/share/?.lua;$_sqorm_build/share/?/init.lua;$_sqorm_root/?.lua;;"
export LUA_CPATH="$_sqorm_build/lib/?.so;;"
unset _sqorm_root _sqorm_build
