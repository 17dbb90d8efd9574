/**
 * The Redis key layout of an OS Walk cluster: every key the code touches is named here.
 *
 * All keys of one cluster start with the same prefix, which carries a hash tag
 * (default `{oswalk}:`). Redis Cluster puts every key with the same tag in the same slot,
 * so each Lua script, which may touch any of these keys, runs unchanged on a cluster.
 * Tests give each case its own prefix (`{t-<random>}:`) and share one redis-server.
 *
 * | key                         | type   | holds |
 * | --------------------------- | ------ | ----- |
 * | obj:<Kind>                  | hash   | name → JSON of the applied manifest (Node, Mount, Job, Service) |
 * | nodes                       | set    | names of every node that ever registered |
 * | node:<name>                 | hash   | the node record (see NodeRecord in types.ts) |
 * | heartbeats                  | zset   | node name → time of its last heartbeat (ms) |
 * | leader                      | string | id of the control plane holding the leader lease (PX expiry) |
 * | events                      | pubsub | cluster events, JSON `{type, ...}`; a hint to wake up, never the truth |
 * | pfs:loc:<manifestHash>      | set    | names of the nodes holding every chunk of that PacketFS manifest (src/packetfs/locations.ts) |
 */
export interface Keyspace {
  prefix: string;
  objects(kind: string): string;
  nodes: string;
  node(name: string): string;
  heartbeats: string;
  leader: string;
  events: string;
  manifestLocations(manifestHash: string): string;
}

export const DEFAULT_PREFIX = '{oswalk}:';

export function keyspace(prefix: string = DEFAULT_PREFIX): Keyspace {
  if (!/^[^{}]*\{[^{}]+\}[^{}]*$/.test(prefix)) {
    throw new Error(`Redis key prefix "${prefix}" must contain exactly one {hash tag}`);
  }
  return {
    prefix,
    objects: (kind) => `${prefix}obj:${kind}`,
    nodes: `${prefix}nodes`,
    node: (name) => `${prefix}node:${name}`,
    heartbeats: `${prefix}heartbeats`,
    leader: `${prefix}leader`,
    events: `${prefix}events`,
    manifestLocations: (manifestHash) => `${prefix}pfs:loc:${manifestHash}`,
  };
}
