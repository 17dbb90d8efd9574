/**
 * The Prometheus packaging, with a real Prometheus server: oswalk-prometheus:latest with the
 * docker/prometheus.yml that compose uses scrapes, with the bearer token from OSWALK_TOKEN,
 * metrics servers standing where compose puts the control plane and the agents (prom-client in
 * oswalk:latest, over HTTPS with a certificate of a cluster CA that Prometheus finds where
 * compose mounts it: the control plane's, and node certificates for the agents' names;
 * answering 401 without the token), and Redis through oswalk-redis-exporter.
 * Every target must be up, and promtool must accept what they serve. It loads the alert rules
 * of docker/alerts.yml and sends what fires to oswalk-alertmanager. The compose end-to-end test
 * does the same against the real services.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeControlPlaneCertificates } from '../../src/cli/certs.js';
import { issueNodeCertificate, nodeCertificateRequest } from '../../src/util/pki.js';
import {
  DockerEngine, alertNames, alertmanagerAlerts, buildImages, containerIp, docker, getMetrics, promAlertmanagers, promRules, promTargets, promtoolCheckMetrics, run, waitFor,
} from './docker.js';

const engine = await DockerEngine.ensure();
const id = randomBytes(4).toString('hex');
const label = `dev.oswalk.test=prometheus-${id}`;
const token = randomBytes(16).toString('hex');
const network = `oswalk-prom-${id}`;

/** Where compose mounts the pki volume, in the control plane and in Prometheus. */
const PKI = '/etc/oswalk/pki';

/** A stand-in's metrics server over HTTPS, with the certificate `${name}.crt` of the pki directory. */
const metricsServer = (port: number, name: string) => `
  const http = require('node:https');
  const fs = require('node:fs');
  const client = require('prom-client');
  const registry = new client.Registry();
  // Not collectDefaultMetrics(): its nodejs_active_*_total gauges fail promtool's lint.
  new client.Gauge({ name: 'oswalk_standin_up', help: 'Always 1.', registers: [registry] }).set(1);
  new client.Histogram({ name: 'oswalk_standin_duration_seconds', help: 'A histogram.', registers: [registry] }).observe(0.2);
  new client.Counter({ name: 'oswalk_standin_requests_total', help: 'Requests served.', registers: [registry] }).inc();
  // A job fails between any two scrapes, so the OSWalkJobsFailing rule fires at once.
  new client.Gauge({ name: 'oswalk_jobs', help: 'Jobs by state.', labelNames: ['state'], registers: [registry], collect() { this.inc({ state: 'failed' }); } });
  http.createServer({ cert: fs.readFileSync('${PKI}/${name}.crt'), key: fs.readFileSync('${PKI}/${name}.key') }, async (req, res) => {
    if (req.headers.authorization !== 'Bearer ' + process.env.OSWALK_TOKEN) { res.writeHead(401); res.end(); return; }
    res.setHeader('content-type', registry.contentType);
    res.end(await registry.metrics());
  }).listen(${port}, '0.0.0.0');
`;

describe('prometheus image scrapes the control plane and agent addresses of compose.yaml', { skip: engine.skipReason }, () => {
  const prom = `oswalk-prom-${id}`;
  const targets: Array<[alias: string, port: number]> = [['control-plane', 7000], ['agent-1', 7001], ['agent-2', 7001], ['agent-3', 7001]];
  // A cluster CA and the control plane's certificate, as compose's certs service makes them.
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-prom-pki-'));
  let certs: Awaited<ReturnType<typeof makeControlPlaneCertificates>>;
  const mountPki = ['-v', `${join(dir, '.oswalk', 'pki')}:${PKI}:ro`];

  before(async () => {
    buildImages();
    certs = await makeControlPlaneCertificates(dir, ['control-plane'], 'test');
    // The agents' node certificates, for their names, as the control plane signs them at their joins.
    for (const [alias] of targets.slice(1)) {
      const request = await nodeCertificateRequest(alias);
      writeFileSync(join(certs.paths.dir, `${alias}.key`), request.key);
      writeFileSync(join(certs.paths.dir, `${alias}.crt`), (await issueNodeCertificate(certs.ca, request.csr, alias, 3_600_000)).cert);
    }
    // Readable by the containers' users (oswalk, prometheus), as the certs service hands them
    // over; a CA made for this test alone.
    chmodSync(certs.paths.dir, 0o755);
    for (const f of readdirSync(certs.paths.dir)) chmodSync(join(certs.paths.dir, f), 0o644);
    docker('network', 'create', '--label', label, network);
    for (const [alias, port] of targets) {
      docker('run', '-d', '--name', `${prom}-${alias}`, '--label', label, '--network', network, '--network-alias', alias, ...mountPki,
        '-e', `OSWALK_TOKEN=${token}`, '-w', '/opt/oswalk', 'oswalk:latest', 'node', '-e', metricsServer(port, alias));
    }
    docker('run', '-d', '--name', `${prom}-redis`, '--label', label, '--network', network, '--network-alias', 'redis', 'oswalk-redis:latest');
    docker('run', '-d', '--name', `${prom}-redis-exporter`, '--label', label, '--network', network, '--network-alias', 'redis-exporter',
      '-e', 'REDIS_ADDR=redis://redis:6379', 'oswalk-redis-exporter:latest');
    docker('run', '-d', '--name', `${prom}-alertmanager`, '--label', label, '--network', network, '--network-alias', 'alertmanager', 'oswalk-alertmanager:latest');
    docker('run', '-d', '--name', prom, '--label', label, '--network', network, ...mountPki, '-e', `OSWALK_TOKEN=${token}`, 'oswalk-prometheus:latest');
  });

  after(() => {
    const ids = run('docker', ['ps', '-aq', '--filter', `label=${label}`]).stdout.split('\n').filter(Boolean);
    if (ids.length) run('docker', ['rm', '-f', '-v', ...ids]);
    run('docker', ['network', 'rm', network]);
    rmSync(dir, { recursive: true, force: true });
    return engine.stop();
  });

  test('every target is scraped and up', async () => {
    const url = `http://${containerIp(prom)}:9090`;
    const up = await waitFor('all six targets up', 60_000, async () => {
      const t = await promTargets(url);
      return t.length === 6 && t.every((x) => x.health === 'up') ? t : undefined;
    });
    assert.deepEqual(up.map((t) => t.scrapeUrl).sort(), [
      'http://127.0.0.1:9090/metrics', 'http://redis-exporter:9121/metrics', 'https://agent-1:7001/metrics',
      'https://agent-2:7001/metrics', 'https://agent-3:7001/metrics', 'https://control-plane:7000/metrics',
    ]);
    const query = async (q: string) => {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
      return ((await res.json()) as { data: { result: Array<{ value: [number, string] }> } }).data.result;
    };
    assert.equal((await query('oswalk_standin_requests_total')).length, 4, 'the scraped samples are queryable');
    assert.deepEqual((await query('redis_up')).map((r) => r.value[1]), ['1'], 'the exporter reaches Redis');
  });

  test('the alert rules are loaded, and a firing alert reaches the Alertmanager', async () => {
    const url = `http://${containerIp(prom)}:9090`;
    const rules = await promRules(url);
    assert.deepEqual(rules.map((r) => r.name).sort(), alertNames());
    for (const r of rules) assert.notEqual(r.health, 'err', `${r.name}: ${r.lastError}`);
    assert.deepEqual((await promAlertmanagers(url)).map((a) => a.url), ['http://alertmanager:9093/api/v2/alerts']);
    const am = `http://${containerIp(`${prom}-alertmanager`)}:9093`;
    const got = await waitFor('OSWalkJobsFailing in the Alertmanager', 60_000, async () =>
      (await alertmanagerAlerts(am)).find((x) => x.labels.alertname === 'OSWalkJobsFailing'));
    assert.equal(got.labels.severity, 'warning');
    assert.match(got.annotations.description, /oswalk get jobs --state failed/);
  });

  test('promtool accepts the metrics of every target; without the token they are refused', async () => {
    for (const [alias, port] of targets) {
      const tls = { tls: { ca: certs.caCert, name: alias } };
      const url = `https://${containerIp(`${prom}-${alias}`)}:${port}/metrics`;
      const refused = await getMetrics(url, tls);
      assert.equal(refused.status, 401, alias);
      const res = await getMetrics(url, { token, ...tls });
      assert.equal(res.status, 200, alias);
      const check = promtoolCheckMetrics(prom, res.text);
      assert.equal(check.status, 0, `promtool check metrics for ${alias}: ${check.stdout}${check.stderr}`);
    }
    const bad = promtoolCheckMetrics(prom, 'oswalk_bad_metric{ 1\n');
    assert.notEqual(bad.status, 0, 'promtool must reject a malformed exposition');
  });
});
