import { constants as osConstants } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseLabelSelector, type LabelSelector } from '../manifest/labels.js';
import { apiClient, ApiError, DEFAULT_REQUEST_TIMEOUT_MS, type ApiClient } from './client.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';

/** Exit codes scripts can rely on; brokenPipe is what a shell reports for a death by SIGPIPE. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, notFound: 4, brokenPipe: 141 } as const;

/** Work to finish when stdout's reader goes away (`oswalk run … | head`), before the CLI exits. */
export const onBrokenPipe = new Set<() => Promise<unknown>>();

/**
 * When the reader of stdout goes away (`oswalk get jobs | head`), end quietly with 141, as
 * SIGPIPE ends other programs: Node ignores SIGPIPE and would print an EPIPE stack trace. A
 * terminal that closed (EIO) ends it the same way, with 129, as its SIGHUP would.
 */
export function exitOnBrokenPipe(): void {
  let ending = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'EIO') throw err;
    if (ending) return;
    ending = true;
    const code = err.code === 'EPIPE' ? EXIT.brokenPipe : 128 + osConstants.signals.SIGHUP;
    void Promise.allSettled([...onBrokenPipe].map((f) => f())).then(() => process.exit(code));
  });
  // A closed terminal (SIGHUP) fails writes to stderr too; there is nowhere left to report that,
  // and the work under way (cancelling `oswalk run`'s job) must still finish.
  process.stderr.on('error', () => undefined);
}

export interface GlobalFlags {
  api?: string;
  token?: string;
  caCert?: string;
  requestTimeout?: string;
  output: OutputFormat;
}

export function addGlobalOptions(program: Command): void {
  program
    .option('--api <urls>', 'control plane URL, or every control plane\'s separated by commas, tried in turn (default: $OSWALK_API, then .oswalk/config.json)')
    .option('--token <token>', 'API token (default: $OSWALK_TOKEN, the file $OSWALK_TOKEN_FILE names, then .oswalk/config.json); any local user can read a command line, so prefer those')
    .option('--ca-cert <file>', 'the cluster CA\'s certificate, which the control plane\'s must be signed by (default: $OSWALK_CA_CERT, then .oswalk/config.json)')
    .option('--request-timeout <duration>', `how long a request to the control plane may take before the command gives up (e.g. 10s; 0: no limit; default: $OSWALK_REQUEST_TIMEOUT, then ${DEFAULT_REQUEST_TIMEOUT_MS / 1000}s)`)
    .addOption(new Option('-o, --output <format>', 'output format: a table, one with more columns (wide), kind/name lines (name, as kubectl\'s), JSON or YAML').choices(OUTPUT_FORMATS).default('table'));
}

function globals(cmd: Command): GlobalFlags {
  return cmd.optsWithGlobals() as GlobalFlags;
}

/**
 * The -o a command prints in; `names`: whether what it prints are named objects, which -o name
 * lists. Asked for names a command does not print, it is a usage error before anything is sent.
 */
export function output(cmd: Command, opts: { names?: boolean } = {}): OutputFormat {
  const format = globals(cmd).output;
  if (format === 'name' && !opts.names) throw new UsageError(`-o name: \`oswalk ${commandPath(cmd)}\` prints no named objects; use -o json or -o yaml`);
  return format;
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function client(cmd: Command): ApiClient {
  const g = globals(cmd);
  const timeout = g.requestTimeout ?? process.env.OSWALK_REQUEST_TIMEOUT;
  return apiClient({ ...g, ...(timeout ? { timeoutMs: parseDuration(timeout) } : {}) });
}

/** A flag or argument that cannot be right, found before anything is sent: exit 2. */
export class UsageError extends Error {}

/**
 * Wrap a command's action: errors become one line on stderr and an exit code, never a
 * stack trace (OSWALK_DEBUG=1 shows it). `failed`: the code of an error that has none of its
 * own, for a command whose 1 means something else (diff: "there are differences").
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void | number>, opts: { failed?: number } = {}): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (err) {
      if (process.env.OSWALK_DEBUG) console.error(err);
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = err instanceof UsageError ? EXIT.usage
        : err instanceof ApiError
          ? err.status === 0 ? EXIT.unreachable : err.code === 'NotFound' ? EXIT.notFound : opts.failed ?? EXIT.failed
          : opts.failed ?? EXIT.failed;
    }
  };
}

/** What kubectl users type for a kind (job, jobs, svc, Service), as one of `kinds`; a usage error otherwise. */
export function kindOf<K extends string>(word: string, kinds: readonly K[]): K {
  const w = word.toLowerCase().replace(/s$/, '');
  const k = kinds.find((kind) => kind.toLowerCase() === w || (w === 'svc' && kind === 'Service'));
  if (!k) throw new UsageError(`"${word}" is not a kind: use one of ${kinds.map((x) => x.toLowerCase()).join(', ')}`);
  return k;
}

/** "5s", "500ms", "2m", "12h", "30d" or a bare number of seconds, as milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`"${text}" is not a duration: use e.g. 500ms, 5s, 2m, 12h, 30d`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * mult);
}

/** "HOST:PORT" or ":PORT" or "PORT". */
export function parseListen(text: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d+)$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen "${text}" must be HOST:PORT, e.g. 0.0.0.0:7000`);
  return { host: m[1] || defaultHost, port: Number(m[2]) };
}

/** Resolves on the first SIGINT or SIGTERM: how long-running commands wait to be stopped. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    // Started by `oswalk up` (an IPC channel): its end, even by SIGKILL, is a hang-up. The
    // channel alone must not keep this process alive once it has stopped.
    if (process.channel) {
      process.channel.unref();
      process.once('disconnect', () => resolve('SIGHUP'));
    }
  });
}

/** The -l of a `get`, as kubectl takes it (app=web,tier!=db,canary,!legacy); a malformed one is a usage error. */
export function selectorFlag(text: string): LabelSelector {
  try {
    return parseLabelSelector(text);
  } catch (err) {
    throw new UsageError(`-l: ${(err as Error).message}`);
  }
}

/** The help of every -l. */
export const SELECTOR_HELP = 'key=value, key!=value, key or !key, joined by commas; all must hold, e.g. app=web,tier!=db';

/** "k=v,k2=v2" → {k: v, k2: v2}, for --labels and --node-selector. */
export function parseKeyValues(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`${what}: "${part}" must look like key=value`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/**
 * A memory size from a flag, parsed as manifests parse it (512Mi, 1Gi, 100M). Loaded on use:
 * the manifest module brings the schema library, which commands like `run` need not pay for.
 */
export async function parseMemoryFlag(text: string, flag: string, minBytes = 0): Promise<number> {
  const { parseMemory } = await import('../manifest/index.js');
  let bytes: number;
  try {
    bytes = parseMemory(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
  if (bytes < minBytes) throw new UsageError(`${flag} ${text} is ${bytes} bytes, below the ${minBytes >> 20}Mi it must be at least: did you mean ${text}Mi?`);
  return bytes;
}

/** The least memory a job may be limited to: less is a unit left out (512 for 512Mi), and no program starts in it. */
export const MIN_JOB_MEMORY = 4 * 1024 * 1024;

/** A commander parser for a number above 0: a bad value is a usage error (exit 2), said before anything is sent. */
export function positiveNumber(text: string): string {
  if (!(Number(text) > 0)) throw new InvalidArgumentError('must be a number above 0, e.g. 0.5 or 2');
  return text;
}

/**
 * `--fs-redis`: the Redis of the cluster's files (namespace, chunk lists, locks) when they have
 * one of their own (docs/ha.md, "Past one Redis"). From the environment rather than the command
 * line, where any local user reads the password.
 */
export function fsRedisOption(): Option {
  return new Option('--fs-redis <url>', 'Redis of the cluster\'s files when they have one of their own (default: the cluster\'s Redis; with a password, set the variable instead)').env('OSWALK_FS_REDIS_URL');
}
