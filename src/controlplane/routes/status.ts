import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { listNodes } from '../../state/nodes.js';
import type { ControlPlaneContext } from '../context.js';

/** Counts of jobs by state; supplied by the job queue so this route does not know its keys. */
export type JobCounter = (ctx: ControlPlaneContext) => Promise<Record<string, number>>;

export async function statusRoutes(app: HttpServer, { ctx, countJobs }: { ctx: ControlPlaneContext; countJobs: JobCounter }): Promise<void> {
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
    const [nodes, jobs] = await Promise.all([listNodes(ctx.redis, ctx.ks), countJobs(ctx)]);
    return { nodes, jobs };
  });
}
