import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monotonicMs, NodeFence } from '../../src/agent/fence.js';

/**
 * A fence for runtimes driven without an agent: held for a day, so its jobs' guards only act
 * when a test moves it (`revoke()`). `withGuard`: a copy of the guard beside it, for containers.
 */
export function heldFence(withGuard = false): NodeFence {
  const fence = new NodeFence(mkdtempSync(join(tmpdir(), 'oswalk-fence-')), withGuard);
  fence.heartbeatAccepted(monotonicMs(), 86_400_000);
  return fence;
}
