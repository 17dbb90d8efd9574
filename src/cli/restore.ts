import { InvalidArgumentError, type Command } from 'commander';
import { hostname } from 'node:os';
import type { VersionRecord } from '../api/fs.js';
import { action, client, output } from './common.js';
import { isDocumentFormat, printDocument } from './output.js';
import { readConfig } from './config.js';
import { isoNs, mountOption, namespacePath, versionDocument } from './fs-common.js';

export function register(program: Command): void {
  mountOption(program.command('restore'))
    .description('make an older version of a path current again (a new version reusing its data; nothing is copied)')
    .argument('<path>', 'path relative to the unified root, or an absolute path inside a mount of it on this host')
    .argument('<version>', 'version id, as `oswalk versions PATH` shows it', (id: string) => {
      if (!/^[1-9]\d{0,15}$/.test(id)) throw new InvalidArgumentError('a version id is a number, as the ID column of `oswalk versions PATH` shows');
      return id;
    })
    .option('--node <name>', 'node to record the restore as (default: $OSWALK_NODE, then the node of the mount in .oswalk/config.json, then this host\'s name)')
    .action(action(async (arg: string, id: string, opts: { mount?: string; node?: string }, cmd: Command) => {
      const format = output(cmd);
      const path = namespacePath(arg, opts.mount);
      const node = opts.node || process.env.OSWALK_NODE || readConfig().node || hostname();
      const v = await client(cmd).post<VersionRecord>('/v1/fs/restore', { path, version: id, node });
      if (isDocumentFormat(format)) printDocument(format, versionDocument(v));
      else process.stdout.write(`restored ${v.path} version ${id} as version ${v.id} (mtime ${isoNs(v.mtimeNs)})\n`);
    }));
}
