/**
 * The real cluster a fault run hits: one redis-server, two control planes and three agents, each
 * a process of its own started as an operator would (`oswalk control-plane`, `oswalk agent`),
 * so that each can be killed or frozen alone; one agent runs in a network namespace of its own,
 * reached over a veth pair, so that a partition cuts it (and its FS process, its child) off
 * from Redis and from the other nodes while its FUSE mount stays visible on the host.
 *
 * Everything stays on this machine: loopback, and a /30 of 10.231.0.0/16 that exists only on
 * the veth pair made here (with an `unreachable` route for it on the host, so that while the
 * link is down nothing for it leaves through the default route).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { OSWALK_BIN } from '../helpers/cli.js';
import { freePort, fsKeysOf } from '../helpers/redis.js';
import { connectRedis } from '../../src/state/redis.js';
import { keyspace, type FsKeyspace, type Keyspace } from '../../src/state/keys.js';
import { getNode } from '../../src/state/nodes.js';
import type { NodeRecord } from '../../src/api/nodes.js';
import { mountStack, mountTable, unmountStale } from '../../src/overlay/index.js';
import { getCurrent } from '../../src/state/fs.js';
import { chunkListLocations } from '../../src/packetfs/index.js';

export const TOKEN = 'faults-token';

/** Run a command; resolves with its output, rejects with everything it printed. */
export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(String(stdout));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A promise that fails after ms, naming what it waited for. */
export function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** Poll until fn returns something truthy; fail after ms naming what. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms: number, every = 100): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await within(what, fn(), Math.max(100, Math.min(5000, deadline - Date.now())));
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(every);
  }
}

export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A child process whose output goes to a log file of the run (appended to across restarts). */
export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;

  constructor(readonly name: string, argv: string[], logFile: string, env: NodeJS.ProcessEnv) {
    const fd = openSync(logFile, 'a');
    try {
      this.child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env });
    } finally {
      closeSync(fd);
    }
    this.child.on('error', () => undefined);
    this.exited = once(this.child, 'exit').then(() => undefined);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGKILL, and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await within(`${this.name} to exit after SIGKILL`, this.exited, 10_000);
  }

  /** SIGTERM (after a SIGCONT, in case it is stopped), then SIGKILL after graceMs. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * A network namespace with a veth pair to the host: `hostAddr` on the host's end, `nsAddr` on
 * the namespace's. cut() takes the host's end down: the namespace then reaches nothing (it has
 * no other route), and the host's packets for it meet the unreachable route; heal() brings it
 * back. The host end's address stays local to the host while the link is down, so the host's
 * processes that listen on it keep reaching each other.
 */
export class Netns {
  readonly name: string;
  readonly hostIf: string;
  readonly nsIf: string;
  hostAddr = '';
  nsAddr = '';
  private subnet = '';

  constructor(tag: string) {
    this.name = `oswf-${tag}`;
    this.hostIf = `oswf${tag}h`.slice(0, 15);
    this.nsIf = `oswf${tag}n`.slice(0, 15);
  }

  get path(): string {
    return `/run/netns/${this.name}`;
  }

  async create(): Promise<void> {
    // A /30 of 10.231.0.0/16 no route of this host knows yet.
    const routes = await run('ip', ['-4', 'route', 'show', 'table', 'all']);
    let n = process.pid % 16384;
    for (let i = 0; i < 16384; i++, n = (n + 1) % 16384) {
      const base = `10.231.${n >> 6}.${(n & 63) * 4}`;
      if (!routes.includes(`10.231.${n >> 6}.${(n & 63) * 4}/30`) && !routes.includes(`10.231.${n >> 6}.${(n & 63) * 4 + 1} `)) {
        this.subnet = `${base}/30`;
        this.hostAddr = `10.231.${n >> 6}.${(n & 63) * 4 + 1}`;
        this.nsAddr = `10.231.${n >> 6}.${(n & 63) * 4 + 2}`;
        break;
      }
    }
    if (!this.subnet) throw new Error('no free /30 in 10.231.0.0/16');
    await this.destroy();
    await run('ip', ['netns', 'add', this.name]);
    await run('ip', ['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf]);
    await run('ip', ['link', 'set', this.nsIf, 'netns', this.name]);
    await run('ip', ['addr', 'add', `${this.hostAddr}/30`, 'dev', this.hostIf]);
    await run('ip', ['link', 'set', this.hostIf, 'up']);
    await run('ip', ['-n', this.name, 'addr', 'add', `${this.nsAddr}/30`, 'dev', this.nsIf]);
    await run('ip', ['-n', this.name, 'link', 'set', this.nsIf, 'up']);
    await run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    // While the link is down its connected route is gone: without this the host would send
    // packets for the namespace out of its default route, off this machine.
    await run('ip', ['route', 'add', 'unreachable', this.subnet, 'metric', '4000']);
  }

  async cut(): Promise<void> {
    await run('ip', ['link', 'set', this.hostIf, 'down']);
  }

  async heal(): Promise<void> {
    await run('ip', ['link', 'set', this.hostIf, 'up']);
  }

  async destroy(): Promise<void> {
    if (this.subnet) await run('ip', ['route', 'del', 'unreachable', this.subnet, 'metric', '4000']).catch(() => undefined);
    await run('ip', ['link', 'del', this.hostIf]).catch(() => undefined);
    await run('ip', ['netns', 'del', this.name]).catch(() => undefined);
  }
}

/**
 * redis-server on a fixed port and data directory (append-only, fsync always), on loopback and
 * the veth's host end, with a password (as `oswalk up` gives it one; without one Redis' protected
 * mode refuses the namespace's connections).
 */
export class RedisServer {
  proc?: Proc;
  readonly password = randomBytes(12).toString('hex');
  constructor(readonly port: number, readonly dir: string, readonly binds: string[], readonly logFile: string) {}

  url(host = '127.0.0.1'): string {
    return `redis://:${this.password}@${host}:${this.port}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.proc = new Proc('redis-server', ['redis-server', '--port', String(this.port), '--bind', ...this.binds, '--dir', this.dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--requirepass', this.password], this.logFile, process.env);
    await until('redis-server to answer', async () => {
      const probe = new Redis(this.url(), { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }, 15_000, 50);
  }
}

export interface ClusterLayout {
  root: string;
  prefix: string;
  nodeTimeoutMs: number;
  nodes: string[];
  /** The node in the network namespace; none: no namespace, every node on loopback. */
  nsNode?: string;
  /**
   * A Redis of the test's own (redis+sentinel://…) that every process uses; none: the cluster
   * starts its redis-server (`redis`).
   */
  redisUrl?: string;
  /** The cluster's files in a redis-server of their own (--fs-redis, from OSWALK_FS_REDIS_URL). */
  fsRedis?: boolean;
}

/** A control plane process: `oswalk control-plane`, Redis from OSWALK_REDIS_URL. */
export class ControlPlane {
  proc?: Proc;
  starts = 0;
  constructor(readonly name: string, readonly port: number, private readonly c: FaultCluster) {}

  async start(): Promise<void> {
    this.starts++;
    // Plain HTTP: the faults are the subject here (the agents reach Redis directly, not the
    // API); test/cli/tls.test.ts and the `oswalk up` tests run the API over TLS.
    this.proc = new Proc(this.name, [process.execPath, OSWALK_BIN, 'control-plane', '--listen', `127.0.0.1:${this.port}`, '--insecure-http',
      '--node-timeout', `${this.c.layout.nodeTimeoutMs}ms`, '--prefix', this.c.layout.prefix],
    join(this.c.layout.root, 'logs', `${this.name}.log`),
    { ...process.env, OSWALK_REDIS_URL: this.c.redisUrl(), ...this.c.fsRedisEnv(), OSWALK_TOKEN: TOKEN, OSWALK_LOG_LEVEL: 'info' });
    await until(`${this.name} to serve`, async () => {
      if (!this.proc!.running) throw new Error(`${this.name} exited: see ${this.c.layout.root}/logs/${this.name}.log`);
      const res = await fetch(`http://127.0.0.1:${this.port}/healthz`).catch(() => undefined);
      return res?.ok;
    }, 30_000);
  }
}

/** An agent process (`oswalk agent`, process runtime, its own mount), possibly in the namespace. */
export class Agent {
  proc?: Proc;
  starts = 0;
  readonly stateDir: string;
  readonly mount: string;
  readonly exportDir: string;

  constructor(readonly node: string, private readonly c: FaultCluster, readonly netns?: Netns) {
    const dir = join(c.layout.root, 'nodes', node);
    this.stateDir = join(dir, 'state');
    this.exportDir = join(dir, 'export');
    this.mount = join(dir, 'cluster');
    mkdirSync(this.exportDir, { recursive: true });
    mkdirSync(this.mount, { recursive: true });
  }

  /** The address its chunk server listens on, which peers reach it at. */
  get address(): string {
    if (this.netns) return this.netns.nsAddr;
    return this.c.netns?.hostAddr ?? '127.0.0.1';
  }

  /** Start it and wait until it registered again with its mount up. */
  async start(): Promise<void> {
    const before = (await this.c.node(this.node))?.agentEpoch ?? 0;
    this.starts++;
    const redisHost = this.netns ? this.netns.hostAddr : '127.0.0.1';
    const argv = [process.execPath, OSWALK_BIN, 'agent', '--node', this.node, '--runtime', 'process',
      '--redis', this.c.redisUrl(redisHost), '--prefix', this.c.layout.prefix, '--state-dir', this.stateDir,
      '--export', this.exportDir, '--mount', this.mount, '--listen', `${this.address}:0`, '--address', this.address];
    // nsenter joins the network namespace only and then execs node: the agent keeps the host's
    // mount namespace (its FUSE mount shows on the host) and its pid is nsenter's.
    const full = this.netns ? ['nsenter', `--net=${this.netns.path}`, ...argv] : argv;
    this.proc = new Proc(`agent ${this.node}`, full, join(this.c.layout.root, 'logs', `${this.node}.log`),
      { ...process.env, ...this.c.fsRedisEnv(redisHost), OSWALK_TOKEN: TOKEN, OSWALK_LOG_LEVEL: 'info' });
    await until(`agent ${this.node} to register with its mount up`, async () => {
      if (!this.proc!.running) throw new Error(`agent ${this.node} exited: see ${this.c.layout.root}/logs/${this.node}.log`);
      const n = await this.c.node(this.node);
      return !!n && n.agentEpoch > before && n.status === 'ready' && n.mountReady === true;
    }, 40_000);
  }

  /** Its FS process (the child that serves its FUSE mount), if any. */
  async fsPid(): Promise<number | undefined> {
    if (!this.proc?.running) return undefined;
    const out = await run('pgrep', ['-P', String(this.proc.pid), '-f', 'overlay/fs-process.js']).catch(() => '');
    const pids = out.trim().split('\n').filter(Boolean).map(Number);
    return pids[0];
  }

  /** Whether the top of its mount point is a FUSE mount. */
  async mounted(): Promise<boolean> {
    const top = mountStack(await mountTable(), this.mount).pop();
    return !!top?.fstype.startsWith('fuse');
  }
}

export class FaultCluster {
  /** Only with a layout's nsNode. */
  readonly netns?: Netns;
  /** Only without a layout's redisUrl. */
  redis!: RedisServer;
  /** Only with a layout's fsRedis: the Redis of the cluster's files. */
  fsRedis?: RedisServer;
  /** The test's own connection to where the cluster's files are (conn, or fsRedis'). */
  fsConn!: Redis;
  /** The test's own connection (every call of it under a timeout: Redis may be frozen). */
  conn!: Redis;
  readonly ks: Keyspace;
  /** Where the cluster's processes keep its files (a new cluster's: openFs). */
  readonly fsKs: FsKeyspace;
  readonly cps: ControlPlane[] = [];
  readonly agents = new Map<string, Agent>();

  constructor(readonly layout: ClusterLayout) {
    this.ks = keyspace(layout.prefix);
    this.fsKs = fsKeysOf(layout.prefix);
    if (layout.nsNode) this.netns = new Netns(String(process.pid % 100000));
    mkdirSync(join(layout.root, 'logs'), { recursive: true });
  }

  /** The URL of the cluster's Redis, as a process reaches it from host. */
  redisUrl(host = '127.0.0.1'): string {
    return this.layout.redisUrl ?? this.redis.url(host);
  }

  /** The environment that gives a process the fs Redis, as it reaches it from `host`. */
  fsRedisEnv(host = '127.0.0.1'): NodeJS.ProcessEnv {
    return this.fsRedis ? { OSWALK_FS_REDIS_URL: this.fsRedis.url(host) } : {};
  }

  async start(): Promise<void> {
    await this.netns?.create();
    const binds = ['127.0.0.1', ...(this.netns ? [this.netns.hostAddr] : [])];
    if (!this.layout.redisUrl) {
      this.redis = new RedisServer(await freePort(), join(this.layout.root, 'redis'), binds, join(this.layout.root, 'logs', 'redis.log'));
      await this.redis.start();
    }
    if (this.layout.fsRedis) {
      this.fsRedis = new RedisServer(await freePort(), join(this.layout.root, 'fs-redis'), binds, join(this.layout.root, 'logs', 'fs-redis.log'));
      await this.fsRedis.start();
    }
    this.conn = connectRedis(this.redisUrl());
    this.conn.on('error', () => undefined);
    this.fsConn = this.fsRedis ? connectRedis(this.fsRedis.url()) : this.conn;
    this.fsConn.on('error', () => undefined);
    for (const name of ['cp1', 'cp2']) this.cps.push(new ControlPlane(name, await freePort(), this));
    await Promise.all(this.cps.map((cp) => cp.start()));
    for (const node of this.layout.nodes) this.agents.set(node, new Agent(node, this, node === this.layout.nsNode ? this.netns : undefined));
    // One after another: three mounts and agents starting at once on two cores take longer than one by one.
    for (const a of this.agents.values()) await a.start();
  }

  async node(name: string): Promise<NodeRecord | undefined> {
    return within(`node ${name}'s record`, getNode(this.conn, this.ks, name), 3000);
  }

  /** The first control plane's API. */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.cps[0].port}`;
  }

  /** The nodes holding the current content of a file of the unified tree, sorted. */
  async holders(path: string): Promise<string[]> {
    const v = await within(`the version of ${path}`, getCurrent(this.fsConn, this.fsKs, path), 3000);
    if (!v?.chunkListHash) throw new Error(`${path} is not a file in the namespace`);
    return chunkListLocations(this.fsConn, this.fsKs, v.chunkListHash);
  }

  /** The control plane holding the leader lease (its id carries its pid), if one does. */
  async leader(): Promise<ControlPlane | undefined> {
    const id = await within('the leader key', this.conn.get(this.ks.leader), 3000);
    const pid = id ? Number(/-(\d+)-[0-9a-f]+$/.exec(id)?.[1]) : undefined;
    return this.cps.find((cp) => cp.proc?.running && cp.proc.pid === pid);
  }

  /**
   * Every piece back: Redis answers, both control planes serve and one leads, and every node is
   * ready with its mount up and its FS process alive.
   */
  async healthy(): Promise<string | undefined> {
    if (!(await within('redis ping', this.conn.ping(), 2000).catch(() => undefined))) return 'redis does not answer';
    for (const cp of this.cps) if (!cp.proc?.running) return `${cp.name} is not running`;
    if (!(await this.leader())) return 'no control plane leads';
    for (const a of this.agents.values()) {
      const n = await this.node(a.node);
      if (!a.proc?.running) return `agent ${a.node} is not running`;
      if (n?.status !== 'ready') return `node ${a.node} is ${n?.status}`;
      if (n.mountReady !== true) return `node ${a.node}'s mount is down: ${n.mountError}`;
      if (!(await a.fsPid())) return `node ${a.node} has no FS process`;
      if (!(await a.mounted())) return `node ${a.node}'s mount point shows no FUSE mount`;
    }
    return undefined;
  }

  /** Stop everything, whatever state it is in; never throws. */
  async stop(): Promise<void> {
    const quiet = async (what: Promise<unknown>) => {
      await what.catch(() => undefined);
    };
    if (this.netns) await quiet(this.netns.heal());
    if (this.redis?.proc) this.redis.proc.signal('SIGCONT');
    for (const cp of this.cps) cp.proc?.signal('SIGCONT');
    for (const a of this.agents.values()) {
      a.proc?.signal('SIGCONT');
      const fs = await a.fsPid().catch(() => undefined);
      if (fs) quiet(Promise.resolve(process.kill(fs, 'SIGCONT')));
    }
    await Promise.all([...this.agents.values()].map((a) => quiet(a.proc?.stop(20_000) ?? Promise.resolve())));
    for (const a of this.agents.values()) await quiet(unmountStale(a.mount));
    await Promise.all(this.cps.map((cp) => quiet(cp.proc?.stop(10_000) ?? Promise.resolve())));
    this.conn?.disconnect();
    if (this.fsConn !== this.conn) this.fsConn?.disconnect();
    await quiet(this.redis?.proc?.stop(10_000) ?? Promise.resolve());
    await quiet(this.fsRedis?.proc?.stop(10_000) ?? Promise.resolve());
    if (this.netns) await quiet(this.netns.destroy());
  }
}

/**
 * A writer per node: a Python loop that writes files of seeded sizes and contents through that
 * node's mount, each opened, written in pieces and closed (every fifth through a hard link of
 * an empty file NAME.a, which must then hold the same), and appends to its ledger (local disk)
 * `ok NAME SIZE SHA256 T0 T1` for each name when open, every write and close succeeded, else
 * `fail NAME ERRNO T0 T1` (times: unix seconds). It stops when the stop file exists.
 */
export const WRITER = `
import errno, hashlib, os, random, sys, time
mnt, node, seed, ledger, stop = sys.argv[1:6]
rng = random.Random(int(seed))
d = os.path.join(mnt, 'w-' + node)
out = open(ledger, 'a', buffering=1)
i = 0
while not os.path.exists(stop) and i < 5000:
    r = rng.random()
    size = rng.randint(0, 16384) if r < 0.6 else rng.randint(16384, 524288) if r < 0.92 else rng.randint(524288, 3 << 20)
    data = rng.randbytes(size)
    name = 'f%04d' % i
    # every fifth file is written through a hard link: NAME.a made empty, linked as NAME
    names = [name, name + '.a'] if i % 5 == 4 else [name]
    t0 = time.time()
    try:
        os.makedirs(d, exist_ok=True)
        if len(names) == 2:
            os.close(os.open(os.path.join(d, names[1]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            os.link(os.path.join(d, names[1]), os.path.join(d, name))
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            n = 0
            while n < size:
                n += os.write(fd, data[n:n + rng.randint(1, 262144)])
        finally:
            os.close(fd)
        for nm in names:
            out.write('ok %s %d %s %.6f %.6f\\n' % (nm, size, hashlib.sha256(data).hexdigest(), t0, time.time()))
    except OSError as e:
        out.write('fail %s %s %.6f %.6f\\n' % (name, errno.errorcode.get(e.errno, str(e.errno)), t0, time.time()))
    i += 1
    time.sleep(rng.uniform(0.2, 0.8))
`;

export interface LedgerEntry {
  writer: string;
  name: string;
  ok: boolean;
  size?: number;
  sha256?: string;
  errno?: string;
  /** ms since the epoch. */
  t0: number;
  t1: number;
}

export class Writer {
  proc?: Proc;
  readonly ledger: string;
  readonly stopFile: string;

  constructor(readonly node: string, readonly mount: string, readonly root: string, readonly seed: number) {
    this.ledger = join(root, `ledger-${node}`);
    this.stopFile = join(root, `stop-writer-${node}`);
  }

  start(): void {
    const script = join(this.root, 'writer.py');
    if (!existsSync(script)) writeFileSync(script, WRITER);
    this.proc = new Proc(`writer ${this.node}`, ['python3', script, this.mount, this.node, String(this.seed), this.ledger, this.stopFile],
      join(this.root, 'logs', `writer-${this.node}.log`), process.env);
  }

  entries(): LedgerEntry[] {
    if (!existsSync(this.ledger)) return [];
    return readFileSync(this.ledger, 'utf8').split('\n').filter(Boolean).map((l) => {
      const f = l.split(' ');
      return f[0] === 'ok'
        ? { writer: this.node, name: f[1], ok: true, size: Number(f[2]), sha256: f[3], t0: Number(f[4]) * 1000, t1: Number(f[5]) * 1000 }
        : { writer: this.node, name: f[1], ok: false, errno: f[2], t0: Number(f[3]) * 1000, t1: Number(f[4]) * 1000 };
    });
  }

  async stop(timeoutMs: number): Promise<void> {
    writeFileSync(this.stopFile, '');
    if (this.proc?.running) await within(`the writer of ${this.node} to finish its last file and exit`, this.proc.exited, timeoutMs);
  }
}

/**
 * What the copies tests (copies, decommission) and bench/copies.ts share: a Mount applied through
 * the API, seeded file contents, and reads through a mount from a process of their own.
 */
export async function applyMount(c: FaultCluster, spec: string): Promise<void> {
  const yaml = `apiVersion: oswalk.dev/v1\nkind: Mount\nmetadata: {name: cluster}\nspec: ${spec}\n`;
  const res = await fetch(`${c.apiUrl}/v1/apply`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ source: 'test', files: [{ source: 'mount.yaml', yaml }] }),
  });
  if (res.status !== 200) throw new Error(`applying the Mount: HTTP ${res.status} ${await res.text()}`);
  // The FS processes read the Mount again when theirs is 5 s old (PolicyCache).
  await sleep(5500);
}

/** Seeded file contents and sizes: SHA-256 in counter mode, the same for the same seed. */
export class SeededFiles {
  constructor(readonly seed: number) {}

  bytes(label: string, size: number): Buffer {
    const out = Buffer.alloc(size);
    for (let i = 0; i * 32 < size; i++) createHash('sha256').update(`${this.seed}:${label}:${i}`).digest().copy(out, i * 32);
    return out;
  }

  /** Most files small, every `bigEvery`th (at `bigAt` in the cycle) a few MB: several chunks. */
  size(i: number, bigEvery: number, bigAt: number): number {
    const h = createHash('sha256').update(`${this.seed}:size:${i}`).digest().readUInt32BE(0);
    return i % bigEvery === bigAt ? 1_500_000 + (h % 2_500_000) : 1 + (h % 200_000);
  }
}

export const sha256hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * SHA-256 of every file of the list read through a mount ('/a/b' → hex, or `error: <strerror>`),
 * in a process of its own: the test process must not block on FUSE.
 */
export function readAllThrough(mount: string, paths: string[]): Promise<Map<string, string>> {
  const script = `
import hashlib, sys, json
out = {}
for p in json.load(sys.stdin):
    try:
        with open(sys.argv[1] + p, 'rb') as f: out[p] = hashlib.sha256(f.read()).hexdigest()
    except OSError as e: out[p] = 'error: ' + (e.strerror or str(e))
print(json.dumps(out))`;
  return new Promise((resolve, reject) => {
    const child = execFile('python3', ['-c', script, mount], { timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`reading through ${mount}: ${err.message}\n${stderr}`));
      else resolve(new Map(Object.entries(JSON.parse(stdout) as Record<string, string>)));
    });
    child.stdin!.end(JSON.stringify(paths));
  });
}

/** The tail of every log of a run in the test's own output (CI keeps no files): for a failed run. */
export function printLogTails(root: string, lines = 30): void {
  for (const f of readdirSync(join(root, 'logs'))) {
    const all = readFileSync(join(root, 'logs', f), 'utf8').trimEnd().split('\n');
    console.log(`--- logs/${f}, last ${Math.min(lines, all.length)} of ${all.length} lines:\n${all.slice(-lines).map((l) => l.slice(0, 400)).join('\n')}`);
  }
}
