import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { guardBinary } from './runtime/guard.js';

/**
 * The node's fence: the time until which this node may run its jobs, written to a file that the
 * guard of every job (src/agent/runtime/guard/oswalk-guard.c) watches. Past it the guard kills
 * the job by itself, so a job is stopped on its node before the cluster can start it anywhere
 * else, even when the agent is frozen (SIGSTOP, a paused VM), cut off from Redis, or dead.
 *
 * The cluster may take a node's jobs away in two ways, both timed by Redis' clock from a call
 * the agent made (src/state/lua): the monitor marks the node down once `nodeTimeoutMs` has
 * passed since its last accepted heartbeat, and requeues a job whose lease (`leaseMs` from its
 * last renewal or claim) ran out. Redis stamps each call when it runs it, never before the agent
 * sent it, so counting from the moment the call was *sent*, on this host's monotonic clock,
 * never ends later than the cluster's count. The fence is the earlier of the two ends, less a
 * safety margin for the guard to wake and its SIGKILL to land:
 *
 *   fence = min(heartbeat sent + nodeTimeout - margin(nodeTimeout),
 *               leases renewed (sent) + lease - margin(lease))
 *   margin(t) = min(1 s, t / 4)
 *
 * With the default 5 s node timeout a node that stops hearing back from Redis kills its jobs
 * after 4 s; the cluster requeues them after 5 s (plus the monitor's pass, 0.5 s) and they run
 * elsewhere a scheduling pass later. Only answers that Redis gave move the fence forward.
 *
 * Times are CLOCK_MONOTONIC milliseconds (process.hrtime), the clock the guard reads: one per
 * kernel, so also right inside the job containers of this host, and never stepped by NTP.
 */
export class NodeFence {
  private heartbeatUntil = 0;
  private leasesUntil = Infinity;
  private written = -1;
  /** The latest moment the fence lapsed (it was passed before it was moved on), or -Infinity. */
  private lapsedAt = -Infinity;
  readonly file: string;

  /**
   * @param dir a directory of its own for the fence file (and, with `withGuard`, a copy of the
   *   guard binary: job containers bind this directory, so both must be on the Docker host)
   */
  constructor(readonly dir: string, withGuard = false) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    this.file = join(dir, 'fence');
    this.write(0);
    if (withGuard) {
      // By copy and rename: a container that runs the binary keeps it busy (ETXTBSY on a write).
      copyFileSync(guardBinary(), join(dir, '.oswalk-guard.tmp'));
      renameSync(join(dir, '.oswalk-guard.tmp'), join(dir, 'oswalk-guard'));
    }
  }

  /** The fence, on the monotonic clock (ms). */
  get until(): number {
    return Math.min(this.heartbeatUntil, this.leasesUntil);
  }

  /** Whether the fence has passed: the jobs here are, or are about to be, someone else's. */
  passed(): boolean {
    return monotonicMs() >= this.until;
  }

  /**
   * Whether the fence passed at some moment since `t` (monotonicMs()), even if it has been
   * moved on since: every guard then killed its job, so an end seen now may be the guard's
   * doing, and the job is the cluster's to move.
   */
  lapsedSince(t: number): boolean {
    return this.lapsedAt >= t || this.passed();
  }

  /** A heartbeat sent at `sentAt` (monotonicMs()) was accepted under this node timeout. */
  heartbeatAccepted(sentAt: number, nodeTimeoutMs: number): void {
    this.heartbeatUntil = Math.max(this.heartbeatUntil, sentAt + nodeTimeoutMs - margin(nodeTimeoutMs));
    this.flush();
  }

  /**
   * The leases of the jobs here: `sentAt` is, per job, when the claim or renewal that set its
   * lease was sent (none: no job holds a lease here).
   */
  leases(sentAt: number[], leaseMs: number): void {
    this.leasesUntil = sentAt.length ? sentAt.reduce((a, b) => Math.min(a, b)) + leaseMs - margin(leaseMs) : Infinity;
    this.flush();
  }

  /** The node lost its registration: nothing it runs is its own any more. */
  revoke(): void {
    this.lapsedAt = Math.max(this.lapsedAt, monotonicMs());
    this.heartbeatUntil = 0;
    this.flush();
  }

  private flush(): void {
    const until = this.until;
    if (until === this.written) return;
    this.write(until);
  }

  /** Atomically (rename), so a guard never reads half a number. */
  private write(until: number): void {
    // A guard that read the old fence at or after its time has killed its job by now.
    if (this.written >= 0 && this.written <= monotonicMs()) this.lapsedAt = Math.max(this.lapsedAt, this.written);
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${Number.isFinite(until) ? Math.floor(until) : 0}\n`, { mode: 0o644 });
    renameSync(tmp, this.file);
    this.written = until;
  }
}

/** What the guard waits out at most, after the fence, before its kill must have landed. */
export function margin(timeoutMs: number): number {
  return Math.min(1000, Math.floor(timeoutMs / 4));
}

/** CLOCK_MONOTONIC in milliseconds, as the guard reads it. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}
