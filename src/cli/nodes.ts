import type { Command } from 'commander';
import type { ListAnswer } from '../api/lists.js';
import type { NodeRecord } from '../api/nodes.js';
import { matchesLabels } from '../manifest/labels.js';
import { action, client, output, SELECTOR_HELP, selectorFlag } from './common.js';
import { formatAge, formatBytes, formatLabels, printRows, type Column } from './output.js';
import { watchRows } from './watch.js';

/**
 * A node's status as a person reads it: a ready node whose mount of the unified filesystem is
 * down takes no jobs, and says why (`ready (mount down: …)`); one being removed says so
 * (`draining,removing`).
 */
function nodeStatus(n: NodeRecord): string {
  const status = n.removing ? `${n.status},removing` : n.status;
  return n.status !== 'down' && n.mountReady === false ? `${status} (mount down: ${n.mountError ?? 'unknown'})` : status;
}

export const NODE_COLUMNS: Column<NodeRecord>[] = [
  { header: 'NAME', value: (n) => n.name },
  { header: 'STATUS', value: nodeStatus },
  { header: 'RUNTIME', value: (n) => n.runtime },
  { header: 'CPUS', value: (n) => n.cpus },
  // What its jobs burned over the last seconds, as the scheduler weighs it with their reservations.
  { header: 'CPU USED', value: (n) => n.usedCpus?.toFixed(2) },
  { header: 'LOAD', value: (n) => n.load1?.toFixed(2) },
  { header: 'MEMORY', value: (n) => `${formatBytes(n.memoryUsedBytes)}/${formatBytes(n.memoryBytes)}` },
  { header: 'RUNNING', value: (n) => n.runningJobs },
  { header: 'EXPORTED', value: (n) => n.exportFiles },
  { header: 'SKIPPED', value: (n) => n.exportSkipped },
  { header: 'STORED', value: (n) => (n.storeBytes === undefined ? undefined : `${formatBytes(n.storeBytes)} (${n.storeChunks} chunks)`) },
  { header: 'CACHE', value: (n) => (n.cacheBytes === undefined ? undefined : formatBytes(n.cacheBytes)) },
  { header: 'FILE CACHE', value: (n) => (n.fileCacheBytes === undefined ? undefined : formatBytes(n.fileCacheBytes)) },
  { header: 'BACKLOG', value: (n) => n.translateBacklog },
  { header: 'HEARTBEAT', value: (n) => `${formatAge(Date.now() - n.lastHeartbeat)} ago`, ticks: true },
  { header: 'LABELS', value: (n) => formatLabels(n.labels) },
  { header: 'ADDRESS', value: (n) => n.address, wide: true },
  { header: 'AGENT', value: (n) => n.agentUrl, wide: true },
  // Where a job that names no image runs on a docker node; none: it takes only jobs with one.
  { header: 'DEFAULT IMAGE', value: (n) => (n.runtime === 'docker' ? n.defaultImage ?? '<none>' : undefined), wide: true },
  { header: 'AGE', value: (n) => formatAge(Date.now() - n.registeredAt), wide: true, ticks: true },
];

const nodeName = (n: NodeRecord) => `node/${n.name}`;

export function registerGetNodes(get: Command): void {
  get.command('nodes').alias('node')
    .description('list the nodes of the cluster')
    .option('-l, --selector <selector>', `only nodes whose labels match the selector (${SELECTOR_HELP})`)
    .option('-w, --watch', 'after the list, print a node again whenever it changes, until Ctrl-C')
    .action(action(async (opts: { selector?: string; watch?: boolean }, cmd: Command) => {
      const format = output(cmd, { names: true });
      const selector = opts.selector === undefined ? undefined : selectorFlag(opts.selector);
      const api = client(cmd);
      // Nodes are few and listed whole: the selector is applied here, not by the API.
      const list = async () => (await api.get<ListAnswer<NodeRecord>>('/v1/nodes')).items.filter((n) => !selector || matchesLabels(selector, n.labels));
      if (opts.watch) return watchRows(format, list, NODE_COLUMNS, { key: (n) => n.name, name: nodeName });
      printRows(format, await list(), NODE_COLUMNS, { name: nodeName });
    }));
}
