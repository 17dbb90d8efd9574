import type { Redis } from 'ioredis';
import type { FsKeyspace } from './keys.js';
import { subscribeChannel } from './redis.js';
import { runScript, ScriptError } from './scripts.js';

/**
 * The cluster-wide lock table behind flock(2) and fcntl(2) POSIX record locks: a lock taken
 * through one node's FUSE mount holds against every other node's, with the semantics Linux
 * gives them on one machine. Every change is one Lua step (src/state/lua/lock-1.lua,
 * lockSession-1.lua) timed by Redis' clock.
 *
 * - A *session* is one filesystem process's run on one node (an id its caller picks, e.g.
 *   `node1:ab12cd`). It holds a lease it must renew; once the lease passes the session is dead,
 *   and the first script that meets one of its locks or waits drops everything it held. So a
 *   crashed or cut-off node's locks go within one lease, with no monitor. A dead session's
 *   calls answer 'lost' (renewLockSession false): its FS must treat all its locks as gone.
 * - An *owner* is `<session>/<kernel lock owner>` (lockOwnerId): the kernel's owner id is only
 *   unique on its own node.
 * - A blocking request that cannot be granted is queued ('blocked') and asked again by its
 *   caller whenever its path is published on ks.lockWake (and on a timer, since a message can
 *   be missed). Waits are served in arrival order: a blocking request also waits behind
 *   earlier queued requests that conflict with it, so a stream of readers cannot starve a
 *   writer. Re-asking the same request keeps its place.
 */

export type LockStatus = 'granted' | 'blocked' | 'wouldblock' | 'deadlock' | 'lost' | 'nolck';
/** F_RDLCK, F_WRLCK, F_UNLCK. */
export type PosixLockType = 'r' | 'w' | 'u';
/** LOCK_SH, LOCK_EX, LOCK_UN. */
export type FlockOp = 'sh' | 'ex' | 'un';
export type LockKind = 'posix' | 'flock';

export interface PosixLockRequest {
  /** lockOwnerId(session, kernel lock owner) */
  owner: string;
  pid: number;
  path: string;
  type: PosixLockType;
  /** First byte offset. */
  start: number;
  /** Last byte offset, inclusive; Infinity (or anything from 2^53, e.g. OFFSET_MAX) to EOF. */
  end: number;
  /** F_SETLKW: queue when it conflicts (answer 'blocked') instead of 'wouldblock'. */
  wait: boolean;
}

export interface PosixLockQuery {
  owner: string;
  path: string;
  type: 'r' | 'w';
  start: number;
  end: number;
}

/** What F_GETLK reports: a lock of another owner in the way. */
export interface PosixLockHolder {
  type: 'r' | 'w';
  start: number;
  /** Inclusive; Infinity to EOF. */
  end: number;
  pid: number;
  session: string;
}

export interface FlockRequest {
  /** lockOwnerId(session, the kernel's owner of the open file) */
  owner: string;
  pid: number;
  path: string;
  op: FlockOp;
  /** Without LOCK_NB: queue when it conflicts. */
  wait: boolean;
}

/** The owner id of a kernel lock owner (a uint64) within a session. */
export function lockOwnerId(session: string, lockOwner: string | bigint | number): string {
  const owner = String(lockOwner);
  if (!/^\d+$/.test(owner)) throw new Error(`lock owner "${owner}" is not a decimal number`);
  if (!session) throw new Error('lock session id is empty');
  return `${session}/${owner}`;
}

// Offsets go to Lua as decimal strings ('inf' to EOF); Lua's doubles hold them exactly below
// 2^53. An end at or past 2^53 is taken as EOF: the kernel says "to EOF" with OFFSET_MAX
// (2^63 - 1), and no file reaches 2^53 bytes.
function offset(n: number, what: string, allowInf: boolean): string {
  if (allowInf && n >= 2 ** 53) return 'inf';
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`lock ${what} ${n} is not an offset in [0, 2^53)`);
  return String(n);
}

function range(start: number, end: number): [string, string] {
  const s = offset(start, 'start', false);
  const e = offset(end, 'end', true);
  if (end < start) throw new Error(`lock range ${start}..${end} ends before it starts`);
  return [s, e];
}

function parseOffset(s: string): number {
  return s === 'inf' ? Infinity : Number(s);
}

const kindLetter = (kind: LockKind) => (kind === 'posix' ? 'p' : 'f');

function lock<T>(redis: Redis, ks: FsKeyspace, now: number | undefined, op: string, args: (string | number)[]): Promise<T> {
  return runScript<T>(redis, 'lock', [ks.lockSessions], [ks.prefix, now ?? '', op, ...args]);
}

function session<T>(redis: Redis, ks: FsKeyspace, now: number | undefined, op: string, args: (string | number)[]): Promise<T> {
  return runScript<T>(redis, 'lockSession', [ks.lockSessions], [ks.prefix, now ?? '', op, ...args]);
}

/**
 * Start (or re-open) a session with a lease of leaseMs; dead sessions nobody met are dropped on
 * the way. Returns the lease deadline (ms, Redis' clock).
 */
export async function openLockSession(redis: Redis, ks: FsKeyspace, sessionId: string, leaseMs: number, now?: number): Promise<number> {
  return Number(await session<number>(redis, ks, now, 'open', [sessionId, leaseMs]));
}

/**
 * Move the session's deadline to now + leaseMs, only while it is alive. False: the lease had
 * passed, everything it held is gone (others may hold it now) and the caller must treat all its
 * locks as lost and open a new session.
 */
export async function renewLockSession(redis: Redis, ks: FsKeyspace, sessionId: string, leaseMs: number, now?: number): Promise<boolean> {
  try {
    await session<number>(redis, ks, now, 'renew', [sessionId, leaseMs]);
    return true;
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'LOST') return false;
    throw err;
  }
}

/** End a session: every lock and wait it has goes at once (a clean FS shutdown). */
export async function closeLockSession(redis: Redis, ks: FsKeyspace, sessionId: string, now?: number): Promise<void> {
  await session(redis, ks, now, 'close', [sessionId]);
}

/**
 * F_SETLK / F_SETLKW (and F_UNLCK): on success the range replaces whatever the owner held over
 * it (so r↔w converts in place; touching ranges of one type merge), as Linux does for one
 * process. A caller's own locks never conflict. 'wouldblock' (EAGAIN) for a non-blocking
 * conflict; for a blocking one 'deadlock' (EDEADLK, nothing queued) when the chain of owners
 * waiting on each other comes back to this owner, else 'blocked' (queued: ask again on a
 * wake). 'nolck' (ENOLCK) past 1024 ranges of the owner on the path (MAX_RANGES in
 * lock-1.lua); 'lost' when the owner's session is dead.
 */
export async function setPosixLock(redis: Redis, ks: FsKeyspace, req: PosixLockRequest, now?: number): Promise<LockStatus> {
  const [s, e] = range(req.start, req.end);
  return lock<LockStatus>(redis, ks, now, 'setlk', [req.owner, req.pid, req.path, req.type, s, e, req.wait ? '1' : '0']);
}

/** F_GETLK: the first lock of another (live) owner that would conflict, or undefined. */
export async function getPosixLock(redis: Redis, ks: FsKeyspace, q: PosixLockQuery, now?: number): Promise<PosixLockHolder | undefined> {
  const [s, e] = range(q.start, q.end);
  const res = await lock<[string, string, string, string, string] | null>(redis, ks, now, 'getlk', [q.owner, q.path, q.type, s, e]);
  if (!res) return undefined;
  return { type: res[0] as 'r' | 'w', start: parseOffset(res[1]), end: parseOffset(res[2]), pid: Number(res[3]), session: res[4] };
}

/**
 * flock(2): one lock per owner; sh conflicts with others' ex, ex with any other owner's lock.
 * A conversion that can be granted replaces the lock atomically; one that cannot first drops
 * the lock held, as Linux does (so two sh holders that both ask for ex cannot wait on each
 * other for ever). No deadlock detection, as in Linux.
 */
export async function flockFile(redis: Redis, ks: FsKeyspace, req: FlockRequest, now?: number): Promise<LockStatus> {
  return lock<LockStatus>(redis, ks, now, 'flock', [req.owner, req.pid, req.path, req.op, req.wait ? '1' : '0']);
}

/**
 * Drop the owner's queued waits on the path (an F_SETLKW or flock interrupted by a signal).
 * Returns whether there was one.
 */
export async function cancelLockWait(redis: Redis, ks: FsKeyspace, owner: string, path: string, kind: LockKind, now?: number): Promise<boolean> {
  return (await lock<number>(redis, ks, now, 'cancel', [owner, path, kindLetter(kind)])) === 1;
}

/**
 * Drop all the owner's locks and waits of that kind on the path (POSIX: any close of the file
 * by the process; flock: the last close of the open file). Returns whether anything went.
 */
export async function releaseLockOwner(redis: Redis, ks: FsKeyspace, owner: string, path: string, kind: LockKind, now?: number): Promise<boolean> {
  return (await lock<number>(redis, ks, now, 'release', [owner, path, kindLetter(kind)])) === 1;
}

/**
 * Call onPath with every path published on ks.lockWake (a lock or wait there went away, so a
 * wait on it may be granted now). Messages sent while the subscriber is disconnected are lost:
 * waiters also retry on a timer.
 */
export function subscribeLockWakes(redis: Redis, ks: FsKeyspace, onPath: (path: string) => void): Promise<() => Promise<void>> {
  return subscribeChannel(redis, ks.lockWake, onPath);
}
