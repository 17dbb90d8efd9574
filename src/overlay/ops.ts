import { mkdir, readdir, rm, statfs } from 'node:fs/promises';
import { constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Logger } from 'pino';
import type { LiveChunker } from '../packetfs/index.js';
import type { Xattrs } from '../api/fs.js';
import { encodeXattrs, xattrKept } from '../state/xattrs.js';
import { versionOf, type Backend, type Entry, type NewVersion } from './backend.js';
import { MetaCache } from './cache.js';
import { errnoOf, fsError } from './errors.js';
import type { FastReads } from './fast-read.js';
import type { FileCache } from './file-cache.js';
import { OpenFile, nowNs, type FileIo } from './file.js';
import { InodeState, type Backing, type Passthrough } from './passthrough.js';
import { baseName, checkPath, isWithin, parentOf } from './paths.js';

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IXGRP, O_APPEND, O_EXCL, O_RDONLY, O_TRUNC, O_WRONLY } = constants;
/** Set on a directory: what is made in it takes its group; on a program, who it runs as (node's constants lack them). */
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const { ENOLCK, ESTALE } = osConstants.errno;
const O_ACCMODE = 3;
const DIR_SIZE = 4096;

/** What FUSE handlers learn about the process that asked. */
export interface Caller {
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
}

/** libfuse renames a file unlinked while open to this (no hard_remove): it leaves the namespace. */
const HIDDEN_RE = /^\.fuse_hidden[0-9a-f]+$/;

const UNCHANGED_ID = 0xffffffff;

/** Bit 62: within what a signed 64-bit st_ino holds (a program printing it as intmax_t sees it positive). */
const INO_LINKED = 1n << 62n;

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

/** Tries to chunk a file being written (10, 20, 40, 80 ms apart). */
const STORE_ATTEMPTS = 5;

/** The store's "changed while it was being chunked" (packetfs FileChangedError). */
function changing(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'ECHANGED';
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

interface Handle {
  file: OpenFile;
  flags: number;
  /** The path's kernel inode, and whether the kernel reads and writes this handle's backing file itself. */
  inode?: InodeState;
  pt: boolean;
  /** Bytes its reads got from here (not counting the FUSE threads'). */
  readBytes: number;
  /** Its reads have moved the file's atime (or did not need to): once per handle. */
  accessed: boolean;
}

const DAY_NS = 86_400_000_000_000n;

/** Open with no change of its own since its version was committed: a reopen may take a newer one. */
function unchanged(f: OpenFile): boolean {
  return !f.dirty && f.stagingPath === null && !!f.entry;
}

/**
 * The POSIX operations of the unified filesystem, as async functions that either return or
 * throw an FsError. Metadata comes from the namespace through MetaCache; file content from
 * chunks (the PacketFS fetcher: local store, then peers); a file's changes live in an OpenFile
 * and become a new version when it is flushed, fsynced or released (close-to-open).
 */
export class OverlayFs {
  readonly meta: MetaCache;
  private files = new Map<string, OpenFile>();
  private handles = new Map<number, Handle>();
  /** Per path with open handles: which kind the kernel inode has (passthrough.ts). */
  private inodes = new Map<string, InodeState>();
  /**
   * The lock-table session under which this mount holds a lock on path, if it holds one
   * (locks.ts): commits of such a path are fenced by it.
   */
  lockFence?: (path: string) => string | undefined;
  /** Opens the kernel served by passthrough. */
  passthroughOpens = 0;
  private nextFh = 1;
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
    this.meta = new MetaCache(this.backend, { ttlMs: 60_000, waitMs: 5_000, maxEntries: 200_000 });
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
        if (this.inodes.get(path)?.pt) void this.local(path).catch((err) => this.log.warn({ err, path }, 'could not bring a passthrough file up to date'));
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
    const f = this.files.get(path);
    if (f) await this.refresh(f);
    // An unlinked open file (libfuse's .fuse_hidden name) has no namespace entry to follow.
    if (!f || f.hidden || !unchanged(f)) return f;
    f.refs++;
    let e: Entry | null;
    try {
      e = await f.serialize(() => this.entry(path));
    } finally {
      f.refs--;
    }
    if (this.files.get(path) !== f || !unchanged(f)) return this.files.get(path);
    if (e?.type !== 'file') {
      this.files.delete(path);
      return undefined;
    }
    if (e.manifest !== f.entry?.manifest) {
      // Handles already open must not mix versions: their reads come here, from the new one,
      // or from their backing file, which gets the new version's bytes first.
      f.dropFastReads(this.io);
      const b = this.backingOf(f);
      if (b && e.manifest) {
        try {
          await b.become(this.opts.fileCache!, this.backend, e.manifest, e.size);
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

  /** f's passthrough backing file, while its inode has one holding f's content. */
  private backingOf(f: OpenFile): Backing | null {
    const b = this.inodes.get(f.path)?.pt;
    return b && b.owner === f ? b : null;
  }

  /** Take in what the kernel wrote to f's backing file since last looked. */
  private async refresh(f: OpenFile): Promise<void> {
    const b = this.backingOf(f);
    const s = b && (await b.changes());
    if (!b || !s) return;
    b.manifest = null;
    f.changedInBacking(Number(s.size), s.mtimeNs, s.ctimeNs);
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
    return { type: 'file', mode: f.mode, uid: f.uid, gid: f.gid, size: f.size, mtimeNs: f.mtimeNs, ...(f.atimeNs === undefined ? {} : { atimeNs: f.atimeNs }), committedAt: Number(f.ctimeNs / 1_000_000n), manifest: f.entry?.manifest, xattrs: f.xattrs, ...linked };
  }

  /**
   * The parent of a new entry must be an existing directory; returns the owner a new entry in
   * it gets: the caller, but the directory's group when it is setgid (and a new directory in it
   * is setgid too), as on ext4.
   */
  private async parentDir(path: string, caller: Caller): Promise<{ uid: number; gid: number; setgid: number }> {
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
    for (const [p, f] of this.files) if (!f.hidden && !unchanged(f) && parentOf(p) === path) names.add(baseName(p));
    this.accessed(path);
    return ['.', '..', ...names];
  }

  private newHandle(file: OpenFile, flags: number): number {
    while (this.handles.has(this.nextFh)) this.nextFh = this.nextFh >= 0x7fffffff ? 1 : this.nextFh + 1;
    const fh = this.nextFh++;
    this.handles.set(fh, { file, flags, pt: false, readBytes: 0, accessed: false });
    file.refs++;
    return fh;
  }

  /**
   * A new handle's kind (passthrough.ts InodeState): passthrough when its inode has a backing
   * file already (the kernel allows nothing else then), or is idle and the open may start one:
   * read-only, of a committed version the file cache holds whole. Else a cached open.
   */
  private async chooseKind(path: string, fh: number, flags: number): Promise<void> {
    const h = this.handles.get(fh)!;
    const state = this.inodes.get(path) ?? new InodeState();
    this.inodes.set(path, state);
    h.inode = state;
    const decided = state.deciding.then(async () => {
      const f = h.file;
      const pt = this.opts.passthrough;
      if (state.pt && pt) {
        const b = state.pt;
        b.handles.add(fh);
        h.pt = true;
        await this.joinBacking(b, f, flags);
        pt.reply(fh, b);
        this.passthroughOpens++;
        return;
      }
      const cache = this.opts.fileCache;
      const m = f.entry?.manifest;
      // One backing file per copy: two paths of the same content share a copy, and a writer of
      // one would change the other's bytes.
      if (state.idle && pt?.enabled && cache && m && f.clean && !f.hidden && (flags & O_ACCMODE) === O_RDONLY && !(flags & O_TRUNC) && cache.has(m) && !cache.inUse(m)) {
        const b = await pt.backing(cache, m);
        if (b && state.idle && f.clean && f.entry?.manifest === m) {
          b.owner = f;
          b.handles.add(fh);
          state.pt = b;
          h.pt = true;
          cache.use(m);
          pt.reply(fh, b);
          this.passthroughOpens++;
          return;
        }
        if (b) await pt.close(cache, b);
      }
      state.cached++;
    });
    state.deciding = decided.catch(() => undefined);
    await decided;
  }

  /** A new passthrough handle on b, through which f is opened: b must hold f's content. */
  private async joinBacking(b: Backing, f: OpenFile, flags: number): Promise<void> {
    const cache = this.opts.fileCache!;
    if (b.owner !== f) {
      // The path's file is another one now (deleted and made again elsewhere, say): one inode,
      // one backing file, which takes its content.
      b.owner = f;
      if (f.entry?.manifest && f.clean) await b.become(cache, this.backend, f.entry.manifest, f.size);
      else await this.truncateBacking(b, f, 0);
    } else if (f.entry?.manifest && f.clean) {
      await b.become(cache, this.backend, f.entry.manifest, f.size);
    }
    if (flags & O_TRUNC) await this.truncateBacking(b, f, 0);
    else if ((flags & O_ACCMODE) !== O_RDONLY) await b.detach(cache);
  }

  private async truncateBacking(b: Backing, f: OpenFile, size: number): Promise<void> {
    await b.truncate(this.opts.fileCache!, size);
    const now = nowNs();
    f.changedInBacking(size, now, now);
  }

  /** Truncate f's content, wherever it is. */
  private truncateFile(f: OpenFile, size: number): Promise<void> {
    const b = this.backingOf(f);
    return b ? this.truncateBacking(b, f, size) : f.truncate(this.io, size);
  }

  /** fh is closed: its inode may go idle (and its backing file with it). */
  private async leaveInode(h: Handle, fh: number): Promise<void> {
    const inode = h.inode;
    if (!inode) return;
    h.inode = undefined;
    if (h.pt && inode.pt) {
      const b = inode.pt;
      b.handles.delete(fh);
      if (b.handles.size === 0) {
        inode.pt = null;
        await this.opts.passthrough!.close(this.opts.fileCache!, b);
      }
    } else if (!h.pt) {
      inode.cached--;
    }
    if (inode.idle) for (const [p, s] of this.inodes) if (s === inode) this.inodes.delete(p);
  }

  /** A handle that read its whole version: keep a copy for passthrough opens (file-cache.ts). */
  private keepCopy(h: Handle, fastBytes: number): void {
    const f = h.file;
    const m = f.entry?.manifest;
    const cache = this.opts.fileCache;
    if (!cache || h.pt || !m || !f.clean || fastBytes + h.readBytes < f.size || !cache.wants(m, f.size)) return;
    cache.fill(m, f.size, (pos, len) => this.backend.readRange(m, pos, len, 4));
  }

  private handle(fh: number, path: string): Handle {
    const h = this.handles.get(fh);
    if (!h) throw fsError('EBADF', path);
    return h;
  }

  async create(path: string, mode: number, flags: number, caller: Caller): Promise<number> {
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
      const v: NewVersion = { type: 'file', ...attrs, size: 0, manifest: await this.backend.emptyManifest() };
      await this.commitEntry(path, v, { exclusive: true });
      // A plain create of the same name on this mount, made while we waited, is the same file.
      if (this.files.has(path)) return this.open(path, flags);
      const f = new OpenFile(path, { ...v, committedAt: Date.now() }, attrs);
      this.files.set(path, f);
      return this.openHandle(f, flags);
    }
    const f = new OpenFile(path, null, attrs);
    f.markDirty();
    this.files.set(path, f);
    this.meta.nameMade(path, attrs.mtimeNs);
    return this.openHandle(f, flags);
  }

  /**
   * `caller`: who opens. An O_TRUNC by anyone but root drops set-uid (and set-gid when the group
   * may execute) as a write does: the kernel sends no mode change for a truncating open
   * (atomic_o_trunc), where it does for write and truncate.
   */
  async open(path: string, flags: number, caller?: Caller): Promise<number> {
    checkPath(path);
    let f = await this.local(path);
    if (!f) {
      const e = await this.entry(path);
      if (!e) throw fsError('ENOENT', path);
      if (e.type === 'dir') throw fsError('EISDIR', path);
      if (e.type !== 'file') throw fsError('EINVAL', path, 'not a regular file');
      // Another open of the same path may have made its OpenFile meanwhile: one per path.
      f = this.files.get(path) ?? new OpenFile(path, e, { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs });
      this.files.set(path, f);
    }
    if (flags & O_TRUNC && caller && caller.uid !== 0 && f.mode & (S_ISUID | S_ISGID)) {
      f.mode &= ~(S_ISUID | (f.mode & S_IXGRP ? S_ISGID : 0));
      f.markDirty();
    }
    return this.openHandle(f, flags);
  }

  private async openHandle(f: OpenFile, flags: number): Promise<number> {
    const fh = this.newHandle(f, flags);
    const h = this.handles.get(fh)!;
    try {
      await this.chooseKind(f.path, fh, flags);
      if (h.pt) return fh;
      if (flags & O_TRUNC) await f.truncate(this.io, 0);
      else if ((flags & O_ACCMODE) !== O_WRONLY) await this.serveFast(f, fh);
    } catch (err) {
      this.handles.delete(fh);
      if (h.pt) this.opts.passthrough?.forget(fh);
      await this.leaveInode(h, fh);
      await this.drop(f);
      throw err;
    }
    return fh;
  }

  /** Let the FUSE threads serve fh's reads while its file is the committed version (fast-read.ts). */
  private async serveFast(f: OpenFile, fh: number): Promise<void> {
    const fast = this.io.fastReads;
    const manifest = f.entry?.manifest;
    if (!fast || !f.clean || !manifest) return;
    let chunks;
    try {
      chunks = await this.backend.chunkList(manifest);
    } catch (err) {
      this.log.debug({ err, path: f.path }, 'no chunk list: reads go through the fetcher');
      return;
    }
    // A write, a newer version or a close may have come meanwhile.
    if (!f.clean || f.entry?.manifest !== manifest || this.handles.get(fh)?.file !== f) return;
    if (fast.add(fh, chunks)) f.fastHandles.add(fh);
  }

  /** Bytes of reads answered here (the rest of a mount's reads are answered on the FUSE threads). */
  readBytes = 0;

  async read(path: string, fh: number, buf: Buffer, len: number, offset: number): Promise<number> {
    const h = this.handle(fh, path);
    const n = await h.file.read(this.io, buf, len, offset);
    this.readBytes += n;
    h.readBytes += n;
    return n;
  }

  async write(path: string, fh: number, buf: Buffer, len: number, offset: number): Promise<number> {
    const h = this.handle(fh, path);
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
    const h = this.handle(fh, path);
    const f = h.file;
    await this.refresh(f);
    f.changedSinceClose = false;
    if (f.contentDirty && f.size > 0) await this.commitFile(f);
    // A close after reads (here, on the FUSE threads, or by the kernel from a passthrough
    // backing file, which it opens only for reading) moves the atime, before the close returns.
    if (!h.accessed && (h.readBytes > 0 || h.pt || (f.fastHandles.has(fh) && (this.io.fastReads?.served(fh) ?? 0) > 0))) {
      h.accessed = true;
      this.accessed(path);
    }
  }

  async fsync(path: string, fh: number): Promise<void> {
    const f = this.handle(fh, path).file;
    await this.refresh(f);
    await this.commitFile(f);
  }

  async release(path: string, fh: number): Promise<void> {
    const h = this.handle(fh, path);
    this.handles.delete(fh);
    const fastBytes = (h.file.fastHandles.delete(fh) && this.io.fastReads?.drop(fh)) || 0;
    try {
      await this.refresh(h.file);
      await this.commitFile(h.file);
      this.keepCopy(h, fastBytes);
    } finally {
      await this.leaveInode(h, fh);
      await this.drop(h.file);
    }
  }

  /**
   * One user of f less; the last one commits what a truncate or setattr left to it (withFile)
   * and forgets the file. That may come after the last release took its version: a utimensat
   * right after close (rsync) finds the file still open, with that release under way.
   */
  private async drop(f: OpenFile): Promise<void> {
    if (--f.refs > 0) return;
    try {
      if (f.commitWhenDropped) {
        // Held while it commits: an open meanwhile shares it, and the last user then is that.
        f.refs++;
        try {
          await this.commitFile(f);
        } finally {
          f.refs--;
        }
      }
    } finally {
      if (f.refs === 0) {
        if (this.files.get(f.path) === f) this.files.delete(f.path);
        await f.close();
      }
    }
  }

  /** Make an OpenFile's changes a new version: chunk the content if it changed, then commit. */
  private commitFile(f: OpenFile): Promise<void> {
    return f.serialize(async () => {
      f.commitWhenDropped = false;
      if (!f.dirty || f.hidden) return;
      if (f.lockLost) throw fsError('EIO', f.path, 'a lock on it was lost (this mount was cut off from the lock table): changes made under it are not committed');
      const content = f.contentDirty;
      const touch = f.attrsTouched;
      f.dirty = false;
      f.contentChanged = false;
      f.attrsTouched = false;
      try {
        const { manifest, size, copiedTo } = content ? await this.storeContent(f) : { manifest: f.entry?.manifest, size: f.size, copiedTo: undefined };
        if (content && manifest) await this.backend.ensureCopies(f.path, manifest, copiedTo);
        let v: NewVersion = { type: 'file', mode: f.mode, uid: f.uid, gid: f.gid, size, mtimeNs: f.mtimeNs, ...(f.atimeNs === undefined ? {} : { atimeNs: f.atimeNs }), manifest, xattrs: f.xattrs };
        // The version's ctime is that of the file's last change, as fstat showed it while open,
        // not the close's: on ext4 a close changes no time.
        const atMs = Number(f.ctimeNs / 1_000_000n);
        let r;
        try {
          r = await this.commitEntry(f.path, v, { written: content, touch, atMs });
        } catch (err) {
          if (errnoOf(err) !== ESTALE) throw err;
          // Manifest GC took the manifest since it was stored (or since the file was opened):
          // store the content again, which puts it back, and commit once more.
          v = { ...v, ...(await this.storeContent(f)) };
          r = await this.commitEntry(f.path, v, { written: content, touch, atMs });
        }
        // New content that had to beat a later version took a later mtime (commitVersion).
        if (r.mtimeNs !== v.mtimeNs && f.mtimeNs === v.mtimeNs) f.mtimeNs = r.mtimeNs;
        f.committed({ ...v, mtimeNs: r.mtimeNs, committedAt: atMs, ...(r.inode ? { inode: r.inode, links: r.links } : {}) });
        // A backing file whose changes this stored holds that version now (unless written to since).
        const b = this.backingOf(f);
        if (b && content && b.manifest === null && !f.contentChanged && v.manifest) b.manifest = v.manifest;
      } catch (err) {
        f.dirty = true;
        f.contentChanged ||= content;
        f.attrsTouched ||= touch;
        // Still being written through another handle: that one's close commits it.
        if (changing(err) && f.refs > 1) return;
        throw err;
      }
    });
  }

  /** `copiedTo`: peers the live chunker streamed the chunks to (their copies are made first). */
  private async storeContent(f: OpenFile): Promise<{ manifest: string; size: number; copiedTo?: string[] }> {
    if (f.size === 0) return { manifest: await this.backend.emptyManifest(), size: 0 };
    const b = this.backingOf(f);
    if (b && b.manifest === null) return this.storeFile(b.contentPath);
    const chunks = f.takeChunks();
    if (chunks) {
      const stored = await chunks;
      return { ...(await this.backend.storeChunks(stored)), ...(stored.copiedTo ? { copiedTo: stored.copiedTo } : {}) };
    }
    return this.storeFile(await f.materialize(this.io));
  }

  /**
   * Chunk a file holding an OpenFile's content (its staging or backing file), which other
   * handles may be writing right now: the store refuses bytes that changed while it read them,
   * so it tries again, a little later each time, for a quiet moment.
   */
  private async storeFile(path: string): Promise<{ manifest: string; size: number }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.backend.storeFile(path);
      } catch (err) {
        if (!changing(err) || attempt === STORE_ATTEMPTS - 1) throw err;
        await new Promise((r) => setTimeout(r, 10 << attempt));
      }
    }
  }

  /** Run fn on the OpenFile of path (opening one for the moment if none is), and commit the change. */
  private async withFile(path: string, fn: (f: OpenFile) => Promise<void> | void): Promise<void> {
    let f = await this.local(path);
    if (!f) {
      const e = await this.mustExist(path);
      if (e.type === 'dir') throw fsError('EISDIR', path);
      f = this.files.get(path) ?? new OpenFile(path, e, e);
      this.files.set(path, f);
    }
    f.refs++;
    try {
      await fn(f);
      // While content is being written (cp -a, tar: fchmod, futimens, then close), the change
      // goes with it, at the release of the last handle (or its drop here). Otherwise it is
      // committed now: a chmod of a file some program holds open holds on every node at once.
      if (f.contentDirty) f.commitWhenDropped = true;
      else await this.commitFile(f);
    } finally {
      await this.drop(f);
    }
  }

  async truncate(path: string, size: number): Promise<void> {
    checkPath(path);
    await this.withFile(path, (f) => this.truncateFile(f, size));
  }

  async ftruncate(path: string, fh: number, size: number): Promise<void> {
    await this.truncateFile(this.handle(fh, path).file, size);
  }

  /** chmod/chown/utimens/setxattr: on a file, through its OpenFile; on a directory or symlink, a new version at once. */
  private async setAttrs(path: string, patch: (a: Attrs) => void): Promise<void> {
    checkPath(path);
    const e = (await this.local(path)) ? null : await this.mustExist(path);
    if (e && e.type !== 'file') {
      const v = versionOf(e);
      patch(v);
      await this.commitEntry(path, v, { touch: true });
      return;
    }
    await this.withFile(path, (f) => {
      patch(f);
      f.ctimeNs = nowNs();
      f.attrsTouched = true;
      f.markDirty();
    });
  }

  /** Commit a version and keep it as the cached answer for path when it became current. */
  private async commitEntry(path: string, v: NewVersion, opts: { exclusive?: boolean; written?: boolean; touch?: boolean; atMs?: number } = {}): Promise<{ current: boolean; mtimeNs: bigint; inode?: string; links?: number }> {
    if (path === '/') throw fsError('EPERM', path, 'the root of the unified filesystem cannot be changed');
    this.meta.expect(path);
    let r: { current: boolean; published: boolean; mtimeNs: bigint; inode?: string; links?: number; stIno?: string } = { current: false, published: false, mtimeNs: v.mtimeNs };
    const at = opts.atMs ?? Date.now();
    // A path locked here is committed only while the lock holds, checked in the commit's own step.
    const lockSession = this.lockFence?.(path);
    try {
      r = await this.backend.commit(path, v, { ...opts, atMs: at, ...(lockSession ? { lockSession } : {}) });
      return r;
    } catch (err) {
      if (errnoOf(err) !== ENOLCK) throw err;
      const f = this.files.get(path);
      if (f) f.lockLost = true;
      throw fsError('EIO', path, 'a lock on it was lost (this mount was cut off from the lock table): changes made under it are not committed');
    } finally {
      // A repeat of the latest version publishes no event for the cache to swallow.
      this.meta.settle(path, r.current && r.published, { ...v, mtimeNs: r.mtimeNs, committedAt: at, ...(r.inode ? { inode: r.inode, links: r.links } : {}), ...(r.stIno ? { stIno: r.stIno } : {}) }, opts.exclusive);
    }
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

  async mkdir(path: string, mode: number, caller: Caller): Promise<void> {
    checkPath(path);
    const owner = await this.parentDir(path, caller);
    await this.mustNotExist(path);
    await this.commitEntry(path, { type: 'dir', mode: S_IFDIR | (mode & 0o7777) | owner.setgid, uid: owner.uid, gid: owner.gid, size: 0, mtimeNs: nowNs() }, { exclusive: true });
  }

  /**
   * mknod(2): a regular file (empty, as creat and close), or a special file: a fifo, a socket
   * (bind() of a Unix socket makes one) or a device node. A special file is a namespace entry
   * like a symlink, the same on every node; what it does is the kernel's, on the node that
   * opens it (a fifo joins the processes of one node, a device node opens that node's device).
   */
  async mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<void> {
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
    await this.commitEntry(path, { type: 'special', mode: kind | (mode & 0o7777), uid: owner.uid, gid: owner.gid, size: 0, mtimeNs: nowNs(), ...dev }, { exclusive: true });
  }

  async symlink(target: string, path: string, caller: Caller): Promise<void> {
    checkPath(path);
    const owner = await this.parentDir(path, caller);
    await this.mustNotExist(path);
    await this.commitEntry(path, { type: 'symlink', mode: S_IFLNK | 0o777, uid: owner.uid, gid: owner.gid, size: Buffer.byteLength(target), mtimeNs: nowNs(), target }, { exclusive: true });
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
    const f = this.files.get(path);
    if (f && (f.hidden || !f.entry)) {
      // Only this mount knows it: a hidden file libfuse now deletes, or a new file never committed.
      f.hidden = true;
      this.files.delete(path);
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
    if (f && this.files.get(path) === f) {
      f.hidden = true;
      this.files.delete(path);
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
    const f = this.files.get(from);
    if (f && !f.hidden) {
      await this.refresh(f);
      await this.commitFile(f);
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
    for (const [p, f] of this.files) {
      if (!f.hidden && !unchanged(f) && parentOf(p) === path) throw fsError('ENOTEMPTY', path);
    }
    await this.backend.remove(path, 'rmdir', nowNs());
    this.meta.invalidate(path);
  }

  async rename(from: string, to: string): Promise<void> {
    checkPath(from);
    checkPath(to);
    const f = this.files.get(from);
    if (HIDDEN_RE.test(baseName(to)) && f) {
      // An open file being unlinked: it leaves the namespace now, lives on for its handles.
      if (f.entry) await this.backend.remove(from, 'unlink', nowNs());
      this.meta.invalidate(from);
      if (f.entry?.inode) this.meta.dropInode(f.entry.inode);
      this.files.delete(from);
      f.hidden = true;
      f.path = to;
      this.files.set(to, f);
      this.moveInodes(from, to);
      return;
    }
    // Uncommitted content moves with the name: commit it under the old name first.
    if (f) {
      await this.refresh(f);
      await this.commitFile(f);
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
      if (!(await this.commitEntry(to, v)).current) await this.commitEntry(to, { ...v, mtimeNs: stampNs });
    }
    for (const [p, of] of [...this.files]) {
      if (isWithin(p, from) && !of.hidden) {
        this.files.delete(p);
        of.path = to + p.slice(from.length);
        this.files.set(of.path, of);
      }
    }
    this.moveInodes(from, to);
  }

  /** libfuse moves its inodes with a rename through the mount: their states move too. */
  private moveInodes(from: string, to: string): void {
    for (const [p, s] of [...this.inodes]) {
      if (!isWithin(p, from)) continue;
      this.inodes.delete(p);
      this.inodes.set(to + p.slice(from.length), s);
    }
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
    const f = this.files.get(path);
    if (!f) return;
    await this.refresh(f);
    await this.commitFile(f);
  }

  /** The file a handle is open on: one object per file here, whatever it is renamed to (locks.ts). */
  fileOf(fh: number): OpenFile | undefined {
    return this.handles.get(fh)?.file;
  }

  /** Locks on these paths lapsed (locks.ts): their files' unpublished changes are refused. */
  locksLost(paths: string[]): void {
    for (const p of paths) {
      const f = this.files.get(p);
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
    for (const f of this.files.values()) {
      try {
        if (f.changedSinceClose) await f.serialize(async () => undefined);
        else await this.commitFile(f);
      } catch (err) {
        this.log.error({ err, path: f.path }, 'could not commit a closed file at unmount');
      }
      if (f.changedSinceClose && f.dirty && !f.hidden) abandoned.push(f.path);
    }
    return abandoned;
  }
}
