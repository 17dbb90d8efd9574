// @peculiar/x509 finds its ASN.1 codecs through tsyringe, which needs this polyfill loaded first
// (imports run in order).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { CONTROL_PLANE_UNIT } from './tls.js';

/**
 * The cluster's certificate authority and the certificates it signs. Certificates are made with
 * @peculiar/x509 (X.509 and ASN.1 encoding, the part no Node API does), keys and signatures by
 * Node's WebCrypto (global `crypto`, which the library uses by itself), that is OpenSSL: nothing
 * of the cryptography is written here. ECDSA P-256
 * keys: every TLS stack takes them, and they sign and verify faster than RSA.
 */

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** A CA outlives many server certificates, as kubeadm's and Docker Swarm's do (10 and 20 years). */
const CA_DAYS = 3650;
/** kubeadm's serving certificates last a year too; `oswalk up` makes a new one at each start. */
const SERVER_CERT_DAYS = 365;
/**
 * Certificates start a little in the past: a machine whose clock is behind the one that made the
 * certificate would refuse it as not yet valid.
 */
const BACKDATE_MS = 5 * 60_000;

/** Where a CA's or a certificate's two halves are kept. */
export interface KeyPairFiles {
  cert: string;
  key: string;
}

export interface ClusterCa {
  /** The CA certificate, PEM: what clients trust. */
  certPem: string;
  /** Its subject, e.g. `CN=OS Walk cluster CA 3f9a…`. */
  subject: string;
  /** Whether this call made it (false: it was there already). */
  created: boolean;
  certificate: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
  /** The key, PEM: what a control plane joining the cluster is given (POST /v1/control-planes/join). */
  keyPem: string;
}

/**
 * Write a file only its owner can read (mode 0600), whole or not at all: a reader never sees
 * half of it (a control plane starting while `oswalk cluster certs` runs).
 */
export function writePrivate(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

function pemOfKey(pkcs8: ArrayBuffer): string {
  return createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

/** The CA of `files`, made if neither file is there; a CA half there and half not is refused, not replaced. */
export async function loadOrCreateCa(files: KeyPairFiles): Promise<ClusterCa> {
  const has = [existsSync(files.cert), existsSync(files.key)];
  if (has[0] && has[1]) return loadCa(files);
  if (has[0] || has[1]) {
    throw new Error(`${has[0] ? files.key : files.cert} is missing while ${has[0] ? files.cert : files.key} is there: put it back, or move both away to make a new cluster CA (every client then needs the new ca.crt)`);
  }
  const keys = await newKeys();
  const now = Date.now();
  // A name of its own per cluster: an error can then tell one cluster's CA from another's.
  const subject = `CN=OS Walk cluster CA ${randomBytes(6).toString('hex')}`;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: subject,
    keys,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      // A CA that signs only end certificates (path length 0), and only certificates.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = certificate.toString('pem');
  const keyPem = pemOfKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  // The key first: a CA certificate on disk always has its key beside it.
  writePrivate(files.key, keyPem);
  writePrivate(files.cert, certPem + '\n');
  return { certPem, subject, created: true, certificate, privateKey: keys.privateKey, keyPem };
}

async function loadCa(files: KeyPairFiles): Promise<ClusterCa> {
  const certPem = readFileSync(files.cert, 'utf8');
  let node: X509Certificate;
  try {
    node = new X509Certificate(certPem);
  } catch (err) {
    throw new Error(`${files.cert} is not a PEM certificate (${(err as Error).message})`);
  }
  if (!node.ca) throw new Error(`${files.cert} is not a CA certificate`);
  if (new Date(node.validTo) <= new Date()) {
    throw new Error(`the cluster CA ${files.cert} expired on ${new Date(node.validTo).toISOString()}: move ${dirname(files.cert)} away and run \`oswalk cluster certs\` for a new CA (every client then needs the new ca.crt)`);
  }
  let keyObject;
  const keyPem = readFileSync(files.key, 'utf8');
  try {
    keyObject = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`${files.key} is not a PEM private key (${(err as Error).message})`);
  }
  if (!node.checkPrivateKey(keyObject)) throw new Error(`${files.key} is not the private key of ${files.cert}`);
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${files.key} is not an ECDSA P-256 key, the kind oswalk makes: oswalk signs only with a CA it made`);
  }
  return {
    certPem: certPem.trim(),
    subject: node.subject.replace(/\n/g, ', '),
    created: false,
    certificate: new x509.X509Certificate(certPem),
    // WebCrypto imports only bytes: Node 20's KeyObject has no toCryptoKey().
    privateKey: await webcrypto.subtle.importKey('pkcs8', keyObject.export({ format: 'der', type: 'pkcs8' }), KEY_ALGORITHM, false, ['sign']),
    keyPem,
  };
}

/** A name or address a certificate can be for, as its SAN entry; anything else is refused by name. */
export function subjectAltName(host: string): x509.JsonGeneralName {
  if (isIP(host)) return { type: 'ip', value: host };
  // DNS names as RFC 1123 allows them; a leading wildcard label as TLS clients match it.
  if (/^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i.test(host) && host.length <= 253) return { type: 'dns', value: host.toLowerCase() };
  throw new Error(`"${host}" is neither an IP address nor a DNS name, so no certificate can be for it`);
}

/**
 * A new certificate and key for the control plane, signed by `ca`, for the names and addresses
 * clients reach it at (`hosts`, the certificate's subject alternative names: TLS clients match
 * the host of the URL against them, never the common name).
 */
export async function issueServerCertificate(ca: ClusterCa, hosts: string[], files: KeyPairFiles, commonName = 'OS Walk control plane', lifetimeMs = SERVER_CERT_DAYS * DAY_MS): Promise<{ cert: string; key: string; notAfter: Date }> {
  const keys = await newKeys();
  const made = await signServerCertificate(ca, keys.publicKey, hosts, commonName, lifetimeMs);
  const key = pemOfKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  writePrivate(files.key, key);
  writePrivate(files.cert, made.cert);
  return { cert: made.cert, key, notAfter: made.notAfter };
}

/**
 * A control plane's serving certificate for the key of `csrPem` (a request signed with it, which
 * proves the asker holds it), for `hosts` whatever names the request asks for: a control plane
 * joining the cluster keeps its key to itself, as a node does.
 */
export async function issueServerCertificateForRequest(ca: ClusterCa, csrPem: string, hosts: string[]): Promise<{ cert: string; notAfter: Date }> {
  const publicKey = await requestedKey(csrPem);
  return signServerCertificate(ca, publicKey, hosts, 'OS Walk control plane', SERVER_CERT_DAYS * DAY_MS);
}

/**
 * An end certificate signed by `ca` for `publicKey`: not a CA, for signatures (ECDHE key
 * agreement), for the uses `usages`, for the subject alternative names `names` (none: no
 * extension), valid from a little before now for `lifetimeMs`.
 */
async function signEndCertificate(ca: ClusterCa, publicKey: webcrypto.CryptoKey, subject: string, lifetimeMs: number, usages: x509.ExtendedKeyUsageType[], names: x509.JsonGeneralName[] = []): Promise<{ certificate: x509.X509Certificate; notAfter: Date }> {
  const now = Date.now();
  const notAfter = new Date(now + lifetimeMs);
  const certificate = await x509.X509CertificateGenerator.create({
    subject,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter,
    publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages),
      ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return { certificate, notAfter };
}

async function signServerCertificate(ca: ClusterCa, publicKey: webcrypto.CryptoKey, hosts: string[], commonName: string, lifetimeMs: number): Promise<{ cert: string; notAfter: Date }> {
  const names = [...new Set(hosts)].map(subjectAltName);
  if (!names.length) throw new Error('a certificate needs at least one name or address to be for');
  const { certificate, notAfter } = await signEndCertificate(ca, publicKey, `CN=${commonName}`, lifetimeMs, [x509.ExtendedKeyUsage.serverAuth], names);
  return { cert: certificate.toString('pem') + '\n', notAfter };
}

/** The public key of a PKCS#10 request, once its signature shows the asker holds the private one. */
async function requestedKey(csrPem: string): Promise<webcrypto.CryptoKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new Error(`the certificate request is not a PEM PKCS#10 request (${(err as Error).message})`);
  }
  if (!(await csr.verify())) throw new Error('the certificate request is not signed by the key it carries');
  return csr.publicKey.export(KEY_ALGORITHM, ['verify']);
}

/**
 * When a server certificate is due to be renewed, ms since the epoch: two thirds into its life
 * (as nodes renew theirs), counted from when it was made, not from its backdated start.
 */
export function renewalDue(certPem: string): number {
  const x = new X509Certificate(certPem);
  const issued = Date.parse(x.validFrom) + BACKDATE_MS;
  return issued + (Date.parse(x.validTo) - issued) * 2 / 3;
}

/**
 * A new key and certificate in place of `certPem`, a server certificate `ca` signed: for the
 * same names and addresses, the same common name, and as long a life, written to `files`.
 * Refused for a certificate `ca` did not sign (one from another CA, given with --tls-cert): the
 * control plane must not serve a certificate its clients were not told to trust.
 */
export async function renewServerCertificate(ca: ClusterCa, certPem: string, files: KeyPairFiles): Promise<{ cert: string; key: string; notAfter: Date }> {
  const x = new X509Certificate(certPem);
  if (!x.verify(new X509Certificate(ca.certPem).publicKey)) throw new Error(`the certificate ${files.cert} is not signed by the cluster CA ${ca.subject}, so it is not renewed`);
  // Node writes them `DNS:a, IP Address:10.0.0.1`.
  const hosts = (x.subjectAltName ?? '').split(', ').map((n) => /^(?:DNS|IP Address):(.+)$/.exec(n)?.[1]).filter((h): h is string => !!h);
  const commonName = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  const issued = Date.parse(x.validFrom) + BACKDATE_MS;
  return issueServerCertificate(ca, hosts, files, commonName, Date.parse(x.validTo) - issued);
}

/**
 * A new key and the request for its certificate, both PEM, for a node (`name`: its own) or a
 * control plane joining the cluster; the key never leaves the machine that made it.
 */
export async function nodeCertificateRequest(name: string): Promise<{ key: string; csr: string }> {
  const keys = await newKeys();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys, signingAlgorithm: SIGNING_ALGORITHM });
  return { key: pemOfKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), csr: csr.toString('pem') };
}

/**
 * A certificate for node `node`, signed by `ca`, for the key of `csrPem` (a request the node
 * signed with that key, which proves it holds it). Whatever name the request asks for, the
 * certificate is for `node`, the name the control plane admitted: its common name, and its one
 * DNS name, which peers check when they reach the node. For serving (its chunk server) and for
 * being a client (of peers and of the control plane) alike.
 */
export async function issueNodeCertificate(ca: ClusterCa, csrPem: string, node: string, lifetimeMs: number): Promise<{ cert: string; serial: string; notAfter: Date }> {
  const publicKey = await requestedKey(csrPem);
  const { certificate, notAfter } = await signEndCertificate(ca, publicKey, `CN=${node}`, lifetimeMs, [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], [subjectAltName(node)]);
  return { cert: certificate.toString('pem') + '\n', serial: certificate.serialNumber, notAfter };
}

/**
 * A client certificate and key for control plane `name`, made in memory and never written: what
 * it presents to the nodes' chunk servers to read chunks for a download (they serve it reads,
 * nothing else). Client authentication only, so it serves nothing.
 */
export async function issueControlPlaneClientCertificate(ca: ClusterCa, name: string, lifetimeMs: number): Promise<{ key: string; cert: string; notAfter: Date }> {
  const keys = await newKeys();
  const { certificate, notAfter } = await signEndCertificate(ca, keys.publicKey, `CN=${name}, OU=${CONTROL_PLANE_UNIT}`, lifetimeMs, [x509.ExtendedKeyUsage.clientAuth]);
  return { key: pemOfKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), cert: certificate.toString('pem') + '\n', notAfter };
}

/** The cluster CA of `files` for signing, or undefined when they are not there (a control plane that signs no node certificates). */
export async function loadCaIfPresent(files: KeyPairFiles): Promise<ClusterCa | undefined> {
  return existsSync(files.cert) && existsSync(files.key) ? loadCa(files) : undefined;
}
