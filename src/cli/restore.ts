import type { Command } from 'commander';
import { hostname } from 'node:os';
import { normalizePath, restoreVersion } from '../state/fs.js';
import { fsAction, isoNs, mountOption, namespacePath, outputOf, outputOption, redisOptions, withRedis } from './fs-common.js';

export function register(program: Command): void {
  const cmd = program.command('restore');
  outputOption(mountOption(redisOptions(cmd)), program)
    .description('Make an older version of a path current again (a new version reusing its data; nothing is copied)')
    .argument('<path>', 'path relative to the unified root, or an absolute path inside the local mount')
    .argument('<version>', 'version id, as `oswalk versions PATH` shows it')
    .option('--node <name>', 'node to record the restore as (env OSWALK_NODE)', process.env.OSWALK_NODE ?? hostname())
    .action(fsAction(async (arg: string, id: string, opts: { redis: string; prefix: string; mount: string; node: string }) => {
      const path = normalizePath(namespacePath(arg, opts.mount));
      const v = await withRedis(opts, (redis, ks) => restoreVersion(redis, ks, path, id, opts.node));
      if (outputOf(cmd) === 'json') process.stdout.write(JSON.stringify(v) + '\n');
      else process.stdout.write(`restored ${path} version ${id} as version ${v.id} (mtime ${isoNs(v.mtimeNs)})\n`);
    }));
}
