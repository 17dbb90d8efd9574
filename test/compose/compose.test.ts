/**
 * End to end against the compose cluster of compose.yaml (Redis, control plane, three agents,
 * and the monitoring profile: Prometheus, Alertmanager, the Redis exporter), brought up as the
 * README says: the base image, then `up` alone, which builds the other images (tags of this
 * test's own, so this checkout's code is what runs), shares the mount directory on the host and
 * makes the token. The README's first command and the example manifests run in the nodes'
 * default image; the examples share a file between agent-1 and agent-3 through the unified
 * filesystem; `oswalk status` shows three ready nodes; Prometheus scrapes every service and Redis through the
 * exporter, promtool accepts their metrics, the alert rules are loaded and a failed job's alert
 * reaches Alertmanager; `docker kill` of an agent: its job container is
 * killed by its guard within the node timeout, before the job starts again elsewhere, where it
 * finishes, and the node is marked down; `down -v` leaves nothing behind, the host's shared
 * mount directory included.
 *
 * The CLI runs inside the control-plane container (its OSWALK_API and OSWALK_TOKEN point it at
 * the cluster), so this tests the image as a user gets it. The cluster has its own project name,
 * shared mount directory and host ports, so it does not collide with one the user runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/redis.js';
import {
  DockerEngine, StopWaiting, alertNames, alertmanagerAlerts, composeCommand, containerIp, docker, getMetrics, mustRun, promAlertmanagers, promRules,
  promTargets, promtoolCheckMetrics, repoRoot, run, waitFor,
} from './docker.js';

const engine = await DockerEngine.ensure();
const compose = engine.skipReason ? undefined : composeCommand();
const skip = engine.skipReason ?? (compose ? undefined : 'neither `docker compose` nor docker-compose is installed');
if (!engine.skipReason && !compose) process.stderr.write(`\n!!!!! COMPOSE TEST SKIPPED: ${skip} !!!!!\n\n`);

const id = randomBytes(4).toString('hex');
const project = `oswalk-e2e-${id}`;
const shared = `/run/oswalk-e2e-${id}`;
const AGENTS = ['agent-1', 'agent-2', 'agent-3'];
/** The images `up` builds, under tags of this run's own (removed at the end). */
const IMAGES = {
  OSWALK_IMAGE: `oswalk-e2e-${id}:latest`, REDIS_IMAGE: `oswalk-e2e-${id}-redis:latest`, PROMETHEUS_IMAGE: `oswalk-e2e-${id}-prometheus:latest`,
  ALERTMANAGER_IMAGE: `oswalk-e2e-${id}-alertmanager:latest`, REDIS_EXPORTER_IMAGE: `oswalk-e2e-${id}-redis-exporter:latest`,
};

interface NodeView { name: string; status: string; cpus: number }
interface JobView { id: string; name: string; state: string; node?: string; lastNode?: string; attempt: number; startedAt?: string }

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && m.startsWith(`${dir}/`));
}

describe('compose cluster end to end', { skip }, () => {
  let env: NodeJS.ProcessEnv;
  let promPort = 0;
  let alertmanagerPort = 0;
  /** The cluster token the certs service made (read in `before`, as the README says). */
  let token = '';

  const composeRun = (...args: string[]) => mustRun(compose![0], [...compose!.slice(1), '-p', project, '--profile', 'monitoring', ...args], { env, timeoutMs: 10 * 60_000 });
  const containerOf = (service: string): string => {
    // certs and join-token have exited: v2 lists them only with --all, which 1.29 does not know (it lists them anyway).
    const cid = (compose!.length === 2 && (service === 'certs' || service === 'join-token') ? composeRun('ps', '--all', '-q', service) : composeRun('ps', '-q', service)).trim();
    if (!cid) throw new Error(`compose service ${service} has no container`);
    return cid;
  };
  /** The oswalk CLI of the image, inside the control-plane container. */
  const oswalk = (...args: string[]) => docker('exec', containerOf('control-plane'), 'oswalk', ...args);
  const status = (): NodeView[] => (JSON.parse(oswalk('status', '--output', 'json')) as { nodes: NodeView[] }).nodes;
  /** The job records the Job manifest `name` created (`get jobs --output json` → `{ items }`). */
  const jobsOf = (name: string): JobView[] => {
    const out = JSON.parse(oswalk('get', 'jobs', '--owner', `Job/${name}`, '--output', 'json')) as { items?: JobView[] };
    if (!Array.isArray(out.items)) throw new Error(`oswalk get jobs --output json: expected { items: [...] }, got ${JSON.stringify(out).slice(0, 300)}`);
    return out.items;
  };
  /** Waits until every record of the Job manifest `name` succeeded; a failed one ends the wait with its output. */
  const jobSucceeded = (name: string, timeoutMs: number) => waitFor(`${name} to succeed`, timeoutMs, () => {
    const j = jobsOf(name);
    const failed = j.find((x) => x.state === 'failed');
    if (failed) {
      const out = run('docker', ['exec', containerOf('control-plane'), 'oswalk', 'logs', failed.id]);
      throw new StopWaiting(`${name} failed on ${failed.node ?? failed.lastNode}: ${JSON.stringify(failed).slice(0, 600)}\n--- its output\n${(out.stdout + out.stderr).slice(-1500)}`);
    }
    return j.length > 0 && j.every((x) => x.state === 'succeeded') ? j : undefined;
  });
  const logsOf = (service: string) => run('docker', ['logs', '--tail', '60', containerOf(service)]);
  /**
   * The cluster's id, which labels its job containers (oswalk.cluster): another cluster on this
   * host (the user's, another test's) has an agent-1 too, and its containers are not ours.
   */
  let cluster: string | undefined;
  const clusterId = (): string | undefined => {
    if (cluster) return cluster;
    const redis = run(compose![0], [...compose!.slice(1), '-p', project, 'ps', '-q', 'redis'], { env }).stdout.trim();
    const id = redis ? redisCli(redis, 'hget', '{oswalk}:cluster', 'id').stdout.trim() : '';
    if (id) cluster = id;
    return cluster;
  };
  /** redis-cli in the Redis container, over TLS with the password, as its health check runs it. */
  const redisCli = (container: string, ...args: string[]) => run('docker', ['exec', container, 'sh', '-c',
    'REDISCLI_AUTH=$(cat /etc/oswalk/pki/redis.password) exec redis-cli --tls --cacert /etc/oswalk/pki/ca.crt -h 127.0.0.1 "$@"', 'redis-cli', ...args]);
  /** This cluster's job containers (all, running or not) with these labels too. */
  const jobContainers = (...labels: string[]): string[] =>
    run('docker', ['ps', '-aq', '--filter', `label=oswalk.cluster=${clusterId()}`, ...labels.flatMap((l) => ['--filter', `label=${l}`])]).stdout.split('\n').filter(Boolean);

  before(async () => {
    // README step 1 on a host that reaches no registry (as this one): the stand-in base image,
    // named in .env, which compose reads (a no-op when it is there).
    mustRun('bash', [join(repoRoot, 'docker', 'base-image.sh')], { timeoutMs: 15 * 60_000 });
    promPort = await freePort();
    alertmanagerPort = await freePort();
    // No OSWALK_TOKEN and no set-up of the host: `up` alone does both.
    const { OSWALK_TOKEN: _, ...inherited } = process.env;
    env = {
      ...inherited, ...IMAGES, OSWALK_SHARED_DIR: shared,
      OSWALK_CONTROL_PLANE_PORT: String(await freePort()), OSWALK_PROMETHEUS_PORT: String(promPort),
      OSWALK_ALERTMANAGER_PORT: String(alertmanagerPort),
    };
    const started = Date.now();
    const up = run(compose![0], [...compose!.slice(1), '-p', project, '--profile', 'monitoring', 'up', '-d'], { env, timeoutMs: 30 * 60_000 });
    if (up.status !== 0) {
      const logs = ['host-setup', 'certs', 'control-plane', 'join-token', ...AGENTS].map((s) => `--- ${s}\n${run(compose![0], [...compose!.slice(1), '-p', project, 'logs', '--no-color', '--tail', '30', s], { env }).stdout}`).join('\n');
      throw new Error(`compose up failed:\n${up.stderr.slice(-3000)}\n${logs}`);
    }
    process.stderr.write(`# compose up (building ${Object.keys(IMAGES).length} images) took ${Math.round((Date.now() - started) / 1000)} s\n`);
    // README: the token the certs service made, from its file in the pki volume.
    token = docker('exec', containerOf('control-plane'), 'cat', '/etc/oswalk/pki/token').trim();
  });

  after(() => {
    // Best effort when a test failed before `down` ran; the last test checks the clean way.
    const id = clusterId();
    run(compose![0], [...compose!.slice(1), '-p', project, '--profile', 'monitoring', 'down', '-v', '--timeout', '30'], { env, timeoutMs: 3 * 60_000 });
    const left = id ? jobContainers() : [];
    if (left.length) run('docker', ['rm', '-f', ...left]);
    run('bash', [join(repoRoot, 'docker', 'host-setup.sh'), '--down'], { env });
    run('docker', ['rmi', ...Object.values(IMAGES)]);
    // The build stages the classic builder leaves untagged.
    run('docker', ['image', 'prune', '-f', '--filter', 'label=dev.oswalk.stage=build']);
    return engine.stop();
  });

  test('up made a cluster token, printed it once in the certs log, and hands it to no environment', () => {
    assert.match(token, /^[0-9a-f]{48}$/);
    const certs = run(compose![0], [...compose!.slice(1), '-p', project, 'logs', '--no-color', 'certs'], { env }).stdout;
    assert.match(certs, new RegExp(`made the cluster token: ${token}`));
    assert.match(certs, /the cluster token: docker compose exec control-plane cat \/etc\/oswalk\/pki\/token/);
    for (const service of ['certs', 'join-token', 'control-plane', 'prometheus', ...AGENTS]) {
      assert.ok(!docker('inspect', containerOf(service)).includes(token), `${service}: the token is in the container's configuration`);
    }
  });

  test('the agents hold the CA certificate and a join token, which can do nothing but join: not the cluster token, no key', () => {
    const joinToken = docker('exec', containerOf(AGENTS[0]), 'cat', '/etc/oswalk/pki/token').trim();
    assert.match(joinToken, /^osw_/);
    for (const a of AGENTS) {
      const files = docker('exec', containerOf(a), 'ls', '-A', '/etc/oswalk/pki').split('\n').filter(Boolean).sort();
      assert.deepEqual(files, ['ca.crt', 'token'], `${a}: ${files.join(' ')}`);
      assert.equal(docker('exec', containerOf(a), 'cat', '/etc/oswalk/pki/token').trim(), joinToken, `${a} joins with the join token`);
      assert.ok(!docker('inspect', containerOf(a)).includes(joinToken), `${a}: the join token is in the container's configuration`);
    }
    assert.notEqual(joinToken, token);
    const made = run(compose![0], [...compose!.slice(1), '-p', project, 'logs', '--no-color', 'join-token'], { env }).stdout;
    assert.match(made, /made the join token compose-nodes \(role node\) the agents join with/);
    const asAgent = run('docker', ['exec', containerOf('control-plane'), 'oswalk', 'status', '--token', joinToken]);
    assert.notEqual(asAgent.status, 0);
    assert.match(asAgent.stderr, /the token "compose-nodes" is node, and GET \/v1\/status needs read-only/);
    // The control plane still signs with the CA's key, which only its container mounts.
    assert.match(docker('exec', containerOf('control-plane'), 'ls', '/etc/oswalk/pki'), /^ca\.key$/m);
  });

  test('oswalk status shows three ready nodes with CPUs', async () => {
    const nodes = await waitFor('three ready nodes', 90_000, () => {
      const n = status();
      return n.length === 3 && n.every((x) => x.status === 'ready') ? n : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${AGENTS.map((a) => `--- ${a}\n${logsOf(a).stdout}${logsOf(a).stderr}`).join('\n')}`);
    });
    assert.deepEqual(nodes.map((n) => n.name).sort(), AGENTS);
    // The agents joined over HTTPS (OSWALK_API in the image's CLI is https:// too): plain HTTP gets no answer.
    const plain = run('docker', ['exec', containerOf('control-plane'), 'oswalk', 'status', '--api', 'http://127.0.0.1:7000']);
    assert.equal(plain.status, 3, plain.stderr);
    assert.match(plain.stderr, /a control plane serves HTTPS unless started with --insecure-http/);
    for (const n of nodes) assert.ok(n.cpus > 0, `${n.name} offers no CPUs: ${JSON.stringify(n)}`);
    assert.match(clusterId() ?? '', /^\w+$/, 'the cluster has an id');
  });

  test('Redis speaks TLS only and wants its password, which no command line and no environment of the cluster\'s processes holds', () => {
    const redis = containerOf('redis');
    const password = docker('exec', redis, 'cat', '/etc/oswalk/pki/redis.password').trim();
    assert.match(password, /^[0-9a-f]{64}$/);
    assert.equal(redisCli(redis, 'ping').stdout.trim(), 'PONG');
    const plain = run('docker', ['exec', redis, 'redis-cli', '-h', '127.0.0.1', 'ping']);
    assert.notEqual(plain.stdout.trim(), 'PONG', 'plain TCP is not served');
    const anonymous = run('docker', ['exec', redis, 'redis-cli', '--tls', '--cacert', '/etc/oswalk/pki/ca.crt', '-h', '127.0.0.1', 'ping']);
    assert.match(anonymous.stdout + anonymous.stderr, /NOAUTH/);
    for (const service of ['redis', 'control-plane', ...AGENTS]) {
      const c = containerOf(service);
      const procs = docker('exec', c, 'sh', '-c', 'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; tr "\\0" "\\n" < $p/environ; done 2>/dev/null; true');
      assert.ok(procs.length > 0, service);
      assert.ok(!procs.includes(password), `${service}: the password is on a command line or in an environment`);
      assert.ok(!docker('inspect', c).includes(password), `${service}: the password is in the container's configuration`);
    }
    // The agents reach Redis over TLS: they are ready, so they did.
    assert.equal(status().filter((n) => n.status === 'ready').length, 3);
  });

  test('the README\'s first command runs in the nodes\' default image, with its output and exit code', () => {
    const r = run('docker', ['exec', containerOf('control-plane'), 'oswalk', 'run', '--', 'sh', '-c', 'echo hello from $OSWALK_NODE; exit 3']);
    assert.equal(r.status, 3, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^hello from agent-[123]\n$/);
  });

  test('the example Jobs without an image run to completion, from a manifest as from `run`', async () => {
    oswalk('apply', '-f', 'manifests/examples/hello-job.yaml');
    oswalk('apply', '-f', 'manifests/examples/parallel-job.yaml');
    const [hello] = await jobSucceeded('hello', 120_000);
    assert.match(oswalk('logs', hello.id), /^hello from OS Walk\n$/);
    const pieces = await jobSucceeded('parallel', 180_000);
    assert.equal(pieces.length, 6);
  });

  test('a file written by a job on agent-1 is read back by a job pinned to agent-3', async () => {
    oswalk('apply', '-f', 'manifests/examples/write-shared.yaml');
    const written = await jobSucceeded('write-shared', 120_000);
    assert.deepEqual(written.map((j) => j.node ?? j.lastNode), ['agent-1']);
    oswalk('apply', '-f', 'manifests/examples/read-shared.yaml');
    const read = await jobSucceeded('read-shared', 120_000);
    assert.deepEqual(read.map((j) => j.node ?? j.lastNode), ['agent-3']);
    // The same bytes through each agent's own mount, as the host sees them (rshared).
    const bytes = AGENTS.map((a) => readFileSync(join(shared, a, 'shared', 'out.txt')));
    assert.match(bytes[0].toString(), /^written on agent-1 at /);
    assert.deepEqual(bytes[2], bytes[0]);
    assert.deepEqual(bytes[1], bytes[0]);
  });

  test('Prometheus scrapes the control plane, every agent and Redis, and promtool accepts their metrics', async () => {
    const url = `http://127.0.0.1:${promPort}`;
    const targets = await waitFor('every Prometheus target up', 60_000, async () => {
      const t = await promTargets(url);
      return t.length === 6 && t.every((x) => x.health === 'up') ? t : undefined;
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify((await promTargets(url)).map((t) => [t.scrapeUrl, t.health, t.lastError]))}`);
    });
    assert.deepEqual(targets.map((t) => t.scrapeUrl).sort(), [
      'http://127.0.0.1:9090/metrics', 'http://redis-exporter:9121/metrics', 'https://agent-1:7001/metrics',
      'https://agent-2:7001/metrics', 'https://agent-3:7001/metrics', 'https://control-plane:7000/metrics',
    ]);
    const redisUp = await fetch(`${url}/api/v1/query?query=redis_up`);
    const up = ((await redisUp.json()) as { data: { result: Array<{ value: [number, string] }> } }).data.result;
    assert.deepEqual(up.map((r) => r.value[1]), ['1'], 'the exporter reaches Redis');
    // It reads Redis' password from its file, into its own environment: not into its command
    // line, nor into the container's configuration.
    const exporter = containerOf('redis-exporter');
    const password = docker('exec', containerOf('redis'), 'cat', '/etc/oswalk/pki/redis.password').trim();
    assert.ok(!docker('inspect', exporter).includes(password));
    const cmdlines = docker('exec', exporter, 'sh', '-c', 'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; done 2>/dev/null; true');
    assert.match(cmdlines, /prometheus-redis-exporter/);
    assert.ok(!cmdlines.includes(password));
    const prom = containerOf('prometheus');
    // The API is HTTPS under the cluster CA the certs service made, and so is every agent's
    // server, with the node certificate the control plane signed it for its name.
    const ca = docker('exec', containerOf('control-plane'), 'cat', '/etc/oswalk/pki/ca.crt');
    for (const [service, port] of [['control-plane', 7000], ...AGENTS.map((a) => [a, 7001] as const)] as const) {
      const res = await getMetrics(`https://${containerIp(containerOf(service))}:${port}/metrics`, { token, tls: { ca, name: service } });
      assert.equal(res.status, 200, `${service} /metrics`);
      const text = res.text;
      assert.match(text, /^oswalk_/m, `${service} serves oswalk_* metrics`);
      const check = promtoolCheckMetrics(prom, text);
      assert.equal(check.status, 0, `promtool check metrics on ${service}:\n${check.stdout}${check.stderr}`);
    }
  });

  test('Prometheus loads the alert rules and sends Alertmanager the alert of a failed job', async () => {
    const url = `http://127.0.0.1:${promPort}`;
    const rules = await promRules(url);
    assert.deepEqual(rules.map((r) => r.name).sort(), alertNames());
    for (const r of rules) assert.notEqual(r.health, 'err', `${r.name}: ${r.lastError}`);
    assert.deepEqual((await promAlertmanagers(url)).map((a) => a.url), ['http://alertmanager:9093/api/v2/alerts']);
    const manifest = [
      'apiVersion: oswalk.dev/v1', 'kind: Job', 'metadata:', '  name: fail-once', 'spec:',
      '  command: ["sh", "-c", "exit 3"]', '  backoffLimit: 0', '',
    ].join('\n');
    mustRun('docker', ['exec', '-i', containerOf('control-plane'), 'sh', '-c', 'cat > /tmp/fail-once.yaml'], { input: manifest });
    oswalk('apply', '-f', '/tmp/fail-once.yaml');
    await waitFor('fail-once to fail', 60_000, () => (jobsOf('fail-once')[0]?.state === 'failed' ? true : undefined));
    const am = `http://127.0.0.1:${alertmanagerPort}`;
    const alert = await waitFor('OSWalkJobsFailing in Alertmanager', 60_000, async () =>
      (await alertmanagerAlerts(am)).find((a) => a.labels.alertname === 'OSWalkJobsFailing'));
    assert.equal(alert.labels.severity, 'warning');
    assert.match(alert.annotations.summary, /jobs failed in the last 15 minutes/);
  });

  test('docker kill of an agent: its job container dies within the fence, before the job starts again elsewhere; the node is marked down', async (t) => {
    const manifest = [
      'apiVersion: oswalk.dev/v1', 'kind: Job', 'metadata:', '  name: survive-kill', 'spec:',
      '  command: ["sh", "-c", "sleep 15; echo survived"]', '  backoffLimit: 3',
      '  resources:', '    cpus: 100m', '    memory: 32Mi', '',
    ].join('\n');
    const cp = containerOf('control-plane');
    mustRun('docker', ['exec', '-i', cp, 'sh', '-c', 'cat > /tmp/survive-kill.yaml'], { input: manifest });
    oswalk('apply', '-f', '/tmp/survive-kill.yaml');
    const running = await waitFor('survive-kill to run', 60_000, () => {
      const j = jobsOf('survive-kill');
      return j.length === 1 && j[0].state === 'running' && j[0].node ? j[0] : undefined;
    });
    const victim = running.node!;
    const [jobContainer] = await waitFor(`the container of survive-kill on ${victim}`, 30_000, () => {
      const c = jobContainers(`oswalk.node=${victim}`, `oswalk.job=${running.id}`);
      return c.length === 1 && docker('inspect', '-f', '{{.State.Running}}', c[0]).trim() === 'true' ? c : undefined;
    });
    const agent = containerOf(victim);
    docker('kill', agent);
    const killedAt = await waitFor(`${victim}'s agent container to stop`, 30_000, () => {
      const st = JSON.parse(docker('inspect', '-f', '{{json .State}}', agent)) as { Running: boolean; FinishedAt: string };
      return st.Running ? undefined : Date.parse(st.FinishedAt);
    }, 100);
    // The killed agent moves the fence no more: the job's guard (the container's PID 1) kills
    // the job once it passes, the node timeout (5 s) less its margin (1 s) after the last
    // heartbeat, while the cluster may start the job elsewhere only once the timeout is over.
    const state = await waitFor(`${victim}'s job container to stop`, 30_000, () => {
      const st = JSON.parse(docker('inspect', '-f', '{{json .State}}', jobContainer)) as { Running: boolean; ExitCode: number; FinishedAt: string };
      return st.Running ? undefined : st;
    }, 100);
    const diedAt = Date.parse(state.FinishedAt);
    await waitFor(`${victim} marked down`, 60_000, () => (status().find((n) => n.name === victim)?.status === 'down' ? true : undefined));
    const [done] = await jobSucceeded('survive-kill', 120_000);
    assert.notEqual(done.node ?? done.lastNode, victim);
    assert.ok(done.attempt >= 2, `expected a second attempt, got ${JSON.stringify(done)}`);
    t.diagnostic(`agent ${victim} killed; its job container exited ${state.ExitCode} ${diedAt - killedAt} ms later; attempt ${done.attempt} was claimed on ${done.node ?? done.lastNode} ${Date.parse(done.startedAt!) - killedAt} ms after the kill`);
    assert.equal(state.ExitCode, 137, 'the guard killed the job (exit 137)');
    // The fence passes at most 4 s after the kill; the bound leaves room for a loaded machine.
    assert.ok(diedAt - killedAt < 8_000, `the job container died ${diedAt - killedAt} ms after its agent: its guard did not act on the fence`);
    assert.ok(diedAt < Date.parse(done.startedAt!), `the job container of the killed agent died (${diedAt - killedAt} ms) before the next attempt started (${Date.parse(done.startedAt!) - killedAt} ms)`);
    // Back up, the agent rejoins and removes the job container its killed self left behind.
    composeRun('start', victim);
    // What the agent said across its restarts, and what Docker and the cluster say of it.
    const restartReport = () => {
      const st = run('docker', ['inspect', '-f', '{{json .State}} restarts={{.RestartCount}}', agent]);
      const nodes = run('docker', ['exec', cp, 'oswalk', 'get', 'nodes']);
      return `--- docker state\n${st.stdout}${st.stderr}\n--- oswalk get nodes\n${nodes.stdout}${nodes.stderr}\n--- ${victim}\n${logsOf(victim).stdout}${logsOf(victim).stderr}\n--- control-plane\n${logsOf('control-plane').stdout}`;
    };
    const startedAt = Date.now();
    // Usually 10 to 30 s here (a container start, a join, the FS process's mount); the bound is
    // for a loaded machine, and a slow restart is reported below either way.
    await waitFor(`${victim} ready again`, 240_000, () => (status().find((n) => n.name === victim)?.status === 'ready' ? true : undefined))
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${restartReport()}`);
      });
    const restartMs = Date.now() - startedAt;
    t.diagnostic(`${victim} was ready again ${restartMs} ms after its container started`);
    if (restartMs > 60_000) t.diagnostic(`a slow restart:\n${restartReport()}`);
    await waitFor(`${victim}'s orphaned job container removed`, 60_000, () =>
      jobContainers(`oswalk.node=${victim}`, `oswalk.job=${running.id}`).length === 0 ? true : undefined);
  });

  test('down -v leaves no container, network, volume, mount or shared directory behind', () => {
    composeRun('down', '-v', '--timeout', '30');
    const byProject = `label=com.docker.compose.project=${project}`;
    assert.equal(docker('ps', '-aq', '--filter', byProject).trim(), '', 'containers left');
    assert.equal(docker('network', 'ls', '-q', '--filter', byProject).trim(), '', 'networks left');
    assert.equal(docker('volume', 'ls', '-q', '--filter', byProject).trim(), '', 'volumes left');
    assert.deepEqual(jobContainers(), [], 'job containers left');
    assert.deepEqual(mountsUnder(shared), [], 'mounts left under the shared directory');
    // The host-setup service unshared and removed it as it stopped, the agents' mount points with it.
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === shared), `${shared} is still a mount`);
    assert.equal(existsSync(shared), false, `${shared} is still there`);
  });
});
