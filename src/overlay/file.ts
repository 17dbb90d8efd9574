import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { LiveChunker, LiveFile, PutFileResult } from '../packetfs/index.js';
import type { Xattrs } from '../api/fs.js';
import type { Backend, Entry } from './backend.js';
import type { FastReads } from './fast-read.js';

/** Sorted, disjoint, merged byte ranges [start, end). */
export class Extents {
  private r: number[] = [];

  add(start: number, end: number): void {
    if (end <= start) return;
    const r = this.r;
    const n = r.length;
    if (n === 0 || start > r[n - 1]) {
      r.push(start, end);
      return;
    }
    if (start >= r[n - 2]) {
      r[n - 1] = Math.max(r[n - 1], end); // the common case: appending to the last range
      return;
    }
    const out: number[] = [];
    let s = start;
    let e = end;
    let placed = false;
    for (let i = 0; i < n; i += 2) {
      const a = r[i];
      const b = r[i + 1];
      if (b < s) out.push(a, b);
      else if (a > e) {
        if (!placed) {
          out.push(s, e);
          placed = true;
        }
        out.push(a, b);
      } else {
        s = Math.min(s, a);
        e = Math.max(e, b);
      }
    }
    if (!placed) out.push(s, e);
    this.r = out;
  }

  clip(size: number): void {
    const out: number[] = [];
    for (let i = 0; i < this.r.length; i += 2) {
      if (this.r[i] >= size) break;
      out.push(this.r[i], Math.min(this.r[i + 1], size));
    }
    this.r = out;
  }

  /** The parts of [start, end) not covered. */
  gaps(start: number, end: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let pos = start;
    for (let i = 0; i < this.r.length && pos < end; i += 2) {
      const a = this.r[i];
      const b = this.r[i + 1];
      if (b <= pos) continue;
      if (a >= end) break;
      if (a > pos) out.push([pos, a]);
      pos = Math.max(pos, b);
    }
    if (pos < end) out.push([pos, end]);
    return out;
  }
}

let stagingSeq = 0;

function nowNs(): bigint {
  return BigInt(Math.round(performance.timeOrigin * 1000 + performance.now() * 1000)) * 1000n;
}
export { nowNs };

const ZERO = Buffer.alloc(1024 * 1024);
function isZero(b: Buffer): boolean {
  for (let off = 0; off < b.length; off += ZERO.length) {
    const n = Math.min(ZERO.length, b.length - off);
    if (!b.subarray(off, off + n).equals(ZERO.subarray(0, n))) return false;
  }
  return true;
}

/** What an OpenFile works with: where staging files go, the chunks, and the live chunker. */
export interface FileIo {
  stagingDir: string;
  backend: Backend;
  liveChunker?: LiveChunker;
  /** Reads served on the FUSE threads, which must stop before the content changes. */
  fastReads?: FastReads;
}

/** A file's content being changed: the bytes written, over the committed version's. */
interface Staging {
  fh: FileHandle;
  path: string;
  written: Extents;
  baseValid: number;
}

/**
 * A file as one mount sees it while it is open: the version it was opened at (its chunks are
 * the "base"), and, from the first change on, its new content in one of two places:
 *  - a file written front to back from empty hands its bytes straight to the live chunker,
 *    which stores them as chunks (no staging copy); its content is then `chunks` until a
 *    commit names them;
 *  - anything else goes to a local staging file. Copy-on-write is lazy: the staging file
 *    holds only what was written (Extents); reads of the rest come from the base chunks,
 *    bytes past `baseValid` (cut off by a truncate) read as zeros (holes of the sparse
 *    staging file). At commit the untouched parts of the base are filled in, zero runs left
 *    as holes, and the whole staging file goes to the chunk store.
 * A file written front to back that is then read, truncated or written elsewhere before a
 * commit moves its chunks into a staging file first (unchunk).
 */
export class OpenFile {
  mode: number;
  uid: number;
  gid: number;
  xattrs: Xattrs | undefined;
  size: number;
  mtimeNs: bigint;
  /** Set apart from the mtime by utimensat (Entry.atimeNs); kept when the content changes, as a write does not read. */
  atimeNs: bigint | undefined;
  ctimeNs: bigint;
  /** Handles open on this file, plus transient users (a truncate by path). */
  refs = 0;
  /** Something (content or attributes) differs from the committed version. */
  dirty = false;
  /** Changed since a handle on it was last closed: a writer may be half-way through. */
  changedSinceClose = false;
  /** A truncate or setattr changed it while its content was being written: its last user commits it (ops.ts withFile, handles.ts drop). */
  commitWhenDropped = false;
  /** Unlinked while open (renamed by libfuse to .fuse_hidden…): never committed again. */
  hidden = false;
  /**
   * A lock on it lapsed while it was open (the mount's lease in the lock table ran out): what was
   * written under that lock must not become a version over what the next holder did (locks.ts).
   */
  lockLost = false;
  /** A setattr (chmod, chown, utimens, setxattr) since the last commit: that commit is a new version even if nothing differs, so ctime moves, as on ext4. */
  attrsTouched = false;
  private staging: Staging | null = null;
  /** The staging file being made. */
  private makingStaging: Promise<Staging> | null = null;
  private commitChain: Promise<unknown> = Promise.resolve();
  /** Handles whose reads the FUSE threads serve from the chunks of `entry` (fast-read.ts). */
  readonly fastHandles = new Set<number>();
  /** End of the last read, to tell sequential reading (worth reading ahead) from random. */
  lastReadEnd = -1;
  /** The live chunker taking this file's bytes; null until the first write, false once it cannot. */
  private live: LiveFile | null | false = null;
  /** The content as the live chunker stored it, once taken from it and until committed or staged. */
  private chunks: Promise<PutFileResult> | null = null;
  private unchunking: Promise<void> | null = null;

  constructor(public path: string, public entry: Entry | null, init: { mode: number; uid: number; gid: number; mtimeNs: bigint }) {
    this.mode = entry?.mode ?? init.mode;
    this.uid = entry?.uid ?? init.uid;
    this.gid = entry?.gid ?? init.gid;
    this.xattrs = entry?.xattrs;
    this.size = entry?.size ?? 0;
    this.mtimeNs = entry?.mtimeNs ?? init.mtimeNs;
    this.atimeNs = entry?.atimeNs;
    this.ctimeNs = entry ? BigInt(entry.committedAt) * 1_000_000n : init.mtimeNs;
  }

  get stagingPath(): string | null {
    return this.staging?.path ?? null;
  }

  /** The content changed since the last commit (attributes alone do not set it). */
  contentChanged = false;

  /** Whether the content differs from the committed version's chunk list. */
  get contentDirty(): boolean {
    return this.contentChanged || this.entry === null;
  }

  private async stage(io: FileIo): Promise<Staging> {
    await this.unchunk(io);
    if (this.staging) return this.staging;
    // One staging file, however many writes come at once (the kernel writes back the dirty
    // pages of a shared mmap in parallel requests): each making its own lost all but one's bytes.
    this.makingStaging ??= (async () => {
      const path = join(io.stagingDir, `${process.pid}-${++stagingSeq}`);
      const fh = await open(path, 'w+', 0o600);
      if (this.size > 0) await fh.truncate(this.size);
      this.staging = { fh, path, written: new Extents(), baseValid: this.entry?.chunkListHash ? this.size : 0 };
      return this.staging;
    })().finally(() => {
      this.makingStaging = null;
    });
    return this.makingStaging;
  }

  /** Content or attributes changed: a new version at the next commit. */
  markDirty(): void {
    this.dirty = true;
    this.changedSinceClose = true;
  }

  private touch(): void {
    // A write does not read: the atime stays where it was (the mtime, until now, when none was set).
    this.atimeNs ??= this.mtimeNs;
    this.mtimeNs = nowNs();
    this.ctimeNs = this.mtimeNs;
    this.markDirty();
    this.contentChanged = true;
  }

  /**
   * Its content changed in its passthrough backing file (passthrough.ts), which holds all of it
   * now: written there by the kernel, or truncated by us. The next commit stores that file.
   */
  changedInBacking(size: number, mtimeNs: bigint, ctimeNs: bigint): void {
    this.size = size;
    this.atimeNs ??= this.mtimeNs;
    this.mtimeNs = mtimeNs;
    this.ctimeNs = ctimeNs;
    this.contentChanged = true;
    this.markDirty();
  }

  /** The content is about to change (or `entry` to be replaced): reads come here again. */
  dropFastReads(io: FileIo): void {
    for (const fh of this.fastHandles) io.fastReads?.drop(fh);
    this.fastHandles.clear();
  }

  /** Whether the content is exactly entry's committed version, nothing written since. */
  get clean(): boolean {
    return !this.contentDirty && !this.staging && !this.live && !this.chunks && !!this.entry?.chunkListHash;
  }

  async write(io: FileIo, buf: Buffer, len: number, offset: number): Promise<number> {
    this.dropFastReads(io);
    if (this.live === null && io.liveChunker && offset === 0 && this.size === 0 && !this.chunks) {
      // Written from empty; a staging file can only be an empty one a truncate left. No await
      // before live is set: a write that comes meanwhile must find it.
      this.live = io.liveChunker.open(io.backend.copyTargets(this.path));
      void this.dropStaging().catch(() => undefined);
    }
    if (this.live && offset === this.live.end) {
      // live.end moves before the promise settles, so the next write in order is taken too.
      const sent = this.live.write(buf.subarray(0, len));
      this.size = this.live.end;
      this.touch();
      await sent;
      return len;
    }
    const s = await this.stage(io);
    const { bytesWritten } = await s.fh.write(buf, 0, len, offset);
    s.written.add(offset, offset + bytesWritten);
    if (offset + bytesWritten > this.size) this.size = offset + bytesWritten;
    this.touch();
    return bytesWritten;
  }

  /**
   * The content as chunks, when the live chunker has it all (the caller records and commits
   * them, then calls committed()); null when the content is in the staging file and the base.
   */
  takeChunks(): Promise<PutFileResult> | null {
    if (this.live) {
      this.chunks = this.live.finish();
      this.live = false;
    }
    return this.chunks;
  }

  /**
   * A clean file opened again finds a newer version (another node's, close-to-open): it becomes
   * that version, attributes and all, for every handle. Only for a file with nothing of its own
   * to commit (not dirty, no staging file).
   */
  adopt(e: Entry): void {
    this.entry = e;
    this.mode = e.mode;
    this.uid = e.uid;
    this.gid = e.gid;
    this.xattrs = e.xattrs;
    this.size = e.size;
    this.mtimeNs = e.mtimeNs;
    this.atimeNs = e.atimeNs;
    this.ctimeNs = BigInt(e.committedAt) * 1_000_000n;
  }

  /** A commit recorded the content (entry is its version now): the chunks are its base. */
  committed(entry: Entry): void {
    this.entry = entry;
    this.chunks = null;
  }

  /** Move the content from the live chunker's chunks into a staging file, to be changed there. */
  private unchunk(io: FileIo): Promise<void> {
    if (!this.live && !this.chunks) return Promise.resolve();
    this.unchunking ??= (async () => {
      const pending = this.takeChunks()!;
      const stored = await pending;
      if (this.chunks !== pending) return; // committed meanwhile: the base has it
      const path = join(io.stagingDir, `${process.pid}-${++stagingSeq}`);
      const fh = await open(path, 'w+', 0o600);
      try {
        await fh.truncate(stored.size);
        let pos = 0;
        for (const c of stored.chunks) {
          const data = await io.backend.readChunk(c);
          if (!isZero(data)) await fh.write(data, 0, data.length, pos);
          pos += c.size;
        }
      } catch (err) {
        await fh.close();
        await rm(path, { force: true });
        throw err;
      }
      const written = new Extents();
      written.add(0, stored.size);
      await this.dropStaging();
      this.staging = { fh, path, written, baseValid: 0 };
      this.chunks = null;
    })().finally(() => {
      this.unchunking = null;
    });
    return this.unchunking;
  }

  async truncate(io: FileIo, size: number): Promise<void> {
    this.dropFastReads(io);
    if (size === this.size) return this.touch();
    if (size === 0 && !this.chunks) {
      // Nothing of the content is left (O_TRUNC, `>`): no staging file until the next write,
      // and a file written from here in order goes to the live chunker again.
      if (this.live) this.live.abort();
      this.live = null;
      await this.dropStaging();
      this.size = 0;
      return this.touch();
    }
    const s = await this.stage(io);
    await s.fh.truncate(size);
    s.written.clip(size);
    s.baseValid = Math.min(s.baseValid, size);
    this.size = size;
    this.touch();
  }

  async read(io: FileIo, buf: Buffer, len: number, offset: number): Promise<number> {
    await this.unchunk(io);
    const end = Math.min(offset + len, this.size);
    if (offset >= end) return 0;
    const readAhead = offset === this.lastReadEnd ? 8 : 0;
    this.lastReadEnd = end;
    const s = this.staging;
    if (!s) return (await io.backend.readRange(this.entry!.chunkListHash!, offset, end - offset, readAhead)).copy(buf);
    const { bytesRead } = await s.fh.read(buf, 0, end - offset, offset);
    if (bytesRead < end - offset) buf.fill(0, bytesRead, end - offset);
    if (s.baseValid > offset && this.entry?.chunkListHash) {
      for (const [a, b] of s.written.gaps(offset, Math.min(end, s.baseValid))) {
        (await io.backend.readRange(this.entry.chunkListHash, a, b - a, readAhead)).copy(buf, a - offset);
      }
    }
    return end - offset;
  }

  /** Run commits of this file one at a time. */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.commitChain.then(fn, fn);
    this.commitChain = p.catch(() => undefined);
    return p;
  }

  /** Make the staging file hold the whole content: copy in the base bytes never overwritten. */
  async materialize(io: FileIo): Promise<string> {
    const s = await this.stage(io);
    if (s.baseValid > 0 && this.entry?.chunkListHash) {
      const step = 1024 * 1024;
      for (const [a, b] of s.written.gaps(0, s.baseValid)) {
        for (let pos = a; pos < b; pos += step) {
          const n = Math.min(step, b - pos);
          const data = await io.backend.readRange(this.entry.chunkListHash, pos, n, 4);
          if (!isZero(data)) await s.fh.write(data, 0, data.length, pos);
        }
      }
      s.written.add(0, s.baseValid);
    }
    return s.path;
  }

  private async dropStaging(): Promise<void> {
    const s = this.staging;
    this.staging = null;
    if (s) {
      await s.fh.close();
      await rm(s.path, { force: true });
    }
  }

  async close(): Promise<void> {
    if (this.live) this.live.abort();
    this.live = false;
    this.chunks = null;
    await this.dropStaging();
  }
}
