import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { Option, type Command } from 'commander';
import type { JobSpecRequest, StdinAnswer, SubmitAnswer, SubmitRequest, WindowSize } from '../api/jobs.js';
import { attachKeyOf } from '../util/attach-key.js';
import { runSession } from './attach.js';
import { attachJob, gathered, OWN_OUTPUT, submitFollowing } from './follow.js';
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
      // A session (-i, -t) attaches to its node directly, with a secret of its own (src/api/attach.ts);
      // one with retries goes through the control plane, whose log and input a new attempt reads again.
      const secret = (opts.stdin || opts.tty) && !spec.backoffLimit && process.env.OSWALK_ATTACH !== 'control-plane' ? randomBytes(32).toString('base64url') : undefined;
      if (secret) spec.attachKey = attachKeyOf(secret);
      const submit = { ...(opts.name ? { name: opts.name } : {}), spec } satisfies SubmitRequest;
      // Followed through the control plane from the start: its log stream comes with the answer.
      const { id, stream }: { id: string; stream?: AsyncIterable<Buffer> } = secret || opts.detach ? await api.post<SubmitAnswer>('/v1/jobs', submit) : await submitFollowing(api, submit);
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
      try {
        let shownThrough: number | undefined;
        let input = !!opts.stdin;
        if (secret) {
          const session = await runSession(api, id, secret, {
            sink: OWN_OUTPUT, stdin: input, verbose: opts.verbose, terminal: opts.tty,
            ...(window ? { window: { size: windowSize, onChange: (f) => (process.stdout.on('resize', f), () => process.stdout.off('resize', f)) } } : {}),
            ...(process.env.OSWALK_ATTACH === 'tls' ? { via: 'tls' as const } : {}),
          });
          if ('exit' in session) return session.exit.code;
          if ('shownThrough' in session) {
            // The stream to the node was lost: how the job ended is in its log.
            note(`lost the session's stream to its node: following job ${id} through the control plane`);
            shownThrough = session.shownThrough;
            input = false;
          } else if (session.why) {
            note(session.why);
          }
        }
        const resized = () => void api.post(`/v1/jobs/${id}/resize`, windowSize()).catch(() => undefined);
        if (window && shownThrough === undefined) process.stdout.on('resize', resized);
        if (input) void sendStdin(api, id);
        try {
          return (await attachJob(api, id, { verbose: opts.verbose, terminal: opts.tty, ...(shownThrough !== undefined ? { shownThrough } : {}), ...(stream ? { stream } : {}) })).code;
        } finally {
          process.stdout.off('resize', resized);
        }
      } finally {
        restoreTerminal();
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
