import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseManifests, type JobManifest, type MountManifest, type NodeManifest, type ServiceManifest,
} from '../../src/manifest/index.js';
import { job, manifestError } from './helpers.js';

describe('parseManifests: valid manifests', () => {
  it('fills the defaults of a process job', () => {
    const [m] = parseManifests(job('hello', '  command: ["echo", "hi"]'), 'hello.yaml') as [JobManifest];
    assert.deepEqual(m, {
      apiVersion: 'oswalk.dev/v1',
      kind: 'Job',
      metadata: { name: 'hello', labels: {} },
      spec: {
        command: ['echo', 'hi'], args: [], env: {}, resources: { cpus: 1, memoryBytes: 0 }, backoffLimit: 6, priority: 0,
        nodeSelector: {}, privileged: false, parallelism: 1, completions: 1,
      },
    });
  });

  it('leaves the runtime of a job without an image open, and takes runtime docker without one (the node\'s default image)', () => {
    const [docker] = parseManifests(job('a', '  command: [x]', '  runtime: docker'), 'a.yaml') as [JobManifest];
    assert.equal(docker.spec.runtime, 'docker');
    assert.equal(docker.spec.image, undefined);
    const [proc] = parseManifests(job('a', '  command: [x]', '  runtime: process'), 'a.yaml') as [JobManifest];
    assert.equal(proc.spec.runtime, 'process');
  });

  it('converts resources to cores and bytes and picks the docker runtime for an image', () => {
    const [m] = parseManifests(job('web',
      '  image: oswalk:latest',
      '  resources: { cpus: 500m, memory: 1.5Gi }',
      '  activeDeadlineSeconds: 60',
      '  nodeSelector: { oswalk.dev/node: agent-1 }',
    ), 'j.yaml') as [JobManifest];
    assert.equal(m.spec.runtime, 'docker');
    assert.deepEqual(m.spec.command, []);
    assert.deepEqual(m.spec.resources, { cpus: 0.5, memoryBytes: 1.5 * 2 ** 30 });
    assert.equal(m.spec.activeDeadlineSeconds, 60);
    assert.deepEqual(m.spec.nodeSelector, { 'oswalk.dev/node': 'agent-1' });
  });

  it('reads several documents of every kind, skipping empty ones', () => {
    const text = `---
apiVersion: oswalk.dev/v1
kind: Service
metadata: { name: web, labels: { app: web } }
spec: { command: [node, server.js], replicas: 2, resources: { memory: 100M } }
---
# only a comment
---
apiVersion: oswalk.dev/v1
kind: Node
metadata: { name: node1 }
spec: { capacity: { cpus: "1.5", memory: 2147483648 }, exportDir: /srv/export/ }
---
apiVersion: oswalk.dev/v1
kind: Mount
metadata: { name: cluster }
spec: { path: /cluster, replication: [{ prefix: shared/, copies: all }, { prefix: tmp/, copies: 1 }] }
---
apiVersion: oswalk.dev/v1
kind: Job
metadata: { name: web }
spec: { command: [x] }
---
`;
    const [svc, node, mount, j] = parseManifests(text, 'all.yaml') as [ServiceManifest, NodeManifest, MountManifest, JobManifest];
    assert.equal(svc.spec.replicas, 2);
    assert.equal(svc.spec.restartPolicy, 'Always');
    assert.equal(svc.spec.resources.memoryBytes, 100e6);
    assert.equal(svc.spec.resources.cpus, 1);
    assert.deepEqual(svc.metadata.labels, { app: 'web' });
    assert.deepEqual(node.spec, { name: 'node1', labels: {}, capacity: { cpus: 1.5, memoryBytes: 2 ** 31 }, exportDir: '/srv/export' });
    assert.deepEqual(mount.spec, {
      path: '/cluster', conflictPolicy: 'newest-wins', cacheSizeBytes: 2 ** 30, fileCacheSizeBytes: 4 * 2 ** 30,
      copies: 2, replication: [{ prefix: 'shared/', copies: 'all' }, { prefix: 'tmp/', copies: 1 }],
      rereplicateAfterSeconds: 600, rereplicateBytesPerSecond: 64 * 2 ** 20,
    });
    assert.equal(j.metadata.name, 'web', 'the same name under another kind is fine');
  });

  it('takes a Mount\'s file cache size, 0 turning it off', () => {
    const mount = (size: string) => (parseManifests(`${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  fileCacheSize: ${size}\n`, 'm.yaml')[0] as MountManifest).spec.fileCacheSizeBytes;
    assert.equal(mount('10Gi'), 10 * 2 ** 30);
    assert.equal(mount('0'), 0);
  });

  it('gives aliases their value and does not share objects between fields', () => {
    const [m] = parseManifests(job('a', '  command: &c [echo, hi]', '  args: *c'), 'alias.yaml') as [JobManifest];
    assert.deepEqual(m.spec.args, ['echo', 'hi']);
    m.spec.command.push('more');
    assert.deepEqual(m.spec.args, ['echo', 'hi']);
  });
});

interface ErrorCase {
  name: string;
  text: string;
  line: number | undefined;
  column?: number;
  field: string | undefined;
  reason: RegExp;
}

const V = 'apiVersion: oswalk.dev/v1';

const ERRORS: ErrorCase[] = [
  {
    name: 'YAML syntax error, line from the parser',
    text: job('a', '  command: [echo', '  image: x'),
    line: 7, field: undefined, reason: /^invalid YAML: .*check the indentation/,
  },
  {
    name: 'bad indentation',
    text: `${V}\nkind: Job\nmetadata:\n  name: a\n   labels: {}\n`,
    line: 5, field: undefined, reason: /^invalid YAML: bad indentation/,
  },
  {
    name: 'duplicate key',
    text: job('a', '  command: [x]', '  args: []', '  command: [y]'),
    line: 8, field: undefined, reason: /duplicated mapping key/,
  },
  {
    name: 'unknown kind',
    text: `${V}\nkind: Pod\nmetadata: { name: a }\nspec: {}\n`,
    line: 2, column: 1, field: 'kind', reason: /^unknown kind "Pod"; use one of Job, Service, Node, Mount$/,
  },
  {
    name: 'kind in the wrong case',
    text: `${V}\nkind: job\nmetadata: { name: a }\nspec: {}\n`,
    line: 2, field: 'kind', reason: /did you mean "Job"\?/,
  },
  {
    name: 'missing kind',
    text: `# a comment\n${V}\nmetadata: { name: a }\nspec: {}\n`,
    line: 2, field: 'kind', reason: /required field is missing; add kind:/,
  },
  {
    name: 'wrong apiVersion',
    text: `kind: Job\napiVersion: batch/v1\nmetadata: { name: a }\nspec: {}\n`,
    line: 2, field: 'apiVersion', reason: /^must be "oswalk.dev\/v1" \(got "batch\/v1"\)$/,
  },
  {
    name: 'not a mapping',
    text: '- a\n- b\n',
    line: 1, field: undefined, reason: /must be a mapping with apiVersion, kind, metadata and spec \(got a list\)/,
  },
  {
    name: 'wrong type',
    text: job('a', '  command: [x]', '  parallelism: "three"'),
    line: 7, column: 3, field: 'spec.parallelism', reason: /^must be an integer >= 1 \(got "three"\)$/,
  },
  {
    name: 'a string where a list belongs',
    text: job('a', '  command: echo hi'),
    line: 6, field: 'spec.command', reason: /must be a list of strings \(got "echo hi"\); write a list/,
  },
  {
    name: 'a number where a string belongs',
    text: job('a', '  command: [x]', '  env:', '    PORT: 8080'),
    line: 8, field: 'spec.env.PORT', reason: /must be a string \(got 8080\); quote it: "8080"/,
  },
  {
    name: 'item of a list',
    text: job('a', '  command:', '    - echo', '    - 42'),
    line: 8, field: 'spec.command[1]', reason: /must be a string \(got 42\)/,
  },
  {
    name: 'missing required field',
    text: `${V}\nkind: Job\nmetadata:\n  labels: { app: x }\nspec: { command: [x] }\n`,
    line: 3, field: 'metadata.name', reason: /^required field is missing; add name: under metadata$/,
  },
  {
    name: 'missing spec',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\n`,
    line: 1, field: 'spec', reason: /add spec: at the top/,
  },
  {
    name: 'missing mount path',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  cacheSize: 1Gi\n`,
    line: 4, field: 'spec.path', reason: /required field is missing; add path: under spec/,
  },
  {
    name: 'unknown field, at its own line',
    text: job('a', '  command: [x]', '  resources:', '    cpus: 1', '    disk: 1Gi'),
    line: 9, column: 5, field: 'spec.resources.disk', reason: /^unknown field "disk"; remove it or fix its spelling\. Fields allowed here: cpus, memory$/,
  },
  {
    name: 'misspelt field',
    text: job('a', '  comand: [x]'),
    line: 6, field: 'spec.comand', reason: /did you mean "command"\?/,
  },
  {
    name: 'unknown top-level field',
    text: `${V}\nkind: Job\nstatus: {}\nmetadata: { name: a }\nspec: { command: [x] }\n`,
    line: 3, field: 'status', reason: /^unknown field "status"/,
  },
  {
    name: 'negative cpus',
    text: job('a', '  command: [x]', '  resources:', '    memory: 1Gi', '    cpus: -1'),
    line: 9, column: 5, field: 'spec.resources.cpus', reason: /^must be a number > 0 \(got -1\)$/,
  },
  {
    name: 'zero memory',
    text: job('a', '  command: [x]', '  resources: { memory: 0 }'),
    line: 7, field: 'spec.resources.memory', reason: /^must be a whole number of bytes > 0 \(got 0\)$/,
  },
  {
    name: 'cpu quantity that does not parse',
    text: job('a', '  command: [x]', '  resources:', '    cpus: two'),
    line: 8, field: 'spec.resources.cpus', reason: /invalid CPU quantity "two"/,
  },
  {
    name: 'memory in milli-bytes',
    text: job('a', '  command: [x]', '  resources:', '    memory: 512m'),
    line: 8, field: 'spec.resources.memory', reason: /did you mean "512M" or "512Mi"\?/,
  },
  {
    name: 'negative backoffLimit',
    text: job('a', '  command: [x]', '  backoffLimit: -1'),
    line: 7, field: 'spec.backoffLimit', reason: /must be an integer >= 0 \(got -1\)/,
  },
  {
    name: 'fractional parallelism',
    text: job('a', '  command: [x]', '  parallelism: 1.5'),
    line: 7, field: 'spec.parallelism', reason: /must be an integer >= 1 \(got 1.5\)/,
  },
  {
    name: 'bad runtime',
    text: job('a', '  command: [x]', '  runtime: podman'),
    line: 7, field: 'spec.runtime', reason: /must be one of "docker", "process" \(got "podman"\)/,
  },
  {
    name: 'neither command nor image',
    text: job('a', '  priority: 5'),
    line: 5, field: 'spec.command', reason: /needs a command or an image/,
  },
  {
    name: 'privileged without the docker runtime',
    text: job('a', '  command: [x]', '  privileged: true'),
    line: 7, field: 'spec.privileged', reason: /only the docker runtime runs/,
  },
  {
    name: 'process runtime with an image',
    text: job('a', '  image: alpine', '  runtime: process'),
    line: 6, field: 'spec.image', reason: /takes no image/,
  },
  {
    name: 'bad name',
    text: `${V}\nkind: Job\nmetadata:\n  name: My_Job\nspec: { command: [x] }\n`,
    line: 4, column: 3, field: 'metadata.name', reason: /must be a DNS label .* \(got "My_Job"\)/,
  },
  {
    name: 'name too long',
    text: job('a'.repeat(64), '  command: [x]'),
    line: 4, field: 'metadata.name', reason: /at most 63 characters/,
  },
  {
    name: 'bad label key',
    text: `${V}\nkind: Job\nmetadata:\n  name: a\n  labels:\n    "bad key": x\nspec: { command: [x] }\n`,
    line: 6, field: 'metadata.labels["bad key"]', reason: /not a valid label key/,
  },
  {
    name: 'bad env name',
    text: job('a', '  command: [x]', '  env:', '    1X: "y"'),
    line: 8, field: 'spec.env["1X"]', reason: /not a valid environment variable name/,
  },
  {
    name: 'relative exportDir',
    text: `${V}\nkind: Node\nmetadata: { name: n1 }\nspec:\n  exportDir: data/export\n`,
    line: 5, field: 'spec.exportDir', reason: /must be an absolute path/,
  },
  {
    name: 'node spec.name that differs from metadata.name',
    text: `${V}\nkind: Node\nmetadata: { name: n1 }\nspec:\n  name: n2\n`,
    line: 5, field: 'spec.name', reason: /must match metadata.name "n1"/,
  },
  {
    name: 'a node name label set in a Node manifest',
    text: `${V}\nkind: Node\nmetadata: { name: n1 }\nspec:\n  labels:\n    oswalk.dev/node: n2\n`,
    line: 6, field: 'spec.labels["oswalk.dev/node"]', reason: /is set by the cluster to the node's name \("n1"\); remove it/,
  },
  {
    name: 'absolute replication prefix',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  replication:\n    - prefix: shared/\n      copies: 2\n    - prefix: /abs/\n      copies: all\n`,
    line: 9, field: 'spec.replication[1].prefix', reason: /must be a path relative to the root of the mount/,
  },
  {
    name: 'bad copies',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  replication:\n    - prefix: shared/\n      copies: every\n`,
    line: 8, field: 'spec.replication[0].copies', reason: /must be an integer >= 1 or "all" \(got "every"\)/,
  },
  {
    name: 'no copies at all',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  copies: 0\n`,
    line: 6, field: 'spec.copies', reason: /must be an integer >= 1 \(got 0\)/,
  },
  {
    name: 'a negative grace period',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  rereplicateAfterSeconds: -5\n`,
    line: 6, field: 'spec.rereplicateAfterSeconds', reason: />= 0/,
  },
  {
    name: 'bad re-replication rate',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  rereplicateRate: fast\n`,
    line: 6, field: 'spec.rereplicateRate', reason: /invalid memory quantity "fast"/,
  },
  {
    name: 'bad file cache size',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  fileCacheSize: lots\n`,
    line: 6, field: 'spec.fileCacheSize', reason: /invalid memory quantity "lots"/,
  },
  {
    name: 'unknown conflict policy',
    text: `${V}\nkind: Mount\nmetadata: { name: m }\nspec:\n  path: /cluster\n  conflictPolicy: oldest-wins\n`,
    line: 6, field: 'spec.conflictPolicy', reason: /must be "newest-wins"/,
  },
  {
    name: 'a Service field on a Job',
    text: job('a', '  command: [x]', '  replicas: 2'),
    line: 7, field: 'spec.replicas', reason: /unknown field "replicas"/,
  },
  {
    name: 'a Job field on a Service',
    text: `${V}\nkind: Service\nmetadata: { name: s }\nspec:\n  command: [x]\n  completions: 2\n`,
    line: 6, field: 'spec.completions', reason: /unknown field "completions"/,
  },
  {
    name: 'the first problem in the document wins',
    text: job('a', '  command: [x]', '  parallelism: 0', '  bogus: 1', '  completions: 0'),
    line: 7, field: 'spec.parallelism', reason: /must be an integer >= 1 \(got 0\)/,
  },
  {
    name: 'the second document, numbered',
    text: job('a', '  command: [x]') + '---\n' + job('b', '  command: [x]', '  resources: { cpus: 0 }'),
    line: 14, field: 'documents[1].spec.resources.cpus', reason: /must be a number > 0 \(got 0\)/,
  },
  {
    name: 'duplicate names of one kind',
    text: job('a', '  command: [x]') + '---\n' + job('b', '  command: [x]') + '---\n' + job('a', '  command: [y]'),
    line: 18, field: 'documents[2].metadata.name', reason: /a second Job named "a" \(the first is at line 4\)/,
  },
  {
    name: 'empty file',
    text: '',
    line: undefined, field: undefined, reason: /no manifests in the file/,
  },
  {
    name: 'only comments and separators',
    text: '# nothing here\n---\n---\n',
    line: undefined, field: undefined, reason: /no manifests in the file/,
  },
];

describe('parseManifests: errors name the file, line and field', () => {
  for (const c of ERRORS) {
    it(c.name, () => {
      const e = manifestError(() => parseManifests(c.text, 'jobs.yaml'));
      assert.equal(e.file, 'jobs.yaml');
      assert.equal(e.line, c.line, `line of: ${e.message}`);
      if (c.column !== undefined) assert.equal(e.column, c.column, `column of: ${e.message}`);
      assert.equal(e.field, c.field, `field of: ${e.message}`);
      assert.match(e.reason, c.reason);
      const where = c.line === undefined ? 'jobs.yaml' : `jobs.yaml:${c.line}`;
      assert.equal(e.message, `${where}: ${c.field ? `${c.field}: ` : ''}${e.reason}`);
    });
  }

  it('reads like file:line: field: reason', () => {
    const text = job('a', '  command: [x]', '  resources:', '    cpus: -1');
    assert.equal(manifestError(() => parseManifests(text, 'jobs.yaml')).message,
      'jobs.yaml:8: spec.resources.cpus: must be a number > 0 (got -1)');
  });

  it('serializes to JSON for the API', () => {
    const e = manifestError(() => parseManifests(job('a', '  comand: [x]'), 'j.yaml'));
    assert.deepEqual(JSON.parse(JSON.stringify(e)), {
      message: e.message, file: 'j.yaml', line: 6, column: 3, field: 'spec.comand', document: 0, reason: e.reason,
    });
  });
});
