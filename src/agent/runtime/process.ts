import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { Logger } from '../../util/log.js';
import { agentEnvForJobs, failedStart, guardOutput, jobEnv, sleep, within } from './common.js';
import { guardBinary, guarded } from './guard.js';
import { Limiter, cgroupBusy, cgroupCpuSeconds, cgroupJobPrefix, destroyCgroup, isSpareCgroup, oomKilled, type JobCgroup, type JobLimits, type LimitMode } from './limits.js';
import { groupMembers, procStat, procStatNow, signalGroup, treeCpuSeconds } from './procfs.js';
import { RecordStore, type ProcessRecord } from './records.js';
import type { HostOwner, OnOutput, RunHandle, RunResult, RunSpec, Runtime, SpareTarget } from './types.js';
import type { WindowSize } from '../../api/jobs.js';
import { isWithin } from '../../overlay/paths.js';

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
 * A guard started ahead of its job (--spare in guard/oswalk-guard.c), already in a cgroup of
 * its own: taking it costs a rename and a message instead of a process start from this big
 * process (fork and exec: 3 to 7 ms here) and a move into the job's cgroup (on cgroup v1 an RCU
 * grace period: 5 to 15 ms here), most of what a short job's start used to cost.
 */
interface Spare extends Started {
  /** Whose jobs it may take: cluster, node and fence file, as its guard watches that fence. */
  key: string;
  cgroup?: JobCgroup;
  /** Its guard joined its cgroup and waits for a job. */
  ready: boolean;
  /** True once ready, false if it ended first. */
  whenReady: Promise<boolean>;
  taken: boolean;
  startTime?: string;
}

/** A guard process, watched from its start so that no end of it goes unseen. */
interface Started {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  closed: Promise<void>;
}

function watch(child: ChildProcess): Started {
  return {
    child,
    exited: new Promise((res) => child.once('exit', (code, signal) => res({ code, signal }))),
    closed: new Promise((res) => child.once('close', () => res())),
  };
}

/**
 * Whether a guard still runs, as the kernel says it now: its exit may not have reached the
 * event loop yet (a spare whose fence passed), and a job given to it would end at once.
 */
function running(child: ChildProcess): boolean {
  if (child.exitCode !== null || child.signalCode !== null) return false;
  const st = procStatNow(child.pid!);
  return st !== undefined && st.state !== 'Z';
}

/** Whose jobs a spare guard may take (the fence directory is the node's, on this host). */
function spareKey(t: SpareTarget): string {
  return JSON.stringify([t.cluster, t.node, t.fenceDir]);
}

/** A spare's message: its job (format at the top of guard/oswalk-guard.c). */
function spareMessage(job: { cwd: string; tty?: WindowSize; stdin: boolean; cgroupDirs: string[]; argv: string[]; env: Record<string, string> }): Buffer {
  const env = Object.entries(job.env).map(([k, v]) => `${k}=${v}`);
  const fields = [job.cwd, job.tty ? `${job.tty.rows}x${job.tty.cols}` : '', job.stdin ? '1' : '0',
    String(job.cgroupDirs.length), ...job.cgroupDirs, String(job.argv.length), ...job.argv, String(env.length), ...env];
  const body = Buffer.from(fields.map((f) => `${f}\0`).join(''));
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
}

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
  private spare?: Spare;
  private spareCount = 0;
  /** A spare is being made: one at a time. */
  private sparing?: Promise<Spare | undefined>;
  private cooled = false;

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
    const found = await resolveCommand(spec.command[0], env.PATH ?? '', cwd.dir, spec.clusterMount);
    if ('error' in found) return failedStart({ exitCode: found.exitCode, error: found.error });

    const limiter = await this.limits();
    const spare = await this.takeSpare(spec, limiter, log);
    let started: Started;
    let limits: JobLimits;
    let argv: string[];
    if (spare) {
      ({ limits } = spare);
      started = spare;
      argv = limits.wrap([found.path, ...spec.command.slice(1)]);
      (spare.child.stdio[3] as Socket).write(spareMessage({ cwd: cwd.dir, tty: spec.tty, stdin: !!spec.stdin, cgroupDirs: limits.cgroup?.dirs ?? [], argv, env }));
      // Without input the job reads /dev/null (its guard opens it), as with 'ignore' below.
      if (!spec.stdin) spare.child.stdin!.destroy();
    } else {
      limits = await limiter.forJob(spec);
      // Under its guard (guard/oswalk-guard.c): killed, with all it forked, when the agent dies
      // or the node's fence passes (agent frozen or cut off), so it never runs next to the copy
      // the cluster starts elsewhere.
      argv = guarded(guardBinary(), join(spec.fenceDir, 'fence'), limits.wrap([found.path, ...spec.command.slice(1)]), { cgroupDirs: limits.cgroup?.dirs, cwd: cwd.dir, ...(spec.tty ? { tty: spec.tty } : {}) });
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
      started = watch(child);
    }
    const { child, exited, closed } = started;
    const pid = child.pid!;
    // Later 'error' events would otherwise be thrown as uncaught and take the agent down.
    child.on('error', (err) => log.warn({ err }, 'child process error'));
    const emit = guardOutput(onOutput, (err) => log.error({ err }, 'output callback threw; later output of this job is dropped where it throws'), [child.stdout!, child.stderr!]);
    child.stdout!.on('data', (d: Buffer) => emit('stdout', d));
    child.stderr!.on('data', (d: Buffer) => emit('stderr', d));

    // A spare's start time was read while it waited.
    const st = spare?.startTime !== undefined ? { startTime: spare.startTime } : await procStat(pid);
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
    log.debug({ pid, argv, spare: !!spare }, 'job started');

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
      ...(spec.stdin && child.stdin ? { stdin: child.stdin } : {}),
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
   * Have a spare guard ready for the target's next job (see Spare): one at a time. True once
   * one waits; false where none can be made (jobs then start the ordinary way; a log line says why).
   */
  async warm(target: SpareTarget): Promise<boolean> {
    const key = spareKey(target);
    if (this.cooled) return false;
    if (this.spare?.key === key) return this.spare.whenReady;
    this.sparing ??= this.makeSpare(target)
      .catch((err: Error) => {
        this.opts.logger.warn({ err: err.message }, 'no spare guard: jobs start the ordinary way');
        return undefined;
      })
      .finally(() => {
        this.sparing = undefined;
      });
    const s = await this.sparing;
    return s?.key === key ? s.whenReady : false;
  }

  /** Make no more spares and end the one waiting, its cgroup with it (the agent stops). */
  async cool(): Promise<void> {
    this.cooled = true;
    await this.sparing;
    const s = this.spare;
    this.spare = undefined;
    if (!s) return;
    s.child.kill('SIGKILL');
    await s.exited;
    if (s.cgroup) await destroyCgroup(s.cgroup).catch(() => undefined);
  }

  private async makeSpare(target: SpareTarget): Promise<Spare | undefined> {
    const limiter = await this.limits();
    // cgroup v2 cannot rename a cgroup (Limiter.spareCgroup): a spare there would have to move
    // its job into the job's cgroup, which is what spares are for not doing.
    if (limiter.kind === 'cgroup2') return undefined;
    const old = this.spare;
    if (old) old.child.kill('SIGKILL');
    const key = spareKey(target);
    const cgroup = await limiter.spareCgroup(target, `${process.pid}-${++this.spareCount}`);
    const child = spawn(guardBinary(), [join(target.fenceDir, 'fence'), '--spare', ...(cgroup?.dirs ?? []).flatMap((d) => ['--join', d])], {
      cwd: '/', env: {}, detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const started = watch(child);
    let readied!: (ready: boolean) => void;
    const s: Spare = { ...started, key, ...(cgroup ? { cgroup } : {}), ready: false, whenReady: new Promise((r) => { readied = r; }), taken: false };
    this.spare = s;
    child.on('error', () => undefined);
    // A spare gone before its message arrived: the write fails with EPIPE, and its job ends as the guard did.
    child.stdio[3]!.on('error', () => undefined);
    child.once('spawn', () => {
      s.startTime = procStatNow(child.pid!)?.startTime;
    });
    // "R": it is in its cgroup and waits.
    (child.stdio[3] as Socket).once('data', () => {
      s.ready = true;
      readied(true);
    });
    void s.exited.then(async ({ code }) => {
      readied(false);
      if (this.spare === s) this.spare = undefined;
      if (s.taken) return;
      // Its fence passed (the node lost its hold), the agent stops, or it could not join its cgroup (it says why).
      const why = String(child.stderr!.read() ?? '').trim();
      if (why) this.opts.logger.warn({ code, why }, 'spare guard ended before a job');
      for (const stream of [child.stdin, child.stdout, child.stderr, child.stdio[3]]) stream?.destroy();
      if (cgroup) await destroyCgroup(cgroup).catch(() => undefined);
    });
    return s;
  }

  /** The waiting spare when it can take this job, moved into the job's cgroup and limits. */
  private async takeSpare(spec: RunSpec, limiter: Limiter, log: Logger): Promise<(Spare & { limits: JobLimits }) | undefined> {
    const s = this.spare;
    if (!s || !s.ready || s.key !== spareKey(spec) || !running(s.child)) return undefined;
    this.spare = undefined;
    s.taken = true;
    try {
      return { ...s, limits: await limiter.adopt(s.cgroup, spec) };
    } catch (err) {
      log.warn({ err }, 'the spare guard could not take the job; it starts the ordinary way');
      s.child.kill('SIGKILL');
      await s.exited;
      if (s.cgroup) await destroyCgroup(s.cgroup).catch(() => undefined);
      return undefined;
    }
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
      // The spare waiting here is no job's (a spare of an earlier agent is swept as a job's cgroup is).
      if (isSpareCgroup(owner, name) && this.spare?.cgroup?.dirs.every((d) => cgroup.dirs.includes(d))) continue;
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
  const st = await statOf(dir, spec.clusterMount);
  if (!st) return { error: `working dir "${dir}" not found on node ${spec.node}` };
  if (!st.isDirectory()) return { error: `working dir "${dir}" is not a directory on node ${spec.node}` };
  return { dir };
}

const under = (path: string, mount: string | undefined) => mount !== undefined && isWithin(path, resolve(mount));

/**
 * A job's path looked up as a job start needs it: on the node's own disks synchronously (a few
 * microseconds, where a call through libuv's pool costs an event-loop round trip, milliseconds
 * on a busy agent, several times on every job's start), under the cluster mount through the
 * pool, since a stalled mount must not hold the agent's event loop.
 */
async function statOf(path: string, mount: string | undefined): Promise<Stats | undefined> {
  if (under(path, mount)) return stat(path).catch(() => undefined);
  try {
    return statSync(path);
  } catch {
    // Missing, or not reachable (a PATH entry that is a file, a directory we may not search).
    return undefined;
  }
}

async function executable(path: string, mount: string | undefined): Promise<boolean> {
  if (under(path, mount)) return access(path, constants.X_OK).then(() => true, () => false);
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Find the program as execvp would, ourselves, so that "not found" is a clear result with a
 * shell's exit codes (127 missing, 126 not executable) even when a wrapper does the exec.
 */
async function resolveCommand(cmd: string, path: string, cwd: string, mount: string | undefined): Promise<{ path: string } | { error: string; exitCode: number }> {
  const candidates = cmd.includes('/') ? [resolve(cwd, cmd)] : path.split(':').map((d) => join(d || cwd, cmd));
  let notExecutable: string | undefined;
  for (const c of candidates) {
    if (!(await statOf(c, mount))?.isFile()) continue;
    if (await executable(c, mount)) return { path: c };
    notExecutable ??= c;
  }
  if (notExecutable) return { exitCode: 126, error: `command "${cmd}" is not executable (${notExecutable})` };
  return { exitCode: 127, error: cmd.includes('/') ? `command "${cmd}" not found` : `command "${cmd}" not found in PATH` };
}
