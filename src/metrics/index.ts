import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

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
