import { redisReady } from '../state/redis.js';
import { createHttpServer, type HttpServer } from '../util/http.js';
import type { ControlPlaneContext } from './context.js';
import { agentRoutes } from './routes/agents.js';
import { nodeRoutes } from './routes/nodes.js';

/** The control plane's HTTP API: every route plugin registered on the shared plumbing. */
export async function buildControlPlane(ctx: ControlPlaneContext): Promise<HttpServer> {
  const app = createHttpServer({ log: ctx.log, registry: ctx.registry, token: ctx.config.token });
  app.get('/readyz', async (_req, reply) => {
    const ok = await redisReady(ctx.redis);
    return reply.code(ok ? 200 : 503).send({ ok, redis: ok ? 'ready' : ctx.redis.status });
  });
  await app.register(nodeRoutes, { ctx });
  await app.register(agentRoutes, { ctx });
  return app;
}
