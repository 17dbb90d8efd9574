import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Keyspace } from '../state/keys.js';
import type { Logger } from '../util/log.js';

/**
 * The part of the control plane's context the job loops and routes use; the server's
 * ControlPlaneContext has all of it, so it is passed as is.
 */
export interface JobsContext {
  redis: Redis;
  ks: Keyspace;
  log: Logger;
  registry: Registry;
  config: {
    /** Unique id of this control-plane process (leader lease holder). */
    id: string;
    /** A node whose last heartbeat is older than this is marked down. */
    nodeTimeoutMs: number;
  };
}
