import { Option, type Command } from 'commander';
import { DEFAULT_PREFIX } from '../state/keys.js';
import { action, parseDuration, parseListen, untilSignal } from './common.js';
import { readConfig, resolveRedisUrl } from './config.js';

export function register(program: Command): void {
  program.command('control-plane')
    .description('run a control plane: the REST API, the scheduler and the node monitor (several may run; one leads)')
    // From the environment rather than the command line, which any local user can read: the URL
    // may carry Redis' password.
    .addOption(new Option('--redis <url>', 'Redis URL (with a password, set the variable instead: any local user can read a command line)').env('OSWALK_REDIS_URL'))
    .addOption(new Option('--agent-redis <url>', 'Redis URL handed to agents when it differs from --redis (e.g. a service name)').env('OSWALK_AGENT_REDIS_URL'))
    .option('--listen <host:port>', 'address to serve the API on', '127.0.0.1:7000')
    .option('--node-timeout <duration>', 'mark a node down when its heartbeats stop for this long', '5s')
    .option('--prefix <prefix>', 'Redis key prefix with a {hash tag}', DEFAULT_PREFIX)
    .action(action(async (opts: { redis?: string; agentRedis?: string; listen: string; nodeTimeout: string; prefix: string }, cmd: Command) => {
      const token = cmd.optsWithGlobals().token ?? process.env.OSWALK_TOKEN ?? readConfig().token;
      if (!token) throw new Error('no token: run `oswalk cluster init` first, or pass --token / set OSWALK_TOKEN');
      const { host, port } = parseListen(opts.listen);
      const { startControlPlane } = await import('../controlplane/index.js');
      const cp = await startControlPlane({
        redisUrl: resolveRedisUrl(opts.redis), agentRedisUrl: opts.agentRedis, token, host, port,
        prefix: opts.prefix, nodeTimeoutMs: parseDuration(opts.nodeTimeout),
      });
      await untilSignal();
      await cp.close();
    }));
}
