import type { NodeRecord } from '../api/nodes.js';

/** One running job's CPU time, as its runtime read it at a sample. */
export interface JobCpuTime {
  /** The job and its attempt: a retry's CPU time counts from zero again. */
  key: string;
  /** When this node took the job (monotonic ms). */
  startedAt: number;
  /** The CPUs it reserved. */
  reservedCpus: number;
  cpuSeconds: number;
}

/** What a node's running jobs burn, in CPUs: all of it, and what is beyond their reservations. */
export type CpuUse = Required<Pick<NodeRecord, 'usedCpus' | 'burstCpus'>>;

/**
 * How far back the rate looks: long enough to smooth a job's bursts, short enough that a job
 * which calms down or a node whose jobs ended stops looking busy within a few heartbeats.
 */
const WINDOW_MS = 5000;
/**
 * A job younger than this is left out: over less time its rate is mostly the cost of its own
 * start, and the scheduler counts what it reserved anyway.
 */
const MIN_SPAN_MS = 1000;

/**
 * What the jobs running on a node burn over the last few seconds. A job's reservation bounds its
 * CPU only where the runtime enforces it (not with the process runtime's `prlimit` or `none`
 * limits), so the scheduler adds what jobs burn beyond their reservations to what is reserved.
 * Fed each heartbeat with the jobs' CPU times; only jobs still running count, so a node whose
 * jobs ended is idle at once.
 */
export class CpuMeter {
  private samples: { at: number; jobs: Map<string, number> }[] = [];

  constructor(private readonly windowMs = WINDOW_MS, private readonly minSpanMs = MIN_SPAN_MS) {}

  /** Record the CPU times read at `at` (monotonic ms) and return the use over the window. */
  sample(at: number, jobs: JobCpuTime[]): CpuUse {
    this.samples = this.samples.filter((s) => s.at >= at - this.windowMs);
    const use: CpuUse = { usedCpus: 0, burstCpus: 0 };
    for (const j of jobs) {
      // A job that started within the window: its whole life; an older one: since the oldest
      // sample of it the window holds.
      let from = j.startedAt;
      let base = 0;
      if (at - j.startedAt > this.windowMs) {
        const oldest = this.samples.find((s) => s.jobs.has(j.key));
        // Not read before (its runtime could not say): from the next sample on.
        if (!oldest) continue;
        from = oldest.at;
        base = oldest.jobs.get(j.key)!;
      }
      if (at - from < this.minSpanMs) continue;
      const cpus = (Math.max(0, j.cpuSeconds - base) * 1000) / (at - from);
      use.usedCpus += cpus;
      use.burstCpus += Math.max(0, cpus - j.reservedCpus);
    }
    this.samples.push({ at, jobs: new Map(jobs.map((j) => [j.key, j.cpuSeconds])) });
    return use;
  }
}
