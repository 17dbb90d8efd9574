import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { verifyHash, type ChunkStore } from './store.js';
import { ChunkNotFoundError, CorruptChunkError, HASH_RE } from './errors.js';
import { decodeChunkList } from './chunk-list.js';

export interface ChunkRoutesOptions {
  store: ChunkStore;
  /** Bearer token peers must present (the cluster's agent token), on a server without TLS. */
  token: string;
  /**
   * The server is HTTPS and asks for client certificates: a peer is a node of the cluster by its
   * certificate (signed by the cluster CA, for clients), and needs no token.
   */
  byCertificate?: boolean;
  /** Record this node as a holder of the chunk list (addChunkListLocation); every chunk of it is durable here. */
  hold(chunkListHash: string): Promise<void>;
}

/**
 * The largest body a copy request takes: a chunk (the chunker allows up to 64 MiB), or a chunk
 * list (64 MiB of entries of a few dozen bytes lists a file of a terabyte or more).
 */
const COPY_BODY_BYTES = 64 << 20;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Parse a single `bytes=` range against a chunk of `size` bytes: [start, end] inclusive, 'bad'
 * when it cannot be satisfied (416), or 'whole' for a Range this server does not do (another
 * unit, several ranges), which RFC 9110 lets it answer with the whole chunk.
 */
function parseRange(header: string, size: number): [number, number] | 'bad' | 'whole' {
  const h = header.trim();
  if (!h.startsWith('bytes=') || h.includes(',')) return 'whole';
  const m = /^bytes=(\d*)-(\d*)$/.exec(h);
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'bad';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return 'bad';
  return [start, end];
}

/**
 * The chunk server: GET and HEAD /v1/chunks/:hash, for peers' fetchers.
 *
 * A GET reads the whole chunk (at most the chunker's 1 MiB maximum) and checks its hash
 * before the first byte goes out, rather than piping the file: a corrupt chunk must never
 * be served, and a mismatch found at the end of a pipe could only cut the response short.
 * The chunk is then quarantined by the store and the peer gets a 404 and asks another
 * holder. Range requests get 206 with the verified slice.
 *
 * Copies (push.ts): PUT /v1/chunks/:hash stores a chunk a writer sends, checked against its
 * name, durably in the own area. POST /v1/holds/:chunkListHash with the encoded chunk
 * list (checked against its hash) answers which chunks this node lacks, or, when it lacks none,
 * records the node as a holder of the chunk list and answers held.
 */
export const chunkRoutes: FastifyPluginAsync<ChunkRoutesOptions> = async (app, opts) => {
  if (!opts.token) throw new Error('chunkRoutes: a token is required');
  const want = digest(opts.token);

  // With certificates, the server's own hook checks each route's caller (config.nodeCertificate);
  // a control plane's certificate reads chunks (a download from the dashboard), no more.
  const config = opts.byCertificate ? { nodeCertificate: true as const } : {};
  const reads = opts.byCertificate ? { ...config, controlPlaneReads: true as const } : {};
  if (!opts.byCertificate) app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const h = req.headers.authorization ?? '';
    const got = h.startsWith('Bearer ') ? digest(h.slice(7)) : undefined;
    if (!got || !timingSafeEqual(got, want)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a valid bearer token is required' });
    }
  });

  const checkHash = (hash: string, reply: FastifyReply): boolean => {
    if (HASH_RE.test(hash)) return true;
    void reply.code(400).send({ error: `chunk hash "${hash.slice(0, 80)}" must be 64 lowercase hex digits` });
    return false;
  };

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: COPY_BODY_BYTES }, (_req, body, done) => done(null, body));

  app.put<{ Params: { hash: string }; Body: Buffer }>('/v1/chunks/:hash', { config, bodyLimit: COPY_BODY_BYTES }, async (req, reply) => {
    const { hash } = req.params;
    if (!checkHash(hash, reply)) return reply;
    if (!Buffer.isBuffer(req.body)) return reply.code(415).send({ error: 'a chunk is sent as application/octet-stream' });
    const actual = await verifyHash(req.body);
    if (actual !== hash) return reply.code(400).send({ error: `the ${req.body.length} bytes sent hash to ${actual}, not ${hash}` });
    // The directory entry is made durable by the hold that names the chunk (syncDirs), for all
    // of a file's chunks at once: one journal commit rather than one per chunk.
    const wrote = await opts.store.put(hash, req.body, { area: 'own', verified: true, syncDirLater: true });
    return reply.code(wrote ? 201 : 200).send({ stored: hash });
  });

  app.post<{ Params: { chunkListHash: string }; Body: Buffer }>('/v1/holds/:chunkListHash', { config, bodyLimit: COPY_BODY_BYTES }, async (req, reply) => {
    const { chunkListHash } = req.params;
    if (!checkHash(chunkListHash, reply)) return reply;
    if (!Buffer.isBuffer(req.body)) return reply.code(415).send({ error: 'a chunk list is sent as application/octet-stream' });
    if (createHash('sha256').update(req.body).digest('hex') !== chunkListHash) return reply.code(400).send({ error: `the chunk list sent does not hash to ${chunkListHash}` });
    const missing: string[] = [];
    const hashes = new Set(decodeChunkList(req.body).map((c) => c.hash));
    for (const hash of hashes) {
      const where = await opts.store.where(hash);
      if (where === 'own') continue;
      if (where === 'cache' && (await opts.store.promote(hash))) continue;
      missing.push(hash);
    }
    if (missing.length) return { held: false, missing };
    await opts.store.syncDirs(hashes);
    await opts.hold(chunkListHash);
    return { held: true, missing };
  });

  app.head<{ Params: { hash: string } }>('/v1/chunks/:hash', { config: reads }, async (req, reply) => {
    if (!checkHash(req.params.hash, reply)) return reply;
    const size = await opts.store.size(req.params.hash);
    if (size === undefined) return reply.code(404).send();
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', size)
      .header('accept-ranges', 'bytes')
      .header('etag', `"${req.params.hash}"`)
      .send();
  });

  app.get<{ Params: { hash: string } }>('/v1/chunks/:hash', { config: reads, exposeHeadRoute: false }, async (req, reply) => {
    const { hash } = req.params;
    if (!checkHash(hash, reply)) return reply;
    let data: Buffer;
    try {
      data = await opts.store.get(hash);
    } catch (err) {
      if (err instanceof ChunkNotFoundError || err instanceof CorruptChunkError) {
        return reply.code(404).send({ error: `chunk ${hash} is not held here` });
      }
      throw err;
    }
    reply
      .header('content-type', 'application/octet-stream')
      .header('accept-ranges', 'bytes')
      .header('etag', `"${hash}"`)
      .header('cache-control', 'public, max-age=31536000, immutable');
    const range = req.headers.range;
    if (range === undefined) return reply.send(data);
    const r = parseRange(range, data.length);
    if (r === 'whole') return reply.send(data);
    if (r === 'bad') return reply.code(416).header('content-range', `bytes */${data.length}`).send();
    return reply
      .code(206)
      .header('content-range', `bytes ${r[0]}-${r[1]}/${data.length}`)
      .send(data.subarray(r[0], r[1] + 1));
  });
};
