import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { LogShipper } from '../../src/agent/log-shipper.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { keyspace } from '../../src/state/keys.js';
import { claimJobs, placeJobs, submitJobs } from '../../src/state/jobs.js';
import { readLog } from '../../src/state/job-streams.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';
import { registerNode } from '../../src/state/nodes.js';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { heldFence } from '../helpers/fence.js';

describe('log shipper', () => {
  const db = useTestRedis();
  let stateDir: string;
  let rt: ProcessRuntime;
  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'oswalk-ship-'));
    rt = new ProcessRuntime({ stateDir, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await rt.cleanup({ cluster: 'c1', node: 'n1' }, new Set());
    await rm(stateDir, { recursive: true, force: true });
  });

  it('holds back a job that prints faster than its output is shipped, and loses none of it', async () => {
    const ks = keyspace(testPrefix());
    // A job running on n1 (the log takes output only from the attempt that runs it).
    const epoch = await registerNode(db.redis, ks, {
      name: 'n1', address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process',
      cpus: 4, memoryBytes: 2 ** 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/srv/x', mountPath: '/cluster',
    });
    const [id] = await submitJobs(db.redis, ks, [{ spec: normalizeJobSpec({ command: ['seq', '1', '800000'], cpus: 1 }) }]);
    await placeJobs(db.redis, ks, { placements: [{ jobId: id, node: 'n1' }], waiting: [] });
    assert.equal((await claimJobs(db.redis, ks, 'n1', epoch, 1, 60_000))?.length, 1);
    // Buffers far smaller than the output: without holding the job back, most of it would be dropped.
    const shipper = new LogShipper(db.redis, ks, id, 1, { highWaterBytes: 128 * 1024, maxBufferBytes: 256 * 1024 });
    const h = await rt.start({ cluster: 'c1', fenceDir: heldFence().dir, jobId: id, attempt: 1, node: 'n1', command: ['seq', '1', '800000'], env: {} }, (s, d) => shipper.write(s, d));
    assert.deepEqual(await h.wait(), { exitCode: 0 });
    await shipper.flush();
    const entries = await readLog(db.redis, ks, id, '0', 1_000_000);
    const shipped = Buffer.concat(entries.filter((e) => e.t === 'out').map((e) => e.data));
    assert.equal(await db.redis.hget(ks.job(id), 'logDropped'), null);
    assert.ok(shipped.equals(execFileSync('seq', ['1', '800000'], { maxBuffer: 64 << 20 })), `shipped ${shipped.length} bytes`);
  });
});
