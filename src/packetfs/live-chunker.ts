import { Worker } from 'node:worker_threads';
import type { ChunkerOptions } from './chunker.js';
import type { PutFileResult } from './store.js';

export type LiveRequest =
  | { t: 'open'; id: number; copyTo?: string[] }
  | { t: 'data'; id: number; data: Uint8Array }
  | { t: 'finish'; id: number }
  | { t: 'abort'; id: number };

export type LiveReply = { id: number; result: PutFileResult } | { id: number; error: string; code?: string } | { ack: number };

/**
 * Bytes gathered before they go to the chunker thread in one message (moved, not copied): a
 * file's first batch is small, so that many small files written at once (tar, cp -a) do not
 * each hold a big buffer, and each next one twice the size, up to the last.
 */
const FIRST_BATCH_BYTES = 256 << 10;
const BATCH_BYTES = 4 << 20;
/** Bytes sent to the chunker thread and not yet consumed there, beyond which writers wait. */
const IN_FLIGHT_BYTES = 32 << 20;

/**
 * Translates files into the chunk store as they are written front to back, on a thread of
 * its own: the writer hands over the bytes (LiveFile.write), the thread cuts, hashes and
 * stores them, and by the time the file is closed only the tail is left to do. The bytes go
 * nowhere else: no staging copy in the page cache, which on a VM whose new memory pages are
 * dear halves the memory a write takes. Writers wait while the thread is IN_FLIGHT_BYTES behind.
 * A file written any other way is not for this (the caller keeps a staging file instead).
 */
export class LiveChunker {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: PutFileResult) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private inFlight = 0;
  private roomWaiters: (() => void)[] = [];
  private failed?: Error;
  private readonly fileErrors = new Map<number, Error>();

  /**
   * `token`: of the peers' chunk servers, for files opened with peers to copy their chunks to
   * as they are cut (the copies a close waits for, mostly made by the time it comes);
   * `stateDir`: the node's, whose certificate reaches peers at https:// URLs.
   */
  constructor(storeDir: string, opts: { chunker?: ChunkerOptions; token?: string; stateDir?: string } = {}) {
    this.worker = new Worker(new URL('./live-worker.js', import.meta.url), {
      workerData: { dir: storeDir, ...(opts.chunker ? { chunker: opts.chunker } : {}), ...(opts.token ? { token: opts.token } : {}), ...(opts.stateDir ? { stateDir: opts.stateDir } : {}) },
    });
    this.worker.on('message', (r: LiveReply) => {
      if ('ack' in r) {
        this.inFlight -= r.ack;
        if (this.inFlight <= IN_FLIGHT_BYTES) this.wakeWriters();
        return;
      }
      const p = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      this.updateRef();
      if ('error' in r) {
        // With the code (ENOSPC, EIO…) a caller can pass on as an errno.
        const err = Object.assign(new Error(r.error), r.code ? { code: r.code } : {});
        if (p) p.reject(err);
        else this.fileErrors.set(r.id, err); // before finish(): its writes and finish() fail with it
      } else {
        p?.resolve(r.result);
      }
    });
    this.worker.on('error', (err) => {
      this.failed = err;
      for (const p of this.waiting.values()) p.reject(err);
      this.waiting.clear();
      this.wakeWriters();
    });
    // Referenced only while someone awaits it (see HashPool). After the listeners, since
    // adding one refs the port again.
    this.worker.unref();
  }

  /** A file about to be written from its first byte, in order; its chunks also go to the peers at `copyTo` (agent URLs). */
  open(copyTo: string[] = []): LiveFile {
    const id = ++this.seq;
    this.post({ t: 'open', id, ...(copyTo.length ? { copyTo } : {}) });
    return new LiveFile(id, this);
  }

  /** @internal Send a batch of a file's bytes, moving its memory to the thread. */
  async send(id: number, data: Uint8Array): Promise<void> {
    while (this.inFlight > IN_FLIGHT_BYTES && !this.failed) {
      await new Promise<void>((resolve) => {
        this.roomWaiters.push(resolve);
        this.updateRef();
      });
    }
    const err = this.failed ?? this.fileErrors.get(id);
    if (err) throw err;
    this.inFlight += data.byteLength;
    this.worker.postMessage({ t: 'data', id, data } satisfies LiveRequest, [data.buffer as ArrayBuffer]);
  }

  /** @internal */
  result(id: number): Promise<PutFileResult> {
    const err = this.failed ?? this.fileErrors.get(id);
    this.fileErrors.delete(id);
    if (err) return Promise.reject(err);
    const p = new Promise<PutFileResult>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.updateRef();
    return p;
  }

  /** @internal A file given up: an error it met is nobody's business any more. */
  forget(id: number): void {
    this.fileErrors.delete(id);
  }

  /** @internal */
  post(m: LiveRequest): void {
    this.worker.postMessage(m);
  }

  private wakeWriters(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of w) wake();
    this.updateRef();
  }

  private updateRef(): void {
    if (this.waiting.size || this.roomWaiters.length) this.worker.ref();
    else this.worker.unref();
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** One file the chunker thread follows; see LiveChunker. */
export class LiveFile {
  /** Bytes written so far, from 0 with no gap. */
  end = 0;
  private batch: Uint8Array | null = null;
  private batchBytes = FIRST_BATCH_BYTES;
  private filled = 0;
  private sending: Promise<void> = Promise.resolve();
  private aborted = false;

  constructor(
    private readonly id: number,
    private readonly chunker: LiveChunker,
  ) {}

  /**
   * Append bytes. They are copied and counted in `end` before this returns its promise, so
   * writes that overlap in time keep their order; the promise waits for room in the pipeline.
   */
  write(data: Uint8Array): Promise<void> {
    const full: Uint8Array[] = [];
    for (let off = 0; off < data.length;) {
      this.batch ??= new Uint8Array(this.batchBytes);
      const n = Math.min(data.length - off, this.batch.length - this.filled);
      this.batch.set(data.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      this.end += n;
      if (this.filled === this.batch.length) {
        full.push(this.takeBatch()!);
        this.batchBytes = Math.min(BATCH_BYTES, this.batchBytes * 2);
      }
    }
    return this.send(full);
  }

  private takeBatch(): Uint8Array | null {
    const b = this.batch;
    const n = this.filled;
    this.batch = null;
    this.filled = 0;
    return b && n ? (n === b.length ? b : b.slice(0, n)) : null;
  }

  /** Send batches after those before them. */
  private send(batches: Uint8Array[]): Promise<void> {
    if (batches.length) {
      this.sending = this.sending.then(async () => {
        for (const b of batches) if (!this.aborted) await this.chunker.send(this.id, b);
      });
    }
    return this.sending;
  }

  /** The file is complete: its chunks once all are durable in the store. */
  async finish(): Promise<PutFileResult> {
    const tail = this.takeBatch();
    try {
      await this.send(tail ? [tail] : []);
    } catch (err) {
      this.chunker.forget(this.id); // result() would have taken the error it failed with
      throw err;
    }
    const r = this.chunker.result(this.id);
    this.chunker.post({ t: 'finish', id: this.id });
    return r;
  }

  abort(): void {
    this.aborted = true;
    this.batch = null;
    this.chunker.forget(this.id);
    this.chunker.post({ t: 'abort', id: this.id });
  }
}
