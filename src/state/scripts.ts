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
 * A line `-- @include <name>` is replaced by src/state/lua/include/<name>.lua, so helpers
 * several scripts need (the job-state transitions) are written once; each script still
 * runs as one atomic step.
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
      return { name: m[1], numberOfKeys: Number(m[2]), lua: expandIncludes(readFileSync(join(dir, f), 'utf8'), dir, f) };
    });
  return files;
}

function expandIncludes(lua: string, dir: string, file: string): string {
  return lua.replace(/^-- @include ([A-Za-z0-9_-]+)\s*$/gm, (_, inc: string) => {
    const path = join(dir, 'include', `${inc}.lua`);
    if (!existsSync(path)) throw new Error(`Lua script ${join(dir, file)} includes ${inc}, but ${path} does not exist`);
    return readFileSync(path, 'utf8');
  });
}

const defined = new WeakSet<Redis>();

export type ScriptArg = string | number | Buffer;

/** Run the script `name` with these keys and arguments on this connection. */
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
  return fn.call(redis, ...keys, ...args);
}
