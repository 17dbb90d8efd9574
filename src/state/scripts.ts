import type { Redis } from 'ioredis';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';

/**
 * The Lua scripts of src/state/lua, one script a file named `<name>-<numberOfKeys>.lua`
 * (BullMQ's convention). They are read once per process and defined on each connection
 * with ioredis' defineCommand, which sends EVALSHA and falls back to EVAL after a Redis
 * restart has flushed the script cache.
 *
 * A line `-- @include <name>` is replaced by src/state/lua/include/<name>.lua (whose own
 * includes are expanded too, each file once), so helpers several scripts need (the job-state
 * transitions) are written once; each script still runs as one atomic step.
 *
 * A script that fails answers `redis.error_reply('<CODE> <detail>')` (fail() in
 * include/fail.lua), with CODE one of the few its header lists, and nothing else: no -1, no
 * false, no worded reply. runScript turns such a reply into a ScriptError, which callers tell
 * apart by its code; answers that are not failures (a lookup that finds nothing) stay answers.
 */

interface ScriptFile {
  name: string;
  numberOfKeys: number;
  lua: string;
}

let files: ScriptFile[] | undefined;

function scriptFiles(): ScriptFile[] {
  if (files) return files;
  const dir = join(packageRoot(), 'src', 'state', 'lua');
  files = readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .map((f) => {
      const m = /^([A-Za-z0-9]+)-(\d+)\.lua$/.exec(f);
      if (!m) throw new Error(`Lua script ${join(dir, f)} must be named <name>-<numberOfKeys>.lua`);
      const lua = readFileSync(join(dir, f), 'utf8');
      checkFailures(m[1], lua, join(dir, f));
      return { name: m[1], numberOfKeys: Number(m[2]), lua: expandIncludes(lua, dir, f) };
    });
  return files;
}

// An include may include others; each goes in once, where it is first named (a second
// definition of its locals would shadow the first and split their state).
function expandIncludes(lua: string, dir: string, file: string, seen = new Set<string>()): string {
  return lua.replace(/^-- @include ([A-Za-z0-9_-]+)\s*$/gm, (_, inc: string) => {
    if (seen.has(inc)) return '';
    seen.add(inc);
    const path = join(dir, 'include', `${inc}.lua`);
    if (!existsSync(path)) throw new Error(`Lua script ${join(dir, file)} includes ${inc}, but ${path} does not exist`);
    return expandIncludes(readFileSync(path, 'utf8'), dir, file, seen);
  });
}

/**
 * The errnos the filesystem's scripts (fs*-1.lua) fail with, which fs.ts turns into FsError;
 * each script lists those it can raise, from these.
 */
const FS_ERRNOS = ['ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EINVAL', 'EXDEV', 'EBUSY', 'ESTALE', 'ENOLCK', 'EPERM'] as const;
const errnos = <C extends (typeof FS_ERRNOS)[number]>(...codes: C[]): readonly C[] => codes;

/**
 * The codes each script may fail with (its header says when). The fs scripts' are errnos
 * (FS_ERRNOS); EINVAL elsewhere is a caller's mistake (an unknown op, a malformed range).
 */
const SCRIPT_ERRORS = {
  appendLog: ['NOT_RUNNING', 'HELD'],
  appendStdin: ['NOJOB', 'ENDED', 'CLOSED', 'HELD'],
  cancelJob: ['NOJOB'],
  certOp: ['REVOKED', 'EINVAL'],
  claimJobs: ['STALE_EPOCH'],
  drainNode: ['NONODE'],
  followJob: ['NOJOB'],
  fsAccess: errnos('ENOENT'),
  fsCommit: errnos('EINVAL', 'EEXIST', 'ENOLCK', 'ESTALE'),
  fsGet: errnos(),
  fsGetMany: errnos(),
  fsLink: errnos('ENOENT', 'EPERM', 'ENOTDIR', 'EEXIST'),
  fsList: errnos('ENOTDIR', 'ENOENT'),
  fsRemove: errnos('EBUSY', 'ENOENT', 'ENOTDIR', 'ENOTEMPTY', 'EISDIR'),
  fsRename: errnos('ENOENT', 'EBUSY', 'EINVAL', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EXDEV'),
  fsRestore: errnos('ENOENT', 'EINVAL'),
  fsVersions: errnos(),
  gcChunkList: ['SUPERSEDED'],
  heartbeat: ['STALE_EPOCH'],
  lock: ['EINVAL'],
  lockSession: ['LOST', 'EINVAL'],
  markRemoving: ['NONODE'],
  setNodeStatus: ['NONODE'],
  tokenOp: ['EXISTS', 'EINVAL'],
} as const satisfies Record<string, readonly string[]>;

export type ScriptErrorCode = (typeof SCRIPT_ERRORS)[keyof typeof SCRIPT_ERRORS][number];

/** A script's failure, as its header lists them; the message is the reply as the script wrote it. */
export class ScriptError extends Error {
  constructor(readonly script: string, readonly code: ScriptErrorCode, readonly detail: string) {
    super(detail ? `${code} ${detail}` : code);
    this.name = 'ScriptError';
  }
}

function decodeFailure(script: string, err: unknown): unknown {
  const codes: readonly string[] | undefined = (SCRIPT_ERRORS as Record<string, readonly string[]>)[script];
  const m = err instanceof Error && /^([A-Z_]+)(?: ([\s\S]*))?$/.exec(err.message);
  if (!codes || !m || !codes.includes(m[1])) return err;
  return new ScriptError(script, m[1] as ScriptErrorCode, m[2] ?? '');
}

// A script's failures go through fail() with a code written out that SCRIPT_ERRORS lists for
// it, so that the table and the scripts cannot drift apart unnoticed.
function checkFailures(script: string, lua: string, file: string): void {
  const codes: readonly string[] = (SCRIPT_ERRORS as Record<string, readonly string[]>)[script] ?? [];
  if (/error_reply/.test(lua)) throw new Error(`Lua script ${file} must fail through fail() (include/fail.lua), not error_reply`);
  for (const call of lua.matchAll(/\bfail\(([^,)]*)/g)) {
    const code = /^'([A-Z_]+)'$/.exec(call[1].trim())?.[1];
    if (!code || !codes.includes(code)) throw new Error(`Lua script ${file} fails with ${call[1]}, which is not a code SCRIPT_ERRORS lists for ${script}`);
  }
}

const defined = new WeakSet<Redis>();

export type ScriptArg = string | number | Buffer;

/**
 * Run the script `name` with these keys and arguments on this connection. A failure the script
 * reports is thrown as a ScriptError; anything else (Redis down, a bug in the script) as it came.
 */
export async function runScript<T = unknown>(redis: Redis, name: string, keys: string[], args: ScriptArg[] = []): Promise<T> {
  if (!defined.has(redis)) {
    for (const f of scriptFiles()) redis.defineCommand(f.name, { numberOfKeys: f.numberOfKeys, lua: f.lua });
    defined.add(redis);
  }
  const file = scriptFiles().find((f) => f.name === name);
  if (!file) throw new Error(`no Lua script named ${name} in src/state/lua`);
  if (file.numberOfKeys !== keys.length) {
    throw new Error(`Lua script ${name} takes ${file.numberOfKeys} keys, got ${keys.length}`);
  }
  const fn = (redis as unknown as Record<string, (...a: ScriptArg[]) => Promise<T>>)[name];
  try {
    return await fn.call(redis, ...keys, ...args);
  } catch (err) {
    throw decodeFailure(name, err);
  }
}
