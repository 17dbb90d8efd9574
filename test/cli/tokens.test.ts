import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { AuditEntry, TokenView } from '../../src/api/auth.js';
import { makeControlPlaneCertificates } from '../../src/cli/certs.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { keyspace } from '../../src/state/keys.js';
import { oswalk, type CliResult } from '../helpers/cli.js';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';

const CLUSTER_TOKEN = 'tokens-test-cluster-token';
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/**
 * Tokens with roles, end to end: a control plane over HTTPS on a real Redis, and the real CLI
 * holding each token in turn, as its user would.
 */
describe('API tokens with roles, and the audit log', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-tokens-'));
  let redis: TestRedis;
  let db: Redis;
  let cp: RunningControlPlane;
  let prefix: string;
  let caFile: string;
  const secrets: Record<string, string> = {};

  /** The CLI in a directory with no config, holding `token`. */
  const as = (token: string, args: string[]): Promise<CliResult> =>
    oswalk(args, { cwd: root, env: { OSWALK_API: cp.url, OSWALK_TOKEN: token, OSWALK_CA_CERT: caFile } });

  async function create(name: string, role: string, extra: string[] = [], by = CLUSTER_TOKEN): Promise<string> {
    const r = await as(by, ['token', 'create', name, '--role', role, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    const m = /^Secret \(shown this once\): (osw_[A-Za-z0-9_-]{43})$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    secrets[name] = m[1];
    return m[1];
  }

  before(async () => {
    redis = await TestRedis.start();
    db = new Redis(redis.url);
    const certs = await makeControlPlaneCertificates(join(root, 'cluster'), ['127.0.0.1'], 'test');
    caFile = certs.paths.ca.cert;
    prefix = testPrefix();
    cp = await startControlPlane({
      redisUrl: redis.url, token: CLUSTER_TOKEN, tls: { cert: certs.cert, key: certs.key }, host: '127.0.0.1', port: await freePort(), prefix,
    });
    mkdirSync(join(root, 'work'));
    writeFileSync(join(root, 'work', 'job.yaml'), 'apiVersion: oswalk.dev/v1\nkind: Job\nmetadata:\n  name: from-operator\nspec:\n  command: ["true"]\n');
  });
  after(async () => {
    await cp?.close();
    db?.disconnect();
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('the cluster token makes tokens of each role; the secret is printed once, and only its hash is stored', async () => {
    await create('viewer', 'read-only');
    await create('ops', 'operator');
    await create('boss', 'admin');
    const stored = await db.hgetall(keyspace(prefix).tokens);
    assert.equal(Object.keys(stored).length, 3);
    for (const s of Object.values(secrets)) assert.ok(!JSON.stringify(stored).includes(s), 'no secret is stored');
    const list = await as(CLUSTER_TOKEN, ['token', 'list', '-o', 'json']);
    assert.equal(list.code, 0, list.stderr);
    const items = (JSON.parse(list.stdout) as { items: (Omit<TokenView, 'createdAt' | 'expiresAt'> & { expiresAt: string | null })[] }).items;
    assert.deepEqual(items.map((t) => [t.name, t.role, t.createdBy, t.expiresAt]), [
      ['boss', 'admin', 'cluster-token', null], ['ops', 'operator', 'cluster-token', null], ['viewer', 'read-only', 'cluster-token', null],
    ]);
    for (const s of Object.values(secrets)) assert.ok(!list.stdout.includes(s));
    const table = await as(CLUSTER_TOKEN, ['token', 'list']);
    assert.match(table.stdout, /^NAME +ROLE +AGE +EXPIRES +CREATED BY *\nboss +admin +\d+s +never +cluster-token\n/);
  });

  it('reads the token from the file OSWALK_TOKEN_FILE names when OSWALK_TOKEN is unset or empty, and says what is wrong with a bad one', async () => {
    const file = join(root, 'token');
    writeFileSync(file, `${CLUSTER_TOKEN}\n`, { mode: 0o600 });
    const env = { OSWALK_API: cp.url, OSWALK_CA_CERT: caFile, OSWALK_TOKEN_FILE: file };
    for (const token of [undefined, '']) {
      const r = await oswalk(['get', 'nodes'], { cwd: root, env: { ...env, ...(token === undefined ? {} : { OSWALK_TOKEN: token }) } });
      assert.equal(r.code, 0, r.stderr);
    }
    const missing = await oswalk(['get', 'nodes'], { cwd: root, env: { ...env, OSWALK_TOKEN_FILE: join(root, 'no-such-token') } });
    assert.equal(missing.code, EXIT_FAILED);
    assert.match(missing.stderr, /OSWALK_TOKEN_FILE \S+no-such-token: ENOENT: point it at a readable file holding the token, or set OSWALK_TOKEN/);
    writeFileSync(join(root, 'empty'), '\n');
    const empty = await oswalk(['get', 'nodes'], { cwd: root, env: { ...env, OSWALK_TOKEN_FILE: join(root, 'empty') } });
    assert.match(empty.stderr, /OSWALK_TOKEN_FILE \S+empty is empty/);
  });

  it('a read-only token looks but cannot run, apply or manage tokens: 403 naming the role it needs', async () => {
    for (const args of [['status'], ['get', 'jobs'], ['get', 'nodes']]) {
      const r = await as(secrets.viewer, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const run = await as(secrets.viewer, ['run', '--', 'true']);
    assert.equal(run.code, EXIT_FAILED);
    assert.match(run.stderr, /^error: the token "viewer" is read-only, and POST \/v1\/jobs needs operator: use a token with that role \(an admin makes one with oswalk token create --role operator\)\n$/);
    const apply = await as(secrets.viewer, ['apply', '-f', join(root, 'work', 'job.yaml')]);
    assert.equal(apply.code, EXIT_FAILED);
    assert.match(apply.stderr, /the token "viewer" is read-only, and POST \/v1\/apply needs operator/);
    const make = await as(secrets.viewer, ['token', 'create', 'mine', '--role', 'admin']);
    assert.match(make.stderr, /the token "viewer" is read-only, and POST \/v1\/tokens needs admin/);
    assert.deepEqual(Object.keys(await db.hgetall(keyspace(prefix).tokens)).length, 3, 'nothing was made');
  });

  it('an operator runs and applies, but cannot manage tokens, remove nodes or let an agent join', async () => {
    const apply = await as(secrets.ops, ['apply', '-f', join(root, 'work', 'job.yaml')]);
    assert.equal(apply.code, 0, apply.stderr);
    const del = await as(secrets.ops, ['delete', 'job', 'from-operator']);
    assert.equal(del.code, 0, del.stderr);
    const list = await as(secrets.ops, ['token', 'list']);
    assert.match(list.stderr, /the token "ops" is operator, and GET \/v1\/tokens needs admin/);
    const remove = await as(secrets.ops, ['node', 'remove', 'n1', '--no-wait']);
    assert.match(remove.stderr, /the token "ops" is operator, and POST \/v1\/nodes\/:name\/remove needs admin/);
    const joined = await fetchAs(secrets.ops, 'POST', '/v1/agents/join', { node: 'n-stolen' });
    assert.equal(joined.status, 403, 'an operator\'s token does not get the cluster\'s Redis password');
    assert.ok(!joined.text.includes('redis'), joined.text);
  });

  it('an admin token manages tokens as the cluster token does; a name is taken once; a bad role is a usage error', async () => {
    await create('ci', 'operator', ['--ttl', '30d'], secrets.boss);
    const list = JSON.parse((await as(secrets.boss, ['token', 'list', '-o', 'json'])).stdout) as { items: { name: string; createdBy: string; expiresAt: string }[] };
    const ci = list.items.find((t) => t.name === 'ci')!;
    assert.equal(ci.createdBy, 'boss');
    const days = (Date.parse(ci.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);
    const again = await as(secrets.boss, ['token', 'create', 'ci', '--role', 'read-only']);
    assert.equal(again.code, EXIT_FAILED);
    assert.match(again.stderr, /^error: a token named "ci" exists: revoke it first \(oswalk token revoke ci\) or pick another name\n$/);
    const role = await as(secrets.boss, ['token', 'create', 'x', '--role', 'root']);
    assert.equal(role.code, EXIT_USAGE);
    assert.match(role.stderr, /^error: --role "root": use one of read-only, operator, admin, node, control-plane\n$/);
    const reserved = await as(secrets.boss, ['token', 'create', 'cluster-token', '--role', 'admin']);
    assert.match(reserved.stderr, /"cluster-token" is the cluster token's name in the audit log/);
  });

  it('a revoked token is refused at its next request; an expired one once its time is up', async () => {
    assert.equal((await as(secrets.viewer, ['status'])).code, 0);
    const revoke = await as(secrets.boss, ['token', 'revoke', 'viewer']);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, 'token/viewer revoked\n');
    const refused = await as(secrets.viewer, ['status']);
    assert.equal(refused.code, EXIT_FAILED);
    assert.match(refused.stderr, /^error: the control plane refused the token: a valid bearer token is required; this one is missing, unknown, revoked or expired/);
    const gone = await as(secrets.boss, ['token', 'revoke', 'viewer']);
    assert.equal(gone.code, 4, 'not found');
    assert.match(gone.stderr, /no token named "viewer"/);

    await create('brief', 'read-only', ['--ttl', '1s']);
    const made = Date.now();
    assert.equal((await as(secrets.brief, ['status'])).code, 0);
    await new Promise((r) => setTimeout(r, Math.max(0, made + 1500 - Date.now())));
    const expired = await as(secrets.brief, ['status']);
    assert.equal(expired.code, EXIT_FAILED);
    assert.match(expired.stderr, /refused the token/);
    const names = ((JSON.parse((await as(CLUSTER_TOKEN, ['token', 'list', '-o', 'json'])).stdout)) as { items: { name: string }[] }).items.map((t) => t.name);
    assert.deepEqual(names, ['boss', 'ci', 'ops'], 'expired and revoked tokens are not listed');
  });

  it('the audit log names the token behind every change and every refusal, never a secret, and leaves reads out', async () => {
    const r = await as(secrets.boss, ['audit', '--limit', '1000', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    for (const s of [...Object.values(secrets), CLUSTER_TOKEN]) assert.ok(!r.stdout.includes(s), 'no secret in the audit log');
    const entries = (JSON.parse(r.stdout) as { items: (Omit<AuditEntry, 'at'> & { at: string })[] }).items;
    const seen = entries.map((e) => `${e.token}|${e.role}|${e.method} ${e.path}|${e.status}`);
    for (const want of [
      'cluster-token|admin|POST /v1/tokens|201',
      'viewer|read-only|POST /v1/jobs|403',
      'viewer|read-only|POST /v1/apply|403',
      'ops|operator|POST /v1/apply|200',
      'ops|operator|DELETE /v1/objects/Job/from-operator|200',
      'ops|operator|POST /v1/agents/join|403',
      'boss|admin|POST /v1/tokens|201',
      'boss|admin|DELETE /v1/tokens/viewer|200',
      '||GET /v1/status|401',
    ]) assert.ok(seen.includes(want), `${want} in:\n${seen.join('\n')}`);
    assert.ok(!seen.some((s) => s.includes('|GET ') && !s.endsWith('|401') && !s.endsWith('|403')), 'reads that were allowed are left out');
    assert.ok(entries.every((e) => e.from === '127.0.0.1'));
    const newestFirst = entries.map((e) => Date.parse(e.at));
    assert.deepEqual(newestFirst, [...newestFirst].sort((a, b) => b - a));
    const table = await as(secrets.boss, ['audit', '--limit', '2']);
    assert.match(table.stdout, /^TIME +TOKEN +ROLE +REQUEST +STATUS +FROM *\n/);
    const ops = await as(secrets.ops, ['audit']);
    assert.match(ops.stderr, /GET \/v1\/audit needs admin/);
  });

  /** A raw request, for a route the CLI has no command for. */
  async function fetchAs(token: string, method: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
    const { request } = await import('node:https');
    const { readFileSync } = await import('node:fs');
    return new Promise((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(body));
      const req = request(cp.url + path, {
        method, ca: readFileSync(caFile),
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': payload.length },
      }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.once('error', reject);
      req.end(payload);
    });
  }
});
