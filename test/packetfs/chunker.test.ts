import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chunkStream, DEFAULT_CHUNKER, type Chunk } from '../../src/packetfs/index.js';
import { readShareTarball, slices } from './fixtures.js';
import { seededBytes } from '../helpers/seeded.js';

async function collect(src: AsyncIterable<Buffer>, opts = {}): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const c of chunkStream(src, opts)) out.push({ ...c, data: Buffer.from(c.data) });
  return out;
}

describe('FastCDC chunker', () => {
  const tar = readShareTarball();

  it('cuts real data into chunks within the bounds that reassemble to the input and are named by SHA-256', async () => {
    const chunks = await collect(slices(tar, 1 << 20));
    assert.ok(chunks.length > 20, `only ${chunks.length} chunks for ${tar.length} bytes`);
    chunks.slice(0, -1).forEach((c) => {
      assert.ok(c.size >= DEFAULT_CHUNKER.minSize && c.size <= DEFAULT_CHUNKER.maxSize, `chunk size ${c.size}`);
    });
    assert.ok(Buffer.concat(chunks.map((c) => c.data)).equals(tar));
    for (const c of chunks.slice(0, 20)) assert.equal(c.hash, createHash('sha256').update(c.data).digest('hex'));
    const mean = tar.length / chunks.length;
    assert.ok(mean > DEFAULT_CHUNKER.avgSize * 0.6 && mean < DEFAULT_CHUNKER.avgSize * 2, `mean chunk ${mean}`);
  });

  it('finds the same boundaries whatever the input buffer sizes', async () => {
    const ref = (await collect(slices(tar, 1 << 20))).map((c) => c.hash);
    for (const size of [4093, 65536 + 7, 5 << 20]) {
      assert.deepEqual((await collect(slices(tar, size))).map((c) => c.hash), ref, `buffers of ${size} bytes`);
    }
    const head = tar.subarray(0, 2 << 20);
    const tiny = (await collect(slices(head, 13))).map((c) => c.hash);
    assert.deepEqual(tiny, (await collect(slices(head, 1 << 20))).map((c) => c.hash));
  });

  it('changes only one or two chunks when one byte is inserted near the start', async () => {
    const shifted = Buffer.concat([tar.subarray(0, 5000), Buffer.from('!'), tar.subarray(5000)]);
    const a = await collect(slices(tar, 1 << 20));
    const b = await collect(slices(shifted, 1 << 20));
    const known = new Set(a.map((c) => c.hash));
    const fresh = b.filter((c) => !known.has(c.hash));
    assert.ok(fresh.length >= 1 && fresh.length <= 2, `${fresh.length} new chunks of ${b.length}`);
  });

  it('chunks random data with the maximum as the only forced cut, and one-byte and empty inputs', async () => {
    const rnd = seededBytes('chunker-random', 32 << 20);
    const chunks = await collect(slices(rnd, 1 << 20));
    assert.ok(Buffer.concat(chunks.map((c) => c.data)).equals(rnd));
    const { minSize, maxSize } = DEFAULT_CHUNKER;
    assert.ok(chunks.length >= rnd.length / maxSize && chunks.length <= rnd.length / minSize, `${chunks.length} chunks`);
    assert.ok(chunks.slice(0, -1).every((c) => c.size >= minSize && c.size <= maxSize));
    assert.deepEqual(await collect(slices(Buffer.alloc(0), 10)), []);
    const one = await collect(slices(Buffer.from('x'), 10));
    assert.equal(one.length, 1);
    assert.equal(one[0].size, 1);
    assert.equal(one[0].hash, createHash('sha256').update('x').digest('hex'));
  });

  it('turns long runs of zeros (sparse files) into identical maximum-size chunks', async () => {
    const zeros = Buffer.alloc(3 * DEFAULT_CHUNKER.maxSize);
    const chunks = await collect(slices(zeros, 1 << 20));
    assert.equal(new Set(chunks.map((c) => c.hash)).size, 1);
    assert.equal(chunks[0].size, DEFAULT_CHUNKER.maxSize);
  });

  it('keeps memory bounded on a long stream (1 GiB generated on the fly)', async () => {
    const block = seededBytes('chunker-stream', 4 << 20);
    async function* gen(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 256; i++) yield Buffer.from(block);
    }
    let total = 0;
    let peak = 0;
    for await (const c of chunkStream(gen())) {
      total += c.size;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    assert.equal(total, 1 << 30);
    assert.ok(peak < 600 << 20, `rss peaked at ${peak >> 20} MiB`);
  });

  it('rejects chunker sizes that break the format rules', async () => {
    await assert.rejects(chunkStream(slices(tar, 10), { avgSize: 1000 }).next(), /power of two/);
  });
});
