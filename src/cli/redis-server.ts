import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitForRedis } from '../state/redis.js';
import { freePort } from '../util/net.js';
import { supervise } from './supervise.js';

export interface EmbeddedRedis {
  /** With the password: for config.json and the cluster's own processes only. */
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
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  // Any local user can reach 127.0.0.1: a password, kept with the data (the cluster's
  // config.json has it in the URL), and given in a file, not on the command line.
  const passwordFile = join(dir, 'password');
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const conf = join(dir, 'redis.conf');
  writeFileSync(conf, [
    `port ${port}`, 'bind 127.0.0.1', `dir "${dir}"`, 'appendonly yes', 'appendfsync everysec', 'save ""', 'daemonize no',
    `requirepass ${password}`, '',
  ].join('\n'), { mode: 0o600 });
  const url = `redis://:${password}@127.0.0.1:${port}`;
  const spawnServer = () => {
    // A process group of its own: Ctrl-C in the terminal signals `up`'s group, and Redis must
    // outlive the control plane and agents, which still talk to it while they stop.
    const p = spawn('redis-server', [conf], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
    if (p.pid) onStart(p.pid);
    return p;
  };
  const first = spawnServer();
  const exited = new Promise<never>((_, reject) => {
    first.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}): install it with apt-get install redis-server, or pass --redis URL`)));
    first.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} at start`)));
  });
  await waitForRedis(url, exited);
  exited.catch(() => undefined);
  return { url, stop: supervise('redis-server', spawnServer, first) };
}
