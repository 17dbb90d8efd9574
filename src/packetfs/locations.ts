import type { Redis } from '../state/redis.js';
import type { Keyspace } from '../state/keys.js';
import { checkHash } from './errors.js';

/**
 * Which nodes hold a manifest's chunks: one Redis set per manifest hash. A node is added
 * once every chunk of the manifest is durable in its store's `own` area (after putFile by
 * the translate daemon, or after replication pulled them) and removed when it drops them.
 * SADD/SREM are single atomic commands, so no script is needed.
 */
export async function addManifestLocation(redis: Redis, ks: Keyspace, manifestHash: string, node: string): Promise<boolean> {
  checkHash(manifestHash, 'manifest hash');
  return (await redis.sadd(ks.manifestLocations(manifestHash), node)) === 1;
}

export async function removeManifestLocation(redis: Redis, ks: Keyspace, manifestHash: string, node: string): Promise<boolean> {
  checkHash(manifestHash, 'manifest hash');
  return (await redis.srem(ks.manifestLocations(manifestHash), node)) === 1;
}

/** Holders of a manifest, sorted by name. */
export async function manifestLocations(redis: Redis, ks: Keyspace, manifestHash: string): Promise<string[]> {
  checkHash(manifestHash, 'manifest hash');
  return (await redis.smembers(ks.manifestLocations(manifestHash))).sort();
}

/** How many nodes hold each manifest, in one round trip (the dashboard's file lists). */
export async function countManifestLocations(redis: Redis, ks: Keyspace, manifestHashes: readonly string[]): Promise<number[]> {
  if (!manifestHashes.length) return [];
  const pipe = redis.pipeline();
  for (const h of manifestHashes) {
    checkHash(h, 'manifest hash');
    pipe.scard(ks.manifestLocations(h));
  }
  return ((await pipe.exec()) ?? []).map(([err, n]) => {
    if (err) throw err;
    return n as number;
  });
}
