import type { Redis } from 'ioredis';
import type { Keyspace } from './keys.js';
import { runScript, ScriptError } from './scripts.js';
import type { NodeLoadSample, NodeRecord, NodeStatus } from '../api/nodes.js';
import { decodeNode, encodeNode } from './types.js';

function pairs(fields: Record<string, string>): string[] {
  return Object.entries(fields).flat();
}

export type NodeRegistration = Omit<NodeRecord, 'status' | 'lastHeartbeat' | 'registeredAt' | 'agentEpoch'>;

/** Register (or re-register) a node; returns the agent epoch to put on heartbeats. */
export async function registerNode(redis: Redis, ks: Keyspace, rec: NodeRegistration, now?: number): Promise<number> {
  // What the agent offers is kept apart (agent*), so that a Node manifest applied later can
  // add labels and cap capacity on top of it (include/nodes.lua).
  const { labels, cpus, memoryBytes, ...rest } = rec;
  return runScript<number>(redis, 'registerNode', [ks.nodes, ks.node(rec.name), ks.heartbeats, ks.objects('Node')], [
    ks.prefix, rec.name, now ?? '', ...pairs(encodeNode(rest)),
    'agentLabels', JSON.stringify(labels), 'agentCpus', String(cpus), 'agentMemoryBytes', String(memoryBytes),
  ]);
}

/** Node manifests changed: every registered node's labels and capacity are recomputed. */
export async function applyNodeManifests(redis: Redis, ks: Keyspace): Promise<number> {
  return runScript<number>(redis, 'applyNodeManifests', [ks.nodes, ks.objects('Node')], [ks.prefix]);
}

export type NodeLoad = Pick<NodeRecord, 'load1' | 'memoryUsedBytes' | 'runningJobs'> &
  Partial<Pick<NodeRecord, 'usedCpus' | 'burstCpus' | 'translateBacklog' | 'exportFiles' | 'exportSkipped' | 'storeChunks' | 'storeBytes' | 'storeFreeBytes' | 'cacheBytes' | 'fileCacheBytes' | 'mountReady' | 'mountError'>>;

/**
 * Record a heartbeat. The answer is the node timeout in force, which the agent fences its jobs
 * by (src/agent/fence.ts); undefined means the node was marked down or re-registered elsewhere.
 */
export async function heartbeat(redis: Redis, ks: Keyspace, name: string, epoch: number, load: NodeLoad, now?: number): Promise<number | undefined> {
  try {
    return await runScript<number>(redis, 'heartbeat', [ks.node(name), ks.heartbeats, ks.cluster, ks.nodeHistory(name)], [
      ks.prefix, name, now ?? '', epoch, ...pairs(encodeNode(load)),
    ]);
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'STALE_EPOCH') return undefined;
    throw err;
  }
}

/**
 * The cluster's id: `candidate` if none is set yet (the first agent or control plane to ask
 * sets it). Everything an agent makes on a host (cgroups, containers, job records) carries it,
 * so two clusters on one host, whose nodes may share names, never touch each other's work.
 */
export async function clusterId(redis: Redis, ks: Keyspace, candidate: string): Promise<string> {
  await redis.hsetnx(ks.cluster, 'id', candidate);
  return (await redis.hget(ks.cluster, 'id')) ?? candidate;
}

export async function getNode(redis: Redis, ks: Keyspace, name: string): Promise<NodeRecord | undefined> {
  const h = await redis.hgetall(ks.node(name));
  return Object.keys(h).length ? decodeNode(h) : undefined;
}

/** Each node's load over the last hour, a sample a minute, oldest first (heartbeat-4.lua keeps them). */
export async function nodeHistories(redis: Redis, ks: Keyspace): Promise<Record<string, NodeLoadSample[]>> {
  const names = (await redis.smembers(ks.nodes)).sort();
  const pipe = redis.pipeline();
  for (const n of names) pipe.lrange(ks.nodeHistory(n), 0, -1);
  const res = (await pipe.exec()) ?? [];
  return Object.fromEntries(names.map((n, i) => [n, ((res[i]?.[1] as string[] | undefined) ?? []).reverse().map((line) => {
    const [t, load1, usedCpus, memoryUsedBytes] = line.split(' ').map(Number);
    return { t, load1, usedCpus, memoryUsedBytes };
  })]));
}

export async function listNodes(redis: Redis, ks: Keyspace): Promise<NodeRecord[]> {
  const names = (await redis.smembers(ks.nodes)).sort();
  if (!names.length) return [];
  const pipe = redis.pipeline();
  for (const n of names) pipe.hgetall(ks.node(n));
  const res = (await pipe.exec()) ?? [];
  return res
    .map(([err, h]) => (err ? undefined : (h as Record<string, string>)))
    .filter((h): h is Record<string, string> => !!h && Object.keys(h).length > 0)
    .map(decodeNode);
}

/**
 * Operator status changes (drain, uncordon). Returns the status now in force
 * ('down' stays down until the agent registers again), or undefined for an unknown node.
 */
export async function setNodeStatus(redis: Redis, ks: Keyspace, name: string, status: Exclude<NodeStatus, 'down'>): Promise<NodeStatus | undefined> {
  try {
    return await runScript<NodeStatus>(redis, 'setNodeStatus', [ks.node(name)], [ks.prefix, status, name]);
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'NONODE') return undefined;
    throw err;
  }
}

/**
 * Mark a node as being removed (`oswalk node remove`: no new copies go there, its copies stop
 * counting and replication moves what only it holds elsewhere), or undo that (`on` false).
 * Returns when the removal began (ms; kept when it was already under way), 0 once cleared,
 * or false for an unknown node.
 */
export async function markRemoving(redis: Redis, ks: Keyspace, name: string, on: boolean, now?: number): Promise<number | false> {
  try {
    return await runScript<number>(redis, 'markRemoving', [ks.nodes, ks.node(name)], [name, on ? '1' : '0', now ?? '']);
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'NONODE') return false;
    throw err;
  }
}

/** The node timeout in force (the leading monitor's; 5 s before any monitor ran), in ms. */
export async function clusterNodeTimeoutMs(redis: Redis, ks: Keyspace): Promise<number> {
  return Number((await redis.hget(ks.cluster, 'nodeTimeoutMs')) ?? 5000);
}
