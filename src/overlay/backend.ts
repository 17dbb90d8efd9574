/**
 * What the FUSE layer needs from the cluster: the namespace (fsmeta, src/state/fs.ts) and file
 * data (PacketFS, src/packetfs). One seam, so the filesystem code reads as POSIX and the
 * cluster wiring lives in cluster-backend.ts.
 */
import type { ChunkRef } from '../packetfs/index.js';
import type { Xattrs } from '../api/fs.js';
export type EntryType = 'file' | 'dir' | 'symlink' | 'special';

/** The current (winning) version of a path, as the FUSE layer sees it. */
export interface Entry {
  type: EntryType;
  /** Full st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  /** The access time utimensat set apart from the mtime; absent: the mtime (reads do not move it). */
  atimeNs?: bigint;
  /** When this version was committed (ms): reported as ctime. */
  committedAt: number;
  /** PacketFS chunk list hash of a file's content. */
  chunkListHash?: string;
  /** Symlink target. */
  target?: string;
  /** How many of a directory's names are directories (its link count is 2 more). */
  subdirs?: number;
  /** A device node's device number (special files: fifos, sockets, devices, by their mode's type bits). */
  rdev?: number;
  /** Extended attributes (name → base64 value), when it has any. */
  xattrs?: Xattrs;
  /** A hard-linked file's inode number in the namespace (decimal), and its link count. */
  inode?: string;
  links?: number;
  /** The st_ino a rename or link carried to it (decimal; src/state/fs.ts VersionRecord.stIno). */
  stIno?: string;
}

/** What a commit says of a path; the namespace stamps committedAt (and knows its links and numbers). */
export type NewEntry = Omit<Entry, 'committedAt' | 'inode' | 'links' | 'stIno'>;

/** The version to commit again for what an entry says (its attributes changed, or its name). */
export function versionOf(e: Entry): NewEntry {
  const { committedAt: _, inode: _i, links: _l, stIno: _s, ...v } = e;
  return v;
}

export interface Backend {
  /** The current version of path, or null when there is none (or it is deleted). */
  get(path: string): Promise<Entry | null>;
  /** get for many paths (at most 1000) in one round trip. */
  getMany(paths: string[]): Promise<(Entry | null)[]>;
  /**
   * Names in a directory, a page at a time (about a thousand; a name may come twice). Throws
   * ENOTDIR/ENOENT.
   */
  list(path: string): AsyncIterable<string[]>;
  /**
   * Commit a version from this mount; `exclusive` fails with EEXIST if the path exists (mkdir,
   * symlink). ESTALE: the chunk list v.chunkListHash names is no longer stored (chunk list GC took it); store the content
   * again and retry. `written`: new content, which wins over what the path held (src/state/fs.ts
   * commitVersion). `atMs` (default now) is the commit's time: committedAt, and the parent's mtime
   * if the name is new. `lockSession`: made under a lock this mount holds (locks.ts); ENOLCK once
   * that lock's session has lapsed. `touch`: a new version even if it repeats the latest (a
   * setattr moves ctime).
   *
   * Answers `published`: an event for the path went out (not for a repeat of the latest
   * version); `mtimeNs`: the time it was committed with; `inode`, `links`: the commit changed the
   * hard-linked file path is a name of (those are its); `stIno` as get shows it.
   */
  commit(path: string, v: NewEntry, opts?: { exclusive?: boolean; written?: boolean; atMs?: number; lockSession?: string; touch?: boolean }): Promise<{ current: boolean; published: boolean; mtimeNs: bigint; inode?: string; links?: number; stIno?: string }>;
  /** Delete (a tombstone); kind says which checks apply (EISDIR, ENOTDIR, ENOTEMPTY); `atMs` as for commit. */
  remove(path: string, kind: 'unlink' | 'rmdir', mtimeNs: bigint, atMs?: number): Promise<void>;
  /** A read of path (content, listing, link target) at atNs; the atime it shows after (relatime: src/state/fs.ts markAccessed). */
  access(path: string, atNs: bigint): Promise<bigint>;
  /** link(2): `to` becomes another name of the file at `from`, in one atomic step; the file keeps `stIno`, the number it showed. */
  link(from: string, to: string, atMs?: number, stIno?: bigint): Promise<void>;
  /** Move a path (a whole subtree for a directory) in one atomic step; the entry keeps `stIno`, the number it showed. */
  rename(from: string, to: string, mtimeNs: bigint, stIno?: bigint): Promise<{ stampNs: bigint }>;
  /**
   * Bytes [position, position + length) of a file's content (short at its end), verified
   * chunk by chunk, from the local store or peers; `readAhead` chunks after the range are
   * fetched in the background for a sequential reader.
   */
  readRange(chunkListHash: string, position: number, length: number, readAhead: number): Promise<Buffer>;
  /**
   * A file content's chunks in order, for reads served outside readRange (fast-read.ts); they
   * count as used for the local cache's eviction.
   */
  chunkList(chunkListHash: string): Promise<readonly ChunkRef[]>;
  /** Chunk a local file into the store and record its chunk list; returns the chunk list hash. */
  storeFile(localPath: string): Promise<{ chunkListHash: string; size: number }>;
  /** Record the chunk list of chunks already durable in the store (a LiveChunker's result). */
  storeChunks(stored: { chunks: ChunkRef[]; size: number }): Promise<{ chunkListHash: string; size: number }>;
  /** One chunk this node stored (a LiveChunker's, not yet named by a version). */
  readChunk(chunk: ChunkRef): Promise<Buffer>;
  /**
   * Make the copies of stored content that a file at `path` wants on other nodes before its
   * version names it (a close returns once they are made). EIO when too few nodes took it.
   */
  ensureCopies(path: string, chunkListHash: string, prefer?: readonly string[]): Promise<void>;
  /**
   * Peers (agent URLs) a file at `path` written from empty should stream its chunks to as they
   * are cut, so that its close finds its copies made; [] for none. Never waits.
   */
  copyTargets(path: string): string[];
  /** The hash of an empty file's chunk list (stored once). */
  emptyChunkList(): Promise<string>;
  /**
   * Paths whose namespace entry changed elsewhere (or here), or (`atimeNs`) only the atime, which
   * a read moved to that; `resync` after events may have been lost.
   */
  watch(onChange: (path: string, atimeNs?: bigint) => void, onResync: () => void): void;
  /** Whether metadata can be asked for now (false while Redis is away). */
  online(): boolean;
  close(): Promise<void>;
}
