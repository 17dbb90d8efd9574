import { mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** Reads bytes [position, position + length) of a version's content, checked (Backend.readRange). */
export type ReadRange = (position: number, length: number) => Promise<Buffer>;

export interface FileCacheOptions {
  /** Directory of the cache (under the node's state dir); made if missing. */
  dir: string;
  /** Bytes of whole files kept, least recently used dropped first; 0 turns the cache off. */
  maxBytes: number;
  /** Files smaller than this are not kept (passthrough gains them little). */
  minFileBytes: number;
  log: Logger;
}

export interface FileCacheStats {
  files: number;
  bytes: number;
  /** Files copied in since the process started, and bytes. */
  fills: number;
  fillBytes: number;
}

const STEP = 4 * 1024 * 1024;
const ZERO = Buffer.alloc(STEP);

/**
 * Whole copies of versions a mount's users read end to end, one file per version named by its
 * chunk list hash, for FUSE passthrough (passthrough.ts): the kernel reads an open file straight
 * from its copy here, at local-disk speed and through the page cache of a local file. A copy is
 * made in the background after a read of the whole version, from chunks checked by hash as
 * every read's are, and synced before it is renamed into place, so a name here always holds
 * that version's bytes. What a passthrough reader's inode must change (a writer, a newer
 * version) happens on a "live" copy taken out of the cache first (detach): the name never
 * holds other bytes.
 */
export class FileCache {
  /** chunk list hash → size, least recently used first (Map order). */
  private entries = new Map<string, number>();
  private bytes = 0;
  private filling = new Set<string>();
  /** Copies open as backing files: never dropped meanwhile (their changes go to live copies). */
  private pinned = new Set<string>();
  /** Copies are made one at a time: each reads and writes a whole file. */
  private queue: Promise<void> = Promise.resolve();
  private seq = 0;
  private fills = 0;
  private fillBytes = 0;

  constructor(private opts: FileCacheOptions) {}

  get enabled(): boolean {
    return this.opts.maxBytes > 0;
  }

  /** Load what a previous run kept; drop what it left half made and its live copies. */
  async start(): Promise<void> {
    await mkdir(join(this.opts.dir, 'live'), { recursive: true, mode: 0o700 });
    for (const f of await readdir(join(this.opts.dir, 'live'))) await rm(join(this.opts.dir, 'live', f), { force: true });
    const found: Array<{ name: string; size: number; used: number }> = [];
    for (const name of await readdir(this.opts.dir)) {
      if (name === 'live') continue;
      const path = join(this.opts.dir, name);
      if (!/^[0-9a-f]{64}$/.test(name)) {
        await rm(path, { force: true });
        continue;
      }
      const s = await stat(path);
      found.push({ name, size: s.size, used: s.mtimeMs });
    }
    for (const f of found.sort((a, b) => a.used - b.used)) {
      this.entries.set(f.name, f.size);
      this.bytes += f.size;
    }
    await this.evict(0);
  }

  path(chunkListHash: string): string {
    return join(this.opts.dir, chunkListHash);
  }

  has(chunkListHash: string): boolean {
    return this.entries.has(chunkListHash);
  }

  /** Keep the copy of `chunkListHash` while it is open as a backing file (unpin when closed). */
  pin(chunkListHash: string): void {
    this.pinned.add(chunkListHash);
  }

  /** Whether a backing file is open on the copy of `chunkListHash` (a second one would share its inode). */
  inUse(chunkListHash: string): boolean {
    return this.pinned.has(chunkListHash);
  }

  unpin(chunkListHash: string): void {
    this.pinned.delete(chunkListHash);
  }

  /** The copy is in use: last to be dropped (its mtime keeps the order across restarts). */
  use(chunkListHash: string): void {
    const size = this.entries.get(chunkListHash);
    if (size === undefined) return;
    this.entries.delete(chunkListHash);
    this.entries.set(chunkListHash, size);
    const now = new Date();
    void utimes(this.path(chunkListHash), now, now).catch(() => undefined);
  }

  /** Whether a version of this size is worth a copy (and one is not there or being made). */
  wants(chunkListHash: string, size: number): boolean {
    return this.enabled && size >= this.opts.minFileBytes && size <= this.opts.maxBytes && !this.entries.has(chunkListHash) && !this.filling.has(chunkListHash);
  }

  /** Copy a version in, in the background (errors are logged: the copy is only a cache). */
  fill(chunkListHash: string, size: number, read: ReadRange): void {
    if (!this.wants(chunkListHash, size)) return;
    this.filling.add(chunkListHash);
    this.queue = this.queue
      .then(() => this.copyIn(chunkListHash, size, read))
      .catch((err: unknown) => this.opts.log.warn({ err, chunkListHash }, 'could not copy a file into the file cache'))
      .finally(() => this.filling.delete(chunkListHash));
  }

  private async copyIn(chunkListHash: string, size: number, read: ReadRange): Promise<void> {
    await this.evict(size);
    const tmp = join(this.opts.dir, `tmp-${process.pid}-${++this.seq}`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.truncate(size);
      for (let pos = 0; pos < size; pos += STEP) {
        const data = await read(pos, Math.min(STEP, size - pos));
        // Holes stay holes: a sparse file costs here what it costs in chunks.
        if (!data.equals(ZERO.subarray(0, data.length))) await fh.write(data, 0, data.length, pos);
      }
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, this.path(chunkListHash));
    this.entries.set(chunkListHash, size);
    this.bytes += size;
    this.fills++;
    this.fillBytes += size;
  }

  /** Drop least recently used copies until `room` more bytes fit (those in use stay). */
  private async evict(room: number): Promise<void> {
    for (const chunkListHash of [...this.entries.keys()]) {
      if (this.bytes + room <= this.opts.maxBytes) break;
      if (this.pinned.has(chunkListHash)) continue;
      this.forget(chunkListHash);
      await rm(this.path(chunkListHash), { force: true });
    }
  }

  private forget(chunkListHash: string): void {
    const size = this.entries.get(chunkListHash);
    if (size === undefined) return;
    this.entries.delete(chunkListHash);
    this.bytes -= size;
  }

  /**
   * Take the (pinned) copy of `chunkListHash` out of the cache, to be changed where it is open: renamed
   * to a live name (returned), which the caller removes when done with it.
   */
  async detach(chunkListHash: string): Promise<string> {
    const live = join(this.opts.dir, 'live', `${process.pid}-${++this.seq}`);
    this.forget(chunkListHash);
    this.unpin(chunkListHash);
    await rename(this.path(chunkListHash), live);
    return live;
  }

  stats(): FileCacheStats {
    return { files: this.entries.size, bytes: this.bytes, fills: this.fills, fillBytes: this.fillBytes };
  }
}
