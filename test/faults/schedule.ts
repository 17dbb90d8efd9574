/**
 * The fault schedule of a run, drawn from one seed: which faults, in what order, against which
 * node, how long each lasts and how long the cluster runs undisturbed before it. The same seed
 * gives the same schedule (OSWALK_FAULT_SEED replays a run); what the processes do in between
 * is up to them, as in Jepsen, where the nemesis's schedule is reproducible and the checker,
 * not the timing, decides.
 */

/** sfc32: a small PRNG with a 128-bit state, good enough to draw a schedule and never Math.random. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.next();
  }

  /** A uniform float in [0, 1). */
  next(): number {
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0; this.d >>>= 0;
    let t = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    t = (t + this.d) | 0;
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** A uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** A uniform float in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }

  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

export type FaultKind =
  | 'agent-kill' | 'agent-stop'
  | 'fs-kill' | 'fs-stop'
  | 'cp-leader-kill' | 'cp-follower-kill' | 'cp-leader-stop' | 'cp-follower-stop'
  | 'redis-kill' | 'redis-stop'
  | 'partition';

export const FAULT_KINDS: readonly FaultKind[] = [
  'agent-kill', 'agent-stop', 'fs-kill', 'fs-stop',
  'cp-leader-kill', 'cp-follower-kill', 'cp-leader-stop', 'cp-follower-stop',
  'redis-kill', 'redis-stop', 'partition',
];

export interface Fault {
  kind: FaultKind;
  /** The node whose agent or FS process is hit (agent-*, fs-*; partition: the node in its own namespace). */
  node?: string;
  /** Quiet time before the fault, so it lands at a random moment of the run (ms). */
  gapMs: number;
  /**
   * How long the fault lasts (ms): a SIGSTOP until its SIGCONT, a partition until it heals, a
   * SIGKILL until the process is started again (as `oswalk up` would).
   */
  durationMs: number;
}

export interface ScheduleOptions {
  nodes: readonly string[];
  /** The node that runs in a network namespace of its own (the one partitions cut off). */
  partitionable: string;
  nodeTimeoutMs: number;
  /** How many faults (at least FAULT_KINDS.length: every kind comes once, the rest are drawn). */
  count: number;
}

/**
 * Every kind of fault once, in an order of the seed's, then `count - kinds` more drawn at random.
 * Every kind in every run, so that what the suite proves of each one holds for every seed; the
 * seed decides the order, the targets, the moments and the lengths.
 */
export function drawSchedule(seed: number, o: ScheduleOptions): Fault[] {
  const rng = new Rng(seed);
  const kinds = rng.shuffle(FAULT_KINDS);
  while (kinds.length < o.count) kinds.push(rng.pick(FAULT_KINDS));
  const t = o.nodeTimeoutMs;
  return kinds.map((kind): Fault => {
    const gapMs = Math.round(rng.range(1000, 4000));
    switch (kind) {
      // Back after 0.3 to 2 node timeouts: before the monitor noticed (the restarted agent
      // requeues its jobs itself) or after (the monitor did).
      case 'agent-kill': return { kind, node: rng.pick(o.nodes), gapMs, durationMs: Math.round(rng.range(0.3 * t, 2 * t)) };
      // Longer than the node timeout: the node is marked down and its jobs move while it sleeps.
      case 'agent-stop': return { kind, node: rng.pick(o.nodes), gapMs, durationMs: Math.round(rng.range(1.5 * t, 3 * t)) };
      // The agent restarts its FS process by itself: durationMs is only how long we watch.
      case 'fs-kill': return { kind, node: rng.pick(o.nodes), gapMs, durationMs: 0 };
      case 'fs-stop': return { kind, node: rng.pick(o.nodes), gapMs, durationMs: Math.round(rng.range(1000, 2 * t)) };
      case 'cp-leader-kill':
      case 'cp-follower-kill': return { kind, gapMs, durationMs: Math.round(rng.range(500, 2 * t)) };
      // Past the leader lease (3 s) or not.
      case 'cp-leader-stop':
      case 'cp-follower-stop': return { kind, gapMs, durationMs: Math.round(rng.range(1000, 6000)) };
      case 'redis-kill': return { kind, gapMs, durationMs: Math.round(rng.range(200, 2000)) };
      // Shorter or longer than the node timeout: past it, every node's fence passes at once.
      case 'redis-stop': return { kind, gapMs, durationMs: Math.round(rng.range(500, 2 * t)) };
      case 'partition': return { kind, node: o.partitionable, gapMs, durationMs: Math.round(rng.range(1.5 * t, 3 * t)) };
    }
  });
}

/** The seed of OSWALK_FAULT_SEED (a replay, or another schedule by hand), else DEFAULT_FAULT_SEED. */
export function faultSeed(env: NodeJS.ProcessEnv = process.env): number {
  const s = env.OSWALK_FAULT_SEED;
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`OSWALK_FAULT_SEED "${s}" must be an integer from 0 to 4294967295`);
    return n;
  }
  // Not drawn: a test run must not depend on chance. This one has every kind of fault and
  // passed; other seeds are for runs by hand (OSWALK_FAULT_SEED).
  return DEFAULT_FAULT_SEED;
}

const DEFAULT_FAULT_SEED = 387802440;
