import { LEADER_LEASE_MS, LeaderLease } from './leader.js';
import type { ControlPlaneContext } from './context.js';
import { startChunkListGc } from './chunk-list-gc.js';
import { startMonitor } from './monitor.js';
import { startSchedulerLoop, type SchedulerLoopOptions } from './scheduler-loop.js';


export interface ControlLoops {
  lease: LeaderLease;
  /** Stop the loops and hand the leader lease back so another control plane takes over at once. */
  stop(): Promise<void>;
}

/**
 * Start what only the leader does: keep the leader lease, schedule, monitor nodes, reconcile
 * Job/Service manifests and collect the files' chunk lists no version names any more. Every
 * control plane calls this; the loops idle while another process holds the lease.
 */
export function startControlLoops(ctx: ControlPlaneContext, opts: SchedulerLoopOptions & { leaseMs?: number } = {}): ControlLoops {
  const lease = new LeaderLease(ctx.redis, ctx.ks, ctx.config.id, opts.leaseMs ?? LEADER_LEASE_MS);
  const isLeader = () => lease.isLeader;
  let wasLeader = false;
  const tick = async () => {
    const now = await lease.tick();
    if (now !== wasLeader) ctx.log.info({ holder: ctx.config.id }, now ? 'took the leader lease' : 'lost the leader lease');
    if (now && !wasLeader) scheduler.tookLead();
    wasLeader = now;
  };
  const log = ctx.log.child({ loop: 'jobs' });
  const scheduler = startSchedulerLoop({ ...ctx, log, isLeader, ...opts });
  // The leader renews every third of the lease; the others look every tenth, so that one of
  // them takes it soon after it runs out.
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const loop = async () => {
    await tick();
    if (!stopped) timer = setTimeout(() => void loop(), Math.max(50, Math.floor(lease.ttlMs / (wasLeader ? 3 : 10))));
  };
  void loop();
  const monitor = startMonitor({ ...ctx, log, isLeader, nodeTimeoutMs: ctx.config.nodeTimeoutMs });
  const chunkListGc = startChunkListGc({ ...ctx, log: ctx.log.child({ loop: 'chunk-list-gc' }), isLeader });
  return {
    lease,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await Promise.all([scheduler.stop(), monitor.stop(), chunkListGc.stop()]);
      await lease.release().catch(() => undefined);
    },
  };
}
