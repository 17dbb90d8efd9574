/**
 * POSIX conformance of the mount, measured against the local disk (issue 18, item 2).
 *
 * Every case of cases.ts (a syscall on a file type, by a user, after a setup) runs twice: in a
 * fresh directory of the FUSE mount and in a fresh directory on the local disk (ext4, under
 * /tmp), both with umask 022, through test/posix/driver.py in processes of their own (the test
 * process serves the mount's chunks: it must not block on the mount). Each case's result is a
 * normalized string (the errno, and canonical stat descriptions of what it left behind, its
 * times as moved / unchanged / equal to a fixed time), and the two must be the same, but for
 * the cases of KNOWN_DIFFERENCES, which must still differ (a fix makes the list shrink).
 *
 * A second part makes a few changes through one node's mount and checks that another node's
 * mount shows the exact same stat of the result.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { testPrefix } from '../helpers/redis.js';
import { ok, sh, useOneNode, useTwoNodes } from '../overlay/helpers.js';
import { CASES, type Case } from './cases.js';

/*
 * Why the mount differs from ext4, one cause each; KNOWN_DIFFERENCES maps cases to them.
 */
const RENAME_FLAGS = 'renameat2 flags (RENAME_NOREPLACE, RENAME_EXCHANGE) are refused with EINVAL (libfuse 2)';
const NODEV = 'the mount is nodev: device nodes cannot be opened (EACCES)';
const NOSUID = 'the mount is nosuid: a set-uid program runs as its caller';
const FIFO_TIMES = 'reads and writes through a fifo do not move its mtime/ctime';
const RMDIR_CWD = 'listing a removed directory one is in fails (ENOENT: libfuse 2\'s high-level API finds no path for it; ext4 lists it empty)';

/**
 * Cases where the mount knowingly answers otherwise than ext4, each with why. A case here that
 * agrees fails the test: take it out.
 */
const KNOWN_DIFFERENCES: Record<string, string> = {
  'rename reg root: RENAME_NOREPLACE to a new name': RENAME_FLAGS,
  'rename reg root: RENAME_EXCHANGE of a file and a directory': RENAME_FLAGS,

  'open chr root: O_RDONLY|O_NONBLOCK': NODEV,
  'open chr nobody: O_RDONLY|O_NONBLOCK': NODEV,
  'open chr root: read and write the 1:3 device (a null device)': NODEV,

  'access reg nobody: exec of a set-uid root program runs as root': NOSUID,

  'open fifo root: a fifo carries bytes between two opens': FIFO_TIMES,

  'dir dir root: rmdir of the directory one is in': RMDIR_CWD,
};

/** driver.py stays in the source tree (tsc copies no .py): from dist/test/posix, or test/posix. */
function driverPath(): string {
  for (const rel of ['../../../test/posix/driver.py', './driver.py']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('test/posix/driver.py not found');
}

type Mode = 'run' | 'setup' | 'act' | 'raw';

/**
 * The system's Python: the actions run as other users, who may not read root's own Python
 * (a pyenv under /root) and its modules.
 */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Seconds the kernel may keep a mount's attributes and names (index.ts tuning: 0.5), and a margin. */
const SETTLE_S = 0.7;

/** Run the driver over cases in root (asynchronously: see the file's comment). */
function drive(mode: Mode, root: string, cases: readonly Case[], timeoutMs = 120_000): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [driverPath()], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString();
      if (code !== 0) return reject(new Error(`driver ${mode} in ${root} failed (${code ?? signal}):\n${stderr}`));
      try {
        resolve(JSON.parse(Buffer.concat(out).toString()) as Record<string, string>);
      } catch (e) {
        reject(new Error(`driver ${mode} in ${root} printed no JSON: ${(e as Error).message}\n${stderr}`));
      }
    });
    child.stdin.end(JSON.stringify({ mode, root, cases, settle: SETTLE_S }));
  });
}

/** What differs between two results, part by part ("act" or a path), token by token where they line up. */
function diff(local: string, mount: string): string[] {
  const a = local.split(' | ');
  const b = mount.split(' | ');
  const lines: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    if (i === 0) {
      lines.push(`act: ${a[0]} -> ${b[0]}`); // what a call returned: whole
      continue;
    }
    const [label, la] = splitLabel(a[i] ?? '');
    const lb = splitLabel(b[i] ?? '')[1];
    const ta = la.split(' ');
    const tb = lb.split(' ');
    if (ta.length === tb.length && ta.length > 1) {
      const d = ta.map((t, j) => (t === tb[j] ? '' : `${t} -> ${tb[j]}`)).filter(Boolean);
      lines.push(`${label}: ${d.join(', ')}`);
    } else {
      lines.push(`${label}: ${la} -> ${lb}`);
    }
  }
  return lines;
}

function splitLabel(part: string): [string, string] {
  const i = part.indexOf(': ');
  const label = i < 0 ? '' : part.slice(0, i);
  return [label.length > 24 ? `${label.slice(0, 12)}...` : label, i < 0 ? part : part.slice(i + 2)];
}

/** The local disk's directory for a run: root's, 0755 (mktemp makes it 0700: users must get in). */
async function localRoot(): Promise<string> {
  return (await ok('d=$(mktemp -d /tmp/oswalk-posix-XXXXXX) && chmod 755 "$d" && echo "$d"')).trim();
}

describe('posix conformance: the mount against the local disk', () => {
  const one = useOneNode('posix', testPrefix());

  it('gives every case the same result as ext4, but the known differences', async () => {
    const t0 = Date.now();
    const local = await localRoot();
    const mnt = `${one.n.mnt}/posix-run`;
    await ok(`mkdir -m 755 ${mnt}`);
    try {
      const [onMount, onDisk] = await Promise.all([drive('run', mnt, CASES), drive('run', local, CASES)]);
      const problems: string[] = [];
      // The suite's own mistakes show on the local disk: a setup that fails, a Python error.
      for (const c of CASES) {
        const r = onDisk[c.id];
        if (r === undefined || /^(SETUP|PYERR|TIMEOUT)/.test(r)) problems.push(`suite error in "${c.id}" on the local disk: ${r}`);
        // A case named for an errno ("EACCES: ...", "rename of .: EBUSY/EINVAL") provokes it on ext4.
        const named = /(?:^|: )((?:E[A-Z]+\/?)+)(?::|$)/.exec(c.id.slice(c.id.indexOf(': ') + 2))?.[1];
        if (named && r !== undefined && !named.split('/').includes(r.split(' ')[0])) problems.push(`"${c.id}" gives ${r.split(' ')[0]} on the local disk`);
      }
      for (const id of Object.keys(KNOWN_DIFFERENCES)) {
        if (!CASES.some((c) => c.id === id)) problems.push(`KNOWN_DIFFERENCES names no case: "${id}"`);
      }
      const rows: Array<[string, string]> = [];
      let agree = 0;
      let known = 0;
      for (const c of CASES) {
        const same = onDisk[c.id] === onMount[c.id];
        const reason = KNOWN_DIFFERENCES[c.id];
        if (same) agree++;
        if (!same && reason) known++;
        if (same && reason) problems.push(`"${c.id}" agrees now: take it out of KNOWN_DIFFERENCES (${reason})`);
        if (!same) {
          const d = diff(onDisk[c.id], onMount[c.id]);
          rows.push([reason ?? '(new: no known reason)', `  ${c.id}\n${d.map((l) => `      ${l}`).join('\n')}`]);
          if (!reason) problems.push(`"${c.id}" differs (ext4 -> mount): ${d.join('; ')}`);
        }
      }
      if (rows.length) {
        // Grouped by cause, the new ones first.
        const causes = [...new Set(rows.map(([r]) => r))].sort((x, y) => Number(!x.startsWith('(new')) - Number(!y.startsWith('(new')));
        console.log(`disagreements (ext4 -> mount), by cause:\n${causes.map((r) => `${r}\n${rows.filter(([x]) => x === r).map(([, t]) => t).join('\n')}`).join('\n')}`);
      }
      console.log(`posix conformance: ${CASES.length} cases, ${agree} agree, ${known} known differences, ${CASES.length - agree - known} new differences (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      assert.deepEqual(problems, []);
    } finally {
      await sh(`rm -rf ${local}`);
    }
  });
});

/**
 * Changes made through node A are seen through node B with the same stat (raw: times to the
 * nanosecond), though B had looked at the entries before the change (its caches held them).
 */
const SHARED: Case[] = [
  ['chmod', "put('x')", "os.chmod('x', 0o4751)", ['x']],
  ['chmod of a directory', "os.mkdir('x')", "os.chmod('x', 0o1777)", ['x']],
  ['chown', "put('x')", "os.chown('x', 1000, 2000)", ['x']],
  ['lchown of a symlink', "os.symlink('t', 'x')", "os.lchown('x', 1000, 2000)", ['x']],
  ['rename of a file across directories', "os.mkdir('a'); os.mkdir('b'); put('a/x')", "os.rename('a/x', 'b/x')", ['a', 'b', 'a/x', 'b/x']],
  ['rename of a directory over an empty one', "os.makedirs('x/s'); os.mkdir('y')", "os.rename('x', 'y')", ['x', 'y', 'y/s']],
  ['utimensat T1, T2', "put('x')", "utimens('x', T1, T2)", ['x']],
  ['utimensat OMIT, T2', "put('x')", "utimens('x', OMIT, T2)", ['x']],
  ['utimensat of a directory', "os.mkdir('x')", "utimens('x', T1, T2)", ['x']],
  ['utimensat before 1970', "put('x')", "utimens('x', -2_147_483_648_000_000_000, -1_500_000_000)", ['x']],
  ['mkfifo', '', "os.mkfifo('x', 0o640)", ['x']],
  ['mknod of a char device', '', "os.mknod('x', stat.S_IFCHR | 0o600, os.makedev(1, 5))", ['x']],
  ['symlink and mkdir', '', "os.symlink('somewhere', 'x'); os.mkdir('d')", ['x', 'd']],
  ['truncate', "put('x', b'0123456789')", "os.truncate('x', 4)", ['x']],
  ['unlink', "put('x')", "os.unlink('x')", ['x']],
  ['link, then a write through the new name', "put('x')", "os.link('x', 'y'); put('y', b'new')", ['x', 'y']],
  ['link, then unlink of the first name', "put('x')", "os.link('x', 'y'); os.unlink('x')", ['x', 'y']],
  ['a read moves the atime (relatime)', "put('x', b'data'); old('x')", "read('x')", ['x']],
].map(([what, setup, act, observe], i) => ({
  id: `two nodes: ${what as string}`, call: 'shared', type: '-' as const, user: 'root' as const,
  setup: setup as string, act: act as string, observe: observe as string[], dir: `s${String(i).padStart(2, '0')}`,
}));

describe('posix conformance: two nodes see the same results', () => {
  const two = useTwoNodes(['posix-a', 'posix-b']);

  it('shows each change made through A the same through B', async () => {
    const { a, b } = two;
    const rootA = `${a.mnt}/posix-two`;
    const rootB = `${b.mnt}/posix-two`;
    await ok(`mkdir -m 755 ${rootA}`);
    const setup = await drive('setup', rootA, SHARED);
    assert.deepEqual(setup, {}, 'setups fail on A');
    /** Both nodes' views until they are the same (each read afresh), or `ms` have passed. */
    const converge = async (ms: number) => {
      const t0 = Date.now();
      for (;;) {
        const [onA, onB] = await Promise.all([drive('raw', rootA, SHARED), drive('raw', rootB, SHARED)]);
        if (SHARED.every((c) => onB[c.id] === onA[c.id]) || Date.now() - t0 > ms) return { onA, onB, ms: Date.now() - t0 };
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // B looks first (and sees what A made): what it has cached must not hide the change.
    const before = await converge(5000);
    assert.deepEqual(SHARED.filter((c) => before.onB[c.id] !== before.onA[c.id]).map((c) => `${c.id}\n    A: ${before.onA[c.id]}\n    B: ${before.onB[c.id]}`), [], 'B never showed the setups as A does');
    const acts = await drive('act', rootA, SHARED);
    for (const c of SHARED) assert.equal(acts[c.id], 'OK', `${c.id} on A`);
    // B sees a change within its cache times (0.5 s) after the namespace's event: 3 s at most.
    const { onA, onB, ms } = await converge(3000);
    const bad = SHARED.filter((c) => onB[c.id] !== onA[c.id]).map((c) => `${c.id}\n    A: ${onA[c.id]}\n    B: ${onB[c.id]}`);
    console.log(`posix conformance, two nodes: ${SHARED.length} cases, ${SHARED.length - bad.length} the same through B (after ${ms} ms)${bad.length ? `\n  ${bad.join('\n  ')}` : ''}`);
    assert.deepEqual(bad.map((x) => x.split('\n')[0]), []);
  });
});
