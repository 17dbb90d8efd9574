/**
 * kubectl's habits in `oswalk get` (issue 23): -l label selectors on every kind with labels,
 * -o name and -o wide, -w to watch, one JSON form for lists with RFC 3339 times, and
 * `oswalk diff -f`; the real command against a control plane and an agent.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { oswalk as runOswalk, startOswalk, stopChild } from '../helpers/cli.js';
import { api, TOKEN, useCliCluster } from '../helpers/jobs-cluster.js';

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function manifest(kind: 'Job' | 'Service' | 'Mount', name: string, labels: Record<string, string>, spec: string[]): string {
  const entries = Object.entries(labels);
  return ['apiVersion: oswalk.dev/v1', `kind: ${kind}`, 'metadata:', `  name: ${name}`, ...(entries.length ? ['  labels:'] : []),
    ...entries.map(([k, v]) => `    ${k}: "${v}"`), 'spec:', ...spec.map((l) => `  ${l}`), ''].join('\n');
}

describe('oswalk get: selectors, output forms, watch; oswalk diff', () => {
  const c = useCliCluster('get-cli', { zone: 'z1' });
  const { state, oswalk } = c;
  const file = (name: string, text: string) => {
    const path = join(state.dir, name);
    writeFileSync(path, text);
    return path;
  };

  const lines = async (args: string[]) => {
    const r = await oswalk(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  const eventually = async (what: () => string, check: () => Promise<boolean>) => {
    for (let i = 0; !(await check()); i++) {
      assert.ok(i < 100, what());
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('selects by label with -l on jobs (their manifest\'s labels, filtered by the API), Services, Mounts, manifests and nodes', async () => {
    const cmd = ['runtime: process', 'command: ["true"]', 'resources:', '  cpus: 100m'];
    const applied = await oswalk(['apply', '-f', file('labelled.yaml', [
      manifest('Job', 'front', { app: 'web', tier: 'front' }, cmd),
      manifest('Job', 'back', { app: 'web', tier: 'back' }, cmd),
      manifest('Service', 'db', { app: 'db', tier: 'back' }, [...cmd.slice(0, 1), 'command: ["sleep", "60"]', 'replicas: 0', ...cmd.slice(2)]),
      manifest('Mount', 'data', { app: 'web' }, ['path: /data']),
    ].join('---\n'))]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal((await oswalk(['run', '--name', 'loose', '--cpus', '0.1', '--', 'true'])).code, 0);
    await eventually(() => 'the Jobs\' records', async () => (await lines(['get', 'jobs', '-l', 'app', '-o', 'name'])).length === 2);

    assert.deepEqual(await lines(['get', 'jobs', '-l', 'app=web', '-o', 'name']), ['job/back-0', 'job/front-0']);
    assert.deepEqual(await lines(['get', 'jobs', '-l', 'app==web,tier!=back', '-o', 'name']), ['job/front-0']);
    // A job of `oswalk run` has no labels: key!=value and !key hold for it, as in Kubernetes.
    assert.deepEqual(await lines(['get', 'jobs', '-l', 'tier!=front', '-o', 'name']), ['job/back-0', 'job/loose']);
    assert.deepEqual(await lines(['get', 'jobs', '-l', '!app', '-o', 'name']), ['job/loose']);
    // The limit counts the jobs that match, not those looked at.
    assert.deepEqual(await lines(['get', 'jobs', '-l', 'tier=front', '--limit', '1', '-o', 'name']), ['job/front-0']);
    assert.equal((await oswalk(['get', 'jobs', '-l', 'app=none'])).stdout, 'No resources found.\n');

    assert.deepEqual(await lines(['get', 'services', '-l', 'tier=back', '-o', 'name']), ['service/db']);
    assert.deepEqual(await lines(['get', 'svc', '-l', 'app=web', '-o', 'name']), []);
    assert.deepEqual(await lines(['get', 'mounts', '-l', 'app=web', '-o', 'name']), ['mount/data']);
    assert.deepEqual(await lines(['get', 'manifests', 'job', '-l', 'tier=front', '-o', 'name']), ['job/front']);
    assert.match((await oswalk(['get', 'manifests', 'Job', '-l', 'tier=back'])).stdout, /^Job\s+back\s+app=web,tier=back$/m);
    assert.deepEqual(await lines(['get', 'nodes', '-l', 'zone=z1', '-o', 'name']), ['node/n1']);
    assert.equal((await oswalk(['get', 'nodes', '-l', 'zone=z2'])).stdout, 'No resources found.\n');
  });

  it('refuses a malformed selector in one line naming it, with exit 2, before asking; the API answers 400', async () => {
    for (const args of [['jobs'], ['services'], ['mounts'], ['manifests', 'Job'], ['nodes']]) {
      const r = await oswalk(['get', ...args, '-l', 'app=web=x']);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.equal(r.stderr, 'error: -l: label selector "app=web=x": "app=web=x" is not a requirement: use key=value, key!=value, key or !key, with keys and values as labels have them (e.g. app=web,tier!=db)\n');
    }
    assert.match((await oswalk(['get', 'jobs', '-l', 'a,,b'])).stderr, /^error: -l: label selector "a,,b" has an empty requirement/);
    assert.equal((await oswalk(['get', 'jobs', 'front-0', '-l', 'app=web'])).code, 2);
    const bad = await api(c.url)(`/v1/jobs?${new URLSearchParams({ labelSelector: 'a b' })}`);
    assert.equal(bad.status, 400);
    assert.match((bad.body as { message: string }).message, /labelSelector: label selector "a b": "a b" is not a requirement/);
  });

  it('prints kind/name lines with -o name and more columns with -o wide; a command without names refuses -o name', async () => {
    assert.equal((await oswalk(['get', 'job', 'loose', '-o', 'name'])).stdout, 'job/loose\n');
    const wide = await oswalk(['get', 'jobs', 'loose', 'front-0', '-o', 'wide']);
    assert.match(wide.stdout, /^ID\s+NAME\s+STATE\s+NODE\s+ATTEMPT\s+EXIT\s+TIME\s+REASON\s+OWNER\s+IMAGE \/ COMMAND\s+AGE$/m);
    assert.match(wide.stdout, /\sfront-0\s+succeeded\s+n1\s.*\sJob\/front\s+true\s+\d+s *$/m);
    assert.doesNotMatch((await oswalk(['get', 'jobs'])).stdout, /OWNER/);
    // A process node has no DEFAULT IMAGE ("-"): it runs jobs on the host.
    assert.match((await oswalk(['get', 'nodes', '-o', 'wide'])).stdout, /^n1\s+ready\s.*\s127\.0\.0\.1\s+http:\/\/127\.0\.0\.1:\d+\s+-\s+\d+s *$/m);
    assert.match((await oswalk(['get', 'svc', '-o', 'wide'])).stdout, /^db\s+0\/0\s.*\s0\.1\s+-\s+app=db,tier=back *$/m);
    const noNames = await oswalk(['status', '-o', 'name']);
    assert.equal(noNames.code, 2);
    assert.equal(noNames.stderr, 'error: -o name: `oswalk status` prints no named objects; use -o json or -o yaml\n');
    assert.equal((await oswalk(['drain', 'n1', '-o', 'name'])).stdout, 'node/n1\n');
    assert.equal((await oswalk(['uncordon', 'n1', '-o', 'name'])).stdout, 'node/n1\n');
  });

  it('prints every list as a List and every time as RFC 3339 in JSON and YAML', async () => {
    type Doc = { kind: string; items: Record<string, unknown>[] };
    const jobs = JSON.parse((await oswalk(['get', 'jobs', '-o', 'json'])).stdout) as Doc;
    assert.equal(jobs.kind, 'List');
    const front = jobs.items.find((j) => j.name === 'front-0')!;
    for (const t of ['createdAt', 'startedAt', 'finishedAt']) assert.match(String(front[t]), RFC3339, t);
    const one = JSON.parse((await oswalk(['job', 'front-0'])).stdout) as Record<string, unknown>;
    assert.match(String(one.createdAt), RFC3339);
    const nodes = JSON.parse((await oswalk(['get', 'nodes', '-o', 'json'])).stdout) as Doc;
    assert.equal(nodes.kind, 'List');
    assert.match(String(nodes.items[0].lastHeartbeat), RFC3339);
    assert.match(String(nodes.items[0].registeredAt), RFC3339);
    const status = JSON.parse((await oswalk(['status', '-o', 'json'])).stdout) as { nodes: Record<string, unknown>[] };
    assert.match(String(status.nodes[0].lastHeartbeat), RFC3339);
    for (const args of [['get', 'services'], ['get', 'mounts'], ['get', 'manifests', 'Job'], ['drain', 'n1'], ['uncordon', 'n1'], ['cancel', 'loose']]) {
      const doc = JSON.parse((await oswalk([...args, '-o', 'json'])).stdout) as Doc;
      assert.equal(doc.kind, 'List', args.join(' '));
      assert.ok(Array.isArray(doc.items), args.join(' '));
    }
    assert.match((await oswalk(['get', 'jobs', 'front-0', '-o', 'yaml'])).stdout, /^kind: List\nitems:\n {2}- id: [0-9a-f]{12}\n[^]*\n {4}createdAt: '?\d{4}-\d\d-\d\dT[^\n]*Z'?\n/);
  });

  it('watches jobs with -w: the table, then a line each time a job changes, until Ctrl-C', async () => {
    const watch = await startOswalk(['--api', c.url, '--token', TOKEN, 'get', 'jobs', '-w', '-l', 'app=watched'], /No resources found\.\n/, { cwd: state.dir });
    try {
      const job = file('watched.yaml', manifest('Job', 'watched', { app: 'watched' }, ['runtime: process', 'command: ["sleep", "1.5"]', 'resources:', '  cpus: 100m']));
      assert.equal((await oswalk(['apply', '-f', job])).code, 0);
      await eventually(() => `the job's run in the watch: ${watch.output()}`, async () => /\swatched-0\s+succeeded\s/.test(watch.output()));
      const out = watch.output();
      // The header once, before the first job; then its states in order, each once.
      assert.equal(out.match(/^ID\s+NAME\s+STATE/gm)?.length, 1, out);
      const states = [...out.matchAll(/\swatched-0\s+(\w+)\s/g)].map((m) => m[1]);
      assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), states, out);
      assert.ok(states.includes('running') && states.at(-1) === 'succeeded', out);
    } finally {
      await stopChild(watch.child, 'SIGINT');
    }
    // -o json: each object as a document of its own, as kubectl's watch prints it.
    const json = await startOswalk(['--api', c.url, '--token', TOKEN, 'get', 'jobs', '-w', '-l', 'app=watched', '-o', 'json'], /^}$/m, { cwd: state.dir });
    await stopChild(json.child, 'SIGINT');
    const doc = JSON.parse(json.output()) as { name: string; state: string; finishedAt: string };
    assert.deepEqual([doc.name, doc.state], ['watched-0', 'succeeded']);
    assert.match(doc.finishedAt, RFC3339);
    const nodes = await startOswalk(['--api', c.url, '--token', TOKEN, 'get', 'nodes', '--watch', '-o', 'name'], /node\/n1\n/, { cwd: state.dir });
    assert.equal(await stopChild(nodes.child, 'SIGINT'), null, 'ended by Ctrl-C, as kubectl is');
  });

  it('diffs files against the cluster as kubectl diff: one unified diff per object that would change, exit 1; 0 when none would', async () => {
    const svc = (tier: string, cpus: string) => manifest('Service', 'differ', { app: 'differ', tier }, ['runtime: process', 'command: ["sleep", "60"]', 'replicas: 0', 'resources:', `  cpus: ${cpus}`]);
    const job = (cmd: string) => manifest('Job', 'differ-job', {}, ['runtime: process', `command: ["${cmd}"]`, 'resources:', '  cpus: 100m']);
    const path = file('differ.yaml', svc('a', '100m'));
    const created = await oswalk(['diff', '-f', path]);
    assert.equal(created.code, 1, created.stderr);
    assert.match(created.stdout, /^--- \/dev\/null\n\+\+\+ merged\/service\/differ\n@@ -0,0 \+1,\d+ @@\n\+apiVersion: oswalk\.dev\/v1\n\+kind: Service\n/);
    assert.equal((await oswalk(['apply', '-f', path])).code, 0);
    const same = await oswalk(['diff', '-f', path]);
    assert.deepEqual([same.code, same.stdout, same.stderr], [0, '', '']);

    // A change: only what differs, in the form the cluster stores (100m is 0.1 CPUs).
    writeFileSync(path, svc('b', '200m') + '---\n' + job('true'));
    const changed = await oswalk(['diff', '-f', path]);
    assert.equal(changed.code, 1, changed.stderr);
    const [service, newJob] = changed.stdout.split(/(?=^--- )/m);
    assert.match(service, /^--- live\/service\/differ\n\+\+\+ merged\/service\/differ\n@@ /);
    assert.deepEqual(service.split('\n').filter((l) => /^[-+][^-+]/.test(l)), ['-    tier: a', '+    tier: b', '-    cpus: 0.1', '+    cpus: 0.2']);
    assert.match(newJob, /^--- \/dev\/null\n\+\+\+ merged\/job\/differ-job\n/);
    // apply --dry-run says what each object would become, and where to see how.
    assert.equal((await oswalk(['apply', '-f', file('differ-job.yaml', job('true'))])).code, 0);
    const dry = await oswalk(['apply', '-f', path, '-f', file('differ-mount.yaml', manifest('Mount', 'differ-data', {}, ['path: /differ'])), '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, 'service/differ configured (server dry run)\njob/differ-job unchanged (server dry run)\nmount/differ-data created (server dry run)\n');
    assert.match(dry.stderr, /^oswalk diff -f \S+differ\.yaml -f \S+differ-mount\.yaml shows what would change\n$/);
    // A Job is never changed by apply: diff shows the change, and says so.
    const jobChange = await oswalk(['diff', '-f', file('differ-job.yaml', job('false'))]);
    assert.equal(jobChange.code, 1);
    assert.match(jobChange.stdout, /^-    - 'true'\n\+    - 'false'$/m);
    assert.match(jobChange.stderr, /job\/differ-job: apply refuses a change to a Job that exists/);
  });

  it('fails diff with 2 or more, never 1: a missing or bad file, -o, an unreachable control plane', async () => {
    const missing = await oswalk(['diff', '-f', join(state.dir, 'nope.yaml')]);
    assert.deepEqual([missing.code, missing.stderr], [2, `error: ${join(state.dir, 'nope.yaml')}: no such file or directory\n`]);
    const bad = await oswalk(['diff', '-f', file('bad.yaml', 'apiVersion: oswalk.dev/v1\nkind: Pod\nmetadata:\n  name: x\n')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yaml:2/);
    assert.equal((await oswalk(['diff', '-f', file('ok.yaml', manifest('Mount', 'm', {}, ['path: /m'])), '-o', 'json'])).code, 2);
    const away = await runOswalk(['--api', 'http://127.0.0.1:1', '--token', TOKEN, 'diff', '-f', join(state.dir, 'ok.yaml')], { cwd: state.dir });
    assert.equal(away.code, 3, away.stderr);
    assert.match((await oswalk(['diff', '--help'])).stdout, /-f, --filename <path\.\.\.>/);
  });
});
