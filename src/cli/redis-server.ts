import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { freePort } from '../util/net.js';

export interface EmbeddedRedis {
  url: string;
  stop(): Promise<void>;
}

/**
 * A redis-server child for `oswalk up`, persisting to dir with an append-only file so a
 * restart of `up` finds the cluster as it was.
 */
export async function startEmbeddedRedis(dir: string): Promise<EmbeddedRedis> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let proc: ChildProcess;
  try {
    proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
      '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no',
    ], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (err) {
    throw new Error(`cannot start redis-server (${(err as Error).message}): install it with apt-get install redis-server, or pass --redis URL`);
  }
  const exited = new Promise<never>((_, reject) => {
    proc.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}): install it with apt-get install redis-server, or pass --redis URL`)));
    proc.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} at start`)));
  });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { retryStrategy: (n) => (n > 100 ? null : 50), maxRetriesPerRequest: null });
  // Refused connections are expected until redis-server listens; the retries handle them.
  probe.on('error', () => undefined);
  try {
    await Promise.race([probe.ping(), exited]);
  } finally {
    probe.disconnect();
  }
  exited.catch(() => undefined);
  return {
    url,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}
