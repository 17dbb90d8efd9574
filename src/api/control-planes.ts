/**
 * What a control plane joining the cluster and one already in it say to each other
 * (POST /v1/control-planes/join), with a join token of role control-plane.
 */
import { Type, type Static } from 'typebox';

/** A request for the joining control plane's serving certificate, and the names it is for. */
export const ControlPlaneJoinRequestSchema = Type.Object({
  csr: Type.String({ maxLength: 16_384, description: 'a PEM PKCS#10 request the joining control plane signed with its new key' }),
  /** The names and addresses agents and the CLI reach it at: its certificate's subject alternative names. */
  hosts: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { minItems: 1, maxItems: 64 }),
}, { additionalProperties: false });
export type ControlPlaneJoinRequest = Static<typeof ControlPlaneJoinRequestSchema>;

/** Everything a control plane needs to act as one: all of it secret but the certificates. */
export const ControlPlaneJoinAnswerSchema = Type.Object({
  /** PEM, for the hosts asked, for the key of the request. */
  certificate: Type.String(),
  caCert: Type.String(),
  /** The cluster CA's key, PEM: to sign node certificates and renew its own (docs/security.md says why). */
  caKey: Type.String(),
  /** With Redis' password in it. */
  redisUrl: Type.String(),
  prefix: Type.String(),
  /** The Redis of the cluster's files when they have one of their own, with its password; absent: redisUrl's. */
  fsRedisUrl: Type.Optional(Type.String()),
  /** The cluster token, which every control plane takes as an admin's. */
  clusterToken: Type.String(),
  nodeTimeoutMs: Type.Number(),
  nodeCertLifetimeMs: Type.Number(),
  defaultImage: Type.Optional(Type.String()),
});
export type ControlPlaneJoinAnswer = Static<typeof ControlPlaneJoinAnswerSchema>;
