/**
 * The web dashboard in a real browser (Debian's Chromium, driven by playwright-core) against an
 * `oswalk up` cluster of three nodes: log in with the cluster token (a wrong one refused), see the
 * nodes, watch a job started from the CLI appear, run and finish without a reload and follow its
 * output, cancel a job, drain and uncordon a node, apply YAML (a bad manifest shown at its line),
 * log out. Output that carries HTML or terminal
 * escapes is shown as text; the token is in no URL and no storage of the page; the session
 * cookie is HttpOnly and SameSite=Strict; a write from another origin is refused with it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { oswalk, startOswalk, stopChild } from '../helpers/cli.js';
import { freePort } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

/** Debian's Chromium (apt-get install chromium); the set-up installs it for the tests. */
const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? undefined : `no browser at ${CHROMIUM} (apt-get install chromium)`;
if (skip) process.stderr.write(`\n!!!!! DASHBOARD TEST SKIPPED: ${skip} !!!!!\n\n`);

/** One HTTPS request with a cookie and an Origin of the test's choosing (what another site's page would send). */
function post(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('the web dashboard, in Chromium', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-dashboard-'));
  let up: Awaited<ReturnType<typeof startOswalk>> | undefined;
  let api = '';
  let token = '';
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Every error the page printed or threw: there must be none. */
  const problems: string[] = [];
  const cli = (...args: string[]) => oswalk(args, { cwd: dir, env: { OSWALK_API: '', OSWALK_TOKEN: '' } });

  before(async () => {
    up = await startOswalk(['up', '--dir', dir, '--nodes', '3'], /Try: .*\n/, { cwd: dir, timeoutMs: 90_000 });
    const cfg = JSON.parse(readFileSync(join(dir, '.oswalk', 'config.json'), 'utf8')) as { api: string; token: string };
    api = cfg.api;
    token = cfg.token;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    // The cluster CA is not the browser's: this test is of the page, TLS is tested elsewhere.
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()} (${m.location().url})`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  after(async () => {
    await browser?.close();
    if (up) assert.equal(await stopChild(up.child, 'SIGINT'), 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page with a Content-Security-Policy and security headers; a wrong token is refused', async () => {
    const res = await page.goto(`${api}/`);
    const headers = res!.headers();
    assert.match(headers['content-security-policy'], /default-src 'none'; script-src 'self'/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['x-frame-options'], 'DENY');
    await page.fill('#token', 'not-the-token');
    await page.click('form#login button');
    await page.waitForSelector('#login-error:has-text("unknown, revoked or expired")');
    assert.equal(await page.isVisible('#nav'), false);
    // Chromium logs the API's 401 to the login as a console error: the page showed it, as it should.
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0], /status of 401 .*\/v1\/session\)$/);
    problems.splice(0);
  });

  it('logs in with the cluster token, which lands in no URL and no storage: the session is an HttpOnly, SameSite=Strict cookie', async () => {
    await page.fill('#token', token);
    await page.click('form#login button');
    await page.waitForSelector('#nodes-ready:has-text("3 ready")', { timeout: 10_000 });
    assert.equal(await page.inputValue('#token'), '');
    assert.ok(!page.url().includes(token));
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    assert.ok(!stored.includes(token), 'the token is in the page\'s storage');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is not readable by the page');
    const [cookie] = await context.cookies();
    assert.equal(cookie.name, 'oswalk_session');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.secure, true);
    assert.match(await page.textContent('#who') ?? '', /cluster-token \(admin\)/);
  });

  it('refuses a write made with the session cookie from another origin', async () => {
    const [cookie] = await context.cookies();
    const headers = { cookie: `${cookie.name}=${cookie.value}` };
    assert.equal(await post(`${api}/v1/nodes/node2/drain`, { ...headers, origin: 'https://evil.example' }), 403);
    assert.equal(await post(`${api}/v1/nodes/node2/drain`, headers), 403, 'without an Origin');
    assert.equal((await cli('get', 'nodes', '-o', 'json')).stdout.includes('draining'), false);
  });

  it('drains and uncordons a node from the Nodes page, each shown live', async () => {
    await page.click('nav a[data-page="nodes"]');
    const row = page.locator('tr[data-node="node2"]');
    await row.locator('td', { hasText: 'ready' }).first().waitFor();
    // Each node's last hour as three small charts (a sample a minute; its first heartbeat took one).
    await row.locator('svg.spark').nth(2).waitFor({ timeout: 5000 });
    assert.match(await row.locator('svg.spark').first().getAttribute('aria-label') ?? '', /^CPU, last hour: now [\d.]+ CPUs, at most/);
    await row.getByRole('button', { name: 'Drain' }).click();
    await row.locator('td.state-draining').waitFor({ timeout: 3000 });
    assert.match((await cli('get', 'nodes')).stdout, /node2\s+draining/);
    await row.getByRole('button', { name: 'Uncordon' }).click();
    await row.locator('td.state-ready').waitFor({ timeout: 3000 });
  });

  it('shows a job started from the CLI appear, run and finish without a reload, and its output live, as text', async () => {
    await page.click('nav a[data-page="jobs"]');
    // HTML and a terminal escape in the output: shown as characters, never run or rendered.
    const script = 'echo "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"; printf "\\033[31mred\\033[0m\\n"; sleep 2; echo done';
    const started = await cli('run', '--detach', '--name', 'web-visible', '--', 'sh', '-c', script);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    const row = page.locator(`tr[data-job="${id}"]`);
    await row.waitFor({ timeout: 3000 });
    await row.locator('td.state-succeeded').waitFor({ timeout: 20_000 });
    await row.getByRole('link', { name: 'web-visible' }).click();
    await page.waitForSelector('#log:has-text("— succeeded, exit code 0")', { timeout: 10_000 });
    const log = await page.textContent('#log');
    assert.ok(log?.includes('<script>window.pwned=1</script><img src=x onerror=window.pwned=2>'), log ?? '');
    assert.ok(log?.includes('\u241b[31mred\u241b[0m'), `the escape is shown as ␛: ${log}`);
    assert.equal(await page.locator('#log img, #log script').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
    assert.equal(await page.textContent('dd[data-field="Exit code"]'), '0');
  });

  it('follows a running job\'s output as it comes, and cancels it', async () => {
    const started = await cli('run', '--detach', '--name', 'web-cancel', '--', 'sh', '-c', 'echo first; sleep 2; echo second; sleep 60');
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    await page.goto(`${api}/#/jobs/${id}`);
    await page.waitForSelector('#log:has-text("first")', { timeout: 20_000 });
    await page.waitForSelector('#log:has-text("second")', { timeout: 10_000 });
    await page.click('#cancel');
    await page.waitForSelector('dd[data-field="State"]:has-text("cancelled")', { timeout: 15_000 });
    await page.waitForSelector('#log:has-text("— cancelled")', { timeout: 10_000 });
    assert.equal(await page.isDisabled('#cancel'), true);
  });

  it('applies YAML: a bad manifest shows its error at its line and applies nothing; a dry run says what would be created; Apply creates it', async () => {
    await page.click('nav a[data-page="apply"]');
    const manifest = (cpus: string) => ['apiVersion: oswalk.dev/v1', 'kind: Job', 'metadata:', '  name: web-apply', 'spec:', '  command: ["true"]', '  resources:', `    cpus: ${cpus}`, ''].join('\n');
    await page.fill('#yaml', manifest('lots'));
    await page.click('#apply');
    await page.waitForSelector('#apply-result .error');
    assert.match(await page.textContent('#apply-result .error') ?? '', /cpus/);
    assert.equal((await page.textContent('#apply-result pre .err'))?.trim(), '8 |     cpus: lots');
    // Chromium logs every answer of 400 or above as a console error, the API's 422 too: that one
    // is the page's to show, and it did.
    const expected = problems.findIndex((p) => /status of 422/.test(p));
    if (expected >= 0) problems.splice(expected, 1);
    await page.fill('#yaml', manifest('100m'));
    await page.click('#dry-run');
    await page.waitForSelector('#apply-result li:has-text("job/web-apply created (dry run)")');
    assert.equal((await cli('get', 'jobs', '--owner', 'Job/web-apply', '-o', 'json')).stdout.includes('web-apply'), false, 'a dry run applies nothing');
    await page.click('#apply');
    await page.waitForSelector('#apply-result li:has-text("job/web-apply created")');
    assert.doesNotMatch(await page.textContent('#apply-result') ?? '', /dry run/);
    assert.match((await cli('get', 'jobs', '--owner', 'Job/web-apply')).stdout, /web-apply/);
  });

  it('shows a Service\'s replicas running, and their restarts as they end', async () => {
    // Each replica ends after 3 s (exit 1), and the Service starts it again.
    const svc = ['apiVersion: oswalk.dev/v1', 'kind: Service', 'metadata:', '  name: web-svc', '  labels:', '    app: web', 'spec:', '  runtime: process',
      '  command: ["sh", "-c", "sleep 3; exit 1"]', '  replicas: 2', '  restartPolicy: Always', '  resources:', '    cpus: 100m', ''].join('\n');
    await page.click('nav a[data-page="apply"]');
    await page.fill('#yaml', svc);
    await page.click('#apply');
    await page.waitForSelector('#apply-result li:has-text("service/web-svc created")');
    await page.click('nav a[data-page="services"]');
    const row = page.locator('tr[data-service="web-svc"]');
    await row.locator('td', { hasText: '2/2' }).waitFor({ timeout: 20_000 });
    assert.match(await row.textContent() ?? '', /app=web/);
    // The replicas in place were started again (each attempt after the first): as oswalk get services counts.
    await row.locator('td:nth-child(4)', { hasText: /^[1-9]/ }).waitFor({ timeout: 20_000 });
    // A dry run of a change says what would change, before anything is applied.
    await page.click('nav a[data-page="apply"]');
    await page.fill('#yaml', svc.replace('replicas: 2', 'replicas: 3'));
    await page.click('#dry-run');
    await page.waitForSelector('#apply-result li:has-text("service/web-svc configured (dry run)")');
    assert.deepEqual(await page.locator('#apply-result pre.diff span.del, #apply-result pre.diff span.add').allTextContents(), ['-  replicas: 2\n', '+  replicas: 3\n']);
    assert.match((await cli('get', 'services')).stdout, /web-svc\s+\S+\s+\S+/);
    assert.doesNotMatch((await cli('get', 'services', '-o', 'json')).stdout, /"replicas": 3/, 'nothing applied');
    assert.equal((await cli('delete', 'service', 'web-svc')).code, 0);
  });

  it('pages the jobs on the server, 50 at a time, filtered by name', async () => {
    // 60 jobs through the API, as quickly as it takes them (waiting ones are jobs all the same).
    for (let i = 0; i < 60; i++) {
      const body = JSON.stringify({ name: `paged-${String(i).padStart(2, '0')}`, spec: { command: ['true'], cpus: 0.01 } });
      const status = await new Promise<number>((resolve, reject) => {
        request(`${api}/v1/jobs`, { method: 'POST', rejectUnauthorized: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        }).once('error', reject).end(body);
      });
      assert.equal(status, 200);
    }
    await page.click('nav a[data-page="jobs"]');
    await page.fill('#job-name', 'paged-');
    await page.waitForSelector('#jobs-note:has-text("Page 1: 50 job(s), older ones on the next page")');
    assert.equal(await page.locator('tbody tr').count(), 50);
    assert.equal(await page.locator('tbody tr').first().locator('td').first().textContent(), 'paged-59');
    await page.click('#jobs-older');
    await page.waitForSelector('#jobs-note:has-text("Page 2: 10 job(s).")');
    assert.equal(await page.locator('tbody tr').first().locator('td').first().textContent(), 'paged-09');
    assert.equal(await page.isDisabled('#jobs-older'), true);
    await page.click('#jobs-newer');
    await page.waitForSelector('#jobs-note:has-text("Page 1: 50 job(s)")');
  });

  it('browses the unified tree, shows a file\'s versions, and restores an older one; a file name with HTML in it is text', async () => {
    const mount = join(dir, 'cluster');
    mkdirSync(join(mount, 'docs'), { recursive: true });
    writeFileSync(join(mount, 'docs', 'note.txt'), 'first version\n');
    await new Promise((r) => setTimeout(r, 50));
    writeFileSync(join(mount, 'docs', 'note.txt'), 'second, longer version\n');
    const evil = '<img src=x onerror=window.pwned=3>.txt';
    writeFileSync(join(mount, 'docs', evil), 'x');
    await page.click('nav a[data-page="files"]');
    await page.locator('tr[data-file="docs"] a').click();
    const row = page.locator('tr[data-file="note.txt"]');
    await row.waitFor();
    assert.equal(await row.locator('td').nth(1).textContent(), '23 B');
    assert.equal(await row.locator('td').nth(3).textContent(), 'node1', 'the node whose version wins');
    assert.equal(await page.locator(`tr[data-file="${evil}"] td`).first().textContent(), evil);
    // Live: a file written now shows up without a reload.
    writeFileSync(join(mount, 'docs', 'late.txt'), 'late\n');
    await page.locator('tr[data-file="late.txt"]').waitFor({ timeout: 5000 });
    assert.equal(await page.locator('#view img').count(), 0);
    // Download: the control plane reads the chunks from node1 (its own certificate, which the
    // chunk server takes for reads), and the browser saves the bytes under the file's name.
    const download = async (link: ReturnType<Page['locator']>) => {
      const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
      assert.equal(await dl.failure(), null);
      return { name: dl.suggestedFilename(), text: readFileSync((await dl.path())!, 'utf8') };
    };
    assert.deepEqual(await download(row.getByRole('link', { name: 'Download' })), { name: 'note.txt', text: 'second, longer version\n' });
    await row.getByRole('button', { name: 'Versions' }).click();
    const older = page.locator('#versions tbody tr').nth(1);
    await older.waitFor();
    assert.equal(await page.locator('#versions tbody tr').count(), 2);
    assert.equal(await older.locator('td').nth(2).textContent(), '14 B');
    assert.deepEqual(await download(older.getByRole('link', { name: 'Download' })), { name: 'note.txt', text: 'first version\n' });
    // What cannot be downloaded says why, with the session as with a token.
    const refusal = async (query: string) => {
      const res = await page.request.get(`${api}/v1/fs/download?${query}`);
      return [res.status(), ((await res.json()) as { message: string }).message];
    };
    assert.deepEqual(await refusal('path=/docs'), [400, '/docs is a directory: only a file\'s contents can be downloaded']);
    assert.deepEqual(await refusal('path=/docs/none.txt'), [404, '/docs/none.txt is not in the unified filesystem']);
    assert.deepEqual(await refusal('path=/docs/note.txt&version=999'), [404, '/docs/note.txt has no version 999 (oswalk versions /docs/note.txt lists them)']);
    await older.getByRole('button', { name: 'Restore' }).click();
    await page.waitForSelector('#restore-status:has-text("Restored version")');
    await page.locator('tr[data-file="note.txt"] td:nth-child(2)', { hasText: '14 B' }).waitFor({ timeout: 5000 });
    // Through the mount, as any program reads it: the older content is back.
    await until('the restored content through the mount', async () => readFileSync(join(mount, 'docs', 'note.txt'), 'utf8') === 'first version\n', 10_000);
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
  });

  it('stays live across a control plane\'s restart: the page reconnects by itself, and the session made before is still good', async () => {
    // A second control plane of the same cluster (its Redis, token and certificate), killed
    // (SIGKILL) and started again on the same address while the page is open on it.
    const cfg = JSON.parse(readFileSync(join(dir, '.oswalk', 'config.json'), 'utf8')) as { redisUrl: string };
    const pki = join(dir, '.oswalk', 'pki');
    const port = await freePort();
    const second = () => startOswalk(['control-plane', '--listen', `127.0.0.1:${port}`, '--tls-cert', join(pki, 'control-plane.crt'), '--tls-key', join(pki, 'control-plane.key')],
      /listening/, { cwd: dir, env: { OSWALK_REDIS_URL: cfg.redisUrl, OSWALK_TOKEN: token, OSWALK_LOG_LEVEL: 'info', OSWALK_LOG_FORMAT: 'json' }, timeoutMs: 30_000 });
    let cp = await second();
    const other = await context.newPage();
    other.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    try {
      // The session cookie is for the host, whatever the port: logged in already.
      await other.goto(`https://127.0.0.1:${port}/#/nodes`);
      await other.waitForSelector('#live:has-text("live ·")');
      cp.child.kill('SIGKILL');
      await once(cp.child, 'exit');
      await other.waitForSelector('#live:has-text("reconnecting")', { timeout: 10_000 });
      cp = await second();
      await other.waitForSelector('#live:has-text("live ·")', { timeout: 15_000 });
      assert.equal((await cli('drain', 'node3')).code, 0);
      await other.locator('tr[data-node="node3"] td.state-draining').waitFor({ timeout: 5000 });
      assert.equal((await cli('uncordon', 'node3')).code, 0);
    } finally {
      await other.close();
      await stopChild(cp.child);
    }
  });

  it('logs out: the session ends on the server, and the page asks for the token again', async () => {
    const [cookie] = await context.cookies();
    await page.click('#logout');
    await page.waitForSelector('form#login:visible');
    const status = await new Promise<number>((resolve, reject) => {
      request(`${api}/v1/status`, { headers: { cookie: `${cookie.name}=${cookie.value}` }, rejectUnauthorized: false }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      }).once('error', reject).end();
    });
    assert.equal(status, 401);
    assert.deepEqual(problems, [], 'the page logged no errors');
  });
});
