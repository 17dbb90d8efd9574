import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { keyspace } from '../state/keys.js';
import { connectRedis } from '../state/redis.js';
import { createRegistry } from '../metrics/index.js';
import { createLogger } from '../util/log.js';
import type { HttpServer } from '../util/http.js';
import type { ControlPlaneContext } from './context.js';
import { startControlLoops, type ControlLoops } from './loops.js';
import { buildControlPlane } from './server.js';

export type { ControlPlaneContext } from './context.js';

export interface ControlPlaneOptions {
  redisUrl: string;
  /** Redis URL to hand to agents; defaults to redisUrl. */
  agentRedisUrl?: string;
  token: string;
  host: string;
  port: number;
  prefix?: string;
  nodeTimeoutMs?: number;
}

export interface RunningControlPlane {
  app: HttpServer;
  ctx: ControlPlaneContext;
  loops: ControlLoops;
  url: string;
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = createLogger('controlplane', { cp: id });
  // Route handlers issue many small independent reads; auto-pipelining batches them per tick.
  const redis = connectRedis(opts.redisUrl, { enableAutoPipelining: true }, log);
  const ctx: ControlPlaneContext = {
    redis,
    ks: keyspace(opts.prefix),
    log,
    registry: createRegistry('controlplane'),
    config: {
      token: opts.token,
      agentRedisUrl: opts.agentRedisUrl ?? opts.redisUrl,
      nodeTimeoutMs: opts.nodeTimeoutMs ?? 5000,
      id,
    },
  };
  const app = await buildControlPlane(ctx);
  const address = await app.listen({ host: opts.host, port: opts.port });
  log.info({ address }, 'control plane listening');
  const loops = startControlLoops(ctx);
  return {
    app,
    ctx,
    loops,
    url: address.replace('[::1]', '127.0.0.1'),
    async close() {
      // Bounded: with Redis away the loops' last commands wait for it (they queue until it
      // returns), and a lease never released just expires. Disconnecting fails them.
      await Promise.race([loops.stop(), new Promise((r) => setTimeout(r, 5000).unref())]);
      await app.close();
      redis.disconnect();
    },
  };
}
