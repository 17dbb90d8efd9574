import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Keyspace } from '../state/keys.js';
import {
  cancelJob, claimJobs, completeAndTake, getJob, renewLeases, touchTerminalClient, DEFAULT_BACKOFF, type BackoffOptions, type ClaimedJob, type CompleteOutcome, type Completion,
} from '../state/jobs.js';
import { logEnd } from '../state/job-streams.js';
import type { Logger } from '../util/log.js';
import { LogShipper } from './log-shipper.js';
import { pumpStdin } from './stdin-pump.js';
import { AttachSession } from './attach.js';
import type { RunHandle, RunResult, RunSpec, Runtime } from './runtime/types.js';
import { BlockingReaders, duplicateRedis, type Redis } from '../state/redis.js';
import { monotonicMs, type NodeFence } from './fence.js';
import { milliCpus } from '../api/jobs.js';
import type { JobCpuTime } from './cpu-meter.js';
import { longTimeout } from '../util/timers.js';

export interface RunnerOptions {
  redis: Redis;
  ks: Keyspace;
  node: string;
  runtime: Runtime;
  /** docker runtime: the image of jobs that name none; absent, such a job is not for this node. */
  defaultImage?: string;
  log: Logger;
  registry: Registry;
  /** The current agent epoch (changes when the agent registers again). */
  epoch: () => number;
  /** Called when a claim is refused: the agent must register again. */
  onStaleEpoch: () => void;
  /** The cluster's id: everything the runtime makes on the host carries it. */
  cluster: string;
  /** The node's fence: every job runs under its guard, and the leases here move it. */
  fence: NodeFence;
  /**
   * Whether the node can start jobs now (false while its mount of the unified filesystem is
   * down): no claims and no next jobs taken meanwhile, since they would start without /cluster
   * or in a dead working directory and fail for the node's fault.
   */
  canRun?: () => boolean;
  /** Host path of the unified filesystem mount, handed to jobs as their cluster mount. */
  clusterMount?: string;
  leaseMs: number;
  backoff?: BackoffOptions;
  /** Jobs claimed per claim call. */
  claimBatch?: number;
}

type StopReason = 'cancel' | 'move' | 'deadline' | 'lost' | 'shutdown';

/** How often the agent looks whether the node's fence has passed. */
const FENCE_CHECK_MS = 200;
/**
 * How often an idle agent claims without a wake-up. Every placement wakes the node in the same
 * step (placeJobs-1.lua), so this only catches a wake-up lost with a failover; a claim each
 * second from every idle node cost Redis as much as the heartbeats did.
 */
const CLAIM_POLL_MS = 10_000;
/** Most reports one call carries. */
const REPORT_BATCH = 256;
/** Report calls on their way at once: the next batch forms while Redis works on one. */
const REPORTS_IN_FLIGHT = 2;

/**
 * A job that runs this long leaves time to make ready for the next one (Runtime.warm) while it
 * runs; a shorter one does it after its report, so as not to hold its own end up.
 */
const WARM_AFTER_MS = 50;

/** Hold the job's output until both its log and its session's client (when it is a session) took it. */
function both(a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> | undefined {
  return a && b ? Promise.all([a, b]).then(() => undefined) : a ?? b;
}

interface Running {
  claim: ClaimedJob;
  /** When the call that last set this job's lease (its claim, a renewal) was sent (monotonicMs). */
  leaseSentAt: number;
  /** When this node took the job (monotonicMs). */
  launchedAt: number;
  handle?: RunHandle;
  /** Its program has ended (the attempt is being reported). */
  exited?: boolean;
  stop?: StopReason;
  done: Promise<void>;
}

/**
 * The agent's job loop: wait on the node's wake-up list, claim what the scheduler placed
 * here, run each job through the runtime, ship its output, renew all leases in one call,
 * stop jobs that were cancelled, moved or lost, and report each end with its fencing token.
 */
export class JobRunner {
  private readonly running = new Map<string, Running>();
  /** Sessions of jobs here (spec.attachKey), until their client has the end or gave up coming. */
  private readonly sessions = new Map<string, AttachSession>();
  private readonly blocking: Redis;
  /** The connections of the jobs' input pumps. */
  private readonly readers: BlockingReaders;
  private stopped = false;
  private loop?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private fenceTimer?: NodeJS.Timeout;
  private renewing?: Promise<void>;
  private readonly durations: Histogram<'outcome'>;
  private readonly ended: Counter<'outcome'>;
  private readonly reports: { c: Completion; resolve: (o: CompleteOutcome) => void; reject: (err: unknown) => void }[] = [];
  private reporting = 0;

  constructor(private readonly o: RunnerOptions) {
    this.blocking = duplicateRedis(o.redis);
    this.readers = new BlockingReaders(o.redis);
    this.durations = new Histogram({
      name: 'oswalk_job_duration_seconds', help: 'Run time of job attempts on this node, by outcome.', labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600], registers: [o.registry],
    });
    this.ended = new Counter({ name: 'oswalk_job_attempts_total', help: 'Job attempts ended on this node, by outcome.', labelNames: ['outcome'], registers: [o.registry] });
    const running = this.running;
    new Gauge({
      name: 'oswalk_agent_running_jobs', help: 'Jobs running on this node now.', registers: [o.registry],
      collect() {
        this.set(running.size);
      },
    });
  }

  /**
   * The jobs taken at a report (no nodeSelector, no runtime) name no image: a docker node runs
   * them only in its default image, and without one leaves them to the scheduler.
   */
  private get takesAnywhere(): boolean {
    return this.o.runtime.name !== 'docker' || !!this.o.defaultImage;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** The session of a job here, for its client's handshake (serveAttach). */
  session(id: string): AttachSession | undefined {
    return this.sessions.get(id);
  }

  runningIds(): Set<string> {
    return new Set(this.running.keys());
  }

  /** The CPU time of each job running here, as its runtime reads it; one it cannot read is left out. */
  async cpuTimes(): Promise<JobCpuTime[]> {
    const times = await Promise.all([...this.running.values()].map(async (r) => {
      const cpuSeconds = await r.handle?.cpuSeconds().catch(() => undefined);
      return cpuSeconds === undefined
        ? undefined
        : { key: `${r.claim.id}#${r.claim.attempt}`, startedAt: r.launchedAt, reservedCpus: milliCpus(r.claim.spec.cpus) / 1000, cpuSeconds };
    }));
    return times.filter((t): t is JobCpuTime => t !== undefined);
  }

  start(): void {
    this.loop = this.claimLoop();
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.o.leaseMs / 3)));
    this.fenceTimer = setInterval(() => this.fence(), FENCE_CHECK_MS);
  }

  /**
   * Cut off from Redis (a partition, Redis stopped) until the node's fence passed: the cluster
   * is about to take these jobs away, and their guards kill them now; they are marked lost here
   * so that nothing reports them. Nomad's clients do the same (stop_after_client_disconnect).
   */
  private fence(): void {
    const held = this.held();
    if (!held.length || !this.o.fence.passed()) return;
    this.o.log.warn({ jobs: held.length }, 'no heartbeat or lease renewal answered in time: the jobs here are killed, the cluster runs them elsewhere');
    for (const r of held) void this.stopJob(r, 'lost');
  }

  /** Stop claiming, kill what runs (it is requeued by the caller) and wait for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.renewTimer);
    clearInterval(this.fenceTimer);
    this.blocking.disconnect();
    await this.loop;
    await this.stopAll('shutdown');
    this.readers.close();
    await this.o.runtime.cool?.();
  }

  /** Let the runtime make ready for the next job here (a spare guard), in the background. */
  private warm(): void {
    if (!this.stopped) void this.o.runtime.warm?.({ cluster: this.o.cluster, node: this.o.node, fenceDir: this.o.fence.dir });
  }

  /** Kill every job without reporting it (after the node lost its registration). */
  async stopAll(reason: StopReason): Promise<void> {
    // Until none is left: a report in flight may have started the next jobs (completeAndTake).
    while (this.running.size) {
      const all = [...this.running.values()];
      await Promise.all(all.map((r) => this.stopJob(r, reason)));
      await Promise.all(all.map((r) => r.done));
    }
  }

  private async claimLoop(): Promise<void> {
    const batch = this.o.claimBatch ?? 256;
    let more = true;
    let claimedAt = -Infinity;
    while (!this.stopped) {
      try {
        const stopKey = this.o.ks.nodeStopWake(this.o.node);
        const woke = more ? undefined : await this.blocking.blpop(stopKey, this.o.ks.nodeWake(this.o.node), 1);
        if (this.stopped) break;
        // A job here must stop (cancel, drain): the lease renewal says which.
        if (woke?.[0] === stopKey) await this.renew();
        if (this.o.canRun && !this.o.canRun()) {
          // What was placed meanwhile is claimed as soon as the node can run it.
          claimedAt = -Infinity;
          more = false;
          continue;
        }
        if (!more && !woke && monotonicMs() - claimedAt < CLAIM_POLL_MS) continue;
        const sent = monotonicMs();
        claimedAt = sent;
        const claimed = await claimJobs(this.o.redis, this.o.ks, this.o.node, this.o.epoch(), batch, this.o.leaseMs);
        if (!claimed) {
          more = false;
          // Claimed again each second until the registration is current.
          claimedAt = -Infinity;
          this.o.onStaleEpoch();
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        for (const c of claimed) this.launch(c, sent);
        more = claimed.length === batch;
      } catch (err) {
        if (this.stopped) break;
        this.o.log.warn({ err }, 'claim failed; retrying');
        // The wake-up that led here is spent: the claim is tried again, not left to the poll.
        more = true;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** One renewal in flight at a time; callers share it. */
  private renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  /** The jobs here not being stopped. */
  private held(): Running[] {
    return [...this.running.values()].filter((r) => !r.stop);
  }

  /**
   * The jobs whose leases this node keeps: all but those it lost or gives back. A job being
   * stopped (cancel, drain, deadline) keeps its lease until it is gone, so that a slow stop is
   * never taken for a dead node.
   */
  private leased(): Running[] {
    return [...this.running.values()].filter((r) => r.stop !== 'lost' && r.stop !== 'shutdown');
  }

  /** The fence follows the oldest lease here. */
  private fenceLeases(): void {
    this.o.fence.leases(this.leased().map((r) => r.leaseSentAt), this.o.leaseMs);
  }

  private async renewOnce(): Promise<void> {
    const leased = this.leased();
    if (!leased.length) return;
    try {
      const sent = monotonicMs();
      const codes = await renewLeases(this.o.redis, this.o.ks, this.o.node, leased.map((r) => ({ id: r.claim.id, token: r.claim.token })), this.o.leaseMs);
      codes.forEach((code, i) => {
        if (code === 'lost') void this.stopJob(leased[i], code);
        else leased[i].leaseSentAt = sent;
        if (code === 'cancel' || code === 'move') void this.stopJob(leased[i], code);
      });
      this.fenceLeases();
    } catch (err) {
      this.o.log.warn({ err }, 'lease renewal failed');
    }
  }

  private async stopJob(r: Running, reason: StopReason): Promise<void> {
    if (r.stop) return;
    r.stop = reason;
    if (reason === 'lost' || reason === 'shutdown') this.fenceLeases();
    this.o.log.info({ job: r.claim.id, reason }, 'stopping job');
    await r.handle?.kill(reason).catch((err: unknown) => this.o.log.warn({ err, job: r.claim.id }, 'kill failed'));
  }

  /** Run a job claimed by a call sent at `leaseSentAt` (monotonicMs). */
  private launch(claim: ClaimedJob, leaseSentAt: number): void {
    // An attempt of this job still running here lost its lease (this node was cut off longer
    // than that) and the job was placed here again: that one is stopped, and this one starts
    // when it has ended, so the node never runs a job twice.
    const earlier = this.running.get(claim.id);
    if (earlier) {
      this.o.log.warn({ job: claim.id }, 'claimed again while an earlier attempt still runs here: stopping that one first');
      void this.stopJob(earlier, 'lost');
    }
    const r: Running = { claim, leaseSentAt, launchedAt: monotonicMs(), done: Promise.resolve() };
    this.running.set(claim.id, r);
    this.fenceLeases();
    r.done = (earlier?.done ?? Promise.resolve())
      .then(() => this.supervise(r))
      .catch((err: unknown) => this.o.log.error({ err, job: claim.id }, 'job supervision failed'))
      .finally(() => {
        if (this.running.get(claim.id) === r) this.running.delete(claim.id);
        this.fenceLeases();
      });
  }

  /**
   * Report an attempt's end. Reports go out as a group commit: at most REPORTS_IN_FLIGHT calls
   * at a time, each carrying every report that came in while the calls before it were on their
   * way, so jobs that end together cost one round trip. The same call starts the next jobs of
   * a backlog here.
   */
  private report(c: Completion): Promise<CompleteOutcome> {
    return new Promise((resolve, reject) => {
      this.reports.push({ c, resolve, reject });
      if (this.reporting < REPORTS_IN_FLIGHT) void this.sendReports();
    });
  }

  private async sendReports(): Promise<void> {
    this.reporting++;
    while (this.reports.length) {
      const batch = this.reports.splice(0, REPORT_BATCH);
      const take = this.stopped || (this.o.canRun && !this.o.canRun()) || !this.takesAnywhere ? undefined : { node: this.o.node, epoch: this.o.epoch(), leaseMs: this.o.leaseMs, max: this.o.claimBatch ?? 256 };
      try {
        const sent = monotonicMs();
        const { outcomes, next } = await completeAndTake(this.o.redis, this.o.ks, batch.map((b) => b.c), take, this.o.backoff ?? DEFAULT_BACKOFF);
        for (const n of next) this.launch(n, sent);
        batch.forEach((b, i) => b.resolve(outcomes[i]));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.reporting--;
  }

  /** A session for a job's client to attach to (src/agent/attach.ts). */
  private openSession(r: Running, keyHash: string, shipper: LogShipper): AttachSession {
    const { id, attempt } = r.claim;
    const session: AttachSession = new AttachSession(id, attempt, keyHash, {
      attached: () => shipper.keepTail(),
      hungUp: () => {
        // A program that ended already is reported as it ended, not as cancelled.
        if (r.exited) return;
        this.o.log.info({ job: id }, 'the session\'s client went away: hanging the job up');
        // Cancelled in Redis first, so that the stop is reported as a cancel.
        void cancelJob(this.o.redis, this.o.ks, id).catch(() => undefined).finally(() => this.stopJob(r, 'cancel'));
      },
      present: () => touchTerminalClient(this.o.redis, this.o.ks, id),
      gone: () => {
        if (this.sessions.get(id) === session) this.sessions.delete(id);
      },
      log: this.o.log,
    });
    this.sessions.set(id, session);
    return session;
  }

  private async supervise(r: Running): Promise<void> {
    const { claim } = r;
    const { spec } = claim;
    const log = this.o.log.child({ job: claim.id, attempt: claim.attempt });
    // A terminal's output is someone's echo: sent at once, not batched for 100 ms.
    const shipper = new LogShipper(this.o.redis, this.o.ks, claim.id, claim.attempt, spec.tty ? { flushMs: 0 } : {});
    const runSpec: RunSpec = {
      cluster: this.o.cluster,
      fenceDir: this.o.fence.dir,
      jobId: claim.id,
      attempt: claim.attempt,
      node: this.o.node,
      ...(spec.image ?? this.o.defaultImage ? { image: spec.image ?? this.o.defaultImage } : {}),
      command: [...spec.command, ...spec.args],
      env: spec.env,
      ...(spec.workingDir ? { workingDir: spec.workingDir } : {}),
      cpus: spec.cpus,
      ...(spec.memoryBytes ? { memoryBytes: spec.memoryBytes } : {}),
      privileged: spec.privileged,
      ...(this.o.clusterMount ? { clusterMount: this.o.clusterMount } : {}),
      ...(spec.stdin ? { stdin: true } : {}),
      ...(spec.tty ? { tty: spec.tty } : {}),
    };
    const started = Date.now();
    let result: RunResult;
    let deadline: { clear(): void } | undefined;
    const over = new AbortController();
    const warmLater = setTimeout(() => this.warm(), WARM_AFTER_MS);
    const session = spec.attachKey ? this.openSession(r, spec.attachKey, shipper) : undefined;
    try {
      r.handle = await this.o.runtime.start(runSpec, (stream, data) => both(shipper.write(stream, data), session?.output(stream, data)));
      session?.started(r.handle);
      // Input through the control plane too: a client that could not reach this node sends it so.
      if (r.handle.stdin || r.handle.resize) void pumpStdin(this.readers, this.o.redis, this.o.ks, claim.id, claim.attempt, r.handle, over.signal);
      // A cancel that arrived while the runtime was starting the job.
      if (r.stop) await r.handle.kill(r.stop);
      if (spec.activeDeadlineSeconds) {
        // Counted from the job's first start, across retries and moves (as Kubernetes counts it).
        deadline = longTimeout(() => void this.stopJob(r, 'deadline'), Math.max(0, spec.activeDeadlineSeconds * 1000 - claim.sinceFirstStartMs));
      }
      result = await r.handle.wait();
      r.exited = true;
    } catch (err) {
      result = { exitCode: null, error: `the ${this.o.runtime.name} runtime could not run the job: ${(err as Error).message}` };
    } finally {
      clearTimeout(warmLater);
      deadline?.clear();
      over.abort();
    }
    // The fence lapsed while the job ran: its guard may be what ended it, and the job is the
    // cluster's to move; reported, a kill by the guard would count as the job's failure.
    if (!r.stop && this.o.fence.lapsedSince(r.launchedAt)) r.stop = 'lost';
    await shipper.flush();
    const seconds = (Date.now() - started) / 1000;
    if (r.stop === 'lost' || r.stop === 'shutdown') {
      // Someone else holds the job now (or will, once it is requeued): report nothing.
      session?.finish({});
      log.info({ reason: r.stop }, 'job stopped without a report');
      this.durations.observe({ outcome: r.stop }, seconds);
      this.ended.inc({ outcome: r.stop });
      return;
    }
    const c: Completion = { id: claim.id, token: claim.token, exitCode: result.exitCode, how: 'exit' };
    if (r.stop === 'deadline') {
      c.how = 'deadline';
      c.message = `activeDeadlineSeconds (${spec.activeDeadlineSeconds}s) exceeded`;
    } else if (r.stop) {
      c.how = 'stopped';
      c.message = r.stop === 'cancel' ? 'cancelled' : 'moved';
    } else if (result.error || result.exitCode === null) {
      c.how = 'error';
      c.message = result.error ?? `killed by ${result.signal ?? 'a signal'}`;
      if (result.signal) c.signal = result.signal;
    }
    let outcome: CompleteOutcome;
    try {
      outcome = await this.report(c);
    } catch (err) {
      session?.finish({});
      throw err;
    }
    if (session) {
      // The end as the log's end line has it; without one (moved, retried, refused) the client reads on in the log.
      const job = outcome === 'succeeded' || outcome === 'failed' || outcome === 'cancelled' ? await getJob(this.o.redis, this.o.ks, claim.id).catch(() => undefined) : undefined;
      session.finish(job ? { end: logEnd(job) } : {});
    }
    this.warm();
    log.info({ exitCode: result.exitCode, how: c.how, outcome, seconds }, 'job attempt ended');
    this.durations.observe({ outcome }, seconds);
    this.ended.inc({ outcome });
  }
}
