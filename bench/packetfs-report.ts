import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/util/paths.js';

/**
 * Write one benchmark's results as a section of BENCHMARKS-packetfs.md, replacing the
 * previous run's section of the same id and leaving the others alone.
 */
export function writeSection(id: string, title: string, command: string, body: string): void {
  const file = join(packageRoot(), 'BENCHMARKS-packetfs.md');
  const head = '# PacketFS benchmarks\n\nWritten by `bench/packetfs-*.ts`; each section is replaced by its own benchmark.\n';
  let text = existsSync(file) ? readFileSync(file, 'utf8') : head;
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  // The load average matters: the machine is shared, and a busy neighbour slows every row.
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${loadavg()[0].toFixed(1)} at the end`;
  const section = `${start}\n## ${title}\n\n${new Date().toISOString()} · ${machine} · \`${command}\`\n\n${body.trim()}\n${end}`;
  const re = new RegExp(`${start}[\\s\\S]*?${end}`);
  text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, text);
  console.log(section);
}

export function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export const gbps = (bytes: number, ms: number): string => (bytes / ms / 1e6).toFixed(3);
