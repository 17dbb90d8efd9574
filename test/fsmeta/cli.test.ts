import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';
import { oswalk } from '../helpers/cli.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitVersion, getCurrent, removePath, type NewVersion } from '../../src/state/fs.js';

const T = 1_700_000_000_123_456_789n;
const TOKEN = 'fs-cli-token';

function file(node: string, mtimeNs: bigint, chunkListHash: string): NewVersion {
  return { path: '/docs/f.txt', type: 'file', node, mtimeNs: String(mtimeNs), size: 5, mode: 0o100644, uid: 0, gid: 0, chunkListHash, source: 'export' };
}

describe('oswalk versions / restore through the API', () => {
  let server: TestRedis;
  let cp: RunningControlPlane;
  before(async () => {
    server = await TestRedis.start();
    cp = await startControlPlane({ redisUrl: server.url, token: TOKEN, tls: 'insecure-http', host: '127.0.0.1', port: await freePort(), prefix: testPrefix() });
  });
  after(async () => {
    await cp.close();
    await server.stop();
  });

  it('lists versions as a table and as JSON, and restores one', async () => {
    const { redis, ks } = cp.ctx.fs;
    // a file version must name a stored chunk list
    for (const m of ['a', 'b']) await redis.set(ks.fsChunkList(m.repeat(64)), m);
    await commitVersion(redis, ks, file('n1', T, 'a'.repeat(64)));
    await commitVersion(redis, ks, { ...file('n2', T + 1n, 'b'.repeat(64)), xattrs: { 'user.a': 'MQ==', 'user.b': '' } });
    const common = ['--api', cp.url, '--token', TOKEN];
    const table = await oswalk(['versions', 'docs/f.txt', ...common]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /ID\s+NODE\s+MTIME\s+SIZE\s+HASH\s+SOURCE\s+XATTRS\s+CURRENT/);
    assert.match(table.stdout, /n2\s+2023-11-14T22:13:20\.123456790Z\s+5B\s+bbbbbbbbbbbb\s+export\s+2\s+\*/);
    const json = JSON.parse((await oswalk(['versions', '/cluster/docs/f.txt', '--mount', '/cluster', '-o', 'json', ...common])).stdout).items;
    assert.deepEqual(json.map((v: { id: string; node: string; current: boolean; hash: string }) => [v.id, v.node, v.current, v.hash[0]]), [['2', 'n2', true, 'b'], ['1', 'n1', false, 'a']]);
    assert.deepEqual(json.map((v: { xattrs: object }) => v.xattrs), [{ 'user.a': 'MQ==', 'user.b': '' }, {}]);
    assert.equal(json[1].mtime, '2023-11-14T22:13:20.123456789Z');
    const out = await oswalk(['restore', 'docs/f.txt', '1', '--node', 'n3', ...common]);
    assert.match(out.stdout, /restored \/docs\/f.txt version 1 as version 3/);
    const cur = await getCurrent(redis, ks, '/docs/f.txt');
    assert.equal(cur?.chunkListHash, 'a'.repeat(64));
    assert.equal(cur?.node, 'n3');
    const missing = await oswalk(['restore', 'docs/f.txt', '42', ...common]);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /^error: .*ENOENT.*\/docs\/f\.txt \(no version 42 is kept/);
    await removePath(redis, ks, '/docs/f.txt', 'n1', { dir: false });
    const deleted = JSON.parse((await oswalk(['versions', 'docs/f.txt', '-o', 'json', ...common])).stdout).items[0];
    const tomb = await oswalk(['restore', 'docs/f.txt', deleted.id, ...common]);
    assert.equal(tomb.code, 1);
    assert.match(tomb.stderr, new RegExp(`EINVAL: /docs/f.txt \\(version ${deleted.id} is a delete: restore one with content\\)`));
    const bad = await oswalk(['restore', 'docs/f.txt', 'abc', ...common]);
    assert.equal(bad.code, 2, 'a usage error, found before asking anyone');
    assert.match(bad.stderr, /a version id is a number/);
    const none = await oswalk(['versions', 'nope/x', ...common, '-o', 'json']);
    assert.equal(none.code, 4);
    assert.deepEqual(JSON.parse(none.stdout), { kind: 'List', items: [] });
    // A relative PATH into the local mount from here is not what it looks like: say so.
    const here = mkdtempSync(join(tmpdir(), 'oswalk-fs-cli-'));
    try {
      const note = await oswalk(['versions', 'mnt/x', '--mount', join(here, 'mnt'), ...common], { cwd: here });
      assert.equal(note.code, 4, note.stderr);
      assert.equal(note.stdout, '/mnt/x has no versions (PATH is taken from the root of the unified tree; for ./mnt/x give /x).\n');
      assert.equal((await oswalk(['versions', 'nope/x', ...common])).stdout, '/nope/x has no versions.\n');
    } finally {
      rmSync(here, { recursive: true, force: true });
    }
  });
});
