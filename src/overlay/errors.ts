import { constants } from 'node:os';

/** A failure the FUSE layer answers with this errno (positive, as in errno.h). */
export class ErrnoError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
    this.name = 'ErrnoError';
  }
}

const E = constants.errno;

/**
 * Answers every `ls -l` and lookup gives by the thousand (a name that is not there, an
 * attribute a file does not have: ls asks for security.selinux of each): their stack traces
 * were a tenth of the FS process's time in an `ls -l` of 10,000 files, and are never read.
 */
const EXPECTED = new Set<string>(['ENOENT', 'ENODATA']);

export function fsError(code: keyof typeof constants.errno, path: string, detail = ''): ErrnoError {
  const message = `${code} ${path}${detail ? `: ${detail}` : ''}`;
  if (!EXPECTED.has(code)) return new ErrnoError(E[code], message);
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ErrnoError(E[code], message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The errno for any error an operation threw: our own ErrnoError, the namespace's FsError
 * (`ENOTEMPTY` of /a/b), a script's failure named by an errno (the lock table's EINVAL), a Node
 * system error from the staging files (ENOSPC, EDQUOT…), and EIO for everything else (a chunk no
 * holder could deliver, a corrupt chunk, Redis away for too long) so a program sees an I/O error
 * rather than hanging.
 */
export function errnoOf(err: unknown): number {
  if (err instanceof ErrnoError) return err.errno;
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  // FsError (src/state/fs.ts) and ScriptError (src/state/scripts.ts) carry the errno's name as
  // their code; known by name, so that this file loads nothing of src/state.
  if (e && (e.name === 'FsError' || e.name === 'ScriptError') && typeof e.code === 'string' && e.code in E) return E[e.code as keyof typeof E];
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code) && SYSTEM_CODES.has(e.code)) {
    return E[e.code as keyof typeof E];
  }
  return E.EIO;
}

/** System errors of the local disk that pass through unchanged; anything else is EIO. */
const SYSTEM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EMFILE', 'ENFILE', 'ENOMEM']);
