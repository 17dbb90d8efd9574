import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pino } from 'pino';
import { createServer } from 'node:http';
import { freePort, TestRedis } from '../helpers/redis.js';
import { api, startJobsControlPlane, tempDir, TOKEN, submitJob } from '../helpers/jobs-cluster.js';
import { until } from '../helpers/until.js';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import type { JobRecord } from '../../src/state/jobs.js';
import type { LogEnd, LogLine } from '../../src/api/logs.js';
import { apiClient } from '../../src/cli/client.js';
import { attachJob, submitFollowing } from '../../src/cli/follow.js';

describe('jobs end to end: API, scheduler loop, agent, process runtime', () => {
  let server: TestRedis;
  let cp: Awaited<ReturnType<typeof startJobsControlPlane>>;
  let agent: RunningAgent;
  let call: ReturnType<typeof api>;
  const dirs: { remove(): void }[] = [];

  before(async () => {
    server = await TestRedis.start();
    cp = await startJobsControlPlane(server.url);
    call = api(cp.url);
    const state = tempDir('agent');
    dirs.push(state);
    const logger = pino({ level: 'silent' });
    agent = await startAgent({
      node: 'n1', controlPlane: cp.url, token: TOKEN, runtime: new ProcessRuntime({ stateDir: state.dir, logger, killGraceMs: 500 }),
      exportDir: state.dir, stateDir: state.dir, labels: { zone: 'a' }, listen: { host: '127.0.0.1', port: 0 }, log: logger,
      backoff: { baseMs: 100, maxMs: 1000 },
    });
  });
  after(async () => {
    await agent?.stop();
    await cp?.close();
    await server.stop();
    for (const d of dirs) d.remove();
  });

  const submit = (spec: Record<string, unknown>) => submitJob(call, spec);

  /** The log lines as they stream; only the last `keep` of them for a job printing a lot. */
  async function follow(id: string, keep = Infinity): Promise<LogLine[]> {
    const res = await fetch(`${cp.url}/v1/jobs/${id}/logs?follow=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines: LogLine[] = [];
    for await (const l of createInterface({ input: Readable.fromWeb(res.body! as WebReadableStream), crlfDelay: Infinity })) {
      if (!l) continue;
      lines.push(JSON.parse(l) as LogLine);
      if (lines.length > keep) lines.shift();
    }
    return lines;
  }

  const endOf = (lines: LogLine[]) => JSON.parse(lines.find((l) => l.t === 'end')!.text!) as LogEnd;
  const job = async (id: string) => (await call<JobRecord>(`/v1/jobs/${id}`)).body;

  it('runs a command, streams stdout and stderr live, and ends with its exit code', async () => {
    const id = await submit({ command: ['sh', '-c', 'echo "hello $OSWALK_NODE $OSWALK_JOB_ID $OSWALK_ATTEMPT"; echo oops >&2; exit 3'], backoffLimit: 0 });
    const lines = await follow(id);
    const out = lines.filter((l) => l.t === 'out').map((l) => l.text).join('');
    assert.equal(out, `hello n1 ${id} 1\n`);
    assert.equal(lines.filter((l) => l.t === 'err').map((l) => l.text).join(''), 'oops\n');
    assert.deepEqual({ ...endOf(lines), message: '' }, { state: 'failed', exitCode: 3, message: '', attempt: 1, node: 'n1' });
    const j = await job(id);
    assert.equal(j.state, 'failed');
    assert.equal(j.exitCode, 3);
    assert.equal(j.node, 'n1');
  });

  it('submits and streams in one request with ?follow=1: the job in Location, then its log to the end line; refusals stay JSON', async () => {
    const res = await fetch(`${cp.url}/v1/jobs?follow=1`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ spec: { command: ['sh', '-c', 'echo one; echo two >&2; exit 4'], backoffLimit: 0 } }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const id = res.headers.get('location')!.match(/^\/v1\/jobs\/([a-z0-9-]+)$/)![1];
    const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine);
    assert.equal(lines.filter((l) => l.t === 'out').map((l) => l.text).join(''), 'one\n');
    assert.equal(lines.filter((l) => l.t === 'err').map((l) => l.text).join(''), 'two\n');
    assert.deepEqual({ ...endOf(lines), message: '' }, { state: 'failed', exitCode: 4, message: '', attempt: 1, node: 'n1' });
    assert.equal((await job(id)).exitCode, 4);
    const bad = await fetch(`${cp.url}/v1/jobs?follow=1`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ spec: { command: [] } }),
    });
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(bad.headers.get('location'), null);
  });

  it('the CLI follows a job submitted to a control plane that answers ?follow=1 with the job alone (one from before it)', async () => {
    // A control plane of an earlier release in front of this one: it takes the job and answers
    // with its id, as before ?follow existed.
    const port = await freePort();
    const older = createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/v1/jobs?follow=1') {
        const body: Buffer[] = [];
        req.on('data', (d: Buffer) => body.push(d)).on('end', () => void (async () => {
          const r = await fetch(`${cp.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: Buffer.concat(body) });
          res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text());
        })());
        return;
      }
      void fetch(`${cp.url}${req.url}`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(async (r) => {
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? '' });
        for await (const piece of Readable.fromWeb(r.body! as WebReadableStream)) res.write(piece);
        res.end();
      });
    });
    await new Promise<void>((r) => older.listen(port, '127.0.0.1', r));
    try {
      const client = apiClient({ api: `http://127.0.0.1:${port}`, token: TOKEN });
      const { id, stream } = await submitFollowing(client, { spec: { command: ['sh', '-c', 'echo from-an-older-one'], backoffLimit: 0 } });
      assert.equal(stream, undefined);
      const out: Buffer[] = [];
      const exit = await attachJob(client, id, { sink: { out: (d) => void out.push(d), err: () => undefined, note: () => undefined } });
      assert.equal(Buffer.concat(out).toString(), 'from-an-older-one\n');
      assert.deepEqual(exit, { code: 0 });
    } finally {
      older.close();
    }
  });

  it('takes a trivial job from submit to its end quickly (no polling on the hot path)', async () => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const id = await submit({ command: ['true'], cpus: 0.1 });
      assert.equal(endOf(await follow(id)).state, 'succeeded');
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    assert.ok(times[2] < 500, `median submit→end ${times[2].toFixed(0)} ms`);
  });

  it('cancels a running job: the agent stops it and it ends cancelled', async () => {
    const id = await submit({ command: ['sleep', '60'], cpus: 0.1 });
    const lines = follow(id);
    for (let i = 0; (await job(id)).state !== 'running'; i++) {
      assert.ok(i < 100, 'job never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = Date.now();
    assert.equal((await call<{ state: string }>(`/v1/jobs/${id}/cancel`, {})).body.state, 'cancelling');
    assert.equal(endOf(await lines).state, 'cancelled');
    assert.ok(Date.now() - t0 < 3000, `cancel took ${Date.now() - t0} ms`);
    assert.equal((await call<{ state: string }>(`/v1/jobs/${id}/cancel`, {})).body.state, 'cancelled');
  });

  it('kills and fails a job at its activeDeadlineSeconds', async () => {
    const t0 = Date.now();
    const id = await submit({ command: ['sleep', '60'], cpus: 0.1, activeDeadlineSeconds: 1, backoffLimit: 3 });
    const end = endOf(await follow(id));
    assert.equal(end.state, 'failed');
    assert.match(end.message, /activeDeadlineSeconds \(1s\) exceeded/);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal((await job(id)).attempt, 1, 'a deadline is not retried');
  });

  it('ends the log with the signal that killed the program as a field of its own, and no exit code', async () => {
    const id = await submit({ command: ['sh', '-c', 'kill -TERM $$'], cpus: 0.1, backoffLimit: 0 });
    const end = endOf(await follow(id));
    assert.deepEqual({ state: end.state, exitCode: end.exitCode, signal: end.signal }, { state: 'failed', exitCode: null, signal: 'SIGTERM' });
    assert.equal((await job(id)).signal, 'SIGTERM');
  });

  it('runs a job with a deadline longer than setTimeout can wait (25 days) to its end', async () => {
    const id = await submit({ command: ['sh', '-c', 'sleep 0.5; echo done'], cpus: 0.1, activeDeadlineSeconds: 2_200_000 });
    const end = endOf(await follow(id));
    assert.equal(end.state, 'succeeded', end.message);
  });

  it('refuses env names, NUL bytes and a working directory leaving the mount that no job can use, naming the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ command: ['true'], env: { 'PATH=/evil': 'x' } }, /env name "PATH=\/evil"/],
      [{ command: ['true'], env: { '1A': 'x' } }, /env name "1A"/],
      [{ command: ['true'], env: { A: 'x\u0000y' } }, /env A holds a NUL byte/],
      [{ command: ['echo', 'a\u0000b'] }, /command\[1\] holds a NUL byte/],
      [{ command: ['pwd'], workingDir: '../../../etc' }, /workingDir "..\/..\/..\/etc"/],
      [{ command: ['true'], activeDeadlineSeconds: 1e300 }, /activeDeadlineSeconds/],
    ];
    for (const [spec, want] of cases) {
      const res = await call<{ message: string }>('/v1/jobs', { spec });
      assert.equal(res.status, 400, JSON.stringify(spec));
      assert.match(res.body.message, want);
    }
    const named = await call<{ message: string }>('/v1/jobs', { name: '\u001b[31mRED\nx', spec: { command: ['true'] } });
    assert.equal(named.status, 400);
    assert.match(named.body.message, /name/);
  });

  it('answers 400, not 500 or an empty 200, to a list limit of Infinity and a log position past 64 bits', async () => {
    for (const path of ['/v1/jobs?limit=Infinity', '/v1/jobs?limit=1e400']) {
      const res = await fetch(cp.url + path, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 400, path);
    }
    const id = await submit({ command: ['true'], cpus: 0.1 });
    const res = await fetch(`${cp.url}/v1/jobs/${id}/logs?after=99999999999999999999-1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 400);
    assert.match((await res.json()).message, /after/);
  });

  it('retries a failing job with backoff up to backoffLimit', async () => {
    const id = await submit({ command: ['sh', '-c', 'echo "try $OSWALK_ATTEMPT"; exit 7'], cpus: 0.1, backoffLimit: 2 });
    const lines = await follow(id);
    assert.deepEqual(lines.filter((l) => l.t === 'out').map((l) => l.text), ['try 1\n', 'try 2\n', 'try 3\n']);
    assert.ok(lines.some((l) => l.t === 'sys' && /exited with 7; retry 2 in 0\.2s/.test(l.text ?? '')));
    const j = await job(id);
    assert.equal(j.state, 'failed');
    assert.equal(j.attempt, 3);
    assert.equal(j.exitCode, 7);
  });

  it('keeps a job that fits nowhere pending, with a reason, and says for how long in /metrics', async () => {
    const t0 = Date.now();
    const id = await submit({ command: ['true'], cpus: 64 });
    // Until the scheduler has looked at a job, it reads "waiting for the scheduler".
    const reasoned = (jobId: string) => until(`the scheduler's wait reason for ${jobId}`, async () => {
      const r = await job(jobId);
      return r.waitReason !== 'waiting for the scheduler' && r;
    }, 10_000);
    const j = await reasoned(id);
    assert.equal(j.state, 'pending');
    const n = cpus().length;
    assert.equal(j.waitReason, `needs 64 CPUs; the largest node has ${n} CPU${n === 1 ? '' : 's'}`);
    const sel = await submit({ command: ['true'], nodeSelector: { zone: 'b' } });
    assert.equal((await reasoned(sel)).waitReason, 'no node matches nodeSelector zone=b');
    const pending = await call<{ items: JobRecord[] }>('/v1/jobs?state=pending');
    assert.deepEqual(pending.body.items.map((x) => x.id).sort(), [id, sel].sort());
    // What the 'jobs waiting too long' alert reads: the count, and the longest wait, growing.
    const metric = async (name: string) => {
      const text = await (await fetch(`${cp.url}/metrics`)).text();
      return Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
    };
    let longest = await metric('oswalk_scheduler_longest_wait_seconds');
    for (let i = 0; longest < 1; i++) {
      assert.ok(i < 40, `longest wait ${longest} s`);
      await new Promise((r) => setTimeout(r, 100));
      longest = await metric('oswalk_scheduler_longest_wait_seconds');
    }
    const since = (Date.now() - t0) / 1000;
    assert.ok(longest <= since, `longest wait ${longest} s, but the first job was submitted ${since} s ago`);
    assert.equal(await metric('oswalk_scheduler_waiting_jobs'), 2);
    await call(`/v1/jobs/${id}/cancel`, {});
    await call(`/v1/jobs/${sel}/cancel`, {});
    for (let i = 0; await metric('oswalk_scheduler_longest_wait_seconds') !== 0; i++) {
      assert.ok(i < 40, 'the longest wait is back to 0 once nothing waits');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await metric('oswalk_scheduler_waiting_jobs'), 0);
  });

  it('pins a job with the built-in node label and answers 404s and bad specs clearly', async () => {
    const id = await submit({ command: ['true'], cpus: 0.1, nodeSelector: { 'oswalk.dev/node': 'n1' } });
    assert.equal(endOf(await follow(id)).state, 'succeeded');
    assert.equal((await call('/v1/jobs/nope')).status, 404);
    const bad = await call<{ message: string }>('/v1/jobs', { spec: { command: ['x'], cpus: -2 } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /cpus/);
  });

  it('keeps the tail of a job printing 1 GiB without Redis growing past the cap', async () => {
    const before = Number(/used_memory:(\d+)/.exec(await cp.ctx.redis.info('memory'))![1]);
    const id = await submit({ command: ['sh', '-c', 'head -c 1073741824 /dev/zero | tr "\\0" x; echo; echo THE-END'], cpus: 0.1 });
    const lines = await follow(id, 100);
    assert.equal(endOf(lines).state, 'succeeded');
    const out = lines.filter((l) => l.t === 'out').map((l) => l.text).join('');
    assert.ok(out.endsWith('THE-END\n'), 'the tail is kept');
    const j = await job(id);
    assert.ok(j.logBytes <= 8 * 1024 * 1024, `kept ${j.logBytes}`);
    assert.equal(j.logBytes + j.logDropped, 1073741824 + 1 + 8);
    const afterMem = Number(/used_memory:(\d+)/.exec(await cp.ctx.redis.info('memory'))![1]);
    assert.ok(afterMem - before < 64 * 1024 * 1024, `redis grew by ${afterMem - before} bytes`);
    const first = JSON.parse((await (await fetch(`${cp.url}/v1/jobs/${id}/logs`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()).split('\n')[0]) as LogLine;
    assert.match(first.text!, /bytes of earlier output were dropped/);
  });

  it('takes the export directory and address an agent was not given from its Node manifest', async () => {
    const exportDir = tempDir('manifest-export');
    dirs.push(exportDir);
    const yaml = `apiVersion: oswalk.dev/v1\nkind: Node\nmetadata:\n  name: from-manifest\nspec:\n  address: localhost\n  exportDir: ${exportDir.dir}\n`;
    assert.equal((await call('/v1/apply', { source: 'node.yaml', yaml })).status, 200);
    const state = tempDir('manifest-agent');
    dirs.push(state);
    const second = await startAgent({
      node: 'from-manifest', controlPlane: cp.url, token: TOKEN, runtime: new ProcessRuntime({ stateDir: state.dir, logger: pino({ level: 'silent' }) }),
      stateDir: state.dir, listen: { host: '127.0.0.1', port: 0 }, log: pino({ level: 'silent' }),
    });
    try {
      const node = (await call<{ exportDir: string; address: string; agentUrl: string }>('/v1/nodes/from-manifest')).body;
      assert.equal(node.exportDir, exportDir.dir);
      assert.equal(node.address, 'localhost');
      assert.match(node.agentUrl, /^http:\/\/localhost:\d+$/);
    } finally {
      await second.stop();
    }
  });

  it('an agent started while the control plane cannot be reached joins when it can', async () => {
    const port = await freePort();
    const state = tempDir('late-join');
    dirs.push(state);
    const started = startAgent({
      node: 'late', controlPlane: `http://127.0.0.1:${port}`, token: TOKEN, runtime: new ProcessRuntime({ stateDir: state.dir, logger: pino({ level: 'silent' }) }),
      stateDir: state.dir, listen: { host: '127.0.0.1', port: 0 }, log: pino({ level: 'silent' }),
    });
    await new Promise((r) => setTimeout(r, 1500));
    // The control plane "comes back" on the agent's URL: a stand-in that passes the join on.
    const front = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        void fetch(cp.url + req.url, { method: 'POST', headers: { authorization: req.headers.authorization ?? '', 'content-type': 'application/json' }, body })
          .then(async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()));
      });
    });
    await new Promise<void>((r) => front.listen(port, '127.0.0.1', () => r()));
    try {
      const late = await started;
      await late.stop();
      assert.equal((await call<{ name: string }>('/v1/nodes/late')).status, 200);
    } finally {
      front.close();
    }
  });

  it('exposes agent metrics with units', async () => {
    await follow(await submit({ command: ['true'], cpus: 0.1 }));
    const text = await (await fetch(`${agent.url}/metrics`)).text();
    assert.match(text, /oswalk_job_duration_seconds_bucket\{[^}]*outcome="succeeded"/);
    assert.match(text, /oswalk_agent_running_jobs\{[^}]*\} \d/);
    assert.match(text, /oswalk_node_memory_used_bytes/);
    assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
    const cpText = await (await fetch(`${cp.url}/metrics`)).text();
    assert.match(cpText, /oswalk_jobs\{[^}]*state="pending"[^}]*\} \d/);
    assert.match(cpText, /oswalk_scheduler_pass_duration_seconds_count/);
    assert.match(cpText, /^oswalk_node_status\{node="n1",status="ready",component="controlplane"\} 1$/m);
    assert.match(cpText, /^oswalk_node_status\{node="n1",status="down",component="controlplane"\} 0$/m);
  });

  it('keeps a Service at its replicas: replaces a cancelled replica, retires all when deleted', async () => {
    const manifest = {
      apiVersion: 'oswalk.dev/v1', kind: 'Service', metadata: { name: 'web' },
      spec: {
        command: ['sh', '-c', 'echo "replica $OSWALK_REPLICA_INDEX"; exec sleep 60'], args: [], env: {}, resources: { cpus: 0.1, memoryBytes: 0 },
        backoffLimit: 6, priority: 0, nodeSelector: {}, privileged: false, replicas: 2, restartPolicy: 'Always',
      },
    };
    const { redis, ks } = cp.ctx;
    await redis.hset(ks.objects('Service'), 'web', JSON.stringify(manifest));
    const running = async () => (await call<{ items: JobRecord[] }>('/v1/jobs?owner=Service/web&state=running')).body.items;
    const waitRunning = async (n: number, not: string[] = []) => {
      for (let i = 0; ; i++) {
        const r = (await running()).filter((j) => !not.includes(j.id));
        if (r.length === n) return r;
        assert.ok(i < 150, `running replicas: ${r.length}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const first = await waitRunning(2);
    assert.deepEqual(first.map((j) => j.index).sort(), [0, 1]);
    await call(`/v1/jobs/${first[0].id}/cancel`, {});
    const again = await waitRunning(2, [first[0].id]);
    assert.deepEqual(again.map((j) => j.index).sort(), [0, 1], 'the cancelled replica was replaced at its index');
    await redis.hdel(ks.objects('Service'), 'web');
    for (let i = 0; (await running()).length > 0; i++) {
      assert.ok(i < 150, 'replicas still running after the Service was deleted');
      await new Promise((res) => setTimeout(res, 100));
    }
  });

  it('turns an applied Job manifest into completion-indexed records and reports its status', async () => {
    const manifest = {
      apiVersion: 'oswalk.dev/v1', kind: 'Job', metadata: { name: 'sweep' },
      spec: {
        command: ['sh', '-c', 'echo "index $OSWALK_COMPLETION_INDEX"'], args: [], env: {}, resources: { cpus: 0.1, memoryBytes: 0 },
        backoffLimit: 0, priority: 0, nodeSelector: {}, privileged: false, parallelism: 3, completions: 3,
      },
    };
    await cp.ctx.redis.hset(cp.ctx.ks.objects('Job'), 'sweep', JSON.stringify(manifest));
    let st = await call<{ phase: string; succeeded: number }>('/v1/owners/Job/sweep');
    for (let i = 0; st.body.phase !== 'Complete'; i++) {
      assert.ok(i < 100, JSON.stringify(st.body));
      await new Promise((r) => setTimeout(r, 100));
      st = await call('/v1/owners/Job/sweep');
    }
    assert.equal(st.body.succeeded, 3);
    const { items } = (await call<{ items: JobRecord[] }>('/v1/jobs?owner=Job/sweep')).body;
    const outs = await Promise.all(items.map(async (j) => (await follow(j.id)).find((l) => l.t === 'out')!.text));
    assert.deepEqual(outs.sort(), ['index 0\n', 'index 1\n', 'index 2\n']);
  });
});
