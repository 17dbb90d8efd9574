import type { Redis } from '../src/state/redis.js';

/**
 * MEMORY USAGE (SAMPLES 0: exact) of every key under `prefix`, summed by kind: what `kindOf`
 * makes of the key's name past the prefix (fs:p, pfs:loc…). For the benchmarks that say what a
 * file or a job costs in Redis, by key.
 */
export async function memoryByKind(redis: Redis, prefix: string, kindOf: (rest: string) => string): Promise<Map<string, { keys: number; bytes: number }>> {
  const byKind = new Map<string, { keys: number; bytes: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2000);
    cursor = next;
    const pipe = redis.pipeline();
    for (const k of keys) pipe.memory('USAGE', k, 'SAMPLES', 0);
    const res = (await pipe.exec())!;
    keys.forEach((k, i) => {
      const kind = kindOf(k.slice(prefix.length));
      const e = byKind.get(kind) ?? { keys: 0, bytes: 0 };
      e.keys++;
      e.bytes += Number(res[i][1]);
      byKind.set(kind, e);
    });
  } while (cursor !== '0');
  return byKind;
}
