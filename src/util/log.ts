import { pino, type Logger } from 'pino';

/**
 * One structured logger for every long-running process. Level from OSWALK_LOG_LEVEL;
 * fastify reuses the same instance so request logs and our own share one stream.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}, opts: { stderr?: boolean } = {}): Logger {
  const options = { name, level: process.env.OSWALK_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...bindings } };
  return opts.stderr ? pino(options, pino.destination(2)) : pino(options);
}

export type { Logger };
