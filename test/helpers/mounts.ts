import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A temporary directory that is its own rshared mount point: / is a private mount here, and
 * mounts made under a directory reach containers (bound rslave) only when it is shared.
 */
export function sharedTempDir(prefix: string): { dir: string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  execFileSync('mount', ['--bind', dir, dir]);
  execFileSync('mount', ['--make-rshared', dir]);
  return {
    dir,
    dispose() {
      execFileSync('umount', ['--recursive', '--lazy', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
