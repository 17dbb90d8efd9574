import { Worker } from 'node:worker_threads';
import type { ChunkerOptions } from './chunker.js';
import type { PutFileResult } from './store.js';

export type LiveRequest =
  | { t: 'open'; id: number; path: string }
  | { t: 'upto' | 'finish'; id: number; end: number }
  | { t: 'abort'; id: number };

export type LiveReply = { id: number; result: PutFileResult } | { id: number; error: string };

/** Bytes written between two notices to the chunker thread. */
const NOTICE_BYTES = 4 << 20;

/**
 * Translates files into the chunk store while they are being written front to back, on a
 * thread of its own: by the time such a file is closed its chunks are cut, hashed and mostly
 * durable, and close() waits only for the tail. The writer tells how far the file is written
 * (LiveFile.advance); the thread reads those bytes back from the file (the page cache).
 * Files written in any other order are not followed (the caller aborts and uses putFile).
 */
export class LiveChunker {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: PutFileResult) => void; reject: (e: Error) => void }>();
  private seq = 0;

  constructor(storeDir: string, chunker?: ChunkerOptions) {
    this.worker = new Worker(new URL('./live-worker.js', import.meta.url), { workerData: { dir: storeDir, ...(chunker ? { chunker } : {}) } });
    this.worker.on('message', (r: LiveReply) => {
      const p = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (!this.waiting.size) this.worker.unref();
      if ('error' in r) p?.reject(new Error(r.error));
      else p?.resolve(r.result);
    });
    this.worker.on('error', (err) => {
      for (const p of this.waiting.values()) p.reject(err);
      this.waiting.clear();
    });
    // Referenced only while someone awaits a result (see HashPool). After the listeners, since
    // adding one refs the port again.
    this.worker.unref();
  }

  /** Follow the file at `path`, whose bytes from 0 are about to be written in order. */
  open(path: string): LiveFile {
    const id = ++this.seq;
    this.post({ t: 'open', id, path });
    return new LiveFile(id, (m) => this.post(m), (id) => new Promise((resolve, reject) => {
      if (!this.waiting.size) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
    }));
  }

  private post(m: LiveRequest): void {
    this.worker.postMessage(m);
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

export class LiveFile {
  /** Bytes written so far, from 0 with no gap. */
  end = 0;
  private noticed = 0;

  constructor(
    private readonly id: number,
    private readonly post: (m: LiveRequest) => void,
    private readonly result: (id: number) => Promise<PutFileResult>,
  ) {}

  advance(end: number): void {
    this.end = end;
    if (end - this.noticed < NOTICE_BYTES) return;
    this.noticed = end;
    this.post({ t: 'upto', id: this.id, end });
  }

  /** The file is complete at `end` bytes: its chunks once all are durable. */
  finish(): Promise<PutFileResult> {
    const r = this.result(this.id);
    this.post({ t: 'finish', id: this.id, end: this.end });
    return r;
  }

  abort(): void {
    this.post({ t: 'abort', id: this.id });
  }
}
