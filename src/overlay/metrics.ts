import { Counter, Gauge, type Registry } from 'prom-client';
import { addReplicaWaitSource } from '../metrics/index.js';
import type { MountReadStats, OverlayMount } from './index.js';

/**
 * The mount's metrics on a prom-client registry (the agent's): its reads, where they were
 * answered and where their chunks came from, the cache of peers' chunks, the file cache and
 * passthrough opens, its cluster-wide locks, its commits' WAITs for a Redis replica, and FS process restarts. The counters live in the FS process and start again from 0 when it restarts
 * (Prometheus' rate() takes that as a counter reset); while it does not answer, they are absent.
 */
export function registerMountMetrics(registry: Registry, mount: OverlayMount): void {
  // One question to the FS process per scrape: a scrape collects every metric at once.
  let pending: Promise<MountReadStats | undefined> | undefined;
  const stats = (): Promise<MountReadStats | undefined> => {
    pending ??= mount.readStats().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  const counter = (name: string, help: string, labelNames: string[], values: (s: MountReadStats) => Array<[Record<string, string>, number]>) =>
    new Counter({
      name, help, labelNames, registers: [registry],
      async collect() {
        const s = await stats();
        this.reset();
        if (s) for (const [labels, v] of values(s)) this.inc(labels, v);
      },
    });
  counter('oswalk_mount_read_bytes_total', 'Bytes read through the mount, by where the read was answered (the FUSE threads from local chunks, or the JavaScript thread)', ['served'], (s) => [
    [{ served: 'fuse_threads' }, s.fastReads.bytes],
    [{ served: 'javascript' }, s.javascriptReadBytes],
  ]);
  counter('oswalk_mount_chunk_loads_total', 'Chunks the mount\'s reads used, by where they came from: loaded from the local store (on the FUSE threads or for JavaScript) or a peer and checked, or already in memory', ['source'], (s) => [
    [{ source: 'local_fuse_threads' }, s.fastReads.chunkLoads],
    [{ source: 'local' }, s.fetcher.localHits],
    [{ source: 'memory' }, s.fetcher.memoryHits],
    [{ source: 'peer' }, s.fetcher.remoteFetches],
  ]);
  counter('oswalk_mount_chunk_checks_total', 'Chunks the FUSE threads loaded from the local store and checked, by how: the CRC-32 the chunk file carries, or its SHA-256 name (a chunk without a CRC, one whose CRC failed, or with OSWALK_VERIFY_READS=sha256)', ['by'], (s) => [
    [{ by: 'crc32' }, s.fastReads.crcChecks],
    [{ by: 'sha256' }, s.fastReads.shaChecks],
  ]);
  counter('oswalk_mount_fast_read_fallbacks_total', 'Reads the FUSE threads left to JavaScript (a chunk absent locally or failing its check)', [], (s) => [[{}, s.fastReads.fallbacks]]);
  counter('oswalk_mount_peer_bytes_total', 'Chunk bytes the mount fetched from peers', [], (s) => [[{}, s.fetcher.remoteBytes]]);
  counter('oswalk_mount_unavailable_total', 'Chunk reads that failed because no holder delivered in time (EIO to the reader)', [], (s) => [[{}, s.fetcher.failures]]);
  const gauge = (name: string, help: string, value: (s: MountReadStats) => number) =>
    new Gauge({
      name, help, registers: [registry],
      async collect() {
        const s = await stats();
        this.reset();
        if (s) this.set(value(s));
      },
    });
  gauge('oswalk_mount_cache_bytes', 'Bytes of peers\' chunks the mount keeps in the store\'s cache area (bounded by the Mount\'s cacheSize)', (s) => s.fetcher.cacheBytes);
  gauge('oswalk_mount_file_cache_bytes', 'Bytes of whole files the mount keeps for passthrough opens (bounded by the Mount\'s fileCacheSize)', (s) => s.fileCache.bytes);
  counter('oswalk_mount_locks_granted_total', 'flock and fcntl locks granted through the mount, held cluster-wide, by kind (posix: fcntl record and OFD locks)', ['kind'], (s) => [
    [{ kind: 'posix' }, s.locks.granted.posix],
    [{ kind: 'flock' }, s.locks.granted.flock],
  ]);
  counter('oswalk_mount_lock_waits_total', 'Lock requests that had to wait for a lock held elsewhere in the cluster, by kind', ['kind'], (s) => [
    [{ kind: 'posix' }, s.locks.waited.posix],
    [{ kind: 'flock' }, s.locks.waited.flock],
  ]);
  counter('oswalk_mount_lock_wait_seconds_total', 'Seconds lock requests waited before they were granted', [], (s) => [[{}, s.locks.waitSeconds]]);
  gauge('oswalk_mount_lock_waiting', 'Lock requests waiting now for a lock held elsewhere', (s) => s.locks.waiting);
  counter('oswalk_mount_lock_sessions_lost_total', 'Times the mount lost its lease in the lock table (cut off from Redis or frozen) and its locks with it', [], (s) => [[{}, s.locks.sessionsLost]]);
  counter('oswalk_mount_passthrough_opens_total', 'Opens the kernel served from the file cache itself (FUSE passthrough): their reads and writes never reach the FS process', [], (s) => [[{}, s.passthroughOpens]]);
  addReplicaWaitSource(registry, 'fs', async () => (await stats())?.replication);
  new Counter({
    name: 'oswalk_mount_fs_restarts_total', help: 'Times the FS process serving the mount died and was restarted', registers: [registry],
    collect() {
      this.reset();
      this.inc(mount.restarts);
    },
  });
}
