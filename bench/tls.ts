/**
 * What TLS costs, with it against without, in the same run (issue 27):
 *   - job dispatch: `oswalk run -- true` end to end, the CLI against a control plane serving
 *     HTTPS (a new TLS handshake per command, as each CLI run makes one) and against one
 *     serving plain HTTP (--insecure-http), both on the same Redis with the same agent;
 *   - chunk exchange: a ChunkFetcher (8 chunks in flight; fetch, verify, store) getting a file's
 *     chunks from a node's chunk server over mutual TLS with node certificates, and from the same
 *     store served over plain HTTP with the token. Node A is a separate process, as in a cluster.
 *
 *   npx tsc -p . && UV_THREADPOOL_SIZE=64 node dist/bench/tls.js [runs=30] [sizeMiB=256] [rounds=3]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startAgent, type RunningAgent } from '../src/agent/index.js';
import { createRuntime } from '../src/agent/runtime/index.js';
import { makeControlPlaneCertificates } from '../src/cli/certs.js';
import { startControlPlane } from '../src/controlplane/index.js';
import { ChunkStore, addChunkListLocation, chunkRoutes, chunkListHash } from '../src/packetfs/index.js';
import { loadNodeTls, saveNodeTls } from '../src/packetfs/peer-tls.js';
import { registerNode } from '../src/state/nodes.js';
import { connectRedis } from '../src/state/redis.js';
import { clusterTokenOnly, createHttpServer } from '../src/util/http.js';
import { issueNodeCertificate, loadCaIfPresent, nodeCertificateRequest } from '../src/util/pki.js';
import { createRegistry } from '../src/metrics/index.js';
import { OSWALK_BIN } from '../test/helpers/cli.js';
import { TestRedis, freePort, testKeys, testPrefix } from '../test/helpers/redis.js';
import { gbps, interleaved, timeFetchAll } from './packetfs-report.js';
import { table, writeSection } from './report.js';

const TOKEN = 'bench-token';
const log = pino({ level: 'silent' });

/** Node A: the store served twice, over mutual TLS and over plain HTTP; prints both URLs, runs until stdin closes. */
async function serve(storeDir: string, stateDir: string): Promise<void> {
  const store = new ChunkStore(storeDir, { log });
  const tls = loadNodeTls(stateDir)!;
  const secure = createHttpServer({ log, registry: createRegistry('agent'), authenticate: clusterTokenOnly(TOKEN), tls: { key: tls.key, cert: tls.cert, ca: tls.ca } });
  await secure.register(chunkRoutes, { store, token: TOKEN, byCertificate: true, hold: async () => undefined });
  const plain = createHttpServer({ log, registry: createRegistry('agent'), authenticate: clusterTokenOnly(TOKEN) });
  await plain.register(chunkRoutes, { store, token: TOKEN, hold: async () => undefined });
  const tlsUrl = await secure.listen({ host: '127.0.0.1', port: 0 });
  const plainUrl = await plain.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(JSON.stringify({ tlsUrl, plainUrl }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

function timed(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { stdio: 'ignore', env });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`oswalk ${args.join(' ')} exited ${code}`))));
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 30);
  const mib = Number(process.argv[3] ?? 256);
  const rounds = Number(process.argv[4] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-bench-tls-'));
  const redisServer = await TestRedis.start();
  const redis = connectRedis(redisServer.url);
  const certs = await makeControlPlaneCertificates(dir, ['127.0.0.1'], 'bench');
  const ca = (await loadCaIfPresent(certs.paths.ca))!;
  const prefix = testPrefix();
  const secureCp = await startControlPlane({ redisUrl: redisServer.url, token: TOKEN, tls: { cert: certs.cert, key: certs.key }, ca, host: '127.0.0.1', port: await freePort(), prefix });
  const plainCp = await startControlPlane({ redisUrl: redisServer.url, token: TOKEN, tls: 'insecure-http', host: '127.0.0.1', port: await freePort(), prefix });
  let agent: RunningAgent | undefined;
  const child = { kill: () => undefined as unknown };
  try {
    // Dispatch: one agent, the two control planes in turn.
    const stateDir = join(dir, 'metal');
    agent = await startAgent({
      node: 'metal', controlPlane: secureCp.url, ca: { pem: certs.caCert, source: 'bench' }, token: TOKEN, runtime: createRuntime('process', { stateDir, logger: log }),
      exportDir: join(stateDir, 'export'), stateDir, mount: false, listen: { host: '127.0.0.1', port: 0 }, log,
    });
    const envFor = (api: string) => ({ ...process.env, OSWALK_API: api, OSWALK_TOKEN: TOKEN, OSWALK_CA_CERT: certs.paths.ca.cert, OSWALK_LOG_LEVEL: 'warn' });
    const cases = [
      { name: '`oswalk run -- true`, API over plain HTTP (--insecure-http; baseline)', env: envFor(plainCp.url) },
      { name: '`oswalk run -- true`, API over HTTPS (a TLS handshake per command)', env: envFor(secureCp.url) },
    ];
    const times = cases.map(() => [] as number[]);
    const args = [OSWALK_BIN, 'run', '--', 'true'];
    for (const c of cases) await timed(args, c.env);
    for (let i = 0; i < runs; i++) for (const [k, c] of cases.entries()) times[k].push(await timed(args, c.env));
    const dispatch = table(['job dispatch', 'runs', 'p50 ms', 'p99 ms', 'p50 vs plain HTTP'], cases.map((c, k) => [
      c.name, runs, pct(times[k], 50).toFixed(1), pct(times[k], 99).toFixed(1), `${(pct(times[k], 50) - pct(times[0], 50)).toFixed(1)} ms`,
    ]));
    await agent.stop();
    agent = undefined;

    // Chunk exchange: node A in a child process, node B here with a certificate of its own.
    const file = join(dir, 'data.bin');
    execFileSync('sh', ['-c', `head -c ${mib}M /dev/urandom > ${file}`]);
    const bytes = mib * 2 ** 20;
    const { chunks } = await new ChunkStore(join(dir, 'a'), { log }).putFile(file);
    const m = chunkListHash(chunks);
    for (const node of ['a', 'b']) {
      const req = await nodeCertificateRequest(node);
      saveNodeTls(join(dir, `${node}-state`), { key: req.key, cert: (await issueNodeCertificate(ca, req.csr, node, 86_400_000)).cert, ca: certs.caCert });
    }
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', join(dir, 'a'), join(dir, 'a-state')], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.kill = () => proc.kill();
    const { tlsUrl, plainUrl } = JSON.parse(await new Promise<string>((resolve) => createInterface({ input: proc.stdout }).once('line', resolve))) as { tlsUrl: string; plainUrl: string };
    const fetchFrom = (agentUrl: string) => async () => {
      const ks = testKeys();
      for (const [name, url] of [['a', agentUrl], ['b', 'http://127.0.0.1:1']]) {
        await registerNode(redis, ks, {
          name, address: '127.0.0.1', agentUrl: url, labels: {}, runtime: 'process', cpus: 1, memoryBytes: 1 << 30,
          load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/tmp', mountPath: '/cluster',
        });
      }
      await addChunkListLocation(redis, ks, m, 'a');
      return timeFetchAll({
        storeDir: join(dir, 'b'), fetcher: { redis, ks, fs: { redis, ks }, self: 'b', token: TOKEN, stateDir: join(dir, 'b-state'), log, cacheBytes: 4 * bytes },
        chunks, chunkListHash: m, bytes, inFlight: 8,
      });
    };
    const pipelines: [string, () => Promise<number>][] = [
      ['ChunkFetcher, 8 in flight, plain HTTP with the token (baseline)', fetchFrom(plainUrl)],
      ['ChunkFetcher, 8 in flight, mutual TLS with node certificates', fetchFrom(tlsUrl)],
    ];
    execFileSync('sh', ['-c', `cat ${file} > /dev/null`]);
    const { runs: each, best } = await interleaved(pipelines, rounds, bytes);
    const exchange = table(['chunk exchange (fetch + verify + store)', 'GB/s (best round)', 'vs plain HTTP', 'every round'], pipelines.map(([name], i) => [
      name, gbps(bytes, best[i]), `${Math.round((best[0] / best[i]) * 100)}%`, each[i].map((x) => gbps(bytes, x)).join(', '),
    ]));
    writeSection('tls', 'What TLS costs: job dispatch and chunk exchange, with it and without',
      `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4} node dist/bench/tls.js ${runs} ${mib} ${rounds}`,
      `${dispatch}\n\n${exchange}\n\nThe same machine, Redis, agent and store for both sides of each table, interleaved. TLS is Node's (OpenSSL), ECDSA P-256 certificates; chunk exchange over ${mib} MiB of random data (${chunks.length} chunks), node A a separate process.`);
  } finally {
    child.kill();
    await agent?.stop();
    await secureCp.close();
    await plainCp.close();
    redis.disconnect();
    await redisServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3], process.argv[4]);
else await main();
