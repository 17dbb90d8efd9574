import type { Redis } from '../state/redis.js';
import {
  DEFAULT_COPIES, DEFAULT_REREPLICATE_AFTER_SECONDS, DEFAULT_REREPLICATE_RATE, parseMemory,
} from '../manifest/index.js';
import type { Keyspace } from '../state/keys.js';
import { listObjects } from '../state/objects.js';
import type { CopyPolicy } from './copies.js';

/** What the applied Mount says of copies and re-replication, with the defaults where it is silent. */
export interface StoragePolicy extends CopyPolicy {
  /** How long a holder may be down before its copies are made again elsewhere. */
  rereplicateAfterMs: number;
  /** What one node's replication pass pulls per second at most. */
  rereplicateBytesPerSecond: number;
}

/**
 * The first applied Mount's policy (a cluster has one Mount; the cache sizes come from the same
 * one). A Mount stored before a field existed gets that field's default.
 */
export async function storagePolicy(redis: Redis, ks: Keyspace): Promise<StoragePolicy> {
  const m = (await listObjects(redis, ks, 'Mount')).find((o) => o.kind === 'Mount');
  const s: Partial<Extract<typeof m, { kind: 'Mount' }>['spec']> = m?.kind === 'Mount' ? m.spec : {};
  return {
    copies: s.copies ?? DEFAULT_COPIES,
    replication: s.replication ?? [],
    rereplicateAfterMs: (s.rereplicateAfterSeconds ?? DEFAULT_REREPLICATE_AFTER_SECONDS) * 1000,
    rereplicateBytesPerSecond: s.rereplicateBytesPerSecond ?? parseMemory(DEFAULT_REREPLICATE_RATE),
  };
}

/** storagePolicy read at most once per `ttlMs`: a writer asks on every close (and every open, without waiting). */
export class PolicyCache {
  private read?: { at: number; p: Promise<StoragePolicy> };
  private value?: { at: number; policy: StoragePolicy };

  constructor(private readonly redis: Redis, private readonly ks: Keyspace, private readonly ttlMs = 5000) {}

  get(): Promise<StoragePolicy> {
    if (!this.read || Date.now() - this.read.at > this.ttlMs) {
      const p = storagePolicy(this.redis, this.ks);
      this.read = { at: Date.now(), p };
      p.then((policy) => {
        this.value = { at: Date.now(), policy };
      }, () => {
        if (this.read?.p === p) this.read = undefined;
      });
    }
    return this.read.p;
  }

  /** The policy, if it was read within the TTL (never an older one); starts a new read when it is old. */
  last(): StoragePolicy | undefined {
    void this.get().catch(() => undefined);
    return this.value && Date.now() - this.value.at <= this.ttlMs ? this.value.policy : undefined;
  }
}
