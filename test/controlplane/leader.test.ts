import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { fsKeyspace, keyspace } from '../../src/state/keys.js';
import { LeaderLease } from '../../src/controlplane/leader.js';
import { startControlLoops } from '../../src/controlplane/loops.js';
import { createRegistry } from '../../src/metrics/index.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';
import { getJob, submitJobs } from '../../src/state/jobs.js';
import { registerNode } from '../../src/state/nodes.js';
import { BlockingReaders } from '../../src/state/redis.js';
import { pino } from 'pino';

describe('leader lease', () => {
  const db = useTestRedis();

  it('lets one holder lead, renews only for it, and hands over on release or expiry', async () => {
    const ks = keyspace(testPrefix());
    const a = new LeaderLease(db.redis, ks, 'cp-a', 300);
    const b = new LeaderLease(db.redis, ks, 'cp-b', 300);
    assert.equal(await a.tick(), true);
    assert.equal(await b.tick(), false);
    assert.equal(await a.tick(), true, 'the holder renews');
    assert.equal(await db.redis.get(ks.leader), 'cp-a');
    await b.release();
    assert.equal(await db.redis.get(ks.leader), 'cp-a', 'a non-holder cannot release');
    await a.release();
    assert.equal(a.isLeader, false);
    assert.equal(await b.tick(), true, 'taken over after a release');
    // b stops renewing (a stalled process): its lease runs out in Redis and by its own clock.
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(b.isLeader, false);
    assert.equal(await a.tick(), true, 'taken over after expiry');
    assert.equal(await b.tick(), false);
  });

  it('a new leader places the jobs already pending without waiting for a wake-up', async () => {
    const ks = keyspace(testPrefix());
    await registerNode(db.redis, ks, {
      name: 'n1', address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process',
      cpus: 1, memoryBytes: 2 ** 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/srv/x', mountPath: '/cluster',
    });
    const [id] = await submitJobs(db.redis, ks, [{ spec: normalizeJobSpec({ command: ['true'] }) }]);
    // The wake-up went to a leader that is gone.
    await db.redis.del(ks.schedulerWake);
    // With no wake-up, a pass would otherwise come only after idleMs.
    const loops = startControlLoops({
      redis: db.redis, readers: new BlockingReaders(db.redis), ks, fs: { redis: db.redis, ks: fsKeyspace(ks.prefix) }, log: pino({ level: 'silent' }), registry: createRegistry('controlplane'),
      config: { token: 't', agentRedisUrl: db.server.url, nodeTimeoutMs: 60_000, id: 'cp-new' },
    }, { idleMs: 60_000 });
    try {
      const until = Date.now() + 5000;
      while ((await getJob(db.redis, ks, id))?.state !== 'scheduled') {
        assert.ok(Date.now() < until, 'the job was not placed');
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal((await getJob(db.redis, ks, id))?.node, 'n1');
    } finally {
      await loops.stop();
    }
  });
});
