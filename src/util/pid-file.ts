import { readFileSync, writeFileSync } from 'node:fs';

/**
 * A pid file: a JSON record (with the holder's pid) that one live process holds at a time,
 * for `oswalk up` (one per folder) and `oswalk agent` (one per state directory).
 */

/** The argv of a live process, or undefined when it is gone. */
export function processArgv(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return undefined;
  }
}

/** The record in `file`, or undefined when there is none (or it cannot be read). */
export function readPidFile<T extends { pid: number }>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Write `rec` to `file`, which must not exist (the caller removed a record whose holder is
 * gone); `raced` is the error when another process wrote one in between.
 */
export function takePidFile<T extends { pid: number }>(file: string, rec: T, raced: string): void {
  try {
    writeFileSync(file, JSON.stringify(rec), { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(raced);
    throw err;
  }
}
