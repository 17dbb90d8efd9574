import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from '../state/redis.js';
import { Counter, type Registry } from 'prom-client';
import type { Keyspace } from '../state/keys.js';
import { collectManifests } from '../state/manifest-gc.js';
import type { Logger } from '../util/log.js';

/**
 * The leader's manifest garbage collection (src/state/manifest-gc.ts): a pass every interval
 * (default an hour) while this control plane holds the lease. A pass reads the whole namespace,
 * so it runs rarely; what it collects only costs memory meanwhile.
 */
export function startManifestGc(opts: { redis: Redis; ks: Keyspace; log: Logger; registry: Registry; isLeader: () => boolean; intervalMs?: number }): { stop(): Promise<void> } {
  const { redis, ks, log, isLeader } = opts;
  const interval = opts.intervalMs ?? 3_600_000;
  const deletedTotal = new Counter({
    name: 'oswalk_fs_manifests_deleted_total',
    help: 'File manifests (chunk list and holders) no version names any more, deleted from Redis by manifest garbage collection.',
    registers: [opts.registry],
  });
  const stopping = new AbortController();
  const { signal } = stopping;

  const pass = async (): Promise<void> => {
    const started = Date.now();
    try {
      const res = await collectManifests(redis, ks, signal);
      deletedTotal.inc(res.deleted);
      log.info({ ...res, ms: Date.now() - started }, 'manifest garbage collection pass');
    } catch (err) {
      if (!signal.aborted) log.warn({ err }, 'manifest garbage collection pass failed; the next one retries');
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
