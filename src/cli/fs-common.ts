import { Option, type Command } from 'commander';
import { FsError } from '../state/fs.js';
import type { Redis } from 'ioredis';
import { connectRedis } from '../state/redis.js';
import { DEFAULT_PREFIX, keyspace, type Keyspace } from '../state/keys.js';

/**
 * Options and helpers shared by the filesystem subcommands (versions, restore, translate),
 * which talk to Redis directly for now.
 */
export function redisOptions(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'Redis URL (env OSWALK_REDIS_URL)', process.env.OSWALK_REDIS_URL ?? 'redis://127.0.0.1:6379')
    .option('--prefix <prefix>', 'Redis key prefix with its {hash tag} (env OSWALK_REDIS_PREFIX)', process.env.OSWALK_REDIS_PREFIX ?? DEFAULT_PREFIX);
}

export async function withRedis<T>(opts: { redis: string; prefix: string }, fn: (redis: Redis, ks: Keyspace) => Promise<T>): Promise<T> {
  const ks = keyspace(opts.prefix);
  const redis = connectRedis(opts.redis);
  try {
    return await fn(redis, ks);
  } finally {
    redis.disconnect();
  }
}

/**
 * A PATH argument as a namespace path: relative paths are relative to the unified root
 * ("a/b" → "/a/b"); an absolute path inside the local mount loses the mount's prefix
 * ("/cluster/a/b" → "/a/b"); any other absolute path is taken as a namespace path.
 */
export function namespacePath(arg: string, mount: string): string {
  const m = mount.replace(/\/+$/, '');
  if (m && (arg === m || arg.startsWith(m + '/'))) return arg.slice(m.length) || '/';
  return arg.startsWith('/') ? arg : '/' + arg;
}

export function mountOption(cmd: Command): Command {
  return cmd.option('--mount <dir>', 'where the unified filesystem is mounted here (env OSWALK_MOUNT)', process.env.OSWALK_MOUNT ?? '/cluster');
}

/** ns since the epoch → ISO 8601 with all nine digits of the fraction. */
export function isoNs(mtimeNs: string): string {
  const ns = BigInt(mtimeNs);
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/**
 * `-o, --output table|json` on the command, unless the program already has it as a global
 * option (src/cli/common.ts on main does); read it with outputOf().
 */
export function outputOption(cmd: Command, parent: Command): Command {
  if (parent.options.some((o) => o.long === '--output')) return cmd;
  return cmd.addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'));
}

export function outputOf(cmd: Command): 'table' | 'json' {
  return (cmd.optsWithGlobals() as { output?: string }).output === 'json' ? 'json' : 'table';
}

/**
 * Errors become one line on stderr and an exit code (1, or 4 for a path or version that does
 * not exist), never a stack trace; OSWALK_DEBUG=1 shows it.
 */
export function fsAction<A extends unknown[]>(fn: (...args: A) => Promise<void | number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (err) {
      if (process.env.OSWALK_DEBUG) console.error(err);
      process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exitCode = err instanceof FsError && err.code === 'ENOENT' ? 4 : 1;
    }
  };
}
