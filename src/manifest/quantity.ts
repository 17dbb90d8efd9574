/**
 * CPU and memory quantities, written the Kubernetes way.
 *
 * CPUs: a number of cores (`2`, `0.5`, `"1.5"`) or millicores (`"500m"` = 0.5 core).
 * Memory: a whole number of bytes (`536870912`, `"1024"`), or a number with a decimal
 * suffix (`k`, `M`, `G`, `T`, `P`, `E`: powers of 1000) or a binary one (`Ki`, `Mi`, `Gi`,
 * `Ti`, `Pi`, `Ei`: powers of 1024), e.g. `"512Mi"`, `"1.5Gi"`, `"100M"`.
 */

/** Thrown by parseCpus/parseMemory; the manifest validator adds the field path to it. */
export class QuantityError extends Error {
  override name = 'QuantityError';
}

const CPU_DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const CPU_MILLI = /^(\d+)m$/;

/** Cores as a number > 0. */
export function parseCpus(x: unknown): number {
  let cores: number;
  if (typeof x === 'number') cores = x;
  else if (typeof x === 'string' && CPU_DECIMAL.test(x.trim())) cores = Number(x.trim());
  else if (typeof x === 'string' && CPU_MILLI.test(x.trim())) cores = Number(CPU_MILLI.exec(x.trim())![1]) / 1000;
  else {
    throw new QuantityError(
      `invalid CPU quantity ${show(x)}: use a number of cores such as 2 or 0.5, or millicores such as "500m"`,
    );
  }
  if (!Number.isFinite(cores) || cores <= 0) {
    throw new QuantityError(`invalid CPU quantity ${show(x)}: it must be more than 0 cores`);
  }
  return cores;
}

const MEMORY_FACTORS: Record<string, number> = {
  '': 1,
  k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
const MEMORY = /^(\d+(?:\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
// Spellings people reach for that Kubernetes does not accept; each gets a pointed hint.
const MEMORY_MISTAKE = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]+)$/;

/** Bytes as a positive safe integer (fractions of a byte are rounded up). */
export function parseMemory(x: unknown): number {
  if (typeof x === 'number') {
    if (!Number.isSafeInteger(x) || x <= 0) {
      throw new QuantityError(`invalid memory quantity ${show(x)}: a number means bytes and must be a whole number > 0`);
    }
    return x;
  }
  const s = typeof x === 'string' ? x.trim() : undefined;
  const m = s === undefined ? null : MEMORY.exec(s);
  if (!m) {
    const mistake = s === undefined ? null : MEMORY_MISTAKE.exec(s);
    const hint = mistake ? memoryHint(mistake[1]!, mistake[2]!) : '';
    throw new QuantityError(
      `invalid memory quantity ${show(x)}: use bytes or a number with a suffix such as "512Mi", "1Gi" or "100M"${hint}`,
    );
  }
  const bytes = Math.ceil(Number(m[1]) * MEMORY_FACTORS[m[2] ?? '']!);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new QuantityError(`invalid memory quantity ${show(x)}: it must be more than 0 bytes and at most ${Number.MAX_SAFE_INTEGER}`);
  }
  return bytes;
}

function memoryHint(num: string, unit: string): string {
  if (unit === 'm') return ` ("m" means thousandths of a byte; did you mean "${num}M" or "${num}Mi"?)`;
  const base = unit.replace(/i?b$/i, '').toUpperCase();
  if (/^[KMGTPE]$/.test(base)) {
    const dec = base === 'K' ? 'k' : base;
    const bin = base === 'K' ? 'Ki' : `${base}i`;
    return ` (did you mean "${num}${bin}" for powers of 1024 or "${num}${dec}" for powers of 1000?)`;
  }
  return '';
}

/** A value for an error message: strings quoted, long values cut. */
export function show(x: unknown): string {
  let s: string;
  if (x === undefined) s = 'nothing';
  else if (x === null) s = 'null';
  else if (Array.isArray(x)) s = 'a list';
  else if (typeof x === 'object') s = 'a mapping';
  else if (typeof x === 'number' && !Number.isFinite(x)) s = String(x); // .nan, 1e400: JSON says null
  else s = JSON.stringify(x) ?? String(x);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
