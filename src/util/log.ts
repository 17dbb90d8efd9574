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
export function createLogger(name: string, bindings: Record<string, unknown> = {}, opts: { stderr?: boolean } = {}): Logger {
  const options = { name, level: process.env.OSWALK_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...bindings } };
  const fd = opts.stderr ? 2 : 1;
  return pino(options, logFormat(fd) === 'pretty' ? prettyStream(fd) : pino.destination(fd));
}

/** The form of the log lines written to fd (OSWALK_LOG_FORMAT; else pretty on a terminal). */
export function logFormat(fd: number): 'json' | 'pretty' {
  const f = process.env.OSWALK_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  return isatty(fd) ? 'pretty' : 'json';
}

/** pino-pretty, loaded only for a terminal: processes that log JSON never pay for it. */
function prettyStream(fd: number): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
  // sync: a line is out before the process may exit (a fatal error's last words).
  return pretty({ destination: fd, sync: true, colorize: isatty(fd), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
}

export type { Logger };
