import type { Command } from 'commander';
import type { NodeRecord } from '../state/types.js';
import { action, client, globals } from './common.js';
import { formatAge, formatBytes, printRows, type Column } from './output.js';

/**
 * A node's status as a person reads it: a ready node whose mount of the unified filesystem is
 * down takes no jobs, and says why (`ready (mount down: …)`); one being removed says so
 * (`draining,removing`).
 */
export function nodeStatus(n: NodeRecord): string {
  const status = n.removing ? `${n.status},removing` : n.status;
  return n.status !== 'down' && n.mountReady === false ? `${status} (mount down: ${n.mountError ?? 'unknown'})` : status;
}

export const NODE_COLUMNS: Column<NodeRecord>[] = [
  { header: 'NAME', value: (n) => n.name },
  { header: 'STATUS', value: nodeStatus },
  { header: 'RUNTIME', value: (n) => n.runtime },
  { header: 'CPUS', value: (n) => n.cpus },
  { header: 'LOAD', value: (n) => n.load1?.toFixed(2) },
  { header: 'MEMORY', value: (n) => `${formatBytes(n.memoryUsedBytes)}/${formatBytes(n.memoryBytes)}` },
  { header: 'RUNNING', value: (n) => n.runningJobs },
  { header: 'EXPORTED', value: (n) => n.exportFiles },
  { header: 'SKIPPED', value: (n) => n.exportSkipped },
  { header: 'STORED', value: (n) => (n.storeBytes === undefined ? undefined : `${formatBytes(n.storeBytes)} (${n.storeChunks} chunks)`) },
  { header: 'CACHE', value: (n) => (n.cacheBytes === undefined ? undefined : formatBytes(n.cacheBytes)) },
  { header: 'FILE CACHE', value: (n) => (n.fileCacheBytes === undefined ? undefined : formatBytes(n.fileCacheBytes)) },
  { header: 'BACKLOG', value: (n) => n.translateBacklog },
  { header: 'HEARTBEAT', value: (n) => `${formatAge(Date.now() - n.lastHeartbeat)} ago` },
  { header: 'LABELS', value: (n) => Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-' },
];

export function registerGetNodes(get: Command): void {
  get.command('nodes').alias('node')
    .description('list the nodes of the cluster')
    .action(action(async (_opts, cmd: Command) => {
      const { items } = await client(cmd).get<{ items: NodeRecord[] }>('/v1/nodes');
      printRows(globals(cmd).output, items, NODE_COLUMNS, { items });
    }));
}
