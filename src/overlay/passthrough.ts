import { open, rm, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { Backend } from './backend.js';
import type { FileCache } from './file-cache.js';
import type { OpenFile } from './file.js';

/** The patched addon's functions behind passthrough (patches/oswalk-passthrough.c). */
export interface PassthroughBinding {
  oswalk_backing_open(fd: number): number;
  oswalk_backing_close(id: number): number;
  oswalk_open_reply(fh: number, backingId: number): void;
}
const { EPERM, ENODEV, EINVAL, ENOTTY, ELOOP } = constants.errno;

/**
 * What one path's kernel inode is doing on this mount. The kernel allows an inode either
 * cached opens (its page cache, reads and writes through the FS process) or passthrough opens,
 * all on one backing file, never both at once: an open of the other kind fails with EIO. So
 * the first open of an idle inode decides, and every open until the last one closes follows.
 * Kept per path, as libfuse keeps one inode per name, and moved by renames with it.
 */
export class InodeState {
  /** Open handles without passthrough. */
  cached = 0;
  /** The backing file while passthrough handles are open. */
  pt: Backing | null = null;
  /** Opens deciding their kind, one at a time (each may await the backing file). */
  deciding: Promise<unknown> = Promise.resolve();

  get idle(): boolean {
    return this.cached === 0 && this.pt === null;
  }
}

interface Seen {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/**
 * A backing file registered with the kernel: a whole copy of the file's content, which every
 * passthrough handle of the inode reads and writes directly. It starts as a copy in the file
 * cache; anything that changes it (a writer, a newer version from another node) works on a
 * copy taken out of the cache first (FileCache.detach). The FS process learns of the kernel's
 * writes to it from its times and size (changes()).
 */
export class Backing {
  readonly handles = new Set<number>();
  /** The version whose bytes it holds; null once it holds changes of its own. */
  chunkListHash: string | null;
  /** Out of the file cache, free to change. */
  live = false;
  /** Its name once live (removed at close). */
  livePath: string | null = null;
  /** The OpenFile whose content it holds (the path's file when the first handle opened). */
  owner: OpenFile | null = null;
  /** Its last handle closed: nothing reads it any more (a stat or an event may still come). */
  closed = false;
  private seen: Seen;
  /** Changes of ours to it, one at a time (a newer version may arrive while a writer truncates). */
  private changing: Promise<unknown> = Promise.resolve();

  constructor(readonly id: number, readonly file: FileHandle, chunkListHash: string, seen: Seen) {
    this.chunkListHash = chunkListHash;
    this.seen = seen;
  }

  /** Where its content can be read by name, wherever (and whether) it has one. */
  get contentPath(): string {
    return `/proc/self/fd/${this.file.fd}`;
  }

  /** Out of the cache before it changes: the cache's name for a version must keep its bytes. */
  async detach(cache: FileCache): Promise<void> {
    if (this.live) return;
    this.live = true;
    this.livePath = await cache.detach(this.chunkListHash!);
  }

  /** Its size and times now, when they moved since last looked at (the kernel wrote to it). */
  async changes(): Promise<Seen | null> {
    if (!this.live || this.closed) return null;
    const s = await this.file.stat({ bigint: true });
    const now = { size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
    const moved = now.size !== this.seen.size || now.mtimeNs !== this.seen.mtimeNs || now.ctimeNs !== this.seen.ctimeNs;
    this.seen = now;
    return moved ? now : null;
  }

  /**
   * Make it hold the version whose chunk list hashes to `chunkListHash` (size bytes): only the
   * chunks that differ from the version it holds are written, so an append elsewhere costs its
   * last chunks, not the file.
   */
  become(cache: FileCache, backend: Backend, chunkListHash: string, size: number): Promise<void> {
    return this.serially(async () => {
      if (chunkListHash === this.chunkListHash) return;
      await this.detach(cache);
      const before = new Map<number, string>();
      if (this.chunkListHash) for (const c of await offsets(backend, this.chunkListHash)) before.set(c.offset, c.hash);
      for (const c of await offsets(backend, chunkListHash)) {
        if (before.get(c.offset) === c.hash) continue;
        const data = await backend.readRange(chunkListHash, c.offset, c.size, 0);
        await this.file.write(data, 0, data.length, c.offset);
      }
      await this.file.truncate(size);
      this.chunkListHash = chunkListHash;
      await this.changes();
    });
  }

  /** Truncate it (the FS process's own change: truncate, O_TRUNC). */
  truncate(cache: FileCache, size: number): Promise<void> {
    return this.serially(async () => {
      await this.detach(cache);
      await this.file.truncate(size);
      this.chunkListHash = null;
      await this.changes();
    });
  }

  /** When changes of ours under way are done. */
  idle(): Promise<unknown> {
    return this.changing;
  }

  private serially(fn: () => Promise<void>): Promise<void> {
    const p = this.changing.then(() => (this.closed ? undefined : fn()));
    this.changing = p.catch(() => undefined);
    return p;
  }
}

async function offsets(backend: Backend, chunkListHash: string): Promise<Array<{ offset: number; size: number; hash: string }>> {
  let offset = 0;
  return (await backend.chunkList(chunkListHash)).map((c) => {
    const at = offset;
    offset += c.size;
    return { offset: at, size: c.size, hash: c.hash };
  });
}

/**
 * FUSE passthrough for one mount (patches/oswalk-passthrough.c): backing file ids from the
 * kernel, and the flags of open replies. Off for good after the kernel refuses a backing file
 * (before Linux 6.9, or without CAP_SYS_ADMIN).
 */
export class Passthrough {
  private off = false;

  constructor(private binding: PassthroughBinding, private log: Logger) {}

  get enabled(): boolean {
    return !this.off;
  }

  /**
   * Register the file cache's copy of `chunkListHash` as a backing file (pinned in the cache until
   * closed or detached); null when the kernel will not.
   */
  async backing(cache: FileCache, chunkListHash: string): Promise<Backing | null> {
    const path = cache.path(chunkListHash);
    cache.pin(chunkListHash);
    let file: FileHandle;
    try {
      file = await open(path, 'r+');
    } catch (err) {
      cache.unpin(chunkListHash);
      this.log.warn({ err, path }, 'could not open a copy in the file cache');
      return null;
    }
    try {
      const id = this.binding.oswalk_backing_open(file.fd);
      if (id > 0) {
        const s = await file.stat({ bigint: true });
        return new Backing(id, file, chunkListHash, { size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs });
      }
      if ([EPERM, ENODEV, EINVAL, ENOTTY, ELOOP].includes(-id)) {
        // ELOOP: the state dir is on a stacked filesystem (overlayfs), under which the kernel
        // will not pass through.
        this.off = true;
        this.log.info({ errno: -id, path }, 'no FUSE passthrough here (an older kernel, no CAP_SYS_ADMIN, or a state dir on overlayfs): every open goes through the FS process');
      } else {
        this.log.warn({ errno: -id, path }, 'could not register a backing file');
      }
    } catch (err) {
      this.log.warn({ err, path }, 'could not register a backing file');
    }
    cache.unpin(chunkListHash);
    await file.close();
    return null;
  }

  /** The open reply for fh is to say passthrough with this backing file. */
  reply(fh: number, b: Backing): void {
    this.binding.oswalk_open_reply(fh, b.id);
  }

  /** fh's open failed after reply(): its mark must not outlive it. */
  forget(fh: number): void {
    this.binding.oswalk_open_reply(fh, 0);
  }

  /** The last handle on b closed: the kernel drops the id (and the inode its file), we the rest. */
  async close(cache: FileCache, b: Backing): Promise<void> {
    b.closed = true;
    this.binding.oswalk_backing_close(b.id);
    // After changes of ours under way: they may still be writing to it.
    await b.idle();
    await b.file.close();
    if (b.livePath) await rm(b.livePath, { force: true });
    else if (b.chunkListHash) cache.unpin(b.chunkListHash);
  }
}
