import assert from 'node:assert/strict';
import type { Runtime, RunSpec } from '../../src/agent/runtime/types.js';
import { Output } from './output.js';

/**
 * The same check for every runtime: standard input, when the spec asks for it, reaches the job
 * and its end closes it; otherwise the handle has none and the job reads EOF.
 */
export async function checkStdin(rt: Runtime, spec: (command: string[], extra?: Partial<RunSpec>) => RunSpec): Promise<void> {
  const out = new Output();
  const h = await rt.start(spec(['sh', '-c', 'wc -c; echo read-all'], { stdin: true }), out.onOutput);
  assert.ok(h.stdin, 'a handle with stdin');
  h.stdin.write(Buffer.alloc(300_000, 'x'));
  h.stdin.end();
  assert.deepEqual(await h.wait(), { exitCode: 0 });
  assert.equal(out.stdout.replace(/ +/g, ''), '300000\nread-all\n');
  const none = new Output();
  const n = await rt.start(spec(['sh', '-c', 'cat; echo eof']), none.onOutput);
  assert.equal(n.stdin, undefined);
  assert.deepEqual(await n.wait(), { exitCode: 0 });
  assert.equal(none.stdout, 'eof\n');
}
