import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { mountTable, prepareSharedMountDir, unmountStale } from '../../src/overlay/index.js';
import { leftoverMounts, ok, startNode, stopNode, type TestNode } from './helpers.js';

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
    assert.deepEqual(leftoverMounts(), []);
  });

  it('prepareSharedMountDir makes an rshared mount point, idempotently', async () => {
    await prepareSharedMountDir(dir);
    await prepareSharedMountDir(dir);
    const entries = (await mountTable()).filter((m) => m.target === dir);
    assert.equal(entries.length, 1);
    assert.match(entries[0].optional, /shared:\d+/);
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
});
