/**
 * The LiveChunker's thread: follows files that are being written front to back, cutting and
 * hashing what has been written so far and storing the chunks, so that little is left to do
 * when the file is closed. Reads are synchronous (page-cache bytes just written; this thread
 * does nothing else); chunk writes go through the store's pipeline.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { CutFinder, type ChunkerOptions } from './chunker.js';
import { ChunkStore, type ChunkWriter } from './store.js';
import type { LiveReply, LiveRequest } from './live-chunker.js';

const READ_BYTES = 1 << 20;
const { dir, chunker } = workerData as { dir: string; chunker?: ChunkerOptions };
const store = new ChunkStore(dir, { log: pino({ level: 'silent' }), ...(chunker ? { chunker } : {}) });

interface Follow {
  id: number;
  path: string;
  fd?: number;
  pos: number;
  end: number;
  final: boolean;
  aborted: boolean;
  running: boolean;
  finder: CutFinder;
  parts: Buffer[];
  hash: Hash;
  writer: ChunkWriter;
}

const follows = new Map<number, Follow>();
const reply = (r: LiveReply) => parentPort!.postMessage(r);

/** Feed bytes to the chunker; each cut chunk goes to the store (waiting while its writes are at their limit). */
async function consume(f: Follow, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const cut = f.finder.push(buf, off);
    const piece = buf.subarray(off, cut < 0 ? buf.length : cut);
    f.hash.update(piece);
    if (cut < 0) {
      f.parts.push(piece);
      return;
    }
    await emit(f, piece);
    off = cut;
  }
}

async function emit(f: Follow, last?: Buffer): Promise<void> {
  const parts = last ? [...f.parts, last] : f.parts;
  const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  const hash = f.hash.digest('hex');
  f.parts = [];
  f.hash = createHash('sha256');
  await f.writer.add(hash, data);
}

async function run(f: Follow): Promise<void> {
  f.running = true;
  try {
    f.fd ??= openSync(f.path, 'r');
    while (!f.aborted && f.pos < f.end) {
      const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, f.end - f.pos));
      const n = readSync(f.fd, buf, 0, buf.length, f.pos);
      if (n === 0) throw new Error(`${f.path} ends at ${f.pos}, before the ${f.end} bytes announced`);
      f.pos += n;
      await consume(f, n === buf.length ? buf : buf.subarray(0, n));
    }
    if (f.aborted || !f.final || f.pos < f.end) return;
    if (f.parts.length) await emit(f);
    const result = await f.writer.finish();
    follows.delete(f.id);
    reply({ id: f.id, result });
  } catch (err) {
    follows.delete(f.id);
    await f.writer.settle();
    if (!f.aborted) reply({ id: f.id, error: (err as Error).message });
  } finally {
    f.running = false;
    if (!follows.has(f.id) && f.fd !== undefined) {
      closeSync(f.fd);
      f.fd = undefined;
    }
  }
}

parentPort!.on('message', (m: LiveRequest) => {
  if (m.t === 'open') {
    follows.set(m.id, {
      id: m.id, path: m.path, pos: 0, end: 0, final: false, aborted: false, running: false,
      finder: new CutFinder(chunker), parts: [], hash: createHash('sha256'), writer: store.writer(),
    });
    return;
  }
  const f = follows.get(m.id);
  if (!f) return;
  if (m.t === 'abort') {
    f.aborted = true;
    follows.delete(m.id);
    if (!f.running && f.fd !== undefined) closeSync(f.fd);
    return;
  }
  f.end = Math.max(f.end, m.end);
  if (m.t === 'finish') f.final = true;
  if (!f.running) void run(f);
});
