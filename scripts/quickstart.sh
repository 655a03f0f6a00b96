#!/usr/bin/env bash
# quickstart.sh -- README command 1: install, build, run the quickstart on
# embedded SQLite. Idempotent; fails loudly.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
trap 'echo "quickstart: FAILED (see the messages above)" >&2' ERR
bash scripts/install-deps.sh --runtime
bash scripts/build.sh build
source scripts/env.sh build
lua5.4 examples/quickstart.lua
