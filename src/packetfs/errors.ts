/** Errors of PacketFS, each with a `code` that callers (the FUSE layer above all) map to errno. */

/** A chunk on disk or from a peer whose bytes do not hash to its name. */
export class CorruptChunkError extends Error {
  readonly code = 'ECORRUPT';
  constructor(readonly hash: string, readonly where: string, detail: string) {
    super(`chunk ${hash} at ${where} is corrupt: ${detail}`);
    this.name = 'CorruptChunkError';
  }
}

export class ChunkNotFoundError extends Error {
  readonly code = 'ENOENT';
  constructor(readonly hash: string, where: string) {
    super(`chunk ${hash} not found in ${where}`);
    this.name = 'ChunkNotFoundError';
  }
}

/** Writing to the store failed (ENOSPC, EIO, EACCES…): `cause` has the system error. */
export class StoreWriteError extends Error {
  readonly code: string;
  constructor(readonly dir: string, readonly hash: string, override readonly cause: NodeJS.ErrnoException) {
    super(`chunk store ${dir}: cannot write chunk ${hash}: ${cause.code ?? ''} ${cause.message}`);
    this.name = 'StoreWriteError';
    this.code = cause.code ?? 'EIO';
  }
}

/** The file given to putFile changed, vanished or was truncated while it was being read. */
export class FileChangedError extends Error {
  readonly code = 'ECHANGED';
  constructor(readonly path: string, detail: string) {
    super(`${path} changed while it was being chunked (${detail}); try again when it is quiet`);
    this.name = 'FileChangedError';
  }
}

/**
 * No holder could deliver a chunk in time. The FUSE layer maps this to EIO so that a read
 * fails fast instead of hanging.
 */
export class ChunkUnavailableError extends Error {
  readonly code = 'EIO';
  constructor(readonly hash: string, detail: string) {
    super(`chunk ${hash} is unavailable: ${detail}`);
    this.name = 'ChunkUnavailableError';
  }
}

export const HASH_RE = /^[0-9a-f]{64}$/;

export function checkHash(hash: string, what = 'chunk hash'): void {
  if (typeof hash !== 'string' || !HASH_RE.test(hash)) throw new Error(`${what} "${String(hash).slice(0, 80)}" must be 64 lowercase hex digits`);
}
