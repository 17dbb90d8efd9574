import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createRegistry } from '../../src/metrics/index.js';
import { keyspace } from '../../src/state/keys.js';
import { openFs } from '../../src/state/fs-layout.js';
import { BlockingReaders, connectRedis } from '../../src/state/redis.js';
import type { HttpServer } from '../../src/util/http.js';
import { buildControlPlane } from '../../src/controlplane/server.js';
import { startControlLoops, type ControlLoops } from '../../src/controlplane/loops.js';
import type { ControlPlaneContext } from '../../src/controlplane/context.js';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { OSWALK_BIN, oswalk as runOswalk, type CliResult } from './cli.js';
import { until } from './until.js';
import { TestRedis, testPrefix } from './redis.js';

export const TOKEN = 'jobs-test-token';

/**
 * The control plane (every route, the control loops) on a free loopback port, the given
 * redis-server and a key prefix of its own — startControlPlane's parts, with a logger that
 * stays quiet unless OSWALK_TEST_LOG names a level.
 */
export async function startJobsControlPlane(redisUrl: string, opts: { nodeTimeoutMs?: number; prefix?: string; defaultImage?: string } = {}): Promise<{
  ctx: ControlPlaneContext; app: HttpServer; url: string; loops: ControlLoops; close(): Promise<void>;
}> {
  const log = pino({ level: process.env.OSWALK_TEST_LOG ?? 'silent' });
  const redis = connectRedis(redisUrl);
  const ks = keyspace(opts.prefix ?? testPrefix());
  const ctx: ControlPlaneContext = {
    redis, readers: new BlockingReaders(redis), ks, fs: await openFs(redis, ks), log, registry: createRegistry('controlplane'),
    config: {
      token: TOKEN, agentRedisUrl: redisUrl, nodeTimeoutMs: opts.nodeTimeoutMs ?? 5000, id: `cp-${randomBytes(3).toString('hex')}`,
      ...(opts.defaultImage ? { defaultImage: opts.defaultImage } : {}),
    },
  };
  // Plain HTTP: these tests are of the API's routes and the jobs' life; test/cli/tls.test.ts and
  // the `oswalk up` tests run the API over TLS.
  const app = await buildControlPlane(ctx, 'insecure-http');
  const url = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('[::1]', '127.0.0.1');
  const loops = startControlLoops(ctx);
  return {
    ctx, app, url, loops,
    async close() {
      await loops.stop();
      await app.close();
      ctx.readers.close();
      redis.disconnect();
    },
  };
}

export function tempDir(tag: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `oswalk-${tag}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A bearer-token fetch against a base URL, JSON in and out. */
export function api(base: string) {
  return async <T = unknown>(path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(base + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T };
  };
}

/**
 * The real `oswalk agent` of node `node` as a process of its own (a fault test stops or kills
 * it), the process runtime, no mount, its state and export in stateDir; resolves once it is ready.
 */
export async function startAgentProcess(controlPlane: string, node: string, stateDir: string): Promise<ChildProcess> {
  const agent = spawn(process.execPath, [OSWALK_BIN, '--api', controlPlane, '--token', TOKEN, 'agent', '--node', node, '--runtime', 'process',
    '--state-dir', stateDir, '--export', stateDir, '--no-mount', '--listen', '127.0.0.1:0'], { stdio: 'ignore', env: { ...process.env, OSWALK_LOG_LEVEL: 'warn' } });
  const get = api(controlPlane);
  await until(`the agent of ${node} to register`, async () => (await get<{ items: { name: string; status: string }[] }>('/v1/nodes')).body.items?.some((n) => n.name === node && n.status === 'ready'), 20_000);
  return agent;
}

/** Submit a job through the API (`call`: api(base)) and return its id; anything but 200 fails the test. */
export async function submitJob(call: ReturnType<typeof api>, spec: Record<string, unknown>): Promise<string> {
  const res = await call<{ id: string }>('/v1/jobs', { spec });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.id;
}

/**
 * For a describe block: a redis-server, a control plane and one agent (node n1 with `labels`,
 * the process runtime, its state and export directory one temporary directory), and the CLI
 * pointed at them, run in that directory.
 */
export function useCliCluster(tag: string, labels: Record<string, string> = {}): {
  readonly url: string;
  readonly redisUrl: string;
  readonly state: { dir: string };
  oswalk(args: string[], opts?: { timeoutMs?: number }): Promise<CliResult>;
} {
  let server: TestRedis;
  let cp: Awaited<ReturnType<typeof startJobsControlPlane>>;
  let agent: RunningAgent;
  const state = tempDir(tag);
  before(async () => {
    server = await TestRedis.start();
    cp = await startJobsControlPlane(server.url);
    const logger = pino({ level: 'silent' });
    agent = await startAgent({
      node: 'n1', controlPlane: cp.url, token: TOKEN, runtime: new ProcessRuntime({ stateDir: state.dir, logger, killGraceMs: 500 }),
      exportDir: state.dir, stateDir: state.dir, listen: { host: '127.0.0.1', port: 0 }, log: logger, labels,
    });
  });
  after(async () => {
    await agent?.stop();
    await cp?.close();
    await server.stop();
    state.remove();
  });
  return {
    get url() {
      return cp.url;
    },
    get redisUrl() {
      return server.url;
    },
    state,
    oswalk: (args, opts = {}) => runOswalk(['--api', cp.url, '--token', TOKEN, ...args], { cwd: state.dir, ...opts }),
  };
}
