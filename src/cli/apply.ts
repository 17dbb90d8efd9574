import type { Command } from 'commander';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LIMITS } from '../util/limits.js';
import { action, client, globals } from './common.js';

interface Applied {
  items: { kind: string; name: string; result: string }[];
}

/** Files named by -f: a file, `-` for standard input, or a directory's *.yaml / *.yml files. */
function expand(paths: string[]): string[] {
  return paths.flatMap((p) => {
    if (p === '-') return [p];
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new Error(`${p}: no such file or directory`);
    }
    if (!st.isDirectory()) return [p];
    return readdirSync(p).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(p, f));
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > LIMITS.manifestBytes) throw new Error(`<stdin>: more than ${LIMITS.manifestBytes} bytes; split the manifests into smaller files`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function register(program: Command): void {
  program.command('apply')
    .description('create or update Nodes, Mounts, Jobs and Services from YAML manifests')
    .requiredOption('-f, --filename <path...>', 'manifest file, directory of *.yaml, or - for stdin (repeatable)')
    .option('--dry-run', 'validate only; change nothing')
    .action(action(async (opts: { filename: string[]; dryRun?: boolean }, cmd: Command) => {
      // Loaded here, not at start-up, so that quick commands like `oswalk run` stay quick.
      const { parseManifestFile, parseManifests } = await import('../manifest/index.js');
      const files = expand(opts.filename);
      // Every file is checked here first, so one bad file stops the whole command before
      // anything reaches the cluster; the server checks again and applies each file atomically.
      const texts: { source: string; yaml: string }[] = [];
      for (const f of files) {
        if (f === '-') {
          const yaml = await readStdin();
          parseManifests(yaml, '<stdin>');
          texts.push({ source: '<stdin>', yaml });
        } else {
          await parseManifestFile(f);
          texts.push({ source: f, yaml: readFileSync(f, 'utf8') });
        }
      }
      const out: Applied['items'] = [];
      if (!opts.dryRun) {
        const api = client(cmd);
        for (const t of texts) out.push(...(await api.post<Applied>('/v1/apply', t)).items);
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
