/**
 * The process that serves one FUSE mount of the unified filesystem. It is started by
 * mountOverlay (src/overlay/index.ts) with child_process.fork, gets its settings as the first
 * IPC message (`{type: 'config'}`: they hold the Redis URL and the cluster token, which its
 * environment, readable by root jobs in /proc/<pid>/environ, must not), and reports
 * `{type: 'mounted'}` over IPC, or `{type: 'failed', message}` before it exits.
 *
 * It must never touch its own mount: fuse-native runs every handler on this process's one JS
 * thread, so a read of the mount from here would wait for itself. Every handler is async.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkFetcher, ChunkReadPool, ChunkStore, CopyPusher, LiveChunker, PolicyCache } from '../packetfs/index.js';
import { connectRedis } from '../state/redis.js';
import { openFs } from '../state/fs-layout.js';
import { replicationStats } from '../state/replication.js';
import { keyspace } from '../state/keys.js';
import { createLogger } from '../util/log.js';
import { ClusterBackend } from './cluster-backend.js';
import { ClusterLocks } from './cluster-locks.js';
import { FileCache } from './file-cache.js';
import { fuseOps, loadFuse, mountOptions } from './fuse.js';
import { MountLocks } from './locks.js';
import { OverlayFs } from './ops.js';
import { mountStack, parseMountinfo, type FsProcessConfig, type MountReadStats } from './index.js';

const REDIS_COMMAND_TIMEOUT_MS = 10_000;
/** Smaller files are not copied whole for passthrough: for them it saves little. */
const FILE_CACHE_MIN_BYTES = 1024 * 1024;

/** The settings, sent by the parent as its first message. */
function receiveConfig(): Promise<FsProcessConfig> {
  if (!process.send) return Promise.reject(new Error('no IPC channel: this process is started by mountOverlay'));
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type?: string; config?: FsProcessConfig }) => {
      if (m?.type !== 'config' || !m.config) return;
      process.off('message', onMessage);
      process.off('disconnect', onGone);
      resolve(m.config);
    };
    const onGone = () => reject(new Error('the parent went away before sending the settings'));
    process.on('message', onMessage);
    process.once('disconnect', onGone);
  });
}

/**
 * The device (major:minor) of the mount on top of dir, read from the mount table: never by a
 * stat of dir, which would be a request to this very process.
 */
function topDevice(dir: string): string | undefined {
  return mountStack(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')), dir).pop()?.dev;
}

async function main(): Promise<void> {
  const cfg = await receiveConfig();
  const log = createLogger('overlay-fs', { node: cfg.node, mount: cfg.mountDir });
  // Modes come from the callers (the kernel applies their umask); ours must not cut them again.
  process.umask(0);

  const { Fuse, fastReads, passthrough, locks: lockBinding, attrs } = loadFuse(cfg.chunkDir, log);
  // A Redis that keeps the connection but does not answer (stopped, a paused VM, a path that
  // drops packets) would hold every FUSE request that needs it, and its caller, unkillable in
  // the kernel: each command fails after this long instead, and the caller gets EIO.
  const redis = connectRedis(cfg.redisUrl, { commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
  // ioredis reconnects by itself; while Redis is away the mount serves what it has cached.
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
  const ks = keyspace(cfg.prefix);
  let fsRedis = redis;
  if (cfg.fsRedisUrl) {
    fsRedis = connectRedis(cfg.fsRedisUrl, { commandTimeout: REDIS_COMMAND_TIMEOUT_MS });
    fsRedis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error (the cluster\'s files)'));
  }
  const files = await openFs(redis, ks, fsRedis);
  // More chunk writes in flight than the store's default: each waits on its own fsync, and a
  // file committed at close should not queue behind them one by one.
  // Chunk reads and their hash checks on two threads of their own: this thread serves FUSE.
  const readPool = new ChunkReadPool(2);
  const store = new ChunkStore(cfg.chunkDir, { log, writeConcurrency: 32, readPool });
  const fetcher = new ChunkFetcher({
    store, redis, ks, fs: files, self: cfg.node, token: cfg.token, stateDir: cfg.stateDir, cacheBytes: cfg.cacheSizeBytes, memoryBytes: cfg.memoryCacheBytes, log,
  });
  const pusher = new CopyPusher({ store, redis, ks, fs: files, self: cfg.node, token: cfg.token, stateDir: cfg.stateDir, log });
  const backend = new ClusterBackend({
    fs: files,
    node: cfg.node,
    store,
    fetcher,
    copies: { pusher, policy: new PolicyCache(redis, ks) },
    log,
  });
  // Files written front to back are chunked on another thread while they are written.
  const liveChunker = new LiveChunker(cfg.chunkDir, { token: cfg.token, stateDir: cfg.stateDir });
  // OSWALK_FAST_READ=0 leaves every read to JavaScript, OSWALK_PASSTHROUGH=0 every open to
  // the FS process (for comparing them in benchmarks).
  const fast = process.env.OSWALK_FAST_READ === '0' ? {} : { fastReads };
  const fileCache = new FileCache({ dir: join(cfg.stateDir, 'files'), maxBytes: cfg.fileCacheBytes, minFileBytes: FILE_CACHE_MIN_BYTES, log });
  await fileCache.start();
  const pt = process.env.OSWALK_PASSTHROUGH === '0' || !fileCache.enabled ? {} : { fileCache, passthrough };
  const fs = new OverlayFs({ backend, stagingDir: join(cfg.stateDir, 'staging'), log, liveChunker, ...fast, ...pt, attrsChanged: attrs.forget });
  await fs.start();
  // flock and fcntl locks through the mount hold across the cluster (before the mount: the
  // addon gives the mount lock operations only once it has someone to ask).
  const locks = new MountLocks(lockBinding, new ClusterLocks({ redis, ks, fs: files, node: cfg.node }), {
    taking: (path) => fs.lockTaking(path),
    releasing: (path) => fs.lockReleasing(path),
    lost: (paths) => fs.locksLost(paths),
    fileOf: (fh) => fs.fileOf(fh),
  }, log);
  await locks.start();
  fs.lockFence = (path) => locks.sessionHolding(path);

  const fuse = new Fuse(cfg.mountDir, fuseOps(fs, () => fuse, log), mountOptions(cfg.tuning));
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  // Ours, right after mounting: at unmount, the top of the path must still be this connection.
  const ourDevice = topDevice(cfg.mountDir);
  log.info({ device: ourDevice }, 'mounted');
  process.send?.({ type: 'mounted' });
  // The agent asks when Prometheus scrapes it (src/overlay/metrics.ts).
  process.on('message', (m: { type?: string; id?: number }) => {
    if (m?.type !== 'stats') return;
    const stats: MountReadStats = {
      fastReads: fastReads.stats(), javascriptReadBytes: fs.readBytes, fetcher: fetcher.stats(), fileCache: fileCache.stats(), passthroughOpens: fs.passthroughOpens, locks: locks.stats(), keptAttrs: attrs.stats(),
      replication: { ...replicationStats },
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
    // Waiting lock requests are answered (EIO) and this mount's locks let go: nothing written
    // under them from now on becomes a version.
    await locks.close().catch((err) => log.warn({ err }, 'could not end the lock session (its locks lapse with its lease)'));
    // libfuse unmounts by path (umount2 with MNT_DETACH, as root): if the agent has already
    // detached our mount (it thought us dead, or a new agent took over the path), that would
    // detach whatever is on top now, a newer FS process's mount or the guard under it. Then we
    // only exit; closing /dev/fuse ends what is left of our mount.
    const top = topDevice(cfg.mountDir);
    if (top !== ourDevice) log.warn({ top, ours: ourDevice }, 'our mount is no longer on top of the mount point; not unmounting it');
    else {
      await new Promise<void>((resolve) => fuse.unmount((err) => {
        if (err) log.error({ err }, 'unmount failed');
        resolve();
      }));
    }
    // The read-only guard under our mount stays, also with the parent gone (its agent killed):
    // until an agent mounts again, a write to the path fails with EROFS instead of landing on
    // the local disk, where it would be out of the cluster with its close reported a success
    // (the fault suite found files lost that way). The next agent mounts on top of the guard;
    // a stop, by the agent or `oswalk mount`, takes it.
    await backend.close();
    redis.disconnect();
    if (fsRedis !== redis) fsRedis.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // The parent (agent or `oswalk mount`) went away without stopping us: leave no mount behind.
  process.on('disconnect', () => void stop('parent gone'));
}

main().catch((err) => {
  console.error(`oswalk fs process: ${(err as Error).stack ?? err}`);
  // The parent reports this as the reason the mount is down (oswalk status shows it).
  if (process.connected) process.send?.({ type: 'failed', message: (err as Error).message ?? String(err) }, () => process.exit(1));
  else process.exit(1);
});
