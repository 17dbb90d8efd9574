/**
 * YAML text to plain values, keeping where each field was written.
 *
 * js-yaml's event parser gives a flat list of events with source offsets and never
 * expands aliases. One pass over it records the offset of every field path, counts
 * documents and aliases, and adds up how many nodes the aliases would expand to, so an
 * alias bomb is refused before anything (validation included) walks the expanded tree.
 * Only then are the values built from the same events.
 */
import {
  CORE_SCHEMA, EVENT_ID, SCALAR_STYLE, YAMLException, constructFromEvents, getScalarValue, parseEvents,
  type Event, type ScalarEvent,
} from 'js-yaml';
import { LIMITS } from '../util/limits.js';
import { ManifestError, type FieldPath } from './errors.js';

/** Offsets to 1-based lines and columns; the line table is built on first use (only errors need it). */
export class SourceText {
  private lineStarts: number[] | undefined;
  constructor(readonly file: string, readonly text: string) {}

  position(offset: number): { line: number; column: number } {
    if (!this.lineStarts) {
      this.lineStarts = [0];
      for (let i = this.text.indexOf('\n'); i !== -1; i = this.text.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
    }
    const starts = this.lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }

  error(offset: number | undefined, reason: string, extra: { field?: string; document?: number } = {}): ManifestError {
    const pos = offset === undefined ? {} : this.position(offset);
    return new ManifestError({ file: this.file, reason, ...pos, ...extra });
  }
}

export interface YamlDocument {
  /** 0-based index among all documents of the file, empty ones included. */
  index: number;
  /** No content at all (e.g. after a trailing `---`, or a file of comments). */
  empty: boolean;
  value: unknown;
  /** Offset where `path` is written: a mapping entry's key, a sequence item, or the nearest ancestor's. */
  offsetOf(path: FieldPath): number | undefined;
}

interface Frame {
  /** null inside a complex (collection) mapping key, whose fields have no path. */
  path: FieldPath | null;
  isMap: boolean;
  nextIsKey: boolean;
  key: string;
  keyOffset: number;
  index: number;
  anchor: string | undefined;
  nodesAtStart: number;
}

const pathKey = (path: FieldPath) => path.join('\u0000');

export function loadYamlDocuments(src: SourceText): YamlDocument[] {
  const { text } = src;
  let events: Event[];
  try {
    events = parseEvents(text, { filename: src.file });
  } catch (e) {
    throw syntaxError(src, e);
  }

  const docs: Array<{ empty: boolean; positions: Map<string, number> }> = [];
  const anchors = new Map<string, number>();
  const stack: Frame[] = [];
  let nodes = 0;
  let aliases = 0;
  let aliasNodes = 0;
  let contentDocs = 0;

  /** Works out the path of a node that starts at `offset` and records where it is written. */
  const place = (offset: number, keyText: () => string): FieldPath | null => {
    const doc = docs[docs.length - 1]!;
    const top = stack[stack.length - 1];
    let path: FieldPath | null;
    let at = offset;
    if (!top) {
      path = [];
      doc.empty = false;
      if (++contentDocs > LIMITS.manifestDocuments) {
        throw src.error(offset, `more than ${LIMITS.manifestDocuments} documents in one file; split it into several files`);
      }
    } else if (top.isMap && top.nextIsKey) {
      top.nextIsKey = false;
      top.key = keyText();
      top.keyOffset = offset;
      return null;
    } else if (top.path === null) {
      path = null;
    } else if (top.isMap) {
      top.nextIsKey = true;
      path = [...top.path, top.key];
      if (top.keyOffset >= 0) at = top.keyOffset;
    } else {
      path = [...top.path, top.index++];
    }
    if (path && at >= 0) doc.positions.set(pathKey(path), at);
    return path;
  };
  const open = (isMap: boolean, offset: number, anchor: string | undefined) => {
    const path = place(offset, () => '?');
    stack.push({ path, isMap, nextIsKey: true, key: '', keyOffset: -1, index: 0, anchor, nodesAtStart: nodes });
    nodes++;
  };
  const anchorOf = (e: { anchorStart: number; anchorEnd: number }) =>
    e.anchorStart >= 0 ? text.slice(e.anchorStart, e.anchorEnd) : undefined;

  for (const ev of events) {
    switch (ev.type) {
      case EVENT_ID.DOCUMENT:
        anchors.clear(); // anchors belong to one document
        docs.push({ empty: true, positions: new Map() });
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE:
        open(ev.type === EVENT_ID.MAPPING, ev.start, anchorOf(ev));
        break;
      case EVENT_ID.SCALAR: {
        if (stack.length === 0 && ev.valueStart < 0 && ev.tagStart < 0 && ev.anchorStart < 0) break; // empty document
        place(scalarOffset(ev), () => getScalarValue(text, ev));
        nodes++;
        const anchor = anchorOf(ev);
        if (anchor !== undefined) anchors.set(anchor, 1);
        break;
      }
      case EVENT_ID.ALIAS: {
        const offset = ev.anchorStart - 1;
        if (++aliases > LIMITS.yamlAliases) {
          throw src.error(offset, `more than ${LIMITS.yamlAliases} YAML aliases in one file; aliases are limited to stop alias bombs, so write the values out`);
        }
        const size = anchors.get(text.slice(ev.anchorStart, ev.anchorEnd)) ?? 1;
        nodes += size;
        aliasNodes += size;
        if (aliasNodes > LIMITS.yamlAliasNodes) {
          throw src.error(offset, `YAML aliases expand to more than ${LIMITS.yamlAliasNodes} nodes (an alias bomb?); write the values out instead of nesting aliases`);
        }
        place(offset, () => '?');
        break;
      }
      case EVENT_ID.POP: {
        const frame = stack.pop();
        if (frame?.anchor !== undefined) anchors.set(frame.anchor, nodes - frame.nodesAtStart);
        break;
      }
    }
  }

  let values: unknown[];
  try {
    values = constructFromEvents(events, { source: text, schema: CORE_SCHEMA, filename: src.file });
  } catch (e) {
    throw syntaxError(src, e);
  }

  return docs.map((d, index) => ({
    index,
    empty: d.empty,
    value: values[index] ?? null,
    offsetOf(path: FieldPath) {
      for (let n = path.length; n >= 0; n--) {
        const at = d.positions.get(pathKey(path.slice(0, n)));
        if (at !== undefined) return at;
      }
      return undefined;
    },
  }));
}

/** Where a scalar is written: at its opening quote, tag or anchor if it has one. */
function scalarOffset(ev: ScalarEvent): number {
  const starts = [ev.tagStart, ev.anchorStart - 1].filter((s) => s >= 0);
  if (ev.valueStart >= 0) {
    const quoted = ev.style === SCALAR_STYLE.SINGLE_QUOTED || ev.style === SCALAR_STYLE.DOUBLE_QUOTED;
    starts.push(quoted ? ev.valueStart - 1 : ev.valueStart);
  }
  return starts.length ? Math.min(...starts) : -1;
}

function syntaxError(src: SourceText, e: unknown): ManifestError {
  if (e instanceof YAMLException && e.mark) {
    return new ManifestError({
      file: src.file, line: e.mark.line + 1, column: e.mark.column + 1,
      reason: `invalid YAML: ${e.reason} (column ${e.mark.column + 1}); ${
        /duplicated mapping key/.test(e.reason) ? 'a key may appear once in a mapping, so remove or rename one' : 'check the indentation and quoting there'}`,
    });
  }
  const reason = e instanceof YAMLException ? e.reason : e instanceof Error ? e.message : String(e);
  return new ManifestError({ file: src.file, reason: `invalid YAML: ${reason}` });
}
