import { randomBytes } from 'node:crypto';
import { fsKeyspace, fsPrefixFor, type FsKeyspace, type Keyspace } from './keys.js';
import { keysWithPrefix } from './fs-walk.js';
import { clusterId } from './nodes.js';
import type { Redis } from './redis.js';

/**
 * Where a cluster's files are kept: the Redis holding its namespace, chunk lists, chunk
 * locations and locks (the cluster's own, or `--fs-redis`'s), and their keys in it.
 */
export interface FsState { redis: Redis; ks: FsKeyspace }

/**
 * Opens the cluster's filesystem keys in `fsRedis` (`redis`, the cluster's own, when the
 * operator gave no `--fs-redis`). Which prefix they are under is kept in the cluster hash (field
 * fsPrefix), set by the first process of the cluster to ask:
 *  - a new cluster's: fsPrefixFor(its prefix), a hash tag of their own;
 *  - a cluster made before the two were apart, which has files under its own prefix
 *    (`<prefix>fs:*`), keeps them there: moving every key at an upgrade could be cut off half
 *    done, and a Redis Cluster cannot rename a key into another slot. Such a cluster's files
 *    cannot move to another Redis either (refused with what to do).
 * The fs Redis remembers the cluster it serves (fs:cluster): a second cluster pointed at the same
 * one and prefix is refused, rather than shown the first one's files and allowed to change them.
 */
export async function openFs(redis: Redis, ks: Keyspace, fsRedis: Redis = redis): Promise<FsState> {
  let prefix = await redis.hget(ks.cluster, 'fsPrefix');
  if (prefix === null) {
    const before = await hasKeyWithPrefix(redis, `${ks.prefix}fs:`);
    if (before && fsRedis !== redis) {
      throw new Error(`this cluster's files are kept in its own Redis under ${ks.prefix}fs: (it was made before --fs-redis existed); they cannot be served from another Redis: run without --fs-redis`);
    }
    await redis.hsetnx(ks.cluster, 'fsPrefix', before ? ks.prefix : fsPrefixFor(ks.prefix));
    prefix = (await redis.hget(ks.cluster, 'fsPrefix')) as string;
  }
  const fs: FsState = { redis: fsRedis, ks: fsKeyspace(prefix) };
  const id = await clusterId(redis, ks, randomBytes(6).toString('hex'));
  await fsRedis.set(fs.ks.fsOwner, id, 'NX');
  const owner = await fsRedis.get(fs.ks.fsOwner);
  if (owner !== id) {
    throw new Error(`the filesystem Redis holds another cluster's files under ${prefix} (cluster ${owner}, this is ${id}): give each cluster a Redis of its own, or another --prefix`);
  }
  return fs;
}

async function hasKeyWithPrefix(redis: Redis, prefix: string): Promise<boolean> {
  for await (const _ of keysWithPrefix(redis, prefix)) return true;
  return false;
}
