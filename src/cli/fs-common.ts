import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { connectRedis } from '../state/redis.js';
import { DEFAULT_PREFIX, keyspace, type Keyspace } from '../state/keys.js';
import { localMountPath, resolveRedisUrl } from './config.js';
import { resolve } from 'node:path';

/**
 * Options and helpers shared by the filesystem subcommands. `translate` runs on a node and
 * talks to Redis directly; versions and restore go through the API.
 */
export function redisOptions(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'Redis URL (default: $OSWALK_REDIS_URL, then .oswalk/config.json)')
    .option('--prefix <prefix>', 'Redis key prefix with its {hash tag} (env OSWALK_REDIS_PREFIX)', process.env.OSWALK_REDIS_PREFIX ?? DEFAULT_PREFIX);
}

export async function withRedis<T>(opts: { redis?: string; prefix: string }, fn: (redis: Redis, ks: Keyspace) => Promise<T>): Promise<T> {
  const ks = keyspace(opts.prefix);
  const redis = connectRedis(resolveRedisUrl(opts.redis));
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
export function namespacePath(arg: string, mount = localMountPath()): string {
  const m = resolve(mount).replace(/\/+$/, '');
  if (m && (arg === m || arg.startsWith(m + '/'))) return arg.slice(m.length) || '/';
  return arg.startsWith('/') ? arg : '/' + arg;
}

export function mountOption(cmd: Command): Command {
  return cmd.option('--mount <dir>', 'where the unified filesystem is mounted here (default: $OSWALK_MOUNT, .oswalk/config.json, then /cluster)');
}

/** ns since the epoch → ISO 8601 with all nine digits of the fraction. */
export function isoNs(mtimeNs: string): string {
  const ns = BigInt(mtimeNs);
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}
