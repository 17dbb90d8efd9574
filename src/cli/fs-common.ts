/** Helpers shared by the filesystem subcommands (versions, restore): paths and times. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { VersionRecord } from '../api/fs.js';
import { localMountPath } from './config.js';

/**
 * A PATH argument as a namespace path: relative paths are relative to the unified root
 * ("a/b" → "/a/b"); an absolute path inside the local mount loses the mount's prefix
 * ("/cluster/a/b" → "/a/b"), and so does one inside any other mount of the unified tree on
 * this host; any other absolute path is taken as a namespace path.
 */
export function namespacePath(arg: string, mount = localMountPath()): string {
  // The local mount, then any other mount of the unified tree on this host (another node's
  // view under `oswalk up`, a second `oswalk mount`).
  for (const m of [resolve(mount).replace(/\/+$/, ''), ...unifiedMounts()]) {
    if (m && (arg === m || arg.startsWith(m + '/'))) return arg.slice(m.length) || '/';
  }
  return arg.startsWith('/') ? arg : '/' + arg;
}

/** Mount points of the unified filesystem on this host (FUSE subtype oswalk), longest first. */
function unifiedMounts(): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return info.split('\n').filter((l) => / - fuse\.oswalk /.test(l))
    .map((l) => l.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .sort((a, b) => b.length - a.length);
}

/**
 * For a relative PATH that names something under the local mount from the working directory
 * (`cluster/a.txt` beside ./cluster): a note that PATH is taken from the unified root, naming
 * the path meant. Empty otherwise.
 */
export function relativeToRootNote(arg: string, mount = localMountPath()): string {
  const m = resolve(mount);
  const here = resolve(arg);
  if (arg.startsWith('/') || !here.startsWith(m + '/')) return '';
  return ` (PATH is taken from the root of the unified tree; for ./${arg} give ${namespacePath(here, m)})`;
}

export function mountOption(cmd: Command): Command {
  return cmd.option('--mount <dir>', 'where the unified filesystem is mounted here (default: $OSWALK_MOUNT, .oswalk/config.json, then /cluster)');
}

/** ns since the epoch → ISO 8601 with all nine digits of the fraction. */
export function isoNs(mtimeNs: string): string {
  const ns = BigInt(mtimeNs);
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/** A version as `versions` and `restore` print it for scripts: its time in RFC 3339 with all nine digits (and as ns), its chunk list as the hash. */
export function versionDocument(v: VersionRecord & { current?: boolean }): Record<string, unknown> {
  return {
    id: v.id, path: v.path, node: v.node, mtime: isoNs(v.mtimeNs), mtimeNs: v.mtimeNs, size: v.size, hash: v.chunkListHash ?? null,
    ...(v.current === undefined ? {} : { current: v.current }), type: v.type, source: v.source, mode: v.mode, uid: v.uid, gid: v.gid,
    target: v.target ?? null, xattrs: v.xattrs ?? {}, committedAt: v.committedAt,
  };
}
