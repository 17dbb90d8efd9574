import type { Logger } from '../util/log.js';
import { serialKey } from '../util/tls.js';
import type { Keyspace } from './keys.js';
import type { Redis } from './redis.js';
import { runScript } from './scripts.js';

/**
 * Node certificates the control plane issued, and the ones revoked before their end. A
 * certificate is refused from the moment it is revoked by the control plane (which reads this
 * list at each request a node makes as itself) and within a second or so by every agent's
 * chunk server (watchRevokedCertificates); one past its end is refused for that alone, so the
 * list keeps only the revoked ones that have not expired yet.
 */

/** A certificate that was revoked: its serial, and when it would have expired (ms). */
export interface RevokedCertificate {
  serial: string;
  notAfter: number;
}

/**
 * Records a certificate issued to `node`, so that revoking the node finds it. A renewal names
 * the serial it was asked with (`renewedFrom`): refused with ScriptError REVOKED if that one was
 * revoked meanwhile, after the request was let in.
 */
export async function recordIssuedCertificate(redis: Redis, ks: Keyspace, c: { node: string; serial: string; notAfter: number; renewedFrom?: string }): Promise<void> {
  await runScript(redis, 'certOp', [ks.nodeCerts(c.node), ks.revokedCerts, ks.revokedCertsSeq], ['issue', serialKey(c.serial), c.notAfter, Date.now(), c.renewedFrom ? serialKey(c.renewedFrom) : '']);
}

/** Revokes every unexpired certificate issued to `node`; answers them (none: it had none). */
export async function revokeNodeCertificates(redis: Redis, ks: Keyspace, node: string, by: string): Promise<RevokedCertificate[]> {
  const flat = await runScript<string[]>(redis, 'certOp', [ks.nodeCerts(node), ks.revokedCerts, ks.revokedCertsSeq], ['revoke', node, Date.now(), by]);
  const out: RevokedCertificate[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ serial: flat[i], notAfter: Number(flat[i + 1]) });
  return out;
}

/** Whether the certificate with this serial was revoked: one HEXISTS, for the control plane's checks. */
export async function isRevoked(redis: Redis, ks: Keyspace, serial: string): Promise<boolean> {
  return (await redis.hexists(ks.revokedCerts, serialKey(serial))) === 1;
}

/** How often an agent looks whether the revocation list changed: the window of a revocation at its chunk server. */
export const REVOCATION_POLL_MS = 1000;

export interface RevocationWatch {
  /** Settles once the list was read a first time (a server that checks it should not serve before). */
  ready: Promise<void>;
  has(serial: string): boolean;
  stop(): void;
}

/**
 * The revocation list, kept in memory and read again whenever its counter moves (one GET a
 * second; the whole list only on a change), so that a chunk server checks a peer's certificate
 * without a round trip to Redis per request. Polled rather than subscribed: a poll needs no
 * connection of its own and cannot miss a message across a reconnection. While Redis cannot
 * be reached, the last list read stays in force (and is logged): revocations made meanwhile
 * take effect when it is back.
 */
export function watchRevokedCertificates(redis: Redis, ks: Keyspace, o: { log: Logger; everyMs?: number; onChange?(revoked: ReadonlySet<string>): void }): RevocationWatch {
  let revoked = new Set<string>();
  let seen: string | null | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failing = false;
  const poll = async () => {
    const seq = await redis.get(ks.revokedCertsSeq);
    if (seq === seen) return;
    revoked = new Set(await redis.hkeys(ks.revokedCerts));
    seen = seq;
    o.onChange?.(revoked);
  };
  const loop = async () => {
    try {
      await poll();
      if (failing) o.log.info('reading the certificate revocation list again');
      failing = false;
    } catch (err) {
      if (!failing) o.log.warn({ err: (err as Error).message }, 'cannot read the certificate revocation list: the last one read stays in force');
      failing = true;
    }
    if (!stopped) {
      timer = setTimeout(() => void loop(), o.everyMs ?? REVOCATION_POLL_MS);
      timer.unref();
    }
  };
  return {
    ready: loop(),
    has: (serial) => revoked.has(serialKey(serial)),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
