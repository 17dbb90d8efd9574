import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testPrefix, useTestRedis } from '../helpers/redis.js';
import { keyspace } from '../../src/state/keys.js';
import { runScript, ScriptError } from '../../src/state/scripts.js';

describe('runScript', () => {
  const db = useTestRedis();

  it('throws a failure a script lists as a ScriptError, with the reply as its message', async () => {
    const ks = keyspace(testPrefix());
    await assert.rejects(runScript(db.redis, 'tokenOp', [ks.tokens], ['frobnicate']), (err: unknown) => {
      assert.ok(err instanceof ScriptError);
      assert.deepEqual([err.script, err.code, err.detail, err.message], ['tokenOp', 'EINVAL', 'unknown op frobnicate', 'EINVAL unknown op frobnicate']);
      return true;
    });
  });

  it('throws any other error as Redis gave it', async () => {
    const ks = keyspace(testPrefix());
    // A lease that is not a number: SET ... PX fails inside the script, a bug and no failure of its.
    await assert.rejects(runScript(db.redis, 'leaderLease', [ks.leader], ['me', 'soon', '']), (err: unknown) => {
      assert.ok(err instanceof Error && !(err instanceof ScriptError));
      assert.match(err.message, /^ERR /);
      return true;
    });
  });
});
