import type { Command } from 'commander';
import type { NodeRecord } from '../state/types.js';
import { action, client, globals } from './common.js';
import { NODE_COLUMNS } from './nodes.js';
import { printRows } from './output.js';

export interface ClusterStatus {
  nodes: NodeRecord[];
  jobs: Record<string, number>;
}

export function register(program: Command): void {
  program.command('status')
    .description('the cluster at a glance: nodes, CPUs, memory and jobs by state')
    .action(action(async (_opts, cmd: Command) => {
      const st = await client(cmd).get<ClusterStatus>('/v1/status');
      const format = globals(cmd).output;
      if (format === 'json') {
        process.stdout.write(JSON.stringify(st, null, 2) + '\n');
        return;
      }
      // Ready for jobs: a node without its mount of the unified filesystem takes none.
      const ready = st.nodes.filter((n) => n.status === 'ready' && n.mountReady !== false);
      const unmounted = st.nodes.filter((n) => n.status === 'ready' && n.mountReady === false).length;
      const cpus = ready.reduce((s, n) => s + n.cpus, 0);
      process.stdout.write(`Nodes: ${ready.length} ready of ${st.nodes.length}${unmounted ? ` (${unmounted} with the mount down)` : ''}, ${cpus} CPUs ready\n\n`);
      printRows(format, st.nodes, NODE_COLUMNS);
      const jobs = Object.entries(st.jobs).filter(([, n]) => n > 0);
      process.stdout.write(`\nJobs: ${jobs.length ? jobs.map(([s, n]) => `${n} ${s}`).join(', ') : 'none'}\n`);
    }));
}
