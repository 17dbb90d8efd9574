import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { storageLine } from '../../src/cli/status.js';

describe('oswalk status: the storage line', () => {
  const base = { at: 1_000_000, by: 'node1', chunkLists: 12, bytes: 3 * 2 ** 30, underFiles: 0, underBytes: 0, lostFiles: 0, lostBytes: 0, removing: {} };
  it('says when no pass has run yet', () => {
    assert.equal(storageLine(undefined), 'Storage: no replication pass has run yet');
  });
  it('says every file has its copies, and how old the view is', () => {
    assert.equal(storageLine(base, 1_004_000), 'Storage: 12 file contents (3.0GiB), every one with all its copies (as of 4 s ago)');
  });
  it('names what is short of copies, unreadable, and held only by a node being removed', () => {
    const line = storageLine({ ...base, underFiles: 3, underBytes: 2 ** 20, lostFiles: 1, lostBytes: 1024, removing: { node2: { files: 2, bytes: 2048 } } }, 1_000_000);
    assert.match(line, /3 \(1\.0MiB\) short of their copies, being copied/);
    assert.match(line, /1 \(1\.0KiB\) on no live node: unreadable until a holder is back/);
    assert.match(line, /node2 being removed holds 2 \(2\.0KiB\) not yet copied elsewhere/);
  });
});
