import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { logLine } from '../../src/controlplane/routes/jobs.js';

describe('a log line on the wire', () => {
  const line = (data: Buffer) => logLine({ id: '1-0', t: 'out', data });
  const back = (l: ReturnType<typeof line>) => (l.b64 !== undefined ? Buffer.from(l.b64, 'base64') : Buffer.from(l.text ?? ''));

  it('carries text as text, and bytes that are not UTF-8 as base64', () => {
    assert.equal(line(Buffer.from('héllo\n\tworld "quoted"\n')).text, 'héllo\n\tworld "quoted"\n');
    assert.ok(line(Buffer.from([0xff, 0xfe, 0x41])).b64);
  });

  it('carries control bytes as base64 when JSON would write them longer (zeros, a tar stream)', () => {
    const zeros = Buffer.alloc(65536);
    const l = line(zeros);
    assert.ok(l.b64 !== undefined);
    assert.ok(JSON.stringify(l).length < 65536 * 1.4, 'about 4/3 of the bytes, not 6 times');
    assert.deepEqual(back(l), zeros);
    // A few control bytes in text stay text: escaping them costs less than base64.
    const colored = Buffer.from('\x1b[1mbold\x1b[0m and plain text around it, long enough to matter\n');
    assert.equal(line(colored).text, colored.toString());
  });
});
