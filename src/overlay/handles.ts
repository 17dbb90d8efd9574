import { constants } from 'node:fs';
import type { Logger } from 'pino';
import type { Backend } from './backend.js';
import { fsError } from './errors.js';
import type { FileCache } from './file-cache.js';
import { nowNs, type FileIo, type OpenFile } from './file.js';
import { InodeState, type Backing, type Passthrough } from './passthrough.js';
import { isWithin } from './paths.js';

const { O_RDONLY, O_TRUNC, O_WRONLY } = constants;
/** The access mode bits of open(2)'s flags (node's constants lack the mask). */
export const O_ACCMODE = 3;

/** An open file descriptor of the mount (a FUSE fh). */
interface Handle {
  file: OpenFile;
  flags: number;
  /** The path's kernel inode, and whether the kernel reads and writes this handle's backing file itself. */
  inode?: InodeState;
  pt: boolean;
  /** Bytes its reads got from here (not counting the FUSE threads'). */
  readBytes: number;
  /** Its reads have moved the file's atime (or did not need to): once per handle. */
  accessed: boolean;
}

export interface HandleTableOptions {
  backend: Backend;
  log: Logger;
  io: FileIo;
  fileCache?: FileCache;
  passthrough?: Passthrough;
  /**
   * Makes a file's changes a version (commit.ts): a release commits, and so does the last user
   * of a file that a truncate or setattr left its change to. Passed in so that the table does
   * not depend on the pipeline, which looks files up here.
   */
  commit: (f: OpenFile) => Promise<void>;
}

/**
 * The mount's open files and file descriptors, as JuiceFS's handle table: one OpenFile per path
 * shared by every handle on it (files), the handles by fh, and per path with open handles the
 * kind of its kernel inode, cached or passthrough (passthrough.ts), with the backing file the
 * kernel reads a passthrough one from. It opens, shares, drops and releases; what a file's
 * content or attributes become in the namespace is the commit pipeline's, what a path shows is
 * ops.ts's.
 */
export class HandleTable {
  /**
   * The OpenFile of each path open or changed here, one per path (one unlinked while open
   * under the .fuse_hidden name libfuse renamed it to). ops.ts adds a path's when it opens or
   * changes it, and moves or forgets it as the namespace changes; the last drop forgets it here.
   */
  readonly files = new Map<string, OpenFile>();
  private handles = new Map<number, Handle>();
  /** Per path with open handles: which kind the kernel inode has (passthrough.ts). */
  private inodes = new Map<string, InodeState>();
  /** Opens the kernel served by passthrough. */
  passthroughOpens = 0;
  private nextFh = 1;

  constructor(private opts: HandleTableOptions) {}

  /** fh's handle; EBADF when it is not open. */
  get(fh: number, path: string): Handle {
    const h = this.handles.get(fh);
    if (!h) throw fsError('EBADF', path);
    return h;
  }

  /** The file a handle is open on: one object per file here, whatever it is renamed to (locks.ts). */
  fileOf(fh: number): OpenFile | undefined {
    return this.handles.get(fh)?.file;
  }

  /** The kernel reads path from a passthrough backing file, without asking the mount. */
  backed(path: string): boolean {
    return !!this.inodes.get(path)?.pt;
  }

  /** f's passthrough backing file, while its inode has one holding f's content. */
  backingOf(f: OpenFile): Backing | null {
    const b = this.inodes.get(f.path)?.pt;
    return b && b.owner === f ? b : null;
  }

  /** Take in what the kernel wrote to f's backing file since last looked. */
  async refresh(f: OpenFile): Promise<void> {
    const b = this.backingOf(f);
    const s = b && (await b.changes());
    if (!b || !s) return;
    b.chunkListHash = null;
    f.changedInBacking(Number(s.size), s.mtimeNs, s.ctimeNs);
  }

  private newHandle(file: OpenFile, flags: number): number {
    while (this.handles.has(this.nextFh)) this.nextFh = this.nextFh >= 0x7fffffff ? 1 : this.nextFh + 1;
    const fh = this.nextFh++;
    this.handles.set(fh, { file, flags, pt: false, readBytes: 0, accessed: false });
    file.refs++;
    return fh;
  }

  /**
   * A new handle's kind (passthrough.ts InodeState): passthrough when its inode has a backing
   * file already (the kernel allows nothing else then), or is idle and the open may start one:
   * read-only, of a committed version the file cache holds whole. Else a cached open.
   */
  private async chooseKind(path: string, fh: number, flags: number): Promise<void> {
    const h = this.handles.get(fh)!;
    const state = this.inodes.get(path) ?? new InodeState();
    this.inodes.set(path, state);
    h.inode = state;
    const decided = state.deciding.then(async () => {
      const f = h.file;
      const pt = this.opts.passthrough;
      if (state.pt && pt) {
        const b = state.pt;
        b.handles.add(fh);
        h.pt = true;
        await this.joinBacking(b, f, flags);
        pt.reply(fh, b);
        this.passthroughOpens++;
        return;
      }
      const cache = this.opts.fileCache;
      const m = f.entry?.chunkListHash;
      // One backing file per copy: two paths of the same content share a copy, and a writer of
      // one would change the other's bytes.
      if (state.idle && pt?.enabled && cache && m && f.clean && !f.hidden && (flags & O_ACCMODE) === O_RDONLY && !(flags & O_TRUNC) && cache.has(m) && !cache.inUse(m)) {
        const b = await pt.backing(cache, m);
        if (b && state.idle && f.clean && f.entry?.chunkListHash === m) {
          b.owner = f;
          b.handles.add(fh);
          state.pt = b;
          h.pt = true;
          cache.use(m);
          pt.reply(fh, b);
          this.passthroughOpens++;
          return;
        }
        if (b) await pt.close(cache, b);
      }
      state.cached++;
    });
    state.deciding = decided.catch(() => undefined);
    await decided;
  }

  /** A new passthrough handle on b, through which f is opened: b must hold f's content. */
  private async joinBacking(b: Backing, f: OpenFile, flags: number): Promise<void> {
    const cache = this.opts.fileCache!;
    if (b.owner !== f) {
      // The path's file is another one now (deleted and made again elsewhere, say): one inode,
      // one backing file, which takes its content.
      b.owner = f;
      if (f.entry?.chunkListHash && f.clean) await b.become(cache, this.opts.backend, f.entry.chunkListHash, f.size);
      else await this.truncateBacking(b, f, 0);
    } else if (f.entry?.chunkListHash && f.clean) {
      await b.become(cache, this.opts.backend, f.entry.chunkListHash, f.size);
    }
    if (flags & O_TRUNC) await this.truncateBacking(b, f, 0);
    else if ((flags & O_ACCMODE) !== O_RDONLY) await b.detach(cache);
  }

  private async truncateBacking(b: Backing, f: OpenFile, size: number): Promise<void> {
    await b.truncate(this.opts.fileCache!, size);
    const now = nowNs();
    f.changedInBacking(size, now, now);
  }

  /** Truncate f's content, wherever it is. */
  truncateFile(f: OpenFile, size: number): Promise<void> {
    const b = this.backingOf(f);
    return b ? this.truncateBacking(b, f, size) : f.truncate(this.opts.io, size);
  }

  /** fh is closed: its inode may go idle (and its backing file with it). */
  private async leaveInode(h: Handle, fh: number): Promise<void> {
    const inode = h.inode;
    if (!inode) return;
    h.inode = undefined;
    if (h.pt && inode.pt) {
      const b = inode.pt;
      b.handles.delete(fh);
      if (b.handles.size === 0) {
        inode.pt = null;
        await this.opts.passthrough!.close(this.opts.fileCache!, b);
      }
    } else if (!h.pt) {
      inode.cached--;
    }
    if (inode.idle) for (const [p, s] of this.inodes) if (s === inode) this.inodes.delete(p);
  }

  /** A handle that read its whole version: keep a copy for passthrough opens (file-cache.ts). */
  private keepCopy(h: Handle, fastBytes: number): void {
    const f = h.file;
    const m = f.entry?.chunkListHash;
    const cache = this.opts.fileCache;
    if (!cache || h.pt || !m || !f.clean || fastBytes + h.readBytes < f.size || !cache.wants(m, f.size)) return;
    cache.fill(m, f.size, (pos, len) => this.opts.backend.readRange(m, pos, len, 4));
  }

  /** A new handle on f, which the caller has put in files: returns its fh. */
  async open(f: OpenFile, flags: number): Promise<number> {
    const fh = this.newHandle(f, flags);
    const h = this.handles.get(fh)!;
    try {
      await this.chooseKind(f.path, fh, flags);
      if (h.pt) return fh;
      if (flags & O_TRUNC) await f.truncate(this.opts.io, 0);
      else if ((flags & O_ACCMODE) !== O_WRONLY) await this.serveFast(f, fh);
    } catch (err) {
      this.handles.delete(fh);
      if (h.pt) this.opts.passthrough?.forget(fh);
      await this.leaveInode(h, fh);
      await this.drop(f);
      throw err;
    }
    return fh;
  }

  /** Let the FUSE threads serve fh's reads while its file is the committed version (fast-read.ts). */
  private async serveFast(f: OpenFile, fh: number): Promise<void> {
    const fast = this.opts.io.fastReads;
    const chunkListHash = f.entry?.chunkListHash;
    if (!fast || !f.clean || !chunkListHash) return;
    let chunks;
    try {
      chunks = await this.opts.backend.chunkList(chunkListHash);
    } catch (err) {
      this.opts.log.debug({ err, path: f.path }, 'no chunk list: reads go through the fetcher');
      return;
    }
    // A write, a newer version or a close may have come meanwhile.
    if (!f.clean || f.entry?.chunkListHash !== chunkListHash || this.handles.get(fh)?.file !== f) return;
    if (fast.add(fh, chunks)) f.fastHandles.add(fh);
  }

  /** fh is closed (the kernel's release, after close(2) returned): its file's changes become a version. */
  async release(path: string, fh: number): Promise<void> {
    const h = this.get(fh, path);
    this.handles.delete(fh);
    const fastBytes = (h.file.fastHandles.delete(fh) && this.opts.io.fastReads?.drop(fh)) || 0;
    try {
      await this.refresh(h.file);
      // Changed since its close (flush committed what it wrote) by another user still holding
      // it: the next writer's O_TRUNC open, between this close and this release, which the
      // kernel does not wait for. That user's close commits it; committed here, an overwrite
      // (`echo two > v`) showed an empty version before the new one, as often as 6 in 40 here.
      if (!(h.file.changedSinceClose && h.file.refs > 1)) await this.opts.commit(h.file);
      this.keepCopy(h, fastBytes);
    } finally {
      await this.leaveInode(h, fh);
      await this.drop(h.file);
    }
  }

  /**
   * One user of f less; the last one commits what a truncate or setattr left to it (ops.ts
   * withFile) and forgets the file. That may come after the last release took its version: a
   * utimensat right after close (rsync) finds the file still open, with that release under way.
   */
  async drop(f: OpenFile): Promise<void> {
    if (--f.refs > 0) return;
    try {
      if (f.commitWhenDropped) {
        // Held while it commits: an open meanwhile shares it, and the last user then is that.
        f.refs++;
        try {
          await this.opts.commit(f);
        } finally {
          f.refs--;
        }
      }
    } finally {
      if (f.refs === 0) {
        if (this.files.get(f.path) === f) this.files.delete(f.path);
        await f.close();
      }
    }
  }

  /** libfuse moves its inodes with a rename through the mount: their states move too. */
  moveInodes(from: string, to: string): void {
    for (const [p, s] of [...this.inodes]) {
      if (!isWithin(p, from)) continue;
      this.inodes.delete(p);
      this.inodes.set(to + p.slice(from.length), s);
    }
  }
}
