import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/util/net.js';
import { until } from './until.js';

/** The name the sentinels know the primary by, in the redis+sentinel:// URL. */
export const MASTER_NAME = 'oswalk';

/**
 * A Redis primary, its replica and three sentinels (quorum 2) on free loopback ports, each a
 * process of its own with its files in one temporary directory, for failover tests. The
 * sentinels call the primary down after DOWN_AFTER_MS without an answer; Debian's
 * redis-sentinel is `redis-server --sentinel` (the package only adds the name and a service),
 * which is what runs here. No persistence: a failover is the subject, not a restart.
 */
export class SentinelRedis {
  static readonly DOWN_AFTER_MS = 1000;
  readonly dir: string;
  private readonly procs = new Map<string, ChildProcess>();
  readonly ports: { primary: number; replica: number; sentinels: number[] };

  private constructor(dir: string, ports: SentinelRedis['ports']) {
    this.dir = dir;
    this.ports = ports;
  }

  /** Start them all and wait until the replica is in sync and every sentinel knows the other two and the replica. */
  static async start(): Promise<SentinelRedis> {
    const ports = { primary: await freePort(), replica: await freePort(), sentinels: [await freePort(), await freePort(), await freePort()] };
    const s = new SentinelRedis(mkdtempSync(join(tmpdir(), 'oswalk-sentinel-')), ports);
    try {
      await s.boot();
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  /** The URL OS Walk's processes are given. */
  get url(): string {
    return `redis+sentinel://${this.ports.sentinels.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}`;
  }

  private async boot(): Promise<void> {
    const server = (name: string, port: number, extra: string[]) => this.spawn(name, ['redis-server', '--port', String(port), '--bind', '127.0.0.1',
      '--dir', join(this.dir, name), '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...extra]);
    server('primary', this.ports.primary, []);
    server('replica', this.ports.replica, ['--replicaof', '127.0.0.1', String(this.ports.primary)]);
    await until('the replica to be in sync', async () => (await this.info(this.ports.replica, 'replication')).includes('master_link_status:up'), 15_000);
    for (const [i, port] of this.ports.sentinels.entries()) {
      const name = `sentinel${i + 1}`;
      mkdirSync(join(this.dir, name), { recursive: true });
      // Sentinel rewrites its configuration file (what it learned): one of its own, writable.
      const conf = join(this.dir, name, 'sentinel.conf');
      writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', 'daemonize no', `dir ${join(this.dir, name)}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${this.ports.primary} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} ${SentinelRedis.DOWN_AFTER_MS}`,
        // The least a failover may take before another is tried, and the replicas' reconfiguration bound.
        `sentinel failover-timeout ${MASTER_NAME} 5000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`, '',
      ].join('\n'));
      this.spawn(name, ['redis-server', conf, '--sentinel']);
    }
    // A failover needs a majority of the sentinels to agree, and a replica they know of:
    // they find each other (hello messages every 2 s) and the replica (the primary's INFO).
    await until('every sentinel to know the replica and the two other sentinels', async () => {
      for (const port of this.ports.sentinels) {
        const m = await this.sentinelMaster(port);
        if (m['num-slaves'] !== '1' || m['num-other-sentinels'] !== '2') return false;
      }
      return true;
    }, 30_000);
  }

  private spawn(name: string, argv: string[]): void {
    mkdirSync(join(this.dir, name), { recursive: true });
    const fd = openSync(join(this.dir, `${name}.log`), 'a');
    try {
      const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd] });
      p.on('error', () => undefined);
      this.procs.set(name, p);
    } finally {
      closeSync(fd);
    }
  }

  /** One command to one process, on a connection of its own that never retries. */
  async ask<T>(port: number, args: string[]): Promise<T> {
    const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableReadyCheck: false, commandTimeout: 2000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return (await c.call(args[0], ...args.slice(1))) as T;
    } finally {
      c.disconnect();
    }
  }

  info(port: number, section: string): Promise<string> {
    return this.ask<string>(port, ['INFO', section]).catch(() => '');
  }

  /** SENTINEL MASTER as a record, from the sentinel on that port ({} if it does not answer). */
  async sentinelMaster(port: number): Promise<Record<string, string>> {
    const flat = await this.ask<string[]>(port, ['SENTINEL', 'MASTER', MASTER_NAME]).catch(() => []);
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
    return out;
  }

  /** The primary's port as a majority of the sentinels name it. */
  async primaryPort(): Promise<number | undefined> {
    const votes = new Map<number, number>();
    for (const port of this.ports.sentinels) {
      const addr = await this.ask<[string, string] | null>(port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME]).catch(() => null);
      if (addr) votes.set(Number(addr[1]), (votes.get(Number(addr[1])) ?? 0) + 1);
    }
    return [...votes].find(([, n]) => n >= 2)?.[0];
  }

  /** Which of the two redis-servers listens on that port. */
  nameOf(port: number): 'primary' | 'replica' {
    return port === this.ports.primary ? 'primary' : 'replica';
  }

  /** SIGSTOP or SIGCONT one of the redis-servers: a replica stopped acknowledges nothing. */
  signal(name: 'primary' | 'replica', sig: 'SIGSTOP' | 'SIGCONT'): void {
    this.procs.get(name)!.kill(sig);
  }

  /** SIGKILL one of the redis-servers and wait for its exit. */
  async kill(name: 'primary' | 'replica'): Promise<void> {
    const p = this.procs.get(name)!;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = once(p, 'exit');
    p.kill('SIGKILL');
    await exited;
  }

  /** Stop every process (SIGKILL: nothing here is kept) and remove the directory. */
  async stop(): Promise<void> {
    await Promise.all([...this.procs.values()].map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = once(p, 'exit');
      p.kill('SIGCONT');
      p.kill('SIGKILL');
      await exited;
    }));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
