/**
 * What errno a program sees for each kind of failure an operation can throw: the mount's own,
 * the namespace's and the lock table's (named by errno), the local disk's, and anything else
 * as EIO rather than a hang or a crash.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { errnoOf, fsError } from '../../src/overlay/errors.js';
import { FsError } from '../../src/state/fs.js';
import { ScriptError } from '../../src/state/scripts.js';

const E = constants.errno;

describe('errnoOf', () => {
  it('answers each failure with its errno, and EIO for the rest', () => {
    assert.equal(errnoOf(fsError('EACCES', '/x')), E.EACCES);
    assert.equal(errnoOf(new FsError('ENOTEMPTY', '/a/b')), E.ENOTEMPTY);
    assert.equal(errnoOf(new ScriptError('lock', 'EINVAL', 'a range past the end')), E.EINVAL);
    assert.equal(errnoOf(Object.assign(new Error('disk full'), { code: 'ENOSPC' })), E.ENOSPC);
    // A script's failure that is no errno, and a system error that is not the disk's, are EIO.
    assert.equal(errnoOf(new ScriptError('lockSession', 'LOST', 's1')), E.EIO);
    assert.equal(errnoOf(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), E.EIO);
    assert.equal(errnoOf(new Error('a chunk no holder could deliver')), E.EIO);
  });
});
