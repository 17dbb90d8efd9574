/**
 * What an agent and the control plane say to each other over HTTP: the agent's join
 * (POST /v1/agents/join) and the renewal of its node certificate (POST /v1/agents/renew).
 */
import { Type, type Static } from 'typebox';
import { NodeName } from './nodes.js';

const Csr = Type.String({ maxLength: 16_384, description: 'a PEM PKCS#10 request the node signed with its new key' });

/** A node certificate, as the control plane hands it out. */
export const NodeCertificateSchema = Type.Object({
  /** PEM, for the node's name. */
  certificate: Type.String(),
  /** The cluster CA's certificate, PEM: what the node's peers' certificates must be signed by. */
  caCert: Type.String(),
  /** ms since the epoch. */
  notAfter: Type.Number(),
});
export type NodeCertificate = Static<typeof NodeCertificateSchema>;

/** The node's name and, for a certificate, a request signed with the key it keeps. */
export const JoinRequestSchema = Type.Object({ node: NodeName, csr: Type.Optional(Csr) }, { additionalProperties: false });
export type JoinRequest = Static<typeof JoinRequestSchema>;

/** What the agent needs to talk to Redis directly from then on, and its certificate when the control plane holds the cluster CA. */
export const JoinAnswerSchema = Type.Object({
  redisUrl: Type.String(), prefix: Type.String(), nodeTimeoutMs: Type.Number(),
  /** The Redis of the cluster's files when they have one of their own (`--fs-redis`); absent: redisUrl's. */
  fsRedisUrl: Type.Optional(Type.String()),
  /** The cluster's image for jobs that name none, when the control plane has one. */
  defaultImage: Type.Optional(Type.String()),
  nodeCertificate: Type.Optional(NodeCertificateSchema),
});
export type JoinAnswer = Static<typeof JoinAnswerSchema>;

/** A renewal: a request for a new key, for the name the current certificate is for. */
export const RenewRequestSchema = Type.Object({ csr: Csr }, { additionalProperties: false });
export type RenewRequest = Static<typeof RenewRequestSchema>;
