import { X509Certificate } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from '../util/log.js';
import type { ClusterCa, KeyPairFiles } from '../util/pki.js';
import { longTimeout } from '../util/timers.js';

/**
 * Renews the API's own certificate two thirds into its life, as nodes renew theirs, for the same
 * names and as long, signed by the cluster CA this control plane holds: written to `files` (a
 * restart serves it) and served from the next handshake on (server.setSecureContext), without a
 * restart or a refused request; connections open already keep the certificate they began with.
 * A failure (a full disk) is tried again after a tenth of the time left (5 s to a minute),
 * logged as a warning each time.
 */
export function renewApiCertificate(o: { server: TlsServer; ca: ClusterCa; files: KeyPairFiles; cert: string; log: Logger }): { stop(): void } {
  let timer: { clear(): void } | undefined;
  let stopped = false;
  const schedule = async (current: string, inMs?: number) => {
    const { renewalDue } = await import('../util/pki.js');
    if (stopped) return;
    timer = longTimeout(() => void attempt(current), inMs ?? renewalDue(current) - Date.now(), { unref: true });
  };
  const attempt = async (current: string) => {
    if (stopped) return;
    try {
      const { renewServerCertificate } = await import('../util/pki.js');
      const next = await renewServerCertificate(o.ca, current, o.files);
      // The cluster CA stays in the context: it checks the nodes' client certificates.
      o.server.setSecureContext({ key: next.key, cert: next.cert, ca: o.ca.certPem });
      o.log.info({ notAfter: next.notAfter.toISOString(), serial: new X509Certificate(next.cert).serialNumber, file: o.files.cert }, 'the API\'s certificate was renewed');
      await schedule(next.cert);
    } catch (err) {
      const retryMs = Math.min(60_000, Math.max(5000, (Date.parse(new X509Certificate(current).validTo) - Date.now()) / 10));
      o.log.warn({ err: (err as Error).message, file: o.files.cert, retryInMs: retryMs }, 'renewing the API\'s certificate failed; trying again');
      await schedule(current, retryMs);
    }
  };
  void schedule(o.cert);
  return {
    stop() {
      stopped = true;
      timer?.clear();
    },
  };
}

/** Whether `ca` signed `cert` (PEM): only then may the control plane renew it with that CA. */
export function signedBy(ca: ClusterCa, cert: string): boolean {
  return new X509Certificate(cert).verify(new X509Certificate(ca.certPem).publicKey);
}
