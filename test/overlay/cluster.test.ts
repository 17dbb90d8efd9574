import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestRedis } from '../helpers/redis.js';
import { ok, sh, useTwoNodes, type TestNode } from './helpers.js';
import { namespacePath } from '../../src/cli/fs-common.js';
import { connectRedis } from '../../src/state/redis.js';
import { keyspace } from '../../src/state/keys.js';

/** Poll `check` (a shell command run on a node's mount) until it prints `want`; returns the ms it took. */
async function until(n: TestNode, check: string, want: string, limitMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const r = await sh(check, { cwd: n.mnt, timeoutMs: 10_000 });
    if (r.code === 0 && r.stdout === want) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) assert.fail(`${n.name}: "${check}" printed ${JSON.stringify(r.stdout + r.stderr)} after ${limitMs} ms, want ${JSON.stringify(want)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('overlay: two nodes on one Redis', () => {
  const nodes = useTwoNodes(['node-a', 'node-b']);
  let redis: TestRedis;
  let a: TestNode;
  let b: TestNode;
  let prefix: string;
  before(() => ({ a, b, redis, prefix } = nodes));

  it('shows a file written through A on B within 1 s, chunks fetched from A', async () => {
    await ok('mkdir shared && ls shared', { cwd: a.mnt });
    await until(b, 'ls -a shared', '.\n..\n', 1000); // B has looked: its caches hold the empty directory
    await ok('head -c 20000000 /dev/urandom > /tmp/oswalk-ovl-src.bin', {});
    try {
      await ok('cp /tmp/oswalk-ovl-src.bin shared/data.bin && echo v1 > shared/small', { cwd: a.mnt });
      const ms = await until(b, 'cat shared/small', 'v1\n', 1000);
      const want = (await ok('md5sum < /tmp/oswalk-ovl-src.bin')).split(' ')[0];
      assert.equal((await ok('md5sum < shared/data.bin', { cwd: b.mnt })).split(' ')[0], want);
      // A new version replaces what B has read (and the kernel has cached) within 1 s too.
      await ok('echo v2 > shared/small', { cwd: a.mnt });
      const ms2 = await until(b, 'cat shared/small', 'v2\n', 1000);
      // A delete on B moves the directory's mtime on A too (and on B at once).
      await ok('touch -d 2001-01-01 shared', { cwd: a.mnt });
      await until(b, 'stat -c %Y shared', `${Date.UTC(2001, 0, 1) / 1000}\n`, 1000);
      await ok('rm shared/small', { cwd: b.mnt });
      await until(a, 'ls shared', 'data.bin\n', 1000);
      const recent = `test $(stat -c %Y shared) -gt ${Math.floor(Date.now() / 1000) - 60} && echo moved`;
      for (const n of [a, b]) await until(n, recent, 'moved\n', 1000);
      console.log(`visible on B after ${ms} ms, update after ${ms2} ms`);
    } finally {
      await sh('rm -f /tmp/oswalk-ovl-src.bin');
    }
  });

  it('answers the stats of a listed directory on the FUSE threads, and shows a change made on either node as before', async () => {
    await ok('mkdir listed && cd listed && for i in $(seq 1 50); do echo $i > f$i; done', { cwd: a.mnt });
    await until(b, 'ls listed | wc -l', '50\n', 1000);
    const answers = async () => (await b.mount!.readStats())!.keptAttrs.answers;
    const before = await answers();
    await ok('ls -l listed > /dev/null', { cwd: b.mnt });
    const given = (await answers()) - before;
    // ls -l stats each name (a LOOKUP) and asks for its security.selinux: the addon answered both.
    assert.ok(given >= 100, `the addon answered ${given} of the stats and getxattrs of 50 names`);
    // Changes through A: B shows them within 1 s, as without the addon (which keeps an entry 5 s:
    // only the namespace's events, passed on to it, make this pass).
    await ok('chmod 600 listed/f1 && echo longer-content > listed/f2', { cwd: a.mnt });
    await ok(`python3 -c "import os; os.setxattr('listed/f3', 'user.x', b'1')"`, { cwd: a.mnt });
    await until(b, 'stat -c %a listed/f1', '600\n', 1000);
    await until(b, 'stat -c %s listed/f2', '15\n', 1000);
    await until(b, `python3 -c "import os; print(os.getxattr('listed/f3', 'user.x'))"`, "b'1'\n", 1000);
    // Changes through B itself show at once, the directory just listed again.
    await ok('ls -l listed > /dev/null', { cwd: b.mnt });
    assert.equal(await ok('chmod 640 listed/f4 && stat -c %a listed/f4', { cwd: b.mnt }), '640\n');
    await ok('ls -l listed > /dev/null', { cwd: b.mnt });
    assert.equal(await ok('echo 1234567 > listed/f5 && stat -c %s listed/f5', { cwd: b.mnt }), '8\n');
    await ok('ls -l listed > /dev/null', { cwd: b.mnt });
    // (An extended attribute set through B on A's file: a version of A's copy, as a chmod is,
    // or it tied with A's on mtime and lost, the attribute gone on both nodes.)
    await ok(`python3 -c "import os; os.setxattr('listed/f6', 'user.y', b'2')"`, { cwd: b.mnt });
    assert.equal(await ok(`python3 -c "import os; print(os.getxattr('listed/f6', 'user.y'))"`, { cwd: b.mnt }), "b'2'\n");
    await until(a, `python3 -c "import os; print(os.getxattr('listed/f6', 'user.y'))"`, "b'2'\n", 1000);
    await ok('ls -l listed > /dev/null', { cwd: b.mnt });
    assert.equal(await ok('rm listed/f7 && stat listed/f7 2>&1 | grep -c "No such file"', { cwd: b.mnt }), '1\n');
    // A read through A moves f8's atime (relatime: its first since it was written): B shows it
    // within 1 s, the directory just listed there.
    await ok('ls -l listed > /dev/null', { cwd: b.mnt });
    const atime = await ok('stat -c %X listed/f8', { cwd: b.mnt });
    await new Promise((r) => setTimeout(r, 1100));
    await ok('cat listed/f8 > /dev/null', { cwd: a.mnt });
    const moved = await ok('stat -c %X listed/f8', { cwd: a.mnt });
    assert.notEqual(moved, atime, 'the read moved the atime on A');
    await until(b, 'stat -c %X listed/f8', moved, 1000);
  });

  it('O_EXCL is exclusive across nodes: of two racing creates of a lock file, exactly one wins', async () => {
    await ok('mkdir locks', { cwd: a.mnt });
    await until(b, 'ls -a locks', '.\n..\n', 1000);
    const N = 60;
    const race = `import os
won = []
for i in range(${N}):
    try:
        os.close(os.open(f'locks/l{i}', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        won.append(str(i))
    except FileExistsError:
        pass
print(' '.join(won))`;
    const [wa, wb] = (await Promise.all([a, b].map((n) => ok(`python3 -c "${race}"`, { cwd: n.mnt })))).map((o) => o.trim().split(' ').filter(Boolean));
    assert.equal(wa.length + wb.length, N, `A won ${wa.length}, B won ${wb.length}`);
    assert.deepEqual([...new Set([...wa, ...wb])].length, N);
    await until(b, 'ls locks | wc -l', `${N}\n`, 1000);
  });

  it('a file closed on A is on B too (two copies by default): B reads it while A is away', async () => {
    await ok('head -c 3000000 /dev/urandom > both.bin', { cwd: a.mnt });
    const want = await ok('md5sum < both.bin', { cwd: a.mnt });
    await a.stopChunkServer();
    try {
      assert.equal(await ok('md5sum < both.bin', { cwd: b.mnt }), want);
    } finally {
      await a.startChunkServer();
    }
  });

  it('fails a read fast with EIO while the only holder is away, and succeeds when it is back', async () => {
    // A rule keeps files under single/ on one node: here, the only holder can be taken away.
    const conn = connectRedis(redis.url);
    await conn.hset(keyspace(prefix).objects('Mount'), 'cluster', JSON.stringify({ kind: 'Mount', metadata: { name: 'cluster' }, spec: { replication: [{ prefix: 'single/', copies: 1 }] } }));
    conn.disconnect();
    await new Promise((r) => setTimeout(r, 5500)); // the FS processes read the Mount again (cachedStoragePolicy)
    await ok('mkdir -p single && head -c 3000000 /dev/urandom > single/only-a.bin && md5sum < single/only-a.bin', { cwd: a.mnt });
    await until(b, 'stat -c %s single/only-a.bin', '3000000\n', 1000);
    await a.stopChunkServer();
    try {
      const t0 = Date.now();
      const r = await sh('cat single/only-a.bin > /dev/null', { cwd: b.mnt, timeoutMs: 30_000 });
      const took = Date.now() - t0;
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Input\/output error/);
      assert.ok(took < 8000, `the read failed after ${took} ms`);
    } finally {
      await a.startChunkServer();
    }
    assert.equal(await ok('md5sum < single/only-a.bin', { cwd: b.mnt }), await ok('md5sum < single/only-a.bin', { cwd: a.mnt }));
  });

  it('special files: a fifo, a Unix socket and device nodes made on A are the same entries on B, with their numbers, as on ext4', async () => {
    const make = 'mkfifo sp/fifo && mknod sp/chr c 1 3 && mknod sp/blk b 8 1 && python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind(\'sp/sock\')" && chmod 640 sp/fifo';
    const show = 'stat -c "%n %F %t:%T %a %s %h" sp/fifo sp/chr sp/blk sp/sock';
    const local = await ok('d=$(mktemp -d) && cd $d && mkdir sp && ' + make + ' && ' + show + ' && rm -r $d');
    await ok(`mkdir sp && ${make}`, { cwd: a.mnt });
    assert.equal(await ok(show, { cwd: a.mnt }), local);
    await until(b, show, local, 2000);
    // A fifo joins two processes of one node, as on a local disk.
    assert.equal(await ok('(echo through > sp/fifo &) ; cat sp/fifo', { cwd: b.mnt, timeoutMs: 10_000 }), 'through\n');
    await ok('mv sp/fifo sp/fifo2 && rm sp/chr sp/blk sp/sock', { cwd: b.mnt });
    await until(a, 'ls sp', 'fifo2\n', 2000);
    assert.equal((await sh('mknod sp/x q 1 1', { cwd: a.mnt })).code !== 0, true);
  });

  it('utimensat: an atime apart from the mtime, UTIME_OMIT and UTIME_NOW, seen the same on B, as on ext4', async () => {
    const script = 'import os\nos.utime("t", ns=(1000000000, 2000000000))\nos.utime("t", ns=(3000000000, 2000000000))\nos.chmod("t", 0o640)';
    const local = await ok(`d=$(mktemp -d) && cd $d && echo x > t && python3 -c '${script}' && touch -a -d 2001-01-01 t && stat -c '%X %Y %a' t && rm -r $d`);
    await ok(`echo x > t && python3 -c '${script}' && touch -a -d 2001-01-01 t`, { cwd: a.mnt });
    assert.equal(await ok("stat -c '%X %Y %a' t", { cwd: a.mnt }), local);
    await until(b, "stat -c '%X %Y %a' t", local, 2000);
    // UTIME_NOW moves both to now; ctime moves with every change.
    await ok('touch t', { cwd: b.mnt });
    const [at, mt, ct] = (await ok("stat -c '%X %Y %Z' t", { cwd: b.mnt })).trim().split(' ').map(Number);
    assert.ok(at === mt && Math.abs(mt - Date.now() / 1000) < 5 && ct >= mt, `after touch: ${at} ${mt} ${ct}`);
  });

  it('keeps serving cached metadata and data while Redis is down, and recovers after', async () => {
    await ok('mkdir -p keep && echo cached > keep/f', { cwd: a.mnt });
    await until(b, 'cat keep/f; ls keep', 'cached\nf\n', 1000);
    await redis.stopProcess();
    try {
      await new Promise((r) => setTimeout(r, 1500)); // past the kernel's attribute timeouts
      assert.equal(await ok('cat keep/f; ls keep; stat -c %s keep/f', { cwd: b.mnt, timeoutMs: 20_000 }), 'cached\nf\n7\n');
    } finally {
      await redis.startProcess();
    }
    await ok('echo after > keep/g', { cwd: a.mnt, timeoutMs: 30_000 });
    await until(b, 'cat keep/g', 'after\n', 5000);
  });

  it('fails a write with EIO, not a hang, while Redis keeps its connections but answers nothing', async () => {
    await ok(`ls ${a.mnt} > /dev/null`); // the root cached: the write is what waits
    redis.pause();
    try {
      const t0 = Date.now();
      // python, not the shell's echo > f: bash does not report close(2) failing, where this fails.
      const r = await sh(`python3 -c "f = open('${a.mnt}/frozen.txt', 'w'); f.write('hi'); f.close()"`, { timeoutMs: 60_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Input\/output error/);
      assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
    } finally {
      redis.resume();
    }
    await ok('echo after > frozen2.txt && cat frozen2.txt', { cwd: a.mnt, timeoutMs: 30_000 });
  });

  it('a new open on B sees the version A wrote, within the attribute timeout, while B still holds the old one open', async () => {
    await ok('mkdir held && printf old > held/f', { cwd: a.mnt });
    await until(b, 'cat held/f', 'old', 1000);
    const reader = ok(`python3 -c "
import os, time
h1 = open('held/f', 'rb')
old = h1.read()
open('held/ready', 'w').close()
deadline = time.time() + 20
while not os.path.exists('held/go') and time.time() < deadline: time.sleep(0.02)
# Each open within the attribute timeout may keep the kernel's cached pages; a later one may not.
while True:
    h2 = open('held/f', 'rb')
    new = h2.read()
    st = os.fstat(h2.fileno())
    h2.close()
    if new != old or time.time() > deadline: break
    time.sleep(0.05)
print(old.decode(), new.decode(), st.st_size, st.st_mtime_ns == os.stat('held/f').st_mtime_ns, h1.read())
"`, { cwd: b.mnt, timeoutMs: 30_000 });
    await until(a, 'ls held', 'f\nready\n', 5000);
    await ok('printf "new and longer" > held/f.tmp && touch -d 2002-02-02 held/f.tmp && mv held/f.tmp held/f && touch held/go', { cwd: a.mnt });
    // The handle held open reads on in the new version too (one path, one version, as over NFS).
    assert.equal(await reader, "old new and longer 14 True b' and longer'\n");
    assert.equal(await ok('stat -c %s held/f', { cwd: b.mnt }), '14\n');
  });

  it('a file open on B follows the namespace: a chmod through A holds on B at once, a delete through A hides it, a write after is a new file', async () => {
    await ok('mkdir opened && echo secret > opened/c && chmod 644 opened/c && printf "old1\nold2\n" > opened/d', { cwd: a.mnt });
    await until(b, 'cat opened/c opened/d', 'secret\nold1\nold2\n', 1000);
    const holder = sh('exec 7<opened/c 8<opened/d; sleep 8', { cwd: b.mnt, timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await ok('runuser -u nobody -- cat opened/c', { cwd: b.mnt }), 'secret\n');
    await ok('chmod 600 opened/c && rm opened/d', { cwd: a.mnt });
    await until(b, 'stat -c %A opened/c', '-rw-------\n', 3000);
    const nobody = await sh('runuser -u nobody -- cat opened/c', { cwd: b.mnt });
    assert.notEqual(nobody.code, 0, 'the chmod holds on B while B has the file open');
    await until(b, 'ls opened', 'c\n', 3000);
    await ok('echo new >> opened/d', { cwd: b.mnt });
    await until(a, 'cat opened/d', 'new\n', 3000);
    await holder;
  });

  it('a chmod and an xattr through A of a file a program on A holds open show on B at once', async () => {
    await ok('mkdir -p heldopen && echo data > heldopen/f', { cwd: a.mnt });
    await until(b, 'stat -c %A heldopen/f', '-rw-r--r--\n', 1000);
    const holder = sh('exec 8<heldopen/f; sleep 6', { cwd: a.mnt, timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    await ok(`chmod 600 heldopen/f && python3 -c "import os; os.setxattr('heldopen/f', 'user.k', b'1')"`, { cwd: a.mnt });
    await until(b, `stat -c %A heldopen/f && python3 -c "import os; print(os.listxattr('heldopen/f'))"`, "-rw-------\n['user.k']\n", 3000);
    await holder;
  });

  it('a copy through A that keeps an older mtime (cp -p) replaces B\'s later file, and stays after B\'s delete', async () => {
    const old = `/tmp/oswalk-cpp-${process.pid}`;
    try {
      await ok(`echo data > ${old} && touch -d 2024-05-01 ${old}`);
      await ok('mkdir -p cpp && echo "written on B" > cpp/target && echo v1 > cpp/gone', { cwd: b.mnt });
      await until(a, 'cat cpp/target cpp/gone', 'written on B\nv1\n', 1000);
      await ok('rm cpp/gone', { cwd: b.mnt });
      await until(a, 'ls cpp', 'target\n', 1000);
      await ok(`cp -p ${old} cpp/target && cp -p ${old} cpp/gone`, { cwd: a.mnt });
      await new Promise((r) => setTimeout(r, 1500));
      for (const n of [a, b]) await until(n, 'cat cpp/target cpp/gone', 'data\ndata\n', 2000);
    } finally {
      await ok(`rm -f ${old}`);
    }
  });

  it('takes a path inside any mount of the unified tree on this host as that path of the tree (versions, restore)', () => {
    assert.equal(namespacePath(`${b.mnt}/x/y`, a.mnt), '/x/y');
    assert.equal(namespacePath(`${a.mnt}/x`, a.mnt), '/x');
    assert.equal(namespacePath('/etc/passwd', a.mnt), '/etc/passwd');
  });

  it('a reader on B follows what A appends, through the handle it holds (tail -f)', async () => {
    await ok('mkdir -p follow && echo line1 > follow/log', { cwd: a.mnt });
    await until(b, 'cat follow/log', 'line1\n', 1000);
    const follower = ok(`python3 -c "
import time
f = open('follow/log'); first = f.read()
open('follow/reading', 'w').close()
deadline = time.time() + 10; more = ''
while 'line3' not in more and time.time() < deadline:
    more += f.read(); time.sleep(0.05)
print(repr(first), repr(more))
"`, { cwd: b.mnt, timeoutMs: 20_000 });
    await until(a, 'ls follow', 'log\nreading\n', 5000);
    await ok('echo line2 >> follow/log && sleep 0.3 && echo line3 >> follow/log', { cwd: a.mnt });
    assert.equal(await follower, "'line1\\n' 'line2\\nline3\\n'\n");
  });

  it('shows an extended attribute set through A on B within 1 s, and its removal too', async () => {
    await ok('echo x > tagged', { cwd: a.mnt });
    await until(b, 'cat tagged', 'x\n', 1000);
    const get = `python3 -c "import os; print(os.listxattr('tagged'), os.getxattr('tagged', 'user.k') if os.listxattr('tagged') else '')"`;
    await ok(`python3 -c "import os; os.setxattr('tagged', 'user.k', b'v1')"`, { cwd: a.mnt });
    await until(b, get, "['user.k'] b'v1'\n", 1000);
    await ok(`python3 -c "import os; os.removexattr('tagged', 'user.k')"`, { cwd: a.mnt });
    await until(b, get, '[] \n', 1000);
  });

  it('takes a chmod through B of a file A wrote, though B sorts after A and the mtime stays', async () => {
    await ok('echo x > perm && chmod 644 perm', { cwd: a.mnt });
    await until(b, 'stat -c %a perm', '644\n', 1000);
    await ok('chmod 751 perm && chown 7:8 perm', { cwd: b.mnt });
    for (const n of [b, a]) await until(n, 'stat -c %a:%u:%g perm', '751:7:8\n', 1000);
  });

  it('still sees changes from B after a change through A that changed nothing', async () => {
    await ok('echo one > noop', { cwd: a.mnt });
    await until(b, 'cat noop', 'one\n', 1000);
    await ok('chown 0:0 noop && chmod 644 noop && stat noop >/dev/null', { cwd: a.mnt }); // as it was
    await ok('echo two > noop', { cwd: b.mnt });
    await until(a, 'cat noop', 'two\n', 1000);
  });

  it('restarts and remounts when the FS process is killed', async () => {
    await ok('echo durable > survivor', { cwd: a.mnt });
    const pid = a.mount.pid!;
    const restarted = once(a.mount, 'restarted');
    process.kill(pid, 'SIGKILL');
    await restarted;
    assert.notEqual(a.mount.pid, pid);
    assert.equal(await ok('cat survivor', { cwd: a.mnt }), 'durable\n');
    assert.equal(a.mount.restarts, 1);
  });

  it('keeps a file being written at its last version when the FS process stops, and commits one just closed', async () => {
    await ok('echo v1 > midway', { cwd: a.mnt });
    await until(b, 'cat midway', 'v1\n', 1000);
    // A writer half-way through replacing the file (opened O_TRUNC, part written, not closed),
    // after making an empty file and closing it (committed at release, which may still be on its way).
    const script = "import time; open('closed', 'w').close(); f = open('midway', 'wb'); f.write(b'partial'); f.flush(); print('ready', flush=True); time.sleep(60)";
    const writer = spawn('python3', ['-c', script], { cwd: a.mnt, stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await once(writer.stdout, 'data');
      const restarted = once(a.mount, 'restarted');
      process.kill(a.mount.pid!, 'SIGTERM');
      await restarted;
    } finally {
      writer.kill('SIGKILL');
    }
    for (const n of [a, b]) assert.equal(await ok('cat midway; stat -c %s closed', { cwd: n.mnt }), 'v1\n0\n', n.name);
  });

  it('runs one FS process after a new one dies while starting', async () => {
    const fsProcesses = async () => (await ok(`pgrep -P ${process.pid} -f 'overlay/[f]s-process.js' | wc -l`)).trim();
    assert.equal(await fsProcesses(), '2');
    const first = a.mount.pid!;
    process.kill(first, 'SIGKILL');
    // Its successor is killed as soon as it is forked, long before it has mounted.
    while (a.mount.pid === first) await new Promise((r) => setTimeout(r, 5));
    process.kill(a.mount.pid!, 'SIGKILL');
    await once(a.mount, 'restarted');
    await new Promise((r) => setTimeout(r, 3000)); // past the backoff of any second restart
    assert.equal(await fsProcesses(), '2');
    assert.equal(await ok('cat survivor', { cwd: a.mnt }), 'durable\n');
  });
});
