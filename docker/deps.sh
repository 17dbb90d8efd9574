#!/bin/sh
# Runs in docker/Dockerfile's build stage: makes node_modules ready for `npm run build`.
# $1: auto | host | image (see the Dockerfile's header).
set -eu
mode="${1:-auto}"
if [ "$mode" = auto ]; then
  if [ -f node_modules/.package-lock.json ]; then mode=host; else mode=image; fi
fi
case "$mode" in
  host)
    echo "deps: using node_modules from the build context (installed on the host)"
    if ! npm ls --all --offline >/dev/null 2>&1; then
      npm ls --all --offline 2>&1 | grep -E 'missing|invalid|ERR' | head -n 20 >&2 || true
      echo "deps: the context's node_modules do not match package-lock.json: run 'npm ci' on the host, or build with --build-arg DEPS=image" >&2
      exit 1
    fi
    # The project's postinstall checks that the patched fuse-native addon loads (and would
    # rebuild a stale one); without it, at least the addon must load here.
    if [ -f scripts/patch-fuse-native.mjs ]; then
      set -- node scripts/patch-fuse-native.mjs
    else
      set -- node -e "require('fuse-native')"
    fi
    if ! "$@" >/tmp/fuse.out 2>&1; then
      cat /tmp/fuse.out >&2
      echo "deps: fuse-native from the host does not load in the image (different glibc? not patched?): build with --build-arg DEPS=image" >&2
      exit 1
    fi
    ;;
  image)
    echo "deps: npm ci inside the image (compiler toolchain for fuse-native from the Debian mirror)"
    rm -rf node_modules
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 make gcc g++ libc6-dev pkg-config patch libfuse-dev >/dev/null
    npm ci --no-audit --no-fund
    ;;
  *)
    echo "deps: DEPS must be auto, host or image (got '$mode')" >&2
    exit 1
    ;;
esac
