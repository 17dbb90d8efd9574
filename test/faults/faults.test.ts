/**
 * Fault injection (issue 17): the real processes of a cluster — redis-server, two control planes,
 * three agents with the process runtime and their own FUSE mounts, one of them in a network
 * namespace of its own — run at least 200 jobs and 200 file writes while a nemesis kills,
 * freezes and cuts them off one at a time, at moments drawn from a seed:
 *
 *   SIGKILL and SIGSTOP/SIGCONT of an agent, of an FS process, of the leading and of the other
 *   control plane, and of redis-server; a partition of one node from the others and from Redis.
 *
 * After each fault heals, and at the end, a checker reads the history the jobs wrote (who,
 * where, when; see history.ts) and Redis' record of results, and holds the cluster to what it
 * promises:
 *   - a job runs at most once at a time: no two attempts of a job overlap, and no attempt finds
 *     an earlier one of its job still alive when it starts;
 *   - every job ends, exactly once: each succeeds, with one terminal entry in jobs:results, for
 *     an attempt that the history shows ending normally; none is lost;
 *   - a file whose close returned success is in the cluster: after every fault has healed, each
 *     reads back byte for byte (SHA-256) through every node's mount, under every name (a fifth
 *     are written through a hard link), and is held by two nodes;
 *     and nothing ever lands in the directory under a mount;
 *   - an agent killed with SIGKILL has its jobs running again within 10 s.
 *
 * One known gap, a finding of this suite, is reported and not held against the run (with
 * OSWALK_FAULT_STRICT=1 it is): an attempt that fails for the node's sake (KNOWN_FAILURES),
 * which jobs survive with retries.
 *
 * `fault seed: N` is printed first; OSWALK_FAULT_SEED=N replays the same schedule. Every wait
 * has a bound, the nemesis a fixed number of faults, and no assertion counts on timing beyond
 * the issue's 10 s: what depends on the moment (which jobs were running, how many writes failed
 * and how) is printed, per fault, not asserted. Whole, a run takes 1.5 to 3 minutes here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPrefix } from '../helpers/redis.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';
import { readResults } from '../helpers/job-results.js';
import { listJobs, submitJobs } from '../../src/state/jobs.js';
import { readLog } from '../../src/state/job-streams.js';
import { TERMINAL_STATES } from '../../src/api/job-states.js';
import { drawSchedule, faultSeed, Rng, type Fault, type FaultKind } from './schedule.js';
import { checkHistory, describeAttempt, JOB_SCRIPT, parseHistory, type Attempt, type History } from './history.js';
import { alive, FaultCluster, printLogTails, run, sleep, until, within, Writer, type LedgerEntry } from './cluster.js';

const NODES = ['node1', 'node2', 'node3'];
/** In its own network namespace: the one a partition cuts off. */
const NS_NODE = 'node3';
/** Short, so that the run is: heartbeats every second, fences at 2.25 s. */
const NODE_TIMEOUT_MS = 3000;
const FAULTS = 12;
const MIN_JOBS = 200;
const MIN_FILES = 200;
/** The issue's bound from an agent's SIGKILL to its jobs running again. */
const RERUN_BOUND_MS = 10_000;
/**
 * Attempts that fail, known and not held against the run (findings of this suite, see its
 * report), each only within the window of the faults that cause it (from the fault until the
 * cluster is whole again, and a little more). Our jobs exit 0 unless killed, and the jobs retry
 * (backoffLimit), so such an attempt costs a retry here; with the default backoffLimit 0 it
 * fails the job for good.
 */
const KNOWN_FAILURES: { name: string; text: RegExp; faults: FaultKind[] }[] = [
  {
    // A process job starts with its working directory in the node's mount. The agent claims
    // nothing while it knows its mount is down, but a job claimed in the instant before it
    // learns of the FS process's death finds its working directory dead and cannot start: the
    // guard's child cannot enter it, and the guard exits 125 (the queue records "exited with 125").
    name: 'start in a dead mount',
    text: /^(the process runtime could not run the job: .*ENOTCONN|cannot start "[^"]+": .*ENOTCONN|working dir "[^"]+" not found on node \S+|exited with 125|.*cannot enter the working directory.*); retry \d+ in /,
    faults: ['fs-kill'],
  },
];
/** Holds the known findings against the run too: for checking their fixes. */
const STRICT = process.env.OSWALK_FAULT_STRICT === '1';

const seed = faultSeed();
// First, and on its own line, so that a failure anywhere later can be replayed.
console.log(`fault seed: ${seed} (replay: OSWALK_FAULT_SEED=${seed})`);

/** What the run saw happen, in ms since it started. */
interface Observation {
  t: number;
  what: string;
}

interface AppliedFault extends Fault {
  index: number;
  /** ms since the epoch. */
  start: number;
  /** When the fault was undone (SIGCONT, link up, process started again). */
  end: number;
  /** When the cluster was whole again. */
  healthy: number;
  target: string;
  notes: string[];
}

describe(`fault injection (seed ${seed}): jobs run at most once at a time, end exactly once, and closed files stay in the cluster`, () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-faults-'));
  const view = mkdtempSync(join(tmpdir(), 'oswalk-faults-view-'));
  const prefix = testPrefix();
  const c = new FaultCluster({ root, prefix, nodeTimeoutMs: NODE_TIMEOUT_MS, nodes: NODES, nsNode: NS_NODE });
  const writers: Writer[] = [];
  let viewBound = false;
  let failed = true;
  let stopLoops = () => undefined as void;

  before(async () => {
    // A view of the nodes' directories from before anything is mounted on them: view/<node>/cluster
    // is the directory under each mount, whatever is mounted on top later.
    for (const n of NODES) mkdirSync(join(root, 'nodes', n, 'cluster'), { recursive: true });
    execFileSync('mount', ['--bind', join(root, 'nodes'), view]);
    viewBound = true;
    writeFileSync(join(root, 'job.sh'), JOB_SCRIPT, { mode: 0o755 });
    writeFileSync(join(root, 'history'), '');
    mkdirSync(join(root, 'pids'));
  });

  after(async () => {
    stopLoops();
    for (const w of writers) await w.proc?.kill().catch(() => undefined);
    await c.stop();
    if (viewBound) await run('umount', [view]).catch(() => run('umount', ['-l', view]).catch(() => undefined));
    rmSync(view, { recursive: true, force: true });
    const leftover = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(root) || l.includes(view));
    // Never through a mount left behind (the assertion below reports it).
    if (!leftover.length) {
      if (failed) {
        console.log(`fault run (seed ${seed}) kept for a look: ${root} (history, ledgers, logs/)`);
        printLogTails(root, 15);
        rmSync(join(root, 'nodes'), { recursive: true, force: true });
        rmSync(join(root, 'redis'), { recursive: true, force: true });
      } else {
        rmSync(root, { recursive: true, force: true });
      }
    }
    assert.deepEqual(leftover, [], 'no mount of the run is left');
  });

  it('the checker finds what it must: overlapping attempts, live predecessors, a token run twice', () => {
    const line = (id: string, a: number, node: string, what: string, t: number, ...rest: number[]) =>
      `${id} ${a} ${node} ${what} ${(t / 1e6).toFixed(6)} ${rest.join(' ')}`;
    const good = [
      line('j1', 1, 'n1', 'start', 1_000_000, 10), line('j1', 2, 'n2', 'start', 5_000_000, 11), line('j1', 2, 'n2', 'end', 6_000_000, 11),
      line('j2', 1, 'n1', 'start', 1_000_000, 12), line('j2', 1, 'n1', 'end', 2_000_000, 12), line('j2', 2, 'n3', 'start', 2_000_001, 13),
    ].join('\n') + '\n';
    assert.deepEqual(checkHistory(parseHistory(good)), []);
    const ended = checkHistory(parseHistory(good + line('j1', 1, 'n1', 'end', 5_500_000, 10) + '\n'));
    assert.equal(ended.length, 1);
    assert.match(ended[0], /j1 #1 on n1 \[1\.000 s, 5\.500 s\] ended after j1 #2 on n2/);
    const live = checkHistory(parseHistory(good + `j1 2 n2 overlap 5.000001 1 10\n`));
    assert.match(live[0], /attempt 2 on n2 started while attempt 1 \(pid 10\) was still alive/);
    assert.match(checkHistory(parseHistory(good + line('j2', 2, 'n1', 'start', 9_000_000, 14) + '\n'))[0], /started twice/);
    assert.match(checkHistory(parseHistory(good + line('j3', 1, 'n1', 'end', 9_000_000, 14) + '\n'))[0], /without a start/);
    assert.match(checkHistory(parseHistory(good + line('j2', 1, 'n1', 'end', 2_500_000, 12) + '\n'))[0], /ended twice/);
  });

  it(`${FAULTS} faults at random moments during ${MIN_JOBS}+ jobs and ${MIN_FILES}+ file writes`, { timeout: 600_000 }, async () => {
    const t0 = Date.now();
    const since = (t: number) => `${((t - t0) / 1000).toFixed(1)} s`;
    const historyFile = join(root, 'history');
    const readHistory = (): History => parseHistory(readFileSync(historyFile, 'utf8'));
    const observations: Observation[] = [];
    const observe = (what: string) => observations.push({ t: Date.now(), what });

    console.log(`t0 = ${new Date(t0).toISOString()} (${t0} ms): times below are from it`);
    await c.start();
    console.log(`cluster up in ${since(Date.now())}: redis :${c.redis.port}, control planes ${c.cps.map((cp) => `${cp.name} :${cp.port}`).join(', ')}, `
      + `${NODES.join(', ')} (${NS_NODE} in network namespace ${c.netns!.name}, ${c.netns!.nsAddr} ↔ ${c.netns!.hostAddr})`);

    // --- load: jobs submitted at a steady pace, writers on every node ---------------------------
    const jobRng = new Rng(seed ^ 0x6a09e667);
    const submitted: string[] = [];
    let submitting = true;
    const submitter = (async () => {
      while (submitting) {
        // Retries: some attempts fail for the node's sake (KNOWN_FAILURES); what else fails is
        // a violation all the same.
        // Most short; one in four long enough to outlive a node's fence, which the guard then kills.
        const secs = jobRng.next() < 0.75 ? jobRng.range(0.2, 1.5) : jobRng.range(2, 5);
        const spec = normalizeJobSpec({ command: ['bash', join(root, 'job.sh'), root, secs.toFixed(2)], cpus: 0.5, backoffLimit: 3 });
        // Straight into Redis (the same script as the API's submit): with both control planes
        // down at once the run still has work coming.
        submitted.push(...(await submitJobs(c.conn, c.ks, [{ spec }])));
        await sleep(jobRng.range(150, 550));
      }
    })();
    for (const [i, n] of NODES.entries()) {
      const w = new Writer(n, c.agents.get(n)!.mount, root, (seed + i * 7919) >>> 0);
      w.start();
      writers.push(w);
    }

    // --- an observer of node states and of the leader, for the report of each fault ---------------
    let observing = true;
    const observer = (async () => {
      const last = new Map<string, string>();
      while (observing) {
        try {
          for (const n of NODES) {
            const r = await c.node(n);
            const s = r ? `${r.status}${r.mountReady === false ? ` (mount down: ${r.mountError})` : ''}` : 'unknown';
            if (last.get(n) !== s) observe(`${n} ${s}`);
            last.set(n, s);
          }
          const l = await c.leader();
          const s = l?.name ?? 'none';
          if (last.get('leader') !== s) observe(`leader ${s}`);
          last.set('leader', s);
        } catch {
          // Redis frozen or away: nothing to see meanwhile.
        }
        await sleep(200);
      }
    })();
    stopLoops = () => {
      submitting = false;
      observing = false;
    };

    // --- invariants, after each fault and at the end ------------------------------------------
    const violations = (h: History): string[] => checkHistory(h, t0 * 1000);
    const excerpt = (h: History, problems: string[]): string => {
      const ids = new Set(problems.map((p) => /job (\w+)/.exec(p)?.[1]).filter(Boolean));
      return readFileSync(historyFile, 'utf8').split('\n').filter((l) => ids.has(l.split(' ')[0])).slice(0, 40).join('\n');
    };
    /**
     * Attempts that failed (and were retried), with the reason Redis logged for each, and when.
     * Our jobs exit 0 unless killed, and a kill past the fence is never reported: a failure is
     * the runtime's or the agent's.
     */
    const failedAttempts = async (): Promise<{ id: string; t: number; text: string }[]> => {
      const ended = (await within('jobs:results', readResults(c.conn, c.ks), 10_000)).filter((r) => r.state === 'attempt-ended');
      const out: { id: string; t: number; text: string }[] = [];
      for (const id of new Set(ended.map((r) => r.id))) {
        for (const e of await within(`the log of ${id}`, readLog(c.conn, c.ks, id), 5000)) {
          const text = e.data.toString();
          if (e.t === 'sys' && /; retry \d+ in /.test(text)) out.push({ id, t: Number(e.id.split('-')[0]), text });
        }
      }
      return out;
    };
    /** Each fault's window: from the fault until the cluster was whole again, and 3 s more. */
    const windows: { kind: FaultKind; from: number; to: number }[] = [];
    const knownFailure = (f: { t: number; text: string }) => STRICT ? undefined
      : KNOWN_FAILURES.find((k) => k.text.test(f.text) && windows.some((w) => k.faults.includes(w.kind) && f.t >= w.from && f.t <= w.to));
    /**
     * Terminal results so far: at most one per job, each for an attempt that the history shows
     * ended. Redis is read before the history: an attempt logs its end before it exits, and its
     * agent reports it after, so every success read here has its end in the history read next
     * (read the other way round, a job that ends in between looks like a success without an end).
     */
    const checkResults = async (): Promise<{ h: History; out: string[] }> => {
      const out: string[] = [];
      for (const f of await failedAttempts()) {
        if (!knownFailure(f)) out.push(`job ${f.id}: an attempt failed at ${since(f.t)}: ${f.text}`);
      }
      const results = (await within('jobs:results', readResults(c.conn, c.ks), 10_000)).filter((r) => r.state !== 'attempt-ended');
      const h = readHistory();
      const seen = new Map<string, number>();
      for (const r of results) {
        seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
        if (seen.get(r.id) === 2) out.push(`job ${r.id} has more than one terminal result`);
        if (r.state !== 'succeeded') out.push(`job ${r.id} ended ${r.state} (attempt ${r.attempt}, exit code ${r.exitCode})`);
        else if (h.jobs.get(r.id)?.get(r.attempt)?.end === undefined) {
          out.push(`job ${r.id} succeeded with attempt ${r.attempt}, which the history shows ${h.jobs.get(r.id)?.get(r.attempt) ? 'never ending' : 'never starting'}`);
        }
      }
      return { h, out };
    };
    const assertInvariants = async (when: string) => {
      const { h, out } = await checkResults();
      const v = [...violations(h), ...out];
      if (v.length) {
        assert.fail(`seed ${seed}: ${when}: ${v.length} violation(s):\n${v.slice(0, 20).join('\n')}\nhistory of those jobs:\n${excerpt(h, v)}`);
      }
    };

    /** Attempts now running on a node (a start, no end, the pid alive), and with at least leftMs to go. */
    const runningOn = (node: string, leftMs = 0): Attempt[] => [...readHistory().jobs.values()].flatMap((m) => [...m.values()])
      .filter((a) => a.node === node && a.end === undefined && alive(a.pid) && a.start / 1000 + (a.secs ?? 0) * 1000 - Date.now() >= leftMs);

    /**
     * Wait (a while at most) for a moment when the node runs a job with leftMs still to go: a
     * fault of a node is meant to catch jobs there (the guard's kill once the node's fence has
     * passed, the time until they run again), and with a few jobs a second spread over three
     * nodes, most of them short, it otherwise often catches none.
     */
    const busy = (node: string, notes: string[], leftMs: number) => until(`a job running on ${node}`, async () => runningOn(node, leftMs).length > 0, 15_000, 50)
      .catch(() => notes.push(`no job with ${leftMs} ms to go was running there`));
    /** When a node cut off from Redis kills its jobs (fence.ts), and a little more. */
    const PAST_FENCE_MS = NODE_TIMEOUT_MS - Math.min(1000, NODE_TIMEOUT_MS / 4) + 500;

    // --- the nemesis -----------------------------------------------------------------------
    const schedule = drawSchedule(seed, { nodes: NODES, partitionable: NS_NODE, nodeTimeoutMs: NODE_TIMEOUT_MS, count: FAULTS });
    console.log(`schedule: ${schedule.map((f) => `${f.kind}${f.node ? `(${f.node})` : ''} after ${f.gapMs} ms for ${f.durationMs} ms`).join('; ')}`);
    const applied: AppliedFault[] = [];
    /** Per node, when its agent was dead: [SIGKILL, registered again with its mount up]. */
    const agentDown: { node: string; from: number; to: number }[] = [];
    const kills: { node: string; at: number; running: Attempt[] }[] = [];

    for (const [index, f] of schedule.entries()) {
      await sleep(f.gapMs);
      const notes: string[] = [];
      let target = f.node ?? '';
      let start = Date.now();
      // Opened before the fault lands (a wait for a busy node may come first), closed once whole.
      windows.push({ kind: f.kind, from: start, to: Infinity });
      switch (f.kind) {
        case 'agent-kill': {
          const a = c.agents.get(f.node!)!;
          await busy(f.node!, notes, 1000);
          const running = runningOn(f.node!);
          start = Date.now();
          await a.proc!.kill();
          kills.push({ node: f.node!, at: start, running });
          notes.push(`${running.length} job(s) running there: ${running.map((r) => `${r.id}#${r.attempt}`).join(' ')}`);
          await sleep(f.durationMs);
          await a.start();
          agentDown.push({ node: f.node!, from: start, to: Date.now() });
          target = `agent ${f.node} (pid ${a.proc!.pid} now)`;
          break;
        }
        case 'agent-stop': {
          const a = c.agents.get(f.node!)!;
          await busy(f.node!, notes, PAST_FENCE_MS);
          notes.push(`${runningOn(f.node!).length} job(s) running there`);
          start = Date.now();
          a.proc!.signal('SIGSTOP');
          await sleep(f.durationMs);
          a.proc!.signal('SIGCONT');
          target = `agent ${f.node}`;
          break;
        }
        case 'fs-kill':
        case 'fs-stop': {
          const a = c.agents.get(f.node!)!;
          const pid = await until(`${f.node}'s FS process`, () => a.fsPid(), 10_000);
          target = `FS process of ${f.node} (pid ${pid})`;
          start = Date.now();
          if (f.kind === 'fs-kill') {
            process.kill(pid, 'SIGKILL');
            await until(`${f.node}'s FS process to be started again`, async () => {
              const now = await a.fsPid();
              return now !== undefined && now !== pid && (await a.mounted());
            }, 30_000);
            notes.push(`mounted again in ${Date.now() - start} ms`);
          } else {
            process.kill(pid, 'SIGSTOP');
            await sleep(f.durationMs);
            process.kill(pid, 'SIGCONT');
          }
          break;
        }
        case 'cp-leader-kill':
        case 'cp-follower-kill':
        case 'cp-leader-stop':
        case 'cp-follower-stop': {
          const leader = await until('a leading control plane', () => c.leader(), 20_000);
          const cp = f.kind.startsWith('cp-leader') ? leader : c.cps.find((x) => x !== leader)!;
          target = `${cp.name} (${cp === leader ? 'leader' : 'not leading'}, pid ${cp.proc!.pid})`;
          start = Date.now();
          if (f.kind.endsWith('kill')) {
            await cp.proc!.kill();
            await sleep(f.durationMs);
            await cp.start();
          } else {
            cp.proc!.signal('SIGSTOP');
            await sleep(f.durationMs);
            cp.proc!.signal('SIGCONT');
          }
          break;
        }
        case 'redis-kill':
          target = `redis-server (pid ${c.redis.proc!.pid})`;
          start = Date.now();
          await c.redis.proc!.kill();
          await sleep(f.durationMs);
          await c.redis.start();
          break;
        case 'redis-stop':
          target = `redis-server (pid ${c.redis.proc!.pid})`;
          start = Date.now();
          c.redis.proc!.signal('SIGSTOP');
          await sleep(f.durationMs);
          c.redis.proc!.signal('SIGCONT');
          break;
        case 'partition':
          target = `${f.node} (namespace ${c.netns!.name})`;
          await busy(f.node!, notes, PAST_FENCE_MS);
          notes.push(`${runningOn(f.node!).length} job(s) running there`);
          start = Date.now();
          await c.netns!.cut();
          await sleep(f.durationMs);
          await c.netns!.heal();
          break;
      }
      const end = Date.now();
      console.log(`fault ${index + 1}/${FAULTS} at ${since(start)}: ${f.kind} of ${target}, undone after ${end - start} ms`);
      // Whole again: every piece back, then the invariants.
      let why: string | undefined = '';
      try {
        await until('the cluster to be whole again', async () => !(why = await c.healthy()), 60_000, 200);
      } catch (err) {
        assert.fail(`seed ${seed}: fault ${index + 1} (${f.kind} of ${target}): the cluster did not recover in 60 s: ${why || (err as Error).message}`);
      }
      const healthy = Date.now();
      windows[windows.length - 1].to = healthy + 3000;
      applied.push({ ...f, index, start, end, healthy, target, notes });
      await assertInvariants(`after fault ${index + 1} (${f.kind} of ${target})`);
    }
    const nemesisEnd = Date.now();

    // --- the rest of the load, then everything must finish --------------------------------
    const okFiles = () => writers.reduce((s, w) => s + w.entries().filter((e) => e.ok).length, 0);
    await until(`${MIN_JOBS} jobs submitted and ${MIN_FILES} files written`, async () => submitted.length >= MIN_JOBS && okFiles() >= MIN_FILES, 120_000, 200);
    submitting = false;
    await within('the submitter to stop', submitter, 30_000);
    await Promise.all(writers.map((w) => w.stop(60_000)));
    const ids = [...submitted];
    const done = await until(`all ${ids.length} jobs to end`, async () => {
      const jobs = (await listJobs(c.conn, c.ks, { limit: ids.length + 100 })).items;
      return jobs.length === ids.length && jobs.every((j) => TERMINAL_STATES.has(j.state)) ? jobs : undefined;
    }, 180_000, 500).catch(async (err: Error) => {
      const jobs = (await listJobs(c.conn, c.ks, { limit: ids.length + 100 })).items;
      const by: Record<string, number> = {};
      for (const j of jobs) by[`${j.state}${j.node ? `@${j.node}` : ''}`] = (by[`${j.state}${j.node ? `@${j.node}` : ''}`] ?? 0) + 1;
      const stuck = jobs.filter((j) => !TERMINAL_STATES.has(j.state)).slice(0, 5).map((j) => `${j.id} ${j.state} ${j.node ?? ''} attempt ${j.attempt}: ${j.waitReason || j.message}`);
      throw new Error(`seed ${seed}: ${err.message}: ${JSON.stringify(by)}\n${stuck.join('\n')}`);
    });
    const allDone = Date.now();
    observing = false;
    await within('the observer to stop', observer, 10_000);

    // --- the final check ------------------------------------------------------------------
    const h = readHistory();
    await assertInvariants('at the end');
    assert.deepEqual(done.filter((j) => j.state !== 'succeeded').map((j) => `${j.id}: ${j.state} ${j.message}`), [], `seed ${seed}: every job succeeds`);
    const results = (await readResults(c.conn, c.ks)).filter((r) => r.state !== 'attempt-ended');
    const terminal = new Map<string, number>();
    for (const r of results) terminal.set(r.id, (terminal.get(r.id) ?? 0) + 1);
    assert.deepEqual(ids.filter((id) => terminal.get(id) !== 1).map((id) => `${id}: ${terminal.get(id) ?? 0} terminal results`), [], `seed ${seed}: one terminal result per job`);
    assert.deepEqual(ids.filter((id) => !h.jobs.has(id)), [], `seed ${seed}: every job started at least once`);
    // The guard's promise: nothing of any attempt outlives it.
    const cmdline = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    const survivors = [...h.jobs.values()].flatMap((m) => [...m.values()]).filter((a) => a.end === undefined && cmdline(a.pid).includes('job.sh'));
    assert.deepEqual(survivors.map((a) => describeAttempt(a, t0 * 1000)), [], `seed ${seed}: no killed attempt still runs`);

    // An agent's SIGKILL: its jobs die with it and run again, within the issue's bound.
    for (const k of kills) {
      const times: number[] = [];
      const reruns: string[] = [];
      // (One that wrote its end as the kill landed ended by itself: the checker holds it to the rest.)
      for (const a of k.running.map((r) => h.jobs.get(r.id)!.get(r.attempt)!).filter((r) => r.end === undefined)) {
        const later = [...(h.jobs.get(a.id)?.values() ?? [])].filter((b) => b.attempt > a.attempt).sort((x, y) => x.start - y.start)[0];
        assert.ok(later, `seed ${seed}: job ${a.id}, killed with the agent of ${k.node}, never ran again`);
        times.push(later.start / 1000 - k.at);
        reruns.push(`${a.id} on ${later.node} after ${(later.start / 1000 - k.at).toFixed(0)} ms`);
      }
      const worst = Math.max(0, ...times);
      console.log(`SIGKILL of ${k.node}'s agent at ${since(k.at)}: ${k.running.length} job(s) running again: ${reruns.join(', ') || '(none was running)'}`);
      assert.ok(worst < RERUN_BOUND_MS, `seed ${seed}: the jobs of ${k.node}'s agent killed at ${since(k.at)} ran again only after ${worst.toFixed(0)} ms: ${reruns.join('; ')}`);
    }

    // Files: every one whose close returned success, byte for byte through every node's mount.
    const entries = writers.flatMap((w) => w.entries());
    const written = entries.filter((e) => e.ok);
    const expected = new Map(written.map((e) => [`w-${e.writer}/${e.name}`, e]));
    const mismatched: string[] = [];
    // Written through a mount while its own agent was dead (SIGKILL until the restarted agent
    // mounted again): the read-only guard stays under the mount then, so such a write fails
    // (EROFS) rather than land in the bare directory with its close a success. Held against
    // the run like any other file; the list says which of the lost ones came then.
    const fellThrough: string[] = [];
    const duringAgentDeath = (e: LedgerEntry) => agentDown.some((d) => d.node === e.writer && e.t0 < d.to && e.t1 > d.from);
    for (const n of NODES) {
      const mount = c.agents.get(n)!.mount;
      const names = [...expected.keys()];
      const got = new Map<string, string>();
      for (let i = 0; i < names.length; i += 100) {
        const batch = names.slice(i, i + 100);
        // One process per batch, reading as any program on that node would; a file missing or
        // unreadable is a line on stderr (sha256sum goes on with the rest).
        const out = await new Promise<string>((resolve) => {
          execFile('sha256sum', batch, { cwd: mount, timeout: 120_000, maxBuffer: 16 << 20 }, (_err, stdout) => resolve(String(stdout)));
        });
        for (const line of out.split('\n').filter(Boolean)) {
          const [hash, name] = line.split(/\s+/);
          got.set(name, hash);
        }
      }
      for (const [name, e] of expected) {
        if (got.get(name) === e.sha256) continue;
        const what = `${name} (${e.size} bytes, closed at ${since(e.t1)}) read through ${n}'s mount: ${got.has(name) ? 'different bytes' : 'missing or unreadable'}`;
        mismatched.push(what);
        if (duringAgentDeath(e) && n === e.writer) fellThrough.push(what);
      }
    }
    // Copies (issue 26): every such file is on two nodes. A close returns once it is; the
    // replication pass makes up, within a pass or two, for a holder lost to a fault since.
    let short: string[] = [];
    await until('every file whose close succeeded to be on two nodes', async () => {
      short = [];
      for (const name of expected.keys()) {
        const h = await c.holders(`/${name}`).catch(() => []);
        if (h.length < 2) short.push(`${name} on ${h.join(', ') || 'no node'}`);
      }
      return short.length === 0;
    }, 60_000, 2000).catch(() => undefined);
    // Nothing ever landed in the directory under a mount (strays the agent moved aside are next to it).
    const under = NODES.flatMap((n) => readdirSync(join(view, n, 'cluster')).map((f) => `${n}: ${f}`));
    const strays = NODES.flatMap((n) => readdirSync(join(view, n)).filter((f) => f.startsWith('.cluster.stray-'))
      .flatMap((d) => listFiles(join(view, n, d)).map((f) => `${n}/${d}/${f}`)));

    // --- the report -------------------------------------------------------------------------
    const failures = entries.filter((e) => !e.ok);
    console.log(`\nrun (seed ${seed}): ${ids.length} jobs (${[...h.jobs.values()].reduce((s, m) => s + m.size, 0)} attempts), `
      + `${written.length} files written and ${failures.length} writes failed, nemesis ${since(nemesisEnd)}, all jobs done at ${since(allDone)}`);
    for (const f of applied) {
      const inWindow = (t: number) => t >= f.start && t <= f.healthy + 500;
      const events = observations.filter((o) => inWindow(o.t)).map((o) => `${since(o.t)} ${o.what}`);
      const attempts = [...h.jobs.values()].flatMap((m) => [...m.values()]);
      // Killed by this fault: no end, started before the cluster was whole again, and the next
      // attempt started after this fault began and before the next one did.
      const nextFault = applied[f.index + 1]?.start ?? Infinity;
      const killed = attempts.filter((a) => {
        if (a.end !== undefined || a.start / 1000 > f.healthy) return false;
        const next = [...h.jobs.get(a.id)!.values()].filter((b) => b.attempt > a.attempt).sort((x, y) => x.start - y.start)[0];
        return next !== undefined && next.start / 1000 >= f.start && next.start / 1000 < nextFault;
      });
      const reruns = attempts.filter((a) => a.attempt > 1 && inWindow(a.start / 1000));
      const wfail = failures.filter((e) => e.t1 >= f.start && e.t0 <= f.healthy);
      const slow = written.filter((e) => e.t1 >= f.start && e.t0 <= f.healthy && e.t1 - e.t0 > 1000);
      const errnos = [...new Set(wfail.map((e) => e.errno))].join(', ');
      console.log(`fault ${f.index + 1}: ${f.kind} of ${f.target} at ${since(f.start)} for ${f.end - f.start} ms, whole again at ${since(f.healthy)}`
        + `${f.notes.length ? `; ${f.notes.join('; ')}` : ''}\n    jobs killed ${killed.length}, attempts started again ${reruns.length}; `
        + `writes failed ${wfail.length}${errnos ? ` (${errnos})` : ''}, writes that waited > 1 s ${slow.length}`
        + `${events.length ? `\n    seen: ${events.join(' | ')}` : ''}`);
    }
    const failedAll = await failedAttempts();
    if (failedAll.length) {
      console.log(`attempts that failed and were retried: ${failedAll.length}\n    `
        + `${failedAll.map((f) => `${since(f.t)} ${f.id}: ${f.text} (known: ${knownFailure(f)?.name})`).join('\n    ')}`);
    }
    if (fellThrough.length || strays.length) {
      console.log(`written through a node's mount while its agent was dead, and not in the cluster: ${fellThrough.length}${fellThrough.length ? `\n    ${fellThrough.slice(0, 10).join('\n    ')}` : ''}`
        + `\n    moved aside as strays by the restarted agents: ${strays.length}${strays.length ? ` (${strays.slice(0, 10).join(', ')})` : ''}`);
    }

    assert.deepEqual(mismatched, [], `seed ${seed}: ${mismatched.length} file(s) whose close returned success do not read back the same on every node`);
    assert.deepEqual(under, [], `seed ${seed}: nothing lands in the directory under a mount`);
    assert.deepEqual(short.slice(0, 20), [], `seed ${seed}: ${short.length} file(s) whose close returned success are on fewer than two nodes`);
    assert.ok(ids.length >= MIN_JOBS && written.length >= MIN_FILES);
    assert.deepEqual(checkHistory(h, t0 * 1000), []);
    failed = false;
  });
});

function listFiles(dir: string, base = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? listFiles(join(dir, d.name), `${base}${d.name}/`) : [`${base}${d.name}`]));
}
