import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { keyspace } from '../../src/state/keys.js';
import { LeaderLease } from '../../src/controlplane/leader.js';

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
});
