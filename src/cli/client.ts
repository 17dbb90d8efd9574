import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { errorCode, type ErrorBody, type ErrorCode } from '../api/errors.js';
import { tlsRefusal } from '../util/tls.js';
import { resolveApi } from './config.js';

/**
 * A request that failed: status 0 when no answer came (unreachable, timed out, not an OS Walk
 * control plane), else the API's answer, whose code is what callers decide on.
 */
export class ApiError extends Error {
  /** The answer's code; from its status when the body has none (an older control plane). */
  readonly code?: ErrorCode;

  constructor(readonly status: number, message: string, readonly body?: Partial<ErrorBody>) {
    super(message);
    if (status) this.code = body?.code ?? errorCode(status);
  }
}

export interface ApiClient {
  /** The control plane the last request reached (the first of the list before any). */
  readonly api: string;
  /** The cluster CA it trusts (PEM), when one is configured: a session's client trusts a node's certificate by it too. */
  readonly ca?: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** POST raw bytes (application/octet-stream). */
  postBytes<T>(path: string, data: Buffer): Promise<T>;
  delete<T>(path: string): Promise<T>;
  /** A streaming GET: yields the response body as it arrives. */
  stream(path: string, signal?: AbortSignal): AsyncGenerator<Buffer>;
  /** A request whose answer is read as it arrives: its headers, and its body in pieces. */
  open(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<StreamAnswer>;
}

export interface StreamAnswer {
  headers: IncomingHttpHeaders;
  body: AsyncIterable<Buffer>;
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** How long a request may take by default before the CLI gives up (kubectl's --request-timeout). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Errors that say a request never reached the control plane: another one may take it. */
const UNREACHED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNECTTIMEOUT']);
/** Errors after which a request that changes nothing (GET) may be sent to another control plane. */
const LOST = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);
/** How long a connection to one control plane may take before the next one is tried. */
const CONNECT_TIMEOUT_MS = 3000;

/** A control plane of the list that could not be reached: the next one is tried. */
class Unreached extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}

/**
 * The HTTP client every CLI command uses; errors say what went wrong and what to do.
 * node:http rather than fetch: fetch loads undici on first use, which costs a short-lived
 * command like `oswalk run` more than the whole round trip to the control plane.
 *
 * `timeoutMs` (0: none) bounds each request from its start until its whole answer is in, or, for
 * a stream, until its answer begins: a server that takes the connection and never answers must
 * not hang the CLI.
 */
export function apiClient(flags: { api?: string; token?: string; caCert?: string; timeoutMs?: number }): ApiClient {
  const { apis, token, ca } = resolveApi(flags);
  // Where the last request got through: the next starts there (a dead control plane costs one refusal, not one per request).
  let current = 0;
  const timeoutMs = flags.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const notOurs = (api: string, what: string) => new ApiError(0, `${api} is not an OS Walk control plane (it answered ${what}): check --api, $OSWALK_API or .oswalk/config.json`);

  /** Runs fn, failing with a clear error once the request has taken longer than timeoutMs. */
  async function bounded<T>(req: { destroy(err: Error): void } | undefined, fn: () => Promise<T>): Promise<T> {
    if (!timeoutMs) return fn();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new ApiError(0, `the control plane at ${apis[current]} did not answer within ${timeoutMs / 1000}s: is it overloaded, or is that address not an OS Walk control plane? (--request-timeout sets the limit; 0 waits for ever)`);
        req?.destroy(err);
        reject(err);
      }, timeoutMs);
    });
    try {
      return await Promise.race([fn(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Send to each control plane in turn, from the one that answered last, until one takes the
   * request. Another is tried only when this one surely never had it (refused, unreachable, no
   * connection within CONNECT_TIMEOUT_MS), or, for a GET, when the connection broke: a POST a
   * control plane may have acted on is never sent twice.
   */
  async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ res: IncomingMessage; req: { destroy(err: Error): void } }> {
    const misses: string[] = [];
    for (let tried = 0; ; tried++) {
      const at = (current + tried) % apis.length;
      try {
        const answer = await requestAt(apis[at], method, path, body, signal);
        current = at;
        return answer;
      } catch (err) {
        if (!(err instanceof Unreached)) throw err;
        misses.push(err.error.message);
        if (tried + 1 >= apis.length) throw apis.length === 1 ? err.error : new ApiError(0, `cannot reach any of the ${apis.length} control planes: ${misses.join('; ')}`);
      }
    }
  }

  async function requestAt(api: string, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ res: IncomingMessage; req: { destroy(err: Error): void } }> {
    const url = new URL(api + path);
    const raw = Buffer.isBuffer(body);
    const payload = body === undefined ? undefined : raw ? body : Buffer.from(JSON.stringify(body));
    let sent: { destroy(err: Error): void } | undefined;
    const res = await bounded({ destroy: (err) => sent?.destroy(err) }, () => new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
        method,
        signal,
        // The cluster CA alone, not the system's CAs beside it: the API is the cluster's only.
        ...(ca ? { ca: ca.pem } : {}),
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': raw ? 'application/octet-stream' : 'application/json', 'content-length': payload.length } : {}),
        },
      }, resolve);
      sent = req;
      req.once('socket', (socket) => {
        if (!socket.connecting) return;
        const slow = setTimeout(() => req.destroy(Object.assign(new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000}s`), { code: 'ECONNECTTIMEOUT' })), CONNECT_TIMEOUT_MS);
        socket.once('connect', () => clearTimeout(slow));
        socket.once('close', () => clearTimeout(slow));
      });
      req.once('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError' || err instanceof ApiError) return reject(err);
        const refused = tlsRefusal(err, api, ca);
        // A TLS server hangs up on a request in plain HTTP without a word.
        const https = url.protocol === 'http:' && err.code === 'ECONNRESET' ? ` (a control plane serves HTTPS unless started with --insecure-http: try https://${api.slice('http://'.length)})` : '';
        const error = new ApiError(0, refused ?? `cannot reach the control plane at ${api} (${err.code ?? err.message}): is it running? Start one with \`oswalk up\` or \`oswalk control-plane\`${https}`);
        const another = !refused && !!err.code && (UNREACHED.has(err.code) || (method === 'GET' && LOST.has(err.code)));
        reject(another ? new Unreached(error) : error);
      });
      req.end(payload);
    }));
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return { res, req: sent! };
    const text = await bounded(sent, () => readAll(res));
    // Every answer of the API that is not a success is a JSON error body.
    if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) throw notOurs(api, `HTTP ${status} ${JSON.stringify(text.slice(0, 60))}`);
    let parsed: Partial<ErrorBody> | undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const details = parsed?.details?.map((d) => `${d.path}: ${d.message}`).join('; ');
    const msg = parsed?.message ?? (text || res.statusMessage || `HTTP ${status}`);
    const code = parsed?.code ?? errorCode(status);
    throw new ApiError(status, code === 'Unauthorized' ? `the control plane refused the token: ${msg}` : details ? `${msg} (${details})` : msg, parsed);
  }

  /** A request whose whole answer is one JSON document. */
  async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { res, req } = await request(method, path, body);
    const text = await bounded(req, () => readAll(res));
    try {
      return JSON.parse(text) as T;
    } catch {
      throw notOurs(apis[current], `${JSON.stringify(text.slice(0, 60))} where JSON was due`);
    }
  }

  return {
    get api() {
      return apis[current];
    },
    ...(ca ? { ca: ca.pem } : {}),
    get: <T>(path: string) => json<T>('GET', path),
    post: <T>(path: string, body?: unknown) => json<T>('POST', path, body ?? {}),
    postBytes: <T>(path: string, data: Buffer) => json<T>('POST', path, data),
    delete: <T>(path: string) => json<T>('DELETE', path),
    async *stream(path: string, signal?: AbortSignal) {
      const { res } = await request('GET', path, undefined, signal);
      for await (const chunk of res) yield chunk as Buffer;
    },
    async open(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal) {
      const { res } = await request(method, path, body, signal);
      return { headers: res.headers, body: res as AsyncIterable<Buffer> };
    },
  };
}
