import { randomBytes, X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { keyspace } from '../state/keys.js';
import { openFs, type FsState } from '../state/fs-layout.js';
import { BlockingReaders, connectRedis } from '../state/redis.js';
import { replicationStats } from '../state/replication.js';
import { addReplicaWaitSource, createRegistry } from '../metrics/index.js';
import { createLogger } from '../util/log.js';
import type { HttpServer } from '../util/http.js';
import type { ClusterCa, KeyPairFiles } from '../util/pki.js';
import { renewApiCertificate, signedBy } from './api-cert.js';
import type { Server as TlsServer } from 'node:tls';
import type { ControlPlaneContext } from './context.js';
import { startControlLoops, type ControlLoops } from './loops.js';
import { buildControlPlane, type ApiTransport } from './server.js';

export type { ControlPlaneContext } from './context.js';
export type { ApiTransport } from './server.js';

export interface ControlPlaneOptions {
  redisUrl: string;
  /** Redis URL to hand to agents; defaults to redisUrl. */
  agentRedisUrl?: string;
  /** The Redis of the cluster's files, when not redisUrl's (--fs-redis). */
  fsRedisUrl?: string;
  /** The same as agents reach it; defaults to fsRedisUrl. */
  agentFsRedisUrl?: string;
  token: string;
  /** The API's certificate and key, or 'insecure-http'. */
  tls: ApiTransport;
  host: string;
  port: number;
  prefix?: string;
  nodeTimeoutMs?: number;
  /** docker nodes: the image of jobs that name none, unless a node has its own (ControlPlaneConfig). */
  defaultImage?: string;
  /**
   * The cluster CA, to give each joining node a certificate of its own (and to check the ones
   * nodes present); without it nodes get none, and their chunk servers speak plain HTTP.
   */
  ca?: ClusterCa;
  /** How long a node certificate lasts (default NODE_CERT_LIFETIME_MS); nodes renew at two thirds. */
  nodeCertLifetimeMs?: number;
  /** Serve the web dashboard at / (default true). */
  dashboard?: boolean;
  /**
   * Where the API's certificate and key are kept: with the CA that signed it (`ca`), the control
   * plane renews it there two thirds into its life and serves the new one without a restart.
   */
  tlsFiles?: KeyPairFiles;
}

/** Node certificates last 30 days, renewed after 20: Docker Swarm's rotate every 90 by default. */
export const NODE_CERT_LIFETIME_MS = 30 * 86_400_000;

export interface RunningControlPlane {
  app: HttpServer;
  ctx: ControlPlaneContext;
  loops: ControlLoops;
  url: string;
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = createLogger('controlplane', { cp: id });
  // Route handlers issue many small independent reads; auto-pipelining batches them per tick.
  const redis = connectRedis(opts.redisUrl, { enableAutoPipelining: true }, log);
  const fsRedis = opts.fsRedisUrl && opts.fsRedisUrl !== opts.redisUrl ? connectRedis(opts.fsRedisUrl, { enableAutoPipelining: true }, log) : redis;
  const ks = keyspace(opts.prefix);
  let fs: FsState;
  try {
    fs = await openFs(redis, ks, fsRedis);
  } catch (err) {
    redis.disconnect();
    fsRedis.disconnect();
    throw err;
  }
  const agentFsRedisUrl = fsRedis === redis ? undefined : opts.agentFsRedisUrl ?? opts.fsRedisUrl;
  const ctx: ControlPlaneContext = {
    redis,
    readers: new BlockingReaders(redis),
    ks,
    fs,
    log,
    registry: createRegistry('controlplane'),
    config: {
      token: opts.token,
      agentRedisUrl: opts.agentRedisUrl ?? opts.redisUrl,
      ...(agentFsRedisUrl ? { agentFsRedisUrl } : {}),
      nodeTimeoutMs: opts.nodeTimeoutMs ?? 5000,
      ...(opts.defaultImage ? { defaultImage: opts.defaultImage } : {}),
      id,
      dashboard: opts.dashboard ?? true,
      ...(opts.ca && opts.tls !== 'insecure-http' ? { nodeCa: { ca: opts.ca, lifetimeMs: opts.nodeCertLifetimeMs ?? NODE_CERT_LIFETIME_MS } } : {}),
    },
  };
  // The API's submits wait for a replica.
  addReplicaWaitSource(ctx.registry, 'controlplane', () => replicationStats);
  const app = await buildControlPlane(ctx, opts.tls === 'insecure-http' || !opts.ca ? opts.tls : { ...opts.tls, ca: opts.ca.certPem });
  const address = await app.listen({ host: opts.host, port: opts.port });
  let renewal: { stop(): void } | undefined;
  if (opts.tls === 'insecure-http') {
    log.warn({ address }, 'control plane listening on plain HTTP (--insecure-http): INSECURE, the token and all API traffic cross the network in clear text, for anyone on the way to read and use');
  } else {
    const expires = new Date(new X509Certificate(opts.tls.cert).validTo);
    log.info({ address, certificateExpires: expires.toISOString() }, 'control plane listening (HTTPS)');
    if (opts.ca && opts.tlsFiles && signedBy(opts.ca, opts.tls.cert)) {
      renewal = renewApiCertificate({ server: app.server as unknown as TlsServer, ca: opts.ca, files: opts.tlsFiles, cert: opts.tls.cert, log });
    } else if (expires.getTime() - Date.now() < 30 * 86_400_000) {
      // Without the CA's key nothing renews it here: say so while there is time.
      log.warn({ certificateExpires: expires.toISOString() }, 'the API\'s certificate expires within 30 days and this control plane cannot renew it (it holds no CA key that signed it): make a new one with `oswalk cluster certs` and restart the control plane');
    }
  }
  const loops = startControlLoops(ctx);
  return {
    app,
    ctx,
    loops,
    url: address.replace('[::1]', '127.0.0.1'),
    async close() {
      renewal?.stop();
      // Bounded: with Redis away the loops' last commands wait for it (they queue until it
      // returns), and a lease never released just expires. Disconnecting fails them.
      await Promise.race([loops.stop(), new Promise((r) => setTimeout(r, 5000).unref())]);
      await app.close();
      ctx.readers.close();
      redis.disconnect();
      if (fsRedis !== redis) fsRedis.disconnect();
    },
  };
}
