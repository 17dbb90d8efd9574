/** Names of objects, and the answers about applied manifests (POST /v1/apply). */
import { Type, type Static } from 'typebox';
import { LIMITS } from '../util/limits.js';

export const NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** metadata.name of every kind, and a job's name in the API: one rule. */
export const NameSchema = Type.String({
  pattern: NAME_PATTERN,
  maxLength: LIMITS.nameLength,
  description: `a DNS label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most ${LIMITS.nameLength} characters)`,
});

/** What an apply did, or would do in a dry run, to one object: kubectl's words. */
const ApplyResultSchema = Type.Union([Type.Literal('created'), Type.Literal('configured'), Type.Literal('unchanged')]);
export type ApplyResult = Static<typeof ApplyResultSchema>;

/** POST /v1/apply: each object of the files, in their order, with what became of it. */
export const ApplyAnswerSchema = Type.Object({
  items: Type.Array(Type.Object({ kind: Type.String(), name: Type.String(), result: ApplyResultSchema })),
});
export type ApplyAnswer = Static<typeof ApplyAnswerSchema>;
