import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fsKeysOf, testPrefix } from '../helpers/redis.js';
import { connectRedis } from '../../src/state/redis.js';
import { listDir } from '../../src/state/fs.js';
import { ok, pyErrno, useOneNode } from './helpers.js';

/**
 * Names the namespace cannot hold exactly are refused, never changed: a name that is not UTF-8
 * (EILSEQ), a component over 255 bytes or a path past PATH_MAX (ENAMETOOLONG).
 */
describe('overlay: names and path limits', () => {
  const prefix = testPrefix();
  const one = useOneNode('names', prefix);
  const py = (code: string) => pyErrno(code, one.n.mnt);

  it('refuses with EILSEQ every name that is not UTF-8: create, mkdir, mknod, symlink, rename, link, lookup, xattr', async () => {
    await ok('mkdir u && echo data > u/f', { cwd: one.n.mnt });
    assert.equal(await py("os.open(b'u/\\xff.txt', os.O_CREAT | os.O_WRONLY)"), 'EILSEQ');
    assert.equal(await py("os.mkdir(b'u/d\\xfe')"), 'EILSEQ');
    assert.equal(await py("os.mkfifo(b'u/p\\xfe')"), 'EILSEQ');
    assert.equal(await py("os.symlink(b'f', b'u/l\\xfe')"), 'EILSEQ');
    // a symlink's target is kept as text too: one that is not UTF-8 would be changed
    assert.equal(await py("os.symlink(b'\\xe9t\\xe9', b'u/l')"), 'EILSEQ');
    assert.equal(await py("os.rename(b'u/f', b'u/g\\xc0\\xaf')"), 'EILSEQ');
    assert.equal(await py("os.link(b'u/f', b'u/h\\xed\\xa0\\x80')"), 'EILSEQ');
    assert.equal(await py("os.stat(b'u/\\xff.txt')"), 'EILSEQ');
    assert.equal(await py("os.setxattr(b'u/f', b'user.\\xff', b'x')"), 'EILSEQ');
    assert.equal(await ok('cat u/f; ls -A u', { cwd: one.n.mnt }), 'data\nf\n');
  });

  it('keeps names differing only in bytes that are not UTF-8 from becoming one file', async () => {
    await ok('mkdir two', { cwd: one.n.mnt });
    // Decoded, both would be "a\uFFFD": the second write would overwrite the first.
    assert.equal(await py("fd = os.open(b'two/a\\xfa', os.O_CREAT | os.O_WRONLY); os.write(fd, b'one'); os.close(fd)"), 'EILSEQ');
    assert.equal(await py("fd = os.open(b'two/a\\xfb', os.O_CREAT | os.O_WRONLY); os.write(fd, b'two'); os.close(fd)"), 'EILSEQ');
    // A real U+FFFD is a name like any other, and so are names of two, three and four bytes.
    assert.equal(await py([
      "names = ['a\\ufffd', 'é', '日本', '🦀']",
      "for n in names:",
      "    with open(b'two/' + n.encode(), 'wb') as f: f.write(n.encode())",
      "assert sorted(os.listdir(b'two')) == sorted(n.encode() for n in names), os.listdir(b'two')",
      "for n in names:",
      "    with open(b'two/' + n.encode(), 'rb') as f: assert f.read() == n.encode()",
      "os.open(b'two/a\\xfa', os.O_RDONLY)",
    ].join('\n')), 'EILSEQ');
    const redis = connectRedis(one.redis.url);
    try {
      assert.deepEqual((await listDir(redis, fsKeysOf(prefix), '/two')).map((e) => e.name).sort(), ['a\uFFFD', 'é', '日本', '🦀'].sort());
    } finally {
      redis.disconnect();
    }
  });

  it('gives ENAMETOOLONG, not EINVAL, past NAME_MAX, past PATH_MAX in one call and past the namespace\'s bound; deeper paths from the root work, as on ext4', async () => {
    // Each directory is made from an open descriptor of its parent, as mkdir -p does, so the
    // path the mount sees grows past what one system call could name.
    const deep = [
      'top = os.open(".", os.O_RDONLY)',
      'def descend(fd, name):',
      '    os.mkdir(name, dir_fd=fd)',
      '    return os.open(name, os.O_RDONLY, dir_fd=fd)',
      'fd = descend(top, "deep")',
      // "/deep" + 14 × "/" + 255 bytes = 3589 bytes
      'for i in range(14): fd = descend(fd, ("%02d" % i) + "x" * 253)',
    ];
    assert.equal(await py([
      ...deep,
      // + "/" + 255 + "/" + 249 = 4095 bytes: PATH_MAX's longest, from the mount's root
      'last = descend(fd, "y" * 255)',
      'w = os.open("z" * 249, os.O_CREAT | os.O_WRONLY, dir_fd=last); os.write(w, b"deepest"); os.close(w)',
      'r = os.open("z" * 249, os.O_RDONLY, dir_fd=last); assert os.read(r, 100) == b"deepest"; os.close(r)',
      // past it from the root, as on ext4 (each call names one component)
      'fd = descend(last, "z" * 250)',
      'w = os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd); os.write(w, b"deeper"); os.close(w)',
      'r = os.open("f", os.O_RDONLY, dir_fd=fd); assert os.read(r, 100) == b"deeper"; os.close(r)',
    ].join('\n')), 'OK');
    // The namespace's own bound, 32 KiB from the root: 4097 + 120 × 256 bytes is past it.
    assert.equal(await py([
      ...deep.map((line) => line.replace('"deep"', '"deep2"')),
      'fd = descend(fd, "y" * 255); fd = descend(fd, "z" * 250)',
      'for i in range(120): fd = descend(fd, ("%03d" % i) + "q" * 252)',
    ].join('\n')), 'ENAMETOOLONG');
    assert.equal(await py('os.mkdir("n" * 256)'), 'ENAMETOOLONG');
    assert.equal(await py('os.open("n" * 256, os.O_CREAT | os.O_WRONLY)'), 'ENAMETOOLONG');
    // mkdir -p itself, 20 levels of 255 bytes (5119): it goes a level at a time, so it works, as on ext4
    const r = await ok(`mkdir -p ${Array.from({ length: 20 }, (_, i) => String(i).padStart(2, '0') + 'p'.repeat(253)).join('/')} 2>&1 || true`, { cwd: one.n.mnt });
    assert.equal(r, '');
    assert.equal(await py('os.chdir("00" + "p" * 253); [os.chdir(("%02d" % i) + "p" * 253) for i in range(1, 20)]; os.listdir(".")'), 'OK');
  });
});
