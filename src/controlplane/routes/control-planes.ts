import { ControlPlaneJoinAnswerSchema, ControlPlaneJoinRequestSchema } from '../../api/control-planes.js';
import { HttpError, type HttpServer } from '../../util/http.js';
import type { ClusterCa } from '../../util/pki.js';
import type { ControlPlaneContext } from '../context.js';

/** The serving certificate asked for; a request that cannot be signed is the asker's fault (400). */
async function issue(ca: ClusterCa, csr: string, hosts: string[]): Promise<{ cert: string; notAfter: Date }> {
  const { issueServerCertificateForRequest } = await import('../../util/pki.js');
  try {
    return await issueServerCertificateForRequest(ca, csr, hosts);
  } catch (err) {
    throw new HttpError(400, (err as Error).message, 'Bad Request');
  }
}

/**
 * Another control plane joins the cluster through this one (Docker Swarm's `swarm join` with
 * the manager token): with a join token of role control-plane, over HTTPS, it sends a request
 * for its serving certificate and gets back that certificate and what a control plane runs
 * with, secrets included, so that nobody copies Redis' password or the CA's key by hand.
 */
export async function controlPlaneRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  app.post('/v1/control-planes/join', {
    config: { role: 'control-plane' },
    schema: { body: ControlPlaneJoinRequestSchema, response: { 200: ControlPlaneJoinAnswerSchema } },
  }, async (req) => {
    const signer = ctx.config.nodeCa;
    // A control plane without the CA's key could give the new one no certificate, and the new
    // one could give its nodes none.
    if (!signer) throw new HttpError(409, 'this control plane holds no cluster CA key, so it cannot admit another: join through one started with the CA (--ca-key, or where `oswalk cluster init` ran)', 'Conflict');
    const made = await issue(signer.ca, req.body.csr, req.body.hosts);
    req.log.info({ by: req.caller?.name, hosts: req.body.hosts, notAfter: made.notAfter.toISOString() }, 'control plane joined');
    return {
      certificate: made.cert, caCert: signer.ca.certPem, caKey: signer.ca.keyPem,
      redisUrl: ctx.config.agentRedisUrl, prefix: ctx.ks.prefix, clusterToken: ctx.config.token,
      ...(ctx.config.agentFsRedisUrl ? { fsRedisUrl: ctx.config.agentFsRedisUrl } : {}),
      nodeTimeoutMs: ctx.config.nodeTimeoutMs, nodeCertLifetimeMs: signer.lifetimeMs,
      ...(ctx.config.defaultImage ? { defaultImage: ctx.config.defaultImage } : {}),
    };
  });
}
