import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { LiveChunker, LiveFile } from '../packetfs/index.js';
import type { Backend, Entry } from './backend.js';

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

/**
 * A file as one mount sees it while it is open: the version it was opened at (its chunks are
 * the "base"), and, from the first change on, a local staging file. Copy-on-write is lazy: the
 * staging file holds only what was written (Extents); reads of the rest come from the base
 * chunks, bytes past `baseValid` (cut off by a truncate) read as zeros (holes of the sparse
 * staging file). At commit the untouched parts of the base are filled in, zero runs left as
 * holes, and the whole staging file goes to the chunk store.
 */
export class OpenFile {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Handles open on this file, plus transient users (a truncate by path). */
  refs = 0;
  /** Something (content or attributes) differs from the committed version. */
  dirty = false;
  /** Unlinked while open (renamed by libfuse to .fuse_hidden…): never committed again. */
  hidden = false;
  private staging: { fh: FileHandle; path: string; written: Extents; baseValid: number } | null = null;
  private commitChain: Promise<unknown> = Promise.resolve();
  /** End of the last read, to tell sequential reading (worth reading ahead) from random. */
  lastReadEnd = -1;
  /**
   * The chunker following this file while it is written front to back from empty; `false`
   * once anything else happened to it (a write elsewhere, a truncate, an earlier commit).
   */
  private live: LiveFile | null | false = null;

  constructor(public path: string, public entry: Entry | null, init: { mode: number; uid: number; gid: number; mtimeNs: bigint }) {
    this.mode = entry?.mode ?? init.mode;
    this.uid = entry?.uid ?? init.uid;
    this.gid = entry?.gid ?? init.gid;
    this.size = entry?.size ?? 0;
    this.mtimeNs = entry?.mtimeNs ?? init.mtimeNs;
    this.ctimeNs = entry ? BigInt(entry.committedAt) * 1_000_000n : init.mtimeNs;
  }

  get stagingPath(): string | null {
    return this.staging?.path ?? null;
  }

  /** The content changed since the last commit (attributes alone do not set it). */
  contentChanged = false;

  /** Whether the content differs from the committed version's manifest. */
  get contentDirty(): boolean {
    return this.contentChanged || this.entry === null;
  }

  private async stage(dir: string) {
    if (!this.staging) {
      const path = join(dir, `${process.pid}-${++stagingSeq}`);
      const fh = await open(path, 'w+', 0o600);
      if (this.size > 0) await fh.truncate(this.size);
      this.staging = { fh, path, written: new Extents(), baseValid: this.entry?.manifest ? this.size : 0 };
    }
    return this.staging;
  }

  private touch(): void {
    this.mtimeNs = nowNs();
    this.ctimeNs = this.mtimeNs;
    this.dirty = true;
    this.contentChanged = true;
  }

  async write(dir: string, buf: Buffer, len: number, offset: number, chunker?: LiveChunker): Promise<number> {
    const s = await this.stage(dir);
    const { bytesWritten } = await s.fh.write(buf, 0, len, offset);
    s.written.add(offset, offset + bytesWritten);
    if (offset + bytesWritten > this.size) this.size = offset + bytesWritten;
    this.touch();
    if (chunker && this.live !== false) this.follow(chunker, s.path, s.baseValid, offset, bytesWritten);
    return bytesWritten;
  }

  /** Keep the live chunker on a file written in order from its first byte, or let it go. */
  private follow(chunker: LiveChunker, path: string, baseValid: number, offset: number, n: number): void {
    // Only a file written from empty: no bytes of a base version to merge in.
    if (this.live === null && offset === 0 && baseValid === 0) this.live = chunker.open(path);
    if (this.live && offset === this.live.end) this.live.advance(offset + n);
    else this.dropLive();
  }

  private dropLive(): void {
    if (this.live) this.live.abort();
    this.live = false;
  }

  /**
   * The live chunker's work for the content now, when it followed all of it; the file is not
   * followed after this (a later commit stores the staging file whole).
   */
  takeLive(): LiveFile | null {
    const live = this.live && this.live.end === this.size ? this.live : null;
    if (live) this.live = false;
    else this.dropLive();
    return live;
  }

  async truncate(dir: string, size: number): Promise<void> {
    if (size === this.size) return this.touch();
    this.dropLive();
    const s = await this.stage(dir);
    await s.fh.truncate(size);
    s.written.clip(size);
    s.baseValid = Math.min(s.baseValid, size);
    this.size = size;
    this.touch();
  }

  async read(backend: Backend, buf: Buffer, len: number, offset: number): Promise<number> {
    const end = Math.min(offset + len, this.size);
    if (offset >= end) return 0;
    const readAhead = offset === this.lastReadEnd ? 8 : 0;
    this.lastReadEnd = end;
    const s = this.staging;
    if (!s) return (await backend.readRange(this.entry!.manifest!, offset, end - offset, readAhead)).copy(buf);
    const { bytesRead } = await s.fh.read(buf, 0, end - offset, offset);
    if (bytesRead < end - offset) buf.fill(0, bytesRead, end - offset);
    if (s.baseValid > offset && this.entry?.manifest) {
      for (const [a, b] of s.written.gaps(offset, Math.min(end, s.baseValid))) {
        (await backend.readRange(this.entry.manifest, a, b - a, readAhead)).copy(buf, a - offset);
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
  async materialize(dir: string, backend: Backend): Promise<string> {
    const s = await this.stage(dir);
    if (s.baseValid > 0 && this.entry?.manifest) {
      const step = 1024 * 1024;
      for (const [a, b] of s.written.gaps(0, s.baseValid)) {
        for (let pos = a; pos < b; pos += step) {
          const n = Math.min(step, b - pos);
          const data = await backend.readRange(this.entry.manifest, pos, n, 4);
          if (!isZero(data)) await s.fh.write(data, 0, data.length, pos);
        }
      }
      s.written.add(0, s.baseValid);
    }
    return s.path;
  }

  async close(): Promise<void> {
    this.dropLive();
    const s = this.staging;
    this.staging = null;
    if (s) {
      await s.fh.close();
      await rm(s.path, { force: true });
    }
  }
}
