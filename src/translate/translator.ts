import { lstat, readdir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { watch, type FSWatcher } from 'chokidar';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { FsState } from '../state/fs-layout.js';
import { commitVersion, FsError, linkPath, normalizePath, putChunkList, type NewVersion } from '../state/fs.js';
import { XATTR_LIMITS } from '../state/xattrs.js';
import { exportXattrs } from './xattrs.js';
import { addChunkListLocation, encodeChunkList, FileChangedError, chunkListHash, type ChunkRef, type ChunkStore } from '../packetfs/index.js';
import { createLogger, type Logger } from '../util/log.js';
import { escapeBytes, holdsExactly } from './names.js';
import { parentRel, sameStat, SeenState, seenFromStat, type Seen } from './state.js';

export interface TranslatorOptions {
  fs: FsState;
  /** This node's name: every version it commits carries it. */
  node: string;
  exportDir: string;
  store: ChunkStore;
  log?: Logger;
  /** prom-client registry to add the oswalk_translate_* metrics to. */
  registry?: Registry;
  /** Where to remember what was translated (default: translate-<node>.json in the chunk store's directory). */
  stateFile?: string;
  /** A changed file is translated once its size and mtime have been stable this long. Default 500. */
  debounceMs?: number;
  /**
   * Files over SMALL_FILE_BYTES read and hashed at once. Default 2: hashing runs on the main
   * thread, and the agent's jobs come first. Smaller files, and every other path (directories,
   * links, deletes), go up to pathsInFlight at once.
   */
  concurrency?: number;
  /** Paths translated at once, small files among them. Default PATHS_IN_FLIGHT. */
  pathsInFlight?: number;
  /** Keep watching after the first scan (default true); false translates once (`oswalk translate`). */
  watch?: boolean;
  /**
   * Make the copies a file wants on other nodes (CopyPusher), once its chunks are stored here and
   * before its version is committed. A failure is logged and left to the replication pass.
   */
  copies?(path: string, chunkListHash: string, chunks: readonly ChunkRef[]): Promise<void>;
}

export interface TranslatorStats {
  /** Paths waiting: scanned but not yet translated, plus changes still settling. */
  backlogFiles: number;
  /** Regular files of the export directory that are in the unified filesystem now. */
  exportFiles: number;
  /** Bytes of files read and turned into versions. */
  bytesTranslated: number;
  /** Bytes of chunks that were new to the store (the rest were already there). */
  newBytes: number;
  /** Versions committed (files, dirs, symlinks, tombstones). */
  versions: number;
  filesTranslated: number;
  /** Chunks referenced by the translated files. */
  chunks: number;
  tombstones: number;
  /** Files whose content was reused by inode after a rename, without reading them. */
  renamesReused: number;
  /** Hard links of the export directory made hard links in the namespace (a second name of a file, not read again). */
  hardLinks: number;
  /** bytesTranslated / newBytes: how many times over the data was already stored (1 = no dedup). */
  dedupRatio: number;
  /** Paths skipped (each once while it stays): names the namespace cannot hold, fifos, sockets, devices. */
  skipped: number;
  /**
   * Entries of the export directory left out now because the namespace cannot hold them
   * exactly: a name, or a symlink's target, that is not valid UTF-8 (each logged once).
   */
  exportSkipped: number;
  errors: number;
  /** True once the first full scan of the export directory has been queued. */
  scanned: boolean;
}

export interface Translator {
  stats(): TranslatorStats;
  /** Resolves when the first scan is done and nothing is waiting or in flight. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  lastEvent: number;
  due: number;
}

/**
 * A small file costs little CPU: its time is an fsync of its chunk and its directory and two
 * Redis round trips, so one at a time it waits. Many in flight share the disk's journal commits
 * (the agent's libuv pool has the threads: UV_THREADPOOL_SIZE=64) and Redis' replies; only
 * files bigger than this take one of the `concurrency` slots of hashing.
 */
const SMALL_FILE_BYTES = 64 * 1024;
export const PATHS_IN_FLIGHT = 64;
const STATE_SAVE_MS = 2000;
const RECENTLY_GONE_MAX = 10_000;
/** A directory the watcher reported on is compared with what we know of it at most this often. */
const DIR_CHECK_MS = 1000;

/** An entry left out because the namespace cannot hold it exactly. */
interface Unfit {
  /** The directory it is in (a path the namespace holds; '' for the top). */
  dir: string;
  /** Its name is not UTF-8, or (a symlink) its target is not. */
  what: 'name' | 'target';
}

/**
 * Scan and watch a node's export directory and turn what is there into namespace versions:
 * file data into the chunk store and a chunk list, then one commitVersion with the file's own
 * mtime, mode and owner. Deletes become tombstones stamped with the deletion time (the mtime of
 * the directory the entry vanished from). Symlinks are stored as links and never followed, so
 * a symlink loop is just a link. An entry whose name (or symlink target) is not valid UTF-8 is
 * skipped, never changed: the namespace is UTF-8, and decoding would make two such names one.
 * Each is logged once, its path escaped (`\xff`), and counted in exportSkipped while it stays.
 * Names with newlines are ordinary names.
 */
export async function startTranslator(opts: TranslatorOptions): Promise<Translator> {
  const t = new TranslatorImpl(opts);
  await t.start();
  return t;
}

class TranslatorImpl implements Translator {
  private readonly log: Logger;
  private readonly state: SeenState;
  private readonly debounceMs: number;
  private readonly pathsInFlight: number;
  /** Free slots for reading and hashing a big file, and who waits for one. */
  private hashSlots: number;
  private readonly hashWaiters: (() => void)[] = [];
  private readonly pending = new Map<string, Pending>();
  private ready: string[] = [];
  /** Scanned paths to translate, most recently modified last (popped first). */
  private backlog: string[] = [];
  private readonly inflight = new Set<string>();
  private readonly byIno = new Map<string, string>();
  /** The names of one hard-linked file are translated one after another, so the later ones link to the first: by inode. */
  private readonly linking = new Map<string, Promise<void>>();
  /** Files deleted lately, by inode: the other half of a rename may still be on its way. */
  private readonly recentlyGone = new Map<string, Seen>();
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  /** Directories to compare with their listing: the watcher can miss events (see checkDir). */
  private dirChecks = new Set<string>();
  private dirCheckTimer?: NodeJS.Timeout;
  /** Paths that failed or were skipped: left alone until an event says they changed. */
  private readonly failed = new Set<string>();
  /** Entries the namespace cannot hold exactly, by their path escaped (escapeBytes). */
  private readonly unfit = new Map<string, Unfit>();
  private saveTimer?: NodeJS.Timeout;
  private waiters: (() => void)[] = [];
  private closed = false;
  private scanned = false;
  private readonly s = {
    bytesTranslated: 0, newBytes: 0, versions: 0, filesTranslated: 0, chunks: 0, tombstones: 0, renamesReused: 0, hardLinks: 0, skipped: 0, errors: 0,
  };
  private readonly metrics?: {
    bytes: Counter; newBytes: Counter; versions: Counter<'type'>; chunks: Counter; skipped: Counter<'reason'>; errors: Counter;
  };

  constructor(private readonly o: TranslatorOptions) {
    this.log = o.log ?? createLogger('translate', { node: o.node });
    this.state = new SeenState(o.stateFile ?? join(o.store.dir, `translate-${o.node}.json`));
    this.debounceMs = o.debounceMs ?? 500;
    this.hashSlots = o.concurrency ?? 2;
    this.pathsInFlight = o.pathsInFlight ?? PATHS_IN_FLIGHT;
    if (o.registry) {
      const registers = [o.registry];
      // a translator restarted in the same process takes the metrics over
      for (const name of ['backlog_files', 'skipped_paths', 'dedup_ratio', 'bytes_total', 'new_bytes_total', 'versions_total', 'chunks_total', 'skipped_total', 'errors_total']) {
        o.registry.removeSingleMetric(`oswalk_translate_${name}`);
      }
      const self = this;
      new Gauge({
        name: 'oswalk_translate_backlog_files', help: 'Paths of the export directory waiting to be translated', registers,
        collect() {
          this.set(self.backlogSize());
        },
      });
      new Gauge({
        name: 'oswalk_translate_skipped_paths',
        help: 'Entries of the export directory left out because their names or symlink targets are not UTF-8', registers,
        collect() {
          this.set(self.unfit.size);
        },
      });
      new Gauge({
        name: 'oswalk_translate_dedup_ratio', help: 'Bytes translated per byte of new chunks written', registers,
        collect() {
          this.set(self.stats().dedupRatio);
        },
      });
      this.metrics = {
        bytes: new Counter({ name: 'oswalk_translate_bytes_total', help: 'Bytes of files translated into versions', registers }),
        newBytes: new Counter({ name: 'oswalk_translate_new_bytes_total', help: 'Bytes of chunks new to the store', registers }),
        versions: new Counter({ name: 'oswalk_translate_versions_total', help: 'Versions committed, by type', labelNames: ['type'], registers }),
        chunks: new Counter({ name: 'oswalk_translate_chunks_total', help: 'Chunks referenced by translated files', registers }),
        skipped: new Counter({ name: 'oswalk_translate_skipped_total', help: 'Paths skipped, by reason', labelNames: ['reason'], registers }),
        errors: new Counter({ name: 'oswalk_translate_errors_total', help: 'Paths that failed to translate', registers }),
      };
    }
  }

  async start(): Promise<void> {
    await this.state.load();
    for (const [rel, s] of this.state.entries) if (s.t === 'f') this.byIno.set(s.ino, rel);
    if (this.o.watch !== false) {
      // Before the scan, so nothing that changes while we scan is missed.
      this.watcher = watch(this.o.exportDir, {
        ignoreInitial: true, followSymlinks: false, ignorePermissionErrors: true, atomic: false,
        ignored: (p) => this.ignored(p),
      });
      this.watcher.on('all', (_event, p) => {
        const rel = this.rel(p);
        this.failed.delete(rel);
        this.enqueue(rel);
        if (rel !== '' && !rel.startsWith('..')) this.checkDirSoon(parentRel(rel));
      });
      // chokidar drops a change that moves neither mtime nor atime past mtime: chmod, chown and
      // extended attributes of a file read since it was written. The raw event still comes;
      // a path we know is looked at again (an lstat when nothing changed).
      this.watcher.on('raw', (event, name, details) => {
        const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
        if (!watched) return;
        // A name that is not UTF-8 arrives changed (U+FFFD) and chokidar, finding no such path,
        // reports nothing: the listing of its directory shows it.
        if (typeof name === 'string' && name.includes('\uFFFD')) this.checkDirSoon(this.rel(basename(watched) === name ? dirname(watched) : watched));
        if (event !== 'change') return;
        for (const rel of [this.rel(watched), this.rel(join(watched, name))]) {
          if (this.state.entries.has(rel)) this.enqueue(rel);
        }
      });
      this.watcher.on('error', (err) => this.log.error({ err }, 'watching the export directory failed'));
      await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    }
    this.saveTimer = setInterval(() => {
      // The state is saved whole (JSON): for a million paths that is seconds of this thread.
      // While translating, at most a tenth of the time goes to it; idle and close save at once.
      if (Date.now() - this.savedAt >= 10 * this.saveMs) void this.saveState();
    }, STATE_SAVE_MS);
    void this.scan().catch((err) => {
      this.log.error({ err, dir: this.o.exportDir }, 'scanning the export directory failed');
      this.scanned = true;
      this.pump();
    });
  }

  /** Our own files, should the state file or the chunk store live inside the export directory. */
  private ignored(abs: string): boolean {
    const { file } = this.state;
    const store = this.o.store.dir;
    return abs === file || abs.startsWith(file + '.') || abs === store || abs.startsWith(store + sep);
  }

  private rel(p: string): string {
    return relative(this.o.exportDir, p).split(sep).join('/');
  }

  private backlogSize(): number {
    return this.backlog.length + this.pending.size;
  }

  stats(): TranslatorStats {
    return {
      ...this.s, backlogFiles: this.backlogSize(), exportFiles: this.state.files, exportSkipped: this.unfit.size, scanned: this.scanned,
      dedupRatio: this.s.newBytes > 0 ? this.s.bytesTranslated / this.s.newBytes : this.s.bytesTranslated > 0 ? Infinity : 1,
    };
  }

  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.scanned && this.backlog.length === 0 && this.pending.size === 0 && this.inflight.size === 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.dirCheckTimer);
    clearInterval(this.saveTimer);
    await this.watcher?.close();
    while (this.inflight.size) await new Promise((r) => setTimeout(r, 20));
    await this.saveState();
    for (const w of this.waiters.splice(0)) w();
  }

  /** When the last save began, and how long it took (ms). */
  private savedAt = 0;
  private saveMs = 0;

  private async saveState(): Promise<void> {
    const t0 = Date.now();
    try {
      await this.state.save();
      this.savedAt = t0;
      this.saveMs = Date.now() - t0;
    } catch (err) {
      this.log.error({ err, file: this.state.file }, 'cannot save the translate state');
    }
  }

  /**
   * Walk the export directory: every path that differs from what we last committed goes to the
   * backlog (recently modified first); paths we knew that are gone get tombstones.
   */
  private async scan(): Promise<void> {
    const found = new Set<string>();
    const changed: { rel: string; mtime: bigint }[] = [];
    const walk = async (dirRel: string): Promise<void> => {
      const abs = dirRel ? join(this.o.exportDir, dirRel) : this.o.exportDir;
      let names: Buffer[];
      try {
        names = await readdir(abs, { encoding: 'buffer' });
      } catch (err) {
        this.fail(dirRel || '.', err, 'cannot list directory');
        // what we cannot see we must not delete
        for (const k of this.state.descendants(dirRel)) found.add(k);
        return;
      }
      let n = 0;
      for (const raw of names) {
        if (++n % 256 === 0) await yieldLoop();
        if (!holdsExactly(raw)) {
          this.skipUnfitName(dirRel, raw);
          continue;
        }
        const name = raw.toString('utf8');
        const rel = dirRel ? `${dirRel}/${name}` : name;
        const absChild = join(abs, name);
        if (this.ignored(absChild)) continue;
        let st: BigIntStats;
        try {
          st = await lstat(absChild, { bigint: true });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
            this.fail(rel, err, 'cannot stat');
            found.add(rel);
          }
          continue;
        }
        found.add(rel);
        if (!sameStat(this.state.entries.get(rel), st)) {
          // written a moment ago: it may still be being written, so let it settle like a change
          if (st.isFile() && BigInt(Date.now()) * 1_000_000n - st.mtimeNs < BigInt(this.debounceMs) * 1_000_000n) this.enqueue(rel);
          else changed.push({ rel, mtime: st.mtimeNs });
        }
        if (st.isDirectory()) await walk(rel);
      }
    };
    await walk('');
    const gone = [...this.state.entries.keys()].filter((k) => !found.has(k));
    // oldest first: the backlog is popped from the end
    changed.sort((a, b) => (a.mtime < b.mtime ? -1 : a.mtime > b.mtime ? 1 : 0));
    this.backlog.push(...changed.map((c) => c.rel));
    for (const rel of gone) this.backlog.push(rel);
    this.scanned = true;
    this.log.info({ dir: this.o.exportDir, changed: changed.length, gone: gone.length, known: this.state.entries.size }, 'export directory scanned');
    this.pump();
  }

  private enqueue(rel: string): void {
    if (this.closed || rel === '' || rel.startsWith('..')) return;
    const now = Date.now();
    const p = this.pending.get(rel);
    if (p) {
      p.lastEvent = now;
      p.due = now + this.debounceMs;
    } else {
      this.pending.set(rel, { lastEvent: now, due: now + this.debounceMs });
    }
    this.schedule(this.debounceMs);
  }

  private checkDirSoon(dirRel: string): void {
    if (this.closed) return;
    this.dirChecks.add(dirRel);
    this.dirCheckTimer ??= setTimeout(() => {
      this.dirCheckTimer = undefined;
      const dirs = this.dirChecks;
      this.dirChecks = new Set();
      for (const d of dirs) void this.checkDir(d);
    }, DIR_CHECK_MS);
  }

  /**
   * chokidar misses events now and then: a directory renamed in and removed before its watch
   * was set up, say, leaves no unlink at all. So a directory with activity is compared with
   * what we know of it, and whatever differs is looked at again.
   */
  private async checkDir(dirRel: string): Promise<void> {
    let raw: Buffer[];
    try {
      raw = await readdir(dirRel ? join(this.o.exportDir, dirRel) : this.o.exportDir, { encoding: 'buffer' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (dirRel !== '' && (code === 'ENOENT' || code === 'ENOTDIR')) this.enqueue(dirRel);
      return;
    }
    const prefix = dirRel ? `${dirRel}/` : '';
    const present = new Set<string>();
    // Names that are not UTF-8 come to the watcher changed (U+FFFD): they are seen here.
    const unfitHere = new Set<string>();
    for (const r of raw) {
      if (holdsExactly(r)) present.add(prefix + r.toString('utf8'));
      else unfitHere.add(this.skipUnfitName(dirRel, r));
    }
    for (const [key, u] of this.unfit) if (u.what === 'name' && u.dir === dirRel && !unfitHere.has(key)) this.unfit.delete(key);
    for (const rel of this.state.childrenOf(dirRel)) if (!present.has(rel)) this.enqueue(rel);
    for (const rel of present) {
      if (!this.state.entries.has(rel) && !this.failed.has(rel) && !this.ignored(join(this.o.exportDir, rel))) this.enqueue(rel);
    }
  }

  private schedule(ms: number): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(ms, 5));
  }

  /** Start work while there is room: settled changes first (most recent first), then the scan backlog. */
  private pump(): void {
    if (this.closed) return;
    while (this.inflight.size < this.pathsInFlight) {
      const item = this.next();
      if (item === undefined) break;
      const rel = item.rel;
      this.inflight.add(rel);
      void this.process(rel, item.fromWatch).finally(() => {
        this.inflight.delete(rel);
        this.pump();
      });
    }
    if (this.isIdle()) {
      void this.saveState();
      for (const w of this.waiters.splice(0)) w();
    }
  }

  private next(): { rel: string; fromWatch: boolean } | undefined {
    const now = Date.now();
    for (;;) {
      if (!this.ready.length) {
        let soonest = Infinity;
        for (const [rel, p] of this.pending) {
          if (p.due <= now && !this.inflight.has(rel)) this.ready.push(rel);
          else soonest = Math.min(soonest, p.due);
        }
        this.ready.sort((a, b) => this.pending.get(a)!.lastEvent - this.pending.get(b)!.lastEvent);
        if (soonest < Infinity) this.schedule(soonest - now);
      }
      const rel = this.ready.pop();
      if (rel === undefined) break;
      const p = this.pending.get(rel);
      if (p && p.due <= now && !this.inflight.has(rel)) {
        this.pending.delete(rel);
        return { rel, fromWatch: true };
      }
    }
    while (this.backlog.length) {
      const rel = this.backlog.pop()!;
      if (!this.inflight.has(rel) && !this.pending.has(rel)) return { rel, fromWatch: false };
    }
    return undefined;
  }

  /** One path: a changed file from the watcher (or one that changed under us) must hold still first. */
  private async process(rel: string, fromWatch: boolean): Promise<void> {
    try {
      await yieldLoop();
      let st: BigIntStats;
      try {
        st = await lstat(join(this.o.exportDir, rel), { bigint: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
        this.pendingMark.delete(rel);
        await this.gone(rel);
        return;
      }
      if (fromWatch && st.isFile()) {
        const mark = `${st.size}:${st.mtimeNs}`;
        const prev = this.pendingMark.get(rel);
        if (prev !== mark) {
          // still changing (or first look): wait until it holds still for debounceMs
          this.pendingMark.set(rel, mark);
          this.requeue(rel);
          return;
        }
        this.pendingMark.delete(rel);
      }
      await this.translate(rel, st);
    } catch (err) {
      this.fail(rel, err, 'cannot translate');
    }
  }

  private readonly pendingMark = new Map<string, string>();

  private requeue(rel: string): void {
    const now = Date.now();
    const p: Pending = this.pending.get(rel) ?? { lastEvent: now, due: 0 };
    p.due = now + this.debounceMs;
    this.pending.set(rel, p);
    this.schedule(this.debounceMs);
  }

  private nsPath(rel: string): string {
    return normalizePath('/' + rel);
  }

  private async commit(rel: string, v: Omit<NewVersion, 'path' | 'node' | 'source'>): Promise<void> {
    await commitVersion(this.o.fs.redis, this.o.fs.ks, { ...v, path: this.nsPath(rel), node: this.o.node, source: 'export' });
    this.s.versions++;
    this.metrics?.versions.inc({ type: v.type });
  }

  private translate(rel: string, st: BigIntStats): Promise<void> {
    if (!st.isFile() || st.nlink < 2n) return this.translateEntry(rel, st);
    const ino = String(st.ino);
    const run = (this.linking.get(ino) ?? Promise.resolve()).then(() => this.translateEntry(rel, st));
    const settled = run.catch(() => undefined);
    this.linking.set(ino, settled);
    void settled.then(() => {
      if (this.linking.get(ino) === settled) this.linking.delete(ino);
    });
    return run;
  }

  private async translateEntry(rel: string, st: BigIntStats): Promise<void> {
    const known = this.state.entries.get(rel);
    if (sameStat(known, st)) return;
    const abs = join(this.o.exportDir, rel);
    const { xattrs, tooBig } = st.isFile() || st.isDirectory() || st.isSymbolicLink() ? exportXattrs(abs) : {};
    if (tooBig) this.log.warn({ path: rel }, `extended attributes over ${XATTR_LIMITS.totalBytes} bytes: the version keeps none`);
    const base = { mtimeNs: st.mtimeNs.toString(), mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), xattrs };
    if (st.isDirectory()) {
      await this.commit(rel, { ...base, type: 'dir', size: 0 });
      this.state.set(rel, seenFromStat('d', st));
      return;
    }
    // a directory replaced by something else: its children went with it (the new version
    // replaces this node's directory version by itself)
    if (known?.t === 'd') await this.gone(rel, true);
    if (st.isSymbolicLink()) {
      const raw = await readlink(abs, { encoding: 'buffer' });
      if (!holdsExactly(raw)) {
        // What the namespace showed of this link is no longer what is here.
        if (known) await this.gone(rel);
        this.skipUnfit(escapeBytes(Buffer.from(rel)), parentRel(rel), 'target', `skipped: the symlink's target ${escapeBytes(raw)} is not valid UTF-8, which the namespace cannot hold exactly`);
        return;
      }
      await this.commit(rel, { ...base, type: 'symlink', size: raw.length, target: raw.toString('utf8') });
      this.state.set(rel, seenFromStat('l', st));
      this.unfit.delete(escapeBytes(Buffer.from(rel)));
      return;
    }
    if (!st.isFile()) {
      this.skip(rel, 'special', 'skipped: not a regular file, directory or symlink (fifo, socket or device)');
      this.state.set(rel, seenFromStat('s', st));
      return;
    }
    if (!known && st.nlink > 1n && (await this.linkByInode(rel, st))) return;
    // only the mode, owner or extended attributes changed: same content, same chunk list
    const sameContent = known?.t === 'f' && known.m && known.ino === String(st.ino) && known.size === Number(st.size) && known.mtimeNs === st.mtimeNs.toString();
    let chunkListHash = sameContent ? known.m : (await this.reuseByInode(rel, st)) ?? (await this.storeFile(rel, abs, st));
    if (!chunkListHash) return;
    const commitFile = (m: string) => this.commit(rel, { ...base, type: 'file', size: Number(st.size), chunkListHash: m });
    try {
      await commitFile(chunkListHash);
    } catch (err) {
      if (!(err instanceof FsError && err.code === 'ESTALE')) throw err;
      // Chunk list GC took it since we put it or last committed it: store the file again, which
      // puts the chunk list and our location back.
      chunkListHash = await this.storeFile(rel, abs, st);
      if (!chunkListHash) return;
      await commitFile(chunkListHash);
    }
    this.state.set(rel, seenFromStat('f', st, chunkListHash));
    this.byIno.set(String(st.ino), rel);
  }

  /**
   * A new name of a file whose other name is translated (a hard link in the export directory)
   * becomes a hard link in the namespace: one file, whose later changes this translator makes
   * through either name. False when it cannot (the other name is gone or not the same file now,
   * or the new name is taken in the namespace): the name is translated as a file of its own.
   */
  private async linkByInode(rel: string, st: BigIntStats): Promise<boolean> {
    const other = this.byIno.get(String(st.ino));
    const s = other === undefined || other === rel ? undefined : this.state.entries.get(other);
    if (s?.t !== 'f' || !s.m) return false;
    const same = await lstat(join(this.o.exportDir, other!), { bigint: true }).then((o) => o.ino === st.ino && o.dev === st.dev, () => false);
    if (!same) return false;
    try {
      await linkPath(this.o.fs.redis, this.o.fs.ks, this.nsPath(other!), this.nsPath(rel), this.o.node, { source: 'export' });
    } catch (err) {
      if (err instanceof FsError && (err.code === 'EEXIST' || err.code === 'ENOENT' || err.code === 'ENOTDIR')) return false;
      throw err;
    }
    this.s.versions++;
    this.s.hardLinks++;
    this.metrics?.versions.inc({ type: 'hardlink' });
    this.state.set(rel, seenFromStat('f', st, s.m));
    return true;
  }

  /** A file renamed inside the export directory keeps its inode, size and mtime: reuse its chunk list. */
  private async reuseByInode(rel: string, st: BigIntStats): Promise<string | undefined> {
    const ino = String(st.ino);
    const other = this.byIno.get(ino);
    let s: Seen | undefined;
    if (other !== undefined && other !== rel) {
      const stillThere = await lstat(join(this.o.exportDir, other), { bigint: true }).then((o) => o.ino === st.ino, () => false);
      if (!stillThere) s = this.state.entries.get(other);
    } else if (other === undefined) {
      s = this.recentlyGone.get(ino);
    }
    if (!s?.m || s.size !== Number(st.size) || s.mtimeNs !== st.mtimeNs.toString()) return undefined;
    this.recentlyGone.delete(ino);
    this.s.renamesReused++;
    return s.m;
  }

  private async storeFile(rel: string, abs: string, st: BigIntStats): Promise<string | undefined> {
    let res;
    const big = st.size > SMALL_FILE_BYTES;
    if (big) await this.hashSlot();
    try {
      res = await this.o.store.putFile(abs);
    } catch (err) {
      if (err instanceof FileChangedError) {
        this.log.info({ path: rel }, 'file changed while it was read; translating it again once it settles');
        this.requeue(rel);
        return undefined;
      }
      throw err;
    } finally {
      if (big) this.freeHashSlot();
    }
    // putFile saw a stable file; make sure it is the one we stat'ed
    const after = await lstat(abs, { bigint: true }).catch(() => undefined);
    if (!after || after.ino !== st.ino || after.size !== st.size || after.mtimeNs !== st.mtimeNs) {
      this.requeue(rel);
      return undefined;
    }
    const encoded = encodeChunkList(res.chunks);
    const hash = chunkListHash(res.chunks);
    // both before the version that names them, so no reader meets a chunk list it cannot find
    await Promise.all([
      putChunkList(this.o.fs.redis, this.o.fs.ks, hash, encoded),
      addChunkListLocation(this.o.fs.redis, this.o.fs.ks, hash, this.o.node),
    ]);
    if (this.o.copies && res.chunks.length) {
      await this.o.copies(this.nsPath(rel), hash, res.chunks).catch((err: Error) => {
        this.log.warn({ path: rel, err: err.message }, 'the copies of a translated file could not all be made now; the replication pass will');
      });
    }
    this.s.bytesTranslated += res.size;
    this.s.newBytes += res.newBytes;
    this.s.filesTranslated++;
    this.s.chunks += res.chunks.length;
    this.metrics?.bytes.inc(res.size);
    this.metrics?.newBytes.inc(res.newBytes);
    this.metrics?.chunks.inc(res.chunks.length);
    return hash;
  }

  private async hashSlot(): Promise<void> {
    if (this.hashSlots > 0) {
      this.hashSlots--;
      return;
    }
    await new Promise<void>((resolve) => this.hashWaiters.push(resolve));
  }

  /** A waiter takes the slot over as it is; else it is free again. */
  private freeHashSlot(): void {
    const next = this.hashWaiters.shift();
    if (next) next();
    else this.hashSlots++;
  }

  /**
   * rel no longer exists: tombstones for it and everything we knew below it, stamped with the
   * mtime of the nearest directory still there (unlink and rmdir set it), never before the
   * entry's own last mtime.
   */
  private async gone(rel: string, childrenOnly = false): Promise<void> {
    const known = this.state.entries.get(rel);
    const victims = known && known.t !== 'd'
      ? childrenOnly ? [] : [rel]
      : [...(known && !childrenOnly ? [rel] : []), ...this.state.descendants(rel)];
    if (this.unfit.size) {
      const self = escapeBytes(Buffer.from(rel));
      for (const [key, u] of this.unfit) {
        if ((key === self && !childrenOnly) || u.dir === rel || u.dir.startsWith(`${rel}/`)) this.unfit.delete(key);
      }
    }
    // (A name that is not UTF-8 reaches here from the watcher changed, and is not found: the
    // check of its directory that every event brings reports it.)
    if (!victims.length) return;
    let deletedAt = BigInt(Date.now()) * 1_000_000n;
    let dir = childrenOnly ? `${rel}/x` : rel;
    while (dir !== '') {
      dir = dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '';
      const st = await lstat(dir ? join(this.o.exportDir, dir) : this.o.exportDir, { bigint: true }).catch(() => undefined);
      if (st?.isDirectory()) {
        deletedAt = st.mtimeNs;
        break;
      }
    }
    // children first, so no moment shows a deleted directory with live entries
    victims.sort((a, b) => b.length - a.length);
    for (const k of victims) {
      const s = this.state.entries.get(k)!;
      if (s.t !== 's') {
        const last = BigInt(s.mtimeNs) + 1n;
        const mtimeNs = (deletedAt > last ? deletedAt : last).toString();
        await this.commit(k, { type: 'tombstone', mtimeNs, size: 0, mode: 0, uid: 0, gid: 0 });
        this.s.tombstones++;
      }
      this.state.delete(k);
      if (s.t === 'f' && this.byIno.get(s.ino) === k) {
        this.byIno.delete(s.ino);
        this.recentlyGone.set(s.ino, s);
        if (this.recentlyGone.size > RECENTLY_GONE_MAX) this.recentlyGone.delete(this.recentlyGone.keys().next().value!);
      }
    }
  }

  /** A name in dirRel that is not UTF-8: skipped, logged once while it stays. Returns its key. */
  private skipUnfitName(dirRel: string, raw: Buffer): string {
    const key = escapeBytes(Buffer.concat([Buffer.from(dirRel ? `${dirRel}/` : ''), raw]));
    this.skipUnfit(key, dirRel, 'name', 'skipped: the name is not valid UTF-8, which the namespace cannot hold exactly');
    return key;
  }

  private skipUnfit(key: string, dir: string, what: Unfit['what'], msg: string): void {
    if (this.unfit.has(key)) return;
    this.unfit.set(key, { dir, what });
    this.s.skipped++;
    this.metrics?.skipped.inc({ reason: 'invalid-utf8' });
    this.log.warn({ path: `${this.o.exportDir}/${key}` }, msg);
  }

  private skip(rel: string, reason: string, msg: string): void {
    this.failed.add(rel);
    this.s.skipped++;
    this.metrics?.skipped.inc({ reason });
    this.log.warn({ path: join(this.o.exportDir, rel) }, msg);
  }

  private fail(rel: string, err: unknown, msg: string): void {
    this.failed.add(rel);
    this.s.errors++;
    this.metrics?.errors.inc();
    const e = err as NodeJS.ErrnoException;
    const detail = err instanceof FsError ? err.message : e?.code ?? (err as Error)?.message ?? String(err);
    this.log.warn({ path: join(this.o.exportDir, rel), err: detail }, `${msg}; skipped until it changes`);
  }
}
