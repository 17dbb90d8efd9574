/**
 * The wire forms of tokens and of the audit log (POST/GET /v1/tokens, GET /v1/audit); the roles
 * themselves are in roles.ts. The control plane enforces them, the CLI prints them; both take the
 * shapes from here.
 */
import { Type, type Static } from 'typebox';

export const RoleSchema = Type.Union([Type.Literal('read-only'), Type.Literal('operator'), Type.Literal('admin'), Type.Literal('node'), Type.Literal('control-plane')]);

/** A token's name: what the audit log and `oswalk token list` show of it, never its secret. */
export const TokenName = Type.String({ pattern: '^[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?$' });

export const TokenView = Type.Object({
  name: Type.String(),
  role: RoleSchema,
  /** ms since the epoch. */
  createdAt: Type.Number(),
  /** ms since the epoch; null: the token does not expire. */
  expiresAt: Type.Union([Type.Number(), Type.Null()]),
  /** The name of the token that created it. */
  createdBy: Type.String(),
});
export type TokenView = Static<typeof TokenView>;

export const TokenCreateRequest = Type.Object({
  name: TokenName,
  role: RoleSchema,
  /** Lifetime in ms; absent: no expiry. */
  ttlMs: Type.Optional(Type.Integer({ minimum: 1000 })),
}, { additionalProperties: false });
export type TokenCreateRequest = Static<typeof TokenCreateRequest>;

/** The answer to a create: the secret, shown this once and kept nowhere (only its hash is). */
export const TokenCreated = Type.Intersect([TokenView, Type.Object({ secret: Type.String() })]);
export type TokenCreated = Static<typeof TokenCreated>;

/** One request in the audit log: every change, and every request refused for its token. */
export const AuditEntry = Type.Object({
  /** Stream entry id (ms-seq), to page with `?before=`. */
  id: Type.String(),
  /** ms since the epoch. */
  at: Type.Number(),
  /** The token's name; '' when the request carried none that was valid. */
  token: Type.String(),
  role: Type.String(),
  method: Type.String(),
  /** The path asked for, without its query. */
  path: Type.String(),
  status: Type.Number(),
  /** The client's address. */
  from: Type.String(),
});
export type AuditEntry = Static<typeof AuditEntry>;
