#!/usr/bin/env bash
# run-tests.sh -- the suite, against servers that are already up (run it
# through scripts/with-test-servers.sh; scripts/test.sh does). Each step is
# counted; the last line is "N passed, N failed" and the exit status is
# non-zero when anything failed.
#
#   1. ctest: C unit tests of the core and the driver tests (build/)
#   2. busted: every spec in spec/ on sqlite, mysql and postgres
#   3. the examples, each checked for what it claims to print
#   4. the same ctest and busted suite under ASan+UBSan (build-asan/)
#   5. the threaded pool and executor tests and the embedding example under TSan (build-tsan/)
#   6. a smoke run of the benchmark (SCALE=0.01)
#   7. every fuzzer (build-fuzz/, fuzz/) for SQORM_FUZZ_SECONDS (default 10) each,
#      and the Lua API fuzzer under ASan+UBSan+LeakSanitizer (step 4)
# and single checks: the install into a scratch prefix, a C host built
# outside the tree against it (pkg-config and find_package), `luarocks
# make` into a scratch tree, the API reference (every public function
# documented; the LDoc HTML builds), luacheck.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export SQORM_TEST_REQUIRE_SERVERS=1
out=$(mktemp -d /tmp/sqorm-results.XXXXXX)
passed=0
failed=0
failures=()

note() { printf '\n==> %s\n' "$*"; }

# ctest_step NAME BUILD_DIR [ctest args]: adds ctest's own counts.
ctest_step() {
  local name=$1 dir=$2
  shift 2
  note "$name: ctest in $dir"
  (cd "$dir" && ctest --output-on-failure --timeout 600 "$@") 2>&1 | tee "$out/$name.log"
  local line total nfail
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$out/$name.log" | tail -1)
  if [[ -z $line ]]; then
    failed=$((failed + 1)); failures+=("$name (ctest printed no summary)"); return
  fi
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  nfail=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
  # A configured server that a test could not reach is a failure here,
  # not a skip (ctest counts skips as passed).
  local nskip
  nskip=$(grep -cE '\(Skipped\)$' "$out/$name.log" || true)
  passed=$((passed + total - nfail - nskip))
  failed=$((failed + nfail + nskip))
  ((nfail + nskip == 0)) || failures+=("$name ($nfail failed, $nskip skipped C tests)")
}

# busted_step NAME BUILD_DIR [env...]: counts TAP "ok" / "not ok" lines.
busted_step() {
  local name=$1 dir=$2
  shift 2
  note "$name: busted spec/ with $dir"
  (
    source scripts/env.sh "$dir"
    env "$@" lua5.4 /usr/bin/busted -o TAP spec
  ) >"$out/$name.tap" 2>&1
  local rc=$?
  grep -vE '^ok ' "$out/$name.tap" | tail -n 400
  local ok nok
  ok=$(grep -cE '^ok ' "$out/$name.tap")
  nok=$(grep -cE '^not ok ' "$out/$name.tap")
  echo "$name: $ok ok, $nok not ok (busted exit $rc)"
  passed=$((passed + ok))
  failed=$((failed + nok))
  ((nok == 0)) || failures+=("$name ($nok specs)")
  if ((rc != 0 && nok == 0)); then
    failed=$((failed + 1)); failures+=("$name (busted exited $rc)")
  fi
}

# check_step NAME CMD...: one pass or fail for a command.
check_step() {
  local name=$1
  shift
  note "$name: $*"
  if "$@" 2>&1 | tee "$out/$name.log"; [[ ${PIPESTATUS[0]} == 0 ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); failures+=("$name")
  fi
}

ctest_step ctest build
busted_step busted build
# cmake --install into a scratch prefix laid out like /usr/local: Lua's
# default 5.4 paths relative to the prefix must find the module.
install_check() {
  local prefix
  prefix=$(mktemp -d)
  cmake --install build --prefix "$prefix" >/dev/null &&
    LUA_PATH="$prefix/share/lua/5.4/?.lua;$prefix/share/lua/5.4/?/init.lua" \
    LUA_CPATH="$prefix/lib/lua/5.4/?.so" \
    lua5.4 -e 'local s = require "sqorm"; local db = s.connect("sqlite::memory:")
      assert(db:query("SELECT 1 AS x")[1].x == 1); print("installed sqorm " .. s.VERSION .. " works")' &&
    LUA_PATH="$prefix/share/lua/5.4/?.lua;$prefix/share/lua/5.4/?/init.lua" \
    LUA_CPATH="$prefix/lib/lua/5.4/?.so" "$prefix/bin/sqorm" --help | grep -q '^usage: sqorm migrate' &&
    echo "installed sqorm command works"
  local rc=$?
  rm -rf "$prefix"
  return $rc
}
check_step install install_check
check_step c-host bash scripts/c-host-check.sh build
check_step rock bash scripts/rock-check.sh
check_step api-docs bash -c 'source scripts/env.sh build && lua5.4 scripts/check-docs.lua && bash scripts/docs.sh build/doc'
check_step luacheck luacheck --no-color lua examples spec doc/ref
if [[ -x scripts/run-examples.sh ]]; then
  check_step examples bash scripts/run-examples.sh build
fi
if [[ -d build-asan ]]; then
  ctest_step ctest-asan build-asan
  asan=$(gcc -print-file-name=libasan.so)
  ubsan=$(gcc -print-file-name=libubsan.so)
  # Lua itself is not instrumented; leak checking of the interpreter's own
  # exit path is noise, so LeakSanitizer runs in the C tests only.
  busted_step busted-asan build-asan LD_PRELOAD="$asan:$ubsan" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  # The Lua API fuzzer (fuzz/lua_api.lua): seeded random call sequences
  # with hostile values, under ASan+UBSan and LeakSanitizer (the
  # standalone interpreter closes its state at exit, so every object is
  # finalised and a leak is sqorm's).
  check_step lua-fuzz env LD_PRELOAD="$asan:$ubsan" LUA_PATH="$root/build-asan/share/?.lua;$root/build-asan/share/?/init.lua;;" \
    LUA_CPATH="$root/build-asan/lib/?.so;;" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    lua5.4 fuzz/lua_api.lua --seed 1 --seeds "${SQORM_LUA_FUZZ_SEEDS:-8}" --steps 2000 --seconds "${SQORM_LUA_FUZZ_SECONDS:-110}"
fi
if [[ -d build-tsan ]]; then
  # (not embed_server --async: the Lua errors its SQLite retries raise are
  # longjmps TSan's shadow stack can't follow - a CHECK failure, no race)
  ctest_step ctest-tsan build-tsan -R 'test_pool|test_exec|embed_server$|embed_server_(mysql|postgres)$|lua_async_host|c_async'
fi
check_step pool-bench-smoke build/bench/pool_bench 20000
if [[ -x bench/run.sh ]]; then
  check_step bench-smoke env SCALE=0.01 SQORM_BUILD="$root/build" bash bench/run.sh
fi
# Each fuzzer replays its seeds (and every input that once crashed it),
# then fuzzes for a fixed short time; one pass or fail per fuzzer.
if [[ -d build-fuzz/fuzz ]]; then
  for t in $(bash scripts/fuzz.sh --list); do
    check_step "fuzz-$t" bash scripts/fuzz.sh --no-build --fresh "$t" "${SQORM_FUZZ_SECONDS:-10}"
  done
fi

echo
if ((${#failures[@]})); then
  echo "FAILED: ${failures[*]}"
fi
echo "logs: $out"
echo "$passed passed, $failed failed"
[[ -z ${SQORM_RESULT_FILE:-} ]] || echo "$passed passed, $failed failed" >"$SQORM_RESULT_FILE"
((failed == 0))
