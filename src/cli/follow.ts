/**
 * Following a job as a local program's caller would see it: its output to a sink (our stdout and
 * stderr), notes on why it waits, and how it ended as an exit code. `oswalk run`, `logs -f`,
 * `oswalk shell` and sessions (src/cli/attach.ts) share it.
 */
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import type { JobView, SubmitAnswer, SubmitRequest } from '../api/jobs.js';
import type { LogEnd, LogLine } from '../api/logs.js';
import { ApiError, type ApiClient } from './client.js';
import { note } from './terminal.js';

/** Where a followed job's output and the CLI's own lines about it go. */
export interface FollowSink {
  /** A promise back: read no more of the stream until it settles (the reader is slow). */
  out(data: Buffer): void | Promise<void>;
  err(data: Buffer): void | Promise<void>;
  note(text: string): void;
}

/** Write, and when the reader is slow, wait for it: the job is held back meanwhile, as a pipe holds a writer. */
const written = (stream: NodeJS.WriteStream, data: Buffer) => (stream.write(data) ? undefined : new Promise<void>((r) => stream.once('drain', r)));

/** This process's stdout and stderr. */
export const OWN_OUTPUT: FollowSink = { out: (d) => written(process.stdout, d), err: (d) => written(process.stderr, d), note };

export interface FollowOptions {
  verbose?: boolean;
  signal?: AbortSignal;
  /** A terminal session (`run -t`): one that ends without the program's exit status (its node was lost) exits 255, as ssh does when its connection is lost. */
  terminal?: boolean;
  sink?: FollowSink;
  /** The job stands in for a local program (`oswalk shell`): a signal that killed it shows in how it ends, as a local one's would, not in a line of ours. */
  asLocal?: boolean;
  /** The output of attempts up to this one was shown already (a session's, straight from its node): left out. */
  shownThrough?: number;
  /** The job's log stream, open already (submitFollowing): read before any request of ours. */
  stream?: AsyncIterable<Buffer>;
}

/**
 * Submit a job and open its log stream in one request (POST /v1/jobs?follow=1): the job's id,
 * and the stream for attachJob. A control plane from before ?follow answers with the job alone,
 * which is then followed with a request of its own.
 */
export async function submitFollowing(api: ApiClient, req: SubmitRequest): Promise<{ id: string; stream?: AsyncIterable<Buffer> }> {
  const { headers, body } = await api.open('POST', '/v1/jobs?follow=1', req);
  const at = headers.location?.match(/^\/v1\/jobs\/([^/?]+)$/);
  if (at) return { id: at[1], stream: body };
  if (!String(headers['content-type'] ?? '').startsWith('application/json')) {
    throw new ApiError(0, `the control plane at ${api.api} answered the job's submission with its log but without a Location header naming the job: does a proxy in between drop it?`);
  }
  const parts: Buffer[] = [];
  for await (const piece of body) parts.push(piece);
  return { id: (JSON.parse(Buffer.concat(parts).toString('utf8')) as SubmitAnswer).id };
}

/** How a followed job ended, as a shell would see the program: an exit code, and the signal that killed it. */
export interface JobExit {
  /** The job's own; 128+N for signal N; 1 for a failure without one (255 for a terminal session); 130 if cancelled. */
  code: number;
  signal?: number;
}

/** What `run -t` exits with when the session ended without the program's exit status. */
export const SESSION_LOST_EXIT = 255;

/**
 * Follow a job's output (to the sink, by default our stdout and stderr) until its end line;
 * how it ended.
 */
export async function attachJob(api: ApiClient, id: string, opts: FollowOptions = {}): Promise<JobExit> {
  const sink = opts.sink ?? OWN_OUTPUT;
  const stop = explainWaits(api, id, sink);
  try {
    return await followOutput(api, id, opts, sink);
  } finally {
    stop();
  }
}

/**
 * Tell the user why nothing happens while the job waits for a node (`run`, and `logs -f` of a
 * job that is still pending): at once, then whenever the reason changes. Returns the stop.
 */
export function explainWaits(api: ApiClient, id: string, sink: FollowSink = OWN_OUTPUT): () => void {
  let lastReason = '';
  const explain = () => void api.get<JobView>(`/v1/jobs/${id}`).then((j) => {
    if (j.state === 'pending' && j.waitReason && j.waitReason !== lastReason) {
      lastReason = j.waitReason;
      sink.note(`job ${id} is waiting: ${j.waitReason}`);
    }
  }, () => undefined);
  const first = setTimeout(explain, 300);
  const watch = setInterval(explain, 2000);
  return () => {
    clearTimeout(first);
    clearInterval(watch);
  };
}

/** How a job ended, as a shell sees a program end; the agent's words go to the sink when they explain it. */
export function exitOfEnd(id: string, end: LogEnd, opts: FollowOptions, sink: FollowSink = OWN_OUTPUT): JobExit {
  const signal = end.signal ? osConstants.signals[end.signal as NodeJS.Signals] : undefined;
  let exit: JobExit;
  if (end.state === 'succeeded') exit = { code: 0 };
  else if (end.state === 'cancelled') exit = { code: 130 };
  else if (end.exitCode !== null && end.exitCode > 0) exit = { code: end.exitCode };
  else if (signal) exit = { code: 128 + signal, signal };
  else exit = { code: opts.terminal ? SESSION_LOST_EXIT : 1 };
  // The message is the agent's when the program could not start or was killed: say why.
  if (opts.verbose || (end.state !== 'succeeded' && end.message !== '' && !(opts.asLocal && signal))) {
    const where = end.node ? ` on ${end.node} (attempt ${end.attempt})` : '';
    sink.note(`job ${id} ${end.state}${where}${end.message ? `: ${end.message}` : ''}`);
  }
  return exit;
}

async function followOutput(api: ApiClient, id: string, opts: FollowOptions, sink: FollowSink): Promise<JobExit> {
  let rest = '';
  let exit: JobExit | undefined;
  /** One line of the stream: passed on, or taken as the end; returned for its id. */
  const handle = async (line: string): Promise<LogLine | undefined> => {
    if (!line) return undefined;
    const l = JSON.parse(line) as LogLine;
    const data = l.b64 !== undefined ? Buffer.from(l.b64, 'base64') : Buffer.from(l.text ?? '');
    // A session's output that came straight from its node already.
    if ((l.t === 'out' || l.t === 'err') && opts.shownThrough !== undefined && (l.attempt ?? 0) <= opts.shownThrough) return l;
    if (l.t === 'out') await sink.out(data);
    else if (l.t === 'err') await sink.err(data);
    // sys: what the API says of the output itself (bytes dropped), which a reader must not miss.
    else if (l.t === 'sys') sink.note(data.toString());
    else if (l.t === 'end') exit = exitOfEnd(id, JSON.parse(data.toString()) as LogEnd, opts, sink);
    return l;
  };
  // The control plane may go away mid-stream (restarted, or one of several failing over): the
  // job runs on, so follow again from the last line seen, for up to a minute.
  let after = '';
  let lostAt: number | undefined;
  let followed = false;
  let open = opts.stream;
  for (;;) {
    try {
      const stream = open ?? api.stream(`/v1/jobs/${id}/logs?follow=1${after ? `&after=${after}` : ''}`, opts.signal);
      open = undefined;
      for await (const chunk of stream) {
        if (lostAt !== undefined) sink.note('following again');
        lostAt = undefined;
        followed = true;
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) after = (await handle(l))?.id || after;
      }
      await handle(rest);
      rest = '';
      if (exit) return exit;
      throw new Error('the log stream ended before the job did');
    } catch (err) {
      // Never reached, or an answer (the job is gone): nothing to wait for.
      if (opts.signal?.aborted || exit || !followed || (err instanceof ApiError && err.status > 0)) throw err;
      rest = '';
      if (lostAt === undefined) {
        lostAt = Date.now();
        sink.note(`lost the control plane (${(err as Error).message}); job ${id} runs on, following again when it is back`);
      } else if (Date.now() - lostAt > RECONNECT_FOR_MS) {
        throw new ApiError(0, `cannot reach the control plane for ${RECONNECT_FOR_MS / 1000} s; job ${id} may still be running: oswalk logs -f ${id} follows it again`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** How long `run` and `logs -f` try to follow a job again after losing the control plane. */
const RECONNECT_FOR_MS = 60_000;


/**
 * A stream's chunks gathered into pieces of up to `max` bytes: what arrives while the piece
 * before is on its way joins the next one, so a pipe's 64 KiB reads cost one request per piece
 * rather than one each. Reading stops while a piece's worth waits.
 */
export async function* gathered(stream: Readable, max: number): AsyncGenerator<Buffer> {
  let chunks: Buffer[] = [];
  let bytes = 0;
  let done = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  stream.on('data', (c: Buffer) => {
    chunks.push(c);
    bytes += c.length;
    if (bytes >= max) stream.pause();
    poke();
  });
  stream.once('end', () => { done = true; poke(); });
  stream.once('error', (err) => { error = err; done = true; poke(); });
  for (;;) {
    if (bytes === 0) {
      if (done) break;
      await new Promise<void>((r) => { wake = r; });
      continue;
    }
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    chunks = [];
    bytes = 0;
    stream.resume();
    for (let i = 0; i < all.length; i += max) yield all.subarray(i, i + max);
  }
  if (error) throw error;
}

