import { request as httpRequest, type IncomingMessage } from 'node:http';
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
  api: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** POST raw bytes (application/octet-stream). */
  postBytes<T>(path: string, data: Buffer): Promise<T>;
  delete<T>(path: string): Promise<T>;
  /** A streaming GET: yields the response body as it arrives. */
  stream(path: string, signal?: AbortSignal): AsyncGenerator<Buffer>;
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** How long a request may take by default before the CLI gives up (kubectl's --request-timeout). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

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
  const { api, token, ca } = resolveApi(flags);
  const timeoutMs = flags.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const notOurs = (what: string) => new ApiError(0, `${api} is not an OS Walk control plane (it answered ${what}): check --api, $OSWALK_API or .oswalk/config.json`);

  /** Runs fn, failing with a clear error once the request has taken longer than timeoutMs. */
  async function bounded<T>(req: { destroy(err: Error): void } | undefined, fn: () => Promise<T>): Promise<T> {
    if (!timeoutMs) return fn();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new ApiError(0, `the control plane at ${api} did not answer within ${timeoutMs / 1000}s: is it overloaded, or is that address not an OS Walk control plane? (--request-timeout sets the limit; 0 waits for ever)`);
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

  async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ res: IncomingMessage; req: { destroy(err: Error): void } }> {
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
      req.once('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError' || err instanceof ApiError) return reject(err);
        const refused = tlsRefusal(err, api, ca);
        // A TLS server hangs up on a request in plain HTTP without a word.
        const https = url.protocol === 'http:' && err.code === 'ECONNRESET' ? ` (a control plane serves HTTPS unless started with --insecure-http: try https://${api.slice('http://'.length)})` : '';
        reject(new ApiError(0, refused ?? `cannot reach the control plane at ${api} (${err.code ?? err.message}): is it running? Start one with \`oswalk up\` or \`oswalk control-plane\`${https}`));
      });
      req.end(payload);
    }));
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return { res, req: sent! };
    const text = await bounded(sent, () => readAll(res));
    // Every answer of the API that is not a success is a JSON error body.
    if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) throw notOurs(`HTTP ${status} ${JSON.stringify(text.slice(0, 60))}`);
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
      throw notOurs(`${JSON.stringify(text.slice(0, 60))} where JSON was due`);
    }
  }

  return {
    api,
    get: <T>(path: string) => json<T>('GET', path),
    post: <T>(path: string, body?: unknown) => json<T>('POST', path, body ?? {}),
    postBytes: <T>(path: string, data: Buffer) => json<T>('POST', path, data),
    delete: <T>(path: string) => json<T>('DELETE', path),
    async *stream(path: string, signal?: AbortSignal) {
      const { res } = await request('GET', path, undefined, signal);
      for await (const chunk of res) yield chunk as Buffer;
    },
  };
}
