import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { peerTls } from './peer-tls.js';

/**
 * Requests to peers' chunk servers for copies (push.ts, and the live chunker's thread, which
 * streams a file's chunks to its copies as they are cut). No Redis here: a worker thread
 * loads this without the cluster's state code. node:http with keep-alive agents rather than
 * fetch(), for the reason the fetcher gives (half the time per chunk on loopback).
 */
export class PeerClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 16 });

  /** `stateDir`: the node's, where its certificate is, for peers at https:// URLs (peer-tls.ts). */
  constructor(private readonly token: string, private readonly timeoutMs = 10_000, private readonly stateDir?: string) {}

  request(method: string, url: string, body: Uint8Array): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const tls = url.startsWith('https:');
      const req = (tls ? httpsRequest : httpRequest)(url, {
        method,
        agent: tls ? this.httpsAgent : this.agent,
        ...(tls ? peerTls(this.stateDir) : {}),
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream', 'content-length': body.length },
        signal: AbortSignal.timeout(this.timeoutMs),
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      });
      req.on('error', (err: Error) => reject(err.name === 'AbortError' ? new Error(`no answer within ${this.timeoutMs} ms`) : err));
      req.end(body);
    });
  }

  /** Store a chunk on the peer at baseUrl (its agent URL); it checks the bytes against the hash. */
  async putChunk(baseUrl: string, hash: string, data: Uint8Array): Promise<void> {
    const res = await this.request('PUT', `${baseUrl.replace(/\/+$/, '')}/v1/chunks/${hash}`, data);
    if (res.status !== 201 && res.status !== 200) throw new Error(`chunk ${hash}: HTTP ${res.status} ${res.body.toString().slice(0, 200)}`);
  }

  close(): void {
    this.agent.destroy();
    this.httpsAgent.destroy();
  }
}
