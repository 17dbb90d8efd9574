import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { keyspace, type Keyspace } from '../../src/state/keys.js';
import { heartbeat, registerNode, setNodeStatus, type NodeRegistration } from '../../src/state/nodes.js';
import { normalizeJobSpec, type JobSpecRequest } from '../../src/api/jobs.js';
import { TERMINAL_STATES } from '../../src/api/job-states.js';
import { cancelJob, claimJobs, completeAndTake, drainNode, getJob, getOwnerStatus, jobsOnNode, listJobs, monitorStep, pendingJobs, placeJobs, reconcileOwner, releaseNodeJobs, renewLeases, schedulerView, submitJobs, uncordonNode, type SchedulerSnapshot } from '../../src/state/jobs.js';
import { appendLog, endEntry, followJob, readLog, waitLog, appendStdin, resizeTerminal, StdinError, waitStdin, markLogRead, markStdinRead } from '../../src/state/job-streams.js';
import { duplicateRedis, type Redis } from '../../src/state/redis.js';
import { LIMITS } from '../../src/util/limits.js';
import { completeJob, readResults } from '../helpers/job-results.js';

function reg(name: string, cpus = 4): NodeRegistration {
  return {
    name, address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process',
    cpus, memoryBytes: 8 * 2 ** 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/srv/x', mountPath: '/cluster',
  };
}

/** Nodes and the head of the queue, as one scheduling pass reads them (scheduler-loop.ts). */
async function schedulerSnapshot(redis: Redis, ks: Keyspace): Promise<SchedulerSnapshot> {
  const view = await schedulerView(redis, ks, 1000);
  const { pending, groups } = await pendingJobs(redis, ks, view.ids);
  return { nodes: view.nodes, pending, groups };
}

// Failures end a job at once unless a test asks for retries.
const spec = (extra: Partial<JobSpecRequest> = {}) => normalizeJobSpec({ command: ['true'], backoffLimit: 0, ...extra });
const LEASE = 10_000;

describe('job state scripts', () => {
  const db = useTestRedis();

  /** A fresh prefix with node n1 registered; returns its epoch. */
  async function setup(cpus = 4): Promise<{ ks: Keyspace; epoch: number }> {
    const ks = keyspace(testPrefix());
    const epoch = await registerNode(db.redis, ks, reg('n1', cpus));
    return { ks, epoch };
  }

  /** Submit → place on n1 → claim; returns the claim. */
  async function running(ks: Keyspace, epoch: number, extra: Partial<JobSpecRequest> = {}) {
    const [id] = await submitJobs(db.redis, ks, [{ spec: spec(extra) }]);
    await placeJobs(db.redis, ks, { placements: [{ jobId: id, node: 'n1' }], waiting: [] });
    const claimed = await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE);
    const c = claimed?.find((x) => x.id === id);
    assert.ok(c, 'job was claimed');
    return c;
  }

  it('orders the queue by priority, then age, and wakes the scheduler', async () => {
    const { ks } = await setup();
    const ids = await submitJobs(db.redis, ks, [
      { spec: spec() }, { spec: spec({ priority: 10 }) }, { spec: spec() }, { spec: spec({ priority: -5 }) },
    ]);
    // Ids sorting before the older ones: only the score can put them in age order.
    const more = await submitJobs(db.redis, ks, [{ id: '0002', spec: spec() }, { id: '0001', spec: spec() }]);
    const snap = await schedulerSnapshot(db.redis, ks);
    assert.deepEqual(snap.pending.map((p) => p.id), [ids[1], ids[0], ids[2], ...more, ids[3]]);
    assert.equal(await db.redis.llen(ks.schedulerWake), 1);
    assert.equal(snap.nodes[0].allocated.milliCpus, 0);
  });

  it('places only pending jobs on ready nodes with room, and records the allocation', async () => {
    const { ks } = await setup(2);
    const [a, b, c, d] = await submitJobs(db.redis, ks, [{ spec: spec() }, { spec: spec() }, { spec: spec() }, { spec: spec() }]);
    await cancelJob(db.redis, ks, d);
    const res = await placeJobs(db.redis, ks, {
      placements: [{ jobId: a, node: 'n1' }, { jobId: b, node: 'n1' }, { jobId: c, node: 'n1' }, { jobId: d, node: 'n1' }, { jobId: a, node: 'nope' }],
      waiting: [],
    });
    // c does not fit (2 CPUs), d was cancelled, a twice and on an unknown node.
    assert.deepEqual(res, { placed: 2, skipped: 3 });
    assert.equal((await getJob(db.redis, ks, a))?.state, 'scheduled');
    assert.equal((await getJob(db.redis, ks, c))?.state, 'pending');
    assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'milliCpus'), '2000');
    assert.equal(await db.redis.llen(ks.nodeWake('n1')), 1);
    await placeJobs(db.redis, ks, { placements: [], waiting: [{ jobId: c, reason: 'all nodes are full' }, { jobId: a, reason: 'x' }] });
    assert.equal((await getJob(db.redis, ks, c))?.waitReason, 'all nodes are full');
    assert.equal((await getJob(db.redis, ks, a))?.waitReason, '', 'a placed job keeps no wait reason');
  });

  it('does not place on a draining node', async () => {
    const { ks } = await setup();
    const [a] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
    await drainNode(db.redis, ks, 'n1');
    assert.deepEqual(await placeJobs(db.redis, ks, { placements: [{ jobId: a, node: 'n1' }], waiting: [] }), { placed: 0, skipped: 1 });
    assert.equal(await uncordonNode(db.redis, ks, 'n1'), 'ready');
    assert.deepEqual(await placeJobs(db.redis, ks, { placements: [{ jobId: a, node: 'n1' }], waiting: [] }), { placed: 1, skipped: 0 });
  });

  it('claims with a fresh fencing token and lease, only for the current agent epoch', async () => {
    const { ks, epoch } = await setup();
    const [a] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
    await placeJobs(db.redis, ks, { placements: [{ jobId: a, node: 'n1' }], waiting: [] });
    assert.equal(await claimJobs(db.redis, ks, 'n1', epoch - 1, 10, LEASE), undefined);
    const claimed = await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE, 1000);
    assert.equal(claimed?.length, 1);
    assert.equal(claimed?.[0].attempt, 1);
    const j = await getJob(db.redis, ks, a);
    assert.equal(j?.state, 'running');
    assert.equal(j?.leaseExpiry, 1000 + LEASE);
    assert.equal(String(j?.token), claimed?.[0].token);
    assert.deepEqual(await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE), [], 'nothing is claimed twice');
  });

  it('renews only with the current token and reports cancel requests', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch);
    assert.deepEqual(await renewLeases(db.redis, ks, 'n1', [{ id: c.id, token: c.token }, { id: c.id, token: '999999' }], LEASE, 5000), ['ok', 'lost']);
    assert.equal((await getJob(db.redis, ks, c.id))?.leaseExpiry, 5000 + LEASE);
    assert.equal(await cancelJob(db.redis, ks, c.id), 'cancelling');
    assert.deepEqual(await renewLeases(db.redis, ks, 'n1', [{ id: c.id, token: c.token }], LEASE), ['cancel']);
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: null, how: 'stopped', message: 'killed' }), 'cancelled');
    const j = await getJob(db.redis, ks, c.id);
    assert.equal(j?.state, 'cancelled');
    assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'milliCpus'), '0');
  });

  it('completes exactly once; a stale or repeated token changes nothing', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch);
    assert.equal(await followJob(db.redis, ks, c.id), 'running');
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: String(Number(c.token) + 100), exitCode: 1, how: 'exit' }), 'stale');
    assert.equal((await getJob(db.redis, ks, c.id))?.state, 'running');
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 0, how: 'exit' }), 'succeeded');
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 1, how: 'exit' }), 'stale');
    const j = await getJob(db.redis, ks, c.id);
    assert.equal(j?.state, 'succeeded');
    assert.equal(j?.exitCode, 0);
    const ends = (await readResults(db.redis, ks)).filter((r) => r.id === c.id && r.state !== 'attempt-ended');
    assert.deepEqual(ends.map((r) => r.state), ['succeeded']);
    // Followed: the end line is in the stream, and it is the line endEntry builds.
    const log = await readLog(db.redis, ks, c.id);
    assert.equal(log.at(-1)?.t, 'end');
    assert.deepEqual(JSON.parse(log.at(-1)!.data.toString()), JSON.parse(endEntry(j!).data.toString()));
    assert.deepEqual(JSON.parse(log.at(-1)!.data.toString()), { state: 'succeeded', exitCode: 0, message: '', attempt: 1, node: 'n1' });
    assert.deepEqual(await jobsOnNode(db.redis, ks, 'n1'), []);
    const ttl = await db.redis.pttl(ks.job(c.id));
    assert.ok(ttl > 6 * 86_400_000 && ttl <= 7 * 86_400_000, 'a finished job expires after its retention');
    assert.ok((await db.redis.pttl(ks.jobLog(c.id))) > 0);
    // Once the record has expired, the monitor drops the id from the listing.
    await db.redis.del(ks.job(c.id));
    await monitorStep(db.redis, ks, 1e12, Date.now() + 8 * 86_400_000);
    assert.equal(await db.redis.zscore(ks.jobsAll, c.id), null);
  });

  it('writes a log stream for a job that nobody follows only if it printed something', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch);
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 3, how: 'exit' }), 'failed');
    assert.equal(await db.redis.exists(ks.jobLog(c.id)), 0);
    const j = (await getJob(db.redis, ks, c.id))!;
    assert.deepEqual(JSON.parse(endEntry(j).data.toString()), { state: 'failed', exitCode: 3, message: '', attempt: 1, node: 'n1' });
    // Following a job that has ended marks nothing: the caller builds the end from the record.
    assert.equal(await followJob(db.redis, ks, c.id), 'failed');
    assert.equal(await db.redis.hget(ks.job(c.id), 'follow'), null);
    assert.equal(await followJob(db.redis, ks, 'nope'), undefined);
  });

  it('retries a failure with exponential backoff up to backoffLimit, then fails', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch, { backoffLimit: 2 });
    const backoff = { baseMs: 1000, maxMs: 60_000 };
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 3, how: 'exit' }, backoff, 10_000), 'retrying');
    let j = await getJob(db.redis, ks, c.id);
    assert.equal(j?.state, 'pending');
    assert.match(j!.waitReason, /exited with 3; retry 1 in 1\.0s/);
    assert.equal(Number(await db.redis.zscore(ks.jobsDelayed, c.id)), 11_000);
    assert.equal((await monitorStep(db.redis, ks, 1e12, 10_500)).promoted, 0, 'not before the backoff has passed');
    assert.equal((await monitorStep(db.redis, ks, 1e12, 11_000)).promoted, 1);
    await placeJobs(db.redis, ks, { placements: [{ jobId: c.id, node: 'n1' }], waiting: [] });
    const [c2] = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
    assert.equal(c2.attempt, 2);
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c2.token, exitCode: 3, how: 'exit' }, backoff, 20_000), 'retrying');
    assert.equal(Number(await db.redis.zscore(ks.jobsDelayed, c.id)), 22_000, 'second retry waits twice as long');
    await monitorStep(db.redis, ks, 1e12, 22_000);
    await placeJobs(db.redis, ks, { placements: [{ jobId: c.id, node: 'n1' }], waiting: [] });
    const [c3] = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c3.token, exitCode: 3, how: 'exit' }, backoff), 'failed');
    j = await getJob(db.redis, ks, c.id);
    assert.equal(j?.state, 'failed');
    assert.equal(j?.failures, 3);
  });

  it('fails a job killed at its deadline without retrying it', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch, { backoffLimit: 5, activeDeadlineSeconds: 1 });
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: null, how: 'deadline' }), 'failed');
    assert.match((await getJob(db.redis, ks, c.id))!.message, /activeDeadlineSeconds/);
  });

  it('cancels pending and scheduled jobs at once, and leaves finished ones alone', async () => {
    const { ks, epoch } = await setup();
    const [a, b] = await submitJobs(db.redis, ks, [{ spec: spec() }, { spec: spec() }]);
    await placeJobs(db.redis, ks, { placements: [{ jobId: b, node: 'n1' }], waiting: [] });
    assert.equal(await cancelJob(db.redis, ks, a), 'cancelled');
    assert.equal(await cancelJob(db.redis, ks, b), 'cancelled');
    assert.equal(await cancelJob(db.redis, ks, a), 'cancelled');
    assert.equal(await cancelJob(db.redis, ks, 'nope'), undefined);
    assert.deepEqual(await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE), [], 'a cancelled placement is not claimed');
    assert.equal(await db.redis.zcard(ks.jobsPending), 0);
    assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'milliCpus'), '0');
  });

  it('marks a silent node down and requeues its jobs in one step; the old holder is refused', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch);
    const [placed] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
    await placeJobs(db.redis, ks, { placements: [{ jobId: placed, node: 'n1' }], waiting: [] });
    const t0 = Number(await db.redis.hget(ks.node('n1'), 'lastHeartbeat'));
    assert.deepEqual((await monitorStep(db.redis, ks, 5000, t0 + 4000)).nodesDown, []);
    const res = await monitorStep(db.redis, ks, 5000, t0 + 6000);
    assert.deepEqual(res.nodesDown, ['n1']);
    assert.equal(res.requeued, 2);
    assert.equal(await db.redis.hget(ks.node('n1'), 'status'), 'down');
    for (const id of [c.id, placed]) {
      const j = await getJob(db.redis, ks, id);
      assert.equal(j?.state, 'pending');
      assert.match(j!.waitReason, /node n1 went down/);
    }
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 0, how: 'exit' }), 'stale');
    assert.deepEqual(await renewLeases(db.redis, ks, 'n1', [{ id: c.id, token: c.token }], LEASE), ['lost']);
    assert.equal(await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE), undefined, 'a down node claims nothing');
    assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'milliCpus'), '0');
    assert.equal((await monitorStep(db.redis, ks, 5000, t0 + 7000)).nodesDown.length, 0, 'down once');
  });

  it('keeps the room index (nodes:room) in step with status, mount and reservations, and places from it', async () => {
    const { ks, epoch } = await setup(2);
    await registerNode(db.redis, ks, reg('n2', 1));
    const room = async () => Object.fromEntries((await db.redis.zrange(ks.nodesRoom, '0', '-1', 'WITHSCORES')).flatMap((v, i, a) => (i % 2 ? [] : [[v, Number(a[i + 1])]])));
    assert.deepEqual(await room(), { n1: 2000, n2: 1000 });
    const c = await running(ks, epoch);
    assert.deepEqual(await room(), { n1: 1000, n2: 1000 }, 'a placement takes room');
    await setNodeStatus(db.redis, ks, 'n2', 'draining');
    assert.deepEqual(await room(), { n1: 1000 }, 'a draining node has none');
    await setNodeStatus(db.redis, ks, 'n2', 'ready');
    assert.ok(await heartbeat(db.redis, ks, 'n1', epoch, { load1: 0, memoryUsedBytes: 0, runningJobs: 1, mountReady: false }));
    assert.deepEqual(await room(), { n2: 1000 }, 'nor one whose mount is down');
    await heartbeat(db.redis, ks, 'n1', epoch, { load1: 0, memoryUsedBytes: 0, runningJobs: 1, mountReady: true });
    // The completing agent takes the next job only when no other node has room for it.
    const [next] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
    const { next: taken } = await completeAndTake(db.redis, ks, [{ id: c.id, token: c.token, exitCode: 0, how: 'exit' }], { node: 'n1', epoch, leaseMs: LEASE, max: 10 });
    assert.deepEqual(taken, [], 'n2 has room: left to the scheduler');
    assert.deepEqual(await room(), { n1: 2000, n2: 1000 }, 'an end gives room back');
    await placeJobs(db.redis, ks, { placements: [{ jobId: next, node: 'n2' }], waiting: [] });
    assert.deepEqual(await room(), { n1: 2000, n2: 0 });
    const snap = await schedulerView(db.redis, ks, 10, 'room');
    assert.deepEqual(snap.ids, [], 'nothing pending: no node read');
    await submitJobs(db.redis, ks, [{ spec: spec() }]);
    assert.deepEqual((await schedulerView(db.redis, ks, 10, 'room')).nodes.map((n) => n.name), ['n1'], 'only nodes with room');
    const t0 = Number(await db.redis.hget(ks.node('n1'), 'lastHeartbeat'));
    await monitorStep(db.redis, ks, 5000, t0 + 6000);
    assert.deepEqual(await room(), {}, 'down nodes have none');
  });

  it('sweeps the nodes a slice per monitor pass, making the room index good on the way', async () => {
    const { ks } = await setup();
    for (let i = 2; i <= 250; i++) await registerNode(db.redis, ks, reg(`n${i}`));
    // As a cluster that ran before the index existed.
    await db.redis.del(ks.nodesRoom);
    let passes = 0;
    while ((await db.redis.zcard(ks.nodesRoom)) < 250) {
      await monitorStep(db.redis, ks, 1e12);
      assert.ok(++passes <= 6, `the whole index within a few passes (${await db.redis.zcard(ks.nodesRoom)} after ${passes})`);
    }
    assert.ok(passes >= 2, 'a pass reads a slice, not every node');
  });

  it('keeps at most so many finished jobs: the monitor deletes the oldest ends first, and leaves the others alone', async () => {
    const { ks, epoch } = await setup();
    const ended: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await running(ks, epoch);
      await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 0, how: 'exit' }, undefined, Date.now() + i);
      ended.push(c.id);
    }
    const [waiting] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
    assert.equal(await db.redis.zcard(ks.jobsDone), 4);
    await monitorStep(db.redis, ks, 1e12, undefined, 1000, 2);
    assert.deepEqual(await Promise.all(ended.map(async (id) => (await getJob(db.redis, ks, id))?.state)), [undefined, undefined, 'succeeded', 'succeeded']);
    assert.deepEqual((await listJobs(db.redis, ks)).items.map((j) => j.id).sort(), [ended[2], ended[3], waiting].sort());
    assert.equal(await db.redis.zcard(ks.jobsDone), 2);
  });

  it('lists jobs a page at a time, newest first, across jobs of the same millisecond, and by name', async () => {
    const { ks } = await setup();
    // One submit: the same creation time for all, so the cursor's id breaks the ties.
    const ids = await submitJobs(db.redis, ks, ['a1', 'b2', 'a3', 'b4', 'a5', 'b6', 'a7'].map((n) => ({ id: `job-${n}`, name: `web-${n}`, spec: spec() })), 1_000_000);
    const older = await submitJobs(db.redis, ks, [{ id: 'job-old', name: 'web-old', spec: spec() }], 999_000);
    const seen: string[] = [];
    let page = await listJobs(db.redis, ks, { limit: 3 });
    for (;;) {
      seen.push(...page.items.map((j) => j.id));
      if (!page.next) break;
      page = await listJobs(db.redis, ks, { limit: 3, after: page.next });
    }
    assert.deepEqual(seen, [...ids].sort().reverse().concat(older), 'every job once, newest first');
    const a = await listJobs(db.redis, ks, { limit: 2, nameContains: '-a' });
    assert.deepEqual(a.items.map((j) => j.name), ['web-a7', 'web-a5']);
    assert.deepEqual((await listJobs(db.redis, ks, { limit: 2, nameContains: '-a', after: a.next })).items.map((j) => j.name), ['web-a3', 'web-a1']);
    assert.equal((await listJobs(db.redis, ks, { limit: 4, nameContains: '-a' })).next, undefined, 'no next page when the filter has no more');
    await assert.rejects(listJobs(db.redis, ks, { after: 'nonsense' }), RangeError);
  });

  it('requeues a job whose lease expired', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch);
    const j0 = await getJob(db.redis, ks, c.id);
    const res = await monitorStep(db.redis, ks, 1e12, j0!.leaseExpiry! + 1);
    assert.equal(res.requeued, 1);
    const j = await getJob(db.redis, ks, c.id);
    assert.equal(j?.state, 'pending');
    assert.match(j!.waitReason, /lease expired/);
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 0, how: 'exit' }), 'stale');
  });

  it('drain lets batch jobs finish and moves service replicas', async () => {
    const { ks, epoch } = await setup();
    const batch = await running(ks, epoch);
    const replica = await running(ks, epoch, { restartPolicy: 'Always' });
    assert.deepEqual(await drainNode(db.redis, ks, 'n1'), { status: 'draining', moved: 1, remaining: 1 });
    assert.deepEqual(await renewLeases(db.redis, ks, 'n1', [batch, replica], LEASE), ['ok', 'move']);
    assert.equal(await completeJob(db.redis, ks, { id: replica.id, token: replica.token, exitCode: null, how: 'stopped' }), 'requeued');
    assert.equal((await getJob(db.redis, ks, replica.id))?.state, 'pending');
    assert.equal(await completeJob(db.redis, ks, { id: batch.id, token: batch.token, exitCode: 0, how: 'exit' }), 'succeeded');
    assert.equal(await drainNode(db.redis, ks, 'zz'), undefined);
  });

  it('turns a Job manifest into completion-indexed records and derives its status', async () => {
    const { ks, epoch } = await setup(8);
    const owner = { kind: 'Job' as const, name: 'sweep' };
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 3, spec({ backoffLimit: 0 }), 'h1'), { created: 3, cancelled: 0 });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 3, spec(), 'h1'), { created: 0, cancelled: 0 }, 'idempotent');
    const jobs = (await listJobs(db.redis, ks, { owner })).items;
    assert.deepEqual(jobs.map((j) => j.spec.env.OSWALK_COMPLETION_INDEX).sort(), ['0', '1', '2']);
    await placeJobs(db.redis, ks, { placements: jobs.map((j) => ({ jobId: j.id, node: 'n1' })), waiting: [] });
    const claimed = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
    assert.equal(claimed.length, 3);
    await completeJob(db.redis, ks, { id: claimed[0].id, token: claimed[0].token, exitCode: 0, how: 'exit' });
    await completeJob(db.redis, ks, { id: claimed[1].id, token: claimed[1].token, exitCode: 0, how: 'exit' });
    assert.equal((await getOwnerStatus(db.redis, ks, owner))?.phase, 'Running');
    await completeJob(db.redis, ks, { id: claimed[2].id, token: claimed[2].token, exitCode: 0, how: 'exit' });
    const st = await getOwnerStatus(db.redis, ks, owner);
    assert.equal(st?.phase, 'Complete');
    assert.equal(st?.succeeded, 3);
  });

  it('stops a Job that failed: what runs is asked to stop, what waits is cancelled', async () => {
    const { ks, epoch } = await setup(8);
    const owner = { kind: 'Job' as const, name: 'fails' };
    await reconcileOwner(db.redis, ks, owner, 4, spec({ backoffLimit: 0 }), 'h1');
    const jobs = (await listJobs(db.redis, ks, { owner })).items;
    await placeJobs(db.redis, ks, { placements: jobs.slice(0, 2).map((j) => ({ jobId: j.id, node: 'n1' })), waiting: [] });
    const claimed = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
    assert.equal(claimed.length, 2);
    await completeJob(db.redis, ks, { id: claimed[0].id, token: claimed[0].token, exitCode: 1, how: 'exit' });
    assert.equal((await getOwnerStatus(db.redis, ks, owner))?.phase, 'Failed');
    const after = new Map((await listJobs(db.redis, ks, { owner })).items.map((j) => [j.id, j]));
    assert.equal(after.get(claimed[1].id)?.cancelRequested, true, 'the running one is asked to stop');
    assert.deepEqual(jobs.slice(2).map((j) => after.get(j.id)?.state), ['cancelled', 'cancelled']);
    assert.equal(after.get(jobs[2].id)?.message, 'its Job failed');
  });

  it('enforces a Job\'s parallelism when placing, and frees the slot when a record ends', async () => {
    const { ks, epoch } = await setup(8);
    const owner = { kind: 'Job' as const, name: 'par' };
    await reconcileOwner(db.redis, ks, owner, 3, spec(), 'h1', { parallelism: 1 });
    const snap = await schedulerSnapshot(db.redis, ks);
    assert.deepEqual(snap.groups, { 'Job/par': { limit: 1, active: 0 } });
    const all = snap.pending.map((p) => ({ jobId: p.id, node: 'n1' }));
    assert.deepEqual(await placeJobs(db.redis, ks, { placements: all, waiting: [] }), { placed: 1, skipped: 2 });
    const [c] = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
    assert.deepEqual(await placeJobs(db.redis, ks, { placements: all, waiting: [] }), { placed: 0, skipped: 3 });
    await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 0, how: 'exit' });
    assert.equal(await db.redis.hget(ks.owner('Job', 'par'), 'active'), '0');
    assert.deepEqual(await placeJobs(db.redis, ks, { placements: all, waiting: [] }), { placed: 1, skipped: 2 });
  });

  describe('a report that takes the next job (completeAndTake)', () => {
    const take = (epoch: number, node = 'n1') => ({ node, epoch, leaseMs: LEASE, max: 10 });
    const ok = (c: { id: string; token: string }) => ({ id: c.id, token: c.token, exitCode: 0, how: 'exit' as const });

    it('starts the head of a backlog on the node that freed room, in the same step', async () => {
      const { ks, epoch } = await setup(1);
      const c = await running(ks, epoch);
      const [b, later] = await submitJobs(db.redis, ks, [{ spec: spec() }, { spec: spec() }]);
      await db.redis.del(ks.schedulerWake);
      const res = await completeAndTake(db.redis, ks, [ok(c)], take(epoch));
      assert.deepEqual(res.outcomes, ['succeeded']);
      assert.deepEqual(res.next.map((n) => [n.id, n.attempt]), [[b, 1]], 'one job: the node has one CPU');
      const jb = await getJob(db.redis, ks, b);
      assert.equal(jb?.state, 'running');
      assert.equal(jb?.node, 'n1');
      assert.equal(jb?.token, Number(res.next[0].token));
      assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'milliCpus'), '1000');
      assert.ok(await db.redis.zscore(ks.nodeLeases('n1'), b));
      assert.equal((await getJob(db.redis, ks, later))?.state, 'pending');
      assert.equal(await db.redis.llen(ks.schedulerWake), 0, 'the node is full again: no pass to run');
      assert.equal(await db.redis.zcard(ks.nodeQueue('n1')), 0);
      // The job it took completes like any other.
      assert.equal((await completeAndTake(db.redis, ks, [ok(res.next[0])], take(epoch))).next[0].id, later);
    });

    it('records several reports in one step, each on its own, and takes a job for each freed slot', async () => {
      const { ks, epoch } = await setup(2);
      const a = await running(ks, epoch);
      const b = await running(ks, epoch, { backoffLimit: 0 });
      const [n1, n2, n3] = await submitJobs(db.redis, ks, [{ spec: spec() }, { spec: spec() }, { spec: spec() }]);
      const res = await completeAndTake(db.redis, ks, [
        ok(a), { id: b.id, token: b.token, exitCode: 3, how: 'exit' }, { ...ok(a), token: '999999' },
      ], take(epoch));
      assert.deepEqual(res.outcomes, ['succeeded', 'failed', 'stale']);
      assert.deepEqual(res.next.map((n) => n.id), [n1, n2]);
      assert.equal((await getJob(db.redis, ks, b.id))?.exitCode, 3);
      assert.equal((await getJob(db.redis, ks, n3))?.state, 'pending');
      assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'milliCpus'), '2000');
      assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'jobs'), '2');
      const ends = (await readResults(db.redis, ks)).filter((r) => r.id === a.id || r.id === b.id);
      assert.deepEqual(ends.map((r) => r.state), ['succeeded', 'failed'], 'one line per job end, none for the stale report');
      const finished = await db.redis.hgetall(ks.jobsFinished);
      assert.deepEqual([finished.succeeded, finished.failed], ['1', '1'], 'the counts of one step, written once');
    });

    it('takes more jobs than one page of the queue head, each under a token of its own', async () => {
      const { ks, epoch } = await setup(24);
      const c = await running(ks, epoch);
      const queued = await submitJobs(db.redis, ks, Array.from({ length: 30 }, () => ({ spec: spec() })));
      const res = await completeAndTake(db.redis, ks, [ok(c)], { ...take(epoch), max: 40 });
      assert.deepEqual(res.next.map((n) => n.id), queued.slice(0, 24), 'in queue order, as many as the node has CPUs');
      const tokens = res.next.map((n) => Number(n.token));
      assert.equal(new Set([...tokens, Number(c.token)]).size, 25, 'no token given twice');
      for (const n of res.next) assert.equal((await getJob(db.redis, ks, n.id))?.token, Number(n.token));
      assert.equal(await db.redis.hget(ks.nodeAlloc('n1'), 'milliCpus'), '24000');
      assert.equal((await getJob(db.redis, ks, queued[24]))?.state, 'pending');
    });

    it('leaves the choice to the scheduler when another node has room, the job is pinned, or the agent is stale', async () => {
      const { ks, epoch } = await setup(1);
      const c1 = await running(ks, epoch);
      // Another node with room: the scheduler ranks the two.
      const e2 = await registerNode(db.redis, ks, reg('n2', 1));
      const [free] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
      let res = await completeAndTake(db.redis, ks, [ok(c1)], take(epoch));
      assert.deepEqual(res.next, []);
      assert.equal((await getJob(db.redis, ks, free))?.state, 'pending');
      assert.equal(await db.redis.llen(ks.schedulerWake), 1);
      // Fill n2; a pinned head job is not taken even though only n1 has room.
      await placeJobs(db.redis, ks, { placements: [{ jobId: free, node: 'n2' }], waiting: [] });
      assert.equal((await claimJobs(db.redis, ks, 'n2', e2, 10, LEASE))?.length, 1);
      const c2 = await running(ks, epoch);
      const [pinned] = await submitJobs(db.redis, ks, [{ spec: spec({ nodeSelector: { 'oswalk.dev/node': 'n1' } }) }]);
      res = await completeAndTake(db.redis, ks, [ok(c2)], take(epoch));
      assert.deepEqual(res.next, []);
      assert.equal((await getJob(db.redis, ks, pinned))?.state, 'pending');
      // A stale epoch takes nothing (and its report is still recorded).
      await placeJobs(db.redis, ks, { placements: [{ jobId: pinned, node: 'n1' }], waiting: [] });
      const [c3] = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
      const [plain] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
      res = await completeAndTake(db.redis, ks, [ok(c3)], take(epoch + 1));
      assert.deepEqual(res.outcomes, ['succeeded']);
      assert.deepEqual(res.next, []);
      assert.equal((await getJob(db.redis, ks, plain))?.state, 'pending');
    });

    it('keeps a Job\'s parallelism and a draining node out of it', async () => {
      const { ks, epoch } = await setup(8);
      await reconcileOwner(db.redis, ks, { kind: 'Job', name: 'par' }, 3, spec(), 'h1', { parallelism: 1 });
      const snap = await schedulerSnapshot(db.redis, ks);
      const other = await running(ks, epoch);
      await placeJobs(db.redis, ks, { placements: [{ jobId: snap.pending[0].id, node: 'n1' }], waiting: [] });
      const [p1] = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
      // Ending a job of another owner: the Job's one slot is taken, so its records wait.
      assert.deepEqual((await completeAndTake(db.redis, ks, [ok(other)], take(epoch))).next, []);
      // Its own record ends: the slot is free, and the next record starts here.
      const res = await completeAndTake(db.redis, ks, [ok(p1)], take(epoch));
      assert.deepEqual(res.next.map((n) => n.id), [snap.pending[1].id]);
      assert.equal(await db.redis.hget(ks.owner('Job', 'par'), 'active'), '1');
      await drainNode(db.redis, ks, 'n1');
      assert.deepEqual((await completeAndTake(db.redis, ks, [ok(res.next[0])], take(epoch))).next, []);
      assert.equal((await getJob(db.redis, ks, snap.pending[2].id))?.state, 'pending');
    });
  });

  it('keeps a Service at N replicas: replaces ended ones, scales down, rolls a spec change out one replica at a time', async () => {
    const { ks, epoch } = await setup(8);
    const owner = { kind: 'Service' as const, name: 'web' };
    const s = spec({ restartPolicy: 'Always' });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 3, s, 'h1'), { created: 3, cancelled: 0 });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 3, s, 'h1'), { created: 0, cancelled: 0 });
    const live = (await listJobs(db.redis, ks, { owner })).items;
    await cancelJob(db.redis, ks, live[0].id);
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 3, s, 'h1'), { created: 1, cancelled: 0 });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h1'), { created: 0, cancelled: 1 });
    const byIndex = async (hash: string) => {
      const jobs = (await listJobs(db.redis, ks, { owner })).items.filter((j) => !TERMINAL_STATES.has(j.state));
      const mine = await Promise.all(jobs.map(async (j) => (await db.redis.hget(ks.job(j.id), 'specHash')) === hash));
      return jobs.filter((_, i) => mine[i]).map((j) => ({ id: j.id, index: j.index, state: j.state })).sort((a, b) => a.index! - b.index!);
    };
    // A new spec: one replica of it starts next to index 0's old one, and the rollout waits.
    const t = Date.now();
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h2', {}, t), { created: 1, cancelled: 0 });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h2', {}, t + 1000), { created: 0, cancelled: 0 });
    const [n0] = await byIndex('h2');
    assert.equal(n0.index, 0);
    assert.equal((await byIndex('h1')).length, 2, 'both old replicas still serve');
    // Running, but not yet for 5 s: still waiting. Then index 0's old one goes and index 1 rolls.
    await placeJobs(db.redis, ks, { placements: [{ jobId: n0.id, node: 'n1' }], waiting: [] }, t);
    await claimJobs(db.redis, ks, 'n1', epoch, 10, 60_000, t + 1000);
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h2', {}, t + 3000), { created: 0, cancelled: 0 });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h2', {}, t + 6500), { created: 1, cancelled: 1 });
    assert.deepEqual((await byIndex('h1')).map((j) => j.index), [1]);
    const n1 = (await byIndex('h2')).find((j) => j.index === 1)!;
    await placeJobs(db.redis, ks, { placements: [{ jobId: n1.id, node: 'n1' }], waiting: [] }, t + 6500);
    await claimJobs(db.redis, ks, 'n1', epoch, 10, 60_000, t + 7000);
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h2', {}, t + 12_500), { created: 0, cancelled: 1 });
    assert.deepEqual(await byIndex('h1'), []);
    assert.deepEqual((await byIndex('h2')).map((j) => j.index), [0, 1]);
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 0, s, 'h2'), { created: 0, cancelled: 2 });
    assert.deepEqual(await db.redis.smembers(ks.owners('Service')), []);
  });

  it('leaves a restartPolicy OnFailure replica that succeeded, or failed for good, ended until the spec changes', async () => {
    const { ks, epoch } = await setup(8);
    const owner = { kind: 'Service' as const, name: 'batchy' };
    const s = spec({ restartPolicy: 'OnFailure', backoffLimit: 0 });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h1'), { created: 2, cancelled: 0 });
    const jobs = (await listJobs(db.redis, ks, { owner })).items;
    await placeJobs(db.redis, ks, { placements: jobs.map((j) => ({ jobId: j.id, node: 'n1' })), waiting: [] });
    const claimed = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))!;
    await completeJob(db.redis, ks, { id: claimed[0].id, token: claimed[0].token, exitCode: 0, how: 'exit' });
    await completeJob(db.redis, ks, { id: claimed[1].id, token: claimed[1].token, exitCode: 3, how: 'exit' });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h1'), { created: 0, cancelled: 0 });
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h1'), { created: 0, cancelled: 0 }, 'and on every pass after');
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 2, s, 'h2'), { created: 2, cancelled: 0 }, 'a new spec runs them again');
    const again = (await listJobs(db.redis, ks, { owner })).items.filter((j) => j.state === 'pending');
    assert.equal(again.length, 2);
    assert.deepEqual(await reconcileOwner(db.redis, ks, owner, 0, s, 'h2'), { created: 0, cancelled: 2 });
    assert.equal(await db.redis.exists(ks.owner('Service', 'batchy'), `${ks.owner('Service', 'batchy')}:jobs`), 0, 'a deleted Service leaves nothing');
    assert.equal((await getJob(db.redis, ks, again[0].id))?.message, 'its Service was deleted');
  });

  it('restarts a service replica whatever its exit', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch, { restartPolicy: 'Always' });
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 0, how: 'exit' }), 'retrying');
    assert.equal((await getJob(db.redis, ks, c.id))?.failures, 1);
    // Back after its backoff, it runs 11 minutes and exits: its backoff starts over.
    const t = Date.now() + 60_000;
    await monitorStep(db.redis, ks, 1e12, t);
    await placeJobs(db.redis, ks, { placements: [{ jobId: c.id, node: 'n1' }], waiting: [] }, t);
    const again = (await claimJobs(db.redis, ks, 'n1', epoch, 10, 10 * LEASE, t))![0];
    assert.equal(await completeJob(db.redis, ks, { id: again.id, token: again.token, exitCode: 1, how: 'exit' }, undefined, t + 11 * 60_000), 'retrying');
    assert.equal((await getJob(db.redis, ks, c.id))?.failures, 1);
  });

  it('keeps the tail of a huge log and counts what it dropped', async () => {
    const { ks, epoch } = await setup();
    const { id } = await running(ks, epoch);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const cap = 1024 * 1024;
    for (let i = 0; i < 40; i++) {
      await appendLog(db.redis, ks, id, 1, [{ stream: 'out', data: chunk }, { stream: 'err', data: Buffer.from(`line ${i}\n`) }], 0, cap);
    }
    const j = await getJob(db.redis, ks, id);
    assert.ok(j!.logBytes <= cap, `kept ${j!.logBytes}`);
    assert.ok(j!.logBytes > cap - 70 * 1024);
    const total = 40 * (chunk.length + 8) + 30 * 1; // "line N\n" is 7 or 8 bytes
    assert.ok(Math.abs(j!.logBytes + j!.logDropped - total) < 100, `${j!.logBytes}+${j!.logDropped}`);
    const entries = await readLog(db.redis, ks, id, '0', 10_000);
    assert.equal(entries.at(-1)?.data.toString(), 'line 39\n');
    assert.ok(await db.redis.memory('USAGE', ks.jobLog(id)) as number < 2 * cap);
    // The list the trimming goes by holds the kept entries and no more.
    const sizes = await db.redis.lrange(`${ks.prefix}joblogsz:${id}`, 0, -1);
    assert.deepEqual(sizes.map((s) => s.split(' ')[0]), entries.map((e) => e.id));
    assert.equal(sizes.reduce((n, s) => n + Number(s.split(' ')[1]), 0), j!.logBytes);
  });

  it('takes output only from the attempt that runs the job: a cut-off attempt printing on is not the job\'s', async () => {
    const { ks, epoch } = await setup();
    const c = await running(ks, epoch);
    assert.equal(await appendLog(db.redis, ks, c.id, 1, [{ stream: 'out', data: Buffer.from('first\n') }]), 'appended');
    await monitorStep(db.redis, ks, 60_000, Date.now() + 2 * LEASE); // its lease ran out: requeued
    assert.equal(await appendLog(db.redis, ks, c.id, 1, [{ stream: 'out', data: Buffer.from('zombie\n') }]), 'refused');
    await placeJobs(db.redis, ks, { placements: [{ jobId: c.id, node: 'n1' }], waiting: [] });
    assert.equal((await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE))?.[0]?.attempt, 2);
    assert.equal(await appendLog(db.redis, ks, c.id, 1, [{ stream: 'out', data: Buffer.from('zombie again\n') }]), 'refused');
    await appendLog(db.redis, ks, c.id, 2, [{ stream: 'out', data: Buffer.from('second\n') }]);
    assert.deepEqual((await readLog(db.redis, ks, c.id)).filter((e) => e.t === 'out').map((e) => e.data.toString()), ['first\n', 'second\n']);
  });

  it('holds output back while a reader following the job is more than its window behind', async () => {
    const { ks, epoch } = await setup();
    const { id } = await running(ks, epoch);
    const big = Buffer.alloc(LIMITS.logReaderWindowBytes + 1, 'x');
    assert.equal(await appendLog(db.redis, ks, id, 1, [{ stream: 'out', data: big }], 0, 2 * big.length), 'appended');
    await markLogRead(db.redis, ks, id, 0);
    assert.equal(await appendLog(db.redis, ks, id, 1, [{ stream: 'out', data: Buffer.from('more\n') }], 0, 2 * big.length), 'held');
    await markLogRead(db.redis, ks, id, big.length);
    assert.equal(await appendLog(db.redis, ks, id, 1, [{ stream: 'out', data: Buffer.from('more\n') }], 0, 2 * big.length), 'appended');
  });

  it('tells each attempt how long ago the job first started, for a deadline that counts across retries', async () => {
    const { ks, epoch } = await setup();
    const [id] = await submitJobs(db.redis, ks, [{ spec: spec() }]);
    const t0 = Date.now();
    await placeJobs(db.redis, ks, { placements: [{ jobId: id, node: 'n1' }], waiting: [] });
    assert.equal((await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE, t0))?.[0]?.sinceFirstStartMs, 0);
    await monitorStep(db.redis, ks, 60_000, t0 + 2 * LEASE); // its lease ran out: requeued
    await placeJobs(db.redis, ks, { placements: [{ jobId: id, node: 'n1' }], waiting: [] });
    const again = (await claimJobs(db.redis, ks, 'n1', epoch, 10, LEASE, t0 + 2 * LEASE + 500))?.[0];
    assert.equal(again?.attempt, 2);
    assert.equal(again?.sinceFirstStartMs, 2 * LEASE + 500);
  });

  it('wakes a log follower as soon as output arrives', async () => {
    const { ks, epoch } = await setup();
    const { id } = await running(ks, epoch);
    const blocking = db.redis.duplicate();
    try {
      const t0 = Date.now();
      const waiting = waitLog(blocking, ks, id, '$', 5000);
      setTimeout(() => void appendLog(db.redis, ks, id, 1, [{ stream: 'out', data: Buffer.from('hi\n') }]), 50);
      const got = await waiting;
      assert.equal(got[0].data.toString(), 'hi\n');
      assert.ok(Date.now() - t0 < 1000);
    } finally {
      blocking.disconnect();
    }
  });

  it('keeps a job\'s standard input whole for every attempt, up to its end, and refuses what comes after', async () => {
    const { ks } = await setup();
    const [id] = await submitJobs(db.redis, ks, [{ spec: spec({ stdin: true }) }]);
    const small = { replayBytes: 10, windowBytes: 4 };
    assert.equal(await appendStdin(db.redis, ks, id, Buffer.from('one\n'), false, small), 'appended');
    // Past what is kept for a new start, a job that has read nothing holds the sender back.
    assert.equal(await appendStdin(db.redis, ks, id, Buffer.from('far too long'), false, small), 'held');
    assert.equal(await appendStdin(db.redis, ks, id, Buffer.from('two\n'), true, small), 'appended');
    await assert.rejects(appendStdin(db.redis, ks, id, Buffer.from('x'), false), (e: unknown) => e instanceof StdinError && e.reason === 'CLOSED');
    // A terminal takes new sizes after its input ended, in order with it.
    await resizeTerminal(db.redis, ks, id, { rows: 50, cols: 132 });
    const blocking = duplicateRedis(db.redis);
    try {
      // Read twice from the start, as a first attempt and its retry would: the same both times.
      for (let attempt = 1; attempt <= 2; attempt++) {
        const got = await waitStdin(blocking, ks, id, '0', 1000);
        assert.deepEqual(got.map((e) => ('eof' in e ? 'EOF' : 'size' in e ? `${e.size.rows}x${e.size.cols}` : e.data.toString())), ['one\n', 'two\n', 'EOF', '50x132']);
      }
    } finally {
      blocking.disconnect();
    }
    await cancelJob(db.redis, ks, id);
    const [other] = await submitJobs(db.redis, ks, [{ spec: spec({ stdin: true }) }]);
    await cancelJob(db.redis, ks, other);
    await assert.rejects(appendStdin(db.redis, ks, other, Buffer.from('late'), false), (e: unknown) => e instanceof StdinError && e.reason === 'ENDED');
    await assert.rejects(appendStdin(db.redis, ks, 'no-such-job', Buffer.from('x'), false), (e: unknown) => e instanceof StdinError && e.reason === 'NOJOB');
    assert.ok(await db.redis.pttl(ks.jobStdin(id)) > 0, 'it expires with the job');
  });

  it('passes input beyond what is kept as a pipe: the sender held while the job is behind, what it read trimmed, and no new start', async () => {
    const { ks, epoch } = await setup();
    const limits = { replayBytes: 8, windowBytes: 6 };
    const c = await running(ks, epoch, { stdin: true, backoffLimit: 3 });
    const piece = (s: string) => appendStdin(db.redis, ks, c.id, Buffer.from(s), false, limits);
    assert.equal(await piece('aaaa'), 'appended');
    assert.equal(await piece('bbbb'), 'appended'); // 8 bytes: all still kept for a new start
    assert.equal(await piece('cc'), 'held', '10 sent, 0 read: 10 behind, more than 6');
    assert.equal((await getJob(db.redis, ks, c.id))?.state, 'running');
    const blocking = duplicateRedis(db.redis);
    try {
      const got = await waitStdin(blocking, ks, c.id, '0', 1000);
      assert.equal(got.length, 2);
      await markStdinRead(db.redis, ks, c.id, c.attempt, got[1].id, 8);
      assert.equal(await piece('cc'), 'appended', '10 sent, 8 read');
      // The input is a pipe now: what was read is gone, what was not is kept.
      await markStdinRead(db.redis, ks, c.id, c.attempt, got[1].id, 8);
      const left = await waitStdin(blocking, ks, c.id, '0', 1000);
      assert.deepEqual(left.map((e) => ('data' in e ? e.data.toString() : '?')), ['cc']);
      // A mark from another attempt changes nothing.
      await markStdinRead(db.redis, ks, c.id, c.attempt + 1, left[0].id, 10);
      assert.equal(await db.redis.xlen(ks.jobStdin(c.id)), 1);
    } finally {
      blocking.disconnect();
    }
    // It failed with retries left, but cannot start over: what it read is gone.
    assert.equal(await completeJob(db.redis, ks, { id: c.id, token: c.token, exitCode: 1, how: 'exit' }), 'failed');
    const j = await getJob(db.redis, ks, c.id);
    assert.equal(j?.state, 'failed');
    assert.match(j!.message, /not started again: more standard input went to it than is kept for a new start/);

    // Nor does one whose node went down.
    const d = await running(ks, epoch, { stdin: true, backoffLimit: 3 });
    assert.equal(await appendStdin(db.redis, ks, d.id, Buffer.alloc(9), false, { replayBytes: 0, windowBytes: 100 }), 'appended');
    assert.equal(await releaseNodeJobs(db.redis, ks, 'n1', 'node n1 went down', 'stop'), 0, 'nothing requeued');
    assert.match((await getJob(db.redis, ks, d.id))!.message, /^node n1 went down; not started again/);
  });

  it('never starts a session twice: one that ran ends failed when its node goes or it fails, one that never ran is requeued', async () => {
    const { ks, epoch } = await setup();
    const attachKey = 'ab'.repeat(32);
    // Its node went down while it ran: its input went to that attempt alone.
    const a = await running(ks, epoch, { stdin: true, attachKey, backoffLimit: 3 });
    assert.equal(await releaseNodeJobs(db.redis, ks, 'n1', 'node n1 went down', 'stop'), 0, 'nothing requeued');
    const lost = await getJob(db.redis, ks, a.id);
    assert.equal(lost?.state, 'failed');
    assert.match(lost!.message, /^node n1 went down; not started again: it was a session/);
    // It failed with retries left: no retry either.
    const again = await setup();
    const b = await running(again.ks, again.epoch, { stdin: true, attachKey, backoffLimit: 3 });
    assert.equal(await completeJob(db.redis, again.ks, { id: b.id, token: b.token, exitCode: 1, how: 'exit' }), 'failed');
    assert.match((await getJob(db.redis, again.ks, b.id))!.message, /not started again: it was a session/);
    // Placed but not yet started when its node went: nothing of it ran, so it is placed again.
    const [c] = await submitJobs(db.redis, again.ks, [{ spec: spec({ stdin: true, attachKey }) }]);
    await placeJobs(db.redis, again.ks, { placements: [{ jobId: c, node: 'n1' }], waiting: [] });
    assert.equal((await getJob(db.redis, again.ks, c))?.state, 'scheduled');
    assert.equal(await releaseNodeJobs(db.redis, again.ks, 'n1', 'node n1 went down', 'stop'), 1);
    assert.equal((await getJob(db.redis, again.ks, c))?.state, 'pending');
    // Its client is watched from its submit on, as a terminal session's is.
    assert.equal(await db.redis.exists(again.ks.jobClient(c)), 1);
  });

  it('refuses a bad job spec with the field at fault', () => {
    assert.throws(() => normalizeJobSpec({ command: ['x'], cpus: -1 }, 'job.yaml'), /job\.yaml: invalid field \/cpus/);
    assert.throws(() => normalizeJobSpec({}, 'body'), /needs a command/);
    assert.throws(() => normalizeJobSpec({ command: ['x'], inputs: ['/a/../etc/shadow'] }, 'body'), /body: inputs\[0\] must be a path from the cluster filesystem's root without "\.\." parts/);
    assert.throws(() => normalizeJobSpec({ command: ['x'], inputs: ['relative'] }, 'body'), /body: invalid field \/inputs\/0/);
    assert.deepEqual(normalizeJobSpec({ command: ['x'], inputs: ['/data/in.csv'] }, 'body').inputs, ['/data/in.csv']);
  });
});
