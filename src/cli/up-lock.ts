import { unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processArgv, readPidFile, takePidFile } from '../util/pid-file.js';

/** What `oswalk up` records in its state directory while it runs. */
interface UpRecord {
  pid: number;
  /** The embedded redis-server, which outlives an `up` killed with SIGKILL. */
  redisPid?: number;
}

function running(pid: number | undefined, command: RegExp): boolean {
  const argv = pid ? processArgv(pid) : undefined;
  return !!argv && command.test(argv.map((a) => `${a} `).join(''));
}

async function stopStale(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && running(pid, /./); i++) await new Promise((r) => setTimeout(r, 50));
}

export interface UpLock {
  /** Record the embedded redis-server, for an `up` started after this one was killed. */
  setRedisPid(pid: number): void;
  release(): void;
}

/**
 * One `oswalk up` per state directory: a second one would start another redis-server on the
 * same append-only file and take over the first one's mounts. The record of one that was killed
 * (SIGKILL: no clean-up) is taken over, and its redis-server, which would still be appending to
 * that file, stopped. Its agents stop by themselves when it goes (their IPC channel closes).
 */
export async function takeUpLock(stateDir: string): Promise<UpLock> {
  const file = join(stateDir, 'up.pid');
  const old = readPidFile<UpRecord>(file);
  if (old && running(old.pid, /\boswalk(\.js)? .*\bup\b/)) {
    throw new Error(`oswalk up is already running in this directory (pid ${old.pid}): use that cluster, or stop it first (Ctrl-C in its terminal, or kill -INT ${old.pid})`);
  }
  if (old && old.redisPid && running(old.redisPid, /redis-server/)) await stopStale(old.redisPid);
  if (old) unlinkSync(file);
  const rec: UpRecord = { pid: process.pid };
  takePidFile(file, rec, `another oswalk up is starting in this directory (${file} appeared just now)`);
  return {
    setRedisPid(pid) {
      rec.redisPid = pid;
      writeFileSync(file, JSON.stringify(rec));
    },
    release() {
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
    },
  };
}
