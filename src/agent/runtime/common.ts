import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import type { OnOutput, RunHandle, RunResult, RunSpec } from './types.js';

/**
 * The agent's own environment as a process job inherits it ("same environment" as a local
 * run), less the cluster's credentials: a job must not be able to read the API token or
 * the Redis URL (which may carry a password) and act as the agent.
 */
export function agentEnvForJobs(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^OSWALK_(TOKEN|REDIS_URL|REDIS_OPTIONS|API)$/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

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
  return { wait: async () => result, kill: async () => {}, cpuSeconds: async () => 0 };
}

/** A name safe for a file or cgroup directory, still readable, and unique per input. */
export function safeName(s: string): string {
  const readable = s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 48);
  const hash = createHash('sha256').update(s).digest('hex').slice(0, 8);
  return `${readable}-${hash}`;
}

/**
 * The runtime's side of OnOutput: pause `sources` (the job's output streams) while the callback
 * asks to, and catch a throwing callback so that it cannot take the agent down.
 */
export function guardOutput(
  onOutput: OnOutput,
  report: (err: unknown) => void,
  sources: Readable[],
): (stream: 'stdout' | 'stderr', data: Buffer) => void {
  let reported = false;
  let held = false;
  return (stream, data) => {
    try {
      const wait = onOutput(stream, data);
      if (!wait || held) return;
      held = true;
      for (const s of sources) s.pause();
      void wait.catch(() => undefined).then(() => {
        held = false;
        for (const s of sources) s.resume();
      });
    } catch (err) {
      if (!reported) report(err);
      reported = true;
    }
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait for p, but no longer than ms (and leave no timer behind to hold the process up). */
export async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => { timer = setTimeout(r, ms); })]);
  clearTimeout(timer);
}
