import type { Redis } from 'ioredis';
import type { FsKeyspace } from './keys.js';
import type { VersionInfo } from '../api/fs.js';
import { FsError, GET_MANY_MAX, getCurrentMany, listDir, listVersions, normalizePath } from './fs.js';

/** A current file of the unified tree, as replication sees it. */
export interface CurrentFile {
  path: string;
  chunkListHash: string;
  size: number;
}

/**
 * The current files below a directory of the unified tree (replication: what the nodes
 * should hold). Breadth-first, a directory listing and one batched lookup at a time, so
 * memory stays bounded by the widest directory.
 */
export async function* currentFilesUnder(redis: Redis, ks: FsKeyspace, dir: string): AsyncGenerator<CurrentFile> {
  const queue = [normalizePath(dir)];
  while (queue.length) {
    const d = queue.shift()!;
    let entries;
    try {
      entries = await listDir(redis, ks, d);
    } catch (err) {
      // The prefix (or a directory found on the way) is gone or is not a directory: nothing below.
      if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) continue;
      throw err;
    }
    const base = d === '/' ? '' : d;
    for (const e of entries) if (e.type === 'dir') queue.push(`${base}/${e.name}`);
    const files = entries.filter((e) => e.type === 'file').map((e) => `${base}/${e.name}`);
    for (let i = 0; i < files.length; i += GET_MANY_MAX) {
      for (const v of await getCurrentMany(redis, ks, files.slice(i, i + GET_MANY_MAX))) {
        if (v?.chunkListHash) yield { path: v.path, chunkListHash: v.chunkListHash, size: v.size };
      }
    }
  }
}

/**
 * Every chunk list any kept version references, current or not (garbage collection: a chunk is
 * live while some version could still be restored). SCANs the version keys, so it reads the
 * whole namespace: it is meant for an occasional background pass, not a hot path.
 */
export async function* allReferencedChunkLists(redis: Redis, ks: FsKeyspace): AsyncGenerator<string> {
  for await (const { versions } of allKeptVersions(redis, ks)) {
    for (const v of versions) if (v.chunkListHash) yield v.chunkListHash;
  }
}

/**
 * Every kept version, a path (or a hard-linked file's inode, `#<n>`) at a time: SCANs the
 * version keys, as allReferencedChunkLists does.
 */
export async function* allKeptVersions(redis: Redis, ks: FsKeyspace): AsyncGenerator<{ path: string; versions: VersionInfo[] }> {
  const prefix = ks.fsVersions('');
  for await (const key of keysWithPrefix(redis, prefix)) {
    const path = key.slice(prefix.length);
    yield { path, versions: await listVersions(redis, ks, path, { stored: true }) };
  }
}

/** Every chunk list hash in fs:m, referenced or not (chunk list garbage collection); may repeat one. */
export async function* allStoredChunkLists(redis: Redis, ks: FsKeyspace): AsyncGenerator<string> {
  const prefix = ks.fsChunkList('');
  for await (const key of keysWithPrefix(redis, prefix)) yield key.slice(prefix.length);
}

/** SCAN: a key there for the whole walk is yielded at least once, one that comes or goes meanwhile maybe. */
export async function* keysWithPrefix(redis: Redis, prefix: string): AsyncGenerator<string> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500);
    cursor = next;
    yield* keys;
  } while (cursor !== '0');
}
