import type { Xattrs } from '../api/fs.js';

/**
 * The namespaces kept. `system.` holds POSIX ACLs, which the kernel refuses itself on a mount
 * without ACL support, and anything else is unknown to Linux.
 */
export const XATTR_PREFIXES = ['user.', 'trusted.', 'security.'] as const;

/**
 * Whether an attribute of this name is kept. Not security.capability: the mount is nosuid, where
 * file capabilities do nothing, and the kernel asks for it before every write(2), so the addon
 * answers it as absent without a trip to JavaScript (patches/fuse-native-2.2.6.patch).
 */
export function xattrKept(name: string): boolean {
  return XATTR_PREFIXES.some((p) => name.startsWith(p)) && name !== 'security.capability';
}

export const XATTR_LIMITS = {
  /** As Linux's XATTR_NAME_MAX. */
  nameBytes: 255,
  /** All of a version's attributes encoded, as what ext4 fits in one 4 KiB block. */
  totalBytes: 4096,
} as const;

/** The encoded form; throws RangeError naming what does not fit. */
export function encodeXattrs(x: Xattrs): Buffer {
  const parts: Buffer[] = [];
  for (const name of Object.keys(x).sort()) {
    const n = Buffer.from(name);
    const v = Buffer.from(x[name], 'base64');
    if (n.length === 0 || n.length > XATTR_LIMITS.nameBytes || n.includes(0)) throw new RangeError(`xattr name ${JSON.stringify(name)} must be 1..${XATTR_LIMITS.nameBytes} bytes without NUL`);
    if (v.length > 0xffff) throw new RangeError(`xattr ${name}: value over 65535 bytes`);
    const head = Buffer.alloc(1);
    head[0] = n.length;
    const len = Buffer.alloc(2);
    len.writeUInt16BE(v.length);
    parts.push(head, n, len, v);
  }
  const out = Buffer.concat(parts);
  if (out.length > XATTR_LIMITS.totalBytes) throw new RangeError(`xattrs take ${out.length} bytes, over ${XATTR_LIMITS.totalBytes}`);
  return out;
}

/** The attributes of an encoded form; throws RangeError on bytes that are not one. */
export function decodeXattrs(b: Buffer): Xattrs {
  const x: Xattrs = {};
  let at = 0;
  while (at < b.length) {
    const n = b[at];
    if (at + 1 + n + 2 > b.length) throw new RangeError('xattrs: truncated');
    const name = b.subarray(at + 1, at + 1 + n).toString();
    const len = b.readUInt16BE(at + 1 + n);
    at += 1 + n + 2;
    if (at + len > b.length) throw new RangeError('xattrs: truncated');
    x[name] = b.subarray(at, at + len).toString('base64');
    at += len;
  }
  return x;
}
