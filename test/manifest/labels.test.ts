import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isLabelKey, isLabelValue, matchesLabels, parseLabelSelector } from '../../src/manifest/labels.js';

describe('label selectors, as kubectl -l takes them', () => {
  it('parses key=value, key==value, key!=value, key and !key, comma-separated, spaces around parts ignored', () => {
    assert.deepEqual(parseLabelSelector('app=web, tier == front,env!=prod,canary,!legacy,oswalk.dev/node='), [
      { key: 'app', op: '=', value: 'web' },
      { key: 'tier', op: '=', value: 'front' },
      { key: 'env', op: '!=', value: 'prod' },
      { key: 'canary', op: 'exists' },
      { key: 'legacy', op: '!exists' },
      { key: 'oswalk.dev/node', op: '=', value: '' },
    ]);
  });

  it('refuses what is not a requirement, quoting the selector and the part', () => {
    for (const [text, why] of [
      ['a=b=c', /label selector "a=b=c": "a=b=c" is not a requirement/],
      ['a,,b', /label selector "a,,b" has an empty requirement/],
      ['', /has an empty requirement/],
      ['tier in (a,b)', /"tier in \(a" is not a requirement/],
      ['bad key=x', /"bad key=x" is not a requirement/],
      ['a=b c', /"a=b c" is not a requirement/],
      ['!a=b', /"!a=b" is not a requirement/],
      [`a=${'x'.repeat(64)}`, /is not a requirement/],
    ] as const) assert.throws(() => parseLabelSelector(text), why, text);
  });

  it('matches every requirement; key!=value and !key hold for labels without the key', () => {
    const labels = { app: 'web', tier: 'front' };
    const m = (s: string, l: Record<string, string> = labels) => matchesLabels(parseLabelSelector(s), l);
    assert.equal(m('app=web,tier=front'), true);
    assert.equal(m('app=web,tier=back'), false);
    assert.equal(m('app!=db'), true);
    assert.equal(m('app!=web'), false);
    assert.equal(m('tier'), true);
    assert.equal(m('!tier'), false);
    assert.equal(m('app!=web', {}), true);
    assert.equal(m('!app', {}), true);
    assert.equal(m('app', {}), false);
    assert.equal(m('toString'), false, 'only the labels\' own keys');
  });

  it('checks label keys and values as manifests do', () => {
    assert.equal(isLabelKey('oswalk.dev/node'), true);
    assert.equal(isLabelKey('Zone_1.a'), true);
    assert.equal(isLabelKey('UPPER.dev/x'), false);
    assert.equal(isLabelKey('-x'), false);
    assert.equal(isLabelKey(`${'a'.repeat(64)}`), false);
    assert.equal(isLabelValue(''), true);
    assert.equal(isLabelValue('a b'), false);
  });
});
