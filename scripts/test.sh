#!/usr/bin/env bash
# The test command of the README and of CI: installs what the tests need, builds, and runs
# every test with node's test runner. Each test file starts its own redis-server and stops
# it again; one Docker engine serves the whole run (scripts/dockerd.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# The import rules (docs/architecture.md, .dependency-cruiser.cjs) before any test: a broken one
# fails the run in a few seconds, with the rule, the import and why the rule is there.
npm run --silent lint:imports
mapfile -t files < <(find dist/test -name "*.test.js" | sort)
# One engine for every docker test, stopped afterwards only if this run started it.
export OSWALK_DOCKERD_STATE
OSWALK_DOCKERD_STATE=$(mktemp -u /tmp/oswalk-dockerd.XXXXXX.pid)
bash scripts/dockerd.sh start
trap 'bash scripts/dockerd.sh stop' EXIT
node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}" "$@"
