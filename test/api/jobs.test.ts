/**
 * The job spec's defaults: one table (JOB_DEFAULTS), the same for a request (POST /v1/jobs)
 * and for a Job or Service manifest. The values are written out here so that a change to
 * them is a change to this test too: each is what users of kubectl expect.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JOB_DEFAULTS, normalizeJobSpec } from '../../src/api/jobs.js';
import { jobSpecOfManifest, parseManifests, type JobManifest, type ServiceManifest } from '../../src/manifest/index.js';

describe('job spec defaults', () => {
  it('are one core, no memory reserved or limited, 6 retries, priority 0, not privileged', () => {
    assert.deepEqual(JOB_DEFAULTS, { cpus: 1, memoryBytes: 0, priority: 0, backoffLimit: 6, privileged: false, restartPolicy: 'Never' });
  });

  it('fill a request and a Job manifest that say nothing alike (no image: no runtime, any node)', () => {
    const request = normalizeJobSpec({ command: ['echo', 'hi'] });
    const [job] = parseManifests('apiVersion: oswalk.dev/v1\nkind: Job\nmetadata: { name: hi }\nspec: { command: [echo, hi] }\n', 'hi.yaml') as [JobManifest];
    assert.deepEqual(jobSpecOfManifest(job), request);
    assert.deepEqual(request, {
      command: ['echo', 'hi'], args: [], env: {}, cpus: 1, memoryBytes: 0, nodeSelector: {},
      privileged: false, priority: 0, backoffLimit: 6, restartPolicy: 'Never',
    });
  });

  it('make a Service manifest\'s jobs restart whatever their exit, with the same resources', () => {
    const [svc] = parseManifests('apiVersion: oswalk.dev/v1\nkind: Service\nmetadata: { name: web }\nspec: { image: nginx }\n', 'web.yaml') as [ServiceManifest];
    assert.deepEqual(jobSpecOfManifest(svc), {
      image: 'nginx', command: [], args: [], env: {}, cpus: 1, memoryBytes: 0, runtime: 'docker', nodeSelector: {},
      privileged: false, priority: 0, backoffLimit: 6, restartPolicy: 'Always',
    });
  });

  it('keep the order of a manifest job spec\'s fields: it is hashed, and a new hash would restart every Service replica', () => {
    const [svc] = parseManifests([
      'apiVersion: oswalk.dev/v1', 'kind: Service', 'metadata: { name: web }',
      'spec: { image: nginx, command: [a], args: [b], env: { X: "1" }, workingDir: /w, resources: { cpus: 2, memory: 1Mi }, nodeSelector: { z: a }, privileged: true, priority: 5, backoffLimit: 1 }', '',
    ].join('\n'), 'web.yaml') as [ServiceManifest];
    assert.equal(JSON.stringify(jobSpecOfManifest(svc)),
      '{"image":"nginx","command":["a"],"args":["b"],"env":{"X":"1"},"workingDir":"/w","cpus":2,"memoryBytes":1048576,"runtime":"docker",'
      + '"nodeSelector":{"z":"a"},"privileged":true,"priority":5,"backoffLimit":1,"restartPolicy":"Always"}');
  });
});
