/**
 * Translation throughput: a 1 GiB file chunked, hashed and written into a fresh chunk store
 * (ChunkStore.putFile, every chunk fsynced), against `sha256sum` of the same file in the same
 * run, the file in the page cache for both. Goal: putFile ≥ 70% of sha256sum. Rounds are
 * interleaved (sha256sum, then each pipeline) and the best round counts, because the
 * machine is shared and its load varies during a run. putFile is also run with smaller and
 * larger chunks: the per-chunk cost of the store (a file, an fsync, a rename) is what the
 * chunk-size choice trades against dedup.
 *
 *   npx tsc -p . && UV_THREADPOOL_SIZE=64 node dist/bench/packetfs-translate.js [sizeMiB] [rounds]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ChunkStore, chunkStream, DEFAULT_CHUNKER, type ChunkerOptions } from '../src/packetfs/index.js';
import { gbps, interleaved, table, writeSection } from './packetfs-report.js';

const mib = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'oswalk-bench-translate-'));
try {
  const file = join(dir, 'data.bin');
  execFileSync('sh', ['-c', `head -c ${mib}M /dev/urandom > ${file} && cat ${file} > /dev/null`]);
  const bytes = mib * 2 ** 20;
  const time = async (f: () => Promise<unknown> | unknown): Promise<number> => {
    const t = performance.now();
    await f();
    return performance.now() - t;
  };
  const put = (chunker: ChunkerOptions) => async () => {
    const store = new ChunkStore(join(dir, 'store'), { log: pino({ level: 'silent' }), chunker });
    await store.init();
    const ms = await time(() => store.putFile(file));
    rmSync(store.dir, { recursive: true, force: true });
    execFileSync('sync');
    return ms;
  };
  const pipelines: [string, () => Promise<number>][] = [
    ['`sha256sum` (baseline)', () => time(() => execFileSync('sha256sum', [file]))],
    ['chunk + SHA-256 only (chunkStream, default sizes)', () => time(async () => {
      for await (const c of chunkStream(createReadStream(file, { highWaterMark: 1 << 20 }))) void c;
    })],
    ['putFile, default 512/1024/4096 KiB chunks', put(DEFAULT_CHUNKER)],
    ['putFile, 16/64/256 KiB chunks', put({ minSize: 16 << 10, avgSize: 64 << 10, maxSize: 256 << 10 })],
    ['putFile, 128/256/1024 KiB chunks', put({ minSize: 128 << 10, avgSize: 256 << 10, maxSize: 1024 << 10 })],
  ];
  const { runs, best } = await interleaved(pipelines, rounds, bytes);
  const rows = pipelines.map(([name], i) => [
    name, gbps(bytes, best[i]), `${Math.round((best[0] / best[i]) * 100)}%`, runs[i].map((m) => gbps(bytes, m)).join(', '),
  ]);
  writeSection('translate', `Translation throughput (${mib} MiB of random data)`,
    `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4} node dist/bench/packetfs-translate.js ${mib} ${rounds}`,
    `${table(['pipeline', 'GB/s (best round)', 'vs sha256sum', 'every round'], rows)}\n\n` +
    'Goal: putFile ≥ 70% of sha256sum. putFile writes every byte to disk with an fsync per chunk; sha256sum only reads the page cache.');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
