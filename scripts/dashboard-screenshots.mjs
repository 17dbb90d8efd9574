#!/usr/bin/env node
// Writes a screenshot of every page of the web dashboard to docs/screenshots/ (the README shows
// them): an `oswalk up` cluster of two nodes in a temporary directory, a few jobs, then Debian's
// Chromium driven by playwright-core. Run after `npm run build`, as root (up mounts FUSE):
//   node scripts/dashboard-screenshots.mjs
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'oswalk.js');
const out = join(root, 'docs', 'screenshots');
mkdirSync(out, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'oswalk-screenshots-'));
const env = { ...process.env, OSWALK_LOG_LEVEL: 'warn', XDG_CONFIG_HOME: dir, OSWALK_API: '', OSWALK_TOKEN: '' };
const cli = (...args) => execFileSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8' });

const up = spawn(process.execPath, [bin, 'up', '--dir', dir, '--nodes', '2'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolve, reject) => {
  let text = '';
  up.stdout.on('data', (d) => {
    text += d;
    if (/Try: .*\n/.test(text)) resolve();
  });
  up.once('exit', (code) => reject(new Error(`oswalk up exited with ${code}:\n${text}`)));
});
let browser;
try {
  const { api, token } = JSON.parse(readFileSync(join(dir, '.oswalk', 'config.json'), 'utf8'));
  cli('run', '--name', 'hello', '--', 'sh', '-c', 'for i in 1 2 3; do echo "line $i from $OSWALK_NODE"; done');
  cli('run', '--name', 'build', '--', 'sh', '-c', 'echo compiling; exit 0');
  try { cli('run', '--name', 'flaky', '--', 'sh', '-c', 'echo oops >&2; exit 3'); } catch { /* exit 3, as meant */ }
  // A file with two versions, and a Service, for their pages.
  const mount = join(dir, 'cluster');
  mkdirSync(join(mount, 'reports'), { recursive: true });
  writeFileSync(join(mount, 'reports', 'q3.csv'), 'region,total\nnorth,10\n');
  writeFileSync(join(mount, 'reports', 'q3.csv'), 'region,total\nnorth,10\nsouth,12\n');
  writeFileSync(join(mount, 'reports', 'README.md'), '# Reports\n');
  writeFileSync(join(dir, 'svc.yaml'), ['apiVersion: oswalk.dev/v1', 'kind: Service', 'metadata:', '  name: api', '  labels:', '    app: api', 'spec:', '  runtime: process', '  command: ["sleep", "600"]', '  replicas: 2', '  resources:', '    cpus: 100m', ''].join('\n'));
  cli('apply', '-f', join(dir, 'svc.yaml'));
  const long = cli('run', '--detach', '--name', 'render', '--cpus', '0.5', '--', 'sh', '-c', 'while true; do echo frame $((i=i+1)); sleep 1; done').trim();

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${api}/`);
  await page.screenshot({ path: join(out, 'login.png') });
  await page.fill('#token', token);
  await page.click('form#login button');
  await page.waitForSelector('#nodes-ready:has-text("2 ready")');
  await page.screenshot({ path: join(out, 'overview.png') });
  await page.click('nav a[data-page="nodes"]');
  await page.waitForSelector('tr[data-node="node2"] td.state-ready');
  await page.waitForSelector('tr[data-node="node2"] svg.spark');
  await page.screenshot({ path: join(out, 'nodes.png') });
  await page.click('nav a[data-page="jobs"]');
  await page.waitForSelector(`tr[data-job="${long}"]`);
  await page.screenshot({ path: join(out, 'jobs.png') });
  await page.click('nav a[data-page="services"]');
  await page.waitForSelector('tr[data-service="api"] td:has-text("2/2")');
  await page.screenshot({ path: join(out, 'services.png') });
  await page.goto(`${api}/#/files/reports`);
  await page.click('tr[data-file="q3.csv"] button:has-text("Versions")');
  await page.waitForSelector('#versions tbody tr:nth-child(2)');
  await page.screenshot({ path: join(out, 'files.png') });
  await page.goto(`${api}/#/jobs/${long}`);
  await page.waitForSelector('#log:has-text("frame 3")');
  await page.screenshot({ path: join(out, 'job.png') });
  await page.click('nav a[data-page="apply"]');
  await page.fill('#yaml', ['apiVersion: oswalk.dev/v1', 'kind: Job', 'metadata:', '  name: nightly', 'spec:', '  command: ["make", "all"]', '  resources:', '    cpus: lots', ''].join('\n'));
  await page.click('#dry-run');
  await page.waitForSelector('#apply-result .error');
  await page.screenshot({ path: join(out, 'apply.png') });
  const phone = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  await small.goto(`${api}/#/overview`);
  await small.waitForSelector('#nodes-ready:has-text("2 ready")');
  await small.screenshot({ path: join(out, 'overview-phone.png') });
  cli('cancel', long);
  cli('delete', 'service', 'api');
  console.log(`screenshots written to ${out}`);
} finally {
  await browser?.close();
  up.kill('SIGINT');
  await new Promise((r) => up.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
