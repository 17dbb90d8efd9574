import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { makeControlPlaneCertificates } from '../../src/cli/certs.js';
import { startControlPlane as startInProcess } from '../../src/controlplane/index.js';
import { createToken } from '../../src/state/tokens.js';
import { OSWALK_BIN, cliEnv, oswalk, stopChild, type CliResult } from '../helpers/cli.js';
import { TestRedis, freePort } from '../helpers/redis.js';
import { until } from '../helpers/until.js';
import { httpStatus } from '../helpers/http-status.js';

const REDIS_PASSWORD = 'cp-join-redis-password';

/** GET url's status, trusting ca alone; 0 when nothing answers. */
/**
 * A second control plane joining the cluster with a join token of role control-plane, for
 * real: `oswalk control-plane` processes, a Redis with a password, an `oswalk agent` joining
 * through the second one and a job run through it; and the tokens that must not open that door.
 */
describe('oswalk control-plane --join: a control plane joins with a join token of its own', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-cp-join-'));
  const clusterDir = join(root, 'cluster');
  /** A directory with no .oswalk, as on another machine. */
  const elsewhere = join(root, 'elsewhere');
  const caFile = join(clusterDir, '.oswalk', 'pki', 'ca.crt');
  let redis: TestRedis;
  let clusterToken: string;
  let ca: string;
  const ports: Record<string, number> = {};
  const children: ChildProcess[] = [];
  const outputs = new Map<ChildProcess, () => string>();
  const secrets: Record<string, string> = {};

  /** `oswalk control-plane ...` until its /readyz answers 200 (or it exits: then its output fails the test). */
  async function startControlPlane(name: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<ChildProcess> {
    ports[name] ??= await freePort();
    const child = spawn(process.execPath, [OSWALK_BIN, 'control-plane', '--listen', `127.0.0.1:${ports[name]}`, ...args], {
      cwd, env: cliEnv({ OSWALK_LOG_LEVEL: 'info', ...env }), stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    outputs.set(child, () => out);
    await until(`control plane ${name} to be ready`, async () => {
      if (child.exitCode !== null) assert.fail(`control plane ${name} exited with ${child.exitCode}:\n${out}`);
      return (await httpStatus(`https://127.0.0.1:${ports[name]}/readyz`, ca)) === 200;
    }, 20_000);
    return child;
  }

  const url = (name: string) => `https://127.0.0.1:${ports[name]}`;
  const cli = (args: string[], token: string, api = url('cp1')): Promise<CliResult> =>
    oswalk(args, { cwd: elsewhere, env: { OSWALK_API: api, OSWALK_TOKEN: token, OSWALK_CA_CERT: caFile } });
  const tryJoin = (stateDir: string, token: string): Promise<CliResult> =>
    oswalk(['control-plane', '--join', url('cp1'), '--san', '127.0.0.1', '--listen', '127.0.0.1:0', '--state-dir', stateDir, '--ca-cert', caFile], {
      cwd: elsewhere, env: { OSWALK_TOKEN: token },
    });

  before(async () => {
    mkdirSync(elsewhere);
    redis = await TestRedis.start();
    const admin = new Redis(redis.url);
    await admin.config('SET', 'requirepass', REDIS_PASSWORD);
    admin.disconnect();
    ports.cp1 = await freePort();
    const init = await oswalk(['cluster', 'init', '--nodes', 'n1', '--dir', clusterDir, '--control-plane', url('cp1'), '-o', 'json']);
    assert.equal(init.code, 0, init.stderr);
    clusterToken = (JSON.parse(init.stdout) as { token: string }).token;
    ca = readFileSync(caFile, 'utf8');
    // Where cluster init ran: it finds the CA's key and its certificate there.
    await startControlPlane('cp1', [], { OSWALK_TOKEN: clusterToken, OSWALK_REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}` }, clusterDir);
    for (const [name, role] of [['cp-join', 'control-plane'], ['nodes', 'node']]) {
      const made = await cli(['token', 'create', name, '--role', role, '-o', 'json'], clusterToken);
      assert.equal(made.code, 0, made.stderr);
      secrets[name] = (JSON.parse(made.stdout) as { secret: string }).secret;
    }
  });
  after(async () => {
    for (const c of children) await stopChild(c, 'SIGTERM');
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('a second control plane joins with the token, keeps what it was given 0600 in its state directory, and an agent joins through it and runs a job', async () => {
    const stateDir = join(root, 'cp2-state');
    const cp2 = await startControlPlane('cp2', ['--join', url('cp1'), '--san', '127.0.0.1,cp2.example', '--state-dir', stateDir, '--ca-cert', caFile], { OSWALK_TOKEN: secrets['cp-join'] }, elsewhere);

    // What it holds: the CA, a certificate of its own for its names, Redis and the cluster token.
    const files = ['pki/ca.crt', 'pki/ca.key', 'pki/control-plane.crt', 'pki/control-plane.key', 'cluster.json'];
    assert.deepEqual(readdirSync(join(stateDir, 'pki')).sort(), ['ca.crt', 'ca.key', 'control-plane.crt', 'control-plane.key']);
    for (const f of files) assert.equal(statSync(join(stateDir, f)).mode & 0o777, 0o600, f);
    for (const d of [stateDir, join(stateDir, 'pki')]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
    const served = new X509Certificate(readFileSync(join(stateDir, 'pki', 'control-plane.crt')));
    assert.equal(served.subjectAltName, 'IP Address:127.0.0.1, DNS:cp2.example');
    assert.ok(served.verify(new X509Certificate(ca).publicKey), 'signed by the cluster CA');
    assert.equal(readFileSync(join(stateDir, 'pki', 'ca.key'), 'utf8'), readFileSync(join(clusterDir, '.oswalk', 'pki', 'ca.key'), 'utf8'));
    const state = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as { redisUrl: string; token: string };
    assert.equal(state.redisUrl, `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}`);
    assert.equal(state.token, clusterToken);
    // None of it on its command line, in its environment or in its log.
    const proc = readFileSync(`/proc/${cp2.pid}/cmdline`, 'utf8') + readFileSync(`/proc/${cp2.pid}/environ`, 'utf8');
    for (const secret of [REDIS_PASSWORD, clusterToken]) assert.ok(!proc.includes(secret), 'no secret of the answer on its command line or in its environment');
    const log = outputs.get(cp2)!();
    assert.match(log, /control plane listening \(HTTPS\)/);
    for (const secret of [REDIS_PASSWORD, clusterToken, secrets['cp-join'], 'PRIVATE KEY']) assert.ok(!log.includes(secret), `its log does not hold ${secret.slice(0, 12)}…:\n${log}`);

    // The cluster token, an admin's, works on the new control plane as on the first.
    const status = await cli(['get', 'nodes', '-o', 'json'], clusterToken, url('cp2'));
    assert.equal(status.code, 0, status.stderr);

    // An agent joins through the new control plane with a node token, and gets a node
    // certificate it signed with the CA's key it was given.
    const nodeState = join(root, 'n1-state');
    const agent = spawn(process.execPath, [OSWALK_BIN, 'agent', '--node', 'n1', '--control-plane', url('cp2'), '--ca-cert', caFile, '--runtime', 'process',
      '--state-dir', nodeState, '--export', join(nodeState, 'export'), '--no-mount', '--listen', '127.0.0.1:0'], {
      cwd: elsewhere, env: cliEnv({ OSWALK_TOKEN: secrets.nodes }), stdio: 'ignore',
    });
    children.push(agent);
    await until('n1 to be ready', async () => {
      const r = await cli(['get', 'nodes', '-o', 'json'], clusterToken, url('cp2'));
      return r.code === 0 && (JSON.parse(r.stdout) as { items: { name: string; status: string }[] }).items.some((n) => n.name === 'n1' && n.status === 'ready');
    }, 30_000);
    assert.ok(existsSync(join(nodeState, 'pki', 'node.pem')), 'the node got a certificate');
    const nodeCert = new X509Certificate(readFileSync(join(nodeState, 'pki', 'node.pem')));
    assert.ok(nodeCert.verify(new X509Certificate(ca).publicKey), 'signed by the cluster CA');

    const run = await cli(['run', '--', 'sh', '-c', 'echo "ran on $OSWALK_NODE"'], clusterToken, url('cp2'));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /ran on n1/);

    // Restarted without the token or the other control plane: it starts from its state directory.
    await stopChild(cp2, 'SIGTERM');
    await startControlPlane('cp2', ['--state-dir', stateDir], {}, elsewhere);
    const again = await cli(['get', 'nodes', '-o', 'json'], clusterToken, url('cp2'));
    assert.equal(again.code, 0, again.stderr);
  });

  it('a node join token is refused at the control-plane join, and nothing is written', async () => {
    const stateDir = join(root, 'with-node-token');
    const r = await tryJoin(stateDir, secrets.nodes);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the token "nodes" is node, and POST \/v1\/control-planes\/join needs control-plane/);
    assert.ok(!existsSync(join(stateDir, 'cluster.json')));
  });

  it('a control-plane join token joins no agent and does nothing an operator or a reader does', async () => {
    const token = secrets['cp-join'];
    for (const args of [['get', 'nodes'], ['run', '--', 'true'], ['token', 'list']]) {
      const r = await cli(args, token);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /the token "cp-join" is control-plane/);
    }
    const nodeState = join(root, 'n2-state');
    const agent = await oswalk(['agent', '--node', 'n2', '--control-plane', url('cp1'), '--ca-cert', caFile, '--runtime', 'process',
      '--state-dir', nodeState, '--export', join(nodeState, 'export'), '--no-mount', '--listen', '127.0.0.1:0'], { cwd: elsewhere, env: { OSWALK_TOKEN: token } });
    assert.equal(agent.code, 1, agent.stderr);
    assert.match(agent.stderr, /refused node n2: 403 .*needs node/);
  });

  it('a revoked control-plane join token lets no more control planes join', async () => {
    const revoke = await cli(['token', 'revoke', 'cp-join'], clusterToken);
    assert.equal(revoke.code, 0, revoke.stderr);
    const stateDir = join(root, 'after-revoke');
    const r = await tryJoin(stateDir, secrets['cp-join']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /a valid bearer token is required; this one is missing, unknown, revoked or expired/);
    assert.ok(!existsSync(join(stateDir, 'cluster.json')));
  });

  it('a control plane without the CA\'s key refuses the join, saying where to join instead; an http:// --join is refused before anything is sent', async () => {
    const certs = await makeControlPlaneCertificates(join(root, 'keyless'), ['127.0.0.1'], 'test');
    // Its certificate from the cluster's own CA would do as well: what matters is no CA key.
    const keyless = await startInProcess({
      redisUrl: `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}`, token: 'keyless-cluster-token', tls: { cert: certs.cert, key: certs.key },
      host: '127.0.0.1', port: await freePort(),
    });
    try {
      const token = (await createToken(keyless.ctx.redis, keyless.ctx.ks, { name: 'cp-keyless', role: 'control-plane', createdBy: 'the test' })).secret;
      const stateDir = join(root, 'keyless-state');
      const r = await oswalk(['control-plane', '--join', keyless.url, '--san', '127.0.0.1', '--listen', '127.0.0.1:0', '--state-dir', stateDir, '--ca-cert', certs.paths.ca.cert], {
        cwd: elsewhere, env: { OSWALK_TOKEN: token },
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /holds no cluster CA key, so it cannot admit another: join through one started with the CA/);
      assert.ok(!existsSync(join(stateDir, 'cluster.json')));
    } finally {
      await keyless.close();
    }
    const plain = await oswalk(['control-plane', '--join', `http://127.0.0.1:${ports.cp1}`, '--san', '127.0.0.1', '--state-dir', join(root, 'plain-state'), '--ca-cert', caFile], {
      cwd: elsewhere, env: { OSWALK_TOKEN: 'anything' },
    });
    assert.equal(plain.code, 2, plain.stderr);
    assert.match(plain.stderr, /over https:\/\/ only/);
  });
});
