import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OSWALK_BIN } from '../helpers/cli.js';
import { TOKEN, useCliCluster } from '../helpers/jobs-cluster.js';
import { Tmux } from '../helpers/tmux.js';

/**
 * `oswalk run -it`, driven in a real terminal (tmux) as a person would: full-screen and
 * line-editing programs work through the job's pseudo-terminal on its node, keys become
 * signals there, the window size follows, the exit code comes back, and the local terminal
 * is given back as it was.
 */
describe('oswalk run -t: a terminal session', () => {
  const cluster = useCliCluster('tty');
  let term: Tmux;
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  /** The command line that runs `args` through oswalk in the terminal's shell. */
  const osw = (args: string[]) => [process.execPath, OSWALK_BIN, '--api', cluster.url, '--token', TOKEN, ...args].map(quote).join(' ');
  /** Run in the terminal's shell, wait for its prompt, and give the exit status. */
  const status = async () => {
    // Typed only at the prompt: keys typed before the session ended are the session's (as with ssh).
    await term.waitFor(/(^|\n)\$\s*$/, 20_000);
    await term.type('echo "rc=$?"');
    return Number((await term.waitFor(/rc=\d+\n\$$/m)).match(/rc=(\d+)\n\$$/m)![1]);
  };
  /** The local terminal's modes are what they were: line editing and echo on. */
  const restored = async () => {
    await term.type('stty -a | tr " " "\\n" | grep -E "^-?(icanon|echo|opost|isig)$" | tr "\\n" " "; echo');
    const shown = (await term.waitFor(/(icanon|echo|opost|isig).*\n\$$/m)).match(/^(.*)\n\$$/m)![1].trim().split(' ').sort();
    assert.deepEqual(shown, ['echo', 'icanon', 'isig', 'opost'], 'line editing, echo, signal keys and output processing are on again');
  };

  before(async () => {
    term = await Tmux.start({ cols: 100, rows: 30, cwd: cluster.state.dir });
  });
  after(async () => {
    await term?.stop();
  });

  test('python3: the REPL edits lines, Ctrl-C interrupts, the window size goes through, and the exit code comes back', async () => {
    await term.type(osw(['run', '-it', '--', 'python3', '-q']));
    await term.waitFor(/>>>$/m, 20_000);
    await term.type('print(6 * 7)');
    await term.waitFor(/^42$/m);
    await term.type('import os; print("size", os.get_terminal_size())');
    await term.waitFor(/size os\.terminal_size\(columns=100, lines=30\)/);
    await term.resize(120, 40);
    await term.type('print("size", os.get_terminal_size())');
    await term.waitFor(/size os\.terminal_size\(columns=120, lines=40\)/);
    await term.resize(100, 30);
    // Ctrl-C in a long call: the job's terminal sends SIGINT to python3, which raises.
    await term.type('import time; time.sleep(60)');
    await new Promise((r) => setTimeout(r, 500));
    await term.keys('C-c');
    await term.waitFor(/KeyboardInterrupt\n>>>$/m);
    // Line editing is the job's readline's: a typo fixed with backspace before Enter.
    await term.type('print("ab', false);
    await term.keys('BSpace', 'BSpace', 'BSpace');
    await term.type('"cd")');
    await term.waitFor(/^cd$/m);
    await term.type('raise SystemExit(7)');
    assert.equal(await status(), 7);
    await restored();
    await term.clear();
  });

  test('Ctrl-D ends the input of a program reading its terminal', async () => {
    await term.type(osw(['run', '-it', '--', 'sh', '-c', 'cat; echo "cat ended"']));
    await new Promise((r) => setTimeout(r, 1000));
    await term.type('hello');
    await term.waitFor(/^hello\nhello$/m, 15_000);
    await term.keys('C-d');
    await term.waitFor(/cat ended/);
    assert.equal(await status(), 0);
    await term.clear();
  });

  test('bash on the node: Ctrl-Z stops the foreground job, Ctrl-\\ quits one, and exit gives its status', async () => {
    await term.type(osw(['run', '-it', '--', 'bash', '--norc', '--noprofile']));
    await term.waitFor(/bash-[\d.]+[#$]$/m, 20_000);
    await term.type('tty; sleep 100');
    await term.waitFor(/^\/dev\/pts\/\d+$/m);
    await term.keys('C-z');
    await term.waitFor(/Stopped\s+sleep 100/);
    await term.type('kill %1; sleep 100');
    await new Promise((r) => setTimeout(r, 300));
    await term.keys('C-\\');
    await term.waitFor(/Quit/);
    await term.type('exit 3');
    assert.equal(await status(), 3);
    await restored();
    await term.clear();
  });

  test('vi edits a file full-screen', async () => {
    const file = join(cluster.state.dir, 'notes.txt');
    await term.type(osw(['run', '-it', '--', 'vi', '-u', 'NONE', '-N', file]));
    // An empty buffer shows its ~ lines down to the last row but one: vi knows the size.
    await term.waitFor(/(^~\n){27}/m, 20_000);
    await term.keys('i');
    await term.type('hello from vi', false);
    await term.keys('Escape');
    await term.type(':wq');
    assert.equal(await status(), 0);
    assert.equal(readFileSync(file, 'utf8'), 'hello from vi\n');
    await restored();
    await term.clear();
  });

  test('less pages through a pipe and reads its keys from the terminal', async () => {
    await term.type(osw(['run', '-it', '--', 'sh', '-c', 'seq 1 1000 | less']));
    const first = await term.waitFor(/^29\n:\s*$/m, 20_000);
    assert.match(first, /^1\n2\n3\n/);
    await term.keys('Space');
    await term.waitFor(/^58\n:\s*$/m);
    await term.keys('q');
    assert.equal(await status(), 0);
    await term.clear();
  });

  test('top runs full-screen and quits on q', async () => {
    await term.type(osw(['run', '-it', '--', 'top']));
    await term.waitFor(/load average[\s\S]*PID\s+USER/, 20_000);
    await term.keys('q');
    assert.equal(await status(), 0);
    await restored();
    await term.clear();
  });

  test('-t without a terminal is refused, as docker run -t is, and runs nothing', async () => {
    const r = await cluster.oswalk(['run', '-it', '--', 'true']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /-t needs a terminal, and standard input is not one/);
  });
});
