/**
 * Redis memory of chunk list locations: MEMORY USAGE of one location set, and used_memory
 * growth per chunk list with one, two and three holders (10 000 chunk lists, so the per-key
 * overhead of the keyspace dictionary is included).
 *
 *   npx tsc -p . && node dist/bench/packetfs-redis.js
 */
import { createHash } from 'node:crypto';
import { TestRedis, testKeys } from '../test/helpers/redis.js';
import { connectRedis } from '../src/state/redis.js';
import { addChunkListLocation } from '../src/packetfs/index.js';
import { table, writeSection } from './packetfs-report.js';

const server = await TestRedis.start();
const redis = connectRedis(server.url);
try {
  const ks = testKeys();
  const N = 10_000;
  const hashes = Array.from({ length: N }, (_, i) => createHash('sha256').update(`m${i}`).digest('hex'));
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const base = await used();
  const rows: (string | number)[][] = [];
  let before = base;
  for (const node of ['node-01', 'node-02', 'node-03']) {
    for (let i = 0; i < N; i += 500) await Promise.all(hashes.slice(i, i + 500).map((h) => addChunkListLocation(redis, ks, h, node)));
    const now = await used();
    const one = Number(await redis.call('MEMORY', 'USAGE', ks.chunkListLocations(hashes[0]), 'SAMPLES', '0'));
    rows.push([rows.length + 1, one, ((now - base) / N).toFixed(1), ((now - before) / N).toFixed(1)]);
    before = now;
  }
  writeSection('redis', 'Redis bytes per chunk list location', 'node dist/bench/packetfs-redis.js',
    `${table(['holders per chunk list', 'MEMORY USAGE of one set (bytes)', 'used_memory per chunk list (bytes)', 'added by this holder (bytes)'], rows)}\n\n` +
    `Key: \`${ks.chunkListLocations('<64 hex>')}\` (a set of node names, listpack-encoded while small). The first holder pays for the key ` +
    '(its 64-hex name plus the prefix and the set header); each further holder adds only its name.');
} finally {
  redis.disconnect();
  await server.stop();
}
