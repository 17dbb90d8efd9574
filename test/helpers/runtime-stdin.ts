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

/**
 * The same check for every runtime: a tty job (`oswalk run -t`) has a terminal of the size
 * asked for, takes new sizes, reads its input through it, gets the signal of a Ctrl-C typed
 * into it, and a polite stop hangs it up (SIGHUP), as a closed ssh connection does. Its
 * output is the terminal's: all on stdout, lines ending in CRLF.
 */
export async function checkTty(rt: Runtime, spec: (command: string[], extra?: Partial<RunSpec>) => RunSpec): Promise<void> {
  const tty = { rows: 30, cols: 100 };
  const out = new Output();
  const h = await rt.start(spec(['sh', '-c', 'tty; stty size; read line; stty size; echo "got $line"; exit 5'], { stdin: true, tty }), out.onOutput);
  assert.ok(h.stdin && h.resize, 'a handle with stdin and resize');
  await out.waitFor('30 100\r\n');
  assert.match(out.stdout, /^\/dev\/pts\/\d+\r\n/);
  h.resize({ rows: 40, cols: 120 });
  await new Promise((r) => setTimeout(r, 200));
  h.stdin.write('hello\r');
  assert.deepEqual(await h.wait(), { exitCode: 5 });
  // The terminal echoes what was typed, as a local one would.
  assert.match(out.stdout, /hello\r\n40 120\r\ngot hello\r\n$/);
  assert.equal(out.stderr, '');

  const interrupted = await rt.start(spec(['sleep', '30'], { stdin: true, tty }), () => undefined);
  await new Promise((r) => setTimeout(r, 500));
  interrupted.stdin!.write('\x03');
  const r = await interrupted.wait();
  assert.ok(r.signal === 'SIGINT' || r.exitCode === 130, `Ctrl-C ends it with SIGINT: ${JSON.stringify(r)}`);

  const hup = new Output();
  const session = await rt.start(spec(['sh', '-c', 'trap "echo hung up; exit 9" HUP; echo ready; while :; do sleep 0.1; done'], { tty }), hup.onOutput);
  await hup.waitFor('ready');
  await session.kill('cancel');
  await hup.waitFor('hung up');
}
