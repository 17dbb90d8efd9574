import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { load } from 'js-yaml';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OSWALK_BIN, oswalk as runOswalk, startOswalk, stopChild } from '../helpers/cli.js';
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { freePort } from '../helpers/redis.js';
import { TOKEN, useCliCluster } from '../helpers/jobs-cluster.js';
import { workingDirInMount } from '../../src/cli/run.js';
import { connectRedis } from '../../src/state/redis.js';
import { LIMITS } from '../../src/util/limits.js';

describe('oswalk run / get jobs / logs / cancel, the real command', () => {
  const c = useCliCluster('cli');
  const { state, oswalk } = c;

  it('streams the output and exits with the job\'s exit code', async () => {
    const r = await oswalk(['run', '--cpus', '0.1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 4']);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.code, 4);
    const ok = await oswalk(['run', '--', 'true']);
    assert.equal(ok.code, 0);
  });

  it('hands -e values to the job exactly as typed, one variable each, as docker run -e does', async () => {
    const r = await oswalk(['run', '--cpus', '0.1', '-e', 'QUERY=sort=asc,limit=10', '-e', 'LIST=a,b,c', '-e', 'SPACED= x ', '-e', 'EMPTY=', '--', 'sh', '-c', 'printf "%s|%s|%s|%s" "$QUERY" "$LIST" "$SPACED" "${EMPTY-unset}"']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'sort=asc,limit=10|a,b,c| x |');
  });

  it('passes its standard input to the job with -i, as docker run -i does; without -i the job reads EOF', async () => {
    const withInput = (input: string, args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const quoted = [process.execPath, OSWALK_BIN, '--api', c.url, '--token', TOKEN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
      execFile('bash', ['-c', `${input} | ${quoted}`], { cwd: state.dir, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
    const lines = await withInput('seq 1 200000', ['run', '-i', '--cpus', '0.1', '--', 'sh', '-c', 'wc -l; echo done']);
    assert.equal(lines.stdout.trim().replace(/ +/g, ''), '200000\ndone', lines.stderr);
    assert.equal(lines.code, 0);
    // The job ends before its input does: the command still ends, with the job's code.
    const early = await withInput('yes', ['run', '-i', '--cpus', '0.1', '--', 'sh', '-c', 'head -2; exit 5']);
    assert.equal(early.stdout, 'y\ny\n');
    assert.equal(early.code, 5);
    const without = await withInput('echo ignored', ['run', '--cpus', '0.1', '--', 'sh', '-c', 'cat; echo eof']);
    assert.equal(without.stdout, 'eof\n');
    assert.equal((await oswalk(['run', '-i', '--detach', '--', 'true'])).code, 2);
  });

  it('passes input far beyond what is kept for a new start, as a pipe: every byte in order, with Redis holding a bounded part of it', async () => {
    // 12,000,000 numbered lines (92 MB): any byte lost, doubled or out of order changes the sum.
    const lines = 12_000_000;
    const local = await new Promise<string>((res, rej) => execFile('bash', ['-c', `seq 1 ${lines} | sha256sum`], (e, out) => (e ? rej(e) : res(out.split(' ')[0]))));
    const redis = connectRedis(c.redisUrl);
    let peak = 0;
    let polling = true;
    // What the job's input stream holds in Redis, sampled while it flows; SAMPLES 0 counts every
    // node of the stream (by default Redis extrapolates from 5 of them, which pieces of many sizes skew).
    const sampler = (async () => {
      while (polling) {
        for (const key of await redis.keys('*jobin:*')) peak = Math.max(peak, Number(await redis.memory('USAGE', key, 'SAMPLES', 0)) || 0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const quoted = [process.execPath, OSWALK_BIN, '--api', c.url, '--token', TOKEN, 'run', '-i', '--cpus', '0.1', '--retries', '2', '--', 'sh', '-c', 'sleep 1; sha256sum'].map((a) => `'${a}'`).join(' ');
      const r = await new Promise<{ err: Error | null; stdout: string; stderr: string }>((res) => execFile('bash', ['-c', `seq 1 ${lines} | ${quoted}`], { cwd: state.dir }, (err, stdout, stderr) => res({ err, stdout, stderr })));
      assert.equal(r.err, null, r.stderr);
      assert.equal(r.stdout.split(' ')[0], local);
    } finally {
      polling = false;
      await sampler;
      redis.disconnect();
    }
    assert.ok(peak > 0, 'the input stream was seen');
    // Memory, not bytes: Redis' allocator keeps a 1 MiB entry in its 1.25 MiB size class.
    const bound = 1.25 * (LIMITS.stdinReplayBytes + LIMITS.stdinWindowBytes + 4 * LIMITS.stdinPieceBytes);
    assert.ok(peak < bound, `Redis held at most ${peak} bytes of the job's input at once (bound ${bound})`);
  });

  it('follows its job again when the control plane comes back, missing no line and printing none twice', async () => {
    // The control plane as the CLI reaches it: a pass-through that goes away and comes back.
    const port = await freePort();
    const front = (): Server => createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        const headers: Record<string, string> = { authorization: req.headers.authorization ?? '' };
        if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
        const body = chunks.length ? Buffer.concat(chunks) : undefined;
        void fetch(c.url + req.url, { method: req.method, headers, body }).then((r) => {
          const location = r.headers.get('location');
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json', ...(location ? { location } : {}) });
          if (r.body) Readable.fromWeb(r.body as WebReadableStream).pipe(res);
          else res.end();
        }, () => res.destroy());
      });
    });
    const listen = (srv: Server) => new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
    let srv = front();
    await listen(srv);
    const run = runOswalk(['--api', `http://127.0.0.1:${port}`, '--token', TOKEN, 'run', '--cpus', '0.1', '--', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do echo t$i; sleep 0.4; done; exit 5'], { cwd: state.dir });
    await new Promise((r) => setTimeout(r, 1300));
    srv.closeAllConnections();
    srv.close();
    await new Promise((r) => setTimeout(r, 1500));
    srv = front();
    await listen(srv);
    try {
      const r = await run;
      assert.equal(r.code, 5, r.stderr);
      assert.equal(r.stdout, 't1\nt2\nt3\nt4\nt5\nt6\nt7\nt8\n');
      assert.match(r.stderr, /lost the control plane .*following again when it is back\noswalk: following again/s);
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  });

  it('counts the restarts of a crashing Service\'s replica in get services', async () => {
    const svc = join(state.dir, 'crash.yaml');
    writeFileSync(svc, ['apiVersion: oswalk.dev/v1', 'kind: Service', 'metadata:', '  name: crasher', 'spec:', '  runtime: process',
      '  command: ["sh", "-c", "exit 1"]', '  resources:', '    cpus: 100m', ''].join('\n'));
    assert.equal((await oswalk(['apply', '-f', svc])).code, 0);
    try {
      for (let i = 0; ; i++) {
        const row = /^crasher\s+\d\/1\s+Running\s+(\d+)\s/m.exec((await oswalk(['get', 'services'])).stdout);
        if (row && Number(row[1]) >= 2) break;
        assert.ok(i < 100, `no restarts counted: ${row?.[0]}`);
        await new Promise((r) => setTimeout(r, 150));
      }
    } finally {
      assert.equal((await oswalk(['delete', 'service', 'crasher'])).code, 0);
    }
  });

  it('exits as a shell would for a job killed by a signal, and says why a program did not start', async () => {
    const killed = await oswalk(['run', '--cpus', '0.1', '--', 'sh', '-c', 'kill -TERM $$']);
    assert.equal(killed.code, 143);
    const missing = await oswalk(['run', '--cpus', '0.1', '--', 'no-such-program-xyz']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /failed on n1 \(attempt 1\): command "no-such-program-xyz" not found in PATH/);
    // A failure message quoting a name with a terminal escape in it: the table shows it, inert.
    assert.equal((await oswalk(['run', '--cpus', '0.1', '--', '\u001b[31mred\rx'])).code, 127);
    const table = (await oswalk(['get', 'jobs', '--state', 'failed'])).stdout;
    assert.match(table, /\\x1b\[31mred\\rx/);
    assert.doesNotMatch(table, /[\u001b\r]/);
  });

  it('lists jobs as a table with state and node, prints logs, and cancels', async () => {
    const detached = await oswalk(['run', '--detach', '--cpus', '0.1', '--', 'sh', '-c', 'echo started; sleep 60']);
    const id = detached.stdout.trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    let table = '';
    for (let i = 0; !/running/.test(table); i++) {
      assert.ok(i < 50, table);
      table = (await oswalk(['get', 'jobs', '--state', 'running'])).stdout;
    }
    assert.match(table, /ID\s+NAME\s+STATE\s+NODE/);
    assert.match(table, new RegExp(`${id}\\s+run-${id}\\s+running\\s+n1`));
    const cancel = await oswalk(['cancel', id]);
    assert.match(cancel.stdout, /cancelling|cancelled/);
    const follow = await oswalk(['logs', '-f', id]);
    assert.equal(follow.stdout, 'started\n');
    assert.equal(follow.code, 130);
    const logs = await oswalk(['logs', id]);
    assert.equal(logs.stdout, 'started\n');
    const json = JSON.parse((await oswalk(['get', 'jobs', '-o', 'json'])).stdout) as { items: { id: string; state: string }[] };
    assert.equal(json.items.find((j) => j.id === id)?.state, 'cancelled');
    // A program that failed by its exit code: REASON says which.
    const failed = await oswalk(['run', '--cpus', '0.1', '--', 'sh', '-c', 'exit 3']);
    assert.equal(failed.code, 3);
    assert.match((await oswalk(['get', 'jobs', '--state', 'failed'])).stdout, /failed\s+n1\s+1\s+3\s+\S+\s+exit code 3 *\n/);
  });

  it('ends quietly with 141 when the reader of its output goes away; run cancels its job first', async () => {
    const piped = (args: string[], reader: string) => new Promise<{ status: number[]; stderr: string }>((resolve, reject) => {
      const quoted = [process.execPath, OSWALK_BIN, '--api', c.url, '--token', TOKEN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
      execFile('bash', ['-c', `${quoted} | ${reader}; echo "\${PIPESTATUS[*]}"`], { cwd: state.dir }, (err, stdout, stderr) => {
        if (err) reject(err);
        else resolve({ status: stdout.trim().split(' ').map(Number), stderr });
      });
    });
    // head reads one line and exits: the job's next line finds the pipe closed.
    const run = await piped(['run', '--cpus', '0.1', '--', 'sh', '-c', 'while :; do echo y; sleep 0.05; done'], 'head -1 >/dev/null');
    assert.deepEqual(run.status, [141, 0], `run's stderr: ${run.stderr}`);
    assert.doesNotMatch(run.stderr, /EPIPE|Error/);
    const jobs = JSON.parse((await oswalk(['get', 'jobs', '-o', 'json'])).stdout) as { items: { spec: { command: string[] }; state: string; cancelRequested?: boolean }[] };
    const job = jobs.items.find((j) => j.spec.command.join(' ').includes('echo y'));
    assert.ok(job && (job.state === 'cancelled' || job.cancelRequested), JSON.stringify(job));
    // A reader that is gone before the command writes at all.
    const get = await piped(['get', 'jobs'], 'exit 0');
    assert.deepEqual(get.status, [141, 0]);
    assert.equal(get.stderr, '');
  });

  it('cancels its job on SIGTERM, as on Ctrl-C, and exits 130 when the job has ended', async () => {
    const run = await startOswalk(['--api', c.url, '--token', TOKEN, 'run', '--cpus', '0.1', '--', 'sh', '-c', 'echo started; sleep 60'], /started/, { cwd: state.dir });
    assert.equal(await stopChild(run.child, 'SIGTERM'), 130);
    const id = /cancelling job ([0-9a-f]{12})/.exec(run.output())?.[1];
    assert.ok(id, run.output());
    const job = JSON.parse((await oswalk(['job', id])).stdout) as { state: string };
    assert.equal(job.state, 'cancelled');
  });

  it('applies several files in one step: a refused Job leaves every file unapplied; --dry-run asks the server', async () => {
    const job = (name: string, cmd: string) => ['apiVersion: oswalk.dev/v1', 'kind: Job', 'metadata:', `  name: ${name}`, 'spec:', '  runtime: process',
      `  command: ["${cmd}"]`, '  resources:', '    cpus: 100m', ''].join('\n');
    const [a, b, b2, dup] = ['a', 'b', 'b2', 'dup'].map((n) => join(state.dir, `multi-${n}.yaml`));
    writeFileSync(a, job('multi-a', 'true'));
    writeFileSync(b, job('multi-b', 'true'));
    writeFileSync(b2, job('multi-b', 'false'));
    writeFileSync(dup, job('multi-a', 'false'));
    assert.equal((await oswalk(['apply', '-f', b])).stdout, 'job/multi-b created\n');
    // The server's dry run sees the changed Job, which a check of the files alone cannot.
    const dry = await oswalk(['apply', '-f', a, '-f', b2, '--dry-run']);
    assert.equal(dry.code, 1);
    assert.match(dry.stderr, /multi-b\.yaml|b2\.yaml/);
    const dryA = await oswalk(['apply', '-f', a, '--dry-run']);
    assert.equal(dryA.stdout, 'job/multi-a created (server dry run)\n', dryA.stderr);
    assert.equal((await oswalk(['apply', '-f', a, '-f', b2, '--dry-run', 'client'])).stdout, '2 file(s) valid (client dry run): nothing applied\n');
    const refused = await oswalk(['apply', '-f', a, '-f', b2]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /multi-b2\.yaml: Job "multi-b" already exists with a different spec.*nothing was applied/);
    assert.equal((await oswalk(['job', 'multi-a'])).code, 4, 'multi-a.yaml was not applied either');
    const twice = await oswalk(['apply', '-f', a, '-f', dup]);
    assert.match(twice.stderr, /multi-dup\.yaml:4: metadata\.name: a second Job named "multi-a" \(the first is at .*multi-a\.yaml:4\)/);
    // Sent as one request of objects, a file applied before on its own is unchanged.
    assert.equal((await oswalk(['apply', '-f', a, '-f', b])).stdout, 'job/multi-a created\njob/multi-b unchanged\n');
  });

  it('deletes applied manifests by kind and name or by file: a Service\'s replicas stop', async () => {
    const svc = join(state.dir, 'svc.yaml');
    writeFileSync(svc, [
      'apiVersion: oswalk.dev/v1', 'kind: Service', 'metadata:', '  name: sleeper', 'spec:', '  runtime: process',
      '  command: ["sleep", "60"]', '  replicas: 2', '  resources:', '    cpus: 100m',
      '---', 'apiVersion: oswalk.dev/v1', 'kind: Job', 'metadata:', '  name: quick', 'spec:', '  runtime: process',
      '  command: ["true"]', '  resources:', '    cpus: 100m', '',
    ].join('\n'));
    assert.equal((await oswalk(['apply', '-f', svc])).code, 0);
    type Jobs = { items: { owner?: { kind: string; name: string }; state: string }[] };
    const replicas = async (states: string[]) => (JSON.parse((await oswalk(['get', 'jobs', '-o', 'json'])).stdout) as Jobs).items
      .filter((j) => j.owner?.name === 'sleeper' && states.includes(j.state)).length;
    for (let i = 0; (await replicas(['running'])) < 2; i++) {
      assert.ok(i < 100, 'two replicas running');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match((await oswalk(['get', 'services'])).stdout, /^sleeper\s+2\/2\s+Running\s/m);
    // A replica by the name `get jobs` shows.
    const replica = JSON.parse((await oswalk(['job', 'sleeper-1'])).stdout) as { index: number; state: string };
    assert.deepEqual([replica.index, replica.state], [1, 'running']);
    const del = await oswalk(['delete', 'svc', 'sleeper']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'service/sleeper deleted\n');
    for (let i = 0; (await replicas(['pending', 'running'])) > 0; i++) {
      assert.ok(i < 100, 'replicas still live after the Service was deleted');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await oswalk(['get', 'services'])).stdout, 'No resources found.\n');
    // Again: not found (exit 4), unless told to ignore that; the file's other manifest goes.
    const again = await oswalk(['delete', 'service', 'sleeper']);
    assert.equal(again.code, 4);
    assert.match(again.stderr, /Service "sleeper" has not been applied/);
    const byFile = await oswalk(['delete', '-f', svc, '--ignore-not-found', '-o', 'json']);
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.deepEqual(JSON.parse(byFile.stdout).items, [{ kind: 'Job', name: 'quick', result: 'deleted' }]);
    const bad = await oswalk(['delete', 'pods', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"pods" is not a kind: use one of job, service, node, mount/);
    assert.match((await oswalk(['delete'])).stderr, /oswalk delete KIND NAME/);
  });

  it('takes a job\'s name wherever it takes its id', async () => {
    const id = (await oswalk(['run', '--detach', '--name', 'greeter', '--cpus', '0.1', '--', 'sh', '-c', 'echo hi; sleep 60'])).stdout.trim();
    for (let i = 0; (await oswalk(['logs', 'greeter'])).stdout !== 'hi\n'; i++) {
      assert.ok(i < 100, 'logs by name');
      await new Promise((r) => setTimeout(r, 100));
    }
    // kubectl's forms: `get job NAME`, `get jobs ID...`.
    const one = await oswalk(['get', 'job', 'greeter', '-o', 'json']);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(JSON.parse(one.stdout).items.map((j: { id: string }) => j.id), [id]);
    const both = await oswalk(['get', 'jobs', id, 'greeter']);
    assert.equal(both.stdout.trim().split('\n').length, 3, both.stdout);
    assert.equal((await oswalk(['get', 'job', 'no-such-job'])).code, 4);
    const asYaml = await oswalk(['get', 'job', 'greeter', '-o', 'yaml']);
    assert.deepEqual((load(asYaml.stdout) as { items: { id: string }[] }).items.map((j) => j.id), [id], asYaml.stdout);
    const cancel = await oswalk(['cancel', 'greeter']);
    assert.match(cancel.stdout, new RegExp(`${id}\\s+(cancelling|cancelled)`));
    const missing = await oswalk(['logs', 'no-such-job']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /no job has the id or name "no-such-job"/);
  });

  it('says why a job waits, in logs -f as in run', async () => {
    // More CPUs than any node has: it waits, and says so, until cancelled.
    const id = (await oswalk(['run', '--detach', '--cpus', '500', '--', 'true'])).stdout.trim();
    const following = await oswalk(['logs', '-f', id], { timeoutMs: 4000 });
    assert.match(following.stderr, new RegExp(`oswalk: job ${id} is waiting: .+`), following.stderr);
    await oswalk(['cancel', id]);
  });

  it('holds a job back while the reader of its output is slow, as a pipe does: none of it is lost', async () => {
    // 24 MB, three times what a log keeps, into a reader that first sleeps: a pipe would block
    // the writer meanwhile, and so does run.
    const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      execFile('sh', ['-c', `"${process.execPath}" "${OSWALK_BIN}" --api ${c.url} --token ${TOKEN} run -- head -c 24000000 /dev/zero | (sleep 3; wc -c)`], { cwd: state.dir }, (err, out, errOut) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, out, err: errOut }));
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), '24000000');
    assert.doesNotMatch(r.err, /dropped/);
  });

  it('keeps following a job that waits longer than the request timeout: the stream starts at once', async () => {
    const id = (await oswalk(['run', '--detach', '--cpus', '500', '--', 'true'])).stdout.trim();
    const following = oswalk(['--request-timeout', '1s', 'logs', '-f', id], { timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 3000));
    await oswalk(['cancel', id]);
    const r = await following;
    assert.equal(r.code, 130, `still following after 3 s, then the cancel ended it: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /did not answer/);
  });

  it('fails clearly on bad input and unknown jobs', async () => {
    const r = await oswalk(['run', '--cpus', 'lots', '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--cpus <n>' argument 'lots' is invalid\. must be a number above 0/);
    assert.equal((await oswalk(['get', 'jobs', '--state', 'bogus'])).code, 2);
    const before = (await oswalk(['get', 'jobs', '-o', 'json'])).stdout;
    for (const [args, why] of [
      [['--memory', '1Zi'], /--memory: invalid memory quantity "1Zi"/],
      [['--memory', '512'], /--memory 512 is 512 bytes, below the 4Mi .* did you mean 512Mi\?/],
      [['--node-selector', 'noequals'], /"noequals" must look like key=value/],
      [['--env', '=A'], /-e "=A": give NAME=value, or NAME to pass this shell's value/],
      [['--image', ''], /--image is empty/],
      [['--name', '../../etc/passwd'], /--name "\.\.\/\.\.\/etc\/passwd": must be a DNS label/],
    ] as [string[], RegExp][]) {
      const bad = await oswalk(['run', ...args, '--', 'true']);
      assert.equal(bad.code, 2, args.join(' '));
      assert.match(bad.stderr, why);
    }
    assert.equal((await oswalk(['run', '--', ''])).code, 2);
    assert.equal((await oswalk(['get', 'jobs', '-o', 'json'])).stdout, before, 'nothing was submitted');
    const missing = await oswalk(['logs', 'ffffffffffff']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /does not exist/);
  });

  it('maps a working directory inside the unified mount to a mount-relative path', () => {
    assert.equal(workingDirInMount('/cluster/proj/src', '/cluster'), 'proj/src');
    assert.equal(workingDirInMount('/cluster', '/cluster'), '.');
    assert.equal(workingDirInMount('/clusterx/a', '/cluster'), undefined);
    assert.equal(workingDirInMount('/home/u', '/cluster'), undefined);
  });
});
