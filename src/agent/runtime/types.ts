import type { Writable } from 'node:stream';
import type { OnOutput } from './common.js';
export interface RunSpec { jobId: string; attempt: number; node: string; image?: string; command: string[]; env: Record<string, string>; workingDir?: string; cpus?: number; memoryBytes?: number; privileged?: boolean; clusterMount?: string; stdin?: boolean }
export interface RunResult { exitCode: number | null; signal?: string; error?: string }
export interface RunHandle { wait(): Promise<RunResult>; kill(reason: string): Promise<void>; /** The job's standard input, when RunSpec.stdin asked for it. */ stdin?: Writable }
export interface Runtime { name: 'docker' | 'process'; start(spec: RunSpec, onOutput: OnOutput): Promise<RunHandle>; cleanup(node: string, keepJobIds: Set<string>): Promise<string[]> }
