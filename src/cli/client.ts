import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resolveApi } from './config.js';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly body?: unknown) {
    super(message);
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

/**
 * The HTTP client every CLI command uses; errors say what went wrong and what to do.
 * node:http rather than fetch: fetch loads undici on first use, which costs a short-lived
 * command like `oswalk run` more than the whole round trip to the control plane.
 */
export function apiClient(flags: { api?: string; token?: string }): ApiClient {
  const { api, token } = resolveApi(flags);

  async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(api + path);
    const raw = Buffer.isBuffer(body);
    const payload = body === undefined ? undefined : raw ? body : Buffer.from(JSON.stringify(body));
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
        method,
        signal,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload ? { 'content-type': raw ? 'application/octet-stream' : 'application/json', 'content-length': payload.length } : {}),
        },
      }, resolve);
      req.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.name === 'AbortError' ? err : new ApiError(0, `cannot reach the control plane at ${api} (${err.code ?? err.message}): is it running? Start one with \`oswalk up\` or \`oswalk control-plane\``));
      });
      req.end(payload);
    });
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const text = await readAll(res);
    let parsed: { message?: string; details?: { path: string; message: string }[] } | undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const details = parsed?.details?.map((d) => `${d.path}: ${d.message}`).join('; ');
    const msg = parsed?.message ?? (text || res.statusMessage || `HTTP ${status}`);
    throw new ApiError(status, status === 401 ? `the control plane refused the token: ${msg}` : details ? `${msg} (${details})` : msg, parsed);
  }

  return {
    api,
    async get<T>(path: string) {
      return JSON.parse(await readAll(await request('GET', path))) as T;
    },
    async post<T>(path: string, body?: unknown) {
      return JSON.parse(await readAll(await request('POST', path, body ?? {}))) as T;
    },
    async postBytes<T>(path: string, data: Buffer) {
      return JSON.parse(await readAll(await request('POST', path, data))) as T;
    },
    async delete<T>(path: string) {
      return JSON.parse(await readAll(await request('DELETE', path))) as T;
    },
    async *stream(path: string, signal?: AbortSignal) {
      const res = await request('GET', path, undefined, signal);
      for await (const chunk of res) yield chunk as Buffer;
    },
  };
}
