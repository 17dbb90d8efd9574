import { createHash } from 'node:crypto';
import type { RunHandle, RunResult, RunSpec } from './types.js';

/**
 * Variables every job sees whatever its runtime, so a program can tell which job, attempt and
 * node it is. spec.env comes last: the job's own settings win over ours.
 */
export function jobEnv(spec: RunSpec): Record<string, string> {
  return {
    OSWALK_JOB_ID: spec.jobId,
    OSWALK_ATTEMPT: String(spec.attempt),
    OSWALK_NODE: spec.node,
    ...(spec.clusterMount ? { OSWALK_CLUSTER: spec.clusterMount } : {}),
    ...spec.env,
  };
}

/**
 * A start that failed through the job's own fault (no such image, command or directory) is a
 * result, not an exception: the agent records it as the job's failure and carries on.
 */
export function failedStart(result: RunResult): RunHandle {
  return { wait: async () => result, kill: async () => {} };
}

/** A name safe for a file or cgroup directory, still readable, and unique per input. */
export function safeName(s: string): string {
  const readable = s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 48);
  const hash = createHash('sha256').update(s).digest('hex').slice(0, 8);
  return `${readable}-${hash}`;
}

/** Catch a throwing output callback so that it cannot take the agent down with an uncaught error. */
export function guardOutput(
  onOutput: (stream: 'stdout' | 'stderr', data: Buffer) => void,
  report: (err: unknown) => void,
): (stream: 'stdout' | 'stderr', data: Buffer) => void {
  let reported = false;
  return (stream, data) => {
    try {
      onOutput(stream, data);
    } catch (err) {
      if (!reported) report(err);
      reported = true;
    }
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
