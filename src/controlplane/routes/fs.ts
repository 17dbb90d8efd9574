import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { HttpError } from '../../util/http.js';
import { FsError, FS_LIMITS, GET_MANY_MAX, getCurrentMany, listDirPage, listVersions, normalizePath, restoreVersion } from '../../state/fs.js';
import { countManifestLocations } from '../../packetfs/locations.js';
import { NodeName } from '../../api/nodes.js';
import type { ControlPlaneContext } from '../context.js';

const Path = Type.String({ minLength: 1, maxLength: FS_LIMITS.treePathBytes });

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
      response: {
        200: Type.Object({
          path: Type.String(),
          items: Type.Array(Type.Object({
            name: Type.String(), type: Type.String(), size: Type.Number(), mtime: Type.Number(), node: Type.String(), copies: Type.Optional(Type.Number()),
          })),
          // '0' when this was the last page.
          cursor: Type.String(),
        }),
      },
    },
  }, async (req) => {
    try {
      const path = normalizePath(req.query.path);
      const page = await listDirPage(ctx.redis, ctx.ks, path, req.query.cursor ?? '0');
      const paths = page.entries.map((e) => (path === '/' ? `/${e.name}` : `${path}/${e.name}`));
      const current: Awaited<ReturnType<typeof getCurrentMany>> = [];
      for (let i = 0; i < paths.length; i += GET_MANY_MAX) current.push(...await getCurrentMany(ctx.redis, ctx.ks, paths.slice(i, i + GET_MANY_MAX)));
      const manifests = [...new Set(current.flatMap((v) => (v?.manifest ? [v.manifest] : [])))];
      const counts = await countManifestLocations(ctx.redis, ctx.ks, manifests);
      const holders = new Map(manifests.map((m, i) => [m, counts[i]]));
      const items = page.entries.flatMap((e, i) => {
        const v = current[i];
        // Gone between the listing and the read: left out, as readdir would.
        if (!v) return [];
        return [{
          name: e.name, type: e.type, size: v.size, mtime: Math.floor(Number(BigInt(v.mtimeNs) / 1_000_000n)), node: v.node,
          ...(v.manifest ? { copies: holders.get(v.manifest)! } : {}),
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
      response: { 200: Type.Object({ path: Type.String(), items: Type.Array(Type.Object({}, { additionalProperties: true })) }) },
    },
  }, async (req) => {
    try {
      const path = normalizePath(req.query.path);
      return { path, items: await listVersions(ctx.redis, ctx.ks, path) };
    } catch (err) {
      return asHttp(err);
    }
  });

  app.post('/v1/fs/restore', {
    schema: {
      body: Type.Object({ path: Path, version: Type.String({ pattern: '^[1-9][0-9]{0,18}$' }), node: NodeName }, { additionalProperties: false }),
      response: { 200: Type.Object({}, { additionalProperties: true }) },
    },
  }, async (req) => {
    try {
      const v = await restoreVersion(ctx.redis, ctx.ks, req.body.path, req.body.version, req.body.node);
      req.log.info({ path: v.path, from: req.body.version, id: v.id, node: req.body.node }, 'version restored');
      return v;
    } catch (err) {
      return asHttp(err);
    }
  });
}
