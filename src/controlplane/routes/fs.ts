import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { HttpError } from '../../util/http.js';
import { FsError, FS_LIMITS, GET_MANY_MAX, getCurrentMany, listDirPage, listVersions, normalizePath, restoreVersion } from '../../state/fs.js';
import { countChunkListLocations } from '../../packetfs/locations.js';
import { DirPageSchema, VersionListSchema, VersionRecordSchema } from '../../api/fs.js';
import { NodeName } from '../../api/nodes.js';
import type { ControlPlaneContext } from '../context.js';
import { FileDownloads } from '../downloads.js';

const Path = Type.String({ minLength: 1, maxLength: FS_LIMITS.treePathBytes });
const VersionId = Type.String({ pattern: '^[1-9][0-9]{0,18}$' });

/**
 * A Content-Disposition for a download named `name` (RFC 6266): the name as typed in filename*
 * (UTF-8, percent-encoded), and a plain-ASCII stand-in for old clients, without the quotes,
 * backslashes and control characters that would end or bend the header.
 */
function attachment(name: string): string {
  const plain = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${plain}"; filename*=UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

/** Namespace errors as HTTP: a missing path or version is a 404, a bad one a 400. */
function asHttp(err: unknown): never {
  if (err instanceof FsError) {
    throw new HttpError(err.code === 'ENOENT' ? 404 : 400, err.message, err.code === 'ENOENT' ? 'NotFound' : 'Bad Request');
  }
  throw err;
}

/** The unified filesystem's directories (the dashboard's Files page) and versions (`oswalk versions`, `oswalk restore`). */
export async function fsRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
  // A page of a directory's names (about a thousand, in no order across pages: a directory of
  // any size is read a page at a time), each with what its winning version says and, for a
  // file, how many nodes hold its data.
  app.get('/v1/fs/list', {
    schema: {
      querystring: Type.Object({ path: Path, cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$' })) }),
      response: { 200: DirPageSchema },
    },
  }, async (req) => {
    try {
      const path = normalizePath(req.query.path);
      const page = await listDirPage(ctx.fs.redis, ctx.fs.ks, path, req.query.cursor ?? '0');
      const paths = page.entries.map((e) => (path === '/' ? `/${e.name}` : `${path}/${e.name}`));
      const current: Awaited<ReturnType<typeof getCurrentMany>> = [];
      for (let i = 0; i < paths.length; i += GET_MANY_MAX) current.push(...await getCurrentMany(ctx.fs.redis, ctx.fs.ks, paths.slice(i, i + GET_MANY_MAX)));
      const chunkListHashes = [...new Set(current.flatMap((v) => (v?.chunkListHash ? [v.chunkListHash] : [])))];
      const counts = await countChunkListLocations(ctx.fs.redis, ctx.fs.ks, chunkListHashes);
      const holders = new Map(chunkListHashes.map((m, i) => [m, counts[i]]));
      const items = page.entries.flatMap((e, i) => {
        const v = current[i];
        // Gone between the listing and the read: left out, as readdir would.
        if (!v) return [];
        return [{
          name: e.name, type: e.type, size: v.size, mtime: Math.floor(Number(BigInt(v.mtimeNs) / 1_000_000n)), node: v.node,
          ...(v.chunkListHash ? { copies: holders.get(v.chunkListHash)! } : {}),
        }];
      }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return { path, items, cursor: page.next };
    } catch (err) {
      return asHttp(err);
    }
  });

  app.get('/v1/fs/versions', {
    schema: {
      querystring: Type.Object({ path: Path }),
      response: { 200: VersionListSchema },
    },
  }, async (req) => {
    try {
      const path = normalizePath(req.query.path);
      return { path, items: await listVersions(ctx.fs.redis, ctx.fs.ks, path) };
    } catch (err) {
      return asHttp(err);
    }
  });

  // A file's bytes (the dashboard's Download): the current version, or `version`; its chunks come
  // from the nodes that hold them (downloads.ts).
  const downloads = new FileDownloads(ctx);
  app.addHook('onClose', async () => downloads.close());
  app.get('/v1/fs/download', {
    schema: { querystring: Type.Object({ path: Path, version: Type.Optional(VersionId) }) },
  }, async (req, reply) => {
    let v;
    let path;
    try {
      path = normalizePath(req.query.path);
      v = req.query.version ? (await listVersions(ctx.fs.redis, ctx.fs.ks, path)).find((x) => x.id === req.query.version) : (await getCurrentMany(ctx.fs.redis, ctx.fs.ks, [path]))[0];
    } catch (err) {
      return asHttp(err);
    }
    if (!v || (v.type === 'tombstone' && !req.query.version)) throw new HttpError(404, req.query.version ? `${path} has no version ${req.query.version} (oswalk versions ${path} lists them)` : `${path} is not in the unified filesystem`, 'NotFound');
    if (v.type !== 'file' || !v.chunkListHash) {
      const what = v.type === 'tombstone' ? 'its deletion' : v.type === 'dir' ? 'a directory' : v.type === 'hardlink' ? 'a hard link to a file whose versions are its inode\'s: download the current version' : v.type === 'symlink' ? `a symbolic link to ${v.target}` : 'a special file';
      throw new HttpError(400, `${path}${req.query.version ? ` version ${req.query.version}` : ''} is ${what}: only a file's contents can be downloaded`, 'Bad Request');
    }
    let body;
    try {
      body = await downloads.open(v.chunkListHash);
    } catch (err) {
      req.log.warn({ path, version: v.id, err: (err as Error).message }, 'download failed');
      throw new HttpError(503, `cannot read ${path} from the nodes that hold it: ${(err as Error).message}`, 'Service Unavailable');
    }
    req.log.info({ path, version: v.id, bytes: v.size }, 'file downloaded');
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', v.size)
      .header('content-disposition', attachment(path.slice(path.lastIndexOf('/') + 1)))
      .header('cache-control', 'no-store')
      .send(body);
  });

  app.post('/v1/fs/restore', {
    schema: {
      body: Type.Object({ path: Path, version: VersionId, node: NodeName }, { additionalProperties: false }),
      response: { 200: VersionRecordSchema },
    },
  }, async (req) => {
    try {
      const v = await restoreVersion(ctx.fs.redis, ctx.fs.ks, req.body.path, req.body.version, req.body.node);
      req.log.info({ path: v.path, from: req.body.version, id: v.id, node: req.body.node }, 'version restored');
      return v;
    } catch (err) {
      return asHttp(err);
    }
  });
}
