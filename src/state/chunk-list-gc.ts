import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { FsKeyspace } from './keys.js';
import { allKeptVersions, allStoredChunkLists } from './fs-walk.js';
import { runScript, ScriptError } from './scripts.js';

/**
 * Chunk list garbage collection: deletes fs:m:<hash> (the chunk list) and pfs:loc:<hash> (its
 * holders) of chunk lists that no kept version names any more (pruned past the history bound),
 * which would otherwise pile up in Redis under file churn. The chunks on the nodes' disks are
 * collected by each node (ChunkStore.gc).
 *
 * A pass:
 *  1. begins: a new token, and fs:mrecent emptied down to it, in one step;
 *  2. reads every kept version (allReferencedChunkLists) into R;
 *  3. for each chunk list in fs:m not in R, runs gcChunkList-3.lua: in one step, deletes it and
 *     its locations unless fs:mrecent holds it; stops the pass if the token is gone from there.
 * Meanwhile every fs script step that writes a file version (commit, restore, rename) adds its
 * chunk list to fs:mrecent in that step, and a commit, the one op that brings a chunk list from
 * outside, fails with ESTALE in that step when fs:m no longer holds it.
 *
 * Why no version ever names a deleted chunk list. Say step 3 deletes M at time D while a version
 * V names M. A version is never changed, nor brought back once pruned, so V was written either
 *  - before the pass began: V then existed all the way from step 1 to D, so did its fs:p key,
 *    SCAN is bound to visit a key that exists for its whole walk, and M is in R; or
 *  - after it began, by a step that put M in fs:mrecent; only a newer pass empties that set,
 *    and it takes this pass's token with it, so gcChunkList stops the pass rather than delete.
 * Nor does a version write M after D: a commit finds fs:m:M gone and fails with ESTALE, and a
 * restore or rename copies M from a version that exists then, which (by induction) none does.
 *
 * The interleavings this covers:
 *  - a commit before the pass began whose version is pruned before step 2 reads its path:
 *    nothing names M and it goes. If the committer names M again later (the translator's
 *    memory of a file, the overlay's of content it stored), it gets ESTALE, puts M and its
 *    location again and retries once (translator.ts, overlay/commit.ts);
 *  - a commit during step 2 or 3: M is in fs:mrecent and stays this pass, named or not; the
 *    next pass decides afresh;
 *  - a commit after D, including one whose caller put M just before D: ESTALE, as above;
 *  - two passes at once (a leader change mid-pass): the newer one's step 1 drops the older
 *    one's token, so the older stops at its next deletion.
 * What it leaves: a node that finishes replicating M just after D adds pfs:loc:M back on its
 * own, a small set that stays until M is committed again.
 *
 * The same pass collects hard-linked files' inodes (fs:p:#<n> and fs:in:<n>, lua/include/fs.lua) that no
 * kept version names: a name's `hardlink` version names its inode, and every step that writes
 * one marks `#<n>` in fs:mrecent, so the argument above holds with "inode" for "chunk list" (a
 * commit through a name reaches the inode through a current, and so kept, version). The
 * chunk lists an inode's versions name were read in step 2, so they go in the next pass.
 */

export interface ChunkListGcResult {
  /** Distinct chunk lists the kept versions name. */
  referenced: number;
  /** Unreferenced chunk lists deleted (fs:m and pfs:loc). */
  deleted: number;
  /** Inodes of hard-linked files no kept version names any more, deleted. */
  inodesDeleted: number;
  /** A newer pass began and this one stopped early. */
  superseded: boolean;
}

/** Step 1: returns the pass's token. */
async function beginChunkListGc(redis: Redis, ks: FsKeyspace): Promise<string> {
  // never 32 bytes long, so never a chunk list the fs scripts mark
  const token = `gc:${randomBytes(8).toString('hex')}`;
  const res = await redis.multi().unlink(ks.fsChunkListsRecent).sadd(ks.fsChunkListsRecent, token).exec();
  const failed = res?.find(([err]) => err);
  if (failed) throw failed[0];
  return token;
}

/**
 * Step 3 for one chunk list: 1 deleted, 0 kept (a version took it during the pass) or already
 * gone; a ScriptError SUPERSEDED when a newer pass has begun.
 */
function deleteUnreferencedChunkList(redis: Redis, ks: FsKeyspace, token: string, hash: string): Promise<number> {
  return runScript<number>(
    redis, 'gcChunkList', [ks.fsChunkListsRecent, ks.fsChunkList(hash), ks.chunkListLocations(hash)], [token, Buffer.from(hash, 'hex')],
  );
}

/** Step 3 for one inode of a hard-linked file, as for a chunk list. */
function deleteUnreferencedInode(redis: Redis, ks: FsKeyspace, token: string, inode: string): Promise<number> {
  return runScript<number>(redis, 'gcChunkList', [ks.fsChunkListsRecent, ks.fsVersions(`#${inode}`), ks.fsInodeNames(inode)], [token, `#${inode}`]);
}

/** A newer pass began, so this one stops with what it did; any other failure is thrown on. */
function superseded(err: unknown, res: ChunkListGcResult): ChunkListGcResult {
  if (err instanceof ScriptError && err.code === 'SUPERSEDED') return { ...res, superseded: true };
  throw err;
}

/**
 * One pass. It reads the whole namespace and holds every referenced hash in memory, so it is
 * for an occasional background run (the leader's, hourly). `signal` stops it between steps.
 */
export async function collectChunkLists(redis: Redis, ks: FsKeyspace, signal?: AbortSignal): Promise<ChunkListGcResult> {
  const token = await beginChunkListGc(redis, ks);
  const referenced = new Set<string>();
  /** Inodes stored, and those a kept version names. */
  const inodes: string[] = [];
  const linked = new Set<string>();
  for await (const { path, versions } of allKeptVersions(redis, ks)) {
    signal?.throwIfAborted();
    if (path.startsWith('#')) inodes.push(path.slice(1));
    for (const v of versions) {
      if (v.chunkListHash) referenced.add(v.chunkListHash);
      if (v.type === 'hardlink' && v.inode) linked.add(v.inode);
    }
  }
  const res: ChunkListGcResult = { referenced: referenced.size, deleted: 0, inodesDeleted: 0, superseded: false };
  for (const inode of inodes) {
    if (linked.has(inode)) continue;
    signal?.throwIfAborted();
    try {
      res.inodesDeleted += await deleteUnreferencedInode(redis, ks, token, inode);
    } catch (err) {
      return superseded(err, res);
    }
  }
  for await (const m of allStoredChunkLists(redis, ks)) {
    if (referenced.has(m)) continue;
    signal?.throwIfAborted();
    try {
      res.deleted += await deleteUnreferencedChunkList(redis, ks, token, m);
    } catch (err) {
      return superseded(err, res);
    }
  }
  return res;
}
