/** The answers about applied manifests (POST /v1/apply, DELETE /v1/objects/:kind/:name). */
import { Type, type Static } from 'typebox';

/** What an apply did, or would do in a dry run, to one object: kubectl's words. */
const ApplyResultSchema = Type.Union([Type.Literal('created'), Type.Literal('configured'), Type.Literal('unchanged')]);
export type ApplyResult = Static<typeof ApplyResultSchema>;

/** POST /v1/apply: each object of the files, in their order, with what became of it. */
export const ApplyAnswerSchema = Type.Object({
  items: Type.Array(Type.Object({ kind: Type.String(), name: Type.String(), result: ApplyResultSchema })),
});
export type ApplyAnswer = Static<typeof ApplyAnswerSchema>;
