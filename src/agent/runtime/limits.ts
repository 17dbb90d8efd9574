import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../util/log.js';
import { safeName, sleep } from './common.js';
import type { HostOwner, RunSpec } from './types.js';

/**
 * How the process runtime limits a job's CPU and memory:
 * - cgroup2: one cgroup per job under <root>/oswalk/ (memory.max, cpu.max);
 * - cgroup1: the same under the memory and cpu hierarchies of a v1 (or hybrid) host, which is
 *   what this project's CI machines have; the brief asked for v2 or prlimit, but a writable
 *   v1 tree limits both CPU and memory where prlimit limits only address space;
 * - prlimit: RLIMIT_AS for memory, CPU not limited (logged);
 * - none: nothing is limited (logged).
 * 'auto' takes the first of these that works on this host.
 */
export type LimitMode = 'auto' | 'cgroup2' | 'cgroup1' | 'prlimit' | 'none';

/** A job's cgroup directories (one for v2, one per controller for v1). */
export interface JobCgroup {
  kind: 'cgroup2' | 'cgroup1';
  dirs: string[];
  /**
   * The file that counts the CPU time of everything in the job (v2: cpu.stat, v1:
   * cpuacct.usage); absent on a v1 host without a writable cpuacct hierarchy.
   */
  cpuUsage?: string;
}

export interface JobLimits {
  /** The argv that runs `argv` inside the job's limits (exec, so the pid stays the job's). */
  wrap(argv: string[]): string[];
  cgroup?: JobCgroup;
}

const CFS_PERIOD_US = 100_000;
/*
 * The calls on a job's way in and out (its cgroup's directories, limits, OOM count, removal)
 * are synchronous: cgroupfs answers from the kernel's memory in microseconds, where each call
 * through libuv's thread pool costs a turn of the event loop (0.2 to 0.5 ms here), and a short
 * job makes a dozen of them. (Moving a process into a cgroup can take milliseconds; no agent
 * call does that: the guard or the job's trampoline does.)
 */
/**
 * Joins the cgroups given as arguments, then execs the job. sh only does the joining: the
 * command itself is exec'd as an argv, never parsed by a shell. A failed join aborts the job
 * rather than running it unlimited.
 */
const JOIN_SCRIPT =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || { echo "oswalk: cannot join cgroup $1" >&2; exit 125; }; shift; n=$((n-1)); done; exec "$@"';

export class Limiter {
  private constructor(
    readonly kind: Exclude<LimitMode, 'auto'>,
    private readonly root: string,
    private readonly log: Logger,
    private readonly prlimitPath?: string,
    /**
     * cgroup1: the hierarchy whose job cgroup counts the job's CPU time: cpu where cpuacct is
     * mounted with it, cpuacct where it is mounted apart (as on this project's CI machines),
     * none where no cpuacct hierarchy is writable.
     */
    private readonly v1Accounting?: 'cpu' | 'cpuacct',
  ) {}

  /** cgroup1: the hierarchies a job's cgroup is made in, memory first (oomKilled reads dirs[0]). */
  private get v1Controllers(): string[] {
    return this.v1Accounting === 'cpuacct' ? ['memory', 'cpu', 'cpuacct'] : ['memory', 'cpu'];
  }

  static async create(mode: LimitMode, root: string, log: Logger): Promise<Limiter> {
    const tries: Exclude<LimitMode, 'auto'>[] = mode === 'auto' ? ['cgroup2', 'cgroup1', 'prlimit', 'none'] : [mode];
    const reasons: string[] = [];
    for (const kind of tries) {
      try {
        const limiter = await Limiter.probe(kind, root, log);
        if (kind === 'prlimit' || kind === 'none') {
          log.warn({ limits: kind, cgroupsUnavailable: reasons }, kind === 'prlimit'
            ? 'process runtime: no writable cgroups, memory limited by prlimit (RLIMIT_AS), CPU is NOT limited'
            : 'process runtime: neither cgroups nor prlimit available, jobs run without CPU or memory limits');
        } else {
          log.info({ limits: kind, root }, 'process runtime: limiting jobs with cgroups');
        }
        return limiter;
      } catch (err) {
        if (mode !== 'auto') throw err;
        reasons.push(`${kind}: ${(err as Error).message}`);
      }
    }
    throw new Error(`no limit mode works: ${reasons.join('; ')}`);
  }

  private static async probe(kind: Exclude<LimitMode, 'auto'>, root: string, log: Logger): Promise<Limiter> {
    if (kind === 'cgroup2') {
      const controllers = (await readFile(join(root, 'cgroup.controllers'), 'utf8')).split(/\s+/);
      for (const c of ['memory', 'cpu']) {
        if (!controllers.includes(c)) throw new Error(`controller ${c} not available in ${root}`);
      }
      await enableV2(root, join(root, 'oswalk'));
      await probeDir(join(root, 'oswalk'));
    } else if (kind === 'cgroup1') {
      for (const c of ['memory', 'cpu']) {
        if (!existsSync(join(root, c, 'cgroup.procs'))) throw new Error(`no v1 ${c} hierarchy at ${join(root, c)}`);
        await probeDir(join(root, c, 'oswalk'));
      }
      if (existsSync(join(root, 'cpu', 'cpuacct.usage'))) return new Limiter(kind, root, log, undefined, 'cpu');
      // Without a cpuacct cgroup the job's CPU time is still read, from /proc (procfs.ts).
      const apart = existsSync(join(root, 'cpuacct', 'cpuacct.usage'))
        && await probeDir(join(root, 'cpuacct', 'oswalk')).then(() => true, (err: Error) => {
          log.warn({ err: err.message }, 'process runtime: the cpuacct hierarchy is not writable; jobs\' CPU time is read from /proc');
          return false;
        });
      return new Limiter(kind, root, log, undefined, apart ? 'cpuacct' : undefined);
    } else if (kind === 'prlimit') {
      const path = execFileSync('sh', ['-c', 'command -v prlimit'], { encoding: 'utf8' }).trim();
      if (!path) throw new Error('prlimit not found');
      return new Limiter(kind, root, log, path);
    }
    return new Limiter(kind, root, log);
  }

  /** Make the job's cgroup (if any) and return how to start the job inside its limits. */
  async forJob(spec: RunSpec): Promise<JobLimits> {
    const rel = join('oswalk', cgroupName(spec, spec.jobId, spec.attempt));
    if (this.kind === 'cgroup2') {
      const dir = join(this.root, rel);
      mkdirSync(dir, { recursive: true });
      if (spec.memoryBytes) writeFileSync(join(dir, 'memory.max'), String(spec.memoryBytes));
      if (spec.cpus) writeFileSync(join(dir, 'cpu.max'), `${Math.max(1000, Math.round(spec.cpus * CFS_PERIOD_US))} ${CFS_PERIOD_US}`);
      return cgroupLimits({ kind: 'cgroup2', dirs: [dir], cpuUsage: join(dir, 'cpu.stat') });
    }
    if (this.kind === 'cgroup1') {
      const dirs = this.v1Controllers.map((c) => join(this.root, c, rel));
      for (const d of dirs) mkdirSync(d, { recursive: true });
      return cgroupLimits(this.v1Limits(dirs, spec));
    }
    if (this.kind === 'prlimit' && spec.memoryBytes) {
      if (spec.cpus) this.log.warn({ jobId: spec.jobId, cpus: spec.cpus }, 'CPU limit not enforced: no cgroups on this node');
      const prlimit = this.prlimitPath!;
      const bytes = spec.memoryBytes;
      return { wrap: (argv) => [prlimit, `--as=${bytes}`, '--', ...argv] };
    }
    if (spec.cpus || spec.memoryBytes) {
      this.log.warn({ jobId: spec.jobId, cpus: spec.cpus, memoryBytes: spec.memoryBytes, limits: this.kind }, 'limits not enforced on this node');
    }
    return { wrap: (argv) => argv };
  }

  /**
   * A cgroup for a spare guard of the owner's (guard/oswalk-guard.c --spare), which joins it
   * ahead of its job; undefined where there is none to make. cgroup1 only: a spare's cgroup
   * becomes its job's by a rename, which cgroup v2 does not allow (there a spare has none and
   * its job is started the ordinary way).
   */
  async spareCgroup(owner: HostOwner, tag: string): Promise<JobCgroup | undefined> {
    if (this.kind !== 'cgroup1') return undefined;
    const dirs = this.v1Controllers.map((c) => join(this.root, c, 'oswalk', `${ownerPrefix(owner)}${SPARE_TAG}${safeName(tag)}`));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    return { kind: 'cgroup1', dirs };
  }

  /**
   * The job's limits in the spare cgroup its guard already joined (spareCgroup): renamed to the
   * job's cgroup name, so that everything that finds a job's cgroups by name (cleanup, the
   * runtime's records) finds this one, then limited as forJob limits. Without a spare cgroup,
   * forJob's limits where they need none (prlimit, none).
   */
  async adopt(spare: JobCgroup | undefined, spec: RunSpec): Promise<JobLimits> {
    if (!spare) {
      if (this.kind === 'cgroup1' || this.kind === 'cgroup2') throw new Error(`a spare guard without a cgroup cannot start a job under ${this.kind} limits`);
      return this.forJob(spec);
    }
    const name = cgroupName(spec, spec.jobId, spec.attempt);
    const dirs = spare.dirs.map((d) => join(d, '..', name));
    for (let i = 0; i < dirs.length; i++) renameSync(spare.dirs[i], dirs[i]);
    // Joined already: the job's command runs as it is.
    return { cgroup: this.v1Limits(dirs, spec), wrap: (argv) => argv };
  }

  /** Set the job's memory and CPU limits on its cgroup1 directories (v1Controllers' order). */
  private v1Limits(dirs: string[], spec: RunSpec): JobCgroup {
    const [mem, cpu] = dirs;
    if (spec.memoryBytes) writeFileSync(join(mem, 'memory.limit_in_bytes'), String(spec.memoryBytes));
    if (spec.cpus) {
      writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(spec.cpus * CFS_PERIOD_US))));
    }
    const acct = this.v1Accounting && dirs[this.v1Controllers.indexOf(this.v1Accounting)];
    return { kind: 'cgroup1', dirs, ...(acct ? { cpuUsage: join(acct, 'cpuacct.usage') } : {}) };
  }

  /** The job cgroups of the cluster's node on this host, whatever agent made them. */
  async nodeCgroups(owner: HostOwner): Promise<{ name: string; cgroup: JobCgroup }[]> {
    if (this.kind !== 'cgroup1' && this.kind !== 'cgroup2') return [];
    const parents = this.kind === 'cgroup2' ? [join(this.root, 'oswalk')] : this.v1Controllers.map((c) => join(this.root, c, 'oswalk'));
    const prefix = ownerPrefix(owner);
    const byName = new Map<string, string[]>();
    for (const parent of parents) {
      const names = await readdir(parent).catch(() => [] as string[]);
      for (const name of names.filter((n) => n.startsWith(prefix))) byName.set(name, [...(byName.get(name) ?? []), join(parent, name)]);
    }
    return [...byName].map(([name, dirs]) => ({ name, cgroup: { kind: this.kind as JobCgroup['kind'], dirs } }));
  }
}

/**
 * Flat under oswalk/, so nothing per node is left to tidy once its jobs are gone, and a job's
 * cgroups can be found from the cluster, node and job id alone (the attempt is the only
 * suffix). The cluster comes first: two clusters on one host may both have a node1.
 */
export function cgroupName(owner: HostOwner, jobId: string, attempt: number): string {
  return `${cgroupJobPrefix(owner, jobId)}${attempt}`;
}

export function cgroupJobPrefix(owner: HostOwner, jobId: string): string {
  return `${ownerPrefix(owner)}${safeName(jobId)}-`;
}

/** Starts a spare guard's cgroup name after its owner's prefix; no job id (hex) starts so. */
const SPARE_TAG = 'spare-';

/** Whether a cgroup name of nodeCgroups() is a spare guard's. */
export function isSpareCgroup(owner: HostOwner, name: string): boolean {
  return name.startsWith(`${ownerPrefix(owner)}${SPARE_TAG}`);
}

function ownerPrefix(owner: HostOwner): string {
  return `${safeName(owner.cluster)}.${safeName(owner.node)}.`;
}

function cgroupLimits(cgroup: JobCgroup): JobLimits {
  const procs = cgroup.dirs.map((d) => join(d, 'cgroup.procs'));
  return { cgroup, wrap: (argv) => ['/bin/sh', '-c', JOIN_SCRIPT, 'oswalk-job', String(procs.length), ...procs, ...argv] };
}

/** Turn on the memory and cpu controllers on every level from root down to (and in) dir. */
async function enableV2(root: string, dir: string): Promise<void> {
  let cur = root;
  for (const part of dir.slice(root.length).split('/').filter(Boolean)) {
    await writeFile(join(cur, 'cgroup.subtree_control'), '+memory +cpu').catch(() => {});
    cur = join(cur, part);
    await mkdir(cur, { recursive: true });
  }
  await writeFile(join(cur, 'cgroup.subtree_control'), '+memory +cpu');
}

async function probeDir(parent: string): Promise<void> {
  const probe = join(parent, `probe-${process.pid}`);
  await mkdir(probe, { recursive: true });
  await rmdir(probe);
}

/** Whether any process is still in the cgroup. */
export async function cgroupBusy(cg: JobCgroup): Promise<boolean> {
  for (const dir of cg.dirs) {
    const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    if (procs.trim()) return true;
  }
  return false;
}

/**
 * CPU seconds used so far by everything that ran in a job's cgroup, from its `cpuUsage` file,
 * or undefined once the cgroup is gone (the job is over). The cgroup2 reading is written to the
 * kernel's documentation but untested here: this project's machines run cgroup v1.
 */
export async function cgroupCpuSeconds(kind: JobCgroup['kind'], cpuUsage: string): Promise<number | undefined> {
  const text = await readFile(cpuUsage, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  if (kind === 'cgroup1') return Number(text) / 1e9;
  const usec = /^usage_usec (\d+)$/m.exec(text);
  return usec ? Number(usec[1]) / 1e6 : undefined;
}

/** Whether the kernel's OOM killer struck inside the job's cgroup. */
export async function oomKilled(cg: JobCgroup): Promise<boolean> {
  const file = cg.kind === 'cgroup2' ? join(cg.dirs[0], 'memory.events') : join(cg.dirs[0], 'memory.oom_control');
  try {
    const m = /oom_kill (\d+)/.exec(readFileSync(file, 'utf8'));
    return m !== null && Number(m[1]) > 0;
  } catch {
    return false;
  }
}

/**
 * Kill whatever still runs in the job's cgroups (a job is over when its main process is, as in
 * a container) and remove them. Processes leave a cgroup only once the kernel has finished
 * them, so the rmdir is retried for a short while.
 */
export async function destroyCgroup(cg: JobCgroup): Promise<void> {
  for (const dir of cg.dirs) {
    for (let i = 0; ; i++) {
      let pids: number[];
      try {
        pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        throw err;
      }
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      try {
        rmdirSync(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || i >= 100) throw new Error(`cannot remove cgroup ${dir}: ${(err as Error).message}`);
        // A process that has just exited leaves its cgroup a moment later (its exit is being
        // finished): retried after 1, 2, 4... ms, at most 20, so a job's end is not held back
        // a whole 20 ms for it (about every other short job here) and a busy one costs 2 s at most.
        await sleep(Math.min(20, 2 ** i));
      }
    }
  }
}
