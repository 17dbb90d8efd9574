import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startAgent, type RunningAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';
import { makeControlPlaneCertificates } from '../../src/cli/certs.js';
import { startControlPlane, type RunningControlPlane } from '../../src/controlplane/index.js';
import { TestRedis, freePort, testPrefix } from '../helpers/redis.js';

const TOKEN = 'listen-test-token';

/**
 * Agents listen on every address by default (docs/security.md says why): one without a
 * certificate, whose chunk server then takes the cluster token in clear text, says so at start;
 * one with a certificate, or listening on one address, does not.
 */
describe('an agent listening on every address', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-agent-listen-'));
  let redis: TestRedis;
  let cp: RunningControlPlane;
  let caCert: string;
  const agents: RunningAgent[] = [];

  /** Starts an agent and returns the warnings it logged while starting. */
  async function warningsOf(node: string, host: string, via: 'control plane' | 'redis'): Promise<string[]> {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    const log = pino({ level: 'warn' }, sink);
    const state = join(root, node);
    agents.push(await startAgent({
      node, token: TOKEN, runtime: new ProcessRuntime({ stateDir: state, logger: log }), exportDir: state, stateDir: state,
      ...(via === 'control plane' ? { controlPlane: cp.url, ca: { pem: caCert, source: 'the test' } } : { redisUrl: redis.url, prefix: cp.ctx.ks.prefix }),
      listen: { host, port: 0 }, log,
    }));
    return lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
  }

  before(async () => {
    redis = await TestRedis.start();
    const certs = await makeControlPlaneCertificates(join(root, 'cluster'), ['127.0.0.1'], 'test');
    caCert = certs.caCert;
    cp = await startControlPlane({
      redisUrl: redis.url, token: TOKEN, tls: { cert: certs.cert, key: certs.key }, ca: certs.ca, host: '127.0.0.1', port: await freePort(), prefix: testPrefix(),
    });
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await cp?.close();
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('without a certificate, on 0.0.0.0: warns that its chunk server takes the token in clear text on every address', async () => {
    const warned = await warningsOf('bare-any', '0.0.0.0', 'redis');
    assert.ok(warned.some((m) => /^INSECURE: this node has no certificate .* on every address of this machine/.test(m)), warned.join('\n'));
  });

  it('without a certificate on 127.0.0.1, or with one on 0.0.0.0: no such warning', async () => {
    for (const [node, host, how] of [['bare-loopback', '127.0.0.1', 'redis'], ['certified-any', '0.0.0.0', 'control plane']] as const) {
      const warned = await warningsOf(node, host, how);
      assert.ok(!warned.some((m) => /INSECURE/.test(m)), `${node}: ${warned.join('\n')}`);
    }
    assert.match(agents.at(-1)!.url, /^https:/, 'the certified node serves HTTPS');
  });
});
