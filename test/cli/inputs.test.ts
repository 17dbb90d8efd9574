import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputsInMount } from '../../src/cli/run.js';

describe('the input files a command names (spec.inputs)', () => {
  it('are its program and arguments that are files in the mount, as paths from its root', async () => {
    const mount = mkdtempSync(join(tmpdir(), 'oswalk-inputs-'));
    try {
      mkdirSync(join(mount, 'data', 'sub'), { recursive: true });
      writeFileSync(join(mount, 'data', 'in.csv'), 'a,b\n');
      writeFileSync(join(mount, 'data', 'sub', 'x.bin'), 'x');
      writeFileSync(join(mount, 'tool.sh'), 'echo');
      const cwd = join(mount, 'data');
      assert.deepEqual(
        await inputsInMount(['../tool.sh', 'in.csv', '-o', 'out.csv', '--flag=in.csv', 'sub', `${mount}/data/sub/x.bin`, '/etc/hostname', 'in.csv'], cwd, mount),
        ['/tool.sh', '/data/in.csv', '/data/sub/x.bin'],
      );
      // From outside the mount only absolute paths into it count.
      assert.deepEqual(await inputsInMount(['sort', 'in.csv', join(mount, 'data', 'in.csv')], tmpdir(), mount), ['/data/in.csv']);
      // A sibling directory whose name starts like the mount's is not in it.
      assert.deepEqual(await inputsInMount([`${mount}-other/f`], cwd, mount), []);
    } finally {
      rmSync(mount, { recursive: true, force: true });
    }
  });
});
