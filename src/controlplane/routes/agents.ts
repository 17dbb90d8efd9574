import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { NodeName } from './nodes.js';
import type { ControlPlaneContext } from '../context.js';

/**
 * An agent joins with one URL and one token; the control plane answers with what the agent
 * needs to talk to Redis directly from then on (the control plane is not on the data path).
 */
export async function agentRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  // The answer holds Redis' address and password: what every node holds, for admins only.
  app.post('/v1/agents/join', {
    config: { role: 'admin' },
    schema: {
      body: Type.Object({ node: NodeName }, { additionalProperties: false }),
      response: { 200: Type.Object({ redisUrl: Type.String(), prefix: Type.String(), nodeTimeoutMs: Type.Number() }) },
    },
  }, async (req) => {
    req.log.info({ node: req.body.node }, 'agent joined');
    return { redisUrl: ctx.config.agentRedisUrl, prefix: ctx.ks.prefix, nodeTimeoutMs: ctx.config.nodeTimeoutMs };
  });
}
