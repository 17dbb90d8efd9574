import { FS_LIMITS } from '../state/fs.js';
import { fsError } from './errors.js';

/**
 * Check a path as the FUSE kernel module hands it over: absolute, no empty, '.' or '..'
 * components, no NUL; ENAMETOOLONG for a component over NAME_MAX (255) bytes or a path past
 * the namespace's bound (FS_LIMITS.treePathBytes; the kernel holds each call to PATH_MAX
 * counted from where the call starts, not from our root). The kernel resolves '..'
 * before it asks us, so a path that still carries one did not come from the kernel and is
 * refused rather than resolved: namespace paths never leave the namespace, and nothing in
 * this filesystem maps a path to a local file (staging files are named by handle number).
 * The kernel walks a path one name at a time, so a program that goes deeper a directory at a
 * time (mkdir -p, mkdirat) reaches us with paths longer than it could pass in one call.
 */
export function checkPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) throw fsError('EINVAL', String(path));
  if (path === '/') return path;
  const parts = path.split('/').slice(1);
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') throw fsError('EINVAL', path);
    if (Buffer.byteLength(part) > FS_LIMITS.nameBytes) throw fsError('ENAMETOOLONG', path);
  }
  if (Buffer.byteLength(path) >= FS_LIMITS.treePathBytes) throw fsError('ENAMETOOLONG', `${path.slice(0, 64)}…`, `${Buffer.byteLength(path)} bytes`);
  return path;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** True when `path` is `dir` or lies below it. */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || dir === '/' || path.startsWith(dir + '/');
}
