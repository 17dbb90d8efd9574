import type { VersionRecord } from '../state/fs.js';

/**
 * Which version of a path everyone sees, given all its versions. The same rule as the fsOp
 * Lua script (which is what actually decides, atomically, on every commit); kept here so the
 * overlay and the CLI can reason about version lists without a round trip, and so the rule
 * has table tests.
 *
 * 1. Each node counts with its latest version only (highest id): a node that went back to an
 *    older file, or deleted it, has said so.
 * 2. Of those, the newest mtime wins.
 * 3. Equal mtimes go to the node whose name sorts first in byte order, so every node agrees.
 * A tombstone can win: the path is then deleted.
 */
export function pickCurrent<V extends Pick<VersionRecord, 'id' | 'node' | 'mtimeNs'>>(versions: readonly V[]): V | undefined {
  const latest = new Map<string, V>();
  for (const v of versions) {
    const l = latest.get(v.node);
    if (!l || Number(v.id) > Number(l.id)) latest.set(v.node, v);
  }
  let best: V | undefined;
  for (const v of latest.values()) {
    if (!best) {
      best = v;
      continue;
    }
    const a = BigInt(v.mtimeNs);
    const b = BigInt(best.mtimeNs);
    if (a > b || (a === b && Buffer.compare(Buffer.from(v.node), Buffer.from(best.node)) < 0)) best = v;
  }
  return best;
}
