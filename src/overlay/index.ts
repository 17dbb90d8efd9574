/**
 * The unified filesystem's public face: mount it (in a child process of its own), keep it
 * mounted, unmount it. The parent never serves FUSE requests itself, so it may look at the
 * mount (to check that it answers) without deadlocking.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_PREFIX } from '../state/keys.js';
import { createLogger, type Logger } from '../util/log.js';
import { packageRoot } from '../util/paths.js';
import type { FetcherStats } from '../packetfs/index.js';
import type { FastReadStats } from './fast-read.js';
import type { FileCacheStats } from './file-cache.js';
import type { FsProcessConfig } from './fs-process.js';
import type { MountTuning } from './fuse.js';

const run = promisify(execFile);

const DEFAULT_FILE_CACHE_BYTES = 4 * 1024 ** 3;

export interface MountOverlayOptions {
  /** Where to mount; created if missing. */
  mountDir: string;
  /** This node's name (versions written through the mount carry it). */
  node: string;
  redisUrl: string;
  /** Redis key prefix of the cluster (default {oswalk}:). */
  prefix?: string;
  /** The node's state directory: staging files go to <stateDir>/staging. */
  stateDir: string;
  /** The node's PacketFS chunk store; default <stateDir>/chunks. */
  chunkDir?: string;
  /** The Mount's cache size: bytes of chunks fetched from peers kept on disk, LRU (default 1 GiB). */
  cacheSizeBytes?: number;
  /** Bytes of chunk data the FS process keeps in memory (default 256 MiB). */
  memoryCacheBytes?: number;
  /** The Mount's file cache: bytes of whole files read end to end, kept for passthrough opens (default 4 GiB; 0 turns it off). */
  fileCacheBytes?: number;
  /** Bearer token of the agents' chunk servers (the cluster's agent token). */
  token: string;
  /** Kernel cache timeouts, seconds (defaults: 0.5 each, so a change elsewhere shows within a second). */
  tuning?: Partial<MountTuning>;
  /** Restart the FS process (and remount) when it dies (default true). */
  restart?: boolean;
  /** How long a start may take before it counts as failed (default 20 s). */
  startTimeoutMs?: number;
  log?: Logger;
}

export interface OverlayMount extends EventEmitter {
  readonly mountDir: string;
  /** Pid of the FS process now serving the mount. */
  readonly pid: number | undefined;
  /** How many times the FS process was restarted. */
  readonly restarts: number;
  /** What the FS process has read so far; undefined when it does not answer within timeoutMs (restarting, say). */
  readStats(timeoutMs?: number): Promise<MountReadStats | undefined>;
  /** Unmount and stop the FS process; leaves no mount behind. */
  stop(): Promise<void>;
}

/** Counters of one FS process (they start again from 0 when it restarts). */
export interface MountReadStats {
  /** Reads answered on the FUSE threads (fast-read.ts). */
  fastReads: FastReadStats;
  /** Bytes of reads answered by the JavaScript thread. */
  javascriptReadBytes: number;
  /** The FS process's chunk fetcher: local and peer chunk reads, the cache of peers' chunks. */
  fetcher: FetcherStats;
  /** Whole files kept for passthrough (file-cache.ts), and opens the kernel served from them. */
  fileCache: FileCacheStats;
  passthroughOpens: number;
}

/** Mount points (decoded) from /proc/self/mountinfo, with their fs type and propagation fields. */
export async function mountTable(): Promise<Array<{ target: string; fstype: string; optional: string }>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const f = left.split(' ');
    const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ target: decode(f[4]), fstype: right.split(' ')[0], optional: f.slice(6).join(' ') });
  }
  return out;
}

export async function isMounted(dir: string): Promise<boolean> {
  const target = resolve(dir);
  return (await mountTable()).some((m) => m.target === target);
}

/** Lazily detach whatever is mounted on dir (a FUSE mount whose server died answers ENOTCONN). */
export async function unmountStale(dir: string): Promise<void> {
  const target = resolve(dir);
  while (await isMounted(target)) {
    try {
      await run('fusermount', ['-uz', target]);
    } catch {
      await run('umount', ['-l', target]);
    }
  }
}

/**
 * Make dir a mount point with shared propagation (mount --bind dir dir; mount --make-rshared
 * dir), so that a FUSE mount made below it later, or made again after a restart, also appears
 * in containers that bind it with rslave propagation. `/` is private on these hosts, hence the
 * bind. Idempotent.
 */
export async function prepareSharedMountDir(dir: string): Promise<void> {
  const target = resolve(dir);
  await mkdir(target, { recursive: true });
  const entry = (await mountTable()).filter((m) => m.target === target).pop();
  if (!entry) await run('mount', ['--bind', target, target]);
  if (!entry || !/\bshared:\d+/.test(entry.optional)) await run('mount', ['--make-rshared', target]);
}

/**
 * Bind the mount at mountDir into shareDir (made rshared) as shareDir/<its name>, in place of a
 * bind of an earlier mount there; returns the bind's path. Containers bind shareDir, never the
 * FUSE mount itself: a bind copies the mount it finds, so a container holding the mount would
 * hold the dead one after the FS process restarts. Holding shareDir rslave, they see both the
 * old bind go and the new one come.
 */
export async function shareMount(mountDir: string, shareDir: string): Promise<string> {
  await prepareSharedMountDir(shareDir);
  const target = join(resolve(shareDir), basename(resolve(mountDir)));
  await unmountStale(target);
  await mkdir(target, { recursive: true });
  await run('mount', ['--bind', resolve(mountDir), target]);
  return target;
}

function fsProcessEntry(): string {
  return join(packageRoot(), 'dist', 'src', 'overlay', 'fs-process.js');
}

/** Wait until the mount at dir is a live oswalk FUSE mount, asked from this (other) process. */
async function waitMounted(dir: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = (await mountTable()).filter((e) => e.target === dir).pop();
    const up = m?.fstype.startsWith('fuse') && (await stat(dir).then(() => true, () => false));
    // Checked after the awaits: a child that died meanwhile must not count as started.
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the FS process for ${dir} exited during start-up`);
    if (up) return;
    if (Date.now() > deadline) throw new Error(`the FUSE mount at ${dir} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Mount the unified filesystem at opts.mountDir, served by a child process (fs-process.ts).
 * Resolves once the mount answers. If the FS process dies, the stale mount is cleared and a new
 * FS process mounts again (backoff 0.5 s doubling to 10 s); stop() unmounts for good.
 */
export async function mountOverlay(opts: MountOverlayOptions): Promise<OverlayMount> {
  const mountDir = resolve(opts.mountDir);
  const log = opts.log ?? createLogger('overlay', { mount: mountDir });
  const cfg: FsProcessConfig = {
    mountDir,
    node: opts.node,
    redisUrl: opts.redisUrl,
    prefix: opts.prefix ?? DEFAULT_PREFIX,
    stateDir: resolve(opts.stateDir),
    chunkDir: resolve(opts.chunkDir ?? join(opts.stateDir, 'chunks')),
    cacheSizeBytes: opts.cacheSizeBytes ?? 1024 ** 3,
    memoryCacheBytes: opts.memoryCacheBytes ?? 256 * 1024 * 1024,
    fileCacheBytes: opts.fileCacheBytes ?? DEFAULT_FILE_CACHE_BYTES,
    token: opts.token,
    tuning: { entryTimeout: 0.5, attrTimeout: 0.5, negativeTimeout: 0.5, ...opts.tuning },
  };
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  // A crash leaves a dead FUSE mount behind, on which even mkdir fails (ENOTCONN): clear it first.
  await unmountStale(mountDir);
  await mkdir(mountDir, { recursive: true });

  const emitter = new EventEmitter();
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let backoff = 500;
  let restartTimer: NodeJS.Timeout | undefined;

  const start = async (): Promise<void> => {
    const c = fork(fsProcessEntry(), [], {
      env: { ...process.env, OSWALK_FS_CONFIG: JSON.stringify(cfg) },
      // Not the parent's node flags (--eval, --inspect…): this is a program of its own.
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child = c;
    // Until it has mounted, a child's death is start()'s failure, and start()'s caller retries:
    // restarting here too would run two restarts at once, each forking a child of its own.
    let mounted = false;
    c.on('exit', (code, signal) => {
      if (stopping || child !== c || !mounted) return;
      emitter.emit('died', { code, signal });
      if (opts.restart === false) {
        log.error({ code, signal }, 'FS process died');
        void unmountStale(mountDir);
        return;
      }
      log.error({ code, signal }, 'FS process died; remounting');
      restartTimer = setTimeout(() => void restart(), backoff);
      backoff = Math.min(backoff * 2, 10_000);
    });
    try {
      await waitMounted(mountDir, c, startTimeoutMs);
    } catch (err) {
      c.kill('SIGKILL');
      throw err;
    }
    mounted = true;
    log.info({ pid: c.pid }, 'mounted');
  };

  const restart = async (): Promise<void> => {
    if (stopping) return;
    try {
      await unmountStale(mountDir);
      restarts++;
      await start();
      backoff = 500;
      emitter.emit('restarted', { pid: child?.pid, restarts });
    } catch (err) {
      log.error({ err }, 'remount failed; trying again');
      if (!stopping) restartTimer = setTimeout(() => void restart(), backoff);
      backoff = Math.min(backoff * 2, 10_000);
    }
  };

  await start();

  const stop = async (): Promise<void> => {
    stopping = true;
    clearTimeout(restartTimer);
    const c = child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await unmountStale(mountDir);
    log.info('unmounted');
  };

  let statsSeq = 0;
  const readStats = (timeoutMs = 2000): Promise<MountReadStats | undefined> => {
    const c = child;
    if (!c?.connected) return Promise.resolve(undefined);
    const id = ++statsSeq;
    return new Promise((resolve) => {
      const done = (v: MountReadStats | undefined) => {
        clearTimeout(timer);
        c.off('message', onMessage);
        resolve(v);
      };
      const onMessage = (m: { type?: string; id?: number; stats?: MountReadStats }) => {
        if (m?.type === 'stats' && m.id === id) done(m.stats);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      c.on('message', onMessage);
      c.send({ type: 'stats', id }, (err) => err && done(undefined));
    });
  };

  // defineProperties, not Object.assign: assign would copy the getters' values once.
  return Object.defineProperties(emitter, {
    mountDir: { value: mountDir, enumerable: true },
    pid: { get: () => child?.pid, enumerable: true },
    restarts: { get: () => restarts, enumerable: true },
    readStats: { value: readStats },
    stop: { value: stop },
  }) as OverlayMount;
}
