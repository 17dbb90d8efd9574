/**
 * A thousand nodes (issue 21, item 3): simulated agents that speak the real protocol against a
 * real control plane (`oswalk control-plane`, a child process) and a real redis-server, and a
 * burst of short jobs pushed through them.
 *
 * Each simulated agent does what startAgent does, minus the host: it joins over HTTPS (a CSR,
 * the node certificate the control plane signs), registers (registerNode), heartbeats every
 * second with its load (heartbeat, moving its fence), and runs the real JobRunner (claims on
 * wake-ups, lease renewals, fenced group-commit completions that take the next jobs). Only the
 * runtime is fake: a job "exits 0" at once, or, with command `sleep`, runs until it is killed.
 * Many agents share a worker process (forked from this file) and its one Redis connection;
 * each runner has its own blocking connection for its wake-ups, as a real agent does.
 *
 * Phases per size: join; idle heartbeats (Redis CPU per heartbeat, memory per idle node); a
 * burst of jobs (placements/s, submit → start, Redis CPU and memory per job, control-plane CPU
 * and RSS); then long jobs everywhere, `--stop` nodes stop at once (heartbeats, renewals,
 * everything: a crash as Redis sees it) and the time until all their jobs are requeued.
 *
 *   node dist/bench/scale-nodes.js [--sizes 1000:100000] [--workers 4] [--stop 100]
 *     [--idle-seconds 10] [--node-timeout 5s]           # --sizes 100:10000 for development
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { TestRedis, freePort, testPrefix } from '../test/helpers/redis.js';
import { OSWALK_BIN, cliEnv } from '../test/helpers/cli.js';
import { makeControlPlaneCertificates } from '../src/cli/certs.js';
import type { JoinAnswer } from '../src/api/agents.js';
import type { Runtime, RunHandle } from '../src/agent/runtime/types.js';
import { JobRunner } from '../src/agent/runner.js';
import { monotonicMs, NodeFence } from '../src/agent/fence.js';
import { normalizeJobSpec } from '../src/api/jobs.js';
import { keyspace, type Keyspace } from '../src/state/keys.js';
import { connectRedis, type Redis } from '../src/state/redis.js';
import { heartbeat, registerNode } from '../src/state/nodes.js';
import { submitJobs } from '../src/state/jobs.js';
import { nodeCertificateRequest } from '../src/util/pki.js';
import { table, writeSection } from './report.js';

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000:100000' },
    workers: { type: 'string', default: '4' },
    stop: { type: 'string', default: '100' },
    'idle-seconds': { type: 'string', default: '10' },
    'node-timeout': { type: 'string', default: '5s' },
    'no-report': { type: 'boolean', default: false },
    // Print redis-server's busiest commands of each phase (INFO commandstats), for profiling.
    stats: { type: 'boolean', default: false },
    // Write V8 CPU profiles of the control plane and the simulated agents' processes here.
    profile: { type: 'string' },
    // Worker mode (forked by the main process).
    worker: { type: 'boolean', default: false },
    first: { type: 'string' },
    count: { type: 'string' },
    cp: { type: 'string' },
    ca: { type: 'string' },
    token: { type: 'string' },
  },
});

const TOKEN = 'scale-bench-token';
const HEARTBEAT_MS = 1000;
const LEASE_MS = 15_000;
const CPUS = 4;

const nodeName = (i: number) => `sim${String(i).padStart(5, '0')}`;

// ---------------------------------------------------------------- worker: simulated agents

/** Jobs "run" here: exit 0 at once, or with command `sleep` until they are killed. */
const fakeRuntime: Runtime = {
  name: 'process',
  async start(spec): Promise<RunHandle> {
    let end: (r: { exitCode: number | null; signal?: string }) => void = () => undefined;
    const ended = new Promise<{ exitCode: number | null; signal?: string }>((r) => (end = r));
    if (spec.command[0] !== 'sleep') end({ exitCode: 0 });
    return { wait: () => ended, kill: async () => end({ exitCode: null, signal: 'SIGKILL' }), cpuSeconds: async () => 0 };
  },
  async cleanup() {
    return [];
  },
};

function postJoin(cp: string, ca: string, node: string, csr: string): Promise<JoinAnswer> {
  const body = Buffer.from(JSON.stringify({ node, csr }));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${cp}/v1/agents/join`, {
      method: 'POST', ca, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': body.length },
    }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text) as JoinAnswer) : reject(new Error(`join ${node}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface SimAgent {
  name: string;
  stop(): Promise<void>;
}

async function simAgent(name: string, redis: Redis, ks: Keyspace, dir: string, counters: { heartbeats: number }): Promise<SimAgent> {
  const log = pino({ level: 'silent' });
  const fence = new NodeFence(join(dir, name));
  let epoch = 0;
  let registering: Promise<void> | undefined;
  const load = () => ({ load1: 0.5, memoryUsedBytes: 1e9, runningJobs: runner.runningCount, usedCpus: 0, burstCpus: 0 });
  const beat = async () => {
    const sent = monotonicMs();
    const timeout = await heartbeat(redis, ks, name, epoch, load());
    counters.heartbeats++;
    if (timeout) fence.heartbeatAccepted(sent, timeout);
    return !!timeout;
  };
  const register = () => {
    registering ??= (async () => {
      epoch = await registerNode(redis, ks, {
        name, address: '127.0.0.1', agentUrl: `http://127.0.0.1:1/${name}`, labels: {}, runtime: 'process',
        cpus: CPUS, memoryBytes: 8 * 2 ** 30, ...load(), exportDir: '/nonexistent', mountPath: '',
      });
      await beat();
    })().finally(() => (registering = undefined));
    return registering;
  };
  const runner: JobRunner = new JobRunner({
    redis, ks, node: name, runtime: fakeRuntime, log, registry: new Registry(), leaseMs: LEASE_MS, cluster: 'bench', fence,
    epoch: () => epoch, onStaleEpoch: () => void register(),
  });
  await register();
  runner.start();
  let stopped = false;
  const beats = setInterval(() => {
    if (stopped || registering) return;
    beat().then((ok) => (ok || stopped ? undefined : register())).catch(() => undefined);
  }, HEARTBEAT_MS);
  return {
    name,
    async stop() {
      // A crash as the cluster sees it: no more heartbeats or renewals, nothing given back.
      stopped = true;
      clearInterval(beats);
      await runner.stop();
    },
  };
}

async function worker(): Promise<void> {
  const first = Number(flags.first);
  const count = Number(flags.count);
  const ca = readFileSync(flags.ca!, 'utf8');
  // The fence files (one per node, written at each heartbeat and lease change) in memory when
  // the machine has a tmpfs: a real node writes its own, here one process writes hundreds.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'oswalk-scale-'));
  const counters = { heartbeats: 0 };
  const agents = new Map<string, SimAgent>();
  let redis: Redis | undefined;
  let ks: Keyspace | undefined;
  // A few joins at a time, as a fleet of machines booting would.
  const names = Array.from({ length: count }, (_, k) => nodeName(first + k));
  const queue = [...names];
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let name = queue.shift(); name; name = queue.shift()) {
      const { csr } = await nodeCertificateRequest(name);
      const answer = await postJoin(flags.cp!, ca, name, csr);
      redis ??= connectRedis(answer.redisUrl);
      ks ??= keyspace(answer.prefix);
      agents.set(name, await simAgent(name, redis, ks, dir, counters));
    }
  }));
  process.on('message', (m: { op: string; nodes?: string[] }) => {
    if (m.op === 'counters') process.send!({ op: 'counters', ...counters });
    if (m.op === 'crash') {
      void Promise.all((m.nodes ?? []).map((n) => agents.get(n)?.stop())).then(() => process.send!({ op: 'crashed' }));
    }
    if (m.op === 'exit') {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  });
  process.send!({ op: 'ready' });
}

// ---------------------------------------------------------------- main: one size

/** CPU seconds (user + system) and resident memory of a process, from /proc. */
function procUse(pid: number): { cpu: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 100; // CLK_TCK on Linux
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  return { cpu: (Number(f[11]) + Number(f[12])) / tick, rssBytes: rss };
}

async function redisInfo(r: Redis): Promise<{ cpu: number; mem: number; clientsMem: number }> {
  const info = await r.info();
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return { cpu: field('used_cpu_sys') + field('used_cpu_user'), mem: field('used_memory'), clientsMem: field('mem_clients_normal') };
}

/** With --stats: the commands redis-server spent most time on since the last call. */
async function commandStats(r: Redis, phase: string): Promise<void> {
  if (!flags.stats) return;
  const rows = [...(await r.info('commandstats')).matchAll(/^cmdstat_(\S+):calls=(\d+),usec=(\d+)/gm)].map((m) => ({ cmd: m[1], calls: Number(m[2]), usec: Number(m[3]) }));
  rows.sort((a, b) => b.usec - a.usec);
  console.log(`${phase}: ${rows.slice(0, 12).map((x) => `${x.cmd} ${x.calls}× ${(x.usec / 1e3).toFixed(0)} ms`).join(', ')}`);
  // Which scripts: the slow log (threshold 0) names each call with its keys.
  const log = (await r.call('SLOWLOG', 'GET', '100000')) as [number, number, number, string[]][];
  const by = new Map<string, { n: number; us: number }>();
  for (const [, , us, args] of log) {
    const what = args[0].toLowerCase() === 'evalsha' ? `evalsha ${args[1].slice(0, 6)} ${args[3]?.replace(/sim\d+/, 'N').replace(/:[0-9a-f]{12}$/, ':ID')}` : args[0];
    const e = by.get(what) ?? { n: 0, us: 0 };
    e.n++;
    e.us += us;
    by.set(what, e);
  }
  console.log([...by].sort((a, b) => b[1].us - a[1].us).slice(0, 10).map(([k, v]) => `  ${k}: ${v.n}× ${(v.us / v.n).toFixed(0)} µs`).join('\n'));
  await r.config('RESETSTAT');
  await r.config('SET', 'slowlog-log-slower-than', '0');
  await r.config('SET', 'slowlog-max-len', '100000');
  await r.call('SLOWLOG', 'RESET');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

interface Result {
  nodes: number;
  jobs: number;
  joinSeconds: number;
  redisUsPerHeartbeat: number;
  heartbeatsPerSec: number;
  redisIdleCpuPct: number;
  bytesPerIdleNode: number;
  clientBytesPerNode: number;
  placementsPerSec: number;
  submitToStartP50: number;
  submitToStartP99: number;
  burstSeconds: number;
  redisUsPerJob: number;
  bytesPerFinishedJob: number;
  recordBytes: number;
  encoding: string;
  cpIdleCpuPct: number;
  cpCpuUsPerJob: number;
  cpRssMiB: number;
  stopped: number;
  stoppedJobs: number;
  requeueSeconds: number;
  requeueSinceLastHeartbeat: number;
  nodeTimeoutSeconds: number;
}

async function runSize(nodes: number, jobs: number): Promise<Result> {
  const workers = Math.min(Number(flags.workers), nodes);
  const stopCount = Math.min(Number(flags.stop), Math.floor(nodes / 2));
  const nodeTimeout = flags['node-timeout']!;
  const nodeTimeoutSeconds = Number(/^(\d+(?:\.\d+)?)s$/.exec(nodeTimeout)?.[1] ?? NaN);
  const server = await TestRedis.start();
  const redis = connectRedis(server.url);
  // The tests' redis-server fsyncs every write; production Redis usually fsyncs once a second.
  await redis.config('SET', 'appendfsync', 'everysec');
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-scale-main-'));
  const children: ChildProcess[] = [];
  try {
    const prefix = testPrefix();
    const ks = keyspace(prefix);
    const certs = await makeControlPlaneCertificates(dir, ['127.0.0.1'], 'scale');
    const port = await freePort();
    const cpUrl = `https://127.0.0.1:${port}`;
    const cpLog = openSync(join(dir, 'cp.log'), 'w');
    const prof = flags.profile ? ['--cpu-prof', `--cpu-prof-dir=${flags.profile}`] : [];
    const cp = spawn(process.execPath, [...prof, OSWALK_BIN, 'control-plane', '--listen', `127.0.0.1:${port}`, '--prefix', prefix,
      '--tls-cert', certs.paths.controlPlane.cert, '--tls-key', certs.paths.controlPlane.key, '--ca-cert', certs.paths.ca.cert,
      '--ca-key', certs.paths.ca.key, '--node-timeout', nodeTimeout], {
      env: { ...cliEnv(), OSWALK_REDIS_URL: server.url, OSWALK_TOKEN: TOKEN, OSWALK_LOG_LEVEL: 'warn' }, stdio: ['ignore', cpLog, cpLog],
    });
    children.push(cp);
    while (!(await redis.get(ks.leader))) await sleep(50);
    const { mem: memBase, clientsMem: clientsBase } = await redisInfo(redis);

    // Join.
    const t0 = performance.now();
    const per = Math.ceil(nodes / workers);
    const procs: ChildProcess[] = [];
    const ready: Promise<void>[] = [];
    for (let w = 0; w < workers; w++) {
      const first = w * per;
      const count = Math.min(per, nodes - first);
      const p = fork(fileURLToPath(import.meta.url), ['--worker', '--first', String(first), '--count', String(count), '--cp', cpUrl, '--ca', certs.paths.ca.cert, '--token', TOKEN], {
        env: { ...process.env, OSWALK_LOG_LEVEL: 'silent' }, execArgv: [...process.execArgv, ...prof],
      });
      children.push(p);
      procs.push(p);
      ready.push(new Promise((resolve, reject) => {
        p.on('message', (m: { op: string }) => m.op === 'ready' && resolve());
        p.on('exit', (code) => reject(new Error(`worker ${w} exited with ${code}`)));
      }));
    }
    await Promise.all(ready);
    const joinSeconds = (performance.now() - t0) / 1000;
    console.log(`${nodes} nodes joined in ${joinSeconds.toFixed(1)} s`);
    const ask = async <T>(op: string, reply: string, extra: Record<string, unknown> = {}): Promise<T[]> => Promise.all(procs.map((p) => new Promise<T>((resolve) => {
      const on = (m: { op: string }) => {
        if (m.op !== reply) return;
        p.off('message', on);
        resolve(m as T);
      };
      p.on('message', on);
      p.send({ op, ...extra });
    })));
    const heartbeats = async () => (await ask<{ heartbeats: number }>('counters', 'counters')).reduce((a: number, c) => a + c.heartbeats, 0);

    // Idle: heartbeats only (and each runner's wait for work).
    await sleep(2000);
    const { mem: memIdle, clientsMem: clientsIdle } = await redisInfo(redis);
    const idleSecs = Number(flags['idle-seconds']);
    await commandStats(redis, 'join');
    const [i0, c0, h0] = [await redisInfo(redis), procUse(cp.pid!), await heartbeats()];
    const ti = performance.now();
    await sleep(idleSecs * 1000);
    const [i1, c1, h1] = [await redisInfo(redis), procUse(cp.pid!), await heartbeats()];
    const idleWall = (performance.now() - ti) / 1000;
    const beatsIdle = h1 - h0;
    await commandStats(redis, 'idle');
    console.log(`idle: ${beatsIdle} heartbeats in ${idleWall.toFixed(1)} s, redis ${((i1.cpu - i0.cpu) / idleWall * 100).toFixed(1)} % CPU`);

    // Burst.
    const spec = normalizeJobSpec({ command: ['true'], cpus: 0.5 });
    const tb = performance.now();
    const m0 = await redisInfo(redis);
    const cb0 = procUse(cp.pid!);
    const wb0 = procs.reduce((a, p) => a + procUse(p.pid!).cpu, 0);
    const ids: string[] = [];
    for (let i = 0; i < jobs; i += 1000) ids.push(...await submitJobs(redis, ks, Array.from({ length: Math.min(1000, jobs - i) }, () => ({ spec }))));
    console.log(`submitted ${jobs} in ${((performance.now() - tb) / 1000).toFixed(1)} s`);
    while (Number(await redis.hget(ks.jobsFinished, 'succeeded') ?? 0) < jobs) await sleep(50);
    const burstSeconds = (performance.now() - tb) / 1000;
    const [m1, cb1] = [await redisInfo(redis), procUse(cp.pid!)];
    const simCpu = procs.reduce((a, p) => a + procUse(p.pid!).cpu, 0) - wb0;
    console.log(`burst CPU seconds: redis ${(m1.cpu - m0.cpu).toFixed(1)}, control plane ${(cb1.cpu - cb0.cpu).toFixed(1)}, simulated agents ${simCpu.toFixed(1)}, in ${burstSeconds.toFixed(1)} s`);
    await commandStats(redis, 'burst');
    const starts: number[] = [];
    const lat: number[] = [];
    let firstSubmit = Infinity;
    for (let i = 0; i < ids.length; i += 5000) {
      const pipe = redis.pipeline();
      for (const id of ids.slice(i, i + 5000)) pipe.hmget(ks.job(id), 'createdAt', 'startedAt');
      for (const [, v] of (await pipe.exec()) ?? []) {
        const [c, s] = (v as string[]).map(Number);
        firstSubmit = Math.min(firstSubmit, c);
        starts.push(s);
        lat.push(s - c);
      }
    }
    lat.sort((a, b) => a - b);
    const placementsPerSec = jobs / ((Math.max(...starts) - firstSubmit) / 1000);
    const idleRedisPerSec = (i1.cpu - i0.cpu) / idleWall;
    const redisUsPerJob = ((m1.cpu - m0.cpu) - idleRedisPerSec * burstSeconds) / jobs * 1e6;
    console.log(`burst: ${placementsPerSec.toFixed(0)} placements/s, submit→start p50 ${pct(lat, 50)} ms p99 ${pct(lat, 99)} ms, redis ${redisUsPerJob.toFixed(0)} µs/job`);
    const memAfter = (await redisInfo(redis)).mem;
    // Where a finished job's bytes are: its record (and its encoding), the rest is index and audit.
    const sample = ids.slice(0, 200);
    const recordBytes = (await Promise.all(sample.map((id) => redis.call('MEMORY', 'USAGE', ks.job(id)) as Promise<number>))).reduce((a, b) => a + b, 0) / sample.length;
    const encoding = await redis.call('OBJECT', 'ENCODING', ks.job(ids[0])) as string;

    // Long jobs on every node, then `stopCount` nodes stop at once.
    const long = normalizeJobSpec({ command: ['sleep'], cpus: 1 });
    const longIds = await submitJobs(redis, ks, Array.from({ length: nodes * 2 }, () => ({ spec: long })));
    for (;;) {
      const pipe = redis.pipeline();
      for (const id of longIds) pipe.hget(ks.job(id), 'state');
      const states = ((await pipe.exec()) ?? []).map(([, s]) => s);
      if (states.every((s) => s === 'running')) break;
      await sleep(200);
    }
    const victims = Array.from({ length: stopCount }, (_, i) => nodeName(Math.floor((i * nodes) / stopCount)));
    const victimSet = new Set(victims);
    const held: string[] = [];
    for (const v of victims) held.push(...await redis.zrange(ks.nodeLeases(v), '0', '-1'));
    const ts = Date.now();
    await Promise.all(procs.map((p, w) => new Promise<void>((resolve) => {
      const mine = victims.filter((v) => Number(v.slice(3)) >= w * per && Number(v.slice(3)) < (w + 1) * per);
      const on = (m: { op: string }) => m.op === 'crashed' && (p.off('message', on), resolve());
      p.on('message', on);
      p.send({ op: 'crash', nodes: mine });
    })));
    const lastBeat = Math.max(...(await redis.zmscore(ks.heartbeats, ...victims)).map(Number));
    let requeuedAt = 0;
    for (;;) {
      const pipe = redis.pipeline();
      for (const id of held) pipe.hmget(ks.job(id), 'state', 'node');
      const rows = ((await pipe.exec()) ?? []).map(([, v]) => v as string[]);
      if (rows.every(([state, node]) => state !== 'scheduled' && state !== 'running' ? true : !victimSet.has(node))) {
        requeuedAt = Date.now();
        break;
      }
      await sleep(20);
    }
    const requeueSeconds = (requeuedAt - ts) / 1000;
    console.log(`${stopCount} nodes stopped with ${held.length} jobs: all requeued ${requeueSeconds.toFixed(2)} s later (${((requeuedAt - lastBeat) / 1000).toFixed(2)} s after their last heartbeat)`);
    const cpEnd = procUse(cp.pid!);
    for (const p of procs) p.send({ op: 'exit' });
    // Ended by a signal it handles, so that a profile it takes is written.
    await new Promise((r) => {
      cp.once('exit', r);
      cp.kill('SIGTERM');
    });
    await Promise.all(procs.map((p) => p.exitCode !== null || new Promise((r) => p.once('exit', r))));
    return {
      nodes, jobs, joinSeconds,
      redisUsPerHeartbeat: (i1.cpu - i0.cpu) / beatsIdle * 1e6,
      heartbeatsPerSec: beatsIdle / idleWall,
      redisIdleCpuPct: idleRedisPerSec * 100,
      bytesPerIdleNode: (memIdle - memBase) / nodes, clientBytesPerNode: (clientsIdle - clientsBase) / nodes,
      placementsPerSec, submitToStartP50: pct(lat, 50), submitToStartP99: pct(lat, 99), burstSeconds,
      redisUsPerJob, bytesPerFinishedJob: (memAfter - memIdle) / jobs, recordBytes, encoding,
      cpIdleCpuPct: (c1.cpu - c0.cpu) / idleWall * 100,
      cpCpuUsPerJob: (cb1.cpu - cb0.cpu) / jobs * 1e6,
      cpRssMiB: cpEnd.rssBytes / 2 ** 20,
      stopped: stopCount, stoppedJobs: held.length, requeueSeconds,
      requeueSinceLastHeartbeat: (requeuedAt - lastBeat) / 1000, nodeTimeoutSeconds,
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    redis.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes = flags.sizes!.split(',').map((s) => s.split(':').map(Number) as [number, number]);
  const results: Result[] = [];
  for (const [nodes, jobs] of sizes) results.push(await runSize(nodes, jobs));
  const body = [
    table(
      ['nodes', 'jobs', 'join (s)', 'placements/s', 'submit→start p50 / p99 (ms)', 'heartbeats/s', 'Redis µs/heartbeat', 'Redis CPU idle', 'Redis µs/job', 'Redis B/idle node (its connections)', 'Redis B/finished job (its record)', 'CP CPU idle', 'CP µs/job', 'CP RSS (MiB)', 'stopped nodes (jobs)', 'requeued after (s)', 'after last heartbeat (s)'],
      results.map((r) => [r.nodes, r.jobs, r.joinSeconds.toFixed(1), r.placementsPerSec.toFixed(0), `${r.submitToStartP50} / ${r.submitToStartP99}`,
        r.heartbeatsPerSec.toFixed(0), r.redisUsPerHeartbeat.toFixed(1), `${r.redisIdleCpuPct.toFixed(1)} %`, r.redisUsPerJob.toFixed(0),
        `${r.bytesPerIdleNode.toFixed(0)} (${r.clientBytesPerNode.toFixed(0)})`, `${r.bytesPerFinishedJob.toFixed(0)} (${r.recordBytes.toFixed(0)}, ${r.encoding})`, `${r.cpIdleCpuPct.toFixed(1)} %`, r.cpCpuUsPerJob.toFixed(1), r.cpRssMiB.toFixed(0),
        `${r.stopped} (${r.stoppedJobs})`, r.requeueSeconds.toFixed(2), `${r.requeueSinceLastHeartbeat.toFixed(2)} (timeout ${r.nodeTimeoutSeconds})`]),
    ),
    '',
    `Each size on a fresh redis-server (appendfsync everysec) and control plane (node timeout ${flags['node-timeout']}); ${flags.workers} processes of simulated agents,`,
    'each agent with its own blocking connection for wake-ups (as a real agent) and one shared connection per process for the rest.',
    'Jobs are submitted with submitJobs (what POST /v1/jobs runs), 1000 a call, 0.5 CPU each on 4-CPU nodes; they "exit 0" at once.',
    '',
    '- **placements/s**: jobs submitted over the time from the first submit to the last start; submit → start from each record\'s',
    '  createdAt and startedAt. The burst queues: p50 is about half the time the queue took to drain.',
    '- **Redis µs/heartbeat**: all of redis-server\'s CPU in a phase with no job (heartbeats, idle wake-up waits, the',
    '  monitor and the leader lease) over the heartbeats of that phase. **Redis µs/job**: its CPU during the burst less the',
    '  idle rate, per job. **Redis B/idle node**: used_memory after the nodes joined, per node; in brackets what their',
    '  connections take of it (mem_clients_normal: one blocking connection per agent). **B/finished job**: used_memory',
    '  after the burst, per job, with the record\'s own MEMORY USAGE and encoding in brackets.',
    '- **CP**: the control plane\'s CPU (/proc) while idle, per job in the burst, and its RSS at the end.',
    '- **requeued after**: from telling the worker processes to stop the nodes (heartbeats, renewals, everything: a crash',
    '  as Redis sees it) to the moment no job of theirs is scheduled or running on them any more; and from their last',
    '  heartbeat. The goal is the node timeout + 2 s.',
    '',
    'How the costs grow:',
    '',
    '- A heartbeat is one script of four commands: O(1). Idle Redis CPU grows with nodes × heartbeat rate (1/s), plus an',
    '  idle agent\'s claim every 10 s; the monitor\'s pass (twice a second) reads the nodes whose heartbeats are late, the',
    '  due retries, and a slice of 100 nodes\' leases (a full sweep takes nodes/100 passes): O(1) in nodes and jobs.',
    '- A scheduling pass reads the pending ids first (an idle pass reads no node), then the nodes with room, fresh (the',
    '  nodes:room index), and ranks each job on at most 16 feasible nodes: O(nodes with room) reads per pass, amortised',
    '  over up to 1000 jobs, and O(1) per job in the control plane. All nodes are read again at most once a second, and',
    '  only while jobs wait (for the wording of their wait reasons).',
    '- A job costs three script steps (place, claim, complete), O(1) each: the completing agent probes at most 8 nodes of',
    '  the room index to decide whether it takes the next job itself.',
    '- Memory: per node its record, reservations, index entries and, above all, its agent\'s connections; per finished job',
    '  its record (a hashtable: the spec JSON is longer than hash-max-listpack-value, 64 bytes), an index entry and an audit',
    '  line. Finished records are kept 7 days and at most 1,000,000 of them (MAX_FINISHED_JOBS, about 2.3 GB at the size',
    '  measured here): the monitor deletes the oldest ends past that count.',
    '- Requeueing a stopped node\'s jobs is one monitor pass after the timeout: O(its jobs).',
    '- What still grows with nodes at a fixed rate of jobs: the same jobs spread over more nodes, so a claim and a group',
    '  commit carry fewer jobs each and each job pays more of a script call\'s fixed cost; a pass reads every node with',
    '  room (all of them, with jobs this short); and the idle heartbeats, counted out of Redis\' CPU per job but not out',
    '  of the simulated agents\' (1000 agents\' timers, fence files and connections in 4 processes).',
    '- Where a job\'s time goes while the queue drains: placed (scheduler pass, placeJobs), woken, claimed, "run",',
    '  reported; with nodes that all have room, a completing agent leaves the next job to the scheduler (completeJobs-1.lua',
    '  takes it only when no other node has room), so every job costs the three steps.',
    '- The machine is a shared 2-core VM (its load average is in the header): the simulated agents, the control plane and',
    '  redis-server share those cores with each other and with other work, so the rates are those of a contended machine;',
    '  the CPU per heartbeat and per job are the numbers that carry over.',
  ].join('\n');
  console.log(body);
  if (!flags['no-report']) writeSection('scale-nodes', 'A thousand nodes: simulated agents against a real control plane', `node dist/bench/scale-nodes.js ${process.argv.slice(2).join(' ')}`.trim(), body);
}

if (flags.worker) await worker();
else {
  await main();
  process.exit(0);
}
