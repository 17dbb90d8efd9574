/**
 * Placement as a pure function, after Nomad's scheduler: for each pending job (in queue
 * order: priority, then age) keep the feasible nodes — ready with the cluster filesystem
 * mounted, matching the nodeSelector and runtime (and, for a job naming no image, with a way to
 * run it: the process runtime or a default image), with free CPUs and memory — rank them and
 * take the best, then count the job's reservation against that node before looking at the
 * next job. A job that fits nowhere gets a reason a person can act on.
 *
 * Feasibility goes by reservations alone (a reservation is a promise: measured use never keeps
 * a job out), ranking by how busy a node's CPUs are (busyAfter()), less a bonus for holding the
 * job's input files (LOCALITY_WEIGHT).
 *
 * No I/O: the caller reads a snapshot and applies the plan with placeJobs(), which checks
 * again that each placement is still valid.
 *
 * The scheduler owns its model: the types below (SchedNode, SchedJob, GroupLimits and the
 * plan) are what it schedules and what it answers, and it imports nothing outside itself and
 * src/api (.dependency-cruiser.cjs). The control plane maps the state's records onto them
 * (src/controlplane/scheduler-loop.ts).
 */
import { NODE_NAME_LABEL } from '../api/nodes.js';

/** A node as the scheduler sees it: its capacity, what is reserved there and how busy it is. */
export interface SchedNode {
  name: string;
  status: 'ready' | 'down' | 'draining';
  labels: Record<string, string>;
  runtime: string;
  /**
   * A docker node's image for jobs that name none (its own, else the cluster's); a docker node
   * without one takes only jobs with an image.
   */
  defaultImage?: string;
  cpus: number;
  memoryBytes: number;
  /** Reserved by jobs already placed there. */
  allocated: { milliCpus: number; memoryBytes: number };
  /** 1-minute load average of its host. */
  load1: number;
  /** CPUs its running jobs used over the last few seconds, measured (0 when not measured). */
  usedCpus: number;
  /** The part of usedCpus its jobs burn beyond their own reservations, job by job. */
  burstCpus: number;
  /**
   * The kernel it runs on: nodes with the same one share CPUs and load average. Absent: a host
   * of its own.
   */
  host?: string;
  /**
   * Why the node's mount of the unified filesystem is down, if it is: jobs there would find
   * no /cluster (the path fails every write meanwhile), so the node takes none until it is up.
   */
  mountDown?: string;
}

/** A pending job as the scheduler sees it: what it needs of a node. */
export interface SchedJob {
  id: string;
  /** CPUs, in thousandths. */
  milliCpus: number;
  /** 0: no memory reservation. */
  memoryBytes: number;
  /** Higher first; jobs of equal priority keep their order in the snapshot (oldest first). */
  priority: number;
  /** Labels the node must carry (NODE_NAME_LABEL names the node itself). */
  nodeSelector: Record<string, string>;
  /** The runtime the node must run; absent: any. */
  runtime?: string;
  /** Absent: the job runs on a process node, or in a docker node's default image. */
  image?: string;
  /** The group whose limit in GroupLimits applies ('Job/<name>' for a Job manifest's records). */
  group?: string;
  /** The bytes of the files it reads, and how many of them each node holds in its store. */
  input?: { bytes: number; nodes: Record<string, number> };
}

/**
 * What holding all of a job's input is worth in the ranking, as a fraction of a node's CPUs: a
 * node with the data wins over one up to this much less busy (a quarter: half a CPU of a 2-CPU
 * node). Reading a file from a peer costs the network and the peer's disk; waiting behind other
 * jobs costs more, so a busier holder loses.
 */
export const LOCALITY_WEIGHT = 0.25;

/** The part of the job's input the node holds, weighted for the ranking. */
function localityBonus(node: string, job: SchedJob): number {
  if (!job.input?.bytes) return 0;
  return LOCALITY_WEIGHT * Math.min(1, (job.input.nodes[node] ?? 0) / job.input.bytes);
}

/**
 * How many feasible nodes a job is ranked on at most, besides those holding its input: in a
 * large cluster a job takes the best of these, not the best of all, as Nomad's scheduler ranks
 * a few feasible nodes (its LimitIterator), so that a placement costs O(MAX_RANKED), not
 * O(nodes): with 1000 nodes, ranking all of them was 0.5 ms of the control plane per job. With
 * this many feasible nodes or fewer every one is ranked, as before. spread looks from a node
 * picked by a hash of the job's id (successive jobs look at different nodes, and all of them
 * get work); binpack from the first node by name (the same nodes fill first).
 */
export const MAX_RANKED = 16;

/** FNV-1a of the job's id: where a spread job starts looking, the same for the same job. */
function startOf(id: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

/** Per group: how many of its jobs may be placed at once (0: no limit) and how many are. */
export type GroupLimits = Record<string, { limit: number; active: number }>;

export type Strategy = 'spread' | 'binpack';

export interface Placement {
  jobId: string;
  node: string;
}
export interface Waiting {
  jobId: string;
  reason: string;
}
export interface SchedulePlan {
  placements: Placement[];
  waiting: Waiting[];
  /**
   * The nodes and groups with this plan's placements counted in: what a further part of the
   * queue is scheduled against, so that the caller never counts a placement a second time.
   */
  left: { nodes: SchedNode[]; groups: GroupLimits };
}

/** CPUs as a wait reason says them: 1 CPU, 2.5 CPUs. */
function cpusText(milli: number): string {
  const n = milli / 1000;
  return `${Number.isInteger(n) ? n : n.toFixed(2).replace(/0+$/, '')} CPU${n === 1 ? '' : 's'}`;
}

/** Memory as a wait reason says it: 512 MiB, 1.5 GiB (the CLI's tables have their own, tighter form). */
function bytesText(b: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = b;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

function selectorText(sel: Record<string, string>): string {
  return Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');
}

function matches(node: SchedNode, sel: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel)) {
    const have = k === NODE_NAME_LABEL ? node.name : node.labels[k];
    if (have !== v) return false;
  }
  return true;
}

/** Whether the node can run the job at all: its runtime, and an image for a docker node. */
function runs(node: SchedNode, job: SchedJob): boolean {
  if (job.runtime && node.runtime !== job.runtime) return false;
  return !!job.image || node.runtime !== 'docker' || !!node.defaultImage;
}

interface Free {
  node: SchedNode;
  capMilli: number;
  freeMilli: number;
  freeMem: number;
}

function memFillAfter(f: Free, job: SchedJob): number {
  return f.node.memoryBytes > 0 ? (f.node.memoryBytes - f.freeMem + job.memoryBytes) / f.node.memoryBytes : 0;
}

/** Fraction of the node reserved once `job` is added (the larger of CPU and memory): what binpack packs. */
function fillAfter(f: Free, job: SchedJob): number {
  return Math.max((f.capMilli - f.freeMilli + job.milliCpus) / f.capMilli, memFillAfter(f, job));
}

/**
 * How busy the node is once `job` is added, as a fraction (the larger of CPU and memory): the
 * spread ranking, so that a job goes where it will run soonest. Its CPUs count everything
 * reserved there (this pass's placements too), what its jobs burn beyond their reservations
 * (measured), and `hostLoad`, its host's work that no job of the cluster explains.
 */
function busyAfter(f: Free, job: SchedJob, hostLoad: number): number {
  const cpus = (f.capMilli - f.freeMilli + job.milliCpus) / 1000 + f.node.burstCpus + hostLoad;
  return Math.max(cpus / (f.capMilli / 1000), memFillAfter(f, job));
}

/**
 * Per node, the CPUs its host is busy with beyond what the jobs of all its nodes use: the load
 * average less their measured use, at least 0. That is work the cluster did not place (other
 * programs, an agent translating files), and it slows a job on any node of that host alike. The
 * nodes of one host (oswalk up, agents in containers) share one load average that counts every
 * node's jobs: subtracting only a node's own would leave the others' in it, and a busy node and
 * an idle one on that host would look the same.
 */
function hostLoads(nodes: SchedNode[]): Map<string, number> {
  const hostOf = (n: SchedNode) => n.host ?? `node ${n.name}`;
  const hosts = new Map<string, { load1: number; used: number }>();
  for (const n of nodes) {
    // A down node's last report is stale.
    if (n.status === 'down') continue;
    const h = hosts.get(hostOf(n)) ?? { load1: 0, used: 0 };
    h.load1 = Math.max(h.load1, n.load1);
    h.used += n.usedCpus;
    hosts.set(hostOf(n), h);
  }
  return new Map(nodes.map((n) => {
    const h = hosts.get(hostOf(n));
    return [n.name, h ? Math.max(0, h.load1 - h.used) : 0];
  }));
}

/** Lexicographic: negative when score a ranks before b. */
function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

function countBy(nodes: SchedNode[]): string {
  const down = nodes.filter((n) => n.status === 'down').length;
  const draining = nodes.filter((n) => n.status === 'draining').length;
  return [down ? `${down} down` : '', draining ? `${draining} draining` : ''].filter(Boolean).join(', ');
}

/** Why no node can take the job, checking the constraints in the order a person fixes them. */
function whyNot(job: SchedJob, nodes: SchedNode[], free: Map<string, Free>): string {
  if (!nodes.length) return 'no node has joined the cluster';
  const sel = Object.keys(job.nodeSelector).length ? job.nodeSelector : undefined;
  const selected = sel ? nodes.filter((n) => matches(n, sel)) : nodes;
  if (!selected.length) return `no node matches nodeSelector ${selectorText(sel!)}`;
  const ready = selected.filter((n) => n.status === 'ready');
  if (!ready.length) {
    return `no ${sel ? 'matching ' : ''}node is ready (${countBy(selected)})`;
  }
  const mounted = ready.filter((n) => !n.mountDown);
  if (!mounted.length) {
    const why = ready.slice(0, 3).map((n) => `${n.name}: ${n.mountDown}`).join('; ');
    return `no ready ${sel ? 'matching ' : ''}node has the cluster filesystem mounted (${why}${ready.length > 3 ? '; …' : ''})`;
  }
  const withMount = mounted.length < ready.length ? ' with the cluster filesystem mounted' : '';
  const ofRuntime = job.runtime ? mounted.filter((n) => n.runtime === job.runtime) : mounted;
  if (!ofRuntime.length) return `no ready ${sel ? 'matching ' : ''}node${withMount} runs the ${job.runtime} runtime`;
  const rt = ofRuntime.filter((n) => runs(n, job));
  if (!rt.length) {
    // Only docker nodes without a default image are left.
    const fix = 'set the job\'s image (--image, spec.image), or give the docker nodes a default one (oswalk agent or oswalk control-plane --default-image)';
    return job.runtime
      ? `names no image, and no ready ${sel ? 'matching ' : ''}docker node${withMount} has a default image: ${fix}`
      : `names no image, and no ready ${sel ? 'matching ' : ''}node${withMount} runs the process runtime or has a default image: ${fix}`;
  }
  const constrained = sel || job.runtime || rt.length < mounted.length;
  const which = constrained ? 'largest matching node' : 'largest node';
  const maxCpu = Math.max(...rt.map((n) => Math.round(n.cpus * 1000)));
  if (job.milliCpus > maxCpu) return `needs ${cpusText(job.milliCpus)}; the ${which} has ${cpusText(maxCpu)}`;
  const maxMem = Math.max(...rt.map((n) => n.memoryBytes));
  if (job.memoryBytes > maxMem) return `needs ${bytesText(job.memoryBytes)} of memory; the ${which} has ${bytesText(maxMem)}`;
  const roomiest = rt.map((n) => free.get(n.name)!).sort((a, b) => b.freeMilli - a.freeMilli || a.node.name.localeCompare(b.node.name))[0];
  const needs = job.memoryBytes ? `${cpusText(job.milliCpus)} and ${bytesText(job.memoryBytes)}` : cpusText(job.milliCpus);
  const most = `most free: ${roomiest.node.name} with ${cpusText(roomiest.freeMilli)}${job.memoryBytes ? ` and ${bytesText(roomiest.freeMem)}` : ''}`;
  return `all ${constrained ? 'matching ' : ''}nodes are full (needs ${needs}; ${most})`;
}

export function schedule(snapshot: { nodes: SchedNode[]; pending: SchedJob[]; groups?: GroupLimits }, strategy: Strategy = 'spread'): SchedulePlan {
  const active = new Map(Object.entries(snapshot.groups ?? {}).map(([g, v]) => [g, { ...v }]));
  const free = new Map<string, Free>();
  for (const n of snapshot.nodes) {
    const capMilli = Math.round(n.cpus * 1000);
    free.set(n.name, {
      node: n,
      capMilli,
      freeMilli: capMilli - n.allocated.milliCpus,
      freeMem: n.memoryBytes - n.allocated.memoryBytes,
    });
  }
  const ready = snapshot.nodes.filter((n) => n.status === 'ready' && !n.mountDown);
  const readyByName = new Map(ready.map((n) => [n.name, n]));
  const hostLoad = hostLoads(snapshot.nodes);
  // Stable: equal priorities keep the snapshot's (age) order.
  const jobs = [...snapshot.pending].sort((a, b) => b.priority - a.priority);
  const plan: Omit<SchedulePlan, 'left'> = { placements: [], waiting: [] };
  // Free capacity only shrinks during a pass, so a job shape that fitted nowhere still fits
  // nowhere: a long queue of identical jobs behind a full cluster costs one check each.
  const noFit = new Map<string, string>();
  for (const job of jobs) {
    const group = job.group ? active.get(job.group) : undefined;
    if (group && group.limit > 0 && group.active >= group.limit) {
      plan.waiting.push({ jobId: job.id, reason: `${job.group} runs ${group.limit} at a time (its parallelism)` });
      continue;
    }
    const shape = `${job.milliCpus}|${job.memoryBytes}|${job.runtime ?? ''}|${job.image ? 'image' : ''}|${selectorText(job.nodeSelector)}`;
    const known = noFit.get(shape);
    if (known !== undefined) {
      plan.waiting.push({ jobId: job.id, reason: known });
      continue;
    }
    let best: Free | undefined;
    let bestScore: number[] = [];
    /** Ranks node n for the job if it can take it; returns whether it could. */
    const rank = (n: SchedNode): boolean => {
      if (!runs(n, job)) return false;
      if (!matches(n, job.nodeSelector)) return false;
      const f = free.get(n.name)!;
      if (f.freeMilli < job.milliCpus || f.freeMem < job.memoryBytes) return false;
      // spread: the least busy node; binpack: the fullest by reservations that still fits (it
      // keeps whole nodes free for big jobs), the least busy of equally full ones. Either way a
      // node holding the job's input counts as that much less busy.
      const busy = busyAfter(f, job, hostLoad.get(n.name)!) - localityBonus(n.name, job);
      const score = strategy === 'spread' ? [busy] : [-fillAfter(f, job), busy];
      const order = best ? compareScores(score, bestScore) : -1;
      if (order < 0 || (order === 0 && n.name < best!.node.name)) {
        best = f;
        bestScore = score;
      }
      return true;
    };
    const holders = job.input?.bytes ? Object.keys(job.input.nodes).filter((h) => readyByName.has(h)) : [];
    for (const h of holders) rank(readyByName.get(h)!);
    const from = strategy === 'spread' && ready.length ? startOf(job.id, ready.length) : 0;
    for (let k = 0, ranked = 0; k < ready.length && ranked < MAX_RANKED; k++) {
      const n = ready[(from + k) % ready.length];
      if (!holders.includes(n.name) && rank(n)) ranked++;
    }
    if (best) {
      best.freeMilli -= job.milliCpus;
      best.freeMem -= job.memoryBytes;
      plan.placements.push({ jobId: job.id, node: best.node.name });
      if (group) group.active++;
    } else {
      const reason = whyNot(job, snapshot.nodes, free);
      noFit.set(shape, reason);
      plan.waiting.push({ jobId: job.id, reason });
    }
  }
  const nodes = snapshot.nodes.map((n) => {
    const f = free.get(n.name)!;
    return { ...n, allocated: { milliCpus: f.capMilli - f.freeMilli, memoryBytes: n.memoryBytes - f.freeMem } };
  });
  return { ...plan, left: { nodes, groups: Object.fromEntries(active) } };
}
