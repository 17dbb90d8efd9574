import type { Redis } from 'ioredis';
import { createHash, randomBytes } from 'node:crypto';
import type { AuditEntry, TokenCreated, TokenView } from '../api/auth.js';
import type { Role } from '../api/roles.js';
import type { Keyspace } from './keys.js';
import { runScript, ScriptError } from './scripts.js';

/**
 * User tokens with roles, and the audit log of what they did. Only a token's SHA-256 is
 * stored: a copy of Redis (a backup, a replica, its traffic) gives no token away.
 */

/** How the stored form of a token reads. */
interface StoredToken {
  name: string;
  role: Role;
  createdAt: number;
  /** 0: never. */
  expiresAt: number;
  createdBy: string;
}

/** The hash a token is stored and looked up by. */
export function tokenHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function view(t: StoredToken): TokenView {
  return { name: t.name, role: t.role, createdAt: t.createdAt, expiresAt: t.expiresAt || null, createdBy: t.createdBy };
}

export class TokenExistsError extends Error {
  constructor(name: string) {
    super(`a token named "${name}" exists: revoke it first (oswalk token revoke ${name}) or pick another name`);
  }
}

/**
 * Makes a token; its secret is in the answer and nowhere else. `osw_` marks what it is (as
 * GitHub's `ghp_` does) so a secret scanner or a person can tell one in a log or a paste.
 */
export async function createToken(redis: Redis, ks: Keyspace, t: { name: string; role: Role; ttlMs?: number; createdBy: string }): Promise<TokenCreated> {
  const secret = `osw_${randomBytes(32).toString('base64url')}`;
  const now = Date.now();
  const stored: StoredToken = { name: t.name, role: t.role, createdAt: now, expiresAt: t.ttlMs ? now + t.ttlMs : 0, createdBy: t.createdBy };
  try {
    await runScript(redis, 'tokenOp', [ks.tokens], ['create', tokenHash(secret), JSON.stringify(stored), t.name, now]);
  } catch (err) {
    if (err instanceof ScriptError && err.code === 'EXISTS') throw new TokenExistsError(t.name);
    throw err;
  }
  return { ...view(stored), secret };
}

/** The live token whose secret this is, or undefined (unknown, revoked or expired). */
export async function findToken(redis: Redis, ks: Keyspace, secret: string): Promise<TokenView | undefined> {
  const raw = await redis.hget(ks.tokens, tokenHash(secret));
  if (!raw) return undefined;
  const t = JSON.parse(raw) as StoredToken;
  if (t.expiresAt && t.expiresAt <= Date.now()) return undefined;
  return view(t);
}

/** The live tokens, by name. */
export async function listTokens(redis: Redis, ks: Keyspace): Promise<TokenView[]> {
  const now = Date.now();
  return (await redis.hvals(ks.tokens))
    .map((raw) => JSON.parse(raw) as StoredToken)
    .filter((t) => !t.expiresAt || t.expiresAt > now)
    .map(view)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Removes the token of that name; false when there is none. Its next request is refused. */
export async function revokeToken(redis: Redis, ks: Keyspace, name: string): Promise<boolean> {
  return (await runScript<number>(redis, 'tokenOp', [ks.tokens], ['revoke', name, Date.now()])) > 0;
}

/** How many requests the audit log keeps (about: Redis trims whole nodes of the stream). */
const AUDIT_KEEP = 100_000;

export async function appendAudit(redis: Redis, ks: Keyspace, e: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
  await redis.xadd(ks.audit, 'MAXLEN', '~', AUDIT_KEEP, '*',
    'token', e.token, 'role', e.role, 'method', e.method, 'path', e.path, 'status', e.status, 'from', e.from);
}

/** The latest `count` entries of the audit log, newest first, older than `before` (an entry id) if given. */
export async function readAudit(redis: Redis, ks: Keyspace, count: number, before?: string): Promise<AuditEntry[]> {
  const rows = await redis.xrevrange(ks.audit, before ? `(${before}` : '+', '-', 'COUNT', count);
  return rows.map(([id, fields]) => {
    const f: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
    return { id, at: Number(id.split('-')[0]), token: f.token, role: f.role, method: f.method, path: f.path, status: Number(f.status), from: f.from };
  });
}
