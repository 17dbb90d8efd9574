import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { parseSentinelUrl } from '../../src/state/redis.js';
import { keyspace } from '../../src/state/keys.js';
import { applyNodeManifests, clusterId, getNode, heartbeat, listNodes, markRemoving, nodeHistories, registerNode, setNodeStatus, type NodeRegistration } from '../../src/state/nodes.js';
import { applyObjects } from '../../src/state/objects.js';
import { drainNode, monitorStep, uncordonNode } from '../../src/state/jobs.js';
import { parseManifests } from '../../src/manifest/index.js';

function reg(name: string): NodeRegistration {
  return {
    name, address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: { zone: 'a' }, runtime: 'process',
    cpus: 4, memoryBytes: 8 * 2 ** 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/srv/x', mountPath: '/cluster',
  };
}

describe('node state', () => {
  const db = useTestRedis();

  it('registers a node, bumps the epoch on every registration and keeps labels as an object', async () => {
    const ks = keyspace(testPrefix());
    assert.equal(await registerNode(db.redis, ks, reg('n1')), 1);
    assert.equal(await registerNode(db.redis, ks, reg('n1')), 2);
    const n = await getNode(db.redis, ks, 'n1');
    assert.equal(n?.status, 'ready');
    assert.deepEqual(n?.labels, { zone: 'a', 'oswalk.dev/node': 'n1' });
    assert.equal(n?.cpus, 4);
  });

  it('refuses a heartbeat from a stale epoch and accepts the current one', async () => {
    const ks = keyspace(testPrefix());
    const e1 = await registerNode(db.redis, ks, reg('n1'));
    const e2 = await registerNode(db.redis, ks, reg('n1'));
    assert.equal(await heartbeat(db.redis, ks, 'n1', e1, { load1: 1, memoryUsedBytes: 5, runningJobs: 0 }), undefined);
    assert.equal(await heartbeat(db.redis, ks, 'n1', e2, { load1: 2, memoryUsedBytes: 5, runningJobs: 3 }), 5000, 'accepted, with the default node timeout');
    assert.equal((await getNode(db.redis, ks, 'n1'))?.runningJobs, 3);
  });

  it('tells each heartbeat the leading monitor\'s node timeout, and never marks a node down sooner than it was told', async () => {
    const ks = keyspace(testPrefix());
    const epoch = await registerNode(db.redis, ks, reg('n1'), 1000);
    await monitorStep(db.redis, ks, 8000, 1000);
    assert.equal(await heartbeat(db.redis, ks, 'n1', epoch, { load1: 0, memoryUsedBytes: 0, runningJobs: 0 }, 2000), 8000);
    // A leader with a shorter timeout takes over: the agent fences by 8 s until it hears of 2 s.
    assert.deepEqual((await monitorStep(db.redis, ks, 2000, 9000)).nodesDown, [], 'not before the 8 s the agent was told');
    assert.deepEqual((await monitorStep(db.redis, ks, 2000, 10_001)).nodesDown, ['n1']);
    const again = await registerNode(db.redis, ks, reg('n1'), 11_000);
    assert.equal(await heartbeat(db.redis, ks, 'n1', again, { load1: 0, memoryUsedBytes: 0, runningJobs: 0 }, 11_000), 2000);
    assert.deepEqual((await monitorStep(db.redis, ks, 2000, 13_001)).nodesDown, ['n1'], 'the new timeout, once told');
  });

  it('keeps a sample of each node\'s load a minute, the last 60, from its heartbeats', async () => {
    const ks = keyspace(testPrefix());
    const epoch = await registerNode(db.redis, ks, reg('n1'), 1000);
    const beat = (at: number, load1: number) => heartbeat(db.redis, ks, 'n1', epoch, { load1, memoryUsedBytes: 2 ** 30, runningJobs: 0, usedCpus: 1.5 }, at);
    await beat(100_000, 0.5);
    await beat(130_000, 9);
    await beat(160_000, 1.25);
    assert.deepEqual((await nodeHistories(db.redis, ks)).n1, [
      { t: 100_000, load1: 0.5, usedCpus: 1.5, memoryUsedBytes: 2 ** 30 },
      { t: 160_000, load1: 1.25, usedCpus: 1.5, memoryUsedBytes: 2 ** 30 },
    ], 'the first heartbeat, then the first a minute after it: not the one between');
    for (let m = 2; m < 70; m++) await beat(100_000 + m * 60_000, m);
    const kept = (await nodeHistories(db.redis, ks)).n1;
    assert.equal(kept.length, 60);
    assert.deepEqual([kept[0].load1, kept[59].load1], [10, 69], 'the newest hour, oldest first');
  });

  it('gives every agent and control plane of a cluster one cluster id, the first one proposed', async () => {
    const ks = keyspace(testPrefix());
    assert.equal(await clusterId(db.redis, ks, 'aaa'), 'aaa');
    assert.equal(await clusterId(db.redis, ks, 'bbb'), 'aaa');
    assert.equal(await clusterId(db.redis, keyspace(testPrefix()), 'ccc'), 'ccc', 'another cluster (prefix) has its own');
  });

  it('stamps registrations and heartbeats with Redis\' clock, not the agent\'s, unless a test sets the time', async () => {
    const ks = keyspace(testPrefix());
    const redisNow = async () => {
      const [s, us] = await db.redis.time();
      return Number(s) * 1000 + Math.floor(Number(us) / 1000);
    };
    const before = await redisNow();
    const epoch = await registerNode(db.redis, ks, reg('n1'));
    const registered = (await getNode(db.redis, ks, 'n1'))!.lastHeartbeat;
    assert.ok(registered >= before && registered <= (await redisNow()), `${registered} is not Redis' time ${before}`);
    await heartbeat(db.redis, ks, 'n1', epoch, { load1: 0, memoryUsedBytes: 0, runningJobs: 0 });
    assert.ok((await getNode(db.redis, ks, 'n1'))!.lastHeartbeat >= registered);
    await heartbeat(db.redis, ks, 'n1', epoch, { load1: 0, memoryUsedBytes: 0, runningJobs: 0 }, 42);
    assert.equal((await getNode(db.redis, ks, 'n1'))!.lastHeartbeat, 42);
  });

  it('keeps a drained node drained when its agent re-registers, and never revives a down node by drain', async () => {
    const ks = keyspace(testPrefix());
    await registerNode(db.redis, ks, reg('n1'));
    assert.equal(await setNodeStatus(db.redis, ks, 'n1', 'draining'), 'draining');
    await registerNode(db.redis, ks, reg('n1'));
    assert.equal((await getNode(db.redis, ks, 'n1'))?.status, 'draining');
    assert.equal(await setNodeStatus(db.redis, ks, 'nope', 'draining'), undefined);
    assert.equal(await markRemoving(db.redis, ks, 'nope', true), false);
    await db.redis.hset(ks.node('n1'), 'status', 'down');
    assert.equal(await setNodeStatus(db.redis, ks, 'n1', 'ready'), 'down');
  });

  it('keeps a drain across the node going down and its agent restarting, and takes one for a node that is down', async () => {
    const ks = keyspace(testPrefix());
    await registerNode(db.redis, ks, reg('n1'));
    assert.deepEqual(await drainNode(db.redis, ks, 'n1'), { status: 'draining', moved: 0, remaining: 0 });
    await monitorStep(db.redis, ks, 1000, Date.now() + 60_000); // missed its heartbeats
    assert.equal((await getNode(db.redis, ks, 'n1'))?.status, 'down');
    await registerNode(db.redis, ks, reg('n1'));
    assert.equal((await getNode(db.redis, ks, 'n1'))?.status, 'draining');
    await uncordonNode(db.redis, ks, 'n1');
    await monitorStep(db.redis, ks, 1000, Date.now() + 60_000);
    assert.deepEqual(await drainNode(db.redis, ks, 'n1'), { status: 'down', moved: 0, remaining: 0 });
    await registerNode(db.redis, ks, reg('n1'));
    assert.equal((await getNode(db.redis, ks, 'n1'))?.status, 'draining');
    await uncordonNode(db.redis, ks, 'n1');
    assert.equal((await getNode(db.redis, ks, 'n1'))?.status, 'ready');
  });

  it('carries on across a redis-server restart with nothing lost', async () => {
    const ks = keyspace(testPrefix());
    const epoch = await registerNode(db.redis, ks, reg('n1'));
    await registerNode(db.redis, ks, reg('n2'));
    await db.server.restart();
    // Same connection object: ioredis reconnects and the scripts are re-sent after the flush.
    assert.equal(await heartbeat(db.redis, ks, 'n1', epoch, { load1: 0, memoryUsedBytes: 0, runningJobs: 0 }), 5000);
    assert.deepEqual((await listNodes(db.redis, ks)).map((n) => n.name), ['n1', 'n2']);
  });

  it('puts a Node manifest\'s labels on top of the agent\'s and caps its capacity, before or after the agent joins', async () => {
    const ks = keyspace(testPrefix());
    await registerNode(db.redis, ks, reg('n1'));
    assert.deepEqual((await getNode(db.redis, ks, 'n1'))?.labels, { zone: 'a', 'oswalk.dev/node': 'n1' });
    await applyObjects(db.redis, ks, parseManifests([
      'apiVersion: oswalk.dev/v1\nkind: Node\nmetadata: {name: n1}\nspec: {labels: {rack: r1, zone: b}, capacity: {cpus: 2, memory: 1Gi}}',
      'apiVersion: oswalk.dev/v1\nkind: Node\nmetadata: {name: n2}\nspec: {labels: {gpu: "yes"}}',
    ].join('\n---\n'), 'nodes.yaml'));
    assert.equal(await applyNodeManifests(db.redis, ks), 1);
    const n1 = await getNode(db.redis, ks, 'n1');
    assert.deepEqual(n1?.labels, { zone: 'b', rack: 'r1', 'oswalk.dev/node': 'n1' });
    assert.equal(n1?.cpus, 2);
    assert.equal(n1?.memoryBytes, 1 << 30);
    await registerNode(db.redis, ks, { ...reg('n2'), memoryBytes: 48 * 2 ** 30 });
    const n2 = await getNode(db.redis, ks, 'n2');
    assert.deepEqual(n2?.labels, { zone: 'a', gpu: 'yes', 'oswalk.dev/node': 'n2' });
    assert.equal(n2?.cpus, 4);
    assert.equal(n2?.memoryBytes, 48 * 2 ** 30, 'large byte counts keep every digit');
  });

  it('parses Sentinel URLs', () => {
    assert.deepEqual(parseSentinelUrl('redis+sentinel://:s3cret@h1:26379,h2/mymaster/2'), {
      sentinels: [{ host: 'h1', port: 26379 }, { host: 'h2', port: 26379 }], name: 'mymaster', password: 's3cret', db: 2,
    });
    assert.throws(() => parseSentinelUrl('redis+sentinel://h1:26379'), /masterName/);
  });
});
