import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { containerName, DockerRuntime, LABEL_JOB, LABEL_NODE } from '../../src/agent/runtime/docker.js';
import type { RunSpec } from '../../src/agent/runtime/types.js';
import { createRuntime } from '../../src/agent/runtime/index.js';
import { Output } from '../helpers/output.js';
import { heldFence } from '../helpers/fence.js';
import { checkStdin, checkTty } from '../helpers/runtime-stdin.js';
import { ensureDocker, ensureTestImage, skipWithoutDocker, stopDockerIfStarted, TEST_IMAGE, type DockerStatus } from '../helpers/docker.js';
import { sharedTempDir } from '../helpers/mounts.js';
import { until } from '../helpers/until.js';

const logger = pino({ level: 'silent' });
const node = `dn-${randomBytes(3).toString('hex')}`;
let docker: DockerStatus;
let rt: DockerRuntime;
let seq = 0;
const cluster = `c-${randomBytes(3).toString('hex')}`;
const fence = heldFence(true);

function spec(command: string[], extra: Partial<RunSpec> = {}): RunSpec {
  return { cluster, fenceDir: fence.dir, jobId: `job-${++seq}`, attempt: 1, node, image: TEST_IMAGE, command, env: {}, ...extra };
}

async function run(s: RunSpec, out = new Output()) {
  const h = await rt.start(s, out.onOutput);
  return { result: await h.wait(), out };
}

async function containersOf(jobId: string) {
  return rt.docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node}`, `${LABEL_JOB}=${jobId}`] } });
}

before(async () => {
  docker = await ensureDocker();
  if (!docker.ok) {
    console.warn(`docker runtime tests will SKIP: ${docker.reason}`);
    return;
  }
  await ensureTestImage();
  rt = new DockerRuntime({ logger, killGraceMs: 1000 });
});

after(async () => {
  if (docker.ok) for (const n of [node, `${node}-other`]) await rt.cleanup({ cluster, node: n }, new Set());
  await stopDockerIfStarted();
});

/** A build context: the test image with an entrypoint that prints its arguments. */
async function entrypointContext(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-ep-'));
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${TEST_IMAGE}\nENTRYPOINT ["sh", "-c", "echo entry: $0"]\n`);
  return dir;
}

describe('docker runtime', () => {
  test('the base image: the official node:20-bookworm-slim by default; the stand-in built without a registry has a name of its own', () => {
    const dir = join(process.cwd(), 'docker');
    assert.match(readFileSync(join(process.cwd(), 'compose.yaml'), 'utf8'), /\$\{OSWALK_BASE_IMAGE:-node:20-bookworm-slim\}/);
    assert.doesNotMatch(readFileSync(join(process.cwd(), 'compose.yaml'), 'utf8'), /OSWALK_BASE_IMAGE:-(?!node:20-bookworm-slim\})/);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('Dockerfile'))) {
      assert.match(readFileSync(join(dir, f), 'utf8'), /^ARG BASE=node:20-bookworm-slim$/m, f);
    }
    const script = readFileSync(join(dir, 'base-image.sh'), 'utf8');
    assert.match(script, /^TAG=oswalk-base:node20-bookworm$/m);
    // The stand-in never takes the official name, which would shadow the real image.
    assert.doesNotMatch(script, /(docker (tag|import)|-t)\s[^\n]*node:20-bookworm-slim/);
    assert.doesNotMatch(script, /docker tag/);
  });

  test('createRuntime returns the docker runtime', () => {
    assert.equal(createRuntime('docker', { stateDir: '/nonexistent', logger }).name, 'docker');
  });

  test('stdout and stderr stay separate and in order; the exit code comes back', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const { result, out } = await run(spec(['sh', '-c', 'for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 3']));
    assert.deepEqual(result, { exitCode: 3 });
    assert.equal(out.stdout, 'out1\nout2\nout3\n');
    assert.equal(out.stderr, 'err1\nerr2\nerr3\n');
    assert.deepEqual((await run(spec(['true']))).result, { exitCode: 0 });
    assert.deepEqual((await run(spec(['false']))).result, { exitCode: 1 });
    assert.deepEqual(await containersOf(`job-${seq}`), [], 'the container is removed after the job');
  });

  test('standard input, when asked for, reaches the container and its end closes it; otherwise it reads EOF', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    await checkStdin(rt, spec);
  });

  test('a tty job: a terminal of its size that takes new ones, keys through it, Ctrl-C as SIGINT, a stop as a hang-up', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    await checkTty(rt, spec);
  });

  test('command not found: exit code 127 and a clear error', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const s = spec(['no-such-command-xyz']);
    const { result } = await run(s);
    assert.deepEqual(result, { exitCode: 127, error: `command "no-such-command-xyz" not found in image "${TEST_IMAGE}"` });
    assert.deepEqual(await containersOf(s.jobId), []);
  });

  test('a missing image is the job\'s error, not a crash', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const { result } = await run(spec(['true'], { image: 'oswalk-test/no-such-image:1' }));
    assert.deepEqual(result, { exitCode: null, error: `image "oswalk-test/no-such-image:1" not found on node ${node}: build or load it first (docker images)` });
  });

  test('a job without an image (the node has no default image either) is refused with what to do', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const { image: _, ...bare } = spec(['true']);
    const { result } = await run(bare);
    assert.deepEqual(result, { exitCode: null, error: `the job names no image and node ${node} has no default image: set the job's image, or start the agent (or the control plane) with --default-image` });
  });

  test('pull: missing tries one bounded pull and reports its failure', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const pulling = new DockerRuntime({ logger, pull: 'missing', pullTimeoutMs: 5000 });
    const t0 = Date.now();
    const h = await pulling.start(spec(['true'], { image: 'oswalk-test/no-such-image:1' }), () => {});
    const result = await h.wait();
    assert.equal(result.exitCode, null);
    assert.match(result.error!, /^image "oswalk-test\/no-such-image:1" not found on node dn-\w+: build or load it first \(docker images\); pulling it failed: /);
    assert.ok(Date.now() - t0 < 15_000, 'the pull was bounded');
  });

  test('env and working dir', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const s = spec(['env'], { env: { FOO: 'bar baz', OSWALK_CUSTOM: 'x=1' }, attempt: 2 });
    const lines = new Set((await run(s)).out.stdout.split('\n'));
    for (const want of ['FOO=bar baz', 'OSWALK_CUSTOM=x=1', `OSWALK_JOB_ID=${s.jobId}`, 'OSWALK_ATTEMPT=2', `OSWALK_NODE=${node}`]) {
      assert.ok(lines.has(want), `missing ${want}`);
    }
    assert.equal((await run(spec(['pwd'], { workingDir: '/tmp' }))).out.stdout, '/tmp\n');
    const rel = await run(spec(['pwd'], { workingDir: 'sub' }));
    assert.match(rel.result.error!, /relative/);
  });

  test('limits, labels, FUSE access and the cluster mount go into the container', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const shared = sharedTempDir('oswalk-cl-');
    try {
      const out = new Output();
      const s = spec(['sh', '-c', 'ls /dev/fuse && echo started && sleep 300'], { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, privileged: true, clusterMount: join(shared.dir, 'cluster') });
      const h = await rt.start(s, out.onOutput);
      await out.waitFor('started');
      const [c] = await containersOf(s.jobId);
      const info = await rt.docker.getContainer(c.Id).inspect();
      assert.equal(info.HostConfig.NanoCpus, 500_000_000);
      assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
      assert.deepEqual(info.HostConfig.CapAdd, ['SYS_ADMIN']);
      assert.equal(info.Config.Labels['oswalk.attempt'], '1');
      assert.equal(info.Config.Labels['oswalk.cluster'], cluster);
      assert.deepEqual(info.Config.Entrypoint, ['/.oswalk-guard/oswalk-guard', '/.oswalk-guard/fence', '--'], 'the guard is PID 1');
      assert.deepEqual(info.Mounts.map((m) => [m.Source, m.Destination, m.Propagation, m.RW]).sort(), [[shared.dir, '/.oswalk', 'rslave', false], [fence.dir, '/.oswalk-guard', 'rprivate', false]]);
      await h.kill('test over');
      const unprivileged = await run(spec(['ls', '/dev/fuse']));
      assert.notEqual(unprivileged.result.exitCode, 0, 'no FUSE device without privileged');
    } finally {
      shared.dispose();
    }
  });

  test('cluster mount: files, and mounts made or remade there later, are visible at /cluster', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const shared = sharedTempDir('oswalk-cl-');
    const cluster = join(shared.dir, 'cluster');
    try {
      await mkdir(join(cluster, 'sub'), { recursive: true });
      await writeFile(join(cluster, 'hello.txt'), 'hello through the cluster mount\n');
      // a mount of its own, as the agent's bind of the FUSE mount is
      execFileSync('mount', ['--bind', cluster, cluster]);
      assert.equal((await run(spec(['cat', 'hello.txt'], { clusterMount: cluster, workingDir: '.' }))).out.stdout, 'hello through the cluster mount\n');
      const shell = await run(spec(['sh', '-c', 'echo x > /cluster/w && cat /cluster/w && pwd && touch /.oswalk/nope'], { clusterMount: cluster, workingDir: 'sub' }));
      assert.equal(shell.out.stdout, 'x\n/cluster/sub\n', 'writable below /cluster, read-only beside it');
      assert.notEqual(shell.result.exitCode, 0);
      // A mount made on the host after the container started (the FUSE mount, as the agent binds
      // it), then replaced by another as when the FS process restarts: both reach the container.
      const out = new Output();
      const waitFor = (file: string) => `i=0; while [ ! -e /cluster/${file} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; cat /cluster/${file}`;
      const h = await rt.start(spec(['sh', '-c', `echo waiting; ${waitFor('first')}; echo next; ${waitFor('second')}`], { clusterMount: cluster }), out.onOutput);
      await out.waitFor('waiting');
      execFileSync('umount', ['-l', cluster]);
      execFileSync('mount', ['-t', 'tmpfs', 'first', cluster]);
      await writeFile(join(cluster, 'first'), 'propagated\n');
      await out.waitFor('next');
      execFileSync('umount', ['-l', cluster]);
      execFileSync('mount', ['-t', 'tmpfs', 'second', cluster]);
      await writeFile(join(cluster, 'second'), 'remounted\n');
      assert.deepEqual(await h.wait(), { exitCode: 0 });
      assert.equal(out.stdout, 'waiting\npropagated\nnext\nremounted\n');
    } finally {
      shared.dispose();
    }
  });

  test('kill stops and removes the container', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const out = new Output();
    const s = spec(['sh', '-c', 'echo started; sleep 300']);
    const h = await rt.start(s, out.onOutput);
    await out.waitFor('started');
    const [c] = await containersOf(s.jobId);
    assert.deepEqual(c.Names, [`/${containerName(s)}`]);
    assert.match(containerName({ cluster: 'a b/c', jobId: 'j:1', attempt: 2 }), /^oswalk-a-b-c-j-1-2$/);
    const t0 = Date.now();
    await h.kill('cancelled by test');
    const result = await h.wait();
    const took = Date.now() - t0;
    assert.equal(result.error, 'killed: cancelled by test');
    assert.equal(result.exitCode, 143, 'the guard (PID 1) passed SIGTERM on to sh, which is not PID 1 and so dies of it');
    assert.ok(took < 2000, `cancel ended the job in ${took} ms, not after the kill timeout`);
    assert.deepEqual(await containersOf(s.jobId), []);
  });

  test('the guard kills a container whose node fence passed, with nobody to stop it', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const own = heldFence(true);
    const out = new Output();
    const s = spec(['sh', '-c', 'sleep 300 & echo started; wait'], { fenceDir: own.dir });
    const h = await rt.start(s, out.onOutput);
    await out.waitFor('started');
    const t0 = Date.now();
    own.revoke(); // what a frozen or cut-off agent leaves: a fence nobody moves on
    const result = await h.wait();
    assert.equal(result.exitCode, 137);
    assert.ok(Date.now() - t0 < 6000, `killed within the guard's look interval (1 s) and the container's removal (${Date.now() - t0} ms)`);
    assert.match(out.stderr, /oswalk: no lease renewal reached this node in time/);
  });

  test('an image entrypoint runs under the guard with the job command as its arguments', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const tag = `oswalk-test/entrypoint:${randomBytes(3).toString('hex')}`;
    const stream = await rt.docker.buildImage({ context: await entrypointContext(), src: ['Dockerfile'] }, { t: tag });
    await new Promise((res, rej) => rt.docker.modem.followProgress(stream, (err) => (err ? rej(err) : res(undefined))));
    try {
      const { result, out } = await run(spec(['hello'], { image: tag }));
      assert.deepEqual(result, { exitCode: 0 });
      assert.equal(out.stdout, 'entry: hello\n');
    } finally {
      await rt.docker.getImage(tag).remove({ force: true });
    }
  });

  test('CPU time: what the container burns, never past its quota, and none once it is gone', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    // A busy loop held to 0.3 CPUs by NanoCpus: the test takes no whole core from the machine.
    const h = await rt.start(spec(['sh', '-c', 'while :; do :; done'], { cpus: 0.3 }), () => {});
    try {
      await until('the loop to use 0.2 CPU seconds', async () => ((await h.cpuSeconds()) ?? 0) >= 0.2, 20_000);
      // The interval measured around both reads is at least the one between them.
      const t0 = performance.now();
      const a = (await h.cpuSeconds())!;
      await new Promise((r) => setTimeout(r, 1000));
      const b = (await h.cpuSeconds())!;
      const seconds = (performance.now() - t0) / 1000;
      // CFS hands out 0.3 of every 100 ms period: at most one period's share (0.03 s) more than
      // the rate, and what a period overran by (a slice or a tick) is taken from the next.
      assert.ok(b > a && b - a <= 0.3 * seconds + 0.05, `${b - a} CPU seconds in ${seconds} s under a 0.3 CPU quota`);
    } finally {
      await h.kill('test over');
    }
    assert.equal(await h.cpuSeconds(), undefined, 'nothing to read once the container is removed');
  });

  test('cleanup removes orphaned containers and keeps the rest', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const orphan = spec(['sleep', '300']);
    const kept = spec(['sleep', '300']);
    await rt.start(orphan, () => {}); // handle forgotten, as by a crashed agent
    const keptHandle = await rt.start(kept, () => {});
    const otherNode = await rt.start(spec(['sleep', '300'], { node: `${node}-other` }), () => {});
    const restarted = new DockerRuntime({ logger });
    assert.deepEqual(await restarted.cleanup({ cluster, node }, new Set([kept.jobId])), [orphan.jobId]);
    const others = await rt.docker.listContainers({ filters: { label: [`${LABEL_NODE}=${node}-other`] } });
    assert.equal(others.length, 1, 'a container of another node is not touched');
    await otherNode.kill('test over');
    assert.deepEqual(await containersOf(orphan.jobId), []);
    assert.equal((await containersOf(kept.jobId))[0]?.State, 'running');
    await keptHandle.kill('test over');
    assert.deepEqual(await restarted.cleanup({ cluster, node }, new Set()), []);
  });

  test('memory limit: a container allocating past it is OOM-killed', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const { result } = await run(spec(['sh', '-c', 's=x; while :; do s="$s$s"; done'], { memoryBytes: 32 * 1024 * 1024 }));
    assert.equal(result.exitCode, 137);
    assert.equal(result.error, 'out of memory: the job exceeded its memory limit of 33554432 bytes');
  });

  test('50 MB of output streams through in small chunks', async (t) => {
    if (skipWithoutDocker(t, docker)) return;
    const out = new Output(false);
    const { result } = await run(spec(['head', '-c', String(50 * 1024 * 1024), '/dev/zero']), out);
    assert.deepEqual(result, { exitCode: 0 });
    assert.equal(out.bytes, 50 * 1024 * 1024);
    assert.ok(out.chunks.length > 50, `${out.chunks.length} chunks`);
    assert.ok(Math.max(...out.chunks.map((c) => c.size)) <= 1024 * 1024, 'no chunk holds more than 1 MiB');
  });
});
