import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../util/paths.js';
import type { WindowSize } from '../../api/jobs.js';

/** Where a job's guard finds the node's fence file in a job container (bound read-only). */
export const GUARD_PATH = '/.oswalk-guard';

/**
 * The guard every job runs under (guard/oswalk-guard.c, compiled statically into native/ by
 * scripts/build-native.mjs at install and build). A missing binary is the node's fault, not the
 * job's: the agent must not run jobs it cannot fence.
 */
export function guardBinary(): string {
  const path = join(packageRoot(), 'native', 'oswalk-guard');
  if (!existsSync(path)) throw new Error(`the job guard ${path} is missing: run 'npm run build' (it needs a C compiler: apt-get install gcc libc6-dev)`);
  return path;
}

/**
 * The argv that runs `argv` under the guard of the fence file `fenceFile`, in `cwd` when given
 * (entered by the guard's child, never by the agent: see --cwd in guard/oswalk-guard.c), on a
 * pseudo-terminal of the guard's when `tty` gives its size (--pty: the guard then relays its
 * stdin and stdout to the terminal and reads new sizes from fd 3).
 */
export function guarded(guard: string, fenceFile: string, argv: string[], opts: { cgroupDirs?: string[]; cwd?: string; tty?: WindowSize } = {}): string[] {
  return [
    guard, fenceFile, ...(opts.cgroupDirs ?? []).flatMap((d) => ['--cgroup', d]), ...(opts.cwd ? ['--cwd', opts.cwd] : []),
    ...(opts.tty ? ['--pty', `${opts.tty.rows}x${opts.tty.cols}`] : []), '--', ...argv,
  ];
}
