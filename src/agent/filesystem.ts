import type { Redis } from '../state/redis.js';
import { mkdir, statfs } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import {
  addChunkListLocation, ChunkFetcher, ChunkStore, chunkDir, chunkRoutes, CopyPusher, decodeChunkList, Pace, registerPacketfsMetrics, replicate,
  PolicyCache, wantedCopies, type ReplicationTotals,
} from '../packetfs/index.js';
import type { Keyspace } from '../state/keys.js';
import type { FsState } from '../state/fs-layout.js';
import { getChunkList } from '../state/fs.js';
import { allReferencedChunkLists, currentFilesUnder } from '../state/fs-walk.js';
import { listObjects } from '../state/objects.js';
import { startTranslator, type Translator } from '../translate/index.js';
import { mountOverlay, shareMount, unmountStale } from '../overlay/index.js';
import { registerMountMetrics } from '../overlay/metrics.js';
import type { HttpServer } from '../util/http.js';
import type { Logger } from '../util/log.js';

export interface NodeFilesystemOptions {
  redis: Redis;
  ks: Keyspace;
  fs: FsState;
  node: string;
  /** Bearer token of the chunk servers (the cluster token). */
  token: string;
  exportDir: string;
  stateDir: string;
  registry: Registry;
  log: Logger;
  /** How often the replication pass runs. Default 15 s. */
  replicateEveryMs?: number;
  /** How often unreferenced chunks are collected. Default 1 h. */
  gcEveryMs?: number;
}

/** What the node reports of its filesystem side in every heartbeat (and `oswalk status` shows). */
export interface FilesystemUsage {
  translateBacklog: number;
  exportFiles: number;
  /** Export entries left out because their names are not UTF-8 (logged once each). */
  exportSkipped: number;
  storeChunks: number;
  storeBytes: number;
  storeFreeBytes?: number;
  cacheBytes: number;
}

export interface NodeFilesystem {
  store: ChunkStore;
  translator: Translator;
  usage(): FilesystemUsage;
  stop(): Promise<void>;
}

/**
 * The chunk server is part of the agent's HTTP server, so it is registered before listen. A
 * peer that sent this node a file's chunks has it recorded as a holder here.
 */
export async function registerChunkServer(app: HttpServer, store: ChunkStore, o: { token: string; byCertificate: boolean; fs: FsState; node: string }): Promise<void> {
  await app.register(chunkRoutes, {
    store, token: o.token, byCertificate: o.byCertificate,
    hold: async (chunkListHash) => {
      await addChunkListLocation(o.fs.redis, o.fs.ks, chunkListHash, o.node);
    },
  });
}

/** The cache sizes of the applied Mount (the first, if several), else the overlay's defaults. */
async function mountCacheSizes(redis: Redis, ks: Keyspace): Promise<{ cacheSizeBytes?: number; fileCacheBytes?: number }> {
  const mounts = await listObjects(redis, ks, 'Mount');
  const m = mounts.find((o) => o.kind === 'Mount');
  return m?.kind === 'Mount' ? { cacheSizeBytes: m.spec.cacheSizeBytes, fileCacheBytes: m.spec.fileCacheSizeBytes } : {};
}

export interface NodeMountOptions {
  mountPath: string;
  node: string;
  redisUrl: string;
  /** The Redis of the cluster's files, when not redisUrl's. */
  fsRedisUrl?: string;
  ks: Keyspace;
  redis: Redis;
  stateDir: string;
  token: string;
  /** Also bind the mount into this directory (made rshared), for job containers to bind. */
  shareDir?: string;
  log: Logger;
  /** Where the mount's metrics go (the agent's registry). */
  registry?: Registry;
}

export interface NodeMount {
  /** The bind of the mount in shareDir, for job containers, kept current across remounts. */
  containerPath?: string;
  /**
   * What the node reports of its mount in heartbeats: whether jobs can use it now (and why
   * not: the scheduler places no job on a node whose mount is down), the file cache's size.
   * mountError is '' while the mount is up, so a heartbeat clears an earlier reason.
   */
  usage(): { mountReady: boolean; mountError: string; fileCacheBytes?: number };
  stop(): Promise<void>;
}

/** How often the agent asks its FS process for the file cache's size (for heartbeats). */
const MOUNT_USAGE_EVERY_MS = 10_000;
/** How soon a bind for job containers that failed after a remount is tried again. */
const SHARE_RETRY_MS = 2_000;

/**
 * Mount the unified filesystem at the node's mount path, served by its own FS process
 * (restarted if it dies; while it is down the path fails writes, see guardMountDir). With a
 * shareDir (the docker runtime) the mount is also bound at <shareDir>/<name> after every
 * (re)mount, so running containers follow a remount (see shareMount); those binds are undone
 * on stop, so nothing stays mounted.
 */
export async function mountNodeFilesystem(opts: NodeMountOptions): Promise<NodeMount> {
  const log = opts.log.child({ part: 'mount' });
  const mount = await mountOverlay({
    mountDir: opts.mountPath, node: opts.node, redisUrl: opts.redisUrl, ...(opts.fsRedisUrl ? { fsRedisUrl: opts.fsRedisUrl } : {}), prefix: opts.ks.prefix, stateDir: opts.stateDir,
    chunkDir: chunkDir(opts.stateDir), token: opts.token, ...(await mountCacheSizes(opts.redis, opts.ks)),
    log,
  });
  if (opts.registry) registerMountMetrics(opts.registry, mount);
  let fileCacheBytes: number | undefined;
  const ask = () => void mount.readStats().then((s) => {
    if (s) fileCacheBytes = s.fileCache.bytes;
  });
  ask();
  const timer = setInterval(ask, MOUNT_USAGE_EVERY_MS);
  // Why job containers cannot reach the mount though it is up (their bind failed), if so.
  let shareError: string | undefined;
  const usage = () => {
    const why = mount.down ?? shareError;
    return { mountReady: why === undefined, mountError: why ?? '', ...(fileCacheBytes === undefined ? {} : { fileCacheBytes }) };
  };
  let shareTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  const stopMount = () => {
    stopped = true;
    clearInterval(timer);
    clearTimeout(shareTimer);
    return mount.stop();
  };
  const { shareDir } = opts;
  if (!shareDir) return { usage, stop: stopMount };
  let containerPath: string;
  try {
    containerPath = await shareMount(mount.mountDir, shareDir, log);
  } catch (err) {
    await stopMount();
    throw err;
  }
  const share = () => {
    clearTimeout(shareTimer);
    shareMount(mount.mountDir, shareDir, log).then(() => {
      shareError = undefined;
    }, (err: unknown) => {
      if (stopped || mount.down) return; // the next remount binds again
      shareError = `the mount could not be bound for job containers: ${(err as Error).message}`;
      log.error({ err, shareDir }, 'the remount could not be bound for job containers; trying again');
      shareTimer = setTimeout(share, SHARE_RETRY_MS);
    });
  };
  mount.on('restarted', share);
  return {
    containerPath,
    usage,
    async stop() {
      await stopMount();
      await unmountStale(containerPath);
      await unmountStale(shareDir);
    },
  };
}

/**
 * The node's side of PacketFS and the unified filesystem that lives in the agent itself: the
 * translate daemon over the export directory (each file it takes in copied to as many nodes as
 * the Mount wants, as a close through a mount is), the replication pass (src/packetfs/replicate.ts),
 * and an occasional garbage collection of chunks no version references. The FUSE mount is a
 * process of its own (src/overlay) and shares the chunk store directory.
 */
export async function startNodeFilesystem(store: ChunkStore, opts: NodeFilesystemOptions): Promise<NodeFilesystem> {
  const { redis, ks, fs, node, log } = opts;
  await mkdir(opts.exportDir, { recursive: true });
  const pusher = new CopyPusher({ store, redis, ks, fs, self: node, token: opts.token, stateDir: opts.stateDir, log: log.child({ part: 'push' }) });
  // Read once per 5 s, not once per translated file.
  const policy = new PolicyCache(redis, ks);
  const translator = await startTranslator({
    fs, node, exportDir: opts.exportDir, store, log: log.child({ part: 'translate' }), registry: opts.registry,
    // Not a close: a file short of copies is left to the replication pass, which finds it.
    copies: async (path, chunkListHash, chunks) => {
      await pusher.ensure(chunkListHash, chunks, wantedCopies(await policy.get(), path));
    },
  });
  const fetcher = new ChunkFetcher({ store, redis, ks, fs, self: node, token: opts.token, stateDir: opts.stateDir, log: log.child({ part: 'fetch' }) });
  let storeStats: { count: number; bytes: number; cacheBytes: number; freeBytes?: number } = { count: 0, bytes: 0, cacheBytes: 0 };
  const refreshStats = async () => {
    const s = await store.stats();
    const fsStat = await statfs(store.dir).catch(() => undefined);
    storeStats = { count: s.count, bytes: s.bytes, cacheBytes: s.cacheBytes, ...(fsStat ? { freeBytes: fsStat.bavail * fsStat.bsize } : {}) };
  };
  let replication: ReplicationTotals | undefined;
  registerPacketfsMetrics(opts.registry, { store, fetcher, replication: () => replication });

  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, what: string, fn: () => Promise<void>, atStart = true) => {
    let running: Promise<void> | undefined;
    const tick = () => {
      if (stopped || running) return;
      const p = fn().catch((err: unknown) => log.warn({ err, what }, `${what} failed; will retry`)).finally(() => {
        running = undefined;
        inFlight.delete(p);
      });
      running = p;
      inFlight.add(p);
    };
    timers.push(setInterval(tick, ms));
    if (atStart) setImmediate(tick);
  };

  // Counting walks the whole store directory: once a minute is plenty for status.
  every(60_000, 'store statistics', refreshStats);
  const pace = new Pace(0);
  every(opts.replicateEveryMs ?? 15_000, 'replication', async () => {
    const p = await policy.get();
    pace.setRate(p.rereplicateBytesPerSecond);
    const res = await replicate({
      fetcher, redis, ks, fs, self: node, policy: p, pace, log: log.child({ part: 'replicate' }),
      files: () => currentFilesUnder(fs.redis, fs.ks, '/'),
      loadChunkList: async (hash) => {
        const buf = await getChunkList(fs.redis, fs.ks, hash);
        return buf ? decodeChunkList(buf) : undefined;
      },
    });
    replication = { last: res, pulledBytes: (replication?.pulledBytes ?? 0) + res.pulledBytes };
    if (res.pulled || res.failed || res.underFiles) log.info(res, 'replication pass');
  });
  // Bit rot is found by a slow background read of every chunk, before a reader meets it.
  every(24 * 3_600_000, 'scrub', async () => {
    const res = await store.scrub({ pauseMs: 1 });
    log.info({ checked: res.checked, corrupt: res.corrupt.length, resealed: res.resealed }, 'scrub pass');
  }, false);
  every(opts.gcEveryMs ?? 3_600_000, 'garbage collection', async () => {
    const live = (async function* () {
      for await (const m of allReferencedChunkLists(fs.redis, fs.ks)) {
        const buf = await getChunkList(fs.redis, fs.ks, m);
        if (buf) for (const c of decodeChunkList(buf)) yield c.hash;
      }
    })();
    const res = await store.gc({ live });
    if (res.deleted) log.info(res, 'garbage collection freed unreferenced chunks');
  });

  return {
    store,
    translator,
    usage: () => ({
      translateBacklog: translator.stats().backlogFiles,
      exportFiles: translator.stats().exportFiles,
      exportSkipped: translator.stats().exportSkipped,
      storeChunks: storeStats.count,
      storeBytes: storeStats.bytes,
      ...(storeStats.freeBytes === undefined ? {} : { storeFreeBytes: storeStats.freeBytes }),
      cacheBytes: storeStats.cacheBytes,
    }),
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([...inFlight]);
      await translator.close();
      await fetcher.flush();
      fetcher.close();
      pusher.close();
    },
  };
}
