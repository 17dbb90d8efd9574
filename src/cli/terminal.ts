import { execFileSync } from 'node:child_process';

/**
 * The local terminal of `oswalk run -t`, made raw as ssh makes it (no line editing, no echo,
 * no signals from keys, no output processing: the job's own terminal on its node does all of
 * that) and given back as it was, also when the CLI leaves through process.exit or a second
 * signal. Node's setRawMode keeps output processing on (ONLCR), which turns every line feed a
 * full-screen program sends into a carriage return and a line feed; stty (coreutils, on every
 * Debian) sets what ssh sets.
 */

/** The terminal's settings (stty -g) to give back while it is raw; undefined while it is not. */
let saved: string | undefined;

function stty(args: string[]): string {
  return execFileSync('stty', args, { stdio: ['inherit', 'pipe', 'pipe'], encoding: 'utf8' }).trim();
}

const raw = () => stty(['raw', '-echo']);

/** On SIGCONT: again raw, if there is still a terminal (a hang-up sends SIGCONT too). */
const rawAgain = () => {
  try {
    raw();
  } catch {
    // The terminal is gone: the hang-up's SIGHUP ends the session.
  }
};

/** Make standard input's terminal raw until restoreTerminal() or the process's exit. */
export function makeTerminalRaw(): void {
  saved = stty(['-g']);
  raw();
  process.once('exit', restoreTerminal);
  // A shell that resumed us (after a kill -STOP) may have set its own modes meanwhile.
  process.on('SIGCONT', rawAgain);
}

export function restoreTerminal(): void {
  if (saved === undefined) return;
  const was = saved;
  saved = undefined;
  process.off('SIGCONT', rawAgain);
  try {
    stty([was]);
  } catch {
    // The terminal is gone (closed window): nothing left to restore.
  }
}

/**
 * One line of the CLI's own on stderr, readable also while the terminal is raw (on a line of
 * its own: the job's last output, a prompt, may have left the cursor mid-line).
 */
export function note(text: string): void {
  process.stderr.write(saved === undefined ? `oswalk: ${text}\n` : `\r\noswalk: ${text}\r\n`);
}
