import { registerClusterMetrics } from './cluster-metrics.js';
import { reconcileOwners } from './monitor.js';
import { wakeScheduler } from '../state/jobs.js';
import { applyNodeManifests } from '../state/nodes.js';
import { redisReady } from '../state/redis.js';
import { clusterTokenOnly, createHttpServer, neededRole, type Caller, type HttpServer } from '../util/http.js';
import { appendAudit, findToken } from '../state/tokens.js';
import { isRevoked } from '../state/certs.js';
import type { ServerTls } from '../util/tls.js';
import type { ControlPlaneContext } from './context.js';
import { agentRoutes } from './routes/agents.js';
import { controlPlaneRoutes } from './routes/control-planes.js';
import { fsRoutes } from './routes/fs.js';
import { jobsRoutes } from './routes/jobs.js';
import { nodeRoutes } from './routes/nodes.js';
import { objectRoutes } from './routes/objects.js';
import { statusRoutes } from './routes/status.js';
import { tokenRoutes } from './routes/tokens.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { sessionRoutes } from './routes/session.js';
import { findSession } from '../state/sessions.js';

/**
 * How the API is served: HTTPS with a certificate, or plain HTTP only when asked for by that
 * name, since then the token and everything else cross the network in clear text.
 */
export type ApiTransport = ServerTls | 'insecure-http';

/** The control plane's HTTP API: every route plugin registered on the shared plumbing. */
export async function buildControlPlane(ctx: ControlPlaneContext, tls: ApiTransport): Promise<HttpServer> {
  const cluster = clusterTokenOnly(ctx.config.token);
  // The cluster token is checked first, in this process; a user token costs one HGET.
  const authenticate = async (token: string): Promise<Caller | undefined> => cluster(token) ?? await findToken(ctx.redis, ctx.ks, token);
  // A dashboard session stands for the token it was made with (routes/session.ts).
  const session = async (id: string): Promise<Caller | undefined> => {
    const s = await findSession(ctx.redis, ctx.ks, id);
    return s && { name: s.name, role: s.role };
  };
  const app = createHttpServer({
    log: ctx.log, registry: ctx.registry, authenticate, ...(ctx.config.dashboard ? { session } : {}),
    // Read from Redis at each request a node makes as itself (renewals, few): no window here.
    ...(tls === 'insecure-http' ? {} : { tls, revoked: (serial: string) => isRevoked(ctx.redis, ctx.ks, serial) }),
  });
  // Who changed what, and who was turned away. Reads are left out (a followed log would be a
  // line a second); so are a terminal's keys and sizes, whose session's start is in it. A write
  // that fails is logged, never failed back to a client whose request already happened.
  app.addHook('onResponse', async (req, reply) => {
    const refused = reply.statusCode === 401 || reply.statusCode === 403;
    const reading = neededRole(req.method, {}) === 'read-only';
    if (!refused && (reading || req.routeOptions.config.audit === false)) return;
    const caller = req.caller ?? { name: '', role: '' };
    appendAudit(ctx.redis, ctx.ks, {
      token: caller.name, role: caller.role, method: req.method, path: req.url.split('?')[0], status: reply.statusCode, from: req.ip,
    }).catch((err: Error) => req.log.warn({ err: err.message }, 'audit log: the entry could not be written'));
  });
  registerClusterMetrics(ctx);
  app.get('/readyz', async (_req, reply) => {
    const ok = await redisReady(ctx.redis);
    return reply.code(ok ? 200 : 503).send({ ok, redis: ok ? 'ready' : ctx.redis.status });
  });
  await app.register(nodeRoutes, { ctx });
  await app.register(agentRoutes, { ctx });
  await app.register(controlPlaneRoutes, { ctx });
  await app.register(jobsRoutes, { ctx });
  await app.register(statusRoutes, { ctx });
  await app.register(fsRoutes, { ctx });
  await app.register(tokenRoutes, { ctx });
  if (ctx.config.dashboard) {
    await app.register(sessionRoutes, { ctx, authenticate });
    await app.register(dashboardRoutes, { ctx, authenticate });
  }
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
