/**
 * flock(2) and fcntl(2) record locks through a mount, held cluster-wide (issue 25): the kernel
 * hands every lock request on a file of the mount to the addon (patches/oswalk-locks.c), which
 * passes it here; the answer comes from the cluster's lock table (Backend.locks, kept in Redis
 * by src/state/locks.ts), so a lock taken through one node's mount excludes the same lock taken
 * through every other node's. Linux's local semantics are kept: who owns a lock (the process for
 * record locks, the open file for flock), release on close and exit (libfuse unlocks at every
 * flush, and a flock at the last release), F_GETLK naming the holder, waits served in arrival
 * order, EDEADLK for a cycle of record-lock waits.
 *
 * What a lock protects is seen fresh: granting one first drops this mount's cached view of the
 * file and takes its newest version (and the addon then drops the kernel's pages and attributes
 * of it); letting go first commits what was written to it here (what an fsync does), so the next
 * holder, on any node, reads it.
 *
 * A lock lives as long as this mount's session in the table, which this module renews; a mount
 * that cannot renew (its process frozen, cut off from Redis) loses its locks once the lease has
 * passed, and the others go on. Its own locks are then void: `onLost` names the files, whose
 * unpublished changes must not be committed over what the next holder did.
 */
import type { Logger } from 'pino';
import type { LockStatus } from '../state/locks.js';

/** The addon's side (patches/oswalk-locks.c). */
export interface LockBinding {
  oswalk_locks_handler(fn: (...args: unknown[]) => void): void;
  oswalk_lock_reply(id: number, res: number, type?: number, start?: number, end?: number, pid?: number): boolean;
}

/** Counters of one FS process's locks (metrics.ts); they start from 0 when it restarts. */
export interface LockStats {
  /** Locks granted, by kind. */
  granted: { posix: number; flock: number };
  /** Requests that had to wait for a lock held elsewhere, by kind (granted since or not). */
  waited: { posix: number; flock: number };
  /** Seconds spent waiting by the requests granted after a wait. */
  waitSeconds: number;
  /** Requests waiting now. */
  waiting: number;
  /** Times this mount lost its session in the lock table, and its locks with it. */
  sessionsLost: number;
}

export interface HeldLock {
  type: 'r' | 'w';
  start: number;
  /** Inclusive; Infinity: to the end of the file. */
  end: number;
  pid: number;
}

/** The cluster's lock table as one mount's session sees it; owners are the kernel's lock owners. */
export interface LockTable {
  /** How long the session lives without a renewal (ms). */
  readonly leaseMs: number;
  /** The session's id in the table (commits under its locks name it: ops.ts lockFence). */
  readonly session: string;
  /** Starts a new session (a mount's first, or after the last one was lost). */
  open(): Promise<void>;
  /** Moves the session's lease on; false: the session is gone and its locks with it. */
  renew(): Promise<boolean>;
  close(): Promise<void>;
  setlk(r: { owner: string; pid: number; path: string; type: 'r' | 'w' | 'u'; start: number; end: number; wait: boolean }): Promise<LockStatus>;
  getlk(r: { owner: string; path: string; type: 'r' | 'w'; start: number; end: number }): Promise<HeldLock | undefined>;
  flock(r: { owner: string; pid: number; path: string; op: 'sh' | 'ex' | 'un'; wait: boolean }): Promise<LockStatus>;
  /** Lets go of all the owner's locks of that kind on path (a close; a whole-file unlock). */
  release(r: { owner: string; path: string; kind: 'posix' | 'flock' }): Promise<void>;
  /** Drops a queued wait (the waiting call was interrupted). */
  cancel(r: { owner: string; path: string; kind: 'posix' | 'flock' }): Promise<void>;
  /** Calls fn with a path whose locks changed anywhere in the cluster (a wait there may be granted now). */
  onWake(fn: (path: string) => void): Promise<() => Promise<void>>;
}

/** What granting and letting go do to the files (ops.ts). */
export interface LockHooks {
  /** Before a lock on path is granted: take the newest version (drop cached views). */
  taking(path: string): Promise<void>;
  /** Before a lock on path is let go: commit what was written to it here. */
  releasing(path: string): Promise<void>;
  /** The session was lost: locks on these paths are no longer held. */
  lost(paths: string[]): void;
  /** The file open file handle fh is on (one object per file however it is renamed), if any. */
  fileOf(fh: number): unknown;
}

// <fcntl.h> on Linux (x86-64, arm64), and what patches/oswalk-locks.c sends.
const F_GETLK = 5;
const F_SETLKW = 7;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const KIND_POSIX = 0;
const KIND_CANCEL = 2;
const KIND_FILE_CLOSED = 3;
const EINTR = 4;
const EIO = 5;
const EAGAIN = 11;
const EDEADLK = 35;
const ENOLCK = 37;

/** How often waits are asked again without a wake (a publish lost across a reconnect). */
const RETRY_MS = 1000;

interface Request {
  id: number;
  kind: 'posix' | 'flock';
  path: string;
  owner: string;
  pid: number;
  /** The open file it came through. */
  fh: number;
  type: 'r' | 'w' | 'u';
  start: number;
  end: number;
  wait: boolean;
  /** Queued in the table behind a lock held elsewhere (since when: Date.now(), 0 if not). */
  queued: boolean;
  queuedAt: number;
  /** Being asked of the table right now (a retry must not overlap its own ask). */
  asking: boolean;
  /** The waiting process got a signal. */
  cancelled: boolean;
  /** A wake for its path came while it was being asked: the answer may be stale, ask again. */
  woken: boolean;
}

/** A lock granted here, as the table holds it. */
interface Held {
  kind: 'posix' | 'flock';
  owner: string;
  /** The path the table holds it under: the file's name when it was locked. */
  path: string;
  /** The open file it was last asked through (an OFD lock ends with it). */
  fh: number;
  /** The file (LockHooks.fileOf), which may have been renamed since. */
  file: unknown;
}

const ERRNO: Record<Exclude<LockStatus, 'granted' | 'blocked'>, number> = { wouldblock: EAGAIN, deadlock: EDEADLK, lost: ENOLCK, nolck: ENOLCK };

export class MountLocks {
  /** Requests not answered yet, by the addon's id, in arrival order. */
  private requests = new Map<number, Request>();
  /**
   * What this mount was granted and has not let go of, per owner ("posix:<owner>",
   * "flock:<owner>") and path the table holds it under. libfuse unlocks at every close of every
   * file; an unlock by an owner holding nothing here is answered at once, without the cluster.
   */
  private held = new Map<string, Map<string, Held>>();
  private renewTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private unsubscribe?: () => Promise<void>;
  private closed = false;
  private counts = { granted: { posix: 0, flock: 0 }, waited: { posix: 0, flock: 0 }, waitSeconds: 0, sessionsLost: 0 };
  /** Until when (Date.now()) the session's last renewal surely holds, counting from when it was sent. */
  private validUntil = 0;

  constructor(
    private binding: LockBinding,
    private table: LockTable,
    private hooks: LockHooks,
    private log: Logger,
  ) {}

  /** Opens the session and takes the mount's lock requests from its next mount on. */
  async start(): Promise<void> {
    await this.openSession();
    this.unsubscribe = await this.table.onWake((path) => this.wake(path));
    this.binding.oswalk_locks_handler((...a: unknown[]) => this.onRequest(a));
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.table.leaseMs / 3)));
    this.retryTimer = setInterval(() => this.wake(), RETRY_MS);
  }

  private async openSession(): Promise<void> {
    const sent = Date.now();
    await this.table.open();
    this.validUntil = sent + Math.floor((this.table.leaseMs * 3) / 4);
  }

  private onRequest(a: unknown[]): void {
    const id = a[0] as number;
    if (a[1] === KIND_CANCEL) return this.cancel(id);
    const [, kind, path, owner, pid, cmd, type, start, end, fh] = a as [number, number, string, bigint, number, number, number, number, number, number];
    if (kind === KIND_FILE_CLOSED) return void this.fileClosed(id, path, fh);
    const r: Request = {
      id,
      kind: kind === KIND_POSIX ? 'posix' : 'flock',
      path,
      owner: owner.toString(),
      pid,
      fh,
      type: type === F_RDLCK ? 'r' : type === F_WRLCK ? 'w' : 'u',
      start,
      end: end < 0 ? Infinity : end,
      // Record locks: F_SETLKW waits; flock: the addon sends 1 for a blocking request.
      wait: kind === KIND_POSIX ? cmd === F_SETLKW : cmd === 1,
      queued: false,
      queuedAt: 0,
      asking: false,
      cancelled: false,
      woken: false,
    };
    this.requests.set(id, r);
    if (this.closed) return this.reply(r, -EIO);
    if (r.kind === 'posix' && cmd === F_GETLK) return void this.getlk(r);
    if (r.type === 'u' && !this.heldBy(r).length) return this.reply(r, 0);
    void this.ask(r);
  }

  private async getlk(r: Request): Promise<void> {
    try {
      const h = r.type === 'u' ? undefined : await this.table.getlk({ owner: r.owner, path: r.path, type: r.type, start: r.start, end: r.end });
      if (!h) this.reply(r, 0, F_UNLCK, 0, -1, 0);
      else this.reply(r, 0, h.type === 'r' ? F_RDLCK : F_WRLCK, h.start, Number.isFinite(h.end) ? h.end : -1, h.pid);
    } catch (err) {
      this.log.warn({ err, path: r.path }, 'F_GETLK failed');
      this.reply(r, -EIO);
    }
  }

  /** Asks the table for r (again); answers the addon unless r must wait on. */
  private async ask(r: Request): Promise<void> {
    if (r.asking || !this.requests.has(r.id)) return;
    r.asking = true;
    r.woken = false;
    try {
      const who = `${r.kind}:${r.owner}`;
      if (r.type === 'u') {
        // What was written under the lock goes out first; a failure to is reported, but the lock
        // is let go all the same: its owner would hold it until the mount restarts otherwise.
        let res = 0;
        try {
          await this.hooks.releasing(r.path);
        } catch (err) {
          this.log.warn({ err, path: r.path }, 'could not commit the file before letting go of its lock');
          res = -EIO;
        }
        // Under the name the file was locked by (it may have been renamed since).
        for (const h of this.heldBy(r)) {
          if (r.kind === 'flock' || (r.start === 0 && r.end === Infinity)) {
            await this.table.release({ owner: r.owner, path: h.path, kind: r.kind });
            this.forget(h);
          } else {
            await this.change({ ...r, path: h.path });
          }
        }
        return this.reply(r, res);
      }
      // A downgrade (w to r) lets readers elsewhere in: they must find what was written.
      if (r.type === 'r' && this.held.get(who)?.has(r.path)) await this.hooks.releasing(r.path);
      const status = await this.change(r);
      if (status === 'blocked') {
        if (!r.queued) {
          r.queued = true;
          r.queuedAt = Date.now();
          this.counts.waited[r.kind]++;
        }
        return;
      }
      if (status === 'granted') {
        let mine = this.held.get(who);
        if (!mine) this.held.set(who, (mine = new Map()));
        mine.set(r.path, { kind: r.kind, owner: r.owner, path: r.path, fh: r.fh, file: this.hooks.fileOf(r.fh) });
        this.counts.granted[r.kind]++;
        if (r.queued) this.counts.waitSeconds += (Date.now() - r.queuedAt) / 1000;
        // Fresh once granted, never before: until the grant another node may still take the
        // lock, write and publish. The previous holder published before it let go.
        await this.hooks.taking(r.path);
        return this.reply(r, 0);
      }
      this.reply(r, -ERRNO[status]);
    } catch (err) {
      this.log.warn({ err, path: r.path, kind: r.kind }, 'lock request failed');
      this.reply(r, -EIO);
    } finally {
      r.asking = false;
      // Interrupted while it was being asked: the wait it may have queued goes now.
      if (r.cancelled && this.requests.has(r.id)) void this.dropWait(r);
      // The lock it waits for may have gone between the table's answer and now.
      else if (r.woken && r.queued && this.requests.has(r.id)) void this.ask(r);
    }
  }

  stats(): LockStats {
    let waiting = 0;
    for (const r of this.requests.values()) if (r.queued) waiting++;
    return { granted: { ...this.counts.granted }, waited: { ...this.counts.waited }, waitSeconds: this.counts.waitSeconds, waiting, sessionsLost: this.counts.sessionsLost };
  }

  /** The session under which this mount holds a lock on path, if it holds one. */
  sessionHolding(path: string): string | undefined {
    for (const mine of this.held.values()) if (mine.has(path)) return this.table.session;
    return undefined;
  }

  /** The last close of open file fh: the record locks asked through it and still held go (OFD locks). */
  private async fileClosed(id: number, path: string, fh: number): Promise<void> {
    const through = [...this.held.values()].flatMap((mine) => [...mine.values()]).filter((h) => h.kind === 'posix' && h.fh === fh);
    try {
      for (const h of through) {
        await this.hooks.releasing(path);
        await this.table.release({ owner: h.owner, path: h.path, kind: 'posix' });
        this.forget(h);
      }
    } catch (err) {
      this.log.warn({ err, path }, 'could not let go of the locks of a closed file (they lapse with the session)');
    }
    this.binding.oswalk_lock_reply(id, 0);
  }

  /**
   * What r's owner holds of r's file: under r's path, or under the name the same file had when
   * it was locked (a process's close names the file as it is called now).
   */
  private heldBy(r: Request): Held[] {
    const mine = this.held.get(`${r.kind}:${r.owner}`);
    if (!mine) return [];
    const file = this.hooks.fileOf(r.fh);
    return [...mine.values()].filter((h) => h.path === r.path || (file !== undefined && h.file === file));
  }

  private forget(h: Held): void {
    const who = `${h.kind}:${h.owner}`;
    const mine = this.held.get(who);
    if (mine?.delete(h.path) && mine.size === 0) this.held.delete(who);
  }

  private change(r: Request): Promise<LockStatus> {
    if (r.kind === 'posix') return this.table.setlk({ owner: r.owner, pid: r.pid, path: r.path, type: r.type, start: r.start, end: r.end, wait: r.wait });
    return this.table.flock({ owner: r.owner, pid: r.pid, path: r.path, op: r.type === 'r' ? 'sh' : r.type === 'w' ? 'ex' : 'un', wait: r.wait });
  }

  /** The waiting process got a signal: it stops waiting, with EINTR (0 if granted first). */
  private cancel(id: number): void {
    const r = this.requests.get(id);
    if (!r) return;
    r.cancelled = true;
    if (!r.asking) void this.dropWait(r);
  }

  private async dropWait(r: Request): Promise<void> {
    if (r.queued) {
      try {
        await this.table.cancel({ owner: r.owner, path: r.path, kind: r.kind });
      } catch (err) {
        this.log.warn({ err, path: r.path }, 'could not drop an interrupted lock wait (it lapses with its owner)');
      }
    }
    this.reply(r, -EINTR);
  }

  /** Asks the waits on path (all waits when none is given) again, oldest first. */
  private wake(path?: string): void {
    for (const r of this.requests.values()) {
      if (path !== undefined && r.path !== path) continue;
      if (r.asking) r.woken = true;
      else if (r.queued) void this.ask(r);
    }
  }

  private async renew(): Promise<void> {
    const sent = Date.now();
    let ok: boolean;
    try {
      ok = await this.table.renew();
    } catch (err) {
      this.log.debug({ err }, 'lock session renewal failed; trying again');
      if (Date.now() < this.validUntil || this.closed) return;
      ok = false;
    }
    if (ok) {
      this.validUntil = sent + Math.floor((this.table.leaseMs * 3) / 4);
      return;
    }
    if (this.closed) return;
    // The cluster let go of this mount's locks (or may have: the lease passed unrenewed).
    const paths = [...new Set([...this.held.values()].flatMap((mine) => [...mine.keys()]))];
    this.held.clear();
    this.counts.sessionsLost++;
    if (paths.length) this.log.error({ paths }, 'this mount lost its locks (its lease in the lock table ran out): changes made under them are refused');
    this.hooks.lost(paths);
    for (const r of this.requests.values()) if (r.queued) this.reply(r, -ENOLCK);
    try {
      await this.openSession();
    } catch (err) {
      this.log.warn({ err }, 'cannot open a new lock session yet; trying again');
    }
  }

  /** The one answer r gets. */
  private reply(r: Request, res: number, type?: number, start?: number, end?: number, pid?: number): void {
    if (!this.requests.delete(r.id)) return;
    if (type === undefined) this.binding.oswalk_lock_reply(r.id, res);
    else this.binding.oswalk_lock_reply(r.id, res, type, start, end, pid);
  }

  /** Answers every wait (EIO: the mount is going away) and ends the session, letting go of its locks. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.renewTimer);
    clearInterval(this.retryTimer);
    for (const r of this.requests.values()) this.reply(r, -EIO);
    await this.unsubscribe?.();
    await this.table.close();
  }
}
