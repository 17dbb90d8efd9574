import type { Command } from 'commander';
import type { ClusterStatus, StorageHealth } from '../api/status.js';
import { action, client, output } from './common.js';
import { NODE_COLUMNS } from './nodes.js';
import { formatBytes, isDocumentFormat, printDocument, printRows } from './output.js';

/** One line on the cluster's files: how many, and how many are short of their copies or unreadable. */
export function storageLine(s: StorageHealth | undefined, now = Date.now()): string {
  if (!s) return 'Storage: no replication pass has run yet';
  const parts = [`${s.chunkLists} file contents (${formatBytes(s.bytes)})`];
  parts.push(s.underFiles ? `${s.underFiles} (${formatBytes(s.underBytes)}) short of their copies, being copied` : 'every one with all its copies');
  if (s.lostFiles) parts.push(`${s.lostFiles} (${formatBytes(s.lostBytes)}) on no live node: unreadable until a holder is back`);
  for (const [node, r] of Object.entries(s.removing)) parts.push(`${node} being removed holds ${r.files} (${formatBytes(r.bytes)}) not yet copied elsewhere`);
  return `Storage: ${parts.join(', ')} (as of ${Math.max(0, Math.round((now - s.at) / 1000))} s ago)`;
}

export function register(program: Command): void {
  program.command('status')
    .description('the cluster at a glance: nodes, CPUs, memory and jobs by state')
    .action(action(async (_opts, cmd: Command) => {
      const format = output(cmd);
      const st = await client(cmd).get<ClusterStatus>('/v1/status');
      if (isDocumentFormat(format)) return printDocument(format, st);
      // Ready for jobs: a node without its mount of the unified filesystem takes none.
      const ready = st.nodes.filter((n) => n.status === 'ready' && n.mountReady !== false);
      const unmounted = st.nodes.filter((n) => n.status === 'ready' && n.mountReady === false).length;
      const cpus = ready.reduce((s, n) => s + n.cpus, 0);
      process.stdout.write(`Nodes: ${ready.length} ready of ${st.nodes.length}${unmounted ? ` (${unmounted} with the mount down)` : ''}, ${cpus} CPUs ready\n\n`);
      printRows(format, st.nodes, NODE_COLUMNS);
      const jobs = Object.entries(st.jobs).filter(([, n]) => n > 0);
      process.stdout.write(`\nJobs: ${jobs.length ? jobs.map(([s, n]) => `${n} ${s}`).join(', ') : 'none'}\n`);
      process.stdout.write(`${storageLine(st.storage)}\n`);
    }));
}
