/**
 * A ChunkReadPool thread: reads a chunk file and hashes it. Synchronous calls are right here:
 * this thread does nothing else, and the pool gives it one request at a time.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { ReadReply, ReadRequest } from './read-pool.js';

function readWhole(path: string, size: number | undefined): Buffer {
  const fd = openSync(path, 'r');
  try {
    const want = size ?? fstatSync(fd).size;
    // Its own ArrayBuffer (never the shared pool's), so that it can be transferred.
    const buf = Buffer.allocUnsafeSlow(want);
    let got = 0;
    while (got < want) {
      const n = readSync(fd, buf, got, want - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === want ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

parentPort!.on('message', ({ id, paths, size }: ReadRequest) => {
  let reply: ReadReply = { id, index: -1 };
  for (let i = 0; i < paths.length; i++) {
    try {
      const data = readWhole(paths[i], size);
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
