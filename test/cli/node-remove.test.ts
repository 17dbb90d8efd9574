/**
 * `oswalk node remove NODE` (decommission, issue 26 item 4) against a real redis-server and the
 * real control plane routes. The replication passes that would report what only the node holds
 * are played by the test: it writes pfs:health itself, as src/packetfs/replicate.ts does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';
import { oswalk } from '../helpers/cli.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { getNode, registerNode, type NodeRegistration } from '../../src/state/nodes.js';
import { jobsOnNode, submitJobs } from '../../src/state/jobs.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';
import type { Removal } from '../../src/api/nodes.js';
import { isRevoked, recordIssuedCertificate } from '../../src/state/certs.js';

const TOKEN = 'remove-token';

function reg(name: string): NodeRegistration {
  return {
    name, address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process', cpus: 2,
    memoryBytes: 1 << 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/x', mountPath: '/cluster',
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('oswalk node remove', () => {
  let server: TestRedis;
  let cp: RunningControlPlane;
  const cwd = mkdtempSync(join(tmpdir(), 'oswalk-remove-'));
  const call = async (path: string, method = 'GET') => {
    const res = await fetch(cp.url + path, { method, headers: { authorization: `Bearer ${TOKEN}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }, ...(method === 'POST' ? { body: '{}' } : {}) });
    return { status: res.status, body: await res.json() };
  };
  /** What a replication pass that began at `at` writes. */
  const pass = (at: number, removing: Record<string, { files: number; bytes: number }>) => cp.ctx.fs.redis.hset(cp.ctx.fs.ks.storageHealth, {
    at, by: 'n3', manifests: 10, bytes: 1000, underFiles: 0, underBytes: 0, lostFiles: 0, lostBytes: 0, removing: JSON.stringify(removing),
  });
  const cli = (args: string[], timeoutMs?: number) => oswalk(['--api', cp.url, 'node', 'remove', ...args], { cwd, env: { OSWALK_TOKEN: TOKEN }, timeoutMs });

  before(async () => {
    server = await TestRedis.start();
    // No heartbeats here: a long node timeout keeps the nodes ready.
    cp = await startControlPlane({ redisUrl: server.url, token: TOKEN, tls: 'insecure-http', host: '127.0.0.1', port: await freePort(), prefix: testPrefix(), nodeTimeoutMs: 600_000 });
    for (const n of ['n1', 'n2', 'n3']) await registerNode(cp.ctx.redis, cp.ctx.ks, reg(n));
  });
  after(async () => {
    await cp.close();
    await server.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('answers 404 naming the node for one that is not registered', async () => {
    for (const [path, method] of [['/v1/nodes/nope/remove', 'POST'], ['/v1/nodes/nope/removal', 'GET'], ['/v1/nodes/nope/uncordon', 'POST']]) {
      const res = await call(path, method);
      assert.equal(res.status, 404, path);
      assert.match(res.body.message, /node "nope" is not registered \(oswalk get nodes lists them\)/, path);
    }
    const r = await cli(['nope']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /^error: node "nope" is not registered/);
  });

  it('marks and drains the node; the removal counts only a pass that began after it and saw it marked; uncordon undoes it', async () => {
    const { ks, redis } = cp.ctx;
    const before = await call('/v1/nodes/n2/removal');
    assert.deepEqual(before.body, { name: 'n2', status: 'ready', removing: false, removingSince: null, runningJobs: 0, pass: null });

    // A batch job placed on n2 is left to run to its end.
    await submitJobs(redis, ks, [{ spec: normalizeJobSpec({ command: ['true'], nodeSelector: { 'oswalk.dev/node': 'n2' } }) }]);
    for (let i = 0; (await jobsOnNode(redis, ks, 'n2')).length === 0; i++) {
      assert.ok(i < 100, 'the scheduler placed the job on n2');
      await sleep(100);
    }

    const t0 = Date.now();
    const removed = await call('/v1/nodes/n2/remove', 'POST');
    assert.equal(removed.status, 200);
    assert.equal(removed.body.status, 'draining');
    assert.equal(removed.body.removing, true);
    assert.equal(removed.body.remaining, 1);
    const since = removed.body.removingSince as number;
    assert.ok(Math.abs(since - t0) < 5000, `removingSince ${since} is now (${t0})`);
    assert.equal((await call('/v1/nodes/n2/remove', 'POST')).body.removingSince, since, 'removing again keeps when it began');
    // An agent restart keeps the removal.
    await registerNode(redis, ks, reg('n2'));
    const rec = await getNode(redis, ks, 'n2');
    assert.equal(rec?.removing, true);
    assert.equal(rec?.removingSince, since);
    assert.equal(rec?.status, 'draining');
    const listed = (await call('/v1/nodes')).body.items.find((n: { name: string }) => n.name === 'n2');
    assert.equal(listed.removing, true);

    const removal = async () => (await call('/v1/nodes/n2/removal')).body as Removal;
    assert.deepEqual(await removal(), { name: 'n2', status: 'draining', removing: true, removingSince: since, runningJobs: 1, pass: null });

    await pass(since - 1, { n2: { files: 0, bytes: 0 } });
    assert.equal((await removal()).pass, null, 'a pass that began before the removal');
    await pass(since + 1, {});
    assert.equal((await removal()).pass, null, 'a pass that did not see the node marked');
    await pass(since + 1, { n2: { files: 3, bytes: 300 } });
    assert.deepEqual((await removal()).pass, { at: since + 1, files: 3, bytes: 300 });

    const [job] = await jobsOnNode(redis, ks, 'n2');
    assert.equal((await call(`/v1/jobs/${job}/cancel`, 'POST')).status, 200);
    assert.equal((await removal()).runningJobs, 0);

    const uncordoned = await call('/v1/nodes/n2/uncordon', 'POST');
    assert.deepEqual(uncordoned.body, { name: 'n2', status: 'ready' });
    assert.deepEqual(await removal(), { name: 'n2', status: 'ready', removing: false, removingSince: null, runningJobs: 0, pass: null });
    assert.deepEqual(await redis.hmget(ks.node('n2'), 'removing', 'removingSince', 'cordoned'), [null, null, '0']);
  });

  it('the CLI waits, showing what is left, until a pass after the removal finds nothing only the node holds, then revokes its certificates', async () => {
    const { ks, redis } = cp.ctx;
    // A certificate as the control plane records the ones it issues (node-revoke.test.ts revokes real ones).
    await recordIssuedCertificate(redis, ks, { node: 'n1', serial: '0A1B2C', notAfter: Date.now() + 600_000 });
    const run = cli(['n1', '--timeout', '60s'], 60_000);
    let since: number | undefined;
    for (let i = 0; !(since = (await getNode(redis, ks, 'n1'))?.removingSince); i++) {
      assert.ok(i < 100, 'the command marked n1');
      await sleep(50);
    }
    await pass(Math.max(Date.now(), since), { n1: { files: 2, bytes: 2048 } });
    await sleep(2500);
    await pass(Math.max(Date.now(), since), { n1: { files: 0, bytes: 0 } });
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^node n1 holds no copy the cluster lacks and runs no jobs: its agent can be stopped now\nnode n1: its certificate is refused from now on by the control plane/);
    assert.ok(await isRevoked(redis, ks, 'a1b2c'), 'revoked once the node could be stopped');
    // Not a terminal: a plain line per change.
    assert.match(r.stderr, /^removing n1: 2 files \(2\.0KiB\) not yet copied elsewhere, 0 jobs still there$/m);
    assert.doesNotMatch(r.stderr, /\r|\x1b/);

    // Again, with -o json: the removal is already complete.
    const json = await cli(['n1', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const { pass: last, ...rest } = JSON.parse(json.stdout) as Removal;
    assert.deepEqual(rest, { name: 'n1', status: 'draining', removing: true, removingSince: new Date(since).toISOString(), runningJobs: 0, revokedCertificates: [] });
    assert.deepEqual({ files: last?.files, bytes: last?.bytes }, { files: 0, bytes: 0 });
    assert.equal((await call('/v1/nodes/n1/uncordon', 'POST')).status, 200);
  });

  it('the CLI gives up after --timeout, saying what is left and what to do; --no-wait returns at once', async () => {
    const r = await cli(['n3', '--timeout', '1s']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: node n3 is not ready to be stopped after 1s: no replication pass has begun since the removal yet \(every agent runs one every 15s\), 0 jobs still there\. What to do:$/m);
    assert.match(r.stderr, /^ {2}- check that the agents are up \(oswalk get nodes\): their replication passes do the copying$/m);
    assert.match(r.stderr, /^ {2}- run `oswalk node remove n3` again to go on waiting \(the removal stays in force\), or `oswalk uncordon n3` to keep the node$/m);
    assert.equal((await call('/v1/nodes/n3/removal')).body.removing, true, 'the removal stays in force');

    const quick = await cli(['n3', '--no-wait']);
    assert.equal(quick.code, 0, quick.stderr);
    assert.match(quick.stdout, /^NODE\s+STATUS\s+REPLICAS MOVED\s+JOBS LEFT TO FINISH\nn3\s+draining,removing\s+0\s+0\s*\n$/);
    assert.match(quick.stderr, /run `oswalk node remove n3` again to wait until its agent can be stopped/);

    const table = await oswalk(['--api', cp.url, 'get', 'nodes'], { cwd, env: { OSWALK_TOKEN: TOKEN } });
    assert.match(table.stdout, /^n3\s+draining,removing\s/m);

    // Uncordon while the command waits: it stops and says so.
    const waiting = cli(['n3', '--timeout', '30s']);
    await sleep(1000);
    assert.equal((await call('/v1/nodes/n3/uncordon', 'POST')).status, 200);
    const undone = await waiting;
    assert.equal(undone.code, 1);
    assert.match(undone.stderr, /^error: the removal of node n3 was undone \(oswalk uncordon\) while waiting: run `oswalk node remove n3` again to remove it$/m);
  });
});
