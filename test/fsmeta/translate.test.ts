import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { exportXattrs } from '../../src/translate/xattrs.js';
import { pino } from 'pino';
import { OSWALK_BIN } from '../helpers/cli.js';
import { fsKeysOf, TestRedis, testPrefix } from '../helpers/redis.js';
import { connectRedis } from '../../src/state/redis.js';
import { fsKeyspace, type FsKeyspace } from '../../src/state/keys.js';
import { getCurrent, getChunkList, listDir, listVersions, subscribeFsEvents } from '../../src/state/fs.js';
import { ChunkStore, decodeChunkList, chunkListLocations } from '../../src/packetfs/index.js';
import { startTranslator, type Translator, type TranslatorOptions } from '../../src/translate/index.js';
import { until } from '../helpers/until.js';

const CLI = OSWALK_BIN;
const quiet = pino({ level: 'silent' });

describe('translate daemon', () => {
  let server: TestRedis;
  let redis: Redis;
  const dirs: string[] = [];
  const running: Translator[] = [];
  const tmp = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `oswalk-${name}-`));
    dirs.push(d);
    return d;
  };
  let ks: FsKeyspace;
  let exportDir: string;
  let storeDir: string;
  const start = async (extra: Partial<TranslatorOptions> = {}) => {
    const t = await startTranslator({
      fs: { redis, ks }, node: 'n1', exportDir, store: new ChunkStore(storeDir, { log: quiet }), log: quiet, debounceMs: 150, ...extra,
    });
    running.push(t);
    return t;
  };

  before(async () => {
    server = await TestRedis.start();
    redis = connectRedis(server.url);
  });
  after(async () => {
    for (const t of running) await t.close();
    redis.disconnect();
    await server.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const fresh = () => {
    ks = fsKeyspace(testPrefix());
    exportDir = tmp('export');
    storeDir = tmp('store');
  };

  it('translates what is there at start, with real mtime, mode, chunk list and chunk location', async () => {
    fresh();
    mkdirSync(join(exportDir, 'sub/deep'), { recursive: true });
    writeFileSync(join(exportDir, 'sub/deep/a.txt'), 'hello world');
    writeFileSync(join(exportDir, 'copy.txt'), 'hello world');
    writeFileSync(join(exportDir, 'new\nline'), 'x');
    chmodSync(join(exportDir, 'copy.txt'), 0o600);
    writeFileSync(join(exportDir, 'old.txt'), 'from 1960');
    // (not utimesSync: Node takes a negative number of seconds for now)
    execFileSync('touch', ['-d', '1960-01-01T00:00:00Z', join(exportDir, 'old.txt')]);
    const registry = new Registry();
    // one at a time: two identical files read at the same moment may both count their chunk as new
    const t = await start({ registry, concurrency: 1, pathsInFlight: 1 });
    await t.idle();
    const a = await getCurrent(redis, ks, '/sub/deep/a.txt');
    assert.equal(a?.size, 11);
    assert.equal(a?.node, 'n1');
    assert.equal(a?.source, 'export');
    const st = execFileSync('stat', ['-c', '%Y%n', join(exportDir, 'sub/deep/a.txt')]).toString();
    assert.equal(a!.mtimeNs.slice(0, 10), st.slice(0, 10));
    assert.equal((await getCurrent(redis, ks, '/copy.txt'))?.mode, 0o100600);
    assert.equal((await getCurrent(redis, ks, '/old.txt'))?.mtimeNs, '-315619200000000000', 'a time before 1970 as it is');
    assert.equal((await getCurrent(redis, ks, '/copy.txt'))?.chunkListHash, a?.chunkListHash);
    const chunks = decodeChunkList((await getChunkList(redis, ks, a!.chunkListHash!))!);
    assert.equal(chunks.reduce((s, c) => s + c.size, 0), 11);
    assert.deepEqual(await chunkListLocations(redis, ks, a!.chunkListHash!), ['n1']);
    assert.deepEqual((await listDir(redis, ks, '/')).map((e) => e.name), ['copy.txt', 'new\nline', 'old.txt', 'sub']);
    const s = t.stats();
    assert.equal(s.bytesTranslated, 32); // 11 + 11 + 1 + 9
    assert.equal(s.newBytes, 21); // one copy of "hello world", "x", "from 1960"
    assert.equal(s.backlogFiles, 0);
    const metrics = await registry.metrics();
    assert.match(metrics, /oswalk_translate_bytes_total 32/);
    assert.match(metrics, /oswalk_translate_backlog_files 0/);
  });

  it('translates the most recently modified files first', async () => {
    fresh();
    const hoursAgo = [3, 1, 5, 2, 4];
    for (const h of hoursAgo) {
      writeFileSync(join(exportDir, `h${h}`), String(h));
      const at = new Date(Date.now() - h * 3600_000);
      utimesSync(join(exportDir, `h${h}`), at, at);
    }
    const order: string[] = [];
    const stop = await subscribeFsEvents(redis, ks, (p) => order.push(p));
    try {
      const t = await start({ watch: false, concurrency: 1, pathsInFlight: 1 });
      await t.idle();
      await until('all events', async () => order.length === 5);
      assert.deepEqual(order, ['/h1', '/h2', '/h3', '/h4', '/h5']);
    } finally {
      await stop();
    }
  });

  it('picks up create, modify, rename and delete within a couple of seconds', async () => {
    fresh();
    const t = await start();
    await t.idle();
    writeFileSync(join(exportDir, 'f.txt'), 'one');
    const v1 = await until('create', () => getCurrent(redis, ks, '/f.txt'));
    writeFileSync(join(exportDir, 'f.txt'), 'two two');
    await until('modify', async () => (await getCurrent(redis, ks, '/f.txt'))?.size === 7);
    renameSync(join(exportDir, 'f.txt'), join(exportDir, 'g.txt'));
    const g = await until('rename', async () => !(await getCurrent(redis, ks, '/f.txt')) && getCurrent(redis, ks, '/g.txt'));
    assert.equal(g.size, 7);
    assert.notEqual(g.chunkListHash, v1.chunkListHash);
    mkdirSync(join(exportDir, 'd/e'), { recursive: true });
    writeFileSync(join(exportDir, 'd/e/h'), 'h');
    await until('dir create', () => getCurrent(redis, ks, '/d/e/h'));
    // The count moves once the commit has returned, a moment after the namespace shows the file.
    await until('2 export files counted: g.txt and d/e/h; directories do not count', async () => t.stats().exportFiles === 2);
    renameSync(join(exportDir, 'd'), join(exportDir, 'd2'));
    await until('dir rename', async () => !(await getCurrent(redis, ks, '/d')) && getCurrent(redis, ks, '/d2/e/h'));
    rmSync(join(exportDir, 'g.txt'));
    rmSync(join(exportDir, 'd2'), { recursive: true });
    await until('delete', async () => (await listDir(redis, ks, '/')).length === 0);
    await until('no export file counted', async () => t.stats().exportFiles === 0);
    const tomb = (await listVersions(redis, ks, '/g.txt')).find((v) => v.current);
    assert.equal(tomb?.type, 'tombstone');
    assert.ok(BigInt(tomb!.mtimeNs) > BigInt(g.mtimeNs));
    assert.ok(t.stats().renamesReused >= 1, JSON.stringify(t.stats()));
  });

  it('notices deletes and creates the watcher missed once anything happens in the same directory', async () => {
    fresh();
    mkdirSync(join(exportDir, 'sub'));
    writeFileSync(join(exportDir, 'sub/a'), 'a');
    writeFileSync(join(exportDir, 'b'), 'b');
    const t = await start();
    await t.idle();
    assert.ok(await getCurrent(redis, ks, '/sub/a'));
    // what chokidar does when it loses a directory's events: nothing more is heard from it
    const watcher = (t as unknown as { watcher: { unwatch(p: string): void } }).watcher;
    watcher.unwatch(join(exportDir, 'sub'));
    watcher.unwatch(join(exportDir, 'unheard'));
    rmSync(join(exportDir, 'sub'), { recursive: true });
    writeFileSync(join(exportDir, 'unheard'), 'u');
    writeFileSync(join(exportDir, 'c'), 'c');
    await until('the missed delete', async () => !(await getCurrent(redis, ks, '/sub')) && !(await getCurrent(redis, ks, '/sub/a')));
    await until('the missed create', () => getCurrent(redis, ks, '/unheard'));
    assert.deepEqual((await listDir(redis, ks, '/')).map((e) => e.name).sort(), ['b', 'c', 'unheard']);
  });

  it('translates extended attributes, and a change of them alone into a new version without reading the file', async () => {
    fresh();
    mkdirSync(join(exportDir, 'd'));
    writeFileSync(join(exportDir, 'd/f'), 'content');
    symlinkSync('f', join(exportDir, 'd/l'));
    const py = (code: string) => execFileSync('python3', ['-c', `import os\n${code}`], { cwd: exportDir });
    py([
      "os.setxattr('d/f', 'user.tag', b'one')",
      "os.setxattr('d', 'user.dir', b'yes')",
      "os.setxattr('d/l', 'trusted.link', b'own', follow_symlinks=False)",
    ].join('\n'));
    const t = await start();
    await t.idle();
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    const f = await getCurrent(redis, ks, '/d/f');
    assert.deepEqual(f?.xattrs, { 'user.tag': b64('one') });
    assert.deepEqual((await getCurrent(redis, ks, '/d'))?.xattrs, { 'user.dir': b64('yes') });
    assert.deepEqual((await getCurrent(redis, ks, '/d/l'))?.xattrs, { 'trusted.link': b64('own') });
    // More than a version keeps (ext4 cannot hold that much; tmpfs can): none kept.
    const big = `/dev/shm/oswalk-xattr-${process.pid}`;
    writeFileSync(big, 'x');
    try {
      py(`os.setxattr('${big}', 'user.big', bytes(5000))`);
      assert.deepEqual(exportXattrs(big), { tooBig: true });
    } finally {
      rmSync(big);
    }
    const read = t.stats().filesTranslated;
    py("os.setxattr('d/f', 'user.tag', b'two'); os.setxattr('d/f', 'user.more', b'3')");
    const g = await until('xattr change', async () => {
      const v = await getCurrent(redis, ks, '/d/f');
      return v?.xattrs?.['user.tag'] === b64('two') && v;
    });
    assert.deepEqual(g.xattrs, { 'user.tag': b64('two'), 'user.more': b64('3') });
    assert.equal(g.chunkListHash, f?.chunkListHash);
    assert.equal(t.stats().filesTranslated, read, 'the content was not read again');
  });

  it('skips unchanged files after a restart and tombstones files deleted while it was down', async () => {
    fresh();
    for (let i = 0; i < 20; i++) writeFileSync(join(exportDir, `f${i}`), `content ${i}`);
    let t = await start({ watch: false });
    await t.idle();
    await t.close();
    assert.equal(t.stats().exportFiles, 20);
    const before = (await listVersions(redis, ks, '/f3')).length;
    rmSync(join(exportDir, 'f0'));
    chmodSync(join(exportDir, 'f1'), 0o600);
    t = await start({ watch: false });
    await t.idle();
    // f1: a new version for the new mode, without reading the file again
    assert.equal(t.stats().filesTranslated, 0);
    assert.equal(t.stats().versions, 2);
    assert.equal(t.stats().tombstones, 1);
    assert.equal(t.stats().exportFiles, 19, 'counted from the saved state, less the deleted file');
    assert.equal((await getCurrent(redis, ks, '/f1'))?.mode, 0o100600);
    assert.equal((await listVersions(redis, ks, '/f3')).length, before);
    assert.equal(await getCurrent(redis, ks, '/f0'), undefined);
    await t.close();
  });

  it('hard links of the export directory become hard links: read once, one file changed through either name', async () => {
    fresh();
    mkdirSync(join(exportDir, 'd'));
    writeFileSync(join(exportDir, 'a'), 'one');
    linkSync(join(exportDir, 'a'), join(exportDir, 'd/b'));
    writeFileSync(join(exportDir, 'lone'), 'one');
    const t = await start();
    await t.idle();
    const [a, b] = [(await getCurrent(redis, ks, '/a'))!, (await getCurrent(redis, ks, '/d/b'))!];
    assert.ok(a.inode, 'a is a hard-linked file');
    assert.deepEqual([b.inode, a.links, b.links, b.chunkListHash, b.source], [a.inode, 2, 2, a.chunkListHash, 'export']);
    assert.equal((await getCurrent(redis, ks, '/lone'))?.inode, undefined, 'a file of the same content is another file');
    assert.deepEqual([t.stats().hardLinks, t.stats().filesTranslated], [1, 2], 'the linked file read once');
    // a change through one name is the file's
    writeFileSync(join(exportDir, 'd/b'), 'two two');
    await until('a change through d/b shows at a', async () => (await getCurrent(redis, ks, '/a'))?.size === 7);
    assert.equal((await getCurrent(redis, ks, '/a'))?.inode, a.inode);
    // a third name made while it runs, then the first name removed
    linkSync(join(exportDir, 'a'), join(exportDir, 'c'));
    await until('a third name', async () => (await getCurrent(redis, ks, '/c'))?.links === 3);
    rmSync(join(exportDir, 'a'));
    await until('the first name gone', async () => !(await getCurrent(redis, ks, '/a')) && (await getCurrent(redis, ks, '/c'))?.links === 2);
  });

  it('two nodes: newest copy wins, a delete hides the older copy, a newer write brings it back', async () => {
    fresh();
    const export2 = tmp('export2');
    const t1 = await start({ debounceMs: 100 });
    const t2 = await startTranslator({ fs: { redis, ks }, node: 'n2', exportDir: export2, store: new ChunkStore(tmp('store2'), { log: quiet }), log: quiet, debounceMs: 100 });
    running.push(t2);
    const old = new Date(Date.now() - 3600_000);
    writeFileSync(join(export2, 'doc.txt'), 'old copy');
    utimesSync(join(export2, 'doc.txt'), old, old);
    await until('n2 copy', async () => (await getCurrent(redis, ks, '/doc.txt'))?.node === 'n2');
    writeFileSync(join(exportDir, 'doc.txt'), 'newer copy');
    await until('n1 wins', async () => (await getCurrent(redis, ks, '/doc.txt'))?.node === 'n1');
    rmSync(join(exportDir, 'doc.txt'));
    await until('deleted everywhere', async () => !(await getCurrent(redis, ks, '/doc.txt')));
    // n2 restarts its daemon: its old copy is committed again and stays hidden
    await t2.close();
    const t2b = await startTranslator({ fs: { redis, ks }, node: 'n2', exportDir: export2, store: new ChunkStore(tmp('store3'), { log: quiet }), log: quiet, stateFile: join(tmp('state'), 's.json') });
    running.push(t2b);
    await t2b.idle();
    assert.equal(t2b.stats().filesTranslated, 1);
    assert.equal(await getCurrent(redis, ks, '/doc.txt'), undefined);
    // touching it on n2 makes it the newest: back, with n2's content
    const now = new Date();
    utimesSync(join(export2, 'doc.txt'), now, now);
    const back = await until('newer write back', () => getCurrent(redis, ks, '/doc.txt'));
    assert.equal(back.node, 'n2');
    assert.equal(back.size, 8);
    await t1.idle();
  });

  it('a file deleted while it is read leaves no version and the daemon carries on', async () => {
    fresh();
    const big = join(exportDir, 'big.bin');
    writeFileSync(big, Buffer.alloc(0));
    for (let i = 0; i < 8; i++) appendFileSync(big, randomBytes(8 << 20));
    const t = await start();
    // taken from the backlog: it is being read now (or, on a fast machine, already done:
    // then the delete is a tombstone, and the end state is the same)
    await until('reading started', async () => t.stats().scanned && t.stats().backlogFiles === 0);
    rmSync(big);
    await t.idle();
    assert.equal(await getCurrent(redis, ks, '/big.bin'), undefined);
    assert.equal(t.stats().errors, 0);
    writeFileSync(join(exportDir, 'next'), 'n');
    await until('next file', () => getCurrent(redis, ks, '/next'));
  });

  it('keeps translating across a redis-server restart', async () => {
    fresh();
    writeFileSync(join(exportDir, 'before'), 'b');
    const t = await start();
    await t.idle();
    await server.restart(300);
    writeFileSync(join(exportDir, 'after'), 'a');
    await until('file after restart', () => getCurrent(redis, ks, '/after'), 8000);
    assert.equal((await getCurrent(redis, ks, '/before'))?.size, 1);
  });

  it('waits for a file being appended to before translating it', async () => {
    fresh();
    const t = await start({ debounceMs: 300 });
    await t.idle();
    const p = join(exportDir, 'growing.log');
    for (let i = 0; i < 15; i++) {
      appendFileSync(p, `line ${i}\n`);
      await new Promise((r) => setTimeout(r, 80));
    }
    const size = 15 * 7 + 5 * 1; // 'line N\n' is 7 bytes, 'line NN\n' 8
    await until('settled', async () => (await getCurrent(redis, ks, '/growing.log'))?.size === size);
    assert.equal((await listVersions(redis, ks, '/growing.log')).length, 1);
  });

  it('survives a symlink loop, a fifo and a name that is not UTF-8', async () => {
    fresh();
    symlinkSync('b', join(exportDir, 'a'));
    symlinkSync('a', join(exportDir, 'b'));
    symlinkSync('.', join(exportDir, 'self'));
    execFileSync('mkfifo', [join(exportDir, 'pipe')]);
    writeFileSync(Buffer.concat([Buffer.from(exportDir + '/bad-'), Buffer.from([0xff, 0xfe])]), 'x');
    writeFileSync(join(exportDir, 'ok'), 'fine');
    const t = await start();
    await t.idle();
    assert.equal((await getCurrent(redis, ks, '/a'))?.target, 'b');
    assert.equal((await getCurrent(redis, ks, '/self'))?.type, 'symlink');
    assert.deepEqual((await listDir(redis, ks, '/')).map((e) => e.name), ['a', 'b', 'ok', 'self']);
    assert.equal(t.stats().skipped, 2);
    writeFileSync(join(exportDir, 'later'), 'still watching');
    await until('later file', () => getCurrent(redis, ks, '/later'));
  });

  it('skips names the namespace cannot hold exactly (not UTF-8), each logged once with its path escaped and counted while it stays', async () => {
    fresh();
    const bytes = (...parts: (string | number[])[]) => Buffer.concat([Buffer.from(exportDir + '/'), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))]);
    writeFileSync(bytes('bad-', [0xff]), 'x');
    // two names that differ only in bytes that are not UTF-8: decoded, both would be "x\uFFFD"
    writeFileSync(bytes('x', [0xfa]), 'one');
    writeFileSync(bytes('x', [0xfb]), 'two');
    mkdirSync(bytes('dir-', [0xc3, 0x28]));
    writeFileSync(Buffer.concat([bytes('dir-', [0xc3, 0x28]), Buffer.from('/inside')]), 'not reached');
    symlinkSync(Buffer.from([0x2e, 0x2f, 0xe9]), bytes('link'));
    writeFileSync(join(exportDir, 'ok-é.txt'), 'fine');
    writeFileSync(join(exportDir, 'u\uFFFD'), 'a real U+FFFD');
    const lines: { msg: string; path?: string }[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const t = await start({ log });
    await t.idle();
    assert.deepEqual((await listDir(redis, ks, '/')).map((e) => e.name).sort(), ['ok-é.txt', 'u\uFFFD']);
    assert.equal((await getCurrent(redis, ks, '/u\uFFFD'))?.size, 13);
    assert.equal(t.stats().exportSkipped, 5);
    const skips = () => lines.filter((l) => /not valid UTF-8/.test(l.msg)).map((l) => l.path!.slice(exportDir.length + 1)).sort();
    assert.deepEqual(skips(), ['bad-\\xff', 'dir-\\xc3(', 'link', 'x\\xfa', 'x\\xfb']);
    assert.match(lines.find((l) => l.path?.endsWith('/link'))!.msg, /target \.\/\\xe9 is not valid UTF-8/);

    // Live: a new one is logged once, however often it changes; one removed is no longer counted.
    writeFileSync(bytes('late-', [0x80]), 'x');
    await until('late name counted', async () => t.stats().exportSkipped === 6);
    for (let i = 0; i < 3; i++) {
      appendFileSync(bytes('late-', [0x80]), 'more');
      await new Promise((r) => setTimeout(r, 300));
    }
    rmSync(bytes('bad-', [0xff]));
    await until('removed name no longer counted', async () => t.stats().exportSkipped === 5);
    writeFileSync(join(exportDir, 'later.txt'), 'still translating');
    await until('later file', () => getCurrent(redis, ks, '/later.txt'));
    assert.deepEqual(skips(), ['bad-\\xff', 'dir-\\xc3(', 'late-\\x80', 'link', 'x\\xfa', 'x\\xfb']);
    // The link given a target the namespace holds is translated and no longer counted.
    rmSync(bytes('link'));
    symlinkSync('ok-é.txt', bytes('link'));
    await until('link translated', async () => (await getCurrent(redis, ks, '/link'))?.target === 'ok-é.txt');
    await until('link no longer counted', async () => t.stats().exportSkipped === 4);
    assert.equal(await getCurrent(redis, ks, '/x\uFFFD'), undefined);
  });

  // root reads every file: the unreadable one needs the CLI to run as another user
  it('oswalk translate as another user: logs an unreadable file, translates the rest, exits 1', { skip: process.getuid?.() !== 0 && 'needs root to run the CLI as nobody' }, async () => {
    fresh();
    // The CLI opens the files of the cluster of --prefix where a new cluster has them.
    const prefix = testPrefix();
    ks = fsKeysOf(prefix);
    chmodSync(exportDir, 0o755);
    chmodSync(storeDir, 0o777);
    writeFileSync(join(exportDir, 'secret'), 'root only');
    chmodSync(join(exportDir, 'secret'), 0o600);
    writeFileSync(join(exportDir, 'public'), 'everyone');
    chmodSync(join(exportDir, 'public'), 0o644);
    chownSync(storeDir, 65534, 65534);
    const res = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI, 'translate', exportDir, '--node', 'n9', '--store', storeDir, '--redis', server.url, '--prefix', prefix, '-o', 'json'], {
        uid: 65534, gid: 65534, env: { ...process.env, OSWALK_LOG_LEVEL: 'warn' },
      });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (code) => resolve({ code, out, err }));
    });
    assert.equal(res.code, 1, res.err);
    assert.match(res.err, /secret/);
    // stdout is the result alone (the log goes to stderr), so a script can parse it.
    assert.equal(JSON.parse(res.out).errors, 1);
    assert.equal((await getCurrent(redis, ks, '/public'))?.node, 'n9');
    assert.equal(await getCurrent(redis, ks, '/secret'), undefined);
  });
});
