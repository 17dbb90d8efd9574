/**
 * Locks that hold across the cluster (issue 25), on the real processes of a cluster: redis-server,
 * two control planes, three agents with their FUSE mounts.
 *
 *  1. flock(1) from jobs on three nodes, each adding 1 to a counter file under the lock 100
 *     times: it ends at exactly 300. The same with fcntl record locks (python's lockf), and
 *     SQLite inserting 1,000 rows from each node into one database.
 *  2. Linux's semantics between nodes: F_SETLK refused with EAGAIN while another node holds a
 *     conflicting range, F_GETLK naming the holder's pid and range, a wait granted when the
 *     holder closes the file, EDEADLK for a cycle of two processes on two nodes, flock's shared
 *     and exclusive locks, a wait cut short by a signal, OFD locks going with their file.
 *  3. A holder SIGKILLed mid-lock lets go at once (the kernel closes its files); a node whose FS
 *     process is SIGSTOPped mid-lock, or that is cut off from Redis, loses it once its lease
 *     (the node timeout) has passed, and the others go on; what the frozen holder wrote under
 *     the lock fails at its close and never lands over the next holder's write.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPrefix } from '../helpers/redis.js';
import { normalizeJobSpec } from '../../src/api/jobs.js';
import { getJob, submitJobs } from '../../src/state/jobs.js';
import { readLog } from '../../src/state/job-streams.js';
import { FaultCluster, printLogTails, sleep, until } from './cluster.js';

const NODE_TIMEOUT_MS = 3000;
const NODES = ['node1', 'node2', 'node3'];

/**
 * A Python helper run on a node's mount: `locker.py OP PATH ...` prints one line per step to
 * stdout, so the test can follow it; ops as in the cases below.
 */
const LOCKER = String.raw`
import fcntl, os, struct, sys, time, errno
op, path = sys.argv[1], sys.argv[2]
def say(*a):
    print(*a, flush=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
if op == 'hold':            # write-lock bytes [a, b] and hold until stdin closes
    a, b = int(sys.argv[3]), int(sys.argv[4])
    fcntl.lockf(fd, fcntl.LOCK_EX, b - a + 1, a)
    say('held', os.getpid())
    sys.stdin.read()
elif op == 'try':           # non-blocking write lock of [a, b]: ok or the errno's name
    a, b = int(sys.argv[3]), int(sys.argv[4])
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, b - a + 1, a)
        say('ok')
    except OSError as e:
        say(errno.errorcode[e.errno])
elif op == 'getlk':         # who holds a lock conflicting with a write lock of [a, b]
    a, b = int(sys.argv[3]), int(sys.argv[4])
    fl = struct.pack('hhqqi', fcntl.F_WRLCK, 0, a, b - a + 1, 0)
    t, w, s, l, p = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, fl))
    say('getlk', {fcntl.F_UNLCK: 'unlocked', fcntl.F_RDLCK: 'read', fcntl.F_WRLCK: 'write'}[t], s, l, p)
elif op == 'wait':          # blocking write lock of [a, b]; says when granted, then holds until stdin closes
    a, b = int(sys.argv[3]), int(sys.argv[4])
    say('waiting')
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, b - a + 1, a)
        say('granted')
    except OSError as e:
        say(errno.errorcode[e.errno])
    sys.stdin.read()
elif op == 'lockwrite':     # blocking write lock of [a, b]; then the file's content becomes TEXT; a line on stdin closes it
    a, b, text = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    say('waiting')
    fcntl.lockf(fd, fcntl.LOCK_EX, b - a + 1, a)
    say('granted')
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
    say('wrote')
    sys.stdin.readline()
    try:
        os.close(fd)
        say('closed ok')
    except OSError as e:
        say('closed', errno.errorcode[e.errno])
    sys.stdin.read()
elif op == 'lockrename':    # write-lock byte 0, rename the file to PATH.moved, then a line on stdin closes it
    fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
    os.rename(path, path + '.moved')
    say('renamed')
    sys.stdin.readline()
    os.close(fd)
    say('closed')
    sys.stdin.read()
elif op == 'cycle':         # hold [a, a], say so, wait for a line, then ask for [b, b]
    a, b = int(sys.argv[3]), int(sys.argv[4])
    fcntl.lockf(fd, fcntl.LOCK_EX, 1, a)
    say('held')
    sys.stdin.readline()
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, b)
        say('granted')
    except OSError as e:
        say(errno.errorcode[e.errno])
    sys.stdin.read()
elif op == 'ofd':           # an OFD write lock of byte 0; a line on stdin closes the file; holds the process until stdin closes
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 1, 0))
    say('held')
    sys.stdin.readline()
    os.close(fd)
    say('closed')
    sys.stdin.read()
elif op == 'flock':         # flock(2) sh/ex, non-blocking: ok or the errno's name; holds until stdin closes
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if sys.argv[3] == 'sh' else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        say('ok')
    except OSError as e:
        say(errno.errorcode[e.errno])
    sys.stdin.read()
`;

/** One locker process and the lines it printed. */
class Locker {
  readonly proc: ChildProcess;
  lines: string[] = [];
  private buf = '';

  constructor(script: string, args: string[]) {
    this.proc = spawn('python3', [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      const parts = this.buf.split('\n');
      this.buf = parts.pop()!;
      this.lines.push(...parts);
    });
  }

  /** The first printed line matching re (waiting for it at most ms). */
  line(re: RegExp, ms = 15_000): Promise<string> {
    return until(`a line ${re} from locker ${this.proc.pid} (so far: ${JSON.stringify(this.lines)})`, async () => this.lines.find((l) => re.test(l)), ms, 20);
  }

  send(text: string): void {
    this.proc.stdin!.write(text);
  }

  async end(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, 'exit');
    this.proc.stdin!.end();
    await exited;
  }
}

describe('locks: flock and fcntl locks exclude each other across nodes', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-locks-'));
  const c = new FaultCluster({ root, prefix: testPrefix(), nodeTimeoutMs: NODE_TIMEOUT_MS, nodes: NODES, nsNode: 'node3' });
  const script = join(root, 'locker.py');
  const mount = (n: string) => c.agents.get(n)!.mount;
  const lockers: Locker[] = [];
  const locker = (node: string, ...args: string[]) => {
    const l = new Locker(script, [args[0], join(mount(node), args[1]), ...args.slice(2)]);
    lockers.push(l);
    return l;
  };
  let failed = true;

  before(async () => {
    writeFileSync(script, LOCKER);
    await c.start();
    mkdirSync(join(mount('node1'), 'locks'), { recursive: true });
  });

  after(async () => {
    for (const l of lockers) l.proc.kill('SIGKILL');
    await c.stop();
    if (failed) {
      console.log(`locks run kept for a look: ${root}`);
      printLogTails(root);
    } else {
      rmSync(root, { recursive: true, force: true });
    }
  });

  /** Runs one job per node with this bash script (the node's mount in $OSWALK_CLUSTER); waits for all to succeed. */
  async function jobsOnEveryNode(script: string): Promise<void> {
    const ids: string[] = [];
    for (const n of NODES) {
      // A failure must show, not be retried away (an increment would count twice).
      const spec = normalizeJobSpec({ command: ['bash', '-c', script], cpus: 0.1, nodeSelector: { 'oswalk.dev/node': n }, backoffLimit: 0 });
      ids.push(...(await submitJobs(c.conn, c.ks, [{ spec }])));
    }
    for (const id of ids) {
      const j = await until(`job ${id} to end`, async () => {
        const r = await getJob(c.conn, c.ks, id);
        return r && ['succeeded', 'failed', 'cancelled'].includes(r.state) ? r : undefined;
      }, 240_000, 250);
      if (j.state !== 'succeeded') {
        const log = (await readLog(c.conn, c.ks, id)).map((e) => e.data).join('');
        assert.fail(`job ${id} on ${j.node} ${j.state}: ${log.slice(-2000)}`);
      }
    }
  }

  it('flock(1) from jobs on three nodes: 300 increments of one counter end at 300', async () => {
    writeFileSync(join(mount('node1'), 'locks', 'flock-counter'), '0\n');
    const t0 = Date.now();
    await jobsOnEveryNode('f=$OSWALK_CLUSTER/locks/flock-counter; for i in $(seq 100); do flock "$f" -c "n=\\$(cat $f); echo \\$((n + 1)) > $f" || exit 1; done');
    console.log(`flock: 300 increments from three nodes in ${Date.now() - t0} ms`);
    for (const n of NODES) assert.equal(readFileSync(join(mount(n), 'locks', 'flock-counter'), 'utf8'), '300\n', `the counter as ${n} reads it`);
  });

  it('fcntl record locks (lockf) from jobs on three nodes: 300 increments end at 300', async () => {
    writeFileSync(join(mount('node1'), 'locks', 'lockf-counter'), '0\n');
    const py = [
      'import fcntl, os, sys',
      'p = os.path.join(os.environ["OSWALK_CLUSTER"], "locks", "lockf-counter")',
      'for i in range(100):',
      '    with open(p, "r+") as f:',
      '        fcntl.lockf(f, fcntl.LOCK_EX)',
      '        n = int(f.read())',
      '        f.seek(0); f.truncate(); f.write(f"{n + 1}\\n"); f.flush()',
      '        fcntl.lockf(f, fcntl.LOCK_UN)',
    ].join('\n');
    const t0 = Date.now();
    await jobsOnEveryNode(`python3 -c '${py}'`);
    console.log(`lockf: 300 increments from three nodes in ${Date.now() - t0} ms`);
    for (const n of NODES) assert.equal(readFileSync(join(mount(n), 'locks', 'lockf-counter'), 'utf8'), '300\n', `the counter as ${n} reads it`);
  });

  it('SQLite (rollback journal) from jobs on three nodes: 1,000 rows each, 3,000 in all, integrity ok', async () => {
    const db = join(mount('node1'), 'locks', 'rows.db');
    execFileSync('sqlite3', [db, 'PRAGMA journal_mode=DELETE; CREATE TABLE t (node TEXT, i INTEGER);']);
    const t0 = Date.now();
    // 100 transactions of 10 rows per node; SQLite takes its locks with F_SETLK and retries
    // while busy (.timeout), as it does on a local disk.
    await jobsOnEveryNode([
      'for b in $(seq 100); do',
      '  sql="BEGIN;"; for i in $(seq 10); do sql="$sql INSERT INTO t VALUES (\'$OSWALK_NODE\', $(( (b - 1) * 10 + i )));"; done',
      '  sqlite3 -cmd ".timeout 120000" "$OSWALK_CLUSTER/locks/rows.db" "$sql COMMIT;" || exit 1',
      'done',
    ].join('\n'));
    console.log(`sqlite: 3 x 100 transactions of 10 rows from three nodes in ${Date.now() - t0} ms`);
    for (const n of NODES) {
      const at = join(mount(n), 'locks', 'rows.db');
      assert.equal(execFileSync('sqlite3', [at, 'PRAGMA integrity_check;']).toString().trim(), 'ok', `integrity as ${n} reads it`);
      assert.equal(execFileSync('sqlite3', [at, 'SELECT node, count(*), count(DISTINCT i) FROM t GROUP BY node ORDER BY node;']).toString().trim(),
        NODES.map((m) => `${m}|1000|1000`).join('\n'), `1,000 rows from each node, as ${n} reads them`);
    }
  });

  it('between nodes: EAGAIN, F_GETLK names the holder, a wait is granted at the holder\'s close', async () => {
    const holder = locker('node1', 'hold', 'locks/ranges', '100', '199');
    const pid = (await holder.line(/^held/)).split(' ')[1];
    const other = locker('node2', 'try', 'locks/ranges', '150', '150');
    assert.equal(await other.line(/^[A-Z]+|ok/), 'EAGAIN', 'a conflicting range held on node1 is refused on node2');
    const free = locker('node2', 'try', 'locks/ranges', '200', '300');
    assert.equal(await free.line(/^[A-Z]+|ok/), 'ok', 'a range next to it is not');
    const probe = locker('node3', 'getlk', 'locks/ranges', '0', '1000');
    assert.equal(await probe.line(/^getlk/), `getlk write 100 100 ${pid}`, 'F_GETLK on node3 names node1\'s holder');
    const waiter = locker('node3', 'wait', 'locks/ranges', '120', '130');
    await waiter.line(/^waiting/);
    await sleep(500);
    assert.ok(!waiter.lines.includes('granted'), 'the wait waits while node1 holds the range');
    await holder.end();
    assert.equal(await waiter.line(/^granted|^E/), 'granted', 'granted once node1\'s holder closed the file');
    await waiter.end();

    // A file renamed while locked: its holder's close (which names the new path) lets go of the
    // lock, which the table holds under the old name: a new file there locks freely after it.
    const renamer = locker('node1', 'lockrename', 'locks/renamed');
    await renamer.line(/^renamed/);
    renamer.send('\n');
    await renamer.line(/^closed/);
    await until('the lock of the renamed file to go with its close', async () => {
      const probe = locker('node2', 'try', 'locks/renamed', '0', '0');
      return (await probe.line(/^[A-Z]+|ok/)) === 'ok';
    }, 5000, 100);
    await renamer.end();
  });

  it('between nodes: a cycle of waits is EDEADLK; flock shared and exclusive', async () => {
    const a = locker('node1', 'cycle', 'locks/deadlock', '1', '2');
    const b = locker('node2', 'cycle', 'locks/deadlock', '2', '1');
    await a.line(/^held/);
    await b.line(/^held/);
    a.send('\n');
    await sleep(300);
    b.send('\n');
    assert.match(await b.line(/^granted|^E/), /^EDEADLO?C?K$/, 'the second of the cycle is refused (python names EDEADLK EDEADLOCK)');
    await b.end();
    assert.equal(await a.line(/^granted|^E/), 'granted', 'and the first granted once the second let go');
    await a.end();

    const sh1 = locker('node1', 'flock', 'locks/flock', 'sh');
    const sh2 = locker('node2', 'flock', 'locks/flock', 'sh');
    assert.equal(await sh1.line(/^ok|^E/), 'ok');
    assert.equal(await sh2.line(/^ok|^E/), 'ok', 'two shared flocks on two nodes');
    const ex = locker('node3', 'flock', 'locks/flock', 'ex');
    assert.equal(await ex.line(/^ok|^E/), 'EAGAIN', 'an exclusive one is refused meanwhile');
    await sh1.end();
    await sh2.end();
    const ex2 = locker('node3', 'flock', 'locks/flock', 'ex');
    assert.equal(await ex2.line(/^ok|^E/), 'ok', 'and taken once they closed');
    await ex2.end();
    await ex.end();

    // A wait cut short by a signal: flock -w 1 (SIGALRM) gives up after its second with EINTR,
    // and its queued wait goes with it: the lock stays the holder's, and nobody's after.
    const holder = locker('node1', 'flock', 'locks/flock-wait', 'ex');
    assert.equal(await holder.line(/^ok|^E/), 'ok');
    const t0 = Date.now();
    const timedOut = spawnSync('flock', ['-w', '1', join(mount('node2'), 'locks', 'flock-wait'), 'true'], { timeout: 20_000 });
    assert.equal(timedOut.status, 1, `flock -w 1 on node2 timed out (status ${timedOut.status}, ${timedOut.stderr})`);
    assert.ok(Date.now() - t0 < 5000, `and came back soon after its second (${Date.now() - t0} ms)`);
    const still = locker('node3', 'flock', 'locks/flock-wait', 'sh');
    assert.equal(await still.line(/^ok|^E/), 'EAGAIN', 'the holder on node1 still holds it');
    await still.end();
    await holder.end();
    const after = locker('node3', 'flock', 'locks/flock-wait', 'ex');
    assert.equal(await after.line(/^ok|^E/), 'ok', 'free once the holder closed: the interrupted wait left nothing behind');
    await after.end();
    // An OFD lock is the open file's: it holds across nodes while the file is open, and goes
    // with its last close though its process lives on.
    const ofd = locker('node1', 'ofd', 'locks/ofd');
    await ofd.line(/^held/);
    const refused = locker('node2', 'try', 'locks/ofd', '0', '0');
    assert.equal(await refused.line(/^[A-Z]+|ok/), 'EAGAIN', 'an OFD lock held on node1 excludes on node2');
    ofd.send('\n');
    await ofd.line(/^closed/);
    // The kernel sends the release after close(2) has returned: a moment later, not at once.
    await until('the OFD lock to go with its file', async () => {
      const probe = locker('node2', 'try', 'locks/ofd', '0', '0');
      return (await probe.line(/^[A-Z]+|ok/)) === 'ok';
    }, 5000, 100);
    await ofd.end();
  });

  it('a holder killed mid-lock lets go at once; a frozen node loses its lock after the node timeout, and what it wrote under it never lands', async () => {
    const killed = locker('node1', 'hold', 'locks/faults', '0', '0');
    await killed.line(/^held/);
    const w1 = locker('node2', 'lockwrite', 'locks/faults', '0', '0', 'node2 wrote this under a lock it then lost\n');
    await w1.line(/^waiting/);
    killed.proc.kill('SIGKILL');
    assert.equal(await w1.line(/^granted|^E/, 5000), 'granted', 'granted on node2 once the holder on node1 was killed');
    await w1.line(/^wrote/);

    // node2's FS process frozen while node2's locker holds the range and has written: node3
    // waits out the lease, takes the lock and writes its own.
    const fs2 = await c.agents.get('node2')!.fsPid();
    assert.ok(fs2, 'node2 has an FS process');
    const t0 = Date.now();
    process.kill(fs2, 'SIGSTOP');
    let thawed = false;
    try {
      const w2 = locker('node3', 'lockwrite', 'locks/faults', '0', '0', 'node3\n');
      await w2.line(/^waiting/);
      assert.equal(await w2.line(/^granted|^E/, 20_000), 'granted', 'node3 is granted the lock of the frozen node');
      const waited = Date.now() - t0;
      console.log(`the frozen node's lock went to node3 after ${waited} ms (node timeout ${NODE_TIMEOUT_MS} ms)`);
      // Its lease ran from its last renewal, at most a third of a lease before the SIGSTOP.
      assert.ok(waited >= (NODE_TIMEOUT_MS * 2) / 3 - 50, `not before the lease could have passed (${waited} ms)`);
      await w2.line(/^wrote/);
      w2.send('\n');
      assert.equal(await w2.line(/^closed/), 'closed ok');
      process.kill(fs2, 'SIGCONT');
      thawed = true;
      // Awake, node2's mount learns at its next renewal that its locks are gone; the close of
      // what it wrote under one then fails, and node3's content stays.
      const log = join(root, 'logs', 'node2.log');
      await until('node2 to learn it lost its locks', async () => readFileSync(log, 'utf8').includes('this mount lost its locks'), 10_000);
      w1.send('\n');
      assert.equal(await w1.line(/^closed/), 'closed EIO', 'node2\'s close of what it wrote under the lost lock fails');
      for (const n of NODES) assert.equal(readFileSync(join(mount(n), 'locks', 'faults'), 'utf8'), 'node3\n', `the file holds node3's write, as ${n} reads it`);
      await w1.end();
      await w2.end();
    } finally {
      if (!thawed) process.kill(fs2, 'SIGCONT');
    }
  });

  it('a node cut off from Redis and its peers loses its lock after the node timeout', async () => {
    const held = locker('node3', 'hold', 'locks/partition', '0', '0');
    await held.line(/^held/);
    await c.netns!.cut();
    const t0 = Date.now();
    try {
      const w = locker('node1', 'wait', 'locks/partition', '0', '0');
      await w.line(/^waiting/);
      assert.equal(await w.line(/^granted|^E/, 20_000), 'granted', 'node1 is granted the lock of the cut-off node');
      console.log(`the cut-off node's lock went to node1 after ${Date.now() - t0} ms`);
      await w.end();
    } finally {
      await c.netns!.heal();
    }
    await held.end();
    failed = false;
  });
});
