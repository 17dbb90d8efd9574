/**
 * The versions of the unified filesystem's paths: what the namespace (src/state/fs.ts) stores
 * and GET /v1/fs/versions and POST /v1/fs/restore answer with.
 */

/**
 * Extended attributes of a version (setxattr and friends through a mount): name → value, the
 * value base64 so that a version stays plain JSON. Stored with the version (the fs Lua scripts carry
 * them as opaque bytes) in this encoding: per attribute, sorted by name, a byte with the name's
 * length, the name, two bytes (big-endian) with the value's length, the value.
 */
export type Xattrs = Record<string, string>;

/**
 * `special`: a fifo, a socket or a device node, told apart by the type bits of its mode.
 * `hardlink`: a name of a hard-linked file, whose versions are its inode's (`inode`); get and
 * the listings show the file itself, so only a name's history holds one.
 */
export type FileType = 'file' | 'dir' | 'symlink' | 'special' | 'tombstone' | 'hardlink';
export type VersionSource = 'export' | 'mount' | 'restore';

export interface VersionRecord {
  /** Decimal, unique and increasing per path. */
  id: string;
  path: string;
  type: FileType;
  node: string;
  /** ns since the epoch as a decimal string (a bigint does not survive JSON or Lua). */
  mtimeNs: string;
  /** The access time, when utimensat set one apart from the mtime; absent: the mtime. */
  atimeNs?: string;
  size: number;
  /** st_mode including the file type bits. */
  mode: number;
  uid: number;
  gid: number;
  target?: string;
  /** A device node's device number (st_rdev); special files only. */
  rdev?: number;
  /** How many of a directory's names are directories, as getCurrent shows it (its link count is 2 more). */
  subdirs?: number;
  /**
   * The inode number of a hard-linked file (decimal): what a `hardlink` version names, and, as
   * getCurrent shows a name of one, the file's (with `links`, its link count).
   */
  inode?: string;
  links?: number;
  /**
   * The inode number the path shows, when a rename or link carried one to it (what it showed
   * before, kept in fs:st, decimal); absent: the mount numbers it by its path.
   */
  stIno?: string;
  /** The hash of the file's chunk list (chunkListHash in src/packetfs/chunk-list.ts); files only. */
  chunkListHash?: string;
  /** Extended attributes, when it has any. */
  xattrs?: Xattrs;
  source: VersionSource;
  /** ms since the epoch when the version was committed. */
  committedAt: number;
}

export interface VersionInfo extends VersionRecord {
  /** The winner: what the path shows (a current tombstone means the path is deleted). */
  current: boolean;
}
