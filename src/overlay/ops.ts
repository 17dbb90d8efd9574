import { mkdir, readdir, rm, statfs } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { Logger } from 'pino';
import type { LiveChunker } from '../packetfs/index.js';
import type { Xattrs } from '../api/fs.js';
import { encodeXattrs, XATTR_PREFIXES, xattrKept } from '../state/xattrs.js';
import { versionOf, type Backend, type Entry, type NewEntry } from './backend.js';
import { MetaCache } from './cache.js';
import { CommitPipeline } from './commit.js';
import { fsError } from './errors.js';
import type { FastReads } from './fast-read.js';
import type { FileCache } from './file-cache.js';
import { OpenFile, nowNs, type FileIo } from './file.js';
import { HandleTable, O_ACCMODE } from './handles.js';
import type { Passthrough } from './passthrough.js';
import { baseName, checkPath, isWithin, parentOf } from './paths.js';

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IXGRP, O_APPEND, O_EXCL, O_RDONLY, O_TRUNC, O_WRONLY } = constants;
/** Set on a directory: what is made in it takes its group; on a program, who it runs as (node's constants lack them). */
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const DIR_SIZE = 4096;

/** What FUSE handlers learn about the process that asked. */
export interface FuseCaller {
  uid: number;
  gid: number;
  pid: number;
}

export interface Stat {
  /** st_ino: the mount reports its own (use_ino), so that the names of a hard-linked file share one. */
  ino: bigint;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  blksize: number;
  blocks: number;
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
  /**
   * readdir's only: the binding may answer the name's stat with these until anything changes
   * (patches/oswalk-attrs.c), and its getxattr and listxattr when it has no extended attribute.
   */
  keep?: boolean;
  noXattrs?: boolean;
}

export interface OverlayFsOptions {
  backend: Backend;
  /** Directory for staging files (under the node's state dir). Emptied at start. */
  stagingDir: string;
  log: Logger;
  /** Chunks files written front to back while they are written (the FS process has one). */
  liveChunker?: LiveChunker;
  /** Reads of unchanged files served on the FUSE threads (the FS process has them). */
  fastReads?: FastReads;
  /**
   * Whole copies of files read end to end, and the kernel reading them directly (FUSE
   * passthrough) for later opens (the FS process has them where the kernel can).
   */
  fileCache?: FileCache;
  passthrough?: Passthrough;
  /** Told of every change the metadata cache learns of (the binding's kept attributes: fuse.ts); with a path, of its atime alone. */
  attrsChanged?: (path?: string) => void;
}

/** libfuse renames a file unlinked while open to this (no hard_remove): it leaves the namespace. */
const HIDDEN_RE = /^\.fuse_hidden[0-9a-f]+$/;

const UNCHANGED_ID = 0xffffffff;

/** Bit 62: within what a signed 64-bit st_ino holds (a program printing it as intmax_t sees it positive). */
const INO_LINKED = 1n << 62n;

/** libfuse's d_ino of a name whose number it was not told (FUSE_UNKNOWN_INO in fuse.c). */
const FUSE_UNKNOWN_INO = 0xffffffffn;

/**
 * st_ino. An entry's number is 63 bits of a hash of its path, stable on every node and across
 * remounts (the kernel reports the one it got last, libfuse's node ids being per mount), until
 * a rename or a link: the entry keeps the number it showed, as on ext4, carried in the
 * namespace (stIno). A hard-linked file made so without one (by a translator) shows its
 * inode's number in the namespace with bit 62 set. The root's is 1.
 */
function inoOf(path: string, e: Entry): bigint {
  if (e.stIno) return BigInt(e.stIno);
  if (e.inode) return INO_LINKED | BigInt(e.inode);
  if (path === '/') return 1n;
  return pathHash(path) & (INO_LINKED - 1n);
}

/**
 * 64 bits of a path: two 32-bit FNV-1a streams of its UTF-16 units with different offsets, each
 * finished by murmur3's fmix32. On every stat, so not SHA-256 (a tenth of a stat's time here);
 * no adversary chooses paths to collide inode numbers, which only tar, rsync -H and du compare,
 * and then only for files with several links.
 */
function pathHash(path: string): bigint {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
    b ^= b >>> 13;
  }
  const fmix = (h: number): number => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  return (BigInt(fmix(a)) << 32n) | BigInt(fmix(b));
}

/** What chmod, chown, utimens and setxattr change: of a file's OpenFile, or of a new version. */
interface Attrs {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  atimeNs?: bigint;
  xattrs?: Xattrs;
}

/** setxattr's flags (linux/xattr.h). */
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

const DAY_NS = 86_400_000_000_000n;

/** Open with no change of its own since its version was committed: a reopen may take a newer one. */
function unchanged(f: OpenFile): boolean {
  return !f.dirty && f.stagingPath === null && !!f.entry;
}

/**
 * The POSIX operations of the unified filesystem, as async functions that either return or
 * throw an FsError: what fuse.ts calls. Metadata comes from the namespace through MetaCache; file
 * content from chunks (the PacketFS fetcher: local store, then peers); a file's changes live in
 * an OpenFile and become a new version when it is flushed, fsynced or released (close-to-open).
 * This class holds the namespace operations and what a path shows; the open files and handles
 * are the HandleTable's (handles.ts), and making changes versions the CommitPipeline's (commit.ts).
 */
export class OverlayFs {
  readonly meta: MetaCache;
  private readonly handles: HandleTable;
  private readonly commits: CommitPipeline;
  /**
   * The lock-table session under which this mount holds a lock on path, if it holds one
   * (locks.ts): commits of such a path are fenced by it.
   */
  lockFence?: (path: string) => string | undefined;
  private backend: Backend;
  private log: Logger;
  private readonly io: FileIo;

  constructor(private opts: OverlayFsOptions) {
    this.backend = opts.backend;
    this.log = opts.log;
    this.io = {
      stagingDir: opts.stagingDir,
      backend: opts.backend,
      ...(opts.liveChunker ? { liveChunker: opts.liveChunker } : {}),
      ...(opts.fastReads ? { fastReads: opts.fastReads } : {}),
    };
    this.meta = new MetaCache(this.backend, { ttlMs: 60_000, waitMs: 5_000, maxEntries: 200_000, ...(opts.attrsChanged ? { changed: opts.attrsChanged } : {}) });
    this.handles = new HandleTable({
      backend: opts.backend,
      log: opts.log,
      io: this.io,
      ...(opts.fileCache ? { fileCache: opts.fileCache } : {}),
      ...(opts.passthrough ? { passthrough: opts.passthrough } : {}),
      commit: (f) => this.commits.commitFile(f),
    });
    this.commits = new CommitPipeline({ backend: opts.backend, meta: this.meta, io: this.io, handles: this.handles, lockFence: (path) => this.lockFence?.(path) });
  }

  /** Opens the kernel served by passthrough. */
  get passthroughOpens(): number {
    return this.handles.passthroughOpens;
  }

  async start(): Promise<void> {
    // Staging files of a previous run belong to handles that no longer exist.
    await mkdir(this.opts.stagingDir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.opts.stagingDir)) await rm(`${this.opts.stagingDir}/${f}`, { force: true });
    this.backend.watch(
      (path, atimeNs) => {
        // A read moved an atime: that of the entry held (nothing else changed, nothing to ask).
        if (atimeNs !== undefined) {
          this.meta.accessed(path, atimeNs);
          return;
        }
        this.meta.event(path);
        // The kernel reads a passthrough file without asking us, so a newer version from
        // elsewhere goes into its backing file now, not at the next stat.
        if (this.handles.backed(path)) void this.local(path).catch((err) => this.log.warn({ err, path }, 'could not bring a passthrough file up to date'));
      },
      () => this.meta.clear(),
    );
  }

  private entry(path: string): Promise<Entry | null> {
    return this.meta.get(path);
  }

  /**
   * The OpenFile of path while it is what the path shows here: while it has changes of its own,
   * or follows the namespace. A file open here without changes takes a newer version at once (a
   * chmod or a write on another node): the kernel keeps one inode, one size and one page cache
   * per path, so every handle on it reads the path's current version, as over NFS. A delete
   * detaches it: the path is gone, and its handles read on what they opened, as after unlink(2).
   * It is held while Redis answers, after this mount's own commit of it under way is in the
   * cache, so the release of its last handle cannot close it meanwhile.
   */
  private async local(path: string): Promise<OpenFile | undefined> {
    const f = this.handles.files.get(path);
    if (f) await this.handles.refresh(f);
    // An unlinked open file (libfuse's .fuse_hidden name) has no namespace entry to follow.
    if (!f || f.hidden || !unchanged(f)) return f;
    f.refs++;
    let e: Entry | null;
    try {
      e = await f.serialize(() => this.entry(path));
    } finally {
      f.refs--;
    }
    if (this.handles.files.get(path) !== f || !unchanged(f)) return this.handles.files.get(path);
    if (e?.type !== 'file') {
      this.handles.files.delete(path);
      return undefined;
    }
    if (e.chunkListHash !== f.entry?.chunkListHash) {
      // Handles already open must not mix versions: their reads come here, from the new one,
      // or from their backing file, which gets the new version's bytes first.
      f.dropFastReads(this.io);
      const b = this.handles.backingOf(f);
      if (b && e.chunkListHash) {
        try {
          await b.become(this.opts.fileCache!, this.backend, e.chunkListHash, e.size);
        } catch (err) {
          // Its chunks cannot be had now (a peer away): the handles read on the version they
          // have, which the path shows here until a later look gets the new one.
          this.log.warn({ err, path }, 'could not bring a passthrough file to its newer version; trying again at the next look');
          return f;
        }
      }
    }
    f.adopt(e);
    return f;
  }

  private async mustExist(path: string): Promise<Entry> {
    const f = await this.local(path);
    if (f) return this.fileEntry(f);
    const e = await this.entry(path);
    if (!e) throw fsError('ENOENT', path);
    return e;
  }

  private fileEntry(f: OpenFile): Entry {
    const linked = f.entry?.inode ? { inode: f.entry.inode, links: f.entry.links } : {};
    return { type: 'file', mode: f.mode, uid: f.uid, gid: f.gid, size: f.size, mtimeNs: f.mtimeNs, ...(f.atimeNs === undefined ? {} : { atimeNs: f.atimeNs }), committedAt: Number(f.ctimeNs / 1_000_000n), chunkListHash: f.entry?.chunkListHash, xattrs: f.xattrs, ...linked };
  }

  /**
   * The parent of a new entry must be an existing directory; returns the owner a new entry in
   * it gets: the caller, but the directory's group when it is setgid (and a new directory in it
   * is setgid too), as on ext4.
   */
  private async parentDir(path: string, caller: FuseCaller): Promise<{ uid: number; gid: number; setgid: number }> {
    const parent = parentOf(path);
    const e = await this.entry(parent);
    if (!e) throw fsError('ENOENT', parent);
    if (e.type !== 'dir') throw fsError('ENOTDIR', parent);
    return e.mode & S_ISGID ? { uid: caller.uid, gid: e.gid, setgid: S_ISGID } : { uid: caller.uid, gid: caller.gid, setgid: 0 };
  }

  private async mustNotExist(path: string): Promise<void> {
    if ((await this.local(path)) || (await this.entry(path))) throw fsError('EEXIST', path);
  }

  async getattr(path: string): Promise<Stat> {
    return this.stat(path, await this.mustExist(checkPath(path)));
  }

  private stat(path: string, e: Entry): Stat {
    const ctime = BigInt(e.committedAt) * 1_000_000n;
    // A directory shows the size of one ext4 block, as a small directory on ext4 does (du, ls -l).
    const size = e.type === 'dir' ? DIR_SIZE : e.size;
    return {
      ino: inoOf(path, e),
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size,
      ...(e.rdev ? { rdev: e.rdev } : {}),
      // A directory's link count: its own name, its '.', and each subdirectory's '..'.
      nlink: e.type === 'dir' ? 2 + (e.subdirs ?? 0) : e.links ?? 1,
      blksize: 128 * 1024,
      blocks: Math.ceil(size / 512),
      atime: e.atimeNs ?? e.mtimeNs,
      mtime: e.mtimeNs,
      ctime: ctime > e.mtimeNs ? ctime : e.mtimeNs,
    };
  }

  async readdir(path: string): Promise<string[]> {
    checkPath(path);
    const e = await this.mustExist(path);
    if (e.type !== 'dir') throw fsError('ENOTDIR', path);
    const names = new Set(await this.meta.list(path));
    // Files with changes not committed yet (a new file is committed at its release): what
    // local() shows without asking the namespace.
    for (const [p, f] of this.handles.files) if (!f.hidden && !unchanged(f) && parentOf(p) === path) names.add(baseName(p));
    this.accessed(path);
    return ['.', '..', ...names];
  }

  /**
   * What readdir tells the kernel of each name it answered (in that order): the type and number
   * of its directory entry (d_type, d_ino). With a known type, find, fts and ls without -l tell
   * directories from the rest without a stat of each name: for find over a million files, a
   * million FUSE requests fewer. From what readdir's listing cached (cache.ts fetches the
   * attributes with the names); a name it does not hold (a new file not yet committed, one the
   * cache let go) shows type and number unknown (DT_UNKNOWN), as every name did before.
   */
  direntStats(path: string, names: readonly string[]): Stat[] {
    const unknown: Stat = { ino: FUSE_UNKNOWN_INO, mode: 0, uid: 0, gid: 0, size: 0, nlink: 0, blksize: 0, blocks: 0, atime: 0n, mtime: 0n, ctime: 0n };
    return names.map((name) => {
      if (name === '..') return unknown;
      const p = name === '.' ? path : path === '/' ? `/${name}` : `${path}/${name}`;
      const f = this.handles.files.get(p);
      const e = f && !f.hidden && !unchanged(f) ? undefined : this.meta.peek(p);
      if (!e) return unknown;
      // What a stat would answer, while nothing changes: not an open file's (its handle's to say),
      // nor an entry the cache would ask Redis for again (a directory whose names changed).
      return { ...this.stat(p, e), keep: !f && this.meta.fresh(p), noXattrs: !e.xattrs || Object.keys(e.xattrs).length === 0 };
    });
  }

  async create(path: string, mode: number, flags: number, caller: FuseCaller): Promise<number> {
    checkPath(path);
    const owner = await this.parentDir(path, caller);
    const existing = (await this.local(path)) ?? (await this.entry(path));
    if (existing) {
      if (flags & O_EXCL) throw fsError('EEXIST', path);
      return this.open(path, flags);
    }
    const attrs = { mode: S_IFREG | (mode & 0o7777), uid: owner.uid, gid: owner.gid, mtimeNs: nowNs() };
    if (flags & O_EXCL) {
      // Lock files: another node may be creating the same name right now, and only the
      // namespace can say who came first. So the empty file is a version before create returns.
      const v: NewEntry = { type: 'file', ...attrs, size: 0, chunkListHash: await this.backend.emptyChunkList() };
      await this.commits.commitEntry(path, v, { exclusive: true });
      // A plain create of the same name on this mount, made while we waited, is the same file.
      if (this.handles.files.has(path)) return this.open(path, flags);
      const f = new OpenFile(path, { ...v, committedAt: Date.now() }, attrs);
      this.handles.files.set(path, f);
      return this.handles.open(f, flags);
    }
    const f = new OpenFile(path, null, attrs);
    f.markDirty();
    this.handles.files.set(path, f);
    this.meta.nameMade(path, attrs.mtimeNs);
    return this.handles.open(f, flags);
  }

  /**
   * `caller`: who opens. An O_TRUNC by anyone but root drops set-uid (and set-gid when the group
   * may execute) as a write does: the kernel sends no mode change for a truncating open
   * (atomic_o_trunc), where it does for write and truncate.
   */
  async open(path: string, flags: number, caller?: FuseCaller): Promise<number> {
    checkPath(path);
    let f = await this.local(path);
    if (!f) {
      const e = await this.entry(path);
      if (!e) throw fsError('ENOENT', path);
      if (e.type === 'dir') throw fsError('EISDIR', path);
      if (e.type !== 'file') throw fsError('EINVAL', path, 'not a regular file');
      // Another open of the same path may have made its OpenFile meanwhile: one per path.
      f = this.handles.files.get(path) ?? new OpenFile(path, e, { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs });
      this.handles.files.set(path, f);
    }
    if (flags & O_TRUNC && caller && caller.uid !== 0 && f.mode & (S_ISUID | S_ISGID)) {
      f.mode &= ~(S_ISUID | (f.mode & S_IXGRP ? S_ISGID : 0));
      f.markDirty();
    }
    return this.handles.open(f, flags);
  }

  /** Bytes of reads answered here (the rest of a mount's reads are answered on the FUSE threads). */
  readBytes = 0;

  async read(path: string, fh: number, buf: Buffer, len: number, offset: number): Promise<number> {
    const h = this.handles.get(fh, path);
    const n = await h.file.read(this.io, buf, len, offset);
    this.readBytes += n;
    h.readBytes += n;
    return n;
  }

  async write(path: string, fh: number, buf: Buffer, len: number, offset: number): Promise<number> {
    const h = this.handles.get(fh, path);
    if ((h.flags & O_ACCMODE) === O_RDONLY) throw fsError('EBADF', path);
    return h.file.write(this.io, buf, len, h.flags & O_APPEND ? h.file.size : offset);
  }

  /**
   * close(2): new content becomes a version before close returns, so its errors reach the
   * program and another node that opens the file next sees it (close-to-open). A change of
   * attributes alone, or an empty new file, is committed at release instead, which the kernel
   * does not wait for: `touch`, creat+close and chmod-heavy tools do not pay a Redis round trip.
   */
  async flush(path: string, fh: number): Promise<void> {
    const h = this.handles.get(fh, path);
    const f = h.file;
    await this.handles.refresh(f);
    f.changedSinceClose = false;
    if (f.contentDirty && f.size > 0) await this.commits.commitFile(f, { unlessEmpty: true });
    // A close after reads (here, on the FUSE threads, or by the kernel from a passthrough
    // backing file, which it opens only for reading) moves the atime, before the close returns.
    if (!h.accessed && (h.readBytes > 0 || h.pt || (f.fastHandles.has(fh) && (this.io.fastReads?.served(fh) ?? 0) > 0))) {
      h.accessed = true;
      this.accessed(path);
    }
  }

  async fsync(path: string, fh: number): Promise<void> {
    const f = this.handles.get(fh, path).file;
    await this.handles.refresh(f);
    await this.commits.commitFile(f);
  }

  async release(path: string, fh: number): Promise<void> {
    await this.handles.release(path, fh);
  }

  /** Run fn on the OpenFile of path (opening one for the moment if none is), and commit the change. */
  private async withFile(path: string, fn: (f: OpenFile) => Promise<void> | void): Promise<void> {
    let f = await this.local(path);
    if (!f) {
      const e = await this.mustExist(path);
      if (e.type === 'dir') throw fsError('EISDIR', path);
      f = this.handles.files.get(path) ?? new OpenFile(path, e, e);
      this.handles.files.set(path, f);
    }
    f.refs++;
    try {
      await fn(f);
      // While content is being written (cp -a, tar: fchmod, futimens, then close), the change
      // goes with it, at the release of the last handle (or its drop here). Otherwise it is
      // committed now: a chmod of a file some program holds open holds on every node at once.
      if (f.contentDirty) f.commitWhenDropped = true;
      else await this.commits.commitFile(f);
    } finally {
      await this.handles.drop(f);
    }
  }

  async truncate(path: string, size: number): Promise<void> {
    checkPath(path);
    await this.withFile(path, (f) => this.handles.truncateFile(f, size));
  }

  async ftruncate(path: string, fh: number, size: number): Promise<void> {
    await this.handles.truncateFile(this.handles.get(fh, path).file, size);
  }

  /** chmod/chown/utimens/setxattr: on a file, through its OpenFile; on a directory or symlink, a new version at once. */
  private async setAttrs(path: string, patch: (a: Attrs) => void): Promise<void> {
    checkPath(path);
    const e = (await this.local(path)) ? null : await this.mustExist(path);
    if (e && e.type !== 'file') {
      const v = versionOf(e);
      patch(v);
      await this.commits.commitEntry(path, v, { touch: true });
      return;
    }
    await this.withFile(path, (f) => {
      patch(f);
      f.ctimeNs = nowNs();
      f.attrsTouched = true;
      f.markDirty();
    });
  }

  chmod(path: string, mode: number): Promise<void> {
    return this.setAttrs(path, (a) => {
      a.mode = (a.mode & S_IFMT) | (mode & 0o7777);
    });
  }

  chown(path: string, uid: number, gid: number): Promise<void> {
    return this.setAttrs(path, (a) => {
      if (uid !== UNCHANGED_ID && uid !== -1) a.uid = uid;
      if (gid !== UNCHANGED_ID && gid !== -1) a.gid = gid;
    });
  }

  /** null: UTIME_OMIT (the kernel turns UTIME_NOW into the time). An atime equal to the mtime is not kept apart. */
  utimens(path: string, atime: bigint | null, mtime: bigint | null): Promise<void> {
    return this.setAttrs(path, (a) => {
      const before = a.atimeNs ?? a.mtimeNs;
      if (mtime !== null) a.mtimeNs = mtime;
      const next = atime ?? before;
      a.atimeNs = next === a.mtimeNs ? undefined : next;
    });
  }

  /** An extended attribute's value; ENODATA when the path has none by that name. */
  async getxattr(path: string, name: string): Promise<Buffer> {
    // A namespace the mount keeps nothing of (system., where POSIX ACLs are, or a made-up one)
    // is unsupported, as on a filesystem mounted without ACLs. `ls -l` then asks about ACLs
    // once, not once per file (coreutils remembers the device): a third of its FUSE round trips.
    if (!XATTR_PREFIXES.some((p) => name.startsWith(p))) throw fsError('EOPNOTSUPP', path, `${name}: only user., trusted. and security. attributes are kept`);
    const x = (await this.mustExist(checkPath(path))).xattrs ?? {};
    if (!Object.hasOwn(x, name)) throw fsError('ENODATA', path, name);
    return Buffer.from(x[name], 'base64');
  }

  async listxattr(path: string): Promise<string[]> {
    return Object.keys((await this.mustExist(checkPath(path))).xattrs ?? {});
  }

  /**
   * Set one (a new version, or part of the open file's next one). XATTR_CREATE fails with EEXIST
   * when it is there, XATTR_REPLACE with ENODATA when it is not; past 4 KiB of attributes in all,
   * ENOSPC, as on ext4.
   */
  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    if (!xattrKept(name)) return Promise.reject(fsError('EOPNOTSUPP', path, `${name}: only user., trusted. and security. attributes are kept, not file capabilities`));
    return this.changeXattrs(path, name, (x) => {
      if (flags & XATTR_CREATE && Object.hasOwn(x, name)) throw fsError('EEXIST', path, name);
      if (flags & XATTR_REPLACE && !Object.hasOwn(x, name)) throw fsError('ENODATA', path, name);
      x[name] = value.toString('base64');
    });
  }

  removexattr(path: string, name: string): Promise<void> {
    return this.changeXattrs(path, name, (x) => {
      if (!Object.hasOwn(x, name)) throw fsError('ENODATA', path, name);
      delete x[name];
    });
  }

  private changeXattrs(path: string, name: string, change: (x: Xattrs) => void): Promise<void> {
    return this.setAttrs(path, (a) => {
      const x = { ...a.xattrs };
      change(x);
      try {
        encodeXattrs(x);
      } catch (err) {
        throw fsError('ENOSPC', path, `${name}: ${(err as Error).message}`);
      }
      a.xattrs = Object.keys(x).length ? x : undefined;
    });
  }

  async mkdir(path: string, mode: number, caller: FuseCaller): Promise<void> {
    checkPath(path);
    const owner = await this.parentDir(path, caller);
    await this.mustNotExist(path);
    await this.commits.commitEntry(path, { type: 'dir', mode: S_IFDIR | (mode & 0o7777) | owner.setgid, uid: owner.uid, gid: owner.gid, size: 0, mtimeNs: nowNs() }, { exclusive: true });
  }

  /**
   * mknod(2): a regular file (empty, as creat and close), or a special file: a fifo, a socket
   * (bind() of a Unix socket makes one) or a device node. A special file is a namespace entry
   * like a symlink, the same on every node; what it does is the kernel's, on the node that
   * opens it (a fifo joins the processes of one node, a device node opens that node's device).
   */
  async mknod(path: string, mode: number, rdev: number, caller: FuseCaller): Promise<void> {
    checkPath(path);
    const kind = mode & S_IFMT;
    if (kind === S_IFREG || kind === 0) {
      const fh = await this.create(path, S_IFREG | (mode & 0o7777), O_WRONLY | O_EXCL, caller);
      await this.release(path, fh);
      return;
    }
    if (![S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK].includes(kind)) throw fsError('EINVAL', path, `mknod of file type ${kind.toString(8)}`);
    const owner = await this.parentDir(path, caller);
    await this.mustNotExist(path);
    const dev = kind === S_IFCHR || kind === S_IFBLK ? { rdev } : {};
    await this.commits.commitEntry(path, { type: 'special', mode: kind | (mode & 0o7777), uid: owner.uid, gid: owner.gid, size: 0, mtimeNs: nowNs(), ...dev }, { exclusive: true });
  }

  async symlink(target: string, path: string, caller: FuseCaller): Promise<void> {
    checkPath(path);
    const owner = await this.parentDir(path, caller);
    await this.mustNotExist(path);
    await this.commits.commitEntry(path, { type: 'symlink', mode: S_IFLNK | 0o777, uid: owner.uid, gid: owner.gid, size: Buffer.byteLength(target), mtimeNs: nowNs(), target }, { exclusive: true });
  }

  async readlink(path: string): Promise<string> {
    checkPath(path);
    const e = await this.mustExist(path);
    if (e.type !== 'symlink' || e.target === undefined) throw fsError('EINVAL', path, 'not a symlink');
    this.accessed(path);
    return e.target;
  }

  /**
   * path was read (its content, its listing, its link target): its atime moves as Linux's
   * relatime has it (src/state/fs.ts markAccessed). The namespace is asked only when what this
   * mount shows of path says the atime is due, so most reads cost nothing; the mount shows the
   * new atime at once, and the namespace's answer is not waited for (a read must not wait for
   * Redis, nor fail without it). Nothing when path is not cached (the kernel asks for its
   * attributes before it reads).
   */
  private accessed(path: string): void {
    const e = this.meta.peek(path);
    if (!e || !this.backend.online()) return;
    const now = nowNs();
    const atime = e.atimeNs ?? e.mtimeNs;
    const due = atime <= e.mtimeNs || atime <= BigInt(e.committedAt) * 1_000_000n || now - atime >= DAY_NS;
    if (!due || now <= atime) return;
    this.meta.accessed(path, now);
    // Not due after all (another node's read came first): show the namespace's.
    this.backend.access(path, now).then(
      (atimeNs) => this.meta.accessed(path, atimeNs),
      (err) => this.log.debug({ err, path }, 'could not record the atime of a read'),
    );
  }

  async unlink(path: string): Promise<void> {
    checkPath(path);
    const f = this.handles.files.get(path);
    if (f && (f.hidden || !f.entry)) {
      // Only this mount knows it: a hidden file libfuse now deletes, or a new file never committed.
      f.hidden = true;
      this.handles.files.delete(path);
      return;
    }
    // (Other names of a hard-linked file: when this one is cached, so is what it is.)
    const inode = this.meta.peek(path)?.inode;
    this.meta.expect(path);
    let done = false;
    const at = Date.now();
    try {
      await this.backend.remove(path, 'unlink', nowNs(), at);
      done = true;
    } finally {
      this.meta.settle(path, done, null, false, at);
    }
    if (inode) this.meta.dropInode(inode);
    // Still held: libfuse renames a file unlinked while open (rename, above), but these
    // operations keep the same promise without it: what its release commits must not bring it back.
    if (f && this.handles.files.get(path) === f) {
      f.hidden = true;
      this.handles.files.delete(path);
    }
  }

  /**
   * link(2): `to` becomes another name of the file at `from` (of any type but a directory, which
   * the kernel refuses first), on every node. Content not committed yet goes with the file: it
   * is committed first, as for a rename. (What the kernel cached of the file, a link count of
   * 1, goes in the addon: patches/oswalk-passthrough.c ow_reply_attrs.)
   */
  async link(from: string, to: string): Promise<void> {
    checkPath(from);
    checkPath(to);
    const f = this.handles.files.get(from);
    if (f && !f.hidden) {
      await this.handles.refresh(f);
      await this.commits.commitFile(f);
    }
    const src = await this.mustExist(from);
    const inode = src.inode;
    await this.backend.link(from, to, undefined, inoOf(from, src));
    // Every name shows the file with its new link count and ctime (the events say so too, but
    // the kernel asks for `to` as soon as this returns).
    this.meta.invalidate(from);
    this.meta.invalidate(to);
    if (inode) this.meta.dropInode(inode);
  }

  async rmdir(path: string): Promise<void> {
    checkPath(path);
    for (const [p, f] of this.handles.files) {
      if (!f.hidden && !unchanged(f) && parentOf(p) === path) throw fsError('ENOTEMPTY', path);
    }
    await this.backend.remove(path, 'rmdir', nowNs());
    this.meta.invalidate(path);
  }

  async rename(from: string, to: string): Promise<void> {
    checkPath(from);
    checkPath(to);
    const f = this.handles.files.get(from);
    if (HIDDEN_RE.test(baseName(to)) && f) {
      // An open file being unlinked: it leaves the namespace now, lives on for its handles.
      if (f.entry) await this.backend.remove(from, 'unlink', nowNs());
      this.meta.invalidate(from);
      if (f.entry?.inode) this.meta.dropInode(f.entry.inode);
      this.handles.files.delete(from);
      f.hidden = true;
      f.path = to;
      this.handles.files.set(to, f);
      this.handles.moveInodes(from, to);
      return;
    }
    // Uncommitted content moves with the name: commit it under the old name first.
    if (f) {
      await this.handles.refresh(f);
      await this.commits.commitFile(f);
    }
    const moved = await this.mustExist(from);
    const replaced = this.meta.peek(to)?.inode;
    const { stampNs } = await this.backend.rename(from, to, nowNs(), inoOf(from, moved));
    this.meta.invalidate(from);
    this.meta.invalidate(to);
    for (const inode of new Set([moved.inode, replaced])) if (inode) this.meta.dropInode(inode);
    // (A hard link's name moves alone: its file, and so its mtime, stays as it was.)
    if (moved.type !== 'dir' && !moved.inode && moved.mtimeNs < stampNs) {
      // The namespace stamps a moved entry with a new mtime so the move wins on every node;
      // rename(2) keeps the file's mtime (rsync, mv and make rely on it). Show the original
      // again where that still wins, else keep the stamp.
      const v = versionOf(moved);
      if (!(await this.commits.commitEntry(to, v)).current) await this.commits.commitEntry(to, { ...v, mtimeNs: stampNs });
    }
    for (const [p, of] of [...this.handles.files]) {
      if (isWithin(p, from) && !of.hidden) {
        this.handles.files.delete(p);
        of.path = to + p.slice(from.length);
        this.handles.files.set(of.path, of);
      }
    }
    this.handles.moveInodes(from, to);
  }

  async statfs(): Promise<Record<string, number>> {
    const s = await statfs(this.opts.stagingDir);
    const cap = (n: number) => Math.min(n, 0xffffffff);
    return {
      bsize: s.bsize,
      frsize: s.bsize,
      blocks: cap(s.blocks),
      bfree: cap(s.bfree),
      bavail: cap(s.bavail),
      files: cap(s.files),
      ffree: cap(s.ffree),
      favail: cap(s.ffree),
      fsid: 0x05a1c,
      flag: 0,
      namemax: 255,
    };
  }

  /**
   * A lock on path is about to be granted here (locks.ts): what this mount knows of the path
   * may be older than what the previous holder, on another node, published when it let go, and
   * the namespace's event saying so may not have arrived. Ask again, and bring a file open here
   * without changes of its own to that version.
   */
  async lockTaking(path: string): Promise<void> {
    this.meta.invalidate(path);
    await this.local(path);
  }

  /** A lock on path is about to be let go here: what was written to it here becomes a version first. */
  async lockReleasing(path: string): Promise<void> {
    const f = this.handles.files.get(path);
    if (!f) return;
    await this.handles.refresh(f);
    await this.commits.commitFile(f);
  }

  /** The file a handle is open on: one object per file here, whatever it is renamed to (locks.ts). */
  fileOf(fh: number): OpenFile | undefined {
    return this.handles.fileOf(fh);
  }

  /** Locks on these paths lapsed (locks.ts): their files' unpublished changes are refused. */
  locksLost(paths: string[]): void {
    for (const p of paths) {
      const f = this.handles.files.get(p);
      if (f) f.lockLost = true;
    }
  }

  /**
   * At unmount: commit what was closed but is not committed yet (attributes and empty files are
   * committed at release, which the kernel sends after close(2) returned), and let commits under
   * way finish. A file changed since its last close stays at its last version, as if its writer
   * had crashed: the writer is cut off (ENOTCONN) and knows its write failed, and committing
   * its bytes would make a half-written file the current version on every node. Returns the
   * paths of those files.
   */
  async flushClosed(): Promise<string[]> {
    const abandoned: string[] = [];
    for (const f of this.handles.files.values()) {
      try {
        if (f.changedSinceClose) await f.serialize(async () => undefined);
        else await this.commits.commitFile(f);
      } catch (err) {
        this.log.error({ err, path: f.path }, 'could not commit a closed file at unmount');
      }
      if (f.changedSinceClose && f.dirty && !f.hidden) abandoned.push(f.path);
    }
    return abandoned;
  }
}
