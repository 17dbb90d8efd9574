import type { Command } from 'commander';
import { hostname } from 'node:os';
import { mountOverlay } from '../overlay/index.js';
import { redisOptions } from './fs-common.js';

const UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, ti: 1024 ** 4 };

/** '1Gi', '512Mi', '2G', '1048576' → bytes. */
export function parseSize(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?$/i.exec(s.trim());
  if (!m) throw new Error(`${what} "${s}" must be a size like 1Gi, 512Mi, 2G or a number of bytes`);
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]);
}

export function register(program: Command): void {
  redisOptions(program.command('mount'))
    .description('Mount the unified filesystem at DIR in the foreground (Ctrl-C unmounts)')
    .argument('<dir>', 'mount point (created if missing)')
    .option('--node <name>', 'this node\'s name (env OSWALK_NODE)', process.env.OSWALK_NODE ?? hostname())
    .option('--state-dir <dir>', 'node state: chunk store in <dir>/chunks, staging files (env OSWALK_STATE_DIR)', process.env.OSWALK_STATE_DIR ?? '/var/lib/oswalk')
    .option('--cache-size <size>', 'disk cache for chunks fetched from other nodes', '1Gi')
    .option('--token <token>', 'bearer token of the agents\' chunk servers (env OSWALK_TOKEN)', process.env.OSWALK_TOKEN)
    .action(async (dir: string, opts: { redis: string; prefix: string; node: string; stateDir: string; cacheSize: string; token?: string }) => {
      if (!opts.token) throw new Error('--token (or OSWALK_TOKEN) is required: it lets this node fetch chunks from the others');
      const mount = await mountOverlay({
        mountDir: dir,
        node: opts.node,
        redisUrl: opts.redis,
        prefix: opts.prefix,
        stateDir: opts.stateDir,
        cacheSizeBytes: parseSize(opts.cacheSize, '--cache-size'),
        token: opts.token,
      });
      process.stderr.write(`mounted the unified filesystem at ${mount.mountDir} (node ${opts.node}); Ctrl-C unmounts\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void mount.stop().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
