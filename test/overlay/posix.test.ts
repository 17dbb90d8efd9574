import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { Registry } from 'prom-client';
import { fsKeysOf, testPrefix } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { registerMountMetrics } from '../../src/overlay/metrics.js';
import { checkPath } from '../../src/overlay/paths.js';
import { connectRedis } from '../../src/state/redis.js';
import { listVersions } from '../../src/state/fs.js';
import { ok, pyErrno, sh, useOneNode } from './helpers.js';

describe('overlay: POSIX behaviour of one mount', () => {
  const prefix = testPrefix();
  const one = useOneNode('posix', prefix);

  it('writes, reads, lists (with . and ..) and stats files in deep directories', async () => {
    const out = await ok('mkdir -p a/b/c/d && printf hello > a/b/c/d/f && cat a/b/c/d/f && stat -c "%s %F" a/b/c/d/f && ls -a a/b/c/d', { cwd: one.n.mnt });
    assert.equal(out, 'hello5 regular file\n.\n..\nf\n');
  });

  it('tells readdir each entry\'s inode number and type (d_ino, d_type) as stat shows them, so find need not stat every name', async () => {
    const out = await ok(`mkdir -p dt/sub && printf x > dt/f && ln -s f dt/l && python3 -c "
import os
for e in sorted(os.scandir('dt'), key=lambda e: e.name):
    st = os.lstat(e.path)
    print(e.name, e.inode() == st.st_ino, e.is_dir(follow_symlinks=False), e.is_symlink())
"`, { cwd: one.n.mnt });
    assert.equal(out, 'f True False False\nl True False True\nsub True True False\n');
  });

  it('answers every failure with the right errno', async () => {
    const py = (code: string) => pyErrno(code, one.n.mnt);
    await ok('mkdir -p e/full && touch e/full/x e/file && mkdir e/empty', { cwd: one.n.mnt });
    assert.equal(await py("os.open('e/nope', os.O_RDONLY)"), 'ENOENT');
    assert.equal(await py("os.mkdir('e/full')"), 'EEXIST');
    assert.equal(await py("os.open('e/file', os.O_CREAT | os.O_EXCL | os.O_WRONLY)"), 'EEXIST');
    assert.equal(await py("os.open('e/file/x', os.O_RDONLY)"), 'ENOTDIR');
    assert.equal(await py("os.rmdir('e/full')"), 'ENOTEMPTY');
    assert.equal(await py("os.rmdir('e/file')"), 'ENOTDIR');
    assert.equal(await py("os.unlink('e/full')"), 'EISDIR');
    assert.equal(await py("os.open('e/full', os.O_WRONLY)"), 'EISDIR');
    assert.equal(await py("os.rename('e/empty', 'e/full')"), 'ENOTEMPTY');
    assert.equal(await py("os.rename('e/file', 'e/empty')"), 'EISDIR');
    assert.equal(await py("os.rename('e/empty', 'e/file')"), 'ENOTDIR');
    assert.equal(await py("os.rename('e', 'e/full/inside')"), 'EINVAL');
    assert.equal(await py("os.link('e/full', 'e/hard')"), 'EPERM');
    assert.equal(await py("os.link('e/file', 'e/full/x')"), 'EEXIST');
    assert.equal(await py("os.readlink('e/file')"), 'EINVAL');
    // The kernel checks permissions against the owners and modes we report.
    await ok('chmod 644 e/file', { cwd: one.n.mnt });
    const r = await sh('runuser -u nobody -- sh -c "echo x > e/file"', { cwd: one.n.mnt });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
    assert.equal(await py("os.rmdir('e/empty')"), 'OK');
  });

  it('keeps extended attributes on files, directories and symlinks, with the errno of every failure', async () => {
    const py = (code: string) => pyErrno(code, one.n.mnt);
    await ok('mkdir xa && echo data > xa/f && ln -s f xa/l', { cwd: one.n.mnt });
    assert.equal(await py([
      "os.setxattr('xa/f', 'user.color', b'blue')",
      "os.setxattr('xa/f', 'user.bin', bytes([0, 124, 255, 10]))",
      "os.setxattr('xa/f', 'trusted.t', b'')",
      "os.setxattr('xa', 'user.dir', b'yes')",
      "os.setxattr('xa/l', 'trusted.link', b'l', follow_symlinks=False)",
      "assert os.getxattr('xa/f', 'user.color') == b'blue'",
      "assert os.getxattr('xa/f', 'user.bin') == bytes([0, 124, 255, 10])",
      "assert os.getxattr('xa/f', 'trusted.t') == b''",
      "assert sorted(os.listxattr('xa/f')) == ['trusted.t', 'user.bin', 'user.color'], os.listxattr('xa/f')",
      "assert os.getxattr('xa', 'user.dir') == b'yes'",
      "assert os.listxattr('xa/l', follow_symlinks=False) == ['trusted.link']",
      "assert os.listxattr('xa/l') == os.listxattr('xa/f')",
      "os.setxattr('xa/f', 'user.color', b'green', os.XATTR_REPLACE)",
      "os.removexattr('xa/f', 'user.bin')",
      "assert sorted(os.listxattr('xa/f')) == ['trusted.t', 'user.color']",
      "assert open('xa/f').read() == 'data\\n'",
    ].join('\n')), 'OK');
    assert.equal(await py("os.getxattr('xa/f', 'user.none')"), 'ENODATA');
    // Namespaces kept nowhere are unsupported, as setxattr says: no POSIX ACLs (`ls -l` asks once).
    assert.equal(await py("os.getxattr('xa/f', 'system.posix_acl_access')"), 'ENOTSUP');
    // Names of what every JavaScript object has are no attributes either.
    assert.equal(await py("os.getxattr('xa/f', 'constructor')"), 'ENOTSUP');
    assert.equal(await py("os.removexattr('xa/f', 'toString')"), 'ENODATA');
    assert.equal(await py("os.removexattr('xa/f', 'user.none')"), 'ENODATA');
    assert.equal(await py("os.setxattr('xa/f', 'user.none', b'x', os.XATTR_REPLACE)"), 'ENODATA');
    assert.equal(await py("os.setxattr('xa/f', 'user.color', b'x', os.XATTR_CREATE)"), 'EEXIST');
    assert.equal(await py("os.setxattr('xa/f', 'other.ns', b'x')"), 'ENOTSUP'); // EOPNOTSUPP, the same number on Linux
    assert.equal(await py("os.setxattr('xa/f', 'user.big', bytes(5000))"), 'ENOSPC');
    // A well-formed one (cap_net_raw), or the kernel refuses it itself with EINVAL.
    assert.equal(await py("import struct; os.setxattr('xa/f', 'security.capability', struct.pack('<5I', 0x02000000, 1 << 13, 0, 0, 0))"), 'ENOTSUP');
    assert.equal(await py("os.getxattr('xa/f', 'security.capability')"), 'ENODATA');
    assert.equal(await py("os.setxattr('xa/f', 'security.other', b'x'); assert os.getxattr('xa/f', 'security.other') == b'x'; os.removexattr('xa/f', 'security.other')"), 'OK');
    assert.equal(await py("os.getxattr('xa/nope', 'user.x')"), 'ENOENT');
    // A buffer too small is ERANGE (the C library asks for the size first, Python does not).
    assert.equal(await ok(`python3 -c "
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(2)
n = libc.getxattr(b'xa/f', b'user.color', buf, 2)
m = libc.listxattr(b'xa/f', buf, 2)
print(n, m, os.strerror(ctypes.get_errno()))
"`, { cwd: one.n.mnt }), '-1 -1 Numerical result out of range\n');
    // Only the owner (or root) may set user. attributes: the kernel checks the mode we report.
    await ok('chmod 644 xa/f', { cwd: one.n.mnt });
    const r = await sh(`runuser -u nobody -- python3 -c "import os; os.setxattr('xa/f', 'user.x', b'1')"`, { cwd: one.n.mnt });
    assert.match(r.stderr, /Permission denied/);
    // Each change is a version; the attributes are in the namespace, so a new FS process has them.
    const redis = connectRedis(one.redis.url);
    try {
      const vs = await listVersions(redis, fsKeysOf(prefix), '/xa/f');
      assert.deepEqual(vs[0].xattrs, { 'user.color': Buffer.from('green').toString('base64'), 'trusted.t': '' });
      // One version per change: user.bin was there after its own set, trusted.t's and the color's replacement.
      assert.equal(vs.filter((v) => v.xattrs?.['user.bin']).length, 3);
    } finally {
      redis.disconnect();
    }
    const restarted = once(one.n.mount, 'restarted');
    process.kill(one.n.mount.pid!, 'SIGKILL');
    await restarted;
    assert.equal(await py("assert os.getxattr('xa/f', 'user.color') == b'green' and os.getxattr('xa', 'user.dir') == b'yes'"), 'OK');
  });

  it('refuses paths that try to leave the namespace', () => {
    for (const bad of ['/a/../b', '/..', 'relative', '/a//b', '/a/./b', '/a\0b', '/' + 'x'.repeat(256)]) {
      assert.throws(() => checkPath(bad), /EINVAL|ENAMETOOLONG/, bad);
    }
    assert.equal(checkPath('/a/b..c/...'), '/a/b..c/...');
  });

  it('keeps symlinks as text: absolute targets are never followed by the server', async () => {
    await ok('ln -s /etc/shadow s/abs 2>/dev/null || (mkdir s && ln -s /etc/shadow s/abs) && ln -s ../a/b/c/d/f s/rel', { cwd: one.n.mnt });
    assert.equal(await ok('readlink s/abs; readlink s/rel; cat s/rel; stat -c %F s/abs', { cwd: one.n.mnt }), '/etc/shadow\n../a/b/c/d/f\nhellosymbolic link\n');
  });

  it('renames files and directories atomically, over an existing target, keeping mtimes', async () => {
    await ok('mkdir -p r/d1 && echo one > r/d1/x && echo new > r/a && echo old > r/b && touch -d "2003-04-05 06:07:08.5" r/a', { cwd: one.n.mnt });
    await ok('mv r/a r/b && mv r/d1 r/d2', { cwd: one.n.mnt });
    assert.equal(await ok('cat r/b; cat r/d2/x; ls r; stat -c %y r/b', { cwd: one.n.mnt }), 'new\none\nb\nd2\n2003-04-05 06:07:08.500000000 +0000\n');
  });

  it('makes one version per close: overwriting (O_TRUNC) does not commit an empty file first', async () => {
    await ok('echo one > v && echo two > v && echo three >> v', { cwd: one.n.mnt });
    const r = connectRedis(one.redis.url);
    try {
      const versions = await listVersions(r, fsKeysOf(prefix), '/v');
      assert.deepEqual(versions.map((v) => v.size), [10, 4, 4]);
    } finally {
      r.disconnect();
    }
  });

  it('sets mtime with nanoseconds (touch -d, cp -p) and chmod/chown', async () => {
    await ok('echo t > m && touch -d "1999-12-31 23:59:59.123456789" m && cp -p m m2 && chmod 600 m2 && chown 1234:5678 m2', { cwd: one.n.mnt });
    assert.equal(await ok('stat -c "%y %a" m; stat -c "%y %a %u %g" m2', { cwd: one.n.mnt }),
      '1999-12-31 23:59:59.123456789 +0000 644\n1999-12-31 23:59:59.123456789 +0000 600 1234 5678\n');
    // A setgid directory gives what is made in it its group, and a new directory the bit too.
    await ok('mkdir sg && chgrp 1000 sg && chmod 2775 sg && touch sg/f && mkdir sg/d && ln -s f sg/l', { cwd: one.n.mnt });
    assert.equal(await ok('stat -c "%n %g %A" sg/f sg/d && stat -c "%n %g" sg/l', { cwd: one.n.mnt }), 'sg/f 1000 -rw-r--r--\nsg/d 1000 drwxr-sr-x\nsg/l 1000\n');
    // One time set, the other omitted (UTIME_OMIT): touch -m, and GNU tar restoring mtimes.
    const src = `/tmp/oswalk-tarm-${process.pid}`;
    try {
      await ok(`rm -rf ${src} && mkdir -p ${src}/t/d && echo a > ${src}/t/d/f && touch -d 2001-02-03T04:05:06 ${src}/t/d/f ${src}/t/d ${src}/t`);
      await ok(`echo t > m3 && touch -m -d "2002-03-04 05:06:07.25" m3 && tar -C ${src} -cf - t | tar -xf -`, { cwd: one.n.mnt });
      assert.equal(await ok('stat -c "%n %y" m3 t t/d t/d/f', { cwd: one.n.mnt }),
        'm3 2002-03-04 05:06:07.250000000 +0000\n' + ['t', 't/d', 't/d/f'].map((p) => `${p} 2001-02-03 04:05:06.000000000 +0000\n`).join(''));
    } finally {
      await ok(`rm -rf ${src}`);
    }
  });

  it('keeps every page written through a shared mmap (the kernel writes them back in parallel requests)', async () => {
    const kept = await ok(`python3 -c "
import mmap, os
N = 2 * 1048576
out = []
for trial in range(3):
    with open('mm.bin', 'wb') as f: f.write(bytes(N))
    fd = os.open('mm.bin', os.O_RDWR)
    m = mmap.mmap(fd, N, mmap.MAP_SHARED)
    for o in range(0, N, 4096): m[o] = 1
    m.flush(); m.close(); os.close(fd)
    d = open('mm.bin', 'rb').read()
    out.append(sum(d[o] == 1 for o in range(0, N, 4096)))
print(out)
"`, { cwd: one.n.mnt });
    assert.equal(kept, '[512, 512, 512]\n');
    assert.equal(await ok(`ls ${one.n.dir}/state/staging 2>/dev/null | wc -l`), '0\n', 'no staging file left behind');
  });

  it('moves a directory\'s mtime when a name comes or goes in it, and keeps one set with touch -d', async () => {
    const t = (f: string) => ok(`stat -c %Y ${f}`, { cwd: one.n.mnt }).then((s) => Number(s));
    await ok('mkdir dm && touch -d "2001-02-03 04:05:06" dm', { cwd: one.n.mnt });
    assert.equal(await t('dm'), Date.UTC(2001, 1, 3, 4, 5, 6) / 1000);
    const now = Math.floor(Date.now() / 1000);
    await ok('touch dm/x', { cwd: one.n.mnt });
    assert.ok(await t('dm') >= now, 'a name came');
    await ok('touch -d "2001-02-03 04:05:06" dm && echo more >> dm/x', { cwd: one.n.mnt });
    assert.equal(await t('dm'), Date.UTC(2001, 1, 3, 4, 5, 6) / 1000, 'new content under a name is no change of the directory');
    await ok('rm dm/x', { cwd: one.n.mnt });
    assert.ok(await t('dm') >= now, 'a name went');
    assert.ok(await t('.') >= now - 600, 'the root shows when its names last changed, not 1970');
  });

  it('gives a non-root user\'s new files and directories to that user', async () => {
    await ok('mkdir pub && chmod 1777 pub', { cwd: one.n.mnt });
    await ok('runuser -u nobody -- sh -c "echo mine > pub/f && mkdir pub/d"', { cwd: one.n.mnt });
    assert.equal(await ok('stat -c "%u %g" pub/f pub/d; cat pub/f', { cwd: one.n.mnt }), '65534 65534\n65534 65534\nmine\n');
  });

  it('appends with O_APPEND, truncates and ftruncates, and reads holes as zeros', async () => {
    const py = (code: string) => pyErrno(code, one.n.mnt);
    assert.equal(await py([
      "for i in range(3):",
      "    fd = os.open('ap', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644); os.write(fd, b'line%d\\n' % i); os.close(fd)",
      "fd = os.open('tr', os.O_RDWR | os.O_CREAT, 0o644); os.write(fd, b'0123456789'); os.ftruncate(fd, 4); os.pwrite(fd, b'Z', 8); os.close(fd)",
      "os.truncate('ap', 12)",
    ].join('\n')), 'OK');
    assert.equal(await ok('cat ap; echo; od -An -c tr', { cwd: one.n.mnt }), 'line0\nline1\n\n   0   1   2   3  \\0  \\0  \\0  \\0   Z\n');
  });

  it('keeps the bytes of a file written in order through a read, a write elsewhere, a truncate (to 0 too) or an fsync before close', async () => {
    // Such a file goes to the live chunker with no staging copy; each of these moves it into one.
    const W = "os.O_RDWR | os.O_CREAT | os.O_TRUNC";
    assert.equal(await pyErrno([
      'data = os.urandom(12 << 20)',
      'def check(name, want):',
      "    with open(name, 'rb') as f: assert f.read() == want, name",
      `fd = os.open('lr', ${W}, 0o644); os.write(fd, data[:5 << 20])`,
      'assert os.pread(fd, 100, 4 << 20) == data[4 << 20:(4 << 20) + 100]',
      "os.write(fd, data[5 << 20:]); os.close(fd); check('lr', data)",
      `fd = os.open('lw', ${W}, 0o644); os.write(fd, data[:6 << 20]); os.pwrite(fd, b'X' * 10, 1000)`,
      "os.write(fd, data[6 << 20:]); os.close(fd); check('lw', data[:1000] + b'X' * 10 + data[1010:])",
      `fd = os.open('lt', ${W}, 0o644); os.write(fd, data[:6 << 20]); os.ftruncate(fd, 3 << 20)`,
      "os.pwrite(fd, data[3 << 20:], 3 << 20); os.close(fd); check('lt', data)",
      `fd = os.open('lf', ${W}, 0o644); os.write(fd, data[:6 << 20]); os.fsync(fd)`,
      "os.write(fd, data[6 << 20:]); os.close(fd); check('lf', data)",
      "with open('lf', 'wb') as f: f.write(data[::-1])",
      "check('lf', data[::-1])",
      `fd = os.open('l0', ${W}, 0o644); os.write(fd, data[:3 << 20]); os.ftruncate(fd, 0)`,
      "os.pwrite(fd, data[5 << 20:], 0); os.close(fd); check('l0', data[5 << 20:])",
    ].join('\n'), one.n.mnt), 'OK');
  });

  it('shows a handle opened before another one wrote the new bytes (its reads no longer come from the old chunks)', async () => {
    assert.equal(await pyErrno([
      'data = os.urandom(3 << 20)',
      "with open('fr', 'wb') as f: f.write(data)",
      "r = os.open('fr', os.O_RDONLY)",
      'assert os.pread(r, 1 << 20, 0) == data[:1 << 20]',
      "w = os.open('fr', os.O_RDWR); os.pwrite(w, b'X' * 8192, 4096)",
      // Out of the kernel's page cache, so the read reaches the filesystem.
      'os.posix_fadvise(r, 0, 0, os.POSIX_FADV_DONTNEED)',
      "assert os.pread(r, 16384, 0) == data[:4096] + b'X' * 8192 + data[12288:16384]",
      'os.close(w); os.posix_fadvise(r, 0, 0, os.POSIX_FADV_DONTNEED)',
      "assert os.pread(r, 16384, 0) == data[:4096] + b'X' * 8192 + data[12288:16384]",
      'os.close(r)',
    ].join('\n'), one.n.mnt), 'OK');
  });

  it('counts its cluster-wide locks for Prometheus: grants by kind, waits and the time waited', async () => {
    const registry = new Registry();
    registerMountMetrics(registry, one.n.mount);
    const metric = async (name: string, labels = ''): Promise<number> => {
      const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(await registry.metrics());
      return m ? Number(m[1]) : NaN;
    };
    const before = {
      flock: await metric('oswalk_mount_locks_granted_total', '{kind="flock"}'),
      posix: await metric('oswalk_mount_locks_granted_total', '{kind="posix"}'),
      waits: await metric('oswalk_mount_lock_waits_total', '{kind="flock"}'),
      seconds: await metric('oswalk_mount_lock_wait_seconds_total'),
    };
    // A holder, and a second open file that waits for it in a child process; the holder lets go
    // once the mount counts the wait (a line on its stdin), then takes a lockf.
    const py = spawn('python3', ['-c', [
      'import fcntl, os, sys',
      "a = os.open('locked', os.O_RDWR | os.O_CREAT, 0o644); fcntl.flock(a, fcntl.LOCK_EX)",
      'pid = os.fork()',
      'if pid == 0:',
      "    b = os.open('locked', os.O_RDWR); fcntl.flock(b, fcntl.LOCK_EX); os._exit(0)",
      'sys.stdin.readline(); fcntl.flock(a, fcntl.LOCK_UN)',
      'assert os.waitpid(pid, 0)[1] == 0',
      "fcntl.lockf(a, fcntl.LOCK_EX); os.close(a); print('OK')",
    ].join('\n')], { cwd: one.n.mnt, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    py.stdout!.on('data', (d: Buffer) => (out += d));
    const exited = once(py, 'exit');
    await until('the child to wait for the lock', async () => (await metric('oswalk_mount_lock_waiting')) === 1, 10_000);
    py.stdin!.end('\n');
    assert.deepEqual(await exited, [0, null]);
    assert.equal(out, 'OK\n');
    assert.equal(await metric('oswalk_mount_locks_granted_total', '{kind="flock"}') - before.flock, 2);
    assert.equal(await metric('oswalk_mount_locks_granted_total', '{kind="posix"}') - before.posix, 1);
    assert.equal(await metric('oswalk_mount_lock_waits_total', '{kind="flock"}') - before.waits, 1);
    assert.ok(await metric('oswalk_mount_lock_wait_seconds_total') - before.seconds > 0);
    assert.equal(await metric('oswalk_mount_lock_waiting'), 0);
  });

  it('counts its reads for Prometheus: those of an unchanged file on the FUSE threads, of a changed one in JavaScript', async () => {
    const registry = new Registry();
    registerMountMetrics(registry, one.n.mount);
    const metric = async (name: string, labels = ''): Promise<number> => {
      const text = await registry.metrics();
      const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : NaN;
    };
    const fast = await metric('oswalk_mount_read_bytes_total', '{served="fuse_threads"}');
    const restarts = await metric('oswalk_mount_fs_restarts_total'); // the xattr test kills the FS process once
    const js = await metric('oswalk_mount_read_bytes_total', '{served="javascript"}');
    assert.equal(await pyErrno([
      'data = os.urandom(3 << 20)',
      "with open('counted', 'wb') as f: f.write(data)",
      // Out of the kernel's page cache, so the reads reach the filesystem.
      "r = os.open('counted', os.O_RDONLY); os.posix_fadvise(r, 0, 0, os.POSIX_FADV_DONTNEED)",
      'got = b"".join(os.pread(r, 1 << 20, i << 20) for i in range(3)); os.close(r)',
      'assert got == data',
      "w = os.open('counted', os.O_RDWR); os.pwrite(w, b'Y' * 4096, 0); os.posix_fadvise(w, 0, 0, os.POSIX_FADV_DONTNEED)",
      "assert os.pread(w, 1 << 20, 0) == b'Y' * 4096 + data[4096:1 << 20]; os.close(w)",
    ].join('\n'), one.n.mnt), 'OK');
    assert.ok(await metric('oswalk_mount_read_bytes_total', '{served="fuse_threads"}') - fast >= 3 << 20);
    assert.ok(await metric('oswalk_mount_read_bytes_total', '{served="javascript"}') - js >= 1 << 20);
    assert.ok(await metric('oswalk_mount_chunk_loads_total', '{source="local_fuse_threads"}') >= 3);
    // The chunks were written through this mount, with their CRC: no SHA-256 on the way back.
    assert.ok(await metric('oswalk_mount_chunk_checks_total', '{by="crc32"}') >= 3);
    assert.equal(await metric('oswalk_mount_chunk_checks_total', '{by="sha256"}'), 0);
    assert.equal(await metric('oswalk_mount_fs_restarts_total'), restarts);
    assert.equal(await metric('oswalk_mount_unavailable_total'), 0);
  });

  it('hard links: every name shows a change through another at once, though the kernel had cached it (ln, write, rm, mv over)', async () => {
    const m = one.n.mnt;
    // Each step stats the names first, so the kernel holds their attributes when the next one changes them.
    const out = await ok([
      'mkdir hl && cd hl && echo hi > x && stat -c %h x',
      'ln x y && stat -c "%i %h" x y | uniq -c | sed "s/^ *//; s/ .* / /"',
      'echo new > y && cat x && stat -c %s x',
      'ln y z && rm x && stat -c %h y z',
      'echo other > o && mv o y && stat -c "%h %s" y z',
      'cat z && rm z && ls',
    ].join(' && '), { cwd: m });
    assert.equal(out, '1\n2 2\nnew\n4\n2\n2\n1 6\n1 4\nnew\ny\n');
  });

  it('keeps an unlinked file usable through its open descriptors, and leaves nothing behind', async () => {
    assert.equal(await pyErrno([
      "fd = os.open('gone', os.O_RDWR | os.O_CREAT, 0o644); os.write(fd, b'abc'); os.unlink('gone')",
      "assert 'gone' not in os.listdir('.')",
      "os.lseek(fd, 0, 0); assert os.read(fd, 10) == b'abc'",
      "os.write(fd, b'def'); assert os.fstat(fd).st_size == 6; os.close(fd)",
      "assert not [n for n in os.listdir('.') if n.startswith('.fuse_hidden') or n == 'gone']",
    ].join('\n'), one.n.mnt), 'OK');
  });

  it('holds a 5 GB sparse file: truncate -s 5G, write at the end, read it back', async () => {
    await ok('truncate -s 5G big && printf END | dd of=big bs=1 seek=$((5*1024*1024*1024-3)) conv=notrunc status=none', { cwd: one.n.mnt, timeoutMs: 300_000 });
    assert.equal(await ok('stat -c %s big; tail -c 3 big; dd if=big bs=1M skip=2500 count=1 status=none | tr -d "\\0" | wc -c', { cwd: one.n.mnt, timeoutMs: 120_000 }),
      `${5 * 1024 ** 3}\nEND0\n`);
  });

  it('reports ENOSPC when the local disk is full, for a file written in order (chunk store) or not (staging)', async () => {
    const staging = `${one.n.stateDir}/staging`;
    const chunks = `${one.n.stateDir}/chunks`;
    await ok(`mkdir -p ${chunks} && mount -t tmpfs -o size=1m tmpfs ${staging}`);
    try {
      await ok(`mount -t tmpfs -o size=1m tmpfs ${chunks} && mkdir ${chunks}/own ${chunks}/cache ${chunks}/tmp ${chunks}/quarantine`);
      for (const seek of [0, 1]) {
        const r = await sh(`dd if=/dev/urandom of=full${seek} bs=64k count=64 seek=${seek} status=none`, { cwd: one.n.mnt });
        assert.notEqual(r.code, 0, `seek=${seek}`);
        assert.match(r.stderr, /No space left on device/, `seek=${seek}`);
      }
    } finally {
      await ok(`umount -l ${staging}; ! mountpoint -q ${chunks} || umount -l ${chunks}`);
    }
  });

  it('answers statfs (df) from the local disk', async () => {
    const out = await ok(`stat -f -c "%T %b" ${one.n.mnt}`);
    assert.match(out, /^fuseblk|^fuse /);
    assert.ok(Number(out.split(' ')[1]) > 0);
  });
});
