import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { schedule, type GroupLimits, type SchedJob, type SchedNode, type Strategy } from '../../src/scheduler/index.js';

const GiB = 1024 ** 3;

/** A node; `reserved` CPUs and `reservedMem` bytes are what its jobs reserved. */
function node(name: string, o: Partial<SchedNode> & { reserved?: number; reservedMem?: number } = {}): SchedNode {
  return {
    name, status: o.status ?? 'ready', labels: o.labels ?? {}, runtime: o.runtime ?? 'process',
    cpus: o.cpus ?? 4, memoryBytes: o.memoryBytes ?? 16 * GiB,
    allocated: { milliCpus: Math.round((o.reserved ?? 0) * 1000), memoryBytes: o.reservedMem ?? 0 }, load1: o.load1 ?? 0,
    usedCpus: o.usedCpus ?? 0, burstCpus: o.burstCpus ?? 0,
    ...(o.defaultImage ? { defaultImage: o.defaultImage } : {}),
    ...(o.host ? { host: o.host } : {}),
    ...(o.mountDown ? { mountDown: o.mountDown } : {}),
  };
}

function job(id: string, o: Partial<Omit<SchedJob, 'milliCpus'>> & { cpus?: number } = {}): SchedJob {
  return {
    id, milliCpus: Math.round((o.cpus ?? 1) * 1000), memoryBytes: o.memoryBytes ?? 0, priority: o.priority ?? 0,
    nodeSelector: o.nodeSelector ?? {}, ...(o.runtime ? { runtime: o.runtime } : {}), ...(o.image ? { image: o.image } : {}), ...(o.group ? { group: o.group } : {}),
    ...(o.input ? { input: o.input } : {}),
  };
}

interface Case {
  name: string;
  nodes: SchedNode[];
  jobs: SchedJob[];
  strategy?: Strategy;
  groups?: GroupLimits;
  /** jobId → node, for every job expected to be placed. */
  placed?: Record<string, string>;
  /** jobId → reason (string: exact, RegExp: match), for every job expected to wait. */
  waiting?: Record<string, string | RegExp>;
}

const cases: Case[] = [
  { name: 'no nodes at all', nodes: [], jobs: [job('a')], waiting: { a: 'no node has joined the cluster' } },
  { name: 'one job, one node', nodes: [node('n1')], jobs: [job('a')], placed: { a: 'n1' } },
  { name: 'no jobs, empty plan', nodes: [node('n1')], jobs: [], placed: {}, waiting: {} },
  { name: 'down node is not used', nodes: [node('n1', { status: 'down' }), node('n2')], jobs: [job('a')], placed: { a: 'n2' } },
  { name: 'draining node is not used', nodes: [node('n1', { status: 'draining' }), node('n2', { reserved: 3 })], jobs: [job('a')], placed: { a: 'n2' } },
  {
    name: 'every node down or draining',
    nodes: [node('n1', { status: 'down' }), node('n2', { status: 'draining' }), node('n3', { status: 'down' })],
    jobs: [job('a')],
    waiting: { a: 'no node is ready (2 down, 1 draining)' },
  },
  {
    name: 'a node whose mount is down is not used, however empty',
    nodes: [node('n1', { mountDown: 'remount failed: EIO; retrying' }), node('n2', { reserved: 3 })],
    jobs: [job('a')],
    placed: { a: 'n2' },
  },
  {
    name: 'no ready node has its mount',
    nodes: [node('n1', { mountDown: 'the filesystem process died (SIGKILL); remounting' }), node('n2', { status: 'down' })],
    jobs: [job('a')],
    waiting: { a: 'no ready node has the cluster filesystem mounted (n1: the filesystem process died (SIGKILL); remounting)' },
  },
  {
    name: 'the only node of the runtime has its mount down',
    nodes: [node('n1', { runtime: 'docker', mountDown: 'remount failed: EIO; retrying' }), node('n2', { runtime: 'process' })],
    jobs: [job('a', { runtime: 'docker', image: 'img' })],
    waiting: { a: 'no ready node with the cluster filesystem mounted runs the docker runtime' },
  },
  {
    name: 'too many CPUs for any node',
    nodes: [node('n1', { cpus: 8 }), node('n2', { cpus: 4 })],
    jobs: [job('a', { cpus: 64 })],
    waiting: { a: 'needs 64 CPUs; the largest node has 8 CPUs' },
  },
  {
    name: 'too much memory for any node',
    nodes: [node('n1', { memoryBytes: 16 * GiB })],
    jobs: [job('a', { memoryBytes: 64 * GiB })],
    waiting: { a: 'needs 64 GiB of memory; the largest node has 16 GiB' },
  },
  {
    name: 'selector matches no node',
    nodes: [node('n1', { labels: { zone: 'a' } })],
    jobs: [job('a', { nodeSelector: { zone: 'b' } })],
    waiting: { a: 'no node matches nodeSelector zone=b' },
  },
  {
    name: 'selector picks the labelled node even if busier',
    nodes: [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'b' }, reserved: 3 })],
    jobs: [job('a', { nodeSelector: { zone: 'b' } })],
    placed: { a: 'n2' },
  },
  {
    name: 'selector with several labels must match all',
    nodes: [node('n1', { labels: { zone: 'a', gpu: 'no' } }), node('n2', { labels: { zone: 'a', gpu: 'yes' } })],
    jobs: [job('a', { nodeSelector: { zone: 'a', gpu: 'yes' } })],
    placed: { a: 'n2' },
  },
  {
    name: 'built-in node-name label pins a job',
    nodes: [node('n1'), node('n2', { reserved: 3 })],
    jobs: [job('a', { nodeSelector: { 'oswalk.dev/node': 'n2' } })],
    placed: { a: 'n2' },
  },
  {
    name: 'pinned to an unknown node',
    nodes: [node('n1')],
    jobs: [job('a', { nodeSelector: { 'oswalk.dev/node': 'n9' } })],
    waiting: { a: 'no node matches nodeSelector oswalk.dev/node=n9' },
  },
  {
    name: 'selector matches only a down node',
    nodes: [node('n1', { labels: { zone: 'b' }, status: 'down' }), node('n2')],
    jobs: [job('a', { nodeSelector: { zone: 'b' } })],
    waiting: { a: 'no matching node is ready (1 down)' },
  },
  {
    name: 'runtime must match',
    nodes: [node('n1', { runtime: 'process' }), node('n2', { runtime: 'docker', reserved: 2 })],
    jobs: [job('a', { runtime: 'docker', image: 'img' }), job('b', { runtime: 'process' })],
    placed: { a: 'n2', b: 'n1' },
  },
  {
    name: 'no node runs the runtime',
    nodes: [node('n1', { runtime: 'process' })],
    jobs: [job('a', { runtime: 'docker', image: 'img' })],
    waiting: { a: 'no ready node runs the docker runtime' },
  },
  {
    name: 'a job naming no image and no runtime runs on a docker node with a default image',
    nodes: [node('n1', { runtime: 'docker', defaultImage: 'base:1' })],
    jobs: [job('a')],
    placed: { a: 'n1' },
  },
  {
    name: 'a job naming no image goes to a process node or a docker node with a default image, whichever is less busy',
    nodes: [node('n1', { runtime: 'process', reserved: 3 }), node('n2', { runtime: 'docker', defaultImage: 'base:1', reserved: 1 }), node('n3', { runtime: 'docker' })],
    jobs: [job('a'), job('b')],
    placed: { a: 'n2', b: 'n2' },
  },
  {
    name: 'a docker node without a default image takes only jobs with an image',
    nodes: [node('n1', { runtime: 'docker' })],
    jobs: [job('a'), job('b', { runtime: 'docker' }), job('c', { image: 'img', runtime: 'docker' })],
    placed: { c: 'n1' },
    waiting: {
      a: 'names no image, and no ready node runs the process runtime or has a default image: set the job\'s image (--image, spec.image), or give the docker nodes a default one (oswalk agent or oswalk control-plane --default-image)',
      b: 'names no image, and no ready docker node has a default image: set the job\'s image (--image, spec.image), or give the docker nodes a default one (oswalk agent or oswalk control-plane --default-image)',
    },
  },
  {
    name: 'runtime docker without an image runs in the default image, never on a process node',
    nodes: [node('n1', { runtime: 'process' }), node('n2', { runtime: 'docker', defaultImage: 'base:1', reserved: 3 })],
    jobs: [job('a', { runtime: 'docker' })],
    placed: { a: 'n2' },
  },
  {
    name: 'explicit runtime process never goes to a docker node, default image or not',
    nodes: [node('n1', { runtime: 'docker', defaultImage: 'base:1' })],
    jobs: [job('a', { runtime: 'process' })],
    waiting: { a: 'no ready node runs the process runtime' },
  },
  {
    name: 'a job naming no image, where the nodes that could run it are full, counts only those',
    nodes: [node('n1', { runtime: 'process', reserved: 4 }), node('n2', { runtime: 'docker', cpus: 8 })],
    jobs: [job('a')],
    waiting: { a: 'all matching nodes are full (needs 1 CPU; most free: n1 with 0 CPUs)' },
  },
  {
    name: 'all nodes full',
    nodes: [node('n1', { reserved: 4 }), node('n2', { reserved: 3.5 })],
    jobs: [job('a')],
    waiting: { a: 'all nodes are full (needs 1 CPU; most free: n2 with 0.5 CPUs)' },
  },
  {
    name: 'full by memory though CPUs are free',
    nodes: [node('n1', { memoryBytes: 4 * GiB, reservedMem: 3 * GiB })],
    jobs: [job('a', { memoryBytes: 2 * GiB })],
    waiting: { a: 'all nodes are full (needs 1 CPU and 2 GiB; most free: n1 with 4 CPUs and 1 GiB)' },
  },
  {
    name: 'spread: the emptier node wins',
    nodes: [node('n1', { reserved: 2 }), node('n2', { reserved: 1 })],
    jobs: [job('a')],
    placed: { a: 'n2' },
  },
  {
    name: 'binpack: the fuller node that fits wins',
    nodes: [node('n1', { reserved: 2 }), node('n2', { reserved: 1 })],
    jobs: [job('a')],
    strategy: 'binpack',
    placed: { a: 'n1' },
  },
  {
    name: 'binpack skips a node it does not fit',
    nodes: [node('n1', { reserved: 3.5 }), node('n2', { reserved: 1 })],
    jobs: [job('a')],
    strategy: 'binpack',
    placed: { a: 'n2' },
  },
  {
    name: 'spread alternates across equal nodes',
    nodes: [node('n1'), node('n2'), node('n3')],
    jobs: [job('a'), job('b'), job('c')],
    placed: { a: 'n1', b: 'n2', c: 'n3' },
  },
  {
    name: 'binpack fills one node before the next',
    nodes: [node('n1', { cpus: 2 }), node('n2', { cpus: 2 })],
    jobs: [job('a'), job('b'), job('c')],
    strategy: 'binpack',
    placed: { a: 'n1', b: 'n1', c: 'n2' },
  },
  {
    name: 'spread compares relative fill on nodes of different sizes',
    nodes: [node('small', { cpus: 2, reserved: 1 }), node('big', { cpus: 16, reserved: 4 })],
    jobs: [job('a')],
    placed: { a: 'big' },
  },
  {
    name: 'a host busy with work the cluster did not place ranks after an idle one',
    nodes: [node('n1', { load1: 3 }), node('n2', { load1: 0.2 })],
    jobs: [job('a')],
    placed: { a: 'n2' },
  },
  {
    name: 'a job burning beyond its reservation makes its node busy: the next one goes elsewhere',
    // n1 is emptier by reservations (0.1 against 0.5), but its job burns a whole CPU.
    nodes: [node('n1', { reserved: 0.1, usedCpus: 1, burstCpus: 0.9, load1: 1 }), node('n2', { reserved: 0.5, usedCpus: 0.5, load1: 0.5 })],
    jobs: [job('a')],
    placed: { a: 'n2' },
  },
  {
    name: 'jobs using less than they reserved do not make their node look emptier',
    nodes: [node('n1', { reserved: 2, usedCpus: 0.1 }), node('n2', { reserved: 1, usedCpus: 1, load1: 1 })],
    jobs: [job('a')],
    placed: { a: 'n2' },
  },
  {
    name: 'a host\'s load that its jobs explain is not counted again',
    // n1's load average is its own job's; n2's host is busy with something else.
    nodes: [node('n1', { reserved: 1, usedCpus: 1, load1: 1 }), node('n2', { load1: 1.5 })],
    jobs: [job('a')],
    placed: { a: 'n1' },
  },
  {
    name: 'nodes on one host: its load average counts every node\'s jobs, so only the rest weighs',
    // As `oswalk up` runs them: one load average, 2.3, of which n1's burst is 2; were each node
    // a host of its own, n2 and n3 would carry n1's load and look as busy as n1.
    nodes: [
      node('n1', { cpus: 2, reserved: 0.2, usedCpus: 2, burstCpus: 1.8, load1: 2.3, host: 'h' }),
      node('n2', { cpus: 2, load1: 2.3, host: 'h' }),
      node('n3', { cpus: 2, load1: 2.3, host: 'h' }),
    ],
    jobs: [job('a', { cpus: 0.5 }), job('b', { cpus: 0.5 }), job('c', { cpus: 0.5 })],
    placed: { a: 'n2', b: 'n3', c: 'n2' },
  },
  {
    name: 'a down node\'s last report weighs nothing on its host',
    nodes: [
      node('n1', { status: 'down', reserved: 2, usedCpus: 2, load1: 2, host: 'h' }),
      node('n2', { load1: 2, host: 'h' }),
      node('n3', { load1: 0.5 }),
    ],
    jobs: [job('a')],
    placed: { a: 'n3' },
  },
  {
    name: 'measured use never keeps a job out: a reservation is a promise',
    nodes: [node('n1', { cpus: 2, reserved: 0.1, usedCpus: 2, burstCpus: 1.9, load1: 2 })],
    jobs: [job('a'), job('b')],
    placed: { a: 'n1' },
    waiting: { b: 'all nodes are full (needs 1 CPU; most free: n1 with 0.9 CPUs)' },
  },
  {
    name: 'binpack still packs by reservations, whatever the fuller node burns',
    nodes: [node('n1', { reserved: 2 }), node('n2', { reserved: 1, usedCpus: 3, burstCpus: 2 })],
    jobs: [job('a')],
    strategy: 'binpack',
    placed: { a: 'n1' },
  },
  {
    name: 'binpack: of equally full nodes, the least busy',
    nodes: [node('n1', { reserved: 1, usedCpus: 2, burstCpus: 1 }), node('n2', { reserved: 1 })],
    jobs: [job('a')],
    strategy: 'binpack',
    placed: { a: 'n2' },
  },
  {
    name: 'equal nodes tie-break by name',
    nodes: [node('b'), node('a')],
    jobs: [job('x')],
    placed: { x: 'a' },
  },
  {
    name: 'reservations made in this pass count',
    nodes: [node('n1', { cpus: 2 })],
    jobs: [job('a'), job('b'), job('c')],
    placed: { a: 'n1', b: 'n1' },
    waiting: { c: /^all nodes are full \(needs 1 CPU; most free: n1 with 0 CPUs\)$/ },
  },
  {
    name: 'higher priority placed first when capacity is short',
    nodes: [node('n1', { cpus: 1 })],
    jobs: [job('low', { priority: 0 }), job('high', { priority: 5 })],
    placed: { high: 'n1' },
    waiting: { low: /full/ },
  },
  {
    name: 'equal priority keeps queue (age) order',
    nodes: [node('n1', { cpus: 1 })],
    jobs: [job('old'), job('new')],
    placed: { old: 'n1' },
    waiting: { new: /full/ },
  },
  {
    name: 'a big job that does not fit does not block small ones behind it',
    nodes: [node('n1', { cpus: 4, reserved: 2 })],
    jobs: [job('big', { cpus: 3 }), job('small', { cpus: 1 })],
    placed: { small: 'n1' },
    waiting: { big: /full \(needs 3 CPUs; most free: n1 with 2 CPUs\)/ },
  },
  {
    name: 'fractional CPUs pack exactly',
    nodes: [node('n1', { cpus: 1 })],
    jobs: [job('a', { cpus: 0.25 }), job('b', { cpus: 0.25 }), job('c', { cpus: 0.5 }), job('d', { cpus: 0.001 })],
    placed: { a: 'n1', b: 'n1', c: 'n1' },
    waiting: { d: /full/ },
  },
  {
    name: 'memory 0 means no memory reservation',
    nodes: [node('n1', { memoryBytes: 1 * GiB, reservedMem: 1 * GiB })],
    jobs: [job('a', { memoryBytes: 0 })],
    placed: { a: 'n1' },
  },
  {
    name: 'memory decides between nodes under spread',
    nodes: [node('n1', { memoryBytes: 8 * GiB, reservedMem: 6 * GiB }), node('n2', { memoryBytes: 8 * GiB, reservedMem: 1 * GiB, reserved: 1 })],
    jobs: [job('a', { memoryBytes: 1 * GiB })],
    placed: { a: 'n2' },
  },
  {
    name: 'job exactly as large as a node fits',
    nodes: [node('n1', { cpus: 8 })],
    jobs: [job('a', { cpus: 8 })],
    placed: { a: 'n1' },
  },
  {
    name: 'largest matching node is named in the reason',
    nodes: [node('n1', { cpus: 32 }), node('n2', { cpus: 4, labels: { zone: 'a' } })],
    jobs: [job('a', { cpus: 8, nodeSelector: { zone: 'a' } })],
    waiting: { a: 'needs 8 CPUs; the largest matching node has 4 CPUs' },
  },
  {
    name: 'a down node is not counted as the largest',
    nodes: [node('n1', { cpus: 64, status: 'down' }), node('n2', { cpus: 4 })],
    jobs: [job('a', { cpus: 8 })],
    waiting: { a: 'needs 8 CPUs; the largest node has 4 CPUs' },
  },
  {
    name: 'over-allocated node (capacity shrank) takes nothing',
    nodes: [node('n1', { cpus: 2, reserved: 3 })],
    jobs: [job('a', { cpus: 0.5 })],
    waiting: { a: /full/ },
  },
  {
    name: 'a Job\'s parallelism caps how many of its records are placed',
    nodes: [node('n1', { cpus: 8 })],
    jobs: [job('a', { group: 'Job/x' }), job('b', { group: 'Job/x' }), job('c', { group: 'Job/x' }), job('d')],
    groups: { 'Job/x': { limit: 2, active: 0 } },
    placed: { a: 'n1', b: 'n1', d: 'n1' },
    waiting: { c: 'Job/x runs 2 at a time (its parallelism)' },
  },
  {
    name: 'records already running count against parallelism',
    nodes: [node('n1', { cpus: 8 })],
    jobs: [job('a', { group: 'Job/x' }), job('b', { group: 'Job/x' })],
    groups: { 'Job/x': { limit: 3, active: 2 } },
    placed: { a: 'n1' },
    waiting: { b: /parallelism/ },
  },
  {
    name: 'parallelism 0 means no limit',
    nodes: [node('n1', { cpus: 8 })],
    jobs: [job('a', { group: 'Job/x' }), job('b', { group: 'Job/x' })],
    groups: { 'Job/x': { limit: 0, active: 5 } },
    placed: { a: 'n1', b: 'n1' },
  },
  {
    name: 'input files: the node holding them, when loads are equal (ties otherwise go by name)',
    nodes: [node('n1'), node('n2'), node('n3')],
    jobs: [job('a', { cpus: 0.1, input: { bytes: 200e6, nodes: { n2: 200e6 } } })],
    placed: { a: 'n2' },
  },
  {
    name: 'input files: the holder of most of them',
    nodes: [node('n1'), node('n2'), node('n3')],
    jobs: [job('a', { cpus: 0.1, input: { bytes: 300e6, nodes: { n1: 100e6, n3: 200e6 } } })],
    placed: { a: 'n3' },
  },
  {
    name: 'input files: a holder busier by less than the locality weight (a quarter of its CPUs) still wins',
    nodes: [node('n1', { reserved: 0.8 }), node('n2')],
    jobs: [job('a', { cpus: 0.1, input: { bytes: 1e6, nodes: { n1: 1e6 } } })],
    placed: { a: 'n1' },
  },
  {
    name: 'input files: a holder busier by more than that loses to an idle node',
    nodes: [node('n1', { reserved: 1.2 }), node('n2')],
    jobs: [job('a', { cpus: 0.1, input: { bytes: 1e6, nodes: { n1: 1e6 } } })],
    placed: { a: 'n2' },
  },
  {
    name: 'input files: the holder must still fit the job and match it',
    nodes: [node('n1', { reserved: 3.5 }), node('n2', { labels: { zone: 'b' } }), node('n3')],
    jobs: [job('a', { cpus: 1, input: { bytes: 1e6, nodes: { n1: 1e6 } } }), job('b', { nodeSelector: { zone: 'b' }, input: { bytes: 1e6, nodes: { n3: 1e6 } } })],
    placed: { a: 'n2', b: 'n2' },
  },
  {
    name: 'mixed batch: placements and reasons together',
    nodes: [node('n1', { cpus: 2, labels: { zone: 'a' } }), node('n2', { cpus: 2, labels: { zone: 'b' } })],
    jobs: [job('a', { nodeSelector: { zone: 'a' } }), job('b', { nodeSelector: { zone: 'c' } }), job('c', { cpus: 3 }), job('d'), job('e')],
    placed: { a: 'n1', d: 'n2', e: 'n1' },
    waiting: { b: 'no node matches nodeSelector zone=c', c: 'needs 3 CPUs; the largest node has 2 CPUs' },
  },
];

describe('scheduler', () => {
  for (const c of cases) {
    it(c.name, () => {
      const plan = schedule({ nodes: c.nodes, pending: c.jobs, ...(c.groups ? { groups: c.groups } : {}) }, c.strategy);
      const placed = Object.fromEntries(plan.placements.map((p) => [p.jobId, p.node]));
      assert.deepEqual(placed, c.placed ?? {});
      const waiting = Object.fromEntries(plan.waiting.map((w) => [w.jobId, w.reason]));
      assert.deepEqual(Object.keys(waiting).sort(), Object.keys(c.waiting ?? {}).sort());
      for (const [id, want] of Object.entries(c.waiting ?? {})) {
        if (typeof want === 'string') assert.equal(waiting[id], want);
        else assert.match(waiting[id], want);
      }
    });
  }

  it('never over-commits a node, whatever the batch', () => {
    const nodes = [node('n1', { cpus: 3 }), node('n2', { cpus: 5, reserved: 1 }), node('n3', { cpus: 2, status: 'down' })];
    const jobs = Array.from({ length: 200 }, (_, i) => job(`j${i}`, { cpus: [0.1, 0.5, 1, 2][i % 4], priority: i % 3 }));
    for (const strategy of ['spread', 'binpack'] as const) {
      const plan = schedule({ nodes, pending: jobs }, strategy);
      assert.equal(plan.placements.length + plan.waiting.length, jobs.length);
      for (const n of nodes) {
        const used = plan.placements.filter((p) => p.node === n.name).reduce((s, p) => s + jobs.find((j) => j.id === p.jobId)!.milliCpus, 0);
        assert.ok(used + n.allocated.milliCpus <= n.cpus * 1000 || used === 0, `${strategy}: ${n.name} holds ${used}`);
      }
      assert.ok(!plan.placements.some((p) => p.node === 'n3'));
    }
  });

  it('a queue scheduled a part at a time, each part against what the last one left, places as one pass does', () => {
    const nodes = [node('n1', { cpus: 2, memoryBytes: 4 * GiB }), node('n2', { cpus: 3, reserved: 1, reservedMem: GiB })];
    const jobs = Array.from({ length: 7 }, (_, i) => job(`j${i}`, { memoryBytes: GiB, ...(i % 2 ? { group: 'Job/x' } : {}) }));
    const groups: GroupLimits = { 'Job/x': { limit: 2, active: 0 } };
    for (const strategy of ['spread', 'binpack'] as const) {
      const whole = schedule({ nodes, pending: jobs, groups }, strategy);
      let left = { nodes, groups };
      const placements: typeof whole.placements = [];
      for (let i = 0; i < jobs.length; i += 2) {
        const part = schedule({ ...left, pending: jobs.slice(i, i + 2) }, strategy);
        placements.push(...part.placements);
        left = part.left;
      }
      assert.deepEqual(placements, whole.placements, strategy);
      assert.deepEqual(left, whole.left, strategy);
      assert.deepEqual(whole.left.nodes.map((n) => n.allocated.milliCpus), [2000, 3000], strategy);
      assert.equal(whole.left.groups['Job/x'].active, 2, strategy);
      assert.equal(groups['Job/x'].active, 0, 'the snapshot is not changed');
    }
  });

  it('20 short jobs at once: none on the node burning a CPU beyond its reservations, some there when only reservations count', () => {
    // What test/integration/best-node.test.ts builds for real: three nodes of one host, a busy
    // loop reserving 0.1 CPU on node1, and 20 jobs reserving 0.05 each placed in one pass.
    const cluster = (burst: number) => [
      node('node1', { cpus: 2, reserved: 0.1, usedCpus: 0.1 + burst, burstCpus: burst, load1: 1.2, host: 'h' }),
      node('node2', { cpus: 2, load1: 1.2, host: 'h' }),
      node('node3', { cpus: 2, load1: 1.2, host: 'h' }),
    ];
    const short = Array.from({ length: 20 }, (_, i) => job(`s${i}`, { cpus: 0.05 }));
    const on = (plan: ReturnType<typeof schedule>, n: string) => plan.placements.filter((p) => p.node === n).length;
    // Measured at 0.5 CPU of burst, half of what the integration test waits for.
    const measured = schedule({ nodes: cluster(0.5), pending: short });
    assert.equal(measured.placements.length, 20);
    assert.equal(on(measured, 'node1'), 0);
    assert.deepEqual([on(measured, 'node2'), on(measured, 'node3')], [10, 10]);
    const reservationsOnly = schedule({ nodes: cluster(0), pending: short });
    assert.ok(on(reservationsOnly, 'node1') > 0, 'by reservations alone node1 looks as empty as the others');
  });

  it('ranks a few nodes per job in a large cluster, and still spreads over all of them', () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => node(`n${String(i).padStart(4, '0')}`));
    const jobs = Array.from({ length: 2000 }, (_, i) => job(`j${i}`));
    const t0 = performance.now();
    const plan = schedule({ nodes, pending: jobs });
    const ms = performance.now() - t0;
    assert.equal(plan.placements.length, 2000);
    const per = new Map<string, number>();
    for (const p of plan.placements) per.set(p.node, (per.get(p.node) ?? 0) + 1);
    assert.ok(per.size >= 900, `jobs went to ${per.size} of 1000 nodes`);
    assert.ok(Math.max(...per.values()) <= 3, 'none piled up on a few nodes');
    // Ranking every node for every job took 2000 × 1000 scores.
    assert.ok(ms < 500, `${ms.toFixed(0)} ms for 2000 placements on 1000 nodes`);
  });

  it('in a large cluster, still finds the one node a job fits, ranks the nodes holding its input, and binpacks from the first', () => {
    const nodes = Array.from({ length: 300 }, (_, i) => node(`n${String(i).padStart(3, '0')}`, { labels: i === 299 ? { gpu: 'yes' } : {} }));
    const plan = schedule({
      nodes,
      pending: [job('gpu', { nodeSelector: { gpu: 'yes' } }), job('data', { input: { bytes: 100, nodes: { n150: 100 } } })],
    });
    assert.deepEqual(plan.placements, [{ jobId: 'gpu', node: 'n299' }, { jobId: 'data', node: 'n150' }]);
    const packed = schedule({ nodes, pending: Array.from({ length: 8 }, (_, i) => job(`b${i}`)) }, 'binpack');
    assert.deepEqual([...new Set(packed.placements.map((p) => p.node))], ['n000', 'n001']);
  });
});
