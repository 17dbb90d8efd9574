/**
 * The mount plumbing compose.yaml relies on, with real containers: an agent-like container
 * (oswalk:latest as root with SYS_ADMIN, /dev/fuse, apparmor unconfined, the Docker socket, and
 * the host's shared directory bound :rshared, exactly as compose.yaml runs the agents) mounts a
 * tmpfs and a FUSE filesystem (fuse-native) under the shared directory, and starts sibling "job"
 * containers through the socket with dockerode, binding the mount :rslave as /cluster. The
 * siblings must see the mounts, whether made before or after they started, and lose them when
 * the agent unmounts; nothing may be left on the host afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerEngine, buildImages, docker, mustRun, repoRoot, run, waitFor } from './docker.js';

const engine = await DockerEngine.ensure();
const IMAGE = 'oswalk:latest';
const id = randomBytes(4).toString('hex');
const label = `dev.oswalk.test=propagation-${id}`;

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m !== undefined && (m === dir || m.startsWith(`${dir}/`)));
}

/** Runs node inside the agent container, from the package root so require() finds node_modules. */
function agentNode(agent: string, script: string, detach = false): string {
  return docker('exec', ...(detach ? ['-d'] : []), '-w', '/opt/oswalk', agent, 'node', '-e', script);
}

/** Creates and starts a job container through the agent's Docker socket, as the docker runtime does. */
function startJob(agent: string, name: string, source: string): void {
  agentNode(agent, `
    const Docker = require('dockerode');
    const d = new Docker();
    d.createContainer({
      Image: ${JSON.stringify(IMAGE)}, name: ${JSON.stringify(name)}, Cmd: ['sleep', '600'],
      Labels: { 'dev.oswalk.test': ${JSON.stringify(`propagation-${id}`)} },
      HostConfig: { Binds: [${JSON.stringify(`${source}:/cluster:rslave`)}] },
    }).then((c) => c.start()).catch((e) => { console.error(e.message); process.exit(1); });
  `);
}

function catInJob(job: string, file: string): { status: number; out: string } {
  const r = run('docker', ['exec', job, 'cat', `/cluster/${file}`]);
  return { status: r.status, out: r.status === 0 ? r.stdout : r.stderr };
}

// A read-only FUSE filesystem with one file, mounted with allow_other so that job containers
// running as another user (oswalk:latest runs as uid 10001) can read it.
const fuseScript = (mnt: string, content: string) => `
  const Fuse = require('fuse-native');
  const data = Buffer.from(${JSON.stringify(content)});
  const now = new Date();
  const stat = (mode, size) => ({ mtime: now, atime: now, ctime: now, nlink: 1, size, mode, uid: 0, gid: 0 });
  const ops = {
    readdir: (p, cb) => cb(0, p === '/' ? ['hello.txt'] : []),
    getattr: (p, cb) => p === '/' ? cb(0, stat(0o40755, 4096)) : p === '/hello.txt' ? cb(0, stat(0o100444, data.length)) : cb(Fuse.ENOENT),
    open: (p, flags, cb) => cb(0, 42),
    release: (p, fd, cb) => cb(0),
    read: (p, fd, buf, len, pos, cb) => { const n = data.copy(buf, 0, pos, Math.min(data.length, pos + len)); cb(n); },
  };
  const fuse = new Fuse(${JSON.stringify(mnt)}, ops, { force: true, mkdir: true, allowOther: true });
  fuse.mount((err) => { if (err) { console.error(err); process.exit(1); } });
  process.on('SIGTERM', () => fuse.unmount(() => process.exit(0)));
`;

describe('mount propagation: agent container → host → job containers', { skip: engine.skipReason }, () => {
  const shared = mkdtempSync('/tmp/oswalk-shared-');
  const env = { ...process.env, OSWALK_SHARED_DIR: shared };
  const agent = `oswalk-prop-agent-${id}`;

  before(() => {
    buildImages();
    mustRun('bash', [join(repoRoot, 'docker', 'host-setup.sh')], { env });
    docker('run', '-d', '--name', agent, '--label', label, '--user', 'root', '--init',
      '--cap-add', 'SYS_ADMIN', '--device', '/dev/fuse', '--security-opt', 'apparmor:unconfined',
      '-v', '/var/run/docker.sock:/var/run/docker.sock', '-v', `${shared}:${shared}:rshared`,
      IMAGE, 'sleep', 'infinity');
  });

  after(() => {
    const ids = run('docker', ['ps', '-aq', '--filter', `label=${label}`]).stdout.split('\n').filter(Boolean);
    if (ids.length) run('docker', ['rm', '-f', ...ids]);
    run('bash', [join(repoRoot, 'docker', 'host-setup.sh'), '--down'], { env });
    return engine.stop();
  });

  test('host-setup.sh made the directory an rshared mount', () => {
    assert.equal(mustRun('findmnt', ['-no', 'PROPAGATION', '--mountpoint', shared]).trim(), 'shared');
  });

  test('a tmpfs mounted in the agent reaches a job container started before and one started after', async () => {
    const dir = `${shared}/tmpfs`;
    docker('exec', agent, 'mkdir', '-p', dir);
    startJob(agent, `oswalk-prop-early-${id}`, dir);
    docker('exec', agent, 'sh', '-c', `mount -t tmpfs oswalk-test ${dir} && echo tmpfs-${id} > ${dir}/hello.txt`);
    assert.ok(mountsUnder(shared).includes(dir), `the tmpfs did not propagate to the host: ${mountsUnder(shared).join(', ')}`);
    startJob(agent, `oswalk-prop-late-${id}`, dir);
    for (const job of [`oswalk-prop-early-${id}`, `oswalk-prop-late-${id}`]) {
      const got = await waitFor(`${job} to see the tmpfs`, 10_000, () => {
        const r = catInJob(job, 'hello.txt');
        return r.status === 0 ? r.out : undefined;
      });
      assert.equal(got, `tmpfs-${id}\n`, job);
    }
    docker('exec', agent, 'umount', dir);
    assert.ok(!mountsUnder(shared).includes(dir), 'the unmount did not propagate to the host');
    assert.notEqual(catInJob(`oswalk-prop-early-${id}`, 'hello.txt').status, 0, 'the job still sees the unmounted tmpfs');
  });

  test('a FUSE filesystem served in the agent is readable in a job container as another user', async () => {
    const mnt = `${shared}/agent-x`;
    const content = `fuse-${id}\n`;
    docker('exec', agent, 'mkdir', '-p', mnt);
    // Started before the mount: the FUSE server restarting under a running job is this case.
    startJob(agent, `oswalk-prop-fuse-${id}`, mnt);
    agentNode(agent, fuseScript(mnt, content), true);
    await waitFor('the FUSE mount on the host', 15_000, () => (mountsUnder(shared).includes(mnt) ? true : undefined));
    assert.match(mustRun('findmnt', ['-no', 'FSTYPE', '--mountpoint', mnt]), /^fuse/);
    const job = `oswalk-prop-fuse-${id}`;
    assert.equal(docker('exec', job, 'id', '-u').trim(), '10001');
    const got = await waitFor('the job to read through FUSE', 10_000, () => {
      const r = catInJob(job, 'hello.txt');
      return r.status === 0 ? r.out : undefined;
    });
    assert.equal(got, content);
    docker('exec', agent, 'fusermount', '-u', mnt);
    await waitFor('the FUSE unmount to reach the host', 10_000, () => (mountsUnder(shared).includes(mnt) ? undefined : true));
  });

  test('killing the agent with a live FUSE mount leaves a stale mount that host-setup.sh --down removes', async () => {
    const mnt = `${shared}/agent-y`;
    docker('exec', agent, 'mkdir', '-p', mnt);
    agentNode(agent, fuseScript(mnt, 'x'), true);
    await waitFor('the FUSE mount on the host', 15_000, () => (mountsUnder(shared).includes(mnt) ? true : undefined));
    docker('kill', agent);
    // The FUSE server died with its container; the kernel keeps the mount (ENOTCONN) on the host.
    assert.ok(mountsUnder(shared).includes(mnt), 'expected the dead FUSE mount to remain until cleaned up');
    mustRun('bash', [join(repoRoot, 'docker', 'host-setup.sh'), '--down'], { env });
    assert.deepEqual(mountsUnder(shared), [], 'host-setup.sh --down left mounts behind');
  });
});
