/**
 * Dedup on a versioned data set, and the measurement behind the chunker's sizes.
 *
 * The data set: /usr/share/doc copied and tarred five times, each version edited from the
 * previous one with a seeded random generator (text appended to 2% of the files, 1% deleted,
 * 1% new files, one file grown in the middle) — the shape of successive releases of a
 * source tree or a dataset directory. For each chunker setting it reports the dedup ratio
 * (logical bytes of all versions / unique chunk bytes), the chunks per GB (metadata: 35
 * bytes of chunk list each, and one file in the store), the chunk+hash throughput, and the
 * new chunks a one-byte insertion near the start of a version costs. A fixed-size 256 KiB
 * block baseline shows what content-defined chunking buys.
 *
 *   npx tsc -p . && node dist/bench/packetfs-dedup.js
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkStream, DEFAULT_CHUNKER, type ChunkerOptions } from '../src/packetfs/index.js';
import { gbps, table, writeSection } from './packetfs-report.js';

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

const work = mkdtempSync(join(tmpdir(), 'oswalk-bench-dedup-'));
try {
  const tree = join(work, 'tree');
  execFileSync('sh', ['-c', `mkdir -p ${tree} && cp -r /usr/share/doc ${tree}/`]);
  const rnd = mulberry32(42);
  const versions: string[] = [];
  for (let v = 1; v <= 5; v++) {
    if (v > 1) {
      const files = walk(tree);
      for (const f of files) {
        const r = rnd();
        if (r < 0.02) appendFileSync(f, `\nedited in version ${v}: ${rnd()}\n`);
        else if (r < 0.03) unlinkSync(f);
      }
      for (let i = 0; i < files.length * 0.01; i++) writeFileSync(join(tree, 'doc', `new-${v}-${i}.txt`), `version ${v} file ${i} ${rnd()}\n`.repeat(200));
      const big = files.filter((f) => { try { return statSync(f).size > 200_000; } catch { return false; } })[0];
      if (big) {
        const b = readFileSync(big);
        writeFileSync(big, Buffer.concat([b.subarray(0, b.length >> 1), Buffer.from(`inserted in v${v}`), b.subarray(b.length >> 1)]));
      }
    }
    const tar = join(work, `v${v}.tar`);
    execFileSync('tar', ['cf', tar, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-C', tree, '.']);
    versions.push(tar);
  }
  const logical = versions.reduce((s, f) => s + statSync(f).size, 0);

  const settings: { name: string; opts?: ChunkerOptions; fixed?: number }[] = [
    { name: 'fixed 256 KiB blocks (baseline)', fixed: 256 * 1024 },
    { name: 'FastCDC 4/16/64 KiB', opts: { minSize: 4 << 10, avgSize: 16 << 10, maxSize: 64 << 10 } },
    { name: 'FastCDC 16/64/256 KiB', opts: { minSize: 16 << 10, avgSize: 64 << 10, maxSize: 256 << 10 } },
    { name: 'FastCDC 64/256/1024 KiB', opts: { minSize: 64 << 10, avgSize: 256 << 10, maxSize: 1024 << 10 } },
    { name: 'FastCDC 128/256/1024 KiB', opts: { minSize: 128 << 10, avgSize: 256 << 10, maxSize: 1024 << 10 } },
    { name: 'FastCDC 256/1024/4096 KiB', opts: { minSize: 256 << 10, avgSize: 1024 << 10, maxSize: 4096 << 10 } },
    { name: 'FastCDC 512/1024/4096 KiB (default)', opts: DEFAULT_CHUNKER },
  ];
  async function* fixedChunks(file: string, size: number): AsyncGenerator<{ hash: string; size: number }> {
    let pending: Buffer[] = [];
    let len = 0;
    for await (const b of createReadStream(file, { highWaterMark: 1 << 20 })) {
      pending.push(b as Buffer);
      len += (b as Buffer).length;
      while (len >= size) {
        const all = Buffer.concat(pending);
        const c = all.subarray(0, size);
        yield { hash: createHash('sha256').update(c).digest('hex'), size };
        pending = [all.subarray(size)];
        len -= size;
      }
    }
    if (len) yield { hash: createHash('sha256').update(Buffer.concat(pending)).digest('hex'), size: len };
  }
  const chunksOf = (file: string, s: (typeof settings)[number]) => (s.fixed ? fixedChunks(file, s.fixed) : chunkStream(createReadStream(file, { highWaterMark: 1 << 20 }), s.opts));

  const shifted = join(work, 'shifted.tar');
  const v1 = readFileSync(versions[0]);
  writeFileSync(shifted, Buffer.concat([v1.subarray(0, 1000), Buffer.from([7]), v1.subarray(1000)]));

  const rows: (string | number)[][] = [];
  for (const s of settings) {
    const unique = new Map<string, number>();
    let count = 0;
    const t = performance.now();
    for (const f of versions) {
      for await (const c of chunksOf(f, s)) {
        unique.set(c.hash, c.size);
        count++;
      }
    }
    const ms = performance.now() - t;
    const v1set = new Set<string>();
    for await (const c of chunksOf(versions[0], s)) v1set.add(c.hash);
    let fresh = 0;
    for await (const c of chunksOf(shifted, s)) if (!v1set.has(c.hash)) fresh++;
    const uniqueBytes = [...unique.values()].reduce((a, b) => a + b, 0);
    rows.push([
      s.name, (logical / uniqueBytes).toFixed(2), ((uniqueBytes / 2 ** 20)).toFixed(0), Math.round((count / logical) * 1e9), gbps(logical, ms), fresh,
    ]);
    console.log(rows.at(-1)!.join(' | '));
  }
  writeSection('dedup', 'Dedup on a versioned data set, and the chunk-size choice', 'node dist/bench/packetfs-dedup.js',
    `Five versions of a tarball of /usr/share/doc (${versions.map((f) => (statSync(f).size / 2 ** 20).toFixed(0)).join(', ')} MiB; ` +
    `${(logical / 2 ** 20).toFixed(0)} MiB in all), each edited from the previous (2% of files appended to, 1% deleted, 1% new, one file grown in the middle).\n\n` +
    table(['chunking', 'dedup ratio', 'unique MiB stored', 'chunks per GB', 'chunk+hash GB/s', 'new chunks after a 1-byte insert'], rows));
} finally {
  rmSync(work, { recursive: true, force: true });
}
