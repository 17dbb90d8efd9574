import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { issueNodeCertificate, issueServerCertificate, loadOrCreateCa, nodeCertificateRequest, type ClusterCa, type KeyPairFiles } from '../../src/util/pki.js';
import { startOswalk, stopChild } from '../helpers/cli.js';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

const TOKEN = 'api-cert-token';
/** Short, so that the control plane renews its certificate (at two thirds: 4 s) while the test runs. */
const LIFETIME_MS = 6000;

/** One request on a connection of its own (a handshake each: each sees the certificate served then). */
function get(url: string, ca: string, client?: { key: string; cert: string }, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {
      method: body ? 'POST' : 'GET', ca, agent: false, ...(client ?? {}),
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

/** The serial of the certificate the server at `port` presents now. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.once('error', reject);
  });
}

const fileSerial = (f: string) => new X509Certificate(readFileSync(f, 'utf8')).serialNumber;

/**
 * The control plane's own certificate (issue 27): one that holds the cluster CA renews it two
 * thirds into its life, for the same names and as long, writes it where it was, and serves it
 * without a restart; one that does not keeps warning.
 */
describe('the API\'s certificate renewed by the control plane itself', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-api-cert-'));
  let redis: TestRedis;
  let ca: ClusterCa;
  const caFiles: KeyPairFiles = { cert: join(root, 'pki', 'ca.crt'), key: join(root, 'pki', 'ca.key') };
  const short = async (name: string): Promise<KeyPairFiles & { pem: string; keyPem: string }> => {
    const files = { cert: join(root, 'pki', `${name}.crt`), key: join(root, 'pki', `${name}.key`) };
    const made = await issueServerCertificate(ca, ['127.0.0.1', 'localhost'], files, undefined, LIFETIME_MS);
    return { ...files, pem: made.cert, keyPem: made.key };
  };

  before(async () => {
    redis = await TestRedis.start();
    ca = await loadOrCreateCa(caFiles);
  });
  after(async () => {
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('renews it before it expires and serves the new one live: no request fails, across two renewals and the first certificate\'s end', async (t) => {
    const files = await short('in-process');
    const first = new X509Certificate(files.pem);
    let cp: RunningControlPlane | undefined;
    try {
      cp = await startControlPlane({
        redisUrl: redis.url, token: TOKEN, tls: { cert: files.pem, key: files.keyPem }, ca, tlsFiles: files,
        host: '127.0.0.1', port: await freePort(), prefix: testPrefix(),
      });
      const port = Number(new URL(cp.url).port);
      const serials = new Set<string>();
      let requests = 0;
      const failures: string[] = [];
      // Past the first certificate's end and through a second renewal (at 4 s and about 8 s).
      const until9s = Date.now() + 9000;
      while (Date.now() < until9s) {
        const res = await get(`${cp.url}/v1/status`, ca.certPem).catch((err: NodeJS.ErrnoException) => ({ status: 0, text: `${err.code} ${err.message}` }));
        requests++;
        if (res.status !== 200) failures.push(`${res.status} ${res.text.slice(0, 100)}`);
        if (requests % 20 === 0) serials.add(await servedSerial(port, ca.certPem));
      }
      t.diagnostic(`${requests} requests, ${failures.length} failed, ${serials.size} certificates served`);
      assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
      assert.ok(requests > 100, `${requests} requests`);
      assert.ok(Date.parse(first.validTo) < Date.now(), 'the first certificate has expired');
      const now = await servedSerial(port, ca.certPem);
      assert.notEqual(now, first.serialNumber, 'a new certificate is served');
      assert.ok(serials.size >= 2, `${[...serials].join(', ')}: renewed twice or more`);
      // Kept where it was, for the next start; the file is written before it is served.
      await until('the file holding the served certificate', async () => fileSerial(files.cert) === (await servedSerial(port, ca.certPem)));
      const renewed = new X509Certificate(readFileSync(files.cert, 'utf8'));
      assert.equal(renewed.subjectAltName, first.subjectAltName);
      assert.equal(renewed.subject, first.subject);
      assert.ok(renewed.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(files.key, 'utf8'))), 'the key file is the certificate\'s');
      const life = Date.parse(renewed.validTo) - Date.now();
      assert.ok(life > 0 && life <= LIFETIME_MS, `as long a life: ${life} ms left`);
      // The cluster CA still checks the nodes' client certificates in the new context.
      const node = await nodeCertificateRequest('n1');
      const nodeCert = await issueNodeCertificate(ca, node.csr, 'n1', 60_000);
      const renew = await get(`${cp.url}/v1/agents/renew`, ca.certPem, { key: node.key, cert: nodeCert.cert }, JSON.stringify({ csr: node.csr }));
      assert.equal(renew.status, 200, renew.text);
    } finally {
      await cp?.close();
    }
  });

  it('oswalk control-plane renews the files it serves when it holds the CA key, and only warns without it', async () => {
    const env = { OSWALK_LOG_LEVEL: 'info', OSWALK_LOG_FORMAT: 'json', OSWALK_TOKEN: TOKEN, OSWALK_REDIS_URL: redis.url };
    const withCa = await short('with-ca');
    const before = fileSerial(withCa.cert);
    const renewing = await startOswalk([
      'control-plane', '--listen', `127.0.0.1:${await freePort()}`, '--prefix', testPrefix(),
      '--tls-cert', withCa.cert, '--tls-key', withCa.key, '--ca-key', caFiles.key, '--ca-cert', caFiles.cert,
    ], /the API's certificate was renewed/, { cwd: root, env, timeoutMs: 20_000 });
    try {
      assert.notEqual(fileSerial(withCa.cert), before);
      assert.doesNotMatch(renewing.output(), /cannot renew it/);
    } finally {
      await stopChild(renewing.child);
    }

    const withoutCa = await short('without-ca');
    const warning = await startOswalk([
      'control-plane', '--listen', `127.0.0.1:${await freePort()}`, '--prefix', testPrefix(),
      '--tls-cert', withoutCa.cert, '--tls-key', withoutCa.key,
    ], /expires within 30 days and this control plane cannot renew it \(it holds no CA key that signed it\)/, { cwd: root, env, timeoutMs: 20_000 });
    await stopChild(warning.child);
    assert.equal(fileSerial(withoutCa.cert), new X509Certificate(withoutCa.pem).serialNumber, 'left as it was');
  });
});
