import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { startControlPlane } from '../controlplane/index.js';
import { action, parseListen } from './common.js';
import { CONFIG_DIR, readConfig, writeConfig } from './config.js';
import { startEmbeddedRedis, type EmbeddedRedis } from './redis-server.js';
import { freePort } from '../util/net.js';

interface UpOptions {
  redis?: string;
  listen?: string;
  dir: string;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

export function register(program: Command): void {
  program.command('up')
    .description('run a whole cluster on this machine: Redis, the control plane, local agents and the mount (Ctrl-C stops it all)')
    .option('--redis <url>', 'use this Redis instead of starting an embedded redis-server')
    .option('--listen <host:port>', 'API address (default: a free port on 127.0.0.1)')
    .option('--dir <dir>', 'state directory (config, Redis data, node stores)', '.')
    .action(action(async (opts: UpOptions) => {
      const dir = resolve(opts.dir);
      const stateDir = join(dir, CONFIG_DIR);
      const cfg = readConfig(join(stateDir, 'config.json'));
      const token = cfg.token ?? randomBytes(24).toString('base64url');
      const stack: (() => Promise<void>)[] = [];
      const stopAll = async () => {
        for (const stop of stack.reverse()) await stop().catch(() => undefined);
      };
      try {
        let redisUrl = opts.redis;
        if (!redisUrl) {
          const embedded: EmbeddedRedis = await startEmbeddedRedis(join(stateDir, 'redis'));
          stack.push(() => embedded.stop());
          redisUrl = embedded.url;
        }
        const { host, port } = opts.listen ? parseListen(opts.listen) : { host: '127.0.0.1', port: await freePort() };
        const cp = await startControlPlane({ redisUrl, token, host, port });
        stack.push(() => cp.close());
        writeConfig(dir, { api: cp.url, token, redisUrl });
        process.stdout.write([
          'OS Walk is up.',
          `  API:    ${cp.url}`,
          `  Redis:  ${redisUrl}`,
          `  Config: ${join(stateDir, 'config.json')} (oswalk commands run from ${dir} find the API and token there)`,
          'Try: oswalk status    Stop: Ctrl-C',
          '',
        ].join('\n'));
        const sig = await untilSignal();
        process.stdout.write(`\n${sig}: stopping…\n`);
      } finally {
        await stopAll();
      }
    }));
}
