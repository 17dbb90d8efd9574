import type { Backend, Entry } from './backend.js';
import { fsError } from './errors.js';
import { baseName, isWithin, parentOf } from './paths.js';

interface Cached<T> {
  value: T;
  at: number;
}

export interface MetaCacheOptions {
  /** Age after which an entry is asked again even without an invalidation (a safety net for lost events). */
  ttlMs: number;
  /** How long an operation waits for Redis before it fails with EIO. */
  waitMs: number;
  maxEntries: number;
  /**
   * Told of every change of what is cached: what was kept from it elsewhere is stale (the
   * binding's attributes: patches/oswalk-attrs.c); with a path, only that path's atime moved.
   */
  changed?: (path?: string) => void;
}

/**
 * Path → current version, and directory → names, kept until an invalidation from the
 * namespace's pub/sub channel says the path changed (so another node's commit is seen at
 * once), or ttlMs passes. While Redis is away every cached answer is served whatever its age,
 * and only misses wait (then EIO); when Redis comes back the whole cache is dropped, since
 * events sent meanwhile are lost.
 */
export class MetaCache {
  private entries = new Map<string, Cached<Entry | null>>();
  private dirs = new Map<string, Cached<Set<string>>>();
  /** Bumped by every invalidation, so an answer that was asked for before it is not cached after it. */
  private generation = 0;

  constructor(private backend: Backend, private opts: MetaCacheOptions) {}

  async get(path: string): Promise<Entry | null> {
    // A name missing from its directory's cached listing does not exist: compilers, git and
    // creates look up many names that are not there, and each would be a round trip.
    if (path !== '/' && !this.entries.has(path)) {
      const dir = this.dirs.get(parentOf(path));
      if (dir && this.usable(dir) && !dir.value.has(baseName(path))) return null;
    }
    return this.cached(this.entries, path, () => this.backend.get(path));
  }

  /**
   * A directory's names. A listing read from Redis also fetches its entries' attributes, a
   * page of names at a time (readdir-plus): `ls -l`, find, cp -a, rsync and diff -r stat every
   * name next. What it keeps is bounded by maxEntries, the listing of names aside.
   */
  async list(path: string): Promise<string[]> {
    return [...(await this.cached(this.dirs, path, async () => {
      const names = new Set<string>();
      const gen = this.generation;
      for await (const page of this.backend.list(path)) {
        const paths: string[] = [];
        for (const n of page) {
          if (names.has(n)) continue;
          names.add(n);
          const p = path === '/' ? `/${n}` : `${path}/${n}`;
          if (!this.entries.has(p)) paths.push(p);
        }
        // Attributes asked for after a change went by could be older than it: not kept.
        if (gen !== this.generation) continue;
        for (let i = 0; i < paths.length; i += 1000) {
          const batch = paths.slice(i, i + 1000);
          const found = await this.backend.getMany(batch);
          if (gen !== this.generation) break;
          const at = Date.now();
          batch.forEach((p, j) => this.entries.set(p, { value: found[j], at }));
        }
        while (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
      }
      return names;
    }))];
  }

  private usable(hit: Cached<unknown>): boolean {
    return Date.now() - hit.at < this.opts.ttlMs || !this.backend.online();
  }

  private async cached<T>(map: Map<string, Cached<T>>, path: string, load: () => Promise<T>): Promise<T> {
    const hit = map.get(path);
    if (hit && this.usable(hit)) {
      map.delete(path); // LRU: move to the end
      map.set(path, hit);
      return hit.value;
    }
    const gen = this.generation;
    const value = await this.bounded(load(), path);
    if (gen === this.generation) {
      map.set(path, { value, at: Date.now() });
      if (map.size > this.opts.maxEntries) map.delete(map.keys().next().value as string);
    }
    return value;
  }

  private async bounded<T>(p: Promise<T>, path: string): Promise<T> {
    if (this.backend.online()) return p;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(fsError('EIO', path, 'metadata store unreachable')), this.opts.waitMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Our own commits publish their path too; re-reading what we just wrote would make every
   * stat after a create a Redis round trip. So a commit of ours announces itself (expect),
   * its event is swallowed, and the committed entry is cached (settle). The bookkeeping is
   * per path and safe against the event arriving before the commit's reply.
   */
  private expected = new Map<string, number>();

  expect(path: string): void {
    this.expected.set(path, (this.expected.get(path) ?? 0) + 1);
  }

  /**
   * The commit of an expected change is done: cache what it made current, or forget the path.
   * `atMs`: when a delete was made (a commit's time is value.committedAt).
   */
  settle(path: string, ok: boolean, value: Entry | null, created = false, atMs?: number): void {
    const n = this.expected.get(path) ?? 0;
    if (!ok) {
      // No event comes for a commit that did not change what the path shows (or one that
      // failed); if an event was already swallowed on its behalf, it was someone else's.
      if (n > 0) this.setExpected(path, n - 1);
      this.invalidate(path);
      return;
    }
    this.moved();
    const before = this.entries.get(path);
    this.entries.delete(path);
    if (value?.inode) this.dropInode(value.inode);
    // A directory we just made has no subdirectories yet.
    this.entries.set(path, { value: value?.type === 'dir' && created && value.subdirs === undefined ? { ...value, subdirs: 0 } : value, at: Date.now() });
    if (value?.type !== 'dir') this.dirs.delete(path);
    // A directory we just made is empty: its lookups need not ask.
    else if (created) this.dirs.set(path, { value: new Set(), at: Date.now() });
    // A name that came or went moves the parent's mtime to the change's time, as the namespace
    // does (src/state/fs.ts getCurrent): shown here at once, without asking Redis. When it is not
    // known whether the name was there, the parent is asked again.
    const parent = parentOf(path);
    const dir = this.dirs.get(parent);
    const was = dir ? dir.value.has(baseName(path)) : before ? before.value !== null : undefined;
    const at = value?.committedAt ?? atMs;
    if (was === undefined || at === undefined) this.stale(parent);
    else if (was !== (value !== null)) this.touch(parent, BigInt(at) * 1_000_000n);
    // A directory that came or went is one subdirectory more or less of its parent (its link count).
    const wasDir = before === undefined ? undefined : before.value?.type === 'dir';
    const isDir = value?.type === 'dir';
    if (wasDir === undefined ? isDir || value === null : wasDir !== isDir) this.subdirCount(parent, wasDir === undefined ? undefined : isDir ? 1 : -1);
    if (dir) {
      if (value) dir.value.add(baseName(path));
      else dir.value.delete(baseName(path));
    }
  }

  /** What is cached of path, without asking: an entry, null (no such path), or undefined (not cached). */
  peek(path: string): Entry | null | undefined {
    return this.entries.get(path)?.value;
  }

  /**
   * Whether get(path) would answer what peek(path) does without asking Redis: not when the entry
   * is marked stale (a directory whose names changed: its mtime and link count are asked again)
   * or old.
   */
  fresh(path: string): boolean {
    const hit = this.entries.get(path);
    return !!hit && Date.now() - hit.at < this.opts.ttlMs;
  }

  /** A read moved path's atime to atNs (and that of every other name of it, a hard-linked file). */
  accessed(path: string, atNs: bigint): void {
    const e = this.entries.get(path)?.value;
    if (!e) return;
    // A hard-linked file's other names are not known here without a scan: then everything.
    this.opts.changed?.(e.inode ? undefined : path);
    for (const hit of e.inode ? [...this.entries.values()] : [this.entries.get(path)!]) {
      if (hit.value && (hit.value === e || hit.value.inode === e.inode)) hit.value = { ...hit.value, atimeNs: atNs };
    }
  }

  /**
   * A hard-linked file changed (its content, attributes or names): forget every cached name of
   * it, which must show the change before its event comes (the kernel asks for a hard-linked
   * file's attributes each time: patches/oswalk-passthrough.c). A scan, not an index: changes
   * of hard-linked files are rare.
   */
  dropInode(inode: string): void {
    let dropped = false;
    for (const [p, hit] of this.entries) {
      if (hit.value?.inode !== inode) continue;
      this.entries.delete(p);
      dropped = true;
    }
    if (dropped) this.moved();
  }

  /** Something cached changed: an answer asked for before is not cached after, nor kept elsewhere. */
  private moved(): void {
    this.generation++;
    this.opts.changed?.();
  }

  private setExpected(path: string, n: number): void {
    if (n > 0) this.expected.set(path, n);
    else this.expected.delete(path);
  }

  /** An event from the namespace channel. */
  event(path: string): void {
    const n = this.expected.get(path) ?? 0;
    if (n > 0) {
      this.setExpected(path, n - 1);
      return;
    }
    this.invalidate(path);
  }

  /**
   * Forget path, its parent's listing, and, for a directory (or a path we know nothing of),
   * everything below it. The parent's attributes are asked again (its mtime moves when a name
   * comes or goes), but kept for while Redis is away: every path lies under the root.
   */
  invalidate(path: string): void {
    this.moved();
    const hit = this.entries.get(path);
    this.entries.delete(path);
    this.dirs.delete(path);
    this.dirs.delete(parentOf(path));
    this.stale(parentOf(path));
    if (!hit || hit.value?.type === 'dir') {
      for (const map of [this.entries, this.dirs] as Map<string, unknown>[]) {
        for (const k of map.keys()) if (isWithin(k, path)) map.delete(k);
      }
    }
  }

  /**
   * A name made in path's parent that is not committed yet (a new file is, when it is released,
   * which the kernel does not wait for): the parent shows the change at once, as POSIX has it.
   * To the millisecond, as the namespace keeps the time a name came (fs:dt, from the commit's
   * nowMs): shown to the nanosecond here, the parent's mtime differed from what every other
   * node reads from Redis until this node's cache asked again.
   */
  nameMade(path: string, atNs: bigint): void {
    this.moved();
    this.touch(parentOf(path), (atNs / 1_000_000n) * 1_000_000n);
  }

  /** A directory's cached mtime moved to atNs, if later; not its atime (as the namespace shows it, lua/include/fs.lua's shown()). */
  private touch(path: string, atNs: bigint): void {
    const hit = this.entries.get(path);
    if (hit?.value?.type === 'dir' && atNs > hit.value.mtimeNs) hit.value = { ...hit.value, atimeNs: hit.value.atimeNs ?? hit.value.mtimeNs, mtimeNs: atNs };
  }

  /** A directory's cached count of subdirectories moves by delta (unknown: it is asked again). */
  private subdirCount(path: string, delta: number | undefined): void {
    const hit = this.entries.get(path);
    if (hit?.value?.type !== 'dir') return;
    if (delta === undefined || hit.value.subdirs === undefined) this.stale(path);
    else hit.value = { ...hit.value, subdirs: Math.max(0, hit.value.subdirs + delta) };
  }

  /** Ask Redis again for path when it can answer; until then the answer held still serves. */
  private stale(path: string): void {
    const hit = this.entries.get(path);
    if (hit) hit.at = 0;
  }

  clear(): void {
    this.moved();
    this.entries.clear();
    this.dirs.clear();
  }
}
