import { oswalkAddonIfBuilt } from '../native/addon.js';

/**
 * The CRC-32 each chunk file carries in an extended attribute, recorded as the store writes the
 * chunk (bytes it has just checked against their SHA-256 name). Reads served on the FUSE threads
 * check it instead of hashing the chunk again: patches/oswalk-chunk-check.c says why and how.
 */
export type ChunkSealer = (fd: number, data: Uint8Array) => Promise<void>;

interface SealBinding {
  oswalk_chunk_seal(fd: number, data: Uint8Array, done: (errno: number) => void): void;
  oswalk_chunk_sealed(fd: number): number;
  oswalk_chunk_forget_pages(fd: number): number;
}

// Without the patched addon no mount can serve reads on the FUSE threads either: there is
// nothing to check a CRC, and the store works as before.
const sealBinding = () => oswalkAddonIfBuilt() as SealBinding | null;

/**
 * A function recording a chunk's CRC on its open file (on libuv's thread pool), or null when
 * this process cannot. A filesystem without user xattrs refuses quietly: reads of those chunks
 * are checked by SHA-256.
 */
export function chunkSealer(): ChunkSealer | null {
  const b = sealBinding();
  return b && ((fd, data) => new Promise((resolve) => b.oswalk_chunk_seal(fd, data, () => resolve())));
}

/**
 * Drop the page cache of the chunk file open at fd, written and synced (patches/
 * oswalk-chunk-check.c says why); nothing where the addon is not built.
 */
export function forgetPages(fd: number): void {
  sealBinding()?.oswalk_chunk_forget_pages(fd);
}

/** The CRC recorded on the chunk file open at fd, or null. */
export function sealedCrc(fd: number): number | null {
  const crc = sealBinding()?.oswalk_chunk_sealed(fd) ?? -1;
  return crc < 0 ? null : crc;
}
