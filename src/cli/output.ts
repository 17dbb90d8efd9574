import { createRequire } from 'node:module';
import Table from 'cli-table3';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

/**
 * What a command answers, for scripts: JSON, or YAML as kubectl's -o yaml gives it. js-yaml is
 * loaded only then: a quick command must not pay for it.
 */
export function printDocument(format: Exclude<OutputFormat, 'table'>, doc: unknown): void {
  if (format === 'json') {
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    return;
  }
  const { dump } = createRequire(import.meta.url)('js-yaml') as typeof import('js-yaml');
  process.stdout.write(dump(doc, { noRefs: true, lineWidth: -1 }));
}

export interface Column<T> {
  header: string;
  value: (row: T) => string | number | undefined;
}

/** Rows as a readable table, or the raw objects as JSON or YAML for scripts. */
export function printRows<T>(format: OutputFormat, rows: T[], columns: Column<T>[], json: unknown = rows, empty = 'No resources found.'): void {
  if (format !== 'table') return printDocument(format, json);
  if (!rows.length) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  const table = new Table({
    head: columns.map((c) => c.header),
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: process.stdout.isTTY ? ['bold'] : [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) table.push(columns.map((c) => printable(String(c.value(r) ?? '-'))));
  process.stdout.write(table.toString() + '\n');
}

/**
 * A cell as it may reach a terminal: control characters (a job name or message with escape
 * sequences, a carriage return or a newline) shown as escapes, not obeyed.
 */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => CONTROL_NAMES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const CONTROL_NAMES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)}${units[i]}`;
}

export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
