/**
 * Translate daemon throughput, dedup and event-loop impact.
 *
 *   npx tsc -p . && node dist/bench/fsmeta-translate.js > section.md
 *
 * An export directory of SMALL 32 KiB files and BIG 4 MiB files (random data), half of each
 * copied once more under copies/. One full translation (startTranslator with watch: false),
 * then a second one with nothing changed. Baseline in the same run: reading and SHA-256 hashing
 * every file whole (the least any translation must do). Event-loop delay is sampled with
 * monitorEventLoopDelay during the translation: what the agent's own work would wait.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { TestRedis, testKeys } from '../test/helpers/redis.js';
import { connectRedis } from '../src/state/redis.js';
import { ChunkStore } from '../src/packetfs/index.js';
import { startTranslator } from '../src/translate/index.js';

const SMALL = 2000;
const BIG = 40;
const CONCURRENCY = Number(process.argv[2] ?? 2);
const root = mkdtempSync(join(tmpdir(), 'oswalk-bench-translate-'));
const exportDir = join(root, 'export');
mkdirSync(join(exportDir, 'small'), { recursive: true });
mkdirSync(join(exportDir, 'big'));
mkdirSync(join(exportDir, 'copies'));
for (let i = 0; i < SMALL; i++) writeFileSync(join(exportDir, 'small', `s${i}`), randomBytes(32 * 1024));
for (let i = 0; i < BIG; i++) writeFileSync(join(exportDir, 'big', `b${i}`), randomBytes(4 * 1024 * 1024));
for (let i = 0; i < SMALL / 2; i++) copyFileSync(join(exportDir, 'small', `s${i}`), join(exportDir, 'copies', `s${i}`));
for (let i = 0; i < BIG / 2; i++) copyFileSync(join(exportDir, 'big', `b${i}`), join(exportDir, 'copies', `b${i}`));

const files = ['small', 'big', 'copies'].flatMap((d) => readdirSync(join(exportDir, d)).map((f) => join(exportDir, d, f)));
const b0 = performance.now();
let total = 0;
for (const f of files) {
  const data = await readFile(f);
  total += data.length;
  createHash('sha256').update(data).digest();
}
const baseSecs = (performance.now() - b0) / 1000;

const server = await TestRedis.start();
const redis = connectRedis(server.url);
const ks = testKeys();
const store = new ChunkStore(join(root, 'store'), { log: pino({ level: 'silent' }) });
const log = pino({ level: 'silent' });

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
const t0 = performance.now();
let t = await startTranslator({ fs: { redis, ks }, node: 'n1', exportDir, store, log, watch: false, concurrency: CONCURRENCY });
await t.idle();
const secs = (performance.now() - t0) / 1000;
lag.disable();
const s1 = t.stats();
await t.close();

const r0 = performance.now();
t = await startTranslator({ fs: { redis, ks }, node: 'n1', exportDir, store, log, watch: false });
await t.idle();
const rescanMs = performance.now() - r0;
const s2 = t.stats();
await t.close();

const mb = (n: number) => (n / 2 ** 20).toFixed(1);
console.log(`## Translate daemon: throughput, dedup, event-loop delay (fsmeta)

${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0].model}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)}
(other work shared the machine). Command: \`npx tsc -p . && node dist/bench/fsmeta-translate.js\`

${files.length} files, ${mb(total)} MiB: ${SMALL} × 32 KiB and ${BIG} × 4 MiB of random data, half of each copied once more.

| | time | throughput |
| --- | --- | --- |
| baseline: read + SHA-256 of every file whole | ${baseSecs.toFixed(2)} s | ${(total / 2 ** 20 / baseSecs).toFixed(0)} MiB/s |
| first translation (chunks to the store, chunk lists, versions; concurrency ${CONCURRENCY}) | ${secs.toFixed(2)} s | ${(s1.bytesTranslated / 2 ** 20 / secs).toFixed(0)} MiB/s, ${(s1.filesTranslated / secs).toFixed(0)} files/s |
| second translation, nothing changed | ${(rescanMs / 1000).toFixed(2)} s | ${s2.filesTranslated} files read, ${s2.versions} versions |

- Stored ${mb(s1.newBytes)} MiB of new chunks for ${mb(s1.bytesTranslated)} MiB of files: dedup ratio ${s1.dedupRatio.toFixed(2)}
  (the copies cost no chunk bytes), ${s1.chunks} chunk references, ${s1.versions} versions.
- Event-loop delay during the first translation: p50 ${(lag.percentile(50) / 1e6).toFixed(1)} ms,
  p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms.
`);
redis.disconnect();
await server.stop();
rmSync(root, { recursive: true, force: true });
