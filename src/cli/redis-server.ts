import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { freePort } from '../util/net.js';
import { supervise } from './supervise.js';

export interface EmbeddedRedis {
  url: string;
  stop(): Promise<void>;
}

/**
 * A redis-server child for `oswalk up`, persisting to dir with an append-only file so a
 * restart of `up` finds the cluster as it was. One that exits while `up` runs is started again
 * on the same port, and the cluster, which reconnects, carries on from its append-only file.
 * `onStart` learns each redis-server's pid.
 */
export async function startEmbeddedRedis(dir: string, onStart: (pid: number) => void = () => undefined): Promise<EmbeddedRedis> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const spawnServer = () => {
    const p = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
      '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no',
    ], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (p.pid) onStart(p.pid);
    return p;
  };
  const first = spawnServer();
  const exited = new Promise<never>((_, reject) => {
    first.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}): install it with apt-get install redis-server, or pass --redis URL`)));
    first.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} at start`)));
  });
  const probe = new Redis(url, { retryStrategy: (n) => (n > 100 ? null : 50), maxRetriesPerRequest: null });
  // Refused connections are expected until redis-server listens; the retries handle them.
  probe.on('error', () => undefined);
  try {
    await Promise.race([probe.ping(), exited]);
  } finally {
    probe.disconnect();
  }
  exited.catch(() => undefined);
  return { url, stop: supervise('redis-server', spawnServer, first) };
}
