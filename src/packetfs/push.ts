import { listNodes } from '../state/nodes.js';
import type { NodeRecord } from '../api/nodes.js';
import { createLogger, type Logger } from '../util/log.js';
import { copiesIn, rankTargets, type CopyTarget } from './copies.js';
import type { PeerSideOptions } from './fetcher.js';
import { chunkListLocations } from './locations.js';
import { encodeChunkList } from './chunk-list.js';
import { PeerClient } from './peer-http.js';
import type { ChunkRef } from './store.js';

/**
 * A node that can take and serve copies now: its agent heartbeats (a draining node still
 * stores; only jobs leave it) and it is not being removed from the cluster.
 */
export function holdsCopies(n: NodeRecord): boolean {
  return n.status !== 'down' && !n.removing && !!n.agentUrl;
}

export function copyTarget(n: NodeRecord): CopyTarget {
  const zone = n.labels.zone;
  return { name: n.name, ...(zone ? { zone } : {}), ...(n.storeFreeBytes === undefined ? {} : { freeBytes: n.storeFreeBytes }) };
}

/** Holders by name as copy targets (a holder no longer listed has only its name). */
export function holderTargets(names: readonly string[], byName: ReadonlyMap<string, NodeRecord>): CopyTarget[] {
  return names.map((h) => {
    const n = byName.get(h);
    return n ? copyTarget(n) : { name: h };
  });
}

/** Fewer nodes took a file's copies than it wants, though enough nodes are up: the close fails with EIO. */
export class CopiesError extends Error {
  readonly code = 'EIO';
  constructor(readonly chunkListHash: string, readonly held: number, readonly wanted: number, detail: string) {
    super(`chunk list ${chunkListHash}: ${held} of ${wanted} copies made (${detail})`);
    this.name = 'CopiesError';
  }
}

export interface CopyPusherOptions extends PeerSideOptions {
  /** One request to one peer. Default 5 s: a chunk takes milliseconds on a healthy peer. */
  timeoutMs?: number;
  /** Chunks sent to one peer at once. Default 4. */
  concurrency?: number;
  log?: Logger;
}

const NODES_TTL_MS = 1000;
/** A peer that failed a copy lately is asked last (it may be dead and not yet marked down). */
const FAILED_PEER_MS = 10_000;

/**
 * Makes the copies of a file its node just stored (HDFS's write pipeline, in one hop): the
 * writer sends the chunks a chosen peer lacks, and the peer adds itself to the chunk list's
 * holders once every chunk is durable in its store (POST /v1/holds/:chunkListHash, see routes.ts).
 * A close waits for this, so a file whose close succeeded is on `wanted` nodes.
 */
export class CopyPusher {
  private readonly log: Logger;
  private readonly peers: PeerClient;
  private nodes?: { at: number; list: NodeRecord[] };
  private readonly failedUntil = new Map<string, number>();

  constructor(private readonly o: CopyPusherOptions) {
    this.log = o.log ?? createLogger('packetfs-push', { node: o.self });
    this.peers = new PeerClient(o.token, o.timeoutMs ?? 5000, o.stateDir);
  }

  private failedLately(name: string): boolean {
    return (this.failedUntil.get(name) ?? 0) > Date.now();
  }

  close(): void {
    this.peers.close();
  }

  private refreshing?: Promise<NodeRecord[]>;

  private liveNodes(): Promise<NodeRecord[]> {
    if (this.nodes && Date.now() - this.nodes.at < NODES_TTL_MS) return Promise.resolve(this.nodes.list);
    this.refreshing ??= listNodes(this.o.redis, this.o.ks).then((all) => {
      const list = all.filter(holdsCopies);
      this.nodes = { at: Date.now(), list };
      return list;
    }).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * The agent URLs of the peers a file about to be written should stream its chunks to (the
   * live chunker does, as they are cut), ranked for `key` (its path: the content is not known
   * yet), from what this pusher last knew of the nodes, without waiting; none until it knows.
   * The close then holds these peers first (ensure's `prefer`).
   */
  streamTargets(key: string, wanted: number | 'all'): string[] {
    void this.liveNodes().catch(() => undefined);
    const live = this.nodes?.list ?? [];
    const peers = live.filter((n) => n.name !== this.o.self);
    const want = copiesIn(wanted, peers.length + 1);
    if (want <= 1) return [];
    const self = live.find((n) => n.name === this.o.self);
    const byName = new Map(peers.map((n) => [n.name, n]));
    const ranked = rankTargets(key, 0, peers.map(copyTarget), [self ? copyTarget(self) : { name: this.o.self }]);
    return [...ranked.filter((t) => !this.failedLately(t)), ...ranked.filter((t) => this.failedLately(t))]
      .slice(0, want - 1)
      .map((name) => byName.get(name)!.agentUrl);
  }

  /**
   * Make sure `wanted` live nodes (fewer when fewer are up) hold the chunk list, this one among
   * them (its chunks are in this node's store). Peers whose agent URL is in `prefer` (those
   * the chunks were streamed to) are asked first. Returns the holders; throws CopiesError when
   * every candidate failed before `atLeast` copies (default: all wanted) were made, and leaves
   * what is short beyond that to the replication pass.
   */
  async ensure(chunkListHash: string, chunks: readonly ChunkRef[], wanted: number | 'all', prefer: readonly string[] = [], atLeast?: number): Promise<string[]> {
    const live = await this.liveNodes();
    const peers = live.filter((n) => n.name !== this.o.self);
    const want = copiesIn(wanted, peers.length + 1);
    if (want <= 1 || chunks.length === 0) return [this.o.self];
    const byName = new Map(live.map((n) => [n.name, n]));
    const holders = (await chunkListLocations(this.o.fs.redis, this.o.fs.ks, chunkListHash)).filter((h) => h === this.o.self || byName.has(h));
    if (!holders.includes(this.o.self)) holders.push(this.o.self);
    if (holders.length >= want) return holders;
    const bytes = chunks.reduce((s, c) => s + c.size, 0);
    const ranked = rankTargets(chunkListHash, bytes, peers.map(copyTarget), holderTargets(holders, byName));
    const preferred = ranked.filter((t) => prefer.includes(byName.get(t)!.agentUrl));
    const rest = ranked.filter((t) => !preferred.includes(t));
    const targets = [...preferred, ...rest.filter((t) => !this.failedLately(t)), ...rest.filter((t) => this.failedLately(t))];
    const errors: string[] = [];
    const worker = async (): Promise<void> => {
      while (holders.length < want) {
        const t = targets.shift();
        if (!t) return;
        try {
          await this.pushTo(byName.get(t)!, chunkListHash, chunks);
          holders.push(t);
        } catch (err) {
          errors.push(`${t}: ${(err as Error).message}`);
          this.failedUntil.set(t, Date.now() + FAILED_PEER_MS);
          this.log.warn({ peer: t, chunkListHash, err: (err as Error).message }, 'a peer did not take a copy; trying another');
        }
      }
    };
    await Promise.all(Array.from({ length: want - holders.length }, worker));
    const needed = Math.min(want, atLeast ?? want);
    if (holders.length < needed) throw new CopiesError(chunkListHash, holders.length, needed, errors.join('; ') || 'no other node to take it');
    if (holders.length < want) this.log.warn({ chunkListHash, holders, wanted: want, errors }, 'fewer copies than wanted; the replication pass makes the rest');
    return holders;
  }

  /** Send one peer what it lacks of the chunk list; resolves once it holds the whole chunk list. */
  async pushTo(peer: NodeRecord, chunkListHash: string, chunks: readonly ChunkRef[]): Promise<void> {
    const base = peer.agentUrl.replace(/\/+$/, '');
    const list = encodeChunkList(chunks);
    const ask = async (): Promise<string[]> => {
      const res = await this.peers.request('POST', `${base}/v1/holds/${chunkListHash}`, list);
      if (res.status !== 200) throw new Error(`hold: HTTP ${res.status} ${res.body.toString().slice(0, 200)}`);
      const body = JSON.parse(res.body.toString()) as { held: boolean; missing: string[] };
      return body.held ? [] : body.missing;
    };
    const missing = await ask();
    if (!missing.length) return;
    const size = new Map(chunks.map((c) => [c.hash, c.size]));
    const queue = [...missing];
    const send = async (): Promise<void> => {
      for (let h = queue.shift(); h; h = queue.shift()) {
        await this.peers.putChunk(base, h, await this.o.store.get(h, size.get(h)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency ?? 4, queue.length) }, send));
    const still = await ask();
    if (still.length) throw new Error(`still lacks ${still.length} chunks after they were sent`);
  }
}
