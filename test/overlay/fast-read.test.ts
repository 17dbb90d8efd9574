import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { ChunkStore, type ChunkRef } from '../../src/packetfs/index.js';
import { fastReads, type FastReadBinding, type FastReadStats } from '../../src/overlay/fast-read.js';
import { chunkCrc, sealWith } from '../packetfs/fixtures.js';
import { Rng } from '../faults/schedule.js';
import { seededBytes } from '../helpers/seeded.js';

const require = createRequire(import.meta.url);

/** The patched fuse-native addon; oswalk_fast_read_pread runs the FUSE threads' read path on this thread. */
interface Addon extends FastReadBinding {
  oswalk_fast_read_pread(fh: number, buf: Buffer, position: number): number;
}
const addon = require('node-gyp-build')(dirname(require.resolve('fuse-native/package.json'))) as Addon;

/** What a FUSE read of `len` bytes at `pos` would return: the bytes, or null when JavaScript would answer. */
function pread(fh: number, pos: number, len: number): Buffer | null {
  const buf = Buffer.alloc(len);
  const n = addon.oswalk_fast_read_pread(fh, buf, pos);
  return n < 0 ? null : buf.subarray(0, n);
}

/** A new store in a temp directory holding one file of pseudo-random bytes (the same every run), cut into at least minChunks chunks. */
async function storeWithFile(prefix: string, size: number, minChunks: number): Promise<{ root: string; store: ChunkStore; data: Buffer; chunks: ChunkRef[] }> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const store = new ChunkStore(root, { log: pino({ level: 'silent' }) });
  const data = seededBytes(prefix, size);
  writeFileSync(join(root, 'src.bin'), data);
  const { chunks } = await store.putFile(join(root, 'src.bin'));
  assert.ok(chunks.length >= minChunks, `several chunks (${chunks.length})`);
  return { root, store, data, chunks };
}

describe('reads on the FUSE threads (patches/oswalk-fast-read.c)', () => {
  let root: string;
  let store: ChunkStore;
  let data: Buffer;
  let chunks: ChunkRef[];
  const reads = () => fastReads(addon, root);

  before(async () => {
    ({ root, store, data, chunks } = await storeWithFile('oswalk-fast-read-', 9 << 20, 4));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('serves a handle\'s reads from verified local chunks: sequential, across chunk boundaries, at random, up to the end', () => {
    const fr = reads();
    const before = fr.stats();
    assert.equal(fr.add(101, chunks), true);
    const step = 128 * 1024;
    const whole = Buffer.concat(Array.from({ length: Math.ceil(data.length / step) }, (_, i) => pread(101, i * step, step)!));
    assert.ok(whole.equals(data), 'sequential 128 KiB reads give the file');
    let boundary = 0;
    for (const c of chunks.slice(0, -1)) {
      boundary += c.size;
      assert.ok(pread(101, boundary - 100, 300)!.equals(data.subarray(boundary - 100, boundary + 200)), `across the boundary at ${boundary}`);
    }
    const rng = new Rng(50);
    for (let i = 0; i < 50; i++) {
      const pos = rng.int(0, data.length - 1);
      const len = rng.int(1, 200_000);
      assert.ok(pread(101, pos, len)!.equals(data.subarray(pos, pos + len)), `${len} bytes at ${pos}`);
    }
    assert.equal(pread(101, data.length - 10, 4096)!.length, 10, 'short at the end');
    assert.equal(pread(101, data.length + 5, 4096)!.length, 0, 'nothing past the end');
    const after = fr.stats();
    assert.ok(after.bytes - before.bytes >= data.length);
    assert.ok(after.chunkLoads - before.chunkLoads >= chunks.length);
    fr.drop(101);
    assert.equal(pread(101, 0, 10), null, 'a dropped handle goes to JavaScript');
  });

  it('serves an empty file, and knows nothing of handles it was not given', () => {
    const fr = reads();
    assert.equal(fr.add(102, []), true);
    assert.equal(pread(102, 0, 4096)!.length, 0);
    fr.drop(102);
    assert.equal(pread(103, 0, 4096), null);
  });

  it('leaves to JavaScript a chunk that is not in the store or does not match its hash, and serves the others', async () => {
    const fr = reads();
    // Fixed bytes, so that there is a good chunk after the bad two every run.
    const other = seededBytes('fast-read-other', 12 << 20);
    writeFileSync(join(root, 'other.bin'), other);
    const { chunks: oc } = await store.putFile(join(root, 'other.bin'));
    assert.ok(oc.length >= 4, `${oc.length} chunks`);
    unlinkSync(store.path(oc[1].hash));
    const corrupt = Buffer.from(other.subarray(oc[0].size + oc[1].size, oc[0].size + oc[1].size + oc[2].size));
    corrupt[100] ^= 1;
    writeFileSync(store.path(oc[2].hash), corrupt);
    const fallbacks = fr.stats().fallbacks;
    assert.equal(fr.add(104, oc), true);
    assert.ok(pread(104, 0, 4096)!.equals(other.subarray(0, 4096)));
    assert.equal(pread(104, oc[0].size + 10, 4096), null, 'absent chunk');
    assert.equal(pread(104, oc[0].size - 10, 4096), null, 'a read that reaches into the absent chunk');
    assert.equal(pread(104, oc[0].size + oc[1].size + 10, 4096), null, 'corrupt chunk');
    const lastAt = other.length - oc[oc.length - 1].size;
    assert.ok(pread(104, lastAt, 4096)!.equals(other.subarray(lastAt, lastAt + 4096)));
    assert.equal(fr.stats().fallbacks - fallbacks, 3);
    fr.drop(104);
  });

  it('keeps several handles apart, a new plan for a handle replacing the old one', () => {
    const fr = reads();
    const small = [chunks[0]];
    assert.equal(fr.add(105, chunks), true);
    assert.equal(fr.add(105 + 1024, small), true); // the same hash bucket
    assert.equal(pread(105 + 1024, chunks[0].size, 10)!.length, 0, 'one chunk long');
    assert.equal(pread(105, chunks[0].size, 10)!.length, 10);
    assert.equal(fr.add(105, small), true);
    assert.equal(pread(105, chunks[0].size, 10)!.length, 0, 'the new plan');
    fr.drop(105);
    fr.drop(105 + 1024);
  });

  it('gives every reader the right bytes while readers on several threads share a handle and its plan is dropped and given again', async () => {
    // Small chunks, far more than a handle keeps: loads, read-ahead and evictions all the time.
    const small = new ChunkStore(join(root, 'small'), { log: pino({ level: 'silent' }), chunker: { minSize: 16 << 10, avgSize: 32 << 10, maxSize: 128 << 10 } });
    const { chunks: many } = await small.putFile(join(root, 'src.bin'));
    assert.ok(many.length > 200, `${many.length} chunks`);
    const fr = fastReads(addon, join(root, 'small'));
    const fh = 106;
    const add = () => fr.add(fh, many);
    add();
    // Each worker calls the read path as a FUSE thread would: half read in order (read-ahead), half at random.
    const code = `
      const { workerData: w, parentPort } = require('node:worker_threads');
      const addon = require(w.addon);
      const data = Buffer.from(w.data);
      const r = { bad: 0, served: 0, fell: 0 };
      let pos = 0;
      let x = w.seed; // xorshift32: the same reads every run
      const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 4294967296);
      for (let i = 0; i < w.reads; i++) {
        if (w.random) pos = Math.floor(next() * data.length);
        else pos = (pos + 131072) % data.length;
        const buf = Buffer.alloc(w.random ? 1 + Math.floor(next() * 262144) : 131072);
        const n = addon.oswalk_fast_read_pread(w.fh, buf, pos);
        if (n < 0) { r.fell++; continue; }
        r.served++;
        const want = data.subarray(pos, pos + buf.length);
        if (n !== want.length || !buf.subarray(0, n).equals(want)) r.bad++;
      }
      parentPort.postMessage(r);`;
    const addonPath = require('node-gyp-build').path(dirname(require.resolve('fuse-native/package.json'))) as string;
    const results = Array.from({ length: 4 }, (_, i) => new Promise<{ bad: number; served: number; fell: number }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { addon: addonPath, data, fh, reads: 1500, random: i % 2 === 1, seed: 0x9e3779b9 + i } });
      w.once('message', resolve);
      w.once('error', reject);
    }));
    let running = true;
    const churn = (async () => {
      while (running) {
        await new Promise((r) => setTimeout(r, 3));
        fr.drop(fh);
        add();
      }
    })();
    const all = await Promise.all(results);
    running = false;
    await churn;
    fr.drop(fh);
    assert.deepEqual(all.map((r) => r.bad), [0, 0, 0, 0]);
    assert.ok(all.every((r) => r.served > 0), JSON.stringify(all));
  });

  it('frees the chunks it held once every handle is dropped', async () => {
    const deadline = Date.now() + 5000;
    while (reads().stats().memoryBytes > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(reads().stats().memoryBytes, 0);
  });
});

describe('how the FUSE threads check a chunk they load (patches/oswalk-chunk-check.c)', () => {
  let root: string;
  let store: ChunkStore;
  let data: Buffer;
  let chunks: ChunkRef[];
  let nextFh = 300;
  const reads = () => fastReads(addon, root);
  const crcOf = (hash: string): number | null => chunkCrc(store.path(hash));
  /** Reads the whole file through a new plan; the check counters it moved. */
  const readAll = async (): Promise<{ crc: number; sha: number; loads: number; ok: boolean }> => {
    const fr = reads();
    // Loaders still busy with read-ahead of an earlier test's dropped plan would count here.
    for (let last = '', now = JSON.stringify(fr.stats()); last !== now; last = now, now = JSON.stringify(fr.stats())) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const before: FastReadStats = fr.stats();
    const fh = nextFh++;
    fr.add(fh, chunks);
    const got = pread(fh, 0, data.length);
    fr.drop(fh);
    const after = fr.stats();
    return { crc: after.crcChecks - before.crcChecks, sha: after.shaChecks - before.shaChecks, loads: after.chunkLoads - before.chunkLoads, ok: got !== null && got.equals(data) };
  };

  before(async () => {
    ({ root, store, data, chunks } = await storeWithFile('oswalk-chunk-check-', 6 << 20, 3));
  });
  after(() => {
    delete process.env.OSWALK_VERIFY_READS;
    rmSync(root, { recursive: true, force: true });
  });

  it('checks the chunks the store wrote by the CRC-32 they carry, hashing none of them again', async () => {
    let at = 0;
    for (const c of chunks) {
      assert.equal(crcOf(c.hash), crc32(data.subarray(at, at + c.size)), `CRC of chunk at ${at}`);
      at += c.size;
    }
    const r = await readAll();
    assert.ok(r.ok, 'the file read back');
    assert.deepEqual([r.crc, r.sha], [chunks.length, 0]);
    assert.equal(r.loads, chunks.length);
  });

  it('checks a chunk file without a CRC by SHA-256, and records its CRC for the next read', async () => {
    const c = chunks[1];
    const p = store.path(c.hash);
    writeFileSync(`${p}.new`, readFileSync(p));
    renameSync(`${p}.new`, p);
    assert.equal(crcOf(c.hash), null);
    const first = await readAll();
    assert.ok(first.ok);
    assert.deepEqual([first.crc, first.sha], [chunks.length - 1, 1]);
    assert.equal(crcOf(c.hash), crc32(data.subarray(chunks[0].size, chunks[0].size + c.size)));
    const second = await readAll();
    assert.deepEqual([second.crc, second.sha], [chunks.length, 0]);
  });

  it('checks good bytes under a wrong CRC by SHA-256, serves them and corrects the CRC', async () => {
    const c = chunks[2];
    await sealWith(store.path(c.hash), Buffer.from('not these bytes'));
    assert.notEqual(crcOf(c.hash), crc32(readFileSync(store.path(c.hash))));
    const r = await readAll();
    assert.ok(r.ok);
    assert.equal(r.sha, 1);
    assert.equal(crcOf(c.hash), crc32(readFileSync(store.path(c.hash))));
  });

  it('leaves to JavaScript a chunk whose bytes changed in place under their CRC (they fail both checks)', () => {
    const c = chunks[0];
    const fd = openSync(store.path(c.hash), 'r+');
    writeSync(fd, Buffer.from([data[4096] ^ 0xff]), 0, 1, 4096);
    closeSync(fd);
    assert.notEqual(crcOf(c.hash), null, 'the CRC is still there');
    const fr = reads();
    const fh = nextFh++;
    fr.add(fh, chunks);
    assert.equal(pread(fh, 0, 8192), null);
    assert.ok(pread(fh, c.size, 4096)!.equals(data.subarray(c.size, c.size + 4096)), 'the next chunk is served');
    fr.drop(fh);
    const fd2 = openSync(store.path(c.hash), 'r+');
    writeSync(fd2, Buffer.from([data[4096]]), 0, 1, 4096);
    closeSync(fd2);
  });

  it('checks every chunk by SHA-256 with OSWALK_VERIFY_READS=sha256', async () => {
    process.env.OSWALK_VERIFY_READS = 'sha256';
    try {
      const r = await readAll();
      assert.ok(r.ok);
      assert.deepEqual([r.crc, r.sha], [0, chunks.length]);
    } finally {
      delete process.env.OSWALK_VERIFY_READS;
    }
  });
});
