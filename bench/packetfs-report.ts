/** PacketFS benchmarks write their sections of BENCHMARKS.md through the shared writer. */
import { writeSection as write } from './report.js';

export { table } from './report.js';

export function writeSection(id: string, title: string, command: string, body: string): void {
  write(`packetfs-${id}`, title, command, body);
}

export const gbps = (bytes: number, ms: number): string => (bytes / ms / 1e6).toFixed(3);
