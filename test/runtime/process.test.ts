import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { createRuntime } from '../../src/agent/runtime/index.js';
import { groupMembers, procStat, treeCpuSeconds } from '../../src/agent/runtime/procfs.js';
import { safeName } from '../../src/agent/runtime/common.js';
import { cgroupName } from '../../src/agent/runtime/limits.js';
import { guardBinary } from '../../src/agent/runtime/guard.js';
import type { OnOutput, RunSpec } from '../../src/agent/runtime/types.js';
import { Output } from '../helpers/output.js';
import { checkStdin, checkTty } from '../helpers/runtime-stdin.js';
import { heldFence } from '../helpers/fence.js';
import { stalledMount } from '../helpers/stalled-mount.js';
import { until } from '../helpers/until.js';
import { monotonicMs, NodeFence } from '../../src/agent/fence.js';

const logger = pino({ level: 'silent' });
let stateDir: string;
let rt: ProcessRuntime;
const node = `n-${randomBytes(3).toString('hex')}`;
let seq = 0;
const cluster = `c-${randomBytes(3).toString('hex')}`;
const fence = heldFence();

function spec(command: string[], extra: Partial<RunSpec> = {}): RunSpec {
  return { cluster, fenceDir: fence.dir, jobId: `job-${++seq}`, attempt: 1, node, command, env: {}, ...extra };
}

async function run(s: RunSpec, out = new Output()) {
  const h = await rt.start(s, out.onOutput);
  return { result: await h.wait(), out };
}

/**
 * The process group of a job that printed its pid as its first line (`echo $$`): its guard's,
 * which holds the guard, the job and what the job forked.
 */
async function printedGroup(out: Output): Promise<number> {
  await out.waitFor('\n');
  return (await procStat(Number(out.stdout.split('\n')[0])))!.pgrp;
}

before(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'oswalk-rt-'));
  rt = new ProcessRuntime({ stateDir, logger, killGraceMs: 1000 });
});

after(async () => {
  for (const n of [node, `${node}-other`]) await rt.cleanup({ cluster, node: n }, new Set());
  await rm(stateDir, { recursive: true, force: true });
});

/**
 * The runtime as the agent's runner drives it: each job taken by a spare guard made ready for
 * it first (warm), which must behave in every way as a guard started for the job.
 */
class SpareFirst extends ProcessRuntime {
  override async start(s: RunSpec, onOutput: OnOutput) {
    assert.equal(await this.warm({ cluster: s.cluster, node: s.node, fenceDir: s.fenceDir }), true, 'a spare guard waits for the job');
    return super.start(s, onOutput);
  }
}

for (const spares of [false, true]) describe(spares ? 'process runtime, every job taken by a spare guard' : 'process runtime', () => {
  /** Jobs of the spare variant a test starts the ordinary way on purpose. */
  const startedOrdinarily = new Set<string>();
  if (spares) {
    const lines: string[] = [];
    before(() => {
      rt = new SpareFirst({ stateDir, logger: pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) }), killGraceMs: 1000 });
    });
    after(async () => {
      await rt.cool();
      const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; spare?: boolean; jobId?: string });
      const started = logged.filter((l) => l.msg === 'job started');
      assert.ok(started.length > 20, `${started.length} jobs started`);
      assert.deepEqual(started.filter((l) => !l.spare && !startedOrdinarily.has(l.jobId!)), [], 'every job was taken by a spare guard');
      assert.deepEqual(logged.filter((l) => l.level >= 40 && /spare/.test(l.msg)), [], 'no spare guard failed');
      const spareCgroups = (await rt.limits()).kind === 'cgroup1' ? (await readdir('/sys/fs/cgroup/memory/oswalk')).filter((n) => n.includes(`.${safeName(node)}`) && n.includes('.spare-')) : [];
      assert.deepEqual(spareCgroups, [], 'cool() leaves no spare cgroup behind');
    });
  }

  if (spares) {
    test('a spare whose fence passes before its job leaves quietly, its cgroup with it; the next job starts the ordinary way', async () => {
      const own = heldFence();
      const target = { cluster, node, fenceDir: own.dir };
      assert.equal(await rt.warm(target), true);
      const spareDirs = async () => (await rt.limits()).kind === 'cgroup1'
        ? (await readdir('/sys/fs/cgroup/memory/oswalk')).filter((n) => n.includes(`.${safeName(node)}`) && n.includes('.spare-'))
        : [];
      if ((await rt.limits()).kind === 'cgroup1') assert.equal((await spareDirs()).length, 1, 'the spare waits in a cgroup of its own');
      own.revoke();
      await until('the spare left, its cgroup removed', async () => (await spareDirs()).length === 0, 5000);
      // Through ProcessRuntime's own start (SpareFirst would warm a new spare): no spare waits,
      // so the job starts the ordinary way, and a fence that passed kills it at its start.
      const out = new Output();
      const ordinary = spec(['true'], { fenceDir: own.dir });
      startedOrdinarily.add(ordinary.jobId);
      const h = await ProcessRuntime.prototype.start.call(rt, ordinary, out.onOutput);
      assert.equal((await h.wait()).signal, 'SIGKILL');
      assert.match(out.stderr, /lease was not current when the job started/);
    });
  }

  test('createRuntime returns the process runtime', () => {
    assert.equal(createRuntime('process', { stateDir: '/nonexistent', logger }).name, 'process');
  });

  test('stdout and stderr stay separate and in order; the exit code comes back', async () => {
    const { result, out } = await run(spec(['sh', '-c', 'for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 3']));
    assert.deepEqual(result, { exitCode: 3 });
    assert.equal(out.stdout, 'out1\nout2\nout3\n');
    assert.equal(out.stderr, 'err1\nerr2\nerr3\n');
  });

  test('output is streamed while the job runs, not delivered at the end', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oswalk-rt-go-'));
    const out = new Output();
    const h = await rt.start(spec(['sh', '-c', `echo ready; while [ ! -e ${dir}/go ]; do sleep 0.05; done; echo done`]), out.onOutput);
    await out.waitFor('ready\n');
    assert.equal(out.stdout, 'ready\n', 'the job is still waiting for us, yet its first line has arrived');
    await writeFile(join(dir, 'go'), '');
    assert.deepEqual(await h.wait(), { exitCode: 0 });
    assert.equal(out.stdout, 'ready\ndone\n');
    await rm(dir, { recursive: true });
  });

  test('stops reading a job\'s output while the output callback asks it to hold on', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let bytes = 0;
    const h = await rt.start(spec(['sh', '-c', 'head -c 3000000 /dev/zero']), (_s, d) => {
      bytes += d.length;
      return bytes === d.length ? gate : undefined; // hold on after the first piece
    });
    await new Promise((r) => setTimeout(r, 500));
    // What the pipe and the stream's buffer hold at most; the job is blocked in write(2).
    assert.ok(bytes < 512 * 1024, `${bytes} bytes arrived while held`);
    release();
    assert.deepEqual(await h.wait(), { exitCode: 0 });
    assert.equal(bytes, 3_000_000);
  });

  test('standard input, when asked for, reaches the job and its end closes it; otherwise it reads EOF', async () => {
    await checkStdin(rt, spec);
  });

  test('a tty job: a terminal of its size that takes new ones, keys through it, Ctrl-C as SIGINT, a stop as a hang-up', async () => {
    await checkTty(rt, spec);
  });

  test('exit codes and signals', async () => {
    assert.deepEqual((await run(spec(['true']))).result, { exitCode: 0 });
    assert.deepEqual((await run(spec(['false']))).result, { exitCode: 1 });
    assert.deepEqual((await run(spec(['sh', '-c', 'kill -USR1 $$']))).result, { exitCode: null, signal: 'SIGUSR1' });
  });

  test('command not found is a result with exit code 127, not a throw', async () => {
    const { result } = await run(spec(['no-such-command-xyz', 'a']));
    assert.equal(result.exitCode, 127);
    assert.match(result.error!, /command "no-such-command-xyz" not found/);
    const abs = await run(spec(['/nonexistent/bin/tool']));
    assert.equal(abs.result.exitCode, 127);
    assert.match(abs.result.error!, /command "\/nonexistent\/bin\/tool" not found/);
    // A PATH entry that is a file, or a directory that is not there, is passed over as a shell does.
    const odd = await run({ ...spec(['true']), env: { PATH: '/etc/passwd:/nonexistent:/usr/bin:/bin' } });
    assert.deepEqual(odd.result, { exitCode: 0 });
    const none = await run({ ...spec(['no-such-command-xyz']), env: { PATH: '/etc/passwd' } });
    assert.equal(none.result.exitCode, 127);
  });

  test('a file that is not executable gives 126', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oswalk-rt-x-'));
    await writeFile(join(dir, 'script'), '#!/bin/sh\necho hi\n');
    await chmod(join(dir, 'script'), 0o644);
    const { result } = await run(spec([join(dir, 'script')]));
    assert.equal(result.exitCode, 126);
    assert.match(result.error!, /not executable/);
    await rm(dir, { recursive: true });
  });

  test('working dir: absolute, relative under the cluster mount, missing', async () => {
    const cluster = await mkdtemp(join(tmpdir(), 'oswalk-rt-cl-'));
    await mkdir(join(cluster, 'sub'));
    assert.equal((await run(spec(['pwd'], { workingDir: join(cluster, 'sub') }))).out.stdout, `${cluster}/sub\n`);
    assert.equal((await run(spec(['pwd'], { workingDir: 'sub', clusterMount: cluster }))).out.stdout, `${cluster}/sub\n`);
    const missing = await run(spec(['pwd'], { workingDir: join(cluster, 'nope') }));
    assert.equal(missing.result.exitCode, null);
    assert.match(missing.result.error!, /working dir ".*\/nope" not found on node n-/);
    const relative = await run(spec(['pwd'], { workingDir: 'sub' }));
    assert.match(relative.result.error!, /relative/);
    await rm(cluster, { recursive: true });
  });

  test('env: the agent environment, OSWALK_* job variables and spec.env reach the job', async () => {
    process.env.OSWALK_TEST_AGENT_VAR = 'from-agent';
    try {
      const s = spec(['env'], { env: { FOO: 'bar baz', OSWALK_CUSTOM: 'x=1', OSWALK_TEST_AGENT_VAR: 'overridden' }, attempt: 3 });
      const lines = new Set((await run(s)).out.stdout.split('\n'));
      for (const want of ['FOO=bar baz', 'OSWALK_CUSTOM=x=1', 'OSWALK_TEST_AGENT_VAR=overridden', `OSWALK_JOB_ID=${s.jobId}`, 'OSWALK_ATTEMPT=3', `OSWALK_NODE=${node}`]) {
        assert.ok(lines.has(want), `missing ${want}`);
      }
      assert.ok([...lines].some((l) => l.startsWith('PATH=')), 'agent env (PATH) passed through');
    } finally {
      delete process.env.OSWALK_TEST_AGENT_VAR;
    }
  });

  test('env: the cluster credentials of the agent never reach a job', async () => {
    const saved = { t: process.env.OSWALK_TOKEN, r: process.env.OSWALK_REDIS_URL };
    process.env.OSWALK_TOKEN = 'secret-token';
    process.env.OSWALK_REDIS_URL = 'redis://:pw@127.0.0.1:1';
    try {
      const out = (await run(spec(['env']))).out.stdout;
      assert.doesNotMatch(out, /secret-token|OSWALK_TOKEN|OSWALK_REDIS_URL/);
      assert.match(out, /^OSWALK_JOB_ID=/m);
    } finally {
      if (saved.t === undefined) delete process.env.OSWALK_TOKEN; else process.env.OSWALK_TOKEN = saved.t;
      if (saved.r === undefined) delete process.env.OSWALK_REDIS_URL; else process.env.OSWALK_REDIS_URL = saved.r;
    }
  });

  test('kill stops the whole process group', async () => {
    const out = new Output();
    const h = await rt.start(spec(['sh', '-c', 'echo $$; sleep 300 & sleep 300 & wait']), out.onOutput);
    const pid = await printedGroup(out);
    while ((await groupMembers(pid)).length < 4) await new Promise((r) => setTimeout(r, 20));
    await h.kill('cancelled by test');
    const result = await h.wait();
    assert.equal(result.signal, 'SIGTERM');
    assert.equal(result.error, 'killed: cancelled by test');
    assert.deepEqual(await groupMembers(pid), []);
  });

  test('the guard kills the job and all it forked once the node fence passes, with nobody to stop it', async () => {
    const own = heldFence();
    const out = new Output();
    // One child in the job's process group, one escaped from it (setsid): only its cgroup holds it.
    const h = await rt.start(spec(['sh', '-c', 'trap "" TERM; setsid sleep 3017 & sleep 300 & echo $$; wait'], { fenceDir: own.dir }), out.onOutput);
    const group = await printedGroup(out);
    while ((await groupMembers(group)).length < 3) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    own.revoke(); // what a frozen or cut-off agent leaves: a fence nobody moves on
    const result = await h.wait();
    assert.equal(result.signal, 'SIGKILL');
    assert.ok(Date.now() - t0 < 4000, `killed within the guard's look interval (1 s) (${Date.now() - t0} ms)`);
    assert.deepEqual(await groupMembers(group), []);
    assert.match(out.stderr, /oswalk: no lease renewal reached this node in time/);
    const escaped = () => execFileSync('pgrep', ['-f', '^sleep 3017$']).toString().trim();
    if (['cgroup1', 'cgroup2'].includes((await rt.limits()).kind)) {
      assert.throws(escaped, 'the process that left the group was killed through the cgroup');
    } else {
      process.kill(Number(escaped()), 'SIGKILL'); // without cgroups nothing holds it: said in the runtime README
    }
  });

  test('the job enters its working dir itself (the agent never chdirs into the mount), and a dir gone by then is a clear error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oswalk-rt-cwd-'));
    try {
      const { result, out } = await run(spec(['sh', '-c', 'pwd'], { workingDir: dir }));
      assert.deepEqual(result, { exitCode: 0 });
      assert.equal(out.stdout, `${dir}\n`);
      // Gone between the runtime's check and the start: the guard's child says so.
      const gone = spawn(guardBinary(), [join(fence.dir, 'fence'), '--cwd', join(dir, 'gone'), '--', 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      gone.stderr!.on('data', (d: Buffer) => (stderr += d));
      const [code] = await once(gone, 'exit');
      assert.equal(code, 125);
      assert.match(stderr, /oswalk: cannot enter the working directory ".*gone": No such file or directory/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a job whose working dir hangs (a stalled mount) while its fence passes never starts: the guard watches the fence during the start', async () => {
    const mount = await stalledMount();
    try {
      const own = new NodeFence(await mkdtemp(join(tmpdir(), 'oswalk-fence-')));
      own.heartbeatAccepted(monotonicMs(), 2000); // good for 1.5 s
      // A group of its own, as the agent starts it: the guard's fence kills its whole group.
      const g = spawn(guardBinary(), [own.file, '--cwd', join(mount.dir, 'stalled'), '--', 'sh', '-c', 'echo started'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const out = new Output();
      g.stdout!.on('data', (d: Buffer) => out.onOutput('stdout', d));
      g.stderr!.on('data', (d: Buffer) => out.onOutput('stderr', d));
      const t0 = Date.now();
      const exited = once(g, 'exit');
      const bound = new Promise((r) => setTimeout(r, 10_000, 'still waiting'));
      const res = await Promise.race([exited, bound]);
      if (res === 'still waiting') process.kill(-g.pid!, 'SIGKILL');
      assert.notEqual(res, 'still waiting', 'the guard fenced the job that hung starting, within 10 s');
      assert.equal((res as [number | null, string | null])[1], 'SIGKILL');
      assert.equal(out.stdout, '', 'the command never ran');
      assert.match(out.stderr, /oswalk: the node's lease lapsed while the job was starting/);
      assert.ok(Date.now() - t0 >= 1000, 'not before the fence');
    } finally {
      await mount.close();
    }
  });

  test('a job dies with its agent (kill -9), what it forked included', async () => {
    // An agent of its own: a node process that starts the job and is then SIGKILLed.
    const script = `
      import { ProcessRuntime } from ${JSON.stringify(new URL('../../src/agent/runtime/process.js', import.meta.url).href)};
      import { pino } from 'pino';
      const rt = new ProcessRuntime({ stateDir: process.argv[1], logger: pino({ level: 'silent' }) });
      const h = await rt.start(JSON.parse(process.argv[2]), (s, d) => process.stdout.write(d));
      await h.wait();`;
    const agent = spawn(process.execPath, ['--input-type=module', '-e', script, stateDir, JSON.stringify(spec(['sh', '-c', 'echo $$; sleep 300 & sleep 300']))], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = new Output();
    agent.stdout!.on('data', (d: Buffer) => out.onOutput('stdout', d));
    const group = await printedGroup(out);
    while ((await groupMembers(group)).length < 3) await new Promise((r) => setTimeout(r, 20));
    agent.kill('SIGKILL');
    const t0 = Date.now();
    while ((await groupMembers(group)).length > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await groupMembers(group), [], 'the guard took the job and its children down with the agent');
  });

  test('kill escalates to SIGKILL when the job ignores SIGTERM', async () => {
    const out = new Output();
    const h = await rt.start(spec(['sh', '-c', 'trap "" TERM; echo $$; while :; do sleep 0.1; done']), out.onOutput);
    const pid = await printedGroup(out);
    const t0 = Date.now();
    await h.kill('test');
    assert.equal((await h.wait()).signal, 'SIGKILL');
    assert.ok(Date.now() - t0 >= 900, 'waited for the grace period first');
    assert.deepEqual(await groupMembers(pid), []);
  });

  test('cleanup stops orphans of an earlier agent, keeps what it is told to keep', async () => {
    const orphan = spec(['sh', '-c', 'echo $$; sleep 300']);
    const kept = spec(['sh', '-c', 'echo $$; sleep 300']);
    const o1 = new Output();
    const o2 = new Output();
    const o3 = new Output();
    const keptHandle = await rt.start(kept, o2.onOutput);
    await rt.start(orphan, o1.onOutput); // handle forgotten, as by a crashed agent
    const otherNode = await rt.start(spec(['sh', '-c', 'echo $$; sleep 300'], { node: `${node}-other` }), o3.onOutput);
    const [orphanPid, keptPid, otherPid] = [await printedGroup(o1), await printedGroup(o2), await printedGroup(o3)];
    // A fresh runtime on the same state dir: it knows the jobs only from their records.
    const restarted = new ProcessRuntime({ stateDir, logger, killGraceMs: 1000 });
    assert.deepEqual(await restarted.cleanup({ cluster, node }, new Set([kept.jobId])), [orphan.jobId]);
    assert.deepEqual(await groupMembers(orphanPid), []);
    assert.equal((await groupMembers(keptPid)).length, 3, 'the kept job (guard, sh, sleep) still runs');
    assert.equal((await groupMembers(otherPid)).length, 3, 'a job of another node is not touched');
    await keptHandle.kill('test over');
    await otherNode.kill('test over');
    assert.deepEqual(await restarted.cleanup({ cluster, node }, new Set()), []);
    assert.deepEqual(await readdir(join(stateDir, 'runtime', 'process', safeName(cluster))).then(async (d) => (await Promise.all(d.map((x) => readdir(join(stateDir, 'runtime', 'process', safeName(cluster), x))))).flat()), []);
  });

  test('cleanup finds jobs through their cgroups when the records are lost', async (t) => {
    const limiter = await rt.limits();
    if (limiter.kind !== 'cgroup1' && limiter.kind !== 'cgroup2') {
      const reason = `no writable cgroups on this host (limit mode ${limiter.kind})`;
      console.warn(`SKIP cgroup sweep test: ${reason}`);
      t.skip(reason);
      return;
    }
    const lost = spec(['sh', '-c', 'echo $$; sleep 300']);
    const kept = spec(['sh', '-c', 'echo $$; sleep 300']);
    const [o1, o2] = [new Output(), new Output()];
    await rt.start(lost, o1.onOutput);
    const keptHandle = await rt.start(kept, o2.onOutput);
    const [lostPid, keptPid] = [await printedGroup(o1), await printedGroup(o2)];
    await rm(join(stateDir, 'runtime', 'process', safeName(cluster), safeName(node)), { recursive: true });
    const parents = limiter.kind === 'cgroup2' ? ['/sys/fs/cgroup/oswalk'] : ['/sys/fs/cgroup/memory/oswalk', '/sys/fs/cgroup/cpu/oswalk'];
    const stale = parents.map((p) => join(p, cgroupName({ cluster, node }, 'long-gone', 7)));
    for (const d of stale) await mkdir(d);

    assert.deepEqual(await rt.cleanup({ cluster, node }, new Set([kept.jobId])), [], 'no record names the lost job');
    assert.deepEqual(await groupMembers(lostPid), [], 'the lost job was killed through its cgroup');
    assert.equal((await groupMembers(keptPid)).length, 3, 'the kept job (guard, sh, sleep) still runs');
    for (const d of stale) assert.equal(existsSync(d), false, `${d} removed`);
    assert.deepEqual((await limiter.nodeCgroups({ cluster, node })).map((c) => c.name), [cgroupName({ cluster, node }, kept.jobId, 1)]);
    await keptHandle.kill('test over');
  });

  test('cleanup does not kill a process that merely reuses a recorded pid', async () => {
    const stranger = spawn('sleep', ['300'], { stdio: 'ignore', detached: true });
    try {
      await new Promise((r) => stranger.once('spawn', r));
      const pid = stranger.pid!;
      const reuseState = join(stateDir, 'reuse');
      const other = new ProcessRuntime({ stateDir: reuseState, logger });
      // A record as a crashed agent would have left it, whose pid now belongs to a stranger.
      const nodeDir = join(reuseState, 'runtime', 'process', safeName(cluster), safeName(node));
      const file = join(nodeDir, `${safeName('gone-job')}-1.json`);
      await mkdir(nodeDir, { recursive: true });
      const st = await procStat(pid);
      await writeFile(file, JSON.stringify({ jobId: 'gone-job', attempt: 1, cluster, node, pid, pgid: pid, startTime: String(Number(st!.startTime) - 1), startedAt: 0 }));
      assert.deepEqual(await other.cleanup({ cluster, node }, new Set()), []);
      assert.equal((await procStat(pid))?.state !== undefined, true, 'the stranger still runs');
      assert.equal(existsSync(file), false, 'the stale record is gone');
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  test('a job that cannot be recorded is not left running', async () => {
    const notADir = join(stateDir, 'plain-file');
    await writeFile(notADir, '');
    const broken = new ProcessRuntime({ stateDir: notADir, logger, limits: 'none' });
    const marker = `oswalk-unrecorded-${randomBytes(4).toString('hex')}`;
    await assert.rejects(broken.start(spec(['sh', '-c', `sleep 300 # ${marker}`]), () => {}), /cannot record job/);
    const running = async () => {
      const found: string[] = [];
      for (const pid of await readdir('/proc')) {
        if (!/^\d+$/.test(pid)) continue;
        const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        const st = await procStat(Number(pid));
        if (cmd.includes(marker) && st && st.state !== 'Z') found.push(pid);
      }
      return found;
    };
    const deadline = Date.now() + 3000;
    while ((await running()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await running(), []);
  });

  test('50 MB of output streams through in small chunks', async () => {
    const out = new Output(false);
    const { result } = await run(spec(['head', '-c', String(50 * 1024 * 1024), '/dev/zero']), out);
    assert.deepEqual(result, { exitCode: 0 });
    assert.equal(out.bytes, 50 * 1024 * 1024);
    assert.ok(out.chunks.length > 50, `${out.chunks.length} chunks`);
    assert.ok(Math.max(...out.chunks.map((c) => c.size)) <= 1024 * 1024, 'no chunk holds more than 1 MiB');
  });

  test('a throwing output callback does not take the agent down', async () => {
    const h = await rt.start(spec(['echo', 'hi']), () => { throw new Error('consumer broke'); });
    assert.deepEqual(await h.wait(), { exitCode: 0 });
  });

  test('memory limit by prlimit: a job allocating past it fails', async () => {
    const pr = new ProcessRuntime({ stateDir, logger, limits: 'prlimit' });
    const { result, out } = await (async () => {
      const o = new Output();
      const h = await pr.start(spec(['awk', 'BEGIN { s = "x"; while (1) s = s s }'], { memoryBytes: 64 * 1024 * 1024 }), o.onOutput);
      return { result: await h.wait(), out: o };
    })();
    assert.notEqual(result.exitCode, 0, `stderr: ${out.stderr}`);
    const ok = await (await pr.start(spec(['awk', 'BEGIN { print "small" }'], { memoryBytes: 64 * 1024 * 1024 }), () => {})).wait();
    assert.deepEqual(ok, { exitCode: 0 }, 'a job within the limit runs');
  });

  test('without cgroups: prlimit, and a log line says CPU is not limited', async () => {
    const lines: string[] = [];
    const captured = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const noCgroups = new ProcessRuntime({ stateDir, logger: captured, cgroupRoot: '/nonexistent-cgroup-root' });
    assert.equal((await noCgroups.limits()).kind, 'prlimit');
    assert.ok(lines.some((l) => /CPU is NOT limited/.test(l)), lines.join(''));
    const h = await noCgroups.start(spec(['true'], { cpus: 1, memoryBytes: 256 * 1024 * 1024 }), () => {});
    assert.deepEqual(await h.wait(), { exitCode: 0 });
    assert.ok(lines.some((l) => /CPU limit not enforced/.test(l)), 'the job that asked for CPUs is told too');
    await assert.rejects(new ProcessRuntime({ stateDir, logger, limits: 'cgroup2', cgroupRoot: '/nonexistent-cgroup-root' }).limits(), /cgroup\.controllers/);
  });

  test('cgroup limits: memory over the limit is OOM-killed, cpu quota is set, cgroup removed', async (t) => {
    const limiter = await rt.limits();
    if (limiter.kind !== 'cgroup1' && limiter.kind !== 'cgroup2') {
      const reason = `no writable cgroups on this host (limit mode ${limiter.kind})`;
      console.warn(`SKIP cgroup limit test: ${reason}`);
      t.skip(reason);
      return;
    }
    const out = new Output();
    const h = await rt.start(spec(['sh', '-c', 'echo $$; cat /proc/$$/cgroup; exec awk \'BEGIN { s = "x"; while (1) s = s s }\''], { memoryBytes: 64 * 1024 * 1024, cpus: 0.5 }), out.onOutput);
    const pid = await printedGroup(out);
    const result = await h.wait();
    assert.equal(result.signal, 'SIGKILL');
    assert.match(result.error!, /out of memory: the job exceeded its memory limit of 67108864 bytes/);
    const lines = out.stdout.split('\n');
    const cgPath = limiter.kind === 'cgroup2'
      ? lines.find((l) => l.startsWith('0::'))!.slice(3)
      : lines.find((l) => /^\d+:([^:]*,)?cpu(,[^:]*)?:/.test(l))!.split(':')[2];
    assert.match(cgPath, /\/oswalk\//, `job ran in its own cgroup (${cgPath}, pid ${pid})`);
    const root = limiter.kind === 'cgroup2' ? '/sys/fs/cgroup' : '/sys/fs/cgroup/cpu';
    assert.equal(existsSync(join(root, cgPath)), false, 'cgroup removed after the job');

    const cpuOut = new Output();
    const cpuJob = await rt.start(spec(['sh', '-c', limiter.kind === 'cgroup2'
      ? 'cat /sys/fs/cgroup$(cut -d: -f3 /proc/$$/cgroup)/cpu.max'
      : 'cat /sys/fs/cgroup/cpu$(grep -E "^[0-9]+:([^:]*,)?cpu(,[^:]*)?:" /proc/$$/cgroup | cut -d: -f3)/cpu.cfs_quota_us'], { cpus: 0.5 }), cpuOut.onOutput);
    assert.deepEqual(await cpuJob.wait(), { exitCode: 0 });
    assert.match(cpuOut.stdout, /^50000\b/);
  });

  test('CPU time through the cgroup: what /proc counts for the same processes, never past the quota', async (t) => {
    const limiter = await rt.limits();
    if (limiter.kind !== 'cgroup1' && limiter.kind !== 'cgroup2') {
      const reason = `no writable cgroups on this host (limit mode ${limiter.kind})`;
      console.warn(`SKIP cgroup CPU time test: ${reason}`);
      t.skip(reason);
      return;
    }
    const out = new Output();
    // A busy loop held to 0.3 CPUs by its quota: the test takes no whole core from the machine.
    const h = await rt.start(spec(['sh', '-c', 'echo $$; while :; do :; done'], { cpus: 0.3 }), out.onOutput);
    try {
      const guard = await printedGroup(out);
      const guardStart = (await procStat(guard))!.startTime;
      await until('the loop to use 0.2 CPU seconds', async () => ((await h.cpuSeconds()) ?? 0) >= 0.2, 20_000);
      const fromCgroup = (await h.cpuSeconds())!;
      const fromProc = (await treeCpuSeconds(guard, guardStart))!;
      assert.ok(Math.abs(fromCgroup - fromProc) < 0.05, `cgroup ${fromCgroup} s, /proc ${fromProc} s`);
      // The interval measured around both reads is at least the one between them.
      const t0 = performance.now();
      const a = (await h.cpuSeconds())!;
      await new Promise((r) => setTimeout(r, 1000));
      const b = (await h.cpuSeconds())!;
      const seconds = (performance.now() - t0) / 1000;
      // CFS hands out 0.3 of every 100 ms period: at most one period's share (0.03 s) more than
      // the rate, and what a period overran by (a slice or a tick) is taken from the next.
      assert.ok(b - a <= 0.3 * seconds + 0.05, `${b - a} CPU seconds in ${seconds} s under a 0.3 CPU quota`);
    } finally {
      await h.kill('test over');
    }
    assert.equal(await h.cpuSeconds(), undefined, 'nothing to read once the job and its cgroup are gone');
  });

  test('CPU time without cgroups: the job\'s whole process tree, read from /proc', async () => {
    const bare = new ProcessRuntime({ stateDir, logger, limits: 'none' });
    // The loop is the job's child: its time counts though the job's own process is idle.
    const h = await bare.start(spec(['sh', '-c', 'sh -c "while :; do :; done" & wait']), () => {});
    try {
      await until('the loop to use 0.3 CPU seconds', async () => ((await h.cpuSeconds()) ?? 0) >= 0.3, 20_000);
    } finally {
      await h.kill('test over');
    }
    assert.equal(await h.cpuSeconds(), undefined, 'nothing to read once the job is gone');
  });
});
