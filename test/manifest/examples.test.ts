import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseManifestFile, type JobManifest, type Manifest, type MountManifest, type ServiceManifest } from '../../src/manifest/index.js';
import { packageRoot } from '../../src/util/paths.js';

const dir = join(packageRoot(), 'manifests');

async function yamlFiles(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await yamlFiles(join(d, e.name))));
    else if (/\.ya?ml$/.test(e.name)) out.push(join(d, e.name));
  }
  return out.sort();
}

async function load(name: string): Promise<Manifest[]> {
  return parseManifestFile(join(dir, name));
}

describe('example manifests', () => {
  it('every file under manifests/ parses', async () => {
    const files = await yamlFiles(dir);
    assert.ok(files.length >= 6, `found ${files.map((f) => relative(dir, f)).join(', ')}`);
    for (const f of files) assert.ok((await parseManifestFile(f)).length > 0, f);
  });

  it('cluster.yaml has three nodes and a /cluster mount replicating shared/ everywhere', async () => {
    const ms = await load('cluster.yaml');
    assert.deepEqual(ms.filter((m) => m.kind === 'Node').map((m) => m.metadata.name), ['node1', 'node2', 'node3']);
    const mount = ms.find((m): m is MountManifest => m.kind === 'Mount');
    assert.equal(mount?.spec.path, '/cluster');
    assert.deepEqual(mount?.spec.replication, [{ prefix: 'shared/', copies: 'all' }]);
  });

  it('hello and parallel run on any node (a process node, or a docker node\'s default image); parallel runs 3 at a time, 6 in all', async () => {
    const [hello] = (await load('examples/hello-job.yaml')) as [JobManifest];
    assert.equal(hello.spec.runtime, undefined);
    assert.equal(hello.spec.image, undefined);
    const [par] = (await load('examples/parallel-job.yaml')) as [JobManifest];
    assert.equal(par.spec.runtime, undefined);
    assert.equal(par.spec.parallelism, 3);
    assert.equal(par.spec.completions, 6);
  });

  it('web is a Service with two replicas', async () => {
    const [web] = (await load('examples/web-service.yaml')) as [ServiceManifest];
    assert.equal(web.kind, 'Service');
    assert.equal(web.spec.replicas, 2);
  });

  it('write-shared and read-shared are docker jobs in the node\'s default image, pinned to agent-1 and agent-3', async () => {
    const [w] = (await load('examples/write-shared.yaml')) as [JobManifest];
    const [r] = (await load('examples/read-shared.yaml')) as [JobManifest];
    for (const [m, node] of [[w, 'agent-1'], [r, 'agent-3']] as const) {
      assert.equal(m.spec.runtime, 'docker');
      assert.equal(m.spec.image, undefined);
      assert.deepEqual(m.spec.nodeSelector, { 'oswalk.dev/node': node });
    }
    assert.match(w.spec.command.join(' '), /> \/cluster\/shared\/out\.txt/);
    assert.match(r.spec.command.join(' '), /\/cluster\/shared\/out\.txt/);
  });
});
