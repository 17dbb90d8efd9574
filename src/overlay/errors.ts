import { constants } from 'node:os';

/** A failure the FUSE layer answers with this errno (positive, as in errno.h). */
export class FsError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
    this.name = 'FsError';
  }
}

const E = constants.errno;

export function fsError(code: keyof typeof constants.errno, path: string, detail = ''): FsError {
  return new FsError(E[code], `${code} ${path}${detail ? `: ${detail}` : ''}`);
}

/**
 * The errno for any error an operation threw: our own FsError, a Node system error from the
 * staging files (ENOSPC, EDQUOT…), a Redis error reply of the namespace script (`ENOTEMPTY /a/b`),
 * and EIO for everything else (a chunk no holder could deliver, a corrupt chunk, Redis away
 * for too long) so a program sees an I/O error rather than hanging.
 */
export function errnoOf(err: unknown): number {
  if (err instanceof FsError) return err.errno;
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  // The namespace's own FsError (src/state/fs.ts) carries the errno name as its code.
  if (e && e.name === 'FsError' && typeof e.code === 'string' && e.code in E) return E[e.code as keyof typeof E];
  if (e && e.name === 'ReplyError' && typeof e.message === 'string') {
    const code = /^(E[A-Z]+)\b/.exec(e.message)?.[1];
    if (code && code in E) return E[code as keyof typeof E];
  }
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code) && SYSTEM_CODES.has(e.code)) {
    return E[e.code as keyof typeof E];
  }
  return E.EIO;
}

/** System errors of the local disk that pass through unchanged; anything else is EIO. */
const SYSTEM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EMFILE', 'ENFILE', 'ENOMEM']);
