import type { RuntimeName } from '../api/jobs.js';

export type JobState = 'pending' | 'scheduled' | 'running' | 'succeeded' | 'failed' | 'cancelled';
/** Here (not in jobs.ts) so the CLI can tell them without loading the job scripts and schemas. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

export type NodeStatus = 'ready' | 'down' | 'draining';

/** What the cluster knows of one node; stored as the hash node:<name>. */
export interface NodeRecord {
  name: string;
  /** Host or IP the node's agent is reached at by peers. */
  address: string;
  /** Base URL of the agent's HTTP server (chunks, metrics), e.g. http://10.0.0.2:7001 */
  agentUrl: string;
  labels: Record<string, string>;
  runtime: RuntimeName;
  /** Capacity, read from the OS by the agent (or capped by the Node manifest). */
  cpus: number;
  memoryBytes: number;
  status: NodeStatus;
  /** ms since the epoch of the last heartbeat. */
  lastHeartbeat: number;
  registeredAt: number;
  /** Incremented by every agent start, so the cluster can tell a restarted agent from a late one. */
  agentEpoch: number;
  /** Current use as the agent measured it. */
  load1: number;
  memoryUsedBytes: number;
  runningJobs: number;
  /**
   * CPUs its running jobs used over the last few seconds, read from their cgroups, processes or
   * containers (src/agent/cpu-meter.ts). Absent from agents that do not measure it.
   */
  usedCpus?: number;
  /**
   * The part of usedCpus that jobs burn beyond their own reservations, job by job: where the
   * runtime does not enforce a reservation, a job that reserved 0.1 CPU may burn a whole one.
   */
  burstCpus?: number;
  /**
   * The kernel the node runs on (its boot id). Nodes that share one share its CPUs and its load
   * average: agents in containers of one host, every node of `oswalk up`.
   */
  hostId?: string;
  exportDir: string;
  mountPath: string;
  /** Filesystem side, from the heartbeat: files waiting for the translate daemon, the chunk store. */
  translateBacklog?: number;
  /** Regular files the node's export directory contributes to the unified filesystem. */
  exportFiles?: number;
  /** Export directory entries left out: names that are not UTF-8 (the translator logs each). */
  exportSkipped?: number;
  storeChunks?: number;
  storeBytes?: number;
  /** Bytes free on the disk of the node's chunk store: copies go to nodes with room. */
  storeFreeBytes?: number;
  cacheBytes?: number;
  /** The mount's file cache (whole files kept for passthrough opens). */
  fileCacheBytes?: number;
  /**
   * Whether the node's mount of the unified filesystem is up (absent: the agent mounts none).
   * A node whose mount is down gets no jobs, and mountError says why.
   */
  mountReady?: boolean;
  mountError?: string;
  /**
   * Being removed (`oswalk node remove`): it takes no jobs and no new copies, its copies do not
   * count, and replication moves what only it holds to other nodes; it still serves reads.
   */
  removing?: boolean;
  /** ms (Redis' clock) when its removal began. */
  removingSince?: number;
}

/** Fields of a NodeRecord kept as JSON in the hash rather than as plain strings. */
const JSON_FIELDS = new Set(['labels', 'agentLabels']);
const NUMBER_FIELDS = new Set([
  'cpus', 'memoryBytes', 'lastHeartbeat', 'registeredAt', 'agentEpoch', 'load1', 'memoryUsedBytes', 'runningJobs', 'usedCpus', 'burstCpus',
  'translateBacklog', 'exportFiles', 'exportSkipped', 'storeChunks', 'storeBytes', 'storeFreeBytes', 'removingSince', 'cacheBytes', 'fileCacheBytes', 'agentCpus', 'agentMemoryBytes',
]);
const BOOLEAN_FIELDS = new Set(['mountReady', 'removing']);
/** Fields a heartbeat clears by sending '' (a hash field stays until written again). */
const EMPTY_IS_ABSENT = new Set(['mountError']);

export function encodeNode(n: Partial<NodeRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(n)) {
    if (v === undefined) continue;
    out[k] = JSON_FIELDS.has(k) ? JSON.stringify(v) : String(v);
  }
  return out;
}

export function decodeNode(h: Record<string, string>): NodeRecord {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) {
    if (EMPTY_IS_ABSENT.has(k) && v === '') continue;
    out[k] = JSON_FIELDS.has(k) ? JSON.parse(v) : NUMBER_FIELDS.has(k) ? Number(v) : BOOLEAN_FIELDS.has(k) ? v === 'true' : v;
  }
  const n = out as unknown as NodeRecord;
  n.labels ??= {};
  return n;
}
