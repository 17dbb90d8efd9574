import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { testKeys } from '../helpers/redis.js';
import type { FsKeyspace, Keyspace } from '../../src/state/keys.js';
import {
  addChunkListLocation, copiesIn, CopiesError, CopyPusher, chunkListHash, chunkListLocations, Pace, rankTargets, replicate, wantedCopies,
  type ChunkRef, type CopyPolicy, type StoragePolicy,
} from '../../src/packetfs/index.js';
import { TOKEN, useChunkCluster, type TestNode } from './cluster.js';
import { quiet } from './cluster.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** Deterministic bytes: the n-th block of a counter hashed, so every run stores the same chunks. */
function bytesOf(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i * 32 < size; i++) createHash('sha256').update(`${seed}:${i}`).digest().copy(out, i * 32);
  return out;
}

describe('copies: which files want how many copies, and where they go (pure)', () => {
  const policy: CopyPolicy = {
    copies: 2,
    replication: [{ prefix: 'shared/', copies: 'all' }, { prefix: 'shared/scratch/', copies: 1 }, { prefix: 'db', copies: 3 }],
  };
  const cases: [string, number | 'all'][] = [
    ['/a.txt', 2],
    ['/shared/x', 'all'],
    ['/shared/scratch/x', 1], // the longest prefix decides, also when it asks for fewer
    ['/shared', 2], // 'shared/' covers what is under the directory, not a file named shared
    ['/db.sqlite', 3],
    ['/dbx/y', 3],
    ['//shared/y', 'all'],
  ];
  for (const [path, want] of cases) {
    it(`${path} wants ${want}`, () => assert.equal(wantedCopies(policy, path), want));
  }
  it('copiesIn: never more than there are nodes, never fewer than one', () => {
    assert.equal(copiesIn(2, 3), 2);
    assert.equal(copiesIn(5, 3), 3);
    assert.equal(copiesIn('all', 4), 4);
    assert.equal(copiesIn(2, 1), 1);
    assert.equal(copiesIn('all', 0), 1);
  });

  const m = 'a'.repeat(64);
  const nodes = [
    { name: 'n1', zone: 'z1' }, { name: 'n2', zone: 'z1' }, { name: 'n3', zone: 'z2' }, { name: 'n4', zone: 'z2' }, { name: 'n5', zone: 'z3' },
  ];
  it('ranks every candidate that is not a holder, each the same on every call', () => {
    const r = rankTargets(m, 10, nodes, [{ name: 'n1', zone: 'z1' }]);
    assert.equal(r.length, 4);
    assert.ok(!r.includes('n1'));
    assert.deepEqual(rankTargets(m, 10, [...nodes].reverse(), [{ name: 'n1', zone: 'z1' }]), r, 'the order of the input does not matter');
  });
  it('puts the next copies in zones no holder is in first', () => {
    const r = rankTargets(m, 10, nodes, [{ name: 'n1', zone: 'z1' }]);
    assert.deepEqual(new Set(r.slice(0, 2).map((n) => nodes.find((x) => x.name === n)!.zone)), new Set(['z2', 'z3']));
    assert.equal(r[3], 'n2', 'the holder\'s own zone comes last when others exist');
  });
  it('passes over nodes without room for the file, and nodes without zones rank by score alone', () => {
    const r = rankTargets(m, 1000, [{ name: 'x', freeBytes: 999 }, { name: 'y', freeBytes: 1000 }, { name: 'z' }], []);
    assert.deepEqual([...r].sort(), ['y', 'z']);
  });
  it('spreads the choices over the nodes (rendezvous hashing, not always the same node)', () => {
    const firsts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const first = rankTargets(sha(Buffer.from(String(i))), 1, [{ name: 'a' }, { name: 'b' }, { name: 'c' }], [])[0];
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    for (const n of ['a', 'b', 'c']) assert.ok((firsts.get(n) ?? 0) > 60, `node ${n} was first ${firsts.get(n)} times in 300`);
  });
});

describe('copies between real chunk servers', () => {
  const cluster = useChunkCluster();
  let redis: Redis;
  before(() => {
    redis = cluster.redis();
  });
  const node = cluster.node;
  /** A file of `chunks` chunks stored on n and located there. */
  async function fileOn(n: TestNode, ks: Keyspace & FsKeyspace, seed: string, chunks = 3, size = 70_000): Promise<{ m: string; refs: ChunkRef[] }> {
    const refs: ChunkRef[] = [];
    for (let i = 0; i < chunks; i++) {
      const data = bytesOf(`${seed}:${i}`, size);
      await n.store.put(sha(data), data);
      refs.push({ hash: sha(data), size });
    }
    const m = chunkListHash(refs);
    await addChunkListLocation(redis, ks, m, n.name);
    return { m, refs };
  }
  const pusher = (n: TestNode, ks: Keyspace & FsKeyspace) => {
    const p = new CopyPusher({ store: n.store, redis, ks, fs: { redis, ks }, self: n.name, token: TOKEN, log: quiet, timeoutMs: 2000 });
    cluster.onClose(async () => p.close());
    return p;
  };

  it('a push makes the wanted copies: the peer holds every chunk in its own area and is located', async () => {
    const ks = testKeys();
    const [a, b, c] = [await node(ks, 'a'), await node(ks, 'b'), await node(ks, 'c')];
    const { m, refs } = await fileOn(a, ks, 'push');
    const holders = await pusher(a, ks).ensure(m, refs, 2);
    assert.equal(holders.length, 2);
    assert.deepEqual(await chunkListLocations(redis, ks, m), [...holders].sort());
    const peer = [b, c].find((n) => holders.includes(n.name))!;
    for (const r of refs) assert.equal(await peer.store.where(r.hash), 'own');
    assert.deepEqual(await pusher(a, ks).ensure(m, refs, 2), holders, 'enough copies: nothing more is sent');
    assert.equal((await pusher(a, ks).ensure(m, refs, 'all')).length, 3);
    for (const n of [a, b, c]) for (const r of refs) assert.equal(await n.store.where(r.hash), 'own');
  });

  it('a peer is sent only the chunks it lacks, and a cached copy is promoted rather than sent', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const { m, refs } = await fileOn(a, ks, 'dedup', 4);
    // b holds the first chunk already (another file had it) and has the second in its cache.
    await b.store.put(refs[0].hash, bytesOf('dedup:0', refs[0].size));
    await b.store.put(refs[1].hash, bytesOf('dedup:1', refs[1].size), { area: 'cache' });
    const sent: string[] = [];
    const p = pusher(a, ks);
    const orig = a.store.get.bind(a.store);
    a.store.get = (async (hash: string, size?: number) => {
      sent.push(hash);
      return orig(hash, size);
    }) as typeof a.store.get;
    await p.ensure(m, refs, 2);
    a.store.get = orig;
    assert.deepEqual(sent.sort(), [refs[2].hash, refs[3].hash].sort());
    assert.equal(await b.store.where(refs[1].hash), 'own');
  });

  it('a peer that does not answer is passed over; with no peer left the push fails with EIO and the holders say so', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const b = await node(ks, 'b');
    const c = await node(ks, 'c');
    await b.app.close(); // registered and ready, but its chunk server is gone (a killed agent before it is marked down)
    const { m, refs } = await fileOn(a, ks, 'dead');
    const holders = await pusher(a, ks).ensure(m, refs, 2);
    assert.deepEqual([...holders].sort(), ['a', 'c']);
    // `all` with a floor of two: the dead node is left to the replication pass, the push succeeds.
    const all = await fileOn(a, ks, 'dead-all');
    assert.deepEqual([...(await pusher(a, ks).ensure(all.m, all.refs, 'all', [], 2))].sort(), ['a', 'c']);
    await assert.rejects(pusher(a, ks).ensure(all.m, all.refs, 'all'), /2 of 3 copies/);
    await c.app.close();
    const other = await fileOn(a, ks, 'dead2');
    await assert.rejects(pusher(a, ks).ensure(other.m, other.refs, 2), (err: unknown) => err instanceof CopiesError && err.code === 'EIO' && /1 of 2 copies/.test(err.message));
    // Once the dead nodes are marked down, one copy is all the cluster can have: the push succeeds.
    await redis.hset(ks.node('b'), 'status', 'down');
    await redis.hset(ks.node('c'), 'status', 'down');
    assert.deepEqual(await pusher(a, ks).ensure(other.m, other.refs, 2), ['a']);
  });

  it('a chunk whose bytes do not match its name is refused, and a chunk list that does not match its hash', async () => {
    const ks = testKeys();
    const a = await node(ks, 'a');
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' };
    const data = bytesOf('x', 1000);
    const bad = await fetch(`${a.url}/v1/chunks/${'0'.repeat(64)}`, { method: 'PUT', headers: auth, body: new Uint8Array(data) });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /hash to/);
    assert.equal(await a.store.has('0'.repeat(64)), false);
    const good = await fetch(`${a.url}/v1/chunks/${sha(data)}`, { method: 'PUT', headers: auth, body: new Uint8Array(data) });
    assert.equal(good.status, 201);
    const hold = await fetch(`${a.url}/v1/holds/${'1'.repeat(64)}`, { method: 'POST', headers: auth, body: new Uint8Array(36) });
    assert.equal(hold.status, 400);
    assert.equal((await fetch(`${a.url}/v1/chunks/${sha(data)}`, { method: "PUT", body: new Uint8Array(data) })).status, 401);
  });
});

describe('the replication pass', () => {
  const cluster = useChunkCluster();
  let redis: Redis;
  before(() => {
    redis = cluster.redis();
  });
  const node = cluster.node;
  const policy = (p: Partial<StoragePolicy> = {}): StoragePolicy => ({ copies: 2, replication: [], rereplicateAfterMs: 0, rereplicateBytesPerSecond: 0, ...p });
  /** n files on `on`, one chunk each, under dir. */
  async function files(ks: Keyspace & FsKeyspace, on: TestNode, n: number, dir = '/f'): Promise<Map<string, { path: string; refs: ChunkRef[]; size: number }>> {
    const out = new Map<string, { path: string; refs: ChunkRef[]; size: number }>();
    for (let i = 0; i < n; i++) {
      const data = bytesOf(`${ks.prefix}:${dir}:${i}`, 10_000);
      await on.store.put(sha(data), data);
      const refs = [{ hash: sha(data), size: data.length }];
      const m = chunkListHash(refs);
      await addChunkListLocation(redis, ks, m, on.name);
      out.set(m, { path: `${dir}/${i}`, refs, size: data.length });
    }
    return out;
  }
  const pass = (n: TestNode, ks: Keyspace & FsKeyspace, fs: Map<string, { path: string; refs: ChunkRef[]; size: number }>, p: StoragePolicy, now?: number) => replicate({
    fetcher: n.fetcher(), redis, ks, fs: { redis, ks }, self: n.name, policy: p, pace: new Pace(0), log: quiet, ...(now ? { now } : {}),
    files: async function* () {
      for (const [chunkListHash, f] of fs) yield { path: f.path, chunkListHash, size: f.size };
    },
    loadChunkList: async (h) => fs.get(h)?.refs,
  });

  it('with three nodes and two copies wanted, exactly one of the other two pulls each file', async () => {
    const ks = testKeys();
    const [a, b, c] = [await node(ks, 'a'), await node(ks, 'b'), await node(ks, 'c')];
    const fs = await files(ks, a, 8);
    const [rb, rc] = await Promise.all([pass(b, ks, fs, policy()), pass(c, ks, fs, policy())]);
    assert.equal(rb.pulled + rc.pulled, 8, 'each file pulled once');
    assert.equal(rb.underFiles, 8, 'the pass saw them short of copies before it pulled');
    for (const m of fs.keys()) assert.equal((await chunkListLocations(redis, ks, m)).length, 2);
    const health = await redis.hgetall(ks.storageHealth);
    assert.equal(health.manifests, '8');
    // The pass after: nothing short of copies, nothing pulled.
    const again = await pass(a, ks, fs, policy());
    assert.deepEqual([again.underFiles, again.pulled], [0, 0]);
    assert.equal((await redis.hgetall(ks.storageHealth)).underFiles, '0');
  });

  it('a holder down for less than the grace period still counts; past it, its copies are made again', async () => {
    const ks = testKeys();
    const [a, b, c] = [await node(ks, 'a'), await node(ks, 'b'), await node(ks, 'c')];
    const fs = await files(ks, a, 4);
    await Promise.all([pass(b, ks, fs, policy()), pass(c, ks, fs, policy())]);
    // a goes down: its copies count for the grace period (a restart should not copy everything).
    const downAt = Date.now();
    await redis.hset(ks.node('a'), { status: 'down', lastHeartbeat: downAt });
    const grace = policy({ rereplicateAfterMs: 60_000 });
    const within = await Promise.all([pass(b, ks, fs, grace, downAt + 1000), pass(c, ks, fs, grace, downAt + 1000)]);
    assert.equal(within[0].underFiles, 4, 'short of live copies, shown as such');
    assert.equal(within[0].pulled + within[1].pulled, 0, 'but nothing copied within the grace period');
    const past = await Promise.all([pass(b, ks, fs, grace, downAt + 61_000), pass(c, ks, fs, grace, downAt + 61_000)]);
    assert.equal(past[0].pulled + past[1].pulled, 4);
    for (const m of fs.keys()) assert.deepEqual((await chunkListLocations(redis, ks, m)).filter((h) => h !== 'a'), ['b', 'c']);
  });

  it('a node being removed does not count as a holder: what only it holds is copied elsewhere; and rules per prefix apply', async () => {
    const ks = testKeys();
    const [a, b] = [await node(ks, 'a'), await node(ks, 'b')];
    const plain = await files(ks, a, 3, '/plain');
    const shared = await files(ks, a, 2, '/shared');
    const fs = new Map([...plain, ...shared]);
    const rules = policy({ copies: 1, replication: [{ prefix: 'shared/', copies: 'all' }] });
    const r = await pass(b, ks, fs, rules);
    assert.equal(r.pulled, 2, 'only the files under shared/ want a copy on every node');
    await redis.hset(ks.node('a'), 'removing', 'true');
    const r2 = await pass(b, ks, fs, rules);
    assert.equal(r2.pulled, 3, 'the files only the node being removed held are copied');
    for (const m of fs.keys()) assert.ok((await chunkListLocations(redis, ks, m)).includes('b'));
    assert.equal((await pass(a, ks, fs, rules)).pulled, 0, 'a node being removed takes no copies');
  });

  it('the pace holds pulls to the rate it is given', async () => {
    const p = new Pace(1_000_000);
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) await p.take(500_000);
    const ms = Date.now() - t0;
    // 3 MB at 1 MB/s with a burst of one second's worth: at least 2 s.
    assert.ok(ms >= 1900, `6 × 500 kB at 1 MB/s took ${ms} ms`);
  });
});
