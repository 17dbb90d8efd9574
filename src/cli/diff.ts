import type { Command } from 'commander';
import type { Manifest } from '../manifest/index.js';
import { ApiError, type ApiClient } from './client.js';
import { action, client, EXIT, output, UsageError } from './common.js';
import { readManifestFiles } from './manifest-files.js';

async function live(api: ApiClient, m: Manifest): Promise<Manifest | undefined> {
  try {
    return await api.get<Manifest>(`/v1/objects/${m.kind}/${encodeURIComponent(m.metadata.name)}`);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'NotFound') return undefined;
    throw err;
  }
}

/**
 * `oswalk diff -f FILE`, as kubectl diff: for each object of the files that applying them would
 * change, a unified diff of the object as the cluster has it and as it would be (manifestDiff).
 */
export function register(program: Command): void {
  program.command('diff')
    .description('show what `oswalk apply -f` would change: a unified diff per object of the live manifest and the file\'s; exit 0 when nothing would change, 1 when something would, 2 or more on an error, as kubectl diff')
    .requiredOption('-f, --filename <path...>', 'manifest file, directory of *.yaml, or - for stdin (repeatable)')
    .addHelpText('after', '\nExamples:\n  oswalk diff -f manifests/examples/web-service.yaml\n  oswalk diff -f manifests/ && oswalk apply -f manifests/')
    // 1 says that something differs, so any failure is at least 2.
    .action(action(async (opts: { filename: string[] }, cmd: Command) => {
      if (output(cmd) !== 'table') throw new UsageError('-o: oswalk diff prints a unified diff, in no other format');
      const files = await readManifestFiles(opts.filename);
      // Loaded here, not at start-up, so that quick commands like `oswalk run` stay quick.
      const [{ checkFilesTogether }, { manifestDiff }] = await Promise.all([import('../manifest/index.js'), import('../manifest/diff.js')]);
      checkFilesTogether(files);
      const api = client(cmd);
      let differs = false;
      for (const m of files.flatMap((f) => f.manifests)) {
        const before = await live(api, m);
        const patch = manifestDiff(before, m);
        if (!patch) continue;
        differs = true;
        process.stdout.write(patch);
        // As the API would answer the apply: a Job is run once, as it was first applied.
        if (before && m.kind === 'Job') process.stderr.write(`oswalk: ${m.kind.toLowerCase()}/${m.metadata.name}: apply refuses a change to a Job that exists: delete it first, or give it a new name\n`);
      }
      return differs ? EXIT.failed : EXIT.ok;
    }, { failed: EXIT.usage }));
}
