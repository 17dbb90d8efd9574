/**
 * A real agent process for integration tests: `node agent-process.js '<json options>'`.
 * Prints "ready" on stdout once registered; stops (requeueing its jobs) on SIGTERM.
 */
import { pino } from 'pino';
import { startAgent } from '../../src/agent/index.js';
import { ProcessRuntime } from '../../src/agent/runtime/process.js';

const o = JSON.parse(process.argv[2]) as {
  node: string; redisUrl: string; prefix: string; stateDir: string; heartbeatMs?: number; leaseMs?: number; cpus?: number;
};
const log = pino({ level: process.env.OSWALK_TEST_LOG ?? 'silent' }, pino.destination(2));
const agent = await startAgent({
  node: o.node, redisUrl: o.redisUrl, prefix: o.prefix, token: 't',
  runtime: new ProcessRuntime({ stateDir: o.stateDir, logger: log, killGraceMs: 500 }),
  exportDir: o.stateDir, stateDir: o.stateDir, listen: { host: '127.0.0.1', port: 0 }, log,
  ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}), ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}), ...(o.cpus ? { cpus: o.cpus } : {}),
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void agent.stop().then(() => process.exit(0));
});
