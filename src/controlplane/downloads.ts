import { Readable } from 'node:stream';
import { decodeChunkList } from '../packetfs/chunk-list.js';
import { PeerChunkSource } from '../packetfs/peer-source.js';
import { peerRequestTls } from '../packetfs/peer-tls.js';
import { getChunkList } from '../state/fs.js';
import { issueControlPlaneClientCertificate } from '../util/pki.js';
import type { ControlPlaneContext } from './context.js';

/** How long the control plane's client certificate lasts; a new one is made when a third of it is left. */
const CLIENT_CERT_LIFETIME_MS = 24 * 3_600_000;
/** Chunks of a download fetched ahead of the one being sent, so the next is there when the client wants it. */
const CHUNKS_AHEAD = 4;

/**
 * A file's contents for the dashboard's downloads (GET /v1/fs/download): its chunks from the
 * nodes that hold them, through their chunk servers, as a node's fetcher gets them
 * (peer-source.ts: holders first, hedged, each chunk checked against its hash), kept nowhere.
 *
 * Over TLS a chunk server serves a certificate of the cluster CA only. The control plane shows
 * one of its own (pki.ts issueControlPlaneClientCertificate: its unit marks it a control plane's,
 * which chunk servers serve reads and nothing else), made in memory from the CA's key when a
 * download first needs it and again before it expires. A control plane without the CA's key
 * cannot read from TLS chunk servers, and says so.
 */
export class FileDownloads {
  private readonly source: PeerChunkSource;
  private identity?: { tls: ReturnType<typeof peerRequestTls>; renewAt: number };
  private making?: Promise<void>;

  constructor(private readonly ctx: ControlPlaneContext) {
    this.source = new PeerChunkSource({
      redis: ctx.redis, ks: ctx.ks, fs: ctx.fs, self: '', token: ctx.config.token, timeoutMs: 5000, deadlineMs: 15_000, hedgeMs: 500, log: ctx.log.child({ part: 'downloads' }),
      tls: () => {
        if (!this.identity) throw new Error('this control plane holds no cluster CA key, so it has no certificate for the nodes\' TLS chunk servers: download from a control plane started with the CA (oswalk up, compose, cluster init\'s, or --ca-key), or read the file through a mount');
        return this.identity.tls;
      },
    });
  }

  close(): void {
    this.source.close();
  }

  /** The control plane's client certificate, made or renewed when due (only with the CA's key). */
  private async ensureIdentity(): Promise<void> {
    const nodeCa = this.ctx.config.nodeCa;
    if (!nodeCa || (this.identity && Date.now() < this.identity.renewAt)) return;
    this.making ??= (async () => {
      const made = await issueControlPlaneClientCertificate(nodeCa.ca, this.ctx.config.id, CLIENT_CERT_LIFETIME_MS);
      const notAfter = made.notAfter.getTime();
      this.identity = {
        tls: peerRequestTls({ key: made.key, cert: made.cert, ca: nodeCa.ca.certPem, node: this.ctx.config.id, notAfter, serial: '' }),
        renewAt: notAfter - CLIENT_CERT_LIFETIME_MS / 3,
      };
    })().finally(() => {
      this.making = undefined;
    });
    await this.making;
  }

  /**
   * The bytes of the file whose chunk list hashes to `chunkListHash`, as a stream. The first chunk is in
   * hand before this returns, so a file no node can serve is an error the caller can answer
   * with, not a body cut short; a later chunk that no holder delivers ends the stream with an
   * error (the client sees fewer bytes than the length announced).
   */
  async open(chunkListHash: string): Promise<Readable> {
    const list = await getChunkList(this.ctx.fs.redis, this.ctx.fs.ks, chunkListHash);
    if (!list) throw new Error(`the file's chunk list ${chunkListHash} is not in the namespace: it was garbage-collected after this version was replaced`);
    const chunks = decodeChunkList(list);
    await this.ensureIdentity();
    const fetching: Promise<Buffer>[] = [];
    let next = 0;
    const fill = () => {
      while (next < chunks.length && fetching.length < CHUNKS_AHEAD) {
        const p = this.source.fetch(chunks[next++], chunkListHash);
        // Handled where it is awaited; until then not an unhandled rejection.
        p.catch(() => undefined);
        fetching.push(p);
      }
    };
    fill();
    const first = fetching.length ? await fetching[0] : undefined;
    async function* rest(): AsyncGenerator<Buffer> {
      if (first) {
        fetching.shift();
        fill();
        yield first;
      }
      while (fetching.length) {
        const data = await fetching.shift()!;
        fill();
        yield data;
      }
    }
    return Readable.from(rest(), { objectMode: false });
  }
}
