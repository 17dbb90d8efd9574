#!/usr/bin/env bash
# Puts the oswalk command on PATH: DIR/oswalk (default /usr/local/bin/oswalk, on every Debian
# user's PATH) becomes a symbolic link to this checkout's bin/oswalk.js, as `npm link` would
# make it, without npm's global folder or a second install of the dependencies.
#   scripts/link-bin.sh [DIR]
# Safe to run again. A link there to another checkout is replaced (the newest set-up wins);
# anything else named oswalk there is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
dir=${1:-/usr/local/bin}
target="$root/bin/oswalk.js"
link="$dir/oswalk"
if [ -e "$link" ] && [ ! -L "$link" ]; then
  echo "error: $link exists and is not a symbolic link: left as it is (remove it and run $0 again, or run $target)" >&2
  exit 1
fi
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  echo "error: cannot write to $dir: run as root, or name a directory of yours on your PATH: $0 ~/.local/bin" >&2
  exit 1
fi
ln -sfn "$target" "$link"
echo "==> $link -> $target"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) echo "note: $dir is not on your PATH: add it (export PATH=\"$dir:\$PATH\" in ~/.profile) to run oswalk by name" >&2 ;;
esac
