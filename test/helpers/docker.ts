import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';

const run = promisify(execFile);

/** The image every docker test runs: busybox only, built locally (there is no registry here). */
export const TEST_IMAGE = 'oswalk-test/busybox:latest';
const APPLETS = ['sh', 'cat', 'echo', 'sleep', 'true', 'false', 'yes', 'head', 'ls', 'env', 'pwd', 'id', 'awk', 'kill', 'mkdir', 'wc'];

export type DockerStatus = { ok: true } | { ok: false; reason: string };

let started: { pid: number; log: string } | undefined;
let status: Promise<DockerStatus> | undefined;

async function answers(): Promise<boolean> {
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A Docker engine to test against: the running one, else a dockerd we start in the background
 * (and stop again in stopDockerIfStarted). Never throws: when no engine can run here the
 * reason comes back so the docker tests can skip loudly.
 */
export function ensureDocker(): Promise<DockerStatus> {
  status ??= (async (): Promise<DockerStatus> => {
    if (await answers()) return { ok: true };
    const log = join(mkdtempSync(join(tmpdir(), 'oswalk-dockerd-')), 'dockerd.log');
    const fd = openSync(log, 'a');
    let child;
    try {
      child = spawn('dockerd', [], { detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const exited = new Promise<number | null>((res) => {
      child.once('exit', (code) => res(code));
      child.once('error', () => res(-1));
    });
    child.unref();
    const deadline = Date.now() + 60_000;
    for (;;) {
      const code = await Promise.race([exited, new Promise((r) => setTimeout(r, 250, 'running'))]);
      if (code !== 'running') {
        const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
        return { ok: false, reason: `dockerd could not start (exit ${code}): ${tail || 'no log'} (log: ${log})` };
      }
      if (await answers()) {
        started = { pid: child.pid!, log };
        return { ok: true };
      }
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        return { ok: false, reason: `dockerd did not answer within 60 s (log: ${log})` };
      }
    }
  })();
  return status;
}

/** Stop the dockerd that ensureDocker started, if it started one. */
export async function stopDockerIfStarted(): Promise<void> {
  if (!started) return;
  const { pid } = started;
  started = undefined;
  status = undefined;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.kill(pid, 'SIGKILL');
}

/** Skip a test when no engine is available, loudly: on the console and in the test report. */
export function skipWithoutDocker(t: TestContext, s: DockerStatus): boolean {
  if (s.ok) return false;
  console.warn(`SKIP (no Docker engine): ${t.name}: ${s.reason}`);
  t.skip(`no Docker engine: ${s.reason}`);
  return true;
}

/**
 * Build TEST_IMAGE with `docker import` from a root filesystem holding only Debian's static
 * busybox and its applet links; skipped when the image already exists.
 */
export async function ensureTestImage(): Promise<void> {
  try {
    await run('docker', ['image', 'inspect', TEST_IMAGE]);
    return;
  } catch {
    // not there yet: build it
  }
  if (!existsSync('/bin/busybox') || !(await isStatic('/bin/busybox'))) {
    await run('apt-get', ['install', '-y', '-qq', 'busybox-static'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 });
  }
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-image-'));
  try {
    const rootfs = join(dir, 'rootfs');
    for (const d of ['bin', 'tmp', 'etc', 'cluster']) await mkdir(join(rootfs, d), { recursive: true });
    await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
    for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
    await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tar = join(dir, 'rootfs.tar');
    await run('tar', ['-C', rootfs, '--numeric-owner', '-cf', tar, '.']);
    await run('docker', ['import', '--change', 'ENV PATH=/bin', tar, TEST_IMAGE], { timeout: 120_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Debian's plain busybox package links dynamically; only busybox-static runs in an empty rootfs. */
async function isStatic(path: string): Promise<boolean> {
  const { stdout } = await run('file', ['-b', path]).catch(() => ({ stdout: '' }));
  if (stdout) return /statically linked|static-pie/.test(stdout);
  return (await run('dpkg-query', ['-W', '-f=${Status}', 'busybox-static']).then((r) => r.stdout, () => '')).includes('install ok installed');
}
