import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { Role } from '../api/roles.js';
import type { Keyspace } from './keys.js';
import { tokenHash } from './tokens.js';

/**
 * Dashboard sessions: a browser logs in with a token once and holds a random session id in an
 * HttpOnly cookie instead, so the token never sits in the page, its storage or a URL. Kept in
 * Redis, so that any control plane behind one address serves a session another one started;
 * only the id's SHA-256 is stored, as for tokens. A session of a user token ends with it
 * (revoked or expired), checked at every request.
 */
export interface Session {
  name: string;
  role: Role;
  /** The SHA-256 of the user token it was made with; '' for the cluster token (not in Redis). */
  tokenHash: string;
}

/** A session id is stored as a token is: by its SHA-256 (tokenHash). */
const idHash = tokenHash;

/** A new session for the caller a token names; returns its id (the cookie's value). */
export async function createSession(redis: Redis, ks: Keyspace, caller: { name: string; role: Role }, secret: string | undefined, ttlMs: number): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  const s: Session = { name: caller.name, role: caller.role, tokenHash: secret === undefined ? '' : tokenHash(secret) };
  await redis.set(ks.session(idHash(id)), JSON.stringify(s), 'PX', ttlMs);
  return id;
}

/** The live session with this id, or undefined (unknown, expired, ended, or its token revoked). */
export async function findSession(redis: Redis, ks: Keyspace, id: string): Promise<Session | undefined> {
  const raw = await redis.get(ks.session(idHash(id)));
  if (!raw) return undefined;
  const s = JSON.parse(raw) as Session;
  if (s.tokenHash) {
    const token = await redis.hget(ks.tokens, s.tokenHash);
    const expiresAt = token ? (JSON.parse(token) as { expiresAt: number }).expiresAt : undefined;
    if (expiresAt === undefined || (expiresAt && expiresAt <= Date.now())) return undefined;
  }
  return s;
}

/** Ends a session (log out); an unknown id is no error. */
export async function endSession(redis: Redis, ks: Keyspace, id: string): Promise<void> {
  await redis.del(ks.session(idHash(id)));
}
