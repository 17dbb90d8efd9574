import { constants as osConstants } from 'node:os';
import type { Backend, NewEntry } from './backend.js';
import type { MetaCache } from './cache.js';
import { errnoOf, fsError } from './errors.js';
import type { FileIo, OpenFile } from './file.js';
import type { HandleTable } from './handles.js';

const { ENOLCK, ESTALE } = osConstants.errno;

/** Tries to chunk a file being written (10, 20, 40, 80 ms apart). */
const STORE_ATTEMPTS = 5;

/** The store's "changed while it was being chunked" (packetfs FileChangedError). */
function changing(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'ECHANGED';
}

export interface CommitPipelineOptions {
  backend: Backend;
  meta: MetaCache;
  io: FileIo;
  /** The open files and their backing files, whose content a commit stores. */
  handles: HandleTable;
  /** OverlayFs.lockFence, asked at each commit. */
  lockFence: (path: string) => string | undefined;
}

/**
 * How a change here becomes a version in the namespace, as JuiceFS's writer: an OpenFile's
 * content is chunked (from the live chunker, its staging file or its passthrough backing file),
 * its copies made, and the version committed under the lock fence, once more with the content
 * stored again when chunk list GC took it meanwhile (ESTALE); the result settles into the
 * metadata cache. ops.ts commits the namespace's own changes (mkdir, symlink, a directory's
 * attributes) through commitEntry too, so that every commit is fenced and cached the same way.
 */
export class CommitPipeline {
  constructor(private opts: CommitPipelineOptions) {}

  /**
   * Make an OpenFile's changes a new version: chunk the content if it changed, then commit.
   * `unlessEmpty` (a close's flush): not when the content is empty by the time this commit's
   * turn comes, as it is when the file was truncated meanwhile (the next writer's O_TRUNC open):
   * the release, or that writer's close, commits it then.
   */
  commitFile(f: OpenFile, opts: { unlessEmpty?: boolean } = {}): Promise<void> {
    return f.serialize(async () => {
      if (opts.unlessEmpty && f.contentDirty && f.size === 0) return;
      f.commitWhenDropped = false;
      if (!f.dirty || f.hidden) return;
      if (f.lockLost) throw fsError('EIO', f.path, 'a lock on it was lost (this mount was cut off from the lock table): changes made under it are not committed');
      const content = f.contentDirty;
      const touch = f.attrsTouched;
      f.dirty = false;
      f.contentChanged = false;
      f.attrsTouched = false;
      try {
        const { chunkListHash, size, copiedTo } = content ? await this.storeContent(f) : { chunkListHash: f.entry?.chunkListHash, size: f.size, copiedTo: undefined };
        if (content && chunkListHash) await this.opts.backend.ensureCopies(f.path, chunkListHash, copiedTo);
        let v: NewEntry = { type: 'file', mode: f.mode, uid: f.uid, gid: f.gid, size, mtimeNs: f.mtimeNs, ...(f.atimeNs === undefined ? {} : { atimeNs: f.atimeNs }), chunkListHash, xattrs: f.xattrs };
        // The version's ctime is that of the file's last change, as fstat showed it while open,
        // not the close's: on ext4 a close changes no time.
        const atMs = Number(f.ctimeNs / 1_000_000n);
        let r;
        try {
          r = await this.commitEntry(f.path, v, { written: content, touch, atMs });
        } catch (err) {
          if (errnoOf(err) !== ESTALE) throw err;
          // Chunk list GC took the chunk list since it was stored (or since the file was opened):
          // store the content again, which puts it back, and commit once more.
          v = { ...v, ...(await this.storeContent(f)) };
          r = await this.commitEntry(f.path, v, { written: content, touch, atMs });
        }
        // New content that had to beat a later version took a later mtime (commitVersion).
        if (r.mtimeNs !== v.mtimeNs && f.mtimeNs === v.mtimeNs) f.mtimeNs = r.mtimeNs;
        f.committed({ ...v, mtimeNs: r.mtimeNs, committedAt: atMs, ...(r.inode ? { inode: r.inode, links: r.links } : {}) });
        // A backing file whose changes this stored holds that version now (unless written to since).
        const b = this.opts.handles.backingOf(f);
        if (b && content && b.chunkListHash === null && !f.contentChanged && v.chunkListHash) b.chunkListHash = v.chunkListHash;
      } catch (err) {
        f.dirty = true;
        f.contentChanged ||= content;
        f.attrsTouched ||= touch;
        // Still being written through another handle: that one's close commits it.
        if (changing(err) && f.refs > 1) return;
        throw err;
      }
    });
  }

  /** `copiedTo`: peers the live chunker streamed the chunks to (their copies are made first). */
  private async storeContent(f: OpenFile): Promise<{ chunkListHash: string; size: number; copiedTo?: string[] }> {
    if (f.size === 0) return { chunkListHash: await this.opts.backend.emptyChunkList(), size: 0 };
    const b = this.opts.handles.backingOf(f);
    if (b && b.chunkListHash === null) return this.storeFile(b.contentPath);
    const chunks = f.takeChunks();
    if (chunks) {
      const stored = await chunks;
      return { ...(await this.opts.backend.storeChunks(stored)), ...(stored.copiedTo ? { copiedTo: stored.copiedTo } : {}) };
    }
    return this.storeFile(await f.materialize(this.opts.io));
  }

  /**
   * Chunk a file holding an OpenFile's content (its staging or backing file), which other
   * handles may be writing right now: the store refuses bytes that changed while it read them,
   * so it tries again, a little later each time, for a quiet moment.
   */
  private async storeFile(path: string): Promise<{ chunkListHash: string; size: number }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.opts.backend.storeFile(path);
      } catch (err) {
        if (!changing(err) || attempt === STORE_ATTEMPTS - 1) throw err;
        await new Promise((r) => setTimeout(r, 10 << attempt));
      }
    }
  }

  /** Commit a version and keep it as the cached answer for path when it became current. */
  async commitEntry(path: string, v: NewEntry, opts: { exclusive?: boolean; written?: boolean; touch?: boolean; atMs?: number } = {}): Promise<{ current: boolean; mtimeNs: bigint; inode?: string; links?: number }> {
    if (path === '/') throw fsError('EPERM', path, 'the root of the unified filesystem cannot be changed');
    const meta = this.opts.meta;
    meta.expect(path);
    let r: { current: boolean; published: boolean; mtimeNs: bigint; inode?: string; links?: number; stIno?: string } = { current: false, published: false, mtimeNs: v.mtimeNs };
    const at = opts.atMs ?? Date.now();
    // A path locked here is committed only while the lock holds, checked in the commit's own step.
    const lockSession = this.opts.lockFence(path);
    try {
      r = await this.opts.backend.commit(path, v, { ...opts, atMs: at, ...(lockSession ? { lockSession } : {}) });
      return r;
    } catch (err) {
      if (errnoOf(err) !== ENOLCK) throw err;
      const f = this.opts.handles.files.get(path);
      if (f) f.lockLost = true;
      throw fsError('EIO', path, 'a lock on it was lost (this mount was cut off from the lock table): changes made under it are not committed');
    } finally {
      // A repeat of the latest version publishes no event for the cache to swallow.
      meta.settle(path, r.current && r.published, { ...v, mtimeNs: r.mtimeNs, committedAt: at, ...(r.inode ? { inode: r.inode, links: r.links } : {}), ...(r.stIno ? { stIno: r.stIno } : {}) }, opts.exclusive);
    }
  }
}
