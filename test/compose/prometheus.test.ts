/**
 * The Prometheus packaging, with a real Prometheus server: oswalk-prometheus:latest with the
 * docker/prometheus.yml that compose uses scrapes, with the bearer token from OSWALK_TOKEN,
 * metrics servers standing where compose puts the control plane and the agents (prom-client in
 * oswalk:latest, answering 401 without the token). Every target must be up, and promtool must
 * accept what they serve. The compose end-to-end test does the same against the real services.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DockerEngine, buildImages, containerIp, docker, promTargets, promtoolCheckMetrics, run, waitFor } from './docker.js';

const engine = await DockerEngine.ensure();
const id = randomBytes(4).toString('hex');
const label = `dev.oswalk.test=prometheus-${id}`;
const token = randomBytes(16).toString('hex');
const network = `oswalk-prom-${id}`;

const metricsServer = (port: number) => `
  const http = require('node:http');
  const client = require('prom-client');
  const registry = new client.Registry();
  // Not collectDefaultMetrics(): its nodejs_active_*_total gauges fail promtool's lint.
  new client.Gauge({ name: 'oswalk_standin_up', help: 'Always 1.', registers: [registry] }).set(1);
  new client.Histogram({ name: 'oswalk_standin_duration_seconds', help: 'A histogram.', registers: [registry] }).observe(0.2);
  new client.Counter({ name: 'oswalk_standin_requests_total', help: 'Requests served.', registers: [registry] }).inc();
  http.createServer(async (req, res) => {
    if (req.headers.authorization !== 'Bearer ' + process.env.OSWALK_TOKEN) { res.writeHead(401); res.end(); return; }
    res.setHeader('content-type', registry.contentType);
    res.end(await registry.metrics());
  }).listen(${port}, '0.0.0.0');
`;

describe('prometheus image scrapes the control plane and agent addresses of compose.yaml', { skip: engine.skipReason }, () => {
  const prom = `oswalk-prom-${id}`;
  const targets: Array<[alias: string, port: number]> = [['control-plane', 7000], ['agent-1', 7001], ['agent-2', 7001], ['agent-3', 7001]];

  before(() => {
    buildImages();
    docker('network', 'create', '--label', label, network);
    for (const [alias, port] of targets) {
      docker('run', '-d', '--name', `${prom}-${alias}`, '--label', label, '--network', network, '--network-alias', alias,
        '-e', `OSWALK_TOKEN=${token}`, '-w', '/opt/oswalk', 'oswalk:latest', 'node', '-e', metricsServer(port));
    }
    docker('run', '-d', '--name', prom, '--label', label, '--network', network, '-e', `OSWALK_TOKEN=${token}`, 'oswalk-prometheus:latest');
  });

  after(() => {
    const ids = run('docker', ['ps', '-aq', '--filter', `label=${label}`]).stdout.split('\n').filter(Boolean);
    if (ids.length) run('docker', ['rm', '-f', '-v', ...ids]);
    run('docker', ['network', 'rm', network]);
    return engine.stop();
  });

  test('every target is scraped and up', async () => {
    const url = `http://${containerIp(prom)}:9090`;
    const up = await waitFor('all five targets up', 60_000, async () => {
      const t = await promTargets(url);
      return t.length === 5 && t.every((x) => x.health === 'up') ? t : undefined;
    });
    assert.deepEqual(up.map((t) => t.scrapeUrl).sort(), [
      'http://127.0.0.1:9090/metrics', 'http://agent-1:7001/metrics', 'http://agent-2:7001/metrics',
      'http://agent-3:7001/metrics', 'http://control-plane:7000/metrics',
    ]);
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent('oswalk_standin_requests_total')}`);
    const body = (await res.json()) as { data: { result: unknown[] } };
    assert.equal(body.data.result.length, 4, 'the scraped samples are queryable');
  });

  test('promtool accepts the metrics of every target; without the token they are refused', async () => {
    for (const [alias, port] of targets) {
      const ip = containerIp(`${prom}-${alias}`);
      const refused = await fetch(`http://${ip}:${port}/metrics`);
      assert.equal(refused.status, 401, alias);
      const res = await fetch(`http://${ip}:${port}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200, alias);
      const check = promtoolCheckMetrics(prom, await res.text());
      assert.equal(check.status, 0, `promtool check metrics for ${alias}: ${check.stdout}${check.stderr}`);
    }
    const bad = promtoolCheckMetrics(prom, 'oswalk_bad_metric{ 1\n');
    assert.notEqual(bad.status, 0, 'promtool must reject a malformed exposition');
  });
});
