/**
 * The cluster's files in a Redis of their own (issue 21, item 5: `--fs-redis`), on the real
 * processes: two redis-servers, two control planes and two agents with their FUSE mounts, every
 * one of them given the second Redis in OSWALK_FS_REDIS_URL. Files written through one node's
 * mount read back through the other's, a lock taken on one node holds on the other, a job's
 * input files are looked up and its output comes back, versions are listed through the API,
 * and afterwards each Redis holds only its own half: no filesystem key in the cluster's Redis,
 * no job or node key in the files' one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPrefix } from '../helpers/redis.js';
import { fsPrefixFor } from '../../src/state/keys.js';
import type { Redis } from '../../src/state/redis.js';
import { FaultCluster, printLogTails, readAllThrough, run, TOKEN, until } from './cluster.js';

/** Every key of a Redis, by SCAN. */
async function allKeys(r: Redis): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
    out.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return out;
}

describe('the cluster\'s files in a Redis of their own (--fs-redis)', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-fs-redis-'));
  const prefix = testPrefix();
  const c = new FaultCluster({ root, prefix, nodeTimeoutMs: 3000, nodes: ['node1', 'node2'], fsRedis: true });
  let failed = true;
  const agent = (n: string) => c.agents.get(n)!;
  const api = async (path: string, body?: unknown) => {
    const res = await fetch(`${c.apiUrl}${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  };

  before(async () => {
    await c.start();
  });

  after(async () => {
    await c.stop();
    if (failed) {
      console.log(`fs-redis run kept for a look: ${root}`);
      printLogTails(root);
    } else {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('serves files, locks, versions and jobs\' inputs from the files\' Redis, and keeps each Redis to its half', async () => {
    // Files written through node1's mount read back through node2's, byte for byte.
    const want = new Map<string, string>();
    mkdirSync(join(agent('node1').mount, 'data'), { recursive: true });
    for (let i = 0; i < 20; i++) {
      const content = `file ${i} `.repeat(100 + i * 37);
      writeFileSync(join(agent('node1').mount, 'data', `f${i}.txt`), content);
      want.set(`/data/f${i}.txt`, createHash('sha256').update(content).digest('hex'));
    }
    await until('node2 to see the last file', async () => (await readAllThrough(agent('node2').mount, ['/data/f19.txt'])).get('/data/f19.txt') === want.get('/data/f19.txt'), 10_000);
    assert.deepEqual(Object.fromEntries(await readAllThrough(agent('node2').mount, [...want.keys()])), Object.fromEntries(want));

    // A lock taken through node1's mount holds through node2's.
    const lockFile = join(agent('node1').mount, 'data', 'lock');
    writeFileSync(lockFile, '');
    const holder = run('flock', [lockFile, 'sleep', '4']);
    await new Promise((r) => setTimeout(r, 1000));
    const other = await run('sh', ['-c', 'flock -n "$1" true; echo $?', 'sh', join(agent('node2').mount, 'data', 'lock')]);
    assert.equal(other.trim(), '1', 'flock -n through node2 finds the lock node1 holds');
    await holder;

    // Versions through the API (the control plane's side of the files' Redis).
    writeFileSync(join(agent('node2').mount, 'data', 'f0.txt'), 'changed on node2');
    await until('the new version', async () => ((await api('/v1/fs/versions?path=/data/f0.txt')).body.items as unknown[] | undefined)?.length === 2, 10_000);

    // A job with an input file: the control plane looks up where its bytes are, in the files' Redis.
    const submit = await api('/v1/jobs', { spec: { command: ['cat', join(agent('node1').mount, 'data', 'f1.txt')], inputs: ['/data/f1.txt'] } });
    assert.equal(submit.status, 200, JSON.stringify(submit.body));
    const id = submit.body.id as string;
    await until('the job to succeed', async () => (await api(`/v1/jobs/${id}`)).body.state === 'succeeded', 20_000);
    const input = JSON.parse((await c.conn.hget(c.ks.job(id), 'input'))!) as { bytes: number };
    assert.equal(input.bytes, 'file 1 '.repeat(137).length);

    // Each Redis holds its own half.
    const state = await allKeys(c.conn);
    const files = await allKeys(c.fsConn);
    const fsPrefix = fsPrefixFor(prefix);
    assert.equal(await c.conn.hget(c.ks.cluster, 'fsPrefix'), fsPrefix);
    assert.deepEqual(state.filter((k) => !k.startsWith(prefix)), [], 'the cluster\'s Redis holds the cluster\'s keys only');
    assert.deepEqual(state.filter((k) => /^[^:]*:(fs|pfs|lk):/.test(k)), [], 'no key of the files in the cluster\'s Redis');
    assert.ok(state.some((k) => k === c.ks.job(id)) && state.some((k) => k === c.ks.node('node1')));
    assert.deepEqual(files.filter((k) => !k.startsWith(fsPrefix)), [], 'the files\' Redis holds the files\' keys only');
    for (const kind of ['fs:p:/data/f0.txt', 'fs:d:/data', 'fs:cluster', 'lk:sessions']) assert.ok(files.includes(fsPrefix + kind), `${kind} is in the files' Redis`);
    assert.ok(files.some((k) => k.startsWith(`${fsPrefix}pfs:loc:`)), 'where chunks are is in the files\' Redis');
    failed = false;
  });
});
