import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { connectRedis } from '../../src/state/redis.js';
import { keyspace } from '../../src/state/keys.js';
import { commitVersion, getCurrent, type NewVersion } from '../../src/state/fs.js';

const CLI = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures', 'cli.js');
const run = promisify(execFile);
const T = 1_700_000_000_123_456_789n;

function file(node: string, mtimeNs: bigint, manifest: string): NewVersion {
  return { path: '/docs/f.txt', type: 'file', node, mtimeNs: String(mtimeNs), size: 5, mode: 0o100644, uid: 0, gid: 0, manifest, source: 'export' };
}

describe('oswalk versions / restore', () => {
  let server: TestRedis;
  let redis: Redis;
  before(async () => {
    server = await TestRedis.start();
    redis = connectRedis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
  });

  it('lists versions as a table and as JSON, and restores one', async () => {
    const ks = keyspace(testPrefix());
    await commitVersion(redis, ks, file('n1', T, 'a'.repeat(64)));
    await commitVersion(redis, ks, file('n2', T + 1n, 'b'.repeat(64)));
    const common = ['--redis', server.url, '--prefix', ks.prefix];
    const table = (await run(process.execPath, [CLI, 'versions', 'docs/f.txt', ...common])).stdout;
    assert.match(table, /ID.*NODE.*MTIME.*SIZE.*HASH.*CURRENT/);
    assert.match(table, /n2.*2023-11-14T22:13:20\.123456790Z.*bbbbbbbbbbbb.*\*/);
    const json = JSON.parse((await run(process.execPath, [CLI, 'versions', '/cluster/docs/f.txt', '--mount', '/cluster', '-o', 'json', ...common])).stdout);
    assert.deepEqual(json.map((v: { id: string; node: string; current: boolean; hash: string }) => [v.id, v.node, v.current, v.hash[0]]), [['2', 'n2', true, 'b'], ['1', 'n1', false, 'a']]);
    assert.equal(json[1].mtime, '2023-11-14T22:13:20.123456789Z');
    const out = (await run(process.execPath, [CLI, 'restore', 'docs/f.txt', '1', '--node', 'n3', ...common])).stdout;
    assert.match(out, /restored \/docs\/f.txt version 1 as version 3/);
    const cur = await getCurrent(redis, ks, '/docs/f.txt');
    assert.equal(cur?.manifest, 'a'.repeat(64));
    assert.equal(cur?.node, 'n3');
    await assert.rejects(run(process.execPath, [CLI, 'restore', 'docs/f.txt', '42', ...common]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 4);
      assert.equal(err.stderr, 'error: ENOENT: /docs/f.txt@42\n');
      return true;
    });
  });
});
