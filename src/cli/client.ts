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
  /** A streaming GET: yields the response body as it arrives. */
  stream(path: string, signal?: AbortSignal): AsyncGenerator<Buffer>;
}

/** The HTTP client every CLI command uses; errors say what went wrong and what to do. */
export function apiClient(flags: { api?: string; token?: string }): ApiClient {
  const { api, token } = resolveApi(flags);
  const headers = { authorization: `Bearer ${token}` };

  async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(api + path, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ApiError(0, `cannot reach the control plane at ${api} (${cause}): is it running? Start one with \`oswalk up\` or \`oswalk control-plane\``);
    }
    if (res.ok) return res;
    const text = await res.text();
    let parsed: { message?: string; details?: { path: string; message: string }[] } | undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const details = parsed?.details?.map((d) => `${d.path}: ${d.message}`).join('; ');
    const msg = parsed?.message ?? text ?? res.statusText;
    throw new ApiError(res.status, res.status === 401 ? `the control plane refused the token: ${msg}` : details ? `${msg} (${details})` : msg, parsed);
  }

  return {
    api,
    async get<T>(path: string) {
      return (await (await request('GET', path)).json()) as T;
    },
    async post<T>(path: string, body?: unknown) {
      return (await (await request('POST', path, body ?? {})).json()) as T;
    },
    async *stream(path: string, signal?: AbortSignal) {
      const res = await request('GET', path, undefined, signal);
      if (!res.body) return;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(chunk);
    },
  };
}
