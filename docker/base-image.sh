#!/usr/bin/env bash
# The base of every OS Walk image, for a host that reaches no container registry.
#
# Where a registry answers there is nothing to do: compose.yaml and docker/build.sh build FROM
# the official node:20-bookworm-slim, which Docker pulls, and `docker compose up` alone starts
# the cluster. Without one (air-gapped hosts, CI behind a proxy that blocks registries) this
# builds a stand-in under a name of its own, oswalk-base:node20-bookworm (under the official
# name it would shadow the real image): a minimal Debian 12 root filesystem from the machine's
# own apt mirror (debootstrap), plus this host's Node.js 20 and npm, plus the host's CA bundle
# (so npm works behind a TLS-intercepting proxy), imported with `docker import`. Debootstrap
# also installs what the agent needs at run time (fuse3, libfuse2: fuse-native's bundled
# libfuse.so is v2) so later layers need no network. It then names the stand-in in .env
# (OSWALK_BASE_IMAGE), where compose and docker/build.sh read it.
#
# Idempotent: does nothing when the base image named is there. Run as root (debootstrap needs it).
#   docker/base-image.sh            pull the official image, or build the stand-in when that fails
#   docker/base-image.sh --force    build the stand-in even when an image is there
set -euo pipefail

TAG=oswalk-base:node20-bookworm
OFFICIAL=node:20-bookworm-slim
ENV_FILE="$(cd "$(dirname "$0")/.." && pwd)/.env"
SUITE=bookworm
INCLUDE=ca-certificates,fuse3,libfuse2

say() { echo "==> base-image: $*"; }
die() { echo "base-image: $*" >&2; exit 1; }

# The stand-in is the base of compose's builds from now on: named in .env, unless .env names one already.
use_stand_in() {
  if grep -q '^OSWALK_BASE_IMAGE=' "$ENV_FILE" 2>/dev/null; then
    say "$ENV_FILE already names a base image: $(grep '^OSWALK_BASE_IMAGE=' "$ENV_FILE" | tail -n 1)"
  else
    echo "OSWALK_BASE_IMAGE=$TAG" >>"$ENV_FILE"
    say "wrote OSWALK_BASE_IMAGE=$TAG to $ENV_FILE: docker compose up builds on it"
  fi
}

if [ "${1:-}" != "--force" ]; then
  if [ -n "${OSWALK_BASE_IMAGE:-}" ] && docker image inspect "$OSWALK_BASE_IMAGE" >/dev/null 2>&1; then
    say "$OSWALK_BASE_IMAGE (OSWALK_BASE_IMAGE) is present, nothing to do"
    exit 0
  fi
  if docker image inspect "$TAG" >/dev/null 2>&1; then
    say "$TAG already present"
    use_stand_in
    exit 0
  fi
  if docker image inspect "$OFFICIAL" >/dev/null 2>&1; then
    say "$OFFICIAL present, nothing to do"
    exit 0
  fi
  say "trying docker pull $OFFICIAL"
  if timeout 60 docker pull "$OFFICIAL" >/dev/null 2>&1; then
    say "pulled $OFFICIAL: a registry answers, so docker compose up needs nothing more"
    exit 0
  fi
  say "registry unreachable, building $TAG locally with debootstrap"
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root; run: sudo $0"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
NODE="$(command -v node)" || die "node is not installed on this host"
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) === 20 ? 0 : 1)' \
  || die "host node is $("$NODE" -v); the image must carry Node.js 20"
NPM_DIR="$(dirname "$("$NODE" -p 'require.resolve("npm/package.json", { paths: ["/usr/lib/node_modules", "/usr/local/lib/node_modules"] })')")" \
  || die "cannot find npm's lib directory on this host"
CA=/etc/ssl/certs/ca-certificates.crt
[ -r "$CA" ] || die "no CA bundle at $CA"

# The Debian mirror this machine already uses (deb822 .sources or one-line .list), so the build
# goes through whatever mirror or proxy the host is configured for.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v s="$SUITE" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uri = ""; ok = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uri = u[1] }
          if ($i ~ /^Suites:/) { n = split($i, w, /[ \t]+/); for (j = 2; j <= n; j++) if (w[j] == s) ok = 1 }
        }
        if (ok && uri != "") { print uri; exit }
      }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v s="$SUITE" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { if ($(i + 1) == s) print $i; break } }'
  return 0
}
MIRROR="${OSWALK_DEBIAN_MIRROR:-$(mirror | sed -n 1p)}"
[ -n "$MIRROR" ] || die "no Debian $SUITE mirror in /etc/apt/sources.list*; set OSWALK_DEBIAN_MIRROR"

ROOT="$(mktemp -d /var/tmp/oswalk-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT

say "debootstrap --variant=minbase --include=$INCLUDE $SUITE from $MIRROR"
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 \
  || { tail -n 20 "$ROOT.log" >&2; rm -f "$ROOT.log"; die "debootstrap failed"; }
rm -f "$ROOT.log"

say "adding node $("$NODE" -v) from $NODE and npm $("$NODE" -p "require('$NPM_DIR/package.json').version") from $NPM_DIR"
install -m 0755 "$NODE" "$ROOT/usr/local/bin/node"
mkdir -p "$ROOT/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$ROOT/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
# Node's headers, as the official image has them: node-gyp builds native addons (fuse-native)
# against them instead of downloading them from nodejs.org.
HEADERS="$(dirname "$NODE")/../include/node"
if [ -r "$HEADERS/node_api.h" ]; then
  mkdir -p "$ROOT/usr/local/include"
  cp -a "$HEADERS" "$ROOT/usr/local/include/node"
else
  say "no node headers next to $NODE: native addons cannot be rebuilt inside the image offline"
fi

say "adding the host CA bundle"
# Appended to Debian's bundle rather than replacing it, so update-ca-certificates in a later
# layer does not drop the proxy's root; NODE_EXTRA_CA_CERTS makes node and npm trust it.
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp "$CA" "$ROOT/usr/local/share/ca-certificates/host-bundle.crt"
cp "$CA" "$ROOT/etc/ssl/certs/ca-certificates.crt"

# apt inside the image uses the same mirror (debootstrap wrote only the main suite).
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/tmp/* "$ROOT"/var/log/*.log

OLD="$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)"
say "docker import -> $TAG"
tar -C "$ROOT" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_VERSION='"$("$NODE" -v | tr -d v)" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  --message "OS Walk local base: debootstrap $SUITE minbase + host node $("$NODE" -v)" \
  - "$TAG" >/dev/null
# A --force rebuild leaves the previous import untagged; drop it unless something still uses it.
[ -z "$OLD" ] || docker image rm "$OLD" >/dev/null 2>&1 || true
say "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
use_stand_in
