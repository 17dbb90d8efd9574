import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readlinkSync, renameSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync, unlinkSync, openSync, closeSync, ftruncateSync, writeSync, statSync, readFileSync, utimesSync, mkdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { pino } from 'pino';
import {
  ChunkNotFoundError, ChunkReadPool, DEFAULT_CHUNKER, ChunkStore, CorruptChunkError, FileChangedError, LiveChunker, StoreWriteError, chunkStream, decodeChunkList, encodeChunkList, chunkListHash,
} from '../../src/packetfs/index.js';
import { chunkCrc, readShareTarball, sealWith, shareTarball } from './fixtures.js';
import { seededBytes } from '../helpers/seeded.js';

const quiet = pino({ level: 'silent' });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Resolves shortly after this process opened the file: putFile has taken its first fstat
 * (a change before that is simply a different file to chunk) and is reading.
 */
async function opened(path: string): Promise<void> {
  for (;;) {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`) === path) return new Promise((r) => setTimeout(r, 50));
      } catch {
        // the fd closed while we looked
      }
    }
    await new Promise((r) => setImmediate(r));
  }
}

describe('ChunkStore', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'oswalk-pfs-store-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  const fresh = (name: string) => new ChunkStore(join(root, name), { log: quiet });

  it('putFile stores a real tarball, and a copy shifted by one inserted byte costs one or two chunks', async () => {
    const store = fresh('tar');
    const tar = shareTarball();
    const a = await store.putFile(tar);
    assert.equal(a.size, statSync(tar).size);
    const unique = new Map(a.chunks.map((c) => [c.hash, c.size]));
    assert.equal(a.newBytes, [...unique.values()].reduce((x, y) => x + y, 0));
    const st = await store.stats();
    assert.equal(st.count, new Set(a.chunks.map((c) => c.hash)).size);
    const data = readShareTarball();
    const shiftedPath = join(root, 'shifted.tar');
    writeFileSync(shiftedPath, Buffer.concat([data.subarray(0, 777), Buffer.from([0]), data.subarray(777)]));
    const b = await store.putFile(shiftedPath);
    assert.equal(b.size, a.size + 1);
    const newChunks = new Map(b.chunks.filter((c) => !unique.has(c.hash)).map((c) => [c.hash, c.size]));
    assert.ok(newChunks.size >= 1 && newChunks.size <= 2, `shifted copy has ${newChunks.size} new chunks`);
    assert.equal(b.newBytes, [...newChunks.values()].reduce((x, y) => x + y, 0));
    const again = await store.putFile(tar);
    assert.equal(again.newBytes, 0);
    assert.deepEqual(again.chunks, a.chunks);
    const rebuilt = Buffer.concat(await Promise.all(b.chunks.map((c) => store.get(c.hash))));
    assert.equal(sha(rebuilt), sha(readFileSync(shiftedPath)));
  });

  it('handles an empty file (zero chunks), a one-byte file and a sparse file', async () => {
    const store = fresh('small');
    const empty = join(root, 'empty');
    writeFileSync(empty, '');
    assert.deepEqual(await store.putFile(empty), { chunks: [], size: 0, newBytes: 0 });
    const one = join(root, 'one');
    writeFileSync(one, 'z');
    const r1 = await store.putFile(one);
    assert.deepEqual(r1.chunks, [{ hash: sha(Buffer.from('z')), size: 1 }]);
    const sparse = join(root, 'sparse');
    const fd = openSync(sparse, 'w');
    ftruncateSync(fd, 256 << 20);
    writeSync(fd, Buffer.from('middle'), 0, 6, 128 << 20);
    closeSync(fd);
    assert.ok(statSync(sparse).blocks * 512 < 1 << 20, 'the test file is really sparse');
    const r2 = await store.putFile(sparse);
    assert.equal(r2.size, 256 << 20);
    // one chunk of zeros, used over and over, and the one or two around the data
    assert.ok(r2.newBytes <= 3 * DEFAULT_CHUNKER.maxSize, `sparse file stored ${r2.newBytes} bytes`);
    assert.ok(new Set(r2.chunks.map((c) => c.hash)).size <= 4);
  });

  it('cuts a file of at most minSize bytes in one read, as the chunker cuts it, and every size around it the same', async () => {
    const chunker = { minSize: 4096, avgSize: 8192, maxSize: 16384 };
    const store = new ChunkStore(join(root, 'one-read'), { log: quiet, chunker });
    const data = seededBytes('store-one-read', 40_000);
    for (const size of [0, 1, 4095, 4096, 4097, 40_000]) {
      const p = join(root, `one-read-${size}`);
      writeFileSync(p, data.subarray(0, size));
      const want: { hash: string; size: number }[] = [];
      for await (const c of chunkStream((async function* () { yield data.subarray(0, size); })(), chunker)) want.push({ hash: c.hash, size: c.size });
      const got = await store.putFile(p);
      assert.deepEqual(got.chunks, want, `${size} bytes`);
      assert.equal(got.size, size);
      assert.ok(Buffer.concat(await Promise.all(got.chunks.map((c) => store.get(c.hash, c.size)))).equals(data.subarray(0, size)), `${size} bytes read back`);
    }
  });

  it('put checks the hash, is idempotent, and get verifies what it returns', async () => {
    const store = fresh('put');
    const data = randomBytes(1000);
    await assert.rejects(store.put(sha(Buffer.from('other')), data), CorruptChunkError);
    assert.equal(await store.put(sha(data), data), true);
    assert.equal(await store.put(sha(data), data), false);
    assert.ok((await store.get(sha(data))).equals(data));
    await assert.rejects(store.get('zz'), /64 lowercase hex/);
    assert.equal(readdirSync(join(store.dir, 'tmp')).length, 0);
  });

  it('writes every chunk read-only and carrying the CRC-32 of its bytes (own and cache area, put and putFile)', async () => {
    const store = fresh('crc');
    const a = randomBytes(5000);
    const b = randomBytes(7000);
    await store.put(sha(a), a);
    await store.put(sha(b), b, { area: 'cache' });
    writeFileSync(join(root, 'crc.bin'), randomBytes(3 << 20));
    const { chunks } = await store.putFile(join(root, 'crc.bin'));
    for (const [hash, area] of [[sha(a), 'own'], [sha(b), 'cache'], ...chunks.map((c) => [c.hash, 'own'] as const)] as const) {
      const p = store.path(hash, area);
      assert.equal(statSync(p).mode & 0o777, 0o444, p);
      assert.equal(chunkCrc(p), crc32(readFileSync(p)), p);
    }
  });

  it('a scrub gives good chunks whose CRC is missing or wrong their right one, keeping them read-only', async () => {
    const store = fresh('reseal');
    const [a, b, c] = [randomBytes(3000), randomBytes(4000), randomBytes(5000)];
    for (const x of [a, b, c]) await store.put(sha(x), x);
    // a: written before stores recorded CRCs (a new file, no attribute); b: a wrong CRC.
    const pa = store.path(sha(a));
    writeFileSync(`${pa}.old`, a, { mode: 0o444 });
    renameSync(`${pa}.old`, pa);
    assert.equal(chunkCrc(pa), null);
    const pb = store.path(sha(b));
    await sealWith(pb, c);
    assert.equal(chunkCrc(pb), crc32(c));
    const res = await store.scrub();
    assert.deepEqual([res.checked, res.corrupt, res.resealed], [3, [], 2]);
    for (const [x, p] of [[a, pa], [b, pb], [c, store.path(sha(c))]] as const) {
      assert.equal(chunkCrc(p), crc32(x));
      assert.equal(statSync(p).mode & 0o777, 0o444);
    }
    assert.equal((await store.scrub()).resealed, 0, 'nothing left to do');
  });

  it('records the CRC when run by an unprivileged user too (each chunk file writable by its owner until the CRC is on it)', (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to run a child as another user');
      return;
    }
    const dir = join(root, 'unprivileged');
    mkdirSync(dir);
    chmodSync(root, 0o755);
    execFileSync('chown', ['65534:65534', dir]);
    const storeModule = new URL('../../src/packetfs/store.js', import.meta.url).href;
    const sealModule = new URL('../../src/packetfs/chunk-seal.js', import.meta.url).href;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { ChunkStore } from ${JSON.stringify(storeModule)};
      import { sealedCrc } from ${JSON.stringify(sealModule)};
      import { createHash, randomBytes } from 'node:crypto';
      import { openSync, statSync } from 'node:fs';
      import { crc32 } from 'node:zlib';
      const store = new ChunkStore(${JSON.stringify(dir)});
      const data = randomBytes(10000);
      const hash = createHash('sha256').update(data).digest('hex');
      await store.put(hash, data);
      const p = store.path(hash);
      console.log(JSON.stringify({ uid: statSync(p).uid, mode: statSync(p).mode & 0o777, crc: sealedCrc(openSync(p, 'r')), want: crc32(data) }));
    `], { uid: 65534, gid: 65534, env: { ...process.env, OSWALK_LOG_LEVEL: 'silent' } }).toString();
    const r = JSON.parse(out.trim().split('\n').pop()!);
    assert.deepEqual(r, { uid: 65534, mode: 0o444, crc: r.want, want: r.want });
    assert.notEqual(r.crc, null);
  });

  it('keeps chunks from other local users: the store is 0700 whatever the umask, an old store too', async (t) => {
    const dir = join(root, 'private');
    chmodSync(root, 0o755);
    mkdirSync(dir, { mode: 0o755 });
    const old = process.umask(0);
    try {
      const store = fresh('private');
      const data = randomBytes(1000);
      await store.put(sha(data), data);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, 'cache')).mode & 0o777, 0o755, 'no world-writable directory under umask 0');
      if (process.getuid?.() !== 0) return t.skip('needs root to try as another user');
      assert.throws(() => execFileSync('cat', [store.path(sha(data))], { uid: 65534, gid: 65534, stdio: 'pipe' }), /Permission denied/);
    } finally {
      process.umask(old);
    }
  });

  it('quarantines a truncated or corrupted chunk, reports it and never serves it', async () => {
    const store = fresh('corrupt');
    const data = randomBytes(50_000);
    const h = sha(data);
    await store.put(h, data);
    const reported: string[] = [];
    store.on('corrupt', (e: { hash: string }) => reported.push(e.hash));
    truncateSync(store.path(h), 1000);
    await assert.rejects(store.get(h), (err: unknown) => err instanceof CorruptChunkError && err.hash === h);
    assert.deepEqual(reported, [h]);
    assert.equal(await store.has(h), false);
    assert.equal((await store.stats()).quarantined, 1);
    assert.deepEqual(reported, [h]);
    // A scrub finds bit rot before any reader does.
    const other = randomBytes(7000);
    await store.put(sha(other), other);
    const fd = openSync(store.path(sha(other)), 'r+');
    writeSync(fd, Buffer.from([0xff ^ other[100]]), 0, 1, 100);
    closeSync(fd);
    assert.deepEqual((await store.scrub()).corrupt, [sha(other)]);
    assert.equal(await store.has(sha(other)), false);
    // A fresh put of the right bytes heals it.
    await store.put(h, data);
    assert.ok((await store.get(h)).equals(data));
  });

  it('reads and verifies on its reader threads just as on the event loop: own, cache, corrupt, missing', async () => {
    const pool = new ChunkReadPool(2);
    try {
      const store = new ChunkStore(join(root, 'pool'), { log: quiet, readPool: pool });
      const own = randomBytes(300_000);
      const cached = randomBytes(5);
      await store.put(sha(own), own);
      await store.put(sha(cached), cached, { area: 'cache' });
      const got = await Promise.all([store.get(sha(own), own.length), store.get(sha(own)), store.get(sha(cached))]);
      assert.ok(got[0].equals(own) && got[1].equals(own) && got[2].equals(cached));
      await assert.rejects(store.get(sha(Buffer.from('absent'))), ChunkNotFoundError);
      const reported: string[] = [];
      store.on('corrupt', (e: { hash: string }) => reported.push(e.hash));
      truncateSync(store.path(sha(own)), 1000);
      await assert.rejects(store.get(sha(own), own.length), (err: unknown) => err instanceof CorruptChunkError && err.hash === sha(own));
      assert.deepEqual(reported, [sha(own)]);
      assert.equal(await store.has(sha(own)), false, 'quarantined');
      // An unreadable chunk is an error of its own, not "absent".
      mkdirSync(join(store.path(sha(cached), 'own')), { recursive: true });
      await assert.rejects(store.get(sha(cached)), /EISDIR/);
    } finally {
      await pool.close();
    }
  });

  it('leaves no page cache behind the chunks it writes and syncs, file or single chunk; a peer\'s copy in the cache area keeps it', async () => {
    const resident = (p: string) => Number(execFileSync('fincore', ['--bytes', '--raw', '--noheadings', '-o', 'RES', p], { encoding: 'utf8' }));
    const store = fresh('forget');
    const file = join(root, 'forget.bin');
    writeFileSync(file, randomBytes(6 << 20));
    const { chunks } = await store.putFile(file);
    assert.ok(chunks.length > 1);
    for (const c of chunks) assert.equal(resident(store.path(c.hash)), 0, `chunk ${c.hash} of ${c.size} bytes`);
    const one = randomBytes(300_000);
    await store.put(sha(one), one);
    assert.equal(resident(store.path(sha(one))), 0);
    const peer = randomBytes(300_000);
    await store.put(sha(peer), peer, { area: 'cache' });
    assert.ok(resident(store.path(sha(peer), 'cache')) > 0, 'not synced, so not dropped');
  });

  it('streams chunk files around the page cache, and reads them back the same on any filesystem', async () => {
    const pool = new ChunkReadPool(1);
    // Bytes of the file in the page cache (fincore); dd with iflag=nocache drops its clean pages.
    const resident = (p: string) => Number(execFileSync('fincore', ['--bytes', '--raw', '--noheadings', '-o', 'RES', p], { encoding: 'utf8' }));
    const shm = mkdtempSync('/dev/shm/oswalk-pfs-store-');
    try {
      // The disk's filesystem takes O_DIRECT; tmpfs before Linux 6.6 refuses it, and the reader falls back.
      for (const dir of [join(root, 'stream'), shm]) {
        const store = new ChunkStore(dir, { log: quiet, readPool: pool });
        for (const size of [1, 4096, 300_001, (3 << 20) + 5]) {
          const data = randomBytes(size);
          const h = sha(data);
          await store.put(h, data);
          execFileSync('dd', [`if=${store.path(h)}`, 'iflag=nocache', 'count=0', 'status=none']);
          assert.ok((await store.get(h, size, { streaming: true })).equals(data), `${dir}: ${size} bytes streamed`);
          if (dir !== shm) assert.equal(resident(store.path(h)), 0, `${size} bytes streamed left no page cache`);
          assert.ok((await store.get(h, size)).equals(data));
          assert.ok((await store.get(h, undefined, { streaming: true })).equals(data), 'size from fstat');
        }
        if (dir !== shm) {
          const data = randomBytes(70_000);
          await store.put(sha(data), data);
          execFileSync('dd', [`if=${store.path(sha(data))}`, 'iflag=nocache', 'count=0', 'status=none']);
          await store.get(sha(data));
          assert.ok(resident(store.path(sha(data))) > 0, 'a read that is not streaming goes through the page cache');
        }
        // A chunk file cut short is caught by its hash, streamed or not.
        const data = randomBytes(10_000);
        await store.put(sha(data), data);
        truncateSync(store.path(sha(data)), 5000);
        await assert.rejects(store.get(sha(data), data.length, { streaming: true }), CorruptChunkError);
      }
    } finally {
      await pool.close();
      rmSync(shm, { recursive: true, force: true });
    }
  });

  it('a live chunker given a file\'s bytes in order cuts the same chunks as putFile, and lets go on abort', async () => {
    const dir = join(root, 'live');
    const live = new LiveChunker(dir);
    try {
      const store = new ChunkStore(dir, { log: quiet });
      const data = Buffer.concat([randomBytes(9 << 20), Buffer.alloc(3 << 20), randomBytes(777)]);
      const f = live.open();
      // Writes that overlap in time, as FUSE callbacks do: each is taken in order at once.
      const writes = [];
      for (let off = 0; off < data.length; off += 131072) writes.push(f.write(data.subarray(off, off + 131072)));
      assert.equal(f.end, data.length);
      await Promise.all(writes);
      const got = await f.finish();
      const path = join(root, 'live-src.bin');
      writeFileSync(path, data);
      const whole = await store.putFile(path);
      assert.deepEqual(got.chunks, whole.chunks);
      assert.equal(got.size, data.length);
      assert.equal(whole.newBytes, 0, 'every chunk was already stored, durably, by the live chunker');
      for (const c of got.chunks) assert.ok(await store.has(c.hash));
      // Aborted with more bytes on their way than writers may have in flight: no answer ever
      // comes, and the bytes still count as consumed, so later files are not held back.
      const big = randomBytes(40 << 20);
      for (let round = 0; round < 2; round++) {
        const h = live.open();
        void h.write(big);
        h.abort();
      }
      const again = live.open();
      await again.write(big);
      const r = await again.finish();
      assert.equal(r.size, big.length);
      assert.deepEqual(Buffer.concat(await Promise.all(r.chunks.map((c) => store.get(c.hash, c.size)))), big);
    } finally {
      await live.close();
    }
  });

  it('reader and chunker threads keep a process alive while it awaits them, and never when idle', () => {
    // A child whose only pending work is a LiveChunker result, then a pooled read: it must wait
    // for both (exit 0 with the output), then exit by itself with the threads still up.
    const index = new URL('../../src/packetfs/index.js', import.meta.url).href;
    const dir = join(root, 'alive');
    const script = `
      import { ChunkReadPool, ChunkStore, LiveChunker } from ${JSON.stringify(index)};
      import { readFileSync, writeFileSync } from 'node:fs';
      const file = ${JSON.stringify(join(root, 'alive.bin'))};
      writeFileSync(file, Buffer.alloc(3 << 20, 7));
      const live = new LiveChunker(${JSON.stringify(dir)});
      const f = live.open();
      await f.write(readFileSync(file));
      const r = await f.finish();
      const store = new ChunkStore(${JSON.stringify(dir)}, { readPool: new ChunkReadPool(1) });
      const data = await store.get(r.chunks[0].hash, r.chunks[0].size);
      console.log(r.chunks.length, data.length);
    `;
    writeFileSync(join(root, 'alive.mjs'), script);
    const out = execFileSync(process.execPath, [join(root, 'alive.mjs')], { timeout: 20_000, env: { ...process.env, OSWALK_LOG_LEVEL: 'silent' } });
    assert.match(out.toString(), /^\d+ \d+\n$/);
  });

  it('gc deletes unreferenced chunks past the grace period and keeps live, young and concurrently re-put ones', async () => {
    const store = fresh('gc');
    const mk = () => randomBytes(10_000);
    const live = mk();
    const dead = mk();
    const young = mk();
    const raced = mk();
    for (const b of [live, dead, raced]) await store.put(sha(b), b);
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const b of [live, dead, raced]) utimesSync(store.path(sha(b)), old, old);
    await store.put(sha(young), young);
    // A put of `raced` runs while gc is reading the live set: the put must win.
    async function* liveSet(): AsyncGenerator<string> {
      yield sha(live);
      await store.put(sha(raced), raced);
      yield sha(randomBytes(8));
    }
    const res = await store.gc({ live: liveSet(), graceMs: 3600_000 });
    assert.equal(res.deleted, 1);
    assert.equal(res.freedBytes, dead.length);
    assert.equal(await store.has(sha(dead)), false);
    for (const b of [live, young, raced]) assert.ok((await store.get(sha(b))).equals(b));
  });

  it('gc racing many concurrent puts of the same chunks never loses one that a put reported as stored', async () => {
    const store = fresh('gc-race');
    const blobs = Array.from({ length: 200 }, () => randomBytes(2000));
    for (const b of blobs) await store.put(sha(b), b);
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const b of blobs) utimesSync(store.path(sha(b)), old, old);
    const reput = blobs.filter((_, i) => i % 2 === 0);
    const [gcRes] = await Promise.all([
      store.gc({ live: [], graceMs: 3600_000 }),
      (async () => {
        for (const b of reput) await store.put(sha(b), b);
      })(),
    ]);
    for (const b of reput) assert.ok((await store.get(sha(b))).equals(b), 'a re-put chunk must survive gc');
    assert.ok(gcRes.deleted >= blobs.length - reput.length);
    assert.equal(readdirSync(join(store.dir, 'tmp')).length, 0);
  });

  it('after a crash, removes stale temp files and puts back a chunk a dead gc had moved aside', async () => {
    const store = fresh('crash');
    const data = randomBytes(4000);
    await store.put(sha(data), data);
    const aside = join(store.dir, 'tmp', `gc.${sha(data)}.dead`);
    renameSync(store.path(sha(data)), aside);
    writeFileSync(join(store.dir, 'tmp', 'stale-write'), 'x');
    const old = new Date(Date.now() - 2 * 3600_000);
    utimesSync(aside, old, old);
    utimesSync(join(store.dir, 'tmp', 'stale-write'), old, old);
    writeFileSync(join(store.dir, 'tmp', 'young-write'), 'x');
    const reopened = new ChunkStore(store.dir, { log: quiet });
    assert.ok((await reopened.get(sha(data))).equals(data));
    assert.deepEqual(readdirSync(join(store.dir, 'tmp')), ['young-write']);
  });

  it('fails putFile cleanly when the file is truncated or unlinked while it is read', async () => {
    const store = fresh('vanish');
    const p = join(root, 'big');
    writeFileSync(p, randomBytes(96 << 20));
    const pending = store.putFile(p);
    await opened(p);
    truncateSync(p, 1 << 20);
    await assert.rejects(pending, FileChangedError);
    writeFileSync(p, randomBytes(96 << 20));
    const pending2 = store.putFile(p);
    await opened(p);
    unlinkSync(p);
    await assert.rejects(pending2, (err: unknown) => err instanceof FileChangedError && /deleted/.test(err.message));
    await assert.rejects(store.putFile(join(root, 'never-was')), FileChangedError);
    assert.equal(readdirSync(join(store.dir, 'tmp')).length, 0);
    // Whatever was written is whole: every chunk file verifies.
    for await (const c of store.list('own')) await store.get(c.hash);
  });

  it('reports ENOSPC clearly, removes the temp file and stays consistent (1 MiB tmpfs)', async (t) => {
    const mnt = join(root, 'tmpfs');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      rmdirSync(mnt);
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    try {
      const store = new ChunkStore(join(mnt, 'store'), { log: quiet });
      const small = randomBytes(300_000);
      await store.put(sha(small), small);
      const big = randomBytes(900_000);
      await assert.rejects(store.put(sha(big), big), (err: unknown) => err instanceof StoreWriteError && err.code === 'ENOSPC' && /cannot write chunk/.test(err.message));
      assert.equal(readdirSync(join(store.dir, 'tmp')).length, 0);
      assert.equal(await store.has(sha(big)), false);
      assert.ok((await store.get(sha(small))).equals(small));
      const f = join(root, 'toobig');
      writeFileSync(f, randomBytes(3 << 20));
      await assert.rejects(store.putFile(f), StoreWriteError);
      assert.equal(readdirSync(join(store.dir, 'tmp')).length, 0);
      for await (const c of store.list('own')) await store.get(c.hash);
    } finally {
      execFileSync('umount', [mnt]);
      rmdirSync(mnt);
    }
  });
});

describe('chunk lists', () => {
  it('round-trips, is compact, and its hash is stable', async () => {
    const chunks = [];
    for await (const c of chunkStream((async function* () { yield readShareTarball(); })())) chunks.push({ hash: c.hash, size: c.size });
    const enc = encodeChunkList(chunks);
    assert.ok(enc.length <= 1 + chunks.length * 35);
    assert.deepEqual(decodeChunkList(enc), chunks);
    assert.equal(chunkListHash(chunks), sha(enc));
    assert.deepEqual(decodeChunkList(encodeChunkList([])), []);
    assert.deepEqual(decodeChunkList(encodeChunkList([{ hash: 'a'.repeat(64), size: 2 ** 40 }])), [{ hash: 'a'.repeat(64), size: 2 ** 40 }]);
  });

  it('names the fault in bad input', () => {
    assert.throws(() => encodeChunkList([{ hash: 'xy', size: 1 }]), /chunk 0 hash/);
    assert.throws(() => encodeChunkList([{ hash: 'a'.repeat(64), size: 0 }]), /invalid size 0/);
    const enc = encodeChunkList([{ hash: 'b'.repeat(64), size: 300 }]);
    assert.throws(() => decodeChunkList(enc.subarray(0, 20)), /truncated/);
    assert.throws(() => decodeChunkList(Buffer.from([9])), /format version 9/);
  });
});

