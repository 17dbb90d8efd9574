import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { schedule, type SchedNode, type Strategy } from '../scheduler/index.js';
import type { Keyspace } from '../state/keys.js';
import { placeJobs, schedulerSnapshot } from '../state/jobs.js';
import type { Logger } from '../util/log.js';

export interface SchedulerLoopOptions {
  strategy?: Strategy;
  /** Pending jobs looked at per pass. */
  batch?: number;
  /** Longest sleep without a wake-up; a pass then runs anyway (delayed retries, missed wake-ups). */
  idleMs?: number;
}

/** One pass: snapshot → plan → apply. Returns how many were placed and whether more are queued. */
export async function schedulingPass(redis: Redis, ks: Keyspace, strategy: Strategy, batch: number): Promise<{ placed: number; waiting: number; full: boolean }> {
  const snap = await schedulerSnapshot(redis, ks, batch);
  if (!snap.pending.length) return { placed: 0, waiting: 0, full: false };
  const nodes: SchedNode[] = snap.nodes.map((n) => ({
    name: n.name, status: n.status, labels: n.labels, runtime: n.runtime, cpus: n.cpus, memoryBytes: n.memoryBytes,
    allocated: { milliCpus: n.allocated.milliCpus, memoryBytes: n.allocated.memoryBytes }, load1: n.load1,
  }));
  const plan = schedule({ nodes, pending: snap.pending }, strategy);
  const { placed } = await placeJobs(redis, ks, plan);
  return { placed, waiting: plan.waiting.length, full: snap.pending.length >= batch };
}

/**
 * The leader's scheduling loop. It sleeps in BLPOP on wake:scheduler, which submits and
 * freed capacity push, so a new job is placed within a round trip, and it drains the queue
 * in batches so a burst of thousands costs a few passes.
 */
export function startSchedulerLoop(opts: {
  redis: Redis; ks: Keyspace; log: Logger; registry: Registry; isLeader: () => boolean;
} & SchedulerLoopOptions): { stop(): Promise<void> } {
  const { redis, ks, log, isLeader } = opts;
  const strategy = opts.strategy ?? 'spread';
  const batch = opts.batch ?? 1000;
  const idleSeconds = (opts.idleMs ?? 1000) / 1000;
  const blocking = redis.duplicate();
  const passes = new Histogram({
    name: 'oswalk_scheduler_pass_duration_seconds', help: 'Time of one scheduling pass (snapshot, plan, apply).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [opts.registry],
  });
  const placedTotal = new Counter({ name: 'oswalk_scheduler_placements_total', help: 'Jobs placed on a node.', registers: [opts.registry] });
  const waitingGauge = new Gauge({ name: 'oswalk_scheduler_waiting_jobs', help: 'Pending jobs no node could take in the last pass.', registers: [opts.registry] });
  let stopped = false;

  const run = async (): Promise<void> => {
    while (!stopped) {
      if (!isLeader()) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      try {
        await blocking.blpop(ks.schedulerWake, idleSeconds);
        if (stopped) break;
        for (;;) {
          const end = passes.startTimer();
          const res = await schedulingPass(redis, ks, strategy, batch);
          end();
          placedTotal.inc(res.placed);
          waitingGauge.set(res.waiting);
          if (!(res.full && res.placed > 0) || stopped || !isLeader()) break;
        }
      } catch (err) {
        if (stopped) break;
        log.warn({ err }, 'scheduling pass failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  const done = run();
  return {
    async stop() {
      stopped = true;
      blocking.disconnect();
      await done;
    },
  };
}
