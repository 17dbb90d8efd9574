import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from '../manifest/index.js';
import { LIMITS } from '../util/limits.js';

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

/**
 * The files -f names (apply, delete), each read and checked: its text and its manifests. The
 * first bad file throws, naming file, line and field, before anything reaches the cluster.
 */
export async function readManifestFiles(paths: string[]): Promise<{ source: string; yaml: string; manifests: Manifest[] }[]> {
  // Loaded here, not at start-up, so that quick commands like `oswalk run` stay quick.
  const { parseManifestFile, parseManifests } = await import('../manifest/index.js');
  const out = [];
  for (const f of expand(paths)) {
    if (f === '-') {
      const yaml = await readStdin();
      out.push({ source: '<stdin>', yaml, manifests: parseManifests(yaml, '<stdin>') });
    } else {
      const manifests = await parseManifestFile(f);
      out.push({ source: f, yaml: readFileSync(f, 'utf8'), manifests });
    }
  }
  return out;
}
