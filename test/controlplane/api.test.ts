import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { LIMITS } from '../../src/util/limits.js';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { registerNode } from '../../src/state/nodes.js';
import { claimJobs, submitJobs } from '../../src/state/jobs.js';
import { appendLog, readLog } from '../../src/state/job-streams.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';

const TOKEN = 'test-token-123';

describe('control plane API', () => {
  let server: TestRedis;
  let cp: RunningControlPlane;
  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => fetch(cp.url + path, {
    ...init,
    headers: {
      ...(init.token === null ? {} : { authorization: `Bearer ${init.token ?? TOKEN}` }),
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });

  let epoch = 0;
  before(async () => {
    server = await TestRedis.start();
    cp = await startControlPlane({ redisUrl: server.url, token: TOKEN, tls: 'insecure-http', host: '127.0.0.1', port: await freePort(), prefix: testPrefix(), defaultImage: 'oswalk-base:test' });
    epoch = await registerNode(cp.ctx.redis, cp.ctx.ks, {
      name: 'n1', address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process', cpus: 2,
      memoryBytes: 1 << 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/x', mountPath: '/cluster',
    });
  });
  after(async () => {
    await cp.close();
    await server.stop();
  });

  it('refuses /v1/ without a token, or with a wrong one, and returns no data', async () => {
    for (const token of [null, 'wrong', TOKEN + 'x']) {
      const res = await call('/v1/nodes', { token });
      assert.equal(res.status, 401);
      const body = await res.json();
      assert.equal(body.error, 'Unauthorized');
      assert.equal(body.items, undefined);
    }
  });

  it('asks for the token however the path is spelled (the router decodes %76 to v), and on unknown paths', async () => {
    for (const path of ['/%761/status', '/%76%31/nodes', '/v%31/status', '/%2Fv1/status', '/no-such-route']) {
      const res = await call(path, { token: null, method: 'GET' });
      assert.equal(res.status, 401, path);
      assert.equal((await res.json()).items, undefined, path);
    }
    const join = await call('/%761/agents/join', { token: null, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: 'evil' }) });
    assert.equal(join.status, 401);
    assert.doesNotMatch(await join.text(), /redis/i);
    // With the token the same spelling reaches the route, as the router matches it.
    assert.equal((await call('/%761/status')).status, 200);
  });

  it('refuses a restore for a node name that is not one, and stores nothing', async () => {
    const res = await call('/v1/fs/restore', { method: 'POST', body: JSON.stringify({ path: '/b.txt', version: '1', node: 'zz|d|1|2|3' }) });
    assert.equal(res.status, 400);
    assert.match((await res.json()).details[0].path, /node/);
    assert.deepEqual((await (await call('/v1/fs/versions?path=/b.txt')).json()).items ?? [], []);
  });

  it('answers a text/plain body with 415 and bad JSON with a 400 named as such', async () => {
    const plain = await fetch(cp.url + '/v1/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, body: '{"spec":{"command":["true"]}}' });
    assert.equal(plain.status, 415);
    const bad = await fetch(cp.url + '/v1/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"spec":' });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error, 'Bad Request');
  });

  it('lists and gets nodes with a token', async () => {
    const res = await call('/v1/nodes');
    assert.equal(res.status, 200);
    const { items } = await res.json();
    assert.deepEqual(items.map((n: { name: string }) => n.name), ['n1']);
    assert.equal((await (await call('/v1/nodes/n1')).json()).cpus, 2);
    const missing = await call('/v1/nodes/nope');
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).message, /not registered/);
  });

  it('answers unknown routes and bad input with JSON errors and the right status', async () => {
    const r404 = await call('/v1/nothing-here');
    assert.equal(r404.status, 404);
    assert.equal((await r404.json()).error, 'Not Found');
    const bad = await call('/v1/nodes/BAD_NAME/drain', { method: 'POST', body: '{}' });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).message, /name/);
    const badJoin = await call('/v1/agents/join', { method: 'POST', body: JSON.stringify({ node: 'n1', extra: 1 }) });
    assert.equal(badJoin.status, 400);
    const notJson = await call('/v1/agents/join', { method: 'POST', body: '{nope' });
    assert.equal(notJson.status, 400);
  });

  it('applies several files in one request: errors name the file and line, a duplicate across files is refused, nothing half applied', async () => {
    const mount = (name: string, path = '/cluster') => `apiVersion: oswalk.dev/v1\nkind: Mount\nmetadata:\n  name: ${name}\nspec:\n  path: ${path}\n`;
    const apply = (files: { source: string; yaml: string }[], dryRun = false) => call('/v1/apply', { method: 'POST', body: JSON.stringify({ files, dryRun }) });
    const bad = await apply([{ source: 'one.yaml', yaml: mount('m1') }, { source: 'two.yaml', yaml: mount('m2', 'relative') }]);
    assert.equal(bad.status, 422);
    assert.deepEqual((({ file, line, field }) => ({ file, line, field }))(await bad.json()), { file: 'two.yaml', line: 6, field: 'spec.path' });
    const dup = await apply([{ source: 'one.yaml', yaml: mount('m1') }, { source: 'two.yaml', yaml: mount('m1', '/other') }]);
    assert.equal(dup.status, 422);
    assert.match((await dup.json()).message, /^two\.yaml:4: metadata\.name: a second Mount named "m1" \(the first is at one\.yaml:4\)/);
    assert.equal((await call('/v1/objects/Mount/m1')).status, 404, 'nothing of the first file was stored');
    const dry = await apply([{ source: 'one.yaml', yaml: mount('m1') }, { source: 'two.yaml', yaml: mount('m2') }], true);
    assert.deepEqual((await dry.json()).items.map((i: { result: string }) => i.result), ['created', 'created']);
    assert.equal((await call('/v1/objects/Mount/m1')).status, 404, 'a dry run stores nothing');
    const both = await call('/v1/apply', { method: 'POST', body: JSON.stringify({ yaml: mount('m1'), files: [] }) });
    assert.equal(both.status, 400);
  });

  it('refuses a job name that is no manifest name, a NUL in a nodeSelector, and what the process runtime would ignore, naming the field', async () => {
    const submit = (body: unknown) => call('/v1/jobs', { method: 'POST', body: JSON.stringify(body) });
    for (const name of ['../../etc/passwd', '\u202Eevil', '\u2066x', 'UPPER', 'a/b', 'x'.repeat(64), '']) {
      const res = await submit({ name, spec: { command: ['true'] } });
      assert.equal(res.status, 400, JSON.stringify(name));
      assert.match((await res.json()).message, /name/, JSON.stringify(name));
    }
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ command: ['true'], nodeSelector: { zone: 'a\u0000b' } }, /nodeSelector\["zone"\] holds a NUL byte/],
      [{ command: ['true'], nodeSelector: { 'zo\u0000ne': 'a' } }, /nodeSelector\["zo\\u0000ne"\] holds a NUL byte/],
      [{ command: ['true'], runtime: 'process', image: 'alpine' }, /image: a runtime "process" workload .* takes no image/],
      [{ command: ['true'], runtime: 'process', privileged: true }, /privileged: privileged means FUSE in a container, which only the docker runtime runs/],
      [{ command: ['true'], privileged: true }, /privileged: /],
    ];
    for (const [spec, want] of cases) {
      const res = await submit({ spec });
      assert.equal(res.status, 400, JSON.stringify(spec));
      assert.match((await res.json()).message, want, JSON.stringify(spec));
    }
    assert.deepEqual((await (await call('/v1/jobs')).json()).items, [], 'nothing was submitted');
    // An image means docker, as in a manifest: no process node runs the command without it.
    const ok = await submit({ name: 'web-1', spec: { command: ['true'], image: 'alpine', privileged: true } });
    assert.equal(ok.status, 200);
    const job = await (await call(`/v1/jobs/${(await ok.json()).id}`)).json();
    assert.equal(job.name, 'web-1');
    assert.equal(job.spec.runtime, 'docker');
    await call(`/v1/jobs/${job.id}/cancel`, { method: 'POST', body: '{}' });
    // Manifests refuse the same, naming the field with its line.
    const apply = (spec: string) => call('/v1/apply', {
      method: 'POST', body: JSON.stringify({ source: 'w.yaml', yaml: `apiVersion: oswalk.dev/v1\nkind: Job\nmetadata:\n  name: w\nspec:\n  command: ["true"]\n${spec}` }),
    });
    for (const [spec, field] of [['  privileged: true\n', 'spec.privileged'], ['  runtime: process\n  image: alpine\n', 'spec.image'], ['  nodeSelector:\n    zone: "a\\0b"\n', 'spec.nodeSelector.zone']]) {
      const res = await apply(spec);
      assert.equal(res.status, 422, spec);
      assert.equal((await res.json()).field, field, spec);
    }
  });

  it('drains and uncordons a node, and hands joining agents the Redis details and the default image', async () => {
    assert.deepEqual(await (await call('/v1/nodes/n1/drain', { method: 'POST', body: '{}' })).json(), { name: 'n1', status: 'draining', moved: 0, remaining: 0 });
    assert.equal((await (await call('/v1/nodes/n1')).json()).status, 'draining');
    assert.equal((await call('/v1/nodes/n1/uncordon', { method: 'POST', body: '{}' })).status, 200);
    const join = await (await call('/v1/agents/join', { method: 'POST', body: JSON.stringify({ node: 'n2' }) })).json();
    assert.equal(join.redisUrl, server.url);
    assert.equal(join.prefix, cp.ctx.ks.prefix);
    assert.equal(join.defaultImage, 'oswalk-base:test');
  });

  it('serves health, readiness and Prometheus metrics without a token', async () => {
    assert.equal((await call('/healthz', { token: null })).status, 200);
    assert.deepEqual(await (await call('/readyz', { token: null })).json(), { ok: true, redis: 'ready' });
    const metrics = await (await call('/metrics', { token: null })).text();
    assert.match(metrics, /oswalk_http_request_duration_seconds_bucket\{.*route="\/v1\/nodes"/);
    // Node's default metrics under their standard names, which stock dashboards query.
    assert.match(metrics, /^process_cpu_seconds_total\{component="controlplane"\} /m);
    assert.match(metrics, /^nodejs_heap_size_used_bytes\{component="controlplane"\} /m);
    assert.doesNotMatch(metrics, /oswalk_(process|nodejs)_/);
    assert.match(metrics, /oswalk_nodes\{status="ready",component="controlplane"\} 1/);
    assert.match(metrics, /oswalk_objects\{kind="Job",component="controlplane"\} 0/);
    assert.match(metrics, /oswalk_jobs\{state="pending",component="controlplane"\} 0/);
    // promtool (Debian's prometheus package, installed by the test set-up) lints the exposition.
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  });

  it('reports not ready while Redis is away and ready again after it returns', async () => {
    await server.stopProcess();
    const res = await call('/readyz', { token: null });
    assert.equal(res.status, 503);
    await server.startProcess();
    for (let i = 0; i < 50; i++) {
      if ((await call('/readyz', { token: null })).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await call('/readyz', { token: null })).status, 200);
    assert.equal((await call('/v1/nodes')).status, 200);
  });

  it('tells a log reader that fell behind the kept amount where output is missing', async () => {
    const [id] = await submitJobs(cp.ctx.redis, cp.ctx.ks, [{ spec: normalizeJobSpec({ command: ['true'] }) }]);
    // Running on n1 (placed there by the scheduler): the log takes output from its attempt only.
    for (let i = 0; !(await claimJobs(cp.ctx.redis, cp.ctx.ks, 'n1', epoch, 100, 60_000))?.some((c) => c.id === id); i++) {
      assert.ok(i < 100, 'the job was not placed on n1');
      await new Promise((r) => setTimeout(r, 50));
    }
    const line = (i: number) => Buffer.from(`line ${i} ${'x'.repeat(1000)}\n`);
    await appendLog(cp.ctx.redis, cp.ctx.ks, id, 1, [{ stream: 'out', data: line(0) }], 0, 10_000);
    const [first] = await readLog(cp.ctx.redis, cp.ctx.ks, id);
    // A reader that has read line 0; then 30 more lines, of which the log keeps about 10.
    for (let i = 1; i <= 30; i++) await appendLog(cp.ctx.redis, cp.ctx.ks, id, 1, [{ stream: 'out', data: line(i) }], 0, 10_000);
    const lines = (await (await call(`/v1/jobs/${id}/logs?after=${first.id}`)).text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines[0].t, 'sys');
    assert.match(lines[0].text, /output dropped here/);
    assert.match(lines[1].text, /^line (1\d|2\d) /, 'then what is kept');
    // A reader that is not behind hears nothing of it.
    const last = lines.filter((l) => l.t === 'out').at(-2).id;
    const tail = (await (await call(`/v1/jobs/${id}/logs?after=${last}`)).text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(tail.map((l) => l.t), ['out']);
  });

  // Last: it takes 10 s, past the node timeout of the node the other tests use.
  it('cuts off a client that trickles its request in', async () => {
    const t0 = Date.now();
    const port = Number(new URL(cp.url).port);
    const closed = await new Promise<number>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
      const drip = setInterval(() => sock.write('X-Slow: 1\r\n'), 1000);
      sock.on('data', () => undefined);
      sock.on('error', () => undefined);
      sock.on('close', () => {
        clearInterval(drip);
        resolve(Date.now() - t0);
      });
    });
    assert.ok(closed >= LIMITS.requestHeadersMs - 1000 && closed < LIMITS.requestHeadersMs + 5000, `closed after ${closed} ms`);
  });

  it('gives every error body a code for programs (kubectl\'s reasons) beside the words for people', async () => {
    const code = async (res: Response, status: number) => {
      assert.equal(res.status, status);
      return (await res.json()).code;
    };
    assert.equal(await code(await call('/v1/nodes', { token: 'wrong' }), 401), 'Unauthorized');
    assert.equal(await code(await call('/v1/nothing-here'), 404), 'NotFound');
    assert.equal(await code(await call('/v1/nodes/nope'), 404), 'NotFound');
    assert.equal(await code(await call('/v1/nodes/BAD_NAME/drain', { method: 'POST', body: '{}' }), 400), 'BadRequest');
    const plain = await fetch(cp.url + '/v1/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, body: '{}' });
    assert.equal(await code(plain, 415), 'UnsupportedMediaType');
    const apply = (spec: string) => call('/v1/apply', {
      method: 'POST', body: JSON.stringify({ source: 'c.yaml', yaml: `apiVersion: oswalk.dev/v1\nkind: Job\nmetadata:\n  name: fixed\nspec:\n  ${spec}\n` }),
    });
    assert.equal(await code(await apply('comand: ["true"]'), 422), 'Invalid');
    assert.equal((await apply('command: ["true"]')).status, 200);
    // A Job's spec cannot change: the object at fault comes as data, not only in the words.
    const conflict = await apply('command: ["false"]');
    assert.equal(conflict.status, 409);
    assert.deepEqual((({ code: c, object }) => ({ code: c, object }))(await conflict.json()), { code: 'Conflict', object: { kind: 'Job', name: 'fixed' } });
    await call('/v1/objects/Job/fixed', { method: 'DELETE' });
    // Standard input: to a job that is gone, that reads none, that has ended.
    const stdin = (id: string) => fetch(`${cp.url}/v1/jobs/${id}/stdin`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' }, body: 'x' });
    assert.equal(await code(await stdin('no-such-job'), 404), 'NotFound');
    const submit = async (spec: Record<string, unknown>) => (await (await call('/v1/jobs', { method: 'POST', body: JSON.stringify({ spec }) })).json()).id as string;
    const deaf = await submit({ command: ['true'], cpus: 0.1 });
    assert.equal(await code(await stdin(deaf), 409), 'Conflict');
    const ended = await submit({ command: ['cat'], cpus: 0.1, stdin: true });
    await call(`/v1/jobs/${ended}/cancel`, { method: 'POST', body: '{}' });
    await call(`/v1/jobs/${deaf}/cancel`, { method: 'POST', body: '{}' });
    assert.equal(await code(await stdin(ended), 409), 'Conflict');
  });
});
