/**
 * Redis behind Sentinel (docs/ha.md): a submit, a claim, a completion and a commit return only
 * once the replica holds them (WAIT), what that costs per job and per commit; a manual failover
 * that the old primary outlives loses no commit; the same client writing to the promoted replica
 * after the primary's SIGKILL.
 *
 * The costs are printed, not asserted: they are of this machine at this moment (a loopback
 * replica; another test may share the cores).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { MASTER_NAME, SentinelRedis } from '../helpers/sentinel.js';
import { testKeys } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { connectRedis } from '../../src/state/redis.js';
import { replicationStats } from '../../src/state/replication.js';
import type { FsKeyspace, Keyspace } from '../../src/state/keys.js';
import { registerNode } from '../../src/state/nodes.js';
import { completeJob, readResults } from '../helpers/job-results.js';
import { claimJobs, getJob, listJobs, placeJobs, submitJobs } from '../../src/state/jobs.js';
import { commitVersion, getCurrent, getCurrentMany, listVersions } from '../../src/state/fs.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';

const N = 200;
const LEASE = 30_000;

/** A client made with these settings in the environment (they are read when a client is made). */
function connectWith(url: string, env: Record<string, string>): Redis {
  Object.assign(process.env, env);
  try {
    return connectRedis(url);
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
  }
}

const symlink = (path: string, target: string) => ({
  path, type: 'symlink' as const, node: 'n1', mtimeNs: String(BigInt(Date.now()) * 1_000_000n), size: target.length, mode: 0o120777, uid: 0, gid: 0, target, source: 'mount' as const,
});

describe('Redis behind Sentinel: steps that wait for the replica', { timeout: 120_000 }, () => {
  let s: SentinelRedis;
  let redis: Redis;
  let noWait: Redis;
  let replica: Redis;

  before(async () => {
    s = await SentinelRedis.start();
    redis = connectRedis(s.url);
    noWait = connectWith(s.url, { OSWALK_REDIS_WAIT: 'off' });
    replica = new Redis({ host: '127.0.0.1', port: s.ports.replica, maxRetriesPerRequest: 1 });
    replica.on('error', () => undefined);
  });

  after(async () => {
    redis?.disconnect();
    noWait?.disconnect();
    replica?.disconnect();
    await s?.stop();
  });

  /** N jobs, each claimed alone and completed, on this client; ms per job. */
  async function jobs(client: Redis, ks: Keyspace & FsKeyspace): Promise<{ msPerJob: number; last: string }> {
    const epoch = await registerNode(client, ks, {
      name: 'n1', address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process',
      cpus: N, memoryBytes: 2 ** 40, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/x', mountPath: '/cluster',
    });
    const ids = await submitJobs(client, ks, Array.from({ length: N }, () => ({ spec: normalizeJobSpec({ command: ['true'], cpus: 1 }) })));
    await placeJobs(client, ks, { placements: ids.map((jobId) => ({ jobId, node: 'n1' })), waiting: [] });
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const [c] = (await claimJobs(client, ks, 'n1', epoch, 1, LEASE))!;
      assert.equal(await completeJob(client, ks, { id: c.id, token: c.token, exitCode: 0, how: 'exit' }), 'succeeded');
    }
    return { msPerJob: (performance.now() - t0) / N, last: ids[N - 1] };
  }

  /** N commits of symlinks (no content to store: the step alone), on this client; ms per commit. */
  async function commits(client: Redis, ks: Keyspace & FsKeyspace): Promise<number> {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      await commitVersion(client, ks, symlink(`/l${i}`, 'x'));
    }
    return (performance.now() - t0) / N;
  }

  it(`a claim, a completion and a commit are on the replica when they return (${N} jobs, ${N} commits), and what that costs`, async () => {
    const ks = testKeys();
    const waits = replicationStats.waits;
    const withWait = await jobs(redis, ks);
    const commitWait = await commits(redis, ks);
    // Claims, completions and commits: one WAIT each; the submit, two (steps of 100).
    assert.equal(replicationStats.waits - waits, 3 * N + 2);
    assert.equal(replicationStats.unreplicated, 0);
    // Read from the replica itself the moment they returned: WAIT made sure it had them.
    assert.equal((await getJob(replica, ks, withWait.last))?.state, 'succeeded');
    assert.equal((await getCurrent(replica, ks, `/l${N - 1}`))?.target, 'x');

    const ks2 = testKeys();
    const without = await jobs(noWait, ks2);
    const commitNoWait = await commits(noWait, ks2);
    assert.equal(replicationStats.waits - waits, 3 * N + 2, 'OSWALK_REDIS_WAIT=off sends no WAIT');
    console.log(`per job (claim + completion, one at a time): ${withWait.msPerJob.toFixed(3)} ms with WAIT, ${without.msPerJob.toFixed(3)} ms without; `
      + `per commit: ${commitWait.toFixed(3)} ms with WAIT, ${commitNoWait.toFixed(3)} ms without (loopback replica, rough)`);
  });

  it('a replica that acknowledges nothing holds a commit for the WAIT\'s timeout, and the commit then succeeds, counted', async () => {
    const ks = testKeys();
    const slow = connectWith(s.url, { OSWALK_REDIS_WAIT_MS: '300' });
    try {
      await commitVersion(slow, ks, symlink('/warm', 'x'));
      const unreplicated = replicationStats.unreplicated;
      s.signal('replica', 'SIGSTOP');
      const t0 = performance.now();
      try {
        await commitVersion(slow, ks, symlink('/lagging', 'x'));
      } finally {
        s.signal('replica', 'SIGCONT');
      }
      assert.ok(performance.now() - t0 >= 300, 'the commit waited for the replica until the timeout');
      assert.equal(replicationStats.unreplicated, unreplicated + 1);
      assert.equal((await getCurrent(slow, ks, '/lagging'))?.target, 'x');
    } finally {
      slow.disconnect();
    }
  });

  it('a submit, a claim, a completion and a commit whose connection is lost during their WAIT are made sure of, once each', async () => {
    const ks = testKeys();
    const epoch = await registerNode(redis, ks, {
      name: 'n1', address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process',
      cpus: 4, memoryBytes: 2 ** 40, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/x', mountPath: '/cluster',
    });
    const primary = (await s.primaryPort())!;
    /** Run step with the replica stopped, and cut its connection once it waits in WAIT. */
    const cutDuringWait = async <T>(step: () => Promise<T>): Promise<T> => {
      const uncertain = replicationStats.uncertain;
      s.signal('replica', 'SIGSTOP');
      let done: Promise<T>;
      try {
        done = step();
        const waiting = await until('the step to wait for the replica', async () => {
          const list = await s.ask<string>(primary, ['CLIENT', 'LIST']);
          return /^id=(\d+) .*\bcmd=wait\b/m.exec(list)?.[1];
        });
        await s.ask(primary, ['CLIENT', 'KILL', 'ID', waiting]);
      } finally {
        s.signal('replica', 'SIGCONT');
      }
      const out = await done;
      assert.equal(replicationStats.uncertain, uncertain + 1, 'the lost WAIT was noticed');
      return out;
    };
    const [id] = await cutDuringWait(() => submitJobs(redis, ks, [{ spec: normalizeJobSpec({ command: ['true'], cpus: 1 }) }]));
    assert.equal((await listJobs(redis, ks)).items.length, 1, 'made again, the submit added nothing');
    await placeJobs(redis, ks, { placements: [{ jobId: id, node: 'n1' }], waiting: [] });
    const [claim] = (await cutDuringWait(() => claimJobs(redis, ks, 'n1', epoch, 1, LEASE)))!;
    assert.equal(claim.id, id, 'the claim is kept: the server holds it');
    assert.equal(await cutDuringWait(() => completeJob(redis, ks, { id, token: claim.token, exitCode: 0, how: 'exit' })), 'succeeded', 'the first answer stands');
    assert.equal((await readResults(redis, ks)).filter((r) => r.id === id).length, 1, 'one result');
    await cutDuringWait(() => commitVersion(redis, ks, symlink('/cut', 'z')));
    assert.equal((await listVersions(redis, ks, '/cut')).length, 1, 'made again, the commit changed nothing');
  });

  it('a failover that leaves the old primary up (SENTINEL FAILOVER): no commit fails or is lost, whether or not the client hears of it', async () => {
    const ks = testKeys();
    const old = (await s.primaryPort())!;
    const other = old === s.ports.primary ? s.ports.replica : s.ports.primary;
    // One client as OS Walk's processes have them; one that never hears the sentinels' switch
    // (as if its connection to them were down), which stays on the old primary, still a
    // primary without a replica until the sentinels demote it, seconds later.
    const deaf = connectRedis(s.url, { failoverDetector: false });
    const clients = [{ name: 'told', redis }, { name: 'not told', redis: deaf }].map((c) => ({ ...c, done: 0, errors: [] as string[] }));
    let stop = false;
    // Commits one after another through the failover: what the old primary took after the
    // promotion is made again on the new one (replication.ts, deposed()); what it refuses
    // READONLY once demoted is sent again there.
    const writers = clients.map(async (c) => {
      while (!stop) {
        await commitVersion(c.redis, ks, symlink(`/${c.name}/${c.done}`, 'x')).then(() => c.done++, (err: Error) => c.errors.push(err.message));
        // A pace, not a wait for anything: a few hundred commits a second are plenty, and the cores are shared.
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    const { unreplicated, uncertain } = replicationStats;
    let asked = 0;
    let switched = 0;
    let demoted = 0;
    try {
      asked = performance.now();
      await s.ask(s.ports.sentinels[0], ['SENTINEL', 'FAILOVER', MASTER_NAME]);
      await until('a majority of the sentinels to name the other server', async () => (await s.primaryPort()) === other, 30_000);
      switched = performance.now();
      await until('the old primary to be a replica in sync', async () => /master_link_status:up/.test(await s.info(old, 'replication')), 30_000);
      demoted = performance.now();
      const at = clients.map((c) => c.done);
      await until('commits on the new primary', async () => clients.every((c, i) => c.done >= at[i] + 20), 30_000);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    const direct = new Redis({ host: '127.0.0.1', port: other, maxRetriesPerRequest: 1 });
    direct.on('error', () => undefined);
    try {
      const lost: number[] = [];
      for (const c of clients) {
        let n = 0;
        for (let i = 0; i < c.done; i += 1000) {
          n += (await getCurrentMany(direct, ks, Array.from({ length: Math.min(1000, c.done - i) }, (_, j) => `/${c.name}/${i + j}`))).filter((v) => !v).length;
        }
        lost.push(n);
      }
      console.log(`manual failover: ${clients.map((c, i) => `${c.done} commits returned to the client ${c.name}, ${lost[i]} of them not on the new primary`).join('; ')}; `
        + `${replicationStats.unreplicated - unreplicated} with no replica's acknowledgement in time, ${replicationStats.uncertain - uncertain} made again on the new primary; `
        + `the sentinels named the new primary ${((switched - asked) / 1000).toFixed(1)} s after SENTINEL FAILOVER, the old one was a replica in sync after ${((demoted - asked) / 1000).toFixed(1)} s`);
      assert.deepEqual(clients.map((c) => c.errors.slice(0, 3)), [[], []], 'no commit failed');
      assert.deepEqual(lost, [0, 0], 'every commit that returned is on the new primary');
      for (const c of clients) {
        const [role] = (await c.redis.call('ROLE')) as [string];
        assert.equal(role, 'master', `the client ${c.name} is on the new primary`);
      }
      await deaf.set(`${ks.prefix}probe`, '1');
      assert.equal(await direct.get(`${ks.prefix}probe`), '1', 'its writes land on the new primary');
    } finally {
      direct.disconnect();
      deaf.disconnect();
    }
  });

  it('after SIGKILL of the primary the same client writes to the promoted replica; without a replica left, steps no longer WAIT', async () => {
    const ks = testKeys();
    const primary = (await s.primaryPort())!;
    const survivor = primary === s.ports.primary ? s.ports.replica : s.ports.primary;
    const killedAt = performance.now();
    await s.kill(s.nameOf(primary));
    // Sent at once: it waits in the client's queue through the failover.
    await redis.set(ks.prefix + 'after-failover', '1');
    const outage = performance.now() - killedAt;
    console.log(`outage: ${outage.toFixed(0)} ms from SIGKILL of the primary to the first write acknowledged by the new one (down-after ${SentinelRedis.DOWN_AFTER_MS} ms)`);
    assert.equal(await until('a majority of the sentinels to name the survivor', async () => (await s.primaryPort()) === survivor), true);
    assert.match(await s.info(survivor, 'replication'), /role:master/);
    const noReplica = replicationStats.noReplica;
    const waits = replicationStats.waits;
    await commitVersion(redis, ks, symlink('/after', 'y'));
    const direct = new Redis({ host: '127.0.0.1', port: survivor, maxRetriesPerRequest: 1 });
    direct.on('error', () => undefined);
    try {
      assert.equal((await getCurrent(direct, ks, '/after'))?.target, 'y');
    } finally {
      direct.disconnect();
    }
    assert.equal(replicationStats.waits, waits, 'no WAIT on a primary without a replica');
    assert.equal(replicationStats.noReplica, noReplica + 1);
  });
});
