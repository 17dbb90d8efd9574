/**
 * Bytes through a job's standard input and output: `oswalk run -i -- cat` between a producer and
 * a counter, against the same pipeline run locally, in the same run, each way a session's bytes
 * go (src/api/attach.ts). Memory is measured in every process on the path: the CLI (peak RSS,
 * from GNU time), the control plane and agent (one process here: peak RSS sampled), and
 * redis-server (used_memory_peak).
 *   node dist/bench/stdin-pipe.js [MiB=1024]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startAgent } from '../src/agent/index.js';
import { createRuntime } from '../src/agent/runtime/index.js';
import { makeControlPlaneCertificates } from '../src/cli/certs.js';
import { startControlPlane } from '../src/controlplane/index.js';
import { connectRedis } from '../src/state/redis.js';
import { OSWALK_BIN } from '../test/helpers/cli.js';
import { TestRedis, freePort } from '../test/helpers/redis.js';
import { table, writeSection } from './report.js';

const MIB = Number(process.argv[2] ?? 1024);
const TOKEN = 'bench-token';

/** A bash pipeline's wall time and its stderr (GNU time's report goes there). */
function pipeline(script: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('bash', ['-o', 'pipefail', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.once('exit', (code) => (code === 0 ? resolve({ ms: performance.now() - t0, out, err }) : reject(new Error(`${script} exited ${code}: ${err}`))));
  });
}

const redis = await TestRedis.start();
const dir = mkdtempSync(join(tmpdir(), 'oswalk-bench-stdin-'));
const certs = await makeControlPlaneCertificates(dir, ['127.0.0.1'], 'bench');
const cp = await startControlPlane({ redisUrl: redis.url, token: TOKEN, tls: { cert: certs.cert, key: certs.key }, host: '127.0.0.1', port: await freePort() });
const log = pino({ level: 'warn' });
const stateDir = join(dir, 'metal');
const agent = await startAgent({
  node: 'metal', controlPlane: cp.url, ca: { pem: certs.caCert, source: 'bench' }, token: TOKEN, runtime: createRuntime('process', { stateDir, logger: log }),
  exportDir: join(stateDir, 'export'), stateDir, mount: false, listen: { host: '127.0.0.1', port: 0 }, log,
});
const env = { ...process.env, OSWALK_API: cp.url, OSWALK_TOKEN: TOKEN, OSWALK_CA_CERT: certs.paths.ca.cert, OSWALK_LOG_LEVEL: 'warn' };
const bytes = MIB * 1024 * 1024;
const rate = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
const producer = `head -c ${bytes} /dev/zero`;
let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 50);
const probe = connectRedis(redis.url);
try {
  const local = await pipeline(`${producer} | cat | wc -c`, env);
  // The three ways a session's bytes go: the node's Unix socket (a client on the node's kernel),
  // its TLS port (a client on another machine), and the control plane and Redis (a client that
  // cannot reach the node, and every job with retries).
  const ways = [
    { how: '', what: 'straight to the agent, at its Unix socket (the client shares its kernel)' },
    { how: 'tls', what: 'straight to the agent, at its TLS port (as from another machine)' },
    { how: 'control-plane', what: 'through the control plane and Redis (input and log streams)' },
  ];
  const rows = [[`\`${producer} \\| cat \\| wc -c\` (baseline: a local pipe)`, 'a pipe', (local.ms / 1000).toFixed(2), rate(local.ms), '100 %', '']];
  for (const w of ways) {
    const r = await pipeline(`${producer} | /usr/bin/time -f '%M' ${process.execPath} ${OSWALK_BIN} run -i -- cat | wc -c`, { ...env, OSWALK_ATTACH: w.how });
    if (Number(r.out.trim()) !== bytes) throw new Error(`expected ${bytes} bytes, counted ${r.out.trim()}`);
    const cliKb = Number(r.err.trim().split('\n').pop());
    rows.push([`\`${producer} \\| oswalk run -i -- cat \\| wc -c\``, w.what, (r.ms / 1000).toFixed(2), rate(r.ms), `${((local.ms / r.ms) * 100).toFixed(1)} %`, `${(cliKb / 1024).toFixed(0)} MiB`]);
  }
  const redisPeak = Number(/used_memory_peak:(\d+)/.exec(await probe.info('memory'))?.[1]);
  const memory = `Peak memory besides the CLI's: the control plane and agent (one process here) ${(peakRss / 2 ** 20).toFixed(0)} MiB RSS, redis-server ${(redisPeak / 2 ** 20).toFixed(1)} MiB used at its peak.`;
  writeSection('stdin-pipe', `${MIB} MiB through \`oswalk run -i -- cat\``, `node dist/bench/stdin-pipe.js ${MIB}`,
    `${table(['pipeline', 'the bytes go', 'seconds', 'MB/s', 'of the local pipe', 'CLI peak RSS'], rows)}\n\n${memory} The process runtime, one agent on this machine, the API over HTTPS.`);
} finally {
  clearInterval(sampler);
  probe.disconnect();
  await agent.stop();
  await cp.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
