import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  validateManifestList, validateManifestObject, type JobManifest,
} from '../../src/manifest/index.js';
import { LIMITS } from '../../src/util/limits.js';
import { manifestError } from './helpers.js';

const jobObj = (name: string, spec: Record<string, unknown> = { command: ['x'] }) => ({
  apiVersion: 'oswalk.dev/v1', kind: 'Job', metadata: { name }, spec,
});

describe('manifests that arrive as JSON', () => {
  it('validates and normalizes one object', () => {
    const m = validateManifestObject(jobObj('a', { image: 'alpine', resources: { cpus: '250m', memory: '64Mi' } }), 'request body', 0) as JobManifest;
    assert.equal(m.spec.runtime, 'docker');
    assert.equal(m.spec.resources.cpus, 0.25);
    assert.equal(m.spec.resources.memoryBytes, 64 * 2 ** 20);
  });

  const cases: Array<[string, unknown, string, RegExp]> = [
    ['wrong type', jobObj('a', { command: ['x'], priority: 'high' }), 'documents[3].spec.priority', /must be an integer \(got "high"\)/],
    ['unknown field', jobObj('a', { command: ['x'], extra: true }), 'documents[3].spec.extra', /unknown field "extra"/],
    ['missing field', { apiVersion: 'oswalk.dev/v1', kind: 'Job', spec: {} }, 'documents[3].metadata', /add metadata: at the top/],
    ['unknown kind', { ...jobObj('a'), kind: 'Deployment' }, 'documents[3].kind', /unknown kind "Deployment"/],
    ['not an object', 'Job', 'documents[3]', /must be a mapping/],
    ['rule beyond the schema', jobObj('a', { command: ['x'], resources: { cpus: '1.5x' } }), 'documents[3].spec.resources.cpus', /invalid CPU quantity/],
  ];
  for (const [name, obj, field, reason] of cases) {
    it(`names the document index and field: ${name}`, () => {
      const e = manifestError(() => validateManifestObject(obj, 'request body', 3));
      assert.equal(e.file, 'request body');
      assert.equal(e.line, undefined);
      assert.equal(e.document, 3);
      assert.equal(e.field, field);
      assert.match(e.reason, reason);
      assert.equal(e.message, `request body: ${field}: ${e.reason}`);
    });
  }

  it('checks a list as a whole: duplicates and the count limit', () => {
    assert.equal(validateManifestList([jobObj('a'), jobObj('b')], 'body').length, 2);
    const dup = manifestError(() => validateManifestList([jobObj('a'), jobObj('b'), jobObj('a')], 'body'));
    assert.equal(dup.field, 'documents[2].metadata.name');
    assert.match(dup.reason, /the first is at documents\[0\]/);
    const many = Array.from({ length: LIMITS.manifestDocuments + 1 }, (_, i) => jobObj(`j${i}`));
    assert.match(manifestError(() => validateManifestList(many, 'body')).reason, /more than \d+ manifests at once/);
  });
});
