import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CpuMeter, type JobCpuTime } from '../../src/agent/cpu-meter.js';

/** A job read at a sample: key, when the node took it (s), CPU seconds used so far, CPUs reserved. */
const job = (key: string, startedAtS: number, cpuSeconds: number, reservedCpus = 0.1): JobCpuTime => ({ key, startedAt: startedAtS * 1000, reservedCpus, cpuSeconds });

interface Case {
  name: string;
  /** Samples in order: when (s) and the jobs read, with the use the meter should answer. */
  samples: { at: number; jobs: JobCpuTime[]; used: number; burst?: number }[];
}

const cases: Case[] = [
  { name: 'no jobs: idle', samples: [{ at: 10, jobs: [], used: 0, burst: 0 }] },
  {
    name: 'a job younger than a second is left out (its rate is its start-up)',
    samples: [{ at: 10, jobs: [job('a#1', 9.5, 0.4)], used: 0, burst: 0 }],
  },
  {
    name: 'a job started within the window: its whole life; beyond its reservation is burst',
    samples: [{ at: 10, jobs: [job('a#1', 8, 2, 0.25)], used: 1, burst: 0.75 }],
  },
  {
    name: 'a job using less than it reserved bursts nothing',
    samples: [{ at: 10, jobs: [job('a#1', 8, 1, 2)], used: 0.5, burst: 0 }],
  },
  {
    name: 'burst is summed job by job: one idle job does not hide another one\'s',
    samples: [{ at: 10, jobs: [job('loop#1', 7, 3, 0.1), job('idle#1', 6, 0.01, 1)], used: 1.0025, burst: 0.9 }],
  },
  {
    name: 'a job older than the window counts from the oldest sample of it there',
    samples: [
      { at: 100, jobs: [job('a#1', 0, 50)], used: 0 },
      { at: 101, jobs: [job('a#1', 0, 50.5)], used: 0.5 },
      { at: 103, jobs: [job('a#1', 0, 52.5)], used: 2.5 / 3 },
    ],
  },
  {
    name: 'a job that calms down stops counting once its busy samples leave the window',
    samples: [
      ...[10, 11, 12, 13, 14, 15].map((at) => ({ at, jobs: [job('a#1', 0, at - 10)], used: at === 10 ? 0 : 1 })),
      ...[16, 17, 18, 19, 20].map((at) => ({ at, jobs: [job('a#1', 0, 5)], used: (5 - (at - 15)) / 5 })),
      { at: 21, jobs: [job('a#1', 0, 5)], used: 0, burst: 0 },
    ],
  },
  {
    name: 'a job that ended counts no more: a node whose jobs ended is idle at once',
    samples: [
      { at: 10, jobs: [job('a#1', 7, 3)], used: 1, burst: 0.9 },
      { at: 11, jobs: [], used: 0, burst: 0 },
    ],
  },
  {
    name: 'a retry counts from its own start, not from the attempt before',
    samples: [
      { at: 100, jobs: [job('a#1', 0, 90)], used: 0 },
      { at: 101, jobs: [job('a#1', 0, 91)], used: 1 },
      { at: 103, jobs: [job('a#2', 101, 1)], used: 0.5 },
    ],
  },
  {
    name: 'a counter that went back (a reused key) counts as nothing, never as negative',
    samples: [
      { at: 100, jobs: [job('a#1', 0, 90)], used: 0 },
      { at: 102, jobs: [job('a#1', 0, 10)], used: 0, burst: 0 },
    ],
  },
];

describe('CPU meter', () => {
  for (const c of cases) {
    it(c.name, () => {
      const meter = new CpuMeter();
      for (const s of c.samples) {
        const use = meter.sample(s.at * 1000, s.jobs);
        assert.ok(Math.abs(use.usedCpus - s.used) < 1e-9, `at ${s.at} s: used ${use.usedCpus}, want ${s.used}`);
        if (s.burst !== undefined) assert.ok(Math.abs(use.burstCpus - s.burst) < 1e-9, `at ${s.at} s: burst ${use.burstCpus}, want ${s.burst}`);
      }
    });
  }
});
