import { Redis } from 'ioredis';
import type { Logger } from '../util/log.js';
import type { ReplicaWaitStats } from '../metrics/index.js';

/**
 * Writes that must outlive a Redis failover (docs/ha.md).
 *
 * Redis replicates asynchronously: a write the primary acknowledged may not have reached its
 * replica when the primary dies, and Sentinel then promotes a replica without it. For most
 * writes that costs a retry (a placement, a heartbeat, a lease renewal are made again). For a
 * few it costs what OS Walk promises: a job's completion lost runs the job again, a claim lost
 * starts it twice, a file's commit lost loses a file whose close returned success. After those
 * steps the caller asks, with WAIT, that a replica holds everything the primary had when the
 * step ran (WAIT counts replicas that reached the client's last write's offset, and the offset
 * is the primary's one stream of writes, so the pieces written before the step — a file's
 * chunk list, say — come with it).
 *
 * WAIT is asked of the primary only while it has a replica (ROLE, read again every
 * ROLE_CHECK_MS and after every reconnect): a primary without one (a lone redis-server, or the
 * replica just promoted after a failover, before the old primary comes back as its replica)
 * would hold every WAIT for its whole timeout, and there is nothing to wait for. A WAIT that
 * times out with a replica connected (the replica lags by more than the timeout) lets the step
 * succeed, counted in `unreplicated` and logged: the step did happen; refusing it would stop
 * the cluster whenever its replica is slow, and an operator who prefers that sets Redis'
 * `min-replicas-to-write`, which makes the primary itself refuse writes without a replica.
 *
 * The one answer that is not "done": the step may have happened on a primary that is gone.
 * Either the connection was lost between the step and its WAIT (ioredis sends what had no reply
 * again on the new connection, possibly to a new primary, and the WAIT's answer then speaks for
 * that one), or no replica acknowledged the step (or the replica just left) and the sentinels
 * say they have replaced this primary, which the client then leaves (deposed(): a failover the
 * old primary outlives, whose clients keep writing to it until told). awaitReplica then returns
 * false and the caller makes sure of the step on the server it now talks to (a submit, a
 * completion or a commit is sent again: each is idempotent; a claim is kept only where its
 * lease can be renewed).
 *
 * OSWALK_REDIS_WAIT=off turns it off (never WAIT); OSWALK_REDIS_WAIT_MS (default 1000) is the
 * WAIT's timeout.
 */

const ROLE_CHECK_MS = 1000;
const DEFAULT_WAIT_MS = 1000;
/** At most one warning per connection this often. */
const WARN_EVERY_MS = 10_000;

/** How long a step whose primary may have been deposed waits for the sentinels to agree. */
const DEPOSED_CHECK_MS = 5000;

interface Tracked {
  /** Counts the connection's 'ready' events: a changed value means a new connection. */
  gen: number;
  replicas: number;
  checkedAt: number;
  checking?: Promise<number>;
  timeoutMs: number;
  log?: Logger;
  warnedAt: number;
  /** The last ROLE check found none where the one before found a replica, on this connection. */
  replicaLeft: boolean;
  /** The sentinels being asked whether this server is still the primary (deposed()). */
  deposedCheck?: Promise<boolean>;
}

const tracked = new WeakMap<Redis, Tracked>();

/** What this process's connections did: for the tests, and the metrics (addReplicaWaitSource). */
export const replicationStats: ReplicaWaitStats = {
  /** WAITs sent, and the ms they took in all. */
  waits: 0,
  waitMs: 0,
  /** Steps that no replica acknowledged within the timeout although one was connected. */
  unreplicated: 0,
  /** Steps done while the primary had no replica. */
  noReplica: 0,
  /**
   * Steps made sure of again on the server answering next: their connection was lost before
   * their WAIT answered, or the sentinels had replaced the primary they ran on.
   */
  uncertain: 0,
};

/** Called by connectRedis and duplicateRedis on every client they make. */
export function trackReplication(redis: Redis, log?: Logger): void {
  const mode = process.env.OSWALK_REDIS_WAIT ?? 'auto';
  if (mode !== 'auto' && mode !== 'off') throw new Error(`OSWALK_REDIS_WAIT must be auto or off, not "${mode}"`);
  if (mode === 'off') return;
  const timeoutMs = Number(process.env.OSWALK_REDIS_WAIT_MS ?? DEFAULT_WAIT_MS);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`OSWALK_REDIS_WAIT_MS must be a whole number of ms above 0, not "${process.env.OSWALK_REDIS_WAIT_MS}"`);
  const t: Tracked = { gen: 0, replicas: 0, checkedAt: -Infinity, timeoutMs, log, warnedAt: -Infinity, replicaLeft: false };
  redis.on('ready', () => {
    t.gen++;
    // Maybe another server now (a failover): its replicas are not the last one's.
    t.checkedAt = -Infinity;
    t.replicas = 0;
    t.replicaLeft = false;
  });
  tracked.set(redis, t);
}

/**
 * The connection's generation, read before a step whose WAIT follows (awaitReplica): a step
 * sent while the client is not connected waits in its offline queue for the next connection.
 */
export function connectionGeneration(redis: Redis): number {
  const t = tracked.get(redis);
  if (!t) return 0;
  return redis.status === 'ready' ? t.gen : t.gen + 1;
}

async function connectedReplicas(redis: Redis, t: Tracked): Promise<number> {
  if (performance.now() - t.checkedAt < ROLE_CHECK_MS) return t.replicas;
  t.checking ??= (async () => {
    try {
      const gen = t.gen;
      // ['master', offset, [[ip, port, offset], ...]]; a replica answers 'slave' and has none.
      const role = (await redis.call('ROLE')) as [string, number, unknown[]?];
      const replicas = role[0] === 'master' ? (role[2]?.length ?? 0) : 0;
      // Answered by the server of a connection made since: the step that asked learns so from
      // its generation, and the next one asks that server again.
      if (gen === t.gen) {
        if (replicas === 0 && t.replicas > 0) t.replicaLeft = true;
        t.replicas = replicas;
        t.checkedAt = performance.now();
      }
      return replicas;
    } finally {
      t.checking = undefined;
    }
  })();
  return t.checking;
}

/**
 * After a step that must outlive a failover, on the connection it ran on, with the generation
 * read before it: wait until a replica has it (see above). False when the connection changed
 * meanwhile, or the sentinels replaced the primary it ran on: the step's fate on the server
 * answering next is unknown, and the caller makes sure.
 */
export async function awaitReplica(redis: Redis, since: number): Promise<boolean> {
  const t = tracked.get(redis);
  if (!t) return true;
  const replicas = await connectedReplicas(redis, t);
  let acked = 0;
  if (replicas > 0) {
    const t0 = performance.now();
    acked = await redis.wait(1, t.timeoutMs);
    replicationStats.waits++;
    replicationStats.waitMs += performance.now() - t0;
  }
  // No replica has the step, and the primary may have been deposed while it ran: its replica
  // promoted, the clients not yet told. Asked of the sentinels: if so, the step is made sure of
  // on the new primary, as after a lost connection. Steps that end while the sentinels are
  // being asked wait for the answer too.
  let replaced = false;
  if (t.gen === since && acked < 1 && (replicas > 0 || t.replicaLeft || t.deposedCheck)) {
    t.replicaLeft = false;
    t.deposedCheck ??= deposed(redis).finally(() => {
      t.deposedCheck = undefined;
    });
    replaced = await t.deposedCheck;
    // Reconnect, once: the sentinels name the new primary.
    if (replaced && t.gen === since && redis.status === 'ready') {
      t.log?.warn('steps ran on a Redis primary the sentinels have replaced: they are made again on the new one');
      redis.disconnect(true);
    }
  }
  if (replaced || t.gen !== since) {
    replicationStats.uncertain++;
    return false;
  }
  if (replicas === 0) {
    replicationStats.noReplica++;
  } else if (acked < 1) {
    replicationStats.unreplicated++;
    // The replica may have gone: ask ROLE again before the next WAIT.
    t.checkedAt = -Infinity;
    if (t.log && performance.now() - t.warnedAt > WARN_EVERY_MS) {
      t.warnedAt = performance.now();
      t.log.warn({ timeoutMs: t.timeoutMs }, 'no Redis replica acknowledged a completion or commit in time: a failover now could lose it');
    }
  }
  return true;
}

/**
 * Whether a majority of the client's sentinels name another primary than the server it is on:
 * another address than the one the client reached (it reached what a sentinel named), or
 * another run id (a sentinel learns the new primary's run id only from its next INFO, seconds
 * after the switch). While a sentinel runs a failover of it, or only some name another, they
 * are asked again for up to DEPOSED_CHECK_MS: the one that ran the failover announces the
 * switch, the others learn it in a hello or two. No sentinel (a redis:// URL): false, as for
 * sentinels that do not answer.
 */
async function deposed(redis: Redis): Promise<boolean> {
  const o = redis.options;
  if (!o.sentinels?.length || !o.name) return false;
  const runId = /^run_id:(\w+)/m.exec(await redis.info('server'))?.[1];
  const address = `${redis.stream?.remoteAddress?.replace(/^::ffff:/, '')}:${redis.stream?.remotePort}`;
  const deadline = performance.now() + DEPOSED_CHECK_MS;
  for (;;) {
    const views = await Promise.all(o.sentinels.map(async (s) => {
      const c = new Redis({
        host: s.host, port: s.port, password: o.sentinelPassword, username: o.sentinelUsername, ...(o.enableTLSForSentinelMode ? { tls: o.sentinelTLS } : {}),
        lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableReadyCheck: false, commandTimeout: 1000,
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const flat = (await c.call('SENTINEL', 'MASTER', o.name!)) as string[];
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i], flat[i + 1]);
        const runid = f.get('runid') ?? '';
        return {
          another: `${f.get('ip')}:${f.get('port')}` !== address || (runid !== '' && runid !== runId),
          failover: (f.get('flags') ?? '').includes('failover_in_progress'),
        };
      } catch {
        return undefined;
      } finally {
        c.disconnect();
      }
    }));
    const answered = views.filter((v) => v !== undefined);
    const others = answered.filter((v) => v.another).length;
    const majority = others > o.sentinels.length / 2;
    // Replaced, and every sentinel that answers knows it: the client reconnects through the
    // first sentinel that answers, which must not send it back here.
    if (majority && others === answered.length) return true;
    const unsettled = others > 0 || answered.some((v) => v.failover);
    if (!unsettled || performance.now() > deadline) return majority;
    await new Promise((r) => setTimeout(r, 100));
  }
}
