import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { clip, HttpError, type HttpServer } from '../../util/http.js';
import { LIMITS } from '../../util/limits.js';
import {
  AttachPointSchema, CancelAnswerSchema, JobListSchema, JobStateSchema, JobViewSchema, normalizeJobSpec, OwnerStatusSchema, StdinAnswerSchema, SubmitAnswerSchema, SubmitRequestSchema, WindowSizeSchema, type AttachPoint, type JobOwner, type StdinAnswer,
} from '../../api/jobs.js';
import { TERMINAL_STATES } from '../../api/job-states.js';
import { matchesLabels, parseLabelSelector } from '../../manifest/labels.js';
import { listObjects } from '../../state/objects.js';
import { cancelJob, getJob, getOwnerStatus, listJobs, submitJobs, TERMINAL_CLIENT_GRACE_MS, touchTerminalClient, watchedForClient, type JobRecord } from '../../state/jobs.js';
import { appendStdin, resizeTerminal, endEntry, followJob, StdinError, logTrimmedThrough, readLog, streamIdAfter, LOG_READER_FRESH_MS, markLogRead, waitLog, type LogEntry } from '../../state/job-streams.js';
import type { ControlPlaneContext } from '../context.js';
import type { LogLine } from '../../api/logs.js';
import { inputLocality } from '../../state/locality.js';
import { getNode } from '../../state/nodes.js';
import { ATTACH_WAIT_MS } from '../../api/attach.js';

const JobId = Type.String({ pattern: '^[a-z0-9][-a-z0-9]{0,62}$' });

/**
 * One line of the ndjson log stream. Output that is not UTF-8 travels as base64, and so does
 * output that JSON would make longer than base64 does: JSON writes each control byte as six
 * (`\u0000`), so a tar stream or zeros through `oswalk run` would cross the wire six times over.
 */
export function logLine(e: LogEntry): LogLine {
  const text = e.data.toString('utf8');
  const exact = Buffer.byteLength(text) === e.data.length && !text.includes('\uFFFD');
  const asText = exact && e.data.length + jsonEscapeBytes(e.data) <= Math.ceil(e.data.length / 3) * 4;
  return { id: e.id, t: e.t, ...(asText ? { text } : { b64: e.data.toString('base64') }), ...(e.attempt ? { attempt: e.attempt } : {}) };
}

/** The bytes JSON adds in escaping this text: 1 for \n \t \r \b \f " and \\, 5 for any other control byte (\u00XX). */
function jsonEscapeBytes(data: Buffer): number {
  let extra = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b >= 0x20 && b !== 0x22 && b !== 0x5c) continue;
    extra += b === 0x0a || b === 0x09 || b === 0x0d || b === 0x08 || b === 0x0c || b === 0x22 || b === 0x5c ? 1 : 5;
  }
  return extra;
}

/**
 * A refusal of a job's input as the API answers it: the job is gone (NotFound), or it or its
 * input has ended (Conflict: a client stops sending, as a pipe's writer does).
 */
function stdinRefused(err: StdinError): HttpError {
  const [status, name] = ({ NOJOB: [404, 'NotFound'], ENDED: [409, 'Conflict'], CLOSED: [409, 'Conflict'] } as const)[err.reason];
  return new HttpError(status, err.message, name);
}

const MAX_U64 = 2n ** 64n - 1n;

/** How long a piece of input waits in a request for its job to catch up before the client is told to send it again. */
const STDIN_HOLD_MS = 5000;

/** How long one blocking read waits before the follower checks the job and the client again. */
const FOLLOW_BLOCK_MS = 5000;

/**
 * Jobs: submit one-off jobs, list, inspect, cancel, and read or follow their output.
 * `oswalk run` is POST /v1/jobs followed by GET /v1/jobs/:id/logs?follow=1, whose last line
 * ({t: "end"}) carries the final state and exit code.
 */
export async function jobsRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  const { redis, ks } = ctx;

  /**
   * A job's log as NDJSON lines (LogLine), then its end line; with follow, as it grows until the
   * job ends. `from`: the id of the last line the reader has.
   */
  async function streamLog(req: FastifyRequest, reply: FastifyReply, job: JobRecord, follow: boolean, from?: string): Promise<FastifyReply> {
    const out = new PassThrough();
    let closed = false;
    // Whichever comes first; the other listener goes with it, or a slow client's every wait
    // would leave one behind on the connection.
    const drained = () => new Promise<void>((r) => {
      const done = () => {
        out.off('drain', done);
        reply.raw.off('close', done);
        r();
      };
      out.once('drain', done);
      reply.raw.once('close', done);
    });
    // A follower holds a job that prints faster than it is read (appendLog-1.lua) while its
    // client is here: it says so, also while waiting for that client.
    const present = follow && !TERMINAL_STATES.has(job.state)
      ? setInterval(() => void markLogRead(redis, ks, job.id).catch(() => undefined), LOG_READER_FRESH_MS / 4)
      : undefined;
    // A session runs on only while a client follows it (the monitor hangs it up).
    const client = follow && watchedForClient(job.spec) && !TERMINAL_STATES.has(job.state)
      ? setInterval(() => void touchTerminalClient(redis, ks, job.id).catch(() => undefined), TERMINAL_CLIENT_GRACE_MS / 5)
      : undefined;
    if (client) await touchTerminalClient(redis, ks, job.id);
    if (present) await markLogRead(redis, ks, job.id);
    reply.raw.on('close', () => {
      closed = true;
      clearInterval(client);
      clearInterval(present);
    });
    const pump = async () => {
      // Marked before the first read: the end then writes an end line that wakes the blocking
      // read. A job that ended before has none unless someone followed it; its end line is
      // built from the record.
      const state = follow ? await followJob(redis, ks, job.id) : job.state;
      const reader = follow && state && !TERMINAL_STATES.has(state) ? await ctx.readers.take() : undefined;
      const blocking = reader?.conn;
      // A client gone mid-read: its connection goes back now, not when the read times out.
      const gone = () => void ctx.readers.unblock(reader!);
      if (reader) reply.raw.once('close', gone);
      const writeEnd = (j: JobRecord | undefined) => {
        if (j && TERMINAL_STATES.has(j.state)) out.write(JSON.stringify(logLine(endEntry(j))) + '\n');
      };
      try {
        let after = from ?? '0';
        if (after === '0' && job.logDropped > 0) {
          out.write(JSON.stringify({ id: '0', t: 'sys', text: `[${job.logDropped} bytes of earlier output were dropped; the newest are kept]` }) + '\n');
        }
        for (;;) {
          // A reader that fell more than the kept amount behind a fast job: say where output is
          // missing, rather than splice what is left together.
          const trimmed = after === '0' ? undefined : await logTrimmedThrough(redis, ks, job.id);
          if (trimmed && streamIdAfter(trimmed, after)) {
            out.write(JSON.stringify({ id: trimmed, t: 'sys', text: `[output dropped here: the job printed more than the ${LIMITS.logBytes / 2 ** 20} MiB kept before this reader read it]` }) + '\n');
            after = trimmed;
          }
          const entries = blocking ? await waitLog(blocking, ks, job.id, after, FOLLOW_BLOCK_MS) : await readLog(redis, ks, job.id, after);
          if (closed) return;
          let readThrough: number | undefined;
          for (const e of entries) {
            // As fast as the client takes it, not faster: what it has not taken holds the job
            // back (markLogRead), instead of piling up here.
            if (!out.write(JSON.stringify(logLine(e)) + '\n')) await drained();
            if (closed) return;
            after = e.id;
            readThrough = e.offset ?? readThrough;
          }
          if (blocking && readThrough !== undefined) await markLogRead(redis, ks, job.id, readThrough);
          if (entries.some((e) => e.t === 'end')) return;
          if (!blocking) {
            if (entries.length < 1000) return writeEnd(await getJob(redis, ks, job.id));
          } else if (!entries.length) {
            // A quiet stream: stop if the job ended without an end line (it was trimmed away).
            const now = await getJob(redis, ks, job.id);
            if (!now || TERMINAL_STATES.has(now.state)) return writeEnd(now);
          }
        }
      } catch (err) {
        req.log.warn({ err, job: job.id }, 'log stream failed');
      } finally {
        // Every read on it was awaited; one that failed leaves it unsound, and give() closes it.
        // (Not to be cut short once given: the close of a stream that ended comes after.)
        if (reader) {
          reply.raw.off('close', gone);
          ctx.readers.give(reader);
        }
        out.end();
      }
    };
    // An empty line at once (NDJSON readers skip it): the response starts now, so a client's
    // request timeout, which bounds a stream only until it starts, does not fire on a job that
    // waits for a node longer than that.
    if (follow) out.write('\n');
    void pump();
    return reply.type('application/x-ndjson').send(out);
  }

  const FollowQuery = Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true'), Type.Literal('0'), Type.Literal('false')]));
  const following = (q: string | undefined) => q === '1' || q === 'true';

  /**
   * Submit a job. With ?follow=1 the answer is the job's log stream as GET /v1/jobs/:id/logs?follow=1
   * gives it, the job's path in the Location header (kubectl run --attach, docker run): what
   * `oswalk run` and the shell's commands do next anyway, without a second request while the
   * job already runs.
   */
  app.post('/v1/jobs', {
    schema: { body: SubmitRequestSchema, querystring: Type.Object({ follow: FollowQuery }), response: { 200: SubmitAnswerSchema } },
  }, async (req, reply) => {
    let spec;
    try {
      spec = normalizeJobSpec(req.body.spec, 'body.spec');
    } catch (err) {
      throw new HttpError(400, (err as Error).message, 'Bad Request');
    }
    // Where its input files' data is, looked up once: the scheduler prefers a node holding it.
    const input = spec.inputs ? await inputLocality(ctx.fs.redis, ctx.fs.ks, spec.inputs) : undefined;
    const [id] = await submitJobs(redis, ks, [{ ...(req.body.name ? { name: req.body.name } : {}), spec, ...(input ? { input } : {}) }]);
    req.log.info({ job: id, ...(input ? { inputBytes: input.bytes } : {}) }, 'job submitted');
    if (following(req.query.follow)) {
      const job = await getJob(redis, ks, id);
      if (job) {
        reply.header('location', `/v1/jobs/${id}`);
        return streamLog(req, reply, job, true);
      }
    }
    return { id, name: req.body.name ?? `run-${id}` };
  });

  app.get('/v1/jobs', {
    schema: {
      querystring: Type.Object({
        state: Type.Optional(JobStateSchema),
        owner: Type.Optional(Type.String({ pattern: '^(Job|Service)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
        // A job's labels are those of the Job or Service manifest it runs for (kubectl's -l).
        labelSelector: Type.Optional(Type.String({ maxLength: 4096 })),
        // Jobs whose name holds this text.
        name: Type.Optional(Type.String({ maxLength: LIMITS.nameLength })),
        // The next page: the `next` of the page before.
        after: Type.Optional(Type.String({ maxLength: 128 })),
      }),
      response: { 200: JobListSchema },
    },
  }, async (req) => {
    const q = req.query;
    const owner = q.owner ? { kind: q.owner.split('/')[0] as JobOwner['kind'], name: q.owner.split('/')[1] } : undefined;
    // The schema's coercion turns "Infinity" into a number that passes as an integer.
    if (q.limit !== undefined && !Number.isSafeInteger(q.limit)) throw new HttpError(400, 'querystring/limit must be an integer from 1 to 10000', 'Bad Request');
    const where = q.labelSelector === undefined ? undefined : await labelFilter(q.labelSelector);
    try {
      return await listJobs(redis, ks, {
        ...(q.state ? { state: q.state } : {}), ...(owner ? { owner } : {}), ...(where ? { where } : {}), ...(q.name ? { nameContains: q.name } : {}),
        ...(q.after !== undefined ? { after: q.after } : {}), limit: q.limit ?? 100,
      });
    } catch (err) {
      if (err instanceof RangeError) throw new HttpError(400, `querystring/after: ${err.message}`, 'Bad Request');
      throw err;
    }
  });

  /**
   * Whether a job's labels match the selector. A job has the labels of the Job or Service
   * manifest it runs for (as a Pod has its template's); one that `oswalk run` started, or whose
   * manifest is gone, has none, so only requirements like key!=value or !key can hold for it.
   */
  async function labelFilter(text: string): Promise<(j: JobRecord) => boolean> {
    let selector;
    try {
      selector = parseLabelSelector(text);
    } catch (err) {
      throw new HttpError(400, `querystring/labelSelector: ${(err as Error).message}`, 'Bad Request');
    }
    const labels = new Map<string, Record<string, string>>();
    for (const kind of ['Job', 'Service'] as const) {
      for (const m of await listObjects(redis, ks, kind)) labels.set(`${kind}/${m.metadata.name}`, m.metadata.labels);
    }
    return (j) => matchesLabels(selector, (j.owner && labels.get(`${j.owner.kind}/${j.owner.name}`)) ?? {});
  }

  app.get('/v1/jobs/:id', { schema: { params: Type.Object({ id: JobId }), response: { 200: JobViewSchema } } }, async (req) => {
    const job = await getJob(redis, ks, req.params.id);
    if (!job) throw new HttpError(404, `job "${req.params.id}" does not exist (oswalk get jobs lists them)`, 'NotFound');
    return job;
  });

  // Where a session's job runs, for its client to attach there (src/api/attach.ts): answered
  // once the job runs or ended, or when waitMs passes (the client asks again).
  app.get('/v1/jobs/:id/attach', {
    schema: {
      params: Type.Object({ id: JobId }),
      querystring: Type.Object({ waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: ATTACH_WAIT_MS })) }),
      response: { 200: AttachPointSchema },
    },
  }, async (req): Promise<AttachPoint> => {
    const deadline = Date.now() + (req.query.waitMs ?? 0);
    let touched = 0;
    // Asked again soon at first (a job usually starts within milliseconds), then each 50 ms.
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      const job = await getJob(redis, ks, req.params.id);
      if (!job) throw new HttpError(404, `job "${req.params.id}" does not exist`, 'NotFound');
      if (!job.spec.attachKey) throw new HttpError(409, `job "${job.id}" is no session: submit it with "attachKey" (oswalk run -i or -t)`, 'Conflict');
      // Its client waits here: the session is not hung up meanwhile (then its agent says it is there).
      if (Date.now() - touched > TERMINAL_CLIENT_GRACE_MS / 5) {
        touched = Date.now();
        await touchTerminalClient(redis, ks, job.id);
      }
      if (job.state === 'running' && job.node) {
        const node = await getNode(redis, ks, job.node);
        return {
          state: job.state, attempt: job.attempt, node: job.node,
          ...(node?.agentUrl ? { agentUrl: node.agentUrl } : {}), ...(node?.attachSocket ? { socket: node.attachSocket } : {}), ...(node?.hostId ? { hostId: node.hostId } : {}),
        };
      }
      if (TERMINAL_STATES.has(job.state) || Date.now() + wait > deadline || req.raw.destroyed) return { state: job.state, attempt: job.attempt };
      await new Promise((r) => setTimeout(r, wait));
    }
  });

  app.get('/v1/owners/:kind/:name', {
    schema: {
      params: Type.Object({ kind: Type.Union([Type.Literal('Job'), Type.Literal('Service')]), name: Type.String({ maxLength: LIMITS.nameLength }) }),
      response: { 200: OwnerStatusSchema },
    },
  }, async (req) => {
    const st = await getOwnerStatus(redis, ks, { kind: req.params.kind as JobOwner['kind'], name: req.params.name });
    if (!st) throw new HttpError(404, `${req.params.kind} "${req.params.name}" has no job records`, 'NotFound');
    return st;
  });

  app.post('/v1/jobs/:id/cancel', {
    schema: { params: Type.Object({ id: JobId }), response: { 200: CancelAnswerSchema } },
  }, async (req) => {
    const state = await cancelJob(redis, ks, req.params.id);
    if (!state) throw new HttpError(404, `job "${req.params.id}" does not exist`, 'NotFound');
    req.log.info({ job: req.params.id, state }, 'job cancel');
    return { id: req.params.id, state };
  });

  // Standard input arrives as raw bytes, a piece at a time (`oswalk run -i`).
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: LIMITS.stdinPieceBytes }, (_req, body, done) => done(null, body));
  app.post('/v1/jobs/:id/stdin', {
    config: { audit: false },
    schema: {
      params: Type.Object({ id: JobId }),
      querystring: Type.Object({ eof: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0')])) }),
      response: { 200: StdinAnswerSchema },
    },
  }, async (req): Promise<StdinAnswer> => {
    const body = req.body;
    if (body !== undefined && !Buffer.isBuffer(body)) throw new HttpError(415, 'send standard input as application/octet-stream', 'Unsupported Media Type');
    const job = await getJob(redis, ks, req.params.id);
    if (!job) throw new HttpError(404, `job "${req.params.id}" does not exist`, 'NotFound');
    if (!job.spec.stdin) throw new HttpError(409, `job "${job.id}" reads no standard input: submit it with "stdin": true (oswalk run -i)`, 'Conflict');
    // A job behind its input holds the piece here a while, retried as the job reads, rather
    // than sending every client back at once: most holds end within a few ms.
    const deadline = Date.now() + STDIN_HOLD_MS;
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      try {
        if (await appendStdin(redis, ks, job.id, body ?? Buffer.alloc(0), req.query.eof === '1') === 'appended') return { appended: true };
      } catch (err) {
        if (err instanceof StdinError) throw stdinRefused(err);
        throw err;
      }
      if (Date.now() + wait > deadline) return { appended: false };
      await new Promise((r) => setTimeout(r, wait));
    }
  });

  // A tty job's terminal takes a new size (the client's window changed: SIGWINCH).
  app.post('/v1/jobs/:id/resize', {
    config: { audit: false },
    schema: {
      params: Type.Object({ id: JobId }),
      body: WindowSizeSchema,
      response: { 200: Type.Object({ ok: Type.Boolean() }) },
    },
  }, async (req) => {
    const job = await getJob(redis, ks, req.params.id);
    if (!job) throw new HttpError(404, `job "${req.params.id}" does not exist`, 'NotFound');
    if (!job.spec.tty) throw new HttpError(409, `job "${job.id}" has no terminal: submit it with "tty" (oswalk run -t)`, 'Conflict');
    try {
      await resizeTerminal(redis, ks, job.id, req.body);
    } catch (err) {
      if (err instanceof StdinError) throw stdinRefused(err);
      throw err;
    }
    return { ok: true };
  });

  app.get('/v1/jobs/:id/logs', {
    schema: {
      params: Type.Object({ id: JobId }),
      querystring: Type.Object({
        follow: FollowQuery,
        after: Type.Optional(Type.String({ pattern: '^\\d{1,20}(-\\d{1,20})?$' })),
      }),
    },
  }, async (req, reply) => {
    // Checked before the 200 goes out: Redis refuses a stream id part past 64 bits.
    if (req.query.after?.split('-').some((part) => BigInt(part) > MAX_U64)) {
      throw new HttpError(400, `querystring/after must be a log entry id (two numbers of at most 64 bits), got ${clip(req.query.after, 60)}`, 'Bad Request');
    }
    const job = await getJob(redis, ks, req.params.id);
    if (!job) throw new HttpError(404, `job "${req.params.id}" does not exist`, 'NotFound');
    return streamLog(req, reply, job, following(req.query.follow), req.query.after);
  });
}
