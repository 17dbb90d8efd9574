/**
 * Translation of many small files (issue 21's goal: 100,000 files of at most 4 KiB at 5,000
 * files/s), against what any translation of them must do, in the same run:
 *   the translator (startTranslator, watch: false): a durable chunk per file, its chunk list,
 *     its location and its version in Redis
 *   vs  reading and SHA-256 hashing every file whole, 64 at a time (the floor)
 *   UV_THREADPOOL_SIZE=64 node dist/bench/translate-small.js [files=20000]
 * (bench/run.sh sets the pool's size, as bin/oswalk.js does for the agent: the fsyncs of the
 * files in flight each take a thread of it).
 * The files are made once (file i holds "file i " up to 300 times: 7 B – 3.6 KiB, each its own
 * content) in a temporary directory; redis-server as the tests start it (appendfsync always).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { ChunkStore } from '../src/packetfs/index.js';
import { fsKeyspace } from '../src/state/keys.js';
import { connectRedis } from '../src/state/redis.js';
import { startTranslator } from '../src/translate/index.js';
import { TestRedis, testPrefix } from '../test/helpers/redis.js';
import { table, writeSection } from './report.js';

const FILES = Number(process.argv[2] ?? 20_000);
const root = mkdtempSync(join(tmpdir(), 'oswalk-bench-small-'));
const exportDir = join(root, 'export');
mkdirSync(join(exportDir, 'small'), { recursive: true });
for (let i = 0; i < FILES; i++) writeFileSync(join(exportDir, 'small', `f${i}`), `file ${i} `.repeat(1 + (i % 300)));

const server = await TestRedis.start();
const redis = connectRedis(server.url);
const seconds = (t0: number) => (performance.now() - t0) / 1000;
try {
  // The floor: every file read and hashed whole, as many at once as the translator keeps in flight.
  const names = await readdir(join(exportDir, 'small'));
  let t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < names.length) createHash('sha256').update(await readFile(join(exportDir, 'small', names[next++]))).digest('hex');
  }));
  const floor = seconds(t0);

  const cpu = async () => Number(/used_cpu_sys:([\d.]+)/.exec(await redis.info('cpu'))![1]) + Number(/used_cpu_user:([\d.]+)/.exec(await redis.info('cpu'))![1]);
  const cpu0 = await cpu();
  const store = new ChunkStore(join(root, 'store'), { log: pino({ level: 'silent' }) });
  t0 = performance.now();
  const t = await startTranslator({
    fs: { redis, ks: fsKeyspace(testPrefix()) }, node: 'n1', exportDir, store, log: pino({ level: 'silent' }), watch: false, stateFile: join(root, 'state.json'),
  });
  await t.idle();
  const translated = seconds(t0);
  const s = t.stats();
  await t.close();
  if (s.errors || s.filesTranslated !== FILES) throw new Error(`${s.filesTranslated} of ${FILES} files translated, ${s.errors} errors`);
  const redisCpuUs = ((await cpu()) - cpu0) * 1e6 / FILES;

  const rows = [
    ['read + SHA-256 of every file, 64 at a time (baseline: the floor)', FILES, floor.toFixed(2), Math.round(FILES / floor)],
    ['translation: chunk (fsync), chunk list, location and version per file', FILES, translated.toFixed(2), Math.round(FILES / translated)],
  ];
  writeSection('translate-small', `Translation of ${FILES.toLocaleString('en')} small files`, `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4} node dist/bench/translate-small.js ${FILES}`,
    `${table(['case', 'files', 's', 'files/s'], rows)}\n\nredis-server CPU per translated file: ${redisCpuUs.toFixed(0)} µs. Files of 7 B – 3.6 KiB, one directory; the goal (issue 21) is 5,000 files/s.`);
} finally {
  redis.disconnect();
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}
