/**
 * PacketFS: file data as content-defined chunks named by SHA-256.
 * The public face other modules import from; see DESIGN.md ("PacketFS format").
 */
export { chunkStream, CutFinder, DEFAULT_CHUNKER, type Chunk, type ChunkerOptions } from './chunker.js';
export {
  ChunkStore,
  chunkDir,
  type ChunkArea,
  type ChunkRef,
  type ChunkStoreOptions,
  type GcOptions,
  type GcResult,
  type PutFileResult,
  type StoreStats,
} from './store.js';
export { encodeChunkList, decodeChunkList, chunkListHash, chunkOffsets } from './chunk-list.js';
export { addChunkListLocation, chunkListLocations } from './locations.js';
export {
  ChunkNotFoundError,
  ChunkUnavailableError,
  CorruptChunkError,
  FileChangedError,
  StoreWriteError,
  HASH_RE,
  checkHash,
} from './errors.js';
export { chunkRoutes, type ChunkRoutesOptions } from './routes.js';
export { ChunkFetcher, type ChunkFetcherOptions, type FetcherStats } from './fetcher.js';
export { ChunkReadPool } from './read-pool.js';
export { LiveChunker, type LiveFile } from './live-chunker.js';
export { replicate, storageHealth, Pace, type ReplicateOptions, type ReplicateResult } from './replicate.js';
export { wantedCopies, copiesIn, rankTargets, DEFAULT_POLICY, type CopyPolicy, type CopyTarget } from './copies.js';
export { CopyPusher, CopiesError, holdsCopies, type CopyPusherOptions } from './push.js';
export { storagePolicy, PolicyCache, type StoragePolicy } from './policy.js';
export { registerPacketfsMetrics, type ReplicationTotals } from './metrics.js';
