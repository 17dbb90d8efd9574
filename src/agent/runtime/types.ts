import type { Writable } from 'node:stream';
import type { WindowSize } from '../../api/jobs.js';
/** Whose work something on a host is: a node of one cluster (node names repeat across clusters). */
export interface HostOwner { cluster: string; node: string }
export interface RunSpec { cluster: string; jobId: string; attempt: number; node: string; image?: string; command: string[]; env: Record<string, string>; workingDir?: string; cpus?: number; memoryBytes?: number; privileged?: boolean; clusterMount?: string; stdin?: boolean; /** A pseudo-terminal for the job, of this size (`oswalk run -t`): its output comes as stdout only. */ tty?: WindowSize; /** Holds the node's fence file `fence` (src/agent/fence.ts), and for docker a copy of the guard: every job runs under the guard of that fence. */ fenceDir: string }
export interface RunResult { exitCode: number | null; signal?: string; error?: string }
export interface RunHandle {
  wait(): Promise<RunResult>;
  kill(reason: string): Promise<void>;
  /** CPU seconds (user and system) the job has used since it started; undefined once it is gone or when they cannot be read. */
  cpuSeconds(): Promise<number | undefined>;
  /** The job's standard input, when RunSpec.stdin asked for it. */
  stdin?: Writable;
  /** A tty job's terminal takes a new size (the job gets SIGWINCH). */
  resize?(size: WindowSize): void;
}
/**
 * Where a job's output goes. A promise back means "hold on": the runtime reads no more of the
 * job's output until it settles, so a job printing faster than its output is shipped blocks in
 * write(2), as it would on a slow terminal, instead of losing output.
 */
export type OnOutput = (stream: 'stdout' | 'stderr', data: Buffer) => Promise<void> | void;
/** Whose next job a runtime may make ready for: the node of a cluster, and its fence (RunSpec.fenceDir). */
export interface SpareTarget extends HostOwner { fenceDir: string }
export interface Runtime {
  name: 'docker' | 'process';
  start(spec: RunSpec, onOutput: OnOutput): Promise<RunHandle>;
  cleanup(owner: HostOwner, keepJobIds: Set<string>): Promise<string[]>;
  /** Make ready what the target's next job will need (the process runtime: a spare guard); true once it is. Called when nothing more urgent waits. */
  warm?(target: SpareTarget): Promise<boolean>;
  /** Undo warm(): the agent stops. */
  cool?(): Promise<void>;
}
