import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real FUSE mount, served from a process of its own, that never answers a lookup of `stalled`:
 * whatever enters `<dir>/stalled` (chdir, exec, stat) waits, as it does on an overlay mount whose
 * FS process is frozen or blocked on a Redis that is down. `/` and `ok/` answer as empty dirs.
 */
export async function stalledMount(): Promise<{ dir: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-stalled-'));
  const fuseNative = createRequire(import.meta.url).resolve('fuse-native');
  const server = `
    const Fuse = require(${JSON.stringify(fuseNative)});
    const dirStat = { mtime: new Date(), atime: new Date(), ctime: new Date(), size: 4096, mode: 0o40755, uid: 0, gid: 0, nlink: 2 };
    const ops = {
      getattr(path, cb) {
        if (path === '/' || path === '/ok') return cb(0, dirStat);
        if (path === '/stalled') return; // never answered
        cb(Fuse.ENOENT);
      },
      readdir(path, cb) { cb(0, path === '/' ? ['ok', 'stalled'] : []); },
    };
    const fuse = new Fuse(process.argv[1], ops, { allowOther: true, timeout: false });
    fuse.mount((err) => { if (err) { console.error(err.message); process.exit(1); } process.send('mounted'); });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', server, dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [msg] = (await Promise.race([once(child, 'message'), once(child, 'exit').then(() => ['exited'])])) as [string];
  if (msg !== 'mounted') throw new Error(`the stalled FUSE server did not mount ${dir}`);
  return {
    dir,
    async close() {
      // Lazily: a process still waiting in the mount would keep a plain unmount busy.
      execFileSync('fusermount', ['-u', '-z', dir]);
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
