import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OSWALK_BIN } from '../helpers/cli.js';
import { startAgentProcess, startJobsControlPlane, tempDir, TOKEN, useCliCluster } from '../helpers/jobs-cluster.js';
import { TestRedis } from '../helpers/redis.js';
import { Tmux } from '../helpers/tmux.js';
import { TERMINAL_CLIENT_GRACE_MS } from '../../src/state/jobs.js';
import { until } from '../helpers/until.js';

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

  /**
   * A session in a terminal of its own whose job writes `name` when it gets SIGHUP; runs `then`
   * with it. `env`: put before the command (OSWALK_ATTACH=control-plane: no direct stream).
   */
  const hangUpSession = async (name: string, then: (own: Tmux, mark: string) => Promise<void>, env = '') => {
    const own = await Tmux.start({ cols: 80, rows: 24, cwd: cluster.state.dir });
    const mark = join(cluster.state.dir, name);
    try {
      await own.type(env + osw(['run', '-it', '--', 'sh', '-c', `trap 'echo "hung up" > ${mark}; exit 1' HUP; echo ready; while :; do sleep 0.1; done`]));
      await own.waitFor(/^ready$/m, 20_000);
      await then(own, mark);
    } finally {
      await own.stop();
    }
  };

  test('a closed terminal hangs the session up: the job gets SIGHUP, as under ssh', async () => {
    await hangUpSession('hangup.txt', async (own, mark) => {
      // The window goes: its shell and the CLI in the foreground get SIGHUP from the kernel.
      await own.tmux('kill-server');
      await until('the job to get SIGHUP', async () => existsSync(mark) && readFileSync(mark, 'utf8') === 'hung up\n', 15_000);
    });
  });

  /** Kill the session's client with SIGKILL; how long until its job got SIGHUP. */
  const killClient = async (mark: string, tag: string) => {
    const pid = Number(execFileSync('pgrep', ['-f', `${OSWALK_BIN}.*${tag}`], { encoding: 'utf8' }).trim().split('\n')[0]);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await until('the job to get SIGHUP', async () => existsSync(mark), TERMINAL_CLIENT_GRACE_MS + 10_000);
    return Date.now() - killedAt;
  };

  test('a client killed with SIGKILL hangs its session up at once, as ssh\'s end does: its stream to the node closed', async () => {
    await hangUpSession('killed-hangup.txt', async (_own, mark) => {
      const tookMs = await killClient(mark, 'killed-hangup');
      assert.ok(tookMs < 5000, `the job got SIGHUP ${tookMs} ms after its client was killed`);
    });
  });

  test('a client through the control plane, killed with SIGKILL, leaves its session no longer than the grace period', async () => {
    await hangUpSession('orphan-hangup.txt', async (_own, mark) => {
      const tookMs = await killClient(mark, 'orphan-hangup');
      assert.ok(tookMs >= TERMINAL_CLIENT_GRACE_MS - 4000, `not before the grace period, which a control plane's failover may need (${tookMs} ms)`);
    }, 'OSWALK_ATTACH=control-plane ');
  });

  test('-t without a terminal is refused, as docker run -t is, and runs nothing', async () => {
    const r = await cluster.oswalk(['run', '-it', '--', 'true']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /-t needs a terminal, and standard input is not one/);
  });
});

describe('oswalk run -t: the node of a terminal session dies', () => {
  let server: TestRedis;
  let cp: Awaited<ReturnType<typeof startJobsControlPlane>>;
  let agent: ChildProcess | undefined;
  let term: Tmux;
  const state = tempDir('tty-lost');
  const nodeTimeoutMs = 3000;

  before(async () => {
    server = await TestRedis.start();
    cp = await startJobsControlPlane(server.url, { nodeTimeoutMs });
    agent = await startAgentProcess(cp.url, 'lost1', state.dir);
    term = await Tmux.start({ cols: 200, rows: 30, cwd: state.dir });
  });
  after(async () => {
    agent?.kill('SIGKILL');
    await term?.stop();
    await cp?.close();
    await server?.stop();
    state.remove();
  });

  test('the client says so and exits 255 within the node timeout, and the terminal is restored', async () => {
    const cmd = [process.execPath, OSWALK_BIN, '--api', cp.url, '--token', TOKEN, 'run', '-it', '--', 'bash', '--norc', '--noprofile'];
    await term.type(cmd.map((a) => `'${a}'`).join(' '));
    await term.waitFor(/bash-[\d.]+[#$]$/m, 20_000);
    const killedAt = Date.now();
    agent!.kill('SIGKILL');
    const shown = await term.waitFor(/the terminal session was lost: node lost1 went down\n\$$/m, nodeTimeoutMs + 10_000);
    const tookMs = Date.now() - killedAt;
    // The node is declared down after nodeTimeoutMs without a heartbeat, by the next monitor pass (each second).
    assert.ok(tookMs < nodeTimeoutMs + 3000, `the session ended ${tookMs} ms after the node died`);
    assert.match(shown, /oswalk: job \w+ failed on lost1 \(attempt 1\): the terminal session was lost/);
    await term.type('echo "rc=$?"; stty -a | tr " " "\\n" | grep -cxE "icanon|echo|opost|isig"');
    await term.waitFor(/rc=255\n4$/m);
  });
});
