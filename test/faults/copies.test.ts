/**
 * Node failures are transparent for files too (issue 26), on the real processes of a cluster:
 * redis-server, two control planes, three agents with their FUSE mounts.
 *
 *  1. 200 files written through node1's mount, and 20 that come in through node1's export
 *     directory, are each held by two nodes as soon as their close returns (or, for the export
 *     directory, as soon as they are in the namespace); a 5 MB file under a `copies: all` rule
 *     by all three, and node3 reads it while node1's agent is paused.
 *  2. node1's agent and FS process are SIGKILLed and never come back: all 221 read back byte for
 *     byte through node2's and node3's mounts at once, no EIO, no hang.
 *  3. After the grace period, the survivors hold two copies of everything again, and
 *     `oswalk status` says so; then node2 is killed too, and node3 alone reads all 221.
 *
 * File sizes and contents come from a fixed seed (printed; OSWALK_COPIES_SEED replays another).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPrefix } from '../helpers/redis.js';
import { OSWALK_BIN } from '../helpers/cli.js';
import { applyMount, FaultCluster, printLogTails, readAllThrough, SeededFiles, sha256hex, TOKEN, run, until, within } from './cluster.js';

const NODE_TIMEOUT_MS = 3000;
const GRACE_S = 2;
const seed = Number(process.env.OSWALK_COPIES_SEED ?? 260226);
console.log(`copies seed: ${seed} (replay: OSWALK_COPIES_SEED=${seed})`);
// For the `oswalk status` this test runs.
process.env.OSWALK_TOKEN = TOKEN;

const files = new SeededFiles(seed);

describe('copies: every closed file on two nodes, made again when a node goes', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-copies-'));
  const c = new FaultCluster({ root, prefix: testPrefix(), nodeTimeoutMs: NODE_TIMEOUT_MS, nodes: ['node1', 'node2', 'node3'], nsNode: 'node3' });
  /** Unified path → SHA-256 of what was written. */
  const want = new Map<string, string>();
  let failed = true;
  const agent = (n: string) => c.agents.get(n)!;

  before(async () => {
    await c.start();
    await applyMount(c, `{path: /cluster, copies: 2, rereplicateAfterSeconds: ${GRACE_S}, replication: [{prefix: shared/, copies: all}]}`);
  });

  after(async () => {
    await c.stop();
    if (failed) {
      console.log(`copies run kept for a look: ${root}`);
      printLogTails(root);
    } else {
      rmSync(root, { recursive: true, force: true });
    }
  });


  async function readsBack(nodes: string[], what: string): Promise<void> {
    const paths = [...want.keys()];
    const t0 = Date.now();
    const got = await Promise.all(nodes.map((n) => readAllThrough(agent(n).mount, paths)));
    const ms = Date.now() - t0;
    for (const [i, n] of nodes.entries()) {
      const bad = paths.filter((p) => got[i].get(p) !== want.get(p)).map((p) => `${p}: ${got[i].get(p)}`);
      assert.deepEqual(bad, [], `${what}: through ${n}'s mount, ${bad.length} of ${paths.length} files did not read back`);
    }
    console.log(`${what}: ${paths.length} files read back through ${nodes.join(' and ')} at once in ${ms} ms`);
  }

  it('a close returns once the file is on two nodes (all three under shared/); the export directory\'s files get their copies too', async () => {
    const m1 = agent('node1').mount;
    mkdirSync(join(m1, 'data'));
    for (let i = 0; i < 200; i++) {
      const data = files.bytes(`f${i}`, files.size(i, 25, 7));
      writeFileSync(join(m1, 'data', `f${i}`), data);
      want.set(`/data/f${i}`, sha256hex(data));
    }
    for (const p of want.keys()) assert.equal((await c.holders(p)).length, 2, `${p} is on two nodes once its close returned`);
    const big = files.bytes('big', 5 << 20);
    mkdirSync(join(m1, 'shared'));
    writeFileSync(join(m1, 'shared', 'big.bin'), big);
    want.set('/shared/big.bin', sha256hex(big));
    assert.deepEqual(await c.holders('/shared/big.bin'), ['node1', 'node2', 'node3']);

    const exp = agent('node1').exportDir;
    mkdirSync(join(exp, 'in'));
    for (let i = 0; i < 20; i++) {
      const data = files.bytes(`e${i}`, files.size(i + 1000, 25, 7));
      writeFileSync(join(exp, 'in', `e${i}`), data);
      want.set(`/in/e${i}`, sha256hex(data));
    }
    for (let i = 0; i < 20; i++) {
      await until(`/in/e${i} translated and on two nodes`, async () => (await c.holders(`/in/e${i}`)).length >= 2, 60_000, 200);
    }

    // node1's agent paused (the report that started this issue: node3 read EIO then).
    const a1 = agent('node1').proc!;
    a1.signal('SIGSTOP');
    try {
      const got = await readAllThrough(agent('node3').mount, ['/shared/big.bin']);
      assert.equal(got.get('/shared/big.bin'), want.get('/shared/big.bin'));
    } finally {
      a1.signal('SIGCONT');
    }
    failed = false;
  });

  it('node1 killed for good: all 221 read back through node2 and node3 at once; after the grace period two copies exist again', async () => {
    failed = true;
    const n1 = agent('node1');
    const fsPid = await n1.fsPid();
    assert.ok(fsPid, 'node1 has an FS process');
    process.kill(fsPid, 'SIGKILL');
    await n1.proc!.kill();
    await within('both reads', readsBack(['node2', 'node3'], 'node1 killed'), 120_000);

    // node1 is marked down after the node timeout, then its copies count for the grace period.
    await until('every file on both survivors', async () => {
      for (const p of want.keys()) {
        const h = await c.holders(p);
        if (!h.includes('node2') || !h.includes('node3')) return false;
      }
      return true;
    }, 90_000, 1000);
    const status = await until('oswalk status to show nothing short of copies', async () => {
      const out = await run(process.execPath, [OSWALK_BIN, 'status', '-o', 'json', '--api', c.apiUrl], 15_000).catch(() => '');
      const st = out ? (JSON.parse(out) as { storage?: { underFiles: number; lostFiles: number; chunkLists: number; at: string } }) : undefined;
      return st?.storage && st.storage.underFiles === 0 && Date.parse(st.storage.at) > Date.now() - 20_000 ? st.storage : undefined;
    }, 60_000, 1000);
    assert.equal(status.lostFiles, 0);
    assert.ok(status.chunkLists >= 200, `status counts ${status.chunkLists} file contents`);
    failed = false;
  });

  it('node2 killed as well: node3 alone reads all 221', async () => {
    failed = true;
    const n2 = agent('node2');
    const fsPid = await n2.fsPid();
    if (fsPid) process.kill(fsPid, 'SIGKILL');
    await n2.proc!.kill();
    await within('the read', readsBack(['node3'], 'node1 and node2 killed'), 120_000);
    failed = false;
  });
});
