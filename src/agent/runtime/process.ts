import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { Logger } from '../../util/log.js';
import { agentEnvForJobs, failedStart, guardOutput, jobEnv, sleep, within } from './common.js';
import { guardBinary, guarded } from './guard.js';
import { Limiter, cgroupBusy, cgroupCpuSeconds, cgroupJobPrefix, destroyCgroup, oomKilled, type LimitMode } from './limits.js';
import { groupMembers, procStat, signalGroup, treeCpuSeconds } from './procfs.js';
import { RecordStore, type ProcessRecord } from './records.js';
import type { HostOwner, OnOutput, RunHandle, RunResult, RunSpec, Runtime } from './types.js';
import type { WindowSize } from '../../api/jobs.js';

export interface ProcessRuntimeOptions {
  /** The agent's state directory; records of running jobs live in <stateDir>/runtime/process/. */
  stateDir: string;
  logger: Logger;
  /** Between SIGTERM and SIGKILL on kill() and cleanup(). */
  killGraceMs?: number;
  limits?: LimitMode;
  /** Where cgroup hierarchies are mounted. */
  cgroupRoot?: string;
}


/** How long to wait for the job's pipes to drain after its main process exited. */
const DRAIN_MS = 2000;

/**
 * Runs a job as a plain child process of the agent ("metal"): no shell, its own session and
 * process group (so kill() reaches everything it forked), limits by cgroup where the host
 * allows, under a guard that kills it when the agent dies or the node's fence passes, and a
 * record on disk while it runs so that what it forked survives no agent crash.
 */
export class ProcessRuntime implements Runtime {
  readonly name = 'process' as const;
  private readonly records: RecordStore;
  private readonly graceMs: number;
  private limiter?: Promise<Limiter>;

  constructor(private readonly opts: ProcessRuntimeOptions) {
    this.records = new RecordStore(join(opts.stateDir, 'runtime', 'process'));
    this.graceMs = opts.killGraceMs ?? 10_000;
  }

  /** Which limit mode this host ended up with (probed once, on first use). */
  limits(): Promise<Limiter> {
    this.limiter ??= Limiter.create(this.opts.limits ?? 'auto', this.opts.cgroupRoot ?? '/sys/fs/cgroup', this.opts.logger);
    return this.limiter;
  }

  async start(spec: RunSpec, onOutput: OnOutput): Promise<RunHandle> {
    const log = this.opts.logger.child({ jobId: spec.jobId, attempt: spec.attempt, runtime: 'process' });
    if (spec.command.length === 0) return failedStart({ exitCode: null, error: 'command is empty' });
    const env = { ...agentEnvForJobs(), ...jobEnv(spec) };

    const cwd = await resolveWorkingDir(spec);
    if ('error' in cwd) return failedStart({ exitCode: null, error: cwd.error });
    const found = await resolveCommand(spec.command[0], env.PATH ?? '', cwd.dir);
    if ('error' in found) return failedStart({ exitCode: found.exitCode, error: found.error });

    const limits = await (await this.limits()).forJob(spec);
    // Under its guard (guard/oswalk-guard.c): killed, with all it forked, when the agent dies
    // or the node's fence passes (agent frozen or cut off), so it never runs next to the copy
    // the cluster starts elsewhere.
    const argv = guarded(guardBinary(), join(spec.fenceDir, 'fence'), limits.wrap([found.path, ...spec.command.slice(1)]), { cgroupDirs: limits.cgroup?.dirs, cwd: cwd.dir, ...(spec.tty ? { tty: spec.tty } : {}) });
    const child = spawn(argv[0], argv.slice(1), {
      // The guard's child enters cwd.dir: a chdir into a stopped mount here would hold the
      // agent's event loop until the mount answers.
      cwd: '/',
      env,
      detached: true,
      // A tty job's guard reads the terminal's new sizes from fd 3.
      stdio: [spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(spec.tty ? ['pipe' as const] : [])],
    });

    const spawned = await new Promise<Error | undefined>((res) => {
      child.once('spawn', () => res(undefined));
      child.once('error', (err) => res(err));
    });
    if (spawned) {
      if (limits.cgroup) await destroyCgroup(limits.cgroup);
      const code = (spawned as NodeJS.ErrnoException).code;
      return failedStart({ exitCode: code === 'ENOENT' ? 127 : code === 'EACCES' ? 126 : null, error: `cannot start ${JSON.stringify(spec.command[0])}: ${spawned.message}` });
    }
    const pid = child.pid!;
    // Later 'error' events would otherwise be thrown as uncaught and take the agent down.
    child.on('error', (err) => log.warn({ err }, 'child process error'));
    const emit = guardOutput(onOutput, (err) => log.error({ err }, 'output callback threw; later output of this job is dropped where it throws'), [child.stdout!, child.stderr!]);
    child.stdout!.on('data', (d: Buffer) => emit('stdout', d));
    child.stderr!.on('data', (d: Buffer) => emit('stderr', d));

    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.once('exit', (code, signal) => res({ code, signal }));
    });
    const closed = new Promise<void>((res) => child.once('close', () => res()));
    const st = await procStat(pid);
    const record: ProcessRecord = {
      jobId: spec.jobId, attempt: spec.attempt, cluster: spec.cluster, node: spec.node, pid, pgid: pid,
      startTime: st?.startTime ?? '', cgroup: limits.cgroup, startedAt: Date.now(),
    };
    // A job that is over before we could read its start time needs no record: nothing to orphan.
    if (st) {
      await this.records.write(record).catch(async (err: Error) => {
        // Without its record the job could outlive a crash unseen: do not let it run.
        signalGroup(pid, 'SIGKILL');
        if (limits.cgroup) await destroyCgroup(limits.cgroup).catch(() => {});
        throw new Error(`cannot record job ${spec.jobId} in ${this.opts.stateDir}: ${err.message}`);
      });
    }
    log.debug({ pid, argv }, 'job started');

    let killReason: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const done = (async (): Promise<RunResult> => {
      const { code, signal } = await exited;
      clearTimeout(killTimer);
      // The OOM count lives in the cgroup: read it before the cgroup goes.
      const oom = limits.cgroup ? await oomKilled(limits.cgroup) : false;
      // The job is its main process: whatever it left running in its group goes with it.
      signalGroup(pid, 'SIGKILL');
      if (limits.cgroup) await destroyCgroup(limits.cgroup).catch((err) => log.warn({ err }, 'cgroup not removed'));
      await within(closed, DRAIN_MS);
      child.stdout!.destroy();
      child.stderr!.destroy();
      await this.records.remove(record).catch((err) => log.warn({ err }, 'job record not removed; cleanup() will retry'));
      const result: RunResult = { exitCode: code };
      if (signal) result.signal = signal;
      if (killReason) result.error = `killed: ${killReason}`;
      else if (oom) result.error = `out of memory: the job exceeded its memory limit of ${spec.memoryBytes} bytes`;
      return result;
    })();

    // A job that exits without reading all its input makes writes to the pipe fail (EPIPE): its business.
    child.stdin?.on('error', () => undefined);
    const sizes = spec.tty ? (child.stdio[3] as Writable) : undefined;
    sizes?.on('error', () => undefined);
    const cgroup = limits.cgroup;
    return {
      wait: () => done,
      // The cgroup counts everything the job ran, escaped daemons too; without one, the tree
      // below its guard does (a job over before its start time was read has no tree to walk).
      cpuSeconds: () => (cgroup?.cpuUsage ? cgroupCpuSeconds(cgroup.kind, cgroup.cpuUsage) : st ? treeCpuSeconds(pid, st.startTime) : Promise.resolve(undefined)),
      ...(child.stdin ? { stdin: child.stdin } : {}),
      ...(sizes ? { resize: (size: WindowSize) => void sizes.write(`${size.rows} ${size.cols}\n`) } : {}),
      kill: async (reason: string) => {
        if (child.exitCode === null && child.signalCode === null && !killReason) {
          killReason = reason;
          log.info({ reason }, 'killing job');
          // A terminal session ends as a closed ssh connection ends it: a hang-up (the guard
          // passes it to the terminal's foreground group).
          signalGroup(pid, spec.tty ? 'SIGHUP' : 'SIGTERM');
          killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), this.graceMs);
        }
        await done;
      },
    };
  }

  /**
   * Stop every job the records of the cluster's node name and `keep` does not, whether this
   * process or an earlier agent started it. A record whose process is gone, or whose pid now
   * belongs to another process, is only removed.
   */
  async cleanup(owner: HostOwner, keepJobIds: Set<string>): Promise<string[]> {
    const { node } = owner;
    const { records, bad } = await this.records.list(owner);
    for (const b of bad) {
      this.opts.logger.warn({ file: b.path, error: b.error }, 'unreadable job record removed');
      await this.records.removeFile(b.path);
    }
    const stopped: string[] = [];
    await Promise.all(records.filter((r) => !keepJobIds.has(r.jobId)).map(async (rec) => {
      const st = await procStat(rec.pid);
      if (st && st.startTime === rec.startTime && st.state !== 'Z') {
        this.opts.logger.warn({ jobId: rec.jobId, pid: rec.pid, node }, 'stopping orphaned job');
        signalGroup(rec.pgid, 'SIGTERM');
        const deadline = Date.now() + this.graceMs;
        while ((await groupMembers(rec.pgid)).length > 0 && Date.now() < deadline) await sleep(50);
        signalGroup(rec.pgid, 'SIGKILL');
        stopped.push(rec.jobId);
      }
      if (rec.cgroup) await destroyCgroup(rec.cgroup);
      await this.records.remove(rec);
    }));
    // Cgroups outlive lost records (a state dir wiped, an agent killed between cgroup and
    // record): whatever is in a cgroup of this node's unkept jobs is a job's, so it goes too.
    const keepPrefixes = [...keepJobIds].map((id) => cgroupJobPrefix(owner, id));
    let unrecorded = 0;
    for (const { name, cgroup } of await (await this.limits()).nodeCgroups(owner)) {
      if (keepPrefixes.some((p) => name.startsWith(p))) continue;
      if (await cgroupBusy(cgroup)) unrecorded++;
      await destroyCgroup(cgroup);
    }
    if (unrecorded > 0) this.opts.logger.warn({ node, cgroups: unrecorded }, 'killed jobs found in cgroups without a record');
    return stopped;
  }
}

async function resolveWorkingDir(spec: RunSpec): Promise<{ dir: string } | { error: string }> {
  let dir = spec.workingDir;
  if (!dir) return { dir: spec.clusterMount ?? process.cwd() };
  if (!isAbsolute(dir)) {
    if (!spec.clusterMount) return { error: `working dir "${dir}" is relative and the job has no cluster mount to resolve it under` };
    dir = resolve(spec.clusterMount, dir);
  }
  try {
    if (!(await stat(dir)).isDirectory()) return { error: `working dir "${dir}" is not a directory on node ${spec.node}` };
  } catch {
    return { error: `working dir "${dir}" not found on node ${spec.node}` };
  }
  return { dir };
}

/**
 * Find the program as execvp would, ourselves, so that "not found" is a clear result with a
 * shell's exit codes (127 missing, 126 not executable) even when a wrapper does the exec.
 */
async function resolveCommand(cmd: string, path: string, cwd: string): Promise<{ path: string } | { error: string; exitCode: number }> {
  const candidates = cmd.includes('/') ? [resolve(cwd, cmd)] : path.split(':').map((d) => join(d || cwd, cmd));
  let notExecutable: string | undefined;
  for (const c of candidates) {
    try {
      if (!(await stat(c)).isFile()) continue;
    } catch {
      continue;
    }
    try {
      await access(c, constants.X_OK);
      return { path: c };
    } catch {
      notExecutable ??= c;
    }
  }
  if (notExecutable) return { exitCode: 126, error: `command "${cmd}" is not executable (${notExecutable})` };
  return { exitCode: 127, error: cmd.includes('/') ? `command "${cmd}" not found` : `command "${cmd}" not found in PATH` };
}
