import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keyspace } from '../state/keys.js';
import { listNodes } from '../state/nodes.js';
import { createLogger, type Logger } from '../util/log.js';
import type { ChunkFetcher } from './fetcher.js';
import { addManifestLocation, manifestLocations } from './locations.js';
import type { ChunkRef } from './store.js';

/** A Mount's replication rule: every file under `prefix` is held by `copies` nodes (or all ready nodes). */
export interface ReplicationRule {
  prefix: string;
  copies: number | 'all';
}

export interface ReplicateOptions {
  fetcher: ChunkFetcher;
  redis: Redis;
  ks: Keyspace;
  self: string;
  rules: readonly ReplicationRule[];
  /** The manifest hashes of the current files under a prefix (the fsmeta side supplies them). */
  manifestsUnder(prefix: string): AsyncIterable<string>;
  /** A manifest's chunk list, or undefined when it is gone (fsmeta's getManifest + decodeChunkList). */
  loadManifest(manifestHash: string): Promise<readonly ChunkRef[] | undefined>;
  /** Chunks fetched at once while pulling one manifest. Default 4. */
  concurrency?: number;
  log?: Logger;
}

export interface ReplicateResult {
  manifests: number;
  /** Manifests this node already held. */
  held: number;
  /** Manifests this node pulled and now holds. */
  pulled: number;
  pulledBytes: number;
  /** Manifests with enough holders that this node was not chosen for. */
  skipped: number;
  failed: number;
}

/** Rendezvous (highest-random-weight) score: every node ranks the candidates the same way. */
function score(manifest: string, node: string): string {
  return createHash('sha256').update(`${manifest}\0${node}`).digest('hex');
}

/**
 * One pass of pull-based replication, run periodically by each agent.
 *
 * For every manifest under a rule's prefix (the highest `copies` wins when rules overlap)
 * the ready holders are counted; if fewer than wanted, the missing holders are chosen among
 * the other ready nodes by rendezvous hashing of (manifest, node). Every agent computes the
 * same choice from the same Redis state, so they neither all pull the same file nor wait on
 * each other; an agent pulls only the manifests it was chosen for, and adds itself as a
 * location once every chunk is durable in its own area. A holder that goes down stops being
 * counted, so the next pass on some other node restores the number of copies.
 */
export async function replicate(opts: ReplicateOptions): Promise<ReplicateResult> {
  const log = opts.log ?? createLogger('packetfs-replicate', { node: opts.self });
  const res: ReplicateResult = { manifests: 0, held: 0, pulled: 0, pulledBytes: 0, skipped: 0, failed: 0 };
  const nodes = await listNodes(opts.redis, opts.ks);
  const ready = nodes.filter((n) => n.status === 'ready').map((n) => n.name);
  if (!ready.includes(opts.self)) {
    log.info({ status: nodes.find((n) => n.name === opts.self)?.status ?? 'unregistered' }, 'not ready; replication pass skipped');
    return res;
  }
  const wanted = new Map<string, number>();
  for (const rule of opts.rules) {
    const copies = rule.copies === 'all' ? ready.length : rule.copies;
    if (!Number.isInteger(copies) || copies < 1) throw new Error(`replication rule for ${rule.prefix}: copies must be a positive integer or "all" (got ${rule.copies})`);
    for await (const m of opts.manifestsUnder(rule.prefix)) wanted.set(m, Math.max(wanted.get(m) ?? 0, Math.min(copies, ready.length)));
  }
  for (const [manifest, copies] of wanted) {
    res.manifests++;
    const holders = (await manifestLocations(opts.redis, opts.ks, manifest)).filter((n) => ready.includes(n));
    if (holders.includes(opts.self)) {
      res.held++;
      continue;
    }
    const missing = copies - holders.length;
    const chosen = ready
      .filter((n) => !holders.includes(n))
      .sort((a, b) => (score(manifest, a) < score(manifest, b) ? 1 : -1))
      .slice(0, Math.max(0, missing));
    if (!chosen.includes(opts.self)) {
      res.skipped++;
      continue;
    }
    try {
      const chunks = await opts.loadManifest(manifest);
      if (!chunks) {
        res.skipped++;
        continue;
      }
      const queue = [...chunks];
      let bytes = 0;
      const worker = async (): Promise<void> => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          if ((await opts.fetcher.pull(c, manifest)) !== 'had') bytes += c.size;
        }
      };
      await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
      await addManifestLocation(opts.redis, opts.ks, manifest, opts.self);
      res.pulled++;
      res.pulledBytes += bytes;
      log.info({ manifest, chunks: chunks.length, bytes }, 'replicated manifest');
    } catch (err) {
      res.failed++;
      log.warn({ manifest, err: (err as Error).message }, 'replication of a manifest failed; next pass retries');
    }
  }
  return res;
}
