import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';

/**
 * A node's TLS identity on disk, in its state directory: `node.pem` (its key, then its
 * certificate, in one file so that a renewal replaces both at once and no reader ever pairs a
 * new key with an old certificate) and `ca.crt` (the cluster CA). The agent writes them when it
 * joins and when it renews; every part of the node that talks to peers (the agent, the
 * filesystem process, the live chunker's thread) reads them from here, again after a renewal.
 */
export function nodeTlsFiles(stateDir: string): { dir: string; pem: string; ca: string } {
  const dir = join(stateDir, 'pki');
  return { dir, pem: join(dir, 'node.pem'), ca: join(dir, 'ca.crt') };
}

/** What a TLS connection to or from a peer is made with (PEM texts). */
export interface NodeTls {
  key: string;
  cert: string;
  ca: string;
  /** The node the certificate is for. */
  node: string;
  /** ms since the epoch. */
  notAfter: number;
  /** The certificate's serial number, hex (what the revocation list names it by). */
  serial: string;
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

/** Keep a node's key, certificate and the cluster CA, replacing what was there (0600 files in a 0700 directory). */
export function saveNodeTls(stateDir: string, t: { key: string; cert: string; ca: string }): NodeTls {
  const f = nodeTlsFiles(stateDir);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  writeAtomically(f.ca, t.ca);
  writeAtomically(f.pem, `${t.key.trim()}\n${t.cert.trim()}\n`);
  return parse(t.key, t.cert, t.ca);
}

function parse(key: string, cert: string, ca: string): NodeTls {
  const x = new X509Certificate(cert);
  return { key, cert, ca, node: /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1] ?? '', notAfter: Date.parse(x.validTo), serial: x.serialNumber };
}

/** How often a reader looks whether the files changed (a renewal): at most once a second. */
const RECHECK_MS = 1000;

interface Cached {
  checkedAt: number;
  mtimeMs: number;
  tls?: NodeTls;
}

const cache = new Map<string, Cached>();

/**
 * The node's TLS identity in `stateDir`, as last written (a renewal is seen within a second),
 * or undefined when it has none: a cluster whose control plane signs no node certificates,
 * whose nodes speak plain HTTP to each other.
 */
export function loadNodeTls(stateDir: string): NodeTls | undefined {
  const now = Date.now();
  const hit = cache.get(stateDir);
  if (hit && now - hit.checkedAt < RECHECK_MS) return hit.tls;
  const f = nodeTlsFiles(stateDir);
  let mtimeMs: number;
  try {
    mtimeMs = statSync(f.pem).mtimeMs;
  } catch {
    cache.set(stateDir, { checkedAt: now, mtimeMs: 0 });
    return undefined;
  }
  if (hit && hit.mtimeMs === mtimeMs) {
    hit.checkedAt = now;
    return hit.tls;
  }
  const pem = readFileSync(f.pem, 'utf8');
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/.exec(pem)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!key || !cert) throw new Error(`${f.pem} holds no key and certificate: remove it, and restart the agent to join again`);
  const tls = parse(key, cert, readFileSync(f.ca, 'utf8'));
  cache.set(stateDir, { checkedAt: now, mtimeMs, tls });
  return tls;
}

/**
 * What a request to a peer at an https:// URL is made with: the node's certificate (see
 * peerRequestTls). A node without one has no business with such a peer: refused here, by name.
 */
export function peerTls(stateDir: string | undefined): ReturnType<typeof peerRequestTls> {
  const tls = stateDir ? loadNodeTls(stateDir) : undefined;
  if (!tls) throw new Error('this node has no certificate to reach its peers\' TLS chunk servers with: its agent joins a control plane that holds the cluster CA, and keeps it in its state directory (pki/node.pem)');
  return peerRequestTls(tls);
}

/**
 * The options of a request to a peer's chunk server: the node's certificate as the client's,
 * and the cluster CA as the only one trusted. Any node's certificate is accepted as the peer's:
 * a node is reached at an address, not by its name, and what it serves is named by its hash
 * and checked, so a node that answered for another could only fail the request, which the
 * fetcher then asks of another holder.
 */
export function peerRequestTls(tls: NodeTls): { key: string; cert: string; ca: string; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined } {
  return {
    key: tls.key, cert: tls.cert, ca: tls.ca,
    checkServerIdentity: (_host, cert) => (cert.subject?.CN ? undefined : new Error('the peer\'s certificate names no node')),
  };
}
