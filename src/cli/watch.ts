import { ApiError } from './client.js';
import { cell, isDocumentFormat, printDocument, printRows, tableText, type Column, type OutputFormat } from './output.js';

const POLL_MS = 1000;

/**
 * `get … -w`, as kubectl's: the list, then an object again each time it changes (a new one, or
 * anything its row shows but an age), until Ctrl-C ends the process. The API has no change
 * stream for jobs or nodes (their records change in many Lua scripts; only the filesystem
 * publishes events), so this asks for the list every second and prints what differs from the
 * answer before. An object that leaves the list prints nothing: deleted and pushed past --limit
 * look alike. -o json and -o yaml print each object as its own document, as kubectl does.
 */
export async function watchRows<T>(format: OutputFormat, list: () => Promise<T[]>, columns: Column<T>[], opts: { key: (row: T) => string; name: (row: T) => string }): Promise<never> {
  const shown = new Map<string, string>();
  const signature = (row: T) => columns.filter((c) => !c.ticks).map((c) => cell(c, row)).join('\0');
  let rows = await list();
  let headed = false;
  const print = (changed: T[]) => {
    if (isDocumentFormat(format)) {
      for (const r of changed) {
        if (format === 'yaml') process.stdout.write('---\n');
        printDocument(format, r);
      }
    } else if (headed) {
      process.stdout.write(tableText(format, changed, columns, false));
    } else {
      printRows(format, changed, columns, { name: opts.name });
      // A table's header comes with its first row; name lines have none.
      headed = format !== 'name' && changed.length > 0;
    }
  };
  // A control plane restarting or failing over must not end a watch, which may have run for hours.
  let lost = false;
  const listAgain = async (): Promise<T[]> => {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      try {
        const again = await list();
        if (lost) process.stderr.write('oswalk: the control plane answers again\n');
        lost = false;
        return again;
      } catch (err) {
        if (!(err instanceof ApiError) || (err.status !== 0 && err.status < 500)) throw err;
        if (!lost) process.stderr.write(`oswalk: ${err.message}; asking again every second\n`);
        lost = true;
      }
    }
  };
  for (let first = true; ; first = false) {
    const changed = rows.filter((r) => shown.get(opts.key(r)) !== signature(r));
    for (const r of changed) shown.set(opts.key(r), signature(r));
    if (first || changed.length) print(changed);
    rows = await listAgain();
  }
}
