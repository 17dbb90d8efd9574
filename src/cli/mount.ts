import type { Command } from 'commander';
import { hostname } from 'node:os';
import { action, fsRedisOption, parseMemoryFlag, untilSignal } from './common.js';
import { envToken, readConfig, resolveRedisUrl } from './config.js';
import { DEFAULT_PREFIX, keyspace } from '../state/keys.js';
import { nodeStateDir, warnIfNotANode } from './node-check.js';

export function register(program: Command): void {
  program.command('mount')
    .description('mount the unified filesystem at DIR in the foreground (Ctrl-C unmounts); the agent mounts it by itself')
    .argument('<dir>', 'mount point (created if missing)')
    .option('--node <name>', 'this node\'s name (env OSWALK_NODE)', process.env.OSWALK_NODE ?? hostname())
    .option('--redis <url>', 'Redis URL (default: $OSWALK_REDIS_URL, then .oswalk/config.json)')
    .option('--prefix <prefix>', 'Redis key prefix with its {hash tag}', DEFAULT_PREFIX)
    .addOption(fsRedisOption())
    // No fixed default: chunks stored where the node's agent does not serve them read as EIO.
    .option('--state-dir <dir>', 'the node\'s state directory, shared with its agent, whose chunk server serves what is written here (env OSWALK_STATE_DIR; default: the node\'s under the `oswalk up` cluster, or /var/lib/oswalk when the agent running with it is that node)', process.env.OSWALK_STATE_DIR || undefined)
    .option('--cache-size <size>', 'disk cache for chunks fetched from other nodes', '1Gi')
    .option('--file-cache-size <size>', 'disk cache of whole files read end to end, which later opens read at local-disk speed (FUSE passthrough); 0 turns it off', '4Gi')
    .action(action(async (dir: string, opts: { node: string; redis?: string; prefix: string; fsRedis?: string; stateDir?: string; cacheSize: string; fileCacheSize: string }, cmd: Command) => {
      const token = (cmd.optsWithGlobals() as { token?: string }).token || envToken() || readConfig().token;
      if (!token) throw new Error('no token: pass --token or set OSWALK_TOKEN; it lets this node fetch chunks from the others');
      const stateDir = opts.stateDir ?? nodeStateDir(opts.node, '--state-dir with its agent\'s state directory');
      const redisUrl = resolveRedisUrl(opts.redis);
      const [{ mountOverlay }, { connectRedis }] = await Promise.all([import('../overlay/index.js'), import('../state/redis.js')]);
      const redis = connectRedis(redisUrl);
      try {
        await warnIfNotANode(redis, keyspace(opts.prefix), opts.node, 'what is written through this mount');
      } finally {
        redis.disconnect();
      }
      const mount = await mountOverlay({
        mountDir: dir,
        node: opts.node,
        redisUrl,
        prefix: opts.prefix,
        ...(opts.fsRedis ? { fsRedisUrl: opts.fsRedis } : {}),
        stateDir,
        cacheSizeBytes: await parseMemoryFlag(opts.cacheSize, '--cache-size'),
        fileCacheBytes: opts.fileCacheSize === '0' ? 0 : await parseMemoryFlag(opts.fileCacheSize, '--file-cache-size'),
        token,
      });
      // Listening before saying so: whoever reads it may signal at once.
      const signalled = untilSignal();
      process.stderr.write(`mounted the unified filesystem at ${mount.mountDir} (node ${opts.node}); Ctrl-C unmounts\n`);
      await signalled;
      await mount.stop();
    }));
}
