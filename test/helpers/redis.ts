import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { after, before } from 'node:test';
import { connectRedis } from '../../src/state/redis.js';
import { fsKeyspace, fsPrefixFor, keyspace, type FsKeyspace, type Keyspace } from '../../src/state/keys.js';
import { freePort } from '../../src/util/net.js';

export { freePort };

/** A real redis-server on a free loopback port, with an append-only file so a restart keeps the data. */
export class TestRedis {
  private proc?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'oswalk-redis-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<TestRedis> {
    const r = new TestRedis(await freePort());
    await r.startProcess();
    return r;
  }

  async startProcess(): Promise<void> {
    this.proc = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no',
    ], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        probe.disconnect();
      }
    }
  }

  /** Stop redis-server (SIGTERM, so it flushes its append-only file) and wait for the exit. */
  async stopProcess(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  }

  /** Stop answering while keeping connections open (SIGSTOP), as a paused VM would; resume() ends it. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  async restart(downMs = 500): Promise<void> {
    await this.stopProcess();
    await new Promise((r) => setTimeout(r, downMs));
    await this.startProcess();
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A key prefix of its own for one test, so tests can share a redis-server. */
export function testPrefix(): string {
  return `{t-${randomBytes(4).toString('hex')}}:`;
}

/**
 * Both key sets of a test's cluster under one prefix of its own: for tests of the parts, which
 * open no filesystem layout (openFs) and may take one object for both.
 */
export function testKeys(): Keyspace & FsKeyspace {
  const prefix = testPrefix();
  return { ...keyspace(prefix), ...fsKeyspace(prefix) };
}

/** The keys of the files of a new cluster with this prefix, where its processes find them (openFs). */
export function fsKeysOf(prefix: string): FsKeyspace {
  return fsKeyspace(fsPrefixFor(prefix));
}

/**
 * One redis-server for the enclosing describe block: started before its tests, stopped after,
 * with a connection to it. Each test still takes a key prefix of its own (testPrefix()).
 */
export function useTestRedis(): { readonly server: TestRedis; readonly redis: Redis } {
  const ctx = {} as { server: TestRedis; redis: Redis };
  before(async () => {
    ctx.server = await TestRedis.start();
    ctx.redis = connectRedis(ctx.server.url);
  });
  after(async () => {
    ctx.redis.disconnect();
    await ctx.server.stop();
  });
  return ctx;
}
