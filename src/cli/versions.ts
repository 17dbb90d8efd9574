import type { Command } from 'commander';
import Table from 'cli-table3';
import { listVersions, normalizePath, type VersionInfo } from '../state/fs.js';
import { fsAction, isoNs, mountOption, namespacePath, outputOf, outputOption, redisOptions, withRedis } from './fs-common.js';

/** What the HASH column shows: the manifest for files, else what kind of entry it is. */
function what(v: VersionInfo): string {
  if (v.type === 'file') return v.manifest!.slice(0, 12);
  if (v.type === 'symlink') return `-> ${v.target}`;
  return `(${v.type === 'tombstone' ? 'deleted' : 'dir'})`;
}

export function register(program: Command): void {
  const cmd = program.command('versions');
  outputOption(mountOption(redisOptions(cmd)), program)
    .description('List the kept versions of a path of the unified filesystem, newest first; CURRENT is what everyone sees')
    .argument('<path>', 'path relative to the unified root, or an absolute path inside the local mount')
    .action(fsAction(async (arg: string, opts: { redis: string; prefix: string; mount: string }) => {
      const path = normalizePath(namespacePath(arg, opts.mount));
      const versions = await withRedis(opts, (redis, ks) => listVersions(redis, ks, path));
      if (outputOf(cmd) === 'json') {
        process.stdout.write(JSON.stringify(versions.map((v) => ({
          id: v.id, node: v.node, mtime: isoNs(v.mtimeNs), mtimeNs: v.mtimeNs, size: v.size, hash: v.manifest ?? null,
          current: v.current, type: v.type, source: v.source, mode: v.mode, uid: v.uid, gid: v.gid, target: v.target ?? null,
        })), null, 2) + '\n');
        return;
      }
      if (!versions.length) {
        process.stderr.write(`error: no versions of ${path}\n`);
        return 4;
      }
      const table = new Table({ head: ['ID', 'NODE', 'MTIME', 'SIZE', 'HASH', 'CURRENT'] });
      for (const v of versions) table.push([v.id, v.node, isoNs(v.mtimeNs), v.size, what(v), v.current ? '*' : '']);
      process.stdout.write(table.toString() + '\n');
    }));
}
