import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { testPrefix } from '../helpers/redis.js';
import { ok, useOneNode } from './helpers.js';

/** Real programs against a real mount: what a job in a container would run. */
describe('overlay: real programs on the mount', () => {
  // A real tree of a few MB: the docs of a few packages (regular files, symlinks, subdirectories).
  const SRC = '/usr/share/doc';
  const TREE = 'git coreutils bash gcc-12 libc6 make rsync tar python3';
  const one = useOneNode('programs', testPrefix());

  it('cp -a then diff -r of a real tree, mtimes and modes kept', async () => {
    await ok(`mkdir cp && for d in ${TREE}; do [ -e ${SRC}/$d ] && cp -a ${SRC}/$d cp/; done; true`, { cwd: one.n.mnt, timeoutMs: 300_000 });
    await ok(`for d in ${TREE}; do [ -e ${SRC}/$d ] && diff -r --no-dereference ${SRC}/$d cp/$d; done; true`, { cwd: one.n.mnt });
    // Directory sizes are the one thing a different filesystem may report differently.
    const list = (root: string) => ok(`cd ${root} && find ${TREE} \\( -type d -printf '%p %M %T@\\n' \\) -o -printf '%p %M %s %T@\\n' 2>/dev/null | sort`);
    assert.equal(await list(`${one.n.mnt}/cp`), await list(SRC));
  });

  it('tar in and out', async () => {
    await ok(`mkdir tar && tar -C ${SRC} -cf - ${TREE} 2>/dev/null | tar -C tar -xf -`, { cwd: one.n.mnt, timeoutMs: 300_000 });
    const a = await ok(`tar -C ${SRC} --sort=name --mtime=@0 --owner=0 --group=0 -cf - ${TREE} 2>/dev/null | md5sum`);
    const b = await ok(`tar -C tar --sort=name --mtime=@0 --owner=0 --group=0 -cf - ${TREE} | md5sum`, { cwd: one.n.mnt });
    assert.equal(b, a);
  });

  it('rsync -a, and a second rsync finds nothing to do', async () => {
    await ok(`rsync -a ${SRC}/git/ rs/`, { cwd: one.n.mnt, timeoutMs: 300_000 });
    await ok(`diff -r --no-dereference ${SRC}/git rs`, { cwd: one.n.mnt });
    const again = await ok(`rsync -ai ${SRC}/git/ rs/`, { cwd: one.n.mnt });
    assert.equal(again, '');
  });

  it('cp -a, rsync -aX and tar --xattrs keep extended attributes, into the mount and out of it', async () => {
    const local = `/tmp/oswalk-xattr-${process.pid}`;
    const dump = (dir: string) => ok(`python3 -c "
import os
for root, dirs, files in sorted(os.walk('.')):
    for n in sorted(dirs + files):
        p = os.path.join(root, n)
        print(p, sorted((k, os.getxattr(p, k, follow_symlinks=False).hex()) for k in os.listxattr(p, follow_symlinks=False) if k.startswith('user.')))
"`, { cwd: dir });
    try {
      await ok(`rm -rf ${local} && mkdir -p ${local}/src/sub && echo a > ${local}/src/a && echo b > ${local}/src/sub/b && python3 -c "
import os
os.setxattr('${local}/src/a', 'user.mime_type', b'text/plain')
os.setxattr('${local}/src/sub/b', 'user.checksum', bytes(range(40)))
os.setxattr('${local}/src/sub', 'user.owner', b'team')
"`);
      const want = await dump(`${local}/src`);
      assert.match(want, /user\.checksum/);
      await ok(`cp -a ${local}/src xcp && rsync -aX ${local}/src/ xrs/ && mkdir xtar && tar --xattrs --xattrs-include='user.*' -C ${local}/src -cf - . | tar --xattrs --xattrs-include='user.*' -C xtar -xf -`, { cwd: one.n.mnt });
      for (const d of ['xcp', 'xrs', 'xtar']) assert.equal(await dump(`${one.n.mnt}/${d}`), want, d);
      await ok(`rsync -aX ${one.n.mnt}/xcp/ ${local}/back/`);
      assert.equal(await dump(`${local}/back`), want);
    } finally {
      await ok(`rm -rf ${local}`);
    }
  });

  it('git init, commit, fsck', async () => {
    const out = await ok([
      'mkdir repo && cd repo && git init -q -b main',
      'git config user.email t@example.com && git config user.name t',
      'cp -r /usr/share/doc/git/RelNotes . 2>/dev/null || seq 1 10000 > RelNotes',
      'echo hello > README && git add -A && git commit -qm one',
      'echo more >> README && git commit -qam two',
      'git fsck --full --strict && git log --oneline | wc -l && git status --porcelain | wc -l',
    ].join(' && '), { cwd: one.n.mnt, timeoutMs: 300_000 });
    assert.match(out, /2\n0\n$/);
  });

  it('builds a C program with make and gcc', async () => {
    const dir = `${one.n.mnt}/cc`;
    await mkdir(dir);
    await writeFile(`${dir}/main.c`, '#include <stdio.h>\nint add(int a, int b);\nint main(void) { printf("%d\\n", add(40, 2)); return 0; }\n');
    await writeFile(`${dir}/add.c`, 'int add(int a, int b) { return a + b; }\n');
    await writeFile(`${dir}/Makefile`, 'prog: main.o add.o\n\tgcc -o prog main.o add.o\n%.o: %.c\n\tgcc -O2 -c $< -o $@\n');
    await ok('make -s', { cwd: dir });
    assert.equal(await ok('./cc/prog', { cwd: one.n.mnt }), '42\n');
    // make judges targets by mtime: nothing to rebuild.
    assert.match(await ok('make', { cwd: dir }), /is up to date/);
  });

  it('fio writes and verifies data (random and sequential)', async () => {
    await ok('mkdir fio', { cwd: one.n.mnt });
    await ok('fio --name=v --directory=fio --size=32m --bs=4k --rw=randwrite --verify=crc32c --do_verify=1 --ioengine=psync --numjobs=1 --output=/dev/null', { cwd: one.n.mnt, timeoutMs: 300_000 });
    await ok('fio --name=s --directory=fio --size=64m --bs=128k --rw=write --verify=sha256 --do_verify=1 --ioengine=psync --output=/dev/null', { cwd: one.n.mnt, timeoutMs: 300_000 });
  });
});
