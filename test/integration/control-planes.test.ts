import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeControlPlaneCertificates } from '../../src/cli/certs.js';
import { keyspace } from '../../src/state/keys.js';
import { connectRedis } from '../../src/state/redis.js';
import type { Redis } from '../../src/state/redis.js';
import { Proc } from '../faults/cluster.js';
import { cliEnv, oswalk, OSWALK_BIN } from '../helpers/cli.js';
import { freePort, TestRedis, testPrefix } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { httpStatus } from '../helpers/http-status.js';

const TOKEN = 'control-planes-test-token';

/**
 * Issue 21, item 2: three control planes over HTTPS; the leader SIGKILLed. Another one leads
 * and schedules within 3 s, and the CLI and the agents, which are given every control plane's
 * address, carry on through the others.
 */
describe('three control planes, the leader killed', () => {
  let redis: TestRedis;
  let conn: Redis;
  let dir: string;
  let caFile: string;
  const prefix = testPrefix();
  const ks = keyspace(prefix);
  const cps: { port: number; url: string; proc: Proc }[] = [];
  const agents: Proc[] = [];

  const healthy = async (url: string) => (await httpStatus(`${url}/healthz`, readFileSync(caFile, 'utf8'))) === 200;

  const startAgent = async (node: string, controlPlanes: string) => {
    const state = join(dir, node);
    mkdirSync(join(state, 'export'), { recursive: true });
    const proc = new Proc(`agent ${node}`, [process.execPath, OSWALK_BIN, 'agent', '--node', node, '--control-plane', controlPlanes, '--ca-cert', caFile,
      '--state-dir', state, '--export', join(state, 'export'), '--no-mount', '--listen', '127.0.0.1:0', '--address', '127.0.0.1'],
    join(dir, `${node}.log`), { ...cliEnv(), OSWALK_TOKEN: TOKEN, OSWALK_LOG_LEVEL: 'info' });
    agents.push(proc);
    await until(`${node} to join`, async () => {
      if (!proc.running) throw new Error(`agent ${node} exited: ${readFileSync(join(dir, `${node}.log`), 'utf8').slice(-2000)}`);
      return (await conn.hget(ks.node(node), 'status')) === 'ready';
    }, 30_000);
  };

  /** The control plane whose process holds the leader lease (its id carries its pid). */
  const leader = async () => {
    const id = await conn.get(ks.leader);
    const pid = id ? Number(/-(\d+)-[0-9a-f]+$/.exec(id)?.[1]) : undefined;
    return cps.find((cp) => cp.proc.running && cp.proc.pid === pid);
  };

  const run = (apis: string, args: string[]) => oswalk(['--api', apis, '--token', TOKEN, '--ca-cert', caFile, ...args], { timeoutMs: 60_000 });

  before(async () => {
    redis = await TestRedis.start();
    conn = connectRedis(redis.url);
    dir = mkdtempSync(join(tmpdir(), 'oswalk-cps-'));
    const certs = await makeControlPlaneCertificates(dir, ['127.0.0.1'], 'test');
    caFile = certs.paths.ca.cert;
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const proc = new Proc(`cp${i}`, [process.execPath, OSWALK_BIN, 'control-plane', '--listen', `127.0.0.1:${port}`, '--prefix', prefix,
        '--tls-cert', certs.paths.controlPlane.cert, '--tls-key', certs.paths.controlPlane.key, '--ca-cert', caFile, '--ca-key', certs.paths.ca.key, '--node-timeout', '3s'],
      join(dir, `cp${i}.log`), { ...cliEnv(), OSWALK_REDIS_URL: redis.url, OSWALK_TOKEN: TOKEN, OSWALK_LOG_LEVEL: 'info' });
      cps.push({ port, url: `https://127.0.0.1:${port}`, proc });
    }
    for (const cp of cps) await until(`${cp.url} to serve`, () => healthy(cp.url), 30_000);
    await until('a leader', leader, 10_000);
  });

  after(async () => {
    for (const p of [...agents, ...cps.map((c) => c.proc)]) await p.kill();
    conn?.disconnect();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('schedules again within 3 s, and the CLI and a joining agent get through the others', async () => {
    const all = cps.map((c) => c.url).join(',');
    await startAgent('n1', all);
    const first = await run(all, ['run', '--cpus', '0.1', '--', 'sh', '-c', 'echo before']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'before\n');

    const dead = (await leader())!;
    // The dead one first in every list: each client must get past it.
    const lists = [dead, ...cps.filter((c) => c !== dead)].map((c) => c.url).join(',');
    dead.proc.child.kill('SIGKILL');
    const killedAt = Date.now();
    await dead.proc.exited;

    const after = await run(lists, ['run', '--cpus', '0.1', '--', 'sh', '-c', 'echo after']);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, 'after\n');
    const jobs = await run(lists, ['get', 'jobs', '-o', 'json']);
    assert.equal(jobs.code, 0, jobs.stderr);
    const items = (JSON.parse(jobs.stdout) as { items: { spec: { command: string[] }; scheduledAt: string; createdAt: string }[] }).items;
    const job = items.find((j) => j.spec.command.includes('echo after'))!;
    const scheduledMs = Date.parse(job.scheduledAt) - killedAt;
    const successor = await leader();
    assert.ok(successor && successor !== dead, 'another control plane leads');
    console.log(`# the leader was SIGKILLed; ${successor.url} led, and a job submitted at once was scheduled ${scheduledMs} ms after the kill`);
    assert.ok(scheduledMs <= 3000, `scheduled ${scheduledMs} ms after the leader died`);

    // An agent that joins now, with the dead control plane first in its list.
    await startAgent('n2', lists);
    const pinned = await run(lists, ['run', '--cpus', '0.1', '--node-selector', 'oswalk.dev/node=n2', '--', 'sh', '-c', 'echo on n2']);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(pinned.stdout, 'on n2\n');

    // Given only the dead one, the CLI says which it could not reach.
    const none = await run(dead.url, ['get', 'nodes']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /cannot reach the control plane at https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});
