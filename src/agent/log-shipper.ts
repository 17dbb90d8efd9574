import type { Redis } from '../state/redis.js';
import type { Keyspace } from '../state/keys.js';
import { appendLog, type LogStream } from '../state/job-streams.js';

export interface LogShipperOptions {
  /** Flush at least this often while output arrives. */
  flushMs?: number;
  /** Largest piece sent as one stream entry. */
  chunkBytes?: number;
  /** Past this much unsent output, write() asks the runtime to stop reading the job's output until it is sent. */
  highWaterBytes?: number;
  /** Output buffered beyond that (bytes the runtime had read already); past this the oldest is dropped and counted. */
  maxBufferBytes?: number;
}

/** How soon output held back for a slow reader is offered again. */
const HELD_RETRY_MS = 20;
/** Chunks one flush sends at most. */
const BATCH_CHUNKS = 8;
/** How often a log that keeps the tail alone (keepTail) is sent, when flushMs says "at once". */
const TAIL_FLUSH_MS = 100;

/**
 * Carries one job's stdout/stderr into its Redis log stream in batches, one script call
 * per flush. A job printing faster than Redis takes it is held back (write() returns a promise,
 * and the runtime stops reading its output meanwhile), so a follower sees all of it, as a
 * local terminal would; so is a job whose follower (`oswalk run`, `oswalk shell`) reads slower
 * than it prints (appendLog-1.lua). Output is dropped, and the count kept on the job, only when
 * Redis refuses a batch (it is away), or past maxBufferBytes: never the agent's memory.
 */
export class LogShipper {
  private pending: { stream: LogStream; data: Buffer }[] = [];
  private pendingBytes = 0;
  private dropped = 0;
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private draining?: Promise<void>;
  private readonly flushMs: number;
  private readonly chunkBytes: number;
  private readonly highWaterBytes: number;
  private readonly maxBufferBytes: number;
  /** Keep only the tail (keepTail). */
  private tail = false;

  constructor(
    private readonly redis: Redis,
    private readonly ks: Keyspace,
    private readonly jobId: string,
    private readonly attempt: number,
    opts: LogShipperOptions = {},
  ) {
    this.flushMs = opts.flushMs ?? 100;
    this.chunkBytes = opts.chunkBytes ?? 64 * 1024;
    this.highWaterBytes = opts.highWaterBytes ?? 1024 * 1024;
    this.maxBufferBytes = opts.maxBufferBytes ?? 4 * 1024 * 1024;
  }

  /**
   * From now on the log keeps the job's tail only: a session's client has the output straight
   * from the agent (src/agent/attach.ts) and holds the job back itself, so this never holds it;
   * each flush sends the newest it has (at most one batch), the rest is dropped and counted, as
   * the log's cap would drop it anyway. A gigabyte through `run -i` costs Redis a few megabytes.
   */
  keepTail(): void {
    this.tail = true;
  }

  /** Take output; a promise back means: read no more of the job's output until it settles. */
  write(stream: 'stdout' | 'stderr', data: Buffer): Promise<void> | undefined {
    const s: LogStream = stream === 'stdout' ? 'out' : 'err';
    for (let off = 0; off < data.length; off += this.chunkBytes) {
      const piece = data.subarray(off, off + this.chunkBytes);
      const last = this.pending.at(-1);
      if (last && last.stream === s && last.data.length + piece.length <= this.chunkBytes) {
        last.data = Buffer.concat([last.data, piece]);
      } else {
        // A copy, not a view: a small piece kept a long while must not hold its whole read buffer
        // (a tail is dropped or sent within a tick: no copy).
        this.pending.push({ stream: s, data: this.tail ? piece : Buffer.from(piece) });
      }
      this.pendingBytes += piece.length;
    }
    const most = this.tail ? this.chunkBytes * BATCH_CHUNKS : this.maxBufferBytes;
    while (this.pendingBytes > most && this.pending.length > 1) {
      const old = this.pending.shift()!;
      this.pendingBytes -= old.data.length;
      this.dropped += old.data.length;
    }
    if (this.tail) {
      this.timer ??= setTimeout(() => void this.flush(), this.flushMs || TAIL_FLUSH_MS);
      return undefined;
    }
    if (this.pendingBytes > this.highWaterBytes) return (this.draining ??= this.drain());
    if (this.pendingBytes >= this.chunkBytes * 4) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
    return undefined;
  }

  /** Flush until what is left is under the high-water mark again (each flush sends or drops). */
  private async drain(): Promise<void> {
    try {
      while (this.pendingBytes > this.highWaterBytes / 2) await this.flush();
    } finally {
      this.draining = undefined;
    }
  }

  /** Send what is buffered; resolves when everything written so far is in Redis. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      while (this.pending.length || this.dropped) {
        const batch: { stream: LogStream; data: Buffer }[] = [];
        let bytes = 0;
        while (this.pending.length && bytes < this.chunkBytes * BATCH_CHUNKS) {
          const c = this.pending.shift()!;
          batch.push(c);
          bytes += c.data.length;
        }
        this.pendingBytes -= bytes;
        const dropped = this.dropped;
        this.dropped = 0;
        let sent;
        try {
          sent = await appendLog(this.redis, this.ks, this.jobId, this.attempt, batch, dropped);
        } catch {
          // Counted, and tried again with the next flush.
          this.dropped += dropped + bytes;
          return;
        }
        if (sent === 'held' && this.tail) {
          // A reader of the log is behind (`oswalk logs -f` beside the session): it gets the tail.
          this.dropped += dropped + bytes;
          return;
        }
        if (sent === 'held') {
          // A reader following the job is behind: the batch goes back, first, and is sent
          // again shortly. The job waits with it (write() holds it past the high-water mark),
          // as a program writing into a pipe waits for its reader.
          this.pending.unshift(...batch);
          this.pendingBytes += bytes;
          this.dropped += dropped;
          await new Promise((r) => setTimeout(r, HELD_RETRY_MS));
        } else if (this.tail && this.pending.length) {
          // One batch per tick: what came meanwhile waits for the next, and its oldest make room.
          this.timer ??= setTimeout(() => void this.flush(), this.flushMs || TAIL_FLUSH_MS);
          return;
        }
      }
    });
    return this.flushing;
  }
}
