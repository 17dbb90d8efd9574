import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { startJobsControlPlane, tempDir, TOKEN } from '../helpers/jobs-cluster.js';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';
import { getJob, submitJobs } from '../../src/state/jobs.js';

describe('two control planes', () => {
  let server: TestRedis;
  const state = tempDir('failover');
  before(async () => {
    server = await TestRedis.start();
  });
  after(async () => {
    await server.stop();
    state.remove();
  });

  it('one schedules; when it stops, the other takes over and jobs keep running', async () => {
    const prefix = testPrefix();
    const a = await startJobsControlPlane(server.url, { prefix });
    const b = await startJobsControlPlane(server.url, { prefix });
    let agent: RunningAgent | undefined;
    try {
      for (let i = 0; !a.loops.lease.isLeader && !b.loops.lease.isLeader; i++) {
        assert.ok(i < 100, 'nobody took the lease');
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.notEqual(a.loops.lease.isLeader, b.loops.lease.isLeader, 'exactly one leads');
      const [leader, follower] = a.loops.lease.isLeader ? [a, b] : [b, a];
      const logger = pino({ level: 'silent' });
      agent = await startAgent({
        node: 'n1', controlPlane: follower.url, token: TOKEN, runtime: new ProcessRuntime({ stateDir: state.dir, logger, killGraceMs: 500 }),
        exportDir: state.dir, stateDir: state.dir, listen: { host: '127.0.0.1', port: 0 }, log: logger,
      });
      const spec = normalizeJobSpec({ command: ['true'], cpus: 0.1 });
      const done = async (ids: string[]) => {
        for (let i = 0; ; i++) {
          const states = await Promise.all(ids.map(async (id) => (await getJob(follower.ctx.redis, follower.ctx.ks, id))?.state));
          if (states.every((s) => s === 'succeeded')) return;
          assert.ok(i < 200, `states: ${states.join(',')}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      await done(await submitJobs(follower.ctx.redis, follower.ctx.ks, Array.from({ length: 5 }, () => ({ spec }))));
      await leader.close();
      await done(await submitJobs(follower.ctx.redis, follower.ctx.ks, Array.from({ length: 5 }, () => ({ spec }))));
      assert.equal(follower.loops.lease.isLeader, true);
    } finally {
      await agent?.stop();
      await a.close().catch(() => undefined);
      await b.close().catch(() => undefined);
    }
  });
});
