import { Option, type Command } from 'commander';
import type { ApplyAnswer, ApplyRequest, ApplyResult } from '../api/objects.js';
import type { Manifest } from '../manifest/index.js';
import { ApiError } from './client.js';
import { action, client, output } from './common.js';
import { isDocumentFormat, listDocument, printDocument } from './output.js';
import { readManifestFiles } from './manifest-files.js';

type ManifestFile = { source: string; yaml: string; manifests: Manifest[] };

/** Where kind/name is defined among the files. */
function fileOf(files: ManifestFile[], kind: string, name: string): string | undefined {
  return files.find((f) => f.manifests.some((m) => m.kind === kind && m.metadata.name === name))?.source;
}

export function register(program: Command): void {
  program.command('apply')
    .description('create or update Nodes, Mounts, Jobs and Services from YAML manifests')
    .requiredOption('-f, --filename <path...>', 'manifest file, directory of *.yaml, or - for stdin (repeatable)')
    .addOption(new Option('--dry-run [strategy]', 'change nothing: "server" (the default) says what would be created, changed or refused; "client" only checks the files, without a cluster')
      .choices(['server', 'client']).preset('server'))
    .action(action(async (opts: { filename: string[]; dryRun?: 'server' | 'client' }, cmd: Command) => {
      const format = output(cmd, { names: true });
      // Every file is checked here first, so one bad file stops the whole command before
      // anything reaches the cluster; the server checks again (its errors name file and line)
      // and applies them all in one atomic step: a refused object leaves every file unapplied.
      const files = await readManifestFiles(opts.filename);
      const { checkFilesTogether } = await import('../manifest/index.js');
      checkFilesTogether(files);
      // A client dry run only checks the files: their objects are all it can name.
      let out: { kind: string; name: string; result: ApplyResult | 'valid' }[] = files.flatMap((f) => f.manifests.map((m) => ({ kind: m.kind, name: m.metadata.name, result: 'valid' })));
      if (opts.dryRun !== 'client') {
        const dryRun = opts.dryRun === 'server';
        const body: ApplyRequest = { source: 'oswalk apply', files: files.map(({ source, yaml }) => ({ source, yaml })), dryRun };
        try {
          out = (await client(cmd).post<ApplyAnswer>('/v1/apply', body)).items;
        } catch (err) {
          const at = err instanceof ApiError && err.code === 'Conflict' ? err.body?.object : undefined;
          const file = at && fileOf(files, at.kind, at.name);
          if (file && files.length > 1) throw new Error(`${file}: ${(err as Error).message}; nothing was applied`);
          throw err;
        }
      }
      const note = opts.dryRun ? ` (${opts.dryRun} dry run)` : '';
      if (isDocumentFormat(format)) {
        printDocument(format, listDocument(out, { dryRun: opts.dryRun ?? false }));
      } else if (format === 'name') {
        for (const o of out) process.stdout.write(`${o.kind.toLowerCase()}/${o.name}\n`);
      } else if (opts.dryRun === 'client') {
        process.stdout.write(`${files.length} file(s) valid${note}: nothing applied\n`);
      } else {
        for (const o of out) process.stdout.write(`${o.kind.toLowerCase()}/${o.name} ${o.result}${note}\n`);
        // "configured" says that something changes, not what: diff says that.
        if (opts.dryRun && out.some((o) => o.result === 'configured')) {
          process.stderr.write(`oswalk diff ${opts.filename.map((f) => `-f ${f}`).join(' ')} shows what would change\n`);
        }
      }
    }));
}
