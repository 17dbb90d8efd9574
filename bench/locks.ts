/**
 * What cluster-wide locks cost (issue 25), on a real cluster of this machine: redis-server, two
 * control planes and three agents as processes, each with its FUSE mount (test/faults/cluster.ts).
 * Through a mount every lock and unlock is a round trip from the mount's FS process to the lock
 * table in Redis; a grant also re-reads the file's metadata (an unlock would first commit unwritten
 * changes: nothing is written here, so none are).
 *
 *  - Uncontended: one python3 process per measurement (its start is not timed) takes and drops
 *    a lock N times in a row, fcntl.lockf (POSIX record locks, F_SETLKW/F_UNLCK) and fcntl.flock
 *    (LOCK_EX/LOCK_UN), on a file of the local disk and on one of node1's mount; pairs per
 *    second, best of 3 rounds, the local disk and the mount interleaved.
 *  - Contended hand-off: two python3 processes, one on node1's mount and one on node2's, pass a
 *    lockf lock of byte 0 of one file back and forth. The time measured runs from just before
 *    the holder's unlock call to just after the waiter's lock call returns (time.time_ns() in
 *    each, both this machine's CLOCK_REALTIME), the waiter being queued in the lock table before
 *    the holder lets go; p50, p99 and max of 200 hand-offs, against the same between two
 *    processes on the local disk.
 *
 * Run as root on a quiet machine: node dist/bench/locks.js
 * LOCKS_BENCH_QUICK=1: a few iterations and one round, to see that it works; prints its tables
 * and leaves BENCHMARKS.md alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultCluster, sleep, until } from '../test/faults/cluster.js';
import { sh } from './overlay-common.js';
import { table, writeSection } from './report.js';

const QUICK = !!process.env.LOCKS_BENCH_QUICK;
const ROUNDS = QUICK ? 1 : 3;
/** Lock/unlock pairs per measurement: a pair through the mount costs ~1000× one on the local disk. */
const PAIRS = { local: QUICK ? 20_000 : 200_000, mount: QUICK ? 200 : 2000 };
const HANDOFFS = QUICK ? 20 : 200;
/** Hand-offs done first and not counted (connections, caches and the JIT of the FS processes warm up). */
const WARMUP = 4;
/**
 * Once the waiter is seen queued, how long the holder still holds: the FS process learns that its
 * request was queued when Redis' answer reaches it, a moment after Redis has it; a wake published
 * in between would find no queued wait yet (the FS process asks again on its one-second timer). A
 * waiter in a real hand-off has been waiting for longer than that.
 */
const SETTLE_MS = 5;

/** The uncontended loop: one warm-up pair, then N pairs timed; prints the seconds they took. */
const UNCONTENDED = String.raw`
import fcntl, os, sys, time
path, n, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
lock = fcntl.lockf if how == 'lockf' else fcntl.flock
lock(fd, fcntl.LOCK_EX); lock(fd, fcntl.LOCK_UN)
t0 = time.perf_counter()
for _ in range(n):
    lock(fd, fcntl.LOCK_EX)
    lock(fd, fcntl.LOCK_UN)
print(time.perf_counter() - t0)
`;

/**
 * One side of the hand-off, driven by the bench one line at a time on stdin, so that the two
 * sides stay in step without a lock of their own: 'lock' says 'waiting', then waits for byte 0
 * (F_SETLKW) and says 'granted <ns>' with the time right after; 'unlock' takes the time, lets go
 * of byte 0 and says 'unlocked <ns>' with the time from before.
 */
const HANDOFF = String.raw`
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
while True:
    cmd = sys.stdin.readline().strip()
    if not cmd:
        break
    if cmd == 'lock':
        print('waiting', flush=True)
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
        t = time.time_ns()
        print('granted', t, flush=True)
    elif cmd == 'unlock':
        t = time.time_ns()
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
        print('unlocked', t, flush=True)
`;

/** A python3 process fed lines on stdin, whose stdout is read line by line. */
class Py {
  readonly proc: ChildProcess;
  private lines: string[] = [];
  private buf = '';
  /** Called on new output or exit: ends next()'s wait. */
  private wakeup: () => void = () => undefined;

  constructor(args: string[]) {
    this.proc = spawn('python3', args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      const parts = this.buf.split('\n');
      this.buf = parts.pop()!;
      this.lines.push(...parts);
      this.wakeup();
    });
    this.proc.on('exit', () => this.wakeup());
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /** The next line, which must begin with `word`: the rest of its fields. */
  async next(word: string, ms = 30_000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (!this.lines.length) {
      if (this.exited) throw new Error(`python ${this.proc.pid} exited before saying '${word}'`);
      if (Date.now() > deadline) throw new Error(`python ${this.proc.pid} did not say '${word}' in ${ms} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 100);
        this.wakeup = () => {
          clearTimeout(t);
          res();
        };
      });
    }
    const line = this.lines.shift()!;
    const [w, ...rest] = line.split(' ');
    if (w !== word) throw new Error(`python ${this.proc.pid} said '${line}', not '${word} …'`);
    return rest;
  }

  /** Closes its stdin (it exits, letting go of its locks) and waits for it. */
  async end(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((res) => this.proc.once('exit', res));
    this.proc.stdin!.end();
    await exited;
  }
}

/**
 * `n` hand-offs of byte 0 between a and b (after WARMUP more): nanoseconds from the holder's
 * unlock call to the waiter's grant, each. `queued(w)` tells when w's wait is known to be queued
 * behind the holder's lock, so that the holder lets go only then and every hand-off is one.
 */
async function handoffs(a: Py, b: Py, n: number, queued: (waiter: Py) => Promise<boolean>): Promise<number[]> {
  a.send('lock'); // uncontended: the first holder
  await a.next('waiting');
  await a.next('granted');
  let [holder, waiter] = [a, b];
  const ns: number[] = [];
  for (let i = 0; i < WARMUP + n; i++) {
    waiter.send('lock');
    await waiter.next('waiting');
    await until(`python ${waiter.proc.pid}'s wait to be queued`, () => queued(waiter), 10_000, 1);
    await sleep(SETTLE_MS);
    holder.send('unlock');
    const [t0] = await holder.next('unlocked');
    const [t1] = await waiter.next('granted');
    if (i >= WARMUP) ns.push(Number(BigInt(t1) - BigInt(t0)));
    [holder, waiter] = [waiter, holder];
  }
  holder.send('unlock');
  await holder.next('unlocked');
  return ns;
}

/** Nearest-rank percentile (p in 0..100) of xs. */
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

/** A duration in nanoseconds, in µs below a millisecond and in ms above. */
const dur = (ns: number) => (ns < 1e6 ? `${(ns / 1e3).toFixed(1)} µs` : `${(ns / 1e6).toFixed(2)} ms`);
/** A share, with two significant digits below 10 %. */
const share = (x: number) => {
  const p = x * 100;
  return `${p >= 10 ? p.toFixed(0) : p.toPrecision(2)} %`;
};

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-bench-locks-'));
  const c = new FaultCluster({ root, prefix: '{bench-locks}:', nodeTimeoutMs: 3000, nodes: ['node1', 'node2', 'node3'], nsNode: 'node3' });
  const pys: Py[] = [];
  const py = (script: string, path: string) => {
    const p = new Py([script, path]);
    pys.push(p);
    return p;
  };
  try {
    const uncontended = join(root, 'uncontended.py');
    const handoff = join(root, 'handoff.py');
    writeFileSync(uncontended, UNCONTENDED);
    writeFileSync(handoff, HANDOFF);
    await c.start();
    const m1 = c.agents.get('node1')!.mount;
    const m2 = c.agents.get('node2')!.mount;
    const local = join(root, 'local');
    await sh(`mkdir -p ${local} ${m1}/locks && touch ${local}/uncontended ${local}/handoff ${m1}/locks/uncontended ${m1}/locks/handoff`);
    const fstype = (await sh(`findmnt -n -o FSTYPE --target ${local}`)).trim();
    // node2 opens the file node1 made: it must see it first, or its open would make another.
    await until('locks/handoff on node2\'s mount', async () => {
      try {
        return statSync(join(m2, 'locks', 'handoff')).isFile();
      } catch {
        return false;
      }
    }, 30_000, 100);

    // 1. Uncontended: seconds per measurement, by where and how.
    const kinds = ['lockf', 'flock'] as const;
    const where = { local: `${local}/uncontended`, mount: `${m1}/locks/uncontended` };
    const secs: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const how of kinds) {
        for (const w of ['local', 'mount'] as const) {
          const s = Number(await sh(`python3 ${uncontended} ${where[w]} ${PAIRS[w]} ${how}`));
          (secs[`${how} ${w}`] ??= []).push(s);
        }
        console.log(`round ${r + 1} ${how}: local ${(PAIRS.local / secs[`${how} local`][r]).toFixed(0)} pairs/s, mount ${(PAIRS.mount / secs[`${how} mount`][r]).toFixed(0)} pairs/s`);
      }
    }
    const rate = (how: string, w: 'local' | 'mount') => PAIRS[w] / Math.min(...secs[`${how} ${w}`]);
    const rounds = (how: string, w: 'local' | 'mount') => secs[`${how} ${w}`].map((s) => (PAIRS[w] / s).toFixed(0)).join(', ');

    // 2. Hand-offs, first between two processes on the local disk: a wait is queued once the
    // kernel lists it as blocked ("->") in /proc/locks.
    const ino = statSync(`${local}/handoff`).ino;
    const blockedLocally = async (w: Py) => readFileSync('/proc/locks', 'utf8').split('\n').some((l) => {
      const m = /->\s+POSIX\s+\S+\s+WRITE\s+(\d+)\s+\S+:(\d+)\s/.exec(l);
      return !!m && Number(m[1]) === w.proc.pid && Number(m[2]) === ino;
    });
    const localNs = await handoffs(py(handoff, `${local}/handoff`), py(handoff, `${local}/handoff`), HANDOFFS, blockedLocally);
    console.log(`local hand-off: p50 ${dur(percentile(localNs, 50))}, p99 ${dur(percentile(localNs, 99))}`);

    // Then between node1 and node2: a wait is queued once the lock table names its owner among
    // the POSIX waiters (lk:pw); owners are `<session>/<kernel owner>`, a session `<node>:<id>`.
    const a = py(handoff, `${m1}/locks/handoff`);
    const b = py(handoff, `${m2}/locks/handoff`);
    const nodeOf = new Map([[a, 'node1'], [b, 'node2']]);
    const queuedInTable = async (w: Py) => (await c.fsConn.hkeys(c.fsKs.posixWaiting)).some((o) => o.startsWith(`${nodeOf.get(w)}:`));
    const mountNs = await handoffs(a, b, HANDOFFS, queuedInTable);
    console.log(`node1 ⇄ node2 hand-off: p50 ${dur(percentile(mountNs, 50))}, p99 ${dur(percentile(mountNs, 99))}`);
    for (const p of pys) await p.end();

    const perPair = (how: string, w: 'local' | 'mount') => dur(1e9 / rate(how, w));
    const stats = (ns: number[]) => [dur(percentile(ns, 50)), dur(percentile(ns, 99)), dur(Math.max(...ns))];
    const body = [
      table([`uncontended lock + unlock, one process, best of ${ROUNDS}`, `local disk (${fstype})`, 'node1\'s mount', 'mount/local'], kinds.map((how) => [
        `${how === 'lockf' ? 'fcntl.lockf (POSIX record lock, whole file)' : 'fcntl.flock'}`,
        `${rate(how, 'local').toFixed(0)} pairs/s, ${perPair(how, 'local')} each (rounds: ${rounds(how, 'local')}; ${PAIRS.local} pairs a round)`,
        `${rate(how, 'mount').toFixed(0)} pairs/s, ${perPair(how, 'mount')} each (rounds: ${rounds(how, 'mount')}; ${PAIRS.mount} pairs a round)`,
        share(rate(how, 'mount') / rate(how, 'local')),
      ])),
      '',
      table([`hand-off of a lockf lock (byte 0): holder's unlock call → waiter's grant, ${HANDOFFS} hand-offs`, 'p50', 'p99', 'max'], [
        ['two processes on the local disk', ...stats(localNs)],
        ['node1\'s mount → node2\'s and back (alternating)', ...stats(mountNs)],
      ]),
      '',
      whatThisMeans({
        lockfPair: 1e9 / rate('lockf', 'mount'), flockPair: 1e9 / rate('flock', 'mount'),
        lockfLocal: 1e9 / rate('lockf', 'local'), flockLocal: 1e9 / rate('flock', 'local'),
        mountRate: Math.max(rate('lockf', 'mount'), rate('flock', 'mount')), localNs, mountNs,
      }),
    ].join('\n');
    if (QUICK) console.log(`\nLOCKS_BENCH_QUICK: BENCHMARKS.md left alone; the section would read:\n\n${body}`);
    else writeSection('locks', 'Locks: cluster-wide flock and fcntl', 'node dist/bench/locks.js', body);
  } finally {
    for (const p of pys) if (!p.exited) p.proc.kill('SIGKILL');
    await c.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The paragraph under the tables, every number in it from this run. */
function whatThisMeans(m: { lockfPair: number; flockPair: number; lockfLocal: number; flockLocal: number; mountRate: number; localNs: number[]; mountNs: number[] }): string {
  const times = (x: number, y: number) => `${Math.round(x / y)}×`;
  const p50 = percentile(m.mountNs, 50);
  const slow = m.mountNs.filter((ns) => ns >= 0.9e9).length;
  return [
    `What this means: a lock and an unlock through a mount take ${dur(m.lockfPair)} (lockf) and ${dur(m.flockPair)} (flock) against ${dur(m.lockfLocal)} and ${dur(m.flockLocal)} on the local disk,`,
    `${times(m.lockfPair, m.lockfLocal)} and ${times(m.flockPair, m.flockLocal)} as long: on the local disk a lock is a kernel call; through the mount the lock and the unlock are each a FUSE request and a round trip from the FS process to the lock table in Redis, and the lock also re-reads the file's metadata.`,
    `One process taking and dropping a lock on one file in a loop does so up to ${m.mountRate.toFixed(0)} times a second through the mount.`,
    `A lock passed from a process on node1 to one waiting on node2 (or back) reaches the waiter ${dur(p50)} after the holder's unlock call at the median (${dur(percentile(m.mountNs, 99))} at p99),`,
    `${times(p50, percentile(m.localNs, 50))} the ${dur(percentile(m.localNs, 50))} of a hand-off between two processes on the local disk: the unlock goes to Redis, which publishes a wake to the waiting node's FS process, which asks for the lock again and re-reads the file's metadata before the kernel lets the waiter go;`,
    `that is ${(p50 / m.lockfPair).toFixed(1)} times an uncontended lock-and-unlock pair through the mount.`,
    slow
      ? `${slow} of ${m.mountNs.length} hand-offs took 0.9 s or more: the FS process asks its queued waits again every second, so a hand-off of about a second is a wake that did not find the wait.`
      : `No hand-off took 0.9 s or more (the FS process asks its queued waits again every second, which would catch a wake that missed).`,
    `Three agents and Redis share this machine's ${cpus().length} cores, so a hand-off here also waits for CPU that separate machines would give it, and its round trips to Redis go over loopback, not a network.`,
  ].join(' ');
}

await main();
