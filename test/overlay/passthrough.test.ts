import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { mountNodeFilesystem } from '../../src/agent/filesystem.js';
import { connectRedis } from '../../src/state/redis.js';
import { keyspace } from '../../src/state/keys.js';
import { join } from 'node:path';
import { TestRedis, testPrefix } from '../helpers/redis.js';
import { ok, sh, startNode, stopNode, useTwoNodes, type TestNode } from './helpers.js';
import { Registry } from 'prom-client';
import type { MountReadStats } from '../../src/overlay/index.js';
import { registerMountMetrics } from '../../src/overlay/metrics.js';

const MiB = 1024 * 1024;

async function stats(n: TestNode): Promise<MountReadStats> {
  const s = await n.mount.readStats(5000);
  assert.ok(s, `${n.name}: the FS process answers`);
  return s;
}

/** Wait until n's file cache holds `files` copies (made in the background after a whole read). */
async function cached(n: TestNode, files: number): Promise<MountReadStats> {
  const t0 = Date.now();
  for (;;) {
    const s = await stats(n);
    if (s.fileCache.files >= files) return s;
    if (Date.now() - t0 > 20_000) assert.fail(`${n.name}: ${s.fileCache.files} files in the file cache after 20 s, want ${files}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const md5 = async (n: TestNode, path: string) => (await ok(`md5sum < ${path}`, { cwd: n.mnt })).split(' ')[0];

/** Run a python program in n's mount; its stdout. */
const py = (n: TestNode, code: string) => ok(`python3 -c '${code}'`, { cwd: n.mnt, timeoutMs: 60_000 });

describe('overlay: the file cache and FUSE passthrough', () => {
  const nodes = useTwoNodes(['pt-a', 'pt-b']);
  let a: TestNode;
  let b: TestNode;
  before(() => ({ a, b } = nodes));

  /** A file of random bytes written through B, read whole through A, and in A's file cache. */
  async function cachedOnA(name: string, size: number): Promise<string> {
    const before = (await stats(a)).fileCache.files;
    await ok(`head -c ${size} /dev/urandom > ${name}`, { cwd: b.mnt });
    const want = await md5(b, name);
    await ok(`test -f ${name}`, { cwd: a.mnt });
    assert.equal(await md5(a, name), want);
    await cached(a, before + 1);
    return want;
  }

  it('copies a file read end to end into the file cache; later opens are read by the kernel, not the FS process', async () => {
    const want = await cachedOnA('whole.bin', 6 * MiB);
    const s0 = await stats(a);
    assert.equal(await md5(a, 'whole.bin'), want);
    const s1 = await stats(a);
    assert.equal(s1.passthroughOpens, s0.passthroughOpens + 1, 'the open was a passthrough one');
    assert.equal(s1.fastReads.bytes, s0.fastReads.bytes, 'no read reached the FUSE threads');
    assert.equal(s1.javascriptReadBytes, s0.javascriptReadBytes, 'no read reached JavaScript');
    // mmap reads the backing file too.
    assert.equal((await py(a, 'import mmap, hashlib\nf = open("whole.bin", "rb"); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\nprint(hashlib.md5(m[:]).hexdigest())')).trim(), want);
    // Prometheus sees both.
    const registry = new Registry();
    registerMountMetrics(registry, a.mount);
    const text = await registry.metrics();
    assert.match(text, new RegExp(`^oswalk_mount_passthrough_opens_total ${s1.passthroughOpens + 1}$`, 'm'));
    assert.match(text, new RegExp(`^oswalk_mount_file_cache_bytes ${s1.fileCache.bytes}$`, 'm'));
    // A small file is not worth a copy.
    await ok('head -c 100000 /dev/urandom > small.bin && cat small.bin > /dev/null', { cwd: a.mnt });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await stats(a)).fileCache.files, s1.fileCache.files);
  });

  it('keeps the file cache across a restart of the FS process', async () => {
    const want = await cachedOnA('kept.bin', 2 * MiB);
    const pid = a.mount.pid!;
    const restarted = new Promise((r) => a.mount.once('restarted', r));
    process.kill(pid, 'SIGKILL');
    await restarted;
    const s0 = await stats(a);
    assert.equal(await md5(a, 'kept.bin'), want);
    assert.equal((await stats(a)).passthroughOpens, s0.passthroughOpens + 1);
  });

  it('a writer on the same node while a passthrough reader holds the file: the reader sees its bytes at once, close makes the version everywhere', async () => {
    await cachedOnA('rw.bin', 3 * MiB);
    const out = await py(a, [
      'import os',
      'r = os.open("rw.bin", os.O_RDONLY)',
      'w = os.open("rw.bin", os.O_RDWR)',
      'os.pwrite(w, b"hello", 1000)',
      'print(os.pread(r, 5, 1000).decode())',
      'os.close(w)',
      'print(os.fstat(r).st_size)',
      'os.close(r)',
    ].join('\n'));
    assert.equal(out, `hello\n${3 * MiB}\n`);
    assert.equal(await ok('dd if=rw.bin bs=1 skip=1000 count=5 status=none', { cwd: b.mnt }), 'hello');
    assert.equal(await ok('dd if=rw.bin bs=1 skip=1000 count=5 status=none', { cwd: a.mnt }), 'hello');
    // The cache's copy of the old version was taken out before the write, not changed.
    for (const f of readdirSync(join(a.stateDir, 'files'))) assert.ok(f === 'live' || /^[0-9a-f]{64}$/.test(f), f);
    assert.deepEqual(readdirSync(join(a.stateDir, 'files', 'live')), [], 'live copies are removed at the last close');
  });

  it('a passthrough reader follows what another node appends, without a stat (the FS process updates its backing file)', async () => {
    await cachedOnA('grow.bin', 2 * MiB);
    const reader = py(a, [
      'import os, time',
      'f = os.open("grow.bin", os.O_RDONLY)',
      'n = 0',
      'while True:',
      '    d = os.read(f, 1 << 20)',
      '    if not d: break',
      '    n += len(d)',
      'open("grow.reading", "w").close()',
      'more = b""',
      'deadline = time.time() + 10',
      'while b"tail" not in more and time.time() < deadline:',
      '    more += os.read(f, 4096); time.sleep(0.05)',
      'print(n, more.decode())',
    ].join('\n'));
    await ok('for i in $(seq 100); do test -e grow.reading && exit 0; sleep 0.1; done; exit 1', { cwd: b.mnt });
    const s0 = await stats(a);
    await ok('printf tail >> grow.bin', { cwd: b.mnt });
    assert.equal(await reader, `${2 * MiB} tail\n`);
    assert.equal((await stats(a)).passthroughOpens, s0.passthroughOpens, 'the reader was a passthrough one all along');
  });

  it('two paths of the same content held at once: a write to one leaves the other\'s bytes alone', async () => {
    const want = await cachedOnA('twin1.bin', 2 * MiB);
    await ok('cp twin1.bin twin2.bin', { cwd: b.mnt });
    await ok('test -f twin2.bin', { cwd: a.mnt });
    const out = await py(a, [
      'import os, hashlib',
      'r1 = os.open("twin1.bin", os.O_RDONLY)',
      'r2 = os.open("twin2.bin", os.O_RDONLY)',
      'w = os.open("twin1.bin", os.O_RDWR)',
      'os.pwrite(w, b"changed", 0)',
      'os.close(w)',
      'print(os.pread(r1, 7, 0).decode())',
      'print(hashlib.md5(os.pread(r2, 4 << 20, 0)).hexdigest())',
    ].join('\n'));
    assert.equal(out, `changed\n${want}\n`);
    assert.equal(await md5(b, 'twin2.bin'), want);
  });

  it('truncate, O_TRUNC and a rewrite while a passthrough handle is open', async () => {
    await cachedOnA('trunc.bin', 2 * MiB);
    const out = await py(a, [
      'import os',
      'r = os.open("trunc.bin", os.O_RDONLY)',
      'os.truncate("trunc.bin", 10)',
      'print(os.fstat(r).st_size, len(os.pread(r, 100, 0)))',
      'with open("trunc.bin", "w") as w: w.write("new content")',
      'print(os.pread(r, 100, 0).decode())',
      'os.close(r)',
    ].join('\n'));
    assert.equal(out, '10 10\nnew content\n');
    assert.equal(await ok('cat trunc.bin', { cwd: b.mnt }), 'new content');
  });

  it('a file deleted and made again elsewhere while a passthrough handle holds it here opens with its new content, never EIO', async () => {
    await cachedOnA('again.bin', 2 * MiB);
    const out = py(a, [
      'import os, time, subprocess',
      'r = os.open("again.bin", os.O_RDONLY)',
      'open("again.held", "w").close()',
      'deadline = time.time() + 10',
      'while not os.path.exists("again.made") and time.time() < deadline: time.sleep(0.05)',
      'time.sleep(1)',
      'with open("again.bin") as f: print(f.read())',
      'os.close(r)',
    ].join('\n'));
    await ok('for i in $(seq 100); do test -e again.held && break; sleep 0.1; done; rm again.bin && echo made again > again.bin && touch again.made', { cwd: b.mnt });
    assert.equal(await out, 'made again\n\n');
  });

  it('an inode with a cached open stays cached: a reader that comes while another handle reads through the FS process is not a passthrough one', async () => {
    await ok(`head -c ${2 * MiB} /dev/urandom > mixed.bin`, { cwd: b.mnt });
    const want = await md5(b, 'mixed.bin');
    const s0 = await stats(a);
    const out = await py(a, [
      'import os, hashlib, time',
      'held = os.open("mixed.bin", os.O_RDONLY)',
      'd = b""',
      'while True:',
      '    c = os.read(held, 1 << 20)',
      '    if not c: break',
      '    d += c',
      // Another whole read, closed: the copy is made while `held` is still open.
      'with open("mixed.bin", "rb") as f: f.read()',
      'time.sleep(2)',
      'with open("mixed.bin", "rb") as f: print(hashlib.md5(f.read()).hexdigest())',
      'os.close(held)',
    ].join('\n'));
    assert.equal(out.trim(), want);
    const s1 = await cached(a, s0.fileCache.files + 1);
    assert.equal(s1.passthroughOpens, s0.passthroughOpens, 'no passthrough open while a cached one was there');
    assert.equal(await md5(a, 'mixed.bin'), want);
    assert.equal((await stats(a)).passthroughOpens, s0.passthroughOpens + 1, 'the next open, alone, is one');
  });
});

describe('overlay: passthrough under load', () => {
  const nodes = useTwoNodes(['pt-load-a', 'pt-load-b']);

  it('readers, appenders, truncates, chmods and another node\'s appends on one file at once: no EIO, and both nodes agree after', async () => {
    const { a, b } = nodes;
    await ok(`head -c ${3 * MiB} /dev/urandom > load.bin && cat load.bin > /dev/null`, { cwd: a.mnt });
    await cached(a, 1);
    const s0 = await stats(a);
    const failures: string[] = [];
    const loop = async (n: TestNode, cmd: string) => {
      for (const t0 = Date.now(); Date.now() - t0 < 6000; ) {
        const r = await sh(cmd, { cwd: n.mnt, timeoutMs: 30_000 });
        if (r.code !== 0) failures.push(`${n.name}: ${cmd}: ${r.stderr.trim()}`);
      }
    };
    await Promise.all([
      loop(a, 'cat load.bin > /dev/null'),
      loop(a, 'md5sum load.bin > /dev/null'),
      loop(a, 'echo x >> load.bin'),
      loop(a, 'chmod 644 load.bin && chmod 600 load.bin'),
      loop(a, 'python3 -c "import os; os.truncate(\'load.bin\', 2000000)" && sleep 0.5'),
      loop(b, 'echo y >> load.bin && sleep 0.2'),
    ]);
    assert.deepEqual(failures.slice(0, 5), []);
    // How many opens under the load were passthrough ones depends on the moments the file was
    // quiet and cached whole (fewer since a close also waits for its copies): printed, not held.
    console.log(`passthrough under load: ${(await stats(a)).passthroughOpens - s0.passthroughOpens} passthrough opens`);
    const t0 = Date.now();
    for (;;) {
      const [ma, mb] = [await md5(a, 'load.bin'), await md5(b, 'load.bin')];
      if (ma === mb) break;
      if (Date.now() - t0 > 5000) assert.fail(`A reads ${ma}, B ${mb}, 5 s after the last change`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Passthrough was exercised: under the load, or (should the load have left no quiet moment)
    // once the file is quiet.
    for (const t1 = Date.now(); (await stats(a)).passthroughOpens === s0.passthroughOpens; ) {
      if (Date.now() - t1 > 30_000) assert.fail(`no open was a passthrough one, under the load or 30 s after: ${JSON.stringify(await stats(a))}`);
      await ok('cat load.bin > /dev/null', { cwd: a.mnt });
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});

describe('overlay: the agent\'s mount reports its file cache', () => {
  it('gives the file cache\'s size for heartbeats (oswalk get nodes: FILE CACHE)', async () => {
    const redis = await TestRedis.start();
    const base = mkdtempSync(join(tmpdir(), 'oswalk-ovl-usage-'));
    const conn = connectRedis(redis.url);
    const mount = await mountNodeFilesystem({
      mountPath: join(base, 'mnt'), node: 'usage', redisUrl: redis.url, ks: keyspace(testPrefix()), redis: conn, stateDir: join(base, 'state'),
      token: 'usage-token', log: pino({ level: 'silent' }),
    });
    try {
      await ok(`head -c ${2 * MiB} /dev/urandom > f && cat f > /dev/null`, { cwd: join(base, 'mnt') });
      for (const t0 = Date.now(); mount.usage().fileCacheBytes !== 2 * MiB; ) {
        if (Date.now() - t0 > 30_000) assert.fail(`usage() says ${JSON.stringify(mount.usage())} after 30 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await mount.stop();
      conn.disconnect();
      await redis.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('overlay: the file cache keeps its size', () => {
  let redis: TestRedis;
  let c: TestNode;
  before(async () => {
    redis = await TestRedis.start();
    c = await startNode('pt-c', redis.url, testPrefix(), { fileCacheBytes: 5 * MiB });
  });
  after(async () => {
    try {
      await stopNode(c);
    } finally {
      await redis.stop();
    }
  });

  it('drops the least recently used copies to stay within its size', async () => {
    for (const name of ['one', 'two', 'three']) {
      const before = (await stats(c)).fileCache.fills;
      await ok(`head -c ${2 * MiB} /dev/urandom > ${name} && cat ${name} > /dev/null`, { cwd: c.mnt });
      for (let t0 = Date.now(); (await stats(c)).fileCache.fills === before; ) {
        if (Date.now() - t0 > 20_000) assert.fail(`${name} was not copied in`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const s = await stats(c);
    assert.equal(s.fileCache.files, 2);
    assert.equal(s.fileCache.bytes, 4 * MiB);
    const copies = readdirSync(join(c.stateDir, 'files')).filter((f) => f !== 'live');
    assert.equal(copies.length, 2);
    // "one" went: its next open is read through the FS process, "three"'s by the kernel.
    const s0 = await stats(c);
    await ok('cat three > /dev/null', { cwd: c.mnt });
    const s1 = await stats(c);
    await ok('cat one > /dev/null', { cwd: c.mnt });
    const s2 = await stats(c);
    assert.equal(s1.passthroughOpens, s0.passthroughOpens + 1);
    assert.equal(s2.passthroughOpens, s1.passthroughOpens);
  });
});
