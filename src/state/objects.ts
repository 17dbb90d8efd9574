import type { Redis } from 'ioredis';
import type { Keyspace } from './keys.js';
import { runScript } from './scripts.js';
import { KINDS, type Kind, type Manifest } from '../manifest/index.js';
import type { ApplyResult } from '../api/objects.js';

/** Applied manifests are stored normalized, exactly as parseManifests returns them. */
export type StoredObject = Manifest;

export class ApplyConflictError extends Error {
  constructor(readonly kind: Kind, readonly objectName: string) {
    super(`${kind} "${objectName}" already exists with a different spec; a ${kind}'s spec cannot change: delete it or apply it under a new name`);
  }
}

/** JSON with sorted keys, so that re-applying the same manifest is recognised as unchanged. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : val);
}

/** Store validated manifests in one atomic step: either all of them or, on a conflict, none. `dryRun`: what would happen, nothing stored. */
export async function applyObjects(redis: Redis, ks: Keyspace, objects: StoredObject[], opts: { dryRun?: boolean } = {}): Promise<ApplyResult[]> {
  if (!objects.length) return [];
  const args = [opts.dryRun ? '1' : '0', ...objects.flatMap((o) => [KINDS.indexOf(o.kind) + 1, o.metadata.name, canonical(o)])];
  // KEYS follow KINDS, whose first is Job: the script refuses a changed Job spec at KEYS[1].
  const res = await runScript<string[]>(redis, 'applyObjects', KINDS.map((k) => ks.objects(k)), args);
  if (res[0] === 'conflict') {
    throw new ApplyConflictError('Job', res[1]);
  }
  return res as ApplyResult[];
}

export async function listObjects<T extends StoredObject = StoredObject>(redis: Redis, ks: Keyspace, kind: Kind): Promise<T[]> {
  const h = await redis.hgetall(ks.objects(kind));
  return Object.keys(h).sort().map((name) => JSON.parse(h[name]) as T);
}

export async function getObject<T extends StoredObject = StoredObject>(redis: Redis, ks: Keyspace, kind: Kind, name: string): Promise<T | undefined> {
  const v = await redis.hget(ks.objects(kind), name);
  return v ? (JSON.parse(v) as T) : undefined;
}

export async function deleteObject(redis: Redis, ks: Keyspace, kind: Kind, name: string): Promise<boolean> {
  return (await redis.hdel(ks.objects(kind), name)) === 1;
}
