/**
 * The process that serves one FUSE mount of the unified filesystem. It is started by
 * mountOverlay (src/overlay/index.ts) with child_process.fork, gets its settings in the
 * OSWALK_FS_CONFIG environment variable, and reports `{type: 'mounted'}` over IPC.
 *
 * It must never touch its own mount: fuse-native runs every handler on this process's one JS
 * thread, so a read of the mount from here would wait for itself. Every handler is async.
 */
import { join } from 'node:path';
import { ChunkFetcher, ChunkReadPool, ChunkStore, LiveChunker } from '../packetfs/index.js';
import { connectRedis } from '../state/redis.js';
import { keyspace } from '../state/keys.js';
import { createLogger } from '../util/log.js';
import { ClusterBackend } from './cluster-backend.js';
import { FileCache } from './file-cache.js';
import { fuseOps, loadFuse, mountOptions, type MountTuning } from './fuse.js';
import { OverlayFs } from './ops.js';
import type { MountReadStats } from './index.js';

const REDIS_COMMAND_TIMEOUT_MS = 10_000;
/** Smaller files are not copied whole for passthrough: for them it saves little. */
const FILE_CACHE_MIN_BYTES = 1024 * 1024;

export interface FsProcessConfig {
  mountDir: string;
  node: string;
  redisUrl: string;
  prefix: string;
  stateDir: string;
  /** The node's PacketFS chunk store (shared with the agent's chunk server). */
  chunkDir: string;
  /** Bytes of chunks fetched from peers kept on disk (LRU; chunks this node owns never count). */
  cacheSizeBytes: number;
  /** Bytes of chunk data kept in this process's memory cache. */
  memoryCacheBytes: number;
  /** Bytes of whole files read end to end kept for passthrough opens (0: none). */
  fileCacheBytes: number;
  /** Bearer token of the peers' chunk servers. */
  token: string;
  tuning: MountTuning;
}

async function main(): Promise<void> {
  const raw = process.env.OSWALK_FS_CONFIG;
  if (!raw) throw new Error('OSWALK_FS_CONFIG is not set: this process is started by mountOverlay');
  const cfg = JSON.parse(raw) as FsProcessConfig;
  const log = createLogger('overlay-fs', { node: cfg.node, mount: cfg.mountDir });
  // Modes come from the callers (the kernel applies their umask); ours must not cut them again.
  process.umask(0);

  const { Fuse, fastReads, passthrough } = loadFuse(cfg.chunkDir, log);
  // A Redis that keeps the connection but does not answer (stopped, a paused VM, a path that
  // drops packets) would hold every FUSE request that needs it, and its caller, unkillable in
  // the kernel: each command fails after this long instead, and the caller gets EIO.
  const redis = connectRedis(cfg.redisUrl, { commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
  // ioredis reconnects by itself; while Redis is away the mount serves what it has cached.
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
  const ks = keyspace(cfg.prefix);
  // More chunk writes in flight than the store's default: each waits on its own fsync, and a
  // file committed at close should not queue behind them one by one.
  // Chunk reads and their hash checks on two threads of their own: this thread serves FUSE.
  const readPool = new ChunkReadPool(2);
  const store = new ChunkStore(cfg.chunkDir, { log, writeConcurrency: 32, readPool });
  const fetcher = new ChunkFetcher({
    store, redis, ks, self: cfg.node, token: cfg.token, cacheBytes: cfg.cacheSizeBytes, memoryBytes: cfg.memoryCacheBytes, log,
  });
  const backend = new ClusterBackend({
    redis,
    ks,
    node: cfg.node,
    store,
    fetcher,
    log,
  });
  // Files written front to back are chunked on another thread while they are written.
  const liveChunker = new LiveChunker(cfg.chunkDir);
  // OSWALK_FAST_READ=0 leaves every read to JavaScript, OSWALK_PASSTHROUGH=0 every open to
  // the FS process (for comparing them in benchmarks).
  const fast = process.env.OSWALK_FAST_READ === '0' ? {} : { fastReads };
  const fileCache = new FileCache({ dir: join(cfg.stateDir, 'files'), maxBytes: cfg.fileCacheBytes, minFileBytes: FILE_CACHE_MIN_BYTES, log });
  await fileCache.start();
  const pt = process.env.OSWALK_PASSTHROUGH === '0' || !fileCache.enabled ? {} : { fileCache, passthrough };
  const fs = new OverlayFs({ backend, stagingDir: join(cfg.stateDir, 'staging'), log, liveChunker, ...fast, ...pt });
  await fs.start();

  const fuse = new Fuse(cfg.mountDir, fuseOps(fs, () => fuse, log), mountOptions(cfg.tuning));
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  log.info('mounted');
  process.send?.({ type: 'mounted' });
  // The agent asks when Prometheus scrapes it (src/overlay/metrics.ts).
  process.on('message', (m: { type?: string; id?: number }) => {
    if (m?.type !== 'stats') return;
    const stats: MountReadStats = {
      fastReads: fastReads.stats(), javascriptReadBytes: fs.readBytes, fetcher: fetcher.stats(), fileCache: fileCache.stats(), passthroughOpens: fs.passthroughOpens,
    };
    process.send?.({ type: 'stats', id: m.id, stats });
  });

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why, fastReads: fastReads.stats() }, 'unmounting');
    const abandoned = await fs.flushClosed();
    if (abandoned.length > 0) log.warn({ paths: abandoned.slice(0, 20), count: abandoned.length }, 'files still being written keep their last version');
    await new Promise<void>((resolve) => fuse.unmount((err) => {
      if (err) log.error({ err }, 'unmount failed');
      resolve();
    }));
    await backend.close();
    redis.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // The parent (agent or `oswalk mount`) went away without stopping us: leave no mount behind.
  process.on('disconnect', () => void stop('parent gone'));
}

main().catch((err) => {
  console.error(`oswalk fs process: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
