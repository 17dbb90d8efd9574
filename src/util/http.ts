import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { errorCode, type ErrorBody } from '../api/errors.js';
import { CLUSTER_TOKEN_NAME, roleAllows, type Role } from '../api/roles.js';
import { httpDurationHistogram } from '../metrics/index.js';
import { LIMITS } from './limits.js';
import type { Logger } from './log.js';
import { CONTROL_PLANE_UNIT, serialKey, type ServerTls } from './tls.js';

export type HttpServer = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  Logger,
  TypeBoxTypeProvider
>;

/** Who made a request: the name of the token it carried, and that token's role. */
export interface Caller {
  name: string;
  role: Role;
  /** A node's: the serial of the certificate it presented. */
  serial?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role a caller needs; default read-only for GET and HEAD, operator for the rest. */
    role?: Role;
    /** false: the control plane's audit log leaves this route out (a terminal's keys and sizes). */
    audit?: false;
    /**
     * The caller is the node named by its TLS client certificate (signed by the cluster CA, for
     * clients), not a bearer token: what a node does as itself (renewing that certificate).
     */
    nodeCertificate?: true;
    /**
     * With nodeCertificate: a control plane's client certificate (pki.ts CONTROL_PLANE_UNIT) is
     * taken too, as a reader: the chunk server's GET and HEAD, for the dashboard's downloads.
     */
    controlPlaneReads?: true;
    /** Anyone may call it: the dashboard's page and files, and logging in and out. */
    public?: true;
  }
  interface FastifyRequest {
    /** Set once the request's token is known (null on the public routes). */
    caller: Caller | null;
  }
}

export interface HttpServerOptions {
  log: Logger;
  registry: Registry;
  /**
   * Who a bearer token belongs to, or undefined to refuse it (401). Every route but /healthz,
   * /readyz and /metrics needs one; the route's role (config.role) decides what it may do (403).
   */
  authenticate: (token: string) => Caller | undefined | Promise<Caller | undefined>;
  /** Serve HTTPS with this certificate; without it, plain HTTP. */
  tls?: ServerTls;
  /**
   * Whether the node certificate with this serial was revoked before its end (the cluster's
   * revocation list): refused then at the routes that take one, as an expired one is.
   */
  revoked?: (serial: string) => boolean | Promise<boolean>;
  /**
   * Who a dashboard session belongs to (SESSION_COOKIE's value), or undefined when it is not
   * live: a request without a bearer token may carry the cookie instead. Without it, only
   * bearer tokens count.
   */
  session?: (id: string) => Caller | undefined | Promise<Caller | undefined>;
}

/** The dashboard's session cookie: HttpOnly and SameSite=Strict (see sessionCookie). */
export const SESSION_COOKIE = 'oswalk_session';

/**
 * The value of one cookie of a Cookie header. By hand, not a cookie library: the only cookie
 * read is ours, whose value (base64url) needs no decoding.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The origin a request was addressed to (its scheme and Host), which a browser's Origin header
 * must equal for a write made with the session cookie: a page of another site cannot make one.
 */
export function requestOrigin(req: { protocol: string; headers: { host?: string } }): string {
  return `${req.protocol}://${req.headers.host ?? ''}`;
}

function secretMatches(expected: string, token: string): boolean {
  const got = Buffer.from(token);
  const want = Buffer.from(expected);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** An authenticate for one secret, the cluster token's: its bearer is an admin. */
export function clusterTokenOnly(clusterToken: string): (token: string) => Caller | undefined {
  return (token) => (secretMatches(clusterToken, token) ? { name: CLUSTER_TOKEN_NAME, role: 'admin' } : undefined);
}

/**
 * The node a request's TLS client certificate names, and the certificate's serial, when the
 * certificate chains to the cluster CA and is for clients (OpenSSL checks both: `authorized`);
 * undefined otherwise.
 */
export function certifiedNode(socket: Socket): { node: string; serial: string; controlPlane: boolean } | undefined {
  const tls = socket as TLSSocket;
  if (!tls.encrypted || !tls.authorized) return undefined;
  const peer = tls.getPeerCertificate();
  const cn = peer.subject?.CN;
  return typeof cn === 'string' && cn ? { node: cn, serial: peer.serialNumber, controlPlane: peer.subject.OU === CONTROL_PLANE_UNIT } : undefined;
}

/** The role a route needs. */
export function neededRole(method: string, config: { role?: Role }): Role {
  return config.role ?? (method === 'GET' || method === 'HEAD' ? 'read-only' : 'operator');
}

/** Routes anyone may call (probes and Prometheus); every other request needs the token. */
const PUBLIC_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The HTTP plumbing the control plane and the agents share: JSON errors with the right
 * status codes, a bearer token on every route but the public ones, request durations, /metrics and /healthz.
 * Each process adds its own route plugins.
 */
export function createHttpServer(opts: HttpServerOptions): HttpServer {
  // A client that trickles a request in (headers, or a body) is cut off: these servers listen
  // on 0.0.0.0, and without it a few slow connections would be held open for minutes.
  const server = { headersTimeout: LIMITS.requestHeadersMs, connectionsCheckingInterval: 1000 };
  const app = Fastify({
    loggerInstance: opts.log,
    bodyLimit: LIMITS.apiBodyBytes,
    // Request durations go to /metrics; per-request log lines would drown the useful ones.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    requestTimeout: LIMITS.requestMs,
    // fastify hands an https server only its `https` options; a TLS handshake is bounded as
    // the headers that follow it are (node's default would hold a silent one for 120 s).
    // With a CA, clients are asked for a certificate but not refused without one: the routes
    // that take one check it (nodeCertificate, the chunk server), the others take a token.
    ...(opts.tls ? { https: { ...server, ...opts.tls, ...(opts.tls.ca ? { requestCert: true, rejectUnauthorized: false } : {}), handshakeTimeout: LIMITS.requestHeadersMs } } : { http: server }),
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as HttpServer;

  // Every body the API takes is JSON (or octet-stream where a route says so): a text/plain one
  // gets 415, not a string that fails the schema as "must be object".
  app.removeContentTypeParser('text/plain');

  const durations = httpDurationHistogram(opts.registry);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    durations.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500) req.log.warn({ route, status: reply.statusCode }, 'request failed');
  });

  // Decided by the route matched, not by the path as sent: the router decodes %76 to v.
  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (req, reply) => {
    // What every answer carries, the dashboard's included: no sniffing a JSON body into a page,
    // no framing (clickjacking a drain button), no address of the cluster in another site's logs.
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    if (opts.tls) reply.header('strict-transport-security', 'max-age=31536000');
    if (PUBLIC_ROUTES.has(req.routeOptions.url ?? '') || req.routeOptions.config.public) return;
    if (req.routeOptions.config.nodeCertificate) {
      const peer = certifiedNode(req.socket);
      if (!peer) return reply.code(401).send({ error: 'Unauthorized', code: 'Unauthorized', message: 'this route takes a node certificate of the cluster CA, presented as the TLS client certificate' });
      // Checked at each request, not at the handshake: a connection kept alive from before the
      // revocation is refused from then on too.
      if (await opts.revoked?.(peer.serial)) {
        return reply.code(401).send({ error: 'Unauthorized', code: 'Unauthorized', message: `the certificate of node ${peer.node} (serial ${serialKey(peer.serial)}) was revoked: the node joins again for a new one (restart its agent, with a join token that is still valid)` });
      }
      if (peer.controlPlane) {
        if (!req.routeOptions.config.controlPlaneReads) {
          return reply.code(403).send({ error: 'Forbidden', code: 'Forbidden', message: `control plane ${peer.node}'s certificate reads chunks and does nothing else: ${req.method} ${req.routeOptions.url} takes a node's certificate` });
        }
        req.caller = { name: `control-plane/${peer.node}`, role: 'read-only', serial: peer.serial };
        return;
      }
      req.caller = { name: `node/${peer.node}`, role: 'node', serial: peer.serial };
      return;
    }
    const header = req.headers.authorization;
    const sessionId = header === undefined && opts.session ? cookieValue(req.headers.cookie, SESSION_COOKIE) : undefined;
    const caller = header?.startsWith('Bearer ') ? await opts.authenticate(header.slice(7))
      : sessionId ? await opts.session!(sessionId) : undefined;
    if (sessionId && caller && neededRole(req.method, {}) !== 'read-only' && req.headers.origin !== requestOrigin(req)) {
      // A browser sends the cookie with a form another site posts here (SameSite=Strict stops
      // most, not all: a sibling subdomain is same-site); it also sends where that came from.
      return reply.code(403).send({ error: 'Forbidden', code: 'Forbidden', message: `a change made with the dashboard's session must come from its own page (Origin ${requestOrigin(req)}, not ${req.headers.origin ?? 'none'})` });
    }
    if (!caller) {
      return reply.code(401).send({ error: 'Unauthorized', code: 'Unauthorized', message: 'a valid bearer token is required; this one is missing, unknown, revoked or expired (oswalk cluster init prints the cluster token, an admin makes others with oswalk token create; set OSWALK_TOKEN or --token)' });
    }
    req.caller = caller;
    const needed = neededRole(req.method, req.routeOptions.config);
    if (!roleAllows(caller.role, needed)) {
      return reply.code(403).send({ error: 'Forbidden', code: 'Forbidden', message: `the token "${caller.name}" is ${caller.role}, and ${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]} needs ${needed}: use a token with that role (an admin makes one with oswalk token create --role ${needed})` });
    }
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'unhandled error');
    const body: ErrorBody = {
      // Fastify's own errors (bad JSON, a body too large) are named by their status, not "FastifyError".
      error: err.validation || err.code?.startsWith('FST_') ? (STATUS_CODES[status] ?? 'Error') : err.name === 'Error' ? (status >= 500 ? 'Internal Server Error' : 'Error') : err.name,
      code: errorCode(status),
      // Fastify's own messages may quote the whole URL back.
      message: clip(err.message, 1000),
    };
    if (err.validation) body.details = err.validation.map((v) => ({ path: v.instancePath || '/', message: v.message ?? '' }));
    if (err instanceof HttpError && err.object) body.object = err.object;
    return reply.code(status).send(body);
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'Not Found', code: 'NotFound', message: `no route ${req.method} ${clip(req.url.split('?')[0])}` });
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', opts.registry.contentType);
    return opts.registry.metrics();
  });
  return app;
}

/** A client's string in a message, cut to a length that keeps the message readable. */
export function clip(s: string, max = 200): string {
  return s.length > max ? `${s.slice(0, max)}… (${s.length} characters)` : s;
}

/**
 * An error whose message is safe to send to the client, with the status to send it with (its
 * code follows from the status, errorCode) and, where there is one, the object at fault.
 */
export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string, override readonly name = 'Error', readonly object?: ErrorBody['object']) {
    super(message);
  }
}
