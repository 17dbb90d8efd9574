import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, type Registry } from 'prom-client';
import type { FsState } from '../state/fs-layout.js';
import { collectChunkLists } from '../state/chunk-list-gc.js';
import type { Logger } from '../util/log.js';

/**
 * The leader's chunk list garbage collection (src/state/chunk-list-gc.ts): a pass every interval
 * (default an hour) while this control plane holds the lease. A pass reads the whole namespace,
 * so it runs rarely; what it collects only costs memory meanwhile.
 */
export function startChunkListGc(opts: { fs: FsState; log: Logger; registry: Registry; isLeader: () => boolean; intervalMs?: number }): { stop(): Promise<void> } {
  const { fs, log, isLeader } = opts;
  const interval = opts.intervalMs ?? 3_600_000;
  const deletedTotal = new Counter({
    name: 'oswalk_fs_chunk_lists_deleted_total',
    help: 'Chunk lists of files (and their holders) no version names any more, deleted from Redis by chunk list garbage collection.',
    registers: [opts.registry],
  });
  const stopping = new AbortController();
  const { signal } = stopping;

  const pass = async (): Promise<void> => {
    const started = Date.now();
    try {
      const res = await collectChunkLists(fs.redis, fs.ks, signal);
      deletedTotal.inc(res.deleted);
      log.info({ ...res, ms: Date.now() - started }, 'chunk list garbage collection pass');
    } catch (err) {
      if (!signal.aborted) log.warn({ err }, 'chunk list garbage collection pass failed; the next one retries');
    }
  };
  const done = (async () => {
    while (!signal.aborted) {
      // rejects only when stopped
      await sleep(interval, undefined, { signal }).catch(() => undefined);
      if (!signal.aborted && isLeader()) await pass();
    }
  })();
  return {
    async stop() {
      stopping.abort();
      await done;
    },
  };
}
