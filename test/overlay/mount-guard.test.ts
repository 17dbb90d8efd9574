/**
 * The mount never falls through to the local disk (issue 17): while the FS process is dead,
 * stopped or being replaced, a write to the mount path fails or waits, and never lands in the
 * directory under the mount; every file whose close returned success is in the cluster after
 * the restart; stray files under a mount point do not keep it from mounting; the node's record
 * says the mount is down while it is, and the scheduler places nothing there meanwhile. Real
 * FUSE mounts, real processes, as root.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { OSWALK_BIN, oswalk } from '../helpers/cli.js';
import { api, startJobsControlPlane, TOKEN as CP_TOKEN } from '../helpers/jobs-cluster.js';
import { isGuard, mountStack, mountTable, unmountStale } from '../../src/overlay/index.js';
import { mountNodeFilesystem } from '../../src/agent/filesystem.js';
import { startAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { connectRedis } from '../../src/state/redis.js';
import { keyspace } from '../../src/state/keys.js';
import type { NodeRecord } from '../../src/api/nodes.js';
import type { JobRecord } from '../../src/state/jobs.js';
import { ensureDocker, ensureTestImage, skipWithoutDocker, stopDockerIfStarted, TEST_IMAGE } from '../helpers/docker.js';
import { leftoverMounts, ok, sh, startNode, stopNode, TOKEN, type TestNode } from './helpers.js';

/**
 * Writes files into a directory in a loop, each opened by its path (so a lookup during a
 * restart meets whatever is on the path then), written whole and closed, and prints
 * `ok NAME SHA256` when open, write and close all succeeded, else `fail NAME ERRNO`.
 * Runs until the stop file exists.
 */
const WRITER = `
import errno, hashlib, os, sys, time
d, prefix, stop = sys.argv[1], sys.argv[2], sys.argv[3]
i = 0
while not os.path.exists(stop) and i < 5000:
    data = os.urandom(1 + (i * 7919) % 65536)
    name = prefix + str(i)
    try:
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            n = 0
            while n < len(data):
                n += os.write(fd, data[n:])
        finally:
            os.close(fd)
        print('ok', name, hashlib.sha256(data).hexdigest(), flush=True)
    except OSError as e:
        print('fail', name, errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    i += 1
    time.sleep(0.002)
`;

interface Writer {
  child: ChildProcess;
  lines: () => string[];
  /** Stop the loop and wait for its exit; returns what it wrote: name → sha256, and the failures. */
  stop(): Promise<{ written: Map<string, string>; failed: string[] }>;
  /** Wait until at least n more lines than now. */
  more(n: number, ms?: number): Promise<void>;
}

function startWriter(scratch: string, dir: string, prefix: string, wrap: string[] = []): Writer {
  const script = join(scratch, 'writer.py');
  writeFileSync(script, WRITER);
  const stopFile = join(scratch, `stop-${prefix}`);
  rmSync(stopFile, { force: true });
  const [cmd, ...args] = [...wrap, 'python3', script, dir, prefix, stopFile];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const lines = () => out.split('\n').filter(Boolean);
  return {
    child,
    lines,
    async more(n, ms = 20_000) {
      const want = lines().length + n;
      await until(`${n} more writes`, async () => lines().length >= want, ms);
    },
    async stop() {
      writeFileSync(stopFile, '');
      if (child.exitCode === null) await once(child, 'exit');
      const written = new Map<string, string>();
      const failed: string[] = [];
      for (const l of lines()) {
        const [what, name, rest] = l.split(' ');
        if (what === 'ok') written.set(name, rest);
        else failed.push(`${name}: ${rest}`);
      }
      return { written, failed };
    },
  };
}

/** sha256 of each file, read through the mount by another process. */
async function hashes(dir: string, names: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < names.length; i += 200) {
    const r = await ok(`sha256sum ${names.slice(i, i + 200).join(' ')}`, { cwd: dir });
    for (const line of r.split('\n').filter(Boolean)) {
      const [h, n] = line.split(/\s+/);
      out.set(n, h);
    }
  }
  return out;
}

/**
 * A directory for a mount point and, bound before anything is mounted there, a view of its
 * parent (a plain bind, not recursive): view/mnt is the directory under the mount, whatever is
 * mounted on it later.
 */
function underlyingView(tag: string): { base: string; mnt: string; under: string; dispose(): void } {
  const base = mkdtempSync(join(tmpdir(), `oswalk-ovl-guard-${tag}-`));
  const view = mkdtempSync(join(tmpdir(), `oswalk-ovl-guardview-${tag}-`));
  mkdirSync(join(base, 'mnt'));
  execFileSync('mount', ['--bind', base, view]);
  return {
    base, mnt: join(base, 'mnt'), under: join(view, 'mnt'),
    dispose() {
      execFileSync('umount', [view]);
      rmSync(view, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
    },
  };
}

async function assertAllReadBack(dir: string, written: Map<string, string>): Promise<void> {
  const got = await hashes(dir, [...written.keys()]);
  const wrong = [...written].filter(([n, h]) => got.get(n) !== h).map(([n]) => n);
  assert.deepEqual(wrong, [], `${wrong.length} of ${written.size} files whose close succeeded read back different or not at all`);
}

describe('overlay: the mount never falls through to the directory under it', () => {
  let redis: TestRedis;
  const scratch = mkdtempSync(join(tmpdir(), 'oswalk-guard-scratch-'));
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis.stop();
    rmSync(scratch, { recursive: true, force: true });
    await stopDockerIfStarted();
    assert.deepEqual(leftoverMounts(), []);
  });

  it('SIGKILL of the FS process under a root writer: writes fail or reach the cluster, none lands on the local disk', async () => {
    const v = underlyingView('kill');
    let node: TestNode | undefined;
    try {
      node = await startNode('guard-kill', redis.url, testPrefix(), { mountDir: v.mnt });
      const stack = mountStack(await mountTable(), v.mnt);
      assert.equal(stack.length, 2, 'a guard with the FUSE mount on top');
      assert.ok(isGuard(stack[0]) && stack[1].fstype === 'fuse.oswalk');
      const w = startWriter(scratch, v.mnt, 'k');
      await w.more(30);
      const pid = node.mount.pid!;
      const restarted = once(node.mount, 'restarted');
      process.kill(pid, 'SIGKILL');
      await until('the mount to say it is down', async () => node!.mount.down !== undefined, 2000);
      assert.match(node.mount.down!, /the filesystem process died \(SIGKILL\); remounting/);
      await restarted;
      assert.equal(node.mount.down, undefined);
      await w.more(30);
      const { written, failed } = await w.stop();
      console.log(`SIGKILL: ${written.size} files written, ${failed.length} writes failed (${[...new Set(failed.map((f) => f.split(': ')[1]))].join(', ')})`);
      assert.ok(failed.length > 0, 'the writer ran through the gap');
      for (const f of failed) assert.match(f, /: (ENOTCONN|EROFS|EIO|ECONNABORTED)$/);
      assert.deepEqual(readdirSync(v.under), [], 'nothing landed in the directory under the mount');
      await assertAllReadBack(v.mnt, written);
    } finally {
      await stopNode(node);
      assert.deepEqual(readdirSync(v.under), []);
      v.dispose();
    }
  });

  it('SIGSTOP of the FS process: writes wait, then go on after SIGCONT; nothing falls through, nothing fails', async () => {
    const v = underlyingView('stop');
    let node: TestNode | undefined;
    try {
      node = await startNode('guard-stop', redis.url, testPrefix(), { mountDir: v.mnt });
      const w = startWriter(scratch, v.mnt, 's');
      await w.more(30);
      const pid = node.mount.pid!;
      process.kill(pid, 'SIGSTOP');
      try {
        await new Promise((r) => setTimeout(r, 300));
        const during = w.lines().length;
        await new Promise((r) => setTimeout(r, 2000));
        assert.ok(w.lines().length <= during + 1, 'the writer waits while the FS process is stopped');
        assert.deepEqual(readdirSync(v.under), []);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await w.more(30);
      const { written, failed } = await w.stop();
      assert.deepEqual(failed, []);
      assert.equal(node.mount.restarts, 0);
      assert.deepEqual(readdirSync(v.under), []);
      await assertAllReadBack(v.mnt, written);
    } finally {
      await stopNode(node);
      v.dispose();
    }
  });

  it('a mount point holding stray files mounts, at the start and at a restart: the strays move aside', async () => {
    const v = underlyingView('stray');
    let node: TestNode | undefined;
    try {
      // Left there by an earlier run (the old fall-through): libfuse refuses a non-empty mount point.
      writeFileSync(join(v.mnt, 'stray-1'), 'before\n');
      node = await startNode('guard-stray', redis.url, testPrefix(), { mountDir: v.mnt });
      assert.deepEqual(readdirSync(v.under), []);
      const aside = readdirSync(v.base).filter((n) => n.startsWith('.mnt.stray-'));
      assert.equal(aside.length, 1);
      assert.equal(readFileSync(join(v.base, aside[0], 'stray-1'), 'utf8'), 'before\n');
      await ok('echo in-cluster > f', { cwd: v.mnt });

      // The guard gone as well (someone unmounted everything there) and a file written in the
      // gap: the restart still mounts, and moves that file aside too.
      const restarted = once(node.mount, 'restarted');
      process.kill(node.mount.pid!, 'SIGKILL');
      execFileSync('sh', ['-c', `umount -l ${v.mnt}; umount -l ${v.mnt}; echo gap > ${v.mnt}/stray-2`]);
      await restarted;
      assert.equal(await ok('cat f', { cwd: v.mnt }), 'in-cluster\n');
      assert.deepEqual(readdirSync(v.under), []);
      const moved = readdirSync(v.base).filter((n) => n.startsWith('.mnt.stray-')).flatMap((d) => readdirSync(join(v.base, d)));
      assert.deepEqual(moved.sort(), ['stray-1', 'stray-2']);
      assert.ok(isGuard(mountStack(await mountTable(), v.mnt)[0]), 'the restart put the guard back');
    } finally {
      await stopNode(node);
      v.dispose();
    }
  });

  it('job containers (a slave mount namespace on the share directory) never write under the bind either', async () => {
    const base = mkdtempSync(join(tmpdir(), 'oswalk-ovl-guardshare-'));
    const view = mkdtempSync(join(tmpdir(), 'oswalk-ovl-guardshareview-'));
    const conn = connectRedis(redis.url);
    const log = pino({ level: 'silent' });
    let mount: Awaited<ReturnType<typeof mountNodeFilesystem>> | undefined;
    let w: Writer | undefined;
    try {
      mkdirSync(join(base, 'share', 'cluster'), { recursive: true });
      execFileSync('mount', ['--bind', base, view]);
      mount = await mountNodeFilesystem({
        mountPath: join(base, 'cluster'), node: 'guard-share', redisUrl: redis.url, ks: keyspace(testPrefix()), redis: conn,
        stateDir: join(base, 'state'), token: TOKEN, shareDir: join(base, 'share'), log,
      });
      assert.equal(mount.containerPath, join(base, 'share', 'cluster'));
      assert.deepEqual({ ...mount.usage(), fileCacheBytes: undefined }, { mountReady: true, mountError: '', fileCacheBytes: undefined });
      // As a container holds the share directory: a mount namespace whose mounts are slaves of ours.
      w = startWriter(scratch, mount.containerPath!, 'c', ['unshare', '--mount', '--propagation', 'slave']);
      await w.more(30);
      const fs = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'overlay/[f]s-process.js'], { encoding: 'utf8' }).trim().split('\n');
      assert.equal(fs.length, 1);
      process.kill(Number(fs[0]), 'SIGKILL');
      await until('the mount to be reported down', async () => !mount!.usage().mountReady, 2000);
      assert.match(mount.usage().mountError, /the filesystem process died \(SIGKILL\)/);
      await until('the mount to be reported up again', async () => mount!.usage().mountReady, 20_000);
      await w.more(30);
      const { written, failed } = await w.stop();
      w = undefined;
      console.log(`containers: ${written.size} files written, ${failed.length} writes failed (${[...new Set(failed.map((f) => f.split(': ')[1]))].join(', ')})`);
      assert.ok(failed.length > 0, 'the writer ran through the gap');
      assert.deepEqual(readdirSync(join(view, 'share', 'cluster')), [], 'nothing landed under the bind for containers');
      assert.deepEqual(readdirSync(join(view, 'cluster')), [], 'nothing landed under the mount');
      await assertAllReadBack(join(base, 'cluster'), written);
    } finally {
      if (w) await w.stop();
      await mount?.stop();
      conn.disconnect();
      execFileSync('umount', [view]);
      rmSync(view, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('a real job container writing to /cluster through a restart: its writes fail or reach the cluster', async (t) => {
    const docker = await ensureDocker();
    if (skipWithoutDocker(t, docker)) return;
    await ensureTestImage();
    const base = mkdtempSync(join(tmpdir(), 'oswalk-ovl-guarddocker-'));
    const view = mkdtempSync(join(tmpdir(), 'oswalk-ovl-guarddockerview-'));
    const conn = connectRedis(redis.url);
    const name = `oswalk-guard-${process.pid}`;
    let mount: Awaited<ReturnType<typeof mountNodeFilesystem>> | undefined;
    try {
      mkdirSync(join(base, 'share', 'cluster'), { recursive: true });
      execFileSync('mount', ['--bind', base, view]);
      mount = await mountNodeFilesystem({
        mountPath: join(base, 'cluster'), node: 'guard-docker', redisUrl: redis.url, ks: keyspace(testPrefix()), redis: conn,
        stateDir: join(base, 'state'), token: TOKEN, shareDir: join(base, 'share'), log: pino({ level: 'silent' }),
      });
      // The share directory as the docker runtime binds it (read-only, rslave), as root in the
      // container; each file written and fsynced by dd, which fails if any step fails.
      const loop = 'i=0; while [ $i -lt 3000 ] && [ ! -e /.oswalk/cluster/stop ]; do i=$((i+1)); '
        + 'if echo "content $i" | dd of=/.oswalk/cluster/d$i conv=fsync 2>/dev/null; then echo ok $i; else echo fail $i; fi; sleep 0.005; done';
      const c = spawn('docker', ['run', '--rm', '--name', name, '--mount', `type=bind,source=${join(base, 'share')},target=/.oswalk,readonly,bind-propagation=rslave`,
        TEST_IMAGE, 'sh', '-c', loop], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout!.on('data', (d) => (out += d));
      const count = () => out.split('\n').filter(Boolean).length;
      await until('the container to write', async () => count() >= 30, 30_000);
      const [fsPid] = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'overlay/[f]s-process.js'], { encoding: 'utf8' }).trim().split('\n');
      process.kill(Number(fsPid), 'SIGKILL');
      await until('the mount to be reported down', async () => !mount!.usage().mountReady, 2000);
      await until('the mount to be reported up again', async () => mount!.usage().mountReady, 20_000);
      const after = count();
      await until('the container to write after the remount', async () => /ok \d+\n$/.test(out) && count() >= after + 30, 30_000);
      await ok(`touch ${join(base, 'cluster', 'stop')}`);
      await once(c, 'exit');
      const lines = out.split('\n').filter(Boolean);
      const okIds = lines.filter((l) => l.startsWith('ok ')).map((l) => l.slice(3));
      const failed = lines.length - okIds.length;
      console.log(`docker: ${okIds.length} files written, ${failed} writes failed`);
      assert.ok(failed > 0, 'the container wrote through the gap');
      assert.deepEqual(readdirSync(join(view, 'share', 'cluster')), [], 'nothing landed under the bind for containers');
      assert.deepEqual(readdirSync(join(view, 'cluster')), []);
      const bad = [];
      for (const id of okIds) {
        if (readFileSync(join(base, 'cluster', `d${id}`), 'utf8') !== `content ${id}\n`) bad.push(id);
      }
      assert.deepEqual(bad, []);
    } finally {
      await sh(`docker rm -f ${name}`);
      await mount?.stop();
      conn.disconnect();
      execFileSync('umount', [view]);
      rmSync(view, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('a parent killed with SIGKILL (`oswalk mount`) leaves the read-only guard: no FUSE mount, and no write lands in the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oswalk-ovl-guardparent-'));
    const mnt = join(dir, 'mnt');
    const child = spawn(process.execPath, [OSWALK_BIN, 'mount', mnt, '--node', 'guard-parent', '--redis', redis.url,
      '--prefix', testPrefix(), '--state-dir', join(dir, 'state'), '--token', 't'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    try {
      await until('oswalk mount to come up', async () => err.includes('mounted the unified filesystem'), 20_000);
      assert.equal(mountStack(await mountTable(), mnt).length, 2);
      child.kill('SIGKILL');
      await until('only the guard on the mount point', async () => {
        const stack = mountStack(await mountTable(), mnt);
        return stack.length === 1 && isGuard(stack[0]);
      }, 10_000);
      await ok(`! pgrep -f 'overlay/[f]s-process.js' -P ${child.pid}`);
      const write = await sh(`echo lost > ${mnt}/after-parent-died`);
      assert.notEqual(write.code, 0, 'a write with no agent gets EROFS');
      assert.match(write.stderr, /Read-only file system/);
    } finally {
      child.kill('SIGKILL');
      await unmountStale(mnt);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the FS process\'s environment holds neither the Redis password nor the cluster token', async () => {
    const password = 'pw-' + Math.random().toString(36).slice(2);
    const secretToken = 'token-' + Math.random().toString(36).slice(2);
    const admin = connectRedis(redis.url);
    await admin.config('SET', 'requirepass', password);
    admin.disconnect();
    const url = `redis://:${password}@127.0.0.1:${redis.port}`;
    const saved = { token: process.env.OSWALK_TOKEN, url: process.env.OSWALK_REDIS_URL };
    // As an agent started with them in its environment has them.
    process.env.OSWALK_TOKEN = secretToken;
    process.env.OSWALK_REDIS_URL = url;
    let node: TestNode | undefined;
    try {
      node = await startNode('guard-env', url, testPrefix(), { token: secretToken });
      const environ = readFileSync(`/proc/${node.mount.pid}/environ`, 'utf8');
      assert.ok(!environ.includes(password), 'no Redis password in /proc/<fs pid>/environ');
      assert.ok(!environ.includes(secretToken), 'no token in /proc/<fs pid>/environ');
      assert.ok(!readFileSync(`/proc/${node.mount.pid}/cmdline`, 'utf8').includes(password));
      // It has them all the same: it reached Redis, with the password, to commit this.
      await ok('echo with-password > f && cat f', { cwd: node.mnt });
    } finally {
      if (saved.token === undefined) delete process.env.OSWALK_TOKEN;
      else process.env.OSWALK_TOKEN = saved.token;
      if (saved.url === undefined) delete process.env.OSWALK_REDIS_URL;
      else process.env.OSWALK_REDIS_URL = saved.url;
      await stopNode(node);
      const c = connectRedis(url);
      await c.config('SET', 'requirepass', '');
      c.disconnect();
    }
  });
});

describe('agent: a node whose mount is down says so and gets no jobs', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis.stop();
    assert.deepEqual(leftoverMounts(), []);
  });

  it('reports the mount down in its record and `oswalk get nodes`, and the scheduler waits for it', async () => {
    const cp = await startJobsControlPlane(redis.url);
    const call = api(cp.url);
    const base = mkdtempSync(join(tmpdir(), 'oswalk-ovl-guardagent-'));
    const stateDir = join(base, 'state');
    const mountPath = join(base, 'cluster');
    const log = pino({ level: 'silent' });
    const agent = await startAgent({
      node: 'mn1', controlPlane: cp.url, token: CP_TOKEN, runtime: new ProcessRuntime({ stateDir, logger: log, killGraceMs: 500 }),
      exportDir: join(base, 'export'), stateDir, mountPath, listen: { host: '127.0.0.1', port: 0 }, log, heartbeatMs: 200,
    });
    const nodeRec = async () => (await call<NodeRecord>('/v1/nodes/mn1')).body;
    const cli = (args: string[]) => oswalk(['--api', cp.url, '--token', CP_TOKEN, ...args], { cwd: base });
    try {
      await until('the mount reported up', async () => (await nodeRec()).mountReady === true, 5000);
      // A fault that outlasts a few restarts: the FS process cannot make its staging directory.
      renameSync(join(stateDir, 'staging'), join(stateDir, 'staging.away'));
      writeFileSync(join(stateDir, 'staging'), 'not a directory');
      const [fsPid] = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'overlay/[f]s-process.js'], { encoding: 'utf8' }).trim().split('\n');
      process.kill(Number(fsPid), 'SIGKILL');
      const down = await until('the mount reported down with the failed remount', async () => {
        const n = await nodeRec();
        return n.mountReady === false && /remount failed: .*staging/.test(n.mountError ?? '') ? n : undefined;
      }, 10_000);
      assert.equal(down.status, 'ready');
      assert.match(down.mountError!, /EEXIST|ENOTDIR/);
      // Writes to the mount path fail meanwhile (the guard), as root.
      const write = await sh(`echo x > ${mountPath}/during`);
      assert.notEqual(write.code, 0);
      assert.match(write.stderr, /Read-only file system/);

      const table = await cli(['get', 'nodes']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /mn1\s+ready \(mount down: remount failed: /);
      const status = await cli(['status', '-o', 'json']);
      const st = JSON.parse(status.stdout) as { nodes: NodeRecord[] };
      assert.equal(st.nodes[0].mountReady, false);
      assert.match(st.nodes[0].mountError!, /remount failed/);
      const text = await cli(['status']);
      assert.match(text.stdout, /Nodes: 0 ready of 1 \(1 with the mount down\)/);

      // A job waits, and says why.
      const sub = await call<{ id: string }>('/v1/jobs', { spec: { command: ['sh', '-c', 'echo ran > "$OSWALK_CLUSTER/ran-on-$OSWALK_NODE"'], cpus: 0.1 } });
      assert.equal(sub.status, 200, JSON.stringify(sub.body));
      const waiting = await until('the wait reason of the mount', async () => {
        const j = (await call<JobRecord>(`/v1/jobs/${sub.body.id}`)).body;
        return /filesystem/.test(j.waitReason) ? j : undefined;
      }, 5000);
      assert.equal(waiting.state, 'pending');
      assert.match(waiting.waitReason!, /no ready node has the cluster filesystem mounted \(mn1: remount failed: /);
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await call<JobRecord>(`/v1/jobs/${sub.body.id}`)).body.state, 'pending');

      // The fault ends: the next remount comes up, the node takes the job, which writes into the cluster.
      rmSync(join(stateDir, 'staging'));
      renameSync(join(stateDir, 'staging.away'), join(stateDir, 'staging'));
      await until('the mount reported up again', async () => (await nodeRec()).mountReady === true, 20_000);
      assert.equal((await nodeRec()).mountError, undefined);
      await until('the job to succeed', async () => (await call<JobRecord>(`/v1/jobs/${sub.body.id}`)).body.state === 'succeeded', 10_000);
      assert.equal(readFileSync(join(mountPath, 'ran-on-mn1'), 'utf8'), 'ran\n');
      assert.ok(!existsSync(join(mountPath, 'during')));
    } finally {
      await agent.stop();
      await cp.close();
      await unmountStale(mountPath);
      rmSync(base, { recursive: true, force: true });
    }
  });
});
