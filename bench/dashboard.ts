/**
 * The dashboard at scale (issue 20): a control plane over a redis-server holding 100 nodes and
 * 10,000 jobs, and Debian's Chromium (playwright-core). Measured, each round in a fresh browser
 * context: from opening the page (logged in) to the overview showing every node ready, and to the
 * Jobs page's first 50 rows; the bytes the browser received for each; one tick of the live
 * stream. Baselines in the same run: GET /v1/status and GET /v1/jobs?limit=50 alone, over the same
 * HTTP (what the page cannot be faster than).
 *
 *   node dist/bench/dashboard.js [rounds]     (default 10)
 */
import { chromium } from 'playwright-core';
import { startControlPlane } from '../src/controlplane/index.js';
import { submitJobs } from '../src/state/jobs.js';
import { keyspace } from '../src/state/keys.js';
import { registerNode } from '../src/state/nodes.js';
import { connectRedis } from '../src/state/redis.js';
import { normalizeJobSpec } from '../src/api/jobs.js';
import { TestRedis, freePort, testPrefix } from '../test/helpers/redis.js';
import { table, writeSection } from './report.js';

const ROUNDS = Number(process.argv[2] ?? 10);
const NODES = 100;
const JOBS = 10_000;
const TOKEN = 'dashboard-bench-token';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (x: number) => x.toFixed(0);

const server = await TestRedis.start();
const prefix = testPrefix();
const ks = keyspace(prefix);
const redis = connectRedis(server.url);
// Nodes that never miss a heartbeat for the length of the run: no agent sends them.
const cp = await startControlPlane({ redisUrl: server.url, token: TOKEN, tls: 'insecure-http', host: '127.0.0.1', port: await freePort(), prefix, nodeTimeoutMs: 3_600_000 });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  for (let i = 0; i < NODES; i++) {
    await registerNode(redis, ks, {
      name: `node-${String(i).padStart(3, '0')}`, address: `10.0.${i >> 8}.${i & 255}`, agentUrl: `https://10.0.${i >> 8}.${i & 255}:7001`, labels: { rack: `r${i % 8}` },
      runtime: 'process', cpus: 16, memoryBytes: 64 * 2 ** 30, load1: 0, memoryUsedBytes: 0, runningJobs: 0, exportDir: '/srv/oswalk/export', mountPath: '/cluster',
    });
  }
  const spec = normalizeJobSpec({ command: ['sh', '-c', 'echo hi'], cpus: 0.1 });
  for (let i = 0; i < JOBS; i += 1000) {
    await submitJobs(redis, ks, Array.from({ length: 1000 }, (_, k) => ({ name: `job-${i + k}`, spec })));
  }

  /** Wall time and bytes received of one GET of the API (the baselines). */
  const get = async (path: string) => {
    const t = performance.now();
    const res = await fetch(`${cp.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = await res.arrayBuffer();
    return { ms: performance.now() - t, bytes: body.byteLength };
  };
  const samples: Record<string, number[]> = { status: [], jobsApi: [], overview: [], jobsPage: [], overviewBytes: [], jobsBytes: [], statusBytes: [], jobsApiBytes: [] };
  let tickBytes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const s = await get('/v1/status');
    samples.status.push(s.ms);
    samples.statusBytes.push(s.bytes);
    const j = await get('/v1/jobs?limit=50');
    samples.jobsApi.push(j.ms);
    samples.jobsApiBytes.push(j.bytes);

    const context = await browser.newContext();
    const page = await context.newPage();
    let bytes = 0;
    // What came over the wire for each request: its body's length (the live stream's is
    // counted apart, as it never ends).
    page.on('response', (res) => {
      if (res.url().endsWith('/v1/events')) return;
      void res.body().then((b) => { bytes += b.length; }, () => undefined);
    });
    await page.goto(`${cp.url}/`);
    await page.fill('#token', TOKEN);
    await page.click('form#login button');
    await page.waitForSelector('#nav');
    // Opened again, logged in: the load a user sees each time.
    bytes = 0;
    let t = performance.now();
    await page.goto(`${cp.url}/#/overview`, { waitUntil: 'commit' });
    await page.reload({ waitUntil: 'commit' });
    await page.waitForSelector(`#nodes-ready:has-text("${NODES} ready")`);
    samples.overview.push(performance.now() - t);
    await page.waitForTimeout(100);
    samples.overviewBytes.push(bytes);
    bytes = 0;
    t = performance.now();
    await page.click('nav a[data-page="jobs"]');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 50);
    samples.jobsPage.push(performance.now() - t);
    await page.waitForTimeout(100);
    samples.jobsBytes.push(bytes);
    if (r === 0) {
      tickBytes = await page.evaluate(() => new Promise<number>((resolve) => {
        const es = new EventSource('/v1/events');
        es.addEventListener('cluster', (e) => { resolve((e as MessageEvent).data.length); es.close(); });
      }));
    }
    await context.close();
  }
  const kb = (xs: number[]) => `${(pct(xs, 50) / 1024).toFixed(0)} KiB`;
  const body = [
    `${NODES} nodes and ${JOBS} jobs in Redis; ${ROUNDS} rounds, each in a fresh browser context (logged in, then the page opened again). The control plane is in this process, over plain HTTP on loopback (TLS is measured in its own section).`,
    '',
    table(['what', 'p50 ms', 'max ms', 'received (p50)'], [
      ['`GET /v1/status` alone (baseline: what the overview shows)', ms(pct(samples.status, 50)), ms(Math.max(...samples.status)), kb(samples.statusBytes)],
      ['overview: page opened → every node shown ready', ms(pct(samples.overview, 50)), ms(Math.max(...samples.overview)), kb(samples.overviewBytes)],
      ['`GET /v1/jobs?limit=50` alone (baseline: the Jobs page\'s first page)', ms(pct(samples.jobsApi, 50)), ms(Math.max(...samples.jobsApi)), kb(samples.jobsApiBytes)],
      ['Jobs page: click → its first 50 rows', ms(pct(samples.jobsPage, 50)), ms(Math.max(...samples.jobsPage)), kb(samples.jobsBytes)],
    ]),
    '',
    `One tick of the live stream (every node, jobs by state): ${(tickBytes / 1024).toFixed(0)} KiB, once a second. Issue 20's goal, the overview ready in ≤ 1 s with 100 nodes and 10,000 jobs: ${pct(samples.overview, 50) <= 1000 ? 'met' : 'not met'} (p50 ${ms(pct(samples.overview, 50))} ms, max ${ms(Math.max(...samples.overview))} ms). No page reads every job: the Jobs page asks for 50.`,
  ].join('\n');
  writeSection('dashboard', 'Dashboard: 100 nodes and 10,000 jobs', `node dist/bench/dashboard.js ${ROUNDS}`, body);
} finally {
  await browser.close();
  await cp.close();
  redis.disconnect();
  await server.stop();
}
