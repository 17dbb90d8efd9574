import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { listNodes } from '../../state/nodes.js';
import { countJobsByState } from '../../state/job-counts.js';
import { storageHealth } from '../../packetfs/index.js';
import type { ControlPlaneContext } from '../context.js';
import type { ClusterStatus } from '../../api/status.js';

export async function statusRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  app.get('/v1/status', {
    schema: {
      response: {
        200: Type.Object({
          nodes: Type.Array(Type.Object({ name: Type.String(), status: Type.String() }, { additionalProperties: true })),
          jobs: Type.Record(Type.String(), Type.Number()),
        }, { additionalProperties: true }),
      },
    },
  }, async () => {
    const [nodes, jobs, storage] = await Promise.all([listNodes(ctx.redis, ctx.ks), countJobsByState(ctx.redis, ctx.ks), storageHealth(ctx.fs.redis, ctx.fs.ks)]);
    return { nodes, jobs, ...(storage ? { storage } : {}) } satisfies ClusterStatus;
  });
}
