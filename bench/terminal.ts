/**
 * Transparent execution, each against its baseline in the same run (issue 19, item 3):
 *   a command's extra time in `oswalk shell` (over the same command in a local bash)  vs  BullMQ's add → done
 *   keystroke to echo through `oswalk run -it -- cat`                                  vs  `ssh -tt localhost cat`
 * on a one-node `oswalk up` cluster in a temporary folder. The ssh baseline runs a private sshd
 * (Debian's openssh-server) on a free loopback port with throw-away keys; without sshd that row
 * is a local pseudo-terminal's echo instead, and says so.
 *   node dist/bench/terminal.js [commands=100] [keys=100]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { OSWALK_BIN, startOswalk, stopChild } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/redis.js';
import { table, writeSection } from './report.js';

const COMMANDS = Number(process.argv[2] ?? 100);
const KEYS = Number(process.argv[3] ?? 100);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (x: number) => x.toFixed(2);

/** Per-command times (ms) of /bin/true run COMMANDS times by a bash: timed inside bash, so its start is not counted. */
function perCommand(argv: string[], cwd: string): number[] {
  const script = `t=$EPOCHREALTIME; for ((i = 0; i < ${COMMANDS}; i++)); do /bin/true; n=$EPOCHREALTIME; echo "$t $n"; t=$n; done`;
  const out = execFileSync(argv[0], [...argv.slice(1), script], { cwd, encoding: 'utf8', env: { ...process.env, OSWALK_LOG_LEVEL: 'warn' } });
  return out.trim().split('\n').map((l) => {
    const [a, b] = l.split(' ').map(Number);
    return (b - a) * 1000;
  });
}

/** BullMQ add → waitUntilFinished, one job at a time, on the cluster's redis-server. */
async function bullmqLatency(redisUrl: string, samples: number): Promise<number[]> {
  const connection = { url: redisUrl } as unknown as { host: string };
  const name = `bench-${process.pid}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const worker = new Worker(name, async () => 0, { connection, concurrency: 10 });
  await Promise.all([worker.waitUntilReady(), events.waitUntilReady()]);
  const out: number[] = [];
  try {
    for (let i = 0; i < samples + 5; i++) {
      const t0 = performance.now();
      // Kept until the end: waitUntilFinished looks the job up after it finished.
      const job = await queue.add('noop', {});
      await job.waitUntilFinished(events);
      if (i >= 5) out.push(performance.now() - t0);
    }
  } finally {
    await worker.close();
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
  return out;
}

/**
 * Keystroke to echo: a program run under `script` (a pseudo-terminal of util-linux's, so that it
 * sees a terminal), fed one key at a time through script's stdin; the time until the key comes
 * back on its stdout. The first key waits for the program to be ready.
 */
async function echoLatency(command: string, keys: number, cwd: string): Promise<number[]> {
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd, stdio: ['pipe', 'pipe', 'inherit'] });
  let seen = '';
  let waiter: (() => void) | undefined;
  child.stdout!.on('data', (d: Buffer) => {
    seen += d.toString('latin1');
    waiter?.();
  });
  const typeAndWait = (key: string, timeoutMs: number) => new Promise<number>((resolve, reject) => {
    const before = (seen.match(new RegExp(key, 'g')) ?? []).length;
    const t0 = performance.now();
    const timer = setTimeout(() => reject(new Error(`no echo of ${JSON.stringify(key)} from ${command} within ${timeoutMs} ms; got ${JSON.stringify(seen.slice(-200))}`)), timeoutMs);
    waiter = () => {
      if ((seen.match(new RegExp(key, 'g')) ?? []).length > before) {
        clearTimeout(timer);
        waiter = undefined;
        resolve(performance.now() - t0);
      }
    };
    child.stdin!.write(key);
  });
  const out: number[] = [];
  try {
    // The program prints READY once it runs: its client has made the terminal raw by then, so
    // what comes back later is the far end's echo, not the local terminal's.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${command} did not start within 30 s; got ${JSON.stringify(seen.slice(-200))}`)), 30_000);
      waiter = () => {
        if (seen.includes('READY')) {
          clearTimeout(timer);
          waiter = undefined;
          resolve();
        }
      };
    });
    for (let i = 0; i < keys; i++) {
      out.push(await typeAndWait('x', 5000));
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    child.stdin!.write('\r\x04');
    await stop(child);
  }
  return out;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A private sshd on loopback with throw-away keys: `ssh -tt` to it as the echo baseline. */
async function privateSshd(dir: string): Promise<{ command: (remote: string) => string; close(): Promise<void> } | undefined> {
  if (!existsSync('/usr/sbin/sshd')) return undefined;
  // sshd's privilege separation directory, which its service would make.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  for (const k of ['host', 'user']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)]);
  writeFileSync(join(dir, 'authorized_keys'), execFileSync('cat', [join(dir, 'user.pub')]));
  const port = await freePort();
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', '/dev/null', '-p', String(port), '-h', join(dir, 'host'),
    '-o', `AuthorizedKeysFile=${join(dir, 'authorized_keys')}`, '-o', 'StrictModes=no', '-o', 'UsePAM=no', '-o', 'PidFile=none',
    '-o', 'ListenAddress=127.0.0.1', '-o', 'PermitRootLogin=prohibit-password'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  sshd.stderr!.on('data', (d) => (said += d));
  await new Promise((r) => setTimeout(r, 500));
  if (sshd.exitCode !== null) throw new Error(`sshd did not start: ${said}`);
  const command = (remote: string) => `ssh -tt -p ${port} -i ${join(dir, 'user')} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR 127.0.0.1 ${remote}`;
  return { command, close: async () => { sshd.kill('SIGTERM'); await stop(sshd); } };
}

const dir = mkdtempSync(join(tmpdir(), 'oswalk-bench-terminal-'));
const up = (await startOswalk(['up', '--dir', dir, '--nodes', '1'], /Nodes:\s+node1/, { cwd: dir, timeoutMs: 60_000 })).child;
try {
  const redisUrl = (JSON.parse(execFileSync('cat', [join(dir, '.oswalk', 'config.json')], { encoding: 'utf8' })) as { redisUrl: string }).redisUrl;
  const mount = join(dir, 'cluster');
  const oswalk = `${process.execPath} ${OSWALK_BIN}`;

  // Interleaved rounds, so drift in the machine's load hits every case alike.
  const local: number[] = [];
  const shell: number[] = [];
  const bull: number[] = [];
  for (let round = 0; round < 3; round++) {
    local.push(...perCommand(['bash', '-c'], mount));
    shell.push(...perCommand([process.execPath, OSWALK_BIN, 'shell', '-c'], mount));
    bull.push(...await bullmqLatency(redisUrl, Math.ceil(COMMANDS / 3)));
  }
  const extra = [pct(shell, 50) - pct(local, 50), pct(shell, 99) - pct(local, 99)];

  const sshd = await privateSshd(dir);
  const oswalkEcho: number[] = [];
  const baseEcho: number[] = [];
  // READY, then cat: see echoLatency.
  const program = `sh -c 'echo READY; exec cat'`;
  const baseline = sshd ? sshd.command(`"${program}"`) : program;
  try {
    for (let round = 0; round < 2; round++) {
      // From the cluster's folder, whose config names the API and its CA.
      oswalkEcho.push(...await echoLatency(`${oswalk} run -it -- ${program}`, KEYS / 2, dir));
      baseEcho.push(...await echoLatency(baseline, KEYS / 2, dir));
    }
  } finally {
    await sshd?.close();
  }

  const rows = [
    ['`/bin/true` in a local bash, per command (baseline)', local.length, ms(pct(local, 50)), ms(pct(local, 99))],
    ['`/bin/true` in `oswalk shell`, per command', shell.length, ms(pct(shell, 50)), ms(pct(shell, 99))],
    ['its extra time over the local bash', '', ms(extra[0]), ms(extra[1])],
    ['BullMQ add → done, one job at a time (baseline: a queue\'s own floor)', bull.length, ms(pct(bull, 50)), ms(pct(bull, 99))],
    [`keystroke → echo, \`${sshd ? 'ssh -tt localhost cat' : 'cat'}\` (baseline${sshd ? '' : ': a local pseudo-terminal, no sshd here'})`, baseEcho.length, ms(pct(baseEcho, 50)), ms(pct(baseEcho, 99))],
    ['keystroke → echo, `oswalk run -it -- cat`', oswalkEcho.length, ms(pct(oswalkEcho, 50)), ms(pct(oswalkEcho, 99))],
  ];
  const goal = (name: string, got: number, limit: number) => `${name}: ${ms(got)} ms against at most ${ms(limit)} ms (${got <= limit ? 'met' : 'not met'})`;
  writeSection('terminal', 'Transparent execution: `oswalk shell` and `oswalk run -it`', `node dist/bench/terminal.js ${COMMANDS} ${KEYS}`, [
    table(['case', 'samples', 'p50 ms', 'p99 ms'], rows),
    '',
    'A one-node `oswalk up` cluster (process runtime, FUSE mount) on this machine; each command is a job, submitted, run and followed to its end.',
    'Issue 19\'s goals, measured here:',
    `- ${goal('a command\'s extra time in oswalk shell, p50, against 3× BullMQ\'s add → done p50', extra[0], 3 * pct(bull, 50))}`,
    `- ${goal('keystroke to echo, p50, against 2× the baseline\'s', pct(oswalkEcho, 50), 2 * pct(baseEcho, 50))}`,
    `- ${goal('keystroke to echo, p99, against 2× the baseline\'s', pct(oswalkEcho, 99), 2 * pct(baseEcho, 99))}`,
  ].join('\n'));
} finally {
  await stopChild(up, 'SIGINT');
  rmSync(dir, { recursive: true, force: true });
}
