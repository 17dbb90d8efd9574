import type { Redis } from '../state/redis.js';
import type { FsKeyspace } from '../state/keys.js';
import { checkHash } from './errors.js';

/**
 * Which nodes hold a chunk list's chunks: one Redis set per chunk list hash. A node is added
 * once every chunk of the chunk list is durable in its store's `own` area (after putFile by
 * the translate daemon, or after replication pulled them). No node leaves the set: it goes
 * whole with its chunk list (chunk list GC), and readers pass over holders that are down or
 * gone. SADD is a single atomic command, so no script is needed.
 */
export async function addChunkListLocation(redis: Redis, ks: FsKeyspace, chunkListHash: string, node: string): Promise<boolean> {
  checkHash(chunkListHash, 'chunk list hash');
  return (await redis.sadd(ks.chunkListLocations(chunkListHash), node)) === 1;
}

/** Holders of a chunk list, sorted by name. */
export async function chunkListLocations(redis: Redis, ks: FsKeyspace, chunkListHash: string): Promise<string[]> {
  checkHash(chunkListHash, 'chunk list hash');
  return (await redis.smembers(ks.chunkListLocations(chunkListHash))).sort();
}

/** How many nodes hold each chunk list, in one round trip (the dashboard's file lists). */
export async function countChunkListLocations(redis: Redis, ks: FsKeyspace, chunkListHashes: readonly string[]): Promise<number[]> {
  if (!chunkListHashes.length) return [];
  const pipe = redis.pipeline();
  for (const h of chunkListHashes) {
    checkHash(h, 'chunk list hash');
    pipe.scard(ks.chunkListLocations(h));
  }
  return ((await pipe.exec()) ?? []).map(([err, n]) => {
    if (err) throw err;
    return n as number;
  });
}
