/**
 * One manifest document (a plain value) to a normalized Manifest, or the problems with it.
 * Schema errors come from TypeBox and are reworded here into "must be X (got Y)",
 * "unknown field", "missing required field", each with the path of the field at fault.
 */
import { Value } from 'typebox/value';
import { FieldProblem, formatPath, type FieldPath } from './errors.js';
import { normalize, type Manifest } from './normalize.js';
import { show } from './quantity.js';
import { API_VERSION, KINDS, MANIFEST_SCHEMAS, type Kind, type ManifestInput } from './schema.js';

/** A Manifest, or every problem found (schema problems first; a rule problem only once the schema passes). */
export function checkDocument(value: unknown): { manifest: Manifest; problems?: undefined } | { problems: FieldProblem[] } {
  if (!isMapping(value)) {
    return { problems: [new FieldProblem([], `a manifest must be a mapping with apiVersion, kind, metadata and spec (got ${show(value)})`)] };
  }
  if (value.apiVersion !== API_VERSION) {
    const reason = value.apiVersion === undefined
      ? `required field is missing; add apiVersion: ${API_VERSION}`
      : `must be ${JSON.stringify(API_VERSION)} (got ${show(value.apiVersion)})`;
    return { problems: [new FieldProblem(['apiVersion'], reason, value.apiVersion === undefined ? [] : ['apiVersion'])] };
  }
  const kind = value.kind;
  if (!KINDS.includes(kind as Kind)) {
    const guess = typeof kind === 'string' ? KINDS.find((k) => k.toLowerCase() === kind.toLowerCase()) : undefined;
    const reason = kind === undefined
      ? `required field is missing; add kind: with one of ${KINDS.join(', ')}`
      : `unknown kind ${show(kind)}; ${guess ? `did you mean "${guess}"? ` : ''}use one of ${KINDS.join(', ')}`;
    return { problems: [new FieldProblem(['kind'], reason, kind === undefined ? [] : ['kind'])] };
  }
  const schema = MANIFEST_SCHEMAS[kind as Kind];
  if (!Value.Check(schema, value)) return { problems: schemaProblems(schema, value) };
  try {
    return { manifest: normalize(value as ManifestInput) };
  } catch (e) {
    if (e instanceof FieldProblem) return { problems: [e] };
    throw e;
  }
}

type Json = Record<string, any>;

function schemaProblems(schema: Json, value: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  const add = (p: FieldProblem) => {
    const key = formatPath(p.path);
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(p);
    }
  };
  for (const err of Value.Errors(schema, value)) {
    const path = pointerToPath(err.instancePath, value);
    const here = schemaAt(schema, path);
    if (err.keyword === 'additionalProperties') {
      const allowed = Object.keys(here?.properties ?? {});
      for (const name of (err.params as { additionalProperties: string[] }).additionalProperties) {
        add(new FieldProblem([...path, name], unknownField(name, allowed)));
      }
    } else if (err.keyword === 'required') {
      for (const name of (err.params as { requiredProperties: string[] }).requiredProperties) {
        const under = path.length ? `under ${formatPath(path)}` : 'at the top of the document';
        add(new FieldProblem([...path, name], `required field is missing; add ${name}: ${under}`, path));
      }
    } else if (err.keyword === 'boolean') {
      // The per-property twin of an additionalProperties error, already reported above.
    } else if (err.keyword in TOO_BIG && here) {
      add(new FieldProblem(path, TOO_BIG[err.keyword]!(here, valueAt(value, path))));
    } else {
      const got = valueAt(value, path);
      add(new FieldProblem(path, here ? mustBe(here, got) : `${err.message} (got ${show(got)})`));
    }
  }
  return problems;
}

/** Limits (src/util/limits.ts) passed: say the limit, not the type. */
const TOO_BIG: Record<string, (s: Json, got: unknown) => string> = {
  maximum: (s, got) => `must be at most ${s.maximum} (got ${show(got)})`,
  maxItems: (s, got) => `must have at most ${s.maxItems} items (got ${(got as unknown[]).length})`,
  maxLength: (s, got) => `must be at most ${s.maxLength} characters long (got ${(got as string).length})`,
};

function unknownField(name: string, allowed: string[]): string {
  const guess = allowed.find((a) => a.toLowerCase() === name.toLowerCase()) ?? allowed.find((a) => editDistance(a, name) <= 2);
  return `unknown field ${JSON.stringify(name)}; ${guess ? `did you mean "${guess}"? ` : 'remove it or fix its spelling. '}Fields allowed here: ${allowed.join(', ')}`;
}

function mustBe(schema: Json, got: unknown): string {
  const expected = describe(schema, got);
  let hint = '';
  if ((typeof got === 'number' || typeof got === 'boolean') && onlyStrings(schema)) hint = `; quote it: "${String(got)}"`;
  else if (typeof got === 'string' && schema.type === 'array') hint = `; write a list, such as ["sh", "-c", ${JSON.stringify(got)}]`;
  else if (Array.isArray(got) && schema.patternProperties) hint = '; write one "name: value" line per entry';
  return `must be ${expected} (got ${show(got)})${hint}`;
}

/** A noun phrase for what `schema` accepts; of a union, the branches of the same JSON type as `got` when there are any. */
function describe(schema: Json, got?: unknown): string {
  if (Array.isArray(schema.anyOf)) {
    const branches = schema.anyOf as Json[];
    if (branches.every((b) => 'const' in b)) return `one of ${branches.map((b) => JSON.stringify(b.const)).join(', ')}`;
    const sameType = branches.filter((b) => !('const' in b) && typeMatches(b, got));
    return (sameType.length ? sameType : branches).map((b) => describe(b)).join(' or ');
  }
  if (typeof schema.description === 'string') return schema.description;
  if ('const' in schema) return JSON.stringify(schema.const);
  switch (schema.type) {
    case 'string': return schema.minLength ? 'a non-empty string' : 'a string';
    case 'integer': return `an integer${bounds(schema)}`;
    case 'number': return `a number${bounds(schema)}`;
    case 'boolean': return 'true or false';
    case 'array': return `a list of ${plural(schema.items)}`;
    case 'object':
      return schema.patternProperties ? `a mapping of names to ${plural(Object.values(schema.patternProperties)[0] as Json)}` : 'a mapping';
    default: return 'a valid value';
  }
}

function plural(items: Json | undefined): string {
  if (items?.type === 'string') return 'strings';
  if (items?.type === 'object') return 'mappings';
  return `items that are each ${items ? describe(items) : 'anything'}`;
}

function bounds(s: Json): string {
  if (typeof s.exclusiveMinimum === 'number') return ` > ${s.exclusiveMinimum}`;
  if (typeof s.minimum === 'number') return ` >= ${s.minimum}`;
  return '';
}

function typeMatches(s: Json, v: unknown): boolean {
  switch (s.type) {
    case 'string': return typeof v === 'string';
    case 'number': case 'integer': return typeof v === 'number';
    case 'boolean': return typeof v === 'boolean';
    case 'array': return Array.isArray(v);
    case 'object': return isMapping(v);
    default: return false;
  }
}

function onlyStrings(s: Json): boolean {
  if (Array.isArray(s.anyOf)) return (s.anyOf as Json[]).every(onlyStrings);
  return s.type === 'string' || typeof s.const === 'string';
}

/** The sub-schema that applies at `path` (following properties, records and lists). */
function schemaAt(schema: Json, path: FieldPath): Json | undefined {
  let s: Json | undefined = schema;
  for (const seg of path) {
    if (!s) return undefined;
    if (typeof seg === 'string' && s.properties && Object.hasOwn(s.properties, seg)) s = s.properties[seg];
    else if (s.patternProperties) s = Object.values(s.patternProperties)[0] as Json;
    else if (typeof seg === 'number' && s.items) s = s.items;
    else return undefined;
  }
  return s;
}

function pointerToPath(pointer: string, root: unknown): FieldPath {
  if (!pointer) return [];
  const path: Array<string | number> = [];
  let v: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const step = Array.isArray(v) ? Number(seg) : seg;
    path.push(step);
    v = isMapping(v) || Array.isArray(v) ? (v as Json)[step] : undefined;
  }
  return path;
}

function valueAt(root: unknown, path: FieldPath): unknown {
  let v: unknown = root;
  for (const seg of path) v = isMapping(v) || Array.isArray(v) ? (v as Json)[seg] : undefined;
  return v;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
