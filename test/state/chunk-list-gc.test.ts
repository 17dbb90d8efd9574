import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { fsKeyspace, keyspace, type FsKeyspace } from '../../src/state/keys.js';
import { commitVersion, FsError, getCurrent, linkPath, listVersions, putChunkList, removePath, renamePath, restoreVersion, type NewVersion } from '../../src/state/fs.js';
import { collectChunkLists, type ChunkListGcResult } from '../../src/state/chunk-list-gc.js';
import { startChunkListGc } from '../../src/controlplane/chunk-list-gc.js';
import { addChunkListLocation, ChunkFetcher, ChunkStore, chunkListLocations } from '../../src/packetfs/index.js';
import { startTranslator } from '../../src/translate/index.js';
import { ClusterBackend } from '../../src/overlay/cluster-backend.js';
import { OverlayFs } from '../../src/overlay/ops.js';
import { until } from '../helpers/until.js';

const quiet = pino({ level: 'silent' });
const T = 1_700_000_000_000_000_000n;

function file(path: string, node: string, mtimeNs: bigint, chunkListHash: string): NewVersion {
  return { path, type: 'file', node, mtimeNs: String(mtimeNs), size: 40, mode: 0o100644, uid: 0, gid: 0, chunkListHash, source: 'export' };
}

/** A stored chunk list (random bytes under their hash) held by n1. */
async function storedChunkList(redis: Redis, ks: FsKeyspace): Promise<string> {
  const data = randomBytes(40);
  const hash = createHash('sha256').update(data).digest('hex');
  await putChunkList(redis, ks, hash, data);
  await addChunkListLocation(redis, ks, hash, 'n1');
  return hash;
}

/** [fs:m there, pfs:loc there] */
async function stored(redis: Redis, ks: FsKeyspace, hash: string): Promise<[number, number]> {
  return [await redis.exists(ks.fsChunkList(hash)), await redis.exists(ks.chunkListLocations(hash))];
}

/**
 * Commit `count` versions of path from node's export (or mount) stream with fresh chunk lists:
 * that stream's older ones there are pruned past 20.
 */
async function churn(redis: Redis, ks: FsKeyspace, path: string, count: number, from: bigint, node = 'n1', source: NewVersion['source'] = 'export'): Promise<string[]> {
  const ms = [];
  for (let i = 1; i <= count; i++) {
    const m = await storedChunkList(redis, ks);
    await commitVersion(redis, ks, { ...file(path, node, from + BigInt(i), m), source });
    ms.push(m);
  }
  return ms;
}

/**
 * A pass on a connection of its own, on which `meanwhile` runs once just before the pass's first
 * SCAN: after its step 1 and before it reads anything. The pass's steps are separate Redis calls,
 * so what `meanwhile` does (on another connection) lands between them, as another client's step
 * racing the pass would.
 */
async function passWith(redis: Redis, ks: FsKeyspace, meanwhile: () => Promise<unknown>): Promise<ChunkListGcResult> {
  const conn = redis.duplicate();
  const scan = conn.scan.bind(conn) as (...a: unknown[]) => Promise<unknown>;
  let ran = false;
  (conn as unknown as { scan: typeof scan }).scan = async (...a) => {
    if (!ran) {
      ran = true;
      await meanwhile();
    }
    return scan(...a);
  };
  try {
    return await collectChunkLists(conn, ks);
  } finally {
    conn.disconnect();
  }
}

/** Whether some kept version (current or not) at one of these paths names chunk list m. */
async function named(redis: Redis, ks: FsKeyspace, paths: string[], m: string): Promise<boolean> {
  for (const p of paths) if ((await listVersions(redis, ks, p, { stored: true })).some((v) => v.chunkListHash === m)) return true;
  return false;
}

describe('chunk list garbage collection', () => {
  const db = useTestRedis();
  const dirs: string[] = [];
  const tmp = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `oswalk-${name}-`));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('deletes the chunk list and holders of chunk lists no kept version names, keeps the rest', async () => {
    const ks = fsKeyspace(testPrefix());
    const pruned = await storedChunkList(db.redis, ks);
    await commitVersion(db.redis, ks, file('/f', 'n1', T, pruned));
    const current = await churn(db.redis, ks, '/f', 20, T);
    assert.ok(!(await listVersions(db.redis, ks, '/f')).some((v) => v.chunkListHash === pruned));
    // named only by versions that are not current: another node's older copy, a deleted file
    const older = await storedChunkList(db.redis, ks);
    await commitVersion(db.redis, ks, file('/g', 'n2', T - 1n, older));
    await commitVersion(db.redis, ks, file('/g', 'n1', T, current[0]));
    const deleted = await storedChunkList(db.redis, ks);
    await commitVersion(db.redis, ks, file('/h', 'n1', T, deleted));
    await commitVersion(db.redis, ks, { ...file('/h', 'n1', T + 1n, deleted), type: 'tombstone', chunkListHash: undefined, size: 0 });
    // put, and its commit never came
    const orphan = await storedChunkList(db.redis, ks);

    assert.deepEqual(await collectChunkLists(db.redis, ks), { referenced: 22, deleted: 2, inodesDeleted: 0, superseded: false });
    assert.deepEqual(await stored(db.redis, ks, pruned), [0, 0]);
    assert.deepEqual(await stored(db.redis, ks, orphan), [0, 0]);
    for (const m of [...current, older, deleted]) assert.deepEqual(await stored(db.redis, ks, m), [1, 1], m);
    assert.deepEqual(await collectChunkLists(db.redis, ks), { referenced: 22, deleted: 0, inodesDeleted: 0, superseded: false });
  });

  it('keeps a hard-linked file\'s inode and its chunk lists while a kept version names it, then deletes them', async () => {
    const ks = fsKeyspace(testPrefix());
    const mount = (path: string, mtimeNs: bigint, m: string): NewVersion => ({ ...file(path, 'n1', mtimeNs, m), source: 'mount' });
    const [m1, m2] = [await storedChunkList(db.redis, ks), await storedChunkList(db.redis, ks)];
    await commitVersion(db.redis, ks, mount('/a', T, m1));
    const { inode } = await linkPath(db.redis, ks, '/a', '/b', 'n1');
    await commitVersion(db.redis, ks, mount('/b', T + 1n, m2), { written: true });
    // the names' current versions are links; the chunk lists only the inode's versions name
    assert.ok(!(await listVersions(db.redis, ks, '/a', { stored: true })).some((v) => v.chunkListHash === m2));
    assert.deepEqual(await collectChunkLists(db.redis, ks), { referenced: 2, deleted: 0, inodesDeleted: 0, superseded: false });
    // both names deleted: the links in their histories keep the file restorable
    await removePath(db.redis, ks, '/a', 'n1', { dir: false });
    await removePath(db.redis, ks, '/b', 'n1', { dir: false });
    assert.equal((await collectChunkLists(db.redis, ks)).inodesDeleted, 0);
    assert.deepEqual([await stored(db.redis, ks, m1), await stored(db.redis, ks, m2)], [[1, 1], [1, 1]]);
    // until the histories forget them: 20 newer versions of n1's mount stream, where the links were
    for (let i = 0; i < 20; i++) for (const p of ['/a', '/b']) await commitVersion(db.redis, ks, { ...mount(p, T * 3n + BigInt(i), m1), type: 'tombstone', chunkListHash: undefined, size: 0 });
    for (const p of ['/a', '/b']) for (const v of await listVersions(db.redis, ks, p, { stored: true })) assert.notEqual(v.type, 'hardlink');
    assert.equal((await collectChunkLists(db.redis, ks)).inodesDeleted, 1);
    assert.deepEqual([await db.redis.exists(ks.fsVersions(`#${inode}`)), await db.redis.exists(ks.fsInodeNames(inode))], [0, 0]);
    // its chunk lists (m1's first version at /a was pruned with the link) go in the next pass
    assert.equal((await collectChunkLists(db.redis, ks)).deleted, 2);
    assert.deepEqual([await stored(db.redis, ks, m1), await stored(db.redis, ks, m2)], [[0, 0], [0, 0]]);
  });

  it('keeps an inode a link named after the pass began, though no version names it by the time it is looked at', async () => {
    const ks = fsKeyspace(testPrefix());
    await commitVersion(db.redis, ks, { ...file('/c', 'n1', T, await storedChunkList(db.redis, ks)), source: 'mount' });
    let inode = '';
    const res = await passWith(db.redis, ks, async () => {
      ({ inode } = await linkPath(db.redis, ks, '/c', '/d', 'n1'));
      assert.equal((await getCurrent(db.redis, ks, '/d'))?.links, 2);
      // both names deleted and their links pruned, before the pass reads them
      for (const p of ['/c', '/d']) await removePath(db.redis, ks, p, 'n1', { dir: false });
      for (let i = 0; i < 20; i++) for (const p of ['/c', '/d']) await commitVersion(db.redis, ks, { ...file(p, 'n1', T * 3n + BigInt(i), ''), source: 'mount', type: 'tombstone', chunkListHash: undefined, size: 0 });
      for (const p of ['/c', '/d']) for (const v of await listVersions(db.redis, ks, p, { stored: true })) assert.notEqual(v.type, 'hardlink');
    });
    assert.equal(res.inodesDeleted, 0);
    assert.equal(await db.redis.exists(ks.fsVersions(`#${inode}`)), 1);
    // the next pass starts afresh
    assert.equal((await collectChunkLists(db.redis, ks)).inodesDeleted, 1);
    assert.equal(await db.redis.exists(ks.fsVersions(`#${inode}`)), 0);
  });

  it('keeps a chunk list a version took after the pass began, though no version names it by the time it is looked at', async () => {
    const ks = fsKeyspace(testPrefix());
    let m = '';
    const res = await passWith(db.redis, ks, async () => {
      m = await storedChunkList(db.redis, ks);
      await commitVersion(db.redis, ks, file('/a', 'n1', T, m));
      await churn(db.redis, ks, '/a', 20, T);
      assert.ok(!(await named(db.redis, ks, ['/a'], m)));
    });
    assert.deepEqual(res, { referenced: 20, deleted: 0, inodesDeleted: 0, superseded: false });
    assert.deepEqual(await stored(db.redis, ks, m), [1, 1]);
    // the next pass starts afresh
    assert.equal((await collectChunkLists(db.redis, ks)).deleted, 1);
    assert.deepEqual(await stored(db.redis, ks, m), [0, 0]);
  });

  it('counts a rename or a restore as taking the chunk lists it copies', async () => {
    // The pass may read the target before the step and the source after its old versions are
    // pruned, so it does not see these chunk lists named; the mark must keep them.
    const ks = fsKeyspace(testPrefix());
    const moved = await storedChunkList(db.redis, ks);
    const restored = await storedChunkList(db.redis, ks);
    await commitVersion(db.redis, ks, file('/from', 'n1', T, moved));
    const old = await commitVersion(db.redis, ks, file('/r', 'n1', T, restored));
    await commitVersion(db.redis, ks, file('/r', 'n2', T + 1n, moved));
    const res = await passWith(db.redis, ks, async () => {
      await renamePath(db.redis, ks, '/from', '/to', 'n1', String(T + 2n));
      await restoreVersion(db.redis, ks, '/r', old.id, 'n1', String(T + 3n));
      assert.equal((await getCurrent(db.redis, ks, '/to'))?.chunkListHash, moved);
      assert.equal((await getCurrent(db.redis, ks, '/r'))?.chunkListHash, restored);
      // every version naming them pruned before the pass reads it
      for (const p of ['/from', '/to', '/r']) for (const source of ['export', 'mount'] as const) await churn(db.redis, ks, p, 20, T * 2n, 'n1', source);
      await churn(db.redis, ks, '/r', 20, T * 2n, 'n2');
      for (const m of [moved, restored]) assert.ok(!(await named(db.redis, ks, ['/from', '/to', '/r'], m)), m);
    });
    assert.equal(res.deleted, 0);
    for (const m of [moved, restored]) assert.deepEqual(await stored(db.redis, ks, m), [1, 1], m);
  });

  it('a commit of a chunk list it deleted fails with ESTALE and changes nothing; putting it again lets it through', async () => {
    const ks = fsKeyspace(testPrefix());
    const data = randomBytes(40);
    const m = createHash('sha256').update(data).digest('hex');
    await putChunkList(db.redis, ks, m, data);
    assert.equal((await collectChunkLists(db.redis, ks)).deleted, 1);
    await assert.rejects(commitVersion(db.redis, ks, file('/x/y', 'n1', T, m)), (err: unknown) => err instanceof FsError && err.code === 'ESTALE');
    assert.deepEqual(await listVersions(db.redis, ks, '/x/y'), []);
    assert.equal(await getCurrent(db.redis, ks, '/x'), undefined);
    await putChunkList(db.redis, ks, m, data);
    assert.equal((await commitVersion(db.redis, ks, file('/x/y', 'n1', T, m))).current, true);
  });

  it('a pass another pass has superseded stops without deleting', async () => {
    const ks = fsKeyspace(testPrefix());
    const m = await storedChunkList(db.redis, ks);
    // the second pass begins during the first and waits there until the first has stopped
    let begun!: () => void;
    const secondBegun = new Promise<void>((r) => (begun = r));
    let firstDone!: () => void;
    const firstStopped = new Promise<void>((r) => (firstDone = r));
    let second: Promise<ChunkListGcResult> | undefined;
    try {
      const first = await passWith(db.redis, ks, async () => {
        second = passWith(db.redis, ks, () => {
          begun();
          return firstStopped;
        });
        await secondBegun;
      });
      assert.deepEqual(first, { referenced: 0, deleted: 0, inodesDeleted: 0, superseded: true });
      assert.deepEqual(await stored(db.redis, ks, m), [1, 1]);
    } finally {
      // the second pass ends (and frees its connection) whatever the first did
      firstDone();
    }
    assert.deepEqual(await second, { referenced: 0, deleted: 1, inodesDeleted: 0, superseded: false });
    assert.deepEqual(await stored(db.redis, ks, m), [0, 0]);
  });

  it('runs on the leader only, counting what it deleted and logging each pass', async () => {
    const ks = fsKeyspace(testPrefix());
    const m = await storedChunkList(db.redis, ks);
    const registry = new Registry();
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }));
    let leader = false;
    const gc = startChunkListGc({ fs: { redis: db.redis, ks }, log, registry, isLeader: () => leader, intervalMs: 20 });
    try {
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(await stored(db.redis, ks, m), [1, 1]);
      assert.equal(lines.length, 0);
      leader = true;
      await until('a pass', async () => lines.length > 0);
      assert.deepEqual(await stored(db.redis, ks, m), [0, 0]);
      assert.match(await registry.metrics(), /^oswalk_fs_chunk_lists_deleted_total 1$/m);
      assert.equal(lines[0].msg, 'chunk list garbage collection pass');
      assert.equal(lines[0].deleted, 1);
      assert.equal(typeof lines[0].ms, 'number');
    } finally {
      await gc.stop();
    }
  });

  it('the translator stores a file again when a pass deletes its chunk list between the put and the commit', async () => {
    const ks = fsKeyspace(testPrefix());
    const exportDir = tmp('export');
    writeFileSync(join(exportDir, 'a.txt'), 'some content');
    // a connection on which a pass runs right after the first SET (putChunkList) answers
    const redis = db.redis.duplicate();
    const set = redis.set.bind(redis) as (...a: unknown[]) => Promise<unknown>;
    let passes = 0;
    (redis as unknown as { set: typeof set }).set = async (...a) => {
      const res = await set(...a);
      if (!passes++) await collectChunkLists(db.redis, ks);
      return res;
    };
    const t = await startTranslator({ fs: { redis, ks }, node: 'n1', exportDir, store: new ChunkStore(tmp('store'), { log: quiet }), log: quiet, watch: false });
    try {
      await t.idle();
      assert.equal(t.stats().errors, 0);
      assert.equal(t.stats().filesTranslated, 2, 'stored twice');
      const m = (await getCurrent(db.redis, ks, '/a.txt'))?.chunkListHash;
      assert.ok(m);
      assert.deepEqual(await stored(db.redis, ks, m), [1, 1]);
      assert.deepEqual(await chunkListLocations(db.redis, ks, m), ['n1']);
    } finally {
      await t.close();
      redis.disconnect();
    }
  });

  it('the mount stores content again when the chunk list it remembers putting was deleted', async () => {
    const ks = fsKeyspace(testPrefix());
    const store = new ChunkStore(tmp('store'), { log: quiet });
    const fetcher = new ChunkFetcher({ store, redis: db.redis, ks: keyspace(ks.prefix), fs: { redis: db.redis, ks }, self: 'n1', token: 't', log: quiet });
    const backend = new ClusterBackend({ fs: { redis: db.redis, ks }, node: 'n1', store, fetcher, log: quiet });
    const fs = new OverlayFs({ backend, stagingDir: tmp('staging'), log: quiet });
    await fs.start();
    const caller = { uid: 0, gid: 0, pid: process.pid };
    const write = async (path: string, content: string) => {
      const fh = await fs.create(path, 0o644, constants.O_WRONLY, caller);
      const buf = Buffer.from(content);
      await fs.write(path, fh, buf, buf.length, 0);
      await fs.release(path, fh);
    };
    try {
      await write('/a', 'same content');
      const m = (await getCurrent(db.redis, ks, '/a'))!.chunkListHash!;
      // /a written 20 times more through this mount: no version names m any more
      for (let i = 0; i < 20; i++) await write('/a', `other content ${i}`);
      assert.equal((await collectChunkLists(db.redis, ks)).deleted, 1);
      assert.deepEqual(await stored(db.redis, ks, m), [0, 0]);
      await write('/b', 'same content');
      assert.equal((await getCurrent(db.redis, ks, '/b'))?.chunkListHash, m);
      assert.deepEqual(await stored(db.redis, ks, m), [1, 1]);
      assert.deepEqual(await chunkListLocations(db.redis, ks, m), ['n1']);
    } finally {
      await backend.close();
      await fetcher.close();
    }
  });
});
