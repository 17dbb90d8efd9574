/**
 * `oswalk translate` and `oswalk mount` on an `oswalk up` cluster (issue 23): what they store
 * as a node goes to that node's chunk store, the one its agent serves, so the other nodes read
 * it; a node the command cannot place is refused before anything is stored.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { cliEnv, OSWALK_BIN, oswalk, startOswalk, stopChild, testConfigHome } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { Tmux } from '../helpers/tmux.js';
import { ChunkStore } from '../../src/packetfs/index.js';

// What the commands find must come from the cluster's config alone.
const env = { OSWALK_API: '', OSWALK_TOKEN: '', OSWALK_REDIS_URL: '', OSWALK_STORE: '', OSWALK_STATE_DIR: '', OSWALK_NODE: '' };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('translate and mount on an oswalk up cluster store into the named node\'s chunk store', () => {
  const upDir = mkdtempSync(join(tmpdir(), 'oswalk-translate-up-'));
  let up: Awaited<ReturnType<typeof startOswalk>>;
  const node2Store = () => new ChunkStore(join(upDir, '.oswalk', 'nodes', 'node2', 'state', 'chunks'), { log: pino({ level: 'silent' }) });

  before(async () => {
    up = await startOswalk(['up', '--dir', upDir, '--nodes', '2'], /Nodes:\s+node1, node2/, { cwd: upDir, env, timeoutMs: 60_000 });
  });
  after(async () => {
    if (up) assert.equal(await stopChild(up.child, 'SIGINT'), 0);
    rmSync(upDir, { recursive: true, force: true });
  });

  it('translate --node node2, run from another directory: the chunks are node2\'s, and the files read back through node1\'s mount', async () => {
    // Outside the cluster's directory: the user config `up` wrote names the cluster there.
    const src = mkdtempSync(join(tmpdir(), 'oswalk-to-translate-'));
    try {
      mkdirSync(join(src, 'sub'));
      const small = randomBytes(3000);
      const big = randomBytes(3 * 2 ** 20);
      writeFileSync(join(src, 'small.bin'), small);
      writeFileSync(join(src, 'sub', 'big.bin'), big);
      const r = await oswalk(['translate', '.', '--node', 'node2', '-o', 'json'], { cwd: src, env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).filesTranslated, 2);
      // A file this small is one chunk, named by the hash of its bytes.
      assert.ok(await node2Store().has(sha256(small)), 'node2\'s store holds the small file\'s chunk');
      // node1 fetches them from node2's agent, whose store this is (or from a copy the replication
      // pass made from it): chunks in a store no agent serves read as EIO, as before the fix.
      assert.deepEqual(readFileSync(join(upDir, 'cluster', 'small.bin')), small);
      assert.ok(readFileSync(join(upDir, 'cluster', 'sub', 'big.bin')).equals(big), 'big.bin reads back through node1\'s mount');
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('translate --node NAME the cluster does not have: exit 2, one line naming it, nothing stored', async () => {
    const src = mkdtempSync(join(upDir, 'nowhere-'));
    writeFileSync(join(src, 'not-stored.txt'), 'x');
    const r = await oswalk(['translate', src, '--node', 'node9'], { cwd: upDir, env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `error: node "node9" is not a node of the oswalk up cluster in ${upDir} (its nodes: node1, node2): pass --node with one of them, or --store with its chunk store (<its agent's --state-dir>/chunks)\n`);
    assert.deepEqual(readdirSync(join(upDir, '.oswalk', 'nodes')).sort(), ['node1', 'node2']);
    const v = await oswalk(['versions', 'not-stored.txt'], { cwd: upDir, env });
    assert.equal(v.code, 4, `not-stored.txt must not be in the tree: ${v.stdout}${v.stderr}`);
  });

  it('translate and mount with no oswalk up cluster configured and no --store or --state-dir: exit 2, naming the node', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'oswalk-no-cluster-'));
    try {
      const { redisUrl } = JSON.parse(readFileSync(join(upDir, '.oswalk', 'config.json'), 'utf8')) as { redisUrl: string };
      // Through the environment: a command line is every user's to read. No user config either
      // (the one `up` wrote would name the cluster from here too).
      const noConfig = { ...env, OSWALK_REDIS_URL: redisUrl, OSWALK_TOKEN: 't', XDG_CONFIG_HOME: join(upDir, 'no-config-home') };
      writeFileSync(join(elsewhere, 'f.txt'), 'x');
      const t = await oswalk(['translate', elsewhere, '--node', 'node2'], { cwd: elsewhere, env: noConfig });
      assert.equal(t.code, 2, t.stderr);
      assert.match(t.stderr, /^error: where node "node2" keeps its chunks is not known here \(no oswalk up cluster is configured, .*\): pass --store with its chunk store \(<its agent's --state-dir>\/chunks\)\n$/);
      const m = await oswalk(['mount', join(elsewhere, 'view'), '--node', 'node2'], { cwd: elsewhere, env: noConfig });
      assert.equal(m.code, 2, m.stderr);
      assert.match(m.stderr, /^error: where node "node2" keeps its chunks is not known here .*: pass --state-dir with its agent's state directory\n$/);
      assert.deepEqual(readdirSync(elsewhere), ['f.txt'], 'nothing made: no view, no store');
      assert.equal((await oswalk(['versions', 'f.txt'], { cwd: upDir, env })).code, 4);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('mount --node node2: a file written through it is stored in node2\'s chunk store', async () => {
    const view = join(upDir, 'node2-view');
    const child = spawn(process.execPath, [OSWALK_BIN, 'mount', view, '--node', 'node2'], { cwd: upDir, env: cliEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      await until('the mount', async () => {
        if (child.exitCode !== null) assert.fail(`oswalk mount exited with ${child.exitCode}: ${stderr}`);
        return stderr.includes('mounted the unified filesystem');
      }, 30_000);
      const data = randomBytes(2000);
      writeFileSync(join(view, 'via-node2.bin'), data);
      assert.ok(await node2Store().has(sha256(data)), `node2's store holds the chunk written through its mount (stderr: ${stderr})`);
      assert.deepEqual(readFileSync(join(upDir, 'cluster', 'via-node2.bin')), data);
    } finally {
      assert.equal(await stopChild(child, 'SIGINT'), 0, stderr);
    }
  });
});

describe('translate\'s progress line', () => {
  const redis = useTestRedis();
  const work = mkdtempSync(join(tmpdir(), 'oswalk-translate-progress-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  /** A directory of 3 MiB and more in a few files, and a fresh prefix and store to translate it into. */
  const fresh = (name: string) => {
    const src = join(work, name);
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.bin'), randomBytes(2 * 2 ** 20));
    writeFileSync(join(src, 'sub', 'b.bin'), randomBytes(2 ** 20));
    writeFileSync(join(src, 'c.txt'), 'small\n');
    return { src, args: ['translate', src, '--node', 'n9', '--store', join(work, `${name}-store`), '--prefix', testPrefix()] };
  };

  it('on a terminal: one line drawn in place and cut to its width, log lines above it, sizes readable, the table below it clean', async () => {
    const term = await Tmux.start({ cols: 100, rows: 40, cwd: work, env: { OSWALK_REDIS_URL: redis.server.url, OSWALK_LOG_LEVEL: 'info', XDG_CONFIG_HOME: testConfigHome() } });
    try {
      const { src, args } = fresh('wide');
      await term.type(`node ${OSWALK_BIN} ${args.join(' ')}; echo "exit=$?"`);
      await term.waitFor(/^exit=0$/m, 30_000);
      // Joined: a log line longer than the terminal is one line, wrapped only by the terminal.
      const lines = (await term.tmux('capture-pane', '-p', '-J')).split('\n').map((l) => l.trimEnd());
      const progress = lines.filter((l) => l.includes('translating '));
      assert.equal(progress.length, 1, `one progress line is left, the last one:\n${lines.join('\n')}`);
      assert.match(progress[0], new RegExp(`^translating ${src} as n9: (\\d+)/\\1 paths \\(100%\\), 3\\.0MiB$`));
      // pino-pretty's line, on a row of its own above the progress.
      const logged = lines.findIndex((l) => /INFO.*export directory scanned/.test(l));
      assert.ok(logged >= 0 && logged < lines.indexOf(progress[0]), `the log line is above the progress line:\n${lines.join('\n')}`);
      const header = lines.findIndex((l) => l.startsWith('VERSIONS'));
      assert.ok(header > lines.indexOf(progress[0]));
      assert.match(lines[header], /^VERSIONS\s+FILES\s+BYTES\s+NEW BYTES\s+DEDUP\s+TOMBSTONES\s+SKIPPED\s+ERRORS$/);
      assert.match(lines[header + 1], /^4\s+3\s+3\.0MiB\s+3\.0MiB\s+1\.00\s+0\s+0\s+0$/);

      // 40 columns: the line is cut to 39, so that drawing it again clears all of it.
      await term.clear();
      await term.resize(40, 40);
      const narrow = fresh('narrow');
      await term.type(`node ${OSWALK_BIN} ${narrow.args.join(' ')} -o json > /dev/null; echo "exit=$?"`);
      await term.waitFor(/^exit=0$/m, 30_000);
      const rows = (await term.screen()).split('\n');
      const cut = `translating ${narrow.src} as n9: 4/4 paths (100%), 3.0MiB`.slice(0, 39);
      assert.deepEqual(rows.filter((r) => r.startsWith('translating')), [cut], `the progress is one row of 39 columns:\n${rows.join('\n')}`);
      // Nothing of the progress text wrapped onto the row below it.
      assert.equal(rows[rows.indexOf(cut) + 1], 'exit=0');
    } finally {
      await term.stop();
    }
  });

  it('elsewhere: plain lines, JSON log lines, the last progress line at the end', async () => {
    const { src, args } = fresh('piped');
    const r = await oswalk(args, { cwd: work, env: { OSWALK_REDIS_URL: redis.server.url, OSWALK_LOG_LEVEL: 'info' } });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /[\r\x1b]/, 'no redrawing, no escapes');
    const lines = r.stderr.trimEnd().split('\n');
    for (const l of lines.filter((x) => x.startsWith('{'))) assert.equal(JSON.parse(l).name, 'translate');
    assert.ok(lines.some((l) => l.startsWith('{') && JSON.parse(l).msg === 'export directory scanned'));
    assert.match(lines.at(-1)!, new RegExp(`^translating ${src} as n9: 4/4 paths \\(100%\\), 3\\.0MiB$`));
    assert.match(r.stdout, /^VERSIONS\s+FILES\s+BYTES\s+NEW BYTES.*\n4\s+3\s+3\.0MiB\s+3\.0MiB\s/);
  });
});
