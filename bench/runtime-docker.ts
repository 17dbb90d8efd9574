/**
 * Start latency of a trivial job (`true`) through the runtimes, each against its baseline
 * measured in the same run on the same machine, interleaved so drift hits both alike:
 *   docker runtime (inspect image, create, attach, start, wait, remove)  vs  `docker run --rm IMAGE true`
 *   process runtime (record, cgroup, spawn, wait, cleanup)               vs  a plain node spawn
 * Writes its section of BENCHMARKS.md.
 *   node dist/bench/runtime-docker.js [--runs 30] [--process-runs 200]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { DockerRuntime } from '../src/agent/runtime/docker.js';
import { ProcessRuntime } from '../src/agent/runtime/process.js';
import type { Runtime } from '../src/agent/runtime/types.js';
import { ensureDocker, ensureTestImage, stopDockerIfStarted, TEST_IMAGE } from '../test/helpers/docker.js';
import { writeSection } from './report.js';
import { heldFence } from '../test/helpers/fence.js';

const run = promisify(execFile);
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('--runs', 30);
const PROCESS_RUNS = arg('--process-runs', 200);
const logger = pino({ level: 'silent' });

type Case = { name: string; once: () => Promise<void> };

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** Runs the cases interleaved, after two warm-up rounds; ms per case, sorted. */
async function measure(cases: Case[], runs: number): Promise<Map<string, number[]>> {
  const out = new Map(cases.map((c) => [c.name, [] as number[]]));
  for (let i = 0; i < runs + 2; i++) {
    for (const c of cases) {
      const ms = await timed(c.once);
      if (i >= 2) out.get(c.name)!.push(ms);
    }
  }
  for (const v of out.values()) v.sort((a, b) => a - b);
  return out;
}

let seq = 0;
/** Held for the whole run: the guard's cost is part of every start measured. */
const fence = heldFence(true);
function viaRuntime(rt: Runtime, image?: string): () => Promise<void> {
  return async () => {
    const h = await rt.start({ cluster: 'bench', fenceDir: fence.dir, jobId: `bench-${++seq}`, attempt: 1, node: 'bench', image, command: ['true'], env: {} }, () => {});
    const r = await h.wait();
    if (r.exitCode !== 0) throw new Error(`true failed: ${JSON.stringify(r)}`);
  };
}

function plainSpawn(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.once('error', reject);
    c.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

function table(results: Map<string, number[]>, baseline: string): string[] {
  const base = quantile(results.get(baseline)!, 0.5);
  const rows = ['| case | runs | p50 ms | p99 ms | p50 vs baseline |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const [name, v] of results) {
    const p50 = quantile(v, 0.5);
    rows.push(`| ${name} | ${v.length} | ${p50.toFixed(2)} | ${quantile(v, 0.99).toFixed(2)} | ${name === baseline ? 'baseline' : `${(p50 / base).toFixed(2)}×`} |`);
  }
  return rows;
}

async function main(): Promise<void> {
  const lines = [
    '## Runtimes: start latency of `true`',
    '',
    `Date: ${new Date().toISOString()}  `,
    `Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}  `,
    `Command: \`npx tsc -p . && node dist/bench/runtime-docker.js --runs ${RUNS} --process-runs ${PROCESS_RUNS}\`  `,
    `Load average at start: ${loadavg()[0].toFixed(1)} (other work on the machine inflates both sides alike, as the cases are interleaved)`,
    '',
  ];

  const stateDir = await mkdtemp(join(tmpdir(), 'oswalk-bench-'));
  const limited = new ProcessRuntime({ stateDir, logger });
  const kind = (await limited.limits()).kind;
  const unlimited = new ProcessRuntime({ stateDir, logger, limits: 'none' });
  const proc = await measure([
    { name: 'node spawn (baseline)', once: plainSpawn },
    { name: 'process runtime, limits none', once: viaRuntime(unlimited) },
    { name: `process runtime, limits ${kind}`, once: viaRuntime(limited) },
  ], PROCESS_RUNS);
  await rm(stateDir, { recursive: true, force: true });
  lines.push('### Process runtime', '', ...table(proc, 'node spawn (baseline)'), '');

  const docker = await ensureDocker();
  if (!docker.ok) {
    lines.push('### Docker runtime', '', `Not measured: ${docker.reason}`, '');
  } else {
    await ensureTestImage();
    const info = (await run('docker', ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
    const rt = new DockerRuntime({ logger });
    const res = await measure([
      { name: '`docker run --rm` CLI (baseline)', once: async () => void (await run('docker', ['run', '--rm', TEST_IMAGE, 'true'])) },
      { name: 'docker runtime (dockerode)', once: viaRuntime(rt, TEST_IMAGE) },
    ], RUNS);
    lines.push('### Docker runtime', '', `Engine ${info}, image ${TEST_IMAGE} (busybox, 2 MB).`, '', ...table(res, '`docker run --rm` CLI (baseline)'), '');
    await stopDockerIfStarted();
  }
  lines.push(`Load average at end: ${loadavg()[0].toFixed(1)}.`, '');
  lines.push(
    'p99 of a few dozen runs is close to the maximum: read it as "worst seen".',
    'What the process runtime adds to a bare spawn: a PATH lookup of its own (clear "not found"',
    'results), the orphan record written and removed on disk, and with cgroups two cgroup',
    'directories made and removed plus a /bin/sh trampoline that joins them before exec.',
    'The docker runtime adds an image inspect (clear "image not found") and attaches before start.',
    '',
  );
  const text = lines.join('\n');
  writeSection('runtime', 'Runtimes: start latency of `true`', `node dist/bench/runtime-docker.js --runs ${RUNS} --process-runs ${PROCESS_RUNS}`, text.replace(/^## .*\n/, ''));
}

await main();
