import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, OSWALK_BIN, oswalk, startOswalk, stopChild, testConfigHome } from '../helpers/cli.js';
import { freePort, TestRedis } from '../helpers/redis.js';
import { packageRoot } from '../../src/util/paths.js';
import { httpStatus } from '../helpers/http-status.js';

/** Retry fn until it returns want (or stops throwing with it) within timeoutMs. */
async function eventually<T>(fn: () => T, want: T, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let got: T | undefined;
    let err: unknown;
    try {
      got = fn();
    } catch (e) {
      err = e;
    }
    if (got === want) return;
    if (Date.now() > deadline) assert.fail(`still ${err ? `failing: ${(err as Error).message}` : JSON.stringify(got)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('oswalk CLI: cluster init, up, status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oswalk-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('cluster init writes a token, a cluster CA with the control plane\'s certificate, and a cluster manifest, and refuses to overwrite without --force', async () => {
    const r = await oswalk(['cluster', 'init', '--nodes', 'node1,node2,node3', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(readFileSync(join(dir, '.oswalk', 'config.json'), 'utf8'));
    assert.match(cfg.token, /^[\w-]{32}$/);
    assert.equal(cfg.api, 'https://127.0.0.1:7000');
    const pki = join(dir, '.oswalk', 'pki');
    // The config carries the CA itself, so that it alone is enough on another machine.
    assert.equal(cfg.caCert, readFileSync(join(pki, 'ca.crt'), 'utf8').trim());
    const cert = new X509Certificate(readFileSync(join(pki, 'control-plane.crt')));
    assert.ok(cert.verify(new X509Certificate(cfg.caCert).publicKey));
    assert.equal(cert.subjectAltName, 'IP Address:127.0.0.1');
    assert.match(r.stdout, new RegExp(`Token: ${cfg.token}`));
    assert.match(r.stdout, new RegExp(`^ {2}OSWALK_TOKEN=\\S+ oswalk agent --node node3 --control-plane https://127\\.0\\.0\\.1:7000 --ca-cert ${pki}/ca\\.crt `, 'm'));
    // Redis' URL may carry its password: the printed command puts it in the environment.
    assert.match(r.stdout, new RegExp(`^ {2}OSWALK_TOKEN=\\S+ OSWALK_REDIS_URL=redis://127\\.0\\.0\\.1:6379 oswalk control-plane --listen 0\\.0\\.0\\.0:7000 --tls-cert ${pki}/control-plane\\.crt --tls-key ${pki}/control-plane\\.key$`, 'm'));
    assert.doesNotMatch(r.stdout, /--redis/);
    const manifest = readFileSync(join(dir, '.oswalk', 'cluster.yaml'), 'utf8');
    assert.equal(manifest.match(/kind: Node/g)?.length, 3);
    assert.match(manifest, /kind: Mount/);

    const again = await oswalk(['cluster', 'init', '--nodes', 'node1', '--dir', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists: pass --force/);
    assert.equal(JSON.parse(readFileSync(join(dir, '.oswalk', 'config.json'), 'utf8')).token, cfg.token);
  });

  it('control-plane takes Redis from OSWALK_REDIS_URL, keeping the URL off its command line, and serves HTTPS with the certificate cluster init made there', async () => {
    const redis = await TestRedis.start();
    const port = await freePort();
    // Started where cluster init ran: it finds .oswalk/pki there by itself.
    const child = spawn(process.execPath, [OSWALK_BIN, 'control-plane', '--listen', `127.0.0.1:${port}`], {
      cwd: dir, env: { ...process.env, OSWALK_LOG_LEVEL: 'warn', OSWALK_TOKEN: 'env-token', OSWALK_REDIS_URL: redis.url }, stdio: 'ignore',
    });
    const ca = readFileSync(join(dir, '.oswalk', 'pki', 'ca.crt'), 'utf8');
    try {
      for (const deadline = Date.now() + 20_000; ;) {
        if (child.exitCode !== null) assert.fail(`control-plane exited with ${child.exitCode}`);
        if (await httpStatus(`https://127.0.0.1:${port}/readyz`, ca) === 200) break;
        if (Date.now() > deadline) assert.fail('control-plane not ready within 20 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
      assert.doesNotMatch(cmdline, /redis:/);
      // The CLI there trusts the CA from the config cluster init wrote.
      const st = await oswalk(['status'], { cwd: dir, env: { OSWALK_API: `https://127.0.0.1:${port}`, OSWALK_TOKEN: 'env-token' } });
      assert.equal(st.code, 0, st.stderr);
      assert.match((await oswalk(['control-plane', '--help'])).stdout, /env:\s+OSWALK_REDIS_URL/);
    } finally {
      await stopChild(child, 'SIGTERM');
      await redis.stop();
    }
  });

  it('rejects bad node names with a usable message and exit code 2 (a usage error)', async () => {
    const r = await oswalk(['cluster', 'init', '--nodes', 'ok,Bad_Name', '--dir', dir, '--force']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"Bad_Name" is not a valid node name/);
  });

  it('cluster certs keeps the CA and makes the control plane a new certificate for the names given; plain HTTP only with --insecure-http', async () => {
    const pki = join(dir, '.oswalk', 'pki');
    const ca = readFileSync(join(pki, 'ca.crt'), 'utf8');
    const r = await oswalk(['cluster', 'certs', '--dir', dir, '--san', 'cp.example, 10.0.0.5,::1', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).caCreated, false);
    assert.equal(readFileSync(join(pki, 'ca.crt'), 'utf8'), ca);
    const cert = new X509Certificate(readFileSync(join(pki, 'control-plane.crt')));
    assert.equal(cert.subjectAltName, 'DNS:cp.example, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1');
    assert.ok(cert.verify(new X509Certificate(ca).publicKey));
    assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(join(pki, 'control-plane.key')))));
    const bad = await oswalk(['cluster', 'certs', '--dir', dir, '--san', 'cp.example,not a name']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'error: --san: "not a name" is neither an IP address nor a DNS name, so no certificate can be for it\n');

    const plain = mkdtempSync(join(tmpdir(), 'oswalk-plain-'));
    try {
      const refused = await oswalk(['cluster', 'init', '--nodes', 'a', '--dir', plain, '--control-plane', 'http://cp.example:7000']);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /^error: --control-plane http:\/\/cp\.example:7000: plain HTTP sends the token in clear text; use https:\/\/ .*or pass --insecure-http to mean it\n$/);
      assert.ok(!existsSync(join(plain, '.oswalk')), 'nothing written');
      const insecure = await oswalk(['cluster', 'init', '--nodes', 'a', '--dir', plain, '--control-plane', 'http://cp.example:7000', '--insecure-http']);
      assert.equal(insecure.code, 0, insecure.stderr);
      assert.match(insecure.stdout, /^INSECURE: no certificates \(--insecure-http\)/m);
      assert.match(insecure.stdout, /oswalk control-plane --listen 0\.0\.0\.0:7000 --insecure-http$/m);
      assert.equal(JSON.parse(readFileSync(join(plain, '.oswalk', 'config.json'), 'utf8')).caCert, undefined);
      assert.ok(!existsSync(join(plain, '.oswalk', 'pki')));
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });

  it('fails with exit code 2 on usage errors and 3 when the control plane is unreachable', async () => {
    assert.equal((await oswalk(['no-such-command'])).code, 2);
    const r = await oswalk(['status', '--api', 'http://127.0.0.1:1', '--token', 'x']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot reach the control plane at http:\/\/127.0.0.1:1/);
  });

  it('up starts Redis, the control plane and agents; later commands there need no flags; Ctrl-C leaves nothing behind', async () => {
    const upDir = mkdtempSync(join(tmpdir(), 'oswalk-up-'));
    // oswalk on PATH as the set-up puts it there (scripts/link-bin.sh), in a directory of the test's.
    const bin = join(dir, 'bin');
    execFileSync(join(packageRoot(), 'scripts', 'link-bin.sh'), [bin], { stdio: 'ignore' });
    const path = `${bin}:${process.env.PATH}`;
    const up = await startOswalk(['up', '--dir', upDir, '--nodes', '2'], /Try: .*\n/, { cwd: upDir, timeoutMs: 60_000, env: { PATH: path } });
    const env = { OSWALK_API: '', OSWALK_TOKEN: '' };
    const userConfig = join(testConfigHome(), 'oswalk', 'config.json');
    try {
      // The banner's advice works as printed, from any directory: the user's config names this cluster.
      assert.match(up.output(), new RegExp(`^ {2}Config: ${upDir}/\\.oswalk/config\\.json for oswalk commands run from ${upDir}, and ${userConfig} for oswalk commands run anywhere else$`, 'm'));
      assert.match(up.output(), /^Try: oswalk status {4}oswalk run -- uname -n {4}Stop: Ctrl-C$/m);
      const local = JSON.parse(readFileSync(join(upDir, '.oswalk', 'config.json'), 'utf8'));
      assert.deepEqual(JSON.parse(readFileSync(userConfig, 'utf8')), local);
      assert.equal(local.nodesDir, join(upDir, '.oswalk', 'nodes'));
      assert.equal(statSync(userConfig).mode & 0o777, 0o600);
      // The API is HTTPS, its certificate signed by the cluster CA up made, which the configs name.
      const pki = join(upDir, '.oswalk', 'pki');
      assert.match(local.api, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.match(up.output(), new RegExp(`^ {2}API: {4}${local.api} \\(HTTPS; its certificate is signed by the cluster CA ${pki}/ca\\.crt\\)$`, 'm'));
      assert.equal(local.caCert, readFileSync(join(pki, 'ca.crt'), 'utf8').trim());
      assert.equal(new X509Certificate(readFileSync(join(pki, 'control-plane.crt'))).subjectAltName, 'IP Address:127.0.0.1, DNS:localhost');
      for (const f of ['ca.crt', 'ca.key', 'control-plane.crt', 'control-plane.key']) assert.equal(statSync(join(pki, f)).mode & 0o777, 0o600, f);
      const elsewhere = mkdtempSync(join(tmpdir(), 'oswalk-elsewhere-'));
      try {
        const tried = execFileSync('sh', ['-c', 'oswalk status'], { cwd: elsewhere, env: cliEnv({ ...env, PATH: path }), encoding: 'utf8' });
        assert.match(tried, /Nodes: 2 ready of 2/);
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }

      const st = await oswalk(['status', '--output', 'json'], { cwd: upDir, env });
      assert.equal(st.code, 0, st.stderr);
      const status = JSON.parse(st.stdout);
      assert.deepEqual(status.nodes.map((n: { name: string; status: string }) => [n.name, n.status]), [['node1', 'ready'], ['node2', 'ready']]);
      assert.ok(status.nodes.every((n: { cpus: number }) => n.cpus > 0));
      const table = await oswalk(['status'], { cwd: upDir, env });
      assert.match(table.stdout, /Nodes: 2 ready of 2/);
      assert.match(table.stdout, /node1\s+ready\s+process/);

      const run = await oswalk(['run', '--', 'sh', '-c', 'echo "hello from $OSWALK_NODE"; echo oops >&2; exit 3'], { cwd: upDir, env });
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stdout, /^hello from node[12]\n$/);
      assert.match(run.stderr, /oops/);

      const applied = await oswalk(['apply', '-f', join(packageRoot(), 'manifests', 'examples', 'hello-job.yaml')], { cwd: upDir, env });
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stdout, /^job\/\S+ created$/m);
      const again = await oswalk(['apply', '-f', join(packageRoot(), 'manifests', 'examples', 'hello-job.yaml')], { cwd: upDir, env });
      assert.match(again.stdout, /unchanged/);

      // The unified filesystem: ./cluster is node1's view; node2's mount sees the same tree.
      const node2View = join(upDir, '.oswalk', 'nodes', 'node2', 'cluster');
      writeFileSync(join(upDir, 'cluster', 'from-node1.txt'), 'written through node1\n');
      writeFileSync(join(upDir, '.oswalk', 'nodes', 'node2', 'export', 'exported.txt'), 'exported by node2\n');
      await eventually(() => readFileSync(join(node2View, 'from-node1.txt'), 'utf8'), 'written through node1\n');
      await eventually(() => readFileSync(join(upDir, 'cluster', 'exported.txt'), 'utf8'), 'exported by node2\n');
      const versions = await oswalk(['versions', 'exported.txt', '-o', 'json'], { cwd: upDir, env });
      // node2's heartbeat (every second) reports the file its export directory contributes.
      for (let i = 0; ; i++) {
        const nodes = JSON.parse((await oswalk(['status', '-o', 'json'], { cwd: upDir, env })).stdout).nodes as { name: string; exportFiles?: number }[];
        if (nodes.find((n) => n.name === 'node2')?.exportFiles === 1) break;
        if (i > 20) assert.fail(`node2 never reported 1 export file: ${JSON.stringify(nodes)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.deepEqual(JSON.parse(versions.stdout).items.map((v: { node: string; current: boolean }) => [v.node, v.current]), [['node2', true]]);
      // A restore made here is node1's (the node of ./cluster), not this host's.
      const restored = await oswalk(['restore', 'exported.txt', JSON.parse(versions.stdout).items[0].id, '-o', 'json'], { cwd: upDir, env: { ...env, OSWALK_NODE: '' } });
      assert.equal(restored.code, 0, restored.stderr);
      assert.equal(JSON.parse(restored.stdout).node, 'node1');
      // A job started from inside the mount runs in the same directory of the unified tree.
      mkdirSync(join(upDir, 'cluster', 'work'));
      const inDir = await oswalk(['run', '--', 'sh', '-c', 'cat ../from-node1.txt; echo "job on $OSWALK_NODE" > out.txt'], { cwd: join(upDir, 'cluster', 'work'), env });
      assert.equal(inDir.code, 0, inDir.stderr);
      assert.equal(inDir.stdout, 'written through node1\n');
      await eventually(() => readFileSync(join(node2View, 'work', 'out.txt'), 'utf8').startsWith('job on node'), true);

      // One up per directory; the token is on no command line (every user can read those).
      const second = await oswalk(['up', '--nodes', '1'], { cwd: upDir, env });
      assert.equal(second.code, 1);
      assert.match(second.stderr, /oswalk up is already running in this directory \(pid \d+\)/);
      const token = JSON.parse(readFileSync(join(upDir, '.oswalk', 'config.json'), 'utf8')).token as string;
      assert.ok(!execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes(token));
      // The embedded Redis wants the password config.json holds, which is no one else's.
      const redisUrl = new URL(JSON.parse(readFileSync(join(upDir, '.oswalk', 'config.json'), 'utf8')).redisUrl);
      assert.match(execFileSync('redis-cli', ['-p', redisUrl.port, 'ping'], { encoding: 'utf8' }), /NOAUTH/);
      assert.equal(statSync(join(upDir, '.oswalk', 'config.json')).mode & 0o777, 0o600);
      // A killed agent and a killed redis-server are started again, and the cluster carries on.
      const agentPid = () => execFileSync('pgrep', ['-f', `agent --node node2 .*${upDir}`], { encoding: 'utf8' }).trim();
      const before = agentPid();
      execFileSync('pkill', ['-KILL', '-f', `redis-server 127.0.0.1:${new URL(JSON.parse(readFileSync(join(upDir, '.oswalk', 'config.json'), 'utf8')).redisUrl).port}`]);
      process.kill(Number(before), 'SIGKILL');
      await eventually(() => { const p = agentPid(); return p !== '' && p !== before; }, true, 20_000);
      const onNode2 = await oswalk(['run', '--node-selector', 'oswalk.dev/node=node2', '--', 'sh', '-c', 'echo back on $OSWALK_NODE'], { cwd: upDir, env });
      assert.equal(onNode2.stdout, 'back on node2\n', onNode2.stderr);

      const wrong = await oswalk(['get', 'nodes', '--token', 'wrong'], { cwd: upDir });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /refused the token/);
    } finally {
      assert.equal(await stopChild(up.child, 'SIGINT'), 0);
    }
    // No process of the cluster printed a Node warning: a TimeoutOverflowWarning once meant the
    // control plane and every agent renewed their certificates in a loop.
    assert.doesNotMatch(up.output(), /\w+Warning: /);
    assert.ok(!existsSync(userConfig), 'the user\'s config names no stopped cluster');
    assert.ok(existsSync(join(upDir, '.oswalk', 'redis', 'appendonlydir')));
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.ok(!mounts.includes(upDir), `no mount of this cluster is left:\n${mounts.split('\n').filter((l) => l.includes(upDir)).join('\n')}`);
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    assert.ok(!ps.includes(upDir), `no process of this cluster is left:\n${ps.split('\n').filter((l) => l.includes(upDir)).join('\n')}`);
    const port = new URL(JSON.parse(readFileSync(join(upDir, '.oswalk', 'config.json'), 'utf8')).redisUrl).port;
    assert.ok(!ps.includes(`redis-server 127.0.0.1:${port}`), 'the embedded redis-server is gone');
    rmSync(upDir, { recursive: true, force: true });
  });

  it('up --insecure-http serves plain HTTP, and its banner says that it is insecure', async () => {
    const upDir = mkdtempSync(join(tmpdir(), 'oswalk-up-'));
    const up = await startOswalk(['up', '--dir', upDir, '--nodes', '0', '--no-mount', '--insecure-http'], /Try: .*\n/, { cwd: upDir, timeoutMs: 60_000 });
    try {
      const cfg = JSON.parse(readFileSync(join(upDir, '.oswalk', 'config.json'), 'utf8'));
      assert.match(cfg.api, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(cfg.caCert, undefined);
      assert.match(up.output(), new RegExp(`^ {2}API: {4}${cfg.api} \\(INSECURE: plain HTTP, --insecure-http; the token crosses the network in clear text\\)$`, 'm'));
      assert.match(up.output(), /control plane listening on plain HTTP \(--insecure-http\): INSECURE/);
      const st = await oswalk(['status'], { cwd: upDir, env: { OSWALK_API: '', OSWALK_TOKEN: '' } });
      assert.equal(st.code, 0, st.stderr);
    } finally {
      assert.equal(await stopChild(up.child, 'SIGINT'), 0);
      rmSync(upDir, { recursive: true, force: true });
    }
  });

  it('Ctrl-C in a terminal (SIGINT to the whole process group) stops up, restarting nothing; another cluster\'s user config is left alone', async () => {
    const upDir = mkdtempSync(join(tmpdir(), 'oswalk-up-'));
    // The user's config, written for a cluster of theirs; and no oswalk on PATH.
    const configHome = join(upDir, 'config-home');
    const theirs = '{ "api": "http://cp.example:7000", "token": "theirs" }\n';
    mkdirSync(join(configHome, 'oswalk'), { recursive: true });
    writeFileSync(join(configHome, 'oswalk', 'config.json'), theirs);
    const up = await startOswalk(['up', '--dir', upDir, '--nodes', '1'], /Try: .*\n.*\n/, {
      cwd: upDir, timeoutMs: 60_000, ownProcessGroup: true, env: { XDG_CONFIG_HOME: configHome, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    assert.match(up.output(), new RegExp(`^ {2}Config: .*; ${configHome}/oswalk/config\\.json is left as it is \\(written for another cluster\\): elsewhere, pass --api and --token$`, 'm'));
    const bin = join(packageRoot(), 'bin', 'oswalk.js');
    assert.ok(up.output().includes(`Try: ${bin} status    ${bin} run -- uname -n    Stop: Ctrl-C\n(this is not the oswalk on your PATH: ${packageRoot()}/scripts/link-bin.sh links it there)\n`), up.output());
    const exited = new Promise<number | null>((r) => up.child.once('exit', (code) => r(code)));
    process.kill(-up.child.pid!, 'SIGINT');
    assert.equal(await exited, 0);
    assert.equal(readFileSync(join(configHome, 'oswalk', 'config.json'), 'utf8'), theirs);
    assert.doesNotMatch(up.output(), /starting it again/);
    await eventually(() => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes(upDir), false, 10_000);
    assert.ok(!existsSync(join(upDir, '.oswalk', 'up.pid')));
    rmSync(upDir, { recursive: true, force: true });
  });

  it('an up killed with SIGKILL leaves no agent behind, and the next up there takes over its data', async () => {
    const upDir = mkdtempSync(join(tmpdir(), 'oswalk-up-'));
    const env = { OSWALK_API: '', OSWALK_TOKEN: '' };
    const first = await startOswalk(['up', '--dir', upDir, '--nodes', '1'], /Nodes:\s+node1/, { cwd: upDir, timeoutMs: 60_000 });
    writeFileSync(join(upDir, 'cluster', 'kept.txt'), 'kept\n');
    const { redisPid } = JSON.parse(readFileSync(join(upDir, '.oswalk', 'up.pid'), 'utf8')) as { redisPid: number };
    first.child.kill('SIGKILL');
    await eventually(() => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes(`--state-dir ${upDir}`), false, 20_000);
    const second = await startOswalk(['up', '--dir', upDir, '--nodes', '1'], /Nodes:\s+node1/, { cwd: upDir, timeoutMs: 60_000 });
    try {
      assert.equal(readFileSync(join(upDir, 'cluster', 'kept.txt'), 'utf8'), 'kept\n');
      // The killed up's redis-server, still appending to the same file, was stopped.
      // Gone, or a zombie where nothing reaps orphans (a container's init): no command line.
      const cmdline = existsSync(`/proc/${redisPid}`) ? readFileSync(`/proc/${redisPid}/cmdline`, 'utf8') : '';
      assert.equal(cmdline, '', `the old redis-server ${redisPid} is gone`);
      assert.equal((await oswalk(['status'], { cwd: upDir, env })).code, 0);
    } finally {
      assert.equal(await stopChild(second.child, 'SIGINT'), 0);
    }
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    assert.ok(!ps.includes(upDir), `no process of this cluster is left:\n${ps.split('\n').filter((l) => l.includes(upDir)).join('\n')}`);
    rmSync(upDir, { recursive: true, force: true });
  });

  it('apply refuses a bad manifest with file, line and field, and applies nothing', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: oswalk.dev/v1\nkind: Job\nmetadata:\n  name: ok\nspec:\n  command: [\"true\"]\n---\napiVersion: oswalk.dev/v1\nkind: Job\nmetadata:\n  name: bad\nspec:\n  command: [\"true\"]\n  resources:\n    cpus: -1\n');
    const r = await oswalk(['apply', '-f', bad, '--api', 'http://127.0.0.1:1', '--token', 'x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:15: documents\[1\]\.spec\.resources\.cpus: /);
  });
});
