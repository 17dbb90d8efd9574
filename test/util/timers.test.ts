import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { longTimeout } from '../../src/util/timers.js';

describe('longTimeout', () => {
  it('waits past setTimeout\'s limit (about 24.8 days) instead of firing at once', async () => {
    let fired = 0;
    const t = longTimeout(() => fired++, 2 ** 31 + 1000, { unref: true });
    await new Promise((r) => setTimeout(r, 50));
    t.clear();
    assert.equal(fired, 0);
  });

  it('fires a short delay once, and not at all once cleared', async () => {
    let fired = 0;
    longTimeout(() => fired++, 10);
    const cleared = longTimeout(() => fired += 100, 10);
    cleared.clear();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(fired, 1);
  });
});
