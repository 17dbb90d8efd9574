/**
 * Metadata: create (open O_CREAT + close), stat and unlink of 10,000 files, through the overlay
 * mount and on the raw disk, by python in another process. Run: node dist/bench/overlay-meta.js
 */
import { pct, setup, sh, writeSection, type Row } from './overlay-common.js';

const N = 10_000;

const SCRIPT = `
import os, sys, time
d = sys.argv[1]; n = int(sys.argv[2])
os.makedirs(d, exist_ok=True)
out = []
t = time.time()
for i in range(n):
    os.close(os.open(f'{d}/f{i}', os.O_CREAT | os.O_WRONLY, 0o644))
out.append(time.time() - t); t = time.time()
for i in range(n):
    os.stat(f'{d}/f{i}')
out.append(time.time() - t); t = time.time()
for i in range(n):
    os.unlink(f'{d}/f{i}')
out.append(time.time() - t)
print(' '.join(map(str, out)))
`;

async function phases(dir: string): Promise<number[]> {
  return (await sh(`python3 -c "${SCRIPT}" ${dir} ${N}`)).trim().split(' ').map(Number);
}

async function main(): Promise<void> {
  const env = await setup();
  try {
    const raw = await phases(`${env.raw}/meta`);
    const ovl = await phases(`${env.mnt}/meta`);
    const names = ['create', 'stat', 'unlink'];
    const rows: Row[] = names.map((name, i) => ({
      test: `${name} ×${N}`,
      raw: `${(N / raw[i]).toFixed(0)} /s`,
      overlay: `${(N / ovl[i]).toFixed(0)} /s`,
      ratio: pct(raw[i], ovl[i]),
      goal: name === 'create' ? '≥ 1,000 /s' : '',
    }));
    const rawAll = raw.reduce((a, b) => a + b);
    const ovlAll = ovl.reduce((a, b) => a + b);
    rows.push({ test: `create+stat+unlink ×${N} (files/s)`, raw: `${(N / rawAll).toFixed(0)} /s`, overlay: `${(N / ovlAll).toFixed(0)} /s`, ratio: pct(rawAll, ovlAll), goal: '' });
    writeSection('Metadata', 'node dist/bench/overlay-meta.js', rows,
      'One directory, empty files, one python process doing each phase in turn. A create through the overlay is a FUSE lookup + create + flush/release, and one Redis commit (Lua) at close; unlink is one Redis tombstone.');
  } finally {
    await env.close();
  }
}

await main();
