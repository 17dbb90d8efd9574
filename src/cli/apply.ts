import type { Command } from 'commander';
import { action, client, globals } from './common.js';
import { readManifestFiles } from './manifest-files.js';

interface Applied {
  items: { kind: string; name: string; result: string }[];
}

export function register(program: Command): void {
  program.command('apply')
    .description('create or update Nodes, Mounts, Jobs and Services from YAML manifests')
    .requiredOption('-f, --filename <path...>', 'manifest file, directory of *.yaml, or - for stdin (repeatable)')
    .option('--dry-run', 'validate only; change nothing')
    .action(action(async (opts: { filename: string[]; dryRun?: boolean }, cmd: Command) => {
      // Every file is checked here first, so one bad file stops the whole command before
      // anything reaches the cluster; the server checks again and applies each file atomically.
      const files = await readManifestFiles(opts.filename);
      const out: Applied['items'] = [];
      if (!opts.dryRun) {
        const api = client(cmd);
        for (const { source, yaml } of files) out.push(...(await api.post<Applied>('/v1/apply', { source, yaml })).items);
      }
      if (globals(cmd).output === 'json') {
        process.stdout.write(JSON.stringify({ items: out, dryRun: !!opts.dryRun }, null, 2) + '\n');
      } else if (opts.dryRun) {
        process.stdout.write(`${files.length} file(s) valid (dry run: nothing applied)\n`);
      } else {
        for (const o of out) process.stdout.write(`${o.kind.toLowerCase()}/${o.name} ${o.result}\n`);
      }
    }));
}
