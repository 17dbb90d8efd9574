import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';

export interface ProcStat {
  pid: number;
  state: string;
  pgrp: number;
  startTime: string;
  /** CPU time in clock ticks: its own (user and system) and that of the children it reaped. */
  cpuTicks: number;
}

/**
 * Clock ticks of /proc's CPU times. The kernel reports them in USER_HZ, which is 100 on every
 * architecture Linux exposes to user space this way (sysconf(_SC_CLK_TCK), out of Node's reach).
 */
const USER_HZ = 100;

/**
 * /proc/<pid>/stat of a live process, or undefined when it is gone. startTime (clock ticks
 * since boot) tells a process from a later one that reuses its pid.
 */
export async function procStat(pid: number): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseStat(pid, text);
}

/** procStat, read at once: /proc answers from the kernel's memory, for a look that must be of now. */
export function procStatNow(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseStat(pid, text);
}

function parseStat(pid: number, text: string): ProcStat {
  // comm (field 2) may hold spaces and parentheses: the fields we need follow its last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14-17: utime, stime, cutime, cstime.
  const cpuTicks = Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
  return { pid, state: rest[0], pgrp: Number(rest[2]), startTime: rest[19], cpuTicks };
}

/**
 * CPU seconds used by the process `pid` (while it is still the one that started at
 * `startTime`) and every process below it: each one's own time plus that of the children it
 * has reaped, which is where the time of a finished child goes. A parent is read before its
 * children, so a child reaped in between is missed once, never counted twice. What left the
 * tree (a daemon reparented to init) is not counted; a cgroup counts it (limits.ts).
 * Undefined when the process is gone.
 */
export async function treeCpuSeconds(pid: number, startTime: string): Promise<number | undefined> {
  const root = await procStat(pid);
  if (!root || root.startTime !== startTime) return undefined;
  let ticks = 0;
  const todo: ProcStat[] = [root];
  for (let st = todo.pop(); st; st = todo.pop()) {
    ticks += st.cpuTicks;
    // Each thread lists the children it forked.
    for (const task of await readdir(`/proc/${st.pid}/task`).catch(() => [] as string[])) {
      const children = await readFile(`/proc/${st.pid}/task/${task}/children`, 'utf8').catch(() => '');
      for (const child of children.split(' ').filter(Boolean)) {
        const cs = await procStat(Number(child));
        if (cs) todo.push(cs);
      }
    }
  }
  return ticks / USER_HZ;
}

/** Live (not zombie) processes whose process group is pgid. */
export async function groupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = await procStat(Number(name));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(st.pid);
  }
  return out;
}

/** Send a signal to a whole process group; a group already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
