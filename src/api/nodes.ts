/**
 * Nodes as the cluster knows them: the record src/state stores, the agent's heartbeat fills and
 * the API shows (GET /v1/nodes[/:name], GET /v1/status).
 */
import { Type, type Static } from 'typebox';
import type { RuntimeName } from './jobs.js';

export type NodeStatus = 'ready' | 'down' | 'draining';

/** The label every node carries with its own name, so a nodeSelector can pin a job to one node. */
export const NODE_NAME_LABEL = 'oswalk.dev/node';

/**
 * What the cluster knows of one node: stored as the hash node:<name> (src/state/types.ts encodes
 * it), and what GET /v1/nodes and /v1/status show of each node.
 */
export interface NodeRecord {
  name: string;
  /** Host or IP the node's agent is reached at by peers. */
  address: string;
  /** Base URL of the agent's HTTP server (chunks, metrics), e.g. http://10.0.0.2:7001 */
  agentUrl: string;
  labels: Record<string, string>;
  runtime: RuntimeName;
  /** docker runtime: the image of jobs that name none (the agent's own, else the cluster's); absent: it takes only jobs with an image. */
  defaultImage?: string;
  /** Capacity, read from the OS by the agent (or capped by the Node manifest). */
  cpus: number;
  memoryBytes: number;
  status: NodeStatus;
  /** ms since the epoch of the last heartbeat. */
  lastHeartbeat: number;
  /** ms since the epoch of the last sample of its load history (NodeLoadSample). */
  historyAt?: number;
  registeredAt: number;
  /** Incremented by every agent start, so the cluster can tell a restarted agent from a late one. */
  agentEpoch: number;
  /** Current use as the agent measured it. */
  load1: number;
  memoryUsedBytes: number;
  runningJobs: number;
  /**
   * CPUs its running jobs used over the last few seconds, read from their cgroups, processes or
   * containers (src/agent/cpu-meter.ts). Absent from agents that do not measure it.
   */
  usedCpus?: number;
  /**
   * The part of usedCpus that jobs burn beyond their own reservations, job by job: where the
   * runtime does not enforce a reservation, a job that reserved 0.1 CPU may burn a whole one.
   */
  burstCpus?: number;
  /**
   * The kernel the node runs on (its boot id). Nodes that share one share its CPUs and its load
   * average: agents in containers of one host, every node of `oswalk up`.
   */
  hostId?: string;
  /** The agent's Unix socket for sessions (src/api/attach.ts), which clients of the same kernel use rather than its TLS port. */
  attachSocket?: string;
  exportDir: string;
  mountPath: string;
  /** Filesystem side, from the heartbeat: files waiting for the translate daemon, the chunk store. */
  translateBacklog?: number;
  /** Regular files the node's export directory contributes to the unified filesystem. */
  exportFiles?: number;
  /** Export directory entries left out: names that are not UTF-8 (the translator logs each). */
  exportSkipped?: number;
  storeChunks?: number;
  storeBytes?: number;
  /** Bytes free on the disk of the node's chunk store: copies go to nodes with room. */
  storeFreeBytes?: number;
  cacheBytes?: number;
  /** The mount's file cache (whole files kept for passthrough opens). */
  fileCacheBytes?: number;
  /**
   * Whether the node's mount of the unified filesystem is up (absent: the agent mounts none).
   * A node whose mount is down gets no jobs, and mountError says why.
   */
  mountReady?: boolean;
  mountError?: string;
  /**
   * Being removed (`oswalk node remove`): it takes no jobs and no new copies, its copies do not
   * count, and replication moves what only it holds to other nodes; it still serves reads.
   */
  removing?: boolean;
  /** ms (Redis' clock) when its removal began. */
  removingSince?: number;
}

/** A node's name, as agents join with it: DNS-like, at most 63 characters. */
export const NodeName = Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$' });

/**
 * What GET /v1/nodes[/:name] answers: the record, checked for the fields every node has; the
 * others (what a heartbeat adds) pass through as stored.
 */
export const NodeViewSchema = Type.Unsafe<NodeRecord>(Type.Object({
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
}, { additionalProperties: true }));

/** POST /v1/nodes/:name/drain and /uncordon: the node's status, and for a drain its jobs moved and left to finish. */
export const DrainAnswerSchema = Type.Object({
  name: Type.String(),
  status: Type.String(),
  moved: Type.Optional(Type.Number()),
  remaining: Type.Optional(Type.Number()),
});
export type DrainAnswer = Static<typeof DrainAnswerSchema>;

/** POST /v1/nodes/:name/remove: the node is drained and marked as being removed. */
export const RemoveAnswerSchema = Type.Object({
  name: Type.String(), status: Type.String(), removing: Type.Boolean(), removingSince: Type.Number(),
  moved: Type.Number(), remaining: Type.Number(),
});
export type RemoveAnswer = Static<typeof RemoveAnswerSchema>;

/** GET /v1/nodes/:name/removal: how far a node's removal is. */
export const RemovalSchema = Type.Object({
  name: Type.String(),
  status: Type.String(),
  removing: Type.Boolean(),
  removingSince: Type.Union([Type.Number(), Type.Null()]),
  /** Jobs still placed on or running on the node. */
  runningJobs: Type.Number(),
  /** What the last replication pass that began after the removal found only there; null until one has. */
  pass: Type.Union([Type.Object({ at: Type.Number(), files: Type.Number(), bytes: Type.Number() }), Type.Null()]),
});
export type Removal = Static<typeof RemovalSchema>;

/**
 * POST /v1/nodes/:name/revoke-cert: the node's certificates that were revoked, every one the
 * control plane issued it that had not expired (none: it had none, e.g. a cluster without CA).
 */
export const RevokeCertAnswerSchema = Type.Object({
  name: Type.String(),
  /** ms since the epoch. */
  revokedAt: Type.Number(),
  revoked: Type.Array(Type.Object({ serial: Type.String(), notAfter: Type.Number() })),
});
export type RevokeCertAnswer = Static<typeof RevokeCertAnswerSchema>;

/** One minute of a node's load, as GET /v1/nodes/history gives the last hour of it (the dashboard's charts). */
export interface NodeLoadSample {
  /** ms since the epoch. */
  t: number;
  load1: number;
  /** CPUs its jobs used. */
  usedCpus: number;
  memoryUsedBytes: number;
}
