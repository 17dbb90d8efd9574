import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { HttpError } from '../../util/http.js';
import { getNode, listNodes } from '../../state/nodes.js';
import { drainNode, uncordonNode } from '../../state/jobs.js';
import type { ControlPlaneContext } from '../context.js';

/** A node's name, as agents join with it: DNS-like, at most 63 characters. */
export const NodeName = Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$' });

const NodeView = Type.Object({
  name: Type.String(),
  address: Type.String(),
  agentUrl: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  runtime: Type.String(),
  cpus: Type.Number(),
  memoryBytes: Type.Number(),
  status: Type.String(),
  lastHeartbeat: Type.Number(),
  load1: Type.Number(),
  memoryUsedBytes: Type.Number(),
  runningJobs: Type.Number(),
  exportDir: Type.String(),
  mountPath: Type.String(),
}, { additionalProperties: true });

/** Nodes: list, inspect, drain and uncordon. Registration happens through /v1/agents/join. */
export async function nodeRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  app.get('/v1/nodes', { schema: { response: { 200: Type.Object({ items: Type.Array(NodeView) }) } } }, async () => ({
    items: await listNodes(ctx.redis, ctx.ks),
  }));

  app.get('/v1/nodes/:name', { schema: { params: Type.Object({ name: NodeName }), response: { 200: NodeView } } }, async (req) => {
    const node = await getNode(ctx.redis, ctx.ks, req.params.name);
    if (!node) throw new HttpError(404, `node "${req.params.name}" is not registered (oswalk get nodes lists them)`, 'NotFound');
    return node;
  });

  const params = Type.Object({ name: NodeName });
  app.post('/v1/nodes/:name/drain', {
    schema: {
      params,
      response: { 200: Type.Object({ name: Type.String(), status: Type.String(), moved: Type.Number(), remaining: Type.Number() }) },
    },
  }, async (req) => {
    const res = await drainNode(ctx.redis, ctx.ks, req.params.name);
    if (!res) throw new HttpError(404, `node "${req.params.name}" is not registered`, 'NotFound');
    req.log.info({ node: req.params.name, ...res }, 'node drained');
    return { name: req.params.name, ...res };
  });

  app.post('/v1/nodes/:name/uncordon', {
    schema: { params, response: { 200: Type.Object({ name: Type.String(), status: Type.String() }) } },
  }, async (req) => {
    const status = await uncordonNode(ctx.redis, ctx.ks, req.params.name);
    if (!status) throw new HttpError(404, `node "${req.params.name}" is not registered`, 'NotFound');
    req.log.info({ node: req.params.name }, 'node uncordoned');
    return { name: req.params.name, status };
  });
}
