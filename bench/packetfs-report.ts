/** PacketFS benchmarks write their sections of BENCHMARKS.md through the shared writer. */
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
