#!/usr/bin/env bash
# A Docker engine for the test suite and benchmarks.
#   scripts/dockerd.sh start   start dockerd in the background, unless an engine answers already
#   scripts/dockerd.sh stop    stop it again, only if `start` started it
# `start` records the dockerd it started in $OSWALK_DOCKERD_STATE (default
# /tmp/oswalk-dockerd.pid); `stop` stops only that one. When dockerd cannot run on this machine
# (no cgroups, no overlay filesystem), `start` warns and still succeeds: the docker tests then
# skip, each saying why.
set -uo pipefail
state=${OSWALK_DOCKERD_STATE:-/tmp/oswalk-dockerd.pid}

case "${1:-}" in
start)
  if docker info >/dev/null 2>&1; then
    echo "==> Docker engine already running"
    exit 0
  fi
  if ! command -v dockerd >/dev/null; then
    echo "WARNING: dockerd is not installed; the docker tests will be skipped" >&2
    exit 0
  fi
  log=$(mktemp /tmp/oswalk-dockerd.XXXXXX.log)
  setsid dockerd >"$log" 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
      echo "$pid" >"$state"
      echo "==> dockerd started (pid $pid, log $log)"
      exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "WARNING: dockerd could not start; the docker tests will be skipped. Its log ($log) ends:" >&2
      tail -n 5 "$log" >&2
      exit 0
    fi
    sleep 0.5
  done
  echo "WARNING: dockerd did not answer within 60 s; the docker tests will be skipped (log: $log)" >&2
  kill "$pid" 2>/dev/null
  exit 0
  ;;
stop)
  [ -f "$state" ] || exit 0
  pid=$(cat "$state")
  rm -f "$state"
  # The pid may have been reused since: stop it only if it is still a dockerd.
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || exit 0
  kill "$pid"
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "==> dockerd stopped"
      exit 0
    fi
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
