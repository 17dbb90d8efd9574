import type { Redis } from '../state/redis.js';
import type { Keyspace } from '../state/keys.js';
import { createLogger, type Logger } from '../util/log.js';
import { ChunkNotFoundError, CorruptChunkError, checkHash } from './errors.js';
import type { ChunkRef, ChunkStore } from './store.js';
import { peerTls } from './peer-tls.js';
import { PeerChunkSource } from './peer-source.js';
import type { FsState } from '../state/fs-layout.js';

/** What a node's side of a chunk exchange with its peers works with (fetcher and pusher alike). */
export interface PeerSideOptions {
  store: ChunkStore;
  /** The cluster's state (its nodes: where peers are). */
  redis: Redis;
  ks: Keyspace;
  /** The cluster's files (chunk lists, where their chunks are). */
  fs: FsState;
  /** This node's name (never asked for chunks, never sent a copy). */
  self: string;
  /** Bearer token of the peers' chunk servers (plain HTTP ones: over TLS the node's certificate is what counts). */
  token: string;
  /** The node's state directory, where its certificate is (peer-tls.ts): peers at https:// URLs are reached with it. */
  stateDir?: string;
}

export interface ChunkFetcherOptions extends PeerSideOptions {
  /** One attempt against one holder, headers and body. Default 2 s. */
  timeoutMs?: number;
  /** The whole getChunk, across every holder tried; then ChunkUnavailableError (EIO). Default 5 s. */
  deadlineMs?: number;
  /** Ask the next holder too when the first has not answered in this long. Default 300 ms. */
  hedgeMs?: number;
  /** The order to try peers in; random by default (peer-source.ts). */
  order?: (names: string[]) => string[];
  /** Bytes of fetched chunks kept in the store's cache area before LRU eviction. Default 1 GiB. */
  cacheBytes?: number;
  /**
   * Bytes of recently read chunks kept in memory, verified, so that the several small reads
   * FUSE makes within one chunk cost one disk read and one hash. Default 64 MiB.
   */
  memoryBytes?: number;
  log?: Logger;
}

export interface FetcherStats {
  memoryHits: number;
  localHits: number;
  remoteFetches: number;
  remoteBytes: number;
  sharedFetches: number;
  badPeerResponses: number;
  failures: number;
  evictions: number;
  cacheBytes: number;
  cacheCount: number;
}

/** Cache writes of fetched chunks that may run behind the readers. */
const MAX_PENDING_WRITES = 32;

/**
 * Gets chunks for readers: the local store first, then the nodes that hold the chunk
 * (peer-source.ts: holders first, hedged, every answer hashed). Concurrent readers of one chunk share one fetch. Fetched chunks land in the store's
 * cache area and are evicted least-recently-used beyond cacheBytes; chunks this node owns
 * (its own files' and those replication made it hold) live in the own area and are never
 * evicted, so eviction can never delete the last copy in the cluster.
 */
export class ChunkFetcher {
  private readonly o: Required<Omit<ChunkFetcherOptions, 'log' | 'stateDir' | 'order'>> & Pick<ChunkFetcherOptions, 'stateDir' | 'order'>;
  private readonly log: Logger;
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private readonly writes = new Set<Promise<void>>();
  /** Hashes whose cache write is still running. */
  private readonly pending = new Set<string>();
  /** Cache-area chunks in LRU order (first = least recently used): hash → size. */
  private readonly lru = new Map<string, number>();
  private lruBytes = 0;
  /** Recently returned chunks (LRU, first = oldest). */
  private readonly mem = new Map<string, Buffer>();
  private memBytes = 0;
  private ready?: Promise<void>;
  private readonly peers: PeerChunkSource;
  private readonly s = { memoryHits: 0, localHits: 0, sharedFetches: 0, evictions: 0 };

  constructor(opts: ChunkFetcherOptions) {
    this.o = { timeoutMs: 2000, deadlineMs: 5000, hedgeMs: 300, cacheBytes: 1 << 30, memoryBytes: 64 << 20, ...opts };
    this.log = opts.log ?? createLogger('packetfs-fetcher', { node: opts.self });
    this.peers = new PeerChunkSource({ ...this.o, log: this.log, tls: () => peerTls(opts.stateDir) });
  }

  /** Rebuild the LRU from the cache area (oldest mtime first); called lazily. */
  init(): Promise<void> {
    this.ready ??= (async () => {
      const entries: { hash: string; size: number; mtimeMs: number }[] = [];
      for await (const c of this.o.store.list('cache')) entries.push(c);
      entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
      for (const e of entries) this.remember(e.hash, e.size);
      await this.evict();
    })();
    return this.ready;
  }

  /** Close the idle keep-alive connections to peers (shutdown; call flush() first to keep every fetched chunk). */
  close(): void {
    this.peers.close();
  }

  stats(): FetcherStats {
    return { ...this.s, ...this.peers.stats(), cacheBytes: this.lruBytes, cacheCount: this.lru.size };
  }

  /**
   * A chunk's bytes, verified. Rejects with ChunkUnavailableError (code 'EIO') when no holder
   * delivers within deadlineMs. The buffer may be shared with other readers: do not modify it.
   * `streaming` is for read-ahead (see ChunkStore.get).
   */
  async getChunk(ref: ChunkRef, chunkListHash?: string, { streaming = false } = {}): Promise<Buffer> {
    checkHash(ref.hash);
    const hot = this.mem.get(ref.hash);
    if (hot) {
      this.mem.delete(ref.hash);
      this.mem.set(ref.hash, hot);
      if (this.lru.has(ref.hash)) this.remember(ref.hash, hot.length);
      this.s.memoryHits++;
      return hot;
    }
    await this.init();
    let ownCorrupt = false;
    try {
      const data = await this.o.store.get(ref.hash, ref.size, { streaming });
      this.s.localHits++;
      if (this.lru.has(ref.hash)) this.remember(ref.hash, data.length);
      return this.hold(ref.hash, data);
    } catch (err) {
      if (err instanceof CorruptChunkError) ownCorrupt = err.where === this.o.store.path(ref.hash, 'own');
      else if (!(err instanceof ChunkNotFoundError)) throw err;
    }
    const data = await this.fetchShared(ref, chunkListHash);
    this.hold(ref.hash, data);
    if (ownCorrupt) {
      await this.keep(ref.hash, data, 'own');
      return data;
    }
    // The reader does not wait for the cache write (its bytes are verified and in memory);
    // a bounded number of writes may be pending, then readers wait for the oldest.
    const w: Promise<void> = this.keep(ref.hash, data, 'cache').finally(() => this.writes.delete(w));
    this.writes.add(w);
    if (this.writes.size > MAX_PENDING_WRITES) await Promise.race(this.writes);
    return data;
  }

  /** Resolves when every fetched chunk has been written to the store's cache area. */
  async flush(): Promise<void> {
    while (this.writes.size) await Promise.all([...this.writes]);
  }

  private hold(hash: string, data: Buffer): Buffer {
    if (data.length > this.o.memoryBytes || this.mem.has(hash)) return data;
    this.mem.set(hash, data);
    this.memBytes += data.length;
    for (const [h, d] of this.mem) {
      if (this.memBytes <= this.o.memoryBytes) break;
      this.mem.delete(h);
      this.memBytes -= d.length;
    }
    return data;
  }

  /**
   * Bytes [position, position + length) of a file from its chunk list (clipped at the end
   * of the file), with the next `readAhead` chunks prefetched in the background for a
   * sequential reader. `offsets` is chunkOffsets(chunks), computed once per open file.
   */
  async readRange(file: { chunks: readonly ChunkRef[]; offsets: readonly number[]; chunkListHash?: string }, position: number, length: number, readAhead = 2): Promise<Buffer> {
    const { chunks, offsets } = file;
    const size = chunks.length ? offsets[chunks.length - 1] + chunks[chunks.length - 1].size : 0;
    const end = Math.min(size, position + length);
    if (position >= end) return Buffer.alloc(0);
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid] <= position) lo = mid;
      else hi = mid - 1;
    }
    const parts: Buffer[] = [];
    let i = lo;
    for (; i < chunks.length && offsets[i] < end; i++) {
      const data = await this.getChunk(chunks[i], file.chunkListHash);
      parts.push(data.subarray(Math.max(0, position - offsets[i]), Math.min(data.length, end - offsets[i])));
    }
    if (readAhead > 0 && i < chunks.length) void this.prefetch(chunks.slice(i, i + readAhead), file.chunkListHash, readAhead);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /**
   * Make this node an owner of the chunk (replication): promote a cached copy, or fetch
   * it from a holder, into the store's own area.
   */
  async pull(ref: ChunkRef, chunkListHash?: string): Promise<'had' | 'promoted' | 'fetched'> {
    checkHash(ref.hash);
    await this.init();
    const where = await this.o.store.where(ref.hash);
    if (where === 'own') return 'had';
    if (where === 'cache' && (await this.o.store.promote(ref.hash))) {
      this.forget(ref.hash);
      return 'promoted';
    }
    const data = await this.fetchShared(ref, chunkListHash);
    await this.o.store.put(ref.hash, data, { area: 'own', verified: true });
    this.forget(ref.hash);
    return 'fetched';
  }

  /**
   * Read-ahead for sequential readers: fetch these chunks in the background, a few at a
   * time. Failures are only logged; the reader's own getChunk reports them.
   */
  prefetch(chunks: readonly ChunkRef[], chunkListHash?: string, concurrency = 4): Promise<void> {
    const queue = [...chunks];
    const worker = async (): Promise<void> => {
      for (let ref = queue.shift(); ref; ref = queue.shift()) {
        await this.getChunk(ref, chunkListHash, { streaming: true }).catch((err: Error) => this.log.debug({ hash: ref?.hash, err: err.message }, 'prefetch failed'));
      }
    };
    return Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker)).then(() => undefined);
  }

  private fetchShared(ref: ChunkRef, chunkListHash?: string): Promise<Buffer> {
    const running = this.inflight.get(ref.hash);
    if (running) {
      this.s.sharedFetches++;
      return running;
    }
    const p = this.peers.fetch(ref, chunkListHash).finally(() => this.inflight.delete(ref.hash));
    this.inflight.set(ref.hash, p);
    return p;
  }

  private async keep(hash: string, data: Buffer, area: 'own' | 'cache'): Promise<void> {
    // A cache entry joins the LRU when it is read, not when its write finishes, so the
    // order is the readers' order; it cannot be evicted while its write is pending.
    if (area === 'cache') {
      this.remember(hash, data.length);
      this.pending.add(hash);
    }
    try {
      const wrote = await this.o.store.put(hash, data, { area, verified: true });
      if (!wrote) this.forget(hash);
    } catch (err) {
      this.forget(hash);
      // The reader still gets its verified bytes; the store is unchanged (put is atomic).
      this.log.warn({ hash, err: (err as Error).message }, 'could not keep a fetched chunk');
    } finally {
      this.pending.delete(hash);
    }
    if (area === 'cache') await this.evict();
  }

  /**
   * These chunks are about to be read without the fetcher (the FUSE threads read local chunks
   * themselves): cached ones count as just used, for LRU eviction.
   */
  used(chunks: readonly ChunkRef[]): void {
    for (const c of chunks) if (this.lru.has(c.hash)) this.remember(c.hash, c.size);
  }

  private remember(hash: string, size: number): void {
    this.forget(hash);
    this.lru.set(hash, size);
    this.lruBytes += size;
  }

  private forget(hash: string): void {
    const size = this.lru.get(hash);
    if (size === undefined) return;
    this.lru.delete(hash);
    this.lruBytes -= size;
  }

  private async evict(): Promise<void> {
    for (const hash of [...this.lru.keys()]) {
      if (this.lruBytes <= this.o.cacheBytes) break;
      if (this.pending.has(hash) || !this.lru.has(hash)) continue;
      this.forget(hash);
      await this.o.store.evict(hash);
      this.s.evictions++;
    }
  }
}
