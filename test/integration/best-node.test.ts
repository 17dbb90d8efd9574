import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { TestRedis } from '../helpers/redis.js';
import { api, startJobsControlPlane, tempDir, TOKEN, submitJob } from '../helpers/jobs-cluster.js';
import { oswalk } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { procStat } from '../../src/agent/runtime/procfs.js';
import { TERMINAL_STATES } from '../../src/api/job-states.js';
import type { JobRecord } from '../../src/state/jobs.js';
import type { NodeRecord } from '../../src/api/nodes.js';
import { createHash } from 'node:crypto';
import { connectRedis } from '../../src/state/redis.js';
import { commitVersion, putChunkList } from '../../src/state/fs.js';

const NODES = ['node1', 'node2', 'node3'];
const SHORT_JOBS = 20;
/** What each short job reserves: all 20 fit on node2 and node3 at once (0.5 CPU each at most). */
const SHORT_CPUS = 0.05;
/**
 * The burst node1 must show before the short jobs go in. Even with all 20 in flight, node2 and
 * node3 hold at most 10 each, 0.5 CPU reserved once the last is added; node1, with the loop's 0.1
 * reserved and a short job's 0.05, ranks after them while its burst is above 0.35 (the three
 * nodes share one host, so its load average weighs the same on each; the table case in
 * test/scheduler/schedule.test.ts places this in one pass). 0.6 leaves room for the loop to
 * lose some CPU to the short jobs themselves, which run on the same cores. On a machine so busy
 * that one loop never gets 0.6 of a CPU the test fails at that wait, saying so.
 */
const MIN_BURST = 0.6;

describe('best node: commands go where they will run soonest', () => {
  let server: TestRedis;
  let cp: Awaited<ReturnType<typeof startJobsControlPlane>>;
  const agents: RunningAgent[] = [];
  const state = tempDir('best-node');
  const call = () => api(cp.url);

  before(async () => {
    server = await TestRedis.start();
    cp = await startJobsControlPlane(server.url);
    const logger = pino({ level: 'silent' });
    for (const node of NODES) {
      const dir = `${state.dir}/${node}`;
      agents.push(await startAgent({
        // No CPU limits (limits 'none', as on a host without writable cgroups): a job's
        // reservation does not bound what it burns, the case where reservations alone mislead.
        // Its CPU time is then read from /proc; test/runtime/process.test.ts covers the cgroups.
        node, controlPlane: cp.url, token: TOKEN, runtime: new ProcessRuntime({ stateDir: dir, logger, killGraceMs: 500, limits: 'none' }),
        exportDir: dir, stateDir: dir, listen: { host: '127.0.0.1', port: 0 }, log: logger,
      }));
    }
  });
  after(async () => {
    // Stopping an agent kills its jobs (the busy loop too) and waits until they are gone.
    for (const a of agents) await a.stop();
    await cp?.close();
    await server?.stop();
    state.remove();
  });

  const node = async (name: string) => (await call()<NodeRecord>(`/v1/nodes/${name}`)).body;
  const submit = (spec: Record<string, unknown>) => submitJob(call(), spec);
  const job = async (id: string) => (await call()<JobRecord>(`/v1/jobs/${id}`)).body;

  it('a job goes to the node holding its input files when loads are equal, and says where they are', async () => {
    const redis = connectRedis(server.url);
    try {
      // Two files of 150 and 50 MB (their records; no bytes are read), their chunks in node3's
      // store, and the second also in node2's.
      const ks = cp.ctx.fs.ks;
      const put = async (path: string, size: number, holders: string[]) => {
        const list = Buffer.from(`chunk list of ${path}`);
        const hash = createHash('sha256').update(list).digest('hex');
        await putChunkList(redis, ks, hash, list);
        for (const h of holders) await redis.sadd(ks.chunkListLocations(hash), h);
        await commitVersion(redis, ks, { path, type: 'file', node: holders[0], mtimeNs: '1700000000000000000', size, mode: 0o100644, uid: 0, gid: 0, chunkListHash: hash, source: 'mount' });
      };
      await put('/data/big.bin', 150e6, ['node3']);
      await put('/data/small.bin', 50e6, ['node3', 'node2']);
      const placed = async (inputs: string[]) => {
        const id = await submit({ command: ['true'], cpus: SHORT_CPUS, inputs });
        return until(`job ${id} to end`, async () => {
          const j = await job(id);
          return TERMINAL_STATES.has(j.state) && j;
        }, 15_000);
      };
      // Without inputs, equal nodes go by name: node1.
      assert.equal((await placed([])).node, 'node1');
      assert.equal((await placed(['/data/big.bin'])).node, 'node3');
      assert.equal((await placed(['/data/small.bin', '/data/big.bin'])).node, 'node3');
      assert.equal((await placed(['/data/nothing-here', '/data'])).node, 'node1', 'what is no file counts for nothing');
      const j = await placed(['/data/big.bin']);
      assert.deepEqual(JSON.parse((await redis.hget(cp.ctx.ks.job(j.id), 'input'))!), { bytes: 150e6, nodes: { node3: 150e6 } });
    } finally {
      redis.disconnect();
    }
  });

  it('a node burning a CPU beyond its reservation gets none of 20 short commands', async () => {
    // The loop prints its pid first, so the end of the test can check it is gone.
    const loop = await submit({ command: ['sh', '-c', 'echo $$; while :; do :; done'], cpus: 0.1, nodeSelector: { 'oswalk.dev/node': 'node1' } });
    const loopPid = await until('the busy loop to print its pid', async () => {
      const res = await fetch(`${cp.url}/v1/jobs/${loop}/logs`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const out = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { t: string; text?: string }).find((l) => l.t === 'out');
      return out?.text ? Number(out.text.trim()) : undefined;
    }, 15_000);

    // Its use shows in node1's heartbeat once the meter has a second of it, and grows as the
    // 5 s window fills.
    const loaded = await until(`node1's heartbeat to show a burst of ${MIN_BURST} CPU`, async () => {
      const n1 = await node('node1');
      return (n1.burstCpus ?? 0) >= MIN_BURST && n1;
    }, 20_000);
    assert.ok(loaded.usedCpus! >= loaded.burstCpus!, JSON.stringify(loaded));
    for (const other of ['node2', 'node3']) assert.equal((await node(other)).usedCpus, 0, `${other} runs nothing`);

    // `oswalk get nodes` shows it, in the CPU USED column.
    const table = await oswalk(['--api', cp.url, '--token', TOKEN, 'get', 'nodes']);
    assert.equal(table.code, 0, table.stderr);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    const at = header.indexOf('CPU USED');
    assert.ok(at > 0, header);
    const used = (name: string) => Number(rows.find((r) => r.startsWith(`${name} `))!.slice(at).split(/\s+/)[0]);
    assert.ok(used('node1') >= MIN_BURST, table.stdout);
    assert.equal(used('node2'), 0, table.stdout);

    const ids = await Promise.all(Array.from({ length: SHORT_JOBS }, () => submit({ command: ['true'], cpus: SHORT_CPUS })));
    const done = await until('the 20 short jobs to end', async () => {
      const jobs = await Promise.all(ids.map(job));
      return jobs.every((j) => TERMINAL_STATES.has(j.state)) && jobs;
    }, 30_000);
    const n1 = await node('node1');
    const where = Object.fromEntries(NODES.map((n) => [n, done.filter((j) => j.node === n).length]));
    assert.deepEqual(done.filter((j) => j.state !== 'succeeded').map((j) => `${j.id}: ${j.state} ${j.message ?? ''}`), []);
    assert.equal(where.node1, 0, `short jobs by node: ${JSON.stringify(where)}; node1 now reports ${n1.usedCpus} CPUs used, ${n1.burstCpus} burst`);
    assert.equal(where.node2 + where.node3, SHORT_JOBS);

    // And the loop goes for good once cancelled.
    await call()(`/v1/jobs/${loop}/cancel`, {});
    await until('the busy loop to be cancelled', async () => (await job(loop)).state === 'cancelled', 10_000);
    await until('the busy loop\'s process to be gone', async () => (await procStat(loopPid)) === undefined, 10_000);
  });
});
