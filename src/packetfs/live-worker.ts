/**
 * The LiveChunker's thread: cuts and hashes the bytes of files being written front to back
 * as they arrive, and stores the chunks through the store's write pipeline, so that little
 * is left to do when a file is closed. Every batch is acknowledged once consumed, which is
 * what lets writers go on (LiveChunker's backpressure).
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { CutFinder, type ChunkerOptions } from './chunker.js';
import { ChunkStore, type ChunkWriter } from './store.js';
import type { LiveReply, LiveRequest } from './live-chunker.js';
import { PeerClient } from './peer-http.js';

const { dir, chunker, token, stateDir } = workerData as { dir: string; chunker?: ChunkerOptions; token?: string; stateDir?: string };
const store = new ChunkStore(dir, { log: pino({ level: 'silent' }), ...(chunker ? { chunker } : {}) });
/**
 * A chunk on a healthy peer takes milliseconds; a peer that does not answer in this long is
 * left out (the close's hold then picks another), rather than hold the writer up.
 */
const PEER_TIMEOUT_MS = 2000;
const peers = token ? new PeerClient(token, PEER_TIMEOUT_MS, stateDir) : undefined;
/** Chunk copies in flight per file: they overlap with the cutting and storing of the next chunks. */
const COPIES_IN_FLIGHT = 8;
/**
 * Peers that failed a chunk lately get no stream for a while: until a dead or cut-off node is
 * marked down, every file would otherwise wait out its timeout once.
 */
const FAILED_PEER_MS = 10_000;
const failedUntil = new Map<string, number>();

/**
 * A file's chunks streamed to its copies' peers as they are cut, from memory. Best effort: a
 * peer that fails one chunk gets no more and is left out of `copiedTo`; the close's hold
 * (push.ts) sends whatever a peer still lacks, so nothing here decides what is durable where.
 */
interface Copies {
  urls: string[];
  failed: Set<string>;
  inflight: Set<Promise<void>>;
}

interface Follow {
  id: number;
  queue: Buffer[];
  final: boolean;
  aborted: boolean;
  running: boolean;
  finder: CutFinder;
  parts: Buffer[];
  hash: Hash;
  writer: ChunkWriter;
  copies?: Copies;
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
  const c = f.copies;
  if (!c || !peers) return;
  for (const url of c.urls) {
    if (c.failed.has(url)) continue;
    const p: Promise<void> = peers.putChunk(url, hash, data).catch(() => {
      c.failed.add(url);
      failedUntil.set(url, Date.now() + FAILED_PEER_MS);
    }).finally(() => c.inflight.delete(p));
    c.inflight.add(p);
  }
  while (c.inflight.size >= COPIES_IN_FLIGHT) await Promise.race(c.inflight);
}

async function run(f: Follow): Promise<void> {
  f.running = true;
  try {
    for (let buf = f.queue.shift(); buf && !f.aborted; buf = f.queue.shift()) {
      try {
        await consume(f, buf);
      } finally {
        reply({ ack: buf.length });
      }
    }
    if (f.aborted || !f.final) return;
    if (f.parts.length) await emit(f);
    const result = await f.writer.finish();
    const c = f.copies;
    if (c) {
      await Promise.all(c.inflight);
      result.copiedTo = c.urls.filter((u) => !c.failed.has(u));
    }
    follows.delete(f.id);
    reply({ id: f.id, result });
  } catch (err) {
    follows.delete(f.id);
    drop(f);
    await f.writer.settle();
    await Promise.all(f.copies?.inflight ?? []);
    if (!f.aborted) reply({ id: f.id, error: (err as Error).message, ...(typeof (err as NodeJS.ErrnoException).code === 'string' ? { code: (err as NodeJS.ErrnoException).code } : {}) });
  } finally {
    f.running = false;
  }
}

/** Let go of what is queued, acknowledged all the same: the writer's account must balance. */
function drop(f: Follow): void {
  for (const b of f.queue.splice(0)) reply({ ack: b.length });
}

parentPort!.on('message', (m: LiveRequest) => {
  if (m.t === 'open') {
    follows.set(m.id, {
      id: m.id, queue: [], final: false, aborted: false, running: false,
      finder: new CutFinder(chunker), parts: [], hash: createHash('sha256'), writer: store.writer(),
      ...(m.copyTo?.length ? { copies: { urls: m.copyTo.filter((u) => (failedUntil.get(u) ?? 0) < Date.now()), failed: new Set<string>(), inflight: new Set<Promise<void>>() } } : {}),
    });
    return;
  }
  const f = follows.get(m.id);
  if (!f) {
    if (m.t === 'data') reply({ ack: m.data.byteLength });
    return;
  }
  if (m.t === 'abort') {
    f.aborted = true;
    follows.delete(m.id);
    drop(f);
    return;
  }
  if (m.t === 'data') f.queue.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  else f.final = true;
  if (!f.running) void run(f);
});
