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
 * | fs:p:<path>                 | string | every kept version of one path, framed `<id> <len> <record>` (format in src/state/lua/fsOp-1.lua) |
 * | fs:d:<dir path>             | hash   | a directory's visible children: name → type letter + id of the child's current version (`f12`, `d3`, `l1`) |
 * | fs:m:<manifest hash>        | string | a file's PacketFS chunk list (encodeChunkList), written once, shared by identical files |
 * | fs:events                   | pubsub | the path whose namespace entry changed (its parent's listing changed with it); a subtree root after a rename |
 * | pfs:loc:<manifestHash>      | set    | names of the nodes holding every chunk of that PacketFS manifest (src/packetfs/locations.ts) |
 *
 * The fsOp script reaches fs:p/fs:d keys of parents and subtrees it cannot know in advance; it builds
 * them from the prefix, so they stay in the prefix's slot.
 */
export interface Keyspace {
  prefix: string;
  objects(kind: string): string;
  nodes: string;
  node(name: string): string;
  heartbeats: string;
  leader: string;
  events: string;
  fsVersions(path: string): string;
  fsDir(path: string): string;
  fsManifest(hash: string): string;
  fsEvents: string;
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
    fsVersions: (path) => `${prefix}fs:p:${path}`,
    fsDir: (path) => `${prefix}fs:d:${path}`,
    fsManifest: (hash) => `${prefix}fs:m:${hash}`,
    fsEvents: `${prefix}fs:events`,
    manifestLocations: (manifestHash) => `${prefix}pfs:loc:${manifestHash}`,
  };
}
