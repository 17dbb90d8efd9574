import { Gauge } from 'prom-client';
import { KINDS } from '../manifest/index.js';
import { countJobsByState } from '../state/job-counts.js';
import { listNodes } from '../state/nodes.js';
import type { NodeRecord, NodeStatus } from '../api/nodes.js';
import type { ControlPlaneContext } from './context.js';

const NODE_STATUSES: NodeStatus[] = ['ready', 'draining', 'down'];

/**
 * The cluster's objects as Prometheus sees them: jobs by state, applied manifests by kind,
 * nodes by status (counts, and each node's own). Read from Redis when scraped, so every
 * control plane reports the same.
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
  // One read of the nodes per scrape for both node gauges (a scrape collects them together).
  let pending: Promise<NodeRecord[]> | undefined;
  const nodes = (): Promise<NodeRecord[]> => {
    pending ??= listNodes(redis, ks).finally(() => {
      pending = undefined;
    });
    return pending;
  };
  new Gauge({
    name: 'oswalk_nodes', help: 'Registered nodes by status.', labelNames: ['status'], registers: [registry],
    async collect() {
      const all = await nodes();
      for (const status of NODE_STATUSES) this.set({ status }, all.filter((n) => n.status === status).length);
    },
  });
  // Per node, as kube-state-metrics' kube_node_status_condition, so an alert can name the node.
  new Gauge({
    name: 'oswalk_node_status', help: 'Each registered node\'s status: 1 for the one it is in, 0 for the others.',
    labelNames: ['node', 'status'], registers: [registry],
    async collect() {
      const all = await nodes();
      // A removed node's series go with it.
      this.reset();
      for (const n of all) for (const status of NODE_STATUSES) this.set({ node: n.name, status }, n.status === status ? 1 : 0);
    },
  });
}
