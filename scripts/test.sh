#!/usr/bin/env bash
# test.sh -- README command 2: install everything, build (plain, ASan+UBSan,
# TSan), start throwaway MariaDB and PostgreSQL servers with TLS on
# 127.0.0.1, run the whole suite on sqlite, mysql and postgres, stop the
# servers (also when tests fail). Ends with "N passed, N failed".
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
exec bash scripts/with-test-servers.sh bash scripts/run-tests.sh
