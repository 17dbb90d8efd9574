#!/usr/bin/env bash
# Installs what OS Walk needs on Debian 12 (run as root), then the npm dependencies and
# the build, and puts the oswalk command on PATH. Safe to run again: it only installs what is
# missing.
#   scripts/setup.sh          everything a node needs (redis-server, FUSE, Docker engine)
#   scripts/setup.sh --test   the same plus the tools the test suite drives (oswalk is not
#                             linked: the tests run this checkout's bin/oswalk.js)
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js 20 or later (package.json's engines), checked before anything is installed: Debian
# 12's own nodejs package is 18, and nothing here installs Node.js behind the user's back.
node_version=$(node --version 2>/dev/null || true)
node_major=${node_version#v}
node_major=${node_major%%.*}
if ! [[ $node_major =~ ^[0-9]+$ ]] || [ "$node_major" -lt 20 ]; then
  if [ -n "$node_version" ]; then
    echo "OS Walk needs Node.js 20 or later; the node on your PATH ($(command -v node)) is $node_version." >&2
  else
    echo "OS Walk needs Node.js 20 or later, and there is no node on your PATH." >&2
  fi
  cat >&2 <<'EOF'
Debian 12's nodejs package is Node.js 18. Get Node.js 20 from NodeSource's Debian packages
(they replace Debian's nodejs and npm), as root:
  curl -fsSL https://deb.nodesource.com/setup_20.x -o nodesource_setup.sh
  bash nodesource_setup.sh && apt-get install -y nodejs
or for your user alone with nvm (https://github.com/nvm-sh/nvm): nvm install 20
Then run this again.
EOF
  exit 1
fi
if ! command -v npm >/dev/null; then
  echo "OS Walk's set-up needs npm: Node.js 20 from NodeSource or nvm comes with it (Debian's npm package goes with its Node.js 18)." >&2
  exit 1
fi

# gcc and libc6-dev: the job guard is a static C binary, oswalk shell's client and library C too (scripts/build-native.mjs).
pkgs=(redis-server fuse3 libfuse2 libfuse-dev docker.io iproute2 ca-certificates gcc libc6-dev)
if [ "${1:-}" = "--test" ]; then
  # chromium: the dashboard's tests drive Debian's browser (playwright-core), never a downloaded one.
  pkgs+=(docker-compose debootstrap prometheus busybox-static rsync fio git make tar util-linux-extra tmux python3 vim-tiny less procps chromium)
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
if [ "${1:-}" != "--test" ]; then
  bash scripts/link-bin.sh || echo "warning: oswalk is not on your PATH (above: why); $PWD/bin/oswalk.js runs it all the same" >&2
fi
