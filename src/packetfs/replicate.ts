import type { StorageCounts, StorageHealth } from '../api/status.js';
import type { Redis } from '../state/redis.js';
import type { FsKeyspace, Keyspace } from '../state/keys.js';
import type { FsState } from '../state/fs-layout.js';
import { listNodes } from '../state/nodes.js';
import type { CurrentFile } from '../state/fs-walk.js';
import { createLogger, type Logger } from '../util/log.js';
import { copiesIn, rankTargets, wantedCopies } from './copies.js';
import type { ChunkFetcher } from './fetcher.js';
import { addChunkListLocation, chunkListLocations } from './locations.js';
import type { StoragePolicy } from './policy.js';
import { copyTarget, holderTargets, holdsCopies } from './push.js';
import type { ChunkRef } from './store.js';

export interface ReplicateOptions {
  fetcher: ChunkFetcher;
  redis: Redis;
  ks: Keyspace;
  /** The cluster's files (chunk lists, where their chunks are). */
  fs: FsState;
  self: string;
  policy: StoragePolicy;
  /** Every current file of the unified tree (fs-walk's currentFilesUnder('/')). */
  files(): AsyncIterable<CurrentFile>;
  /** The chunks of a chunk list, or undefined when it is gone (fsmeta's getChunkList + decodeChunkList). */
  loadChunkList(chunkListHash: string): Promise<readonly ChunkRef[] | undefined>;
  /** Paces the bytes pulled (shared across passes, so the rate holds over time). */
  pace: Pace;
  /** Chunks fetched at once while pulling one chunk list. Default 4. */
  concurrency?: number;
  now?: number;
  log?: Logger;
}

/** What a pass found, and what this node did about it. */
export interface ReplicateResult extends StorageCounts {
  /** Chunk lists this node pulled and now holds. */
  pulled: number;
  pulledBytes: number;
  failed: number;
}

export async function storageHealth(redis: Redis, ks: FsKeyspace): Promise<StorageHealth | undefined> {
  const h = await redis.hgetall(ks.storageHealth);
  if (!h.at) return undefined;
  const n = (k: string) => Number(h[k] ?? 0);
  // The count of chunk lists is stored under its first name, `manifests`, as clusters hold it.
  return {
    at: n('at'), by: h.by ?? '', chunkLists: n('manifests'), bytes: n('bytes'),
    underFiles: n('underFiles'), underBytes: n('underBytes'), lostFiles: n('lostFiles'), lostBytes: n('lostBytes'),
    removing: h.removing ? (JSON.parse(h.removing) as StorageHealth['removing']) : {},
  };
}

/** Bytes per second, with a burst of one second's worth: a token bucket as a timeline. */
export class Pace {
  private next = 0;
  constructor(private bytesPerSecond: number) {}

  setRate(bytesPerSecond: number): void {
    this.bytesPerSecond = bytesPerSecond;
  }

  /** Wait until `bytes` more fit in the rate (no wait with a rate of 0: no limit). */
  async take(bytes: number): Promise<void> {
    if (!(this.bytesPerSecond > 0)) return;
    const now = Date.now();
    this.next = Math.max(this.next, now - 1000) + (bytes * 1000) / this.bytesPerSecond;
    const wait = this.next - now;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

interface Need {
  chunkListHash: string;
  bytes: number;
  want: number;
  /** Holders that count: live ones, and down ones still within the grace period. */
  counted: string[];
  live: number;
}

/**
 * One replication pass, run periodically by every agent (pull-based, as HDFS's re-replication
 * is driven by the namenode's view, with Redis as that view).
 *
 * For every current file the copies it wants are its Mount's (the longest replication prefix
 * that covers it, else spec.copies), at most the number of live nodes. Holders count while
 * their node is live, and for the grace period (rereplicateAfterMs) after it went down, so a
 * node that restarts does not set off a storm of copies; a node being removed never counts.
 * Files short of copies are taken last copy first; for each, the nodes to take the missing
 * copies are ranked by rankTargets (zones first, then rendezvous hashing), which every agent
 * computes the same from the same Redis state, so they neither all pull the same file nor wait
 * on each other: an agent pulls only what it was chosen for, at the policy's rate, and adds
 * itself as a holder once every chunk is durable in its own area. The pass also writes what it
 * saw of the whole cluster to pfs:health, for `oswalk status`.
 */
export async function replicate(opts: ReplicateOptions): Promise<ReplicateResult> {
  const log = opts.log ?? createLogger('packetfs-replicate', { node: opts.self });
  // Redis' clock, as node heartbeats and removals are stamped with: an agent's own clock may be off.
  const now: number = opts.now ?? (await opts.redis.time().then(([s, us]) => Number(s) * 1000 + Math.floor(Number(us) / 1000)));
  const nodes = await listNodes(opts.redis, opts.ks);
  const removing = nodes.filter((n) => n.removing).map((n) => n.name);
  const res: ReplicateResult = {
    chunkLists: 0, bytes: 0, underFiles: 0, underBytes: 0, lostFiles: 0, lostBytes: 0, pulled: 0, pulledBytes: 0, failed: 0,
    removing: Object.fromEntries(removing.map((n) => [n, { files: 0, bytes: 0 }])),
  };
  const live = nodes.filter(holdsCopies);
  const liveNames = new Set(live.map((n) => n.name));
  const counts = new Set(nodes.filter((n) => !n.removing && (holdsCopies(n) || now - n.lastHeartbeat < opts.policy.rereplicateAfterMs)).map((n) => n.name));
  const byName = new Map(nodes.map((n) => [n.name, n]));

  // One entry per content: identical files share a chunk list, and the most copies any of them wants wins.
  const wanted = new Map<string, { want: number; bytes: number }>();
  for await (const f of opts.files()) {
    const want = copiesIn(wantedCopies(opts.policy, f.path), Math.max(1, live.length));
    const w = wanted.get(f.chunkListHash);
    if (!w || w.want < want) wanted.set(f.chunkListHash, { want, bytes: f.size });
  }
  const needs: Need[] = [];
  for (const [chunkListHash, { want, bytes }] of wanted) {
    if (bytes === 0) continue;
    res.chunkLists++;
    res.bytes += bytes;
    const holders = await chunkListLocations(opts.fs.redis, opts.fs.ks, chunkListHash);
    const liveHolders = holders.filter((h) => liveNames.has(h)).length;
    if (liveHolders < want) {
      res.underFiles++;
      res.underBytes += bytes;
    }
    if (liveHolders === 0) {
      res.lostFiles++;
      res.lostBytes += bytes;
    }
    const counted = holders.filter((h) => counts.has(h));
    if (counted.length < want) {
      needs.push({ chunkListHash, bytes, want, counted, live: liveHolders });
      for (const r of removing) {
        if (!holders.includes(r)) continue;
        res.removing[r].files++;
        res.removing[r].bytes += bytes;
      }
    }
  }
  await opts.fs.redis.hset(opts.fs.ks.storageHealth, {
    at: now, by: opts.self, manifests: res.chunkLists, bytes: res.bytes,
    underFiles: res.underFiles, underBytes: res.underBytes, lostFiles: res.lostFiles, lostBytes: res.lostBytes,
    removing: JSON.stringify(res.removing),
  });
  if (!liveNames.has(opts.self)) return res;

  needs.sort((a, b) => a.live - b.live || b.bytes - a.bytes);
  for (const need of needs) {
    if (need.counted.includes(opts.self)) continue;
    const targets = rankTargets(need.chunkListHash, need.bytes, live.map(copyTarget), holderTargets(need.counted, byName));
    if (!targets.slice(0, need.want - need.counted.length).includes(opts.self)) continue;
    try {
      const chunks = await opts.loadChunkList(need.chunkListHash);
      if (!chunks) continue;
      const queue = [...chunks];
      let bytes = 0;
      const worker = async (): Promise<void> => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          await opts.pace.take(c.size);
          if ((await opts.fetcher.pull(c, need.chunkListHash)) !== 'had') bytes += c.size;
        }
      };
      await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
      await addChunkListLocation(opts.fs.redis, opts.fs.ks, need.chunkListHash, opts.self);
      res.pulled++;
      res.pulledBytes += bytes;
      log.info({ chunkListHash: need.chunkListHash, chunks: chunks.length, bytes, liveCopiesBefore: need.live, wanted: need.want }, 'made a copy of a file that was short of copies');
    } catch (err) {
      res.failed++;
      log.warn({ chunkListHash: need.chunkListHash, err: (err as Error).message }, 'could not copy a file that is short of copies; the next pass tries again');
    }
  }
  return res;
}
