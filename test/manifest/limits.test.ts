import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifestFile, parseManifests } from '../../src/manifest/index.js';
import { LIMITS } from '../../src/util/limits.js';
import { job, manifestError, manifestErrorAsync } from './helpers.js';

/** The classic billion laughs: 9 levels of 9 aliases each, a few hundred bytes standing for 9^9 strings. */
function billionLaughs(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = 'abcdefghi';
  for (let i = 1; i < names.length; i++) {
    const prev = names[i - 1]!;
    lines.push(`${names[i]}: &${names[i]} [${Array(9).fill(`*${prev}`).join(',')}]`);
  }
  return lines.join('\n') + '\n';
}

describe('manifest limits', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oswalk-manifest-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a 50 MB file before reading it', async () => {
    const path = join(dir, 'big.yaml');
    await writeFile(path, job('a', '  command: [x]'));
    await truncate(path, 50 * 1024 * 1024);
    const t0 = performance.now();
    const e = await manifestErrorAsync(() => parseManifestFile(path));
    assert.ok(performance.now() - t0 < 500, 'refused quickly');
    assert.equal(e.file, path);
    assert.equal(e.line, undefined);
    assert.match(e.reason, new RegExp(`^52428800 bytes is over the ${LIMITS.manifestBytes}-byte limit.*split it`));
  });

  it('refuses a 50 MB string before parsing it', () => {
    const text = '#'.repeat(50 * 1024 * 1024);
    const t0 = performance.now();
    const e = manifestError(() => parseManifests(text, 'big.yaml'));
    assert.ok(performance.now() - t0 < 500, 'refused quickly');
    assert.match(e.reason, /over the \d+-byte limit/);
  });

  it('accepts a file of exactly the limit', async () => {
    const head = job('a', '  command: [x]');
    const path = join(dir, 'full.yaml');
    await writeFile(path, head + '#'.repeat(LIMITS.manifestBytes - head.length));
    assert.equal((await parseManifestFile(path)).length, 1);
  });

  it('refuses a billion-laughs alias bomb quickly, without expanding it', () => {
    const text = billionLaughs();
    const t0 = performance.now();
    const e = manifestError(() => parseManifests(text, 'bomb.yaml'));
    assert.ok(performance.now() - t0 < 500, 'refused quickly');
    assert.match(e.reason, /aliases expand to more than \d+ nodes \(an alias bomb\?\)/);
    assert.ok(e.line !== undefined && e.line >= 2 && e.line <= 9, `line ${e.line} is one of the alias lines`);
  });

  it('counts aliases against LIMITS.yamlAliases, reporting the first one over', () => {
    const items = Array.from({ length: LIMITS.yamlAliases + 1 }, () => '    - *arg');
    const text = job('a', '  command: &arg x', '  args:', ...items);
    const e = manifestError(() => parseManifests(text, 'aliases.yaml'));
    assert.match(e.reason, new RegExp(`more than ${LIMITS.yamlAliases} YAML aliases`));
    assert.equal(e.line, 8 + LIMITS.yamlAliases);
    assert.equal(e.column, 7);
  });

  it('allows a few aliases', () => {
    const text = job('a', '  command: &arg [x]', '  args: *arg');
    assert.equal(parseManifests(text, 'ok.yaml').length, 1);
  });

  it('refuses too many documents, at the first one over', () => {
    const docs = Array.from({ length: LIMITS.manifestDocuments + 1 }, (_, i) => job(`j${i}`, '  command: [x]'));
    const e = manifestError(() => parseManifests(docs.join('---\n'), 'many.yaml'));
    assert.match(e.reason, new RegExp(`more than ${LIMITS.manifestDocuments} documents in one file; split it`));
    assert.equal(e.line, LIMITS.manifestDocuments * 7 + 1);
  });

  it('accepts as many documents as the limit', () => {
    const docs = Array.from({ length: LIMITS.manifestDocuments }, (_, i) => job(`j${i}`, '  command: [x]'));
    assert.equal(parseManifests(docs.join('---\n'), 'many.yaml').length, LIMITS.manifestDocuments);
  });

  it('refuses counts and sizes past the limits the API has too, naming the field', () => {
    const service = (spec: string) => job('s', spec).replace('kind: Job', 'kind: Service');
    const cases: [string, string, RegExp][] = [
      [job('j', '  command: [x]', `  completions: ${LIMITS.completions + 1}`), 'completions', /must be at most 10000 \(got 10001\)/],
      [job('j', '  command: [x]', `  parallelism: ${LIMITS.completions + 1}`), 'parallelism', /at most 10000/],
      [service(`  command: [x]\n  replicas: ${LIMITS.replicas + 1}`), 'replicas', /must be at most 1000 \(got 1001\)/],
      [job('j', '  command: [x]', '  activeDeadlineSeconds: 1e300'), 'activeDeadlineSeconds', /at most 315360000 \(got 1e\+300\)/],
      [job('j', `  command: [${Array(LIMITS.argItems + 1).fill('a').join(',')}]`), 'command', /must have at most 4096 items \(got 4097\)/],
      [job('j', '  command: [x]', `  env: {A: ${'v'.repeat(LIMITS.argLength + 1)}}`), 'env.A', /must be at most 65536 characters long \(got 65537\)/],
    ];
    for (const [yaml, field, reason] of cases) {
      const e = manifestError(() => parseManifests(yaml, 'big.yaml'));
      assert.equal(e.field, `spec.${field}`);
      assert.match(e.reason, reason);
    }
    assert.equal(parseManifests(job('j', '  command: [x]', `  completions: ${LIMITS.completions}`), 'ok.yaml').length, 1);
  });
});

describe('parseManifestFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oswalk-manifest-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the file in errors', async () => {
    const path = join(dir, 'jobs.yaml');
    await writeFile(path, job('a', '  command: [x]', '  resources:', '    cpus: -1'));
    const e = await manifestErrorAsync(() => parseManifestFile(path));
    assert.equal(e.message, `${path}:8: spec.resources.cpus: must be a number > 0 (got -1)`);
  });

  it('reports a missing file, a directory and bytes that are not UTF-8', async () => {
    const missing = await manifestErrorAsync(() => parseManifestFile(join(dir, 'nope.yaml')));
    assert.match(missing.reason, /^cannot read the file: ENOENT/);
    const directory = await manifestErrorAsync(() => parseManifestFile(dir));
    assert.match(directory.reason, /not a regular file/);
    const binary = join(dir, 'bin.yaml');
    await writeFile(binary, Buffer.from([0x6b, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    assert.match((await manifestErrorAsync(() => parseManifestFile(binary))).reason, /not valid UTF-8/);
  });
});
