import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { schedule, type GroupLimits, type SchedJob, type SchedNode, type Strategy } from '../scheduler/index.js';
import type { Keyspace } from '../state/keys.js';
import { pendingIds, pendingJobs, placeJobs, schedulerView, type PendingJob, type Plan, type SchedulerSnapshot } from '../state/jobs.js';
import type { Logger } from '../util/log.js';
import { duplicateRedis, type Redis } from '../state/redis.js';

export interface SchedulerLoopOptions {
  strategy?: Strategy;
  /** Pending jobs looked at per pass. */
  batch?: number;
  /** Longest sleep without a wake-up; a pass then runs anyway (delayed retries, missed wake-ups). */
  idleMs?: number;
}

/**
 * What a scheduling loop remembers between passes: the requirements of pending jobs (they
 * never change), the wait reason last written for each, so a long queue is neither re-read
 * nor re-written on every pass, and since when each has waited for want of a node.
 */
export class SchedulerMemory {
  readonly jobs = new Map<string, PendingJob>();
  readonly reasons = new Map<string, string>();
  /** Job id → when (ms) a pass of this loop first found no place for it. */
  readonly waitingSince = new Map<string, number>();
  /** Every node as last read (NODES_REFRESH_MS), and whether the pass after it left jobs waiting. */
  allNodes?: { at: number; nodes: SchedulerSnapshot['nodes'] };
  waited = false;

  /** Forget jobs that left the head of the queue, once the maps grow past `max`. */
  prune(current: Set<string>, max: number): void {
    if (this.jobs.size <= max && this.reasons.size <= max && this.waitingSince.size <= max) return;
    for (const map of [this.jobs, this.reasons, this.waitingSince]) {
      for (const id of map.keys()) if (!current.has(id)) map.delete(id);
    }
  }
}

/** Pending jobs read at a time; a pass reads further pages only while nodes have room. */
const PAGE = 128;

/**
 * How old the list of every node may be when a pass leaves jobs waiting. A pass places on the
 * nodes with room, read fresh (the room index); the others only lend the wait reasons their
 * words ("all nodes are full", "no node is ready (2 down)"), and reading all of them on every
 * pass would cost a pass O(nodes) however few it can place.
 */
const NODES_REFRESH_MS = 1000;

/**
 * The nodes a pass schedules on: those with room, fresh from `view`, and the others from the
 * last list of every node, each counted full (the room index says it has no free CPU, or it
 * cannot take jobs), read again first when it is stale and the last pass left jobs waiting.
 */
async function passNodes(redis: Redis, ks: Keyspace, view: SchedulerSnapshot['nodes'], memory: SchedulerMemory): Promise<SchedulerSnapshot['nodes']> {
  const now = Date.now();
  if (!memory.allNodes || (memory.waited && now - memory.allNodes.at >= NODES_REFRESH_MS)) {
    memory.allNodes = { at: now, nodes: (await schedulerView(redis, ks, 1, 'all')).nodes };
  }
  const merged = new Map(memory.allNodes.nodes.map((n) => [n.name, { ...n, allocated: { ...n.allocated, milliCpus: Math.max(n.allocated.milliCpus, Math.round(n.cpus * 1000)) } }]));
  for (const n of view) merged.set(n.name, n);
  return [...merged.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * One pass: nodes → pages of the queue → plan → apply. A pass costs what it can place, not
 * the length of the queue: it stops reading once no ready node has room for the smallest
 * job seen, so thousands of queued jobs behind a full cluster are not re-read per completion.
 * Returns how many were placed, how many it left waiting and the longest of their waits (ms),
 * and whether the queue holds more than the pass looked at.
 */
export async function schedulingPass(redis: Redis, ks: Keyspace, strategy: Strategy, batch: number, memory = new SchedulerMemory()): Promise<{ placed: number; waiting: number; longestWaitMs: number; full: boolean }> {
  const view = await schedulerView(redis, ks, Math.min(PAGE, batch), 'room');
  if (!view.ids.length) return { placed: 0, waiting: 0, longestWaitMs: 0, full: false };
  const snapNodes = await passNodes(redis, ks, view.nodes, memory);
  let ids = view.ids;
  const first = await pendingJobs(redis, ks, ids, memory.jobs);
  let nodes: SchedNode[] = snapNodes.map((n) => ({
    name: n.name, status: n.status, labels: n.labels, runtime: n.runtime, ...(n.defaultImage ? { defaultImage: n.defaultImage } : {}),
    cpus: n.cpus, memoryBytes: n.memoryBytes,
    allocated: { milliCpus: n.allocated.milliCpus, memoryBytes: n.allocated.memoryBytes }, load1: n.load1,
    usedCpus: n.usedCpus ?? 0, burstCpus: n.burstCpus ?? 0, ...(n.hostId ? { host: n.hostId } : {}),
    ...(n.mountReady === false ? { mountDown: n.mountError || 'the cluster filesystem is not mounted' } : {}),
  }));
  let groups: GroupLimits = { ...first.groups };
  const plan: Plan = { placements: [], waiting: [] };
  const seen = new Set<string>();
  let page = first;
  let offset = 0;
  let smallest = Infinity;
  for (;;) {
    for (const [g, v] of Object.entries(page.groups)) groups[g] ??= v;
    // The state's records of pending jobs are the scheduler's jobs as they are (same shape).
    const pending: SchedJob[] = page.pending;
    const part = schedule({ nodes, pending, groups }, strategy);
    ({ nodes, groups } = part.left);
    for (const j of page.pending) {
      seen.add(j.id);
      smallest = Math.min(smallest, j.milliCpus);
    }
    plan.placements.push(...part.placements);
    plan.waiting.push(...part.waiting);
    offset += ids.length;
    const room = nodes.some((n) => n.status === 'ready' && !n.mountDown && Math.round(n.cpus * 1000) - n.allocated.milliCpus >= smallest);
    if (ids.length < PAGE || offset >= batch || !room) break;
    ids = await pendingIds(redis, ks, offset, Math.min(PAGE, batch - offset));
    page = await pendingJobs(redis, ks, ids, memory.jobs);
  }
  const changed = plan.waiting.filter((w) => memory.reasons.get(w.jobId) !== w.reason);
  const { placed } = await placeJobs(redis, ks, { placements: plan.placements, waiting: changed });
  for (const w of changed) memory.reasons.set(w.jobId, w.reason);
  const now = Date.now();
  let oldest = now;
  for (const w of plan.waiting) {
    const since = memory.waitingSince.get(w.jobId) ?? now;
    memory.waitingSince.set(w.jobId, since);
    oldest = Math.min(oldest, since);
  }
  for (const p of plan.placements) {
    memory.jobs.delete(p.jobId);
    memory.reasons.delete(p.jobId);
    memory.waitingSince.delete(p.jobId);
  }
  memory.waited = plan.waiting.length > 0;
  memory.prune(seen, 4 * batch);
  return { placed, waiting: plan.waiting.length, longestWaitMs: now - oldest, full: offset >= batch };
}

/**
 * The leader's scheduling loop. It sleeps in BLPOP on wake:scheduler, which submits and
 * freed capacity push, so a new job is placed within a round trip, and it drains the queue
 * in batches so a burst of thousands costs a few passes. tookLead() ends a follower's wait at
 * once, and the new leader's first pass does not wait for a wake-up (one may have gone to the
 * old leader).
 */
export function startSchedulerLoop(opts: {
  redis: Redis; ks: Keyspace; log: Logger; registry: Registry; isLeader: () => boolean;
} & SchedulerLoopOptions): { stop(): Promise<void>; tookLead(): void } {
  const { redis, ks, log, isLeader } = opts;
  const strategy = opts.strategy ?? 'spread';
  const batch = opts.batch ?? 1000;
  const idleSeconds = (opts.idleMs ?? 1000) / 1000;
  const blocking = duplicateRedis(redis);
  const passes = new Histogram({
    name: 'oswalk_scheduler_pass_duration_seconds', help: 'Time of one scheduling pass (snapshot, plan, apply).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [opts.registry],
  });
  const placedTotal = new Counter({ name: 'oswalk_scheduler_placements_total', help: 'Jobs placed on a node.', registers: [opts.registry] });
  // Only the leader schedules: the others report 0, so max() over control planes is the leader's.
  const waitingGauge = new Gauge({ name: 'oswalk_scheduler_waiting_jobs', help: 'Pending jobs no node could take in the last pass.', registers: [opts.registry] });
  const longestWait = new Gauge({
    name: 'oswalk_scheduler_longest_wait_seconds',
    help: 'How long the longest-waiting of the jobs the last pass could not place has waited since the leading control plane first found no place for it (0 when none waits).',
    registers: [opts.registry],
  });
  let stopped = false;
  let memory = new SchedulerMemory();
  let follower: (() => void) | undefined;
  let leading = false;

  const run = async (): Promise<void> => {
    while (!stopped) {
      if (!isLeader()) {
        // Another process may have written reasons meanwhile.
        memory = new SchedulerMemory();
        leading = false;
        waitingGauge.set(0);
        longestWait.set(0);
        await new Promise<void>((r) => {
          follower = r;
          setTimeout(r, 200);
        });
        continue;
      }
      try {
        if (leading) await blocking.blpop(ks.schedulerWake, idleSeconds);
        leading = true;
        if (stopped) break;
        for (;;) {
          const end = passes.startTimer();
          const res = await schedulingPass(redis, ks, strategy, batch, memory);
          end();
          placedTotal.inc(res.placed);
          waitingGauge.set(res.waiting);
          longestWait.set(res.longestWaitMs / 1000);
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
      follower?.();
      blocking.disconnect();
      await done;
    },
    tookLead() {
      follower?.();
    },
  };
}
