/**
 * The dashboard's sessions at the API, without a browser (test/dashboard/ drives one): a token
 * exchanged for a cookie; the cookie good for reads, and for writes only from the page's own
 * origin; a user token's session ends with the token; any control plane of the cluster serves a
 * session another one made; --no-dashboard takes the page and the cookie away.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { registerNode } from '../../src/state/nodes.js';
import { TestRedis, testPrefix } from '../helpers/redis.js';

const TOKEN = 'session-test-token';

describe('dashboard sessions at the API', () => {
  let server: TestRedis;
  let cp: RunningControlPlane;
  let other: RunningControlPlane;
  let off: RunningControlPlane;

  before(async () => {
    server = await TestRedis.start();
    const prefix = testPrefix();
    const start = (dashboard: boolean) => startControlPlane({ redisUrl: server.url, token: TOKEN, tls: 'insecure-http', host: '127.0.0.1', port: 0, prefix, dashboard });
    cp = await start(true);
    other = await start(true);
    off = await start(false);
    await registerNode(cp.ctx.redis, cp.ctx.ks, {
      name: 'n1', address: '127.0.0.1', agentUrl: 'http://127.0.0.1:1', labels: {}, runtime: 'process', cpus: 1, memoryBytes: 2 ** 30,
      load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/tmp', mountPath: '/cluster',
    });
  });
  after(async () => {
    await Promise.all([cp?.close(), other?.close(), off?.close()]);
    await server?.stop();
  });

  const login = async (base: string, token: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ token }) });
    return { res, cookie: res.headers.get('set-cookie') ?? '' };
  };
  const session = (cookie: string) => cookie.split(';')[0];

  it('exchanges a token for an HttpOnly, SameSite=Strict cookie; a wrong token gets none', async () => {
    const wrong = await login(cp.url, 'nope');
    assert.equal(wrong.res.status, 401);
    assert.equal(wrong.cookie, '');
    const { res, cookie } = await login(cp.url, TOKEN);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { name: 'cluster-token', role: 'admin' });
    assert.match(cookie, /^oswalk_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800$/, 'plain HTTP: not Secure');
    assert.ok(!cookie.includes(TOKEN));
    const me = await fetch(`${cp.url}/v1/session`, { headers: { cookie: session(cookie) } });
    assert.deepEqual(await me.json(), { loggedIn: true, name: 'cluster-token', role: 'admin' });
    assert.deepEqual(await (await fetch(`${cp.url}/v1/session`)).json(), { loggedIn: false });
  });

  it('takes the cookie for reads, and for writes only with the page\'s own Origin; any control plane of the cluster serves it', async () => {
    const c = session((await login(cp.url, TOKEN)).cookie);
    assert.equal((await fetch(`${cp.url}/v1/status`, { headers: { cookie: c } })).status, 200);
    assert.equal((await fetch(`${other.url}/v1/status`, { headers: { cookie: c } })).status, 200, 'made on one control plane, good on another');
    const drain = (origin?: string) => fetch(`${cp.url}/v1/nodes/n1/drain`, { method: 'POST', headers: { cookie: c, ...(origin ? { origin } : {}) } });
    const refused = await drain('http://evil.example');
    assert.equal(refused.status, 403);
    assert.match((await refused.json() as { message: string }).message, /from its own page/);
    assert.equal((await drain()).status, 403, 'no Origin at all');
    assert.equal((await drain(cp.url)).status, 200);
    assert.equal((await fetch(`${cp.url}/v1/nodes/n1/uncordon`, { method: 'POST', headers: { cookie: c, origin: cp.url } })).status, 200);
    // Logging in from another site's page is refused too.
    assert.equal((await login(cp.url, TOKEN, { origin: 'http://evil.example' })).res.status, 403);
  });

  it('ends a session at log out, and a user token\'s session and live stream when the token is revoked', async () => {
    const c = session((await login(cp.url, TOKEN)).cookie);
    // The live stream opened with it ends with the session too.
    const events = await fetch(`${cp.url}/v1/events`, { headers: { cookie: c } });
    assert.equal(events.status, 200);
    const reader = events.body!.getReader();
    let text = '';
    while (!text.includes('event: cluster')) text += new TextDecoder().decode((await reader.read()).value);
    assert.equal((await fetch(`${cp.url}/v1/session`, { method: 'DELETE', headers: { cookie: c } })).status, 204);
    assert.equal((await fetch(`${cp.url}/v1/status`, { headers: { cookie: c } })).status, 401);
    const ended = Date.now();
    while (!(await reader.read()).done) assert.ok(Date.now() - ended < 5000, 'the stream still runs 5 s after log out');

    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const made = await (await fetch(`${cp.url}/v1/tokens`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'alice', role: 'read-only' }) })).json() as { secret: string };
    const alice = session((await login(cp.url, made.secret)).cookie);
    assert.equal((await fetch(`${cp.url}/v1/status`, { headers: { cookie: alice } })).status, 200);
    const drain = await fetch(`${cp.url}/v1/nodes/n1/drain`, { method: 'POST', headers: { cookie: alice, origin: cp.url } });
    assert.equal(drain.status, 403, 'a read-only token\'s session cannot drain');
    // A stream opened with the token itself (no session) ends when the token is revoked.
    const bearerEvents = await fetch(`${cp.url}/v1/events`, { headers: { authorization: `Bearer ${made.secret}` } });
    assert.equal(bearerEvents.status, 200);
    const bearerReader = bearerEvents.body!.getReader();
    let seen = '';
    while (!seen.includes('event: cluster')) seen += new TextDecoder().decode((await bearerReader.read()).value);
    assert.equal((await fetch(`${cp.url}/v1/tokens/alice`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await fetch(`${cp.url}/v1/status`, { headers: { cookie: alice } })).status, 401, 'revoked with its token');
    const revoked = Date.now();
    while (!(await bearerReader.read()).done) assert.ok(Date.now() - revoked < 5000, 'the stream still runs 5 s after its token was revoked');
  });

  it('serves security headers on every answer, and with --no-dashboard neither the page nor sessions', async () => {
    const page = await fetch(`${cp.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const api = await fetch(`${cp.url}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(api.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(api.headers.get('referrer-policy'), 'no-referrer');

    const c = session((await login(cp.url, TOKEN)).cookie);
    // No such routes there: refused as any unknown path is (401 without a token, 404 with one).
    assert.equal((await fetch(`${off.url}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    const offLogin = await login(off.url, TOKEN);
    assert.equal(offLogin.res.status, 401);
    assert.equal(offLogin.cookie, '');
    assert.equal((await fetch(`${off.url}/v1/status`, { headers: { cookie: c } })).status, 401, 'the cookie counts for nothing there');
    assert.equal((await fetch(`${off.url}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  });
});
