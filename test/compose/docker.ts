import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';

/** The repository root (this file compiles to dist/test/compose/). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws on a non-zero exit (see `mustRun`). */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    env: opts.env ?? process.env,
    cwd: opts.cwd ?? repoRoot,
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) return { status: -1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error.message}` };
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command and throws, with its output, when it fails. */
export function mustRun(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
  }
  return r.stdout;
}

export function docker(...args: string[]): string {
  return mustRun('docker', args);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown from a `waitFor` probe to give up at once (the awaited state can no longer come). */
export class StopWaiting extends Error {}

/**
 * Polls `fn` until it returns a value other than undefined, or throws with `what` at the
 * deadline. Errors from `fn` count as "not yet", except StopWaiting.
 */
export async function waitFor<T>(what: string, timeoutMs: number, fn: () => T | undefined | Promise<T | undefined>, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * A Docker engine for a test file: the running one, or a dockerd this process starts (and stops
 * in `stop`). `skipReason` is set, and printed loudly, when none can run here, so the caller
 * skips with that reason instead of passing silently.
 */
export class DockerEngine {
  skipReason?: string;
  private started?: ReturnType<typeof spawn>;

  static async ensure(): Promise<DockerEngine> {
    const e = new DockerEngine();
    await e.start();
    if (e.skipReason) {
      process.stderr.write(`\n!!!!! DOCKER TESTS SKIPPED: ${e.skipReason} !!!!!\n\n`);
    }
    return e;
  }

  private async start(): Promise<void> {
    if (run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 15_000 }).status === 0) return;
    if (run('which', ['dockerd']).status !== 0) {
      this.skipReason = 'no Docker engine is running and dockerd is not installed';
      return;
    }
    if (process.getuid?.() !== 0) {
      this.skipReason = 'no Docker engine is running and starting dockerd needs root';
      return;
    }
    const logFile = '/tmp/oswalk-test-dockerd.log';
    const fd = openSync(logFile, 'a');
    this.started = spawn('dockerd', [], { stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.started.exitCode !== null) {
        this.skipReason = `dockerd exited ${this.started.exitCode} at start; see ${logFile}`;
        return;
      }
      if (run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 }).status === 0) return;
      if (Date.now() > deadline) {
        this.skipReason = `dockerd did not answer within 60 s; see ${logFile}`;
        await this.stop();
        return;
      }
      await sleep(500);
    }
  }

  /** Stops dockerd if this process started it. */
  async stop(): Promise<void> {
    const p = this.started;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGTERM');
    await Promise.race([new Promise((r) => p.once('exit', r)), sleep(30_000)]);
    if (p.exitCode === null) p.kill('SIGKILL');
  }
}

/** `docker compose` (v2) when present, else `docker-compose` (1.29). */
export function composeCommand(): string[] | undefined {
  if (run('docker', ['compose', 'version'], { timeoutMs: 15_000 }).status === 0) return ['docker', 'compose'];
  if (run('docker-compose', ['version'], { timeoutMs: 15_000 }).status === 0) return ['docker-compose'];
  return undefined;
}

/** Builds the images when their inputs changed (docker/build.sh caches by input hash). */
export function buildImages(): void {
  mustRun('bash', [join(repoRoot, 'docker', 'build.sh')], { timeoutMs: 15 * 60_000 });
}

export function hasCommand(cmd: string): boolean {
  return run('which', [cmd]).status === 0;
}


/** The container's IP address on its (first) network, reachable from the host on Linux. */
export function containerIp(container: string): string {
  const ip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', container).trim().split(' ')[0];
  if (!ip) throw new Error(`container ${container} has no IP address`);
  return ip;
}

export interface PromTarget {
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  labels: Record<string, string>;
}

/** Prometheus' view of its active scrape targets (GET /api/v1/targets). */
export async function promTargets(promUrl: string): Promise<PromTarget[]> {
  const res = await fetch(`${promUrl}/api/v1/targets?state=active`);
  if (!res.ok) throw new Error(`GET ${promUrl}/api/v1/targets: HTTP ${res.status}`);
  const body = (await res.json()) as { data: { activeTargets: PromTarget[] } };
  return body.data.activeTargets;
}

export interface PromRule {
  name: string;
  health: 'ok' | 'err' | 'unknown';
  lastError?: string;
}

/** The alerting rules Prometheus has loaded (GET /api/v1/rules?type=alert). */
export async function promRules(promUrl: string): Promise<PromRule[]> {
  const res = await fetch(`${promUrl}/api/v1/rules?type=alert`);
  if (!res.ok) throw new Error(`GET ${promUrl}/api/v1/rules: HTTP ${res.status}`);
  const body = (await res.json()) as { data: { groups: Array<{ rules: PromRule[] }> } };
  return body.data.groups.flatMap((g) => g.rules);
}

/** The Alertmanagers Prometheus sends alerts to (GET /api/v1/alertmanagers). */
export async function promAlertmanagers(promUrl: string): Promise<Array<{ url: string }>> {
  const res = await fetch(`${promUrl}/api/v1/alertmanagers`);
  if (!res.ok) throw new Error(`GET ${promUrl}/api/v1/alertmanagers: HTTP ${res.status}`);
  return ((await res.json()) as { data: { activeAlertmanagers: Array<{ url: string }> } }).data.activeAlertmanagers;
}

/** The alerts an Alertmanager holds (GET /api/v2/alerts). */
export async function alertmanagerAlerts(amUrl: string): Promise<Array<{ labels: Record<string, string>; annotations: Record<string, string> }>> {
  const res = await fetch(`${amUrl}/api/v2/alerts`);
  if (!res.ok) throw new Error(`GET ${amUrl}/api/v2/alerts: HTTP ${res.status}`);
  return (await res.json()) as Array<{ labels: Record<string, string>; annotations: Record<string, string> }>;
}

/** The names of the alerts docker/alerts.yml defines, sorted. */
export function alertNames(): string[] {
  const rules = load(readFileSync(join(repoRoot, 'docker', 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> };
  return rules.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort();
}

/**
 * GET a metrics endpoint at a container's address: plain, or over TLS trusting `tls.ca` alone,
 * the certificate checked for `tls.name` (the service's name on the compose network, which an
 * address is not). node:http(s) rather than fetch, which takes no CA of its own.
 */
export function getMetrics(url: string, opts: { token?: string; tls?: { ca: string; name: string } } = {}): Promise<{ status: number; text: string }> {
  const headers = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  return new Promise((resolve, reject) => {
    const done = (res: import('node:http').IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    };
    const req = opts.tls ? httpsGet(url, { headers, ca: opts.tls.ca, servername: opts.tls.name }, done) : httpGet(url, { headers }, done);
    req.on('error', reject);
  });
}

/** Runs `promtool check metrics` (in the Prometheus container) on an exposition text. */
export function promtoolCheckMetrics(promContainer: string, text: string): RunResult {
  return run('docker', ['exec', '-i', promContainer, 'promtool', 'check', 'metrics'], { input: text });
}
