import { Agent, get as httpGet } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import type { Redis } from '../state/redis.js';
import type { Keyspace } from '../state/keys.js';
import type { FsState } from '../state/fs-layout.js';
import { listNodes } from '../state/nodes.js';
import { createLogger, type Logger } from '../util/log.js';
import { ChunkUnavailableError } from './errors.js';
import { chunkListLocations } from './locations.js';
import { verifyHash, type ChunkRef } from './store.js';
import type { peerRequestTls } from './peer-tls.js';

export interface PeerChunkSourceOptions {
  /** The cluster's state (its nodes: where peers are). */
  redis: Redis;
  ks: Keyspace;
  /** The cluster's files (chunk lists, where their chunks are). */
  fs: FsState;
  /** The asking node's name (never asked itself); empty for a reader that is no node (the control plane). */
  self: string;
  /** Bearer token of the peers' chunk servers (plain HTTP ones: over TLS the client certificate is what counts). */
  token: string;
  /** The client certificate and trusted CA for peers at https:// URLs; throws, naming why, when there is none. */
  tls: () => ReturnType<typeof peerRequestTls>;
  /** One attempt against one holder, headers and body. */
  timeoutMs: number;
  /** The whole fetch, across every holder tried; then ChunkUnavailableError (EIO). */
  deadlineMs: number;
  /** Ask the next holder too when the first has not answered in this long. */
  hedgeMs: number;
  /**
   * The order to try a group of peers in (holders, then the rest): random by default, so that
   * readers spread over holders. Tests give a fixed one, so that no outcome depends on chance.
   */
  order?: (names: string[]) => string[];
  log?: Logger;
}

const shuffled = (names: string[]): string[] =>
  names.map((n) => [Math.random(), n] as const).sort((x, y) => x[0] - y[0]).map(([, n]) => n);

export interface PeerStats {
  remoteFetches: number;
  remoteBytes: number;
  badPeerResponses: number;
  failures: number;
}

/** How long a peer that sent wrong bytes goes to the back of the queue. */
const BAD_PEER_MS = 60_000;
const NODES_TTL_MS = 1000;

class PeerError extends Error {
  constructor(message: string, readonly badBytes = false) {
    super(message);
  }
}

/**
 * Chunks from the nodes that hold them, for a node's fetcher (fetcher.ts, which keeps what it
 * gets in its store) and for the control plane's downloads (which keeps nothing).
 *
 * Holders come from the chunk list's location set in Redis (then every other live node,
 * since dedup means unrelated chunk lists share chunks). They are tried in random order,
 * hedged: a second request starts when the first is slow (hedgeMs) and at once when one
 * fails, so a dead or slow peer costs at most a hedge interval. Every answer is hashed; a
 * peer that sends wrong bytes is logged and sent to the back of the queue for a minute.
 */
export class PeerChunkSource {
  private readonly log: Logger;
  private readonly badUntil = new Map<string, number>();
  private nodes?: { at: number; urls: Map<string, string> };
  private readonly holders = new Map<string, { at: number; names: string[] }>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 16 });
  private readonly s: PeerStats = { remoteFetches: 0, remoteBytes: 0, badPeerResponses: 0, failures: 0 };

  constructor(private readonly o: PeerChunkSourceOptions) {
    this.log = o.log ?? createLogger('packetfs-fetcher', { node: o.self });
  }

  /** Close the idle keep-alive connections to peers. */
  close(): void {
    this.agent.destroy();
    this.httpsAgent.destroy();
  }

  stats(): PeerStats {
    return { ...this.s };
  }

  private async peerUrls(): Promise<Map<string, string>> {
    if (this.nodes && Date.now() - this.nodes.at < NODES_TTL_MS) return this.nodes.urls;
    const urls = new Map<string, string>();
    for (const n of await listNodes(this.o.redis, this.o.ks)) {
      // A draining node still serves its chunks until it is gone; only down nodes are skipped.
      if (n.name !== this.o.self && n.status !== 'down' && n.agentUrl) urls.set(n.name, n.agentUrl.replace(/\/+$/, ''));
    }
    this.nodes = { at: Date.now(), urls };
    return urls;
  }

  /**
   * A chunk list's holders, remembered for a second: a reader streaming a file asks for many
   * chunks of one chunk list, and one Redis round trip per chunk would add its latency to each.
   */
  private async holdersOf(chunkListHash: string): Promise<string[]> {
    const now = Date.now();
    const hit = this.holders.get(chunkListHash);
    if (hit && now - hit.at < NODES_TTL_MS) return hit.names;
    if (this.holders.size > 1000) this.holders.clear();
    const names = await chunkListLocations(this.o.fs.redis, this.o.fs.ks, chunkListHash);
    this.holders.set(chunkListHash, { at: now, names });
    return names;
  }

  /** Holders first, then every other live peer; each group in `order`; peers that lied recently last. */
  private async candidates(chunkListHash?: string): Promise<[string, string][]> {
    const urls = await this.peerUrls();
    const holders = chunkListHash ? (await this.holdersOf(chunkListHash)).filter((n) => urls.has(n)) : [];
    const others = [...urls.keys()].filter((n) => !holders.includes(n));
    const now = Date.now();
    const order = this.o.order ?? shuffled;
    const ordered = [...order(holders), ...order(others)];
    const good = ordered.filter((n) => (this.badUntil.get(n) ?? 0) <= now);
    const bad = ordered.filter((n) => (this.badUntil.get(n) ?? 0) > now);
    return [...good, ...bad].map((n) => [n, urls.get(n)!]);
  }

  /**
   * A chunk's bytes from the nodes that hold it, verified; ChunkUnavailableError (EIO) when
   * none delivers within deadlineMs.
   */
  async fetch(ref: ChunkRef, chunkListHash?: string): Promise<Buffer> {
    const peers = await this.candidates(chunkListHash);
    if (peers.length === 0) {
      this.s.failures++;
      throw new ChunkUnavailableError(ref.hash, 'no other live node to ask');
    }
    const errors: string[] = [];
    const controllers = new Set<AbortController>();
    let hedge: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        let next = 0;
        let active = 0;
        let done = false;
        const finish = (err: Error | undefined, data?: Buffer) => {
          if (done) return;
          done = true;
          if (err) reject(err);
          else resolve(data!);
        };
        deadline = setTimeout(() => finish(new ChunkUnavailableError(ref.hash, `no holder answered within ${this.o.deadlineMs} ms (${errors.join('; ') || 'no answers'})`)), this.o.deadlineMs);
        const launch = (): void => {
          if (done) return;
          clearTimeout(hedge);
          if (next >= peers.length) {
            if (active === 0) finish(new ChunkUnavailableError(ref.hash, `every holder failed: ${errors.join('; ')}`));
            return;
          }
          const [name, url] = peers[next++];
          const ac = new AbortController();
          controllers.add(ac);
          active++;
          this.attempt(ref, url, ac.signal).then(
            (data) => finish(undefined, data),
            (err: Error) => {
              active--;
              controllers.delete(ac);
              if (done) return;
              errors.push(`${name}: ${err.message}`);
              if (err instanceof PeerError && err.badBytes) {
                this.s.badPeerResponses++;
                this.badUntil.set(name, Date.now() + BAD_PEER_MS);
                this.log.warn({ peer: name, hash: ref.hash, err: err.message }, 'peer sent wrong bytes; skipping it');
              } else if (!(err instanceof PeerError)) {
                this.log.warn({ peer: name, hash: ref.hash, err: err.message }, 'peer failed; trying another holder');
              }
              launch();
            },
          );
          hedge = setTimeout(launch, this.o.hedgeMs);
        };
        launch();
      });
    } catch (err) {
      this.s.failures++;
      this.log.error({ hash: ref.hash, chunkListHash, err: (err as Error).message }, 'chunk unavailable');
      throw err;
    } finally {
      clearTimeout(hedge);
      clearTimeout(deadline);
      for (const ac of controllers) ac.abort();
    }
  }

  /**
   * One GET against one peer. node:http with a keep-alive agent rather than fetch(): on
   * loopback it moves a 300 KB chunk in about half the time (no WHATWG stream layer), and
   * the body is collected only up to the size the chunk must have.
   */
  private attempt(ref: ChunkRef, baseUrl: string, signal: AbortSignal): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const tls = baseUrl.startsWith('https:');
      const req = (tls ? httpsGet : httpGet)(`${baseUrl}/v1/chunks/${ref.hash}`, {
        agent: tls ? this.httpsAgent : this.agent,
        ...(tls ? this.o.tls() : {}),
        headers: { authorization: `Bearer ${this.o.token}` },
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs)]),
      }, (res) => {
        const fail = (err: Error) => {
          res.destroy();
          reject(err);
        };
        if (res.statusCode === 404) return fail(new PeerError('does not hold it'));
        if (res.statusCode !== 200) return fail(new Error(`HTTP ${res.statusCode}`));
        const len = Number(res.headers['content-length'] ?? NaN);
        if (len !== ref.size) return fail(new PeerError(`announced ${len} bytes, the chunk has ${ref.size}`, true));
        const parts: Buffer[] = [];
        let got = 0;
        res.on('data', (d: Buffer) => {
          got += d.length;
          if (got > ref.size) fail(new PeerError(`sent more than ${ref.size} bytes`, true));
          else parts.push(d);
        });
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('connection closed mid-body')));
        res.on('end', () => {
          const data = Buffer.concat(parts, got);
          void verifyHash(data).then((actual) => {
            if (got !== ref.size || actual !== ref.hash) return reject(new PeerError(`${got} bytes hashing to ${actual}`, true));
            this.s.remoteFetches++;
            this.s.remoteBytes += got;
            resolve(data);
          }, reject);
        });
      });
      req.on('error', (err: Error) => reject(err.name === 'AbortError' ? new Error(`no answer within ${this.o.timeoutMs} ms or cancelled`) : err));
    });
  }
}
