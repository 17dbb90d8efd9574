import { constants } from 'node:fs';
import type { Logger } from 'pino';
import {
  addChunkListLocation,
  chunkOffsets,
  decodeChunkList,
  encodeChunkList,
  chunkListHash,
  wantedCopies,
  type ChunkFetcher,
  type CopyPusher,
  type PolicyCache,
  type ChunkRef,
  type ChunkStore,
} from '../packetfs/index.js';
import {
  commitVersion,
  FsError,
  getCurrent,
  getCurrentMany,
  getChunkList,
  linkPath,
  listDirPages,
  markAccessed,
  putChunkList,
  removePath,
  renamePath,
  subscribeFsEvents,
} from '../state/fs.js';
import type { VersionRecord } from '../api/fs.js';
import type { FsState } from '../state/fs-layout.js';
import type { Backend, Entry, NewEntry } from './backend.js';

interface FileChunks {
  chunks: ChunkRef[];
  offsets: number[];
  chunkListHash: string;
}
import { fsError } from './errors.js';

export interface ClusterBackendOptions {
  fs: FsState;
  /** This node's name: versions committed through the mount carry it. */
  node: string;
  store: ChunkStore;
  /** Chunks from the local store or peers, verified, with a memory cache and read-ahead. */
  fetcher: ChunkFetcher;
  /**
   * Copies on other nodes of what a close stores (push.ts), as many as the policy wants for the
   * path; without it, files stay on this node (the replication pass copies them later).
   */
  copies?: { pusher: CopyPusher; policy: PolicyCache };
  log: Logger;
}

/**
 * The root shows as drwxrwxrwt (like /tmp): it has no versions of its own, and every user and
 * container on every node may create entries in it; the sticky bit keeps them from deleting
 * each other's.
 */
const ROOT_MODE = constants.S_IFDIR | 0o1777;

/** The namespace in Redis (src/state/fs.ts) and file data in PacketFS, for the FUSE layer. */
export class ClusterBackend implements Backend {
  private unsubscribe?: () => Promise<void>;

  constructor(private o: ClusterBackendOptions) {}

  private toEntry(r: VersionRecord): Entry {
    return {
      type: r.type as Entry['type'],
      mode: r.path === '/' ? ROOT_MODE : r.mode,
      uid: r.uid,
      gid: r.gid,
      size: r.size,
      mtimeNs: BigInt(r.mtimeNs),
      ...(r.atimeNs === undefined ? {} : { atimeNs: BigInt(r.atimeNs) }),
      committedAt: r.committedAt,
      chunkListHash: r.chunkListHash,
      target: r.target,
      rdev: r.rdev,
      xattrs: r.xattrs,
      ...(r.subdirs === undefined ? {} : { subdirs: r.subdirs }),
      ...(r.inode === undefined ? {} : { inode: r.inode, links: r.links }),
      ...(r.stIno === undefined ? {} : { stIno: r.stIno }),
    };
  }

  async get(path: string): Promise<Entry | null> {
    const r = await getCurrent(this.o.fs.redis, this.o.fs.ks, path);
    return r ? this.toEntry(r) : null;
  }

  async getMany(paths: string[]): Promise<(Entry | null)[]> {
    return (await getCurrentMany(this.o.fs.redis, this.o.fs.ks, paths)).map((r) => (r ? this.toEntry(r) : null));
  }

  async *list(path: string): AsyncIterable<string[]> {
    for await (const page of listDirPages(this.o.fs.redis, this.o.fs.ks, path)) yield page.map((e) => e.name);
  }

  async commit(path: string, v: NewEntry, opts: { exclusive?: boolean; written?: boolean; atMs?: number; lockSession?: string; touch?: boolean } = {}): Promise<{ current: boolean; published: boolean; mtimeNs: bigint; inode?: string; links?: number; stIno?: string }> {
    try {
      const r = await commitVersion(this.o.fs.redis, this.o.fs.ks, {
        path,
        type: v.type,
        node: this.o.node,
        mtimeNs: v.mtimeNs.toString(),
        ...(v.atimeNs === undefined ? {} : { atimeNs: v.atimeNs.toString() }),
        size: v.size,
        mode: v.mode,
        uid: v.uid,
        gid: v.gid,
        chunkListHash: v.chunkListHash,
        target: v.target,
        rdev: v.rdev,
        xattrs: v.xattrs,
        source: 'mount',
        committedAt: opts.atMs ?? Date.now(),
      }, { exclusive: opts.exclusive, written: opts.written, touch: opts.touch, ...(opts.lockSession ? { lockSession: opts.lockSession } : {}) });
      return { current: r.current, published: r.published, mtimeNs: BigInt(r.mtimeNs), ...(r.inode ? { inode: r.inode, links: r.links } : {}), ...(r.stIno ? { stIno: r.stIno } : {}) };
    } catch (err) {
      // Chunk list GC took it: storing the same content again must put it back, not trust `recorded`.
      if (v.chunkListHash && err instanceof FsError && err.code === 'ESTALE') this.recorded.delete(v.chunkListHash);
      throw err;
    }
  }

  async remove(path: string, kind: 'unlink' | 'rmdir', mtimeNs: bigint, atMs = Date.now()): Promise<void> {
    await removePath(this.o.fs.redis, this.o.fs.ks, path, this.o.node, { dir: kind === 'rmdir', mtimeNs: mtimeNs.toString(), nowMs: atMs });
  }

  async access(path: string, atNs: bigint): Promise<bigint> {
    return BigInt((await markAccessed(this.o.fs.redis, this.o.fs.ks, path, atNs.toString())).atimeNs);
  }

  async link(from: string, to: string, atMs = Date.now(), stIno?: bigint): Promise<void> {
    await linkPath(this.o.fs.redis, this.o.fs.ks, from, to, this.o.node, { nowNs: (BigInt(atMs) * 1_000_000n).toString(), nowMs: atMs, ...(stIno === undefined ? {} : { stIno: stIno.toString() }) });
  }

  async rename(from: string, to: string, mtimeNs: bigint, stIno?: bigint): Promise<{ stampNs: bigint }> {
    const r = await renamePath(this.o.fs.redis, this.o.fs.ks, from, to, this.o.node, mtimeNs.toString(), stIno?.toString() ?? '');
    return { stampNs: BigInt(r.mtimeNs) };
  }

  /** Chunk lists with their offsets, by chunk list hash (immutable, so cached until pushed out). */
  private files = new Map<string, Promise<FileChunks>>();

  private file(chunkListHash: string): Promise<FileChunks> {
    let p = this.files.get(chunkListHash);
    if (p) {
      this.files.delete(chunkListHash);
    } else {
      p = getChunkList(this.o.fs.redis, this.o.fs.ks, chunkListHash).then((buf) => {
        if (!buf) throw fsError('EIO', `chunk list ${chunkListHash}`, 'not in the namespace');
        const chunks = decodeChunkList(buf);
        return { chunks, offsets: chunkOffsets(chunks), chunkListHash: chunkListHash };
      });
      p.catch(() => this.files.delete(chunkListHash));
      if (this.files.size >= 1024) this.files.delete(this.files.keys().next().value as string);
    }
    this.files.set(chunkListHash, p);
    return p;
  }

  /** Chunk fetches started here and not yet settled, by hash. */
  private inflight = new Map<string, Promise<unknown>>();

  /**
   * The fetcher reads a local chunk (and hashes it) once per caller, and the kernel asks for
   * 128 KiB at a time: left to readRange's own read-ahead, every request would start reading
   * the same next chunks again. So read-ahead is scheduled here, once per chunk, and a
   * request waits for the fetches of its chunks already under way; the bytes then come from
   * the fetcher's memory cache.
   */
  async readRange(chunkListHash: string, position: number, length: number, readAhead: number): Promise<Buffer> {
    const file = await this.file(chunkListHash);
    const { chunks, offsets } = file;
    let i = 0;
    for (let hi = chunks.length - 1; i < hi;) {
      const mid = (i + hi + 1) >> 1;
      if (offsets[mid] <= position) i = mid;
      else hi = mid - 1;
    }
    let last = i;
    while (last + 1 < chunks.length && offsets[last + 1] < position + length) last++;
    const waits = [];
    for (let j = i; j <= last && j < chunks.length; j++) {
      const p = this.inflight.get(chunks[j].hash);
      if (p) waits.push(p);
    }
    for (let j = last + 1; j <= Math.min(last + readAhead, chunks.length - 1); j++) {
      const { hash } = chunks[j];
      if (this.inflight.has(hash)) continue;
      const p = this.o.fetcher.getChunk(chunks[j], chunkListHash, { streaming: true }).catch(() => undefined).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, p);
    }
    await Promise.all(waits);
    return this.o.fetcher.readRange(file, position, length, 0);
  }

  async chunkList(chunkListHash: string): Promise<readonly ChunkRef[]> {
    const { chunks } = await this.file(chunkListHash);
    this.o.fetcher.used(chunks);
    return chunks;
  }

  async storeFile(localPath: string): Promise<{ chunkListHash: string; size: number }> {
    return this.storeChunks(await this.o.store.putFile(localPath));
  }

  readChunk({ hash, size }: ChunkRef): Promise<Buffer> {
    return this.o.store.get(hash, size);
  }

  async storeChunks({ chunks, size }: { chunks: ChunkRef[]; size: number }): Promise<{ chunkListHash: string; size: number }> {
    return { chunkListHash: await this.recordChunkList(chunks), size };
  }

  /** Chunk lists this process has stored and located: a file written again with the same content costs no round trip. */
  private recorded = new Set<string>();

  private async recordChunkList(chunks: ChunkRef[]): Promise<string> {
    const hash = chunkListHash(chunks);
    if (this.recorded.has(hash)) return hash;
    await Promise.all([
      putChunkList(this.o.fs.redis, this.o.fs.ks, hash, encodeChunkList(chunks)),
      chunks.length ? addChunkListLocation(this.o.fs.redis, this.o.fs.ks, hash, this.o.node) : undefined,
    ]);
    this.recorded.add(hash);
    if (this.recorded.size > 100_000) this.recorded.delete(this.recorded.values().next().value as string);
    return hash;
  }

  async ensureCopies(path: string, chunkListHash: string, prefer: readonly string[] = []): Promise<void> {
    if (!this.o.copies) return;
    const policy = await this.o.copies.policy.get();
    const wanted = wantedCopies(policy, path);
    if (wanted === 1 && !prefer.length) return;
    const { chunks } = await this.file(chunkListHash);
    try {
      // Peers the chunks were streamed to hold them in any case (the policy read at open may
      // have asked for more than the one read now): make them holders, not stray chunks. A
      // rule of `all` fails a close only below the Mount's own copies (at least 2): one node
      // dead and not yet marked down must not fail every write under it.
      const atLeast = wanted === 'all' ? (policy.copies === 'all' ? 2 : Math.max(2, policy.copies)) : undefined;
      await this.o.copies.pusher.ensure(chunkListHash, chunks, wanted === 'all' ? wanted : Math.max(wanted, 1 + prefer.length), prefer, atLeast);
    } catch (err) {
      throw fsError('EIO', path, (err as Error).message);
    }
  }

  copyTargets(path: string): string[] {
    const policy = this.o.copies?.policy.last();
    if (!policy) return [];
    const wanted = wantedCopies(policy, path);
    return wanted === 1 ? [] : this.o.copies!.pusher.streamTargets(path, wanted);
  }

  emptyChunkList(): Promise<string> {
    return this.recordChunkList([]);
  }

  watch(onChange: (path: string, atimeNs?: bigint) => void, onResync: () => void): void {
    let wasDown = false;
    this.o.fs.redis.on('close', () => {
      wasDown = true;
    });
    this.o.fs.redis.on('ready', () => {
      if (!wasDown) return;
      wasDown = false;
      this.o.log.info('metadata store is back: dropping cached metadata (invalidations may have been missed)');
      onResync();
    });
    subscribeFsEvents(this.o.fs.redis, this.o.fs.ks, (path, atimeNs) => onChange(path, atimeNs === undefined ? undefined : BigInt(atimeNs))).then(
      (unsub) => {
        this.unsubscribe = unsub;
      },
      (err) => this.o.log.error({ err }, 'cannot subscribe to namespace events'),
    );
  }

  online(): boolean {
    return this.o.fs.redis.status === 'ready';
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
  }
}
