/**
 * The job spec: what a job runs and what it needs. One canonical form, JobSpec, which a job
 * record stores and the agent runs, and one table of its defaults, JOB_DEFAULTS. Two ways in
 * fill it: a request (POST /v1/jobs, `oswalk run`), checked and filled by normalizeJobSpec
 * here, and a Job or Service manifest, which src/manifest maps onto it (jobSpecOfManifest).
 * Then a job as the API shows it (JobView, OwnerStatus); its states are in job-states.ts.
 */
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { LIMITS } from '../util/limits.js';
import { JOB_STATES, type JobState } from './job-states.js';
import { ListOf } from './lists.js';
import { NameSchema } from './objects.js';

export type RuntimeName = 'docker' | 'process';

/** An environment variable's name, in requests and manifests alike. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const EnvName = Type.String({ pattern: ENV_NAME.source, maxLength: 256 });
const LabelMap = Type.Record(Type.String({ minLength: 1, maxLength: 253 }), Type.String({ maxLength: 253 }));

/** A terminal's size in character cells (a tty job's, at its start and on every resize). */
export const WindowSizeSchema = Type.Object({
  rows: Type.Integer({ minimum: 1, maximum: 10000 }),
  cols: Type.Integer({ minimum: 1, maximum: 10000 }),
}, { additionalProperties: false });
export type WindowSize = Static<typeof WindowSizeSchema>;

/** A job spec as a request gives it (POST /v1/jobs): JobSpec with every default left out. */
export const JobSpecRequestSchema = Type.Object({
  image: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  command: Type.Optional(Type.Array(Type.String({ maxLength: LIMITS.argLength }), { maxItems: LIMITS.argItems })),
  args: Type.Optional(Type.Array(Type.String({ maxLength: LIMITS.argLength }), { maxItems: LIMITS.argItems })),
  env: Type.Optional(Type.Record(EnvName, Type.String({ maxLength: LIMITS.argLength }))),
  workingDir: Type.Optional(Type.String({ maxLength: 4096 })),
  cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100000 })),
  memoryBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  runtime: Type.Optional(Type.Union([Type.Literal('docker'), Type.Literal('process')])),
  nodeSelector: Type.Optional(LabelMap),
  privileged: Type.Optional(Type.Boolean()),
  priority: Type.Optional(Type.Integer({ minimum: -1000, maximum: 1000 })),
  activeDeadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.deadlineSeconds })),
  backoffLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  restartPolicy: Type.Optional(Type.Union([Type.Literal('Never'), Type.Literal('OnFailure'), Type.Literal('Always')])),
  /** The job reads standard input sent to it (POST /v1/jobs/:id/stdin, `oswalk run -i`); otherwise it reads EOF. */
  stdin: Type.Optional(Type.Boolean()),
  /**
   * A pseudo-terminal for the job, of this size at its start (`oswalk run -t`); later sizes
   * come through POST /v1/jobs/:id/resize. Its output is the terminal's, all on stdout.
   */
  tty: Type.Optional(WindowSizeSchema),
  /**
   * A session (`oswalk run -i`, `-t`): the SHA-256 (hex) of a secret its client holds, with which
   * that client attaches to the job's node directly (src/api/attach.ts). Its input then goes to
   * that attempt alone, so the job is never started again, as an ssh session is not.
   */
  attachKey: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  /**
   * Files of the unified filesystem the job reads (paths from its root, as `/data/in.csv`):
   * the scheduler prefers a node that holds their data when loads are close (`oswalk run` and
   * `oswalk shell` name the arguments that are files in the mount).
   */
  inputs: Type.Optional(Type.Array(Type.String({ minLength: 2, maxLength: 4096, pattern: '^/' }), { maxItems: LIMITS.jobInputs })),
}, { additionalProperties: false });
export type JobSpecRequest = Static<typeof JobSpecRequestSchema>;

export interface JobSpec {
  image?: string;
  /** Empty with an image: the image's own entrypoint runs. */
  command: string[];
  args: string[];
  env: Record<string, string>;
  workingDir?: string;
  /** Cores, > 0 (0.5 = half a core). */
  cpus: number;
  /** 0: no reservation and no limit. */
  memoryBytes: number;
  runtime?: RuntimeName;
  nodeSelector: Record<string, string>;
  privileged: boolean;
  priority: number;
  activeDeadlineSeconds?: number;
  /** Failed attempts retried before the job counts as failed (Kubernetes' meaning). */
  backoffLimit: number;
  /** Always: a service replica, restarted whatever its exit. Never/OnFailure: retried up to backoffLimit. */
  restartPolicy: 'Never' | 'OnFailure' | 'Always';
  /** Present only when set, so that the specs of jobs without it stay as they were. */
  stdin?: true;
  /** A terminal session: never started again elsewhere when its node is lost (see loseJob in include/jobs.lua). */
  tty?: WindowSize;
  /** A session's key (JobSpecRequestSchema): never started again once its attempt is lost. */
  attachKey?: string;
  /** Files of the unified filesystem it reads: where their data is counts in placing it (JobSpecRequestSchema). */
  inputs?: string[];
}

/**
 * What a job spec holds where a request or a manifest does not say, as Kubernetes has it: one
 * core, no memory reserved or limited (a container without resources), and a failed job
 * retried 6 times (a Job's backoffLimit). `oswalk run` and `oswalk shell` say backoffLimit 0
 * themselves: a command run once, as `docker run` and `kubectl run` run it.
 */
export const JOB_DEFAULTS = {
  cpus: 1,
  memoryBytes: 0,
  priority: 0,
  backoffLimit: 6,
  privileged: false,
  restartPolicy: 'Never',
} as const satisfies Partial<JobSpec>;

/**
 * What a workload's runtime cannot take, which would otherwise be accepted and ignored (or fail
 * only when the job starts): the field at fault and why. `runtime` defaults to docker with an
 * image, else to none: any node, a docker one running it in its default image. Requests
 * (normalizeJobSpec) and manifests (src/manifest) share it.
 */
export function runtimeProblem(s: { runtime?: RuntimeName; image?: string; privileged?: boolean }): { field: 'image' | 'privileged'; reason: string } | undefined {
  const runtime = s.runtime ?? (s.image ? 'docker' : undefined);
  if (runtime === 'process' && s.image) {
    return { field: 'image', reason: 'a runtime "process" workload runs on the host and takes no image; remove spec.image or use runtime: docker' };
  }
  if (runtime !== 'docker' && s.privileged) {
    return {
      field: 'privileged',
      reason: 'privileged means FUSE in a container, which only the docker runtime runs (a process workload runs on the host as the agent); use runtime: docker or an image, or remove spec.privileged',
    };
  }
  return undefined;
}

/** Validate a request's spec and fill defaults; `where` names the source in errors (a file, "request body"). */
export function normalizeJobSpec(input: unknown, where = 'job spec'): JobSpec {
  if (!Value.Check(JobSpecRequestSchema, input)) {
    const first = [...Value.Errors(JobSpecRequestSchema, input)][0];
    const path = first ? (first as { instancePath?: string }).instancePath || '/' : '/';
    throw new Error(`${where}: invalid field ${path}: ${first?.message ?? 'invalid'}`);
  }
  const s = input as JobSpecRequest;
  const command = s.command ?? [];
  if (!command.length && !s.image) throw new Error(`${where}: a job needs a command (or an image whose entrypoint runs)`);
  checkStrings(s, where);
  // What the runtime would ignore (an image or privileged on the host) is refused, as in manifests.
  const problem = runtimeProblem(s);
  if (problem) throw new Error(`${where}: ${problem.field}: ${problem.reason}`);
  // An image means docker, as in manifests and `oswalk run`: a node of the process runtime would run the command without it.
  const runtime = s.runtime ?? (s.image ? 'docker' : undefined);
  return {
    ...(s.image ? { image: s.image } : {}),
    command,
    args: s.args ?? [],
    env: s.env ?? {},
    ...(s.workingDir ? { workingDir: s.workingDir } : {}),
    cpus: s.cpus ?? JOB_DEFAULTS.cpus,
    memoryBytes: s.memoryBytes ?? JOB_DEFAULTS.memoryBytes,
    ...(runtime ? { runtime } : {}),
    nodeSelector: s.nodeSelector ?? {},
    privileged: s.privileged ?? JOB_DEFAULTS.privileged,
    priority: s.priority ?? JOB_DEFAULTS.priority,
    ...(s.activeDeadlineSeconds ? { activeDeadlineSeconds: s.activeDeadlineSeconds } : {}),
    backoffLimit: s.backoffLimit ?? JOB_DEFAULTS.backoffLimit,
    restartPolicy: s.restartPolicy ?? JOB_DEFAULTS.restartPolicy,
    ...(s.stdin ? { stdin: true as const } : {}),
    ...(s.tty ? { tty: { rows: s.tty.rows, cols: s.tty.cols } } : {}),
    ...(s.attachKey ? { attachKey: s.attachKey } : {}),
    ...(s.inputs?.length ? { inputs: s.inputs } : {}),
  };
}

/**
 * What a JSON schema does not say well: env names (a pattern on a record's keys does not
 * refuse other keys), NUL bytes (no process takes them, no label holds them), and a relative
 * working directory, which is under the cluster mount and must stay there.
 */
function checkStrings(s: JobSpecRequest, where: string): void {
  for (const [name, value] of Object.entries(s.env ?? {})) {
    if (!ENV_NAME.test(name) || name.length > 256) {
      throw new Error(`${where}: env name ${JSON.stringify(name.slice(0, 100))} is not a valid environment variable name: use letters, digits and "_", not starting with a digit`);
    }
    if (value.includes('\0')) throw new Error(`${where}: env ${name} holds a NUL byte`);
  }
  for (const [key, value] of Object.entries(s.nodeSelector ?? {})) {
    if (key.includes('\0') || value.includes('\0')) throw new Error(`${where}: nodeSelector[${JSON.stringify(key)}] holds a NUL byte: no node's label can match it`);
  }
  for (const field of ['command', 'args'] as const) {
    const i = (s[field] ?? []).findIndex((a) => a.includes('\0'));
    if (i >= 0) throw new Error(`${where}: ${field}[${i}] holds a NUL byte`);
  }
  const i = (s.inputs ?? []).findIndex((p) => p.includes('\0') || p.split('/').includes('..'));
  if (i >= 0) throw new Error(`${where}: inputs[${i}] must be a path from the cluster filesystem's root without ".." parts or NUL bytes`);
  const dir = s.workingDir;
  if (dir !== undefined && (dir.includes('\0') || (!dir.startsWith('/') && dir.split('/').includes('..')))) {
    throw new Error(`${where}: workingDir ${JSON.stringify(dir.slice(0, 200))} must be an absolute path, or a path under the cluster mount without ".." parts`);
  }
}

// (A union built from a list: TypeBox types it only when told what it holds.)
export const JobStateSchema = Type.Unsafe<JobState>(Type.Union(JOB_STATES.map((s) => Type.Literal(s))));

/** The Job or Service manifest a job runs for: one of its completions or replicas. */
const JobOwnerSchema = Type.Object({ kind: Type.Union([Type.Literal('Job'), Type.Literal('Service')]), name: Type.String() });
export type JobOwner = Static<typeof JobOwnerSchema>;

/** A job as GET /v1/jobs and /v1/jobs/:id show it: its record (src/state/jobs.ts) less its lease. */
export const JobViewSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  owner: Type.Optional(JobOwnerSchema),
  /** Completion index (Job) or replica index (Service). */
  index: Type.Optional(Type.Number()),
  // Passed through as stored: normalizeJobSpec checked it on its way in.
  spec: Type.Unsafe<JobSpec>(Type.Object({}, { additionalProperties: true })),
  state: JobStateSchema,
  /** Why a pending job is not running yet (scheduler's reason, backoff, requeue). */
  waitReason: Type.String(),
  node: Type.Optional(Type.String()),
  lastNode: Type.Optional(Type.String()),
  /** How many times the job was started (claimed). */
  attempt: Type.Number(),
  failures: Type.Number(),
  exitCode: Type.Optional(Type.Number()),
  /** The signal that killed the last attempt's program, when one did. */
  signal: Type.Optional(Type.String()),
  message: Type.String(),
  cancelRequested: Type.Boolean(),
  createdAt: Type.Number(),
  scheduledAt: Type.Optional(Type.Number()),
  startedAt: Type.Optional(Type.Number()),
  finishedAt: Type.Optional(Type.Number()),
  logBytes: Type.Number(),
  logDropped: Type.Number(),
});
export type JobView = Static<typeof JobViewSchema>;

/** GET /v1/jobs: a page of jobs, newest first, and `next`, the cursor (`?after=`) of the page after when there may be one. */
export const JobListSchema = ListOf(JobViewSchema, { next: Type.Optional(Type.String()) });
export type JobList = Static<typeof JobListSchema>;

/** POST /v1/jobs: a job to run, and its name (none: `run-<id>`). */
export const SubmitRequestSchema = Type.Object({
  /** A job's name follows the rule of a manifest's metadata.name (`../x` or a bidi override is no name). */
  name: Type.Optional(NameSchema),
  spec: JobSpecRequestSchema,
}, { additionalProperties: false });
export type SubmitRequest = Static<typeof SubmitRequestSchema>;

/** POST /v1/jobs: the new job's id, and its name (`run-<id>` when the request gave none). */
export const SubmitAnswerSchema = Type.Object({ id: Type.String(), name: Type.String() });
export type SubmitAnswer = Static<typeof SubmitAnswerSchema>;

/**
 * POST /v1/jobs/:id/stdin's answer. `appended: false`: the job is too far behind what it was
 * sent (its input is past what is kept for a new start, and flows as through a pipe); nothing was
 * taken, send the same piece again.
 */
export const StdinAnswerSchema = Type.Object({ appended: Type.Boolean() });
export type StdinAnswer = Static<typeof StdinAnswerSchema>;

/**
 * GET /v1/jobs/:id/attach, for a session (src/api/attach.ts; it waits while the job waits for a
 * node): where its attempt runs, or its state once it ended without running (a client then reads
 * its end from the log).
 */
export const AttachPointSchema = Type.Object({
  state: Type.String(),
  attempt: Type.Number(),
  node: Type.Optional(Type.String()),
  /** The node's agent, as peers reach it (https with a node certificate). */
  agentUrl: Type.Optional(Type.String()),
  /** The agent's Unix socket, for a client on the same kernel (hostId: the node's boot id). */
  socket: Type.Optional(Type.String()),
  hostId: Type.Optional(Type.String()),
});
export type AttachPoint = Static<typeof AttachPointSchema>;

/** POST /v1/jobs/:id/cancel: its state now, or `cancelling` while its agent stops it. */
export const CancelAnswerSchema = Type.Object({ id: Type.String(), state: Type.String() });
export type CancelAnswer = Static<typeof CancelAnswerSchema>;

/** GET /v1/owners/:kind/:name: how a Job's completions or a Service's replicas stand. */
export const OwnerStatusSchema = Type.Object({
  kind: Type.String(),
  name: Type.String(),
  phase: Type.String(),
  completions: Type.Optional(Type.Number()),
  replicas: Type.Optional(Type.Number()),
  succeeded: Type.Number(),
  failed: Type.Number(),
  cancelled: Type.Number(),
});
export type OwnerStatus = Static<typeof OwnerStatusSchema>;

export function milliCpus(cpus: number): number {
  return Math.max(1, Math.round(cpus * 1000));
}
