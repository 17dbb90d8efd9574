#!/usr/bin/env bash
# The test command of the README and of CI: installs what the tests need, builds, and runs
# every test with node's test runner. Each test starts its own redis-server (and dockerd
# when it needs one) and stops it again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
mapfile -t files < <(find dist/test -name "*.test.js" | sort)
exec node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}" "$@"
