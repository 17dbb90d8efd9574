import { registerClusterMetrics } from './cluster-metrics.js';
import { reconcileOwners } from './monitor.js';
import { wakeScheduler } from '../state/jobs.js';
import { applyNodeManifests } from '../state/nodes.js';
import { redisReady } from '../state/redis.js';
import { createHttpServer, type HttpServer } from '../util/http.js';
import type { ServerTls } from '../util/tls.js';
import type { ControlPlaneContext } from './context.js';
import { agentRoutes } from './routes/agents.js';
import { fsRoutes } from './routes/fs.js';
import { jobsRoutes } from './routes/jobs.js';
import { nodeRoutes } from './routes/nodes.js';
import { objectRoutes } from './routes/objects.js';
import { statusRoutes } from './routes/status.js';

/**
 * How the API is served: HTTPS with a certificate, or plain HTTP only when asked for by that
 * name, since then the token and everything else cross the network in clear text.
 */
export type ApiTransport = ServerTls | 'insecure-http';

/** The control plane's HTTP API: every route plugin registered on the shared plumbing. */
export async function buildControlPlane(ctx: ControlPlaneContext, tls: ApiTransport): Promise<HttpServer> {
  const app = createHttpServer({ log: ctx.log, registry: ctx.registry, token: ctx.config.token, ...(tls === 'insecure-http' ? {} : { tls }) });
  registerClusterMetrics(ctx);
  app.get('/readyz', async (_req, reply) => {
    const ok = await redisReady(ctx.redis);
    return reply.code(ok ? 200 : 503).send({ ok, redis: ok ? 'ready' : ctx.redis.status });
  });
  await app.register(nodeRoutes, { ctx });
  await app.register(agentRoutes, { ctx });
  await app.register(jobsRoutes, { ctx });
  await app.register(statusRoutes, { ctx });
  await app.register(fsRoutes, { ctx });
  await app.register(objectRoutes, {
    ctx,
    // Node manifests change what the scheduler sees of registered nodes. Applied (or deleted)
    // Jobs and Services get (or lose) their job records now rather than at the leader's next
    // reconcile pass; reconciling is idempotent, so any control plane may do it.
    onChanged: async (c, kinds) => {
      if (kinds.has('Node')) await applyNodeManifests(c.redis, c.ks);
      if (!kinds.has('Job') && !kinds.has('Service')) return;
      await reconcileOwners(c.redis, c.ks, c.log);
      await wakeScheduler(c.redis, c.ks);
    },
  });
  return app;
}
