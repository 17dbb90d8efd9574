import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, fchmodSync, fsync, mkdirSync, openSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { createLogger, type Logger } from '../util/log.js';
import { chunkSealer, forgetPages, sealedCrc, type ChunkSealer } from './chunk-seal.js';
import { chunkStream, DEFAULT_CHUNKER, type ChunkerOptions } from './chunker.js';
import { ChunkNotFoundError, CorruptChunkError, FileChangedError, HASH_RE, StoreWriteError, checkHash } from './errors.js';
import type { ChunkReadPool } from './read-pool.js';

export interface ChunkRef {
  /** SHA-256 of the chunk's bytes, 64 lowercase hex digits. */
  hash: string;
  size: number;
}

/**
 * Where a chunk lives in the store. `own`: chunks this node is a holder of (written by
 * putFile, or pulled by replication); never evicted, only collected by gc when no live
 * chunk list needs them. `cache`: copies fetched from peers for reading, evicted LRU by the
 * fetcher. Two directories rather than a flag, so the split survives restarts and eviction
 * can never touch an owned chunk.
 */
export type ChunkArea = 'own' | 'cache';

export interface PutFileResult {
  chunks: ChunkRef[];
  size: number;
  /** Bytes of chunks this call wrote (chunks already present cost nothing). */
  newBytes: number;
  /** The live chunker's: peers (agent URLs) every chunk was also sent to, as it was cut. */
  copiedTo?: string[];
}

export interface StoreStats {
  count: number;
  bytes: number;
  cacheCount: number;
  cacheBytes: number;
  quarantined: number;
}

export interface GcOptions {
  /** Every chunk hash some live chunk list references (the fsmeta side streams them). */
  live: AsyncIterable<string> | Iterable<string>;
  /** Chunks written or re-used less than this long ago are never collected. Default 1 hour. */
  graceMs?: number;
  now?: number;
}

export interface GcResult {
  scanned: number;
  deleted: number;
  freedBytes: number;
}

export interface ChunkStoreOptions {
  log?: Logger;
  chunker?: ChunkerOptions;
  /**
   * Chunk writes putFile keeps in flight (they overlap with hashing). Default 32: fsyncs in
   * parallel share ext4 journal commits, so 32 in flight wrote 3× faster than 8 here — when
   * libuv's pool has the threads for them (the agent sets UV_THREADPOOL_SIZE=64).
   */
  writeConcurrency?: number;
  /** Read and verify chunks on these threads instead of the event loop (the FS process). */
  readPool?: ChunkReadPool;
}

const TMP_MAX_AGE_MS = 60 * 60 * 1000;

/**
 * Chunks up to this size are written with synchronous calls, all but the fsync: each call
 * takes microseconds on the node's own disk, where a hop through libuv's pool costs an
 * event-loop round trip, and a small file's translation is mostly such hops. Bigger chunks go
 * through the pool, so that the event loop never waits on a long write.
 */
const SYNC_WRITE_BYTES = 64 * 1024;

const fsyncFd = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Up to `max` bytes from the start of the file open at fh: fewer at its end. */
async function readUpTo(fh: FileHandle, max: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(max);
  let n = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, n, max - n, n);
    if (bytesRead === 0) break;
    n += bytesRead;
    if (n === max) break;
  }
  return buf.subarray(0, n);
}

/** A chunk file's bytes; with the expected size, a short file reads short (and fails its hash). */
async function readChunkFile(p: string, size?: number): Promise<Buffer> {
  if (size === undefined) return readFile(p);
  const fh = await open(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, 0);
    return bytesRead === size ? buf : buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function sha256hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * SHA-256 of a chunk being read, on libuv's thread pool (WebCrypto's digest runs there): the
 * event loop — the FUSE process's only thread for requests — stays free while reads are
 * checked, and several chunks are checked on several cores at once. Small buffers are
 * hashed in place, where the hop would cost more than the hash.
 */
export async function verifyHash(data: Uint8Array): Promise<string> {
  if (data.length < 64 * 1024) return sha256hex(data);
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex');
}

/** A node's chunk store, in its state directory: where its agent's chunk server serves chunks from. */
export function chunkDir(stateDir: string): string {
  return join(stateDir, 'chunks');
}

/**
 * A node's content-addressed chunk store: one file per chunk at <area>/ab/cd/<hash>.
 *
 * Writes are atomic and durable: temp file in tmp/ → write → fsync → rename into place →
 * fsync of the fan-out directory (batched per putFile), so a chunk file is either absent
 * or complete, and once putFile or put returns its chunks survive a power cut (cache-area
 * copies skip the fsyncs: they are re-fetchable and verified on read). Reads are verified:
 * a chunk whose bytes do not match its name (bit rot, truncation, a stray write) is moved
 * to quarantine/, logged, reported with a 'corrupt' event and a CorruptChunkError, and
 * never returned, so the fetcher gets it from another node instead. Each chunk file also
 * carries the CRC-32 of its bytes in an extended attribute, written before the rename; reads
 * on a mount's FUSE threads check that instead of the SHA-256 (chunk-seal.ts).
 *
 * Several processes may share one store directory (the agent and the translate daemon):
 * every step is a single rename or utimes on a path, never a read-modify-write of shared
 * state in memory.
 */
export class ChunkStore extends EventEmitter {
  readonly dir: string;
  private readonly log: Logger;
  private readonly chunker: ChunkerOptions;
  private readonly writeConcurrency: number;
  private readonly seal: ChunkSealer | null = chunkSealer();
  private readonly readPool?: ChunkReadPool;
  private ready?: Promise<void>;

  constructor(dir: string, opts: ChunkStoreOptions = {}) {
    super();
    this.dir = dir;
    this.log = opts.log ?? createLogger('packetfs-store', { dir });
    this.chunker = opts.chunker ?? {};
    this.writeConcurrency = opts.writeConcurrency ?? 32;
    this.readPool = opts.readPool;
  }

  /** Create the layout and remove temp files left by a crash (called lazily by every method). */
  init(): Promise<void> {
    this.ready ??= (async () => {
      // Chunks hold every file's bytes whatever the file's own mode says: only the node's own
      // processes may read them (peers fetch them over authenticated HTTP, jobs through the mount).
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await chmod(this.dir, 0o700);
      for (const d of ['own', 'cache', 'tmp', 'quarantine']) await mkdir(join(this.dir, d), { recursive: true, mode: 0o755 });
      const tmp = join(this.dir, 'tmp');
      const cutoff = Date.now() - TMP_MAX_AGE_MS;
      for (const name of await readdir(tmp)) {
        const gcAside = /^gc\.([0-9a-f]{64})\./.exec(name);
        // Only old ones: a younger temp file may be another process's write in progress.
        const st = await lstat(join(tmp, name)).catch(() => undefined);
        if (!st || st.mtimeMs >= cutoff) continue;
        if (gcAside) {
          // A gc that died between moving a chunk aside and deciding: put it back (owned, the
          // safe side); the next gc decides again.
          const to = this.path(gcAside[1], 'own');
          await mkdir(join(to, '..'), { recursive: true, mode: 0o755 });
          await rename(join(tmp, name), to).catch(() => undefined);
        } else {
          await unlink(join(tmp, name)).catch(() => undefined);
        }
      }
    })();
    return this.ready;
  }

  path(hash: string, area: ChunkArea = 'own'): string {
    return join(this.dir, area, hash.slice(0, 2), hash.slice(2, 4), hash);
  }

  /** Which area holds the chunk, if any. */
  async where(hash: string): Promise<ChunkArea | undefined> {
    checkHash(hash);
    await this.init();
    for (const area of ['own', 'cache'] as const) {
      if (await stat(this.path(hash, area)).then(() => true, () => false)) return area;
    }
    return undefined;
  }

  async has(hash: string): Promise<boolean> {
    return (await this.where(hash)) !== undefined;
  }

  /** Size on disk (unverified: for HEAD and listings), or undefined when absent. */
  async size(hash: string): Promise<number | undefined> {
    checkHash(hash);
    await this.init();
    for (const area of ['own', 'cache'] as const) {
      const st = await stat(this.path(hash, area)).catch(() => undefined);
      if (st) return st.size;
    }
    return undefined;
  }

  /**
   * The chunk's bytes, checked against its hash. `size`, when the caller knows it from a
   * chunk list, saves the fstat: open, one read, close. `streaming`: the bytes are on their way
   * to a sequential reader whose own page cache (the mount's) will keep them, so the reader
   * threads read the chunk file around the page cache: a file read once does not take twice
   * its size in page cache, and the read costs less CPU (BENCHMARKS.md). A chunk whose pages
   * are still cached (just written) is then read from the disk again, which measured no
   * slower.
   */
  async get(hash: string, size?: number, { streaming = false } = {}): Promise<Buffer> {
    checkHash(hash);
    await this.init();
    // Own first, then cache, then own again: a promotion (cache → own rename) between the
    // first two looks must not read as "absent". Every look goes through the thread pool: a
    // synchronous stat would stall the event loop on a disk read when the dentries are cold.
    const areas = ['own', 'cache', 'own'] as const;
    if (this.readPool) {
      const r = await this.readPool.read(areas.map((a) => this.path(hash, a)), size, streaming);
      if (!r) throw new ChunkNotFoundError(hash, this.dir);
      if (r.hash !== hash) await this.corrupt(hash, areas[r.index], `${r.data.length} bytes hash to ${r.hash}`);
      return r.data;
    }
    for (const area of areas) {
      const p = this.path(hash, area);
      let data: Buffer;
      try {
        data = await readChunkFile(p, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const actual = await verifyHash(data);
      if (actual !== hash) await this.corrupt(hash, area, `${data.length} bytes hash to ${actual}`);
      return data;
    }
    throw new ChunkNotFoundError(hash, this.dir);
  }

  /** A chunk that failed its hash: quarantined, never returned. */
  private async corrupt(hash: string, area: ChunkArea, detail: string): Promise<never> {
    await this.quarantine(hash, area, detail);
    throw new CorruptChunkError(hash, this.path(hash, area), detail);
  }

  private async quarantine(hash: string, area: ChunkArea, detail: string): Promise<void> {
    const to = join(this.dir, 'quarantine', `${hash}.${Date.now()}.${randomBytes(3).toString('hex')}`);
    try {
      await rename(this.path(hash, area), to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.log.error({ hash, area, quarantinedTo: to, detail }, 'corrupt chunk quarantined; it will be fetched from another holder');
    this.emit('corrupt', { hash, area, detail });
  }

  /**
   * Store a chunk (its bytes are checked against `hash` first). Returns true when this call
   * wrote it, false when it was already there (then its mtime is refreshed, which is what
   * keeps gc away from a chunk a new chunk list is about to reference).
   */
  async put(hash: string, data: Uint8Array, opts: { area?: ChunkArea; verified?: boolean; syncDirLater?: boolean } = {}): Promise<boolean> {
    checkHash(hash);
    // `verified`: the caller has just hashed these very bytes (the fetcher does), so a second
    // SHA-256 pass would only cost time.
    const actual = opts.verified ? hash : sha256hex(data);
    if (actual !== hash) throw new CorruptChunkError(hash, 'put', `${data.length} bytes hash to ${actual}`);
    const res = await this.putVerified(hash, data, opts.area ?? 'own');
    // `syncDirLater`: the caller makes the entry durable with syncDirs, for many chunks at once.
    if (res.dir && !opts.syncDirLater) await fsyncDir(res.dir);
    return res.wrote;
  }

  /**
   * Make the directory entries of these own-area chunks durable (after puts with
   * syncDirLater): one fsync per fan-out directory, all at once, which the filesystem's
   * journal commits together.
   */
  async syncDirs(hashes: Iterable<string>): Promise<void> {
    const dirs = new Set<string>();
    for (const h of hashes) dirs.add(join(this.path(h, 'own'), '..'));
    await Promise.all([...dirs].map((d) => fsyncDir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    })));
  }

  /**
   * The write path shared by put and putFile, for bytes already known to hash to `hash`.
   * Returns the fan-out directory whose entry changed (to fsync) when it wrote.
   */
  private async putVerified(hash: string, data: Uint8Array, area: ChunkArea): Promise<{ wrote: boolean; dir?: string }> {
    await this.init();
    const target = this.path(hash, area);
    if (this.touch(target)) return { wrote: false };
    if (area === 'own' && existsSync(this.path(hash, 'cache')) && (await this.promote(hash))) return { wrote: false };
    if (area === 'cache' && this.touch(this.path(hash, 'own'))) return { wrote: false };
    const tmp = join(this.dir, 'tmp', `${hash}.${process.pid}.${randomBytes(4).toString('hex')}`);
    let fh: FileHandle | undefined;
    let fd: number | undefined;
    try {
      // Created writable for the owner only while its CRC is recorded (a user xattr needs write
      // permission to the file); read-only before it is renamed into place.
      const mode = this.seal ? 0o644 : 0o444;
      const small = data.length <= SYNC_WRITE_BYTES;
      if (small) {
        fd = openSync(tmp, 'wx', mode);
        writeFileSync(fd, data);
      } else {
        fh = await open(tmp, 'wx', mode);
        await fh.writeFile(data);
      }
      const at = fd ?? fh!.fd;
      if (this.seal) await this.sealReadOnly(at, data);
      // Cache copies are not fsynced: one lost or torn by a crash fails verification on read,
      // is quarantined and fetched again. promote() syncs a copy before it becomes owned.
      if (area === 'own') {
        await fsyncFd(at);
        forgetPages(at);
      }
      if (small) closeSync(fd!);
      else await fh!.close();
      fd = undefined;
      fh = undefined;
      const dir = join(this.dir, area, hash.slice(0, 2), hash.slice(2, 4));
      // A rename (and the rare mkdir) is metadata in cached directories: microseconds.
      try {
        renameSync(tmp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        mkdirSync(dir, { recursive: true, mode: 0o755 });
        renameSync(tmp, target);
        // New fan-out directories (at most 65 536 in a store's life) must reach the disk too.
        if (area === 'own') for (const d of [join(dir, '..'), join(dir, '..', '..')]) await fsyncDir(d);
      }
      return { wrote: true, dir: area === 'own' ? dir : undefined };
    } catch (err) {
      await fh?.close().catch(() => undefined);
      if (fd !== undefined) closeSync(fd);
      await unlink(tmp).catch(() => undefined);
      const e = new StoreWriteError(this.dir, hash, err as NodeJS.ErrnoException);
      this.log.error({ hash, code: e.code, err: (err as Error).message }, 'chunk write failed; temp file removed, store unchanged');
      throw e;
    }
  }

  /**
   * Refresh a chunk file's mtime; false when it does not exist. Synchronous on purpose: a
   * metadata call on a cached directory takes microseconds, less than a hop through libuv's
   * four-thread pool, which putFile keeps busy with writes and fsyncs.
   */
  private touch(p: string): boolean {
    const now = new Date();
    try {
      utimesSync(p, now, now);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Turn a cached copy into an owned chunk (replication pulled a chunk the reader had
   * already fetched). One rename, then a touch so gc's grace period starts now.
   */
  async promote(hash: string): Promise<boolean> {
    checkHash(hash);
    await this.init();
    const from = this.path(hash, 'cache');
    const to = this.path(hash, 'own');
    const dir = join(to, '..');
    try {
      const fh = await open(from, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(from, to);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && existsSync(from) && !existsSync(dir)) {
        await mkdir(dir, { recursive: true, mode: 0o755 });
        return this.promote(hash);
      }
      if (code === 'ENOENT') return false;
      throw err;
    }
    this.touch(to);
    await fsyncDir(dir);
    return true;
  }

  /** Delete a cached copy (LRU eviction). Owned chunks are never touched by this. */
  async evict(hash: string): Promise<boolean> {
    checkHash(hash);
    return unlink(this.path(hash, 'cache')).then(() => true, () => false);
  }

  /**
   * Chunk a file into the store. Returns its chunk list, size and the bytes newly stored.
   * Throws FileChangedError when the file is truncated, rewritten or unlinked while it is
   * read (the chunks already written stay as unreferenced chunks for gc; the store is
   * consistent), and StoreWriteError when the disk refuses a write (ENOSPC…).
   */
  async putFile(path: string): Promise<PutFileResult> {
    await this.init();
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileChangedError(path, 'it vanished before it could be opened');
      throw err;
    }
    try {
      const before = await fh.stat({ bigint: true });
      if (!before.isFile()) throw new Error(`putFile: ${path} is not a regular file`);
      const w = this.writer();
      try {
        if (before.size <= BigInt(this.chunker.minSize ?? DEFAULT_CHUNKER.minSize)) {
          // The chunker never cuts before minSize: a file this small is one chunk (none when
          // empty). One read, without the read stream and the chunker's generator, which cost
          // a small file most of its time. A byte more is asked for, so that growth shows.
          const data = await readUpTo(fh, Number(before.size) + 1);
          if (data.length) await w.add(createHash('sha256').update(data).digest('hex'), data);
        } else {
          const stream = fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false, start: 0 });
          for await (const c of chunkStream(stream, this.chunker)) await w.add(c.hash, c.data);
        }
      } finally {
        await w.settle();
      }
      const { chunks, size, newBytes } = await w.finish();
      const after = await fh.stat({ bigint: true });
      if (after.nlink === 0n) throw new FileChangedError(path, 'it was deleted');
      if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || BigInt(size) !== after.size) {
        throw new FileChangedError(path, `size ${before.size} → ${after.size}, read ${size} bytes, mtime ${before.mtimeNs} → ${after.mtimeNs}`);
      }
      return { chunks, size, newBytes };
    } catch (err) {
      if (err instanceof FileChangedError) this.log.warn({ path, err: err.message }, 'putFile gave up on a changing file');
      throw err;
    } finally {
      await fh.close();
    }
  }

  /**
   * A durable writer of one file's chunks, in order: putFile's pipeline, also fed by the
   * overlay while a file is written (see ChunkWriter).
   */
  writer(): ChunkWriter {
    return new ChunkWriter((hash, data) => this.putVerified(hash, data, 'own'), this.writeConcurrency);
  }

  /** Every chunk file of one area: hash, size and mtime (for the cache's LRU after a restart). */
  async *list(area: ChunkArea): AsyncGenerator<{ hash: string; size: number; mtimeMs: number }> {
    await this.init();
    const root = join(this.dir, area);
    for (const a of await readdir(root)) {
      for (const b of await readdir(join(root, a)).catch(() => [] as string[])) {
        for (const name of await readdir(join(root, a, b)).catch(() => [] as string[])) {
          if (!HASH_RE.test(name)) continue;
          const st = await lstat(join(root, a, b, name)).catch(() => undefined);
          if (st) yield { hash: name, size: st.size, mtimeMs: st.mtimeMs };
        }
      }
    }
  }

  /**
   * Read and verify every chunk (a scrub, for a periodic background job): corrupt ones are
   * quarantined and reported like on any read, so bit rot is found before a reader needs
   * the chunk; good ones without their right CRC get it (reseal). `pauseMs` between chunks
   * keeps it from hogging the disk.
   */
  async scrub(opts: { pauseMs?: number } = {}): Promise<{ checked: number; corrupt: string[]; resealed: number }> {
    const res = { checked: 0, corrupt: [] as string[], resealed: 0 };
    for (const area of ['own', 'cache'] as const) {
      for await (const c of this.list(area)) {
        try {
          const data = await this.get(c.hash);
          res.checked++;
          if (await this.reseal(this.path(c.hash, area), data)) res.resealed++;
        } catch (err) {
          if (err instanceof CorruptChunkError) res.corrupt.push(c.hash);
          else if (!(err instanceof ChunkNotFoundError)) throw err;
        }
        if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
    }
    return res;
  }

  /**
   * Give a chunk file whose bytes were just checked against their name the CRC it lacks or has
   * wrong (written before stores recorded CRCs, or changed since), so reads on the FUSE threads
   * need not hash it. True when it wrote one; false as well when it may not (another owner).
   */
  private async reseal(p: string, data: Uint8Array): Promise<boolean> {
    if (!this.seal) return false;
    const want = crc32(data);
    let fh: FileHandle | undefined;
    try {
      fh = await open(p, 'r');
      if (sealedCrc(fh.fd) === want) return false;
      fchmodSync(fh.fd, 0o644);
      await this.sealReadOnly(fh.fd, data);
      return sealedCrc(fh.fd) === want;
    } catch {
      return false;
    } finally {
      await fh?.close();
    }
  }

  /**
   * Record data's CRC on the chunk file open at fh (writable for its owner meanwhile: a user
   * xattr needs write permission), then make the file read-only.
   */
  private async sealReadOnly(fd: number, data: Uint8Array): Promise<void> {
    await this.seal!(fd, data);
    fchmodSync(fd, 0o444);
  }

  async stats(): Promise<StoreStats> {
    const s: StoreStats = { count: 0, bytes: 0, cacheCount: 0, cacheBytes: 0, quarantined: 0 };
    for await (const c of this.list('own')) {
      s.count++;
      s.bytes += c.size;
    }
    for await (const c of this.list('cache')) {
      s.cacheCount++;
      s.cacheBytes += c.size;
    }
    s.quarantined = (await readdir(join(this.dir, 'quarantine'))).length;
    return s;
  }

  /**
   * Delete the chunks no live chunk list references.
   *
   * Safe against concurrent writers by an mtime grace period rather than a Redis
   * "pending commit" marker: it needs no Redis round trip per chunk on the write path and
   * works the same for every process sharing the directory. Every put — including one that
   * finds the chunk already there — sets the chunk's mtime to now, and a writer commits
   * the chunk list that references its chunks within the grace period (putFile of even a
   * 100 GB file takes minutes; the grace is an hour). A chunk list committed after the live
   * set was read therefore only references chunks whose mtime is younger than the grace
   * period, and those are kept. The check-then-delete race (a put refreshing the mtime just
   * after gc looked at it) is closed by moving the file out of place first and looking at
   * the moved inode's mtime: a touch that landed before the move is seen and the file is
   * put back; one that comes after the move finds no file and writes the chunk anew.
   */
  async gc(opts: GcOptions): Promise<GcResult> {
    await this.init();
    const now = opts.now ?? Date.now();
    const cutoff = now - (opts.graceMs ?? 60 * 60 * 1000);
    const live = new Set<string>();
    for await (const h of opts.live) live.add(h);
    const res: GcResult = { scanned: 0, deleted: 0, freedBytes: 0 };
    for (const area of ['own', 'cache'] as const) {
      for await (const c of this.list(area)) {
        res.scanned++;
        if (live.has(c.hash) || c.mtimeMs >= cutoff) continue;
        const p = this.path(c.hash, area);
        const aside = join(this.dir, 'tmp', `gc.${c.hash}.${randomBytes(4).toString('hex')}`);
        try {
          await rename(p, aside);
        } catch {
          continue;
        }
        // Gone from aside means another process's init put it back: leave it.
        const st = await lstat(aside).catch(() => undefined);
        if (!st) continue;
        if (st.mtimeMs >= cutoff) {
          await rename(aside, p).catch(() => undefined);
          continue;
        }
        if (!(await unlink(aside).then(() => true, () => false))) continue;
        res.deleted++;
        res.freedBytes += st.size;
      }
    }
    this.log.info({ ...res, live: live.size }, 'chunk gc done');
    return res;
  }
}

/**
 * Stores the chunks of one file as they are cut: up to `concurrency` writes in flight (their
 * fsyncs overlap the hashing of the next chunks), each distinct chunk once, and at finish()
 * one fsync per fan-out directory touched. Bytes must already hash to their names.
 */
export class ChunkWriter {
  private readonly chunks: ChunkRef[] = [];
  private readonly seen = new Set<string>();
  private readonly dirs = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown;
  private size = 0;
  private newBytes = 0;

  constructor(
    private readonly put: (hash: string, data: Uint8Array) => Promise<{ wrote: boolean; dir?: string }>,
    private readonly concurrency: number,
  ) {}

  /** Queue a chunk; waits while the writes in flight are at the limit. Throws the first write error. */
  async add(hash: string, data: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    this.chunks.push({ hash, size: data.length });
    this.size += data.length;
    if (this.seen.has(hash)) return;
    this.seen.add(hash);
    const p: Promise<void> = this.put(hash, data).then(
      (r) => {
        if (r.wrote) this.newBytes += data.length;
        if (r.dir) this.dirs.add(r.dir);
      },
      (err) => {
        this.failure ??= err;
      },
    ).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    if (this.inflight.size >= this.concurrency) await Promise.race(this.inflight);
  }

  /** Wait for every write in flight (also after a failure, so no write outlives the caller). */
  async settle(): Promise<void> {
    await Promise.all(this.inflight);
  }

  /** All chunks durable: the file's chunk list, size and the bytes newly stored. */
  async finish(): Promise<PutFileResult> {
    await this.settle();
    if (this.failure) throw this.failure;
    await Promise.all([...this.dirs].map(fsyncDir));
    return { chunks: this.chunks, size: this.size, newBytes: this.newBytes };
  }
}
