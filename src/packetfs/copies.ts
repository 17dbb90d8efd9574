import { createHash } from 'node:crypto';
import { DEFAULT_COPIES, type MountSpec } from '../manifest/index.js';

/**
 * How many nodes hold each file, and which nodes take the copies: pure functions, the same on
 * every node for the same inputs, so that writers, the replication pass and `oswalk status`
 * agree without talking to each other (tested by tables in test/packetfs/copies.test.ts).
 */

/** What the applied Mount says of copies: a default, and rules per path prefix. */
export type CopyPolicy = Pick<MountSpec, 'copies' | 'replication'>;

/** With no Mount applied. */
export const DEFAULT_POLICY: CopyPolicy = { copies: DEFAULT_COPIES, replication: [] };

/**
 * The copies a file at `path` ('/a/b') wants: the rule with the longest prefix that covers it
 * (the most specific one, as HDFS's per-directory replication), else the policy's default.
 */
export function wantedCopies(policy: CopyPolicy, path: string): number | 'all' {
  const rel = path.replace(/^\/+/, '');
  let best: CopyPolicy['replication'][number] | undefined;
  for (const r of policy.replication) {
    if (rel.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  return best ? best.copies : policy.copies;
}

/** `wanted` in nodes, given how many nodes can hold a copy now: never more than exist, never less than 1. */
export function copiesIn(wanted: number | 'all', nodes: number): number {
  return Math.max(1, Math.min(wanted === 'all' ? nodes : wanted, nodes));
}

/** A node that can take a copy. */
export interface CopyTarget {
  name: string;
  /** Its `zone` label: copies go to zones no holder is in first, as HDFS spreads replicas over racks. */
  zone?: string;
  /** Bytes free on its chunk store's disk, when known: a node without room for the file is passed over. */
  freeBytes?: number;
}

/** Rendezvous (highest-random-weight) score: every node ranks the candidates the same way. */
function score(chunkListHash: string, node: string): string {
  return createHash('sha256').update(`${chunkListHash}\0${node}`).digest('hex');
}

/**
 * The nodes to take new copies of a chunk list of `bytes` bytes, best first: every candidate
 * that is not a holder and has room, ordered so that each next one is in a zone no holder (nor
 * an earlier pick) is in when there is such a node, then by rendezvous score. Callers take as
 * many as they need from the front and go on down the list when one fails.
 */
export function rankTargets(chunkListHash: string, bytes: number, candidates: readonly CopyTarget[], holders: readonly CopyTarget[]): string[] {
  const held = new Set(holders.map((h) => h.name));
  const zones = new Set(holders.map((h) => h.zone).filter((z): z is string => z !== undefined));
  const pool = candidates
    .filter((c) => !held.has(c.name) && (c.freeBytes === undefined || c.freeBytes >= bytes))
    .map((c) => ({ ...c, score: score(chunkListHash, c.name) }))
    .sort((a, b) => (a.score < b.score ? 1 : a.score > b.score ? -1 : 0));
  const out: string[] = [];
  while (pool.length) {
    let i = pool.findIndex((c) => c.zone !== undefined && !zones.has(c.zone));
    if (i < 0) i = 0;
    const [pick] = pool.splice(i, 1);
    if (pick.zone !== undefined) zones.add(pick.zone);
    out.push(pick.name);
  }
  return out;
}
