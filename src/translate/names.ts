import { isUtf8 } from 'node:buffer';

/**
 * Names as the namespace holds them: UTF-8 text. A name of the export directory that is not
 * valid UTF-8 cannot be held exactly (decoding would turn its stray bytes into U+FFFD, and two
 * names differing only there would become one), so it is skipped, never changed.
 */
export function holdsExactly(raw: Buffer): boolean {
  return isUtf8(raw);
}

/**
 * A path's bytes for a log line or a terminal: UTF-8 text as it is, and as `\xNN` every byte
 * that is not part of it, every control character, and the backslash itself (`\\`), so two
 * different names never print alike.
 */
export function escapeBytes(raw: Buffer): string {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const n = sequenceLength(raw, i);
    if (n === 0) {
      out += `\\x${raw[i]!.toString(16).padStart(2, '0')}`;
      i++;
      continue;
    }
    const ch = raw.toString('utf8', i, i + n);
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
    i += n;
  }
  return out;
}

/** Bytes of the valid UTF-8 sequence at raw[i] (RFC 3629), or 0 when none starts there. */
function sequenceLength(raw: Buffer, i: number): number {
  const c = raw[i]!;
  if (c < 0x80) return 1;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c === 0xe0) [n, lo] = [3, 0xa0];
  else if (c === 0xed) [n, hi] = [3, 0x9f];
  else if (c >= 0xe1 && c <= 0xef) n = 3;
  else if (c === 0xf0) [n, lo] = [4, 0x90];
  else if (c === 0xf4) [n, hi] = [4, 0x8f];
  else if (c >= 0xf1 && c <= 0xf3) n = 4;
  else return 0;
  if (i + n > raw.length || raw[i + 1]! < lo || raw[i + 1]! > hi) return 0;
  for (let k = 2; k < n; k++) if (raw[i + k]! < 0x80 || raw[i + k]! > 0xbf) return 0;
  return n;
}
