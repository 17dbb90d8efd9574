import { Type } from 'typebox';
import type { HttpServer } from '../../util/http.js';
import { HttpError } from '../../util/http.js';
import { manifestDiff } from '../../manifest/diff.js';
import { KINDS, ManifestError, checkFilesTogether, parseManifests, validateManifestList, type Kind, type Manifest } from '../../manifest/index.js';
import { ApplyConflictError, applyObjects, deleteObject, getObject, listObjects } from '../../state/objects.js';
import { ApplyAnswerSchema, ApplyInvalidSchema, ApplyRequestSchema, DeleteAnswerSchema, ObjectListSchema, ObjectViewSchema, type ApplyInvalid, type ApplyResult } from '../../api/objects.js';
import { LIMITS } from '../../util/limits.js';
import type { ControlPlaneContext } from '../context.js';

/** What else must happen when manifests of these kinds were applied or deleted (nodes' labels, Jobs' and Services' records). */
export type OnChanged = (ctx: ControlPlaneContext, kinds: ReadonlySet<Kind>) => Promise<void>;

const KindParam = Type.Union(KINDS.map((k) => Type.Literal(k)));

/**
 * kubectl-style apply: a whole file of manifests, as YAML text (so errors name the line) or
 * as JSON objects, or several files' texts at once (`oswalk apply -f a -f b`). Everything is
 * validated before anything is stored, and the store is one atomic step: a bad manifest
 * changes nothing. `dryRun` answers what would happen and stores nothing.
 */
export async function objectRoutes(app: HttpServer, { ctx, onChanged }: { ctx: ControlPlaneContext; onChanged: OnChanged }): Promise<void> {
  app.post('/v1/apply', {
    schema: {
      body: ApplyRequestSchema,
      response: {
        200: ApplyAnswerSchema,
        422: ApplyInvalidSchema,
      },
    },
  }, async (req, reply) => {
    const { source, yaml, manifests, files, dryRun } = req.body;
    if ([yaml, manifests, files].filter((x) => x !== undefined).length !== 1) {
      throw new HttpError(400, 'send one of "yaml" (the text of a manifest file), "manifests" (a list of objects) or "files" (several files\' texts)', 'Bad Request');
    }
    let parsed: Manifest[];
    try {
      if (files) {
        const each = files.map((f) => ({ source: f.source, manifests: parseManifests(f.yaml, f.source) }));
        checkFilesTogether(each);
        parsed = each.flatMap((f) => f.manifests);
      } else {
        parsed = yaml !== undefined ? parseManifests(yaml, source) : validateManifestList(manifests!, source);
      }
    } catch (err) {
      if (err instanceof ManifestError) return reply.code(422).send({ error: 'Invalid', code: 'Invalid', ...err.toJSON() } satisfies ApplyInvalid);
      throw err;
    }
    let results: ApplyResult[];
    try {
      results = await applyObjects(ctx.redis, ctx.ks, parsed, { dryRun });
    } catch (err) {
      if (err instanceof ApplyConflictError) throw new HttpError(409, err.message, 'Conflict', { kind: err.kind, name: err.objectName });
      throw err;
    }
    const items = parsed.map((m, i) => ({ kind: m.kind, name: m.metadata.name, result: results[i] }));
    if (dryRun) {
      // What would change, shown before anything is applied (the dashboard's dry run).
      return {
        items: await Promise.all(items.map(async (it, i) => (it.result === 'configured'
          ? { ...it, diff: manifestDiff(await getObject(ctx.redis, ctx.ks, it.kind as Kind, it.name), parsed[i]) }
          : it))),
      };
    }
    await onChanged(ctx, new Set(parsed.map((m) => m.kind)));
    req.log.info({ source, objects: items.map((a) => `${a.kind}/${a.name} ${a.result}`) }, 'applied');
    return { items };
  });

  app.get('/v1/objects/:kind', {
    schema: { params: Type.Object({ kind: KindParam }), response: { 200: ObjectListSchema } },
  }, async (req) => ({ items: await listObjects(ctx.redis, ctx.ks, req.params.kind) }));

  app.get('/v1/objects/:kind/:name', {
    schema: { params: Type.Object({ kind: KindParam, name: Type.String({ maxLength: LIMITS.nameLength }) }), response: { 200: ObjectViewSchema } },
  }, async (req) => {
    const obj = await getObject(ctx.redis, ctx.ks, req.params.kind, req.params.name);
    if (!obj) throw new HttpError(404, `${req.params.kind} "${req.params.name}" has not been applied`, 'NotFound');
    return obj;
  });

  /**
   * kubectl delete: the manifest goes in one step; what it made follows at once (a Job's or
   * Service's records are cancelled, a Node's labels and capacity fall back to its agent's),
   * and again at the leader's next reconcile pass should this control plane stop in between.
   */
  app.delete('/v1/objects/:kind/:name', {
    schema: {
      params: Type.Object({ kind: KindParam, name: Type.String({ maxLength: LIMITS.nameLength }) }),
      response: { 200: DeleteAnswerSchema },
    },
  }, async (req) => {
    const { kind, name } = req.params;
    if (!(await deleteObject(ctx.redis, ctx.ks, kind, name))) throw new HttpError(404, `${kind} "${name}" has not been applied`, 'NotFound');
    await onChanged(ctx, new Set([kind]));
    req.log.info({ object: `${kind}/${name}` }, 'deleted');
    return { kind, name, result: 'deleted' as const };
  });
}
