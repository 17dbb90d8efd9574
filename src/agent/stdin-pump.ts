import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Keyspace } from '../state/keys.js';
import { markStdinRead, waitStdin } from '../state/job-streams.js';
import type { WindowSize } from '../api/jobs.js';
import type { BlockingReaders, Redis } from '../state/redis.js';

/**
 * Feed a job's standard input from its stream in Redis (`oswalk run -i`), from the start: an
 * attempt that starts over reads all of it again. Writes wait for the job to read (drain), so
 * a job that reads slowly holds nothing up but itself; what it has taken is marked after each
 * read, which lets its sender go on once the input flows as a pipe (markStdinRead). Ends the
 * job's input at the end of the stream (a tty job's terminal still takes new sizes after it);
 * stops when `signal` aborts (the job is over). Its blocking reads take a connection of
 * `readers` for the while.
 */
export async function pumpStdin(readers: BlockingReaders, redis: Redis, ks: Keyspace, id: string, attempt: number, job: { stdin?: Writable; resize?(size: WindowSize): void }, signal: AbortSignal): Promise<void> {
  const reader = await readers.take().catch(() => undefined);
  // Without a connection (Redis went away for good) the job reads no more input, as from a closed pipe.
  if (!reader) return void job.stdin?.end();
  const stop = () => void readers.unblock(reader);
  signal.addEventListener('abort', stop);
  let after = '0';
  let bytes = 0;
  try {
    while (!signal.aborted) {
      const entries = await waitStdin(reader.conn, ks, id, after, 5000);
      for (const e of entries) {
        after = e.id;
        if ('size' in e) job.resize?.(e.size);
        else if ('eof' in e) job.stdin?.end();
        else if (job.stdin) {
          bytes += e.data.length;
          if (!job.stdin.write(e.data)) await once(job.stdin, 'drain', { signal });
        }
      }
      if (entries.length) await markStdinRead(redis, ks, id, attempt, after, bytes);
      if (!job.resize && job.stdin?.writableEnded) return;
    }
  } catch {
    // Aborted while waiting for the job to take its input, or the job closed its input.
  } finally {
    signal.removeEventListener('abort', stop);
    // No read of it is on its way: each was awaited (a failed one leaves it unsound, and give() closes it).
    readers.give(reader);
  }
}
