/**
 * Manifest files and API bodies to normalized manifests. A whole file (or list) is
 * checked before anything is returned, so callers apply all of it or none of it; the
 * first problem in document order is thrown as a ManifestError.
 */
import { open } from 'node:fs/promises';
import { LIMITS } from '../util/limits.js';
import { FieldProblem, ManifestError, formatPath, type FieldPath } from './errors.js';
import type { Manifest } from './normalize.js';
import { checkDocument } from './validate.js';
import { SourceText, loadYamlDocuments, type YamlDocument } from './yaml.js';

/** Every manifest in `text` (YAML, several documents allowed); `source` names it in errors. */
export function parseManifests(text: string, source: string): Manifest[] {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > LIMITS.manifestBytes) throw tooBig(source, bytes);
  const src = new SourceText(source, text);
  const docs = loadYamlDocuments(src).filter((d) => !d.empty);
  if (docs.length === 0) {
    throw new ManifestError({
      file: source,
      reason: 'no manifests in the file (it is empty or has only comments); add a document with apiVersion, kind, metadata and spec',
    });
  }
  const numbered = docs.length > 1;
  const placed = (d: YamlDocument, p: FieldProblem) => {
    const at = d.offsetOf(p.locate);
    return src.error(at, p.reason, { field: fieldName(p.path, numbered ? d.index : undefined), document: d.index });
  };
  const names = new Names();
  return docs.map((d) => {
    const r = checkDocument(d.value);
    if (r.problems) throw placed(d, earliest(r.problems, d));
    const at = d.offsetOf(['metadata', 'name']);
    const line = at === undefined ? undefined : src.position(at).line;
    const dup = names.add(r.manifest, () => (line === undefined ? `documents[${d.index}]` : `line ${line}`));
    if (dup) throw placed(d, dup);
    namePlaces.set(r.manifest, { line, document: d.index, numbered });
    return r.manifest;
  });
}

/**
 * Where each manifest parsed from YAML has its metadata.name, for errors that involve two files
 * (checkFilesTogether). Kept beside the manifests, not in them: they are stored as they are.
 */
const namePlaces = new WeakMap<Manifest, { line: number | undefined; document: number; numbered: boolean }>();

/** Reads and parses a manifest file, refusing one over LIMITS.manifestBytes before reading it whole. */
export async function parseManifestFile(path: string): Promise<Manifest[]> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new ManifestError({ file: path, reason: 'not a regular file; give the path of a YAML file' });
      if (st.size > LIMITS.manifestBytes) throw tooBig(path, st.size);
      // Read at most one byte past the limit: the file may have grown since stat.
      const buf = Buffer.alloc(LIMITS.manifestBytes + 1);
      let n = 0;
      for (let r; n < buf.length && (r = await fh.read(buf, n, buf.length - n, n)).bytesRead > 0;) n += r.bytesRead;
      if (n > LIMITS.manifestBytes) throw tooBig(path, n);
      text = decodeUtf8(buf.subarray(0, n), path);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (e instanceof ManifestError) throw e;
    throw new ManifestError({ file: path, reason: `cannot read the file: ${e instanceof Error ? e.message : String(e)}` });
  }
  return parseManifests(text, path);
}

/**
 * One manifest that arrived as JSON (e.g. an element of an API request body). Errors name
 * the element as `documents[index]` and the field path; there is no line.
 */
export function validateManifestObject(obj: unknown, source: string, index: number): Manifest {
  const r = checkDocument(obj);
  if (r.problems) throw unplaced(source, index, r.problems[0]!);
  return r.manifest;
}

/** A list of manifests that arrived as JSON, checked as a whole like a file: limits, each element, duplicate names. */
export function validateManifestList(objs: unknown[], source: string): Manifest[] {
  if (objs.length > LIMITS.manifestDocuments) {
    throw new ManifestError({ file: source, reason: `more than ${LIMITS.manifestDocuments} manifests at once; send them in several requests` });
  }
  const names = new Names();
  return objs.map((obj, index) => {
    const m = validateManifestObject(obj, source, index);
    const dup = names.add(m, () => `documents[${index}]`);
    if (dup) throw unplaced(source, index, dup);
    return m;
  });
}

/**
 * Files applied together: one name per kind across all of them, as within one file (which of
 * two would win is anyone's guess), and at most LIMITS.manifestDocuments manifests in all.
 */
export function checkFilesTogether(files: { source: string; manifests: Manifest[] }[]): void {
  const total = files.reduce((n, f) => n + f.manifests.length, 0);
  if (total > LIMITS.manifestDocuments) {
    throw new ManifestError({ file: files.at(-1)?.source ?? 'request', reason: `${total} manifests at once, more than ${LIMITS.manifestDocuments}; apply them in several commands` });
  }
  const seen = new Map<string, { source: string; m: Manifest }>();
  for (const f of files) {
    for (const m of f.manifests) {
      const key = `${m.kind}/${m.metadata.name}`;
      const first = seen.get(key);
      if (first !== undefined && first.source !== f.source) {
        const here = namePlaces.get(m);
        const there = namePlaces.get(first.m);
        const thereAt = there?.line === undefined ? first.source : `${first.source}:${there.line}`;
        throw new ManifestError({
          file: f.source, line: here?.line, document: here?.document,
          field: fieldName(['metadata', 'name'], here?.numbered ? here.document : undefined),
          reason: `a second ${m.kind} named ${JSON.stringify(m.metadata.name)} (the first is at ${thereAt}); names must be unique per kind, so rename one`,
        });
      }
      seen.set(key, { source: f.source, m });
    }
  }
}

/** Names seen so far in one file; a second of the same kind is an error at its metadata.name. */
class Names {
  /** Where each name was first seen, worked out only when it is needed for an error. */
  private seen = new Map<string, () => string>();
  add(m: Manifest, where: () => string): FieldProblem | undefined {
    const key = `${m.kind}/${m.metadata.name}`;
    const first = this.seen.get(key);
    if (first !== undefined) {
      return new FieldProblem(
        ['metadata', 'name'],
        `a second ${m.kind} named ${JSON.stringify(m.metadata.name)} (the first is at ${first()}); names must be unique per kind, so rename one`,
      );
    }
    this.seen.set(key, where);
    return undefined;
  }
}

function earliest(problems: FieldProblem[], d: YamlDocument): FieldProblem {
  let best = problems[0]!;
  let bestAt = d.offsetOf(best.locate) ?? Infinity;
  for (const p of problems) {
    const at = d.offsetOf(p.locate) ?? Infinity;
    if (at < bestAt) [best, bestAt] = [p, at];
  }
  return best;
}

function unplaced(source: string, index: number, p: FieldProblem): ManifestError {
  return new ManifestError({ file: source, reason: p.reason, field: fieldName(p.path, index), document: index });
}

function fieldName(path: FieldPath, index: number | undefined): string | undefined {
  return formatPath(path, index === undefined ? '' : `documents[${index}]`) || undefined;
}

function tooBig(file: string, bytes: number): ManifestError {
  return new ManifestError({
    file,
    reason: `${bytes} bytes is over the ${LIMITS.manifestBytes}-byte limit for a manifest file; split it into several files`,
  });
}

function decodeUtf8(buf: Buffer, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new ManifestError({ file, reason: 'not valid UTF-8 text; save the file as UTF-8' });
  }
}
