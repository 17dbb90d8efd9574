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
    .hgetall(ks.jobsFinished);
  for (const n of nodes) pipe.zcard(ks.nodeQueue(n)).zcard(ks.nodeLeases(n));
  const res = ((await pipe.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  const [pending, retrying, finished, ...perNode] = res as [number, number, Record<string, string>, ...number[]];
  // perNode alternates each node's queued and running counts.
  const sum = (odd: number) => perNode.filter((_, i) => i % 2 === odd).reduce((a, b) => a + b, 0);
  return {
    pending,
    retrying,
    scheduled: sum(0),
    running: sum(1),
    succeeded: Number(finished.succeeded ?? 0),
    failed: Number(finished.failed ?? 0),
    cancelled: Number(finished.cancelled ?? 0),
  };
}
