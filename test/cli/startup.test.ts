import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, OSWALK_BIN } from '../helpers/cli.js';

/**
 * The CLI loads the modules of the command a line names, and no other's: what a command does
 * not use costs every run of it (fastify and the agent for `run`, tables for `logs`). What it
 * loaded is read from Node's CommonJS cache at exit, where every npm package here lands.
 */
function packagesLoaded(args: string[]): Promise<{ code: number | null; stdout: string; packages: Set<string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-startup-'));
  const hook = join(dir, 'hook.cjs');
  const out = join(dir, 'loaded.json');
  writeFileSync(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--require', hook, OSWALK_BIN, ...args], { env: cliEnv() }, (err, stdout) => {
      try {
        const files = JSON.parse(readFileSync(out, 'utf8')) as string[];
        const packages = new Set(files.map((f) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1]).filter((p): p is string => !!p));
        resolve({ code: err ? (err.code as number) : 0, stdout, packages });
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

const HEAVY = ['fastify', 'ioredis', 'dockerode', 'fuse-native', 'cli-table3', 'js-yaml', 'pino', 'prom-client'];

describe('the CLI loads only the command it runs', () => {
  for (const args of [['run', '--help'], ['logs', '--help'], ['--version']]) {
    it(`oswalk ${args.join(' ')} loads none of ${HEAVY.join(', ')}`, async () => {
      const r = await packagesLoaded(args);
      assert.equal(r.code, 0);
      assert.deepEqual(HEAVY.filter((p) => r.packages.has(p)), [], [...r.packages].join(' '));
    });
  }

  it('still lists every command in `oswalk --help`, and suggests one for a typo', async () => {
    const r = await packagesLoaded(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['up', 'cluster', 'control-plane', 'agent', 'apply', 'run', 'shell', 'get', 'logs', 'drain', 'uncordon', 'node', 'versions', 'restore', 'translate', 'mount', 'token', 'audit']) {
      assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'), c);
    }
    const typo = await new Promise<string>((res) => execFile(process.execPath, [OSWALK_BIN, 'stauts'], { env: cliEnv() }, (_e, _o, stderr) => res(stderr)));
    assert.match(typo, /Did you mean status\?/);
  });

  it('finds the command after global options that take a value', async () => {
    const r = await packagesLoaded(['-o', 'json', '--api', 'https://127.0.0.1:1', 'run', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: oswalk run /m);
    assert.equal(r.packages.has('fastify'), false);
  });
});
