#!/usr/bin/env bash
# test.sh -- README command 2: install everything, build (plain, ASan+UBSan,
# TSan, the fuzzers), start throwaway MariaDB and PostgreSQL servers with TLS on
# 127.0.0.1 (and PgBouncer, a MariaDB replica, a PostgreSQL standby and a
# Galera cluster: scripts/test-servers.sh), run the whole suite on sqlite,
# mysql and postgres, stop the servers (also when tests fail). Ends with
# "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --all
echo "==> building build/ (RelWithDebInfo)"
bash scripts/build.sh build
echo "==> building build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer)"
bash scripts/build.sh build-asan -DSQORM_SANITIZE=ON
echo "==> building build-tsan/ (ThreadSanitizer)"
bash scripts/build.sh build-tsan -DSQORM_TSAN=ON
echo "==> building build-fuzz/ (libFuzzer fuzzers, clang)"
bash scripts/fuzz.sh --build
# run-tests.sh writes its count line to $SQORM_RESULT_FILE; it is printed
# again after the servers are stopped, so the count is the last line.
export SQORM_RESULT_FILE
SQORM_RESULT_FILE=$(mktemp /tmp/sqorm-result.XXXXXX)
trap 'rm -f "$SQORM_RESULT_FILE"' EXIT
rc=0
bash scripts/with-test-servers.sh bash scripts/run-tests.sh || rc=$?
if [[ -s $SQORM_RESULT_FILE ]]; then
  cat "$SQORM_RESULT_FILE"
else
  echo "the test servers or the test runner failed before counting (exit $rc)"
  echo "0 passed, 1 failed"
  ((rc != 0)) || rc=1
fi
exit "$rc"
