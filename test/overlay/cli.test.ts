import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { mountStack, mountTable } from '../../src/overlay/index.js';
import { OSWALK_BIN } from '../helpers/cli.js';
import { leftoverMounts, ok } from './helpers.js';

describe('oswalk mount', () => {
  let redis: TestRedis;
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-ovl-cli-'));
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(leftoverMounts(), []);
  });

  it('mounts in the foreground and unmounts on Ctrl-C (SIGINT)', async () => {
    const mnt = join(dir, 'mnt');
    const child = spawn(process.execPath, [OSWALK_BIN, 'mount', mnt, '--node', 'cli', '--redis', redis.url,
      '--prefix', testPrefix(), '--state-dir', join(dir, 'state'), '--cache-size', '64Mi', '--token', 't'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    try {
      for (let i = 0; !err.includes('mounted the unified filesystem'); i++) {
        if (i > 200 || child.exitCode !== null) assert.fail(`oswalk mount did not come up: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(await ok('echo hi > f && cat f', { cwd: mnt }), 'hi\n');
      // No agent named "cli" has joined: other nodes could not fetch what is written here.
      assert.match(err, /warning: no agent named "cli" has joined this cluster \(it has no nodes yet\)/);
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
      assert.deepEqual(mountStack(await mountTable(), mnt), [], 'nothing is mounted there');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
