/**
 * What placing a job near its input saves (issue 19, item 5), on a real cluster of this machine:
 * redis-server, control planes and three agents as processes, each with its FUSE mount
 * (test/faults/cluster.ts). A 200 MB file is written into node1's mount (one copy: its chunks in
 * node1's store alone), then `sha256sum` of it runs as a job:
 *   - pinned to node1, where the chunks are (the baseline: a local read);
 *   - pinned to node2, which fetches every chunk from node1;
 *   - unpinned, naming the file in spec.inputs as `oswalk run` does: where the scheduler puts it.
 * Each round writes a new file, so that no node has it cached from an earlier round; rounds are
 * interleaved. Times are the job's own (start to end, as its record says) and submit to end.
 *
 * Run as root on a quiet machine: node dist/bench/locality.js [rounds=3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyMount, FaultCluster, TOKEN, until } from '../test/faults/cluster.js';
import { sh, mbps } from './overlay-common.js';
import { table, writeSection } from './report.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const SIZE = 200 * 1000 * 1000;

interface Ran {
  node: string;
  runS: number;
  wallS: number;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-bench-locality-'));
  const c = new FaultCluster({ root, prefix: '{bench-locality}:', nodeTimeoutMs: 3000, nodes: ['node1', 'node2', 'node3'], nsNode: 'node3' });
  const call = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${c.apiUrl}${path}`, {
      method: body ? 'POST' : 'GET', headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  /** sha256sum of `file` (a path from the mount's root) as a job; `node` pins it, else spec.inputs names the file. */
  const hashJob = async (file: string, node?: string): Promise<Ran> => {
    const t0 = Date.now();
    const { id } = await call<{ id: string }>('/v1/jobs', {
      spec: {
        command: ['sha256sum', file.slice(1)], workingDir: '.', cpus: 0.5, runtime: 'process', backoffLimit: 0,
        ...(node ? { nodeSelector: { 'oswalk.dev/node': node } } : { inputs: [file] }),
      },
    });
    const j = await until(`job ${id}`, async () => {
      const r = await call<{ state: string; node?: string; startedAt?: number; finishedAt?: number; message?: string }>(`/v1/jobs/${id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(r.state) && r;
    }, 300_000, 50);
    if (j.state !== 'succeeded') throw new Error(`job ${id} on ${j.node}: ${j.state} ${j.message}`);
    return { node: j.node!, runS: (j.finishedAt! - j.startedAt!) / 1000, wallS: (Date.now() - t0) / 1000 };
  };
  try {
    await c.start();
    await applyMount(c, '{path: /cluster, copies: 1}');
    const m1 = c.agents.get('node1')!.mount;
    await sh(`mkdir -p ${m1}/loc`);
    const runs: Record<'local' | 'remote' | 'placed', Ran[]> = { local: [], remote: [], placed: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // A file per case, so that no case reads chunks another one pulled into a store.
      for (const k of Object.keys(runs)) await sh(`head -c ${SIZE} /dev/urandom > ${m1}/loc/${k}${r}.bin && sync`);
      runs.local.push(await hashJob(`/loc/local${r}.bin`, 'node1'));
      runs.remote.push(await hashJob(`/loc/remote${r}.bin`, 'node2'));
      runs.placed.push(await hashJob(`/loc/placed${r}.bin`));
      console.log(`round ${r + 1}: local ${runs.local[r].runS} s, from node1 on node2 ${runs.remote[r].runS} s, placed by inputs on ${runs.placed[r].node} ${runs.placed[r].runS} s`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    const row = (name: string, xs: Ran[]) => [name, median(xs.map((x) => x.runS)).toFixed(2), mbps(SIZE, median(xs.map((x) => x.runS))), median(xs.map((x) => x.wallS)).toFixed(2), [...new Set(xs.map((x) => x.node))].join(', ')];
    const saved = median(runs.remote.map((x) => x.runS)) - median(runs.local.map((x) => x.runS));
    writeSection('locality', 'Placing a job near its input: sha256sum of a 200 MB file', `node dist/bench/locality.js ${ROUNDS}`, [
      table(['job', 'run s (median)', 'read rate', 'submit to end s', 'ran on'], [
        row('pinned to node1, which holds the chunks (baseline: a local read)', runs.local),
        row('pinned to node2, which fetches them from node1', runs.remote),
        row('unpinned, the file in spec.inputs (as `oswalk run -- sha256sum FILE` sends it)', runs.placed),
      ]),
      '',
      `${ROUNDS} rounds, a new file of random bytes per case and round (one copy, written through node1's mount). Reading from a peer costs ${saved.toFixed(2)} s more per 200 MB than reading where the chunks are, on one machine's loopback; between machines the network adds to it. With the file named in spec.inputs, the scheduler put the job on ${[...new Set(runs.placed.map((x) => x.node))].join(', ')}.`,
    ].join('\n'));
  } finally {
    await c.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
