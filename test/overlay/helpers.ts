import { execFile, type ExecFileOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastify, { type FastifyInstance } from 'fastify';
import { connectRedis } from '../../src/state/redis.js';
import { keyspace } from '../../src/state/keys.js';
import { registerNode } from '../../src/state/nodes.js';
import { addChunkListLocation, ChunkStore, chunkRoutes } from '../../src/packetfs/index.js';
import { mountOverlay, unmountStale, type MountOverlayOptions, type OverlayMount } from '../../src/overlay/index.js';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, fsKeysOf, TestRedis, testPrefix } from '../helpers/redis.js';

export const TOKEN = 'overlay-test-token';

// The FS processes log warnings only, so test output stays readable.
process.env.OSWALK_LOG_LEVEL ??= 'warn';

export interface Sh {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a shell command in another process, asynchronously: the test process may host chunk
 * servers a command in the mount needs, so it must never block on a child.
 */
export function sh(cmd: string, opts: ExecFileOptions & { timeoutMs?: number } = {}): Promise<Sh> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', cmd], { maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 120_000, ...opts }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Like sh, but a non-zero exit fails with everything the command printed. */
export async function ok(cmd: string, opts: ExecFileOptions & { timeoutMs?: number } = {}): Promise<string> {
  const r = await sh(cmd, opts);
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${cmd}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * One "node": its own state dir (chunk store, staging) and mount on a shared Redis, registered
 * as a ready node whose agent URL is a chunk server (packetfs chunkRoutes over the node's store)
 * run by the test process, as the agent's HTTP server does in production.
 */
export interface TestNode {
  name: string;
  dir: string;
  mnt: string;
  stateDir: string;
  mount: OverlayMount;
  port: number;
  server?: FastifyInstance;
  startChunkServer(): Promise<void>;
  stopChunkServer(): Promise<void>;
}

export async function startNode(name: string, redisUrl: string, prefix: string, extra: Partial<MountOverlayOptions> = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), `oswalk-ovl-${name}-`));
  const mnt = extra.mountDir ?? join(dir, 'mnt');
  const stateDir = join(dir, 'state');
  const port = await freePort();
  const node: TestNode = {
    name, dir, mnt, stateDir, port, mount: undefined as unknown as OverlayMount,
    async startChunkServer() {
      const app = fastify();
      const redis = connectRedis(redisUrl);
      await app.register(chunkRoutes, {
        store: new ChunkStore(join(stateDir, 'chunks')), token: TOKEN,
        hold: async (m) => void (await addChunkListLocation(redis, fsKeysOf(prefix), m, name)),
      });
      app.addHook('onClose', async () => redis.disconnect());
      await app.listen({ host: '127.0.0.1', port });
      node.server = app;
    },
    async stopChunkServer() {
      await node.server?.close();
      node.server = undefined;
    },
  };
  const redis = connectRedis(redisUrl);
  try {
    await registerNode(redis, keyspace(prefix), {
      name, address: '127.0.0.1', agentUrl: `http://127.0.0.1:${port}`, labels: {}, runtime: 'process', cpus: 1,
      memoryBytes: 1 << 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '', mountPath: mnt,
    });
  } finally {
    redis.disconnect();
  }
  await node.startChunkServer();
  node.mount = await mountOverlay({ mountDir: mnt, node: name, redisUrl, prefix, stateDir, token: TOKEN, ...extra });
  return node;
}

export async function stopNode(n: TestNode | undefined): Promise<void> {
  if (!n) return;
  try {
    await n.mount?.stop();
    await n.stopChunkServer();
  } finally {
    await unmountStale(n.mnt);
    rmSync(n.dir, { recursive: true, force: true });
  }
}

/**
 * One mounted node on a redis-server of its own for a describe block (set in before(), torn
 * down in after(), which then checks that no mount of ours is left).
 */
export function useOneNode(name: string, prefix: string): { n: TestNode; redis: TestRedis } {
  const one = {} as { n: TestNode; redis: TestRedis };
  before(async () => {
    one.redis = await TestRedis.start();
    one.n = await startNode(name, one.redis.url, prefix);
  });
  after(async () => {
    try {
      await stopNode(one.n);
    } finally {
      await one.redis.stop();
    }
    assert.deepEqual(leftoverMounts(), []);
  });
  return one;
}

/**
 * Two mounted nodes (A and B) on one redis-server of their own for a describe block, set up and
 * torn down as useOneNode's.
 */
export function useTwoNodes(names: [string, string]): { a: TestNode; b: TestNode; redis: TestRedis; prefix: string } {
  const two = {} as { a: TestNode; b: TestNode; redis: TestRedis; prefix: string };
  before(async () => {
    two.redis = await TestRedis.start();
    two.prefix = testPrefix();
    two.a = await startNode(names[0], two.redis.url, two.prefix);
    two.b = await startNode(names[1], two.redis.url, two.prefix);
  });
  after(async () => {
    try {
      await stopNode(two.a);
      await stopNode(two.b);
    } finally {
      await two.redis.stop();
    }
    assert.deepEqual(leftoverMounts(), []);
  });
  return two;
}

/** Mounts of ours still in the table (there must be none once a test file is done). */
export function leftoverMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes('oswalk-ovl-'));
}

/** Errno name of os calls made by python in another process: 'OK' or e.g. 'ENOTEMPTY'. */
export function pyErrno(code: string, cwd: string): Promise<string> {
  const script = `import os, errno\ntry:\n${code.split('\n').map((l) => '    ' + l).join('\n')}\n    print('OK')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])`;
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script], { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python failed: ${stderr}\n${script}`));
      else resolve(String(stdout).trim());
    });
  });
}
