/**
 * What copies cost (issue 26), on a real cluster of this machine: redis-server, control planes
 * and three agents as processes, each with its FUSE mount (test/faults/cluster.ts).
 *
 *  - Write: `dd bs=1M` of a file from memory into node1's mount under prefixes whose rules ask
 *    for 1, 2 and 3 copies (the time includes the close, which returns once every copy is on
 *    its node), rounds interleaved with each other and with a raw-disk write (conv=fsync).
 *  - Re-replication: 1 GiB in 16 files with 2 copies; the second holder's agent and FS process
 *    SIGKILLed; the times until the node is marked down and until every file is on two live
 *    nodes again (grace 0, no rate limit; the replication pass runs every 15 s).
 *
 * Run as root on a quiet machine: node dist/bench/copies.js
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyMount, FaultCluster, until } from '../test/faults/cluster.js';
import { getCurrent } from '../src/state/fs.js';
import { chunkListLocations } from '../src/packetfs/index.js';
import { sh, timed, mbps, pct } from './overlay-common.js';
import { table, writeSection } from './report.js';

const SIZE = 512 * 2 ** 20;
const TICK = 100; // clock ticks per second (getconf CLK_TCK on Linux)

/** CPU seconds a process has used so far (user + system). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICK;
}
const ROUNDS = 3;
const RR_FILES = 16;
const RR_SIZE = 64 * 2 ** 20;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const perGiB = (s: number) => `${((s * 2 ** 30) / SIZE).toFixed(2)}`;

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-bench-copies-'));
  const c = new FaultCluster({ root, prefix: '{bench-copies}:', nodeTimeoutMs: 3000, nodes: ['node1', 'node2', 'node3'], nsNode: 'node3' });
  const mems = Array.from({ length: ROUNDS * 3 }, (_, i) => `/dev/shm/oswalk-bench-copies-${process.pid}-${i}.bin`);
  try {
    await c.start();
    await applyMount(c, '{path: /cluster, copies: 1, rereplicateAfterSeconds: 0, rereplicateRate: 0, replication: [{prefix: c2/, copies: 2}, {prefix: c3/, copies: 3}, {prefix: rr/, copies: 2}]}');
    const m1 = c.agents.get('node1')!.mount;
    const raw = join(root, 'raw');
    await sh(`mkdir -p ${raw} ${m1}/c1 ${m1}/c2 ${m1}/c3 ${m1}/rr`);
    // New data every write, so that no write finds its chunks already stored by an earlier one.
    await sh(`for f in ${mems.join(' ')}; do head -c ${SIZE} /dev/urandom > $f; done`);

    const t: Record<string, number[]> = { raw: [], c1: [], c2: [], c3: [] };
    // CPU seconds per write: node1's FS process (the writer's side of a copy) and the other two
    // agents (the receiving side), to tell what a copy costs the writer from what it costs the peers.
    const cpu: Record<string, { writer: number[]; peers: number[] }> = { c1: { writer: [], peers: [] }, c2: { writer: [], peers: [] }, c3: { writer: [], peers: [] } };
    const writerPid = (await c.agents.get("node1")!.fsPid())!;
    const peerPids = ['node2', 'node3'].map((n) => c.agents.get(n)!.proc!.pid);
    const peerCpu = () => peerPids.reduce((x, p) => x + cpuSeconds(p), 0);
    const cpuPer = (k: string) => perGiB(median(cpu[k].writer));
    const cpuTotal = (k: string) => perGiB(median(cpu[k].writer) + median(cpu[k].peers));
    for (let r = 0; r < ROUNDS; r++) {
      t.raw.push(await timed(`dd if=${mems[r * 3]} of=${raw}/w.bin bs=1M conv=fsync status=none`));
      await sh(`rm -f ${raw}/w.bin && sync`);
      for (const [i, k] of (['c1', 'c2', 'c3'] as const).entries()) {
        const [w0, p0] = [cpuSeconds(writerPid), peerCpu()];
        t[k].push(await timed(`dd if=${mems[r * 3 + i]} of=${m1}/${k}/w${r}.bin bs=1M status=none`));
        cpu[k].writer.push(cpuSeconds(writerPid) - w0);
        cpu[k].peers.push(peerCpu() - p0);
        await sh('sync');
      }
      console.log(`round ${r + 1}: raw ${mbps(SIZE, t.raw[r])}, 1 copy ${mbps(SIZE, t.c1[r])}, 2 copies ${mbps(SIZE, t.c2[r])}, 3 copies ${mbps(SIZE, t.c3[r])}`);
    }
    const best = (k: string) => Math.min(...t[k]);
    const rounds = (k: string) => t[k].map((s) => mbps(SIZE, s).replace(' MB/s', '')).join(', ');
    for (const [i, k] of (['c1', 'c2', 'c3'] as const).entries()) {
      const v = await getCurrent(c.fsConn, c.fsKs, `/${k}/w0.bin`);
      const holders = await chunkListLocations(c.fsConn, c.fsKs, v!.chunkListHash!);
      if (holders.length !== i + 1) throw new Error(`/${k}/w0.bin is on ${holders.length} nodes, not ${i + 1}`);
    }

    // Re-replication of 1 GiB: 64 MiB files written until node2 holds 16 of them (which node
    // takes a file's second copy is the rendezvous ranking's choice), then node2 is lost.
    const victim = 'node2';
    const chunkListHashes: string[] = [];
    const firstHolders: string[][] = [];
    const count = (n: string) => firstHolders.filter((h) => h.includes(n)).length;
    for (let i = 0; count(victim) < RR_FILES; i++) {
      if (i >= 4 * RR_FILES) throw new Error(`${victim} took only ${count(victim)} of ${i} files`);
      await sh(`head -c ${RR_SIZE} /dev/urandom > ${m1}/rr/f${i}`);
      const m = (await getCurrent(c.fsConn, c.fsKs, `/rr/f${i}`))!.chunkListHash!;
      chunkListHashes.push(m);
      firstHolders.push(await chunkListLocations(c.fsConn, c.fsKs, m));
    }
    const lostBytes = count(victim) * RR_SIZE;
    const a = c.agents.get(victim)!;
    const fsPid = await a.fsPid();
    const t0 = Date.now();
    if (fsPid) process.kill(fsPid, 'SIGKILL');
    await a.proc!.kill();
    await until(`${victim} marked down`, async () => (await c.node(victim))?.status === 'down', 30_000, 100);
    const down = Date.now();
    let firstCopy = 0;
    await until('every file on two live nodes', async () => {
      let ok = 0;
      for (const m of chunkListHashes) {
        const h = (await chunkListLocations(c.fsConn, c.fsKs, m)).filter((n) => n !== victim);
        if (h.length >= 2) ok++;
      }
      if (ok > chunkListHashes.length - count(victim) && !firstCopy) firstCopy = Date.now();
      return ok === chunkListHashes.length;
    }, 300_000, 100);
    const done = Date.now();
    const copying = (done - (firstCopy || done)) / 1000;

    const body = [
      table(['write of 512 MiB into node1\'s mount (incl. close), best of 3', 'raw disk (dd conv=fsync)', 'through the mount', 'against 1 copy', 'goal'], [
        ['1 copy', `${mbps(SIZE, best('raw'))} (rounds: ${rounds('raw')})`, `${mbps(SIZE, best('c1'))} (rounds: ${rounds('c1')})`, '100 %', ''],
        ['2 copies', '', `${mbps(SIZE, best('c2'))} (rounds: ${rounds('c2')})`, pct(best('c1'), best('c2')), '≥ 70 %'],
        ['3 copies', '', `${mbps(SIZE, best('c3'))} (rounds: ${rounds('c3')})`, pct(best('c1'), best('c3')), ''],
      ]),
      '',
      table(['CPU per GiB written (median of 3)', 'writer (node1\'s FS process)', 'peers (the two other agents)'], (['c1', 'c2', 'c3'] as const).map((k, i) => {
        return [`${i + 1} ${i ? 'copies' : 'copy'}`, `${perGiB(median(cpu[k].writer))} s`, `${perGiB(median(cpu[k].peers))} s`];
      })),
      '',
      table(['re-replication after a node loss', 'value'], [
        ['data that lost a copy', `${(lostBytes / 2 ** 30).toFixed(2)} GiB in ${count(victim)} files of 64 MiB (of ${chunkListHashes.length} written)`],
        ['SIGKILL → node marked down (node timeout 3 s)', `${((down - t0) / 1000).toFixed(1)} s`],
        ['marked down → every file on two live nodes (grace 0; the pass runs every 15 s)', `${((done - down) / 1000).toFixed(1)} s`],
        ['first file copied → last (copying itself)', `${copying.toFixed(1)} s${copying > 0 ? `, ${(lostBytes / 1e6 / copying).toFixed(0)} MB/s` : ''}`],
      ]),
      '',
      'Three agents on this one machine (2 cores): the writer\'s FS process, the peers\' agents and their disks share the same cores and the same disk, so each copy costs disk and CPU a real cluster spreads over machines. A close returns once the copies are on their nodes: the FS process streams each chunk to the peers as it is cut (from memory, overlapping the writing) and the close then asks each peer to hold the file, sending any chunk it lacks.',
      '',
      `What the goal of 70 % means here: the write is CPU-bound on these 2 cores. With 2 copies the cluster spends ${cpuTotal('c2')} CPU-seconds per GiB against ${cpuTotal('c1')} with 1 (the peer receives over loopback TCP, checks every chunk\'s SHA-256 and writes it durably), so on shared cores 2 copies run at about half the speed of 1 at best, and the goal is not met on this machine. The writer\'s own share grows from ${cpuPer('c1')} to ${cpuPer('c2')} CPU-seconds per GiB: where the peers are other machines, a CPU-bound writer would run at about ${pct(median(cpu.c1.writer), median(cpu.c2.writer))} of its 1-copy speed, its network carrying one more byte per byte written (a projection from these measurements, not a measurement).`,
    ].join('\n');
    writeSection('copies', 'Copies: write cost and re-replication', 'node dist/bench/copies.js', body);
  } finally {
    await sh(`rm -f ${mems.join(' ')}`).catch(() => undefined);
    await c.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
