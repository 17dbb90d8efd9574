import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { HttpError } from '../../util/http.js';
import { FsError, FS_LIMITS, listVersions, normalizePath, restoreVersion } from '../../state/fs.js';
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

/** The unified filesystem's versions, for `oswalk versions` and `oswalk restore`. */
export async function fsRoutes(app: HttpServer, { ctx }: { ctx: ControlPlaneContext }): Promise<void> {
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
