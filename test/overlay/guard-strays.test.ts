/**
 * The read-only guard under a mount point is empty when the FUSE mount goes on top, even when
 * a program keeps writing to the path while no agent mounts it (found by the fault suite,
 * test/faults: files written into a mount path while its agent was dead got in between moving
 * the strays aside and binding the guard, libfuse then refused the mount point as not empty,
 * and the restarted agent exited).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { isGuard, mountStack, mountTable, shareMount, unmountStale } from '../../src/overlay/index.js';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { leftoverMounts, ok, startNode, stopNode, type TestNode } from './helpers.js';

const log = pino({ level: 'silent' });

/** A read-only bind of dir onto itself, as the overlay makes its guard, over whatever dir holds now. */
function bindGuard(dir: string): void {
  const staging = mkdtempSync(join(tmpdir(), 'oswalk-ovl-staging-'));
  execFileSync('mount', ['--bind', dir, staging]);
  execFileSync('mount', ['--make-private', staging]);
  execFileSync('mount', ['-o', 'remount,bind,ro,nosuid,nodev,noexec', staging]);
  execFileSync('mount', ['--bind', staging, dir]);
  execFileSync('umount', [staging]);
  rmSync(staging, { recursive: true });
}

describe('overlay: the guard under a mount point never holds strays', () => {
  let redis: TestRedis;
  const base = mkdtempSync(join(tmpdir(), 'oswalk-ovl-guardstray-'));
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis.stop();
    rmSync(base, { recursive: true, force: true });
    assert.deepEqual(leftoverMounts(), []);
  });

  it('a guard bound over a file written just before it comes off, the file goes aside, and the mount comes up', async () => {
    const mnt = join(base, 'late');
    mkdirSync(mnt);
    let node: TestNode | undefined;
    try {
      // The moment of the race: the strays had been moved, a writer put this one back, the bind came.
      writeFileSync(join(mnt, 'late.txt'), 'written while no agent mounted the path\n');
      bindGuard(mnt);
      assert.ok(isGuard(mountStack(await mountTable(), mnt).pop()));
      assert.deepEqual(readdirSync(mnt), ['late.txt']);

      // libfuse takes the mount point (it refuses one that is not empty), on top of the guard.
      node = await startNode('guard-late', redis.url, testPrefix(), { mountDir: mnt });
      await ok('echo in-cluster > f && cat f', { cwd: mnt });
      const stack = mountStack(await mountTable(), mnt);
      assert.ok(stack.pop()!.fstype.startsWith('fuse'));
      assert.ok(isGuard(stack.pop()));
      const aside = readdirSync(base).filter((n) => n.startsWith('.late.stray-'));
      assert.equal(aside.length, 1);
      assert.equal(readFileSync(join(base, aside[0], 'late.txt'), 'utf8'), 'written while no agent mounted the path\n');
    } finally {
      await stopNode(node);
      await unmountStale(mnt);
    }
    assert.deepEqual(readdirSync(mnt), [], 'the directory under the guard is empty');
  });

  it('with a writer racing it in a loop, every guard made is empty', async () => {
    // Through shareMount, which guards its bind's path as the mount guards its own: each round
    // takes the bind off and reads the guard under it. A plain directory stands for the mount.
    const src = join(base, 'race');
    mkdirSync(src);
    const share = join(base, 'share');
    const mnt = join(share, 'race');
    const stop = join(base, 'stop-race');
    // Creates a directory and a file in it, as fast as it can, until told to stop: writes fail
    // (EROFS) once the guard is there, and go on trying.
    const writer = spawn('bash', ['-c', `i=0; while [ ! -e ${stop} ]; do i=$((i+1)); mkdir -p ${mnt}/d 2>/dev/null && : > ${mnt}/d/f$i 2>/dev/null; done`], { stdio: 'ignore' });
    try {
      for (let round = 0; round < 10; round++) {
        assert.equal(await shareMount(src, share, log), mnt);
        execFileSync('umount', ['-l', mnt]);
        assert.ok(isGuard(mountStack(await mountTable(), mnt).pop()), `round ${round}: a guard under the bind`);
        assert.deepEqual(readdirSync(mnt), [], `round ${round}: the guard is empty`);
        // The guard goes, as an FS process whose agent died takes it: the path is bare again.
        execFileSync('umount', ['-l', mnt]);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      writeFileSync(stop, '');
      await once(writer, 'exit');
      await unmountStale(mnt);
      await unmountStale(share);
    }
  });
});
