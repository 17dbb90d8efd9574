/**
 * Manifests as the rest of OS Walk sees them: defaults filled in, quantities in plain
 * numbers (cores, bytes), rules checked that the JSON schemas cannot express.
 *
 * Shape (what `parseManifests` returns):
 * - `metadata`: `{ name, labels }` (labels `{}` when absent).
 * - Job and Service `spec.resources`: `{ cpus, memoryBytes }`, always present; either
 *   missing falls back to the job spec's defaults (JOB_DEFAULTS, src/api/jobs.ts), as do
 *   `backoffLimit`, `priority` and `privileged`. `resources.memory` as written becomes
 *   `memoryBytes`.
 * - Job and Service: `command`, `args` `[]`, `env`, `nodeSelector` `{}`, `runtime` 'docker'
 *   with an image, else absent (any node: a process node, or a docker node's default image).
 *   Job: `parallelism` and `completions` 1. Service: `replicas` 1, `restartPolicy` 'Always'.
 * What each of their jobs runs, the job spec, is jobSpecOfManifest's.
 * - Node `spec`: `name` (= metadata.name), `labels` `{}`, `capacity: { cpus?, memoryBytes? }`
 *   where a missing value means "what the agent measures".
 * - Mount `spec`: `conflictPolicy` 'newest-wins', `copies` 2, `replication` `[]`,
 *   `rereplicateAfterSeconds` 600, `rereplicateBytesPerSecond` (64 MiB; 0: no limit), `cacheSizeBytes` (1 GiB),
 *   `fileCacheSizeBytes` (4 GiB).
 * Environment is a mapping NAME: value, not Kubernetes' list of {name, value}.
 */
import { posix } from 'node:path';
import { FieldProblem, type FieldPath } from './errors.js';
import { isLabelKey, isLabelValue } from './labels.js';
import { QuantityError, parseCpus, parseMemory, show } from './quantity.js';
import type {
  API_VERSION, JobManifestSpecInput, ManifestInput, MountSpecInput, NodeSpecInput, ResourcesInput, ServiceManifestSpecInput,
} from './schema.js';
import { ENV_NAME, JOB_DEFAULTS, runtimeProblem, type JobSpec, type RuntimeName } from '../api/jobs.js';
import { NODE_NAME_LABEL } from '../api/nodes.js';

export interface Resources {
  /** Cores, > 0 (0.5 = half a core). */
  cpus: number;
  memoryBytes: number;
}

export const DEFAULT_CACHE_SIZE = '1Gi';
export const DEFAULT_FILE_CACHE_SIZE = '4Gi';
/** Copies of every file no replication rule covers: one node may be lost without losing a file. */
export const DEFAULT_COPIES = 2;
/** How long a node may be down before the copies it held are made again elsewhere (Ceph's mon_osd_down_out_interval). */
export const DEFAULT_REREPLICATE_AFTER_SECONDS = 600;
/** What one node's re-replication may pull per second, so that it does not starve jobs. */
export const DEFAULT_REREPLICATE_RATE = '64Mi';

export interface Metadata {
  name: string;
  labels: Record<string, string>;
}

interface WorkloadSpec {
  image?: string;
  /** Empty with an image: the image's own entrypoint runs. */
  command: string[];
  args: string[];
  env: Record<string, string>;
  workingDir?: string;
  resources: Resources;
  backoffLimit: number;
  priority: number;
  nodeSelector: Record<string, string>;
  runtime?: RuntimeName;
  privileged: boolean;
}

export interface JobManifestSpec extends WorkloadSpec {
  parallelism: number;
  completions: number;
  activeDeadlineSeconds?: number;
}

export interface ServiceManifestSpec extends WorkloadSpec {
  replicas: number;
  restartPolicy: 'Always' | 'OnFailure';
}

export interface NodeSpec {
  name: string;
  address?: string;
  labels: Record<string, string>;
  /** Caps on what the agent measures; a missing field means "all of it". */
  capacity: { cpus?: number; memoryBytes?: number };
  exportDir?: string;
}

export interface ReplicationRule {
  /** Relative to the unified root, e.g. "shared/". "" matches everything. */
  prefix: string;
  copies: number | 'all';
}

export interface MountSpec {
  path: string;
  conflictPolicy: 'newest-wins';
  /** Copies of a file no replication rule covers. */
  copies: number | 'all';
  /** Per prefix; the longest prefix that covers a file decides its copies. */
  replication: ReplicationRule[];
  rereplicateAfterSeconds: number;
  rereplicateBytesPerSecond: number;
  cacheSizeBytes: number;
  /** Whole files read end to end kept for passthrough opens (src/overlay/file-cache.ts); 0: none. */
  fileCacheSizeBytes: number;
}

interface Doc<K extends string, S> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: Metadata;
  spec: S;
}
export type JobManifest = Doc<'Job', JobManifestSpec>;
export type ServiceManifest = Doc<'Service', ServiceManifestSpec>;
export type NodeManifest = Doc<'Node', NodeSpec>;
export type MountManifest = Doc<'Mount', MountSpec>;
export type Manifest = JobManifest | ServiceManifest | NodeManifest | MountManifest;

/**
 * Fills defaults and converts units of a manifest that passed its schema. Throws
 * FieldProblem (with the path of the field at fault) for rules beyond the schema.
 */
export function normalize(m: ManifestInput): Manifest {
  const metadata: Metadata = { name: m.metadata.name, labels: labels(m.metadata.labels, ['metadata', 'labels']) };
  const apiVersion = m.apiVersion;
  switch (m.kind) {
    case 'Job': {
      const s: JobManifestSpecInput = m.spec;
      const spec: JobManifestSpec = {
        ...workload(s),
        parallelism: s.parallelism ?? 1,
        completions: s.completions ?? 1,
      };
      if (s.activeDeadlineSeconds !== undefined) spec.activeDeadlineSeconds = s.activeDeadlineSeconds;
      return { apiVersion, kind: 'Job', metadata, spec };
    }
    case 'Service': {
      const s: ServiceManifestSpecInput = m.spec;
      return {
        apiVersion, kind: 'Service', metadata,
        spec: { ...workload(s), replicas: s.replicas ?? 1, restartPolicy: s.restartPolicy ?? 'Always' },
      };
    }
    case 'Node':
      return { apiVersion, kind: 'Node', metadata, spec: node(m.spec, metadata.name) };
    case 'Mount':
      return { apiVersion, kind: 'Mount', metadata, spec: mount(m.spec) };
  }
}

/**
 * The spec of every job a Job or Service manifest (normalized, as stored) makes. Its fields and
 * their order are part of the spec's hash (reconcileOwner): a change would replace every
 * running replica of every Service once.
 */
export function jobSpecOfManifest(m: JobManifest | ServiceManifest): JobSpec {
  const s = m.spec;
  return {
    ...(s.image ? { image: s.image } : {}),
    command: s.command,
    args: s.args,
    env: s.env,
    ...(s.workingDir ? { workingDir: s.workingDir } : {}),
    cpus: s.resources.cpus,
    memoryBytes: s.resources.memoryBytes,
    ...(s.runtime ? { runtime: s.runtime } : {}),
    nodeSelector: s.nodeSelector,
    privileged: s.privileged,
    priority: s.priority,
    ...(m.kind === 'Job' && m.spec.activeDeadlineSeconds ? { activeDeadlineSeconds: m.spec.activeDeadlineSeconds } : {}),
    backoffLimit: s.backoffLimit,
    restartPolicy: m.kind === 'Service' ? m.spec.restartPolicy : JOB_DEFAULTS.restartPolicy,
  };
}

function workload(s: JobManifestSpecInput | ServiceManifestSpecInput): WorkloadSpec {
  const at = (...p: Array<string | number>): FieldPath => ['spec', ...p];
  if (!s.image && !s.command?.length) {
    throw new FieldProblem(at('command'), 'needs a command or an image: add command: ["program", "arg"] or image: NAME', at());
  }
  const runtime = s.runtime ?? (s.image ? 'docker' : undefined);
  const problem = runtimeProblem(s);
  if (problem) throw new FieldProblem(at(problem.field), problem.reason);
  if (s.workingDir !== undefined) absolutePath(s.workingDir, at('workingDir'));
  const env = s.env ?? {};
  for (const name of Object.keys(env)) {
    if (!ENV_NAME.test(name)) {
      throw new FieldProblem(at('env', name), `${show(name)} is not a valid environment variable name: use letters, digits and "_", not starting with a digit`);
    }
  }
  const out: WorkloadSpec = {
    command: [...(s.command ?? [])],
    args: [...(s.args ?? [])],
    env: { ...env },
    resources: resources(s.resources, at('resources')),
    backoffLimit: s.backoffLimit ?? JOB_DEFAULTS.backoffLimit,
    priority: s.priority ?? JOB_DEFAULTS.priority,
    nodeSelector: labels(s.nodeSelector, at('nodeSelector')),
    privileged: s.privileged ?? JOB_DEFAULTS.privileged,
  };
  if (runtime) out.runtime = runtime;
  if (s.image !== undefined) out.image = s.image;
  if (s.workingDir !== undefined) out.workingDir = s.workingDir;
  return out;
}

function resources(r: ResourcesInput | undefined, path: FieldPath): Resources {
  return {
    cpus: r?.cpus === undefined ? JOB_DEFAULTS.cpus : quantity(parseCpus, r.cpus, [...path, 'cpus']),
    memoryBytes: r?.memory === undefined ? JOB_DEFAULTS.memoryBytes : quantity(parseMemory, r.memory, [...path, 'memory']),
  };
}

function node(s: NodeSpecInput, name: string): NodeSpec {
  if (s.name !== undefined && s.name !== name) {
    throw new FieldProblem(['spec', 'name'], `must match metadata.name ${show(name)} (got ${show(s.name)}); remove it or make the two equal`);
  }
  const capacity: NodeSpec['capacity'] = {};
  if (s.capacity?.cpus !== undefined) capacity.cpus = quantity(parseCpus, s.capacity.cpus, ['spec', 'capacity', 'cpus']);
  if (s.capacity?.memory !== undefined) capacity.memoryBytes = quantity(parseMemory, s.capacity.memory, ['spec', 'capacity', 'memory']);
  // The node's own name label is the cluster's: set here it would be silently ignored.
  if (s.labels && Object.hasOwn(s.labels, NODE_NAME_LABEL)) {
    throw new FieldProblem(['spec', 'labels', NODE_NAME_LABEL], `is set by the cluster to the node's name (${show(name)}); remove it`);
  }
  const out: NodeSpec = { name, labels: labels(s.labels, ['spec', 'labels']), capacity };
  if (s.address !== undefined) out.address = s.address;
  if (s.exportDir !== undefined) out.exportDir = absolutePath(s.exportDir, ['spec', 'exportDir']);
  return out;
}

function mount(s: MountSpecInput): MountSpec {
  const path = absolutePath(s.path, ['spec', 'path']);
  if (path === '/') throw new FieldProblem(['spec', 'path'], 'cannot be "/"; mount the cluster filesystem on a directory of its own, such as /cluster');
  const seen = new Map<string, number>();
  const replication = (s.replication ?? []).map((rule, i): ReplicationRule => {
    const at: FieldPath = ['spec', 'replication', i, 'prefix'];
    const p = rule.prefix;
    if (p.startsWith('/') || p.split('/').some((seg, j, all) => seg === '.' || seg === '..' || (seg === '' && j < all.length - 1))) {
      throw new FieldProblem(at, `must be a path relative to the root of the mount, such as "shared/", without "." or ".." parts (got ${show(p)})`);
    }
    const first = seen.get(p);
    if (first !== undefined) throw new FieldProblem(at, `repeats the prefix of spec.replication[${first}]; merge the two rules`);
    seen.set(p, i);
    return { prefix: p, copies: rule.copies };
  });
  return {
    path,
    conflictPolicy: s.conflictPolicy ?? 'newest-wins',
    copies: s.copies ?? DEFAULT_COPIES,
    replication,
    rereplicateAfterSeconds: s.rereplicateAfterSeconds ?? DEFAULT_REREPLICATE_AFTER_SECONDS,
    rereplicateBytesPerSecond: isZero(s.rereplicateRate) ? 0 : quantity(parseMemory, s.rereplicateRate ?? DEFAULT_REREPLICATE_RATE, ['spec', 'rereplicateRate']),
    cacheSizeBytes: quantity(parseMemory, s.cacheSize ?? DEFAULT_CACHE_SIZE, ['spec', 'cacheSize']),
    fileCacheSizeBytes: isZero(s.fileCacheSize) ? 0 : quantity(parseMemory, s.fileCacheSize ?? DEFAULT_FILE_CACHE_SIZE, ['spec', 'fileCacheSize']),
  };
}

/** 0 where a size may turn a feature off. */
function isZero(x: unknown): boolean {
  return x === 0 || x === '0';
}

function quantity(parse: (x: unknown) => number, value: unknown, path: FieldPath): number {
  try {
    return parse(value);
  } catch (e) {
    if (e instanceof QuantityError) throw new FieldProblem(path, e.message);
    throw e;
  }
}

/** Absolute, without "." or ".." parts; returned without a trailing slash. */
function absolutePath(p: string, path: FieldPath): string {
  if (!p.startsWith('/') || p.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw new FieldProblem(path, `must be an absolute path without "." or ".." parts, such as /srv/oswalk (got ${show(p)})`);
  }
  return posix.normalize(p).replace(/(.)\/$/, '$1');
}

/** Kubernetes label syntax: keys `[prefix/]name`, values at most 63 characters. */
function labels(map: Record<string, string> | undefined, path: FieldPath): Record<string, string> {
  if (!map) return {};
  for (const [key, value] of Object.entries(map)) {
    if (!isLabelKey(key)) {
      throw new FieldProblem([...path, key], `${show(key)} is not a valid label key: use an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_" or ".", such as oswalk.dev/node or zone`);
    }
    if (!isLabelValue(value)) {
      throw new FieldProblem([...path, key], `${show(value)} is not a valid label value: use at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`);
    }
  }
  return { ...map };
}
