import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { makeControlPlaneCertificates, type ControlPlaneCertificates } from '../../src/cli/certs.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { ChunkStore, chunkDir } from '../../src/packetfs/index.js';
import { PeerClient } from '../../src/packetfs/peer-http.js';
import { loadNodeTls, nodeTlsFiles } from '../../src/packetfs/peer-tls.js';
import { listNodes } from '../../src/state/nodes.js';
import { createToken } from '../../src/state/tokens.js';
import { issueControlPlaneClientCertificate, nodeCertificateRequest } from '../../src/util/pki.js';
import { oswalk } from '../helpers/cli.js';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';

const CLUSTER_TOKEN = 'node-certs-cluster-token';
/** Short, so that renewals (after two thirds: 4 s) happen while the test runs. */
const LIFETIME_MS = 6000;

/** A TCP proxy that records every byte both ways: what someone on the network would see. */
async function sniffer(target: number): Promise<{ port: number; seen: () => Buffer; close: () => Promise<void> }> {
  const bytes: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d: Buffer) => bytes.push(Buffer.from(d)));
    upstream.on('data', (d: Buffer) => bytes.push(Buffer.from(d)));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    seen: () => Buffer.concat(bytes),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** One HTTPS request, with a client certificate or none. */
function request(url: string, o: { ca: string; method?: string; body?: Buffer; token?: string; client?: { key: string; cert: string }; servername?: string }): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {
      method: o.method ?? 'GET', ca: o.ca, ...(o.client ?? {}), agent: false,
      // A node is reached at an address; its certificate is for its name.
      checkServerIdentity: () => undefined,
      headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.body ? { 'content-type': 'application/json', 'content-length': o.body.length } : {}) },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    });
    req.once('error', reject);
    req.end(o.body);
  });
}

/** The serial number of the certificate a TLS server presents now. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, checkServerIdentity: () => undefined }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.once('error', reject);
  });
}

/**
 * Node identities, for real: a control plane holding the cluster CA, two agents that join
 * with a join token and get certificates, their chunk servers speaking mutual TLS, renewals
 * under load, and what a listener on the wire sees of it all.
 */
describe('node certificates: mutual TLS between nodes, renewed under load', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-node-certs-'));
  const log = pino({ level: 'silent' });
  let redis: TestRedis;
  let cp: RunningControlPlane;
  let ours: ControlPlaneCertificates;
  let theirs: ControlPlaneCertificates;
  let joinToken: string;
  const agents: Record<string, RunningAgent> = {};
  const stateDir = (n: string) => join(root, n);
  const port = (n: string) => Number(new URL(agents[n].url).port);

  const start = (node: string, token = joinToken) => startAgent({
    node, controlPlane: cp.url, ca: { pem: ours.caCert, source: 'the test' }, token,
    runtime: new ProcessRuntime({ stateDir: stateDir(node), logger: log }), exportDir: join(stateDir(node), 'export'), stateDir: stateDir(node),
    listen: { host: '127.0.0.1', port: 0 }, log,
  });

  before(async () => {
    redis = await TestRedis.start();
    ours = await makeControlPlaneCertificates(join(root, 'ours'), ['127.0.0.1'], 'test');
    theirs = await makeControlPlaneCertificates(join(root, 'theirs'), ['127.0.0.1'], 'test');
    cp = await startControlPlane({
      redisUrl: redis.url, token: CLUSTER_TOKEN, tls: { cert: ours.cert, key: ours.key }, ca: ours.ca, nodeCertLifetimeMs: LIFETIME_MS,
      host: '127.0.0.1', port: await freePort(), prefix: testPrefix(),
    });
    joinToken = (await createToken(cp.ctx.redis, cp.ctx.ks, { name: 'nodes', role: 'node', createdBy: 'the test' })).secret;
    agents.n1 = await start('n1');
    agents.n2 = await start('n2');
  });
  after(async () => {
    for (const a of Object.values(agents)) await a.stop().catch(() => undefined);
    await cp?.close();
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('a node joins with a join token and gets a certificate for its name, signed by the cluster CA, for its own key', async () => {
    const nodes = await listNodes(cp.ctx.redis, cp.ctx.ks);
    assert.deepEqual(nodes.map((n) => [n.name, n.status, n.agentUrl.replace(/\d+$/, 'PORT')]), [['n1', 'ready', 'https://127.0.0.1:PORT'], ['n2', 'ready', 'https://127.0.0.1:PORT']]);
    const files = nodeTlsFiles(stateDir('n1'));
    assert.equal(statSync(files.pem).mode & 0o777, 0o600);
    assert.equal(statSync(files.dir).mode & 0o777, 0o700);
    const tls = loadNodeTls(stateDir('n1'))!;
    const cert = new X509Certificate(tls.cert);
    assert.equal(cert.subject, 'CN=n1');
    assert.equal(cert.subjectAltName, 'DNS:n1');
    assert.ok(cert.verify(new X509Certificate(ours.caCert).publicKey), 'signed by the cluster CA');
    assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(tls.key)), 'for the key the node made');
    const life = Date.parse(cert.validTo) - Date.now();
    assert.ok(life > 0 && life <= LIFETIME_MS, `valid for ${life} ms more`);
  });

  it('a join token joins and does nothing else; once revoked, no node joins with it', async () => {
    const status = await oswalk(['status', '--api', cp.url, '--token', joinToken, '--ca-cert', ours.paths.ca.cert]);
    assert.match(status.stderr, /the token "nodes" is node, and GET \/v1\/status needs read-only/);
    const other = await createToken(cp.ctx.redis, cp.ctx.ks, { name: 'spare', role: 'node', createdBy: 'the test' });
    const revoke = await oswalk(['token', 'revoke', 'spare', '--api', cp.url, '--token', CLUSTER_TOKEN, '--ca-cert', ours.paths.ca.cert]);
    assert.equal(revoke.code, 0, revoke.stderr);
    await assert.rejects(start('n-late', other.secret), /cannot join|refused node n-late: 401/);
    const operator = await createToken(cp.ctx.redis, cp.ctx.ks, { name: 'op', role: 'operator', createdBy: 'the test' });
    await assert.rejects(start('n-op', operator.secret), /refused node n-op: 403/);
  });

  it('a chunk server serves a node of the cluster, by its certificate, and no one else: not the token alone, not another CA\'s certificate, not the control plane\'s', async () => {
    const data = randomBytes(50_000);
    const hash = createHash('sha256').update(data).digest('hex');
    await new ChunkStore(chunkDir(stateDir('n1')), { log }).put(hash, data, { area: 'own' });
    const n2 = loadNodeTls(stateDir('n2'))!;
    const url = `${agents.n1.url}/v1/chunks/${hash}`;
    const ok = await request(url, { ca: ours.caCert, client: n2 });
    assert.equal(ok.status, 200);
    assert.ok(ok.body.equals(data));
    const tokenOnly = await request(url, { ca: ours.caCert, token: CLUSTER_TOKEN });
    assert.equal(tokenOnly.status, 401);
    assert.match(tokenOnly.body.toString(), /takes a node certificate of the cluster CA/);
    const theirNode = await nodeCertificateRequest('n2');
    const { issueNodeCertificate } = await import('../../src/util/pki.js');
    const foreign = await issueNodeCertificate(theirs.ca, theirNode.csr, 'n2', 60_000);
    assert.equal((await request(url, { ca: ours.caCert, client: { key: theirNode.key, cert: foreign.cert } })).status, 401, 'another cluster\'s node');
    assert.equal((await request(url, { ca: ours.caCert, client: { key: ours.key, cert: ours.cert } })).status, 401, 'a server certificate is no client one');
    // The peer client of a node (the live chunker's, the pusher's) stores a copy the same way.
    const peers = new PeerClient('no-token-needed', 5000, stateDir('n2'));
    try {
      const copy = randomBytes(20_000);
      const copyHash = createHash('sha256').update(copy).digest('hex');
      await peers.putChunk(agents.n1.url, copyHash, copy);
      assert.ok((await new ChunkStore(chunkDir(stateDir('n1')), { log }).get(copyHash)).equals(copy));
    } finally {
      peers.close();
    }
  });

  it('a control plane\'s client certificate reads chunks (a download) and does nothing else: no copy, no hold, no node route', async () => {
    const data = randomBytes(40_000);
    const hash = createHash('sha256').update(data).digest('hex');
    await new ChunkStore(chunkDir(stateDir('n1')), { log }).put(hash, data, { area: 'own' });
    const reader = await issueControlPlaneClientCertificate(ours.ca, 'cp-test', 60_000);
    assert.equal(new X509Certificate(reader.cert).subject, 'CN=cp-test\nOU=oswalk-control-plane');
    const url = `${agents.n1.url}/v1/chunks/${hash}`;
    const got = await request(url, { ca: ours.caCert, client: reader });
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
    assert.equal((await request(url, { ca: ours.caCert, client: reader, method: 'HEAD' })).status, 200);
    const put = await request(`${agents.n1.url}/v1/chunks/${'0'.repeat(64)}`, { ca: ours.caCert, client: reader, method: 'PUT', body: Buffer.from('x') });
    assert.equal(put.status, 403);
    assert.match(put.body.toString(), /control plane cp-test's certificate reads chunks and does nothing else: PUT \/v1\/chunks\/:hash takes a node's certificate/);
    assert.equal((await request(`${agents.n1.url}/v1/holds/${'0'.repeat(64)}`, { ca: ours.caCert, client: reader, method: 'POST', body: Buffer.from('x') })).status, 403);
    const asked = await nodeCertificateRequest('cp-test');
    const renew = await request(`${cp.url}/v1/agents/renew`, { ca: ours.caCert, method: 'POST', client: reader, body: Buffer.from(JSON.stringify({ csr: asked.csr })) });
    assert.equal(renew.status, 403, 'a control plane\'s certificate is no node\'s');
  });

  it('a node renews its certificate as itself, for its own name only; without one, nothing is renewed', async () => {
    const n1 = loadNodeTls(stateDir('n1'))!;
    const asked = await nodeCertificateRequest('n2');
    const renewed = await request(`${cp.url}/v1/agents/renew`, { ca: ours.caCert, method: 'POST', client: n1, body: Buffer.from(JSON.stringify({ csr: asked.csr })) });
    assert.equal(renewed.status, 200, renewed.body.toString());
    assert.equal(new X509Certificate((JSON.parse(renewed.body.toString()) as { certificate: string }).certificate).subject, 'CN=n1', 'the name the caller\'s certificate has, not the one it asked for');
    const anonymous = await request(`${cp.url}/v1/agents/renew`, { ca: ours.caCert, method: 'POST', token: CLUSTER_TOKEN, body: Buffer.from(JSON.stringify({ csr: asked.csr })) });
    assert.equal(anonymous.status, 401);
  });

  it('certificates renew by themselves under load, without a failed request or a restart; an expired one is refused', async () => {
    const before = { serial: await servedSerial(port('n1'), ours.caCert), mtime: statSync(nodeTlsFiles(stateDir('n1')).pem).mtimeMs, tls: loadNodeTls(stateDir('n2'))! };
    const data = randomBytes(30_000);
    const hash = createHash('sha256').update(data).digest('hex');
    await new ChunkStore(chunkDir(stateDir('n1')), { log }).put(hash, data, { area: 'own' });
    const peers = new PeerClient('unused', 5000, stateDir('n2'));
    let requests = 0;
    const failures: string[] = [];
    try {
      // Long enough for each node's certificate to be renewed at least once (every 4 s).
      const until = Date.now() + LIFETIME_MS + 1000;
      while (Date.now() < until) {
        const res = await peers.request('GET', `${agents.n1.url}/v1/chunks/${hash}`, Buffer.alloc(0)).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }));
        requests++;
        if (res.status !== 200 || !res.body.equals(data)) failures.push(`${res.status} ${res.body.toString().slice(0, 100)}`);
      }
    } finally {
      peers.close();
    }
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
    assert.ok(requests > 100, `${requests} requests`);
    assert.notEqual(await servedSerial(port('n1'), ours.caCert), before.serial, 'n1 serves its new certificate');
    assert.ok(statSync(nodeTlsFiles(stateDir('n1')).pem).mtimeMs > before.mtime);
    // n2's first certificate has expired by now (6 s): refused, though the CA signed it.
    assert.ok(Date.parse(new X509Certificate(before.tls.cert).validTo) < Date.now());
    const stale = await request(`${agents.n1.url}/v1/chunks/${hash}`, { ca: ours.caCert, client: before.tls });
    assert.equal(stale.status, 401);
  });

  it('someone on the wire sees no token, no Redis address, no file content: not between nodes, not between a node and the control plane, not from the CLI', async () => {
    const marker = Buffer.from(`file content that must not be seen ${randomBytes(8).toString('hex')} `.repeat(200));
    const hash = createHash('sha256').update(marker).digest('hex');
    await new ChunkStore(chunkDir(stateDir('n1')), { log }).put(hash, marker, { area: 'own' });
    const toNode = await sniffer(port('n1'));
    const toCp = await sniffer(Number(new URL(cp.url).port));
    try {
      const peers = new PeerClient(CLUSTER_TOKEN, 5000, stateDir('n2'));
      try {
        const got = await peers.request('GET', `https://127.0.0.1:${toNode.port}/v1/chunks/${hash}`, Buffer.alloc(0));
        assert.ok(got.body.equals(marker));
        const copy = Buffer.from(`a copy pushed to a peer ${randomBytes(8).toString('hex')}`.repeat(100));
        await peers.putChunk(`https://127.0.0.1:${toNode.port}`, createHash('sha256').update(copy).digest('hex'), copy);
        assert.equal(toNode.seen().indexOf(copy.subarray(0, 40)), -1, 'a pushed copy');
      } finally {
        peers.close();
      }
      // A node joining, and the CLI with the cluster token, through the listener.
      const viaProxy = `https://127.0.0.1:${toCp.port}`;
      const n3 = await startAgent({
        node: 'n3', controlPlane: viaProxy, ca: { pem: ours.caCert, source: 'the test' }, token: joinToken,
        runtime: new ProcessRuntime({ stateDir: stateDir('n3'), logger: log }), exportDir: join(stateDir('n3'), 'export'), stateDir: stateDir('n3'),
        listen: { host: '127.0.0.1', port: 0 }, log,
      });
      agents.n3 = n3;
      const status = await oswalk(['status', '--api', viaProxy, '--token', CLUSTER_TOKEN, '--ca-cert', ours.paths.ca.cert]);
      assert.equal(status.code, 0, status.stderr);
    } finally {
      await toNode.close();
      await toCp.close();
    }
    const wire = Buffer.concat([toNode.seen(), toCp.seen()]);
    assert.ok(wire.length > marker.length, `${wire.length} bytes seen`);
    for (const [what, secret] of [['file content', marker.subarray(0, 40).toString()], ['cluster token', CLUSTER_TOKEN], ['join token', joinToken], ['Redis URL', redis.url], ['Redis address', 'redis://']] as const) {
      assert.equal(wire.indexOf(secret), -1, `${what} seen on the wire`);
    }
  });
});

