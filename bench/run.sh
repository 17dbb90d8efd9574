#!/usr/bin/env bash
# Runs every benchmark; each writes its own section of BENCHMARKS.md. Long (about an hour on
# 2 cores) and heavy on the disk: run it on a quiet machine. `bash bench/run.sh queue` runs
# only the benchmarks whose file names start with that word.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export UV_THREADPOOL_SIZE=64 OSWALK_LOG_LEVEL=warn
export OSWALK_DOCKERD_STATE
OSWALK_DOCKERD_STATE=$(mktemp -u /tmp/oswalk-dockerd.XXXXXX.pid)
bash scripts/dockerd.sh start
trap 'bash scripts/dockerd.sh stop' EXIT
for f in dist/bench/${1:-}*.js; do
  case "$f" in *-common.js|*-report.js|*/report.js) continue ;; esac
  echo "==> node $f"
  node "$f"
done
