import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oswalkAddon } from '../../src/native/addon.js';
import { sealedCrc } from '../../src/packetfs/chunk-seal.js';

/**
 * A real-data fixture: a tarball of part of /usr/share (man pages and docs), ~30 MB,
 * built once per machine and kept in the temp dir so test runs stay fast.
 */
export function shareTarball(): string {
  const dir = join(tmpdir(), 'oswalk-packetfs-fixtures');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'usr-share-part.tar');
  if (!existsSync(out) || statSync(out).size < 1 << 20) {
    const parts = ['man/man1', 'man/man8', 'doc'].filter((p) => existsSync(join('/usr/share', p)));
    execFileSync('sh', ['-c', `tar cf - -C /usr/share ${parts.join(' ')} 2>/dev/null | head -c 31457280 > ${out}.tmp && mv ${out}.tmp ${out}`]);
  }
  return out;
}

export function readShareTarball(): Buffer {
  return readFileSync(shareTarball());
}

export async function* slices(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let o = 0; o < buf.length; o += size) yield buf.subarray(o, o + size);
}

/** The CRC-32 a chunk file carries (src/packetfs/chunk-seal.ts), or null. */
export function chunkCrc(path: string): number | null {
  const fd = openSync(path, 'r');
  try {
    return sealedCrc(fd);
  } finally {
    closeSync(fd);
  }
}

/** Records on a chunk file the CRC of other bytes, as the store records a chunk's own. */
export async function sealWith(path: string, bytes: Buffer): Promise<void> {
  const seal = oswalkAddon().oswalk_chunk_seal as (fd: number, data: Buffer, done: () => void) => void;
  const fd = openSync(path, 'r');
  try {
    await new Promise<void>((resolve) => seal(fd, bytes, resolve));
  } finally {
    closeSync(fd);
  }
}
