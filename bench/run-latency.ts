/**
 * End-to-end latency of `oswalk run -- true`: the real CLI against a control plane and real
 * agents on this machine, each against what the same run costs locally, in the same run:
 *   oswalk run -- true                        vs  sh -c true spawned directly, node -e 0, and the CLI's own start-up (oswalk --version)
 *   oswalk run --image IMG -- true (docker)   vs  docker run --rm IMG true
 *   node dist/bench/run-latency.js [runs=30]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startAgent, type RunningAgent } from '../src/agent/index.js';
import { createRuntime } from '../src/agent/runtime/index.js';
import { makeControlPlaneCertificates } from '../src/cli/certs.js';
import { startControlPlane } from '../src/controlplane/index.js';
import { OSWALK_BIN } from '../test/helpers/cli.js';
import { TEST_IMAGE, ensureDocker, ensureTestImage, stopDockerIfStarted } from '../test/helpers/docker.js';
import { TestRedis, freePort } from '../test/helpers/redis.js';
import { table, writeSection } from './report.js';

const RUNS = Number(process.argv[2] ?? 30);
const TOKEN = 'bench-token';

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: 'ignore', env });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** Interleaved, so drift in the machine's load hits every case alike. */
async function measure(cases: { name: string; once: () => Promise<number> }[]): Promise<(string | number)[][]> {
  const times = cases.map(() => [] as number[]);
  for (const c of cases) await c.once(); // warm-up
  for (let i = 0; i < RUNS; i++) for (const [k, c] of cases.entries()) times[k].push(await c.once());
  return cases.map((c, k) => [c.name, RUNS, pct(times[k], 50).toFixed(1), pct(times[k], 99).toFixed(1)]);
}

const redis = await TestRedis.start();
const dir = mkdtempSync(join(tmpdir(), 'oswalk-bench-run-'));
// Over TLS with a cluster CA, as `oswalk up` and `cluster init` serve the API.
const certs = await makeControlPlaneCertificates(dir, ['127.0.0.1'], 'bench');
const cp = await startControlPlane({ redisUrl: redis.url, token: TOKEN, tls: { cert: certs.cert, key: certs.key }, host: '127.0.0.1', port: await freePort() });
const log = pino({ level: 'warn' });
const agents: RunningAgent[] = [];
const agent = async (name: string, runtime: 'process' | 'docker') => {
  const stateDir = join(dir, name);
  agents.push(await startAgent({
    node: name, controlPlane: cp.url, ca: { pem: certs.caCert, source: 'bench' }, token: TOKEN, runtime: createRuntime(runtime, { stateDir, logger: log }),
    exportDir: join(stateDir, 'export'), stateDir, mount: false, listen: { host: '127.0.0.1', port: 0 }, log,
  }));
};
const env = { ...process.env, OSWALK_API: cp.url, OSWALK_TOKEN: TOKEN, OSWALK_CA_CERT: certs.paths.ca.cert, OSWALK_LOG_LEVEL: 'warn' };
try {
  await agent('metal', 'process');
  const rows = await measure([
    { name: '`sh -c true`, spawned locally (baseline)', once: () => timed('sh', ['-c', 'true']) },
    { name: '`node -e 0` (baseline: what Node itself costs to start, the floor of a Node CLI)', once: () => timed(process.execPath, ['-e', '0']) },
    { name: '`oswalk --version` (the CLI\'s start-up alone)', once: () => timed(process.execPath, [OSWALK_BIN, '--version'], env) },
    { name: '`oswalk run --node-selector oswalk.dev/node=metal -- true`', once: () => timed(process.execPath, [OSWALK_BIN, 'run', '--node-selector', 'oswalk.dev/node=metal', '--', 'true'], env) },
  ]);
  let notes = 'The process runtime, one agent on this machine; the CLI submits, streams the output and exits with the job\'s code.';
  const docker = await ensureDocker();
  if (docker.ok) {
    await ensureTestImage();
    await agent('box', 'docker');
    rows.push(...await measure([
      { name: `\`docker run --rm ${TEST_IMAGE} true\` (baseline)`, once: () => timed('docker', ['run', '--rm', TEST_IMAGE, 'true']) },
      { name: `\`oswalk run --image ${TEST_IMAGE} -- true\` (docker runtime)`, once: () => timed(process.execPath, [OSWALK_BIN, 'run', '--image', TEST_IMAGE, '--node-selector', 'oswalk.dev/node=box', '--', 'true'], env) },
    ]));
    await stopDockerIfStarted();
  } else {
    notes += ` Docker rows skipped: ${docker.reason}.`;
  }
  writeSection('run-latency', 'End-to-end latency of `oswalk run -- true`', `node dist/bench/run-latency.js ${RUNS}`,
    `${table(['case', 'runs', 'p50 ms', 'p99 ms'], rows)}\n\n${notes}`);
} finally {
  for (const a of agents) await a.stop();
  await cp.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
