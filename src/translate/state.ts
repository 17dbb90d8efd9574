import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BigIntStats } from 'node:fs';

/**
 * What the translate daemon last committed for each path of its export directory, kept in a
 * local JSON file so a restart skips unchanged files with one lstat each (no read, no Redis
 * round trip) and notices files deleted while it was down. Losing the file costs a re-read of
 * every file, never a wrong version: committing identical content again is a no-op in Redis.
 */
export interface Seen {
  /** f(ile) d(ir) l(ink) s(kipped: fifo, socket, device) */
  t: 'f' | 'd' | 'l' | 's';
  size: number;
  mtimeNs: string;
  ino: string;
  mode: number;
  uid: number;
  gid: number;
  /** Chunk list hash, for files: lets a rename reuse it without reading the file again. */
  m?: string;
  /** The change time: extended attributes change it alone. Absent in state saved before. */
  ctimeNs?: string;
}

export function seenFromStat(t: Seen['t'], st: BigIntStats, m?: string): Seen {
  const s: Seen = {
    t, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: String(st.ino), mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid),
    ctimeNs: st.ctimeNs.toString(),
  };
  if (m) s.m = m;
  return s;
}


export function sameStat(a: Seen | undefined, st: BigIntStats): boolean {
  return !!a && a.size === Number(st.size) && a.mtimeNs === st.mtimeNs.toString() && a.ino === String(st.ino)
    && a.mode === Number(st.mode) && a.uid === Number(st.uid) && a.gid === Number(st.gid) && a.ctimeNs === st.ctimeNs.toString();
}

const EMPTY: ReadonlySet<string> = new Set();

/** The directory a relative path is in; '' for the export directory itself. */
export function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export class SeenState {
  readonly entries = new Map<string, Seen>();
  /** Known paths by parent ('' is the export directory): deletes and directory checks need no walk of every entry. */
  private readonly children = new Map<string, Set<string>>();
  /** Regular files among the entries, kept as they change: status reports it every second. */
  files = 0;
  private dirty = false;
  private saving?: Promise<void>;

  constructor(readonly file: string) {}

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new Error(`translate state ${this.file} is not valid JSON (${(err as Error).message}); delete it to re-read every file`);
    }
    if (!data || typeof data !== 'object' || !('entries' in data) || typeof data.entries !== 'object') {
      throw new Error(`translate state ${this.file} has no "entries" object; delete it to re-read every file`);
    }
    for (const [k, v] of Object.entries(data.entries as Record<string, Seen>)) this.set(k, v);
    this.dirty = false;
  }

  set(rel: string, s: Seen): void {
    const old = this.entries.get(rel);
    this.files += (s.t === 'f' ? 1 : 0) - (old?.t === 'f' ? 1 : 0);
    this.entries.set(rel, s);
    if (!old) {
      const dir = parentRel(rel);
      let set = this.children.get(dir);
      if (!set) this.children.set(dir, (set = new Set()));
      set.add(rel);
    }
    this.dirty = true;
  }

  /** Known paths directly inside dirRel. */
  childrenOf(dirRel: string): ReadonlySet<string> {
    return this.children.get(dirRel) ?? EMPTY;
  }

  /** Known paths anywhere below dirRel. */
  descendants(dirRel: string): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const c of this.childrenOf(d)) {
        out.push(c);
        walk(c);
      }
    };
    walk(dirRel);
    return out;
  }

  delete(rel: string): void {
    const old = this.entries.get(rel);
    if (!old) return;
    if (old.t === 'f') this.files--;
    this.entries.delete(rel);
    const dir = parentRel(rel);
    const set = this.children.get(dir);
    set?.delete(rel);
    if (set?.size === 0) this.children.delete(dir);
    this.dirty = true;
  }

  /** Write the file if anything changed (temp file + rename, so a crash leaves the old or the new). */
  save(): Promise<void> {
    if (!this.dirty) return this.saving ?? Promise.resolve();
    const prev = this.saving ?? Promise.resolve();
    this.saving = prev.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const tmp = `${this.file}.${process.pid}.tmp`;
      await mkdir(dirname(this.file), { recursive: true });
      await writeFile(tmp, JSON.stringify({ version: 1, entries: Object.fromEntries(this.entries) }));
      await rename(tmp, this.file);
    });
    return this.saving;
  }
}
