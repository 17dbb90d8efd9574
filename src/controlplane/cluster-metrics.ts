import { Gauge } from 'prom-client';
import { KINDS } from '../manifest/index.js';
import { countJobsByState } from '../state/job-counts.js';
import { listNodes } from '../state/nodes.js';
import type { ControlPlaneContext } from './context.js';

/**
 * The cluster's objects as Prometheus sees them: jobs by state, applied manifests by kind,
 * nodes by status. Read from Redis when scraped, so every control plane reports the same.
 */
export function registerClusterMetrics(ctx: ControlPlaneContext): void {
  const { redis, ks, registry } = ctx;
  new Gauge({
    name: 'oswalk_jobs', help: 'Jobs by state (pending, retrying, scheduled, running; succeeded, failed and cancelled since the start of the cluster).',
    labelNames: ['state'], registers: [registry],
    async collect() {
      for (const [state, n] of Object.entries(await countJobsByState(redis, ks))) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'oswalk_objects', help: 'Applied manifests by kind.', labelNames: ['kind'], registers: [registry],
    async collect() {
      const counts = await Promise.all(KINDS.map((k) => redis.hlen(ks.objects(k))));
      KINDS.forEach((kind, i) => this.set({ kind }, counts[i]));
    },
  });
  new Gauge({
    name: 'oswalk_nodes', help: 'Registered nodes by status.', labelNames: ['status'], registers: [registry],
    async collect() {
      const nodes = await listNodes(redis, ks);
      for (const status of ['ready', 'draining', 'down']) this.set({ status }, nodes.filter((n) => n.status === status).length);
    },
  });
}
