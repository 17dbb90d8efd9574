import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { ATTACH_KEY_HEADER, ATTACH_SILENCE_MS, ATTACH_UPGRADE, attachPath, Frame, frame, FrameReader, type AttachEnd } from '../../src/api/attach.js';
import type { AttachPoint } from '../../src/api/jobs.js';
import { attachKeyOf } from '../../src/util/attach-key.js';
import { makeControlPlaneCertificates } from '../../src/cli/certs.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { connectRedis } from '../../src/state/redis.js';
import { TERMINAL_CLIENT_GRACE_MS } from '../../src/state/jobs.js';
import { keyspace } from '../../src/state/keys.js';
import { OSWALK_BIN } from '../helpers/cli.js';
import { api, startAgentProcess, startJobsControlPlane, submitJob, tempDir, TOKEN, useCliCluster } from '../helpers/jobs-cluster.js';
import { until } from '../helpers/until.js';
import { freePort, TestRedis } from '../helpers/redis.js';
import { seededBytes } from '../helpers/seeded.js';

const SEED = process.env.OSWALK_TEST_SEED ?? randomBytes(8).toString('hex');
console.log(`session test seed: ${SEED} (OSWALK_TEST_SEED=${SEED} repeats this run)`);
const DATA = seededBytes(SEED, 6 * 1024 * 1024 + 12_345);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `file | oswalk ARGS`, run by bash: the exit code, stdout as bytes, stderr. */
function piped(file: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; out: Buffer; err: string }> {
  const quoted = [process.execPath, OSWALK_BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return new Promise((resolve) => {
    execFile('bash', ['-c', `${quoted} < '${file}'`], { cwd, env: { ...process.env, OSWALK_LOG_LEVEL: 'warn', ...env }, encoding: 'buffer', maxBuffer: 64 << 20 }, (err, out, errOut) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: errOut.toString() });
    });
  });
}

describe('sessions: oswalk run -i straight to the node', () => {
  const cluster = useCliCluster('session');
  let input: string;
  before(() => {
    input = join(cluster.state.dir, 'input.bin');
    writeFileSync(input, DATA);
  });

  it('carries every byte in order between the client and its node at the node\'s Unix socket, stderr apart, with the exit code; Redis carries none of the input', async () => {
    const r = await piped(input, ['--api', cluster.url, '--token', TOKEN, 'run', '-i', '--name', 'sess-socket', '--', 'sh', '-c', 'cat; echo "to stderr" >&2; exit 3'], {}, cluster.state.dir);
    assert.equal(r.code, 3, r.err);
    assert.equal(r.out.length, DATA.length);
    assert.equal(sha(r.out), sha(DATA), `seed ${SEED}`);
    assert.match(r.err, /^to stderr$/m);
    const redis = connectRedis(cluster.redisUrl);
    try {
      const ks = keyspace((await redis.keys('*jobs:all'))[0].replace(/jobs:all$/, ''));
      const ids = await redis.zrange(ks.jobsAll, '0', '-1');
      const jobs = await Promise.all(ids.map(async (id) => ({ id, spec: JSON.parse((await redis.hget(ks.job(id), 'spec')) ?? '{}') as { attachKey?: string } })));
      const job = jobs.find((j) => j.spec.attachKey);
      assert.ok(job, 'the job is a session: its spec has the key\'s hash');
      assert.equal(await redis.exists(ks.jobStdin(job.id)), 0, 'no input stream in Redis');
    } finally {
      redis.disconnect();
    }
  });

  it('goes through the control plane with OSWALK_ATTACH=control-plane, as every job with retries does', async () => {
    const r = await piped(input, ['--api', cluster.url, '--token', TOKEN, 'run', '-i', '--', 'sh', '-c', 'cat; exit 4'], { OSWALK_ATTACH: 'control-plane' }, cluster.state.dir);
    assert.equal(r.code, 4, r.err);
    assert.equal(sha(r.out), sha(DATA), `seed ${SEED}`);
  });

  it('keeps a session whose job waits for a node longer than the grace period: its client is there, waiting', async () => {
    const child = spawn(process.execPath, [OSWALK_BIN, '--api', cluster.url, '--token', TOKEN, 'run', '-i', '--name', 'sess-waits', '--node-selector', 'oswalk.dev/node=nowhere', '--', 'cat'], {
      cwd: cluster.state.dir, stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, OSWALK_LOG_LEVEL: 'warn' },
    });
    try {
      await new Promise((r) => setTimeout(r, TERMINAL_CLIENT_GRACE_MS + 3000));
      const jobs = (await api(cluster.url)<{ items: { name: string; state: string }[] }>('/v1/jobs?name=sess-waits')).body.items;
      assert.deepEqual(jobs.map((j) => j.state), ['pending'], 'not hung up by the monitor');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('lets a client attach only with the session\'s secret, only to the attempt that runs, only once; what the job printed before comes first', async () => {
    const call = api(cluster.url);
    const secret = randomBytes(32).toString('base64url');
    const id = await submitJob(call, { command: ['sh', '-c', 'echo early; cat'], cpus: 0.1, stdin: true, attachKey: attachKeyOf(secret) });
    const point = (await call<AttachPoint>(`/v1/jobs/${id}/attach?waitMs=10000`)).body;
    assert.equal(point.state, 'running');
    assert.ok(point.socket, 'the node has a Unix socket for sessions');
    const handshake = (key: string, attempt = point.attempt) => new Promise<{ status: number; text?: string; socket?: Duplex }>((resolve, reject) => {
      const req = request({ socketPath: point.socket, path: attachPath(id, attempt), headers: { connection: 'Upgrade', upgrade: ATTACH_UPGRADE, [ATTACH_KEY_HEADER]: key } });
      req.once('upgrade', (_res, socket, head) => {
        // What came with the answer (the job's early output) is handed over apart from the socket.
        if (head.length) socket.unshift(head);
        resolve({ status: 101, socket });
      });
      req.once('response', (res) => {
        let text = '';
        res.on('data', (d: Buffer) => { text += d.toString(); });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.once('error', reject);
      req.end();
    });
    const wrong = await handshake(randomBytes(32).toString('base64url'));
    assert.equal(wrong.status, 401);
    assert.match(wrong.text!, /not this session's key/);
    assert.equal((await handshake(secret, point.attempt + 1)).status, 404);
    const ok = await handshake(secret);
    assert.equal(ok.status, 101);
    const again = await handshake(secret);
    assert.equal(again.status, 409, 'a second client is refused');
    const socket = ok.socket!;
    const frames: { type: number; payload: Buffer }[] = [];
    const reader = new FrameReader();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (c: Buffer) => frames.push(...reader.push(c)));
    for (const b of [...frame(Frame.input, Buffer.from('typed\n')), ...frame(Frame.inputEnd)]) socket.write(b);
    await closed;
    const out = Buffer.concat(frames.filter((f) => f.type === Frame.stdout).map((f) => f.payload)).toString();
    assert.equal(out, 'early\ntyped\n');
    const end = JSON.parse(frames.find((f) => f.type === Frame.end)!.payload.toString()) as AttachEnd;
    assert.equal(end.end?.state, 'succeeded');
    assert.equal(end.end?.exitCode, 0);
  });
});

describe('sessions across machines: a node\'s TLS port, and a node the client cannot reach', () => {
  let redis: TestRedis;
  let cp: RunningControlPlane;
  const agents: RunningAgent[] = [];
  const state = tempDir('session-tls');
  let env: NodeJS.ProcessEnv;
  let input: string;

  before(async () => {
    redis = await TestRedis.start();
    const certs = await makeControlPlaneCertificates(join(state.dir, 'cp'), ['127.0.0.1'], 'test');
    cp = await startControlPlane({ redisUrl: redis.url, token: TOKEN, tls: { cert: certs.cert, key: certs.key }, host: '127.0.0.1', port: await freePort() });
    const log = pino({ level: 'silent' });
    // n-far says peers reach it at an address where nothing listens: a machine behind a firewall.
    for (const [node, address] of [['n-near', undefined], ['n-far', '127.0.0.3']] as const) {
      const dir = join(state.dir, node);
      agents.push(await startAgent({
        node, controlPlane: cp.url, ca: { pem: certs.caCert, source: 'the test' }, token: TOKEN, runtime: new ProcessRuntime({ stateDir: dir, logger: log, killGraceMs: 500 }),
        exportDir: join(dir, 'export'), stateDir: dir, mount: false, listen: { host: '127.0.0.1', port: 0 }, log, ...(address ? { address } : {}),
      }));
    }
    env = { OSWALK_API: cp.url, OSWALK_TOKEN: TOKEN, OSWALK_CA_CERT: certs.paths.ca.cert, OSWALK_ATTACH: 'tls' };
    input = join(state.dir, 'input.bin');
    writeFileSync(input, DATA);
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await cp?.close();
    await redis?.stop();
    state.remove();
  });

  it('carries a session over the node\'s TLS port, trusting the node\'s certificate by the cluster CA and its name', async () => {
    const r = await piped(input, ['run', '-i', '--node-selector', 'oswalk.dev/node=n-near', '--', 'sh', '-c', 'cat; exit 6'], env, state.dir);
    assert.equal(r.code, 6, r.err);
    assert.equal(sha(r.out), sha(DATA), `seed ${SEED}`);
    assert.doesNotMatch(r.err, /cannot reach/);
  });

  it('goes through the control plane when the node cannot be reached, and says so', async () => {
    const r = await piped(input, ['run', '-i', '--node-selector', 'oswalk.dev/node=n-far', '--', 'sh', '-c', 'cat; exit 7'], env, state.dir);
    assert.equal(r.code, 7, r.err);
    assert.equal(sha(r.out), sha(DATA), `seed ${SEED}`);
    assert.match(r.err, /cannot reach node n-far for the session \(.*\): its input and output go through the control plane/);
  });
});

describe('sessions under faults: the node\'s agent stopped (SIGSTOP) mid-session', () => {
  let redis: TestRedis;
  let cp: Awaited<ReturnType<typeof startJobsControlPlane>>;
  let agent: ChildProcess | undefined;
  const state = tempDir('session-stop');
  const nodeTimeoutMs = 3000;

  before(async () => {
    redis = await TestRedis.start();
    cp = await startJobsControlPlane(redis.url, { nodeTimeoutMs });
    agent = await startAgentProcess(cp.url, 'stop1', state.dir);
  });
  after(async () => {
    if (agent?.pid) process.kill(agent.pid, 'SIGCONT');
    agent?.kill('SIGKILL');
    await cp?.close();
    await redis?.stop();
    state.remove();
  });

  it('the client says its stream is lost, follows the job through the control plane and ends with it; the job fails once and never runs again', async () => {
    const get = api(cp.url);
    const cli = spawn('bash', ['-c', `seq 1 100000000 | '${process.execPath}' '${OSWALK_BIN}' --api ${cp.url} --token ${TOKEN} run -i -- sh -c 'cat > /dev/null'`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cli.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => cli.once('exit', r));
    type Jobs = { items: { state: string; attempt: number; message: string }[] };
    await until('the session to run', async () => (await get<Jobs>('/v1/jobs')).body.items?.some((j) => j.state === 'running'), 20_000);
    await new Promise((r) => setTimeout(r, 500));
    const stoppedAt = Date.now();
    process.kill(agent!.pid!, 'SIGSTOP');
    const code = await exited;
    const tookMs = Date.now() - stoppedAt;
    assert.equal(code, 1, err);
    assert.ok(tookMs < ATTACH_SILENCE_MS + nodeTimeoutMs + 5000, `the client ended ${tookMs} ms after the node stopped`);
    assert.match(err, /lost the session's stream to its node: following job \w+ through the control plane/);
    assert.match(err, /failed on stop1 \(attempt 1\): node stop1 went down; not started again: it was a session/);
    process.kill(agent!.pid!, 'SIGCONT');
    // The agent, back, finds its job gone: nothing runs it again, here or elsewhere.
    await new Promise((r) => setTimeout(r, 2000));
    const jobs = (await get<Jobs>('/v1/jobs')).body.items;
    assert.deepEqual(jobs.map((j) => [j.state, j.attempt]), [['failed', 1]]);
  });
});
