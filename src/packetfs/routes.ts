import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ChunkStore } from './store.js';
import { ChunkNotFoundError, CorruptChunkError, HASH_RE } from './errors.js';

export interface ChunkRoutesOptions {
  store: ChunkStore;
  /** Bearer token peers must present (the cluster's agent token). */
  token: string;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Parse a single `bytes=` range against a chunk of `size` bytes: [start, end] inclusive, 'bad'
 * when it cannot be satisfied (416), or 'whole' for a Range this server does not do (another
 * unit, several ranges), which RFC 9110 lets it answer with the whole chunk.
 */
export function parseRange(header: string, size: number): [number, number] | 'bad' | 'whole' {
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
 */
export const chunkRoutes: FastifyPluginAsync<ChunkRoutesOptions> = async (app, opts) => {
  if (!opts.token) throw new Error('chunkRoutes: a token is required');
  const want = digest(opts.token);

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
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

  app.head<{ Params: { hash: string } }>('/v1/chunks/:hash', async (req, reply) => {
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

  app.get<{ Params: { hash: string } }>('/v1/chunks/:hash', { exposeHeadRoute: false }, async (req, reply) => {
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
