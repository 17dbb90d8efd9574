import { createHash } from 'node:crypto';
import type { ChunkRef } from './store.js';
import { checkHash } from './errors.js';

/**
 * A file's chunk list, in a compact binary form.
 *
 *   byte 0      format version (1)
 *   then, per chunk: 32 bytes of SHA-256, then the chunk size as an unsigned LEB128 varint
 *
 * 35 bytes per chunk for chunks up to 2 MiB (a varint of 3 bytes). The chunk list hash is
 * the SHA-256 of this encoding, so equal files get equal chunk lists on every node and a
 * chunk list can be checked like a chunk.
 */
const VERSION = 1;

export function encodeChunkList(chunks: readonly ChunkRef[]): Buffer {
  // 32 bytes of hash + at most 8 bytes of varint for any safe integer.
  const out = Buffer.allocUnsafe(1 + chunks.length * 40);
  out[0] = VERSION;
  let o = 1;
  chunks.forEach((c, i) => {
    checkHash(c.hash, `chunk ${i} hash`);
    if (!Number.isSafeInteger(c.size) || c.size <= 0) throw new Error(`chunk ${i} (${c.hash}) has invalid size ${c.size}`);
    o += out.write(c.hash, o, 'hex');
    let v = c.size;
    while (v >= 0x80) {
      out[o++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    out[o++] = v;
  });
  return out.subarray(0, o);
}

export function decodeChunkList(buf: Uint8Array): ChunkRef[] {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length === 0) throw new Error('chunk list is empty (no version byte)');
  if (b[0] !== VERSION) throw new Error(`chunk list has format version ${b[0]}, expected ${VERSION}`);
  const out: ChunkRef[] = [];
  let o = 1;
  while (o < b.length) {
    if (o + 32 >= b.length) throw new Error(`chunk list truncated in entry ${out.length} at byte ${o}`);
    const hash = b.toString('hex', o, o + 32);
    o += 32;
    let size = 0;
    let mul = 1;
    for (let shift = 0; ; shift += 7) {
      if (o >= b.length) throw new Error(`chunk list truncated in the size of entry ${out.length}`);
      if (shift > 49) throw new Error(`chunk list entry ${out.length} has an oversized varint`);
      const byte = b[o++];
      size += (byte & 0x7f) * mul;
      mul *= 0x80;
      if (!(byte & 0x80)) break;
    }
    if (size <= 0) throw new Error(`chunk list entry ${out.length} has size 0`);
    out.push({ hash, size });
  }
  return out;
}

export function chunkListHash(chunks: readonly ChunkRef[]): string {
  return createHash('sha256').update(encodeChunkList(chunks)).digest('hex');
}

/** The byte offset in the file at which each chunk starts (binary-search it to serve a read at an offset). */
export function chunkOffsets(chunks: readonly ChunkRef[]): number[] {
  const offs = new Array<number>(chunks.length);
  let o = 0;
  chunks.forEach((c, i) => {
    offs[i] = o;
    o += c.size;
  });
  return offs;
}
