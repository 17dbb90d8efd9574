import type { BlockingReaders, Redis } from '../state/redis.js';
import type { Registry } from 'prom-client';
import type { Keyspace } from '../state/keys.js';
import type { FsState } from '../state/fs-layout.js';
import type { Logger } from '../util/log.js';
import type { ClusterCa } from '../util/pki.js';

export interface ControlPlaneConfig {
  /** Bearer token every /v1/ request must carry. */
  token: string;
  /** The Redis URL handed to agents when they join (may differ from ours, e.g. a service name). */
  agentRedisUrl: string;
  /** The Redis of the cluster's files handed to agents, when they have one of their own (--fs-redis). */
  agentFsRedisUrl?: string;
  /** A node whose last heartbeat is older than this is marked down. */
  nodeTimeoutMs: number;
  /**
   * The image docker nodes run a job in when it names none, handed to agents as they join;
   * a node's own --default-image wins.
   */
  defaultImage?: string;
  /** Unique id of this control-plane process (leader lease holder). */
  id: string;
  /** Whether the web dashboard is served at / (routes/dashboard.ts). */
  dashboard?: boolean;
  /** What signs node certificates, and for how long they last; absent: nodes get none. */
  nodeCa?: { ca: ClusterCa; lifetimeMs: number };
}

/** What every route plugin and control loop of the control plane is given. */
export interface ControlPlaneContext {
  redis: Redis;
  /** Connections for the blocking reads of log followers. */
  readers: BlockingReaders;
  ks: Keyspace;
  /** The cluster's files: in `redis`, or in a Redis of their own (--fs-redis). */
  fs: FsState;
  log: Logger;
  registry: Registry;
  config: ControlPlaneConfig;
}
