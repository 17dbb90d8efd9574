import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { fsKeyspace, type FsKeyspace } from '../../src/state/keys.js';
import {
  commitVersion, FS_LIMITS, FsError, GET_MANY_MAX, getCurrent, getCurrentMany, getChunkList, LIST_PAGE, linkPath, listDir, listDirPages, listVersions, markAccessed, normalizePath, putChunkList,
  removePath, renamePath, restoreVersion, subscribeFsEvents, type DirEntry, type NewVersion,
} from '../../src/state/fs.js';
import { pickCurrent } from './pick-current.js';

const M1 = 'a'.repeat(64);
const M2 = 'b'.repeat(64);
/** '|' and ' ' bytes, the separators of the stored form */
const M3 = '7c20'.repeat(16);

function file(path: string, node: string, mtimeNs: string | bigint, chunkListHash = M1, size = 10): NewVersion {
  return { path, type: 'file', node, mtimeNs: String(mtimeNs), size, mode: 0o100644, uid: 0, gid: 0, chunkListHash, source: 'export' };
}
function dir(path: string, node: string, mtimeNs: string | bigint): NewVersion {
  return { path, type: 'dir', node, mtimeNs: String(mtimeNs), size: 0, mode: 0o40755, uid: 0, gid: 0, source: 'export' };
}
function tomb(path: string, node: string, mtimeNs: string | bigint): NewVersion {
  return { path, type: 'tombstone', node, mtimeNs: String(mtimeNs), size: 0, mode: 0, uid: 0, gid: 0, source: 'export' };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FsError, `expected FsError, got ${String(err)}`);
    return err.code;
  }
  return 'ok';
}

const T = 1_700_000_000_000_000_000n;

describe('filesystem namespace', () => {
  const db = useTestRedis();
  /** A keyspace of its own whose fs:m holds M1-M3: a file version must name a stored chunk list. */
  const space = async (prefix = testPrefix()): Promise<FsKeyspace> => {
    const ks = fsKeyspace(prefix);
    for (const m of [M1, M2, M3]) await db.redis.set(ks.fsChunkList(m), m);
    return ks;
  };

  it('normalizes paths and rejects .., NUL (EINVAL), long names and long paths (ENAMETOOLONG)', () => {
    assert.equal(normalizePath('/a//b/./c/'), '/a/b/c');
    assert.equal(normalizePath('/'), '/');
    assert.equal(normalizePath('/with\nnewline'), '/with\nnewline');
    for (const bad of ['a/b', '/a/../b', '/a\0b']) {
      assert.throws(() => normalizePath(bad), (e: unknown) => e instanceof FsError && e.code === 'EINVAL', JSON.stringify(bad.slice(0, 20)));
    }
    // NAME_MAX as Linux counts it: 255 bytes a name. A path from the root may pass PATH_MAX (a
    // call counts it from where it starts), up to the namespace's bound: 32768 bytes with a NUL.
    const longest = ('/' + 'y'.repeat(255)).repeat(127) + '/' + 'z'.repeat(254);
    for (const bad of ['/' + 'x'.repeat(256), '/' + 'é'.repeat(128), ('/' + 'y'.repeat(200)).repeat(170), longest + 'z']) {
      assert.throws(() => normalizePath(bad), (e: unknown) => e instanceof FsError && e.code === 'ENAMETOOLONG', JSON.stringify(bad.slice(0, 20)));
    }
    assert.equal(normalizePath('/' + 'x'.repeat(255)).length, 256);
    assert.equal(normalizePath(('/' + 'y'.repeat(200)).repeat(21)).length, 4221, 'past PATH_MAX from the root');
    assert.equal(normalizePath(longest).length, 32767);
  });

  it('shows a directory\'s mtime moved to when a name last came or went in it; a set mtime holds until then', async () => {
    const ks = await space();
    const base = Date.now() - 60_000; // committedAt (ms) of the commits below; a delete stamps its own, now
    const ns = (ms: number) => String(BigInt(ms) * 1_000_000n);
    const mtime = async (p: string) => (await getCurrent(db.redis, ks, p))!.mtimeNs;
    await commitVersion(db.redis, ks, { ...dir('/d', 'n1', T), committedAt: base });
    assert.equal(await mtime('/d'), String(T));
    // A new name in /d (and /d new in /): both move to the commit's time.
    await commitVersion(db.redis, ks, { ...file('/d/f', 'n1', T), committedAt: base + 1000 });
    assert.equal(await mtime('/d'), ns(base + 1000));
    assert.equal(await mtime('/'), ns(base));
    // New content under an existing name is not a change of the directory.
    await commitVersion(db.redis, ks, { ...file('/d/f', 'n1', T + 5n, M2), committedAt: base + 2000 });
    assert.equal(await mtime('/d'), ns(base + 1000));
    // A name whose commit is stamped before the last one (a file is stamped with its last
    // change, and closed later) does not move it back.
    await commitVersion(db.redis, ks, { ...file('/d/g', 'n1', T), committedAt: base + 500 });
    assert.equal(await mtime('/d'), ns(base + 1000));
    // utimens (a new version of the directory) sets it, even back in time...
    await commitVersion(db.redis, ks, { ...dir('/d', 'n1', T + 1n), committedAt: base + 3000 });
    assert.equal(await mtime('/d'), String(T + 1n));
    assert.deepEqual((await getCurrentMany(db.redis, ks, ['/d', '/'])).map((v) => v?.mtimeNs), [String(T + 1n), ns(base)]);
    // ...until a name goes (or comes) again; the versions keep their own mtimes.
    await removePath(db.redis, ks, '/d/f', 'n1', { dir: false, mtimeNs: String(T + 10n) });
    assert.ok(BigInt(await mtime('/d')) > BigInt(ns(base + 3000)), await mtime('/d'));
    assert.deepEqual((await listVersions(db.redis, ks, '/d')).map((v) => v.mtimeNs), [String(T + 1n), String(T)]);
    // A directory that goes away takes its time along.
    await removePath(db.redis, ks, '/d/g', 'n1', { dir: false, mtimeNs: String(T + 10n) });
    await removePath(db.redis, ks, '/d', 'n1', { dir: true, mtimeNs: String(T + 20n) });
    assert.equal(await db.redis.hexists(`${ks.prefix}fs:dt`, '/d'), 0);
  });

  it('a rename keeps a moved directory\'s mtime, and moves that of the target\'s directory even where it replaces a name', async () => {
    const ks = await space();
    const base = Date.now() - 60_000;
    const mtime = async (p: string) => (await getCurrent(db.redis, ks, p))!.mtimeNs;
    for (const d of ['/a', '/a/x', '/b']) await commitVersion(db.redis, ks, { ...dir(d, 'n1', T), source: 'mount', committedAt: base });
    await commitVersion(db.redis, ks, { ...file('/a/x/f', 'n1', T), source: 'mount', committedAt: base + 1000 });
    await commitVersion(db.redis, ks, { ...file('/b/y', 'n1', T), source: 'mount', committedAt: base });
    const before = await mtime('/a/x');
    await renamePath(db.redis, ks, '/a/x', '/b/x', 'n1', String(T));
    assert.equal(await mtime('/b/x'), before, 'the moved directory\'s time');
    // a file over a file in another directory: that directory's time moves
    await commitVersion(db.redis, ks, { ...file('/a/z', 'n1', T), source: 'mount', committedAt: base });
    const b = await mtime('/b');
    await new Promise((r) => setTimeout(r, 5));
    await renamePath(db.redis, ks, '/a/z', '/b/y', 'n1', String(T));
    assert.ok(BigInt(await mtime('/b')) > BigInt(b), `${await mtime('/b')} > ${b}`);
  });

  it('counts a directory\'s subdirectories (its link count less 2) through mkdir, rmdir, a subtree rename, a remote delete, and from a listing made before counting began', async () => {
    const ks = await space();
    const subdirs = async (p: string) => (await getCurrent(db.redis, ks, p))!.subdirs;
    await commitVersion(db.redis, ks, dir('/a', 'n1', T));
    await commitVersion(db.redis, ks, dir('/a/x', 'n1', T));
    await commitVersion(db.redis, ks, file('/a/f', 'n1', T));
    // Made before anyone asked: counted from the listing at the first get.
    assert.equal(await db.redis.hexists(`${ks.prefix}fs:dn`, '/a'), 0);
    assert.equal(await subdirs('/a'), 1);
    assert.equal(await subdirs('/'), 1);
    assert.equal((await getCurrent(db.redis, ks, '/a/f'))!.subdirs, undefined, 'files have none');
    // Kept from then on.
    await commitVersion(db.redis, ks, dir('/a/y', 'n1', T));
    await commitVersion(db.redis, ks, dir('/a/y/z', 'n1', T));
    assert.equal(await subdirs('/a'), 2);
    assert.equal(await subdirs('/a/y'), 1);
    // A subtree moved to another parent takes its count along and leaves its old parent one less.
    await commitVersion(db.redis, ks, dir('/b', 'n1', T));
    assert.equal(await subdirs('/b'), 0);
    await renamePath(db.redis, ks, '/a/y', '/b/y', 'n1', String(T + 1n));
    assert.deepEqual(await Promise.all(['/a', '/b', '/b/y'].map(subdirs)), [1, 1, 1]);
    assert.deepEqual((await getCurrentMany(db.redis, ks, ['/a', '/b/y', '/a/f'])).map((v) => v?.subdirs), [1, 1, undefined]);
    // rmdir, and another node's newer delete of a directory.
    await removePath(db.redis, ks, '/b/y/z', 'n1', { dir: true, mtimeNs: String(T + 2n) });
    assert.equal(await subdirs('/b/y'), 0);
    await commitVersion(db.redis, ks, tomb('/a/x', 'n2', T + 3n));
    assert.equal(await subdirs('/a'), 0);
    assert.equal(await subdirs('/'), 2);
  });

  it('commits versions: newest mtime wins, ties go to the node name first in byte order', async () => {
    const ks = await space();
    assert.deepEqual(await commitVersion(db.redis, ks, file('/f', 'n2', T)), { id: '1', current: true, published: true, mtimeNs: String(T) });
    assert.deepEqual(await commitVersion(db.redis, ks, file('/f', 'n1', T - 1n, M2)), { id: '2', current: false, published: false, mtimeNs: String(T - 1n) });
    assert.equal((await getCurrent(db.redis, ks, '/f'))?.node, 'n2');
    // same mtime to the nanosecond: n1 < n2, on every node
    assert.deepEqual(await commitVersion(db.redis, ks, file('/f', 'n1', T, M2)), { id: '3', current: true, published: true, mtimeNs: String(T) });
    const cur = await getCurrent(db.redis, ks, '/f');
    assert.equal(cur?.node, 'n1');
    assert.equal(cur?.chunkListHash, M2);
    assert.equal(cur?.mtimeNs, String(T));
    // a one-nanosecond difference (lost in a double) still decides
    await commitVersion(db.redis, ks, file('/f', 'n3', T + 1n));
    assert.equal((await getCurrent(db.redis, ks, '/f'))?.node, 'n3');
    // a node's latest version is what counts: n3 went back to an older file
    await commitVersion(db.redis, ks, file('/f', 'n3', T - 5n));
    assert.equal((await getCurrent(db.redis, ks, '/f'))?.node, 'n1');
    const vs = await listVersions(db.redis, ks, '/f');
    assert.equal(vs.length, 5);
    assert.deepEqual(vs.filter((v) => v.current).map((v) => v.id), ['3']);
    assert.equal(vs[0].mtimeNs, String(T + 1n));
  });

  it('round-trips every field, whatever bytes the chunk list hash and target hold', async () => {
    const ks = await space();
    const rec: NewVersion = { ...file('/b y|te s', 'n-1.x', '0', M3, 2 ** 40), mode: 0o104755, uid: 4294967294, gid: 7 };
    await commitVersion(db.redis, ks, { ...rec, committedAt: 123 });
    const cur = await getCurrent(db.redis, ks, '/b y|te s');
    assert.deepEqual(cur, { ...rec, id: '1', committedAt: 123 });
    const link: NewVersion = { path: '/l', type: 'symlink', node: 'n1', mtimeNs: String(T), size: 9, mode: 0o120777, uid: 0, gid: 0, target: ' 12 |x\n ', source: 'mount' };
    await commitVersion(db.redis, ks, link);
    await commitVersion(db.redis, ks, file('/l', 'n2', T - 1n, M3));
    const vs = await listVersions(db.redis, ks, '/l');
    assert.equal(vs[0].target, ' 12 |x\n ');
    assert.equal(vs[1].chunkListHash, M3);
  });

  it('keeps extended attributes with each version: round trip, a change is a new version, restore and rename carry them', async () => {
    const ks = await space();
    // Values with the separators of the stored form, and one attribute per record type.
    const x1 = { 'user.a': Buffer.from('1 |: 2').toString('base64'), 'user.empty': '', 'trusted.t': Buffer.from([0, 255, 124]).toString('base64') };
    const first = await commitVersion(db.redis, ks, { ...file('/x y|z', 'n1', T, M3), source: 'mount', xattrs: x1 });
    assert.deepEqual((await getCurrent(db.redis, ks, '/x y|z'))?.xattrs, x1);
    // Only the attributes differ: a new version, not the no-op of a repeated commit.
    const x2 = { 'user.a': Buffer.from('changed').toString('base64') };
    const second = await commitVersion(db.redis, ks, { ...file('/x y|z', 'n1', T, M3), source: 'mount', xattrs: x2 });
    assert.notEqual(second.id, first.id);
    assert.deepEqual((await getCurrent(db.redis, ks, '/x y|z'))?.xattrs, x2);
    const again = await commitVersion(db.redis, ks, { ...file('/x y|z', 'n1', T, M3), source: 'mount', xattrs: x2 });
    assert.equal(again.id, second.id);
    // Attributes near ext4's 4 KiB, every byte value: their hex passes 1 KiB slices whole.
    const big = { 'user.big': Buffer.from(Array.from({ length: 3900 }, (_, i) => (i * 7) % 256)).toString('base64') };
    const other = await space();
    await commitVersion(db.redis, other, { ...file('/big', 'n1', T, M3), source: 'mount', xattrs: big });
    assert.deepEqual((await getCurrent(db.redis, other, '/big'))?.xattrs, big);
    // Removing the last one leaves none.
    await commitVersion(db.redis, ks, { ...file('/x y|z', 'n1', T, M3), source: 'mount', xattrs: {} });
    assert.equal((await getCurrent(db.redis, ks, '/x y|z'))?.xattrs, undefined);
    const vs = await listVersions(db.redis, ks, '/x y|z');
    assert.deepEqual(vs.map((v) => v.xattrs), [undefined, x2, x1]);
    const r = await restoreVersion(db.redis, ks, '/x y|z', first.id, 'n2');
    assert.deepEqual(r.xattrs, x1);
    await renamePath(db.redis, ks, '/x y|z', '/moved', 'n2', String(T * 3n));
    assert.deepEqual((await getCurrent(db.redis, ks, '/moved'))?.xattrs, x1);
    // Directories and symlinks have them too.
    await commitVersion(db.redis, ks, { ...dir('/d', 'n1', T), xattrs: { 'user.d': 'AA==' } });
    await commitVersion(db.redis, ks, { path: '/l', type: 'symlink', node: 'n1', mtimeNs: String(T), size: 3, mode: 0o120777, uid: 0, gid: 0, target: 'a|b', source: 'mount', xattrs: { 'trusted.l': 'AQ==' } });
    assert.deepEqual((await getCurrent(db.redis, ks, '/d'))?.xattrs, { 'user.d': 'AA==' });
    const l = await getCurrent(db.redis, ks, '/l');
    assert.deepEqual([l?.target, l?.xattrs], ['a|b', { 'trusted.l': 'AQ==' }]);
    assert.equal((await listDir(db.redis, ks, '/d')).length, 0);
    // Past the bounds: EINVAL naming the field, nothing stored.
    await assert.rejects(commitVersion(db.redis, ks, { ...file('/big', 'n1', T), xattrs: { 'user.v': Buffer.alloc(5000).toString('base64') } }), /xattrs.*over 4096/);
    await assert.rejects(commitVersion(db.redis, ks, { ...file('/big', 'n1', T), xattrs: { ['user.' + 'n'.repeat(251)]: '' } }), /xattr name/);
    assert.equal(await getCurrent(db.redis, ks, '/big'), undefined);
  });

  it('lists a big directory in pages (HSCAN), every name once, a hard link as what its file is', async () => {
    const ks = await space();
    const N = 2 * LIST_PAGE + 500;
    for (let i = 0; i < N; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, N - i) }, (_, j) => commitVersion(db.redis, ks, file(`/big/f${String(i + j).padStart(5, '0')}`, 'n1', T))));
    }
    await linkPath(db.redis, ks, '/big/f00000', '/big/hard', 'n1');
    const pages: DirEntry[][] = [];
    for await (const page of listDirPages(db.redis, ks, '/big')) pages.push(page);
    assert.ok(pages.length >= 3, `${pages.length} pages`);
    assert.ok(pages.every((p) => p.length <= 2 * LIST_PAGE), 'no page holds the whole directory');
    const all = await listDir(db.redis, ks, '/big');
    assert.equal(all.length, N + 1);
    assert.equal(new Set(all.map((e) => e.name)).size, N + 1);
    assert.deepEqual(all.slice(0, 2).map((e) => [e.name, e.type]), [['f00000', 'file'], ['f00001', 'file']]);
    assert.equal(all.find((e) => e.name === 'hard')?.type, 'file');
    await assert.rejects(listDir(db.redis, ks, '/big/f00001'), /ENOTDIR/);
    await assert.rejects(listDir(db.redis, ks, '/none'), /ENOENT/);
  });

  it('treats a repeated commit of the same content from the same node as a no-op', async () => {
    const ks = await space();
    const a = await commitVersion(db.redis, ks, file('/g', 'n1', T));
    const b = await commitVersion(db.redis, ks, { ...file('/g', 'n1', T), source: 'mount' });
    assert.deepEqual(a, { id: '1', current: true, published: true, mtimeNs: String(T) });
    // Nothing changed, so no event: a mount waiting for its own commit's event must not wait.
    assert.deepEqual(b, { id: '1', current: true, published: false, mtimeNs: String(T) });
    assert.equal((await listVersions(db.redis, ks, '/g')).length, 1);
  });

  it('stores a change of attributes alone, made through a mount, as a version of the copy it changes', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/p', 'n1', T));
    // n2 sorts after n1: as its own version, a chmod (same content, same mtime) would lose the tie.
    const chmod = await commitVersion(db.redis, ks, { ...file('/p', 'n2', T), mode: 0o100600, source: 'mount' });
    assert.equal(chmod.current, true);
    const cur = await getCurrent(db.redis, ks, '/p');
    assert.deepEqual([cur?.node, cur?.source, cur?.mode], ['n1', 'mount', 0o100600]);
    // Extended attributes set through n2's mount are a change of attributes alone too.
    const setxattr = await commitVersion(db.redis, ks, { ...file('/p', 'n2', T), mode: 0o100600, source: 'mount', xattrs: { 'user.a': 'MQ==' } });
    assert.equal(setxattr.current, true);
    const withXattr = await getCurrent(db.redis, ks, '/p');
    assert.deepEqual([withXattr?.node, withXattr?.xattrs], ['n1', { 'user.a': 'MQ==' }]);
    // Not for new content, nor for what an export directory says: those are n2's own.
    assert.equal((await commitVersion(db.redis, ks, { ...file('/p', 'n2', T, M2), source: 'mount' })).current, false);
    assert.equal((await commitVersion(db.redis, ks, { ...file('/p', 'n2', T), mode: 0o100644 })).current, false);
    assert.deepEqual((await listVersions(db.redis, ks, '/p')).map((v) => v.node).sort(), ['n1', 'n1', 'n1', 'n2', 'n2']);
  });

  it('keeps the last 20 versions per node', async () => {
    const ks = await space();
    for (let i = 0; i < 25; i++) await commitVersion(db.redis, ks, file('/h', 'n1', T + BigInt(i)));
    await commitVersion(db.redis, ks, file('/h', 'n2', T - 1n));
    const vs = await listVersions(db.redis, ks, '/h');
    assert.equal(vs.filter((v) => v.node === 'n1').length, 20);
    assert.equal(vs.filter((v) => v.node === 'n2').length, 1);
    assert.equal(vs.find((v) => v.current)?.id, '25');
  });

  it('creates implicit parent directories and lists children with their types', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/a/b/c', 'n1', T));
    await commitVersion(db.redis, ks, { path: '/a/l', type: 'symlink', node: 'n1', mtimeNs: String(T), size: 1, mode: 0o120777, uid: 0, gid: 0, target: 'b|c\nx', source: 'export' });
    assert.deepEqual((await listDir(db.redis, ks, '/')).map((e) => [e.name, e.type]), [['a', 'dir']]);
    assert.deepEqual((await listDir(db.redis, ks, '/a')).map((e) => [e.name, e.type]), [['b', 'dir'], ['l', 'symlink']]);
    assert.deepEqual((await listDir(db.redis, ks, '/a/b')).map((e) => [e.name, e.type]), [['c', 'file']]);
    assert.equal((await getCurrent(db.redis, ks, '/a/l'))?.target, 'b|c\nx');
    // The implicit directory's version takes the child's mtime; it shows when c came into it.
    assert.deepEqual((await listVersions(db.redis, ks, '/a/b')).map((v) => v.mtimeNs), [String(T)]);
    assert.ok(BigInt((await getCurrent(db.redis, ks, '/a/b'))!.mtimeNs) > T);
    assert.equal(await code(listDir(db.redis, ks, '/a/b/c')), 'ENOTDIR');
    assert.equal(await code(listDir(db.redis, ks, '/zz')), 'ENOENT');
    assert.equal(await getCurrent(db.redis, ks, '/zz'), undefined);
    assert.equal((await getCurrent(db.redis, ks, '/'))?.type, 'dir');
    assert.equal(await code(commitVersion(db.redis, ks, dir('/a', 'n1', T), { exclusive: true })), 'EEXIST');
  });

  it('getCurrentMany answers many paths in one step, in order', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/m/a', 'n1', T, M1, 1));
    await commitVersion(db.redis, ks, file('/m/b', 'n1', T, M2, 2));
    await commitVersion(db.redis, ks, tomb('/m/b', 'n1', T + 1n));
    const got = await getCurrentMany(db.redis, ks, ['/m/a', '/m/b', '/m', '/nope', '/', '/m/a']);
    assert.deepEqual(got.map((r) => r && [r.path, r.type, r.size]), [
      ['/m/a', 'file', 1], undefined, ['/m', 'dir', 0], undefined, ['/', 'dir', 0], ['/m/a', 'file', 1],
    ]);
    assert.deepEqual(got[0], await getCurrent(db.redis, ks, '/m/a'));
    assert.deepEqual(await getCurrentMany(db.redis, ks, []), []);
    assert.equal(await code(getCurrentMany(db.redis, ks, Array.from({ length: GET_MANY_MAX + 1 }, (_, i) => `/x${i}`))), 'EINVAL');
  });

  it('special files: a device keeps its number, a fifo and a socket their type bits, listed with their type', async () => {
    const ks = await space();
    const special = (path: string, mode: number, rdev?: number): NewVersion => ({
      path, type: 'special', node: 'n1', mtimeNs: String(T), size: 0, mode, uid: 0, gid: 0, source: 'mount', ...(rdev === undefined ? {} : { rdev }),
    });
    const chr = special('/d/null', 0o020666, (1 << 8) | 3);
    await commitVersion(db.redis, ks, chr);
    await commitVersion(db.redis, ks, special('/d/fifo', 0o010644));
    await commitVersion(db.redis, ks, special('/d/sock', 0o140755));
    const cur = await getCurrent(db.redis, ks, '/d/null');
    assert.equal(cur?.rdev, 259);
    assert.equal(cur?.size, 0);
    assert.equal((await getCurrent(db.redis, ks, '/d/fifo'))?.rdev, 0);
    assert.deepEqual((await listDir(db.redis, ks, '/d')).map((e) => [e.name, e.type]), [['fifo', 'special'], ['null', 'special'], ['sock', 'special']]);
    await assert.rejects(commitVersion(db.redis, ks, special('/d/x', 0o100644)), /mode of a special file/);
    await assert.rejects(commitVersion(db.redis, ks, { ...special('/d/x', 0o010644), size: 3 }), /size of a special file is 0/);
    await assert.rejects(commitVersion(db.redis, ks, { ...file('/d/y', 'n1', T), rdev: 5 }), /rdev is only for special files/);
  });

  it('keeps an atime set apart from the mtime: round trip, a new version when only it changes, carried by restore and rename', async () => {
    const ks = await space();
    const v = { ...file('/t', 'n1', T, M3), atimeNs: String(T - 5n) };
    const first = await commitVersion(db.redis, ks, v);
    assert.equal((await getCurrent(db.redis, ks, '/t'))?.atimeNs, String(T - 5n));
    const again = await commitVersion(db.redis, ks, { ...v, atimeNs: String(T - 7n) });
    assert.notEqual(again.id, first.id, 'an atime of its own is a change');
    assert.equal((await getCurrent(db.redis, ks, '/t'))?.atimeNs, String(T - 7n));
    await renamePath(db.redis, ks, '/t', '/u', 'n1', String(T + 1n));
    assert.equal((await getCurrent(db.redis, ks, '/u'))?.atimeNs, String(T - 7n));
    await commitVersion(db.redis, ks, file('/w', 'n1', T, M3));
    assert.equal((await getCurrent(db.redis, ks, '/w'))?.atimeNs, undefined, 'none set: the mtime stands for it');
    await assert.rejects(commitVersion(db.redis, ks, { ...file('/x', 'n1', T), atimeNs: '01' }), /atimeNs/);
  });

  it('moves the atime on a read as relatime does, apart from the versions; a rename carries it, a new version takes it along', async () => {
    const ks = await space();
    const now = BigInt(Date.now()) * 1_000_000n;
    const at = async (p: string) => (await getCurrent(db.redis, ks, p))?.atimeNs;
    await commitVersion(db.redis, ks, { ...file('/r', 'n1', now - 10_000_000_000n), committedAt: Date.now() - 10_000 });
    // the atime is the mtime: due; other nodes hear that only the atime moved
    const heard: string[] = [];
    const stop = await subscribeFsEvents(db.redis, ks, (p, atimeNs) => heard.push(`${p} ${atimeNs}`));
    try {
      assert.equal((await markAccessed(db.redis, ks, '/r', String(now))).moved, true);
      for (let i = 0; i < 100 && !heard.length; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(heard, [`/r ${now}`]);
    } finally {
      await stop();
    }
    assert.equal(await at('/r'), String(now));
    assert.equal((await listVersions(db.redis, ks, '/r')).length, 1, 'a read is no new version');
    // after the mtime and the ctime, and less than a day old: not due, and the atime is said
    assert.deepEqual(await markAccessed(db.redis, ks, '/r', String(now + 1000n)), { moved: false, atimeNs: String(now) });
    assert.equal(await at('/r'), String(now));
    // a day later: due again
    assert.equal((await markAccessed(db.redis, ks, '/r', String(now + 86_400_000_000_000n))).moved, true);
    // never backwards, and an atime set apart after the mtime holds (utimensat T2, T1)
    await commitVersion(db.redis, ks, { ...file('/u', 'n1', now - 2n), atimeNs: String(now + 5n), committedAt: Date.now() - 10_000 });
    assert.equal((await markAccessed(db.redis, ks, '/u', String(now))).moved, false);
    // a rename carries it; a new version (a chmod that keeps the atime shown) takes it along
    await renamePath(db.redis, ks, '/r', '/r2', 'n1');
    assert.equal(await at('/r2'), String(now + 86_400_000_000_000n));
    const shown = (await getCurrent(db.redis, ks, '/r2'))!;
    await commitVersion(db.redis, ks, { ...file('/r2', 'n1', BigInt(shown.mtimeNs)), atimeNs: shown.atimeNs, mode: 0o100600, source: 'mount' });
    assert.equal(await at('/r2'), String(now + 86_400_000_000_000n));
    assert.equal(await db.redis.hexists(`${ks.prefix}fs:at`, '/r2'), 0, 'kept in the version now');
    // a directory: a new name moves its mtime past its atime, so a listing is due
    await commitVersion(db.redis, ks, { ...dir('/d', 'n1', now - 10n), atimeNs: String(now), committedAt: Date.now() - 10_000 });
    assert.equal((await markAccessed(db.redis, ks, '/d', String(now + 1n))).moved, false);
    await commitVersion(db.redis, ks, file('/d/f', 'n1', now));
    assert.equal((await markAccessed(db.redis, ks, '/d', String(now + 2n))).moved, true);
    assert.equal(await code(markAccessed(db.redis, ks, '/nope')), 'ENOENT');
  });

  it('rejects bad version records with EINVAL naming the field', async () => {
    const ks = await space();
    await assert.rejects(commitVersion(db.redis, ks, file('/x', 'n1', '1.5')), /mtimeNs/);
    await assert.rejects(commitVersion(db.redis, ks, file('/x', 'n1', T, 'nothex')), /chunkListHash/);
    await assert.rejects(commitVersion(db.redis, ks, file('/x', 'bad|node', T)), /node/);
    await assert.rejects(commitVersion(db.redis, ks, { ...file('/x', 'n1', T), size: -1 }), /size/);
    assert.equal(await code(commitVersion(db.redis, ks, dir('/', 'n1', T))), 'EINVAL');
    // A node name is written into the records as it is: restore, rename and remove check it too.
    const old = await commitVersion(db.redis, ks, file('/x', 'n1', T));
    const before = await listVersions(db.redis, ks, '/x');
    await assert.rejects(restoreVersion(db.redis, ks, '/x', old.id, 'zz|d|1|2|3'), /node/);
    await assert.rejects(renamePath(db.redis, ks, '/x', '/y', 'a|b'), /node/);
    await assert.rejects(removePath(db.redis, ks, '/x', 'a|b', { dir: false }), /node/);
    assert.deepEqual(await listVersions(db.redis, ks, '/x'), before);
    assert.equal(await getCurrent(db.redis, ks, '/y'), undefined);
  });

  it('tombstones: a delete hides older copies on other nodes, a newer write comes back', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/d/f', 'n1', T));
    await commitVersion(db.redis, ks, file('/d/f', 'n2', T - 100n));
    await commitVersion(db.redis, ks, tomb('/d/f', 'n1', T + 10n));
    assert.equal(await getCurrent(db.redis, ks, '/d/f'), undefined);
    assert.deepEqual(await listDir(db.redis, ks, '/d'), []);
    // n2's stale copy is committed again (agent restart, touched on n2 before the delete): stays hidden
    await commitVersion(db.redis, ks, file('/d/f', 'n2', T + 5n, M2));
    assert.equal(await getCurrent(db.redis, ks, '/d/f'), undefined);
    assert.equal((await listVersions(db.redis, ks, '/d/f')).find((v) => v.current)?.type, 'tombstone');
    // a write after the delete wins
    await commitVersion(db.redis, ks, file('/d/f', 'n2', T + 20n, M2));
    assert.equal((await getCurrent(db.redis, ks, '/d/f'))?.chunkListHash, M2);
    assert.deepEqual((await listDir(db.redis, ks, '/d')).map((e) => e.name), ['f']);
  });

  it("a delete through the mount stays when the same node's export directory still has the older copy", async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/e', 'n1', T));
    await removePath(db.redis, ks, '/e', 'n1', { dir: false, mtimeNs: String(T + 10n) });
    // n1's translator lost its state, or the file's mode changed: the old copy is committed again
    await commitVersion(db.redis, ks, { ...file('/e', 'n1', T), mode: 0o100600 });
    assert.equal(await getCurrent(db.redis, ks, '/e'), undefined);
    // written again in n1's export directory after the delete: back
    await commitVersion(db.redis, ks, file('/e', 'n1', T + 20n));
    assert.equal((await getCurrent(db.redis, ks, '/e'))?.mtimeNs, String(T + 20n));
    // the same content arriving through the other stream of the same node adds no version
    const before = (await listVersions(db.redis, ks, '/e')).length;
    await commitVersion(db.redis, ks, { ...file('/e', 'n1', T + 20n), source: 'mount' });
    assert.equal((await listVersions(db.redis, ks, '/e')).length, before);
  });

  it('a deleted directory stays deleted for stale children and comes back for newer ones', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, dir('/p', 'n1', T));
    await removePath(db.redis, ks, '/p', 'n1', { dir: true, mtimeNs: String(T + 10n) });
    assert.equal((await commitVersion(db.redis, ks, file('/p/old', 'n2', T + 5n))).current, false);
    assert.equal((await commitVersion(db.redis, ks, file('/p/q/older', 'n2', T + 4n))).current, false);
    assert.deepEqual(await listDir(db.redis, ks, '/'), []);
    assert.equal((await commitVersion(db.redis, ks, file('/p/new', 'n2', T + 20n))).current, true);
    assert.deepEqual((await listDir(db.redis, ks, '/')).map((e) => e.name), ['p']);
    // the stale ones stay hidden although their directory is back
    assert.deepEqual((await listDir(db.redis, ks, '/p')).map((e) => e.name), ['new']);
    // a node that deleted the directory itself and then commits a stale child does not undo its delete
    await commitVersion(db.redis, ks, tomb('/p/new', 'n2', T + 30n));
    await commitVersion(db.redis, ks, tomb('/p', 'n2', T + 30n));
    await commitVersion(db.redis, ks, file('/p/late', 'n2', T + 25n));
    assert.deepEqual(await listDir(db.redis, ks, '/'), []);
  });

  it('a directory deleted on one node hides older entries of other nodes below it, not newer ones', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/w/a/old1', 'n1', T));
    await commitVersion(db.redis, ks, file('/w/old2', 'n1', T));
    await commitVersion(db.redis, ks, file('/w/b/new', 'n1', T + 50n));
    await commitVersion(db.redis, ks, dir('/w', 'n2', T - 1n));
    // n2 removes its /w at T+10 (its translator saw rm -rf): what n1 had there before goes too
    const r = await commitVersion(db.redis, ks, tomb('/w', 'n2', T + 10n));
    assert.equal(r.current, false); // /w/b/new is newer, so /w stays
    assert.deepEqual((await listDir(db.redis, ks, '/w')).map((e) => e.name), ['b']);
    assert.deepEqual((await listDir(db.redis, ks, '/w/b')).map((e) => e.name), ['new']);
    assert.equal(await getCurrent(db.redis, ks, '/w/a/old1'), undefined);
    // and a directory replaced by a newer file hides what was below it
    await commitVersion(db.redis, ks, file('/w/b', 'n2', T + 100n));
    assert.equal((await getCurrent(db.redis, ks, '/w/b'))?.type, 'file');
    await commitVersion(db.redis, ks, dir('/w/b', 'n2', T + 200n));
    assert.deepEqual(await listDir(db.redis, ks, '/w/b'), []);
  });

  it('removePath: unlink, rmdir ENOTEMPTY/ENOTDIR, EISDIR, ENOENT, and beats a future mtime', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/r/f', 'n1', T));
    assert.equal(await code(removePath(db.redis, ks, '/r', 'n1', { dir: true })), 'ENOTEMPTY');
    assert.equal(await code(removePath(db.redis, ks, '/r', 'n1', { dir: false })), 'EISDIR');
    assert.equal(await code(removePath(db.redis, ks, '/r/f', 'n1', { dir: true })), 'ENOTDIR');
    assert.equal(await code(removePath(db.redis, ks, '/r/nope', 'n1', { dir: false })), 'ENOENT');
    assert.equal(await code(removePath(db.redis, ks, '/', 'n1', { dir: true })), 'EBUSY');
    const future = T * 2n;
    await commitVersion(db.redis, ks, file('/r/g', 'n2', future));
    const { mtimeNs } = await removePath(db.redis, ks, '/r/g', 'n1', { dir: false, mtimeNs: String(T) });
    assert.equal(mtimeNs, String(future + 1n));
    assert.equal(await getCurrent(db.redis, ks, '/r/g'), undefined);
    await removePath(db.redis, ks, '/r/f', 'n1', { dir: false });
    await removePath(db.redis, ks, '/r', 'n1', { dir: true });
    assert.deepEqual(await listDir(db.redis, ks, '/'), []);
  });

  it('orders times before 1970 (negative) before later ones, and steps past them', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/old', 'n2', -1_000n));
    await commitVersion(db.redis, ks, file('/old', 'n3', -1_000_000_000_000n));
    assert.equal((await getCurrent(db.redis, ks, '/old'))?.node, 'n2');
    // Written through a mount with an older time: just past the winner's, nearer to 1970.
    const w = await commitVersion(db.redis, ks, { ...file('/old', 'n1', -5_000n, M2), source: 'mount' }, { written: true });
    assert.deepEqual([w.current, w.mtimeNs], [true, '-999']);
    await commitVersion(db.redis, ks, file('/zero', 'n2', -1n));
    const z = await commitVersion(db.redis, ks, { ...file('/zero', 'n1', -7n, M2), source: 'mount' }, { written: true });
    assert.equal(z.mtimeNs, '0');
    await commitVersion(db.redis, ks, file('/ten', 'n2', -10n));
    assert.equal((await commitVersion(db.redis, ks, { ...file('/ten', 'n1', -70n, M2), source: 'mount' }, { written: true })).mtimeNs, '-9');
    // The atime apart, before 1970 too; the record round-trips.
    await commitVersion(db.redis, ks, { ...file('/a', 'n1', -1_500_000_000n), atimeNs: '-2500000000' });
    const a = await getCurrent(db.redis, ks, '/a');
    assert.deepEqual([a?.mtimeNs, a?.atimeNs], ['-1500000000', '-2500000000']);
    await assert.rejects(commitVersion(db.redis, ks, file('/bad', 'n1', '-0')), /EINVAL.*mtimeNs/);
  });

  it('new content written through a mount wins over a later version or delete elsewhere, with a time just past it', async () => {
    const ks = await space();
    const mount = (path: string, node: string, mtimeNs: bigint): NewVersion => ({ ...file(path, node, mtimeNs, M2), source: 'mount' });
    await commitVersion(db.redis, ks, file('/w', 'n2', T * 2n));
    // Attributes or content with an older mtime, not marked as written: the later version stays.
    assert.equal((await commitVersion(db.redis, ks, mount('/w', 'n1', T))).current, false);
    const w = await commitVersion(db.redis, ks, mount('/w', 'n1', T), { written: true });
    assert.equal(w.current, true);
    assert.equal(w.mtimeNs, String(T * 2n + 1n));
    assert.equal((await getCurrent(db.redis, ks, '/w'))?.chunkListHash, M2);
    // A delete on another node stamped far in the future (the file had a future mtime).
    await commitVersion(db.redis, ks, file('/f', 'n2', T * 3n));
    await removePath(db.redis, ks, '/f', 'n2', { dir: false });
    const after = await commitVersion(db.redis, ks, mount('/f', 'n1', T), { written: true });
    assert.equal(after.current, true);
    assert.equal(after.mtimeNs, String(T * 3n + 2n));
    // Ahead of everything already: the mtime it was written with stays.
    assert.equal((await commitVersion(db.redis, ks, mount('/w', 'n1', T * 4n), { written: true })).mtimeNs, String(T * 4n));
  });

  it('restores an old version as a new one that wins, reusing its chunk list', async () => {
    const ks = await space();
    const old = await commitVersion(db.redis, ks, file('/s', 'n1', T, M1, 1));
    await commitVersion(db.redis, ks, file('/s', 'n2', T * 2n, M2, 2));
    const r = await restoreVersion(db.redis, ks, '/s', old.id, 'n3');
    assert.equal(r.chunkListHash, M1);
    assert.equal(r.size, 1);
    assert.equal(r.source, 'restore');
    assert.equal(r.mtimeNs, String(T * 2n + 1n));
    assert.equal((await getCurrent(db.redis, ks, '/s'))?.id, r.id);
    assert.equal(await code(restoreVersion(db.redis, ks, '/s', '99', 'n3')), 'ENOENT');
    const t = await removePath(db.redis, ks, '/s', 'n1', { dir: false });
    assert.equal(await code(restoreVersion(db.redis, ks, '/s', t.id, 'n3')), 'EINVAL');
    await restoreVersion(db.redis, ks, '/s', old.id, 'n3');
    assert.equal((await getCurrent(db.redis, ks, '/s'))?.chunkListHash, M1);
  });

  it('renames a file over another, and a directory subtree, in one step', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/x', 'n1', T, M1));
    await commitVersion(db.redis, ks, file('/y', 'n2', T * 2n, M2));
    const r = await renamePath(db.redis, ks, '/x', '/y', 'n1', String(T + 1n));
    assert.equal(r.mtimeNs, String(T * 2n + 1n));
    assert.equal(await getCurrent(db.redis, ks, '/x'), undefined);
    // the old name keeps its history untouched, with the tombstone on top
    assert.deepEqual((await listVersions(db.redis, ks, '/x')).map((v) => [v.type, v.node, v.mtimeNs, v.source]), [
      ['tombstone', 'n1', String(T * 2n + 1n), 'mount'], ['file', 'n1', String(T), 'export'],
    ]);
    // n2's newer /y would beat the moved file's own mtime: the move takes the stamp
    assert.equal((await getCurrent(db.redis, ks, '/y'))?.chunkListHash, M1);
    assert.equal((await getCurrent(db.redis, ks, '/y'))?.mtimeNs, String(T * 2n + 1n));
    // nothing newer at the target: the moved file keeps its mtime, as rename(2) does
    await renamePath(db.redis, ks, '/y', '/z', 'n2', String(T * 3n));
    assert.equal((await getCurrent(db.redis, ks, '/z'))?.mtimeNs, String(T * 2n + 1n));
    assert.equal((await getCurrent(db.redis, ks, '/z'))?.node, 'n2');

    await commitVersion(db.redis, ks, file('/src/a/1', 'n1', T));
    await commitVersion(db.redis, ks, file('/src/a/2', 'n2', T, M2));
    await commitVersion(db.redis, ks, file('/src/b', 'n1', T));
    await commitVersion(db.redis, ks, dir('/dst', 'n1', T));
    const moved = await renamePath(db.redis, ks, '/src', '/dst', 'n1', String(T + 5n));
    assert.equal(moved.moved, 5);
    assert.deepEqual((await listDir(db.redis, ks, '/')).map((e) => e.name), ['dst', 'z']);
    assert.deepEqual((await listDir(db.redis, ks, '/dst')).map((e) => e.name), ['a', 'b']);
    assert.deepEqual((await listDir(db.redis, ks, '/dst/a')).map((e) => e.name), ['1', '2']);
    assert.equal((await getCurrent(db.redis, ks, '/dst/a/2'))?.chunkListHash, M2);
    assert.equal((await getCurrent(db.redis, ks, '/dst/a/2'))?.mtimeNs, String(T));
    assert.equal(await getCurrent(db.redis, ks, '/src/a/1'), undefined);
    // the old copy on n2 of /src/a/2 does not come back
    await commitVersion(db.redis, ks, file('/src/a/2', 'n2', T, M2));
    assert.equal(await getCurrent(db.redis, ks, '/src/a/2'), undefined);
  });

  it('rename follows the POSIX error rules', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/d1/f', 'n1', T));
    await commitVersion(db.redis, ks, dir('/d2', 'n1', T));
    await commitVersion(db.redis, ks, file('/d3/g', 'n1', T));
    await commitVersion(db.redis, ks, file('/h', 'n1', T));
    assert.equal(await code(renamePath(db.redis, ks, '/nope', '/z', 'n1')), 'ENOENT');
    assert.equal(await code(renamePath(db.redis, ks, '/h', '/nodir/z', 'n1')), 'ENOENT');
    assert.equal(await code(renamePath(db.redis, ks, '/h', '/d1/f/z', 'n1')), 'ENOTDIR');
    assert.equal(await code(renamePath(db.redis, ks, '/d2', '/h', 'n1')), 'ENOTDIR');
    assert.equal(await code(renamePath(db.redis, ks, '/h', '/d2', 'n1')), 'EISDIR');
    assert.equal(await code(renamePath(db.redis, ks, '/d2', '/d3', 'n1')), 'ENOTEMPTY');
    assert.equal(await code(renamePath(db.redis, ks, '/d1', '/d1/sub', 'n1')), 'EINVAL');
    assert.equal(await code(renamePath(db.redis, ks, '/h', '/h', 'n1')), 'ok');
    assert.equal(await code(renamePath(db.redis, ks, '/d2', '/d1', 'n1')), 'ENOTEMPTY');
    assert.equal(await code(renamePath(db.redis, ks, '/d1', '/d2', 'n1')), 'ok');
    assert.deepEqual((await listDir(db.redis, ks, '/d2')).map((e) => e.name), ['f']);
  });

  it('refuses to rename a directory over the subtree bound with EXDEV, leaving it whole', async () => {
    const ks = await space();
    const n = FS_LIMITS.renameEntries; // files; with /big and /big/dN that is over the bound
    for (let i = 0; i < n; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => commitVersion(db.redis, ks, file(`/big/d${(i + j) % 10}/f${i + j}`, 'n1', T))));
    }
    assert.equal(await code(renamePath(db.redis, ks, '/big', '/big2', 'n1')), 'EXDEV');
    assert.equal((await listDir(db.redis, ks, '/big/d3')).length, n / 10);
    assert.equal(await getCurrent(db.redis, ks, '/big2'), undefined);
  });

  describe('hard links', () => {
    const mount = (path: string, node: string, mtimeNs: bigint, chunkListHash = M1, size = 10): NewVersion => ({ ...file(path, node, mtimeNs, chunkListHash, size), source: 'mount' });
    const links = async (ks: FsKeyspace, ...paths: string[]) => (await getCurrentMany(db.redis, ks, paths)).map((r) => r ? `${r.inode}:${r.links}:${r.chunkListHash === M1 ? 'M1' : r.chunkListHash === M2 ? 'M2' : r.chunkListHash}` : null);

    it('link makes two names of one file: one inode, a link count, one content, both listed as files, ctime moved', async () => {
      const ks = await space();
      await commitVersion(db.redis, ks, { ...mount('/d/a', 'n1', T), committedAt: 1000 });
      const l = await linkPath(db.redis, ks, '/d/a', '/d/b', 'n2', { nowNs: String(T * 2n), nowMs: 5000 });
      assert.equal(l.links, 2);
      assert.deepEqual(await links(ks, '/d/a', '/d/b'), [`${l.inode}:2:M1`, `${l.inode}:2:M1`]);
      const a = (await getCurrent(db.redis, ks, '/d/a'))!;
      assert.equal(a.type, 'file');
      assert.equal(a.mtimeNs, String(T), "a link keeps the file's mtime");
      assert.equal(a.committedAt, 5000, 'and moves its ctime');
      assert.equal(a.path, '/d/a');
      assert.deepEqual((await listDir(db.redis, ks, '/d')).map((e) => `${e.name}:${e.type}`), ['a:file', 'b:file']);
      // a third name, made from the second
      assert.equal((await linkPath(db.redis, ks, '/d/b', '/c', 'n1')).links, 3);
      assert.deepEqual(await links(ks, '/d/a', '/d/b', '/c'), Array(3).fill(`${l.inode}:3:M1`));
    });

    it('a commit through one name is the file\'s: every name shows it, and hears of it', async () => {
      const ks = await space();
      await commitVersion(db.redis, ks, mount('/a', 'n1', T));
      const { inode } = await linkPath(db.redis, ks, '/a', '/b', 'n1');
      const got: string[] = [];
      const stop = await subscribeFsEvents(db.redis, ks, (p) => got.push(p));
      try {
        const c = await commitVersion(db.redis, ks, mount('/b', 'n2', T * 2n, M2, 3), { written: true });
        assert.deepEqual([c.current, c.inode, c.links], [true, inode, 2]);
        assert.deepEqual(await links(ks, '/a', '/b'), [`${inode}:2:M2`, `${inode}:2:M2`]);
        assert.equal((await getCurrent(db.redis, ks, '/a'))?.size, 3);
        const deadline = Date.now() + 1000;
        while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(got.sort(), ['/a', '/b']);
      } finally {
        await stop();
      }
      // A chmod through the other name (the same content and mtime) is the file's too.
      await commitVersion(db.redis, ks, { ...mount('/a', 'n1', T * 2n, M2, 3), mode: 0o100600 }, { touch: true });
      assert.equal((await getCurrent(db.redis, ks, '/b'))?.mode, 0o100600);
      // Versions and restore of a name are the file's.
      const vs = await listVersions(db.redis, ks, '/b');
      assert.deepEqual(vs.map((v) => v.type), ['file', 'file', 'file']);
      const first = vs.find((v) => v.chunkListHash === M1)!;
      await restoreVersion(db.redis, ks, '/a', first.id, 'n1');
      assert.deepEqual(await links(ks, '/a', '/b'), [`${inode}:2:M1`, `${inode}:2:M1`]);
    });

    it('unlink, rename and replacement of names count links; a rename onto another name of itself does nothing', async () => {
      const ks = await space();
      await commitVersion(db.redis, ks, mount('/a', 'n1', T));
      const { inode } = await linkPath(db.redis, ks, '/a', '/b', 'n1');
      await linkPath(db.redis, ks, '/a', '/c', 'n1');
      assert.equal((await renamePath(db.redis, ks, '/a', '/b', 'n1')).moved, 0);
      assert.deepEqual(await links(ks, '/a', '/b', '/c'), Array(3).fill(`${inode}:3:M1`));
      await removePath(db.redis, ks, '/c', 'n2', { dir: false });
      assert.deepEqual(await links(ks, '/a', '/b', '/c'), [`${inode}:2:M1`, `${inode}:2:M1`, null]);
      await commitVersion(db.redis, ks, dir('/sub', 'n1', T));
      await renamePath(db.redis, ks, '/b', '/sub/b2', 'n1');
      assert.deepEqual(await links(ks, '/a', '/sub/b2'), [`${inode}:2:M1`, `${inode}:2:M1`]);
      // a directory holding a name moves with it
      await renamePath(db.redis, ks, '/sub', '/sub2', 'n1');
      assert.deepEqual(await links(ks, '/a', '/sub2/b2'), [`${inode}:2:M1`, `${inode}:2:M1`]);
      // another file renamed over a name: one name less
      await commitVersion(db.redis, ks, mount('/other', 'n1', T, M2));
      await renamePath(db.redis, ks, '/other', '/a', 'n1');
      assert.deepEqual(await links(ks, '/a', '/sub2/b2'), ['undefined:undefined:M2', `${inode}:1:M1`]);
      // a newer file from a node's export directory at the name wins over the link
      await commitVersion(db.redis, ks, file('/sub2/b2', 'n3', T * 9n, M2));
      assert.deepEqual(await links(ks, '/sub2/b2'), ['undefined:undefined:M2']);
    });

    it('a deleted name\'s link is kept in its history and restored as a link', async () => {
      const ks = await space();
      await commitVersion(db.redis, ks, mount('/a', 'n1', T));
      const { inode } = await linkPath(db.redis, ks, '/a', '/b', 'n1');
      await removePath(db.redis, ks, '/b', 'n1', { dir: false });
      const h = (await listVersions(db.redis, ks, '/b')).find((v) => v.type === 'hardlink')!;
      assert.equal(h.inode, inode);
      await restoreVersion(db.redis, ks, '/b', h.id, 'n2');
      assert.deepEqual(await links(ks, '/a', '/b'), [`${inode}:2:M1`, `${inode}:2:M1`]);
    });

    it('link follows the POSIX error rules, and a hard link cannot be committed from outside', async () => {
      const ks = await space();
      await commitVersion(db.redis, ks, mount('/d/f', 'n1', T));
      await commitVersion(db.redis, ks, mount('/g', 'n1', T));
      assert.equal(await code(linkPath(db.redis, ks, '/nope', '/x', 'n1')), 'ENOENT');
      assert.equal(await code(linkPath(db.redis, ks, '/d', '/x', 'n1')), 'EPERM');
      assert.equal(await code(linkPath(db.redis, ks, '/d/f', '/g', 'n1')), 'EEXIST');
      assert.equal(await code(linkPath(db.redis, ks, '/d/f', '/no/x', 'n1')), 'ENOENT');
      assert.equal(await code(linkPath(db.redis, ks, '/d/f', '/g/x', 'n1')), 'ENOTDIR');
      assert.equal(await code(commitVersion(db.redis, ks, { ...mount('/h', 'n1', T), type: 'hardlink' })), 'EINVAL');
      assert.equal((await getCurrent(db.redis, ks, '/d/f'))?.inode, undefined, 'a failed link changes nothing');
      // symlinks and special files have hard links too
      await commitVersion(db.redis, ks, { path: '/s', type: 'symlink', node: 'n1', mtimeNs: String(T), size: 1, mode: 0o120777, uid: 0, gid: 0, target: 't', source: 'mount' });
      await linkPath(db.redis, ks, '/s', '/s2', 'n1');
      const s2 = (await getCurrent(db.redis, ks, '/s2'))!;
      assert.deepEqual([s2.type, s2.target, s2.links], ['symlink', 't', 2]);
    });
  });

  it('publishes every changed path on fsEvents', async () => {
    const ks = await space();
    const got: string[] = [];
    const stop = await subscribeFsEvents(db.redis, ks, (p) => got.push(p));
    try {
      await commitVersion(db.redis, ks, file('/e/f', 'n1', T));
      await commitVersion(db.redis, ks, file('/e/f', 'n2', T - 1n)); // loses: nothing visible changed
      await renamePath(db.redis, ks, '/e', '/e2', 'n1');
      const deadline = Date.now() + 1000;
      while (got.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, ['/e/f', '/e', '/e', '/e2']);
    } finally {
      await stop();
    }
  });

  it('stores chunk lists once, checked against their hash', async () => {
    const ks = fsKeyspace(testPrefix());
    const data = randomBytes(100);
    const h = createHash('sha256').update(data).digest('hex');
    assert.equal(await putChunkList(db.redis, ks, h, data), true);
    assert.equal(await putChunkList(db.redis, ks, h, data), false);
    assert.deepEqual(await getChunkList(db.redis, ks, h), data);
    assert.equal(await getChunkList(db.redis, ks, M1), undefined);
    await assert.rejects(putChunkList(db.redis, ks, M1, data), /hashes to/);
  });

  it('keeps everything across a redis-server restart', async () => {
    const ks = await space();
    await commitVersion(db.redis, ks, file('/k/f', 'n1', T));
    await db.server.restart();
    await commitVersion(db.redis, ks, file('/k/g', 'n1', T));
    assert.deepEqual((await listDir(db.redis, ks, '/k')).map((e) => e.name), ['f', 'g']);
    assert.equal((await getCurrent(db.redis, ks, '/k/f'))?.mtimeNs, String(T));
  });

  it('Lua and pickCurrent agree on random version sets', async () => {
    const ks0 = testPrefix();
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 100; round++) {
      const ks = await space(ks0.replace('}', `-${round}}`));
      const n = 1 + rnd(8);
      for (let i = 0; i < n; i++) {
        const node = ['a', 'b', 'c', 'a-1', 'B'][rnd(5)];
        // around now, and around 1970 on both sides (negative before it)
        const mtime = [T, T + 1n, T + 10n ** 12n, T + 3n, 0n, 1n, -1n, -(10n ** 9n), -(10n ** 9n) - 1n, -(10n ** 18n)][rnd(10)];
        const source = (['export', 'mount', 'restore'] as const)[rnd(3)];
        await commitVersion(db.redis, ks, { ...(rnd(4) === 0 ? tomb('/r', node, mtime) : file('/r', node, mtime, rnd(2) ? M1 : M2, rnd(3))), source });
      }
      const vs = await listVersions(db.redis, ks, '/r');
      const ts = pickCurrent(vs);
      assert.equal(ts?.id, vs.find((v) => v.current)?.id, JSON.stringify(vs));
      const cur = await getCurrent(db.redis, ks, '/r');
      assert.equal(cur?.id, ts?.type === 'tombstone' ? undefined : ts?.id);
    }
  });
});
