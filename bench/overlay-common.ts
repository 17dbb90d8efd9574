import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mountOverlay, type OverlayMount } from '../src/overlay/index.js';
import { freePort } from '../test/helpers/redis.js';
import { table, writeSection as write } from './report.js';

process.env.OSWALK_LOG_LEVEL ??= 'warn';

/** Run a shell command; returns stdout; throws with stderr on failure. */
export function sh(cmd: string, cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', cmd], { cwd, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd}: ${stderr}`));
      else resolve(String(stdout));
    });
  });
}

export async function dropCaches(): Promise<void> {
  await sh('sync && echo 3 > /proc/sys/vm/drop_caches');
}

/** Seconds a shell command takes (wall clock). */
export async function timed(cmd: string, cwd?: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await sh(cmd, cwd);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** A redis-server, a raw directory and a mounted overlay, all under one temp dir on the same disk. */
export interface BenchEnv {
  dir: string;
  /** The redis-server's URL (prefix `{bench}:`). */
  url: string;
  raw: string;
  mnt: string;
  mount: OverlayMount;
  /** A new FS process; `fsEnv`: environment variables for it alone. */
  remount(fsEnv?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

export async function setup(): Promise<BenchEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-bench-ovl-'));
  const port = await freePort();
  await sh(`redis-server --port ${port} --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --dir ${dir} --pidfile ${dir}/redis.pid`);
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      break;
    } catch {
      r.disconnect();
      if (i > 100) throw new Error('redis-server did not start');
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  const raw = join(dir, 'raw');
  await sh(`mkdir -p ${raw}`);
  const opts = { mountDir: join(dir, 'mnt'), node: 'bench', redisUrl: url, prefix: '{bench}:', stateDir: join(dir, 'state'), token: 'bench' };
  const env: BenchEnv = {
    dir, url, raw, mnt: opts.mountDir, mount: await mountOverlay(opts),
    async remount(fsEnv = {}) {
      await env.mount.stop();
      const saved = { ...process.env };
      Object.assign(process.env, fsEnv);
      try {
        env.mount = await mountOverlay(opts);
      } finally {
        for (const k of Object.keys(fsEnv)) {
          if (saved[k] === undefined) delete process.env[k];
          else process.env[k] = saved[k];
        }
      }
    },
    async close() {
      await env.mount.stop();
      await sh(`kill $(cat ${dir}/redis.pid)`).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

export interface Row {
  test: string;
  raw: string;
  overlay: string;
  ratio: string;
  goal: string;
}

/** This benchmark's section of BENCHMARKS.md: its rows against the raw disk, then notes. */
export function writeSection(title: string, command: string, rows: Row[], notes: string): void {
  const body = table(['test', 'raw disk', 'overlay', 'overlay/raw', 'goal'], rows.map((r) => [r.test, r.raw, r.overlay, r.ratio, r.goal]));
  write(`overlay-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`, `Overlay (FUSE): ${title}`, command, `${body}\n\n${notes}`);
}

export const mbps = (bytes: number, s: number) => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;
export const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
