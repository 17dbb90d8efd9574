import { resolve } from 'node:path';
import type { ChunkRef } from '../packetfs/index.js';

/**
 * Reads served on the FUSE threads (patches/oswalk-fast-read.c, compiled into the patched
 * fuse-native addon): while a handle's file is exactly a committed version, the addon gets the
 * version's chunk list and answers the handle's reads from the local chunk store itself,
 * checking each chunk as it loads it (by the CRC-32 its file carries, else by its SHA-256: see
 * chunk-seal.ts). What it cannot serve (a chunk only a peer has, a corrupt one) comes to
 * JavaScript as before.
 */
export interface FastReads {
  /** Serve fh's reads from these chunks until dropped; false when the addon cannot. */
  add(fh: number, chunks: readonly ChunkRef[]): boolean;
  /** Stop serving fh (before its file's content changes, and at release); the bytes its reads got. */
  drop(fh: number): number;
  /** The bytes fh's reads got here so far. */
  served(fh: number): number;
  stats(): FastReadStats;
}

export interface FastReadStats {
  /** Reads and bytes answered on the FUSE threads. */
  reads: number;
  bytes: number;
  /** Chunks read from the store and checked there, and how many by CRC and by SHA-256. */
  chunkLoads: number;
  crcChecks: number;
  shaChecks: number;
  /** Reads handed to JavaScript (a chunk absent or failing its hash). */
  fallbacks: number;
  /** Bytes of chunks held now. */
  memoryBytes: number;
}

/** The patched addon's functions behind FastReads. */
export interface FastReadBinding {
  oswalk_fast_read_add(fh: number, dir: string, table: Buffer): number;
  oswalk_fast_read_drop(fh: number): number;
  oswalk_fast_read_served(fh: number): number;
  oswalk_fast_read_stats(): FastReadStats;
}

const HASH_BYTES = 32;
const ENTRY_BYTES = HASH_BYTES + 4;

/** The addon's table: per chunk its SHA-256 and its size (uint32 LE). */
function chunkTable(chunks: readonly ChunkRef[]): Buffer {
  const t = Buffer.allocUnsafe(chunks.length * ENTRY_BYTES);
  chunks.forEach((c, i) => {
    t.write(c.hash, i * ENTRY_BYTES, HASH_BYTES, 'hex');
    t.writeUInt32LE(c.size, i * ENTRY_BYTES + HASH_BYTES);
  });
  return t;
}

/** FastReads over the addon's functions, reading chunks of the store at storeDir. */
export function fastReads(binding: FastReadBinding, storeDir: string): FastReads {
  const dir = resolve(storeDir);
  return {
    add: (fh, chunks) => binding.oswalk_fast_read_add(fh, dir, chunkTable(chunks)) === 1,
    drop: (fh) => binding.oswalk_fast_read_drop(fh),
    served: (fh) => binding.oswalk_fast_read_served(fh),
    stats: () => binding.oswalk_fast_read_stats(),
  };
}
