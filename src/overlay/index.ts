/**
 * The unified filesystem's public face: mount it (in a child process of its own), keep it
 * mounted, unmount it. The parent never serves FUSE requests itself, so it may look at the
 * mount (to check that it answers) without deadlocking.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rename, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_PREFIX } from '../state/keys.js';
import { createLogger, type Logger } from '../util/log.js';
import { packageRoot } from '../util/paths.js';
import type { FetcherStats } from '../packetfs/index.js';
import type { ReplicaWaitStats } from '../metrics/index.js';
import type { LockStats } from './locks.js';
import type { FastReadStats } from './fast-read.js';
import type { FileCacheStats } from './file-cache.js';
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
  /** The Redis of the cluster's files when they have one of their own (`--fs-redis`); default redisUrl's. */
  fsRedisUrl?: string;
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
  /**
   * Why the unified filesystem is not mounted now (the FS process died and is being
   * replaced, a remount failed), undefined while it is. Events: 'died', 'remountFailed' (err),
   * 'restarted'.
   */
  readonly down: string | undefined;
  /** Pid of the FS process now serving the mount. */
  readonly pid: number | undefined;
  /** How many times the FS process was restarted. */
  readonly restarts: number;
  /** What the FS process has read so far; undefined when it does not answer within timeoutMs (restarting, say). */
  readStats(timeoutMs?: number): Promise<MountReadStats | undefined>;
  /** Unmount and stop the FS process; leaves no mount behind. */
  stop(): Promise<void>;
}

/** The settings mountOverlay sends its FS process (fs-process.ts) as the first IPC message. */
export interface FsProcessConfig {
  mountDir: string;
  node: string;
  redisUrl: string;
  prefix: string;
  /** The Redis of the cluster's files, when not redisUrl's. */
  fsRedisUrl?: string;
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
  /** Cluster-wide flock and fcntl locks through the mount (locks.ts). */
  locks: LockStats;
  /** Stats and getxattrs the addon answered from a listing's attributes, without JavaScript (fuse.ts). */
  keptAttrs: { answers: number; entries: number };
  /** Its commits' WAITs for a Redis replica (src/state/replication.ts). */
  replication: ReplicaWaitStats;
}

/** One line of /proc/self/mountinfo, decoded. */
export interface MountEntry {
  id: number;
  parent: number;
  /** major:minor of the mounted filesystem (a FUSE connection has one of its own). */
  dev: string;
  /** The directory of that filesystem mounted here (a bind's source). */
  root: string;
  target: string;
  /** Per-mount options (ro, nosuid…), not the filesystem's. */
  options: string[];
  fstype: string;
  source: string;
  /** Propagation fields (shared:N, master:N). */
  optional: string;
}

/** Mount points (decoded) from /proc/self/mountinfo, with their fs type and propagation fields. */
export async function mountTable(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const f = left.split(' ');
    const r = right.split(' ');
    const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({
      id: Number(f[0]), parent: Number(f[1]), dev: f[2], root: decode(f[3]), target: decode(f[4]), options: f[5].split(','),
      fstype: r[0], source: decode(r[1] ?? ''), optional: f.slice(6).join(' '),
    });
  }
  return out;
}

/**
 * The mounts stacked on dir, bottom first (each one's parent is the one below it): what a
 * path lookup of dir reaches is the last.
 */
export function mountStack(table: MountEntry[], dir: string): MountEntry[] {
  const target = resolve(dir);
  const here = table.filter((m) => m.target === target);
  const ids = new Set(here.map((m) => m.id));
  const bottom = here.filter((m) => !ids.has(m.parent));
  const stack: MountEntry[] = [];
  // A mount whose parent is not at dir is the bottom; more than one (propagated copies) is odd
  // but harmless: follow the last, as the kernel's lookup does.
  let cur = bottom.pop();
  while (cur) {
    stack.push(cur);
    const id: number = cur.id;
    cur = here.find((m) => m.parent === id);
  }
  return stack;
}

async function isMounted(dir: string): Promise<boolean> {
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
 * The read-only guard under every mount of the unified filesystem (and under its binds for
 * containers): a read-only bind of the (empty) mount point onto itself. The FUSE mount goes on
 * top of it; when the FS process dies and its dead mount is detached, a lookup of the path
 * reaches the guard, where every write fails with EROFS, for root too (root ignores mode bits,
 * not a read-only mount) and for containers that see the path through a bind. Without it the
 * gap until the new FS process mounts was the plain directory underneath, and whatever a job
 * wrote there in that second landed on the local disk, out of the cluster, then hid under the
 * next mount or kept libfuse from mounting ("mountpoint is not empty").
 *
 * A bind, not an empty read-only tmpfs: fuse-native refuses a mount point whose device is not
 * its parent directory's ("Mountpoint in use"), and a bind keeps the device. Made read-only
 * where nothing sees it (a private bind elsewhere, remounted ro) and then bound into place,
 * because a bind-then-remount at the mount point itself stays writable in every copy that
 * propagation made before the remount (a container's, the host's under compose); a bind of a
 * read-only mount is read-only in all of them. nosuid,nodev,noexec mark it as ours.
 */
const GUARD_OPTIONS = ['ro', 'nosuid', 'nodev', 'noexec'];

export function isGuard(m: MountEntry | undefined): boolean {
  return !!m && !m.fstype.startsWith('fuse') && GUARD_OPTIONS.every((o) => m.options.includes(o)) &&
    (m.root === '/' || m.root.endsWith('/' + basename(m.target)));
}

async function mountGuard(target: string): Promise<void> {
  const staging = await mkdtemp(join(tmpdir(), 'oswalk-guard-'));
  try {
    await run('mount', ['--bind', target, staging]);
    try {
      await run('mount', ['--make-private', staging]);
      await run('mount', ['-o', `remount,bind,${GUARD_OPTIONS.join(',')}`, staging]);
      await run('mount', ['--bind', staging, target]);
    } finally {
      await run('umount', [staging]);
    }
  } finally {
    await rmdir(staging).catch(() => undefined);
  }
}

/**
 * Files in the directory under a mount point (written while nothing guarded it) are not in
 * the cluster: they move to a sibling directory `.<name>.stray-<time>` with a log line, rather
 * than stay hidden under the mount or keep it from mounting. Returns where they went.
 */
export async function moveStrays(dir: string, log: Logger, shownAs = dir): Promise<string | undefined> {
  const target = resolve(dir);
  const names = await readdir(target);
  if (!names.length) return undefined;
  const name = `.${basename(target)}.stray-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const dest = join(dirname(target), name);
  await mkdir(dest, { recursive: true, mode: 0o700 });
  for (const n of names) await rename(join(target, n), join(dest, n));
  log.warn({ dir: resolve(shownAs), movedTo: join(dirname(resolve(shownAs)), name), count: names.length, names: names.slice(0, 10) },
    'the mount point held files written while nothing was mounted there (they are not in the cluster); moved them aside');
  return dest;
}

/**
 * Move aside what the directory under the guard at dir holds, through a (non-recursive, so
 * guard-free) bind of its parent: the guard is a bind of that directory, so it is empty after.
 */
async function moveStraysUnderGuard(dir: string, log: Logger): Promise<void> {
  const target = resolve(dir);
  if ((await readdir(target)).length === 0) return;
  const staging = await mkdtemp(join(tmpdir(), 'oswalk-guard-'));
  try {
    await run('mount', ['--bind', dirname(target), staging]);
    try {
      await run('mount', ['--make-private', staging]);
      await moveStrays(join(staging, basename(target)), log, target);
    } finally {
      await run('umount', [staging]);
    }
  } finally {
    await rmdir(staging).catch(() => undefined);
  }
}

/**
 * Make the top of dir the read-only guard: detach whatever is mounted above a guard there (a
 * dead or old FUSE mount, an old bind), or, with no guard, detach everything, move stray
 * files aside and mount one. Returns false when no guard can be mounted (not root): dir is
 * then left empty and unmounted, and the caller mounts on the plain directory.
 */
async function guardMountDir(dir: string, log: Logger): Promise<boolean> {
  const target = resolve(dir);
  for (let i = 0; ; i++) {
    const stack = mountStack(await mountTable(), target);
    const top = stack[stack.length - 1];
    if (isGuard(top)) {
      if ((await readdir(target)).length === 0) return true;
      // Files under the guard (a process whose working directory is in there wrote them, or an
      // older version bound the guard after moving the strays): libfuse refuses a mount point
      // that is not empty.
      await moveStraysUnderGuard(target, log);
    } else if (stack.some(isGuard)) {
      // Only the top: the guard below stays, so the path never shows the directory itself.
      await run('umount', ['-l', target]);
    } else if (top) {
      await unmountStale(target);
    } else {
      await mkdir(target, { recursive: true });
      // The guard first, then the strays go aside from under it: moved first, a program still
      // writing to the path (while no agent mounted it) put new ones back before the bind, the
      // guard showed them and libfuse refused to mount on it. Once the guard is on, nothing
      // new lands in the directory.
      try {
        await mountGuard(target);
      } catch (err) {
        await moveStrays(target, log);
        log.warn({ err: (err as Error).message, dir: target },
          'no read-only guard under the mount point (mounting needs root): while the FS process restarts, writes to it land in the directory itself, and are moved aside at the next mount');
        return false;
      }
      await moveStraysUnderGuard(target, log);
    }
    if (i > 100) throw new Error(`could not clear the mounts on ${target}`);
  }
}

/**
 * Make dir a mount point with shared propagation (mount --bind dir dir; mount --make-rshared
 * dir), so that a FUSE mount made below it later, or made again after a restart, also appears
 * in containers that bind it with rslave propagation. `/` is private on these hosts, hence the
 * bind. Idempotent.
 */
async function prepareSharedMountDir(dir: string): Promise<void> {
  const target = resolve(dir);
  await mkdir(target, { recursive: true });
  const entry = mountStack(await mountTable(), target).pop();
  if (!entry) await run('mount', ['--bind', target, target]);
  if (!entry || !/\bshared:\d+/.test(entry.optional)) await run('mount', ['--make-rshared', target]);
}

/**
 * Bind the mount at mountDir into shareDir (made rshared) as shareDir/<its name>, in place of a
 * bind of an earlier mount there; returns the bind's path. Containers bind shareDir, never the
 * FUSE mount itself: a bind copies the mount it finds, so a container holding the mount would
 * hold the dead one after the FS process restarts. Holding shareDir rslave, they see both the
 * old bind go and the new one come, and between the two a read-only guard (guardMountDir),
 * never the directory under it.
 */
export async function shareMount(mountDir: string, shareDir: string, log: Logger = createLogger('overlay')): Promise<string> {
  await prepareSharedMountDir(shareDir);
  const target = join(resolve(shareDir), basename(resolve(mountDir)));
  await guardMountDir(target, log);
  // Bind the top of mountDir only (not --rbind): that is the FUSE mount, not its guard.
  await run('mount', ['--bind', resolve(mountDir), target]);
  return target;
}

/**
 * The FS process's environment: ours without the cluster's credentials (the API token, a Redis
 * URL that may carry a password), which it gets over IPC instead. OSWALK_REDIS_OPTIONS stays:
 * it names a file, whose own mode guards what it holds.
 */
export function fsProcessEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || /^OSWALK_(TOKEN|REDIS_URL|FS_CONFIG)$/.test(k)) continue;
    out[k] = v;
  }
  return out;
}

function fsProcessEntry(): string {
  return join(packageRoot(), 'dist', 'src', 'overlay', 'fs-process.js');
}

/** Wait until the mount at dir is a live oswalk FUSE mount, asked from this (other) process. */
async function waitMounted(dir: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = mountStack(await mountTable(), dir).pop();
    const up = m?.fstype.startsWith('fuse') && (await stat(dir).then(() => true, () => false));
    // Checked after the awaits: a child that died meanwhile must not count as started.
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the FS process for ${dir} exited during start-up`);
    if (up) return;
    if (Date.now() > deadline) throw new Error(`the FUSE mount at ${dir} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Mount the unified filesystem at opts.mountDir, served by a child process (fs-process.ts), on
 * top of a read-only guard (guardMountDir). Resolves once the mount answers. If the FS process
 * dies, its dead mount answers ENOTCONN until the restart (backoff 0.5 s doubling to 10 s)
 * detaches it, the guard then answers EROFS until a new FS process has mounted: at no moment
 * does a write reach the directory under the mount. `down` says why while it is not mounted.
 * stop() unmounts for good, guard included.
 */
export async function mountOverlay(opts: MountOverlayOptions): Promise<OverlayMount> {
  const mountDir = resolve(opts.mountDir);
  const log = opts.log ?? createLogger('overlay', { mount: mountDir });
  const cfg: FsProcessConfig = {
    mountDir,
    node: opts.node,
    redisUrl: opts.redisUrl,
    prefix: opts.prefix ?? DEFAULT_PREFIX,
    ...(opts.fsRedisUrl && opts.fsRedisUrl !== opts.redisUrl ? { fsRedisUrl: opts.fsRedisUrl } : {}),
    stateDir: resolve(opts.stateDir),
    chunkDir: resolve(opts.chunkDir ?? join(opts.stateDir, 'chunks')),
    cacheSizeBytes: opts.cacheSizeBytes ?? 1024 ** 3,
    memoryCacheBytes: opts.memoryCacheBytes ?? 256 * 1024 * 1024,
    fileCacheBytes: opts.fileCacheBytes ?? DEFAULT_FILE_CACHE_BYTES,
    token: opts.token,
    tuning: { entryTimeout: 0.5, attrTimeout: 0.5, negativeTimeout: 0.5, ...opts.tuning },
  };
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  // A crash leaves a dead FUSE mount behind, on which even mkdir fails (ENOTCONN): clear it
  // first, down to the read-only guard (made here if there is none).
  let guarded = await guardMountDir(mountDir, log);

  const emitter = new EventEmitter();
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let backoff = 500;
  let restartTimer: NodeJS.Timeout | undefined;
  let down: string | undefined;

  const start = async (): Promise<void> => {
    const c = fork(fsProcessEntry(), [], {
      // The settings, the Redis URL and token among them, go over the IPC channel (a socket
      // pair only the two processes hold), not the environment: /proc/<pid>/environ of the FS
      // process is readable by any root job on the node, and so is argv by everyone.
      env: fsProcessEnv(),
      // Not the parent's node flags (--eval, --inspect…): this is a program of its own.
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child = c;
    c.send({ type: 'config', config: cfg });
    // What the child says when it fails to start (its own words beat "exited during start-up").
    let failure: string | undefined;
    c.on('message', (m: { type?: string; message?: string }) => {
      if (m?.type === 'failed') failure = m.message;
    });
    // Until it has mounted, a child's death is start()'s failure, and start()'s caller retries:
    // restarting here too would run two restarts at once, each forking a child of its own.
    let mounted = false;
    c.on('exit', (code, signal) => {
      if (stopping || child !== c || !mounted) return;
      const how = signal ?? `exit code ${code}`;
      down = `the filesystem process died (${how})${opts.restart === false ? '' : '; remounting'}`;
      emitter.emit('died', { code, signal });
      if (opts.restart === false) {
        log.error({ code, signal }, 'FS process died');
        // Down to the guard: the path fails writes until stop() instead of showing the directory.
        void guardMountDir(mountDir, log).catch((err: unknown) => log.error({ err }, 'could not clear the dead mount'));
        return;
      }
      log.error({ code, signal }, 'FS process died; remounting');
      // The dead mount stays until the restart: callers get ENOTCONN from it, never the disk.
      restartTimer = setTimeout(() => void restart(), backoff);
      backoff = Math.min(backoff * 2, 10_000);
    });
    try {
      await waitMounted(mountDir, c, startTimeoutMs);
    } catch (err) {
      c.kill('SIGKILL');
      // Its last message may come after its exit: the channel's close comes after both.
      if (!failure) await Promise.race([once(c, 'close'), new Promise((r) => setTimeout(r, 1000))]);
      if (failure) throw new Error(failure);
      throw err;
    }
    mounted = true;
    log.info({ pid: c.pid }, 'mounted');
  };

  const restart = async (): Promise<void> => {
    if (stopping) return;
    try {
      // The dead mount goes (down to the guard); stray files go aside when there is no guard.
      guarded = await guardMountDir(mountDir, log);
      restarts++;
      await start();
      backoff = 500;
      down = undefined;
      emitter.emit('restarted', { pid: child?.pid, restarts });
    } catch (err) {
      down = `remount failed: ${(err as Error).message}; retrying`;
      log.error({ err }, 'remount failed; trying again');
      emitter.emit('remountFailed', err);
      if (!stopping) restartTimer = setTimeout(() => void restart(), backoff);
      backoff = Math.min(backoff * 2, 10_000);
    }
  };

  try {
    await start();
  } catch (err) {
    // Nothing of ours stays mounted after a failed first mount: not the guard either.
    await unmountStale(mountDir);
    throw err;
  }

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
    log.info({ guarded }, 'unmounted');
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
    down: { get: () => down, enumerable: true },
    pid: { get: () => child?.pid, enumerable: true },
    restarts: { get: () => restarts, enumerable: true },
    readStats: { value: readStats },
    stop: { value: stop },
  }) as OverlayMount;
}
