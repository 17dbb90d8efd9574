import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { keyspace } from '../../src/state/keys.js';
import { isRevoked, recordIssuedCertificate, revokeNodeCertificates, watchRevokedCertificates } from '../../src/state/certs.js';
import { ScriptError } from '../../src/state/scripts.js';

describe('node certificates: the record of those issued, and the revocation list', () => {
  const db = useTestRedis();

  it('revokes every unexpired certificate of a node and no other node\'s; the serial is one number however it is written', async () => {
    const ks = keyspace(testPrefix());
    const now = Date.now();
    await recordIssuedCertificate(db.redis, ks, { node: 'n1', serial: '00AB12', notAfter: now + 60_000 });
    await recordIssuedCertificate(db.redis, ks, { node: 'n1', serial: 'cd34', notAfter: now + 120_000, renewedFrom: 'ab12' });
    await recordIssuedCertificate(db.redis, ks, { node: 'n1', serial: 'ee', notAfter: now - 1 });
    await recordIssuedCertificate(db.redis, ks, { node: 'n2', serial: 'ff01', notAfter: now + 60_000 });
    const revoked = await revokeNodeCertificates(db.redis, ks, 'n1', 'the test');
    assert.deepEqual(revoked, [{ serial: 'ab12', notAfter: now + 60_000 }, { serial: 'cd34', notAfter: now + 120_000 }], 'the expired one is not listed');
    assert.deepEqual(await Promise.all(['AB12', '0cd34', 'ee', 'ff01'].map((s) => isRevoked(db.redis, ks, s))), [true, true, false, false]);
    const { revokedAt, ...entry } = JSON.parse((await db.redis.hget(ks.revokedCerts, 'ab12'))!) as { revokedAt: number };
    assert.deepEqual(entry, { node: 'n1', notAfter: now + 60_000, by: 'the test' });
    assert.ok(revokedAt >= now && revokedAt <= Date.now(), `revoked at ${revokedAt}`);
    assert.equal(await db.redis.exists(ks.nodeCerts('n1')), 0);
    assert.deepEqual(await revokeNodeCertificates(db.redis, ks, 'n1', 'the test'), [], 'nothing left to revoke');
    // A renewal asked with a revoked certificate is not recorded.
    await assert.rejects(recordIssuedCertificate(db.redis, ks, { node: 'n1', serial: '99', notAfter: now + 60_000, renewedFrom: 'CD34' }),
      (err: unknown) => err instanceof ScriptError && err.code === 'REVOKED' && err.detail === 'cd34');
    assert.equal(await db.redis.exists(ks.nodeCerts('n1')), 0);
  });

  it('drops a revoked certificate from the list once it has expired, at the next revocation', async () => {
    const ks = keyspace(testPrefix());
    const notAfter = Date.now() + 50;
    await recordIssuedCertificate(db.redis, ks, { node: 'short', serial: '01', notAfter });
    await revokeNodeCertificates(db.redis, ks, 'short', 'the test');
    assert.equal(await db.redis.get(ks.revokedCertsSeq), '1');
    await until('the certificate\'s end', async () => Date.now() > notAfter);
    await recordIssuedCertificate(db.redis, ks, { node: 'other', serial: '02', notAfter: Date.now() + 60_000 });
    await revokeNodeCertificates(db.redis, ks, 'other', 'the test');
    assert.deepEqual((await db.redis.hkeys(ks.revokedCerts)).sort(), ['2']);
    assert.equal(await db.redis.get(ks.revokedCertsSeq), '2');
  });

  it('an agent\'s watch reads the list at start and again when it changes', async () => {
    const ks = keyspace(testPrefix());
    await recordIssuedCertificate(db.redis, ks, { node: 'early', serial: 'a1', notAfter: Date.now() + 60_000 });
    await revokeNodeCertificates(db.redis, ks, 'early', 'the test');
    const seen: string[][] = [];
    const watch = watchRevokedCertificates(db.redis, ks, { log: pino({ level: 'silent' }), everyMs: 20, onChange: (s) => seen.push([...s].sort()) });
    try {
      await watch.ready;
      assert.ok(watch.has('A1'), 'revoked before the watch began');
      assert.ok(!watch.has('b2'));
      await recordIssuedCertificate(db.redis, ks, { node: 'late', serial: 'b2', notAfter: Date.now() + 60_000 });
      await revokeNodeCertificates(db.redis, ks, 'late', 'the test');
      await until('the watch seeing the new revocation', async () => watch.has('B2'));
      assert.deepEqual(seen, [['a1'], ['a1', 'b2']], 'read again on a change only');
    } finally {
      watch.stop();
    }
  });
});
