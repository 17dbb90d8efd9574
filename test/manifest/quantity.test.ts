import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QuantityError, parseCpus, parseMemory } from '../../src/manifest/index.js';

describe('parseCpus', () => {
  const good: Array<[unknown, number]> = [[2, 2], [0.5, 0.5], ['2', 2], ['1.5', 1.5], ['.5', 0.5], ['500m', 0.5], ['1m', 0.001], ['2500m', 2.5], [' 1 ', 1]];
  for (const [input, cores] of good) it(`${JSON.stringify(input)} is ${cores} cores`, () => assert.equal(parseCpus(input), cores));

  const bad: Array<[unknown, RegExp]> = [
    [0, /more than 0 cores/], [-1, /more than 0 cores/], ['0m', /more than 0 cores/], [Infinity, /more than 0 cores/],
    ['two', /millicores such as "500m"/], ['1.5m', /invalid CPU quantity/], ['-1', /invalid CPU quantity/], ['', /invalid/],
    [null, /invalid CPU quantity null/], [[1], /invalid CPU quantity a list/],
  ];
  for (const [input, message] of bad) {
    it(`refuses ${JSON.stringify(input)}`, () => assert.throws(() => parseCpus(input), (e: unknown) => e instanceof QuantityError && message.test(e.message)));
  }
});

describe('parseMemory', () => {
  const good: Array<[unknown, number]> = [
    [1, 1], [536870912, 2 ** 29], ['1024', 1024], ['512Mi', 512 * 2 ** 20], ['1Gi', 2 ** 30], ['1.5Gi', 1.5 * 2 ** 30],
    ['100M', 100e6], ['1k', 1000], ['2Ki', 2048], ['1Ti', 2 ** 40], ['1P', 1e15], ['0.5', 1],
  ];
  for (const [input, bytes] of good) it(`${JSON.stringify(input)} is ${bytes} bytes`, () => assert.equal(parseMemory(input), bytes));

  const bad: Array<[unknown, RegExp]> = [
    [0, /whole number > 0/], [1.5, /whole number > 0/], [-5, /whole number > 0/], ['0Mi', /more than 0 bytes/],
    ['512m', /did you mean "512M" or "512Mi"\?/], ['512MB', /did you mean "512Mi" for powers of 1024 or "512M"/],
    ['1GiB', /did you mean "1Gi"/], ['2kb', /did you mean "2Ki" .* "2k"/], ['lots', /such as "512Mi"/], ['1Zi', /invalid memory quantity/],
    ['9Ei', /at most/], [true, /invalid memory quantity true/],
  ];
  for (const [input, message] of bad) {
    it(`refuses ${JSON.stringify(input)}`, () => assert.throws(() => parseMemory(input), (e: unknown) => e instanceof QuantityError && message.test(e.message)));
  }
});
