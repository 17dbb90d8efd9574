import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { action, fsRedisOption, parseKeyValues, parseListen, parseMemoryFlag, untilSignal, UsageError } from './common.js';
import { envToken, findConfigFile, readConfig, resolveCa } from './config.js';
import { DEFAULT_STATE_DIR, lockStateDir } from '../agent/state-lock.js';

export function register(program: Command): void {
  program.command('agent')
    .description('run a node agent: joins the cluster, heartbeats, and runs the jobs placed on this node')
    .requiredOption('--node <name>', 'name of this node in the cluster')
    .option('--control-plane <urls>', 'control plane to join, or several separated by commas, tried in turn (default: --api, $OSWALK_API, then .oswalk/config.json); its certificate must be signed by the cluster CA (--ca-cert)')
    .addOption(new Option('--runtime <runtime>', 'how jobs run').choices(['docker', 'process']).default('process'))
    .addOption(new Option('--default-image <image>', 'docker runtime: the image of jobs that name none (default: the control plane\'s --default-image; with neither, this node takes only jobs with an image)').env('OSWALK_DEFAULT_IMAGE'))
    .option('--export <dir>', 'this node\'s export directory (its files in the unified filesystem; default: its Node manifest\'s exportDir, then /srv/oswalk/export)')
    .option('--redis <url>', 'talk to this Redis directly instead of the one the control plane hands out')
    .option('--prefix <prefix>', 'Redis key prefix, with --redis (default {oswalk}:)')
    .addOption(fsRedisOption())
    .option('--state-dir <dir>', 'where the agent keeps its state', DEFAULT_STATE_DIR)
    .option('--mount <dir>', 'where the agent mounts the unified filesystem (bound into jobs at /cluster)', '/cluster')
    .option('--no-mount', 'do not mount the unified filesystem (jobs get no /cluster)')
    .option('--share-dir <dir>', 'docker runtime: directory job containers bind to reach the mount; the same path for the Docker daemon (default: <state-dir>/share)')
    .option('--labels <k=v,...>', 'node labels for nodeSelector', '')
    .option('--listen <host:port>', 'address of the agent\'s HTTP server (chunks, /metrics)', '0.0.0.0:7001')
    .option('--address <host>', 'host or IP peers use to reach this agent (default: its Node manifest\'s address, then the hostname)')
    .option('--cpus <n>', 'offer at most this many CPUs to jobs')
    .option('--memory <size>', 'offer at most this much memory to jobs, e.g. 8Gi')
    .action(action(async (opts: {
      node: string; controlPlane?: string; runtime: 'docker' | 'process'; defaultImage?: string; export?: string; redis?: string; prefix?: string; fsRedis?: string;
      stateDir: string; mount: string | false; shareDir?: string; labels: string; listen: string; address?: string; cpus?: string; memory?: string;
    }, cmd: Command) => {
      // Loaded here, not at start-up, so that quick commands like `oswalk run` stay quick.
      const [{ startAgent }, { createRuntime }, { createLogger }] = await Promise.all([
        import('../agent/index.js'), import('../agent/runtime/index.js'), import('../util/log.js'),
      ]);
      const g = cmd.optsWithGlobals() as { api?: string; token?: string; caCert?: string };
      const configFile = findConfigFile();
      const cfg = readConfig(configFile);
      const controlPlane = opts.controlPlane ?? g.api ?? process.env.OSWALK_API ?? cfg.api;
      const token = g.token ?? envToken() ?? cfg.token;
      if (!token) throw new Error('no token: pass --token or set OSWALK_TOKEN (oswalk cluster init prints it)');
      if (!controlPlane && !opts.redis) throw new Error('pass --control-plane URL to join a cluster (or --redis URL to use Redis directly)');
      const ca = opts.redis ? undefined : resolveCa(g.caCert, cfg, configFile);
      const cpus = opts.cpus === undefined ? undefined : Number(opts.cpus);
      if (cpus !== undefined && !(cpus > 0)) throw new UsageError(`--cpus "${opts.cpus}" must be a number above 0`);
      // From the environment it may be meant for other agents: only the flag is refused.
      if (cmd.getOptionValueSource('defaultImage') === 'cli' && opts.runtime !== 'docker') throw new UsageError('--default-image is for --runtime docker: a process node runs a job on the host, without an image');
      const stateDir = resolve(opts.stateDir);
      mkdirSync(stateDir, { recursive: true });
      const lock = lockStateDir(stateDir, opts.node);
      const log = createLogger('agent', { node: opts.node });
      // Listening from here on: a signal while the agent starts stops it once started, rather
      // than killing it half-way with its mount up (Ctrl-C under `oswalk up` right at start).
      const signalled = untilSignal();
      const agent = await startAgent({
        node: opts.node,
        ...(opts.redis ? { redisUrl: opts.redis } : { controlPlane }),
        ...(ca ? { ca } : {}),
        ...(opts.prefix ? { prefix: opts.prefix } : {}),
        ...(opts.fsRedis ? { fsRedisUrl: opts.fsRedis } : {}),
        token,
        runtime: createRuntime(opts.runtime, { stateDir, logger: log.child({ runtime: opts.runtime }) }),
        ...(opts.defaultImage ? { defaultImage: opts.defaultImage } : {}),
        ...(opts.export ? { exportDir: resolve(opts.export) } : {}),
        stateDir,
        ...(opts.mount === false ? { mount: false } : { mountPath: resolve(opts.mount) }),
        ...(opts.shareDir ? { shareDir: resolve(opts.shareDir) } : {}),
        labels: parseKeyValues(opts.labels, '--labels'),
        listen: parseListen(opts.listen, '0.0.0.0'),
        ...(opts.address ? { address: opts.address } : {}),
        ...(cpus !== undefined ? { cpus } : {}),
        ...(opts.memory ? { memoryBytes: await parseMemoryFlag(opts.memory, '--memory') } : {}),
        log,
      });
      const signal = await signalled;
      // Ctrl-C under `oswalk up` signals the whole group, and up then sends its SIGTERM too: a
      // second signal must not cut the stop short (it would leave jobs unrequeued and the mount
      // point's read-only guard mounted). The supervisor's SIGKILL remains the hard stop.
      const again = (s: NodeJS.Signals) => log.info({ signal: s }, 'already stopping');
      process.on('SIGINT', again);
      process.on('SIGTERM', again);
      log.info({ signal }, 'stopping: running jobs are stopped and requeued');
      await agent.stop();
      lock.release();
    }));
}
