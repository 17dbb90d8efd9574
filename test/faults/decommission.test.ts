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
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPrefix } from '../helpers/redis.js';
import { oswalk } from '../helpers/cli.js';
import { getCurrent } from '../../src/state/fs.js';
import { manifestLocations } from '../../src/packetfs/index.js';
import { FaultCluster, TOKEN, sleep, within } from './cluster.js';

const seed = Number(process.env.OSWALK_DECOMMISSION_SEED ?? 260426);
console.log(`decommission seed: ${seed} (replay: OSWALK_DECOMMISSION_SEED=${seed})`);

/** Seeded bytes: SHA-256 in counter mode. */
function bytesOf(label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i * 32 < size; i++) createHash('sha256').update(`${seed}:${label}:${i}`).digest().copy(out, i * 32);
  return out;
}
/** A seeded size: most files small, every 10th a few MB (several chunks). */
function sizeOf(i: number): number {
  const h = createHash('sha256').update(`${seed}:size:${i}`).digest().readUInt32BE(0);
  return i % 10 === 3 ? 1_500_000 + (h % 2_500_000) : 1 + (h % 200_000);
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** SHA-256 of every file of the list read through a mount, in a process of its own (the test process must not block on FUSE). */
function readAll(mount: string, paths: string[]): Promise<Map<string, string>> {
  const script = `
import hashlib, sys, json
out = {}
for p in json.load(sys.stdin):
    try:
        with open(sys.argv[1] + p, 'rb') as f: out[p] = hashlib.sha256(f.read()).hexdigest()
    except OSError as e: out[p] = 'error: ' + (e.strerror or str(e))
print(json.dumps(out))`;
  return new Promise((resolve, reject) => {
    const child = execFile('python3', ['-c', script, mount], { timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`reading through ${mount}: ${err.message}\n${stderr}`));
      else resolve(new Map(Object.entries(JSON.parse(stdout) as Record<string, string>)));
    });
    child.stdin!.end(JSON.stringify(paths));
  });
}

describe('decommission: oswalk node remove moves what only the node holds, then it can go', () => {
  const root = mkdtempSync(join(tmpdir(), 'oswalk-decommission-'));
  const c = new FaultCluster({ root, prefix: testPrefix(), nodeTimeoutMs: 3000, nodes: ['node1', 'node2', 'node3'], nsNode: 'node3' });
  /** Unified path → SHA-256 of what was written. */
  const want = new Map<string, string>();
  let failed = true;
  const api = () => `http://127.0.0.1:${c.cps[0].port}`;
  const agent = (n: string) => c.agents.get(n)!;

  before(async () => {
    await c.start();
    const res = await fetch(`${api()}/v1/apply`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ source: 'test', files: [{ source: 'mount.yaml', yaml: 'apiVersion: oswalk.dev/v1\nkind: Mount\nmetadata: {name: cluster}\nspec: {path: /cluster, copies: 2}\n' }] }),
    });
    assert.equal(res.status, 200, await res.text());
    await sleep(5500); // the FS processes read the Mount again (at most 5 s old)
  });

  after(async () => {
    await c.stop();
    if (failed) {
      console.log(`decommission run kept for a look: ${root}`);
      for (const f of readdirSync(join(root, 'logs'))) {
        const lines = readFileSync(join(root, 'logs', f), 'utf8').trimEnd().split('\n');
        console.log(`--- ${f} (last 30 lines)\n${lines.slice(-30).join('\n')}`);
      }
    } else {
      rmSync(root, { recursive: true, force: true });
    }
  });

  async function holders(path: string): Promise<string[]> {
    const v = await within(`the version of ${path}`, getCurrent(c.conn, c.ks, path), 3000);
    assert.ok(v?.manifest, `${path} is in the namespace`);
    return (await manifestLocations(c.conn, c.ks, v.manifest)).sort();
  }

  it('removes node2: the command returns once node1 and node3 hold everything, and node3 reads it all with node2 gone', async () => {
    const m1 = agent('node1').mount;
    mkdirSync(join(m1, 'data'));
    for (let i = 0; i < 50; i++) {
      const data = bytesOf(`f${i}`, sizeOf(i));
      writeFileSync(join(m1, 'data', `f${i}`), data);
      want.set(`/data/f${i}`, sha(data));
    }
    let onNode2 = 0;
    for (const p of want.keys()) {
      const h = await holders(p);
      assert.equal(h.length, 2, `${p} is on two nodes once its close returned`);
      if (h.includes('node2')) onNode2++;
    }
    assert.ok(onNode2 > 0, 'node2 holds some of the files, so its removal has copies to move');

    const t0 = Date.now();
    const r = await oswalk(['--api', api(), 'node', 'remove', 'node2', '--timeout', '90s'], { env: { OSWALK_TOKEN: TOKEN }, timeoutMs: 100_000 });
    const s = Math.round((Date.now() - t0) / 1000);
    assert.equal(r.code, 0, `oswalk node remove node2 (${s} s): ${r.stderr}`);
    assert.equal(r.stdout, 'node node2 holds no copy the cluster lacks and runs no jobs: its agent can be stopped now\n');
    console.log(`node2 (${onNode2} of 50 files) removed in ${s} s:\n${r.stderr}`);
    for (const p of want.keys()) {
      const h = await holders(p);
      assert.ok(h.includes('node1') && h.includes('node3'), `${p} is on node1 and node3 (held by ${h.join(', ')})`);
    }

    const n2 = agent('node2');
    const fsPid = await n2.fsPid();
    assert.ok(fsPid, 'node2 has an FS process');
    process.kill(fsPid, 'SIGKILL');
    await n2.proc!.kill();
    const paths = [...want.keys()];
    const got = await within('the read through node3', readAll(agent('node3').mount, paths), 120_000);
    const bad = paths.filter((p) => got.get(p) !== want.get(p)).map((p) => `${p}: ${got.get(p)}`);
    assert.deepEqual(bad, [], `with node2 gone, ${bad.length} of ${paths.length} files did not read back through node3's mount`);
    failed = false;
  });
});
