/**
 * Chunk fetch throughput between two nodes on loopback, each its own process as in a
 * cluster: a child process plays node A (a chunk server holding a file's chunks, and a
 * plain node:http server streaming the same file from disk); this process plays node B,
 * whose ChunkFetcher gets every chunk (HTTP, hash check, write into B's cache area) with
 * 1, 8 and 16 chunks in flight. Baselines in the same run: a plain client downloading the
 * file from A's plain server, discarding the bytes, and saving them to a file (a download
 * that writes, as the fetcher does; on a machine whose disk is busy that is what costs).
 *
 *   npx tsc -p . && UV_THREADPOOL_SIZE=64 node dist/bench/packetfs-fetch.js [sizeMiB] [rounds]
 */
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createServer, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { pino } from 'pino';
import { TestRedis, testKeys } from '../test/helpers/redis.js';
import { connectRedis } from '../src/state/redis.js';
import { registerNode } from '../src/state/nodes.js';
import { ChunkStore, addChunkListLocation, chunkRoutes, chunkListHash } from '../src/packetfs/index.js';
import { gbps, interleaved, table, timeFetchAll, writeSection } from './packetfs-report.js';

const log = pino({ level: 'silent' });
const token = 'bench';

/** Node A: serve the store and the plain file, print the two URLs, run until stdin closes. */
async function serve(storeDir: string, file: string, bytes: number): Promise<void> {
  const app = Fastify({ logger: false });
  // Holds are not part of this benchmark (node B only reads).
  await app.register(chunkRoutes, { store: new ChunkStore(storeDir, { log }), token, hold: async () => undefined });
  const chunkUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const plain = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': bytes });
    createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
  process.stdout.write(JSON.stringify({ chunkUrl, plainUrl: `http://127.0.0.1:${(plain.address() as { port: number }).port}/` }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 512);
  const rounds = Number(process.argv[3] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-bench-fetch-'));
  const redisServer = await TestRedis.start();
  const redis = connectRedis(redisServer.url);
  const child = { kill: () => undefined as unknown };
  try {
    const file = join(dir, 'data.bin');
    execFileSync('sh', ['-c', `head -c ${mib}M /dev/urandom > ${file}`]);
    const bytes = mib * 2 ** 20;
    const ks = testKeys();
    const { chunks } = await new ChunkStore(join(dir, 'a'), { log }).putFile(file);
    const m = chunkListHash(chunks);
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', join(dir, 'a'), file, String(bytes)], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.kill = () => proc.kill();
    const first = await new Promise<string>((resolve) => createInterface({ input: proc.stdout }).once('line', resolve));
    const { chunkUrl, plainUrl } = JSON.parse(first) as { chunkUrl: string; plainUrl: string };
    const reg = (name: string, agentUrl: string) => registerNode(redis, ks, {
      name, address: '127.0.0.1', agentUrl, labels: {}, runtime: 'process', cpus: 1, memoryBytes: 1 << 30,
      load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/tmp', mountPath: '/cluster',
    });
    await reg('a', chunkUrl);
    await reg('b', 'http://127.0.0.1:1');
    await addChunkListLocation(redis, ks, m, 'a');

    const plainDownload = (save: boolean) => () => new Promise<number>((resolve, reject) => {
      const t = performance.now();
      get(plainUrl, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => (n += d.length));
        const done = () => {
          if (save) rmSync(join(dir, 'download'), { force: true });
          return n === bytes ? resolve(performance.now() - t) : reject(new Error(`got ${n} bytes`));
        };
        if (save) res.pipe(createWriteStream(join(dir, 'download'))).on('finish', done).on('error', reject);
        else res.on('end', done);
      }).on('error', reject);
    });
    const fetchAll = (inFlight: number) => () => timeFetchAll({
      storeDir: join(dir, 'b'), fetcher: { redis, ks, fs: { redis, ks }, self: 'b', token, log, cacheBytes: 4 * bytes }, chunks, chunkListHash: m, bytes, inFlight,
    });
    const pipelines: [string, () => Promise<number>][] = [
      ['plain HTTP download of the file, bytes discarded (baseline)', plainDownload(false)],
      ['plain HTTP download of the file, saved to a file (baseline)', plainDownload(true)],
      ['ChunkFetcher, 1 chunk in flight (fetch + verify + store)', fetchAll(1)],
      ['ChunkFetcher, 8 chunks in flight (fetch + verify + store)', fetchAll(8)],
      ['ChunkFetcher, 16 chunks in flight (fetch + verify + store)', fetchAll(16)],
    ];
    execFileSync('sh', ['-c', `cat ${file} > /dev/null`]);
    const { runs, best } = await interleaved(pipelines, rounds, bytes);
    writeSection('fetch', `Chunk fetch throughput on loopback (${mib} MiB, ${chunks.length} chunks)`,
      `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4} node dist/bench/packetfs-fetch.js ${mib} ${rounds}`,
      table(['transfer (node A and node B are separate processes)', 'GB/s (best round)', 'vs plain download discarded / saved', 'every round'], pipelines.map(([name], i) => [
        name, gbps(bytes, best[i]), `${Math.round((best[0] / best[i]) * 100)}% / ${Math.round((best[1] / best[i]) * 100)}%`, runs[i].map((x) => gbps(bytes, x)).join(', '),
      ])));
  } finally {
    child.kill();
    redis.disconnect();
    await redisServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3], process.argv[4], Number(process.argv[5]));
else await main();
