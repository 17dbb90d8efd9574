/**
 * The README's set-up (issue 23): scripts/setup.sh refuses a Node.js older than 20 before it
 * installs anything, saying how to get 20, and scripts/link-bin.sh (which setup.sh runs last)
 * puts the oswalk command on PATH. The whole of setup.sh is not run here: it installs packages
 * and rebuilds dist/, which the running tests are.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/paths.js';
import { cliEnv } from '../helpers/cli.js';

interface Ran { code: number; stdout: string; stderr: string }

function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('set-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-setup-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('setup.sh stops at once on Debian 12\'s Node.js 18, saying how to get 20', async () => {
    // First on PATH, a node that answers as Debian 12's nodejs package does.
    const shim = join(dir, 'node18');
    mkdirSync(shim);
    writeFileSync(join(shim, 'node'), '#!/bin/sh\n[ "$1" = --version ] && echo v18.19.0\n');
    chmodSync(join(shim, 'node'), 0o755);
    const r = await run('bash', [join(packageRoot(), 'scripts', 'setup.sh')], { env: { ...process.env, PATH: `${shim}:${process.env.PATH}` } });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '', 'no step began: nothing was installed or built');
    assert.match(r.stderr, new RegExp(`^OS Walk needs Node\\.js 20 or later; the node on your PATH \\(${shim}/node\\) is v18\\.19\\.0\\.$`, 'm'));
    assert.match(r.stderr, /^Debian 12's nodejs package is Node\.js 18\. Get Node\.js 20 from NodeSource's Debian packages$/m);
    assert.match(r.stderr, /^ {2}bash nodesource_setup\.sh && apt-get install -y nodejs$/m);
    assert.match(r.stderr, /nvm install 20$/m);
  });

  it('link-bin.sh puts oswalk on PATH, runnable from any directory; again is fine; a file that is not a link is left alone', async () => {
    const bin = join(dir, 'bin');
    const script = join(packageRoot(), 'scripts', 'link-bin.sh');
    const target = join(packageRoot(), 'bin', 'oswalk.js');
    const env = cliEnv({ PATH: `${bin}:${process.env.PATH}` });
    for (let i = 0; i < 2; i++) {
      const r = await run(script, [bin], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `==> ${bin}/oswalk -> ${target}\n`);
      assert.equal(r.stderr, '', 'the directory is on PATH: no note');
    }
    assert.equal(readlinkSync(join(bin, 'oswalk')), target);
    // By name, as a user types it, from a directory that is not the checkout.
    const byName = await run('sh', ['-c', 'oswalk --version && oswalk status --help'], { cwd: tmpdir(), env });
    assert.equal(byName.code, 0, byName.stderr);
    assert.match(byName.stdout, /^0\.1\.0\nUsage: oswalk status/);

    rmSync(join(bin, 'oswalk'));
    writeFileSync(join(bin, 'oswalk'), 'someone else\'s\n');
    const refused = await run(script, [bin], { env });
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, `error: ${bin}/oswalk exists and is not a symbolic link: left as it is (remove it and run ${script} again, or run ${target})\n`);
    assert.equal(readFileSync(join(bin, 'oswalk'), 'utf8'), 'someone else\'s\n');
  });
});
