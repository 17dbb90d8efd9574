import type { Command } from 'commander';
import type { DeleteAnswer } from '../api/objects.js';
import { ApiError } from './client.js';
import { action, client, EXIT, kindOf, output, UsageError } from './common.js';
import { isDocumentFormat, listDocument, printDocument } from './output.js';
import { readManifestFiles } from './manifest-files.js';

export function register(program: Command): void {
  program.command('delete')
    .description("delete applied manifests: a Job's or Service's jobs are cancelled, a Node's labels and capacity go back to its agent's")
    .argument('[kind]', 'job, service, mount or node (with NAME...)')
    .argument('[names...]', 'names of the manifests of that kind')
    .option('-f, --filename <path...>', 'delete what these manifest files (or directories of *.yaml, or - for stdin) name')
    .option('--ignore-not-found', 'a manifest that is not applied is no error')
    .addHelpText('after', '\nExamples:\n  oswalk delete service web\n  oswalk delete -f manifests/examples/parallel-job.yaml')
    .action(action(async (kindWord: string | undefined, names: string[], opts: { filename?: string[]; ignoreNotFound?: boolean }, cmd: Command) => {
      const format = output(cmd, { names: true });
      if (!opts.filename === !kindWord || (kindWord && !names.length)) {
        throw new UsageError('name what to delete: `oswalk delete KIND NAME...` or `oswalk delete -f FILE`');
      }
      // Loaded here, not at start-up, so that quick commands like `oswalk run` stay quick.
      const { KINDS } = await import('../manifest/index.js');
      const targets = opts.filename
        ? (await readManifestFiles(opts.filename)).flatMap((f) => f.manifests.map((m) => ({ kind: m.kind, name: m.metadata.name })))
        : names.map((name) => ({ kind: kindOf(kindWord!, KINDS), name }));
      const api = client(cmd);
      const deleted: DeleteAnswer[] = [];
      let code: number = EXIT.ok;
      for (const t of targets) {
        try {
          deleted.push(await api.delete<DeleteAnswer>(`/v1/objects/${t.kind}/${encodeURIComponent(t.name)}`));
        } catch (err) {
          if (!(err instanceof ApiError) || err.code !== 'NotFound') throw err;
          if (opts.ignoreNotFound) continue;
          process.stderr.write(`error: ${err.message}\n`);
          code = EXIT.notFound;
        }
      }
      if (isDocumentFormat(format)) printDocument(format, listDocument(deleted));
      else for (const d of deleted) process.stdout.write(`${d.kind.toLowerCase()}/${d.name}${format === 'name' ? '' : ' deleted'}\n`);
      return code;
    }));
}
