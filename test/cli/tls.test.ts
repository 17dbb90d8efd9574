import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { makeControlPlaneCertificates, type ControlPlaneCertificates } from '../../src/cli/certs.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { listNodes } from '../../src/state/nodes.js';
import { OSWALK_BIN, cliEnv, oswalk, stopChild } from '../helpers/cli.js';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';

const TOKEN = 'tls-test-token';
const EXIT_UNREACHABLE = 3;

/**
 * The API over real TLS: a control plane serving a certificate of its cluster's CA, the real CLI
 * and a real agent as its clients, and a server with another cluster's certificate as the
 * impostor they must refuse before they send it anything.
 */
describe('the API over TLS, trusting the cluster CA', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-tls-'));
  /** A directory with no .oswalk above it: the CLI there finds no config. */
  const nowhere = join(root, 'nowhere');
  let redis: TestRedis;
  let cp: RunningControlPlane;
  let ours: ControlPlaneCertificates;
  let theirs: ControlPlaneCertificates;
  let impostor: Server;
  let impostorUrl: string;
  const seen = { connections: 0, requests: [] as string[] };

  before(async () => {
    mkdirSync(nowhere);
    redis = await TestRedis.start();
    ours = await makeControlPlaneCertificates(join(root, 'ours'), ['127.0.0.1'], 'test');
    theirs = await makeControlPlaneCertificates(join(root, 'theirs'), ['127.0.0.1'], 'test');
    cp = await startControlPlane({
      redisUrl: redis.url, token: TOKEN, tls: { cert: ours.cert, key: ours.key }, host: '127.0.0.1', port: await freePort(), prefix: testPrefix(),
    });
    // Another cluster's control plane, or anything else holding a certificate of another CA for
    // the same address: it records what reaches it.
    impostor = createHttpsServer({ cert: theirs.cert, key: theirs.key }, (req, res) => {
      seen.requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.end('{}');
    });
    impostor.on('connection', () => seen.connections++);
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    impostorUrl = `https://127.0.0.1:${(impostor.address() as { port: number }).port}`;
  });
  after(async () => {
    await cp?.close();
    await new Promise((r) => impostor?.close(r));
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('made a CA and a certificate it signed, for the addresses asked, every file readable by its owner only', () => {
    const ca = new X509Certificate(readFileSync(ours.paths.ca.cert));
    const cert = new X509Certificate(readFileSync(ours.paths.controlPlane.cert));
    assert.ok(ca.ca, 'ca.crt is a CA certificate');
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'the control plane\'s certificate is signed by the CA');
    assert.ok(!cert.ca);
    assert.equal(cert.subjectAltName, 'IP Address:127.0.0.1');
    assert.notEqual(ca.subject, new X509Certificate(theirs.caCert).subject, 'each cluster\'s CA has a name of its own');
    for (const f of [ours.paths.ca.cert, ours.paths.ca.key, ours.paths.controlPlane.cert, ours.paths.controlPlane.key]) {
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
    }
    assert.equal(statSync(ours.paths.dir).mode & 0o777, 0o700);
  });

  it('answers the CLI over HTTPS when the CLI trusts the cluster CA, from --ca-cert, OSWALK_CA_CERT or its config', async () => {
    assert.match(cp.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const flag = await oswalk(['status', '--api', cp.url, '--token', TOKEN, '--ca-cert', ours.paths.ca.cert], { cwd: nowhere });
    assert.equal(flag.code, 0, flag.stderr);
    assert.match(flag.stdout, /^Nodes: 0 ready of 0/);
    const env = await oswalk(['status', '--api', cp.url, '--token', TOKEN], { cwd: nowhere, env: { OSWALK_CA_CERT: ours.paths.ca.cert } });
    assert.equal(env.code, 0, env.stderr);
    const dir = join(root, 'configured');
    mkdirSync(join(dir, '.oswalk'), { recursive: true });
    writeFileSync(join(dir, '.oswalk', 'config.json'), JSON.stringify({ api: cp.url, token: TOKEN, caCert: ours.caCert }));
    const config = await oswalk(['status'], { cwd: dir });
    assert.equal(config.code, 0, config.stderr);
  });

  it('refuses it, saying why, to a CLI that trusts no cluster CA or another cluster\'s', async () => {
    const none = await oswalk(['status', '--api', cp.url, '--token', TOKEN], { cwd: nowhere });
    assert.equal(none.code, EXIT_UNREACHABLE, none.stderr);
    assert.match(none.stderr, new RegExp(`^error: the control plane at ${cp.url} presented a certificate that is not signed by any CA this client trusts \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\), and no cluster CA is set: pass --ca-cert FILE, set OSWALK_CA_CERT, or run from the directory where`));
    const other = await oswalk(['status', '--api', cp.url, '--token', TOKEN, '--ca-cert', theirs.paths.ca.cert], { cwd: nowhere });
    assert.equal(other.code, EXIT_UNREACHABLE, other.stderr);
    assert.match(other.stderr, new RegExp(`^error: the control plane at ${cp.url} presented a certificate that is not signed by the cluster CA this client trusts \\(from --ca-cert; UNABLE_TO_VERIFY_LEAF_SIGNATURE\\): nothing was sent to it, the token neither`));
    // A file that is no CA certificate is named as such, not used.
    const notCa = await oswalk(['status', '--api', cp.url, '--token', TOKEN, '--ca-cert', ours.paths.controlPlane.cert], { cwd: nowhere });
    assert.equal(notCa.code, 1);
    assert.match(notCa.stderr, new RegExp(`^error: ${ours.paths.controlPlane.cert} \\(--ca-cert\\) is not a CA certificate`));
  });

  it('refuses a name its certificate is not for, naming the names it is for', async () => {
    const byName = cp.url.replace('127.0.0.1', 'localhost');
    const r = await oswalk(['status', '--api', byName, '--token', TOKEN, '--ca-cert', ours.paths.ca.cert], { cwd: nowhere });
    assert.equal(r.code, EXIT_UNREACHABLE, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: the control plane at ${byName} presented a certificate for other names \\(IP Address:127\\.0\\.0\\.1\\), not for localhost: nothing was sent to it`));
  });

  it('a server whose certificate the cluster CA did not sign never sees a request or the token: not the CLI\'s, not a joining agent\'s', async () => {
    const cli = await oswalk(['status', '--api', impostorUrl, '--token', TOKEN, '--ca-cert', ours.paths.ca.cert], { cwd: nowhere });
    assert.equal(cli.code, EXIT_UNREACHABLE, cli.stderr);
    assert.match(cli.stderr, /not signed by the cluster CA this client trusts \(from --ca-cert;/);
    const log = pino({ level: 'silent' });
    const stateDir = join(root, 'impostor-agent');
    await assert.rejects(startAgent({
      node: 'n-impostor', controlPlane: impostorUrl, ca: { pem: ours.caCert, source: 'the test' }, token: TOKEN,
      runtime: new ProcessRuntime({ stateDir, logger: log }), exportDir: stateDir, stateDir, listen: { host: '127.0.0.1', port: 0 }, log,
    }), new RegExp(`^Error: node n-impostor cannot join: the control plane at ${impostorUrl} presented a certificate that is not signed by the cluster CA this client trusts \\(from the test;`));
    assert.ok(seen.connections >= 2, `both clients connected (${seen.connections} connections)`);
    assert.deepEqual(seen.requests, []);
  });

  it('an agent joins over HTTPS trusting the cluster CA', async () => {
    const log = pino({ level: 'silent' });
    const stateDir = join(root, 'agent');
    let agent: RunningAgent | undefined;
    try {
      agent = await startAgent({
        node: 'n1', controlPlane: cp.url, ca: { pem: ours.caCert, source: 'the test' }, token: TOKEN,
        runtime: new ProcessRuntime({ stateDir, logger: log }), exportDir: stateDir, stateDir, listen: { host: '127.0.0.1', port: 0 }, log,
      });
      assert.deepEqual((await listNodes(cp.ctx.redis, cp.ctx.ks)).map((n) => [n.name, n.status]), [['n1', 'ready']]);
    } finally {
      await agent?.stop();
    }
  });

  it('the control plane refuses to start with a key that is not its certificate\'s, or with neither a certificate nor --insecure-http', async () => {
    const env = { OSWALK_TOKEN: TOKEN, OSWALK_REDIS_URL: redis.url };
    const listen = ['control-plane', '--listen', `127.0.0.1:${await freePort()}`];
    const mismatch = await oswalk([...listen, '--tls-cert', ours.paths.controlPlane.cert, '--tls-key', theirs.paths.controlPlane.key], { cwd: nowhere, env });
    assert.equal(mismatch.code, 1);
    assert.equal(mismatch.stderr, `error: ${theirs.paths.controlPlane.key} is not the private key of ${ours.paths.controlPlane.cert}: give the key the certificate was issued for\n`);
    const neither = await oswalk(listen, { cwd: nowhere, env });
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /^error: no certificate to serve the API with: run `oswalk cluster init` first .*pass --tls-cert FILE --tls-key FILE, or pass --insecure-http to serve plain HTTP, the token then crossing the network in clear text\n$/);
    const both = await oswalk([...listen, '--insecure-http', '--tls-cert', ours.paths.controlPlane.cert], { cwd: nowhere, env });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error: --insecure-http serves plain HTTP: it takes no --tls-cert or --tls-key\n$/);
    const half = await oswalk([...listen, '--tls-cert', ours.paths.controlPlane.cert], { cwd: nowhere, env });
    assert.equal(half.code, 2);
    assert.match(half.stderr, /^error: --tls-key is missing/);
  });

  it('--insecure-http serves plain HTTP and says in its log that it is insecure; a TLS client is told the server does not speak TLS', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [OSWALK_BIN, 'control-plane', '--listen', `127.0.0.1:${port}`, '--insecure-http', '--prefix', testPrefix()], {
      cwd: nowhere, env: cliEnv({ OSWALK_TOKEN: TOKEN, OSWALK_REDIS_URL: redis.url, OSWALK_LOG_LEVEL: 'info', OSWALK_LOG_FORMAT: 'json' }), stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const warned = await new Promise<{ level: number; msg: string; address: string }>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          const line = out.split('\n').find((l) => l.includes('control plane listening'));
          if (line) resolve(JSON.parse(line));
        });
        child.once('exit', (code) => reject(new Error(`control-plane exited with ${code}:\n${out}`)));
      });
      assert.equal(warned.level, 40, 'a warning');
      assert.equal(warned.address, `http://127.0.0.1:${port}`);
      assert.match(warned.msg, /^control plane listening on plain HTTP \(--insecure-http\): INSECURE, the token and all API traffic cross the network in clear text/);
      const plain = await oswalk(['status', '--api', `http://127.0.0.1:${port}`, '--token', TOKEN], { cwd: nowhere });
      assert.equal(plain.code, 0, plain.stderr);
      const tls = await oswalk(['status', '--api', `https://127.0.0.1:${port}`, '--token', TOKEN, '--ca-cert', ours.paths.ca.cert], { cwd: nowhere });
      assert.equal(tls.code, EXIT_UNREACHABLE);
      assert.equal(tls.stderr, `error: the control plane at https://127.0.0.1:${port} does not speak TLS: if it was started with --insecure-http, its address is http://127.0.0.1:${port} (and everything sent to it, the token too, travels in clear text)\n`);
      // And the other way round: plain HTTP to the TLS control plane.
      const plainToTls = await oswalk(['status', '--api', cp.url.replace('https:', 'http:'), '--token', TOKEN], { cwd: nowhere });
      assert.equal(plainToTls.code, EXIT_UNREACHABLE);
      assert.match(plainToTls.stderr, new RegExp(`\\(a control plane serves HTTPS unless started with --insecure-http: try ${cp.url}\\)\\n$`));
    } finally {
      await stopChild(child, 'SIGTERM');
    }
  });
});
