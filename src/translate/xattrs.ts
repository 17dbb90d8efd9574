import { oswalkAddonIfBuilt } from '../native/addon.js';
import type { Xattrs } from '../api/fs.js';
import { encodeXattrs, XATTR_PREFIXES, xattrKept } from '../state/xattrs.js';

type ReadXattrs = (path: string, prefixes: readonly string[]) => Record<string, Buffer> | null;

/**
 * The extended attributes of a file, directory or symlink in an export directory that its
 * version keeps (the link's own for a symlink). `tooBig` when they would not fit in a version:
 * then it keeps none. Nothing when this process has no patched addon to read them with.
 */
export function exportXattrs(path: string): { xattrs?: Xattrs; tooBig?: boolean } {
  const read = oswalkAddonIfBuilt()?.oswalk_xattrs_read as ReadXattrs | undefined;
  const raw = read?.(path, XATTR_PREFIXES);
  if (!raw) return {};
  const xattrs: Xattrs = {};
  for (const [name, value] of Object.entries(raw)) if (xattrKept(name)) xattrs[name] = value.toString('base64');
  if (!Object.keys(xattrs).length) return {};
  try {
    encodeXattrs(xattrs);
  } catch {
    return { tooBig: true };
  }
  return { xattrs };
}
