import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * A registry per process (control plane or agent), with the `component` label so one
 * Prometheus job can scrape both. Node's default process metrics keep their standard names
 * (process_*, nodejs_*, no oswalk_ prefix): stock Node.js dashboards and alerts query those.
 */
export function createRegistry(component: 'controlplane' | 'agent' | 'fs', labels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component, ...labels });
  collectDefaultMetrics({ register: registry });
  // prom-client exposes these three as gauges named *_total, which the exposition format
  // reserves for counters: promtool check metrics rejects them, so they are not offered.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  return registry;
}

/** Request duration histogram shared by the control plane's and the agents' HTTP servers. */
export function httpDurationHistogram(registry: Registry): Histogram<'method' | 'route' | 'status'> {
  return new Histogram({
    name: 'oswalk_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
}

/** A process's WAITs for a Redis replica (src/state/replication.ts keeps them; docs/ha.md). */
export interface ReplicaWaitStats {
  waits: number;
  waitMs: number;
  unreplicated: number;
  noReplica: number;
  uncertain: number;
}

type ReplicaWaitSource = () => Promise<ReplicaWaitStats | undefined> | ReplicaWaitStats | undefined;
const replicaWaitSources = new WeakMap<Registry, Map<string, ReplicaWaitSource>>();

/**
 * Count on the registry the replica WAITs of a process (`process` label: the agent and its FS
 * process each keep their own), read at every scrape. The counters are made with the first
 * source a registry gets; a process that restarts starts its own from 0 again.
 */
export function addReplicaWaitSource(registry: Registry, processName: string, read: ReplicaWaitSource): void {
  let sources = replicaWaitSources.get(registry);
  if (!sources) {
    const all = (sources = new Map());
    replicaWaitSources.set(registry, all);
    // One read of each source per scrape: a scrape collects every metric at once.
    let pending: Promise<[string, ReplicaWaitStats][]> | undefined;
    const read = () => {
      pending ??= Promise.all([...all].map(async ([name, f]) => [name, await f()] as const))
        .then((xs) => xs.filter((x): x is [string, ReplicaWaitStats] => x[1] !== undefined))
        .finally(() => {
          pending = undefined;
        });
      return pending;
    };
    const counter = (name: string, help: string, value: (s: ReplicaWaitStats) => number) => new Counter({
      name, help, labelNames: ['process'], registers: [registry],
      async collect() {
        const got = await read();
        this.reset();
        for (const [p, s] of got) this.inc({ process: p }, value(s));
      },
    });
    counter('oswalk_redis_replica_waits_total', 'WAITs for a Redis replica after a step that must outlive a failover (a submit, claim, completion or commit)', (s) => s.waits);
    counter('oswalk_redis_replica_wait_seconds_total', 'Seconds those WAITs took', (s) => s.waitMs / 1000);
    counter('oswalk_redis_unreplicated_steps_total', 'Steps no replica acknowledged within OSWALK_REDIS_WAIT_MS although one was connected: a failover then could lose them', (s) => s.unreplicated);
    counter('oswalk_redis_steps_without_replica_total', 'Steps done while the Redis primary had no replica (nothing to wait for)', (s) => s.noReplica);
    counter('oswalk_redis_uncertain_steps_total', 'Steps whose connection was lost before their WAIT answered, made sure of on the server answering next', (s) => s.uncertain);
  }
  sources.set(processName, read);
}
