/**
 * Two `oswalk up` clusters side by side on one host, with the same node names (node1, node2):
 * everything an agent makes on the host (cgroups, job records, mounts, processes) carries its
 * cluster's id as well as the node's name, so an agent of one cluster that is killed and started
 * again sweeps its own orphans and never the other cluster's jobs (issue 17). Process runtime;
 * the cgroup names are checked where the host lets the agents make cgroups.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Redis } from 'ioredis';
import { oswalk, startOswalk, stopChild } from '../helpers/cli.js';
import { keyspace } from '../../src/state/keys.js';
import { safeName } from '../../src/agent/runtime/common.js';
import type { ProcessRecord } from '../../src/agent/runtime/records.js';

interface Cluster {
  name: string;
  dir: string;
  up: Awaited<ReturnType<typeof startOswalk>>;
  /** The cluster's id (Redis: <prefix>cluster, field id). */
  id: string;
}
interface JobView { id: string; name: string; state: string; node?: string; attempt: number; startedAt?: string }
interface Held { job: JobView; rec: ProcessRecord; file: string }

const NODES = ['node1', 'node2'];
// The commands run from the cluster's folder find it through .oswalk/config.json alone.
const env = { OSWALK_API: '', OSWALK_TOKEN: '' };

/** Poll fn until it gives something truthy; fail naming what it waited for, and what it last got. */
async function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The process runtime's job records of a node of this cluster (and the directory they are in). */
function records(c: Cluster, node: string): { dir: string; held: { rec: ProcessRecord; file: string }[] } {
  const dir = join(c.dir, '.oswalk', 'nodes', node, 'state', 'runtime', 'process', safeName(c.id), safeName(node));
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  return { dir, held: files.map((f) => ({ file: join(dir, f), rec: JSON.parse(readFileSync(join(dir, f), 'utf8')) as ProcessRecord })) };
}

/** Whether the process a record names is the one it started (not a reused pid, not a zombie). */
function alive(rec: ProcessRecord): boolean {
  try {
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] !== 'Z' && fields[19] === rec.startTime;
  } catch {
    return false;
  }
}

describe('two oswalk up clusters on one host, same node names', () => {
  const clusters: Cluster[] = [];
  const dirs: string[] = [];
  const ups: ChildProcess[] = [];
  const cli = async (c: Cluster, args: string[]) => {
    const r = await oswalk(args, { cwd: c.dir, env });
    assert.equal(r.code, 0, `oswalk ${args.join(' ')} in cluster ${c.name}: ${r.stderr}`);
    return r.stdout;
  };
  const jobsOf = async (c: Cluster): Promise<JobView[]> => (JSON.parse(await cli(c, ['get', 'jobs', '-o', 'json'])) as { items: JobView[] }).items;
  /** The job pinned to `node` in cluster c, running, with its live record on that node. */
  const held = async (c: Cluster, node: string): Promise<Held | undefined> => {
    const job = (await jobsOf(c)).find((j) => j.name === `hold-${node}-0`);
    if (job?.state !== 'running' || job.node !== node) return undefined;
    const r = records(c, node).held.find((h) => h.rec.jobId === job.id && h.rec.attempt === job.attempt);
    return r && alive(r.rec) ? { job, ...r } : undefined;
  };
  const agentPid = (c: Cluster, node: string): number | undefined => {
    const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.includes(` agent --node ${node} `) && l.includes(`--state-dir ${join(c.dir, '.oswalk', 'nodes', node, 'state')}`));
    return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
  };

  before(async () => {
    for (const name of ['a', 'b']) dirs.push(mkdtempSync(join(tmpdir(), `oswalk-two-${name}-`)));
    // Both started before either failure is thrown, so that after() stops whichever came up.
    const started = await Promise.allSettled(dirs.map((dir) => startOswalk(['up', '--dir', dir, '--nodes', String(NODES.length)], /Nodes:\s+node1, node2/, { cwd: dir, timeoutMs: 90_000 })));
    for (const s of started) if (s.status === 'fulfilled') ups.push(s.value.child);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    for (const [i, s] of started.entries()) {
      const up = (s as PromiseFulfilledResult<Awaited<ReturnType<typeof startOswalk>>>).value;
      const dir = dirs[i];
      const redis = new Redis(JSON.parse(readFileSync(join(dir, '.oswalk', 'config.json'), 'utf8')).redisUrl as string, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      const id = await redis.hget(keyspace().cluster, 'id');
      redis.disconnect();
      assert.ok(id, `cluster ${basename(dir)} has an id`);
      clusters.push({ name: 'ab'[i], dir, up, id });
    }
  });

  after(async () => {
    for (const child of ups) await stopChild(child, 'SIGINT', 30_000);
    // An up that never printed its banner (startOswalk gave up on it) is still ours to stop.
    for (const d of dirs) {
      const pids = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n')
        .filter((l) => l.includes(` up --dir ${d} `)).map((l) => Number(l.trim().split(/\s+/)[0]));
      for (const pid of pids) process.kill(pid, 'SIGINT');
      if (pids.length) await new Promise((r) => setTimeout(r, 10_000));
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('each cluster keeps its jobs while the other\'s node1 agent is killed and restarted; each handles its own orphan', async (t) => {
    const [a, b] = clusters;
    assert.notEqual(a.id, b.id, 'two clusters, two ids');
    const manifest = NODES.map((node) => [
      'apiVersion: oswalk.dev/v1', 'kind: Job', `metadata:`, `  name: hold-${node}`, 'spec:',
      '  command: ["sleep", "600"]', `  nodeSelector:`, `    oswalk.dev/node: ${node}`,
      '  resources:', '    cpus: 100m', '    memory: 64Mi', '',
    ].join('\n')).join('---\n');
    for (const c of clusters) {
      writeFileSync(join(c.dir, 'hold.yaml'), manifest);
      await cli(c, ['apply', '-f', join(c.dir, 'hold.yaml')]);
    }
    const key = (c: Cluster, node: string) => `${c.name}/${node}`;
    const now = new Map<string, Held>();
    for (const c of clusters) {
      for (const node of NODES) now.set(key(c, node), await eventually(`hold-${node} running in cluster ${c.name}`, () => held(c, node)));
    }

    // The cgroups carry the cluster's id before the node's name: node1 of a and node1 of b
    // have a cgroup each, and neither's name is a prefix of the other's.
    const withCgroups = [...now.values()].every((h) => h.rec.cgroup);
    if (!withCgroups) t.diagnostic(`no cgroups here (${[...now.values()].map((h) => h.rec.cgroup?.kind ?? 'none').join(', ')}): cgroup names not checked`);
    for (const c of clusters) {
      for (const node of NODES) {
        const h = now.get(key(c, node))!;
        assert.equal(h.rec.cluster, c.id);
        for (const dir of h.rec.cgroup?.dirs ?? []) {
          assert.ok(basename(dir).startsWith(`${safeName(c.id)}.${safeName(node)}.${safeName(h.job.id)}-`), `cgroup ${dir} names cluster ${c.name} (${c.id}) and ${node}`);
          assert.ok(existsSync(join(dir, 'cgroup.procs')), `cgroup ${dir} exists`);
        }
      }
    }

    for (const [victim, other] of [[a, b], [b, a]] as const) {
      const before = now.get(key(victim, 'node1'))!;
      const others = NODES.map((node) => now.get(key(other, node))!);
      const quietFrom = other.up.output().length;
      const pid = agentPid(victim, 'node1');
      assert.ok(pid, `cluster ${victim.name}'s node1 agent is running`);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');

      // The job dies with its agent (its guard sees the agent go), not at the next agent's sweep.
      await eventually(`cluster ${victim.name}'s node1 job to die with its agent`, () => !alive(before.rec), 5_000);
      const diedMs = Date.now() - killedAt;
      await eventually(`cluster ${victim.name}'s node1 agent started again`, () => {
        const p = agentPid(victim, 'node1');
        return p !== undefined && p !== pid;
      });
      // The restarted agent sweeps its own orphan: the job is requeued and runs there again.
      const again = await eventually(`cluster ${victim.name}'s hold-node1 running again`, async () => {
        const h = await held(victim, 'node1');
        return h && h.job.attempt > before.job.attempt ? h : undefined;
      }, 45_000);
      const backMs = Date.now() - killedAt;
      t.diagnostic(`cluster ${victim.name}: node1's job died ${diedMs} ms after its agent was killed; attempt ${again.job.attempt} ran ${backMs} ms after`);
      assert.equal(again.job.id, before.job.id);
      assert.equal(existsSync(before.file), false, 'the orphan\'s record is gone');
      for (const dir of before.rec.cgroup?.dirs ?? []) assert.equal(existsSync(dir), false, `the orphan's cgroup ${dir} is gone`);
      now.set(key(victim, 'node1'), again);
      // Its node2 job never noticed.
      const node2 = await held(victim, 'node2');
      assert.ok(node2, `cluster ${victim.name}'s hold-node2 still runs`);
      assert.deepEqual([node2.job.attempt, node2.rec.pid], [now.get(key(victim, 'node2'))!.job.attempt, now.get(key(victim, 'node2'))!.rec.pid]);

      // The other cluster: same jobs, same attempts and start times, same processes and
      // cgroups; nothing there was requeued, marked lost, or swept.
      for (const [i, node] of NODES.entries()) {
        const was = others[i];
        const is = await held(other, node);
        assert.ok(is, `cluster ${other.name}'s hold-${node} still runs after cluster ${victim.name}'s node1 restarted`);
        assert.deepEqual(
          { attempt: is.job.attempt, startedAt: is.job.startedAt, pid: is.rec.pid, startTime: is.rec.startTime },
          { attempt: was.job.attempt, startedAt: was.job.startedAt, pid: was.rec.pid, startTime: was.rec.startTime },
        );
        for (const dir of was.rec.cgroup?.dirs ?? []) {
          assert.notEqual(readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim(), '', `cluster ${other.name}'s cgroup ${dir} still holds its job`);
        }
      }
      const told = other.up.output().slice(quietFrom);
      assert.doesNotMatch(told, /orphan|exited \(|requeued/, `cluster ${other.name} said nothing of it:\n${told}`);
      const list = (JSON.parse(await cli(other, ['get', 'nodes', '-o', 'json'])) as { items: { name: string; status: string }[] }).items;
      assert.deepEqual(list.map((n) => [n.name, n.status]), NODES.map((n) => [n, 'ready']));
    }
  });

  it('an agent of one cluster given the other\'s state directory is refused before it touches anything there', async () => {
    const [a, b] = clusters;
    const before = await held(a, 'node1');
    assert.ok(before, 'cluster a\'s hold-node1 runs');
    const cfgB = JSON.parse(readFileSync(join(b.dir, '.oswalk', 'config.json'), 'utf8')) as { api: string; token: string };
    const stateDir = join(a.dir, '.oswalk', 'nodes', 'node1', 'state');
    const r = await oswalk(['agent', '--node', 'node1', '--control-plane', cfgB.api, '--state-dir', stateDir, '--no-mount', '--listen', '127.0.0.1:0'], {
      cwd: b.dir, env: { ...env, OSWALK_TOKEN: cfgB.token }, timeoutMs: 15_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`the state directory ${stateDir} is in use by the agent of node node1 \\(pid \\d+\\)`));
    const after = await held(a, 'node1');
    assert.deepEqual([after?.job.attempt, after?.rec.pid], [before.job.attempt, before.rec.pid]);
  });

  it('stopping both leaves no process, mount or cgroup of either', async () => {
    for (const c of clusters) assert.equal(await stopChild(c.up.child, 'SIGINT', 30_000), 0, `cluster ${c.name}'s up exits 0`);
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    for (const c of clusters) {
      assert.ok(!ps.includes(c.dir), `no process of cluster ${c.name} is left:\n${ps.split('\n').filter((l) => l.includes(c.dir)).join('\n')}`);
      assert.ok(!mounts.includes(c.dir), `no mount of cluster ${c.name} is left`);
      const left = ['oswalk', 'memory/oswalk', 'cpu/oswalk'].flatMap((p) => {
        const parent = join('/sys/fs/cgroup', p);
        return existsSync(parent) ? readdirSync(parent).filter((n) => n.startsWith(`${safeName(c.id)}.`)).map((n) => join(parent, n)) : [];
      });
      assert.deepEqual(left, [], `no cgroup of cluster ${c.name} is left`);
    }
  });
});
