import { createHash } from 'node:crypto';
import type { Redis } from '../state/redis.js';
import { Counter, type Registry } from 'prom-client';
import type { Keyspace } from '../state/keys.js';
import { monitorStep, reconcileOwner, retireOwner } from '../state/jobs.js';
import { jobSpecOfManifest, type JobManifest, type ServiceManifest } from '../manifest/index.js';
import type { Logger } from '../util/log.js';

/**
 * Bring the job records of every applied Job and Service manifest (obj:Job, obj:Service)
 * in line, and retire those of deleted manifests.
 */
export async function reconcileOwners(redis: Redis, ks: Keyspace, log: Logger, now?: number): Promise<void> {
  for (const kind of ['Job', 'Service'] as const) {
    const [applied, known] = await Promise.all([redis.hgetall(ks.objects(kind)), redis.smembers(ks.owners(kind))]);
    for (const [name, json] of Object.entries(applied)) {
      try {
        const m = JSON.parse(json) as JobManifest | ServiceManifest;
        const spec = jobSpecOfManifest(m);
        const count = m.kind === 'Job' ? m.spec.completions : m.spec.replicas;
        const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
        const parallelism = m.kind === 'Job' ? m.spec.parallelism : 0;
        const res = await reconcileOwner(redis, ks, { kind, name }, count, spec, hash, { parallelism }, now);
        if (res.created || res.cancelled) log.info({ kind, name, ...res }, 'reconciled job records');
      } catch (err) {
        log.warn({ err, kind, name }, 'cannot reconcile manifest');
      }
    }
    for (const name of known.filter((n) => !(n in applied))) {
      const res = await retireOwner(redis, ks, { kind, name }, now);
      log.info({ kind, name, ...res }, 'manifest deleted: job records retired');
    }
  }
}

export interface MonitorOptions {
  nodeTimeoutMs: number;
  /** How often the monitor pass runs. */
  intervalMs?: number;
  /** How often Job/Service manifests are reconciled. */
  reconcileMs?: number;
}

/**
 * The leader's node monitor: marks silent nodes down and requeues their jobs, requeues
 * expired leases, promotes delayed retries (all one Lua step), and reconciles manifests.
 */
export function startMonitor(opts: { redis: Redis; ks: Keyspace; log: Logger; registry: Registry; isLeader: () => boolean } & MonitorOptions): { stop(): Promise<void> } {
  const { redis, ks, log, isLeader } = opts;
  const interval = opts.intervalMs ?? 500;
  const reconcileEvery = opts.reconcileMs ?? 2000;
  const downTotal = new Counter({ name: 'oswalk_nodes_marked_down_total', help: 'Nodes the monitor marked down after missed heartbeats.', registers: [opts.registry] });
  const requeuedTotal = new Counter({ name: 'oswalk_jobs_requeued_total', help: 'Jobs requeued from a down node or an expired lease.', registers: [opts.registry] });
  let stopped = false;
  let lastReconcile = 0;
  let wake: (() => void) | undefined;

  const run = async (): Promise<void> => {
    while (!stopped) {
      if (isLeader()) {
        try {
          const res = await monitorStep(redis, ks, opts.nodeTimeoutMs);
          for (const n of res.nodesDown) log.warn({ node: n, timeoutMs: opts.nodeTimeoutMs }, 'node missed its heartbeats: marked down, its jobs requeued');
          for (const job of res.hungUp) log.info({ job }, 'terminal session without a client: hung up');
          downTotal.inc(res.nodesDown.length);
          requeuedTotal.inc(res.requeued);
          if (Date.now() - lastReconcile >= reconcileEvery) {
            lastReconcile = Date.now();
            await reconcileOwners(redis, ks, log);
          }
        } catch (err) {
          log.warn({ err }, 'monitor pass failed; retrying');
        }
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, interval);
      });
    }
  };
  const done = run();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await done;
    },
  };
}
