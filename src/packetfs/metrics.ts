import { statfs } from 'node:fs/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ChunkFetcher } from './fetcher.js';
import type { ReplicateResult } from './replicate.js';
import type { ChunkStore, StoreStats } from './store.js';

/** The replication pass's last result, and the bytes every pass pulled so far. */
export interface ReplicationTotals {
  last: ReplicateResult;
  pulledBytes: number;
}

/** How stale the store's chunk count may be: counting walks the whole store directory. */
const STORE_STATS_MS = 60_000;

/**
 * PacketFS metrics on a prom-client registry (the agent's). Values are read from the
 * fetcher's counters and the store's stats when Prometheus scrapes, so the hot paths carry
 * no metric calls.
 */
export function registerPacketfsMetrics(registry: Registry, parts: { store?: ChunkStore; fetcher?: ChunkFetcher; replication?: () => ReplicationTotals | undefined }): void {
  const { store, fetcher, replication } = parts;
  if (replication) {
    const gauge = (name: string, help: string, pick: (r: ReplicateResult) => number) =>
      new Gauge({
        name, help, registers: [registry],
        collect() {
          const r = replication();
          if (r) this.set(pick(r.last));
        },
      });
    gauge('oswalk_storage_under_replicated_files', 'Distinct file contents held by fewer live nodes than they want (as this node\'s last replication pass saw the cluster)', (r) => r.underFiles);
    gauge('oswalk_storage_under_replicated_bytes', 'Bytes of the file contents held by fewer live nodes than they want', (r) => r.underBytes);
    gauge('oswalk_storage_unavailable_files', 'Distinct file contents no live node holds (unreadable until a holder is back)', (r) => r.lostFiles);
    new Counter({
      name: 'oswalk_storage_replicated_bytes_total', help: 'Bytes this node pulled to make copies of files short of copies', registers: [registry],
      collect() {
        this.reset();
        this.inc(replication()?.pulledBytes ?? 0);
      },
    });
  }
  if (fetcher) {
    new Counter({
      name: 'oswalk_packetfs_chunk_reads_total',
      help: 'Chunks returned by the fetcher, by where they came from (memory, local store, a peer, a fetch already in flight)',
      labelNames: ['source'],
      registers: [registry],
      collect() {
        const s = fetcher.stats();
        this.reset();
        this.inc({ source: 'memory' }, s.memoryHits);
        this.inc({ source: 'local' }, s.localHits);
        this.inc({ source: 'peer' }, s.remoteFetches);
        this.inc({ source: 'shared' }, s.sharedFetches);
      },
    });
    const counter = (name: string, help: string, pick: (s: ReturnType<ChunkFetcher['stats']>) => number) =>
      new Counter({
        name, help, registers: [registry],
        collect() {
          this.reset();
          this.inc(pick(fetcher.stats()));
        },
      });
    counter('oswalk_packetfs_peer_bytes_total', 'Chunk bytes fetched from peers', (s) => s.remoteBytes);
    counter('oswalk_packetfs_bad_peer_responses_total', 'Peer answers whose bytes did not match the chunk hash', (s) => s.badPeerResponses);
    counter('oswalk_packetfs_unavailable_total', 'getChunk calls that failed because no holder delivered in time (EIO)', (s) => s.failures);
    counter('oswalk_packetfs_cache_evictions_total', 'Cached chunks evicted (least recently used)', (s) => s.evictions);
    new Gauge({
      name: 'oswalk_packetfs_cache_bytes', help: 'Bytes of fetched chunks held in the cache area', registers: [registry],
      collect() {
        this.set(fetcher.stats().cacheBytes);
      },
    });
  }
  if (store) {
    let last: { at: number; stats: StoreStats } | undefined;
    const stats = async (): Promise<StoreStats> => {
      if (!last || Date.now() - last.at > STORE_STATS_MS) last = { at: Date.now(), stats: await store.stats() };
      return last.stats;
    };
    new Gauge({
      name: 'oswalk_packetfs_store_chunks', help: 'Chunk files in the store (own and cache areas)', labelNames: ['area'], registers: [registry],
      async collect() {
        const s = await stats();
        this.set({ area: 'own' }, s.count);
        this.set({ area: 'cache' }, s.cacheCount);
      },
    });
    new Gauge({
      name: 'oswalk_packetfs_store_bytes', help: 'Bytes of chunk files in the store', labelNames: ['area'], registers: [registry],
      async collect() {
        const s = await stats();
        this.set({ area: 'own' }, s.bytes);
        this.set({ area: 'cache' }, s.cacheBytes);
      },
    });
    // The disk the store is on, as node_exporter's node_filesystem_{avail,size}_bytes give it
    // (read at each scrape: statfs is one system call): the store fills the disk, it has no cap.
    const disk = () => statfs(store.dir);
    new Gauge({
      name: 'oswalk_packetfs_store_filesystem_avail_bytes', help: 'Bytes free to unprivileged users on the filesystem that holds the store', registers: [registry],
      async collect() {
        const s = await disk();
        this.set(s.bavail * s.bsize);
      },
    });
    new Gauge({
      name: 'oswalk_packetfs_store_filesystem_size_bytes', help: 'Size in bytes of the filesystem that holds the store', registers: [registry],
      async collect() {
        const s = await disk();
        this.set(s.blocks * s.bsize);
      },
    });
    new Gauge({
      name: 'oswalk_packetfs_quarantined_chunks', help: 'Corrupt chunk files moved to quarantine', registers: [registry],
      async collect() {
        this.set((await stats()).quarantined);
      },
    });
  }
}
