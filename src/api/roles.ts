/**
 * The roles a token carries, apart from the wire schemas of src/api/auth.ts: the CLI's quick
 * commands import these, and must not pay for loading the schema library (about 230 ms).
 */

/**
 * Each role may do what the ones before it may:
 * - read-only: look (status, get, describe, logs, versions);
 * - operator: change the workload (run, apply, delete, cancel, stdin, drain, uncordon, restore);
 * - admin: change who and what belongs to the cluster (tokens, node removal, agents joining,
 *   the audit log).
 */
export const ROLES = ['read-only', 'operator', 'admin'] as const;
/**
 * `node` stands apart: a join token's role (an agent joins with it, and may do nothing else),
 * and the role of a node's certificate where a route takes one. An admin may join agents too.
 */
export const TOKEN_ROLES = [...ROLES, 'node'] as const;
export type Role = (typeof TOKEN_ROLES)[number];

export function roleAllows(held: Role, needed: Role): boolean {
  if (held === 'node' || needed === 'node') return held === needed || held === 'admin';
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** The name the cluster token (made by `oswalk cluster init`, an admin) goes by in the audit log. */
export const CLUSTER_TOKEN_NAME = 'cluster-token';
