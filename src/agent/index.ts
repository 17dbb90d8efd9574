import { randomBytes } from 'node:crypto';
import { cpus as osCpus, freemem, hostname, loadavg, totalmem } from 'node:os';
import { readFile, rm, rmdir } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, join as joinPath, resolve as resolvePath } from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import type { JoinAnswer, JoinRequest, NodeCertificate, RenewRequest } from '../api/agents.js';
import { addReplicaWaitSource, createRegistry } from '../metrics/index.js';
import { keyspace, type Keyspace } from '../state/keys.js';
import { openFs } from '../state/fs-layout.js';
import { releaseNodeJobs, type BackoffOptions } from '../state/jobs.js';
import { clusterId, heartbeat, registerNode } from '../state/nodes.js';
import { getObject } from '../state/objects.js';
import type { NodeManifest } from '../manifest/index.js';
import { connectRedis, type Redis } from '../state/redis.js';
import { replicationStats } from '../state/replication.js';
import { clusterTokenOnly, createHttpServer, type HttpServer } from '../util/http.js';
import { createLogger, type Logger } from '../util/log.js';
import { controlPlaneList } from '../util/control-planes.js';
import { serialKey, tlsRefusal, type TrustedCa } from '../util/tls.js';
import { watchRevokedCertificates } from '../state/certs.js';
import type { Server as TlsServer } from 'node:tls';
import { nodeTlsFiles, saveNodeTls, type NodeTls } from '../packetfs/peer-tls.js';
import { ChunkStore, chunkDir } from '../packetfs/index.js';
import { mountNodeFilesystem, registerChunkServer, startNodeFilesystem, type NodeFilesystem } from './filesystem.js';
import { monotonicMs, NodeFence } from './fence.js';
import { CpuMeter, type CpuUse } from './cpu-meter.js';
import { JobRunner } from './runner.js';
import { listenAttachSocket, serveAttach } from './attach.js';
import type { Runtime } from './runtime/types.js';
import { safeName } from './runtime/common.js';
import { longTimeout } from '../util/timers.js';

export interface AgentOptions {
  /** Node name (DNS-label-like), unique in the cluster. */
  node: string;
  /** Join through the control plane (it hands out the Redis URL and key prefix), or any of several, comma-separated (controlPlaneList)… */
  controlPlane?: string;
  /** The cluster CA the control plane's certificate must be signed by (an https:// controlPlane). */
  ca?: TrustedCa;
  token: string;
  /** …or talk to Redis directly (tests, or a control plane that is down). */
  redisUrl?: string;
  prefix?: string;
  /** With redisUrl: the Redis of the cluster's files when they have one of their own (a joining agent is told). */
  fsRedisUrl?: string;
  runtime: Runtime;
  /**
   * docker runtime: the image of jobs that name none. Absent: the cluster's (the control
   * plane's --default-image, handed out at the join); with neither, the node takes only jobs
   * with an image.
   */
  defaultImage?: string;
  /** This node's export directory; default: its Node manifest's exportDir, then DEFAULT_EXPORT_DIR. */
  exportDir?: string;
  stateDir: string;
  /** Host path of the unified filesystem: the agent mounts it there and binds it into jobs at /cluster. */
  mountPath?: string;
  /** Mount the unified filesystem at mountPath (default true when mountPath is set). */
  mount?: boolean;
  /**
   * docker runtime: the directory job containers bind to reach the mount (default
   * <stateDir>/share). It must be the same path for the Docker daemon as for the agent.
   */
  shareDir?: string;
  labels?: Record<string, string>;
  /** Where the agent's HTTP server listens (chunks, metrics). Port 0 picks a free one. */
  listen?: { host: string; port: number };
  /** How peers reach this node; default: its Node manifest's address, then the listen host, or the hostname for 0.0.0.0. */
  address?: string;
  /** Caps on the measured capacity (a Node manifest's spec.capacity). */
  cpus?: number;
  memoryBytes?: number;
  heartbeatMs?: number;
  leaseMs?: number;
  backoff?: BackoffOptions;
  log?: Logger;
}

export interface RunningAgent {
  app: HttpServer;
  url: string;
  redis: Redis;
  ks: Keyspace;
  registry: Registry;
  runner: JobRunner;
  /** Stop claiming, stop running jobs and requeue them, close the server. */
  stop(): Promise<void>;
}

export const DEFAULT_EXPORT_DIR = '/srv/oswalk/export';

/** Listen addresses that mean every address of the machine. */
const WILDCARD = new Set(['0.0.0.0', '::']);

/**
 * One POST of JSON, trusting `ca` alone for https (node:http: fetch takes no CA of its own),
 * with a bearer token or as the node itself (its certificate as the client's).
 */
function postJson(url: string, auth: { token: string } | { key: string; cert: string }, body: unknown, ca: TrustedCa | undefined): Promise<{ status: number; text: string }> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: { ...('token' in auth ? { authorization: `Bearer ${auth.token}` } : {}), 'content-type': 'application/json', 'content-length': payload.length },
      ...('key' in auth ? { key: auth.key, cert: auth.cert } : {}),
      ...(ca ? { ca: ca.pem } : {}),
      timeout: 30_000,
    }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A refusal, as opposed to a control plane that cannot be reached yet: joining again will not help. */
class JoinRefused extends Error {}

/**
 * Join through the control plane, waiting for it while it cannot be reached or answers 5xx (a
 * node that reboots while the control plane is down joins when it is back, as kubelets and
 * Nomad clients do). A refusal (a wrong token, a bad node name, a certificate not signed by the
 * cluster CA) fails at once.
 */
async function join(controlPlanes: string[], token: string, node: string, csr: string, ca: TrustedCa | undefined, log: Logger): Promise<JoinAnswer> {
  for (let waitMs = 1000, round = 0; ; round++) {
    // Each control plane in turn; a round with none reachable waits, longer each time.
    const controlPlane = controlPlanes[round % controlPlanes.length];
    const url = `${controlPlane}/v1/agents/join`;
    let why: string;
    try {
      const res = await postJson(url, { token }, { node, csr } satisfies JoinRequest, ca);
      if (res.status >= 200 && res.status < 300) {
        try {
          return JSON.parse(res.text) as JoinAnswer;
        } catch {
          throw new JoinRefused(`${controlPlane} answered ${JSON.stringify(res.text.slice(0, 60))} where JSON was due: is it an OS Walk control plane?`);
        }
      }
      why = `${res.status} ${res.text}`;
      if (res.status < 500) throw new JoinRefused(`the control plane at ${controlPlane} refused node ${node}: ${why}`);
    } catch (err) {
      if (err instanceof JoinRefused) throw err;
      const refused = tlsRefusal(err as NodeJS.ErrnoException, controlPlane, ca);
      if (refused) throw new Error(`node ${node} cannot join: ${refused}`);
      why = (err as Error).message;
    }
    if ((round + 1) % controlPlanes.length) {
      log.warn({ controlPlane, err: why }, 'cannot join through this control plane; trying the next');
      continue;
    }
    log.warn({ controlPlane, err: why, retryInMs: waitMs }, 'cannot join through the control plane yet; retrying');
    await new Promise((r) => setTimeout(r, waitMs));
    waitMs = Math.min(waitMs * 2, 30_000);
  }
}

/**
 * Renews the node's certificate when two thirds of its life have passed (as Docker Swarm's
 * nodes do), asking as the node itself: the current certificate is the client's, so a join
 * token revoked since does not matter, and the name cannot change. The new one is kept on disk,
 * where the node's other parts read it within a second, and served from then on by the
 * agent's server (`installed`) without a restart. A failure is tried again after a tenth of
 * the time left (at least 5 s, at most a minute), and logged as a warning each time.
 */
function renewNodeCertificate(o: { controlPlanes: string[]; ca: TrustedCa | undefined; stateDir: string; first: NodeTls; log: Logger; installed(t: NodeTls): void }): { stop(): void } {
  let timer: { clear(): void } | undefined;
  let stopped = false;
  // Each attempt asks the next control plane of the list: one that is down delays a renewal by a retry.
  let asked = 0;
  const schedule = (issuedAt: number, current: NodeTls) => {
    const due = issuedAt + (current.notAfter - issuedAt) * 2 / 3;
    timer = longTimeout(() => void attempt(current), due - Date.now(), { unref: true });
  };
  const attempt = async (current: NodeTls) => {
    if (stopped) return;
    try {
      const { nodeCertificateRequest } = await import('../util/pki.js');
      const request = await nodeCertificateRequest(current.node);
      const url = `${o.controlPlanes[asked++ % o.controlPlanes.length]}/v1/agents/renew`;
      const res = await postJson(url, { key: current.key, cert: current.cert }, { csr: request.csr } satisfies RenewRequest, o.ca ?? { pem: current.ca, source: 'the node\'s pki/ca.crt' });
      if (res.status !== 200) throw new Error(`HTTP ${res.status} ${res.text.slice(0, 300)}`);
      const answer = JSON.parse(res.text) as NodeCertificate;
      const next = saveNodeTls(o.stateDir, { key: request.key, cert: answer.certificate, ca: answer.caCert });
      o.installed(next);
      o.log.info({ notAfter: new Date(next.notAfter).toISOString() }, 'node certificate renewed');
      schedule(Date.now(), next);
    } catch (err) {
      const retryMs = Math.min(60_000, Math.max(5000, (current.notAfter - Date.now()) / 10));
      o.log.warn({ err: (err as Error).message, notAfter: new Date(current.notAfter).toISOString(), retryInMs: retryMs }, 'renewing the node certificate failed; trying again');
      if (!stopped) timer = longTimeout(() => void attempt(current), retryMs, { unref: true });
    }
  };
  schedule(Date.now(), o.first);
  return {
    stop() {
      stopped = true;
      timer?.clear();
    },
  };
}

/**
 * An agent: joins, registers its real capacity, heartbeats every second with its load,
 * and runs the jobs the scheduler places on its node. Jobs a previous run of this agent
 * left behind are stopped (runtime.cleanup) and requeued, never run twice.
 */
export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log = opts.log ?? createLogger('agent', { node: opts.node });
  let redisUrl = opts.redisUrl;
  let prefix = opts.prefix;
  let fsRedisUrl = opts.fsRedisUrl;
  /** This node's certificate, when the control plane gave it one: its chunk server is then HTTPS. */
  let tls: NodeTls | undefined;
  let defaultImage = opts.runtime.name === 'docker' ? opts.defaultImage : undefined;
  if (opts.controlPlane) {
    // The key is made here and never leaves the node; the control plane signs its request.
    const { nodeCertificateRequest } = await import('../util/pki.js');
    const request = await nodeCertificateRequest(opts.node);
    const j = await join(controlPlaneList(opts.controlPlane), opts.token, opts.node, request.csr, opts.ca, log);
    redisUrl ??= j.redisUrl;
    prefix ??= j.prefix;
    if (!opts.redisUrl) fsRedisUrl ??= j.fsRedisUrl;
    if (opts.runtime.name === 'docker') defaultImage ??= j.defaultImage;
    if (j.nodeCertificate) tls = saveNodeTls(opts.stateDir, { key: request.key, cert: j.nodeCertificate.certificate, ca: j.nodeCertificate.caCert });
  }
  // A certificate of an earlier run, or of another cluster, must not outlive this join.
  if (!tls) await rm(nodeTlsFiles(opts.stateDir).pem, { force: true });
  if (!redisUrl) throw new Error('the agent needs --control-plane URL (or --redis URL) to find the cluster');
  // No auto-pipelining: a job costs one script call per end (completeAndTake), and batching
  // those per tick measured slower here (queue bench: 1.5k vs 1.3k jobs/s at concurrency 1,
  // 3.8k vs 2.7k at 10).
  const redis = connectRedis(redisUrl);
  const ks = keyspace(prefix);
  const fsRedis = fsRedisUrl && fsRedisUrl !== redisUrl ? connectRedis(fsRedisUrl) : redis;
  const files = await openFs(redis, ks, fsRedis);
  // What a Node manifest says of the address and export directory stands in for options not
  // given (read once, at start; labels and capacity the control plane merges in as they change).
  const manifest = (await getObject<NodeManifest>(redis, ks, 'Node', opts.node))?.spec;
  const exportDir = opts.exportDir ?? manifest?.exportDir ?? DEFAULT_EXPORT_DIR;
  const registry = createRegistry('agent', { node: opts.node });
  addReplicaWaitSource(registry, 'agent', () => replicationStats);
  const heartbeatMs = opts.heartbeatMs ?? 1000;
  const leaseMs = opts.leaseMs ?? 15_000;
  const cluster = await clusterId(redis, ks, randomBytes(6).toString('hex'));
  const shareDir = opts.runtime.name === 'docker' ? opts.shareDir ?? joinPath(opts.stateDir, 'share') : undefined;
  // Job containers bind the fence's directory: with docker it lives in the share directory,
  // which is the same path for the Docker daemon as for the agent. Named by cluster and node:
  // an agent zeroes its fence as it starts, which must never fence another agent's jobs (a
  // share or state directory given to two agents, of one cluster or two).
  const fenceDir = joinPath(shareDir ?? opts.stateDir, shareDir ? '.guard' : 'guard', `${safeName(cluster)}.${safeName(opts.node)}`);
  const fence = new NodeFence(fenceDir, !!shareDir);

  // The chunk server refuses a peer whose certificate was revoked (oswalk node revoke-cert) from
  // its next request after the list's next poll; this node learns so of its own too.
  let current = tls;
  const revocations = tls ? watchRevokedCertificates(redis, ks, {
    log,
    onChange: (revoked) => {
      if (current && revoked.has(serialKey(current.serial))) log.error({ serial: serialKey(current.serial) }, 'this node\'s certificate was revoked: its peers and the control plane refuse it, so it can fetch nothing from them; restart the agent to join again for a new one');
    },
  }) : undefined;
  await revocations?.ready;
  const app = createHttpServer({
    log, registry, authenticate: clusterTokenOnly(opts.token),
    ...(tls ? { tls: { key: tls.key, cert: tls.cert, ca: tls.ca }, revoked: (serial: string) => revocations!.has(serial) } : {}),
  });
  const store = new ChunkStore(chunkDir(opts.stateDir), { log: log.child({ part: 'store' }) });
  await registerChunkServer(app, store, { token: opts.token, byCertificate: !!tls, fs: files, node: opts.node });
  // Sessions' clients attach at the agent's port (TLS when the node has a certificate) or, on
  // this machine, at its Unix socket; the runner, made below, holds the sessions.
  let sessionsOf: JobRunner | undefined;
  const onAttach = serveAttach((id) => sessionsOf?.session(id));
  app.server.on('upgrade', onAttach);
  const attachServer = await listenAttachSocket(resolvePath(opts.stateDir, 'attach.sock'), onAttach, log);
  const attachSocket = attachServer ? attachServer.address() as string : undefined;
  const listen = opts.listen ?? { host: '0.0.0.0', port: 7001 };
  const address = await app.listen({ host: listen.host, port: listen.port });
  const port = Number(new URL(address).port);
  const advertised = opts.address ?? manifest?.address ?? (WILDCARD.has(listen.host) ? hostname() : listen.host);
  const agentUrl = `${tls ? 'https' : 'http'}://${advertised}:${port}`;
  // Every address by default, as kubelets and Nomad clients listen: peers on other machines
  // reach it at an address this one may not have (NAT, a published port) or a name that resolves
  // to another here (Debian's 127.0.1.1), and with a certificate its chunk routes take a peer's
  // node certificate alone. Without one they take the cluster token, in clear text: say so.
  if (!tls && WILDCARD.has(listen.host)) {
    log.warn({ address }, 'INSECURE: this node has no certificate (its control plane holds no cluster CA, or it was given --redis), so its chunk server speaks plain HTTP, taking the cluster token, on every address of this machine: start the control plane with the CA (--ca-key, or where `oswalk cluster init` ran), or listen on a private address only (--listen 10.0.0.5:7001)');
  }

  const cpus = Math.min(osCpus().length, opts.cpus ?? Infinity);
  const memoryBytes = Math.min(totalmem(), opts.memoryBytes ?? Infinity);
  // The scheduler weighs a host's load average against what all its nodes' jobs use: the nodes
  // of one kernel (oswalk up, agents in containers of one host) share it.
  const hostId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  const meter = new CpuMeter();
  let cpuUse: CpuUse = { usedCpus: 0, burstCpus: 0 };
  let fs: NodeFilesystem | undefined;
  const load = () => ({
    load1: loadavg()[0], memoryUsedBytes: totalmem() - freemem(), runningJobs: runner.runningCount,
    usedCpus: Math.round(cpuUse.usedCpus * 100) / 100, burstCpus: Math.round(cpuUse.burstCpus * 100) / 100,
    ...fs?.usage(), ...mount?.usage(),
  });
  new Gauge({ name: 'oswalk_node_load1', help: '1-minute load average of the node.', registers: [registry], collect() { this.set(loadavg()[0]); } });
  new Gauge({ name: 'oswalk_node_memory_used_bytes', help: 'Memory in use on the node.', registers: [registry], collect() { this.set(totalmem() - freemem()); } });
  new Gauge({ name: 'oswalk_node_cpus', help: 'CPUs the node offers to jobs.', registers: [registry], collect() { this.set(cpus); } });
  new Gauge({ name: 'oswalk_node_memory_bytes', help: 'Memory the node offers to jobs.', registers: [registry], collect() { this.set(memoryBytes); } });

  let epoch = 0;
  let registering: Promise<void> | undefined;
  /** One heartbeat; it moves the fence. False: the node must register again. */
  const beat = async (): Promise<boolean> => {
    const sent = monotonicMs();
    const nodeTimeoutMs = await heartbeat(redis, ks, opts.node, epoch, load());
    if (nodeTimeoutMs) fence.heartbeatAccepted(sent, nodeTimeoutMs);
    return !!nodeTimeoutMs;
  };
  /**
   * (Re)join the cluster: a new epoch, then whatever ran under an older one is stopped
   * and requeued, since nobody could report its end with a valid token any more.
   */
  const register = (why: string): Promise<void> => {
    registering ??= (async () => {
      if (epoch) {
        // Marked down, or registered again elsewhere: the jobs here are the cluster's to move.
        fence.revoke();
        await runner.stopAll('lost');
      }
      epoch = await registerNode(redis, ks, {
        name: opts.node, address: advertised, agentUrl, labels: opts.labels ?? {}, runtime: opts.runtime.name, ...(defaultImage ? { defaultImage } : {}),
        cpus, memoryBytes, ...load(), exportDir, mountPath: opts.mountPath ?? '', ...(hostId ? { hostId } : {}),
        ...(attachSocket ? { attachSocket } : {}),
      });
      // The first heartbeat sets the fence, so the first job claimed is not fenced at once.
      if (!(await beat())) throw new Error(`node ${opts.node} was marked down as it registered`);
      const stopped = await opts.runtime.cleanup({ cluster, node: opts.node }, runner.runningIds());
      const requeued = await releaseNodeJobs(redis, ks, opts.node, `agent on ${opts.node} restarted`, 'start');
      log.info({ epoch, why, orphansStopped: stopped.length, requeued, cpus, memoryBytes, agentUrl, defaultImage }, 'registered');
    })().finally(() => {
      registering = undefined;
    });
    return registering;
  };

  // The mount comes before the runner so that every job, the first included, sees /cluster.
  const mount = opts.mountPath && opts.mount !== false
    ? await mountNodeFilesystem({
      mountPath: opts.mountPath, node: opts.node, redisUrl, ...(fsRedis === redis ? {} : { fsRedisUrl }), ks, redis, stateDir: opts.stateDir, token: opts.token,
      shareDir, log, registry,
    })
    : undefined;

  const runner: JobRunner = new JobRunner({
    redis, ks, node: opts.node, runtime: opts.runtime, ...(defaultImage ? { defaultImage } : {}), log, registry, leaseMs, cluster, fence,
    canRun: () => mount?.usage().mountReady !== false,
    epoch: () => epoch,
    onStaleEpoch: () => void register('claim refused').catch((err: unknown) => log.error({ err }, 'registration failed')),
    ...(mount ? { clusterMount: mount.containerPath ?? opts.mountPath } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
  });

  sessionsOf = runner;
  await register('start');
  runner.start();
  fs = await startNodeFilesystem(store, { redis, ks, fs: files, node: opts.node, token: opts.token, exportDir, stateDir: opts.stateDir, registry, log });

  let stopped = false;
  const renewal = tls && opts.controlPlane ? renewNodeCertificate({
    controlPlanes: controlPlaneList(opts.controlPlane), ca: opts.ca, stateDir: opts.stateDir, first: tls, log,
    installed: (t) => {
      (app.server as unknown as TlsServer).setSecureContext({ key: t.key, cert: t.cert, ca: t.ca });
      current = t;
    },
  }) : undefined;
  // What the jobs here burn, measured as often as the heartbeat reports it.
  let sampling: Promise<void> | undefined;
  const sampler = setInterval(() => {
    sampling ??= runner.cpuTimes()
      .then((jobs) => {
        cpuUse = meter.sample(monotonicMs(), jobs);
      })
      .catch((err: unknown) => log.warn({ err }, 'reading the CPU time of the jobs failed'))
      .finally(() => {
        sampling = undefined;
      });
  }, heartbeatMs);
  const beats = setInterval(() => {
    if (stopped || registering) return;
    beat()
      .then((ok) => (ok || stopped ? undefined : register('heartbeat refused')))
      .catch((err: unknown) => log.warn({ err }, 'heartbeat failed'));
  }, heartbeatMs);

  return {
    app, url: agentUrl.replace(advertised, listen.host === '0.0.0.0' ? '127.0.0.1' : advertised), redis, ks, registry, runner,
    async stop() {
      stopped = true;
      renewal?.stop();
      revocations?.stop();
      clearInterval(beats);
      clearInterval(sampler);
      await sampling;
      await runner.stop();
      await fs?.stop();
      await mount?.stop();
      // Its jobs are gone: the fence goes too, so that a stopped agent leaves no file in a
      // share directory (docker/host-setup.sh --down removes only empty directories).
      await rm(fenceDir, { recursive: true, force: true });
      await rmdir(dirname(fenceDir)).catch(() => undefined);
      await releaseNodeJobs(redis, ks, opts.node, `agent on ${opts.node} stopped`, 'stop').catch(() => 0);
      await app.close();
      await new Promise((r) => (attachServer ? attachServer.close(r) : r(undefined)));
      redis.disconnect();
      if (fsRedis !== redis) fsRedis.disconnect();
    },
  };
}
