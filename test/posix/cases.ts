/**
 * The cases of the POSIX conformance suite (conformance.test.ts): each one a syscall on one file
 * type, made by one user after a setup, and the paths whose state is compared afterwards. The
 * setup and the action are Python statements run by test/posix/driver.py in the case's own
 * directory (mode 0777, root's), the setup as root, the action as the case's user; the helpers
 * they use (mk, mkown, new, own, put, read, old, utimens, renameat2, bind, T0/T1/T2, NOW, OMIT)
 * are documented there. '.' (the case's directory) is always observed.
 *
 * Users: root; nobody (65534:65534, no other group); user (1000:1000, also in group 2000).
 */

export type User = 'root' | 'nobody' | 'user';
export type Kind = 'reg' | 'dir' | 'symlink' | 'fifo' | 'sock' | 'chr' | 'blk';
/** Fields observed beyond the default ones (driver.py describe()). */
export type Extra = 'atime' | 'lnkatime' | 'dirnlink' | 'dirsize';

export interface Case {
  /** Unique: "<call> <type> <user>: <what>". */
  id: string;
  call: string;
  type: Kind | '-';
  user: User;
  setup: string;
  act: string;
  /** 'p' (lstat), 'p@' (stat), 'b<a' (b, its times compared with a's before the action). */
  observe: string[];
  extra?: Extra[];
  /** The directory of the case under the run's root (short: long-path cases need the room). */
  dir: string;
}

const cases: Case[] = [];

function add(call: string, type: Kind | '-', user: User, what: string, setup: string, act: string, observe: string[] = [], extra: Extra[] = []): void {
  const id = `${call} ${type} ${user}: ${what}`;
  if (cases.some((c) => c.id === id)) throw new Error(`duplicate case id: ${id}`);
  cases.push({ id, call, type, user, setup, act, observe, extra, dir: `c${String(cases.length).padStart(3, '0')}` });
}

/** Every file type a path can have, and those a program makes with one call. */
const KINDS: Kind[] = ['reg', 'dir', 'symlink', 'fifo', 'sock', 'chr'];
const NEW_KINDS: Kind[] = ['reg', 'dir', 'symlink', 'fifo', 'sock', 'chr', 'blk'];

/** What a case on an entry 'x' of a kind observes: the entry, and a symlink's target. */
const obs = (k: Kind, name = 'x'): string[] => (k === 'symlink' ? [name, `${name}.t`] : [name]);
const py = (s: string) => JSON.stringify(s).replace(/^"|"$/g, "'");
/** Python that makes kind k at name, failing when something is there already. */
const create = (k: Kind, name: string) => `new(${py(k)}, ${py(name)})`;
/** Python that removes an entry of kind k. */
const remove = (k: Kind, name: string) => (k === 'dir' ? `os.rmdir(${py(name)})` : `os.unlink(${py(name)})`);

// ---------------------------------------------------------------------------------------------
// Creating each kind of entry: mkdir, open(O_CREAT|O_EXCL), symlink, mkfifo, mknod (char and
// block devices: root only), bind() of a Unix socket. The new entry's type, mode (what was asked
// for, less the umask 022), owner (the caller, or a set-gid directory's group), and the
// directory's mtime/ctime moving.
for (const k of NEW_KINDS) {
  for (const u of ['root', 'nobody', 'user'] as User[]) add('create', k, u, 'new entry', '', create(k, 'x'), ['x']);
  const exists = k === 'sock' ? 'EADDRINUSE' : 'EEXIST'; // bind() says it its own way
  add('create', k, 'root', `${exists}: the name is a file`, "put('x')", create(k, 'x'), ['x']);
  add('create', k, 'root', `${exists}: the name is a dangling symlink`, "os.symlink('nowhere', 'x')", create(k, 'x'), ['x', 'nowhere']);
  add('create', k, 'root', 'ENOTDIR: a middle component is a file', "put('f')", create(k, 'f/x'), ['f']);
  add('create', k, 'root', 'ENOENT: a middle component is missing', '', create(k, 'no/x'));
  // (A Unix socket's address holds 107 bytes at most: bind() cannot make such names.)
  if (k !== 'sock') {
    add('create', k, 'root', 'ENAMETOOLONG: a 256-byte name', '', create(k, 'n'.repeat(256)));
    add('create', k, 'root', 'a 255-byte name', '', create(k, 'n'.repeat(255)), ['n'.repeat(255)]);
  }
  add('create', k, 'nobody', 'EACCES: the directory is not writable', "os.chmod('.', 0o755)", create(k, 'x'), ['x']);
  add('create', k, 'nobody', 'EACCES: a middle directory is not searchable', "os.mkdir('d', 0o700); os.mkdir('d/e', 0o777)", create(k, 'd/e/x'), ['d']);
  // A set-gid directory gives a new entry its group, and a new directory its set-gid bit.
  add('create', k, 'root', 'in a set-gid directory of group 2000', "os.mkdir('g'); os.chown('g', 0, 2000); os.chmod('g', 0o2775)", create(k, 'g/x'), ['g', 'g/x']);
  add('create', k, 'nobody', 'in a set-gid directory of a group not its own', "os.mkdir('g'); os.chown('g', 0, 2000); os.chmod('g', 0o2777)", create(k, 'g/x'), ['g', 'g/x']);
}
// Modes: set-uid/set-gid/sticky asked at creation, and what each kind keeps of them.
add('create', 'reg', 'root', 'mode 07777 (umask takes 022)', '', "new('reg', 'x', 0o7777)", ['x']);
add('create', 'reg', 'user', 'mode 06777 by a member of the directory group', "os.chown('.', 0, 2000)", "new('reg', 'x', 0o6777)", ['x']);
add('create', 'reg', 'nobody', 'mode 02777 in a set-gid dir of another group: set-gid dropped', "os.chown('.', 0, 2000); os.chmod('.', 0o2777)", "new('reg', 'x', 0o2777)", ['x']);
add('create', 'dir', 'root', 'mode 07777: only the sticky bit is kept', '', "new('dir', 'x', 0o7777)", ['x']);
add('create', 'fifo', 'root', 'mode 07777', '', "new('fifo', 'x', 0o7777)", ['x']);
add('create', 'chr', 'root', 'mode 0600', '', "new('chr', 'x', 0o600)", ['x']);
add('create', 'reg', 'root', 'mknod S_IFREG makes an empty file', '', "os.mknod('x', stat.S_IFREG | 0o640)", ['x']);
add('create', 'reg', 'root', 'mknod mode 0 makes a regular file', '', "os.mknod('x', 0o640)", ['x']);
add('create', 'sock', 'root', 'mknod S_IFSOCK', '', "os.mknod('x', stat.S_IFSOCK | 0o640)", ['x']);
add('create', 'dir', 'root', 'EPERM: mknod S_IFDIR', '', "os.mknod('x', stat.S_IFDIR | 0o755)", ['x']);
add('create', '-', 'root', 'EINVAL: mknod with a bogus file type', '', "os.mknod('x', 0o170000 | 0o644)", ['x']);
add('create', 'chr', 'nobody', 'EPERM: mknod of a device by a user', '', "new('chr', 'x')", ['x']);
add('create', 'fifo', 'nobody', 'mknod S_IFIFO by a user', '', "os.mknod('x', stat.S_IFIFO | 0o600)", ['x']);
add('create', 'sock', 'root', 'EADDRINUSE: bind over an existing socket', "bind('x')", "bind('x')", ['x']);
add('create', 'dir', 'root', 'mkdir: the parent gains a link', "os.mkdir('d')", "os.mkdir('d/e')", ['d'], ['dirnlink']);
add('create', 'dir', 'root', 'mkdir: a new directory has 2 links', '', "os.mkdir('d')", ['d'], ['dirnlink']);
add('create', 'dir', 'root', 'mkdir with a trailing slash', '', "os.mkdir('d/')", ['d']);
add('create', 'reg', 'root', 'EISDIR: O_CREAT of a name with a trailing slash', '', "os.open('x/', os.O_CREAT | os.O_WRONLY, 0o644)", ['x']);
add('create', 'dir', 'root', 'the size of a directory', "os.mkdir('d')", "os.mkdir('d/e')", ['d'], ['dirsize']);
add('create', 'dir', 'root', 'in a set-gid dir: the sub-directory inherits the bit, a file not', "os.chown('.', 0, 2000); os.chmod('.', 0o2777)", "os.mkdir('d', 0o700); os.close(os.open('f', os.O_CREAT | os.O_WRONLY, 0o600))", ['d', 'f']);

// ---------------------------------------------------------------------------------------------
// open(2) and its flags, on regular files unless said otherwise; creat(2).
const OPEN: Array<[Kind | '-', string, string, string, string[]?, User?, Extra[]?]> = [
  ['reg', 'O_CREAT of a new file (0666 less the umask)', '', "os.close(os.open('x', os.O_CREAT | os.O_WRONLY, 0o666))", ['x']],
  ['reg', 'O_CREAT of an existing file changes nothing', "put('x'); old('x')", "os.close(os.open('x', os.O_CREAT | os.O_WRONLY, 0o600))", ['x'], 'root', ['atime']],
  ['reg', 'O_CREAT|O_EXCL of an existing file: EEXIST', "put('x')", "os.open('x', os.O_CREAT | os.O_EXCL | os.O_WRONLY)", ['x']],
  ['symlink', 'O_CREAT|O_EXCL of a symlink to a file: EEXIST', "put('t'); os.symlink('t', 'x')", "os.open('x', os.O_CREAT | os.O_EXCL | os.O_WRONLY)", ['x', 't']],
  ['symlink', 'O_CREAT through a dangling symlink makes its target', "os.symlink('t', 'x')", "os.close(os.open('x', os.O_CREAT | os.O_WRONLY, 0o640))", ['x', 't']],
  ['dir', 'O_CREAT of an existing directory: EISDIR', "os.mkdir('x')", "os.open('x', os.O_CREAT | os.O_WRONLY)", ['x']],
  ['-', 'O_CREAT|O_DIRECTORY of a new name: EINVAL', '', "os.open('x', os.O_CREAT | os.O_DIRECTORY | os.O_RDONLY)", ['x']],
  ['reg', 'O_TRUNC of a file with content', "put('x', b'0123456789'); old('x')", "os.close(os.open('x', os.O_WRONLY | os.O_TRUNC))", ['x'], 'root', ['atime']],
  ['reg', 'O_TRUNC of an empty file', "put('x', b''); old('x')", "os.close(os.open('x', os.O_WRONLY | os.O_TRUNC))", ['x']],
  ['reg', 'O_RDONLY|O_TRUNC truncates too (Linux)', "put('x', b'0123456789')", "os.close(os.open('x', os.O_RDONLY | os.O_TRUNC))", ['x']],
  ['reg', 'creat() of an existing file truncates it', "put('x', b'0123456789', 0o600)", "os.close(os.open('x', os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o666))", ['x']],
  ['reg', 'O_APPEND writes at the end', "put('x', b'abc')", "fd = os.open('x', os.O_WRONLY | os.O_APPEND); os.lseek(fd, 0, 0); os.write(fd, b'XY'); out = os.lseek(fd, 0, 1); os.close(fd)", ['x']],
  ['reg', 'O_APPEND: pwrite at 0 appends too (Linux)', "put('x', b'abc')", "fd = os.open('x', os.O_WRONLY | os.O_APPEND); os.pwrite(fd, b'XY', 0); os.close(fd)", ['x']],
  ['reg', 'O_RDWR: write, seek, read back', "put('x', b'abcdef')", "fd = os.open('x', os.O_RDWR); os.write(fd, b'XY'); os.lseek(fd, 0, 0); out = os.read(fd, 10); os.close(fd)", ['x']],
  ['reg', 'pwrite past the end leaves a hole of zeros', "put('x', b'ab')", "fd = os.open('x', os.O_WRONLY); os.pwrite(fd, b'Z', 6); os.close(fd)", ['x']],
  ['reg', 'O_RDONLY, then write: EBADF', "put('x')", "fd = os.open('x', os.O_RDONLY); os.write(fd, b'x')", ['x']],
  ['reg', 'O_WRONLY, then read: EBADF', "put('x')", "fd = os.open('x', os.O_WRONLY); os.read(fd, 1)", ['x']],
  ['dir', 'O_WRONLY of a directory: EISDIR', "os.mkdir('x')", "os.open('x', os.O_WRONLY)", ['x']],
  ['dir', 'O_RDWR of a directory: EISDIR', "os.mkdir('x')", "os.open('x', os.O_RDWR)", ['x']],
  ['dir', 'O_RDONLY of a directory', "os.mkdir('x')", "out = os.fstat(os.open('x', os.O_RDONLY))", ['x']],
  ['dir', 'O_DIRECTORY of a directory', "os.mkdir('x')", "out = os.fstat(os.open('x', os.O_RDONLY | os.O_DIRECTORY))", ['x']],
  ['reg', 'O_DIRECTORY of a file: ENOTDIR', "put('x')", "os.open('x', os.O_RDONLY | os.O_DIRECTORY)", ['x']],
  ['symlink', 'O_DIRECTORY of a symlink to a directory', "os.mkdir('d'); os.symlink('d', 'x')", "out = os.fstat(os.open('x', os.O_RDONLY | os.O_DIRECTORY))", ['x']],
  ['symlink', 'O_DIRECTORY|O_NOFOLLOW of a symlink to a directory', "os.mkdir('d'); os.symlink('d', 'x')", "os.open('x', os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)", ['x']],
  ['symlink', 'O_NOFOLLOW of a symlink: ELOOP', "put('t'); os.symlink('t', 'x')", "os.open('x', os.O_RDONLY | os.O_NOFOLLOW)", ['x']],
  ['reg', 'O_NOFOLLOW of a file', "put('x')", "out = os.fstat(os.open('x', os.O_RDONLY | os.O_NOFOLLOW))", ['x']],
  ['reg', 'O_NOFOLLOW applies to the last component only', "os.mkdir('d'); put('d/f'); os.symlink('d', 'l')", "out = os.fstat(os.open('l/f', os.O_RDONLY | os.O_NOFOLLOW))", ['l']],
  ['symlink', 'O_PATH|O_NOFOLLOW of a symlink opens the link', "os.symlink('t', 'x')", "out = os.fstat(os.open('x', os.O_PATH | os.O_NOFOLLOW))", ['x']],
  ['-', 'open of a missing file: ENOENT', '', "os.open('x', os.O_RDONLY)"],
  ['-', 'open of an empty path: ENOENT', '', "os.open('', os.O_RDONLY)"],
  ['symlink', 'open of a dangling symlink: ENOENT', "os.symlink('t', 'x')", "os.open('x', os.O_RDONLY)", ['x']],
  ['reg', 'open with a file as a middle component: ENOTDIR', "put('f')", "os.open('f/x', os.O_RDONLY)", ['f']],
  ['reg', 'open of a file with a trailing slash: ENOTDIR', "put('x')", "os.open('x/', os.O_RDONLY)", ['x']],
  ['-', 'O_CREAT under a missing directory: ENOENT', '', "os.open('no/x', os.O_CREAT | os.O_WRONLY)"],
  ['-', 'open of a 256-byte name: ENAMETOOLONG', '', `os.open('${'n'.repeat(256)}', os.O_RDONLY)`],
  ['-', 'open of a 4096-byte path: ENAMETOOLONG', '', "os.open('a/' * 2047 + 'bb', os.O_RDONLY)"],
  ['reg', 'O_EXCL without O_CREAT of an existing file', "put('x')", "out = os.fstat(os.open('x', os.O_RDONLY | os.O_EXCL))", ['x']],
  // Permission checks: modes, owners and groups (supplementary ones too), root's bypass.
  ['reg', 'O_RDONLY of root\'s 0600 file: EACCES', "put('x', b'secret', 0o600)", "os.open('x', os.O_RDONLY)", ['x'], 'nobody'],
  ['reg', 'O_RDONLY of a 0640 file of a supplementary group', "put('x', b'group', 0o640); os.chown('x', 0, 2000)", "out = read('x')", ['x'], 'user'],
  ['reg', 'O_RDONLY of an own 0070 file: the owner bits rule, EACCES', "put('x', b'o', 0o070); own('x', 'user')", "os.open('x', os.O_RDONLY)", ['x'], 'user'],
  ['reg', 'O_WRONLY of an own 0444 file: EACCES', "put('x', b'ro', 0o444); own('x', 'nobody')", "os.open('x', os.O_WRONLY)", ['x'], 'nobody'],
  ['reg', 'O_WRONLY of a 0444 file by root', "put('x', b'ro', 0o444)", "fd = os.open('x', os.O_WRONLY); os.write(fd, b'RW'); os.close(fd)", ['x'], 'root'],
  ['reg', 'O_RDONLY of a 0000 file by root', "put('x', b'none', 0o000)", "out = read('x')", ['x'], 'root'],
  ['reg', 'O_TRUNC of a 0444 file: EACCES', "put('x', b'ro', 0o444); own('x', 'nobody')", "os.open('x', os.O_RDONLY | os.O_TRUNC)", ['x'], 'nobody'],
  ['reg', 'O_CREAT in root\'s 0755 directory: EACCES', "os.mkdir('d', 0o755)", "os.open('d/x', os.O_CREAT | os.O_WRONLY)", ['d'], 'nobody'],
  ['reg', 'open through a 0700 directory: EACCES', "os.mkdir('d', 0o700); put('d/f')", "os.open('d/f', os.O_RDONLY)", ['d'], 'nobody'],
  ['reg', 'open through a 0711 directory (search only)', "os.mkdir('d', 0o711); put('d/f')", "out = read('d/f')", ['d'], 'nobody'],
  ['reg', 'open through a 0700 directory two levels up: EACCES', "os.makedirs('a/b/c'); os.chmod('a/b', 0o700); put('a/b/c/f')", "os.open('a/b/c/f', os.O_RDONLY)", ['a'], 'nobody'],
  // Writing to a set-uid/set-gid file: a user's write drops the bits, root's keeps them.
  ['reg', 'write to a 06777 file by a user drops set-uid and set-gid', "put('x', b'suid'); os.chmod('x', 0o6777)", "fd = os.open('x', os.O_WRONLY); os.write(fd, b'W'); os.close(fd)", ['x'], 'nobody'],
  ['reg', 'write to a 06777 file by root keeps set-uid and set-gid', "put('x', b'suid'); os.chmod('x', 0o6777)", "fd = os.open('x', os.O_WRONLY); os.write(fd, b'W'); os.close(fd)", ['x'], 'root'],
  ['reg', 'O_TRUNC of a 06777 file by a user drops set-uid and set-gid', "put('x', b'suid'); os.chmod('x', 0o6777)", "os.close(os.open('x', os.O_WRONLY | os.O_TRUNC))", ['x'], 'nobody'],
  // A program being run cannot be opened for writing.
  ['reg', 'ETXTBSY: O_WRONLY of a program while it runs', "shutil.copy('/bin/sleep', 'x'); os.chmod('x', 0o755)",
    "p = subprocess.Popen(['./x', '5']); time.sleep(0.3)\ntry: os.open('x', os.O_WRONLY)\nfinally: p.kill(); p.wait()", ['x']],
  // Reads move atime under relatime (atime not after mtime); writes move mtime and ctime.
  ['reg', 'read moves atime', "put('x'); old('x')", "out = read('x')", ['x'], 'root', ['atime']],
  ['reg', 'write moves mtime and ctime, not atime', "put('x'); old('x')", "fd = os.open('x', os.O_WRONLY); os.write(fd, b'D'); os.close(fd)", ['x'], 'root', ['atime']],
  ['reg', 'open and close without I/O moves nothing', "put('x'); old('x')", "os.close(os.open('x', os.O_RDWR))", ['x'], 'root', ['atime']],
];
for (const [type, what, setup, act, observe, user, extra] of OPEN) add('open', type, user ?? 'root', what, setup, act, observe ?? [], extra ?? []);
// Opening each kind read-only (a fifo without blocking); a fifo for writing with no reader.
for (const k of KINDS) {
  for (const u of ['root', 'nobody'] as User[]) add('open', k, u, 'O_RDONLY|O_NONBLOCK', `mk(${py(k)}, 'x')`, "out = os.fstat(os.open('x', os.O_RDONLY | os.O_NONBLOCK))", obs(k));
}
add('open', 'fifo', 'root', 'O_WRONLY|O_NONBLOCK with no reader: ENXIO', "mk('fifo', 'x')", "os.open('x', os.O_WRONLY | os.O_NONBLOCK)", ['x']);
add('open', 'fifo', 'root', 'a fifo carries bytes between two opens', "mk('fifo', 'x')", "r = os.open('x', os.O_RDONLY | os.O_NONBLOCK); w = os.open('x', os.O_WRONLY); os.write(w, b'pipe'); out = os.read(r, 10)", ['x']);
add('open', 'chr', 'root', 'read and write the 1:3 device (a null device)', "mk('chr', 'x', 0o666)", "fd = os.open('x', os.O_RDWR); out = (os.write(fd, b'abc'), os.read(fd, 10))", ['x']);

// ---------------------------------------------------------------------------------------------
// stat, lstat, readlink of each kind (the description of a stat result holds no times).
for (const k of KINDS) {
  add('stat', k, 'root', 'stat and lstat', `mk(${py(k)}, 'x')`, "out = (os.stat('x'), os.lstat('x'))", obs(k));
  add('stat', k, 'nobody', 'stat and lstat by a user', `mk(${py(k)}, 'x')`, "out = (os.stat('x'), os.lstat('x'))", obs(k));
  add('readlink', k, 'root', 'readlink', `mk(${py(k)}, 'x')`, "out = os.readlink('x')", obs(k));
}
add('stat', '-', 'root', 'ENOENT: a missing name', '', "os.stat('x')");
add('stat', '-', 'root', 'ENOTDIR: a file as a middle component', "put('f')", "os.stat('f/x')", ['f']);
add('stat', '-', 'root', 'ENOTDIR: a file as a middle component, deeper', "os.makedirs('a/b'); put('a/b/f')", "os.stat('a/b/f/x/y')", ['a']);
add('stat', '-', 'root', 'ENOTDIR: a file with a trailing slash', "put('f')", "os.stat('f/')", ['f']);
add('stat', '-', 'root', 'a directory with a trailing slash and dots', "os.makedirs('a/b')", "out = os.stat('a/b/./../b/')", ['a']);
add('stat', '-', 'nobody', 'EACCES: through a 0700 directory', "os.mkdir('d', 0o700); put('d/f')", "os.stat('d/f')", ['d']);
add('stat', '-', 'nobody', 'through a 0711 directory', "os.mkdir('d', 0o711); put('d/f')", "out = os.stat('d/f')", ['d']);
add('stat', '-', 'nobody', 'EACCES: a 0744 directory lists but does not let through', "os.mkdir('d', 0o744); put('d/f')", "out = os.listdir('d'); os.stat('d/f')", ['d']);
add('stat', '-', 'nobody', 'listdir of a 0711 directory: EACCES', "os.mkdir('d', 0o711); put('d/f')", "os.listdir('d')", ['d']);
add('stat', '-', 'root', 'readlink of a missing name: ENOENT', '', "os.readlink('x')");
add('stat', '-', 'root', 'ENAMETOOLONG: a 256-byte name', '', `os.stat('${'n'.repeat(256)}')`);
add('stat', '-', 'root', 'ENAMETOOLONG: a 4096-byte path', '', "os.stat('a/' * 2047 + 'bb')");
// A file's times as fstat shows them just before close (after a write; after a write and an
// fchmod) are those stat shows once settled: close alone changes no time.
add('stat', 'reg', 'root', 'times seen before close are those seen after', '', [
  "fd = os.open('x', os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'abc'); a = [os.fstat(fd)]; os.close(fd)",
  "fd = os.open('y', os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'abc'); os.fchmod(fd, 0o600); a.append(os.fstat(fd)); os.close(fd)",
  "time.sleep(0.7); b = [os.stat(n) for n in 'xy']",
  // One word for both files: which of the two shows the change first depends on timing.
  "out = 'unchanged' if all((s.st_mtime_ns, s.st_ctime_ns) == (t.st_mtime_ns, t.st_ctime_ns) for s, t in zip(a, b)) else 'changed'",
].join('\n'), ['x', 'y']);
add('stat', '-', 'root', 'the directory\'s . and .. entries', "os.mkdir('d')", "out = (os.stat('d/.'), os.stat('d/..'))", ['d']);

// ---------------------------------------------------------------------------------------------
// Symlinks: the link itself (type, mode 0777, size = target length, owner), their resolution.
add('symlink', 'symlink', 'root', 'to a missing target (dangling)', '', "os.symlink('nowhere/at/all', 'x')", ['x']);
add('symlink', 'symlink', 'root', 'an absolute target', '', "os.symlink('/etc/passwd', 'x'); out = os.stat('x').st_mode & 0o170000", ['x']);
add('symlink', 'symlink', 'root', 'a 4095-byte target', '', "os.symlink('t' * 4095, 'x')", ['x']);
add('symlink', 'symlink', 'root', 'ENAMETOOLONG: a 4096-byte target', '', "os.symlink('t' * 4096, 'x')", ['x']);
add('symlink', 'symlink', 'root', 'ENOENT: an empty target', '', "os.symlink('', 'x')", ['x']);
add('symlink', 'symlink', 'root', 'EEXIST: over a directory', "os.mkdir('x')", "os.symlink('t', 'x')", ['x']);
add('symlink', 'symlink', 'root', 'a symlink to a directory resolves as one', "os.mkdir('d'); put('d/f')", "os.symlink('d', 'x'); out = (os.listdir('x'), read('x/f'))", ['x']);
add('symlink', 'symlink', 'root', 'a relative target resolves from the link\'s directory', "os.makedirs('a/b'); put('a/f', b'up')", "os.symlink('../f', 'a/b/l'); out = read('a/b/l')", ['a/b/l']);
add('symlink', 'symlink', 'root', 'a chain of 40 symlinks resolves', "put('l0')", "[os.symlink('l%d' % i, 'l%d' % (i + 1)) for i in range(40)]; out = read('l40')", ['l40']);
add('symlink', 'symlink', 'root', 'ELOOP: a chain of 41 symlinks', "put('l0')", "[os.symlink('l%d' % i, 'l%d' % (i + 1)) for i in range(41)]; read('l41')", ['l41']);
add('symlink', 'symlink', 'root', 'ELOOP: a link to itself', "os.symlink('x', 'x')", "read('x')", ['x']);
add('symlink', 'symlink', 'root', 'ELOOP: two links to each other', "os.symlink('b', 'a'); os.symlink('a', 'b')", "os.stat('a')", ['a', 'b']);
add('symlink', 'symlink', 'root', 'ELOOP: a loop as a middle component', "os.symlink('b', 'a'); os.symlink('a', 'b')", "os.open('a/x', os.O_CREAT | os.O_WRONLY)", ['a']);
add('symlink', 'symlink', 'nobody', 'made by a user: the user owns the link', '', "os.symlink('t', 'x')", ['x']);
add('symlink', 'symlink', 'root', 'following a symlink moves its atime, not its mtime', "put('t'); os.symlink('t', 'x'); old('x')", "out = read('x')", ['x', 't'], ['atime', 'lnkatime']);
add('symlink', 'symlink', 'root', 'readlink moves the link\'s atime', "os.symlink('t', 'x'); old('x')", "out = os.readlink('x')", ['x'], ['atime', 'lnkatime']);
add('symlink', 'symlink', 'nobody', 'EACCES: a link through a 0700 directory', "os.mkdir('d', 0o700); put('d/f'); os.symlink('d/f', 'x')", "read('x')", ['x']);

// ---------------------------------------------------------------------------------------------
// link(2): a second name of the same inode (nlink 2, ctime moves), its errors.
for (const k of KINDS) add('link', k, 'root', 'a second name', `mk(${py(k)}, 'x'); old('x')`, "os.link('x', 'y', follow_symlinks=False)", [...obs(k), 'y']);
add('link', 'reg', 'root', 'EEXIST: the new name exists', "put('x'); put('y')", "os.link('x', 'y')", ['x', 'y']);
add('link', 'reg', 'root', 'ENOENT: a missing source', '', "os.link('x', 'y')", ['y']);
add('link', 'reg', 'root', 'across directories, then unlink the first name', "os.mkdir('a'); os.mkdir('b'); put('a/x')", "os.link('a/x', 'b/y'); os.unlink('a/x')", ['a', 'b', 'b/y']);
add('link', 'reg', 'root', 'follow a symlink (linkat AT_SYMLINK_FOLLOW)', "put('t'); os.symlink('t', 'x')", "os.link('x', 'y', follow_symlinks=True)", ['t', 'x', 'y']);
add('link', 'reg', 'user', 'a user links a file of its own', "put('x'); own('x', 'user')", "os.link('x', 'y')", ['x', 'y']);
add('link', 'reg', 'nobody', 'EPERM: a user links root\'s file (protected_hardlinks)', "put('x')", "os.link('x', 'y')", ['x', 'y']);
add('link', 'reg', 'root', 'ENOTDIR: a file as the new name\'s middle component', "put('x'); put('f')", "os.link('x', 'f/y')", ['x', 'f']);
add('link', 'reg', 'root', 'a link count of 3, one unlinked', "put('x')", "os.link('x', 'y'); os.link('x', 'z'); os.unlink('y')", ['x', 'z']);
add('link', 'reg', 'root', 'a write through one name shows through the other', "put('x')", "os.link('x', 'y'); put('y', b'new'); out = read('x')", ['x', 'y']);
add('link', 'reg', 'root', 'both names have one inode number', "put('x')", "os.link('x', 'y'); out = os.stat('y').st_ino == os.stat('x').st_ino", ['x', 'y']);
add('link', 'reg', 'root', 'the file keeps the inode number it had', "put('x')", "i = os.stat('x').st_ino; os.link('x', 'y'); out = (os.stat('x').st_ino == i, os.stat('y').st_ino == i)", ['x', 'y']);

// ---------------------------------------------------------------------------------------------
// unlink and rmdir of each kind, by root, by the owner and others in a sticky directory (only
// the entry's owner, the directory's owner or root may remove from it), in directories that
// are not writable.
for (const k of KINDS) {
  const rm = remove(k, 'x');
  add('unlink', k, 'root', 'remove', `mk(${py(k)}, 'x')`, rm, obs(k));
  add('unlink', k, 'nobody', 'EPERM: another\'s entry in a sticky directory', `os.chmod('.', 0o1777); mkown(${py(k)}, 'x', 'user')`, rm, obs(k));
  add('unlink', k, 'nobody', 'its own entry in a sticky directory', `os.chmod('.', 0o1777); mkown(${py(k)}, 'x', 'nobody')`, rm, obs(k));
  add('unlink', k, 'nobody', 'another\'s entry in its own sticky directory', `own('.', 'nobody'); os.chmod('.', 0o1777); mkown(${py(k)}, 'x', 'user')`, rm, obs(k));
  add('unlink', k, 'nobody', 'EACCES: its own entry in root\'s 0755 directory', `os.chmod('.', 0o755); mkown(${py(k)}, 'x', 'nobody')`, rm, obs(k));
  add('unlink', k, 'root', 'in a 0555 directory', `mk(${py(k)}, 'x'); os.chmod('.', 0o555)`, rm, obs(k));
}
add('unlink', 'dir', 'root', 'unlink of a directory: EISDIR', "os.mkdir('x')", "os.unlink('x')", ['x']);
add('unlink', 'reg', 'root', 'rmdir of a file: ENOTDIR', "put('x')", "os.rmdir('x')", ['x']);
add('unlink', 'symlink', 'root', 'rmdir of a symlink to a directory: ENOTDIR', "os.mkdir('d'); os.symlink('d', 'x')", "os.rmdir('x')", ['x', 'd']);
add('unlink', 'symlink', 'root', 'unlink of a symlink leaves its target', "put('t'); os.symlink('t', 'x')", "os.unlink('x')", ['x', 't']);
add('unlink', 'dir', 'root', 'rmdir of a non-empty directory: ENOTEMPTY', "os.mkdir('x'); put('x/f')", "os.rmdir('x')", ['x']);
add('unlink', 'dir', 'root', 'rmdir of a directory holding a subdirectory: ENOTEMPTY', "os.makedirs('x/y')", "os.rmdir('x')", ['x']);
add('unlink', 'dir', 'root', 'rmdir of .: EINVAL', "os.mkdir('x')", "os.rmdir('x/.')", ['x']);
add('unlink', 'dir', 'root', 'rmdir of ..: ENOTEMPTY', "os.makedirs('x/y')", "os.rmdir('x/y/..')", ['x']);
add('unlink', 'dir', 'root', 'rmdir with a trailing slash', "os.mkdir('x')", "os.rmdir('x/')", ['x']);
add('unlink', 'reg', 'root', 'unlink with a trailing slash: ENOTDIR', "put('x')", "os.unlink('x/')", ['x']);
add('unlink', 'dir', 'root', 'rmdir: the parent loses a link', "os.makedirs('d/x')", "os.rmdir('d/x')", ['d'], ['dirnlink']);
add('unlink', '-', 'root', 'ENOENT: a missing name', '', "os.unlink('x')");
add('unlink', '-', 'root', 'ENOTDIR: a file as a middle component', "put('f')", "os.unlink('f/x')", ['f']);
add('unlink', 'reg', 'root', 'an open file stays readable after unlink', "put('x', b'kept')", "fd = os.open('x', os.O_RDONLY); os.unlink('x'); out = each(lambda: os.read(fd, 10), lambda: os.fstat(fd).st_nlink, lambda: os.listdir('.'))", ['x']);
add('unlink', 'reg', 'root', 'an open file stays writable after unlink', "put('x', b'kept')", "fd = os.open('x', os.O_RDWR); os.unlink('x'); out = each(lambda: os.pwrite(fd, b'K', 0), lambda: os.pread(fd, 10, 0), lambda: os.fstat(fd).st_size)", ['x']);
add('unlink', 'dir', 'nobody', 'EACCES: rmdir of an empty directory in root\'s 0755 directory', "os.mkdir('d', 0o755); os.mkdir('d/x'); own('d/x', 'nobody')", "os.rmdir('d/x')", ['d', 'd/x']);
add('unlink', 'reg', 'nobody', 'EACCES: unlink through a 0700 directory', "os.mkdir('d', 0o700); put('d/x')", "os.unlink('d/x')", ['d']);

// ---------------------------------------------------------------------------------------------
// rename(2): each kind in one directory and across directories (the moved entry keeps its
// times but ctime on ext4; both directories' mtimes move), over existing targets, its errors.
for (const k of KINDS) {
  add('rename', k, 'root', 'in one directory', `mk(${py(k)}, 'x'); old('x')`, "os.rename('x', 'y')", ['x', 'y<x']);
  add('rename', k, 'root', 'across directories', `os.mkdir('a'); os.mkdir('b'); mk(${py(k)}, 'a/x'); old('a/x')`, "os.rename('a/x', 'b/y')", ['a', 'b', 'b/y<a/x']);
  add('rename', k, 'nobody', 'EPERM: another\'s entry in a sticky directory', `os.chmod('.', 0o1777); mkown(${py(k)}, 'x', 'user')`, "os.rename('x', 'y')", ['x', 'y']);
  add('rename', k, 'nobody', 'its own entry in a sticky directory', `os.chmod('.', 0o1777); mkown(${py(k)}, 'x', 'nobody')`, "os.rename('x', 'y')", ['x', 'y<x']);
  if (k !== 'dir') add('rename', k, 'root', 'over an existing file', `mk(${py(k)}, 'x'); put('y', b'old')`, "os.rename('x', 'y')", ['x', 'y<x']);
}
add('rename', 'reg', 'root', 'over itself: nothing happens', "put('x'); old('x')", "os.rename('x', 'x')", ['x']);
add('rename', 'reg', 'root', 'over a second name of itself: nothing happens', "put('x'); os.link('x', 'y')", "os.rename('x', 'y')", ['x', 'y']);
add('rename', 'reg', 'root', 'a file over a file in another directory', "os.mkdir('a'); os.mkdir('b'); put('a/x', b'new'); put('b/y', b'old')", "os.rename('a/x', 'b/y')", ['a', 'b', 'b/y<a/x']);
// rename(2) moves the inode: its number goes with it, whichever type it is.
for (const [type, make] of [['reg', "put('x')"], ['dir', "os.mkdir('x')"], ['symlink', "os.symlink('t', 'x')"], ['fifo', "os.mkfifo('x')"]] as const) {
  add('rename', type, 'root', 'the inode number goes with the name', `${make}; os.mkdir('d')`, "i = os.lstat('x').st_ino; os.rename('x', 'd/y'); out = os.lstat('d/y').st_ino == i", ['d', 'd/y']);
}
add('rename', 'dir', 'root', 'a directory over an empty directory', "os.makedirs('x/sub'); os.mkdir('y')", "os.rename('x', 'y')", ['x', 'y<x']);
add('rename', 'dir', 'root', 'a directory with content across directories', "os.makedirs('a/x/s/t'); put('a/x/s/t/f', b'deep'); os.mkdir('b')", "os.rename('a/x', 'b/x'); out = read('b/x/s/t/f')", ['a', 'b', 'b/x<a/x', 'b/x/s/t/f'], ['dirnlink']);
add('rename', 'dir', 'root', 'ENOTEMPTY: a directory over a non-empty directory', "os.mkdir('x'); os.mkdir('y'); put('y/f')", "os.rename('x', 'y')", ['x', 'y']);
add('rename', 'dir', 'root', 'EISDIR: a file over a directory', "put('x'); os.mkdir('y')", "os.rename('x', 'y')", ['x', 'y']);
add('rename', 'dir', 'root', 'ENOTDIR: a directory over a file', "os.mkdir('x'); put('y')", "os.rename('x', 'y')", ['x', 'y']);
add('rename', 'dir', 'root', 'EINVAL: a directory into its own subdirectory', "os.makedirs('x/sub')", "os.rename('x', 'x/sub/x')", ['x']);
add('rename', 'dir', 'root', 'EINVAL: a directory into itself', "os.mkdir('x')", "os.rename('x', 'x/y')", ['x']);
add('rename', 'dir', 'root', 'ENOTEMPTY: a directory over its own parent', "os.makedirs('x/sub')", "os.rename('x/sub', 'x')", ['x']);
add('rename', 'dir', 'root', 'rename of .: EBUSY/EINVAL', "os.mkdir('x')", "os.rename('x/.', 'y')", ['x', 'y']);
add('rename', 'reg', 'root', 'ENOENT: a missing source', '', "os.rename('x', 'y')", ['y']);
add('rename', 'reg', 'root', 'ENOENT: into a missing directory', "put('x')", "os.rename('x', 'no/y')", ['x']);
add('rename', 'reg', 'root', 'ENOTDIR: a file as the target\'s middle component', "put('x'); put('f')", "os.rename('x', 'f/y')", ['x', 'f']);
add('rename', 'reg', 'root', 'ENOTDIR: a file renamed with a trailing slash', "put('x')", "os.rename('x', 'y/')", ['x']);
add('rename', 'dir', 'root', 'a directory renamed with trailing slashes', "os.mkdir('x')", "os.rename('x/', 'y/')", ['x', 'y<x']);
add('rename', 'reg', 'root', 'ENAMETOOLONG: to a 256-byte name', "put('x')", `os.rename('x', '${'n'.repeat(256)}')`, ['x']);
add('rename', 'symlink', 'root', 'a symlink moves, its target stays', "put('t'); os.symlink('t', 'x')", "os.rename('x', 'y')", ['x', 'y<x', 't']);
add('rename', 'symlink', 'root', 'a relative symlink moved to another depth dangles', "os.mkdir('d'); put('t'); os.symlink('t', 'x')", "os.rename('x', 'd/x'); os.stat('d/x')", ['d/x']);
add('rename', 'reg', 'root', 'an open file renamed keeps its handle', "put('x', b'handle')", "fd = os.open('x', os.O_RDWR); os.rename('x', 'y'); os.write(fd, b'H'); os.close(fd)", ['x', 'y<x']);
add('rename', 'reg', 'root', 'RENAME_NOREPLACE to a new name', "put('x')", "renameat2('x', 'y', RENAME_NOREPLACE)", ['x', 'y<x']);
add('rename', 'reg', 'root', 'RENAME_NOREPLACE over an existing name: EEXIST', "put('x'); put('y', b'old')", "renameat2('x', 'y', RENAME_NOREPLACE)", ['x', 'y']);
add('rename', 'reg', 'root', 'RENAME_EXCHANGE of a file and a directory', "put('x'); os.mkdir('y')", "renameat2('x', 'y', RENAME_EXCHANGE)", ['x<y', 'y<x']);
// Permissions: write on both directories; a user moving a directory to another parent also
// needs write permission on the directory itself (its .. changes).
add('rename', 'reg', 'nobody', 'EACCES: out of root\'s 0755 directory', "os.mkdir('d', 0o755); put('d/x'); own('d/x', 'nobody')", "os.rename('d/x', 'y')", ['d', 'y']);
add('rename', 'reg', 'nobody', 'EACCES: into root\'s 0755 directory', "os.mkdir('d', 0o755); put('x'); own('x', 'nobody')", "os.rename('x', 'd/x')", ['d', 'x']);
add('rename', 'dir', 'nobody', 'EACCES: root\'s 0755 directory to another parent', "os.mkdir('a'); os.mkdir('b'); os.mkdir('a/x', 0o755)", "os.rename('a/x', 'b/x')", ['a', 'b']);
add('rename', 'dir', 'nobody', 'root\'s 0755 directory in one parent', "os.mkdir('x', 0o755)", "os.rename('x', 'y')", ['x', 'y<x']);
add('rename', 'reg', 'nobody', 'EPERM: its own file over another\'s in a sticky directory', "os.chmod('.', 0o1777); put('x'); own('x', 'nobody'); put('y', b'theirs'); own('y', 'user')", "os.rename('x', 'y')", ['x', 'y']);
add('rename', 'reg', 'root', 'between distant subtrees (one file system: no EXDEV)', "os.makedirs('a/b/c'); os.makedirs('d/e/f'); put('a/b/c/x')", "os.rename('a/b/c/x', 'd/e/f/x'); os.rename('a/b', 'd/e/f/b')", ['a', 'd/e/f', 'd/e/f/x<a/b/c/x']);
add('rename', 'reg', 'root', 'a hard-linked file renamed keeps its link count', "put('x'); os.link('x', 'z')", "os.rename('x', 'y')", ['y<x', 'z']);

// ---------------------------------------------------------------------------------------------
// chmod of each kind (through a symlink: its target), by root, the owner, and another user;
// set-uid/set-gid/sticky; set-gid dropped for a user not in the file's group.
for (const k of KINDS) {
  add('chmod', k, 'root', '0640', `mk(${py(k)}, 'x'); old(*${py(obs(k).join(' '))}.split())`, "os.chmod('x', 0o640)", obs(k), ['atime']);
  add('chmod', k, 'nobody', 'its own entry', `mkown(${py(k)}, 'x', 'nobody')`, "os.chmod('x', 0o640)", obs(k));
  add('chmod', k, 'nobody', 'EPERM: root\'s entry', `mk(${py(k)}, 'x')`, "os.chmod('x', 0o640)", obs(k));
  add('chmod', k, 'user', 'its own entry, set-gid in a group of its own', `mkown(${py(k)}, 'x', 'user')`, "os.chmod('x', 0o2750)", obs(k));
}
add('chmod', 'reg', 'root', 'set-uid, set-gid and sticky', "put('x')", "os.chmod('x', 0o7755)", ['x']);
add('chmod', 'reg', 'root', '0000', "put('x')", "os.chmod('x', 0)", ['x']);
add('chmod', 'dir', 'root', 'sticky 1777', "os.mkdir('x')", "os.chmod('x', 0o1777)", ['x']);
add('chmod', 'dir', 'root', 'set-gid 2755', "os.mkdir('x')", "os.chmod('x', 0o2755)", ['x']);
add('chmod', 'reg', 'nobody', 'set-gid of its own file of another group is dropped', "put('x'); os.chown('x', 65534, 0)", "os.chmod('x', 0o2755)", ['x']);
add('chmod', 'dir', 'nobody', 'set-gid of its own directory of another group is dropped', "os.mkdir('x'); os.chown('x', 65534, 0)", "os.chmod('x', 0o2755)", ['x']);
add('chmod', 'reg', 'user', 'set-uid of its own file', "put('x'); own('x', 'user')", "os.chmod('x', 0o4755)", ['x']);
add('chmod', 'reg', 'root', 'ENOENT: a missing name', '', "os.chmod('x', 0o644)");
add('chmod', 'reg', 'root', 'ENOTDIR: a file as a middle component', "put('f')", "os.chmod('f/x', 0o644)", ['f']);
add('chmod', 'reg', 'root', 'fchmod of an open file', "put('x')", "fd = os.open('x', os.O_RDONLY); os.fchmod(fd, 0o600); out = os.fstat(fd); os.close(fd)", ['x']);
add('chmod', 'reg', 'root', 'fchmod of a file being written', '', "fd = os.open('x', os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'abc'); os.fchmod(fd, 0o600); os.close(fd)", ['x']);
add('chmod', 'reg', 'nobody', 'a user\'s 0000 file: it cannot read it, then may chmod it back', "put('x'); own('x', 'nobody'); os.chmod('x', 0)", "r = [] \ntry: read('x')\nexcept OSError as e: r.append(e.errno)\nos.chmod('x', 0o600); out = (r, read('x'))", ['x']);

// ---------------------------------------------------------------------------------------------
// chown and lchown: by root; by the owner to a group it is in; EPERM otherwise. chown of a
// file drops set-uid, and set-gid with group execute (root's chown too); not of a directory.
for (const k of KINDS) {
  add('chown', k, 'root', 'to 1000:2000', `mk(${py(k)}, 'x'); old(*${py(obs(k).join(' '))}.split())`, "os.chown('x', 1000, 2000)", obs(k), ['atime']);
  add('chown', k, 'user', 'its own entry to a group it is in', `mkown(${py(k)}, 'x', 'user')`, "os.chown('x', -1, 2000)", obs(k));
  add('chown', k, 'nobody', 'EPERM: its own entry to a group it is not in', `mkown(${py(k)}, 'x', 'nobody')`, "os.chown('x', -1, 2000)", obs(k));
  add('chown', k, 'user', 'EPERM: root\'s entry to itself', `mk(${py(k)}, 'x')`, "os.chown('x', 1000, -1)", obs(k));
  add('chown', k, 'nobody', 'its own entry to what it is already', `mkown(${py(k)}, 'x', 'nobody')`, "os.chown('x', 65534, 65534)", obs(k));
  add('lchown', k, 'root', 'to 1000:2000', `mk(${py(k)}, 'x')`, "os.lchown('x', 1000, 2000)", obs(k));
}
add('lchown', 'symlink', 'user', 'its own link to a group it is in', "mkown('symlink', 'x', 'user')", "os.lchown('x', -1, 2000)", ['x', 'x.t']);
add('lchown', 'symlink', 'nobody', 'EPERM: root\'s link', "mk('symlink', 'x')", "os.lchown('x', 65534, -1)", ['x', 'x.t']);
add('chown', 'reg', 'root', 'of a 06755 file drops set-uid and set-gid', "put('x'); os.chmod('x', 0o6755)", "os.chown('x', 1000, 1000)", ['x']);
add('chown', 'reg', 'root', 'of a 06745 file drops set-uid, keeps set-gid (no group exec)', "put('x'); os.chmod('x', 0o6745)", "os.chown('x', 1000, 1000)", ['x']);
add('chown', 'reg', 'root', 'to -1:-1 of a 06755 file drops them too', "put('x'); os.chmod('x', 0o6755)", "os.chown('x', -1, -1)", ['x']);
add('chown', 'reg', 'user', 'its own 06755 file to a group it is in drops them', "put('x'); own('x', 'user'); os.chmod('x', 0o6755)", "os.chown('x', -1, 2000)", ['x']);
add('chown', 'dir', 'root', 'of a 06755 directory keeps set-uid and set-gid', "os.mkdir('x'); os.chmod('x', 0o6755)", "os.chown('x', 1000, 1000)", ['x']);
add('chown', 'reg', 'root', 'ENOENT: a missing name', '', "os.chown('x', 1, 1)");
add('chown', 'reg', 'root', 'fchown of an open file', "put('x')", "fd = os.open('x', os.O_RDONLY); os.fchown(fd, 1000, 2000); out = os.fstat(fd); os.close(fd)", ['x']);
add('chown', 'reg', 'root', 'to the largest ids (4294967294)', "put('x')", "os.chown('x', 4294967294, 4294967294)", ['x']);

// ---------------------------------------------------------------------------------------------
// truncate and ftruncate: sizes up and down, holes, what moves, and their errors.
for (const k of KINDS) add('truncate', k, 'root', 'to 2 bytes', `mk(${py(k)}, 'x')`, "os.truncate('x', 2)", obs(k));
const TRUNC: Array<[string, string, string, User?]> = [
  ['grow to 12 bytes (zeros)', "put('x', b'abc'); old('x')", "os.truncate('x', 12)"],
  ['shrink to 0', "put('x', b'abc'); old('x')", "os.truncate('x', 0)"],
  ['to the same size', "put('x', b'abc'); old('x')", "os.truncate('x', 3)"],
  ['EINVAL: a negative size', "put('x', b'abc')", "os.truncate('x', -1)"],
  ['ENOENT: a missing name', '', "os.truncate('x', 0)"],
  ['EACCES: a 0444 file of its own', "put('x', b'abc', 0o444); own('x', 'nobody')", "os.truncate('x', 0)", 'nobody'],
  ['by a user, of a 06777 file: set-uid and set-gid dropped', "put('x', b'abc'); os.chmod('x', 0o6777)", "os.truncate('x', 1)", 'nobody'],
  ['ftruncate grows an open file', "put('x', b'abc'); old('x')", "fd = os.open('x', os.O_RDWR); os.ftruncate(fd, 6); out = os.fstat(fd).st_size; os.close(fd)"],
  ['ftruncate then write past the new end', "put('x', b'abcdef')", "fd = os.open('x', os.O_RDWR); os.ftruncate(fd, 2); os.pwrite(fd, b'Z', 4); os.close(fd)"],
  ['ftruncate of a read-only descriptor: EINVAL', "put('x', b'abc')", "fd = os.open('x', os.O_RDONLY); os.ftruncate(fd, 0)"],
  ['ftruncate of a file made 0444 after its open', "put('x', b'abc'); own('x', 'nobody')", "fd = os.open('x', os.O_RDWR); os.fchmod(fd, 0o444); os.ftruncate(fd, 1); os.close(fd)", 'nobody'],
];
for (const [what, setup, act, user] of TRUNC) add('truncate', 'reg', user ?? 'root', what, setup, act, ['x'], ['atime']);

// ---------------------------------------------------------------------------------------------
// utimensat: explicit times (atime and mtime apart, with nanoseconds), UTIME_NOW, UTIME_OMIT,
// on each kind (through a symlink: its target; with AT_SYMLINK_NOFOLLOW: the link), and who
// may: the owner or root for explicit times, anyone with write permission for "now".
for (const k of KINDS) {
  const o = obs(k);
  add('utimensat', k, 'root', 'atime T1, mtime T2', `mk(${py(k)}, 'x')`, "utimens('x', T1, T2)", o, ['atime']);
  add('utimensat', k, 'root', 'nofollow: atime T1, mtime T2', `mk(${py(k)}, 'x')`, "utimens('x', T1, T2, nofollow=True)", o, ['atime']);
  add('utimensat', k, 'user', 'its own entry: T1, T2', `mkown(${py(k)}, 'x', 'user')`, "utimens('x', T1, T2)", o, ['atime']);
  add('utimensat', k, 'nobody', 'EPERM: T1, T2 on another\'s writable entry', `mk(${py(k)}, 'x', 0o777 if ${py(k)} in ('dir', 'sock') else 0o666); ${k === 'symlink' ? "os.chmod('x.t', 0o666)" : 'pass'}`, "utimens('x', T1, T2)", o, ['atime']);
  add('utimensat', k, 'nobody', 'NOW, NOW on another\'s writable entry', `mk(${py(k)}, 'x', 0o777 if ${py(k)} in ('dir', 'sock') else 0o666); ${k === 'symlink' ? "os.chmod('x.t', 0o666)" : 'pass'}; old(*${py(o.join(' '))}.split())`, "utimens('x', NOW, NOW)", o, ['atime']);
  add('utimensat', k, 'nobody', 'EACCES: NOW, NOW on another\'s read-only entry', `mk(${py(k)}, 'x')`, "utimens('x', NOW, NOW)", o, ['atime']);
}
const UTIMES: Array<[string, string, string, User?, string[]?]> = [
  ['NOW, NOW', "put('x'); old('x')", "utimens('x', NOW, NOW)"],
  ['utime(NULL) (NOW, NOW)', "put('x'); old('x')", "os.utime('x')"],
  ['OMIT, T2: atime unchanged', "put('x'); old('x')", "utimens('x', OMIT, T2)"],
  ['T1, OMIT: mtime unchanged', "put('x'); old('x')", "utimens('x', T1, OMIT)"],
  ['OMIT, OMIT: nothing changes, ctime neither', "put('x'); old('x')", "utimens('x', OMIT, OMIT)"],
  ['NOW, OMIT', "put('x'); old('x')", "utimens('x', NOW, OMIT)"],
  ['OMIT, NOW', "put('x'); old('x')", "utimens('x', OMIT, NOW)"],
  ['T2, T1: atime after mtime', "put('x')", "utimens('x', T2, T1)"],
  ['0, 0: the epoch', "put('x')", "utimens('x', 0, 0); out = (os.stat('x').st_atime_ns, os.stat('x').st_mtime_ns)"],
  ['before the epoch (-1.5 s)', "put('x')", "utimens('x', -1_500_000_000, -1_500_000_000); out = os.stat('x').st_mtime_ns"],
  ['EINVAL: nanoseconds of 1e9', "put('x')", "utimens('x', (5, 1_000_000_000), (5, 0))"],
  ['ENOENT: a missing name', '', "utimens('x', T1, T2)"],
  ['a user: NOW, OMIT on another\'s writable file: EPERM', "put('x', b'w', 0o666)", "utimens('x', NOW, OMIT)", 'nobody'],
  ['a user: NOW, NOW on its own read-only file', "put('x', b'r', 0o444); own('x', 'nobody'); old('x')", "utimens('x', NOW, NOW)", 'nobody'],
  ['futimens of an open file', "put('x')", "fd = os.open('x', os.O_RDONLY); os.utime(fd, ns=(T1, T2)); os.close(fd)"],
  ['of a file being written, before its close', '', "fd = os.open('x', os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'abc'); os.utime(fd, ns=(T1, T2)); os.close(fd)"],
  ['right after the close of a new file (cp -p, rsync)', '', "fd = os.open('x', os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'abc'); os.close(fd); utimens('x', T1, T2)"],
  ['then a write moves mtime again', "put('x')", "utimens('x', T1, T2); fd = os.open('x', os.O_WRONLY | os.O_APPEND); os.write(fd, b'more'); os.close(fd)"],
  ['then a read moves atime (relatime: atime before mtime)', "put('x')", "utimens('x', T1, T2); out = read('x')"],
  ['then a read of a file with atime after mtime', "put('x')", "utimens('x', T2, T1); out = read('x')"],
  ['of a directory, then a new name in it', "os.mkdir('d')", "utimens('d', T1, T2); put('d/f')", 'root', ['d']],
  // Before 1970: negative, down to 1901 (a 32-bit time_t's least), atime apart from mtime.
  ['before the epoch, apart, as far back as 1901', "put('x')", "utimens('x', -2_147_483_648_000_000_000, -86_400_000_000_123)"],
  ['before the epoch, then a write moves mtime to now', "put('x')", "utimens('x', -5_000_000_000, -5_000_000_000); fd = os.open('x', os.O_WRONLY | os.O_APPEND); os.write(fd, b'more'); os.close(fd)"],
  ['before the epoch, then a read moves atime (relatime)', "put('x')", "utimens('x', -5_000_000_000, -5_000_000_000); out = read('x')"],
  ['of a directory, before the epoch', "os.mkdir('d')", "utimens('d', -1_000_000_001, -3)", 'root', ['d']],
];
for (const [what, setup, act, user, observe] of UTIMES) add('utimensat', observe ? 'dir' : 'reg', user ?? 'root', what, setup, act, observe ?? ['x'], ['atime']);

// ---------------------------------------------------------------------------------------------
// access(2) and exec: the permission checks programs make before they act (root needs an
// execute bit somewhere to execute; set-uid programs run as their owner where not nosuid).
const ACCESS: Array<[string, string, string, User]> = [
  ['R_OK of root\'s 0600 file', "put('x', b's', 0o600)", "out = os.access('x', os.R_OK)", 'nobody'],
  ['W_OK of its own 0444 file', "put('x', b'r', 0o444); own('x', 'nobody')", "out = os.access('x', os.W_OK)", 'nobody'],
  ['W_OK of a 0444 file by root', "put('x', b'r', 0o444)", "out = os.access('x', os.W_OK)", 'root'],
  ['X_OK of a 0644 file by root', "put('x')", "out = os.access('x', os.X_OK)", 'root'],
  ['X_OK of a 0744 file by root', "put('x', b'x', 0o744)", "out = os.access('x', os.X_OK)", 'root'],
  ['R_OK of a 0640 file of a supplementary group', "put('x', b'g', 0o640); os.chown('x', 0, 2000)", "out = os.access('x', os.R_OK)", 'user'],
  ['X_OK of a 0711 directory', "os.mkdir('x', 0o711)", "out = (os.access('x', os.X_OK), os.access('x', os.R_OK))", 'nobody'],
  ['exec of a 0755 script', "put('x', b'#!/bin/sh\\necho ran $(id -u)\\n', 0o755)", "import subprocess; out = subprocess.run(['./x'], capture_output=True).stdout", 'nobody'],
  ['exec of a 0644 script by root: EACCES', "put('x', b'#!/bin/sh\\necho ran\\n', 0o644)", "import subprocess; out = subprocess.run(['./x'], capture_output=True).stdout", 'root'],
  ['exec of a set-uid root program runs as root', "import shutil; shutil.copy('/usr/bin/id', 'x'); os.chmod('x', 0o4755)", "import subprocess; out = subprocess.run(['./x', '-u'], capture_output=True).stdout", 'nobody'],
];
for (const [what, setup, act, user] of ACCESS) add('access', what.includes('directory') ? 'dir' : 'reg', user, what, setup, act, ['x']);

// ---------------------------------------------------------------------------------------------
// What the other calls do to directories' link counts, sizes, and times.
add('dir', 'dir', 'root', 'a new directory has 2 links, its parent one more per subdirectory', "os.mkdir('d')", "os.mkdir('d/a'); os.mkdir('d/b'); put('d/f')", ['d', 'd/a'], ['dirnlink']);
add('dir', 'dir', 'root', 'a directory moved out gives its parent one link less, the new parent one more', "os.makedirs('a/x'); os.mkdir('b')", "os.rename('a/x', 'b/x')", ['a', 'b'], ['dirnlink']);
add('dir', 'dir', 'root', 'listing moves a directory\'s atime', "os.mkdir('d'); put('d/f'); old('d')", "out = os.listdir('d')", ['d'], ['atime']);
add('dir', 'dir', 'root', 'a new name moves mtime and ctime, not atime', "os.mkdir('d'); old('d')", "put('d/f')", ['d'], ['atime']);
add('dir', 'dir', 'root', 'a file\'s new content does not move its directory\'s times', "os.mkdir('d'); put('d/f')", "put('d/f', b'more')", ['d', 'd/f']);
add('dir', 'dir', 'root', 'chmod of a file does not move its directory\'s times', "os.mkdir('d'); put('d/f')", "os.chmod('d/f', 0o600)", ['d', 'd/f']);
add('dir', 'dir', 'root', 'rmdir of the directory one is in', "os.mkdir('d')", "os.chdir('d'); os.rmdir('../d'); out = (os.listdir('.'),)", ['d']);
add('dir', 'dir', 'root', 'getcwd and listdir of . and ..', "os.makedirs('d/e')", "os.chdir('d/e'); out = (os.path.basename(os.getcwd()), sorted(os.listdir('..')))", ['d']);
add('dir', 'dir', 'root', 'many entries (300)', '', "os.mkdir('d'); [put('d/f%03d' % i, b'') for i in range(300)]; out = len(os.listdir('d'))", []);

// ---------------------------------------------------------------------------------------------
// Long paths: names of 255 bytes, paths near PATH_MAX (4096 with its NUL) that must work, and
// a tree deeper than PATH_MAX made one directory at a time (mkdirat from the last one).
const N255 = (c: string) => c.repeat(255);
const deep = Array.from({ length: 15 }, (_, i) => N255(String.fromCharCode(97 + i))).join('/'); // 15 * 256 - 1 = 3839 bytes
const mkdeep = `os.makedirs(${py(deep)})`;
add('longpath', 'reg', 'root', 'a 3980-byte path: create, write, rename, chmod, stat, list, unlink', mkdeep,
  `p = ${py(deep)}; f = p + '/' + 'f' * 140; g = p + '/' + 'g' * 140
put(f, b'deep'); os.rename(f, g); os.chmod(g, 0o600)
out = (len(g), os.stat(g), read(g), os.listdir(p)); os.unlink(g)`, [N255('a')]);
add('longpath', 'dir', 'root', 'mkdir of each level of a 3839-byte path', '',
  `p = ''
for part in ${py(deep)}.split('/'): p = p + ('/' if p else '') + part; os.mkdir(p)
out = (len(p), os.stat(p))`, []);
add('longpath', 'reg', 'root', 'ENAMETOOLONG: a 256-byte name at the end of a 3839-byte path', mkdeep,
  `os.open(${py(deep)} + '/' + ${py('n'.repeat(256))}, os.O_CREAT | os.O_WRONLY)`, []);
add('longpath', 'reg', 'root', 'a 4095-byte path: a 255-byte name at the end of a 3839-byte path', mkdeep,
  `p = ${py(deep)} + '/' + ${py(N255('n'))}; os.close(os.open(p, os.O_CREAT | os.O_WRONLY)); out = (len(p), os.stat(p))`, []);
add('longpath', 'symlink', 'root', 'a symlink with a 255-byte name to a 3839-byte path', mkdeep,
  `os.symlink(${py(deep)}, ${py(N255('s'))}); out = (len(os.readlink(${py(N255('s'))})), os.stat(${py(N255('s'))}))`, [N255('s')]);
add('longpath', 'dir', 'root', 'deeper than PATH_MAX, one mkdirat at a time', '',
  [
    `fd = os.open('.', os.O_RDONLY)`,
    `for i in range(20):`,
    `    os.mkdir(chr(97 + i) * 255, dir_fd=fd); n = os.open(chr(97 + i) * 255, os.O_RDONLY, dir_fd=fd); os.close(fd); fd = n`,
    `os.close(os.open('f', os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)); out = os.listdir(fd)`,
  ].join('\n'), []);

export const CASES: readonly Case[] = cases;
