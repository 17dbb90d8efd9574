/**
 * A ChunkReadPool thread: reads a chunk file and hashes it. Synchronous calls are right here:
 * this thread does nothing else, and the pool gives it one request at a time.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { ReadReply, ReadRequest } from './read-pool.js';

/** O_DIRECT wants the buffer, offset and length aligned; 4 KiB covers every block size in use. */
const ALIGN = 4096;
const WASM_PAGE = 65536;

/**
 * The O_DIRECT target. A WebAssembly memory starts on a page boundary; a Buffer's bytes need
 * not, and there is no other way to ask for aligned memory from JavaScript.
 */
const aligned = new WebAssembly.Memory({ initial: 1 });
/** Cleared when the store's filesystem refuses O_DIRECT (tmpfs before Linux 6.6, some FUSE and network filesystems): buffered from then on. */
let directWorks = true;

function alignedArea(bytes: number): Uint8Array {
  const short = Math.ceil(bytes / WASM_PAGE) - aligned.buffer.byteLength / WASM_PAGE;
  if (short > 0) aligned.grow(short);
  return new Uint8Array(aligned.buffer, 0, bytes);
}

/** Its own ArrayBuffer (never the shared pool's), so that it can be transferred. */
const transferable = (n: number): Buffer => Buffer.allocUnsafeSlow(n);

function readBuffered(fd: number, want: number): Buffer {
  const buf = transferable(want);
  let got = 0;
  while (got < want) {
    const n = readSync(fd, buf, got, want - got, got);
    if (n === 0) break;
    got += n;
  }
  return got === want ? buf : buf.subarray(0, got);
}

/** Reads past the page cache into aligned memory, then copies out. */
function readDirect(fd: number, want: number): Buffer {
  const span = Math.ceil(want / ALIGN) * ALIGN;
  const area = alignedArea(span);
  let got = 0;
  // A short read that ends off a block boundary is the end of the file.
  while (got < want && got % ALIGN === 0) {
    const n = readSync(fd, area, got, span - got, got);
    if (n === 0) break;
    got += n;
  }
  const buf = transferable(Math.min(got, want));
  buf.set(area.subarray(0, buf.length));
  return buf;
}

/** Whole file in `read`, the descriptor closed after; `want` is the size the caller knows, or the file's. */
function withFile<T>(path: string, flags: number, read: (fd: number, want: number) => T, size?: number): T {
  const fd = openSync(path, flags);
  try {
    return read(fd, size ?? fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function readWhole(path: string, size: number | undefined, direct: boolean): Buffer {
  if (direct && directWorks) {
    try {
      return withFile(path, constants.O_RDONLY | constants.O_DIRECT, readDirect, size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      directWorks = false;
    }
  }
  return withFile(path, constants.O_RDONLY, readBuffered, size);
}

parentPort!.on('message', ({ id, paths, size, direct }: ReadRequest) => {
  let reply: ReadReply = { id, index: -1 };
  for (let i = 0; i < paths.length; i++) {
    try {
      const data = readWhole(paths[i], size, direct === true);
      reply = { id, index: i, data, hash: createHash('sha256').update(data).digest('hex') };
      break;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') continue;
      reply = { id, index: i, error: { code: e.code ?? 'EIO', message: e.message } };
      break;
    }
  }
  parentPort!.postMessage(reply, reply.data ? [reply.data.buffer as ArrayBuffer] : []);
});
