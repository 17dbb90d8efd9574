import type { NodeRecord } from '../api/nodes.js';

/** Fields of a NodeRecord kept as JSON in the hash rather than as plain strings. */
const JSON_FIELDS = new Set(['labels', 'agentLabels']);
const NUMBER_FIELDS = new Set([
  'cpus', 'memoryBytes', 'lastHeartbeat', 'registeredAt', 'agentEpoch', 'load1', 'memoryUsedBytes', 'runningJobs', 'usedCpus', 'burstCpus',
  'translateBacklog', 'exportFiles', 'exportSkipped', 'storeChunks', 'storeBytes', 'storeFreeBytes', 'removingSince', 'cacheBytes', 'fileCacheBytes', 'agentCpus', 'agentMemoryBytes', 'historyAt',
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
