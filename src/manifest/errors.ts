/** Errors of manifest parsing: one type for callers, with the place at fault spelled out. */

export type FieldPath = ReadonlyArray<string | number>;

/**
 * A bad manifest. `message` reads `file:line: field: reason`; the parts are kept too, so
 * the CLI can print them and the API can return them as JSON.
 */
export class ManifestError extends Error {
  override name = 'ManifestError';
  /** The file (or other source, e.g. "request body") the manifest came from. */
  readonly file: string;
  /** 1-based; undefined when the manifest did not come from YAML text or the place is unknown. */
  readonly line: number | undefined;
  /** 1-based, like `line`. */
  readonly column: number | undefined;
  /** Dotted path of the field at fault, e.g. `spec.resources.cpus` or `documents[1].spec.image`. */
  readonly field: string | undefined;
  /** 0-based index of the YAML document (or array element) at fault, when there is one. */
  readonly document: number | undefined;
  /** What is wrong and what to do, without the location. */
  readonly reason: string;

  constructor(opts: { file: string; reason: string; line?: number; column?: number; field?: string; document?: number }) {
    const where = opts.line === undefined ? opts.file : `${opts.file}:${opts.line}`;
    super(`${where}: ${opts.field ? `${opts.field}: ` : ''}${opts.reason}`);
    this.file = opts.file;
    this.line = opts.line;
    this.column = opts.column;
    this.field = opts.field;
    this.document = opts.document;
    this.reason = opts.reason;
  }

  toJSON() {
    return {
      message: this.message, file: this.file, line: this.line, column: this.column,
      field: this.field, document: this.document, reason: this.reason,
    };
  }
}

/**
 * A problem with one field of one document, before it is placed in a file. `locate` is
 * the path whose position is reported when it differs from `path` (a missing field has
 * no position of its own, so it is reported at its parent).
 */
export class FieldProblem extends Error {
  override name = 'FieldProblem';
  constructor(
    readonly path: FieldPath,
    readonly reason: string,
    readonly locate: FieldPath = path,
  ) {
    super(`${formatPath(path) || '(document)'}: ${reason}`);
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

/** `spec.resources.cpus`, `spec.command[0]`, `spec.nodeSelector["oswalk.dev/node"]`. */
export function formatPath(path: FieldPath, prefix = ''): string {
  let out = prefix;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
