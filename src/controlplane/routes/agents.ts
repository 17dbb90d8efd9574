import { JoinAnswerSchema, JoinRequestSchema, NodeCertificateSchema, RenewRequestSchema } from '../../api/agents.js';
import { recordIssuedCertificate } from '../../state/certs.js';
import { ScriptError } from '../../state/scripts.js';
import { HttpError, type HttpServer } from '../../util/http.js';
import type { ControlPlaneContext } from '../context.js';

/**
 * An agent joins with one URL and a token (a join token, role node, or an admin's); the control
 * plane answers with what the agent needs to talk to Redis directly from then on (the control
 * plane is not on the data path) and, when it holds the cluster CA, a certificate for the node,
 * for the key of the request the agent sent (the key never leaves the node), and the cluster's
 * default image for docker nodes. The node renews its certificate as itself, presenting the
 * certificate it has.
 */
export async function agentRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  // Every certificate issued is recorded under its node's name, so that revoking the node
  // (oswalk node revoke-cert, node remove) finds it; a renewal names the certificate it came
  // with, refused if that one was revoked since the request was let in.
  const issue = async (csr: string, node: string, renewedFrom?: string) => {
    const signer = ctx.config.nodeCa!;
    const { issueNodeCertificate } = await import('../../util/pki.js');
    let made;
    try {
      made = await issueNodeCertificate(signer.ca, csr, node, signer.lifetimeMs);
    } catch (err) {
      throw new HttpError(400, `node ${node}: ${(err as Error).message}`, 'Bad Request');
    }
    try {
      await recordIssuedCertificate(ctx.redis, ctx.ks, { node, serial: made.serial, notAfter: made.notAfter.getTime(), ...(renewedFrom ? { renewedFrom } : {}) });
    } catch (err) {
      if (err instanceof ScriptError && err.code === 'REVOKED') throw new HttpError(401, `the certificate of node ${node} was revoked: the node joins again for a new one`, 'Unauthorized');
      throw err;
    }
    return { certificate: made.cert, caCert: signer.ca.certPem, notAfter: made.notAfter.getTime() };
  };

  // The answer holds Redis' address and password: what every node holds, for nodes and admins only.
  app.post('/v1/agents/join', {
    config: { role: 'node' },
    schema: { body: JoinRequestSchema, response: { 200: JoinAnswerSchema } },
  }, async (req) => {
    const { node, csr } = req.body;
    const nodeCertificate = csr && ctx.config.nodeCa ? await issue(csr, node) : undefined;
    req.log.info({ node, by: req.caller?.name, certificate: nodeCertificate ? new Date(nodeCertificate.notAfter).toISOString() : 'none' }, 'agent joined');
    return {
      redisUrl: ctx.config.agentRedisUrl, prefix: ctx.ks.prefix, nodeTimeoutMs: ctx.config.nodeTimeoutMs,
      ...(ctx.config.agentFsRedisUrl ? { fsRedisUrl: ctx.config.agentFsRedisUrl } : {}),
      ...(ctx.config.defaultImage ? { defaultImage: ctx.config.defaultImage } : {}), ...(nodeCertificate ? { nodeCertificate } : {}),
    };
  });

  // A node's new certificate, for the name its current one is for, and no other.
  app.post('/v1/agents/renew', {
    config: { nodeCertificate: true },
    schema: { body: RenewRequestSchema, response: { 200: NodeCertificateSchema } },
  }, async (req) => {
    if (!ctx.config.nodeCa) throw new HttpError(409, 'this control plane holds no cluster CA, so it signs no node certificates', 'Conflict');
    const node = req.caller!.name.slice('node/'.length);
    const made = await issue(req.body.csr, node, req.caller!.serial);
    req.log.info({ node, notAfter: new Date(made.notAfter).toISOString() }, 'node certificate renewed');
    return made;
  });
}
