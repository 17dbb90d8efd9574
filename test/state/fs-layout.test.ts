import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { fsPrefixFor, keyspace } from '../../src/state/keys.js';
import { openFs } from '../../src/state/fs-layout.js';
import { connectRedis, type Redis } from '../../src/state/redis.js';

describe('where a cluster\'s files are kept (openFs)', () => {
  let a: TestRedis;
  let b: TestRedis;
  let ra: Redis;
  let rb: Redis;
  before(async () => {
    [a, b] = await Promise.all([TestRedis.start(), TestRedis.start()]);
    ra = connectRedis(a.url);
    rb = connectRedis(b.url);
  });
  after(async () => {
    ra.disconnect();
    rb.disconnect();
    await Promise.all([a.stop(), b.stop()]);
  });

  it('gives a new cluster\'s files a hash tag of their own, kept in the cluster hash', async () => {
    const ks = keyspace(testPrefix());
    const fs = await openFs(ra, ks);
    assert.equal(fs.ks.prefix, fsPrefixFor(ks.prefix));
    assert.equal(fs.redis, ra);
    assert.equal(await ra.hget(ks.cluster, 'fsPrefix'), fs.ks.prefix);
    assert.equal(await ra.get(fs.ks.fsOwner), await ra.hget(ks.cluster, 'id'));
    // Files arriving under the cluster's own prefix later change nothing: the choice is kept.
    await ra.set(`${ks.prefix}fs:d:/`, 'x');
    assert.equal((await openFs(ra, ks)).ks.prefix, fs.ks.prefix);
  });

  it('leaves the files of a cluster made before the split under the cluster\'s prefix', async () => {
    const ks = keyspace(testPrefix());
    await ra.hset(ks.cluster, 'id', 'old-cluster');
    await ra.set(`${ks.prefix}fs:p:/a`, 'a version');
    const fs = await openFs(ra, ks);
    assert.equal(fs.ks.prefix, ks.prefix);
    assert.equal(fs.ks.fsVersions('/a'), `${ks.prefix}fs:p:/a`);
    assert.equal(await ra.hget(ks.cluster, 'fsPrefix'), ks.prefix);
  });

  it('refuses to serve such a cluster\'s files from another Redis, saying what to do', async () => {
    const ks = keyspace(testPrefix());
    await ra.set(`${ks.prefix}fs:p:/a`, 'a version');
    await assert.rejects(openFs(ra, ks, rb), /files are kept in its own Redis under \{t-[0-9a-f]+\}:fs: .*run without --fs-redis/);
    assert.equal(await ra.hget(ks.cluster, 'fsPrefix'), null, 'nothing chosen');
  });

  it('puts a new cluster\'s files in the other Redis, and refuses a second cluster there under the same prefix', async () => {
    const prefix = testPrefix();
    const ks = keyspace(prefix);
    const fs = await openFs(ra, ks, rb);
    assert.equal(fs.redis, rb);
    assert.equal(await rb.get(fs.ks.fsOwner), await ra.hget(ks.cluster, 'id'));
    assert.equal(await ra.exists(fs.ks.fsOwner), 0);
    // Another cluster (its state in b) with the same prefix, pointed at the same files' Redis.
    await assert.rejects(openFs(rb, ks, rb), /the filesystem Redis holds another cluster's files under \{t-[0-9a-f]+-fs\}: \(cluster [0-9a-f]+, this is [0-9a-f]+\)/);
  });
});
