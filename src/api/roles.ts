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
 * Join tokens stand apart, each good for its own join and nothing else, as Docker Swarm's
 * worker and manager tokens are: `node` (an agent joins with it; also the role of a node's
 * certificate where a route takes one) and `control-plane` (another control plane joins with
 * it, and is given Redis' password and the CA's key). An admin may do both joins too: it can
 * read what either join hands out by other means already.
 */
export const JOIN_ROLES = ['node', 'control-plane'] as const;
export const TOKEN_ROLES = [...ROLES, ...JOIN_ROLES] as const;
export type Role = (typeof TOKEN_ROLES)[number];

function isJoinRole(r: Role): boolean {
  return (JOIN_ROLES as readonly Role[]).includes(r);
}

export function roleAllows(held: Role, needed: Role): boolean {
  if (isJoinRole(held) || isJoinRole(needed)) return held === needed || held === 'admin';
  return ROLES.indexOf(held as (typeof ROLES)[number]) >= ROLES.indexOf(needed as (typeof ROLES)[number]);
}

/** The name the cluster token (made by `oswalk cluster init`, an admin) goes by in the audit log. */
export const CLUSTER_TOKEN_NAME = 'cluster-token';
