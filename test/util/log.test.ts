/**
 * Log lines people can read on a terminal, JSON for everything else (issue 23), and
 * OSWALK_LOG_FORMAT to choose: run in a real pseudo-terminal (script(1)) and through a pipe.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const logModule = new URL('../../src/util/log.js', import.meta.url).href;
const program = `import(${JSON.stringify(logModule)}).then(({ createLogger }) => createLogger('demo', { node: 'n1' }).info({ job: 'abc' }, 'hello there'))`;

/** What the program prints, through a pipe or on a terminal of its own. */
function run(env: Record<string, string>, terminal: boolean): string {
  const cmd = [process.execPath, '-e', program];
  const full = terminal ? ['script', '-qec', cmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null'] : cmd;
  return execFileSync(full[0], full.slice(1), { env: { ...process.env, OSWALK_LOG_FORMAT: '', ...env } }).toString();
}

describe('log lines', () => {
  it('are JSON through a pipe', () => {
    const line = JSON.parse(run({}, false));
    assert.equal(line.msg, 'hello there');
    assert.equal(line.job, 'abc');
    assert.equal(line.node, 'n1');
  });

  it('are readable on a terminal: time, level, name, message, then the fields on the same line', () => {
    const out = run({}, true).replace(/\x1b\[[0-9;]*m/g, '');
    assert.match(out, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(demo\): hello there \{"node":"n1","job":"abc"\}\r?\n$/);
  });

  it('follow OSWALK_LOG_FORMAT either way', () => {
    assert.match(run({ OSWALK_LOG_FORMAT: 'pretty' }, false), /INFO \(demo\): hello there/);
    assert.equal(JSON.parse(run({ OSWALK_LOG_FORMAT: 'json' }, true)).msg, 'hello there');
  });
});
