import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { TestRedis } from '../helpers/redis.js';
import { api, startJobsControlPlane, tempDir, TOKEN, submitJob } from '../helpers/jobs-cluster.js';
import { until } from '../helpers/until.js';
import { oswalk } from '../helpers/cli.js';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import type { RunSpec, Runtime } from '../../src/agent/runtime/types.js';
import type { JobRecord } from '../../src/state/jobs.js';
import type { NodeRecord } from '../../src/api/nodes.js';

/** A docker runtime that runs nothing: it records the image each job was started in and ends it with 0. */
function recordingDocker(images: Map<string, string | undefined>): Runtime {
  return {
    name: 'docker',
    async start(spec: RunSpec) {
      images.set(spec.jobId, spec.image);
      return { wait: async () => ({ exitCode: 0 }), kill: async () => {}, cpuSeconds: async () => undefined };
    },
    cleanup: async () => [],
  };
}

describe('a job naming no image on docker nodes: the node\'s default image, else the cluster\'s', () => {
  let server: TestRedis;
  let cp: Awaited<ReturnType<typeof startJobsControlPlane>>;
  let call: ReturnType<typeof api>;
  const agents: RunningAgent[] = [];
  const dirs: { remove(): void }[] = [];
  const images = new Map<string, string | undefined>();

  before(async () => {
    server = await TestRedis.start();
    cp = await startJobsControlPlane(server.url, { defaultImage: 'cluster-image:1' });
    call = api(cp.url);
    const logger = pino({ level: 'silent' });
    const start = (node: string, join: 'control plane' | 'redis', defaultImage?: string) => {
      const state = tempDir(node);
      dirs.push(state);
      return startAgent({
        node, token: TOKEN, runtime: recordingDocker(images), ...(defaultImage ? { defaultImage } : {}),
        ...(join === 'control plane' ? { controlPlane: cp.url } : { redisUrl: server.url, prefix: cp.ctx.ks.prefix }),
        exportDir: state.dir, stateDir: state.dir, listen: { host: '127.0.0.1', port: 0 }, log: logger,
      });
    };
    // own: its own default wins; joined: the control plane's; bare: joined Redis directly, so none.
    agents.push(await start('own', 'control plane', 'own-image:1'), await start('joined', 'control plane'), await start('bare', 'redis'));
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await cp?.close();
    await server.stop();
    for (const d of dirs) d.remove();
  });

  const submit = (spec: Record<string, unknown>) => submitJob(call, spec);
  const job = async (id: string) => (await call<JobRecord>(`/v1/jobs/${id}`)).body;

  it('registers each node\'s default image', async () => {
    const nodes = (await call<{ items: NodeRecord[] }>('/v1/nodes')).body.items;
    assert.deepEqual(Object.fromEntries(nodes.map((n) => [n.name, n.defaultImage])), { own: 'own-image:1', joined: 'cluster-image:1', bare: undefined });
  });

  it('shows each docker node\'s default image in `get nodes -o wide`', async () => {
    const r = await oswalk(['--api', cp.url, '--token', TOKEN, 'get', 'nodes', '-o', 'wide']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\sDEFAULT IMAGE\s/);
    for (const [node, image] of [['own', 'own-image:1'], ['joined', 'cluster-image:1'], ['bare', '<none>']]) {
      assert.match(r.stdout, new RegExp(`^${node}\\s.*\\s${image}\\s`, 'm'), r.stdout);
    }
  });

  it('runs it in the node\'s default image, from `run` (no runtime) and with runtime docker alike', async () => {
    for (const [node, image] of [['own', 'own-image:1'], ['joined', 'cluster-image:1']]) {
      for (const runtime of [{}, { runtime: 'docker' }]) {
        const id = await submit({ command: ['true'], nodeSelector: { 'oswalk.dev/node': node }, ...runtime });
        const done = await until(`job on ${node}`, async () => {
          const j = await job(id);
          return j.state === 'succeeded' && j;
        });
        assert.equal(done.node, node);
        assert.equal(images.get(id), image, `${node} ${JSON.stringify(runtime)}`);
      }
    }
    // A job's own image wins over any default.
    const id = await submit({ command: ['true'], image: 'mine:2', nodeSelector: { 'oswalk.dev/node': 'own' } });
    await until('job with an image', async () => (await job(id)).state === 'succeeded');
    assert.equal(images.get(id), 'mine:2');
  });

  it('keeps it off a docker node without a default image, saying why', async () => {
    const id = await submit({ command: ['true'], nodeSelector: { 'oswalk.dev/node': 'bare' } });
    // Until the scheduler has looked at it, a pending job reads "waiting for the scheduler".
    const waiting = await until('the scheduler\'s wait reason', async () => {
      const { waitReason } = await job(id);
      return waitReason !== 'waiting for the scheduler' && waitReason;
    });
    assert.match(waiting, /^names no image, and no ready matching node runs the process runtime or has a default image: set the job's image \(--image, spec\.image\), or give the docker nodes a default one/);
    assert.equal(images.has(id), false);
    await call(`/v1/jobs/${id}/cancel`, {});
  });

  it('runs jobs without a nodeSelector only where there is an image for them', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => submit({ command: ['true'], cpus: 0.01 })));
    for (const id of ids) {
      const j = await until(`job ${id}`, async () => {
        const r = await job(id);
        return r.state === 'succeeded' && r;
      });
      assert.notEqual(j.node, 'bare');
      assert.ok(images.get(id));
    }
  });
});
