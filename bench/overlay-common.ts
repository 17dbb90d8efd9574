import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mountOverlay, type OverlayMount } from '../src/overlay/index.js';
import { freePort } from '../test/helpers/redis.js';

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
  raw: string;
  mnt: string;
  mount: OverlayMount;
  remount(): Promise<void>;
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
    dir, raw, mnt: opts.mountDir, mount: await mountOverlay(opts),
    async remount() {
      await env.mount.stop();
      env.mount = await mountOverlay(opts);
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

/** Replace (or add) this benchmark's section of BENCHMARKS-overlay.md. */
export function writeSection(title: string, command: string, rows: Row[], notes: string): void {
  const file = join(process.cwd(), 'BENCHMARKS-overlay.md');
  const head = '# Overlay (FUSE) benchmarks\n\nEach section is written by the bench named in it; every overlay number is measured against the raw disk under it in the same run.\n';
  let text = existsSync(file) ? readFileSync(file, 'utf8') : head;
  const machine = `${cpus().length} × ${cpus()[0].model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`;
  const table = ['| test | raw disk | overlay | overlay/raw | goal |', '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.test} | ${r.raw} | ${r.overlay} | ${r.ratio} | ${r.goal} |`)].join('\n');
  const section = `## ${title}\n\n${new Date().toISOString()} · ${machine} · \`${command}\`\n\n${table}\n\n${notes}\n`;
  const re = new RegExp(`## ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n[\\s\\S]*?(?=\\n## |$)`);
  text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}`;
  writeFileSync(file, text);
  console.log(section);
}

export const mbps = (bytes: number, s: number) => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;
export const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
