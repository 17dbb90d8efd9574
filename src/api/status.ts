/** GET /v1/status: the cluster at a glance, for `oswalk status` and the shell's prompt. */
import type { NodeRecord } from './nodes.js';

export interface ClusterStatus {
  nodes: NodeRecord[];
  /** Jobs by state, and `retrying` for those waiting out a retry's backoff (src/state/job-counts.ts). */
  jobs: Record<string, number>;
  /** Absent until a replication pass has run. */
  storage?: StorageHealth;
}

/** What the dashboard's live stream (GET /v1/events, event `cluster`) sends each second. */
export interface ClusterState extends ClusterStatus {
  /** ms since the epoch, this control plane's clock. */
  at: number;
  /** The id of the control plane that leads (schedules) now, if one does. */
  leader?: string;
}

/** What a replication pass sees of the whole cluster's files. */
export interface StorageCounts {
  /** Distinct file contents (chunk lists) in the tree, and their bytes. */
  chunkLists: number;
  bytes: number;
  /** Held by fewer live nodes than they want. */
  underFiles: number;
  underBytes: number;
  /** Held by no live node: unreadable until a holder is back. */
  lostFiles: number;
  lostBytes: number;
  /**
   * Per node being removed: the files (and bytes) it holds that no other node holds enough
   * copies of yet. At 0 in a pass that began after the removal, the node can go.
   */
  removing: Record<string, { files: number; bytes: number }>;
}

/** What the last replication pass saw (pfs:health), for `oswalk status`. */
export interface StorageHealth extends StorageCounts {
  /** ms since the epoch (Redis' clock) when that pass began, and the node that made it. */
  at: number;
  by: string;
}

