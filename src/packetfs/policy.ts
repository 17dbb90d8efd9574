import type { Redis } from 'ioredis';
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

/** storagePolicy read at most once per `ttlMs`: a writer asks on every close. */
export function cachedStoragePolicy(redis: Redis, ks: Keyspace, ttlMs = 5000): () => Promise<StoragePolicy> {
  let last: { at: number; p: Promise<StoragePolicy> } | undefined;
  return () => {
    if (!last || Date.now() - last.at > ttlMs) {
      const p = storagePolicy(redis, ks);
      last = { at: Date.now(), p };
      p.catch(() => {
        if (last?.p === p) last = undefined;
      });
    }
    return last.p;
  };
}
