import type { VersionRecord } from '../../src/api/fs.js';

/**
 * Which version of a path everyone sees, given all its versions: the rule
 * src/state/lua/include/fs.lua applies (atomically, on every commit), restated apart from it so
 * that tests can check the scripts against a second reading of the rule and the rule itself
 * against a table.
 *
 * 1. Each node has two streams of versions: what its export directory says (source export),
 *    and what was done through the mount or by a restore (source mount|restore). Each stream
 *    counts with its latest version only (highest id): a node that went back to an older file,
 *    or deleted it, has said so; and a delete through the mount is not undone by the same
 *    node's export directory still holding the older copy.
 * 2. Of those, the newest mtime wins.
 * 3. Equal mtimes go to the node whose name sorts first in byte order, so every node agrees;
 *    within one node, to the mount stream.
 * A tombstone can win: the path is then deleted.
 */
export function pickCurrent<V extends Pick<VersionRecord, 'id' | 'node' | 'mtimeNs' | 'source'>>(versions: readonly V[]): V | undefined {
  const stream = (v: V) => (v.source === 'export' ? 'e' : 'm');
  const latest = new Map<string, V>();
  for (const v of versions) {
    const k = `${v.node} ${stream(v)}`;
    const l = latest.get(k);
    if (!l || Number(v.id) > Number(l.id)) latest.set(k, v);
  }
  let best: V | undefined;
  for (const v of latest.values()) {
    if (!best) {
      best = v;
      continue;
    }
    const a = BigInt(v.mtimeNs);
    const b = BigInt(best.mtimeNs);
    const byNode = Buffer.compare(Buffer.from(v.node), Buffer.from(best.node));
    if (a > b || (a === b && (byNode < 0 || (byNode === 0 && stream(v) === 'm')))) best = v;
  }
  return best;
}
