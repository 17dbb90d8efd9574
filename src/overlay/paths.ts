import { fsError } from './errors.js';

/** Longest name of one path component, as NAME_MAX. */
const NAME_MAX = 255;

/**
 * Check a path as the FUSE kernel module hands it over: absolute, no empty, '.' or '..'
 * components, no NUL, no component longer than NAME_MAX bytes. The kernel resolves '..'
 * before it asks us, so a path that still carries one did not come from the kernel and is
 * refused rather than resolved: namespace paths never leave the namespace, and nothing in
 * this filesystem maps a path to a local file (staging files are named by handle number).
 */
export function checkPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) throw fsError('EINVAL', String(path));
  if (path === '/') return path;
  const parts = path.split('/').slice(1);
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') throw fsError('EINVAL', path);
    if (Buffer.byteLength(part) > NAME_MAX) throw fsError('ENAMETOOLONG', path);
  }
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
