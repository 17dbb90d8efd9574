/**
 * The Redis key layout of an OS Walk cluster: every key the code touches is named here.
 *
 * The keys of a cluster's state (Keyspace) start with one prefix, which carries a hash tag
 * (default `{oswalk}:`); its filesystem's (FsKeyspace) with another (below). Redis Cluster puts
 * every key with the same tag in the same slot, so each Lua script, which touches keys of one
 * of the two sets only, runs unchanged on a cluster.
 * Tests give each case its own prefix (`{t-<random>}:`) and share one redis-server.
 *
 * | key                         | type   | holds |
 * | --------------------------- | ------ | ----- |
 * | obj:<Kind>                  | hash   | name → JSON of the applied manifest (Node, Mount, Job, Service) |
 * | nodes                       | set    | names of every node that ever registered |
 * | node:<name>                 | hash   | the node record (see NodeRecord in types.ts; `removing`/`removingSince` while `oswalk node remove` runs) |
 * | heartbeats                  | zset   | node name → time of its last heartbeat (ms) |
 * | nodehist:<node>             | list   | the node's load, a sample a minute, newest first, the last 60: "<ms> <load1> <usedCpus> <memoryUsedBytes>" (heartbeat-4.lua) |
 * | nodes:room                  | zset   | node that can take a job now (ready, its mount up) → its free milliCPUs (capacity less reservations); kept by every step that changes those (lua/include/room.lua) |
 * | cluster                     | hash   | id (random, set by the first agent or control plane: marks what this cluster creates on a host), nodeTimeoutMs (the leading monitor's), sweepCursor (where the monitor's sweep of the nodes is: monitor-2.lua), fsPrefix (the prefix of the cluster's files, FsKeyspace: set once, fs-layout.ts) |
 * | leader                      | string | id of the control plane holding the leader lease (PX expiry) |
 * | job:<id>                    | hash   | one job record (see JobRecord in jobs.ts); spec is JSON |
 * | joblog:<id>                 | stream | the job's output, entries {t: out/err/sys/end, d: data, a: attempt}, byte-capped (tail kept); the end line only for a job someone followed (field follow of its record) |
 * | joblogsz:<id>               | list   | `<entry id> <bytes>` of each output entry of joblog:<id> still kept, oldest first: what appendLog-1.lua trims by, without reading the output |
 * | jobclient:<id>              | string | a session's client (spec.tty or spec.attachKey) followed it, or was attached to its node, lately (PX TERMINAL_CLIENT_GRACE_MS, renewed while one follows); gone: the monitor hangs the session up |
 * | jobs:tty                    | set    | ids of sessions (spec.tty or spec.attachKey) not yet seen ended, which the monitor watches for their client |
 * | jobin:<id>                  | stream | what `oswalk run -i` sends to the job's standard input, entries {d: data}, {w: "ROWS COLS"} then {eof: 1}; kept whole up to LIMITS.stdinReplayBytes so every attempt reads it from the start, past that trimmed as the job reads (job fields stdinBytes, stdinRead, stdinPiped: job-streams.ts) |
 * | jobs:all                    | zset   | job id → creation time (ms): the listing order |
 * | jobs:done                   | zset   | finished job id → when it ended (ms): the monitor deletes the oldest records past MAX_FINISHED_JOBS (jobs.ts), and drops ids older than their 7-day expiry |
 * | jobs:pending                | zset   | pending job id → (1000 - priority)·10¹² + submit sequence: highest priority, then oldest first |
 * | jobs:delayed                | zset   | job id waiting out a retry backoff → time (ms) it may be pending again |
 * | jobs:seq                    | string | submit sequence counter (age order within a priority) |
 * | jobs:fence                  | string | fencing-token counter; every claim and requeue takes a new token |
 * | jobs:finished               | hash   | terminal state → how many jobs ended in it (for status; never decremented) |
 * | jobs:results                | stream | append-only audit {id, attempt, state, exitCode}: every job's end, and every attempt that did not end its job (state attempt-ended) (MAXLEN ~100k) |
 * | leases:<node>               | zset   | id of a job running on the node → its lease expiry (ms) |
 * | nodequeue:<node>            | zset   | ids placed on the node and not yet claimed by its agent → placement time (with leases:<node>, every job on the node) |
 * | alloc:<node>                | hash   | what is reserved on the node: milliCpus, memoryBytes, jobs |
 * | owner:<Kind>:<name>         | hash   | status of a Job/Service manifest's records: completions/replicas, succeeded, failed, phase, specHash |
 * | owner:<Kind>:<name>:jobs    | set    | ids of the job records created for that manifest |
 * | owners:<Kind>               | set    | names of the Job/Service manifests that have records |
 * | wake:scheduler              | list   | at most one token; BLPOP'd by the leader's scheduling loop (submit/free capacity push it) |
 * | wake:node:<node>            | list   | at most one token; BLPOP'd by the node's agent when jobs are placed there |
 * | wake:node:<node>:stop       | list   | at most one token; pushed when a job there must stop (cancel, drain), so the agent renews its leases at once |
 * | tokens                      | hash   | the API's user tokens: SHA-256 of the secret (hex) → JSON {name, role, createdAt, expiresAt (0: never), createdBy}; expired ones dropped by the next create or revoke (src/state/tokens.ts) |
 * | nodecerts:<node>            | zset   | serial (lowercase hex, no leading zeros) → notAfter (ms) of each node certificate issued to the node and not yet expired nor revoked (src/state/certs.ts) |
 * | certs:revoked               | hash   | serial → JSON {node, notAfter, revokedAt, by} of each node certificate revoked before its end; dropped once expired, by the next revocation |
 * | certs:seq                   | string | counter bumped by every change of certs:revoked: agents poll it each second and read the list again when it moves |
 * | session:<sha256 of its id>  | string | a dashboard session (src/state/sessions.ts): JSON {name, role, tokenHash ('' for the cluster token)}, expiring (PX) with the session |
 * | audit                       | stream | the audit log: every change made through the API and every request refused for its token, {token (name), role, method, path, status, from} (MAXLEN ~100k) |
 *
 * Lua scripts that reach keys only known at run time (a job's node, its owner) build them
 * from the prefix with the same names: src/state/lua/include/keys.lua mirrors this table (the
 * lock table's keys: include/locks.lua).
 *
 * The filesystem's keys (FsKeyspace, below) have a prefix of their own, with a hash tag of their
 * own (fsPrefixFor: `{oswalk-fs}:`), and may live in another Redis deployment (`--fs-redis`):
 * the namespace grows with files, the rest with nodes and jobs, and no script touches both.
 * fs-layout.ts says which prefix and which Redis a cluster's files are under.
 *
 * | key                         | type   | holds |
 * | --------------------------- | ------ | ----- |
 * | fs:cluster                  | string | id of the cluster whose files these are (the id of its cluster hash): a second cluster given the same fs Redis and prefix is refused |
 * | fs:p:<path>                 | string | every kept version of one path, framed `<id> <len> <record>` (format in src/state/lua/include/fs.lua) |
 * | fs:p:#<n>                   | string | the same for the hard-linked file with inode number n, whose names hold `h` versions naming it; deleted by chunk list GC once no kept version names it |
 * | fs:in:<n>                   | set    | the paths given as names to inode n (its link count: those still current links to it) |
 * | fs:ino                      | string | the last inode number link(2) gave out |
 * | fs:d:<dir path>             | hash   | a directory's visible children: name → type letter + id of the child's current version (`f12`, `d3`, `l1`) |
 * | fs:m:<chunk list hash>      | string | a file's PacketFS chunk list (encodeChunkList), written once, shared by identical files; deleted by chunk list GC once no version names it (src/state/chunk-list-gc.ts) |
 * | fs:dt                       | hash   | directory path → ns when a name last came or went in it (shown as its mtime when later than its version's; a commit of the directory clears it) |
 * | fs:at                       | hash   | path (a hard-linked file: `#<n>`) → ns of the last read that moved its atime (relatime; shown when later than its version's atime; dropped by its next version, which carries it) |
 * | fs:st                       | hash   | path (a hard-linked file: `#<n>`) → the st_ino it keeps, decimal: what its entry showed before a rename or the link that made it an inode (without one, a mount numbers an entry by a hash of its path) |
 * | fs:dn                       | hash   | directory path → how many of its names are directories (its st_nlink is 2 more); counted at the first get, then kept by every change of its names |
 * | fs:mrecent                  | set    | the chunk list hashes (32 raw bytes each) and inodes (`#<n>`) versions took since the running chunk list GC pass began, plus that pass's token |
 * | fs:events                   | pubsub | the path whose namespace entry changed (its parent's listing changed with it); a subtree root after a rename; `\0<atime> <path>`: only that path's atime moved, to that (a read) |
 * | pfs:loc:<chunkListHash>     | set    | names of the nodes holding every chunk of that chunk list (src/packetfs/locations.ts) |
 * | pfs:health                  | hash   | what the last replication pass saw of the cluster's files: at, by, manifests (distinct chunk lists: the field keeps its first name), bytes, underFiles/Bytes (fewer live copies than wanted), lostFiles/Bytes (none live), removing (JSON: node being removed → files and bytes only it holds enough of) (src/packetfs/replicate.ts) |
 * | lk:sessions                 | zset   | lock session (one FS process's run on one node, e.g. `node1:ab12cd`) → its lease deadline (ms, Redis' clock); past it the session is dead and its locks and waits go (src/state/locks.ts) |
 * | lk:s:<session>              | set    | `p:<path>` / `f:<path>`: where the session has POSIX / flock locks or waits (so dropping a dead session is cheap) |
 * | lk:p:<path>                 | hash   | POSIX record locks: owner (`<session>/<kernel lock owner>`) → `<pid>\|r,0,9;w,20,inf` (sorted, disjoint, end inclusive) |
 * | lk:f:<path>                 | hash   | flock locks: owner → `<pid>\|sh` or `<pid>\|ex` |
 * | lk:pq:<path>                | zset   | queued F_SETLKW requests `<r\|w>\|<start>\|<end>\|<owner>` → arrival number (served in order) |
 * | lk:fq:<path>                | zset   | queued blocking flock requests `<sh\|ex>\|<owner>` → arrival number |
 * | lk:pw                       | hash   | waiting POSIX owner → `<type>\|<start>\|<end>\|<path>` of its latest queued request (deadlock detection) |
 * | lk:seq                      | string | arrival counter of the lock wait queues |
 * | lk:wake                     | pubsub | a path where a lock or wait went away (unlock, cancel, release, w→r, a dead session dropped): its waiters retry |
 *
 * The fs scripts (src/state/lua/fs*-1.lua) reach fs:p/fs:d keys of parents and subtrees they
 * cannot know in advance; they build them from the prefix (lua/include/keys.lua), so they stay in
 * the prefix's slot.
 */
export interface Keyspace {
  prefix: string;
  objects(kind: string): string;
  nodes: string;
  nodesRoom: string;
  node(name: string): string;
  heartbeats: string;
  nodeHistory(node: string): string;
  cluster: string;
  leader: string;
  job(id: string): string;
  jobLog(id: string): string;
  jobStdin(id: string): string;
  jobClient(id: string): string;
  jobsTty: string;
  jobsAll: string;
  jobsDone: string;
  jobsPending: string;
  jobsDelayed: string;
  jobsResults: string;
  jobsFinished: string;
  nodeLeases(node: string): string;
  nodeQueue(node: string): string;
  nodeAlloc(node: string): string;
  owner(kind: string, name: string): string;
  ownerJobs(kind: string, name: string): string;
  owners(kind: string): string;
  schedulerWake: string;
  nodeWake(node: string): string;
  nodeStopWake(node: string): string;
  tokens: string;
  nodeCerts(node: string): string;
  revokedCerts: string;
  revokedCertsSeq: string;
  session(idHash: string): string;
  audit: string;
}

/** The filesystem's keys: the namespace, chunk lists and their locations, the lock table (fsKeyspace). */
export interface FsKeyspace {
  prefix: string;
  /** id of the cluster whose files these are (clusterId), set by the first to open them (openFs in fs-layout.ts). */
  fsOwner: string;
  fsVersions(path: string): string;
  fsInodeNames(inode: string): string;
  fsDir(path: string): string;
  fsChunkList(hash: string): string;
  fsChunkListsRecent: string;
  fsEvents: string;
  chunkListLocations(chunkListHash: string): string;
  storageHealth: string;
  lockSessions: string;
  lockSession(session: string): string;
  posixLocks(path: string): string;
  flockLocks(path: string): string;
  posixWaiters(path: string): string;
  flockWaiters(path: string): string;
  posixWaiting: string;
  lockSeq: string;
  lockWake: string;
}

export const DEFAULT_PREFIX = '{oswalk}:';

function checkPrefix(prefix: string): void {
  if (!/^[^{}]*\{[^{}]+\}[^{}]*$/.test(prefix)) {
    throw new Error(`Redis key prefix "${prefix}" must contain exactly one {hash tag}`);
  }
}

/**
 * The prefix of a new cluster's filesystem keys: the cluster's with `-fs` added to its hash tag
 * (`{oswalk}:` → `{oswalk-fs}:`), so that a Redis Cluster may keep them on another shard than
 * the jobs'. A cluster made before the two were apart keeps them under its own (fs-layout.ts).
 */
export function fsPrefixFor(prefix: string): string {
  checkPrefix(prefix);
  return prefix.replace(/\{([^{}]+)\}/, '{$1-fs}');
}

export function fsKeyspace(prefix: string): FsKeyspace {
  checkPrefix(prefix);
  return {
    prefix,
    fsOwner: `${prefix}fs:cluster`,
    fsVersions: (path) => `${prefix}fs:p:${path}`,
    fsInodeNames: (inode) => `${prefix}fs:in:${inode}`,
    fsDir: (path) => `${prefix}fs:d:${path}`,
    fsChunkList: (hash) => `${prefix}fs:m:${hash}`,
    fsChunkListsRecent: `${prefix}fs:mrecent`,
    fsEvents: `${prefix}fs:events`,
    chunkListLocations: (chunkListHash) => `${prefix}pfs:loc:${chunkListHash}`,
    storageHealth: `${prefix}pfs:health`,
    lockSessions: `${prefix}lk:sessions`,
    lockSession: (session) => `${prefix}lk:s:${session}`,
    posixLocks: (path) => `${prefix}lk:p:${path}`,
    flockLocks: (path) => `${prefix}lk:f:${path}`,
    posixWaiters: (path) => `${prefix}lk:pq:${path}`,
    flockWaiters: (path) => `${prefix}lk:fq:${path}`,
    posixWaiting: `${prefix}lk:pw`,
    lockSeq: `${prefix}lk:seq`,
    lockWake: `${prefix}lk:wake`,
  };
}

export function keyspace(prefix: string = DEFAULT_PREFIX): Keyspace {
  checkPrefix(prefix);
  return {
    prefix,
    objects: (kind) => `${prefix}obj:${kind}`,
    nodes: `${prefix}nodes`,
    nodesRoom: `${prefix}nodes:room`,
    node: (name) => `${prefix}node:${name}`,
    heartbeats: `${prefix}heartbeats`,
    nodeHistory: (node) => `${prefix}nodehist:${node}`,
    cluster: `${prefix}cluster`,
    leader: `${prefix}leader`,
    job: (id) => `${prefix}job:${id}`,
    jobLog: (id) => `${prefix}joblog:${id}`,
    jobStdin: (id) => `${prefix}jobin:${id}`,
    jobClient: (id) => `${prefix}jobclient:${id}`,
    jobsTty: `${prefix}jobs:tty`,
    jobsAll: `${prefix}jobs:all`,
    jobsDone: `${prefix}jobs:done`,
    jobsPending: `${prefix}jobs:pending`,
    jobsDelayed: `${prefix}jobs:delayed`,
    jobsResults: `${prefix}jobs:results`,
    jobsFinished: `${prefix}jobs:finished`,
    nodeLeases: (node) => `${prefix}leases:${node}`,
    nodeQueue: (node) => `${prefix}nodequeue:${node}`,
    nodeAlloc: (node) => `${prefix}alloc:${node}`,
    owner: (kind, name) => `${prefix}owner:${kind}:${name}`,
    ownerJobs: (kind, name) => `${prefix}owner:${kind}:${name}:jobs`,
    owners: (kind) => `${prefix}owners:${kind}`,
    schedulerWake: `${prefix}wake:scheduler`,
    nodeWake: (node) => `${prefix}wake:node:${node}`,
    nodeStopWake: (node) => `${prefix}wake:node:${node}:stop`,
    tokens: `${prefix}tokens`,
    nodeCerts: (node) => `${prefix}nodecerts:${node}`,
    revokedCerts: `${prefix}certs:revoked`,
    revokedCertsSeq: `${prefix}certs:seq`,
    session: (idHash) => `${prefix}session:${idHash}`,
    audit: `${prefix}audit`,
  };
}
