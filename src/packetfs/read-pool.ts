import { Worker } from 'node:worker_threads';

export interface ReadRequest {
  id: number;
  /** Where the chunk may be, in the order to look. */
  paths: string[];
  size?: number;
  /** Read around the page cache (O_DIRECT) where the filesystem allows it. */
  direct?: boolean;
}

export interface ReadReply {
  id: number;
  /** Which path held it; -1 when none did. */
  index: number;
  data?: Uint8Array;
  hash?: string;
  error?: { code: string; message: string };
}

export interface PooledRead {
  index: number;
  data: Buffer;
  hash: string;
}

/**
 * Reads and hashes chunk files on worker threads. In the FS process every FUSE request runs on
 * the one JavaScript thread; a cold sequential read through the mount was bound by the open,
 * read and close calls and the SHA-256 that thread did for every chunk (BENCHMARKS.md). Here
 * they run on other cores, and the bytes come back transferred, not copied.
 */
export class ChunkReadPool {
  private readonly workers: { w: Worker; ids: Set<number> }[] = [];
  private readonly waiting = new Map<number, { resolve: (r: PooledRead | undefined) => void; reject: (e: Error) => void }>();
  private seq = 0;

  constructor(size = 2) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL('./read-worker.js', import.meta.url));
      const slot = { w, ids: new Set<number>() };
      w.on('message', (r: ReadReply) => {
        slot.ids.delete(r.id);
        if (!slot.ids.size) w.unref();
        this.settle(r);
      });
      w.on('error', (err) => {
        // A reader that died fails what it held; the others carry on.
        this.workers.splice(this.workers.indexOf(slot), 1);
        for (const id of slot.ids) {
          this.waiting.get(id)?.reject(err);
          this.waiting.delete(id);
        }
      });
      // Referenced only while it has work (see HashPool). After the listeners, since adding one
      // refs the port again.
      w.unref();
      this.workers.push(slot);
    }
  }

  /** The first of `paths` that exists, read whole and hashed; undefined when none does. */
  read(paths: string[], size?: number, direct = false): Promise<PooledRead | undefined> {
    const slot = this.workers.reduce<{ w: Worker; ids: Set<number> } | undefined>((a, b) => (!a || b.ids.size < a.ids.size ? b : a), undefined);
    if (!slot) return Promise.reject(new Error('no chunk reader thread is left'));
    const id = ++this.seq;
    if (!slot.ids.size) slot.w.ref();
    slot.ids.add(id);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      slot.w.postMessage({ id, paths, direct, ...(size === undefined ? {} : { size }) } satisfies ReadRequest);
    });
  }

  private settle(r: ReadReply): void {
    const p = this.waiting.get(r.id);
    if (!p) return;
    this.waiting.delete(r.id);
    if (r.error) return p.reject(Object.assign(new Error(r.error.message), { code: r.error.code }));
    if (r.index < 0) return p.resolve(undefined);
    const d = r.data!;
    p.resolve({ index: r.index, hash: r.hash!, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength) });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate()));
    this.workers.length = 0;
  }
}
