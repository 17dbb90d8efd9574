/**
 * Names of objects, applied manifests as GET /v1/objects answers with them, and the answers about
 * applying and deleting them (POST /v1/apply, DELETE /v1/objects/:kind/:name).
 */
import { Type, type Static } from 'typebox';
import { LIMITS } from '../util/limits.js';
import { ListOf } from './lists.js';

export const NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** metadata.name of every kind, and a job's name in the API: one rule. */
export const NameSchema = Type.String({
  pattern: NAME_PATTERN,
  maxLength: LIMITS.nameLength,
  description: `a DNS label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most ${LIMITS.nameLength} characters)`,
});

/**
 * POST /v1/apply: one of a manifest file's text (`yaml`, errors name its lines), its objects
 * (`manifests`, as JSON), or several files' texts (`files`, `oswalk apply -f a -f b`).
 */
export const ApplyRequestSchema = Type.Object({
  source: Type.String({ maxLength: 4096, default: 'request' }),
  yaml: Type.Optional(Type.String({ maxLength: LIMITS.manifestBytes })),
  manifests: Type.Optional(Type.Array(Type.Unknown(), { maxItems: LIMITS.manifestDocuments })),
  files: Type.Optional(Type.Array(Type.Object({
    source: Type.String({ maxLength: 4096 }), yaml: Type.String({ maxLength: LIMITS.manifestBytes }),
  }, { additionalProperties: false }), { maxItems: LIMITS.manifestDocuments })),
  dryRun: Type.Boolean({ default: false }),
}, { additionalProperties: false });
/** As a client sends it: `source` and `dryRun` have defaults. */
export type ApplyRequest = Omit<Static<typeof ApplyRequestSchema>, 'source' | 'dryRun'> & { source?: string; dryRun?: boolean };

/** What an apply did, or would do in a dry run, to one object: kubectl's words. */
const ApplyResultSchema = Type.Union([Type.Literal('created'), Type.Literal('configured'), Type.Literal('unchanged')]);
export type ApplyResult = Static<typeof ApplyResultSchema>;

/** POST /v1/apply: each object of the files, in their order, with what became of it. */
export const ApplyAnswerSchema = ListOf(Type.Object({
  kind: Type.String(), name: Type.String(), result: ApplyResultSchema,
  // A dry run's answer for an object it would change: the unified diff `oswalk diff` prints.
  diff: Type.Optional(Type.String()),
}));
export type ApplyAnswer = Static<typeof ApplyAnswerSchema>;

/**
 * POST /v1/apply's answer (422) when a manifest is not valid: an error body (errors.ts) that
 * also says where, in the file as its sender named it (`source`), and why.
 */
export const ApplyInvalidSchema = Type.Object({
  error: Type.String(), code: Type.Literal('Invalid'), message: Type.String(), file: Type.String(), field: Type.Optional(Type.String()), reason: Type.String(),
  line: Type.Optional(Type.Number()), column: Type.Optional(Type.Number()), document: Type.Optional(Type.Number()),
});
export type ApplyInvalid = Static<typeof ApplyInvalidSchema>;

/** DELETE /v1/objects/:kind/:name: the manifest that went. */
export const DeleteAnswerSchema = Type.Object({ kind: Type.String(), name: Type.String(), result: Type.Literal('deleted') });
export type DeleteAnswer = Static<typeof DeleteAnswerSchema>;

/**
 * GET /v1/objects/:kind/:name: an applied manifest as stored, normalized (src/manifest/normalize.ts,
 * whose Manifest types say each kind's spec): checked on its way in, so its spec passes through as
 * it is.
 */
export const ObjectViewSchema = Type.Object({
  apiVersion: Type.String(),
  kind: Type.String(),
  metadata: Type.Object({ name: Type.String(), labels: Type.Record(Type.String(), Type.String()) }),
  spec: Type.Unknown(),
});
export type ObjectView = Static<typeof ObjectViewSchema>;

/** GET /v1/objects/:kind: every applied manifest of the kind (they are few: no paging). */
export const ObjectListSchema = ListOf(ObjectViewSchema);
