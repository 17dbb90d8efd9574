import type { Command } from 'commander';
import type { DrainAnswer } from '../api/nodes.js';
import { action, client, output } from './common.js';
import { printRows } from './output.js';

/**
 * `oswalk drain NODE`: no new jobs there; batch jobs already running finish (their work is
 * not thrown away), service replicas move to other nodes. `oswalk uncordon NODE` undoes it.
 */
export function register(program: Command): void {
  for (const [name, what] of [
    ['drain', 'stop placing jobs on a node; running batch jobs finish, service replicas move elsewhere'],
    ['uncordon', 'let the scheduler place jobs on a drained node again, and stop a removal (oswalk node remove)'],
  ] as const) {
    program.command(name)
      .description(what)
      .argument('<nodes...>', 'node names')
      .action(action(async (nodes: string[], _opts: unknown, cmd: Command) => {
        const format = output(cmd, { names: true });
        const api = client(cmd);
        const rows: DrainAnswer[] = [];
        for (const n of nodes) rows.push(await api.post<DrainAnswer>(`/v1/nodes/${n}/${name}`));
        printRows(format, rows, [
          { header: 'NODE', value: (r) => r.name },
          // A node that is down keeps the cordon (or its lifting) for when its agent comes back.
          { header: 'STATUS', value: (r) => (r.status === 'down' ? `down (back as ${name === 'drain' ? 'draining' : 'ready'})` : r.status) },
          ...(name === 'drain' ? [
            { header: 'REPLICAS MOVED', value: (r: DrainAnswer) => r.moved },
            { header: 'JOBS LEFT TO FINISH', value: (r: DrainAnswer) => r.remaining },
          ] : []),
        ], { name: (r) => `node/${r.name}` });
      }));
  }
}
