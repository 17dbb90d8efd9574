import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pickCurrent } from './pick-current.js';

type V = { id: string; node: string; mtimeNs: string; type: string; source: 'export' | 'mount' | 'restore' };
const v = (id: number, node: string, mtimeNs: string | bigint, type = 'file', source: V['source'] = 'export'): V => ({ id: String(id), node, mtimeNs: String(mtimeNs), type, source });
const m = (id: number, node: string, mtimeNs: string | bigint, type = 'file'): V => v(id, node, mtimeNs, type, 'mount');
const T = 1_700_000_000_000_000_000n;

const cases: { name: string; versions: V[]; want: string | undefined }[] = [
  { name: 'no versions', versions: [], want: undefined },
  { name: 'one version', versions: [v(1, 'a', T)], want: '1' },
  { name: 'newest mtime wins across nodes', versions: [v(1, 'a', T), v(2, 'b', T + 1n), v(3, 'c', T - 1n)], want: '2' },
  { name: 'one nanosecond decides (beyond double precision)', versions: [v(1, 'b', T + 1n), v(2, 'a', T)], want: '1' },
  { name: 'tie goes to the node name first', versions: [v(1, 'b', T), v(2, 'a', T)], want: '2' },
  { name: 'tie is byte order, not locale ("B" < "a")', versions: [v(1, 'a', T), v(2, 'B', T)], want: '2' },
  { name: 'tie: "a-1" < "a1" in bytes', versions: [v(1, 'a1', T), v(2, 'a-1', T)], want: '2' },
  { name: "a node's latest counts, even if older", versions: [v(1, 'a', T + 10n), v(2, 'b', T), v(3, 'a', T - 10n)], want: '2' },
  { name: 'ids compare as numbers', versions: [v(9, 'a', T + 10n), v(10, 'a', T)], want: '10' },
  { name: 'a tombstone can win', versions: [v(1, 'a', T), v(2, 'b', T + 5n, 'tombstone')], want: '2' },
  { name: 'a newer write beats a tombstone', versions: [v(1, 'a', T, 'tombstone'), v(2, 'b', T + 5n)], want: '2' },
  { name: 'an older copy does not beat a tombstone', versions: [v(1, 'a', T + 5n, 'tombstone'), v(2, 'b', T)], want: '1' },
  { name: 'mtime 0 and huge mtimes', versions: [v(1, 'a', 0n), v(2, 'b', 18446744073709551615n)], want: '2' },
  { name: "a delete through the mount is not undone by the same node's export copy", versions: [v(1, 'a', T), m(2, 'a', T + 9n, 'tombstone'), v(3, 'a', T)], want: '2' },
  { name: "the node's export stream going back to an older file counts", versions: [m(1, 'a', T - 50n), v(2, 'a', T), v(3, 'a', T - 10n)], want: '3' },
  { name: 'a restore is in the mount stream', versions: [v(1, 'a', T + 5n), v(2, 'a', T + 1n, 'file', 'restore'), v(3, 'a', T + 2n)], want: '3' },
  { name: 'same node, same mtime: the mount stream wins', versions: [v(1, 'a', T), m(2, 'a', T)], want: '2' },
  { name: 'shorter decimal is smaller', versions: [v(1, 'a', 999n), v(2, 'b', 1000n)], want: '2' },
];

describe('pickCurrent', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(pickCurrent(c.versions)?.id, c.want);
      assert.equal(pickCurrent([...c.versions].reverse())?.id, c.want, 'order of the input must not matter');
    });
  }
});
