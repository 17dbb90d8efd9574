import type { Redis } from '../../src/state/redis.js';
import type { Keyspace } from '../../src/state/keys.js';
import { completeAndTake, DEFAULT_BACKOFF, type CompleteOutcome, type Completion } from '../../src/state/jobs.js';

/** Entries of the append-only results audit stream (jobs:results): what each attempt ended as. */
export async function readResults(redis: Redis, ks: Keyspace): Promise<{ id: string; attempt: number; state: string; exitCode: string }[]> {
  const raw = await redis.xrange(ks.jobsResults, '-', '+');
  return raw.map(([, f]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < f.length; i += 2) o[f[i]] = f[i + 1];
    return { id: o.id, attempt: Number(o.attempt), state: o.state, exitCode: o.exitCode };
  });
}

/** One attempt's report on its own, as an agent that takes no next job makes it: its outcome. */
export async function completeJob(redis: Redis, ks: Keyspace, c: Completion, backoff = DEFAULT_BACKOFF, now?: number): Promise<CompleteOutcome> {
  return (await completeAndTake(redis, ks, [c], undefined, backoff, now)).outcomes[0];
}
