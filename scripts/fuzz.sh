#!/usr/bin/env bash
# fuzz.sh -- builds the libFuzzer targets (fuzz/fuzz_*.c) into build-fuzz/
# and runs them, each for a fixed time. See docs/reliability.md, "Fuzzing".
#
#   scripts/fuzz.sh                     build, then every target for 60 s
#   scripts/fuzz.sh stmt 3600           build, then one target for an hour
#   scripts/fuzz.sh all 10              build, then every target for 10 s
#   scripts/fuzz.sh --build             build only
#   scripts/fuzz.sh --list              print the target names
#   options before the target:
#     --no-build   use build-fuzz/ as it is (run-tests.sh: test.sh built it)
#     --fresh      new inputs go to a scratch directory that is removed
#                  afterwards (default: build-fuzz/corpus/<target>/, kept,
#                  so long runs by hand build on each other)
#     --jobs N     run N copies of each target in parallel (libFuzzer -fork)
#
# Each run starts from the checked-in seeds (fuzz/corpus/<target>/, which
# also holds every input that once crashed a target, so each run replays
# them) and uses fuzz/dict/<target>.dict when there is one. A crash,
# sanitizer report, leak or broken invariant stops the target, saves the
# input under build-fuzz/crashes/<target>/ and makes the exit status 1.
# The last lines give, per target, the executions and crashes.
#
# Environment: SQORM_FUZZ_BUILD (default build-fuzz), CC (default clang-14,
# else clang), SQORM_FUZZ_ARGS (extra libFuzzer flags).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${SQORM_FUZZ_BUILD:-$root/build-fuzz}
[[ $build = /* ]] || build=$root/$build

targets() {
  for f in fuzz/fuzz_*.c; do
    f=${f#fuzz/fuzz_}
    echo "${f%.c}"
  done
}

do_build=1 fresh=0 jobs=1 only_build=0
while (($#)); do
  case "$1" in
    --build) only_build=1 ;;
    --no-build) do_build=0 ;;
    --fresh) fresh=1 ;;
    --jobs) jobs=$2; shift ;;
    --list) targets; exit 0 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    --*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
which=${1:-all}
secs=${2:-60}

if ((do_build)); then
  cc=${CC:-}
  if [[ -z $cc ]]; then
    if command -v clang-14 >/dev/null; then cc=clang-14; else cc=clang; fi
  fi
  if ! command -v "$cc" >/dev/null; then
    echo "fuzz.sh: $cc not found (bash scripts/install-deps.sh --all installs clang-14)" >&2
    exit 1
  fi
  echo "==> building the fuzzers in $build with $cc"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" -DSQORM_FUZZ=ON \
    -DSQORM_BUILD_TESTS=OFF -DSQORM_BUILD_EXAMPLES=OFF >/dev/null || exit 1
  cmake --build "$build" -j"$(nproc)" --target fuzzers -- --no-print-directory >/dev/null || {
    cmake --build "$build" -j1 --target fuzzers -- --no-print-directory
    exit 1
  }
fi
((only_build)) && exit 0

if [[ $which == all ]]; then
  list=$(targets)
else
  list=$which
fi

# A symbolizer makes sanitizer reports readable.
for s in llvm-symbolizer-14 llvm-symbolizer; do
  if command -v "$s" >/dev/null; then
    export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v "$s")}
    break
  fi
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

status=0
summary=()
for t in $list; do
  bin=$build/fuzz/fuzz_$t
  if [[ ! -x $bin ]]; then
    echo "fuzz.sh: no fuzzer $bin (targets: $(targets | tr '\n' ' '))" >&2
    status=1
    continue
  fi
  seeds=$root/fuzz/corpus/$t
  mkdir -p "$seeds"
  if ((fresh)); then
    work=$(mktemp -d "/tmp/sqorm-fuzz-$t.XXXXXX")
  else
    work=$build/corpus/$t
    mkdir -p "$work"
  fi
  art=$build/crashes/$t
  mkdir -p "$art"
  log=$build/fuzz-$t.log
  args=(-max_total_time="$secs" -max_len=4096 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$art/")
  [[ -f $root/fuzz/dict/$t.dict ]] && args+=(-dict="$root/fuzz/dict/$t.dict")
  ((jobs > 1)) && args+=(-fork="$jobs" -ignore_crashes=0)
  # shellcheck disable=SC2086
  echo "==> fuzz $t for ${secs}s (log: $log)"
  "$bin" "${args[@]}" ${SQORM_FUZZ_ARGS:-} "$work" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -E '^stat::number_of_executed_units:' "$log" | tail -1 | awk '{print $2}')
  [[ -n $execs ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  crashes=0
  if ((rc != 0)); then
    crashes=1
    status=1
    grep -aE 'ERROR: |FUZZ INVARIANT|SUMMARY|Test unit written' "$log" | head -20
    echo "fuzz $t: FAILED (exit $rc); the input is in $art/ - see $log"
  fi
  ((fresh)) && rm -rf "$work"
  line="fuzz $t: ${execs:-0} executions in ${secs}s, $crashes crashes"
  summary+=("$line")
  echo "$line"
done
echo
printf '%s\n' "${summary[@]}"
exit $status
