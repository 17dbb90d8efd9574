/** Helpers shared by the filesystem subcommands (versions, restore): paths and times. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { localMountPath } from './config.js';

/**
 * A PATH argument as a namespace path: relative paths are relative to the unified root
 * ("a/b" → "/a/b"); an absolute path inside the local mount loses the mount's prefix
 * ("/cluster/a/b" → "/a/b"); any other absolute path is taken as a namespace path.
 */
export function namespacePath(arg: string, mount = localMountPath()): string {
  const m = resolve(mount).replace(/\/+$/, '');
  if (m && (arg === m || arg.startsWith(m + '/'))) return arg.slice(m.length) || '/';
  return arg.startsWith('/') ? arg : '/' + arg;
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
