import { Option, type Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { RunningControlPlane } from '../controlplane/index.js';
import { packageRoot } from '../util/paths.js';
import { action, parseListen, untilSignal } from './common.js';
import { CONFIG_DIR, readConfig, userConfigFile, writeConfig, writeConfigFile, type CliConfig } from './config.js';
import { makeControlPlaneCertificates } from './certs.js';
import { supervise } from './supervise.js';
import { takeUpLock } from './up-lock.js';
import type { EmbeddedRedis } from './redis-server.js';
import { freePort } from '../util/net.js';

interface UpOptions {
  redis?: string;
  listen?: string;
  dir: string;
  nodes: string;
  runtime: 'process' | 'docker';
  mount: string | false;
  insecureHttp?: boolean;
}

/**
 * A local agent as a child process of its own, so it can be killed and restarted like a real
 * node. The token goes in its environment, which only its user can read (a command line is
 * everyone's); the IPC channel makes it stop when `up` goes, however `up` went.
 */
function startLocalAgent(opts: { name: string; api: string; caFile?: string; token: string; runtime: string; nodeDir: string; mountPath?: string }): ChildProcess {
  mkdirSync(join(opts.nodeDir, 'export'), { recursive: true });
  const child = spawn(process.execPath, [
    join(packageRoot(), 'bin', 'oswalk.js'), 'agent', '--node', opts.name, '--control-plane', opts.api,
    ...(opts.caFile ? ['--ca-cert', opts.caFile] : []),
    '--runtime', opts.runtime, '--export', join(opts.nodeDir, 'export'), '--state-dir', join(opts.nodeDir, 'state'),
    ...(opts.mountPath ? ['--mount', opts.mountPath] : ['--no-mount']), '--listen', '127.0.0.1:0', '--address', '127.0.0.1',
  ], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, OSWALK_TOKEN: opts.token, OSWALK_LOG_LEVEL: process.env.OSWALK_LOG_LEVEL ?? 'warn' },
  });
  return child;
}

/** Wait until every named node is registered and ready, or say which are missing. */
async function waitForNodes(cp: RunningControlPlane, names: string[], timeoutMs = 30_000): Promise<void> {
  const { listNodes } = await import('../state/nodes.js');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = new Set((await listNodes(cp.ctx.redis, cp.ctx.ks)).filter((n) => n.status === 'ready').map((n) => n.name));
    const missing = names.filter((n) => !ready.has(n));
    if (!missing.length) return;
    if (Date.now() > deadline) throw new Error(`agents ${missing.join(', ')} did not become ready within ${timeoutMs / 1000}s (see their log lines above)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The cluster's config written as the user's config too, so that oswalk commands find the
 * cluster from any directory, as kubectl finds minikube's through ~/.kube/config. Only over none,
 * or over one an `up` wrote (it names its nodes directory): one written for another cluster is
 * left alone. Returns what the banner says of it, and what undoes it when `up` stops.
 */
function writeUserConfig(cfg: CliConfig & { nodesDir: string }): { said: string; undo(): void } {
  const file = userConfigFile();
  let theirs: string | undefined;
  try {
    if (existsSync(file) && !readConfig(file).nodesDir) theirs = 'written for another cluster';
  } catch (err) {
    theirs = (err as Error).message;
  }
  if (!theirs) {
    try {
      writeConfigFile(file, cfg);
    } catch (err) {
      theirs = (err as Error).message;
    }
  }
  if (theirs) return { said: `; ${file} is left as it is (${theirs}): elsewhere, pass --api and --token`, undo: () => undefined };
  return {
    said: `, and ${file} for oswalk commands run anywhere else`,
    undo() {
      // Unless a later `up` elsewhere has made it its own meanwhile.
      try {
        if (readConfig(file).nodesDir === cfg.nodesDir) unlinkSync(file);
      } catch {
        // gone, or no longer readable: not ours to touch
      }
    },
  };
}

/**
 * How to run this oswalk, as the banner suggests it: `oswalk` when the first one on PATH is this
 * one (the set-up links it there), else the path of its bin/oswalk.js.
 */
function commandName(): string {
  const bin = join(packageRoot(), 'bin', 'oswalk.js');
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = join(dir, 'oswalk');
    if (existsSync(p)) return realpathSync(p) === realpathSync(bin) ? 'oswalk' : bin;
  }
  return bin;
}

export function register(program: Command): void {
  program.command('up')
    .description('run a whole cluster on this machine: Redis, the control plane, local agents and the mount (Ctrl-C stops it all)')
    .option('--redis <url>', 'use this Redis instead of starting an embedded redis-server')
    .option('--listen <host:port>', 'API address (default: a free port on 127.0.0.1)')
    .option('--dir <dir>', 'state directory (config, Redis data, node stores)', '.')
    .option('--nodes <n>', 'how many local agents (node1, node2, …)', '3')
    .addOption(new Option('--runtime <runtime>', 'how the local agents run jobs').choices(['process', 'docker']).default('process'))
    .option('--mount <dir>', 'where the unified filesystem shows (node1\'s view; the other nodes mount under .oswalk/nodes)', './cluster')
    .option('--no-mount', 'run without the unified filesystem mounts')
    .option('--insecure-http', 'INSECURE: serve the API on plain HTTP, with no CA or certificate; the token then crosses the network in clear text')
    .action(action(async (opts: UpOptions) => {
      const dir = resolve(opts.dir);
      const stateDir = join(dir, CONFIG_DIR);
      const cfg = readConfig(join(stateDir, 'config.json'));
      const token = cfg.token ?? randomBytes(24).toString('base64url');
      mkdirSync(stateDir, { recursive: true });
      const lock = await takeUpLock(stateDir);
      const stack: (() => Promise<void>)[] = [async () => lock.release()];
      const stopAll = async () => {
        for (const stop of stack.reverse()) await stop().catch(() => undefined);
      };
      try {
        let redisUrl = opts.redis;
        if (!redisUrl) {
          const { startEmbeddedRedis } = await import('./redis-server.js');
          const embedded: EmbeddedRedis = await startEmbeddedRedis(join(stateDir, 'redis'), (pid) => lock.setRedisPid(pid));
          stack.push(() => embedded.stop());
          redisUrl = embedded.url;
        }
        const { host, port } = opts.listen ? parseListen(opts.listen) : { host: '127.0.0.1', port: await freePort() };
        // The CA is kept from one up to the next; the API's certificate is made anew at each
        // start, for the addresses of this one (the loopback ones, and --listen's own host).
        const certs = opts.insecureHttp ? undefined : await makeControlPlaneCertificates(dir, [
          '127.0.0.1', 'localhost', ...(host === '0.0.0.0' || host === '::' || host === '127.0.0.1' || host === 'localhost' ? [] : [host]),
        ], '--listen');
        const { startControlPlane } = await import('../controlplane/index.js');
        // With the CA, each node gets a certificate of its own at its join: their chunk servers are then HTTPS.
        const cp = await startControlPlane({ redisUrl, token, host, port, tls: certs ? { cert: certs.cert, key: certs.key } : 'insecure-http', ...(certs ? { ca: certs.ca, tlsFiles: certs.paths.controlPlane } : {}) });
        stack.push(() => cp.close());
        const nodesDir = join(stateDir, 'nodes');
        const config = {
          api: cp.url, token, ...(certs ? { caCert: certs.caCert } : {}), redisUrl, nodesDir,
          ...(opts.mount === false ? {} : { mount: resolve(dir, opts.mount), node: 'node1' }),
        };
        writeConfig(dir, config);
        const userConfig = writeUserConfig(config);
        stack.push(async () => userConfig.undo());
        const count = Number(opts.nodes);
        if (!Number.isInteger(count) || count < 0 || count > 64) throw new Error(`--nodes "${opts.nodes}" must be a whole number from 0 to 64`);
        const names = Array.from({ length: count }, (_, i) => `node${i + 1}`);
        for (const name of names) {
          const nodeDir = join(nodesDir, name);
          const mountPath = opts.mount === false ? undefined : name === 'node1' ? resolve(dir, opts.mount) : join(nodeDir, 'cluster');
          stack.push(supervise(`${name}'s agent`, () => startLocalAgent({
            name, api: cp.url, ...(certs ? { caFile: certs.paths.ca.cert } : {}), token, runtime: opts.runtime, nodeDir, mountPath,
          })));
        }
        await waitForNodes(cp, names);
        // Listening before the banner: whoever reads it may signal at once.
        const signalled = untilSignal();
        const oswalk = commandName();
        process.stdout.write([
          'OS Walk is up.',
          `  API:    ${cp.url} ${certs ? `(HTTPS; its certificate is signed by the cluster CA ${certs.paths.ca.cert})` : '(INSECURE: plain HTTP, --insecure-http; the token crosses the network in clear text)'}`,
          `  Web:    ${cp.url}/ (the dashboard; log in with the cluster token, the config below holds it)`,
          `  Redis:  ${redisUrl.replace(/\/\/:[^@]*@/, '//')}${opts.redis ? '' : ' (its password is in the config below)'}`,
          `  Nodes:  ${names.join(', ') || 'none'} (${opts.runtime} runtime; state under ${nodesDir})`,
          ...(opts.mount === false || !count ? [] : [`  Files:  ${resolve(dir, opts.mount)} (the unified filesystem; each node's export directory is .oswalk/nodes/<node>/export)`]),
          `  Config: ${join(stateDir, 'config.json')} for oswalk commands run from ${dir}${userConfig.said}`,
          `Try: ${oswalk} status    ${oswalk} run -- uname -n    Stop: Ctrl-C`,
          ...(oswalk === 'oswalk' ? [] : [`(this is not the oswalk on your PATH: ${join(packageRoot(), 'scripts', 'link-bin.sh')} links it there)`]),
          '',
        ].join('\n'));
        const sig = await signalled;
        process.stdout.write(`\n${sig}: stopping…\n`);
      } finally {
        await stopAll();
      }
    }));
}
