import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { fsKeyspace, type Keyspace } from '../../src/state/keys.js';
import { registerNode } from '../../src/state/nodes.js';
import { connectRedis } from '../../src/state/redis.js';
import { TestRedis } from '../helpers/redis.js';
import { addChunkListLocation, ChunkFetcher, ChunkStore, chunkRoutes, type ChunkFetcherOptions } from '../../src/packetfs/index.js';

export const TOKEN = 'test-token';
export const quiet = pino({ level: 'silent' });

/** One node of a loopback cluster: a store, a real chunk server on a free port, and a registration in Redis. */
export interface TestNode {
  name: string;
  store: ChunkStore;
  app: FastifyInstance;
  url: string;
  fetcher(extra?: Partial<ChunkFetcherOptions>): ChunkFetcher;
  close(): Promise<void>;
}

export async function register(redis: Redis, ks: Keyspace, name: string, agentUrl: string): Promise<void> {
  await registerNode(redis, ks, {
    name, address: '127.0.0.1', agentUrl, labels: {}, runtime: 'process', cpus: 1, memoryBytes: 1 << 30,
    load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/tmp', mountPath: '/cluster',
  });
}

export async function startNode(redis: Redis, ks: Keyspace, name: string): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), `oswalk-pfs-${name}-`));
  const store = new ChunkStore(dir, { log: quiet });
  const app = Fastify({ logger: false });
  await app.register(chunkRoutes, { store, token: TOKEN, hold: async (m) => void (await addChunkListLocation(redis, fsKeyspace(ks.prefix), m, name)) });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  await register(redis, ks, name, url);
  return {
    name, store, app, url,
    fetcher: (extra = {}) => new ChunkFetcher({ store, redis, ks, fs: { redis, ks: fsKeyspace(ks.prefix) }, self: name, token: TOKEN, log: quiet, ...extra }),
    close: async () => {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A misbehaving peer: a plain HTTP server whose answer the test chooses. */
export async function startFakePeer(redis: Redis, ks: Keyspace, name: string, handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await register(redis, ks, name, `http://127.0.0.1:${port}`);
  return {
    server,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/**
 * A redis-server shared by a describe block's nodes, started in before(); every node made with
 * node() and everything given to onClose() is closed in after(), then the server stops.
 */
export function useChunkCluster(): { redis(): Redis; node(ks: Keyspace, name: string): Promise<TestNode>; onClose(fn: () => Promise<void> | void): void } {
  let server: TestRedis;
  let redis: Redis;
  const closers: (() => Promise<void> | void)[] = [];
  before(async () => {
    server = await TestRedis.start();
    redis = connectRedis(server.url);
  });
  after(async () => {
    for (const c of closers.reverse()) await c();
    redis.disconnect();
    await server.stop();
  });
  return {
    redis: () => redis,
    async node(ks, name) {
      const n = await startNode(redis, ks, name);
      closers.push(n.close);
      return n;
    },
    onClose: (fn) => void closers.push(fn),
  };
}
