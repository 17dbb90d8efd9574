#!/usr/bin/env bash
# Builds the images the compose cluster runs, each only when its inputs changed:
#   the base: the official node:20-bookworm-slim, or where no registry answers the stand-in
#                           docker/base-image.sh builds with debootstrap (oswalk-base:node20-bookworm, named in .env)
#   oswalk:latest           control plane, agent, CLI
#   oswalk-redis:latest     Debian's redis-server on the base
#   oswalk-prometheus:latest Debian's prometheus on the base, with the alert rules
#   oswalk-alertmanager:latest Debian's prometheus-alertmanager on the base
#   oswalk-redis-exporter:latest Debian's prometheus-redis-exporter on the base
#   (the last three for compose's profile `monitoring`)
# An image carries a label with the hash of its inputs; when the hash matches, the build is
# skipped (a plain `docker build` would also hit its cache, but hashing the 100 MB context
# takes longer than this check). --force rebuilds everything but the base. `docker compose up`
# builds the same images itself when they are missing; this is the quick rebuild after a change.
#   docker/build.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
FORCE="${1:-}"
say() { echo "==> build: $*"; }

bash docker/base-image.sh
# As compose reads it: the environment, then .env (where base-image.sh names its stand-in), then the official image.
BASE="${OSWALK_BASE_IMAGE:-$(sed -n 's/^OSWALK_BASE_IMAGE=//p' .env 2>/dev/null | tail -n 1)}"
BASE="${BASE:-node:20-bookworm-slim}"
base_id="$(docker image inspect -f '{{.Id}}' "$BASE")"

# hash_of FILE...: content hash of these inputs plus the base image they build on.
hash_of() {
  { echo "$base_id"; find "$@" -type f -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16
}

# build TAG HASH DOCKERFILE CONTEXT [docker build args...]
build() {
  local tag="$1" hash="$2" file="$3" ctx="$4"
  shift 4
  if [ "$FORCE" != --force ] && [ "$(docker image inspect -f '{{index .Config.Labels "dev.oswalk.inputs"}}' "$tag" 2>/dev/null)" = "$hash" ]; then
    say "$tag is current ($hash)"
    return
  fi
  say "docker build $tag"
  local start=$SECONDS
  local log
  log="$(mktemp)"
  if ! docker build --build-arg BASE="$BASE" --label dev.oswalk.inputs="$hash" -f "$file" -t "$tag" "$@" "$ctx" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    echo "build: docker build of $tag failed" >&2
    exit 1
  fi
  rm -f "$log"
  say "built $tag in $((SECONDS - start)) s"
}

# The app's inputs: what the build stage reads (see .dockerignore), with the installed
# dependencies represented by npm's record of them and their native addons rather than
# 100 MB of files. native/ holds the job guard compiled on the host (scripts/build-native.mjs),
# which the build stage keeps: it has no C compiler (src/ holds the guard's source).
app_inputs=(package.json package-lock.json tsconfig.json bin src scripts docker/Dockerfile docker/deps.sh .dockerignore)
for d in patches manifests native; do [ -e "$d" ] && app_inputs+=("$d"); done
if [ -f node_modules/.package-lock.json ]; then
  # Native addons too: a postinstall may rebuild one (fuse-native's patch) with the same lock.
  mapfile -t addons < <(find node_modules -name '*.node' -type f)
  app_inputs+=(node_modules/.package-lock.json "${addons[@]}")
fi
build oswalk:latest "$(hash_of "${app_inputs[@]}")" docker/Dockerfile . --build-arg DEPS="${OSWALK_DEPS:-auto}"
build oswalk-redis:latest "$(hash_of docker/redis.Dockerfile)" docker/redis.Dockerfile docker
build oswalk-prometheus:latest "$(hash_of docker/prometheus.Dockerfile docker/prometheus.yml docker/alerts.yml)" docker/prometheus.Dockerfile docker
build oswalk-alertmanager:latest "$(hash_of docker/alertmanager.Dockerfile docker/alertmanager.yml)" docker/alertmanager.Dockerfile docker
build oswalk-redis-exporter:latest "$(hash_of docker/redis-exporter.Dockerfile)" docker/redis-exporter.Dockerfile docker
# Old builds of these tags stay behind untagged, and so does the build stage of each (378 MB);
# remove the ones nothing uses.
docker image prune -f --filter label=dev.oswalk.inputs >/dev/null
docker image prune -f --filter label=dev.oswalk.stage=build >/dev/null
