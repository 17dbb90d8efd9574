/**
 * Queue throughput and latency: OS Walk's submit → schedule → claim → complete path against
 * BullMQ's add → process, on the same redis-server in the same run.
 *
 * OS Walk runs its real pieces in this process: the leader's scheduling loop (BLPOP wake-ups,
 * batched passes, placeJobs) and a real agent (startAgent: claim loop, lease renewal, log
 * shipper, completeAndTake with fencing token). Only the runtime is replaced by an in-process
 * runner that "exits 0" at once, so the numbers measure the queue, not fork/exec.
 * Concurrency is set the OS Walk way: the node offers 1 CPU and each job asks for 1 CPU
 * (concurrency 1) or 0.1 CPU (concurrency 10); "unbounded" asks for 0.001 CPU.
 *
 *   npx tsc -p . && node dist/bench/queue-throughput.js [jobs] [latencySamples]
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { TestRedis, testPrefix } from '../test/helpers/redis.js';
import { startAgent } from '../src/agent/index.js';
import type { Runtime } from '../src/agent/runtime/types.js';
import { startControlLoops } from '../src/controlplane/loops.js';
import type { ControlPlaneContext } from '../src/controlplane/context.js';
import { createRegistry } from '../src/metrics/index.js';
import { normalizeJobSpec } from '../src/api/jobs.js';
import { submitJobs } from '../src/state/jobs.js';
import { followJob, waitLog } from '../src/state/job-streams.js';
import { TERMINAL_STATES } from '../src/api/job-states.js';
import { keyspace } from '../src/state/keys.js';
import { openFs } from '../src/state/fs-layout.js';
import { BlockingReaders, connectRedis } from '../src/state/redis.js';
import { writeSection } from './report.js';

const N = Number(process.argv[2] ?? 5000);
const SAMPLES = Number(process.argv[3] ?? 100);
/** Each configuration runs this many times, interleaved; the tables give the median. */
const REPS = Number(process.argv[4] ?? 3);

const noopRuntime: Runtime = {
  name: 'process',
  async start() {
    return { wait: async () => ({ exitCode: 0 }), kill: async () => undefined, cpuSeconds: async () => 0 };
  },
  async cleanup() {
    return [];
  },
};

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Row {
  fsync: string;
  system: string;
  concurrency: string;
  jobsPerSec: number;
  /** redis-server CPU (user + sys) and append-only file growth per job over the run. */
  redisUs: number;
  aofBytes: number;
}

/** What redis-server has spent so far: CPU seconds and append-only file bytes. */
async function redisSpent(url: string): Promise<{ cpu: number; aof: number }> {
  const r = connectRedis(url);
  try {
    const info = await r.info();
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
    return { cpu: field('used_cpu_sys') + field('used_cpu_user'), aof: field('aof_current_size') };
  } finally {
    r.disconnect();
  }
}

/** The row of one run, from its rate and what redis-server spent on it. */
function row(fsync: string, system: string, concurrency: string, secs: number, before: { cpu: number; aof: number }, after: { cpu: number; aof: number }): Row {
  return {
    fsync, system, concurrency, jobsPerSec: N / secs,
    redisUs: ((after.cpu - before.cpu) / N) * 1e6, aofBytes: (after.aof - before.aof) / N,
  };
}

/**
 * Every run starts on an empty redis-server with a compacted append-only file. Otherwise a run
 * pays for what earlier runs left (OS Walk keeps finished jobs for 7 days): an AOF rewrite of
 * hundreds of MB forks in the middle of whichever run comes later, and on this VM a fork's
 * copy-on-write faults cost more than the run.
 */
async function freshRedis(url: string): Promise<void> {
  const r = connectRedis(url);
  try {
    await r.flushall();
    await r.bgrewriteaof();
    while (/aof_rewrite_(in_progress|scheduled):1/.test(await r.info('persistence'))) await new Promise((res) => setTimeout(res, 20));
  } finally {
    r.disconnect();
  }
}

async function oswalk(url: string, fsync: string, rows: Row[], lat: Record<string, number[]>) {
  const log = pino({ level: 'silent' });
  for (const [label, jobCpus] of [['1', 1], ['10', 0.1], ['unbounded', 0.001]] as const) {
    await freshRedis(url);
    const redis = connectRedis(url);
    const ks = keyspace(testPrefix());
    const ctx: ControlPlaneContext = {
      redis, readers: new BlockingReaders(redis), ks, fs: await openFs(redis, ks), log, registry: createRegistry('controlplane'),
      config: { token: 't', agentRedisUrl: url, nodeTimeoutMs: 5000, id: 'bench' },
    };
    const loops = startControlLoops(ctx, { leaseMs: 3000 });
    // Empty directories of its own: the agent's translator must not walk a busy /tmp.
    const dir = await mkdtemp(join(tmpdir(), 'oswalk-bench-queue-'));
    await mkdir(join(dir, 'export'));
    const agent = await startAgent({
      node: 'b1', redisUrl: url, prefix: ks.prefix, token: 't', runtime: noopRuntime, exportDir: join(dir, 'export'), stateDir: join(dir, 'state'),
      listen: { host: '127.0.0.1', port: 0 }, cpus: 1, log,
    });
    while (!loops.lease.isLeader) await new Promise((r) => setTimeout(r, 20));
    const spec = normalizeJobSpec({ command: ['noop'], cpus: jobCpus });

    const spent = await redisSpent(url);
    const t0 = performance.now();
    await submitJobs(redis, ks, Array.from({ length: N }, () => ({ spec })));
    // Every job ends with one entry in the results stream.
    while ((await redis.xlen(ks.jobsResults)) < N) await new Promise((r) => setTimeout(r, 5));
    const secs = (performance.now() - t0) / 1000;
    rows.push(row(fsync, 'OS Walk', label, secs, spent, await redisSpent(url)));
    console.log(`${fsync.padEnd(9)} OS Walk   concurrency ${label.padEnd(9)} ${(N / secs).toFixed(0)} jobs/s`);

    if (label === '10') {
      const blocking = redis.duplicate();
      const samples: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const t = performance.now();
        const [id] = await submitJobs(redis, ks, [{ spec }]);
        let after = '0';
        // As `oswalk run` does: follow the job, so that its end writes the line waited for.
        for (let done = TERMINAL_STATES.has((await followJob(redis, ks, id))!); !done;) {
          const entries = await waitLog(blocking, ks, id, after, 5000);
          for (const e of entries) {
            after = e.id;
            if (e.t === 'end') done = true;
          }
        }
        samples.push(performance.now() - t);
      }
      blocking.disconnect();
      (lat[`OS Walk|${fsync}`] ??= []).push(...samples);
    }
    await agent.stop();
    await loops.stop();
    redis.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}

async function bullmq(url: string, fsync: string, rows: Row[], lat: Record<string, number[]>) {
  const { hostname, port } = new URL(url);
  const connection = { host: hostname, port: Number(port), maxRetriesPerRequest: null };
  for (const concurrency of [1, 10]) {
    await freshRedis(url);
    const name = `bench-${concurrency}-${Date.now()}`;
    const queue = new Queue(name, { connection });
    let done = 0;
    let allDone: () => void = () => undefined;
    const finished = new Promise<void>((r) => {
      allDone = r;
    });
    const worker = new Worker(name, async () => undefined, { connection, concurrency, autorun: false });
    worker.on('completed', () => {
      if (++done === N) allDone();
    });
    await worker.waitUntilReady();
    const spent = await redisSpent(url);
    const t0 = performance.now();
    await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'noop', data: { i }, opts: { removeOnComplete: true } })));
    void worker.run();
    await finished;
    const secs = (performance.now() - t0) / 1000;
    rows.push(row(fsync, 'BullMQ', String(concurrency), secs, spent, await redisSpent(url)));
    console.log(`${fsync.padEnd(9)} BullMQ    concurrency ${String(concurrency).padEnd(9)} ${(N / secs).toFixed(0)} jobs/s`);

    if (concurrency === 10) {
      const events = new QueueEvents(name, { connection });
      await events.waitUntilReady();
      const samples: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const t = performance.now();
        const job = await queue.add('noop', { i });
        await job.waitUntilFinished(events);
        samples.push(performance.now() - t);
      }
      (lat[`BullMQ|${fsync}`] ??= []).push(...samples);
      await events.close();
    }
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

const server = await TestRedis.start();
try {
  const rows: Row[] = [];
  const lat: Record<string, number[]> = {};
  const admin = connectRedis(server.url);
  // The tests' redis-server fsyncs every write; production Redis usually fsyncs once a second.
  for (const fsync of ['always', 'everysec']) {
    await admin.config('SET', 'appendfsync', fsync);
    for (let rep = 0; rep < REPS; rep++) {
      await bullmq(server.url, fsync, rows, lat);
      await oswalk(server.url, fsync, rows, lat);
    }
  }
  const table = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.fsync}|${r.system}|${r.concurrency}`;
    table.set(k, [...(table.get(k) ?? []), r]);
  }
  const median = (runs: Row[], f: (r: Row) => number) => pct(runs.map(f).sort((a, b) => a - b), 50);
  for (const v of Object.values(lat)) v.sort((a, b) => a - b);
  admin.disconnect();
  const date = new Date().toISOString();
  const md = [
    '# Queue throughput: OS Walk vs BullMQ',
    '',
    `${date}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end.`,
    'redis-server 7 with an append-only file, measured with appendfsync always (the tests\' setting: every write waits for the disk) and everysec (Redis\' usual setting).',
    `Command: \`npx tsc -p . && node dist/bench/queue-throughput.js ${N} ${SAMPLES} ${REPS}\`. ${N} no-op jobs per run; latency over ${SAMPLES * REPS} jobs submitted one at a time.`,
    '',
    'OS Walk: real scheduling loop + real agent (claim, lease, fenced complete) in one process; the runtime is an in-process',
    'runner that returns exit 0 at once (no fork/exec). BullMQ: Queue.addBulk + Worker with a no-op processor.',
    'Same redis-server, same run, configurations interleaved, each run on an emptied redis-server (FLUSHALL and an AOF rewrite before it). Single runs vary by up to 2× on this VM, hence medians.',
    '',
    `Medians of ${REPS} runs; "vs BullMQ" divides by BullMQ's median at the same appendfsync and concurrency. redis-server CPU and`,
    'append-only file growth per job are read from INFO before and after each run.',
    '',
    '| appendfsync | system | concurrency | jobs/s | vs BullMQ | runs (jobs/s) | redis-server CPU µs/job | AOF bytes/job |',
    '| --- | --- | --- | ---: | ---: | --- | ---: | ---: |',
    ...[...table.entries()].map(([k, runs]) => {
      const [fsync, system, concurrency] = k.split('|');
      const rate = median(runs, (r) => r.jobsPerSec);
      const bull = table.get(`${fsync}|BullMQ|${concurrency}`);
      const ratio = system === 'BullMQ' || !bull ? '' : `${((rate / median(bull, (r) => r.jobsPerSec)) * 100).toFixed(0)} %`;
      return `| ${fsync} | ${system} | ${concurrency} | ${rate.toFixed(0)} | ${ratio} | ${runs.map((r) => r.jobsPerSec.toFixed(0)).join(', ')} | ${median(runs, (r) => r.redisUs).toFixed(0)} | ${median(runs, (r) => r.aofBytes).toFixed(0)} |`;
    }),
    '',
    'Latency, one job at a time (OS Walk: submit → its end line in the log stream; BullMQ: add → waitUntilFinished), concurrency 10:',
    '',
    '| appendfsync | system | add → done p50 (ms) | p99 (ms) |',
    '| --- | --- | ---: | ---: |',
    ...Object.entries(lat).map(([k, v]) => `| ${k.split('|')[1]} | ${k.split('|')[0]} | ${pct(v, 50).toFixed(1)} | ${pct(v, 99).toFixed(1)} |`),
    '',
    '## Reading the numbers',
    '',
    '- A BullMQ worker finishes a job and fetches the next in one script call. So does an OS Walk agent for a',
    '  backlog: its report (completeJobs-1.lua) ends the job and starts the head of the queue on the same node',
    '  when the scheduler could only have put it there (no nodeSelector or runtime constraint, and no other node',
    '  with room), so neither a scheduling pass nor a claim is needed. Anything else goes through the scheduler.',
    '- Reports are a group commit: the agent sends one call with every report that came in while the previous',
    '  call was on its way (two calls in flight), so jobs ending together cost one round trip and one Lua call.',
    '  The agent\'s connection does not auto-pipeline: per-tick batching measured slower here once a job cost',
    '  one call.',
    '- What an OS Walk job keeps that BullMQ\'s removeOnComplete does not: the record for 7 days (and its output',
    '  and end line, when it printed or was followed), a results audit line, a lease with a fencing token, the',
    '  node\'s reservation. A silent job nobody follows costs 10 Redis writes in script calls: the record at',
    '  submit, start and end; the listing, queue and node lease entries in and out; the audit line; an expiry.',
    '- The machine is a 2-core VM whose speed swings from run to run (the same configuration varies by up to',
    '  2×), hence several interleaved runs and the median.',
    '- A pass costs what it can place, not the queue length: it reads the queue in pages of 128 and stops when',
    '  no node has room (2000 queued jobs behind a full node are not re-read on every completion), and it',
    '  remembers requirements and wait reasons it already wrote.',
    '- Where the time goes: redis-server CPU per job is the limit at concurrency 10 and above (the table\'s last',
    '  columns; the Node side of OS Walk costs less than BullMQ\'s). It came down by cutting writes (15 → 10 per',
    '  job): one lease set per node replaced the global lease set and the per-node job set, the start no longer',
    '  writes a log line, the end writes its end line only when someone follows the job (`oswalk run`, `logs',
    '  -f`; a reader of any other job gets the same line built from the record), and a new record leaves out',
    '  fields that hold their default. Job logs had cost a stream per job: Redis 7 gives a new stream 4 KB.',
    '- A short run (5000 jobs last about half a second) also measures how soon the first job runs. A control',
    '  plane that had just taken the leader lease used to notice it only after a 200 ms sleep, and submit steps',
    '  of 1000 records held Redis for 15 ms each while the scheduler waited; the first job of a burst now runs',
    '  about 25 ms after the submit starts, where it took 150 ms.',
    '',
  ].join('\n');
  writeSection('queue', 'Queue throughput: OS Walk vs BullMQ', `node dist/bench/queue-throughput.js ${process.argv.slice(2).join(' ')}`.trim(), md.replace(/^# .*\n/, ''));
} finally {
  await server.stop();
}
process.exit(0);
