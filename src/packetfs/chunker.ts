import { createHash } from 'node:crypto';

/**
 * FastCDC content-defined chunking (Xia et al., USENIX ATC 2016 / TPDS 2020), written out
 * by hand so that chunk boundaries are a frozen part of the PacketFS format: every node
 * must cut the same bytes at the same places, today and after any dependency upgrade.
 *
 * Gear hash: h = (h << 1) + GEAR[byte] in 32 bits. Bit k of h depends on the last k+1
 * bytes, so the masks use the TOP bits (bits 31..32-n), each of which depends on a window
 * of 15..32 bytes. Normalized chunking (level 2): before the average size a mask with
 * two more bits than log2(avg) makes a cut unlikely, after it a mask with two fewer bits
 * makes one likely, which narrows the size distribution around the average. Hashing
 * starts fresh (h = 0) at `min` bytes into each chunk, and the bytes before `min` are
 * skipped unhashed ("cut-point skipping"), so a boundary depends only on the bytes just
 * before it and never on where the input buffers happen to be split.
 *
 * Sizes: min 512 KiB, avg 1 MiB, max 4 MiB, chosen by measurement (bench/packetfs-dedup.ts,
 * bench/packetfs-translate.ts and bench/overlay-io.ts; numbers in BENCHMARKS.md):
 *  - a copy with one byte inserted near the start costs 1 new chunk at every size tried;
 *  - on five edited versions of a /usr/share/doc tarball the dedup ratio is 5.6 at 16 KiB
 *    average, 4.2 at 64 KiB, 2.6 at 256 KiB, 1.7 at 1 MiB (fixed 256 KiB blocks: 1.0);
 *  - but every chunk is a file created, fsynced and renamed in the store, a file opened on
 *    every cold read, and 35 bytes of chunk list in Redis. Through the FUSE mount, 1 MiB chunks
 *    write a new 1 GiB file at ~300 MiB/s and read it cold at ~630 MiB/s, 256 KiB chunks at
 *    155-180 and 385-415 MiB/s (same runs, 2026-11-30), because the store's file operations,
 *    not hashing, are the cost: per GiB 1 000 chunk files instead of 4 000.
 * The goals of the mount (writes of 300 MB/s, cold reads of 40 % of the disk) are only met at
 * 1 MiB; the dedup given up is that of small edits scattered over big files. restic chose the
 * same average (512 KiB..8 MiB). The minimum is half the average rather than FastCDC's usual
 * quarter: dedup is the same (2.60 vs 2.63 at 256 KiB) and the unhashed skip covers more
 * bytes. Stores hold chunks of earlier sizes alongside: a chunk list lists its chunks, so sizes
 * only decide how well new data dedups against old.
 */

export interface ChunkerOptions {
  minSize?: number;
  avgSize?: number;
  maxSize?: number;
}

export interface Chunk {
  hash: string;
  size: number;
  data: Buffer;
}

export const DEFAULT_CHUNKER: Required<ChunkerOptions> = {
  minSize: 512 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 4096 * 1024,
};

/**
 * The gear table: 256 pseudo-random 32-bit words derived from SHA-256 of a fixed label,
 * so it is reproducible from this file alone (no opaque table of numbers to mistype).
 */
const GEAR: Int32Array = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    t[i] = createHash('sha256').update(`oswalk-packetfs-gear-${i}`).digest().readInt32BE(0);
  }
  return t;
})();

function topMask(bits: number): number {
  return bits >= 32 ? -1 : (((1 << bits) - 1) << (32 - bits)) | 0;
}

function checkOptions(o: Required<ChunkerOptions>): void {
  const { minSize, avgSize, maxSize } = o;
  if (!Number.isInteger(Math.log2(avgSize))) throw new Error(`chunker avgSize ${avgSize} must be a power of two`);
  if (!(minSize >= 64 && minSize < avgSize && avgSize < maxSize)) {
    throw new Error(`chunker sizes must satisfy 64 <= minSize < avgSize < maxSize (got ${minSize}/${avgSize}/${maxSize})`);
  }
  if (maxSize > 64 * 1024 * 1024) throw new Error(`chunker maxSize ${maxSize} exceeds 64 MiB`);
}

/**
 * The boundary finder on its own, fed buffer after buffer: `push(buf, from)` returns the
 * offset in `buf` just past the next cut, or -1 when the chunk continues into the next
 * buffer. It keeps only the rolling hash and the length of the current chunk.
 */
export class CutFinder {
  private h = 0;
  /** Bytes of the current chunk seen so far (including any in earlier buffers). */
  private n = 0;
  private readonly maskS: number;
  private readonly maskL: number;
  readonly min: number;
  readonly avg: number;
  readonly max: number;

  constructor(opts: ChunkerOptions = {}) {
    const o = { ...DEFAULT_CHUNKER, ...opts };
    checkOptions(o);
    this.min = o.minSize;
    this.avg = o.avgSize;
    this.max = o.maxSize;
    const bits = Math.log2(o.avgSize);
    this.maskS = topMask(bits + 2);
    this.maskL = topMask(bits - 2);
  }

  /** Bytes of the chunk in progress. */
  get pending(): number {
    return this.n;
  }

  push(buf: Uint8Array, from: number): number {
    const G = GEAR;
    const end = buf.length;
    let i = from;
    let h = this.h;
    if (this.n < this.min) {
      const skip = Math.min(this.min - this.n, end - i);
      i += skip;
      if (this.n + skip < this.min) {
        this.n += skip;
        return -1;
      }
      this.n += skip;
    }
    // n (bytes of the chunk before buf[i]) is base + i throughout.
    const base = this.n - i;
    const m1 = this.maskS;
    for (const stop = Math.min(end, this.avg - base); i < stop; i++) {
      h = ((h << 1) + G[buf[i]]) | 0;
      if ((h & m1) === 0) return this.cut(i + 1);
    }
    const m2 = this.maskL;
    for (const stop = Math.min(end, this.max - base); i < stop; i++) {
      h = ((h << 1) + G[buf[i]]) | 0;
      if ((h & m2) === 0) return this.cut(i + 1);
    }
    if (base + i >= this.max) return this.cut(i);
    this.n = base + i;
    this.h = h;
    return -1;
  }

  private cut(at: number): number {
    this.n = 0;
    this.h = 0;
    return at;
  }
}

function sha256hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Cut a byte stream into content-defined chunks and name each by its SHA-256.
 * Memory is bounded by one maximum-size chunk plus the input buffer in hand, whatever
 * the length of the stream. A chunk that lies inside one input buffer is a view of it
 * (no copy); one that spans buffers is copied once into a buffer of its own.
 */
export async function* chunkStream(source: AsyncIterable<Buffer | Uint8Array>, opts: ChunkerOptions = {}): AsyncGenerator<Chunk> {
  const finder = new CutFinder(opts);
  let parts: Buffer[] = [];
  for await (const raw of source) {
    const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    let off = 0;
    while (off < buf.length) {
      const cut = finder.push(buf, off);
      if (cut < 0) {
        parts.push(buf.subarray(off));
        break;
      }
      const piece = buf.subarray(off, cut);
      const data = parts.length ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      off = cut;
      yield { hash: sha256hex(data), size: data.length, data };
    }
  }
  if (parts.length) {
    const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    yield { hash: sha256hex(data), size: data.length, data };
  }
}
