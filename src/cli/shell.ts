import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { homedir, tmpdir, constants as osConstants } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type { JobSpecRequest } from '../api/jobs.js';
import type { ClusterStatus } from '../api/status.js';
import { packageRoot } from '../util/paths.js';
import { ApiError, type ApiClient } from './client.js';
import { action, client, UsageError } from './common.js';
import { localMountPath } from './config.js';
import { LIMITS } from '../util/limits.js';
import { inputsInMount, postStdin, workingDirInMount } from './run.js';
import { attachJob, submitFollowing, type FollowSink, type JobExit } from './follow.js';
import { frame, FrameReader } from '../api/attach.js';

/**
 * `oswalk shell`: the user's bash, in which every external command runs on the best node of
 * the cluster as if here (MOSIX's promise, Plan 9's cpu): same working directory in the
 * unified mount, same exported environment, stdin, stdout and stderr (a terminal when the
 * shell has one), signals and exit status. Builtins and the shell's own state (cd, export,
 * variables, functions, aliases, history, job control) stay here, since bash itself does.
 *
 * How: bash runs with native/liboswalk-shell.so preloaded, whose execve() runs
 * native/oswalk-exec in place of each program (src/cli/shell/). That small client hands the
 * command to this process, the shell's session, over a Unix socket in a directory only the
 * user can enter; the session submits it as a job, follows it and relays its input and output
 * both ways (the wire format is in oswalk-exec.c). One session for the whole shell: it is
 * already connected when a command comes, so a command costs its job, not a CLI's start.
 */

/** Commands that run here by default: editors and pagers (every key would cross the network), and tools that act on this machine or session. */
const LOCAL_BY_DEFAULT = ['oswalk', 'vi', 'vim', 'nvim', 'nano', 'emacs', 'ed', 'sudo', 'su', 'ssh', 'scp', 'tmux', 'screen', 'clear', 'reset', 'tput', 'stty', 'tty'];

/** Commands that run here and send what they start to the nodes: make's recipes, xargs' and parallel's commands. */
const FAN_OUT = ['make', 'gmake', 'xargs', 'parallel'];

/** Where a user lists more commands to run here, one name a line (# comments). */
export function localListFile(): string {
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'oswalk', 'shell-local');
}

function localCommands(): string[] {
  const file = localListFile();
  const listed = existsSync(file)
    ? readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean)
    : [];
  for (const name of listed) {
    if (name.includes('/') || name.includes(':')) throw new UsageError(`${file}: "${name}" is not a command name (give names such as make, not paths)`);
  }
  return [...new Set([...LOCAL_BY_DEFAULT, ...listed])];
}

/** How much of a command's input the session holds while it is sent to the job. */
const INPUT_IN_FLIGHT_BYTES = 4 * 1024 * 1024;

/** Variables that describe this machine or this session, not the command: the job gets the node's own. */
const NOT_EXPORTED = new Set(['PWD', 'OLDPWD', 'SHLVL', '_', 'OSWALK_LOCAL', 'OSWALK_TOKEN', 'LD_PRELOAD']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The prompt's cluster part: nodes and CPUs ready, as `oswalk status` counts them. */
async function clusterSummary(api: ApiClient): Promise<string> {
  const st = await api.get<ClusterStatus>('/v1/status');
  const ready = st.nodes.filter((n) => n.status === 'ready' && n.mountReady !== false);
  const cpus = ready.reduce((s, n) => s + n.cpus, 0);
  return `oswalk: ${ready.length} node${ready.length === 1 ? '' : 's'}, ${cpus} CPU${cpus === 1 ? '' : 's'}`;
}

/** The rc file of an interactive cluster shell: the user's own first, then the prompt and `here`. */
function rcFile(dir: string): string {
  const file = join(dir, 'bashrc');
  writeFileSync(file, `# oswalk shell: the user's bash settings, then the cluster's prompt.
# The rc file and prompt hooks set up this shell: what they run (pyenv init, stat...) runs here.
if [ -f ~/.bashrc ]; then OSWALK_LOCAL=1 . ~/.bashrc; fi
# here CMD...: run CMD on this machine (an editor, a tool that needs this machine's devices).
here() { OSWALK_LOCAL=1 "$@"; }
__oswalk_ps1=\${PS1:-'\\w \\$ '}
__oswalk_user_prompt=\${PROMPT_COMMAND:-}
__oswalk_prompt() {
  local status=$? where
  if [ -n "$__oswalk_user_prompt" ]; then (exit $status); OSWALK_LOCAL=1 eval "$__oswalk_user_prompt"; fi
  case "$PWD/" in
    "$OSWALK_SHELL_MOUNT"/*) read -r where < "$OSWALK_SHELL_DIR/status" ;;
    *) where='oswalk: this machine (outside the cluster mount)' ;;
  esac
  PS1="[\${where}] \${__oswalk_ps1}"
}
PROMPT_COMMAND=__oswalk_prompt
`);
  return file;
}

export function register(program: Command): void {
  program.command('shell')
    .description('start bash with every command typed (or run by a script) running on the best node of the cluster, as if here')
    .argument('[script]', 'run this bash script instead of an interactive shell')
    .argument('[args...]', 'the script\'s arguments')
    .option('-c, --command <commands>', 'run these commands, as bash -c does')
    .addHelpText('after', `
Inside the cluster mount, every external command runs on the best node: in the same directory,
with the shell's exported environment, its input, output, terminal and exit status. Builtins
and the shell's state (cd, export, variables, functions, aliases, history, job control) stay
here. Outside the mount everything runs here, and the prompt says so. Always here: ${LOCAL_BY_DEFAULT.join(', ')},
and the names listed in ${localListFile()}; \`here CMD\` (or OSWALK_LOCAL=1 CMD) runs one command here.
${FAN_OUT.join(', ')} run here and send what they start to the nodes: \`make -j8\` compiles on all of them.`)
    .action(action(async (script: string | undefined, args: string[], opts: { command?: string }, cmd: Command) => {
      if (script !== undefined && opts.command !== undefined) throw new UsageError('give -c COMMANDS or a SCRIPT, not both');
      const api = client(cmd);
      const mount = localMountPath();
      if (!existsSync(mount)) throw new UsageError(`the cluster mount ${mount} does not exist here: start a node (oswalk up) or say where it is (OSWALK_MOUNT)`);
      const natives = { exec: join(packageRoot(), 'native', 'oswalk-exec'), lib: join(packageRoot(), 'native', 'liboswalk-shell.so') };
      for (const f of Object.values(natives)) if (!existsSync(f)) throw new Error(`${f} is missing: run 'npm run build' (it needs a C compiler: apt-get install gcc libc6-dev)`);
      const local = localCommands();
      const summary = await clusterSummary(api);

      // A directory only this user can enter: whoever reaches the socket runs jobs as them.
      const dir = mkdtempSync(join(tmpdir(), 'oswalk-shell-'));
      const sock = join(dir, 'session.sock');
      writeFileSync(join(dir, 'status'), `${summary}\n`);
      const server = await listen(sock, (conn) => void session(api, mount, conn));
      const refresh = setInterval(() => void clusterSummary(api).then((s) => writeFileSync(join(dir, 'status'), `${s}\n`), () => undefined), 5000);
      try {
        const bashArgs = opts.command !== undefined ? ['-c', opts.command] : script !== undefined ? [script, ...args] : ['--rcfile', rcFile(dir), '-i'];
        const bash = spawn('bash', bashArgs, {
          stdio: 'inherit',
          env: {
            ...process.env,
            LD_PRELOAD: natives.lib,
            OSWALK_SHELL_EXEC: natives.exec,
            OSWALK_SHELL_SOCK: sock,
            OSWALK_SHELL_MOUNT: mount,
            OSWALK_SHELL_LOCAL: local.join(':'),
            OSWALK_SHELL_FANOUT: FAN_OUT.filter((c) => !local.includes(c)).join(':'),
            OSWALK_SHELL_DIR: dir,
          },
        });
        // Keys meant for the shell's commands (Ctrl-C) reach this process too when bash does not
        // take the terminal for itself (-c, scripts): the shell decides what they mean.
        const ignore = () => undefined;
        for (const s of ['SIGINT', 'SIGQUIT'] as const) process.on(s, ignore);
        const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
          bash.once('error', rej);
          bash.once('exit', (c, s) => res({ code: c, signal: s }));
        });
        return code ?? 128 + (signal ? osConstants.signals[signal] : 1);
      } finally {
        clearInterval(refresh);
        server.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }));
}

function listen(path: string, onConnection: (conn: Socket) => void): Promise<Server> {
  return new Promise((res, rej) => {
    const server = createServer(onConnection);
    server.once('error', rej);
    server.listen(path, () => res(server));
  });
}

/** One command of the shell, from its oswalk-exec: submitted, followed and relayed both ways. */
async function session(api: ApiClient, mount: string, conn: Socket): Promise<void> {
  // The client is the user's own oswalk-exec: a request as big as its arguments and environment.
  const frames = new FrameReader(Number.MAX_SAFE_INTEGER);
  const send = (type: string, data: Buffer | string = '') => conn.write(Buffer.concat(frame(type.charCodeAt(0), Buffer.isBuffer(data) ? data : Buffer.from(data))));
  let id: string | undefined;
  let ended = false;
  // What comes from the client before its job exists waits for it, in order.
  let input: Promise<unknown> = Promise.resolve();
  const later = (f: () => Promise<unknown>) => {
    input = input.then(f).catch(() => undefined);
  };
  // The job's id once submitted; '' when it never was (then what came for it goes nowhere).
  let started!: (jobId: string) => void;
  const job = new Promise<string>((r) => { started = r; });
  const toJob = (f: (jobId: string) => Promise<unknown>) => later(async () => {
    const jobId = await job;
    if (jobId) await f(jobId);
  });
  conn.on('error', () => undefined);
  // The client went away (interrupted, killed): its command goes too, as a local one would.
  conn.on('close', () => {
    if (!ended) later(async () => id && api.post(`/v1/jobs/${id}/cancel`));
  });
  // Input in flight to the job: past this much, read no more from the client until it is sent,
  // so that a command fed gigabytes holds a bounded amount here (the client then blocks in write).
  let inFlight = 0;
  // Input frames that come one after another go as one batch, in pieces of up to a request's
  // worth: the client's 64 KiB frames would otherwise cost a request each. Any other frame
  // closes the batch, so input and resizes keep their order.
  let batch: Buffer[] | undefined;
  const sendInput = (data: Buffer) => {
    inFlight += data.length;
    if (inFlight > INPUT_IN_FLIGHT_BYTES) conn.pause();
    if (batch) {
      batch.push(data);
      return;
    }
    const mine = [data];
    batch = mine;
    toJob(async (jobId) => {
      if (batch === mine) batch = undefined;
      const all = Buffer.concat(mine);
      try {
        for (let i = 0; i < all.length; i += LIMITS.stdinPieceBytes) await postStdin(api, jobId, all.subarray(i, i + LIMITS.stdinPieceBytes));
      } finally {
        inFlight -= all.length;
        if (inFlight <= INPUT_IN_FLIGHT_BYTES) conn.resume();
      }
    });
  };
  conn.on('data', (chunk: Buffer) => {
    for (const { type: code, payload: data } of frames.push(chunk)) {
      const type = String.fromCharCode(code);
      if (type !== 'I') batch = undefined;
      if (type === 'R') void run(data);
      else if (type === 'I') sendInput(data);
      else if (type === 'E') toJob((jobId) => postStdin(api, jobId, Buffer.alloc(0), true));
      else if (type === 'W') {
        const [rows, cols] = data.toString().split(' ').map(Number);
        toJob((jobId) => api.post(`/v1/jobs/${jobId}/resize`, { rows, cols }));
      } else if (type === 'C') toJob((jobId) => api.post(`/v1/jobs/${jobId}/cancel`));
    }
  });

  const run = async (request: Buffer) => {
    const req = parseRequest(request);
    let exit: JobExit;
    try {
      const wd = workingDirInMount(req.cwd, mount);
      if (!wd) throw new UsageError(`${req.cwd} is outside the cluster mount ${mount}`);
      // A program named by its path in the mount is found there on the node too: by its path from the working directory.
      const program = isAbsolute(req.path) && workingDirInMount(req.path, mount) ? relativeProgram(req.cwd, req.path) : req.path;
      const inputs = await inputsInMount([req.path, ...req.args], req.cwd, mount);
      const spec: JobSpecRequest = {
        // A program of the host's, as typed at a prompt: nodes that run processes. Run once, as
        // at a prompt: a failure is the command's answer, not a reason to run it again.
        runtime: 'process',
        backoffLimit: 0,
        command: [program, ...req.args],
        env: req.env,
        workingDir: wd,
        stdin: req.input,
        ...(req.tty ? { tty: req.tty } : {}),
        ...(inputs.length ? { inputs } : {}),
      };
      const submitted = await submitFollowing(api, { spec });
      id = submitted.id;
      started(submitted.id);
      const eol = req.tty ? '\r\n' : '\n';
      const sink: FollowSink = {
        out: (d) => wait(send('O', d)),
        err: (d) => wait(send('e', d)),
        note: (text) => void send('e', `oswalk: ${text}${eol}`),
      };
      exit = await attachJob(api, submitted.id, { sink, terminal: !!req.tty, asLocal: true, ...(submitted.stream ? { stream: submitted.stream } : {}) });
    } catch (err) {
      started('');
      send('e', `oswalk: ${req.path}: ${(err as Error).message}\n`);
      exit = { code: err instanceof ApiError && err.status === 0 ? 255 : 126 };
    }
    ended = true;
    await input;
    send('X', `${exit.code} ${exit.signal ?? 0}`);
    conn.end();
  };
  /** Hold the job's output back while the client is slow to take it (a paused pager, a full pipe). */
  const wait = (flushed: boolean) => (flushed ? undefined : new Promise<void>((r) => conn.once('drain', () => r())));
}

function relativeProgram(cwd: string, path: string): string {
  const rel = relative(resolve(cwd), path);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

interface ShellRequest {
  tty?: { rows: number; cols: number };
  /** False when the command's input was at its end already: the job reads none. */
  input: boolean;
  cwd: string;
  path: string;
  args: string[];
  env: Record<string, string>;
}

/** The 'R' frame (oswalk-exec.c): tty, input, rows, cols, cwd, path, argument count, arguments, environment. */
function parseRequest(data: Buffer): ShellRequest {
  const parts = data.toString('utf8').split('\0');
  const [tty, input, rows, cols, cwd, path, count] = parts;
  const n = Number(count);
  const args = parts.slice(7, 7 + n);
  const env: Record<string, string> = {};
  for (const entry of parts.slice(7 + n)) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    // Exported functions (BASH_FUNC_f%%) and names a job spec refuses stay with the shell.
    if (!ENV_NAME.test(name) || NOT_EXPORTED.has(name) || name.startsWith('OSWALK_SHELL_')) continue;
    env[name] = entry.slice(eq + 1);
  }
  return { ...(tty === '1' && Number(rows) > 0 ? { tty: { rows: Number(rows), cols: Number(cols) } } : {}), input: input !== '0', cwd, path, args, env };
}
