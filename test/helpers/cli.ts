import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/paths.js';

export const OSWALK_BIN = join(packageRoot(), 'bin', 'oswalk.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let configHome: string | undefined;

/**
 * XDG_CONFIG_HOME for the CLI in this test process: a directory of its own, removed at exit, so
 * that `oswalk up` in a test never writes the user's own config (~/.config/oswalk) and a real
 * one never steers a test.
 */
export function testConfigHome(): string {
  if (!configHome) {
    const dir = mkdtempSync(join(tmpdir(), 'oswalk-config-home-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    configHome = dir;
  }
  return configHome;
}

/** The environment the CLI runs with in tests: quiet logs, a config home of the test's own, then `extra`. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, OSWALK_LOG_LEVEL: 'warn', XDG_CONFIG_HOME: testConfigHome(), ...extra };
}

/** Run the real `oswalk` command as a user would, in cwd, and collect its output. */
export function oswalk(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OSWALK_BIN, ...args], {
      cwd: opts.cwd, env: cliEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Start a long-running `oswalk` command (up, agent, control-plane) and wait for a line on stdout. */
export async function startOswalk(args: string[], waitFor: RegExp, opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; ownProcessGroup?: boolean } = {}): Promise<{ child: ChildProcess; output: () => string; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, [OSWALK_BIN, ...args], {
    cwd: opts.cwd, env: cliEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'],
    // As a shell runs a job: Ctrl-C then signals the whole group (process.kill(-pid)).
    detached: opts.ownProcessGroup ?? false,
  });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oswalk ${args.join(' ')} did not print ${waitFor} in time; output:\n${out}`)), opts.timeoutMs ?? 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(waitFor);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`oswalk ${args.join(' ')} exited with ${code}; output:\n${out}`));
    });
  });
  return { child, output: () => out, match };
}

/** Send a signal and wait for the exit; returns the exit code. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGINT', timeoutMs = 20_000): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}
