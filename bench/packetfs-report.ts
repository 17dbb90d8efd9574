/** PacketFS benchmarks write their sections of BENCHMARKS.md through the shared writer. */
import { rmSync } from 'node:fs';
import { ChunkFetcher, ChunkStore, type ChunkFetcherOptions, type ChunkRef } from '../src/packetfs/index.js';
import { writeSection as write } from './report.js';

export { table } from './report.js';

export function writeSection(id: string, title: string, command: string, body: string): void {
  write(`packetfs-${id}`, title, command, body);
}

export const gbps = (bytes: number, ms: number): string => (bytes / ms / 1e6).toFixed(3);

/**
 * Run each pipeline once per round, interleaved (a swing of the shared machine hits them all
 * alike), logging each time; returns every pipeline's times and its best.
 */
export async function interleaved(pipelines: [string, () => Promise<number>][], rounds: number, bytes: number): Promise<{ runs: number[][]; best: number[] }> {
  const runs = pipelines.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, [name, f]] of pipelines.entries()) {
      runs[i].push(await f());
      console.log(`round ${r + 1}: ${name} ${gbps(bytes, runs[i].at(-1)!)} GB/s`);
    }
  }
  return { runs, best: runs.map((r) => Math.min(...r)) };
}

/**
 * The time (ms) a ChunkFetcher on a new store in `storeDir` takes to get every chunk of
 * `chunkListHash` from its holders, `inFlight` at a time (fetch, verify, store in its cache); it must
 * move every byte. The store is removed after.
 */
export async function timeFetchAll(o: { storeDir: string; fetcher: Omit<ChunkFetcherOptions, 'store'>; chunks: ChunkRef[]; chunkListHash: string; bytes: number; inFlight: number }): Promise<number> {
  const store = new ChunkStore(o.storeDir, o.fetcher.log ? { log: o.fetcher.log } : {});
  await store.init();
  const f = new ChunkFetcher({ ...o.fetcher, store });
  const queue: ChunkRef[] = [...o.chunks];
  const t = performance.now();
  await Promise.all(Array.from({ length: o.inFlight }, async () => {
    for (let c = queue.shift(); c; c = queue.shift()) await f.getChunk(c, o.chunkListHash);
  }));
  await f.flush();
  const ms = performance.now() - t;
  f.close();
  if (f.stats().remoteBytes !== o.bytes) throw new Error(`fetched ${f.stats().remoteBytes} of ${o.bytes} bytes`);
  rmSync(store.dir, { recursive: true, force: true });
  return ms;
}
