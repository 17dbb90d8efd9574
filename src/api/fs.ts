/**
 * The versions of the unified filesystem's paths: what the namespace (src/state/fs.ts) stores
 * and GET /v1/fs/versions and POST /v1/fs/restore answer with; and a directory's page of names
 * as GET /v1/fs/list answers it (the dashboard's Files page).
 */
import { Type, type Static } from 'typebox';
import { ListOf } from './lists.js';

/**
 * Extended attributes of a version (setxattr and friends through a mount): name → value, the
 * value base64 so that a version stays plain JSON. Stored with the version (the fs Lua scripts carry
 * them as opaque bytes) in this encoding: per attribute, sorted by name, a byte with the name's
 * length, the name, two bytes (big-endian) with the value's length, the value.
 */
const XattrsSchema = Type.Record(Type.String(), Type.String());
export type Xattrs = Static<typeof XattrsSchema>;

/**
 * `special`: a fifo, a socket or a device node, told apart by the type bits of its mode.
 * `hardlink`: a name of a hard-linked file, whose versions are its inode's (`inode`); get and
 * the listings show the file itself, so only a name's history holds one.
 */
const FileTypeSchema = Type.Union([
  Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink'), Type.Literal('special'), Type.Literal('tombstone'), Type.Literal('hardlink'),
]);
export type FileType = Static<typeof FileTypeSchema>;
const VersionSourceSchema = Type.Union([Type.Literal('export'), Type.Literal('mount'), Type.Literal('restore')]);
export type VersionSource = Static<typeof VersionSourceSchema>;

const versionFields = {
  /** Decimal, unique and increasing per path. */
  id: Type.String(),
  path: Type.String(),
  type: FileTypeSchema,
  node: Type.String(),
  /** ns since the epoch as a decimal string (a bigint does not survive JSON or Lua). */
  mtimeNs: Type.String(),
  /** The access time, when utimensat set one apart from the mtime; absent: the mtime. */
  atimeNs: Type.Optional(Type.String()),
  size: Type.Number(),
  /** st_mode including the file type bits. */
  mode: Type.Number(),
  uid: Type.Number(),
  gid: Type.Number(),
  target: Type.Optional(Type.String()),
  /** A device node's device number (st_rdev); special files only. */
  rdev: Type.Optional(Type.Number()),
  /** How many of a directory's names are directories, as getCurrent shows it (its link count is 2 more). */
  subdirs: Type.Optional(Type.Number()),
  /**
   * The inode number of a hard-linked file (decimal): what a `hardlink` version names, and, as
   * getCurrent shows a name of one, the file's (with `links`, its link count).
   */
  inode: Type.Optional(Type.String()),
  links: Type.Optional(Type.Number()),
  /**
   * The inode number the path shows, when a rename or link carried one to it (what it showed
   * before, kept in fs:st, decimal); absent: the mount numbers it by its path.
   */
  stIno: Type.Optional(Type.String()),
  /** The hash of the file's chunk list (chunkListHash in src/packetfs/chunk-list.ts); files only. */
  chunkListHash: Type.Optional(Type.String()),
  /** Extended attributes, when it has any. */
  xattrs: Type.Optional(XattrsSchema),
  source: VersionSourceSchema,
  /** ms since the epoch when the version was committed. */
  committedAt: Type.Number(),
};

/** A version of a path; POST /v1/fs/restore answers with the one it made. */
export const VersionRecordSchema = Type.Object(versionFields);
export type VersionRecord = Static<typeof VersionRecordSchema>;

export const VersionInfoSchema = Type.Object({
  ...versionFields,
  /** The winner: what the path shows (a current tombstone means the path is deleted). */
  current: Type.Boolean(),
});
export type VersionInfo = Static<typeof VersionInfoSchema>;

/** GET /v1/fs/versions: a path's versions, newest mtime first. */
export const VersionListSchema = ListOf(VersionInfoSchema, { path: Type.String() });
export type VersionList = Static<typeof VersionListSchema>;

/** A name of a directory as GET /v1/fs/list shows it: what its winning version says. */
export const DirEntryViewSchema = Type.Object({
  name: Type.String(),
  /** A hard link's is its file's; a deleted name is not listed. */
  type: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink'), Type.Literal('special')]),
  size: Type.Number(),
  /** ms since the epoch. */
  mtime: Type.Number(),
  /** The node that wrote the winning version. */
  node: Type.String(),
  /** A file's: how many nodes hold its data. */
  copies: Type.Optional(Type.Number()),
});
export type DirEntryView = Static<typeof DirEntryViewSchema>;

/** GET /v1/fs/list: a page of a directory's names, by name; `cursor` is '0' on the last page. */
export const DirPageSchema = ListOf(DirEntryViewSchema, { path: Type.String(), cursor: Type.String() });
export type DirPage = Static<typeof DirPageSchema>;
