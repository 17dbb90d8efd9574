import { randomBytes } from 'node:crypto';
import type { Redis } from '../state/redis.js';
import type { Keyspace } from '../state/keys.js';
import type { FsState } from '../state/fs-layout.js';
import { clusterNodeTimeoutMs } from '../state/nodes.js';
import {
  cancelLockWait, closeLockSession, flockFile, getPosixLock, lockOwnerId, openLockSession, releaseLockOwner, renewLockSession, setPosixLock, subscribeLockWakes,
} from '../state/locks.js';
import type { LockTable } from './locks.js';

/**
 * One mount's session in the cluster's lock table (src/state/locks.ts). Its lease is the
 * cluster's node timeout, the one jobs are fenced by: a mount cut off from Redis loses its locks
 * when its node would lose its jobs. A session lost is never taken up again: open() starts a new
 * one, with a new id.
 */
export class ClusterLocks implements LockTable {
  session = '';
  leaseMs = 5000;

  constructor(private o: { redis: Redis; ks: Keyspace; fs: FsState; node: string }) {}

  async open(): Promise<void> {
    this.leaseMs = await clusterNodeTimeoutMs(this.o.redis, this.o.ks);
    const session = `${this.o.node}:${randomBytes(6).toString('hex')}`;
    await openLockSession(this.o.fs.redis, this.o.fs.ks, session, this.leaseMs);
    this.session = session;
  }

  renew(): Promise<boolean> {
    return renewLockSession(this.o.fs.redis, this.o.fs.ks, this.session, this.leaseMs);
  }

  close(): Promise<void> {
    return closeLockSession(this.o.fs.redis, this.o.fs.ks, this.session);
  }

  /** A kernel lock owner, as the table knows it: unique in the cluster with the session. */
  private owner(owner: string): string {
    return lockOwnerId(this.session, owner);
  }

  setlk(r: Parameters<LockTable['setlk']>[0]) {
    return setPosixLock(this.o.fs.redis, this.o.fs.ks, { ...r, owner: this.owner(r.owner) });
  }

  getlk(r: Parameters<LockTable['getlk']>[0]) {
    return getPosixLock(this.o.fs.redis, this.o.fs.ks, { ...r, owner: this.owner(r.owner) });
  }

  flock(r: Parameters<LockTable['flock']>[0]) {
    return flockFile(this.o.fs.redis, this.o.fs.ks, { ...r, owner: this.owner(r.owner) });
  }

  async release(r: Parameters<LockTable['release']>[0]): Promise<void> {
    await releaseLockOwner(this.o.fs.redis, this.o.fs.ks, this.owner(r.owner), r.path, r.kind);
  }

  async cancel(r: Parameters<LockTable['cancel']>[0]): Promise<void> {
    await cancelLockWait(this.o.fs.redis, this.o.fs.ks, this.owner(r.owner), r.path, r.kind);
  }

  onWake(fn: (path: string) => void) {
    return subscribeLockWakes(this.o.fs.redis, this.o.fs.ks, fn);
  }
}
