import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { oswalkAddon } from '../native/addon.js';
import { errnoOf } from './errors.js';
import { fastReads, type FastReadBinding, type FastReads } from './fast-read.js';
import type { LockBinding } from './locks.js';
import type { FuseCaller, OverlayFs, Stat } from './ops.js';
import { Passthrough, type PassthroughBinding } from './passthrough.js';

/** The parts of (patched) fuse-native this module uses. */
interface FuseInstance {
  caller: FuseCaller;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
type FuseClass = new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => FuseInstance;

const require = createRequire(import.meta.url);

/** The attributes the addon keeps from directory listings and answers stats with (patches/oswalk-attrs.c). */
export interface KeptAttrs {
  /** The metadata cache learnt of a change: nothing kept so far is answered; or, with path, of a change of path's atime alone. */
  forget(path?: string): void;
  /** Answers the addon gave without JavaScript, and the entries it keeps now. */
  stats(): { answers: number; entries: number };
}

interface KeptAttrsBinding {
  oswalk_attrs_forget(): void;
  oswalk_attrs_forget_path(path: string): void;
  oswalk_attrs_stats(): [number, number];
}

/**
 * fuse-native, with its patched addon; the addon's reads on the FUSE threads over the store at
 * storeDir, its FUSE passthrough, its lock requests (locks.ts) and the attributes it keeps.
 */
export function loadFuse(storeDir: string, log: Logger): { Fuse: FuseClass; fastReads: FastReads; passthrough: Passthrough; locks: LockBinding; attrs: KeptAttrs } {
  const binding = oswalkAddon() as unknown as FastReadBinding & PassthroughBinding & LockBinding & KeptAttrsBinding;
  const attrs: KeptAttrs = {
    forget: (path) => (path === undefined ? binding.oswalk_attrs_forget() : binding.oswalk_attrs_forget_path(path)),
    stats: () => {
      const [answers, entries] = binding.oswalk_attrs_stats();
      return { answers, entries };
    },
  };
  return { Fuse: require('fuse-native') as FuseClass, fastReads: fastReads(binding, storeDir), passthrough: new Passthrough(binding, log), locks: binding, attrs };
}

export interface MountTuning {
  /** Seconds the kernel may trust a name lookup / attributes (and a failed lookup). */
  entryTimeout: number;
  attrTimeout: number;
  negativeTimeout: number;
}

/**
 * Mount options. big_writes + max_write: the kernel sends 128 KiB writes instead of 4 KiB (about
 * ten times the throughput through fuse-native's one JS thread). auto_cache keeps file pages in
 * the kernel across opens unless the mtime or size changed (so another node's new version is
 * read fresh). atomic_o_trunc: O_TRUNC arrives with open instead of as a truncate before it,
 * so overwriting a file makes one new version, not an empty one first. use_ino: the inode numbers
 * are the mount's (ops.ts inoOf), so that the names of a hard-linked file share one. allow_other + default_permissions: every user (and container) may use the mount,
 * and the kernel checks modes against the owners we report.
 */
export function mountOptions(t: MountTuning): Record<string, unknown> {
  return {
    timeout: false,
    allowOther: true,
    defaultPermissions: true,
    autoCache: true,
    fsname: 'oswalk',
    entryTimeout: t.entryTimeout,
    attrTimeout: t.attrTimeout,
    extraOptions: ['use_ino', 'big_writes', 'max_write=131072', 'max_read=131072', 'atomic_o_trunc', `negative_timeout=${t.negativeTimeout}`, 'subtype=oswalk'],
  };
}

/** fuse-native's callback-style handlers over OverlayFs's async operations. */
export function fuseOps(fs: OverlayFs, fuse: () => FuseInstance, log: Logger): Record<string, unknown> {
  type Cb = (code: number, value?: unknown) => void;
  const answer = (op: string, path: string, cb: Cb, p: Promise<unknown>, ok: (v: unknown) => [number, unknown?] = (v) => [0, v]) => {
    p.then(
      (v) => {
        const [code, value] = ok(v);
        cb(code, value);
      },
      (err) => {
        const errno = errnoOf(err);
        if (errno === 5) log.warn({ err, op, path }, 'I/O error');
        else log.debug({ op, path, errno, msg: (err as Error).message }, 'operation failed');
        cb(-errno);
      },
    );
  };
  const caller = () => ({ ...fuse().caller });
  const count = (v: unknown): [number] => [v as number];
  return {
    getattr: (p: string, cb: Cb) => answer('getattr', p, cb, fs.getattr(p)),
    // The names, and what their directory entries say of each (type, number): fs.direntStats.
    readdir: (p: string, cb: (code: number, names?: string[], stats?: Stat[]) => void) =>
      answer('readdir', p, (code, names) => cb(code, names as string[] | undefined, names ? fs.direntStats(p, names as string[]) : undefined), fs.readdir(p)),
    open: (p: string, flags: number, cb: Cb) => answer('open', p, cb, fs.open(p, flags, caller())),
    create: (p: string, mode: number, flags: number, cb: Cb) => answer('create', p, cb, fs.create(p, mode, flags, caller())),
    read: (p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      answer('read', p, cb, fs.read(p, fh, buf, len, pos), count),
    write: (p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      answer('write', p, cb, fs.write(p, fh, buf, len, pos), count),
    flush: (p: string, fh: number, cb: Cb) => answer('flush', p, cb, fs.flush(p, fh)),
    fsync: (p: string, _datasync: number, fh: number, cb: Cb) => answer('fsync', p, cb, fs.fsync(p, fh)),
    // Namespace changes are committed to Redis as they happen: nothing is pending on a directory.
    fsyncdir: (_p: string, _datasync: number, _fh: number, cb: Cb) => cb(0),
    release: (p: string, fh: number, cb: Cb) => answer('release', p, cb, fs.release(p, fh)),
    truncate: (p: string, size: number, cb: Cb) => answer('truncate', p, cb, fs.truncate(p, size)),
    ftruncate: (p: string, fh: number, size: number, cb: Cb) => answer('ftruncate', p, cb, fs.ftruncate(p, fh, size)),
    chmod: (p: string, mode: number, cb: Cb) => answer('chmod', p, cb, fs.chmod(p, mode)),
    chown: (p: string, uid: number, gid: number, cb: Cb) => answer('chown', p, cb, fs.chown(p, uid, gid)),
    utimens: (p: string, atime: bigint | null, mtime: bigint | null, cb: Cb) => answer('utimens', p, cb, fs.utimens(p, atime, mtime)),
    mkdir: (p: string, mode: number, cb: Cb) => answer('mkdir', p, cb, fs.mkdir(p, mode, caller())),
    rmdir: (p: string, cb: Cb) => answer('rmdir', p, cb, fs.rmdir(p)),
    unlink: (p: string, cb: Cb) => answer('unlink', p, cb, fs.unlink(p)),
    rename: (from: string, to: string, cb: Cb) => answer('rename', from, cb, fs.rename(from, to)),
    link: (from: string, to: string, cb: Cb) => answer('link', to, cb, fs.link(from, to)),
    mknod: (p: string, mode: number, dev: number, cb: Cb) => answer('mknod', p, cb, fs.mknod(p, mode, dev, caller())),
    symlink: (target: string, p: string, cb: Cb) => answer('symlink', p, cb, fs.symlink(target, p, caller())),
    readlink: (p: string, cb: Cb) => answer('readlink', p, cb, fs.readlink(p)),
    // fuse-native hands over the value in memory it reuses once this returns: copy it first.
    setxattr: (p: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) =>
      answer('setxattr', p, cb, fs.setxattr(p, name, Buffer.from(value), flags)),
    getxattr: (p: string, name: string, _position: number, cb: Cb) => answer('getxattr', p, cb, fs.getxattr(p, name)),
    listxattr: (p: string, cb: Cb) => answer('listxattr', p, cb, fs.listxattr(p)),
    removexattr: (p: string, name: string, cb: Cb) => answer('removexattr', p, cb, fs.removexattr(p, name)),
    statfs: (p: string, cb: Cb) => answer('statfs', p, cb, fs.statfs()),
  };
}

export type { Stat };
