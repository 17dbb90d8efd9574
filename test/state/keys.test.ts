import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { fsKeyspace, fsPrefixFor, keyspace } from '../../src/state/keys.js';
import { packageRoot } from '../../src/util/paths.js';

const dir = join(packageRoot(), 'src', 'state');
const read = (path: string) => readFileSync(join(dir, path), 'utf8');

/**
 * The Lua scripts build key names in lua/include/keys.lua and lua/include/locks.lua, which
 * mirror src/state/keys.ts. This runs those files in redis-server (the same Lua the scripts
 * run) and compares every name they define with what keyspace() builds for the same arguments,
 * or, for the few only Lua uses, with the row of keys.ts's key table. Checked by changing one
 * side only (keys.lua's `room` to 'nodes:rooms', locks.lua's `waiting` to 'lk:pwx', keyspace's
 * nodeAlloc to `allocs:`, the table's `jobs:seq` row to `jobs:sequence`, keys.lua's fsDirKey to
 * another name): each failed this test.
 */
describe('key names in Lua and in keys.ts', () => {
  const db = useTestRedis();

  it('are the same', async () => {
    const prefix = testPrefix();
    // One P for both: the fs scripts are given the files' prefix as ARGV[1], the others the cluster's.
    const ks = { ...keyspace(prefix), ...fsKeyspace(prefix) };
    const table = read('keys.ts');
    /** A key only Lua names: its row of the key table, `<...>` filled with args. */
    const row = (pattern: string, ...args: string[]): string => {
      assert.ok(table.includes(` * | ${pattern} `), `keys.ts's key table has no row ${pattern}`);
      return prefix + pattern.replace(/<[^>]+>/g, () => args.shift()!);
    };
    // Lua expression -> the name keys.ts gives it
    const same: [string, string][] = [
      ['K.all', ks.jobsAll],
      ['K.done', ks.jobsDone],
      ['K.pending', ks.jobsPending],
      ['K.delayed', ks.jobsDelayed],
      ['K.seq', row('jobs:seq')],
      ['K.fence', row('jobs:fence')],
      ['K.results', ks.jobsResults],
      ['K.finished', ks.jobsFinished],
      ['K.tty', ks.jobsTty],
      ['K.heartbeats', ks.heartbeats],
      ['K.cluster', ks.cluster],
      ['K.nodes', ks.nodes],
      ['K.room', ks.nodesRoom],
      ['K.schedWake', ks.schedulerWake],
      ['K.fsEvents', ks.fsEvents],
      ['K.fsChunkListsRecent', ks.fsChunkListsRecent],
      ['K.fsDirTimes', row('fs:dt')],
      ['K.fsDirLinks', row('fs:dn')],
      ['K.fsAccessTimes', row('fs:at')],
      ['K.fsStInos', row('fs:st')],
      ['K.fsInodeSeq', row('fs:ino')],
      ['K.lockSessions', ks.lockSessions],
      ["jobKey('j1')", ks.job('j1')],
      ["logKey('j1')", ks.jobLog('j1')],
      ["logSizesKey('j1')", row('joblogsz:<id>', 'j1')],
      ["stdinKey('j1')", ks.jobStdin('j1')],
      ["clientKey('j1')", ks.jobClient('j1')],
      ["nodeKey('n1')", ks.node('n1')],
      ["nodeLeasesKey('n1')", ks.nodeLeases('n1')],
      ["nodeQueueKey('n1')", ks.nodeQueue('n1')],
      ["nodeWakeKey('n1')", ks.nodeWake('n1')],
      ["nodeStopWakeKey('n1')", ks.nodeStopWake('n1')],
      ["allocKey('n1')", ks.nodeAlloc('n1')],
      ["ownerKey('Job', 'web')", ks.owner('Job', 'web')],
      ["ownerJobsKey('Job', 'web')", ks.ownerJobs('Job', 'web')],
      ["ownersKey('Job')", ks.owners('Job')],
      ["fsVersionsKey('/a/b')", ks.fsVersions('/a/b')],
      ["fsInodeNamesKey('7')", ks.fsInodeNames('7')],
      ["fsDirKey('/a')", ks.fsDir('/a')],
      ["fsChunkListKey('ab12')", ks.fsChunkList('ab12')],
      ['LK.sessions', ks.lockSessions],
      ['LK.waiting', ks.posixWaiting],
      ['LK.seq', ks.lockSeq],
      ['LK.wake', ks.lockWake],
      ["sessionKey('n1:s1')", ks.lockSession('n1:s1')],
      ["lockKey('p', '/a')", ks.posixLocks('/a')],
      ["lockKey('f', '/a')", ks.flockLocks('/a')],
      ["queueKey('p', '/a')", ks.posixWaiters('/a')],
      ["queueKey('f', '/a')", ks.flockWaiters('/a')],
    ];

    // every name the two files define is compared above
    const lua = ['keys', 'locks'].map((f) => read(`lua/include/${f}.lua`));
    const defined = lua.flatMap((src) => [
      ...[...src.matchAll(/^local (K|LK) = \{\n([^]*?)^\}/gm)].flatMap(([, table, body]) => [...body.matchAll(/^ {2}(\w+) = P \.\./gm)].map(([, name]) => `${table}.${name}`)),
      ...[...src.matchAll(/^local function (\w+)\([^)]*\) return P \.\./gm)].map(([, name]) => name),
    ]);
    const compared = new Set(same.map(([expr]) => /^[\w.]+/.exec(expr)![0]));
    assert.deepEqual(defined.filter((name) => !compared.has(name)), [], 'names the Lua files define that this test does not compare');
    assert.deepEqual([...compared].filter((name) => !defined.includes(name)), [], 'names this test compares that the Lua files no longer define');

    // locks.lua uses the P keys.lua defines from ARGV[1], as the lock scripts' own prelude does
    const script = `${lua.join('\n')}\nreturn {${same.map(([expr]) => expr).join(', ')}}`;
    const names = (await db.redis.eval(script, 0, prefix)) as string[];
    assert.deepEqual(same.map(([expr], i) => [expr, names[i]]), same);
  });

  it('give the files a hash tag of their own, so that a Redis Cluster may put them on another shard', () => {
    assert.equal(fsPrefixFor('{oswalk}:'), '{oswalk-fs}:');
    assert.equal(fsPrefixFor('app:{c1}:'), 'app:{c1-fs}:');
    assert.throws(() => fsPrefixFor('no-tag:'), /must contain exactly one \{hash tag\}/);
  });
});
