import type { Command } from 'commander';
import type { Removal, RemoveAnswer } from '../api/nodes.js';
import { ApiError } from './client.js';
import { action, client, output as outputOf, parseDuration } from './common.js';
import { formatAge, formatBytes, isDocumentFormat, printDocument, printRows } from './output.js';
import { ProgressLine } from './progress-line.js';
import { postCertRevocation, revocationNote } from './node-certs.js';

const POLL_MS = 2000;

/** Nothing would be lost and nothing stopped if the node's agent went away now. */
function done(r: Removal): boolean {
  return r.pass !== null && r.pass.files === 0 && r.runningJobs === 0;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** What is left, in one line. */
function left(r: Removal): string {
  const copies = r.pass
    ? `${plural(r.pass.files, 'file')} (${formatBytes(r.pass.bytes)}) not yet copied elsewhere`
    : 'no replication pass has begun since the removal yet (every agent runs one every 15s)';
  const down = r.status === 'down' ? '; the node is down, so what only it holds cannot be copied until its agent is back' : '';
  return `${copies}, ${plural(r.runningJobs, 'job')} still there${down}`;
}

/** What to do about what is left when the wait ran out. */
function nextSteps(r: Removal): string[] {
  const steps: string[] = [];
  if (!r.pass) steps.push('check that the agents are up (oswalk get nodes): their replication passes do the copying');
  else if (r.pass.files > 0) {
    steps.push(r.status === 'down'
      ? `start ${r.name}'s agent again so the other nodes can copy from it`
      : 'the other nodes need to be up with room for the copies (oswalk get nodes, oswalk status)');
  }
  if (r.runningJobs > 0) steps.push('batch jobs there run to their end: wait for them, or cancel them (oswalk get jobs, oswalk cancel JOB)');
  steps.push(`run \`oswalk node remove ${r.name}\` again to go on waiting (the removal stays in force), or \`oswalk uncordon ${r.name}\` to keep the node`);
  return steps;
}

/**
 * `oswalk node remove NODE`: decommission a node. The control plane marks it as being removed
 * (no new copies go there and its own stop counting, so replication copies what only it holds
 * to the other nodes) and drains it; this command then waits until a replication pass that
 * began after that finds nothing only the node holds and no job is left there, so stopping its
 * agent loses nothing.
 */
export function register(node: Command): void {
  node.command('remove')
    .description('take a node out of the cluster: move its jobs and the copies only it holds elsewhere, then say when its agent can be stopped')
    .argument('<node>', 'node name (oswalk get nodes lists them)')
    .option('--no-wait', 'start the removal and return at once, without waiting for the copies and jobs to move')
    .option('--timeout <duration>', 'how long to wait, e.g. 90s, 30m, 2h; on timeout it says what is left and exits 1 (the removal stays in force)', '30m')
    .addHelpText('after', `
The node takes no new jobs or copies from now on: service replicas move at once, batch jobs run
to their end, and every agent's replication pass (every 15s) copies the files only this node
holds to the others. It still serves reads meanwhile. The command returns (exit 0) when a pass
that began after the removal finds nothing the cluster would lose without the node and no job
is left there: stop its agent then. It revokes the node's certificates then too (as \`oswalk node
revoke-cert\` does), not before: the node's last jobs may still read files from its peers.

Interrupting the wait (Ctrl-C) or a timeout leaves the removal in force: run the command again
to go on waiting. \`oswalk uncordon NODE\` undoes a removal and keeps the node.

Progress goes to stderr (one updating line on a terminal); -o json prints the final state of the
removal on stdout.`)
    .action(action(async (name: string, opts: { wait: boolean; timeout: string }, cmd: Command) => {
      const timeoutMs = parseDuration(opts.timeout);
      const output = outputOf(cmd, { names: true });
      const api = client(cmd);
      const path = `/v1/nodes/${encodeURIComponent(name)}`;
      const started = await api.post<RemoveAnswer>(`${path}/remove`);
      if (!opts.wait) {
        printRows(output, [started], [
          { header: 'NODE', value: (r) => r.name },
          { header: 'STATUS', value: (r) => `${r.status},removing` },
          { header: 'REPLICAS MOVED', value: (r) => r.moved },
          { header: 'JOBS LEFT TO FINISH', value: (r) => r.remaining },
        ], { json: started, name: (r) => `node/${r.name}` });
        if (!isDocumentFormat(output)) process.stderr.write(`run \`oswalk node remove ${name}\` again to wait until its agent can be stopped\n`);
        return;
      }

      const tty = !!process.stderr.isTTY;
      const start = Date.now();
      const deadline = start + timeoutMs;
      let last: Removal | undefined;
      const progress = new ProgressLine(process.stderr);
      for (;;) {
        let trouble = '';
        try {
          last = await api.get<Removal>(`${path}/removal`);
        } catch (err) {
          // A control plane restarting or failing over must not end a wait of many minutes.
          if (!(err instanceof ApiError) || (err.status !== 0 && err.status < 500)) {
            progress.end();
            throw err;
          }
          trouble = ` (asking again: ${err.message})`;
        }
        if (last && !last.removing) {
          progress.end();
          throw new Error(`the removal of node ${name} was undone (oswalk uncordon) while waiting: run \`oswalk node remove ${name}\` again to remove it`);
        }
        if (last && done(last)) break;
        const elapsed = formatAge(Date.now() - start);
        const state = last ? left(last) : 'waiting for the control plane';
        // The elapsed time only on a terminal: piped output gets a line per change, not per poll.
        progress.update(`removing ${name}: ${state}${trouble}${tty ? ` [${elapsed}]` : ''}`);
        if (Date.now() >= deadline) {
          progress.end();
          if (isDocumentFormat(output) && last) printDocument(output, last);
          const steps = last ? nextSteps(last) : [`run \`oswalk node remove ${name}\` again once it answers`];
          throw new Error(`node ${name} is not ready to be stopped after ${opts.timeout}: ${last ? left(last) : `the control plane did not answer${trouble}`}. What to do:\n` +
            steps.map((s) => `  - ${s}`).join('\n'));
        }
        await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
      }
      progress.end();
      // Only now: until here the node's jobs run to their end and may read the cluster's files
      // from its peers, which a revoked certificate could no longer do.
      const revoked = await postCertRevocation(api, name);
      if (isDocumentFormat(output)) printDocument(output, { ...last, revokedCertificates: revoked.revoked });
      else if (output === 'name') process.stdout.write(`node/${name}\n`);
      else process.stdout.write(`node ${name} holds no copy the cluster lacks and runs no jobs: its agent can be stopped now\n${revocationNote(name, revoked)}\n`);
    }));
}
