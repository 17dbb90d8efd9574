/**
 * BlockingReaders (src/state/redis.ts) on a real redis-server: a connection given back is the
 * next taker's (no new connection per log follow or input pump), a blocking read given up is
 * cut short at once by unblock(), and a connection that broke or came back after close() is
 * never handed out again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { useTestRedis, testPrefix } from '../helpers/redis.js';
import { BlockingReaders } from '../../src/state/redis.js';

describe('blocking readers', () => {
  const db = useTestRedis();

  it('give() then take() hands out the same connection; unblock() ends a blocking read at once', async () => {
    const readers = new BlockingReaders(db.redis);
    const key = `${testPrefix()}stream`;
    try {
      const r = await readers.take();
      const t0 = Date.now();
      const read = r.conn.xread('BLOCK', 10_000, 'STREAMS', key, '$');
      // The read is on its way to redis-server before the unblock is.
      await new Promise((res) => setTimeout(res, 50));
      await readers.unblock(r);
      assert.equal(await read, null, 'the cut-short read returns nothing');
      assert.ok(Date.now() - t0 < 2000, `unblocked in ${Date.now() - t0} ms, not after the 10 s block`);
      readers.give(r);
      const again = await readers.take();
      assert.equal(again.id, r.id, 'the same connection, not a new one');
      // And it reads as a fresh one would.
      const next = again.conn.xread('BLOCK', 5000, 'STREAMS', key, '$');
      await new Promise((res) => setTimeout(res, 50));
      await db.redis.xadd(key, '*', 'f', 'v');
      const got = await next;
      assert.equal(got?.[0][1][0][1][1], 'v');
      readers.give(again);
    } finally {
      readers.close();
      await db.redis.del(key);
    }
  });

  it('a broken connection, or one given back after close(), is not handed out again', async () => {
    const readers = new BlockingReaders(db.redis);
    const a = await readers.take();
    // As a connection breaks: its server hangs up (ioredis then reconnects it, under a new id).
    const closed = once(a.conn, 'close');
    await db.redis.client('KILL', 'ID', String(a.id));
    await closed;
    readers.give(a);
    const b = await readers.take();
    assert.notEqual(b.id, a.id, 'a new connection in place of the broken one');
    readers.close();
    readers.give(b);
    await new Promise((res) => setTimeout(res, 50));
    assert.notEqual(b.conn.status, 'ready', 'given back after close(): disconnected');
  });
});
