import type { Redis } from 'ioredis';
import type { Keyspace } from './keys.js';
import { runScript, ScriptError } from './scripts.js';
import type { LogEnd } from '../api/logs.js';
import type { WindowSize } from '../api/jobs.js';
import type { JobState } from '../api/job-states.js';
import type { JobRecord } from './jobs.js';
import { LIMITS } from '../util/limits.js';

/**
 * A job's two streams, apart from its transitions (jobs.ts): its output log, which the agent
 * appends to and followers read (with the flow control that holds a job back while a follower
 * is behind), and its standard input, which the CLI appends to and the agent reads. Each is a
 * Redis stream per job; what ends a job writes the end line followers wake on (include/jobs.lua).
 */

export type LogStream = 'out' | 'err';

/** A reader that has not said it is there for this long holds no job back (its client went away). */
export const LOG_READER_FRESH_MS = 5000;

/**
 * Append output chunks to a job's log stream (byte-capped in the script). 'held': a reader
 * following the job is behind, nothing was appended; send the same chunks again later.
 */
export async function appendLog(redis: Redis, ks: Keyspace, id: string, attempt: number, chunks: { stream: LogStream; data: Buffer }[], droppedBytes = 0, maxBytes = LIMITS.logBytes): Promise<'appended' | 'held' | 'refused'> {
  const args: (string | number | Buffer)[] = [ks.prefix, id, maxBytes, attempt, droppedBytes, LIMITS.logReaderWindowBytes, LOG_READER_FRESH_MS, ''];
  for (const c of chunks) args.push(c.stream, c.data);
  try {
    await runScript<number>(redis, 'appendLog', [ks.jobLog(id)], args);
    return 'appended';
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'HELD') return 'held';
    if (err instanceof ScriptError && err.code === 'NOT_RUNNING') return 'refused';
    throw err;
  }
}

/** A reader has passed on a job's output up to `offset` (an entry's), or says only that it is still there. */
export async function markLogRead(redis: Redis, ks: Keyspace, id: string, offset?: number): Promise<void> {
  await runScript(redis, 'markLogRead', [ks.job(id)], [offset ?? '', '']);
}

export type StdinRefusal = 'NOJOB' | 'ENDED' | 'CLOSED';

export class StdinError extends Error {
  constructor(readonly reason: StdinRefusal, id: string) {
    super({
      NOJOB: `job ${id} does not exist`,
      ENDED: `job ${id} has ended`,
      CLOSED: `the standard input of job ${id} has already ended`,
    }[reason]);
  }
}

/**
 * Append to a job's standard input; `eof` ends it. 'held': the job is behind what it was sent,
 * nothing was appended; send the same piece again later.
 */
export async function appendStdin(redis: Redis, ks: Keyspace, id: string, data: Buffer, eof: boolean, limits = { replayBytes: LIMITS.stdinReplayBytes, windowBytes: LIMITS.stdinWindowBytes }): Promise<'appended' | 'held'> {
  return await stdinScript(redis, ks, id, [limits.replayBytes, data, eof ? '1' : '0', '', limits.windowBytes]);
}

/** The running attempt of a job has passed its input on up to the entry `entryId`, `bytes` in all. */
export async function markStdinRead(redis: Redis, ks: Keyspace, id: string, attempt: number, entryId: string, bytes: number): Promise<void> {
  await runScript(redis, 'markStdinRead', [ks.jobStdin(id)], [ks.prefix, id, attempt, entryId, bytes]);
}

/** A tty job's terminal takes a new size: in its input stream, in order with the keys typed. */
export async function resizeTerminal(redis: Redis, ks: Keyspace, id: string, size: WindowSize): Promise<void> {
  await stdinScript(redis, ks, id, [LIMITS.stdinReplayBytes, '', '0', `${size.rows} ${size.cols}`, LIMITS.stdinWindowBytes]);
}

async function stdinScript(redis: Redis, ks: Keyspace, id: string, args: (string | number | Buffer)[]): Promise<'appended' | 'held'> {
  try {
    await runScript(redis, 'appendStdin', [ks.jobStdin(id)], [ks.prefix, id, ...args]);
    return 'appended';
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'HELD') return 'held';
    if (err instanceof ScriptError) throw new StdinError(err.code as StdinRefusal, id);
    throw err;
  }
}

/** Entries one read takes: pieces are up to LIMITS.stdinPieceBytes, so this bounds what a reader holds. */
const STDIN_READ_ENTRIES = 8;

/** One entry of a job's input stream: bytes, a tty job's new window size, or the end. */
export type StdinEntry = { id: string } & ({ data: Buffer } | { size: WindowSize } | { eof: true });

/**
 * Wait up to blockMs for a job's standard input after `after` ('0' for the start): data and
 * window sizes, then an entry with eof set. Blocks its connection: give it one of its own.
 */
export async function waitStdin(blocking: Redis, ks: Keyspace, id: string, after: string, blockMs: number): Promise<StdinEntry[]> {
  const res = (await blocking.xreadBuffer('COUNT', STDIN_READ_ENTRIES, 'BLOCK', String(blockMs), 'STREAMS', ks.jobStdin(id), after)) as unknown as [Buffer, [Buffer, Buffer[]][]][] | null;
  if (!res) return [];
  return res[0][1].map(([eid, fields]): StdinEntry => {
    const name = fields[0].toString();
    if (name === 'eof') return { id: eid.toString(), eof: true };
    if (name === 'w') {
      const [rows, cols] = fields[1].toString().split(' ').map(Number);
      return { id: eid.toString(), size: { rows, cols } };
    }
    return { id: eid.toString(), data: fields[1] };
  });
}

export interface LogEntry {
  /** Stream entry id, to resume after. */
  id: string;
  t: 'out' | 'err' | 'sys' | 'end';
  data: Buffer;
  attempt?: number;
  /** Output: the bytes the job printed up to this entry's end (what a reader reports back, markLogRead). */
  offset?: number;
}

function decodeEntries(raw: [Buffer, Buffer[]][]): LogEntry[] {
  return raw.map(([eid, fields]) => {
    const f: Record<string, Buffer> = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i].toString()] = fields[i + 1];
    return {
      id: eid.toString(), t: f.t.toString() as LogEntry['t'], data: f.d,
      ...(f.a ? { attempt: Number(f.a.toString()) } : {}), ...(f.o ? { offset: Number(f.o.toString()) } : {}),
    };
  });
}

/**
 * Follow a job's log: marks it so that its end writes an end line into the stream, which wakes
 * a blocking read (followJob-1.lua). Returns the job's state, undefined for an unknown job; a
 * job that has already ended is not marked (endEntry builds its end line).
 */
export async function followJob(redis: Redis, ks: Keyspace, id: string): Promise<JobState | undefined> {
  try {
    return await runScript<JobState>(redis, 'followJob', [ks.job(id)], [ks.prefix]);
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'NOJOB') return undefined;
    throw err;
  }
}

/** A finished job's end line as its end writes it for followers (finish() in include/jobs.lua). */
export function endEntry(job: JobRecord): LogEntry {
  return { id: `${job.finishedAt ?? 0}-0`, t: 'end', data: Buffer.from(JSON.stringify(logEnd(job))) };
}

/** How an ended job ended, as its log's end line says it (and a session's end: src/api/attach.ts). */
export function logEnd(job: JobRecord): LogEnd {
  return {
    state: job.state as LogEnd['state'], exitCode: job.exitCode ?? null, ...(job.signal ? { signal: job.signal } : {}),
    message: job.message, attempt: job.attempt, node: job.node ?? '',
  };
}

/** Whether stream entry id a ("ms-seq") comes after b. */
export function streamIdAfter(a: string, b: string): boolean {
  const [am, as = 0n] = a.split('-').map((x) => BigInt(x));
  const [bm, bs = 0n] = b.split('-').map((x) => BigInt(x));
  return am !== bm ? am > bm : as > bs;
}

/**
 * The id of the last log entry trimmed to keep the log under its cap, if any was: a reader
 * that has read only up to an earlier entry has lost those in between.
 */
export async function logTrimmedThrough(redis: Redis, ks: Keyspace, id: string): Promise<string | undefined> {
  return (await redis.hget(ks.job(id), 'logTrimmed')) ?? undefined;
}

/** Entries after `after` (exclusive; '0' for the start), at most `count`. */
export async function readLog(redis: Redis, ks: Keyspace, id: string, after = '0', count = 1000): Promise<LogEntry[]> {
  const start = after === '0' ? '-' : `(${after}`;
  return decodeEntries((await redis.xrangeBuffer(ks.jobLog(id), start, '+', 'COUNT', count)) as unknown as [Buffer, Buffer[]][]);
}

/**
 * Wait up to blockMs for entries after `after`. Blocks its connection: give it one of its
 * own (redis.duplicate()).
 */
export async function waitLog(blocking: Redis, ks: Keyspace, id: string, after: string, blockMs: number, count = 1000): Promise<LogEntry[]> {
  const res = (await blocking.xreadBuffer('COUNT', count, 'BLOCK', String(blockMs), 'STREAMS', ks.jobLog(id), after)) as unknown as [Buffer, [Buffer, Buffer[]][]][] | null;
  return res ? decodeEntries(res[0][1]) : [];
}
