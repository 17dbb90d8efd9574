import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/util/paths.js';

const HEAD = `# Benchmarks

Every benchmark compares OS Walk with a baseline measured in the same run, on the same machine.
Each section below is written by the script named in it (\`npm run build\`, then the command
shown); a new run replaces its own section and leaves the others alone. The machine is shared:
its load average is part of every section, and numbers from a loaded machine swing.
`;

/**
 * Write one benchmark's results as the section `id` of BENCHMARKS.md, with the date, the
 * machine and the command, replacing that section of an earlier run.
 */
export function writeSection(id: string, title: string, command: string, body: string): void {
  const file = join(packageRoot(), 'BENCHMARKS.md');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : HEAD;
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${loadavg()[0].toFixed(1)} at the end`;
  const section = `${start}\n## ${title}\n\n${new Date().toISOString()} · ${machine} · \`${command}\`\n\n${body.trim()}\n${end}`;
  const re = new RegExp(`${start}[\\s\\S]*?${end}`);
  text = re.test(text) ? text.replace(re, () => section) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, text);
  console.log(section);
}

export function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
