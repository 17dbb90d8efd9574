import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OSWALK_BIN, oswalk, startOswalk, stopChild } from '../helpers/cli.js';
import { Tmux } from '../helpers/tmux.js';

/**
 * `oswalk shell` on a real two-node cluster (`oswalk up`: Redis, a control plane, two agents
 * with their FUSE mounts): commands typed or scripted run on a node in the same directory of the
 * mount, with the shell's exported environment, its input and output, and bash's own rules for
 * status, pipelines, $(...) and set -e; outside the mount, and for `here`, they run here.
 */
describe('oswalk shell', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-shell-test-'));
  const mount = join(dir, 'cluster');
  let up: ChildProcess;
  const env = { OSWALK_API: '', OSWALK_TOKEN: '', OSWALK_MOUNT: '' };
  /** `oswalk shell -c` from the cluster's folder (its config names the API and the mount). */
  const shell = (commands: string, timeoutMs = 60_000) => oswalk(['shell', '-c', commands], { cwd: dir, env, timeoutMs });

  before(async () => {
    up = (await startOswalk(['up', '--dir', dir, '--nodes', '2'], /Nodes:\s+node1, node2/, { cwd: dir, timeoutMs: 60_000 })).child;
  });
  after(async () => {
    if (up) await stopChild(up, 'SIGINT');
    rmSync(dir, { recursive: true, force: true });
  });

  test('commands in the mount run on a node, with bash\'s status, pipelines, $(...), && and set -e', async () => {
    const r = await shell([
      'cd cluster',
      'printenv OSWALK_NODE',
      'echo "job $(printenv OSWALK_JOB_ID)"',
      'seq 1 1000 | sort -rn | head -3 | tr "\\n" " "; echo',
      'sh -c "exit 7"; echo "status $?"',
      'sh -c "kill -TERM \\$\\$"; echo "signalled $?"',
      'grep -q nothing /dev/null && echo "not printed" || echo "grep said 1"',
      'set -e',
      'ls /no/such/dir',
      'echo "not reached"',
    ].join('\n'));
    assert.equal(r.code, 2, `set -e ends the shell with ls's status 2: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^node[12]$/, 'printenv ran on a node: it sees OSWALK_NODE, which this machine has not');
    assert.match(lines[1], /^job [0-9a-f]{12}$/);
    assert.equal(lines[2], '1000 999 998 ');
    assert.equal(lines[3], 'status 7');
    assert.equal(lines[4], 'signalled 143');
    assert.equal(lines[5], 'grep said 1');
    assert.equal(lines.length, 6, r.stdout);
    assert.match(r.stderr, /ls: cannot access '\/no\/such\/dir'/);
  });

  test('the exported environment goes exactly as set; shell variables, functions and builtins stay here', async () => {
    const r = await shell([
      'cd cluster',
      'export QUERY="sort=asc,limit=10 and spaces"',
      'UNEXPORTED=1',
      'printenv QUERY',
      'printenv UNEXPORTED || echo "not exported"',
      'f() { echo "function here"; }; f',
      'cd sub 2>/dev/null || mkdir sub && cd sub && pwd',
    ].join('\n'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['sort=asc,limit=10 and spaces', 'not exported', 'function here', join(mount, 'sub')]);
  });

  test('a program in the mount, named by its path, runs on a node in the same directory; a script runs the same way', async () => {
    writeFileSync(join(mount, 'where.sh'), '#!/bin/sh\necho "$OSWALK_NODE $(pwd) $1"\n');
    chmodSync(join(mount, 'where.sh'), 0o755);
    const r = await shell(`cd cluster && ./where.sh one && ${join(mount, 'where.sh')} two`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const [i, arg] of ['one', 'two'].entries()) {
      const [node, wd, got] = lines[i].split(' ');
      assert.match(node, /^node[12]$/);
      // The node's own mount of the same directory (each node of `up` mounts it in its own place).
      assert.match(wd, /\/cluster$|\/mount$/, lines[i]);
      assert.equal(got, arg);
    }
    writeFileSync(join(mount, 'script.sh'), 'printenv OSWALK_NODE\necho "arg $1"\nexit 5\n');
    const s = await oswalk(['shell', join(mount, 'script.sh'), 'first'], { cwd: mount, env, timeoutMs: 60_000 });
    assert.equal(s.code, 5, s.stderr);
    assert.match(s.stdout, /^node[12]\narg first\n$/);
  });

  test('outside the mount, with `here`, and for the commands listed to stay local, commands run on this machine', async () => {
    const r = await shell([
      'cd cluster',
      'here printenv OSWALK_NODE || echo "here: local"',
      'OSWALK_LOCAL=1 printenv OSWALK_NODE || echo "OSWALK_LOCAL: local"',
      'cd /',
      'printenv OSWALK_NODE || echo "outside: local"',
    ].join('\n'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['here: local', 'OSWALK_LOCAL: local', 'outside: local']);
    // The user's list of commands to run here (XDG_CONFIG_HOME/oswalk/shell-local).
    const config = mkdtempSync(join(tmpdir(), 'oswalk-shell-config-'));
    try {
      mkdirSync(join(config, 'oswalk'));
      writeFileSync(join(config, 'oswalk', 'shell-local'), '# run these here\nprintenv\n');
      const listed = await oswalk(['shell', '-c', 'cd cluster && { printenv OSWALK_NODE || echo "listed: local"; } && env | grep -c "^OSWALK_NODE="'], { cwd: dir, env: { ...env, XDG_CONFIG_HOME: config } });
      assert.deepEqual(listed.stdout.trim().split('\n'), ['listed: local', '1'], 'printenv ran here; env, not listed, on a node');
    } finally {
      rmSync(config, { recursive: true, force: true });
    }
  });

  test('make -j in the mount spreads its compiles over the nodes, and builds what a local make builds', async () => {
    // A generated project: 100 files of one function each, and a main that sums them.
    const project = (root: string) => {
      mkdirSync(root, { recursive: true });
      for (let i = 0; i < 100; i++) writeFileSync(join(root, `f${i}.c`), `int f${i}(void) { int s = 0; for (int k = 0; k < ${i + 1}; k++) s += k * ${i}; return s; }\n`);
      writeFileSync(join(root, 'main.c'), `#include <stdio.h>\n${Array.from({ length: 100 }, (_, i) => `int f${i}(void);`).join('\n')}\nint main(void) { long s = 0;\n${Array.from({ length: 100 }, (_, i) => `  s += f${i}();`).join('\n')}\n  printf("%ld\\n", s); return 0; }\n`);
      // Each compile leaves a note of the node it ran on (OSWALK_NODE is unset here).
      writeFileSync(join(root, 'Makefile'), [
        'OBJS := $(patsubst %.c,%.o,$(wildcard *.c))',
        'app: $(OBJS)',
        '\tcc -o $@ $(OBJS)',
        '%.o: %.c',
        '\tcc -O1 -c $< -o $@ && echo "$${OSWALK_NODE:-here}" > $@.node',
        '',
      ].join('\n'));
    };
    const local = mkdtempSync(join(tmpdir(), 'oswalk-make-local-'));
    try {
      project(join(mount, 'proj'));
      project(local);
      const r = await shell('cd cluster/proj && make -j8 -s && ./app', 240_000);
      assert.equal(r.code, 0, r.stderr);
      const nodes = new Set(readdirSync(join(mount, 'proj')).filter((f) => f.endsWith('.o.node')).map((f) => readFileSync(join(mount, 'proj', f), 'utf8').trim()));
      assert.ok(nodes.size >= 2 && !nodes.has('here'), `the compiles ran on the nodes, at least two of them: ${[...nodes].join(', ')}`);
      execFileSync('make', ['-j2', '-s'], { cwd: local });
      assert.ok(readFileSync(join(mount, 'proj', 'app')).equals(readFileSync(join(local, 'app'))), 'the binary is the one a local make builds');
      assert.equal(r.stdout.trim(), execFileSync(join(local, 'app'), { encoding: 'utf8' }).trim());
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  });

  test('a pipeline between two commands on the nodes passes every byte, more than a log keeps', async () => {
    const r = await shell('cd cluster && head -c 12000000 /dev/zero | wc -c');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '12000000');
    assert.doesNotMatch(r.stderr, /dropped/);
  });

  test('xargs -P sends each of its commands to the nodes', async () => {
    const r = await shell('cd cluster && seq 1 8 | xargs -P 4 -n 1 sh -c \'echo "$0 $OSWALK_NODE"\' | sort -n');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), ['1', '2', '3', '4', '5', '6', '7', '8']);
    for (const l of lines) assert.match(l, / node[12]$/, 'each ran on a node, not here');
  });

  test('interactive: the prompt says where commands run, a program gets a terminal, Ctrl-C reaches it, exit gives the status', async () => {
    const term = await Tmux.start({ cols: 120, rows: 30, cwd: dir, env: { OSWALK_API: '', OSWALK_TOKEN: '', OSWALK_MOUNT: '' } });
    try {
      await term.type(`${process.execPath} ${OSWALK_BIN} shell`);
      // The user's own prompt (from ~/.bashrc) follows the cluster's part.
      await term.waitFor(/^\[oswalk: this machine \(outside the cluster mount\)\] .*[#$]$/m, 30_000);
      await term.type('cd cluster');
      await term.waitFor(/^\[oswalk: 2 nodes, \d+ CPUs?\] .*[#$]$/m);
      await term.type('python3 -q');
      await term.waitFor(/>>>$/m, 20_000);
      await term.type('import os, sys; print(os.environ["OSWALK_NODE"], sys.stdin.isatty())');
      await term.waitFor(/^node[12] True$/m);
      await term.type('import time; time.sleep(60)');
      await new Promise((r) => setTimeout(r, 500));
      await term.keys('C-c');
      await term.waitFor(/KeyboardInterrupt\n>>>$/m);
      await term.type('raise SystemExit(3)');
      // Typed at the prompt only: keys typed while the program ran were the program's.
      await term.waitFor(/cluster[#$]\s*$/);
      await term.type('echo "python $?"');
      await term.waitFor(/^python 3$/m);
      await term.type('cd /');
      await term.waitFor(/^\[oswalk: this machine \(outside the cluster mount\)\] \S*\/?[#$]$/m);
      await term.type('exit 4');
      await term.waitFor(/^\$\s*$/m);
      await term.type('echo "shell $?"');
      await term.waitFor(/^shell 4$/m);
    } finally {
      await term.stop();
    }
  });
});
