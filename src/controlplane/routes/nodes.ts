import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { HttpError } from '../../util/http.js';
import { getNode, listNodes, markRemoving, nodeHistories } from '../../state/nodes.js';
import { drainNode, jobsOnNode, uncordonNode } from '../../state/jobs.js';
import { storageHealth } from '../../packetfs/index.js';
import type { ControlPlaneContext } from '../context.js';
import { ListOf } from '../../api/lists.js';
import { DrainAnswerSchema, NodeName, NodeViewSchema, RemovalSchema, RemoveAnswerSchema, RevokeCertAnswerSchema } from '../../api/nodes.js';
import { revokeNodeCertificates } from '../../state/certs.js';

/** Nodes: list, inspect, drain, remove, uncordon and revoke their certificates. Registration happens through /v1/agents/join. */
export async function nodeRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  app.get('/v1/nodes', { schema: { response: { 200: ListOf(NodeViewSchema) } } }, async () => ({
    items: await listNodes(ctx.redis, ctx.ks),
  }));

  // Every node's load over the last hour, a sample a minute: the dashboard's charts, in one request.
  app.get('/v1/nodes/history', {
    schema: { response: { 200: Type.Object({ nodes: Type.Record(Type.String(), Type.Array(Type.Object({ t: Type.Number(), load1: Type.Number(), usedCpus: Type.Number(), memoryUsedBytes: Type.Number() }))) }) } },
  }, async () => ({ nodes: await nodeHistories(ctx.redis, ctx.ks) }));

  app.get('/v1/nodes/:name', { schema: { params: Type.Object({ name: NodeName }), response: { 200: NodeViewSchema } } }, async (req) => {
    const node = await getNode(ctx.redis, ctx.ks, req.params.name);
    if (!node) throw new HttpError(404, `node "${req.params.name}" is not registered (oswalk get nodes lists them)`, 'NotFound');
    return node;
  });

  const params = Type.Object({ name: NodeName });
  app.post('/v1/nodes/:name/drain', {
    schema: {
      params,
      response: { 200: DrainAnswerSchema },
    },
  }, async (req) => {
    const res = await drainNode(ctx.redis, ctx.ks, req.params.name);
    if (!res) throw notRegistered(req.params.name);
    req.log.info({ node: req.params.name, ...res }, 'node drained');
    return { name: req.params.name, ...res };
  });

  app.post('/v1/nodes/:name/uncordon', {
    schema: { params, response: { 200: DrainAnswerSchema } },
  }, async (req) => {
    // Uncordon undoes a removal too: the node's copies count again and it takes new ones.
    if ((await markRemoving(ctx.redis, ctx.ks, req.params.name, false)) === false) throw notRegistered(req.params.name);
    const status = await uncordonNode(ctx.redis, ctx.ks, req.params.name);
    if (!status) throw notRegistered(req.params.name);
    req.log.info({ node: req.params.name }, 'node uncordoned');
    return { name: req.params.name, status };
  });

  // Decommission (`oswalk node remove`): marked first, so no new copy goes there while its
  // jobs drain; the replication passes then copy what only it holds to the other nodes.
  app.post('/v1/nodes/:name/remove', {
    config: { role: 'admin' },
    schema: {
      params,
      response: { 200: RemoveAnswerSchema },
    },
  }, async (req) => {
    const since = await markRemoving(ctx.redis, ctx.ks, req.params.name, true);
    if (since === false) throw notRegistered(req.params.name);
    const drained = await drainNode(ctx.redis, ctx.ks, req.params.name);
    if (!drained) throw notRegistered(req.params.name);
    req.log.info({ node: req.params.name, removingSince: since, ...drained }, 'node removal started');
    return { name: req.params.name, ...drained, removing: true, removingSince: since };
  });

  // Revocation (`oswalk node revoke-cert`, and `oswalk node remove` once the node can be
  // stopped): every certificate issued to the node is refused from now on, by the control
  // plane at once and by every agent's chunk server within its poll (REVOCATION_POLL_MS). A node
  // no longer registered may still hold one, so only a name with neither is unknown.
  app.post('/v1/nodes/:name/revoke-cert', {
    config: { role: 'admin' },
    schema: { params, response: { 200: RevokeCertAnswerSchema } },
  }, async (req) => {
    const revokedAt = Date.now();
    const revoked = await revokeNodeCertificates(ctx.redis, ctx.ks, req.params.name, req.caller!.name);
    if (!revoked.length && !(await getNode(ctx.redis, ctx.ks, req.params.name))) throw notRegistered(req.params.name);
    req.log.warn({ node: req.params.name, by: req.caller!.name, serials: revoked.map((c) => c.serial) }, 'node certificates revoked');
    return { name: req.params.name, revokedAt, revoked };
  });

  app.get('/v1/nodes/:name/removal', {
    schema: {
      params,
      response: { 200: RemovalSchema },
    },
  }, async (req) => {
    const [node, health, jobs] = await Promise.all([
      getNode(ctx.redis, ctx.ks, req.params.name),
      storageHealth(ctx.fs.redis, ctx.fs.ks),
      jobsOnNode(ctx.redis, ctx.ks, req.params.name),
    ]);
    if (!node) throw notRegistered(req.params.name);
    // Only a pass that began after the removal counted the node's copies out. It must also
    // name the node, i.e. have seen it marked when it listed the nodes: a pass that began on an
    // agent whose clock runs ahead of Redis' could otherwise end the wait before anything moved.
    const since = node.removing ? node.removingSince : undefined;
    const seen = since !== undefined && health && health.at >= since ? health.removing[node.name] : undefined;
    return {
      name: node.name,
      status: node.status,
      removing: !!node.removing,
      removingSince: since ?? null,
      runningJobs: jobs.length,
      pass: seen && health ? { at: health.at, files: seen.files, bytes: seen.bytes } : null,
    };
  });
}

function notRegistered(name: string): HttpError {
  return new HttpError(404, `node "${name}" is not registered (oswalk get nodes lists them)`, 'NotFound');
}
