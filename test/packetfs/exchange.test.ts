import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { freePort, testKeys } from '../helpers/redis.js';
import {
  ChunkUnavailableError, addChunkListLocation, chunkOffsets, registerPacketfsMetrics, chunkListHash, chunkListLocations,
  type ChunkRef,
} from '../../src/packetfs/index.js';
import { TOKEN, register, startFakePeer, useChunkCluster, type TestNode } from './cluster.js';
import { shareTarball } from './fixtures.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('chunk exchange', () => {
  const cluster = useChunkCluster();
  let redis: Redis;
  before(() => {
    redis = cluster.redis();
  });
  const node = cluster.node;
  async function chunkOn(n: TestNode, size = 100_000): Promise<{ ref: ChunkRef; data: Buffer }> {
    const data = randomBytes(size);
    await n.store.put(sha(data), data);
    return { ref: { hash: sha(data), size }, data };
  }

  it('serves chunks with a bearer token, HEAD, ranges, 404 and 400, and never a corrupt chunk', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const { ref, data } = await chunkOn(a, 5000);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const url = `${a.url}/v1/chunks/${ref.hash}`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { authorization: 'Bearer nope' } })).status, 401);
    const full = await fetch(url, { headers: auth });
    assert.equal(full.status, 200);
    assert.ok(Buffer.from(await full.arrayBuffer()).equals(data));
    const head = await fetch(url, { method: 'HEAD', headers: auth });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '5000');
    const part = await fetch(url, { headers: { ...auth, range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 100-199/5000');
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200)));
    assert.equal((await fetch(url, { headers: { ...auth, range: 'bytes=9000-' } })).status, 416);
    // A suffix range is the chunk's last bytes; a range that ends before it starts is no range.
    const tail = await fetch(url, { headers: { ...auth, range: 'bytes=-10' } });
    assert.equal(tail.headers.get('content-range'), 'bytes 4990-4999/5000');
    assert.ok(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(4990)));
    assert.equal((await fetch(url, { headers: { ...auth, range: 'bytes=5-2' } })).status, 416);
    // A Range it does not do (several ranges, another unit): the whole chunk, as RFC 9110 allows.
    for (const range of ['bytes=0-1,5-6', 'items=0-1']) {
      const whole = await fetch(url, { headers: { ...auth, range } });
      assert.equal(whole.status, 200, range);
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(data), range);
    }
    assert.equal((await fetch(`${a.url}/v1/chunks/${'0'.repeat(64)}`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${a.url}/v1/chunks/${'0'.repeat(64)}`, { method: 'HEAD', headers: auth })).status, 404);
    assert.equal((await fetch(`${a.url}/v1/chunks/NOTHEX`, { headers: auth })).status, 400);
    truncateSync(a.store.path(ref.hash), 10);
    assert.equal((await fetch(url, { headers: auth })).status, 404);
  });

  it('fetches from a holder, verifies, caches, and shares one fetch between concurrent readers', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const { ref, data } = await chunkOn(a);
    const m = chunkListHash([ref]);
    await addChunkListLocation(redis, ks, m, 'a');
    const f = b.fetcher();
    const [x, y, z] = await Promise.all([f.getChunk(ref, m), f.getChunk(ref, m), f.getChunk(ref, m)]);
    assert.ok(x.equals(data) && y.equals(data) && z.equals(data));
    assert.equal(f.stats().remoteFetches, 1);
    assert.equal(f.stats().sharedFetches, 2);
    await f.flush();
    assert.equal(await b.store.where(ref.hash), 'cache');
    await f.getChunk(ref, m);
    assert.equal(f.stats().memoryHits, 1);
    assert.equal(await b.fetcher().getChunk(ref, m).then(() => 'ok'), 'ok');
    // Without a chunk list hash every ready peer is asked.
    const other = await chunkOn(a);
    assert.ok((await f.getChunk(other.ref)).equals(other.data));
  });

  it('skips a peer that sends wrong bytes, one that is down and one that hangs', async () => {
    const ks = testKeys();
    const good = await node(ks, 'good');
    const me = await node(ks, 'me');
    const { ref, data } = await chunkOn(good);
    const liar = await startFakePeer(redis, ks, 'liar', (_req, res) => {
      res.writeHead(200, { 'content-length': ref.size }).end(randomBytes(ref.size));
    });
    cluster.onClose(liar.close);
    const hanger = await startFakePeer(redis, ks, 'hanger', () => undefined);
    cluster.onClose(hanger.close);
    await register(redis, ks, 'dead', `http://127.0.0.1:${await freePort()}`);
    const m = chunkListHash([ref]);
    for (const n of ['liar', 'hanger', 'dead', 'good']) await addChunkListLocation(redis, ks, m, n);
    // Each holder is asked first once: the good one comes after 0, 1, 2 and 3 bad ones.
    const bad = ['liar', 'hanger', 'dead'];
    for (let i = 0; i < 4; i++) {
      const first = [...bad.slice(0, i), 'good', ...bad.slice(i)];
      const f = me.fetcher({ hedgeMs: 200, timeoutMs: 1500, order: (names) => first.filter((n) => names.includes(n)) });
      const t0 = Date.now();
      assert.ok((await f.getChunk(ref, m)).equals(data));
      assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
      await f.flush();
      await me.store.evict(ref.hash);
    }
  });

  it('counts and avoids a lying peer', async () => {
    const ks = testKeys();
    const good = await node(ks, 'good');
    const me = await node(ks, 'me');
    const { ref } = await chunkOn(good);
    const liar = await startFakePeer(redis, ks, 'liar', (_req, res) => {
      res.writeHead(200, { 'content-length': ref.size }).end(randomBytes(ref.size));
    });
    cluster.onClose(liar.close);
    const m = chunkListHash([ref]);
    await addChunkListLocation(redis, ks, m, 'liar');
    await addChunkListLocation(redis, ks, m, 'good');
    const liarFirst = (names: string[]) => [...names].sort((a, b) => Number(b === 'liar') - Number(a === 'liar'));
    const f = me.fetcher({ hedgeMs: 5000, memoryBytes: 0, order: liarFirst });
    await f.getChunk(ref, m);
    await f.flush();
    await me.store.evict(ref.hash);
    assert.equal(f.stats().badPeerResponses, 1, 'the liar, asked first, sent wrong bytes');
    for (let i = 0; i < 5; i++) {
      await f.getChunk(ref, m);
      await f.flush();
      await me.store.evict(ref.hash);
    }
    assert.equal(f.stats().badPeerResponses, 1, 'the liar goes to the back of the queue');
  });

  it('fails fast with ChunkUnavailableError when no holder can deliver', async () => {
    const ks = testKeys();
    const me = await node(ks, 'me');
    const hanger = await startFakePeer(redis, ks, 'hanger', () => undefined);
    cluster.onClose(hanger.close);
    await register(redis, ks, 'dead', `http://127.0.0.1:${await freePort()}`);
    const ref = { hash: sha(Buffer.from('nobody has me')), size: 13 };
    const f = me.fetcher({ deadlineMs: 1500, timeoutMs: 1000, hedgeMs: 100 });
    const t0 = Date.now();
    await assert.rejects(f.getChunk(ref), (err: unknown) => err instanceof ChunkUnavailableError && err.code === 'EIO');
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
    const lonely = await node(testKeys(), 'lonely');
    await assert.rejects(lonely.fetcher().getChunk(ref), /no other live node/);
  });

  it('exports fetcher and store metrics for Prometheus', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const { ref } = await chunkOn(a, 12_345);
    const f = b.fetcher();
    await f.getChunk(ref);
    await f.getChunk(ref);
    await f.flush();
    const registry = new Registry();
    registerPacketfsMetrics(registry, { store: b.store, fetcher: f });
    const text = await registry.metrics();
    assert.match(text, /oswalk_packetfs_chunk_reads_total\{source="peer"\} 1/);
    assert.match(text, /oswalk_packetfs_chunk_reads_total\{source="memory"\} 1/);
    assert.match(text, /oswalk_packetfs_peer_bytes_total 12345/);
    assert.match(text, /oswalk_packetfs_store_bytes\{area="cache"\} 12345/);
    // The store's disk, as statfs(1) reports it for the store directory.
    const df = spawnSync('stat', ['-f', '-c', '%S %a %b', b.store.dir], { encoding: 'utf8' });
    const [bsize, bavail, blocks] = df.stdout.trim().split(' ').map(Number);
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('oswalk_packetfs_store_filesystem_size_bytes'), blocks * bsize);
    const avail = value('oswalk_packetfs_store_filesystem_avail_bytes');
    assert.ok(avail > 0 && Math.abs(avail - bavail * bsize) < 64 << 20, `avail ${avail}, stat -f says ${bavail * bsize}`);
  });

  it('prefetches chunks ahead of a sequential reader', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const refs = [];
    for (let i = 0; i < 10; i++) refs.push((await chunkOn(a, 20_000)).ref);
    const m = chunkListHash(refs);
    await addChunkListLocation(redis, ks, m, 'a');
    const f = b.fetcher();
    await f.prefetch(refs, m, 3);
    assert.equal(f.stats().remoteFetches, 10);
    for (const r of refs) await f.getChunk(r, m);
    assert.equal(f.stats().memoryHits, 10);
    assert.equal(f.stats().remoteFetches, 10);
    // A prefetch that cannot be served does not reject: the reader's own getChunk reports it.
    await f.prefetch([{ hash: sha(Buffer.from('absent')), size: 6 }], m);
  });

  it('reads byte ranges across chunk boundaries and reads ahead', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const put = await a.store.putFile(shareTarball());
    const m = chunkListHash(put.chunks);
    await addChunkListLocation(redis, ks, m, 'a');
    const bytes = readFileSync(shareTarball());
    const f = b.fetcher();
    const file = { chunks: put.chunks, offsets: chunkOffsets(put.chunks), chunkListHash: m };
    const b0 = put.chunks[0].size;
    for (const [pos, len] of [[0, 100], [b0 - 10, 20], [b0 - 5, put.chunks[1].size + 10], [bytes.length - 7, 100], [bytes.length, 10], [12345, 0]]) {
      assert.ok((await f.readRange(file, pos, len)).equals(bytes.subarray(pos, Math.min(bytes.length, pos + len))), `read ${len} at ${pos}`);
    }
    let pos = 0;
    while (pos < 3 * b0) {
      assert.ok((await f.readRange(file, pos, 131072, 2)).equals(bytes.subarray(pos, pos + 131072)));
      pos += 131072;
    }
    assert.ok(f.stats().memoryHits > 0);
  });

  it('evicts fetched chunks beyond cacheBytes, least recently used first, never owned ones', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const owned = await chunkOn(b, 50_000);
    const refs = [];
    for (let i = 0; i < 6; i++) refs.push((await chunkOn(a, 100_000)).ref);
    const f = b.fetcher({ cacheBytes: 350_000 });
    for (const r of refs.slice(0, 3)) await f.getChunk(r);
    await f.getChunk(refs[0]);
    for (const r of refs.slice(3)) await f.getChunk(r);
    await f.flush();
    assert.ok(f.stats().cacheBytes <= 350_000);
    assert.equal(await b.store.has(refs[0].hash), false);
    assert.equal(await b.store.has(refs[1].hash), false);
    assert.equal(await b.store.has(refs[5].hash), true);
    assert.equal(await b.store.where(owned.ref.hash), 'own');
    // A restarted fetcher finds the cache again.
    const g = b.fetcher({ cacheBytes: 350_000 });
    await g.init();
    assert.equal(g.stats().cacheCount, f.stats().cacheCount);
  });

  it('counts chunks read without it (the mount\'s FUSE threads) as just used, for eviction', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const refs = [];
    for (let i = 0; i < 4; i++) refs.push((await chunkOn(a, 100_000)).ref);
    const f = b.fetcher({ cacheBytes: 350_000 });
    for (const r of refs.slice(0, 3)) await f.getChunk(r);
    f.used([refs[0]]);
    await f.getChunk(refs[3]);
    await f.flush();
    assert.equal(await b.store.has(refs[0].hash), true);
    assert.equal(await b.store.has(refs[1].hash), false);
  });

  it('re-fetches an owned chunk that went corrupt on disk back into the own area', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const data = randomBytes(30_000);
    const ref = { hash: sha(data), size: data.length };
    await a.store.put(ref.hash, data);
    await b.store.put(ref.hash, data);
    writeFileSync(join(b.store.dir, 'x'), '');
    truncateSync(b.store.path(ref.hash), 100);
    const f = b.fetcher();
    assert.ok((await f.getChunk(ref)).equals(data));
    assert.equal(await b.store.where(ref.hash), 'own');
  });

  it('keeps chunk list locations in a Redis set and reports its memory per entry', async () => {
    const ks = testKeys();
    const m = sha(Buffer.from('chunk list'));
    assert.equal(await addChunkListLocation(redis, ks, m, 'n2'), true);
    assert.equal(await addChunkListLocation(redis, ks, m, 'n1'), true);
    assert.equal(await addChunkListLocation(redis, ks, m, 'n1'), false);
    assert.deepEqual(await chunkListLocations(redis, ks, m), ['n1', 'n2']);
    const bytes = Number(await redis.call('MEMORY', 'USAGE', ks.chunkListLocations(m)));
    assert.ok(bytes > 0 && bytes < 400, `a one-node location set takes ${bytes} bytes`);
    await assert.rejects(addChunkListLocation(redis, ks, 'nope', 'n1'), /chunk list hash/);
  });
});
