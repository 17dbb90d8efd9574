import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { Option, type Command } from 'commander';
import type { JobSpecRequest, JobView, StdinAnswer, SubmitAnswer, SubmitRequest, WindowSize } from '../api/jobs.js';
import type { LogEnd, LogLine } from '../api/logs.js';
import { ApiError, type ApiClient } from './client.js';
import { action, client, MIN_JOB_MEMORY, onBrokenPipe, parseKeyValues, parseMemoryFlag, positiveNumber, UsageError } from './common.js';
import { localMountPath } from './config.js';
import { LIMITS } from '../util/limits.js';
import { makeTerminalRaw, note, restoreTerminal } from './terminal.js';

/** The cwd relative to the unified mount, when the cwd is inside it. */
export function workingDirInMount(cwd: string, mount: string): string | undefined {
  if (cwd !== mount && !cwd.startsWith(mount + sep)) return undefined;
  return relative(mount, cwd) || '.';
}

/**
 * The files of the unified filesystem a command names (its program and arguments, as paths from
 * `cwd`), as paths from the filesystem's root: the job's inputs, which the scheduler places it
 * near (spec.inputs). Only regular files inside the mount count; options are skipped, and so
 * is anything past LIMITS.jobInputs.
 */
export async function inputsInMount(argv: readonly string[], cwd: string, mount: string): Promise<string[]> {
  const inMount = [...new Set(argv.filter((a) => a && !a.startsWith('-')).map((a) => resolve(cwd, a)))]
    .filter((p) => p.startsWith(mount + sep)).slice(0, LIMITS.jobInputs);
  const files = await Promise.all(inMount.map(async (p) => ((await stat(p).catch(() => undefined))?.isFile() ? `/${relative(mount, p)}` : undefined)));
  return files.filter((f): f is string => f !== undefined);
}

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
const OWN_OUTPUT: FollowSink = { out: (d) => written(process.stdout, d), err: (d) => written(process.stderr, d), note };

export interface FollowOptions {
  verbose?: boolean;
  signal?: AbortSignal;
  /** A terminal session (`run -t`): one that ends without the program's exit status (its node was lost) exits 255, as ssh does when its connection is lost. */
  terminal?: boolean;
  sink?: FollowSink;
  /** The job stands in for a local program (`oswalk shell`): a signal that killed it shows in how it ends, as a local one's would, not in a line of ours. */
  asLocal?: boolean;
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
  // Tell the user why nothing happens while the job waits for a node (`run`, and `logs -f` of a
  // job that is still pending): at once, then whenever the reason changes.
  let lastReason = '';
  const explain = () => void api.get<JobView>(`/v1/jobs/${id}`).then((j) => {
    if (j.state === 'pending' && j.waitReason && j.waitReason !== lastReason) {
      lastReason = j.waitReason;
      sink.note(`job ${id} is waiting: ${j.waitReason}`);
    }
  }, () => undefined);
  const first = setTimeout(explain, 300);
  const watch = setInterval(explain, 2000);
  try {
    return await followOutput(api, id, opts, sink);
  } finally {
    clearTimeout(first);
    clearInterval(watch);
  }
}

async function followOutput(api: ApiClient, id: string, opts: FollowOptions, sink: FollowSink): Promise<JobExit> {
  let rest = '';
  let exit: JobExit | undefined;
  /** One line of the stream: passed on, or taken as the end; returned for its id. */
  const handle = async (line: string): Promise<LogLine | undefined> => {
    if (!line) return undefined;
    const l = JSON.parse(line) as LogLine;
    const data = l.b64 !== undefined ? Buffer.from(l.b64, 'base64') : Buffer.from(l.text ?? '');
    if (l.t === 'out') await sink.out(data);
    else if (l.t === 'err') await sink.err(data);
    // sys: what the API says of the output itself (bytes dropped), which a reader must not miss.
    else if (l.t === 'sys') sink.note(data.toString());
    else if (l.t === 'end') {
      const end = JSON.parse(data.toString()) as LogEnd;
      const signal = end.signal ? osConstants.signals[end.signal as NodeJS.Signals] : undefined;
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
    }
    return l;
  };
  // The control plane may go away mid-stream (restarted, or one of several failing over): the
  // job runs on, so follow again from the last line seen, for up to a minute.
  let after = '';
  let lostAt: number | undefined;
  let followed = false;
  for (;;) {
    try {
      for await (const chunk of api.stream(`/v1/jobs/${id}/logs?follow=1${after ? `&after=${after}` : ''}`, opts.signal)) {
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
 * One piece of a job's input, or its end (`eof`), sent until the job takes it: a job behind
 * its input (past what is kept for a new start, input flows as through a pipe) has the piece
 * sent again, so this command reads no more of its own input meanwhile, as a pipe's writer blocks.
 */
export async function postStdin(api: ApiClient, id: string, data: Buffer, eof = false): Promise<void> {
  const path = `/v1/jobs/${id}/stdin${eof ? '?eof=1' : ''}`;
  while (!(await api.postBytes<StdinAnswer>(path, data)).appended);
}

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
    const all = Buffer.concat(chunks);
    chunks = [];
    bytes = 0;
    stream.resume();
    for (let i = 0; i < all.length; i += max) yield all.subarray(i, i + max);
  }
  if (error) throw error;
}

/**
 * Our standard input to the job, as it comes, then its end. A job that has ended, or closed
 * its input, stops it quietly (what it did not read is its business, as with a local pipe).
 */
async function sendStdin(api: ApiClient, id: string): Promise<void> {
  try {
    for await (const piece of gathered(process.stdin, LIMITS.stdinPieceBytes)) await postStdin(api, id, piece);
    await postStdin(api, id, Buffer.alloc(0), true);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'Conflict') && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      // (A premature close is ours: the job ended, and its input, a terminal that never ends, was closed.)
      note(`could not send standard input to job ${id}: ${(err as Error).message}`);
    }
  } finally {
    process.stdin.destroy();
  }
}

function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}

/**
 * The -e values as docker run takes them: each one is one variable, NAME=value with the value
 * exactly as typed (commas, equals signs, spaces and all), or NAME alone for this shell's value
 * of it (left out when it has none).
 */
function envFlags(values: string[], from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const name = eq < 0 ? v : v.slice(0, eq);
    if (!name) throw new UsageError(`-e "${v}": give NAME=value, or NAME to pass this shell's value`);
    if (eq >= 0) env[name] = v.slice(eq + 1);
    else if (from[name] !== undefined) env[name] = from[name]!;
  }
  return env;
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** This terminal's size (standard output's, as ssh takes it; 24x80 when only input is one). */
function windowSize(): WindowSize {
  return { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 };
}

export function register(program: Command): void {
  program.command('run')
    .description('run a command on the best node of the cluster, stream its output here, and exit with its exit code')
    .argument('<command...>', 'the program and its arguments (put them after --)')
    .option('--cpus <n>', 'CPUs to reserve', positiveNumber, '1')
    .option('--memory <size>', 'memory to reserve and limit the job to, e.g. 512Mi')
    .option('--image <image>', 'container image (docker runtime; default: a docker node runs the job in its default image)')
    .option('--node-selector <k=v,...>', 'only nodes with these labels (oswalk.dev/node=NAME pins a node)')
    .addOption(new Option('--runtime <runtime>', 'docker or process (default: docker with --image, else any)').choices(['docker', 'process']))
    .option('-e, --env <NAME=value>', 'environment variable, its value exactly as given (repeatable; NAME alone passes this shell\'s value)', collect, [] as string[])
    .option('--name <name>', 'a name for the job')
    .option('--priority <n>', 'higher runs first (-1000..1000)')
    .option('--deadline <seconds>', 'kill and fail the job after this many seconds')
    .option('--retries <n>', 'retry a failed run up to n times, with backoff')
    .option('-i, --stdin', 'pass this command\'s standard input to the job, as docker run -i does (without it the job reads EOF)')
    .option('-t, --tty', 'give the job a terminal, as ssh -t and docker run -t do (with -i: an interactive session, keys and window size go through)')
    .option('--detach', 'print the job id and return at once')
    .option('-v, --verbose', 'also show scheduling and attempt messages')
    .action(action(async (command: string[], opts: {
      cpus: string; memory?: string; image?: string; nodeSelector?: string; runtime?: 'docker' | 'process'; env: string[];
      name?: string; priority?: string; deadline?: string; retries?: string; stdin?: boolean; tty?: boolean; detach?: boolean; verbose?: boolean;
    }, cmd: Command) => {
      if (opts.stdin && opts.detach) throw new UsageError('-i sends this command\'s input to the job while it runs, so it cannot --detach');
      if (opts.tty && opts.detach) throw new UsageError('-t gives the job this terminal while it runs, so it cannot --detach');
      // As docker run -it: a terminal session needs one here, to take keys from and size by.
      if (opts.tty && !process.stdin.isTTY) throw new UsageError('-t needs a terminal, and standard input is not one: run it from a terminal, or leave out -t (output then comes as from a pipe)');
      if (command[0] === '') throw new UsageError('the command is an empty string: give a program to run, as in oswalk run -- ./my_program');
      if (opts.image === '') throw new UsageError('--image is empty: give an image name, or leave --image out (a process node runs the job on the host, a docker node in its default image)');
      if (opts.name !== undefined) await checkName(opts.name);
      const api = client(cmd);
      const env = envFlags(opts.env);
      const window = opts.tty ? windowSize() : undefined;
      // The job's terminal is of the kind this one is, as ssh tells sshd (an -e TERM wins).
      if (opts.tty && env.TERM === undefined && process.env.TERM) env.TERM = process.env.TERM;
      const mount = localMountPath();
      const wd = workingDirInMount(process.cwd(), mount);
      const inputs = await inputsInMount(command, process.cwd(), mount);
      const runtime = opts.runtime ?? (opts.image ? 'docker' : undefined);
      const spec: JobSpecRequest = {
        command,
        cpus: Number(opts.cpus),
        ...(opts.memory ? { memoryBytes: await parseMemoryFlag(opts.memory, '--memory', MIN_JOB_MEMORY) } : {}),
        ...(opts.image ? { image: opts.image } : {}),
        ...(runtime ? { runtime } : {}),
        ...(opts.nodeSelector ? { nodeSelector: parseKeyValues(opts.nodeSelector, '--node-selector') } : {}),
        ...(Object.keys(env).length ? { env } : {}),
        ...(wd ? { workingDir: wd } : {}),
        ...(opts.priority ? { priority: Number(opts.priority) } : {}),
        ...(opts.deadline ? { activeDeadlineSeconds: Number(opts.deadline) } : {}),
        // Once unless told otherwise, as docker run and kubectl run (JOB_DEFAULTS retries 6 times).
        backoffLimit: Number(opts.retries ?? 0),
        ...(opts.stdin ? { stdin: true } : {}),
        ...(window ? { tty: window } : {}),
        ...(inputs.length ? { inputs } : {}),
      };
      const { id } = await api.post<SubmitAnswer>('/v1/jobs', { ...(opts.name ? { name: opts.name } : {}), spec } satisfies SubmitRequest);
      if (opts.detach) {
        process.stdout.write(`${id}\n`);
        return 0;
      }
      // Ctrl-C, a SIGTERM (timeout(1), a CI runner) or a closed terminal cancels the job, as it
      // would end the program run locally; its end (cancelled) still arrives through the
      // stream. A second signal leaves at once. A reader of our output that goes away
      // cancels it too, as SIGPIPE would end the local program.
      const cancel = () => api.post(`/v1/jobs/${id}/cancel`).catch(() => undefined);
      let signalled = false;
      const onSignal = (sig: NodeJS.Signals) => {
        // A closed terminal sends SIGHUP twice (the kernel's, then the shell's to its jobs as it
        // exits): not a second one to leave by, or the cancel would not go out.
        if (signalled && sig === 'SIGHUP') return;
        if (signalled) process.exit(128 + osConstants.signals[sig]);
        signalled = true;
        void cancel();
        note(`${opts.tty ? 'hanging up' : 'cancelling'} job ${id} (${sig === 'SIGHUP' ? 'Ctrl-C or SIGTERM' : sig} again to leave without waiting)`);
      };
      // With a terminal, a closed one (SIGHUP) or a kill of this command hangs the job's
      // terminal up, as ssh's end does to its session: the agent stops a tty job with SIGHUP.
      for (const s of STOP_SIGNALS) process.on(s, onSignal);
      onBrokenPipe.add(cancel);
      // Keys reach the job as typed (Ctrl-C, Ctrl-Z, Ctrl-\ and Ctrl-D included): its terminal
      // turns them into signals and end of input, as a local one would.
      if (opts.tty && opts.stdin) makeTerminalRaw();
      const resized = () => void api.post(`/v1/jobs/${id}/resize`, windowSize()).catch(() => undefined);
      if (window) process.stdout.on('resize', resized);
      if (opts.stdin) void sendStdin(api, id);
      try {
        return (await attachJob(api, id, { verbose: opts.verbose, terminal: opts.tty })).code;
      } finally {
        restoreTerminal();
        process.stdout.off('resize', resized);
        for (const s of STOP_SIGNALS) process.off(s, onSignal);
        onBrokenPipe.delete(cancel);
        // The job is over: input still to come (a terminal, a pipe that never ends) is no one's.
        if (opts.stdin) process.stdin.destroy();
      }
    }));
}

/** A job's name follows the rule of a manifest's metadata.name, as the API checks it. */
async function checkName(name: string): Promise<void> {
  const [{ NameSchema }, { Value }] = await Promise.all([import('../api/objects.js'), import('typebox/value')]);
  if (!Value.Check(NameSchema, name)) throw new UsageError(`--name ${JSON.stringify(name)}: must be ${(NameSchema as { description?: string }).description}`);
}
