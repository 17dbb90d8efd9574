import type { Command } from 'commander';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { formatBytes, printRows } from './output.js';
import { ProgressLine } from './progress-line.js';
import { action, fsRedisOption, output } from './common.js';
import type { Redis } from '../state/redis.js';
import type { FsState } from '../state/fs-layout.js';
import { DEFAULT_PREFIX, keyspace, type Keyspace } from '../state/keys.js';
import { resolveRedisUrl } from './config.js';
import { nodeStateDir, warnIfNotANode } from './node-check.js';

interface Opts {
  redis?: string;
  prefix: string;
  fsRedis?: string;
  node: string;
  store?: string;
  state?: string;
  concurrency: string;
}

function redisOptions(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'Redis URL (default: $OSWALK_REDIS_URL, then .oswalk/config.json)')
    .option('--prefix <prefix>', 'Redis key prefix with its {hash tag} (env OSWALK_REDIS_PREFIX)', process.env.OSWALK_REDIS_PREFIX ?? DEFAULT_PREFIX)
    .addOption(fsRedisOption());
}

async function withRedis<T>(opts: { redis?: string; prefix: string; fsRedis?: string }, fn: (redis: Redis, ks: Keyspace, fs: FsState) => Promise<T>): Promise<T> {
  const ks = keyspace(opts.prefix);
  const [{ connectRedis }, { openFs }] = await Promise.all([import('../state/redis.js'), import('../state/fs-layout.js')]);
  const redisUrl = resolveRedisUrl(opts.redis);
  const redis = connectRedis(redisUrl);
  const fsRedis = opts.fsRedis && opts.fsRedis !== redisUrl ? connectRedis(opts.fsRedis) : redis;
  try {
    return await fn(redis, ks, await openFs(redis, ks, fsRedis));
  } finally {
    redis.disconnect();
    if (fsRedis !== redis) fsRedis.disconnect();
  }
}

export function register(program: Command): void {
  const cmd = program.command('translate');
  redisOptions(cmd)
    .description('translate a directory into the unified filesystem once (what the agent\'s translate daemon does continuously), then exit')
    .argument('<dir>', 'the directory to translate (a node\'s export directory)')
    .option('--node <name>', 'node the versions belong to (env OSWALK_NODE)', process.env.OSWALK_NODE ?? hostname())
    // No fixed default: chunks stored where the node's agent does not serve them read as EIO.
    .option('--store <dir>', 'the node\'s PacketFS chunk store, <its agent\'s --state-dir>/chunks (env OSWALK_STORE; default: the node\'s under the `oswalk up` cluster, or /var/lib/oswalk/chunks when the agent running with /var/lib/oswalk is that node)', process.env.OSWALK_STORE || undefined)
    .option('--state <file>', 'where to remember what was translated (default: translate-<node>.json in the store)')
    .option('--concurrency <n>', 'files over 64 KiB read and hashed at once (smaller ones and other paths: up to 64 at once)', '2')
    .action(action(async (dirArg: string, opts: Opts) => {
      const format = output(cmd);
      // Loaded here, not at start-up, so that quick commands like `oswalk run` stay quick.
      const [{ ChunkStore, chunkDir }, { startTranslator }, { createLogger }] = await Promise.all([
        import('../packetfs/index.js'), import('../translate/index.js'), import('../util/log.js'),
      ]);
      const dir = resolve(dirArg);
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new Error(`translate: ${dir} is not a directory`);
      const concurrency = Number(opts.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new Error(`--concurrency must be 1..64, got ${opts.concurrency}`);
      const storeDir = resolve(opts.store ?? chunkDir(nodeStateDir(opts.node, `--store with its chunk store (<its agent's --state-dir>/chunks)`)));
      // On stderr: stdout is the result, for the reader or a script. Log lines go above the progress.
      const progress = new ProgressLine(process.stderr, { plainEveryMs: 5000 });
      const log = createLogger('translate', { node: opts.node }, { stderr: true, write: (line) => progress.print(line) });
      const doing = `translating ${dir} as ${opts.node}`;
      const stats = await withRedis(opts, async (redis, ks, fs) => {
        await warnIfNotANode(redis, ks, opts.node, 'the files translated here');
        try {
          progress.update(`${doing}: scanning`);
          const t = await startTranslator({
            fs, node: opts.node, exportDir: dir, store: new ChunkStore(storeDir, { log }), log, watch: false, concurrency,
            stateFile: opts.state ? resolve(opts.state) : join(storeDir, `translate-${opts.node}.json`),
          });
          const update = () => {
            const s = t.stats();
            const done = s.versions + s.skipped + s.errors;
            const total = done + s.backlogFiles;
            const errors = s.errors ? `, ${s.errors} error${s.errors === 1 ? '' : 's'}` : '';
            progress.update(`${doing}: ${done}/${total} paths (${total ? Math.floor((100 * done) / total) : 100}%), ${formatBytes(s.bytesTranslated)}${errors}`);
          };
          const tick = setInterval(update, 200);
          try {
            await t.idle();
          } finally {
            clearInterval(tick);
            update();
            await t.close();
          }
          return t.stats();
        } finally {
          progress.end();
        }
      });
      printRows(format, [stats], [
        { header: 'VERSIONS', value: (x) => x.versions },
        { header: 'FILES', value: (x) => x.filesTranslated },
        { header: 'BYTES', value: (x) => formatBytes(x.bytesTranslated) },
        { header: 'NEW BYTES', value: (x) => formatBytes(x.newBytes) },
        { header: 'DEDUP', value: (x) => x.dedupRatio.toFixed(2) },
        { header: 'TOMBSTONES', value: (x) => x.tombstones },
        { header: 'SKIPPED', value: (x) => x.skipped },
        { header: 'ERRORS', value: (x) => x.errors },
      ], { json: stats });
      // some paths could not be translated (each logged): a script should notice
      return stats.errors ? 1 : 0;
    }));
}
