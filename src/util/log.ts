import { pino, type Logger } from 'pino';

/**
 * One structured logger for every long-running process. Level from OSWALK_LOG_LEVEL;
 * fastify reuses the same instance so request logs and our own share one stream.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ name, level: process.env.OSWALK_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...bindings } });
}

export type { Logger };
