import { isatty } from 'node:tty';
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * One structured logger for every long-running process. Level from OSWALK_LOG_LEVEL; the form
 * from OSWALK_LOG_FORMAT: `json` (one object a line, for collectors), or `pretty` (a readable
 * line, for people: time, level, message, then the fields). By default a terminal gets pretty
 * lines and anything else JSON, as `docker compose` and kubectl's own logs do. fastify reuses the
 * same instance so request logs and our own share one stream.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}, opts: LoggerOutput = {}): Logger {
  const options = { name, level: process.env.OSWALK_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...bindings } };
  const fd = opts.stderr ? 2 : 1;
  const pretty = logFormat(fd) === 'pretty';
  if (opts.write) {
    const write = opts.write;
    const format = pretty ? prettyLine(fd) : undefined;
    return pino(options, { write: (line: string) => write(format ? format(line) : line) });
  }
  return pino(options, pretty ? prettyStream(fd) : pino.destination(fd));
}

export interface LoggerOutput {
  /** Log to stderr rather than stdout. */
  stderr?: boolean;
  /**
   * Hand each line to this instead of writing it to the stream, which still decides the lines'
   * form: a command's progress line takes them, to write them above itself.
   */
  write?: (line: string) => void;
}

/** The form of the log lines written to fd (OSWALK_LOG_FORMAT; else pretty on a terminal). */
export function logFormat(fd: number): 'json' | 'pretty' {
  const f = process.env.OSWALK_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  return isatty(fd) ? 'pretty' : 'json';
}

/** pino-pretty, loaded only for a terminal: processes that log JSON never pay for it. */
function pinoPretty(): { (o: Record<string, unknown>): DestinationStream; prettyFactory(o: Record<string, unknown>): (line: string) => string } {
  return createRequire(import.meta.url)('pino-pretty');
}

/** How a readable line looks: time, level, message, then the fields, in colour on a terminal. */
function prettyOptions(fd: number): Record<string, unknown> {
  return { colorize: isatty(fd), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true };
}

function prettyStream(fd: number): DestinationStream {
  // sync: a line is out before the process may exit (a fatal error's last words).
  return pinoPretty()({ destination: fd, sync: true, ...prettyOptions(fd) });
}

/** A pino JSON line as a readable one. */
function prettyLine(fd: number): (line: string) => string {
  return pinoPretty().prettyFactory(prettyOptions(fd));
}

export type { Logger };
