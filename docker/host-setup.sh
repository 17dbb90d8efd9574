#!/usr/bin/env bash
# The one host-side step compose cannot do: the directory where the agent containers mount
# the unified filesystem must be a shared mount on the host, so that a FUSE mount made inside
# an agent container (bound here with :rshared) shows up on the host and, from there, in the
# job containers the agent starts through the host's Docker socket (bound with :rslave).
# Most hosts mount / private (this one does), so the directory is bound onto itself and made
# rshared. Run as root; idempotent. Mounts do not survive a reboot: run it again after one.
#   docker/host-setup.sh          create and share $OSWALK_SHARED_DIR (default /run/oswalk-compose)
#   docker/host-setup.sh --down   unmount whatever is left under it (a killed agent's stale
#                                 FUSE mount), unshare it and remove it
set -euo pipefail
DIR="${OSWALK_SHARED_DIR:-/run/oswalk-compose}"
say() { echo "==> host-setup: $*"; }
[ "$(id -u)" = 0 ] || { echo "host-setup: mounting needs root; run: sudo $0 $*" >&2; exit 1; }

# Mount points at or below $DIR, deepest first (mountinfo field 5 is the mount point).
mounts_under() {
  awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 { print length($5) "\t" $5 }' /proc/self/mountinfo \
    | sort -rn | cut -f2-
}

if [ "${1:-}" = --down ]; then
  mounts_under | while read -r m; do
    say "umount $m"
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if [ -d "$DIR" ]; then
    # The fence files and job guard a killed agent left in its share directory
    # (agent-N.share/.guard/<cluster>.<node>/), which no job container uses any more once the
    # mounts are gone; then the agents' mount points and bind targets (agent-N,
    # agent-N.share/agent-N): empty directories only, deepest first; any other file left
    # there stays, and says so.
    find "$DIR" -mindepth 3 -maxdepth 4 -path "$DIR/*/.guard/*" -type f \
      \( -name fence -o -name fence.tmp -o -name oswalk-guard -o -name .oswalk-guard.tmp \) -delete
    find "$DIR" -mindepth 1 -depth -type d -empty -delete
    if rmdir "$DIR" 2>/dev/null; then
      say "removed $DIR"
    else
      echo "host-setup: $DIR still holds files, left in place:" >&2
      find "$DIR" -mindepth 1 | head -5 >&2
      exit 1
    fi
  fi
  exit 0
fi

mkdir -p "$DIR"
if ! mountpoint -q "$DIR"; then
  say "mount --bind $DIR $DIR"
  mount --bind "$DIR" "$DIR"
fi
if [ "$(findmnt -no PROPAGATION --mountpoint "$DIR")" != shared ]; then
  say "mount --make-rshared $DIR"
  mount --make-rshared "$DIR"
fi
say "$DIR is a shared mount ($(findmnt -no PROPAGATION --mountpoint "$DIR"))"
