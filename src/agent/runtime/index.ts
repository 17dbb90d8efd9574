import { createLogger, type Logger } from '../../util/log.js';
import { ProcessRuntime } from './process.js';
import { DockerRuntime } from './docker.js';
import type Dockerode from 'dockerode';
import type { LimitMode } from './limits.js';
import type { Runtime } from './types.js';

export type { RunSpec, RunResult, RunHandle, Runtime } from './types.js';
export type { LimitMode } from './limits.js';
export { ProcessRuntime } from './process.js';
export { DockerRuntime, CLUSTER_PATH, LABEL_NODE, LABEL_JOB, LABEL_ATTEMPT } from './docker.js';

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
  /** Docker runtime: the engine (default: DOCKER_HOST or /var/run/docker.sock). */
  docker?: Dockerode;
  /** Docker runtime: 'never' (default) or 'missing' (one bounded pull of an absent image). */
  pull?: 'never' | 'missing';
  pullTimeoutMs?: number;
}

export function createRuntime(name: 'docker' | 'process', opts: RuntimeOptions): Runtime {
  const logger = opts.logger ?? createLogger('runtime', { runtime: name });
  if (name === 'process') return new ProcessRuntime({ ...opts, logger });
  if (name === 'docker') return new DockerRuntime({ ...opts, logger });
  throw new Error(`unknown runtime "${String(name)}": expected docker or process`);
}
