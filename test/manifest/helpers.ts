import assert from 'node:assert/strict';
import { ManifestError } from '../../src/manifest/index.js';

/** Runs `fn`, which must throw a ManifestError, and returns it. */
export function manifestError(fn: () => unknown): ManifestError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ManifestError, `expected a ManifestError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ManifestError, nothing was thrown');
}

export async function manifestErrorAsync(fn: () => Promise<unknown>): Promise<ManifestError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof ManifestError, `expected a ManifestError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ManifestError, nothing was thrown');
}

/** A Job document with `spec` lines (already indented by two spaces) under its spec. */
export function job(name: string, ...spec: string[]): string {
  return ['apiVersion: oswalk.dev/v1', 'kind: Job', 'metadata:', `  name: ${name}`, 'spec:', ...spec].join('\n') + '\n';
}
