#!/usr/bin/env python3
"""
Driver of the POSIX conformance suite (test/posix/conformance.test.ts).

It runs a batch of cases in one directory tree (a fresh run directory in the FUSE mount, or on
the local disk) and prints, for each case, one normalized result string that does not depend on
where it ran: the errno of the action (or OK, and what it returned), then a canonical
description of the paths the case observes afterwards (type, mode bits, nlink, owner, size,
rdev, content of small files, symlink target, directory entries, and whether atime / mtime /
ctime moved, stayed, or equal one of the fixed times the cases set; never an absolute time).

The test process hosts the chunk server the mount needs, so it must not touch the mount itself:
every syscall of the suite is made here, in a process of its own.

Input (JSON on stdin): {"mode": "run" | "setup" | "act" | "raw", "root": dir, "cases": [...]}.
  run:   setup every case (as root), let things settle, snapshot the observed paths' times,
         let the clock tick, run every action (as the case's user, in a forked child), let
         things settle, then describe the observed paths (as root). Prints {"case id": "result"}.
  setup / act: one phase only (the two-node part sets up and acts through node A).
  raw:   exact lstat fields (times in ns included) of each case's observed paths, to compare
         what two nodes show of the same entries.
A case: {"id", "dir" (its directory's name under the root), "user": "root" | "nobody" | "user", "setup": python, "act": python,
         "observe": ["path" | "path<was" | "path@" ...], "extra": ["atime", "lnkatime", "dirnlink", "dirsize"]}.
  "b<a": describe b, its times compared with those a had at the snapshot (a rename's target).
  "p@": stat (follow symlinks) instead of lstat.
The setup and the action are Python statements run in the case's directory with the helpers
below in scope; an action may set `out` to report a value (a stat result is described too).
"""
import ctypes
import errno
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

os.umask(0o022)  # the same umask for both runs, whatever the caller has

# Fixed times the cases set (ns since the epoch); a time equal to one shows as its name.
T0 = 946_684_800_000_000_000  # 2000-01-01 00:00:00
T1 = 1_000_000_000_123_456_789  # 2001-09-09, with nanoseconds
T2 = 1_100_000_000_987_654_321  # 2004-11-09, with nanoseconds
FIXED = {T0: 'T0', T1: 'T1', T2: 'T2'}

# The users the actions run as: root, nobody (no supplementary group) and an ordinary user that
# is also in group 2000 (chown to a group of one's own, set-gid directories).
USERS = {
    'root': (0, 0, []),
    'nobody': (65534, 65534, []),
    'user': (1000, 1000, [1000, 2000]),
}

# ---------------------------------------------------------------------------------------------
# Helpers the case snippets use.

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
NOW = 'now'
OMIT = 'omit'
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


class Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


def _check(rc, path):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def utimens(path, atime, mtime, nofollow=False):
    """utimensat(2) with each time an int (ns), NOW (UTIME_NOW) or OMIT (UTIME_OMIT)."""
    def ts(t):
        if t == NOW:
            return Timespec(0, UTIME_NOW)
        if t == OMIT:
            return Timespec(0, UTIME_OMIT)
        if isinstance(t, tuple):  # (sec, nsec) as given, for an invalid nsec
            return Timespec(*t)
        return Timespec(t // 1_000_000_000, t % 1_000_000_000)
    arr = (Timespec * 2)(ts(atime), ts(mtime))
    _check(libc.utimensat(AT_FDCWD, os.fsencode(path), arr, AT_SYMLINK_NOFOLLOW if nofollow else 0), path)


def renameat2(old, new, flags):
    _check(libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags), old)


def put(name, data=b'data\n', mode=None):
    """A regular file with this content (created 0644, or overwritten); a mode given is set
    exactly (fchmod: the umask does not narrow it)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644 if mode is None else mode)
    try:
        os.write(fd, data)
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def read(name, n=4096):
    fd = os.open(name, os.O_RDONLY)
    try:
        return os.read(fd, n)
    finally:
        os.close(fd)


def bind(name):
    """A Unix socket entry (made by bind(2)); the socket itself is closed again."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(name)
    finally:
        s.close()


def mk(kind, name, mode=None):
    """An entry of each file type: reg (5 bytes), dir, symlink (to a file name + '.t' made with
    it), fifo, sock, chr (1:3, like /dev/null), blk (7:0)."""
    if kind == 'reg':
        put(name, b'data\n')
    elif kind == 'dir':
        os.mkdir(name, 0o755 if mode is None else mode)
    elif kind == 'symlink':
        put(name + '.t', b'target\n')
        os.symlink(os.path.basename(name) + '.t', name)
    elif kind == 'fifo':
        os.mkfifo(name, 0o644 if mode is None else mode)
    elif kind == 'sock':
        bind(name)
    elif kind == 'chr':
        os.mknod(name, stat.S_IFCHR | (0o644 if mode is None else mode), os.makedev(1, 3))
    elif kind == 'blk':
        os.mknod(name, stat.S_IFBLK | (0o644 if mode is None else mode), os.makedev(7, 0))
    else:
        raise ValueError(kind)
    if mode is not None and kind != 'symlink':
        os.chmod(name, mode)  # the mode exactly, whatever the umask took


def own(name, who, gid=None):
    """lchown to a user of USERS (its uid and primary gid), or to uid/gid numbers."""
    uid, g = (USERS[who][0], USERS[who][1]) if isinstance(who, str) else (who, gid)
    os.lchown(name, uid, g if gid is None else gid)


def old(*names):
    """Times (atime and mtime) of the entries set to T0, so a move of either shows."""
    for n in names:
        utimens(n, T0, T0, nofollow=True)


def new(kind, name, mode=None):
    """Make an entry of a kind where none may be (O_EXCL for a file), with the modes programs
    ask for by default (0666 for files and nodes, 0777 for directories: the umask narrows them)."""
    m = (0o777 if kind == 'dir' else 0o666) if mode is None else mode
    if kind == 'reg':
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, m))
    elif kind == 'dir':
        os.mkdir(name, m)
    elif kind == 'symlink':
        os.symlink('target', name)
    elif kind == 'fifo':
        os.mkfifo(name, m)
    elif kind == 'sock':
        bind(name)
    elif kind == 'chr':
        os.mknod(name, stat.S_IFCHR | m, os.makedev(1, 3))
    elif kind == 'blk':
        os.mknod(name, stat.S_IFBLK | m, os.makedev(7, 0))
    else:
        raise ValueError(kind)


def mkown(kind, name, who):
    """mk, owned by a user (a symlink and its target both)."""
    mk(kind, name)
    own(name, who)
    if kind == 'symlink':
        own(name + '.t', who)


def each(*steps):
    """Run every step (a function), whatever the earlier ones did: the list of their results,
    an errno name for a step that failed."""
    out = []
    for f in steps:
        try:
            out.append(f())
        except OSError as e:
            out.append(errname(e))
    return out


def helpers():
    g = {k: v for k, v in globals().items() if not k.startswith('_')}
    g.update(os=os, stat=stat, socket=socket, subprocess=subprocess, shutil=shutil, time=time)
    return g

# ---------------------------------------------------------------------------------------------
# Describing what a case left behind.

TYPES = [(stat.S_ISREG, 'reg'), (stat.S_ISDIR, 'dir'), (stat.S_ISLNK, 'lnk'), (stat.S_ISFIFO, 'fifo'),
         (stat.S_ISSOCK, 'sock'), (stat.S_ISCHR, 'chr'), (stat.S_ISBLK, 'blk')]


def type_of(mode):
    for test, name in TYPES:
        if test(mode):
            return name
    return '?%o' % stat.S_IFMT(mode)


def when(t, before, now):
    """A time as: a fixed time's name, same (as at the snapshot), back (earlier), now (moved to
    about the present), or far (anything else: a bogus value)."""
    if t in FIXED:
        return FIXED[t]
    if before is not None and t == before:
        return 'same'
    if before is not None and t < before:
        return 'back'
    if abs(t - now) < 120 * 1_000_000_000:
        return 'now'
    return 'far'


def describe(st, path, snap, extra, now, with_times=True):
    """The canonical description of one entry (see the module's doc)."""
    kind = type_of(st.st_mode)
    parts = [kind, '%04o' % stat.S_IMODE(st.st_mode)]
    if kind != 'dir' or 'dirnlink' in extra:
        parts.append('nlink=%d' % st.st_nlink)
    parts.append('%d:%d' % (st.st_uid, st.st_gid))
    if kind in ('reg', 'lnk') or (kind == 'dir' and 'dirsize' in extra):
        parts.append('size=%d' % st.st_size)
    if kind in ('chr', 'blk'):
        parts.append('rdev=%d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    if path is not None and kind == 'reg' and st.st_size <= 64:
        try:
            parts.append('data=%r' % read(path, 64))
        except OSError as e:
            parts.append('data=' + errno.errorcode.get(e.errno, str(e.errno)))
    if path is not None and kind == 'lnk':
        t = os.readlink(path)
        parts.append('->' + (t if len(t) <= 40 else '%s...(%d bytes)' % (t[:8], len(t))))
    if path is not None and kind == 'dir':
        try:
            names = sorted(os.listdir(path))
            parts.append('[%s]' % ','.join(n if len(n) <= 20 else n[:8] + '...' for n in names))
        except OSError as e:
            parts.append('[%s]' % errno.errorcode.get(e.errno, str(e.errno)))
    if with_times:
        b = snap or (None, None, None)
        # A symlink's atime moves whenever it is followed: only the cases about that look at it.
        if 'atime' in extra and (kind != 'lnk' or 'lnkatime' in extra):
            parts.append('a=' + when(st.st_atime_ns, b[0], now))
        parts.append('m=' + when(st.st_mtime_ns, b[1], now))
        parts.append('c=' + when(st.st_ctime_ns, b[2], now))
    return ' '.join(parts)


def parse_obs(spec):
    """'b<a' -> ('b', 'a', False); 'p@' -> ('p', 'p', True)."""
    follow = spec.endswith('@')
    if follow:
        spec = spec[:-1]
    path, _, was = spec.partition('<')
    return path, (was or path), follow


def lstat_or_none(path, follow=False):
    try:
        return os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None


def errname(e):
    if e.errno is None:  # raised by Python itself (an AF_UNIX path past 107 bytes)
        return 'OSError(%s)' % e
    return errno.errorcode.get(e.errno, str(e.errno))


def fmt_out(v):
    if isinstance(v, os.stat_result):
        return describe(v, None, None, [], time.time_ns(), with_times=False)
    if isinstance(v, (list, tuple)):
        return '(' + ', '.join(fmt_out(x) for x in v) + ')'
    return repr(v)

# ---------------------------------------------------------------------------------------------
# Phases.


def case_dir(root, case):
    return os.path.join(root, case['dir'])


def run_setup(root, case):
    """Make the case's directory (root's, mode 0777: every user may create in it; a case makes
    it sticky or narrower itself) and run its setup there, as root. An error is the result."""
    d = case_dir(root, case)
    os.mkdir(d)
    os.chmod(d, 0o777)
    try:
        os.chdir(d)
        exec(case.get('setup', ''), helpers())
        return None
    except OSError as e:
        return 'SETUP %s (%s)' % (errname(e), e)
    except Exception as e:  # a mistake of the suite itself
        return 'SETUP PYERR %s: %s' % (type(e).__name__, e)
    finally:
        os.chdir(root)


def run_act(root, case):
    """The action, in a child that takes the case's user (groups, gid, uid: in that order, as
    root can only); the child tells its result through a pipe. 5 s at most (a fifo's open)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.chdir(case_dir(root, case))
            uid, gid, groups = USERS[case.get('user', 'root')]
            if uid != 0:
                os.setgroups(groups)
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
            signal.alarm(5)
            g = helpers()
            exec(case['act'], g)
            res = 'OK' + (' out=' + fmt_out(g['out']) if 'out' in g else '')
        except OSError as e:
            res = errname(e)
        except BaseException as e:
            res = 'PYERR %s: %s' % (type(e).__name__, e)
        os.write(w, res.encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    res = b''.join(chunks).decode()
    return res if res else 'TIMEOUT/CRASH (status %d)' % status


def snapshot(root, case):
    """The times of the observed paths (and of those they are compared with) before the action."""
    d = case_dir(root, case)
    snap = {}
    for spec in ['.'] + case.get('observe', []):
        path, was, follow = parse_obs(spec)
        st = lstat_or_none(os.path.join(d, was), follow)
        if st is not None:
            snap[spec] = (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)
    return snap


def observe(root, case, snap):
    d = case_dir(root, case)
    os.chdir(d)
    try:
        now = time.time_ns()
        out = []
        for spec in ['.'] + case.get('observe', []):
            path, _, follow = parse_obs(spec)
            try:
                st = os.stat(path) if follow else os.lstat(path)
                desc = describe(st, path, snap.get(spec), case.get('extra', []), now)
            except OSError as e:
                desc = errname(e)
            out.append('%s: %s' % (spec, desc))
        return out
    finally:
        os.chdir(root)


def raw(root, case):
    """Exact lstat fields of each observed path, for comparing two nodes' views."""
    d = case_dir(root, case)
    out = []
    for spec in ['.'] + case.get('observe', []):
        path, _, follow = parse_obs(spec)
        p = os.path.join(d, path)
        try:
            st = os.stat(p) if follow else os.lstat(p)
            extra = ''
            if stat.S_ISLNK(st.st_mode):
                extra = ' ->' + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                extra = ' [%s]' % ','.join(sorted(os.listdir(p)))
            out.append('%s: ino=%d %s %o nlink=%d %d:%d size=%d rdev=%d a=%d m=%d c=%d%s' % (
                spec, st.st_ino, type_of(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, st.st_uid, st.st_gid,
                st.st_size, st.st_rdev, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, extra))
        except OSError as e:
            out.append('%s: %s' % (spec, errname(e)))
    return ' | '.join(out)


def main():
    req = json.load(sys.stdin)
    root = req['root']
    cases = req['cases']
    mode = req['mode']
    os.chdir(root)
    results = {}
    if mode == 'raw':
        for c in cases:
            results[c['id']] = raw(root, c)
    elif mode == 'act':
        for c in cases:
            results[c['id']] = run_act(root, c)
    else:
        failed = {}
        for c in cases:
            err = run_setup(root, c)
            if err:
                failed[c['id']] = err
        if mode == 'setup':
            results = failed
        else:
            # Settle before each look: the kernel keeps a FUSE file's attributes and names for
            # up to settle seconds (the mount's attr/entry timeouts), so what a stat shows
            # within that time depends on when it comes. Looking only at settled state keeps
            # the results the same from run to run (cases about "right after" look themselves).
            # The pause also lets the coarse kernel clock tick, so any later change of a time
            # shows as one.
            settle = req.get('settle', 0.7)
            time.sleep(settle)
            snaps = {c['id']: snapshot(root, c) for c in cases}
            time.sleep(0.05)
            acts = {c['id']: failed.get(c['id']) or run_act(root, c) for c in cases}
            time.sleep(settle)
            for c in cases:
                results[c['id']] = ' | '.join([acts[c['id']]] + observe(root, c, snaps[c['id']]))
    json.dump(results, sys.stdout, indent=0, sort_keys=True)


if __name__ == '__main__':
    main()
