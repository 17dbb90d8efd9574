import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keyspace } from './keys.js';
import { runScript, ScriptError } from './scripts.js';
import { milliCpus, type JobOwner, type JobSpec, type JobView, type OwnerStatus } from '../api/jobs.js';
import type { JobState } from '../api/job-states.js';
import type { NodeRecord } from '../api/nodes.js';
import { decodeNode } from './types.js';
import { setNodeStatus } from './nodes.js';
import type { InputLocality } from './locality.js';
import { awaitReplica, connectionGeneration } from './replication.js';

/**
 * Jobs in Redis: every transition is one Lua script (src/state/lua/*Job*.lua and friends),
 * this module only builds their arguments and decodes what they return.
 *
 *   pending ──place──► scheduled ──claim──► running ──complete──► succeeded | failed | cancelled
 *      ▲  ▲                │                  │  └─ failed, retries left ─► pending (delayed, backoff)
 *      │  └────── node down / lease expired ──┘
 *      └── cancel: pending/scheduled end at once; running is marked and ends when its agent reports.
 */

/** A job's record in Redis: what the API shows of it, and the lease of the attempt that runs it. */
export interface JobRecord extends JobView {
  token: number;
  leaseExpiry?: number;
}

const num = (v: string | undefined): number | undefined => (v === undefined || v === '' ? undefined : Number(v));

export function decodeJob(h: Record<string, string>): JobRecord {
  return {
    id: h.id,
    name: h.name,
    ...(h.ownerKind ? { owner: { kind: h.ownerKind as JobOwner['kind'], name: h.ownerName } } : {}),
    ...(h.index !== undefined && h.index !== '' ? { index: Number(h.index) } : {}),
    spec: JSON.parse(h.spec) as JobSpec,
    state: h.state as JobState,
    // submitJob leaves out this default (include/jobs.lua).
    waitReason: h.waitReason || (h.state === 'pending' ? 'waiting for the scheduler' : ''),
    ...(h.node ? { node: h.node } : {}),
    ...(h.lastNode ? { lastNode: h.lastNode } : {}),
    attempt: Number(h.attempt ?? 0),
    failures: Number(h.failures ?? 0),
    token: Number(h.token ?? 0),
    leaseExpiry: num(h.leaseExpiry),
    exitCode: num(h.exitCode),
    ...(h.signal ? { signal: h.signal } : {}),
    message: h.message ?? '',
    cancelRequested: !!h.cancelRequested,
    createdAt: Number(h.createdAt),
    scheduledAt: num(h.scheduledAt),
    startedAt: num(h.startedAt),
    finishedAt: num(h.finishedAt),
    logBytes: Number(h.logBytes ?? 0),
    logDropped: Number(h.logDropped ?? 0),
  };
}

export function newJobId(): string {
  return randomBytes(6).toString('hex');
}

export interface NewJob {
  id?: string;
  name?: string;
  owner?: JobOwner;
  index?: number;
  spec: JobSpec;
  /** Of an owner's record: the hash of the manifest spec it was made from (a Service rolls by it). */
  specHash?: string;
  /** Where its input files' data is (inputLocality), for the scheduler. */
  input?: InputLocality;
}

/** The JSON record submitJob() in include/jobs.lua takes. */
function submitRecord(j: NewJob & { id: string }): string {
  return JSON.stringify({
    id: j.id,
    name: j.name ?? (j.owner ? `${j.owner.name}-${j.index ?? 0}` : `run-${j.id}`),
    ownerKind: j.owner?.kind ?? '',
    ownerName: j.owner?.name ?? '',
    index: j.index === undefined ? '' : String(j.index),
    specHash: j.specHash ?? '',
    spec: JSON.stringify(j.spec),
    priority: j.spec.priority,
    milliCpus: milliCpus(j.spec.cpus),
    memoryBytes: j.spec.memoryBytes,
    restartPolicy: j.spec.restartPolicy,
    backoffLimit: j.spec.backoffLimit,
    // No placement constraint: a completing agent may take the job itself (completeJobs-1.lua).
    anywhere: Object.keys(j.spec.nodeSelector).length === 0 && !j.spec.runtime && !j.spec.image ? '1' : '',
    // A session is watched for its client from its submit on (touchTerminalClient), and never
    // started twice (requeue in include/jobs.lua).
    ...(watchedForClient(j.spec) ? { clientGraceMs: TERMINAL_CLIENT_GRACE_MS } : {}),
    ...(j.spec.attachKey ? { session: true } : {}),
    ...(j.input ? { input: JSON.stringify(j.input) } : {}),
  });
}

/**
 * How long a terminal session (`oswalk run -t`) runs on without a client following it: then the
 * leader's monitor hangs it up (SIGHUP), as sshd does when its connection goes. Long enough to
 * ride out a control plane's restart or failover (the client follows again within seconds).
 */
export const TERMINAL_CLIENT_GRACE_MS = 15_000;

/** A job with a terminal, or a session (an attach key), runs on only while its client is there: the monitor watches. */
export function watchedForClient(spec: Pick<JobSpec, 'tty' | 'attachKey'>): boolean {
  return !!(spec.tty || spec.attachKey);
}

/** A client follows this terminal session now: it runs on for TERMINAL_CLIENT_GRACE_MS more. */
export async function touchTerminalClient(redis: Redis, ks: Keyspace, id: string): Promise<void> {
  await redis.set(ks.jobClient(id), '1', 'PX', TERMINAL_CLIENT_GRACE_MS);
}

/**
 * Records one submit step takes. A step holds Redis for about 15 µs per record, and the
 * scheduler and agents need several round trips before the first job of a burst runs: with
 * steps of 1000 (15 ms each) every one of those round trips waited behind a step, and a burst
 * of 5000 started its first job after about 150 ms. Steps go one after another, so the
 * others' commands get in between (Redis runs a pipelined batch of one client back to back).
 */
const SUBMIT_STEP = 100;

/** Submit jobs as pending, SUBMIT_STEP at a time; returns their ids in order. */
export async function submitJobs(redis: Redis, ks: Keyspace, jobs: NewJob[], now = Date.now()): Promise<string[]> {
  const withIds = jobs.map((j) => ({ ...j, id: j.id ?? newJobId() }));
  for (let i = 0; i < withIds.length; i += SUBMIT_STEP) {
    const step = () => runScript(redis, 'submitJobs', [ks.jobsPending], [ks.prefix, now, ...withIds.slice(i, i + SUBMIT_STEP).map(submitRecord)]);
    let gen = connectionGeneration(redis);
    await step();
    // A submit a failover loses is a job lost whose id the caller has. Made again when it may
    // have happened on a primary that is gone (replication.ts): an id the server already has
    // is left alone.
    while (!(await awaitReplica(redis, gen))) {
      gen = connectionGeneration(redis);
      await step();
    }
  }
  return withIds.map((j) => j.id);
}

export interface Plan {
  placements: { jobId: string; node: string }[];
  waiting: { jobId: string; reason: string }[];
}

/** Apply a scheduler plan; placements no longer valid are skipped (see placeJobs-1.lua). */
export async function placeJobs(redis: Redis, ks: Keyspace, plan: Plan, now = Date.now()): Promise<{ placed: number; skipped: number }> {
  const args: (string | number)[] = [ks.prefix, now, plan.placements.length];
  for (const p of plan.placements) args.push(p.jobId, p.node);
  for (const w of plan.waiting) args.push(w.jobId, w.reason);
  const [placed, skipped] = await runScript<[number, number]>(redis, 'placeJobs', [ks.jobsPending], args);
  return { placed, skipped };
}

export interface ClaimedJob {
  id: string;
  token: string;
  attempt: number;
  spec: JobSpec;
  /** Since the job's first attempt started (Redis' clock): its activeDeadlineSeconds count from there. */
  sinceFirstStartMs: number;
}

/** The agent's claim; undefined means the agent's epoch is stale or the node is down: register again. */
export async function claimJobs(redis: Redis, ks: Keyspace, node: string, epoch: number, max: number, leaseMs: number, now?: number): Promise<ClaimedJob[] | undefined> {
  const gen = connectionGeneration(redis);
  let claims: ClaimedJob[];
  try {
    claims = decodeClaims(await runScript<string[]>(redis, 'claimJobs', [ks.node(node), ks.nodeQueue(node)], [
      ks.prefix, node, epoch, max, now ?? '', leaseMs,
    ]));
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'STALE_EPOCH') return undefined;
    throw err;
  }
  // A claim a failover loses leaves the job pending on the new primary: another node would
  // start it while this one runs it.
  if (!claims.length || (await awaitReplica(redis, gen))) return claims;
  return keepHeld(redis, ks, node, claims, leaseMs);
}

/**
 * The claims of a step that may have happened on a primary that is gone (its connection was
 * lost before its WAIT answered, or the sentinels replaced that primary: replication.ts):
 * those the server now answering holds, each renewed there (a claim it does not hold is 'lost')
 * and that renewal waited for, so that what is kept is on a replica too.
 */
async function keepHeld(redis: Redis, ks: Keyspace, node: string, claims: ClaimedJob[], leaseMs: number): Promise<ClaimedJob[]> {
  for (;;) {
    const gen = connectionGeneration(redis);
    const codes = await renewLeases(redis, ks, node, claims, leaseMs);
    if (await awaitReplica(redis, gen)) return claims.filter((_, i) => codes[i] !== 'lost');
  }
}

/** Claims as the scripts return them: {id, token, attempt, spec, ms since first start} flattened. */
function decodeClaims(flat: string[], from = 0): ClaimedJob[] {
  const out: ClaimedJob[] = [];
  for (let i = from; i < flat.length; i += 5) {
    out.push({ id: flat[i], token: flat[i + 1], attempt: Number(flat[i + 2]), spec: JSON.parse(flat[i + 3]) as JobSpec, sinceFirstStartMs: Number(flat[i + 4]) });
  }
  return out;
}

export type LeaseStatus = 'ok' | 'cancel' | 'move' | 'lost';
const LEASE_CODES: LeaseStatus[] = ['lost', 'ok', 'cancel', 'move'];

/** Renew the leases of running jobs in one step; the answer says what to do with each. */
export async function renewLeases(redis: Redis, ks: Keyspace, node: string, held: { id: string; token: string }[], leaseMs: number, now?: number): Promise<LeaseStatus[]> {
  if (!held.length) return [];
  const codes = await runScript<number[]>(redis, 'renewLeases', [ks.nodeLeases(node)], [
    ks.prefix, now ?? '', leaseMs, node, ...held.flatMap((h) => [h.id, h.token]),
  ]);
  return codes.map((c) => LEASE_CODES[c]);
}

export interface Completion {
  id: string;
  token: string;
  exitCode: number | null;
  /** exit: the program ended by itself; deadline: killed at activeDeadlineSeconds;
   *  error: it could not run (or was killed by a signal); stopped: the agent stopped it (cancel, move). */
  how: 'exit' | 'deadline' | 'error' | 'stopped';
  message?: string;
  /** The signal that killed the program (SIGTERM...), when one did. */
  signal?: string;
}

export type CompleteOutcome = 'stale' | 'succeeded' | 'failed' | 'cancelled' | 'retrying' | 'requeued';

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 5 * 60_000 };

/** The agent that reports, when it would take the next jobs in the same step. */
export interface TakeNext {
  node: string;
  epoch: number;
  leaseMs: number;
  max: number;
}

/**
 * Record the ends of attempts in one step (completeJobs-1.lua); with `take`, also start the
 * jobs at the head of the queue that only this node could run, and return their claims.
 */
export async function completeAndTake(redis: Redis, ks: Keyspace, reports: readonly Completion[], take?: TakeNext, backoff = DEFAULT_BACKOFF, now?: number): Promise<{ outcomes: CompleteOutcome[]; next: ClaimedJob[] }> {
  const args: (string | number)[] = [
    ks.prefix, now ?? '', backoff.baseMs, backoff.maxMs, take?.node ?? '', take?.epoch ?? 0, take?.leaseMs ?? 0, take?.max ?? 0, reports.length,
  ];
  for (const c of reports) args.push(c.id, c.token, c.exitCode === null ? '' : c.exitCode, c.how, c.message ?? '', c.signal ?? '');
  const gen = connectionGeneration(redis);
  const res = await runScript<string[]>(redis, 'completeJobs', [ks.jobsPending], args);
  const outcomes = res.slice(0, reports.length) as CompleteOutcome[];
  const next = decodeClaims(res, reports.length);
  // A completion a failover loses leaves the job running on the new primary, under a lease
  // nobody renews: it would run again.
  if (await awaitReplica(redis, gen)) return { outcomes, next };
  // The step may have happened on a primary that is gone. The reports again, without taking
  // jobs: one the server now answering already has answers stale, and the first answer
  // stands; one it lacked is recorded now. What the step took is kept only where held.
  const again = await completeAndTake(redis, ks, reports, undefined, backoff, now);
  return {
    outcomes: outcomes.map((o, i) => (again.outcomes[i] === 'stale' ? o : again.outcomes[i])),
    next: take && next.length ? await keepHeld(redis, ks, take.node, next, take.leaseMs) : next,
  };
}

export type CancelOutcome = 'cancelled' | 'cancelling' | JobState;

/** Returns undefined for an unknown job. */
export async function cancelJob(redis: Redis, ks: Keyspace, id: string, now = Date.now()): Promise<CancelOutcome | undefined> {
  try {
    return await runScript<CancelOutcome>(redis, 'cancelJob', [ks.job(id)], [ks.prefix, id, now]);
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'NOJOB') return undefined;
    throw err;
  }
}

export interface MonitorResult {
  nodesDown: string[];
  requeued: number;
  promoted: number;
  /** Terminal sessions hung up: no client followed them for TERMINAL_CLIENT_GRACE_MS. */
  hungUp: string[];
}

/**
 * Finished jobs kept at most (besides the 7 days each is kept): past it the oldest ends go first.
 * At about 2.3 KB a record that is 2.3 GB of Redis (BENCHMARKS.md, the thousand-node section).
 */
export const MAX_FINISHED_JOBS = 1_000_000;

/** One node-monitor pass (see monitor-2.lua); nodeTimeoutMs becomes the cluster's. */
export async function monitorStep(redis: Redis, ks: Keyspace, nodeTimeoutMs: number, now?: number, limit = 1000, maxFinished = MAX_FINISHED_JOBS): Promise<MonitorResult> {
  const [nodesDown, requeued, promoted, hungUp] = await runScript<[string[], number, number, string[]]>(redis, 'monitor', [ks.heartbeats, ks.cluster], [
    ks.prefix, now ?? '', nodeTimeoutMs, limit, maxFinished,
  ]);
  return { nodesDown, requeued, promoted, hungUp };
}

export interface DrainResult {
  status: 'draining' | 'down';
  /** Service replicas sent elsewhere. */
  moved: number;
  /** Batch jobs left to run to their end. */
  remaining: number;
}

export async function drainNode(redis: Redis, ks: Keyspace, node: string, now = Date.now()): Promise<DrainResult | undefined> {
  try {
    const [status, moved, remaining] = await runScript<[DrainResult['status'], number, number]>(redis, 'drainNode', [ks.node(node)], [ks.prefix, node, now]);
    return { status, moved, remaining };
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'NONODE') return undefined;
    throw err;
  }
}

/** Give a drained node back to the scheduler. */
export async function uncordonNode(redis: Redis, ks: Keyspace, node: string): Promise<string | undefined> {
  const res = await setNodeStatus(redis, ks, node, 'ready');
  await wakeScheduler(redis, ks);
  return res;
}

/**
 * Make the records of a Job (completions) or Service (replicas) manifest match it; `count`
 * 0 removes a deleted Service's replicas. `specHash` tells a changed Service spec apart.
 */
export async function reconcileOwner(redis: Redis, ks: Keyspace, owner: JobOwner, count: number, spec: JobSpec, specHash: string, opts: { parallelism?: number } = {}, now?: number): Promise<{ created: number; cancelled: number }> {
  // First without records: the script does what it can and names the indices that need one.
  const step = (records: string[]) => runScript<number[]>(redis, 'reconcileOwner', [ks.owner(owner.kind, owner.name)], [
    ks.prefix, owner.kind, owner.name, count, specHash, now ?? '', opts.parallelism ?? 0, ...records,
  ]);
  const [created, cancelled, ...missing] = await step([]);
  if (!missing.length) return { created, cancelled };
  const records = missing.flatMap((i) => {
    const env = owner.kind === 'Job' ? { ...spec.env, OSWALK_COMPLETION_INDEX: String(i) } : { ...spec.env, OSWALK_REPLICA_INDEX: String(i) };
    return [String(i), submitRecord({ id: newJobId(), owner, index: i, spec: { ...spec, env }, specHash })];
  });
  // Indices still missing after this (a replica that ended in between) get theirs next pass.
  const [more, alsoCancelled] = await step(records);
  return { created: created + more, cancelled: cancelled + alsoCancelled };
}

/** A deleted Job/Service manifest: cancel its live records and forget the owner. */
export async function retireOwner(redis: Redis, ks: Keyspace, owner: JobOwner, now?: number): Promise<{ created: number; cancelled: number }> {
  const [created, cancelled] = await runScript<[number, number]>(redis, 'reconcileOwner', [ks.owner(owner.kind, owner.name)], [
    ks.prefix, owner.kind, owner.name, 0, '', now ?? '', 0,
  ]);
  return { created, cancelled };
}

export async function getOwnerStatus(redis: Redis, ks: Keyspace, owner: JobOwner): Promise<OwnerStatus | undefined> {
  const h = await redis.hgetall(ks.owner(owner.kind, owner.name));
  if (!h.kind) return undefined;
  return {
    kind: h.kind, name: h.name, phase: h.phase,
    completions: num(h.completions), replicas: num(h.replicas),
    succeeded: Number(h.succeeded ?? 0), failed: Number(h.failed ?? 0), cancelled: Number(h.cancelled ?? 0),
  };
}

export async function getJob(redis: Redis, ks: Keyspace, id: string): Promise<JobRecord | undefined> {
  const h = await redis.hgetall(ks.job(id));
  return h.id ? decodeJob(h) : undefined;
}

async function getJobs(redis: Redis, ks: Keyspace, ids: string[]): Promise<JobRecord[]> {
  if (!ids.length) return [];
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hgetall(ks.job(id));
  const res = (await pipe.exec()) ?? [];
  return res.map(([, h]) => h as Record<string, string>).filter((h) => h?.id).map(decodeJob);
}

export interface ListJobsOptions {
  state?: JobState;
  owner?: JobOwner;
  limit?: number;
  /** Only jobs whose name holds this text. */
  nameContains?: string;
  /** Only jobs it holds for (a label selector's): applied before the limit, which then counts those. */
  where?: (job: JobRecord) => boolean;
  /** The page after the one that answered this cursor (JobPage.next). */
  after?: string;
}

/** A page of jobs, newest first, and the cursor of the next page when there may be one. */
export interface JobPage {
  items: JobRecord[];
  next?: string;
}

function wanted(j: JobRecord, opts: ListJobsOptions): boolean {
  return (!opts.state || j.state === opts.state) && (!opts.nameContains || j.name.includes(opts.nameContains)) && (!opts.where || opts.where(j));
}

/**
 * A place in the listing order (jobs:all, newest first): a creation time and an id, which breaks
 * ties between jobs of the same millisecond (members of equal score come in reverse order).
 */
const cursorOf = (createdAt: number, id: string) => `${createdAt}.${id}`;
function parseCursor(c: string): { at: number; id: string } | undefined {
  const m = /^(\d{1,16})\.([a-z0-9][-a-z0-9]{0,62})$/.exec(c);
  return m ? { at: Number(m[1]), id: m[2] } : undefined;
}

/** Newest first: one page of the jobs that pass the filters, and where the next one starts. */
export async function listJobs(redis: Redis, ks: Keyspace, opts: ListJobsOptions = {}): Promise<JobPage> {
  const limit = opts.limit ?? 100;
  const from = opts.after === undefined ? undefined : parseCursor(opts.after);
  if (opts.after !== undefined && !from) throw new RangeError(`"${opts.after}" is not a cursor of this listing (the next of an earlier page)`);
  const beyond = (j: JobRecord) => !from || j.createdAt < from.at || (j.createdAt === from.at && j.id < from.id);
  if (opts.owner) {
    const ids = await redis.smembers(ks.ownerJobs(opts.owner.kind, opts.owner.name));
    const jobs = (await getJobs(redis, ks, ids)).filter((j) => wanted(j, opts) && beyond(j));
    jobs.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    const items = jobs.slice(0, limit);
    return { items, ...(jobs.length > limit ? { next: cursorOf(items[limit - 1].createdAt, items[limit - 1].id) } : {}) };
  }
  const items: JobRecord[] = [];
  const page = Math.max(limit, 200);
  const max = from ? String(from.at) : '+inf';
  for (let offset = 0; ; offset += page) {
    const ids = await redis.zrevrangebyscore(ks.jobsAll, max, '-inf', 'LIMIT', offset, page);
    for (const j of await getJobs(redis, ks, ids)) {
      if (!beyond(j) || !wanted(j, opts)) continue;
      if (items.length === limit) return { items, next: cursorOf(items[limit - 1].createdAt, items[limit - 1].id) };
      items.push(j);
    }
    if (ids.length < page) return { items };
  }
}

/**
 * Requeue the jobs an agent can no longer report on: at 'start', what its previous run was
 * running; at 'stop', everything on the node, which is marked down (releaseNodeJobs-1.lua).
 */
export async function releaseNodeJobs(redis: Redis, ks: Keyspace, node: string, reason: string, when: 'start' | 'stop', now = Date.now()): Promise<number> {
  return runScript<number>(redis, 'releaseNodeJobs', [ks.nodeLeases(node)], [ks.prefix, node, now, reason, when]);
}

/** Jobs Redis says are scheduled on or running on the node (for the agent's orphan cleanup). */
export async function jobsOnNode(redis: Redis, ks: Keyspace, node: string): Promise<string[]> {
  const [queued, running] = ((await redis.pipeline().zrange(ks.nodeQueue(node), '0', '-1').zrange(ks.nodeLeases(node), '0', '-1').exec()) ?? []).map(([err, ids]) => {
    if (err) throw err;
    return ids as string[];
  });
  return [...queued, ...running];
}

/**
 * What the queue records of a pending job's needs. The control plane hands these to the
 * scheduler as its SchedJob (src/scheduler), which has the same shape.
 */
export interface PendingJob {
  id: string;
  milliCpus: number;
  /** 0: no memory reservation. */
  memoryBytes: number;
  priority: number;
  nodeSelector: Record<string, string>;
  runtime?: string;
  /** Absent: a process node, or a docker node's default image. */
  image?: string;
  /** 'Job/<name>' for the records of a Job manifest (its parallelism applies). */
  group?: string;
  /** Where its input files' data is. */
  input?: InputLocality;
}

export interface NodeAllocation {
  milliCpus: number;
  memoryBytes: number;
  jobs: number;
}

export interface SchedulerSnapshot {
  nodes: (NodeRecord & { allocated: NodeAllocation })[];
  /** In queue order: highest priority, then oldest. */
  pending: PendingJob[];
  /** Parallelism of the Jobs with records in `pending`: limit (0 = none) and records placed now. */
  groups: Record<string, { limit: number; active: number }>;
}

/**
 * The ids at the head of the pending queue and, when there are any, nodes with what is
 * reserved on each: every node, or (`which` 'room') only those with a free CPU, in one round
 * trip (schedulerView-1.lua, read-only).
 */
export async function schedulerView(redis: Redis, ks: Keyspace, count: number, which: 'all' | 'room' = 'all'): Promise<{ nodes: SchedulerSnapshot['nodes']; ids: string[] }> {
  const [rawNodes, ids] = await runScript<[[string[], string[]][], string[]]>(redis, 'schedulerView', [ks.nodes], [ks.prefix, count, which]);
  const nodes = rawNodes.map(([flat, [mc, mem, jobs]]) => {
    const h: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) h[flat[i]] = flat[i + 1];
    return { ...decodeNode(h), allocated: { milliCpus: Number(mc), memoryBytes: Number(mem), jobs: Number(jobs) } };
  });
  nodes.sort((a, b) => a.name.localeCompare(b.name));
  return { nodes, ids };
}

/**
 * The requirements of these pending jobs (queue order kept) and the parallelism of the Jobs
 * they belong to. A pending job's requirements never change, so a caller that passes `known`
 * (id → PendingJob, kept between passes) only reads jobs it has not seen before.
 */
export async function pendingJobs(redis: Redis, ks: Keyspace, ids: string[], known?: Map<string, PendingJob>): Promise<{ pending: PendingJob[]; groups: SchedulerSnapshot['groups'] }> {
  const unknown = known ? ids.filter((id) => !known.has(id)) : ids;
  const fetched = new Map<string, PendingJob>();
  if (unknown.length) {
    const pipe = redis.pipeline();
    for (const id of unknown) pipe.hmget(ks.job(id), 'milliCpus', 'memoryBytes', 'priority', 'spec', 'ownerKind', 'ownerName', 'input');
    ((await pipe.exec()) ?? []).forEach(([, v], k) => {
      const [mc, mem, prio, spec, ownerKind, ownerName, input] = v as (string | null)[];
      if (!spec) return;
      const s = JSON.parse(spec) as JobSpec;
      const job: PendingJob = {
        id: unknown[k], milliCpus: Number(mc), memoryBytes: Number(mem), priority: Number(prio),
        nodeSelector: s.nodeSelector, ...(s.runtime ? { runtime: s.runtime } : {}), ...(s.image ? { image: s.image } : {}),
        ...(ownerKind === 'Job' ? { group: `Job/${ownerName}` } : {}),
        ...(input ? { input: JSON.parse(input) as InputLocality } : {}),
      };
      fetched.set(job.id, job);
      known?.set(job.id, job);
    });
  }
  const pending = ids.map((id) => known?.get(id) ?? fetched.get(id)).filter((j): j is PendingJob => !!j);
  const groupNames = [...new Set(pending.map((j) => j.group).filter((g): g is string => !!g))];
  const groups: SchedulerSnapshot['groups'] = {};
  if (groupNames.length) {
    const gp = redis.pipeline();
    for (const g of groupNames) gp.hmget(ks.owner('Job', g.slice(4)), 'parallelism', 'active');
    ((await gp.exec()) ?? []).forEach(([, v], i) => {
      const [limit, active] = v as (string | null)[];
      groups[groupNames[i]] = { limit: Number(limit ?? 0), active: Number(active ?? 0) };
    });
  }
  return { pending, groups };
}

/** Ids `offset .. offset+count-1` of the pending queue. */
export async function pendingIds(redis: Redis, ks: Keyspace, offset: number, count: number): Promise<string[]> {
  return redis.zrange(ks.jobsPending, String(offset), String(offset + count - 1));
}

/** Nudge the scheduling loop (BLPOP on wake:scheduler). */
export async function wakeScheduler(redis: Redis, ks: Keyspace): Promise<void> {
  await redis.pipeline().lpush(ks.schedulerWake, '1').ltrim(ks.schedulerWake, 0, 0).exec();
}
