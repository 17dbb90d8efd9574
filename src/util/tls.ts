import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * TLS for the API, both ends: the certificate a control plane serves, and the cluster CA its
 * clients trust. Only node:crypto here (OpenSSL's own parsing and checks), so that the CLI's
 * quick commands do not load the X.509 library that makes certificates (util/pki.ts).
 */

/** What an HTTPS server is started with: PEM text. */
export interface ServerTls {
  cert: string;
  key: string;
  /**
   * The cluster CA, PEM: a server with it asks clients for a certificate, which routes that take
   * one (a node's) check; a client without one is still served the routes that need none.
   */
  ca?: string;
}

/** The cluster CA a client trusts, and where it came from, so that an error can say where to look. */
export interface TrustedCa {
  pem: string;
  /** e.g. `--ca-cert /x/ca.crt` or `/x/.oswalk/config.json`. */
  source: string;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function parseCertificate(pem: string, where: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new Error(`${where} is not a PEM certificate (${(err as Error).message})`);
  }
}

/**
 * The certificate and key a control plane serves the API with, checked before it listens: a
 * pair that does not match, or a certificate out of its validity period, would otherwise only
 * show as every client's handshake failing.
 */
export function loadServerTls(certFile: string, keyFile: string): ServerTls {
  const cert = readText(certFile, 'the TLS certificate');
  const key = readText(keyFile, 'the TLS key');
  const x509 = parseCertificate(cert, certFile);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`${keyFile} is not a PEM private key (${(err as Error).message})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`${keyFile} is not the private key of ${certFile}: give the key the certificate was issued for`);
  const now = new Date();
  const notAfter = new Date(x509.validTo);
  if (notAfter <= now) throw new Error(`the certificate ${certFile} expired on ${notAfter.toISOString()}: clients refuse it. Make a new one with \`oswalk cluster certs\``);
  if (new Date(x509.validFrom) > now) throw new Error(`the certificate ${certFile} is valid only from ${new Date(x509.validFrom).toISOString()}: is this machine's clock right?`);
  return { cert, key };
}

/** A CA certificate file a client is told to trust; anything that is not one is refused by name. */
export function readCaFile(file: string, source: string): TrustedCa {
  const pem = readText(file, 'the CA certificate');
  return { pem: checkCa(pem, `${file} (${source})`), source };
}

/** pem, once it is known to be a CA certificate. */
export function checkCa(pem: string, where: string): string {
  if (!parseCertificate(pem, where).ca) throw new Error(`${where} is not a CA certificate: give the cluster CA's ca.crt (in .oswalk/pki where \`oswalk cluster init\` or \`oswalk up\` ran)`);
  return pem;
}

/** OpenSSL's codes for a peer certificate that does not chain to a CA the client trusts. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
]);

/**
 * What to tell a person whose TLS connection to `url` failed, when it failed for a reason of
 * TLS (undefined otherwise, for the caller's own message). The request was never sent: a server
 * that cannot prove it is the cluster's does not see the token.
 */
export function tlsRefusal(err: NodeJS.ErrnoException, url: string, ca: TrustedCa | undefined, what = 'the control plane'): string | undefined {
  const code = err.code ?? '';
  const notSent = 'nothing was sent to it, the token neither';
  if (UNTRUSTED.has(code)) {
    return ca
      ? `${what} at ${url} presented a certificate that is not signed by the cluster CA this client trusts (from ${ca.source}; ${code}): ${notSent}. Is the address that cluster's, and the CA its .oswalk/pki/ca.crt?`
      : `${what} at ${url} presented a certificate that is not signed by any CA this client trusts (${code}), and no cluster CA is set: pass --ca-cert FILE, set OSWALK_CA_CERT, or run from the directory where \`oswalk cluster init\` or \`oswalk up\` ran (its .oswalk/config.json names the CA); ${notSent}`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    // Node's own message speaks of the common name when a certificate has no DNS name at all.
    const { host, cert } = err as NodeJS.ErrnoException & { host?: string; cert?: { subjectaltname?: string } };
    return `${what} at ${url} presented a certificate for other names (${cert?.subjectaltname ?? 'none'}), not for ${host}: ${notSent}. Reach it by a name its certificate lists, or give it a certificate that lists this one (\`oswalk cluster certs --san\`)`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return `${what} at ${url} presented a certificate that is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not valid yet (check both clocks)'}: ${notSent}. Make it a new one with \`oswalk cluster certs\``;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || (code === 'EPROTO' && /wrong version number/.test(err.message))) {
    return `${what} at ${url} does not speak TLS: if it was started with --insecure-http, its address is http://${url.replace(/^https:\/\//, '')} (and everything sent to it, the token too, travels in clear text)`;
  }
  return undefined;
}

/**
 * A certificate's serial number as the revocation list keys it: lowercase hex without leading
 * zeros. Node's getPeerCertificate() and X509Certificate write it in upper case, the X.509
 * library in lower case with a 00 before a high first byte: the same number either way.
 */
export function serialKey(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

/**
 * The organizational unit of a control plane's client certificate (pki.ts): a node's certificate
 * has a common name alone (issueNodeCertificate sets the subject, whatever the request asks), so
 * no node can hold one with this unit.
 */
export const CONTROL_PLANE_UNIT = 'oswalk-control-plane';
