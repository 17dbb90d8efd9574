#!/usr/bin/env bash
# Installs what OS Walk needs on Debian 12 (run as root), then the npm dependencies and
# the build. Safe to run again: it only installs what is missing.
#   scripts/setup.sh          everything a node needs (redis-server, FUSE, Docker engine)
#   scripts/setup.sh --test   the same plus the tools the test suite drives
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc and libc6-dev: the job guard is a static C binary (scripts/build-guard.mjs).
pkgs=(redis-server fuse3 libfuse2 libfuse-dev docker.io iproute2 ca-certificates gcc libc6-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(docker-compose debootstrap prometheus busybox-static rsync fio git make tar util-linux-extra tmux)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "OS Walk needs these Debian packages: ${missing[*]}" >&2
    echo "Run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund
fi
echo "==> npm run build"
npm run build --silent
