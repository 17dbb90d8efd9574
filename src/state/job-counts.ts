import type { Redis } from 'ioredis';
import type { Keyspace } from './keys.js';

/**
 * Jobs by state for `oswalk status`, from the queue's own indexes (no scan of job records):
 * the live states are the sizes of their sets, the terminal ones counters kept by the one
 * Lua function through which every job ends.
 */
export async function countJobsByState(redis: Redis, ks: Keyspace): Promise<Record<string, number>> {
  const nodes = await redis.smembers(ks.nodes);
  const pipe = redis.pipeline()
    .zcard(ks.jobsPending)
    .zcard(ks.jobsDelayed)
    .zcard(ks.jobsLeases)
    .hgetall(ks.jobsFinished);
  for (const n of nodes) pipe.zcard(ks.nodeQueue(n));
  const res = ((await pipe.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  const [pending, retrying, running, finished, ...queued] = res as [number, number, number, Record<string, string>, ...number[]];
  return {
    pending,
    retrying,
    scheduled: queued.reduce((a, b) => a + b, 0),
    running,
    succeeded: Number(finished.succeeded ?? 0),
    failed: Number(finished.failed ?? 0),
    cancelled: Number(finished.cancelled ?? 0),
  };
}
