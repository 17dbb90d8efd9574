import { Redis, type RedisOptions } from 'ioredis';
import { readFileSync } from 'node:fs';
import type { Logger } from '../util/log.js';
import { trackReplication } from './replication.js';

/**
 * The client's type for the rest of OS Walk: only src/state imports ioredis
 * (.dependency-cruiser.cjs); the others take a client from connectRedis() and its type from here.
 */
export type { Redis };

/**
 * Connect to Redis from a URL:
 *  - `redis://[:password@]host:port[/db]` and `rediss://…` (TLS) as ioredis reads them;
 *  - `redis+sentinel://[:password@]host1:port1,host2:port2/masterName[/db]` for Sentinel, and
 *    `rediss+sentinel://…` for Sentinel with TLS to the Sentinels and to the primary alike (a
 *    Sentinel hands out the primary's address, and the password goes to the primary: neither
 *    may cross the network in clear text).
 * A rediss:// server's certificate, and rediss+sentinel://'s Sentinels' and primary's, must be
 * signed by the CA of OSWALK_REDIS_CA_CERT, else of OSWALK_CA_CERT (the cluster CA). Anything else ioredis can do (client certificates, ACL
 * users, timeouts) comes from a JSON file named by OSWALK_REDIS_OPTIONS, merged over that.
 *
 * Commands never fail because Redis is briefly away: they wait in ioredis' offline
 * queue and the client reconnects for ever with a capped backoff, so a Redis restart
 * costs latency, not work (the same choice BullMQ makes for its workers). Behind Sentinel the
 * same holds across a failover: the client asks the sentinels for the primary on every
 * reconnect, checks the role of what it reached, and sends again what had no reply
 * (docs/ha.md says what a failover can lose, and replication.ts what waits for a replica).
 */
export function connectRedis(url: string, extra: RedisOptions = {}, log?: Logger): Redis {
  const client = createClient(url, extra);
  // ioredis reconnects by itself; an error event is news for the log, not a crash.
  let lastLogged = 0;
  client.on('error', (err: Error) => {
    if (!log || Date.now() - lastLogged < 5000) return;
    lastLogged = Date.now();
    log.warn({ err: err.message }, 'Redis connection error; reconnecting');
  });
  trackReplication(client, log);
  return client;
}

/**
 * A second connection like `redis` (for blocking reads and subscriptions). duplicate() copies
 * no listeners, and an ioredis client without an 'error' listener prints every failed
 * reconnect as an unhandled error event; it reconnects by itself, and the original logs.
 */
export function duplicateRedis(redis: Redis): Redis {
  const d = redis.duplicate();
  d.on('error', () => undefined);
  trackReplication(d);
  return d;
}

/** A connection of BlockingReaders', and its client id (for CLIENT UNBLOCK). */
export interface BlockingReader { conn: Redis; id: number }

/**
 * Connections for blocking reads (XREAD BLOCK), kept between uses. A new connection costs a
 * connect and four round trips (HELLO with AUTH, CLIENT SETINFO twice, the ready check) before
 * its first read, on every `oswalk run` and shell command twice over: the control plane's
 * follow of its output, the agent's pump of its input. A read given up early is cut short by
 * CLIENT UNBLOCK, so that its connection can serve the next taker at once.
 */
export class BlockingReaders {
  private readonly idle: BlockingReader[] = [];
  private closed = false;
  /**
   * Connections that lost their server once: ioredis reconnects them under a new client id, so
   * the one taken is stale (an UNBLOCK by it could cut another client's read short).
   */
  private readonly broken = new WeakSet<Redis>();

  constructor(private readonly redis: Redis, private readonly keep = 16) {}

  async take(): Promise<BlockingReader> {
    for (let r = this.idle.pop(); r; r = this.idle.pop()) {
      if (this.sound(r)) return r;
      r.conn.disconnect();
    }
    const conn = duplicateRedis(this.redis);
    conn.once('close', () => this.broken.add(conn));
    try {
      return { conn, id: Number(await conn.client('ID')) };
    } catch (err) {
      conn.disconnect();
      throw err;
    }
  }

  /** Cut r's blocking read short: it returns no entries. */
  async unblock(r: BlockingReader): Promise<void> {
    if (!this.broken.has(r.conn)) await this.redis.client('UNBLOCK', r.id).catch(() => undefined);
  }

  /** Done with r, whose last read has returned: kept for the next taker while sound and few are idle. */
  give(r: BlockingReader): void {
    if (!this.closed && this.sound(r) && this.idle.length < this.keep) this.idle.push(r);
    else r.conn.disconnect();
  }

  private sound(r: BlockingReader): boolean {
    return r.conn.status === 'ready' && !this.broken.has(r.conn);
  }

  /** Disconnect the idle connections, and each given back from now on. */
  close(): void {
    this.closed = true;
    for (const r of this.idle.splice(0)) r.conn.disconnect();
  }
}

/**
 * Call onMessage with every message published on channel, over a connection of its own (as
 * subscribers must); the returned function unsubscribes and closes it. Messages published while
 * that connection is down are lost: callers have a way to catch up (a resync, a retry timer).
 */
export async function subscribeChannel(redis: Redis, channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
  const sub = duplicateRedis(redis);
  sub.on('message', (ch: string, message: string) => {
    if (ch === channel) onMessage(message);
  });
  await sub.subscribe(channel);
  return async () => {
    sub.disconnect();
  };
}

/**
 * Wait until a redis-server that is starting answers at url: refused connections are retried
 * every 50 ms, 100 times, unless `failed` (the server exited, say) rejects first.
 */
export async function waitForRedis(url: string, failed: Promise<never>): Promise<void> {
  const probe = new Redis(url, { retryStrategy: (n) => (n > 100 ? null : 50), maxRetriesPerRequest: null });
  // Refused connections are expected until redis-server listens; the retries handle them.
  probe.on('error', () => undefined);
  try {
    await Promise.race([probe.ping(), failed]);
  } finally {
    probe.disconnect();
  }
}

function createClient(url: string, extra: RedisOptions): Redis {
  const base: RedisOptions = {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    // A replica (a primary demoted by a failover it outlived) or a server loading its data
    // refused the command without running it: reconnect (behind Sentinel, to the primary) and
    // send it again (2), rather than fail it (true).
    reconnectOnError: (err) => (err.message.startsWith('READONLY') || err.message.startsWith('LOADING') ? 2 : false),
    lazyConnect: false,
  };
  const fileOptions = process.env.OSWALK_REDIS_OPTIONS
    ? (JSON.parse(readFileSync(process.env.OSWALK_REDIS_OPTIONS, 'utf8')) as RedisOptions)
    : {};
  if (/^rediss?\+sentinel:\/\//.test(url)) {
    const tls = url.startsWith('rediss+') ? sentinelTls(redisCa()) : {};
    // failoverDetector: told of a failover by the sentinels (+switch-master), the client leaves
    // a primary that is still up but demoted (a partition healed, a manual failover) at once,
    // rather than at its first write refused READONLY (reconnectOnError above).
    return new Redis({ ...base, failoverDetector: true, ...parseSentinelUrl(url), ...tls, ...fileOptions, ...extra });
  }
  if (!/^rediss?:\/\//.test(url)) {
    throw new Error(`Redis URL "${url}" must start with redis://, rediss://, redis+sentinel:// or rediss+sentinel://`);
  }
  const ca = url.startsWith('rediss://') ? redisCa() : undefined;
  return new Redis(url, { ...base, ...(ca ? { tls: { ca } } : {}), ...fileOptions, ...extra });
}

/**
 * The CA a rediss:// server's certificate must be signed by: OSWALK_REDIS_CA_CERT, else the
 * cluster CA (OSWALK_CA_CERT), which signs Redis' certificate where OS Walk makes one (compose);
 * neither: the system's CAs, as ioredis does by itself.
 */
function redisCa(): string | undefined {
  const file = process.env.OSWALK_REDIS_CA_CERT || process.env.OSWALK_CA_CERT;
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`the CA for Redis over TLS, ${file} (${process.env.OSWALK_REDIS_CA_CERT ? 'OSWALK_REDIS_CA_CERT' : 'OSWALK_CA_CERT'}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * TLS both to the Sentinels (sentinelTLS) and to the primary they name (tls, which ioredis uses
 * in Sentinel mode only with enableTLSForSentinelMode), trusting `ca` (else the system's CAs).
 * The primary is reached at the address the Sentinels report, usually an IP address: its
 * certificate must list it.
 */
function sentinelTls(ca: string | undefined): RedisOptions {
  const tls = ca ? { ca } : {};
  return { sentinelTLS: tls, tls, enableTLSForSentinelMode: true };
}

export function parseSentinelUrl(url: string): RedisOptions {
  const m = /^rediss?\+sentinel:\/\/(?:(?:[^:@/]*):([^@/]*)@)?([^/]+)\/([^/]+)(?:\/(\d+))?$/.exec(url);
  if (!m) throw new Error(`Sentinel URL "${url}" must look like redis+sentinel://[:password@]host:port[,host:port]/masterName[/db] (rediss+sentinel:// for TLS)`);
  const [, password, hosts, name, db] = m;
  return {
    sentinels: hosts.split(',').map((hp) => {
      const [host, port] = hp.split(':');
      return { host, port: Number(port || 26379) };
    }),
    name,
    password: password ? decodeURIComponent(password) : undefined,
    db: db ? Number(db) : 0,
  };
}

/** Resolve once whether Redis answers: for /readyz and start-up checks. */
export async function redisReady(redis: Redis, timeoutMs = 1000): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  try {
    const pong = await Promise.race([
      redis.ping(),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs)),
    ]);
    return pong === 'PONG';
  } catch {
    return false;
  }
}
