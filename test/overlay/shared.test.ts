import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { ensureDocker, ensureTestImage, skipWithoutDocker, stopDockerIfStarted, TEST_IMAGE } from '../helpers/docker.js';
import { Output } from '../helpers/output.js';
import { until } from '../helpers/until.js';
import { heldFence } from '../helpers/fence.js';
import { isGuard, mountStack, mountTable, shareMount, unmountStale } from '../../src/overlay/index.js';
import { mountNodeFilesystem } from '../../src/agent/filesystem.js';
import { DockerRuntime } from '../../src/agent/runtime/docker.js';
import { connectRedis } from '../../src/state/redis.js';
import { keyspace } from '../../src/state/keys.js';
import { leftoverMounts, ok, startNode, stopNode, TOKEN, type TestNode } from './helpers.js';

/** The FS processes this test process runs (children of ours). */
function fsProcesses(): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'fs-process'], { encoding: 'utf8' }).trim().split('\n');
  } catch {
    return [];
  }
}

describe('overlay: mounts reach other mount namespaces (containers)', () => {
  let redis: TestRedis;
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-ovl-shared-'));
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis.stop();
    await unmountStale(dir);
    rmSync(dir, { recursive: true, force: true });
    await stopDockerIfStarted();
    assert.deepEqual(leftoverMounts(), []);
  });

  it('shareMount makes its directory an rshared mount point, idempotently, and binds the mount in it over a guard', async () => {
    // A plain directory stands for the FUSE mount: what is checked is the share directory's own mount.
    const src = mkdtempSync(join(tmpdir(), 'oswalk-ovl-shared-src-'));
    let bound: string | undefined;
    try {
      bound = await shareMount(src, dir, pino({ level: 'silent' }));
      assert.equal(await shareMount(src, dir, pino({ level: 'silent' })), bound);
      const entries = (await mountTable()).filter((m) => m.target === dir);
      assert.equal(entries.length, 1);
      assert.match(entries[0].optional, /shared:\d+/);
      // the second call's bind in place of the first's
      const stack = mountStack(await mountTable(), bound);
      assert.equal(stack.length, 2);
      assert.ok(isGuard(stack[0]));
    } finally {
      if (bound) await unmountStale(bound);
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('a FUSE mount made (and remade) below it shows in a namespace that sees it as a slave', async () => {
    // A process in a mount namespace of its own whose mounts are slaves of ours: a container
    // with the directory bound rslave.
    const ns = spawn('unshare', ['--mount', '--propagation', 'slave', 'sleep', '120'], { stdio: 'ignore' });
    let node: TestNode | undefined;
    try {
      await new Promise((r) => setTimeout(r, 200));
      const inNs = (cmd: string) => ok(`nsenter -t ${ns.pid} -m -- sh -c '${cmd}'`);
      node = await startNode('shared', redis.url, testPrefix(), { mountDir: join(dir, 'cluster') });
      await ok(`echo seen > ${dir}/cluster/f`);
      assert.equal(await inNs(`cat ${dir}/cluster/f`), 'seen\n');
      // A restarted FS process mounts again; the namespace sees the new mount.
      const restarted = new Promise((r) => node!.mount.once('restarted', r));
      process.kill(node.mount.pid!, 'SIGKILL');
      await restarted;
      assert.equal(await inNs(`cat ${dir}/cluster/f`), 'seen\n');
    } finally {
      ns.kill('SIGKILL');
      await stopNode(node);
    }
  });

  it('a running job container follows the agent\'s mount across an FS process restart', async (t) => {
    const docker = await ensureDocker();
    if (skipWithoutDocker(t, docker)) return;
    await ensureTestImage();
    const log = pino({ level: 'silent' });
    const base = mkdtempSync(join(tmpdir(), 'oswalk-ovl-agent-'));
    const conn = connectRedis(redis.url);
    const rt = new DockerRuntime({ logger: log, killGraceMs: 1000 });
    const mountPath = join(base, 'cluster');
    const mount = await mountNodeFilesystem({
      mountPath, node: 'cn', redisUrl: redis.url, ks: keyspace(testPrefix()), redis: conn, stateDir: join(base, 'state'), token: TOKEN,
      shareDir: join(base, 'share'), log,
    });
    try {
      await writeFile(join(mountPath, 'before'), 'before\n');
      const out = new Output();
      const h = await rt.start({
        cluster: 'c1', fenceDir: heldFence(true).dir, jobId: 'follows-remount', attempt: 1, node: 'cn', image: TEST_IMAGE, env: {}, clusterMount: mount.containerPath,
        command: ['sh', '-c', 'cat /cluster/before; echo waiting; i=0; while ! cat /cluster/after 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done'],
      }, out.onOutput);
      await out.waitFor('waiting');
      const [first] = fsProcesses();
      process.kill(Number(first), 'SIGKILL');
      await until('a new FS process', async () => {
        const now = fsProcesses();
        return now.length === 1 && now[0] !== first && (await mountTable()).some((m) => m.target === mountPath && m.fstype.startsWith('fuse'));
      }, 20_000);
      await writeFile(join(mountPath, 'after'), 'after\n');
      assert.deepEqual(await h.wait(), { exitCode: 0 });
      assert.equal(out.stdout, 'before\nwaiting\nafter\n');
    } finally {
      await rt.cleanup({ cluster: 'c1', node: 'cn' }, new Set());
      await mount.stop();
      conn.disconnect();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
