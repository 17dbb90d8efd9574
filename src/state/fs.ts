import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { FsKeyspace } from './keys.js';
import { runScript, ScriptError } from './scripts.js';
import type { FileType, VersionInfo, VersionRecord, VersionSource } from '../api/fs.js';
import { decodeXattrs, encodeXattrs } from './xattrs.js';
import { subscribeChannel } from './redis.js';
import { awaitReplica, connectionGeneration } from './replication.js';

/**
 * The namespace of the unified filesystem, JuiceFS-style: metadata in Redis, data as PacketFS
 * chunk lists. A path ('/a/b') has versions; each version says which node it came from, its mtime,
 * size, mode, owner and (for files) the hash of its chunk list. What everyone sees at a path is
 * decided by the fs Lua scripts (one an operation, over src/state/lua/include/fs.lua) on every
 * change, in one atomic step (restated for the tests by test/fsmeta/pick-current.ts): the
 * latest version of each node's export stream and of its mount stream (mount and restore)
 * counts, newest mtime wins, equal mtimes go to the node name first in byte order, then to the
 * mount stream. A delete is a version too (a tombstone), so "deleted at T" competes with
 * "written at T'" by the same rule.
 *
 * Storage per path: one string fs:p:<path> holding all its versions in a compact form (see
 * lua/include/fs.lua) and one field in the parent's fs:d:<dir> index (name → type letter + current id).
 * History: the last 20 versions of each node's each stream per path are kept; older ones are
 * dropped as new ones arrive.
 */

export type NewVersion = Omit<VersionRecord, 'id' | 'committedAt'> & { committedAt?: number };

export type FsErrorCode = 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'EINVAL' | 'ENAMETOOLONG' | 'EXDEV' | 'EBUSY' | 'ESTALE' | 'ENOLCK' | 'EPERM';

/** A namespace error the FUSE layer maps to -errno; `path` names what was at fault. */
export class FsError extends Error {
  constructor(readonly code: FsErrorCode, readonly path: string, detail?: string) {
    super(`${code}: ${path}${detail ? ` (${detail})` : ''}`);
    this.name = 'FsError';
  }
}

export const FS_LIMITS = {
  /** NAME_MAX: the longest name of one path component. */
  nameBytes: 255,
  /** PATH_MAX, the terminating NUL included, as Linux counts it: a symlink's target holds at most 4095 bytes. */
  pathBytes: 4096,
  /**
   * The longest path from the mount's root. PATH_MAX bounds what one call passes, counted from
   * where the call starts (its working directory, an open directory), so on ext4 a tree is as
   * deep as one likes; here a path is a Redis key and a Lua argument, so it has a bound, eight
   * times PATH_MAX: past it ENAMETOOLONG, where ext4 would go on.
   */
  treePathBytes: 32_768,
  /** Versions kept per node and stream per path (also HISTORY in lua/include/fs.lua). */
  historyPerNode: 20,
  /** Entries one renamePath may move; a bigger directory gets EXDEV, and mv falls back to copying. */
  renameEntries: 5_000,
} as const;

/**
 * '/a//b/./c/' → '/a/b/c'. Throws EINVAL for relative paths, '..' and NUL, ENAMETOOLONG for a
 * name over 255 bytes, as Linux does, and for a path past treePathBytes.
 */
export function normalizePath(p: string): string {
  if (typeof p !== 'string' || !p.startsWith('/')) throw new FsError('EINVAL', String(p), 'path must be absolute');
  if (p.includes('\0')) throw new FsError('EINVAL', p.replace(/\0/g, '\\0'), 'path contains NUL');
  const parts: string[] = [];
  for (const name of p.split('/')) {
    if (name === '' || name === '.') continue;
    if (name === '..') throw new FsError('EINVAL', p, "'..' is not allowed");
    if (Buffer.byteLength(name) > FS_LIMITS.nameBytes) throw new FsError('ENAMETOOLONG', p, `name over ${FS_LIMITS.nameBytes} bytes`);
    parts.push(name);
  }
  const out = '/' + parts.join('/');
  if (Buffer.byteLength(out) >= FS_LIMITS.treePathBytes) throw new FsError('ENAMETOOLONG', p.slice(0, 64) + '…', `path of ${FS_LIMITS.treePathBytes} bytes or more`);
  return out;
}

/** The current time as mtimeNs. */
export function nowNs(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

const TYPE_LETTER: Record<FileType, string> = { file: 'f', dir: 'd', symlink: 'l', special: 's', tombstone: 't', hardlink: 'h' };
const LETTER_TYPE: Record<string, FileType> = { f: 'file', d: 'dir', l: 'symlink', s: 'special', t: 'tombstone', h: 'hardlink' };
/** The type bits a special file's mode may carry: fifo, socket, character and block device. */
const SPECIAL_KINDS = new Set([0o010000, 0o140000, 0o020000, 0o060000]);
const SOURCE_LETTER: Record<VersionSource, string> = { export: 'e', mount: 'm', restore: 'r' };
const LETTER_SOURCE: Record<string, VersionSource> = { e: 'export', m: 'mount', r: 'restore' };

/** A node name goes into the version records as it is: one with a `|` in it would split them. */
function checkNode(path: string, node: unknown): void {
  if (typeof node !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(node)) throw new FsError('EINVAL', path, `version field node must be a node name, got ${JSON.stringify(node)}`);
}

/** ns since the epoch, as lua/include/fs.lua compares them: no leading zeros, no "-0", "-" before 1970. */
const NS_TIME = /^(0|-?[1-9][0-9]{0,19})$/;

function checkVersion(rec: NewVersion): void {
  const bad = (field: string, why: string): never => {
    throw new FsError('EINVAL', rec.path, `version field ${field} ${why}`);
  };
  // a hard link is made by linkPath only
  if (!(rec.type in TYPE_LETTER) || rec.type === 'hardlink') bad('type', `must be file|dir|symlink|special|tombstone, got ${String(rec.type)}`);
  if (!(rec.source in SOURCE_LETTER)) bad('source', `must be export|mount|restore, got ${String(rec.source)}`);
  checkNode(rec.path, rec.node);
  if (typeof rec.mtimeNs !== 'string' || !NS_TIME.test(rec.mtimeNs)) bad('mtimeNs', `must be a decimal string of ns (negative before 1970), got ${JSON.stringify(rec.mtimeNs)}`);
  if (rec.atimeNs !== undefined && (typeof rec.atimeNs !== 'string' || !NS_TIME.test(rec.atimeNs))) bad('atimeNs', `must be a decimal string of ns (negative before 1970), got ${JSON.stringify(rec.atimeNs)}`);
  for (const f of ['size', 'mode', 'uid', 'gid'] as const) {
    if (!Number.isSafeInteger(rec[f]) || rec[f] < 0) bad(f, `must be a non-negative integer, got ${rec[f]}`);
  }
  if (rec.type === 'file' ? !/^[0-9a-f]{64}$/.test(rec.chunkListHash ?? '') : rec.chunkListHash) {
    bad('chunkListHash', rec.type === 'file' ? 'must be a 64-hex chunk list hash' : 'is only for files');
  }
  if (rec.type === 'symlink' ? !rec.target || rec.target.includes('\0') || Buffer.byteLength(rec.target) > FS_LIMITS.pathBytes : rec.target) {
    bad('target', rec.type === 'symlink' ? `must be 1..${FS_LIMITS.pathBytes} bytes without NUL` : 'is only for symlinks');
  }
  if (rec.type === 'special') {
    if (!SPECIAL_KINDS.has(rec.mode & 0o170000)) bad('mode', `of a special file must be a fifo, socket or device (type bits ${(rec.mode & 0o170000).toString(8)})`);
    if (rec.size !== 0) bad('size', 'of a special file is 0');
    if (rec.rdev !== undefined && (!Number.isSafeInteger(rec.rdev) || rec.rdev < 0)) bad('rdev', `must be a non-negative integer, got ${rec.rdev}`);
  } else if (rec.rdev !== undefined) {
    bad('rdev', 'is only for special files');
  }
  if (rec.xattrs !== undefined) {
    if (rec.type === 'tombstone') bad('xattrs', 'are not for a delete');
    try {
      encodeXattrs(rec.xattrs);
    } catch (err) {
      bad('xattrs', (err as Error).message);
    }
  }
}

function encodeVersion(rec: NewVersion, committedAt: number): string {
  return [
    // A special file's size is 0: the size field holds its device number instead.
    TYPE_LETTER[rec.type], rec.node, rec.atimeNs === undefined || rec.atimeNs === rec.mtimeNs ? rec.mtimeNs : `${rec.mtimeNs}/${rec.atimeNs}`, rec.type === 'special' ? rec.rdev ?? 0 : rec.size, rec.mode, rec.uid, rec.gid,
    SOURCE_LETTER[rec.source], committedAt, rec.chunkListHash ?? '', rec.xattrs ? encodeXattrs(rec.xattrs).toString('hex') : '', rec.target ?? '',
  ].join('|');
}

export function decodeVersion(path: string, id: string, raw: string): VersionRecord {
  const f = raw.split('|');
  const target = f.slice(11).join('|');
  const [mtimeNs, atimeNs] = f[2].split('/');
  const rec: VersionRecord = {
    id, path, type: LETTER_TYPE[f[0]], node: f[1], mtimeNs, size: Number(f[3]), mode: Number(f[4]),
    uid: Number(f[5]), gid: Number(f[6]), source: LETTER_SOURCE[f[7]], committedAt: Number(f[8]),
  };
  if (atimeNs !== undefined) rec.atimeNs = atimeNs;
  if (rec.type === 'special') {
    rec.rdev = rec.size;
    rec.size = 0;
  }
  if (f[9]) rec.chunkListHash = f[9];
  if (f[10]) rec.xattrs = decodeXattrs(Buffer.from(f[10], 'hex'));
  if (rec.type === 'hardlink') rec.inode = target;
  else if (target) rec.target = target;
  return rec;
}

/**
 * A path as get shows it: a directory with how many of its names are directories, a name of a
 * hard-linked file with the file's inode number and link count.
 */
function asShown(rec: VersionRecord, subdirs: number | string, inode: number | string, links: number | string, stIno: number | string): VersionRecord {
  if (rec.type === 'dir') rec.subdirs = Number(subdirs);
  if (stIno !== '' && stIno !== undefined && stIno !== null) rec.stIno = String(stIno);
  if (Number(inode)) {
    rec.inode = String(inode);
    rec.links = Number(links);
  }
  return rec;
}

/** The namespace's operations, each a Lua script of its own (src/state/lua/<script>-1.lua) over include/fs.lua. */
const FS_SCRIPTS = {
  commit: 'fsCommit',
  get: 'fsGet',
  getmany: 'fsGetMany',
  versions: 'fsVersions',
  list: 'fsList',
  remove: 'fsRemove',
  restore: 'fsRestore',
  rename: 'fsRename',
  access: 'fsAccess',
  link: 'fsLink',
} as const;

/** Run op's script on path (routed by its fs:p key) with args; a failure it reports is an FsError. */
async function fsOp<T>(redis: Redis, ks: FsKeyspace, op: keyof typeof FS_SCRIPTS, path: string, args: (string | number)[] = []): Promise<T> {
  try {
    return await runScript<T>(redis, FS_SCRIPTS[op], [ks.fsVersions(path)], [ks.prefix, path, ...args]);
  } catch (err) {
    if (err instanceof ScriptError) throw new FsError(err.code as FsErrorCode, err.detail);
    throw err;
  }
}

/**
 * Store a version and recompute what the path shows, in one step (at a name of a hard-linked
 * file, a version of the file, at its inode: `inode` and `links` say which, as get would); publishes the path on
 * ks.fsEvents when what it shows changed. Committing the same content again from the same node
 * (same type, mtime, size, mode, owner, chunk list, target as its latest version in either
 * stream) is a no-op that returns the existing id, and publishes nothing (`published` false).
 * A change of attributes alone made through a mount to another node's current version (same
 * type, content and mtime) is stored as a version of that node's copy, so that it wins. A file committed at /a/b/c makes /a and /a/b directories if they are
 * missing or deleted (versions from the same node at the file's mtime, so a directory deleted
 * after that mtime stays deleted, and the file with it). A directory that goes away (a
 * tombstone, or a newer non-directory) takes everything below it that is older along (each gets
 * a tombstone, so it stays hidden if the directory returns); anything newer below it keeps the
 * directory. `current` says whether this version is what the path shows after all that.
 * `exclusive` fails with EEXIST if the path exists (mkdir, O_EXCL). A file's chunk list must be in
 * fs:m (putChunkList): ESTALE says it is not, because chunk list garbage collection
 * (chunk-list-gc.ts) deleted it after the caller put it or last saw it named; put it again (the
 * caller holds the chunks) and retry.
 *
 * `written`: new content written through a mount, which wins over what the path held: when
 * another version beats its mtime, it takes the time just past that one's (returned as mtimeNs).
 *
 * `lockSession`: the commit is made under a lock that session holds in the lock table
 * (src/state/locks.ts); it fails with ENOLCK once that session's lease has passed. `touch`: a
 * new version even when it repeats the latest (a setattr that changes nothing moves ctime).
 */
export async function commitVersion(redis: Redis, ks: FsKeyspace, rec: NewVersion, opts: { exclusive?: boolean; written?: boolean; lockSession?: string; touch?: boolean } = {}): Promise<{ id: string; current: boolean; published: boolean; mtimeNs: string; inode?: string; links?: number; stIno?: string }> {
  const path = normalizePath(rec.path);
  checkVersion(rec);
  const encoded = encodeVersion({ ...rec, path }, rec.committedAt ?? Date.now());
  const commit = (exclusive: boolean) => fsOp<[number, number, number, string, number | string, number, string]>(redis, ks, 'commit', path, [
    encoded, exclusive ? 'x' : '', opts.written ? 'w' : '', opts.lockSession ?? '', opts.touch ? 't' : '',
  ]);
  let gen = connectionGeneration(redis);
  let reply = await commit(!!opts.exclusive);
  // A commit a failover loses is a file lost whose close returned success: it waits for a
  // replica. When it may have happened on a primary that is gone (the connection was lost
  // before the WAIT answered, or the sentinels replaced that primary: replication.ts), it is
  // made again, which changes nothing where it is already
  // (the same content again from the same node). Exclusive, it then finds the path taken:
  // by itself if what the path shows is this very version, which counts as done.
  while (!(await awaitReplica(redis, gen))) {
    gen = connectionGeneration(redis);
    try {
      reply = await commit(!!opts.exclusive);
    } catch (err) {
      if (!(opts.exclusive && err instanceof FsError && err.code === 'EEXIST')) throw err;
      const cur = await getCurrent(redis, ks, path);
      if (!cur || cur.node !== rec.node || cur.mtimeNs !== rec.mtimeNs || (cur.chunkListHash ?? '') !== (rec.chunkListHash ?? '') || cur.type !== rec.type) throw err;
      reply = await commit(false);
    }
  }
  const [id, current, published, mtimeNs, inode, links, stIno] = reply;
  return {
    id: String(id), current: current === 1, published: published === 1, mtimeNs: String(mtimeNs),
    ...(Number(inode) ? { inode: String(inode), links: Number(links) } : {}), ...(stIno ? { stIno: String(stIno) } : {}),
  };
}

/**
 * What the path shows now, or undefined when it does not exist (never a tombstone). '/' always
 * exists (version id 0). A directory's mtimeNs is that of its version or, if later, the time a
 * name last came or went in it, as POSIX directories show.
 */
export async function getCurrent(redis: Redis, ks: FsKeyspace, path: string): Promise<VersionRecord | undefined> {
  const p = normalizePath(path);
  const res = await fsOp<[number, string, number, number | string, number, string] | null>(redis, ks, 'get', p);
  return res ? asShown(decodeVersion(p, String(res[0]), res[1]), res[2], res[3], res[4], res[5]) : undefined;
}

/** Most paths getCurrentMany takes in one call (one script: it holds Redis for its duration). */
export const GET_MANY_MAX = 1000;

/**
 * getCurrent for many paths in one consistent step (readdir-plus: the attributes of a directory's
 * entries in one round trip). Answers in the order asked; undefined where nothing is.
 */
export async function getCurrentMany(redis: Redis, ks: FsKeyspace, paths: readonly string[]): Promise<(VersionRecord | undefined)[]> {
  if (paths.length > GET_MANY_MAX) throw new FsError('EINVAL', paths[0], `getCurrentMany takes at most ${GET_MANY_MAX} paths, got ${paths.length}`);
  if (!paths.length) return [];
  const ps = paths.map(normalizePath);
  const res = await fsOp<(number | string)[]>(redis, ks, 'getmany', ps[0], ps.slice(1));
  return ps.map((p, i) => {
    const [id, raw, subdirs, inode, links, stIno] = res.slice(6 * i, 6 * i + 6);
    return Number(id) || p === '/' ? asShown(decodeVersion(p, String(id), String(raw)), subdirs, inode, links, stIno) : undefined;
  });
}

export interface DirEntry {
  name: string;
  /** A hard link's is its file's. */
  type: Exclude<FileType, 'tombstone' | 'hardlink'>;
  /** Id of the child's current version. */
  id: string;
}

/** Names of a directory one step of listDirPages reads (HSCAN's COUNT: a hint, not a bound). */
export const LIST_PAGE = 1000;

/**
 * The visible children of a directory, a page at a time, in no order, each script step
 * reading about LIST_PAGE names: however big the directory, Redis is held for one page and
 * the caller holds what it keeps. A name there for the whole listing comes at least once (a
 * name may come twice: the caller drops repeats); one made or removed meanwhile may or may
 * not, as readdir(3) has it. ENOENT / ENOTDIR as readdir, also from a later page if the
 * directory went away meanwhile.
 */
export async function* listDirPages(redis: Redis, ks: FsKeyspace, path: string): AsyncGenerator<DirEntry[]> {
  let cursor = '0';
  do {
    const page = await listDirPage(redis, ks, path, cursor);
    cursor = page.next;
    yield page.entries;
  } while (cursor !== '0');
}

/** One step of listDirPages, from `cursor` ('0': the first); `next` '0' when the listing is done. */
export async function listDirPage(redis: Redis, ks: FsKeyspace, path: string, cursor: string): Promise<{ entries: DirEntry[]; next: string }> {
  const [next, ...flat] = await fsOp<string[]>(redis, ks, 'list', normalizePath(path), [cursor, LIST_PAGE]);
  const entries: DirEntry[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    entries.push({ name: flat[i], type: LETTER_TYPE[flat[i + 1][0]] as DirEntry['type'], id: flat[i + 1].slice(1) });
  }
  return { entries, next: String(next) };
}

/** The visible children of a directory, sorted by name, each once. ENOENT / ENOTDIR as readdir. */
export async function listDir(redis: Redis, ks: FsKeyspace, path: string): Promise<DirEntry[]> {
  const byName = new Map<string, DirEntry>();
  for await (const page of listDirPages(redis, ks, path)) for (const e of page) byName.set(e.name, e);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** An inode's pseudo-path (lua/include/fs.lua): `#` and its number. */
const INODE_PATH = /^#[1-9][0-9]*$/;

/**
 * Every kept version of the path, newest mtime first; empty when the path never existed. Those
 * of a name of a hard-linked file are the file's, unless `stored`: then those stored at the
 * path, its `hardlink` versions among them. `path` may also be an inode's pseudo-path `#<n>`
 * (chunk list GC reads every version key as stored).
 */
export async function listVersions(redis: Redis, ks: FsKeyspace, path: string, opts: { stored?: boolean } = {}): Promise<VersionInfo[]> {
  const p = INODE_PATH.test(path) ? path : normalizePath(path);
  const [winner, ...flat] = await fsOp<[number, ...string[]]>(redis, ks, 'versions', p, opts.stored ? ['stored'] : []);
  const all: VersionInfo[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    all.push({ ...decodeVersion(p, flat[i], flat[i + 1]), current: flat[i] === String(winner) });
  }
  return all
    .sort((a, b) => {
      const d = BigInt(b.mtimeNs) - BigInt(a.mtimeNs);
      return d > 0n ? 1 : d < 0n ? -1 : Number(b.id) - Number(a.id);
    });
}

/**
 * Make an old version current again: a new version on `node` that reuses the old one's chunk list
 * (no data is copied), with mtime = now, or just past the current winner's if that is ahead of
 * our clock, so it wins. ENOENT for an unknown id, EINVAL for a tombstone.
 */
export async function restoreVersion(redis: Redis, ks: FsKeyspace, path: string, id: string, node: string, now = nowNs()): Promise<VersionRecord> {
  const p = normalizePath(path);
  if (!/^[1-9][0-9]*$/.test(String(id))) throw new FsError('EINVAL', p, `version id must be a positive integer, got ${JSON.stringify(id)}`);
  checkNode(p, node);
  const [newId, raw] = await fsOp<[number, string]>(redis, ks, 'restore', p, [String(id), node, now, Date.now()]);
  return decodeVersion(p, String(newId), raw);
}

/**
 * rename(2) in one step: the entry (a directory with its whole subtree, up to
 * FS_LIMITS.renameEntries entries, else EXDEV) appears at `to` as new versions from `node`
 * reusing the same chunk lists, and tombstones hide it at `from`. The tombstones carry mtimeNs,
 * or just past the newest mtime now at either end if that is later (returned as `mtimeNs`).
 * Each moved entry keeps its own mtime, as rename(2) does, where that still beats every other
 * node's version at its new path; where it would not, it takes that stamp, so the move wins.
 * Replaces an existing `to` as POSIX does: ENOENT (no `from`, or no parent of `to`), ENOTDIR
 * (dir over non-dir, parent of `to` not a dir), EISDIR (non-dir over dir), ENOTEMPTY (over a
 * non-empty dir), EINVAL (`to` inside `from`). Publishes `from` and `to` (subtree roots).
 * `stIno`: the inode number the mount showed for `from`, which the entry keeps at `to`.
 */
export async function renamePath(redis: Redis, ks: FsKeyspace, from: string, to: string, node: string, mtimeNs = nowNs(), stIno = ''): Promise<{ moved: number; mtimeNs: string }> {
  const f = normalizePath(from);
  const t = normalizePath(to);
  checkNode(f, node);
  const [moved, stamp] = await fsOp<[number, string]>(redis, ks, 'rename', f, [t, node, mtimeNs, Date.now(), stIno]);
  return { moved, mtimeNs: stamp };
}

/**
 * A read of path's content, listing or link target: its atime moves to `now` as Linux's relatime
 * has it (when the atime it shows is not after its mtime or ctime, or is a day old), kept apart
 * from its versions, so a read is no new version and, mostly, no write at all. Says whether it
 * moved, and the atime path shows; when it moved, an atime event goes out for it
 * (subscribeFsEvents).
 */
export async function markAccessed(redis: Redis, ks: FsKeyspace, path: string, now = nowNs()): Promise<{ moved: boolean; atimeNs: string }> {
  const [moved, atimeNs] = await fsOp<[number, string]>(redis, ks, 'access', normalizePath(path), [now]);
  return { moved: moved === 1, atimeNs: String(atimeNs) };
}

/**
 * link(2): `to` becomes another name of the file (or symlink, or special file) at `from`, in one
 * step, made through a mount, or (`source: 'export'`) found in `node`'s export directory by its
 * translator, whose later versions of the file at either name then change the file too. The first link makes the file an inode: its versions from then on are the inode's,
 * which every name shows and every commit through a name changes (see lua/include/fs.lua). Returns the
 * inode number and the link count. ENOENT (no `from`, or no parent of `to`), EPERM (a
 * directory), EEXIST (`to` exists), ENOTDIR (the parent of `to` is not a directory).
 */
export async function linkPath(redis: Redis, ks: FsKeyspace, from: string, to: string, node: string, opts: { source?: 'export' | 'mount'; nowNs?: string; nowMs?: number; stIno?: string } = {}): Promise<{ inode: string; links: number }> {
  const f = normalizePath(from);
  const t = normalizePath(to);
  checkNode(f, node);
  const [inode, links] = await fsOp<[number | string, number]>(redis, ks, 'link', f, [t, node, opts.nowNs ?? nowNs(), opts.nowMs ?? Date.now(), SOURCE_LETTER[opts.source ?? 'mount'], opts.stIno ?? '']);
  return { inode: String(inode), links: Number(links) };
}

/**
 * unlink(2) (`dir: false`: EISDIR on a directory) or rmdir(2) (`dir: true`: ENOTDIR on a
 * non-directory, ENOTEMPTY while it has visible children) as a tombstone from `node`. The
 * tombstone's mtime is mtimeNs, or just past the current version's if that is later, so what
 * the user saw is what goes. ENOENT when nothing is there. `nowMs` (default now) is the
 * tombstone's committedAt and the parent directory's new mtime.
 */
export async function removePath(redis: Redis, ks: FsKeyspace, path: string, node: string, opts: { dir: boolean; mtimeNs?: string; nowMs?: number }): Promise<{ id: string; mtimeNs: string }> {
  const p = normalizePath(path);
  checkNode(p, node);
  const [id, stamp] = await fsOp<[number, string]>(redis, ks, 'remove', p, [node, opts.mtimeNs ?? nowNs(), opts.nowMs ?? Date.now(), opts.dir ? 'rmdir' : 'unlink']);
  return { id: String(id), mtimeNs: stamp };
}

/**
 * Store a file's encoded chunk list under its hash (sha256 of the bytes, checked here). Written
 * once: identical files share it. Returns true when this call wrote it.
 */
export async function putChunkList(redis: Redis, ks: FsKeyspace, hash: string, encoded: Buffer): Promise<boolean> {
  const actual = createHash('sha256').update(encoded).digest('hex');
  if (actual !== hash) throw new FsError('EINVAL', `chunkListHash ${hash}`, `content hashes to ${actual}`);
  return (await redis.set(ks.fsChunkList(hash), encoded, 'NX')) === 'OK';
}

export async function getChunkList(redis: Redis, ks: FsKeyspace, hash: string): Promise<Buffer | undefined> {
  return (await redis.getBuffer(ks.fsChunkList(hash))) ?? undefined;
}

/**
 * Call onPath with every path published on ks.fsEvents (an entry changed there; its parent's
 * listing too; after a rename, everything below it), or `atimeNs` when only the atime a read
 * gave it moved, to that (markAccessed). Uses a connection of its own, as subscribers must; the
 * returned function unsubscribes and closes it.
 */
export function subscribeFsEvents(redis: Redis, ks: FsKeyspace, onPath: (path: string, atimeNs?: string) => void): Promise<() => Promise<void>> {
  return subscribeChannel(redis, ks.fsEvents, (m) => {
    // A path never holds a NUL: the mark of an atime event, `\0<atime> <path>` (fsAccess-1.lua).
    if (!m.startsWith('\0')) return onPath(m);
    const space = m.indexOf(' ');
    onPath(m.slice(space + 1), m.slice(1, space));
  });
}
