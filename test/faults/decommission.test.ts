/**
 * Decommission (issue 26 item 4) on the real processes of a cluster: redis-server, two control
 * planes, three agents with their FUSE mounts.
 *
 *  1. 50 files written through node1's mount, each on two nodes once its close returned.
 *  2. `oswalk node remove node2` returns within 90 s, saying its agent can be stopped; by then
 *     every file is on node1 and node3.
 *  3. node2's agent and FS process are SIGKILLed: all 50 read back byte for byte through node3's
 *     mount.
 *
 * File sizes and contents come from a fixed seed (printed; OSWALK_DECOMMISSION_SEED replays another).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPrefix } from '../helpers/redis.js';
import { oswalk } from '../helpers/cli.js';
import { applyMount, FaultCluster, printLogTails, readAllThrough, SeededFiles, sha256hex, TOKEN, within } from './cluster.js';

const seed = Number(process.env.OSWALK_DECOMMISSION_SEED ?? 260426);
console.log(`decommission seed: ${seed} (replay: OSWALK_DECOMMISSION_SEED=${seed})`);

const files = new SeededFiles(seed);

describe('decommission: oswalk node remove moves what only the node holds, then it can go', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-decommission-'));
  const c = new FaultCluster({ root, prefix: testPrefix(), nodeTimeoutMs: 3000, nodes: ['node1', 'node2', 'node3'], nsNode: 'node3' });
  /** Unified path → SHA-256 of what was written. */
  const want = new Map<string, string>();
  let failed = true;
  const agent = (n: string) => c.agents.get(n)!;

  before(async () => {
    await c.start();
    await applyMount(c, '{path: /cluster, copies: 2}');
  });

  after(async () => {
    await c.stop();
    if (failed) {
      console.log(`decommission run kept for a look: ${root}`);
      printLogTails(root);
    } else {
      rmSync(root, { recursive: true, force: true });
    }
  });


  it('removes node2: the command returns once node1 and node3 hold everything, and node3 reads it all with node2 gone', async () => {
    const m1 = agent('node1').mount;
    mkdirSync(join(m1, 'data'));
    for (let i = 0; i < 50; i++) {
      const data = files.bytes(`f${i}`, files.size(i, 10, 3));
      writeFileSync(join(m1, 'data', `f${i}`), data);
      want.set(`/data/f${i}`, sha256hex(data));
    }
    let onNode2 = 0;
    for (const p of want.keys()) {
      const h = await c.holders(p);
      assert.equal(h.length, 2, `${p} is on two nodes once its close returned`);
      if (h.includes('node2')) onNode2++;
    }
    assert.ok(onNode2 > 0, 'node2 holds some of the files, so its removal has copies to move');

    const t0 = Date.now();
    const r = await oswalk(['--api', c.apiUrl, 'node', 'remove', 'node2', '--timeout', '90s'], { env: { OSWALK_TOKEN: TOKEN }, timeoutMs: 100_000 });
    const s = Math.round((Date.now() - t0) / 1000);
    assert.equal(r.code, 0, `oswalk node remove node2 (${s} s): ${r.stderr}`);
    // The fault cluster's API is plain HTTP, without a CA: no node certificate to revoke.
    assert.equal(r.stdout, 'node node2 holds no copy the cluster lacks and runs no jobs: its agent can be stopped now\nnode node2 holds no unexpired certificate this cluster issued: nothing was revoked\n');
    console.log(`node2 (${onNode2} of 50 files) removed in ${s} s:\n${r.stderr}`);
    for (const p of want.keys()) {
      const h = await c.holders(p);
      assert.ok(h.includes('node1') && h.includes('node3'), `${p} is on node1 and node3 (held by ${h.join(', ')})`);
    }

    const n2 = agent('node2');
    const fsPid = await n2.fsPid();
    assert.ok(fsPid, 'node2 has an FS process');
    process.kill(fsPid, 'SIGKILL');
    await n2.proc!.kill();
    const paths = [...want.keys()];
    const got = await within('the read through node3', readAllThrough(agent('node3').mount, paths), 120_000);
    const bad = paths.filter((p) => got.get(p) !== want.get(p)).map((p) => `${p}: ${got.get(p)}`);
    assert.deepEqual(bad, [], `with node2 gone, ${bad.length} of ${paths.length} files did not read back through node3's mount`);
    failed = false;
  });
});
