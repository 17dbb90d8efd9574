import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobCgroup } from './limits.js';
import { safeName } from './common.js';
import type { HostOwner } from './types.js';

/**
 * What the process runtime remembers of a running job on disk, so that an agent restarted
 * after a crash can find and stop the processes its predecessor left behind.
 */
export interface ProcessRecord {
  jobId: string;
  attempt: number;
  cluster: string;
  node: string;
  pid: number;
  pgid: number;
  /** Field 22 of /proc/<pid>/stat at start: guards against a reused pid. */
  startTime: string;
  cgroup?: JobCgroup;
  startedAt: number;
}

export class RecordStore {
  constructor(private readonly dir: string) {}

  private nodeDir(owner: HostOwner): string {
    return join(this.dir, safeName(owner.cluster), safeName(owner.node));
  }

  private file(rec: Pick<ProcessRecord, 'cluster' | 'node' | 'jobId' | 'attempt'>): string {
    return join(this.nodeDir(rec), `${safeName(rec.jobId)}-${rec.attempt}.json`);
  }

  /**
   * Written to a temporary name and renamed, so a crash never leaves half a record.
   * Synchronously, as remove: the state directory is on the node's own disk, where these calls
   * take microseconds, and each through libuv's pool would cost every job's start and end an
   * event-loop round trip (milliseconds on a busy agent).
   */
  async write(rec: ProcessRecord): Promise<void> {
    const file = this.file(rec);
    // The directory is made only when missing: one mkdir less on the path of every job start.
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(rec));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(this.nodeDir(rec), { recursive: true });
      writeFileSync(`${file}.tmp`, JSON.stringify(rec));
    }
    renameSync(`${file}.tmp`, file);
  }

  async remove(rec: Pick<ProcessRecord, 'cluster' | 'node' | 'jobId' | 'attempt'>): Promise<void> {
    rmSync(this.file(rec), { force: true });
  }

  /** Every record of the cluster's node; an unreadable one is skipped and reported in `bad`. */
  async list(owner: HostOwner): Promise<{ records: ProcessRecord[]; bad: { path: string; error: string }[] }> {
    const dir = this.nodeDir(owner);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], bad: [] };
      throw err;
    }
    const records: ProcessRecord[] = [];
    const bad: { path: string; error: string }[] = [];
    for (const name of names) {
      const path = join(dir, name);
      if (!name.endsWith('.json')) {
        if (name.endsWith('.tmp')) await rm(path, { force: true });
        continue;
      }
      try {
        const rec = JSON.parse(await readFile(path, 'utf8')) as ProcessRecord;
        if (typeof rec.pid !== 'number' || typeof rec.jobId !== 'string') throw new Error('missing pid or jobId');
        records.push(rec);
      } catch (err) {
        bad.push({ path, error: (err as Error).message });
      }
    }
    return { records, bad };
  }

  async removeFile(path: string): Promise<void> {
    await rm(path, { force: true });
  }
}
