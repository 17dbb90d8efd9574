import { createRequire } from 'node:module';

export type OutputFormat = 'table' | 'wide' | 'name' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'wide', 'name', 'json', 'yaml'];
export type DocumentFormat = Extract<OutputFormat, 'json' | 'yaml'>;

export function isDocumentFormat(format: OutputFormat): format is DocumentFormat {
  return format === 'json' || format === 'yaml';
}

/** Every list the CLI prints for scripts has this one form, kubectl's. */
export function listDocument<T>(items: T[], extra: Record<string, unknown> = {}): { kind: 'List'; items: T[] } {
  return { kind: 'List', items, ...extra };
}

/**
 * Fields the API gives as ms since the epoch. What the CLI prints shows them as RFC 3339 times,
 * as kubectl does: a script then needs no guess at the unit, and a person can read them. Only
 * numbers are touched, so a label or variable of a user's that happens to share a name (values
 * that are always strings) stays as it is.
 */
const EPOCH_MS_FIELDS = new Set(['createdAt', 'scheduledAt', 'startedAt', 'finishedAt', 'registeredAt', 'committedAt', 'lastHeartbeat', 'removingSince', 'at', 'expiresAt', 'revokedAt', 'notAfter']);

function withRfc3339Times(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withRfc3339Times);
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, EPOCH_MS_FIELDS.has(k) && typeof x === 'number' ? new Date(x).toISOString() : withRfc3339Times(x)]));
}

/**
 * What a command answers, for scripts: JSON, or YAML as kubectl's -o yaml gives it. js-yaml is
 * loaded only then: a quick command must not pay for it.
 */
export function printDocument(format: DocumentFormat, doc: unknown): void {
  const d = withRfc3339Times(doc);
  if (format === 'json') {
    process.stdout.write(JSON.stringify(d, null, 2) + '\n');
    return;
  }
  const { dump } = createRequire(import.meta.url)('js-yaml') as typeof import('js-yaml');
  process.stdout.write(dump(d, { noRefs: true, lineWidth: -1 }));
}

export interface Column<T> {
  header: string;
  value: (row: T) => string | number | undefined;
  /** Shown with -o wide only, as kubectl's extra columns are. */
  wide?: true;
  /** Moves with the clock alone (an age): a watch prints a row again for a change of anything else. */
  ticks?: true;
}

export interface RowsOptions<T> {
  /** What -o json and -o yaml print (default: the rows as a List). */
  json?: unknown;
  /** kind/name of a row, for -o name; a command without one takes no -o name (`output` in common.ts). */
  name?: (row: T) => string;
  /** What a table says when there are no rows. */
  empty?: string;
}

/** Rows as a readable table (with more columns for -o wide), their names, or the raw objects as JSON or YAML for scripts. */
export function printRows<T>(format: OutputFormat, rows: T[], columns: Column<T>[], opts: RowsOptions<T> = {}): void {
  if (isDocumentFormat(format)) return printDocument(format, opts.json ?? listDocument(rows));
  if (format === 'name') {
    if (!opts.name) throw new Error('-o name: this command prints no names');
    for (const r of rows) process.stdout.write(`${printable(opts.name(r))}\n`);
    return;
  }
  if (!rows.length) {
    process.stdout.write(`${opts.empty ?? 'No resources found.'}\n`);
    return;
  }
  process.stdout.write(tableText(format, rows, columns, true));
}

/** The columns -o wide or a plain table shows. */
function shownColumns<T>(format: OutputFormat, columns: Column<T>[]): Column<T>[] {
  return format === 'wide' ? columns : columns.filter((c) => !c.wide);
}

/** Rows laid out as a table, with or without its header line (a watch prints rows one by one under the first table's). */
export function tableText<T>(format: OutputFormat, rows: T[], columns: Column<T>[], header: boolean): string {
  const cols = shownColumns(format, columns);
  // Loaded when a table is printed: most commands that load this module (run, logs) print none.
  const Table = createRequire(import.meta.url)('cli-table3') as typeof import('cli-table3');
  const table = new Table({
    ...(header ? { head: cols.map((c) => c.header) } : {}),
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: process.stdout.isTTY ? ['bold'] : [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) table.push(cols.map((c) => cell(c, r)));
  return table.toString() + '\n';
}

export function cell<T>(c: Column<T>, row: T): string {
  return printable(String(c.value(row) ?? '-'));
}

/**
 * A cell as it may reach a terminal: control characters (a job name or message with escape
 * sequences, a carriage return or a newline) shown as escapes, not obeyed.
 */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => CONTROL_NAMES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const CONTROL_NAMES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Labels as kubectl shows them: k=v,k2=v2, or - for none. */
export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || '-';
}

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
