import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { makeControlPlaneCertificates } from '../../src/cli/certs.js';
import { connectRedis } from '../../src/state/redis.js';
import { OSWALK_BIN, cliEnv, oswalk, stopChild } from '../helpers/cli.js';
import { freePort } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { httpStatus } from '../helpers/http-status.js';

const MASTER = 'oswalk-primary';

/** GET url's status; 0 when nothing answers. */
/**
 * Redis Sentinel over TLS, for real: a primary, a replica and a Sentinel (Debian's
 * redis-server, the Sentinel as redis-server --sentinel), each listening for TLS only on a free loopback port, with a
 * certificate from the project's own CA and a password; an `oswalk control-plane` and a state
 * client reach the primary through the Sentinel with a rediss+sentinel:// URL, the password
 * from a file; a client without the CA is refused.
 */
describe('rediss+sentinel://: TLS to the Sentinels and the primary', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-sentinel-tls-'));
  const password = randomBytes(18).toString('base64url');
  const passwordFile = join(root, 'redis.password');
  const procs: ChildProcess[] = [];
  const ports: Record<'primary' | 'replica' | 'sentinel' | 'cp', number> = { primary: 0, replica: 0, sentinel: 0, cp: 0 };
  let caFile: string;
  let url: string;

  /** A TLS-only server's configuration, as a 0600 file: the password stays off the command line. */
  function conf(name: string, port: number, lines: string[]): string {
    const tls = (k: string) => join(root, '.oswalk', 'pki', k);
    const file = join(root, `${name}.conf`);
    writeFileSync(file, [
      'port 0', `tls-port ${port}`, 'bind 127.0.0.1', `dir ${root}`, `pidfile ${join(root, `${name}.pid`)}`,
      `tls-cert-file ${tls('redis.crt')}`, `tls-key-file ${tls('redis.key')}`, `tls-ca-cert-file ${tls('ca.crt')}`,
      // Clients authenticate with the password; TLS keeps it and the data from the network.
      'tls-auth-clients no', 'tls-replication yes', ...lines, '',
    ].join('\n'), { mode: 0o600 });
    return file;
  }

  /** A client of one server, over TLS with the CA and the password. */
  const direct = (port: number) => new Redis({ host: '127.0.0.1', port, password, tls: { ca: readFileSync(caFile, 'utf8') }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });

  async function answers(port: number, command: (r: Redis) => Promise<boolean>): Promise<boolean> {
    const r = direct(port);
    r.on('error', () => undefined);
    try {
      await r.connect();
      return await command(r);
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  }

  before(async () => {
    const certs = await makeControlPlaneCertificates(root, ['127.0.0.1', 'localhost'], 'test', 'redis');
    caFile = certs.paths.ca.cert;
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    const auth = [`requirepass ${password}`, `masterauth ${password}`, 'save ""', 'appendonly no'];
    procs.push(spawn('redis-server', [conf('primary', ports.primary, auth)], { stdio: 'ignore' }));
    await until('the primary to answer over TLS', () => answers(ports.primary, async (r) => (await r.ping()) === 'PONG'), 10_000);
    procs.push(spawn('redis-server', [conf('replica', ports.replica, [...auth, `replicaof 127.0.0.1 ${ports.primary}`])], { stdio: 'ignore' }));
    // redis-server --sentinel is redis-sentinel (Debian's package ships only the symlink's target, at times).
    procs.push(spawn('redis-server', [conf('sentinel', ports.sentinel, [
      `sentinel monitor ${MASTER} 127.0.0.1 ${ports.primary} 1`, `sentinel auth-pass ${MASTER} ${password}`, `sentinel down-after-milliseconds ${MASTER} 5000`,
    ]), '--sentinel'], { stdio: 'ignore' }));
    // The replica in sync over TLS, and the Sentinel knowing it: the whole set up.
    await until('the replica to be in sync', () => answers(ports.primary, async (r) => /connected_slaves:1\b/.test(await r.info('replication')) && /state=online/.test(await r.info('replication'))), 15_000);
    url = `rediss+sentinel://127.0.0.1:${ports.sentinel}/${MASTER}`;
  });
  after(async () => {
    for (const p of procs.reverse()) await stopChild(p, 'SIGTERM');
    rmSync(root, { recursive: true, force: true });
  });

  it('a control plane reaches the primary through the Sentinel over TLS, the password from a file, and writes and reads', async () => {
    const cp = spawn(process.execPath, [OSWALK_BIN, 'control-plane', '--insecure-http', '--listen', `127.0.0.1:${ports.cp}`], {
      env: cliEnv({ OSWALK_LOG_LEVEL: 'info', OSWALK_TOKEN: 'sentinel-tls-token', OSWALK_REDIS_URL: url, OSWALK_REDIS_PASSWORD_FILE: passwordFile, OSWALK_REDIS_CA_CERT: caFile }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(cp);
    let out = '';
    cp.stdout!.on('data', (d) => (out += d));
    cp.stderr!.on('data', (d) => (out += d));
    await until('the control plane to be ready', async () => {
      if (cp.exitCode !== null) assert.fail(`control-plane exited with ${cp.exitCode}:\n${out}`);
      return (await httpStatus(`http://127.0.0.1:${ports.cp}/readyz`)) === 200;
    }, 20_000).catch((err: Error) => assert.fail(`${err.message}; its output:\n${out}`));
    const proc = readFileSync(`/proc/${cp.pid}/cmdline`, 'utf8') + readFileSync(`/proc/${cp.pid}/environ`, 'utf8');
    assert.ok(!proc.includes(password), 'the password is on neither its command line nor in its environment');
    const env = { OSWALK_API: `http://127.0.0.1:${ports.cp}`, OSWALK_TOKEN: 'sentinel-tls-token' };
    const made = await oswalk(['token', 'create', 'through-sentinel', '--role', 'read-only'], { cwd: root, env });
    assert.equal(made.code, 0, made.stderr);
    const listed = await oswalk(['token', 'list', '-o', 'json'], { cwd: root, env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as { items: { name: string }[] }).items.map((t) => t.name), ['through-sentinel']);
    // Written on the primary, and replicated over TLS to the replica.
    await until('the token to reach the replica', () => answers(ports.replica, async (r) => (await r.keys('*tokens*')).length === 1), 5000);
    await stopChild(cp, 'SIGTERM');
  });

  it('a state client with the CA writes and reads through the Sentinel; one without it is refused', async () => {
    const withPassword = url.replace('://', `://:${password}@`);
    // The CA is read from the environment when the client is made.
    process.env.OSWALK_REDIS_CA_CERT = caFile;
    const trusting = connectRedis(withPassword);
    delete process.env.OSWALK_REDIS_CA_CERT;
    try {
      await trusting.set('sentinel-tls-probe', 'written');
      assert.equal(await trusting.get('sentinel-tls-probe'), 'written');
      const info = await trusting.info('server');
      assert.match(info, new RegExp(`tcp_port:${ports.primary}\\b`), 'it talks to the primary');
    } finally {
      trusting.disconnect();
    }

    assert.equal(process.env.OSWALK_CA_CERT, undefined, 'the test runs without a cluster CA in its environment');
    const untrusting = connectRedis(withPassword, { lazyConnect: true, sentinelRetryStrategy: () => null, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    untrusting.on('error', () => undefined);
    try {
      // ioredis words it as a closed connection; the handshakes below say why.
      await assert.rejects(untrusting.connect(), /All sentinels are unreachable/);
    } finally {
      untrusting.disconnect();
    }
    // Neither the Sentinel nor the primary passes a TLS handshake that trusts the system's CAs alone.
    for (const port of [ports.sentinel, ports.primary]) {
      const code = await new Promise<string | undefined>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(undefined);
        });
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      });
      assert.equal(code, 'SELF_SIGNED_CERT_IN_CHAIN', `port ${port}`);
    }
  });
});
