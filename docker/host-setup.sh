#!/usr/bin/env bash
# The directory where the agent containers mount the unified filesystem must be a shared mount
# on the host, so that a FUSE mount made inside an agent container (bound here with :rshared)
# shows up on the host and, from there, in the job containers the agent starts through the
# host's Docker socket (bound with :rslave). Most hosts mount / private (this one does), so the
# directory is bound onto itself and made rshared. Idempotent. Mounts do not survive a reboot.
#
# compose.yaml's `host-setup` service runs it with --serve: set up at `up`, undo at `down`
# (or `stop`). From a container it works in the Docker daemon's mount namespace (that is
# where bind sources are looked up): it needs `pid: host`, CAP_SYS_ADMIN (mount, setns),
# CAP_SYS_PTRACE (to open the daemon's namespace and root) and no AppArmor confinement, not
# --privileged. Run by hand, as root on the host, it does the same without the service:
#   docker/host-setup.sh          create and share $OSWALK_SHARED_DIR (default /run/oswalk-compose)
#   docker/host-setup.sh --down   unmount whatever is left under it (a killed agent's stale
#                                 FUSE mount), unshare it and remove it
#   docker/host-setup.sh --serve  set up, wait for SIGTERM, then --down (the compose service)
set -euo pipefail
DIR="${OSWALK_SHARED_DIR:-/run/oswalk-compose}"
say() { echo "==> host-setup: $*"; }
die() { echo "host-setup: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "mounting needs root; run: sudo $0 $*"
case "$DIR" in /*) ;; *) die "OSWALK_SHARED_DIR must be an absolute path (got '$DIR')" ;; esac

# The Docker daemon's process: its mount namespace is the one that matters. Not found (another
# name, a remote daemon), this script must be running in that namespace already: on the host.
dockerd_pid() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = dockerd ] && { echo "${p#/proc/}"; return; }
  done
  return 0
}
D="$(dockerd_pid)"
if [ -n "$D" ] && [ "$(readlink "/proc/$D/ns/mnt" 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ]; then
  [ -r "/proc/$D/ns/mnt" ] || die "cannot open the mount namespace of dockerd (pid $D): the container needs pid: host, cap_add SYS_ADMIN and SYS_PTRACE, and apparmor:unconfined"
  # Commands run in the daemon's mount namespace (with the host's binaries); files are reached
  # through its root.
  host() { nsenter --mount="/proc/$D/ns/mnt" -- "$@"; }
  ROOT="/proc/$D/root"
  MOUNTINFO="/proc/$D/mountinfo"
elif [ "${1:-}" = --serve ]; then
  die "no dockerd process is visible: the service needs pid: host (or run docker/host-setup.sh as root on the Docker host instead)"
else
  host() { "$@"; }
  ROOT=""
  MOUNTINFO=/proc/self/mountinfo
fi

# Mount points at or below $DIR, deepest first (mountinfo field 5 is the mount point).
mounts_under() {
  awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 { print length($5) "\t" $5 }' "$MOUNTINFO" \
    | sort -rn | cut -f2-
}
# "shared" when the topmost mount at $DIR is a shared one, else "private" ("" when none).
propagation() {
  awk -v d="$DIR" '$5 == d { p = "private"; for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) p = "shared" } END { print p }' "$MOUNTINFO"
}

down() {
  mounts_under | while read -r m; do
    say "umount $m"
    host umount "$m" 2>/dev/null || host umount -l "$m"
  done
  if [ -d "$ROOT$DIR" ]; then
    # The fence files and job guard a killed agent left in its share directory
    # (agent-N.share/.guard/<cluster>.<node>/), which no job container uses any more once the
    # mounts are gone; then the agents' mount points and bind targets (agent-N,
    # agent-N.share/agent-N): empty directories only, deepest first; any other file left
    # there stays, and says so.
    find "$ROOT$DIR" -mindepth 3 -maxdepth 4 -path "$ROOT$DIR/*/.guard/*" -type f \
      \( -name fence -o -name fence.tmp -o -name oswalk-guard -o -name .oswalk-guard.tmp \) -delete
    find "$ROOT$DIR" -mindepth 1 -depth -type d -empty -delete
    if rmdir "$ROOT$DIR" 2>/dev/null; then
      say "removed $DIR"
    else
      echo "host-setup: $DIR still holds files, left in place:" >&2
      find "$ROOT$DIR" -mindepth 1 | head -5 >&2
      return 1
    fi
  fi
}

up() {
  host mkdir -p "$DIR"
  if [ -z "$(propagation)" ]; then
    say "mount --bind $DIR $DIR"
    host mount --bind "$DIR" "$DIR"
  fi
  if [ "$(propagation)" != shared ]; then
    say "mount --make-rshared $DIR"
    host mount --make-rshared "$DIR"
  fi
  say "$DIR is a shared mount ($(propagation))"
}

case "${1:-}" in
  --down) down ;;
  --serve)
    up
    # The service's health check waits for this file; `down` (SIGTERM) undoes the set-up.
    touch /run/oswalk-host-setup.ready
    trap 'rm -f /run/oswalk-host-setup.ready; down; exit $?' TERM INT
    say "ready; docker compose down (or stop) undoes it"
    sleep infinity &
    wait $!
    ;;
  "") up ;;
  *) die "usage: $0 [--down | --serve]" ;;
esac
