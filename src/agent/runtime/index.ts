import { createLogger, type Logger } from '../../util/log.js';
import { ProcessRuntime } from './process.js';
import type { LimitMode } from './limits.js';
import type { Runtime } from './types.js';

export type { RunSpec, RunResult, RunHandle, Runtime } from './types.js';
export type { LimitMode } from './limits.js';
export { ProcessRuntime } from './process.js';

export interface RuntimeOptions {
  /** The agent's state directory (the process runtime keeps its job records there). */
  stateDir: string;
  logger?: Logger;
  /** Grace between the polite stop (SIGTERM / docker stop) and the hard kill. Default 10 s. */
  killGraceMs?: number;
  /** Process runtime: how to enforce cpus/memoryBytes. Default 'auto'. */
  limits?: LimitMode;
  /** Process runtime: where the cgroup hierarchies are mounted. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
}

export function createRuntime(name: 'docker' | 'process', opts: RuntimeOptions): Runtime {
  const logger = opts.logger ?? createLogger('runtime', { runtime: name });
  if (name === 'process') return new ProcessRuntime({ ...opts, logger });
  throw new Error(`unknown runtime "${String(name)}": expected docker or process`);
}
