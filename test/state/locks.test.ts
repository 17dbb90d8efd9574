import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { fsKeyspace, type FsKeyspace } from '../../src/state/keys.js';
import { commitVersion, FsError, getCurrent } from '../../src/state/fs.js';
import {
  cancelLockWait, closeLockSession, flockFile, getPosixLock, lockOwnerId, openLockSession,
  releaseLockOwner, renewLockSession, setPosixLock, subscribeLockWakes, type FlockOp, type LockStatus, type PosixLockType,
} from '../../src/state/locks.js';

const LEASE = 10_000;
/** lock-1.lua's MAX_RANGES: the most byte ranges one owner may hold on one path; more answers 'nolck' (ENOLCK). */
const MAX_LOCK_RANGES = 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('lock table', () => {
  const db = useTestRedis();

  /** A fresh prefix with one open session per name; owner(s, n) is kernel owner n in session s. */
  async function setup(...sessions: string[]): Promise<FsKeyspace> {
    const ks = fsKeyspace(testPrefix());
    for (const s of sessions) await openLockSession(db.redis, ks, s, LEASE);
    return ks;
  }
  const owner = (session: string, n = 1) => lockOwnerId(session, n);

  function posix(ks: FsKeyspace, who: string, type: PosixLockType, start: number, end: number, wait = false, path = '/f', pid = 100): Promise<LockStatus> {
    return setPosixLock(db.redis, ks, { owner: who, pid, path, type, start, end, wait });
  }
  function flock(ks: FsKeyspace, who: string, op: FlockOp, wait = false, path = '/f', pid = 100): Promise<LockStatus> {
    return flockFile(db.redis, ks, { owner: who, pid, path, op, wait });
  }
  /**
   * One owner's POSIX ranges on a path as `r0-9` strings (`inf` to EOF), read from the lock
   * table's key (lk:p:<path>: owner → `<pid>|r,0,9;w,20,inf`, src/state/keys.ts) as stored,
   * a dead session's too until a script meets it.
   */
  async function ranges(ks: FsKeyspace, who: string, path = '/f'): Promise<string[]> {
    const held = await db.redis.hget(ks.posixLocks(path), who);
    if (!held) return [];
    return held.slice(held.indexOf('|') + 1).split(';').map((r) => {
      const [type, start, end] = r.split(',');
      return `${type}${start}-${end}`;
    });
  }
  /** The flock locks on a path as `<session>:<sh|ex>:<pid>`, read from its key (lk:f:<path>: owner → `<pid>|sh`). */
  async function flocks(ks: FsKeyspace, path = '/f'): Promise<string[]> {
    return Object.entries(await db.redis.hgetall(ks.flockLocks(path))).map(([who, held]) => {
      const [pid, mode] = held.split('|');
      return `${who.slice(0, who.lastIndexOf('/'))}:${mode}:${pid}`;
    });
  }

  const rangeCases: { name: string; steps: [PosixLockType, number, number][]; held: string[] }[] = [
    { name: 'unlock splits a range', steps: [['w', 0, 99], ['u', 10, 19]], held: ['w0-9', 'w20-99'] },
    { name: 'unlock to EOF trims a range to EOF', steps: [['r', 0, Infinity], ['u', 50, Infinity]], held: ['r0-49'] },
    { name: 'unlock of what is not held changes nothing', steps: [['r', 0, 9], ['u', 20, 29]], held: ['r0-9'] },
    { name: 'adjacent ranges of one type merge', steps: [['r', 0, 9], ['r', 10, 19]], held: ['r0-19'] },
    { name: 'overlapping ranges of one type merge', steps: [['w', 0, 9], ['w', 5, 30]], held: ['w0-30'] },
    { name: 'filling a gap merges three', steps: [['r', 0, 9], ['r', 20, 29], ['r', 10, 19]], held: ['r0-29'] },
    { name: 'adjacent ranges of two types stay apart', steps: [['r', 0, 9], ['w', 10, 19]], held: ['r0-9', 'w10-19'] },
    { name: 'r→w of part of a range converts it in place', steps: [['r', 0, 99], ['w', 40, 59]], held: ['r0-39', 'w40-59', 'r60-99'] },
    { name: 'w→r back merges again', steps: [['r', 0, 99], ['w', 40, 59], ['r', 40, 59]], held: ['r0-99'] },
    { name: 'a lock over several ranges replaces them all', steps: [['r', 0, 9], ['w', 20, 29], ['r', 40, 49], ['w', 5, 45]], held: ['r0-4', 'w5-45', 'r46-49'] },
    { name: 'an end from 2^53 on (the kernel\'s OFFSET_MAX) means EOF', steps: [['r', 10, 2 ** 63 - 1]], held: ['r10-inf'] },
    { name: 'offsets near 2^53 keep every digit', steps: [['w', 2 ** 53 - 3, Infinity], ['u', 2 ** 53 - 2, 2 ** 53 - 2]], held: [`w${2 ** 53 - 3}-${2 ** 53 - 3}`, `w${2 ** 53 - 1}-inf`] },
  ];
  for (const c of rangeCases) {
    it(`POSIX ranges: ${c.name}`, async () => {
      const ks = await setup('n1:a');
      for (const [t, s, e] of c.steps) assert.equal(await posix(ks, owner('n1:a'), t, s, e), 'granted', `${t} ${s}-${e}`);
      assert.deepEqual(await ranges(ks, owner('n1:a')), c.held);
    });
  }

  const conflictCases: { name: string; held: [PosixLockType, number, number]; ask: [PosixLockType, number, number]; want: LockStatus }[] = [
    { name: 'r and r share', held: ['r', 0, 9], ask: ['r', 5, 15], want: 'granted' },
    { name: 'r blocks w', held: ['r', 0, 9], ask: ['w', 9, 9], want: 'wouldblock' },
    { name: 'w blocks r', held: ['w', 0, 9], ask: ['r', 0, 0], want: 'wouldblock' },
    { name: 'w blocks w', held: ['w', 0, 9], ask: ['w', 3, 4], want: 'wouldblock' },
    { name: 'to EOF reaches any later byte', held: ['w', 100, Infinity], ask: ['r', 2 ** 40, 2 ** 40], want: 'wouldblock' },
    { name: 'adjacent w and w do not overlap', held: ['w', 0, 9], ask: ['w', 10, 19], want: 'granted' },
    { name: 'disjoint w and w', held: ['w', 0, 9], ask: ['w', 100, Infinity], want: 'granted' },
  ];
  for (const c of conflictCases) {
    it(`POSIX conflicts between owners: ${c.name}`, async () => {
      // Two sessions: the owners are on different nodes, as through two FUSE mounts.
      const ks = await setup('n1:a', 'n2:b');
      const [t, s, e] = c.held;
      // Own ranges never conflict, whatever the type: the owner converts them instead.
      for (const type of [t, t === 'r' ? 'w' : 'r', t] as const) assert.equal(await posix(ks, owner('n1:a'), type, s, e), 'granted');
      assert.equal(await posix(ks, owner('n2:b'), ...c.ask), c.want);
    });
  }

  it('keeps two kernel owners of one session apart', async () => {
    const ks = await setup('n1:a');
    assert.equal(await posix(ks, owner('n1:a', 1), 'w', 0, 9), 'granted');
    assert.equal(await posix(ks, owner('n1:a', 2), 'r', 0, 9), 'wouldblock');
  });

  it('answers F_GETLK with the first conflicting lock of another owner, its pid and session', async () => {
    const ks = await setup('n1:a', 'n2:b');
    const a = owner('n1:a');
    assert.equal(await posix(ks, a, 'r', 50, 59, false, '/f', 222), 'granted');
    assert.equal(await posix(ks, a, 'w', 10, 19, false, '/f', 111), 'granted');
    const q = { owner: owner('n2:b'), path: '/f' };
    assert.deepEqual(await getPosixLock(db.redis, ks, { ...q, type: 'w', start: 0, end: Infinity }),
      { type: 'w', start: 10, end: 19, pid: 111, session: 'n1:a' }, 'lowest start first, with the pid of the last lock call');
    assert.deepEqual(await getPosixLock(db.redis, ks, { ...q, type: 'w', start: 55, end: 55 }),
      { type: 'r', start: 50, end: 59, pid: 111, session: 'n1:a' });
    assert.equal(await getPosixLock(db.redis, ks, { ...q, type: 'r', start: 50, end: 100 }), undefined, 'r does not conflict with r');
    assert.equal(await getPosixLock(db.redis, ks, { ...q, type: 'w', start: 20, end: 49 }), undefined, 'the gap');
    assert.equal(await getPosixLock(db.redis, ks, { owner: a, path: '/f', type: 'w', start: 0, end: Infinity }), undefined, 'own locks never conflict');
    assert.equal(await getPosixLock(db.redis, ks, { ...q, path: '/other', type: 'w', start: 0, end: Infinity }), undefined);
  });

  it('serves blocking POSIX requests in arrival order, while a non-blocking one only minds held locks', async () => {
    const ks = await setup('n1:a', 'n2:b', 'n3:c', 'n4:d');
    const [a, b, c, d] = ['n1:a', 'n2:b', 'n3:c', 'n4:d'].map((s) => owner(s));
    assert.equal(await posix(ks, a, 'r', 0, 9), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, 9, true), 'blocked', 'writer waits for the reader');
    // c's read does not conflict with a's, but it came after b's write: it queues behind it.
    assert.equal(await posix(ks, c, 'r', 5, 5, true), 'blocked');
    assert.equal(await posix(ks, c, 'r', 5, 5, true), 'blocked', 'asking again keeps the place');
    assert.equal(await posix(ks, c, 'r', 20, 29, true), 'granted', 'no earlier waiter wants those bytes');
    assert.equal(await posix(ks, d, 'r', 0, 9, false), 'granted', 'non-blocking: only held locks count');
    assert.equal(await db.redis.zcard(ks.posixWaiters('/f')), 2, 'b and c queued once each');
    assert.equal(await posix(ks, a, 'u', 0, Infinity), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, 9, true), 'blocked', 'd still reads');
    assert.equal(await posix(ks, d, 'u', 0, Infinity), 'granted');
    assert.equal(await posix(ks, c, 'r', 5, 5, true), 'blocked', 'b is first in line');
    assert.equal(await posix(ks, b, 'w', 0, 9, true), 'granted');
    assert.equal(await posix(ks, c, 'r', 5, 5, true), 'blocked', 'now b holds the write lock');
    assert.equal(await posix(ks, b, 'u', 0, 9), 'granted');
    assert.equal(await posix(ks, c, 'r', 5, 5, true), 'granted');
    assert.equal(await db.redis.exists(ks.posixWaiters('/f'), ks.posixWaiting), 0, 'every wait removed once granted');
  });

  it('lets a holder convert its own lock ahead of a waiter that waits on that very lock', async () => {
    const ks = await setup('n1:a', 'n2:b');
    const [a, b] = [owner('n1:a'), owner('n2:b')];
    assert.equal(await posix(ks, a, 'r', 0, 9), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, 9, true), 'blocked');
    // Holding a back behind b, which waits for a, would deadlock with nothing to see it.
    assert.equal(await posix(ks, a, 'w', 0, 9, true), 'granted');
    assert.equal(await posix(ks, a, 'r', 0, 9, true), 'granted');
  });

  it('answers deadlock for A→B→A across two paths and queues nothing, and sees longer cycles', async () => {
    const ks = await setup('n1:a', 'n2:b', 'n3:c');
    const [a, b, c] = [owner('n1:a'), owner('n2:b'), owner('n3:c')];
    assert.equal(await posix(ks, a, 'w', 0, 0, false, '/x'), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, 0, false, '/y'), 'granted');
    assert.equal(await posix(ks, a, 'w', 0, 0, true, '/y'), 'blocked');
    assert.equal(await posix(ks, b, 'w', 0, 0, true, '/x'), 'deadlock');
    assert.equal(await db.redis.zcard(ks.posixWaiters('/x')), 0, 'the failed request is not queued');
    assert.equal(await posix(ks, b, 'w', 0, 0, false, '/x'), 'wouldblock', 'non-blocking: no deadlock check');
    assert.equal(await posix(ks, c, 'w', 0, 0, true, '/x'), 'blocked', 'waiting on a, which waits on b: no cycle');

    // A three-owner cycle: c holds /z, b waits on c, then c asks for what a holds (a waits on b).
    assert.equal(await cancelLockWait(db.redis, ks, c, '/x', 'posix'), true);
    assert.equal(await posix(ks, c, 'w', 0, 0, false, '/z'), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, 0, true, '/z'), 'blocked');
    assert.equal(await posix(ks, c, 'w', 0, 0, true, '/x'), 'deadlock');
    // Once b stops waiting the chain is broken.
    await cancelLockWait(db.redis, ks, b, '/z', 'posix');
    assert.equal(await posix(ks, c, 'w', 0, 0, true, '/x'), 'blocked');
  });

  const flockCases: { name: string; first: FlockOp; second: FlockOp; want: LockStatus }[] = [
    { name: 'sh and sh share', first: 'sh', second: 'sh', want: 'granted' },
    { name: 'sh blocks ex', first: 'sh', second: 'ex', want: 'wouldblock' },
    { name: 'ex blocks sh', first: 'ex', second: 'sh', want: 'wouldblock' },
    { name: 'ex blocks ex', first: 'ex', second: 'ex', want: 'wouldblock' },
  ];
  for (const c of flockCases) {
    it(`flock: ${c.name}`, async () => {
      const ks = await setup('n1:a', 'n2:b');
      assert.equal(await flock(ks, owner('n1:a'), c.first), 'granted');
      assert.equal(await flock(ks, owner('n2:b'), c.second), c.want);
      assert.equal(await flock(ks, owner('n1:a'), 'un'), 'granted');
      assert.equal(await flock(ks, owner('n2:b'), c.second), 'granted', 'free once unlocked');
    });
  }

  it('flock: converts an owner\'s lock in place, unlocks it, and drops it when a conversion cannot be granted (as Linux)', async () => {
    const ks = await setup('n1:a', 'n2:b');
    const [a, b] = [owner('n1:a'), owner('n2:b')];
    assert.equal(await flock(ks, a, 'sh'), 'granted');
    assert.equal(await flock(ks, a, 'ex'), 'granted', 'alone: sh→ex');
    assert.deepEqual(await flocks(ks), ['n1:a:ex:100']);
    assert.equal(await flock(ks, a, 'sh'), 'granted', 'ex→sh');
    assert.equal(await flock(ks, b, 'sh'), 'granted');
    assert.deepEqual((await flocks(ks)).sort(), ['n1:a:sh:100', 'n2:b:sh:100']);
    assert.equal(await flock(ks, a, 'ex'), 'wouldblock');
    assert.deepEqual(await flocks(ks), ['n2:b:sh:100'], 'the failed conversion gave up the sh lock, so two upgraders cannot deadlock');
    assert.equal(await flock(ks, b, 'ex'), 'granted');
    assert.equal(await flock(ks, b, 'un'), 'granted');
    assert.equal(await flock(ks, b, 'un'), 'granted', 'unlocking nothing is fine');
    assert.deepEqual(await flocks(ks), []);
    assert.equal(await db.redis.exists(ks.lockSession('n2:b')), 0, 'the session no longer lists the path');
  });

  it('flock: blocking requests queue in arrival order', async () => {
    const ks = await setup('n1:a', 'n2:b', 'n3:c', 'n4:d');
    const [a, b, c, d] = ['n1:a', 'n2:b', 'n3:c', 'n4:d'].map((s) => owner(s));
    assert.equal(await flock(ks, a, 'sh'), 'granted');
    assert.equal(await flock(ks, b, 'ex', true), 'blocked');
    assert.equal(await flock(ks, c, 'sh', true), 'blocked', 'behind the earlier ex');
    assert.equal(await flock(ks, d, 'sh', false), 'granted', 'non-blocking: only held locks count');
    assert.equal(await flock(ks, a, 'un'), 'granted');
    assert.equal(await flock(ks, d, 'un'), 'granted');
    assert.equal(await flock(ks, c, 'sh', true), 'blocked', 'b first');
    assert.equal(await flock(ks, b, 'ex', true), 'granted');
    assert.equal(await flock(ks, b, 'un'), 'granted');
    assert.equal(await flock(ks, c, 'sh', true), 'granted');
    assert.equal(await db.redis.exists(ks.flockWaiters('/f')), 0);
  });

  it('cancel drops an owner\'s wait, so those queued behind it go on', async () => {
    const ks = await setup('n1:a', 'n2:b', 'n3:c');
    const [a, b, c] = [owner('n1:a'), owner('n2:b'), owner('n3:c')];
    assert.equal(await posix(ks, a, 'r', 0, 9), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, 9, true), 'blocked');
    assert.equal(await posix(ks, c, 'r', 0, 9, true), 'blocked');
    assert.equal(await cancelLockWait(db.redis, ks, b, '/f', 'posix'), true);
    assert.equal(await cancelLockWait(db.redis, ks, b, '/f', 'posix'), false, 'nothing left to cancel');
    assert.equal(await db.redis.hexists(ks.posixWaiting, b), 0, 'b waits for nothing now');
    assert.equal(await posix(ks, c, 'r', 0, 9, true), 'granted');

    assert.equal(await flock(ks, a, 'ex'), 'granted');
    assert.equal(await flock(ks, b, 'ex', true), 'blocked');
    assert.equal(await flock(ks, c, 'sh', true), 'blocked');
    assert.equal(await cancelLockWait(db.redis, ks, b, '/f', 'flock'), true);
    assert.equal(await flock(ks, a, 'un'), 'granted');
    assert.equal(await flock(ks, c, 'sh', true), 'granted');
  });

  it('releaseOwner drops all of an owner\'s locks and waits of one kind on one path', async () => {
    const ks = await setup('n1:a', 'n2:b');
    const [a, b] = [owner('n1:a'), owner('n2:b')];
    for (const [t, s, e] of [['r', 0, 9], ['w', 20, 29], ['r', 40, Infinity]] as const) assert.equal(await posix(ks, a, t, s, e), 'granted');
    assert.equal(await posix(ks, a, 'w', 0, 9, false, '/g'), 'granted');
    // Another owner of b's session holds /h: had b itself, b's wait below would close a cycle.
    assert.equal(await posix(ks, owner('n2:b', 2), 'w', 0, 0, false, '/h'), 'granted');
    assert.equal(await posix(ks, a, 'w', 0, 0, true, '/h'), 'blocked');
    assert.equal(await flock(ks, a, 'sh'), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, Infinity, true), 'blocked');

    assert.equal(await releaseLockOwner(db.redis, ks, a, '/f', 'posix'), true);
    assert.deepEqual(await ranges(ks, a), []);
    assert.equal(await posix(ks, b, 'w', 0, Infinity, true), 'granted');
    assert.deepEqual(await ranges(ks, a, '/g'), ['w0-9'], 'other paths keep theirs');
    assert.deepEqual(await flocks(ks), ['n1:a:sh:100'], 'and the flock lock is another kind');
    assert.equal(await releaseLockOwner(db.redis, ks, a, '/h', 'posix'), true, 'a wait alone');
    assert.equal(await db.redis.exists(ks.posixWaiters('/h'), ks.posixWaiting), 0);
    assert.equal(await releaseLockOwner(db.redis, ks, a, '/f', 'flock'), true);
    assert.equal(await releaseLockOwner(db.redis, ks, a, '/f', 'flock'), false);
    assert.deepEqual(await db.redis.smembers(ks.lockSession('n1:a')), ['p:/g']);
  });

  it('drops a dead session\'s locks and waits once its lease passes, so a waiter gets them on its retry', async () => {
    const ks = await setup('n2:b');
    await openLockSession(db.redis, ks, 'n1:a', 200);
    const [a, b] = [owner('n1:a'), owner('n2:b')];
    assert.equal(await posix(ks, a, 'w', 0, Infinity), 'granted');
    assert.equal(await posix(ks, a, 'w', 0, 0, false, '/other'), 'granted');
    assert.equal(await flock(ks, a, 'ex'), 'granted');
    // A second owner of b's session holds what a waits for (b itself would make a cycle).
    assert.equal(await posix(ks, owner('n2:b', 2), 'w', 0, 0, false, '/mine'), 'granted');
    assert.equal(await posix(ks, a, 'w', 0, 0, true, '/mine'), 'blocked');
    assert.equal(await posix(ks, b, 'r', 0, 9, true), 'blocked');
    assert.equal(await flock(ks, b, 'sh', true), 'blocked');
    await sleep(300);
    assert.deepEqual(await ranges(ks, a), ['w0-inf'], 'stored until a script meets it');
    assert.equal(await posix(ks, b, 'r', 0, 9, true), 'granted');
    // Meeting one of its locks dropped all of them, on every path, and its waits.
    assert.equal(await db.redis.exists(ks.posixLocks('/other'), ks.flockLocks('/f'), ks.posixWaiters('/mine'), ks.posixWaiting, ks.lockSession('n1:a')), 0);
    assert.equal(await db.redis.zscore(ks.lockSessions, 'n1:a'), null);
    assert.equal(await flock(ks, b, 'sh', true), 'granted');
    assert.equal(await renewLockSession(db.redis, ks, 'n1:a', LEASE), false, 'too late');
  });

  it('renews a live session, refuses a dead one, and answers lost to a dead caller', async () => {
    const ks = await setup('n2:b');
    const [a, b] = [owner('n1:a'), owner('n2:b')];
    // With the clock given, the boundary is exact: alive while deadline > now.
    const t0 = 1_000_000;
    assert.equal(await openLockSession(db.redis, ks, 'n1:a', 200, t0), t0 + 200);
    assert.equal(await posix(ks, a, 'w', 0, 9), 'lost', 'Redis\' clock is long past this test clock');
    assert.equal(await renewLockSession(db.redis, ks, 'n1:a', 200), false);
    const deadline = await openLockSession(db.redis, ks, 'n1:a', 300);
    assert.equal(Number(await db.redis.zscore(ks.lockSessions, 'n1:a')), deadline);
    assert.ok(deadline > t0 + 1e9, 'opened again on Redis\' clock');

    assert.equal(await posix(ks, a, 'w', 0, 9), 'granted');
    assert.equal(await flock(ks, a, 'sh'), 'granted');
    await sleep(150);
    assert.equal(await renewLockSession(db.redis, ks, 'n1:a', 300), true, 'alive: renewed');
    await sleep(200);
    assert.equal(await posix(ks, a, 'w', 20, 29), 'granted', 'still alive past the first deadline');
    await sleep(400);
    assert.equal(await renewLockSession(db.redis, ks, 'n1:a', 300), false, 'the lease passed');
    assert.equal(await db.redis.exists(ks.posixLocks('/f'), ks.flockLocks('/f')), 0, 'its locks are gone');
    assert.equal(await posix(ks, a, 'w', 0, 9), 'lost');
    assert.equal(await posix(ks, a, 'u', 0, 9), 'lost');
    assert.equal(await flock(ks, a, 'ex'), 'lost');
    assert.equal(await posix(ks, owner('never:opened'), 'r', 0, 9), 'lost');
    assert.equal(await posix(ks, b, 'w', 0, 9), 'granted', 'others are unaffected');
  });

  it('closes a session with everything it holds, and open sweeps sessions that died holding nothing anyone met', async () => {
    const ks = await setup('n1:a', 'n2:b');
    const [a, b] = [owner('n1:a'), owner('n2:b')];
    assert.equal(await posix(ks, a, 'w', 0, 9), 'granted');
    assert.equal(await flock(ks, a, 'ex', false, '/g'), 'granted');
    assert.equal(await posix(ks, b, 'w', 0, 9, true), 'blocked');
    await closeLockSession(db.redis, ks, 'n1:a');
    assert.equal(await db.redis.exists(ks.flockLocks('/g'), ks.lockSession('n1:a')), 0);
    assert.equal(await posix(ks, a, 'w', 0, 9), 'lost');
    assert.equal(await posix(ks, b, 'w', 0, 9, true), 'granted');

    await openLockSession(db.redis, ks, 'gone:1', 100, 5);
    await openLockSession(db.redis, ks, 'n3:c', LEASE);
    assert.equal(await db.redis.zscore(ks.lockSessions, 'gone:1'), null);
  });

  it('refuses more than MAX_LOCK_RANGES ranges for one owner on a path with nolck', async () => {
    const ks = await setup('n1:a');
    const a = owner('n1:a');
    // Seed MAX_LOCK_RANGES single bytes 0, 2, 4, … directly: 1024 calls would only be slow.
    const full = Array.from({ length: MAX_LOCK_RANGES }, (_, i) => `r,${2 * i},${2 * i}`).join(';');
    await db.redis.hset(ks.posixLocks('/f'), a, `100|${full}`);
    await db.redis.sadd(ks.lockSession('n1:a'), 'p:/f');
    assert.equal(await posix(ks, a, 'r', 10_000, 10_000), 'nolck');
    assert.equal(await posix(ks, a, 'u', 4, 4), 'granted', 'an unlock that does not split');
    assert.equal(await posix(ks, a, 'r', 10_000, 10_000), 'granted', 'room for one again');
    assert.equal(await posix(ks, a, 'u', 10_000, 10_000), 'granted');
    assert.equal(await posix(ks, a, 'w', 1, 1), 'granted', 'replaces nothing, yet under the cap');
    assert.equal(await posix(ks, a, 'r', 1, 1), 'granted', 'merging 0..2 gives back two');
    assert.equal((await ranges(ks, a)).length, MAX_LOCK_RANGES - 2);
  });

  it('publishes the path on lk:wake when a lock or wait goes away, not when one is granted', async () => {
    const ks = await setup('n1:a', 'n2:b');
    const [a, b] = [owner('n1:a'), owner('n2:b')];
    const got: string[] = [];
    const unsubscribe = await subscribeLockWakes(db.redis, ks, (path) => got.push(path));
    try {
      assert.equal(await posix(ks, a, 'w', 0, 9, false, '/quiet'), 'granted');
      assert.equal(await flock(ks, a, 'ex', false, '/quiet'), 'granted');
      assert.equal(await posix(ks, a, 'w', 0, 9), 'granted');
      assert.equal(await posix(ks, b, 'w', 0, 9, true), 'blocked');
      assert.equal(await posix(ks, a, 'u', 0, 9), 'granted');
      // Messages arrive in order: had a grant published '/quiet', it would come first.
      await until('the unlock\'s wake', async () => got.length > 0);
      assert.deepEqual(got, ['/f']);
      assert.equal(await posix(ks, b, 'w', 0, 9, true), 'granted');
      assert.equal(await posix(ks, b, 'r', 0, 9), 'granted', 'w→r');
      await until('the w→r wake', async () => got.length > 1);
      assert.equal(await flock(ks, a, 'un', false, '/quiet'), 'granted');
      await until('the flock unlock\'s wake', async () => got.length > 2);
      assert.deepEqual(got, ['/f', '/f', '/quiet']);
    } finally {
      await unsubscribe();
    }
  });

  it('a commit under a lock session is fenced by its lease: refused with ENOLCK once it has passed', async () => {
    const ks = await setup();
    await openLockSession(db.redis, ks, 'n1:a', 200);
    const dir = (mtimeNs: string) => ({ path: '/locked', type: 'dir' as const, node: 'n1', mtimeNs, size: 0, mode: 0o40755, uid: 0, gid: 0, source: 'mount' as const });
    await commitVersion(db.redis, ks, dir('1000'), { lockSession: 'n1:a' });
    await sleep(300);
    await assert.rejects(commitVersion(db.redis, ks, dir('2000'), { lockSession: 'n1:a' }), (err: FsError) => err.code === 'ENOLCK' && err.path === '/locked');
    await assert.rejects(commitVersion(db.redis, ks, dir('3000'), { lockSession: 'n1:never' }), (err: FsError) => err.code === 'ENOLCK', 'an unknown session fences too');
    assert.equal((await getCurrent(db.redis, ks, '/locked'))?.mtimeNs, '1000', 'the refused commits changed nothing');
    await commitVersion(db.redis, ks, dir('4000'));
    assert.equal((await getCurrent(db.redis, ks, '/locked'))?.mtimeNs, '4000', 'a commit without a session is not fenced');
  });
});
