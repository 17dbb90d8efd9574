import type { Redis } from './redis.js';
import type { FsKeyspace } from './keys.js';
import type { VersionRecord } from '../api/fs.js';
import { getCurrentMany, normalizePath } from './fs.js';

/** Where a job's input files are (spec.inputs): their bytes in all, and the bytes each node holds. */
export interface InputLocality {
  bytes: number;
  nodes: Record<string, number>;
}

/**
 * The bytes of these files of the unified filesystem each node holds whole, read once at a
 * job's submit: a node counts for a file when every chunk of its current version is in its
 * store (pfs:loc of the file's chunk list), or when the version is its own (its export
 * directory's or written through its mount: the file is on its disk). Paths that are not
 * files (gone, directories, unknown) count for nothing. Undefined when nothing is anywhere.
 */
export async function inputLocality(redis: Redis, ks: FsKeyspace, paths: readonly string[]): Promise<InputLocality | undefined> {
  const normal = [...new Set(paths.map((p) => {
    try {
      return normalizePath(p);
    } catch {
      return undefined;
    }
  }).filter((p): p is string => !!p))];
  const files = (await getCurrentMany(redis, ks, normal)).filter((v): v is VersionRecord => v?.type === 'file' && v.size > 0);
  if (!files.length) return undefined;
  // (A file of an export directory not translated yet has no chunk list: only its node has it.)
  const pipe = redis.pipeline();
  for (const f of files) if (f.chunkListHash) pipe.smembers(ks.chunkListLocations(f.chunkListHash));
  const sets = ((await pipe.exec()) ?? []).map(([, v]) => (v as string[] | null) ?? []);
  const out: InputLocality = { bytes: 0, nodes: {} };
  for (const f of files) {
    out.bytes += f.size;
    const holders = new Set(f.chunkListHash ? sets.shift() : []);
    // A restored version's node is whoever restored it, not where its data is.
    if (f.source !== 'restore') holders.add(f.node);
    for (const n of holders) out.nodes[n] = (out.nodes[n] ?? 0) + f.size;
  }
  return out;
}
